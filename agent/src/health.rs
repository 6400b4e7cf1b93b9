//! `clawster-agent health`: checks what bootstrap is responsible for, on the live host or under a
//! root directory. Exit codes: 0 healthy, 1 degraded (some check does not hold), 2 could not check.

use std::os::unix::fs::MetadataExt;

use clawster_core::fs::HostRoot;
use clawster_core::logging::{health, Status};
use clawster_core::sysctl::{parse_conf, Sysctl};
use serde_json::Value;

use crate::bootstrap::units;
use crate::bootstrap::{deb, docker, ecs, install, prereqs, sysctl};
use crate::host::systemd::{self as sd_files, Systemd};

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Name (`CLAWSTER_CHECK`).
    pub check: String,
    /// Result.
    pub status: Status,
    /// Detail.
    pub message: String,
}

/// All checks and the overall verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthReport {
    /// `ok`, `degraded` or `unknown`.
    pub status: String,
    /// Each check.
    pub checks: Vec<Check>,
}

impl HealthReport {
    /// 0 healthy, 1 degraded, 2 could not check.
    pub fn exit_code(&self) -> u8 {
        match self.status.as_str() {
            "ok" => 0,
            "degraded" => 1,
            _ => 2,
        }
    }
}

struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, check: &str, ok: bool, message: impl Into<String>) {
        let status = if ok { Status::Ok } else { Status::Failed };
        self.0.push(Check {
            check: check.into(),
            status,
            message: message.into(),
        });
    }
    fn add_status(&mut self, check: &str, status: Status, message: impl Into<String>) {
        self.0.push(Check {
            check: check.into(),
            status,
            message: message.into(),
        });
    }
}

fn file_mode_owner(root: &HostRoot, host: &str, mode: u32) -> Result<(), String> {
    let p = root.path(host);
    let m = std::fs::symlink_metadata(&p).map_err(|e| format!("{host}: {e}"))?;
    if !m.is_file() {
        return Err(format!("{host} is not a regular file"));
    }
    if m.mode() & 0o7777 != mode || m.uid() != 0 || m.gid() != 0 {
        return Err(format!(
            "{host} is {:o} {}:{}, expected {mode:o} root:root",
            m.mode() & 0o7777,
            m.uid(),
            m.gid()
        ));
    }
    Ok(())
}

/// The maintenance window: units as shipped, the client group, the socket enabled (live: listening).
fn window_check(c: &mut Checks, root: &HostRoot, sd: Option<&dyn Systemd>) {
    use crate::window::units as wu;
    let mut bad = Vec::new();
    for (name, text) in wu::unit_files() {
        let host = format!("{}/{name}", wu::UNIT_DIR);
        match std::fs::read(root.path(&host)) {
            Ok(b) if b == text => {}
            Ok(_) => bad.push(format!("{host} differs from what we ship")),
            Err(e) => bad.push(format!("{host}: {e}")),
        }
    }
    if crate::host::accounts::group_id(root, wu::CLIENT_GROUP).is_none() {
        bad.push(format!("no group {}", wu::CLIENT_GROUP));
    }
    let state = match sd {
        Some(sd) => match sd.active_state(wu::SOCKET_UNIT) {
            Ok(s) if s == "active" => "listening".to_string(),
            Ok(s) => {
                bad.push(format!("{} is {s}", wu::SOCKET_UNIT));
                s
            }
            Err(e) => {
                bad.push(e);
                "unknown".into()
            }
        },
        None => {
            if !sd_files::enabled_as_files(root, wu::SOCKET_UNIT, wu::SOCKET_TEXT) {
                bad.push(format!("{} not enabled", wu::SOCKET_UNIT));
            }
            "enabled (symlink); activity not checked offline".into()
        }
    };
    c.add(
        "window.units",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} {state}; group {}", wu::SOCKET_UNIT, wu::CLIENT_GROUP)
        } else {
            bad.join("; ")
        },
    );
}

/// The state replication (only on hosts that have it): the last successful pass and the lag.
fn state_check(c: &mut Checks, root: &HostRoot) {
    use crate::state::{command, SyncStatus, CONFIG_PATH, WORK_DIR};
    if !root.path(CONFIG_PATH).exists() {
        return;
    }
    let now = crate::host::s3::unix_now();
    let s = SyncStatus::load(&root.path(WORK_DIR));
    let message = match &s {
        Some(s) if s.last_sync > 0 => match &s.end {
            Some(end) if end.starts_with("released") => format!(
                "{end}; final generation {}, {} bytes, taken {} s ago",
                s.generation,
                s.bytes,
                s.lag(now).unwrap_or(0)
            ),
            _ => format!(
                "replication lag {} s (limit {} s), generation {}, {} bytes{}",
                s.lag(now).unwrap_or(0),
                command::LAG_LIMIT,
                s.generation,
                s.bytes,
                s.notes()
            ),
        },
        _ => "never synced: is clawster-state.service running? (journalctl -u clawster-state.service)".into(),
    };
    let status = match command::status_code(s.as_ref(), now) {
        0 => Status::Ok,
        _ => Status::Degraded,
    };
    c.add_status("state.replication", status, message);
}

