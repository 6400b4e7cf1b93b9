//! The Sysbox units and the Docker drop-in.
//!
//! The drop-in `docker.service.d/10-clawster-sysbox.conf` makes Docker pull Sysbox in and start
//! after it, so Sysbox is active whenever Docker is: this replaces the seed's background polling
//! loop. Enabling and starting go through [`crate::host::systemd`].

use std::path::{Path, PathBuf};

use clawster_core::fs::{ensure_dir, write_atomic_all, FsError, HostRoot, Ownership, WriteOutcome};

pub use crate::host::systemd::UNIT_DIR;
/// The Docker drop-in (host path).
pub const DOCKER_DROPIN: &str = "/etc/systemd/system/docker.service.d/10-clawster-sysbox.conf";
/// Its content, shipped in the repository as `systemd/docker.service.d/10-clawster-sysbox.conf`.
pub const DOCKER_DROPIN_TEXT: &str =
    include_str!("../../../systemd/docker.service.d/10-clawster-sysbox.conf");
/// The unit that pulls in the two daemons.
pub const MAIN_UNIT: &str = "sysbox.service";

/// Writes the units (root:root 0644) and the Docker drop-in, committed together (one batch of
/// concurrent syncs instead of two syncs per file in a row; see [`write_atomic_all`]).
pub fn write_units(root: &HostRoot, units: &[(String, Vec<u8>)]) -> Result<WriteOutcome, FsError> {
    let dir = root.path(UNIT_DIR);
    if !dir.exists() {
        ensure_dir(&dir, Ownership::root(0o755))?;
    }
    let dropin = root.path(DOCKER_DROPIN);
    let ddir = dropin.parent().expect("drop-in has a parent");
    if !ddir.exists() {
        ensure_dir(ddir, Ownership::root(0o755))?;
    }
    let paths: Vec<PathBuf> = units.iter().map(|(n, _)| dir.join(n)).collect();
    let own = Ownership::root(0o644);
    let mut files: Vec<(&Path, &[u8], Ownership)> = paths
        .iter()
        .zip(units)
        .map(|(p, (_, t))| (p.as_path(), t.as_slice(), own))
        .collect();
    files.push((&dropin, DOCKER_DROPIN_TEXT.as_bytes(), own));
    Ok(write_atomic_all(&files)?
        .into_iter()
        .fold(WriteOutcome::Unchanged, WriteOutcome::or))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropin_pulls_sysbox_in() {
        assert!(DOCKER_DROPIN_TEXT.contains("Wants=sysbox.service"));
        assert!(DOCKER_DROPIN_TEXT.contains("After=sysbox.service"));
        // Wants= only: a Sysbox failure must never keep Docker from starting.
        assert!(!DOCKER_DROPIN_TEXT
            .lines()
            .any(|l| l.starts_with("Requires=") || l.starts_with("BindsTo=")));
    }
}
