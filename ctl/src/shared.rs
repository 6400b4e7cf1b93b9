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

use crate::cfn::{self, get_att, r, resource, sub, Skip};
use crate::manifest::{Release, ARTIFACTS_PREFIX};
use crate::names::Region;
use crate::ops::{reads, window as window_ops};
use crate::userdata;

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

const ASSUME_EC2: &str = "ec2.amazonaws.com";

fn assume_role(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole"
        }]
    })
}

fn managed_policy(name: &str) -> Value {
    sub(&format!("arn:${{AWS::Partition}}:iam::aws:policy/{name}"))
}

/// Inline policy letting an instance role read the release artifacts and nothing else of the bucket.
fn read_artifacts_policy() -> Value {
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

fn subnet(index: usize, public: bool, az: u32) -> Value {
    let kind = if public { "public" } else { "private" };
    resource(
        "AWS::EC2::Subnet",
        json!({
            "VpcId": r("Vpc"),
            "CidrBlock": SUBNET_CIDRS[index],
            "AvailabilityZone": { "Fn::Select": [az, { "Fn::GetAZs": "" }] },
            "MapPublicIpOnLaunch": false,
            "Tags": cfn::tags(sub(&format!("${{AWS::StackName}}-{kind}-{}", az + 1)))
        }),
        &[],
        &[],
    )
}

/// One document parameter: a string reaching the script as the environment variable
/// `SSM_<name>` (`interpolationType: ENV_VAR`, SSM Agent 3.3.2746.0 or later), never pasted into
/// its text, and constrained by `allowedPattern` (and `allowedValues` for a fixed list).
fn parameter(
    description: &str,
    default: Option<&str>,
    pattern: &str,
    values: Option<&[&str]>,
) -> Value {
    let mut p = Map::new();
    p.insert("type".into(), json!("String"));
    p.insert("description".into(), json!(description));
    if let Some(d) = default {
        p.insert("default".into(), json!(d));
    }
    if let Some(v) = values {
        p.insert("allowedValues".into(), json!(v));
    }
    p.insert("allowedPattern".into(), json!(pattern));
    p.insert("interpolationType".into(), json!("ENV_VAR"));
    Value::Object(p)
}

/// The pattern of `name` among a document's patterns.
fn pattern_of(patterns: &[(&'static str, String)], name: &str) -> String {
    patterns
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("no pattern for {name}"))
}

/// The script's first lines: strict shell, and a clear refusal on an SSM Agent that would paste
/// parameters into the text instead of passing them as environment variables.
const SCRIPT_PRELUDE: [&str; 2] = [
    "set -eu",
    "printenv SSM_action >/dev/null || { echo 'this document needs SSM Agent 3.3.2746.0 or later (parameters as environment variables)' >&2; exit 1; }",
];

/// The `Content` of the maintenance-window SSM document.
///
/// Parameters are passed to the script as environment variables and never pasted into its text,
/// and each one is constrained by `allowedPattern`, so no operator string is ever parsed by the
/// shell; the script is constant and hands each value to the agent as one `--option=VALUE`
/// argument (so even a reason starting with `-` stays a value). The patterns are rendered from
/// the agent's own rules (`clawster_core::window_rules`): they admit exactly the wire form
/// `clawsterctl` sends ([`crate::ops::window::WindowArgs`]).
pub fn window_document() -> Value {
    let agent = userdata::AGENT_PATH;
    let p = window_ops::patterns();
    let mut script: Vec<String> = SCRIPT_PRELUDE.iter().map(|s| s.to_string()).collect();
    script.extend([
        "case \"$SSM_action\" in".to_string(),
        format!("  open) exec {agent} window open \"--pkgs=$SSM_pkgs\" \"--ttl=$SSM_ttl\" \"--reason=$SSM_reason\" ;;"),
        format!("  close) exec {agent} window close ;;"),
        format!("  status) if [ \"${{SSM_format:-text}}\" = json ]; then exec {agent} window status --json; fi; exec {agent} window status ;;"),
        "  *) echo \"unknown action\" >&2; exit 2 ;;".to_string(),
        "esac".to_string(),
    ]);
    json!({
        "schemaVersion": "2.2",
        "description": "Clawster package maintenance window on a bot host: runs `clawster-agent window open|close|status` as root. Open allows the listed packages (comma-separated, e.g. nginx,htop) for the given time (e.g. 10m, at most 4h).",
        "parameters": {
            "action": parameter("open, close or status", None, &pattern_of(&p, "action"), Some(&window_ops::ACTIONS)),
            "pkgs": parameter(
                "open only: comma-separated package names the window allows (at most 20), e.g. nginx,htop",
                Some(""),
                &pattern_of(&p, "pkgs"),
                None,
            ),
            "ttl": parameter(
                "open only: how long the window stays open, 5s to 4h, a number with unit s, m or h, e.g. 10m",
                Some(""),
                &pattern_of(&p, "ttl"),
                None,
            ),
            "reason": parameter(
                "open only: why, recorded in the audit record (at most 200 printable characters)",
                Some(""),
                &pattern_of(&p, "reason"),
                None,
            ),
            "format": parameter("status only: text or json", Some("text"), &pattern_of(&p, "format"), Some(&window_ops::FORMATS))
        },
        "mainSteps": [{
            "action": "aws:runShellScript",
            "name": "window",
            "precondition": { "StringEquals": ["platformType", "Linux"] },
            "inputs": {
                "timeoutSeconds": "300",
                "runCommand": script
            }
        }]
    })
}

/// The `Content` of the operations SSM document: read-only commands on a bot host or the NAT
/// instance, each with bounded output (SSM keeps 24,000 characters of stdout).
///
/// - `health`: `clawster-agent health --json` (bot host);
/// - `nat-status`: `clawster-nat-agent status --json` (NAT instance);
/// - `logs`: the agent's journal records since `since` ago, as JSON lines, newest first, at most
///   [`reads::LOG_LINES`], only the fields `clawsterctl` shows;
/// - `window-logs`: the same for the window's audit records only.
///
/// Like the window document: constant script, parameters as environment variables with
/// `allowedPattern`s, `since` handed to journalctl as one `--since=-VALUE` argument.
pub fn ops_document() -> Value {
    let agent = userdata::AGENT_PATH;
    let nat = userdata::NAT_AGENT_PATH;
    let p = reads::patterns();
    let journal = reads::journalctl_args().join(" ");
    let since = "\"--since=-$SSM_since\"";
    let mut script: Vec<String> = SCRIPT_PRELUDE.iter().map(|s| s.to_string()).collect();
    script.extend([
        "case \"$SSM_action\" in".to_string(),
        format!("  health) exec {agent} health --json ;;"),
        format!("  nat-status) exec {nat} status --json ;;"),
        format!("  logs) exec {journal} {since} ;;"),
        format!(
            "  window-logs) exec {journal} {since} {} ;;",
            reads::window_matches().join(" ")
        ),
        "  *) echo \"unknown action\" >&2; exit 2 ;;".to_string(),
        "esac".to_string(),
    ]);
    json!({
        "schemaVersion": "2.2",
        "description": "Clawster operations, read-only: `health` (clawster-agent health --json on a bot host), `nat-status` (clawster-nat-agent status --json on the NAT instance), `logs` and `window-logs` (the agent's journal records, or only the maintenance window's audit records, since the given time, as JSON lines, newest first).",
        "parameters": {
            "action": parameter("health, nat-status, logs or window-logs", None, &pattern_of(&p, "action"), Some(&reads::ACTIONS)),
            "since": parameter(
                "logs and window-logs: how far back, a number (1-9999) with unit s, m, h or d, e.g. 30m",
                Some(reads::DEFAULT_SINCE),
                &pattern_of(&p, "since"),
                None,
            )
        },
        "mainSteps": [{
            "action": "aws:runShellScript",
            "name": "ops",
            "precondition": { "StringEquals": ["platformType", "Linux"] },
            "inputs": {
                "timeoutSeconds": "120",
                "runCommand": script
            }
        }]
    })
}

/// Renders the shared stack for `region`, pinning the NAT agent of `release`.
pub fn template(region: &Region, release: &Release) -> Value {
    let nat = &release.nat_agent;
    let mut res = Map::new();
    let mut add = |id: &str, v: Value| {
        res.insert(id.to_string(), v);
    };

    // --- Network -------------------------------------------------------------------------------
    add(
        "Vpc",
        resource(
            "AWS::EC2::VPC",
            json!({
                "CidrBlock": VPC_CIDR,
                "EnableDnsSupport": true,
                "EnableDnsHostnames": true,
                "Tags": cfn::tags(sub("${AWS::StackName}-vpc"))
            }),
            &[],
            &[],
        ),
    );
    add("PublicSubnet1", subnet(0, true, 0));
    add("PublicSubnet2", subnet(1, true, 1));
    add("PrivateSubnet1", subnet(2, false, 0));
    add("PrivateSubnet2", subnet(3, false, 1));
    add(
        "InternetGateway",
        resource(
            "AWS::EC2::InternetGateway",
            json!({ "Tags": cfn::tags(sub("${AWS::StackName}-igw")) }),
            &[],
            &[],
        ),
    );
    add(
        "InternetGatewayAttachment",
        resource(
            "AWS::EC2::VPCGatewayAttachment",
            json!({ "VpcId": r("Vpc"), "InternetGatewayId": r("InternetGateway") }),
            &[],
            &[],
        ),
    );
    for kind in ["Public", "Private"] {
        add(
            &format!("{kind}RouteTable"),
            resource(
                "AWS::EC2::RouteTable",
                json!({
                    "VpcId": r("Vpc"),
                    "Tags": cfn::tags(sub(&format!("${{AWS::StackName}}-{}", kind.to_lowercase())))
                }),
                &[],
                &[],
            ),
        );
        for n in 1..=2 {
            add(
                &format!("{kind}Subnet{n}RouteTableAssociation"),
                resource(
                    "AWS::EC2::SubnetRouteTableAssociation",
                    json!({
                        "SubnetId": r(&format!("{kind}Subnet{n}")),
                        "RouteTableId": r(&format!("{kind}RouteTable"))
                    }),
                    &[],
                    &[],
                ),
            );
        }
    }
    add(
        "PublicDefaultRoute",
        cfn::depends_on(
            resource(
                "AWS::EC2::Route",
                json!({
                    "RouteTableId": r("PublicRouteTable"),
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "GatewayId": r("InternetGateway")
                }),
                &[],
                &[],
            ),
            &["InternetGatewayAttachment"],
        ),
    );
    add(
        "PrivateDefaultRoute",
        resource(
            "AWS::EC2::Route",
            json!({
                "RouteTableId": r("PrivateRouteTable"),
                "DestinationCidrBlock": "0.0.0.0/0",
                "InstanceId": r("NatInstance")
            }),
            &[],
            &[],
        ),
    );
    // Gateway endpoints are free. It sits on both route tables: bot hosts fetch their agent before
    // the NAT route exists, and the NAT instance fetches its agent before its Elastic IP is
    // attached. The default (full) endpoint policy is kept on purpose: the AL2023 package
    // repositories and ECR image layers are S3 buckets too, and this endpoint carries that traffic.
    add(
        "S3GatewayEndpoint",
        resource(
            "AWS::EC2::VPCEndpoint",
            json!({
                "VpcEndpointType": "Gateway",
                "VpcId": r("Vpc"),
                "ServiceName": sub("com.amazonaws.${AWS::Region}.s3"),
                "RouteTableIds": [r("PrivateRouteTable"), r("PublicRouteTable")]
            }),
            &[],
            &[],
        ),
    );

    // --- NAT instance --------------------------------------------------------------------------
    add(
        "NatSecurityGroup",
        resource(
            "AWS::EC2::SecurityGroup",
            json!({
                "GroupDescription": "Clawster NAT instance: HTTP and HTTPS from inside the VPC, to be forwarded out",
                "VpcId": r("Vpc"),
                "SecurityGroupIngress": [
                    { "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": VPC_CIDR, "Description": "HTTP from the VPC" },
                    { "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": VPC_CIDR, "Description": "HTTPS from the VPC" }
                ],
                "SecurityGroupEgress": [
                    { "IpProtocol": "-1", "CidrIp": "0.0.0.0/0", "Description": "Forwarded traffic to the internet" }
                ],
                "Tags": cfn::tags(sub("${AWS::StackName}-nat"))
            }),
            &[],
            &[],
        ),
    );
    add(
        "NatInstanceRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Clawster NAT instance: SSM administration and reading the release artifacts",
                "AssumeRolePolicyDocument": assume_role(ASSUME_EC2),
                "ManagedPolicyArns": [managed_policy("AmazonSSMManagedInstanceCore")],
                "Policies": [read_artifacts_policy()]
            }),
            &[],
            &[],
        ),
    );
    add(
        "NatInstanceProfile",
        resource(
            "AWS::IAM::InstanceProfile",
            json!({ "Roles": [r("NatInstanceRole")] }),
            &[],
            &[],
        ),
    );
    add(
        "NatInstance",
        resource(
            "AWS::EC2::Instance",
            json!({
                "ImageId": r("NatAmiId"),
                "InstanceType": NAT_INSTANCE_TYPE,
                "SubnetId": r("PublicSubnet1"),
                "SecurityGroupIds": [r("NatSecurityGroup")],
                "IamInstanceProfile": r("NatInstanceProfile"),
                "SourceDestCheck": false,
                "DisableApiTermination": true,
                "EbsOptimized": true,
                "MetadataOptions": {
                    "HttpEndpoint": "enabled",
                    "HttpTokens": "required",
                    "HttpPutResponseHopLimit": 1
                },
                "BlockDeviceMappings": [{
                    "DeviceName": "/dev/xvda",
                    "Ebs": { "Encrypted": true, "VolumeType": "gp3", "VolumeSize": 8, "DeleteOnTermination": true }
                }],
                "UserData": userdata::encode(
                    &userdata::nat_script(&release.object_key(nat), &nat.sha256),
                    r("ArtifactsBucket")
                ),
                "Tags": cfn::tags(sub("${AWS::StackName}-nat"))
            }),
            &[],
            &[],
        ),
    );
    add(
        "NatElasticIp",
        resource(
            "AWS::EC2::EIP",
            json!({
                "Domain": "vpc",
                "InstanceId": r("NatInstance"),
                "Tags": cfn::tags(sub("${AWS::StackName}-nat"))
            }),
            &[],
            &[],
        ),
    );
    add(
        "NatRecoveryAlarm",
        resource(
            "AWS::CloudWatch::Alarm",
            json!({
                "AlarmDescription": "Recover the Clawster NAT instance (same ID, IP and ENI) when its host fails the system status check",
                "Namespace": "AWS/EC2",
                "MetricName": "StatusCheckFailed_System",
                "Dimensions": [{ "Name": "InstanceId", "Value": r("NatInstance") }],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 2,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "AlarmActions": [sub("arn:${AWS::Partition}:automate:${AWS::Region}:ec2:recover")]
            }),
            &[],
            &[],
        ),
    );

    // --- IAM roles for the bots ----------------------------------------------------------------
    add(
        "EcsInstanceRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Clawster bot hosts: ECS container instance, SSM administration, reading the release artifacts",
                "AssumeRolePolicyDocument": assume_role(ASSUME_EC2),
                "ManagedPolicyArns": [
                    managed_policy("service-role/AmazonEC2ContainerServiceforEC2Role"),
                    managed_policy("AmazonSSMManagedInstanceCore")
                ],
                "Policies": [read_artifacts_policy()]
            }),
            &[],
            &[],
        ),
    );
    add(
        "EcsInstanceProfile",
        resource(
            "AWS::IAM::InstanceProfile",
            json!({ "Roles": [r("EcsInstanceRole")] }),
            &[],
            &[],
        ),
    );
    add(
        "TaskExecutionRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Clawster ECS task execution (image pull, logs) for tasks without secrets; each bot stack has its own execution role for its secrets",
                "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
                "ManagedPolicyArns": [managed_policy("service-role/AmazonECSTaskExecutionRolePolicy")]
            }),
            &[],
            &[],
        ),
    );
    add(
        "TaskRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Clawster bot tasks at run time: deliberately no permissions, so a compromised bot cannot call AWS",
                "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com")
            }),
            &[],
            &[],
        ),
    );

    // --- Flow logs -----------------------------------------------------------------------------
    add(
        "FlowLogGroup",
        resource(
            "AWS::Logs::LogGroup",
            json!({
                "LogGroupName": sub("/clawster/${AWS::StackName}/vpc-flow-rejects"),
                "RetentionInDays": LOG_RETENTION_DAYS
            }),
            &[
                Skip {
                    id: "CKV_AWS_158",
                    reason: "Log groups are encrypted at rest by CloudWatch; a customer-managed KMS key adds about $1/month per key and is on the hardening backlog.",
                },
            ],
            &[],
        ),
    );
    add(
        "FlowLogRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Delivery of the Clawster VPC flow logs to CloudWatch Logs",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "Service": "vpc-flow-logs.amazonaws.com" },
                        "Action": "sts:AssumeRole",
                        "Condition": { "StringEquals": { "aws:SourceAccount": r("AWS::AccountId") } }
                    }]
                },
                "Policies": [{
                    "PolicyName": "deliver-flow-logs",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                            "Resource": [get_att("FlowLogGroup", "Arn"), sub("${FlowLogGroup.Arn}:*")]
                        }]
                    }
                }]
            }),
            &[],
            &[],
        ),
    );
    add(
        "VpcFlowLog",
        resource(
            "AWS::EC2::FlowLog",
            json!({
                "ResourceId": r("Vpc"),
                "ResourceType": "VPC",
                "TrafficType": "REJECT",
                "LogDestinationType": "cloud-watch-logs",
                "LogGroupName": r("FlowLogGroup"),
                "DeliverLogsPermissionArn": get_att("FlowLogRole", "Arn"),
                "Tags": cfn::tags(sub("${AWS::StackName}-rejects"))
            }),
            &[],
            &[],
        ),
    );

    // --- Release artifacts ---------------------------------------------------------------------
    add(
        "ArtifactsBucket",
        resource(
            "AWS::S3::Bucket",
            json!({
                "BucketName": sub("clawster-artifacts-${AWS::AccountId}-${AWS::Region}"),
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": { "SSEAlgorithm": "aws:kms" },
                        "BucketKeyEnabled": true
                    }]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": true,
                    "BlockPublicPolicy": true,
                    "IgnorePublicAcls": true,
                    "RestrictPublicBuckets": true
                },
                "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
                "VersioningConfiguration": { "Status": "Enabled" },
                "LifecycleConfiguration": {
                    "Rules": [{
                        "Id": "expire-replaced-releases",
                        "Status": "Enabled",
                        "NoncurrentVersionExpiration": { "NoncurrentDays": 90 },
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 }
                    }]
                },
                "Tags": cfn::tags(sub("${AWS::StackName}-artifacts"))
            }),
            &[
                Skip {
                    id: "CKV_AWS_18",
                    reason: "Holds only release binaries whose SHA256 is pinned in the templates; server access logs would need a second bucket and add cost without protecting them.",
                },
            ],
            &[],
        ),
    );
    add(
        "ArtifactsBucketPolicy",
        resource(
            "AWS::S3::BucketPolicy",
            json!({
                "Bucket": r("ArtifactsBucket"),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "DenyPlainHttp",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [get_att("ArtifactsBucket", "Arn"), sub("${ArtifactsBucket.Arn}/*")],
                        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
                    }]
                }
            }),
            &[],
            &[],
        ),
    );

    // --- SSM documents: maintenance windows, operations -------------------------------------------
    add(
        "WindowDocument",
        resource(
            "AWS::SSM::Document",
            json!({
                "DocumentType": "Command",
                "DocumentFormat": "JSON",
                "TargetType": "/AWS::EC2::Instance",
                "Content": window_document(),
                "Tags": cfn::tags(sub("${AWS::StackName}-window"))
            }),
            &[],
            &[],
        ),
    );
    add(
        "OpsDocument",
        resource(
            "AWS::SSM::Document",
            json!({
                "DocumentType": "Command",
                "DocumentFormat": "JSON",
                "TargetType": "/AWS::EC2::Instance",
                "Content": ops_document(),
                "Tags": cfn::tags(sub("${AWS::StackName}-ops"))
            }),
            &[],
            &[],
        ),
    );

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
            "SSM document for health, NAT status and logs",
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
        "Resources": Value::Object(res),
        "Outputs": Value::Object(out)
    })
}
