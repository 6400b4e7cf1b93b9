//! The bot image in deploy: checked locally in step 1, looked up in step 2 (read-only, for the
//! plan), pushed in step 3b, right after consent and before any stack is touched.
//!
//! Unless the operator names an image by digest (`--image`, pushed elsewhere by hand), deploy
//! reads the OCI layout `packaging/build-image` wrote for the host type's architecture, makes the
//! region's ECR repository once ([`crate::image::ecr`]) and pushes the image there: blobs the
//! registry has are skipped, a manifest already there by digest is not sent again. Only after the
//! manifest is stored does the bot stack get `<repository>@<digest>`, so a failed push leaves
//! nothing that names an image the registry does not have complete (at most the empty or partly
//! filled repository, which the next deploy reuses).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{exit, Fail};
use crate::aws::Aws;
use crate::image::ecr::{self, Login, Repository, REPOSITORY};
use crate::image::registry::{PushEvent, PushReport, Registry};
use crate::image::{ImageError, Layout};
use crate::names::{Arch, ImageRef};
use crate::progress::{Mark, Ui};

/// Where the bot image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// `--image REF@sha256:...`: already in a registry the host can pull from.
    Given(ImageRef),
    /// An OCI layout directory to push to the region's ECR repository.
    Layout(PathBuf),
}

/// A layout checked in step 1: every blob's size and digest, and the architecture.
#[derive(Debug, Clone)]
pub struct Local {
    /// The layout's directory.
    pub dir: PathBuf,
    /// The host's architecture, which the image's config names.
    pub arch: Arch,
    /// The checked layout.
    pub layout: Layout,
}

/// What step 2 found in ECR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// The region has no repository yet: the push creates it.
    NoRepository,
    /// The repository lacks this digest: the push sends what it lacks.
    Missing(Repository),
    /// The repository has this digest: nothing to send.
    Present(Repository),
}

/// The name the OCI config uses for an architecture.
fn oci_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "amd64",
        Arch::Arm64 => "arm64",
    }
}

/// Step 1: reads and checks the layout in `dir` for a host of `arch`.
pub fn open(dir: &Path, arch: Arch) -> Result<Local, Fail> {
    let usage = |m: String| {
        Fail::new(exit::USAGE, m).next(format!(
            "build it with `packaging/build-image {}`, point --image-layout at it, or pass --image REF@sha256:... for an image pushed elsewhere",
            arch.as_str()
        ))
    };
    let layout = Layout::open(dir).map_err(|e| usage(format!("the bot image: {e}")))?;
    let config = &layout.blobs[0];
    let parsed: serde_json::Value = std::fs::read(&config.path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let found = parsed["architecture"].as_str().unwrap_or("none");
    if found != oci_arch(arch) {
        return Err(usage(format!(
            "the bot image in {} is for architecture {found}, and the host type is {} ({})",
            dir.display(),
            arch.as_str(),
            oci_arch(arch)
        )));
    }
    Ok(Local {
        dir: dir.to_path_buf(),
        arch,
        layout,
    })
}

/// The tag the image gets: immutable tags never move, so it is made from the digest.
pub fn tag(local: &Local) -> String {
    let hex = local.layout.digest.trim_start_matches("sha256:");
    format!("{}-{}", local.arch.as_str(), &hex[..16.min(hex.len())])
}

fn image_fail(what: &str, e: ImageError) -> Fail {
    Fail::new(exit::FAILED, format!("{what}: {e}"))
        .next("no stack was changed: fix the cause above and deploy again")
}

/// Runs a blocking registry call off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ImageError::Registry {
            url: String::new(),
            what: format!("the registry client stopped: {e}"),
        })
    })
}

