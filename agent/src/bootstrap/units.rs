//! The Sysbox units and the Docker drop-in.
//!
//! The drop-in `docker.service.d/10-clawster-sysbox.conf` makes Docker pull Sysbox in and start
//! after it, so Sysbox is active whenever Docker is: this replaces the seed's background polling
//! loop. Enabling and starting go through [`crate::host::systemd`].

use clawster_core::fs::{ensure_dir, write_atomic, FsError, HostRoot, Ownership, WriteOutcome};

use crate::host::systemd::write_unit_files;
pub use crate::host::systemd::UNIT_DIR;
/// The Docker drop-in (host path).
pub const DOCKER_DROPIN: &str = "/etc/systemd/system/docker.service.d/10-clawster-sysbox.conf";
/// Its content, shipped in the repository as `systemd/docker.service.d/10-clawster-sysbox.conf`.
pub const DOCKER_DROPIN_TEXT: &str =
    include_str!("../../../systemd/docker.service.d/10-clawster-sysbox.conf");
/// The unit that pulls in the two daemons.
pub const MAIN_UNIT: &str = "sysbox.service";

/// Writes the units (root:root 0644) and the Docker drop-in.
pub fn write_units(root: &HostRoot, units: &[(String, Vec<u8>)]) -> Result<WriteOutcome, FsError> {
    let files: Vec<(&str, &[u8])> = units
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_slice()))
        .collect();
    let mut outcome = write_unit_files(root, &files)?;
    let dropin = root.path(DOCKER_DROPIN);
    let ddir = dropin.parent().expect("drop-in has a parent");
    if !ddir.exists() {
        ensure_dir(ddir, Ownership::root(0o755))?;
    }
    outcome = outcome.or(write_atomic(
        &dropin,
        DOCKER_DROPIN_TEXT.as_bytes(),
        Ownership::root(0o644),
    )?);
    Ok(outcome)
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
