//! The connection handling against a scripted upstream on a Unix socket (dockerd itself is
//! exercised by tests/tests/docker_guard.rs): what reaches upstream is exactly the judged bytes,
//! chunked and split requests, malformed requests never forwarded, ownership lookups, and the
//! hijacked exec stream with half-close.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::time::Duration;

use super::*;

/// What the fake upstream saw: method, target, body.
type Seen = (String, String, Vec<u8>);

struct Harness {
    _dir: tempfile::TempDir,
    guard: PathBuf,
    seen: mpsc::Receiver<Seen>,
}

const OWNED_ID: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OTHER_ID: &str = "2222222222222222222222222222222222222222222222222222222222222222";
/// Owned, but dockerd answers 404 for anything but its inspect (removed behind the guard's back).
const GONE_ID: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fn respond(method: &str, target: &str, dir: &std::path::Path) -> Vec<u8> {
    let json = |status: &str, body: String| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let inspect = |id: &str, owned: bool| {
        let labels = if owned {
            format!("{{\"{}\":\"openclaw\"}}", policy::OWNER_LABEL)
        } else {
            "{}".into()
        };
        json("200 OK", format!("{{\"Id\":\"{id}\",\"Config\":{{\"Labels\":{labels}}},\"HostConfig\":{{\"Binds\":null}}}}"))
    };
    match (method, target) {
        (_, t)
            if t.ends_with("/containers/mine/json")
                || t.ends_with(&format!("/containers/{OWNED_ID}/json")) =>
        {
            inspect(OWNED_ID, true)
        }
        (_, t)
            if t.ends_with("/containers/theirs/json")
                || t.ends_with(&format!("/containers/{OTHER_ID}/json")) =>
        {
            inspect(OTHER_ID, false)
        }
        (_, t) if t.ends_with("/containers/doomed/json") => inspect(GONE_ID, true),
        (_, t) if t.contains(&format!("/containers/{GONE_ID}/")) => json(
            "404 Not Found",
            "{\"message\":\"No such container\"}".into(),
        ),
        (_, t) if t.ends_with("/containers/planted/json") => {
            // Owned, but its bind source became a symlink after create.
            let body = format!(
                "{{\"Id\":\"{OWNED_ID}\",\"Config\":{{\"Labels\":{{\"{}\":\"openclaw\"}}}},\"HostConfig\":{{\"Binds\":[\"{}:/workspace\"]}}}}",
                policy::OWNER_LABEL,
                dir.join("state/link").display()
            );
            json("200 OK", body)
        }
        (_, t)
            if t.contains("/containers/")
                && t.ends_with("/json")
                && !t.contains("containers/json") =>
        {
            json(
                "404 Not Found",
                "{\"message\":\"No such container\"}".into(),
            )
        }
        ("POST", t) if t.contains("/containers/create") => json(
            "201 Created",
            format!("{{\"Id\":\"{OWNED_ID}\",\"Warnings\":[]}}"),
        ),
        ("POST", t) if t.ends_with("/exec") => json("201 Created", "{\"Id\":\"e1\"}".into()),
        ("GET", "/_ping") => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n".to_vec()
        }
        _ => json("200 OK", "{}".into()),
    }
}