/// Step 2 (read-only): whether the repository exists and already has the image.
pub async fn survey(aws: &Aws, local: &Local, registry_url: Option<&str>) -> Result<Remote, Fail> {
    let Some(repo) = ecr::find(aws).await? else {
        return Ok(Remote::NoRepository);
    };
    let login = ecr::login(aws, registry_url).await?;
    let digest = local.layout.digest.clone();
    let has = blocking(move || {
        Registry::new(&login.endpoint, &login.user, &login.password)
            .has_manifest(REPOSITORY, &digest)
    })
    .await
    .map_err(|e| image_fail("looking up the bot image", e))?;
    Ok(if has {
        Remote::Present(repo)
    } else {
        Remote::Missing(repo)
    })
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

/// The reference the task will name, when step 2 can tell (`None`: a repository this run makes).
pub fn planned_reference(
    source: &ImageSource,
    local: Option<&Local>,
    remote: Option<&Remote>,
) -> Option<String> {
    match (source, local, remote) {
        (ImageSource::Given(i), _, _) => Some(i.to_string()),
        (_, Some(l), Some(Remote::Missing(r) | Remote::Present(r))) => {
            Some(format!("{}@{}", r.uri, l.layout.digest))
        }
        _ => None,
    }
}

/// The plan's line about the image.
pub fn plan_line(local: &Local, remote: &Remote) -> String {
    let size: u64 = local.layout.blobs.iter().map(|b| b.size).sum();
    let what = format!(
        "The bot image {} ({}, {}, {})",
        local.layout.digest,
        local.arch.as_str(),
        local.dir.display(),
        mib(size)
    );
    match remote {
        Remote::NoRepository => format!(
            "{what} is pushed to a new ECR repository {REPOSITORY} (created once per region: immutable tags, scan on push)."
        ),
        Remote::Missing(r) => format!(
            "{what} is pushed to {} (only the layers it lacks).",
            r.uri
        ),
        Remote::Present(r) => format!("{what} is already in {}: nothing to push.", r.uri),
    }
}

/// Step 3b: makes the repository when absent and pushes what it lacks, with progress; returns the
/// reference by digest the task definition names.
pub async fn push(
    aws: &Aws,
    ui: &Ui,
    local: &Local,
    registry_url: Option<&str>,
) -> Result<(ImageRef, PushReport), Fail> {
    const LABEL: &str = "bot image";
    ui.step(
        "image",
        LABEL,
        Mark::Running,
        Some(format!("ECR repository {REPOSITORY}")),
    );
    let failed = |f: Fail| {
        ui.step("image", LABEL, Mark::Failed, None);
        f
    };
    let (repo, created) = ecr::ensure(aws).await.map_err(|e| failed(e.into()))?;
    if created {
        ui.note(format!(
            "created ECR repository {} (immutable tags, scan on push, AES256)",
            repo.uri
        ));
    }
    let login: Login = ecr::login(aws, registry_url)
        .await
        .map_err(|e| failed(e.into()))?;
    let reference = format!("{}@{}", repo.uri, local.layout.digest);
    let image: ImageRef = reference.parse().map_err(|_| {
        failed(Fail::new(
            exit::FAILED,
            format!(
                "ECR named the repository {:?}, which is not a registry/repository name",
                repo.uri
            ),
        ))
    })?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let layout = local.layout.clone();
    let tag = tag(local);
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(move || {
        Registry::new(&login.endpoint, &login.user, &login.password).push(
            REPOSITORY,
            &tag,
            &layout,
            |e| {
                let _ = tx.send(e);
            },
        )
    });
    let total = local.layout.blobs.len();
    let mut seen = 0usize;
    while let Some(event) = rx.recv().await {
        match event {
            PushEvent::Uploading(b) => ui.step(
                "image",
                LABEL,
                Mark::Running,
                Some(format!(
                    "blob {}/{total}: uploading {} ({})",
                    seen + 1,
                    short(&b.digest),
                    mib(b.size)
                )),
            ),
            PushEvent::Uploaded(b, took) => {
                seen += 1;
                ui.note(format!(
                    "uploaded {} ({} in {})",
                    short(&b.digest),
                    mib(b.size),
                    secs(took)
                ));
            }
            PushEvent::Present(_) => seen += 1,
            PushEvent::Manifest(_) => {}
        }
    }
    let report = task
        .await
        .unwrap_or_else(|e| {
            Err(ImageError::Registry {
                url: login_url(registry_url, &repo),
                what: format!("the push stopped: {e}"),
            })
        })
        .map_err(|e| failed(image_fail("pushing the bot image", e)))?;
    let detail = if report.uploaded == 0 && report.bytes == 0 {
        format!(
            "{} already in {}: nothing uploaded ({} blobs skipped)",
            short(&local.layout.digest),
            repo.uri,
            report.present
        )
    } else {
        format!(
            "{} pushed to {}: {} blobs uploaded ({}), {} skipped, in {}",
            short(&local.layout.digest),
            repo.uri,
            report.uploaded,
            mib(report.bytes),
            report.present,
            secs(started.elapsed())
        )
    };
    let mark = if report.bytes == 0 {
        Mark::Skipped
    } else {
        Mark::Done
    };
    ui.step("image", LABEL, mark, Some(detail));
    Ok((image, report))
}

fn login_url(registry_url: Option<&str>, repo: &Repository) -> String {
    registry_url.map_or_else(|| repo.uri.clone(), str::to_string)
}

/// `sha256:` and the first 12 hex digits, for progress lines.
fn short(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}
