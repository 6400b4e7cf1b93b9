//! Logging and health records.
//!
//! Every program logs through `tracing`. [`init`] sends events to the systemd journal when its
//! socket exists, and to stderr otherwise (or as well, when stderr is a terminal, so a person who
//! runs a command by hand sees what it does). Event fields become journal fields without a
//! prefix: `tracing::info!(clawster_check = "sysbox.units", clawster_status = "ok", "...")` is
//! stored as `CLAWSTER_CHECK=sysbox.units CLAWSTER_STATUS=ok`, so `journalctl -o json` is the
//! health API. [`health`] writes such a record with the field names fixed in one place.

use std::fmt;
use std::io::IsTerminal;
use std::path::Path;
use std::str::FromStr;

use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Where the journald native protocol socket lives.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Journal field naming the check a health record is about (`CLAWSTER_CHECK`).
pub const FIELD_CHECK: &str = "CLAWSTER_CHECK";
/// Journal field holding the record's [`Status`] (`CLAWSTER_STATUS`).
pub const FIELD_STATUS: &str = "CLAWSTER_STATUS";

/// Where log events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogTarget {
    /// The journal when its socket exists, plus stderr when there is no journal or stderr is a terminal.
    #[default]
    Auto,
    /// The journal only; an error if it is unreachable.
    Journald,
    /// Stderr only.
    Stderr,
}

impl FromStr for LogTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "journald" => Ok(Self::Journald),
            "stderr" => Ok(Self::Stderr),
            other => Err(format!(
                "unknown log target {other:?}: expected auto, journald or stderr"
            )),
        }
    }
}

impl fmt::Display for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Journald => "journald",
            Self::Stderr => "stderr",
        })
    }
}

/// What [`init`] set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSetup {
    /// Events go to the journal.
    pub journald: bool,
    /// Events go to stderr.
    pub stderr: bool,
}

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `--log-target journald` was asked for but the journal is unreachable.
    #[error("cannot log to the journal ({JOURNAL_SOCKET})")]
    Journald(#[source] std::io::Error),
    /// A global subscriber was already installed.
    #[error("logging was already initialised")]
    AlreadyInitialised,
}

/// Installs the global subscriber for a program.
///
/// `identifier` becomes the journal's `SYSLOG_IDENTIFIER` (use the binary name). `verbose`
/// counts `-v` flags: 0 = info, 1 = debug, 2+ = trace.
pub fn init(identifier: &str, target: LogTarget, verbose: u8) -> Result<LogSetup, LoggingError> {
    init_with_socket(identifier, target, verbose, Path::new(JOURNAL_SOCKET))
}

fn init_with_socket(
    identifier: &str,
    target: LogTarget,
    verbose: u8,
    socket: &Path,
) -> Result<LogSetup, LoggingError> {
    let level = match verbose {
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let journal_present = socket.exists();
    let setup = match target {
        LogTarget::Auto => LogSetup {
            journald: journal_present,
            stderr: !journal_present || std::io::stderr().is_terminal(),
        },
        LogTarget::Journald => LogSetup {
            journald: true,
            stderr: false,
        },
        LogTarget::Stderr => LogSetup {
            journald: false,
            stderr: true,
        },
    };

    let journald = if setup.journald {
        match tracing_journald::layer() {
            Ok(layer) => Some(
                layer
                    .with_field_prefix(None)
                    .with_syslog_identifier(identifier.to_string())
                    // Syslog's usual meaning: info records are "informational" (6), not "notice".
                    .with_priority_mappings(PriorityMappings {
                        error: Priority::Error,
                        warn: Priority::Warning,
                        info: Priority::Informational,
                        debug: Priority::Debug,
                        trace: Priority::Debug,
                    })
                    .with_filter(level),
            ),
            Err(e) if target == LogTarget::Journald => return Err(LoggingError::Journald(e)),
            Err(_) => None,
        }
    } else {
        None
    };
    let setup = LogSetup {
        journald: journald.is_some(),
        stderr: setup.stderr || journald.is_none(),
    };
    let stderr = setup.stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(level)
    });
    tracing_subscriber::registry()
        .with(journald)
        .with(stderr)
        .try_init()
        .map_err(|_| LoggingError::AlreadyInitialised)?;
    Ok(setup)
}

/// The state a health record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The check holds and nothing had to be done.
    Ok,
    /// The check holds after we changed something.
    Changed,
    /// The check was not run (e.g. it needs the live host and we work on a root directory).
    Skipped,
    /// The check does not hold, but the host still works in a reduced way.
    Degraded,
    /// The check does not hold.
    Failed,
}

impl Status {
    /// The value written to the `CLAWSTER_STATUS` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Changed => "changed",
            Self::Skipped => "skipped",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes one health record: `CLAWSTER_CHECK=<check> CLAWSTER_STATUS=<status>` plus the message.
/// Failed records are logged at error level, degraded at warn, the rest at info.
pub fn health(check: &str, status: Status, message: &str) {
    let s = status.as_str();
    match status {
        Status::Failed => tracing::error!(clawster_check = check, clawster_status = s, "{message}"),
        Status::Degraded => {
            tracing::warn!(clawster_check = check, clawster_status = s, "{message}")
        }
        _ => tracing::info!(clawster_check = check, clawster_status = s, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_target_parses_and_names_bad_values() {
        assert_eq!("auto".parse::<LogTarget>(), Ok(LogTarget::Auto));
        assert_eq!("journald".parse::<LogTarget>(), Ok(LogTarget::Journald));
        assert_eq!("stderr".parse::<LogTarget>(), Ok(LogTarget::Stderr));
        let e = "syslog".parse::<LogTarget>().expect_err("unknown");
        assert!(e.contains("syslog") && e.contains("journald"), "{e}");
        assert_eq!(LogTarget::Journald.to_string(), "journald");
    }

    #[test]
    fn status_serialises_as_its_field_value() {
        for s in [
            Status::Ok,
            Status::Changed,
            Status::Skipped,
            Status::Degraded,
            Status::Failed,
        ] {
            assert_eq!(
                serde_json::to_string(&s).expect("json"),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn auto_without_journal_falls_back_to_stderr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let setup = init_with_socket(
            "clawster-test",
            LogTarget::Auto,
            0,
            &dir.path().join("no-socket"),
        )
        .expect("init");
        assert_eq!(
            setup,
            LogSetup {
                journald: false,
                stderr: true
            }
        );
        // A second global init is refused, not silently ignored.
        assert!(matches!(
            init_with_socket(
                "clawster-test",
                LogTarget::Stderr,
                0,
                &dir.path().join("no-socket")
            ),
            Err(LoggingError::AlreadyInitialised)
        ));
    }
}
