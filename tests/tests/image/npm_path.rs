//! The comparison issue 20 asks for: start to healthy of the npm path (what the bot task did
//! before the prebuilt image: Node, then npm installing OpenClaw's 330 packages at every start,
//! then the gateway), measured on the same host in the same run as the image's.
//!
//! The test host has no internet, so npm installs from a local cache only: the npm cache the
//! image build filled (`$CLAWSTER_CACHE/image/npm-cache`, every tarball checked against the
//! lockfile's integrity) with `--offline`, from the same committed lockfile, with the pinned npm
//! of `packaging/image/node.lock` (from the build's verified download cache) run by the image's
//! Node 24. The container is the bot image used only as a Node 24 on
//! Debian bookworm base (its preinstalled OpenClaw is not used), as root with a writable root, as
//! the old task ran. What the old path also did and this cannot offline, `apt-get update` and
//! `apt-get install git ca-certificates`, is not in the figure: the npm path's real start is
//! slower than printed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clawster_e2e::process::{run_ok, wait_for};
use clawster_e2e::testhost::TestHost;

const NAME: &str = "openclaw-npm-path";

/// The pinned npm tarball in the image build's download cache (`packaging/image/lib.sh`
/// `fetch_verified` names a download by the SHA256 of its pinned integrity, after checking it).
fn pinned_npm() -> Result<std::path::PathBuf> {
    let lock = clawster_e2e::workspace_root().join("packaging/image/node.lock");
    let text =
        std::fs::read_to_string(&lock).with_context(|| format!("read {}", lock.display()))?;
    let integrity = text
        .lines()
        .find(|l| l.starts_with("npm all "))
        .and_then(|l| l.split_whitespace().nth(4))
        .with_context(|| format!("{} pins no npm", lock.display()))?;
    let key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(integrity.as_bytes()));
    let path = clawster_e2e::cache_dir()
        .join("image/downloads")
        .join(&key[..40]);
    if !path.is_file() {
        bail!(
            "the pinned npm is not in {} (packaging/build-image downloads it)",
            path.display()
        );
    }
    Ok(path)
}

/// Runs the npm path in a container of `image` and returns its start to healthy in seconds,
/// `health` being the task's health command (argv after "CMD").
pub fn start_to_healthy(
    host: &TestHost,
    image: &str,
    config: &str,
    health: &[String],
) -> Result<f64> {
    let cache = clawster_e2e::cache_dir().join("image/npm-cache");
    if !cache.join("_cacache").is_dir() {
        bail!(
            "{} has no npm cache: packaging/build-image fills it (the suite's build does)",
            cache.display()
        );
    }
    let npm = pinned_npm()?;
    // Into the test host (its own copies: npm writes to its cache even offline).
    let copy = |src: &Path, dest: &str| -> Result<()> {
        let d = host.path(dest);
        std::fs::create_dir_all(&d)?;
        run_ok(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", src.display()))
                .arg(&d),
            Duration::from_secs(300),
        )
        .map(|_| ())
    };
    let npm_dir = host.path("/srv/npm-path/npm");
    std::fs::create_dir_all(&npm_dir)?;
    run_ok(
        std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&npm)
            .arg("-C")
            .arg(&npm_dir)
            .args(["--strip-components=1", "--no-same-owner"]),
        Duration::from_secs(120),
    )?;
    copy(&cache, "/srv/npm-path/cache")?;
    let lock = clawster_e2e::workspace_root().join("packaging/image/openclaw");
    for f in ["package.json", "package-lock.json"] {
        host.copy_in(&lock.join(f), &format!("/srv/npm-path/app/{f}"), 0o644)?;
    }
    let script = "set -e; mkdir -p /tmp/app /state; cp /src/app/package.json /src/app/package-lock.json /tmp/app/; \
        cd /tmp/app; node /src/npm/bin/npm-cli.js ci --offline --cache /src/cache --ignore-scripts --omit=dev --no-audit --no-fund; \
        node node_modules/openclaw/scripts/postinstall-bundled-plugins.mjs; \
        printf '%s' \"$OPENCLAW_CONFIG\" > /state/openclaw.json; unset OPENCLAW_CONFIG; \
        exec node node_modules/openclaw/openclaw.mjs gateway --port 18789";
    let config_env = format!("OPENCLAW_CONFIG={config}");
    let start = Instant::now();
    host.exec_ok(&[
        "docker",
        "run",
        "-d",
        "--name",
        NAME,
        "--user",
        "0:0",
        "--init",
        "-e",
        "OPENCLAW_STATE_DIR=/state",
        "-e",
        "HOME=/root",
        "-e",
        &config_env,
        "-v",
        "/srv/npm-path:/src",
        "--entrypoint",
        "sh",
        image,
        "-c",
        script,
    ])?;
    let mut probe = vec!["docker", "exec", NAME];
    probe.extend(health.iter().map(String::as_str));
    let waited = wait_for("the npm path's /healthz", Duration::from_secs(600), || {
        let running = host.exec(&["docker", "inspect", "-f", "{{.State.Running}}", NAME])?;
        if running.stdout.trim() != "true" {
            let logs = host.exec(&["docker", "logs", "--tail", "40", NAME])?;
            bail!(
                "the npm path's container stopped: {}{}",
                logs.stdout,
                logs.stderr
            );
        }
        Ok(host.exec(&probe)?.success())
    });
    let secs = start.elapsed().as_secs_f64();
    let logs = host.exec(&["docker", "logs", NAME])?;
    waited.with_context(|| format!("{}{}", logs.stdout, logs.stderr))?;
    let added = logs
        .stdout
        .lines()
        .chain(logs.stderr.lines())
        .find(|l| l.starts_with("added "))
        .unwrap_or("npm printed no summary")
        .to_string();
    assert!(
        added.contains(" packages"),
        "npm installed packages: {added}"
    );
    host.exec_ok(&["docker", "rm", "-f", NAME])?;
    println!("npm path ({added}): start to healthy (/healthz) {secs:.1} s");
    Ok(secs)
}