fn fake_upstream(path: PathBuf, tx: mpsc::Sender<Seen>) {
    let l = UnixListener::bind(&path).expect("bind upstream");
    let dir = path.parent().expect("dir").to_path_buf();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let tx = tx.clone();
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut p = Peer::new(s);
                loop {
                    let req = loop {
                        match http::parse_request_head(&p.buf) {
                            Ok(r) => break r,
                            Err(HttpError::Incomplete) => {
                                if p.fill().unwrap_or(0) == 0 {
                                    return;
                                }
                            }
                            Err(e) => panic!("guard sent a bad head: {e}"),
                        }
                    };
                    assert!(
                        req.header("transfer-encoding").is_none(),
                        "guard must forward with Content-Length"
                    );
                    p.buf.drain(..req.head_len);
                    let body = match req.body {
                        BodyFraming::Length(n) => {
                            while p.buf.len() < n as usize {
                                p.fill_or_eof().expect("body");
                            }
                            p.buf.drain(..n as usize).collect()
                        }
                        _ => Vec::new(),
                    };
                    let _ = tx.send((req.method.clone(), req.target.clone(), body));
                    if req.target.ends_with("/start") && req.target.contains("/exec/") {
                        // A hijacked exec: echo stdin upper-cased until the client half-closes,
                        // then say how many bytes came and close.
                        p.s.write_all(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").expect("101");
                        let mut all = std::mem::take(&mut p.buf);
                        p.s.read_to_end(&mut all).expect("stdin");
                        p.s.write_all(
                            format!(
                                "got {} bytes: {}",
                                all.len(),
                                String::from_utf8_lossy(&all).to_uppercase()
                            )
                            .as_bytes(),
                        )
                        .expect("out");
                        return;
                    }
                    p.s.write_all(&respond(&req.method, &req.target, &dir))
                        .expect("respond");
                }
            });
        }
    });
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = dir.path().join("docker.sock");
    let guard = dir.path().join("guard.sock");
    let (tx, seen) = mpsc::channel();
    fake_upstream(up.clone(), tx);
    let mut policy = Policy {
        bind_root: dir.path().join("state"),
        ..Policy::default()
    };
    policy.max_body = 64 * 1024;
    let opts = Options {
        listen: guard.clone(),
        upstream: up,
        policy,
    };
    let l = crate::host::socket::bind(&guard, None).expect("bind guard");
    std::thread::spawn(move || serve(opts, l, || {}));
    Harness {
        _dir: dir,
        guard,
        seen,
    }
}

impl Harness {
    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.guard).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    /// Sends raw bytes (in pieces of `step`) and reads one response.
    fn exchange(&self, s: &mut UnixStream, raw: &[u8], step: usize) -> (u16, Vec<u8>) {
        for piece in raw.chunks(step) {
            s.write_all(piece).expect("write");
            s.flush().expect("flush");
            if step < raw.len() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        read_response(s)
    }

    fn next_seen(&self) -> Seen {
        self.seen
            .recv_timeout(Duration::from_secs(5))
            .expect("upstream saw a request")
    }

    fn nothing_seen(&self) {
        assert!(
            self.seen.recv_timeout(Duration::from_millis(200)).is_err(),
            "nothing may reach upstream"
        );
    }
}

fn read_response(s: &mut UnixStream) -> (u16, Vec<u8>) {
    let mut p = Peer::new(s.try_clone().expect("clone"));
    let r = loop {
        match http::parse_response_head(&p.buf, "GET") {
            Ok(r) => break r,
            Err(HttpError::Incomplete) => p.fill_or_eof().expect("response"),
            Err(e) => panic!("{e}"),
        }
    };
    p.buf.drain(..r.head_len);
    let mut body = Vec::new();
    match r.body {
        ResponseBody::Length(n) => p.copy_exact(n, &mut body).expect("body"),
        ResponseBody::Chunked => {
            let mut raw = Vec::new();
            p.copy_chunked(&mut raw).expect("chunked");
            body = http::decode_chunked(&raw, 1 << 20).expect("dechunk").body;
        }
        _ => {}
    }
    assert!(p.buf.is_empty(), "no bytes after the response");
    (r.status, body)
}

fn create_body(h: &Harness) -> String {
    let root = h.guard.parent().expect("dir").join("state");
    format!(
        r#"{{"Image":"openclaw-sandbox:bookworm-slim","Labels":{{"openclaw.sandbox":"1"}},"HostConfig":{{"Binds":["{}/workspace:/workspace:z"],"NetworkMode":"none","CapDrop":["ALL"],"SecurityOpt":["no-new-privileges"]}}}}"#,
        root.display()
    )
}

