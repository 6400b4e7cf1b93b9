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
pub mod record;
pub mod shared_lb;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::aws::Aws;
use crate::bot::{self, Entry, Layout};
use crate::deploy::{consent, exit, Confirm, Fail};
use crate::names::BotName;
use crate::pace::human;
use crate::progress::{Mark, Ui};
use crate::stack::{self, Health, Op, StackError, StackInfo, Watch};
use listeners::Forwarder;
use record::{Direction, Move, Step};
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
    Ok(format!(
        "{moved} bot(s) moved {to}; {}",
        outcomes.iter().map(describe).collect::<Vec<_>>().join("; ")
    ))
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

impl Run<'_> {
    fn deadline(&self) -> Duration {
        self.opts.timeout
    }

    /// The stack after any operation it is busy with has settled.
    async fn settled(&self, s: &StackInfo) -> Result<StackInfo, Fail> {
        if stack::health(&s.status) != Health::Busy {
            return Ok(s.clone());
        }
        self.ui
            .note(format!("{} is {}: waiting for it", s.name, s.status));
        let stop = stack::newest_event(self.aws, &s.id).await?;
        let op = if s.status.starts_with("UPDATE") {
            Op::Update
        } else {
            Op::Create
        };
        match Watch::new(&s.name, &s.id, op, stop)
            .wait(self.aws, self.ui, self.ui.pace(), self.deadline())
            .await
        {
            Ok(i) => Ok(i),
            Err(StackError::Failed(_)) => Ok(stack::describe(self.aws, &s.id)
                .await?
                .ok_or_else(|| Fail::new(exit::FAILED, format!("{} is gone", s.name)))?),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts the bot stack into `layout` (only its load-balancing part changes).
    async fn update_layout(
        &self,
        info: &StackInfo,
        bot: &BotName,
        layout: &Layout,
    ) -> Result<StackInfo, StackError> {
        self.update_watching(info, bot, layout, None)
            .await
            .map(|(i, _)| i)
    }

    /// [`Run::update_layout`], and with `target_group` the moment (Unix milliseconds) a healthy
    /// target is first seen while the update runs: the new load balancer forwards long before
    /// CloudFormation has deleted the old one and reports the update complete.
    async fn update_watching(
        &self,
        info: &StackInfo,
        bot: &BotName,
        layout: &Layout,
        target_group: Option<&str>,
    ) -> Result<(StackInfo, Option<u64>), StackError> {
        let aws = self.aws;
        let stored = stack::template_of(aws, info).await?.ok_or_else(|| {
            StackError::Other(format!("cannot read the template of {}", info.name))
        })?;
        let t = bot::relayout(&stored, bot, &aws.region, layout).map_err(StackError::Other)?;
        let mut params: BTreeMap<String, String> = ["OpenClawConfigSecretArn", "SharedStackName"]
            .iter()
            .filter_map(|k| Some((k.to_string(), info.parameters.get(*k)?.clone())))
            .collect();
        params.extend(layout.parameters());
        let pace = self.ui.pace();
        let stop = stack::newest_event(aws, &info.id).await?;
        if !stack::update(aws, info, &t, &params).await? {
            return Ok((info.clone(), None));
        }
        let mut w = Watch::new(&info.name, &info.id, Op::Update, stop);
        let mut healthy_at = None;
        loop {
            let done = w.poll(aws, self.ui, pace).await?;
            if let (None, Some(tg)) = (healthy_at, target_group) {
                if listeners::healthy_now(aws, tg).await? {
                    healthy_at = Some(pace.unix_ms());
                }
            }
            if let Some(info) = done {
                return Ok((info, healthy_at));
            }
            if pace.elapsed() >= self.deadline() {
                return Err(w.timeout(pace));
            }
            if !pace.sleep(pace.poll).await {
                return Err(StackError::Interrupted(info.name.clone()));
            }
        }
    }

    /// A logical resource's physical id, or the failure naming it.
    async fn physical(&self, info: &StackInfo, logical: &str) -> Result<Option<String>, Fail> {
        Ok(stack::resource_ready(self.aws, &info.id, logical).await?)
    }

    /// The bot's own listener that forwards (HTTPS when it has one).
    async fn own_forwarder(&self, info: &StackInfo) -> Result<Forwarder, Fail> {
        for id in ["HttpsListener", "HttpListener"] {
            if let Some(arn) = self.physical(info, id).await? {
                return Ok(Forwarder::Listener(arn));
            }
        }
        Err(Fail::new(
            exit::FAILED,
            format!("{} has no listener of its own load balancer", info.name),
        ))
    }

    /// The bot's entry on the shared load balancer.
    async fn entry_forwarder(&self, info: &StackInfo, entry: &Entry) -> Result<Forwarder, Fail> {
        let (id, wrap): (&str, fn(String) -> Forwarder) = match entry {
            Entry::Port(_) => ("SharedListener", Forwarder::Listener),
            Entry::Host { .. } => ("SharedRule", Forwarder::Rule),
        };
        self.physical(info, id)
            .await?
            .map(wrap)
            .ok_or_else(|| Fail::new(exit::FAILED, format!("{} has no {id}", info.name)))
    }

    /// Step 1 toward the shared load balancer: the `Joining` layout, retrying a taken entry.
    async fn join(
        &self,
        bot: &BotName,
        mut info: StackInfo,
        mut entry: Entry,
        lb: &SharedLb,
        bots: &[StackInfo],
    ) -> Result<(StackInfo, Entry), Fail> {
        let mut avoid = Vec::new();
        for attempt in 0..3 {
            record::put(
                self.aws,
                bot,
                &Move::new(Direction::Consolidate, &entry, Step::Preparing),
            )
            .await?;
            self.ui.step(
                &format!("bot-{bot}"),
                &format!("bot {bot}"),
                Mark::Running,
                Some(format!(
                    "preparing its entry on the shared load balancer ({entry})"
                )),
            );
            match self
                .update_layout(&info, bot, &Layout::Joining(entry.clone()))
                .await
            {
                Ok(i) => return Ok((i, entry)),
                Err(StackError::Failed(f)) if shared_lb::taken_reason(&f) && attempt < 2 => {
                    avoid.push(shared_lb::entry_value(&entry));
                    let next = shared_lb::allocate(self.aws, lb, bot, bots, &avoid).await?;
                    self.ui.note(format!(
                        "{bot}: {entry} was taken meanwhile ({f}); trying {next}"
                    ));
                    entry = next;
                    info = stack::describe(self.aws, &info.id)
                        .await?
                        .ok_or_else(|| Fail::new(exit::FAILED, format!("{} is gone", info.name)))?;
                }
                Err(e) => {
                    record::delete(self.aws, bot).await?;
                    return Err(Fail::from(e).next(format!(
                        "{bot} is still on its own load balancer, reachable as before"
                    )));
                }
            }
        }
        Err(Fail::new(
            exit::FAILED,
            format!("{bot}: three entries in a row were taken on the shared load balancer"),
        ))
    }

    /// Says that an earlier run left the bot mid-move and this one finishes it.
    fn resumed(&self, bot: &BotName, released_at: Option<u64>) {
        let since = released_at.map_or_else(
            || "an earlier run".to_string(),
            |t| format!("{} ago", human_precise(since(self.ui, t))),
        );
        self.ui.warn(format!(
            "{bot}: an earlier run was stopped during its switch (its old load balancer let go {since}); CloudFormation finished the switch, this run checks and measures it"
        ));
    }

    /// Releases `from` (recording when) unless an earlier run did; returns the moment.
    async fn release(
        &self,
        bot: &BotName,
        rec: Option<&Move>,
        direction: Direction,
        entry: &Entry,
        from: &Forwarder,
    ) -> Result<u64, Fail> {
        if let Some(r) = rec.filter(|r| r.direction == direction && r.step == Step::Released) {
            let at = r.released_at_ms.unwrap_or_else(|| self.ui.pace().unix_ms());
            self.ui.warn(format!(
                "{bot} has been unreachable for {}: an earlier run let go of it and stopped before the switch; finishing the move",
                human_precise(since(self.ui, at))
            ));
            return Ok(at);
        }
        record::put(self.aws, bot, &Move::new(direction, entry, Step::Releasing)).await?;
        listeners::release(self.aws, from).await?;
        let at = self.ui.pace().unix_ms();
        let mut m = Move::new(direction, entry, Step::Released);
        m.released_at_ms = Some(at);
        record::put(self.aws, bot, &m).await?;
        Ok(at)
    }

    /// Step 3: the switch to `layout`; a failure reverts the release, Ctrl-C says what is left.
    async fn switch(
        &self,
        bot: &BotName,
        info: &StackInfo,
        layout: &Layout,
        released: &Forwarder,
        tg: &str,
    ) -> Result<(StackInfo, Option<u64>), Fail> {
        let region = &self.aws.region;
        self.ui.step(
            &format!("bot-{bot}"),
            &format!("bot {bot}"),
            Mark::Running,
            Some(format!("switching to {layout}")),
        );
        match self.update_watching(info, bot, layout, Some(tg)).await {
            Ok(done) => Ok(done),
            Err(StackError::Interrupted(_)) => Err(Fail::new(
                exit::INTERRUPTED,
                format!("interrupted: {bot} is unreachable (one load balancer let go of it, the switch to {layout} did not finish)"),
            )
            .next(format!("`clawsterctl consolidate --region {region}` finishes the move; `clawsterctl consolidate --undo --region {region}` reverts it"))),
            Err(e) => {
                listeners::restore(self.aws, released, tg).await?;
                record::delete(self.aws, bot).await?;
                Err(Fail::from(e).next(format!("{bot} is reachable again where it was (the released listener forwards again)")))
            }
        }
    }

    /// The end of a move: the target is healthy behind the new load balancer; the record goes.
    async fn finished(
        &self,
        bot: &BotName,
        info: &StackInfo,
        released_at: Option<u64>,
        healthy_at: Option<u64>,
        what: &str,
    ) -> Result<Outcome, Fail> {
        let tg = info.output("TargetGroupArn")?.to_string();
        let states = listeners::wait_healthy(self.aws, self.ui.pace(), &tg, self.deadline())
            .await
            .map_err(|e| Fail::from(e).next(format!("`clawsterctl status {bot}` shows the bot")))?;
        let end = healthy_at.unwrap_or_else(|| self.ui.pace().unix_ms());
        let downtime = released_at.map(|t| Duration::from_millis(end.saturating_sub(t)));
        record::delete(self.aws, bot).await?;
        Ok(Outcome {
            bot: bot.to_string(),
            what: format!("{what} (target {})", states.join(", ")),
            downtime,
            url: info.outputs.get("Url").cloned(),
        })
    }

    /// One bot onto the shared load balancer.
    async fn forward(
        &self,
        bot: &BotName,
        s: &StackInfo,
        lb: &SharedLb,
        bots: &[StackInfo],
    ) -> Result<Outcome, Fail> {
        let aws = self.aws;
        let mut info = self.settled(s).await?;
        let layout = Layout::from_parameters(&info.parameters)
            .map_err(|e| Fail::new(exit::FAILED, format!("{}: {e}", info.name)))?;
        let rec = record::get(aws, bot).await?;
        let tg = info.output("TargetGroupArn")?.to_string();
        let released_before = rec
            .as_ref()
            .filter(|r| r.step == Step::Released)
            .and_then(|r| r.released_at_ms);
        let entry = match layout {
            Layout::Shared(e) => {
                if rec.is_some() {
                    // A switch that an earlier run started and CloudFormation finished.
                    self.resumed(bot, released_before);
                    return self
                        .finished(
                            bot,
                            &info,
                            released_before,
                            None,
                            &format!("moved to the shared load balancer, {e}"),
                        )
                        .await;
                }
                return Ok(Outcome {
                    bot: bot.to_string(),
                    what: format!("already on the shared load balancer, {e}"),
                    downtime: None,
                    url: info.outputs.get("Url").cloned(),
                });
            }
            Layout::Returning(e) => {
                // An undo stopped halfway: the shared entry forwards again, the own ALB goes.
                let f = self.entry_forwarder(&info, &e).await?;
                if !listeners::forwards(aws, &f, &tg).await? {
                    listeners::restore(aws, &f, &tg).await?;
                }
                let info = self
                    .update_layout(&info, bot, &Layout::Shared(e.clone()))
                    .await?;
                return self
                    .finished(
                        bot,
                        &info,
                        released_before,
                        None,
                        &format!(
                            "back on the shared load balancer, {e} (an interrupted undo reverted)"
                        ),
                    )
                    .await;
            }
            Layout::Dedicated => {
                let entry = match rec
                    .as_ref()
                    .filter(|r| r.direction == Direction::Consolidate)
                    .and_then(Move::entry)
                {
                    Some(e) => e,
                    None => shared_lb::allocate(aws, lb, bot, bots, &[]).await?,
                };
                let (i, e) = self.join(bot, info, entry, lb, bots).await?;
                info = i;
                e
            }
            Layout::Joining(e) => e,
        };
        let own = self.own_forwarder(&info).await?;
        let rec = record::get(aws, bot).await?;
        let at = self
            .release(bot, rec.as_ref(), Direction::Consolidate, &entry, &own)
            .await?;
        let (info, healthy_at) = self
            .switch(bot, &info, &Layout::Shared(entry.clone()), &own, &tg)
            .await?;
        self.finished(
            bot,
            &info,
            Some(at),
            healthy_at,
            &format!("moved to the shared load balancer, {entry}"),
        )
        .await
    }

    /// One bot back onto its own load balancer.
    async fn back(&self, bot: &BotName, s: &StackInfo) -> Result<Outcome, Fail> {
        let aws = self.aws;
        let mut info = self.settled(s).await?;
        let layout = Layout::from_parameters(&info.parameters)
            .map_err(|e| Fail::new(exit::FAILED, format!("{}: {e}", info.name)))?;
        let rec = record::get(aws, bot).await?;
        let tg = info.output("TargetGroupArn")?.to_string();
        let released_before = rec
            .as_ref()
            .filter(|r| r.step == Step::Released)
            .and_then(|r| r.released_at_ms);
        let entry = match layout {
            Layout::Dedicated => {
                if rec.is_some() {
                    self.resumed(bot, released_before);
                    return self
                        .finished(
                            bot,
                            &info,
                            released_before,
                            None,
                            "back on its own load balancer",
                        )
                        .await;
                }
                return Ok(Outcome {
                    bot: bot.to_string(),
                    what: "already on its own load balancer".into(),
                    downtime: None,
                    url: info.outputs.get("Url").cloned(),
                });
            }
            Layout::Joining(_) => {
                // A consolidate stopped halfway: its own listener forwards again, the entry goes.
                let own = self.own_forwarder(&info).await?;
                if !listeners::forwards(aws, &own, &tg).await? {
                    listeners::restore(aws, &own, &tg).await?;
                }
                let info = self.update_layout(&info, bot, &Layout::Dedicated).await?;
                return self
                    .finished(
                        bot,
                        &info,
                        released_before,
                        None,
                        "back on its own load balancer (an interrupted consolidate reverted)",
                    )
                    .await;
            }
            Layout::Shared(e) => {
                record::put(aws, bot, &Move::new(Direction::Undo, &e, Step::Preparing)).await?;
                self.ui.step(
                    &format!("bot-{bot}"),
                    &format!("bot {bot}"),
                    Mark::Running,
                    Some(
                        "creating its own load balancer again (the shared one still forwards)"
                            .into(),
                    ),
                );
                info = self
                    .update_layout(&info, bot, &Layout::Returning(e.clone()))
                    .await
                    .map_err(|e| {
                        Fail::from(e).next(format!(
                            "{bot} is still on the shared load balancer, reachable as before"
                        ))
                    })?;
                e
            }
            Layout::Returning(e) => e,
        };
        let f = self.entry_forwarder(&info, &entry).await?;
        let rec = record::get(aws, bot).await?;
        let at = self
            .release(bot, rec.as_ref(), Direction::Undo, &entry, &f)
            .await?;
        let (info, healthy_at) = self.switch(bot, &info, &Layout::Dedicated, &f, &tg).await?;
        self.finished(
            bot,
            &info,
            Some(at),
            healthy_at,
            "back on its own load balancer",
        )
        .await
    }
}
