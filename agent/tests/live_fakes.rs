//! The live-host path of bootstrap with test doubles at the process boundaries (systemd over
//! D-Bus, package manager, dockerd) and a fake /proc/sys: call sequence (one batched enable and
//! reload, no reload when systemd already sees the files, nothing started before the binaries
//! are in place), non-blocking start, never restarting an active Sysbox, SIGHUP only when
//! daemon.json changed, prerequisites installed concurrently with the package work.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

/// bootstrap's one enable: the Sysbox units and both sockets.
const ENABLE_ALL: &str = "EnableUnitFiles sysbox.service,sysbox-mgr.service,sysbox-fs.service,\
                          clawster-window.socket,clawster-docker-guard.socket";

use clawster_agent::bootstrap::{
    self, docker::Dockerd, download::HttpFetcher, Arch, Boundaries, Options, Source,
};
use clawster_agent::host::packages::{PackageManager, Tool};
use clawster_agent::host::systemd::Systemd;
use clawster_core::fs::HostRoot;
use clawster_core::logging::Status;
use common::*;

#[derive(Default)]
struct FakeSystemd {
    calls: Mutex<Vec<String>>,
    /// Units started so far (they stay active).
    active: Mutex<Vec<String>>,
    /// A unit whose file changed on disk after the manager loaded it (a killed run's leftovers).
    stale: Mutex<Option<String>>,
    /// A binary that must be in place before anything is started.
    binary: Option<std::path::PathBuf>,
}

impl Systemd for FakeSystemd {
    fn reload(&self) -> Result<(), String> {
        self.calls.lock().unwrap().push("Reload".into());
        Ok(())
    }
    fn enable(&self, units: &[&str]) -> Result<Vec<String>, String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("EnableUnitFiles {}", units.join(",")));
        // Symlinks are made on the first enable only (the units are active from then on).
        Ok(if self.active.lock().unwrap().is_empty() {
            units
                .iter()
                .map(|u| {
                    format!("symlink /etc/systemd/system/x.wants/{u} -> /etc/systemd/system/{u}")
                })
                .collect()
        } else {
            vec![]
        })
    }
    fn start_no_block(&self, unit: &str) -> Result<String, String> {
        let early = self.binary.as_ref().is_some_and(|b| !b.exists());
        self.calls.lock().unwrap().push(format!(
            "StartUnit {unit} replace{}",
            if early { " BEFORE THE BINARIES" } else { "" }
        ));
        self.active.lock().unwrap().push(unit.to_string());
        Ok("/org/freedesktop/systemd1/job/1".into())
    }
    fn active_state(&self, unit: &str) -> Result<String, String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("ActiveState {unit}"));
        Ok(if self.active.lock().unwrap().iter().any(|u| u == unit) {
            "active".into()
        } else {
            "inactive".into()
        })
    }
    fn unit_file_state(&self, _unit: &str) -> Result<String, String> {
        Ok("enabled".into())
    }
    fn need_daemon_reload(&self, unit: &str) -> Result<bool, String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("NeedDaemonReload {unit}"));
        Ok(self.stale.lock().unwrap().as_deref() == Some(unit))
    }
    fn wants(&self, unit: &str) -> Result<Vec<String>, String> {
        self.calls.lock().unwrap().push(format!("Wants {unit}"));
        // What the manager shows once the batch was enabled and reloaded.
        Ok(match unit {
            "multi-user.target" => vec!["sysbox.service".into()],
            "sysbox.service" => vec!["sysbox-mgr.service".into(), "sysbox-fs.service".into()],
            "sockets.target" => vec![
                "clawster-window.socket".into(),
                "clawster-docker-guard.socket".into(),
            ],
            _ => vec![],
        })
    }
}

#[derive(Default)]
struct FakeDockerd {
    hups: Mutex<u32>,
}

impl Dockerd for FakeDockerd {
    fn reload(&self) -> Result<Option<i32>, String> {
        *self.hups.lock().unwrap() += 1;
        Ok(Some(4242))
    }
}

/// A slow package manager that "installs" rsync into the root once the Sysbox binaries are in
/// place, and notes whether they got there while it was running (i.e. the work overlapped).
struct SlowPm {
    root: std::path::PathBuf,
    overlapped: Mutex<Option<bool>>,
    asked: Mutex<Vec<String>>,
}

