//! Control `ssh` [seed 000: SSH stopped, disabled and masked]: every SSH unit the host has, the
//! socket-activation units included (Debian/Ubuntu `ssh.socket`, RHEL-family `sshd.socket` and
//! the per-connection `sshd@.service`), and every alias of them (`sshd.service` on Debian), is
//! stopped, disabled and masked, over D-Bus on a live host; afterwards nothing listens on port 22.
//!
//! Why all of them: masking `ssh.service` alone leaves a listening `ssh.socket` holding port 22,
//! and a disabled (not masked) unit comes back when a first boot runs preset-all (an image whose
//! machine-id was reset to `uninitialized`); see facts/host.md section 5. Order on a live host:
//! stop sockets, then services; disable; mask (real names and aliases, after disable removed the
//! alias links); reload; wait until each is inactive; check `/proc/net/tcp{,6}`. Offline the
//! same as files. Also writes Debian's kill switch `/etc/ssh/sshd_not_to_be_run` when `/etc/ssh`
//! exists (both Debian units carry `ConditionPathExists=!` on it).
//!
//! Never a lockout: while no SSM agent unit is installed (control `ssm`), apply refuses to mask
//! or stop SSH and records the step as failed, saying why; SSH stays the way it was.

use std::time::Duration;

use clawster_core::fs::{write_atomic, Ownership};
use clawster_core::logging::Status;

use super::{listening_tcp, wait_inactive, ApplyReport, Ctx, Finding};
use crate::host::systemd::{self as sd_files, masked_as_files, unit_file};

/// SSH unit names we look for (sockets first: they must stop before their services).
pub const SSH_UNITS: [&str; 6] = [
    "ssh.socket",
    "sshd.socket",
    "ssh.service",
    "sshd.service",
    "sshd@.service",
    "ssh@.service",
];
/// Debian's kill switch.
pub const KILL_SWITCH: &str = "/etc/ssh/sshd_not_to_be_run";

const ID: &str = "ssh";

