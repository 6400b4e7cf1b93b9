//! End to end: the package maintenance window on a booted systemd host (real socket activation,
//! a real `openclaw` user in the `clawster-window` group and an `intruder` outside it, the real
//! `apt-get` installing the real Debian package `hello` from a local repository built from
//! `apt-get download` output).
//!
//! One host, one timeline (so the suite boots once): refusals before any window; a 20 s window
//! for `hello`: every hostile name, a package not on the list and the intruder are refused and
//! the package manager never runs; the bot installs `hello` (`dpkg -s` shows it); the window
//! locks itself with no request (the journal's expiry record within 1 s); a second window
//! survives SIGKILL of the service and still locks on time; a package that does not exist fails
//! with 1; `close` locks at once; a state from another boot is locked; a host restart finds the
//! window locked. Then a short benchmark: bare `apt-get install hello` vs the same through the
//! window. The journal's window records are printed (the window's whole life). Then the shared
//! stack's SSM documents, rendered by the release `clawsterctl`, run on the host as SSM Agent
//! runs them (the script under `sh`, the parameters as `SSM_*` variables): window open, a bot
//! install, window status (text and JSON), health and window-logs. Their output is what the
//! scripted SSM tests of `clawsterctl` answer with (ctl/tests/fixtures/ssm/): the run checks the
//! committed files still have the shape the agent prints, and `CLAWSTER_UPDATE_FIXTURES=1`
//! rewrites them from this run.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clawster_e2e::bins::{ctl_binary, dist_dir, host_binary};
use clawster_e2e::prereq::{require_root, require_tools};
use clawster_e2e::process::{run_ok, wait_for, Output};
use clawster_e2e::testhost::{Layout, TestHost};
use serde_json::Value;

const REPO: &str = "/srv/clawster-repo";

