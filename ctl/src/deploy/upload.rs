//! The release binaries in the shared artifacts bucket, where the hosts download them at boot.
//!
//! Each file is checked against the manifest (size and SHA256) before anything is sent: the
//! templates pin those hashes, so a file that differs would only fail later on the host. An
//! object already in the bucket with the same SHA256 is skipped. Uploads carry their SHA256, so
//! S3 itself refuses a body that arrives different.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use sha2::{Digest as _, Sha256};

use aws_sdk_s3::operation::head_object::HeadObjectError;

use crate::aws::{Aws, AwsError};
use crate::manifest::{Release, AGENT, NAT_AGENT};

/// A file to upload, checked against the manifest.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Object key.
    pub key: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Base64 SHA256 (S3's checksum form).
    pub sha256_b64: String,
}

/// Reads and checks every host binary the manifest lists (both agents, every target).
pub fn prepare(dir: &Path, release: &Release) -> Result<Vec<Upload>, String> {
    let mut out = Vec::new();
    for a in release
        .artifacts
        .iter()
        .filter(|a| a.name == AGENT || a.name == NAT_AGENT)
    {
        let path = dir.join(&a.path);
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read {} (listed in the release manifest): {e}; run packaging/build-release",
                path.display()
            )
        })?;
        let digest = Sha256::digest(&bytes);
        if bytes.len() as u64 != a.size || hex::encode(digest) != a.sha256 {
            return Err(format!(
                "{} does not match the release manifest (size {} vs {}, or its SHA256 differs): \
                 the binaries changed after the manifest was written; run packaging/build-release again",
                path.display(),
                bytes.len(),
                a.size
            ));
        }
        out.push(Upload {
            key: release.object_key(a),
            sha256_b64: b64(&digest),
            bytes,
        });
    }
    Ok(out)
}

/// Standard base64 with padding (S3's checksum headers).
pub fn b64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// What [`upload_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uploaded {
    /// Objects sent.
    pub sent: usize,
    /// Objects already there with the same SHA256.
    pub skipped: usize,
}

/// Uploads what is not already in `bucket` with the same SHA256.
pub async fn upload_all(aws: &Aws, bucket: &str, files: &[Upload]) -> Result<Uploaded, AwsError> {
    let mut done = Uploaded::default();
    for f in files {
        let head = aws
            .s3
            .head_object()
            .bucket(bucket)
            .key(&f.key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match head {
            Ok(h) if h.checksum_sha256() == Some(f.sha256_b64.as_str()) => {
                done.skipped += 1;
                continue;
            }
            Ok(_) => {}
            // Not there yet.
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {}
            Err(e) => {
                return Err(AwsError::from_sdk(
                    &format!("HeadObject s3://{bucket}/{}", f.key),
                    e,
                ))
            }
        }
        aws.s3
            .put_object()
            .bucket(bucket)
            .key(&f.key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&f.sha256_b64)
            .content_type("application/octet-stream")
            .body(ByteStream::from(f.bytes.clone()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("PutObject s3://{bucket}/{}", f.key), e))?;
        done.sent += 1;
    }
    Ok(done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        // SHA256 of the empty string, as S3 shows it.
        assert_eq!(
            b64(&Sha256::digest(b"")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
