//! The SSM documents' `allowedPattern`s, read from the rendered shared stack, against the Rust
//! validators: on every value here the document and the validator agree, except where a regular
//! expression cannot say the rule, and there the validator is the stricter one.
//!
//! What the patterns cannot say:
//! - a name ending in `.deb` or `.rpm` (it needs a negative lookahead, which SSM's and Rust's
//!   dialects do not share): the pattern admits it, the agent refuses it;
//! - "this action needs this parameter": every parameter may be empty for the actions that do not
//!   use it, and the agent refuses an empty `pkgs` or `ttl` for `open`.
//!
//! The patterns use `^...$`. The `regex` crate's `$` matches only at the very end; a dialect
//! whose `$` also matches before a final newline would admit `VALUE\n`, which is harmless: the
//! agent splits `--pkgs` on whitespace and trims `--ttl`, refuses a control character in
//! `--reason`, and the scripts' `case` matches no action with a newline.
//!
//! The pattern admits the wire form that `clawsterctl` sends; what a person may type is wider
//! (spaces between packages, duplicates, leading zeros in a TTL) and `clawsterctl` rewrites it
//! into the wire form first ([`clawsterctl::ops::window::WindowArgs`]), so those are not "agent
//! accepts, document refuses" cases.
#![allow(clippy::unwrap_used)]

mod common;

use clawster_core::window_rules::{
    self, check_pkgs_param, check_reason, check_ttl, check_ttl_param, corpus, parse_packages,
    DEFAULT_MAX_TTL,
};
use clawsterctl::ops::reads::Since;
use clawsterctl::ops::window::WindowArgs;
use common::*;
use regex::Regex;
use serde_json::Value;

fn parameters(doc: &str) -> Value {
    let t = shared_template("us-east-1");
    t["Resources"][doc]["Properties"]["Content"]["parameters"].clone()
}

fn pattern(doc: &str, name: &str) -> Regex {
    let p = parameters(doc)[name]["allowedPattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{doc}.{name} has no allowedPattern"))
        .to_string();
    assert!(p.starts_with('^') && p.ends_with('$'), "{p}");
    Regex::new(&p).unwrap()
}

fn ends_in_package_file(list: &str) -> bool {
    list.split(',').any(|n| {
        let l = n.to_ascii_lowercase();
        l.ends_with(".deb") || l.ends_with(".rpm")
    })
}

/// Small deterministic generator: xorshift64*.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

fn pkgs_corpus() -> Vec<String> {
    let mut v: Vec<String> = vec![
        "nginx".into(),
        "nginx,htop".into(),
        "g++,libfoo1.2-dev".into(),
        "nginx;id".into(),
        "-oAPT::x=y".into(),
        "a b".into(),
        "$(id)".into(),
        "nginx htop".into(),
        "nginx,".into(),
        ",nginx".into(),
        "nginx,,htop".into(),
        "nginx,nginx".into(),
        "evil.deb".into(),
        "nginx,EVIL.RPM".into(),
        "a.deb1".into(),
        "x".repeat(100),
        "x".repeat(101),
        format!("nginx,{}", "y".repeat(101)),
    ];
    for n in corpus::VALID_NAMES {
        v.push(n.to_string());
    }
    for h in corpus::hostile_names() {
        v.push(format!("nginx,{h}"));
        v.push(h);
    }
    for count in [19, 20, 21, 40] {
        let names: Vec<String> = (0..count).map(|i| format!("p{i:02}")).collect();
        v.push(names.join(","));
    }
    // Random lists near the rule's edges: names of legal bytes with a stray byte, a package-file
    // ending or an odd separator now and then, and lists around the count limit.
    let mut rng = Rng(0x5eed);
    let legal: Vec<char> = "ab9Z._+-".chars().collect();
    let stray: Vec<char> = " ;$\n/:=*é,".chars().collect();
    for _ in 0..20_000 {
        let count = if rng.below(10) == 0 {
            18 + rng.below(5)
        } else {
            1 + rng.below(4)
        };
        let mut list = String::new();
        for i in 0..count {
            if i > 0 {
                list.push_str(match rng.below(30) {
                    0 => ",,",
                    1 => " ",
                    _ => ",",
                });
            }
            let len = 1 + rng.below(7);
            let mut name: String = (0..len).map(|_| legal[rng.below(legal.len())]).collect();
            if rng.below(15) == 0 {
                let at = rng.below(name.len() + 1);
                name.insert(at, stray[rng.below(stray.len())]);
            }
            if rng.below(25) == 0 {
                name.push_str([".deb", ".RPM"][rng.below(2)]);
            }
            list.push_str(&name);
        }
        v.push(list);
    }
    v
}

