//! `clawsterctl plan`: what a deploy would create or reuse, what it costs, how long it takes.
//!
//! Prices come from one file, `ctl/prices.json` (compiled in), with the date they were taken.
//! The cost model is the architecture's (seed 002, section 4): a shared part per region (NAT
//! instance and its Elastic IP address) and a per-bot part (host, load balancer with its two
//! public addresses, root volume). Like the architecture, the region totals add whole-dollar
//! subtotals (shared + N x per bot); exact amounts are shown next to them. Items the
//! architecture lists outside its table (Container Insights, flow logs, secrets, the NAT's root
//! volume) are shown separately, never hidden.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

use crate::bot::{self, BotOptions};
use crate::manifest::Release;
use crate::shared;

pub mod layouts;

/// The price list, as compiled in.
pub const PRICES_JSON: &str = include_str!("../../prices.json");

/// The price list.
#[derive(Debug, Clone, Deserialize)]
pub struct Prices {
    /// Date the prices were taken.
    pub as_of: String,
    /// Region they apply to.
    pub region: String,
    /// Currency.
    pub currency: String,
    /// Where they come from.
    pub source: String,
    /// Hours in a billing month (AWS uses 730).
    pub hours_per_month: f64,
    /// On-demand price per hour of the instance types we use.
    pub ec2_hourly: std::collections::BTreeMap<String, f64>,
    /// Price per hour of one public IPv4 address.
    pub public_ipv4_hourly: f64,
    /// ALB price per hour.
    pub alb_hourly: f64,
    /// Estimated LCU charge of an idle-ish bot ALB per month.
    pub alb_lcu_monthly_estimate: f64,
    /// Public addresses of an ALB in two AZs.
    pub alb_public_ipv4_count: f64,
    /// gp3 price per GB-month.
    pub ebs_gp3_gb_month: f64,
    /// Secrets Manager price per secret-month.
    pub secrets_manager_secret_month: f64,
    /// Container Insights estimate per cluster-month.
    pub container_insights_cluster_month_estimate: f64,
    /// Flow logs (rejects only) estimate per month.
    pub flow_logs_month_estimate: f64,
}

impl Prices {
    /// The compiled-in price list.
    pub fn builtin() -> Self {
        // The file is part of the source tree and checked by a unit test; a broken edit fails the
        // build's tests, never an operator's command.
        serde_json::from_str(PRICES_JSON)
            .unwrap_or_else(|e| panic!("ctl/prices.json is invalid: {e}"))
    }

