//! `clawsterctl`: the operator's client.

use std::process::ExitCode;

use clap::Parser;
use clawster_core::cli::finish;
use clawsterctl::cli::{Cli, Command, TemplateCommand};
use clawsterctl::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(run(cli), 1)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    cli.log.init("clawsterctl")?;
    match cli.command {
        Command::Template(TemplateCommand::Shared {
            region,
            artifacts,
            output,
        }) => {
            let text = commands::template_shared(&region, &artifacts.artifacts)?;
            commands::emit(&text, output.output.as_ref())?;
        }
        Command::Template(TemplateCommand::Bot {
            bot,
            artifacts,
            output,
        }) => {
            let options = bot.options();
            if options.certificate.is_none() {
                tracing::warn!(
                    "no --certificate-arn: the load balancer serves HTTP only and the gateway token travels in plaintext"
                );
            }
            let text = commands::template_bot(&options, &artifacts.artifacts)?;
            commands::emit(&text, output.output.as_ref())?;
        }
        Command::Template(TemplateCommand::OpenclawConfig {
            gateway_port,
            output,
        }) => {
            commands::emit(
                &commands::template_openclaw_config(gateway_port),
                output.output.as_ref(),
            )?;
        }
        Command::Plan {
            bot,
            bots_in_region,
            shared_lb,
            artifacts,
        } => {
            let text = commands::plan(
                &bot.options(),
                bots_in_region,
                shared_lb,
                &artifacts.artifacts,
            )?;
            commands::emit(&text, None)?;
        }
        Command::Deploy(args) => return commands::deploy(args),
        Command::Consolidate(args) => return commands::consolidate(args),
        Command::Status(args) => return commands::status(args),
        Command::Destroy(args) => return commands::destroy(args),
        Command::Window(cmd) => return commands::window(cmd),
        Command::Health(args) => return commands::health(args),
        Command::Logs(args) => return commands::logs(args),
        Command::Backup(args) => return commands::backup(args),
        Command::Restore(args) => return commands::restore(args),
    }
    Ok(ExitCode::SUCCESS)
}
