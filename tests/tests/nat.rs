//! Privileged end-to-end suite of `clawster-nat-agent` in three network namespaces.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables; the real binary is only the test oracle,
//! the agent runs with a PATH that holds neither nft nor iptables). A missing prerequisite
//! fails every test with a message naming it. The agent binary comes from
//! `$CLAWSTER_NAT_AGENT_BIN` or `$CLAWSTER_DIST/x86_64-unknown-linux-musl/clawster-nat-agent`.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clawster_e2e::netns::{
    Netns, Topology, METADATA_ADDR, NAT_EGRESS, NAT_OUTSIDE_ADDR, OUTSIDE_ADDR, PRIVATE_NET,
};
use clawster_e2e::process::{wait_for, Output};
use clawster_e2e::{bins, prereq};
use serde_json::Value;

const SUITE: &str = "nat";
const PROBE: Duration = Duration::from_secs(2);

struct Env {
    bin: PathBuf,
    nft: PathBuf,
    /// Root for the files the agent writes (etc/sysctl.d) and the empty PATH directory.
    dir: tempfile::TempDir,
}

fn env() -> Env {
    let setup = || -> Result<Env> {
        prereq::require_root(SUITE)?;
        prereq::require_tools(SUITE, &["ip", "nft"])?;
        let bin = bins::host_binary("clawster-nat-agent")?;
        let nft = prereq::which("nft").context("nft")?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("root/etc"))?;
        std::fs::create_dir_all(dir.path().join("empty-path"))?;
        Ok(Env { bin, nft, dir })
    };
    match setup() {
        Ok(e) => e,
        Err(e) => panic!("the privileged {SUITE} suite cannot run: {e:#}"),
    }
}

impl Env {
    fn root(&self) -> String {
        self.dir.path().join("root").display().to_string()
    }

    /// The agent inside `ns` with an empty PATH (no nft, no iptables, nothing).
    fn agent(&self, ns: &Netns, args: &[&str]) -> Command {
        let mut c = ns.command(&self.bin);
        c.args(["--log-target", "stderr"]).args(args);
        c.env_clear()
            .env("PATH", self.dir.path().join("empty-path"));
        c
    }

    fn run_agent(&self, ns: &Netns, args: &[&str]) -> Result<Output> {
        clawster_e2e::process::run(&mut self.agent(ns, args), Duration::from_secs(60))
    }

    fn apply(&self, ns: &Netns, extra: &[&str]) -> Result<Output> {
        let root = self.root();
        let mut args = vec![
            "apply",
            "--once",
            "--root",
            &root,
            "--imds-endpoint",
            "off",
            "--detect-timeout",
            "2",
        ];
        args.extend_from_slice(extra);
        self.run_agent(ns, &args)
    }

    /// `status --json` with `extra`: the process output (exit code: healthy or not) and its JSON.
    fn status(&self, ns: &Netns, extra: &[&str]) -> Result<(Output, Value)> {
        let root = self.root();
        let mut args = vec![
            "status",
            "--json",
            "--root",
            &root,
            "--imds-endpoint",
            "off",
        ];
        args.extend_from_slice(extra);
        let out = self.run_agent(ns, &args)?;
        let v: Value = serde_json::from_str(&out.stdout)?;
        Ok((out, v))
    }

    fn list_json(&self, ns: &Netns, table: &str) -> Result<Value> {
        let nft = self.nft.display().to_string();
        let out = ns.exec_ok(&nft, &["-j", "list", "table", "ip", table])?;
        serde_json::from_str(&out.stdout).context("parse nft -j output")
    }
}

const STD: &[&str] = &["--vpc-cidr", PRIVATE_NET, "--egress-interface", NAT_EGRESS];

/// Whether the kernel takes a flowtable, asked in `ns` with `nft -c` (which creates nothing).
fn flowtables_supported(e: &Env, ns: &Netns) -> Result<bool> {
    let probe = e.dir.path().join("probe.nft");
    std::fs::write(
        &probe,
        format!("table ip ft_probe {{\n flowtable f {{ hook ingress priority filter; devices = {{ {NAT_EGRESS} }}; }}\n}}\n"),
    )?;
    let nft = e.nft.display().to_string();
    let out = ns.exec(&nft, &["-c", "-f", &probe.display().to_string()])?;
    if !out.success() {
        eprintln!("no flowtables here; nft -c said: {}", out.stderr.trim());
    }
    Ok(out.success())
}

