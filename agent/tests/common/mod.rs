//! Builds Sysbox-like Debian packages for the tests, byte by byte, so hostile variants (names
//! with `..`, links, devices, lying sizes) can be made too. The real Sysbox package may not be
//! redistributed and is never downloaded by tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// One tar entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: u8,
    pub mode: u32,
    pub data: Vec<u8>,
    pub link: String,
    /// Size written in the header (defaults to data.len()).
    pub claimed_size: Option<u64>,
}

impl Entry {
    pub fn file(name: &str, mode: u32, data: &[u8]) -> Self {
        Self {
            name: name.into(),
            kind: b'0',
            mode,
            data: data.to_vec(),
            link: String::new(),
            claimed_size: None,
        }
    }
    pub fn dir(name: &str) -> Self {
        Self {
            name: name.into(),
            kind: b'5',
            mode: 0o755,
            data: Vec::new(),
            link: String::new(),
            claimed_size: None,
        }
    }
    pub fn symlink(name: &str, target: &str) -> Self {
        Self {
            name: name.into(),
            kind: b'2',
            mode: 0o777,
            data: Vec::new(),
            link: target.into(),
            claimed_size: None,
        }
    }
    pub fn hardlink(name: &str, target: &str) -> Self {
        Self {
            name: name.into(),
            kind: b'1',
            mode: 0o644,
            data: Vec::new(),
            link: target.into(),
            claimed_size: None,
        }
    }
    pub fn device(name: &str) -> Self {
        Self {
            name: name.into(),
            kind: b'3',
            mode: 0o644,
            data: Vec::new(),
            link: String::new(),
            claimed_size: None,
        }
    }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

/// A ustar archive of the entries (names up to 100 bytes).
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = [0u8; 512];
        assert!(
            e.name.len() <= 100,
            "test helper supports names up to 100 bytes"
        );
        h[..e.name.len()].copy_from_slice(e.name.as_bytes());
        octal(&mut h[100..108], e.mode as u64);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(
            &mut h[124..136],
            e.claimed_size.unwrap_or(e.data.len() as u64),
        );
        octal(&mut h[136..148], 1_700_000_000);
        h[156] = e.kind;
        h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{:06o}\0 ", sum);
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// Compresses with the system tool (`xz`, `gzip`, `zstd`) or not at all (`""`).
pub fn compress(data: &[u8], how: &str) -> Vec<u8> {
    let args: &[&str] = match how {
        "" => return data.to_vec(),
        "xz" => &["xz", "-T1", "-0", "-c"],
        "xz6" => &["xz", "-T1", "-6", "-c"],
        "gz" => &["gzip", "-n", "-c"],
        "zst" => &["zstd", "-q", "-c"],
        "bz2" => &["bzip2", "-c"],
        other => panic!("unknown compression {other}"),
    };
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (install xz-utils, gzip, zstd, bzip2)", args[0]));
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{} failed", args[0]);
    out.stdout
}

/// An ar archive of the members.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let h = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            1_700_000_000,
            0,
            0,
            100644,
            data.len()
        );
        assert_eq!(h.len(), 60);
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// A .deb with this payload.
pub fn deb(payload: &[Entry], compression: &str) -> Vec<u8> {
    let control = compress(
        &tar(&[Entry::file(
            "./control",
            0o644,
            b"Package: sysbox-ce\nVersion: 0.6.7-0\n",
        )]),
        "xz",
    );
    let data = compress(&tar(payload), compression);
    let data_name = if compression.is_empty() {
        "data.tar".to_string()
    } else {
        format!("data.tar.{compression}")
    };
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", &control),
        (&data_name, &data),
    ])
}

/// A small program standing in for a Sysbox binary: answers `--version`, otherwise tells systemd
/// it is ready (Type=notify) and sleeps.
pub fn fake_binary(name: &str, padding: usize) -> Vec<u8> {
    let mut s = format!(
        "#!/bin/sh\n# test stand-in for {name}\ncase \"$1\" in --version) echo \"{name} test\"; exit 0;; esac\n\
         command -v systemd-notify >/dev/null && systemd-notify --ready\nexec sleep infinity\n"
    )
    .into_bytes();
    // Optional padding (a comment line) to make big binaries.
    if padding > 0 {
        s.extend_from_slice(b"#");
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..padding {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(b'a' + (x % 26) as u8);
        }
        s.push(b'\n');
    }
    s
}

