//! Audit records: every window event is one journal record with structured fields
//! (`CLAWSTER_CHECK=window.*`, `CLAWSTER_STATUS`, and the fields below). journald adds the
//! trusted `_PID`, `_UID`, `_COMM` and `_SYSTEMD_UNIT` of the writer, which callers cannot forge.
//!
//! | check | when | fields |
//! |---|---|---|
//! | `window.open` | opened (or replaced) | `WINDOW_ID PACKAGES TTL_SECS EXPIRES REASON REPLACED OPERATOR_UID` |
//! | `window.close` | locked by hand | `WINDOW_ID WAS` |
//! | `window.expire` | locked at its TTL | `WINDOW_ID EXPIRES LATENCY_MS` |
//! | `window.request` | every request, allowed or refused | `PACKAGE CALLER_UID CALLER_GID CALLER_PID CALLER_COMMAND DECISION REASON WINDOW_ID EXPIRES` |
//! | `window.install` | each install's result | `PACKAGE CALLER_UID CALLER_PID EXIT_STATUS DURATION_MS CHANGES REASON WINDOW_ID` |
//! | `window.serve` | service start/stop | `SOCKET ACTIVATION` |

use clawster_core::timefmt::fmt_utc;

/// The caller as the kernel reported it at connect().
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// SO_PEERCRED uid.
    pub uid: u32,
    /// SO_PEERCRED gid.
    pub gid: u32,
    /// SO_PEERCRED pid (an audit hint only: it may be stale or reused).
    pub pid: i32,
    /// SO_PEERGROUPS.
    pub groups: Vec<u32>,
    /// `/proc/PID/comm` read at accept (audit hint only).
    pub command: String,
}

/// A window was opened.
pub fn open(
    id: &str,
    packages: &[String],
    ttl_secs: u64,
    expires: i64,
    reason: &str,
    replaced: Option<&str>,
    operator_uid: u32,
) {
    tracing::info!(
        clawster_check = "window.open",
        clawster_status = "changed",
        window_id = id,
        packages = packages.join(",").as_str(),
        ttl_secs,
        expires = fmt_utc(expires).as_str(),
        reason,
        replaced = replaced.unwrap_or(""),
        operator_uid,
        "window {id} open for {} until {}{}",
        packages.join(", "),
        fmt_utc(expires),
        replaced
            .map(|r| format!(" (replaced window {r})"))
            .unwrap_or_default()
    );
}

/// A window was closed by hand (`was` = what it was before: open/locked/none).
pub fn close(id: &str, was: &str) {
    tracing::info!(
        clawster_check = "window.close",
        clawster_status = if was == "open" { "changed" } else { "ok" },
        window_id = id,
        was,
        "window {} closed (was {was})",
        if id.is_empty() { "-" } else { id }
    );
}

/// A window was locked by its expiry.
pub fn expire(id: &str, expires: i64, latency_ms: u64, why: &str) {
    tracing::info!(
        clawster_check = "window.expire",
        clawster_status = "changed",
        window_id = id,
        expires = fmt_utc(expires).as_str(),
        latency_ms,
        "window {id} locked: {why} ({latency_ms} ms after its deadline)"
    );
}

/// A request and the decision on it.
pub fn request(
    c: &Caller,
    package: &str,
    allowed: bool,
    reason: &str,
    window: Option<(&str, i64)>,
) {
    let (id, exp) = window
        .map(|(i, e)| (i.to_string(), fmt_utc(e)))
        .unwrap_or_default();
    let decision = if allowed { "allowed" } else { "refused" };
    let msg = format!(
        "install {package:?} by uid {} (pid {}, {}): {decision}: {reason}",
        c.uid, c.pid, c.command
    );
    if allowed {
        tracing::info!(
            clawster_check = "window.request",
            clawster_status = "ok",
            package,
            caller_uid = c.uid,
            caller_gid = c.gid,
            caller_pid = c.pid,
            caller_command = c.command.as_str(),
            decision,
            reason,
            window_id = id.as_str(),
            expires = exp.as_str(),
            "{msg}"
        );
    } else {
        tracing::warn!(
            clawster_check = "window.request",
            clawster_status = "refused",
            package,
            caller_uid = c.uid,
            caller_gid = c.gid,
            caller_pid = c.pid,
            caller_command = c.command.as_str(),
            decision,
            reason,
            window_id = id.as_str(),
            expires = exp.as_str(),
            "{msg}"
        );
    }
}

