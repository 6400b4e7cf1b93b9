//! `clawster-agent docker-guard serve`: the filtering Docker Engine API proxy the bot's task gets
//! instead of the host's Docker socket (`/run/clawster/docker.sock`, mounted into the task as
//! `/var/run/docker.sock`). It lets OpenClaw's sandbox through, forcing the sysbox runtime and
//! resource limits, and refuses every request that would reach the host.
//!
//! Order of work, and the failure policy of each step:
//!
//! 1. Startup: read the policy (`--policy FILE`, else the built-in default) and take the listening
//!    socket from systemd (socket activation) or bind `--listen`. *Fatal* (exit 1) on a bad policy
//!    file or socket; then `READY=1` to systemd and a `docker_guard.serve` record.
//! 2. Per connection (one thread each, reused from [`pool`], at most [`MAX_CONNECTIONS`]): the
//!    caller's pid from the kernel (`SO_PEERCRED`), never from the request, and its container id
//!    from its cgroup. Over the limit: the connection is closed at once.
//! 3. Per request: parse the head ([`http::parse_request_head`]) and read the body, de-chunked,
//!    up to the policy's `max_body`. *Malformed or oversized: 400, logged, nothing forwarded, the
//!    connection closed* (its framing can no longer be trusted).
//! 4. Judge it ([`policy::judge`]): a pure function of method, decoded path, query and body. Bodies
//!    are parsed strictly (duplicate keys and keys differing only in case refused, see [`json`])
//!    and re-serialised: what is forwarded is exactly what was judged. *Refused: 403 (404 for
//!    lookups of what the bot may not see) with a JSON message naming the rule, a
//!    `docker_guard.refused` record; the connection stays usable.*
//! 5. Ownership: requests naming a container are forwarded only after the guard inspects it on
//!    dockerd itself and finds its owner label (or, for inspect and the gateway's self-probe exec,
//!    the caller's own container); the request then names the container by its full id, so a
//!    rename between check and use changes nothing. Full ids known to be owned (created through
//!    the guard, or inspected and found labelled) skip that inspect: [`owned`] says why that
//!    grants nothing and when an id is forgotten. `start` re-checks the bind sources for
//!    symlinks planted since create. Exec follow-ups need an exec id the guard created (kept in
//!    memory; after a restart the gateway simply creates new execs). *dockerd unreachable or
//!    answering nonsense: 502, connection closed.*
//! 6. Forward a head the guard writes itself, then relay the response: bodies stream through
//!    (fixed length, chunked or until close) without being buffered whole, except the small
//!    create and exec-create answers the guard records. Exec start's `101 UPGRADED` (or a raw
//!    stream) turns the connection into raw bytes both ways with half-close passed on (spliced
//!    in the kernel where it allows).
//!    Every created container is a `docker_guard.created` record.

pub mod http;
pub mod install;
pub mod json;
pub mod owned;
pub mod policy;
pub mod pool;

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawster_core::logging::Status;
use rustix::pipe;

use http::{BodyFraming, HttpError, ResponseBody};
use owned::OwnedIds;
use policy::{Forward, Note, Policy, Refusal, Verdict, Who};

/// Default socket the guard listens on (the socket unit's `ListenStream=`).
pub const DEFAULT_LISTEN: &str = "/run/clawster/docker.sock";
/// Default upstream: the host's Docker socket.
pub const DEFAULT_UPSTREAM: &str = "/var/run/docker.sock";
/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Exec ids remembered (oldest forgotten first).
pub const MAX_EXECS: usize = 4096;
/// How long a client may take to send the next request head.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const COPY_BUF: usize = 256 * 1024;

/// The units shipped for the guard (installed by bootstrap).
pub const UNITS: [(&str, &str); 2] = [
    (
        "clawster-docker-guard.socket",
        include_str!("../../../systemd/clawster-docker-guard.socket"),
    ),
    (
        "clawster-docker-guard.service",
        include_str!("../../../systemd/clawster-docker-guard.service"),
    ),
];

/// Errors that stop the guard.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The policy file could not be read.
    #[error("reading policy {path}")]
    PolicyRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The policy file is invalid.
    #[error("policy {path}: {message}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The listening socket could not be set up.
    #[error("listening on {path}")]
    Listen {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What `serve` runs with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Socket to bind when not socket-activated.
    pub listen: PathBuf,
    /// dockerd's socket.
    pub upstream: PathBuf,
    /// The policy.
    pub policy: Policy,
}

