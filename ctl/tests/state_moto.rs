//! The bot state's IAM boundary and bucket layout against the moto emulator, with moto's IAM
//! enforcement switched on.
//!
//! A bot deployed by `clawsterctl deploy` gets its own host role (the bot stack's `HostRole`).
//! The test assumes that role as the stack created it (its inline policy is the one CloudFormation
//! stored, so the rendered template is what is checked), then turns on moto's authentication and
//! authorization (`POST /moto-api/reset-auth` with `0`, the server-mode form of
//! `INITIAL_NO_AUTH_ACTION_COUNT=0`: every request from then on must be signed by a known
//! principal and allowed by its policies) and calls S3 with the role's credentials: it may write,
//! read and delete under its own `state/<bot>/`, read the release binaries, and nothing else; the
//! bot's task role may do none of it.
//!
//! Where moto falls short, and what the test does about it:
//! - moto's CloudFormation stores a role's inline policy as a parsed document, which its own
//!   evaluator cannot read (it crashes with `KeyError: 'policy_document'`). So the test takes the
//!   host role's policy from the template CloudFormation holds for the stack, resolves its
//!   `Fn::Sub`s (partition and the imported bucket name) and stores it on the same role again
//!   through IAM's PutRolePolicy, as text: the document evaluated is the one ctl rendered.
//! - moto evaluates conditions of identity policies against no request context, so the
//!   `s3:prefix`-conditioned List statement never matches there; listing is checked on the
//!   rendered policy by the template tests (bot_stack.rs), not here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TEST_IMAGE;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use common::moto::{release_dir, release_dir_flavour, text, Moto};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `POST /moto-api/reset-auth` with `count`: after that many more requests moto authenticates
/// and authorizes every call.
fn reset_auth(moto: &Moto, count: &str) {
    let hostport = moto.endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(hostport).unwrap();
    write!(
        s,
        "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{count}",
        count.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// `%XX` for everything but unreserved characters (form encoding of one value).
fn form(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One IAM query call to moto, before authorization is on (moto routes by the credential
/// scope and checks no signature then).
fn iam_call(moto: &Moto, params: &[(&str, &str)]) {
    let hostport = moto.endpoint.trim_start_matches("http://");
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", form(v)))
        .collect();
    let body = body.join("&");
    let mut s = TcpStream::connect(hostport).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Resolves the `Fn::Sub`s of a policy with the given variables (the only intrinsic it uses).
fn resolve(v: &serde_json::Value, vars: &[(&str, &str)]) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) if m.contains_key("Fn::Sub") => {
            let sub = &m["Fn::Sub"];
            let mut text = if sub.is_array() { &sub[0] } else { sub }
                .as_str()
                .unwrap()
                .to_string();
            for (k, val) in vars {
                text = text.replace(&format!("${{{k}}}"), val);
            }
            assert!(!text.contains("${"), "unresolved: {text}");
            Value::String(text)
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), resolve(x, vars)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, vars)).collect()),
        other => other.clone(),
    }
}

/// An S3 client with the credentials of `role_arn` (assumed through moto's STS).
async fn s3_as(moto: &Moto, role_arn: &str) -> aws_sdk_s3::Client {
    let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .http_client(clawsterctl::aws::https_client())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await;
    let assumed = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("host")
        .configure(&base)
        .build()
        .await;
    let creds = aws_sdk_s3::config::ProvideCredentials::provide_credentials(&assumed)
        .await
        .expect("assume the role");
    let conf = aws_sdk_s3::config::Builder::from(&base)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The physical id of a stack's resource.
async fn physical(aws: &clawsterctl::aws::Aws, stack: &str, logical: &str) -> String {
    let out = aws
        .cfn
        .list_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    out.stack_resource_summaries()
        .iter()
        .find(|r| r.logical_resource_id() == Some(logical))
        .and_then(|r| r.physical_resource_id())
        .unwrap_or_else(|| panic!("{stack} has no {logical}"))
        .to_string()
}

/// The error code of a failed call, or the whole error when it has none.
fn code<
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> String {
    match e.code() {
        Some(c) => c.to_string(),
        None => format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e)),
    }
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<(), String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(b"x".to_vec().into())
        .send()
        .await
        .map(|_| ())
        .map_err(code)
}

