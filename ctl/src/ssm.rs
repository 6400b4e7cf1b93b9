//! `clawsterctl window|health|logs`: one command on one host through SSM Run Command.
//!
//! The pure halves live in [`crate::ops`] (what to send, what the answer means, how to show it);
//! this module makes the AWS calls around them. Nothing the operator types reaches a shell: the
//! commands run only the shared stack's two documents, with parameters the document's
//! `allowedPattern`s admit, built by [`crate::ops::window::WindowArgs`] and
//! [`crate::ops::reads::ReadArgs`] after they checked every value.
//!
//! Order of work, and the failure policy of each step:
//! 0. **Local checks** (in [`crate::commands`], no AWS call): the request's values (packages,
//!    TTL, reason, `--since`) and the instance id. Failure: exit 2 naming the value and why;
//!    nothing is sent.
//! 1. **Host**: for a bot, its stack `clawster-bot-BOT`, the stack's output
//!    `AutoScalingGroupName`, and that group's instances in `InService`: exactly one is the host.
//!    No stack, no such instance, or several: exit 2 saying which and what to do. `--instance-id`
//!    skips this; `health --nat` takes the shared stack's output `NatInstanceId`.
//! 2. **Online check**: DescribeInstanceInformation for that instance. Absent, or its
//!    `PingStatus` other than `Online`: exit 2 naming what makes a host SSM-managed. When the
//!    endpoint itself fails (HTTP 5xx, `NotImplemented`, as in emulators) nothing is known and
//!    the run goes on (debug log only); any other error: exit 2.
//! 3. **Document**: the shared stack `clawster-shared-REGION`'s output `WindowDocumentName` or
//!    `OpsDocumentName`. Missing stack or output: exit 2.
//! 4. **Send**: SendCommand with the document, `InstanceIds=[id]` (never `Targets`), the
//!    parameters, a comment naming the command and `TimeoutSeconds` from `--timeout`. A refusal
//!    (unknown instance, document, parameters): exit 2; nothing ran.
//! 5. **Wait**: GetCommandInvocation every poll interval of the run's [`Pace`] until the status
//!    is final. `InvocationDoesNotExist` (SSM has not registered the invocation yet) is tolerated
//!    for the first [`MISSING_POLLS`] polls; throttling backs off. `--timeout` bounds steps 1-5:
//!    reaching it is exit 2 with the command id, since the command may still run. Ctrl-C: exit
//!    130, same words.
//! 6. **Show**: [`crate::ops::invocation::interpret`] turns the answer into a verdict and exit
//!    code (0 done or healthy, 1 failed or degraded on the host, 2 could not run or check, 3 the
//!    agent refused); the host's output is shown cleaned of control characters, with a note when
//!    SSM cut it at 24,000 characters.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_ssm::types::InstanceInformationStringFilter;

use crate::aws::{Aws, AwsError, ErrorKind};
use crate::deploy::Fail;
use crate::names::BotName;
use crate::ops::health::{self, parse_agent_health, parse_nat_status};
use crate::ops::invocation::{
    interpret, is_cut, truncation_note, HostCommand, Invocation, Outcome, SsmStatus, Verdict,
    EXIT_NOT_RUN,
};
use crate::ops::journal::render_journal;
use crate::ops::reads::ReadArgs;
use crate::ops::state::StateArgs;
use crate::ops::window::WindowArgs;
use crate::ops::{clean, Parameters};
use crate::pace::{human, Pace};
use crate::stack::{self, StackInfo};
use crate::{bot, shared};

/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;
/// Polls that may answer `InvocationDoesNotExist` before that counts as a failure.
pub const MISSING_POLLS: u32 = 5;
/// `--timeout` when none is given.
pub const DEFAULT_TIMEOUT: &str = "2m";
/// SendCommand's smallest `TimeoutSeconds`.
const MIN_DELIVERY_SECS: u64 = 30;

/// What to tell the operator while the run goes on (stderr in the binary).
pub type Say<'a> = &'a (dyn Fn(&str) + Sync);

/// An SSM-managed instance as `--instance-id` names it: an EC2 instance (`i-`) or a hybrid
/// managed node (`mi-`), followed by 8 or 17 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId(String);

/// `--instance-id` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--instance-id {0:?} is not an instance id: expected i- (or mi- for a hybrid managed node) and 8 or 17 lowercase hex digits, e.g. i-0123456789abcdef0")]
pub struct InstanceIdError(pub String);

