//! A tiny IMDSv2 client: HTTP/1.1 over a `std` TCP stream to the EC2 instance metadata service.
//!
//! IMDSv2 is a `PUT /latest/api/token` (header `X-aws-ec2-metadata-token-ttl-seconds`) followed by
//! `GET`s that carry the token in `X-aws-ec2-metadata-token`. The service speaks plain HTTP on a
//! link-local address, answers small bodies with `Content-Length`, and needs nothing else, so a
//! few dozen lines replace an HTTP client crate. Every call has a connect/read timeout and a
//! bounded number of attempts; the endpoint is a parameter so tests point it at a fake server on
//! loopback and never reach the real one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The real endpoint.
pub const DEFAULT_ENDPOINT: &str = "169.254.169.254:80";

/// Largest response body we accept.
const MAX_BODY: usize = 64 * 1024;

/// An IMDS call failed.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// The endpoint is not `host:port` (optionally prefixed with `http://`).
    #[error("invalid IMDS endpoint {0:?} (expected host:port or http://host:port)")]
    Endpoint(String),
    /// Network or protocol failure after all attempts.
    #[error("IMDS {method} {path} at {endpoint} failed after {attempts} attempt(s): {reason}")]
    Failed {
        /// HTTP method.
        method: &'static str,
        /// Request path.
        path: String,
        /// Endpoint.
        endpoint: SocketAddr,
        /// Attempts made.
        attempts: u32,
        /// Last failure.
        reason: String,
    },
    /// IMDS answered with a status other than 200.
    #[error("IMDS {method} {path} answered HTTP {status}")]
    Status {
        /// HTTP method.
        method: &'static str,
        /// Request path.
        path: String,
        /// HTTP status code.
        status: u16,
    },
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct Imds {
    endpoint: SocketAddr,
    /// Connect and read timeout of one attempt.
    pub timeout: Duration,
    /// Attempts per request (at least 1).
    pub attempts: u32,
    /// Pause between attempts.
    pub backoff: Duration,
}

impl Imds {
    /// A client for `endpoint` (`host:port` or `http://host:port[/]`): 1 s per attempt, 3 attempts.
    pub fn new(endpoint: &str) -> Result<Self, ImdsError> {
        let trimmed = endpoint
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let addr = trimmed
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ImdsError::Endpoint(endpoint.into()))?;
        Ok(Self {
            endpoint: addr,
            timeout: Duration::from_secs(1),
            attempts: 3,
            backoff: Duration::from_millis(500),
        })
    }

    /// The endpoint address.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// Fetches a session token (valid 6 hours).
    pub fn token(&self) -> Result<String, ImdsError> {
        self.request(
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
        )
        .map(|b| b.trim().to_string())
    }

    /// `GET /latest/meta-data/<path>` with a fresh token; the body trimmed.
    pub fn get(&self, path: &str) -> Result<String, ImdsError> {
        let token = self.token()?;
        let full = format!("/latest/meta-data/{}", path.trim_start_matches('/'));
        self.request("GET", &full, &[("X-aws-ec2-metadata-token", &token)])
            .map(|b| b.trim().to_string())
    }

    /// The MAC address of the primary network interface (lower case).
    pub fn primary_mac(&self) -> Result<String, ImdsError> {
        self.get("mac").map(|m| m.to_ascii_lowercase())
    }

    /// The IPv4 CIDR blocks of the VPC the interface with `mac` is in.
    pub fn vpc_ipv4_cidrs(&self, mac: &str) -> Result<Vec<String>, ImdsError> {
        let body = self.get(&format!(
            "network/interfaces/macs/{mac}/vpc-ipv4-cidr-blocks"
        ))?;
        Ok(body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn request(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<String, ImdsError> {
        let attempts = self.attempts.max(1);
        let mut reason = String::new();
        for attempt in 1..=attempts {
            match self.once(method, path, headers) {
                Ok(Ok(body)) => return Ok(body),
                // 4xx are answers, not outages: do not retry them.
                Ok(Err(status)) if (400..500).contains(&status) => {
                    return Err(ImdsError::Status {
                        method,
                        path: path.into(),
                        status,
                    })
                }
                Ok(Err(status)) => reason = format!("HTTP {status}"),
                Err(e) => reason = e,
            }
            if attempt < attempts {
                std::thread::sleep(self.backoff);
            }
        }
        Err(ImdsError::Failed {
            method,
            path: path.into(),
            endpoint: self.endpoint,
            attempts,
            reason,
        })
    }

    /// One HTTP exchange: `Ok(Ok(body))` on 200, `Ok(Err(status))` on another status.
    fn once(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Result<String, u16>, String> {
        let deadline = Instant::now() + self.timeout;
        let mut s = TcpStream::connect_timeout(&self.endpoint, self.timeout)
            .map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(self.timeout))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(self.timeout))
            .map_err(|e| e.to_string())?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.endpoint.ip()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "PUT" {
            req.push_str("Content-Length: 0\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if Instant::now() > deadline {
                return Err("timed out reading the response".into());
            }
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            }
            if buf.len() > MAX_BODY + 8192 {
                return Err("response too large".into());
            }
            if response_complete(&buf) {
                break;
            }
        }
        parse_response(&buf)
    }
}

