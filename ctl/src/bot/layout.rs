//! How a bot is reached: through its own load balancer (`Dedicated`), or through an entry on the
//! region's shared load balancer (`Shared`): a listener port of its own, or, with a domain, a
//! host-name rule on the shared HTTPS listener. The target group always stays in the bot stack:
//! a target group belongs to at most one load balancer, so moving a bot means that one load
//! balancer lets go of it before the other forwards to it.
//!
//! Two more layouts exist only while `clawsterctl consolidate` moves a bot: `Joining` (the bot's
//! own load balancer still forwards; the shared entry is in place but answers 503) and
//! `Returning` (the shared entry forwards; the bot's own load balancer is back but answers 503).
//! Creating the new entry first makes a taken port or rule priority fail before the bot stops
//! being reachable, and the switch itself is then one change of a listener's action.
//!
//! The layout is recorded in the bot stack's parameters (`LoadBalancing`, `SharedListenerPort`
//! or `SharedHostName` and `SharedRulePriority`), so a port or priority, once allocated, stays the
//! bot's until the bot goes back or is destroyed.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;

/// Listener ports given to bots on the shared load balancer. An ALB holds at most 50 listeners,
/// so at most 50 bots are reached by port on one shared load balancer.
pub const SHARED_PORTS: RangeInclusive<u16> = 8001..=8050;
/// Rule priorities a listener accepts (one rule per bot reached by host name; an ALB holds at
/// most 100 rules and 100 target groups).
pub const RULE_PRIORITIES: RangeInclusive<u16> = 1..=50_000;
/// Bots one shared load balancer can take: its 100 target groups (and 100 rules).
pub const SHARED_CAPACITY: usize = 100;

/// A bot's entry on the shared load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A listener of its own on this port (plain HTTP; no domain needed).
    Port(u16),
    /// A rule on the shared HTTPS listener forwarding this host name.
    Host {
        /// `<bot>.<domain>`.
        name: String,
        /// The rule's priority on the shared listener.
        priority: u16,
    },
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Port(p) => write!(f, "port {p}"),
            Entry::Host { name, priority } => write!(f, "host {name} (rule priority {priority})"),
        }
    }
}

/// Which load balancer forwards to the bot's target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The bot's own load balancer (one per bot).
    Dedicated,
    /// Moving onto the shared load balancer: its own still forwards, the entry answers 503.
    Joining(Entry),
    /// The region's shared load balancer forwards through the entry.
    Shared(Entry),
    /// Moving back: the entry still forwards, its own load balancer answers 503.
    Returning(Entry),
}

/// What a listener or rule of a layout does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Forwards to the bot's target group.
    Forward,
    /// Answers 503 and holds no reference to the target group.
    Standby,
}

impl Layout {
    /// What the bot's own load balancer does, when the layout has one.
    pub fn dedicated(&self) -> Option<Role> {
        match self {
            Layout::Dedicated | Layout::Joining(_) => Some(Role::Forward),
            Layout::Returning(_) => Some(Role::Standby),
            Layout::Shared(_) => None,
        }
    }

    /// The shared entry and what it does, when the layout has one.
    pub fn shared(&self) -> Option<(&Entry, Role)> {
        match self {
            Layout::Dedicated => None,
            Layout::Joining(e) => Some((e, Role::Standby)),
            Layout::Shared(e) | Layout::Returning(e) => Some((e, Role::Forward)),
        }
    }

