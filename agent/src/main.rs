//! `clawster-agent`: the agent on each Clawster bot host.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clawster_agent::baseline::{self, image::ImageOptions, Ctx, Profile};
use clawster_agent::bootstrap::{self, docker, download, Arch, Boundaries, Options, Source};
use clawster_agent::health;
use clawster_agent::host::packages::{self, CommandPackageManager, PackageManager};
use clawster_agent::host::systemd::{DbusSystemd, Systemd};
use clawster_agent::window;
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
    /// enable/reload/start over D-Bus without waiting. With --baseline ecs-host, also the host
    /// security baseline's ECS subset (SSM agent, SSH masked, firewall). A completion marker is
    /// written last. Re-running changes nothing; a killed run converges on the next one.
    ///
    /// Exit status: 0 done (a degraded step, e.g. a missing prerequisite or a sysctl the kernel
    /// refused, is reported in the journal and by `health`, not fatal), 1 failed.
    Bootstrap(BootstrapArgs),

    /// Check everything bootstrap is responsible for.
    ///
    /// Exit status: 0 healthy, 1 degraded (a check does not hold), 2 could not check.
    Health(HealthArgs),

    /// The host security baseline (seed 000): apply it, audit it, prepare an image, enable the gateway.
    #[command(
        subcommand,
        after_help = "Examples:\n  clawster-agent baseline apply && clawster-agent baseline audit\n  clawster-agent baseline prepare-image --json"
    )]
    Baseline(BaselineCommand),
    /// The package maintenance window: time-limited, allowlisted installs for the bot.
    ///
    /// An operator (root, e.g. through SSM) opens a window for named packages and a time; while
    /// it is open the bot (a member of the client group) runs `window install PKG`, and the root
    /// service installs PKG if it is on the list. The window locks itself at its expiry (also
    /// across service restarts; never across a reboot) and can be closed at once. Every event is
    /// a journal record (CLAWSTER_CHECK=window.*).
    #[command(subcommand)]
    Window(WindowCommand),

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

    /// Also apply the host security baseline with this profile (`ecs-host` on ECS bot hosts:
    /// SSM agent, SSH masked, firewall); see `clawster-agent baseline apply --help`.
    #[arg(long, value_enum, value_name = "PROFILE")]
    baseline: Option<Profile>,

    /// Package manager program called as `PROGRAM install -y -- PKGS` instead of dnf/apt-get
    /// (benchmarks and tests).
    #[arg(long, value_name = "PROGRAM", hide = true)]
    package_manager: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum BaselineCommand {
    /// Converge the host to the security baseline, idempotently.
    ///
    /// openclaw-host (default, seed 000 in full): SSM agent enabled and running; SSH stopped,
    /// disabled and masked (socket activation and aliases too) over D-Bus; firewall (UFW's own
    /// files where UFW is installed, else the nf_tables table inet clawster_hostfw over netlink,
    /// reloaded at boot by clawster-firewall.service); users openclaw and linuxbrew; owner-only
    /// state, workspace and logs; the gateway config in /etc/openclaw/openclaw.json (loopback
    /// :18789, token from a 0600 file, mDNS, web terminal, update checks and catalog refresh off,
    /// read-only for the gateway); the /usr/local/bin/openclaw wrapper; the sandboxed
    /// openclaw-gateway.service, installed but disabled and stopped. ecs-host: SSM, SSH, firewall.
    ///
    /// A malformed existing config (OpenClaw's JSON, UFW's files) stops the run before anything
    /// is written, naming the file, which is left byte for byte.
    /// Exit status: 0 done, 1 some control failed (see the report).
    #[command(
        after_help = "Examples:\n  clawster-agent baseline apply\n  clawster-agent baseline apply --root /mnt/image --profile ecs-host"
    )]
    Apply(BaselineApplyArgs),

    /// Check every control: id, status (ok, failed, not-applicable, could-not-check), evidence, fix.
    ///
    /// The same checks go to the journal as health records (CLAWSTER_CHECK=baseline.<id>).
    /// Exit status: 0 all ok, 1 some failed, 2 could not check.
    #[command(
        after_help = "Examples:\n  clawster-agent baseline audit\n  clawster-agent baseline audit --json --root /mnt/image"
    )]
    Audit(BaselineAuditArgs),

    /// Clean the host for a shared image, scan it for secrets, re-check permissions, audit.
    ///
    /// Removes OpenClaw identity, device key and pairings (state/openclaw.sqlite), agents,
    /// transcripts, caches, token files and logs (keeping only the config and skills/), shell
    /// histories, ~/.aws, authorized_keys, SSH host keys, cloud-init instance state, SSM
    /// registration and ECS agent state; truncates machine-id; stops and disables the gateway.
    /// Then scans /etc /home /root /var /opt /srv /usr/local /tmp for Telegram bot tokens, AWS
    /// keys, LLM API keys and private keys, and fails naming file and line (value masked) for
    /// any left. Exit status: 0 ready to share, 1 not.
    #[command(
        after_help = "Examples:\n  clawster-agent baseline prepare-image\n  clawster-agent baseline prepare-image --root /mnt/image --remove /root/build-notes.txt"
    )]
    PrepareImage(BaselineImageArgs),

    /// Enable and start the gateway after a passing audit (the operator's explicit step).
    ///
    /// Creates the gateway token (/var/lib/openclaw/secrets/gateway-token, 0600 openclaw) if
    /// there is none. Refuses while any other control fails. Live host only.
    #[command(
        after_help = "Example:\n  clawster-agent baseline enable-gateway && curl -s http://127.0.0.1:18789/health"
    )]
    EnableGateway,

    /// Load the nf_tables table inet clawster_hostfw (what clawster-firewall.service runs at boot).
    #[command(hide = true)]
    Firewall(BaselineProfileArg),
}

