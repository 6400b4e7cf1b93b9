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
//!    the binaries in place ([`deb`]): their last syncs and the renames run on a thread while
//!    steps 5-7 and the first half of step 8 go on (the reload overlaps the syncs). *Fatal*; a
//!    failure to put them in place after step 8's enable leaves the units enabled, not started.
//! 5. The Sysbox units and the Docker drop-in, the `sysbox` user (*fatal* on write errors).
//! 6. The package maintenance window's files: its units, sysusers.d line and client group.
//!    *Fatal* on write errors.
//! 7. The bot's Docker socket's files: the docker-guard units and the bot's state directory
//!    ([`crate::docker_guard::install::write_files`]). *Non-fatal, recorded as failed*
//!    (`docker_guard.units`; its socket is then left out of step 8).
//! 8. systemd, in one batch once every unit file is on disk. Live: ONE `EnableUnitFiles` of the
//!    three Sysbox units and both sockets; ONE `Reload`, skipped only when provably unneeded (no
//!    unit file written and no enablement changed by this run, and systemd reports no loaded unit
//!    of ours nor docker.service as `NeedDaemonReload` and every `WantedBy=` target already
//!    wants its unit: so a killed earlier run's unreloaded files still get their reload). Then,
//!    with the binaries in place: /var/lib/sysboxfs, sysctls (live: raise only), daemon.json,
//!    ecs.config (*fatal* on write errors); `sysbox.service` started without
//!    waiting; dockerd's SIGHUP if daemon.json changed and it runs (after the runtime is
//!    registered and Sysbox's start is queued; docker.service wants and orders after Sysbox
//!    through the drop-in, loaded by that same reload); both sockets are started (without
//!    waiting) just before Sysbox.
//!    A running unit is never restarted. Offline or `--no-start`: the enablement symlinks only.
//!    The records stay per step (`sysbox.units`, `docker.reload`, `window.units`,
//!    `docker_guard.units`) and say what was batched. *Non-fatal, recorded as failed* (no
//!    marker, exit 1): a failed enable or reload fails all three unit records; a failed start
//!    fails only its own.
//!    8b. With `--state-bucket` and `--bot`: the bot's state replication
//!    ([`crate::state::install`]): /etc/clawster/state.json, the restore and replication units
//!    and the ECS agent's drop-in that makes it wait for the restore; the replication is
//!    enabled and started (its own enable and reload, after the batch). *Non-fatal, recorded
//!    as failed* (`state.units`).
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
    /// Replicate the bot's state with these settings (step 8b).
    pub state: Option<crate::state::Settings>,
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
            state: None,
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
        let read_took = t.elapsed();
        // The whole package is read and checked. The binaries' last syncs and their renames run
        // on a thread while every unit file is written and systemd enables them and reloads
        // (once), so the reload overlaps the syncs; nothing is started before both are done.
        let mut bins = deb::Staged {
            binaries: std::mem::take(&mut staged.binaries),
            units: Vec::new(),
            sysctl_conf: String::new(),
            skipped_docs: 0,
        };
        let commit = scope.spawn(move || bins.commit_binaries());
        let unit_files = units::write_units(root, &staged.units)?;
        // The sysbox user before the window's group, so ids are given out in the same order
        // as ever.
        let user = if opts.live {
            crate::host::accounts::add_system_user_live(root, &install::SYSBOX_ACCOUNT)
                .map_err(anyhow::Error::msg)
                .context("adding the sysbox user")?
        } else {
            crate::host::accounts::add_system_user_files(root, &install::SYSBOX_ACCOUNT)?
        };
        let window_files = write_window_files(opts)?;
        let files_changed = UnitFiles {
            sysbox: unit_files.changed(),
            window: window_files.changed(),
            guard: crate::docker_guard::install::write_files(root),
        };
        let batch = enable_batch(opts, b, &staged.units, &files_changed);
        let bins = commit
            .join()
            .map_err(|_| anyhow::anyhow!("the thread putting the binaries in place panicked"))?
            .context("putting the Sysbox binaries in place")?;
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
                "{} in place ({} changed), read in {read_took:?}, in place after {:?}; {} \
                 documentation entries skipped",
                bins.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", "),
                changed.len(),
                t.elapsed(),
                staged.skipped_docs
            ),
        );
        report.record(
            "sysbox.unit_files",
            outcome_status(unit_files),
            format!(
                "{} and {} in {}",
                deb::SYSBOX_UNITS.join(", "),
                units::DOCKER_DROPIN,
                units::UNIT_DIR
            ),
        );

        report.record(
            "sysbox.user",
            outcome_status(user),
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
                report.record("ecs.config", outcome_status(o), format!("ECS_CLUSTER={c}, ECS_AWSVPC_BLOCK_IMDS=true, ECS_DISABLE_PRIVILEGED=true, ECS_IMAGE_PULL_BEHAVIOR=prefer-cached in {}", ecs::ECS_CONFIG));
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

        record_window_files(&mut report, window_files);
        units_step(
            opts,
            b,
            &staged.units,
            &files_changed,
            batch,
            d.outcome,
            &mut report,
        );
        Ok(())
    })?;

    if let Some(settings) = &opts.state {
        state_step(opts, b, settings, &mut report);
    }

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

