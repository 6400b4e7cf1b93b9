//! The bot template's load-balancing layouts: which load balancer forwards to the target group,
//! what the others do, and that moving between layouts never touches what would restart the
//! bot's task (the service, the task definition, the task's security group, the target group).
#![allow(clippy::unwrap_used)]

mod common;

use clawsterctl::bot::{self, Entry, Layout, STANDBY_BODY};
use common::*;
use serde_json::Value;

fn with(layout: Layout, cert: Option<&str>) -> Value {
    let mut o = bot_options("demo", "us-east-1", cert);
    o.layout = layout;
    bot::template(&o, &release())
}

fn host() -> Entry {
    Entry::Host {
        name: "demo.bots.example.com".into(),
        priority: 3,
    }
}

/// The action types of a listener's default actions or a rule's actions.
fn action_of(t: &Value, id: &str) -> Value {
    let p = props(t, id);
    if p.get("Actions").is_some() {
        p["Actions"].clone()
    } else {
        p["DefaultActions"].clone()
    }
}

fn forwards(t: &Value, id: &str) -> bool {
    let a = action_of(t, id);
    a[0]["Type"] == "forward"
        && a[0]["TargetGroupArn"] == serde_json::json!({ "Ref": "TargetGroup" })
}

fn stands_by(t: &Value, id: &str) -> bool {
    let a = action_of(t, id);
    a[0]["Type"] == "fixed-response"
        && a[0]["FixedResponseConfig"]["StatusCode"] == "503"
        && a[0]["FixedResponseConfig"]["MessageBody"] == STANDBY_BODY
        && !a.to_string().contains("TargetGroup")
}

fn has(t: &Value, id: &str) -> bool {
    t["Resources"].get(id).is_some()
}

#[test]
fn shared_port_layout_has_a_listener_on_the_shared_load_balancer_and_no_alb() {
    let t = with(Layout::Shared(Entry::Port(8007)), None);
    assert!(!has(&t, "LoadBalancer") && !has(&t, "AlbSecurityGroup") && !has(&t, "HttpListener"));
    assert_eq!(
        kind(&t, "SharedListener"),
        "AWS::ElasticLoadBalancingV2::Listener"
    );
    let l = props(&t, "SharedListener");
    assert_eq!(
        l["LoadBalancerArn"]["Fn::ImportValue"]["Fn::Sub"],
        "${SharedLbStackName}-SharedLoadBalancerArn"
    );
    assert_eq!(l["Port"]["Ref"], "SharedListenerPort");
    assert_eq!(t["Parameters"]["SharedListenerPort"]["Default"], "8007");
    assert_eq!(t["Parameters"]["LoadBalancing"]["Default"], "shared");
    assert!(forwards(&t, "SharedListener"));
    let ingress = props(&t, "TaskIngressFromSharedAlb");
    assert_eq!(
        ingress["SourceSecurityGroupId"]["Fn::ImportValue"]["Fn::Sub"],
        "${SharedLbStackName}-SharedAlbSecurityGroupId"
    );
    assert_eq!(ingress["FromPort"], 18789);
    assert!(!has(&t, "TaskIngressFromAlb"));
    let url = t["Outputs"]["Url"]["Value"].to_string();
    assert!(
        url.contains("SharedLoadBalancerDns") && url.contains("SharedListenerPort"),
        "{url}"
    );
    assert_eq!(
        t["Resources"]["Service"]["DependsOn"],
        serde_json::json!(["SharedListener", "ClusterCapacityProviders"])
    );
}

#[test]
fn shared_host_layout_has_a_host_rule_on_the_shared_https_listener() {
    let t = with(Layout::Shared(host()), None);
    assert!(!has(&t, "LoadBalancer") && !has(&t, "SharedListener"));
    let r = props(&t, "SharedRule");
    assert_eq!(
        r["ListenerArn"]["Fn::ImportValue"]["Fn::Sub"],
        "${SharedLbStackName}-SharedHttpsListenerArn"
    );
    assert_eq!(r["Priority"]["Ref"], "SharedRulePriority");
    assert_eq!(r["Conditions"][0]["Field"], "host-header");
    assert_eq!(
        r["Conditions"][0]["HostHeaderConfig"]["Values"][0]["Ref"],
        "SharedHostName"
    );
    assert_eq!(
        t["Parameters"]["SharedHostName"]["Default"],
        "demo.bots.example.com"
    );
    assert_eq!(t["Parameters"]["SharedRulePriority"]["Default"], "3");
    assert!(forwards(&t, "SharedRule"));
    assert!(t["Outputs"]["Url"]["Value"]
        .to_string()
        .contains("https://"));
}

