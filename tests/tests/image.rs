//! End to end: the bot image (`packaging/build-image`, issue 20).
//!
//! `image_builds_reproducibly_ready_for_a_read_only_root` builds the x86_64 image twice into
//! separate directories (the second build reuses only the verified download cache; every tree,
//! tar and blob is made again) and checks: the same index.json and the same blobs, byte for byte;
//! every layer entry has the pinned mtime and a numeric owner; OpenClaw's lifecycle marker is
//! absent and its entry point present; the user openclaw is 1000:1000; the config runs as
//! 1000:1000 with the gateway as entry point and no secret in its environment; packages.txt lists
//! openclaw 2026.9.6, Node 24.x and git. It prints the build times, the digest and the size.
//!
//! `image_runs_hardened_from_a_registry_under_real_dockerd` pushes that image to a local registry
//! with htpasswd Basic auth (Debian's docker-registry, run in the test host's network namespace,
//! the scheme ECR uses) with skopeo, twice (the second push must upload no blob), logs the booted
//! test host's real dockerd in, pulls it by digest, and runs it with exactly the task definition's
//! settings (read from the bot stack's golden template: user, read-only root, capabilities,
//! init, no-new-privileges, tmpfs, mounts, stop timeout, command) on the docker guard's socket.
//! Checks: the task's own health command (`/healthz`) succeeds, every process in the container is
//! uid 1000 with no capabilities and no_new_privs, a write to /usr fails, and the docker CLI in the
//! container reaches dockerd through the guard as uid 1000. The gateway runs with the sandbox
//! configuration `clawsterctl deploy` writes (mode all) and a scripted OpenAI-compatible model on
//! the task's loopback (`image/sandbox.rs`): one agent turn's `exec` tool call runs in an
//! `openclaw-sbx-*` container the gateway created through the guard (the gateway's self-discovery
//! through the guard, the guard's owner label, journal record and sysbox-runc runtime; CapDrop
//! ALL, read-only root, network none; the proof file in the host's state directory; the model got
//! the sandbox's output as the tool result). Privileged and non-allowlisted creates from the task
//! are refused, naming their rules. Then, on the same host, the npm path (`image/npm_path.rs`:
//! OpenClaw's 330 packages installed at start, offline from the build's npm cache) for the
//! start-to-healthy comparison. It prints push, pull, both start-to-healthy and sandbox-turn times.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clawster_e2e::bins::host_binary;
use clawster_e2e::prereq::{require_root, require_tools};
use clawster_e2e::process::{run_ok, wait_for};
use clawster_e2e::testhost::TestHost;
use serde_json::Value;

#[path = "image/npm_path.rs"]
mod npm_path;
#[path = "image/sandbox.rs"]
mod sandbox;

const OPENCLAW: &str = "2026.9.6";

/// The first build of this process (both tests use it; builds never run concurrently).
static FIRST: Mutex<Option<PathBuf>> = Mutex::new(None);

fn first_build() -> Result<(PathBuf, Option<Built>)> {
    let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = first.as_ref() {
        return Ok((dir.clone(), None));
    }
    let built = build(&clawster_e2e::cache_dir().join("image-test/a"))?;
    *first = Some(built.dir.clone());
    Ok((built.dir.clone(), Some(built)))
}

/// One finished build: its directory, index digest and duration.
struct Built {
    dir: PathBuf,
    index: Vec<u8>,
    secs: f64,
}