/// `hello`'s .deb and a Packages index, built once into the cache from `apt-get download`.
fn local_repo() -> Result<PathBuf> {
    let dir = clawster_e2e::cache_dir().join("window-repo-v1");
    if dir.join("Packages").is_file() {
        return Ok(dir);
    }
    require_tools("window", &["apt-get", "dpkg-scanpackages"])?;
    let parent = dir.parent().unwrap();
    fs::create_dir_all(parent)?;
    let lock = fs::File::create(parent.join(".window-repo.lock"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    if dir.join("Packages").is_file() {
        return Ok(dir);
    }
    let tmp = parent.join(format!(".window-repo-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let long = Duration::from_secs(300);
    let dl = run_ok(
        Command::new("apt-get")
            .args(["download", "-q", "-o", "APT::Sandbox::User=root", "hello"])
            .current_dir(&tmp),
        long,
    );
    if dl.is_err() {
        run_ok(Command::new("apt-get").args(["update", "-q"]), long)?;
        run_ok(
            Command::new("apt-get")
                .args(["download", "-q", "-o", "APT::Sandbox::User=root", "hello"])
                .current_dir(&tmp),
            long,
        )?;
    }
    let idx = run_ok(
        Command::new("dpkg-scanpackages")
            .args(["--multiversion", "."])
            .current_dir(&tmp),
        long,
    )?;
    if !idx.stdout.contains("Package: hello") {
        bail!("dpkg-scanpackages found no hello: {idx:?}");
    }
    fs::write(tmp.join("Packages"), idx.stdout)?;
    fs::rename(&tmp, &dir)?;
    Ok(dir)
}

fn setup(host: &TestHost, agent: &Path, repo: &Path) -> Result<()> {
    host.copy_in(agent, "/usr/local/bin/clawster-agent", 0o755)?;
    let units = clawster_e2e::workspace_root().join("systemd");
    for u in ["clawster-window.socket", "clawster-window.service"] {
        host.copy_in(&units.join(u), &format!("/etc/systemd/system/{u}"), 0o644)?;
    }
    host.write_file(
        "/etc/sysusers.d/clawster-window.conf",
        b"g clawster-window -\n",
        0o644,
    )?;
    host.exec_ok(&["systemd-sysusers"])?;
    host.exec_ok(&[
        "useradd",
        "--system",
        "--create-home",
        "--home-dir",
        "/var/lib/openclaw",
        "--shell",
        "/usr/sbin/nologin",
        "openclaw",
    ])?;
    host.exec_ok(&[
        "useradd",
        "--system",
        "--shell",
        "/usr/sbin/nologin",
        "intruder",
    ])?;
    host.exec_ok(&["gpasswd", "-a", "openclaw", "clawster-window"])?;
    for e in fs::read_dir(repo)? {
        let p = e?.path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        host.copy_in(&p, &format!("{REPO}/{name}"), 0o644)?;
    }
    // The only repository: the local one (the host has no network).
    host.write_file(
        "/etc/apt/sources.list",
        format!("deb [trusted=yes] file:{REPO} ./\n").as_bytes(),
        0o644,
    )?;
    host.exec_ok(&["sh", "-c", "rm -f /etc/apt/sources.list.d/*"])?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;
    host.exec_ok(&["systemctl", "enable", "--now", "clawster-window.socket"])?;
    Ok(())
}

fn as_user(host: &TestHost, user: &str, args: &[&str]) -> Result<Output> {
    let mut argv = vec!["runuser", "-u", user, "--", "clawster-agent", "window"];
    argv.extend_from_slice(args);
    host.exec(&argv)
}

fn bot_install(host: &TestHost, pkg: &str) -> Result<Output> {
    as_user(host, "openclaw", &["install", pkg])
}

fn window_records(host: &TestHost) -> Result<Vec<Value>> {
    Ok(host
        .journal_json(&["-t", "clawster-agent"])?
        .into_iter()
        .filter(|r| {
            r["CLAWSTER_CHECK"]
                .as_str()
                .is_some_and(|c| c.starts_with("window."))
        })
        .collect())
}

fn field<'a>(r: &'a Value, k: &str) -> &'a str {
    r[k].as_str().unwrap_or("")
}

fn main_pid(host: &TestHost) -> Result<String> {
    Ok(host
        .exec_ok(&[
            "systemctl",
            "show",
            "-p",
            "MainPID",
            "--value",
            "clawster-window.service",
        ])?
        .trim()
        .to_string())
}

/// Waits for the expiry record of window `id` (no request meanwhile) and returns its latency as
/// the service measured it (CLOCK_BOOTTIME) and as the journal's own monotonic stamps show it
/// (open record + TTL vs expiry record), in ms.
fn expiry_latency(host: &TestHost, id: &str, ttl: Duration) -> Result<(u64, i64)> {
    let rec = host.wait_journal(
        &["-t", "clawster-agent"],
        ttl + Duration::from_secs(30),
        |r| field(r, "CLAWSTER_CHECK") == "window.expire" && field(r, "WINDOW_ID") == id,
    )?;
    let open = window_records(host)?
        .into_iter()
        .find(|r| field(r, "CLAWSTER_CHECK") == "window.open" && field(r, "WINDOW_ID") == id)
        .context("no open record")?;
    let mono = |r: &Value| -> i64 { field(r, "__MONOTONIC_TIMESTAMP").parse().unwrap_or(0) };
    let journal_ms = (mono(&rec) - mono(&open)) / 1000 - ttl.as_millis() as i64;
    let service_ms: u64 = field(&rec, "LATENCY_MS").parse()?;
    Ok((service_ms, journal_ms))
}

fn open(host: &TestHost, pkgs: &str, ttl: &str) -> Result<String> {
    let out = host.exec_ok(&[
        "clawster-agent",
        "window",
        "open",
        "--pkgs",
        pkgs,
        "--ttl",
        ttl,
        "--reason",
        "e2e",
    ])?;
    assert!(out.contains("expires: "), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("window "))
        .and_then(|l| l.split_whitespace().next())
        .with_context(|| format!("no window id in {out:?}"))?;
    Ok(id.to_string())
}

fn status(host: &TestHost, user: &str) -> Result<Value> {
    let out = as_user(host, user, &["status", "--json"])?;
    assert!(out.success(), "{out:?}");
    Ok(serde_json::from_str(&out.stdout)?)
}

/// Hostile names (facts/host.md §1), run inside the host by Python so that newlines and other
/// bytes reach argv exactly; returns (name, exit code, stderr) per name.
fn hostile_round(host: &TestHost) -> Result<Vec<(String, i32, String)>> {
    let script = r#"
import json, subprocess
names = ["-oDPkg::Pre-Invoke::=id", "--reinstall", "-c/tmp/evil.conf", "--setopt=tsflags=noscripts",
 "./evil.deb", "/tmp/x.deb", "evil.rpm", "nginx*", "^ngin.*", "fo?", "nginx[a-z]", "nginx=1.22.1-9",
 "hello=2.10-3", "hello/bookworm", "hello:amd64", "bash-", "hello-", "nginx.", "ngin_", "@development-tools",
 "/usr/bin/python3", "perl(Foo::Bar)", "foo > 1", "nginx;id", "$(id)", "hello\n", "hello\ninstall hello",
 "ngínx", "hellо", "a", "x" * 101, "~nhello", "?name(hello)", "hell.", "HELLO", "nginx"]
out = []
for n in names:
    p = subprocess.run(["runuser", "-u", "openclaw", "--", "clawster-agent", "window", "install", n],
                       capture_output=True, text=True)
    out.append([n, p.returncode, p.stderr])
print(json.dumps(out))
"#;
    host.write_file("/root/hostile.py", script.as_bytes(), 0o644)?;
    let out = host.exec_ok(&["python3", "/root/hostile.py"])?;
    let v: Vec<(String, i32, String)> = serde_json::from_str(&out)?;
    Ok(v)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn maintenance_window_on_a_booted_host() -> Result<()> {
    require_root("window e2e")?;
    let agent = host_binary("clawster-agent")?;
    let repo = local_repo()?;
    let suite = Instant::now();
    let mut host = TestHost::boot(Layout::MergedUsr)?;
    setup(&host, &agent, &repo)?;
    assert_eq!(
        host.exec_ok(&["systemctl", "is-active", "clawster-window.socket"])?
            .trim(),
        "active"
    );
    let sock = host.exec_ok(&["stat", "-c", "%a %U %G", "/run/clawster/window.sock"])?;
    assert_eq!(sock.trim(), "660 root clawster-window");
    // Socket-activated: nothing runs until the first connection.
    assert_ne!(
        host.exec(&["systemctl", "is-active", "clawster-window.service"])?
            .stdout
            .trim(),
        "active"
    );

    // 1. Before any window: refused; the connection started the service through the socket.
    let out = bot_install(&host, "hello")?;
    assert_eq!(out.status, 3, "{out:?}");
    assert!(out.stderr.contains("no window is open"), "{out:?}");
    host.wait_journal(&["-t", "clawster-agent"], Duration::from_secs(10), |r| {
        field(r, "CLAWSTER_CHECK") == "window.serve"
            && field(r, "ACTIVATION") == "systemd socket activation"
    })?;
    assert_eq!(
        host.exec_ok(&["systemctl", "is-active", "clawster-window.service"])?
            .trim(),
        "active"
    );
    // Status for anyone; open/close for root only.
    assert_eq!(status(&host, "intruder")?["state"], "locked");
    let out = as_user(
        &host,
        "openclaw",
        &["open", "--pkgs", "hello", "--ttl", "1m"],
    )?;
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stderr.contains("root only"), "{out:?}");
    // Bad operator input is refused before anything is stored.
    for (pkgs, ttl, why) in [
        ("hello;id", "20s", "';'"),
        ("hello", "2s", "too short"),
        ("hello", "5h", "cap"),
        ("hello", "10d", "not a duration"),
        (",", "1m", "names no package"),
    ] {
        let out = host.exec(&[
            "clawster-agent",
            "window",
            "open",
            "--pkgs",
            pkgs,
            "--ttl",
            ttl,
        ])?;
        assert_eq!(out.status, 1, "{pkgs} {ttl}: {out:?}");
        assert!(out.stderr.contains(why), "{pkgs} {ttl}: {out:?}");
    }
    assert_eq!(status(&host, "openclaw")?["state"], "locked");

    // 2. Window A: hello for 20 s.
    let logs = |h: &TestHost| -> Vec<u64> {
        [
            "/var/log/dpkg.log",
            "/var/log/apt/history.log",
            "/var/log/apt/term.log",
        ]
        .iter()
        .map(|p| fs::metadata(h.path(p)).map(|m| m.len()).unwrap_or(0))
        .collect()
    };
    let logs_before = logs(&host);
    let ttl_a = Duration::from_secs(20);
    let a = open(&host, "hello", "20s")?;
    let st = status(&host, "openclaw")?;
    assert_eq!(st["state"], "open", "{st}");
    assert_eq!(st["packages"], serde_json::json!(["hello"]));
    for (name, code, err) in hostile_round(&host)? {
        assert_eq!(code, 3, "{name:?} was not refused: {err}");
        assert!(err.starts_with("refused: "), "{name:?}: {err}");
    }
    let out = as_user(&host, "intruder", &["install", "hello"])?;
    assert_eq!(out.status, 3, "{out:?}");
    assert!(out.stderr.contains("caller not allowed"), "{out:?}");
    // The package manager never ran: no lists fetched, nothing in dpkg's log, no install record.
    let lists = host.exec_ok(&[
        "sh",
        "-c",
        "ls /var/lib/apt/lists | grep -v -e '^partial$' -e '^lock$' | wc -l",
    ])?;
    assert_eq!(lists.trim(), "0", "apt-get update ran");
    assert_eq!(logs(&host), logs_before, "dpkg or apt logged something");
    assert!(host.exec(&["dpkg", "-s", "hello"])?.status != 0);
    assert!(!window_records(&host)?
        .iter()
        .any(|r| field(r, "CLAWSTER_CHECK") == "window.install"));

    let t = Instant::now();
    let out = bot_install(&host, "hello")?;
    let first_install = t.elapsed();
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("Setting up hello"), "{out:?}");
    assert!(out.stderr.contains("installed hello"), "{out:?}");
    let dpkg = host.exec_ok(&["dpkg", "-s", "hello"])?;
    assert!(dpkg.contains("Status: install ok installed"), "{dpkg}");
    let st = status(&host, "openclaw")?;
    assert_eq!(st["installed"][0]["package"], "hello", "{st}");
    assert!(
        st["installed"][0]["changes"][0]
            .as_str()
            .is_some_and(|c| c.starts_with("hello ")),
        "{st}"
    );
    eprintln!("window: first install of hello (apt-get update + install) took {first_install:?}");
    // No request from here on: the window must lock itself.
    let (svc_a, jr_a) = expiry_latency(&host, &a, ttl_a)?;
    eprintln!(
        "window: expiry latency of window A: {svc_a} ms (service), {jr_a} ms (journal stamps)"
    );
    assert!(
        svc_a < 1000 && jr_a < 1000,
        "expiry late: {svc_a} / {jr_a} ms"
    );
    let out = bot_install(&host, "hello")?;
    assert_eq!(out.status, 3, "{out:?}");
    assert!(out.stderr.contains("expired"), "{out:?}");

    // 3. Window B: SIGKILL of the service mid-window.
    let ttl_b = Duration::from_secs(25);
    let b = open(&host, "hello,no-such-pkg", "25s")?;
    let out = bot_install(&host, "no-such-pkg")?;
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr.contains("no package is named exactly"),
        "{out:?}"
    );
    let pid_before = main_pid(&host)?;
    host.exec_ok(&[
        "systemctl",
        "kill",
        "--signal=SIGKILL",
        "clawster-window.service",
    ])?;
    wait_for("the service to die", Duration::from_secs(10), || {
        Ok(main_pid(&host)? != pid_before)
    })?;
    let st = status(&host, "openclaw")?;
    assert_eq!(st["state"], "open", "after SIGKILL: {st}");
    let out = bot_install(&host, "hello")?;
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stderr.contains("already installed"), "{out:?}");
    let pid_after = main_pid(&host)?;
    assert!(pid_after != "0" && pid_after != pid_before);
    let (svc_b, jr_b) = expiry_latency(&host, &b, ttl_b)?;
    eprintln!("window: expiry latency of window B (after SIGKILL): {svc_b} ms (service), {jr_b} ms (journal)");
    assert!(
        svc_b < 1000 && jr_b < 1000,
        "expiry late: {svc_b} / {jr_b} ms"
    );

    // 4. close locks at once; idempotent.
    open(&host, "hello", "10m")?;
    assert_eq!(status(&host, "openclaw")?["state"], "open");
    let out = host.exec_ok(&["clawster-agent", "window", "close"])?;
    assert!(out.contains("locked"), "{out}");
    let out = bot_install(&host, "hello")?;
    assert_eq!(out.status, 3, "{out:?}");
    assert!(out.stderr.contains("closed by the operator"), "{out:?}");
    let out = host.exec_ok(&["clawster-agent", "window", "close"])?;
    assert!(out.contains("already locked"), "{out}");

    // 5. A state carried over from another boot is locked.
    open(&host, "hello", "10m")?;
    // (/run is the container's own tmpfs: edit it from inside, keeping owner and mode.)
    host.exec_ok(&[
        "python3",
        "-c",
        "import json; p='/run/clawster/window.json'; v=json.load(open(p)); \
         v['boot_id']='00000000-0000-0000-0000-000000000000'; open(p,'w').write(json.dumps(v))",
    ])?;
    let out = bot_install(&host, "hello")?;
    assert_eq!(out.status, 3, "{out:?}");
    assert!(out.stderr.contains("before the last reboot"), "{out:?}");

    // 6. Benchmark: bare apt-get vs the window, same package, same options, lists present.
    open(&host, "hello", "10m")?;
    let (mut bare, mut win) = (Vec::new(), Vec::new());
    let rounds = std::env::var("WINDOW_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for _ in 0..rounds {
        host.exec_ok(&["apt-get", "purge", "-y", "-q", "hello"])?;
        let t = Instant::now();
        host.exec_ok(&[
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "--",
            "hello",
        ])?;
        bare.push(t.elapsed().as_secs_f64() * 1000.0);
        host.exec_ok(&["apt-get", "purge", "-y", "-q", "hello"])?;
        let t = Instant::now();
        let out = bot_install(&host, "hello")?;
        win.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(out.status, 0, "{out:?}");
    }
    let (mb, mw) = (median(bare.clone()), median(win.clone()));
    eprintln!(
        "window bench: install hello, {rounds} rounds: bare apt-get median {mb:.0} ms {bare:.0?}; \
         through the window median {mw:.0} ms {win:.0?}; overhead {:.0} ms, ratio {:.2}",
        mw - mb,
        mw / mb
    );

    // 7. The window's whole life in the journal.
    let recs = window_records(&host)?;
    for check in [
        "window.serve",
        "window.open",
        "window.request",
        "window.install",
        "window.expire",
        "window.close",
    ] {
        assert!(
            recs.iter().any(|r| field(r, "CLAWSTER_CHECK") == check),
            "no {check} record"
        );
    }
    // `open` and `close` wake the service with a well-formed request (never a refusal).
    let bad: Vec<&Value> = recs
        .iter()
        .filter(|r| field(r, "CALLER_UID") == "0" && field(r, "REASON").starts_with("malformed"))
        .collect();
    assert!(bad.is_empty(), "malformed requests: {bad:?}");
    let refused = recs
        .iter()
        .find(|r| field(r, "DECISION") == "refused" && field(r, "CALLER_UID") != "0")
        .context("no refused request by the bot")?;
    for k in [
        "PACKAGE",
        "CALLER_PID",
        "CALLER_COMMAND",
        "REASON",
        "_UID",
        "_SYSTEMD_UNIT",
    ] {
        assert!(
            refused.get(k).is_some(),
            "refused record lacks {k}: {refused}"
        );
    }
    eprintln!("window: journal records of window A (journalctl -o json, fields trimmed):");
    let keep = [
        "__REALTIME_TIMESTAMP",
        "_SYSTEMD_UNIT",
        "_UID",
        "_PID",
        "PRIORITY",
        "CLAWSTER_CHECK",
        "CLAWSTER_STATUS",
        "WINDOW_ID",
        "PACKAGES",
        "TTL_SECS",
        "EXPIRES",
        "PACKAGE",
        "CALLER_UID",
        "CALLER_PID",
        "CALLER_COMMAND",
        "DECISION",
        "REASON",
        "EXIT_STATUS",
        "DURATION_MS",
        "CHANGES",
        "LATENCY_MS",
        "ACTIVATION",
        "MESSAGE",
    ];
    let stamp = |r: &Value| -> u64 { field(r, "__REALTIME_TIMESTAMP").parse().unwrap_or(0) };
    let of_a = |check: &str| {
        recs.iter()
            .find(|r| field(r, "CLAWSTER_CHECK") == check && field(r, "WINDOW_ID") == a)
            .map(stamp)
            .unwrap_or(0)
    };
    let (from, to) = (of_a("window.open"), of_a("window.expire"));
    let mut refusals = 0;
    for r in recs.iter().filter(|r| {
        let t = stamp(r);
        let refused = field(r, "DECISION") == "refused";
        if refused && from <= t && t <= to {
            refusals += 1;
        }
        (t < from && field(r, "CLAWSTER_CHECK") == "window.serve")
            || (from <= t && t <= to && (!refused || refusals <= 3))
    }) {
        let mut o = serde_json::Map::new();
        for k in keep {
            if let Some(v) = r.get(k) {
                if v.as_str() != Some("") {
                    o.insert(k.into(), v.clone());
                }
            }
        }
        eprintln!("{}", Value::Object(o));
    }

    // 8. The SSM documents `clawsterctl window|health|logs` send, run as SSM Agent runs them.
    ssm_documents(&host)?;

    // 9. A restart of the host finds the window locked (it was open for 10 more minutes).
    open(&host, "hello", "10m")?;
    assert_eq!(status(&host, "openclaw")?["state"], "open");
    host.reboot()?;
    let st = status(&host, "openclaw")?;
    assert_eq!(st["state"], "locked", "after reboot: {st}");
    let out = bot_install(&host, "hello")?;
    assert_eq!(out.status, 3, "{out:?}");
    eprintln!("window: suite took {:?}", suite.elapsed());
    host.shutdown()
}

