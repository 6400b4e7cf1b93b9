//! AWS Signature Version 4, shared by every AWS API the agent calls ([`super::s3`] and
//! [`super::autoscaling`]): the credentials (environment keys or the instance role through
//! IMDSv2, cached until five minutes before they expire) and the one signing function.
//!
//! Secrets never appear in errors, logs or `Debug` output.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use clawster_core::imds::Imds;
use clawster_core::timefmt::parse_utc;
use sha2::{Digest, Sha256};

/// No credentials could be found (the text says where the agent looked and what failed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// Where the credentials come from.
#[derive(Debug)]
pub enum CredentialSource {
    /// Fixed keys (from the environment).
    Static(Credentials),
    /// The instance role, through IMDSv2.
    Instance(Imds),
}

/// One set of keys.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) access_key: String,
    secret_key: String,
    pub(crate) token: Option<String>,
    /// Unix time they stop working (`i64::MAX` for static keys).
    expires: i64,
}

impl Credentials {
    /// Fixed keys that do not expire.
    pub fn fixed(access_key: &str, secret_key: &str, token: Option<&str>) -> Self {
        Self {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            token: token.map(str::to_string),
            expires: i64::MAX,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl CredentialSource {
    /// Environment keys when set, otherwise the instance role.
    pub fn from_env_or_instance() -> Result<Self, CredentialError> {
        match (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Ok(access_key), Ok(secret_key)) if !access_key.is_empty() => {
                let token = std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty());
                Ok(Self::Static(Credentials::fixed(
                    &access_key,
                    &secret_key,
                    token.as_deref(),
                )))
            }
            _ => Imds::new(clawster_core::imds::DEFAULT_ENDPOINT)
                .map(Self::Instance)
                .map_err(|e| CredentialError(e.to_string())),
        }
    }

    fn fetch(&self) -> Result<Credentials, CredentialError> {
        match self {
            Self::Static(c) => Ok(c.clone()),
            Self::Instance(imds) => {
                let err = |m: String| CredentialError(format!("instance role via IMDS: {m}"));
                let role = imds
                    .get("iam/security-credentials/")
                    .map_err(|e| err(e.to_string()))?;
                let role = role.lines().next().unwrap_or("").trim().to_string();
                if role.is_empty() {
                    return Err(err("the instance has no role".into()));
                }
                let body = imds
                    .get(&format!("iam/security-credentials/{role}"))
                    .map_err(|e| err(e.to_string()))?;
                let v: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| err(format!("not JSON: {e}")))?;
                let field = |k: &str| {
                    v.get(k)
                        .and_then(|x| x.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| err(format!("no {k} in the answer")))
                };
                Ok(Credentials {
                    access_key: field("AccessKeyId")?,
                    secret_key: field("SecretAccessKey")?,
                    token: Some(field("Token")?),
                    expires: parse_utc(&field("Expiration")?)
                        .ok_or_else(|| err("unreadable Expiration".into()))?,
                })
            }
        }
    }
}

/// A credential source with its current keys, refreshed five minutes before they expire.
#[derive(Debug)]
pub struct KeyRing {
    source: CredentialSource,
    cached: Mutex<Option<Credentials>>,
}

impl KeyRing {
    /// Keys from `source`, fetched on first use.
    pub fn new(source: CredentialSource) -> Self {
        Self {
            source,
            cached: Mutex::new(None),
        }
    }