#[test]
fn a_host_role_writes_only_its_own_bots_state() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let dist = release_dir(&work.path().join("dist"));
    let rt = rt();
    let aws = rt.block_on(moto.aws());

    let out = moto.ctl(&[
        "deploy",
        "alpha",
        "--image",
        TEST_IMAGE,
        "--artifacts",
        dist.to_str().unwrap(),
        "--yes",
        "--detach",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let shared = rt
        .block_on(clawsterctl::stack::describe(
            &aws,
            "clawster-shared-us-east-1",
        ))
        .unwrap()
        .unwrap();
    let bucket = shared.outputs["ArtifactsBucketName"].clone();
    let task_role = shared.outputs["TaskRoleArn"].clone();

    // A first deploy writes init.json (starting empty is intended); a redeploy leaves it alone.
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "✓ bot state: new bot, starts empty (s3://{bucket}/state/alpha/init.json written)"
        )),
        "{t}"
    );
    let init_versions = || {
        rt.block_on(
            aws.s3
                .list_object_versions()
                .bucket(&bucket)
                .prefix("state/alpha/init.json")
                .send(),
        )
        .unwrap()
        .versions()
        .len()
    };
    let body = rt
        .block_on(
            aws.s3
                .get_object()
                .bucket(&bucket)
                .key("state/alpha/init.json")
                .send(),
        )
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&rt.block_on(body.body.collect()).unwrap().into_bytes()).unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["bot"], "alpha");
    let created = body["created_at"].as_str().unwrap();
    assert!(
        clawsterctl::state::time::parse_rfc3339(created).is_some(),
        "{created}"
    );
    let again = moto.ctl(&[
        "deploy",
        "alpha",
        "--image",
        TEST_IMAGE,
        "--artifacts",
        dist.to_str().unwrap(),
        "--yes",
        "--detach",
    ]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(!text(&again).contains("bot state"), "{}", text(&again));
    assert_eq!(init_versions(), 1, "a redeploy writes no init.json");
    // Nor does ensure_init overwrite one that is there (the conditional put is refused).
    let name: clawsterctl::names::BotName = "alpha".parse().unwrap();
    assert_eq!(
        rt.block_on(clawsterctl::state::bucket::ensure_init(
            &aws,
            &bucket,
            &name,
            "2026-01-01T00:00:00Z"
        ))
        .unwrap(),
        clawsterctl::state::bucket::Init::AlreadyThere
    );
    assert_eq!(init_versions(), 1);
    // status: no sync yet, then the manifest the agent writes, with its generation and age.
    let status = |bot: &str| -> serde_json::Value {
        let out = moto.ctl(&["status", bot, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    };
    assert_eq!(status("alpha")["bots"][0]["last_sync"], "never");
    let taken = clawster_core::timefmt::fmt_utc(clawsterctl::state::time::now() - 120);
    rt.block_on(
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key("state/alpha/manifest.json")
            .body(
                serde_json::json!({"version": 1, "bot": "alpha", "instance": "i-0abc", "generation": 3, "taken_at": taken, "files": []})
                    .to_string()
                    .into_bytes()
                    .into(),
            )
            .send(),
    )
    .unwrap();
    let sync = &status("alpha")["bots"][0]["last_sync"];
    assert_eq!(sync["generation"], 3, "{sync}");
    assert_eq!(sync["taken_at"], taken.as_str());
    let age = sync["age_seconds"].as_i64().unwrap();
    assert!((120..180).contains(&age), "{sync}");
    let out = moto.ctl(&["status"]);
    assert!(
        text(&out).contains(&format!("{taken} (2m ago)")),
        "{}",
        text(&out)
    );

    let role_name = rt.block_on(physical(&aws, "clawster-bot-alpha", "HostRole"));
    let host_role = format!("arn:aws:iam::123456789012:role/{role_name}");
    // The host role's policy as CloudFormation holds it, stored again as text (see above).
    let stored = rt
        .block_on(
            aws.cfn
                .get_template()
                .stack_name("clawster-bot-alpha")
                .send(),
        )
        .unwrap();
    let template: serde_json::Value =
        serde_json::from_str(stored.template_body().unwrap()).unwrap();
    let policy = &template["Resources"]["HostRole"]["Properties"]["Policies"][0];
    let document = resolve(
        &policy["PolicyDocument"],
        &[("AWS::Partition", "aws"), ("Bucket", &bucket)],
    );
    iam_call(
        &moto,
        &[
            ("Action", "PutRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", &role_name),
            ("PolicyName", policy["PolicyName"].as_str().unwrap()),
            ("PolicyDocument", &document.to_string()),
        ],
    );
    let host = rt.block_on(s3_as(&moto, &host_role));
    let task = rt.block_on(s3_as(&moto, &task_role));

    // From here on moto checks every request against the caller's policies.
    reset_auth(&moto, "0");
    let results = rt.block_on(async {
        let release_key = "artifacts/0.1.0/aarch64-unknown-linux-musl/clawster-agent";
        let get = |c: aws_sdk_s3::Client, key: &'static str| {
            let bucket = bucket.clone();
            async move {
                c.get_object()
                    .bucket(&bucket)
                    .key(key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(code)
            }
        };
        vec![
            ("host put own", put(&host, &bucket, "state/alpha/x").await),
            ("host get own", get(host.clone(), "state/alpha/x").await),
            (
                "host delete own",
                host.delete_object()
                    .bucket(&bucket)
                    .key("state/alpha/x")
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(code),
            ),
            ("host get release", get(host.clone(), release_key).await),
            (
                "host put other bot",
                put(&host, &bucket, "state/beta/x").await,
            ),
            (
                "host put longer name",
                put(&host, &bucket, "state/alpha2/x").await,
            ),
            (
                "host put artifacts",
                put(&host, &bucket, "artifacts/x").await,
            ),
            ("host put state root", put(&host, &bucket, "state/x").await),
            (
                "task put own bot",
                put(&task, &bucket, "state/alpha/x").await,
            ),
            ("task get release", get(task.clone(), release_key).await),
        ]
    });
    reset_auth(&moto, "inf");
    let want = [
        ("host put own", true),
        ("host get own", true),
        ("host delete own", true),
        ("host get release", true),
        ("host put other bot", false),
        ("host put longer name", false),
        ("host put artifacts", false),
        ("host put state root", false),
        ("task put own bot", false),
        ("task get release", false),
    ];
    for ((what, got), (name, allowed)) in results.iter().zip(want) {
        assert_eq!(*what, name);
        match got {
            Ok(()) => assert!(allowed, "{what}: allowed, must be denied"),
            Err(code) => {
                assert!(!allowed, "{what}: denied ({code}), must be allowed");
                assert_eq!(code, "AccessDenied", "{what}");
            }
        }
    }
}

/// The instances of the bot's group.
fn group_instances(
    rt: &tokio::runtime::Runtime,
    aws: &clawsterctl::aws::Aws,
    group: &str,
) -> Vec<String> {
    rt.block_on(clawsterctl::deploy::host::in_service(aws, group))
        .unwrap()
}

#[test]
fn a_new_release_replaces_the_host() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let rt = rt();
    let aws = rt.block_on(moto.aws());
    let deploy = |flavour: &str, extra: &[&str]| {
        let dist = release_dir_flavour(&work.path().join(format!("dist{flavour}")), flavour);
        let mut args = vec![
            "deploy",
            "alpha",
            "--image",
            TEST_IMAGE,
            "--artifacts",
            dist.to_str().unwrap(),
            "--yes",
            "--detach",
        ];
        args.extend_from_slice(extra);
        let out = moto.ctl(&args);
        (out.status.code(), text(&out))
    };
    let (code, t) = deploy("", &[]);
    assert_eq!(code, Some(0), "{t}");
    let bot = rt
        .block_on(clawsterctl::stack::describe(&aws, "clawster-bot-alpha"))
        .unwrap()
        .unwrap();
    let group = bot.outputs["AutoScalingGroupName"].clone();
    // moto skips the capacity provider: play it, as ECS would scale the group to one host for
    // the one task.
    rt.block_on(
        aws.autoscaling
            .set_desired_capacity()
            .auto_scaling_group_name(&group)
            .desired_capacity(1)
            .send(),
    )
    .unwrap();
    let first = group_instances(&rt, &aws, &group);
    assert_eq!(first.len(), 1, "{first:?}");

    // A new release changes the launch template: the host is to be replaced. moto runs no SSM
    // command (every invocation is Success with empty output), so the final state sync gives no
    // answer: the host is not replaced and the bot goes back to its old host.
    let (code, t) = deploy("-r2", &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(
        t.contains("change: host: the launch template changes"),
        "{t}"
    );
    assert!(t.contains("✓ old task draining"), "{t}");
    assert!(t.contains("✗ state sync"), "{t}");
    assert!(
        t.contains(&format!("the host {} was not replaced: its final state sync failed (clawster-agent state sync printed no answer ctl understands", first[0])),
        "{t}"
    );
    assert!(t.contains("--replace-host"), "{t}");
    assert_eq!(group_instances(&rt, &aws, &group), first, "not replaced");
    let svc = common::moto::service(&rt, &aws, &bot);
    assert_eq!(svc.desired_count(), 1, "back on the old host");

    // Retried with consent to lose what the missing sync would have carried: a new instance.
    let (code, t) = deploy("-r2", &["--replace-host", "--without-final-sync"]);
    assert_eq!(code, Some(0), "{t}");
    let now = group_instances(&rt, &aws, &group);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, first, "a new host: {t}");
    for line in [
        format!("✓ old host: {} terminating", first[0]),
        format!("✓ host replacement: {} -> {}", first[0], now[0]),
        "replacing it anyway (--without-final-sync)".to_string(),
    ] {
        assert!(t.contains(&line), "{line}\n{t}");
    }
    println!("{t}");
    // The first deploy's init.json is there, so none is written again.
    assert!(!t.contains("starts on empty state"), "{t}");
    // backup and restore reach the new host with the operations document. moto runs nothing
    // (empty output), so both end with ctl saying the agent's answer is missing; what was sent
    // is what counts here.
    let commands = || {
        rt.block_on(aws.ssm.list_commands().send())
            .unwrap()
            .commands()
            .to_vec()
    };
    let sent_before = commands().len();
    let out = moto.ctl(&["backup", "alpha"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("clawster-agent state sync printed no answer"),
        "{}",
        text(&out)
    );
    // An hour ago, written with a +01:00 offset: sent as the same instant in UTC.
    let hour_ago = clawsterctl::state::time::now() - 3600;
    let local = clawster_core::timefmt::fmt_utc(hour_ago + 3600).replace('Z', "+01:00");
    let out = moto.ctl(&["restore", "alpha", "--at", &local, "--yes"]);
    let t2 = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t2}");
    assert!(t2.contains("✓ old task draining"), "{t2}");
    assert!(t2.contains("the bot stays stopped (service at 0)"), "{t2}");
    let sent = commands();
    assert_eq!(sent.len(), sent_before + 2, "{sent:?}");
    let mut ours: Vec<_> = sent
        .iter()
        .filter(|c| {
            c.comment()
                .is_some_and(|x| x.starts_with("clawsterctl state"))
        })
        .collect();
    ours.sort_by_key(|c| c.comment().unwrap_or_default().to_string());
    let doc = rt
        .block_on(clawsterctl::stack::describe(
            &aws,
            "clawster-shared-us-east-1",
        ))
        .unwrap()
        .unwrap()
        .outputs["OpsDocumentName"]
        .clone();
    let restore = ours
        .iter()
        .find(|c| c.comment() == Some("clawsterctl state restore"))
        .unwrap();
    assert_eq!(restore.document_name(), Some(doc.as_str()));
    // (moto lists more ids per command than were sent; the scripted tests check InstanceIds.)
    assert!(restore.instance_ids().contains(&now[0]), "{restore:?}");
    let params = restore.parameters().unwrap();
    assert_eq!(params["action"], ["state-restore"]);
    assert_eq!(params["at"], [clawster_core::timefmt::fmt_utc(hour_ago)]);
    let sync = ours
        .iter()
        .find(|c| c.comment() == Some("clawsterctl state sync"))
        .unwrap();
    assert_eq!(sync.parameters().unwrap()["action"], ["state-sync"]);

    // Nothing changed since: a redeploy replaces nothing.
    let (code, t) = deploy("-r2", &[]);
    assert_eq!(code, Some(0), "{t}");
    assert!(!t.contains("host replacement"), "{t}");
    assert_eq!(group_instances(&rt, &aws, &group), now);
}