fn ok(out: &Output) {
    assert!(
        out.success(),
        "agent exited {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

/// The rules and chains of an `nft -j` listing, without handles and table names.
fn normalized(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        for kind in ["chain", "rule", "flowtable"] {
            if let Some(obj) = item.get(kind).and_then(Value::as_object) {
                let mut o = obj.clone();
                o.remove("handle");
                o.remove("table");
                out.push(serde_json::json!({ kind: o }));
            }
        }
    }
    out
}

#[test]
fn translates_allowed_ports_and_drops_the_rest() -> Result<()> {
    let e = env();
    let t = Topology::new("xlat")?;
    let https = t.outside.tcp_server("0.0.0.0:443")?;
    let ssh = t.outside.tcp_server("0.0.0.0:22")?;
    let meta = t.outside.tcp_server(&format!("{METADATA_ADDR}:80"))?;

    // Control: plain routing (no agent) reaches port 22 and the metadata address untranslated,
    // so the drops below are our filter's doing, not the topology's.
    t.nat.set_sysctl("net.ipv4.ip_forward", "1")?;
    assert!(
        t.private.tcp_probe(&format!("{OUTSIDE_ADDR}:22"), PROBE)?,
        "control: plain routing to :22"
    );
    assert!(
        t.private.tcp_probe(&format!("{METADATA_ADDR}:80"), PROBE)?,
        "control: plain routing to metadata"
    );
    assert_eq!(ssh.peers(), ["10.0.2.2"], "control: untranslated source");
    t.nat.set_sysctl("net.ipv4.ip_forward", "0")?;

    let out = e.apply(&t.nat, STD)?;
    ok(&out);
    assert_eq!(t.nat.sysctl("net.ipv4.ip_forward")?, "1");
    assert_eq!(t.nat.sysctl("net.ipv4.conf.all.send_redirects")?, "0");
    assert_eq!(
        t.nat
            .sysctl("net.netfilter.nf_conntrack_tcp_timeout_established")?,
        "7440"
    );
    let conf = std::fs::read_to_string(
        e.dir
            .path()
            .join("root/etc/sysctl.d/60-clawster-nat-agent.conf"),
    )?;
    assert!(
        conf.contains("send_redirects = 0") && !conf.contains("\nnet.ipv4.ip_forward"),
        "{conf}"
    );

    assert!(
        t.private.tcp_probe(&format!("{OUTSIDE_ADDR}:443"), PROBE)?,
        "443 must pass"
    );
    assert_eq!(
        https.peers(),
        [NAT_OUTSIDE_ADDR],
        "the outside must see the NAT's address"
    );
    assert!(
        !t.private.tcp_probe(&format!("{OUTSIDE_ADDR}:22"), PROBE)?,
        "22 must be dropped"
    );
    assert_eq!(ssh.peers().len(), 1, "no new connection on 22");
    assert!(
        !t.private.tcp_probe(&format!("{METADATA_ADDR}:80"), PROBE)?,
        "169.254.169.254 must be dropped"
    );
    assert_eq!(
        meta.peers().len(),
        1,
        "no new connection to the metadata address"
    );
    Ok(())
}

#[test]
fn apply_twice_is_identical_and_status_is_healthy() -> Result<()> {
    let e = env();
    let t = Topology::new("twice")?;
    let args: Vec<&str> = STD
        .iter()
        .copied()
        .chain(["--mss-clamp", "--fully-random"])
        .collect();
    ok(&e.apply(&t.nat, &args)?);
    let first = e.list_json(&t.nat, "clawster_nat")?;
    let out = e.apply(&t.nat, &args)?;
    ok(&out);
    assert!(
        !out.stderr.contains("replacing table"),
        "second apply must find the table correct:\n{}",
        out.stderr
    );
    assert_eq!(
        e.list_json(&t.nat, "clawster_nat")?,
        first,
        "nft -j listing changed between applies"
    );

    let (out, v) = e.status(&t.nat, &args)?;
    ok(&out);
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["ruleset_verified"], true);

    // Drift is seen by status (exit 1) and repaired by apply.
    let nft = e.nft.display().to_string();
    t.nat
        .exec_ok(&nft, &["flush", "chain", "ip", "clawster_nat", "forward"])?;
    let (out, _) = e.status(&t.nat, &args)?;
    assert_eq!(out.status, 1, "status after drift:\n{}", out.stdout);
    assert!(
        out.stdout.contains("chain forward has 0 rules"),
        "{}",
        out.stdout
    );
    ok(&e.apply(&t.nat, &args)?);
    // The table was replaced, so handles differ; the rules must not.
    assert_eq!(
        normalized(&e.list_json(&t.nat, "clawster_nat")?),
        normalized(&first)
    );
    Ok(())
}

