//! The image suite's sandbox turn: an OpenClaw agent turn with `agents.defaults.sandbox.mode`
//! `all` (what `clawsterctl deploy` configures) in the hardened gateway task, whose one `exec`
//! tool call must run in a sandbox container created through the docker guard.
//!
//! The model is a scripted stand-in for an OpenAI-compatible API (the process boundary the test
//! is not about): a small Node server on the gateway task's loopback, run with the image's own
//! Node as the task's user. Its first answer is one `exec` tool call, its second a final text; it
//! records every request it receives. The sandbox image `openclaw-sandbox:bookworm-slim` is a
//! static busybox with the directories a read-only root needs, pushed to the test's registry and
//! pulled from it by the host's dockerd, as the bot image is.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clawster_e2e::testhost::TestHost;
use serde_json::{json, Value};

/// The sandbox image OpenClaw asks for by default (and the guard's policy allows).
pub const SANDBOX_IMAGE: &str = "openclaw-sandbox:bookworm-slim";
/// Where the test machine's static busybox is (tests/deps/guard.apt: busybox-static).
const BUSYBOX: &str = "/bin/busybox";
/// The scripted model's port on the gateway task's loopback.
const MODEL_PORT: u16 = 18790;
/// Where the scripted model records requests (the task's /tmp tmpfs).
const MODEL_LOG: &str = "/tmp/scripted-model.jsonl";
/// The command of the model's one tool call.
const PROOF_COMMAND: &str = "echo sandboxed-$(id -u) > /workspace/proof; uname -a";
/// The model's final answer.
const FINAL_TEXT: &str = "scripted model: sandbox turn done";
/// The gateway container's entry to OpenClaw's CLI (the image's layout).
const OPENCLAW_CLI: &str = "/opt/openclaw/node_modules/openclaw/openclaw.mjs";

/// The gateway token the test's configuration carries.
const GATEWAY_TOKEN: &str = "e2e-gateway-token-0123456789";

