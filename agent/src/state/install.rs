//! Installing the replication on a bot host (called by `bootstrap` when it is given
//! `--state-bucket` and `--bot`): the settings file, both units and the ECS agent's drop-in,
//! then the replication enabled and started (which pulls the restore in first).

use std::path::Path;

use clawster_core::fs::{ensure_dir, write_atomic, HostRoot, Ownership};

use super::{Settings, CONFIG_PATH, STATE_DIR, WORK_DIR};
use crate::host::systemd::{enable_and_start, write_unit_files, Systemd};

/// The replication unit (enabled; it requires the restore unit).
pub const RUN_UNIT: &str = "clawster-state.service";
/// The restore unit.
pub const RESTORE_UNIT: &str = "clawster-state-restore.service";
/// The ECS agent's drop-in, relative to the unit directory.
pub const ECS_DROPIN: &str = "ecs.service.d/20-clawster-state.conf";

/// The shipped units.
pub const UNITS: [(&str, &str); 3] = [
    (
        RESTORE_UNIT,
        include_str!("../../../systemd/clawster-state-restore.service"),
    ),
    (
        RUN_UNIT,
        include_str!("../../../systemd/clawster-state.service"),
    ),
    (
        ECS_DROPIN,
        include_str!("../../../systemd/ecs.service.d/20-clawster-state.conf"),
    ),
];

/// Writes the settings, units and drop-in, makes the directories, then enables and starts the
/// replication (over D-Bus with `systemd`, else as files). Returns whether anything changed
/// and what was done.
pub fn install(
    root: &HostRoot,
    settings: &Settings,
    systemd: Option<&dyn Systemd>,
) -> Result<(bool, String), String> {
    let body = serde_json::to_vec_pretty(settings).map_err(|e| e.to_string())?;
    let etc = root.path("/etc/clawster");
    if !etc.exists() {
        ensure_dir(&etc, Ownership::root(0o755)).map_err(|e| format!("{e:#}"))?;
    }
    let mut changed = write_atomic(&root.path(CONFIG_PATH), &body, Ownership::root(0o644))
        .map_err(|e| format!("{e:#}"))?
        .changed();
    let dropin_dir = root.path("/etc/systemd/system/ecs.service.d");
    if !dropin_dir.exists() {
        ensure_dir(&dropin_dir, Ownership::root(0o755)).map_err(|e| format!("{e:#}"))?;
    }
    let files: Vec<(&str, &[u8])> = UNITS.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    changed |= write_unit_files(root, &files)
        .map_err(|e| format!("{e:#}"))?
        .changed();
    for d in ["/var/lib/clawster", WORK_DIR, STATE_DIR] {
        let p = root.path(d);
        if !Path::new(&p).exists() {
            changed |= ensure_dir(&p, Ownership::root(0o700))
                .map_err(|e| format!("{e:#}"))?
                .changed();
        }
    }
    let run_text = UNITS[1].1;
    let (started, how) = enable_and_start(root, systemd, RUN_UNIT, run_text)?;
    Ok((
        changed || started,
        format!(
            "{how}; bot {} replicated to s3://{}/state/{}/",
            settings.bot, settings.bucket, settings.bot
        ),
    ))
}
