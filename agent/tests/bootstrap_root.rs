//! `clawster-agent bootstrap --root DIR` and `health --root DIR` against temp roots, through the
//! real binary: what is written (paths, modes, owners), what is kept, idempotence, the hostile
//! package corpus and malformed daemon.json. Runs as root (owners are checked as 0:0).
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clawster-agent"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the agent binary with logging on stderr.
fn agent(args: &[&str]) -> Run {
    let out = Command::new(agent_bin())
        .arg("--log-target")
        .arg("stderr")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    deb: std::path::PathBuf,
    sha: String,
}

fn fixture_with(payload: &[Entry], compression: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    skeleton_root(&root);
    let bytes = deb(payload, compression);
    let debp = dir.path().join("sysbox-test.deb");
    std::fs::write(&debp, &bytes).unwrap();
    Fixture {
        sha: sha256_hex(&bytes),
        _dir: dir,
        root,
        deb: debp,
    }
}

fn bootstrap(f: &Fixture, extra: &[&str]) -> Run {
    let mut args = vec![
        "bootstrap",
        "--root",
        f.root.to_str().unwrap(),
        "--sysbox-deb",
        f.deb.to_str().unwrap(),
        "--sysbox-sha256",
        &f.sha,
        "--arch",
        "amd64",
    ];
    args.extend_from_slice(extra);
    agent(&args)
}

