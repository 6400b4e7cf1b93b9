//! The operator's side: `window open`, `window close` (root) and `window status` (anyone).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use clawster_core::fs::FsError;
use clawster_core::timefmt::fmt_utc;
use clawster_core::window_rules::fmt_duration;
use serde::Serialize;

use super::audit;
use super::state::{fmt_local, Installed, Loaded, Now, RunDir, Verdict, Window};

/// What `open` did.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The new window.
    pub window: Window,
    /// The id and expiry of the open window it replaced.
    pub replaced: Option<(String, i64)>,
}

/// Opens a window (replacing an open one), atomically, and writes the audit record.
pub fn open(
    rd: &RunDir,
    now: &Now,
    packages: Vec<String>,
    ttl: Duration,
    reason: String,
    operator_uid: u32,
) -> Result<Opened, FsError> {
    let _lock = rd.lock()?;
    let prev = rd.load();
    let replaced = match (&prev, prev.verdict(now)) {
        (Loaded::Window(w), Verdict::Open(_)) => Some((w.id.clone(), w.expires_at)),
        _ => None,
    };
    let w = Window::new(now, ttl, packages, reason);
    rd.save(&w)?;
    audit::open(
        &w.id,
        &w.packages,
        w.ttl_secs,
        w.expires_at,
        &w.reason,
        replaced.as_ref().map(|(id, _)| id.as_str()),
        operator_uid,
    );
    Ok(Opened {
        window: w,
        replaced,
    })
}

/// What `close` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The window's id (empty when there was none).
    pub id: String,
    /// `open`, `expired`, `locked`, `none` or `unreadable`.
    pub was: String,
}

/// Locks the window at once; idempotent.
pub fn close(rd: &RunDir, now: &Now) -> Result<Closed, FsError> {
    let _lock = rd.lock()?;
    let loaded = rd.load();
    let out = match (&loaded, loaded.verdict(now)) {
        (Loaded::Window(w), v) if w.state == "open" => {
            let mut w = (**w).clone();
            w.lock("close", now);
            rd.save(&w)?;
            Closed {
                id: w.id,
                was: if v.is_open() { "open" } else { "expired" }.into(),
            }
        }
        (Loaded::Window(w), _) => Closed {
            id: w.id.clone(),
            was: "locked".into(),
        },
        (Loaded::None, _) => Closed {
            id: String::new(),
            was: "none".into(),
        },
        (Loaded::Unreadable(_), _) => {
            // Locked already (unreadable = locked); remove it so the state is plainly "none".
            let p = rd.state();
            std::fs::remove_file(&p).map_err(|e| FsError::new("remove", &p, e))?;
            Closed {
                id: String::new(),
                was: "unreadable".into(),
            }
        }
    };
    audit::close(&out.id, &out.was);
    Ok(out)
}

/// Wakes the service (`refresh`): it re-reads the state and arms the expiry timer. Starting a
/// socket-activated service is a side effect of connecting.
pub fn poke(rd: &RunDir) -> Result<(), String> {
    let path = rd.socket();
    let mut s = UnixStream::connect(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(b"refresh\n")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // End of the request: the service reads until the writing side is shut.
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if reply.starts_with("R 0") {
        Ok(())
    } else {
        Err(format!("the window service answered {:?}", reply.trim()))
    }
}

/// `window status` as data.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `open` or `locked`.
    pub state: String,
    /// Why it is locked (empty when open).
    pub reason: String,
    /// The window's id, if any.
    pub window_id: Option<String>,
    /// Allowlist (of the last window).
    pub packages: Vec<String>,
    /// Seconds left when open.
    pub seconds_left: Option<u64>,
    /// Expiry (UTC), if any.
    pub expires: Option<String>,
    /// Expiry in local time.
    pub expires_local: Option<String>,
    /// The operator's reason.
    pub operator_reason: Option<String>,
    /// What was installed in it.
    pub installed: Vec<Installed>,
}

/// The status for `now`.
pub fn status(rd: &RunDir, now: &Now) -> Status {
    let loaded = rd.load();
    let verdict = loaded.verdict(now);
    let w = loaded.window();
    let (state, reason, left) = match verdict {
        Verdict::Open(left) => ("open", String::new(), Some(left.as_secs())),
        Verdict::Locked(r) | Verdict::Expired(r) => ("locked", r, None),
    };
    Status {
        state: state.into(),
        reason,
        window_id: w.map(|w| w.id.clone()),
        packages: w.map(|w| w.packages.clone()).unwrap_or_default(),
        seconds_left: left,
        expires: w.map(|w| fmt_utc(w.expires_at)),
        expires_local: w.map(|w| fmt_local(w.expires_at)),
        operator_reason: w.map(|w| w.reason.clone()).filter(|r| !r.is_empty()),
        installed: w.map(|w| w.installed.clone()).unwrap_or_default(),
    }
}

/// The status as text for people.
pub fn render_status(s: &Status) -> String {
    let mut out = String::new();
    if s.state == "open" {
        out.push_str(&format!(
            "window: open, {} left (until {}, {})\n",
            fmt_duration(Duration::from_secs(s.seconds_left.unwrap_or(0))),
            s.expires.as_deref().unwrap_or("?"),
            s.expires_local.as_deref().unwrap_or("?")
        ));
        out.push_str(&format!("packages: {}\n", s.packages.join(", ")));
    } else {
        out.push_str(&format!("window: locked ({})\n", s.reason));
        if !s.packages.is_empty() {
            out.push_str(&format!(
                "last window's packages: {}\n",
                s.packages.join(", ")
            ));
        }
    }
    if let Some(r) = &s.operator_reason {
        out.push_str(&format!("reason: {r}\n"));
    }
    if s.installed.is_empty() {
        if s.window_id.is_some() {
            out.push_str("installed in it: nothing\n");
        }
    } else {
        out.push_str("installed in it:\n");
        for i in &s.installed {
            out.push_str(&format!(
                "  {} {} by uid {} at {}{}\n",
                i.package,
                i.result,
                i.uid,
                fmt_utc(i.at),
                if i.changes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", i.changes.join(", "))
                }
            ));
        }
    }
    out
}
