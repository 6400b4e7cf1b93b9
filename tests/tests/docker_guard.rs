//! End to end: `clawster-agent docker-guard serve`, started by its shipped socket unit on a booted
//! systemd host with the real dockerd, driven by the real `docker` CLI (DOCKER_HOST pointed at the
//! guard's socket). The sandbox image is a static busybox the harness imports locally (no
//! registry), and daemon.json maps a `sysbox-runc` runtime to runc (the test host has no Sysbox).
//!
//! Checks: OpenClaw's recorded sequence (create with the recorded flags, start, exec with stdin,
//! pause/unpause, inspect, forced delete) works and the container runs with HostConfig.Runtime
//! sysbox-runc and the injected limits; each escape of the issue's list is refused, naming its
//! rule, with no container left behind; journal records for refusals and creations carry
//! method, path, rule and the caller's pid.
//!
//! `bench_docker_guard` (ignored; `agent/bench/docker-guard` runs it) measures inspect latency,
//! an exec round trip and 100 MB through exec stdin, through the guard and on the real socket, in
//! interleaved rounds, and prints per-round figures and the medians with guard/direct ratios.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clawster_e2e::bins::host_binary;
use clawster_e2e::prereq::require_root;
use clawster_e2e::process::Output;
use clawster_e2e::testhost::TestHost;

const GUARD: &str = "unix:///run/clawster/docker.sock";
const IMAGE: &str = "openclaw-sandbox:bookworm-slim";
const STATE: &str = "/var/lib/clawster/openclaw";
/// Where busybox-static puts its binary on the test machine (tests/deps/guard.apt).
const BUSYBOX: &str = "/bin/busybox";

fn units_dir() -> PathBuf {
    clawster_e2e::workspace_root().join("systemd")
}

/// Boots a host with dockerd (plus the sysbox-runc → runc entry), the sandbox image, the agent
/// and the guard's units, socket started.
fn setup() -> Result<TestHost> {
    require_root("docker guard")?;
    let agent = host_binary("clawster-agent")?;
    if !Path::new(BUSYBOX).is_file() {
        bail!("{BUSYBOX} is missing: install busybox-static (tests/deps/guard.apt, `tests/setup-host`)");
    }
    // Containers must really run; dockerd's cgroups sit under a parent named after this host,
    // removed again by `teardown`.
    let host = TestHost::boot_with_dockerd(&agent)?;

    // The sandbox image: static busybox plus the directories a read-only root needs (built under
    // /srv: nspawn mounts a tmpfs over the host's /tmp). `set -o pipefail`: an empty tar stream
    // would import an empty image.
    host.copy_in(Path::new(BUSYBOX), "/srv/img/bin/busybox", 0o755)?;
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
        std::fs::create_dir_all(host.path(&format!("/srv/img/{d}")))?;
    }
    for tool in ["sh", "cat", "wc", "sleep", "true", "ls", "head", "id"] {
        std::os::unix::fs::symlink("busybox", host.path(&format!("/srv/img/bin/{tool}")))?;
    }
    host.exec_ok(&[
        "bash",
        "-o",
        "pipefail",
        "-c",
        &format!(
            "tar -C /srv/img -c . | docker import - {IMAGE} && docker run --rm {IMAGE} /bin/true"
        ),
    ])?;

    host.exec_ok(&["mkdir", "-p", &format!("{STATE}/workspace")])?;
    for unit in [
        "clawster-docker-guard.socket",
        "clawster-docker-guard.service",
    ] {
        host.copy_in(
            &units_dir().join(unit),
            &format!("/etc/systemd/system/{unit}"),
            0o644,
        )?;
    }
    // The socket's group (the bot task's gid), as `clawster-agent bootstrap` makes it.
    host.exec_ok(&[
        "sh",
        "-c",
        "getent group 1000 || groupadd -g 1000 clawster-bot",
    ])?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;
    host.exec_ok(&[
        "systemctl",
        "enable",
        "--now",
        "clawster-docker-guard.socket",
    ])?;
    Ok(host)
}

/// Removes every container and the cgroup parent dockerd used (it lives in the machine's cgroup
/// v1 hierarchies, which outlive the test host).
fn teardown(host: TestHost) -> Result<()> {
    let ids = direct(&host, &["ps", "-aq"])?;
    for id in ids.split_whitespace() {
        direct(&host, &["rm", "-f", id])?;
    }
    host.exec_ok(&[
        "sh",
        "-c",
        &format!(
            "for d in /sys/fs/cgroup/*/{}; do [ -d \"$d\" ] && rmdir \"$d\"; done; true",
            host.name()
        ),
    ])?;
    host.shutdown()
}