fn mode_owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn installs_every_file_with_owner_and_mode_for_each_compression() {
    for c in ["xz", "gz", "zst", ""] {
        let f = fixture_with(&sysbox_payload(0), c);
        std::fs::write(
            f.root.join("etc/docker/daemon.json"),
            br#"{"log-driver":"awslogs","runtimes":{"nvidia":{"path":"/usr/bin/nvidia"}}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(f.root.join("etc/ecs")).unwrap();
        std::fs::write(
            f.root.join("etc/ecs/ecs.config"),
            "ECS_LOGLEVEL=info\nECS_CLUSTER=old\n",
        )
        .unwrap();
        let r = bootstrap(&f, &["--cluster", "bots-1"]);
        assert_eq!(r.code, 0, "compression {c:?}: {}\n{}", r.stdout, r.stderr);

        for b in ["sysbox-runc", "sysbox-mgr", "sysbox-fs"] {
            let p = f.root.join("usr/bin").join(b);
            assert_eq!(mode_owner(&p), (0o755, 0, 0), "{b}");
            assert_eq!(std::fs::read(&p).unwrap(), fake_binary(b, 0));
        }
        for (u, text) in [
            ("sysbox.service", SYSBOX_SERVICE),
            ("sysbox-mgr.service", SYSBOX_MGR_SERVICE),
            ("sysbox-fs.service", SYSBOX_FS_SERVICE),
        ] {
            let p = f.root.join("etc/systemd/system").join(u);
            assert_eq!(mode_owner(&p), (0o644, 0, 0));
            assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
        }
        // Enablement exactly as systemctl enable would do it.
        assert_eq!(
            std::fs::read_link(
                f.root
                    .join("etc/systemd/system/multi-user.target.wants/sysbox.service")
            )
            .unwrap(),
            Path::new("/etc/systemd/system/sysbox.service")
        );
        assert_eq!(
            std::fs::read_link(
                f.root
                    .join("etc/systemd/system/sysbox.service.wants/sysbox-mgr.service")
            )
            .unwrap(),
            Path::new("/etc/systemd/system/sysbox-mgr.service")
        );
        assert_eq!(
            std::fs::read_link(
                f.root
                    .join("etc/systemd/system/sysbox.service.wants/sysbox-fs.service")
            )
            .unwrap(),
            Path::new("/etc/systemd/system/sysbox-fs.service")
        );
        let dropin = std::fs::read_to_string(
            f.root
                .join("etc/systemd/system/docker.service.d/10-clawster-sysbox.conf"),
        )
        .unwrap();
        assert!(dropin.contains("Wants=sysbox.service"));

        // The merged-/usr /lib symlink survives; nothing was unpacked under /lib.
        assert_eq!(
            std::fs::read_link(f.root.join("lib")).unwrap(),
            Path::new("usr/lib")
        );
        assert!(!f.root.join("usr/lib/systemd").exists());
        assert!(
            !f.root.join("usr/share/doc/sysbox-ce").exists(),
            "docs are skipped"
        );

        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f.root.join("etc/docker/daemon.json")).unwrap())
                .unwrap();
        assert_eq!(v["log-driver"], "awslogs");
        assert_eq!(v["runtimes"]["nvidia"]["path"], "/usr/bin/nvidia");
        assert_eq!(v["runtimes"]["sysbox-runc"]["path"], "/usr/bin/sysbox-runc");
        assert!(v.get("default-runtime").is_none());
        assert_eq!(
            mode_owner(&f.root.join("etc/docker/daemon.json")),
            (0o644, 0, 0)
        );

        let ecs = std::fs::read_to_string(f.root.join("etc/ecs/ecs.config")).unwrap();
        assert_eq!(ecs, "ECS_LOGLEVEL=info\nECS_CLUSTER=bots-1\nECS_AWSVPC_BLOCK_IMDS=true\nECS_DISABLE_PRIVILEGED=true\nECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n");
        assert_eq!(
            mode_owner(&f.root.join("etc/ecs/ecs.config")),
            (0o600, 0, 0)
        );

        let sysctl =
            std::fs::read_to_string(f.root.join("etc/sysctl.d/99-sysbox-sysctl.conf")).unwrap();
        assert!(sysctl.contains("-kernel.pid_max = 4194304\n"), "{sysctl}");
        assert!(
            sysctl.contains("-kernel.keys.maxbytes = 1400000\n"),
            "{sysctl}"
        );
        assert!(
            sysctl.contains("-user.max_user_namespaces = 10000\n"),
            "{sysctl}"
        );
        let passwd = std::fs::read_to_string(f.root.join("etc/passwd")).unwrap();
        assert!(
            passwd
                .lines()
                .any(|l| l.starts_with("sysbox:x:999:999:") && l.ends_with(":/usr/sbin/nologin")),
            "{passwd}"
        );
        assert!(std::fs::read_to_string(f.root.join("etc/group"))
            .unwrap()
            .contains("sysbox:x:999:"));
        assert_eq!(mode_owner(&f.root.join("var/lib/sysboxfs")), (0o755, 0, 0));
        // The maintenance window: units, sysusers.d line, group, socket enabled as a file.
        for u in ["clawster-window.socket", "clawster-window.service"] {
            assert_eq!(
                mode_owner(&f.root.join("etc/systemd/system").join(u)),
                (0o644, 0, 0),
                "{u}"
            );
        }
        assert_eq!(
            std::fs::read_link(
                f.root
                    .join("etc/systemd/system/sockets.target.wants/clawster-window.socket")
            )
            .unwrap(),
            Path::new("/etc/systemd/system/clawster-window.socket")
        );
        assert!(f.root.join("etc/sysusers.d/clawster-window.conf").is_file());
        assert!(std::fs::read_to_string(f.root.join("etc/group"))
            .unwrap()
            .lines()
            .any(|l| l.starts_with("clawster-window:x:")));
        assert!(f.root.join("var/lib/clawster/bootstrap.done").is_file());
        assert!(r.stdout.contains("left for boot:"), "{}", r.stdout);

        let h = agent(&["health", "--root", f.root.to_str().unwrap(), "--json"]);
        assert_eq!(h.code, 0, "{}\n{}", h.stdout, h.stderr);
        let hv: serde_json::Value = serde_json::from_str(&h.stdout).unwrap();
        assert_eq!(hv["status"], "ok");
        for c in hv["checks"].as_array().unwrap() {
            assert_eq!(c["status"], "ok", "{c}");
        }
    }
}