    fn hourly(&self, instance_type: &str) -> Result<f64, String> {
        self.ec2_hourly.get(instance_type).copied().ok_or_else(|| {
            format!(
                "no price for instance type {instance_type} in ctl/prices.json (known: {}); add it there",
                self.ec2_hourly.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// One priced line.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    /// What is paid for.
    pub item: String,
    /// How the amount is computed.
    pub basis: String,
    /// Dollars per month.
    pub monthly: f64,
}

/// The monthly cost model of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// Paid once per region.
    pub shared: Vec<CostLine>,
    /// Paid per bot.
    pub per_bot: Vec<CostLine>,
    /// Not in the architecture's table, shown separately: (per region, per bot).
    pub extras_shared: Vec<CostLine>,
    /// Per-bot extras.
    pub extras_per_bot: Vec<CostLine>,
}

fn sum(lines: &[CostLine]) -> f64 {
    lines.iter().map(|l| l.monthly).sum()
}

impl Cost {
    /// Builds the model for bots on `instance_type`, each with its own load balancer.
    pub fn new(p: &Prices, instance_type: &str) -> Result<Self, String> {
        Self::with_layout(p, instance_type, false)
    }

    /// Builds the model for bots on `instance_type`, each with its own load balancer or
    /// (`shared_lb`) all on the region's shared one: its hours and addresses are then paid once
    /// per region, and each bot keeps its share of the load balancer capacity units (LCU: they
    /// are billed on the traffic of all bots together).
    pub fn with_layout(p: &Prices, instance_type: &str, shared_lb: bool) -> Result<Self, String> {
        let h = p.hours_per_month;
        let nat_hourly = p.hourly(shared::NAT_INSTANCE_TYPE)?;
        let bot_hourly = p.hourly(instance_type)?;
        let line = |item: &str, basis: String, monthly: f64| CostLine {
            item: item.into(),
            basis,
            monthly,
        };
        let mut shared = vec![
            line(
                "NAT instance",
                format!("{} ${nat_hourly}/h x {h} h", shared::NAT_INSTANCE_TYPE),
                nat_hourly * h,
            ),
            line(
                "NAT Elastic IP (IPv4)",
                format!("${}/h x {h} h", p.public_ipv4_hourly),
                p.public_ipv4_hourly * h,
            ),
        ];
        let alb = line(
            "Load balancer",
            format!(
                "${}/h x {h} h + ~${:.2} LCU",
                p.alb_hourly, p.alb_lcu_monthly_estimate
            ),
            p.alb_hourly * h + p.alb_lcu_monthly_estimate,
        );
        let alb_ipv4 = line(
            "Load balancer IPv4",
            format!(
                "{} addresses x ${}/h x {h} h",
                p.alb_public_ipv4_count, p.public_ipv4_hourly
            ),
            p.alb_public_ipv4_count * p.public_ipv4_hourly * h,
        );
        let host = line(
            "Bot host",
            format!("{instance_type} ${bot_hourly}/h x {h} h"),
            bot_hourly * h,
        );
        let volume = line(
            "Root volume",
            format!(
                "{} GB gp3 x ${}/GB",
                bot::ROOT_VOLUME_GB,
                p.ebs_gp3_gb_month
            ),
            f64::from(bot::ROOT_VOLUME_GB) * p.ebs_gp3_gb_month,
        );
        let per_bot = if shared_lb {
            shared.push(line(
                "Shared load balancer",
                format!("${}/h x {h} h", p.alb_hourly),
                p.alb_hourly * h,
            ));
            shared.push(CostLine {
                item: "Shared LB IPv4".into(),
                ..alb_ipv4
            });
            vec![
                host,
                line(
                    "Load balancer LCU",
                    format!(
                        "~${:.2} share of the shared one",
                        p.alb_lcu_monthly_estimate
                    ),
                    p.alb_lcu_monthly_estimate,
                ),
                volume,
            ]
        } else {
            vec![host, alb, alb_ipv4, volume]
        };
        let extras_shared = vec![
            line(
                "NAT root volume",
                format!("8 GB gp3 x ${}/GB", p.ebs_gp3_gb_month),
                8.0 * p.ebs_gp3_gb_month,
            ),
            line(
                "VPC flow logs (rejects)",
                "estimate".into(),
                p.flow_logs_month_estimate,
            ),
        ];
        let extras_per_bot = vec![
            line(
                "Container Insights",
                "estimate per cluster".into(),
                p.container_insights_cluster_month_estimate,
            ),
            line(
                "Secrets Manager",
                format!(
                    "1 secret (configuration and gateway token) x ${:.2}",
                    p.secrets_manager_secret_month
                ),
                p.secrets_manager_secret_month,
            ),
        ];
        Ok(Self {
            shared,
            per_bot,
            extras_shared,
            extras_per_bot,
        })
    }

    /// Exact shared subtotal per month.
    pub fn shared_total(&self) -> f64 {
        sum(&self.shared)
    }

    /// Exact per-bot subtotal per month.
    pub fn per_bot_total(&self) -> f64 {
        sum(&self.per_bot)
    }

    /// Exact monthly total of a region with `bots` bots.
    pub fn region_exact(&self, bots: u32) -> f64 {
        self.shared_total() + f64::from(bots) * self.per_bot_total()
    }

    /// The budget figure, computed like the architecture's table: whole-dollar subtotals
    /// (shared, per bot) added up.
    pub fn region_budget(&self, bots: u32) -> u64 {
        whole(self.shared_total()) + u64::from(bots) * whole(self.per_bot_total())
    }

    /// Exact monthly total including the extras.
    pub fn region_with_extras(&self, bots: u32) -> f64 {
        self.region_exact(bots)
            + sum(&self.extras_shared)
            + f64::from(bots) * sum(&self.extras_per_bot)
    }
}

/// The same size in the other architecture's burstable family (t3 and t3a against t4g), for the
/// plan's comparison; other families have no one counterpart.
pub fn counterpart(instance_type: &str) -> Option<String> {
    let (family, size) = instance_type.split_once('.')?;
    match family {
        "t4g" => Some(format!("t3.{size}")),
        "t3" | "t3a" => Some(format!("t4g.{size}")),
        _ => None,
    }
}

/// Rounds a dollar amount to whole dollars, halves up.
pub fn whole(x: f64) -> u64 {
    // Amounts are small and positive; the cast cannot truncate anything that matters.
    (x + 0.5).floor() as u64
}

/// One step of the deploy timeline, in seconds (from the architecture's measured timings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// What happens.
    pub what: &'static str,
    /// Fastest observed.
    pub min_s: u32,
    /// Slowest observed.
    pub max_s: u32,
    /// Parts that run inside this step (in parallel for stacks, one after another for start).
    pub detail: &'static [(&'static str, u32, u32)],
}

