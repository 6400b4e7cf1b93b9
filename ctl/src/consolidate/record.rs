//! The step a bot's move has reached, recorded in the SSM parameter
//! `/clawster/<bot>/load-balancer-move` (a String parameter holding JSON, free): which way it
//! goes, the entry on the shared load balancer, whether the load balancer that forwarded has let
//! go of the target group, and when. The stack's `LoadBalancing` parameter says which layout
//! the stack is in; this record adds what the stack cannot show (a listener changed through the
//! API) so a run interrupted halfway is finished or reverted by the next one, and the downtime
//! is still measured from the moment the bot stopped being reachable.

use serde::{Deserialize, Serialize};

use crate::aws::{Aws, AwsError};
use crate::bot::Entry;
use crate::names::BotName;

/// Which way a bot moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Onto the shared load balancer.
    Consolidate,
    /// Back to its own.
    Undo,
}

/// How far the move is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// The entry is allocated; the stack is being put into the moving layout.
    Preparing,
    /// The forwarding load balancer is about to let go (it may have).
    Releasing,
    /// It has let go: the bot is unreachable until the other one forwards.
    Released,
}

/// One bot's move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Which way.
    pub direction: Direction,
    /// The bot's listener port on the shared load balancer, or
    pub port: Option<u16>,
    /// its host name and
    pub host: Option<String>,
    /// rule priority.
    pub priority: Option<u16>,
    /// How far.
    pub step: Step,
    /// When the forwarding load balancer let go (Unix milliseconds).
    pub released_at_ms: Option<u64>,
}

impl Move {
    /// A move of `entry` at `step`.
    pub fn new(direction: Direction, entry: &Entry, step: Step) -> Self {
        let (port, host, priority) = match entry {
            Entry::Port(p) => (Some(*p), None, None),
            Entry::Host { name, priority } => (None, Some(name.clone()), Some(*priority)),
        };
        Self {
            direction,
            port,
            host,
            priority,
            step,
            released_at_ms: None,
        }
    }

    /// The entry recorded.
    pub fn entry(&self) -> Option<Entry> {
        match (self.port, &self.host, self.priority) {
            (Some(p), None, _) => Some(Entry::Port(p)),
            (None, Some(name), Some(priority)) => Some(Entry::Host {
                name: name.clone(),
                priority,
            }),
            _ => None,
        }
    }
}

/// The parameter's name.
pub fn name(bot: &BotName) -> String {
    format!("/clawster/{bot}/load-balancer-move")
}

/// Reads a bot's move; `None` when there is none (or the record is unreadable, which is said).
pub async fn get(aws: &Aws, bot: &BotName) -> Result<Option<Move>, AwsError> {
    let n = name(bot);
    match aws.ssm.get_parameter().name(&n).send().await {
        Ok(out) => {
            let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
            match serde_json::from_str(value) {
                Ok(m) => Ok(Some(m)),
                Err(e) => {
                    tracing::warn!("ignoring the unreadable move record {n}: {e}");
                    Ok(None)
                }
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::from_sdk(&format!("GetParameter {n}"), e)),
    }
}

/// Records a bot's move (replacing what was there).
pub async fn put(aws: &Aws, bot: &BotName, m: &Move) -> Result<(), AwsError> {
    let n = name(bot);
    let value = serde_json::to_string(m).unwrap_or_default();
    aws.ssm
        .put_parameter()
        .name(&n)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .description("clawsterctl consolidate: how far this bot's load-balancer move is")
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("PutParameter {n}"), e))?;
    Ok(())
}

/// Removes a bot's record; harmless when there is none.
pub async fn delete(aws: &Aws, bot: &BotName) -> Result<(), AwsError> {
    let n = name(bot);
    match aws.ssm.delete_parameter().name(&n).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(())
        }
        Err(e) => Err(AwsError::from_sdk(&format!("DeleteParameter {n}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_json() {
        let host = Entry::Host {
            name: "a.example.com".into(),
            priority: 4,
        };
        for e in [Entry::Port(8002), host] {
            let mut m = Move::new(Direction::Undo, &e, Step::Released);
            m.released_at_ms = Some(1_796_205_612_345);
            let text = serde_json::to_string(&m).expect("json");
            assert!(
                text.contains("\"direction\":\"undo\"") && text.contains("\"step\":\"released\""),
                "{text}"
            );
            let back: Move = serde_json::from_str(&text).expect("parse");
            assert_eq!(back, m);
            assert_eq!(back.entry(), Some(e));
        }
    }
}