#[test]
fn pkgs_pattern_agrees_with_the_wire_rule() {
    let re = pattern("WindowDocument", "pkgs");
    assert!(re.is_match(""), "close and status send no packages");
    assert!(check_pkgs_param("").is_err(), "open needs packages");
    let mut accepted = 0;
    for v in pkgs_corpus().iter().filter(|v| !v.is_empty()) {
        let doc = re.is_match(v);
        let rule = check_pkgs_param(v).is_ok();
        if ends_in_package_file(v) && doc {
            // The one rule a pattern cannot say: the validator is stricter.
            assert!(!rule, "{v:?}");
            continue;
        }
        assert_eq!(doc, rule, "document and rule disagree on {v:?}");
        if rule {
            accepted += 1;
            assert!(
                parse_packages(v).is_ok(),
                "the agent must accept what the document admits: {v:?}"
            );
        }
    }
    assert!(accepted > 500, "corpus too narrow: {accepted} accepted");
    for bad in ["nginx;id", "-oAPT::x=y", "a b", "$(id)", "nginx\n"] {
        assert!(!re.is_match(bad), "{bad:?}");
    }
    let many: Vec<String> = (0..21).map(|i| format!("p{i:02}")).collect();
    assert!(!re.is_match(&many.join(",")), "21 packages");
}

#[test]
fn ttl_pattern_agrees_with_the_wire_rule() {
    let re = pattern("WindowDocument", "ttl");
    assert!(re.is_match(""), "close and status send no TTL");
    let mut values: Vec<String> = [
        "25h",
        "0s",
        "4s",
        "5s",
        "4h",
        "240m",
        "241m",
        "14400s",
        "14401s",
        "010m",
        " 10m",
        "10m ",
        "10m;id",
        "1e3s",
        "-5m",
        "+5m",
        "10M",
        "١٠m",
        "10 m",
        "9999999999s",
        "$(id)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in 0..=20_000 {
        for unit in ["s", "m", "h", "d", ""] {
            values.push(format!("{n}{unit}"));
        }
    }
    for v in &values {
        let doc = re.is_match(v);
        let rule = check_ttl_param(v, DEFAULT_MAX_TTL).is_ok();
        assert_eq!(doc, rule, "document and rule disagree on {v:?}");
        if rule {
            assert!(check_ttl(v, DEFAULT_MAX_TTL).is_ok(), "agent refuses {v:?}");
        }
    }
}

#[test]
fn reason_pattern_agrees_with_the_rule() {
    let re = pattern("WindowDocument", "reason");
    let values: Vec<String> = vec![
        "".into(),
        "ticket 42".into(),
        "ünïcödé ✓".into(),
        "🦀".repeat(200),
        "🦀".repeat(201),
        "a".repeat(200),
        "a".repeat(201),
        "a\nb".into(),
        "tab\there".into(),
        "\u{85}".into(),
        "\u{7f}".into(),
        "\u{9f}".into(),
        "\u{a0}".into(),
        "\u{1b}[2J".into(),
        "\0".into(),
        "$(id)".into(),
        "`id`".into(),
        "-x".into(),
        "\"quoted\" 'single'".into(),
        "{{ssm:/x}}".into(),
    ];
    for v in &values {
        assert_eq!(
            re.is_match(v),
            check_reason(v).is_ok(),
            "document and rule disagree on {v:?}"
        );
    }
    // Every code point alone, through the Latin-1 range and a few beyond.
    for c in (0u32..0x300).chain([0x2028, 0x200b, 0xfeff, 0x1f980]) {
        let s = char::from_u32(c).unwrap().to_string();
        assert_eq!(re.is_match(&s), check_reason(&s).is_ok(), "U+{c:04X}");
    }
    // ctl refuses what SSM itself would rewrite; the document may not stop it, ctl does.
    assert!(re.is_match("{{ssm:/x}}"));
    assert!(WindowArgs::open("nginx", "10m", Some("{{ssm:/x}}")).is_err());
}

