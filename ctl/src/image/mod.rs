//! The bot image: reading the OCI layout `packaging/build-image` writes (`dist/image/<arch>/`) and
//! pushing it to a registry by digest ([`registry`]).
//!
//! [`Layout::open`] reads `index.json`, the one manifest it names and every blob the manifest
//! names, and checks each blob's size and SHA256 against the manifest before anything is sent:
//! the digest the task definition will carry is then the digest of bytes we checked.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub mod ecr;
pub mod registry;

/// The OCI media type of an image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Something is wrong with the layout or the registry.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file of the layout could not be read.
    #[error("cannot read {path} (build the image with packaging/build-image)")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The layout is not what build-image writes.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The registry answered something we cannot go on from.
    #[error("registry {url}: {what}")]
    Registry {
        /// The request's URL.
        url: String,
        /// Status and message.
        what: String,
    },
}

/// A blob of the image: its digest (`sha256:<hex>`), size and file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<64 hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// The file in `blobs/sha256/`.
    pub path: PathBuf,
}

/// A checked image layout: the manifest's bytes and digest, its config and layers.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `sha256:<hex>` of [`Layout::manifest`]: what the task definition names.
    pub digest: String,
    /// The manifest exactly as stored (the registry gets these bytes).
    pub manifest: Vec<u8>,
    /// The config blob, then the layers, in manifest order.
    pub blobs: Vec<Blob>,
}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn hex_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `sha256:<64 lowercase hex>` only: the digest also becomes a file name and a URL segment.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Layout {
    /// Reads and checks the layout in `dir` (index.json with one manifest).
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        let invalid = |path: &Path, what: String| ImageError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let index_path = dir.join("index.json");
        let index: serde_json::Value = serde_json::from_slice(&read(&index_path)?)
            .map_err(|e| invalid(&index_path, format!("not JSON: {e}")))?;
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let [entry] = &manifests[..] else {
            return Err(invalid(
                &index_path,
                format!("expected exactly one manifest, found {}", manifests.len()),
            ));
        };
        let digest = entry["digest"].as_str().unwrap_or_default().to_string();
        if !valid_digest(&digest) || entry["mediaType"] != MANIFEST_MEDIA_TYPE {
            return Err(invalid(
                &index_path,
                format!(
                    "the manifest entry is not an OCI image manifest by sha256 digest: {entry}"
                ),
            ));
        }
        let blob_path = |d: &str| dir.join("blobs/sha256").join(&d["sha256:".len()..]);
        let manifest_path = blob_path(&digest);
        let manifest = read(&manifest_path)?;
        if hex_digest(&manifest) != digest {
            return Err(invalid(
                &manifest_path,
                format!("content does not hash to {digest}"),
            ));
        }
        let m: serde_json::Value = serde_json::from_slice(&manifest)
            .map_err(|e| invalid(&manifest_path, format!("not JSON: {e}")))?;
        let mut blobs = Vec::new();
        let descriptors =
            std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten());
        for d in descriptors {
            let bd = d["digest"].as_str().unwrap_or_default();
            let size = d["size"].as_u64();
            if !valid_digest(bd) || size.is_none() {
                return Err(invalid(
                    &manifest_path,
                    format!("descriptor without a sha256 digest and size: {d}"),
                ));
            }
            let path = blob_path(bd);
            let bytes = read(&path)?;
            if bytes.len() as u64 != size.unwrap_or_default() || hex_digest(&bytes) != bd {
                return Err(invalid(
                    &path,
                    format!("does not match its descriptor {d} (size {})", bytes.len()),
                ));
            }
            blobs.push(Blob {
                digest: bd.to_string(),
                size: bytes.len() as u64,
                path,
            });
        }
        if blobs.len() < 2 {
            return Err(invalid(
                &manifest_path,
                "the manifest names no layer".into(),
            ));
        }
        Ok(Self {
            digest,
            manifest,
            blobs,
        })
    }
}