impl Options {
    /// Defaults with `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            listen: PathBuf::from(DEFAULT_LISTEN),
            upstream: PathBuf::from(DEFAULT_UPSTREAM),
            policy,
        }
    }
}

/// Loads `--policy FILE`, or the default policy.
pub fn load_policy(path: Option<&std::path::Path>) -> Result<Policy, GuardError> {
    match path {
        None => Ok(Policy::default()),
        Some(p) => {
            let text = std::fs::read(p).map_err(|source| GuardError::PolicyRead {
                path: p.to_path_buf(),
                source,
            })?;
            Policy::from_json(&text).map_err(|message| GuardError::Policy {
                path: p.to_path_buf(),
                message,
            })
        }
    }
}

/// Shared state of all connections.
#[derive(Debug)]
struct State {
    policy: Policy,
    upstream: PathBuf,
    execs: Mutex<ExecSet>,
    owned: Mutex<OwnedIds>,
    active: AtomicUsize,
    threads: Arc<pool::Pool>,
}

impl State {
    fn owned(&self) -> std::sync::MutexGuard<'_, OwnedIds> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
struct ExecSet {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl ExecSet {
    fn insert(&mut self, id: String) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > MAX_EXECS {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
    }
}

/// Takes the listening socket (systemd's, else binds `opts.listen`).
pub fn listener(opts: &Options) -> Result<(UnixListener, String), GuardError> {
    let err = |source| GuardError::Listen {
        path: opts.listen.clone(),
        source,
    };
    match crate::host::socket::from_systemd("clawster-docker-guard.socket").map_err(err)? {
        Some(l) => Ok((l, "socket from systemd".into())),
        None => Ok((
            crate::host::socket::bind(&opts.listen, None).map_err(err)?,
            opts.listen.display().to_string(),
        )),
    }
}

/// Serves until the process is stopped.
pub fn serve(
    opts: Options,
    listener: UnixListener,
    on_ready: impl FnOnce(),
) -> Result<(), GuardError> {
    let state = Arc::new(State {
        policy: opts.policy,
        upstream: opts.upstream,
        execs: Mutex::new(ExecSet::default()),
        owned: Mutex::new(OwnedIds::default()),
        active: AtomicUsize::new(0),
        threads: pool::Pool::new("guard-conn"),
    });
    on_ready();
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if state.active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            state.active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(
                clawster_check = "docker_guard.connections",
                "more than {MAX_CONNECTIONS} connections: closing one"
            );
            continue;
        }
        let st = Arc::clone(&state);
        let spawned = state.threads.run(Box::new(move || {
            let mut c = Conn::new(conn, &st);
            if let Err(e) = c.run() {
                tracing::debug!("connection from pid {}: {e}", c.caller.pid);
            }
            st.active.fetch_sub(1, Ordering::SeqCst);
        }));
        if let Err(e) = spawned {
            state.active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

/// A stream plus the bytes read from it but not used yet.
///
/// Both buffers live as long as the connection and are reused request after request, so a
/// kept-alive connection allocates nothing per request for its I/O (musl's allocator returns
/// large freed blocks to the kernel at once: a per-request copy buffer cost an mmap/munmap pair
/// each time).
#[derive(Debug)]
struct Peer {
    s: UnixStream,
    buf: Vec<u8>,
    /// Read buffer of [`Peer::fill`] ([`READ_STEP`]) and copy buffer for bodies larger than
    /// what is buffered ([`COPY_BUF`]); allocated, and zeroed, only when first needed at a size.
    scratch: Vec<u8>,
}

/// How much [`Peer::fill`] asks the kernel for at once.
const READ_STEP: usize = 16 * 1024;

impl Peer {
    fn new(s: UnixStream) -> Self {
        Self {
            s,
            buf: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The scratch buffer, at least `size` bytes long.
    fn scratch(&mut self, size: usize) -> &mut [u8] {
        if self.scratch.len() < size {
            self.scratch = vec![0u8; size];
        }
        &mut self.scratch
    }

    /// Reads more; `Ok(0)` at EOF. Reads into the scratch buffer and appends what came: a read
    /// straight into `buf` would have to zero its spare room first, every time.
    fn fill(&mut self) -> io::Result<usize> {
        self.scratch(READ_STEP);
        let n = self.s.read(&mut self.scratch[..READ_STEP])?;
        self.buf.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }

    fn fill_or_eof(&mut self) -> io::Result<()> {
        if self.fill()? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"));
        }
        Ok(())
    }

    /// Writes the first `pending` buffered bytes (already part of what is being relayed, such as
    /// the response head) and `buf[..n]`, then forgets them. One write for both.
    fn write_out(&mut self, n: usize, out: &mut impl Write) -> io::Result<()> {
        if n > 0 {
            out.write_all(&self.buf[..n])?;
            self.buf.drain(..n);
        }
        Ok(())
    }

    /// Reads at most `max` bytes into the scratch buffer and writes them to `out`; returns how
    /// many (0 at EOF). Only called with nothing buffered.
    fn pass_through(&mut self, max: u64, out: &mut impl Write) -> io::Result<usize> {
        let want = (self.scratch(COPY_BUF).len() as u64).min(max) as usize;
        let got = self.s.read(&mut self.scratch[..want])?;
        out.write_all(&self.scratch[..got])?;
        Ok(got)
    }

    /// Copies exactly `n` bytes to `out` (buffered bytes first), streaming.
    #[cfg(test)]
    fn copy_exact(&mut self, n: u64, out: &mut impl Write) -> io::Result<()> {
        self.relay_length(0, n, out)
    }

    /// Relays the `pending` buffered bytes followed by a body of exactly `n` bytes; what is
    /// already buffered goes out in one write, the rest streams through the scratch buffer.
    fn relay_length(&mut self, pending: usize, n: u64, out: &mut impl Write) -> io::Result<()> {
        let take = ((self.buf.len() - pending) as u64).min(n);
        self.write_out(pending + take as usize, out)?;
        let mut left = n - take;
        while left > 0 {
            match self.pass_through(left, out)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "body cut short",
                    ))
                }
                got => left -= got as u64,
            }
        }
        Ok(())
    }

