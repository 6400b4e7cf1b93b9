//! Where suites find the binaries under test.
//!
//! The suites test the static release binaries that ship, not debug builds: `packaging/build-release`
//! writes them to `dist/<target>/<name>` and `tests/run` builds them before the suites run.
//! Lookup order for binary `clawster-agent`:
//! 1. `$CLAWSTER_AGENT_BIN` (the name upper-cased without the `clawster-` prefix, `-` → `_`);
//! 2. `$CLAWSTER_DIST/x86_64-unknown-linux-musl/clawster-agent`;
//! 3. `<workspace>/dist/x86_64-unknown-linux-musl/clawster-agent`.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// The target triple of the host binaries the suites run on this (x86_64) machine.
pub const HOST_TARGET: &str = "x86_64-unknown-linux-musl";

/// The environment variable that overrides the path of `name`.
pub fn override_var(name: &str) -> String {
    let short = name.strip_prefix("clawster-").unwrap_or(name);
    format!(
        "CLAWSTER_{}_BIN",
        short.to_ascii_uppercase().replace('-', "_")
    )
}

/// The dist directory: `$CLAWSTER_DIST` or `<workspace>/dist`.
pub fn dist_dir() -> PathBuf {
    std::env::var_os("CLAWSTER_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("dist"))
}

/// The static x86_64 musl binary `name`, or an error that says how to build it.
pub fn host_binary(name: &str) -> Result<PathBuf> {
    dist_binary(HOST_TARGET, name)
}

/// The release `clawsterctl` for this machine: `$CLAWSTER_CLAWSTERCTL_BIN`, or the `clawsterctl`
/// that `packaging/build-release` built for the build machine's own target (its entry in
/// `dist/manifest.json`), or an error that says how to build it.
pub fn ctl_binary() -> Result<PathBuf> {
    let name = "clawsterctl";
    if std::env::var_os(override_var(name)).is_some() {
        return dist_binary("", name);
    }
    let manifest = dist_dir().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (build the release binaries with `packaging/build-release`)",
            manifest.display()
        )
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", manifest.display()))?;
    let target = v["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == name)
        .and_then(|a| a["target"].as_str())
        .ok_or_else(|| anyhow::anyhow!("{} lists no {name}", manifest.display()))?;
    dist_binary(target, name)
}

fn dist_binary(target: &str, name: &str) -> Result<PathBuf> {
    let var = override_var(name);
    let path = match std::env::var_os(&var) {
        Some(p) => PathBuf::from(p),
        None => dist_dir().join(target).join(name),
    };
    if !path.is_file() {
        bail!(
            "{} not found at {} (set {var}, or build the release binaries with `packaging/build-release`; \
             `tests/run` does that before the end-to-end suites)",
            name,
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_variable_names() {
        assert_eq!(override_var("clawster-agent"), "CLAWSTER_AGENT_BIN");
        assert_eq!(override_var("clawster-nat-agent"), "CLAWSTER_NAT_AGENT_BIN");
        assert_eq!(override_var("clawsterctl"), "CLAWSTER_CLAWSTERCTL_BIN");
    }

    #[test]
    fn missing_binary_says_how_to_build_it() {
        let err = host_binary("clawster-no-such-binary").expect_err("absent");
        assert!(err.to_string().contains("packaging/build-release"), "{err}");
    }
}
