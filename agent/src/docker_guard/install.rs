//! Installing the guard on a bot host (called by `bootstrap`): its two units in
//! /etc/systemd/system, the bot's state directory (the only place bind sources may come from),
//! and the socket enabled and started. The service itself is started by its socket on the
//! task's first connection.

use clawster_core::fs::{ensure_dir, HostRoot, Ownership};
use clawster_core::logging::Status;

use crate::host::systemd::{enable_and_start, write_unit_files, Systemd, UNIT_DIR};

use super::policy::DEFAULT_BIND_ROOT;
use super::UNITS;

/// The unit bootstrap enables and starts.
pub const SOCKET_UNIT: &str = "clawster-docker-guard.socket";

/// Writes the units and the state directory, then enables the socket: over D-Bus when
/// `systemd` is given (enable, reload, start without waiting), else as files (offline root or
/// `--no-start`). Returns the step's status and message; `Err` names what failed. (Bootstrap
/// calls [`write_files`] and enables the socket in its one batch with the other units.)
pub fn install(root: &HostRoot, systemd: Option<&dyn Systemd>) -> Result<(Status, String), String> {
    let changed = write_files(root)?;
    let (started, how) = enable_and_start(root, systemd, SOCKET_UNIT, socket_text())?;
    let st = if changed || started {
        Status::Changed
    } else {
        Status::Ok
    };
    Ok((
        st,
        format!(
            "{how}; the bot's Docker socket is {}, bind root {DEFAULT_BIND_ROOT}",
            super::DEFAULT_LISTEN
        ),
    ))
}

/// Writes both units to /etc/systemd/system and makes the state directories; returns whether
/// anything changed, `Err` names what failed.
pub fn write_files(root: &HostRoot) -> Result<bool, String> {
    let files: Vec<(&str, &[u8])> = UNITS.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    let mut changed = write_unit_files(root, &files)
        .map_err(|e| format!("{e:#}"))?
        .changed();
    // The socket's group (SocketGroup=1000) must exist before systemd can create the socket.
    changed |= crate::host::accounts::ensure_group_id(root, BOT_TASK_GROUP, BOT_TASK_ID)
        .map_err(|e| format!("{e:#}"))?
        .1
        .changed();
    let p = root.path("/var/lib/clawster");
    if !p.exists() {
        changed |= ensure_dir(&p, Ownership::root(0o700))
            .map_err(|e| format!("{e:#}"))?
            .changed();
    }
    // The bot task's state directory: its user writes there (and only there, on a read-only root).
    changed |= ensure_dir(&root.path(DEFAULT_BIND_ROOT), bind_root_ownership())
        .map_err(|e| format!("{e:#}"))?
        .changed();
    Ok(changed)
}

/// uid and gid of the bot task's user (the image's `openclaw`, `User: "1000:1000"` in the task
/// definition). The guard's socket has this group (`SocketGroup=1000` in the shipped unit), so
/// the task reaches it through its primary group, which is all ECS can give a container.
pub const BOT_TASK_ID: u32 = 1000;

/// The name given to group [`BOT_TASK_ID`] when the host has no group with that id.
pub const BOT_TASK_GROUP: &str = "clawster-bot";

/// The state directory on the host: owned by the bot task's user, 0700.
pub fn bind_root_ownership() -> Ownership {
    Ownership {
        mode: 0o700,
        uid: BOT_TASK_ID,
        gid: BOT_TASK_ID,
    }
}

/// The shipped text of [`SOCKET_UNIT`].
pub fn socket_text() -> &'static str {
    UNITS
        .iter()
        .find(|(n, _)| *n == SOCKET_UNIT)
        .map(|(_, t)| *t)
        .unwrap_or_default()
}

/// The health check: both units as shipped, the state directory present, and the socket
/// enabled (live: also listening). Returns whether it holds and what was found.
pub fn check(root: &HostRoot, systemd: Option<&dyn Systemd>) -> (bool, String) {
    let mut bad = Vec::new();
    for (name, text) in UNITS {
        let p = root.path(UNIT_DIR).join(name);
        match std::fs::read_to_string(&p) {
            Ok(t) if t == text => {}
            Ok(_) => bad.push(format!("{} differs from what we ship", p.display())),
            Err(e) => bad.push(format!("{}: {e}", p.display())),
        }
    }
    if !root.path(DEFAULT_BIND_ROOT).is_dir() {
        bad.push(format!("{DEFAULT_BIND_ROOT} is missing"));
    }
    match systemd {
        Some(sd) => match sd.active_state(SOCKET_UNIT) {
            Ok(s) if s == "active" => {}
            Ok(s) => bad.push(format!("{SOCKET_UNIT} is {s}")),
            Err(e) => bad.push(e),
        },
        None => {
            if !crate::host::systemd::enabled_as_files(root, SOCKET_UNIT, socket_text()) {
                bad.push(format!("{SOCKET_UNIT} is not enabled"));
            }
        }
    }
    if bad.is_empty() {
        (
            true,
            format!(
                "{SOCKET_UNIT} enabled; the bot's Docker socket is {}",
                super::DEFAULT_LISTEN
            ),
        )
    } else {
        (false, bad.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_install_writes_units_dir_and_enablement_and_converges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        let (st, msg) = install(&root, None).expect("install");
        assert_eq!(st, Status::Changed, "{msg}");
        for (name, text) in UNITS {
            assert_eq!(
                std::fs::read_to_string(root.path(UNIT_DIR).join(name)).expect("unit"),
                text
            );
        }
        let link = root
            .path(UNIT_DIR)
            .join("sockets.target.wants")
            .join(SOCKET_UNIT);
        assert_eq!(
            std::fs::read_link(link).expect("link"),
            std::path::Path::new(&format!("{UNIT_DIR}/{SOCKET_UNIT}"))
        );
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(root.path(DEFAULT_BIND_ROOT)).expect("state dir");
        assert_eq!(m.permissions().mode() & 0o7777, 0o700);
        use std::os::unix::fs::MetadataExt;
        assert_eq!((m.uid(), m.gid()), (BOT_TASK_ID, BOT_TASK_ID));
        assert_eq!(
            crate::host::accounts::group_with_id(&root, BOT_TASK_ID).as_deref(),
            Some(BOT_TASK_GROUP),
            "the socket's group exists"
        );
        assert!(
            socket_text().contains(&format!("SocketGroup={BOT_TASK_ID}\n")),
            "the guard's socket group must be the bot task's gid"
        );
        let (st, _) = install(&root, None).expect("again");
        assert_eq!(st, Status::Ok);
        assert!(check(&root, None).0);
        std::fs::remove_file(
            root.path(UNIT_DIR)
                .join("sockets.target.wants")
                .join(SOCKET_UNIT),
        )
        .expect("rm link");
        let (ok, msg) = check(&root, None);
        assert!(!ok && msg.contains("not enabled"), "{msg}");
    }

    #[test]
    fn units_listen_where_the_guard_defaults_and_start_it() {
        let socket = UNITS[0].1;
        assert!(socket.contains(&format!("ListenStream={}", super::super::DEFAULT_LISTEN)));
        assert!(socket.contains("WantedBy=sockets.target"));
        let service = UNITS[1].1;
        assert!(service.contains("ExecStart=/usr/local/bin/clawster-agent docker-guard serve"));
        assert!(service.contains("Type=notify"));
    }
}