/// The gateway's configuration: what `clawsterctl deploy` writes into the config secret
/// (ctl/src/openclaw.rs and deploy/secret.rs: sandbox mode all with OpenClaw's default scope and
/// workspace access, LAN bind behind the VPC, token auth with the token at `gateway.auth.token`,
/// no operator terminal, nothing phoning home) plus the scripted model as the only provider.
pub fn gateway_config(port: u16) -> Value {
    json!({
        "agents": { "defaults": {
            "sandbox": { "mode": "all" },
            "model": { "primary": "scripted/turn" }
        } },
        "gateway": {
            "mode": "local",
            "bind": "lan",
            "port": port,
            "trustedProxies": ["10.0.0.0/16"],
            "auth": { "mode": "token", "token": GATEWAY_TOKEN },
            "terminal": { "enabled": false }
        },
        "models": {
            "catalogRefresh": { "enabled": false },
            "providers": { "scripted": {
                "baseUrl": format!("http://127.0.0.1:{MODEL_PORT}/v1"),
                "apiKey": "scripted-model-key",
                "api": "openai-completions",
                "models": [{
                    "id": "turn", "name": "scripted turn", "reasoning": false, "input": ["text"],
                    "cost": { "input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0 },
                    "contextWindow": 128000, "maxTokens": 4096
                }]
            } }
        },
        "update": { "checkOnStart": false },
        "telemetry": { "enabled": false },
        "discovery": { "mdns": { "mode": "off" } }
    })
}

/// Builds the sandbox image's tree in the host, imports it, pushes it to the test's registry
/// (`registry`, dockerd already logged in), removes it and pulls it back, then tags it with the
/// name OpenClaw uses.
pub fn publish_sandbox_image(host: &TestHost, registry: &str) -> Result<()> {
    if !Path::new(BUSYBOX).is_file() {
        bail!("{BUSYBOX} is missing: install busybox-static (tests/deps/guard.apt, `tests/setup-host`)");
    }
    let tree = "/srv/sandbox-image";
    host.copy_in(Path::new(BUSYBOX), &format!("{tree}/bin/busybox"), 0o755)?;
    for d in [
        "proc",
        "sys",
        "dev",
        "etc",
        "tmp",
        "run",
        "var/tmp",
        "workspace",
    ] {
        std::fs::create_dir_all(host.path(&format!("{tree}/{d}")))?;
    }
    for tool in [
        "sh", "cat", "echo", "id", "uname", "sleep", "ls", "grep", "mkdir", "stat", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", host.path(&format!("{tree}/bin/{tool}")))?;
    }
    let remote = format!("{registry}/{SANDBOX_IMAGE}");
    // `set -o pipefail`: an empty tar stream would import an empty image.
    host.exec_ok(&[
        "bash",
        "-o",
        "pipefail",
        "-ec",
        &format!(
            "tar -C {tree} -c . | docker import - {remote}\n\
             docker push {remote}\n\
             docker rmi {remote}\n\
             docker pull {remote}\n\
             docker tag {remote} {SANDBOX_IMAGE}"
        ),
    ])?;
    Ok(())
}

/// The scripted model: a Node HTTP server answering `POST …/chat/completions` (streamed or not)
/// with one `exec` tool call until a tool result is in the conversation, then with a final
/// text. Every request is appended to [`MODEL_LOG`] as a JSON line.
fn model_script() -> String {
    let command = serde_json::to_string(PROOF_COMMAND).unwrap_or_default();
    let text = serde_json::to_string(FINAL_TEXT).unwrap_or_default();
    format!(
        r#"const http = require('http'), fs = require('fs');
const command = {command}, text = {text};
http.createServer((req, res) => {{
  let raw = '';
  req.on('data', d => raw += d);
  req.on('end', () => {{
    fs.appendFileSync('{MODEL_LOG}', JSON.stringify({{ method: req.method, url: req.url, body: raw }}) + '\n');
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {{
      res.writeHead(404, {{ 'content-type': 'application/json' }});
      return res.end('{{"error":{{"message":"not scripted"}}}}');
    }}
    const body = JSON.parse(raw);
    const done = (body.messages || []).some(m => m.role === 'tool');
    const call = {{ id: 'call_sandbox_proof', type: 'function',
      function: {{ name: 'exec', arguments: JSON.stringify({{ command }}) }} }};
    const message = done ? {{ role: 'assistant', content: text }}
                         : {{ role: 'assistant', content: null, tool_calls: [call] }};
    const finish = done ? 'stop' : 'tool_calls';
    const usage = {{ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }};
    const base = {{ id: 'chatcmpl-scripted', created: 0, model: body.model }};
    if (!body.stream) {{
      res.writeHead(200, {{ 'content-type': 'application/json' }});
      return res.end(JSON.stringify({{ ...base, object: 'chat.completion',
        choices: [{{ index: 0, message, finish_reason: finish }}], usage }}));
    }}
    res.writeHead(200, {{ 'content-type': 'text/event-stream' }});
    const send = o => res.write('data: ' + JSON.stringify({{ ...base, object: 'chat.completion.chunk', ...o }}) + '\n\n');
    const delta = done ? {{ role: 'assistant', content: text }}
                       : {{ role: 'assistant', tool_calls: [{{ index: 0, ...call }}] }};
    send({{ choices: [{{ index: 0, delta, finish_reason: null }}] }});
    send({{ choices: [{{ index: 0, delta: {{}}, finish_reason: finish }}] }});
    send({{ choices: [], usage }});
    res.end('data: [DONE]\n\n');
  }});
}}).listen({MODEL_PORT}, '127.0.0.1');
"#
    )
}

/// The scripted model's recorded requests.
fn model_requests(host: &TestHost, container: &str) -> Result<Vec<Value>> {
    let out = host.exec(&["docker", "exec", container, "cat", MODEL_LOG])?;
    if !out.success() {
        return Ok(Vec::new());
    }
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("model log line {l:?}")))
        .collect()
}

