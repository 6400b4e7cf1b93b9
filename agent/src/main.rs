//! `clawster-agent`: the agent on each Clawster bot host.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clawster_core::cli::{finish, LogArgs};
use clawster_core::logging::{health, Status};

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
    /// Write one test record to the journal and say where logging goes.
    ///
    /// Use it on a new host to check that health records reach the journal:
    /// `clawster-agent log-test && journalctl -t clawster-agent -o json -n 1`.
    LogTest,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(run(cli), 1)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let setup = cli.log.init("clawster-agent")?;
    match cli.command {
        Command::LogTest => {
            health(
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
    }
}