fn build(dist: &Path) -> Result<Built> {
    let root = clawster_e2e::workspace_root();
    let _ = std::fs::remove_dir_all(dist);
    let start = Instant::now();
    let mut c = Command::new(root.join("packaging/build-image"));
    c.args(["x86_64", "--no-setup"])
        .env("CLAWSTER_DIST", dist)
        .env("CLAWSTER_CACHE", clawster_e2e::cache_dir());
    run_ok(&mut c, Duration::from_secs(1800)).context("packaging/build-image x86_64")?;
    let dir = dist.join("image/x86_64");
    let index = std::fs::read(dir.join("index.json")).context("read index.json")?;
    Ok(Built {
        dir,
        index,
        secs: start.elapsed().as_secs_f64(),
    })
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn blobs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `tar -tvz --full-time --numeric-owner` of a layer: one line per entry.
fn listing(layer: &Path) -> Result<Vec<String>> {
    let out = run_ok(
        Command::new("tar")
            .args(["-tvzf"])
            .arg(layer)
            .args(["--full-time", "--numeric-owner"]),
        Duration::from_secs(300),
    )?;
    Ok(out.stdout.lines().map(str::to_string).collect())
}

#[test]
fn image_builds_reproducibly_ready_for_a_read_only_root() -> Result<()> {
    require_root("image")?;
    require_tools(
        "image",
        &[
            "mmdebstrap",
            "dpkg-scanpackages",
            "curl",
            "jq",
            "gzip",
            "tar",
        ],
    )?;
    let base = clawster_e2e::cache_dir().join("image-test");
    let (a_dir, a_built) = first_build()?;
    let b = {
        // Builds share the work directory: one at a time.
        let _first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
        build(&base.join("b"))?
    };
    let a = Built {
        index: std::fs::read(a_dir.join("index.json"))?,
        secs: a_built.map_or(f64::NAN, |b| b.secs),
        dir: a_dir,
    };
    let index: Value = serde_json::from_slice(&a.index)?;
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        String::from_utf8_lossy(&a.index),
        String::from_utf8_lossy(&b.index),
        "two builds of the same pins gave different index.json"
    );
    let (ba, bb) = (blobs(&a.dir), blobs(&b.dir));
    assert_eq!(
        ba.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        bb.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert!(ba == bb, "blob contents differ between the builds");
    for (name, bytes) in &ba {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        assert_eq!(&sha, name, "blob {name} is not named by its digest");
    }
    let size: usize = ba.iter().map(|(_, b)| b.len()).sum();
    println!(
        "image x86_64: {digest}, {:.1} MiB compressed; builds took {:.0} s and {:.0} s",
        size as f64 / 1048576.0,
        a.secs,
        b.secs
    );

    let manifest = json(&blob(&a.dir, &digest));
    let config = json(&blob(
        &a.dir,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    check_config(&config);
    let sde: i64 = std::fs::read_to_string(
        clawster_e2e::workspace_root().join("packaging/image/source-date-epoch"),
    )?
    .trim()
    .parse()?;
    let stamp = run_ok(
        Command::new("date").args(["-u", "-d", &format!("@{sde}"), "+%Y-%m-%d %H:%M:%S"]),
        Duration::from_secs(10),
    )?
    .stdout
    .trim()
    .to_string();
    let layers: Vec<PathBuf> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob(&a.dir, l["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(layers.len(), 2, "base and app layers");
    let mut all = Vec::new();
    for layer in &layers {
        let lines = listing(layer)?;
        assert!(
            lines.len() > 100,
            "{} has {} entries",
            layer.display(),
            lines.len()
        );
        for l in &lines {
            // "-rw-r--r-- 0/0 123 2026-12-07 00:00:00 path": numeric owner, the pinned mtime.
            let owner = l.split_whitespace().nth(1).unwrap();
            assert!(
                owner.split('/').all(|n| n.parse::<u32>().is_ok()),
                "non-numeric owner: {l}"
            );
            assert!(
                l.contains(&stamp),
                "entry without the pinned mtime {stamp}: {l}"
            );
        }
        all.extend(lines);
    }
    let has = |suffix: &str| all.iter().any(|l| l.ends_with(suffix));
    assert!(
        !all.iter()
            .any(|l| l.contains(".openclaw-lifecycle-pending")),
        "the lifecycle marker is in the image: OpenClaw would exit 1 on a read-only root"
    );
    assert!(has(" opt/openclaw/node_modules/openclaw/openclaw.mjs"));
    assert!(has(" usr/local/bin/node"));
    assert!(has(" usr/local/bin/clawster-gateway"));
    assert!(has(" etc/ssl/certs/ca-certificates.crt"));
    assert!(all
        .iter()
        .any(|l| l.contains(" 1000/1000 ") && l.ends_with(" home/openclaw/")));
    assert!(
        !all.iter()
            .any(|l| l.contains(" dev/") && !l.ends_with(" dev/")),
        "device nodes in the image"
    );
    let passwd = run_ok(
        Command::new("tar")
            .arg("-xzOf")
            .arg(&layers[0])
            .arg("etc/passwd"),
        Duration::from_secs(60),
    )?
    .stdout;
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("openclaw:x:1000:1000:")),
        "{passwd}"
    );

    let packages = std::fs::read_to_string(a.dir.join("packages.txt"))?;
    let line = |kind: &str, name: &str| {
        packages
            .lines()
            .find(|l| l.starts_with(&format!("{kind} {name} ")))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(
        line("npm", "openclaw").as_deref(),
        Some(OPENCLAW),
        "{packages}"
    );
    let node = line("node", "node").context("no node line in packages.txt")?;
    assert!(node.starts_with("24."), "node {node}");
    assert!(line("debian", "git").is_some() && line("debian", "ca-certificates").is_some());
    let npm_count = packages.lines().filter(|l| l.starts_with("npm ")).count();
    assert!(npm_count > 300, "only {npm_count} npm packages listed");
    println!(
        "packages.txt: {} Debian, node {node}, {npm_count} npm packages",
        packages
            .lines()
            .filter(|l| l.starts_with("debian "))
            .count()
    );
    Ok(())
}

fn check_config(config: &Value) {
    let c = &config["config"];
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Entrypoint"][0], "/usr/local/bin/clawster-gateway");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"OPENCLAW_STATE_DIR=/home/openclaw/.openclaw"),
        "{env:?}"
    );
    for e in &env {
        let key = e.split('=').next().unwrap();
        for word in ["TOKEN", "SECRET", "PASSWORD", "KEY"] {
            assert!(
                !key.contains(word),
                "secret-looking variable in the image: {e}"
            );
        }
    }
    if config["config"]
        .get("Volumes")
        .is_some_and(|v| !v.is_null())
    {
        panic!("image volumes would shadow the task's bind mount: {c}");
    }
}

const REGISTRY: &str = "127.0.0.1:5000";
const REPO: &str = "clawster-openclaw";
const REGISTRY_USER: &str = "clawster";
/// A throwaway password for the test's own registry (never leaves the test host's namespace).
const REGISTRY_PASSWORD: &str = "e2e-registry-password";
const GUARD_STATE: &str = "/var/lib/clawster/openclaw";

/// The container definition and volumes of the bot task, from the bot stack's golden template
/// (ctl/tests/cli.rs keeps it equal to what `clawsterctl template bot` renders).
fn task_definition() -> Value {
    let t = json(&clawster_e2e::workspace_root().join("ctl/tests/golden/bot-demo-us-east-1.json"));
    t["Resources"]["TaskDefinition"]["Properties"].clone()
}

/// `docker run` arguments for exactly the task's settings; `secrets` give the Secrets' values.
fn run_args(td: &Value, image: &str, secrets: &[(&str, &str)]) -> Result<Vec<String>> {
    let c = &td["ContainerDefinitions"][0];
    let mut a: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--name".into(),
        "openclaw".into(),
    ];
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    push(&["--user", c["User"].as_str().context("User")?]);
    if c["ReadonlyRootFilesystem"] == true {
        push(&["--read-only"]);
    }
    if c["Privileged"] != false {
        bail!("the task must say Privileged false: {c}");
    }
    for o in c["DockerSecurityOptions"]
        .as_array()
        .context("DockerSecurityOptions")?
    {
        push(&["--security-opt", o.as_str().unwrap()]);
    }
    let lp = &c["LinuxParameters"];
    for cap in lp["Capabilities"]["Drop"].as_array().context("Drop")? {
        push(&["--cap-drop", cap.as_str().unwrap()]);
    }
    if let Some(add) = lp["Capabilities"]["Add"].as_array() {
        for cap in add {
            push(&["--cap-add", cap.as_str().unwrap()]);
        }
    }
    if lp["InitProcessEnabled"] == true {
        push(&["--init"]);
    }
    for t in lp["Tmpfs"].as_array().context("Tmpfs")? {
        let mut opts: Vec<String> = t["MountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_string())
            .collect();
        opts.push(format!("size={}m", t["Size"]));
        push(&[
            "--tmpfs",
            &format!(
                "{}:{}",
                t["ContainerPath"].as_str().unwrap(),
                opts.join(",")
            ),
        ]);
    }
    let volumes = td["Volumes"].as_array().context("Volumes")?;
    for m in c["MountPoints"].as_array().context("MountPoints")? {
        let v = volumes
            .iter()
            .find(|v| v["Name"] == m["SourceVolume"])
            .context("mount of an unknown volume")?;
        let ro = if m["ReadOnly"] == true { ":ro" } else { "" };
        push(&[
            "-v",
            &format!(
                "{}:{}{ro}",
                v["Host"]["SourcePath"].as_str().unwrap(),
                m["ContainerPath"].as_str().unwrap()
            ),
        ]);
    }
    push(&["--stop-timeout", &c["StopTimeout"].to_string()]);
    push(&[
        "--memory-reservation",
        &format!("{}m", c["MemoryReservation"]),
    ]);
    for s in c["Secrets"].as_array().context("Secrets")? {
        let name = s["Name"].as_str().unwrap();
        let value = secrets
            .iter()
            .find(|(n, _)| *n == name)
            .with_context(|| format!("no test value for the secret {name}"))?
            .1;
        push(&["-e", &format!("{name}={value}")]);
    }
    if c.get("EntryPoint").is_some() {
        bail!("the task overrides the image's entry point: {c}");
    }
    push(&[image]);
    for arg in c["Command"].as_array().context("Command")? {
        push(&[arg.as_str().unwrap()]);
    }
    Ok(a)
}

/// A child process that is killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's docker-registry with htpasswd Basic auth, in the test host's network namespace.
fn start_registry(host: &TestHost, dir: &Path) -> Result<Killed> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("storage"))?;
    let htpasswd = run_ok(
        Command::new("htpasswd").args(["-Bbn", REGISTRY_USER, REGISTRY_PASSWORD]),
        Duration::from_secs(30),
    )?;
    std::fs::write(dir.join("htpasswd"), htpasswd.stdout)?;
    std::fs::write(
        dir.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {REGISTRY}\nauth:\n  htpasswd:\n    realm: clawster-e2e\n    path: {}\n",
            dir.join("storage").display(),
            dir.join("htpasswd").display()
        ),
    )?;
    let child = Command::new("nsenter")
        .arg("-t")
        .arg(host.leader_pid().to_string())
        .args(["-n", "docker-registry", "serve"])
        .arg(dir.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("registry.log"))?)
        .spawn()
        .context("start docker-registry")?;
    let reg = Killed(child);
    wait_for("the registry answers", Duration::from_secs(30), || {
        Ok(host
            .exec(&["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5000"])?
            .success())
    })?;
    Ok(reg)
}

