//! The native reader's generic extraction compared with `dpkg-deb -x`: paths, types, modes,
//! symlink targets and bytes must be equal. Real Debian packages (fetched once with
//! `apt-get download`, xz payloads) plus the same content repacked by `dpkg-deb` with gzip, zstd
//! and no compression, plus a hand-made tree with odd modes, symlinks and hard links.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use clawster_agent::bootstrap::deb;

fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut s = common::snapshot(dir);
    // Directory mtimes/owners differ by design; keep type + mode + target + content.
    for v in s.values_mut() {
        if let Some(rest) = v.strip_prefix("dir ") {
            *v = format!("dir {}", rest.split(' ').next().unwrap());
        }
    }
    s
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn compare(debp: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&ours).unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(debp).arg(&theirs));
    let n =
        deb::extract_all(debp, &ours).unwrap_or_else(|e| panic!("{:#}", anyhow::Error::from(e)));
    assert!(n.files > 0, "{}: nothing extracted", debp.display());
    let (a, b) = (tree(&ours), tree(&theirs));
    // dpkg-deb -x sets the top directory's mode from the archive's "./" entry; compare below it.
    assert_eq!(
        a,
        b,
        "{}: native extraction differs from dpkg-deb -x",
        debp.display()
    );
}

/// Real packages from the Debian archive, cached across runs.
fn real_packages() -> Vec<PathBuf> {
    let cache = PathBuf::from(
        std::env::var("CLAWSTER_CACHE").unwrap_or_else(|_| "/var/tmp/clawster".into()),
    )
    .join("test-debs");
    std::fs::create_dir_all(&cache).unwrap();
    let wanted = ["hello", "netbase", "sensible-utils", "less"];
    let have = |p: &str| {
        std::fs::read_dir(&cache).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{p}_"))
        })
    };
    let missing: Vec<&str> = wanted.iter().copied().filter(|p| !have(p)).collect();
    if !missing.is_empty() {
        let out = Command::new("apt-get")
            .arg("download")
            .args(&missing)
            .current_dir(&cache)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "apt-get download {missing:?} failed (needs Debian package lists: apt-get update): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    assert!(debs.len() >= wanted.len(), "{debs:?}");
    debs
}

fn member_names(p: &Path) -> String {
    let out = Command::new("ar").arg("t").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn real_debian_packages_extract_like_dpkg() {
    let debs = real_packages();
    let mut xz = 0;
    for d in &debs {
        if member_names(d).contains("data.tar.xz") {
            xz += 1;
        }
        compare(d);
    }
    assert!(xz > 0, "no xz payload among {debs:?}");
    // The same real content repacked with the other compressions dpkg supports.
    for comp in ["gzip", "zstd", "none"] {
        for d in &debs[..2] {
            let dir = tempfile::tempdir().unwrap();
            let raw = dir.path().join("raw");
            run(Command::new("dpkg-deb").arg("-R").arg(d).arg(&raw));
            let out = dir.path().join("re.deb");
            run(Command::new("dpkg-deb")
                .args(["--root-owner-group", &format!("-Z{comp}"), "-b"])
                .arg(&raw)
                .arg(&out));
            let want = match comp {
                "gzip" => "data.tar.gz",
                "zstd" => "data.tar.zst",
                _ => "data.tar\n",
            };
            assert!(
                member_names(&out).contains(want),
                "{comp}: {}",
                member_names(&out)
            );
            compare(&out);
        }
    }
}

#[test]
fn handmade_tree_with_links_and_modes_extracts_like_dpkg() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("pkg");
    for d in [
        "DEBIAN",
        "usr/bin",
        "usr/share/doc/t",
        "etc/private",
        "opt/a/b/c",
    ] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    std::fs::write(t.join("DEBIAN/control"), "Package: clawster-eq\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: test\n").unwrap();
    std::fs::write(t.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        t.join("usr/bin/tool"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(t.join("usr/bin/suid"), b"x").unwrap();
    std::fs::set_permissions(
        t.join("usr/bin/suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::set_permissions(
        t.join("etc/private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(t.join("etc/private/key"), b"k").unwrap();
    std::fs::set_permissions(
        t.join("etc/private/key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    std::fs::write(t.join("opt/a/b/c/big.bin"), &big).unwrap();
    std::fs::write(t.join("usr/share/doc/t/empty"), b"").unwrap();
    std::os::unix::fs::symlink("tool", t.join("usr/bin/tool-link")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/tool", t.join("usr/bin/abs-link")).unwrap();
    std::os::unix::fs::symlink("../../share/doc/t", t.join("opt/a/doclink")).unwrap();
    std::fs::hard_link(t.join("usr/bin/tool"), t.join("usr/bin/tool-hard")).unwrap();
    std::fs::write(
        t.join("usr/share/doc/t/long-name-".to_string() + &"x".repeat(120)),
        b"long",
    )
    .unwrap();
    for comp in ["xz", "gzip", "zstd"] {
        let out = dir.path().join(format!("eq-{comp}.deb"));
        run(Command::new("dpkg-deb")
            .args(["--root-owner-group", &format!("-Z{comp}"), "-b"])
            .arg(&t)
            .arg(&out));
        compare(&out);
        let x = tempfile::tempdir().unwrap();
        let n = deb::extract_all(&out, x.path()).unwrap();
        assert!(n.symlinks == 3 && n.hardlinks == 1, "{n:?}");
        assert_eq!(
            std::fs::metadata(x.path().join("usr/bin/tool-hard"))
                .unwrap()
                .ino(),
            std::fs::metadata(x.path().join("usr/bin/tool"))
                .unwrap()
                .ino()
        );
    }
}

#[test]
fn generic_extraction_refuses_escapes() {
    use common::{deb as mkdeb, Entry};
    let cases = [
        vec![
            Entry::symlink("./a", "/etc"),
            Entry::file("./a/passwd", 0o644, b"x"),
        ],
        vec![Entry::file("./../x", 0o644, b"x")],
        vec![Entry::device("./dev/null")],
        vec![Entry::hardlink("./h", "/etc/passwd")],
    ];
    for entries in cases {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.deb");
        std::fs::write(&p, mkdeb(&entries, "gz")).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let e = deb::extract_all(&p, &out).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert!(chain.contains("refusing"), "{chain}");
        assert!(!Path::new("/etc/passwd.clawster-test").exists());
    }
}