/// Writes the maintenance window's units, sysusers.d line and group (step 6). Its socket is
/// enabled in the batch of [`enable_batch`].
fn write_window_files(opts: &Options) -> anyhow::Result<WriteOutcome> {
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
    Ok(o.or(g))
}

/// The record of [`write_window_files`].
fn record_window_files(report: &mut Report, o: WriteOutcome) {
    use crate::window::units as wu;
    report.record(
        "window.files",
        outcome_status(o),
        format!(
            "{} and {} in {}, {}; group {}",
            wu::SOCKET_UNIT,
            wu::SERVICE_UNIT,
            wu::UNIT_DIR,
            wu::SYSUSERS_CONF,
            wu::CLIENT_GROUP
        ),
    );
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
    ]
    .into_iter()
    .chain(crate::docker_guard::UNITS.iter().map(|(n, _)| *n))
    {
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

/// Step 8b: the state replication ([`crate::state::install`]): settings, units, the ECS agent's
/// drop-in, then the replication started (which runs the restore first). *Non-fatal, recorded as
/// failed* (`state.units`); the ECS drop-in still keeps the bot from starting without a restore.
fn state_step(
    opts: &Options,
    b: &Boundaries<'_>,
    settings: &crate::state::Settings,
    report: &mut Report,
) {
    let sd = match (&b.systemd, opts.live && !opts.no_start) {
        (Ok(sd), true) => Some(*sd),
        _ => None,
    };
    match crate::state::install::install(&opts.root, settings, sd) {
        Ok((changed, how)) => report.record(
            "state.units",
            if changed { Status::Changed } else { Status::Ok },
            how,
        ),
        Err(e) => report.record("state.units", Status::Failed, e),
    }
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

/// Which unit files this run changed, per step (the guard's `Err` says why its files failed).
struct UnitFiles {
    sysbox: bool,
    window: bool,
    guard: Result<bool, String>,
}

/// What [`enable_batch`] did with systemd.
enum Batch<'a> {
    /// Offline or `--no-start`: nothing asked (enablement as files in [`units_step`]).
    Files,
    /// Enabling or reloading failed, or there is no D-Bus: the reason, for every unit record.
    Failed(String),
    /// Enabled and (if needed) reloaded.
    Ready {
        sd: &'a dyn crate::host::systemd::Systemd,
        /// The symlinks `EnableUnitFiles` changed.
        changes: Vec<String>,
        /// What was batched and what it took.
        note: String,
    },
}

/// Step 8's first half, live: ONE `EnableUnitFiles` of the Sysbox units and both sockets (the
/// guard's only when its files are in place), then at most ONE `Reload`. Runs while the
/// binaries' last syncs and renames go on; starts nothing.
fn enable_batch<'a>(
    opts: &Options,
    b: &Boundaries<'a>,
    sysbox_units: &[(String, Vec<u8>)],
    files: &UnitFiles,
) -> Batch<'a> {
    use crate::docker_guard::install as gi;
    use crate::host::systemd as sdf;
    use crate::window::units as wu;
    if !opts.live || opts.no_start {
        return Batch::Files;
    }
    let sd = match &b.systemd {
        Ok(sd) => *sd,
        Err(e) => return Batch::Failed(format!("no systemd over D-Bus: {e}")),
    };
    let texts: Vec<(String, String)> = sysbox_units
        .iter()
        .map(|(n, t)| (n.clone(), String::from_utf8_lossy(t).into_owned()))
        .collect();
    let mut batch: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    batch.push((wu::SOCKET_UNIT, wu::SOCKET_TEXT));
    if files.guard.is_ok() {
        batch.push((gi::SOCKET_UNIT, gi::socket_text()));
    }
    let names: Vec<&str> = batch.iter().map(|(n, _)| *n).collect();
    let enabled = (|| -> Result<(Vec<String>, String), String> {
        let t = Instant::now();
        let changes = sd.enable(&names)?;
        let enable_took = t.elapsed();
        // A Reload is skipped only when provably unnecessary: no unit file of ours changed, the
        // enablement changed nothing, and systemd confirms it already sees every file as it is
        // (this covers a killed earlier run that wrote or enabled without reloading).
        let guard_changed = matches!(files.guard, Ok(true));
        let why = if files.sysbox || files.window || guard_changed {
            vec!["unit files written".to_string()]
        } else if !changes.is_empty() {
            vec![format!("{} enablement changes", changes.len())]
        } else {
            sdf::reload_reasons(sd, &batch, &["docker.service"])
                .unwrap_or_else(|e| vec![format!("could not tell whether systemd is current: {e}")])
        };
        let how = if why.is_empty() {
            format!(
                "EnableUnitFiles took {enable_took:.1?}; no Reload needed (systemd already sees these files)"
            )
        } else {
            let t = Instant::now();
            sd.reload()?;
            format!(
                "EnableUnitFiles took {enable_took:.1?}; one Reload for all ({}) took {:.1?}, \
                 overlapping the binaries' syncs",
                why.join("; "),
                t.elapsed()
            )
        };
        Ok((changes, how))
    })();
    match enabled {
        Ok((changes, how)) => Batch::Ready {
            sd,
            changes,
            note: format!("one EnableUnitFiles of {}; {how}", names.join(", ")),
        },
        Err(e) => Batch::Failed(format!("enabling {} in one batch: {e}", names.join(", "))),
    }
}