#[test]
fn what_clawsterctl_sends_the_document_admits() {
    for (pkgs, ttl, reason) in [
        ("nginx", "10m", None),
        ("nginx htop,nginx", "0090m", Some("ticket 42")),
        ("Nginx,g++", "3600s", Some("-starts with a dash")),
        ("xz", "5s", Some("")),
        ("xz", "4h", Some("🦀")),
    ] {
        let a = WindowArgs::open(pkgs, ttl, reason).unwrap();
        let params = a.parameters();
        for (name, values) in &params {
            let re = pattern("WindowDocument", name);
            assert!(re.is_match(&values[0]), "{name}={:?}", values[0]);
        }
    }
    for a in [WindowArgs::Close, WindowArgs::Status { json: true }] {
        for (name, values) in &a.parameters() {
            assert!(pattern("WindowDocument", name).is_match(&values[0]));
        }
    }
}

#[test]
fn since_pattern_agrees_with_its_validator() {
    let re = pattern("OpsDocument", "since");
    let mut values: Vec<String> = [
        "", "01h", " 1h", "1h ", "1h;id", "-1h", "1H", "1.5h", "$(id)", "1hh", "١h", "1é", "10000s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in 0..=10_500 {
        for unit in ["s", "m", "h", "d", "w", ""] {
            values.push(format!("{n}{unit}"));
        }
    }
    for v in &values {
        assert_eq!(
            re.is_match(v),
            Since::parse(v).is_ok(),
            "document and validator disagree on {v:?}"
        );
    }
}

#[test]
fn fixed_lists_and_defaults_match_their_patterns() {
    for doc in ["WindowDocument", "OpsDocument"] {
        let params = parameters(doc);
        for (name, p) in params.as_object().unwrap() {
            let re = pattern(doc, name);
            assert_eq!(p["interpolationType"], "ENV_VAR", "{doc}.{name}");
            if let Some(d) = p.get("default") {
                assert!(re.is_match(d.as_str().unwrap()), "{doc}.{name} default {d}");
            }
            if let Some(values) = p.get("allowedValues") {
                let values: Vec<&str> = values
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                for v in &values {
                    assert!(re.is_match(v), "{doc}.{name} {v}");
                }
                for bad in ["", "OPEN", "open\n", "open;reboot", "health,logs"] {
                    assert!(!re.is_match(bad) || values.contains(&bad), "{bad:?}");
                }
            }
        }
    }
    // The patterns in the document are the ones core renders from its limits.
    assert_eq!(
        parameters("WindowDocument")["pkgs"]["allowedPattern"],
        window_rules::pkgs_pattern()
    );
}

#[test]
fn at_pattern_admits_exactly_the_wire_form_restore_sends() {
    use clawsterctl::state::time::At;
    let re = pattern("OpsDocument", "at");
    let now = 1_796_644_770; // 2026-12-07T11:59:30Z
    for given in [
        "2h",
        "90s",
        "14d",
        "2026-12-07T10:00:00+01:00",
        "2026-12-01T00:00:00.5Z",
    ] {
        let wire = At::parse(given, now).unwrap().wire();
        assert!(re.is_match(&wire), "{given} -> {wire}");
    }
    assert!(re.is_match(""), "empty for the other actions");
    for bad in [
        "2h",
        "2026-12-07T10:00:00+01:00",
        "2026-12-07t10:00:00z",
        "2026-12-07T10:00:00.5Z",
        "2026-12-07T10:00:00Z;reboot",
        "2026-12-07T10:00:00Z ",
        "$(id)",
        "--at=x",
    ] {
        assert!(!re.is_match(bad), "{bad:?}");
    }
}
