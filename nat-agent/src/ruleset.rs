//! The one table the agent owns, as an nf_tables [`Ruleset`].
//!
//! In `nft` syntax (for `--vpc-cidr 10.0.0.0/16 --egress-interface ens5`, all options on, on a
//! kernel with flowtables; on AWS the VPC side and the egress are the same interface):
//!
//! ```text
//! table ip clawster_nat {
//!     flowtable ft {                                            # the fast path
//!         hook ingress priority filter; devices = { ens5 };
//!     }
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         oifname "ens5" ip saddr 10.0.0.0/16 masquerade fully-random
//!     }
//!     chain forward {
//!         type filter hook forward priority filter; policy drop;
//!         tcp flags syn tcp option maxseg size set rt mtu          # --mss-clamp
//!         meta l4proto tcp ct state established flow add @ft        # the fast path
//!         meta l4proto udp ct state established flow add @ft        # the fast path
//!         ct state established,related accept
//!         ip daddr 169.254.0.0/16 drop
//!         oifname "ens5" ip saddr 10.0.0.0/16 tcp dport 80 ct state new accept
//!         oifname "ens5" ip saddr 10.0.0.0/16 tcp dport 443 ct state new accept
//!     }
//! }
//! ```
//!
//! One rule per (CIDR, port) instead of an anonymous set keeps the encoder small (no set
//! messages); a NAT instance has one or two CIDRs and a handful of ports.
//!
//! The fast path: the first established packets of a forwarded TCP or UDP connection pass the
//! `flow add @ft` rules, which put the connection into the flowtable; from then on its packets
//! arriving on a flowtable device are forwarded at the ingress hook, with the NAT conntrack
//! recorded applied, skipping routing, the forward chain and postrouting. Only connections the
//! forward chain already accepted as new become established, so the filter is not bypassed.
//! Without flowtable support in the kernel the plan has no fast-path devices and the table is
//! the same minus the flowtable and the two `flow add` rules.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use clawster_core::nft::expr::{self, ct_state, Expr, META_OIFNAME};
use clawster_core::nft::{
    BaseChain, Chain, Family, Flowtable, Hook, Policy, Ruleset, FLOWTABLE_HOOK_INGRESS,
};

/// The default table name.
pub const TABLE: &str = "clawster_nat";
/// The flowtable's name.
pub const FLOWTABLE: &str = "ft";

