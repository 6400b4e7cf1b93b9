//! The bot's ECS service: raise it to one task and follow the rollout until the load balancer's
//! target is healthy, showing ECS's own words on the way (service events, stopped tasks' reasons).

use std::collections::HashSet;

use aws_sdk_ecs::types::DesiredStatus;

use crate::aws::{Aws, AwsError};
use crate::pace::Pace;
use crate::progress::Ui;
use crate::stack::{backoff_or_fail, StackError};

/// Where a service stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceState {
    /// Tasks wanted.
    pub desired: i32,
    /// Tasks running.
    pub running: i32,
    /// Tasks pending.
    pub pending: i32,
    /// The primary deployment's rollout state (`IN_PROGRESS`, `COMPLETED`, `FAILED`).
    pub rollout: Option<String>,
    /// Its reason.
    pub rollout_reason: Option<String>,
    /// The primary deployment's id (a forced deployment makes a new one).
    pub deployment: Option<String>,
    /// Target health states (`healthy`, `initial`, `unhealthy (Target.Timeout)`, ...).
    pub targets: Vec<String>,
}

impl ServiceState {
    /// At least one healthy target.
    pub fn healthy_target(&self) -> bool {
        self.targets.iter().any(|t| t == "healthy")
    }

    /// One line: `1/1 running, rollout COMPLETED, target healthy`.
    pub fn summary(&self) -> String {
        let targets = if self.targets.is_empty() {
            "no target registered yet".to_string()
        } else {
            format!("target {}", self.targets.join(", "))
        };
        format!(
            "{}/{} running{}, rollout {}, {targets}",
            self.running,
            self.desired,
            if self.pending > 0 {
                format!(" ({} pending)", self.pending)
            } else {
                String::new()
            },
            self.rollout.as_deref().unwrap_or("not started")
        )
    }
}

/// Identifies the service.
#[derive(Debug, Clone)]
pub struct ServiceRef {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// Target group ARN (for health), when known.
    pub target_group: Option<String>,
}

/// Sets the desired count.
pub async fn set_desired(aws: &Aws, s: &ServiceRef, count: i32) -> Result<(), AwsError> {
    update(aws, s, count, false).await
}

/// Starts one new deployment of the service at one task, so its task reads the secrets again
/// (ECS resolves them only when a task starts).
pub async fn force_new_deployment(aws: &Aws, s: &ServiceRef) -> Result<(), AwsError> {
    update(aws, s, 1, true).await
}

/// `UpdateService` with a desired count and, with `force`, a new deployment.
async fn update(aws: &Aws, s: &ServiceRef, count: i32, force: bool) -> Result<(), AwsError> {
    let mut call = aws
        .ecs
        .update_service()
        .cluster(&s.cluster)
        .service(&s.service)
        .desired_count(count);
    if force {
        call = call.force_new_deployment(true);
    }
    call.send().await.map_err(|e| {
        let what = if force {
            "new deployment".to_string()
        } else {
            format!("desired {count}")
        };
        AwsError::from_sdk(&format!("UpdateService {} ({what})", s.service), e)
    })?;
    Ok(())
}

/// Follows a service: remembers what it has shown so each event and stopped task appears once.
#[derive(Debug, Default)]
pub struct Rollout {
    seen_events: HashSet<String>,
    seen_tasks: HashSet<String>,
    /// The most recent stopped task's reason.
    pub last_stop: Option<String>,
    /// The most recent failure-like service event.
    pub last_failure_event: Option<String>,
}

/// Words that make a service event worth calling a failure (Copilot's list, widened).
const FAILURE_WORDS: [&str; 8] = [
    "fail",
    "unhealthy",
    "error",
    "unable",
    "throttl",
    "missing",
    "rolling back",
    "stopped",
];

/// True for an event message that reports a problem.
pub fn is_failure_event(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    FAILURE_WORDS.iter().any(|w| m.contains(w))
}

impl Rollout {
    /// Marks everything that exists now as seen, so only what follows is shown; returns where
    /// the service stands before this run touches it.
    pub async fn baseline(&mut self, aws: &Aws, s: &ServiceRef) -> Result<ServiceState, AwsError> {
        self.read(aws, s, None).await
    }

