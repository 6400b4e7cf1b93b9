//! Control `firewall` [seed 000: deny inbound, allow outbound, allow loopback, block spoofed
//! loopback]: UFW's own configuration where UFW is installed ([`super::ufw`]), otherwise our own
//! nf_tables table `inet clawster_hostfw`, programmed over netlink with `clawster_core::nft` (no
//! `nft` binary), loaded at every boot by `systemd/clawster-firewall.service`.
//!
//! ```text
//! table inet clawster_hostfw {
//!     chain prerouting {
//!         type filter hook prerouting priority raw; policy accept;
//!         iifname != "lo" ip saddr 127.0.0.0/8 counter drop
//!         iifname != "lo" ip6 saddr ::1 counter drop
//!     }
//!     chain input {
//!         type filter hook input priority filter; policy drop;
//!         iifname "lo" accept
//!         ip saddr 127.0.0.0/8 counter drop
//!         ip6 saddr ::1 counter drop
//!         icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept
//!         ct state invalid drop
//!         ct state established,related accept
//!         udp sport 67 udp dport 68 accept                        # DHCPv4 replies
//!         ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept  # DHCPv6 replies
//!         ip daddr 127.0.0.1 tcp dport 51679 ct status dnat accept  # ecs-host only
//!     }
//! }
//! ```
//!
//! No forward or output chain: outbound stays open and container traffic (Docker, ECS) is not
//! ours to filter here; a drop in any base chain on a hook is final, so a forward chain with policy
//! drop would break every container. On `ecs-host` the ECS agent's task-metadata/credentials
//! endpoint (169.254.170.2, DNATed by the ECS agent to 127.0.0.1:51679 with route_localnet=1) is
//! let in, and only when conntrack says it was DNATed. The spoofed-loopback rules also sit in
//! prerouting because with `route_localnet=0` the kernel drops such packets as martians before
//! input (facts/host.md section 6); they guard against `route_localnet=1`.

use clawster_core::logging::Status;
use clawster_core::nft::expr::{
    self, ct_state, Expr, BASE_NETWORK, BASE_TRANSPORT, CT_STATUS_DNAT, META_IIFNAME, NFPROTO_IPV4,
    NFPROTO_IPV6,
};
use clawster_core::nft::{self, BaseChain, Chain, Family, Hook, Policy, Ruleset};

use super::{ufw, ApplyReport, Ctx, Finding, Profile};
use crate::host::systemd::{self as sd_files, UNIT_DIR};

/// Our table.
pub const TABLE: &str = "clawster_hostfw";
/// The unit that loads it at boot.
pub const FIREWALL_UNIT: &str = "clawster-firewall.service";
/// Its text as shipped.
pub const FIREWALL_UNIT_TEXT: &str = include_str!("../../../systemd/clawster-firewall.service");
/// Priority `raw`.
pub const PRIO_RAW: i32 = -300;

const ID: &str = "firewall";
const LOOPBACK4: [u8; 4] = [127, 0, 0, 0];

fn with(mut v: Vec<Expr>, more: Vec<Expr>) -> Vec<Expr> {
    v.extend(more);
    v
}

fn verdict(mut v: Vec<Expr>, code: i32) -> Vec<Expr> {
    v.push(Expr::Verdict(code));
    v
}

/// Drops with a counter (`nft list table inet clawster_hostfw` shows how many were dropped).
fn counted_drop(mut v: Vec<Expr>) -> Vec<Expr> {
    v.push(Expr::Counter);
    v.push(Expr::Verdict(expr::VERDICT_DROP));
    v
}

fn saddr4_loopback() -> Vec<Expr> {
    with(
        expr::match_nfproto(NFPROTO_IPV4),
        expr::match_addr_prefix(12, &LOOPBACK4, 8),
    )
}

fn saddr6_loopback() -> Vec<Expr> {
    with(
        expr::match_nfproto(NFPROTO_IPV6),
        expr::match_addr_prefix(8, &std::net::Ipv6Addr::LOCALHOST.octets(), 128),
    )
}