impl FromStr for InstanceId {
    type Err = InstanceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("i-").or_else(|| s.strip_prefix("mi-"));
        let ok = hex.is_some_and(|h| {
            (h.len() == 8 || h.len() == 17)
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(InstanceIdError(clean(s)))
        }
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which host the command runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// The one running host of a bot.
    Bot(BotName),
    /// Any SSM-managed instance.
    Instance(InstanceId),
    /// The region's NAT instance.
    Nat,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bot(b) => write!(f, "bot {b}"),
            Self::Instance(i) => write!(f, "instance {i}"),
            Self::Nat => f.write_str("the NAT instance"),
        }
    }
}

/// One checked command: which document, its parameters, what runs on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The shared stack output naming the document.
    pub document_output: &'static str,
    /// SendCommand's parameters.
    pub parameters: Parameters,
    /// What runs on the host.
    pub command: HostCommand,
    /// `window open`, `health`, ...: for messages and the command's comment.
    pub label: &'static str,
}

impl Request {
    /// A window request.
    pub fn window(a: &WindowArgs) -> Self {
        Self {
            document_output: a.document(),
            parameters: a.parameters(),
            command: a.command(),
            label: match a {
                WindowArgs::Open(_) => "window open",
                WindowArgs::Close => "window close",
                WindowArgs::Status { .. } => "window status",
            },
        }
    }

    /// A state request (`backup`, `restore`, the deploy's host replacement).
    pub fn state(a: &StateArgs) -> Self {
        Self {
            document_output: a.document(),
            parameters: a.parameters(),
            command: a.command(),
            label: match a {
                StateArgs::Sync => "state sync",
                StateArgs::Restore(_) => "state restore",
                StateArgs::Status => "state status",
            },
        }
    }

    /// A read-only request.
    pub fn read(r: &ReadArgs) -> Self {
        Self {
            document_output: r.document(),
            parameters: r.parameters(),
            command: r.command(),
            label: match r {
                ReadArgs::Health => "health",
                ReadArgs::NatStatus => "health --nat",
                ReadArgs::Logs(_) => "logs",
                ReadArgs::WindowLogs(_) => "logs --window",
            },
        }
    }
}

/// A finished invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What ran.
    pub command: HostCommand,
    /// The instance it ran on.
    pub instance: String,
    /// SSM's command id.
    pub command_id: String,
    /// The final status.
    pub status: SsmStatus,
    /// `StatusDetails` (e.g. `Undeliverable`, `DeliveryTimedOut`).
    pub details: Option<String>,
    /// `ResponseCode`.
    pub response_code: i32,
    /// `StandardOutputContent` (at most 24,000 characters).
    pub stdout: String,
    /// `StandardErrorContent` (at most 24,000 characters).
    pub stderr: String,
    /// What it means.
    pub verdict: Verdict,
}

/// What a command prints and exits with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    /// For stdout: the result.
    pub stdout: String,
    /// For stderr: failures, notes and the host's warnings.
    pub stderr: String,
    /// The exit code.
    pub code: u8,
}

fn not_run(message: impl Into<String>) -> Fail {
    Fail::new(EXIT_NOT_RUN, message)
}

fn aws_fail(e: AwsError) -> Fail {
    not_run(e.message)
}

/// Steps 1-5 (see the module documentation): find the host, check it, send, wait.
pub async fn run(
    aws: &Aws,
    pace: &Pace,
    host: &Host,
    req: &Request,
    timeout: Duration,
    say: Say<'_>,
) -> Result<Answer, Fail> {
    let deadline = pace.elapsed() + timeout;

    // 1. Host.
    let instance = match host {
        Host::Bot(b) => bot_host(aws, b).await?,
        Host::Instance(i) => i.to_string(),
        Host::Nat => {
            let s = shared_stack(aws).await?;
            output(&s, "NatInstanceId")?.to_string()
        }
    };

    // 2. Online check.
    check_online(aws, &instance).await?;

    // 3. Document.
    let s = shared_stack(aws).await?;
    let document = output(&s, req.document_output)?.to_string();

    // 4. Send.
    let left = deadline.saturating_sub(pace.elapsed());
    let command_id = send(aws, &document, &instance, req, left).await?;
    say(&format!(
        "{}: {} on {instance} (SSM command {command_id}, document {document}); waiting up to {}",
        host,
        req.label,
        human(left)
    ));

    // 5. Wait.
    wait(
        aws,
        pace,
        &command_id,
        &instance,
        req.command,
        deadline,
        timeout,
    )
    .await
}

