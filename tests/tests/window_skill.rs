//! The maintenance-window skill (`packaging/openclaw-skill/clawster-package-window`) loads in the
//! real OpenClaw (npm `openclaw@2026.9.6` on Node 26): `openclaw skills list --json` lists it from
//! the managed skills directory, eligible with the real `clawster-agent` on PATH, and names
//! `clawster-agent` as missing without it (so the listing really read our front-matter).

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clawster_e2e::bins::host_binary;
use clawster_e2e::openclaw;
use clawster_e2e::process::run_ok;
use serde_json::Value;

const SKILL: &str = "clawster-package-window";

fn copy_dir(src: &Path, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest)?;
    for e in fs::read_dir(src)? {
        let e = e?;
        let to = dest.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to)?;
        } else {
            fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

fn skills_list(oc: &openclaw::OpenClaw, state: &Path, path: &str) -> Result<Value> {
    let mut c = oc.command(&["skills", "list", "--json"]);
    c.env_clear()
        .env("PATH", path)
        .env("HOME", state.join("home"))
        .env("OPENCLAW_STATE_DIR", state)
        .env("OPENCLAW_NO_AUTO_UPDATE", "1")
        .env("OPENCLAW_DISABLE_BONJOUR", "1")
        .env("NODE_COMPILE_CACHE", state.join("compile-cache"))
        .env("TMPDIR", state.join("tmp"));
    let out = run_ok(&mut c, Duration::from_secs(180))?;
    let start = out
        .stdout
        .find('{')
        .with_context(|| format!("no JSON in {out:?}"))?;
    serde_json::from_str(&out.stdout[start..]).with_context(|| format!("parse {:?}", out.stdout))
}

fn entry<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["skills"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

#[test]
fn skill_loads_in_the_real_openclaw() -> Result<()> {
    let oc = openclaw::install()?;
    let agent = host_binary("clawster-agent")?;
    let state = tempfile::tempdir()?;
    for d in ["home", "tmp", "skills"] {
        fs::create_dir_all(state.path().join(d))?;
    }
    fs::write(
        state.path().join("openclaw.json"),
        r#"{"gateway":{"mode":"local","bind":"loopback"},"discovery":{"mdns":{"mode":"off"}},"update":{"checkOnStart":false}}"#,
    )?;
    copy_dir(
        &clawster_e2e::workspace_root()
            .join("packaging/openclaw-skill")
            .join(SKILL),
        &state.path().join("skills").join(SKILL),
    )?;
    let node_bin = oc.node.parent().expect("bin").display().to_string();
    let agent_dir = agent.parent().expect("dir").display().to_string();

    let with = skills_list(
        &oc,
        state.path(),
        &format!("{agent_dir}:{node_bin}:/usr/bin:/bin"),
    )?;
    let Some(s) = entry(&with, SKILL) else {
        bail!("{SKILL} not listed: {with:#}");
    };
    eprintln!("window_skill: listed {s}");
    assert_eq!(s["source"], "openclaw-managed", "{s}");
    assert_eq!(s["eligible"], true, "{s}");
    assert_eq!(s["modelVisible"], true, "{s}");
    assert!(
        s["description"]
            .as_str()
            .is_some_and(|d| d.contains("maintenance window")),
        "{s}"
    );

    let without = skills_list(&oc, state.path(), &format!("{node_bin}:/usr/bin:/bin"))?;
    let s = entry(&without, SKILL).with_context(|| format!("{SKILL} not listed: {without:#}"))?;
    assert_eq!(s["eligible"], false, "{s}");
    assert_eq!(
        s["missing"]["bins"],
        serde_json::json!(["clawster-agent"]),
        "{s}"
    );
    Ok(())
}
