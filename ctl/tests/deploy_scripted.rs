//! deploy, destroy and their display against scripted AWS answers (see common/sim.rs): what the
//! emulator cannot do. Every scenario runs on a virtual clock; none sleeps.
//!
//! Golden files (plain rendering): `CLAWSTER_UPDATE_GOLDEN=1 cargo test -p clawsterctl --test
//! deploy_scripted` rewrites them; review the diff like code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawsterctl::deploy::{self, DeployOptions, Fail};
use clawsterctl::progress::{Event, Ui};
use common::moto::release_dir;
use common::sim::*;
use common::*;

const SHARED: &str = "clawster-shared-us-east-1";
const BOT: &str = "clawster-bot-demo";

fn shared_create() -> Vec<Step> {
    vec![
        stack_step(0, SHARED, "CREATE_IN_PROGRESS", Some("User Initiated")),
        res(2, "Vpc", "AWS::EC2::VPC", "CREATE_IN_PROGRESS", None),
        res(
            3,
            "Vpc",
            "AWS::EC2::VPC",
            "CREATE_IN_PROGRESS",
            Some("Resource creation Initiated"),
        ),
        res(
            4,
            "ArtifactsBucket",
            "AWS::S3::Bucket",
            "CREATE_IN_PROGRESS",
            None,
        ),
        res(
            4,
            "EcsInstanceRole",
            "AWS::IAM::Role",
            "CREATE_IN_PROGRESS",
            None,
        ),
        res(14, "Vpc", "AWS::EC2::VPC", "CREATE_COMPLETE", None),
        res(
            15,
            "NatInstance",
            "AWS::EC2::Instance",
            "CREATE_IN_PROGRESS",
            None,
        ),
        res(
            22,
            "EcsInstanceRole",
            "AWS::IAM::Role",
            "CREATE_COMPLETE",
            None,
        ),
        res(
            23,
            "EcsInstanceProfile",
            "AWS::IAM::InstanceProfile",
            "CREATE_IN_PROGRESS",
            None,
        ),
        res(
            25,
            "ArtifactsBucket",
            "AWS::S3::Bucket",
            "CREATE_COMPLETE",
            None,
        ),
        res(
            75,
            "NatInstance",
            "AWS::EC2::Instance",
            "CREATE_COMPLETE",
            None,
        ),
        res(
            150,
            "EcsInstanceProfile",
            "AWS::IAM::InstanceProfile",
            "CREATE_COMPLETE",
            None,
        ),
        stack_step(152, SHARED, "CREATE_COMPLETE", None),
    ]
}

fn bot_create_ok() -> Vec<Step> {
    vec![
        stack_step(0, BOT, "CREATE_IN_PROGRESS", Some("User Initiated")),
        res(
            1,
            "LoadBalancer",
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "CREATE_IN_PROGRESS",
            None,
        ),
        res(
            1,
            "Cluster",
            "AWS::ECS::Cluster",
            "CREATE_IN_PROGRESS",
            None,
        ),
        res(6, "Cluster", "AWS::ECS::Cluster", "CREATE_COMPLETE", None),
        res(
            8,
            "AutoScalingGroup",
            "AWS::AutoScaling::AutoScalingGroup",
            "CREATE_IN_PROGRESS",
            None,
        ),
        res(
            40,
            "AutoScalingGroup",
            "AWS::AutoScaling::AutoScalingGroup",
            "CREATE_COMPLETE",
            None,
        ),
        res(
            62,
            "LoadBalancer",
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "CREATE_COMPLETE",
            None,
        ),
        res(
            63,
            "Service",
            "AWS::ECS::Service",
            "CREATE_IN_PROGRESS",
            None,
        ),
        res(70, "Service", "AWS::ECS::Service", "CREATE_COMPLETE", None),
        stack_step(72, BOT, "CREATE_COMPLETE", None),
    ]
}

const CIRCUIT: &str = "Resource handler returned message: \"Error occurred during operation 'ECS Deployment Circuit Breaker was triggered'.\" (RequestToken: 5f1d2c3b-9a8e-4d7c-b6a5-0f1e2d3c4b5a, HandlerErrorCode: GeneralServiceException)";

