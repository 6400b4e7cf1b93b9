//! The Docker Engine API on the host's socket, for the one thing a capability other than the
//! guard needs from dockerd: stop the bot's ECS-managed container with its stop timeout and wait
//! for it to be gone (the state capability, before its final sync at the end of a host).
//!
//! One request per connection (`HTTP/1.0`, so dockerd answers without chunking and closes):
//! small, blocking, no HTTP client crate. The guard (`docker_guard`) is a proxy with its own,
//! streaming HTTP handling; this is a client of three calls.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The host's Docker socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The label the ECS agent puts on a task's containers, naming the container definition.
pub const ECS_CONTAINER_LABEL: &str = "com.amazonaws.ecs.container-name";
/// Stop timeout when the container has none of its own.
pub const DEFAULT_STOP_TIMEOUT: u64 = 120;
const MAX_ANSWER: u64 = 4 << 20;

/// A failed Docker call.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// dockerd is not listening (not running, or already stopped).
    #[error("dockerd at {socket}: {message}")]
    Unreachable {
        /// The socket.
        socket: String,
        /// Why.
        message: String,
    },
    /// dockerd answered with an error status.
    #[error("docker {call}: HTTP {status}: {message}")]
    Status {
        /// The call (`GET /containers/json`, ...).
        call: String,
        /// HTTP status.
        status: u16,
        /// dockerd's message.
        message: String,
    },
    /// The answer could not be read.
    #[error("docker {call}: {message}")]
    Protocol {
        /// The call.
        call: String,
        /// What was wrong.
        message: String,
    },
}

/// A running container, as the stop needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Its full id.
    pub id: String,
    /// Its name (without the leading `/`).
    pub name: String,
    /// Its own stop timeout in seconds (`Config.StopTimeout`; ECS sets the task's), if any.
    pub stop_timeout: Option<u64>,
}

/// A client of dockerd's socket.
#[derive(Debug, Clone)]
pub struct Docker {
    socket: PathBuf,
}

impl Docker {
    /// A client of `socket`.
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
        }
    }

    /// One request; (status, body). `read_timeout` bounds the wait for the answer.
    fn request(
        &self,
        method: &str,
        target: &str,
        read_timeout: Duration,
    ) -> Result<(u16, String), DockerError> {
        let call = format!("{method} {target}");
        let mut s = UnixStream::connect(&self.socket).map_err(|e| DockerError::Unreachable {
            socket: self.socket.display().to_string(),
            message: e.to_string(),
        })?;
        let proto = |m: String| DockerError::Protocol {
            call: call.clone(),
            message: m,
        };
        s.set_read_timeout(Some(read_timeout))
            .and_then(|()| s.set_write_timeout(Some(Duration::from_secs(10))))
            .map_err(|e| proto(e.to_string()))?;
        let head =
            format!("{method} {target} HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n");
        s.write_all(head.as_bytes())
            .map_err(|e| proto(format!("send: {e}")))?;
        let mut buf = Vec::new();
        s.take(MAX_ANSWER)
            .read_to_end(&mut buf)
            .map_err(|e| proto(format!("read: {e}")))?;
        let (status, body) = parse_answer(&buf).map_err(proto)?;
        Ok((status, body))
    }

    fn status_error(call: String, status: u16, body: &str) -> DockerError {
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.trim().chars().take(200).collect());
        DockerError::Status {
            call,
            status,
            message,
        }
    }

    /// The running containers whose ECS container name is `name`.
    pub fn running_ecs_containers(&self, name: &str) -> Result<Vec<Running>, DockerError> {
        let filters = serde_json::json!({ "label": [format!("{ECS_CONTAINER_LABEL}={name}")] });
        let target = format!(
            "/containers/json?filters={}",
            super::sigv4::uri_encode(&filters.to_string(), true)
        );
        let (status, body) = self.request("GET", &target, Duration::from_secs(30))?;
        if status != 200 {
            return Err(Self::status_error(format!("GET {target}"), status, &body));
        }
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&body).map_err(|e| DockerError::Protocol {
                call: format!("GET {target}"),
                message: format!("not a container list: {e}"),
            })?;
        let mut out = Vec::new();
        for c in list {
            let Some(id) = c["Id"].as_str() else { continue };
            if c["State"].as_str().is_some_and(|s| s != "running") {
                continue;
            }
            let (code, body) = self.request(
                "GET",
                &format!("/containers/{id}/json"),
                Duration::from_secs(30),
            )?;
            if code == 404 {
                continue; // gone between the list and the inspect
            }
            if code != 200 {
                return Err(Self::status_error(
                    format!("GET /containers/{id}/json"),
                    code,
                    &body,
                ));
            }
            let v: serde_json::Value =
                serde_json::from_str(&body).map_err(|e| DockerError::Protocol {
                    call: format!("GET /containers/{id}/json"),
                    message: format!("not JSON: {e}"),
                })?;
            out.push(Running {
                id: id.to_string(),
                name: v["Name"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string(),
                stop_timeout: v["Config"]["StopTimeout"].as_u64(),
            });
        }
        Ok(out)
    }

    /// Stops a container with `timeout` seconds between SIGTERM and SIGKILL; returns once it
    /// has stopped (dockerd answers the stop then). Already stopped or gone: done.
    pub fn stop(&self, id: &str, timeout: u64) -> Result<(), DockerError> {
        let target = format!("/containers/{id}/stop?t={timeout}");
        let wait = Duration::from_secs(timeout + 60);
        let (status, body) = self.request("POST", &target, wait)?;
        match status {
            204 | 304 | 404 => Ok(()),
            s => Err(Self::status_error(format!("POST {target}"), s, &body)),
        }
    }
}