/// The scripts of the shared stack's two SSM documents (window, operations), rendered by the
/// release `clawsterctl`.
fn document_scripts() -> Result<(String, String)> {
    let out = run_ok(
        Command::new(ctl_binary()?)
            .args([
                "template",
                "shared",
                "--region",
                "us-east-1",
                "--log-target",
                "stderr",
            ])
            .arg("--artifacts")
            .arg(dist_dir()),
        Duration::from_secs(60),
    )?;
    let t: Value = serde_json::from_str(&out.stdout).context("clawsterctl template shared")?;
    let script = |id: &str| -> Result<String> {
        let lines = t["Resources"][id]["Properties"]["Content"]["mainSteps"][0]["inputs"]
            ["runCommand"]
            .as_array()
            .with_context(|| format!("{id} has no runCommand"))?;
        let mut s = String::new();
        for l in lines {
            s.push_str(l.as_str().context("runCommand line")?);
            s.push('\n');
        }
        Ok(s)
    };
    Ok((script("WindowDocument")?, script("OpsDocument")?))
}

/// Runs a document's script on the host the way SSM Agent does: `sh` on the script file, every
/// parameter of the document in the environment as `SSM_<name>` (defaults included).
fn run_document(host: &TestHost, script: &str, params: &[(&str, &str)]) -> Result<Output> {
    host.write_file("/root/ssm-document.sh", script.as_bytes(), 0o700)?;
    let vars: Vec<String> = params.iter().map(|(k, v)| format!("SSM_{k}={v}")).collect();
    let mut argv = vec!["env"];
    argv.extend(vars.iter().map(String::as_str));
    argv.extend(["sh", "/root/ssm-document.sh"]);
    host.exec(&argv)
}

