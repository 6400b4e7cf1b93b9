//! Cost by layout: each bot with its own load balancer or all on the region's shared one, on the
//! plan's host type and its counterpart in the other architecture (Graviton against x86), per
//! bot a month with the region's shared part included; and the one-line suggestion `plan` and
//! `deploy` print from the second bot of a region on (never a question, never automatic).

use std::fmt::Write as _;

use super::{counterpart, Cost, Prices};
use crate::names::{InstanceType, Region};

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `dedicated` or `shared`.
    pub layout: &'static str,
    /// `arm64` or `x86_64`.
    pub arch: &'static str,
    /// The host type.
    pub instance_type: String,
    /// Exact cost per bot a month, the region's shared part included.
    pub per_bot: f64,
    /// Exact cost of the region a month.
    pub region: f64,
    /// The plan's own layout and type.
    pub this: bool,
}

/// The rows for `bots` bots (at least 1): both layouts on the plan's type and, when the price
/// list has it, on its counterpart; cheapest first.
pub fn rows(p: &Prices, instance_type: &InstanceType, shared_lb: bool, bots: u32) -> Vec<Row> {
    let n = bots.max(1);
    let mut types = vec![(instance_type.clone(), true)];
    if let Some(other) = counterpart(instance_type.as_str()).and_then(|t| t.parse().ok()) {
        types.push((other, false));
    }
    let mut out = Vec::new();
    for (t, own) in types {
        for (layout, shared) in [("dedicated", false), ("shared", true)] {
            let Ok(c) = Cost::with_layout(p, t.as_str(), shared) else {
                continue;
            };
            out.push(Row {
                layout,
                arch: t.arch().as_str(),
                instance_type: t.to_string(),
                per_bot: c.region_exact(n) / f64::from(n),
                region: c.region_exact(n),
                this: own && shared == shared_lb,
            });
        }
    }
    out.sort_by(|a, b| a.per_bot.total_cmp(&b.per_bot));
    out
}

/// What the region saves a month with `bots` bots on the shared load balancer instead of one
/// each (host type unchanged).
pub fn saving(p: &Prices, instance_type: &InstanceType, bots: u32) -> Result<f64, String> {
    let dedicated = Cost::with_layout(p, instance_type.as_str(), false)?;
    let shared = Cost::with_layout(p, instance_type.as_str(), true)?;
    Ok(dedicated.region_exact(bots) - shared.region_exact(bots))
}

/// The suggestion from the second bot of a region on, when the bots are not on the shared load
/// balancer already and it saves something.
pub fn suggestion(
    p: &Prices,
    instance_type: &InstanceType,
    bots: u32,
    region: &Region,
    already_shared: bool,
) -> Option<String> {
    if bots < 2 || already_shared {
        return None;
    }
    let s = saving(p, instance_type, bots).ok()?;
    (s > 0.0).then(|| {
        format!(
            "suggestion: with {bots} bots in {region}, one shared load balancer would save about ${s:.2} a month (`clawsterctl consolidate --region {region}` moves the bots there, `deploy --shared-lb` places a new one; nothing moves on its own)"
        )
    })
}

/// Writes the table under its title.
pub fn write_table(
    w: &mut String,
    p: &Prices,
    instance_type: &InstanceType,
    shared_lb: bool,
    bots: u32,
) {
    let n = bots.max(1);
    let _ = writeln!(
        w,
        "  By layout and host architecture, {n} bot(s) in the region (per bot a month, shared part included):"
    );
    for r in rows(p, instance_type, shared_lb, n) {
        let _ = writeln!(
            w,
            "    {:<10} {:<7} {:<10} {:>8}  {:>9} region{}",
            r.layout,
            r.arch,
            r.instance_type,
            format!("${:.2}", r.per_bot),
            format!("${:.2}", r.region),
            if r.this { "  <- this plan" } else { "" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> InstanceType {
        s.parse().expect("type")
    }

    #[test]
    fn shared_layout_pays_the_load_balancer_once_per_region() {
        let p = Prices::builtin();
        let h = p.hours_per_month;
        let alb = p.alb_hourly * h + p.alb_public_ipv4_count * p.public_ipv4_hourly * h;
        for n in [1, 3, 10] {
            let s = saving(&p, &t("t4g.small"), n).expect("prices");
            // Each dedicated bot pays an ALB and its addresses; the shared layout pays them once.
            let expected = f64::from(n) * alb - alb;
            assert!((s - expected).abs() < 1e-9, "{n}: {s} vs {expected}");
        }
    }

    #[test]
    fn ten_graviton_bots_on_the_shared_load_balancer_stay_near_18_dollars_each() {
        let p = Prices::builtin();
        let rows = rows(&p, &t("t4g.small"), true, 10);
        let best = &rows[0];
        assert_eq!((best.layout, best.arch), ("shared", "arm64"), "{rows:?}");
        assert!(best.this);
        // NAT, its address, the shared ALB and its addresses over 10 bots, plus each host,
        // volume and LCU share: 18.21 with the LCU estimate, 17.71 without it.
        assert!((best.per_bot - 18.2081).abs() < 0.001, "{}", best.per_bot);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows.last().map(|r| (r.layout, r.arch)),
            Some(("dedicated", "x86_64"))
        );
    }

    #[test]
    fn the_suggestion_starts_at_the_second_bot_and_names_the_saving() {
        let p = Prices::builtin();
        let r: Region = "eu-west-1".parse().expect("region");
        assert_eq!(suggestion(&p, &t("t4g.small"), 1, &r, false), None);
        assert_eq!(suggestion(&p, &t("t4g.small"), 3, &r, true), None);
        let s = suggestion(&p, &t("t4g.small"), 3, &r, false).expect("3 bots");
        assert!(
            s.contains("$47.45") && s.contains("consolidate --region eu-west-1"),
            "{s}"
        );
    }
}
