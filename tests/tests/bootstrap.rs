//! End to end: `clawster-agent bootstrap` on a booted systemd host with a real dockerd (both /usr
//! layouts), with a test-built Sysbox-like package whose units start real small programs.
//!
//! Checks: files, owners and modes; the /lib layout untouched; units enabled and active (asked
//! over D-Bus with busctl); daemon.json merged with the old keys kept and `docker info` listing
//! sysbox-runc after the SIGHUP (dockerd not restarted); ecs.config; the user; journal records with
//! structured fields; `health --json`; a second run reports unchanged and does no daemon-reload,
//! a drop-in systemd has not reloaded gets its reload on a re-run; a malformed daemon.json is
//! left untouched and fails clearly; SIGKILL at several points, then a re-run converges.
#![allow(clippy::unwrap_used)]

#[path = "../../agent/tests/common/mod.rs"]
mod pkg;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clawster_e2e::bins::host_binary;
use clawster_e2e::prereq::require_root;
use clawster_e2e::process::wait_for;
use clawster_e2e::testhost::{BootOptions, Layout, TestHost};

fn busctl_state(host: &TestHost, unit: &str) -> Result<String> {
    let path = format!(
        "/org/freedesktop/systemd1/unit/{}",
        unit.replace('-', "_2d").replace('.', "_2e")
    );
    let out = host.exec_ok(&[
        "busctl",
        "--system",
        "get-property",
        "org.freedesktop.systemd1",
        &path,
        "org.freedesktop.systemd1.Unit",
        "ActiveState",
    ])?;
    // `s "active"`
    Ok(out
        .trim()
        .trim_start_matches("s ")
        .trim_matches('"')
        .to_string())
}

fn mode_owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn proc_sys_writable(host: &TestHost) -> Result<bool> {
    let out = host.exec(&[
        "sh",
        "-c",
        "cat /proc/sys/kernel/pid_max > /proc/sys/kernel/pid_max",
    ])?;
    Ok(out.success())
}