/// Every rule shape we emit, read back by the real nft and compared with what nft itself
/// compiles from the same rules in nft syntax.
#[test]
fn kernel_round_trip_matches_nft_for_every_rule_shape() -> Result<()> {
    let e = env();
    let t = Topology::new("shape")?;
    let nft = e.nft.display().to_string();
    let fast = flowtables_supported(&e, &t.nat)?;
    let variants: [(&str, &[&str]); 4] = [
        ("plain", &[]),
        ("clamp", &["--mss-clamp"]),
        ("random", &["--fully-random", "--allow-ports", "443"]),
        (
            "both",
            &[
                "--mss-clamp",
                "--fully-random",
                "--vpc-cidr",
                "10.1.0.0/16",
                "--vpc-cidr",
                "192.0.2.7/32",
                "--allow-ports",
                "80,443,8443",
            ],
        ),
    ];
    for (name, extra) in variants {
        let table = format!("cn_{name}");
        let mut args = vec!["--table", table.as_str(), "--egress-interface", NAT_EGRESS];
        if !extra.contains(&"--vpc-cidr") {
            args.extend(["--vpc-cidr", PRIVATE_NET]);
        }
        args.extend_from_slice(extra);
        args.push("--json");
        let out = e.apply(&t.nat, &args)?;
        ok(&out);
        let report: Value = serde_json::from_str(&out.stdout)?;
        assert_eq!(report["fast_path"], fast, "{report}");
        let devices: Vec<&str> = report["fast_path_devices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();

        // The oracle: the same rules written in nft syntax, compiled by nft into another table.
        let cidrs: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "--vpc-cidr")
            .map(|w| w[1])
            .collect();
        let ports: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "--allow-ports")
            .flat_map(|w| w[1].split(','))
            .collect();
        let ports = if ports.is_empty() {
            vec!["80", "443"]
        } else {
            ports
        };
        let fr = if extra.contains(&"--fully-random") {
            " fully-random"
        } else {
            ""
        };
        let mut text = format!("table ip oracle_{name} {{\n");
        if fast {
            text.push_str(&format!(
                " flowtable ft {{ hook ingress priority filter; devices = {{ {} }}; }}\n",
                devices.join(", ")
            ));
        }
        text.push_str(
            " chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n",
        );
        for c in &cidrs {
            text.push_str(&format!(
                "  oifname \"{NAT_EGRESS}\" ip saddr {c} masquerade{fr}\n"
            ));
        }
        text.push_str(
            " }\n chain forward {\n  type filter hook forward priority filter; policy drop;\n",
        );
        if extra.contains(&"--mss-clamp") {
            text.push_str("  tcp flags syn tcp option maxseg size set rt mtu\n");
        }
        if fast {
            text.push_str("  meta l4proto tcp ct state established flow add @ft\n");
            text.push_str("  meta l4proto udp ct state established flow add @ft\n");
        }
        text.push_str("  ct state established,related accept\n  ip daddr 169.254.0.0/16 drop\n");
        for c in &cidrs {
            for p in &ports {
                text.push_str(&format!(
                    "  oifname \"{NAT_EGRESS}\" ip saddr {c} tcp dport {p} ct state new accept\n"
                ));
            }
        }
        text.push_str(" }\n}\n");
        let file = e.dir.path().join(format!("oracle_{name}.nft"));
        std::fs::write(&file, &text)?;
        t.nat.exec_ok(&nft, &["-f", &file.display().to_string()])?;

        let ours = e.list_json(&t.nat, &table)?;
        let oracle = e.list_json(&t.nat, &format!("oracle_{name}"))?;
        assert_eq!(
            normalized(&ours),
            normalized(&oracle),
            "variant {name}: our table vs nft's compilation of\n{text}"
        );
        let s = ours.to_string();
        if extra.contains(&"--fully-random") {
            assert!(
                s.contains(r#"{"masquerade":{"flags":"fully-random"}}"#),
                "{s}"
            );
        }
        if extra.contains(&"--mss-clamp") {
            assert!(
                s.contains(r#"{"mangle":{"key":{"tcp option":{"name":"maxseg","field":"size"}},"value":{"rt":{"key":"mtu"}}}}"#),
                "{s}"
            );
        }
        assert!(
            s.contains(r#"{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}}"#),
            "{s}"
        );
    }
    // Our tables never touched each other or the oracles.
    let all = t.nat.exec_ok(&nft, &["list", "tables"])?.stdout;
    assert_eq!(all.lines().count(), 8, "{all}");
    Ok(())
}

#[test]
fn missing_egress_interface_fails_closed() -> Result<()> {
    let e = env();
    let t = Topology::new("noif")?;
    let args = ["--vpc-cidr", PRIVATE_NET, "--egress-interface", "nope0"];
    let out = e.apply(&t.nat, &args)?;
    assert_ne!(out.status, 0, "must fail:\n{}", out.stderr);
    assert!(
        out.stderr.contains("\"nope0\" does not exist"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nat.forwarding"),
        "journal record names the failure:\n{}",
        out.stderr
    );
    assert_eq!(t.nat.sysctl("net.ipv4.ip_forward")?, "0");

    // Forwarding that was on (e.g. left by something else) is turned off, not left untranslated.
    t.nat.set_sysctl("net.ipv4.ip_forward", "1")?;
    let out = e.apply(&t.nat, &args)?;
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("turned off"), "{}", out.stderr);
    assert_eq!(t.nat.sysctl("net.ipv4.ip_forward")?, "0");
    Ok(())
}

#[test]
fn foreign_drop_chain_is_reported() -> Result<()> {
    let e = env();
    let t = Topology::new("foreign")?;
    let nft = e.nft.display().to_string();
    t.nat
        .exec_ok(&nft, &["add", "table", "inet", "dockerish"])?;
    t.nat.exec_ok(
        &nft,
        &["add chain inet dockerish FORWARD { type filter hook forward priority 10 ; policy drop ; }"],
    )?;
    let out = e.apply(&t.nat, STD)?;
    ok(&out);
    assert!(
        out.stderr.contains("nat.foreign-drop") && out.stderr.contains("inet dockerish FORWARD"),
        "{}",
        out.stderr
    );
    let (out, v) = e.status(&t.nat, STD)?;
    assert_eq!(out.status, 1, "a foreign drop chain makes status unhealthy");
    assert_eq!(v["foreign_drop_chains"][0]["table"], "dockerish", "{v}");
    assert_eq!(v["ruleset_verified"], true);
    // And it is real: the foreign chain drops what our table accepts.
    let _srv = t.outside.tcp_server("0.0.0.0:443")?;
    assert!(!t.private.tcp_probe(&format!("{OUTSIDE_ADDR}:443"), PROBE)?);
    // We never touched it.
    t.nat
        .exec_ok(&nft, &["list", "chain", "inet", "dockerish", "FORWARD"])?;
    Ok(())
}

#[test]
fn remove_turns_forwarding_off_and_deletes_only_our_table() -> Result<()> {
    let e = env();
    let t = Topology::new("rm")?;
    let nft = e.nft.display().to_string();
    t.nat
        .exec_ok(&nft, &["add", "table", "ip", "someone_else"])?;
    ok(&e.apply(&t.nat, STD)?);
    let root = e.root();
    ok(&e.run_agent(
        &t.nat,
        &["remove", "--root", &root, "--imds-endpoint", "off"],
    )?);
    assert_eq!(t.nat.sysctl("net.ipv4.ip_forward")?, "0");
    let tables = t.nat.exec_ok(&nft, &["list", "tables"])?.stdout;
    assert_eq!(tables.trim(), "table ip someone_else");
    assert!(!e
        .dir
        .path()
        .join("root/etc/sysctl.d/60-clawster-nat-agent.conf")
        .exists());
    // Idempotent.
    ok(&e.run_agent(
        &t.nat,
        &["remove", "--root", &root, "--imds-endpoint", "off"],
    )?);
    Ok(())
}

/// A fake IMDS inside the NAT namespace: the egress interface comes from the default route and
/// is cross-checked with the MAC IMDS reports; the VPC CIDR comes from IMDS.
#[test]
fn egress_and_cidrs_from_route_and_fake_imds() -> Result<()> {
    let e = env();
    let t = Topology::new("imds")?;
    let mac = t
        .nat
        .exec_ok("cat", &[&format!("/sys/class/net/{NAT_EGRESS}/address")]);
    // /sys in `ip netns exec` is the namespace's; fall back to `ip link` parsing if needed.
    let mac = match mac {
        Ok(o) if !o.stdout.trim().is_empty() => o.stdout.trim().to_string(),
        _ => {
            let o = t.nat.ip(&["-o", "link", "show", NAT_EGRESS])?;
            o.stdout
                .split("link/ether ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("")
                .into()
        }
    };
    for (served_mac, expect_ok) in [
        (mac.clone(), true),
        ("02:00:00:00:00:99".to_string(), false),
    ] {
        let listener = t
            .nat
            .in_ns(|| Ok(std::net::TcpListener::bind("127.0.0.1:0")?))?;
        let port = listener.local_addr()?.port();
        let served = served_mac.clone();
        let server = std::thread::spawn(move || serve_imds(listener, &served));
        let endpoint = format!("127.0.0.1:{port}");
        let root = e.root();
        let out = e.run_agent(
            &t.nat,
            &[
                "apply",
                "--once",
                "--root",
                &root,
                "--imds-endpoint",
                &endpoint,
                "--detect-timeout",
                "2",
            ],
        )?;
        let _ = server.join();
        if expect_ok {
            ok(&out);
            assert!(
                out.stderr
                    .contains(&format!("masquerade {PRIVATE_NET} out of {NAT_EGRESS}")),
                "{}",
                out.stderr
            );
            assert_eq!(t.nat.sysctl("net.ipv4.ip_forward")?, "1");
        } else {
            assert_ne!(out.status, 0, "a MAC mismatch must fail:\n{}", out.stderr);
            assert!(out.stderr.contains("02:00:00:00:00:99"), "{}", out.stderr);
            assert_eq!(t.nat.sysctl("net.ipv4.ip_forward")?, "0");
        }
    }
    Ok(())
}

/// Answers IMDSv2 requests until no connection arrives for a second.
fn serve_imds(l: std::net::TcpListener, mac: &str) {
    use std::io::{BufRead, BufReader, Write};
    let _ = l.set_nonblocking(true);
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(3) {
        let Ok((s, _)) = l.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        idle = Instant::now();
        let _ = s.set_nonblocking(false);
        let mut r = BufReader::new(match s.try_clone() {
            Ok(c) => c,
            Err(_) => continue,
        });
        let mut first = String::new();
        let _ = r.read_line(&mut first);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        let body = if first.starts_with("PUT /latest/api/token") {
            "tok".to_string()
        } else if first.contains("/meta-data/mac ") {
            mac.to_string()
        } else if first.contains("/vpc-ipv4-cidr-blocks") {
            format!("{PRIVATE_NET}\n")
        } else {
            String::new()
        };
        let mut s = s;
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn daemon_notifies_and_restores_after_flush_ruleset() -> Result<()> {
    let e = env();
    let t = Topology::new("run")?;
    let sock_path = e.dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&sock_path)?;
    notify.set_read_timeout(Some(Duration::from_secs(15)))?;
    let root = e.root();
    let ip = prereq::which("ip").context("ip")?;
    let mut args: Vec<String> = ["netns", "exec", t.nat.name()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(e.bin.display().to_string());
    for a in [
        "--log-target",
        "stderr",
        "run",
        "--interval",
        "30",
        "--root",
        &root,
        "--imds-endpoint",
        "off",
    ] {
        args.push(a.into());
    }
    args.extend(STD.iter().map(|s| s.to_string()));
    let child = Command::new(ip)
        .args(&args)
        .env_clear()
        .env("PATH", e.dir.path().join("empty-path"))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let daemon = Daemon(child);

    let mut buf = [0u8; 512];
    let n = notify
        .recv(&mut buf)
        .context("no sd_notify message from the daemon")?;
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.starts_with("READY=1\nSTATUS=forwarding"), "{msg}");
    assert_eq!(t.nat.sysctl("net.ipv4.ip_forward")?, "1");
    // The watchdog is fed (WATCHDOG_USEC=1s: a ping every 0.5 s).
    let mut watchdog = false;
    for _ in 0..10 {
        let n = notify.recv(&mut buf)?;
        if &buf[..n] == b"WATCHDOG=1" {
            watchdog = true;
            break;
        }
    }
    assert!(watchdog, "no WATCHDOG=1");

    let _srv = t.outside.tcp_server("0.0.0.0:443")?;
    let nft = e.nft.display().to_string();
    t.nat.exec_ok(&nft, &["flush", "ruleset"])?;
    let took = wait_for("table restored", Duration::from_secs(5), || {
        Ok(t.nat
            .exec(&nft, &["list", "table", "ip", "clawster_nat"])?
            .stdout
            .contains("masquerade"))
    })?;
    eprintln!("restored {took:?} after nft flush ruleset");
    assert_eq!(t.nat.sysctl("net.ipv4.ip_forward")?, "1");
    assert!(
        t.private.tcp_probe(&format!("{OUTSIDE_ADDR}:443"), PROBE)?,
        "traffic passes after repair"
    );

    // Someone turns forwarding off: the periodic check is 30 s, but the daemon also reacts to
    // a link event; flapping the inside link triggers one.
    t.nat.set_sysctl("net.ipv4.ip_forward", "0")?;
    t.nat.ip(&["link", "set", "in0", "down"])?;
    t.nat.ip(&["link", "set", "in0", "up"])?;
    wait_for("forwarding back on", Duration::from_secs(5), || {
        Ok(t.nat.sysctl("net.ipv4.ip_forward")? == "1")
    })?;

    // The egress interface is renamed: the configured name no longer exists, so forwarding must
    // go off (fail closed) until it is back.
    t.nat.ip(&["link", "set", NAT_EGRESS, "down"])?;
    t.nat.ip(&["link", "set", NAT_EGRESS, "name", "wan9"])?;
    wait_for(
        "forwarding off after rename",
        Duration::from_secs(5),
        || Ok(t.nat.sysctl("net.ipv4.ip_forward")? == "0"),
    )?;
    t.nat.ip(&["link", "set", "wan9", "name", NAT_EGRESS])?;
    t.nat.ip(&["link", "set", NAT_EGRESS, "up"])?;
    t.nat
        .ip(&["route", "replace", "default", "via", OUTSIDE_ADDR])?;
    wait_for(
        "forwarding on after rename back",
        Duration::from_secs(5),
        || Ok(t.nat.sysctl("net.ipv4.ip_forward")? == "1"),
    )?;
    drop(daemon);
    Ok(())
}

/// The shipped unit on a booted systemd host (systemd-nspawn, private network): the sandboxed
/// service starts as Type=notify, reports READY with a status line, turns forwarding on in its
/// network namespace, writes its health records to the journal and its sysctl.d file.
#[test]
fn shipped_unit_runs_sandboxed_on_a_booted_host() -> Result<()> {
    use clawster_e2e::testhost::{Layout, TestHost};
    let e = env();
    let host = TestHost::boot(Layout::MergedUsr)?;
    // An egress interface for the container: a veth pair made here and moved in.
    let ip = prereq::which("ip").context("ip")?;
    let (a, b) = (
        format!("cnu{}a", std::process::id() % 100000),
        format!("cnu{}b", std::process::id() % 100000),
    );
    let pid = host.leader_pid().to_string();
    let run_ip = |args: &[&str]| {
        clawster_e2e::process::run_ok(Command::new(&ip).args(args), Duration::from_secs(20))
    };
    run_ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])?;
    run_ip(&["link", "set", &a, "netns", &pid])?;
    run_ip(&["link", "set", &b, "netns", &pid])?;
    clawster_e2e::process::run_ok(
        Command::new("nsenter")
            .args(["-t", &pid, "-n"])
            .arg(&ip)
            .args(["link", "set", &a, "name", "eg0"]),
        Duration::from_secs(20),
    )?;

    host.copy_in(&e.bin, "/usr/local/bin/clawster-nat-agent", 0o755)?;
    let unit = clawster_e2e::workspace_root().join("systemd/clawster-nat-agent.service");
    host.copy_in(
        &unit,
        "/etc/systemd/system/clawster-nat-agent.service",
        0o644,
    )?;
    host.write_file(
        "/etc/clawster/nat-agent.env",
        format!(
            "CLAWSTER_NAT_VPC_CIDR={PRIVATE_NET}\nCLAWSTER_NAT_EGRESS_INTERFACE=eg0\nCLAWSTER_IMDS_ENDPOINT=off\nCLAWSTER_NAT_MSS_CLAMP=true\n"
        )
        .as_bytes(),
        0o600,
    )?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;
    let start = host.exec(&["systemctl", "start", "clawster-nat-agent.service"])?;
    let show = host.exec_ok(&[
        "systemctl",
        "show",
        "-p",
        "ActiveState,SubState,StatusText,NRestarts",
        "clawster-nat-agent.service",
    ])?;
    let journal = host.exec(&[
        "journalctl",
        "--no-pager",
        "-u",
        "clawster-nat-agent.service",
    ])?;
    assert!(
        start.success(),
        "systemctl start failed: {start:?}\n{show}\n{}",
        journal.stdout
    );
    assert!(
        show.contains("ActiveState=active") && show.contains("SubState=running"),
        "{show}"
    );
    assert!(
        show.contains("StatusText=forwarding 10.0.2.0/24 via eg0"),
        "{show}"
    );
    assert_eq!(
        host.exec_ok(&["cat", "/proc/sys/net/ipv4/ip_forward"])?
            .trim(),
        "1"
    );
    let rec = host.wait_journal(
        &["-u", "clawster-nat-agent.service"],
        Duration::from_secs(10),
        |r| r["CLAWSTER_CHECK"] == "nat.ruleset" && r["CLAWSTER_STATUS"] == "changed",
    )?;
    assert!(
        rec["MESSAGE"]
            .as_str()
            .unwrap_or_default()
            .contains("verified"),
        "{rec}"
    );
    // The fast path's state is a structured record too (degraded where the kernel has no
    // flowtables, ok where it has).
    let fast = host.wait_journal(
        &["-u", "clawster-nat-agent.service"],
        Duration::from_secs(10),
        |r| r["CLAWSTER_CHECK"] == "nat.fastpath",
    )?;
    assert!(
        matches!(fast["CLAWSTER_STATUS"].as_str(), Some("ok" | "degraded"))
            && fast["MESSAGE"]
                .as_str()
                .unwrap_or_default()
                .starts_with("fast path "),
        "{fast}"
    );
    let conf = std::fs::read_to_string(host.path("/etc/sysctl.d/60-clawster-nat-agent.conf"))?;
    assert!(conf.contains("send_redirects = 0"), "{conf}");
    let security = host.exec(&[
        "systemd-analyze",
        "security",
        "--no-pager",
        "clawster-nat-agent.service",
    ])?;
    if let Some(line) = security
        .stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
    {
        eprintln!("nat unit: {}", line.trim());
    }
    let verify = host.exec(&["systemd-analyze", "verify", "clawster-nat-agent.service"])?;
    let ours: Vec<&str> = verify
        .stderr
        .lines()
        .filter(|l| l.contains("clawster-nat-agent"))
        .collect();
    assert!(ours.is_empty(), "systemd-analyze verify: {ours:?}");
    host.exec_ok(&["systemctl", "stop", "clawster-nat-agent.service"])?;
    host.shutdown()
}

/// With the egress interface detected from the default route, a renamed (or replaced)
/// interface is followed: forwarding goes off while there is no default route, and the table is
/// rewritten for the new name once there is.
#[test]
fn daemon_follows_a_renamed_egress_interface() -> Result<()> {
    let e = env();
    let t = Topology::new("follow")?;
    let root = e.root();
    let mut cmd = e.agent(
        &t.nat,
        &[
            "run",
            "--interval",
            "30",
            "--root",
            &root,
            "--imds-endpoint",
            "off",
            "--vpc-cidr",
            PRIVATE_NET,
        ],
    );
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _daemon = Daemon(child);
    let nft = e.nft.display().to_string();
    let table = |t: &Topology| -> Result<String> {
        Ok(t.nat
            .exec(&nft, &["list", "table", "ip", "clawster_nat"])?
            .stdout)
    };
    wait_for("first convergence", Duration::from_secs(10), || {
        Ok(t.nat.sysctl("net.ipv4.ip_forward")? == "1" && table(&t)?.contains("oifname \"out0\""))
    })?;

    t.nat.ip(&["link", "set", NAT_EGRESS, "down"])?;
    wait_for(
        "forwarding off without a default route",
        Duration::from_secs(5),
        || Ok(t.nat.sysctl("net.ipv4.ip_forward")? == "0"),
    )?;
    t.nat.ip(&["link", "set", NAT_EGRESS, "name", "wan9"])?;
    t.nat.ip(&["link", "set", "wan9", "up"])?;
    t.nat.ip(&[
        "route",
        "replace",
        "default",
        "via",
        OUTSIDE_ADDR,
        "dev",
        "wan9",
    ])?;
    wait_for("table follows the new name", Duration::from_secs(5), || {
        Ok(t.nat.sysctl("net.ipv4.ip_forward")? == "1" && table(&t)?.contains("oifname \"wan9\""))
    })?;
    let srv = t.outside.tcp_server("0.0.0.0:443")?;
    assert!(
        t.private.tcp_probe(&format!("{OUTSIDE_ADDR}:443"), PROBE)?,
        "traffic passes via wan9"
    );
    assert_eq!(srv.peers(), [NAT_OUTSIDE_ADDR]);
    Ok(())
}

/// Sends `len` bytes from the private host to a sink on the outside host through the NAT and
/// reads back the sink's count and the source address it saw: many packets of one established
/// connection, which is what the fast path carries.
fn bulk_through_nat(t: &Topology, port: u16, len: usize) -> Result<(usize, String)> {
    use std::io::{Read, Write};
    let listener = t
        .outside
        .in_ns(move || Ok(std::net::TcpListener::bind(("0.0.0.0", port))?))?;
    let sink = std::thread::spawn(move || -> Result<(usize, String)> {
        let (mut s, peer) = listener.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf)? {
                0 => break,
                n => total += n,
            }
        }
        s.write_all(format!("{total}\n").as_bytes())?;
        Ok((total, peer.ip().to_string()))
    });
    let target = format!("{OUTSIDE_ADDR}:{port}");
    let echoed = t.private.in_ns(move || {
        let mut s = std::net::TcpStream::connect_timeout(&target.parse()?, PROBE)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let chunk = vec![0x5au8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n])?;
            left -= n;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer.trim().parse::<usize>()?)
    })?;
    let (seen, peer) = sink
        .join()
        .map_err(|_| anyhow::anyhow!("sink thread panicked"))??;
    assert_eq!(echoed, seen);
    Ok((seen, peer))
}

