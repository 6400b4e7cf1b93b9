//! `clawsterctl consolidate` and `consolidate --undo` end to end against the moto AWS emulator.
//!
//! Three bots are deployed with their own load balancers; consolidate leaves one load balancer
//! (the shared stack's) with three listeners, one per bot on its own port, forwarding to the
//! three target groups, no bot stack with a load balancer of its own, every bot's target healthy
//! and `status` showing the new URLs; running it again changes nothing. A redeploy keeps a bot on
//! the shared load balancer and `deploy --shared-lb` places a fourth bot on the next port.
//! `--undo` takes that fourth bot back onto a load balancer of its own; for the other three it
//! meets a moto bug (see the test) and so checks that a failed switch is reverted at once with
//! every bot reachable.
//!
//! moto never registers ECS tasks with a target group, so a helper thread registers a task
//! address in each bot's target group (moto then reports it healthy), as ECS would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TEST_IMAGE;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clawsterctl::aws::Aws;
use common::moto::{release_dir, text, Moto};

const BOTS: [&str; 3] = ["alpha", "beta", "gamma"];

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The region's load balancers by name.
async fn load_balancers(aws: &Aws) -> BTreeSet<String> {
    let out = aws.elb.describe_load_balancers().send().await.unwrap();
    out.load_balancers()
        .iter()
        .filter_map(|l| l.load_balancer_name().map(str::to_string))
        .collect()
}

