//! One test per property of the bot stack, read from the rendered template.
#![allow(clippy::unwrap_used)]

mod common;

use clawsterctl::bot;
use clawsterctl::names::{Arch, GatewayPort};
use common::*;
use serde_json::{json, Value};

fn http() -> Value {
    bot_template(false)
}

fn ingress_ports(sg: &Value) -> Vec<(i64, String)> {
    sg["SecurityGroupIngress"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["FromPort"].as_i64().unwrap(),
                        r["CidrIp"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn load_balancer_idle_timeout_is_120_seconds() {
    let t = http();
    let lb = props(&t, "LoadBalancer");
    assert_eq!(lb["Type"], "application");
    assert_eq!(lb["Scheme"], "internet-facing");
    let attrs = lb["LoadBalancerAttributes"].as_array().unwrap();
    assert!(
        attrs.contains(&json!({ "Key": "idle_timeout.timeout_seconds", "Value": "120" })),
        "{attrs:?}"
    );
    assert_eq!(lb["SecurityGroups"], json!([{ "Ref": "AlbSecurityGroup" }]));
}

#[test]
fn load_balancer_security_group_admits_80_and_443() {
    for https in [false, true] {
        let t = bot_template(https);
        let sg = props(&t, "AlbSecurityGroup");
        assert_eq!(
            ingress_ports(sg),
            [
                (80, "0.0.0.0/0".to_string()),
                (443, "0.0.0.0/0".to_string())
            ]
        );
        // It may only talk to the tasks, on the gateway port.
        assert_eq!(
            sg["SecurityGroupEgress"],
            json!([{ "IpProtocol": "tcp", "FromPort": 18789, "ToPort": 18789, "DestinationSecurityGroupId": { "Ref": "TaskSecurityGroup" }, "Description": "To the OpenClaw gateway only" }])
        );
    }
}

#[test]
fn target_group_checks_health_fast_on_slash_health() {
    let t = http();
    let tg = props(&t, "TargetGroup");
    assert_eq!(tg["HealthCheckPath"], "/health");
    assert_eq!(tg["Matcher"], json!({ "HttpCode": "200" }));
    assert_eq!(tg["HealthCheckIntervalSeconds"], 5);
    assert_eq!(tg["HealthCheckTimeoutSeconds"], 3);
    assert_eq!(tg["HealthyThresholdCount"], 2);
    assert_eq!(tg["UnhealthyThresholdCount"], 3);
    assert_eq!(tg["TargetType"], "ip", "awsvpc tasks register by IP");
    assert_eq!(tg["Port"], 18789);
    assert_eq!(tg["Name"], "clawster-demo-tg");
}

#[test]
fn without_certificate_one_http_listener_forwards() {
    let t = http();
    assert_eq!(
        of_type(&t, "AWS::ElasticLoadBalancingV2::Listener"),
        ["HttpListener"]
    );
    let l = props(&t, "HttpListener");
    assert_eq!(l["Port"], 80);
    assert_eq!(l["Protocol"], "HTTP");
    assert_eq!(
        l["DefaultActions"],
        json!([{ "Type": "forward", "TargetGroupArn": { "Ref": "TargetGroup" } }])
    );
    assert!(
        t["Outputs"]["Url"]["Description"]
            .as_str()
            .unwrap()
            .contains("plaintext"),
        "the template says it is HTTP only"
    );
    assert!(t["Outputs"]["Url"]["Value"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .starts_with("http://"));
}

#[test]
fn with_certificate_https_forwards_and_http_redirects() {
    let t = bot_template(true);
    assert_eq!(
        of_type(&t, "AWS::ElasticLoadBalancingV2::Listener"),
        ["HttpsListener", "HttpListener"]
    );
    let s = props(&t, "HttpsListener");
    assert_eq!(s["Port"], 443);
    assert_eq!(s["Protocol"], "HTTPS");
    assert_eq!(s["Certificates"], json!([{ "CertificateArn": CERT }]));
    assert_eq!(
        s["DefaultActions"],
        json!([{ "Type": "forward", "TargetGroupArn": { "Ref": "TargetGroup" } }])
    );
    assert!(s["SslPolicy"].as_str().unwrap().contains("TLS13"));
    let h = props(&t, "HttpListener");
    assert_eq!(h["Port"], 80);
    assert_eq!(
        h["DefaultActions"],
        json!([{ "Type": "redirect", "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301" } }])
    );
    assert!(t["Outputs"]["Url"]["Value"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
}

#[test]
fn task_security_group_admits_only_the_load_balancer_on_the_gateway_port() {
    let t = http();
    assert!(props(&t, "TaskSecurityGroup")
        .get("SecurityGroupIngress")
        .is_none());
    let ingress = of_type(&t, "AWS::EC2::SecurityGroupIngress");
    assert_eq!(ingress, ["TaskIngressFromAlb"]);
    let i = props(&t, "TaskIngressFromAlb");
    assert_eq!(i["GroupId"], json!({ "Ref": "TaskSecurityGroup" }));
    assert_eq!(
        i["SourceSecurityGroupId"],
        json!({ "Ref": "AlbSecurityGroup" })
    );
    assert_eq!(
        (
            i["IpProtocol"].as_str(),
            i["FromPort"].as_i64(),
            i["ToPort"].as_i64()
        ),
        (Some("tcp"), Some(18789), Some(18789))
    );
    assert!(i.get("CidrIp").is_none());
    // The service puts its tasks in this group, and only this group.
    let net = &props(&t, "Service")["NetworkConfiguration"]["AwsvpcConfiguration"];
    assert_eq!(
        net["SecurityGroups"],
        json!([{ "Ref": "TaskSecurityGroup" }])
    );
    assert_eq!(net["AssignPublicIp"], "DISABLED");
}

#[test]
fn hosts_have_their_own_security_group_with_no_inbound_rules() {
    let t = http();
    let sg = props(&t, "InstanceSecurityGroup");
    assert!(sg.get("SecurityGroupIngress").is_none());
    for i in of_type(&t, "AWS::EC2::SecurityGroupIngress") {
        assert_ne!(
            props(&t, &i)["GroupId"],
            json!({ "Ref": "InstanceSecurityGroup" })
        );
    }
    let lt = &props(&t, "LaunchTemplate")["LaunchTemplateData"];
    assert_eq!(
        lt["SecurityGroupIds"],
        json!([{ "Ref": "InstanceSecurityGroup" }])
    );
}

#[test]
fn launch_template_uses_the_ecs_optimized_al2023_arm64_parameter_by_default() {
    let t = http();
    let lt = &props(&t, "LaunchTemplate")["LaunchTemplateData"];
    assert_eq!(lt["ImageId"], json!({ "Ref": "EcsAmiId" }));
    let p = &t["Parameters"]["EcsAmiId"];
    assert_eq!(p["Type"], "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>");
    assert_eq!(
        p["Default"],
        "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    );
    assert_eq!(lt["InstanceType"], "t4g.small");
}

/// `--instance-type t3.small` keeps x86_64 available: the x86_64 AMI parameter and agent.
#[test]
fn an_x86_type_gets_the_x86_ami_and_agent() {
    let mut o = bot_options("demo", "us-east-1", None);
    o.instance_type = "t3.small".parse().unwrap();
    let release = release();
    let t = bot::template(&o, &release);
    assert_eq!(
        t["Parameters"]["EcsAmiId"]["Default"],
        "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    );
    let lt = &props(&t, "LaunchTemplate")["LaunchTemplateData"];
    assert_eq!(lt["InstanceType"], "t3.small");
    let script = user_data_script(&lt["UserData"]);
    assert!(
        script.contains("/artifacts/0.1.0/x86_64-unknown-linux-musl/clawster-agent"),
        "{script}"
    );
    assert!(script.contains(&release.agent(Arch::X86_64).sha256));
    assert!(!script.contains(&release.agent(Arch::Arm64).sha256));
}

#[test]
fn launch_template_requires_imdsv2_with_hop_limit_2() {
    let m = props(&http(), "LaunchTemplate")["LaunchTemplateData"]["MetadataOptions"].clone();
    assert_eq!(
        m,
        json!({ "HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 2 })
    );
}

#[test]
fn launch_template_has_no_key_pair() {
    let t = http();
    assert!(props(&t, "LaunchTemplate")["LaunchTemplateData"]
        .get("KeyName")
        .is_none());
    assert!(!t.to_string().contains("KeyName"));
}

#[test]
fn root_volume_is_encrypted_gp3_30_gb() {
    let b = props(&http(), "LaunchTemplate")["LaunchTemplateData"]["BlockDeviceMappings"].clone();
    assert_eq!(b[0]["DeviceName"], "/dev/xvda");
    assert_eq!(b[0]["Ebs"]["Encrypted"], true);
    assert_eq!(b[0]["Ebs"]["VolumeType"], "gp3");
    assert_eq!(b[0]["Ebs"]["VolumeSize"], 30);
}

#[test]
fn user_data_fetches_checks_and_runs_the_agent_bootstrap() {
    let t = http();
    let release = release();
    let ud = &props(&t, "LaunchTemplate")["LaunchTemplateData"]["UserData"];
    assert_eq!(
        ud["Fn::Base64"]["Fn::Sub"][1],
        json!({ "Bucket": { "Fn::ImportValue": { "Fn::Sub": "${SharedStackName}-ArtifactsBucketName" } } })
    );
    let script = user_data_script(ud);
    assert!(
        script.contains("amazonaws.com/artifacts/0.1.0/aarch64-unknown-linux-musl/clawster-agent"),
        "{script}"
    );
    assert!(script.contains(&format!(
        "echo \"{}  $dst.part\" | sha256sum --check",
        release.agent(Arch::Arm64).sha256
    )));
    assert!(script.contains("dst=/usr/local/bin/clawster-agent"));
    let check = script.find("sha256sum --check").unwrap();
    let run = script
        .find("exec \"$dst\" bootstrap --cluster clawster-demo --baseline ecs-host")
        .expect("runs bootstrap for the cluster");
    assert!(check < run);
    // The bucket (bound by Fn::Sub to the shared stack's export) and the bot name tell the agent
    // where the bot's state replica lives.
    assert!(script.trim_end().ends_with(
        "exec \"$dst\" bootstrap --cluster clawster-demo --baseline ecs-host --state-bucket ${Bucket} --bot demo"
    ));
    for installer in ["yum ", "dnf ", "apt-get", "rpm ", "pip "] {
        assert!(
            !script.contains(installer),
            "no package installs at boot ({installer})"
        );
    }
    assert!(
        code_lines(&script).len() <= 20,
        "a few lines, got {}",
        code_lines(&script).len()
    );
    assert_eq!(props(&t, "Cluster")["ClusterName"], "clawster-demo");
}

#[test]
fn auto_scaling_group_starts_with_desired_capacity_0() {
    let t = http();
    let asg = props(&t, "AutoScalingGroup");
    assert_eq!(asg["DesiredCapacity"], "0");
    assert_eq!(asg["MinSize"], "0");
    assert_eq!(
        asg["NewInstancesProtectedFromScaleIn"], true,
        "needed by managed termination protection"
    );
    assert_eq!(
        asg["VPCZoneIdentifier"],
        json!([
            { "Fn::ImportValue": { "Fn::Sub": "${SharedStackName}-PrivateSubnet1Id" } },
            { "Fn::ImportValue": { "Fn::Sub": "${SharedStackName}-PrivateSubnet2Id" } }
        ])
    );
}

#[test]
fn capacity_provider_manages_scaling_termination_protection_and_draining() {
    let t = http();
    let p = &props(&t, "CapacityProvider")["AutoScalingGroupProvider"];
    assert_eq!(
        p["AutoScalingGroupArn"],
        json!({ "Ref": "AutoScalingGroup" })
    );
    assert_eq!(p["ManagedScaling"]["Status"], "ENABLED");
    assert_eq!(p["ManagedTerminationProtection"], "ENABLED");
    assert_eq!(p["ManagedDraining"], "ENABLED");
    let a = props(&t, "ClusterCapacityProviders");
    assert_eq!(a["Cluster"], json!({ "Ref": "Cluster" }));
    assert_eq!(
        a["CapacityProviders"],
        json!([{ "Ref": "CapacityProvider" }])
    );
}

#[test]
fn cluster_has_container_insights() {
    let c = props(&http(), "Cluster").clone();
    assert_eq!(
        c["ClusterSettings"],
        json!([{ "Name": "containerInsights", "Value": "enabled" }])
    );
}

#[test]
fn task_definition_is_awsvpc_with_the_docker_socket() {
    let t = http();
    let td = props(&t, "TaskDefinition");
    assert_eq!(td["NetworkMode"], "awsvpc");
    assert_eq!(
        td["Volumes"],
        json!([
            { "Name": "docker-socket", "Host": { "SourcePath": "/run/clawster/docker.sock" } },
            { "Name": "docker-cli", "Host": { "SourcePath": "/usr/bin/docker" } },
            { "Name": "openclaw-state", "Host": { "SourcePath": "/var/lib/clawster/openclaw" } }
        ]),
        "the docker guard's socket, never the host's /var/run/docker.sock"
    );
    let c = &td["ContainerDefinitions"][0];
    assert_eq!(
        c["MountPoints"],
        json!([
            { "SourceVolume": "docker-socket", "ContainerPath": "/var/run/docker.sock", "ReadOnly": false },
            { "SourceVolume": "docker-cli", "ContainerPath": "/usr/local/bin/docker", "ReadOnly": true },
            { "SourceVolume": "openclaw-state", "ContainerPath": "/home/openclaw/.openclaw", "ReadOnly": false }
        ])
    );
    assert_eq!(
        c["PortMappings"],
        json!([{ "ContainerPort": 18789, "Protocol": "tcp" }])
    );
    assert_eq!(
        td["TaskRoleArn"],
        json!({ "Fn::ImportValue": { "Fn::Sub": "${SharedStackName}-TaskRoleArn" } })
    );
    assert_eq!(c["Privileged"], false);
}

#[test]
fn one_secret_holds_config_and_token_by_full_arn() {
    let t = http();
    let c = &props(&t, "TaskDefinition")["ContainerDefinitions"][0];
    assert_eq!(
        c["Secrets"],
        json!([{ "Name": "OPENCLAW_CONFIG", "ValueFrom": { "Ref": "OpenClawConfigSecretArn" } }])
    );
    // The token lives in the configuration secret (gateway.auth.token): no second secret.
    let secrets: Vec<&String> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SecretsManager::Secret")
        .map(|(k, _)| k)
        .collect();
    assert!(secrets.is_empty(), "{secrets:?}");
    assert!(t["Outputs"].get("GatewayTokenSecretArn").is_none());
    let pattern = t["Parameters"]["OpenClawConfigSecretArn"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert!(
        pattern.ends_with(":secret:clawster/demo/config-[A-Za-z0-9]{6}$"),
        "full ARN with suffix: {pattern}"
    );
    assert!(
        c.get("Environment").is_none(),
        "nothing secret-looking as plain environment"
    );
}

#[test]
fn container_runs_the_prebuilt_image_by_digest_hardened() {
    let t = http();
    let c = &props(&t, "TaskDefinition")["ContainerDefinitions"][0];
    // The image is a parameter that only accepts a reference by digest.
    assert_eq!(c["Image"], json!({ "Ref": "BotImage" }));
    let pattern = t["Parameters"]["BotImage"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert!(pattern.ends_with("@sha256:[0-9a-f]{64}$"), "{pattern}");
    assert!(
        t["Parameters"]["BotImage"].get("Default").is_none(),
        "no default image"
    );
    // Nothing is installed at start: the image's entry point runs the gateway.
    assert!(
        c.get("EntryPoint").is_none(),
        "the image's entry point, no sh -c"
    );
    assert_eq!(c["Command"], json!(["--port", "18789"]));
    let text = c.to_string();
    for gone in ["npm install", "apt-get", "sh -c"] {
        assert!(!text.contains(gone), "{gone} in the container: {text}");
    }
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["ReadonlyRootFilesystem"], true);
    assert_eq!(c["DockerSecurityOptions"], json!(["no-new-privileges"]));
    let lp = &c["LinuxParameters"];
    assert_eq!(lp["Capabilities"], json!({ "Drop": ["ALL"] }));
    assert!(lp["Capabilities"].get("Add").is_none());
    assert_eq!(lp["InitProcessEnabled"], true);
    let tmpfs: Vec<&str> = lp["Tmpfs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ContainerPath"].as_str().unwrap())
        .collect();
    assert_eq!(tmpfs, ["/tmp", "/home/openclaw"]);
    for t in lp["Tmpfs"].as_array().unwrap() {
        let opts = t["MountOptions"].to_string();
        assert!(opts.contains("nosuid") && opts.contains("nodev"), "{t}");
    }
    assert!(
        lp["Tmpfs"][1]["MountOptions"]
            .to_string()
            .contains("uid=1000"),
        "the home tmpfs belongs to the task's user"
    );
    // The state directory is the one writable persistent mount.
    let writable: Vec<&str> = c["MountPoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["ReadOnly"] == false && m["SourceVolume"] != "docker-socket")
        .map(|m| m["ContainerPath"].as_str().unwrap())
        .collect();
    assert_eq!(writable, ["/home/openclaw/.openclaw"]);
    assert_eq!(c["StopTimeout"], 120, "the most ECS allows");
    let hc = &c["HealthCheck"];
    assert_eq!(hc["Command"][0], "CMD");
    assert_eq!(hc["Command"][1], "/usr/local/bin/node");
    assert!(hc["Command"][3]
        .as_str()
        .unwrap()
        .contains("http://127.0.0.1:18789/healthz"));
    assert!(hc["StartPeriod"].as_u64().unwrap() >= 30);
}

#[test]
fn task_user_group_is_the_guard_sockets_group() {
    let socket = include_str!("../../systemd/clawster-docker-guard.socket");
    let group = socket
        .lines()
        .find_map(|l| l.strip_prefix("SocketGroup="))
        .expect("SocketGroup in the guard's socket unit");
    let user = clawsterctl::bot::TASK_USER;
    assert_eq!(
        user.split_once(':').map(|(_, g)| g),
        Some(group),
        "task user {user} must have the guard socket's group {group}"
    );
    assert!(socket.contains("SocketMode=0660"));
}

#[test]
fn image_pins_the_openclaw_release_the_guard_expects() {
    let pkg: serde_json::Value =
        serde_json::from_str(include_str!("../../packaging/image/openclaw/package.json")).unwrap();
    assert_eq!(
        pkg["dependencies"]["openclaw"],
        clawsterctl::bot::OPENCLAW_VERSION
    );
}

#[test]
fn logs_go_to_the_bots_log_group() {
    let t = http();
    let log = &props(&t, "TaskDefinition")["ContainerDefinitions"][0]["LogConfiguration"];
    assert_eq!(log["LogDriver"], "awslogs");
    assert_eq!(
        log["Options"]["awslogs-group"],
        json!({ "Ref": "LogGroup" })
    );
    assert_eq!(props(&t, "LogGroup")["LogGroupName"], "/clawster/demo");
    assert_eq!(props(&t, "LogGroup")["RetentionInDays"], 30);
}

#[test]
fn openclaw_config_is_local_on_the_lan_trusting_the_vpc() {
    let c = clawsterctl::openclaw::config(GatewayPort::DEFAULT, clawsterctl::shared::VPC_CIDR);
    assert_eq!(c["gateway"]["mode"], "local");
    assert_eq!(c["gateway"]["bind"], "lan");
    assert_eq!(c["gateway"]["trustedProxies"], json!(["10.0.0.0/16"]));
    // The VPC range trusted is the one the shared stack creates.
    assert_eq!(
        props(&shared_template("us-east-1"), "Vpc")["CidrBlock"],
        c["gateway"]["trustedProxies"][0]
    );
}

#[test]
fn service_starts_at_zero_with_circuit_breaker_rollback() {
    let t = http();
    let s = props(&t, "Service");
    assert_eq!(s["DesiredCount"], 0);
    assert_eq!(
        s["DeploymentConfiguration"]["DeploymentCircuitBreaker"],
        json!({ "Enable": true, "Rollback": true })
    );
    assert_eq!(
        s["LoadBalancers"],
        json!([{ "ContainerName": "openclaw", "ContainerPort": 18789, "TargetGroupArn": { "Ref": "TargetGroup" } }])
    );
    let deps = t["Resources"]["Service"]["DependsOn"].as_array().unwrap();
    assert!(
        deps.contains(&json!("HttpListener")),
        "target group must be on a listener first"
    );
}

#[test]
fn execution_role_reads_only_this_bots_secrets() {
    let t = http();
    let role = props(&t, "ExecutionRole");
    assert!(
        role.get("ManagedPolicyArns").is_none(),
        "no broad managed policy"
    );
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let secrets: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Action"].to_string().contains("secretsmanager"))
        .collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["Action"], "secretsmanager:GetSecretValue");
    // Exactly the one secret the task definition injects, by full ARN: no prefix, no wildcard.
    assert_eq!(
        secrets[0]["Resource"],
        json!({ "Ref": "OpenClawConfigSecretArn" })
    );
    let injected: Vec<Value> = props(&t, "TaskDefinition")["ContainerDefinitions"][0]["Secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ValueFrom"].clone())
        .collect();
    assert_eq!(json!(injected), json!([secrets[0]["Resource"]]));
    assert!(!role.to_string().contains("secret:*"), "{role}");
    assert_eq!(
        props(&t, "TaskDefinition")["ExecutionRoleArn"],
        json!({ "Fn::GetAtt": ["ExecutionRole", "Arn"] })
    );
}

#[test]
fn gateway_port_and_instance_type_options_reach_every_place() {
    let mut o = bot_options("porty", "us-east-1", None);
    o.gateway_port = "8080".parse().unwrap();
    o.instance_type = "t3.medium".parse().unwrap();
    let t = bot::template(&o, &release());
    assert_eq!(props(&t, "TargetGroup")["Port"], 8080);
    assert_eq!(props(&t, "TaskIngressFromAlb")["FromPort"], 8080);
    assert_eq!(
        props(&t, "AlbSecurityGroup")["SecurityGroupEgress"][0]["ToPort"],
        8080
    );
    let c = &props(&t, "TaskDefinition")["ContainerDefinitions"][0];
    assert_eq!(c["PortMappings"][0]["ContainerPort"], 8080);
    assert_eq!(c["Command"], json!(["--port", "8080"]));
    assert!(c["HealthCheck"]["Command"][3]
        .as_str()
        .unwrap()
        .contains("127.0.0.1:8080/healthz"));
    assert_eq!(
        props(&t, "Service")["LoadBalancers"][0]["ContainerPort"],
        8080
    );
    assert_eq!(
        props(&t, "LaunchTemplate")["LaunchTemplateData"]["InstanceType"],
        "t3.medium"
    );
}

#[test]
fn names_fit_aws_limits_for_the_longest_bot_name() {
    let t = bot::template(
        &bot_options("abcdefghij0123456789", "us-east-1", None),
        &release(),
    );
    for (id, key, limit) in [
        ("LoadBalancer", "Name", 32),
        ("TargetGroup", "Name", 32),
        ("Cluster", "ClusterName", 255),
    ] {
        let n = props(&t, id)[key].as_str().unwrap();
        assert!(n.len() <= limit, "{id}.{key} {n} is {} > {limit}", n.len());
    }
    assert_eq!(props(&t, "TargetGroup")["Name"].as_str().unwrap().len(), 32);
}

#[test]
fn each_host_has_its_own_role_scoped_to_its_state_prefix() {
    let t = http();
    assert_eq!(
        props(&t, "LaunchTemplate")["LaunchTemplateData"]["IamInstanceProfile"],
        json!({ "Arn": { "Fn::GetAtt": ["HostInstanceProfile", "Arn"] } })
    );
    assert_eq!(
        props(&t, "HostInstanceProfile")["Roles"],
        json!([{ "Ref": "HostRole" }])
    );
    let role = props(&t, "HostRole");
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
    // The managed policies of the shared instance role it replaces.
    let shared = common::shared_template("us-east-1");
    assert_eq!(
        role["ManagedPolicyArns"],
        props(&shared, "EcsInstanceRole")["ManagedPolicyArns"]
    );
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let bucket = json!({ "Bucket": { "Fn::ImportValue": { "Fn::Sub": "${SharedStackName}-ArtifactsBucketName" } } });
    let arn = |rest: &str| json!({ "Fn::Sub": [format!("arn:${{AWS::Partition}}:s3:::${{Bucket}}{rest}"), bucket.clone()] });
    assert_eq!(
        statements[0],
        json!({ "Sid": "ReadReleaseArtifacts", "Effect": "Allow", "Action": "s3:GetObject", "Resource": arn("/artifacts/*") })
    );
    assert_eq!(
        statements[1],
        json!({
            "Sid": "ThisBotsStateObjects", "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
            "Resource": arn("/state/demo/*")
        })
    );
    assert_eq!(
        statements[2],
        json!({
            "Sid": "ListOnlyThisBotsState", "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
            "Resource": arn(""),
            "Condition": { "StringLike": { "s3:prefix": ["state/demo/", "state/demo/*"] } }
        })
    );
    assert_eq!(statements.len(), 3);
    // Nothing that erases history, and no wildcard action.
    let text = role.to_string();
    for bad in ["DeleteObjectVersion", "s3:*", "\"*\""] {
        assert!(!text.contains(bad), "{bad} in {text}");
    }
}

#[test]
fn the_task_gets_no_access_to_the_state() {
    let t = http();
    // The task runs with the shared stack's empty run-time role.
    assert_eq!(
        props(&t, "TaskDefinition")["TaskRoleArn"],
        json!({ "Fn::ImportValue": { "Fn::Sub": "${SharedStackName}-TaskRoleArn" } })
    );
    // Only the host role mentions the state prefix or grants S3 at all.
    for (id, r) in t["Resources"].as_object().unwrap() {
        let text = r.to_string();
        if id != "HostRole" {
            assert!(!text.contains("\"s3:"), "{id} grants S3: {text}");
            assert!(!text.contains("state/demo"), "{id} names the state: {text}");
        }
    }
}

#[test]
fn every_termination_waits_for_the_hosts_final_state_pass() {
    let t = http();
    let hooks = &props(&t, "AutoScalingGroup")["LifecycleHookSpecificationList"];
    assert_eq!(
        hooks,
        &json!([{
            "LifecycleHookName": clawsterctl::bot::host::LIFECYCLE_HOOK,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "HeartbeatTimeout": 300,
            "DefaultResult": "CONTINUE"
        }])
    );
    // The hook outlasts the task's stop timeout, so the gateway closes its databases first.
    let heartbeat = hooks[0]["HeartbeatTimeout"].as_u64().unwrap();
    assert!(heartbeat > u64::from(clawsterctl::bot::STOP_TIMEOUT_SECONDS));
    // The host may complete the hook of its own group only; finding that group is read-only.
    let policy = props(&t, "HostLifecyclePolicy");
    assert_eq!(policy["Roles"], json!([{ "Ref": "HostRole" }]));
    let statements = policy["PolicyDocument"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert_eq!(
        statements[0]["Action"],
        "autoscaling:DescribeAutoScalingInstances"
    );
    assert_eq!(
        statements[1]["Action"],
        "autoscaling:CompleteLifecycleAction"
    );
    let arn = statements[1]["Resource"]["Fn::Sub"].as_str().unwrap();
    assert!(
        arn.ends_with(":autoScalingGroup:*:autoScalingGroupName/${AutoScalingGroup}"),
        "{arn}"
    );
}

#[test]
fn the_hook_and_container_names_are_the_ones_the_host_agent_uses() {
    use clawster_agent::state::lifecycle;
    assert_eq!(
        bot::host::LIFECYCLE_HOOK,
        clawster_agent::state::LIFECYCLE_HOOK
    );
    assert_eq!(
        u64::from(bot::host::LIFECYCLE_HOOK_TIMEOUT_SECONDS),
        lifecycle::HEARTBEAT_SECONDS
    );
    assert_eq!(bot::CONTAINER_NAME, lifecycle::BOT_CONTAINER);
}