fn e2e(layout: Layout) -> Result<()> {
    require_root("bootstrap e2e")?;
    let agent = host_binary("clawster-agent")?;
    // Bootstrap sets kernel parameters (raise-only): give the host a writable /proc/sys so the
    // live sysctl step and its health check are exercised for real.
    let host = TestHost::boot_with(BootOptions {
        writable_proc_sys: true,
        ..BootOptions::new(layout)
    })?;
    assert!(
        proc_sys_writable(&host)?,
        "the test host's /proc/sys must be writable for the sysctl checks"
    );
    host.copy_in(&agent, "/usr/local/bin/clawster-agent", 0o755)?;
    let root = host.root_dir().to_path_buf();
    let lib_before = std::fs::symlink_metadata(root.join("lib"))?
        .file_type()
        .is_symlink();
    assert_eq!(lib_before, layout == Layout::MergedUsr);

    // Docker is up before we start, as on an ECS host where UserData ran late.
    wait_for("docker.service active", Duration::from_secs(60), || {
        Ok(busctl_state(&host, "docker.service")? == "active")
    })?;
    let docker_pid = host.exec_ok(&[
        "systemctl",
        "show",
        "-p",
        "MainPID",
        "--value",
        "docker.service",
    ])?;
    host.write_file(
        "/etc/docker/daemon.json",
        br#"{"log-level":"warn","features":{"buildkit":true}}"#,
        0o644,
    )?;

    let bytes = pkg::deb(&pkg::sysbox_payload(0), "xz");
    let sha = pkg::sha256_hex(&bytes);
    host.write_file("/root/sysbox-test.deb", &bytes, 0o600)?;
    let args = [
        "clawster-agent",
        "bootstrap",
        "--sysbox-deb",
        "/root/sysbox-test.deb",
        "--sysbox-sha256",
        &sha,
        "--cluster",
        "e2e-bots",
    ];
    let t = Instant::now();
    let out = host.exec(&args)?;
    eprintln!(
        "bootstrap ({:?}, {:?}):\n{}{}",
        layout,
        t.elapsed(),
        out.stdout,
        out.stderr
    );
    assert!(out.success(), "bootstrap failed: {out:?}");

    // Files, owners, modes.
    for b in ["sysbox-runc", "sysbox-mgr", "sysbox-fs"] {
        assert_eq!(
            mode_owner(&root.join("usr/bin").join(b)),
            (0o755, 0, 0),
            "{b}"
        );
    }
    for u in ["sysbox.service", "sysbox-mgr.service", "sysbox-fs.service"] {
        assert_eq!(
            mode_owner(&root.join("etc/systemd/system").join(u)),
            (0o644, 0, 0),
            "{u}"
        );
    }
    assert_eq!(
        std::fs::symlink_metadata(root.join("lib"))?
            .file_type()
            .is_symlink(),
        lib_before,
        "/lib layout changed"
    );
    assert!(
        root.join("usr/lib/systemd/system/docker.service").exists()
            || root.join("lib/systemd/system/docker.service").exists()
    );
    assert!(host
        .exec_ok(&["getent", "passwd", "sysbox"])?
        .contains("nologin"));
    assert!(root.join("var/lib/sysboxfs").is_dir());
    let ecs = std::fs::read_to_string(root.join("etc/ecs/ecs.config"))?;
    assert!(
        ecs.contains("ECS_CLUSTER=e2e-bots\n") && ecs.contains("ECS_DISABLE_PRIVILEGED=true\n"),
        "{ecs}"
    );

    // Sysctls: persisted (only keys this kernel has) and in force, raised, never lowered.
    let conf_path = root.join("etc/sysctl.d/99-sysbox-sysctl.conf");
    assert_eq!(mode_owner(&conf_path), (0o644, 0, 0));
    let conf = std::fs::read_to_string(&conf_path)?;
    let has_userns_clone = root
        .join("proc/sys/kernel/unprivileged_userns_clone")
        .exists()
        || Path::new("/proc/sys/kernel/unprivileged_userns_clone").exists();
    assert_eq!(
        conf.contains("kernel.unprivileged_userns_clone"),
        has_userns_clone,
        "{conf}"
    );
    for (key, min) in [
        ("fs.inotify.max_user_watches", 1_048_576u64),
        ("fs.inotify.max_queued_events", 1_048_576),
        ("kernel.keys.maxkeys", 20_000),
        ("kernel.pid_max", 4_194_304),
        ("user.max_user_namespaces", 10_000),
    ] {
        let live: u64 = host.exec_ok(&["sysctl", "-n", key])?.trim().parse()?;
        assert!(live >= min, "{key} = {live}, want >= {min}");
        if key != "user.max_user_namespaces" {
            assert!(conf.contains(key), "{key} not persisted: {conf}");
        }
    }

    // Units enabled and active, asked over D-Bus.
    for u in [
        "sysbox.service",
        "sysbox-mgr.service",
        "sysbox-fs.service",
        // The bot's Docker socket (docker guard), listening from bootstrap on.
        "clawster-docker-guard.socket",
    ] {
        wait_for(&format!("{u} active"), Duration::from_secs(60), || {
            Ok(busctl_state(&host, u)? == "active")
        })?;
    }
    assert_eq!(
        host.exec_ok(&["systemctl", "is-enabled", "sysbox.service"])?
            .trim(),
        "enabled"
    );
    // The drop-in: docker.service wants sysbox.service.
    let wants = host.exec_ok(&[
        "systemctl",
        "show",
        "-p",
        "Wants",
        "--value",
        "docker.service",
    ])?;
    assert!(wants.contains("sysbox.service"), "{wants}");

    // daemon.json merged; dockerd reloaded by SIGHUP, not restarted.
    let dj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("etc/docker/daemon.json"))?)?;
    assert_eq!(dj["log-level"], "warn");
    assert_eq!(dj["features"]["buildkit"], true);
    assert_eq!(
        dj["runtimes"]["sysbox-runc"]["path"],
        "/usr/bin/sysbox-runc"
    );
    assert!(dj.get("default-runtime").is_none());
    wait_for(
        "docker info lists sysbox-runc",
        Duration::from_secs(30),
        || {
            Ok(host
                .exec_ok(&["docker", "info", "--format", "{{json .Runtimes}}"])?
                .contains("sysbox-runc"))
        },
    )?;
    assert_eq!(
        host.exec_ok(&[
            "systemctl",
            "show",
            "-p",
            "MainPID",
            "--value",
            "docker.service"
        ])?,
        docker_pid,
        "dockerd was restarted"
    );

    // Journal records with structured fields.
    let recs = host.journal_json(&["-t", "clawster-agent"])?;
    let find = |check: &str| recs.iter().find(|r| r["CLAWSTER_CHECK"] == check).cloned();
    for (check, status) in [
        ("sysbox.binaries", "changed"),
        ("docker.daemon_json", "changed"),
        ("docker.reload", "changed"),
        ("sysbox.units", "changed"),
        ("bootstrap", "changed"),
    ] {
        let r = find(check).unwrap_or_else(|| panic!("no journal record {check}: {recs:?}"));
        assert_eq!(r["CLAWSTER_STATUS"], status, "{r}");
    }

    // Health over D-Bus on the live host.
    let h = host.exec(&["clawster-agent", "health", "--json"])?;
    let hv: serde_json::Value = serde_json::from_str(&h.stdout)?;
    for c in hv["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c}");
    }
    assert_eq!(h.status, 0, "{h:?}");

    // Second run: nothing changes, and it says so.
    let out2 = host.exec(&args)?;
    assert!(out2.success(), "{out2:?}");
    assert!(out2.stdout.contains("nothing changed"), "{}", out2.stdout);
    for line in out2.stdout.lines() {
        let st = line.split_whitespace().nth(1).unwrap_or("");
        assert!(st == "ok" || st == "skipped", "second run: {line}");
    }

    // ... and talks to systemd without a daemon-reload: it asked systemd whether it already sees
    // every file (the record says so).
    assert!(
        out2.stdout.contains("no Reload needed"),
        "second run reloaded: {}",
        out2.stdout
    );

    // A killed run that rewrote the Docker drop-in but never reloaded: systemd has loaded another
    // text than the one on disk, which is what we ship. Nothing is written on the re-run, yet
    // systemd's NeedDaemonReload makes it reload once, after which systemd is current again.
    let dropin = "/etc/systemd/system/docker.service.d/10-clawster-sysbox.conf";
    let shipped = std::fs::read(host.path(dropin))?;
    host.write_file(dropin, b"[Unit]\nWants=sysbox.service\n", 0o644)?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;
    host.write_file(dropin, &shipped, 0o644)?;
    let stale = host.exec(&args)?;
    assert!(stale.success(), "{stale:?}");
    assert!(
        stale
            .stdout
            .contains("docker.service changed on disk since it was loaded"),
        "a stale docker.service was not reloaded: {}",
        stale.stdout
    );
    let again = host.exec(&args)?;
    assert!(
        again.stdout.contains("no Reload needed"),
        "{}",
        again.stdout
    );

    // A malformed daemon.json is left byte for byte and fails clearly.
    let bad = b"{\"log-level\": \"warn\",, }";
    host.write_file("/etc/docker/daemon.json", bad, 0o644)?;
    let out3 = host.exec(&args)?;
    assert_eq!(out3.status, 1, "{out3:?}");
    assert!(
        out3.stderr.contains("/etc/docker/daemon.json") && out3.stderr.contains("not valid JSON"),
        "{}",
        out3.stderr
    );
    assert_eq!(std::fs::read(root.join("etc/docker/daemon.json"))?, bad);
    host.write_file("/etc/docker/daemon.json", dj.to_string().as_bytes(), 0o644)?;

    // SIGKILL at several points of a run that installs a new (bigger) package, then converge.
    let big = pkg::deb(&pkg::sysbox_payload(4 << 20), "xz");
    let big_sha = pkg::sha256_hex(&big);
    host.write_file("/root/sysbox-big.deb", &big, 0o600)?;
    let big_args = [
        "clawster-agent",
        "bootstrap",
        "--sysbox-deb",
        "/root/sysbox-big.deb",
        "--sysbox-sha256",
        &big_sha,
        "--cluster",
        "e2e-bots",
    ];
    for delay in ["0.02", "0.1", "0.3", "0.6"] {
        let mut argv = vec!["timeout", "-s", "KILL", delay];
        argv.extend_from_slice(&big_args);
        let o = host.exec(&argv)?;
        eprintln!("killed after {delay}s: exit {}", o.status);
    }
    let out4 = host.exec(&big_args)?;
    assert!(out4.success(), "re-run after kills: {out4:?}");
    assert_eq!(
        std::fs::read(root.join("usr/bin/sysbox-runc"))?,
        pkg::fake_binary("sysbox-runc", 4 << 20)
    );
    let tmp_left = host.exec_ok(&[
        "find",
        "/usr/bin",
        "/etc",
        "/var/lib/clawster",
        "-name",
        "*clawster-tmp*",
    ])?;
    assert!(
        tmp_left.trim().is_empty(),
        "temporary files left: {tmp_left}"
    );
    assert_eq!(busctl_state(&host, "sysbox.service")?, "active");
    let out5 = host.exec(&big_args)?;
    assert!(out5.stdout.contains("nothing changed"), "{}", out5.stdout);
    host.shutdown()
}

