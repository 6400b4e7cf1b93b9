//! `window serve`: the root service behind the socket.
//!
//! Per connection, in this order (any failure refuses, exit code 3, and the package manager never
//! runs): the caller's uid/gid/groups from the kernel at connect (SO_PEERCRED, SO_PEERGROUPS; the
//! pid and command are audit hints only); root or a member of the client group; a well-formed
//! request ([`super::protocol`]); a valid name ([`validate_name`]); an open, unexpired window of this
//! boot ([`super::state`]); the name on its allowlist exactly. Then one install at a time (others
//! wait up to `queue_timeout`), the window re-checked after the wait, the install streamed back,
//! recorded in the state and audited. A second thread locks the window at its deadline (within a
//! few ms) even when no request comes, and records the expiry.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawster_core::sdnotify::Notifier;
use clawster_core::timefmt::fmt_utc;
use clawster_core::window_rules::validate_name;

use super::audit::{self, Caller};
use super::protocol::{
    frame_output, frame_result, parse_request, Request, CODE_FAILED, CODE_OK, CODE_REFUSED,
    MAX_REQUEST,
};
use super::state::{Installed, Loaded, Now, RunDir, Verdict};
use crate::host::packages::{InstallLimits, WindowInstaller};

/// Most connections served at once (more are closed at once).
pub const MAX_CONNECTIONS: usize = 32;

/// Options of the service.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where the state (and the socket, when we bind it) lives.
    pub run_dir: RunDir,
    /// The client group's gid (`None`: the group does not exist, only root may ask).
    pub client_gid: Option<u32>,
    /// The client group's name (messages).
    pub client_group: String,
    /// Bounds of one install.
    pub limits: InstallLimits,
    /// How long a request waits for another install to finish.
    pub queue_timeout: Duration,
}

/// Shared by the connection threads.
struct Shared {
    opts: ServeOptions,
    installer: Arc<dyn WindowInstaller>,
    install_lock: Mutex<()>,
    connections: AtomicUsize,
    notifier: Notifier,
}

/// Binds `DIR/window.sock` ourselves (no socket activation): created under a temporary name,
/// given mode 0660 and owner root:`gid`, then renamed into place, so it is never reachable with
/// looser permissions.
pub fn bind(rd: &RunDir, gid: Option<u32>) -> io::Result<UnixListener> {
    crate::host::socket::bind(&rd.socket(), gid)
}

/// Serves until `stop` is set (checked after each connection and timer tick).
pub fn serve(
    opts: ServeOptions,
    installer: Arc<dyn WindowInstaller>,
    listener: UnixListener,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        opts,
        installer,
        install_lock: Mutex::new(()),
        connections: AtomicUsize::new(0),
        notifier: Notifier::from_env()?,
    });
    {
        let shared = shared.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("expiry".into())
            .spawn(move || expiry_loop(&shared, &stop))?;
    }
    let _ = shared.notifier.ready(&status_line(&shared.opts.run_dir));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(clawster_check = "window.serve", "accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let mut s = stream;
            let _ = s.write_all(
                frame_result(CODE_FAILED, "the window service is busy; try again").as_bytes(),
            );
            continue;
        }
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                handle(&shared2, stream);
                shared2.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

fn status_line(rd: &RunDir) -> String {
    match Now::read() {
        Ok(now) => match rd.load().verdict(&now) {
            Verdict::Open(_) => {
                let w = rd.load();
                let w = w.window();
                format!(
                    "window open until {} for {}",
                    w.map(|w| fmt_utc(w.expires_at)).unwrap_or_default(),
                    w.map(|w| w.packages.join(", ")).unwrap_or_default()
                )
            }
            Verdict::Locked(r) | Verdict::Expired(r) => format!("locked: {r}"),
        },
        Err(e) => format!("cannot read the clock: {e}"),
    }
}