/// (port, forwarded target group) of every listener of a load balancer.
async fn listeners(aws: &Aws, lb_name: &str) -> Vec<(i32, String)> {
    let lbs = aws
        .elb
        .describe_load_balancers()
        .names(lb_name)
        .send()
        .await
        .unwrap();
    let arn = lbs.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let out = aws
        .elb
        .describe_listeners()
        .load_balancer_arn(arn)
        .send()
        .await
        .unwrap();
    let mut v: Vec<(i32, String)> = out
        .listeners()
        .iter()
        .map(|l| {
            let a = &l.default_actions()[0];
            (
                l.port().unwrap_or_default(),
                a.target_group_arn()
                    .unwrap_or(a.r#type().map(|t| t.as_str()).unwrap_or("?"))
                    .to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Logical ids of a stack's resources.
async fn resources(aws: &Aws, stack: &str) -> BTreeSet<String> {
    let out = aws
        .cfn
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    out.stack_resources()
        .iter()
        .filter_map(|r| r.logical_resource_id().map(str::to_string))
        .collect()
}

async fn bot(aws: &Aws, name: &str) -> clawsterctl::stack::StackInfo {
    clawsterctl::stack::describe(aws, &format!("clawster-bot-{name}"))
        .await
        .unwrap()
        .expect("bot stack")
}

/// `status`'s row of each bot.
fn status_rows(moto: &Moto) -> std::collections::BTreeMap<String, String> {
    let out = moto.ctl(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    BOTS.iter()
        .map(|b| {
            let row = text
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(b))
                .unwrap_or_else(|| panic!("no status row for {b}: {text}"));
            (b.to_string(), row.to_string())
        })
        .collect()
}

#[test]
fn consolidate_three_bots_onto_one_load_balancer_and_back() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let dist = release_dir(&work.path().join("dist"));
    let dist = dist.to_str().unwrap();
    let rt = rt();
    let aws = rt.block_on(moto.aws());
    // --detach: the deploys return once the task is asked for; the registrar starts after them,
    // so nothing else talks to moto while it creates the stacks.
    for b in BOTS {
        let out = moto.ctl(&[
            "deploy",
            b,
            "--image",
            TEST_IMAGE,
            "--artifacts",
            dist,
            "--yes",
            "--detach",
            "--timeout",
            "10m",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        if b == "beta" {
            // From the second bot on, deploy names the saving (and changes nothing for it).
            assert!(text(&out).contains("suggestion: with 2 bots in us-east-1, one shared load balancer would save about $23.72 a month"), "{}", text(&out));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reg = common::moto::registrar(&moto, stop.clone());
    let before = rt.block_on(load_balancers(&aws));
    assert_eq!(
        before,
        BOTS.iter().map(|b| format!("clawster-{b}")).collect()
    );
    let tgs: Vec<String> = BOTS
        .iter()
        .map(|b| rt.block_on(bot(&aws, b)).outputs["TargetGroupArn"].clone())
        .collect();

    // Without consent nothing moves.
    let out = moto.ctl(&["consolidate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(rt.block_on(load_balancers(&aws)), before);

    let out = moto.ctl(&["consolidate", "--yes", "--timeout", "10m"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    println!("{t}");
    assert_eq!(
        rt.block_on(load_balancers(&aws)),
        BTreeSet::from(["clawster-shared".to_string()]),
        "{t}"
    );
    // One listener per bot on its own port, forwarding to that bot's target group.
    let shared = rt.block_on(listeners(&aws, "clawster-shared"));
    assert_eq!(
        shared,
        vec![
            (8001, tgs[0].clone()),
            (8002, tgs[1].clone()),
            (8003, tgs[2].clone())
        ],
        "{t}"
    );
    let shared_stack = rt
        .block_on(clawsterctl::stack::describe(
            &aws,
            "clawster-shared-lb-us-east-1",
        ))
        .unwrap()
        .unwrap();
    let dns = shared_stack.outputs["SharedLoadBalancerDns"].clone();
    for (i, b) in BOTS.iter().enumerate() {
        let info = rt.block_on(bot(&aws, b));
        let res = rt.block_on(resources(&aws, &info.name));
        assert!(
            !res.contains("LoadBalancer")
                && !res.contains("HttpListener")
                && res.contains("SharedListener"),
            "{b}: {res:?}"
        );
        assert_eq!(info.parameters["LoadBalancing"], "shared");
        let url = format!("http://{dns}:{}", 8001 + i);
        assert_eq!(info.outputs["Url"], url);
        assert!(
            regex::Regex::new(&format!(r"bot {b}: moved to the shared load balancer, port {} \(target healthy\), unreachable \d+\.\ds, {}", 8001 + i, regex::escape(&url)))
                .unwrap()
                .is_match(&t),
            "{t}"
        );
        // No move is left half done.
        let rec = rt.block_on(
            aws.ssm
                .get_parameter()
                .name(format!("/clawster/{b}/load-balancer-move"))
                .send(),
        );
        assert!(rec.is_err(), "{b}: record left: {rec:?}");
    }
    // `status` shows every bot at its new URL with its target healthy. (moto's UpdateStack
    // re-applies every resource of the template, so it also puts the services back to the
    // template's DesiredCount 0 and status counts 0/0 tasks; CloudFormation leaves a resource
    // whose properties did not change alone, and bot_layouts.rs checks that the service, task
    // definition and task security group are the same in every layout.)
    let st = status_rows(&moto);
    for (i, b) in BOTS.iter().enumerate() {
        let row = &st[*b];
        // (The column between target health and URL is the state replica's last sync.)
        assert!(
            row.contains(" healthy ") && row.contains(&format!(" http://{dns}:{} ", 8001 + i)),
            "{row}"
        );
    }

    // Again: nothing to do.
    let out = moto.ctl(&["consolidate", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));

    // A redeploy keeps a bot where it is; --shared-lb places a new bot on the next free port.
    let out = moto.ctl(&[
        "deploy",
        "alpha",
        "--image",
        TEST_IMAGE,
        "--artifacts",
        dist,
        "--yes",
        "--detach",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("= bot stack clawster-bot-alpha: no changes"),
        "{t}"
    );
    assert_eq!(
        rt.block_on(bot(&aws, "alpha")).parameters["LoadBalancing"],
        "shared"
    );
    let out = moto.ctl(&[
        "deploy",
        "delta",
        "--image",
        TEST_IMAGE,
        "--shared-lb",
        "--artifacts",
        dist,
        "--yes",
        "--detach",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("its entry on the shared load balancer: port 8004"),
        "{t}"
    );
    let delta = rt.block_on(bot(&aws, "delta"));
    assert_eq!(delta.outputs["Url"], format!("http://{dns}:8004"));
    assert!(!rt
        .block_on(resources(&aws, &delta.name))
        .contains("LoadBalancer"));
    let delta_tg = delta.outputs["TargetGroupArn"].clone();
    let shared = rt.block_on(listeners(&aws, "clawster-shared"));
    assert_eq!(shared.last(), Some(&(8004, delta_tg.clone())), "{shared:?}");
    assert_eq!(
        rt.block_on(load_balancers(&aws)),
        BTreeSet::from(["clawster-shared".to_string()])
    );

    // Back. moto can do this only for delta: its stack update removes a resource without
    // forgetting it, so when a consolidated bot's own `LoadBalancer` comes back under the same
    // logical id moto hands out the deleted one and the switch fails with ListenerNotFound.
    // That exercises the failure path for the other three: the switch is reverted at once and
    // each stays reachable on the shared load balancer, its move record gone.
    let out = moto.ctl(&["consolidate", "--undo", "--yes", "--timeout", "10m"]);
    let t = text(&out);
    println!("{t}");
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("alpha is reachable again where it was (the released listener forwards again)"),
        "{t}"
    );
    let shared = rt.block_on(listeners(&aws, "clawster-shared"));
    assert_eq!(
        shared[..3],
        [
            (8001, tgs[0].clone()),
            (8002, tgs[1].clone()),
            (8003, tgs[2].clone())
        ],
        "every entry forwards again: {t}"
    );
    let st = status_rows(&moto);
    for (i, b) in BOTS.iter().enumerate() {
        let rec = rt.block_on(
            aws.ssm
                .get_parameter()
                .name(format!("/clawster/{b}/load-balancer-move"))
                .send(),
        );
        assert!(rec.is_err(), "{b}: record left: {rec:?}");
        assert!(
            st[*b].contains(" healthy ")
                && st[*b].contains(&format!(" http://{dns}:{} ", 8001 + i)),
            "{}",
            st[*b]
        );
    }
    // delta is back on a load balancer of its own, forwarding to its target group, at its own
    // URL, unreachable only for its switch.
    let back = rt.block_on(bot(&aws, "delta"));
    assert_eq!(back.parameters["LoadBalancing"], "dedicated");
    assert_eq!(
        rt.block_on(listeners(&aws, "clawster-delta")),
        vec![(80, delta_tg)]
    );
    let url = back.outputs["Url"].clone();
    assert!(url.starts_with("http://clawster-delta-"), "{url}");
    assert!(
        regex::Regex::new(&format!(
            r"bot delta: back on its own load balancer \(target healthy\), unreachable \d+\.\ds, {}",
            regex::escape(&url)
        ))
        .unwrap()
        .is_match(&t),
        "{t}"
    );
    // --shared-lb does not move a bot that has its own load balancer; it says how.
    let out = moto.ctl(&[
        "deploy",
        "delta",
        "--image",
        TEST_IMAGE,
        "--shared-lb",
        "--artifacts",
        dist,
        "--yes",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("bot delta already has its own load balancer")
            && t.contains("clawsterctl consolidate --region us-east-1"),
        "{t}"
    );

    stop.store(true, Ordering::SeqCst);
    reg.join().unwrap();
}

#[test]
fn destroy_shared_takes_the_shared_load_balancer_stack_once_no_bot_is_left() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let dist = release_dir(&work.path().join("dist"));
    let dist = dist.to_str().unwrap();
    let rt = rt();
    let aws = rt.block_on(moto.aws());
    let out = moto.ctl(&[
        "deploy",
        "solo",
        "--image",
        TEST_IMAGE,
        "--shared-lb",
        "--artifacts",
        dist,
        "--yes",
        "--detach",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("✓ shared load balancer clawster-shared-lb-us-east-1: created"),
        "{t}"
    );
    assert!(
        t.contains("its entry on the shared load balancer: port 8001"),
        "{t}"
    );
    // While a bot is there, the shared stacks stay.
    let out = moto.ctl(&["destroy", "--shared", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("clawster-bot-solo"), "{}", text(&out));
    let out = moto.ctl(&["destroy", "solo", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = moto.ctl(&["destroy", "--shared", "--yes"]);
    let t = text(&out);
    assert!(
        t.contains("✓ shared load balancer stack clawster-shared-lb-us-east-1: deleted"),
        "{t}"
    );
    assert!(rt
        .block_on(clawsterctl::stack::describe(
            &aws,
            "clawster-shared-lb-us-east-1"
        ))
        .unwrap()
        .is_none());
}