    /// Relays a chunked body to `out` as is, chunk by chunk.
    #[cfg(test)]
    fn copy_chunked(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.relay_chunked(0, out)
    }

    /// Relays the `pending` buffered bytes followed by a chunked body, as is. The framing is
    /// followed only to find the body's end; everything buffered that belongs to the body goes
    /// out in one write before the next read, so a response that arrived whole leaves whole.
    fn relay_chunked(&mut self, pending: usize, out: &mut impl Write) -> io::Result<()> {
        enum At {
            SizeLine,
            /// Chunk data plus its CRLF still to pass.
            Data(u64),
            Trailer,
        }
        let mut at = At::SizeLine;
        let mut pos = pending;
        loop {
            let done = loop {
                match at {
                    At::Data(left) => {
                        let take = ((self.buf.len() - pos) as u64).min(left);
                        pos += take as usize;
                        if take < left {
                            at = At::Data(left - take);
                            break false;
                        }
                        at = At::SizeLine;
                    }
                    At::SizeLine => {
                        let Some(i) = find_crlf(&self.buf[pos..]) else {
                            if self.buf.len() - pos > 4096 {
                                return Err(io::Error::other("line too long in chunked response"));
                            }
                            break false;
                        };
                        let size_text = String::from_utf8_lossy(&self.buf[pos..pos + i]);
                        let size_hex = size_text.split(';').next().unwrap_or("").trim();
                        let size = u64::from_str_radix(size_hex, 16).map_err(|_| {
                            io::Error::other(format!("bad chunk size {size_hex:?}"))
                        })?;
                        pos += i + 2;
                        at = if size == 0 {
                            At::Trailer
                        } else {
                            At::Data(size.saturating_add(2))
                        };
                    }
                    At::Trailer => {
                        let Some(i) = find_crlf(&self.buf[pos..]) else {
                            if self.buf.len() - pos > http::MAX_HEAD {
                                return Err(io::Error::other(
                                    "trailer too long in chunked response",
                                ));
                            }
                            break false;
                        };
                        pos += i + 2;
                        if i == 0 {
                            break true;
                        }
                    }
                }
            };
            self.write_out(pos, out)?;
            pos = 0;
            if done {
                return out.flush();
            }
            match at {
                // A large chunk still on its way: stream it instead of buffering it.
                At::Data(left) if left > READ_STEP as u64 => match self.pass_through(left, out)? {
                    0 => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "chunked body cut short",
                        ))
                    }
                    got => at = At::Data(left - got as u64),
                },
                _ => self.fill_or_eof()?,
            }
        }
    }

    /// Relays everything to `out` until EOF.
    fn copy_to_eof(&mut self, out: &mut impl Write) -> io::Result<()> {
        let n = self.buf.len();
        self.write_out(n, out)?;
        while self.pass_through(u64::MAX, out)? > 0 {}
        Ok(())
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// The caller as the kernel reports it.
#[derive(Debug, Clone, Default)]
struct Caller {
    pid: i32,
    uid: u32,
    container: Option<String>,
}

fn caller_of(s: &UnixStream) -> Caller {
    match crate::host::socket::Peer::of(s) {
        Ok(c) => {
            let pid = c.pid;
            let container = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .ok()
                .and_then(|t| policy::container_id_from_cgroup(&t));
            Caller {
                pid,
                uid: c.uid,
                container,
            }
        }
        Err(_) => Caller::default(),
    }
}

enum Next {
    Continue,
    Close,
}

struct Conn<'a> {
    client: Peer,
    upstream: Option<Peer>,
    st: &'a State,
    caller: Caller,
}