/// The SSH units present under the root and the aliases their `[Install]` sections declare
/// (each name once, sockets first).
pub fn units(ctx: &Ctx<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in SSH_UNITS {
        let Some(p) = unit_file(&ctx.root, u) else {
            continue;
        };
        if !out.iter().any(|o| o == u) {
            out.push(u.to_string());
        }
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for a in sd_files::aliases(&text) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out.sort_by_key(|u| !u.ends_with(".socket"));
    out
}

/// Stops, disables and masks every SSH unit.
pub fn apply(ctx: &Ctx<'_>, rep: &mut ApplyReport) {
    let names = units(ctx);
    if names.is_empty() {
        rep.record(ID, Status::Ok, "no SSH units installed");
        return;
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let to_mask: Vec<&str> = refs
        .iter()
        .copied()
        .filter(|u| !masked_as_files(&ctx.root, u))
        .collect();
    // Lockout guard: SSM is the only way in once SSH is masked. With no SSM agent unit on the
    // host, masking SSH (or writing Debian's kill switch) would leave the operator no way in at
    // all, so nothing SSH-related is touched and the step fails, naming what to install. Units
    // masked by an earlier run stay masked: this only refuses to take a working path away.
    if !to_mask.is_empty() && super::ssm::installed(ctx).is_none() {
        rep.record(ID, Status::Failed, lockout_refusal(&to_mask));
        return;
    }
    let mut did: Vec<String> = Vec::new();
    if ctx.root.path("/etc/ssh").is_dir() {
        match write_atomic(&ctx.root.path(KILL_SWITCH), b"SSH is disabled by clawster-agent baseline: administer this host with AWS Systems Manager.\n", Ownership::root(0o644)) {
            Ok(o) if o.changed() => did.push(format!("wrote {KILL_SWITCH}")),
            Ok(_) => {}
            Err(e) => {
                rep.record(ID, Status::Failed, format!("{e:#}"));
                return;
            }
        }
    }
    if !ctx.live {
        let r = (|| -> Result<(Status, String), String> {
            let removed =
                sd_files::disable_as_files(&ctx.root, &refs).map_err(|e| format!("{e:#}"))?;
            let masked =
                sd_files::mask_as_files(&ctx.root, &to_mask).map_err(|e| format!("{e:#}"))?;
            if !removed.is_empty() {
                did.push(format!("disabled ({} links removed)", removed.len()));
            }
            if !masked.is_empty() {
                did.push(format!("masked {}", masked.join(", ")));
            }
            Ok(if did.is_empty() {
                (Status::Ok, format!("{} masked", names.join(", ")))
            } else {
                (
                    Status::Changed,
                    format!("{}: {}", names.join(", "), did.join("; ")),
                )
            })
        })();
        rep.result(ID, r);
        return;
    }
    let r = (|| -> Result<(Status, String), String> {
        let sd = ctx.sd()?;
        // Templates (`sshd@.service`) cannot be stopped by that name; their instances go with
        // the socket that spawns them.
        let stoppable: Vec<&str> = refs.iter().copied().filter(|u| !u.contains("@.")).collect();
        for u in &stoppable {
            let st = sd.active_state(u)?;
            if st != "inactive" && st != "failed" {
                sd.stop(u)?;
                did.push(format!("stopped {u}"));
            }
        }
        if !to_mask.is_empty() {
            // Disable the unit files that exist (real names and alias links), then mask.
            // Only real unit files: disabling one also removes its alias links.
            let present: Vec<&str> = to_mask
                .iter()
                .copied()
                .filter(|u| {
                    unit_file(&ctx.root, u)
                        .and_then(|p| std::fs::symlink_metadata(p).ok())
                        .is_some_and(|m| m.is_file())
                })
                .collect();
            if !present.is_empty() {
                let removed = sd.disable(&present)?;
                if !removed.is_empty() {
                    did.push(format!("disabled ({} links removed)", removed.len()));
                }
            }
            sd.mask(&to_mask)?;
            did.push(format!("masked {}", to_mask.join(", ")));
            sd.reload()?;
        }
        for u in &stoppable {
            wait_inactive(sd, u, Duration::from_secs(30))?;
        }
        let on22: Vec<String> = listening_tcp()
            .into_iter()
            .filter(|(_, p)| *p == 22)
            .map(|(a, p)| format!("{a}:{p}"))
            .collect();
        if !on22.is_empty() {
            return Err(format!(
                "{} masked and stopped, but something still listens on {}",
                names.join(", "),
                on22.join(", ")
            ));
        }
        Ok(if did.is_empty() {
            (
                Status::Ok,
                format!(
                    "{} stopped and masked; nothing listens on port 22",
                    names.join(", ")
                ),
            )
        } else {
            (
                Status::Changed,
                format!("{}; nothing listens on port 22", did.join("; ")),
            )
        })
    })();
    rep.result(ID, r);
}

/// Why SSH was left alone on a host without the SSM agent.
fn lockout_refusal(unmasked: &[&str]) -> String {
    format!(
        "refused to mask {}: no SSM agent unit is installed ({}), so masking SSH would leave no way into this host; install the Amazon SSM agent, then rerun clawster-agent baseline apply",
        unmasked.join(", "),
        super::ssm::SSM_UNITS.join(", ")
    )
}

/// Every SSH unit masked (and, live, inactive) and nothing on port 22.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    let fix = "clawster-agent baseline apply (stops, disables and masks every SSH unit over D-Bus)";
    let names = units(ctx);
    let mut problems = Vec::new();
    for u in &names {
        if !masked_as_files(&ctx.root, u) {
            problems.push(format!("{u} not masked"));
        }
    }
    let mut evidence = if names.is_empty() {
        "no SSH units installed".to_string()
    } else {
        format!(
            "{} masked (/etc/systemd/system/<unit> -> /dev/null)",
            names.join(", ")
        )
    };
    if ctx.live {
        let sd = match ctx.sd() {
            Ok(s) => s,
            Err(e) => return Finding::unknown(ID, e, "run on a host with systemd"),
        };
        for u in names.iter().filter(|u| !u.contains("@.")) {
            match sd.active_state(u) {
                Ok(st) if st == "inactive" || st == "failed" => {}
                Ok(st) => problems.push(format!("{u} is {st}")),
                Err(e) => return Finding::unknown(ID, e, "check that systemd answers on D-Bus"),
            }
        }
        let on22: Vec<String> = listening_tcp()
            .into_iter()
            .filter(|(_, p)| *p == 22)
            .map(|(a, p)| format!("{a}:{p}"))
            .collect();
        if on22.is_empty() {
            evidence.push_str(", all inactive; nothing listens on port 22 (/proc/net/tcp, tcp6)");
        } else {
            problems.push(format!("listening on {}", on22.join(", ")));
        }
    }
    Finding::from_problems(ID, evidence, &problems, fix)
}
