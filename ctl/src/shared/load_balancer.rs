//! The region's shared load balancer stack (`clawster-shared-lb-<region>`), created only when a
//! bot is first placed on it (`clawsterctl deploy --shared-lb`, `clawsterctl consolidate`), so a
//! region without it pays nothing: one internet-facing ALB in the shared stack's public subnets,
//! its security group and, when a wildcard certificate is given (`--domain`), its HTTPS listener
//! (bots by host name) with an HTTP redirect.
//!
//! The bots' own entries (a listener port each, or a host-name rule each) and their target
//! groups live in the bot stacks; this stack only exports what they attach to, as
//! `<stack name>-<Output>`.

use serde_json::{json, Map, Value};

use super::VPC_CIDR;
use crate::bot::layout::SHARED_PORTS;
use crate::bot::{ALB_IDLE_TIMEOUT_SECONDS, TLS_POLICY};
use crate::cfn::{self, get_att, import_shared, r, resource, Resources, Skip};
use crate::names::{CertificateArn, Domain, Region};

/// Name of the shared load balancer.
pub const NAME: &str = "clawster-shared";

/// What the shared HTTPS listener answers for a host name no bot has.
pub const NO_BOT_BODY: &str = "No Clawster bot answers to this host name.";

/// The stack's name in a region.
pub fn stack_name(region: &Region) -> String {
    format!("clawster-shared-lb-{region}")
}

/// Names of the stack's exported outputs (the last two only with HTTPS).
pub const EXPORTS: [&str; 5] = [
    "SharedLoadBalancerArn",
    "SharedLoadBalancerDns",
    "SharedAlbSecurityGroupId",
    "SharedHttpsListenerArn",
    "SharedLbDomain",
];

/// Bots by host name: the domain and its wildcard certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Https {
    /// `--domain`.
    pub domain: Domain,
    /// The certificate for `*.<domain>`.
    pub certificate: CertificateArn,
}

fn security_group(res: &mut Resources) {
    res.add("SharedAlbSecurityGroup", resource(
        "AWS::EC2::SecurityGroup",
        json!({
            "GroupDescription": "Clawster shared load balancer: HTTP, HTTPS and the listener ports of the bots from anywhere",
            "VpcId": import_shared("VpcId"),
            "SecurityGroupIngress": [
                { "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0", "Description": "HTTP (redirected to HTTPS when the shared listener has a certificate)" },
                { "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS, bots by host name" },
                { "IpProtocol": "tcp", "FromPort": *SHARED_PORTS.start(), "ToPort": *SHARED_PORTS.end(), "CidrIp": "0.0.0.0/0", "Description": "The listener ports of the bots (no domain)" }
            ],
            "SecurityGroupEgress": [
                { "IpProtocol": "tcp", "FromPort": 1024, "ToPort": 65535, "CidrIp": VPC_CIDR, "Description": "To the gateways of the bots in the VPC (each task admits only this group, on its port)" }
            ],
            "Tags": cfn::tags(json!("clawster-shared-alb"))
        }),
        &[Skip { id: "CKV_AWS_260", reason: "The shared load balancer is the public entry point of the bots placed on it: port 80 serves their HTTP or only redirects to HTTPS." }],
        &[],
    ));
}

fn listeners(res: &mut Resources, certificate: &CertificateArn) {
    res.add("SharedHttpsListener", resource(
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": r("SharedLoadBalancer"),
            "Port": 443,
            "Protocol": "HTTPS",
            "SslPolicy": TLS_POLICY,
            "Certificates": [{ "CertificateArn": certificate.as_str() }],
            "DefaultActions": [{
                "Type": "fixed-response",
                "FixedResponseConfig": { "StatusCode": "404", "ContentType": "text/plain", "MessageBody": NO_BOT_BODY }
            }]
        }),
        &[],
        &[],
    ));
    res.add("SharedHttpRedirect", resource(
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
    ));
}

/// Renders the stack for `region`, with the HTTPS listener when `https` is given.
pub fn template(region: &Region, https: Option<&Https>) -> Value {
    let mut res = Resources::default();
    security_group(&mut res);
    res.add("SharedLoadBalancer", resource(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({
            "Name": NAME,
            "Type": "application",
            "Scheme": "internet-facing",
            "Subnets": [import_shared("PublicSubnet1Id"), import_shared("PublicSubnet2Id")],
            "SecurityGroups": [r("SharedAlbSecurityGroup")],
            "LoadBalancerAttributes": [
                { "Key": "idle_timeout.timeout_seconds", "Value": ALB_IDLE_TIMEOUT_SECONDS.to_string() },
                { "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" }
            ],
            "Tags": cfn::tags(json!(NAME))
        }),
        &[Skip { id: "CKV_AWS_91", reason: "ALB access logs need a log bucket per region and add cost; VPC flow logs record rejected traffic and the gateway logs every request to CloudWatch." }],
        &[],
    ));
    let mut outputs: Vec<(&str, &str, Value)> = vec![
        (
            "SharedLoadBalancerArn",
            "The shared load balancer (bots add their listener to it)",
            r("SharedLoadBalancer"),
        ),
        (
            "SharedLoadBalancerDns",
            "DNS name of the shared load balancer",
            get_att("SharedLoadBalancer", "DNSName"),
        ),
        (
            "SharedAlbSecurityGroupId",
            "Security group of the shared load balancer (the tasks of the bots admit it)",
            r("SharedAlbSecurityGroup"),
        ),
    ];
    if let Some(h) = https {
        listeners(&mut res, &h.certificate);
        outputs.push((
            "SharedHttpsListenerArn",
            "HTTPS listener of the shared load balancer (bots add a host-name rule)",
            r("SharedHttpsListener"),
        ));
        outputs.push((
            "SharedLbDomain",
            "Domain of the wildcard certificate: bots answer as BOT.DOMAIN",
            json!(h.domain.as_str()),
        ));
    }
    let mut out = Map::new();
    for (key, description, value) in outputs {
        out.insert(
            key.to_string(),
            cfn::exported_output(description, value, key),
        );
    }
    let how = match https {
        Some(h) => format!("bots by host name under {} (HTTPS) or by port", h.domain),
        None => format!(
            "bots by listener port {}-{} (HTTP)",
            SHARED_PORTS.start(),
            SHARED_PORTS.end()
        ),
    };
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("Clawster shared load balancer for {region}: {how}"),
        "Parameters": {
            "SharedStackName": {
                "Type": "String",
                "Default": super::stack_name(region),
                "AllowedPattern": "^clawster-shared-[a-z0-9-]+$",
                "Description": "The region's shared Clawster stack, whose network this load balancer uses"
            }
        },
        "Rules": {
            "RenderedForThisRegion": {
                "Assertions": [{
                    "Assert": { "Fn::Equals": [r("AWS::Region"), region.as_str()] },
                    "AssertDescription": format!("This template was rendered for {region}; render it again with --region for another region")
                }]
            }
        },
        "Resources": res.into_value(),
        "Outputs": Value::Object(out)
    })
}
