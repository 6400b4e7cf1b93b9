//! Helpers shared by the integration tests: the fixture release, rendered templates, lookups.
#![allow(dead_code, clippy::unwrap_used)]

pub mod moto;
pub mod registry;
pub mod sim;
pub mod ssm_sim;
pub mod state_sim;

use std::path::PathBuf;

use clawsterctl::bot::{self, BotOptions};
use clawsterctl::manifest::Release;
use clawsterctl::names::GatewayPort;
use clawsterctl::shared;
use serde_json::Value;

/// A certificate ARN in us-east-1 for the HTTPS configurations.
pub const CERT: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666";

/// A bot image reference by digest (the registry is never contacted in these tests).
pub const TEST_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/clawster-openclaw@sha256:4f3c0a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789ab";

/// The fixture artifacts directory (a manifest with made-up hashes, no binaries).
pub fn fixture_dist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dist")
}

/// The fixture release.
pub fn release() -> Release {
    Release::load(&fixture_dist()).expect("fixture manifest")
}

/// Bot options with defaults: t4g.small (arm64), port 18789, optional certificate.
pub fn bot_options(name: &str, region: &str, cert: Option<&str>) -> BotOptions {
    BotOptions {
        name: name.parse().expect("bot name"),
        region: region.parse().expect("region"),
        instance_type: bot::DEFAULT_INSTANCE_TYPE.parse().expect("type"),
        certificate: cert.map(|c| c.parse().expect("certificate")),
        gateway_port: GatewayPort::DEFAULT,
        layout: bot::Layout::Dedicated,
    }
}

/// The shared template for a region.
pub fn shared_template(region: &str) -> Value {
    shared::template(&region.parse().expect("region"), &release())
}

/// The bot template for `demo` in us-east-1, without or with a certificate.
pub fn bot_template(https: bool) -> Value {
    bot::template(
        &bot_options("demo", "us-east-1", https.then_some(CERT)),
        &release(),
    )
}

/// A resource's `Properties`, failing the test with its name when absent.
pub fn props<'a>(t: &'a Value, id: &str) -> &'a Value {
    let r = &t["Resources"][id];
    assert!(r.is_object(), "template has no resource {id}");
    &r["Properties"]
}

/// A resource's type.
pub fn kind<'a>(t: &'a Value, id: &str) -> &'a str {
    t["Resources"][id]["Type"]
        .as_str()
        .unwrap_or_else(|| panic!("template has no resource {id}"))
}

/// Logical ids of all resources of a type.
pub fn of_type(t: &Value, ty: &str) -> Vec<String> {
    t["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .map(|(id, _)| id.clone())
        .collect()
}

/// The text of a UserData (`Fn::Base64` of `Fn::Sub` of text).
pub fn user_data_script(user_data: &Value) -> String {
    let sub = &user_data["Fn::Base64"]["Fn::Sub"];
    let text = if sub.is_array() { &sub[0] } else { sub };
    text.as_str().expect("UserData text").to_string()
}

/// Every `Fn::ImportValue` export suffix used in a template (the part after `${SharedStackName}-`).
pub fn imports(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(i) = m.get("Fn::ImportValue") {
                let s = i["Fn::Sub"].as_str().expect("import via Fn::Sub");
                out.push(s.trim_start_matches("${SharedStackName}-").to_string());
            }
            m.values().for_each(|x| imports(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| imports(x, out)),
        _ => {}
    }
}

/// Lines of a script that do something (not blank, not comments, not the shebang).
pub fn code_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}