/// The sandbox containers (`openclaw-sbx-*`) dockerd has, as `docker inspect` documents (asked
/// on dockerd's own socket).
fn sandbox_containers(host: &TestHost) -> Result<Vec<Value>> {
    let names = host.exec_ok(&[
        "docker",
        "ps",
        "-a",
        "--filter",
        "name=^openclaw-sbx-",
        "--format",
        "{{.Names}}",
    ])?;
    let mut out = Vec::new();
    for name in names.split_whitespace() {
        let v: Value = serde_json::from_str(&host.exec_ok(&["docker", "inspect", name])?)?;
        out.push(v[0].clone());
    }
    Ok(out)
}

/// One agent turn in the gateway container `container`, whose tools run in a sandbox through
/// the guard; checks the sandbox, the guard's record of it, the proof and the model's view.
/// `state` is the host directory bind-mounted as the gateway's state directory.
pub fn sandbox_turn(host: &TestHost, container: &str, state: &str) -> Result<()> {
    assert!(
        sandbox_containers(host)?.is_empty(),
        "no sandbox before the turn"
    );
    host.exec_ok(&[
        "docker",
        "exec",
        "-d",
        container,
        "/usr/local/bin/node",
        "-e",
        &model_script(),
    ])?;
    clawster_e2e::process::wait_for(
        "the scripted model listens",
        Duration::from_secs(30),
        || {
            Ok(host
            .exec(&[
                "docker",
                "exec",
                container,
                "/usr/local/bin/node",
                "-e",
                &format!(
                    "fetch('http://127.0.0.1:{MODEL_PORT}/ready').then(() => process.exit(0), () => process.exit(1))"
                ),
            ])?
            .success())
        },
    )?;
    let start = Instant::now();
    let turn = host.exec_timeout(
        &[
            "docker",
            "exec",
            container,
            "/usr/local/bin/node",
            OPENCLAW_CLI,
            "agent",
            "--session-id",
            "sandbox-e2e",
            "--message",
            "Write the sandbox proof file.",
            "--json",
            "--timeout",
            "180",
        ],
        Duration::from_secs(240),
    )?;
    let secs = start.elapsed().as_secs_f64();
    let requests = model_requests(host, container)?;
    if !turn.success() || !turn.stdout.contains(FINAL_TEXT) {
        let logs = host.exec(&["docker", "logs", "--tail", "80", container])?;
        let guard = host.exec(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-t",
            "clawster-agent",
            "-n",
            "40",
        ])?;
        bail!(
            "the agent turn failed ({}):\n{}{}\nmodel requests: {}\ngateway log:\n{}{}\nguard journal:\n{}",
            turn.status,
            turn.stdout,
            turn.stderr,
            requests.len(),
            logs.stdout,
            logs.stderr,
            guard.stdout
        );
    }
    println!(
        "image task: one sandboxed agent turn (tool call in the sandbox, final answer) {secs:.1} s"
    );
    check_sandbox(host, state)?;
    check_model_saw_the_result(&requests, host)?;
    Ok(())
}

