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

use super::state::fmt_utc;

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
