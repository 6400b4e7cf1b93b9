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

/// The group's line in `/etc/group` under `root`, if present.
pub fn group_entry(root: &HostRoot, group: &str) -> Option<String> {
    let text = fs::read_to_string(root.path("/etc/group")).ok()?;
    text.lines()
        .find(|l| l.split(':').next() == Some(group))
        .map(str::to_string)
}

/// The group's id from `/etc/group` under `root`.
pub fn group_id(root: &HostRoot, group: &str) -> Option<u32> {
    group_entry(root, group)?.split(':').nth(2)?.parse().ok()
}

/// The name of the group with id `gid` in `/etc/group` under `root`, if any.
pub fn group_with_id(root: &HostRoot, gid: u32) -> Option<String> {
    let text = fs::read_to_string(root.path("/etc/group")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse() == Ok(gid)).then(|| f[0].to_string())
    })
}

/// Makes sure a group with id `gid` exists, adding `name` with that id when none does (by editing
/// `/etc/group`, and `/etc/gshadow` when it exists, like [`add_system_group_files`]). A group that
/// already has the id is kept whatever its name (on Amazon Linux, gid 1000 is `ec2-user`'s).
/// Returns the group's name and whether anything changed.
pub fn ensure_group_id(
    root: &HostRoot,
    name: &str,
    gid: u32,
) -> Result<(String, WriteOutcome), FsError> {
    if let Some(existing) = group_with_id(root, gid) {
        return Ok((existing, WriteOutcome::Unchanged));
    }
    if group_entry(root, name).is_some() {
        return Err(FsError::new(
            "add group to",
            root.path("/etc/group"),
            std::io::Error::other(format!("group {name} exists with another id than {gid}")),
        ));
    }
    let gshadow = root.path("/etc/gshadow");
    if gshadow.exists() {
        append_line(&gshadow, &format!("{name}:!::"), Ownership::root(0o640))?;
    }
    append_line(
        &root.path("/etc/group"),
        &format!("{name}:x:{gid}:"),
        Ownership::root(0o644),
    )?;
    Ok((name.to_string(), WriteOutcome::Changed))
}

