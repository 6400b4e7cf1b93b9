//! `clawsterctl consolidate` on a scripted timeline (aws-smithy-mocks, virtual time): the
//! downtime of a move per bot, and a Ctrl-C between the two listener changes (after the bot's own
//! load balancer let go, before the shared one forwards) recovered by the next run; a rule
//! priority taken meanwhile, retried; and the way back (`--undo`).
//!
//! The world: one bot `alpha` on its own load balancer, the region's shared load balancer stack
//! in place. A bot stack update takes 30 s; the listener change it carries lands 12 s into it
//! (the rest is CloudFormation deleting the old load balancer); a target turns healthy 10 s after
//! a load balancer starts forwarding to its group (two 5 s health checks).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudformation as cfn;
use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_ssm as ssm;
use aws_smithy_mocks::{mock, mock_client, MockResponse, RuleMode};
use clawsterctl::aws::Aws;
use clawsterctl::bot::{self, Entry, Layout};
use clawsterctl::consolidate::{self, Options};
use clawsterctl::pace::{Pace, VIRTUAL_EPOCH_MS};
use clawsterctl::progress::{Event, Ui};
use common::*;

const BOT: &str = "clawster-bot-alpha";
const BOT_ARN: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/clawster-bot-alpha/11111111-2222-3333-4444-555555555555";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/clawster-alpha-tg/0123456789abcdef";
const OWN_LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/clawster-alpha/aaaa/1111";
const SHARED_LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/clawster-shared/bbbb/8001";
const SHARED_RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/clawster-shared/bbbb/443/cccc";
const UPDATE_S: u64 = 30;
const SWITCH_AT_S: u64 = 12;
const HEALTHY_AFTER_S: u64 = 10;

/// What AWS holds, on the run's clock.
#[derive(Debug)]
struct World {
    /// The clock of the run in progress.
    pace: Pace,
    layout: Layout,
    /// The running update: (start ms, layout before).
    update: Option<(u64, Layout)>,
    /// Since when a load balancer forwards to the target group.
    forwarding_since: Option<u64>,
    ssm: BTreeMap<String, String>,
    calls: Vec<String>,
    /// The shared load balancer serves bots by host name under this domain.
    domain: Option<&'static str>,
    /// Rule priorities another bot holds on the shared HTTPS listener: the first already when
    /// ctl looks, the others taken between ctl's look and its update.
    taken: Vec<u16>,
    /// Why the running update fails (it rolls back at its end).
    failing: Option<String>,
    rolled_back: bool,
    /// The run is `consolidate --undo`.
    undo: bool,
    /// The shared load balancer's stack was deleted.
    lb_deleted: bool,
}

impl World {
    fn now(&self) -> u64 {
        self.pace.unix_ms()
    }

    fn secs(&self) -> String {
        format!("{:.0}s", (self.now() - VIRTUAL_EPOCH_MS) as f64 / 1000.0)
    }

    /// Lets the running update progress to now: its listener change, then its end.
    fn advance(&mut self) {
        let now = self.now();
        if let Some((start, _)) = self.update {
            let switch = start + SWITCH_AT_S * 1000;
            let final_forwards = matches!(self.layout, Layout::Shared(_) | Layout::Dedicated);
            if now >= switch && final_forwards && self.forwarding_since.is_none() {
                self.forwarding_since = Some(switch);
                self.calls.push(format!(
                    "(cfn applies {}: forwards again at {}s)",
                    self.layout.kind(),
                    (switch - VIRTUAL_EPOCH_MS) / 1000
                ));
            }
            if now >= start + UPDATE_S * 1000 {
                if let (Some(why), Some((_, before))) = (self.failing.clone(), self.update.take()) {
                    self.calls.push(format!("(cfn rolls back: {why})"));
                    self.layout = before;
                    self.rolled_back = true;
                }
                self.update = None;
            }
        }
    }

    fn status(&self) -> &'static str {
        match (&self.update, self.rolled_back) {
            (Some(_), _) => "UPDATE_IN_PROGRESS",
            (None, true) => "UPDATE_ROLLBACK_COMPLETE",
            (None, false) => "UPDATE_COMPLETE",
        }
    }
}

type W = Arc<Mutex<World>>;

fn options(layout: &Layout) -> clawsterctl::bot::BotOptions {
    let mut o = bot_options("alpha", "us-east-1", None);
    o.layout = layout.clone();
    o
}

