//! The shared stack's optional load-balancing group: one internet-facing ALB for every bot of the
//! region that is placed on it (`clawsterctl deploy --shared-lb`, `clawsterctl consolidate`), its
//! security group and, when a wildcard certificate is given, its HTTPS listener (bots reached by
//! host name) with an HTTP redirect. Nothing of it exists unless the stack parameter
//! `SharedLoadBalancing` is `on`, so a region without it pays nothing.
//!
//! The bots' own entries (a listener port each, or a host-name rule each) and their target groups
//! live in the bot stacks; this group only exports what they attach to.

use serde_json::{json, Value};

use super::VPC_CIDR;
use crate::bot::layout::SHARED_PORTS;
use crate::bot::{ALB_IDLE_TIMEOUT_SECONDS, TLS_POLICY};
use crate::cfn::{self, get_att, r, resource, Resources, Skip};

/// Condition: the shared load balancer exists.
pub const HAS_LB: &str = "HasSharedLoadBalancer";
/// Condition: it also has the HTTPS listener (a wildcard certificate was given).
pub const HAS_HTTPS: &str = "HasSharedHttps";
/// Name of the shared load balancer.
pub const NAME: &str = "clawster-shared";

/// What the shared HTTPS listener answers for a host name no bot has.
pub const NO_BOT_BODY: &str = "No Clawster bot answers to this host name.";

fn when(condition: &str, mut resource: Value) -> Value {
    if let Some(o) = resource.as_object_mut() {
        o.insert("Condition".into(), json!(condition));
    }
    resource
}

/// The stack parameters that switch the group on and give it a certificate and domain.
pub(super) fn parameters(region: &str) -> Value {
    json!({
        "SharedLoadBalancing": {
            "Type": "String",
            "Default": "off",
            "AllowedValues": ["off", "on"],
            "Description": "on: one load balancer for the bots placed on it (clawsterctl deploy --shared-lb, clawsterctl consolidate); off: none, each bot has its own"
        },
        "SharedLbCertificateArn": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": format!("^$|^arn:aws[a-z-]*:acm:{region}:[0-9]{{12}}:certificate/[0-9a-f-]+$"),
            "Description": "Wildcard ACM certificate (*.DOMAIN) for the shared HTTPS listener; empty: bots on the shared load balancer get a listener port each (HTTP)"
        },
        "SharedLbDomain": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^$|^[a-z0-9][a-z0-9.-]{1,98}[a-z0-9]$",
            "Description": "The domain of the wildcard certificate: bots are reached as BOT.DOMAIN"
        }
    })
}

/// The conditions of the group.
pub(super) fn conditions() -> Value {
    json!({
        HAS_LB: { "Fn::Equals": [r("SharedLoadBalancing"), "on"] },
        HAS_HTTPS: { "Fn::And": [
            { "Condition": HAS_LB },
            { "Fn::Not": [{ "Fn::Equals": [r("SharedLbCertificateArn"), ""] }] }
        ] }
    })
}

/// Adds the group's resources, each under its condition.
pub(super) fn build(res: &mut Resources) {
    res.add("SharedAlbSecurityGroup", when(HAS_LB, resource(
        "AWS::EC2::SecurityGroup",
        json!({
            "GroupDescription": "Clawster shared load balancer: HTTP, HTTPS and the listener ports of the bots from anywhere",
            "VpcId": r("Vpc"),
            "SecurityGroupIngress": [
                { "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0", "Description": "HTTP (redirected to HTTPS when the shared listener has a certificate)" },
                { "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS, bots by host name" },
                { "IpProtocol": "tcp", "FromPort": *SHARED_PORTS.start(), "ToPort": *SHARED_PORTS.end(), "CidrIp": "0.0.0.0/0", "Description": "The bots' own listener ports (no domain)" }
            ],
            "SecurityGroupEgress": [
                { "IpProtocol": "tcp", "FromPort": 1024, "ToPort": 65535, "CidrIp": VPC_CIDR, "Description": "To the bots' gateways in the VPC (each task admits only this group, on its port)" }
            ],
            "Tags": cfn::tags(json!("clawster-shared-alb"))
        }),
        &[Skip { id: "CKV_AWS_260", reason: "The shared load balancer is the public entry point of the bots placed on it: port 80 serves the bots' HTTP or only redirects to HTTPS." }],
        &[],
    )));
    res.add("SharedLoadBalancer", when(HAS_LB, resource(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({
            "Name": NAME,
            "Type": "application",
            "Scheme": "internet-facing",
            "Subnets": [r("PublicSubnet1"), r("PublicSubnet2")],
            "SecurityGroups": [r("SharedAlbSecurityGroup")],
            "LoadBalancerAttributes": [
                { "Key": "idle_timeout.timeout_seconds", "Value": ALB_IDLE_TIMEOUT_SECONDS.to_string() },
                { "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" }
            ],
            "Tags": cfn::tags(json!(NAME))
        }),
        &[Skip { id: "CKV_AWS_91", reason: "ALB access logs need a log bucket per region and add cost; VPC flow logs record rejected traffic and the gateway logs every request to CloudWatch." }],
        &[],
    )));
    res.add("SharedHttpsListener", when(HAS_HTTPS, resource(
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": r("SharedLoadBalancer"),
            "Port": 443,
            "Protocol": "HTTPS",
            "SslPolicy": TLS_POLICY,
            "Certificates": [{ "CertificateArn": r("SharedLbCertificateArn") }],
            "DefaultActions": [{
                "Type": "fixed-response",
                "FixedResponseConfig": { "StatusCode": "404", "ContentType": "text/plain", "MessageBody": NO_BOT_BODY }
            }]
        }),
        &[],
        &[],
    )));
    res.add("SharedHttpRedirect", when(HAS_HTTPS, resource(
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": r("SharedLoadBalancer"),
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [{
                "Type": "redirect",
                "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301" }
            }]
        }),
        &[],
        &[],
    )));
}

/// The group's outputs (exported, each under its condition): (key, description, value, condition).
pub(super) fn outputs() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        (
            "SharedLoadBalancerArn",
            "The shared load balancer (bots add their listener or rule to it)",
            r("SharedLoadBalancer"),
            HAS_LB,
        ),
        (
            "SharedLoadBalancerDns",
            "DNS name of the shared load balancer",
            get_att("SharedLoadBalancer", "DNSName"),
            HAS_LB,
        ),
        (
            "SharedAlbSecurityGroupId",
            "Security group of the shared load balancer (the bots' tasks admit it)",
            r("SharedAlbSecurityGroup"),
            HAS_LB,
        ),
        (
            "SharedHttpsListenerArn",
            "HTTPS listener of the shared load balancer (bots add a host-name rule)",
            r("SharedHttpsListener"),
            HAS_HTTPS,
        ),
        (
            "SharedLbDomain",
            "Domain of the shared HTTPS listener's wildcard certificate",
            r("SharedLbDomain"),
            HAS_HTTPS,
        ),
    ]
}
