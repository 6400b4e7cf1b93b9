//! The commands behind the CLI: each takes checked arguments and returns what to print.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clawster_core::fs::{write_atomic, Ownership};
use serde_json::Value;

use crate::aws::Aws;
use crate::bot::{self, BotOptions};
use crate::cli::{
    AwsArgs, BackupArgs, DeployArgs, DestroyArgs, HealthArgs, LogsArgs, RestoreArgs, StatusArgs,
    WindowCommand,
};
use crate::deploy::{self, DeployOptions, Fail};
use crate::manifest::Release;
use crate::names::{GatewayPort, Region};
use crate::pace::Pace;
use crate::plan::{self, PlanInput, Prices};
use crate::progress::{Event, Style, Ui};
use crate::{openclaw, shared};

/// Pretty JSON with a final newline: the form templates are written and compared in.
pub fn to_pretty(v: &Value) -> String {
    // Serialising a Value built from strings, numbers, arrays and maps cannot fail.
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// `template shared`.
pub fn template_shared(region: &Region, artifacts: &Path) -> anyhow::Result<String> {
    let release = Release::load(artifacts)?;
    Ok(to_pretty(&shared::template(region, &release)))
}

/// `template bot`.
pub fn template_bot(options: &BotOptions, artifacts: &Path) -> anyhow::Result<String> {
    if let Some(cert) = &options.certificate {
        cert.check_region(&options.region)?;
    }
    let release = Release::load(artifacts)?;
    Ok(to_pretty(&bot::template(options, &release)))
}

/// `template openclaw-config`.
pub fn template_openclaw_config(port: GatewayPort) -> String {
    to_pretty(&openclaw::config(port, shared::VPC_CIDR))
}

/// `plan`.
pub fn plan(
    options: &BotOptions,
    bots_in_region: u32,
    shared_lb: bool,
    artifacts: &Path,
) -> anyhow::Result<String> {
    if let Some(cert) = &options.certificate {
        cert.check_region(&options.region)?;
    }
    let release = Release::load(artifacts)?;
    let prices = Prices::builtin();
    let mut options = options.clone();
    if shared_lb {
        // The port is allocated at deploy time; the first one stands in for the resource list.
        options.layout = bot::Layout::Shared(bot::Entry::Port(*bot::layout::SHARED_PORTS.start()));
    }
    plan::render(&PlanInput {
        bot: &options,
        bots_in_region,
        release: &release,
        prices: &prices,
        shared_lb,
    })
    .map_err(anyhow::Error::msg)
}

/// Writes `text` to `out` (atomically, mode 0644, owned by the caller) or to stdout.
pub fn emit(text: &str, out: Option<&PathBuf>) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            let me =
                std::fs::metadata("/proc/self").context("cannot read own uid from /proc/self")?;
            let own = Ownership {
                mode: 0o644,
                uid: me.uid(),
                gid: me.gid(),
            };
            write_atomic(path, text.as_bytes(), own)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(())
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .context("cannot write to stdout")?;
            stdout.flush().context("cannot write to stdout")
        }
    }
}

