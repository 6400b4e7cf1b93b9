//! Command-line pieces every binary shares: logging options and the error-to-exit-code policy.

use std::process::ExitCode;

use crate::logging::{self, LogTarget};

/// Logging options, flattened into each binary's top-level arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Where log records go: `auto` = the systemd journal when it is reachable (plus stderr on a
    /// terminal), `journald`, or `stderr`.
    #[arg(long, global = true, default_value_t = LogTarget::Auto, value_name = "TARGET")]
    pub log_target: LogTarget,

    /// More detail in the log (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl LogArgs {
    /// Installs logging for the program named `identifier` (the journal's `SYSLOG_IDENTIFIER`).
    pub fn init(&self, identifier: &str) -> anyhow::Result<logging::LogSetup> {
        Ok(logging::init(identifier, self.log_target, self.verbose)?)
    }
}

/// Runs a binary's body and maps its result to an exit code.
///
/// The error chain is printed once, on stderr, as `error: outer: inner: root cause`, and also
/// logged (so it reaches the journal when stderr does not). `failure_code` is the exit code for
/// errors; commands with richer codes (e.g. health's 0/1/2) return them through `Ok`.
pub fn finish(result: anyhow::Result<ExitCode>, failure_code: u8) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(clawster_status = "failed", "{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::from(failure_code)
        }
    }
}