impl PackageManager for SlowPm {
    fn name(&self) -> String {
        "slow-fake".into()
    }
    fn packages(&self, tools: &[Tool]) -> Vec<String> {
        tools.iter().map(|t| t.apt.to_string()).collect()
    }
    fn install(&self, packages: &[String], _timeout: Duration) -> Result<(), String> {
        self.asked.lock().unwrap().extend(packages.iter().cloned());
        // Waits (bounded) until the package work has put the binaries in place: with a
        // sequential implementation they never appear while the package manager runs.
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while !self.root.join("usr/bin/sysbox-runc").exists() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        *self.overlapped.lock().unwrap() = Some(self.root.join("usr/bin/sysbox-runc").exists());
        std::fs::write(self.root.join("usr/bin/rsync"), b"#!/bin/sh\n").unwrap();
        Ok(())
    }
}

fn fake_proc(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("proc-sys");
    for (k, v) in [
        ("fs/inotify/max_queued_events", "16384"),
        ("fs/inotify/max_user_watches", "8192"),
        ("fs/inotify/max_user_instances", "128"),
        ("kernel/keys/maxkeys", "200"),
        ("kernel/keys/maxbytes", "20000"),
        ("kernel/pid_max", "9000000"),
        ("user/max_user_namespaces", "0"),
    ] {
        let f = p.join(k);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, format!("{v}\n")).unwrap();
    }
    p
}

