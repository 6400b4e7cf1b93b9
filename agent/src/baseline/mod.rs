//! `clawster-agent baseline`: the host security baseline of seed 000 (the EasyStart AMI) for hosts
//! that run the OpenClaw gateway themselves, and its `ecs-host` subset for ECS bot hosts.
//!
//! Three commands share one list of controls, one module per control, each with an `apply` that
//! converges the host and an `audit` that proves it (id, status, evidence, fix):
//!
//! | control | module | profiles |
//! |---|---|---|
//! | SSM agent installed, enabled, running | [`ssm`] | both |
//! | SSH stopped, disabled, masked (socket activation and aliases too), nothing on :22 | [`ssh`] | both |
//! | firewall: UFW's files where UFW is installed, else our nf_tables table | [`firewall`] | both |
//! | users `openclaw` and `linuxbrew` | [`users`] | openclaw-host |
//! | owner-only state, workspace, logs; root-only build logs; config root:openclaw 0640 | [`permissions`] | openclaw-host |
//! | gateway config (loopback:18789, token from a file, no mDNS/terminal/updates/catalog), read-only | [`gateway`] | openclaw-host |
//! | no inline tokens; token files 0600 openclaw | [`secrets`] | openclaw-host |
//! | `/usr/local/bin/openclaw` wrapper, root-owned `/opt/openclaw` | [`wrapper`] | openclaw-host |
//! | sandboxed `openclaw-gateway.service`, installed, shipped disabled and stopped | [`unit`] | openclaw-host |
//! | maintenance window units, openclaw in `clawster-window`, no sudo for openclaw | [`window`] | openclaw-host |
//!
//! `prepare-image` ([`image`]) removes identity, credentials, histories and runtime state, scans
//! what is left for secrets ([`scan`]), re-checks permissions and ends with an audit.
//!
//! # Order of `apply`, and the failure policy of each step
//!
//! 1. Preflight: read every existing configuration file we merge into (OpenClaw's JSON, UFW's
//!    files). A malformed one stops the run here, naming the file, before anything is written; the
//!    file is left byte for byte. *Fatal.*
//! 2. Users, then directories and permissions (everything after needs the `openclaw` ids).
//!    *Fatal* on any error.
//! 3. Gateway config and secrets, wrapper, gateway unit file. *Fatal* on write errors.
//! 4. SSM agent, SSH, firewall: each needs systemd (D-Bus) or the kernel on a live host. A failure
//!    is recorded as `failed` and the run goes on to the next control (exit 1 at the end), so one
//!    broken piece never leaves the others undone.
//! 5. Offline (`--root DIR`): file work only; no D-Bus, no netlink, no processes. What boot has
//!    to finish is listed in `left_for_boot`.
//!
//! Every step and every audit check is a journal health record (`CLAWSTER_CHECK=baseline.<id>`).
//! Re-running converges without changes.

pub mod firewall;
pub mod gateway;
pub mod image;
pub mod permissions;
pub mod scan;
pub mod secrets;
pub mod ssh;
pub mod ssm;
pub mod ufw;
pub mod unit;
pub mod users;
pub mod window;
pub mod wrapper;

use std::path::PathBuf;

use clawster_core::fs::{FsError, HostRoot, WriteOutcome};
use clawster_core::logging::{health, Status};

use crate::host::systemd::Systemd;

