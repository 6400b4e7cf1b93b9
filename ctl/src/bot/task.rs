//! The bot stack's task group: what the OpenClaw task runs with (its log group, its execution
//! role, limited to this bot's one secret and its logs) and the task definition.
//!
//! The bot has one secret, `clawster/<bot>/config`, written by `clawsterctl deploy`: the merged
//! OpenClaw configuration, whose `gateway.auth.token` is the gateway token (kept across deploys).
//! A second secret for the token alone cost $0.40 a month per bot and protected nothing more: the
//! same role reads both, and the configuration already holds the operator's API keys.

use serde_json::json;

use super::{
    Ctx, CONTAINER_NAME, GUARD_SOCKET, HOST_DOCKER_CLI, IMAGE_PARAMETER, STATE_DIR,
    STOP_TIMEOUT_SECONDS, TASK_HOME, TASK_STATE_DIR, TASK_USER,
};
use crate::cfn::{self, get_att, import_shared, r, resource, sub, Resources, Skip};

/// Adds the task's log group and execution role.
pub(super) fn identity(c: &Ctx<'_>, res: &mut Resources) {
    let bot = c.bot;
    res.add(
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
    res.add(
        "ExecutionRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": format!("ECS task execution of Clawster bot {bot}: its own log group, its own configuration secret, the bot image"),
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
                                "Sid": "ReadThisBotsSecret",
                                "Effect": "Allow",
                                "Action": "secretsmanager:GetSecretValue",
                                "Resource": r("OpenClawConfigSecretArn")
                            },
                            {
                                "Sid": "WriteThisBotsLogs",
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": sub("${LogGroup.Arn}:*")
                            },
                            {
                                "Sid": "PullTheBotImage",
                                "Effect": "Allow",
                                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                                "Resource": sub(&format!("arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:${{AWS::AccountId}}:repository/{}", crate::image::ecr::REPOSITORY))
                            },
                            {
                                // The registry login has no resource to scope it to.
                                "Sid": "LogInToTheRegistry",
                                "Effect": "Allow",
                                "Action": "ecr:GetAuthorizationToken",
                                "Resource": "*"
                            }
                        ]
                    }
                }]
            }),
            &[],
            &[],
        ),
    );
}

/// Adds the task definition: the OpenClaw container from the prebuilt image (by digest), hardened
/// (see [`container`]), on the guard's socket and the state directory.
pub(super) fn definition(c: &Ctx<'_>, res: &mut Resources) {
    let bot = c.bot;
    res.add(
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
                "ContainerDefinitions": [container(c)],
                "Tags": cfn::tags(json!(format!("clawster-{bot}")))
            }),
            &[],
            &[],
        ),
    );
}

/// The OpenClaw container. The image's entry point starts the gateway (no shell, nothing installed
/// at start). It runs as the image's unprivileged user with no capabilities and no way to gain
/// any, on a read-only root: the only writable paths are two tmpfs (`/tmp`, the home with its
/// caches) and the state directory, the one persistent mount.
fn container(c: &Ctx<'_>) -> serde_json::Value {
    let port = c.port;
    json!({
        "Name": CONTAINER_NAME,
        "Image": r(IMAGE_PARAMETER),
        "Essential": true,
        "MemoryReservation": 1024,
        "Command": ["--port", port.to_string()],
        "User": TASK_USER,
        "ReadonlyRootFilesystem": true,
        "Privileged": false,
        "DockerSecurityOptions": ["no-new-privileges"],
        "LinuxParameters": {
            "Capabilities": { "Drop": ["ALL"] },
            "InitProcessEnabled": true,
            "Tmpfs": [
                { "ContainerPath": "/tmp", "Size": 512, "MountOptions": ["nosuid", "nodev", "mode=1777"] },
                { "ContainerPath": TASK_HOME, "Size": 256, "MountOptions": ["nosuid", "nodev", "uid=1000", "gid=1000", "mode=0700"] }
            ]
        },
        "StopTimeout": STOP_TIMEOUT_SECONDS,
        // The gateway's unauthenticated liveness endpoint, asked by the image's own Node (the
        // image has no curl); the start period covers a cold start (about 5-10 s) with margin.
        "HealthCheck": {
            "Command": ["CMD", "/usr/local/bin/node", "-e", health_probe(port)],
            "Interval": 30,
            "Timeout": 5,
            "Retries": 3,
            "StartPeriod": 60
        },
        "PortMappings": [{ "ContainerPort": port, "Protocol": "tcp" }],
        // The guard's socket where the docker CLI looks; the state directory as a host bind mount,
        // so OpenClaw can translate sandbox workspaces to host paths.
        "MountPoints": [
            { "SourceVolume": "docker-socket", "ContainerPath": "/var/run/docker.sock", "ReadOnly": false },
            { "SourceVolume": "docker-cli", "ContainerPath": "/usr/local/bin/docker", "ReadOnly": true },
            { "SourceVolume": "openclaw-state", "ContainerPath": TASK_STATE_DIR, "ReadOnly": false }
        ],
        "Secrets": [
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
    })
}

/// The health check's script: exit 0 when `GET /healthz` on the gateway's port answers 2xx.
pub fn health_probe(port: u16) -> String {
    format!(
        "fetch('http://127.0.0.1:{port}/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
    )
}