fn split_head(buf: &[u8]) -> Option<(&str, &[u8])> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((std::str::from_utf8(&buf[..end]).ok()?, &buf[end + 4..]))
}

fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
}

fn response_complete(buf: &[u8]) -> bool {
    match split_head(buf) {
        Some((head, body)) => content_length(head).is_some_and(|n| body.len() >= n),
        None => false,
    }
}

fn parse_response(buf: &[u8]) -> Result<Result<String, u16>, String> {
    let (head, body) = split_head(buf).ok_or("incomplete HTTP response")?;
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("no HTTP status line")?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("chunked responses are not supported".into());
    }
    let body = match content_length(head) {
        Some(n) if body.len() >= n => &body[..n],
        Some(_) => return Err("response body shorter than Content-Length".into()),
        None => body,
    };
    if status != 200 {
        return Ok(Err(status));
    }
    String::from_utf8(body.to_vec())
        .map(Ok)
        .map_err(|_| "response body is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A fake IMDS on loopback answering `n` connections; returns its address and the requests.
    fn fake(
        n: usize,
        answer: fn(&str) -> String,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..n {
                let (s, _) = l.accept().expect("accept");
                let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
                let mut req = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).expect("read") == 0 || line == "\r\n" {
                        break;
                    }
                    req.push_str(&line);
                }
                let mut s = s;
                s.write_all(answer(&req).as_bytes()).expect("write");
                seen.push(req);
            }
            seen
        });
        (addr, h)
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn token_then_get_with_token() {
        let (addr, h) = fake(4, |req| {
            if req.starts_with("PUT /latest/api/token") {
                assert!(
                    req.contains("X-aws-ec2-metadata-token-ttl-seconds: 21600"),
                    "{req}"
                );
                ok("TOKEN123")
            } else if req.starts_with("GET /latest/meta-data/mac ") {
                assert!(req.contains("X-aws-ec2-metadata-token: TOKEN123"), "{req}");
                ok("0A:1b:2c:3d:4e:5f")
            } else {
                ok("10.0.0.0/16\n10.1.0.0/16\n")
            }
        });
        let imds = Imds::new(&format!("http://{addr}/")).expect("client");
        let mac = imds.primary_mac().expect("mac");
        assert_eq!(mac, "0a:1b:2c:3d:4e:5f");
        assert_eq!(
            imds.vpc_ipv4_cidrs(&mac).expect("cidrs"),
            ["10.0.0.0/16", "10.1.0.0/16"]
        );
        let reqs = h.join().expect("server");
        assert!(reqs[3].contains("/network/interfaces/macs/0a:1b:2c:3d:4e:5f/vpc-ipv4-cidr-blocks"));
    }

    #[test]
    fn not_found_is_not_retried_and_is_named() {
        let (addr, h) = fake(2, |req| {
            if req.starts_with("PUT") {
                ok("T")
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into()
            }
        });
        let err = Imds::new(&addr)
            .expect("client")
            .get("nope")
            .expect_err("404");
        assert!(
            err.to_string().contains("HTTP 404")
                && err.to_string().contains("/latest/meta-data/nope"),
            "{err}"
        );
        h.join().expect("server");
    }

    #[test]
    fn unreachable_endpoint_fails_after_bounded_attempts() {
        // A port nobody listens on (bound, then closed) on loopback.
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut imds = Imds::new(&format!("127.0.0.1:{port}")).expect("client");
        imds.backoff = Duration::from_millis(10);
        let start = Instant::now();
        let err = imds.token().expect_err("refused");
        assert!(err.to_string().contains("3 attempt"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(Imds::new("not an endpoint").is_err());
    }
}
