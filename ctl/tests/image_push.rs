//! Pushing an OCI layout to a real registry (Debian's docker-registry on loopback, htpasswd Basic
//! auth: the scheme ECR uses with its authorization token): blobs are uploaded monolithically
//! once, a second push sends nothing, the stored manifest is ours byte for byte, wrong credentials
//! and a corrupted layout are refused with errors naming what was wrong.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use clawsterctl::image::registry::{PushEvent, Registry};
use clawsterctl::image::{Layout, MANIFEST_MEDIA_TYPE};
use common::registry::{digest, layout, LocalRegistry};

const USER: &str = "clawster";
const PASSWORD: &str = "push-test-password";

#[test]
fn push_uploads_each_blob_once_and_the_manifest_by_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    let manifest_digest = layout(&oci, "amd64");
    let server = LocalRegistry::start(&tmp.path().join("registry"), USER, PASSWORD);
    let base = server.base.clone();
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
    // The registry's own log agrees: three upload sessions, three blob PUTs and one manifest PUT,
    // all from the first push.
    assert_eq!(server.requests("POST", "/blobs/uploads/"), 3);
    assert_eq!(server.requests("PUT", "/blobs/uploads/"), 3);
    assert_eq!(server.requests("PUT", "/manifests/"), 1);
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
    layout(&oci, "amd64");
    let server = LocalRegistry::start(&tmp.path().join("registry"), USER, PASSWORD);
    let base = server.base.clone();
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
