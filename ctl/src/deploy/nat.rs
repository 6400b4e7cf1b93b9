//! NAT readiness: the private route table's default route is active and points at the shared
//! stack's NAT instance, which is running.
//!
//! The bot's service is created with DesiredCount 0 and raised only after this check (seed 002
//! §2): a task scheduled before the route works cannot pull its image, and a first deployment
//! has no earlier version for the circuit breaker to roll back to.

use std::time::Duration;

use crate::aws::{Aws, AwsError};
use crate::pace::{human, Pace};
use crate::stack::{backoff_or_fail, StackError};

/// What the route and the instance look like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatCheck {
    /// True when traffic can leave through the NAT instance.
    pub ready: bool,
    /// What was seen, for the progress line (`route 0.0.0.0/0 -> i-0abc active, instance running`).
    pub seen: String,
}

/// Reads the route table and the instance once.
pub async fn check(aws: &Aws, route_table: &str, nat_instance: &str) -> Result<NatCheck, AwsError> {
    let rt = aws
        .ec2
        .describe_route_tables()
        .route_table_ids(route_table)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("DescribeRouteTables {route_table}"), e))?;
    let route = rt
        .route_tables()
        .first()
        .and_then(|t| {
            t.routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        })
        .cloned();
    let Some(route) = route else {
        return Ok(NatCheck {
            ready: false,
            seen: format!("no default route in {route_table} yet"),
        });
    };
    let state = route.state().map(|s| s.as_str()).unwrap_or("unknown");
    let target = route.instance_id().unwrap_or("no instance");
    if target != nat_instance {
        return Ok(NatCheck {
            ready: false,
            seen: format!(
                "route 0.0.0.0/0 points at {target}, not the NAT instance {nat_instance}"
            ),
        });
    }
    let inst = aws
        .ec2
        .describe_instances()
        .instance_ids(nat_instance)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("DescribeInstances {nat_instance}"), e))?;
    let instance_state = inst
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(nat_instance))
        .and_then(|i| i.state())
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_else(|| "not found".into());
    Ok(NatCheck {
        ready: state == "active" && instance_state == "running",
        seen: format!("route 0.0.0.0/0 -> {nat_instance} {state}, instance {instance_state}"),
    })
}

/// Waits with backoff (the poll interval doubling up to the pace's cap) until the route is
/// ready, `limit` has passed since the call, or the run's `deadline`.
pub async fn wait_ready(
    aws: &Aws,
    pace: &Pace,
    route_table: &str,
    nat_instance: &str,
    limit: Duration,
    deadline: Duration,
) -> Result<NatCheck, StackError> {
    let start = pace.elapsed();
    let mut attempt = 0;
    let mut throttled = 0;
    loop {
        let seen = match check(aws, route_table, nat_instance).await {
            Ok(c) if c.ready => return Ok(c),
            Ok(c) => c.seen,
            Err(e) => {
                backoff_or_fail(pace, e, &mut throttled).await?;
                continue;
            }
        };
        let waited = pace.elapsed() - start;
        if waited >= limit || pace.elapsed() >= deadline {
            return Err(StackError::Other(format!(
                "the NAT route is not ready after {}: {seen}; check the NAT instance \
                 (clawsterctl health --nat, or its console output) and deploy again",
                human(waited)
            )));
        }
        if !pace.sleep(pace.backoff(attempt)).await {
            return Err(StackError::Interrupted("the NAT route wait".into()));
        }
        attempt += 1;
    }
}