#[test]
fn chunked_create_split_across_reads_reaches_upstream_as_judged() {
    let h = harness();
    let mut s = h.connect();
    let body = create_body(&h);
    let (a, b) = body.split_at(body.len() / 2);
    let raw = format!(
        "POST /v1.44/containers/create?name=openclaw-sbx-a HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let (st, resp) = h.exchange(&mut s, raw.as_bytes(), 7);
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&resp));
    let (m, t, fwd) = h.next_seen();
    assert_eq!(
        (m.as_str(), t.as_str()),
        ("POST", "/v1.44/containers/create?name=openclaw-sbx-a")
    );
    let expected = policy::judge_create(
        body.as_bytes(),
        &Policy {
            bind_root: h.guard.parent().expect("dir").join("state"),
            ..Policy::default()
        },
    )
    .expect("allowed");
    assert_eq!(fwd, expected, "upstream got exactly the judged bytes");
    let v: serde_json::Value = serde_json::from_slice(&fwd).expect("json");
    assert_eq!(v["HostConfig"]["Runtime"], "sysbox-runc");

    // The same connection keeps working (keep-alive), also for a chunked response.
    let (st, body) = h.exchange(&mut s, b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n", 1000);
    assert_eq!((st, body.as_slice()), (200, &b"OK"[..]));
    h.next_seen();
}

#[test]
fn malformed_and_oversized_requests_get_400_and_are_not_forwarded() {
    let h = harness();
    for raw in [
        &b"POST /containers/create?name=openclaw-sbx-a HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"GET /containers//json HTTP/1.1\r\n\r\n",
        b"GET /containers/%2e%2e/json HTTP/1.1\r\n\r\n",
        b"POST /containers/create?name=openclaw-sbx-a HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
        b"POST /containers/create?name=openclaw-sbx-a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /containers/create?name=openclaw-sbx-a HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"a\":1,}x",
    ] {
        let mut s = h.connect();
        let (st, body) = h.exchange(&mut s, raw, raw.len());
        assert_eq!(st, 400, "{}: {}", String::from_utf8_lossy(raw), String::from_utf8_lossy(&body));
        h.nothing_seen();
    }
}

