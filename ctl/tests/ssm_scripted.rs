//! `window`, `health` and `logs` against scripted AWS answers (common/ssm_sim.rs): polling,
//! the host's output and exit codes, hosts SSM cannot reach, timeouts and cut output. Every run
//! is on a virtual clock; none sleeps.
//!
//! The host output comes from ctl/tests/fixtures/ssm/ (see its README for where each file came
//! from) or from the agents' own code (their error messages and report types).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use clawsterctl::ops::reads::ReadArgs;
use clawsterctl::ops::window::WindowArgs;
use clawsterctl::pace::Pace;
use clawsterctl::ssm::{self, Answer, Host, Printed, Request};
use common::ssm_sim::*;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ssm")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn demo() -> Host {
    Host::Bot("demo".parse().unwrap())
}

/// One run: what it printed (progress lines first on stderr) and the virtual time it took.
struct Run {
    printed: Printed,
    said: String,
    took: Duration,
}

impl Run {
    fn stderr(&self) -> String {
        format!("{}{}", self.said, self.printed.stderr)
    }
}

fn run(sim: &SsmSim, host: Host, req: Request, render: impl FnOnce(&Answer) -> Printed) -> Run {
    let aws = sim.aws();
    let pace = Pace::virtual_time(Duration::from_secs(3));
    let said = Mutex::new(String::new());
    let say = |l: &str| said.lock().unwrap().push_str(&format!("{l}\n"));
    let printed = rt().block_on(ssm::execute(
        &aws,
        &pace,
        &host,
        &req,
        Duration::from_secs(120),
        &say,
        render,
    ));
    Run {
        printed,
        said: said.into_inner().unwrap(),
        took: pace.elapsed(),
    }
}

fn open_req() -> Request {
    Request::window(&WindowArgs::open("hello,htop", "10m", Some("ticket 42")).unwrap())
}

fn world(answers: Vec<Poll>) -> SsmSim {
    SsmSim::new(SsmWorld {
        answers,
        ..SsmWorld::default()
    })
}

