//! `clawster-nat-agent`: keeps the NAT instance translating.

use std::process::ExitCode;

use clap::Parser;
use clawster_core::cli::{finish, LogArgs};

/// The Clawster NAT-instance agent.
///
/// Runs on the small NAT instance of a Clawster VPC. It programs masquerade and forwarding
/// directly in the kernel (nf_tables over netlink; no nft or iptables binary, no package
/// installs), turns IP forwarding on only after reading the ruleset back, and keeps it true.
#[derive(Debug, Parser)]
#[command(name = "clawster-nat-agent", version = clawster_core::VERSION, arg_required_else_help = true)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(run(cli), 1)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    cli.log.init("clawster-nat-agent")?;
    Ok(ExitCode::SUCCESS)
}