#[test]
fn bootstrap_on_merged_usr_host() -> Result<()> {
    e2e(Layout::MergedUsr)
}

#[test]
fn bootstrap_on_split_usr_host() -> Result<()> {
    e2e(Layout::SplitUsr)
}

// ---------------------------------------------------------------------------------------------
// Benchmark (not a timed test): `agent/bench/run` runs it with `--ignored --nocapture`.

const MEASURE_PY: &str = r#"
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
dt = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if r.returncode != 0:
    sys.stderr.write(r.stderr.decode(errors="replace"))
print(f"{dt:.4f} {rss} {r.returncode}")
"#;

const SEED_SHELL: &str = r#"set -eu
cd "$(mktemp -d)"
ar x "$1"
tar xf data.tar.* -C / ${KEEP_DIR_SYMLINKS:-}
cp /lib/systemd/system/sysbox*.service /etc/systemd/system/
useradd -r -s /bin/false sysbox || true
mkdir -p /var/lib/sysboxfs
cat > /etc/sysctl.d/99-sysbox.conf <<'SYSCTL'
fs.inotify.max_queued_events=1048576
fs.inotify.max_user_watches=1048576
fs.inotify.max_user_instances=1048576
kernel.keys.maxkeys=20000
kernel.keys.maxbytes=400000
SYSCTL
sysctl --system >/dev/null 2>&1 || true
mkdir -p /etc/docker
python3 -c "
import json, os
p = '/etc/docker/daemon.json'
d = json.load(open(p)) if os.path.exists(p) else {}
d.setdefault('runtimes', {})['sysbox-runc'] = {'path': '/usr/bin/sysbox-runc'}
json.dump(d, open(p, 'w'), indent=2)
"
systemctl daemon-reload
systemctl enable sysbox-mgr sysbox-fs 2>/dev/null
systemctl start sysbox-mgr sysbox-fs --no-block
"#;

