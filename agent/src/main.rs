//! `clawster-agent`: the agent on each Clawster bot host.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clawster_agent::bootstrap::{self, docker, download, Arch, Boundaries, Options, Source};
use clawster_agent::docker_guard;
use clawster_agent::health;
use clawster_agent::host::packages::{self, CommandPackageManager, PackageManager};
use clawster_agent::host::systemd::{DbusSystemd, Systemd};
use clawster_core::cli::{finish, LogArgs};
use clawster_core::fs::HostRoot;
use clawster_core::logging::{health as health_record, Status};
use clawster_core::sysctl::Sysctl;

/// The Clawster bot-host agent.
///
/// Runs on each host that runs an OpenClaw bot. It is downloaded by the launch template's
/// UserData (which checks its SHA256 first) and replaces the old shell UserData with native,
/// idempotent steps. Every step writes a structured record to the systemd journal
/// (`journalctl -t clawster-agent -o json`; fields CLAWSTER_CHECK and CLAWSTER_STATUS).
#[derive(Debug, Parser)]
#[command(name = "clawster-agent", version = clawster_core::VERSION, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install Sysbox natively, register it with Docker, write ecs.config (first boot).
    ///
    /// Gets the pinned Sysbox v0.6.7 package (cache, local file or download with bounded
    /// retries), verifies its SHA256 before reading a byte of it, and installs only the files it
    /// expects, each to an explicit destination, atomically (never unpacking onto /). Then: units
    /// in /etc/systemd/system plus a docker.service drop-in that pulls Sysbox in whenever Docker
    /// starts; the sysbox user; /var/lib/sysboxfs; sysctls (raise only, persisted); the
    /// sysbox-runc runtime in /etc/docker/daemon.json (never the default runtime; a running
    /// dockerd gets SIGHUP, never a restart); /etc/ecs/ecs.config; missing rsync, modprobe,
    /// iptables or fusermount installed with dnf or apt-get while the package downloads; systemd
    /// enable/reload/start over D-Bus without waiting. A completion marker is written last.
    /// Re-running changes nothing; a killed run converges on the next one.
    ///
    /// Exit status: 0 done (a degraded step, e.g. a missing prerequisite or a sysctl the kernel
    /// refused, is reported in the journal and by `health`, not fatal), 1 failed.
    Bootstrap(BootstrapArgs),

    /// Check everything bootstrap is responsible for.
    ///
    /// Exit status: 0 healthy, 1 degraded (a check does not hold), 2 could not check.
    Health(HealthArgs),

    /// The bot's Docker socket: a filtering Docker Engine API proxy.
    ///
    /// The bot's task gets /run/clawster/docker.sock (socket unit clawster-docker-guard.socket,
    /// installed by bootstrap) instead of the host's Docker socket; see `docker-guard serve --help`
    /// for what passes.
    ///
    /// Example: clawster-agent docker-guard serve --listen /tmp/guard.sock
    #[command(subcommand)]
    DockerGuard(DockerGuardCommand),

    /// Write one test record to the journal and say where logging goes.
    ///
    /// Use it on a new host to check that health records reach the journal:
    /// `clawster-agent log-test && journalctl -t clawster-agent -o json -n 1`.
    LogTest,
}

#[derive(Debug, clap::Args)]
struct BootstrapArgs {
    /// Work offline on the root filesystem at DIR (a test root or an image being baked), like
    /// `systemctl --root`: files only; never the running kernel, package manager, D-Bus or
    /// processes. Prints what it left for boot.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,

    /// ECS cluster name for /etc/ecs/ecs.config (without it ecs.config is left alone).
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,

    /// Package architecture (default: this machine's).
    #[arg(long, value_enum)]
    arch: Option<Arch>,

    /// Use this local .deb instead of downloading (still verified against the SHA256).
    #[arg(long, value_name = "FILE", conflicts_with = "sysbox_url")]
    sysbox_deb: Option<PathBuf>,

