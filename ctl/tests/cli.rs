//! The `clawsterctl` binary: golden files, `plan`'s cost table, and errors for bad input.
//!
//! Golden files: `CLAWSTER_UPDATE_GOLDEN=1 cargo test -p clawsterctl --test cli` rewrites them;
//! review the diff like code.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawsterctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run clawsterctl")
}

fn ok(args: &[&str]) -> String {
    let out = ctl(args);
    assert!(
        out.status.success(),
        "clawsterctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = ctl(args);
    assert!(!out.status.success(), "clawsterctl {args:?} should fail");
    assert!(out.stdout.is_empty(), "nothing on stdout when failing");
    String::from_utf8(out.stderr).unwrap()
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("CLAWSTER_UPDATE_GOLDEN").is_some() {
        // Replace atomically: other tests read the golden files while these run.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, actual).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with CLAWSTER_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    if want != actual {
        let first = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{name} differs from the golden file at line {}:\n  golden: {:?}\n  actual: {:?}\nrerun with CLAWSTER_UPDATE_GOLDEN=1 and review the diff",
            first + 1,
            want.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

fn dist() -> String {
    fixture_dist().display().to_string()
}

#[test]
fn golden_shared_template() {
    let out = ok(&[
        "template",
        "shared",
        "--region",
        "us-east-1",
        "--artifacts",
        &dist(),
    ]);
    check_golden("shared-us-east-1.json", &out);
}

#[test]
fn golden_bot_template() {
    let out = ok(&[
        "template",
        "bot",
        "demo",
        "--region",
        "us-east-1",
        "--artifacts",
        &dist(),
    ]);
    check_golden("bot-demo-us-east-1.json", &out);
}

#[test]
fn golden_bot_template_with_certificate() {
    let out = ok(&[
        "template",
        "bot",
        "demo",
        "--region",
        "us-east-1",
        "--certificate-arn",
        CERT,
        "--artifacts",
        &dist(),
    ]);
    check_golden("bot-demo-us-east-1-https.json", &out);
}

#[test]
fn golden_plan() {
    let out = ok(&[
        "plan",
        "demo",
        "--region",
        "us-east-1",
        "--artifacts",
        &dist(),
    ]);
    check_golden("plan-demo-us-east-1.txt", &out);
}

#[test]
fn output_file_matches_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bot.json");
    let stdout = ok(&[
        "template",
        "bot",
        "demo",
        "--region",
        "us-east-1",
        "--artifacts",
        &dist(),
    ]);
    let quiet = ok(&[
        "template",
        "bot",
        "demo",
        "--region",
        "us-east-1",
        "--artifacts",
        &dist(),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(quiet.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout);
}

/// The region cost table printed by `plan`: (bots, budget dollars, exact dollars).
fn cost_rows(plan: &str) -> Vec<(u32, u64, f64)> {
    let start = plan
        .lines()
        .position(|l| l.trim_start().starts_with("Bots"))
        .expect("table header");
    plan.lines()
        .skip(start + 1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (
                cols[0].parse().unwrap(),
                cols[1].trim_start_matches('$').parse().unwrap(),
                cols[2].trim_start_matches('$').parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn plan_reproduces_the_architectures_cost_table() {
    // The architecture's table is for x86_64 t3.small hosts.
    let plan = ok(&[
        "plan",
        "demo",
        "--region",
        "us-east-1",
        "--instance-type",
        "t3.small",
        "--artifacts",
        &dist(),
    ]);
    let rows = cost_rows(&plan);
    let budget: Vec<(u32, u64)> = rows.iter().map(|r| (r.0, r.1)).collect();
    // Seed 002, section 4: 1 bot $49, 2 $91, 3 $133, 5 $217, 10 $427.
    assert_eq!(budget, [(1, 49), (2, 91), (3, 133), (5, 217), (10, 427)]);
    for (n, b, exact) in rows {
        assert!(
            (exact - b as f64).abs() / (b as f64) < 0.01,
            "{n} bots: exact {exact} vs budget {b}"
        );
    }
    assert!(
        plan.contains("prices of 2026-02-06"),
        "the price list's date is shown"
    );
    assert!(plan.contains("clawster-shared-us-east-1") && plan.contains("create"));
    assert!(plan.contains("clawster-bot-demo"));
    assert!(plan.contains("Timeline (first bot in the region)"));
}

/// Graviton by default (issue 21): each bot costs the difference of the host prices less.
#[test]
fn plan_defaults_to_graviton_and_costs_less_per_bot() {
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "demo", "--region", "us-east-1"];
        args.extend_from_slice(extra);
        let d = dist();
        args.extend_from_slice(&["--artifacts", &d]);
        ok(&args)
    };
    let graviton = cost_rows(&plan(&[]));
    let x86 = cost_rows(&plan(&["--instance-type", "t3.small"]));
    // t3.small $0.0208/h, t4g.small $0.0168/h, 730 h a month: $2.92 a bot.
    for (g, x) in graviton.iter().zip(&x86) {
        assert_eq!(g.0, x.0);
        let saving = (x.2 - g.2) / f64::from(g.0);
        assert!((saving - 2.92).abs() < 0.01, "{} bots: {saving}", g.0);
    }
    let text = plan(&[]);
    assert!(text.contains("t4g.small"), "{text}");
    assert!(text.contains("aarch64-unknown-linux-musl"), "{text}");
    // Both layouts on both architectures at the region's bot count, cheapest first.
    let ten = plan(&["--bots-in-region", "10", "--instance-type", "t3.small"]);
    let block = layout_block(&ten, 10);
    assert_eq!(block.len(), 4, "{block:?}");
    assert!(
        block[0].contains("shared     arm64   t4g.small    $18.21"),
        "{block:?}"
    );
    assert!(
        block[1].contains("shared     x86_64  t3.small     $21.13"),
        "{block:?}"
    );
    assert!(
        block[2].contains("dedicated  arm64   t4g.small    $39.56"),
        "{block:?}"
    );
    assert!(
        block[3].contains("dedicated  x86_64  t3.small     $42.48    $424.81 region  <- this plan"),
        "{block:?}"
    );
}

/// The four rows of plan's layout table at `n` bots.
fn layout_block(plan: &str, n: u32) -> Vec<String> {
    let title = format!("By layout and host architecture, {n} bot(s) in the region");
    let at = plan
        .find(&title)
        .unwrap_or_else(|| panic!("no {title:?} in {plan}"));
    plan[at..]
        .lines()
        .skip(1)
        .take(4)
        .map(str::to_string)
        .collect()
}

/// The closing note's table: per bot a month by layout at 1, 3 and 10 bots (printed with
/// `--nocapture`), and the suggestion from the second bot on.
#[test]
fn plan_prices_both_layouts_at_1_3_and_10_bots() {
    let mut table = String::new();
    for n in ["1", "3", "10"] {
        let text = ok(&[
            "plan",
            "demo",
            "--region",
            "us-east-1",
            "--bots",
            n,
            "--shared-lb",
            "--artifacts",
            &dist(),
        ]);
        let block = layout_block(&text, n.parse().unwrap());
        table.push_str(&format!("{n} bot(s):\n{}\n", block.join("\n")));
        let this: Vec<&String> = block
            .iter()
            .filter(|l| l.ends_with("<- this plan"))
            .collect();
        assert_eq!(this.len(), 1, "{block:?}");
        assert!(
            this[0].contains("shared     arm64   t4g.small"),
            "{block:?}"
        );
        // No suggestion once the plan is on the shared load balancer.
        assert!(!text.contains("suggestion:"), "{text}");
        let dedicated = ok(&[
            "plan",
            "demo",
            "--region",
            "us-east-1",
            "--bots",
            n,
            "--artifacts",
            &dist(),
        ]);
        let suggested = dedicated.lines().find(|l| l.contains("suggestion:"));
        match n {
            "1" => assert_eq!(suggested, None, "{dedicated}"),
            "3" => assert!(
                suggested.unwrap().contains("save about $47.45 a month"),
                "{dedicated}"
            ),
            _ => assert!(
                suggested.unwrap().contains("save about $213.53 a month"),
                "{dedicated}"
            ),
        }
    }
    println!("{table}");
    assert!(
        table.contains("shared     arm64   t4g.small    $18.21    $182.08 region  <- this plan"),
        "{table}"
    );
    assert!(
        table.contains("dedicated  arm64   t4g.small    $45.60     $45.60 region"),
        "{table}"
    );
}

#[test]
fn plan_for_a_later_bot_reuses_the_shared_stack() {
    let plan = ok(&[
        "plan",
        "demo",
        "--region",
        "us-east-1",
        "--bots-in-region",
        "4",
        "--artifacts",
        &dist(),
    ]);
    let shared_line = plan
        .lines()
        .find(|l| l.contains("clawster-shared-us-east-1"))
        .unwrap();
    assert!(shared_line.contains("reuse"), "{shared_line}");
    assert!(plan.contains("Timeline (another bot in the region)"));
    let rows = cost_rows(&plan);
    assert!(
        rows.iter().any(|r| r.0 == 4),
        "the planned count gets its own row"
    );
    let line = plan.lines().find(|l| l.contains("<- this plan")).unwrap();
    assert!(line.trim_start().starts_with('4'), "{line}");
}

#[test]
fn missing_manifest_says_how_to_build_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        vec![
            "template",
            "shared",
            "--region",
            "us-east-1",
            "--artifacts",
            d,
        ],
        vec![
            "template",
            "bot",
            "demo",
            "--region",
            "us-east-1",
            "--artifacts",
            d,
        ],
        vec!["plan", "demo", "--region", "us-east-1", "--artifacts", d],
    ] {
        let e = fails(&args);
        assert!(
            e.contains("packaging/build-release") && e.contains("manifest.json"),
            "{e}"
        );
    }
}

#[test]
fn bad_bot_names_are_refused_with_the_rule() {
    for bad in [
        "-demo",
        "demo-",
        "Demo",
        "demo_1",
        "a-name-much-longer-than-20",
        "x;reboot",
    ] {
        let e = fails(&[
            "template",
            "bot",
            bad,
            "--region",
            "us-east-1",
            "--artifacts",
            &dist(),
        ]);
        assert!(e.contains("at most") || e.contains("1 to 20"), "{bad}: {e}");
        assert!(
            e.contains("lowercase letters") && e.contains("hyphen"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn other_bad_inputs_name_what_was_wrong() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["template", "shared", "--region", "mars-1"],
            "invalid region",
        ),
        (
            &[
                "template",
                "bot",
                "demo",
                "--region",
                "us-east-1",
                "--instance-type",
                "t4g.micro",
            ],
            "too small for a bot host",
        ),
        (
            &[
                "template",
                "bot",
                "demo",
                "--region",
                "us-east-1",
                "--instance-type",
                "small",
            ],
            "invalid instance type",
        ),
        (
            &[
                "template",
                "bot",
                "demo",
                "--region",
                "us-east-1",
                "--gateway-port",
                "80",
            ],
            "1024-65535",
        ),
        (
            &[
                "template",
                "bot",
                "demo",
                "--region",
                "us-east-1",
                "--certificate-arn",
                "arn:aws:iam::1:x",
            ],
            "certificate ARN",
        ),
        (
            &[
                "plan",
                "demo",
                "--region",
                "us-east-1",
                "--bots-in-region",
                "0",
            ],
            "1-500",
        ),
    ];
    for (args, want) in cases {
        let mut args = args.to_vec();
        let d = dist();
        args.extend(["--artifacts", d.as_str()]);
        let e = fails(&args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let e = fails(&[
        "template",
        "bot",
        "demo",
        "--region",
        "eu-west-1",
        "--certificate-arn",
        CERT,
        "--artifacts",
        &dist(),
    ]);
    assert!(
        e.contains("us-east-1") && e.contains("eu-west-1") && e.contains("own region"),
        "{e}"
    );
}

#[test]
fn corrupt_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = std::fs::read_to_string(fixture_dist().join("manifest.json")).unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        m.replacen("\"sha256\": \"", "\"sha256\": \"zz", 1),
    )
    .unwrap();
    let e = fails(&[
        "template",
        "shared",
        "--region",
        "us-east-1",
        "--artifacts",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        e.contains("sha256") && e.contains("64 lowercase hex"),
        "{e}"
    );
    std::fs::write(dir.path().join("manifest.json"), "{").unwrap();
    let e = fails(&[
        "template",
        "shared",
        "--region",
        "us-east-1",
        "--artifacts",
        dir.path().to_str().unwrap(),
    ]);
    assert!(e.contains("not valid"), "{e}");
}

#[test]
fn help_explains_each_command_and_option() {
    let top = ok(&["--help"]);
    assert!(top.contains("template") && top.contains("plan"));
    let t = ok(&["template", "--help"]);
    for c in ["shared", "bot", "openclaw-config"] {
        assert!(t.contains(c), "{t}");
    }
    let bot = ok(&["template", "bot", "--help"]);
    for o in [
        "--region",
        "--instance-type",
        "--certificate-arn",
        "--gateway-port",
        "--artifacts",
        "--output",
        "20 characters",
    ] {
        assert!(bot.contains(o), "bot --help lacks {o}:\n{bot}");
    }
    let plan = ok(&["plan", "--help"]);
    for o in [
        "--bots-in-region",
        "--bots",
        "--shared-lb",
        "--region",
        "--artifacts",
        "price list",
    ] {
        assert!(plan.contains(o), "plan --help lacks {o}:\n{plan}");
    }
    assert!(top.contains("consolidate"), "{top}");
    let c = ok(&["consolidate", "--help"]);
    for o in [
        "--undo",
        "--domain",
        "--certificate-arn",
        "--yes",
        "8001-8050",
        "/clawster/BOT/load-balancer-move",
        "Exit codes",
    ] {
        assert!(c.contains(o), "consolidate --help lacks {o}:\n{c}");
    }
    let d = ok(&["deploy", "--help"]);
    for o in ["--shared-lb", "--domain", "clawster-shared-lb-REGION"] {
        assert!(d.contains(o), "deploy --help lacks {o}:\n{d}");
    }
}

#[test]
fn consolidate_and_shared_lb_refuse_bad_input_before_any_aws_call() {
    // No endpoint, no credentials: each of these stops at the argument check.
    let e = fails(&[
        "consolidate",
        "--region",
        "us-east-1",
        "--domain",
        "bots.example.com",
    ]);
    assert!(e.contains("--certificate-arn"), "{e}");
    let e = fails(&[
        "consolidate",
        "--region",
        "us-east-1",
        "--domain",
        "Bots_Example",
        "--certificate-arn",
        CERT,
    ]);
    assert!(e.contains("invalid domain \"Bots_Example\""), "{e}");
    let e = fails(&[
        "consolidate",
        "--undo",
        "--region",
        "us-east-1",
        "--domain",
        "bots.example.com",
        "--certificate-arn",
        CERT,
    ]);
    assert!(e.contains("--undo") && e.contains("--domain"), "{e}");
    let e = fails(&[
        "deploy",
        "x",
        "--domain",
        "bots.example.com",
        "--certificate-arn",
        CERT,
    ]);
    assert!(e.contains("--shared-lb"), "{e}");
    let e = fails(&["plan", "x", "--region", "us-east-1", "--bots", "0"]);
    assert!(e.contains("1-500"), "{e}");
}

#[test]
fn openclaw_config_command_prints_the_gateway_section() {
    let out = ok(&["template", "openclaw-config"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["gateway"]["mode"], "local");
    assert_eq!(v["gateway"]["bind"], "lan");
    assert_eq!(v["gateway"]["trustedProxies"][0], "10.0.0.0/16");
}

#[test]
fn goldens_are_what_the_library_renders() {
    // The golden files are the CLI's output; the property tests read the library's. Same thing.
    let file = std::fs::read_to_string(golden("shared-us-east-1.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(v, shared_template("us-east-1"));
}

#[test]
fn plan_elsewhere_says_whose_prices_it_uses_and_prices_other_types() {
    let plan = ok(&[
        "plan",
        "eu-bot",
        "--region",
        "eu-west-2",
        "--instance-type",
        "t3.medium",
        "--artifacts",
        &dist(),
    ]);
    assert!(
        plan.contains("the price list is us-east-1's; prices in eu-west-2 may differ"),
        "{plan}"
    );
    assert!(plan.contains("t3.medium $0.0416/h"), "{plan}");
    let e = fails(&[
        "plan",
        "eu-bot",
        "--region",
        "eu-west-2",
        "--instance-type",
        "m5.large",
        "--artifacts",
        &dist(),
    ]);
    assert!(
        e.contains("no price for instance type m5.large") && e.contains("prices.json"),
        "{e}"
    );
}
