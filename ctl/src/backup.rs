//! `clawsterctl backup BOT` and `clawsterctl restore BOT --at TIME`: the bot's state replica
//! ([`crate::state`]) on demand, through the agent on the bot's host ([`crate::ops::state`]).
//!
//! `backup` runs `clawster-agent state sync --json` on the host through SSM and prints the
//! generation it wrote and when. Exit codes as `window` and `health`: 0 done, 1 failed on the
//! host, 2 bad usage or the host could not be reached, 130 interrupted.
//!
//! `restore`, in order, with the failure policy of each step:
//! 1. **Local check**: `--at` (RFC3339, or how long ago such as `2h`; not in the future, not
//!    older than the retention). Refused: exit 2 naming it, nothing sent.
//! 2. **Read** the bot stack, its service and its host (the one `InService` instance of its
//!    group). No bot or no host: exit 1 (2 when SSM cannot reach the host), nothing changed.
//! 3. **Refuse** a healthy bot without `--yes`: restoring replaces what it has now. Exit 2,
//!    nothing changed.
//! 4. **Stop**: service to 0, wait until its task has stopped (nothing writes the state any
//!    more; the agent refuses to restore under a running task).
//! 5. **Restore** through SSM: `clawster-agent state restore --at=TIME --json`. Failure: the
//!    service stays at 0 (a bot never starts on state the restore may have left half-done, and
//!    the operator decides), exit 1 with what to run next.
//! 6. **Start**: service to 1, follow it until the target is healthy; print the generation
//!    restored and the downtime (from the stop to healthy).

use std::time::Duration;

use crate::aws::Aws;
use crate::deploy::service::{self, Rollout, ServiceRef};
use crate::deploy::{exit, Fail};
use crate::names::BotName;
use crate::ops::invocation::Outcome;
use crate::ops::state::{parse_answer, Restored, StateArgs, Synced};
use crate::pace::human;
use crate::progress::{Event, Mark, Ui};
use crate::ssm::{self, Answer, Host, Printed, Request};
use crate::state::time::At;
use crate::{bot, stack};

/// `backup`'s rendering: one line with the generation, or the host's JSON with `--json`.
pub fn render_backup(a: &Answer, json: bool) -> Printed {
    let code = a.verdict.exit_code.unwrap_or(exit::USAGE);
    if a.verdict.outcome != Outcome::Done {
        return Printed {
            stdout: String::new(),
            stderr: format!("error: {}\n", a.verdict.message),
            code,
        };
    }
    match parse_answer::<Synced>("state sync", &a.stdout) {
        Ok(s) if json => Printed {
            stdout: format!(
                "{}\n",
                serde_json::json!({ "generation": s.generation, "taken_at": s.taken_at, "bytes": s.bytes, "instance": a.instance })
            ),
            stderr: String::new(),
            code,
        },
        Ok(s) => Printed {
            stdout: format!(
                "state of the bot synced on {}: generation {} taken at {} ({} bytes uploaded)\n",
                a.instance,
                s.generation,
                crate::ops::clean(&s.taken_at),
                s.bytes
            ),
            stderr: String::new(),
            code,
        },
        Err(e) => Printed {
            stdout: String::new(),
            stderr: format!("error: {e}\n"),
            code: exit::FAILED,
        },
    }
}

/// What `restore` was asked.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The bot.
    pub bot: BotName,
    /// Restore the state as of this time.
    pub at: At,
    /// Restore even a healthy bot.
    pub yes: bool,
    /// Bound of the whole run.
    pub timeout: Duration,
}

fn step_fail(ui: &Ui, id: &str, label: &str, f: Fail) -> Fail {
    ui.step(id, label, Mark::Failed, None);
    f
}