#[test]
fn window_open_polls_pending_in_progress_success() {
    let out = fixture("window-open.txt");
    let sim = world(vec![
        pending("Pending"),
        pending("InProgress"),
        done("Success", 0, &out, ""),
    ]);
    let r = run(&sim, demo(), open_req(), ssm::render_window);
    assert_eq!(r.printed.code, 0, "{}", r.stderr());
    assert_eq!(r.printed.stdout, out);
    assert_eq!(r.printed.stderr, "");
    assert_eq!(sim.polls(), 3);
    assert_eq!(r.took, Duration::from_secs(6), "two poll intervals");
    assert_eq!(
        r.said,
        format!("bot demo: window open on {HOST} (SSM command 5b1e7c2a-93d4-4f60-8a1b-2c3d4e5f6a7b, document {WINDOW_DOC}); waiting up to 2:00\n")
    );
    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    let s = &sent[0];
    assert_eq!(s.document, WINDOW_DOC);
    assert_eq!(s.instances, [HOST]);
    assert_eq!(s.targets, 0, "InstanceIds, never Targets");
    assert_eq!(s.comment, "clawsterctl window open");
    assert_eq!(s.timeout, Some(120));
    let want: std::collections::BTreeMap<String, Vec<String>> = [
        ("action", "open"),
        ("pkgs", "hello,htop"),
        ("ttl", "10m"),
        ("reason", "ticket 42"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
    .collect();
    assert_eq!(s.parameters, want);
}

#[test]
fn invocation_not_there_yet_is_tolerated_for_five_polls() {
    let out = fixture("window-status.txt");
    let sim = world(vec![
        Poll::Missing,
        Poll::Missing,
        pending("InProgress"),
        done("Success", 0, &out, ""),
    ]);
    let req = Request::window(&WindowArgs::Status { json: false });
    let r = run(&sim, demo(), req.clone(), ssm::render_window);
    assert_eq!(r.printed.code, 0, "{}", r.stderr());
    assert_eq!(r.printed.stdout, out);
    assert_eq!(sim.sent()[0].parameters["format"], ["text"]);

    let sim = world(vec![Poll::Missing]);
    let r = run(&sim, demo(), req, ssm::render_window);
    assert_eq!(r.printed.code, 2);
    assert_eq!(sim.polls(), 6, "five tolerated, the sixth fails");
    assert!(
        r.printed.stderr.contains("InvocationDoesNotExist"),
        "{}",
        r.stderr()
    );
    assert!(
        r.printed
            .stderr
            .contains("aws ssm get-command-invocation --command-id 5b1e7c2a"),
        "{}",
        r.stderr()
    );
}

#[test]
fn the_agent_refusing_exits_3_and_failing_exits_1() {
    // An agent with a lower TTL cap than this clawsterctl refuses 2h; its stderr is what its
    // `finish` prints for the rule's own error.
    let err = clawster_core::window_rules::OpenRequest::parse(
        "nginx",
        "2h",
        "",
        Duration::from_secs(3600),
    )
    .expect_err("over the cap");
    let stderr = format!("error: {:#}\n", anyhow::Error::new(err));
    let sim = world(vec![done("Failed", 1, "", &stderr)]);
    let req = Request::window(&WindowArgs::open("nginx", "2h", None).unwrap());
    let r = run(&sim, demo(), req, ssm::render_window);
    assert_eq!(r.printed.code, 3, "{}", r.stderr());
    assert_eq!(
        r.printed.stderr,
        "error: the agent refused: --ttl 2h is longer than the cap of 1h\n"
    );

    let sim = world(vec![done(
        "Failed",
        1,
        "",
        "error: locking the window: write /run/clawster/.window.json.tmp: No space left on device (os error 28)\n",
    )]);
    let r = run(
        &sim,
        demo(),
        Request::window(&WindowArgs::Close),
        ssm::render_window,
    );
    assert_eq!(r.printed.code, 1);
    assert_eq!(
        r.printed.stderr,
        "error: clawster-agent failed (exit 1): locking the window: write /run/clawster/.window.json.tmp: No space left on device (os error 28)\n"
    );
    assert_eq!(
        sim.sent()[0].parameters.len(),
        1,
        "close sends only the action"
    );

    // A warning on a successful open reaches the operator, marked as the host's.
    let sim = world(vec![done(
        "Success",
        0,
        &fixture("window-open.txt"),
        "warning: the window service did not answer (/run/clawster/window.sock: Connection refused (os error 111)); the window still locks at its expiry\n",
    )]);
    let r = run(&sim, demo(), open_req(), ssm::render_window);
    assert_eq!(r.printed.code, 0);
    assert!(
        r.printed
            .stderr
            .starts_with("host: warning: the window service did not answer"),
        "{}",
        r.printed.stderr
    );
}

#[test]
fn a_host_ssm_cannot_reach_gets_nothing_sent() {
    for (ping, says) in [
        (
            Ping::Status("ConnectionLost"),
            "is not online in SSM (PingStatus ConnectionLost, last seen 2026-12-02T10:00:00Z)",
        ),
        (Ping::Absent, "is not managed by SSM"),
    ] {
        let sim = SsmSim::new(SsmWorld {
            ping,
            ..SsmWorld::default()
        });
        let r = run(&sim, demo(), open_req(), ssm::render_window);
        assert_eq!(r.printed.code, 2);
        let e = r.stderr();
        assert!(e.contains(says), "{e}");
        assert!(e.contains("AmazonSSMManagedInstanceCore"), "{e}");
        assert!(e.contains("SSM Agent"), "{e}");
        assert!(sim.sent().is_empty());
    }
    // An endpoint that cannot answer (moto: 500 NotImplemented) says nothing: the run goes on.
    let sim = SsmSim::new(SsmWorld {
        ping: Ping::NotImplemented,
        ..SsmWorld::default()
    });
    let r = run(&sim, demo(), open_req(), ssm::render_window);
    assert_eq!(r.printed.code, 0, "{}", r.stderr());
    assert_eq!(sim.sent().len(), 1);

    // SSM gave up delivering it.
    let sim = world(vec![Poll::Inv {
        status: "TimedOut",
        details: "DeliveryTimedOut",
        code: -1,
        stdout: String::new(),
        stderr: String::new(),
    }]);
    let r = run(&sim, demo(), open_req(), ssm::render_window);
    assert_eq!(r.printed.code, 2);
    assert_eq!(
        r.printed.stderr,
        "error: the host did not take the command in time: is the instance running and online in SSM (Fleet Manager)? (SSM: DeliveryTimedOut)\n"
    );
}

#[test]
fn hosts_are_found_or_the_reason_is_named() {
    let case = |world: SsmWorld| {
        let sim = SsmSim::new(world);
        let r = run(&sim, demo(), open_req(), ssm::render_window);
        assert_eq!(r.printed.code, 2, "{}", r.stderr());
        assert!(sim.sent().is_empty());
        r.printed.stderr
    };
    let e = case(SsmWorld {
        bot_stack: false,
        ..SsmWorld::default()
    });
    assert_eq!(
        e,
        "error: no bot demo in us-east-1: stack clawster-bot-demo does not exist\n  next: `clawsterctl status --region us-east-1` lists the bots there\n"
    );
    let e = case(SsmWorld {
        hosts: vec![("i-0aaaaaaaaaaaaaaa1".into(), "Terminating".into())],
        ..SsmWorld::default()
    });
    assert!(
        e.contains("the bot demo has no running host")
            && e.contains("deploy it or check `clawsterctl status"),
        "{e}"
    );
    let e = case(SsmWorld {
        hosts: vec![
            (HOST.into(), "InService".into()),
            ("i-0aaaaaaaaaaaaaaa1".into(), "InService".into()),
        ],
        ..SsmWorld::default()
    });
    assert_eq!(
        e,
        format!("error: the bot demo has 2 running hosts (i-0aaaaaaaaaaaaaaa1, {HOST}): name one with --instance-id\n")
    );
    // --instance-id needs no bot.
    let sim = SsmSim::new(SsmWorld {
        bot_stack: false,
        ..SsmWorld::default()
    });
    let id: clawsterctl::ssm::InstanceId = "i-0123456789abcdef0".parse().unwrap();
    let r = run(&sim, Host::Instance(id), open_req(), ssm::render_window);
    assert_eq!(r.printed.code, 0, "{}", r.stderr());
    assert_eq!(sim.sent()[0].instances, ["i-0123456789abcdef0"]);
}

#[test]
fn no_final_answer_within_the_timeout() {
    let sim = world(vec![pending("Pending"), pending("InProgress")]);
    let r = run(&sim, demo(), open_req(), ssm::render_window);
    assert_eq!(r.printed.code, 2);
    assert!(r.took <= Duration::from_secs(120), "{:?}", r.took);
    assert_eq!(
        r.printed.stderr,
        format!(
            "error: no final answer from {HOST} within 2:00 (SSM last said InProgress)\n  next: the command may still run: `aws ssm get-command-invocation --command-id 5b1e7c2a-93d4-4f60-8a1b-2c3d4e5f6a7b --instance-id {HOST}` shows it later\n"
        )
    );
}

#[test]
fn health_of_a_host_and_of_the_nat_instance() {
    let report = fixture("health-degraded.json");
    let sim = world(vec![done("Failed", 1, &report, "")]);
    let r = run(&sim, demo(), Request::read(&ReadArgs::Health), |a| {
        ssm::render_health(a, false)
    });
    assert_eq!(r.printed.code, 1);
    assert!(
        r.printed.stdout.starts_with("CHECK "),
        "{}",
        r.printed.stdout
    );
    assert!(
        r.printed.stdout.lines().any(|l| l
            .split_whitespace()
            .take(2)
            .eq(["sysbox.user", "failed"])
            && l.ends_with("   no sysbox user in /etc/passwd")),
        "{}",
        r.printed.stdout
    );
    assert!(r.printed.stdout.ends_with("overall: degraded\n"));
    assert_eq!(sim.sent()[0].document, OPS_DOC);
    assert_eq!(sim.sent()[0].parameters.len(), 1);
    assert_eq!(sim.sent()[0].parameters["action"], ["health"]);

    let r = run(
        &world(vec![done("Failed", 1, &report, "")]),
        demo(),
        Request::read(&ReadArgs::Health),
        |a| ssm::render_health(a, true),
    );
    assert_eq!(r.printed.code, 1);
    assert_eq!(r.printed.stdout, report);

    // The agent could not check at all.
    let sim = world(vec![done(
        "Failed",
        2,
        "",
        "error: cannot check the live host: connecting to the D-Bus system bus: No such file or directory (os error 2)\n",
    )]);
    let r = run(&sim, demo(), Request::read(&ReadArgs::Health), |a| {
        ssm::render_health(a, false)
    });
    assert_eq!(r.printed.code, 2);
    assert!(
        r.printed
            .stderr
            .contains("the agent could not check the host: cannot check the live host"),
        "{}",
        r.printed.stderr
    );

    // The NAT instance, with the NAT agent's own report type.
    let nat = clawster_nat_agent::Report {
        healthy: true,
        table: "clawster_nat".into(),
        egress_interface: Some("ens5".into()),
        vpc_cidrs: vec!["10.0.0.0/16".into()],
        ruleset_verified: true,
        ruleset_changed: false,
        apply_ms: None,
        ip_forward: Some(true),
        foreign_drop_chains: vec![],
        conntrack: Some((37, 65536)),
        fast_path: true,
        fast_path_devices: vec!["ens5".into()],
        fast_path_off: None,
        problems: vec![],
    };
    let json = serde_json::to_string_pretty(&nat).unwrap();
    let sim = world(vec![done("Success", 0, &json, "")]);
    let r = run(&sim, Host::Nat, Request::read(&ReadArgs::NatStatus), |a| {
        ssm::render_health(a, false)
    });
    assert_eq!(r.printed.code, 0, "{}", r.stderr());
    assert_eq!(sim.sent()[0].instances, ["i-0nat"]);
    assert_eq!(sim.sent()[0].parameters["action"], ["nat-status"]);
    assert!(
        r.printed.stdout.ends_with("overall: ok\n"),
        "{}",
        r.printed.stdout
    );
}

#[test]
fn cut_output_is_said() {
    // A health report longer than SSM keeps: the JSON cannot be read.
    let report = fixture("health-degraded.json");
    let long = report.replace("no sysbox user", &"x".repeat(30_000));
    let cut: String = long.chars().take(24_000).collect();
    let sim = world(vec![done("Failed", 1, &cut, "")]);
    let r = run(&sim, demo(), Request::read(&ReadArgs::Health), |a| {
        ssm::render_health(a, false)
    });
    assert_eq!(r.printed.code, 2);
    assert_eq!(
        r.printed.stderr,
        "error: could not check the host: the report was cut at 24,000 characters by SSM and cannot be read\n\
         note: the host's stdout was cut at 24,000 characters (SSM keeps no more)\n"
    );

    // Journal lines: the newest are kept, the rest is said.
    let lines = fixture("window-logs.jsonl");
    let many: String = std::iter::repeat_n(lines.as_str(), 20).collect();
    let cut: String = many.chars().take(24_000).collect();
    let sim = world(vec![done("Success", 0, &cut, "")]);
    let req = Request::read(&ReadArgs::logs(Some("2d"), true).unwrap());
    let r = run(&sim, demo(), req, ssm::render_logs);
    assert_eq!(r.printed.code, 0);
    assert!(
        r.printed
            .stdout
            .contains("note: the oldest records were cut off"),
        "{}",
        r.printed.stdout
    );
    assert!(
        r.printed
            .stderr
            .contains("oldest are missing; ask for a shorter --since"),
        "{}",
        r.printed.stderr
    );
    assert_eq!(sim.sent()[0].parameters["since"], ["2d"]);
    assert_eq!(sim.sent()[0].parameters["action"], ["window-logs"]);
}

/// The operator's view of the four commands, printed with --nocapture.
#[test]
fn show_the_operator_output() {
    let mut all = String::new();
    let mut show = |title: &str, r: Run| {
        all.push_str(&format!(
            "$ {title}\n{}{}[exit {}]\n\n",
            r.stderr(),
            r.printed.stdout,
            r.printed.code
        ));
    };
    let sim = world(vec![
        pending("InProgress"),
        done("Success", 0, &fixture("window-open.txt"), ""),
    ]);
    show(
        "clawsterctl window open demo --pkgs hello,htop --ttl 10m --reason \"ticket 42\"",
        run(&sim, demo(), open_req(), ssm::render_window),
    );
    let sim = world(vec![done("Success", 0, &fixture("window-status.txt"), "")]);
    show(
        "clawsterctl window status demo",
        run(
            &sim,
            demo(),
            Request::window(&WindowArgs::Status { json: false }),
            ssm::render_window,
        ),
    );
    let sim = world(vec![done(
        "Failed",
        1,
        &fixture("health-degraded.json"),
        "",
    )]);
    show(
        "clawsterctl health demo",
        run(&sim, demo(), Request::read(&ReadArgs::Health), |a| {
            ssm::render_health(a, false)
        }),
    );
    let sim = world(vec![done("Success", 0, &fixture("window-logs.jsonl"), "")]);
    show(
        "clawsterctl logs demo --window",
        run(
            &sim,
            demo(),
            Request::read(&ReadArgs::logs(None, true).unwrap()),
            ssm::render_logs,
        ),
    );
    println!("{all}");
    assert!(all.contains("[exit 0]") && all.contains("[exit 1]"));
    assert!(all.contains("window.request   ok"), "{all}");
}