/// Runs a program of this machine inside the test host's network namespace.
fn in_netns(host: &TestHost, argv: &[&str]) -> Result<clawster_e2e::process::Output> {
    let mut c = Command::new("nsenter");
    c.arg("-t")
        .arg(host.leader_pid().to_string())
        .arg("-n")
        .args(argv);
    clawster_e2e::process::run(&mut c, Duration::from_secs(600))
}

/// skopeo copy of the OCI layout to the registry; returns (seconds, blobs uploaded, blobs the
/// registry already had), counted from the registry's own request log (`log_file`).
fn push(host: &TestHost, layout: &Path, tag: &str, log_file: &Path) -> Result<(f64, usize, usize)> {
    let before = std::fs::read_to_string(log_file).unwrap_or_default().len();
    let start = Instant::now();
    let out = in_netns(
        host,
        &[
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"),
            &format!("oci:{}", layout.display()),
            &format!("docker://{REGISTRY}/{REPO}:{tag}"),
        ],
    )?;
    if !out.success() {
        bail!("skopeo copy failed: {}{}", out.stdout, out.stderr);
    }
    let secs = start.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(log_file)?;
    let requests = |method: &str, uri: &str, status: &str| {
        log[before..]
            .lines()
            .filter(|l| {
                l.contains("response completed")
                    && l.contains(&format!("http.request.method={method} "))
                    && l.contains(uri)
                    && l.contains(&format!("http.response.status={status} "))
            })
            .count()
    };
    let uploaded = requests("PUT", "/blobs/uploads/", "201");
    let present = requests("HEAD", "/blobs/sha256:", "200");
    Ok((secs, uploaded, present))
}

