//! `clawsterctl consolidate --region R [--undo]`: every bot of a region onto the region's shared
//! load balancer, or back onto its own, without restarting any bot's task.
//!
//! A target group belongs to at most one load balancer, so a bot moves in three steps, each
//! recorded so an interrupted run is finished (or, with `--undo`, reverted) by the next:
//! 1. **Prepare** (bot still reachable): the bot stack takes the moving layout, `Joining` (its
//!    entry on the shared load balancer is created, answering 503) or `Returning` (its own load
//!    balancer is created again, answering 503). A port or rule priority another run took in the
//!    meantime fails here, and the next free one is tried (at most three times).
//! 2. **Release** (the downtime starts): the forwarding listener or rule lets go of the target
//!    group through the ELB API; the moment is recorded ([`record`]).
//! 3. **Switch**: the bot stack takes the final layout, in which the other load balancer
//!    forwards (one change of a listener's or rule's action) and the released one is removed.
//!    The downtime ends when the target group reports a healthy target; it is printed per bot.
//!
//! Failure policy: a failed prepare leaves the bot as it was (the update rolled back). A failed
//! switch is reverted at once (the released listener forwards again) and said. Ctrl-C between
//! release and switch, or during the switch, leaves the record: the bot is unreachable until the
//! next `consolidate` finishes the move (or `consolidate --undo` reverts it), and the run says
//! exactly that. Running either again after it finished changes nothing.

pub mod listeners;
mod moves;
pub mod record;
pub mod shared_lb;
mod steps;

use std::time::Duration;

use crate::aws::Aws;
use crate::bot::Layout;
use crate::deploy::{consent, exit, Confirm, Fail};
use crate::names::BotName;
use crate::pace::human;
use crate::progress::{Mark, Ui};
use crate::stack::{self, StackInfo};
pub use shared_lb::{Https, SharedLb};

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Back onto each bot's own load balancer.
    pub undo: bool,
    /// Bots by host name over HTTPS (`--domain` with a wildcard certificate).
    pub https: Option<Https>,
    /// Agree without asking.
    pub yes: bool,
    /// Bound of the whole run.
    pub timeout: Duration,
}

/// How one bot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The bot.
    pub bot: String,
    /// What happened, one phrase.
    pub what: String,
    /// How long it was unreachable, when it moved.
    pub downtime: Option<Duration>,
    /// Where it answers now.
    pub url: Option<String>,
}

/// One run's clients, display and options.
struct Run<'a> {
    aws: &'a Aws,
    ui: &'a Ui,
    opts: &'a Options,
}

