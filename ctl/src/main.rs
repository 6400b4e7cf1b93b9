//! `clawsterctl`: the operator's client.

use std::process::ExitCode;

use clap::Parser;
use clawster_core::cli::{finish, LogArgs};

/// The Clawster operator client.
///
/// Runs on the operator's machine. It renders and deploys the shared (per-region) and per-bot
/// CloudFormation stacks that run OpenClaw bots on ECS, starts a bot only when its NAT route is
/// live, and opens or closes package maintenance windows on bot hosts through SSM.
#[derive(Debug, Parser)]
#[command(name = "clawsterctl", version = clawster_core::VERSION, arg_required_else_help = true)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(run(cli), 1)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    cli.log.init("clawsterctl")?;
    Ok(ExitCode::SUCCESS)
}
