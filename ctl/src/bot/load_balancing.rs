//! The bot stack's load-balancing group, by [`Layout`]: the target group (the task's IP on the
//! gateway port) always; the bot's own internet-facing ALB with its listeners (HTTPS with an
//! HTTP redirect when a certificate is given, else plain HTTP) when the layout has one; the
//! bot's entry on the region's shared ALB (a listener on its own port, or a host-name rule on the
//! shared HTTPS listener) when the layout has one. In a moving layout one of the two answers 503
//! instead of forwarding (see [`super::layout`]).

use serde_json::{json, Value};

use super::layout::{Entry, Role};
use super::{BotOptions, ALB_IDLE_TIMEOUT_SECONDS, TLS_POLICY};
use crate::cfn::{self, import_shared, import_shared_lb, r, resource, Resources, Skip};

/// What a listener or rule in standby answers: 503 with a sentence, no target group.
pub const STANDBY_BODY: &str = "This bot is moving between load balancers; try again in a minute.";

/// The action of a listener or rule in `role`.
pub(super) fn action(role: Role) -> Value {
    match role {
        Role::Forward => json!([{ "Type": "forward", "TargetGroupArn": r("TargetGroup") }]),
        Role::Standby => standby(),
    }
}

/// The 503 action of a listener or rule that lets go of the target group.
pub fn standby() -> Value {
    json!([{
        "Type": "fixed-response",
        "FixedResponseConfig": { "StatusCode": "503", "ContentType": "text/plain", "MessageBody": STANDBY_BODY }
    }])
}

const HTTP_SKIPS: [Skip; 2] = [
    Skip { id: "CKV_AWS_2", reason: "No certificate was given (--certificate-arn, or --domain with a wildcard certificate for the shared load balancer): HTTP-only mode for first tests, as the architecture allows; clawsterctl warns that the gateway token then travels in plaintext." },
    Skip { id: "CKV_AWS_103", reason: "Plain HTTP listener without a certificate (see CKV_AWS_2); the HTTPS listener, when configured, enforces TLS 1.2 or newer." },
];

/// Adds the target group and the layout's listeners or rule; returns their logical ids (the
/// service depends on them).
pub(super) fn build(o: &BotOptions, res: &mut Resources) -> Vec<&'static str> {
    target_group(o, res);
    let mut listeners = Vec::new();
    if let Some(role) = o.layout.dedicated() {
        listeners.extend(dedicated(o, res, role));
    }
    if let Some((entry, role)) = o.layout.shared() {
        listeners.push(shared_entry(res, entry, role));
    }
    listeners
}

fn target_group(o: &BotOptions, res: &mut Resources) {
    let bot = o.name.as_str();
    res.add(
        "TargetGroup",
        resource(
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            json!({
                "Name": format!("clawster-{bot}-tg"),
                "TargetType": "ip",
                "Protocol": "HTTP",
                "Port": o.gateway_port.get(),
                "VpcId": import_shared("VpcId"),
                "HealthCheckProtocol": "HTTP",
                "HealthCheckPath": "/health",
                "Matcher": { "HttpCode": "200" },
                "HealthCheckIntervalSeconds": 5,
                "HealthCheckTimeoutSeconds": 3,
                "HealthyThresholdCount": 2,
                "UnhealthyThresholdCount": 3,
                "TargetGroupAttributes": [{ "Key": "deregistration_delay.timeout_seconds", "Value": "30" }],
                "Tags": cfn::tags(json!(format!("clawster-{bot}-tg")))
            }),
            &[],
            &[],
        ),
    );
}

/// The bot's own ALB and its listeners.
fn dedicated(o: &BotOptions, res: &mut Resources, role: Role) -> Vec<&'static str> {
    let bot = o.name.as_str();
    res.add(
        "LoadBalancer",
        resource(
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            json!({
                "Name": format!("clawster-{bot}"),
                "Type": "application",
                "Scheme": "internet-facing",
                "Subnets": [import_shared("PublicSubnet1Id"), import_shared("PublicSubnet2Id")],
                "SecurityGroups": [r("AlbSecurityGroup")],
                "LoadBalancerAttributes": [
                    { "Key": "idle_timeout.timeout_seconds", "Value": ALB_IDLE_TIMEOUT_SECONDS.to_string() },
                    { "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" }
                ],
                "Tags": cfn::tags(json!(format!("clawster-{bot}")))
            }),
            &[
                Skip { id: "CKV_AWS_91", reason: "ALB access logs need a log bucket per region and add cost; VPC flow logs record rejected traffic and the gateway logs every request to CloudWatch." },
            ],
            &[],
        ),
    );
    let Some(cert) = &o.certificate else {
        res.add(
            "HttpListener",
            resource(
                "AWS::ElasticLoadBalancingV2::Listener",
                json!({
                    "LoadBalancerArn": r("LoadBalancer"),
                    "Port": 80,
                    "Protocol": "HTTP",
                    "DefaultActions": action(role)
                }),
                &HTTP_SKIPS,
                &[],
            ),
        );
        return vec!["HttpListener"];
    };
    res.add(
        "HttpsListener",
        resource(
            "AWS::ElasticLoadBalancingV2::Listener",
            json!({
                "LoadBalancerArn": r("LoadBalancer"),
                "Port": 443,
                "Protocol": "HTTPS",
                "SslPolicy": TLS_POLICY,
                "Certificates": [{ "CertificateArn": cert.as_str() }],
                "DefaultActions": action(role)
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "HttpListener",
        resource(
            "AWS::ElasticLoadBalancingV2::Listener",
            json!({
                "LoadBalancerArn": r("LoadBalancer"),
                "Port": 80,
                "Protocol": "HTTP",
                "DefaultActions": [{
                    "Type": "redirect",
                    "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301" }
                }]
            }),
            &[],
            &[],
        ),
    );
    vec!["HttpsListener", "HttpListener"]
}

/// The bot's entry on the shared ALB: `SharedListener` (its port) or `SharedRule` (its host name).
fn shared_entry(res: &mut Resources, entry: &Entry, role: Role) -> &'static str {
    match entry {
        Entry::Port(_) => {
            res.add(
                "SharedListener",
                resource(
                    "AWS::ElasticLoadBalancingV2::Listener",
                    json!({
                        "LoadBalancerArn": import_shared_lb("SharedLoadBalancerArn"),
                        "Port": r("SharedListenerPort"),
                        "Protocol": "HTTP",
                        "DefaultActions": action(role)
                    }),
                    &HTTP_SKIPS,
                    &[],
                ),
            );
            "SharedListener"
        }
        Entry::Host { .. } => {
            res.add(
                "SharedRule",
                resource(
                    "AWS::ElasticLoadBalancingV2::ListenerRule",
                    json!({
                        "ListenerArn": import_shared_lb("SharedHttpsListenerArn"),
                        "Priority": r("SharedRulePriority"),
                        "Conditions": [{
                            "Field": "host-header",
                            "HostHeaderConfig": { "Values": [r("SharedHostName")] }
                        }],
                        "Actions": action(role)
                    }),
                    &[],
                    &[],
                ),
            );
            "SharedRule"
        }
    }
}
