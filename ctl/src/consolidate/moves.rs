//! One bot's way onto the shared load balancer and back, from whatever layout and record an
//! earlier run left (see the module documentation of [`super`]).

use super::listeners::{self};
use super::record::{self, Direction, Move, Step};
use super::shared_lb::{self, SharedLb};
use super::{Outcome, Run};
use crate::bot::Layout;
use crate::deploy::{exit, Fail};
use crate::names::BotName;
use crate::progress::Mark;
use crate::stack::StackInfo;

/// Where one bot's move starts: its settled stack, the layout it has, the move record an
/// earlier run left, its target group, and when an earlier run released its old listener.
struct Start {
    info: StackInfo,
    layout: Layout,
    rec: Option<Move>,
    tg: String,
    released_before: Option<u64>,
}

impl Run<'_> {
    /// Reads where a move of `bot` (stack `s`) starts from, in either direction.
    async fn start(&self, bot: &BotName, s: &StackInfo) -> Result<Start, Fail> {
        let info = self.settled(s).await?;
        let layout = Layout::from_parameters(&info.parameters)
            .map_err(|e| Fail::new(exit::FAILED, format!("{}: {e}", info.name)))?;
        let rec = record::get(self.aws, bot).await?;
        let tg = info.output("TargetGroupArn")?.to_string();
        let released_before = rec
            .as_ref()
            .filter(|r| r.step == Step::Released)
            .and_then(|r| r.released_at_ms);
        Ok(Start {
            info,
            layout,
            rec,
            tg,
            released_before,
        })
    }

    /// One bot onto the shared load balancer.
    pub(super) async fn forward(
        &self,
        bot: &BotName,
        s: &StackInfo,
        lb: &SharedLb,
        bots: &[StackInfo],
    ) -> Result<Outcome, Fail> {
        let aws = self.aws;
        let Start {
            mut info,
            layout,
            rec,
            tg,
            released_before,
        } = self.start(bot, s).await?;
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
    pub(super) async fn back(&self, bot: &BotName, s: &StackInfo) -> Result<Outcome, Fail> {
        let aws = self.aws;
        let Start {
            mut info,
            layout,
            rec,
            tg,
            released_before,
        } = self.start(bot, s).await?;
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