/// The sandbox container: created through the guard (its owner label, the runtime the guard
/// forces, the guard's journal record), hardened as OpenClaw asks (no capabilities, read-only
/// root, no network), its workspace a host path under the bot's state directory (translated by
/// the gateway from its own mounts: the self-discovery through the guard worked), and the proof
/// file the tool call wrote there.
fn check_sandbox(host: &TestHost, state: &str) -> Result<()> {
    let boxes = sandbox_containers(host)?;
    assert_eq!(boxes.len(), 1, "one sandbox container: {boxes:?}");
    let c = &boxes[0];
    let name = c["Name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    let id = c["Id"].as_str().context("sandbox Id")?;
    let hc = &c["HostConfig"];
    assert_eq!(
        c["Config"]["Labels"]["org.clawster.docker-guard"], "openclaw",
        "{name}: the guard's owner label"
    );
    assert_eq!(c["Config"]["Labels"]["openclaw.sandbox"], "1");
    assert_eq!(hc["Runtime"], "sysbox-runc", "the runtime the guard forces");
    assert_eq!(hc["CapDrop"], json!(["ALL"]));
    assert_eq!(hc["ReadonlyRootfs"], true);
    assert_eq!(hc["NetworkMode"], "none");
    assert_eq!(hc["Privileged"], false);
    assert_eq!(c["Config"]["Image"], SANDBOX_IMAGE);
    assert!(hc["Memory"].as_i64().is_some_and(|m| m > 0), "guard's cap");
    let record = host.wait_journal(&["-t", "clawster-agent"], Duration::from_secs(10), |r| {
        r["CLAWSTER_CHECK"] == "docker_guard.created" && r["CONTAINER_ID"] == id
    })?;
    assert_eq!(record["CONTAINER_NAME"], name);
    assert_eq!(record["RUNTIME"], "sysbox-runc");
    // The self-probe exec into the gateway's own container was let through (else the gateway
    // fails closed before any create).
    let refused = host.journal_json(&["-t", "clawster-agent"])?;
    let exec_refusals: Vec<_> = refused
        .iter()
        .filter(|r| {
            r["CLAWSTER_CHECK"] == "docker_guard.refused"
                && r["PATH"].as_str().is_some_and(|p| p.contains("/exec"))
        })
        .collect();
    assert!(exec_refusals.is_empty(), "{exec_refusals:?}");
    let workspace = hc["Binds"]
        .as_array()
        .context("Binds")?
        .iter()
        .filter_map(Value::as_str)
        .find(|b| b.split(':').nth(1) == Some("/workspace"))
        .with_context(|| format!("no /workspace bind: {hc}"))?
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        workspace.starts_with(&format!("{state}/")),
        "the workspace bind is a host path in the state directory: {workspace}"
    );
    let proof = std::fs::read_to_string(host.path(&format!("{workspace}/proof")))
        .with_context(|| format!("the proof file in {workspace}"))?;
    assert_eq!(proof.trim(), "sandboxed-1000", "uid of the sandbox's exec");
    println!(
        "image task: sandbox {name} through the guard (runtime {}, CapDrop ALL, read-only, network none), workspace {workspace}",
        hc["Runtime"]
    );
    Ok(())
}

/// The model got the tool's result, and it is the sandbox's output: `uname -a` names the sandbox
/// container's own hostname, not the gateway's.
fn check_model_saw_the_result(requests: &[Value], host: &TestHost) -> Result<()> {
    let boxes = sandbox_containers(host)?;
    let hostname = boxes[0]["Config"]["Hostname"]
        .as_str()
        .context("sandbox hostname")?
        .to_string();
    let bodies: Vec<Value> = requests
        .iter()
        .filter(|r| {
            r["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/chat/completions"))
        })
        .filter_map(|r| serde_json::from_str(r["body"].as_str()?).ok())
        .collect();
    assert!(
        bodies.len() >= 2,
        "a tool call and a final answer: {requests:?}"
    );
    let tools: Vec<&str> = bodies[0]["tools"]
        .as_array()
        .context("the first request offers tools")?
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"exec"), "{tools:?}");
    let result = bodies
        .iter()
        .flat_map(|b| b["messages"].as_array().cloned().unwrap_or_default())
        .find(|m| m["role"] == "tool")
        .context("no tool result reached the model")?;
    let text = result["content"].to_string();
    assert!(
        text.contains("Linux") && text.contains(&hostname),
        "the tool result is the sandbox's uname -a (hostname {hostname}): {text}"
    );
    Ok(())
}