fn bot_create_fails() -> Vec<Step> {
    vec![
        stack_step(0, BOT, "CREATE_IN_PROGRESS", Some("User Initiated")),
        res(1, "LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer", "CREATE_IN_PROGRESS", None),
        res(1, "Cluster", "AWS::ECS::Cluster", "CREATE_IN_PROGRESS", None),
        res(6, "Cluster", "AWS::ECS::Cluster", "CREATE_COMPLETE", None),
        res(7, "Service", "AWS::ECS::Service", "CREATE_IN_PROGRESS", None),
        res(37, "Service", "AWS::ECS::Service", "CREATE_FAILED", Some(CIRCUIT)),
        res(38, "LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer", "CREATE_FAILED", Some("Resource creation cancelled")),
        stack_step(39, BOT, "ROLLBACK_IN_PROGRESS", Some("The following resource(s) failed to create: [LoadBalancer, Service]. Rollback requested by user.")),
        res(40, "Cluster", "AWS::ECS::Cluster", "DELETE_IN_PROGRESS", None),
        res(45, "Cluster", "AWS::ECS::Cluster", "DELETE_COMPLETE", None),
        stack_step(60, BOT, "ROLLBACK_COMPLETE", None),
    ]
}

fn world(shared_exists: bool, bot: Vec<Step>) -> World {
    let mut w = World::default();
    let mut shared = SimStack::new(SHARED, shared_create());
    shared.outputs = shared_outputs();
    if shared_exists {
        shared = shared.existing();
        // Made by this release: its template is the one deploy renders.
        let dir = tempfile::tempdir().unwrap();
        let release =
            clawsterctl::manifest::Release::load(&release_dir(&dir.path().join("dist"))).unwrap();
        shared.template =
            clawsterctl::shared::template(&"us-east-1".parse().unwrap(), &release).to_string();
    }
    w.stacks.insert(SHARED.into(), shared);
    let mut b = SimStack::new(BOT, bot);
    b.outputs = bot_outputs("demo");
    w.stacks.insert(BOT.into(), b);
    w.nat_active_at = Some(0);
    w.service = vec![
        (0, 1, 0, 1, "IN_PROGRESS", Some("(service clawster-demo) has started 1 tasks: (task 0a1b2c3d4e5f6a7b8c9d).")),
        (45, 1, 1, 0, "IN_PROGRESS", Some("(service clawster-demo) registered 1 targets in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/clawster-demo/0123456789abcdef)")),
        (70, 1, 1, 0, "COMPLETED", Some("(service clawster-demo) has reached a steady state.")),
    ];
    w.targets = vec![
        (45, "initial", Some("Elb.RegistrationInProgress")),
        (60, "healthy", None),
    ];
    w
}

struct Run {
    out: String,
    result: Result<deploy::Deployed, Fail>,
    sim: Sim,
}

fn options(dist: PathBuf, timeout: Duration) -> DeployOptions {
    DeployOptions {
        bot: bot_options("demo", "us-east-1", None),
        artifacts: dist,
        openclaw_config: None,
        image: clawsterctl::deploy::image::ImageSource::Given(TEST_IMAGE.parse().unwrap()),
        registry_url: None,
        yes: true,
        detach: false,
        timeout,
        keep_on_failure: false,
        replace_host: false,
        without_final_sync: false,
        shared_lb: false,
        https: None,
    }
}

fn run_deploy(sim: Sim, timeout: Duration, interrupt_at: Option<u64>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let dist = release_dir(&dir.path().join("dist"));
    let buf: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let ui = Ui::lines(buf.clone(), false, sim.pace.clone());
    if let Some(t) = interrupt_at {
        sim.pace.interrupt_at(Duration::from_secs(t));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let aws = sim.aws();
    let opts = options(dist, timeout);
    let result = rt.block_on(deploy::run(&aws, &ui, &opts, &|_| Some(true)));
    match &result {
        Ok(d) => ui.emit(Event::Finish {
            ok: true,
            summary: format!("bot demo is running: {}", d.url),
            next: vec![],
        }),
        Err(f) => ui.emit(Event::Finish {
            ok: false,
            summary: f.message.clone(),
            next: f.next.clone(),
        }),
    }
    let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    Run { out, result, sim }
}

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("CLAWSTER_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with CLAWSTER_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        want, actual,
        "golden {name} differs (CLAWSTER_UPDATE_GOLDEN=1 rewrites it)"
    );
}