fn stack(w: &World) -> cfn::types::Stack {
    let mut params = layout_params(&w.layout);
    params.insert("SharedStackName".into(), "clawster-shared-us-east-1".into());
    params.insert(
        "OpenClawConfigSecretArn".into(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:clawster/alpha/config-AbCdEf".into(),
    );
    let url = match w.layout.shared() {
        Some((Entry::Port(p), bot::Role::Forward)) => {
            format!("http://clawster-shared-1.us-east-1.elb.amazonaws.com:{p}")
        }
        Some((Entry::Host { name, .. }, bot::Role::Forward)) => format!("https://{name}"),
        _ => "http://clawster-alpha-1.us-east-1.elb.amazonaws.com".into(),
    };
    let mut b = cfn::types::Stack::builder()
        .stack_name(BOT)
        .stack_id(BOT_ARN)
        .stack_status(cfn::types::StackStatus::from(w.status()))
        .set_stack_status_reason(w.failing.clone().filter(|_| w.rolled_back))
        .creation_time(cfn::primitives::DateTime::from_secs(1_796_000_000));
    for (k, v) in params {
        b = b.parameters(
            cfn::types::Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build(),
        );
    }
    for (k, v) in [
        ("TargetGroupArn", TG.to_string()),
        ("Url", url),
        ("ClusterName", "clawster-alpha".into()),
        ("ServiceName", "clawster-alpha".into()),
    ] {
        b = b.outputs(
            cfn::types::Output::builder()
                .output_key(k)
                .output_value(v)
                .build(),
        );
    }
    b.build()
}

fn layout_params(l: &Layout) -> BTreeMap<String, String> {
    l.parameters()
}

fn other_stack(name: &str, outputs: &[(&str, &str)]) -> cfn::types::Stack {
    let mut b = cfn::types::Stack::builder()
        .stack_name(name)
        .stack_id(format!(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/0"
        ))
        .stack_status(cfn::types::StackStatus::CreateComplete)
        .creation_time(cfn::primitives::DateTime::from_secs(1_796_000_000));
    for (k, v) in outputs {
        b = b.outputs(
            cfn::types::Output::builder()
                .output_key(*k)
                .output_value(*v)
                .build(),
        );
    }
    b.build()
}

fn meta(code: &str, msg: &str) -> cfn::error::ErrorMetadata {
    cfn::error::ErrorMetadata::builder()
        .code(code)
        .message(msg)
        .build()
}

fn aws(w: &W) -> Aws {
    let w1 = w.clone();
    let describe = mock!(cfn::Client::describe_stacks).then_compute_response(move |i| {
        let mut w = w1.lock().unwrap();
        w.advance();
        let shared = other_stack("clawster-shared-us-east-1", &[]);
        let mut outputs = vec![
            ("SharedLoadBalancerArn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/clawster-shared/bbbb"),
            ("SharedLoadBalancerDns", "clawster-shared-1.us-east-1.elb.amazonaws.com"),
            ("SharedAlbSecurityGroupId", "sg-0shared"),
        ];
        if let Some(d) = w.domain {
            outputs.push(("SharedHttpsListenerArn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/clawster-shared/bbbb/443"));
            outputs.push(("SharedLbDomain", d));
        }
        let mut lb = other_stack("clawster-shared-lb-us-east-1", &outputs);
        if w.lb_deleted {
            lb.stack_status = Some(cfn::types::StackStatus::DeleteComplete);
        }
        let all = vec![shared, lb, stack(&w)];
        let wanted: Vec<cfn::types::Stack> = match i.stack_name() {
            None => all,
            Some(n) => all.into_iter().filter(|s| s.stack_name() == Some(n) || s.stack_id() == Some(n)).collect(),
        };
        if i.stack_name().is_some() && wanted.is_empty() {
            return MockResponse::Error(cfn::operation::describe_stacks::DescribeStacksError::generic(meta(
                "ValidationError",
                &format!("Stack with id {} does not exist", i.stack_name().unwrap_or_default()),
            )));
        }
        MockResponse::Output(cfn::operation::describe_stacks::DescribeStacksOutput::builder().set_stacks(Some(wanted)).build())
    });
    let events = mock!(cfn::Client::describe_stack_events).then_compute_output(|_| {
        cfn::operation::describe_stack_events::DescribeStackEventsOutput::builder().build()
    });
    let w2 = w.clone();
    let template = mock!(cfn::Client::get_template).then_compute_output(move |_| {
        let w = w2.lock().unwrap();
        cfn::operation::get_template::GetTemplateOutput::builder()
            .template_body(bot::template(&options(&w.layout), &release()).to_string())
            .build()
    });
    let w3 = w.clone();
    let update = mock!(cfn::Client::update_stack).then_compute_output(move |i| {
        let mut w = w3.lock().unwrap();
        let params: BTreeMap<String, String> = i
            .parameters()
            .iter()
            .map(|p| {
                (
                    p.parameter_key().unwrap().to_string(),
                    p.parameter_value().unwrap().to_string(),
                )
            })
            .collect();
        let to = Layout::from_parameters(&params).unwrap();
        let body: serde_json::Value = serde_json::from_str(i.template_body().unwrap()).unwrap();
        // The template consolidate sends is exactly what deploy would render for that layout.
        assert_eq!(
            body,
            bot::template(&options(&to), &release()),
            "UpdateStack to {to}"
        );
        let s = w.secs();
        w.calls.push(format!(
            "{s} cfn.UpdateStack {BOT} to {} ({})",
            to.kind(),
            to.shared().map(|(e, _)| e.to_string()).unwrap_or_default()
        ));
        w.rolled_back = false;
        w.failing = match to.shared() {
            Some((Entry::Host { priority, .. }, _)) if w.taken.contains(priority) => Some(format!(
                "The following resource(s) failed to create: [SharedRule]. Priority '{priority}' is currently in use (Service: ElasticLoadBalancingV2, Status Code: 400, Error Code: PriorityInUse)"
            )),
            _ => None,
        };
        let before = std::mem::replace(&mut w.layout, to);
        w.update = Some((w.now(), before));
        cfn::operation::update_stack::UpdateStackOutput::builder()
            .stack_id(BOT_ARN)
            .build()
    });
    let w4 = w.clone();
    let resources = mock!(cfn::Client::list_stack_resources).then_compute_output(move |_| {
        let w = w4.lock().unwrap();
        let mut out = cfn::operation::list_stack_resources::ListStackResourcesOutput::builder();
        let mut add = |id: &str, physical: &str| {
            out = std::mem::take(&mut out).stack_resource_summaries(
                cfn::types::StackResourceSummary::builder()
                    .logical_resource_id(id)
                    .physical_resource_id(physical)
                    .resource_type("AWS::ElasticLoadBalancingV2::Listener")
                    .resource_status(cfn::types::ResourceStatus::CreateComplete)
                    .last_updated_timestamp(cfn::primitives::DateTime::from_secs(1_796_000_000))
                    .build(),
            );
        };
        if w.layout.dedicated().is_some() {
            add("HttpListener", OWN_LISTENER);
        }
        match w.layout.shared() {
            Some((Entry::Port(_), _)) => add("SharedListener", SHARED_LISTENER),
            Some((Entry::Host { .. }, _)) => add("SharedRule", SHARED_RULE),
            None => {}
        }
        out.build()
    });
    let w11 = w.clone();
    let delete = mock!(cfn::Client::delete_stack).then_compute_output(move |i| {
        let mut w = w11.lock().unwrap();
        let s = w.secs();
        w.calls.push(format!(
            "{s} cfn.DeleteStack {}",
            i.stack_name().unwrap_or_default()
        ));
        w.lb_deleted = true;
        cfn::operation::delete_stack::DeleteStackOutput::builder().build()
    });
    let cfn_client = mock_client!(
        cfn,
        RuleMode::MatchAny,
        [&describe, &events, &template, &update, &resources, &delete],
        |c| c.retry_config(cfn::config::retry::RetryConfig::disabled())
    );

    let w5 = w.clone();
    let modify = mock!(elb::Client::modify_listener).then_compute_output(move |i| {
        let mut w = w5.lock().unwrap();
        w.advance();
        let a = &i.default_actions()[0];
        let kind = a.r#type().unwrap().as_str().to_string();
        let s = w.secs();
        w.calls.push(format!(
            "{s} elb.ModifyListener {} -> {kind}",
            if i.listener_arn() == Some(OWN_LISTENER) {
                "own"
            } else {
                "shared"
            }
        ));
        if kind == "forward" {
            let now = w.now();
            w.forwarding_since = Some(now);
        } else {
            w.forwarding_since = None;
        }
        elb::operation::modify_listener::ModifyListenerOutput::builder().build()
    });
    let listeners = mock!(elb::Client::describe_listeners).then_compute_output(|_| {
        elb::operation::describe_listeners::DescribeListenersOutput::builder().build()
    });
    let w6 = w.clone();
    let health = mock!(elb::Client::describe_target_health).then_compute_output(move |_| {
        let mut w = w6.lock().unwrap();
        w.advance();
        let now = w.now();
        let (state, reason) = match w.forwarding_since {
            Some(f) if now >= f + HEALTHY_AFTER_S * 1000 => ("healthy", None),
            Some(_) => ("initial", Some("Elb.InitialHealthChecking")),
            None => ("unused", Some("Target.NotInUse")),
        };
        elb::operation::describe_target_health::DescribeTargetHealthOutput::builder()
            .target_health_descriptions(
                elb::types::TargetHealthDescription::builder()
                    .target(
                        elb::types::TargetDescription::builder()
                            .id("10.0.16.10")
                            .port(18789)
                            .build(),
                    )
                    .target_health(
                        elb::types::TargetHealth::builder()
                            .state(elb::types::TargetHealthStateEnum::from(state))
                            .set_reason(reason.map(elb::types::TargetHealthReasonEnum::from))
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let w10 = w.clone();
    let rules = mock!(elb::Client::describe_rules).then_compute_output(move |_| {
        let w = w10.lock().unwrap();
        let mut out = elb::operation::describe_rules::DescribeRulesOutput::builder().rules(
            elb::types::Rule::builder()
                .priority("default")
                .is_default(true)
                .build(),
        );
        if let Some(p) = w.taken.first() {
            out = out.rules(elb::types::Rule::builder().priority(p.to_string()).build());
        }
        out.build()
    });
    let elb_client = mock_client!(
        elb,
        RuleMode::MatchAny,
        [&modify, &listeners, &health, &rules],
        |c| c.retry_config(elb::config::retry::RetryConfig::disabled())
    );

    let w7 = w.clone();
    let get = mock!(ssm::Client::get_parameter).then_compute_response(move |i| {
        let w = w7.lock().unwrap();
        match w.ssm.get(i.name().unwrap()) {
            Some(v) => MockResponse::Output(
                ssm::operation::get_parameter::GetParameterOutput::builder()
                    .parameter(
                        ssm::types::Parameter::builder()
                            .name(i.name().unwrap())
                            .value(v)
                            .build(),
                    )
                    .build(),
            ),
            None => MockResponse::Error(
                ssm::operation::get_parameter::GetParameterError::ParameterNotFound(
                    ssm::types::error::ParameterNotFound::builder().build(),
                ),
            ),
        }
    });
    let w8 = w.clone();
    let put = mock!(ssm::Client::put_parameter).then_compute_output(move |i| {
        let mut w = w8.lock().unwrap();
        let s = w.secs();
        w.calls
            .push(format!("{s} ssm.PutParameter {}", i.value().unwrap()));
        w.ssm
            .insert(i.name().unwrap().into(), i.value().unwrap().into());
        ssm::operation::put_parameter::PutParameterOutput::builder().build()
    });
    let w9 = w.clone();
    let delete = mock!(ssm::Client::delete_parameter).then_compute_output(move |i| {
        let mut w = w9.lock().unwrap();
        let s = w.secs();
        w.calls.push(format!("{s} ssm.DeleteParameter"));
        w.ssm.remove(i.name().unwrap());
        ssm::operation::delete_parameter::DeleteParameterOutput::builder().build()
    });
    let ssm_client = mock_client!(ssm, RuleMode::MatchAny, [&get, &put, &delete], |c| c
        .retry_config(ssm::config::retry::RetryConfig::disabled()));

    let scripted = sim::Sim::new(sim::World::default()).aws();
    Aws {
        cfn: cfn_client,
        elb: elb_client,
        ssm: ssm_client,
        ..scripted
    }
}

/// One run of consolidate on `pace` (the operator's Ctrl-C at `interrupt_at` seconds of it).
fn run(
    w: &W,
    pace: Pace,
    interrupt_at: Option<u64>,
) -> (Result<String, clawsterctl::deploy::Fail>, String) {
    w.lock().unwrap().pace = pace.clone();
    if let Some(t) = interrupt_at {
        pace.interrupt_at(Duration::from_secs(t));
    }
    let buf: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let ui = Ui::lines(buf.clone(), false, pace);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = Options {
        undo: w.lock().unwrap().undo,
        https: None,
        yes: true,
        timeout: Duration::from_secs(1800),
    };
    let aws = aws(w);
    let result = rt.block_on(consolidate::run(&aws, &ui, &opts, &|_| Some(true)));
    let (ok, summary, next) = match &result {
        Ok(s) => (true, s.clone(), vec![]),
        Err(f) => (false, f.message.clone(), f.next.clone()),
    };
    ui.emit(Event::Finish { ok, summary, next });
    let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    (result, out)
}

fn world() -> W {
    Arc::new(Mutex::new(World {
        pace: Pace::virtual_time(Duration::from_secs(5)),
        layout: Layout::Dedicated,
        update: None,
        forwarding_since: Some(VIRTUAL_EPOCH_MS - 3_600_000),
        ssm: BTreeMap::new(),
        calls: Vec::new(),
        domain: None,
        taken: Vec::new(),
        failing: None,
        rolled_back: false,
        undo: false,
        lb_deleted: false,
    }))
}

#[test]
fn a_move_prints_the_bots_downtime_from_release_to_a_healthy_target() {
    let w = world();
    let (result, out) = run(&w, Pace::virtual_time(Duration::from_secs(5)), None);
    println!("{out}\n{:#?}", w.lock().unwrap().calls);
    let summary = result.expect("consolidated");
    // Joining takes 0-30 s; the own listener lets go at 30 s; the shared listener forwards at
    // 42 s, the target is healthy from 52 s and first seen healthy at the 55 s poll.
    assert!(summary.contains("alpha: moved to the shared load balancer, port 8001 (target healthy), unreachable 25.0s, http://clawster-shared-1.us-east-1.elb.amazonaws.com:8001"), "{summary}");
    let w = w.lock().unwrap();
    assert_eq!(w.layout, Layout::Shared(Entry::Port(8001)));
    assert!(w.ssm.is_empty(), "the record is gone: {:?}", w.ssm);
    let order: Vec<&str> = w
        .calls
        .iter()
        .map(String::as_str)
        .filter(|c| !c.contains("ssm."))
        .collect();
    assert_eq!(
        order,
        [
            "0s cfn.UpdateStack clawster-bot-alpha to joining (port 8001)",
            "30s elb.ModifyListener own -> fixed-response",
            "30s cfn.UpdateStack clawster-bot-alpha to shared (port 8001)",
            "(cfn applies shared: forwards again at 42s)",
        ],
        "{out}"
    );
}

#[test]
fn ctrl_c_between_the_two_listener_changes_is_finished_by_the_next_run() {
    let w = world();
    // Ctrl-C at 35 s: the own listener let go at 30 s, the shared one forwards only at 42 s.
    let (result, out) = run(&w, Pace::virtual_time(Duration::from_secs(5)), Some(35));
    println!("{out}");
    let f = result.expect_err("interrupted");
    assert_eq!(f.code, 130, "{out}");
    assert!(f.message.contains("alpha is unreachable (one load balancer let go of it, the switch to the shared load balancer, port 8001 did not finish)"), "{out}");
    assert!(
        f.next[0].contains("`clawsterctl consolidate --region us-east-1` finishes the move"),
        "{out}"
    );
    {
        let w = w.lock().unwrap();
        let rec: serde_json::Value =
            serde_json::from_str(&w.ssm["/clawster/alpha/load-balancer-move"]).unwrap();
        assert_eq!(rec["step"], "released", "{rec}");
        assert_eq!(rec["released_at_ms"], VIRTUAL_EPOCH_MS + 30_000);
        assert!(
            w.forwarding_since.is_none(),
            "nothing forwards at the Ctrl-C"
        );
    }

    // The operator runs it again 15 s later; the stack update (sent before the Ctrl-C) is still
    // running and lands its listener change meanwhile.
    let pace = Pace::virtual_time(Duration::from_secs(5));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(pace.sleep(Duration::from_secs(50)));
    let (result, out) = run(&w, pace, None);
    println!("{out}\n{:#?}", w.lock().unwrap().calls);
    let summary = result.expect("finished");
    assert!(
        out.contains("clawster-bot-alpha is UPDATE_IN_PROGRESS: waiting for it"),
        "{out}"
    );
    assert!(out.contains("alpha: an earlier run was stopped during its switch (its old load balancer let go 30.0s ago)"), "{out}");
    // Measured from the release recorded by the first run to the healthy target the second run
    // saw once the update ended (60 s).
    assert!(summary.contains("alpha: moved to the shared load balancer, port 8001 (target healthy), unreachable 30.0s"), "{summary}");
    let w = w.lock().unwrap();
    assert_eq!(w.layout, Layout::Shared(Entry::Port(8001)));
    assert!(w.ssm.is_empty(), "the record is gone: {:?}", w.ssm);
    // The second run changed no listener and sent no update: it only finished and measured.
    let updates = w
        .calls
        .iter()
        .filter(|c| c.contains("UpdateStack") || c.contains("ModifyListener"))
        .count();
    assert_eq!(updates, 3, "{:#?}", w.calls);
}

#[test]
fn a_rule_priority_taken_meanwhile_is_retried_with_the_next_before_the_bot_stops_answering() {
    let w = world();
    {
        let mut w = w.lock().unwrap();
        w.domain = Some("bots.example.com");
        // Priority 1 is taken when ctl looks; 2 is taken by another move before ctl's update.
        w.taken = vec![1, 2];
    }
    let (result, out) = run(&w, Pace::virtual_time(Duration::from_secs(5)), None);
    println!("{out}\n{:#?}", w.lock().unwrap().calls);
    let summary = result.expect("consolidated");
    assert!(
        out.contains("alpha: host alpha.bots.example.com (rule priority 2) was taken meanwhile"),
        "{out}"
    );
    assert!(summary.contains("alpha: moved to the shared load balancer, host alpha.bots.example.com (rule priority 3) (target healthy), unreachable 25.0s, https://alpha.bots.example.com"), "{summary}");
    let w = w.lock().unwrap();
    assert_eq!(
        w.layout,
        Layout::Shared(Entry::Host {
            name: "alpha.bots.example.com".into(),
            priority: 3
        })
    );
    let order: Vec<&str> = w
        .calls
        .iter()
        .map(String::as_str)
        .filter(|c| !c.contains("ssm."))
        .collect();
    // The failed attempt rolled back while the bot's own listener still forwarded.
    assert_eq!(
        order,
        [
            "0s cfn.UpdateStack clawster-bot-alpha to joining (host alpha.bots.example.com (rule priority 2))",
            "(cfn rolls back: The following resource(s) failed to create: [SharedRule]. Priority '2' is currently in use (Service: ElasticLoadBalancingV2, Status Code: 400, Error Code: PriorityInUse))",
            "30s cfn.UpdateStack clawster-bot-alpha to joining (host alpha.bots.example.com (rule priority 3))",
            "60s elb.ModifyListener own -> fixed-response",
            "60s cfn.UpdateStack clawster-bot-alpha to shared (host alpha.bots.example.com (rule priority 3))",
            "(cfn applies shared: forwards again at 72s)",
        ],
        "{out}"
    );
}

#[test]
fn undo_brings_the_bots_own_load_balancer_back_before_the_shared_entry_lets_go() {
    let w = world();
    {
        let mut w = w.lock().unwrap();
        w.layout = Layout::Shared(Entry::Port(8001));
        w.undo = true;
    }
    let (result, out) = run(&w, Pace::virtual_time(Duration::from_secs(5)), None);
    println!("{out}\n{:#?}", w.lock().unwrap().calls);
    let summary = result.expect("undone");
    assert!(
        summary.contains("alpha: back on its own load balancer (target healthy), unreachable 25.0s, http://clawster-alpha-1.us-east-1.elb.amazonaws.com"),
        "{summary}"
    );
    let w = w.lock().unwrap();
    assert_eq!(w.layout, Layout::Dedicated);
    assert!(w.ssm.is_empty(), "the record is gone: {:?}", w.ssm);
    let order: Vec<&str> = w
        .calls
        .iter()
        .map(String::as_str)
        .filter(|c| !c.contains("ssm."))
        .collect();
    assert_eq!(
        order,
        [
            "0s cfn.UpdateStack clawster-bot-alpha to returning (port 8001)",
            "30s elb.ModifyListener shared -> fixed-response",
            "30s cfn.UpdateStack clawster-bot-alpha to dedicated ()",
            "(cfn applies dedicated: forwards again at 42s)",
            "60s cfn.DeleteStack arn:aws:cloudformation:us-east-1:123456789012:stack/clawster-shared-lb-us-east-1/0",
        ],
        "{out}"
    );
    // No bot is left on it, so the shared load balancer goes too: the region costs what it did.
    assert!(w.lb_deleted);
    assert!(
        summary.contains(
            "the shared load balancer clawster-shared-lb-us-east-1 is deleted (no bot uses it)"
        ),
        "{summary}"
    );
}
