//! The package manager boundary: finding tools on the standard PATH, running dnf or apt-get as
//! argv (never a shell) with a deadline, and the trait that lets tests put a fake in its place.
//!
//! Callers: bootstrap's prerequisites ([`crate::bootstrap::prereqs`]) and the maintenance window.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clawster_core::fs::HostRoot;

/// A tool and the package that provides it on Debian/Ubuntu and on Amazon Linux.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The command.
    pub name: &'static str,
    /// Debian/Ubuntu package.
    pub apt: &'static str,
    /// Amazon Linux / Fedora package.
    pub dnf: &'static str,
}

pub const BIN_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Where `tool` is under `root`, if anywhere on the standard PATH.
pub fn find_tool(root: &HostRoot, tool: &str) -> Option<PathBuf> {
    BIN_DIRS
        .iter()
        .map(|d| root.path(d).join(tool))
        .find(|p| p.is_file())
}

/// The package manager boundary.
pub trait PackageManager: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> String;
    /// Package names for these tools.
    fn packages(&self, tools: &[Tool]) -> Vec<String>;
    /// Installs the packages, giving up after `timeout`.
    fn install(&self, packages: &[String], timeout: Duration) -> Result<(), String>;
}

/// Which command-line package manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// `dnf install -y -- PKGS`
    Dnf,
    /// `apt-get install -y --no-install-recommends -- PKGS` (with `apt-get update` on failure)
    Apt,
    /// Another program called as `PROGRAM install -y -- PKGS` (benchmarks and tests).
    Custom,
}

/// A package manager run as a child process (argv only, never a shell).
#[derive(Debug, Clone)]
pub struct CommandPackageManager {
    /// The program.
    pub program: PathBuf,
    /// How to call it.
    pub flavor: Flavor,
}

impl CommandPackageManager {
    /// The host's dnf or apt-get, if either exists.
    pub fn detect() -> Option<Self> {
        let root = HostRoot::new("/");
        if let Some(p) = find_tool(&root, "dnf") {
            return Some(Self {
                program: p,
                flavor: Flavor::Dnf,
            });
        }
        find_tool(&root, "apt-get").map(|p| Self {
            program: p,
            flavor: Flavor::Apt,
        })
    }
}

/// Runs a command with a deadline; kills it when the deadline passes.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<(), String> {
    let shown = format!("{:?}", cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{shown}: {status}")),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown}: still running after {timeout:?}, killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    }
}

impl PackageManager for CommandPackageManager {
    fn name(&self) -> String {
        self.program.display().to_string()
    }

    fn packages(&self, tools: &[Tool]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in tools {
            let p = if self.flavor == Flavor::Dnf {
                t.dnf
            } else {
                t.apt
            };
            if !out.iter().any(|x| x == p) {
                out.push(p.to_string());
            }
        }
        out
    }

    fn install(&self, packages: &[String], timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let install = |extra: &[&str]| {
            let mut c = Command::new(&self.program);
            c.arg("install")
                .arg("-y")
                .args(extra)
                .arg("--")
                .args(packages);
            c.env("DEBIAN_FRONTEND", "noninteractive");
            run_bounded(&mut c, timeout.saturating_sub(start.elapsed()))
        };
        match self.flavor {
            Flavor::Dnf => install(&["--setopt=install_weak_deps=False"]),
            Flavor::Custom => install(&[]),
            Flavor::Apt => install(&["--no-install-recommends"]).or_else(|first| {
                // A fresh image may have no package lists yet.
                let mut up = Command::new(&self.program);
                up.arg("update").env("DEBIAN_FRONTEND", "noninteractive");
                run_bounded(&mut up, timeout.saturating_sub(start.elapsed()))
                    .and_then(|()| install(&["--no-install-recommends"]))
                    .map_err(|second| format!("{first}; after apt-get update: {second}"))
            }),
        }
    }
}

/// Checks a custom package manager path given on the command line.
pub fn custom(program: &Path) -> CommandPackageManager {
    CommandPackageManager {
        program: program.to_path_buf(),
        flavor: Flavor::Custom,
    }
}