const SLOW_PM: &str = "#!/bin/sh\n# artificial slow package manager: `install -y -- rsync` takes 3 s\nsleep 3\nmv /usr/bin/rsync.off /usr/bin/rsync\n";

const RESET: &str = "systemctl stop sysbox.service sysbox-mgr.service sysbox-fs.service 2>/dev/null; \
    rm -rf /usr/bin/sysbox-runc /usr/bin/sysbox-mgr /usr/bin/sysbox-fs /etc/systemd/system/sysbox*.service \
    /etc/systemd/system/*.wants/sysbox*.service /etc/systemd/system/sysbox.service.wants \
    /etc/systemd/system/docker.service.d /var/cache/clawster /var/lib/clawster /etc/sysctl.d/99-sysbox*.conf; \
    systemctl daemon-reload; sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; true";

struct Sample {
    wall: f64,
    rss_kib: u64,
}

fn measure(host: &TestHost, argv: &[&str]) -> Result<Sample> {
    let mut a = vec!["python3", "/root/measure.py"];
    a.extend_from_slice(argv);
    let o = host.exec(&a)?;
    let out = o.stdout;
    let f: Vec<&str> = out.split_whitespace().collect();
    if f.len() != 3 || f[2] != "0" {
        bail!("{argv:?} failed: {out}{}", o.stderr);
    }
    Ok(Sample {
        wall: f[0].parse()?,
        rss_kib: f[1].parse()?,
    })
}