/// Where the scripted SSM tests of `clawsterctl` keep host output.
fn fixtures_dir() -> PathBuf {
    clawster_e2e::workspace_root().join("ctl/tests/fixtures/ssm")
}

/// The shape of a JSON value: its object keys (recursively), arrays by their first element.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => Value::String(String::new()),
        Value::Number(_) => Value::from(0),
        Value::Bool(_) => Value::Bool(false),
        Value::Null => Value::Null,
    }
}

/// The shape of text output: each line's label (what precedes its first `:` or first space).
fn text_shape(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| {
            let end = l.find([':', ' ']).unwrap_or(l.len());
            l[..end].to_string()
        })
        .collect()
}

/// Compares live host output with the committed fixture `name` (or rewrites it with
/// `CLAWSTER_UPDATE_FIXTURES=1`). `same` decides whether the two have the same shape.
fn check_fixture(name: &str, live: &str, same: impl Fn(&str, &str) -> Result<bool>) -> Result<()> {
    let path = fixtures_dir().join(name);
    if std::env::var_os("CLAWSTER_UPDATE_FIXTURES").is_some_and(|v| v == "1") {
        fs::write(&path, live).with_context(|| format!("write {}", path.display()))?;
        eprintln!("window: rewrote {}", path.display());
        return Ok(());
    }
    let committed =
        fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    if !same(&committed, live)? {
        bail!(
            "{} no longer has the shape of what the agent prints on a host; rerun this suite \
             with CLAWSTER_UPDATE_FIXTURES=1 and review the scripted SSM tests of clawsterctl.\n\
             committed:\n{committed}\nlive:\n{live}",
            path.display()
        );
    }
    Ok(())
}

