//! The per-bot stack (`clawster-bot-<name>`).
//!
//! Load balancing by [`Layout`] (the bot's own ALB, or its entry on the region's shared ALB; the
//! target group always here), ECS cluster with an EC2 capacity provider over a one-host Auto Scaling
//! group (desired 0), the launch template whose UserData hands the boot to `clawster-agent`, the
//! task definition and a service created with DesiredCount 0: `clawsterctl deploy` raises it to 1
//! only after the NAT route is active, so tasks never race the NAT at first deploy. Everything
//! shared (VPC, subnets, roles, artifacts bucket) is imported from the shared stack.

use serde_json::{json, Map, Value};

use crate::cfn::{get_att, import_shared, import_shared_lb, r, sub, Resources};
use crate::manifest::Release;
use crate::names::{Arch, BotName, CertificateArn, GatewayPort, InstanceType, Region};

pub use layout::{Entry, Layout, Role};
pub use load_balancing::{standby, STANDBY_BODY};

pub mod host;
pub mod layout;
mod load_balancing;
mod network;
mod relayout;
mod service;
mod task;

pub use relayout::{relayout, LAYOUT_PARAMETERS, LAYOUT_RESOURCES};

/// Public SSM parameter naming the latest ECS-optimized AL2023 x86_64 AMI.
pub const ECS_AMI_PARAMETER: &str =
    "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id";
/// Public SSM parameter naming the latest ECS-optimized AL2023 arm64 AMI.
pub const ECS_AMI_PARAMETER_ARM64: &str =
    "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id";
/// Default bot host type: Graviton, 2 vCPU, 2 GiB (an idle gateway needs about 0.94 GiB), about
/// 19% cheaper than the x86_64 `t3.small`, which `--instance-type` keeps available.
pub const DEFAULT_INSTANCE_TYPE: &str = "t4g.small";

/// The ECS-optimized AMI parameter for hosts of `arch`.
pub fn ecs_ami_parameter(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => ECS_AMI_PARAMETER,
        Arch::Arm64 => ECS_AMI_PARAMETER_ARM64,
    }
}
/// Root volume size of a bot host in GiB.
pub const ROOT_VOLUME_GB: u32 = 30;
/// ALB idle timeout: above OpenClaw's ~60 s WebSocket heartbeat.
pub const ALB_IDLE_TIMEOUT_SECONDS: u32 = 120;
/// The template parameter carrying the bot image by digest (`REGISTRY/REPOSITORY@sha256:...`,
/// the image `packaging/build-image` builds): Debian bookworm, Node 24 and OpenClaw installed at
/// build time from pinned, verified inputs, so a task start downloads nothing but the image.
pub const IMAGE_PARAMETER: &str = "BotImage";
/// The user the gateway runs as: the image's `openclaw` user, whose gid is also the group of the
/// docker guard's socket (`SocketGroup=` in systemd/clawster-docker-guard.socket) and whose uid
/// owns the state directory on the host.
pub const TASK_USER: &str = "1000:1000";
/// The gateway's home inside the task: a tmpfs (npm logs, XDG caches), with the state directory
/// bind-mounted below it.
pub const TASK_HOME: &str = "/home/openclaw";
/// The state directory inside the task (the image's `OPENCLAW_STATE_DIR`): the one writable
/// persistent path, the host's [`STATE_DIR`].
pub const TASK_STATE_DIR: &str = "/home/openclaw/.openclaw";
/// Seconds ECS waits after SIGTERM before SIGKILL. 120 is the most ECS allows. OpenClaw stops in
/// about 3-5 s when its channels answer; its own budget (drain 315 s, shutdown 325 s) only runs
/// out when a channel hangs, and then the longest wait ECS permits is what it gets.
pub const STOP_TIMEOUT_SECONDS: u32 = 120;
/// Name of the OpenClaw container in the task definition.
pub const CONTAINER_NAME: &str = "openclaw";
/// The OpenClaw release in the bot image (packaging/image/openclaw/package.json pins the same):
/// pinned, because the docker guard on the host lets through exactly the self-probe exec this
/// release sends (its script's SHA256 is in the guard's policy), and a moving version would
/// change that without a deploy.
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
    /// ACM certificate for HTTPS on the bot's own ALB; without it that ALB serves plain HTTP.
    /// (On the shared ALB, HTTPS comes from the shared stack's wildcard certificate.)
    pub certificate: Option<CertificateArn>,
    /// Port of the OpenClaw gateway in the task.
    pub gateway_port: GatewayPort,
    /// Which load balancer forwards to the bot.
    pub layout: Layout,
}

