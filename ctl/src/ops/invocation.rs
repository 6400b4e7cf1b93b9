//! What an SSM command invocation's answer means: GetCommandInvocation's `Status`,
//! `ResponseCode`, `StandardOutputContent` and `StandardErrorContent` in, an [`Outcome`], the exit
//! code of `clawsterctl` and a message out.
//!
//! The host side's exit codes, by command:
//!
//! | command | 0 | 1 | 2 | 3 |
//! |---|---|---|---|---|
//! | `clawster-agent window open` | opened | refused (`error: --pkgs/--ttl/--max-ttl/--reason ...`) or failed | - | - |
//! | `clawster-agent window close` / `status` | done | failed | - | - |
//! | `clawster-agent window install` | installed | failed | - | refused |
//! | `clawster-agent health` | healthy | degraded | could not check | - |
//! | `clawster-nat-agent status` | healthy | not healthy (JSON on stdout) or failed (none) | - | - |
//! | `journalctl` | done | failed | - | - |
//! | `clawster-agent state sync|restore|status` | done (JSON on stdout) | failed | - | - |
//!
//! The documents' scripts add: 1 with "needs SSM Agent" (the host's SSM Agent is too old for
//! parameters as environment variables), 2 with "unknown action" (document and client disagree),
//! and the shell's 126/127 when the program is not executable or not there.
//!
//! `clawsterctl`'s exit codes: [`EXIT_OK`] 0 done/healthy, [`EXIT_FAILED`] 1 degraded or failed
//! on the host, [`EXIT_NOT_RUN`] 2 could not run or check (host unreachable, timed out,
//! cancelled, health could not check), [`EXIT_REFUSED`] 3 refused.

use std::fmt;
use std::str::FromStr;

use super::clean;

/// Done, healthy.
pub const EXIT_OK: u8 = 0;
/// Degraded, or failed on the host.
pub const EXIT_FAILED: u8 = 1;
/// Could not run or could not check.
pub const EXIT_NOT_RUN: u8 = 2;
/// Refused by the agent on the host: bad input or not allowed. (Input `clawsterctl` refuses
/// itself, before sending anything, is bad usage: exit 2, like every command's usage errors.)
pub const EXIT_REFUSED: u8 = 3;

/// SSM keeps at most this many characters of a command's stdout and of its stderr.
pub const SSM_OUTPUT_LIMIT: usize = 24_000;

/// GetCommandInvocation's `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsmStatus {
    /// Not yet delivered.
    Pending,
    /// Running.
    InProgress,
    /// The host could not be reached yet; SSM retries.
    Delayed,
    /// Ran and exited 0.
    Success,
    /// Cancelled before or while running.
    Cancelled,
    /// Not delivered, or not finished, in time.
    TimedOut,
    /// Ran and exited non-zero, or could not be delivered.
    Failed,
    /// Being cancelled.
    Cancelling,
}

impl SsmStatus {
    const ALL: [(Self, &'static str); 8] = [
        (Self::Pending, "Pending"),
        (Self::InProgress, "InProgress"),
        (Self::Delayed, "Delayed"),
        (Self::Success, "Success"),
        (Self::Cancelled, "Cancelled"),
        (Self::TimedOut, "TimedOut"),
        (Self::Failed, "Failed"),
        (Self::Cancelling, "Cancelling"),
    ];

    /// SSM's name for it.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, n)| n)
    }

    /// True when the invocation will not change any more (stop polling).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Cancelled | Self::TimedOut | Self::Failed
        )
    }
}

impl fmt::Display for SsmStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status SSM does not document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SSM command status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for SsmStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(st, _)| *st)
            .ok_or_else(|| UnknownStatus(clean(s)))
    }
}

/// What ran on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCommand {
    /// `clawster-agent window open`.
    WindowOpen,
    /// `clawster-agent window close`.
    WindowClose,
    /// `clawster-agent window status`.
    WindowStatus,
    /// `clawster-agent window install` (the bot's command; no document sends it, but its
    /// refusal code is part of the window's contract).
    WindowInstall,
    /// `clawster-agent health --json`.
    Health,
    /// `clawster-nat-agent status --json`.
    NatStatus,
    /// `journalctl` for the agent's records.
    Logs,
    /// `journalctl` for the window's audit records.
    WindowLogs,
    /// `clawster-agent state sync --json`.
    StateSync,
    /// `clawster-agent state restore --at=TIME --json`.
    StateRestore,
    /// `clawster-agent state status --json`.
    StateStatus,
}

impl HostCommand {
    /// The program the document runs.
    pub fn program(self) -> &'static str {
        match self {
            Self::NatStatus => "clawster-nat-agent",
            Self::Logs | Self::WindowLogs => "journalctl",
            _ => "clawster-agent",
        }
    }

    fn checks(self) -> bool {
        matches!(self, Self::Health | Self::NatStatus)
    }
}

