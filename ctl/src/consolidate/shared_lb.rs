//! The region's shared load balancer: its stack (`clawster-shared-lb-<region>`,
//! [`crate::shared::load_balancer`]) created when first asked for (with the HTTPS listener for
//! `--domain`), read back from its exports, and the allocation of each bot's entry on it (the
//! lowest free listener port, or the lowest free rule priority), from what the bot stacks record
//! and what the load balancer has.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::aws::{Aws, AwsError};
use crate::bot::layout::{lowest_free, RULE_PRIORITIES, SHARED_CAPACITY, SHARED_PORTS};
use crate::bot::{Entry, Layout};
use crate::deploy::{exit, Fail};
use crate::names::{BotName, Domain, Region};
use crate::progress::{Mark, Ui};
pub use crate::shared::load_balancer::Https;
use crate::shared::load_balancer::{stack_name, template};
use crate::stack::{self, Health, Op, StackInfo, Watch};

/// The shared load balancer as its stack exports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLb {
    /// Its ARN.
    pub arn: String,
    /// Its DNS name.
    pub dns: String,
    /// The HTTPS listener (bots by host name), when it has a certificate.
    pub https_listener: Option<String>,
    /// The domain of that certificate.
    pub domain: Option<Domain>,
}

impl SharedLb {
    /// Reads it from its stack's outputs.
    pub fn of(s: &StackInfo) -> Option<Self> {
        Some(Self {
            arn: s.outputs.get("SharedLoadBalancerArn")?.clone(),
            dns: s
                .outputs
                .get("SharedLoadBalancerDns")
                .cloned()
                .unwrap_or_default(),
            https_listener: s.outputs.get("SharedHttpsListenerArn").cloned(),
            domain: s.outputs.get("SharedLbDomain").and_then(|d| d.parse().ok()),
        })
    }
}

/// The shared stack, or the failure that there is none.
pub async fn shared_stack(aws: &Aws, region: &Region) -> Result<StackInfo, Fail> {
    let name = crate::shared::stack_name(region);
    stack::describe(aws, &name).await?.ok_or_else(|| {
        Fail::new(
            exit::FAILED,
            format!("there is no shared stack {name} in {region}: no bot was deployed there"),
        )
        .next(format!(
            "deploy a bot first: `clawsterctl deploy BOT --region {region}`"
        ))
    })
}

/// Creates the shared load balancer's stack (or adds its HTTPS listener) when it is not yet as
/// asked; returns the load balancer. A domain other than the one it has is refused. Its
/// creation failing or interrupted deletes it again (no bot uses it yet).
pub async fn ensure(
    aws: &Aws,
    ui: &Ui,
    region: &Region,
    https: Option<&Https>,
    deadline: Duration,
) -> Result<SharedLb, Fail> {
    shared_stack(aws, region).await?;
    let name = stack_name(region);
    let pace = ui.pace().clone();
    let label = format!("shared load balancer {name}");
    let existing = stack::describe(aws, &name).await?;
    let params = BTreeMap::from([(
        "SharedStackName".to_string(),
        crate::shared::stack_name(region),
    )]);
    let Some(s) = existing else {
        ui.step("shared-lb", &label, Mark::Running, Some("create".into()));
        let id = stack::create(aws, &name, &template(region, https), &params, false).await?;
        let info = match Watch::new(&name, &id, Op::Create, None)
            .wait(aws, ui, &pace, deadline)
            .await
        {
            Ok(i) => i,
            Err(e) => {
                pace.interrupt.clear();
                let _ = stack::delete(aws, &id, &[]).await;
                ui.step(
                    "shared-lb",
                    &label,
                    Mark::Failed,
                    Some("deleting it again (no bot uses it)".into()),
                );
                return Err(Fail::from(e));
            }
        };
        let lb = SharedLb::of(&info).ok_or_else(|| {
            Fail::new(
                exit::FAILED,
                format!("{name} exports no SharedLoadBalancerArn"),
            )
        })?;
        ui.step(
            "shared-lb",
            &label,
            Mark::Done,
            Some(format!("created: {}", lb.dns)),
        );
        return Ok(lb);
    };
    if stack::health(&s.status) != Health::Ready {
        return Err(Fail::new(exit::FAILED, format!("{name} is in {}: it cannot take bots now", s.status))
            .next("look at it in the CloudFormation console; delete it if no bot uses it, then run this again"));
    }
    let lb = SharedLb::of(&s).ok_or_else(|| {
        Fail::new(
            exit::FAILED,
            format!("{name} exports no SharedLoadBalancerArn"),
        )
    })?;
    match (https, &lb.domain) {
        (Some(h), Some(d)) if d != &h.domain => {
            return Err(Fail::new(
                exit::USAGE,
                format!("the shared load balancer of {region} serves *.{d}, not *.{}: one shared load balancer has one domain", h.domain),
            )
            .next(format!("pass --domain {d}, or leave --domain out")));
        }
        (Some(h), None) => {
            ui.step(
                "shared-lb",
                &label,
                Mark::Running,
                Some(format!("adding its HTTPS listener for *.{}", h.domain)),
            );
            if let Some(set) = stack::change_set(
                aws,
                &pace,
                &s,
                &template(region, Some(h)),
                &params,
                deadline,
            )
            .await?
            {
                let stop = stack::newest_event(aws, &s.id).await?;
                stack::execute(aws, &s, &set).await?;
                let info = Watch::new(&name, &s.id, Op::Update, stop)
                    .wait(aws, ui, &pace, deadline)
                    .await?;
                let lb = SharedLb::of(&info).ok_or_else(|| {
                    Fail::new(
                        exit::FAILED,
                        format!("{name} exports no SharedLoadBalancerArn"),
                    )
                })?;
                ui.step(
                    "shared-lb",
                    &label,
                    Mark::Done,
                    Some(format!("HTTPS for *.{}", h.domain)),
                );
                return Ok(lb);
            }
        }
        _ => {}
    }
    ui.step("shared-lb", &label, Mark::Skipped, Some(lb.dns.clone()));
    Ok(lb)
}

