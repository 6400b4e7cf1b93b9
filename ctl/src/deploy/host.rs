//! Host replacement: a deploy whose launch template changed (agent release, AMI, instance type)
//! moves the bot to a new host, with its state carried over through the bucket.
//!
//! The group holds one host, so the replacement is terminate-then-launch, in this order, with the
//! failure policy of each step:
//! 1. **Host**: the group's `InService` instance. None: nothing to replace (the next host starts
//!    from the new launch template).
//! 2. **Old task draining**: service to 0, wait until the task has stopped, so nothing writes
//!    the state any more.
//! 3. **State sync**: `clawster-agent state sync --json` on the old host through SSM, the final
//!    consistent generation. Failure (host unreachable, an agent from before state replication,
//!    a failed upload): the host is **not** replaced, the service goes back to what it was, and
//!    deploy fails saying how to retry (`--replace-host`) or to replace anyway
//!    (`--without-final-sync`: the new host restores the newest replica in the bucket; with none,
//!    `init.json` is written so it starts empty, which the operator accepted).
//! 4. **Old host**: TerminateInstanceInAutoScalingGroup without decrementing the desired
//!    capacity, so the group launches a replacement from its current launch template version.
//!    The group's terminate hook (`clawster-final-sync`) holds the old instance until its agent
//!    has taken one more state pass and released the lease (at most 5 minutes), so the new host
//!    never waits on a lease the old one still renews.
//! 5. **New host**: wait until another instance of the group is `InService`.
//!
//! The caller then starts the service and follows it to a healthy target; the downtime runs from
//! step 2 to that point.

use std::time::Duration;

use crate::aws::{Aws, AwsError};
use crate::deploy::service::{self, Rollout, ServiceRef};
use crate::deploy::{exit, Fail};
use crate::names::BotName;
use crate::ops::invocation::Outcome;
use crate::ops::state::{parse_answer, StateArgs, Synced};
use crate::pace::{human, Pace};
use crate::progress::{Mark, Ui};
use crate::ssm::{self, Host, Request};

/// The longest the final sync may take.
const SYNC_LIMIT: Duration = Duration::from_secs(600);

/// What the replacement needs.
#[derive(Debug, Clone)]
pub struct Replace<'a> {
    /// The bot.
    pub bot: &'a BotName,
    /// Its service.
    pub service: &'a ServiceRef,
    /// Its Auto Scaling group.
    pub group: &'a str,
    /// The artifacts bucket (for `init.json` when replacing without a sync and without replica).
    pub bucket: &'a str,
    /// Replace even when the final sync fails.
    pub without_final_sync: bool,
    /// Bound of the run, on its clock.
    pub deadline: Duration,
}

/// A finished replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// The old instance.
    pub old: String,
    /// The new instance.
    pub new: String,
    /// The final sync (none when replaced without it).
    pub synced: Option<Synced>,
    /// When the old task was told to stop (on the run's clock): the downtime starts here.
    pub stopped_at: Duration,
}

/// The group's `InService` instances.
pub async fn in_service(aws: &Aws, group: &str) -> Result<Vec<String>, AwsError> {
    let out = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("DescribeAutoScalingGroups {group}"), e))?;
    let mut ids: Vec<String> = out
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter(|i| i.lifecycle_state().map(|l| l.as_str()) == Some("InService"))
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Steps 1-5 (see the module documentation). `None`: no host was running.
pub async fn replace(aws: &Aws, ui: &Ui, r: &Replace<'_>) -> Result<Option<Replaced>, Fail> {
    let pace = ui.pace().clone();
    let bot = r.bot;
    let label = "host replacement";
    let hosts = in_service(aws, r.group).await?;
    let Some(old) = hosts.first().cloned() else {
        ui.step(
            "host",
            label,
            Mark::Skipped,
            Some("no host is running: the next one starts from the new launch template".into()),
        );
        return Ok(None);
    };
    ui.step(
        "host",
        label,
        Mark::Running,
        Some(format!("{old} runs the old launch template")),
    );

    // 2. Old task draining.
    let mut rollout = Rollout::default();
    let before = rollout.baseline(aws, r.service).await?;
    let stopped_at = pace.elapsed();
    drain(aws, ui, &pace, r, &mut rollout, &before).await?;

    // 3. State sync.
    let synced = match final_sync(aws, ui, &pace, &old, r.deadline).await {
        Ok(s) => Some(s),
        Err(why) if r.without_final_sync => {
            ui.warn(format!(
                "the final state sync on {old} failed ({why}); replacing it anyway (--without-final-sync): the new host restores the newest replica in the bucket"
            ));
            let created = clawster_core::timefmt::fmt_utc(crate::state::time::now());
            let init = crate::state::bucket::ensure_init(aws, r.bucket, bot, &created).await?;
            if init == crate::state::bucket::Init::Written {
                ui.warn(format!(
                    "there is no replica of {bot}: its new host starts on empty state"
                ));
            }
            None
        }
        Err(why) => {
            if before.desired > 0 {
                let _ = service::set_desired(aws, r.service, before.desired).await;
            }
            ui.step("host", label, Mark::Failed, Some("not replaced".into()));
            return Err(Fail::new(
                exit::FAILED,
                format!("the host {old} was not replaced: its final state sync failed ({why})"),
            )
            .next(format!(
                "the bot starts again on its old host (service back at {}); the launch template is updated, so any new host gets it",
                before.desired
            ))
            .next(format!(
                "fix the cause and run `clawsterctl deploy {bot} --replace-host`; or add --without-final-sync to replace it anyway, keeping only the newest replica in the bucket"
            )));
        }
    };

    // 4. Old host.
    ui.step(
        "old-host",
        "old host",
        Mark::Running,
        Some(format!("{old} terminating")),
    );
    aws.autoscaling
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&old)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .map_err(|e| {
            ui.step("old-host", "old host", Mark::Failed, None);
            Fail::from(AwsError::from_sdk(
                &format!("TerminateInstanceInAutoScalingGroup {old}"),
                e,
            ))
            .next(format!(
                "the bot is stopped (service at 0); `clawsterctl deploy {bot} --replace-host` tries again"
            ))
        })?;
    ui.step(
        "old-host",
        "old host",
        Mark::Done,
        Some(format!("{old} terminating")),
    );

    // 5. New host.
    let new = new_host(aws, ui, &pace, r.group, &old, r.deadline).await?;
    ui.step("host", label, Mark::Done, Some(format!("{old} -> {new}")));
    Ok(Some(Replaced {
        old,
        new,
        synced,
        stopped_at,
    }))
}