#[test]
fn first_bot_in_a_region_golden() {
    let mut w = world(false, bot_create_ok());
    // The NAT route becomes active a little after the bot stack completes: one backoff.
    w.nat_active_at = Some(240);
    let r = run_deploy(Sim::new(w), Duration::from_secs(1800), None);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    check_golden("deploy-success.txt", &r.out);
    let calls = r.sim.calls();
    // Uploads started while the shared stack was still being created.
    let first_put = calls
        .iter()
        .position(|c| c.starts_with("s3.PutObject"))
        .unwrap();
    let bot_create = calls
        .iter()
        .position(|c| c == &format!("cfn.CreateStack {BOT}"))
        .unwrap();
    assert!(first_put < bot_create);
    let puts: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("s3.PutObject"))
        .collect();
    assert_eq!(puts.len(), 5, "{puts:?}");
    // The four binaries under artifacts/, and the new bot's init.json before its stack exists.
    assert_eq!(
        puts.iter()
            .filter(|c| c.starts_with("s3.PutObject artifacts/"))
            .count(),
        4
    );
    let init = calls
        .iter()
        .position(|c| c == "s3.PutObject state/demo/init.json")
        .expect("init.json written");
    assert!(init < bot_create);
    // The bot stack got the secret's full ARN.
    let w = r.sim.world.lock().unwrap();
    assert_eq!(
        w.stacks[BOT].parameters["OpenClawConfigSecretArn"],
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:clawster/demo/config-AbCdEf"
    );
    assert!(w
        .calls
        .contains(&"ecs.UpdateService clawster-demo desired Some(1)".to_string()));
}