#[test]
fn moving_layouts_forward_through_exactly_one_load_balancer() {
    for entry in [Entry::Port(8001), host()] {
        let id = if matches!(entry, Entry::Port(_)) {
            "SharedListener"
        } else {
            "SharedRule"
        };
        for cert in [None, Some(CERT)] {
            let own = if cert.is_some() {
                "HttpsListener"
            } else {
                "HttpListener"
            };
            let joining = with(Layout::Joining(entry.clone()), cert);
            assert!(
                forwards(&joining, own) && stands_by(&joining, id),
                "joining {id} {own}"
            );
            let returning = with(Layout::Returning(entry.clone()), cert);
            assert!(
                stands_by(&returning, own) && forwards(&returning, id),
                "returning {id} {own}"
            );
            for t in [&joining, &returning] {
                assert!(has(t, "TaskIngressFromAlb") && has(t, "TaskIngressFromSharedAlb"));
            }
            if cert.is_some() {
                // The HTTP listener of an HTTPS bot only ever redirects.
                assert_eq!(action_of(&returning, "HttpListener")[0]["Type"], "redirect");
            }
        }
    }
}

#[test]
fn moving_changes_nothing_that_restarts_the_task() {
    let keep = [
        "TaskSecurityGroup",
        "TargetGroup",
        "TaskDefinition",
        "Service",
        "Cluster",
        "LaunchTemplate",
    ];
    for cert in [None, Some(CERT)] {
        let dedicated = with(Layout::Dedicated, cert);
        for entry in [Entry::Port(8001), host()] {
            for l in [
                Layout::Joining(entry.clone()),
                Layout::Shared(entry.clone()),
                Layout::Returning(entry.clone()),
            ] {
                let t = with(l.clone(), cert);
                for id in keep {
                    assert_eq!(
                        props(&t, id),
                        props(&dedicated, id),
                        "{id} differs between dedicated and {l}"
                    );
                }
            }
        }
    }
}

#[test]
fn dedicated_layout_is_what_it_always_was() {
    let t = with(Layout::Dedicated, None);
    assert_eq!(t, bot_template(false));
    assert!(has(&t, "LoadBalancer") && forwards(&t, "HttpListener"));
    assert!(
        !has(&t, "SharedListener")
            && !has(&t, "SharedRule")
            && !has(&t, "TaskIngressFromSharedAlb")
    );
    assert_eq!(t["Parameters"]["LoadBalancing"]["Default"], "dedicated");
    assert!(t["Parameters"].get("SharedListenerPort").is_none());
}

#[test]
fn relayout_of_a_stored_template_is_the_rendered_template_of_the_new_layout() {
    let layouts = |e: Entry| {
        vec![
            Layout::Dedicated,
            Layout::Joining(e.clone()),
            Layout::Shared(e.clone()),
            Layout::Returning(e),
        ]
    };
    let name = "demo".parse().unwrap();
    let region = "us-east-1".parse().unwrap();
    for entry in [Entry::Port(8003), host()] {
        for cert in [None, Some(CERT)] {
            for from in layouts(entry.clone()) {
                for to in layouts(entry.clone()) {
                    let moved =
                        bot::relayout(&with(from.clone(), cert), &name, &region, &to).unwrap();
                    assert_eq!(
                        moved,
                        with(to.clone(), cert),
                        "{from} -> {to} (cert {cert:?})"
                    );
                }
            }
        }
    }
}

#[test]
fn relayout_refuses_a_template_it_cannot_read() {
    let mut t = bot_template(false);
    t["Resources"]["TargetGroup"]["Properties"]
        .as_object_mut()
        .unwrap()
        .remove("Port");
    let e = bot::relayout(
        &t,
        &"demo".parse().unwrap(),
        &"us-east-1".parse().unwrap(),
        &Layout::Shared(Entry::Port(8001)),
    )
    .unwrap_err();
    assert!(
        e.contains("clawster-bot-demo") && e.contains("TargetGroup with a Port"),
        "{e}"
    );
}