    /// Download from this URL instead of the official release URL and its mirror.
    #[arg(long, value_name = "URL")]
    sysbox_url: Option<String>,

    /// Expected SHA256 of the package (default: the pinned v0.6.7 hash for --arch).
    #[arg(long, value_name = "HEX")]
    sysbox_sha256: Option<String>,

    /// On the live host, do not use D-Bus or signals: enable units as files, start nothing.
    #[arg(long)]
    no_start: bool,

    /// Overall download deadline in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    download_deadline: u64,

    /// Download attempts (rounds over the URLs).
    #[arg(long, value_name = "N", default_value_t = 4)]
    download_attempts: u32,

    /// Upper bound for the package manager, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    prereq_timeout: u64,

    /// Package manager program called as `PROGRAM install -y -- PKGS` instead of dnf/apt-get
    /// (benchmarks and tests).
    #[arg(long, value_name = "PROGRAM", hide = true)]
    package_manager: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum DockerGuardCommand {
    /// Serve the filtered Docker API (normally started by clawster-docker-guard.socket).
    ///
    /// The bot's task gets this socket instead of the host's Docker socket. OpenClaw's sandbox
    /// calls pass: ping/version/info; inspect of the image allowlist and of containers the guard
    /// created (or the caller's own container); create under the `openclaw-sbx-` prefix with the
    /// `openclaw.sandbox=1` label, no privilege, capabilities, host namespaces, devices, ports,
    /// mounts or sysctls, binds only inside the bot's state directory (no symlinks), with the
    /// sysbox-runc runtime and memory/CPU/pids limits forced; start, pause, exec and forced
    /// delete of containers it created; exec follow-ups of execs it created; the gateway's exact
    /// self-probe exec. Everything else gets 403 (404 for lookups) with a JSON message naming
    /// the rule. Bodies are judged as dockerd reads them (duplicate keys and keys that differ
    /// only in case are refused) and forwarded exactly as judged. Every refusal and every
    /// container created is a journal record (CLAWSTER_CHECK=docker_guard.refused /
    /// docker_guard.created with METHOD, PATH, RULE, CALLER_PID).
    ///
    /// Socket-activated by systemd (the socket unit's ListenStream=); without activation it
    /// binds --listen itself.
    ///
    /// Examples:
    ///   clawster-agent docker-guard serve
    ///   clawster-agent docker-guard serve --listen /tmp/guard.sock --policy /etc/clawster/docker-guard.json
    #[command(verbatim_doc_comment)]
    Serve(GuardServeArgs),
}

#[derive(Debug, clap::Args)]
struct GuardServeArgs {
    /// Socket to listen on when not socket-activated.
    #[arg(long, value_name = "PATH", env = "CLAWSTER_GUARD_LISTEN", default_value = clawster_agent::docker_guard::DEFAULT_LISTEN)]
    listen: PathBuf,

    /// dockerd's socket.
    #[arg(long, value_name = "PATH", env = "CLAWSTER_GUARD_UPSTREAM", default_value = clawster_agent::docker_guard::DEFAULT_UPSTREAM)]
    upstream: PathBuf,

