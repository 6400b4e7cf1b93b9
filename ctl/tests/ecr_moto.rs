//! `clawsterctl deploy` pushing the bot image: ECR from the moto emulator (the repository, the
//! authorization token) and a real registry for the bytes (Debian's docker-registry on loopback
//! with the htpasswd entry moto's token decodes to, `AWS:<account>-auth-token`, reached through
//! `--registry-url`: moto has ECR's API but no registry).
//!
//! Two deploys of one bot: the first creates the repository (immutable tags, scan on push,
//! AES256) and uploads every blob once; the second finds the digest there and uploads nothing
//! (counted in the registry's own request log) and the plan says nothing changes; the task
//! definition names `<repository URI>@<digest of the layout>` and carries every hardening field.
//! A third deploy of a rebuilt image sends only the layer that changed, and the plan lists the
//! task definition as changed (the image is a parameter, not part of the template). Before any of it:
//! a missing layout, an image for the other architecture, and a registry refusing the token are
//! refused with errors naming what was wrong, and no stack is made.
//!
//! `CLAWSTER_ECR_TEST_LAYOUT=DIR` pushes that layout (e.g. a real `dist/image/x86_64` from
//! `packaging/build-image`) instead of the small fixture, to measure a real push.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clawsterctl::image::ecr::REPOSITORY;
use clawsterctl::image::registry::Registry;
use clawsterctl::image::Layout;
use common::moto::{release_dir, service, text, Moto};
use common::registry::{layout, layout_with, LocalRegistry};

/// moto's account, and the password its authorization token carries.
const ACCOUNT: &str = "123456789012";

fn token_password() -> String {
    format!("{ACCOUNT}-auth-token")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The layout to push: `CLAWSTER_ECR_TEST_LAYOUT`, or the fixture written to `dist/image/x86_64`.
fn image_layout(dist: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CLAWSTER_ECR_TEST_LAYOUT") {
        return PathBuf::from(dir);
    }
    let dir = dist.join("image/x86_64");
    layout(&dir, "amd64");
    dir
}

fn repositories(rt: &tokio::runtime::Runtime, aws: &clawsterctl::aws::Aws) -> Vec<String> {
    let out = rt.block_on(aws.ecr.describe_repositories().send()).unwrap();
    out.repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_string))
        .collect()
}

