//! `clawsterctl window|health|logs` against the moto AWS emulator, as the operator runs them.
//!
//! A bot is deployed first (`--detach`: no task needs to become healthy). moto's bot group has
//! no instance, which is the "no running host" case; then the group is raised to one instance
//! and `window open` must send exactly one command: the shared stack's window document, the
//! group's instance by `InstanceIds` (no `Targets`), the parameters in their wire form. Hostile values are
//! refused with exit 2 before any AWS call: the command count does not move.
//!
//! moto answers DescribeInstanceInformation with 500 NotImplemented (so the online check says
//! nothing) and every invocation with Success and empty output (aws-deploy.md §4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::moto::{release_dir, text, Moto};
use common::TEST_IMAGE;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn window_commands_against_moto() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let dist = release_dir(&work.path().join("dist"));
    let dist = dist.to_str().unwrap();
    let rt = rt();
    let aws = rt.block_on(moto.aws());
    let commands = || {
        rt.block_on(aws.ssm.list_commands().send())
            .unwrap()
            .commands()
            .to_vec()
    };

    // Nothing deployed: no bot stack.
    let out = moto.ctl(&["window", "status", "alpha"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no bot alpha in us-east-1: stack clawster-bot-alpha does not exist"),
        "{}",
        text(&out)
    );

    let out = moto.ctl(&[
        "deploy",
        "alpha",
        "--artifacts",
        dist,
        "--image",
        TEST_IMAGE,
        "--yes",
        "--detach",
        "--timeout",
        "5m",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let bot = rt
        .block_on(clawsterctl::stack::describe(&aws, "clawster-bot-alpha"))
        .unwrap()
        .expect("bot stack");
    let shared = rt
        .block_on(clawsterctl::stack::describe(
            &aws,
            "clawster-shared-us-east-1",
        ))
        .unwrap()
        .expect("shared stack");
    let group = bot.outputs["AutoScalingGroupName"].clone();
    let window_doc = shared.outputs["WindowDocumentName"].clone();

    // The group has no instance yet.
    let out = moto.ctl(&["window", "open", "alpha", "--pkgs", "nginx", "--ttl", "10m"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("the bot alpha has no running host")
            && text(&out).contains("deploy it or check `clawsterctl status"),
        "{}",
        text(&out)
    );
    assert!(commands().is_empty());

    // One host.
    rt.block_on(
        aws.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&group)
            .min_size(1)
            .max_size(1)
            .desired_capacity(1)
            .send(),
    )
    .unwrap();
    let groups = rt
        .block_on(
            aws.autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(&group)
                .send(),
        )
        .unwrap();
    let host: Vec<String> = groups.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    assert_eq!(host.len(), 1, "{groups:?}");
    let host = host[0].clone();

    let out = moto.ctl(&["window", "open", "alpha", "--pkgs", "nginx", "--ttl", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("bot alpha: window open on {host} (SSM command ")),
        "{}",
        text(&out)
    );
    let sent = commands();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let c = &sent[0];
    assert_eq!(c.document_name(), Some(window_doc.as_str()));
    // We send InstanceIds=[host] and no Targets; moto adds every instance of the region to the
    // command it records (its empty target filter), so the host must be among them. The exact
    // InstanceIds are checked by the scripted tests.
    assert!(c.targets().is_empty(), "{c:?}");
    let mut everyone: Vec<String> = rt
        .block_on(aws.ec2.describe_instances().send())
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    everyone.sort();
    let mut recorded = c.instance_ids().to_vec();
    recorded.sort();
    assert!(recorded.contains(&host), "{recorded:?}");
    assert_eq!(recorded, everyone, "moto's record: every instance");
    rt.block_on(
        aws.ssm
            .get_command_invocation()
            .command_id(c.command_id().unwrap())
            .instance_id(&host)
            .send(),
    )
    .expect("an invocation on the host");
    assert_eq!(c.comment(), Some("clawsterctl window open"));
    let mut params: Vec<(String, Vec<String>)> = c
        .parameters()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    params.sort();
    let p = |k: &str, v: &str| (k.to_string(), vec![v.to_string()]);
    assert_eq!(
        params,
        [
            p("action", "open"),
            p("pkgs", "nginx"),
            p("reason", ""),
            p("ttl", "10m")
        ]
    );

    // Hostile values: refused before any AWS call, naming the value.
    let many: Vec<String> = (0..21).map(|i| format!("p{i:02}")).collect();
    let many = many.join(",");
    for (pkgs, ttl, reason, says) in [
        (
            "nginx;id",
            "10m",
            None,
            "\"nginx;id\" has ';' at position 5",
        ),
        ("-oAPT::x=y", "10m", None, "':' at position 5"),
        ("nginx", "a b", None, "--ttl \"a b\" is not a duration"),
        (
            "nginx",
            "25h",
            None,
            "--ttl 25h is longer than the cap of 4h",
        ),
        (
            many.as_str(),
            "10m",
            None,
            "--pkgs names 21 packages; at most 20",
        ),
        (
            "nginx",
            "10m",
            Some("{{ssm:/x}}"),
            "--reason must not contain",
        ),
        (
            "nginx",
            "10m",
            Some("a\u{1b}[2J"),
            "--reason must be at most 200 printable",
        ),
    ] {
        let mut args = vec!["window", "open", "alpha", "--pkgs", pkgs, "--ttl", ttl];
        if let Some(r) = reason {
            args.extend(["--reason", r]);
        }
        let out = moto.ctl(&args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(says), "{args:?}: {t}");
        assert!(t.contains("nothing was sent"), "{args:?}: {t}");
        assert_eq!(commands().len(), 1, "{args:?} sent a command");
    }
    for args in [
        vec!["logs", "alpha", "--since", "1h;id"],
        vec!["window", "close", "--instance-id", "i-123;id"],
        vec!["health", "alpha", "--instance-id", &host],
    ] {
        let out = moto.ctl(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert_eq!(commands().len(), 1, "{args:?} sent a command");
    }

    // By instance id, and the read-only document.
    let out = moto.ctl(&["window", "status", "--instance-id", &host, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = moto.ctl(&["logs", "alpha", "--window", "--since", "2d"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no records in that time"),
        "{}",
        text(&out)
    );
    // moto's empty output is no health report.
    let out = moto.ctl(&["health", "alpha"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("could not check the host: the host printed no report"),
        "{}",
        text(&out)
    );
    let sent = commands();
    assert_eq!(sent.len(), 4);
    let ops_doc = shared.outputs["OpsDocumentName"].clone();
    let last: Vec<(Option<&str>, String)> = sent
        .iter()
        .map(|c| {
            (
                c.document_name(),
                c.parameters().unwrap()["action"][0].clone(),
            )
        })
        .collect();
    for (doc, action) in [
        (window_doc.as_str(), "status"),
        (ops_doc.as_str(), "window-logs"),
        (ops_doc.as_str(), "health"),
    ] {
        assert!(
            last.contains(&(Some(doc), action.to_string())),
            "{action}: {last:?}"
        );
    }
}
