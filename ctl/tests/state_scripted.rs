//! `backup` and `restore` against scripted AWS answers on a virtual clock (common/state_sim.rs,
//! common/ssm_sim.rs): what is sent to the host, in which order the service is stopped and
//! started, the refusals, a failed restore leaving the bot stopped, and the measured downtime.
//! The host's answers are the JSON lines of the contract with `clawster-agent state`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawsterctl::backup::{self, RestoreOptions};
use clawsterctl::deploy::Fail;
use clawsterctl::ops::state::StateArgs;
use clawsterctl::pace::Pace;
use clawsterctl::progress::{Event, Ui};
use clawsterctl::ssm::{self, Host, Request};
use clawsterctl::state::time::At;
use common::ssm_sim::{done, SsmSim, SsmWorld, HOST, OPS_DOC};
use common::state_sim::{StateSim, StateWorld, NEW_HOST};

/// 2026-12-07T11:59:30Z.
const AT: i64 = 1_796_644_770;
const RESTORED: &str = r#"{"generation":41,"taken_at":"2026-12-07T11:58:00Z"}"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn backup_run(answer: common::ssm_sim::Poll, json: bool) -> (ssm::Printed, SsmSim) {
    let sim = SsmSim::new(SsmWorld {
        answers: vec![answer],
        ..SsmWorld::default()
    });
    let aws = sim.aws();
    let pace = Pace::virtual_time(Duration::from_secs(3));
    let printed = rt().block_on(ssm::execute(
        &aws,
        &pace,
        &Host::Bot("demo".parse().unwrap()),
        &Request::state(&StateArgs::Sync),
        Duration::from_secs(300),
        &|_| {},
        |a| backup::render_backup(a, json),
    ));
    (printed, sim)
}

#[test]
fn backup_runs_state_sync_on_the_host_and_prints_the_generation() {
    let (p, sim) = backup_run(
        done(
            "Success",
            0,
            "{\"generation\":12,\"taken_at\":\"2026-12-07T11:59:30Z\",\"bytes\":2048}\n",
            "",
        ),
        false,
    );
    assert_eq!(p.code, 0, "{p:?}");
    assert_eq!(
        p.stdout,
        format!("state of the bot synced on {HOST}: generation 12 taken at 2026-12-07T11:59:30Z (2048 bytes uploaded)\n")
    );
    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].document, OPS_DOC);
    assert_eq!(sent[0].instances, [HOST]);
    assert_eq!(sent[0].parameters["action"], ["state-sync"]);
    assert_eq!(sent[0].comment, "clawsterctl state sync");
    let (p, _) = backup_run(
        done(
            "Success",
            0,
            "{\"generation\":12,\"taken_at\":\"2026-12-07T11:59:30Z\",\"bytes\":2048}\n",
            "",
        ),
        true,
    );
    let v: serde_json::Value = serde_json::from_str(&p.stdout).unwrap();
    assert_eq!(v["generation"], 12);
    assert_eq!(v["instance"], HOST);
}

#[test]
fn a_failed_or_garbled_backup_says_why() {
    let (p, _) = backup_run(
        done(
            "Failed",
            1,
            "",
            "error: state sync: PutObject state/demo/manifest.json: AccessDenied\n",
        ),
        false,
    );
    assert_eq!(p.code, 1);
    assert!(
        p.stderr
            .contains("PutObject state/demo/manifest.json: AccessDenied"),
        "{}",
        p.stderr
    );
    let (p, _) = backup_run(done("Success", 0, "synced\n", ""), false);
    assert_eq!(p.code, 1);
    assert!(
        p.stderr
            .starts_with("error: clawster-agent state sync printed no answer ctl understands"),
        "{}",
        p.stderr
    );
}

struct Restore {
    result: Result<String, Fail>,
    out: String,
    sim: StateSim,
    took: Duration,
}

fn restore_run(world: StateWorld, yes: bool) -> Restore {
    let sim = StateSim::new(world);
    let buf: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let ui = Ui::lines(buf.clone(), false, sim.pace.clone());
    let aws = sim.aws();
    let opts = RestoreOptions {
        bot: "demo".parse().unwrap(),
        at: At(AT),
        yes,
        timeout: Duration::from_secs(1800),
    };
    let result = rt().block_on(backup::restore(&aws, &ui, &opts));
    let (ok, summary, next) = match &result {
        Ok(s) => (true, s.clone(), Vec::new()),
        Err(f) => (false, f.message.clone(), f.next.clone()),
    };
    ui.emit(Event::Finish { ok, summary, next });
    let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    Restore {
        result,
        out,
        took: sim.pace.elapsed(),
        sim,
    }
}

