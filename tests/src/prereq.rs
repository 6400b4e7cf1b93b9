//! Preconditions of privileged suites.
//!
//! A privileged suite that cannot run must fail, not skip: CI runs as root with everything
//! installed by `tests/setup-host`, so a missing piece there is a defect to see, not to hide.

use anyhow::{bail, Result};

/// Fails unless the process runs as root.
pub fn require_root(suite: &str) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "the {suite} suite is privileged and must run as root (CI does); \
             run `sudo tests/run` or `sudo -E cargo test -p clawster-e2e`"
        );
    }
    Ok(())
}

/// Fails unless every named program is on PATH, naming the missing ones and how to get them.
pub fn require_tools(suite: &str, tools: &[&str]) -> Result<()> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the {suite} suite needs {} on PATH; install the test prerequisites with `tests/setup-host`",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The full path of a program found on PATH.
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_is_named() {
        let err = require_tools("demo", &["sh", "clawster-no-such-tool"]).expect_err("missing");
        let msg = err.to_string();
        assert!(
            msg.contains("clawster-no-such-tool") && !msg.contains("sh,"),
            "{msg}"
        );
        assert!(msg.contains("tests/setup-host"), "{msg}");
        assert!(which("sh").is_some());
    }
}
