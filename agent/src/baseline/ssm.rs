//! Control `ssm` [seed 000: SSM Session Manager is the admin path; the agent is running]: the
//! Amazon SSM agent's unit (deb/rpm `amazon-ssm-agent.service`, or the Ubuntu snap's) is
//! installed, enabled and running. The agent itself is part of the AMI (Amazon Linux and Ubuntu
//! AMIs ship it); apply enables and starts it, never installs it.

use clawster_core::logging::Status;

use super::{ApplyReport, Ctx, Finding};
use crate::host::systemd::{self as sd_files, unit_file};

/// The SSM agent's unit names, deb/rpm first.
pub const SSM_UNITS: [&str; 2] = [
    "amazon-ssm-agent.service",
    "snap.amazon-ssm-agent.amazon-ssm-agent.service",
];

const ID: &str = "ssm";
const FIX_INSTALL: &str = "install the Amazon SSM agent (preinstalled on Amazon Linux and Ubuntu AMIs; https://docs.aws.amazon.com/systems-manager/latest/userguide/ssm-agent.html), then clawster-agent baseline apply";

/// The installed SSM unit under the root, if any.
pub fn installed(ctx: &Ctx<'_>) -> Option<&'static str> {
    SSM_UNITS.into_iter().find(|u| {
        unit_file(&ctx.root, u).is_some_and(|p| {
            std::fs::read_link(&p).ok().as_deref() != Some(std::path::Path::new("/dev/null"))
        })
    })
}

fn unit_text(ctx: &Ctx<'_>, unit: &str) -> String {
    unit_file(&ctx.root, unit)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

/// Enablement links `<target>.wants/<unit>` pointing at the unit file wherever it lives.
fn enable_as_files(ctx: &Ctx<'_>, unit: &str) -> Result<Vec<String>, String> {
    let Some(path) = unit_file(&ctx.root, unit) else {
        return Err(format!("{unit} not found"));
    };
    let host_path = format!(
        "/{}",
        path.strip_prefix(ctx.root.dir())
            .map_err(|e| e.to_string())?
            .display()
    );
    sd_files::enable_file_as_files(&ctx.root, unit, &host_path, &unit_text(ctx, unit))
        .map_err(|e| format!("{e:#}"))
}

fn enabled_as_files(ctx: &Ctx<'_>, unit: &str) -> bool {
    let targets = sd_files::wanted_by(&unit_text(ctx, unit));
    !targets.is_empty()
        && targets.iter().all(|t| {
            std::fs::symlink_metadata(
                ctx.root
                    .path(sd_files::UNIT_DIR)
                    .join(format!("{t}.wants"))
                    .join(unit),
            )
            .is_ok()
        })
}

/// Enables and starts the agent (live) or enables it as files (offline).
pub fn apply(ctx: &Ctx<'_>, rep: &mut ApplyReport) {
    let Some(unit) = installed(ctx) else {
        rep.record(
            ID,
            Status::Failed,
            format!(
                "no SSM agent unit ({}): {FIX_INSTALL}",
                SSM_UNITS.join(", ")
            ),
        );
        return;
    };
    if !ctx.live {
        let r = enable_as_files(ctx, unit).map(|made| {
            (
                if made.is_empty() {
                    Status::Ok
                } else {
                    Status::Changed
                },
                format!(
                    "{unit} enabled ({} links made); it starts at boot",
                    made.len()
                ),
            )
        });
        rep.result(ID, r);
        return;
    }
    let r = (|| -> Result<(Status, String), String> {
        let sd = ctx.sd()?;
        let mut did = Vec::new();
        if sd.unit_file_state(unit)? != "enabled" {
            sd.enable(&[unit])?;
            sd.reload()?;
            did.push("enabled");
        }
        let st = sd.active_state(unit)?;
        if st != "active" && st != "activating" {
            sd.start_no_block(unit)?;
            did.push("start queued");
        }
        Ok(if did.is_empty() {
            (Status::Ok, format!("{unit} enabled and {st}"))
        } else {
            (Status::Changed, format!("{unit}: {}", did.join(", ")))
        })
    })();
    rep.result(ID, r);
}

/// Installed, enabled and (live) running.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    let Some(unit) = installed(ctx) else {
        return Finding::failed(
            ID,
            format!("no SSM agent unit installed ({})", SSM_UNITS.join(", ")),
            FIX_INSTALL,
        );
    };
    if !ctx.live {
        return if enabled_as_files(ctx, unit) {
            Finding::ok(ID, format!("{unit} installed and enabled (starts at boot)"))
        } else {
            Finding::failed(
                ID,
                format!("{unit} installed but not enabled"),
                "clawster-agent baseline apply",
            )
        };
    }
    let sd = match ctx.sd() {
        Ok(s) => s,
        Err(e) => return Finding::unknown(ID, e, "run on a host with systemd"),
    };
    match (sd.unit_file_state(unit), sd.active_state(unit)) {
        (Ok(f), Ok(a)) => {
            let ev = format!("{unit}: unit file {f}, {a}");
            if f == "enabled" && a == "active" {
                Finding::ok(ID, ev)
            } else {
                Finding::failed(ID, ev, "clawster-agent baseline apply (enables and starts it); if it keeps failing: journalctl -u amazon-ssm-agent")
            }
        }
        (Err(e), _) | (_, Err(e)) => Finding::unknown(ID, e, "check that systemd answers on D-Bus"),
    }
}