#[test]
fn deploy_makes_the_repository_once_and_pushes_only_what_the_registry_lacks() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let dist = release_dir(&work.path().join("dist"));
    let oci = image_layout(&dist);
    let expected = Layout::open(&oci).unwrap();
    let registry = LocalRegistry::start(&work.path().join("registry"), "AWS", &token_password());
    let rt = rt();
    let aws = rt.block_on(moto.aws());
    let (dist_s, oci_s) = (dist.to_str().unwrap(), oci.to_str().unwrap());
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "alpha",
            "--artifacts",
            dist_s,
            "--instance-type",
            "t3.small",
            "--image-layout",
            oci_s,
            "--registry-url",
            &registry.base,
            "--timeout",
            "10m",
        ];
        args.extend_from_slice(extra);
        moto.ctl(&args)
    };

    // Without a terminal: the plan says the image will be pushed to a new repository, and
    // nothing is made.
    let out = deploy(&[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains(&format!(
            "The bot image {} (x86_64, {oci_s}",
            expected.digest
        )) && t.contains("is pushed to a new ECR repository clawster-openclaw"),
        "{t}"
    );
    assert!(repositories(&rt, &aws).is_empty());

    let stop = Arc::new(AtomicBool::new(false));
    let reg = common::moto::registrar(&moto, stop.clone());

    // First deploy: the repository is made, every blob uploaded once, the manifest stored.
    let started = Instant::now();
    let out = deploy(&["--yes"]);
    let first = started.elapsed();
    let t = text(&out);
    let first_lines: Vec<String> = t
        .lines()
        .filter(|l| l.contains("bot image") || l.contains("uploaded sha256:"))
        .map(str::to_string)
        .collect();
    assert!(out.status.success(), "{t}");
    let uri = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}");
    assert!(
        t.contains(&format!(
            "created ECR repository {uri} (immutable tags, scan on push, AES256)"
        )),
        "{t}"
    );
    let blobs = expected.blobs.len();
    assert!(
        t.contains(&format!("pushed to {uri}: {blobs} blobs uploaded"))
            && t.contains(", 0 skipped, in "),
        "{t}"
    );
    assert_eq!(registry.requests("POST", "/blobs/uploads/"), blobs);
    assert_eq!(registry.requests("PUT", "/blobs/uploads/"), blobs);
    assert_eq!(registry.requests("PUT", "/manifests/"), 1);
    let image = format!("{uri}@{}", expected.digest);
    let bot = rt
        .block_on(clawsterctl::stack::describe(&aws, "clawster-bot-alpha"))
        .unwrap()
        .expect("bot stack");
    assert_eq!(bot.parameters["BotImage"], image);
    common::moto::assert_task_is_hardened(&rt, &aws, &service(&rt, &aws, &bot), &image);
    // The registry has the manifest under the digest the task names.
    let pushed = Registry::new(&registry.base, "AWS", &token_password())
        .has_manifest(REPOSITORY, &expected.digest)
        .unwrap();
    assert!(pushed);

    // The repository: one, immutable tags, scanned on push, AES256.
    let out = rt.block_on(aws.ecr.describe_repositories().send()).unwrap();
    let [repo] = out.repositories() else {
        panic!("one repository: {:?}", out.repositories());
    };
    assert_eq!(repo.repository_name(), Some(REPOSITORY));
    assert_eq!(repo.repository_uri(), Some(uri.as_str()));
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&aws_sdk_ecr::types::ImageTagMutability::Immutable)
    );
    assert!(repo
        .image_scanning_configuration()
        .is_some_and(|c| c.scan_on_push()));
    assert_eq!(
        repo.encryption_configuration().map(|e| e.encryption_type()),
        Some(&aws_sdk_ecr::types::EncryptionType::Aes256)
    );

    // The plan of the next deploy knows the image is there.
    let out = deploy(&[]);
    let t = text(&out);
    assert!(
        t.contains(&format!("is already in {uri}: nothing to push")),
        "{t}"
    );

    // Second deploy: nothing uploaded, no repository made, the same reference.
    let started = Instant::now();
    let out = deploy(&["--yes"]);
    let second = started.elapsed();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(!t.contains("created ECR repository"), "{t}");
    assert!(t.contains("change: nothing changed"), "{t}");
    assert!(
        t.contains(&format!(
            "already in {uri}: nothing uploaded ({blobs} blobs skipped)"
        )),
        "{t}"
    );
    assert_eq!(registry.requests("POST", "/blobs/uploads/"), blobs);
    assert_eq!(registry.requests("PUT", "/blobs/uploads/"), blobs);
    assert_eq!(registry.requests("PUT", "/manifests/"), 1);
    assert_eq!(repositories(&rt, &aws), [REPOSITORY]);
    let bot = rt
        .block_on(clawsterctl::stack::describe(&aws, "clawster-bot-alpha"))
        .unwrap()
        .expect("bot stack");
    assert_eq!(bot.parameters["BotImage"], image);
    for l in t.lines().filter(|l| l.contains("bot image")) {
        eprintln!("measured (second deploy): {l}");
    }

    // A new image: the plan says the task definition changes, only the blobs the repository
    // lacks are sent, and the bot stack gets the new digest.
    let newer = work.path().join("newer");
    layout_with(&newer, "amd64", b"second layer, rebuilt");
    let newer_layout = Layout::open(&newer).unwrap();
    let known: Vec<&str> = expected.blobs.iter().map(|b| b.digest.as_str()).collect();
    let lacking = newer_layout
        .blobs
        .iter()
        .filter(|b| !known.contains(&b.digest.as_str()))
        .count();
    let out = moto.ctl(&[
        "deploy",
        "alpha",
        "--artifacts",
        dist_s,
        "--instance-type",
        "t3.small",
        "--image-layout",
        newer.to_str().unwrap(),
        "--registry-url",
        &registry.base,
        "--timeout",
        "10m",
        "--yes",
    ]);
    stop.store(true, Ordering::SeqCst);
    reg.join().unwrap();
    let t3 = text(&out);
    assert!(out.status.success(), "{t3}");
    assert!(t3.contains("change: task definition: changed"), "{t3}");
    assert!(
        t3.contains(&format!("{lacking} blobs uploaded"))
            && t3.contains(&format!(
                ", {} skipped, in ",
                newer_layout.blobs.len() - lacking
            )),
        "{t3}"
    );
    assert_eq!(
        registry.requests("POST", "/blobs/uploads/"),
        blobs + lacking
    );
    assert_eq!(registry.requests("PUT", "/manifests/"), 2);
    let newer_image = format!("{uri}@{}", newer_layout.digest);
    let bot = rt
        .block_on(clawsterctl::stack::describe(&aws, "clawster-bot-alpha"))
        .unwrap()
        .expect("bot stack");
    assert_eq!(bot.parameters["BotImage"], newer_image);
    // The stack update carries it to the task definition in CloudFormation; moto's own update of
    // a TaskDefinition registers a revision without its container definition (no image at all),
    // so the task is checked after the first deploy only.

    let size: u64 = expected.blobs.iter().map(|b| b.size).sum();
    eprintln!(
        "measured: image {} ({} blobs, {size} bytes): first deploy {:.1} s, second {:.1} s",
        expected.digest,
        blobs,
        first.as_secs_f64(),
        second.as_secs_f64()
    );
    for l in &first_lines {
        eprintln!("measured: {l}");
    }
}