    /// Policy file (JSON; keys: images, container_prefix, required_label, owner, bind_root,
    /// networks, runtime, memory_max, nano_cpus_max, pids_max, probe_node_paths, probe_sha256,
    /// max_body). Without it the built-in allowlist applies (bind_root /var/lib/clawster/openclaw).
    #[arg(long, value_name = "FILE", env = "CLAWSTER_GUARD_POLICY")]
    policy: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct HealthArgs {
    /// Check the root filesystem at DIR instead of the live host (files only).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(run(cli), 1)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let setup = cli.log.init("clawster-agent")?;
    match cli.command {
        Command::LogTest => {
            health_record(
                "agent.logging",
                Status::Ok,
                &format!("clawster-agent {} log test", clawster_core::VERSION),
            );
            println!(
                "journal: {}, stderr: {}",
                if setup.journald { "yes" } else { "no" },
                if setup.stderr { "yes" } else { "no" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bootstrap(a) => run_bootstrap(a),
        Command::Health(a) => run_health(a),
        Command::DockerGuard(DockerGuardCommand::Serve(a)) => run_guard(a),
    }
}

fn run_bootstrap(a: BootstrapArgs) -> anyhow::Result<ExitCode> {
    let arch = match a.arch.or_else(Arch::native) {
        Some(arch) => arch,
        None => anyhow::bail!("cannot tell the package architecture of this machine: pass --arch"),
    };
    let root = HostRoot::new(&a.root);
    let mut opts = Options::new(root, arch);
    opts.cluster = a.cluster;
    opts.sha256 = a.sysbox_sha256;
    opts.no_start = a.no_start;
    opts.source = match (a.sysbox_deb, a.sysbox_url) {
        (Some(f), _) => Source::File(f),
        (None, Some(u)) => Source::Url(u),
        (None, None) => Source::Default,
    };
    opts.retry.deadline = Duration::from_secs(a.download_deadline);
    opts.retry.attempts = a.download_attempts.max(1);
    opts.prereq_timeout = Duration::from_secs(a.prereq_timeout);

    let fetcher = download::HttpFetcher::default();
    let dockerd = docker::LiveDockerd;
    let systemd = if opts.live && !opts.no_start {
        Some(DbusSystemd::connect())
    } else {
        None
    };
    let pm: Option<CommandPackageManager> = match &a.package_manager {
        Some(p) => Some(packages::custom(p)),
        None if opts.live => CommandPackageManager::detect(),
        None => None,
    };
    let b = Boundaries {
        fetcher: &fetcher,
        systemd: match &systemd {
            Some(Ok(sd)) => Ok(sd as &dyn Systemd),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not used".into()),
        },
        packages: pm.as_ref().map(|p| p as &dyn PackageManager),
        dockerd: &dockerd,
    };
    let report = bootstrap::run(&opts, &b)?;
    for s in &report.steps {
        println!("{:<20} {:<9} {}", s.check, s.status.as_str(), s.message);
    }
    if !report.left_for_boot.is_empty() {
        println!("left for boot:");
        for l in &report.left_for_boot {
            println!("  - {l}");
        }
    }
    if report.failed() {
        anyhow::bail!("bootstrap incomplete: see the failed steps above");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_guard(a: GuardServeArgs) -> anyhow::Result<ExitCode> {
    let policy = docker_guard::load_policy(a.policy.as_deref())?;
    let mut opts = docker_guard::Options::new(policy);
    opts.listen = a.listen;
    opts.upstream = a.upstream;
    let (listener, from) = docker_guard::listener(&opts)?;
    let notifier = clawster_core::sdnotify::Notifier::from_env().context("NOTIFY_SOCKET")?;
    let msg = format!(
        "serving the filtered Docker API on {from}, upstream {}, bind root {}, runtime {}",
        opts.upstream.display(),
        opts.policy.bind_root.display(),
        opts.policy.runtime
    );
    docker_guard::serve(opts, listener, || {
        health_record("docker_guard.serve", Status::Ok, &msg);
        if let Err(e) = notifier.ready(&msg) {
            tracing::warn!("sd_notify READY: {e}");
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_health(a: HealthArgs) -> anyhow::Result<ExitCode> {
    let root = HostRoot::new(&a.root);
    let sysctl = Sysctl::live();
    let report = if root.is_live() {
        match DbusSystemd::connect() {
            Ok(sd) => health::check(&root, Some((&sysctl, &sd))),
            Err(e) => {
                eprintln!("error: cannot check the live host: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    } else {
        health::check(&root, None)
    };
    health::log(&report);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("rendering JSON")?
        );
    } else {
        for c in &report.checks {
            println!("{:<20} {:<9} {}", c.check, c.status.as_str(), c.message);
        }
        println!("overall: {}", report.status);
    }
    Ok(ExitCode::from(report.exit_code()))
}
