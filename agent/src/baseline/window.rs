//! Control `window` [seed 000: OpenClaw cannot install OS packages (no sudo, sandboxed gateway);
//! a time-limited, allowlisted maintenance window opened by an operator over SSM]: the window
//! service's units (from [`crate::window::units`], the socket enabled), the `clawster-window`
//! group with openclaw in it (the socket is 0660 root:clawster-window), and no sudo rights for
//! openclaw: no sudoers line naming it or its group, no membership in sudo, wheel or admin.
//!
//! Apply installs and enables the units and the group membership; it never edits sudoers (a
//! grant found there fails the control and names the file).

use clawster_core::fs::WriteOutcome;
use clawster_core::logging::Status;

use super::{ApplyReport, Ctx, Finding, USER};
use crate::host::accounts;
use crate::host::systemd::{self as sd_files, UNIT_DIR};
use crate::window::units::{self, CLIENT_GROUP, SOCKET_UNIT};

const ID: &str = "window";
/// Groups that grant sudo on Debian/Ubuntu and Amazon Linux.
pub const ADMIN_GROUPS: [&str; 3] = ["sudo", "wheel", "admin"];

/// Sudo grants for openclaw: sudoers lines naming it or its group, admin group memberships.
pub fn sudo_grants(ctx: &Ctx<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut files = vec!["/etc/sudoers".to_string()];
    if let Ok(rd) = std::fs::read_dir(ctx.root.path("/etc/sudoers.d")) {
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| format!("/etc/sudoers.d/{n}")));
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(ctx.root.path(&f)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('#') || t.is_empty() {
                continue;
            }
            let first = t.split_whitespace().next().unwrap_or("");
            let names = first.split(',').any(|n| n == USER || n == "%openclaw");
            if names || t.split([' ', '\t', ',', '=']).any(|w| w == USER) && t.contains("ALL") {
                out.push(format!("{f}:{}: {t}", i + 1));
            }
        }
    }
    for g in ADMIN_GROUPS {
        if accounts::group_members(&ctx.root, g)
            .iter()
            .any(|m| m == USER)
        {
            out.push(format!("openclaw is in group {g}"));
        }
    }
    out
}

/// Installs the window units, the group and the membership; checks sudo.
pub fn apply(ctx: &Ctx<'_>, rep: &mut ApplyReport) {
    let r = (|| -> Result<(Status, String), String> {
        let mut o = units::write_units(&ctx.root).map_err(|e| format!("{e:#}"))?;
        o = o.or(accounts::add_system_group(&ctx.root, CLIENT_GROUP)?);
        o = o.or(accounts::add_user_to_group(&ctx.root, USER, CLIENT_GROUP)?);
        let sd = if ctx.live { Some(ctx.sd()?) } else { None };
        let (started, _) =
            sd_files::enable_and_start(&ctx.root, sd, SOCKET_UNIT, units::SOCKET_TEXT)?;
        if started {
            o = WriteOutcome::Changed;
        }
        if !ctx.live {
            rep.left_for_boot
                .push(format!("{SOCKET_UNIT} listens from boot (sockets.target)"));
        }
        let grants = sudo_grants(ctx);
        if !grants.is_empty() {
            return Err(format!(
                "window units and group in place, but openclaw has sudo rights: {} (remove them)",
                grants.join("; ")
            ));
        }
        Ok((
            if o.changed() { Status::Changed } else { Status::Ok },
            format!("{SOCKET_UNIT} enabled, openclaw in group {CLIENT_GROUP}; no sudo rights for openclaw"),
        ))
    })();
    rep.result(ID, r);
}

/// Units installed and enabled, membership, no sudo.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    let mut problems = Vec::new();
    for (name, text) in units::unit_files() {
        if std::fs::read(ctx.root.path(UNIT_DIR).join(&name))
            .ok()
            .as_deref()
            != Some(&text[..])
        {
            problems.push(format!("{UNIT_DIR}/{name} missing or not the shipped unit"));
        }
    }
    if !problems.is_empty() {
        // Units missing: systemd has nothing to say about them.
    } else if ctx.live {
        match ctx.sd().and_then(|sd| {
            Ok((
                sd.unit_file_state(SOCKET_UNIT)?,
                sd.active_state(SOCKET_UNIT)?,
            ))
        }) {
            Ok((f, a)) => {
                if f != "enabled" || a != "active" {
                    problems.push(format!("{SOCKET_UNIT}: unit file {f}, {a}"));
                }
            }
            Err(e) => return Finding::unknown(ID, e, "run on a host with systemd"),
        }
    } else if !sd_files::enabled_as_files(&ctx.root, SOCKET_UNIT, units::SOCKET_TEXT) {
        problems.push(format!("{SOCKET_UNIT} not enabled"));
    }
    if !accounts::group_members(&ctx.root, CLIENT_GROUP)
        .iter()
        .any(|m| m == USER)
    {
        problems.push(format!("openclaw is not in group {CLIENT_GROUP}"));
    }
    problems.extend(sudo_grants(ctx).into_iter().map(|g| format!("sudo: {g}")));
    Finding::from_problems(
        ID,
        format!("{SOCKET_UNIT} installed, enabled{}; openclaw in {CLIENT_GROUP}; no sudoers grant or admin group for openclaw", if ctx.live { " and listening" } else { "" }),
        &problems,
        "clawster-agent baseline apply (installs the window units and the group membership); remove any sudo grant for openclaw by hand",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawster_core::fs::HostRoot;

    #[test]
    fn finds_sudo_grants() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/sudoers.d")).expect("mkdir");
        std::fs::write(
            r.join("etc/sudoers"),
            "root ALL=(ALL:ALL) ALL\n# openclaw ALL=(ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n",
        )
        .expect("w");
        std::fs::write(
            r.join("etc/sudoers.d/90-bot"),
            "openclaw ALL=(root) NOPASSWD: /usr/bin/apt-get\n",
        )
        .expect("w");
        std::fs::write(r.join("etc/group"), "sudo:x:27:ubuntu,openclaw\n").expect("w");
        let ctx = Ctx::offline(HostRoot::new(r), super::super::Profile::OpenclawHost);
        let g = sudo_grants(&ctx);
        assert_eq!(g.len(), 2, "{g:?}");
        assert!(g[0].starts_with("/etc/sudoers.d/90-bot:1"));
        assert_eq!(g[1], "openclaw is in group sudo");
    }
}
