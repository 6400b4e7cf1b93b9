//! `clawsterctl status [BOT]`: every bot of a region, or one in detail, read-only.
//!
//! A bot is healthy when its stack is complete, its service wants at least one task and runs
//! them all, its rollout is not failed and its load balancer target is healthy. The exit code is
//! 0 when every bot shown is healthy, 1 otherwise (2 for bad usage, like every command).

use serde_json::{json, Value};

use crate::aws::Aws;
use crate::deploy::service::{Rollout, ServiceRef, ServiceState};
use crate::deploy::{exit, Fail};
use crate::names::BotName;
use crate::shared;
use crate::stack::{self, Health, StackInfo};

/// One bot as status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotStatus {
    /// Bot name.
    pub name: String,
    /// Stack status.
    pub stack_status: String,
    /// Service state, when the stack has a service.
    pub service: Option<ServiceState>,
    /// URL.
    pub url: Option<String>,
    /// The latest failure: a stopped task's reason or a failure event, or why the service could
    /// not be read.
    pub last_failure: Option<String>,
    /// Recent service events (oldest first), detail view only.
    pub events: Vec<String>,
}

impl BotStatus {
    /// See the module documentation.
    pub fn healthy(&self) -> bool {
        stack::health(&self.stack_status) == Health::Ready
            && self.service.as_ref().is_some_and(|s| {
                s.desired >= 1
                    && s.running >= s.desired
                    && s.rollout.as_deref() != Some("FAILED")
                    && (s.targets.is_empty() && s.rollout.is_none() || s.healthy_target())
            })
    }

    fn json(&self) -> Value {
        json!({
            "bot": self.name,
            "healthy": self.healthy(),
            "stack_status": self.stack_status,
            "desired": self.service.as_ref().map(|s| s.desired),
            "running": self.service.as_ref().map(|s| s.running),
            "pending": self.service.as_ref().map(|s| s.pending),
            "rollout": self.service.as_ref().and_then(|s| s.rollout.clone()),
            "targets": self.service.as_ref().map(|s| s.targets.clone()).unwrap_or_default(),
            "url": self.url,
            "last_failure": self.last_failure,
        })
    }
}

/// Reads one bot stack's service and target.
pub async fn read_bot(aws: &Aws, s: &StackInfo, detail: bool) -> BotStatus {
    let name = s
        .name
        .strip_prefix("clawster-bot-")
        .unwrap_or(&s.name)
        .to_string();
    let mut b = BotStatus {
        name,
        stack_status: s.status.clone(),
        service: None,
        url: s.outputs.get("Url").cloned(),
        last_failure: None,
        events: Vec::new(),
    };
    let (Some(cluster), Some(service)) =
        (s.outputs.get("ClusterName"), s.outputs.get("ServiceName"))
    else {
        if stack::health(&s.status) != Health::Ready {
            b.last_failure = s.reason.clone();
        }
        return b;
    };
    let svc = ServiceRef {
        cluster: cluster.clone(),
        service: service.clone(),
        target_group: s.outputs.get("TargetGroupArn").cloned(),
    };
    let mut rollout = Rollout::default();
    match rollout.read(aws, &svc, None).await {
        Ok(state) => {
            b.last_failure = rollout
                .last_stop
                .clone()
                .or_else(|| rollout.last_failure_event.clone())
                .or_else(|| {
                    state
                        .rollout_reason
                        .clone()
                        .filter(|_| state.rollout.as_deref() == Some("FAILED"))
                });
            b.service = Some(state);
        }
        Err(e) => b.last_failure = Some(e.message),
    }
    if detail {
        if let Ok(out) = aws
            .ecs
            .describe_services()
            .cluster(&svc.cluster)
            .services(&svc.service)
            .send()
            .await
        {
            if let Some(s) = out.services().first() {
                let mut ev: Vec<String> = s
                    .events()
                    .iter()
                    .take(8)
                    .filter_map(|e| e.message().map(str::to_string))
                    .collect();
                ev.reverse();
                b.events = ev;
            }
        }
    }
    b
}

