//! Putting a replica generation back on disk, whole or not at all.
//!
//! Every object is fetched by the version id its manifest names, decompressed, and checked
//! against the manifest's size and SHA256 into a staging directory next to the state directory
//! (`<dir>.restoring`, root-only while it is built). Only when every file is there and synced
//! does the staging directory take the state directory's place by rename; the state it replaces
//! is kept once as `<dir>.before-restore`. A torn replica (an object missing, or different from
//! what the manifest says) fails naming the file, and the state directory is left as it was.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{Keys, Kind, Manifest, Owner};
use crate::host::s3::Bucket;

/// What a restore put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The generation restored.
    pub generation: u64,
    /// When that generation was taken.
    pub taken_at: String,
    /// Files and databases written.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The staging directory of `dir`.
pub fn staging(dir: &Path) -> PathBuf {
    sibling(dir, ".restoring")
}

/// Where the state a restore replaced is kept.
pub fn replaced(dir: &Path) -> PathBuf {
    sibling(dir, ".before-restore")
}

fn gunzip_limited(bytes: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a gzip stream: {e}"))?;
    Ok(out)
}

/// Restores `manifest` into `dir`; on any failure the staging directory is removed and `dir`
/// is as it was.
pub fn restore(
    bucket: &Bucket,
    keys: &Keys,
    manifest: &Manifest,
    dir: &Path,
) -> Result<Restored, String> {
    let result = build_and_swap(bucket, keys, manifest, dir);
    if result.is_err() {
        let _ = fs::remove_dir_all(staging(dir));
    }
    result
}

fn build_and_swap(
    bucket: &Bucket,
    keys: &Keys,
    manifest: &Manifest,
    dir: &Path,
) -> Result<Restored, String> {
    let stage = staging(dir);
    if stage.exists() {
        // A restore killed halfway: its staging directory is incomplete by definition.
        fs::remove_dir_all(&stage).map_err(|e| format!("removing {}: {e}", stage.display()))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&stage)
        .map_err(|e| format!("creating {}: {e}", stage.display()))?;
    let mut files = 0usize;
    let mut bytes = 0u64;
    // Directories first (the manifest is sorted, so parents come before children), then the
    // content; owners and modes of directories last, so a 0500 directory can still be filled.
    for e in manifest.files.iter().filter(|e| e.kind == Kind::Dir) {
        let p = stage.join(&e.path);
        fs::create_dir_all(&p).map_err(|err| format!("creating {}: {err}", p.display()))?;
    }
    for e in &manifest.files {
        let p = stage.join(&e.path);
        match e.kind {
            Kind::Dir => continue,
            Kind::Symlink => {
                std::os::unix::fs::symlink(&e.target, &p)
                    .map_err(|err| format!("{}: {err}", e.path))?;
                std::os::unix::fs::lchown(&p, Some(e.uid), Some(e.gid))
                    .map_err(|err| format!("chown {}: {err}", p.display()))?;
                continue;
            }
            Kind::File | Kind::Sqlite => {}
        }
        let key = keys.file(&e.path);
        let torn = |why: String| {
            format!(
                "torn replica: {} (generation {}, object {key} version {}): {why}",
                e.path, manifest.generation, e.version_id
            )
        };
        let packed = bucket
            .get(&key, Some(&e.version_id))
            .map_err(|err| torn(err.to_string()))?
            .ok_or_else(|| torn("the object is missing".into()))?;
        let content = gunzip_limited(&packed, e.size).map_err(torn)?;
        if content.len() as u64 != e.size {
            return Err(torn(format!(
                "{} bytes, the manifest says {}",
                content.len(),
                e.size
            )));
        }
        let sha = hex::encode(Sha256::digest(&content));
        if sha != e.sha256 {
            return Err(torn(format!(
                "SHA256 {sha}, the manifest says {}",
                e.sha256
            )));
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|err| format!("creating {}: {err}", p.display()))?;
        f.write_all(&content)
            .and_then(|()| f.sync_all())
            .map_err(|err| format!("writing {}: {err}", p.display()))?;
        std::os::unix::fs::fchown(&f, Some(e.uid), Some(e.gid))
            .map_err(|err| format!("chown {}: {err}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(e.mode))
            .map_err(|err| format!("chmod {}: {err}", p.display()))?;
        files += 1;
        bytes += e.size;
    }
    for e in manifest.files.iter().filter(|e| e.kind == Kind::Dir).rev() {
        let p = stage.join(&e.path);
        std::os::unix::fs::chown(&p, Some(e.uid), Some(e.gid))
            .map_err(|err| format!("chown {}: {err}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(e.mode))
            .map_err(|err| format!("chmod {}: {err}", p.display()))?;
        fs::File::open(&p)
            .and_then(|d| d.sync_all())
            .map_err(|err| format!("syncing {}: {err}", p.display()))?;
    }
    swap_in(&stage, dir, manifest.root)?;
    Ok(Restored {
        generation: manifest.generation,
        taken_at: manifest.taken_at.clone(),
        files,
        bytes,
    })
}

/// Gives the staging directory the state directory's owner and mode (the existing directory's,
/// else the manifest's, else root 0700), moves the state directory aside (keeping one previous
/// copy) and renames the staging directory into its place.
pub fn swap_in(stage: &Path, dir: &Path, recorded: Option<Owner>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let old = replaced(dir);
    let existing = fs::metadata(dir);
    let owner = match &existing {
        Ok(md) => Owner {
            uid: md.uid(),
            gid: md.gid(),
            mode: md.mode() & 0o7777,
        },
        Err(_) => recorded.unwrap_or(Owner {
            uid: 0,
            gid: 0,
            mode: 0o700,
        }),
    };
    std::os::unix::fs::chown(stage, Some(owner.uid), Some(owner.gid))
        .map_err(|e| format!("chown {}: {e}", stage.display()))?;
    fs::set_permissions(stage, fs::Permissions::from_mode(owner.mode))
        .map_err(|e| format!("chmod {}: {e}", stage.display()))?;
    match existing {
        Ok(_) => {
            if old.exists() {
                fs::remove_dir_all(&old).map_err(|e| format!("removing {}: {e}", old.display()))?;
            }
            fs::rename(dir, &old).map_err(|e| format!("moving {} aside: {e}", dir.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    fs::rename(stage, dir).map_err(|e| format!("renaming {} into place: {e}", stage.display()))?;
    if let Some(parent) = dir.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("syncing {}: {e}", parent.display()))?;
    }
    Ok(())
}