/// Shared stack creation: the IAM instance profile is the critical path (seed 002, section 2).
pub const STEP_SHARED: Step = Step {
    what: "Create shared stack",
    min_s: 150,
    max_s: 210,
    detail: &[
        ("VPC, subnets, gateway, route tables", 15, 30),
        ("NAT instance, Elastic IP, route", 60, 90),
        ("IAM roles and instance profiles", 120, 180),
        ("Security groups", 10, 15),
    ],
};
/// Checking an existing shared stack and its exports.
pub const STEP_SHARED_CHECK: Step = Step {
    what: "Check shared stack and exports",
    min_s: 2,
    max_s: 2,
    detail: &[],
};
/// Bot stack creation: the load balancer is the slowest part.
pub const STEP_BOT: Step = Step {
    what: "Create bot stack",
    min_s: 60,
    max_s: 90,
    detail: &[
        ("Load balancer, target group, listener", 30, 60),
        ("Auto Scaling group, launch template", 15, 30),
        ("ECS cluster, task definition, service", 15, 30),
        ("Secret, log group", 5, 10),
    ],
};
/// Waiting for the private default route through the NAT instance (backoff up to ~30 s).
pub const STEP_NAT: Step = Step {
    what: "Wait for the NAT route",
    min_s: 0,
    max_s: 30,
    detail: &[],
};
/// Starting the service (DesiredCount 1) until the target is healthy.
pub const STEP_START: Step = Step {
    what: "Start the bot (DesiredCount 1)",
    min_s: 120,
    max_s: 180,
    detail: &[
        ("Host launches", 30, 45),
        ("Boot, clawster-agent bootstrap (Sysbox)", 30, 45),
        ("ECS agent registers", 15, 20),
        ("Image pull (~500 MB)", 15, 30),
        ("Container start (apt-get, npm, gateway)", 30, 60),
        ("Load balancer health check", 10, 10),
    ],
};

/// The steps of a deploy: the first bot in a region creates the shared stack.
pub fn timeline(first_in_region: bool) -> Vec<Step> {
    let shared = if first_in_region {
        STEP_SHARED
    } else {
        STEP_SHARED_CHECK
    };
    vec![shared, STEP_BOT, STEP_NAT, STEP_START]
}

/// Range of the whole timeline in seconds.
pub fn timeline_total(steps: &[Step]) -> (u32, u32) {
    (
        steps.iter().map(|s| s.min_s).sum(),
        steps.iter().map(|s| s.max_s).sum(),
    )
}

fn mmss(s: u32) -> String {
    format!("{}:{:02}", s / 60, s % 60)
}

/// Resource logical IDs and types of a rendered template, in template order.
pub fn resources(template: &Value) -> Vec<(String, String)> {
    template["Resources"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(id, r)| (id.clone(), r["Type"].as_str().unwrap_or("?").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A stack's resources as `Type xN` groups in template order, e.g. `EC2::Subnet x4`.
pub fn resource_summary(template: &Value) -> Vec<String> {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for (_, ty) in resources(template) {
        let short = ty.trim_start_matches("AWS::").to_string();
        match groups.iter_mut().find(|(t, _)| *t == short) {
            Some((_, n)) => *n += 1,
            None => groups.push((short, 1)),
        }
    }
    groups
        .into_iter()
        .map(|(t, n)| if n == 1 { t } else { format!("{t} x{n}") })
        .collect()
}

/// Joins `items` with ", " into lines of at most `width` characters, each starting with `indent`.
fn wrap(items: &[String], indent: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from(indent);
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item}, ")
        } else {
            item.clone()
        };
        if line.len() + piece.trim_end().len() > width && line.len() > indent.len() {
            lines.push(line.trim_end().to_string());
            line = String::from(indent);
        }
        line.push_str(&piece);
    }
    if line.len() > indent.len() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// Everything `plan` prints.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The bot and its options.
    pub bot: &'a BotOptions,
    /// Bots in the region once this one is deployed (1 = the first).
    pub bots_in_region: u32,
    /// The release that would be deployed.
    pub release: &'a Release,
    /// The prices.
    pub prices: &'a Prices,
    /// The bot goes on the region's shared load balancer (`--shared-lb`).
    pub shared_lb: bool,
}

/// Rows of the region cost table: the architecture's (1, 2, 3, 5, 10 bots) plus the planned count.
pub fn table_rows(bots_in_region: u32) -> Vec<u32> {
    let mut rows = vec![1, 2, 3, 5, 10];
    if !rows.contains(&bots_in_region) {
        rows.push(bots_in_region);
        rows.sort_unstable();
    }
    rows
}

