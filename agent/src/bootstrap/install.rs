//! The `sysbox` system user, Sysbox's state directory, the run lock and the completion marker.

use std::fs::{self, File, OpenOptions};

use clawster_core::fs::{
    ensure_dir, read_optional, write_atomic, FsError, HostRoot, Ownership, WriteOutcome,
};

use crate::host::accounts::SystemUser;

/// Sysbox's FUSE mount point.
pub const SYSBOXFS_DIR: &str = "/var/lib/sysboxfs";
/// Our state directory.
pub const STATE_DIR: &str = "/var/lib/clawster";
/// The completion marker, written last.
pub const MARKER: &str = "/var/lib/clawster/bootstrap.done";
/// The lock that keeps two bootstraps from running at once.
pub const LOCK: &str = "/var/lib/clawster/bootstrap.lock";
/// The user Sysbox runs its helpers as.
pub const SYSBOX_USER: &str = "sysbox";
/// Its account: a system user without a home.
pub const SYSBOX_ACCOUNT: SystemUser<'static> = SystemUser {
    name: SYSBOX_USER,
    gecos: "Sysbox",
    home: "/nonexistent",
};

/// Makes sure the state directory exists and takes the run lock (released when the file closes).
pub fn lock(root: &HostRoot) -> Result<File, FsError> {
    let dir = root.path(STATE_DIR);
    ensure_dir(&dir, Ownership::root(0o755))?;
    let path = root.path(LOCK);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| FsError::new("open", &path, e))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|e| {
        FsError::new(
            "lock (is another bootstrap running?)",
            &path,
            std::io::Error::from(e),
        )
    })?;
    Ok(f)
}

/// `/var/lib/sysboxfs`, root:root 0755 like the package's postinst makes it.
pub fn sysboxfs_dir(root: &HostRoot) -> Result<WriteOutcome, FsError> {
    ensure_dir(&root.path(SYSBOXFS_DIR), Ownership::root(0o755))
}

/// The marker's content for this run.
pub fn marker_text(sha256: &str, cluster: Option<&str>) -> String {
    let v = serde_json::json!({
        "agent_version": clawster_core::VERSION,
        "sysbox_version": super::SYSBOX_VERSION,
        "sysbox_sha256": sha256,
        "ecs_cluster": cluster,
    });
    format!("{v}\n")
}

/// Removes a marker that does not describe this run (so a killed run never leaves a marker that
/// claims a different, complete install). Returns true when one was removed.
pub fn clear_stale_marker(root: &HostRoot, wanted: &str) -> Result<bool, FsError> {
    let path = root.path(MARKER);
    match read_optional(&path)? {
        Some(b) if b != wanted.as_bytes() => {
            fs::remove_file(&path).map_err(|e| FsError::new("remove", &path, e))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Writes the marker (root 0644).
pub fn write_marker(root: &HostRoot, text: &str) -> Result<WriteOutcome, FsError> {
    write_atomic(&root.path(MARKER), text.as_bytes(), Ownership::root(0o644))
}