/// The fast path. On a kernel with flowtables (AL2023: modules nf_flow_table and
/// nf_flow_table_inet) the table holds flowtable `ft` on both NAT interfaces and the `flow add`
/// rules. On a kernel without them (CONFIG_NF_FLOW_TABLE unset, as on the machines this suite
/// runs on now) apply falls back cleanly: one `nat.fastpath` record with status degraded naming
/// the kernel's refusal, the table without the fast path and verified, status healthy, and a
/// second apply finds nothing to change. Either way masquerade works, also for a bulk transfer.
#[test]
fn fast_path_is_used_or_falls_back_cleanly() -> Result<()> {
    let e = env();
    let t = Topology::new("fast")?;
    let nft = e.nft.display().to_string();
    let supported = flowtables_supported(&e, &t.nat)?;
    eprintln!(
        "kernel {}: flowtables {}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")?.trim(),
        if supported {
            "supported"
        } else {
            "not supported"
        }
    );

    let mut args = STD.to_vec();
    args.push("--json");
    let out = e.apply(&t.nat, &args)?;
    ok(&out);
    let v: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["ruleset_verified"], true, "{v}");
    let records: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(r#"clawster_check="nat.fastpath""#))
        .collect();
    assert_eq!(records.len(), 1, "one fast-path record:\n{}", out.stderr);
    let listing = t
        .nat
        .exec_ok(&nft, &["list", "table", "ip", "clawster_nat"])?
        .stdout;
    if supported {
        assert_eq!(v["fast_path"], true, "{v}");
        assert_eq!(
            v["fast_path_devices"],
            serde_json::json!(["in0", NAT_EGRESS])
        );
        assert!(
            records[0].contains(r#"clawster_status="ok""#),
            "{}",
            records[0]
        );
        assert!(listing.contains("flowtable ft"), "{listing}");
        assert_eq!(listing.matches("flow add @ft").count(), 2, "{listing}");
    } else {
        assert_eq!(v["fast_path"], false, "{v}");
        let why = v["fast_path_off"].as_str().unwrap_or_default();
        assert!(
            why.contains("no flowtable support") && why.contains("add flowtable clawster_nat ft"),
            "{v}"
        );
        assert!(
            records[0].contains(r#"clawster_status="degraded""#)
                && records[0].contains("fast path off"),
            "{}",
            records[0]
        );
        assert!(
            !listing.contains("flowtable") && !listing.contains("flow add"),
            "{listing}"
        );
        // The dry run that asked the kernel left nothing behind.
        let tables = t.nat.exec_ok(&nft, &["list", "tables"])?.stdout;
        assert_eq!(tables.trim(), "table ip clawster_nat", "{tables}");
    }

    // Masquerade works, for a handshake and for a bulk transfer (offloaded when supported).
    let https = t.outside.tcp_server("0.0.0.0:443")?;
    assert!(t.private.tcp_probe(&format!("{OUTSIDE_ADDR}:443"), PROBE)?);
    assert_eq!(https.peers(), [NAT_OUTSIDE_ADDR]);
    drop(https);
    let mut bulk = STD.to_vec();
    bulk.extend(["--allow-ports", "443,5201"]);
    ok(&e.apply(&t.nat, &bulk)?);
    let (bytes, peer) = bulk_through_nat(&t, 5201, 8 << 20)?;
    assert_eq!((bytes, peer.as_str()), (8 << 20, NAT_OUTSIDE_ADDR));

    // Converged: a second apply changes nothing, status agrees and stays healthy.
    let out = e.apply(&t.nat, &bulk)?;
    ok(&out);
    assert!(!out.stderr.contains("replacing table"), "{}", out.stderr);
    let (out, s) = e.status(&t.nat, &bulk)?;
    ok(&out);
    assert_eq!(s["healthy"], true, "{s}");
    assert_eq!(s["fast_path"], supported, "{s}");

    // Turned off on purpose: no flowtable, said so, NAT unaffected.
    let mut off = bulk.clone();
    off.push("--no-fast-path");
    off.push("--json");
    let out = e.apply(&t.nat, &off)?;
    ok(&out);
    let v: Value = serde_json::from_str(&out.stdout)?;
    assert_eq!(v["fast_path_off"], "disabled by --no-fast-path", "{v}");
    let listing = t
        .nat
        .exec_ok(&nft, &["list", "table", "ip", "clawster_nat"])?
        .stdout;
    assert!(!listing.contains("flowtable"), "{listing}");
    let (bytes, _) = bulk_through_nat(&t, 5201, 1 << 20)?;
    assert_eq!(bytes, 1 << 20);
    Ok(())
}
