//! `clawster-agent`: the agent on each Clawster bot host.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use clawster_agent::baseline::{self, image::ImageOptions, Ctx, Profile};
use clawster_agent::bootstrap::{self, docker, download, Arch, Boundaries, Options, Source};
use clawster_agent::cli::{
    BaselineCommand, BootstrapArgs, Cli, Command, DockerGuardCommand, GuardServeArgs, HealthArgs,
    WindowCommand,
};
use clawster_agent::docker_guard;
use clawster_agent::health;
use clawster_agent::host::packages::{self, CommandPackageManager, PackageManager};
use clawster_agent::host::systemd::{DbusSystemd, Systemd};
use clawster_agent::window;
use clawster_core::cli::finish;
use clawster_core::fs::HostRoot;
use clawster_core::logging::{health as health_record, Status};
use clawster_core::sysctl::Sysctl;

/// The static musl builds use dlmalloc instead of musl's own allocator (mallocng), which
/// trades speed for hardening: the docker guard's per-request latency (parsing, judging and
/// relaying allocate small strings) measured slower with it than with glibc's. dlmalloc is pure
/// Rust, so the musl builds still need no C toolchain of their own.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

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
        Command::DockerGuard(DockerGuardCommand::Serve(a)) => run_guard(a),
        Command::State(c) => clawster_agent::state::command::command(c),
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
    if let (Some(bucket), Some(bot)) = (a.state_bucket, a.bot) {
        clawster_agent::state::check_bot(&bot).map_err(anyhow::Error::msg)?;
        opts.state = Some(clawster_agent::state::Settings {
            bot,
            bucket,
            region: String::new(),
            endpoint: None,
        });
    }

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

fn require_root(what: &str) -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        anyhow::bail!("window {what} is for root only (the operator runs it through SSM)");
    }
    Ok(())
}

fn run_window(cmd: WindowCommand) -> anyhow::Result<ExitCode> {
    use clawster_core::timefmt::fmt_utc;
    use clawster_core::window_rules::{fmt_duration, parse_ttl, OpenRequest};
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
            let cap = parse_ttl(&max_ttl)?;
            let req = OpenRequest::parse(&pkgs, &ttl, &reason, cap)?;
            let ttl = req.ttl;
            let rd = RunDir::new(dir.run_dir);
            let now = Now::read().context("reading the clocks")?;
            let o = window::ops::open(
                &rd,
                &now,
                req.packages,
                ttl,
                req.reason,
                rustix::process::getuid().as_raw(),
            )
            .context("storing the window")?;
            let w = &o.window;
            if let Some((id, exp)) = &o.replaced {
                println!(
                    "replaced the open window {id} (it was open until {})",
                    fmt_utc(*exp)
                );
            }
            println!("window {} open for {}", w.id, fmt_duration(ttl));
            println!(
                "expires: {} ({})",
                fmt_utc(w.expires_at),
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
            let (listener, how) =
                match clawster_agent::host::socket::from_systemd("clawster-window.socket")
                    .context("socket activation")?
                {
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
