//! The per-bot stack (`clawster-bot-<name>`).
//!
//! ALB and target group, ECS cluster with an EC2 capacity provider over a one-host Auto Scaling
//! group (desired 0), the launch template whose UserData hands the boot to `clawster-agent`, the
//! task definition and a service created with DesiredCount 0: `clawsterctl deploy` raises it to 1
//! only after the NAT route is active, so tasks never race the NAT at first deploy. Everything
//! shared (VPC, subnets, roles, artifacts bucket) is imported from the shared stack.

use serde_json::{json, Map, Value};

use crate::cfn::{self, get_att, import_shared, r, resource, sub, Skip};
use crate::manifest::Release;
use crate::names::{BotName, CertificateArn, GatewayPort, InstanceType, Region};
use crate::userdata;

/// Public SSM parameter naming the latest ECS-optimized AL2023 x86_64 AMI.
pub const ECS_AMI_PARAMETER: &str =
    "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id";
/// Default bot host type: 2 vCPU, 2 GiB, x86_64 (Chromium has no official arm64 Linux build).
pub const DEFAULT_INSTANCE_TYPE: &str = "t3.small";
/// Root volume size of a bot host in GiB.
pub const ROOT_VOLUME_GB: u32 = 30;
/// ALB idle timeout: above OpenClaw's ~60 s WebSocket heartbeat.
pub const ALB_IDLE_TIMEOUT_SECONDS: u32 = 120;
/// The container image (Phase 1: stock Node image, OpenClaw installed at start). OpenClaw
/// 2026.9.x needs Node 24.16+ or 26.1+ (its `engines`; under older Node it stops at once because
/// `node:sqlite` is missing), so the image is Node 24.
pub const CONTAINER_IMAGE: &str = "node:24-slim";
/// Name of the OpenClaw container in the task definition.
pub const CONTAINER_NAME: &str = "openclaw";
/// The OpenClaw release the task installs: pinned, because the docker guard on the host lets
/// through exactly the self-probe exec this release sends (its script's SHA256 is in the guard's
/// policy), and a moving tag would change that without a deploy.
pub const OPENCLAW_VERSION: &str = "2026.9.6";
/// The bot's Docker socket on the host: the docker guard's filtered API, never dockerd's own.
pub const GUARD_SOCKET: &str = "/run/clawster/docker.sock";
/// The bot's state directory on the host (the guard allows bind sources only inside it).
pub const STATE_DIR: &str = "/var/lib/clawster/openclaw";
/// The host's docker CLI, bind-mounted read-only into the task: OpenClaw drives its sandbox
/// through the `docker` CLI, and the host's own client matches the host's daemon without a
/// download at every task start.
pub const HOST_DOCKER_CLI: &str = "/usr/bin/docker";
/// TLS policy of the HTTPS listener (TLS 1.3 and 1.2 only).
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// What a bot stack is rendered from.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// The bot's name.
    pub name: BotName,
    /// Region of the stack.
    pub region: Region,
    /// Bot host instance type.
    pub instance_type: InstanceType,
    /// ACM certificate for HTTPS; without it the ALB serves plain HTTP.
    pub certificate: Option<CertificateArn>,
    /// Port of the OpenClaw gateway in the task.
    pub gateway_port: GatewayPort,
}

/// The bot stack's name.
pub fn stack_name(name: &BotName) -> String {
    format!("clawster-bot-{name}")
}

/// The ECS cluster name of a bot (also what `clawster-agent bootstrap --cluster` gets).
pub fn cluster_name(name: &BotName) -> String {
    format!("clawster-{name}")
}

/// The container's start command. It only references environment variables set by ECS, never
/// operator input (the port is a validated number).
pub fn container_command(port: GatewayPort) -> String {
    [
        "set -e",
        "umask 077",
        "mkdir -p /root/.openclaw",
        "printf '%s' \"$OPENCLAW_CONFIG\" > /root/.openclaw/openclaw.json",
        "unset OPENCLAW_CONFIG",
        "apt-get update && apt-get install -y --no-install-recommends git ca-certificates",
        &format!("npm install -g openclaw@{OPENCLAW_VERSION}"),
        &format!("exec openclaw gateway --port {port}"),
    ]
    .join("\n")
}

