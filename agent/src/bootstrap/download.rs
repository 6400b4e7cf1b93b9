//! Getting the package: download (bounded retries, overall deadline, mirror fallback) or a local
//! file, streamed into the cache while hashing. A file enters the cache only when its SHA256 equals
//! the pinned value, and nothing reads a byte of it as a package before that.
//!
//! The cache is `/var/cache/clawster/sysbox/<sha256>.deb` (root, 0600, directory 0700): a re-run
//! re-hashes the cached file and uses it without downloading. Because of that re-hash the cache is
//! not fsynced: a cached file a crash left torn fails the hash and is fetched again.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clawster_core::fs::{ensure_dir, AtomicFile, FsError, HostRoot, Ownership};
use sha2::Digest;

use super::deb::{copy_large, sha256_file, HashingWriter};

/// Directory of verified packages.
pub const CACHE_DIR: &str = "/var/cache/clawster/sysbox";
/// Largest download accepted.
pub const MAX_DOWNLOAD: u64 = 512 << 20;

/// Why the package could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// One HTTP attempt failed.
    #[error("GET {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The bytes did not hash to the pinned value.
    #[error("SHA256 mismatch for {source_name}: got {got}, expected {expected} ({bytes} bytes); nothing was kept")]
    Mismatch {
        /// URL or file.
        source_name: String,
        /// Hash of what was received.
        got: String,
        /// The pinned hash.
        expected: String,
        /// Bytes received.
        bytes: u64,
    },
    /// Every attempt failed or the deadline passed.
    #[error("giving up after {attempts} attempt(s) in {elapsed:?} (deadline {deadline:?}); last error: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The overall deadline.
        deadline: Duration,
        /// The last attempt's error.
        last: Box<FetchError>,
    },
    /// A local file could not be read.
    #[error("reading {0}")]
    Local(PathBuf, #[source] io::Error),
    /// Cache file trouble.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Bounded retry policy for downloads. Tests shorten it.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Rounds over the URL list.
    pub attempts: u32,
    /// Pause before the second round; doubled each round.
    pub backoff: Duration,
    /// Upper bound of one attempt.
    pub attempt_timeout: Duration,
    /// Overall deadline for all attempts.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(120),
            deadline: Duration::from_secs(300),
        }
    }
}

/// The HTTP boundary: streams a URL's body into `sink`.
pub trait Fetcher: Send + Sync {
    /// GETs `url`, writing at most `max` bytes of the body to `sink`, within `timeout`.
    fn fetch(
        &self,
        url: &str,
        sink: &mut dyn Write,
        max: u64,
        timeout: Duration,
    ) -> Result<u64, FetchError>;
}

/// The real HTTP(S) client (ureq with rustls; web PKI roots compiled in).
#[derive(Debug)]
pub struct HttpFetcher {
    agent: ureq::Agent,
}

impl Default for HttpFetcher {
    fn default() -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .user_agent(format!("clawster-agent/{}", clawster_core::VERSION))
            .build()
            .into();
        Self { agent }
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(
        &self,
        url: &str,
        sink: &mut dyn Write,
        max: u64,
        timeout: Duration,
    ) -> Result<u64, FetchError> {
        let http = |message: String| FetchError::Http {
            url: url.to_string(),
            message,
        };
        let resp = self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call()
            .map_err(|e| http(e.to_string()))?;
        let mut body = resp.into_body().into_with_config().limit(max).reader();
        let n = io::copy(&mut body, sink).map_err(|e| http(format!("reading body: {e}")))?;
        Ok(n)
    }
}

/// Where the verified package with this hash lives in the cache.
pub fn cache_path(root: &HostRoot, sha256: &str) -> PathBuf {
    root.path(CACHE_DIR).join(format!("{sha256}.deb"))
}

/// How the package was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obtained {
    /// Already in the cache with the right hash.
    Cached,
    /// Downloaded from this URL after this many attempts.
    Downloaded {
        /// The URL that worked.
        url: String,
        /// Attempts it took in total.
        attempts: u32,
    },
    /// Copied from a local file.
    Copied,
}