impl<'a> Conn<'a> {
    fn new(s: UnixStream, st: &'a State) -> Self {
        let caller = caller_of(&s);
        Self {
            client: Peer::new(s),
            upstream: None,
            st,
            caller,
        }
    }

    fn run(&mut self) -> io::Result<()> {
        self.client.s.set_read_timeout(Some(IDLE_TIMEOUT))?;
        loop {
            match self.one_request()? {
                Next::Continue => {}
                Next::Close => return Ok(()),
            }
        }
    }

    fn refuse(&mut self, method: &str, path: &str, r: &Refusal, close: bool) -> io::Result<Next> {
        tracing::warn!(
            clawster_check = "docker_guard.refused",
            clawster_status = Status::Ok.as_str(),
            method,
            path,
            rule = r.rule,
            http_status = r.status,
            caller_pid = self.caller.pid,
            caller_uid = self.caller.uid,
            "refused {method} {path} from pid {}: {} ({})",
            self.caller.pid,
            r.message,
            r.rule
        );
        let body = r.body();
        let reason = match r.status {
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            413 => "Payload Too Large",
            _ => "Bad Gateway",
        };
        let head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            r.status,
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        self.client.s.write_all(head.as_bytes())?;
        self.client.s.write_all(&body)?;
        Ok(if close { Next::Close } else { Next::Continue })
    }