/// Renders and decides the exit code: (text, exit code).
pub async fn run(aws: &Aws, bot: Option<&BotName>, json_out: bool) -> Result<(String, u8), Fail> {
    let shared_name = shared::stack_name(&aws.region);
    let shared_stack = stack::describe(aws, &shared_name).await?;
    let stacks = match bot {
        Some(b) => {
            let name = crate::bot::stack_name(b);
            match stack::describe(aws, &name).await? {
                Some(s) => vec![s],
                None => {
                    return Err(Fail::new(
                        exit::FAILED,
                        format!("no bot {b} in {}: stack {name} does not exist", aws.region),
                    )
                    .next(format!(
                        "`clawsterctl status --region {}` lists the bots there",
                        aws.region
                    )))
                }
            }
        }
        None => stack::list(aws, "clawster-bot-").await?,
    };
    let mut bots = Vec::new();
    for s in &stacks {
        bots.push(read_bot(aws, s, bot.is_some()).await);
    }
    let all_ok = bots.iter().all(BotStatus::healthy) && (bot.is_some() || !bots.is_empty());
    let code = if all_ok { exit::OK } else { exit::FAILED };
    if json_out {
        let v = json!({
            "region": aws.region.as_str(),
            "shared": shared_stack.as_ref().map(|s| json!({"stack": s.name, "status": s.status})),
            "bots": bots.iter().map(BotStatus::json).collect::<Vec<_>>(),
            "healthy": all_ok,
        });
        return Ok((format!("{v}\n"), code));
    }
    let mut out = String::new();
    match &shared_stack {
        Some(s) => out.push_str(&format!(
            "region {}: shared stack {} {}\n",
            aws.region, s.name, s.status
        )),
        None => out.push_str(&format!(
            "region {}: no shared stack ({shared_name})\n",
            aws.region
        )),
    }
    if bots.is_empty() {
        out.push_str("no bots: `clawsterctl deploy BOT --region R` makes one\n");
        return Ok((out, code));
    }
    if bot.is_some() {
        for b in &bots {
            out.push_str(&detail(b));
        }
        return Ok((out, code));
    }
    out.push_str(&table(&bots));
    Ok((out, code))
}

fn tasks(b: &BotStatus) -> String {
    b.service
        .as_ref()
        .map(|s| format!("{}/{}", s.running, s.desired))
        .unwrap_or_else(|| "-".into())
}

fn targets(b: &BotStatus) -> String {
    b.service
        .as_ref()
        .filter(|s| !s.targets.is_empty())
        .map(|s| s.targets.join(","))
        .unwrap_or_else(|| "-".into())
}

/// The region table.
pub fn table(bots: &[BotStatus]) -> String {
    let rows: Vec<[String; 6]> = bots
        .iter()
        .map(|b| {
            [
                format!("{} {}", if b.healthy() { "✓" } else { "✗" }, b.name),
                b.stack_status.clone(),
                tasks(b),
                targets(b),
                b.url.clone().unwrap_or_else(|| "-".into()),
                b.last_failure.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let head = ["BOT", "STACK", "TASKS", "TARGET", "URL", "LAST FAILURE"];
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(5) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < 5 {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            } else {
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    out
}

/// One bot in detail.
pub fn detail(b: &BotStatus) -> String {
    let mut out = format!(
        "bot {}: {}\n  stack:    {}\n  tasks:    {}{}\n  rollout:  {}\n  target:   {}\n  url:      {}\n",
        b.name,
        if b.healthy() { "healthy" } else { "not healthy" },
        b.stack_status,
        tasks(b),
        b.service
            .as_ref()
            .filter(|s| s.pending > 0)
            .map(|s| format!(" ({} pending)", s.pending))
            .unwrap_or_default(),
        b.service
            .as_ref()
            .and_then(|s| s.rollout.clone())
            .unwrap_or_else(|| "-".into()),
        targets(b),
        b.url.clone().unwrap_or_else(|| "-".into()),
    );
    if let Some(f) = &b.last_failure {
        out.push_str(&format!("  failure:  {f}\n"));
    }
    if !b.events.is_empty() {
        out.push_str("  recent service events:\n");
        for e in &b.events {
            out.push_str(&format!("    {e}\n"));
        }
    }
    out
}