    /// Reads the service once; shows new events and stopped tasks on `ui`.
    pub async fn read(
        &mut self,
        aws: &Aws,
        s: &ServiceRef,
        ui: Option<&Ui>,
    ) -> Result<ServiceState, AwsError> {
        let out = aws
            .ecs
            .describe_services()
            .cluster(&s.cluster)
            .services(&s.service)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("DescribeServices {}", s.service), e))?;
        let Some(svc) = out.services().first() else {
            let why = out
                .failures()
                .first()
                .and_then(|f| f.reason())
                .unwrap_or("not found");
            return Err(AwsError::new(
                crate::aws::ErrorKind::NotFound,
                format!("ECS service {} in cluster {}: {why}", s.service, s.cluster),
            ));
        };
        let mut state = ServiceState {
            desired: svc.desired_count(),
            running: svc.running_count(),
            pending: svc.pending_count(),
            ..ServiceState::default()
        };
        if let Some(d) = svc
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
        {
            state.rollout = d.rollout_state().map(|r| r.as_str().to_string());
            state.rollout_reason = d.rollout_state_reason().map(str::to_string);
            state.deployment = d.id().map(str::to_string);
        }
        // Events come newest first; show them oldest first.
        let mut fresh: Vec<&str> = Vec::new();
        for e in svc.events() {
            let id = e.id().unwrap_or_default().to_string();
            if self.seen_events.insert(id) {
                fresh.push(e.message().unwrap_or_default());
            }
        }
        fresh.reverse();
        for m in fresh {
            if is_failure_event(m) {
                self.last_failure_event = Some(m.to_string());
            }
            if let Some(ui) = ui {
                ui.note(m);
            }
        }
        self.stopped_tasks(aws, s, ui).await?;
        if let Some(tg) = &s.target_group {
            let th = aws
                .elb
                .describe_target_health()
                .target_group_arn(tg)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DescribeTargetHealth", e))?;
            state.targets = th
                .target_health_descriptions()
                .iter()
                .filter_map(|d| d.target_health())
                .map(|h| {
                    let st = h.state().map(|s| s.as_str()).unwrap_or("unknown");
                    match h.reason() {
                        Some(r) if st != "healthy" => format!("{st} ({})", r.as_str()),
                        _ => st.to_string(),
                    }
                })
                .collect();
        }
        Ok(state)
    }

    async fn stopped_tasks(
        &mut self,
        aws: &Aws,
        s: &ServiceRef,
        ui: Option<&Ui>,
    ) -> Result<(), AwsError> {
        let list = aws
            .ecs
            .list_tasks()
            .cluster(&s.cluster)
            .service_name(&s.service)
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("ListTasks {} (stopped)", s.service), e))?;
        let new: Vec<String> = list
            .task_arns()
            .iter()
            .filter(|a| !self.seen_tasks.contains(*a))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let tasks = aws
            .ecs
            .describe_tasks()
            .cluster(&s.cluster)
            .set_tasks(Some(new.clone()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeTasks", e))?;
        self.seen_tasks.extend(new);
        for t in tasks.tasks() {
            let id = t
                .task_arn()
                .and_then(|a| a.rsplit('/').next())
                .unwrap_or("?");
            let short = &id[..id.len().min(8)];
            let mut why = t.stopped_reason().unwrap_or("no reason given").to_string();
            for c in t.containers() {
                if let Some(r) = c.reason() {
                    why.push_str(&format!("; container {}: {r}", c.name().unwrap_or("?")));
                } else if let Some(code) = c.exit_code() {
                    if code != 0 {
                        why.push_str(&format!(
                            "; container {} exited with {code}",
                            c.name().unwrap_or("?")
                        ));
                    }
                }
            }
            let line = format!("task {short} stopped: {why}");
            self.last_stop = Some(why);
            if let Some(ui) = ui {
                ui.warn(line);
            }
        }
        Ok(())
    }
}