/// The intended table for `profile`.
pub fn ruleset(profile: Profile) -> Ruleset {
    use expr::{VERDICT_ACCEPT as ACCEPT, VERDICT_DROP as DROP};
    let not_lo = || expr::match_ifname_not(META_IIFNAME, "lo");
    let pre = vec![
        counted_drop(with(not_lo(), saddr4_loopback())),
        counted_drop(with(not_lo(), saddr6_loopback())),
    ];
    let mut input = vec![
        verdict(expr::match_ifname(META_IIFNAME, "lo"), ACCEPT),
        counted_drop(saddr4_loopback()),
        counted_drop(saddr6_loopback()),
    ];
    for t in [133u8, 134, 135, 136] {
        let mut r = expr::match_nfproto(NFPROTO_IPV6);
        r.extend(expr::match_l4proto(58));
        r.extend(expr::match_byte(BASE_TRANSPORT, 0, t));
        r.extend(expr::match_byte(BASE_NETWORK, 7, 255));
        input.push(verdict(r, ACCEPT));
    }
    input.push(verdict(expr::match_ct_state(ct_state::INVALID), DROP));
    input.push(verdict(
        expr::match_ct_state(ct_state::ESTABLISHED | ct_state::RELATED),
        ACCEPT,
    ));
    input.push(verdict(
        with(
            expr::match_nfproto(NFPROTO_IPV4),
            expr::match_udp_ports(67, 68),
        ),
        ACCEPT,
    ));
    let fe80: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0);
    input.push(verdict(
        with(
            with(
                expr::match_nfproto(NFPROTO_IPV6),
                expr::match_addr_prefix(8, &fe80.octets(), 10),
            ),
            expr::match_udp_ports(547, 546),
        ),
        ACCEPT,
    ));
    if profile == Profile::EcsHost {
        let mut r = expr::match_nfproto(NFPROTO_IPV4);
        r.extend(expr::match_addr_prefix(16, &[127, 0, 0, 1], 32));
        r.extend(expr::match_tcp_dport(51679));
        r.extend(expr::match_ct_status(CT_STATUS_DNAT));
        input.push(verdict(r, ACCEPT));
    }
    Ruleset {
        family: Family::Inet,
        table: TABLE.into(),
        chains: vec![
            Chain {
                name: "prerouting".into(),
                base: Some(BaseChain {
                    kind: "filter".into(),
                    hook: Hook::Prerouting,
                    priority: PRIO_RAW,
                    policy: Policy::Accept,
                }),
                rules: pre,
            },
            Chain {
                name: "input".into(),
                base: Some(BaseChain {
                    kind: "filter".into(),
                    hook: Hook::Input,
                    priority: 0,
                    policy: Policy::Drop,
                }),
                rules: input,
            },
        ],
    }
}

/// Loads the table atomically and reads it back; `Ok(true)` when it had to change.
pub fn load(profile: Profile) -> Result<bool, String> {
    let want = ruleset(profile);
    let mut sock = nft::open_socket(false).map_err(|e| format!("nf_tables socket: {e}"))?;
    let before = nft::read_table(&mut sock, Family::Inet, TABLE)
        .map_err(|e| format!("reading table inet {TABLE}: {e}"))?;
    if before.as_ref() == Some(&want) {
        return Ok(false);
    }
    let seq = sock.next_seq();
    let batch = want.replace_batch(seq).map_err(|e| format!("{e}"))?;
    for _ in 0..want.batch_len() {
        sock.next_seq();
    }
    batch
        .send(&mut sock)
        .map_err(|e| format!("loading table inet {TABLE}: {e}"))?;
    let after = nft::read_table(&mut sock, Family::Inet, TABLE)
        .map_err(|e| format!("reading table inet {TABLE} back: {e}"))?;
    if after.as_ref() != Some(&want) {
        return Err(format!(
            "table inet {TABLE} read back differs from what was loaded"
        ));
    }
    Ok(true)
}

/// Compares the kernel's table with the intended one.
pub fn kernel_matches(profile: Profile) -> Result<bool, String> {
    let mut sock = nft::open_socket(false).map_err(|e| format!("nf_tables socket: {e}"))?;
    let got = nft::read_table(&mut sock, Family::Inet, TABLE)
        .map_err(|e| format!("reading table inet {TABLE}: {e}"))?;
    Ok(got.as_ref() == Some(&ruleset(profile)))
}