/// The shared stack, which must exist.
pub async fn shared_stack(aws: &Aws) -> Result<StackInfo, Fail> {
    let name = shared::stack_name(&aws.region);
    match stack::describe(aws, &name).await.map_err(aws_fail)? {
        Some(s) => Ok(s),
        None => Err(not_run(format!(
            "nothing is deployed in {}: the shared stack {name} does not exist",
            aws.region
        ))
        .next(format!(
            "`clawsterctl status --region {}` shows what is there; `clawsterctl deploy BOT --region {}` creates it",
            aws.region, aws.region
        ))),
    }
}

fn output<'a>(s: &'a StackInfo, key: &str) -> Result<&'a str, Fail> {
    s.output(key).map_err(|e| not_run(e.to_string()))
}

/// Step 1 for a bot: the one `InService` instance of its Auto Scaling group.
pub async fn bot_host(aws: &Aws, b: &BotName) -> Result<String, Fail> {
    let name = bot::stack_name(b);
    let Some(s) = stack::describe(aws, &name).await.map_err(aws_fail)? else {
        return Err(not_run(format!(
            "no bot {b} in {}: stack {name} does not exist",
            aws.region
        ))
        .next(format!(
            "`clawsterctl status --region {}` lists the bots there",
            aws.region
        )));
    };
    let group = output(&s, "AutoScalingGroupName")?.to_string();
    let out = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .map_err(|e| {
            aws_fail(AwsError::from_sdk(
                &format!("DescribeAutoScalingGroups {group}"),
                e,
            ))
        })?;
    let mut running: Vec<String> = out
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter(|i| i.lifecycle_state().map(|l| l.as_str()) == Some("InService"))
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    running.sort();
    running.dedup();
    match running.len() {
        1 => Ok(running.remove(0)),
        0 => Err(not_run(format!(
            "the bot {b} has no running host (its Auto Scaling group {group} has no instance in service): deploy it or check `clawsterctl status {b} --region {}`",
            aws.region
        ))),
        n => Err(not_run(format!(
            "the bot {b} has {n} running hosts ({}): name one with --instance-id",
            running.join(", ")
        ))),
    }
}

/// What makes a host reachable by SSM, for the messages of step 2.
const MANAGED_HINT: &str = "check that the instance runs, that its instance profile has the policy \
AmazonSSMManagedInstanceCore, that its SSM Agent runs, and that it reaches the ssm, ssmmessages and \
ec2messages endpoints over HTTPS (through the NAT instance or VPC endpoints)";

/// Step 2: the instance is registered with SSM and online, or nothing can be known.
pub async fn check_online(aws: &Aws, instance: &str) -> Result<(), Fail> {
    let filter = InstanceInformationStringFilter::builder()
        .key("InstanceIds")
        .values(instance)
        .build()
        .map_err(|e| not_run(format!("DescribeInstanceInformation {instance}: {e}")))?;
    let out = match aws
        .ssm
        .describe_instance_information()
        .filters(filter)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let e = AwsError::from_sdk(&format!("DescribeInstanceInformation {instance}"), e);
            if e.is_server_failure() {
                tracing::debug!(
                    "cannot tell whether {instance} is online in SSM ({e}); sending anyway"
                );
                return Ok(());
            }
            return Err(aws_fail(e));
        }
    };
    let Some(info) = out
        .instance_information_list()
        .iter()
        .find(|i| i.instance_id() == Some(instance))
    else {
        return Err(not_run(format!(
            "{instance} is not managed by SSM (Systems Manager does not know it): {MANAGED_HINT}"
        )));
    };
    let ping = info.ping_status().map(|p| p.as_str()).unwrap_or("unknown");
    if ping == "Online" {
        return Ok(());
    }
    let seen = info
        .last_ping_date_time()
        .and_then(|t| {
            t.fmt(aws_sdk_ssm::primitives::DateTimeFormat::DateTime)
                .ok()
        })
        .map(|t| format!(", last seen {t}"))
        .unwrap_or_default();
    Err(not_run(format!(
        "{instance} is not online in SSM (PingStatus {}{seen}): {MANAGED_HINT}",
        clean(ping)
    )))
}