    /// The value of the `LoadBalancing` parameter.
    pub fn kind(&self) -> &'static str {
        match self {
            Layout::Dedicated => "dedicated",
            Layout::Joining(_) => "joining",
            Layout::Shared(_) => "shared",
            Layout::Returning(_) => "returning",
        }
    }

    /// The bot stack parameters that record the layout (ctl passes them on every create and
    /// update; the template's defaults are the same values).
    pub fn parameters(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::from([("LoadBalancing".to_string(), self.kind().to_string())]);
        match self.shared().map(|(e, _)| e) {
            Some(Entry::Port(p)) => {
                m.insert("SharedListenerPort".into(), p.to_string());
            }
            Some(Entry::Host { name, priority }) => {
                m.insert("SharedHostName".into(), name.clone());
                m.insert("SharedRulePriority".into(), priority.to_string());
            }
            None => {}
        }
        m
    }

    /// Reads the layout back from a bot stack's parameters; a stack without `LoadBalancing`
    /// (made before the shared load balancer existed) is dedicated.
    pub fn from_parameters(p: &BTreeMap<String, String>) -> Result<Self, String> {
        let kind = p.get("LoadBalancing").map_or("dedicated", String::as_str);
        if kind == "dedicated" {
            return Ok(Layout::Dedicated);
        }
        let entry = match (
            p.get("SharedListenerPort"),
            p.get("SharedHostName"),
            p.get("SharedRulePriority"),
        ) {
            (Some(port), None, _) => Entry::Port(parse_in(port, &SHARED_PORTS, "SharedListenerPort")?),
            (None, Some(name), Some(prio)) => Entry::Host {
                name: name.clone(),
                priority: parse_in(prio, &RULE_PRIORITIES, "SharedRulePriority")?,
            },
            _ => {
                return Err(format!(
                    "LoadBalancing is {kind:?} but the stack has neither SharedListenerPort nor SharedHostName with SharedRulePriority"
                ))
            }
        };
        match kind {
            "joining" => Ok(Layout::Joining(entry)),
            "shared" => Ok(Layout::Shared(entry)),
            "returning" => Ok(Layout::Returning(entry)),
            other => Err(format!(
                "LoadBalancing is {other:?}: expected dedicated, joining, shared or returning"
            )),
        }
    }
}

fn parse_in(v: &str, range: &RangeInclusive<u16>, what: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "{what} is {v:?}: expected {}-{}",
                range.start(),
                range.end()
            )
        })
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layout::Dedicated => f.write_str("its own load balancer"),
            Layout::Joining(e) => write!(f, "its own load balancer, joining the shared one ({e})"),
            Layout::Shared(e) => write!(f, "the shared load balancer, {e}"),
            Layout::Returning(e) => {
                write!(f, "the shared load balancer ({e}), returning to its own")
            }
        }
    }
}

/// The lowest free value of `range` that is not in `taken`.
pub fn lowest_free(range: RangeInclusive<u16>, taken: &[u16]) -> Option<u16> {
    range.into_iter().find(|v| !taken.contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip_through_the_stack_parameters() {
        let host = Entry::Host {
            name: "a.example.com".into(),
            priority: 7,
        };
        for l in [
            Layout::Dedicated,
            Layout::Joining(Entry::Port(8001)),
            Layout::Shared(Entry::Port(8050)),
            Layout::Returning(host.clone()),
            Layout::Shared(host),
        ] {
            assert_eq!(
                Layout::from_parameters(&l.parameters()),
                Ok(l.clone()),
                "{l}"
            );
        }
        assert_eq!(
            Layout::from_parameters(&BTreeMap::new()),
            Ok(Layout::Dedicated)
        );
    }

    #[test]
    fn exactly_one_load_balancer_forwards_in_every_layout() {
        let e = Entry::Port(8001);
        for l in [
            Layout::Dedicated,
            Layout::Joining(e.clone()),
            Layout::Shared(e.clone()),
            Layout::Returning(e.clone()),
        ] {
            let forwarding = [l.dedicated(), l.shared().map(|s| s.1)]
                .iter()
                .filter(|r| **r == Some(Role::Forward))
                .count();
            assert_eq!(forwarding, 1, "{l}");
        }
    }

    #[test]
    fn bad_records_are_named() {
        let p = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let e = Layout::from_parameters(&p(&[("LoadBalancing", "shared")])).expect_err("no entry");
        assert!(e.contains("SharedListenerPort"), "{e}");
        let e = Layout::from_parameters(&p(&[
            ("LoadBalancing", "shared"),
            ("SharedListenerPort", "80"),
        ]))
        .expect_err("port out of range");
        assert!(e.contains("8001-8050") && e.contains("\"80\""), "{e}");
        let e = Layout::from_parameters(&p(&[
            ("LoadBalancing", "sideways"),
            ("SharedListenerPort", "8001"),
        ]))
        .expect_err("kind");
        assert!(e.contains("sideways"), "{e}");
    }

    #[test]
    fn the_lowest_free_value_is_allocated() {
        assert_eq!(lowest_free(SHARED_PORTS, &[8001, 8002, 8004]), Some(8003));
        let all: Vec<u16> = SHARED_PORTS.collect();
        assert_eq!(lowest_free(SHARED_PORTS, &all), None);
    }
}