/// Renders the plan as text.
pub fn render(input: &PlanInput<'_>) -> Result<String, String> {
    let o = input.bot;
    let p = input.prices;
    let first = input.bots_in_region <= 1;
    let cost = Cost::with_layout(p, o.instance_type.as_str(), input.shared_lb)?;
    let shared_name = shared::stack_name(&o.region);
    let bot_name = bot::stack_name(&o.name);
    let shared_t = shared::template(&o.region, input.release);
    let bot_t = bot::template(o, input.release);
    let mut s = String::new();
    // Writing into a String cannot fail.
    let w = &mut s;

    let _ = writeln!(w, "Plan for bot {} in {}", o.name, o.region);
    let _ = writeln!(
        w,
        "Release {}: clawster-agent {} ({}), clawster-nat-agent {} ({})",
        input.release.version,
        short(&input.release.agent(o.instance_type.arch()).sha256),
        input.release.agent(o.instance_type.arch()).target,
        short(&input.release.nat_agent.sha256),
        input.release.nat_agent.target
    );
    let _ = writeln!(w);
    let _ = writeln!(w, "Stacks");
    let _ = writeln!(
        w,
        "  {:<28} {:<7} {} resources{}",
        shared_name,
        if first { "create" } else { "reuse" },
        resources(&shared_t).len(),
        if first {
            ""
        } else {
            " (exists; exports are checked)"
        }
    );
    if first {
        for l in wrap(&resource_summary(&shared_t), "    ", 100) {
            let _ = writeln!(w, "{l}");
        }
    }
    let _ = writeln!(
        w,
        "  {:<28} {:<7} {} resources",
        bot_name,
        "create",
        resources(&bot_t).len()
    );
    for l in wrap(&resource_summary(&bot_t), "    ", 100) {
        let _ = writeln!(w, "{l}");
    }
    let _ = writeln!(
        w,
        "  secret clawster/{}/config: the OpenClaw configuration, created before the bot stack\n  upload {} and {} to s3://clawster-artifacts-<account>-{}/{}",
        o.name,
        input.release.agent(o.instance_type.arch()).name,
        input.release.nat_agent.name,
        o.region,
        format_args!("{}/{}/", crate::manifest::ARTIFACTS_PREFIX, input.release.version)
    );
    if o.certificate.is_none() {
        let _ = writeln!(
            w,
            "  note: no --certificate-arn: the load balancer serves HTTP only and the gateway token travels in plaintext"
        );
    }
    let _ = writeln!(w);

    let _ = writeln!(
        w,
        "Monthly cost ({}, prices of {} for {})",
        p.currency, p.as_of, p.region
    );
    if p.region != o.region.as_str() {
        let _ = writeln!(
            w,
            "  note: the price list is {}'s; prices in {} may differ",
            p.region, o.region
        );
    }
    let line = |w: &mut String, l: &CostLine| {
        let _ = writeln!(
            w,
            "  {:<24} {:>9}   {}",
            l.item,
            format!("${:.2}", l.monthly),
            l.basis
        );
    };
    let _ = writeln!(w, "  Shared, once per region");
    for l in &cost.shared {
        line(w, l);
    }
    let _ = writeln!(
        w,
        "  {:<24} {:>9}   about ${}",
        "Shared total",
        format!("${:.2}", cost.shared_total()),
        whole(cost.shared_total())
    );
    let _ = writeln!(w, "  Per bot");
    for l in &cost.per_bot {
        line(w, l);
    }
    let _ = writeln!(
        w,
        "  {:<24} {:>9}   about ${}",
        "Per-bot total",
        format!("${:.2}", cost.per_bot_total()),
        whole(cost.per_bot_total())
    );
    let _ = writeln!(w);
    let _ = writeln!(w, "  Bots   Per month     Exact   Per bot");
    for n in table_rows(input.bots_in_region) {
        let budget = cost.region_budget(n);
        let marker = if n == input.bots_in_region {
            "  <- this plan"
        } else {
            ""
        };
        let _ = writeln!(
            w,
            "  {:>4}   {:>9}   {:>7}   {:>7}{marker}",
            n,
            format!("${budget}"),
            format!("${:.2}", cost.region_exact(n)),
            format!("${:.2}", budget as f64 / f64::from(n)),
        );
    }
    let _ = writeln!(w);
    layouts::write_table(
        w,
        p,
        &o.instance_type,
        input.shared_lb,
        input.bots_in_region,
    );
    if let Some(line) = layouts::suggestion(
        p,
        &o.instance_type,
        input.bots_in_region,
        &o.region,
        input.shared_lb,
    ) {
        let _ = writeln!(w, "  {line}");
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "  Per month is the architecture's budget: whole-dollar subtotals, shared + bots x per bot.");
    let _ = writeln!(
        w,
        "  Not in that table (the architecture lists them apart too):"
    );
    for l in cost.extras_shared.iter() {
        let _ = writeln!(
            w,
            "  {:<24} {:>9}   {} (per region)",
            l.item,
            format!("${:.2}", l.monthly),
            l.basis
        );
    }
    for l in cost.extras_per_bot.iter() {
        let _ = writeln!(
            w,
            "  {:<24} {:>9}   {} (per bot)",
            l.item,
            format!("${:.2}", l.monthly),
            l.basis
        );
    }
    let _ = writeln!(
        w,
        "  With these, {} bot(s) cost about ${:.2} a month.",
        input.bots_in_region,
        cost.region_with_extras(input.bots_in_region)
    );
    let _ = writeln!(w);

    let steps = timeline(first);
    let (lo, hi) = timeline_total(&steps);
    let _ = writeln!(
        w,
        "Timeline ({} bot in the region)",
        if first { "first" } else { "another" }
    );
    for st in &steps {
        let _ = writeln!(
            w,
            "  {:<44} {:>5} - {:>5}",
            st.what,
            mmss(st.min_s),
            mmss(st.max_s)
        );
        for (what, a, b) in st.detail {
            let _ = writeln!(w, "    {:<42} {:>5} - {:>5}", what, mmss(*a), mmss(*b));
        }
    }
    let _ = writeln!(
        w,
        "  {:<44} {:>5} - {:>5}",
        "Bot running after",
        mmss(lo),
        mmss(hi)
    );
    let _ = writeln!(
        w,
        "  (stack steps list their resources, created in parallel; start steps run in order)"
    );
    Ok(s)
}

