//! Control `users` [seed 000: dedicated users]: the system users `openclaw` (the gateway's
//! identity, home = state directory) and `linuxbrew` (Homebrew, so tooling installs never run as
//! the gateway's user), both without a login shell or password. Added with `useradd` on a live
//! host and as account-file edits offline ([`crate::host::accounts`]).

use clawster_core::fs::{ensure_dir, Ownership};

use super::{user_ids, ApplyReport, BaselineError, Ctx, Finding, STATE_DIR, USER};
use crate::host::accounts::{self, SystemUser};

/// The gateway's user.
pub const OPENCLAW: SystemUser<'static> = SystemUser {
    name: USER,
    gecos: "OpenClaw gateway",
    home: STATE_DIR,
};
/// Homebrew's user.
pub const LINUXBREW: SystemUser<'static> = SystemUser {
    name: "linuxbrew",
    gecos: "Homebrew",
    home: "/home/linuxbrew",
};

const ID: &str = "users";

/// Adds both users (and Homebrew's home, owned by linuxbrew).
pub fn apply(ctx: &Ctx<'_>, rep: &mut ApplyReport) -> Result<(), BaselineError> {
    let mut changed = Vec::new();
    for u in [OPENCLAW, LINUXBREW] {
        let o = if ctx.live {
            accounts::add_system_user_live(&ctx.root, &u)
                .map_err(|e| BaselineError::Other(format!("adding user {}: {e}", u.name)))?
        } else {
            accounts::add_system_user_files(&ctx.root, &u)?
        };
        if o.changed() {
            changed.push(u.name);
        }
    }
    let (uid, gid) = user_ids(&ctx.root, LINUXBREW.name).ok_or_else(|| {
        BaselineError::Other("user linuxbrew is missing from /etc/passwd after adding it".into())
    })?;
    let home = ensure_dir(
        &ctx.root.path(LINUXBREW.home),
        Ownership {
            mode: 0o750,
            uid,
            gid,
        },
    )?;
    let msg = if changed.is_empty() {
        "system users openclaw and linuxbrew present (no login shell)".to_string()
    } else {
        format!("added system user(s) {}", changed.join(", "))
    };
    rep.outcome(
        ID,
        if changed.is_empty() {
            home
        } else {
            clawster_core::fs::WriteOutcome::Changed
        },
        msg,
    );
    Ok(())
}

fn no_login(shell: &str) -> bool {
    shell.ends_with("/nologin") || shell.ends_with("/false")
}

/// Both users exist as system users without a login shell; openclaw is not uid 0.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for u in [OPENCLAW, LINUXBREW] {
        match accounts::passwd_entry(&ctx.root, u.name) {
            None => problems.push(format!("user {} does not exist", u.name)),
            Some(line) => {
                let f: Vec<&str> = line.split(':').collect();
                let uid: u32 = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
                let shell = f.get(6).copied().unwrap_or("");
                if uid == 0 {
                    problems.push(format!("{} has uid 0", u.name));
                }
                if !no_login(shell) {
                    problems.push(format!("{} has login shell {shell}", u.name));
                }
                if u.name == USER && f.get(5).copied() != Some(STATE_DIR) {
                    problems.push(format!(
                        "openclaw's home is {}, expected {STATE_DIR}",
                        f.get(5).copied().unwrap_or("")
                    ));
                }
                seen.push(format!("{} uid {uid} shell {shell}", u.name));
            }
        }
    }
    Finding::from_problems(
        ID,
        seen.join(", "),
        &problems,
        "clawster-agent baseline apply (adds system users openclaw and linuxbrew)",
    )
}