/// An install's result.
pub fn install(
    c: &Caller,
    package: &str,
    exit_status: u8,
    duration_ms: u64,
    changes: &[String],
    reason: &str,
    window_id: &str,
) {
    let msg = format!(
        "install {package} for uid {}: exit {exit_status} in {duration_ms} ms: {reason}",
        c.uid
    );
    let changes = changes.join(", ");
    if exit_status == 0 {
        tracing::info!(
            clawster_check = "window.install",
            clawster_status = "changed",
            package,
            caller_uid = c.uid,
            caller_pid = c.pid,
            exit_status,
            duration_ms,
            changes = changes.as_str(),
            reason,
            window_id,
            "{msg}"
        );
    } else {
        tracing::error!(
            clawster_check = "window.install",
            clawster_status = "failed",
            package,
            caller_uid = c.uid,
            caller_pid = c.pid,
            exit_status,
            duration_ms,
            changes = changes.as_str(),
            reason,
            window_id,
            "{msg}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use clawster_core::window_rules::{AUDIT_CHECKS, AUDIT_FIELDS};
    use tracing::field::{Field, Visit};

    use super::*;

    /// Collects every event's field names (as journald stores them) and its CLAWSTER_CHECK.
    #[derive(Default, Clone)]
    struct Fields(Arc<Mutex<(BTreeSet<String>, BTreeSet<String>)>>);

    struct Visitor<'a>(&'a mut (BTreeSet<String>, BTreeSet<String>));
    impl Visit for Visitor<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "clawster_check" {
                self.0 .1.insert(value.to_string());
            }
            self.record_debug(field, &value);
        }
        fn record_debug(&mut self, field: &Field, _: &dyn std::fmt::Debug) {
            self.0 .0.insert(field.name().to_ascii_uppercase());
        }
    }

    impl tracing::Subscriber for Fields {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut seen = self.0.lock().expect("lock");
            event.record(&mut Visitor(&mut seen));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// clawsterctl picks these fields out of the journal by name (`--output-fields`): every field
    /// an audit record carries must be in the shared list.
    #[test]
    fn audit_records_carry_only_the_shared_fields_and_checks() {
        let fields = Fields::default();
        let caller = Caller {
            uid: 1000,
            gid: 1000,
            pid: 42,
            groups: vec![],
            command: "node".into(),
        };
        tracing::subscriber::with_default(fields.clone(), || {
            open("id", &["hello".into()], 60, 0, "r", Some("old"), 0);
            close("id", "open");
            expire("id", 0, 3, "expired");
            request(&caller, "hello", true, "ok", Some(("id", 0)));
            request(&caller, "hello", false, "no", None);
            install(&caller, "hello", 0, 10, &[], "ok", "id");
            install(&caller, "hello", 1, 10, &[], "failed", "id");
        });
        let (names, checks) = fields.0.lock().expect("lock").clone();
        assert!(
            names.contains("CALLER_COMMAND") && names.contains("MESSAGE"),
            "{names:?}"
        );
        assert_eq!(checks.len(), 5, "{checks:?}");
        for n in &names {
            assert!(
                ["MESSAGE", "CLAWSTER_CHECK", "CLAWSTER_STATUS"].contains(&n.as_str())
                    || AUDIT_FIELDS.contains(&n.as_str()),
                "{n} is not in window_rules::AUDIT_FIELDS"
            );
        }
        for c in &checks {
            assert!(AUDIT_CHECKS.contains(&c.as_str()), "{c}");
        }
    }

    /// Every `window.*` check the agent's tracing calls write (outside this file too) is an audit
    /// check that clawsterctl's window-logs filter asks the journal for.
    #[test]
    fn every_window_check_in_the_source_is_known() {
        const KEY: &str = "clawster_check = \"window.";
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).expect("read");
                    for (i, _) in text.match_indices(KEY) {
                        let rest = &text[i + KEY.len() - "window.".len()..];
                        let end = rest.find('"').expect("closing quote");
                        out.push((p.display().to_string(), rest[..end].to_string()));
                    }
                }
            }
        }
        let mut found = Vec::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        walk(&src, &mut found);
        let distinct: BTreeSet<&str> = found.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(distinct.len(), AUDIT_CHECKS.len(), "{found:?}");
        for (file, v) in &found {
            assert!(
                AUDIT_CHECKS.contains(&v.as_str()),
                "{file}: {v} is not in window_rules::AUDIT_CHECKS"
            );
        }
    }
}
