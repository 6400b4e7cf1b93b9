//! `clawster-nat-agent`: keeps the NAT instance translating.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use clawster_core::cli::{finish, LogArgs};
use clawster_nat_agent::{apply_once, remove, run, status, Options, Report};

/// The Clawster NAT-instance agent.
///
/// Runs on the small NAT instance of a Clawster VPC. It programs masquerade and forwarding
/// directly in the kernel (nf_tables over netlink, one atomic batch, only its own table
/// `ip clawster_nat`; no nft or iptables binary, no package installs), turns IP forwarding on
/// only after reading the ruleset back, and keeps it true.
///
/// Exit codes: 0 success/healthy, 1 failure (forwarding left off) or unhealthy status.
#[derive(Debug, Parser)]
#[command(name = "clawster-nat-agent", version = clawster_core::VERSION, arg_required_else_help = true)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Daemon: converge, then re-verify on link/route/ruleset events and every --interval,
    /// repairing drift. Speaks sd_notify (READY once forwarding is verified, STATUS, WATCHDOG).
    Run {
        #[command(flatten)]
        opts: Options,
        /// Seconds between periodic re-verifications.
        #[arg(
            long,
            value_name = "SECS",
            default_value_t = 30,
            env = "CLAWSTER_NAT_INTERVAL"
        )]
        interval: u64,
    },
    /// Converge once: program and verify the table, tune sysctls, then turn forwarding on.
    /// On any failure forwarding stays off and the exit code is 1.
    Apply {
        #[command(flatten)]
        opts: Options,
        /// Apply once and exit (the only mode of `apply`; `run` is the daemon).
        #[arg(long)]
        once: bool,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Read the kernel and report: table verified, forwarding, foreign drop chains, conntrack.
    /// Exit 0 when healthy, 1 otherwise. Changes nothing.
    Status {
        #[command(flatten)]
        opts: Options,
        /// Print JSON on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn forwarding off, delete our table and our sysctl.d file.
    Remove {
        #[command(flatten)]
        opts: Options,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(body(cli), 1)
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let yn = |b: bool| if b { "yes" } else { "no" };
    println!("healthy:          {}", yn(report.healthy));
    println!("table:            ip {}", report.table);
    println!("ruleset verified: {}", yn(report.ruleset_verified));
    println!(
        "egress interface: {}",
        report.egress_interface.as_deref().unwrap_or("-")
    );
    println!("vpc cidrs:        {}", report.vpc_cidrs.join(", "));
    println!(
        "ip forwarding:    {}",
        report.ip_forward.map(yn).unwrap_or("unknown")
    );
    if let Some((n, max)) = report.conntrack {
        println!("conntrack:        {n} / {max}");
    }
    for c in &report.foreign_drop_chains {
        println!(
            "foreign drop chain: {} {} {} (hook forward, priority {}, policy drop)",
            c.family, c.table, c.chain, c.priority
        );
    }
    for p in &report.problems {
        println!("problem:          {p}");
    }
    Ok(())
}

fn body(cli: Cli) -> anyhow::Result<ExitCode> {
    cli.log.init("clawster-nat-agent")?;
    match cli.command {
        Command::Run { opts, interval } => {
            run(&opts, Duration::from_secs(interval.max(1)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply {
            opts,
            once: _,
            json,
        } => {
            let report = apply_once(&opts)?;
            if json {
                print(&report, true)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { opts, json } => {
            let report = status(&opts)?;
            print(&report, json)?;
            Ok(if report.healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Remove { opts } => {
            remove(&opts)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
