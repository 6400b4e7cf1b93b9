//! `clawsterctl deploy`, `status` and `destroy` end to end against the moto AWS emulator.
//!
//! The whole lifecycle of two bots in one region: the first deploy creates both stacks, the
//! secret and the uploads and raises the service to one task; a second deploy of the same bot
//! changes nothing, stores no secret version and starts no deployment, and says so; a changed
//! configuration stores one version and forces exactly one new deployment; a second bot reuses the shared stack; status lists both; destroy
//! removes one bot and keeps the shared stack, and the bot's state restorable (`--delete-state`
//! deletes it at once); `destroy --shared` refuses while a bot exists and
//! then removes it. A canary value in the operator's OpenClaw file is searched for in every byte
//! clawsterctl printed and in every template moto stored.
//!
//! moto never registers ECS tasks with a target group, so a helper thread plays that part: it
//! registers a task address in each bot's target group once the stack exists (moto then reports
//! the target healthy), as ECS would once the task started.
//!
//! moto's own CloudFormation cannot delete the shared stack (it leaves the internet gateway
//! attached and the S3 gateway endpoint in the VPC, then refuses to delete the VPC with
//! DependencyViolation), so the last step checks that `destroy --shared` empties the bucket and
//! asks CloudFormation to delete, and reports moto's refusal as a failure; the successful delete
//! is covered by the scripted tests (deploy_scripted.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clawsterctl::aws::Aws;
use common::moto::{release_dir, service, text, Moto};
use common::TEST_IMAGE;

const CANARY: &str = "sk-ant-CANARY-7f3a9c1e5b";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn templates(aws: &Aws) -> Vec<String> {
    let mut out = Vec::new();
    for s in clawsterctl::stack::list(aws, "clawster-").await.unwrap() {
        let t = aws
            .cfn
            .get_template()
            .stack_name(&s.id)
            .send()
            .await
            .unwrap();
        out.push(t.template_body().unwrap_or_default().to_string());
    }
    out
}

/// The id of the bot service's primary deployment (a forced deployment makes a new one).
fn deployment_id(
    rt: &tokio::runtime::Runtime,
    aws: &Aws,
    bot: &clawsterctl::stack::StackInfo,
) -> String {
    let svc = service(rt, aws, bot);
    let d = svc
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .expect("a primary deployment");
    d.id().unwrap().to_string()
}

/// How many versions a secret has.
fn secret_versions(rt: &tokio::runtime::Runtime, aws: &Aws, name: &str) -> usize {
    rt.block_on(
        aws.secrets
            .list_secret_version_ids()
            .secret_id(name)
            .include_deprecated(true)
            .send(),
    )
    .unwrap()
    .versions()
    .len()
}

