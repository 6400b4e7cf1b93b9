//! Users and groups, the process boundary: system users with their own group, added with
//! `useradd` on a live host (shadow-utils does the locking and nscd) and as edits of the account
//! files under `--root` (the way `systemd-sysusers --root` would).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clawster_core::fs::{
    ensure_dir, read_optional, write_atomic, FsError, HostRoot, Ownership, WriteOutcome,
};

use super::packages::{find_tool, run_bounded};

/// A system user: no login shell, no password, a group of the same name.
#[derive(Debug, Clone, Copy)]
pub struct SystemUser<'a> {
    /// Login name (also the group's).
    pub name: &'a str,
    /// The GECOS field.
    pub gecos: &'a str,
    /// Home directory (`/nonexistent` when it has none).
    pub home: &'a str,
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

/// Adds a system user (and its group) by editing the account files under `root`, the way
/// `systemd-sysusers --root` would: a free system id (999 downwards), no login shell, no home.
pub fn add_system_user_files(
    root: &HostRoot,
    user: &SystemUser<'_>,
) -> Result<WriteOutcome, FsError> {
    if passwd_entry(root, user.name).is_some() {
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
        .find(|l| l.split(':').next() == Some(user.name));
    let gid = match existing_group.and_then(|l| l.split(':').nth(2)?.parse::<u32>().ok()) {
        Some(g) => g,
        None => {
            append_line(
                &root.path("/etc/group"),
                &format!("{}:x:{id}:", user.name),
                Ownership::root(0o644),
            )?;
            if root.path("/etc/gshadow").exists() {
                append_line(
                    &root.path("/etc/gshadow"),
                    &format!("{}:!::", user.name),
                    Ownership::root(0o640),
                )?;
            }
            id
        }
    };
    if root.path("/etc/shadow").exists() {
        append_line(
            &root.path("/etc/shadow"),
            &format!("{}:!*:::::::", user.name),
            Ownership::root(0o640),
        )?;
    }
    // passwd last: the user "exists" only once every other file has its line.
    append_line(
        &root.path("/etc/passwd"),
        &format!(
            "{}:x:{id}:{gid}:{}:{}:{}",
            user.name,
            user.gecos,
            user.home,
            nologin(root)
        ),
        Ownership::root(0o644),
    )?;
    Ok(WriteOutcome::Changed)
}

/// Adds the user on the live host with `useradd` (locking, nscd and shadow handled by shadow-utils);
/// falls back to editing the files when useradd is absent.
pub fn add_system_user_live(
    root: &HostRoot,
    user: &SystemUser<'_>,
) -> Result<WriteOutcome, String> {
    if passwd_entry(root, user.name).is_some() {
        return Ok(WriteOutcome::Unchanged);
    }
    match find_tool(root, "useradd") {
        Some(useradd) => {
            let mut c = Command::new(useradd);
            c.args([
                "--system",
                "--no-create-home",
                "--home-dir",
                user.home,
                "--shell",
                nologin(root),
                "--user-group",
                "--",
                user.name,
            ]);
            run_bounded(&mut c, Duration::from_secs(60))?;
            Ok(WriteOutcome::Changed)
        }
        None => add_system_user_files(root, user).map_err(|e| format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSBOX: SystemUser<'static> = SystemUser {
        name: "sysbox",
        gecos: "Sysbox",
        home: "/nonexistent",
    };

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
        assert_eq!(
            add_system_user_files(&root, &SYSBOX).expect("add"),
            WriteOutcome::Changed
        );
        let line = passwd_entry(&root, "sysbox").expect("entry");
        assert!(line.starts_with("sysbox:x:998:998:"), "{line}");
        assert!(fs::read_to_string(root.path("/etc/shadow"))
            .expect("shadow")
            .contains("sysbox:!*:"));
        assert_eq!(
            add_system_user_files(&root, &SYSBOX).expect("add"),
            WriteOutcome::Unchanged
        );
    }
}