#[derive(Debug, clap::Args)]
struct BaselineProfileArg {
    /// Which controls (default: the profile the last apply recorded, else openclaw-host).
    #[arg(long, value_enum)]
    profile: Option<Profile>,
}

#[derive(Debug, clap::Args)]
struct BaselineApplyArgs {
    /// Work offline on the root filesystem at DIR (an image being baked): files only; prints what
    /// it left for boot.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,

    /// Which controls.
    #[arg(long, value_enum, default_value_t = Profile::OpenclawHost)]
    profile: Profile,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct BaselineAuditArgs {
    /// Check the root filesystem at DIR instead of the live host (files only).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,

    /// Which controls (default: the profile the last apply recorded, else openclaw-host).
    #[arg(long, value_enum)]
    profile: Option<Profile>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct BaselineImageArgs {
    /// Work on the root filesystem at DIR instead of the live host.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,

    /// Which controls the final audit checks (default: the recorded profile, else openclaw-host).
    #[arg(long, value_enum)]
    profile: Option<Profile>,

    /// Also remove this path (repeatable).
    #[arg(long, value_name = "PATH")]
    remove: Vec<String>,

    /// Do not scan this path (repeatable): material that is not a secret of this image.
    #[arg(long, value_name = "PATH")]
    allow: Vec<String>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RunDirArg {
    /// Directory of the window's socket and state.
    #[arg(long, value_name = "DIR", default_value = window::state::DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum WindowCommand {
    /// Open (or replace) the window for these packages (root only).
    ///
    /// Every name must pass the package-name rule (letters, digits and . _ + -; no options,
    /// paths, patterns, versions or architectures) before anything is stored. Prints the window,
    /// its expiry (UTC and local) and the packages. Opening while a window is open replaces it.
    #[command(
        after_help = "Examples:\n  clawster-agent window open --pkgs nginx --ttl 10m\n  clawster-agent window open --pkgs nginx,curl --ttl 1h --reason \"ticket 42\""
    )]
    Open {
        #[command(flatten)]
        dir: RunDirArg,
        /// Packages the bot may install, separated by commas (at most 20).
        #[arg(long, value_name = "A,B")]
        pkgs: String,
        /// How long the window stays open: a whole number with s, m or h (5s up to --max-ttl).
        #[arg(long, value_name = "TTL")]
        ttl: String,
        /// Why (recorded in the audit record).
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
        /// Longest TTL accepted (at most 24h).
        #[arg(long, value_name = "TTL", default_value = "4h")]
        max_ttl: String,
    },
    /// Lock the window at once (root only). Idempotent.
    #[command(after_help = "Example:\n  clawster-agent window close")]
    Close {
        #[command(flatten)]
        dir: RunDirArg,
    },
    /// Show whether the window is open, its packages, time left and what was installed in it.
    #[command(
        after_help = "Examples:\n  clawster-agent window status\n  clawster-agent window status --json"
    )]
    Status {
        #[command(flatten)]
        dir: RunDirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The root service (started by clawster-window.socket).
    ///
    /// Takes its listening socket from systemd (socket activation) or binds DIR/window.sock
    /// itself (0660, root and the client group). Checks every request's caller by its kernel
    /// credentials, the window and the allowlist; runs one install at a time with apt-get or dnf
    /// (an exact-name existence check first, removals refused); locks the window at its expiry.
    #[command(
        after_help = "Examples:\n  clawster-agent window serve\n  clawster-agent window serve --run-dir /tmp/w --package-manager /usr/local/bin/fake-pm"
    )]
    Serve {
        #[command(flatten)]
        dir: RunDirArg,
        /// The group whose members may ask for installs.
        #[arg(long, value_name = "NAME", default_value = window::units::CLIENT_GROUP)]
        client_group: String,
        /// Program called as `PROGRAM install -y -- NAME` instead of apt-get/dnf (tests,
        /// benchmarks); it replaces the existence check and the plan too.
        #[arg(long, value_name = "PROGRAM")]
        package_manager: Option<PathBuf>,
        /// Upper bound of one install, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        install_timeout: u64,
        /// How long apt waits for another apt/dpkg to release its lock, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        lock_timeout: u64,
        /// How long a request waits for another install to finish, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        queue_timeout: u64,
    },
    /// Ask the service to install PKG (the bot runs this) and stream the output.
    ///
    /// Exit status: 0 installed (or already installed), 3 refused (no window, expired, package
    /// not allowed, invalid name, caller not allowed), 1 the install itself failed.
    #[command(after_help = "Example:\n  clawster-agent window install nginx")]
    Install {
        #[command(flatten)]
        dir: RunDirArg,
        /// The package, exactly as the window lists it.
        package: String,
    },
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
        Command::Baseline(c) => run_baseline(c),
        Command::Window(w) => run_window(w),
    }
}

