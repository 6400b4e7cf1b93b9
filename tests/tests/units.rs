//! Every systemd unit we ship (`systemd/`) passes `systemd-analyze verify` on a booted host with
//! our binaries installed, and is sandboxed: its `systemd-analyze security` exposure is reported
//! and must stay below the score of the same service with no sandboxing at all, measured in the
//! same run.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clawster_e2e::bins::{dist_dir, HOST_TARGET};
use clawster_e2e::prereq::require_root;
use clawster_e2e::testhost::{Layout, TestHost};

/// The unit files and drop-ins in `systemd/`, as (path in the repo, path on the host).
fn shipped_units() -> Result<Vec<(PathBuf, String)>> {
    let dir = clawster_e2e::workspace_root().join("systemd");
    let mut out = Vec::new();
    collect(&dir, &dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(base, &path, out)?;
        } else if is_unit_or_dropin(&path) {
            let rel = path.strip_prefix(base)?.to_string_lossy().into_owned();
            out.push((path, format!("/etc/systemd/system/{rel}")));
        }
    }
    Ok(())
}

fn is_unit_or_dropin(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("service" | "socket" | "timer" | "path" | "target" | "conf")
    )
}

/// The unit a file configures: itself, or for a drop-in `x.service.d/y.conf`, `x.service`.
fn unit_name(host_path: &str) -> String {
    let p = Path::new(host_path);
    if p.extension().is_some_and(|e| e == "conf") {
        let parent = p
            .parent()
            .and_then(|d| d.file_name())
            .unwrap_or_default()
            .to_string_lossy();
        parent.trim_end_matches(".d").to_string()
    } else {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }
}

fn exposure(host: &TestHost, unit: &str) -> Result<f64> {
    let out = host.exec(&["systemd-analyze", "security", "--no-pager", unit])?;
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .with_context(|| format!("no exposure score for {unit}: {out:?}"))?;
    // "→ Overall exposure level for x.service: 2.1 OK :-)"
    let score = line
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .with_context(|| format!("unparsable exposure line {line:?}"))?;
    Ok(score)
}

#[test]
fn shipped_units_verify_and_are_sandboxed() -> Result<()> {
    require_root("units")?;
    let units = shipped_units()?;
    if units.is_empty() {
        bail!("systemd/ holds no unit files: nothing we ship would be checked");
    }
    let host = TestHost::boot(Layout::MergedUsr)?;
    // Units start our binaries from /usr/local/bin; verify checks that ExecStart exists.
    let bin_dir = dist_dir().join(HOST_TARGET);
    for entry in fs::read_dir(&bin_dir).with_context(|| {
        format!(
            "read {} (build with packaging/build-release)",
            bin_dir.display()
        )
    })? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        host.copy_in(&path, &format!("/usr/local/bin/{name}"), 0o755)?;
    }
    // openclaw-gateway.service starts the OpenClaw CLI from its npm prefix; verify only needs the
    // path to be executable (the real gateway runs under the baseline suite, tests/tests/baseline.rs).
    host.write_file(
        "/opt/openclaw/bin/openclaw",
        b"#!/bin/sh\necho 'placeholder for the units suite' >&2\nexit 1\n",
        0o755,
    )?;
    // The ECS agent's unit is not in the test image (it comes with the ECS-optimized AMI); a
    // stand-in lets the state drop-in we ship for it be verified against a real unit.
    host.write_file(
        "/etc/systemd/system/ecs.service",
        b"[Unit]\nDescription=stand-in for the ECS agent (not under test)\n[Service]\nExecStart=/bin/sleep infinity\n",
        0o644,
    )?;
    for (src, dest) in &units {
        host.copy_in(src, dest, 0o644)?;
    }
    host.exec_ok(&["systemctl", "daemon-reload"])?;

    // Baseline: a service with no sandboxing at all, in the same run.
    host.write_file(
        "/etc/systemd/system/clawster-baseline.service",
        b"[Unit]\nDescription=unsandboxed baseline\n[Service]\nExecStart=/bin/sleep infinity\n",
        0o644,
    )?;
    host.exec_ok(&["systemctl", "daemon-reload"])?;
    let baseline = exposure(&host, "clawster-baseline.service")?;

    let mut names: Vec<String> = units.iter().map(|(_, d)| unit_name(d)).collect();
    names.sort();
    names.dedup();
    for unit in &names {
        let out = host.exec(&["systemd-analyze", "verify", unit])?;
        // verify prints warnings for units of the image we do not own; only ours must be clean.
        let ours: Vec<&str> = out
            .stderr
            .lines()
            .chain(out.stdout.lines())
            .filter(|l| units.iter().any(|(_, d)| l.contains(d.as_str())))
            .collect();
        assert!(
            out.success() && ours.is_empty(),
            "systemd-analyze verify {unit}: {out:?}"
        );
        if unit.ends_with(".service") && units.iter().any(|(_, d)| d.ends_with(unit.as_str())) {
            let score = exposure(&host, unit)?;
            eprintln!("units: {unit}: exposure {score:.1} (unsandboxed baseline {baseline:.1})");
            assert!(
                score < baseline,
                "{unit} is not sandboxed: exposure {score} vs baseline {baseline}"
            );
        } else {
            eprintln!("units: {unit}: verified");
        }
    }
    host.shutdown()
}

#[test]
fn unit_names_of_dropins() {
    assert_eq!(
        unit_name("/etc/systemd/system/docker.service.d/10-sysbox.conf"),
        "docker.service"
    );
    assert_eq!(
        unit_name("/etc/systemd/system/clawster-nat-agent.service"),
        "clawster-nat-agent.service"
    );
}