#[test]
fn refusals_name_the_rule_and_keep_the_connection() {
    let h = harness();
    let mut s = h.connect();
    let body = create_body(&h).replace("\"NetworkMode\":\"none\"", "\"NetworkMode\":\"host\"");
    let raw = format!(
        "POST /v1.44/containers/create?name=openclaw-sbx-a HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (st, resp) = h.exchange(&mut s, raw.as_bytes(), raw.len());
    assert_eq!(st, 403);
    let v: serde_json::Value = serde_json::from_slice(&resp).expect("json");
    assert_eq!(v["rule"], "create.network");
    assert!(v["message"]
        .as_str()
        .expect("message")
        .contains("NetworkMode"));
    h.nothing_seen();
    let (st, _) = h.exchange(&mut s, b"GET /v1.44/version HTTP/1.1\r\n\r\n", 100);
    assert_eq!(st, 200);
    assert_eq!(h.next_seen().1, "/v1.44/version");
}

#[test]
fn container_calls_are_checked_and_forwarded_by_id() {
    let h = harness();
    let mut s = h.connect();
    // Owned, by name: inspect first, then the request names the full id.
    let (st, _) = h.exchange(
        &mut s,
        b"POST /v1.44/containers/mine/start HTTP/1.1\r\n\r\n",
        100,
    );
    assert_eq!(st, 200);
    assert_eq!(h.next_seen().1, "/v1.44/containers/mine/json");
    assert_eq!(
        h.next_seen().1,
        format!("/v1.44/containers/{OWNED_ID}/start")
    );
    // An owned inspect is answered with the response the check judged: one upstream call.
    let (st, body) = h.exchange(
        &mut s,
        b"GET /v1.44/containers/mine/json HTTP/1.1\r\n\r\n",
        100,
    );
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains(OWNED_ID));
    assert_eq!(h.next_seen().1, "/v1.44/containers/mine/json");
    h.nothing_seen();
    // Someone else's container: 403 for start, 404 for inspect, nothing but the lookup upstream.
    let (st, _) = h.exchange(
        &mut s,
        b"POST /v1.44/containers/theirs/start HTTP/1.1\r\n\r\n",
        100,
    );
    assert_eq!(st, 403);
    assert_eq!(h.next_seen().1, "/v1.44/containers/theirs/json");
    let (st, body) = h.exchange(
        &mut s,
        b"GET /v1.44/containers/theirs/json HTTP/1.1\r\n\r\n",
        100,
    );
    assert_eq!(st, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(h.next_seen().1, "/v1.44/containers/theirs/json");
    h.nothing_seen();
    // start re-checks bind sources: a symlink planted in the workspace since create.
    let state = h.guard.parent().expect("dir").join("state");
    std::fs::create_dir_all(&state).expect("state");
    std::os::unix::fs::symlink("/etc", state.join("link")).expect("symlink");
    let (st, body) = h.exchange(
        &mut s,
        b"POST /v1.44/containers/planted/start HTTP/1.1\r\n\r\n",
        100,
    );
    assert_eq!(st, 403);
    assert!(
        String::from_utf8_lossy(&body).contains("start.binds"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(h.next_seen().1, "/v1.44/containers/planted/json");
    h.nothing_seen();
    // An exec id the guard did not create.
    let (st, _) = h.exchange(&mut s, b"GET /v1.44/exec/nope/json HTTP/1.1\r\n\r\n", 100);
    assert_eq!(st, 403);
    h.nothing_seen();
}

#[test]
fn hijacked_exec_streams_both_ways_with_half_close() {
    let h = harness();
    let mut s = h.connect();
    let exec = br#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["cat"]}"#;
    let raw = [
        format!("POST /v1.44/containers/mine/exec HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", exec.len()).as_bytes(),
        exec,
    ]
    .concat();
    let (st, body) = h.exchange(&mut s, &raw, raw.len());
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    h.next_seen();
    h.next_seen();
    let start = br#"{"Detach":false,"Tty":false}"#;
    let mut raw = format!(
        "POST /v1.44/exec/e1/start HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        start.len()
    )
    .into_bytes();
    raw.extend_from_slice(start);
    // stdin sent right behind the request, before the 101 arrives.
    raw.extend_from_slice(b"hello ");
    s.write_all(&raw).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let (_, target, body) = h.next_seen();
    assert_eq!(target, "/v1.44/exec/e1/start");
    assert_eq!(body, start);
    s.write_all(b"world").expect("stdin");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("output");
    assert_eq!(out, "got 11 bytes: HELLO WORLD");
}

/// The upstream targets of the next `n` requests.
fn targets(h: &Harness, n: usize) -> Vec<String> {
    (0..n).map(|_| h.next_seen().1).collect()
}

#[test]
fn owned_full_ids_skip_the_ownership_inspect_until_404_or_delete() {
    let h = harness();
    let mut s = h.connect();
    let call = |s: &mut UnixStream, m: &str, t: &str| {
        let raw = format!("{m} {t} HTTP/1.1\r\n\r\n");
        h.exchange(s, raw.as_bytes(), raw.len()).0
    };
    // Before anything is known, a full id is inspected first like a name.
    assert_eq!(
        call(
            &mut s,
            "POST",
            &format!("/v1.44/containers/{OWNED_ID}/pause")
        ),
        200
    );
    assert_eq!(
        targets(&h, 2),
        [
            format!("/v1.44/containers/{OWNED_ID}/json"),
            format!("/v1.44/containers/{OWNED_ID}/pause")
        ]
    );
    // That inspect passed: the full id is known now, and goes straight through.
    assert_eq!(
        call(
            &mut s,
            "POST",
            &format!("/v1.44/containers/{OWNED_ID}/unpause")
        ),
        200
    );
    assert_eq!(
        targets(&h, 1),
        [format!("/v1.44/containers/{OWNED_ID}/unpause")]
    );
    let (st, body) = h.exchange(
        &mut s,
        format!("GET /v1.44/containers/{OWNED_ID}/json HTTP/1.1\r\n\r\n").as_bytes(),
        1000,
    );
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains(OWNED_ID));
    assert_eq!(
        targets(&h, 1),
        [format!("/v1.44/containers/{OWNED_ID}/json")]
    );
    h.nothing_seen();
    // Names and short ids always go through the inspect, even when their container is known.
    assert_eq!(call(&mut s, "POST", "/v1.44/containers/mine/pause"), 200);
    assert_eq!(targets(&h, 2)[0], "/v1.44/containers/mine/json");
    assert_eq!(
        call(
            &mut s,
            "POST",
            &format!("/v1.44/containers/{}/pause", &OWNED_ID[..12])
        ),
        403,
        "the fake dockerd knows no short ids: refused after the inspect"
    );
    assert_eq!(
        targets(&h, 1),
        [format!("/v1.44/containers/{}/json", &OWNED_ID[..12])]
    );
    h.nothing_seen();
    // start re-checks the binds, so it inspects even a known id.
    assert_eq!(
        call(
            &mut s,
            "POST",
            &format!("/v1.44/containers/{OWNED_ID}/start")
        ),
        200
    );
    assert_eq!(
        targets(&h, 2)[0],
        format!("/v1.44/containers/{OWNED_ID}/json")
    );
    // A container that failed the check is never remembered: refused each time after an inspect.
    for _ in 0..2 {
        assert_eq!(
            call(
                &mut s,
                "POST",
                &format!("/v1.44/containers/{OTHER_ID}/pause")
            ),
            403
        );
        assert_eq!(
            targets(&h, 1),
            [format!("/v1.44/containers/{OTHER_ID}/json")]
        );
    }
    h.nothing_seen();
    // The guard's own delete forgets the id: the next call inspects again.
    assert_eq!(
        call(
            &mut s,
            "DELETE",
            &format!("/v1.44/containers/{OWNED_ID}?force=1")
        ),
        200
    );
    assert_eq!(
        targets(&h, 1),
        [format!("/v1.44/containers/{OWNED_ID}?force=1")]
    );
    assert_eq!(
        call(
            &mut s,
            "POST",
            &format!("/v1.44/containers/{OWNED_ID}/pause")
        ),
        200
    );
    assert_eq!(
        targets(&h, 2)[0],
        format!("/v1.44/containers/{OWNED_ID}/json")
    );
    // dockerd's 404 for a known id forgets it: removed behind the guard's back.
    assert_eq!(call(&mut s, "POST", "/v1.44/containers/doomed/pause"), 404);
    assert_eq!(
        targets(&h, 2),
        [
            "/v1.44/containers/doomed/json".to_string(),
            format!("/v1.44/containers/{GONE_ID}/pause")
        ]
    );
    assert_eq!(
        call(
            &mut s,
            "POST",
            &format!("/v1.44/containers/{GONE_ID}/unpause")
        ),
        403,
        "the inspect found no such container"
    );
    assert_eq!(
        targets(&h, 1),
        [format!("/v1.44/containers/{GONE_ID}/json")],
        "404 forgot the id: inspected again"
    );
    h.nothing_seen();
}

#[test]
fn created_ids_are_known_at_once() {
    let h = harness();
    let mut s = h.connect();
    let body = create_body(&h);
    let raw = format!(
        "POST /v1.44/containers/create?name=openclaw-sbx-a HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (st, _) = h.exchange(&mut s, raw.as_bytes(), raw.len());
    assert_eq!(st, 201);
    h.next_seen();
    let exec = br#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["cat"]}"#;
    let raw = [
        format!("POST /v1.44/containers/{OWNED_ID}/exec HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", exec.len()).as_bytes(),
        exec,
    ]
    .concat();
    let (st, _) = h.exchange(&mut s, &raw, raw.len());
    assert_eq!(st, 201);
    assert_eq!(
        targets(&h, 1),
        [format!("/v1.44/containers/{OWNED_ID}/exec")]
    );
    h.nothing_seen();
}

#[test]
fn stream_pumps_move_every_byte_in_order_by_splice_and_by_copy() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for spliced in [true, false] {
        let (mut src, mut from) = UnixStream::pair().expect("pair");
        let (mut to, mut dst) = UnixStream::pair().expect("pair");
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            src.write_all(&sent).expect("write");
            src.shutdown(std::net::Shutdown::Write).expect("half-close");
        });
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            dst.read_to_end(&mut got).expect("read");
            got
        });
        let n = if spliced {
            pump(&mut from, &mut to)
        } else {
            copy_pump(&mut from, &mut to, 0)
        }
        .expect("pump");
        drop(to);
        writer.join().expect("writer");
        assert_eq!(n, data.len() as u64, "spliced: {spliced}");
        assert!(reader.join().expect("reader") == data, "spliced: {spliced}");
    }
}
