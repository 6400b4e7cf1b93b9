//! cfn-lint and checkov on the rendered templates of several configurations.
//!
//! The linters live in the Python venv `tests/setup-host` makes from
//! tests/deps/ctl.requirements.txt (see [`venvs`] for where the tests look).
//!
//! A missing linter fails these tests with a message saying how to install it; they never skip.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clawsterctl::cfn::checkov_skips;
use clawsterctl::commands::to_pretty;
use clawsterctl::{bot, shared};
use common::*;
use serde_json::Value;

/// Venvs to look in, in order: `$CLAWSTER_VENV` when set, then the one `tests/setup-host` makes
/// from tests/deps/ctl.requirements.txt (`$CLAWSTER_CACHE/venvs/ctl`), then
/// `/var/tmp/clawster/venv`.
fn venvs() -> Vec<PathBuf> {
    let cache = std::env::var_os("CLAWSTER_CACHE")
        .map_or_else(|| PathBuf::from("/var/tmp/clawster"), PathBuf::from);
    let mut v = Vec::new();
    if let Some(dir) = std::env::var_os("CLAWSTER_VENV") {
        v.push(PathBuf::from(dir));
    }
    v.push(cache.join("venvs/ctl"));
    v.push(PathBuf::from("/var/tmp/clawster/venv"));
    v
}

/// A linter's executable; a missing one fails the test and says how to install it.
fn tool(name: &str) -> PathBuf {
    let candidates: Vec<PathBuf> = venvs().iter().map(|v| v.join("bin").join(name)).collect();
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "{name} is not installed (looked for {candidates:?}). Run tests/setup-host: it installs \
             tests/deps/ctl.requirements.txt (cfn-lint, checkov) into $CLAWSTER_CACHE/venvs/ctl. \
             Or point CLAWSTER_VENV at a venv that has both."
        )
    })
}

/// The configurations the linters see: (file name, template).
fn configurations() -> Vec<(String, Value)> {
    let release = release();
    let mut long = bot_options("abcdefghij0123456789", "eu-west-2", None);
    long.gateway_port = "8080".parse().unwrap();
    long.instance_type = "t3.medium".parse().unwrap();
    let eu_cert =
        "arn:aws:acm:eu-west-2:210987654321:certificate/9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff";
    let mut all = shared_lb_configurations(&release);
    all.extend(vec![
        ("shared-us-east-1.json".into(), shared_template("us-east-1")),
        ("shared-eu-west-2.json".into(), shared_template("eu-west-2")),
        (
            "shared-lb-us-east-1-https.json".into(),
            shared::load_balancer::template(
                &"us-east-1".parse().unwrap(),
                Some(&shared::load_balancer::Https {
                    domain: "bots.example.com".parse().unwrap(),
                    certificate: CERT.parse().unwrap(),
                }),
            ),
        ),
        (
            "shared-lb-eu-west-2-ports.json".into(),
            shared::load_balancer::template(&"eu-west-2".parse().unwrap(), None),
        ),
        ("bot-demo-http.json".into(), bot_template(false)),
        ("bot-demo-https.json".into(), bot_template(true)),
        (
            "bot-long-name-port-8080.json".into(),
            bot::template(&long, &release),
        ),
        (
            "bot-support-eu-https.json".into(),
            bot::template(
                &bot_options("support-bot-2", "eu-west-2", Some(eu_cert)),
                &release,
            ),
        ),
    ]);
    all
}

/// Every load-balancing layout of a bot (a port and a host-name entry, each joining, shared and
/// returning, with and without the bot's own certificate).
fn shared_lb_configurations(release: &clawsterctl::manifest::Release) -> Vec<(String, Value)> {
    use clawsterctl::bot::{Entry, Layout};
    let host = Entry::Host {
        name: "demo.bots.example.com".into(),
        priority: 12,
    };
    let mut out = Vec::new();
    for (entry_name, entry) in [("port", Entry::Port(8001)), ("host", host)] {
        for (cert_name, cert) in [("http", None), ("https", Some(CERT))] {
            for layout in [
                Layout::Joining(entry.clone()),
                Layout::Shared(entry.clone()),
                Layout::Returning(entry.clone()),
            ] {
                let mut o = bot_options("demo", "us-east-1", cert);
                let name = format!("bot-demo-{}-{entry_name}-{cert_name}.json", layout.kind());
                o.layout = layout;
                out.push((name, bot::template(&o, release)));
            }
        }
    }
    out
}

fn write_all(dir: &Path, templates: &[(String, Value)]) -> Vec<PathBuf> {
    templates
        .iter()
        .map(|(name, t)| {
            let p = dir.join(name);
            std::fs::write(&p, to_pretty(t)).unwrap();
            p
        })
        .collect()
}