/// The bot stack's name.
pub fn stack_name(name: &BotName) -> String {
    format!("clawster-bot-{name}")
}

/// The ECS cluster name of a bot (also what `clawster-agent bootstrap --cluster` gets).
pub fn cluster_name(name: &BotName) -> String {
    format!("clawster-{name}")
}

/// What every resource group of the bot stack is rendered from.
#[derive(Debug)]
struct Ctx<'a> {
    o: &'a BotOptions,
    release: &'a Release,
    bot: &'a str,
    cluster: String,
    port: u16,
}

impl Ctx<'_> {
    /// The shared stack's two private subnets (hosts and tasks).
    fn private_subnets(&self) -> Value {
        json!([
            import_shared("PrivateSubnet1Id"),
            import_shared("PrivateSubnet2Id")
        ])
    }
}

/// Renders the bot stack, pinning the `clawster-agent` of `release` for the host type's
/// architecture. One builder per
/// resource group, in template order.
pub fn template(o: &BotOptions, release: &Release) -> Value {
    let c = Ctx {
        o,
        release,
        bot: o.name.as_str(),
        cluster: cluster_name(&o.name),
        port: o.gateway_port.get(),
    };
    let mut res = Resources::default();
    network::build(o, &mut res);
    let listeners = load_balancing::build(o, &mut res);
    task::identity(&c, &mut res);
    host::identity(&c, &mut res);
    host::build(&c, &mut res);
    task::definition(&c, &mut res);
    service::build(&c, &mut res, &listeners);
    let bot = c.bot;

    let mut outputs = Map::new();
    let mut output = |key: &str, description: &str, value: Value| {
        outputs.insert(
            key.to_string(),
            json!({ "Description": description, "Value": value }),
        );
    };
    output("Url", &url_description(o), url(o));
    output(
        "LoadBalancing",
        "Which load balancer forwards to the bot (dedicated, shared, or joining/returning while clawsterctl consolidate moves it)",
        r("LoadBalancing"),
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
    output("LogGroupName", "Log group of the bot", r("LogGroup"));
    output(
        "TargetGroupArn",
        "Target group of the bot's task (clawsterctl deploy and status read its health)",
        r("TargetGroup"),
    );

    let mut parameters = json!({
        "SharedStackName": {
            "Type": "String",
            "Default": crate::shared::stack_name(&o.region),
            "AllowedPattern": "^clawster-shared-[a-z0-9-]+$",
            "Description": "The region's shared Clawster stack, whose exports this stack imports"
        },
        "EcsAmiId": {
            "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            "Default": ecs_ami_parameter(o.instance_type.arch()),
            "Description": format!("ECS-optimized Amazon Linux 2023 {} AMI (public SSM parameter)", o.instance_type.arch().as_str())
        },
        IMAGE_PARAMETER: {
            "Type": "String",
            "AllowedPattern": crate::names::IMAGE_REF_PATTERN,
            "Description": format!("The bot image by digest (REGISTRY/REPOSITORY@sha256:...), built by packaging/build-image for {} hosts", o.instance_type.arch().as_str())
        },
        "OpenClawConfigSecretArn": {
            "Type": "String",
            "AllowedPattern": format!("^arn:aws[a-z-]*:secretsmanager:{}:[0-9]{{12}}:secret:clawster/{bot}/config-[A-Za-z0-9]{{6}}$", o.region),
            "Description": format!("Full ARN (with its 6-character suffix) of the secret clawster/{bot}/config holding the OpenClaw configuration; created by clawsterctl deploy before this stack")
        }
    });
    layout_parameters(&o.layout, &o.region, &mut parameters);
    let mut t = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "Clawster bot {bot} in {}: ECS on one {} ({}) host, OpenClaw service (release {}); its load balancing is in the LoadBalancing output",
            o.region, o.instance_type, o.instance_type.arch().as_str(), release.version
        ),
        "Parameters": parameters,
        "Rules": {
            "RenderedForThisRegion": {
                "Assertions": [{
                    "Assert": { "Fn::Equals": [r("AWS::Region"), o.region.as_str()] },
                    "AssertDescription": format!("This template was rendered for {}; render it again with --region for another region", o.region)
                }]
            }
        },
        "Resources": res.into_value(),
        "Outputs": Value::Object(outputs)
    });
    if let Some(m) = metadata(o) {
        t["Metadata"] = m;
    }
    t
}