/// (status, body) of an HTTP/1.x answer read to its end (`Content-Length` honoured when given).
pub fn parse_answer(buf: &[u8]) -> Result<(u16, String), String> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete HTTP head in the answer")?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "the answer's head is not UTF-8")?;
    let status: u16 = head
        .lines()
        .next()
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "no HTTP status line: {:?}",
                head.lines().next().unwrap_or("")
            )
        })?;
    let mut body = &buf[end + 4..];
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Err("a chunked answer to an HTTP/1.0 request".into());
    }
    if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if body.len() < n {
            return Err(format!(
                "the answer ended after {} of {n} bytes",
                body.len()
            ));
        }
        body = &body[..n];
    }
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

/// A stand-in dockerd for unit tests (the process boundary), shared with the state
/// capability's tests.
#[cfg(test)]
pub(crate) mod fake {
    use std::io::{BufRead, Write};
    use std::os::unix::net::UnixListener;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    /// A stand-in dockerd on a socket in a temporary directory (the process boundary): one
    /// container running until it is stopped; records every request line.
    pub(crate) fn dockerd(
        dir: &Path,
        stop_timeout: Option<u64>,
        stop_status: u16,
    ) -> (PathBuf, Arc<Mutex<Vec<String>>>) {
        let sock = dir.join("docker.sock");
        let l = UnixListener::bind(&sock).expect("bind");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut running = true;
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut line = String::new();
                let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
                r.read_line(&mut line).expect("read");
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).expect("read") == 0 || h == "\r\n" {
                        break;
                    }
                }
                let line = line.trim().to_string();
                log.lock().expect("log").push(line.clone());
                let (status, body) = if line.starts_with("GET /containers/json?filters=") {
                    let list = if running {
                        r#"[{"Id":"abc123","State":"running"},{"Id":"old1","State":"exited"}]"#
                    } else {
                        "[]"
                    };
                    (200, list.to_string())
                } else if line.starts_with("GET /containers/abc123/json") {
                    let t = stop_timeout.map_or("null".to_string(), |t| t.to_string());
                    (
                        200,
                        format!(
                            r#"{{"Name":"/ecs-bot-1-openclaw-e2f","Config":{{"StopTimeout":{t}}}}}"#
                        ),
                    )
                } else if line.starts_with("POST /containers/abc123/stop") && stop_status != 204 {
                    (
                        stop_status,
                        r#"{"message":"cannot stop container: permission denied"}"#.to_string(),
                    )
                } else if line.starts_with("POST /containers/abc123/stop") {
                    running = false;
                    (204, String::new())
                } else if line.starts_with("POST /containers/broken/stop") {
                    (
                        500,
                        r#"{"message":"cannot stop container: permission denied"}"#.to_string(),
                    )
                } else {
                    (404, r#"{"message":"page not found"}"#.to_string())
                };
                let _ = write!(
                    s,
                    "HTTP/1.0 {status} X\r\nContent-Type: application/json\r\n\r\n{body}"
                );
            }
        });
        (sock, seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_bot_container_and_stops_it_with_its_timeout() {
        let d = tempfile::tempdir().expect("tmp");
        let (sock, seen) = fake::dockerd(d.path(), Some(90), 204);
        let docker = Docker::new(&sock);
        let found = docker.running_ecs_containers("openclaw").expect("list");
        assert_eq!(
            found,
            [Running {
                id: "abc123".into(),
                name: "ecs-bot-1-openclaw-e2f".into(),
                stop_timeout: Some(90)
            }]
        );
        docker.stop("abc123", 90).expect("stop");
        assert!(docker
            .running_ecs_containers("openclaw")
            .expect("list")
            .is_empty());
        let seen = seen.lock().expect("log").clone();
        assert!(
            seen[0].contains("filters=%7B%22label%22%3A%5B%22com.amazonaws.ecs.container-name%3Dopenclaw%22%5D%7D"),
            "{seen:?}"
        );
        assert_eq!(seen[2], "POST /containers/abc123/stop?t=90 HTTP/1.0");
    }

    #[test]
    fn errors_name_the_call_and_dockerd_message() {
        let d = tempfile::tempdir().expect("tmp");
        let (sock, _) = fake::dockerd(d.path(), None, 204);
        let docker = Docker::new(&sock);
        assert_eq!(
            docker.running_ecs_containers("openclaw").expect("list")[0].stop_timeout,
            None
        );
        let e = docker.stop("broken", 5).expect_err("500");
        assert_eq!(
            e.to_string(),
            "docker POST /containers/broken/stop?t=5: HTTP 500: cannot stop container: permission denied"
        );
        docker.stop("gone", 5).expect("404 is stopped");
        let e = Docker::new(&d.path().join("nope.sock"))
            .running_ecs_containers("openclaw")
            .expect_err("no socket");
        assert!(matches!(e, DockerError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains("nope.sock"), "{e}");
    }

    #[test]
    fn reads_answers() {
        assert_eq!(
            parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]xx").expect("ok"),
            (200, "[]".to_string())
        );
        assert_eq!(
            parse_answer(b"HTTP/1.0 204 No Content\r\n\r\n").expect("ok"),
            (204, String::new())
        );
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n[]").is_err());
        assert!(parse_answer(b"garbage\r\n\r\n").is_err());
        assert!(parse_answer(b"HTTP/1.1 200").is_err());
        assert!(parse_answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n"
        )
        .is_err());
    }
}