#[test]
fn live_run_talks_to_systemd_without_blocking_and_overlaps_the_package_manager() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    skeleton_root(&root);
    std::fs::remove_file(root.join("usr/bin/rsync")).unwrap();
    // Pretend useradd is absent so the user is added by file edit inside the temp root.
    let bytes = deb(&sysbox_payload(4 << 20), "xz");
    let debp = dir.path().join("p.deb");
    std::fs::write(&debp, &bytes).unwrap();

    let mut opts = Options::new(HostRoot::new(&root), Arch::Amd64);
    opts.live = true;
    opts.proc_sys = fake_proc(dir.path());
    opts.source = Source::File(debp);
    opts.sha256 = Some(sha256_hex(&bytes));
    opts.cluster = Some("live".into());
    let sd = FakeSystemd {
        binary: Some(root.join("usr/bin/sysbox-runc")),
        ..FakeSystemd::default()
    };
    let dockerd = FakeDockerd::default();
    let pm = SlowPm {
        root: root.clone(),
        overlapped: Mutex::new(None),
        asked: Mutex::new(vec![]),
    };
    let fetcher = HttpFetcher::default();
    let b = Boundaries {
        fetcher: &fetcher,
        systemd: Ok(&sd),
        packages: Some(&pm),
        dockerd: &dockerd,
    };

    let report = bootstrap::run(&opts, &b).unwrap();
    assert!(!report.failed(), "{report:#?}");
    assert!(report.complete);
    assert_eq!(*pm.asked.lock().unwrap(), vec!["rsync".to_string()]);
    assert_eq!(
        *pm.overlapped.lock().unwrap(),
        Some(true),
        "package manager did not overlap with the package work"
    );
    let prereq = report
        .steps
        .iter()
        .find(|s| s.check == "sysbox.prereqs")
        .unwrap();
    assert_eq!(prereq.status, Status::Changed, "{prereq:?}");

    let calls = sd.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            // Every unit file is written before systemd is asked anything; then ONE enable of
            // the Sysbox units and both sockets, ONE reload (the files are new), and the starts.
            ENABLE_ALL.to_string(),
            "Reload".into(),
            // The sockets first, Sysbox's start last (then dockerd's SIGHUP).
            "ActiveState clawster-window.socket".into(),
            "StartUnit clawster-window.socket replace".into(),
            "ActiveState clawster-docker-guard.socket".into(),
            "StartUnit clawster-docker-guard.socket replace".into(),
            "ActiveState sysbox.service".into(),
            "StartUnit sysbox.service replace".into(),
        ]
    );
    assert!(root
        .join("etc/systemd/system/clawster-window.socket")
        .is_file());
    assert!(std::fs::read_to_string(root.join("etc/group"))
        .unwrap()
        .lines()
        .any(|l| l.starts_with("clawster-window:x:")));
    assert_eq!(
        *dockerd.hups.lock().unwrap(),
        1,
        "daemon.json changed: one SIGHUP"
    );

    // Live sysctls raised, never lowered; the persisted file keeps the higher live value.
    let read = |k: &str| {
        std::fs::read_to_string(opts.proc_sys.join(k))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("user/max_user_namespaces"), "10000");
    assert_eq!(read("kernel/keys/maxbytes"), "1400000");
    assert_eq!(read("kernel/pid_max"), "9000000");
    let conf = std::fs::read_to_string(root.join("etc/sysctl.d/99-sysbox-sysctl.conf")).unwrap();
    assert!(conf.contains("kernel.pid_max = 9000000\n"), "{conf}");
    assert!(
        !conf.contains("unprivileged_userns_clone"),
        "a key this kernel lacks was persisted: {conf}"
    );

    // Second run: nothing changed, so systemd is only asked whether it already sees the files
    // (no Reload); Sysbox is active, so it is not started again, and dockerd is not signalled.
    sd.calls.lock().unwrap().clear();
    let report = bootstrap::run(&opts, &b).unwrap();
    assert!(report.unchanged(), "{report:#?}");
    let calls = sd.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            ENABLE_ALL.to_string(),
            "NeedDaemonReload sysbox.service".into(),
            "NeedDaemonReload sysbox-mgr.service".into(),
            "NeedDaemonReload sysbox-fs.service".into(),
            "NeedDaemonReload clawster-window.socket".into(),
            "NeedDaemonReload clawster-docker-guard.socket".into(),
            "NeedDaemonReload docker.service".into(),
            "Wants multi-user.target".into(),
            "Wants sysbox.service".into(),
            "Wants sysbox.service".into(),
            "Wants sockets.target".into(),
            "Wants sockets.target".into(),
            "ActiveState clawster-window.socket".into(),
            "ActiveState clawster-docker-guard.socket".into(),
            "ActiveState sysbox.service".into(),
        ]
    );
    let units = report
        .steps
        .iter()
        .find(|s| s.check == "sysbox.units")
        .unwrap();
    assert!(units.message.contains("no Reload needed"), "{units:?}");

    // A killed earlier run wrote the drop-in but never reloaded: nothing changes on disk now,
    // yet systemd says docker.service is stale, so the re-run reloads (once) and converges.
    *sd.stale.lock().unwrap() = Some("docker.service".into());
    sd.calls.lock().unwrap().clear();
    let report = bootstrap::run(&opts, &b).unwrap();
    assert!(!report.failed(), "{report:#?}");
    let calls = sd.calls.lock().unwrap().clone();
    assert_eq!(
        calls.iter().filter(|c| *c == "Reload").count(),
        1,
        "{calls:?}"
    );
    let reload = calls.iter().position(|c| c == "Reload").unwrap();
    let first_state = calls
        .iter()
        .position(|c| c.starts_with("ActiveState"))
        .unwrap();
    assert!(reload < first_state, "{calls:?}");
    let units = report
        .steps
        .iter()
        .find(|s| s.check == "sysbox.units")
        .unwrap();
    assert!(
        units.message.contains("docker.service changed on disk"),
        "{units:?}"
    );
    assert_eq!(*dockerd.hups.lock().unwrap(), 1);
}

#[test]
fn dbus_unreachable_is_a_failed_step_without_marker() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    skeleton_root(&root);
    let bytes = deb(&sysbox_payload(0), "gz");
    let debp = dir.path().join("p.deb");
    std::fs::write(&debp, &bytes).unwrap();
    let mut opts = Options::new(HostRoot::new(&root), Arch::Amd64);
    opts.live = true;
    opts.proc_sys = fake_proc(dir.path());
    opts.source = Source::File(debp);
    opts.sha256 = Some(sha256_hex(&bytes));
    let dockerd = FakeDockerd::default();
    let fetcher = HttpFetcher::default();
    let b = Boundaries {
        fetcher: &fetcher,
        systemd: Err("no bus".into()),
        packages: None,
        dockerd: &dockerd,
    };
    let report = bootstrap::run(&opts, &b).unwrap();
    assert!(report.failed());
    assert!(!report.complete);
    assert!(!root.join("var/lib/clawster/bootstrap.done").exists());
    let units = report
        .steps
        .iter()
        .find(|s| s.check == "sysbox.units")
        .unwrap();
    assert!(units.message.contains("no bus"), "{units:?}");
}