#[test]
fn failed_bot_stack_shows_resource_and_reason_and_is_deleted_golden() {
    let r = run_deploy(
        Sim::new(world(true, bot_create_fails())),
        Duration::from_secs(1800),
        None,
    );
    let f = r.result.as_ref().unwrap_err();
    assert_eq!(f.code, 1, "{}", r.out);
    assert!(
        f.message
            .contains("Service: Resource handler returned message"),
        "{}",
        f.message
    );
    assert!(
        r.out
            .contains("✗ Service (ECS::Service) create failed (30s)\n"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("ECS Deployment Circuit Breaker was triggered"),
        "{}",
        r.out
    );
    assert!(r.sim.calls().contains(&format!("cfn.DeleteStack {BOT}")));
    assert!(
        r.out.contains(
            "✓ delete clawster-bot-demo (created by this run, incomplete): nothing of it is left"
        ),
        "{}",
        r.out
    );
    assert!(
        !r.sim
            .calls()
            .iter()
            .any(|c| c.starts_with("ecs.UpdateService")),
        "never started"
    );
    check_golden("deploy-failure.txt", &r.out);
}

#[test]
fn ctrl_c_during_create_deletes_the_stack() {
    let mut script = bot_create_ok();
    for s in &mut script {
        s.at *= 4; // a slow stack: still creating when the operator presses Ctrl-C
    }
    let r = run_deploy(
        Sim::new(world(true, script)),
        Duration::from_secs(1800),
        Some(30),
    );
    let f = r.result.as_ref().unwrap_err();
    assert_eq!(f.code, 130, "{}", r.out);
    assert!(
        r.sim.calls().contains(&format!("cfn.DeleteStack {BOT}")),
        "{:?}",
        r.sim.calls()
    );
    assert!(
        r.out
            .contains("delete clawster-bot-demo (created by this run, incomplete)"),
        "{}",
        r.out
    );
    assert!(!r
        .sim
        .calls()
        .iter()
        .any(|c| c.starts_with("ecs.UpdateService")));
}

#[test]
fn crash_looping_task_shows_its_reason_and_ends_at_the_timeout() {
    let mut w = world(true, bot_create_ok());
    let pull = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/library/node:24-slim: docker.io/library/node:24-slim: not found";
    w.service = vec![(
        0,
        1,
        0,
        1,
        "IN_PROGRESS",
        Some("(service clawster-demo) has started 1 tasks: (task 0a1b2c3d4e5f6a7b8c9d)."),
    )];
    w.stopped = vec![
        (30, "0a1b2c3d4e5f6a7b8c9d", pull),
        (95, "1b2c3d4e5f6a7b8c9d0e", pull),
    ];
    w.targets = vec![];
    let r = run_deploy(Sim::new(w), Duration::from_secs(600), None);
    let f = r.result.as_ref().unwrap_err();
    assert_eq!(f.code, 1, "{}", r.out);
    assert!(
        f.message.contains("did not become healthy in time"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("CannotPullContainerError"),
        "{}",
        f.message
    );
    assert!(
        r.out
            .contains("! task 0a1b2c3d stopped: CannotPullContainerError"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("! task 1b2c3d4e stopped: CannotPullContainerError"),
        "{}",
        r.out
    );
    assert!(r.sim.pace.elapsed() >= Duration::from_secs(600));
    assert!(
        r.out
            .contains("next: `clawsterctl status demo --region us-east-1`"),
        "{}",
        r.out
    );
}

#[test]
fn throttling_backs_off_and_continues() {
    let mut w = world(true, bot_create_ok());
    w.throttle_calls = vec![2, 3, 4];
    let sim = Sim::new(w);
    let r = run_deploy(sim, Duration::from_secs(1800), None);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    // After each throttled poll the next one waits longer: 10, 20, then 30 s (the poll interval
    // doubled, capped at 30 s), plus the regular 5 s poll; unthrottled polls are 5 s apart.
    let t = r.sim.world.lock().unwrap().poll_times.clone();
    let gaps: Vec<u64> = t.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(&gaps[..4], &[5, 15, 25, 35], "{gaps:?}");
    assert!(gaps[4..].iter().all(|g| *g == 5), "{gaps:?}");
}

#[test]
fn throttling_without_end_fails_with_advice() {
    let mut w = world(true, bot_create_ok());
    w.throttle_calls = (1..1000).collect();
    let r = run_deploy(Sim::new(w), Duration::from_secs(3600), None);
    let f = r.result.as_ref().unwrap_err();
    assert_eq!(f.code, 1);
    assert!(f.message.contains("throttling"), "{}", f.message);
    assert!(
        r.sim.calls().contains(&format!("cfn.DeleteStack {BOT}")),
        "the incomplete stack is removed"
    );
}

fn run_destroy(sim: &Sim, shared: bool) -> (String, Result<String, Fail>) {
    run_destroy_with(sim, shared, false)
}

fn run_destroy_with(sim: &Sim, shared: bool, delete_state: bool) -> (String, Result<String, Fail>) {
    let buf: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let ui = Ui::lines(buf.clone(), false, sim.pace.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let aws = sim.aws();
    let result = rt.block_on(async {
        if shared {
            clawsterctl::destroy::shared(&aws, &ui, true, Duration::from_secs(1800), &|_| {
                Some(true)
            })
            .await
        } else {
            clawsterctl::destroy::bot(
                &aws,
                &ui,
                &"demo".parse().unwrap(),
                &clawsterctl::destroy::BotDestroy {
                    yes: true,
                    delete_state,
                    timeout: Duration::from_secs(1800),
                },
                &|_| Some(true),
            )
            .await
        }
    });
    let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    (out, result)
}

#[test]
fn destroy_shared_treats_export_in_use_as_failure() {
    let mut w = world(true, vec![]);
    w.stacks.remove(BOT);
    let sh = w.stacks.get_mut(SHARED).unwrap();
    sh.delete = vec![vec![
        stack_step(0, SHARED, "DELETE_IN_PROGRESS", Some("User Initiated")),
        stack_step(3, SHARED, "CREATE_COMPLETE", Some("Export clawster-shared-us-east-1-VpcId cannot be deleted as it is in use by legacy-stack")),
    ]];
    let sim = Sim::new(w);
    let (out, result) = run_destroy(&sim, true);
    let f = result.unwrap_err();
    assert_eq!(f.code, 1, "{out}");
    assert!(
        f.message
            .contains("cannot be deleted as it is in use by legacy-stack"),
        "{}",
        f.message
    );
    assert!(f.message.contains("not deleted"), "{}", f.message);
}

#[test]
fn destroy_shared_refuses_while_imported() {
    let mut w = world(true, vec![]);
    w.stacks.remove(BOT);
    w.imports
        .insert(format!("{SHARED}-VpcId"), vec!["clawster-bot-other".into()]);
    let sim = Sim::new(w);
    let (out, result) = run_destroy(&sim, true);
    let f = result.unwrap_err();
    assert!(
        f.message
            .contains("clawster-bot-other import(s) its exports"),
        "{}\n{out}",
        f.message
    );
    assert!(!sim.calls().iter().any(|c| c.starts_with("cfn.DeleteStack")));
}

#[test]
fn destroy_bot_retains_what_cannot_be_deleted_and_lists_it() {
    let mut w = world(true, bot_create_ok());
    let bot = w.stacks.remove(BOT).unwrap().existing();
    let mut bot = bot;
    bot.delete = vec![
        vec![
            stack_step(0, BOT, "DELETE_IN_PROGRESS", Some("User Initiated")),
            res(2, "LogGroup", "AWS::Logs::LogGroup", "DELETE_IN_PROGRESS", None),
            res(5, "LogGroup", "AWS::Logs::LogGroup", "DELETE_FAILED", Some("Resource handler returned message: \"User is not authorized to perform: logs:DeleteLogGroup\" (HandlerErrorCode: AccessDenied)")),
            stack_step(6, BOT, "DELETE_FAILED", Some("The following resource(s) failed to delete: [LogGroup]. ")),
        ],
        vec![
            stack_step(0, BOT, "DELETE_IN_PROGRESS", Some("User Initiated")),
            res(1, "LogGroup", "AWS::Logs::LogGroup", "DELETE_SKIPPED", None),
            stack_step(4, BOT, "DELETE_COMPLETE", None),
        ],
    ];
    w.stacks.insert(BOT.into(), bot);
    w.secrets
        .insert("clawster/demo/config".into(), ("arn:x".into(), "{}".into()));
    let sim = Sim::new(w);
    let (out, result) = run_destroy(&sim, false);
    assert!(result.is_ok(), "{result:?}\n{out}");
    let w = sim.world.lock().unwrap();
    assert_eq!(
        w.stacks[BOT].retained,
        vec![Vec::<String>::new(), vec!["LogGroup".to_string()]]
    );
    assert!(
        out.contains("kept LogGroup (AWS::Logs::LogGroup) loggroup-phys"),
        "{out}"
    );
    assert!(out.contains("logs:DeleteLogGroup"), "{out}");
    assert!(w
        .calls
        .contains(&"ecs.UpdateService clawster-demo desired Some(0)".to_string()));
    assert!(w
        .calls
        .contains(&"secrets.DeleteSecret clawster/demo/config force=Some(true)".to_string()));
    assert!(w.secrets.is_empty());
}

#[test]
fn destroy_keeps_the_bots_state_for_the_retention_or_deletes_every_version() {
    let objects = [
        "state/demo/manifest.json",
        "state/demo/blobs/0a1b",
        "state/demo2/manifest.json",
        "artifacts/0.1.0/x86_64-unknown-linux-musl/clawster-agent",
    ];
    for delete_state in [false, true] {
        let mut w = world(true, bot_create_ok());
        let mut bot = w.stacks.remove(BOT).unwrap().existing();
        bot.outputs = bot_outputs("demo");
        w.stacks.insert(BOT.into(), bot);
        w.objects = objects.iter().map(|k| k.to_string()).collect();
        let sim = Sim::new(w);
        let (out, result) = run_destroy_with(&sim, false, delete_state);
        let summary = result.expect("destroyed");
        let calls = sim.calls();
        let deletes: Vec<&String> = calls
            .iter()
            .filter(|c| c.starts_with("s3.DeleteObjects"))
            .collect();
        // After the stack is gone, and only under this bot's prefix.
        let stack_gone = calls
            .iter()
            .position(|c| c == &format!("cfn.DeleteStack {BOT}"))
            .unwrap();
        let first_delete = calls
            .iter()
            .position(|c| c.starts_with("s3.DeleteObjects"))
            .unwrap();
        assert!(stack_gone < first_delete);
        if delete_state {
            assert_eq!(
                deletes,
                [
                    "s3.DeleteObjects state/demo/manifest.json version v1",
                    "s3.DeleteObjects state/demo/blobs/0a1b version v1"
                ]
            );
            assert!(
                summary.contains("its state replica is deleted for good (2 object versions)"),
                "{summary}"
            );
            assert!(out.contains("✓ state replica s3://clawster-shared-artifacts-abc123/state/demo/: 2 object version(s) deleted for good"), "{out}");
        } else {
            assert_eq!(
                deletes,
                [
                    "s3.DeleteObjects state/demo/manifest.json (marker)",
                    "s3.DeleteObjects state/demo/blobs/0a1b (marker)"
                ]
            );
            assert!(summary.contains("its state stays restorable for 14 days in s3://clawster-shared-artifacts-abc123/state/demo/"), "{summary}");
            assert!(
                out.contains("2 object(s) deleted, restorable for 14 days as noncurrent versions"),
                "{out}"
            );
        }
    }
}

#[test]
fn rollback_failed_bot_stack_is_continued_past_stuck_resources() {
    let mut w = world(true, vec![]);
    let mut bot = SimStack::new(BOT, vec![
        stack_step(0, BOT, "UPDATE_IN_PROGRESS", Some("User Initiated")),
        res(0, "LaunchTemplate", "AWS::EC2::LaunchTemplate", "UPDATE_FAILED", Some("Resource handler returned message: \"The launch template version was deleted\"")),
        stack_step(0, BOT, "UPDATE_ROLLBACK_FAILED", Some("The following resource(s) failed to update: [LaunchTemplate].")),
    ])
    .existing();
    bot.outputs = bot_outputs("demo");
    bot.continue_rollback = vec![
        stack_step(0, BOT, "UPDATE_ROLLBACK_IN_PROGRESS", None),
        stack_step(10, BOT, "UPDATE_ROLLBACK_COMPLETE", None),
    ];
    w.stacks.insert(BOT.into(), bot);
    let sim = Sim::new(w);
    // After the rollback the recorded template differs, so a change set is made; it has no
    // changes, which is not an error, and the bot starts.
    let r = run_deploy(sim, Duration::from_secs(1800), None);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    assert!(
        r.out.contains("= bot stack clawster-bot-demo: no changes"),
        "{}",
        r.out
    );
    let calls = r.sim.calls();
    assert!(
        calls
            .iter()
            .any(|c| c == &format!("cfn.ContinueUpdateRollback {BOT} skip [\"LaunchTemplate\"]")),
        "{calls:?}\n{}",
        r.out
    );
    assert!(r.out.contains("rollback skips LaunchTemplate"), "{}", r.out);
}

#[test]
fn changed_bot_stack_is_updated_through_a_change_set_that_is_shown() {
    let mut w = world(true, vec![]);
    let mut bot = SimStack::new(BOT, bot_create_ok()).existing();
    bot.outputs = bot_outputs("demo");
    bot.changes = vec![
        (
            "Modify",
            "LaunchTemplate",
            "AWS::EC2::LaunchTemplate",
            "False",
        ),
        (
            "Modify",
            "TaskDefinition",
            "AWS::ECS::TaskDefinition",
            "True",
        ),
    ];
    bot.update = vec![
        stack_step(0, BOT, "UPDATE_IN_PROGRESS", Some("User Initiated")),
        res(
            1,
            "TaskDefinition",
            "AWS::ECS::TaskDefinition",
            "UPDATE_IN_PROGRESS",
            None,
        ),
        res(
            4,
            "TaskDefinition",
            "AWS::ECS::TaskDefinition",
            "UPDATE_COMPLETE",
            None,
        ),
        stack_step(9, BOT, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", None),
        stack_step(12, BOT, "UPDATE_COMPLETE", None),
    ];
    w.stacks.insert(BOT.into(), bot);
    let r = run_deploy(Sim::new(w), Duration::from_secs(1800), None);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    assert!(
        r.out
            .contains("· Modify TaskDefinition (ECS::TaskDefinition), replaces it"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("· Modify LaunchTemplate (EC2::LaunchTemplate)\n"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("✓ TaskDefinition (ECS::TaskDefinition) update complete (3s)"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("✓ bot stack clawster-bot-demo: updated"),
        "{}",
        r.out
    );
    assert!(r
        .sim
        .calls()
        .contains(&format!("cfn.ExecuteChangeSet {BOT}")));
}

#[test]
fn a_shared_stack_of_another_release_is_updated_through_a_change_set() {
    let mut w = world(true, bot_create_ok());
    let shared = w.stacks.get_mut(SHARED).unwrap();
    // Made by an earlier release: no state lifecycle rule, no state actions in the document.
    shared.template = "{\"Resources\": {}}".into();
    shared.changes = vec![
        ("Modify", "ArtifactsBucket", "AWS::S3::Bucket", "False"),
        ("Modify", "OpsDocument", "AWS::SSM::Document", "True"),
    ];
    shared.update = vec![
        stack_step(0, SHARED, "UPDATE_IN_PROGRESS", Some("User Initiated")),
        res(
            2,
            "OpsDocument",
            "AWS::SSM::Document",
            "UPDATE_IN_PROGRESS",
            None,
        ),
        res(
            6,
            "OpsDocument",
            "AWS::SSM::Document",
            "UPDATE_COMPLETE",
            None,
        ),
        stack_step(8, SHARED, "UPDATE_COMPLETE", None),
    ];
    let r = run_deploy(Sim::new(w), Duration::from_secs(1800), None);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    let calls = r.sim.calls();
    let update = calls
        .iter()
        .position(|c| c == &format!("cfn.ExecuteChangeSet {SHARED}"))
        .expect("the shared stack is updated");
    let bot = calls
        .iter()
        .position(|c| c == &format!("cfn.CreateStack {BOT}"))
        .unwrap();
    assert!(update < bot, "before the bot stack: {calls:?}");
    for line in [
        "… shared stack clawster-shared-us-east-1: update to this release: preparing a change set",
        "✓ shared stack clawster-shared-us-east-1: updated",
    ] {
        assert!(r.out.contains(line), "{line}\n{}", r.out);
    }
    // A shared stack of this release is left alone (every other test's world).
    let r = run_deploy(
        Sim::new(world(true, bot_create_ok())),
        Duration::from_secs(1800),
        None,
    );
    assert!(!r
        .sim
        .calls()
        .iter()
        .any(|c| c.contains(&format!("ChangeSet {SHARED}"))));
}

#[test]
fn a_new_agent_release_replaces_the_running_host_and_prints_the_downtime() {
    // The bot runs with the template of an earlier build: its agent differs, so the launch
    // template (a host change) and nothing else.
    let old_dir = tempfile::tempdir().unwrap();
    let old_release = clawsterctl::manifest::Release::load(&common::moto::release_dir_flavour(
        &old_dir.path().join("dist"),
        "-old",
    ))
    .unwrap();
    let mut w = world(true, vec![]);
    let mut bot = SimStack::new(BOT, bot_create_ok()).existing();
    bot.outputs = bot_outputs("demo");
    let o = bot_options("demo", "us-east-1", None);
    bot.template = clawsterctl::bot::template(&o, &old_release).to_string();
    bot.changes = vec![(
        "Modify",
        "LaunchTemplate",
        "AWS::EC2::LaunchTemplate",
        "False",
    )];
    bot.update = vec![
        stack_step(0, BOT, "UPDATE_IN_PROGRESS", Some("User Initiated")),
        stack_step(10, BOT, "UPDATE_COMPLETE", None),
    ];
    bot.parameters = BTreeMap::from([("SharedStackName".to_string(), SHARED.to_string())]);
    w.stacks.insert(BOT.into(), bot);
    w.hosts = vec!["i-0aaa0000000000001".into()];
    w.stacks
        .get_mut(SHARED)
        .unwrap()
        .outputs
        .push(("OpsDocumentName".into(), common::ssm_sim::OPS_DOC.into()));
    w.sync_answer =
        "{\"generation\":88,\"taken_at\":\"2026-12-02T10:00:12Z\",\"bytes\":512}\n".into();
    let r = run_deploy(Sim::new(w), Duration::from_secs(1800), None);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    assert!(
        r.out.contains("change: host: the launch template changes"),
        "{}",
        r.out
    );
    let calls = r.sim.calls();
    let at = |what: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(what))
            .unwrap_or_else(|| panic!("no {what}: {calls:?}"))
    };
    // After the stack update: the sync on the old host, its termination, then the task.
    assert!(
        at(&format!("cfn.ExecuteChangeSet {BOT}"))
            < at("ssm.SendCommand i-0aaa0000000000001 [\"state-sync\"]")
    );
    assert!(
        at("ssm.SendCommand")
            < at("autoscaling.TerminateInstanceInAutoScalingGroup i-0aaa0000000000001")
    );
    assert!(at("autoscaling.Terminate") < at("ecs.UpdateService clawster-demo desired Some(1)"));
    for line in [
        "✓ state sync: generation 88 taken at 2026-12-02T10:00:12Z (512 bytes uploaded)",
        "✓ new host: i-0bbb0000000000002 in service after 1:00",
        "✓ host replacement: i-0aaa0000000000001 -> i-0bbb0000000000002",
    ] {
        assert!(r.out.contains(line), "{line}\n{}", r.out);
    }
    // The new host came 60 s after the terminate and the rollout completes with a healthy target
    // 70 s after desired 1: 2:10 unreachable, printed with the result.
    let done = r
        .out
        .lines()
        .find(|l| l.contains("✓ bot service:"))
        .expect("service line");
    assert!(
        done.contains("on its new host i-0bbb0000000000002 in 2:10 from the old task's stop"),
        "{done}"
    );
    println!("{done}");
}

/// The token a stored configuration holds, read back from the scripted Secrets Manager.
fn stored_token(sim: &Sim) -> Option<String> {
    let w = sim.world.lock().unwrap();
    let (_, value) = w.secrets.get("clawster/demo/config")?;
    clawsterctl::deploy::secret::stored_token(value)
}

/// A world whose bot exists and is complete, with `config` already stored as its secret.
fn existing_bot(config: &str) -> World {
    let mut w = world(true, vec![]);
    let mut bot = SimStack::new(BOT, bot_create_ok()).existing();
    bot.outputs = bot_outputs("demo");
    w.stacks.insert(BOT.into(), bot);
    w.secrets.insert(
        "clawster/demo/config".into(),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:clawster/demo/config-AbCdEf"
                .into(),
            config.into(),
        ),
    );
    w
}

#[test]
fn a_new_bot_gets_a_generated_token_inside_its_only_secret() {
    let r = run_deploy(
        Sim::new(world(true, bot_create_ok())),
        Duration::from_secs(1800),
        None,
    );
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    let token = stored_token(&r.sim).expect("a token in the stored configuration");
    assert_eq!(token.len(), 48);
    assert!(!r.out.contains(&token), "the token is never printed");
    let calls = r.sim.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "secrets.GetRandomPassword")
            .count(),
        1,
        "{calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("secrets.CreateSecret"))
            .count(),
        1,
        "one secret per bot: {calls:?}"
    );
}

#[test]
fn a_redeploy_keeps_the_stored_token() {
    let stored = serde_json::json!({ "gateway": { "auth": { "mode": "token", "token": "kept-token-0123456789" } } });
    let r = run_deploy(
        Sim::new(existing_bot(&stored.to_string())),
        Duration::from_secs(1800),
        None,
    );
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    assert_eq!(
        stored_token(&r.sim).as_deref(),
        Some("kept-token-0123456789")
    );
    assert!(!r
        .sim
        .calls()
        .contains(&"secrets.GetRandomPassword".to_string()));
    assert!(!r.out.contains("kept-token-0123456789"), "{}", r.out);
}

#[test]
fn a_bot_from_the_two_secret_release_keeps_its_token_through_the_upgrade() {
    let former =
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:clawster/demo/gateway-token-XyZ123";
    let mut w = existing_bot(r#"{"gateway":{"auth":{"mode":"token"}}}"#);
    w.secrets.insert(
        former.into(),
        (
            former.into(),
            "former-token-abcdefghijklmnopqrstuvwxyz0123456789AB".into(),
        ),
    );
    w.stacks
        .get_mut(BOT)
        .unwrap()
        .outputs
        .push(("GatewayTokenSecretArn".into(), former.into()));
    let r = run_deploy(Sim::new(w), Duration::from_secs(1800), None);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    assert_eq!(
        stored_token(&r.sim).as_deref(),
        Some("former-token-abcdefghijklmnopqrstuvwxyz0123456789AB")
    );
    assert!(
        r.out
            .contains("gateway token taken over from the former token secret"),
        "{}",
        r.out
    );
    assert!(!r
        .sim
        .calls()
        .contains(&"secrets.GetRandomPassword".to_string()));
    assert!(!r.out.contains("former-token-abc"), "{}", r.out);
}

#[test]
fn a_changed_configuration_restarts_the_task_once_and_prints_the_downtime() {
    // The bot runs this release's template; only the stored configuration differs.
    let dir = tempfile::tempdir().unwrap();
    let release =
        clawsterctl::manifest::Release::load(&release_dir(&dir.path().join("dist"))).unwrap();
    let mut w = existing_bot(r#"{"gateway":{"auth":{"mode":"token","token":"kept-0123456789"}}}"#);
    let bot = w.stacks.get_mut(BOT).unwrap();
    bot.template =
        clawsterctl::bot::template(&bot_options("demo", "us-east-1", None), &release).to_string();
    bot.parameters = BTreeMap::from([
        ("SharedStackName".to_string(), SHARED.to_string()),
        ("BotImage".to_string(), TEST_IMAGE.to_string()),
    ]);
    w.running_before = true;
    let r = run_deploy(Sim::new(w), Duration::from_secs(1800), None);
    assert!(r.result.is_ok(), "{:?}\n{}", r.result, r.out);
    assert!(
        r.out.contains("change: configuration: changed"),
        "{}",
        r.out
    );
    let calls = r.sim.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("secrets.PutSecretValue"))
            .count(),
        1,
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("cfn.ExecuteChangeSet")),
        "no stack update: {calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.ends_with("force new deployment"))
            .count(),
        1,
        "exactly one new deployment: {calls:?}"
    );
    let line = r
        .out
        .lines()
        .find(|l| l.contains("restarted with the new configuration in"))
        .unwrap_or_else(|| panic!("{}", r.out));
    println!("scripted config change: {}", line.trim());
    assert_eq!(stored_token(&r.sim).as_deref(), Some("kept-0123456789"));
}
