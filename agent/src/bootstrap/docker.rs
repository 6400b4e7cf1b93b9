//! `/etc/docker/daemon.json`: register the `sysbox-runc` runtime, keep everything else, and
//! make a running dockerd pick it up with SIGHUP (never a restart).

use std::path::PathBuf;

use clawster_core::fs::{
    ensure_dir, read_optional, write_atomic, FsError, HostRoot, Ownership, WriteOutcome,
};
use serde_json::{Map, Value};

/// Docker's configuration file.
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";
/// Where dockerd writes its pid.
pub const DOCKER_PID: &str = "/run/docker.pid";
/// The runtime path we register.
pub const SYSBOX_RUNC: &str = "/usr/bin/sysbox-runc";

/// daemon.json could not be merged. The file is left exactly as it was.
#[derive(Debug, thiserror::Error)]
pub enum DaemonJsonError {
    /// The existing file is not valid JSON.
    #[error("{path} is not valid JSON ({source}); left untouched: fix or remove it, then re-run")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// Valid JSON, but not the shape Docker expects.
    #[error("{path}: {what}; left untouched: fix it, then re-run")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Merges the runtime into existing daemon.json text (`None` = no file). Returns the new text, or
/// `None` when the file already registers the runtime with this path.
pub fn merge(
    existing: Option<&[u8]>,
    path: &std::path::Path,
) -> Result<Option<String>, DaemonJsonError> {
    let shape = |what: &str| DaemonJsonError::Shape {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    let mut doc = match existing {
        None => Value::Object(Map::new()),
        Some(b) if b.iter().all(u8::is_ascii_whitespace) => Value::Object(Map::new()),
        Some(b) => serde_json::from_slice::<Value>(b).map_err(|source| DaemonJsonError::Parse {
            path: path.to_path_buf(),
            source,
        })?,
    };
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| shape("top level is not a JSON object"))?;
    let runtimes = obj
        .entry("runtimes")
        .or_insert_with(|| Value::Object(Map::new()));
    let runtimes = runtimes
        .as_object_mut()
        .ok_or_else(|| shape("\"runtimes\" is not an object"))?;
    let entry = runtimes
        .entry("sysbox-runc")
        .or_insert_with(|| Value::Object(Map::new()));
    let entry = entry
        .as_object_mut()
        .ok_or_else(|| shape("\"runtimes\".\"sysbox-runc\" is not an object"))?;
    if entry.get("path").and_then(Value::as_str) == Some(SYSBOX_RUNC) && existing.is_some() {
        return Ok(None);
    }
    // Other keys of the entry (e.g. runtimeArgs) are kept; `default-runtime` is never touched.
    entry.insert("path".into(), Value::String(SYSBOX_RUNC.into()));
    let mut text = serde_json::to_string_pretty(&doc).expect("a JSON value serialises");
    text.push('\n');
    Ok(Some(text))
}

/// What the daemon.json step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonJsonOutcome {
    /// Written or not.
    pub outcome: WriteOutcome,
    /// `default-runtime` as found (we never set it; a sysbox default is worth a warning).
    pub default_runtime: Option<String>,
}

/// Merges the runtime into daemon.json under `root` and writes it atomically (root:root 0644).
pub fn write_daemon_json(root: &HostRoot) -> Result<DaemonJsonOutcome, DaemonJsonError> {
    let path = root.path(DAEMON_JSON);
    let existing = read_optional(&path)?;
    let default_runtime = existing
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|v| {
            v.get("default-runtime")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let Some(text) = merge(existing.as_deref(), &path)? else {
        return Ok(DaemonJsonOutcome {
            outcome: WriteOutcome::Unchanged,
            default_runtime,
        });
    };
    let dir = path.parent().expect("daemon.json has a parent");
    if !dir.exists() {
        ensure_dir(dir, Ownership::root(0o755))?;
    }
    let outcome = write_atomic(&path, text.as_bytes(), Ownership::root(0o644))?;
    Ok(DaemonJsonOutcome {
        outcome,
        default_runtime,
    })
}

/// The dockerd process boundary.
pub trait Dockerd {
    /// Sends SIGHUP to a running dockerd so it re-reads daemon.json. `Ok(None)` when dockerd is not
    /// running; `Ok(Some(pid))` when signalled.
    fn reload(&self) -> Result<Option<i32>, String>;
}

/// The real dockerd: found through its pid file, checked by `/proc/PID/comm`.
#[derive(Debug, Default)]
pub struct LiveDockerd;

impl Dockerd for LiveDockerd {
    fn reload(&self) -> Result<Option<i32>, String> {
        let Ok(text) = std::fs::read_to_string(DOCKER_PID) else {
            return Ok(None);
        };
        let Ok(pid) = text.trim().parse::<i32>() else {
            return Ok(None);
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "dockerd" {
            return Ok(None);
        }
        let p = rustix::process::Pid::from_raw(pid).ok_or_else(|| format!("bad pid {pid}"))?;
        rustix::process::kill_process(p, rustix::process::Signal::HUP)
            .map_err(|e| format!("SIGHUP to dockerd (pid {pid}): {e}"))?;
        Ok(Some(pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn merge_keeps_keys_and_never_sets_default_runtime() {
        let p = Path::new("/etc/docker/daemon.json");
        let old =
            br#"{"log-driver":"json-file","runtimes":{"other":{"path":"/x"}},"live-restore":true}"#;
        let text = merge(Some(old), p).expect("merge").expect("changed");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["log-driver"], "json-file");
        assert_eq!(v["live-restore"], true);
        assert_eq!(v["runtimes"]["other"]["path"], "/x");
        assert_eq!(v["runtimes"]["sysbox-runc"]["path"], SYSBOX_RUNC);
        assert!(v.get("default-runtime").is_none());
        // Key order is kept.
        assert!(text.find("log-driver") < text.find("live-restore"));
        assert_eq!(merge(Some(text.as_bytes()), p).expect("merge"), None);
    }

    #[test]
    fn merge_refuses_non_objects() {
        let p = Path::new("/etc/docker/daemon.json");
        for bad in [
            &b"[1,2]"[..],
            b"{\"runtimes\": 5}",
            b"{\"runtimes\":{\"sysbox-runc\":\"x\"}}",
            b"\"s\"",
        ] {
            let e = merge(Some(bad), p).expect_err("refused");
            assert!(e.to_string().contains("daemon.json"), "{e}");
        }
        let e = merge(Some(b"{\"a\": "), p).expect_err("parse");
        assert!(matches!(e, DaemonJsonError::Parse { .. }), "{e}");
        assert!(merge(None, p).expect("new").is_some());
        assert!(merge(Some(b"  \n"), p).expect("empty").is_some());
    }
}