/// Step 8's second half (see the module doc): live, the starts (never waited for) of what
/// [`enable_batch`] enabled, and dockerd's SIGHUP right after Sysbox's start is queued; offline
/// or `--no-start`, the enablement symlinks. Each step keeps its record (`sysbox.units`,
/// `docker.reload`, `window.units`, `docker_guard.units`), which says what was batched.
/// *Non-fatal, recorded as failed.*
fn units_step(
    opts: &Options,
    b: &Boundaries<'_>,
    sysbox_units: &[(String, Vec<u8>)],
    files: &UnitFiles,
    batch: Batch<'_>,
    daemon_json: WriteOutcome,
    report: &mut Report,
) {
    use crate::docker_guard::install as gi;
    use crate::host::systemd as sdf;
    use crate::window::units as wu;
    let guard_tail = format!(
        "the bot's Docker socket is {}, bind root {}",
        crate::docker_guard::DEFAULT_LISTEN,
        crate::docker_guard::policy::DEFAULT_BIND_ROOT
    );
    let (sd, changes, batch_note) = match batch {
        Batch::Ready { sd, changes, note } => (sd, changes, note),
        // Offline or --no-start: the enablement symlinks.
        Batch::Files => {
            match sdf::enable_as_files(&opts.root, sysbox_units) {
                Ok(made) => report.record(
                    "sysbox.units",
                    if made.is_empty() {
                        Status::Ok
                    } else {
                        Status::Changed
                    },
                    format!(
                        "enabled as files ({} symlinks made); not started (offline)",
                        made.len()
                    ),
                ),
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
                "sysbox.service starts at boot (multi-user.target) and with Docker (drop-in)"
                    .into(),
            );
            if daemon_json.changed() {
                report
                    .left_for_boot
                    .push("dockerd reads daemon.json at its next start".into());
            }
            let one = |unit: &str, text: &str| {
                sdf::enable_as_files(&opts.root, &[(unit.to_string(), text.as_bytes().to_vec())])
                    .map_err(|e| format!("{e:#}"))
            };
            match one(wu::SOCKET_UNIT, wu::SOCKET_TEXT) {
                Ok(made) => report.record(
                    "window.units",
                    if made.is_empty() {
                        Status::Ok
                    } else {
                        Status::Changed
                    },
                    format!(
                        "{} enabled as files; it starts at the next boot",
                        wu::SOCKET_UNIT
                    ),
                ),
                Err(e) => report.record("window.units", Status::Failed, e),
            }
            match files
                .guard
                .clone()
                .and_then(|ch| Ok((ch, one(gi::SOCKET_UNIT, gi::socket_text())?)))
            {
                Ok((ch, made)) => report.record(
                    "docker_guard.units",
                    if ch || !made.is_empty() {
                        Status::Changed
                    } else {
                        Status::Ok
                    },
                    format!(
                        "{} enabled as files; it starts at the next boot; {guard_tail}",
                        gi::SOCKET_UNIT
                    ),
                ),
                Err(e) => report.record("docker_guard.units", Status::Failed, e),
            }
            return;
        }
        Batch::Failed(e) => {
            report.record("sysbox.units", Status::Failed, e.clone());
            docker_reload(b, daemon_json, report);
            report.record("window.units", Status::Failed, e.clone());
            let e = files.guard.clone().err().unwrap_or(e);
            report.record("docker_guard.units", Status::Failed, e);
            return;
        }
    };
    let changes_of = |units: &[&str]| {
        changes
            .iter()
            .filter(|c| units.iter().any(|u| c.contains(&format!("/{u}"))))
            .count()
    };

    // The sockets first (binding them is quick), Sysbox's start last: once it is queued systemd
    // is busy forking its daemons, and nothing of ours waits on that. dockerd gets its SIGHUP
    // only once the runtime is registered and Sysbox's start is queued (docker.service wants and
    // orders after it through the drop-in). The records keep their order.
    let window = start_unless_active(sd, wu::SOCKET_UNIT);
    let guard = files
        .guard
        .clone()
        .and_then(|ch| Ok((ch, start_unless_active(sd, gi::SOCKET_UNIT)?)));
    let n = changes_of(&deb::SYSBOX_UNITS);
    match start_unless_active(sd, units::MAIN_UNIT) {
        Ok((started, start)) => report.record(
            "sysbox.units",
            if n == 0 && !started {
                Status::Ok
            } else {
                Status::Changed
            },
            format!(
                "{} enabled ({n} changes); {start}; docker.service wants and orders after it \
                 [{batch_note}]",
                deb::SYSBOX_UNITS.join(", ")
            ),
        ),
        Err(e) => report.record(
            "sysbox.units",
            Status::Failed,
            format!("{e} [{batch_note}]"),
        ),
    }
    docker_reload(b, daemon_json, report);

    let n = changes_of(&[wu::SOCKET_UNIT]);
    match window {
        Ok((started, start)) => report.record(
            "window.units",
            if n == 0 && !started {
                Status::Ok
            } else {
                Status::Changed
            },
            format!(
                "{} enabled ({n} changes, in the batch of sysbox.units); {start}",
                wu::SOCKET_UNIT
            ),
        ),
        Err(e) => report.record("window.units", Status::Failed, e),
    }

    let n = changes_of(&[gi::SOCKET_UNIT]);
    match guard {
        Ok((guard_changed, (started, start))) => report.record(
            "docker_guard.units",
            if n == 0 && !started && !guard_changed {
                Status::Ok
            } else {
                Status::Changed
            },
            format!(
                "{} enabled ({n} changes, in the batch of sysbox.units); {start}; {guard_tail}",
                gi::SOCKET_UNIT
            ),
        ),
        Err(e) => report.record("docker_guard.units", Status::Failed, e),
    }
}

/// Queues the unit's start (`StartUnit` replace, not waited for) unless it is already active,
/// activating or reloading: a running unit is never restarted. Returns whether a start was
/// queued and what was done.
fn start_unless_active(
    sd: &dyn crate::host::systemd::Systemd,
    unit: &str,
) -> Result<(bool, String), String> {
    let state = sd.active_state(unit)?;
    if state == "active" || state == "activating" || state == "reloading" {
        return Ok((false, format!("{unit} already {state} (never restarted)")));
    }
    let job = sd.start_no_block(unit)?;
    Ok((
        true,
        format!("start of {unit} queued as {job} (not waited for)"),
    ))
}

/// dockerd's SIGHUP when daemon.json changed (it re-reads its runtimes; never a restart).
fn docker_reload(b: &Boundaries<'_>, daemon_json: WriteOutcome, report: &mut Report) {
    if !daemon_json.changed() {
        report.record(
            "docker.reload",
            Status::Ok,
            "daemon.json unchanged; no reload needed",
        );
        return;
    }
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
}
