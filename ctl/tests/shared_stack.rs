//! One test per property of the shared stack, read from the rendered template.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

fn shared() -> Value {
    shared_template("us-east-1")
}

#[test]
fn vpc_is_10_0_0_0_16() {
    let t = shared();
    assert_eq!(kind(&t, "Vpc"), "AWS::EC2::VPC");
    assert_eq!(props(&t, "Vpc")["CidrBlock"], "10.0.0.0/16");
}

#[test]
fn two_public_and_two_private_subnets_in_two_azs() {
    let t = shared();
    let subnets = of_type(&t, "AWS::EC2::Subnet");
    assert_eq!(
        subnets,
        [
            "PublicSubnet1",
            "PublicSubnet2",
            "PrivateSubnet1",
            "PrivateSubnet2"
        ]
    );
    for (public, private, az) in [
        ("PublicSubnet1", "PrivateSubnet1", 0),
        ("PublicSubnet2", "PrivateSubnet2", 1),
    ] {
        for s in [public, private] {
            assert_eq!(
                props(&t, s)["AvailabilityZone"],
                json!({ "Fn::Select": [az, { "Fn::GetAZs": "" }] }),
                "{s}"
            );
            assert_eq!(props(&t, s)["VpcId"], json!({ "Ref": "Vpc" }));
            assert_eq!(
                props(&t, s)["MapPublicIpOnLaunch"],
                false,
                "{s}: nothing gets a public IP by accident"
            );
        }
    }
    let cidrs: Vec<&str> = subnets
        .iter()
        .map(|s| props(&t, s)["CidrBlock"].as_str().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<_> = cidrs.iter().collect();
    assert_eq!(unique.len(), 4, "{cidrs:?}");
    assert!(cidrs.iter().all(|c| c.starts_with("10.0.")), "{cidrs:?}");
}

#[test]
fn internet_gateway_is_attached_and_public_subnets_route_to_it() {
    let t = shared();
    assert_eq!(kind(&t, "InternetGateway"), "AWS::EC2::InternetGateway");
    let att = props(&t, "InternetGatewayAttachment");
    assert_eq!(
        att["InternetGatewayId"],
        json!({ "Ref": "InternetGateway" })
    );
    let route = props(&t, "PublicDefaultRoute");
    assert_eq!(route["RouteTableId"], json!({ "Ref": "PublicRouteTable" }));
    assert_eq!(route["DestinationCidrBlock"], "0.0.0.0/0");
    assert_eq!(route["GatewayId"], json!({ "Ref": "InternetGateway" }));
    assert_eq!(
        t["Resources"]["PublicDefaultRoute"]["DependsOn"],
        json!(["InternetGatewayAttachment"])
    );
}

#[test]
fn every_subnet_is_on_its_route_table() {
    let t = shared();
    let assocs = of_type(&t, "AWS::EC2::SubnetRouteTableAssociation");
    assert_eq!(assocs.len(), 4);
    for kind in ["Public", "Private"] {
        for n in 1..=2 {
            let a = props(&t, &format!("{kind}Subnet{n}RouteTableAssociation"));
            assert_eq!(a["SubnetId"], json!({ "Ref": format!("{kind}Subnet{n}") }));
            assert_eq!(
                a["RouteTableId"],
                json!({ "Ref": format!("{kind}RouteTable") })
            );
        }
    }
}

#[test]
fn no_interface_vpc_endpoints() {
    let t = shared();
    let endpoints = of_type(&t, "AWS::EC2::VPCEndpoint");
    assert_eq!(
        endpoints,
        ["S3GatewayEndpoint"],
        "only the free S3 gateway endpoint"
    );
    for e in endpoints {
        assert_eq!(props(&t, &e)["VpcEndpointType"], "Gateway");
    }
}

#[test]
fn s3_gateway_endpoint_serves_the_private_route_table() {
    let t = shared();
    let e = props(&t, "S3GatewayEndpoint");
    assert_eq!(
        e["ServiceName"],
        json!({ "Fn::Sub": "com.amazonaws.${AWS::Region}.s3" })
    );
    let tables = e["RouteTableIds"].as_array().unwrap();
    assert!(
        tables.contains(&json!({ "Ref": "PrivateRouteTable" })),
        "{tables:?}"
    );
}

#[test]
fn nat_instance_is_a_t4g_nano_on_the_al2023_arm64_parameter() {
    let t = shared();
    let nat = props(&t, "NatInstance");
    assert_eq!(nat["InstanceType"], "t4g.nano");
    assert_eq!(nat["ImageId"], json!({ "Ref": "NatAmiId" }));
    let p = &t["Parameters"]["NatAmiId"];
    assert_eq!(p["Type"], "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>");
    assert_eq!(
        p["Default"],
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    );
    assert_eq!(nat["SubnetId"], json!({ "Ref": "PublicSubnet1" }));
}

#[test]
fn nat_instance_does_not_check_source_and_destination() {
    assert_eq!(props(&shared(), "NatInstance")["SourceDestCheck"], false);
}

#[test]
fn nat_instance_cannot_be_terminated_through_the_api() {
    assert_eq!(
        props(&shared(), "NatInstance")["DisableApiTermination"],
        true
    );
}

#[test]
fn nat_instance_has_no_key_pair() {
    let t = shared();
    assert!(props(&t, "NatInstance").get("KeyName").is_none());
    assert!(!t.to_string().contains("KeyName"));
}

#[test]
fn nat_instance_requires_imdsv2() {
    let t = shared();
    let m = &props(&t, "NatInstance")["MetadataOptions"];
    assert_eq!(m["HttpTokens"], "required");
    assert_eq!(m["HttpEndpoint"], "enabled");
}

#[test]
fn nat_security_group_admits_only_http_and_https_from_the_vpc() {
    let t = shared();
    let sg = props(&t, "NatSecurityGroup");
    let ingress = sg["SecurityGroupIngress"].as_array().unwrap();
    let rules: Vec<(i64, i64, &str, &str)> = ingress
        .iter()
        .map(|r| {
            (
                r["FromPort"].as_i64().unwrap(),
                r["ToPort"].as_i64().unwrap(),
                r["IpProtocol"].as_str().unwrap(),
                r["CidrIp"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (80, 80, "tcp", "10.0.0.0/16"),
            (443, 443, "tcp", "10.0.0.0/16")
        ]
    );
    assert!(
        of_type(&t, "AWS::EC2::SecurityGroupIngress").is_empty(),
        "no ingress added elsewhere"
    );
}

#[test]
fn elastic_ip_is_bound_by_instance_id() {
    let t = shared();
    assert_eq!(
        props(&t, "NatElasticIp")["InstanceId"],
        json!({ "Ref": "NatInstance" })
    );
    assert_eq!(props(&t, "NatElasticIp")["Domain"], "vpc");
    assert!(of_type(&t, "AWS::EC2::EIPAssociation").is_empty());
}

#[test]
fn private_default_route_goes_to_the_nat_instance() {
    let r = props(&shared(), "PrivateDefaultRoute").clone();
    assert_eq!(r["RouteTableId"], json!({ "Ref": "PrivateRouteTable" }));
    assert_eq!(r["DestinationCidrBlock"], "0.0.0.0/0");
    assert_eq!(r["InstanceId"], json!({ "Ref": "NatInstance" }));
}

#[test]
fn system_status_check_alarm_recovers_the_nat_instance() {
    let a = props(&shared(), "NatRecoveryAlarm").clone();
    assert_eq!(a["Namespace"], "AWS/EC2");
    assert_eq!(a["MetricName"], "StatusCheckFailed_System");
    assert_eq!(
        a["Dimensions"],
        json!([{ "Name": "InstanceId", "Value": { "Ref": "NatInstance" } }])
    );
    assert_eq!(a["Period"], 60);
    assert_eq!(a["EvaluationPeriods"], 2);
    assert_eq!(a["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(a["Threshold"], 0);
    assert_eq!(
        a["AlarmActions"],
        json!([{ "Fn::Sub": "arn:${AWS::Partition}:automate:${AWS::Region}:ec2:recover" }])
    );
}

#[test]
fn nat_user_data_fetches_checks_installs_and_starts_the_nat_agent() {
    let t = shared();
    let release = release();
    let ud = &props(&t, "NatInstance")["UserData"];
    assert_eq!(
        ud["Fn::Base64"]["Fn::Sub"][1],
        json!({ "Bucket": { "Ref": "ArtifactsBucket" } })
    );
    let script = user_data_script(ud);
    assert!(script.starts_with("#!/bin/bash\n"));
    let key = "/artifacts/0.1.0/aarch64-unknown-linux-musl/clawster-nat-agent";
    assert!(
        script.contains(&format!("amazonaws.com{key}")),
        "downloads the arm64 NAT agent:\n{script}"
    );
    let pin = format!(
        "echo \"{}  $dst.part\" | sha256sum --check",
        release.nat_agent.sha256
    );
    assert!(script.contains(&pin), "checks the manifest's SHA256");
    // The hash check comes before the binary is made executable and moved into place.
    let check = script.find("sha256sum --check").unwrap();
    assert!(check < script.find("chmod 0755").unwrap() && check < script.find("mv -f").unwrap());
    assert!(script.contains("dst=/usr/local/bin/clawster-nat-agent"));
    assert!(script.contains("cat > /etc/systemd/system/clawster-nat-agent.service <<'UNIT'"));
    assert!(script.contains("ExecStart=/usr/local/bin/clawster-nat-agent run"));
    assert!(script.contains("systemctl enable clawster-nat-agent.service"));
    assert!(script.contains("systemctl start --no-block clawster-nat-agent.service"));
    for installer in ["yum ", "dnf ", "apt-get", "rpm ", "pip "] {
        assert!(
            !script.contains(installer),
            "no package installs at boot ({installer})"
        );
    }
    // A few lines of script; the unit file it writes is data between the heredoc markers.
    let start = script.find("<<'UNIT'\n").unwrap();
    let end = script.find("\nUNIT\n").unwrap();
    let without_unit = format!("{}{}", &script[..start], &script[end..]);
    let lines = code_lines(&without_unit);
    assert!(
        lines.len() <= 20,
        "a few lines, got {}: {lines:#?}",
        lines.len()
    );
    // The unit written is the one we ship (systemd/clawster-nat-agent.service), with Fn::Sub's
    // escape for a literal `${`.
    assert_eq!(
        &script[start + "<<'UNIT'\n".len()..end + 1],
        clawsterctl::userdata::NAT_AGENT_UNIT.replace("${", "${!")
    );
}

#[test]
fn ecs_instance_role_has_ssm_core() {
    let t = shared();
    let role = props(&t, "EcsInstanceRole");
    let managed = role["ManagedPolicyArns"].as_array().unwrap();
    assert!(managed.contains(
        &json!({ "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore" })
    ));
    assert!(managed.contains(&json!({ "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role" })));
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
    assert_eq!(
        props(&t, "EcsInstanceProfile")["Roles"],
        json!([{ "Ref": "EcsInstanceRole" }])
    );
}

#[test]
fn task_execution_role_is_for_ecs_tasks() {
    let role = props(&shared(), "TaskExecutionRole").clone();
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ecs-tasks.amazonaws.com"
    );
    assert_eq!(
        role["ManagedPolicyArns"],
        json!([{ "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy" }])
    );
    assert!(
        role.get("Policies").is_none(),
        "no secrets access in the shared role"
    );
}

#[test]
fn task_role_is_empty() {
    let role = props(&shared(), "TaskRole").clone();
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ecs-tasks.amazonaws.com"
    );
    assert!(
        role.get("Policies").is_none() && role.get("ManagedPolicyArns").is_none(),
        "{role}"
    );
}

#[test]
fn flow_logs_record_rejects_into_a_30_day_group_through_their_role() {
    let t = shared();
    let f = props(&t, "VpcFlowLog");
    assert_eq!(f["ResourceId"], json!({ "Ref": "Vpc" }));
    assert_eq!(f["ResourceType"], "VPC");
    assert_eq!(f["TrafficType"], "REJECT");
    assert_eq!(f["LogDestinationType"], "cloud-watch-logs");
    assert_eq!(f["LogGroupName"], json!({ "Ref": "FlowLogGroup" }));
    assert_eq!(
        f["DeliverLogsPermissionArn"],
        json!({ "Fn::GetAtt": ["FlowLogRole", "Arn"] })
    );
    assert_eq!(props(&t, "FlowLogGroup")["RetentionInDays"], 30);
    let role = props(&t, "FlowLogRole");
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "vpc-flow-logs.amazonaws.com"
    );
    let actions = &role["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"];
    assert!(actions
        .as_array()
        .unwrap()
        .contains(&json!("logs:PutLogEvents")));
}

#[test]
fn artifacts_bucket_is_private_encrypted_and_versioned() {
    let t = shared();
    let b = props(&t, "ArtifactsBucket");
    let block = &b["PublicAccessBlockConfiguration"];
    for k in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[k], true, "{k}");
    }
    let sse = &b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        ["ServerSideEncryptionByDefault"];
    assert_eq!(sse["SSEAlgorithm"], "aws:kms");
    assert_eq!(b["VersioningConfiguration"]["Status"], "Enabled");
    // Replaced releases go after 90 days, replaced or deleted state after the retention that
    // bounds restore --at and an idle bot's growth; each rule keeps to its own prefix.
    let rules = b["LifecycleConfiguration"]["Rules"].as_array().unwrap();
    assert_eq!(rules[0]["Prefix"], "artifacts/");
    assert_eq!(
        rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"],
        90
    );
    assert_eq!(rules[1]["Id"], "expire-replaced-state");
    assert_eq!(rules[1]["Prefix"], "state/");
    assert_eq!(
        rules[1]["NoncurrentVersionExpiration"]["NoncurrentDays"],
        clawsterctl::state::RETENTION_DAYS
    );
    assert_eq!(clawsterctl::state::RETENTION_DAYS, 14);
    assert_eq!(rules[1]["ExpiredObjectDeleteMarker"], true);
    assert!(
        rules.iter().all(|r| r.get("ExpirationInDays").is_none()),
        "current objects never expire"
    );
    let policy = &props(&t, "ArtifactsBucketPolicy")["PolicyDocument"]["Statement"];
    for s in policy.as_array().unwrap() {
        assert_eq!(s["Effect"], "Deny", "the bucket policy only denies: {s}");
    }
}