/// One read of the service, retried with backoff while AWS throttles (and failing as
/// [`backoff_or_fail`] decides).
async fn read_patiently(
    aws: &Aws,
    ui: &Ui,
    pace: &Pace,
    s: &ServiceRef,
    rollout: &mut Rollout,
) -> Result<ServiceState, StackError> {
    let mut throttled = 0;
    loop {
        match rollout.read(aws, s, Some(ui)).await {
            Ok(st) => return Ok(st),
            Err(e) => backoff_or_fail(pace, e, &mut throttled).await?,
        }
    }
}

/// Polls until the rollout completes with a healthy target; fails when ECS gives up (circuit
/// breaker) or the deadline passes.
pub async fn wait_healthy(
    aws: &Aws,
    ui: &Ui,
    pace: &Pace,
    s: &ServiceRef,
    rollout: &mut Rollout,
    deadline: std::time::Duration,
) -> Result<ServiceState, StackError> {
    let mut last_summary = String::new();
    loop {
        let state = read_patiently(aws, ui, pace, s, rollout).await?;
        let summary = state.summary();
        if summary != last_summary {
            ui.note(format!("service: {summary}"));
            last_summary = summary;
        }
        if state.rollout.as_deref() == Some("FAILED") {
            return Err(StackError::Other(format!(
                "ECS gave up starting the bot: {}{}",
                state
                    .rollout_reason
                    .as_deref()
                    .unwrap_or("the deployment failed"),
                rollout
                    .last_stop
                    .as_deref()
                    .map(|r| format!("; last stopped task: {r}"))
                    .unwrap_or_default()
            )));
        }
        let rolled = matches!(state.rollout.as_deref(), None | Some("COMPLETED"));
        if rolled && state.running >= 1 && state.healthy_target() {
            return Ok(state);
        }
        if pace.elapsed() >= deadline {
            let cause = rollout
                .last_stop
                .as_deref()
                .map(|r| format!("; last stopped task: {r}"))
                .or_else(|| {
                    rollout
                        .last_failure_event
                        .as_deref()
                        .map(|e| format!("; last service event: {e}"))
                })
                .unwrap_or_default();
            return Err(StackError::Other(format!(
                "the bot did not become healthy in time ({}){cause}",
                state.summary()
            )));
        }
        if !pace.sleep(pace.poll).await {
            return Err(StackError::Interrupted("the service rollout".into()));
        }
    }
}

/// Polls until the service runs and starts no task (after `desired 0`): the old task has
/// drained and stopped, so nothing writes the bot's state any more.
pub async fn wait_stopped(
    aws: &Aws,
    ui: &Ui,
    pace: &Pace,
    s: &ServiceRef,
    rollout: &mut Rollout,
    deadline: std::time::Duration,
) -> Result<ServiceState, StackError> {
    loop {
        let state = read_patiently(aws, ui, pace, s, rollout).await?;
        if state.running == 0 && state.pending == 0 {
            return Ok(state);
        }
        if pace.elapsed() >= deadline {
            return Err(StackError::Other(format!(
                "the bot's task did not stop in time ({})",
                state.summary()
            )));
        }
        if !pace.sleep(pace.poll).await {
            return Err(StackError::Interrupted("stopping the bot's task".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_events_are_recognised() {
        assert!(is_failure_event(
            "(service x) (task abc) failed container health checks."
        ));
        assert!(is_failure_event(
            "(service x) was unable to place a task because no container instance met all of its requirements."
        ));
        assert!(!is_failure_event("(service x) has reached a steady state."));
    }

    #[test]
    fn summary_reads_well() {
        let s = ServiceState {
            desired: 1,
            running: 0,
            pending: 1,
            rollout: Some("IN_PROGRESS".into()),
            rollout_reason: None,
            deployment: None,
            targets: vec!["initial (Elb.RegistrationInProgress)".into()],
        };
        assert_eq!(
            s.summary(),
            "0/1 running (1 pending), rollout IN_PROGRESS, target initial (Elb.RegistrationInProgress)"
        );
        assert!(!s.healthy_target());
    }
}