#[test]
fn lifecycle_of_two_bots_against_moto() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let dist = release_dir(&work.path().join("dist"));
    let dist = dist.to_str().unwrap();
    let oc = work.path().join("openclaw.json");
    std::fs::write(
        &oc,
        format!(
            r#"{{"models": {{"providers": {{"anthropic": {{"apiKey": "{CANARY}"}}}}}},
                "channels": {{"telegram": {{"enabled": true, "botToken": "{CANARY}-tg"}}}}}}"#
        ),
    )
    .unwrap();
    let oc = oc.to_str().unwrap();
    let rt = rt();
    let aws = rt.block_on(moto.aws());
    let mut printed = String::new();
    let mut stored_templates = Vec::new();

    // No terminal and no --yes: nothing is created.
    let out = moto.ctl(&[
        "deploy",
        "alpha",
        "--artifacts",
        dist,
        "--image",
        TEST_IMAGE,
        "--openclaw-config",
        oc,
    ]);
    printed += &text(&out);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no terminal to ask on"),
        "{}",
        text(&out)
    );
    assert!(rt
        .block_on(clawsterctl::stack::list(&aws, "clawster-"))
        .unwrap()
        .is_empty());
    assert!(rt
        .block_on(
            aws.secrets
                .describe_secret()
                .secret_id("clawster/alpha/config")
                .send()
        )
        .is_err());

    let stop = Arc::new(AtomicBool::new(false));
    let reg = common::moto::registrar(&moto, stop.clone());
    let deploy_with = |bot: &str, config: &str| {
        moto.ctl(&[
            "deploy",
            bot,
            "--artifacts",
            dist,
            "--image",
            TEST_IMAGE,
            "--openclaw-config",
            config,
            "--yes",
            "--timeout",
            "10m",
        ])
    };
    let deploy = |bot: &str| deploy_with(bot, oc);

    // First bot: both stacks, the secret, the uploads, the service at 1.
    let out = deploy("alpha");
    printed += &text(&out);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("✓ shared stack clawster-shared-us-east-1: created"),
        "{t}"
    );
    assert!(
        t.contains("✓ release binaries: 4 uploaded, 0 already there"),
        "{t}"
    );
    assert!(
        t.contains("✓ configuration secret clawster/alpha/config: created"),
        "{t}"
    );
    assert!(t.contains("✓ bot stack clawster-bot-alpha: created"), "{t}");
    assert!(t.contains("✓ NAT route"), "{t}");
    assert!(t.contains("✓ bot alpha is running: http://"), "{t}");
    let shared = rt
        .block_on(clawsterctl::stack::describe(
            &aws,
            "clawster-shared-us-east-1",
        ))
        .unwrap()
        .expect("shared stack");
    assert_eq!(shared.status, "CREATE_COMPLETE");
    let bucket = shared.outputs["ArtifactsBucketName"].clone();
    // moto's CloudFormation drops the bucket's VersioningConfiguration; turn it on as
    // CloudFormation does, so deletes leave noncurrent versions as they do in AWS.
    rt.block_on(
        aws.s3
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send(),
    )
    .unwrap();
    let objects = rt
        .block_on(aws.s3.list_objects_v2().bucket(&bucket).send())
        .unwrap();
    let mut keys: Vec<&str> = objects.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "artifacts/0.1.0/aarch64-unknown-linux-musl/clawster-agent",
            "artifacts/0.1.0/aarch64-unknown-linux-musl/clawster-nat-agent",
            "artifacts/0.1.0/x86_64-unknown-linux-musl/clawster-agent",
            "artifacts/0.1.0/x86_64-unknown-linux-musl/clawster-nat-agent",
            "state/alpha/init.json",
        ]
    );
    let secret = rt
        .block_on(
            aws.secrets
                .get_secret_value()
                .secret_id("clawster/alpha/config")
                .send(),
        )
        .unwrap();
    let cfg: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    assert_eq!(cfg["models"]["providers"]["anthropic"]["apiKey"], CANARY);
    assert_eq!(cfg["gateway"]["terminal"]["enabled"], false);
    assert_eq!(cfg["gateway"]["bind"], "lan");
    let bot = rt
        .block_on(clawsterctl::stack::describe(&aws, "clawster-bot-alpha"))
        .unwrap()
        .expect("bot stack");
    assert!(
        bot.parameters["OpenClawConfigSecretArn"].starts_with(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:clawster/alpha/config-"
        ),
        "full ARN with its suffix: {:?}",
        bot.parameters
    );
    assert_eq!(bot.parameters["BotImage"], TEST_IMAGE);
    common::moto::assert_task_is_hardened(&rt, &aws, &service(&rt, &aws, &bot), TEST_IMAGE);
    assert_eq!(service(&rt, &aws, &bot).desired_count(), 1);
    let first_deployment = deployment_id(&rt, &aws, &bot);
    stored_templates.extend(rt.block_on(templates(&aws)));

    // The same deploy again: nothing changes, and it says so. With the most verbose logging: the
    // SDK logs every request it transmits at trace level, and the secret must not reach the log.
    let out = moto.ctl(&[
        "-vv",
        "--log-target",
        "stderr",
        "deploy",
        "alpha",
        "--artifacts",
        dist,
        "--image",
        TEST_IMAGE,
        "--openclaw-config",
        oc,
        "--yes",
        "--timeout",
        "10m",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("transmitting request"),
        "-vv logs the SDK's requests"
    );
    printed += &text(&out);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("= network ready (shared)"), "{t}");
    assert!(t.contains("0 uploaded, 4 already there"), "{t}");
    assert!(
        t.contains("= bot stack clawster-bot-alpha: no changes"),
        "{t}"
    );
    // Nothing changed: no new secret version, no new deployment.
    assert!(t.contains("unchanged (no new version)"), "{t}");
    assert!(
        t.contains("change: nothing changed: nothing is stored, updated or restarted"),
        "{t}"
    );
    assert!(t.contains("desired 1"), "{t}");
    assert!(!t.contains("new deployment"), "{t}");
    assert_eq!(deployment_id(&rt, &aws, &bot), first_deployment);
    assert_eq!(secret_versions(&rt, &aws, "clawster/alpha/config"), 1);

    // A changed configuration alone: one new secret version and exactly one new deployment.
    let oc2 = work.path().join("openclaw-2.json");
    std::fs::write(
        &oc2,
        format!(
            r#"{{"models": {{"providers": {{"anthropic": {{"apiKey": "{CANARY}-2"}}}}}},
                "channels": {{"telegram": {{"enabled": true, "botToken": "{CANARY}-tg"}}}}}}"#
        ),
    )
    .unwrap();
    let oc2 = oc2.to_str().unwrap();
    let out = deploy_with("alpha", oc2);
    printed += &text(&out);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("new version stored"), "{t}");
    assert!(t.contains("change: configuration: changed"), "{t}");
    assert!(t.contains("change: the bot task restarts once"), "{t}");
    assert!(
        t.contains("= bot stack clawster-bot-alpha: no changes"),
        "{t}"
    );
    assert!(
        t.contains("new deployment for the new configuration"),
        "{t}"
    );
    assert!(t.contains("restarted with the new configuration in"), "{t}");
    let second_deployment = deployment_id(&rt, &aws, &bot);
    assert_ne!(second_deployment, first_deployment);
    assert_eq!(secret_versions(&rt, &aws, "clawster/alpha/config"), 2);
    // And the same new configuration again restarts nothing.
    let out = deploy_with("alpha", oc2);
    printed += &text(&out);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("unchanged (no new version)"));
    assert_eq!(deployment_id(&rt, &aws, &bot), second_deployment);
    assert_eq!(secret_versions(&rt, &aws, "clawster/alpha/config"), 2);

    // A second bot reuses the shared stack.
    let out = deploy("beta");
    printed += &text(&out);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("= network ready (shared)"), "{t}");
    assert!(t.contains("✓ bot stack clawster-bot-beta: created"), "{t}");
    stored_templates.extend(rt.block_on(templates(&aws)));

    // Status lists both, healthy.
    let out = moto.ctl(&["status"]);
    printed += &text(&out);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("✓ alpha") && t.contains("✓ beta"), "{t}");
    let out = moto.ctl(&["status", "beta", "--json"]);
    printed += &text(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(v["bots"][0]["bot"], "beta");
    assert_eq!(v["bots"][0]["healthy"], true);
    assert_eq!(v["bots"][0]["running"], 1);
    stop.store(true, Ordering::SeqCst);
    reg.join().unwrap();

    // The shared stack stays while bots use it.
    let out = moto.ctl(&["destroy", "--shared", "--yes"]);
    printed += &text(&out);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("clawster-bot-alpha") && t.contains("clawster-bot-beta"),
        "{t}"
    );
    assert!(rt
        .block_on(clawsterctl::stack::describe(
            &aws,
            "clawster-shared-us-east-1"
        ))
        .unwrap()
        .is_some());

    // One bot goes; the other and the shared stack stay.
    let out = moto.ctl(&["destroy", "alpha", "--yes"]);
    printed += &text(&out);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(rt
        .block_on(clawsterctl::stack::describe(&aws, "clawster-bot-alpha"))
        .unwrap()
        .is_none());
    assert!(rt
        .block_on(
            aws.secrets
                .describe_secret()
                .secret_id("clawster/alpha/config")
                .send()
        )
        .is_err());
    assert!(rt
        .block_on(clawsterctl::stack::describe(&aws, "clawster-bot-beta"))
        .unwrap()
        .is_some());
    // Its state is deleted but restorable: one version of init.json behind a delete marker.
    assert!(
        t.contains("its state stays restorable for 14 days in s3://clawster-artifacts-123456789012-us-east-1/state/alpha/"),
        "{t}"
    );
    let alpha_state = rt
        .block_on(
            aws.s3
                .list_object_versions()
                .bucket(&bucket)
                .prefix("state/alpha/")
                .send(),
        )
        .unwrap();
    assert_eq!(alpha_state.versions().len(), 1, "{alpha_state:?}\n{t}");
    assert_eq!(alpha_state.delete_markers().len(), 1);
    // Destroying it again is harmless.
    let out = moto.ctl(&["destroy", "alpha", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to destroy"), "{}", text(&out));

    // --delete-state takes every version of the bot's state at once.
    let out = moto.ctl(&["destroy", "beta", "--yes", "--delete-state"]);
    printed += &text(&out);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("its state replica is deleted for good (1 object versions)"),
        "{}",
        text(&out)
    );
    let beta_state = rt
        .block_on(
            aws.s3
                .list_object_versions()
                .bucket(&bucket)
                .prefix("state/beta/")
                .send(),
        )
        .unwrap();
    assert!(beta_state.versions().is_empty() && beta_state.delete_markers().is_empty());
    let out = moto.ctl(&["destroy", "--shared", "--yes"]);
    printed += &text(&out);
    let t = text(&out);
    assert!(t.contains("✓ artifacts bucket clawster-artifacts-123456789012-us-east-1: 6 object version(s) deleted"), "{t}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "moto cannot delete this VPC: {t}"
    );
    assert!(t.contains("DependencyViolation"), "{t}");
    // Emptied, and moto deleted it before giving up on the VPC.
    match rt.block_on(aws.s3.list_object_versions().bucket(&bucket).send()) {
        Ok(v) => assert!(v.versions().is_empty(), "the bucket was emptied"),
        Err(e) => assert_eq!(
            aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
            Some("NoSuchBucket"),
            "{e:?}"
        ),
    }

    // The secret's content is nowhere but in the secret.
    assert!(
        !printed.contains("CANARY"),
        "clawsterctl printed the secret:\n{printed}"
    );
    assert!(stored_templates.len() >= 3);
    for t in &stored_templates {
        assert!(!t.contains("CANARY"), "a stored template holds the secret");
    }
    println!("{printed}");
}