/// One invocation's answer, as GetCommandInvocation returns it.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// `Status`.
    pub status: SsmStatus,
    /// `ResponseCode` (-1: the command did not run, or has not finished).
    pub response_code: i32,
    /// `StandardOutputContent`.
    pub stdout: &'a str,
    /// `StandardErrorContent`.
    pub stderr: &'a str,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and did what was asked (checks: healthy).
    Done,
    /// A check ran and found problems.
    Degraded,
    /// The agent refused the request.
    Refused,
    /// It ran and failed (checks: could not check).
    Failed,
    /// It never ran on the host.
    Unreachable,
    /// It was not delivered or did not finish in time.
    TimedOut,
    /// Someone cancelled it.
    Cancelled,
    /// SSM has not finished: ask again.
    Pending,
}

/// The meaning of an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What happened.
    pub outcome: Outcome,
    /// `clawsterctl`'s exit code (`None` while pending).
    pub exit_code: Option<u8>,
    /// One line for the operator (host text cleaned).
    pub message: String,
}

/// The agent's input errors, as `finish` prints them.
const REFUSED_PREFIXES: [&str; 4] = [
    "error: --pkgs",
    "error: --ttl",
    "error: --max-ttl",
    "error: --reason",
];

/// The last non-empty line of stderr, cleaned and without the `error: ` prefix, cut to 300 chars.
fn last_error(stderr: &str) -> Option<String> {
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty())?;
    let line = line.trim().strip_prefix("error: ").unwrap_or(line.trim());
    let mut s = clean(line);
    if s.chars().count() > 300 {
        s = s.chars().take(300).collect::<String>() + "...";
    }
    Some(s)
}

fn verdict(outcome: Outcome, exit_code: u8, message: String) -> Verdict {
    Verdict {
        outcome,
        exit_code: Some(exit_code),
        message,
    }
}

/// Interprets one invocation of `cmd`.
pub fn interpret(cmd: HostCommand, inv: &Invocation<'_>) -> Verdict {
    let code = inv.response_code;
    let said = || last_error(inv.stderr);
    match inv.status {
        SsmStatus::Pending | SsmStatus::InProgress | SsmStatus::Delayed | SsmStatus::Cancelling => {
            return Verdict {
                outcome: Outcome::Pending,
                exit_code: None,
                message: format!("SSM reports {}", inv.status),
            }
        }
        SsmStatus::Cancelled => {
            return verdict(
                Outcome::Cancelled,
                EXIT_NOT_RUN,
                "the command was cancelled".into(),
            )
        }
        SsmStatus::TimedOut if code < 0 => {
            return verdict(
                Outcome::TimedOut,
                EXIT_NOT_RUN,
                "the host did not take the command in time: is the instance running and online in SSM (Fleet Manager)?".into(),
            )
        }
        SsmStatus::TimedOut => {
            return verdict(
                Outcome::TimedOut,
                EXIT_NOT_RUN,
                format!("{} ran out of time on the host", cmd.program()),
            )
        }
        SsmStatus::Success | SsmStatus::Failed if code < 0 => {
            return verdict(
                Outcome::Unreachable,
                EXIT_NOT_RUN,
                format!(
                    "the command did not run on the host (SSM status {}): is the instance online in SSM and the shared stack's document there?",
                    inv.status
                ),
            )
        }
        SsmStatus::Success | SsmStatus::Failed => {}
    }
    let checks = cmd.checks();
    let failed_code = if checks { EXIT_NOT_RUN } else { EXIT_FAILED };
    let failed = |what: String| verdict(Outcome::Failed, failed_code, what);
    let stderr_says = |needle: &str| inv.stderr.contains(needle);
    match code {
        0 => verdict(Outcome::Done, EXIT_OK, format!("{} succeeded", cmd.program())),
        127 => failed(format!(
            "{} is not on the host (exit 127): was it bootstrapped by this release?",
            cmd.program()
        )),
        126 => failed(format!("{} cannot be run on the host (exit 126)", cmd.program())),
        1 if stderr_says("needs SSM Agent") => failed(
            "the host's SSM Agent is too old for this document (3.3.2746.0 or later passes parameters as environment variables)".into(),
        ),
        2 if stderr_says("unknown action") => failed(
            "the document does not know this action: update the shared stack to this release of clawsterctl".into(),
        ),
        1 if cmd == HostCommand::WindowOpen
            && inv
                .stderr
                .lines()
                .any(|l| REFUSED_PREFIXES.iter().any(|p| l.trim_start().starts_with(p))) =>
        {
            let line = inv
                .stderr
                .lines()
                .find(|l| REFUSED_PREFIXES.iter().any(|p| l.trim_start().starts_with(p)))
                .unwrap_or_default();
            verdict(
                Outcome::Refused,
                EXIT_REFUSED,
                format!("the agent refused: {}", last_error(line).unwrap_or_default()),
            )
        }
        3 if cmd == HostCommand::WindowInstall => verdict(
            Outcome::Refused,
            EXIT_REFUSED,
            format!(
                "the window service refused: {}",
                said().unwrap_or_else(|| "no reason given".into())
            ),
        ),
        1 if cmd == HostCommand::Health => verdict(
            Outcome::Degraded,
            EXIT_FAILED,
            "the host is degraded".into(),
        ),
        1 if cmd == HostCommand::NatStatus && inv.stdout.trim_start().starts_with('{') => {
            verdict(
                Outcome::Degraded,
                EXIT_FAILED,
                "the NAT instance is not healthy".into(),
            )
        }
        2 if cmd == HostCommand::Health => failed(format!(
            "the agent could not check the host: {}",
            said().unwrap_or_else(|| "no reason given".into())
        )),
        n => failed(format!(
            "{} failed (exit {n}){}",
            cmd.program(),
            said().map(|s| format!(": {s}")).unwrap_or_default()
        )),
    }
}