#[test]
fn cfn_lint_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_all(dir.path(), &configurations());
    let out = Command::new(tool("cfn-lint"))
        .args([
            "--format",
            "parseable",
            "--non-zero-exit-code",
            "informational",
            "--",
        ])
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "cfn-lint found problems (exit {:?}):\n{report}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs checkov on a directory and returns its failed checks as (file, resource, check id).
fn checkov_failures(dir: &Path) -> BTreeSet<(String, String, String)> {
    let out = Command::new(tool("checkov"))
        .args(["-d"])
        .arg(dir)
        .args([
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
            "--quiet",
        ])
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("LOG_LEVEL", "WARNING")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "checkov did not run (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("checkov output is not JSON ({e}): {text}"));
    let reports: Vec<Value> = if v.is_array() {
        v.as_array().unwrap().clone()
    } else {
        vec![v]
    };
    let mut failed = BTreeSet::new();
    let mut passed = 0;
    for r in &reports {
        passed += r["summary"]["passed"].as_u64().unwrap_or(0);
        assert_eq!(
            r["summary"]["parsing_errors"], 0,
            "checkov could not parse a template: {text}"
        );
        for f in r["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let file = f["file_path"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string();
            let resource = f["resource"]
                .as_str()
                .unwrap_or("")
                .rsplit('.')
                .next()
                .unwrap_or("")
                .to_string();
            failed.insert((
                file,
                resource,
                f["check_id"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    // With no templates found checkov reports nothing at all: make sure it checked something.
    assert!(
        passed > 0 || !failed.is_empty(),
        "checkov checked nothing: {text}"
    );
    failed
}

#[test]
fn checkov_fails_nothing_and_every_skip_is_needed_and_explained() {
    let configs = configurations();
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &configs);
    let failed = checkov_failures(dir.path());
    assert!(failed.is_empty(), "checkov failed checks: {failed:#?}");

    // The same templates without their skips: exactly the skipped checks fail, so no skip is stale.
    let mut skipped = BTreeSet::new();
    let stripped: Vec<(String, Value)> = configs
        .iter()
        .map(|(name, t)| {
            for (resource, id, reason) in checkov_skips(t) {
                assert!(
                    reason.len() >= 40,
                    "{name}: skip {id} on {resource} needs a real reason, got {reason:?}"
                );
                skipped.insert((name.clone(), resource, id));
            }
            let mut t = t.clone();
            for r in t["Resources"].as_object_mut().unwrap().values_mut() {
                if let Some(meta) = r.get_mut("Metadata").and_then(Value::as_object_mut) {
                    meta.remove("checkov");
                }
            }
            (name.clone(), t)
        })
        .collect();
    let dir2 = tempfile::tempdir().unwrap();
    write_all(dir2.path(), &stripped);
    let unskipped = checkov_failures(dir2.path());
    assert_eq!(
        unskipped, skipped,
        "skips must match exactly the checks that fail without them"
    );
}

#[test]
fn window_document_patterns_accept_good_values_and_refuse_the_rest() {
    // SSM evaluates allowedPattern as a regular expression; Python's `re` agrees with it on these
    // simple patterns, and the venv has a Python.
    let t = shared_template("us-east-1");
    let params = &t["Resources"]["WindowDocument"]["Properties"]["Content"]["parameters"];
    let long = "a".repeat(201);
    let cases: [(&str, &[&str], &[&str]); 4] = [
        (
            "action",
            &["open", "close", "status"],
            &["", "opened", "open;reboot", "OPEN", "open\n"],
        ),
        (
            "pkgs",
            &[
                "",
                "nginx",
                "nginx,htop",
                "g++,libfoo1.2-dev",
                "Nginx,perl-Data-Dumper",
            ],
            &[
                "nginx htop",
                "nginx;reboot",
                "$(reboot)",
                ",nginx",
                "nginx,",
                "-rf",
                "a",
                "aa,bb,cc,dd,ee,ff,gg,hh,ii,jj,kk,ll,mm,nn,oo,pp,qq,rr,ss,tt,uu",
            ],
        ),
        (
            "ttl",
            &["", "10m", "1h", "90s", "120m", "4h"],
            &["0m", "10", "10 m", "10m;reboot", "-5m", "10d", "5h", "4s"],
        ),
        (
            "reason",
            &["", "ticket 42", "ünïcödé ✓", "-x", "$(id)"],
            &["a\nb", "\u{1b}[2J", "\u{85}", &long],
        ),
    ];
    for (name, good, bad) in cases {
        let pattern = params[name]["allowedPattern"].as_str().unwrap();
        let python = tool("python");
        let script = "import re,sys\np=sys.argv[1]\nfor v in sys.argv[2:]:\n    print('1' if re.fullmatch(p, v) else '0')\n";
        let run = |values: &[&str]| -> Vec<bool> {
            let out = Command::new(&python)
                .arg("-c")
                .arg(script)
                .arg(pattern)
                .args(values)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l == "1")
                .collect()
        };
        assert_eq!(
            run(good),
            vec![true; good.len()],
            "{name} {pattern} should accept {good:?}"
        );
        assert_eq!(
            run(bad),
            vec![false; bad.len()],
            "{name} {pattern} should refuse {bad:?}"
        );
    }
}