    fn one_request(&mut self) -> io::Result<Next> {
        // 1. The head.
        let req = loop {
            match http::parse_request_head(&self.client.buf) {
                Ok(r) => break r,
                Err(HttpError::Incomplete) => {
                    if self.client.fill()? == 0 {
                        return Ok(Next::Close);
                    }
                }
                Err(e) => {
                    let r = Refusal {
                        status: 400,
                        rule: "http.malformed",
                        message: e.to_string(),
                    };
                    return self.refuse("-", "-", &r, true);
                }
            }
        };
        self.client.buf.drain(..req.head_len);
        // 2. The body, whole (only small JSON bodies are allowed anywhere).
        let max = self.st.policy.max_body;
        let body = match req.body {
            BodyFraming::None => None,
            BodyFraming::Length(n) if n > max as u64 => {
                let r = Refusal {
                    status: 400,
                    rule: "http.body_too_large",
                    message: format!("request body of {n} bytes is above the {max}-byte limit"),
                };
                return self.refuse(&req.method, &req.target, &r, true);
            }
            BodyFraming::Length(n) => {
                while (self.client.buf.len() as u64) < n {
                    self.client.fill_or_eof()?;
                }
                Some(self.client.buf.drain(..n as usize).collect::<Vec<u8>>())
            }
            BodyFraming::Chunked => loop {
                match http::decode_chunked(&self.client.buf, max) {
                    Ok(d) => {
                        self.client.buf.drain(..d.consumed);
                        break Some(d.body);
                    }
                    Err(HttpError::Incomplete) => self.client.fill_or_eof()?,
                    Err(e) => {
                        let r = Refusal {
                            status: 400,
                            rule: if e == HttpError::TooLarge {
                                "http.body_too_large"
                            } else {
                                "http.malformed"
                            },
                            message: e.to_string(),
                        };
                        return self.refuse(&req.method, &req.target, &r, true);
                    }
                }
            },
        };
        let target = match http::parse_target(&req.target) {
            Ok(t) => t,
            Err(e) => {
                let r = Refusal {
                    status: 400,
                    rule: "http.path",
                    message: e.to_string(),
                };
                return self.refuse(&req.method, &req.target, &r, !req.keep_alive());
            }
        };
        let path = target.to_string();
        let keep = req.keep_alive();
        // 3. Judge.
        let verdict = policy::judge(&req.method, &target, body.as_deref(), &self.st.policy);
        // The container id a forwarded request names, forgotten as owned if dockerd says 404.
        let mut gone: Option<String> = None;
        let mut fwd = match verdict {
            Verdict::Refuse(r) => return self.refuse(&req.method, &path, &r, !keep),
            Verdict::Forward(f) => f,
            Verdict::ExecOwned(f) => {
                let id = f.target.segments.get(1).cloned().unwrap_or_default();
                let known = self
                    .st
                    .execs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .ids
                    .contains(&id);
                if !known {
                    let r = Refusal {
                        status: 403,
                        rule: "exec.not_owned",
                        message: format!("exec {id:?} was not created through the guard"),
                    };
                    return self.refuse(&req.method, &path, &r, !keep);
                }
                f
            }
            Verdict::Owned {
                who,
                hide,
                recheck_binds,
                mut forward,
            } => {
                let asked = forward.target.segments.get(1).cloned().unwrap_or_default();
                // A full id the guard already knows as its own needs no ownership inspect
                // (owned.rs says why that is safe); start always inspects for its bind re-check.
                let known =
                    !recheck_binds && who != Who::SelfOnly && self.st.owned().contains(&asked);
                if !known {
                    if let Some(next) = self.check_owned(
                        &req.method,
                        &path,
                        keep,
                        who,
                        hide,
                        recheck_binds,
                        &mut forward,
                    )? {
                        return Ok(next);
                    }
                }
                let id = forward.target.segments[1].clone();
                if forward.method == "DELETE" {
                    self.st.owned().remove(&id);
                }
                gone = Some(id);
                forward
            }
        };
        if fwd.upgrade && !req.wants_tcp_upgrade() {
            fwd.upgrade = false;
        }
        let ua = req.header("user-agent").map(str::to_string);
        self.forward(&fwd, ua.as_deref(), keep, gone.as_deref())
    }

    /// The ownership inspect of the container `forward` names: on success the request names the
    /// full id and `Ok(None)` says go on; a refusal (or the inspect's own answer, for a plain
    /// inspect) has been answered already and is `Ok(Some(next))`.
    #[allow(clippy::too_many_arguments)]
    fn check_owned(
        &mut self,
        method: &str,
        path: &str,
        keep: bool,
        who: Who,
        hide: bool,
        recheck_binds: bool,
        forward: &mut Forward,
    ) -> io::Result<Option<Next>> {
        let asked = forward.target.segments.get(1).cloned().unwrap_or_default();
        let (info, raw) = match self.inspect(&asked, forward.target.version.as_deref()) {
            Ok(Some((v, raw))) => (Some(v), raw),
            Ok(None) => (None, Vec::new()),
            Err(e) => return self.bad_gateway(method, path, &e).map(Some),
        };
        let checked = policy::check_owner(
            info.as_ref(),
            &asked,
            who,
            hide,
            self.caller.container.as_deref(),
            &self.st.policy,
        )
        .and_then(|id| {
            if recheck_binds {
                for src in policy::binds_of(info.as_ref().unwrap_or(&serde_json::Value::Null)) {
                    policy::check_bind_source(&src, &self.st.policy.bind_root).map_err(
                        |mut r| {
                            r.rule = "start.binds";
                            r
                        },
                    )?;
                }
            }
            Ok(id)
        });
        match checked {
            Ok(id) => {
                // Remembered only when owned by label, not for being the caller's own.
                if info
                    .as_ref()
                    .is_some_and(|v| policy::is_owned(v, &self.st.policy))
                {
                    self.st.owned().insert(&id);
                }
                forward.target.segments[1] = id;
            }
            Err(r) => return self.refuse(method, path, &r, !keep).map(Some),
        }
        // A plain inspect is answered with the very response the check judged: one dockerd call
        // instead of two, and nothing can change in between.
        if forward.method == "GET"
            && forward.target.segments.len() == 3
            && forward.target.segments[2] == "json"
            && forward.target.query.is_empty()
        {
            self.client.s.write_all(&raw)?;
            return Ok(Some(if keep { Next::Continue } else { Next::Close }));
        }
        Ok(None)
    }