fn same_json(a: &str, b: &str) -> Result<bool> {
    let (a, b): (Value, Value) = (serde_json::from_str(a)?, serde_json::from_str(b)?);
    Ok(shape(&a) == shape(&b))
}

fn same_text(a: &str, b: &str) -> Result<bool> {
    Ok(text_shape(a) == text_shape(b))
}

/// The health report's shape and the names of its checks.
fn same_health(a: &str, b: &str) -> Result<bool> {
    let checks = |s: &str| -> Result<Vec<String>> {
        let v: Value = serde_json::from_str(s)?;
        Ok(v["checks"]
            .as_array()
            .context("no checks")?
            .iter()
            .map(|c| field(c, "check").to_string())
            .collect())
    };
    Ok(same_json(a, b)? && checks(a)? == checks(b)?)
}

/// Journal lines: every field the host printed is one the committed file has.
fn same_journal(committed: &str, live: &str) -> Result<bool> {
    let fields = |s: &str| -> Result<std::collections::BTreeSet<String>> {
        let mut f = std::collections::BTreeSet::new();
        for l in s.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(l).with_context(|| format!("journal line {l}"))?;
            f.extend(v.as_object().context("journal line")?.keys().cloned());
        }
        Ok(f)
    };
    Ok(fields(live)?.is_subset(&fields(committed)?))
}