/// The template's `Metadata`: the bot's own certificate (kept while the bot is on the shared
/// load balancer, for the way back) and, when the URL names the shared load balancer through an
/// import, cfn-lint's leave to output an imported value.
pub(crate) fn metadata(o: &BotOptions) -> Option<Value> {
    let mut m = Map::new();
    if let Some(cert) = &o.certificate {
        m.insert("clawster".into(), json!({ "certificate": cert.as_str() }));
    }
    if matches!(o.layout.shared(), Some((Entry::Port(_), Role::Forward))) {
        m.insert(
            "cfn-lint".into(),
            json!({ "config": { "ignore_checks": ["W6001"] } }),
        );
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// The `Url` output's description: where the bot is reached and whether the gateway token
/// travels in plaintext.
pub(crate) fn url_description(o: &BotOptions) -> String {
    let how = match o.layout.shared() {
        Some((Entry::Host { .. }, Role::Forward)) => {
            "HTTPS on the region's shared load balancer".to_string()
        }
        Some((Entry::Port(p), Role::Forward)) => format!(
            "HTTP on port {p} of the region's shared load balancer: the gateway token travels in plaintext (consolidate with --domain for HTTPS)"
        ),
        _ if o.certificate.is_some() => "HTTPS with HTTP redirect, its own load balancer".to_string(),
        _ => "HTTP only, its own load balancer: the gateway token travels in plaintext, pass --certificate-arn for HTTPS".to_string(),
    };
    format!("Where the bot's gateway is reached ({how})")
}

/// Where the bot answers: its own ALB's name, or the shared ALB's name and its port, or its host
/// name on the shared HTTPS listener (whichever load balancer forwards).
pub(crate) fn url(o: &BotOptions) -> Value {
    match o.layout.shared() {
        Some((Entry::Port(_), Role::Forward)) => json!({ "Fn::Join": ["", [
            "http://", import_shared_lb("SharedLoadBalancerDns"), ":", r("SharedListenerPort")
        ]] }),
        Some((Entry::Host { .. }, Role::Forward)) => {
            json!({ "Fn::Join": ["", ["https://", r("SharedHostName")]] })
        }
        _ => {
            let scheme = if o.certificate.is_some() {
                "https"
            } else {
                "http"
            };
            sub(&format!("{scheme}://${{LoadBalancer.DNSName}}"))
        }
    }
}

/// The parameters that record the layout, each with its value as default
/// ([`layout`]).
pub(crate) fn layout_parameters(l: &Layout, region: &Region, parameters: &mut Value) {
    let values = l.parameters();
    let p = |key: &str| values.get(key).cloned().unwrap_or_default();
    let mut add = |key: &str, def: Value| {
        parameters[key] = def;
    };
    add(
        "LoadBalancing",
        json!({
            "Type": "String",
            "Default": l.kind(),
            "AllowedValues": ["dedicated", "joining", "shared", "returning"],
            "Description": "Which load balancer forwards to the bot (recorded by clawsterctl; change it only with clawsterctl consolidate)"
        }),
    );
    if l.shared().is_some() {
        add(
            "SharedLbStackName",
            json!({
                "Type": "String",
                "Default": crate::shared::load_balancer::stack_name(region),
                "AllowedPattern": "^clawster-shared-lb-[a-z0-9-]+$",
                "Description": "The region's shared load balancer stack, whose exports the bot's entry imports"
            }),
        );
    }
    match l.shared().map(|(e, _)| e) {
        Some(Entry::Port(_)) => add(
            "SharedListenerPort",
            json!({
                "Type": "Number",
                "Default": p("SharedListenerPort"),
                "MinValue": *layout::SHARED_PORTS.start(),
                "MaxValue": *layout::SHARED_PORTS.end(),
                "Description": "The bot's listener port on the region's shared load balancer (allocated once, kept while the bot is there)"
            }),
        ),
        Some(Entry::Host { .. }) => {
            add(
                "SharedHostName",
                json!({
                    "Type": "String",
                    "Default": p("SharedHostName"),
                    "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,126}[a-z0-9]$",
                    "Description": "The bot's host name on the shared load balancer's HTTPS listener"
                }),
            );
            add(
                "SharedRulePriority",
                json!({
                    "Type": "Number",
                    "Default": p("SharedRulePriority"),
                    "MinValue": *layout::RULE_PRIORITIES.start(),
                    "MaxValue": *layout::RULE_PRIORITIES.end(),
                    "Description": "Priority of the bot's rule on the shared HTTPS listener (allocated once, kept while the bot is there)"
                }),
            );
        }
        None => {}
    }
}
