//! `clawster-agent bootstrap`: the first-boot Sysbox install, Docker runtime registration and ECS
//! configuration, natively and idempotently (it replaces the seed's shell UserData).
//!
//! Order of a run, and the failure policy of each step:
//!
//! 1. Validate options, take the run lock, and check that daemon.json (if any) can be merged.
//!    A malformed daemon.json stops the run here, before anything was written. *Fatal.*
//! 2. Live host: start the prerequisite check/install on a thread ([`prereqs`]); it overlaps with
//!    steps 3-4. *Non-fatal* (`degraded` when a tool stays missing).
//! 3. Obtain the package: cache, local file or download, SHA256-verified before use ([`download`]). *Fatal.*
//! 4. Read the package natively, refusing anything unexpected before replacing any file; then put
//!    the binaries in place ([`deb`]). *Fatal.*
//! 5. Units and the Docker drop-in, the `sysbox` user, /var/lib/sysboxfs, sysctls (live: raise only),
//!    daemon.json, ecs.config. *Fatal* on write errors.
//! 6. Live host: over D-Bus enable, reload, start `sysbox.service` without waiting; SIGHUP dockerd if
//!    daemon.json changed and it runs. Offline: enablement symlinks only. *Non-fatal, recorded as failed*
//!    (no marker, exit 1).
//! 7. The package maintenance window: its units, sysusers.d line and client group (*fatal* on
//!    write errors), then enablement of its socket (live: over D-Bus, started without waiting;
//!    offline: the `sockets.target.wants` symlink). Enablement is *non-fatal, recorded as failed*.
//! 8. The bot's Docker socket: the docker-guard units, the bot's state directory, the socket
//!    enabled (and started live) ([`crate::docker_guard::install`]). *Non-fatal, recorded as failed.*
//! 9. With `--baseline PROFILE` (`ecs-host` on ECS bot hosts): the host security baseline
//!    ([`crate::baseline::apply`]: SSM agent, SSH masked, firewall). A malformed UFW file stops the
//!    run (*fatal*, file left byte for byte); a control that fails is recorded as failed (no
//!    marker, exit 1). Live with `--no-start`, or offline: file work only, like the rest.
//! 10. The completion marker, only when no step failed.
//!
//! Every step is written to the journal as a health record (`CLAWSTER_CHECK`, `CLAWSTER_STATUS`).

pub mod deb;
pub mod docker;
pub mod download;
pub mod ecs;
pub mod install;
pub mod prereqs;
pub mod sysctl;
pub mod units;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clawster_core::fs::{HostRoot, WriteOutcome};
use clawster_core::logging::{health, Status};
use clawster_core::sysctl::Sysctl;

use download::{Fetcher, Obtained, RetryPolicy};

/// The Sysbox release we install.
pub const SYSBOX_VERSION: &str = "0.6.7";

/// CPU architecture of the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// x86_64
    Amd64,
    /// aarch64
    Arm64,
}

impl Arch {
    /// The architecture this binary was built for.
    pub fn native() -> Option<Self> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Self::Amd64),
            "aarch64" => Some(Self::Arm64),
            _ => None,
        }
    }

    /// Debian's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amd64 => "amd64",
            Self::Arm64 => "arm64",
        }
    }

    /// The pinned SHA256 of the official v0.6.7 package (see shared/facts/sysbox-0.6.7.md).
    pub fn pinned_sha256(self) -> &'static str {
        match self {
            Self::Amd64 => "b7ac389e5a19592cadf16e0ca30e40919516128f6e1b7f99e1cb4ff64554172e",
            Self::Arm64 => "16d80123ba53058cf90f5a68686e297621ea97942602682e34b3352783908f91",
        }
    }

    /// The official release URL, then the Nestybox mirror serving the same bytes.
    pub fn default_urls(self) -> Vec<String> {
        let a = self.as_str();
        vec![
            format!("https://github.com/nestybox/sysbox/releases/download/v{SYSBOX_VERSION}/sysbox-ce_{SYSBOX_VERSION}.linux_{a}.deb"),
            format!("https://downloads.nestybox.com/sysbox/releases/v{SYSBOX_VERSION}/sysbox-ce_{SYSBOX_VERSION}-0.linux_{a}.deb"),
        ]
    }
}