#[test]
fn second_run_changes_nothing_and_says_so() {
    let f = fixture_with(&sysbox_payload(1000), "xz");
    let r = bootstrap(&f, &["--cluster", "c"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("changed"));
    let before = snapshot(&f.root);
    let r2 = bootstrap(&f, &["--cluster", "c"]);
    assert_eq!(r2.code, 0, "{}\n{}", r2.stdout, r2.stderr);
    assert_eq!(snapshot(&f.root), before, "second run changed the tree");
    for line in r2
        .stdout
        .lines()
        .take_while(|l| !l.starts_with("left for boot"))
    {
        let status = line.split_whitespace().nth(1).unwrap();
        assert!(
            status == "ok" || status == "skipped",
            "second run step not unchanged: {line}"
        );
    }
    assert!(r2.stdout.contains("nothing changed"), "{}", r2.stdout);

    // A binary with the same size but one byte changed is noticed and replaced.
    let p = f.root.join("usr/bin/sysbox-fs");
    let mut b = std::fs::read(&p).unwrap();
    let last = b.len() - 2;
    b[last] ^= 1;
    std::fs::write(&p, &b).unwrap();
    let r3 = bootstrap(&f, &["--cluster", "c"]);
    assert_eq!(r3.code, 0, "{}", r3.stderr);
    assert!(
        r3.stdout.lines().any(|l| l.starts_with("sysbox.binaries")
            && l.contains("changed")
            && l.contains("(1 changed)")),
        "{}",
        r3.stdout
    );
    assert_eq!(snapshot(&f.root), before, "tampered binary not restored");
}

#[test]
fn malformed_daemon_json_is_left_byte_for_byte_and_nothing_is_written() {
    for bad in [
        &b"{\"log-driver\": \"json-file\",,}"[..],
        b"[\"not\", \"an object\"]",
        b"{\"runtimes\": []}",
    ] {
        let f = fixture_with(&sysbox_payload(0), "xz");
        std::fs::write(f.root.join("etc/docker/daemon.json"), bad).unwrap();
        let before = snapshot(&f.root);
        let r = bootstrap(&f, &[]);
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("daemon.json"), "{}", r.stderr);
        assert_eq!(
            std::fs::read(f.root.join("etc/docker/daemon.json")).unwrap(),
            bad
        );
        let mut after = snapshot(&f.root);
        // Only the lock file's directory may appear.
        after.retain(|p, _| !p.starts_with("var/lib/clawster"));
        assert_eq!(after, before);
    }
}

fn payload_without(name: &str) -> Vec<Entry> {
    sysbox_payload(0)
        .into_iter()
        .filter(|e| e.name != name)
        .collect()
}

fn payload_plus(extra: Entry) -> Vec<Entry> {
    let mut p = sysbox_payload(0);
    // Hostile entries come last, after the binaries were streamed: nothing may be left behind.
    p.push(extra);
    p
}