/// Step 4: SendCommand; the command id.
pub async fn send(
    aws: &Aws,
    document: &str,
    instance: &str,
    req: &Request,
    timeout: Duration,
) -> Result<String, Fail> {
    let params: HashMap<String, Vec<String>> = req
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let secs = i32::try_from(timeout.as_secs().max(MIN_DELIVERY_SECS)).unwrap_or(i32::MAX);
    let out = aws
        .ssm
        .send_command()
        .document_name(document)
        .instance_ids(instance)
        .set_parameters(Some(params))
        .comment(format!("clawsterctl {}", req.label))
        .timeout_seconds(secs)
        .send()
        .await
        .map_err(|e| {
            let e = AwsError::from_sdk(&format!("SendCommand {document} to {instance}"), e);
            let advice = match e.code.as_deref() {
                Some("InvalidInstanceId") => format!(": SSM cannot reach {instance}; {MANAGED_HINT}"),
                Some("InvalidDocument") => format!(
                    ": the shared stack's document {document} is missing; deploy again to update the shared stack"
                ),
                Some("InvalidParameters") => ": the document does not take these parameters; deploy again to update the shared stack to this release".into(),
                _ => String::new(),
            };
            not_run(format!("{}{advice}", e.message))
        })?;
    out.command()
        .and_then(|c| c.command_id())
        .map(str::to_string)
        .ok_or_else(|| {
            not_run(format!(
                "SendCommand {document} to {instance}: SSM returned no command id"
            ))
        })
}

/// Step 5: polls until the invocation is final, `deadline` (on the run's clock) passes or the
/// operator interrupts.
pub async fn wait(
    aws: &Aws,
    pace: &Pace,
    command_id: &str,
    instance: &str,
    command: HostCommand,
    deadline: Duration,
    timeout: Duration,
) -> Result<Answer, Fail> {
    let later = format!(
        "the command may still run: `aws ssm get-command-invocation --command-id {command_id} --instance-id {instance}` shows it later"
    );
    let mut missing = 0u32;
    let mut throttled = 0u32;
    let mut last = "no answer yet".to_string();
    loop {
        let mut wait = pace.poll;
        match aws
            .ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance)
            .send()
            .await
        {
            Ok(o) => {
                throttled = 0;
                let raw = o.status().map(|s| s.as_str()).unwrap_or_default();
                match raw.parse::<SsmStatus>() {
                    Ok(status) if status.is_final() => {
                        let stdout = o.standard_output_content().unwrap_or_default().to_string();
                        let stderr = o.standard_error_content().unwrap_or_default().to_string();
                        let details = o.status_details().map(str::to_string);
                        let response_code = o.response_code();
                        let mut verdict = interpret(
                            command,
                            &Invocation {
                                status,
                                response_code,
                                stdout: &stdout,
                                stderr: &stderr,
                            },
                        );
                        if let Some(d) = details.as_deref().filter(|d| *d != status.as_str()) {
                            if matches!(verdict.outcome, Outcome::Unreachable | Outcome::TimedOut) {
                                verdict.message.push_str(&format!(" (SSM: {})", clean(d)));
                            }
                        }
                        return Ok(Answer {
                            command,
                            instance: instance.to_string(),
                            command_id: command_id.to_string(),
                            status,
                            details,
                            response_code,
                            stdout,
                            stderr,
                            verdict,
                        });
                    }
                    Ok(status) => last = format!("SSM last said {status}"),
                    Err(e) => {
                        tracing::debug!("{e}; asking again");
                        last = e.to_string();
                    }
                }
            }
            Err(e) => {
                let e = AwsError::from_sdk(
                    &format!("GetCommandInvocation {command_id} on {instance}"),
                    e,
                );
                if e.has_code("InvocationDoesNotExist") && missing < MISSING_POLLS {
                    missing += 1;
                    tracing::debug!("{e} (poll {missing}): SSM has not registered it yet");
                } else if e.kind == ErrorKind::Throttled && throttled < 8 {
                    throttled += 1;
                    wait = pace.backoff(throttled);
                } else {
                    return Err(not_run(e.message).next(later));
                }
            }
        }
        if pace.elapsed() + wait > deadline {
            return Err(not_run(format!(
                "no final answer from {instance} within {} ({last})",
                human(timeout)
            ))
            .next(later));
        }
        if !pace.sleep(wait).await {
            return Err(Fail::new(
                EXIT_INTERRUPTED,
                format!("interrupted while waiting for SSM command {command_id} on {instance}"),
            )
            .next(later));
        }
    }
}

/// Steps 1-6: runs `req` on `host` and renders the answer with `render` (a failure before
/// there is an answer is rendered by [`render_fail`]).
pub async fn execute(
    aws: &Aws,
    pace: &Pace,
    host: &Host,
    req: &Request,
    timeout: Duration,
    say: Say<'_>,
    render: impl FnOnce(&Answer) -> Printed,
) -> Printed {
    match run(aws, pace, host, req, timeout, say).await {
        Ok(a) => render(&a),
        Err(f) => render_fail(&f),
    }
}