/// Where the package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The official URLs for the architecture.
    Default,
    /// One URL.
    Url(String),
    /// A local file.
    File(PathBuf),
}

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    /// The root every path lives under.
    pub root: HostRoot,
    /// True on the running host (`--root /` or no `--root`): kernel, package manager, D-Bus and
    /// signals may be used. False for an offline root: file work only.
    pub live: bool,
    /// ECS cluster name; without it ecs.config is left alone.
    pub cluster: Option<String>,
    /// Package architecture.
    pub arch: Arch,
    /// Package source.
    pub source: Source,
    /// Expected SHA256 (lowercase hex); `None` = the pin for `arch`.
    pub sha256: Option<String>,
    /// Live host, but no D-Bus and no signals.
    pub no_start: bool,
    /// Download retry policy.
    pub retry: RetryPolicy,
    /// Bound on the package manager.
    pub prereq_timeout: Duration,
    /// The directory standing for /proc/sys (live only; tests point it elsewhere).
    pub proc_sys: PathBuf,
    /// Also apply the host security baseline with this profile (step 8).
    pub baseline: Option<crate::baseline::Profile>,
}

impl Options {
    /// Defaults for `root` (live when it is `/`).
    pub fn new(root: HostRoot, arch: Arch) -> Self {
        let live = root.is_live();
        Self {
            root,
            live,
            cluster: None,
            arch,
            source: Source::Default,
            sha256: None,
            no_start: false,
            retry: RetryPolicy::default(),
            prereq_timeout: Duration::from_secs(300),
            proc_sys: PathBuf::from("/proc/sys"),
            baseline: None,
        }
    }
}

/// The process boundaries a run talks to.
#[allow(missing_debug_implementations)]
pub struct Boundaries<'a> {
    /// HTTP.
    pub fetcher: &'a dyn Fetcher,
    /// systemd over D-Bus (consulted only live without `--no-start`); `Err` says why it is absent.
    pub systemd: Result<&'a dyn crate::host::systemd::Systemd, String>,
    /// The package manager (live only); `None` when the host has none.
    pub packages: Option<&'a dyn crate::host::packages::PackageManager>,
    /// dockerd (live only, without `--no-start`).
    pub dockerd: &'a dyn docker::Dockerd,
}

/// One step's record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// The check name (`CLAWSTER_CHECK`).
    pub check: String,
    /// Its status.
    pub status: Status,
    /// What happened.
    pub message: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// What an offline run left for the host's boot.
    pub left_for_boot: Vec<String>,
    /// Whether the completion marker was written.
    pub complete: bool,
}

impl Report {
    fn record(&mut self, check: &str, status: Status, message: impl Into<String>) {
        let message = message.into();
        health(check, status, &message);
        self.steps.push(Step {
            check: check.into(),
            status,
            message,
        });
    }

    /// True when a step failed.
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == Status::Failed)
    }

    /// True when nothing changed.
    pub fn unchanged(&self) -> bool {
        !self.steps.iter().any(|s| s.status == Status::Changed)
    }
}

fn outcome_status(o: WriteOutcome) -> Status {
    if o.changed() {
        Status::Changed
    } else {
        Status::Ok
    }
}

/// Lowercase 64-hex-digit SHA256, or an error naming the bad value.
pub fn parse_sha256(s: &str) -> anyhow::Result<String> {
    let l = s.trim().to_ascii_lowercase();
    if l.len() != 64 || !l.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--sysbox-sha256 {s:?} is not a SHA256 (64 hex digits)");
    }
    Ok(l)
}