/// `docker ARGS` through the guard.
fn guarded(host: &TestHost, args: &[&str]) -> Result<Output> {
    let mut argv = vec![
        "env",
        "DOCKER_HOST=unix:///run/clawster/docker.sock",
        "docker",
    ];
    argv.extend_from_slice(args);
    host.exec(&argv)
}

/// `docker ARGS` on the real socket.
fn direct(host: &TestHost, args: &[&str]) -> Result<String> {
    let mut argv = vec!["docker"];
    argv.extend_from_slice(args);
    host.exec_ok(&argv)
}

/// The flags OpenClaw's recorded create body corresponds to (facts §4), for `name`.
fn openclaw_create(name: &str, network: &str) -> Vec<String> {
    [
        "create",
        "--name",
        name,
        "--label",
        "openclaw.sandbox=1",
        "--label",
        "openclaw.sessionKey=agent:main:e2e",
        "--user",
        "0:0",
        "--read-only",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/var/tmp",
        "--network",
        network,
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--init",
        "--workdir",
        "/workspace",
        "--env",
        "LANG=C.UTF-8",
        "-v",
        &format!("{STATE}/workspace:/workspace:z"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn all_containers(host: &TestHost) -> Result<Vec<String>> {
    Ok(direct(host, &["ps", "-a", "--format", "{{.Names}}"])?
        .lines()
        .map(str::to_string)
        .collect())
}

#[test]
fn openclaw_sequence_works_and_escapes_are_refused() -> Result<()> {
    let host = setup()?;
    let t = Instant::now();

    // --- OpenClaw's sequence -----------------------------------------------------------------
    let name = "openclaw-sbx-workspace-e2e";
    let mut args = openclaw_create(name, "none");
    args.extend([IMAGE.to_string(), "sleep".into(), "infinity".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = guarded(&host, &argv)?;
    assert!(out.success(), "create through the guard: {out:?}");
    let id = out.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{out:?}");
    let out = guarded(&host, &["start", name])?;
    assert!(out.success(), "start: {out:?}");
    // Exec with stdin, by id as OpenClaw does: the content travels over the hijacked stream and
    // the half-close ends `cat`.
    let out = host.exec(&[
        "sh",
        "-c",
        &format!("printf 'hello from stdin' | DOCKER_HOST={GUARD} docker exec -i -w /workspace {id} sh -c 'cat > /workspace/f && wc -c < /workspace/f'"),
    ])?;
    assert!(out.success(), "exec -i: {out:?}");
    assert_eq!(out.stdout.trim(), "16", "{out:?}");
    assert_eq!(
        std::fs::read_to_string(host.path(&format!("{STATE}/workspace/f")))?,
        "hello from stdin"
    );
    let out = guarded(&host, &["exec", &id, "cat", "/proc/self/mountinfo"])?;
    assert!(
        out.success() && out.stdout.contains("/workspace"),
        "{out:?}"
    );
    for verb in ["pause", "unpause"] {
        let out = guarded(&host, &[verb, &id])?;
        assert!(out.success(), "{verb}: {out:?}");
    }
    let out = guarded(&host, &["inspect", "-f", "{{.State.Running}}", name])?;
    assert_eq!(out.stdout.trim(), "true", "{out:?}");
    // What dockerd really got, asked on the real socket.
    let hc = direct(
        &host,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.Runtime}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{index .Config.Labels \"org.clawster.docker-guard\"}}",
            &id,
        ],
    )?;
    assert_eq!(
        hc.trim(),
        "sysbox-runc 1073741824 1000000000 512 openclaw",
        "{hc}"
    );
    let record = host.wait_journal(&["-t", "clawster-agent"], Duration::from_secs(10), |r| {
        r["CLAWSTER_CHECK"] == "docker_guard.created"
    })?;
    assert_eq!(record["CONTAINER_ID"], id.as_str());
    assert_eq!(record["METHOD"], "POST");
    assert_eq!(record["RUNTIME"], "sysbox-runc");
    assert_eq!(record["MEMORY"], "1073741824");
    assert_eq!(record["CONTAINER_NAME"], name);
    assert!(record["CALLER_PID"]
        .as_str()
        .is_some_and(|p| p.parse::<u32>().is_ok()));

    // --- Escapes -------------------------------------------------------------------------------
    // A container started on the real socket, which the bot must not reach.
    direct(
        &host,
        &["run", "-d", "--name", "victim", IMAGE, "sleep", "infinity"],
    )?;
    std::os::unix::fs::symlink("/etc", host.path(&format!("{STATE}/workspace/etc-link")))?;
    let escape_net = |network: &str, flags: &[&str]| -> Vec<String> {
        let mut a = openclaw_create("openclaw-sbx-escape", network);
        a.extend(flags.iter().map(|s| s.to_string()));
        a.extend([IMAGE.to_string(), "true".into()]);
        a
    };
    let escape = |flags: &[&str]| escape_net("none", flags);
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "docker run --privileged",
            {
                let mut a = escape(&["--privileged"]);
                a[0] = "run".into();
                a
            },
            "create.privileged",
        ),
        ("-v /:/host", escape(&["-v", "/:/host"]), "create.binds"),
        (
            "symlink to /etc planted in the workspace",
            escape(&["-v", &format!("{STATE}/workspace/etc-link:/host-etc")]),
            "create.binds",
        ),
        (
            "--pid host",
            escape(&["--pid", "host"]),
            "create.namespaces",
        ),
        (
            "--runtime runc",
            escape(&["--runtime", "runc"]),
            "create.runtime",
        ),
        (
            "--cap-add SYS_ADMIN",
            escape(&["--cap-add", "SYS_ADMIN"]),
            "create.cap_add",
        ),
        (
            "--device",
            escape(&["--device", "/dev/null:/dev/x"]),
            "create.devices",
        ),
        ("--network host", escape_net("host", &[]), "create.network"),
        (
            "exec into a container started on the real socket",
            vec!["exec".into(), "victim".into(), "true".into()],
            "!No such container",
        ),
        (
            "inspect a container started on the real socket",
            vec!["inspect".into(), "victim".into()],
            "!No such object",
        ),
        (
            "rm -f a container started on the real socket",
            vec!["rm".into(), "-f".into(), "victim".into()],
            "container.not_owned",
        ),
        (
            "image pull",
            vec!["pull".into(), "alpine".into()],
            "endpoint.not_allowed",
        ),
    ];
    let before = all_containers(&host)?;
    for (what, args, rule) in &cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = guarded(&host, &argv)?;
        eprintln!(
            "docker_guard: {what}: exit {} {}",
            out.status,
            out.stderr.trim()
        );
        assert!(!out.success(), "{what} must be refused: {out:?}");
        if let Some(text) = rule.strip_prefix('!') {
            // Lookups of what the bot may not see answer 404, as for a missing object.
            assert!(out.stderr.contains(text), "{what}: {out:?}");
        } else {
            assert!(
                out.stderr.contains(&format!("rule {rule}")),
                "{what}: expected rule {rule}: {out:?}"
            );
        }
        assert_eq!(
            all_containers(&host)?,
            before,
            "{what} left a container behind"
        );
    }
    assert!(all_containers(&host)?.contains(&"victim".to_string()));
    let refused = host.journal_json(&["-t", "clawster-agent"])?;
    let refused: Vec<_> = refused
        .iter()
        .filter(|r| r["CLAWSTER_CHECK"] == "docker_guard.refused")
        .collect();
    for rule in [
        "create.privileged",
        "create.binds",
        "create.runtime",
        "container.not_owned",
    ] {
        let r = refused
            .iter()
            .find(|r| r["RULE"] == rule)
            .with_context(|| format!("no journal record for rule {rule}: {refused:?}"))?;
        assert!(r["METHOD"].is_string() && r["PATH"].is_string(), "{r}");
        assert!(r["CALLER_PID"].as_str().is_some_and(|p| p != "0"), "{r}");
    }

    // Forced delete of our own container, then nothing of ours is left.
    let out = guarded(&host, &["rm", "-f", name])?;
    assert!(out.success(), "rm -f: {out:?}");
    assert_eq!(all_containers(&host)?, vec!["victim".to_string()]);

    // The guard ran from its sandboxed unit, socket-activated, and is still healthy.
    assert_eq!(
        host.exec_ok(&["systemctl", "is-active", "clawster-docker-guard.service"])?
            .trim(),
        "active"
    );
    eprintln!(
        "docker_guard: sequence and {} escapes in {:.1} s",
        cases.len(),
        t.elapsed().as_secs_f64()
    );
    host.shutdown()
}

// --- Benchmark ----------------------------------------------------------------------------------

/// A minimal Docker API client over a Unix socket (keep-alive, Content-Length bodies).
struct Api {
    s: UnixStream,
    buf: Vec<u8>,
}

impl Api {
    fn connect(path: &Path) -> Result<Self> {
        Ok(Self {
            s: UnixStream::connect(path).with_context(|| format!("connect {}", path.display()))?,
            buf: Vec::new(),
        })
    }

    fn fill(&mut self) -> Result<()> {
        let mut tmp = [0u8; 65536];
        let n = self.s.read(&mut tmp)?;
        if n == 0 {
            bail!("connection closed");
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    /// Sends a request and reads a Content-Length or chunked response; returns (status, body).
    fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, Vec<u8>)> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\n");
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body.unwrap_or(""));
        self.s.write_all(req.as_bytes())?;
        let (status, head_len, headers) = self.head()?;
        self.buf.drain(..head_len);
        let h = headers.to_ascii_lowercase();
        let mut out = Vec::new();
        if let Some(cl) = h.lines().find_map(|l| l.strip_prefix("content-length:")) {
            let n: usize = cl.trim().parse()?;
            while self.buf.len() < n {
                self.fill()?;
            }
            out = self.buf.drain(..n).collect();
        } else if h.contains("transfer-encoding: chunked") {
            loop {
                while !self.buf.windows(2).any(|w| w == b"\r\n") {
                    self.fill()?;
                }
                let i = self.buf.windows(2).position(|w| w == b"\r\n").unwrap();
                let size = usize::from_str_radix(std::str::from_utf8(&self.buf[..i])?.trim(), 16)?;
                self.buf.drain(..i + 2);
                while self.buf.len() < size + 2 {
                    self.fill()?;
                }
                out.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        }
        Ok((status, out))
    }

    fn head(&mut self) -> Result<(u16, usize, String)> {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                let status = text.get(9..12).unwrap_or("0").parse()?;
                return Ok((status, i + 4, text));
            }
            self.fill()?;
        }
    }

    /// One exec of `cmd` with `stdin` streamed in `stdin_len` bytes, returns the output bytes.
    fn exec(path: &Path, id: &str, cmd: &str, stdin_len: usize) -> Result<Vec<u8>> {
        let mut api = Self::connect(path)?;
        let body = format!(
            r#"{{"User":"","Privileged":false,"Tty":false,"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["sh","-c","{cmd}"]}}"#
        );
        let (st, resp) = api.call("POST", &format!("/v1.41/containers/{id}/exec"), Some(&body))?;
        if st != 201 {
            bail!("exec create: {st} {}", String::from_utf8_lossy(&resp));
        }
        let v: serde_json::Value = serde_json::from_slice(&resp)?;
        let eid = v["Id"].as_str().context("exec id")?.to_string();
        let start = r#"{"Detach":false,"Tty":false}"#;
        let req = format!(
            "POST /v1.41/exec/{eid}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
            start.len()
        );
        api.s.write_all(req.as_bytes())?;
        let (st, head_len, _) = api.head()?;
        if st != 101 {
            bail!("exec start: {st}");
        }
        api.buf.drain(..head_len);
        let mut w = api.s.try_clone()?;
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            let chunk = vec![b'x'; 256 * 1024];
            let mut left = stdin_len;
            while left > 0 {
                let n = left.min(chunk.len());
                w.write_all(&chunk[..n])?;
                left -= n;
            }
            w.shutdown(std::net::Shutdown::Write)
        });
        let mut out = std::mem::take(&mut api.buf);
        api.s.read_to_end(&mut out)?;
        writer
            .join()
            .map_err(|_| anyhow::anyhow!("stdin writer panicked"))??;
        let (st, _) = Self::connect(path)?.call("GET", &format!("/v1.41/exec/{eid}/json"), None)?;
        if st != 200 {
            bail!("exec inspect: {st}");
        }
        Ok(out)
    }
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// One round's figures for one socket: inspect median (s), exec round trip median (s), stream
/// throughput (MB/s).
#[derive(Clone, Copy)]
struct Round {
    inspect: f64,
    exec: f64,
    mbps: f64,
}

