//! The command line of `clawster-nat-agent`, in the library so the release build can generate its
//! man page and shell completions from the same definition (packaging/docgen).

use clap::{Parser, Subcommand};
use clawster_core::cli::LogArgs;

use crate::Options;

/// The Clawster NAT-instance agent.
///
/// Runs on the small NAT instance of a Clawster VPC. It programs masquerade and forwarding
/// directly in the kernel (nf_tables over netlink, one atomic batch, only its own table
/// `ip clawster_nat`; no nft or iptables binary, no package installs), turns IP forwarding on
/// only after reading the ruleset back, and keeps it true.
///
/// Exit codes: 0 success/healthy, 1 failure (forwarding left off) or unhealthy status.
#[derive(Debug, Parser)]
#[command(
    name = "clawster-nat-agent",
    version = clawster_core::VERSION,
    arg_required_else_help = true,
    after_help = "Examples:\n  clawster-nat-agent status --json\n  clawster-nat-agent apply --once --vpc-cidr 10.0.0.0/16"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Daemon: converge, then re-verify on link/route/ruleset events and every --interval,
    /// repairing drift. Speaks sd_notify (READY once forwarding is verified, STATUS, WATCHDOG).
    #[command(
        after_help = "Examples:\n  clawster-nat-agent run                      # as systemd/clawster-nat-agent.service runs it\n  clawster-nat-agent run --egress-interface ens5 --interval 10"
    )]
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
    #[command(
        after_help = "Examples:\n  clawster-nat-agent apply --once\n  clawster-nat-agent apply --once --vpc-cidr 10.0.0.0/16 --egress-interface ens5 --json"
    )]
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
    #[command(
        after_help = "Examples:\n  clawster-nat-agent status\n  clawster-nat-agent status --json | jq .healthy"
    )]
    Status {
        #[command(flatten)]
        opts: Options,
        /// Print JSON on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn forwarding off, delete our table and our sysctl.d file.
    #[command(after_help = "Example:\n  clawster-nat-agent remove")]
    Remove {
        #[command(flatten)]
        opts: Options,
    },
}
