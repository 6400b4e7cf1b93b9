//! Smoke test of the foundation: boot a real systemd host (both /usr layouts), run the freshly
//! built static `clawster-agent` inside it, and find its structured record in the journal.

use std::time::Duration;

use clawster_e2e::bins::host_binary;
use clawster_e2e::prereq::require_root;
use clawster_e2e::process::wait_for;
use clawster_e2e::testhost::{Layout, TestHost};

fn smoke(layout: Layout) -> anyhow::Result<()> {
    require_root("smoke")?;
    let agent = host_binary("clawster-agent")?;
    let host = TestHost::boot(layout)?;
    eprintln!(
        "smoke: booted {} ({:?}), systemd leader pid {}",
        host.name(),
        layout,
        host.leader_pid()
    );

    // The host really is a booted systemd with a system bus and the layout we asked for.
    assert_eq!(host.exec_ok(&["cat", "/proc/1/comm"])?.trim(), "systemd");
    assert!(host
        .exec_ok(&["busctl", "--system", "list", "--no-pager"])?
        .contains("org.freedesktop.systemd1"));
    let lib_is_link = host
        .root_dir()
        .join("lib")
        .symlink_metadata()?
        .file_type()
        .is_symlink();
    assert_eq!(lib_is_link, layout == Layout::MergedUsr, "/lib layout");

    host.copy_in(&agent, "/usr/local/bin/clawster-agent", 0o755)?;
    let version = host.exec_ok(&["clawster-agent", "--version"])?;
    assert_eq!(
        version.trim(),
        format!("clawster-agent {}", env!("CARGO_PKG_VERSION"))
    );

    let out = host.exec(&["clawster-agent", "log-test"])?;
    assert!(out.success(), "log-test failed: {out:?}");
    assert!(
        out.stdout.contains("journal: yes"),
        "agent did not find the journal: {out:?}"
    );

    let record = host.wait_journal(&["-t", "clawster-agent"], Duration::from_secs(10), |r| {
        r["CLAWSTER_CHECK"] == "agent.logging"
    })?;
    eprintln!("smoke: journal record {record}");
    assert_eq!(record["SYSLOG_IDENTIFIER"], "clawster-agent");
    assert_eq!(record["CLAWSTER_STATUS"], "ok");
    assert_eq!(record["PRIORITY"], "6", "info level");
    assert!(record["MESSAGE"]
        .as_str()
        .unwrap_or_default()
        .contains("log test"));

    // Docker from the image runs under systemd inside the host.
    wait_for("docker.service active", Duration::from_secs(60), || {
        Ok(host
            .exec(&["systemctl", "is-active", "docker.service"])?
            .stdout
            .trim()
            == "active")
    })?;
    let info = host.exec_ok(&["docker", "info", "--format", "{{json .Runtimes}}"])?;
    assert!(info.contains("runc"), "docker info runtimes: {info}");
    host.shutdown()
}

#[test]
fn smoke_merged_usr() -> anyhow::Result<()> {
    smoke(Layout::MergedUsr)
}

#[test]
fn smoke_split_usr() -> anyhow::Result<()> {
    smoke(Layout::SplitUsr)
}