/// Step 2: the service to 0 and its task stopped (skipped when nothing runs).
async fn drain(
    aws: &Aws,
    ui: &Ui,
    pace: &Pace,
    r: &Replace<'_>,
    rollout: &mut Rollout,
    before: &service::ServiceState,
) -> Result<(), Fail> {
    let label = "old task draining";
    if before.desired == 0 && before.running == 0 && before.pending == 0 {
        ui.step(
            "drain",
            label,
            Mark::Skipped,
            Some("no task running".into()),
        );
        return Ok(());
    }
    let start = pace.elapsed();
    ui.step(
        "drain",
        label,
        Mark::Running,
        Some(format!("{} desired 0", r.service.service)),
    );
    service::set_desired(aws, r.service, 0).await?;
    service::wait_stopped(aws, ui, pace, r.service, rollout, r.deadline)
        .await
        .map_err(|e| {
            ui.step("drain", label, Mark::Failed, None);
            Fail::from(e).next(format!(
                "the service is at 0; `clawsterctl deploy {} --replace-host` tries again",
                r.bot
            ))
        })?;
    ui.step(
        "drain",
        label,
        Mark::Done,
        Some(format!(
            "stopped after {}",
            human(pace.elapsed().saturating_sub(start))
        )),
    );
    Ok(())
}

/// Step 3: the final sync on the old host; why it failed otherwise.
async fn final_sync(
    aws: &Aws,
    ui: &Ui,
    pace: &Pace,
    old: &str,
    deadline: Duration,
) -> Result<Synced, String> {
    let label = "state sync";
    ui.step(
        "sync",
        label,
        Mark::Running,
        Some(format!("final sync on {old}")),
    );
    let host = old
        .parse()
        .map(Host::Instance)
        .map_err(|e: ssm::InstanceIdError| e.to_string())?;
    let left = deadline.saturating_sub(pace.elapsed()).min(SYNC_LIMIT);
    let say = |l: &str| ui.note(l);
    let result = match ssm::run(
        aws,
        pace,
        &host,
        &Request::state(&StateArgs::Sync),
        left,
        &say,
    )
    .await
    {
        Err(f) => Err(f.message),
        Ok(a) if a.verdict.outcome != Outcome::Done => Err(a.verdict.message),
        Ok(a) => parse_answer::<Synced>("state sync", &a.stdout).map_err(|e| e.to_string()),
    };
    match &result {
        Ok(s) => ui.step(
            "sync",
            label,
            Mark::Done,
            Some(format!(
                "generation {} taken at {} ({} bytes uploaded)",
                s.generation,
                crate::ops::clean(&s.taken_at),
                s.bytes
            )),
        ),
        Err(_) => ui.step("sync", label, Mark::Failed, None),
    }
    result
}

/// Step 5: polls the group until an instance other than `old` is `InService`.
async fn new_host(
    aws: &Aws,
    ui: &Ui,
    pace: &Pace,
    group: &str,
    old: &str,
    deadline: Duration,
) -> Result<String, Fail> {
    let label = "new host";
    let start = pace.elapsed();
    ui.step(
        "new-host",
        label,
        Mark::Running,
        Some(format!("waiting for {group}")),
    );
    loop {
        let hosts = in_service(aws, group).await?;
        if let Some(new) = hosts.into_iter().find(|h| h != old) {
            ui.step(
                "new-host",
                label,
                Mark::Done,
                Some(format!(
                    "{new} in service after {}",
                    human(pace.elapsed().saturating_sub(start))
                )),
            );
            return Ok(new);
        }
        if pace.elapsed() >= deadline {
            ui.step("new-host", label, Mark::Failed, None);
            return Err(Fail::new(
                exit::FAILED,
                format!("no new host came into service in {group} in time"),
            ));
        }
        if !pace.sleep(pace.poll).await {
            ui.step("new-host", label, Mark::Failed, Some("interrupted".into()));
            return Err(Fail::new(
                exit::INTERRUPTED,
                format!("interrupted while waiting for a new host in {group}"),
            ));
        }
    }
}