/// Locks an open window whose deadline passed (or that belongs to another boot) and records it.
/// Returns how long to sleep before looking again.
pub fn check_expiry(rd: &RunDir, now: &Now) -> Duration {
    let loaded = rd.load();
    match loaded.verdict(now) {
        Verdict::Open(left) => left.min(Duration::from_millis(250)),
        Verdict::Expired(why) => {
            if let Ok(_lock) = rd.lock() {
                // Re-read under the lock: an operator may have opened a new window meanwhile.
                if let Loaded::Window(w) = rd.load() {
                    if w.state == "open" && matches!(w.verdict(now), Verdict::Expired(_)) {
                        let latency = if w.boot_id == now.boot_id {
                            (now.boottime.as_millis() as u64).saturating_sub(w.expires_boottime_ms)
                        } else {
                            0
                        };
                        let mut w = *w;
                        // Say which it was: a request that comes after the lock reads the reason
                        // from the state, and "expired at" would be wrong for another boot's window.
                        w.lock(
                            if w.boot_id != now.boot_id {
                                "reboot"
                            } else {
                                "expiry"
                            },
                            now,
                        );
                        match rd.save(&w) {
                            Ok(()) => audit::expire(&w.id, w.expires_at, latency, &why),
                            Err(e) => tracing::error!(
                                clawster_check = "window.expire",
                                clawster_status = "failed",
                                "cannot record the expiry of window {}: {e:#} (it is locked regardless: the deadline has passed)",
                                w.id
                            ),
                        }
                    }
                }
            }
            Duration::from_millis(250)
        }
        Verdict::Locked(_) => Duration::from_millis(250),
    }
}

fn expiry_loop(shared: &Shared, stop: &AtomicBool) {
    let mut last = String::new();
    while !stop.load(Ordering::SeqCst) {
        let sleep = match Now::read() {
            Ok(now) => check_expiry(&shared.opts.run_dir, &now),
            Err(e) => {
                tracing::error!(
                    clawster_check = "window.expire",
                    "cannot read the clock: {e}"
                );
                Duration::from_secs(1)
            }
        };
        let line = status_line(&shared.opts.run_dir);
        if line != last {
            let _ = shared.notifier.status(&line);
            last = line;
        }
        std::thread::sleep(sleep + Duration::from_millis(1));
    }
}

fn peer(stream: &UnixStream) -> io::Result<Caller> {
    let p = crate::host::socket::Peer::of(stream)?;
    Ok(Caller {
        command: p.command(),
        uid: p.uid,
        gid: p.gid,
        pid: p.pid,
        groups: p.groups,
    })
}

/// Whether the caller may ask at all: root, or the client group as primary or supplementary group.
pub fn authorized(c: &Caller, client_gid: Option<u32>) -> bool {
    c.uid == 0 || client_gid.is_some_and(|g| c.gid == g || c.groups.contains(&g))
}

