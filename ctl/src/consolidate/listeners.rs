//! The one listener change of a move that is made through the ELB API instead of the stack: the
//! load balancer that forwards lets go of the bot's target group (its listener or rule answers
//! 503), because a target group can belong to only one load balancer and the other cannot
//! forward before. The stack update that follows makes the other one forward and, in the same
//! template, leaves the released listener in standby or removes it, so the stack and the load
//! balancers agree again. Also: whether a listener or rule forwards, and the target's health.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, TargetHealthStateEnum,
};

use crate::aws::{Aws, AwsError};
use crate::bot::STANDBY_BODY;
use crate::pace::Pace;
use crate::stack::StackError;

/// A listener (`SharedListener`, `HttpListener`, `HttpsListener`) or a rule (`SharedRule`) of a
/// bot stack, by its physical id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarder {
    /// A listener's default action.
    Listener(String),
    /// A listener rule's actions.
    Rule(String),
}

impl Forwarder {
    /// The ARN.
    pub fn arn(&self) -> &str {
        match self {
            Forwarder::Listener(a) | Forwarder::Rule(a) => a,
        }
    }
}

fn forward(target_group: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group)
        .build()
}

fn standby() -> Action {
    let config = FixedResponseActionConfig::builder()
        .status_code("503")
        .content_type("text/plain")
        .message_body(STANDBY_BODY)
        .build();
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(config)
        .build()
}

async fn set(aws: &Aws, f: &Forwarder, action: Action) -> Result<(), AwsError> {
    match f {
        Forwarder::Listener(arn) => {
            aws.elb
                .modify_listener()
                .listener_arn(arn)
                .default_actions(action)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&format!("ModifyListener {arn}"), e))?;
        }
        Forwarder::Rule(arn) => {
            aws.elb
                .modify_rule()
                .rule_arn(arn)
                .actions(action)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&format!("ModifyRule {arn}"), e))?;
        }
    }
    Ok(())
}

/// The listener or rule lets go of the target group: it answers 503 from now on.
pub async fn release(aws: &Aws, f: &Forwarder) -> Result<(), AwsError> {
    set(aws, f, standby()).await
}

/// The listener or rule forwards to `target_group` again (reverting a release).
pub async fn restore(aws: &Aws, f: &Forwarder, target_group: &str) -> Result<(), AwsError> {
    set(aws, f, forward(target_group)).await
}

/// Whether the listener or rule forwards to `target_group` now.
pub async fn forwards(aws: &Aws, f: &Forwarder, target_group: &str) -> Result<bool, AwsError> {
    let actions: Vec<Action> = match f {
        Forwarder::Listener(arn) => aws
            .elb
            .describe_listeners()
            .listener_arns(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("DescribeListeners {arn}"), e))?
            .listeners()
            .iter()
            .flat_map(|l| l.default_actions().to_vec())
            .collect(),
        Forwarder::Rule(arn) => aws
            .elb
            .describe_rules()
            .rule_arns(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("DescribeRules {arn}"), e))?
            .rules()
            .iter()
            .flat_map(|r| r.actions().to_vec())
            .collect(),
    };
    Ok(actions.iter().any(|a| {
        a.r#type() == Some(&ActionTypeEnum::Forward)
            && (a.target_group_arn() == Some(target_group)
                || a.forward_config().is_some_and(|c| {
                    c.target_groups()
                        .iter()
                        .any(|t| t.target_group_arn() == Some(target_group))
                }))
    }))
}

/// Whether the target group has a healthy target now.
pub async fn healthy_now(aws: &Aws, target_group: &str) -> Result<bool, AwsError> {
    let out = aws
        .elb
        .describe_target_health()
        .target_group_arn(target_group)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeTargetHealth", e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target_health())
        .any(|h| h.state() == Some(&TargetHealthStateEnum::Healthy)))
}

/// Polls the target group until a target is healthy; returns its health states the moment it
/// is. Bounded by `deadline` (run time) and Ctrl-C.
pub async fn wait_healthy(
    aws: &Aws,
    pace: &Pace,
    target_group: &str,
    deadline: Duration,
) -> Result<Vec<String>, StackError> {
    loop {
        let out = aws
            .elb
            .describe_target_health()
            .target_group_arn(target_group)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeTargetHealth", e))?;
        let states: Vec<String> = out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target_health())
            .map(|h| {
                let st = h.state().map(|s| s.as_str()).unwrap_or("unknown");
                match h.reason() {
                    Some(r) if h.state() != Some(&TargetHealthStateEnum::Healthy) => {
                        format!("{st} ({})", r.as_str())
                    }
                    _ => st.to_string(),
                }
            })
            .collect();
        if states.iter().any(|s| s == "healthy") {
            return Ok(states);
        }
        if pace.elapsed() >= deadline {
            return Err(StackError::Other(format!(
                "no healthy target in {target_group} after {}: {}",
                crate::pace::human(pace.elapsed()),
                if states.is_empty() {
                    "none registered".to_string()
                } else {
                    states.join(", ")
                }
            )));
        }
        if !pace.sleep(pace.poll).await {
            return Err(StackError::Interrupted("the target's health check".into()));
        }
    }
}
