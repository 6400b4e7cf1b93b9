//! Control `permissions` [seed 000: restrictive directories]: state, workspace, secrets and logs
//! owner-only for openclaw (0700, and nothing inside readable by group or others), build logs
//! root-only, the config directory root:openclaw 0750 and the config root:openclaw 0640 (readable
//! by the gateway, writable only by root; see [`super::gateway`]).
//!
//! Apply fixes the directories and walks the state and log trees (never following symlinks):
//! every entry gets owner openclaw and loses its group and other bits.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use clawster_core::fs::{ensure_dir, FsError, HostRoot, Ownership, WriteOutcome};

use super::{
    user_ids, ApplyReport, BaselineError, Ctx, Finding, BUILD_LOG_DIR, CONFIG, CONFIG_DIR, LOG_DIR,
    SECRETS_DIR, STATE_DIR, USER, WORKSPACE_DIR,
};

const ID: &str = "permissions";

/// Directories and their ownership: (path, mode, owned by openclaw (else root), group openclaw).
pub const DIRS: [(&str, u32, bool, bool); 6] = [
    (STATE_DIR, 0o700, true, true),
    (WORKSPACE_DIR, 0o700, true, true),
    (SECRETS_DIR, 0o700, true, true),
    (LOG_DIR, 0o700, true, true),
    (BUILD_LOG_DIR, 0o700, false, false),
    (CONFIG_DIR, 0o750, false, true),
];

fn ids(root: &HostRoot) -> Result<(u32, u32), BaselineError> {
    user_ids(root, USER).ok_or_else(|| {
        BaselineError::Other("user openclaw does not exist (the users control runs first)".into())
    })
}

fn own_for(uid: u32, gid: u32, mode: u32, by_user: bool, by_group: bool) -> Ownership {
    Ownership {
        mode,
        uid: if by_user { uid } else { 0 },
        gid: if by_group { gid } else { 0 },
    }
}

/// Makes every entry under `dir` owned by uid:gid with no group/other bits; returns how many it
/// changed. Symlinks are left alone (never followed).
pub fn tighten_tree(dir: &Path, uid: u32, gid: u32) -> Result<usize, FsError> {
    let mut changed = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for e in rd {
        let e = e.map_err(|e| FsError::new("list", dir, e))?;
        let p = e.path();
        let m = std::fs::symlink_metadata(&p).map_err(|e| FsError::new("stat", &p, e))?;
        if m.file_type().is_symlink() {
            continue;
        }
        if m.uid() != uid || m.gid() != gid {
            std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
                .map_err(|e| FsError::new("set owner of", &p, e))?;
            changed += 1;
        }
        let mode = m.mode() & 0o7777;
        let want = mode & 0o700;
        if mode != want {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(want))
                .map_err(|e| FsError::new("set mode of", &p, e))?;
            changed += 1;
        }
        if m.is_dir() {
            changed += tighten_tree(&p, uid, gid)?;
        }
    }
    Ok(changed)
}

/// Entries under `dir` (symlinks skipped) not owned by `uid` or with any of the `forbidden` mode
/// bits (first `limit`), and how many there are.
pub fn loose_entries(dir: &Path, uid: u32, forbidden: u32, limit: usize) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.file_type().is_symlink() {
                continue;
            }
            if m.uid() != uid || m.mode() & forbidden != 0 {
                n += 1;
                if out.len() < limit {
                    out.push(format!(
                        "{} {:o} uid {}",
                        p.display(),
                        m.mode() & 0o7777,
                        m.uid()
                    ));
                }
            }
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    (out, n)
}

/// Creates or fixes the directories and tightens the state and log trees.
pub fn apply(ctx: &Ctx<'_>, rep: &mut ApplyReport) -> Result<(), BaselineError> {
    let (uid, gid) = ids(&ctx.root)?;
    let mut o = WriteOutcome::Unchanged;
    for (p, mode, u, g) in DIRS {
        o = o.or(ensure_dir(
            &ctx.root.path(p),
            own_for(uid, gid, mode, u, g),
        )?);
    }
    let mut n = 0;
    for d in [STATE_DIR, LOG_DIR] {
        n += tighten_tree(&ctx.root.path(d), uid, gid)?;
    }
    if n > 0 {
        o = WriteOutcome::Changed;
    }
    rep.outcome(
        ID,
        o,
        format!(
            "{STATE_DIR}, {WORKSPACE_DIR}, {SECRETS_DIR}, {LOG_DIR} 0700 openclaw; {BUILD_LOG_DIR} 0700 root; {CONFIG_DIR} 0750 root:openclaw; {n} entries tightened"
        ),
    );
    Ok(())
}

/// Checks the directories, the config file and the trees.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    let Some((uid, gid)) = user_ids(&ctx.root, USER) else {
        return Finding::failed(
            ID,
            "user openclaw does not exist",
            "clawster-agent baseline apply",
        );
    };
    let mut problems = Vec::new();
    let check = |p: &str, want: Ownership, dir: bool, problems: &mut Vec<String>| {
        match std::fs::symlink_metadata(ctx.root.path(p)) {
            Err(_) => problems.push(format!("{p} missing")),
            Ok(m) => {
                if m.is_dir() != dir || m.file_type().is_symlink() {
                    problems.push(format!(
                        "{p} is not a {}",
                        if dir { "directory" } else { "regular file" }
                    ));
                } else if m.mode() & 0o7777 != want.mode
                    || m.uid() != want.uid
                    || m.gid() != want.gid
                {
                    problems.push(format!(
                        "{p} is {:o} {}:{}, expected {:o} {}:{}",
                        m.mode() & 0o7777,
                        m.uid(),
                        m.gid(),
                        want.mode,
                        want.uid,
                        want.gid
                    ));
                }
            }
        }
    };
    for (p, mode, u, g) in DIRS {
        check(p, own_for(uid, gid, mode, u, g), true, &mut problems);
    }
    check(
        CONFIG,
        own_for(uid, gid, 0o640, false, true),
        false,
        &mut problems,
    );
    for d in [STATE_DIR, LOG_DIR] {
        let (list, n) = loose_entries(&ctx.root.path(d), uid, 0o077, 3);
        if n > 0 {
            problems.push(format!(
                "{n} entries under {d} not owner-only for openclaw, e.g. {}",
                list.join(", ")
            ));
        }
    }
    Finding::from_problems(
        ID,
        format!(
            "{STATE_DIR}, {WORKSPACE_DIR}, {SECRETS_DIR}, {LOG_DIR} 0700 openclaw with owner-only contents; {BUILD_LOG_DIR} 0700 root; {CONFIG} 0640 root:openclaw"
        ),
        &problems,
        "clawster-agent baseline apply (fixes owners and modes)",
    )
}