fn short(sha: &str) -> String {
    format!("sha256 {}…", &sha[..12.min(sha.len())])
}

/// Parses the bots-in-region count.
pub fn parse_bots(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=500).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid bot count {s:?}: expected 1-500, the number of bots in the region including this one"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_list_parses_and_is_dated() {
        let p = Prices::builtin();
        assert!(
            p.as_of.len() == 10 && p.as_of.starts_with("20"),
            "{}",
            p.as_of
        );
        assert_eq!(p.hours_per_month, 730.0);
        assert!(p.ec2_hourly.contains_key("t4g.nano") && p.ec2_hourly.contains_key("t3.small"));
    }

    #[test]
    fn counterparts_are_the_same_size_in_the_other_burstable_family() {
        assert_eq!(counterpart("t4g.small").as_deref(), Some("t3.small"));
        assert_eq!(counterpart("t3.medium").as_deref(), Some("t4g.medium"));
        assert_eq!(counterpart("t3a.large").as_deref(), Some("t4g.large"));
        assert_eq!(counterpart("m7g.large"), None);
    }

    #[test]
    fn unknown_instance_type_is_named() {
        let e = Cost::new(&Prices::builtin(), "m5.large").expect_err("no price");
        assert!(e.contains("m5.large") && e.contains("prices.json"), "{e}");
    }

    #[test]
    fn timeline_sums_its_steps() {
        let first = timeline(true);
        let later = timeline(false);
        assert_eq!(timeline_total(&first), (330, 510));
        assert!(timeline_total(&later).1 < timeline_total(&first).0 + 60);
        assert_eq!(mmss(75), "1:15");
    }

    #[test]
    fn resources_are_grouped_and_wrapped() {
        let t = serde_json::json!({ "Resources": {
            "A": { "Type": "AWS::EC2::Subnet" }, "B": { "Type": "AWS::EC2::VPC" }, "C": { "Type": "AWS::EC2::Subnet" }
        } });
        assert_eq!(resource_summary(&t), ["EC2::Subnet x2", "EC2::VPC"]);
        let items: Vec<String> = (0..30).map(|i| format!("Item{i}")).collect();
        let lines = wrap(&items, "  ", 40);
        assert!(
            lines.len() > 1 && lines.iter().all(|l| l.len() <= 40 && l.starts_with("  ")),
            "{lines:?}"
        );
        assert_eq!(lines.join(" ").split(", ").count(), 30);
    }

    #[test]
    fn bot_counts_are_checked() {
        assert_eq!(parse_bots("10"), Ok(10));
        for bad in ["0", "-1", "x", "501"] {
            assert!(parse_bots(bad).expect_err(bad).contains("1-500"));
        }
    }
}