#[test]
fn hostile_and_broken_packages_fail_clearly_and_write_nothing() {
    let good = deb(&sysbox_payload(0), "xz");
    let mut oversized = Entry::file("./usr/bin/sysbox-fs", 0o755, b"x");
    oversized.claimed_size = Some(300 << 20);
    let mut oversized_payload = payload_without("./usr/bin/sysbox-fs");
    oversized_payload.push(oversized);
    let cases: Vec<(&str, Vec<u8>, Option<String>, &str)> = vec![
        (
            "truncated",
            good[..good.len() - 200].to_vec(),
            None,
            "truncated",
        ),
        (
            "not ar",
            b"PK\x03\x04 this is a zip".to_vec(),
            None,
            "no ar signature",
        ),
        (
            "no data member",
            ar(&[("debian-binary", b"2.0\n"), ("control.tar.xz", b"x")]),
            None,
            "no data.tar member",
        ),
        (
            "unknown compression",
            {
                let data = compress(&tar(&sysbox_payload(0)), "bz2");
                ar(&[("debian-binary", b"2.0\n"), ("data.tar.bz2", &data)])
            },
            None,
            "unsupported compression",
        ),
        (
            "dot-dot",
            deb(
                &payload_plus(Entry::file("./usr/bin/../../etc/cron.d/evil", 0o644, b"x")),
                "xz",
            ),
            None,
            "`..`",
        ),
        (
            "absolute",
            deb(&payload_plus(Entry::file("/etc/shadow", 0o644, b"x")), "xz"),
            None,
            "absolute name",
        ),
        (
            "symlink",
            deb(
                &payload_plus(Entry::symlink("./usr/bin/sysbox", "/etc/passwd")),
                "xz",
            ),
            None,
            "symbolic link",
        ),
        (
            "hardlink",
            deb(
                &payload_plus(Entry::hardlink("./usr/bin/x", "./usr/bin/sysbox-fs")),
                "xz",
            ),
            None,
            "hard link",
        ),
        (
            "device",
            deb(&payload_plus(Entry::device("./usr/bin/null")), "xz"),
            None,
            "device node",
        ),
        (
            "duplicate",
            deb(
                &payload_plus(Entry::file("./usr/bin/sysbox-runc", 0o755, b"second")),
                "xz",
            ),
            None,
            "duplicate entry",
        ),
        (
            "unexpected",
            deb(
                &payload_plus(Entry::file("./etc/sudoers.d/x", 0o644, b"x")),
                "xz",
            ),
            None,
            "unexpected",
        ),
        (
            "oversized",
            deb(&oversized_payload, "xz"),
            None,
            "exceeds the limit",
        ),
        (
            "missing binary",
            deb(&payload_without("./usr/bin/sysbox-mgr"), "xz"),
            None,
            "lacks usr/bin/sysbox-mgr",
        ),
        (
            "wrong hash",
            good.clone(),
            Some("0".repeat(64)),
            "SHA256 mismatch",
        ),
    ];
    for (what, bytes, sha, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        skeleton_root(&root);
        let debp = dir.path().join("bad.deb");
        std::fs::write(&debp, &bytes).unwrap();
        let sha = sha.unwrap_or_else(|| sha256_hex(&bytes));
        let before = snapshot(&root);
        let r = agent(&[
            "bootstrap",
            "--root",
            root.to_str().unwrap(),
            "--sysbox-deb",
            debp.to_str().unwrap(),
            "--sysbox-sha256",
            &sha,
            "--arch",
            "amd64",
        ]);
        assert_eq!(r.code, 1, "{what}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(expect),
            "{what}: expected {expect:?} in: {}",
            r.stderr
        );
        let mut after = snapshot(&root);
        // The lock and the verified-package cache are ours; nothing else may change.
        after.retain(|p, _| {
            !p.starts_with("var/lib/clawster") && !p.starts_with("var/cache/clawster")
        });
        assert_eq!(after, before, "{what}: the root changed");
        if what == "wrong hash" {
            let cache: Vec<_> = std::fs::read_dir(root.join("var/cache/clawster/sysbox"))
                .unwrap()
                .collect();
            assert!(cache.is_empty(), "a package with the wrong hash was kept");
        }
    }
}