/// Runs bootstrap. `Err` is a fatal failure (see the module doc); a returned report may still hold
/// failed steps.
pub fn run(opts: &Options, b: &Boundaries<'_>) -> anyhow::Result<Report> {
    let start = Instant::now();
    let root = &opts.root;
    let mut report = Report::default();
    let sha256 = match &opts.sha256 {
        Some(s) => parse_sha256(s)?,
        None => opts.arch.pinned_sha256().to_string(),
    };
    if let Some(c) = &opts.cluster {
        if !ecs::valid_cluster(c) {
            bail!(
                "--cluster {c:?} is not a valid ECS cluster name (1-255 letters, digits, - and _)"
            );
        }
    }
    if !root.dir().is_dir() {
        bail!("root {} is not a directory", root.dir().display());
    }
    let _lock = install::lock(root).context("taking the bootstrap lock")?;

    // Preflight: a daemon.json we cannot merge stops the run before anything is written.
    let dj = root.path(docker::DAEMON_JSON);
    let existing = clawster_core::fs::read_optional(&dj)?;
    if let Err(e) = docker::merge(existing.as_deref(), &dj) {
        report.record("docker.daemon_json", Status::Failed, format!("{e:#}"));
        return Err(e).context("checking daemon.json before changing anything");
    }

    sweep_stale_temps(root);

    let marker = install::marker_text(&sha256, opts.cluster.as_deref());
    if install::clear_stale_marker(root, &marker)? {
        tracing::info!("removed a completion marker from a different configuration");
    }

    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Prerequisites overlap with download and extraction.
        let prereq = if opts.live {
            let pm = b.packages;
            let timeout = opts.prereq_timeout;
            Some(scope.spawn(move || prereqs::ensure(root, pm, timeout)))
        } else {
            None
        };

        let deb = obtain(opts, b, &sha256, &mut report)?;
        let t = Instant::now();
        let mut staged = deb::stage_sysbox(&deb, root).context("installing the Sysbox package")?;
        let bins = staged.commit_binaries()?;
        let changed: Vec<&str> = bins
            .iter()
            .filter(|(_, o)| o.changed())
            .map(|(p, _)| *p)
            .collect();
        let status = if changed.is_empty() {
            Status::Ok
        } else {
            Status::Changed
        };
        report.record(
            "sysbox.binaries",
            status,
            format!(
                "{} in place ({} changed), read in {:?}; {} documentation entries skipped",
                bins.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", "),
                changed.len(),
                t.elapsed(),
                staged.skipped_docs
            ),
        );

        let o = units::write_units(root, &staged.units)?;
        report.record(
            "sysbox.unit_files",
            outcome_status(o),
            format!(
                "{} and {} in {}",
                deb::SYSBOX_UNITS.join(", "),
                units::DOCKER_DROPIN,
                units::UNIT_DIR
            ),
        );

        let o = if opts.live {
            crate::host::accounts::add_system_user_live(root, &install::SYSBOX_ACCOUNT)
                .map_err(anyhow::Error::msg)
                .context("adding the sysbox user")?
        } else {
            crate::host::accounts::add_system_user_files(root, &install::SYSBOX_ACCOUNT)?
        };
        report.record(
            "sysbox.user",
            outcome_status(o),
            "system user sysbox (no login shell)",
        );

        let o = install::sysboxfs_dir(root)?;
        report.record("sysbox.sysboxfs", outcome_status(o), install::SYSBOXFS_DIR);

        let wanted = sysctl::wanted(&staged.sysctl_conf);
        let live_sysctl = opts.live.then(|| Sysctl::at(&opts.proc_sys));
        let s = sysctl::apply(root, &wanted, live_sysctl.as_ref())?;
        let mut msg = format!(
            "{} keys persisted in {}",
            wanted.len() - s.dropped.len(),
            sysctl::SYSCTL_CONF
        );
        if !s.raised.is_empty() {
            let r: Vec<String> = s
                .raised
                .iter()
                .map(|(k, f, t)| format!("{k} {f}->{t}"))
                .collect();
            msg.push_str(&format!("; raised {}", r.join(", ")));
        }
        if !s.dropped.is_empty() {
            msg.push_str(&format!(
                "; left out (this kernel lacks them): {}",
                s.dropped.join(", ")
            ));
        }
        if !opts.live {
            report.left_for_boot.push(format!(
                "sysctls: applied by systemd-sysctl at boot from {}",
                sysctl::SYSCTL_CONF
            ));
        }
        if !s.refused.is_empty() {
            msg.push_str(&format!("; the kernel refused: {}", s.refused.join("; ")));
        }
        let st = if !s.refused.is_empty() {
            Status::Degraded
        } else if s.file_changed || !s.raised.is_empty() {
            Status::Changed
        } else {
            Status::Ok
        };
        report.record("sysbox.sysctl", st, msg);

        let d =
            docker::write_daemon_json(root).context("registering sysbox-runc in daemon.json")?;
        let mut msg = format!(
            "runtimes.sysbox-runc.path = {} in {}",
            docker::SYSBOX_RUNC,
            docker::DAEMON_JSON
        );
        if let Some(dr) = &d.default_runtime {
            msg.push_str(&format!(
                "; default-runtime is {dr:?} (left as the operator set it)"
            ));
        }
        report.record("docker.daemon_json", outcome_status(d.outcome), msg);

        match &opts.cluster {
            Some(c) => {
                let o = ecs::write_ecs_config(root, c)?;
                report.record("ecs.config", outcome_status(o), format!("ECS_CLUSTER={c}, ECS_AWSVPC_BLOCK_IMDS=true, ECS_DISABLE_PRIVILEGED=true in {}", ecs::ECS_CONFIG));
            }
            None => report.record(
                "ecs.config",
                Status::Skipped,
                "no --cluster given; ecs.config left alone",
            ),
        }

        match prereq {
            Some(h) => {
                let p = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("prerequisite thread panicked"))?;
                let (st, msg) = if p.missing_before.is_empty() {
                    (
                        Status::Ok,
                        "rsync, modprobe, iptables, fusermount present".to_string(),
                    )
                } else if p.missing_after.is_empty() {
                    (
                        Status::Changed,
                        format!(
                            "installed {} for {} in {:?}",
                            p.installed.join(" "),
                            p.missing_before.join(", "),
                            p.elapsed
                        ),
                    )
                } else {
                    (
                        Status::Degraded,
                        format!(
                            "still missing {} (Sysbox will not start without them){}",
                            p.missing_after.join(", "),
                            p.error.map(|e| format!(": {e}")).unwrap_or_default()
                        ),
                    )
                };
                report.record("sysbox.prereqs", st, msg);
            }
            None => {
                let m: Vec<&str> = prereqs::missing(root).iter().map(|t| t.name).collect();
                if m.is_empty() {
                    report.record(
                        "sysbox.prereqs",
                        Status::Ok,
                        "rsync, modprobe, iptables, fusermount present in the root",
                    );
                } else {
                    report.record(
                        "sysbox.prereqs",
                        Status::Skipped,
                        format!(
                            "missing in the root: {} (offline: not installed)",
                            m.join(", ")
                        ),
                    );
                    report
                        .left_for_boot
                        .push(format!("install {} before Sysbox can start", m.join(", ")));
                }
            }
        }

        systemd_step(opts, b, &staged.units, d.outcome, &mut report);
        window_step(opts, b, &mut report)?;
        guard_step(opts, b, &mut report);
        Ok(())
    })?;

    if let Some(profile) = opts.baseline {
        baseline_step(opts, b, profile, &mut report)?;
    }

    if report.failed() {
        report.record(
            "bootstrap",
            Status::Failed,
            format!("incomplete after {:?}; re-run to converge", start.elapsed()),
        );
        return Ok(report);
    }
    let o = install::write_marker(root, &marker)?;
    report.complete = true;
    let st = if report.unchanged() && !o.changed() {
        Status::Ok
    } else {
        Status::Changed
    };
    let msg = if st == Status::Ok {
        format!("complete; nothing changed ({:?})", start.elapsed())
    } else {
        format!("complete in {:?}", start.elapsed())
    };
    report.record("bootstrap", st, msg);
    Ok(report)
}