/// Applies UFW's files (UFW installed) or installs and loads our table.
pub fn apply(ctx: &Ctx<'_>, ufw_plan: Option<ufw::Plan>, rep: &mut ApplyReport) {
    match ufw_plan {
        Some(plan) => apply_ufw(ctx, plan, rep),
        None => apply_nft(ctx, rep),
    }
}

fn apply_ufw(ctx: &Ctx<'_>, plan: ufw::Plan, rep: &mut ApplyReport) {
    let r = (|| -> Result<(Status, String), String> {
        let o = ufw::write(&plan).map_err(|e| format!("{e:#}"))?;
        let files: Vec<&str> = plan.writes.iter().map(|(f, ..)| f.as_str()).collect();
        let mut msg = if files.is_empty() {
            "UFW configured: deny incoming, allow outgoing, allow in on lo, deny in from 127.0.0.0/8 and ::1".to_string()
        } else {
            format!("UFW files updated: {}", files.join(", "))
        };
        let mut changed = o.changed();
        if ctx.live {
            let sd = ctx.sd()?;
            if sd.unit_file_state("ufw.service")? != "enabled" {
                sd.enable(&["ufw.service"])?;
                sd.reload()?;
                changed = true;
            }
            if changed || sd.active_state("ufw.service")? != "active" {
                let job = sd.restart_no_block("ufw.service")?;
                msg.push_str(&format!("; ufw.service restart queued as {job}"));
                changed = true;
            }
        } else {
            let text = std::fs::read_to_string(ctx.root.path("/lib/systemd/system/ufw.service"))
                .or_else(|_| {
                    std::fs::read_to_string(ctx.root.path("/usr/lib/systemd/system/ufw.service"))
                })
                .unwrap_or_default();
            rep.left_for_boot
                .push("ufw.service loads UFW's rules at boot".into());
            if !text.is_empty()
                && !sd_files::wanted_by(&text).iter().all(|t| {
                    std::fs::symlink_metadata(
                        ctx.root
                            .path(UNIT_DIR)
                            .join(format!("{t}.wants/ufw.service")),
                    )
                    .is_ok()
                })
            {
                msg.push_str("; ufw.service is not enabled: enable it at boot");
            }
        }
        if !plan.foreign_allows.is_empty() {
            return Err(format!(
                "{msg}; but operator rules open inbound ports: {} (remove them with `ufw delete`)",
                plan.foreign_allows.join(", ")
            ));
        }
        Ok((if changed { Status::Changed } else { Status::Ok }, msg))
    })();
    rep.result(ID, r);
}

fn apply_nft(ctx: &Ctx<'_>, rep: &mut ApplyReport) {
    let r = (|| -> Result<(Status, String), String> {
        let mut changed = sd_files::write_unit_files(
            &ctx.root,
            &[(FIREWALL_UNIT, FIREWALL_UNIT_TEXT.as_bytes())],
        )
        .map_err(|e| format!("{e:#}"))?
        .changed();
        let units = vec![(
            FIREWALL_UNIT.to_string(),
            FIREWALL_UNIT_TEXT.as_bytes().to_vec(),
        )];
        if !ctx.live {
            changed |= !sd_files::enable_as_files(&ctx.root, &units)
                .map_err(|e| format!("{e:#}"))?
                .is_empty();
            rep.left_for_boot
                .push(format!("{FIREWALL_UNIT} loads table inet {TABLE} at boot"));
            return Ok((
                if changed { Status::Changed } else { Status::Ok },
                format!("no UFW: {FIREWALL_UNIT} installed and enabled; table inet {TABLE} is loaded at boot"),
            ));
        }
        let sd = ctx.sd()?;
        if changed || sd.unit_file_state(FIREWALL_UNIT)? != "enabled" {
            sd.enable(&[FIREWALL_UNIT])?;
            sd.reload()?;
            changed = true;
        }
        changed |= load(ctx.profile)?;
        Ok((
            if changed { Status::Changed } else { Status::Ok },
            format!("no UFW: table inet {TABLE} loaded and verified (input policy drop, loopback and established accepted, spoofed loopback dropped); {FIREWALL_UNIT} reloads it at boot"),
        ))
    })();
    rep.result(ID, r);
}