/// A yes/no question on the terminal; `None` when stdin or stderr is not a terminal.
pub fn ask_terminal(question: &str) -> Option<bool> {
    use std::io::{BufRead as _, IsTerminal as _};
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return None;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Prints the end of a run and turns it into the exit code.
fn finish(ui: &Ui, result: Result<String, Fail>) -> std::process::ExitCode {
    match result {
        Ok(summary) => {
            ui.emit(Event::Finish {
                ok: true,
                summary,
                next: Vec::new(),
            });
            std::process::ExitCode::SUCCESS
        }
        Err(f) => {
            ui.emit(Event::Finish {
                ok: false,
                summary: f.message,
                next: f.next,
            });
            std::process::ExitCode::from(f.code)
        }
    }
}

/// The display and the clients of a command that changes things: wall time with Ctrl-C handled
/// (first: clean up, second: exit), progress on stdout in the detected style, AWS connected.
async fn session(json: bool, args: &AwsArgs) -> Result<(Ui, Aws), std::process::ExitCode> {
    let pace = Pace::real();
    pace.interrupt.listen_for_ctrl_c();
    let ui = Ui::stdout(Style::detect(json), pace);
    let aws = connect(&ui, args).await?;
    Ok((ui, aws))
}

async fn connect(ui: &Ui, args: &AwsArgs) -> Result<Aws, std::process::ExitCode> {
    Aws::connect(&args.options()).await.map_err(|e| {
        let code = if e.kind == crate::aws::ErrorKind::Usage {
            deploy::exit::USAGE
        } else {
            deploy::exit::FAILED
        };
        ui.emit(Event::Finish {
            ok: false,
            summary: e.message,
            next: Vec::new(),
        });
        std::process::ExitCode::from(code)
    })
}

/// `deploy`.
pub fn deploy(args: DeployArgs) -> anyhow::Result<std::process::ExitCode> {
    runtime()?.block_on(async move {
        let (ui, aws) = match session(args.json, &args.aws).await {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        let arch = args.instance_type.arch();
        let opts = DeployOptions {
            bot: BotOptions {
                name: args.name,
                region: aws.region.clone(),
                instance_type: args.instance_type,
                certificate: args.certificate_arn.clone(),
                gateway_port: args.gateway_port,
                layout: crate::bot::Layout::Dedicated,
            },
            image: match (args.image, args.image_layout) {
                (Some(i), _) => deploy::image::ImageSource::Given(i),
                (None, Some(dir)) => deploy::image::ImageSource::Layout(dir),
                (None, None) => deploy::image::ImageSource::Layout(
                    args.artifacts
                        .artifacts
                        .join("image")
                        .join(arch.as_str()),
                ),
            },
            registry_url: args.registry_url,
            artifacts: args.artifacts.artifacts,
            openclaw_config: args.openclaw_config,
            yes: args.yes,
            detach: args.detach,
            timeout: args.timeout,
            keep_on_failure: args.keep_on_failure,
            replace_host: args.replace_host,
            without_final_sync: args.without_final_sync,
            shared_lb: args.shared_lb,
            https: match (args.domain, &args.certificate_arn) {
                (Some(domain), Some(certificate)) => Some(crate::consolidate::Https {
                    domain,
                    certificate: certificate.clone(),
                }),
                _ => None,
            },
        };
        if opts.bot.certificate.is_none() {
            ui.warn("no --certificate-arn: the load balancer serves HTTP only and the gateway token travels in plaintext");
        }
        let result = deploy::run(&aws, &ui, &opts, &ask_terminal).await.map(|d| {
            if d.detached {
                format!(
                    "bot {} requested; it answers at {} once healthy (`clawsterctl status {} --region {}` follows it)",
                    opts.bot.name, d.url, opts.bot.name, opts.bot.region
                )
            } else {
                format!("bot {} is running: {}", opts.bot.name, d.url)
            }
        });
        Ok(finish(&ui, result))
    })
}

/// `consolidate`.
pub fn consolidate(args: crate::cli::ConsolidateArgs) -> anyhow::Result<std::process::ExitCode> {
    runtime()?.block_on(async move {
        let (ui, aws) = match session(args.json, &args.aws).await {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        let https = match (args.domain, args.certificate_arn) {
            (Some(domain), Some(certificate)) => {
                if let Err(e) = certificate.check_region(&aws.region) {
                    return Ok(finish(
                        &ui,
                        Err(Fail::new(deploy::exit::USAGE, e.to_string())),
                    ));
                }
                Some(crate::consolidate::Https {
                    domain,
                    certificate,
                })
            }
            _ => None,
        };
        let opts = crate::consolidate::Options {
            undo: args.undo,
            https,
            yes: args.yes,
            timeout: args.timeout,
        };
        let result = crate::consolidate::run(&aws, &ui, &opts, &ask_terminal).await;
        Ok(finish(&ui, result))
    })
}

/// `status`.
pub fn status(args: StatusArgs) -> anyhow::Result<std::process::ExitCode> {
    runtime()?.block_on(async move {
        let ui = Ui::stdout(
            if args.json { Style::Json } else { Style::Plain },
            Pace::real(),
        );
        let aws = match connect(&ui, &args.aws).await {
            Ok(a) => a,
            Err(code) => return Ok(code),
        };
        match crate::status::run(&aws, args.name.as_ref(), args.json).await {
            Ok((text, code)) => {
                emit(&text, None)?;
                Ok(std::process::ExitCode::from(code))
            }
            Err(f) => Ok(finish(&ui, Err(f))),
        }
    })
}

/// `destroy`.
pub fn destroy(args: DestroyArgs) -> anyhow::Result<std::process::ExitCode> {
    runtime()?.block_on(async move {
        let (ui, aws) = match session(args.json, &args.aws).await {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        let result = match (&args.name, args.shared) {
            (Some(name), false) => {
                let o = crate::destroy::BotDestroy {
                    yes: args.yes,
                    delete_state: args.delete_state,
                    timeout: args.timeout,
                };
                crate::destroy::bot(&aws, &ui, name, &o, &ask_terminal).await
            }
            _ => crate::destroy::shared(&aws, &ui, args.yes, args.timeout, &ask_terminal).await,
        };
        Ok(finish(&ui, result))
    })
}

/// Prints what an SSM command printed and turns its code into the exit code.
fn print(p: &crate::ssm::Printed) -> anyhow::Result<std::process::ExitCode> {
    emit(&p.stdout, None)?;
    let mut stderr = std::io::stderr().lock();
    // A closed stderr must not change the exit code.
    let _ = stderr.write_all(p.stderr.as_bytes());
    let _ = stderr.flush();
    Ok(std::process::ExitCode::from(p.code))
}

/// A value refused before anything was sent: exit 2 naming it.
fn refused(e: impl std::fmt::Display) -> anyhow::Result<std::process::ExitCode> {
    print(&crate::ssm::Printed {
        stdout: String::new(),
        stderr: format!("error: {e} (nothing was sent)\n"),
        code: deploy::exit::USAGE,
    })
}

/// Runs one checked request on one host through SSM (see [`crate::ssm`]).
fn on_host(
    aws: &AwsArgs,
    host: crate::ssm::Host,
    req: crate::ssm::Request,
    timeout: std::time::Duration,
    render: impl FnOnce(&crate::ssm::Answer) -> crate::ssm::Printed,
) -> anyhow::Result<std::process::ExitCode> {
    let printed = runtime()?.block_on(async move {
        let pace = Pace::real();
        pace.interrupt.listen_for_ctrl_c();
        match Aws::connect(&aws.options()).await {
            Ok(aws) => {
                let say = |line: &str| eprintln!("{line}");
                crate::ssm::execute(&aws, &pace, &host, &req, timeout, &say, render).await
            }
            Err(e) => crate::ssm::render_fail(&Fail::new(deploy::exit::USAGE, e.message)),
        }
    });
    print(&printed)
}

/// `window open|close|status`.
pub fn window(cmd: WindowCommand) -> anyhow::Result<std::process::ExitCode> {
    use crate::ops::window::WindowArgs;
    let (args, host) = match cmd {
        WindowCommand::Open(o) => match WindowArgs::open(&o.pkgs, &o.ttl, o.reason.as_deref()) {
            Ok(a) => (a, o.host),
            Err(e) => return refused(format!("{:#}", anyhow::Error::new(e))),
        },
        WindowCommand::Close(c) => (WindowArgs::Close, c.host),
        WindowCommand::Status(s) => (WindowArgs::Status { json: s.json }, s.host),
    };
    on_host(
        &host.aws,
        host.host(),
        crate::ssm::Request::window(&args),
        host.timeout,
        crate::ssm::render_window,
    )
}

/// `health`.
pub fn health(args: HealthArgs) -> anyhow::Result<std::process::ExitCode> {
    use crate::ops::reads::ReadArgs;
    use crate::ssm::Host;
    let (read, host) = match (args.nat, &args.instance_id, &args.name) {
        (true, _, _) => (ReadArgs::NatStatus, Host::Nat),
        (false, Some(i), _) => (ReadArgs::Health, Host::Instance(i.clone())),
        (false, None, Some(b)) => (ReadArgs::Health, Host::Bot(b.clone())),
        (false, None, None) => return refused("name a bot, --instance-id or --nat"),
    };
    let json = args.json;
    on_host(
        &args.aws,
        host,
        crate::ssm::Request::read(&read),
        args.timeout,
        |a| crate::ssm::render_health(a, json),
    )
}

/// `logs`.
pub fn logs(args: LogsArgs) -> anyhow::Result<std::process::ExitCode> {
    let read = match crate::ops::reads::ReadArgs::logs(Some(&args.since), args.window) {
        Ok(r) => r,
        Err(e) => return refused(e),
    };
    on_host(
        &args.host.aws,
        args.host.host(),
        crate::ssm::Request::read(&read),
        args.host.timeout,
        crate::ssm::render_logs,
    )
}

/// `backup`.
pub fn backup(args: BackupArgs) -> anyhow::Result<std::process::ExitCode> {
    use crate::ops::state::StateArgs;
    let json = args.json;
    on_host(
        &args.aws,
        crate::ssm::Host::Bot(args.name),
        crate::ssm::Request::state(&StateArgs::Sync),
        args.timeout,
        |a| crate::backup::render_backup(a, json),
    )
}

/// `restore`.
pub fn restore(args: RestoreArgs) -> anyhow::Result<std::process::ExitCode> {
    let at = match crate::state::time::At::parse(&args.at, crate::state::time::now()) {
        Ok(at) => at,
        Err(e) => return refused(e),
    };
    runtime()?.block_on(async move {
        let (ui, aws) = match session(args.json, &args.aws).await {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        let opts = crate::backup::RestoreOptions {
            bot: args.name,
            at,
            yes: args.yes,
            timeout: args.timeout,
        };
        let result = crate::backup::restore(&aws, &ui, &opts).await;
        Ok(finish(&ui, result))
    })
}