fn restore_world() -> StateWorld {
    let mut w = StateWorld::default();
    w.answers.insert(
        "state-restore".into(),
        ("Success", 0, format!("{RESTORED}\n"), String::new()),
    );
    w
}

#[test]
fn restore_is_refused_while_the_bot_is_healthy_unless_yes() {
    let r = restore_run(restore_world(), false);
    let f = r.result.expect_err("refused");
    assert_eq!(f.code, 2);
    assert_eq!(
        f.message,
        "bot demo is healthy: restoring stops it and replaces its state with the one of 2026-12-07T11:59:30Z; nothing was changed"
    );
    assert!(
        f.next[0].contains("clawsterctl backup demo"),
        "{:?}",
        f.next
    );
    assert!(
        r.sim.calls().is_empty(),
        "nothing changed: {:?}",
        r.sim.calls()
    );
}

#[test]
fn restore_stops_the_task_restores_then_starts_and_measures_the_downtime() {
    let r = restore_run(restore_world(), true);
    let summary = r.result.as_ref().expect("restored").clone();
    assert_eq!(
        r.sim.calls(),
        [
            "ecs.UpdateService desired 0".to_string(),
            format!(
                "ssm.SendCommand {OPS_DOC} {HOST} {{\"action\": [\"state-restore\"], \"at\": [\"2026-12-07T11:59:30Z\"]}}"
            ),
            "ecs.UpdateService desired 1".to_string(),
        ],
        "{}",
        r.out
    );
    // The task stops 20 s after desired 0 (polled every 5 s), the restore answers at once, the
    // target turns healthy 70 s after desired 1: down 1:30 on the virtual clock.
    assert_eq!(
        summary,
        "bot demo runs on its state as of 2026-12-07T11:59:30Z (generation 41, taken at 2026-12-07T11:58:00Z); it was down for 1:30"
    );
    assert_eq!(r.took, Duration::from_secs(90));
    for line in [
        "✓ old task draining: stopped after 20s",
        "… state restore: as of 2026-12-07T11:59:30Z on i-0b07a1c3e5f7d9b21",
        "✓ state restore: generation 41 taken at 2026-12-07T11:58:00Z",
        "✓ bot service: 1/1 running, rollout COMPLETED, target healthy",
    ] {
        assert!(r.out.contains(line), "{line}\n{}", r.out);
    }
}

#[test]
fn a_failed_restore_leaves_the_bot_stopped_and_says_what_next() {
    let mut w = restore_world();
    w.answers.insert(
        "state-restore".into(),
        (
            "Failed",
            1,
            String::new(),
            "error: state restore: no generation at or before 2026-12-07T11:59:30Z (the oldest kept is 2026-12-07T12:10:00Z)\n".into(),
        ),
    );
    let r = restore_run(w, true);
    let f = r.result.expect_err("failed");
    assert_eq!(f.code, 1);
    assert!(
        f.message
            .contains("no generation at or before 2026-12-07T11:59:30Z"),
        "{}",
        f.message
    );
    assert!(
        f.next[0].starts_with("the bot stays stopped (service at 0)"),
        "{:?}",
        f.next
    );
    let calls = r.sim.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], "ecs.UpdateService desired 0");
    assert!(!calls.iter().any(|c| c.contains("desired 1")), "{calls:?}");
    assert!(r.out.contains("✗ state restore"), "{}", r.out);
}

#[test]
fn a_stopped_bot_is_restored_without_asking_and_started() {
    let w = StateWorld {
        desired: 0,
        running_at_start: 0,
        ..restore_world()
    };
    let r = restore_run(w, false);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    assert!(
        r.out
            .contains("= old task draining: the bot was not running"),
        "{}",
        r.out
    );
    let calls = r.sim.calls();
    assert!(calls[0].starts_with("ssm.SendCommand"), "{calls:?}");
    assert_eq!(calls[1], "ecs.UpdateService desired 1");
}