/// Runs a restore (see the module documentation for the order and the failure policy).
pub async fn restore(aws: &Aws, ui: &Ui, o: &RestoreOptions) -> Result<String, Fail> {
    let pace = ui.pace().clone();
    let deadline = o.timeout;
    let b = &o.bot;
    let region = &aws.region;
    let at = o.at.wire();

    // 2. Read.
    let name = bot::stack_name(b);
    let Some(s) = stack::describe(aws, &name).await? else {
        return Err(Fail::new(
            exit::FAILED,
            format!("no bot {b} in {region}: stack {name} does not exist"),
        )
        .next(format!(
            "`clawsterctl status --region {region}` lists the bots there"
        )));
    };
    let svc = ServiceRef {
        cluster: s.output("ClusterName")?.to_string(),
        service: s.output("ServiceName")?.to_string(),
        target_group: s.outputs.get("TargetGroupArn").cloned(),
    };
    let mut rollout = Rollout::default();
    let before = rollout.baseline(aws, &svc).await?;
    let instance = ssm::bot_host(aws, b).await?;

    // 3. Refuse a healthy bot without --yes.
    let healthy = before.desired >= 1
        && before.running >= 1
        && (before.healthy_target() || svc.target_group.is_none());
    if healthy && !o.yes {
        return Err(Fail::new(
            exit::USAGE,
            format!(
                "bot {b} is healthy: restoring stops it and replaces its state with the one of {at}; nothing was changed"
            ),
        )
        .next(format!(
            "`clawsterctl backup {b} --region {region}` first keeps what it has now; then `clawsterctl restore {b} --at {at} --yes --region {region}`"
        )));
    }
    ui.emit(Event::Begin {
        title: format!("Restoring bot {b} in {region} to its state as of {at}"),
        eta: None,
    });

    // 4. Stop.
    let stopped_at = pace.elapsed();
    let stop_label = "old task draining";
    if before.desired > 0 || before.running > 0 || before.pending > 0 {
        ui.step(
            "stop",
            stop_label,
            Mark::Running,
            Some(format!("{} desired 0", svc.service)),
        );
        service::set_desired(aws, &svc, 0)
            .await
            .map_err(|e| step_fail(ui, "stop", stop_label, e.into()))?;
        service::wait_stopped(aws, ui, &pace, &svc, &mut rollout, deadline)
            .await
            .map_err(|e| {
                step_fail(ui, "stop", stop_label, Fail::from(e)).next(format!(
                    "the service is at 0; `clawsterctl deploy {b} --region {region}` starts it again"
                ))
            })?;
        ui.step(
            "stop",
            stop_label,
            Mark::Done,
            Some(format!(
                "stopped after {}",
                human(pace.elapsed().saturating_sub(stopped_at))
            )),
        );
    } else {
        ui.step(
            "stop",
            stop_label,
            Mark::Skipped,
            Some("the bot was not running".into()),
        );
    }

    // 5. Restore.
    let label = "state restore";
    ui.step(
        "restore",
        label,
        Mark::Running,
        Some(format!("as of {at} on {instance}")),
    );
    let left = deadline.saturating_sub(pace.elapsed());
    let say = |l: &str| ui.note(l);
    let stays_stopped = |f: Fail| {
        f.next(format!(
            "the bot stays stopped (service at 0), its state on the host as the agent left it; run `clawsterctl restore {b} --at {at} --yes --region {region}` again, or `clawsterctl deploy {b} --region {region}` to start it as it is"
        ))
    };
    let answer = ssm::run(
        aws,
        &pace,
        &Host::Instance(
            instance
                .parse()
                .map_err(|e: ssm::InstanceIdError| Fail::new(exit::FAILED, e.to_string()))?,
        ),
        &Request::state(&StateArgs::Restore(o.at)),
        left,
        &say,
    )
    .await
    .map_err(|f| stays_stopped(step_fail(ui, "restore", label, f)))?;
    if answer.verdict.outcome != Outcome::Done {
        let f = Fail::new(
            answer
                .verdict
                .exit_code
                .unwrap_or(exit::FAILED)
                .max(exit::FAILED),
            format!(
                "the restore failed on {instance}: {}",
                answer.verdict.message
            ),
        );
        return Err(stays_stopped(step_fail(ui, "restore", label, f)));
    }
    let restored: Restored = parse_answer("state restore", &answer.stdout).map_err(|e| {
        stays_stopped(step_fail(
            ui,
            "restore",
            label,
            Fail::new(exit::FAILED, e.to_string()),
        ))
    })?;
    let taken = crate::ops::clean(&restored.taken_at);
    ui.step(
        "restore",
        label,
        Mark::Done,
        Some(format!(
            "generation {} taken at {taken}",
            restored.generation
        )),
    );

    // 6. Start.
    ui.step(
        "start",
        "bot service",
        Mark::Running,
        Some(format!("{} desired 1", svc.service)),
    );
    service::set_desired(aws, &svc, 1)
        .await
        .map_err(|e| step_fail(ui, "start", "bot service", e.into()))?;
    let state = service::wait_healthy(aws, ui, &pace, &svc, &mut rollout, deadline)
        .await
        .map_err(|e| {
            step_fail(ui, "start", "bot service", Fail::from(e)).next(format!(
                "`clawsterctl status {b} --region {region}` shows the service, its events and stopped tasks"
            ))
        })?;
    let down = human(pace.elapsed().saturating_sub(stopped_at));
    ui.step("start", "bot service", Mark::Done, Some(state.summary()));
    Ok(format!(
        "bot {b} runs on its state as of {at} (generation {}, taken at {taken}); it was down for {down}",
        restored.generation
    ))
}