#[test]
fn a_missing_or_foreign_layout_and_a_refused_token_stop_before_any_stack() {
    let moto = Moto::start();
    let work = tempfile::tempdir().unwrap();
    let dist = release_dir(&work.path().join("dist"));
    let dist_s = dist.to_str().unwrap();
    let rt = rt();
    let aws = rt.block_on(moto.aws());
    let no_stack = || {
        assert!(rt
            .block_on(clawsterctl::stack::list(&aws, "clawster-"))
            .unwrap()
            .is_empty());
    };

    // The default host type is arm64: its layout is looked for in dist/image/arm64.
    let out = moto.ctl(&["deploy", "alpha", "--artifacts", dist_s, "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains(&format!(
            "{}",
            dist.join("image/arm64/index.json").display()
        )) && t.contains("packaging/build-image arm64"),
        "{t}"
    );

    // A registry URL that is no URL: refused before anything.
    let out = moto.ctl(&[
        "deploy",
        "alpha",
        "--artifacts",
        dist_s,
        "--registry-url",
        "127.0.0.1:5000",
        "--yes",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("\"127.0.0.1:5000\" is not an http:// or https:// URL"),
        "{t}"
    );

    // An x86_64 image for an arm64 host.
    let oci = work.path().join("amd64");
    layout(&oci, "amd64");
    let out = moto.ctl(&[
        "deploy",
        "alpha",
        "--artifacts",
        dist_s,
        "--image-layout",
        oci.to_str().unwrap(),
        "--yes",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("is for architecture amd64, and the host type is arm64"),
        "{t}"
    );
    no_stack();
    assert!(repositories(&rt, &aws).is_empty());

    // A registry that does not take the token: the push fails naming the registry's answer,
    // after the repository was made and before any stack.
    let registry = LocalRegistry::start(&work.path().join("registry"), "AWS", "another-password");
    let out = moto.ctl(&[
        "deploy",
        "alpha",
        "--artifacts",
        dist_s,
        "--instance-type",
        "t3.small",
        "--image-layout",
        oci.to_str().unwrap(),
        "--registry-url",
        &registry.base,
        "--yes",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("registry {}/v2/", registry.base))
            && t.contains("HTTP 401: the registry refused the credentials"),
        "{t}"
    );
    assert!(t.contains("no stack was changed"), "{t}");
    no_stack();
}