#[test]
#[ignore = "benchmark: agent/bench/docker-guard"]
fn bench_docker_guard() -> Result<()> {
    let host = setup()?;
    // Interleaved rounds (at least 5); per round `calls` inspects and a tenth as many exec round
    // trips (at least 5) per socket, each call alternating direct and guard, and one stream each.
    let rounds = env_usize("BENCH_PASSES", 5).max(5);
    let calls = env_usize("BENCH_ROUNDS", 200).max(10);
    let execs = (calls / 10).max(5);
    let mb = env_usize("BENCH_MB", 100);
    let name = "openclaw-sbx-bench";
    let mut args = openclaw_create(name, "none");
    args.extend([IMAGE.to_string(), "sleep".into(), "infinity".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = guarded(&host, &argv)?;
    assert!(out.success(), "{out:?}");
    let id = out.stdout.trim().to_string();
    assert!(guarded(&host, &["start", &id])?.success());
    // Both sockets, reached from this machine through the host's root.
    let proc_root = PathBuf::from(format!("/proc/{}/root", host.leader_pid()));
    let guard = proc_root.join("run/clawster/docker.sock");
    let real = proc_root.join("run/docker.sock");
    let socks = [&real, &guard];
    let path = format!("/v1.41/containers/{id}/json");
    let bytes = mb << 20;
    let inspect_once = |api: &mut Api| -> Result<f64> {
        let t = Instant::now();
        let (st, _) = api.call("GET", &path, None)?;
        assert_eq!(st, 200);
        Ok(t.elapsed().as_secs_f64())
    };
    let exec_once = |sock: &Path| -> Result<f64> {
        let t = Instant::now();
        let out = Api::exec(sock, &id, "cat", 16)?;
        assert!(out.windows(16).any(|w| w == [b'x'; 16]), "{out:?}");
        Ok(t.elapsed().as_secs_f64())
    };
    let stream_once = |sock: &Path| -> Result<f64> {
        let t = Instant::now();
        let out = Api::exec(sock, &id, "wc -c", bytes)?;
        let secs = t.elapsed().as_secs_f64();
        assert!(
            String::from_utf8_lossy(&out).contains(&bytes.to_string()),
            "wc -c saw all {bytes} bytes: {out:?}"
        );
        Ok(mb as f64 / secs)
    };

    let mut apis = [Api::connect(&real)?, Api::connect(&guard)?];
    // Warm-up, not counted: connections, caches, the exec path.
    for api in &mut apis {
        for _ in 0..20 {
            inspect_once(api)?;
        }
    }
    for sock in socks {
        exec_once(sock)?;
    }
    let mut results: Vec<[Round; 2]> = Vec::new();
    for round in 0..rounds {
        // Who goes first alternates from call to call.
        let order = |k: usize| {
            if (round + k).is_multiple_of(2) {
                [0, 1]
            } else {
                [1, 0]
            }
        };
        let mut ins = [Vec::new(), Vec::new()];
        for k in 0..calls {
            for i in order(k) {
                ins[i].push(inspect_once(&mut apis[i])?);
            }
        }
        let mut ex = [Vec::new(), Vec::new()];
        for k in 0..execs {
            for i in order(k) {
                ex[i].push(exec_once(socks[i])?);
            }
        }
        let mut thr = [0.0; 2];
        for i in order(0) {
            thr[i] = stream_once(socks[i])?;
        }
        let r = [0, 1].map(|i| Round {
            inspect: median(ins[i].clone()),
            exec: median(ex[i].clone()),
            mbps: thr[i],
        });
        println!(
            "bench: round {}: inspect direct {:.1} us guard {:.1} us ({:.2}x) | exec round trip direct {:.2} ms guard {:.2} ms ({:.2}x) | {mb} MB stdin direct {:.0} MB/s guard {:.0} MB/s ({:.2}x)",
            round + 1,
            r[0].inspect * 1e6,
            r[1].inspect * 1e6,
            r[1].inspect / r[0].inspect,
            r[0].exec * 1e3,
            r[1].exec * 1e3,
            r[1].exec / r[0].exec,
            r[0].mbps,
            r[1].mbps,
            r[1].mbps / r[0].mbps,
        );
        results.push(r);
    }
    let med = |f: &dyn Fn(&[Round; 2]) -> f64| median(results.iter().map(f).collect::<Vec<_>>());
    println!(
        "bench: median of {rounds} interleaved rounds ({calls} inspects, {execs} exec round trips, 1 stream of {mb} MB per socket per round):"
    );
    println!(
        "bench:   inspect latency   direct {:>8.1} us  guard {:>8.1} us  guard/direct {:.2}x",
        med(&|r| r[0].inspect) * 1e6,
        med(&|r| r[1].inspect) * 1e6,
        med(&|r| r[1].inspect / r[0].inspect)
    );
    println!(
        "bench:   exec round trip   direct {:>8.2} ms  guard {:>8.2} ms  guard/direct {:.2}x",
        med(&|r| r[0].exec) * 1e3,
        med(&|r| r[1].exec) * 1e3,
        med(&|r| r[1].exec / r[0].exec)
    );
    println!(
        "bench:   stdin throughput  direct {:>8.0} MB/s guard {:>8.0} MB/s guard/direct {:.2}x",
        med(&|r| r[0].mbps),
        med(&|r| r[1].mbps),
        med(&|r| r[1].mbps / r[0].mbps)
    );
    drop(apis);
    assert!(guarded(&host, &["rm", "-f", &id])?.success());
    teardown(host)
}