fn bot_of(s: &StackInfo) -> Result<BotName, Fail> {
    s.name
        .strip_prefix("clawster-bot-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Fail::new(exit::FAILED, format!("{} is not a bot stack name", s.name)))
}

/// The downtime since `released_at_ms`, on the run's clock.
fn since(ui: &Ui, released_at_ms: u64) -> Duration {
    Duration::from_millis(ui.pace().unix_ms().saturating_sub(released_at_ms))
}

/// Runs consolidate or its undo over every bot of the region; the summary lists each bot.
pub async fn run(aws: &Aws, ui: &Ui, opts: &Options, confirm: Confirm<'_>) -> Result<String, Fail> {
    let region = &aws.region;
    let bots = stack::list(aws, "clawster-bot-").await?;
    if bots.is_empty() {
        return Err(Fail::new(
            exit::FAILED,
            format!("there are no bots in {region}"),
        ));
    }
    let mut moving = Vec::new();
    for b in &bots {
        let layout = Layout::from_parameters(&b.parameters)
            .map_err(|e| Fail::new(exit::FAILED, format!("{}: {e}", b.name)))?;
        let done = if opts.undo {
            layout == Layout::Dedicated
        } else {
            matches!(layout, Layout::Shared(_))
        };
        let pending = record::get(aws, &bot_of(b)?).await?.is_some();
        if !done || pending {
            moving.push(format!("{} ({layout})", bot_of(b)?));
        }
    }
    let (verb, to) = if opts.undo {
        ("consolidate --undo", "back onto its own load balancer")
    } else {
        ("consolidate", "onto the region's shared load balancer")
    };
    if moving.is_empty() {
        return Ok(format!(
            "nothing to do: every bot of {region} is already {}",
            if opts.undo {
                "on its own load balancer"
            } else {
                "on the shared load balancer"
            }
        ));
    }
    let mut question = format!("Move each of these bots of {region} {to}:\n");
    for m in &moving {
        question.push_str(&format!("  - {m}\n"));
    }
    question.push_str(if opts.undo {
        "Each bot gets its own load balancer again (billed per bot) and is unreachable for the seconds of its switch; its task keeps running. Go ahead?"
    } else {
        "Each bot is unreachable for the seconds of its switch (its task keeps running), then its own load balancer is deleted. Go ahead?"
    });
    consent(confirm, opts.yes, &question, verb)?;
    ui.emit(crate::progress::Event::Begin {
        title: format!("Moving {} bot(s) of {region} {to}", moving.len()),
        eta: None,
    });
    let run = Run { aws, ui, opts };
    let lb = if opts.undo {
        None
    } else {
        Some(shared_lb::ensure(aws, ui, region, opts.https.as_ref(), opts.timeout).await?)
    };
    let mut outcomes = Vec::new();
    let mut failed = Vec::new();
    for b in &bots {
        let name = bot_of(b)?;
        let result = match &lb {
            Some(lb) => run.forward(&name, b, lb, &bots).await,
            None => run.back(&name, b).await,
        };
        match result {
            Ok(o) => {
                ui.step(
                    &format!("bot-{name}"),
                    &format!("bot {name}"),
                    if o.downtime.is_some() {
                        Mark::Done
                    } else {
                        Mark::Skipped
                    },
                    Some(
                        describe(&o)
                            .trim_start_matches(&format!("{name}: "))
                            .to_string(),
                    ),
                );
                outcomes.push(o);
            }
            Err(f) if f.code == exit::INTERRUPTED => return Err(f),
            Err(f) => {
                ui.step(
                    &format!("bot-{name}"),
                    &format!("bot {name}"),
                    Mark::Failed,
                    Some(f.message.clone()),
                );
                failed.push(f);
            }
        }
    }
    if let Some(first) = failed.into_iter().next() {
        return Err(first.next(format!(
            "run `clawsterctl {verb} --region {region}` again: bots already moved are left as they are"
        )));
    }
    let moved = outcomes.iter().filter(|o| o.downtime.is_some()).count();
    let mut summary = format!(
        "{moved} bot(s) moved {to}; {}",
        outcomes.iter().map(describe).collect::<Vec<_>>().join("; ")
    );
    if opts.undo {
        if let Some(gone) = remove_unused_shared_lb(aws, ui, opts.timeout).await? {
            summary.push_str(&format!("; {gone}"));
        }
    }
    Ok(summary)
}

/// After `--undo`: the shared load balancer's stack goes once no bot has an entry on it, so the
/// region is back to what it cost before.
async fn remove_unused_shared_lb(
    aws: &Aws,
    ui: &Ui,
    timeout: Duration,
) -> Result<Option<String>, Fail> {
    let name = crate::shared::load_balancer::stack_name(&aws.region);
    let Some(lb) = stack::describe(aws, &name).await? else {
        return Ok(None);
    };
    for b in stack::list(aws, "clawster-bot-").await? {
        if Layout::from_parameters(&b.parameters).map_or(true, |l| l.shared().is_some()) {
            return Ok(None);
        }
    }
    let label = format!("shared load balancer stack {name}");
    ui.step(
        "shared-lb",
        &label,
        Mark::Running,
        Some("delete (no bot uses it)".into()),
    );
    let deadline = ui.pace().elapsed() + timeout;
    crate::deploy::delete_stack(aws, ui, &lb, deadline)
        .await
        .map_err(|e| {
            Fail::from(e).next(format!(
                "{name} could not be deleted; `clawsterctl destroy --shared --region {}` tries again once the bots are gone, or delete it in the CloudFormation console",
                aws.region
            ))
        })?;
    ui.step("shared-lb", &label, Mark::Done, Some("deleted".into()));
    Ok(Some(format!(
        "the shared load balancer {name} is deleted (no bot uses it)"
    )))
}

/// `alpha: moved, unreachable 4.0s, http://…:8001`.
pub fn describe(o: &Outcome) -> String {
    let mut s = format!("{}: {}", o.bot, o.what);
    if let Some(d) = o.downtime {
        s.push_str(&format!(", unreachable {}", human_precise(d)));
    }
    if let Some(u) = &o.url {
        s.push_str(&format!(", {u}"));
    }
    s
}

/// Seconds with one decimal: the downtime is short and its tenths matter.
pub fn human_precise(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        human(d)
    }
}
