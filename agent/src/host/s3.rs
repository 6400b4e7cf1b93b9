//! Amazon S3, the boundary the state replication talks to: a small, blocking client for the five
//! calls it needs (GET, PUT, HEAD, DELETE of one object and ListObjectVersions), signed with
//! Signature Version 4 ([`super::sigv4`], shared with [`super::autoscaling`]).
//!
//! Why not the AWS SDK: the agent is a small static binary for a 2 GiB host; the SDK would add
//! tokio and several MB for five calls. The signing is the documented SigV4 algorithm over
//! `ureq` (rustls, the same client the Sysbox download uses).
//!
//! Credentials come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`: tests, and an operator's manual run) or from the instance role through
//! IMDSv2, refreshed five minutes before they expire. Secrets never appear in errors or logs.
//!
//! Addressing: virtual-hosted `https://<bucket>.s3.<region>.amazonaws.com/<key>` on AWS (the VPC's
//! S3 gateway endpoint routes it, so no NAT is needed); with an explicit endpoint (an emulator in
//! tests) path-style `<endpoint>/<bucket>/<key>`.

use std::io::Read;
use std::time::Duration;

use clawster_core::timefmt::{fmt_amz, parse_http_date, parse_utc};

use super::sigv4::{payload_hash, sign, uri_encode, Canonical, KeyRing, Scope};
pub use super::sigv4::{unix_now, CredentialSource, Credentials};

/// Largest object body read into memory.
pub const MAX_BODY: u64 = 1 << 30;

/// A failed S3 call.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// S3 answered with an error status.
    #[error("S3 {op} {key}: HTTP {status} {code}: {message}")]
    Status {
        /// The call (`GET`, `PUT`, ...).
        op: &'static str,
        /// The object key or prefix.
        key: String,
        /// HTTP status.
        status: u16,
        /// S3's error code (`AccessDenied`, `NoSuchKey`, ...), empty when the body had none.
        code: String,
        /// S3's message.
        message: String,
    },
    /// The request did not complete.
    #[error("S3 {op} {key}: {message}")]
    Transport {
        /// The call.
        op: &'static str,
        /// The object key or prefix.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// No credentials could be found.
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    /// A bucket name or region that cannot be right.
    #[error("invalid S3 setting: {0}")]
    Invalid(String),
}

/// One version of an object, from ListObjectVersions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The key.
    pub key: String,
    /// Its version id (`null` on an unversioned bucket).
    pub version_id: String,
    /// Unix time it was written.
    pub last_modified: i64,
    /// True for a delete marker.
    pub delete_marker: bool,
}

/// The answer to a HEAD: the object's time as S3 sees it, and S3's own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// `Last-Modified` (unix seconds).
    pub last_modified: i64,
    /// The response's `Date` (unix seconds): S3's clock, so ages need no trust in ours.
    pub server_now: i64,
}

/// A bucket in a region.
#[derive(Debug)]
pub struct Bucket {
    name: String,
    region: String,
    endpoint: Option<String>,
    keys: KeyRing,
    agent: ureq::Agent,
}