/// Ports and priorities in use: recorded by the bot stacks (every layout with an entry) and
/// present on the load balancer.
async fn taken(
    aws: &Aws,
    lb: &SharedLb,
    bots: &[StackInfo],
) -> Result<(Vec<u16>, Vec<u16>, usize), AwsError> {
    let mut ports = Vec::new();
    let mut priorities = Vec::new();
    let mut on_shared = 0;
    for b in bots {
        match Layout::from_parameters(&b.parameters)
            .ok()
            .as_ref()
            .and_then(Layout::shared)
        {
            Some((Entry::Port(p), _)) => {
                ports.push(*p);
                on_shared += 1;
            }
            Some((Entry::Host { priority, .. }, _)) => {
                priorities.push(*priority);
                on_shared += 1;
            }
            None => {}
        }
    }
    let listeners = aws
        .elb
        .describe_listeners()
        .load_balancer_arn(&lb.arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeListeners (shared load balancer)", e))?;
    ports.extend(
        listeners
            .listeners()
            .iter()
            .filter_map(|l| l.port())
            .filter_map(|p| u16::try_from(p).ok()),
    );
    if let Some(https) = &lb.https_listener {
        let rules = aws
            .elb
            .describe_rules()
            .listener_arn(https)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeRules (shared HTTPS listener)", e))?;
        priorities.extend(
            rules
                .rules()
                .iter()
                .filter_map(|r| r.priority())
                .filter_map(|p| p.parse::<u16>().ok()),
        );
    }
    Ok((ports, priorities, on_shared))
}

/// The entry for `bot`: its host name when the shared load balancer has a domain, else the
/// lowest free listener port; `avoid` holds values found taken by an earlier attempt.
pub async fn allocate(
    aws: &Aws,
    lb: &SharedLb,
    bot: &BotName,
    bots: &[StackInfo],
    avoid: &[u16],
) -> Result<Entry, Fail> {
    let (mut ports, mut priorities, on_shared) = taken(aws, lb, bots).await?;
    if on_shared >= SHARED_CAPACITY {
        return Err(Fail::new(
            exit::FAILED,
            format!("the shared load balancer already has {on_shared} bots: an ALB holds at most {SHARED_CAPACITY} target groups"),
        ));
    }
    ports.extend_from_slice(avoid);
    priorities.extend_from_slice(avoid);
    match &lb.domain {
        Some(d) if lb.https_listener.is_some() => {
            let priority = lowest_free(RULE_PRIORITIES, &priorities).ok_or_else(|| {
                Fail::new(exit::FAILED, "every rule priority of the shared HTTPS listener is taken")
            })?;
            Ok(Entry::Host {
                name: d.host(bot),
                priority,
            })
        }
        _ => lowest_free(SHARED_PORTS, &ports).map(Entry::Port).ok_or_else(|| {
            Fail::new(
                exit::FAILED,
                format!(
                    "every listener port {}-{} of the shared load balancer is taken (an ALB holds at most 50 listeners)",
                    SHARED_PORTS.start(),
                    SHARED_PORTS.end()
                ),
            )
            .next("use --domain with a wildcard certificate: bots by host name share one listener")
        }),
    }
}

/// The value of an entry that a failed stack update may have found taken.
pub fn entry_value(e: &Entry) -> u16 {
    match e {
        Entry::Port(p) => *p,
        Entry::Host { priority, .. } => *priority,
    }
}

/// Whether a failed update's reasons say the port or priority was taken (another bot's move got
/// it between our allocation and our update).
pub fn taken_reason(f: &stack::Failure) -> bool {
    let says = |r: &str| {
        r.contains("PriorityInUse")
            || r.contains("DuplicateListener")
            || r.contains("already in use")
            || r.contains("already exists")
    };
    f.resources.iter().any(|(_, r)| says(r)) || f.reason.as_deref().is_some_and(says)
}
