//! Control `gateway.unit` [seed 000: sandboxed service]: `systemd/openclaw-gateway.service`
//! installed as shipped in `/etc/systemd/system`. Its sandbox is checked for real by the e2e
//! suite (`systemd-analyze security` below a unit with only seed 000's settings, the gateway
//! answering under it); the audit checks that the installed file is ours, byte for byte, and
//! notes the one outbound request the gateway makes that no setting turns off.

use clawster_core::logging::Status;

use super::{ApplyReport, BaselineError, Ctx, Finding, GATEWAY_UNIT};
use crate::host::systemd::{write_unit_files, UNIT_DIR};

/// The gateway's unit as shipped.
pub const GATEWAY_UNIT_TEXT: &str = include_str!("../../../systemd/openclaw-gateway.service");

/// What OpenClaw 2026.9.6 sends unasked even with update checks, catalog refresh, telemetry and
/// mDNS off (facts: `loadHostedOfficialExternalPluginCatalogEntries`, hard-coded feed URL).
pub const UNSWITCHABLE_EGRESS: &str = "the gateway fetches https://clawhub.ai/v1/feeds/plugins ~4 s after start; no config or env switch turns it off: block it with an egress policy (security group / NAT allowlist) if unwanted";

const ID: &str = "gateway.unit";

/// Writes the unit (root 0644); a live host reloads systemd when it changed.
pub fn apply(ctx: &Ctx<'_>, rep: &mut ApplyReport) -> Result<(), BaselineError> {
    let o = write_unit_files(&ctx.root, &[(GATEWAY_UNIT, GATEWAY_UNIT_TEXT.as_bytes())])?;
    if o.changed() && ctx.live {
        if let Err(e) = ctx.sd().and_then(|sd| sd.reload()) {
            rep.record(
                ID,
                Status::Failed,
                format!("{GATEWAY_UNIT} written; systemd reload failed: {e}"),
            );
            return Ok(());
        }
    }
    rep.outcome(ID, o, format!("{UNIT_DIR}/{GATEWAY_UNIT} (sandboxed: no capabilities, NoNewPrivileges, ProtectSystem=strict, PrivateTmp, UMask 0077, ...)"));
    Ok(())
}

/// The installed unit is the shipped one.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    let p = ctx.root.path(UNIT_DIR).join(GATEWAY_UNIT);
    match std::fs::read(&p) {
        Ok(b) if b == GATEWAY_UNIT_TEXT.as_bytes() => Finding::ok(
            ID,
            format!("{UNIT_DIR}/{GATEWAY_UNIT} is the shipped sandboxed unit; note: {UNSWITCHABLE_EGRESS}"),
        ),
        Ok(_) => Finding::failed(ID, format!("{UNIT_DIR}/{GATEWAY_UNIT} differs from the shipped unit"), "clawster-agent baseline apply (rewrites it)"),
        Err(e) => Finding::failed(ID, format!("{UNIT_DIR}/{GATEWAY_UNIT}: {e}"), "clawster-agent baseline apply (installs it)"),
    }
}
