//! Pushing a checked [`Layout`] to a registry over the OCI distribution API with HTTP Basic auth
//! (what ECR accepts with its authorization token, and what a registry with htpasswd uses).
//!
//! Order and policy: every blob is asked for first (`HEAD`); one the registry has is not sent.
//! A missing one is uploaded in one monolithic `PUT` (ECR refuses chunks under 5 MiB, and a
//! monolithic upload has none). The manifest goes last, after every blob it names is there, and
//! is skipped when the registry already has it by digest: a second push of the same image sends
//! no byte. Any other answer stops the push with the URL and the registry's status and message.

use std::time::{Duration, Instant};

use super::{Blob, ImageError, Layout, MANIFEST_MEDIA_TYPE};

/// A registry endpoint with credentials (its `Debug` leaves them out).
pub struct Registry {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base)
            .field("auth", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What happened to one piece of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// The registry already had this blob.
    Present(Blob),
    /// This blob is about to be uploaded.
    Uploading(Blob),
    /// This blob was uploaded, taking that long.
    Uploaded(Blob, Duration),
    /// The manifest was stored (false: it was already there).
    Manifest(bool),
}

/// Totals of a push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Blobs sent.
    pub uploaded: usize,
    /// Blobs the registry had.
    pub present: usize,
    /// Bytes sent (blobs and manifest).
    pub bytes: u64,
}

/// Repository names the distribution grammar allows: lowercase components joined by `/`.
pub fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 256
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        })
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

type Response = ureq::http::Response<ureq::Body>;

impl Registry {
    /// A registry at `base` (`https://<account>.dkr.ecr.<region>.amazonaws.com`, or
    /// `http://127.0.0.1:5000` for a local one) with Basic credentials.
    pub fn new(base: &str, user: &str, password: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(1800)))
            .http_status_as_error(false)
            .user_agent(format!("clawsterctl/{}", clawster_core::VERSION))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            auth: basic(user, password),
            agent,
        }
    }

    fn fail(url: &str, what: impl Into<String>) -> ImageError {
        ImageError::Registry {
            url: url.to_string(),
            what: what.into(),
        }
    }

    /// Maps a transport error or an unexpected status to an error naming the URL.
    fn expect(
        url: &str,
        r: Result<Response, ureq::Error>,
        ok: &[u16],
    ) -> Result<Response, ImageError> {
        let mut resp = r.map_err(|e| Self::fail(url, e.to_string()))?;
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        let what = match status {
            401 | 403 => format!(
                "HTTP {status}: the registry refused the credentials ({})",
                body.trim()
            ),
            _ => format!("HTTP {status}: {}", body.trim()),
        };
        Err(Self::fail(url, what))
    }

    /// Whether the repository has `digest` (`kind` is `blobs` or `manifests`).
    fn has(
        &self,
        repo: &str,
        kind: &str,
        digest: &str,
        accept: Option<&str>,
    ) -> Result<bool, ImageError> {
        let url = format!("{}/v2/{repo}/{kind}/{digest}", self.base);
        let mut req = self.agent.head(&url).header("Authorization", &self.auth);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let resp = Self::expect(&url, req.call(), &[200, 404])?;
        Ok(resp.status().as_u16() == 200)
    }

    /// Uploads one blob monolithically: POST for an upload URL, then one PUT with the digest.
    fn upload(&self, repo: &str, blob: &Blob) -> Result<(), ImageError> {
        let start = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = Self::expect(
            &start,
            self.agent
                .post(&start)
                .header("Authorization", &self.auth)
                .send_empty(),
            &[202],
        )?;
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Self::fail(&start, "202 without a Location header"))?;
        let mut url = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_string()
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={}", blob.digest));
        let bytes = std::fs::read(&blob.path).map_err(|source| ImageError::Read {
            path: blob.path.clone(),
            source,
        })?;
        Self::expect(
            &url,
            self.agent
                .put(&url)
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/octet-stream")
                .send(&bytes[..]),
            &[201],
        )?;
        Ok(())
    }

    /// Whether `repo` has the manifest `digest` (read-only: what a push would skip).
    pub fn has_manifest(&self, repo: &str, digest: &str) -> Result<bool, ImageError> {
        self.has(repo, "manifests", digest, Some(MANIFEST_MEDIA_TYPE))
    }

    /// Pushes `layout` to `repo` under `tag` (see the module documentation for the order).
    pub fn push(
        &self,
        repo: &str,
        tag: &str,
        layout: &Layout,
        mut progress: impl FnMut(PushEvent),
    ) -> Result<PushReport, ImageError> {
        if !valid_repository(repo) {
            return Err(Self::fail(
                &self.base,
                format!("invalid repository name {repo:?}"),
            ));
        }
        let mut report = PushReport::default();
        for blob in &layout.blobs {
            if self.has(repo, "blobs", &blob.digest, None)? {
                report.present += 1;
                progress(PushEvent::Present(blob.clone()));
                continue;
            }
            progress(PushEvent::Uploading(blob.clone()));
            let t = Instant::now();
            self.upload(repo, blob)?;
            report.uploaded += 1;
            report.bytes += blob.size;
            progress(PushEvent::Uploaded(blob.clone(), t.elapsed()));
        }
        if self.has(repo, "manifests", &layout.digest, Some(MANIFEST_MEDIA_TYPE))? {
            progress(PushEvent::Manifest(false));
            return Ok(report);
        }
        let url = format!("{}/v2/{repo}/manifests/{tag}", self.base);
        let resp = Self::expect(
            &url,
            self.agent
                .put(&url)
                .header("Authorization", &self.auth)
                .header("Content-Type", MANIFEST_MEDIA_TYPE)
                .send(&layout.manifest[..]),
            &[201],
        )?;
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if d != layout.digest {
                return Err(Self::fail(
                    &url,
                    format!("stored the manifest as {d}, not {}", layout.digest),
                ));
            }
        }
        report.bytes += layout.manifest.len() as u64;
        progress(PushEvent::Manifest(true));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_rfc4648_base64() {
        assert_eq!(basic("AWS", "pw"), "Basic QVdTOnB3");
        assert_eq!(basic("a", "b"), "Basic YTpi");
        assert_eq!(basic("user", "pass"), "Basic dXNlcjpwYXNz");
    }

    #[test]
    fn repository_names_follow_the_grammar() {
        for good in ["clawster-openclaw", "clawster/openclaw", "a.b_c-d/e1"] {
            assert!(valid_repository(good), "{good}");
        }
        for bad in ["", "Clawster", "-a", "a-", "a//b", "a b", "a:b", "../x"] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }
}