    fn bad_gateway(&mut self, method: &str, path: &str, e: &io::Error) -> io::Result<Next> {
        let r = Refusal {
            status: 502,
            rule: "upstream",
            message: format!("dockerd: {e}"),
        };
        self.upstream = None;
        self.refuse(method, path, &r, true)
    }

    fn upstream(&mut self) -> io::Result<&mut Peer> {
        if self.upstream.is_none() {
            let s = UnixStream::connect(&self.st.upstream).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("connecting to {}: {e}", self.st.upstream.display()),
                )
            })?;
            self.upstream = Some(Peer::new(s));
        }
        Ok(self.upstream.as_mut().expect("just set"))
    }

    /// Reads a whole response (head and body) from upstream; bodies here are small JSON.
    fn read_response(&mut self, method: &str) -> io::Result<(http::Response, Vec<u8>, Vec<u8>)> {
        let up = self.upstream()?;
        let resp = loop {
            match http::parse_response_head(&up.buf, method) {
                Ok(r) => break r,
                Err(HttpError::Incomplete) => up.fill_or_eof()?,
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        };
        let head_len = resp.head_len;
        let mut full = Vec::with_capacity(up.buf.len());
        match resp.body {
            ResponseBody::None => up.write_out(head_len, &mut full)?,
            ResponseBody::Length(n) if n <= 16 << 20 => up.relay_length(head_len, n, &mut full)?,
            ResponseBody::Chunked => up.relay_chunked(head_len, &mut full)?,
            _ => return Err(io::Error::other("unexpected response framing from dockerd")),
        }
        let decoded = if resp.body == ResponseBody::Chunked {
            http::decode_chunked(&full[head_len..], 16 << 20)
                .map(|d| d.body)
                .map_err(|e| io::Error::other(e.to_string()))?
        } else {
            full[head_len..].to_vec()
        };
        if resp
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            self.upstream = None;
        }
        Ok((resp, full, decoded))
    }

    /// The guard's own inspect of a container: `Ok(None)` when dockerd says 404.
    fn inspect(
        &mut self,
        name: &str,
        version: Option<&str>,
    ) -> io::Result<Option<(serde_json::Value, Vec<u8>)>> {
        let t = http::Target {
            version: version.map(str::to_string),
            segments: vec!["containers".into(), name.into(), "json".into()],
            query: vec![],
        };
        let head = http::forward_head(
            "GET",
            &t.to_string(),
            Some("clawster-docker-guard"),
            None,
            false,
        );
        self.upstream()?.s.write_all(&head)?;
        let (resp, full, body) = self.read_response("GET")?;
        match resp.status {
            200 => serde_json::from_slice(&body)
                .map(|v| Some((v, full)))
                .map_err(|e| io::Error::other(format!("inspect answer: {e}"))),
            404 => Ok(None),
            s => Err(io::Error::other(format!("inspect {name} answered {s}"))),
        }
    }

    /// Forwards the judged request and relays the answer. `gone` is the container id the
    /// request names: forgotten as owned when dockerd answers 404.
    fn forward(
        &mut self,
        f: &Forward,
        ua: Option<&str>,
        keep: bool,
        gone: Option<&str>,
    ) -> io::Result<Next> {
        let target = f.target.to_string();
        // Head and body in one write: one wake-up of dockerd instead of two.
        let mut msg = http::forward_head(
            &f.method,
            &target,
            ua,
            f.body.as_ref().map(Vec::len),
            f.upgrade,
        );
        if let Some(b) = &f.body {
            msg.extend_from_slice(b);
        }
        let sent = self.upstream().and_then(|up| up.s.write_all(&msg));
        if let Err(e) = sent {
            return self.bad_gateway(&f.method, &target, &e);
        }
        match &f.note {
            Note::Created(name) => {
                let (resp, full, body) = match self.read_response(&f.method) {
                    Ok(x) => x,
                    Err(e) => return self.bad_gateway(&f.method, &target, &e),
                };
                if resp.status == 201 {
                    let id = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["Id"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    // Created from the body the guard judged, which carries the owner label.
                    self.st.owned().insert(&id);
                    // What dockerd was told (the judged, rewritten body).
                    let sent: serde_json::Value = f
                        .body
                        .as_deref()
                        .and_then(|b| serde_json::from_slice(b).ok())
                        .unwrap_or_default();
                    let hc = &sent["HostConfig"];
                    tracing::info!(
                        clawster_check = "docker_guard.created",
                        clawster_status = Status::Changed.as_str(),
                        method = f.method.as_str(),
                        path = target.as_str(),
                        rule = "create",
                        caller_pid = self.caller.pid,
                        container_id = id.as_str(),
                        container_name = name.as_str(),
                        image = sent["Image"].as_str().unwrap_or(""),
                        runtime = hc["Runtime"].as_str().unwrap_or(""),
                        memory = hc["Memory"].as_i64().unwrap_or(0),
                        nano_cpus = hc["NanoCpus"].as_i64().unwrap_or(0),
                        pids_limit = hc["PidsLimit"].as_i64().unwrap_or(0),
                        binds = hc["Binds"].to_string().as_str(),
                        "created container {name} ({id}) for pid {} under {}",
                        self.caller.pid,
                        hc["Runtime"].as_str().unwrap_or("")
                    );
                }
                self.client.s.write_all(&full)?;
                Ok(if keep { Next::Continue } else { Next::Close })
            }
            Note::ExecCreated => {
                let (resp, full, body) = match self.read_response(&f.method) {
                    Ok(x) => x,
                    Err(e) => return self.bad_gateway(&f.method, &target, &e),
                };
                if resp.status == 404 {
                    if let Some(c) = gone {
                        self.st.owned().remove(c);
                    }
                }
                if resp.status == 201 {
                    if let Some(id) = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["Id"].as_str().map(str::to_string))
                    {
                        self.st
                            .execs
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(id);
                    }
                }
                self.client.s.write_all(&full)?;
                Ok(if keep { Next::Continue } else { Next::Close })
            }
            Note::None | Note::Hijack => self.relay(&f.method, f.note == Note::Hijack, keep, gone),
        }
    }

    /// Relays the response to the client, streaming; the head and whatever of the body is
    /// already buffered leave in one write.
    fn relay(
        &mut self,
        method: &str,
        may_hijack: bool,
        keep: bool,
        gone: Option<&str>,
    ) -> io::Result<Next> {
        let resp = {
            let up = self.upstream()?;
            loop {
                match http::parse_response_head(&up.buf, method) {
                    Ok(r) => break r,
                    Err(HttpError::Incomplete) => {
                        if up.fill()? == 0 {
                            let e = io::Error::new(io::ErrorKind::UnexpectedEof, "dockerd closed");
                            return self.bad_gateway(method, "-", &e);
                        }
                    }
                    Err(e) => {
                        return self.bad_gateway(method, "-", &io::Error::other(e.to_string()))
                    }
                }
            }
        };
        if resp.status == 404 {
            if let Some(c) = gone {
                self.st.owned().remove(c);
            }
        }
        let hijacked = may_hijack
            && (resp.body == ResponseBody::Upgraded
                || (resp.status == 200 && resp.body == ResponseBody::UntilClose));
        let mut up = self.upstream.take().expect("upstream present");
        if hijacked {
            // The head and any stream bytes that came with it.
            let n = up.buf.len();
            up.write_out(n, &mut self.client.s)?;
            return self.splice(up).map(|()| Next::Close);
        }
        let client = &mut self.client.s;
        let close_upstream = resp
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        match resp.body {
            ResponseBody::None => up.write_out(resp.head_len, client)?,
            ResponseBody::Length(n) => up.relay_length(resp.head_len, n, client)?,
            ResponseBody::Chunked => up.relay_chunked(resp.head_len, client)?,
            ResponseBody::UntilClose | ResponseBody::Upgraded => {
                // Not a hijack we allowed: pass the body until dockerd closes, then close.
                up.copy_to_eof(client)?;
                return Ok(Next::Close);
            }
        }
        if !close_upstream {
            self.upstream = Some(up);
        }
        Ok(if keep { Next::Continue } else { Next::Close })
    }

    /// Raw bytes both ways (a hijacked exec stream); each side's EOF becomes a write shutdown of
    /// the other, so the client's stdin half-close reaches the process in the container.
    fn splice(&mut self, mut up: Peer) -> io::Result<()> {
        self.client.s.set_read_timeout(None)?;
        // Bytes the client sent past its request head belong to the stream (what dockerd sent
        // past the response head went out with the head).
        up.s.write_all(&self.client.buf)?;
        self.client.buf.clear();
        let mut c_read = self.client.s.try_clone()?;
        let mut u_write = up.s.try_clone()?;
        let (stdin_done, stdin_result) = std::sync::mpsc::channel();
        self.st.threads.run(Box::new(move || {
            let r = pump(&mut c_read, &mut u_write);
            let _ = u_write.shutdown(Shutdown::Write);
            let _ = stdin_done.send(r);
        }))?;
        let mut c_write = self.client.s.try_clone()?;
        let r = pump(&mut up.s, &mut c_write);
        let _ = c_write.shutdown(Shutdown::Write);
        // The client may keep its write side open after the output ended: stop reading it.
        let _ = self.client.s.shutdown(Shutdown::Read);
        let _ = stdin_result.recv();
        r.map(|_| ())
    }
}

