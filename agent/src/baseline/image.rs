//! `clawster-agent baseline prepare-image`: seed 000's image handoff hygiene plus the usual
//! shared-AMI checklist (facts/host.md section 7), then a secret scan, a permission re-check and
//! a passing audit, or a non-zero exit.
//!
//! Order, and the failure policy of each step:
//!
//! 1. Validate `--remove` and `--allow` paths (absolute, no `..`, not `/`). *Fatal.*
//! 2. Live host: the gateway is disabled and stopped and the enable-gateway decision forgotten
//!    (the image ships stopped). *Fatal* if it cannot be stopped (its files are about to go).
//! 3. Remove, recording each path: the OpenClaw state directory except the config and `skills/`
//!    (identity, device key and pairings in `state/openclaw.sqlite`, which `openclaw reset` does
//!    not remove; agents, transcripts, workspace, caches, token files), OpenClaw's logs and temp
//!    files, shell and REPL histories, `~/.aws`, `authorized_keys`, SSH host keys, cloud-init's
//!    instance state and logs, the SSM agent's registration, credentials and logs, the ECS agent's
//!    state and `ECS_CLUSTER`, the systemd random seed, plus every `--remove PATH`; truncate
//!    `/etc/machine-id` (empty = a new id at boot without a first-boot preset run that could
//!    re-enable units). *Fatal* on any error.
//! 4. The systemd journal, which holds the gateway's own output (its unit logs to it) and every
//!    service's: offline (`--root`), every file under `/var/log/journal` goes; live, journald is
//!    asked to rotate (SIGUSR2 over D-Bus), then every archived file goes, so only the few records
//!    written after the rotation remain (prepare-image's own). *Failed step* (the run exits
//!    non-zero, nothing else is skipped) if journald does not rotate within
//!    [`JOURNAL_ROTATE_WAIT`].
//! 5. Re-create and re-check permissions (the permissions control). *Fatal.*
//! 6. Scan the image for secrets ([`super::scan`]); each hit not under an `--allow PATH` fails
//!    the run naming file, line and kind, value masked.
//! 7. Audit; the run passes only when it is all ok and the scan found nothing.

use clawster_core::fs::{write_atomic, Ownership};
use clawster_core::logging::Status;

use super::scan::{self, Scan};
use super::{
    gateway, permissions, ApplyReport, AuditReport, BaselineError, Ctx, ENABLED_MARKER, LOG_DIR,
    STATE_DIR,
};

/// What to keep in the state directory.
pub const KEEP_IN_STATE: [&str; 2] = ["openclaw.json", "skills"];
/// Per-user files removed from every home.
pub const HOME_FILES: [&str; 12] = [
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".python_history",
    ".node_repl_history",
    ".lesshst",
    ".viminfo",
    ".wget-hsts",
    ".psql_history",
    ".mysql_history",
    ".ssh/authorized_keys",
    ".ssh/authorized_keys2",
];
/// Per-user directories removed from every home.
pub const HOME_DIRS: [&str; 2] = [".aws", ".npm/_logs"];
/// Directories whose entries all go (the directory itself stays).
pub const EMPTY_DIRS: [&str; 6] = [
    LOG_DIR,
    "/var/lib/amazon/ssm",
    "/var/log/amazon/ssm",
    "/var/lib/ecs/data",
    "/var/lib/cloud",
    "/var/log/journal/remote",
];
/// Single files removed.
pub const FILES: [&str; 4] = [
    "/var/log/cloud-init.log",
    "/var/log/cloud-init-output.log",
    "/var/lib/systemd/random-seed",
    "/var/lib/dbus/machine-id",
];

/// The persistent journal (`remote/`, journal-remote's, is emptied with [`EMPTY_DIRS`]).
pub const JOURNAL_DIR: &str = "/var/log/journal";
/// How long a live run waits for journald to rotate.
pub const JOURNAL_ROTATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What an operator runs when journald would not rotate.
const JOURNAL_MANUAL_FIX: &str = "the journal still holds this host's logs (run `journalctl --rotate && journalctl --vacuum-time=1s`, then prepare-image again)";

/// Journal files under [`JOURNAL_DIR`]`/<machine-id>/`: (host path, file name).
fn journal_files(root: &clawster_core::fs::HostRoot) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root.path(JOURNAL_DIR)) else {
        return out;
    };
    for d in rd.flatten() {
        let dir = d.file_name().to_string_lossy().into_owned();
        if dir == "remote" || !d.path().is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".journal") || name.ends_with(".journal~") {
                out.push((format!("{JOURNAL_DIR}/{dir}/{name}"), name));
            }
        }
    }
    out.sort();
    out
}

