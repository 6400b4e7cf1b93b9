//! `clawsterctl status [BOT]`: every bot of a region, or one in detail, read-only.
//!
//! A bot is healthy when its stack is complete, its service wants at least one task and runs
//! them all, its rollout is not failed and its load balancer target is healthy. The exit code is
//! 0 when every bot shown is healthy, 1 otherwise (2 for bad usage, like every command).
//!
//! Each bot also shows the last successful sync of its state replica and its age: `taken_at` of
//! `state/<bot>/manifest.json` in the shared artifacts bucket (one GetObject), "never" when there
//! is none, "(no access)" when the caller may not read it. It does not change the exit code.

use serde_json::{json, Value};

use crate::aws::Aws;
use crate::deploy::service::{Rollout, ServiceRef, ServiceState};
use crate::deploy::{exit, Fail};
use crate::names::BotName;
use crate::shared;
use crate::stack::{self, Health, StackInfo};
use crate::state::bucket::{last_sync, LastSync};

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
    /// The last successful sync of the bot's state (`None`: no bucket to read it from).
    pub last_sync: Option<LastSync>,
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

    fn json(&self, now: i64) -> Value {
        let sync = match &self.last_sync {
            None => Value::Null,
            Some(LastSync::Never) => json!("never"),
            Some(LastSync::NoAccess) => json!("no access"),
            Some(LastSync::At {
                generation,
                taken_at,
                unix,
            }) => {
                json!({ "taken_at": taken_at, "age_seconds": now - unix, "generation": generation })
            }
            Some(LastSync::Unreadable(why)) => json!({ "unreadable": why }),
        };
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
            "last_sync": sync,
        })
    }
}

/// Reads one bot stack's service and target, and (with the artifacts bucket) its last sync.
pub async fn read_bot(aws: &Aws, s: &StackInfo, detail: bool, bucket: Option<&str>) -> BotStatus {
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
        last_sync: None,
    };
    if let (Some(bucket), Ok(bot)) = (bucket, b.name.parse::<BotName>()) {
        b.last_sync = Some(last_sync(aws, bucket, &bot).await);
    }
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
    let bucket = shared_stack
        .as_ref()
        .and_then(|s| s.outputs.get("ArtifactsBucketName").cloned());
    let mut bots = Vec::new();
    for s in &stacks {
        bots.push(read_bot(aws, s, bot.is_some(), bucket.as_deref()).await);
    }
    let now = crate::state::time::now();
    let all_ok = bots.iter().all(BotStatus::healthy) && (bot.is_some() || !bots.is_empty());
    let code = if all_ok { exit::OK } else { exit::FAILED };
    if json_out {
        let v = json!({
            "region": aws.region.as_str(),
            "shared": shared_stack.as_ref().map(|s| json!({"stack": s.name, "status": s.status})),
            "bots": bots.iter().map(|b| b.json(now)).collect::<Vec<_>>(),
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
            out.push_str(&detail(b, now));
        }
        return Ok((out, code));
    }
    out.push_str(&table(&bots, now));
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

fn sync_cell(b: &BotStatus, now: i64) -> String {
    b.last_sync
        .as_ref()
        .map_or_else(|| "-".into(), |s| s.show(now))
}

/// The region table (`now`: seconds since the epoch, for the sync's age).
pub fn table(bots: &[BotStatus], now: i64) -> String {
    const N: usize = 7;
    let rows: Vec<[String; N]> = bots
        .iter()
        .map(|b| {
            [
                format!("{} {}", if b.healthy() { "✓" } else { "✗" }, b.name),
                b.stack_status.clone(),
                tasks(b),
                targets(b),
                sync_cell(b, now),
                b.url.clone().unwrap_or_else(|| "-".into()),
                b.last_failure.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let head = [
        "BOT",
        "STACK",
        "TASKS",
        "TARGET",
        "LAST SYNC",
        "URL",
        "LAST FAILURE",
    ];
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(N - 1) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < N - 1 {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            } else {
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for r in &rows {
        out.push_str(&line(std::array::from_fn(|i| r[i].as_str())));
    }
    out
}

/// One bot in detail.
pub fn detail(b: &BotStatus, now: i64) -> String {
    let sync = match &b.last_sync {
        Some(LastSync::At { generation, .. }) => {
            format!("{}, generation {generation}", sync_cell(b, now))
        }
        Some(LastSync::Unreadable(why)) => format!("(unreadable: {why})"),
        _ => sync_cell(b, now),
    };
    let mut out = format!(
        "bot {}: {}\n  stack:    {}\n  tasks:    {}{}\n  rollout:  {}\n  target:   {}\n  synced:   {sync}\n  url:      {}\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(name: &str, sync: Option<LastSync>) -> BotStatus {
        BotStatus {
            name: name.into(),
            stack_status: "CREATE_COMPLETE".into(),
            service: Some(ServiceState {
                desired: 1,
                running: 1,
                targets: vec!["healthy".into()],
                ..ServiceState::default()
            }),
            url: Some(format!("http://{name}.example")),
            last_failure: None,
            events: Vec::new(),
            last_sync: sync,
        }
    }

    #[test]
    fn the_last_sync_is_shown_with_its_age() {
        let now = 1_796_644_770; // 2026-12-07T11:59:30Z
        let bots = [
            bot(
                "alpha",
                Some(LastSync::At {
                    generation: 9,
                    taken_at: "2026-12-07T11:56:30Z".into(),
                    unix: now - 180,
                }),
            ),
            bot("beta", Some(LastSync::Never)),
            bot("gamma", Some(LastSync::NoAccess)),
            bot("delta", None),
        ];
        let t = table(&bots, now);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("TARGET   LAST SYNC"), "{t}");
        assert!(lines[1].contains("2026-12-07T11:56:30Z (3m ago)"), "{t}");
        assert!(lines[2].contains("  never  "), "{t}");
        assert!(lines[3].contains("  (no access)  "), "{t}");
        // Columns line up: the URL starts at the same place on every row.
        let at: Vec<usize> = lines[1..]
            .iter()
            .map(|l| l.find("http://").unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] == w[1]), "{t}");
        let d = detail(&bots[0], now);
        assert!(
            d.contains("  synced:   2026-12-07T11:56:30Z (3m ago), generation 9\n"),
            "{d}"
        );
        let j = bots[0].json(now);
        assert_eq!(j["last_sync"]["age_seconds"], 180);
        assert_eq!(j["last_sync"]["generation"], 9);
        assert_eq!(bots[1].json(now)["last_sync"], "never");
        assert_eq!(bots[2].json(now)["last_sync"], "no access");
        assert!(bots[3].json(now)["last_sync"].is_null());
        let u = bot("eps", Some(LastSync::Unreadable("not a manifest".into())));
        assert!(detail(&u, now).contains("(unreadable: not a manifest)"));
    }
}