fn prepare_cache(root: &HostRoot, sha256: &str) -> Result<(PathBuf, bool), FetchError> {
    let dir = root.path(CACHE_DIR);
    ensure_dir(&dir, Ownership::root(0o700))?;
    let path = cache_path(root, sha256);
    if path.exists() {
        if hex::encode(sha256_file(&path)?) == sha256 {
            return Ok((path, true));
        }
        // A cached file that no longer matches is not trusted; fetch again.
        std::fs::remove_file(&path).map_err(|e| FsError::new("remove", &path, e))?;
    }
    Ok((path, false))
}

/// Streams `reader` into a temporary cache file while hashing; keeps it only when it matches.
fn store_verified(
    path: &Path,
    sha256: &str,
    source_name: &str,
    fill: impl FnOnce(&mut dyn Write) -> Result<u64, FetchError>,
) -> Result<(), FetchError> {
    let file = AtomicFile::create(path, Ownership::root(0o600))?;
    let mut w = HashingWriter::new(file);
    fill(&mut w)?;
    let got = hex::encode(w.hasher.finalize_reset());
    if got != sha256 {
        // Dropping the uncommitted file removes it.
        return Err(FetchError::Mismatch {
            source_name: source_name.to_string(),
            got,
            expected: sha256.to_string(),
            bytes: w.n,
        });
    }
    // No fsync: the cache holds only what hashed to the pin, and every use re-hashes it first
    // (`prepare_cache`), so a file torn by a crash is refused and fetched again. Syncing 10+ MB here
    // would only delay the install (issue 22); the installed files themselves are synced.
    w.inner.commit_unsynced()?;
    Ok(())
}

/// Copies a local package into the cache, verifying its hash.
pub fn obtain_local(
    root: &HostRoot,
    file: &Path,
    sha256: &str,
) -> Result<(PathBuf, Obtained), FetchError> {
    let (path, cached) = prepare_cache(root, sha256)?;
    if cached {
        return Ok((path, Obtained::Cached));
    }
    let mut src = File::open(file).map_err(|e| FetchError::Local(file.to_path_buf(), e))?;
    store_verified(&path, sha256, &file.display().to_string(), |w| {
        let mut buf = vec![0u8; 1 << 20];
        copy_large(&mut (&mut src).take(MAX_DOWNLOAD), w, &mut buf)
            .map_err(|e| FetchError::Local(file.to_path_buf(), e))
    })?;
    Ok((path, Obtained::Copied))
}

/// Downloads the package into the cache, trying each URL in turn for up to `policy.attempts`
/// rounds, within `policy.deadline`.
pub fn obtain_url(
    root: &HostRoot,
    urls: &[String],
    sha256: &str,
    fetcher: &dyn Fetcher,
    policy: RetryPolicy,
) -> Result<(PathBuf, Obtained), FetchError> {
    let (path, cached) = prepare_cache(root, sha256)?;
    if cached {
        return Ok((path, Obtained::Cached));
    }
    let start = Instant::now();
    let mut attempts = 0u32;
    let mut last: Option<FetchError> = None;
    let mut backoff = policy.backoff;
    'rounds: for round in 0..policy.attempts {
        if round > 0 {
            if start.elapsed() + backoff >= policy.deadline {
                break;
            }
            std::thread::sleep(backoff);
            backoff = backoff.saturating_mul(2);
        }
        for url in urls {
            let left = policy.deadline.saturating_sub(start.elapsed());
            if left.is_zero() {
                break 'rounds;
            }
            attempts += 1;
            let timeout = left.min(policy.attempt_timeout);
            match store_verified(&path, sha256, url, |w| {
                fetcher.fetch(url, w, MAX_DOWNLOAD, timeout)
            }) {
                Ok(()) => {
                    return Ok((
                        path,
                        Obtained::Downloaded {
                            url: url.clone(),
                            attempts,
                        },
                    ))
                }
                Err(e @ FetchError::Fs(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(clawster_check = "sysbox.download", url = %url, "attempt {attempts} failed: {e}");
                    last = Some(e);
                }
            }
        }
    }
    let last = last.unwrap_or(FetchError::Http {
        url: urls.join(", "),
        message: "no attempt fit in the deadline".into(),
    });
    Err(FetchError::GaveUp {
        attempts,
        elapsed: start.elapsed(),
        deadline: policy.deadline,
        last: Box::new(last),
    })
}
