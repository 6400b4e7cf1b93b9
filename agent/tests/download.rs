//! The download path against a small HTTP server on 127.0.0.1: success, retry after a failure,
//! truncated body, wrong hash, mirror fallback, deadline, cache reuse. Uses the real HTTP client.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clawster_agent::bootstrap::download::{self, FetchError, HttpFetcher, Obtained, RetryPolicy};
use clawster_core::fs::HostRoot;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy)]
enum Reply {
    Ok,
    Status500,
    Truncated,
    Corrupt,
}

/// Serves `body` at any path; the n-th request (0-based) gets `script[n]` (the last entry repeats).
fn server(body: Vec<u8>, script: Vec<Reply>) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let n = h.fetch_add(1, Ordering::SeqCst);
            let reply = script[n.min(script.len() - 1)];
            let mut r = BufReader::new(s.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let _ = match reply {
                Reply::Ok => s
                    .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes())
                    .and_then(|_| s.write_all(&body)),
                Reply::Status500 => s.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                Reply::Truncated => s
                    .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes())
                    .and_then(|_| s.write_all(&body[..body.len() / 2])),
                Reply::Corrupt => {
                    let mut b = body.clone();
                    b[10] ^= 0xff;
                    s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len()).as_bytes())
                        .and_then(|_| s.write_all(&b))
                }
            };
        }
    });
    (format!("http://{addr}/sysbox.deb"), hits)
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(20),
        attempt_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(20),
    }
}

fn body() -> (Vec<u8>, String) {
    let b: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let h = hex::encode(Sha256::digest(&b));
    (b, h)
}

#[test]
fn downloads_verifies_and_caches() {
    let (b, sha) = body();
    let (url, hits) = server(b.clone(), vec![Reply::Ok]);
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(dir.path());
    let (path, how) = download::obtain_url(
        &root,
        std::slice::from_ref(&url),
        &sha,
        &HttpFetcher::default(),
        fast(),
    )
    .unwrap();
    assert_eq!(
        how,
        Obtained::Downloaded {
            url: url.clone(),
            attempts: 1
        }
    );
    assert_eq!(std::fs::read(&path).unwrap(), b);
    // Second time: from the cache, no request.
    let (_, how) =
        download::obtain_url(&root, &[url], &sha, &HttpFetcher::default(), fast()).unwrap();
    assert_eq!(how, Obtained::Cached);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn retries_after_server_error_truncation_and_corruption() {
    let (b, sha) = body();
    let (url, hits) = server(
        b.clone(),
        vec![
            Reply::Status500,
            Reply::Truncated,
            Reply::Corrupt,
            Reply::Ok,
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(dir.path());
    let policy = RetryPolicy {
        attempts: 4,
        ..fast()
    };
    let (path, how) = download::obtain_url(
        &root,
        std::slice::from_ref(&url),
        &sha,
        &HttpFetcher::default(),
        policy,
    )
    .unwrap();
    assert_eq!(how, Obtained::Downloaded { url, attempts: 4 });
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert_eq!(std::fs::read(path).unwrap(), b);
}

#[test]
fn falls_back_to_the_mirror() {
    let (b, sha) = body();
    let (bad, _) = server(b.clone(), vec![Reply::Status500]);
    let (good, _) = server(b, vec![Reply::Ok]);
    let dir = tempfile::tempdir().unwrap();
    let (_, how) = download::obtain_url(
        &HostRoot::new(dir.path()),
        &[bad, good.clone()],
        &sha,
        &HttpFetcher::default(),
        fast(),
    )
    .unwrap();
    assert_eq!(
        how,
        Obtained::Downloaded {
            url: good,
            attempts: 2
        }
    );
}

#[test]
fn wrong_hash_gives_up_and_keeps_nothing() {
    let (b, _) = body();
    let (url, hits) = server(b, vec![Reply::Ok]);
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(dir.path());
    let e = download::obtain_url(
        &root,
        &[url],
        &"ab".repeat(32),
        &HttpFetcher::default(),
        fast(),
    )
    .unwrap_err();
    let msg = format!("{e}");
    assert!(matches!(e, FetchError::GaveUp { attempts: 3, .. }), "{msg}");
    assert!(
        msg.contains("SHA256 mismatch") && msg.contains(&"ab".repeat(32)),
        "{msg}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3, "bounded attempts");
    assert_eq!(
        std::fs::read_dir(dir.path().join("var/cache/clawster/sysbox"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn deadline_bounds_the_whole_download() {
    // A server that accepts and never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x.deb", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            held.push(c);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let policy = RetryPolicy {
        attempts: 10,
        backoff: Duration::from_millis(10),
        attempt_timeout: Duration::from_secs(60),
        deadline: Duration::from_millis(1500),
    };
    let t = std::time::Instant::now();
    let e = download::obtain_url(
        &HostRoot::new(dir.path()),
        &[url],
        &"00".repeat(32),
        &HttpFetcher::default(),
        policy,
    )
    .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(matches!(e, FetchError::GaveUp { .. }), "{e}");
}

#[test]
fn corrupted_cache_is_not_trusted() {
    let (b, sha) = body();
    let (url, hits) = server(b.clone(), vec![Reply::Ok]);
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::new(dir.path());
    download::obtain_url(
        &root,
        std::slice::from_ref(&url),
        &sha,
        &HttpFetcher::default(),
        fast(),
    )
    .unwrap();
    let cached = download::cache_path(&root, &sha);
    std::fs::write(&cached, b"tampered").unwrap();
    let (_, how) =
        download::obtain_url(&root, &[url], &sha, &HttpFetcher::default(), fast()).unwrap();
    assert!(matches!(how, Obtained::Downloaded { .. }));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(std::fs::read(cached).unwrap(), b);
}