#[test]
fn killed_at_any_point_converges_on_rerun() {
    // A package big enough that a run takes a while, so kills land at different steps.
    let f = fixture_with(&sysbox_payload(3 << 20), "xz");
    let reference = {
        let g = fixture_with(&sysbox_payload(3 << 20), "xz");
        let r = bootstrap(&g, &["--cluster", "k"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut s = snapshot(&g.root);
        s.retain(|p, _| !p.starts_with("var/cache"));
        s
    };
    let mut killed_before_marker = 0;
    for delay_ms in [1u64, 5, 20, 40, 80, 120, 200] {
        let mut child = std::process::Command::new(agent_bin())
            .args([
                "--log-target",
                "stderr",
                "bootstrap",
                "--root",
                f.root.to_str().unwrap(),
                "--sysbox-deb",
                f.deb.to_str().unwrap(),
                "--sysbox-sha256",
                &f.sha,
                "--arch",
                "amd64",
                "--cluster",
                "k",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if !status.success() && !f.root.join("var/lib/clawster/bootstrap.done").exists() {
            killed_before_marker += 1;
        }
        // Remove the marker so every iteration really re-runs from a half state.
        let _ = std::fs::remove_file(f.root.join("var/lib/clawster/bootstrap.done"));
    }
    assert!(
        killed_before_marker >= 3,
        "kills did not land mid-run ({killed_before_marker})"
    );
    let r = bootstrap(&f, &["--cluster", "k"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let mut s = snapshot(&f.root);
    s.retain(|p, _| !p.starts_with("var/cache"));
    assert_eq!(
        s, reference,
        "state after kills + re-run differs from a clean run"
    );
    // No temporary files anywhere.
    assert!(!s
        .keys()
        .any(|p| p.to_string_lossy().contains("clawster-tmp")));
}

#[test]
fn bad_arguments_are_named() {
    let f = fixture_with(&sysbox_payload(0), "xz");
    let r = bootstrap(&f, &["--cluster", "bad name"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad name"), "{}", r.stderr);
    let r = agent(&[
        "bootstrap",
        "--root",
        f.root.to_str().unwrap(),
        "--sysbox-deb",
        f.deb.to_str().unwrap(),
        "--sysbox-sha256",
        "xyz",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not a SHA256"), "{}", r.stderr);
    let h = agent(&["health", "--root", f.root.to_str().unwrap()]);
    assert_eq!(h.code, 1, "an empty root is degraded: {}", h.stdout);
    assert!(h.stdout.contains("bootstrap.marker"));
    let h = agent(&["health", "--root", "/nonexistent/root"]);
    assert_eq!(h.code, 2);
    let help = agent(&["bootstrap", "--help"]);
    assert!(
        help.stdout.contains("--sysbox-sha256") && help.stdout.contains("never unpacking onto /"),
        "{}",
        help.stdout
    );
}

#[test]
fn bootstrap_applies_the_ecs_host_baseline() {
    let f = fixture_with(&sysbox_payload(1000), "xz");
    // Without an SSM agent the baseline's ssm control fails: no marker, exit 1.
    let r = bootstrap(&f, &["--baseline", "ecs-host"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("baseline.ssm") && l.contains("failed")),
        "{}",
        r.stdout
    );
    assert!(!f.root.join("var/lib/clawster/bootstrap.done").exists());
    let unit = f
        .root
        .join("usr/lib/systemd/system/amazon-ssm-agent.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(
        &unit,
        "[Service]\nExecStart=/usr/bin/amazon-ssm-agent\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    let ssh = f.root.join("usr/lib/systemd/system/sshd.service");
    std::fs::write(
        &ssh,
        "[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    let r = bootstrap(&f, &["--baseline", "ecs-host"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for c in ["baseline.ssm", "baseline.ssh", "baseline.firewall"] {
        assert!(
            r.stdout.lines().any(|l| l.starts_with(c)),
            "{c} missing:\n{}",
            r.stdout
        );
    }
    assert_eq!(
        std::fs::read_link(f.root.join("etc/systemd/system/sshd.service")).unwrap(),
        Path::new("/dev/null")
    );
    assert!(std::fs::symlink_metadata(
        f.root
            .join("etc/systemd/system/sysinit.target.wants/clawster-firewall.service")
    )
    .is_ok());
    assert!(
        r.stdout
            .contains("clawster-firewall.service loads table inet clawster_hostfw at boot"),
        "{}",
        r.stdout
    );
    let audit = agent(&["baseline", "audit", "--root", f.root.to_str().unwrap()]);
    assert_eq!(audit.code, 0, "{}\n{}", audit.stdout, audit.stderr);
    assert!(
        audit.stdout.contains("overall: ok (ecs-host)"),
        "{}",
        audit.stdout
    );
}