/// Moves the bytes of one direction of a hijacked stream until EOF. Only called once the guard
/// has judged the request and dockerd has accepted the hijack: from then on the bytes are the
/// exec's raw stdin or output, which the guard passes without looking.
///
/// splice(2) through a pipe moves them socket to socket inside the kernel, without copying
/// them through the guard's memory. When the kernel (or a seccomp filter) refuses splice for
/// these sockets, a plain read/write copy carries on from where splice stopped.
fn pump(from: &mut UnixStream, to: &mut UnixStream) -> io::Result<u64> {
    let mut n = 0u64;
    if let Ok((pipe_r, pipe_w)) = pipe::pipe_with(pipe::PipeFlags::CLOEXEC) {
        // A larger pipe moves more per call; the default (64 KiB) serves when refused.
        let _ = pipe::fcntl_setpipe_size(&pipe_w, COPY_BUF);
        match splice_pump(from, to, &pipe_r, &pipe_w, &mut n)? {
            Spliced::Eof => return Ok(n),
            Spliced::Refused => {}
        }
    }
    copy_pump(from, to, n)
}

enum Spliced {
    Eof,
    /// splice is not available here; nothing is left in the pipe.
    Refused,
}

fn splice_pump(
    from: &UnixStream,
    to: &mut UnixStream,
    pipe_r: &std::os::fd::OwnedFd,
    pipe_w: &std::os::fd::OwnedFd,
    n: &mut u64,
) -> io::Result<Spliced> {
    let flags = pipe::SpliceFlags::MOVE;
    loop {
        let got = match pipe::splice(from, None, pipe_w, None, COPY_BUF, flags) {
            Ok(0) => return Ok(Spliced::Eof),
            Ok(g) => g,
            Err(rustix::io::Errno::INTR) => continue,
            // Not for these files, or not allowed: nothing entered the pipe, so the plain copy
            // takes over losing nothing.
            Err(e) if refused(e) => return Ok(Spliced::Refused),
            Err(e) => return Err(e.into()),
        };
        let mut left = got;
        while left > 0 {
            match pipe::splice(pipe_r, None, &*to, None, left, flags) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(m) => left -= m,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) if refused(e) => {
                    // The output side refuses splice: hand what is in the pipe over by hand.
                    let mut buf = vec![0u8; left];
                    let mut pipe_file = std::fs::File::from(pipe_r.try_clone()?);
                    pipe_file.read_exact(&mut buf)?;
                    to.write_all(&buf)?;
                    left = 0;
                }
                Err(e) => return Err(e.into()),
            }
        }
        *n += got as u64;
    }
}

/// splice's answers for "not with these files" (EINVAL), "not here" (ENOSYS, and EPERM from a
/// seccomp filter).
fn refused(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    matches!(
        e,
        Errno::INVAL | Errno::NOSYS | Errno::PERM | Errno::OPNOTSUPP
    )
}

/// Copies until EOF with a large buffer (`io::copy` uses 8 KiB between two sockets); `n` bytes
/// were moved before.
fn copy_pump(from: &mut UnixStream, to: &mut UnixStream, mut n: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let got = match from.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(g) => g,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..got])?;
        n += got as u64;
    }
}

#[cfg(test)]
mod tests;