/// An IPv4 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address (host bits cleared).
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (expected e.g. 10.0.0.0/16)"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{s:?}: {a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{s:?}: prefix must be 0-32"))?;
        if prefix == 0 {
            return Err(format!("{s:?}: a /0 VPC CIDR would masquerade everything"));
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        if u32::from(addr) & !mask != 0 {
            return Err(format!(
                "{s:?} has host bits set (network is {}/{prefix})",
                Ipv4Addr::from(u32::from(addr) & mask)
            ));
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Everything the ruleset depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Table name.
    pub table: String,
    /// VPC CIDRs to masquerade.
    pub cidrs: Vec<Cidr>,
    /// Egress interface name.
    pub egress: String,
    /// TCP ports new connections may go to.
    pub ports: Vec<u16>,
    /// Clamp TCP MSS to the route MTU.
    pub mss_clamp: bool,
    /// Fully random source ports.
    pub fully_random: bool,
    /// The fast path's flowtable devices, sorted (the egress and the interfaces facing the
    /// VPC); empty: no fast path.
    pub fast_path: Vec<String>,
}

/// Priority of `srcnat`.
pub const PRIO_SRCNAT: i32 = 100;
/// Priority of `filter`.
pub const PRIO_FILTER: i32 = 0;

impl Plan {
    /// The intended table.
    pub fn ruleset(&self) -> Ruleset {
        let oif = || expr::match_ifname(META_OIFNAME, &self.egress);
        let saddr = |c: &Cidr| expr::match_ipv4_prefix(12, c.addr.octets(), c.prefix);

        let mut post = Vec::new();
        for c in &self.cidrs {
            let mut r = oif();
            r.extend(saddr(c));
            r.push(Expr::Masq {
                flags: if self.fully_random {
                    expr::NAT_RANDOM_FULLY
                } else {
                    0
                },
            });
            post.push(r);
        }

        let mut fwd = Vec::new();
        if self.mss_clamp {
            fwd.push(expr::clamp_mss_to_route());
        }
        if !self.fast_path.is_empty() {
            for proto in [6, 17] {
                let mut r = expr::match_l4proto(proto);
                r.extend(expr::match_ct_state(ct_state::ESTABLISHED));
                r.push(Expr::FlowOffload {
                    flowtable: FLOWTABLE.into(),
                });
                fwd.push(r);
            }
        }
        let mut est = expr::match_ct_state(ct_state::ESTABLISHED | ct_state::RELATED);
        est.push(Expr::Verdict(expr::VERDICT_ACCEPT));
        fwd.push(est);
        let mut link_local = expr::match_ipv4_prefix(16, [169, 254, 0, 0], 16);
        link_local.push(Expr::Verdict(expr::VERDICT_DROP));
        fwd.push(link_local);
        for c in &self.cidrs {
            for p in &self.ports {
                let mut r = oif();
                r.extend(saddr(c));
                r.extend(expr::match_tcp_dport(*p));
                r.extend(expr::match_ct_state(ct_state::NEW));
                r.push(Expr::Verdict(expr::VERDICT_ACCEPT));
                fwd.push(r);
            }
        }

        Ruleset {
            family: Family::Ip,
            table: self.table.clone(),
            chains: vec![
                Chain {
                    name: "postrouting".into(),
                    base: Some(BaseChain {
                        kind: "nat".into(),
                        hook: Hook::Postrouting,
                        priority: PRIO_SRCNAT,
                        policy: Policy::Accept,
                    }),
                    rules: post,
                },
                Chain {
                    name: "forward".into(),
                    base: Some(BaseChain {
                        kind: "filter".into(),
                        hook: Hook::Forward,
                        priority: PRIO_FILTER,
                        policy: Policy::Drop,
                    }),
                    rules: fwd,
                },
            ],
        }
    }

    /// The flowtables of the table: the fast path's, or none.
    pub fn flowtables(&self) -> Vec<Flowtable> {
        if self.fast_path.is_empty() {
            return Vec::new();
        }
        vec![Flowtable {
            name: FLOWTABLE.into(),
            hook: FLOWTABLE_HOOK_INGRESS,
            priority: PRIO_FILTER,
            devices: self.fast_path.clone(),
            flags: 0,
        }]
    }

    /// The same plan without the fast path (what a kernel without flowtables gets).
    pub fn without_fast_path(&self) -> Self {
        Self {
            fast_path: Vec::new(),
            ..self.clone()
        }
    }

    /// The same ruleset in `nft` syntax (for logs, `status`, and as the test oracle's input).
    pub fn nft_text(&self) -> String {
        let mut s = format!("table ip {} {{\n", self.table);
        if !self.fast_path.is_empty() {
            s.push_str(&format!(
                "\tflowtable {FLOWTABLE} {{\n\t\thook ingress priority filter; devices = {{ {} }};\n\t}}\n",
                self.fast_path.join(", ")
            ));
        }
        s.push_str("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        for c in &self.cidrs {
            let fr = if self.fully_random {
                " fully-random"
            } else {
                ""
            };
            s.push_str(&format!(
                "\t\toifname \"{}\" ip saddr {c} masquerade{fr}\n",
                self.egress
            ));
        }
        s.push_str(
            "\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n",
        );
        if self.mss_clamp {
            s.push_str("\t\ttcp flags syn tcp option maxseg size set rt mtu\n");
        }
        if !self.fast_path.is_empty() {
            for proto in ["tcp", "udp"] {
                s.push_str(&format!(
                    "\t\tmeta l4proto {proto} ct state established flow add @{FLOWTABLE}\n"
                ));
            }
        }
        s.push_str("\t\tct state established,related accept\n\t\tip daddr 169.254.0.0/16 drop\n");
        for c in &self.cidrs {
            for p in &self.ports {
                s.push_str(&format!(
                    "\t\toifname \"{}\" ip saddr {c} tcp dport {p} ct state new accept\n",
                    self.egress
                ));
            }
        }
        s.push_str("\t}\n}\n");
        s
    }
}

/// The first difference between the flowtables we intended and those the kernel holds.
pub fn flowtable_difference(want: &[Flowtable], got: &[Flowtable]) -> Option<String> {
    if want == got {
        return None;
    }
    let show = |f: &[Flowtable]| {
        if f.is_empty() {
            return "none".to_string();
        }
        f.iter()
            .map(|t| {
                format!(
                    "{} (hook {}, priority {}, devices {}, flags {:#x})",
                    t.name,
                    t.hook,
                    t.priority,
                    t.devices.join(", "),
                    t.flags
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    Some(format!(
        "flowtables are {}, expected {}",
        show(got),
        show(want)
    ))
}

/// The first difference between what we intended and what the kernel holds, in words.
pub fn first_difference(want: &Ruleset, got: &Ruleset) -> Option<String> {
    if want == got {
        return None;
    }
    let names = |r: &Ruleset| r.chains.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if names(want) != names(got) {
        return Some(format!(
            "chains are {:?}, expected {:?}",
            names(got),
            names(want)
        ));
    }
    for (w, g) in want.chains.iter().zip(&got.chains) {
        if w.base != g.base {
            return Some(format!(
                "chain {} is {:?}, expected {:?}",
                w.name, g.base, w.base
            ));
        }
        if w.rules.len() != g.rules.len() {
            return Some(format!(
                "chain {} has {} rules, expected {}",
                w.name,
                g.rules.len(),
                w.rules.len()
            ));
        }
        for (i, (wr, gr)) in w.rules.iter().zip(&g.rules).enumerate() {
            if wr != gr {
                return Some(format!(
                    "chain {} rule {} is {:?}, expected {:?}",
                    w.name,
                    i + 1,
                    gr,
                    wr
                ));
            }
        }
    }
    Some("table differs".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            table: TABLE.into(),
            cidrs: vec!["10.0.0.0/16".parse().expect("cidr")],
            egress: "ens5".into(),
            ports: vec![80, 443],
            mss_clamp: true,
            fully_random: true,
            fast_path: Vec::new(),
        }
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(
            "10.0.2.0/24".parse::<Cidr>().expect("ok").to_string(),
            "10.0.2.0/24"
        );
        assert!("10.0.2.1/24"
            .parse::<Cidr>()
            .expect_err("host bits")
            .contains("10.0.2.0/24"));
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("0.0.0.0/0".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }

    #[test]
    fn ruleset_shape() {
        let rs = plan().ruleset();
        assert_eq!(rs.chains[0].rules.len(), 1);
        // clamp, established, link-local drop, two ports
        assert_eq!(rs.chains[1].rules.len(), 5);
        assert_eq!(
            rs.chains[1].base.as_ref().map(|b| b.policy),
            Some(Policy::Drop)
        );
        assert_eq!(
            rs.chains[0].rules[0].last(),
            Some(&Expr::Masq {
                flags: expr::NAT_RANDOM_FULLY
            })
        );
        let mut p = plan();
        p.mss_clamp = false;
        p.fully_random = false;
        let rs2 = p.ruleset();
        assert_eq!(rs2.chains[1].rules.len(), 4);
        assert!(first_difference(&rs, &rs2)
            .expect("differs")
            .contains("postrouting"));
        assert_eq!(first_difference(&rs, &rs), None);
    }

    #[test]
    fn nft_text_lists_every_rule() {
        let t = plan().nft_text();
        assert!(t.contains("masquerade fully-random"));
        assert!(t.contains("tcp dport 443 ct state new accept"));
        assert_eq!(t.matches("accept\n").count(), 3);
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    fn plan(fast_path: &[&str]) -> Plan {
        Plan {
            table: TABLE.into(),
            cidrs: vec!["10.0.0.0/16".parse().expect("cidr")],
            egress: "ens5".into(),
            ports: vec![443],
            mss_clamp: true,
            fully_random: false,
            fast_path: fast_path.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn fast_path_adds_a_flowtable_and_two_flow_rules_before_the_accept() {
        let on = plan(&["ens5"]);
        let rs = on.ruleset();
        let fwd = &rs.chains[1].rules;
        // clamp, flow tcp, flow udp, established, link-local, one port
        assert_eq!(fwd.len(), 6);
        for (i, proto) in [(1, 6u8), (2, 17)] {
            assert_eq!(
                fwd[i].last(),
                Some(&Expr::FlowOffload {
                    flowtable: FLOWTABLE.into()
                })
            );
            assert_eq!(fwd[i][..2], expr::match_l4proto(proto)[..]);
            assert_eq!(
                fwd[i][2..5],
                expr::match_ct_state(ct_state::ESTABLISHED)[..]
            );
        }
        assert_eq!(
            on.flowtables(),
            vec![Flowtable {
                name: "ft".into(),
                hook: FLOWTABLE_HOOK_INGRESS,
                priority: 0,
                devices: vec!["ens5".into()],
                flags: 0
            }]
        );
        let off = on.without_fast_path();
        assert!(off.flowtables().is_empty());
        assert_eq!(off.ruleset().chains[1].rules.len(), 4);
        assert_eq!(off.ruleset(), plan(&[]).ruleset());
        // The postrouting chain (the NAT itself) is the same either way.
        assert_eq!(off.ruleset().chains[0], rs.chains[0]);

        let t = on.nft_text();
        assert!(
            t.contains("flowtable ft {\n\t\thook ingress priority filter; devices = { ens5 };"),
            "{t}"
        );
        assert!(t.contains("meta l4proto udp ct state established flow add @ft\n"));
        assert!(!off.nft_text().contains("flow"));
    }

    #[test]
    fn flowtable_differences_are_named() {
        let want = plan(&["in0", "out0"]).flowtables();
        assert_eq!(flowtable_difference(&want, &want), None);
        let d = flowtable_difference(&want, &[]).expect("differs");
        assert!(d.contains("flowtables are none, expected ft"), "{d}");
        let got = plan(&["out0"]).flowtables();
        let d = flowtable_difference(&want, &got).expect("differs");
        assert!(
            d.contains("devices out0,") && d.contains("devices in0, out0"),
            "{d}"
        );
    }
}
