//! Runtime prerequisites of Sysbox: sysbox-mgr refuses to start without `rsync`, `modprobe` and
//! `iptables` on PATH, and sysbox-fs execs `fusermount`. Missing ones are installed with the host's
//! package manager (dnf or apt-get), bounded in time. Bootstrap runs this on a thread while it
//! downloads and extracts, so the slow package manager does not add to the critical path.
//!
//! Failure policy: a tool still missing afterwards is reported `degraded` (the files are all in
//! place; Sysbox starts once the tool is there), never fatal for the rest of bootstrap.

use std::time::{Duration, Instant};

use clawster_core::fs::HostRoot;

use crate::host::packages::{find_tool, PackageManager, Tool};

/// What Sysbox needs.
pub const TOOLS: [Tool; 4] = [
    Tool {
        name: "rsync",
        apt: "rsync",
        dnf: "rsync",
    },
    Tool {
        name: "modprobe",
        apt: "kmod",
        dnf: "kmod",
    },
    Tool {
        name: "iptables",
        apt: "iptables",
        dnf: "iptables-nft",
    },
    Tool {
        name: "fusermount",
        apt: "fuse",
        dnf: "fuse",
    },
];

/// The tools missing under `root`.
pub fn missing(root: &HostRoot) -> Vec<Tool> {
    TOOLS
        .iter()
        .copied()
        .filter(|t| find_tool(root, t.name).is_none())
        .collect()
}

/// The result of the prerequisite step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrereqOutcome {
    /// Tools that were missing at the start.
    pub missing_before: Vec<&'static str>,
    /// Packages asked for.
    pub installed: Vec<String>,
    /// Tools still missing at the end.
    pub missing_after: Vec<&'static str>,
    /// The package manager's error, if it failed.
    pub error: Option<String>,
    /// Time spent.
    pub elapsed: Duration,
}

/// Checks the tools and installs the missing ones (live hosts only).
pub fn ensure(
    root: &HostRoot,
    pm: Option<&dyn PackageManager>,
    timeout: Duration,
) -> PrereqOutcome {
    let start = Instant::now();
    let before = missing(root);
    let mut out = PrereqOutcome {
        missing_before: before.iter().map(|t| t.name).collect(),
        installed: Vec::new(),
        missing_after: Vec::new(),
        error: None,
        elapsed: Duration::ZERO,
    };
    if !before.is_empty() {
        match pm {
            Some(pm) => {
                let pkgs = pm.packages(&before);
                if let Err(e) = pm.install(&pkgs, timeout) {
                    out.error = Some(format!("{}: {e}", pm.name()));
                }
                out.installed = pkgs;
            }
            None => out.error = Some("no package manager (dnf or apt-get) found".into()),
        }
        out.missing_after = missing(root).iter().map(|t| t.name).collect();
    }
    out.elapsed = start.elapsed();
    out
}