/// The group's listed (supplementary) members from `/etc/group` under `root`.
pub fn group_members(root: &HostRoot, group: &str) -> Vec<String> {
    group_entry(root, group)
        .and_then(|l| l.split(':').nth(3).map(str::to_string))
        .map(|m| {
            m.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn free_system_gid(root: &HostRoot) -> Result<u32, FsError> {
    let group = fs::read_to_string(root.path("/etc/group")).unwrap_or_default();
    let passwd = fs::read_to_string(root.path("/etc/passwd")).unwrap_or_default();
    let gids = used_ids(&group, 2);
    let uids = used_ids(&passwd, 2);
    (100..1000u32)
        .rev()
        .find(|i| !gids.contains(i) && !uids.contains(i))
        .ok_or_else(|| {
            FsError::new(
                "add group to",
                root.path("/etc/group"),
                std::io::Error::other("no free system id in 100..999"),
            )
        })
}

/// Adds a system group with no members by editing `/etc/group` (and `/etc/gshadow` when it
/// exists) under `root`, the way `systemd-sysusers --root` would. Idempotent.
pub fn add_system_group_files(root: &HostRoot, group: &str) -> Result<WriteOutcome, FsError> {
    if group_entry(root, group).is_some() {
        return Ok(WriteOutcome::Unchanged);
    }
    let etc = root.path("/etc");
    if !etc.exists() {
        ensure_dir(&etc, Ownership::root(0o755))?;
    }
    let gid = free_system_gid(root)?;
    if root.path("/etc/gshadow").exists() {
        append_line(
            &root.path("/etc/gshadow"),
            &format!("{group}:!::"),
            Ownership::root(0o640),
        )?;
    }
    // /etc/group last: the group "exists" once every file has its line.
    append_line(
        &root.path("/etc/group"),
        &format!("{group}:x:{gid}:"),
        Ownership::root(0o644),
    )?;
    Ok(WriteOutcome::Changed)
}

/// Adds a system group on the live host with `groupadd --system` (locking and nscd handled by
/// shadow-utils); falls back to editing the files when groupadd is absent. Idempotent.
pub fn add_system_group_live(root: &HostRoot, group: &str) -> Result<WriteOutcome, String> {
    if group_entry(root, group).is_some() {
        return Ok(WriteOutcome::Unchanged);
    }
    match find_tool(root, "groupadd") {
        Some(groupadd) => {
            let mut c = Command::new(groupadd);
            c.args(["--system", "--", group]);
            run_bounded(&mut c, Duration::from_secs(60))?;
            Ok(WriteOutcome::Changed)
        }
        None => add_system_group_files(root, group).map_err(|e| format!("{e:#}")),
    }
}

/// [`add_system_group_live`] on the running host, [`add_system_group_files`] under another root.
pub fn add_system_group(root: &HostRoot, group: &str) -> Result<WriteOutcome, String> {
    if root.is_live() {
        add_system_group_live(root, group)
    } else {
        add_system_group_files(root, group).map_err(|e| format!("{e:#}"))
    }
}

fn set_group_members(
    root: &HostRoot,
    file: &str,
    group: &str,
    member_field: usize,
    user: &str,
) -> Result<WriteOutcome, FsError> {
    let path = root.path(file);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(WriteOutcome::Unchanged);
    };
    let meta = fs::metadata(&path).map_err(|e| FsError::new("stat", &path, e))?;
    let own = Ownership {
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut changed = false;
    let mut out = String::with_capacity(text.len() + user.len() + 1);
    for line in text.lines() {
        let mut fields: Vec<String> = line.split(':').map(str::to_string).collect();
        if fields.first().map(String::as_str) == Some(group) && fields.len() > member_field {
            let members = &mut fields[member_field];
            if !members.split(',').any(|m| m == user) {
                if !members.is_empty() {
                    members.push(',');
                }
                members.push_str(user);
                changed = true;
            }
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    if !changed {
        return Ok(WriteOutcome::Unchanged);
    }
    write_atomic(&path, out.as_bytes(), own)
}

/// Adds `user` to the supplementary members of `group` by editing `/etc/group` (and
/// `/etc/gshadow`) under `root`. Idempotent; the group must exist.
pub fn add_user_to_group_files(
    root: &HostRoot,
    user: &str,
    group: &str,
) -> Result<WriteOutcome, FsError> {
    if group_entry(root, group).is_none() {
        return Err(FsError::new(
            "add a member to",
            root.path("/etc/group"),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("group {group} does not exist"),
            ),
        ));
    }
    let g = set_group_members(root, "/etc/group", group, 3, user)?;
    let s = set_group_members(root, "/etc/gshadow", group, 3, user)?;
    Ok(g.or(s))
}

/// Adds `user` to `group` on the live host with `gpasswd -a` (or `usermod -a -G`), falling back
/// to the files. Idempotent; both must exist.
pub fn add_user_to_group_live(
    root: &HostRoot,
    user: &str,
    group: &str,
) -> Result<WriteOutcome, String> {
    if group_members(root, group).iter().any(|m| m == user) {
        return Ok(WriteOutcome::Unchanged);
    }
    if group_entry(root, group).is_none() {
        return Err(format!("group {group} does not exist"));
    }
    if passwd_entry(root, user).is_none() {
        return Err(format!("user {user} does not exist"));
    }
    if let Some(gpasswd) = find_tool(root, "gpasswd") {
        let mut c = Command::new(gpasswd);
        c.args(["-a", user, group]);
        run_bounded(&mut c, Duration::from_secs(60))?;
    } else if let Some(usermod) = find_tool(root, "usermod") {
        let mut c = Command::new(usermod);
        c.args(["-a", "-G", group, "--", user]);
        run_bounded(&mut c, Duration::from_secs(60))?;
    } else {
        return add_user_to_group_files(root, user, group).map_err(|e| format!("{e:#}"));
    }
    Ok(WriteOutcome::Changed)
}

/// [`add_user_to_group_live`] on the running host, [`add_user_to_group_files`] under another root.
pub fn add_user_to_group(root: &HostRoot, user: &str, group: &str) -> Result<WriteOutcome, String> {
    if root.is_live() {
        add_user_to_group_live(root, user, group)
    } else {
        add_user_to_group_files(root, user, group).map_err(|e| format!("{e:#}"))
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
    fn a_group_id_is_made_once_and_an_existing_one_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        fs::create_dir_all(root.path("/etc")).expect("mkdir");
        fs::write(root.path("/etc/group"), "root:x:0:\n").expect("seed");
        fs::write(root.path("/etc/gshadow"), "root:*::\n").expect("seed");
        let (name, o) = ensure_group_id(&root, "clawster-bot", 1000).expect("add");
        assert_eq!((name.as_str(), o), ("clawster-bot", WriteOutcome::Changed));
        let (_, o) = ensure_group_id(&root, "clawster-bot", 1000).expect("again");
        assert_eq!(o, WriteOutcome::Unchanged);
        assert_eq!(group_id(&root, "clawster-bot"), Some(1000));
        assert!(fs::read_to_string(root.path("/etc/gshadow"))
            .expect("gshadow")
            .contains("clawster-bot:!::"));
        // Amazon Linux: gid 1000 is ec2-user's group; it is used as it is.
        fs::write(root.path("/etc/group"), "root:x:0:\nec2-user:x:1000:\n").expect("seed");
        assert_eq!(
            ensure_group_id(&root, "clawster-bot", 1000).expect("kept"),
            ("ec2-user".to_string(), WriteOutcome::Unchanged)
        );
        // Our name taken by another id: refused, naming it.
        fs::write(root.path("/etc/group"), "clawster-bot:x:1001:\n").expect("seed");
        let e = ensure_group_id(&root, "clawster-bot", 1000).expect_err("taken");
        let why = std::error::Error::source(&e)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            why.contains("clawster-bot exists with another id"),
            "{e}: {why}"
        );
    }

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

    #[test]
    fn group_files_converge_and_members_are_added_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        fs::create_dir_all(root.path("/etc")).expect("mkdir");
        fs::write(
            root.path("/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nopenclaw:x:999:999::/var/lib/openclaw:/bin/false\n",
        )
        .expect("seed");
        fs::write(root.path("/etc/group"), "root:x:0:\nopenclaw:x:999:\n").expect("seed");
        fs::write(root.path("/etc/gshadow"), "root:*::\nopenclaw:!::\n").expect("seed");
        assert_eq!(
            add_system_group_files(&root, "clawster-window").expect("add"),
            WriteOutcome::Changed
        );
        assert_eq!(group_id(&root, "clawster-window"), Some(998));
        assert_eq!(
            add_system_group(&root, "clawster-window").expect("again"),
            WriteOutcome::Unchanged
        );
        assert!(group_members(&root, "clawster-window").is_empty());
        assert_eq!(
            add_user_to_group(&root, "openclaw", "clawster-window").expect("member"),
            WriteOutcome::Changed
        );
        assert_eq!(
            add_user_to_group_files(&root, "openclaw", "clawster-window").expect("again"),
            WriteOutcome::Unchanged
        );
        add_user_to_group_files(&root, "root", "clawster-window").expect("second member");
        assert_eq!(
            group_members(&root, "clawster-window"),
            vec!["openclaw".to_string(), "root".to_string()]
        );
        let gshadow = fs::read_to_string(root.path("/etc/gshadow")).expect("gshadow");
        assert!(
            gshadow.contains("clawster-window:!::openclaw,root\n"),
            "{gshadow}"
        );
        // Other groups untouched.
        assert!(group_members(&root, "openclaw").is_empty());
        let err = add_user_to_group_files(&root, "openclaw", "no-such-group").expect_err("absent");
        assert!(format!("{err:#}").contains("add a member to"), "{err:#}");
    }
}
