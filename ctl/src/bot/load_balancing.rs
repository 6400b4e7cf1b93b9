//! The bot stack's load-balancing group: the bot's own internet-facing ALB, its target group (the
//! task's IP on the gateway port) and the listeners (HTTPS with an HTTP redirect when a
//! certificate is given, else plain HTTP).

use serde_json::json;

use super::{Ctx, ALB_IDLE_TIMEOUT_SECONDS, TLS_POLICY};
use crate::cfn::{self, import_shared, r, resource, Resources, Skip};

/// Adds the load balancer, target group and listeners; returns the listeners' logical ids (the
/// service depends on them).
pub(super) fn build(c: &Ctx<'_>, res: &mut Resources) -> Vec<&'static str> {
    let bot = c.bot;
    let port = c.port;
    let o = c.o;
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
    res.add(
        "TargetGroup",
        resource(
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            json!({
                "Name": format!("clawster-{bot}-tg"),
                "TargetType": "ip",
                "Protocol": "HTTP",
                "Port": port,
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
    let forward = json!([{ "Type": "forward", "TargetGroupArn": r("TargetGroup") }]);
    let mut listeners = vec!["HttpListener"];
    if let Some(cert) = &o.certificate {
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
                    "DefaultActions": forward
                }),
                &[],
                &[],
            ),
        );
        listeners.push("HttpsListener");
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
    } else {
        res.add(
            "HttpListener",
            resource(
                "AWS::ElasticLoadBalancingV2::Listener",
                json!({
                    "LoadBalancerArn": r("LoadBalancer"),
                    "Port": 80,
                    "Protocol": "HTTP",
                    "DefaultActions": forward
                }),
                &[
                    Skip { id: "CKV_AWS_2", reason: "No certificate was given (--certificate-arn): HTTP-only mode for first tests, as the architecture allows; clawsterctl warns that the gateway token then travels in plaintext." },
                    Skip { id: "CKV_AWS_103", reason: "Plain HTTP listener without a certificate (see CKV_AWS_2); the HTTPS listener, when configured, enforces TLS 1.2 or newer." },
                ],
                &[],
            ),
        );
    }
    listeners
}