/// The window and operations documents on the host: open (hello and htop for 10 minutes), a bot
/// install through the window, status as text and JSON, health, the window's journal records.
fn ssm_documents(host: &TestHost) -> Result<()> {
    let (window, ops) = document_scripts()?;
    host.exec_ok(&["clawster-agent", "window", "close"])?;
    host.exec_ok(&["apt-get", "purge", "-y", "-q", "hello"])?;
    // Every parameter of the window document, as SSM passes them (defaults included).
    let open_params = [
        ("action", "open"),
        ("pkgs", "hello,htop"),
        ("ttl", "10m"),
        ("reason", "ticket 42"),
        ("format", "text"),
    ];
    let status_params = |format| {
        [
            ("action", "status"),
            ("pkgs", ""),
            ("ttl", ""),
            ("reason", ""),
            ("format", format),
        ]
    };
    let open = run_document(host, &window, &open_params)?;
    assert_eq!(open.status, 0, "{open:?}");
    assert!(open.stdout.contains("packages: hello, htop"), "{open:?}");
    let out = bot_install(host, "hello")?;
    assert_eq!(out.status, 0, "{out:?}");
    let status = run_document(host, &window, &status_params("text"))?;
    assert_eq!(status.status, 0, "{status:?}");
    let status_json = run_document(host, &window, &status_params("json"))?;
    assert_eq!(status_json.status, 0, "{status_json:?}");
    let st: Value = serde_json::from_str(&status_json.stdout)?;
    assert_eq!(st["state"], "open", "{st}");
    assert_eq!(st["operator_reason"], "ticket 42", "{st}");
    assert_eq!(st["installed"][0]["package"], "hello", "{st}");
    // A window host that was never bootstrapped: no Sysbox, no Docker guard. Degraded, exit 1.
    let health = run_document(host, &ops, &[("action", "health"), ("since", "1h")])?;
    assert_eq!(health.status, 1, "{health:?}");
    let h: Value = serde_json::from_str(&health.stdout)?;
    assert_eq!(h["status"], "degraded", "{h}");
    let logs = run_document(host, &ops, &[("action", "window-logs"), ("since", "1h")])?;
    assert_eq!(logs.status, 0, "{logs:?}");
    let lines: Vec<Value> = logs
        .stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(!lines.is_empty() && lines.len() <= 30, "{}", lines.len());
    // Newest first: the bot's install of hello comes before (above) the open that allowed it.
    let pos = |check: &str| {
        lines
            .iter()
            .position(|r| field(r, "CLAWSTER_CHECK") == check)
    };
    assert!(
        pos("window.install") < pos("window.open"),
        "{}",
        logs.stdout
    );
    assert!(
        lines
            .iter()
            .all(|r| field(r, "CLAWSTER_CHECK").starts_with("window.")),
        "{}",
        logs.stdout
    );
    // Hostile values never reach the agent: the script refuses an unknown action, and SSM's
    // allowedPattern (tested in ctl/tests/ssm_documents.rs) refuses the rest before the host.
    let bad = run_document(host, &window, &[("action", "open;id")])?;
    assert_eq!(bad.status, 2, "{bad:?}");
    eprintln!("window: the SSM documents on the host:");
    for (name, out) in [
        ("window open", &open),
        ("window status", &status),
        ("window status --json", &status_json),
        ("health", &health),
    ] {
        eprintln!(
            "--- {name} (exit {})\n{}{}",
            out.status, out.stdout, out.stderr
        );
    }
    check_fixture("window-open.txt", &open.stdout, same_text)?;
    check_fixture("window-status.txt", &status.stdout, same_text)?;
    check_fixture("window-status.json", &status_json.stdout, same_json)?;
    check_fixture("health-degraded.json", &health.stdout, same_health)?;
    check_fixture("window-logs.jsonl", &logs.stdout, same_journal)?;
    host.exec_ok(&["clawster-agent", "window", "close"])?;
    Ok(())
}