/// UFW's files and service, or our table and unit.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    if ufw::installed(&ctx.root) {
        return audit_ufw(ctx);
    }
    let fix = "clawster-agent baseline apply (loads table inet clawster_hostfw and enables clawster-firewall.service)";
    let mut problems = Vec::new();
    let unit = std::fs::read(ctx.root.path(UNIT_DIR).join(FIREWALL_UNIT));
    if unit.as_deref().ok() != Some(FIREWALL_UNIT_TEXT.as_bytes()) {
        problems.push(format!(
            "{UNIT_DIR}/{FIREWALL_UNIT} missing or not the shipped unit"
        ));
    }
    if !sd_files::enabled_as_files(&ctx.root, FIREWALL_UNIT, FIREWALL_UNIT_TEXT) {
        problems.push(format!("{FIREWALL_UNIT} not enabled"));
    }
    let mut evidence = format!("no UFW; {FIREWALL_UNIT} installed and enabled");
    if ctx.live {
        match kernel_matches(ctx.profile) {
            Ok(true) => evidence.push_str(&format!("; kernel holds table inet {TABLE} exactly as intended (input policy drop, lo and established accepted, spoofed 127.0.0.0/8 and ::1 dropped, outbound open)")),
            Ok(false) => problems.push(format!("the kernel's table inet {TABLE} is missing or differs")),
            Err(e) => return Finding::unknown(ID, e, "run as root with CAP_NET_ADMIN"),
        }
    }
    Finding::from_problems(ID, evidence, &problems, fix)
}

fn audit_ufw(ctx: &Ctx<'_>) -> Finding {
    let fix = "clawster-agent baseline apply (writes UFW's files and restarts ufw.service)";
    let plan = match ufw::preflight(&ctx.root) {
        Ok(Some(p)) => p,
        Ok(None) => return Finding::failed(ID, "UFW vanished while checking", fix),
        Err(e) => {
            return Finding::failed(
                ID,
                format!("{e}"),
                "fix the file by hand, then clawster-agent baseline apply",
            )
        }
    };
    let mut problems: Vec<String> = plan
        .writes
        .iter()
        .map(|(f, ..)| format!("{f} lacks baseline settings"))
        .collect();
    problems.extend(
        plan.foreign_allows
            .iter()
            .map(|a| format!("inbound port opened: {a}")),
    );
    let mut evidence = "UFW: ENABLED=yes, default deny incoming, allow outgoing, allow in on lo, deny in from 127.0.0.0/8 and ::1".to_string();
    if ctx.live {
        match ctx.sd().and_then(|sd| sd.active_state("ufw.service")) {
            Ok(s) if s == "active" => evidence.push_str("; ufw.service active"),
            Ok(s) => problems.push(format!("ufw.service is {s}")),
            Err(e) => return Finding::unknown(ID, e, "run on a host with systemd"),
        }
    }
    Finding::from_problems(ID, evidence, &problems, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_shape_per_profile() {
        let oc = ruleset(Profile::OpenclawHost);
        let ecs = ruleset(Profile::EcsHost);
        assert_eq!(oc.family, Family::Inet);
        assert_eq!(
            oc.chains.len(),
            2,
            "no forward chain: containers are not ours to filter"
        );
        assert_eq!(
            oc.chains[1].base.as_ref().map(|b| b.policy),
            Some(Policy::Drop)
        );
        assert_eq!(
            oc.chains[0].base.as_ref().map(|b| b.priority),
            Some(PRIO_RAW)
        );
        assert_eq!(ecs.chains[1].rules.len(), oc.chains[1].rules.len() + 1);
        // Loopback is accepted first, spoofed loopback dropped before conntrack can accept it.
        assert_eq!(
            oc.chains[1].rules[0],
            verdict(expr::match_ifname(META_IIFNAME, "lo"), expr::VERDICT_ACCEPT)
        );
        let est = oc.chains[1]
            .rules
            .iter()
            .position(|r| {
                r.starts_with(&expr::match_ct_state(
                    ct_state::ESTABLISHED | ct_state::RELATED,
                ))
            })
            .expect("established rule");
        assert!(est > 2);
        assert!(oc.replace_batch(1).is_ok());
    }
}