/// Installs the maintenance window's units and group, and enables its socket (step 7).
fn window_step(opts: &Options, b: &Boundaries<'_>, report: &mut Report) -> anyhow::Result<()> {
    use crate::window::units as wu;
    let root = &opts.root;
    let o = wu::write_units(root).context("writing the window units")?;
    let g = if opts.live {
        crate::host::accounts::add_system_group_live(root, wu::CLIENT_GROUP)
            .map_err(anyhow::Error::msg)
    } else {
        crate::host::accounts::add_system_group_files(root, wu::CLIENT_GROUP)
            .map_err(anyhow::Error::from)
    }
    .with_context(|| format!("adding the group {}", wu::CLIENT_GROUP))?;
    report.record(
        "window.files",
        outcome_status(o.or(g)),
        format!(
            "{} and {} in {}, {}; group {}",
            wu::SOCKET_UNIT,
            wu::SERVICE_UNIT,
            wu::UNIT_DIR,
            wu::SYSUSERS_CONF,
            wu::CLIENT_GROUP
        ),
    );
    let sd = if opts.live && !opts.no_start {
        match &b.systemd {
            Ok(sd) => Some(*sd),
            Err(e) => {
                report.record(
                    "window.units",
                    Status::Failed,
                    format!("no systemd over D-Bus: {e}"),
                );
                return Ok(());
            }
        }
    } else {
        None
    };
    match crate::host::systemd::enable_and_start(root, sd, wu::SOCKET_UNIT, wu::SOCKET_TEXT) {
        Ok((changed, msg)) => report.record(
            "window.units",
            if changed { Status::Changed } else { Status::Ok },
            msg,
        ),
        Err(e) => report.record("window.units", Status::Failed, e),
    }
    Ok(())
}

