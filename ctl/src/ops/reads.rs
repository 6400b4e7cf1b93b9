//! `clawsterctl health BOT [--nat]` and `clawsterctl logs BOT [--since DUR] [--window]`: the
//! read-only requests to the operations document ([`crate::shared::ops_document`]).
//!
//! The document runs constant commands; its one free parameter, `since`, is a number and a unit
//! that [`Since`] checks here with exactly the rule of the document's `allowedPattern`
//! ([`since_pattern`]) and that the script hands to journalctl as `--since=-<since>` (a relative
//! time: `-10m` is ten minutes ago), never to a shell parser.

use clawster_core::logging::{FIELD_CHECK, FIELD_STATUS};
use clawster_core::window_rules::{AUDIT_CHECKS, AUDIT_FIELDS};

use super::invocation::HostCommand;
use super::{params, Parameters};

/// The shared stack's output naming the operations document.
pub const DOCUMENT_OUTPUT: &str = "OpsDocumentName";
/// The document's read-only `action` values (the state actions are in [`super::state::ACTIONS`];
/// the document's patterns, in [`crate::shared::ops_document`]'s module).
pub const ACTIONS: [&str; 4] = ["health", "nat-status", "logs", "window-logs"];
/// The most digits of a `since` number.
pub const SINCE_MAX_DIGITS: usize = 4;
/// The units of a `since` value (journalctl's: seconds, minutes, hours, days).
pub const SINCE_UNITS: &str = "smhd";
/// `since` when none is given.
pub const DEFAULT_SINCE: &str = "1h";
/// Most journal records a `logs` command returns, newest first. SSM keeps 24,000 characters of
/// stdout and a record in journalctl's JSON takes about 400 to 800 of them (its cursor alone
/// about 160), so a larger number would only be cut; the newest survive a cut.
pub const LOG_LINES: u32 = 30;
/// The journal identifier of the agent's records.
pub const AGENT_IDENTIFIER: &str = "clawster-agent";

/// The journal fields `logs` asks for (journalctl adds its cursor, timestamps and boot id).
pub fn journal_fields() -> Vec<&'static str> {
    let mut v = vec!["MESSAGE", "PRIORITY", FIELD_CHECK, FIELD_STATUS];
    v.extend(AUDIT_FIELDS);
    v
}

/// The journalctl command and options of `logs` and `window-logs`; the script adds
/// `--since=-$SSM_since` and then, for `window-logs`, [`window_matches`].
pub fn journalctl_args() -> Vec<String> {
    let mut v: Vec<String> = [
        "journalctl",
        "--no-pager",
        "--quiet",
        "--output=json",
        "--reverse",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("--output-fields={}", journal_fields().join(",")));
    v.push(format!("--lines={LOG_LINES}"));
    v.push(format!("--identifier={AGENT_IDENTIFIER}"));
    v
}

/// journalctl matches for the window's audit records: several matches of one field are
/// alternatives, and together with `--identifier` both must hold.
pub fn window_matches() -> Vec<String> {
    AUDIT_CHECKS
        .iter()
        .map(|c| format!("{FIELD_CHECK}={c}"))
        .collect()
}

/// The `since` parameter's `allowedPattern`: `^[1-9][0-9]{0,3}[smhd]$`.
pub fn since_pattern() -> String {
    format!("^[1-9][0-9]{{0,{}}}[{SINCE_UNITS}]$", SINCE_MAX_DIGITS - 1)
}

/// `--since` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--since {0:?} is not a duration: use 1 to {max} followed by s, m, h or d (e.g. 30m, 2d)", max = "9".repeat(SINCE_MAX_DIGITS))]
pub struct SinceError(pub String);

/// How far back `logs` reads: a number without leading zero and a unit, e.g. `30m`, `2d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since(String);

impl Since {
    /// Checks a value with the rule of [`since_pattern`].
    pub fn parse(s: &str) -> Result<Self, SinceError> {
        let Some((at, unit)) = s.char_indices().last() else {
            return Err(SinceError(s.to_string()));
        };
        let num = &s[..at];
        let ok = !num.is_empty()
            && num.len() <= SINCE_MAX_DIGITS
            && num.bytes().all(|b| b.is_ascii_digit())
            && !num.starts_with('0')
            && SINCE_UNITS.contains(unit);
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(SinceError(s.to_string()))
        }
    }

    /// The value as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A checked read-only request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadArgs {
    /// `clawster-agent health --json` on the bot's host.
    Health,
    /// `clawster-nat-agent status --json` on the region's NAT instance.
    NatStatus,
    /// The agent's journal records since then, newest first.
    Logs(Since),
    /// The window's audit records since then, newest first.
    WindowLogs(Since),
}