/// Renders the bot stack, pinning the x86_64 `clawster-agent` of `release`.
pub fn template(o: &BotOptions, release: &Release) -> Value {
    let bot = o.name.as_str();
    let cluster = cluster_name(&o.name);
    let port = o.gateway_port.get();
    let https = o.certificate.is_some();
    let mut res = Map::new();
    let mut add = |id: &str, v: Value| {
        res.insert(id.to_string(), v);
    };
    let private_subnets = json!([
        import_shared("PrivateSubnet1Id"),
        import_shared("PrivateSubnet2Id")
    ]);

    // --- Security groups -----------------------------------------------------------------------
    add(
        "AlbSecurityGroup",
        resource(
            "AWS::EC2::SecurityGroup",
            json!({
                "GroupDescription": format!("Clawster bot {bot}: load balancer, HTTP and HTTPS from anywhere"),
                "VpcId": import_shared("VpcId"),
                "SecurityGroupIngress": [
                    { "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0", "Description": if https { "HTTP, redirected to HTTPS" } else { "HTTP" } },
                    { "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS" }
                ],
                "SecurityGroupEgress": [
                    { "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "DestinationSecurityGroupId": r("TaskSecurityGroup"), "Description": "To the OpenClaw gateway only" }
                ],
                "Tags": cfn::tags(json!(format!("clawster-{bot}-alb")))
            }),
            &[
                Skip { id: "CKV_AWS_260", reason: "The load balancer is the bot's only public entry point: port 80 serves HTTP when no certificate is configured and otherwise only redirects to HTTPS." },
            ],
            &[],
        ),
    );
    add(
        "TaskSecurityGroup",
        resource(
            "AWS::EC2::SecurityGroup",
            json!({
                "GroupDescription": format!("Clawster bot {bot}: task ENI, gateway port from the load balancer only"),
                "VpcId": import_shared("VpcId"),
                "SecurityGroupEgress": [
                    { "IpProtocol": "-1", "CidrIp": "0.0.0.0/0", "Description": "Outbound through the NAT instance (which admits only 80/443)" }
                ],
                "Tags": cfn::tags(json!(format!("clawster-{bot}-task")))
            }),
            &[],
            &[],
        ),
    );
    add(
        "TaskIngressFromAlb",
        resource(
            "AWS::EC2::SecurityGroupIngress",
            json!({
                "GroupId": r("TaskSecurityGroup"),
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "SourceSecurityGroupId": r("AlbSecurityGroup"),
                "Description": "OpenClaw gateway from the load balancer"
            }),
            &[],
            &[],
        ),
    );
    add(
        "InstanceSecurityGroup",
        resource(
            "AWS::EC2::SecurityGroup",
            json!({
                "GroupDescription": format!("Clawster bot {bot}: host primary ENI, no inbound at all (administration via SSM)"),
                "VpcId": import_shared("VpcId"),
                "SecurityGroupEgress": [
                    { "IpProtocol": "-1", "CidrIp": "0.0.0.0/0", "Description": "ECS agent, image pulls, SSM and S3, through the NAT instance or the S3 gateway endpoint" }
                ],
                "Tags": cfn::tags(json!(format!("clawster-{bot}-host")))
            }),
            &[],
            &[],
        ),
    );

    // --- Load balancer -------------------------------------------------------------------------
    add(
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
    add(
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
        add(
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
        add(
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
        add(
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

    // --- Secrets, logs, roles ------------------------------------------------------------------
    add(
        "LogGroup",
        resource(
            "AWS::Logs::LogGroup",
            json!({ "LogGroupName": format!("/clawster/{bot}"), "RetentionInDays": crate::shared::LOG_RETENTION_DAYS }),
            &[
                Skip { id: "CKV_AWS_158", reason: "Log groups are encrypted at rest by CloudWatch; a customer-managed KMS key adds about $1/month per key and is on the hardening backlog." },
            ],
            &[],
        ),
    );
    add(
        "GatewayTokenSecret",
        resource(
            "AWS::SecretsManager::Secret",
            json!({
                "Name": format!("clawster/{bot}/gateway-token"),
                "Description": format!("OpenClaw gateway token of Clawster bot {bot}"),
                "GenerateSecretString": { "PasswordLength": 48, "ExcludePunctuation": true },
                "Tags": cfn::tags(json!(format!("clawster-{bot}-gateway-token")))
            }),
            &[
                Skip { id: "CKV_AWS_149", reason: "Encrypted with the account's AWS-managed Secrets Manager key; a customer-managed key adds about $1/month per bot." },
            ],
            &[],
        ),
    );
    add(
        "ExecutionRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": format!("ECS task execution of Clawster bot {bot}: its own log group and its own two secrets only"),
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "Service": "ecs-tasks.amazonaws.com" },
                        "Action": "sts:AssumeRole"
                    }]
                },
                "Policies": [{
                    "PolicyName": "this-bot-only",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "ReadThisBotsSecrets",
                                "Effect": "Allow",
                                "Action": "secretsmanager:GetSecretValue",
                                "Resource": [r("GatewayTokenSecret"), r("OpenClawConfigSecretArn")]
                            },
                            {
                                "Sid": "WriteThisBotsLogs",
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": sub("${LogGroup.Arn}:*")
                            }
                        ]
                    }
                }]
            }),
            &[],
            &[],
        ),
    );

    // --- Hosts ---------------------------------------------------------------------------------
    let agent = &release.agent;
    add(
        "LaunchTemplate",
        resource(
            "AWS::EC2::LaunchTemplate",
            json!({
                "LaunchTemplateName": format!("clawster-{bot}"),
                "LaunchTemplateData": {
                    "ImageId": r("EcsAmiId"),
                    "InstanceType": o.instance_type.as_str(),
                    "IamInstanceProfile": { "Arn": import_shared("EcsInstanceProfileArn") },
                    "SecurityGroupIds": [r("InstanceSecurityGroup")],
                    "MetadataOptions": {
                        "HttpEndpoint": "enabled",
                        "HttpTokens": "required",
                        "HttpPutResponseHopLimit": 2
                    },
                    "BlockDeviceMappings": [{
                        "DeviceName": "/dev/xvda",
                        "Ebs": { "Encrypted": true, "VolumeType": "gp3", "VolumeSize": ROOT_VOLUME_GB, "DeleteOnTermination": true }
                    }],
                    "UserData": userdata::encode(
                        &userdata::bot_script(&release.object_key(agent), &agent.sha256, &cluster),
                        import_shared("ArtifactsBucketName")
                    ),
                    "TagSpecifications": [
                        { "ResourceType": "instance", "Tags": cfn::tags(json!(format!("clawster-{bot}-host"))) },
                        { "ResourceType": "volume", "Tags": cfn::tags(json!(format!("clawster-{bot}-host"))) }
                    ]
                }
            }),
            &[],
            &[],
        ),
    );
    add(
        "AutoScalingGroup",
        resource(
            "AWS::AutoScaling::AutoScalingGroup",
            json!({
                "MinSize": "0",
                "MaxSize": "1",
                "DesiredCapacity": "0",
                "VPCZoneIdentifier": private_subnets,
                "LaunchTemplate": {
                    "LaunchTemplateId": r("LaunchTemplate"),
                    "Version": get_att("LaunchTemplate", "LatestVersionNumber")
                },
                "NewInstancesProtectedFromScaleIn": true,
                "Tags": [
                    { "Key": "Name", "Value": format!("clawster-{bot}-host"), "PropagateAtLaunch": true },
                    { "Key": "clawster:managed-by", "Value": "clawsterctl", "PropagateAtLaunch": true }
                ]
            }),
            &[],
            &[],
        ),
    );

    // --- ECS -----------------------------------------------------------------------------------
    add(
        "Cluster",
        resource(
            "AWS::ECS::Cluster",
            json!({
                "ClusterName": cluster,
                "ClusterSettings": [{ "Name": "containerInsights", "Value": "enabled" }],
                "Tags": cfn::tags(json!(cluster))
            }),
            &[],
            &[],
        ),
    );
    add(
        "CapacityProvider",
        resource(
            "AWS::ECS::CapacityProvider",
            json!({
                "AutoScalingGroupProvider": {
                    "AutoScalingGroupArn": r("AutoScalingGroup"),
                    "ManagedScaling": { "Status": "ENABLED", "TargetCapacity": 100 },
                    "ManagedTerminationProtection": "ENABLED",
                    "ManagedDraining": "ENABLED"
                },
                "Tags": cfn::tags(json!(format!("clawster-{bot}")))
            }),
            &[],
            &[],
        ),
    );
    add(
        "ClusterCapacityProviders",
        resource(
            "AWS::ECS::ClusterCapacityProviderAssociations",
            json!({
                "Cluster": r("Cluster"),
                "CapacityProviders": [r("CapacityProvider")],
                "DefaultCapacityProviderStrategy": [{ "CapacityProvider": r("CapacityProvider"), "Weight": 1 }]
            }),
            &[],
            &[],
        ),
    );
    add(
        "TaskDefinition",
        resource(
            "AWS::ECS::TaskDefinition",
            json!({
                "Family": format!("clawster-{bot}"),
                "NetworkMode": "awsvpc",
                "RequiresCompatibilities": ["EC2"],
                "ExecutionRoleArn": get_att("ExecutionRole", "Arn"),
                "TaskRoleArn": import_shared("TaskRoleArn"),
                "Volumes": [
                    { "Name": "docker-socket", "Host": { "SourcePath": GUARD_SOCKET } },
                    { "Name": "docker-cli", "Host": { "SourcePath": HOST_DOCKER_CLI } },
                    { "Name": "openclaw-state", "Host": { "SourcePath": STATE_DIR } }
                ],
                "ContainerDefinitions": [{
                    "Name": CONTAINER_NAME,
                    "Image": CONTAINER_IMAGE,
                    "Essential": true,
                    "MemoryReservation": 1024,
                    "EntryPoint": ["sh", "-c"],
                    "Command": [container_command(o.gateway_port)],
                    "PortMappings": [{ "ContainerPort": port, "Protocol": "tcp" }],
                    // The guard's socket where the docker CLI looks; the state directory as a host
                    // bind mount, so OpenClaw can translate sandbox workspaces to host paths.
                    "MountPoints": [
                        { "SourceVolume": "docker-socket", "ContainerPath": "/var/run/docker.sock", "ReadOnly": false },
                        { "SourceVolume": "docker-cli", "ContainerPath": "/usr/local/bin/docker", "ReadOnly": true },
                        { "SourceVolume": "openclaw-state", "ContainerPath": "/root/.openclaw", "ReadOnly": false }
                    ],
                    "Secrets": [
                        { "Name": "OPENCLAW_GATEWAY_TOKEN", "ValueFrom": r("GatewayTokenSecret") },
                        { "Name": "OPENCLAW_CONFIG", "ValueFrom": r("OpenClawConfigSecretArn") }
                    ],
                    "LogConfiguration": {
                        "LogDriver": "awslogs",
                        "Options": {
                            "awslogs-group": r("LogGroup"),
                            "awslogs-region": r("AWS::Region"),
                            "awslogs-stream-prefix": CONTAINER_NAME
                        }
                    }
                }],
                "Tags": cfn::tags(json!(format!("clawster-{bot}")))
            }),
            &[],
            &[],
        ),
    );
    let mut service_deps = listeners.clone();
    service_deps.push("ClusterCapacityProviders");
    add(
        "Service",
        cfn::depends_on(
            resource(
                "AWS::ECS::Service",
                json!({
                    "ServiceName": format!("clawster-{bot}"),
                    "Cluster": r("Cluster"),
                    "TaskDefinition": r("TaskDefinition"),
                    "DesiredCount": 0,
                    "CapacityProviderStrategy": [{ "CapacityProvider": r("CapacityProvider"), "Weight": 1 }],
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {
                            "Subnets": private_subnets,
                            "SecurityGroups": [r("TaskSecurityGroup")],
                            "AssignPublicIp": "DISABLED"
                        }
                    },
                    "LoadBalancers": [{
                        "ContainerName": CONTAINER_NAME,
                        "ContainerPort": port,
                        "TargetGroupArn": r("TargetGroup")
                    }],
                    "HealthCheckGracePeriodSeconds": 300,
                    "DeploymentConfiguration": {
                        "DeploymentCircuitBreaker": { "Enable": true, "Rollback": true },
                        "MinimumHealthyPercent": 0,
                        "MaximumPercent": 100
                    },
                    "PropagateTags": "SERVICE",
                    "Tags": cfn::tags(json!(format!("clawster-{bot}")))
                }),
                &[],
                &[],
            ),
            &service_deps,
        ),
    );

    let scheme = if https { "https" } else { "http" };
    let mut outputs = Map::new();
    let mut output = |key: &str, description: &str, value: Value| {
        outputs.insert(
            key.to_string(),
            json!({ "Description": description, "Value": value }),
        );
    };
    output(
        "Url",
        "Where the bot's gateway is reached",
        sub(&format!("{scheme}://${{LoadBalancer.DNSName}}")),
    );
    output("ClusterName", "ECS cluster of the bot", r("Cluster"));
    output(
        "ServiceName",
        "ECS service of the bot (DesiredCount 0 until clawsterctl deploy starts it)",
        get_att("Service", "Name"),
    );
    output(
        "AutoScalingGroupName",
        "Auto Scaling group of the bot host",
        r("AutoScalingGroup"),
    );
    output(
        "GatewayTokenSecretArn",
        "Secret holding the gateway token (the ARN, not the token)",
        r("GatewayTokenSecret"),
    );
    output("LogGroupName", "Log group of the bot", r("LogGroup"));
    output(
        "TargetGroupArn",
        "Target group of the bot's task (clawsterctl deploy and status read its health)",
        r("TargetGroup"),
    );

    let transport = if https {
        "HTTPS with HTTP redirect".to_string()
    } else {
        "HTTP only: the gateway token travels in plaintext, pass --certificate-arn for HTTPS"
            .to_string()
    };
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "Clawster bot {bot} in {}: load balancer ({transport}), ECS on one {} host, OpenClaw service (release {})",
            o.region, o.instance_type, release.version
        ),
        "Parameters": {
            "SharedStackName": {
                "Type": "String",
                "Default": crate::shared::stack_name(&o.region),
                "AllowedPattern": "^clawster-shared-[a-z0-9-]+$",
                "Description": "The region's shared Clawster stack, whose exports this stack imports"
            },
            "EcsAmiId": {
                "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                "Default": ECS_AMI_PARAMETER,
                "Description": "ECS-optimized Amazon Linux 2023 x86_64 AMI (public SSM parameter)"
            },
            "OpenClawConfigSecretArn": {
                "Type": "String",
                "AllowedPattern": format!("^arn:aws[a-z-]*:secretsmanager:{}:[0-9]{{12}}:secret:clawster/{bot}/config-[A-Za-z0-9]{{6}}$", o.region),
                "Description": format!("Full ARN (with its 6-character suffix) of the secret clawster/{bot}/config holding the OpenClaw configuration; created by clawsterctl deploy before this stack")
            }
        },
        "Rules": {
            "RenderedForThisRegion": {
                "Assertions": [{
                    "Assert": { "Fn::Equals": [r("AWS::Region"), o.region.as_str()] },
                    "AssertDescription": format!("This template was rendered for {}; render it again with --region for another region", o.region)
                }]
            }
        },
        "Resources": Value::Object(res),
        "Outputs": Value::Object(outputs)
    })
}