pub const SYSBOX_SERVICE: &str = "[Unit]\nDescription=Sysbox (test)\nBindsTo=sysbox-mgr.service sysbox-fs.service\nAfter=sysbox-mgr.service sysbox-fs.service\nBefore=docker.service containerd.service\n\n[Service]\nType=exec\nExecStart=/bin/sh -c \"/usr/bin/sysbox-runc --version && /usr/bin/sysbox-mgr --version && /usr/bin/sysbox-fs --version && /bin/sleep infinity\"\n\n[Install]\nWantedBy=multi-user.target\n";
pub const SYSBOX_MGR_SERVICE: &str = "[Unit]\nDescription=sysbox-mgr (test)\nPartOf=sysbox.service\n\n[Service]\nType=notify\nExecStart=/usr/bin/sysbox-mgr\nTimeoutStartSec=45\nNotifyAccess=all\n\n[Install]\nWantedBy=sysbox.service\n";
pub const SYSBOX_FS_SERVICE: &str = "[Unit]\nDescription=sysbox-fs (test)\nPartOf=sysbox.service\nAfter=sysbox-mgr.service\n\n[Service]\nType=notify\nExecStart=/usr/bin/sysbox-fs\nTimeoutStartSec=10\nNotifyAccess=all\n\n[Install]\nWantedBy=sysbox.service\n";
pub const SYSCTL_CONF: &str = "# test copy of the package's file\nkernel.unprivileged_userns_clone = 1\nfs.inotify.max_queued_events = 1048576\nfs.inotify.max_user_watches = 1048576\nfs.inotify.max_user_instances = 1048576\nkernel.keys.maxkeys = 20000\nkernel.keys.maxbytes = 1400000\nkernel.pid_max = 4194304\n";

/// The payload of a well-formed Sysbox-like package; `padding` bytes are added to each binary.
pub fn sysbox_payload(padding: usize) -> Vec<Entry> {
    vec![
        Entry::dir("./"),
        Entry::dir("./usr/"),
        Entry::dir("./usr/bin/"),
        Entry::file(
            "./usr/bin/sysbox-runc",
            0o755,
            &fake_binary("sysbox-runc", padding),
        ),
        Entry::file(
            "./usr/bin/sysbox-mgr",
            0o755,
            &fake_binary("sysbox-mgr", padding),
        ),
        Entry::file(
            "./usr/bin/sysbox-fs",
            0o755,
            &fake_binary("sysbox-fs", padding),
        ),
        Entry::dir("./lib/"),
        Entry::dir("./lib/systemd/"),
        Entry::dir("./lib/systemd/system/"),
        Entry::file(
            "./lib/systemd/system/sysbox.service",
            0o644,
            SYSBOX_SERVICE.as_bytes(),
        ),
        Entry::file(
            "./lib/systemd/system/sysbox-mgr.service",
            0o644,
            SYSBOX_MGR_SERVICE.as_bytes(),
        ),
        Entry::file(
            "./lib/systemd/system/sysbox-fs.service",
            0o644,
            SYSBOX_FS_SERVICE.as_bytes(),
        ),
        Entry::dir("./lib/sysctl.d/"),
        Entry::file(
            "./lib/sysctl.d/99-sysbox-sysctl.conf",
            0o644,
            SYSCTL_CONF.as_bytes(),
        ),
        Entry::dir("./usr/share/"),
        Entry::dir("./usr/share/doc/"),
        Entry::dir("./usr/share/doc/sysbox-ce/"),
        Entry::file(
            "./usr/share/doc/sysbox-ce/copyright",
            0o644,
            b"test package, not Sysbox\n",
        ),
    ]
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A root filesystem skeleton like a merged-/usr host: `/lib -> usr/lib`, some tools.
pub fn skeleton_root(dir: &Path) {
    for d in [
        "usr/lib/modules/6.1.0",
        "usr/bin",
        "usr/sbin",
        "etc/systemd/system",
        "etc/docker",
        "var/lib",
        "var/cache",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("usr/lib", dir.join("lib")).unwrap();
    std::os::unix::fs::symlink("usr/bin", dir.join("bin")).unwrap();
    std::os::unix::fs::symlink("usr/sbin", dir.join("sbin")).unwrap();
    std::fs::write(dir.join("usr/lib/modules/6.1.0/modules.dep"), b"").unwrap();
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
    for t in [
        "usr/bin/rsync",
        "usr/sbin/modprobe",
        "usr/sbin/iptables",
        "usr/bin/fusermount",
        "usr/sbin/nologin",
    ] {
        std::fs::write(dir.join(t), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(dir.join(t), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Every path under `dir` with its type, mode, owner, symlink target and content hash.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, p: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            let desc = if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if m.is_dir() {
                format!("dir {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid())
            } else {
                format!(
                    "file {:o} {}:{} {}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    sha256_hex(&std::fs::read(&path).unwrap())
                )
            };
            out.insert(rel, desc);
            if m.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}
