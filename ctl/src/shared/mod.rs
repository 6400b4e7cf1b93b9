//! The shared stack, created once per region (`clawster-shared-<region>`).
//!
//! Network (VPC 10.0.0.0/16, two public and two private subnets in two AZs, internet gateway,
//! route tables), the NAT instance that gives the private subnets outbound access (no interface
//! VPC endpoints: they cost about $117/month and slowed the first deploy), the S3 gateway
//! endpoint (free) through which hosts fetch their agents, IAM roles, VPC flow logs, the private
//! artifacts bucket and the SSM documents for maintenance windows and for health, NAT status and
//! logs. Its outputs are exported as
//! `<stack name>-<Output>` for the bot stacks.

use serde_json::{json, Map, Value};

use crate::cfn::{self, get_att, r, sub, Resources};
use crate::manifest::{Release, ARTIFACTS_PREFIX};
use crate::names::Region;

mod artifacts;
mod documents;
mod flow_logs;
pub mod load_balancer;
mod nat;
mod network;
mod roles;

pub use documents::{ops_document, window_document};

/// The VPC's address range (also what OpenClaw trusts as proxies).
pub const VPC_CIDR: &str = "10.0.0.0/16";
/// Address ranges of PublicSubnet1, PublicSubnet2, PrivateSubnet1, PrivateSubnet2.
pub const SUBNET_CIDRS: [&str; 4] = ["10.0.0.0/24", "10.0.1.0/24", "10.0.16.0/20", "10.0.32.0/20"];
/// Public SSM parameter naming the latest AL2023 arm64 AMI (the NAT instance's image).
pub const NAT_AMI_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64";
/// The NAT instance's type: 2 vCPU burstable arm64, 0.5 GiB, about $3/month.
pub const NAT_INSTANCE_TYPE: &str = "t4g.nano";
/// Days the flow logs (and bot logs) are kept.
pub const LOG_RETENTION_DAYS: u32 = 30;

/// The shared stack's name in a region.
pub fn stack_name(region: &Region) -> String {
    format!("clawster-shared-{region}")
}

/// Names of the shared stack's exported outputs, in template order.
pub const EXPORTS: [&str; 15] = [
    "VpcId",
    "VpcCidr",
    "PublicSubnet1Id",
    "PublicSubnet2Id",
    "PrivateSubnet1Id",
    "PrivateSubnet2Id",
    "PrivateRouteTableId",
    "NatInstanceId",
    "EcsInstanceRoleArn",
    "EcsInstanceProfileArn",
    "TaskExecutionRoleArn",
    "TaskRoleArn",
    "ArtifactsBucketName",
    "WindowDocumentName",
    "OpsDocumentName",
];

pub(crate) const ASSUME_EC2: &str = "ec2.amazonaws.com";

pub(crate) fn assume_role(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole"
        }]
    })
}

pub(crate) fn managed_policy(name: &str) -> Value {
    sub(&format!("arn:${{AWS::Partition}}:iam::aws:policy/{name}"))
}

/// Inline policy letting an instance role read the release artifacts and nothing else of the bucket.
pub(super) fn read_artifacts_policy() -> Value {
    json!({
        "PolicyName": "read-release-artifacts",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": sub(&format!("arn:${{AWS::Partition}}:s3:::${{ArtifactsBucket}}/{ARTIFACTS_PREFIX}/*"))
            }]
        }
    })
}

/// Renders the shared stack for `region`, pinning the NAT agent of `release`. One builder per
/// resource group, in template order.
pub fn template(region: &Region, release: &Release) -> Value {
    let mut res = Resources::default();
    network::build(&mut res);
    nat::build(release, &mut res);
    roles::build(&mut res);
    flow_logs::build(&mut res);
    artifacts::build(&mut res);
    documents::build(&mut res);

    let outputs: Vec<(&str, &str, Value)> = vec![
        ("VpcId", "The Clawster VPC", r("Vpc")),
        (
            "VpcCidr",
            "Address range of the VPC",
            get_att("Vpc", "CidrBlock"),
        ),
        (
            "PublicSubnet1Id",
            "Public subnet in the first AZ (ALB, NAT)",
            r("PublicSubnet1"),
        ),
        (
            "PublicSubnet2Id",
            "Public subnet in the second AZ (ALB)",
            r("PublicSubnet2"),
        ),
        (
            "PrivateSubnet1Id",
            "Private subnet in the first AZ (bot hosts, tasks)",
            r("PrivateSubnet1"),
        ),
        (
            "PrivateSubnet2Id",
            "Private subnet in the second AZ (bot hosts, tasks)",
            r("PrivateSubnet2"),
        ),
        (
            "PrivateRouteTableId",
            "Route table of the private subnets (checked for the NAT route before a bot starts)",
            r("PrivateRouteTable"),
        ),
        ("NatInstanceId", "The NAT instance", r("NatInstance")),
        (
            "EcsInstanceRoleArn",
            "Role of the bot hosts",
            get_att("EcsInstanceRole", "Arn"),
        ),
        (
            "EcsInstanceProfileArn",
            "Instance profile of the bot hosts",
            get_att("EcsInstanceProfile", "Arn"),
        ),
        (
            "TaskExecutionRoleArn",
            "Task execution role for tasks without secrets",
            get_att("TaskExecutionRole", "Arn"),
        ),
        (
            "TaskRoleArn",
            "Empty run-time role of the bot tasks",
            get_att("TaskRole", "Arn"),
        ),
        (
            "ArtifactsBucketName",
            "Bucket holding the release binaries under artifacts/",
            r("ArtifactsBucket"),
        ),
        (
            "WindowDocumentName",
            "SSM document for maintenance windows",
            r("WindowDocument"),
        ),
        (
            "OpsDocumentName",
            "SSM document for health, NAT status, logs and the bots' state sync and restore",
            r("OpsDocument"),
        ),
    ];
    debug_assert_eq!(outputs.iter().map(|o| o.0).collect::<Vec<_>>(), EXPORTS);
    let mut out = Map::new();
    for (key, description, value) in outputs {
        out.insert(
            key.to_string(),
            cfn::exported_output(description, value, key),
        );
    }

    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "Clawster shared infrastructure for {region}: VPC, NAT instance, IAM roles, flow logs, artifacts bucket, maintenance-window and operations documents (release {})",
            release.version
        ),
        "Parameters": {
            "NatAmiId": {
                "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                "Default": NAT_AMI_PARAMETER,
                "Description": "Amazon Linux 2023 arm64 AMI of the NAT instance (public SSM parameter)"
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