/// Boots a host with dockerd, the agent's docker guard on its socket and the state directory.
fn guard_host() -> Result<TestHost> {
    let agent = host_binary("clawster-agent")?;
    let host = TestHost::boot_with_dockerd(&agent)?;
    let units = clawster_e2e::workspace_root().join("systemd");
    for unit in [
        "clawster-docker-guard.socket",
        "clawster-docker-guard.service",
    ] {
        host.copy_in(
            &units.join(unit),
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
    // What `clawster-agent bootstrap` makes: the task user's state directory.
    host.exec_ok(&[
        "install",
        "-d",
        "-o",
        "1000",
        "-g",
        "1000",
        "-m",
        "0700",
        GUARD_STATE,
    ])?;
    Ok(host)
}

fn teardown(host: TestHost) -> Result<()> {
    let ids = host.exec_ok(&["docker", "ps", "-aq"])?;
    for id in ids.split_whitespace() {
        host.exec_ok(&["docker", "rm", "-f", id])?;
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

#[test]
fn image_runs_hardened_from_a_registry_under_real_dockerd() -> Result<()> {
    require_root("image")?;
    require_tools(
        "image",
        &["docker-registry", "skopeo", "htpasswd", "nsenter"],
    )?;
    // CLAWSTER_IMAGE_LAYOUT: an OCI layout `packaging/build-image` already made (rerunning this
    // test alone without building again); otherwise this process's first build.
    let layout = match std::env::var_os("CLAWSTER_IMAGE_LAYOUT") {
        Some(dir) => PathBuf::from(dir),
        None => first_build()?.0,
    };
    let digest = json(&layout.join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let host = guard_host()?;
    let result = run_checks(&host, &layout, &digest);
    let down = teardown(host);
    result.and(down)
}

fn run_checks(host: &TestHost, layout: &Path, digest: &str) -> Result<()> {
    let image = publish(host, layout, digest)?;
    let td = task_definition();
    let config = sandbox::gateway_config(task_port(&td)?).to_string();
    let image_secs = start_task(&td, host, &image, &config)?;
    check_hardened(host)?;
    sandbox::sandbox_turn(host, "openclaw", GUARD_STATE)?;
    check_refusals(host, &image)?;
    // The npm path on the same host, with the image's task stopped first.
    host.exec_ok(&["docker", "rm", "-f", "openclaw"])?;
    let npm_secs = npm_path::start_to_healthy(host, &image, &config, &health_command(&td)?)?;
    println!(
        "start to healthy, same host and run: image {image_secs:.1} s, npm path {npm_secs:.1} s (without its apt-get)"
    );
    Ok(())
}

/// The gateway's port in the task.
fn task_port(td: &Value) -> Result<u16> {
    let port = td["ContainerDefinitions"][0]["PortMappings"][0]["ContainerPort"]
        .as_u64()
        .context("the task's container port")?;
    Ok(u16::try_from(port)?)
}

/// The task's health command, as ECS runs it (the argv after "CMD").
fn health_command(td: &Value) -> Result<Vec<String>> {
    td["ContainerDefinitions"][0]["HealthCheck"]["Command"]
        .as_array()
        .context("HealthCheck")?
        .iter()
        .skip(1)
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .context("a health command word")
        })
        .collect()
}

/// Pushes the image to the test's registry (twice: the second uploads nothing), checks the
/// registry serves our manifest, logs dockerd in and pulls the image by digest; also publishes
/// the sandbox image there and pulls it. Returns the pulled reference.
fn publish(host: &TestHost, layout: &Path, digest: &str) -> Result<String> {
    let reg_dir = clawster_e2e::cache_dir().join("image-test/registry");
    let reg = start_registry(host, &reg_dir)?;
    let log = reg_dir.join("registry.log");
    let (secs, uploaded, skipped) = push(host, layout, OPENCLAW, &log)?;
    assert_eq!(skipped, 0, "the registry was empty");
    assert_eq!(uploaded, 3, "config and two layers");
    let (secs2, uploaded2, skipped2) = push(host, layout, OPENCLAW, &log)?;
    assert_eq!(uploaded2, 0, "a second push uploads no blob");
    assert!(
        skipped2 >= 2,
        "the second push found the layers present ({skipped2})"
    );
    println!("push to the local registry: {secs:.1} s; again: {secs2:.1} s, nothing uploaded");
    // The registry serves the manifest we built, byte for byte (its digest is the image's).
    let raw = in_netns(
        host,
        &[
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"),
            &format!("docker://{REGISTRY}/{REPO}:{OPENCLAW}"),
        ],
    )?;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        raw.stdout.as_bytes(),
    ));
    assert_eq!(
        format!("sha256:{sha}"),
        digest,
        "the registry's manifest is ours"
    );

    // dockerd logs in with Basic auth and pulls by digest.
    let image = format!("{REGISTRY}/{REPO}@{digest}");
    host.exec_ok(&[
        "sh",
        "-c",
        &format!("echo {REGISTRY_PASSWORD} | docker login -u {REGISTRY_USER} --password-stdin {REGISTRY}"),
    ])?;
    let start = Instant::now();
    host.exec_timeout(&["docker", "pull", &image], Duration::from_secs(600))
        .and_then(|o| {
            if o.success() {
                Ok(o)
            } else {
                bail!("docker pull: {}", o.stderr)
            }
        })?;
    println!(
        "docker pull by digest: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    sandbox::publish_sandbox_image(host, REGISTRY)?;
    drop(reg);
    Ok(image)
}

/// Runs the image with exactly the task's settings and `config` as the config secret, and waits
/// until the task's own health command (`/healthz`) succeeds; returns (and prints) start to
/// healthy in seconds.
fn start_task(td: &Value, host: &TestHost, image: &str, config: &str) -> Result<f64> {
    let args = run_args(td, image, &[("OPENCLAW_CONFIG", config)])?;
    let mut argv = vec!["docker"];
    argv.extend(args.iter().map(String::as_str));
    let start = Instant::now();
    host.exec_ok(&argv)?;
    let hc = health_command(td)?;
    let mut probe = vec!["docker", "exec", "openclaw"];
    probe.extend(hc.iter().map(String::as_str));
    let waited = wait_for("the gateway's /healthz", Duration::from_secs(120), || {
        if host
            .exec(&["docker", "inspect", "-f", "{{.State.Running}}", "openclaw"])?
            .stdout
            .trim()
            != "true"
        {
            let logs = host.exec(&["docker", "logs", "--tail", "40", "openclaw"])?;
            bail!("the container stopped: {}{}", logs.stdout, logs.stderr);
        }
        Ok(host.exec(&probe)?.success())
    });
    if let Err(e) = waited {
        let logs = host.exec(&["docker", "logs", "--tail", "60", "openclaw"])?;
        bail!("{e:#}\n{}{}", logs.stdout, logs.stderr);
    }
    let secs = start.elapsed().as_secs_f64();
    println!("image task: start to healthy (/healthz) {secs:.1} s");
    Ok(secs)
}

/// Every process uid 1000 with no capabilities and no_new_privs; /usr read-only; the state
/// directory writable; the config file the entry point wrote is the task user's, 0600.
fn check_hardened(host: &TestHost) -> Result<()> {
    let status = host.exec_ok(&[
        "docker",
        "exec",
        "openclaw",
        "sh",
        "-c",
        "for f in /proc/[0-9]*/status; do grep -E '^(Name|Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs):' $f; done",
    ])?;
    let procs = status.lines().filter(|l| l.starts_with("Name:")).count();
    assert!(procs >= 2, "init and the gateway at least: {status}");
    for l in status.lines() {
        let v: Vec<&str> = l.split_whitespace().collect();
        match v[0] {
            "Uid:" | "Gid:" => assert!(v[1..].iter().all(|x| *x == "1000"), "{l}\n{status}"),
            "CapEff:" | "CapPrm:" | "CapBnd:" => assert_eq!(v[1], "0000000000000000", "{l}"),
            "NoNewPrivs:" => assert_eq!(v[1], "1", "{l}"),
            _ => {}
        }
    }
    let w = host.exec(&["docker", "exec", "openclaw", "touch", "/usr/clawster-probe"])?;
    assert!(
        !w.success() && w.stderr.contains("Read-only file system"),
        "{w:?}"
    );
    let w = host.exec(&[
        "docker",
        "exec",
        "openclaw",
        "touch",
        "/home/openclaw/.openclaw/probe",
    ])?;
    assert!(w.success(), "the state directory is writable: {w:?}");
    let cfg = host.exec_ok(&[
        "stat",
        "-c",
        "%u %a",
        &format!("{GUARD_STATE}/openclaw.json"),
    ])?;
    assert_eq!(
        cfg.trim(),
        "1000 600",
        "the config file the entry point wrote"
    );
    Ok(())
}

/// The docker CLI in the task reaches dockerd only through the guard, as uid 1000 (the socket's
/// group is the task's gid); from inside the task, a privileged create of the sandbox image and
/// a create of an image not on the guard's list are refused, naming their rules, and leave no
/// container behind.
fn check_refusals(host: &TestHost, image: &str) -> Result<()> {
    let v = host.exec(&[
        "docker",
        "exec",
        "openclaw",
        "docker",
        "version",
        "--format",
        "{{.Server.Version}}",
    ])?;
    assert!(v.success() && !v.stdout.trim().is_empty(), "{v:?}");
    let before = host.exec_ok(&["docker", "ps", "-aq"])?;
    // Otherwise what OpenClaw sends (labels, name, hardening), so only the named rule can refuse.
    let create = |extra: &[&str], img: &str| -> Result<clawster_e2e::process::Output> {
        let mut argv = vec![
            "docker",
            "exec",
            "openclaw",
            "docker",
            "create",
            "--name",
            "openclaw-sbx-escape",
            "--label",
            "openclaw.sandbox=1",
            "--read-only",
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ];
        argv.extend_from_slice(extra);
        argv.extend([img, "true"]);
        host.exec(&argv)
    };
    for (what, out, rule) in [
        (
            "privileged",
            create(&["--privileged"], sandbox::SANDBOX_IMAGE)?,
            "create.privileged",
        ),
        ("the bot's own image", create(&[], image)?, "create.image"),
    ] {
        assert!(
            !out.success() && out.stderr.contains(&format!("rule {rule}")),
            "a {what} create from the task must be refused by rule {rule}: {out:?}"
        );
    }
    assert_eq!(
        host.exec_ok(&["docker", "ps", "-aq"])?,
        before,
        "a refused create left a container"
    );
    Ok(())
}