/// A failure as printed: `error: ...` and the next steps, on stderr.
pub fn render_fail(f: &Fail) -> Printed {
    let mut stderr = format!("error: {}\n", f.message);
    for n in &f.next {
        stderr.push_str(&format!("  next: {n}\n"));
    }
    Printed {
        stdout: String::new(),
        stderr,
        code: f.code,
    }
}

/// Host text, one cleaned line per line, ending in a newline (empty stays empty).
fn host_lines(text: &str) -> String {
    text.lines().map(|l| clean(l) + "\n").collect()
}

/// The host's stderr lines for the operator, prefixed so they cannot pass for ctl's own.
fn host_stderr(text: &str, only_warnings: bool) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !only_warnings || l.trim_start().starts_with("warning:"))
        .map(|l| format!("host: {}\n", clean(l)))
        .collect()
}

fn failure(a: &Answer) -> String {
    format!("error: {}\n", a.verdict.message)
}

fn note(a: &Answer, stderr: &mut String) {
    if let Some(n) = truncation_note(a.command, &a.stdout, &a.stderr) {
        stderr.push_str(&n);
        stderr.push('\n');
    }
}

/// `window open|close|status`: the agent's own output, its warnings, and the verdict.
pub fn render_window(a: &Answer) -> Printed {
    let code = a.verdict.exit_code.unwrap_or(EXIT_NOT_RUN);
    let mut stderr = String::new();
    if a.verdict.outcome == Outcome::Done {
        stderr.push_str(&host_stderr(&a.stderr, true));
    } else {
        stderr.push_str(&failure(a));
    }
    note(a, &mut stderr);
    Printed {
        stdout: host_lines(&a.stdout),
        stderr,
        code,
    }
}

/// `health [--nat] [--json]`: the report as a table (or the host's JSON), exit 0 healthy, 1
/// degraded, 2 could not check.
pub fn render_health(a: &Answer, json: bool) -> Printed {
    let ran = matches!(a.verdict.outcome, Outcome::Done | Outcome::Degraded);
    if !ran {
        let mut stderr = failure(a);
        note(a, &mut stderr);
        return Printed {
            stdout: String::new(),
            stderr,
            code: a.verdict.exit_code.unwrap_or(EXIT_NOT_RUN),
        };
    }
    let nat = a.command == HostCommand::NatStatus;
    let rendered = if nat {
        health::nat_status(&a.stdout, &a.stderr)
    } else {
        health::agent_health(&a.stdout, &a.stderr)
    };
    let readable = if nat {
        parse_nat_status(&a.stdout).is_ok()
    } else {
        parse_agent_health(&a.stdout).is_ok()
    };
    let mut stderr = String::new();
    let stdout = match (readable, json) {
        (false, _) => {
            stderr.push_str(&format!("error: {}", rendered.text));
            String::new()
        }
        (true, true) => host_lines(&a.stdout),
        (true, false) => rendered.text,
    };
    note(a, &mut stderr);
    Printed {
        stdout,
        stderr,
        code: rendered.exit_code,
    }
}

/// `logs [--window]`: the journal records, oldest first.
pub fn render_logs(a: &Answer) -> Printed {
    let code = a.verdict.exit_code.unwrap_or(EXIT_NOT_RUN);
    let mut stderr = String::new();
    let stdout = if a.verdict.outcome == Outcome::Done {
        render_journal(&a.stdout, is_cut(&a.stdout))
    } else {
        stderr.push_str(&failure(a));
        String::new()
    };
    note(a, &mut stderr);
    Printed {
        stdout,
        stderr,
        code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids() {
        for ok in ["i-0123456789abcdef0", "i-12345678", "mi-0123456789abcdef0"] {
            assert_eq!(
                ok.parse::<InstanceId>().map(|i| i.to_string()),
                Ok(ok.into())
            );
        }
        for bad in [
            "",
            "i-",
            "i-0123456789ABCDEF0",
            "i-0123",
            "x-12345678",
            "i-12345678;id",
            "i-0123456789abcdef0 ",
            "-i-12345678",
            "i-\u{1b}2345678",
        ] {
            assert!(bad.parse::<InstanceId>().is_err(), "{bad:?}");
        }
        let e = "i-\u{1b}[2J".parse::<InstanceId>().expect_err("bad");
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
    }

    #[test]
    fn requests_name_their_document() {
        let r = Request::window(&WindowArgs::Close);
        assert_eq!(
            (r.document_output, r.label),
            ("WindowDocumentName", "window close")
        );
        let r = Request::read(&ReadArgs::NatStatus);
        assert_eq!(
            (r.document_output, r.command),
            ("OpsDocumentName", HostCommand::NatStatus)
        );
    }
}