/// The OpenClaw state directory (`OPENCLAW_STATE_DIR`, also the service user's home).
pub const STATE_DIR: &str = "/var/lib/openclaw";
/// The agent workspace.
pub const WORKSPACE_DIR: &str = "/var/lib/openclaw/workspace";
/// Token files.
pub const SECRETS_DIR: &str = "/var/lib/openclaw/secrets";
/// The gateway's auth token (a `file` SecretRef).
pub const GATEWAY_TOKEN: &str = "/var/lib/openclaw/secrets/gateway-token";
/// The Telegram bot token, when one is configured.
pub const TELEGRAM_TOKEN: &str = "/var/lib/openclaw/secrets/telegram-bot-token";
/// OpenClaw's logs (`logging.file`).
pub const LOG_DIR: &str = "/var/log/openclaw";
/// The gateway's log file.
pub const LOG_FILE: &str = "/var/log/openclaw/openclaw.log";
/// Build and provisioning logs: root only.
pub const BUILD_LOG_DIR: &str = "/var/log/clawster";
/// The config directory (root:openclaw 0750).
pub const CONFIG_DIR: &str = "/etc/openclaw";
/// The gateway config (`OPENCLAW_CONFIG_PATH`; root:openclaw 0640, so the gateway cannot rewrite it).
pub const CONFIG: &str = "/etc/openclaw/openclaw.json";
/// The OpenClaw install prefix (`npm install -g --prefix /opt/openclaw`).
pub const OPT_DIR: &str = "/opt/openclaw";
/// The real CLI.
pub const CLI: &str = "/opt/openclaw/bin/openclaw";
/// The operator's wrapper.
pub const WRAPPER: &str = "/usr/local/bin/openclaw";
/// The gateway's unit.
pub const GATEWAY_UNIT: &str = "openclaw-gateway.service";
/// The gateway's port.
pub const GATEWAY_PORT: u16 = 18789;
/// The service user.
pub const USER: &str = "openclaw";
/// Written by `enable-gateway`: the operator enabled the gateway on purpose (root only).
pub const ENABLED_MARKER: &str = "/var/lib/clawster/baseline/gateway-enabled";
/// The profile the last `apply` used (audit's default).
pub const PROFILE_FILE: &str = "/var/lib/clawster/baseline/profile";

/// Which controls a host gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Seed 000 in full: a host that runs the OpenClaw gateway itself (EasyStart).
    OpenclawHost,
    /// An ECS bot host: SSM, SSH gone, firewall (the gateway runs in the bot's task).
    EcsHost,
}

impl Profile {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenclawHost => "openclaw-host",
            Self::EcsHost => "ecs-host",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "openclaw-host" => Some(Self::OpenclawHost),
            "ecs-host" => Some(Self::EcsHost),
            _ => None,
        }
    }

    /// The profile the last `apply` recorded under `root`, if any.
    pub fn recorded(root: &HostRoot) -> Option<Self> {
        std::fs::read_to_string(root.path(PROFILE_FILE))
            .ok()
            .and_then(|s| Self::parse(&s))
    }

    /// True when the OpenClaw controls apply.
    pub fn openclaw(self) -> bool {
        self == Self::OpenclawHost
    }
}

/// A baseline run failed as a whole (individual control failures are recorded in the report).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// An existing configuration file could not be parsed; it was left byte for byte.
    #[error("{path}: {what}; left untouched: fix or remove it, then re-run")]
    Malformed {
        /// The file (as seen from this process).
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Anything else, in words (a boundary's message).
    #[error("{0}")]
    Other(String),
}

impl BaselineError {
    pub(crate) fn malformed(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.into(),
            what: what.into(),
        }
    }
}

/// What a run may touch.
#[allow(missing_debug_implementations)]
pub struct Ctx<'a> {
    /// The root every path lives under.
    pub root: HostRoot,
    /// The running host (`/`): systemd, the kernel and processes may be used.
    pub live: bool,
    /// Which controls.
    pub profile: Profile,
    /// systemd over D-Bus (live only); `Err` says why it is absent.
    pub systemd: Result<&'a dyn Systemd, String>,
}

impl<'a> Ctx<'a> {
    /// An offline context for `root` (tests, image builds).
    pub fn offline(root: HostRoot, profile: Profile) -> Self {
        Self {
            root,
            live: false,
            profile,
            systemd: Err("offline root: no D-Bus".into()),
        }
    }

