//! The one table the agent owns, as an nf_tables [`Ruleset`].
//!
//! In `nft` syntax (for `--vpc-cidr 10.0.0.0/16 --egress-interface ens5`, all options on):
//!
//! ```text
//! table ip clawster_nat {
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         oifname "ens5" ip saddr 10.0.0.0/16 masquerade fully-random
//!     }
//!     chain forward {
//!         type filter hook forward priority filter; policy drop;
//!         tcp flags syn tcp option maxseg size set rt mtu          # --mss-clamp
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

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use clawster_core::nft::expr::{self, ct_state, Expr, META_OIFNAME};
use clawster_core::nft::{BaseChain, Chain, Family, Hook, Policy, Ruleset};

/// The default table name.
pub const TABLE: &str = "clawster_nat";

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

    /// The same ruleset in `nft` syntax (for logs, `status`, and as the test oracle's input).
    pub fn nft_text(&self) -> String {
        let mut s = format!("table ip {} {{\n", self.table);
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