/// True when SSM cut this output: it keeps [`SSM_OUTPUT_LIMIT`] characters, so output of that
/// length may have been longer.
pub fn is_cut(output: &str) -> bool {
    output.chars().count() >= SSM_OUTPUT_LIMIT
}

/// The note to print when SSM cut the output of `cmd`, if it did.
pub fn truncation_note(cmd: HostCommand, stdout: &str, stderr: &str) -> Option<String> {
    let streams: Vec<&str> = [("stdout", stdout), ("stderr", stderr)]
        .into_iter()
        .filter(|(_, s)| is_cut(s))
        .map(|(n, _)| n)
        .collect();
    if streams.is_empty() {
        return None;
    }
    let what = match cmd {
        HostCommand::Logs | HostCommand::WindowLogs => {
            " (records come newest first: the oldest are missing; ask for a shorter --since)"
        }
        _ => "",
    };
    Some(format!(
        "note: the host's {} was cut at 24,000 characters (SSM keeps no more){what}",
        streams.join(" and ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cmd: HostCommand, status: &str, code: i32, stdout: &str, stderr: &str) -> Verdict {
        interpret(
            cmd,
            &Invocation {
                status: status.parse().expect("status"),
                response_code: code,
                stdout,
                stderr,
            },
        )
    }

    #[test]
    fn statuses_parse_and_say_when_they_are_final() {
        for (s, name) in SsmStatus::ALL {
            assert_eq!(name.parse::<SsmStatus>(), Ok(s));
            assert_eq!(s.to_string(), name);
        }
        assert!(SsmStatus::Success.is_final() && SsmStatus::TimedOut.is_final());
        assert!(!SsmStatus::Cancelling.is_final() && !SsmStatus::Delayed.is_final());
        let e = "Undeliverable\u{1b}[2J"
            .parse::<SsmStatus>()
            .expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "unknown SSM command status \"Undeliverable\\\\u{1b}[2J\""
        );
    }

    #[test]
    fn not_finished_not_run_and_timed_out() {
        for s in ["Pending", "InProgress", "Delayed", "Cancelling"] {
            let v = run(HostCommand::Health, s, -1, "", "");
            assert_eq!((v.outcome, v.exit_code), (Outcome::Pending, None), "{s}");
        }
        let v = run(HostCommand::WindowOpen, "TimedOut", -1, "", "");
        assert_eq!((v.outcome, v.exit_code), (Outcome::TimedOut, Some(2)));
        assert!(
            v.message.contains("did not take the command"),
            "{}",
            v.message
        );
        let v = run(HostCommand::Logs, "TimedOut", 143, "", "");
        assert_eq!(v.outcome, Outcome::TimedOut);
        assert!(v.message.contains("journalctl ran out of time"));
        let v = run(HostCommand::WindowClose, "Failed", -1, "", "");
        assert_eq!((v.outcome, v.exit_code), (Outcome::Unreachable, Some(2)));
        let v = run(HostCommand::WindowClose, "Cancelled", -1, "", "");
        assert_eq!((v.outcome, v.exit_code), (Outcome::Cancelled, Some(2)));
    }

    #[test]
    fn window_open_refusals_and_failures() {
        let v = run(HostCommand::WindowOpen, "Success", 0, "window 1 open", "");
        assert_eq!((v.outcome, v.exit_code), (Outcome::Done, Some(0)));
        let stderr = "ERROR --pkgs: package name \"nginx;id\" has ';' at position 5 clawster_status=\"failed\"\nerror: --pkgs: package name \"nginx;id\" has ';' at position 5: only letters, digits and . _ + - are allowed\n";
        let v = run(HostCommand::WindowOpen, "Failed", 1, "", stderr);
        assert_eq!((v.outcome, v.exit_code), (Outcome::Refused, Some(3)));
        assert_eq!(
            v.message,
            "the agent refused: --pkgs: package name \"nginx;id\" has ';' at position 5: only letters, digits and . _ + - are allowed"
        );
        let v = run(
            HostCommand::WindowOpen,
            "Failed",
            1,
            "",
            "error: storing the window: write /run/clawster/window.json: No space left on device\n",
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Failed, Some(1)));
        assert!(v.message.contains("No space left"), "{}", v.message);
        // The same words from another command are not the agent's input refusal.
        let v = run(
            HostCommand::WindowClose,
            "Failed",
            1,
            "",
            "error: --ttl x\n",
        );
        assert_eq!(v.outcome, Outcome::Failed);
    }

    #[test]
    fn install_status_and_script_codes() {
        let v = run(
            HostCommand::WindowInstall,
            "Failed",
            3,
            "",
            "refused: nginx is not on the list\n",
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Refused, Some(3)));
        assert!(v.message.ends_with("refused: nginx is not on the list"));
        let v = run(
            HostCommand::WindowStatus,
            "Failed",
            127,
            "",
            "exec: not found",
        );
        assert_eq!(v.outcome, Outcome::Failed);
        assert!(v.message.contains("clawster-agent is not on the host"));
        let v = run(
            HostCommand::Health,
            "Failed",
            1,
            "",
            "this document needs SSM Agent 3.3.2746.0 or later (parameters as environment variables)",
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Failed, Some(2)));
        assert!(v.message.contains("SSM Agent is too old"));
        let v = run(HostCommand::Logs, "Failed", 2, "", "unknown action\n");
        assert!(
            v.message.contains("update the shared stack"),
            "{}",
            v.message
        );
    }

    #[test]
    fn checks_map_to_healthy_degraded_and_could_not_check() {
        let v = run(HostCommand::Health, "Success", 0, "{}", "");
        assert_eq!((v.outcome, v.exit_code), (Outcome::Done, Some(0)));
        let v = run(HostCommand::Health, "Failed", 1, "{}", "");
        assert_eq!((v.outcome, v.exit_code), (Outcome::Degraded, Some(1)));
        let v = run(
            HostCommand::Health,
            "Failed",
            2,
            "",
            "error: cannot check the live host: connecting to the D-Bus system bus\n",
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Failed, Some(2)));
        assert!(v
            .message
            .ends_with("cannot check the live host: connecting to the D-Bus system bus"));
        let v = run(
            HostCommand::NatStatus,
            "Failed",
            1,
            "{\"healthy\": false}",
            "",
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Degraded, Some(1)));
        let v = run(
            HostCommand::NatStatus,
            "Failed",
            1,
            "",
            "error: open nf_tables netlink socket (needs CAP_NET_ADMIN): Operation not permitted\n",
        );
        assert_eq!((v.outcome, v.exit_code), (Outcome::Failed, Some(2)));
    }

    #[test]
    fn hostile_stderr_is_cleaned_and_bounded() {
        let stderr = format!("error: \u{1b}]0;pwned\u{7}{}\n", "x".repeat(5000));
        let v = run(HostCommand::WindowClose, "Failed", 1, "", &stderr);
        assert!(!v.message.contains('\u{1b}') && !v.message.contains('\u{7}'));
        assert!(v.message.chars().count() < 400, "{}", v.message.len());
    }

    #[test]
    fn truncation_is_noticed_at_the_limit() {
        let full = "x".repeat(SSM_OUTPUT_LIMIT);
        let short = "x".repeat(SSM_OUTPUT_LIMIT - 1);
        assert!(is_cut(&full) && !is_cut(&short));
        // Characters, not bytes.
        assert!(!is_cut(&"é".repeat(SSM_OUTPUT_LIMIT - 1)));
        assert!(truncation_note(HostCommand::Health, &short, "").is_none());
        assert_eq!(
            truncation_note(HostCommand::Health, &full, "").expect("cut"),
            "note: the host's stdout was cut at 24,000 characters (SSM keeps no more)"
        );
        let n = truncation_note(HostCommand::WindowLogs, &full, &full).expect("cut");
        assert!(
            n.contains("stdout and stderr") && n.contains("oldest are missing"),
            "{n}"
        );
    }
}