fn median(mut v: Vec<Sample>) -> Sample {
    v.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    let rss = v.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let m = &v[v.len() / 2];
    Sample {
        wall: m.wall,
        rss_kib: rss,
    }
}

fn machine_tool(host: &TestHost, tool: &str, libs: &[&str]) -> Result<()> {
    host.copy_in(
        Path::new(&format!("/usr/bin/{tool}")),
        &format!("/usr/local/bin/{tool}"),
        0o755,
    )?;
    for l in libs {
        let src = Path::new("/usr/lib/x86_64-linux-gnu").join(l);
        if !host
            .path(&format!("/usr/lib/x86_64-linux-gnu/{l}"))
            .exists()
        {
            host.copy_in(&src, &format!("/usr/local/lib/{l}"), 0o644)?;
        }
    }
    Ok(())
}

#[test]
#[ignore = "benchmark: run with agent/bench/run"]
fn bench_bootstrap_vs_seed_shell_vs_xz() -> Result<()> {
    require_root("bootstrap benchmark")?;
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let agent = host_binary("clawster-agent")?;
    let host = TestHost::boot(Layout::MergedUsr)?;
    host.copy_in(&agent, "/usr/local/bin/clawster-agent", 0o755)?;
    machine_tool(&host, "xz", &[])?;
    machine_tool(&host, "ar", &["libbfd-2.40-system.so", "libsframe.so.0"])?;
    host.exec_ok(&["ldconfig"])?;
    host.write_file("/root/measure.py", MEASURE_PY.as_bytes(), 0o644)?;
    host.write_file("/root/seed.sh", SEED_SHELL.as_bytes(), 0o755)?;

    // A package shaped like Sysbox: three real static Go binaries (~39 MB) from the test image
    // standing in for sysbox-runc/-mgr/-fs, xz -6 like dh_builddeb -Zxz.
    let bin = |p: &str| std::fs::read(host.path(p));
    let mut payload = pkg::sysbox_payload(0);
    for (name, src) in [
        ("./usr/bin/sysbox-runc", "/usr/bin/containerd-shim-runc-v2"),
        ("./usr/bin/sysbox-mgr", "/usr/bin/ctr"),
        ("./usr/bin/sysbox-fs", "/usr/bin/containerd-shim"),
    ] {
        let e = payload.iter_mut().find(|e| e.name == name).unwrap();
        e.data = bin(src)?;
    }
    let raw: usize = payload.iter().map(|e| e.data.len()).sum();
    let data = pkg::compress(&pkg::tar(&payload), "xz6");
    let control = pkg::compress(
        &pkg::tar(&[pkg::Entry::file(
            "./control",
            0o644,
            b"Package: sysbox-ce\n",
        )]),
        "xz",
    );
    let deb = pkg::ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", &control),
        ("data.tar.xz", &data),
    ]);
    let sha = pkg::sha256_hex(&deb);
    host.write_file("/root/bench.deb", &deb, 0o600)?;
    host.write_file("/root/data.tar.xz", &data, 0o600)?;
    println!(
        "bench: package {:.1} MB (data.tar.xz {:.1} MB) holding {:.1} MB of binaries",
        deb.len() as f64 / 1e6,
        data.len() as f64 / 1e6,
        raw as f64 / 1e6
    );

    let boot = [
        "clawster-agent",
        "--log-target",
        "journald",
        "bootstrap",
        "--sysbox-deb",
        "/root/bench.deb",
        "--sysbox-sha256",
        &sha,
        "--cluster",
        "bench",
    ];
    // Interleaved rounds: bootstrap, then the two floors, each from a cold page cache, so drift on a
    // shared machine hits all three alike. Floors: `xz -dc` of the payload to /dev/null (decoding
    // alone) and `xz -dc | tar xf -` into an empty directory (decoding plus writing the files, what
    // the seed's `tar xf` does for the binaries, without fsync).
    const DROP: &str = "sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; true";
    const XZ_TAR: &str = "mkdir /root/floor && xz -dc /root/data.tar.xz | tar xf - -C /root/floor";
    // A second agent binary to compare with in the same rounds (e.g. the build before a change).
    let baseline = std::env::var_os("BENCH_BASELINE_AGENT").map(std::path::PathBuf::from);
    if let Some(p) = &baseline {
        host.copy_in(p, "/usr/local/bin/clawster-agent-baseline", 0o755)?;
    }
    let mut boot_base = boot.to_vec();
    boot_base[0] = "clawster-agent-baseline";
    let own_time = |host: &TestHost| -> Result<String> {
        let r = host.journal_json(&[
            "-t",
            "clawster-agent",
            "-n",
            "1",
            "CLAWSTER_CHECK=bootstrap",
        ])?;
        Ok(r.last()
            .and_then(|r| r["MESSAGE"].as_str())
            .unwrap_or("")
            .to_string())
    };
    let (mut b, mut x, mut xt, mut bb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // The baseline first, so the last run (whose steps are printed below) is this agent's.
        if baseline.is_some() {
            host.exec_ok(&["sh", "-c", RESET])?;
            bb.push(measure(&host, &boot_base)?);
            println!(
                "bench: round {round}: baseline agent wall {:.3} s, its own record: {}",
                bb[round].wall,
                own_time(&host)?
            );
        }
        host.exec_ok(&["sh", "-c", RESET])?;
        b.push(measure(&host, &boot)?);
        println!(
            "bench: round {round}: bootstrap wall {:.3} s, its own record: {}",
            b[round].wall,
            own_time(&host)?
        );
        host.exec_ok(&["sh", "-c", DROP])?;
        x.push(measure(&host, &["xz", "-dc", "/root/data.tar.xz"])?);
        host.exec_ok(&["sh", "-c", "rm -rf /root/floor"])?;
        host.exec_ok(&["sh", "-c", DROP])?;
        xt.push(measure(&host, &["sh", "-c", XZ_TAR])?);
    }
    host.exec_ok(&["sh", "-c", "rm -rf /root/floor"])?;
    let ratios = |num: &[Sample], den: &[Sample]| -> Vec<String> {
        num.iter()
            .zip(den)
            .map(|(a, b)| format!("{:.2}", a.wall / b.wall))
            .collect()
    };
    println!(
        "bench: per round (interleaved): bootstrap/xz {:?}; bootstrap/xz|tar {:?}",
        ratios(&b, &x),
        ratios(&b, &xt)
    );
    // Where bootstrap's time went in the last round: its own journal records (one per step), each
    // with the time since the record before it.
    let records = host.journal_json(&["-t", "clawster-agent", "-n", "300"])?;
    let last_run: Vec<&serde_json::Value> = {
        let ends: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r["CLAWSTER_CHECK"].as_str() == Some("bootstrap"))
            .map(|(i, _)| i)
            .collect();
        let to = ends.last().map(|i| i + 1).unwrap_or(0);
        let from = ends.iter().rev().nth(1).map(|i| i + 1).unwrap_or(0);
        records[from..to]
            .iter()
            .filter(|r| r["CLAWSTER_CHECK"].is_string())
            .collect()
    };
    let usec = |r: &serde_json::Value| -> u64 {
        r["__REALTIME_TIMESTAMP"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let mut prev = last_run.first().map(|r| usec(r)).unwrap_or(0);
    for r in &last_run {
        let check = r["CLAWSTER_CHECK"].as_str().unwrap_or("");
        let mut msg = r["MESSAGE"].as_str().unwrap_or("").to_string();
        if msg.len() > 60
            && ![
                "sysbox.download",
                "sysbox.binaries",
                "sysbox.units",
                "bootstrap",
            ]
            .contains(&check)
        {
            msg = msg.chars().take(60).collect();
        }
        println!(
            "bench:   last bootstrap round: +{:>4} ms {check}: {msg}",
            usec(r).saturating_sub(prev) / 1000
        );
        prev = usec(r);
    }

    // Overlap demo: rsync "missing", a package manager that takes 3 s.
    host.write_file("/root/slow-pm", SLOW_PM.as_bytes(), 0o755)?;
    host.exec_ok(&["sh", "-c", RESET])?;
    let pm_alone = {
        host.exec_ok(&["mv", "/usr/bin/rsync", "/usr/bin/rsync.off"])?;
        measure(&host, &["/root/slow-pm", "install", "-y", "--", "rsync"])?
    };
    host.exec_ok(&["sh", "-c", RESET])?;
    host.exec_ok(&["mv", "/usr/bin/rsync", "/usr/bin/rsync.off"])?;
    let mut with_pm: Vec<&str> = boot.to_vec();
    with_pm.extend_from_slice(&["--package-manager", "/root/slow-pm"]);
    let overlapped = measure(&host, &with_pm)?;
    assert!(
        host.path("/usr/bin/rsync").exists(),
        "slow package manager did not run"
    );

    // The seed's shell sequence, timed with GNU tar's --keep-directory-symlink: taken literally,
    // `tar xf -C /` replaces the merged-/usr /lib symlink and breaks the host (shown below).
    let mut s = Vec::new();
    for _ in 0..rounds {
        host.exec_ok(&["sh", "-c", RESET])?;
        s.push(measure(
            &host,
            &[
                "env",
                "KEEP_DIR_SYMLINKS=--keep-directory-symlink",
                "sh",
                "/root/seed.sh",
                "/root/bench.deb",
            ],
        )?);
    }
    host.exec_ok(&["sh", "-c", RESET])?;
    let literal = host.exec(&["sh", "/root/seed.sh", "/root/bench.deb"])?;
    let lib_after = std::fs::symlink_metadata(host.path("/lib"))?
        .file_type()
        .is_symlink();

    if !bb.is_empty() {
        println!(
            "bench: per round (interleaved): bootstrap/baseline agent {:?}",
            ratios(&b, &bb)
        );
        let bb = median(bb);
        let (bm, xm, xtm) = (
            b.iter().map(|s| s.wall).collect::<Vec<_>>(),
            x.iter().map(|s| s.wall).collect::<Vec<_>>(),
            xt.iter().map(|s| s.wall).collect::<Vec<_>>(),
        );
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "bench: baseline agent (BENCH_BASELINE_AGENT) wall {:>7.3} s = {:.2}x the xz floor, {:.2}x the xz|tar floor; this agent is {:.2}x its time",
            bb.wall,
            bb.wall / med(xm),
            bb.wall / med(xtm),
            med(bm) / bb.wall
        );
    }
    let (b, x, xt, s) = (median(b), median(x), median(xt), median(s));
    let mib = |k: u64| k as f64 / 1024.0;
    println!("bench: median of {rounds} rounds on the booted test host (merged /usr); peak RSS is the max over rounds");
    println!(
        "bench: xz -dc payload (floor)      wall {:>7.3} s   peak RSS {:>6.1} MiB",
        x.wall,
        mib(x.rss_kib)
    );
    println!(
        "bench: xz -dc | tar xf - (floor)    wall {:>7.3} s   peak RSS {:>6.1} MiB",
        xt.wall,
        mib(xt.rss_kib)
    );
    println!("bench: clawster-agent bootstrap    wall {:>7.3} s   peak RSS {:>6.1} MiB   = {:.2}x the xz floor, {:.2}x the xz|tar floor", b.wall, mib(b.rss_kib), b.wall / x.wall, b.wall / xt.wall);
    println!("bench: seed shell (tar --keep-dir-symlink) wall {:>7.3} s   peak RSS {:>6.1} MiB   = {:.2}x the xz floor; bootstrap is {:.2}x its time", s.wall, mib(s.rss_kib), s.wall / x.wall, b.wall / s.wall);
    println!("bench: overlap: slow package manager alone {:.3} s + bootstrap {:.3} s = {:.3} s sequential; concurrent bootstrap took {:.3} s", pm_alone.wall, b.wall, pm_alone.wall + b.wall, overlapped.wall);
    println!("bench: targets: bootstrap <= 1.0x xz|tar floor: {}; <= 1.0x xz floor: {}; faster than the shell: {}; peak RSS < 32 MiB: {}", b.wall <= xt.wall, b.wall <= x.wall, b.wall < s.wall, mib(b.rss_kib) < 32.0);
    println!(
        "bench: the seed's literal `tar xf data.tar.* -C /` on merged /usr: exit {}, /lib still a symlink: {lib_after} ({})",
        literal.status,
        literal.stderr.lines().last().unwrap_or("")
    );
    host.shutdown()
}