/// Removes temporary files a killed earlier run left next to any file bootstrap writes (the run
/// lock is held, so none of them belongs to a live writer).
fn sweep_stale_temps(root: &HostRoot) {
    let mut paths: Vec<String> = deb::SYSBOX_BINARIES
        .iter()
        .map(|(_, h)| h.to_string())
        .collect();
    for u in [
        crate::window::units::SOCKET_UNIT,
        crate::window::units::SERVICE_UNIT,
    ] {
        paths.push(format!("{}/{u}", units::UNIT_DIR));
        paths.push(format!("{}/sockets.target.wants/{u}", units::UNIT_DIR));
    }
    paths.push(crate::window::units::SYSUSERS_CONF.to_string());
    for u in deb::SYSBOX_UNITS {
        paths.push(format!("{}/{u}", units::UNIT_DIR));
        paths.push(format!("{}/multi-user.target.wants/{u}", units::UNIT_DIR));
        paths.push(format!("{}/sysbox.service.wants/{u}", units::UNIT_DIR));
    }
    paths.extend(
        [
            units::DOCKER_DROPIN,
            docker::DAEMON_JSON,
            ecs::ECS_CONFIG,
            sysctl::SYSCTL_CONF,
            install::MARKER,
            "/etc/passwd",
            "/etc/group",
            "/etc/shadow",
            "/etc/gshadow",
        ]
        .map(String::from),
    );
    for p in paths {
        deb::sweep_stale_temps(&root.path(p));
    }
    if let Ok(rd) = std::fs::read_dir(root.path(download::CACHE_DIR)) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().contains(".clawster-tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn obtain(
    opts: &Options,
    b: &Boundaries<'_>,
    sha256: &str,
    report: &mut Report,
) -> anyhow::Result<PathBuf> {
    let t = Instant::now();
    let (path, how) = match &opts.source {
        Source::File(f) => download::obtain_local(&opts.root, f, sha256),
        Source::Url(u) => download::obtain_url(
            &opts.root,
            std::slice::from_ref(u),
            sha256,
            b.fetcher,
            opts.retry,
        ),
        Source::Default => download::obtain_url(
            &opts.root,
            &opts.arch.default_urls(),
            sha256,
            b.fetcher,
            opts.retry,
        ),
    }
    .map_err(|e| {
        report.record("sysbox.download", Status::Failed, format!("{e:#}"));
        e
    })
    .context("getting the Sysbox package")?;
    let (st, msg) = match how {
        Obtained::Cached => (
            Status::Ok,
            format!("verified cached package {}", path.display()),
        ),
        Obtained::Copied => (
            Status::Changed,
            format!("verified and cached {}", path.display()),
        ),
        Obtained::Downloaded { url, attempts } => (
            Status::Changed,
            format!(
                "downloaded {url} ({attempts} attempt(s), {:?}), verified, cached",
                t.elapsed()
            ),
        ),
    };
    report.record("sysbox.download", st, format!("{msg}; sha256 {sha256}"));
    Ok(path)
}

/// Step 9: the host security baseline; its steps become bootstrap steps (`baseline.<control>`).
fn baseline_step(
    opts: &Options,
    b: &Boundaries<'_>,
    profile: crate::baseline::Profile,
    report: &mut Report,
) -> anyhow::Result<()> {
    let live = opts.live && !opts.no_start;
    let ctx = crate::baseline::Ctx {
        root: opts.root.clone(),
        live,
        profile,
        systemd: if live {
            b.systemd.clone()
        } else {
            Err("offline or --no-start: no D-Bus".into())
        },
    };
    let rep = crate::baseline::apply(&ctx)
        .with_context(|| format!("applying the {} baseline", profile.as_str()))?;
    // apply already wrote each step's journal record; keep them in bootstrap's report.
    for s in rep.steps {
        report.steps.push(Step {
            check: format!("baseline.{}", s.control),
            status: s.status,
            message: s.message,
        });
    }
    report.left_for_boot.extend(rep.left_for_boot);
    Ok(())
}

/// Step 8: the bot's Docker socket ([`crate::docker_guard::install`]). *Non-fatal, recorded as failed.*
fn guard_step(opts: &Options, b: &Boundaries<'_>, report: &mut Report) {
    let sd = if opts.live && !opts.no_start {
        match &b.systemd {
            Ok(sd) => Ok(Some(*sd)),
            Err(e) => Err(format!("no systemd over D-Bus: {e}")),
        }
    } else {
        Ok(None)
    };
    match sd.and_then(|sd| crate::docker_guard::install::install(&opts.root, sd)) {
        Ok((st, msg)) => report.record("docker_guard.units", st, msg),
        Err(e) => report.record("docker_guard.units", Status::Failed, e),
    }
}

fn systemd_step(
    opts: &Options,
    b: &Boundaries<'_>,
    unit_texts: &[(String, Vec<u8>)],
    daemon_json: WriteOutcome,
    report: &mut Report,
) {
    let names: Vec<&str> = deb::SYSBOX_UNITS.to_vec();
    if !opts.live || opts.no_start {
        match crate::host::systemd::enable_as_files(&opts.root, unit_texts) {
            Ok(made) => {
                let st = if made.is_empty() {
                    Status::Ok
                } else {
                    Status::Changed
                };
                report.record(
                    "sysbox.units",
                    st,
                    format!(
                        "enabled as files ({} symlinks made); not started (offline)",
                        made.len()
                    ),
                );
            }
            Err(e) => report.record("sysbox.units", Status::Failed, format!("{e:#}")),
        }
        report.record(
            "docker.reload",
            Status::Skipped,
            if opts.live {
                "--no-start: dockerd not signalled"
            } else {
                "offline root: no processes touched"
            },
        );
        report.left_for_boot.push(
            "sysbox.service starts at boot (multi-user.target) and with Docker (drop-in)".into(),
        );
        if daemon_json.changed() {
            report
                .left_for_boot
                .push("dockerd reads daemon.json at its next start".into());
        }
        return;
    }
    let sd = match &b.systemd {
        Ok(sd) => *sd,
        Err(e) => {
            report.record(
                "sysbox.units",
                Status::Failed,
                format!("no systemd over D-Bus: {e}"),
            );
            return;
        }
    };
    let result = (|| -> Result<(Status, String), String> {
        // EnableUnitFiles works on the files on disk; one Reload afterwards makes the manager see
        // the new units, their enablement and the docker.service drop-in. (Always one: a killed
        // earlier run may have written the files without reloading.)
        let changes = sd.enable(&names)?;
        sd.reload()?;
        let state = sd.active_state(units::MAIN_UNIT)?;
        let start = if state == "active" || state == "activating" || state == "reloading" {
            format!("{} already {state} (never restarted)", units::MAIN_UNIT)
        } else {
            let job = sd.start_no_block(units::MAIN_UNIT)?;
            format!(
                "start of {} queued as {job} (not waited for)",
                units::MAIN_UNIT
            )
        };
        let st = if changes.is_empty() && start.contains("already") {
            Status::Ok
        } else {
            Status::Changed
        };
        Ok((
            st,
            format!(
                "enabled {} ({} changes); {start}; docker.service wants and orders after it",
                names.join(", "),
                changes.len()
            ),
        ))
    })();
    match result {
        Ok((st, msg)) => report.record("sysbox.units", st, msg),
        Err(e) => report.record("sysbox.units", Status::Failed, e),
    }
    if daemon_json.changed() {
        match b.dockerd.reload() {
            Ok(Some(pid)) => report.record(
                "docker.reload",
                Status::Changed,
                format!("sent SIGHUP to dockerd (pid {pid}) to load the runtime"),
            ),
            Ok(None) => report.record(
                "docker.reload",
                Status::Ok,
                "dockerd not running; it reads daemon.json when it starts",
            ),
            Err(e) => report.record("docker.reload", Status::Failed, e),
        }
    } else {
        report.record(
            "docker.reload",
            Status::Ok,
            "daemon.json unchanged; no reload needed",
        );
    }
}