#[test]
fn instance_roles_read_only_the_artifacts_prefix() {
    let t = shared();
    let want = json!({
        "PolicyName": "read-release-artifacts",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": { "Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactsBucket}/artifacts/*" }
            }]
        }
    });
    for role in ["EcsInstanceRole", "NatInstanceRole"] {
        assert_eq!(props(&t, role)["Policies"], json!([want.clone()]), "{role}");
    }
    // Nothing else in the template grants S3 access.
    let s3_grants = t.to_string().matches("\"s3:").count();
    assert_eq!(
        s3_grants, 3,
        "two GetObject grants and the bucket policy's deny"
    );
}

/// The script lines of an SSM document resource, and a check that every parameter is
/// constrained and reaches the script as an environment variable, never as text.
fn document_script(t: &Value, id: &str, params: &[&str]) -> String {
    let d = props(t, id);
    assert_eq!(d["DocumentType"], "Command");
    assert_eq!(d["DocumentFormat"], "JSON");
    assert_eq!(d["TargetType"], "/AWS::EC2::Instance");
    let c = &d["Content"];
    assert_eq!(c["schemaVersion"], "2.2");
    let p = c["parameters"].as_object().unwrap();
    assert_eq!(p.keys().collect::<Vec<_>>(), params);
    for (name, p) in p {
        assert!(
            p["allowedPattern"]
                .as_str()
                .is_some_and(|s| s.starts_with('^') && s.ends_with('$')),
            "{name}"
        );
        assert_eq!(
            p["interpolationType"], "ENV_VAR",
            "{name} reaches the script as data"
        );
    }
    let script = c["mainSteps"][0]["inputs"]["runCommand"]
        .as_array()
        .unwrap();
    let text: Vec<&str> = script.iter().map(|l| l.as_str().unwrap()).collect();
    let text = text.join("\n");
    assert!(!text.contains("{{"), "no textual parameter interpolation");
    assert!(text.starts_with("set -eu\n"));
    // Each parameter appears only as a double-quoted variable.
    for name in params {
        let var = format!("$SSM_{name}");
        for (i, _) in text.match_indices(&var) {
            let before = &text[..i];
            assert!(
                before.ends_with('"') || before.ends_with('=') || before.ends_with("=-"),
                "{name} used unquoted: {text}"
            );
        }
    }
    text
}

#[test]
fn window_document_runs_the_agent_with_constrained_parameters() {
    let t = shared();
    let text = document_script(
        &t,
        "WindowDocument",
        &["action", "pkgs", "ttl", "reason", "format"],
    );
    for action in ["open", "close", "status"] {
        assert!(
            text.contains(&format!("/usr/local/bin/clawster-agent window {action}")),
            "{action}"
        );
    }
    assert!(text
        .contains("window open \"--pkgs=$SSM_pkgs\" \"--ttl=$SSM_ttl\" \"--reason=$SSM_reason\""));
    assert!(text.contains("window status --json"));
}

#[test]
fn ops_document_runs_read_only_commands_with_bounded_output() {
    let t = shared();
    let text = document_script(&t, "OpsDocument", &["action", "since", "at"]);
    assert!(text.contains("  health) exec /usr/local/bin/clawster-agent health --json ;;"));
    assert!(text.contains("  nat-status) exec /usr/local/bin/clawster-nat-agent status --json ;;"));
    let logs = text.lines().find(|l| l.starts_with("  logs)")).unwrap();
    let window_logs = text
        .lines()
        .find(|l| l.starts_with("  window-logs)"))
        .unwrap();
    for l in [logs, window_logs] {
        for arg in [
            "journalctl",
            "--output=json",
            "--reverse",
            "--lines=30",
            "--identifier=clawster-agent",
            "--no-pager",
            "\"--since=-$SSM_since\"",
        ] {
            assert!(l.contains(arg), "{arg} in {l}");
        }
        assert!(l.contains("--output-fields=MESSAGE,PRIORITY,CLAWSTER_CHECK,CLAWSTER_STATUS,"));
    }
    assert!(!logs.contains("CLAWSTER_CHECK=window."));
    for check in clawster_core::window_rules::AUDIT_CHECKS {
        assert!(
            window_logs.contains(&format!(" CLAWSTER_CHECK={check}")),
            "{check}"
        );
    }
    // The state commands: the agent's own, `at` as one argument, refused without it.
    assert!(text.contains("  state-sync) exec /usr/local/bin/clawster-agent state sync --json ;;"));
    assert!(
        text.contains("  state-status) exec /usr/local/bin/clawster-agent state status --json ;;")
    );
    assert!(text.contains("  state-restore) [ -n \"${SSM_at:-}\" ] || { echo \"state-restore needs the at parameter\" >&2; exit 2; }; exec /usr/local/bin/clawster-agent state restore \"--at=$SSM_at\" --json ;;"));
    // Nothing else in it writes or installs.
    for word in [
        "window open",
        "window close",
        "window install",
        " apply",
        " remove",
        "apt-get",
        "dnf ",
        "rm ",
        ">",
    ] {
        let without_redirects = text.replace(">/dev/null", "").replace(">&2", "");
        assert!(!without_redirects.contains(word), "{word}");
    }
    assert_eq!(
        t["Outputs"]["OpsDocumentName"]["Value"],
        json!({ "Ref": "OpsDocument" })
    );
}

#[test]
fn exports_cover_every_import_of_the_bot_stacks() {
    let t = shared();
    let outputs = t["Outputs"].as_object().unwrap();
    for (key, o) in outputs {
        assert_eq!(
            o["Export"]["Name"],
            json!({ "Fn::Sub": format!("${{AWS::StackName}}-{key}") })
        );
    }
    for https in [false, true] {
        let mut used = Vec::new();
        imports(&bot_template(https), &mut used);
        assert!(!used.is_empty());
        for u in used {
            assert!(
                outputs.contains_key(&u),
                "bot stack imports {u}, which the shared stack does not export"
            );
        }
    }
    assert!(outputs.contains_key("NatInstanceId") && outputs.contains_key("PrivateRouteTableId"));
}

#[test]
fn template_refuses_another_region() {
    let t = shared_template("eu-west-2");
    let a = &t["Rules"]["RenderedForThisRegion"]["Assertions"][0]["Assert"];
    assert_eq!(
        a,
        &json!({ "Fn::Equals": [{ "Ref": "AWS::Region" }, "eu-west-2"] })
    );
}

fn shared_lb(https: bool) -> Value {
    let h = clawsterctl::shared::load_balancer::Https {
        domain: "bots.example.com".parse().unwrap(),
        certificate: CERT.parse().unwrap(),
    };
    clawsterctl::shared::load_balancer::template(&"us-east-1".parse().unwrap(), https.then_some(&h))
}

#[test]
fn the_shared_stack_has_no_load_balancer_of_its_own() {
    // Regions without the shared load balancer pay nothing for it: it is a stack of its own.
    let t = shared();
    let albs: Vec<&String> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer")
        .map(|(id, _)| id)
        .collect();
    assert!(albs.is_empty(), "{albs:?}");
}

#[test]
fn shared_load_balancer_stack_exports_what_bots_attach_to() {
    let http = shared_lb(false);
    let outputs: Vec<&String> = http["Outputs"].as_object().unwrap().keys().collect();
    assert_eq!(
        outputs,
        [
            "SharedLoadBalancerArn",
            "SharedLoadBalancerDns",
            "SharedAlbSecurityGroupId"
        ]
    );
    assert!(http["Resources"].get("SharedHttpsListener").is_none());
    let https = shared_lb(true);
    let outputs: Vec<&String> = https["Outputs"].as_object().unwrap().keys().collect();
    assert_eq!(
        outputs,
        clawsterctl::shared::load_balancer::EXPORTS
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        https["Outputs"]["SharedLbDomain"]["Value"],
        "bots.example.com"
    );
    for o in https["Outputs"].as_object().unwrap().values() {
        assert!(o["Export"]["Name"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .starts_with("${AWS::StackName}-"));
    }
    let l = &https["Resources"]["SharedHttpsListener"]["Properties"];
    assert_eq!(l["Certificates"][0]["CertificateArn"], CERT);
    assert_eq!(
        l["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"],
        "404"
    );
    assert_eq!(
        https["Resources"]["SharedHttpRedirect"]["Properties"]["DefaultActions"][0]["Type"],
        "redirect"
    );
    assert_eq!(
        https["Resources"]["SharedLoadBalancer"]["Properties"]["Subnets"][0]["Fn::ImportValue"]
            ["Fn::Sub"],
        "${SharedStackName}-PublicSubnet1Id"
    );
}

#[test]
fn shared_load_balancer_admits_the_bot_ports_and_reaches_only_the_vpc() {
    let t = shared_lb(false);
    let sg = &t["Resources"]["SharedAlbSecurityGroup"]["Properties"];
    let ports: Vec<(i64, i64)> = sg["SecurityGroupIngress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["FromPort"].as_i64().unwrap(),
                r["ToPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [(80, 80), (443, 443), (8001, 8050)]);
    let egress = &sg["SecurityGroupEgress"];
    assert_eq!(egress.as_array().unwrap().len(), 1);
    assert_eq!(egress[0]["CidrIp"], "10.0.0.0/16");
}