impl ReadArgs {
    /// `logs [--since DUR] [--window]` (default [`DEFAULT_SINCE`]).
    pub fn logs(since: Option<&str>, window: bool) -> Result<Self, SinceError> {
        let since = Since::parse(since.unwrap_or(DEFAULT_SINCE))?;
        Ok(if window {
            Self::WindowLogs(since)
        } else {
            Self::Logs(since)
        })
    }

    /// The shared stack output whose value is the document to run.
    pub fn document(&self) -> &'static str {
        DOCUMENT_OUTPUT
    }

    /// What runs on the host.
    pub fn command(&self) -> HostCommand {
        match self {
            Self::Health => HostCommand::Health,
            Self::NatStatus => HostCommand::NatStatus,
            Self::Logs(_) => HostCommand::Logs,
            Self::WindowLogs(_) => HostCommand::WindowLogs,
        }
    }

    /// SendCommand's parameters.
    pub fn parameters(&self) -> Parameters {
        match self {
            Self::Health => params([("action", "health".into())]),
            Self::NatStatus => params([("action", "nat-status".into())]),
            Self::Logs(s) => params([("action", "logs".into()), ("since", s.0.clone())]),
            Self::WindowLogs(s) => {
                params([("action", "window-logs".into()), ("since", s.0.clone())])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_values() {
        for ok in ["1s", "30m", "2d", "9999h", "10m"] {
            assert_eq!(
                Since::parse(ok).map(|s| s.as_str().to_string()),
                Ok(ok.into())
            );
        }
        for bad in [
            "", "0s", "01h", "10000s", "1w", "1", "h", "-1h", "1h;id", " 1h", "1H", "1.5h",
            "$(id)", "1hh", "١h", "1é", "é",
        ] {
            assert!(Since::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Since::parse("1w").expect_err("unit").to_string(),
            "--since \"1w\" is not a duration: use 1 to 9999 followed by s, m, h or d (e.g. 30m, 2d)"
        );
        assert_eq!(since_pattern(), "^[1-9][0-9]{0,3}[smhd]$");
    }

    #[test]
    fn requests() {
        let l = ReadArgs::logs(None, false).expect("default");
        assert_eq!(l.parameters()["since"], ["1h"]);
        assert_eq!(l.parameters()["action"], ["logs"]);
        assert_eq!(l.command(), HostCommand::Logs);
        let w = ReadArgs::logs(Some("2d"), true).expect("ok");
        assert_eq!(w.parameters()["action"], ["window-logs"]);
        assert_eq!(w.document(), "OpsDocumentName");
        assert!(ReadArgs::logs(Some("2 days"), true).is_err());
        assert_eq!(
            ReadArgs::NatStatus.parameters(),
            Parameters::from([("action".into(), vec!["nat-status".into()])])
        );
        assert_eq!(ReadArgs::Health.command(), HostCommand::Health);
    }

    #[test]
    fn journalctl_is_bounded_and_filtered() {
        let a = journalctl_args();
        assert!(a.contains(&"--lines=30".to_string()));
        assert!(a.contains(&"--reverse".to_string()));
        assert!(a.contains(&"--identifier=clawster-agent".to_string()));
        assert!(!a.iter().any(|x| x.starts_with("CLAWSTER_CHECK=")));
        let m = window_matches();
        assert!(m.contains(&"CLAWSTER_CHECK=window.request".to_string()));
        assert_eq!(m.len(), 6);
        let fields = a
            .iter()
            .find_map(|x| x.strip_prefix("--output-fields="))
            .expect("fields");
        for f in [
            "MESSAGE",
            "CLAWSTER_CHECK",
            "PACKAGE",
            "DECISION",
            "CALLER_UID",
        ] {
            assert!(fields.split(',').any(|x| x == f), "{f}");
        }
        // Nothing a shell would treat specially, so the constant script needs no quoting.
        for arg in a.iter().chain(&m) {
            assert!(
                arg.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-=_.,".contains(&b)),
                "{arg}"
            );
        }
    }
}