    /// systemd, or an error saying why there is none.
    pub fn sd(&self) -> Result<&'a dyn Systemd, String> {
        match &self.systemd {
            Ok(s) => Ok(*s),
            Err(e) => Err(format!("no systemd over D-Bus: {e}")),
        }
    }
}

/// One apply step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Control id.
    pub control: String,
    /// ok (nothing to do), changed, failed, skipped.
    pub status: Status,
    /// What happened.
    pub message: String,
}

/// What `apply` (or `prepare-image`) did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyReport {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// What an offline run left for the host's boot.
    pub left_for_boot: Vec<String>,
}

impl ApplyReport {
    /// Records a step (and writes its journal record).
    pub fn record(&mut self, control: &str, status: Status, message: impl Into<String>) {
        let message = message.into();
        health(&format!("baseline.{control}"), status, &message);
        self.steps.push(Step {
            control: control.into(),
            status,
            message,
        });
    }

    /// Records a write outcome as ok/changed.
    pub fn outcome(&mut self, control: &str, o: WriteOutcome, message: impl Into<String>) {
        let st = if o.changed() {
            Status::Changed
        } else {
            Status::Ok
        };
        self.record(control, st, message);
    }

    /// True when a step failed.
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == Status::Failed)
    }

    /// Records `r` as the step's result: its message on success, failed on error.
    pub fn result(&mut self, control: &str, r: Result<(Status, String), String>) {
        match r {
            Ok((st, m)) => self.record(control, st, m),
            Err(e) => self.record(control, Status::Failed, e),
        }
    }
}

/// An audit check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditStatus {
    /// The control holds.
    Ok,
    /// The control does not hold.
    Failed,
    /// The control does not apply to this host.
    NotApplicable,
    /// It could not be checked (e.g. no D-Bus on a live host).
    CouldNotCheck,
}

impl AuditStatus {
    /// The word printed and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::NotApplicable => "not-applicable",
            Self::CouldNotCheck => "could-not-check",
        }
    }
}

/// One audit check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Control id, e.g. `ssh`.
    pub id: String,
    /// The verdict.
    pub status: AuditStatus,
    /// What was read.
    pub evidence: String,
    /// How to make it hold (empty when it holds).
    pub fix: String,
}

impl Finding {
    /// A check that holds.
    pub fn ok(id: &str, evidence: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            status: AuditStatus::Ok,
            evidence: evidence.into(),
            fix: String::new(),
        }
    }

    /// A check that does not hold.
    pub fn failed(id: &str, evidence: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            status: AuditStatus::Failed,
            evidence: evidence.into(),
            fix: fix.into(),
        }
    }

    /// A check that could not be made.
    pub fn unknown(id: &str, evidence: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            status: AuditStatus::CouldNotCheck,
            evidence: evidence.into(),
            fix: fix.into(),
        }
    }

    /// A check that does not apply.
    pub fn not_applicable(id: &str, evidence: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            status: AuditStatus::NotApplicable,
            evidence: evidence.into(),
            fix: String::new(),
        }
    }

    /// `ok` when `problems` is empty, else `failed` listing them.
    pub fn from_problems(
        id: &str,
        good: impl Into<String>,
        problems: &[String],
        fix: impl Into<String>,
    ) -> Self {
        if problems.is_empty() {
            Self::ok(id, good)
        } else {
            Self::failed(id, problems.join("; "), fix)
        }
    }
}

/// The result of an audit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditReport {
    /// The profile audited.
    pub profile: Profile,
    /// `ok`, `failed` or `could-not-check`.
    pub status: String,
    /// Every check, in control order.
    pub checks: Vec<Finding>,
}

impl AuditReport {
    fn new(profile: Profile, checks: Vec<Finding>) -> Self {
        let status = if checks.iter().any(|c| c.status == AuditStatus::Failed) {
            "failed"
        } else if checks
            .iter()
            .any(|c| c.status == AuditStatus::CouldNotCheck)
        {
            "could-not-check"
        } else {
            "ok"
        };
        Self {
            profile,
            status: status.into(),
            checks,
        }
    }