fn with_ctx<T>(
    root: PathBuf,
    profile: Option<Profile>,
    f: impl FnOnce(&Ctx<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let root = HostRoot::new(root);
    let profile = profile
        .or_else(|| Profile::recorded(&root))
        .unwrap_or(Profile::OpenclawHost);
    let live = root.is_live();
    let sd = if live {
        DbusSystemd::connect()
    } else {
        Err("offline root: no D-Bus".into())
    };
    let ctx = Ctx {
        root,
        live,
        profile,
        systemd: match &sd {
            Ok(s) => Ok(s as &dyn Systemd),
            Err(e) => Err(e.clone()),
        },
    };
    f(&ctx)
}

fn print_steps(rep: &baseline::ApplyReport) {
    for s in &rep.steps {
        println!("{:<18} {:<9} {}", s.control, s.status.as_str(), s.message);
    }
    if !rep.left_for_boot.is_empty() {
        println!("left for boot:");
        for l in &rep.left_for_boot {
            println!("  - {l}");
        }
    }
}

fn run_baseline(c: BaselineCommand) -> anyhow::Result<ExitCode> {
    match c {
        BaselineCommand::Apply(a) => with_ctx(a.root, Some(a.profile), |ctx| {
            let rep = baseline::apply(ctx)?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rep).context("rendering JSON")?
                );
            } else {
                print_steps(&rep);
            }
            Ok(ExitCode::from(u8::from(rep.failed())))
        }),
        BaselineCommand::Audit(a) => with_ctx(a.root, a.profile, |ctx| {
            let rep = baseline::audit(ctx);
            rep.log();
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rep).context("rendering JSON")?
                );
            } else {
                print!("{}", rep.text());
            }
            Ok(ExitCode::from(rep.exit_code()))
        }),
        BaselineCommand::PrepareImage(a) => with_ctx(a.root, a.profile, |ctx| {
            let opts = ImageOptions {
                remove: a.remove,
                allow: a.allow,
            };
            let rep = baseline::image::prepare(ctx, &opts)?;
            rep.audit.log();
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rep).context("rendering JSON")?
                );
            } else {
                println!("removed:");
                for r in &rep.removed {
                    println!("  - {r}");
                }
                print_steps(&rep.steps);
                for h in &rep.scan.hits {
                    println!("secret: {}:{}: {} {}", h.path, h.line, h.kind, h.masked);
                }
                print!("{}", rep.audit.text());
            }
            Ok(ExitCode::from(u8::from(!rep.passed())))
        }),
        BaselineCommand::EnableGateway => with_ctx(PathBuf::from("/"), None, |ctx| {
            let rep = baseline::gateway::enable(ctx)?;
            print_steps(&rep);
            Ok(ExitCode::from(u8::from(rep.failed())))
        }),
        BaselineCommand::Firewall(a) => {
            let root = HostRoot::new("/");
            let profile = a
                .profile
                .or_else(|| Profile::recorded(&root))
                .unwrap_or(Profile::OpenclawHost);
            let changed = baseline::firewall::load(profile).map_err(anyhow::Error::msg)?;
            health_record(
                "baseline.firewall",
                if changed { Status::Changed } else { Status::Ok },
                &format!(
                    "table inet {} loaded and verified",
                    baseline::firewall::TABLE
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
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
    opts.baseline = a.baseline;

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

fn require_root(what: &str) -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        anyhow::bail!("window {what} is for root only (the operator runs it through SSM)");
    }
    Ok(())
}

fn run_window(cmd: WindowCommand) -> anyhow::Result<ExitCode> {
    use window::state::{self, Now, RunDir};
    match cmd {
        WindowCommand::Open {
            dir,
            pkgs,
            ttl,
            reason,
            max_ttl,
        } => {
            require_root("open")?;
            let cap = state::parse_ttl(&max_ttl)?;
            let ttl = state::check_ttl(&ttl, cap)?;
            let packages = state::parse_packages(&pkgs)?;
            let reason = state::check_reason(&reason)?;
            let rd = RunDir::new(dir.run_dir);
            let now = Now::read().context("reading the clocks")?;
            let o = window::ops::open(&rd, &now, packages, ttl, reason, 0)
                .context("storing the window")?;
            let w = &o.window;
            if let Some((id, exp)) = &o.replaced {
                println!(
                    "replaced the open window {id} (it was open until {})",
                    state::fmt_utc(*exp)
                );
            }
            println!("window {} open for {}", w.id, state::fmt_duration(ttl));
            println!(
                "expires: {} ({})",
                state::fmt_utc(w.expires_at),
                state::fmt_local(w.expires_at)
            );
            println!("packages: {}", w.packages.join(", "));
            if let Err(e) = window::ops::poke(&rd) {
                eprintln!(
                    "warning: the window service did not answer ({e}); the window still locks at its expiry (every request checks it), but the expiry record waits for the service"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        WindowCommand::Close { dir } => {
            require_root("close")?;
            let rd = RunDir::new(dir.run_dir);
            let now = Now::read().context("reading the clocks")?;
            let c = window::ops::close(&rd, &now).context("locking the window")?;
            match c.was.as_str() {
                "open" => println!("window {} locked", c.id),
                "expired" => println!("window {} locked (it had already expired)", c.id),
                "locked" => println!("window already locked"),
                "unreadable" => println!("window locked (its unreadable state file was removed)"),
                _ => println!("no window was open; locked"),
            }
            let _ = window::ops::poke(&rd);
            Ok(ExitCode::SUCCESS)
        }
        WindowCommand::Status { dir, json } => {
            let rd = RunDir::new(dir.run_dir);
            let now = Now::read().context("reading the clocks")?;
            let s = window::ops::status(&rd, &now);
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", window::ops::render_status(&s));
            }
            Ok(ExitCode::SUCCESS)
        }
        WindowCommand::Install { dir, package } => {
            let rd = RunDir::new(dir.run_dir);
            let code = window::client::install(
                &rd,
                &package,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            Ok(ExitCode::from(code))
        }
        WindowCommand::Serve {
            dir,
            client_group,
            package_manager,
            install_timeout,
            lock_timeout,
            queue_timeout,
        } => {
            let rd = RunDir::new(dir.run_dir);
            let installer: std::sync::Arc<dyn packages::WindowInstaller> = match package_manager {
                Some(p) => std::sync::Arc::new(packages::custom(&p)),
                None => std::sync::Arc::new(CommandPackageManager::detect().context(
                    "this host has neither dnf nor apt-get (use --package-manager PROGRAM)",
                )?),
            };
            let root = HostRoot::new("/");
            let gid = clawster_agent::host::accounts::group_id(&root, &client_group);
            if gid.is_none() {
                tracing::warn!(
                    clawster_check = "window.serve",
                    clawster_status = "degraded",
                    "group {client_group} does not exist: only root may ask for installs"
                );
            }
            let (listener, how) = match window::listen_fd().context("socket activation")? {
                Some(l) => (l, "systemd socket activation"),
                None => (
                    window::service::bind(&rd, gid)
                        .with_context(|| format!("binding {}", rd.socket().display()))?,
                    "bound by the service",
                ),
            };
            tracing::info!(
                clawster_check = "window.serve",
                clawster_status = "ok",
                socket = %rd.socket().display(),
                activation = how,
                "window service ready ({how}); package manager {}",
                installer.name()
            );
            let opts = window::service::ServeOptions {
                run_dir: rd,
                client_gid: gid,
                client_group,
                limits: packages::InstallLimits {
                    timeout: Duration::from_secs(install_timeout),
                    lock_timeout: Duration::from_secs(lock_timeout),
                },
                queue_timeout: Duration::from_secs(queue_timeout),
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            window::service::serve(opts, installer, listener, stop).context("serving")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