/// An archived journal file (rotated by journald, or left corrupt as `.journal~`): journald
/// never writes to it again.
fn archived_journal(name: &str) -> bool {
    name.ends_with(".journal~") || (name.ends_with(".journal") && name.contains('@'))
}

/// Step 4 (see the module doc): returns the step's status and message.
fn clean_journal(ctx: &Ctx<'_>, rm: &mut Remover<'_>) -> Result<(Status, String), BaselineError> {
    use std::os::unix::fs::MetadataExt;
    let files = journal_files(&ctx.root);
    if files.is_empty() {
        return Ok((Status::Ok, format!("no journal files under {JOURNAL_DIR}")));
    }
    if !ctx.live {
        // Nothing writes to an image that is not running: every file goes.
        for (p, _) in &files {
            rm.remove(p)?;
        }
        return Ok((
            Status::Changed,
            format!("{} journal files removed", files.len()),
        ));
    }
    let active: Vec<(String, u64)> = files
        .iter()
        .filter(|(_, n)| !archived_journal(n))
        .filter_map(|(p, _)| {
            std::fs::metadata(ctx.root.path(p))
                .ok()
                .map(|m| (p.clone(), m.ino()))
        })
        .collect();
    if !active.is_empty() {
        let sd = ctx.sd().map_err(BaselineError::Other)?;
        if let Err(e) = sd.kill_main("systemd-journald.service", libc::SIGUSR2) {
            return Ok((
                Status::Failed,
                format!("asking journald to rotate: {e}; {JOURNAL_MANUAL_FIX}"),
            ));
        }
        let start = std::time::Instant::now();
        let rotated = || {
            active.iter().all(|(p, ino)| {
                std::fs::metadata(ctx.root.path(p))
                    .map(|m| m.ino() != *ino)
                    .unwrap_or(true)
            })
        };
        while !rotated() {
            if start.elapsed() >= JOURNAL_ROTATE_WAIT {
                let files: Vec<&str> = active.iter().map(|(p, _)| p.as_str()).collect();
                return Ok((
                    Status::Failed,
                    format!(
                        "journald did not rotate {} within {JOURNAL_ROTATE_WAIT:?} of SIGUSR2; {JOURNAL_MANUAL_FIX}",
                        files.join(", ")
                    ),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let mut n = 0;
    for (p, name) in journal_files(&ctx.root) {
        if archived_journal(&name) {
            rm.remove(&p)?;
            n += 1;
        }
    }
    Ok((
        Status::Changed,
        format!("journal rotated; {n} archived journal files removed (records from before the rotation are gone)"),
    ))
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// Extra host paths to remove.
    pub remove: Vec<String>,
    /// Host paths (files or directories) the scan skips: material the operator vouches for.
    pub allow: Vec<String>,
}

/// What a run did and found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageReport {
    /// Steps.
    pub steps: ApplyReport,
    /// Host paths removed (or truncated, marked so).
    pub removed: Vec<String>,
    /// The scan.
    pub scan: Scan,
    /// The final audit.
    pub audit: AuditReport,
}

impl ImageReport {
    /// True when the image is ready: nothing found, audit ok, no failed step.
    pub fn passed(&self) -> bool {
        self.scan.hits.is_empty() && self.audit.exit_code() == 0 && !self.steps.failed()
    }
}

fn check_path(flag: &str, p: &str) -> Result<(), BaselineError> {
    let bad = !p.starts_with('/')
        || p.split('/').any(|c| c == ".." || c == ".")
        || p.trim_end_matches('/').is_empty()
        || p.contains('\0');
    if bad {
        return Err(BaselineError::Other(format!(
            "{flag} {p:?}: give an absolute path inside the image, without . or .., not /"
        )));
    }
    Ok(())
}

struct Remover<'a> {
    root: &'a clawster_core::fs::HostRoot,
    removed: Vec<String>,
}

impl Remover<'_> {
    fn remove(&mut self, host: &str) -> Result<(), BaselineError> {
        let p = self.root.path(host);
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(_) => return Ok(()),
        };
        let r = if m.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|e| clawster_core::fs::FsError::new("remove", &p, e))?;
        self.removed.push(host.to_string());
        Ok(())
    }

    fn empty_dir(&mut self, host: &str, keep: &[&str]) -> Result<(), BaselineError> {
        let Ok(rd) = std::fs::read_dir(self.root.path(host)) else {
            return Ok(());
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            if keep.contains(&n.as_str()) {
                continue;
            }
            let child = format!("{}/{n}", host.trim_end_matches('/'));
            if n == ".openclaw" {
                // A default-layout state dir inside: same rule.
                self.empty_dir(&child, keep)?;
                continue;
            }
            self.remove(&child)?;
        }
        Ok(())
    }

    fn matching(&mut self, dir: &str, pred: impl Fn(&str) -> bool) -> Result<(), BaselineError> {
        let Ok(rd) = std::fs::read_dir(self.root.path(dir)) else {
            return Ok(());
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| pred(n))
            .collect();
        names.sort();
        for n in names {
            self.remove(&format!("{}/{n}", dir.trim_end_matches('/')))?;
        }
        Ok(())
    }
}