/// Reads everything the client sends until it shuts its writing side (at most one byte more than
/// a request may have), so trailing bytes after the line make the request malformed.
fn read_request(stream: &mut UnixStream) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    (&*stream)
        .take((MAX_REQUEST + 1) as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

fn handle(shared: &Shared, mut stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let caller = match peer(&stream) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                clawster_check = "window.request",
                clawster_status = "refused",
                "no peer credentials: {e}"
            );
            let _ = stream.write_all(
                frame_result(CODE_REFUSED, "caller not allowed: no peer credentials").as_bytes(),
            );
            return;
        }
    };
    let opts = &shared.opts;
    let refuse =
        |stream: &mut UnixStream, package: &str, reason: &str, window: Option<(&str, i64)>| {
            audit::request(&caller, package, false, reason, window);
            let _ = stream
                .write_all(frame_result(CODE_REFUSED, &format!("refused: {reason}")).as_bytes());
        };
    if !authorized(&caller, opts.client_gid) {
        let reason = format!(
            "caller not allowed: uid {} is not root and not in group {}",
            caller.uid, opts.client_group
        );
        return refuse(&mut stream, "", &reason, None);
    }
    let raw = match read_request(&mut stream) {
        Ok(b) => b,
        Err(e) => return refuse(&mut stream, "", &format!("malformed request: {e}"), None),
    };
    let package = match parse_request(&raw) {
        Ok(Request::Install(p)) => p,
        Ok(Request::Refresh) => {
            if caller.uid != 0 {
                return refuse(
                    &mut stream,
                    "",
                    "caller not allowed: refresh is for root",
                    None,
                );
            }
            if let Ok(now) = Now::read() {
                check_expiry(&opts.run_dir, &now);
            }
            let _ = stream.write_all(frame_result(CODE_OK, "refreshed").as_bytes());
            return;
        }
        Err(e) => {
            let shown = String::from_utf8_lossy(&raw)
                .chars()
                .take(80)
                .collect::<String>();
            return refuse(
                &mut stream,
                &shown,
                &format!("malformed request: {e}"),
                None,
            );
        }
    };
    if let Err(e) = validate_name(&package) {
        return refuse(&mut stream, &package, &format!("invalid name: {e}"), None);
    }
    // Ok((id, expiry)) when allowed; Err((reason, the open window's id and expiry if any)).
    type Judged = Result<(String, i64), (String, Option<(String, i64)>)>;
    let judge = || -> Judged {
        let now = Now::read().map_err(|e| (format!("cannot read the clock: {e}"), None))?;
        let loaded = opts.run_dir.load();
        match loaded.verdict(&now) {
            Verdict::Open(_) => {
                let w = loaded.window().expect("an open verdict has a window");
                if w.packages.iter().any(|p| p == &package) {
                    Ok((w.id.clone(), w.expires_at))
                } else {
                    Err((
                        format!(
                            "package {package:?} is not on the window's list ({})",
                            w.packages.join(", ")
                        ),
                        Some((w.id.clone(), w.expires_at)),
                    ))
                }
            }
            Verdict::Locked(r) | Verdict::Expired(r) => Err((r, None)),
        }
    };
    let (id, expires) = match judge() {
        Ok(w) => w,
        Err((reason, w)) => {
            let w = w.as_ref().map(|(i, e)| (i.as_str(), *e));
            return refuse(&mut stream, &package, &reason, w);
        }
    };

    // One install at a time; the window is judged again once it is our turn.
    let waited = Instant::now();
    let guard = loop {
        match shared.install_lock.try_lock() {
            Ok(g) => break Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => break Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {
                if waited.elapsed() >= opts.queue_timeout {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    let Some(_guard) = guard else {
        let reason = format!(
            "another install is still running after {:?}; try again",
            opts.queue_timeout
        );
        audit::install(&caller, &package, CODE_FAILED, 0, &[], &reason, &id);
        let _ = stream.write_all(frame_result(CODE_FAILED, &reason).as_bytes());
        return;
    };
    let (id, expires) = match judge() {
        Ok(w) => w,
        Err((reason, _)) => return refuse(&mut stream, &package, &reason, Some((&id, expires))),
    };
    audit::request(
        &caller,
        &package,
        true,
        "on the allowlist of the open window",
        Some((&id, expires)),
    );

    let started = Instant::now();
    let mut client_gone = false;
    let mut out = |line: &str| {
        if !client_gone && stream.write_all(frame_output(line).as_bytes()).is_err() {
            // The client went away; the install goes on (stopping dpkg halfway is worse).
            client_gone = true;
        }
    };
    let result = shared
        .installer
        .install_one(&package, &opts.limits, &mut out);
    let ms = started.elapsed().as_millis() as u64;
    let (code, reason, changes, result_word) = match &result {
        Ok(r) if r.already_installed => (
            CODE_OK,
            format!("{package} is already installed"),
            r.changes.clone(),
            "already-installed",
        ),
        Ok(r) => (
            CODE_OK,
            format!("installed {package}"),
            r.changes.clone(),
            "installed",
        ),
        Err(e) => (
            CODE_FAILED,
            format!("install failed: {e}"),
            Vec::new(),
            "failed",
        ),
    };
    record(
        &opts.run_dir,
        &id,
        Installed {
            package: package.clone(),
            at: Now::read().map(|n| n.unix).unwrap_or(0),
            uid: caller.uid,
            result: result_word.into(),
            changes: changes.clone(),
        },
    );
    audit::install(&caller, &package, code, ms, &changes, &reason, &id);
    let _ = stream.write_all(frame_result(code, &reason).as_bytes());
}

/// Adds an install to the window it ran in (not to a window opened since).
fn record(rd: &RunDir, id: &str, i: Installed) {
    let Ok(_lock) = rd.lock() else { return };
    if let Loaded::Window(mut w) = rd.load() {
        if w.id == id {
            w.installed.push(i);
            if let Err(e) = rd.save(&w) {
                tracing::error!(
                    clawster_check = "window.install",
                    "recording the install in {}: {e:#}",
                    rd.state().display()
                );
            }
        }
    }
}

/// True when `path` is a socket (for tests and `status`).
pub fn is_socket(path: &Path) -> bool {
    crate::host::socket::is_socket(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32, groups: &[u32]) -> Caller {
        Caller {
            uid,
            gid,
            pid: 1,
            groups: groups.to_vec(),
            command: "x".into(),
        }
    }

    #[test]
    fn only_root_and_the_client_group_are_authorized() {
        assert!(authorized(&caller(0, 0, &[]), None));
        assert!(authorized(&caller(0, 0, &[]), Some(990)));
        assert!(authorized(&caller(1500, 990, &[]), Some(990)));
        assert!(authorized(&caller(1500, 1500, &[4, 990]), Some(990)));
        assert!(!authorized(&caller(1500, 1500, &[4]), Some(990)));
        assert!(!authorized(&caller(1500, 990, &[990]), None));
    }
}