    /// 0 all ok, 1 some failed, 2 could not check.
    pub fn exit_code(&self) -> u8 {
        match self.status.as_str() {
            "ok" => 0,
            "failed" => 1,
            _ => 2,
        }
    }

    /// The checks that failed or could not be made.
    pub fn not_ok(&self) -> Vec<&Finding> {
        self.checks
            .iter()
            .filter(|c| matches!(c.status, AuditStatus::Failed | AuditStatus::CouldNotCheck))
            .collect()
    }

    /// Writes every check as a journal health record.
    pub fn log(&self) {
        for c in &self.checks {
            let st = match c.status {
                AuditStatus::Ok => Status::Ok,
                AuditStatus::Failed => Status::Failed,
                AuditStatus::NotApplicable => Status::Skipped,
                AuditStatus::CouldNotCheck => Status::Degraded,
            };
            let msg = if c.fix.is_empty() {
                c.evidence.clone()
            } else {
                format!("{} (fix: {})", c.evidence, c.fix)
            };
            health(&format!("baseline.{}", c.id), st, &msg);
        }
    }

    /// The human-readable table.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            s.push_str(&format!(
                "{:<18} {:<15} {}\n",
                c.id,
                c.status.as_str(),
                c.evidence
            ));
            if !c.fix.is_empty() {
                s.push_str(&format!("{:<18} {:<15} fix: {}\n", "", "", c.fix));
            }
        }
        s.push_str(&format!(
            "overall: {} ({})\n",
            self.status,
            self.profile.as_str()
        ));
        s
    }
}

/// Runs every check of `ctx.profile`.
pub fn audit(ctx: &Ctx<'_>) -> AuditReport {
    let mut checks = vec![ssm::audit(ctx), ssh::audit(ctx), firewall::audit(ctx)];
    if ctx.profile.openclaw() {
        checks.push(users::audit(ctx));
        checks.push(permissions::audit(ctx));
        checks.push(gateway::audit_config(ctx));
        checks.push(secrets::audit(ctx));
        checks.push(wrapper::audit(ctx));
        checks.push(unit::audit(ctx));
        checks.push(gateway::audit_service(ctx));
        checks.push(window::audit(ctx));
    }
    AuditReport::new(ctx.profile, checks)
}

/// Converges the host to `ctx.profile`. `Err` is a fatal failure (see the module doc); a returned
/// report may still hold failed steps.
pub fn apply(ctx: &Ctx<'_>) -> Result<ApplyReport, BaselineError> {
    let root = &ctx.root;
    if !root.dir().is_dir() {
        return Err(BaselineError::Other(format!(
            "root {} is not a directory",
            root.dir().display()
        )));
    }
    let mut rep = ApplyReport::default();

    // 1. Preflight: every file we merge into must parse before anything is written.
    let gw_plan = if ctx.profile.openclaw() {
        Some(gateway::preflight(root)?)
    } else {
        None
    };
    let ufw_plan = ufw::preflight(root)?;

    // 2-3. Files.
    if ctx.profile.openclaw() {
        users::apply(ctx, &mut rep)?;
        permissions::apply(ctx, &mut rep)?;
        if let Some(plan) = gw_plan {
            gateway::apply_config(ctx, plan, &mut rep)?;
        }
        secrets::apply(ctx, &mut rep)?;
        wrapper::apply(ctx, &mut rep)?;
        unit::apply(ctx, &mut rep)?;
        gateway::apply_service(ctx, &mut rep);
        window::apply(ctx, &mut rep);
    }

    // 4. Host services and the kernel (non-fatal per control).
    ssm::apply(ctx, &mut rep);
    ssh::apply(ctx, &mut rep);
    firewall::apply(ctx, ufw_plan, &mut rep);

    let dir = root.path("/var/lib/clawster/baseline");
    clawster_core::fs::ensure_dir(&dir, clawster_core::fs::Ownership::root(0o700))?;
    clawster_core::fs::write_atomic(
        &root.path(PROFILE_FILE),
        format!("{}\n", ctx.profile.as_str()).as_bytes(),
        clawster_core::fs::Ownership::root(0o644),
    )?;
    Ok(rep)
}