#[test]
fn a_bad_at_exits_2_naming_it_before_any_aws_call() {
    for (at, says) in [
        ("yesterday", "--at \"yesterday\" is not a time"),
        ("15d", "--at \"15d\" is more than 14 days ago"),
        ("2099-01-01T00:00:00Z", "is in the future"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_clawsterctl"))
            .args([
                "restore",
                "demo",
                "--at",
                at,
                "--yes",
                "--region",
                "us-east-1",
            ])
            .env_clear()
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{at}: {err}");
        assert!(err.contains(says), "{at}: {err}");
        assert!(err.contains("(nothing was sent)"), "{err}");
    }
}

/// An S3 client whose GetObject answers with HTTP `status` and an S3 error `code`.
fn s3_answering(status: u16, code: &str) -> clawsterctl::aws::Aws {
    use aws_sdk_s3 as s3;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>");
    let get = mock!(s3::Client::get_object).then_http_response(move || {
        s3::config::http::HttpResponse::new(
            status.try_into().unwrap(),
            s3::primitives::ByteStream::from(body.clone().into_bytes()).into_inner(),
        )
    });
    let mut aws = common::ssm_sim::SsmSim::new(SsmWorld::default()).aws();
    aws.s3 = mock_client!(s3, RuleMode::MatchAny, [&get], |c| c
        .retry_config(s3::config::retry::RetryConfig::disabled()));
    aws
}

#[test]
fn the_last_sync_is_never_or_no_access_by_what_s3_says() {
    use clawsterctl::state::bucket::{last_sync, LastSync};
    let bot: clawsterctl::names::BotName = "demo".parse().unwrap();
    let aws = s3_answering(403, "AccessDenied");
    assert_eq!(
        rt().block_on(last_sync(&aws, "b", &bot)),
        LastSync::NoAccess
    );
    let aws = s3_answering(404, "NoSuchKey");
    assert_eq!(rt().block_on(last_sync(&aws, "b", &bot)), LastSync::Never);
    let aws = s3_answering(500, "InternalError");
    assert!(matches!(
        rt().block_on(last_sync(&aws, "b", &bot)),
        LastSync::Unreadable(_)
    ));
}

struct Replacement {
    result: Result<Option<clawsterctl::deploy::host::Replaced>, Fail>,
    out: String,
    sim: StateSim,
    healthy_at: Option<Duration>,
}

/// The deploy's step 9 on a scripted world: the replacement, then the start it is followed by.
fn replace_run(world: StateWorld, without_final_sync: bool) -> Replacement {
    use clawsterctl::deploy::host::{replace, Replace};
    use clawsterctl::deploy::service::{self, Rollout, ServiceRef};
    let sim = StateSim::new(world);
    let buf: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let ui = Ui::lines(buf.clone(), false, sim.pace.clone());
    let aws = sim.aws();
    let bot: clawsterctl::names::BotName = "demo".parse().unwrap();
    let svc = ServiceRef {
        cluster: "clawster-demo".into(),
        service: "clawster-demo".into(),
        target_group: Some("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/clawster-demo/0123456789abcdef".into()),
    };
    let (result, healthy_at) = rt().block_on(async {
        let r = replace(
            &aws,
            &ui,
            &Replace {
                bot: &bot,
                service: &svc,
                group: "clawster-bot-demo-AutoScalingGroup-ABC",
                bucket: "clawster-shared-artifacts-abc123",
                without_final_sync,
                deadline: Duration::from_secs(1800),
            },
        )
        .await;
        if !matches!(r, Ok(Some(_))) {
            return (r, None);
        }
        service::set_desired(&aws, &svc, 1).await.unwrap();
        let mut rollout = Rollout::default();
        service::wait_healthy(
            &aws,
            &ui,
            ui.pace(),
            &svc,
            &mut rollout,
            Duration::from_secs(1800),
        )
        .await
        .unwrap();
        (r, Some(ui.pace().elapsed()))
    });
    let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    Replacement {
        result,
        out,
        sim,
        healthy_at,
    }
}

fn synced_world() -> StateWorld {
    let mut w = StateWorld::default();
    w.answers.insert(
        "state-sync".into(),
        (
            "Success",
            0,
            "{\"generation\":57,\"taken_at\":\"2026-12-07T12:00:20Z\",\"bytes\":4096}\n".into(),
            String::new(),
        ),
    );
    w
}

#[test]
fn a_host_replacement_drains_syncs_terminates_and_waits_for_the_new_host() {
    let r = replace_run(synced_world(), false);
    let replaced = r
        .result
        .as_ref()
        .expect("replaced")
        .clone()
        .expect("a host");
    assert_eq!(
        (replaced.old.as_str(), replaced.new.as_str()),
        (HOST, NEW_HOST)
    );
    assert_eq!(replaced.synced.as_ref().map(|s| s.generation), Some(57));
    assert_eq!(
        r.sim.calls(),
        [
            "ecs.UpdateService desired 0".to_string(),
            format!("ssm.SendCommand {OPS_DOC} {HOST} {{\"action\": [\"state-sync\"]}}"),
            format!("autoscaling.TerminateInstanceInAutoScalingGroup {HOST} decrement Some(false)"),
            "ecs.UpdateService desired 1".to_string(),
        ],
        "{}",
        r.out
    );
    for line in [
        "✓ old task draining: stopped after 20s",
        "✓ state sync: generation 57 taken at 2026-12-07T12:00:20Z (4096 bytes uploaded)",
        "✓ old host: i-0b07a1c3e5f7d9b21 terminating",
        "✓ new host: i-0c0ffee0c0ffee0c0 in service after 1:30",
        "✓ host replacement: i-0b07a1c3e5f7d9b21 -> i-0c0ffee0c0ffee0c0",
    ] {
        assert!(r.out.contains(line), "{line}\n{}", r.out);
    }
    // The scripted timeline: the task stops in 20 s, the new host is in service 90 s after the
    // terminate, its task is healthy 70 s after desired 1: down 3:00.
    let down = r.healthy_at.unwrap() - replaced.stopped_at;
    assert_eq!(down, Duration::from_secs(180));
    println!(
        "host replacement, scripted timeline: down {}",
        clawsterctl::pace::human(down)
    );
}

#[test]
fn a_failed_final_sync_keeps_the_old_host_unless_told_otherwise() {
    let mut w = synced_world();
    w.answers.insert(
        "state-sync".into(),
        (
            "Failed",
            2,
            String::new(),
            "error: unrecognized subcommand 'state'\n".into(),
        ),
    );
    let r = replace_run(w.clone(), false);
    let f = r.result.expect_err("not replaced");
    assert_eq!(f.code, 1);
    assert!(
        f.message.starts_with(&format!(
            "the host {HOST} was not replaced: its final state sync failed"
        )),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("unrecognized subcommand"),
        "{}",
        f.message
    );
    assert!(
        f.next.iter().any(|n| n.contains("--without-final-sync")),
        "{:?}",
        f.next
    );
    let calls = r.sim.calls();
    assert_eq!(calls.first().unwrap(), "ecs.UpdateService desired 0");
    assert_eq!(
        calls.last().unwrap(),
        "ecs.UpdateService desired 1",
        "back on the old host"
    );
    assert!(!calls.iter().any(|c| c.contains("Terminate")), "{calls:?}");

    // With --without-final-sync it goes on; the bucket decides what the new host restores.
    let r = replace_run(w, true);
    assert!(
        r.result.as_ref().is_ok_and(|x| x.is_some()),
        "{:?}\n{}",
        r.result,
        r.out
    );
    assert!(
        r.out.contains("replacing it anyway (--without-final-sync)"),
        "{}",
        r.out
    );
    // A replica is there: no init.json, the new host restores it.
    assert!(
        !r.sim.calls().iter().any(|c| c.starts_with("s3.PutObject")),
        "{:?}",
        r.sim.calls()
    );
}

#[test]
fn no_running_host_means_nothing_to_replace() {
    let w = StateWorld {
        hosts: Vec::new(),
        ..synced_world()
    };
    let r = replace_run(w, false);
    assert!(matches!(r.result, Ok(None)), "{:?}", r.result);
    assert!(r.sim.calls().is_empty(), "{:?}", r.sim.calls());
    assert!(
        r.out.contains("= host replacement: no host is running"),
        "{}",
        r.out
    );
}
