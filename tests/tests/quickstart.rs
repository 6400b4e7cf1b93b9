//! The README's quick start on a toolchain that lacks the musl targets, the way a fresh machine has it.
//!
//! rustup installs the toolchain pinned in rust-toolchain.toml but not the targets that file names
//! (and nothing at all with `RUSTUP_AUTO_INSTALL=0`), so `packaging/build-release` once failed on a
//! fresh machine with "can't find crate for core" while CI passed, because CI ran the test setup
//! first. This suite makes a private rustup home holding only a minimal toolchain of the pinned
//! version, checks that the musl targets are really absent, then runs the release build's
//! prerequisite step (`packaging/setup-build`, which `build-release` runs first) against it and
//! proves with a real static build for both musl targets, linked by the repository's cargo config,
//! that the step installed what the build needs.
//!
//! It downloads a minimal toolchain from rustup's distribution server (the same server every
//! rustup install uses), so it costs about a minute.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use clawster_e2e::process::{run, run_ok};
use clawster_e2e::{prereq, workspace_root};

const MUSL_TARGETS: [&str; 2] = ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];

fn pinned_channel(root: &Path) -> Result<String> {
    let toml = std::fs::read_to_string(root.join("rust-toolchain.toml"))?;
    toml.lines()
        .find_map(|l| {
            let v = l.strip_prefix("channel")?.trim_start().strip_prefix('=')?;
            Some(v.trim().trim_matches('"').to_string())
        })
        .context("rust-toolchain.toml names no channel")
}

/// A command that sees only the private rustup home.
fn rustup_cmd(home: &Path, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("RUSTUP_HOME", home)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        .env("RUSTUP_AUTO_INSTALL", "0");
    c
}

#[test]
fn release_prerequisites_install_the_musl_targets_on_a_toolchain_without_them() -> Result<()> {
    prereq::require_tools("quickstart", &["rustup", "cargo"])?;
    let repo = workspace_root();
    let channel = pinned_channel(&repo)?;
    let home = tempfile::Builder::new()
        .prefix("clawster-rustup-")
        .tempdir_in(clawster_e2e::cache_dir())?;

    // A fresh machine's toolchain: the pinned version, minimal profile, no extra targets.
    run_ok(
        rustup_cmd(home.path(), "rustup").args([
            "toolchain",
            "install",
            &channel,
            "--profile",
            "minimal",
            "--no-self-update",
        ]),
        Duration::from_secs(600),
    )
    .context("installing a minimal toolchain into a private rustup home")?;
    let installed = run_ok(
        rustup_cmd(home.path(), "rustup").args([
            "target",
            "list",
            "--installed",
            "--toolchain",
            &channel,
        ]),
        Duration::from_secs(60),
    )?;
    for t in MUSL_TARGETS {
        ensure!(
            !installed.stdout.lines().any(|l| l.trim() == t),
            "precondition: the fresh toolchain already has {t}: {}",
            installed.stdout
        );
    }

    // --check names what is missing and fails.
    let check = run(
        rustup_cmd(home.path(), "bash")
            .arg(repo.join("packaging/setup-build"))
            .arg("--check"),
        Duration::from_secs(120),
    )?;
    ensure!(
        !check.success(),
        "setup-build --check passed on a toolchain without the musl targets: {check:?}"
    );
    for t in MUSL_TARGETS {
        ensure!(
            check.stderr.contains(&format!("target {t}")),
            "setup-build --check did not name {t}: {}",
            check.stderr
        );
    }

    // The prerequisite step installs them and says so.
    let setup = run_ok(
        rustup_cmd(home.path(), "bash").arg(repo.join("packaging/setup-build")),
        Duration::from_secs(600),
    )?;
    ensure!(
        setup.stderr.contains("installing Rust"),
        "setup-build did not say what it installs: {}",
        setup.stderr
    );
    run_ok(
        rustup_cmd(home.path(), "bash")
            .arg(repo.join("packaging/setup-build"))
            .arg("--check"),
        Duration::from_secs(120),
    )
    .context("setup-build --check after installing")?;

    // And a static build for both targets works with the repository's cargo config (rust-lld).
    let krate = tempfile::tempdir()?;
    std::fs::create_dir_all(krate.path().join("src"))?;
    std::fs::create_dir_all(krate.path().join(".cargo"))?;
    std::fs::copy(
        repo.join(".cargo/config.toml"),
        krate.path().join(".cargo/config.toml"),
    )?;
    std::fs::write(
        krate.path().join("Cargo.toml"),
        "[package]\nname = \"quickstart-probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )?;
    std::fs::write(
        krate.path().join("src/main.rs"),
        "fn main() { println!(\"static {}\", std::env::consts::ARCH); }\n",
    )?;
    for t in MUSL_TARGETS {
        run_ok(
            rustup_cmd(home.path(), "cargo")
                .current_dir(krate.path())
                .env("RUSTUP_TOOLCHAIN", &channel)
                .args(["build", "--offline", "--release", "--target", t]),
            Duration::from_secs(300),
        )
        .with_context(|| format!("building for {t} with the freshly installed target"))?;
    }
    let x86 = krate
        .path()
        .join("target/x86_64-unknown-linux-musl/release/quickstart-probe");
    let out = run_ok(&mut Command::new(&x86), Duration::from_secs(30))?;
    ensure!(out.stdout.trim() == "static x86_64", "{out:?}");
    let arm = krate
        .path()
        .join("target/aarch64-unknown-linux-musl/release/quickstart-probe");
    let out = run_ok(
        Command::new("qemu-aarch64-static").arg(&arm),
        Duration::from_secs(30),
    )?;
    ensure!(out.stdout.trim() == "static aarch64", "{out:?}");
    Ok(())
}