/// Waits until `unit` is no longer active (a stop job finished), at most `limit`.
pub(crate) fn wait_inactive(
    sd: &dyn Systemd,
    unit: &str,
    limit: std::time::Duration,
) -> Result<String, String> {
    let start = std::time::Instant::now();
    loop {
        let st = sd.active_state(unit)?;
        if st == "inactive" || st == "failed" {
            return Ok(st);
        }
        if start.elapsed() >= limit {
            return Err(format!("{unit} still {st} after {limit:?}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// TCP ports in LISTEN state in this network namespace (`/proc/net/tcp` and `tcp6`), with the
/// local addresses, e.g. `127.0.0.1:18789`.
pub fn listening_tcp() -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || f[3] != "0A" {
                continue;
            }
            let Some((addr, port)) = f[1].split_once(':') else {
                continue;
            };
            let Ok(port) = u16::from_str_radix(port, 16) else {
                continue;
            };
            out.push((decode_proc_addr(addr, v6), port));
        }
    }
    out
}

fn decode_proc_addr(hex: &str, v6: bool) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    // The kernel prints each 32-bit word in host order.
    let mut fixed = Vec::with_capacity(bytes.len());
    for w in bytes.chunks(4) {
        let mut w = w.to_vec();
        if cfg!(target_endian = "little") {
            w.reverse();
        }
        fixed.extend(w);
    }
    if v6 && fixed.len() == 16 {
        let a: [u8; 16] = fixed.try_into().unwrap_or([0; 16]);
        std::net::Ipv6Addr::from(a).to_string()
    } else if fixed.len() == 4 {
        std::net::Ipv4Addr::new(fixed[0], fixed[1], fixed[2], fixed[3]).to_string()
    } else {
        hex.to_string()
    }
}

/// The uid and gid of `user` from `/etc/passwd` under `root`.
pub fn user_ids(root: &HostRoot, user: &str) -> Option<(u32, u32)> {
    let line = crate::host::accounts::passwd_entry(root, user)?;
    let f: Vec<&str> = line.split(':').collect();
    Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_addresses_decode() {
        assert_eq!(decode_proc_addr("0100007F", false), "127.0.0.1");
        assert_eq!(
            decode_proc_addr("00000000000000000000000001000000", true),
            "::1"
        );
    }

    #[test]
    fn audit_exit_codes() {
        let ok = AuditReport::new(Profile::EcsHost, vec![Finding::ok("a", "x")]);
        assert_eq!(ok.exit_code(), 0);
        let na = AuditReport::new(
            Profile::EcsHost,
            vec![Finding::ok("a", "x"), Finding::not_applicable("b", "y")],
        );
        assert_eq!(na.exit_code(), 0);
        let unknown = AuditReport::new(
            Profile::EcsHost,
            vec![Finding::unknown("a", "x", "f"), Finding::ok("b", "y")],
        );
        assert_eq!(unknown.exit_code(), 2);
        let failed = AuditReport::new(
            Profile::EcsHost,
            vec![
                Finding::unknown("a", "x", "f"),
                Finding::failed("b", "y", "z"),
            ],
        );
        assert_eq!(failed.exit_code(), 1);
        assert_eq!(failed.not_ok().len(), 2);
        let json = serde_json::to_value(&failed).expect("json");
        assert_eq!(json["checks"][0]["status"], "could-not-check");
        assert_eq!(json["profile"], "ecs-host");
    }
}