/// Runs every check. `live` carries the live host's sysctl view and systemd (None offline).
pub fn check(root: &HostRoot, live: Option<(&Sysctl, &dyn Systemd)>) -> HealthReport {
    let mut c = Checks(Vec::new());
    if !root.dir().is_dir() {
        return HealthReport {
            status: "unknown".into(),
            checks: vec![Check {
                check: "health.root".into(),
                status: Status::Failed,
                message: format!("{} is not a directory", root.dir().display()),
            }],
        };
    }

    let bins: Vec<String> = deb::SYSBOX_BINARIES
        .iter()
        .filter_map(|(_, h)| file_mode_owner(root, h, 0o755).err())
        .collect();
    c.add(
        "sysbox.binaries",
        bins.is_empty(),
        if bins.is_empty() {
            "sysbox-runc, sysbox-mgr, sysbox-fs 0755 root".into()
        } else {
            bins.join("; ")
        },
    );

    let mut unit_problems = Vec::new();
    let mut texts = Vec::new();
    for u in deb::SYSBOX_UNITS {
        let host = format!("{}/{u}", units::UNIT_DIR);
        if let Err(e) = file_mode_owner(root, &host, 0o644) {
            unit_problems.push(e);
        }
        texts.push((
            u,
            std::fs::read_to_string(root.path(&host)).unwrap_or_default(),
        ));
    }
    match std::fs::read_to_string(root.path(units::DOCKER_DROPIN)) {
        Ok(t) if t == units::DOCKER_DROPIN_TEXT => {}
        Ok(_) => unit_problems.push(format!(
            "{} differs from what we ship",
            units::DOCKER_DROPIN
        )),
        Err(e) => unit_problems.push(format!("{}: {e}", units::DOCKER_DROPIN)),
    }
    c.add(
        "sysbox.unit_files",
        unit_problems.is_empty(),
        if unit_problems.is_empty() {
            "units and Docker drop-in in place".into()
        } else {
            unit_problems.join("; ")
        },
    );

    match live {
        Some((_, sd)) => {
            let mut bad = Vec::new();
            let mut states = Vec::new();
            for u in deb::SYSBOX_UNITS {
                match sd.active_state(u) {
                    Ok(s) => {
                        if s != "active" {
                            bad.push(format!("{u} is {s}"));
                        }
                        states.push(format!("{u} {s}"));
                    }
                    Err(e) => bad.push(e),
                }
            }
            match sd.unit_file_state(units::MAIN_UNIT) {
                Ok(s) if s == "enabled" => {}
                Ok(s) => bad.push(format!("{} is {s}", units::MAIN_UNIT)),
                Err(e) => bad.push(e),
            }
            c.add(
                "sysbox.units",
                bad.is_empty(),
                if bad.is_empty() {
                    format!("enabled; {}", states.join(", "))
                } else {
                    bad.join("; ")
                },
            );
        }
        None => {
            let not: Vec<&str> = texts
                .iter()
                .filter(|(u, t)| !sd_files::enabled_as_files(root, u, t))
                .map(|(u, _)| *u)
                .collect();
            c.add(
                "sysbox.units",
                not.is_empty(),
                if not.is_empty() {
                    "enabled (symlinks); activity not checked offline".to_string()
                } else {
                    format!("not enabled: {}", not.join(", "))
                },
            );
        }
    }

    let user = crate::host::accounts::passwd_entry(root, install::SYSBOX_USER);
    let ok = user
        .as_deref()
        .is_some_and(|l| l.ends_with("nologin") || l.ends_with("/bin/false"));
    c.add(
        "sysbox.user",
        ok,
        user.unwrap_or_else(|| "no sysbox user in /etc/passwd".into()),
    );

    let ok = root.path(install::SYSBOXFS_DIR).is_dir();
    c.add("sysbox.sysboxfs", ok, install::SYSBOXFS_DIR);

    let (ok, msg) = crate::docker_guard::install::check(root, live.map(|(_, sd)| sd));
    c.add("docker_guard.units", ok, msg);

    match std::fs::read_to_string(root.path(sysctl::SYSCTL_CONF)) {
        Err(e) => c.add(
            "sysbox.sysctl",
            false,
            format!("{}: {e}", sysctl::SYSCTL_CONF),
        ),
        Ok(text) => {
            let entries = parse_conf(&text);
            let mut low = Vec::new();
            if let Some((s, _)) = live {
                for (k, v) in &entries {
                    let Ok(want) = v.parse::<u64>() else { continue };
                    if let Ok(now) = s.read(k) {
                        if now.parse::<u64>().map(|n| n < want).unwrap_or(true) {
                            low.push(format!("{k} = {now} < {want}"));
                        }
                    }
                }
            }
            let has_userns = entries.iter().any(|(k, _)| k == sysctl::USERNS_KEY);
            if !has_userns {
                low.push(format!("{} not persisted", sysctl::USERNS_KEY));
            }
            c.add(
                "sysbox.sysctl",
                low.is_empty(),
                if low.is_empty() {
                    format!("{} keys in force", entries.len())
                } else {
                    low.join("; ")
                },
            );
        }
    }

    window_check(&mut c, root, live.map(|(_, sd)| sd));

    match std::fs::read(root.path(docker::DAEMON_JSON)) {
        Err(e) => c.add(
            "docker.daemon_json",
            false,
            format!("{}: {e}", docker::DAEMON_JSON),
        ),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Err(e) => c.add(
                "docker.daemon_json",
                false,
                format!("{} is not valid JSON: {e}", docker::DAEMON_JSON),
            ),
            Ok(v) => {
                let ok = v
                    .pointer("/runtimes/sysbox-runc/path")
                    .and_then(Value::as_str)
                    == Some(docker::SYSBOX_RUNC);
                c.add(
                    "docker.daemon_json",
                    ok,
                    if ok {
                        "sysbox-runc registered".into()
                    } else {
                        "sysbox-runc runtime missing".to_string()
                    },
                );
            }
        },
    }

    let marker = std::fs::read(root.path(install::MARKER))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let cluster = marker
        .as_ref()
        .and_then(|m| m.get("ecs_cluster"))
        .and_then(Value::as_str)
        .map(str::to_string);
    match (std::fs::read_to_string(root.path(ecs::ECS_CONFIG)), cluster) {
        (Ok(t), want) => {
            let has = |l: &str| t.lines().any(|x| x.trim() == l);
            let mut bad = Vec::new();
            for l in [
                "ECS_AWSVPC_BLOCK_IMDS=true",
                "ECS_DISABLE_PRIVILEGED=true",
                "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
            ] {
                if !has(l) {
                    bad.push(format!("no {l}"));
                }
            }
            match want {
                Some(cl) if !has(&format!("ECS_CLUSTER={cl}")) => {
                    bad.push(format!("ECS_CLUSTER is not {cl}"))
                }
                None if !t.lines().any(|l| l.starts_with("ECS_CLUSTER=")) => {
                    bad.push("no ECS_CLUSTER".into())
                }
                _ => {}
            }
            c.add(
                "ecs.config",
                bad.is_empty(),
                if bad.is_empty() {
                    "cluster, IMDS block and privileged-off set".into()
                } else {
                    bad.join("; ")
                },
            );
        }
        (Err(_), Some(cl)) => c.add(
            "ecs.config",
            false,
            format!("{} missing (expected cluster {cl})", ecs::ECS_CONFIG),
        ),
        (Err(_), None) => c.add_status(
            "ecs.config",
            Status::Skipped,
            "no ecs.config and no cluster configured",
        ),
    }

    let missing: Vec<&str> = prereqs::missing(root).iter().map(|t| t.name).collect();
    if missing.is_empty() {
        c.add(
            "sysbox.prereqs",
            true,
            "rsync, modprobe, iptables, fusermount present",
        );
    } else {
        c.add_status(
            "sysbox.prereqs",
            Status::Degraded,
            format!("missing: {}", missing.join(", ")),
        );
    }

    state_check(&mut c, root);

    c.add(
        "bootstrap.marker",
        marker.is_some(),
        if marker.is_some() {
            install::MARKER.to_string()
        } else {
            format!("{} missing: bootstrap has not completed", install::MARKER)
        },
    );

    let degraded =
        c.0.iter()
            .any(|x| matches!(x.status, Status::Failed | Status::Degraded));
    HealthReport {
        status: if degraded {
            "degraded".into()
        } else {
            "ok".into()
        },
        checks: c.0,
    }
}

/// Writes each check as a journal health record.
pub fn log(report: &HealthReport) {
    for c in &report.checks {
        health(&c.check, c.status, &c.message);
    }
}
