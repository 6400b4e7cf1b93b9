//! The window's systemd units and the sysusers.d piece that creates its client group, written
//! under a [`HostRoot`] so bootstrap (live host or an image being baked) and the host baseline
//! install the same files. Enabling goes through [`crate::host::systemd`]: only the socket is
//! enabled (`sockets.target`); the service is started by the socket or by `window open`.

use clawster_core::fs::{ensure_dir, write_atomic, FsError, HostRoot, Ownership, WriteOutcome};

use crate::host::systemd::write_unit_files;
pub use crate::host::systemd::UNIT_DIR;

/// The socket unit (enabled; pulls the service in on the first connection).
pub const SOCKET_UNIT: &str = "clawster-window.socket";
/// The service unit (socket-activated, `Type=notify`).
pub const SERVICE_UNIT: &str = "clawster-window.service";
/// The group whose members may connect (the baseline puts the `openclaw` user in it).
pub const CLIENT_GROUP: &str = "clawster-window";
/// The sysusers.d file that creates [`CLIENT_GROUP`] at boot if it is missing.
pub const SYSUSERS_CONF: &str = "/etc/sysusers.d/clawster-window.conf";

/// `systemd/clawster-window.socket` of the repository.
pub const SOCKET_TEXT: &str = include_str!("../../../systemd/clawster-window.socket");
/// `systemd/clawster-window.service` of the repository.
pub const SERVICE_TEXT: &str = include_str!("../../../systemd/clawster-window.service");
/// The sysusers.d line for the group.
pub const SYSUSERS_TEXT: &str =
    "# Clawster package maintenance window: members may ask for allowlisted installs.\ng clawster-window -\n";

/// The unit files as (name, content), in the form `host::systemd::enable_as_files` takes.
pub fn unit_files() -> Vec<(String, Vec<u8>)> {
    vec![
        (SOCKET_UNIT.to_string(), SOCKET_TEXT.as_bytes().to_vec()),
        (SERVICE_UNIT.to_string(), SERVICE_TEXT.as_bytes().to_vec()),
    ]
}

/// Writes both units to `/etc/systemd/system` and the sysusers.d file (root:root 0644, atomic,
/// unchanged files left alone). Creating the group itself is `host::accounts::add_system_group`.
pub fn write_units(root: &HostRoot) -> Result<WriteOutcome, FsError> {
    let units = write_unit_files(
        root,
        &[
            (SOCKET_UNIT, SOCKET_TEXT.as_bytes()),
            (SERVICE_UNIT, SERVICE_TEXT.as_bytes()),
        ],
    )?;
    let conf = root.path(SYSUSERS_CONF);
    let dir = conf.parent().expect("sysusers.d file has a directory");
    if !dir.exists() {
        ensure_dir(dir, Ownership::root(0o755))?;
    }
    Ok(units.or(write_atomic(
        &conf,
        SYSUSERS_TEXT.as_bytes(),
        Ownership::root(0o644),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn units_are_written_once_with_their_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        assert_eq!(write_units(&root).expect("write"), WriteOutcome::Changed);
        assert_eq!(write_units(&root).expect("again"), WriteOutcome::Unchanged);
        for p in [
            "/etc/systemd/system/clawster-window.socket",
            "/etc/systemd/system/clawster-window.service",
            SYSUSERS_CONF,
        ] {
            let m = std::fs::metadata(root.path(p)).expect(p);
            assert_eq!(m.mode() & 0o7777, 0o644, "{p}");
        }
        let made = crate::host::systemd::enable_as_files(&root, &unit_files()).expect("enable");
        assert_eq!(
            made.len(),
            1,
            "only the socket has an [Install] section: {made:?}"
        );
        assert!(crate::host::systemd::enabled_as_files(
            &root,
            SOCKET_UNIT,
            SOCKET_TEXT
        ));
    }

    #[test]
    fn socket_is_group_only_and_service_is_notify() {
        for l in [
            "SocketMode=0660",
            "SocketGroup=clawster-window",
            "SocketUser=root",
            "ListenStream=/run/clawster/window.sock",
            "Accept=no",
        ] {
            assert!(SOCKET_TEXT.lines().any(|x| x == l), "socket lacks {l}");
        }
        assert!(SERVICE_TEXT.lines().any(|x| x == "Type=notify"));
        assert!(SERVICE_TEXT
            .lines()
            .any(|x| x == "ExecStart=/usr/local/bin/clawster-agent window serve"));
        assert!(SYSUSERS_TEXT.contains("g clawster-window -"));
    }
}