    /// The current keys.
    pub fn get(&self) -> Result<Credentials, CredentialError> {
        let now = unix_now();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached.as_ref() {
            if c.expires - 300 > now {
                return Ok(c.clone());
            }
        }
        let fresh = self.source.fetch()?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

/// Unix time now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// SigV4's URI encoding: unreserved characters stay, everything else is `%XX`; `/` stays in
/// paths (`slash_too` false) and is encoded in query values and form bodies.
pub fn uri_encode(s: &str, slash_too: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b'/' if !slash_too => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The hex SHA-256 of a payload (SigV4's payload hash).
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Who a request is signed for: the credential scope's region and service (`s3`,
/// `autoscaling`, ...).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The region.
    pub region: &'a str,
    /// The service's signing name.
    pub service: &'a str,
}

/// The canonical parts of one request.
#[derive(Debug, Clone, Copy)]
pub struct Canonical<'a> {
    /// The method.
    pub method: &'a str,
    /// The URI-encoded path.
    pub path: &'a str,
    /// The canonical query (encoded, sorted, `k=v` joined by `&`; empty for none).
    pub query: &'a str,
    /// The signed headers, lower-case names, sorted by name.
    pub headers: &'a [(String, String)],
    /// The hex SHA-256 of the body ([`payload_hash`]) or S3's `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
}

/// The `Authorization` header of a SigV4 request signed at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn sign(creds: &Credentials, scope: Scope<'_>, amz_date: &str, req: Canonical<'_>) -> String {
    let day = &amz_date[..8];
    let canonical_headers: String = req
        .headers
        .iter()
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect();
    let signed: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        req.method, req.path, req.query, req.payload_hash
    );
    let credential_scope = format!("{day}/{}/{}/aws4_request", scope.region, scope.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(
        format!("AWS4{}", creds.secret_key).as_bytes(),
        day.as_bytes(),
    );
    let k = hmac(&k, scope.region.as_bytes());
    let k = hmac(&k, scope.service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    let signature = hex::encode(hmac(&k, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// The worked example of AWS's SigV4 documentation for S3 ("GET Object" with a Range
    /// header), whose signature is published.
    #[test]
    fn signs_like_the_documented_s3_example() {
        let creds = Credentials::fixed(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
        );
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let auth = sign(
            &creds,
            Scope {
                region: "us-east-1",
                service: "s3",
            },
            "20130524T000000Z",
            Canonical {
                method: "GET",
                path: "/test.txt",
                query: "",
                headers: &h,
                payload_hash: EMPTY,
            },
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// A Query-protocol API (IAM ListUsers), the worked example of AWS's general SigV4
    /// documentation ("Create a signed AWS API request"), whose signature is published.
    #[test]
    fn signs_like_the_documented_query_api_example() {
        let creds = Credentials::fixed(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        );
        let h = headers(&[
            ("content-type", FORM),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let auth = sign(
            &creds,
            Scope {
                region: "us-east-1",
                service: "iam",
            },
            "20150830T123600Z",
            Canonical {
                method: "GET",
                path: "/",
                query: "Action=ListUsers&Version=2010-05-08",
                headers: &h,
                payload_hash: EMPTY,
            },
        );
        assert!(
            auth.ends_with(
                "Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, \
                 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            ),
            "{auth}"
        );
    }

    /// The exact request the agent sends to complete a lifecycle action (a POST form to
    /// autoscaling), signed by botocore 1.x's `SigV4Auth` (service `autoscaling`) with the
    /// documentation's example keys at a fixed time.
    #[test]
    fn signs_an_autoscaling_post_like_botocore() {
        let creds = Credentials::fixed(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        );
        let body = "Action=CompleteLifecycleAction&AutoScalingGroupName=clawster-bot-asg\
            &InstanceId=i-0123456789abcdef0&LifecycleActionResult=CONTINUE\
            &LifecycleHookName=clawster-final-sync&Version=2011-01-01";
        let hash = payload_hash(body.as_bytes());
        let h = headers(&[
            ("content-type", FORM),
            ("host", "autoscaling.us-east-1.amazonaws.com"),
            ("x-amz-date", "20261207T150000Z"),
        ]);
        let auth = sign(
            &creds,
            Scope {
                region: "us-east-1",
                service: "autoscaling",
            },
            "20261207T150000Z",
            Canonical {
                method: "POST",
                path: "/",
                query: "",
                headers: &h,
                payload_hash: &hash,
            },
        );
        assert!(
            auth.ends_with(
                "Credential=AKIDEXAMPLE/20261207/us-east-1/autoscaling/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, \
                 Signature=ead2976ac34ea1412b9c2c28f78b194566edbfa6b2765a989666b743d6dc1619"
            ),
            "{auth}"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode("state/a b/ü", false), "state/a%20b/%C3%BC");
        assert_eq!(uri_encode("a/b=c", true), "a%2Fb%3Dc");
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = Credentials::fixed("AKID", "very-secret", Some("tok"));
        let d = format!("{c:?}");
        assert!(d.contains("AKID") && !d.contains("very-secret") && !d.contains("tok"));
    }
}
