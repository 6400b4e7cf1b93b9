//! Pushing an OCI layout to a real registry (Debian's docker-registry on loopback, htpasswd Basic
//! auth: the scheme ECR uses with its authorization token): blobs are uploaded monolithically
//! once, a second push sends nothing, the stored manifest is ours byte for byte, wrong credentials
//! and a corrupted layout are refused with errors naming what was wrong.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clawsterctl::image::registry::{PushEvent, Registry};
use clawsterctl::image::{Layout, MANIFEST_MEDIA_TYPE};
use sha2::{Digest, Sha256};

const USER: &str = "clawster";
const PASSWORD: &str = "push-test-password";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = digest(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    d
}

/// A small but complete OCI layout: config, two layers, manifest, index.
fn layout(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let config = br#"{"architecture":"amd64","os":"linux","config":{"User":"1000:1000"},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let l1: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let l2 = b"second layer".to_vec();
    let (c, a, b) = (
        put_blob(dir, config),
        put_blob(dir, &l1),
        put_blob(dir, &l2),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": a, "size": l1.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": b, "size": l2.len()}
        ]
    })
    .to_string();
    let m = put_blob(dir, manifest.as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": MANIFEST_MEDIA_TYPE, "digest": m, "size": manifest.len()}
    ]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    m
}

fn tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn registry(dir: &Path) -> (Killed, String) {
    for t in ["docker-registry", "htpasswd"] {
        assert!(
            tool(t),
            "{t} is missing: install the test prerequisites (tests/deps/ctl.apt, tests/setup-host)"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .unwrap();
    std::fs::write(dir.join("htpasswd"), out.stdout).unwrap();
    std::fs::write(
        dir.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.join("storage").display(),
            dir.join("htpasswd").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the registry did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed(child), format!("http://127.0.0.1:{port}"))
}

#[test]
fn push_uploads_each_blob_once_and_the_manifest_by_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    let manifest_digest = layout(&oci);
    let (_reg, base) = registry(tmp.path());
    let image = Layout::open(&oci).unwrap();
    assert_eq!(image.digest, manifest_digest);
    assert_eq!(image.blobs.len(), 3);

    let reg = Registry::new(&base, USER, PASSWORD);
    let mut events = Vec::new();
    let first = reg
        .push("clawster-openclaw", "2026.9.6", &image, |e| events.push(e))
        .unwrap();
    assert_eq!((first.uploaded, first.present), (3, 0));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, PushEvent::Uploaded(..)))
            .count(),
        3
    );
    assert_eq!(events.last(), Some(&PushEvent::Manifest(true)));

    let mut again = Vec::new();
    let second = reg
        .push("clawster-openclaw", "2026.9.6", &image, |e| again.push(e))
        .unwrap();
    assert_eq!((second.uploaded, second.present, second.bytes), (0, 3, 0));
    assert_eq!(again.last(), Some(&PushEvent::Manifest(false)));

    // The registry serves our manifest bytes under their digest.
    let out = Command::new("curl")
        .args(["-sf", "-u", &format!("{USER}:{PASSWORD}"), "-H"])
        .arg(format!("Accept: {MANIFEST_MEDIA_TYPE}"))
        .arg(format!(
            "{base}/v2/clawster-openclaw/manifests/{manifest_digest}"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(digest(&out.stdout), manifest_digest);
}

#[test]
fn wrong_credentials_and_bad_layouts_are_refused_naming_why() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    layout(&oci);
    let (_reg, base) = registry(tmp.path());
    let image = Layout::open(&oci).unwrap();
    let e = Registry::new(&base, USER, "wrong")
        .push("clawster-openclaw", "t", &image, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 401") && e.contains("refused the credentials"),
        "{e}"
    );
    let e = Registry::new(&base, USER, PASSWORD)
        .push("Bad/Name", "t", &image, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid repository name"), "{e}");

    // A layer changed after the build: refused before anything is sent.
    let layer = &image.blobs[1].path;
    std::fs::write(layer, b"tampered").unwrap();
    let e = Layout::open(&oci).unwrap_err().to_string();
    assert!(
        e.contains(&layer.display().to_string()) && e.contains("does not match"),
        "{e}"
    );
    let e = Layout::open(&tmp.path().join("nothing"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("index.json") && e.contains("packaging/build-image"),
        "{e}"
    );
}