impl Bucket {
    /// A client for `name` in `region`; `endpoint` (e.g. `http://127.0.0.1:5000`) switches to
    /// path-style requests against it.
    pub fn new(
        name: &str,
        region: &str,
        endpoint: Option<&str>,
        creds: CredentialSource,
    ) -> Result<Self, S3Error> {
        let bad = |m: &str| S3Error::Invalid(m.to_string());
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(bad(
                "the bucket name must be lower-case letters, digits, '-' and '.'",
            ));
        }
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("the region must be like us-east-1"));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(300)))
            .http_status_as_error(false)
            .user_agent(format!("clawster-agent/{}", clawster_core::VERSION))
            .build()
            .into();
        Ok(Self {
            name: name.to_string(),
            region: region.to_string(),
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            keys: KeyRing::new(creds),
            agent,
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn credentials(&self) -> Result<Credentials, S3Error> {
        self.keys.get().map_err(|e| S3Error::Credentials(e.0))
    }

    /// (host, path prefix, scheme) of requests.
    fn base(&self) -> (String, String, String) {
        match &self.endpoint {
            Some(e) => {
                let (scheme, rest) = e.split_once("://").unwrap_or(("https", e));
                (
                    rest.to_string(),
                    format!("/{}", self.name),
                    scheme.to_string(),
                )
            }
            None => (
                format!("{}.s3.{}.amazonaws.com", self.name, self.region),
                String::new(),
                "https".into(),
            ),
        }
    }

    /// Sends one signed request. `query` pairs are unencoded.
    fn send(
        &self,
        op: &'static str,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> Result<(u16, http_parts::Parts, Vec<u8>), S3Error> {
        let transport = |m: String| S3Error::Transport {
            op,
            key: key.to_string(),
            message: m,
        };
        let creds = self.credentials()?;
        let (host, prefix, scheme) = self.base();
        let path = format!("{prefix}/{}", uri_encode(key, false));
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
            .collect();
        q.sort();
        let canonical_query = q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let now = unix_now();
        let amz_date = fmt_amz(now);
        let payload_hash = payload_hash(body);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host.clone()),
            ("x-amz-content-sha256".into(), payload_hash.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(t) = &creds.token {
            headers.push(("x-amz-security-token".into(), t.clone()));
        }
        for (k, v) in extra {
            headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
        headers.sort();
        let auth = sign(
            &creds,
            Scope {
                region: &self.region,
                service: "s3",
            },
            &amz_date,
            Canonical {
                method,
                path: &path,
                query: &canonical_query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
        );
        let url = if canonical_query.is_empty() {
            format!("{scheme}://{host}{path}")
        } else {
            format!("{scheme}://{host}{path}?{canonical_query}")
        };
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in &headers {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        req = req.header("authorization", auth);
        let req = req
            .body(body.to_vec())
            .map_err(|e| transport(e.to_string()))?;
        let resp = self.agent.run(req).map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let mut out = Vec::new();
        body.into_with_config()
            .limit(MAX_BODY)
            .reader()
            .read_to_end(&mut out)
            .map_err(|e| transport(format!("reading the body: {e}")))?;
        Ok((status, http_parts::Parts(parts), out))
    }

    fn fail(op: &'static str, key: &str, status: u16, body: &[u8]) -> S3Error {
        let text = String::from_utf8_lossy(body);
        S3Error::Status {
            op,
            key: key.to_string(),
            status,
            code: xml_text(&text, "Code").unwrap_or_default(),
            message: xml_text(&text, "Message").unwrap_or_default(),
        }
    }

    /// GETs an object (a given version, or the current one); `None` when it does not exist.
    pub fn get(&self, key: &str, version: Option<&str>) -> Result<Option<Vec<u8>>, S3Error> {
        let query: Vec<(&str, &str)> = version.map(|v| ("versionId", v)).into_iter().collect();
        let (status, _, body) = self.send("GET", "GET", key, &query, &[], &[])?;
        match status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            s => Err(Self::fail("GET", key, s, &body)),
        }
    }

    /// PUTs an object; returns the version id S3 gave it (`null` on an unversioned bucket).
    pub fn put(&self, key: &str, body: &[u8], content_type: &str) -> Result<String, S3Error> {
        let (status, parts, resp) = self.send(
            "PUT",
            "PUT",
            key,
            &[],
            body,
            &[("content-type", content_type)],
        )?;
        if status == 200 {
            Ok(parts
                .header("x-amz-version-id")
                .unwrap_or_else(|| "null".into()))
        } else {
            Err(Self::fail("PUT", key, status, &resp))
        }
    }

    /// HEADs an object; `None` when it does not exist.
    pub fn head(&self, key: &str) -> Result<Option<Head>, S3Error> {
        let (status, parts, _) = self.send("HEAD", "HEAD", key, &[], &[], &[])?;
        let date = |name: &str| parts.header(name).and_then(|v| parse_http_date(&v));
        match status {
            200 => Ok(Some(Head {
                last_modified: date("last-modified").unwrap_or(0),
                server_now: date("date").unwrap_or_else(unix_now),
            })),
            404 => Ok(None),
            s => Err(Self::fail("HEAD", key, s, &[])),
        }
    }

    /// Deletes the current version of an object (a delete marker on a versioned bucket).
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        let (status, _, body) = self.send("DELETE", "DELETE", key, &[], &[], &[])?;
        if status == 204 || status == 200 || status == 404 {
            Ok(())
        } else {
            Err(Self::fail("DELETE", key, status, &body))
        }
    }

    /// Every version (and delete marker) of every key under `prefix`, all pages.
    pub fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>, S3Error> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        for _page in 0..10_000 {
            let mut query = vec![("versions", ""), ("prefix", prefix)];
            if let Some((k, v)) = &markers {
                query.push(("key-marker", k));
                query.push(("version-id-marker", v));
            }
            // A bucket-level request: the path is the bucket's root.
            let (status, _, body) =
                self.send("LIST", "GET", "", &query, &[], &[])
                    .map_err(|e| match e {
                        S3Error::Transport { op, message, .. } => S3Error::Transport {
                            op,
                            key: prefix.to_string(),
                            message,
                        },
                        other => other,
                    })?;
            let text = String::from_utf8_lossy(&body).into_owned();
            if status != 200 {
                return Err(Self::fail("LIST", prefix, status, &body));
            }
            out.extend(parse_versions(&text));
            if xml_text(&text, "IsTruncated").as_deref() == Some("true") {
                markers = Some((
                    xml_text(&text, "NextKeyMarker").unwrap_or_default(),
                    xml_text(&text, "NextVersionIdMarker").unwrap_or_default(),
                ));
            } else {
                return Ok(out);
            }
        }
        Err(S3Error::Transport {
            op: "LIST",
            key: prefix.to_string(),
            message: "more than 10000 pages".into(),
        })
    }
}

/// Header access on a response (kept apart so `send` returns owned parts).
mod http_parts {
    /// A response's head.
    pub struct Parts(pub ureq::http::response::Parts);

    impl Parts {
        /// A header's value as text.
        pub fn header(&self, name: &str) -> Option<String> {
            self.0
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        }
    }
}

/// The text of the first `<tag>` element, entities decoded.
pub(crate) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml_unescape(&xml[start..end]))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The `<Version>` and `<DeleteMarker>` entries of a ListObjectVersions answer.
fn parse_versions(xml: &str) -> Vec<ObjectVersion> {
    let mut out = Vec::new();
    for (tag, marker) in [("Version", false), ("DeleteMarker", true)] {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut rest = xml;
        while let Some(i) = rest.find(&open) {
            let body_start = i + open.len();
            let Some(j) = rest[body_start..].find(&close) else {
                break;
            };
            let entry = &rest[body_start..body_start + j];
            if let (Some(key), Some(version_id), Some(modified)) = (
                xml_text(entry, "Key"),
                xml_text(entry, "VersionId"),
                xml_text(entry, "LastModified").and_then(|t| parse_utc(&t)),
            ) {
                out.push(ObjectVersion {
                    key,
                    version_id,
                    last_modified: modified,
                    delete_marker: marker,
                });
            }
            rest = &rest[body_start + j + close.len()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_and_markers() {
        let xml = "<ListVersionsResult><IsTruncated>false</IsTruncated>\
            <Version><Key>state/a/manifest.json</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest>\
            <LastModified>2026-12-02T07:00:05.000Z</LastModified></Version>\
            <Version><Key>state/a/manifest.json</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest>\
            <LastModified>2026-12-02T07:00:00.000Z</LastModified></Version>\
            <DeleteMarker><Key>state/a/x&amp;y</Key><VersionId>d1</VersionId>\
            <LastModified>2026-12-02T07:01:00.000Z</LastModified></DeleteMarker></ListVersionsResult>";
        let v = parse_versions(xml);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].version_id, "v2");
        assert_eq!(v[0].last_modified, 1_796_194_805);
        assert!(!v[1].delete_marker);
        assert_eq!(v[2].key, "state/a/x&y");
        assert!(v[2].delete_marker);
    }

    #[test]
    fn refuses_bad_names() {
        let creds = || CredentialSource::Static(Credentials::fixed("a", "b", None));
        assert!(Bucket::new("Bad_Bucket", "us-east-1", None, creds()).is_err());
        assert!(Bucket::new("ok-bucket", "us east", None, creds()).is_err());
        assert!(Bucket::new("ok-bucket", "us-east-1", None, creds()).is_ok());
    }
}
