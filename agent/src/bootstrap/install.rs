//! The `sysbox` system user, Sysbox's state directory, the run lock and the completion marker.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clawster_core::fs::{
    ensure_dir, read_optional, write_atomic, FsError, HostRoot, Ownership, WriteOutcome,
};

use super::prereqs::run_bounded;

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

/// The user's entry if present in `/etc/passwd` under `root`.
pub fn passwd_entry(root: &HostRoot, user: &str) -> Option<String> {
    let text = fs::read_to_string(root.path("/etc/passwd")).ok()?;
    text.lines()
        .find(|l| l.split(':').next() == Some(user))
        .map(str::to_string)
}

fn nologin(root: &HostRoot) -> &'static str {
    ["/usr/sbin/nologin", "/sbin/nologin"]
        .into_iter()
        .find(|p| root.path(p).exists())
        .unwrap_or("/bin/false")
}

fn used_ids(text: &str, field: usize) -> Vec<u32> {
    text.lines()
        .filter_map(|l| l.split(':').nth(field)?.parse().ok())
        .collect()
}

/// Appends lines to an account file, keeping its owner and mode (new files: root 0644).
fn append_line(path: &Path, line: &str, default: Ownership) -> Result<(), FsError> {
    let existing = read_optional(path)?;
    let own = match fs::metadata(path) {
        Ok(m) => Ownership {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        },
        Err(_) => default,
    };
    let mut text = existing
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    write_atomic(path, text.as_bytes(), own)?;
    Ok(())
}

/// Adds the `sysbox` system user (and group) by editing the account files under `root`, the way
/// `systemd-sysusers --root` would: a free system id (999 downwards), no login shell, no home.
pub fn add_user_files(root: &HostRoot) -> Result<WriteOutcome, FsError> {
    if passwd_entry(root, SYSBOX_USER).is_some() {
        return Ok(WriteOutcome::Unchanged);
    }
    let etc = root.path("/etc");
    if !etc.exists() {
        ensure_dir(&etc, Ownership::root(0o755))?;
    }
    let passwd = fs::read_to_string(root.path("/etc/passwd")).unwrap_or_default();
    let group = fs::read_to_string(root.path("/etc/group")).unwrap_or_default();
    let uids = used_ids(&passwd, 2);
    let gids = used_ids(&group, 2);
    let id = (100..1000u32)
        .rev()
        .find(|i| !uids.contains(i) && !gids.contains(i))
        .ok_or_else(|| {
            FsError::new(
                "add user to",
                root.path("/etc/passwd"),
                std::io::Error::other("no free system id in 100..999"),
            )
        })?;
    let existing_group = group
        .lines()
        .find(|l| l.split(':').next() == Some(SYSBOX_USER));
    let gid = match existing_group.and_then(|l| l.split(':').nth(2)?.parse::<u32>().ok()) {
        Some(g) => g,
        None => {
            append_line(
                &root.path("/etc/group"),
                &format!("{SYSBOX_USER}:x:{id}:"),
                Ownership::root(0o644),
            )?;
            if root.path("/etc/gshadow").exists() {
                append_line(
                    &root.path("/etc/gshadow"),
                    &format!("{SYSBOX_USER}:!::"),
                    Ownership::root(0o640),
                )?;
            }
            id
        }
    };
    if root.path("/etc/shadow").exists() {
        append_line(
            &root.path("/etc/shadow"),
            &format!("{SYSBOX_USER}:!*:::::::"),
            Ownership::root(0o640),
        )?;
    }
    // passwd last: the user "exists" only once every other file has its line.
    append_line(
        &root.path("/etc/passwd"),
        &format!(
            "{SYSBOX_USER}:x:{id}:{gid}:Sysbox:/nonexistent:{}",
            nologin(root)
        ),
        Ownership::root(0o644),
    )?;
    Ok(WriteOutcome::Changed)
}

/// Adds the user on the live host with `useradd` (locking, nscd and shadow handled by shadow-utils);
/// falls back to editing the files when useradd is absent.
pub fn add_user_live(root: &HostRoot) -> Result<WriteOutcome, String> {
    if passwd_entry(root, SYSBOX_USER).is_some() {
        return Ok(WriteOutcome::Unchanged);
    }
    match super::prereqs::find_tool(root, "useradd") {
        Some(useradd) => {
            let mut c = Command::new(useradd);
            c.args([
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                nologin(root),
                "--user-group",
                "--",
                SYSBOX_USER,
            ]);
            run_bounded(&mut c, Duration::from_secs(60))?;
            Ok(WriteOutcome::Changed)
        }
        None => add_user_files(root).map_err(|e| format!("{e:#}")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_files_get_a_free_system_id_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        fs::create_dir_all(root.path("/etc")).expect("mkdir");
        fs::write(
            root.path("/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n_x:x:999:999::/:/bin/false\n",
        )
        .expect("seed");
        fs::write(root.path("/etc/group"), "root:x:0:\n_x:x:999:\n").expect("seed");
        fs::write(root.path("/etc/shadow"), "root:*::::::::\n").expect("seed");
        assert_eq!(add_user_files(&root).expect("add"), WriteOutcome::Changed);
        let line = passwd_entry(&root, "sysbox").expect("entry");
        assert!(line.starts_with("sysbox:x:998:998:"), "{line}");
        assert!(fs::read_to_string(root.path("/etc/shadow"))
            .expect("shadow")
            .contains("sysbox:!*:"));
        assert_eq!(add_user_files(&root).expect("add"), WriteOutcome::Unchanged);
    }
}