fn homes(root: &clawster_core::fs::HostRoot) -> Vec<String> {
    let mut out = vec!["/root".to_string()];
    if let Ok(rd) = std::fs::read_dir(root.path("/home")) {
        let mut h: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| format!("/home/{}", e.file_name().to_string_lossy()))
            .collect();
        h.sort();
        out.extend(h);
    }
    out
}

/// Removes `ECS_CLUSTER` from ecs.config (bootstrap writes it at first boot).
fn drop_ecs_cluster(root: &clawster_core::fs::HostRoot) -> Result<bool, BaselineError> {
    let p = root.path("/etc/ecs/ecs.config");
    let Ok(text) = std::fs::read_to_string(&p) else {
        return Ok(false);
    };
    if !text
        .lines()
        .any(|l| l.trim_start().starts_with("ECS_CLUSTER="))
    {
        return Ok(false);
    }
    let kept: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("ECS_CLUSTER="))
        .map(|l| format!("{l}\n"))
        .collect();
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&p).map_err(|e| clawster_core::fs::FsError::new("stat", &p, e))?;
    write_atomic(
        &p,
        kept.as_bytes(),
        Ownership {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        },
    )?;
    Ok(true)
}

/// Runs prepare-image (see the module doc).
pub fn prepare(ctx: &Ctx<'_>, opts: &ImageOptions) -> Result<ImageReport, BaselineError> {
    for p in &opts.remove {
        check_path("--remove", p)?;
    }
    for p in &opts.allow {
        check_path("--allow", p)?;
    }
    let root = &ctx.root;
    let mut steps = ApplyReport::default();

    // 2. The image ships with the gateway stopped.
    let mut rm = Remover {
        root,
        removed: Vec::new(),
    };
    rm.remove(ENABLED_MARKER)?;
    if ctx.profile.openclaw() {
        gateway::apply_service(ctx, &mut steps);
        if steps.failed() {
            return Err(BaselineError::Other(
                "the gateway could not be stopped; its state is not removed while it runs".into(),
            ));
        }
    }

    // 3. Remove.
    rm.empty_dir(STATE_DIR, &KEEP_IN_STATE)?;
    for d in EMPTY_DIRS {
        let keep: &[&str] = if d == "/var/lib/cloud" {
            &["seed"]
        } else {
            &[]
        };
        rm.empty_dir(d, keep)?;
    }
    for f in FILES {
        rm.remove(f)?;
    }
    rm.matching("/tmp", |n| {
        n.starts_with("openclaw")
            || n.starts_with(".openclaw-")
            || n == "node-compile-cache"
            || (n.starts_with("systemd-private-") && n.contains("openclaw-gateway.service"))
    })?;
    rm.matching("/var/tmp", |n| {
        n.starts_with("systemd-private-") && n.contains("openclaw-gateway.service")
    })?;
    rm.matching("/etc/ssh", |n| {
        n.starts_with("ssh_host_") && (n.ends_with("_key") || n.ends_with("_key.pub"))
    })?;
    for h in homes(root) {
        for f in HOME_FILES.iter().chain(HOME_DIRS.iter()) {
            rm.remove(&format!("{h}/{f}"))?;
        }
    }
    for p in &opts.remove {
        rm.remove(p)?;
    }
    let (status, msg) = clean_journal(ctx, &mut rm)?;
    steps.record("image.journal", status, msg);
    let mut removed = rm.removed;
    if drop_ecs_cluster(root)? {
        removed.push("/etc/ecs/ecs.config: ECS_CLUSTER line".into());
    }
    let mid = root.path("/etc/machine-id");
    if std::fs::metadata(&mid)
        .map(|m| m.len() > 0)
        .unwrap_or(false)
    {
        write_atomic(&mid, b"", Ownership::root(0o444))?;
        removed.push("/etc/machine-id (truncated: a new id at the next boot)".into());
    }
    steps.record(
        "image.clean",
        if removed.is_empty() {
            Status::Ok
        } else {
            Status::Changed
        },
        format!("{} paths removed or truncated", removed.len()),
    );

    // 5. Permissions again.
    if ctx.profile.openclaw() {
        permissions::apply(ctx, &mut steps)?;
    }

    // 6. Scan.
    let scan = scan::scan_tree(root, &scan::SCAN_DIRS, &opts.allow);
    if scan.hits.is_empty() {
        steps.record(
            "image.secrets",
            Status::Ok,
            format!(
                "no secrets in {} files ({} bytes) under {}",
                scan.files,
                scan.bytes,
                scan::SCAN_DIRS.join(" ")
            ),
        );
    } else {
        let list: Vec<String> = scan
            .hits
            .iter()
            .map(|h| format!("{}:{}: {} {}", h.path, h.line, h.kind, h.masked))
            .collect();
        steps.record("image.secrets", Status::Failed, format!("{} secret(s) not removed: {} (remove them, or pass --remove PATH; --allow PATH only for material that is not a secret of this image)", scan.hits.len(), list.join("; ")));
    }

    // 7. Audit.
    let audit = super::audit(ctx);
    Ok(ImageReport {
        steps,
        removed,
        scan,
        audit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::systemd::Systemd;
    use clawster_core::fs::HostRoot;

    /// journald at its process boundary: on SIGUSR2 it renames each active file to an archived
    /// name and starts a new one, unless told to ignore the signal or to refuse the call.
    struct Journald {
        root: std::path::PathBuf,
        mode: &'static str,
    }

    impl Systemd for Journald {
        fn reload(&self) -> Result<(), String> {
            Ok(())
        }
        fn enable(&self, _: &[&str]) -> Result<Vec<String>, String> {
            Ok(vec![])
        }
        fn start_no_block(&self, _: &str) -> Result<String, String> {
            Ok(String::new())
        }
        fn active_state(&self, _: &str) -> Result<String, String> {
            Ok("active".into())
        }
        fn unit_file_state(&self, _: &str) -> Result<String, String> {
            Ok("static".into())
        }
        fn kill_main(&self, unit: &str, signal: i32) -> Result<(), String> {
            assert_eq!((unit, signal), ("systemd-journald.service", libc::SIGUSR2));
            match self.mode {
                "refuse" => Err("Access denied".into()),
                "ignore" => Ok(()),
                _ => {
                    let d = self.root.join("var/log/journal/m1");
                    std::fs::rename(d.join("system.journal"), d.join("system@s-1-2.journal"))
                        .unwrap();
                    std::fs::write(d.join("system.journal"), b"LPKSHHRH new").unwrap();
                    Ok(())
                }
            }
        }
    }

    fn run(mode: &'static str) -> (tempfile::TempDir, Status, String, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("var/log/journal/m1");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("system.journal"), b"LPKSHHRH old").unwrap();
        std::fs::write(d.join("system@s-0-1.journal"), b"LPKSHHRH older").unwrap();
        let sd = Journald {
            root: dir.path().to_path_buf(),
            mode,
        };
        let mut ctx = Ctx::offline(HostRoot::new(dir.path()), super::super::Profile::EcsHost);
        ctx.live = true;
        ctx.systemd = Ok(&sd);
        let mut rm = Remover {
            root: &ctx.root,
            removed: Vec::new(),
        };
        let (status, msg) = clean_journal(&ctx, &mut rm).unwrap();
        let removed = rm.removed;
        (dir, status, msg, removed)
    }

    #[test]
    fn live_journal_rotates_then_archived_files_go() {
        let (dir, status, msg, removed) = run("rotate");
        assert_eq!(status, Status::Changed, "{msg}");
        assert_eq!(
            removed,
            [
                "/var/log/journal/m1/system@s-0-1.journal",
                "/var/log/journal/m1/system@s-1-2.journal"
            ]
        );
        let active = std::fs::read(dir.path().join("var/log/journal/m1/system.journal")).unwrap();
        assert_eq!(
            active, b"LPKSHHRH new",
            "the active file journald writes stays"
        );
    }

    #[test]
    fn live_journal_that_does_not_rotate_fails_the_step_and_removes_nothing() {
        for (mode, says) in [("refuse", "Access denied"), ("ignore", "did not rotate")] {
            let (dir, status, msg, removed) = run(mode);
            assert_eq!(status, Status::Failed, "{mode}");
            assert!(
                msg.contains(says) && msg.contains("journalctl --rotate"),
                "{msg}"
            );
            assert!(removed.is_empty(), "{mode}: {removed:?}");
            assert!(dir
                .path()
                .join("var/log/journal/m1/system@s-0-1.journal")
                .exists());
        }
    }
}
