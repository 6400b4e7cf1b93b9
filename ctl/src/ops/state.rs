//! `clawsterctl backup BOT`, `restore BOT --at TIME` and the deploy's host replacement: the
//! state requests to the operations document ([`crate::shared::ops_document`]), which runs
//! `clawster-agent state sync|restore|status --json` on the bot's host, and what their JSON
//! answers mean.
//!
//! The one free parameter, `at`, reaches the host only in the wire form
//! `YYYY-MM-DDTHH:MM:SSZ` that [`crate::state::time::At::wire`] writes and the document's
//! `allowedPattern` ([`crate::state::time::at_pattern`]) admits, handed to the agent as one
//! `--at=VALUE` argument, never to a shell parser.

use serde::Deserialize;

use super::invocation::HostCommand;
use super::{params, Parameters};
use crate::state::time::At;

/// The operations document's state actions.
pub const ACTIONS: [&str; 3] = ["state-sync", "state-restore", "state-status"];

/// A checked state request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateArgs {
    /// `clawster-agent state sync --json`: take a consistent sync now.
    Sync,
    /// `clawster-agent state restore --at=TIME --json` (the bot's task must be stopped).
    Restore(At),
    /// `clawster-agent state status --json`.
    Status,
}

impl StateArgs {
    /// The shared stack output whose value is the document to run.
    pub fn document(&self) -> &'static str {
        super::reads::DOCUMENT_OUTPUT
    }

    /// What runs on the host.
    pub fn command(&self) -> HostCommand {
        match self {
            Self::Sync => HostCommand::StateSync,
            Self::Restore(_) => HostCommand::StateRestore,
            Self::Status => HostCommand::StateStatus,
        }
    }

    /// SendCommand's parameters.
    pub fn parameters(&self) -> Parameters {
        match self {
            Self::Sync => params([("action", "state-sync".into())]),
            Self::Restore(at) => params([("action", "state-restore".into()), ("at", at.wire())]),
            Self::Status => params([("action", "state-status".into())]),
        }
    }
}

/// `state sync --json`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Synced {
    /// The generation written.
    pub generation: u64,
    /// When (RFC3339).
    pub taken_at: String,
    /// Bytes uploaded by this sync.
    #[serde(default)]
    pub bytes: u64,
}

/// `state restore --json`'s answer: which generation is back on the host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Restored {
    /// The generation restored.
    pub generation: u64,
    /// When it was taken (RFC3339).
    pub taken_at: String,
}

/// The agent's JSON on stdout was not what the contract says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("clawster-agent {command} printed no answer ctl understands ({why}); first line: {line:?}")]
pub struct AnswerError {
    /// `state sync`, `state restore`.
    pub command: &'static str,
    /// The parse error.
    pub why: String,
    /// The first line of stdout, cleaned and cut.
    pub line: String,
}

/// Parses the last JSON line of a state command's stdout.
pub fn parse_answer<T: serde::de::DeserializeOwned>(
    command: &'static str,
    stdout: &str,
) -> Result<T, AnswerError> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_default();
    serde_json::from_str(line).map_err(|e| AnswerError {
        command,
        why: e.to_string(),
        line: super::clean(stdout.lines().next().unwrap_or_default())
            .chars()
            .take(200)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_wire_form() {
        let r = StateArgs::Restore(At(1_796_644_770));
        assert_eq!(r.parameters()["action"], ["state-restore"]);
        assert_eq!(r.parameters()["at"], ["2026-12-07T11:59:30Z"]);
        assert_eq!(r.command(), HostCommand::StateRestore);
        assert_eq!(r.document(), "OpsDocumentName");
        assert_eq!(
            StateArgs::Sync.parameters(),
            Parameters::from([("action".into(), vec!["state-sync".into()])])
        );
        assert_eq!(StateArgs::Status.command(), HostCommand::StateStatus);
    }

    #[test]
    fn answers_parse_or_say_what_came() {
        let s: Synced = parse_answer(
            "state sync",
            "note\n{\"generation\":7,\"taken_at\":\"2026-12-07T11:59:30Z\",\"bytes\":1234}\n",
        )
        .expect("synced");
        assert_eq!((s.generation, s.bytes), (7, 1234));
        let e = parse_answer::<Synced>("state sync", "\u{1b}[2Jnot json\n").expect_err("bad");
        assert!(e
            .to_string()
            .starts_with("clawster-agent state sync printed no answer"));
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
    }
}
