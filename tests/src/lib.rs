//! Harness shared by the end-to-end suites in `tests/tests/`.
//!
//! - [`testhost`]: a real booted Debian host (systemd as PID 1, D-Bus, journald, dockerd) in a
//!   systemd-nspawn container, built once with debootstrap and cached outside the clone.
//! - [`bins`]: where the suites find the static release binaries they test.
//! - [`openclaw`]: the real OpenClaw (and Node) from the npm registry, installed once per version.
//! - [`prereq`]: the checks that make a privileged suite fail loudly, naming what is missing,
//!   instead of skipping.
//!
//! Everything here runs as root on the machine (CI does); nothing sends traffic outside the
//! machine's loopback or the containers and namespaces the tests create.

pub mod bins;
pub mod moto;
pub mod netns;
pub mod openclaw;
pub mod prereq;
pub mod process;
pub mod testhost;

/// The cache directory shared by test runs: rootfs images, venvs, per-boot work directories.
/// `$CLAWSTER_CACHE`, default `/var/tmp/clawster`.
pub fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("CLAWSTER_CACHE")
        .map(Into::into)
        .unwrap_or_else(|| "/var/tmp/clawster".into())
}

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
