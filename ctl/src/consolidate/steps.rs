//! The steps of one bot's move (see the module documentation of [`super`]): waiting for a busy
//! stack, the stack updates between layouts (watching the target's health during a switch), the
//! entries, the release through the ELB API, the switch and the end of a move.

use std::collections::BTreeMap;
use std::time::Duration;

use super::listeners::{self, Forwarder};
use super::record::{self, Direction, Move, Step};
use super::shared_lb::{self, SharedLb};
use super::{human_precise, since, Outcome, Run};
use crate::bot::{self, Entry, Layout};
use crate::deploy::{exit, Fail};
use crate::names::BotName;
use crate::progress::Mark;
use crate::stack::{self, Health, Op, StackError, StackInfo, Watch};

impl Run<'_> {
    pub(super) fn deadline(&self) -> Duration {
        self.opts.timeout
    }

    /// The stack after any operation it is busy with has settled.
    pub(super) async fn settled(&self, s: &StackInfo) -> Result<StackInfo, Fail> {
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
    pub(super) async fn update_layout(
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
    pub(super) async fn update_watching(
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
        // Every parameter the bot's deploy set, carried over as it is: only the layout changes.
        let mut params: BTreeMap<String, String> = [
            "OpenClawConfigSecretArn",
            "SharedStackName",
            bot::IMAGE_PARAMETER,
        ]
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
    pub(super) async fn physical(
        &self,
        info: &StackInfo,
        logical: &str,
    ) -> Result<Option<String>, Fail> {
        Ok(stack::resource_ready(self.aws, &info.id, logical).await?)
    }

    /// The bot's own listener that forwards (HTTPS when it has one).
    pub(super) async fn own_forwarder(&self, info: &StackInfo) -> Result<Forwarder, Fail> {
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
    pub(super) async fn entry_forwarder(
        &self,
        info: &StackInfo,
        entry: &Entry,
    ) -> Result<Forwarder, Fail> {
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
    pub(super) async fn join(
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
    pub(super) fn resumed(&self, bot: &BotName, released_at: Option<u64>) {
        let since = released_at.map_or_else(
            || "an earlier run".to_string(),
            |t| format!("{} ago", human_precise(since(self.ui, t))),
        );
        self.ui.warn(format!(
            "{bot}: an earlier run was stopped during its switch (its old load balancer let go {since}); CloudFormation finished the switch, this run checks and measures it"
        ));
    }

    /// Releases `from` (recording when) unless an earlier run did; returns the moment.
    pub(super) async fn release(
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
    pub(super) async fn switch(
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
    pub(super) async fn finished(
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
}
