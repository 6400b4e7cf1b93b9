//! Unix stream sockets at the process boundary, for every service of the agent (the maintenance
//! window, the docker guard): the listening socket systemd hands over (socket activation), the
//! one we bind ourselves when it does not, and what the kernel says about a connected peer.
#![allow(unsafe_code)]
//! `unsafe` is allowed here for two libc contracts, each checked right at the call:
//!
//! - [`from_systemd`] adopts fd 3, handed over by systemd (`LISTEN_FDS=1`, `LISTEN_PID` = our
//!   pid). `FromRawFd` requires that the fd is open and owned by no one else: the protocol
//!   guarantees that, the variables are removed so it is adopted once, and `fstat`,
//!   `SO_ACCEPTCONN` and the socket's family and type are checked first.
//! - [`Peer::of`] reads `SO_PEERGROUPS` (which rustix does not offer) into a buffer we own, with
//!   its length passed in.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// The first socket-activation fd (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// The listening Unix stream socket systemd passed this process, if it did. `what` names the
/// socket unit in errors. The activation variables are removed so children never see them.
pub fn from_systemd(what: &str) -> io::Result<Option<UnixListener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    if fds != "1" {
        return Err(io::Error::other(format!(
            "systemd passed LISTEN_FDS={fds}; {what} must have exactly one ListenStream="
        )));
    }
    // SAFETY: only borrowed for the checks below; fd 3 is open while systemd's protocol says so,
    // and fstat fails cleanly if it is not.
    let fd = unsafe { BorrowedFd::borrow_raw(LISTEN_FDS_START) };
    let st = rustix::fs::fstat(fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
        return Err(io::Error::other(format!(
            "fd 3 from {what} is not a socket"
        )));
    }
    if rustix::net::getsockname(fd)?.address_family() != rustix::net::AddressFamily::UNIX
        || rustix::net::sockopt::socket_type(fd)? != rustix::net::SocketType::STREAM
    {
        return Err(io::Error::other(format!(
            "fd 3 from {what} is not a Unix stream socket"
        )));
    }
    if !rustix::net::sockopt::socket_acceptconn(fd)? {
        return Err(io::Error::other(format!(
            "fd 3 from {what} is not listening (the unit needs Accept=no)"
        )));
    }
    // SAFETY: checked above that fd 3 is a listening Unix stream socket handed to this process;
    // ownership moves to the listener, and the variables are gone so nothing adopts it again.
    let owned = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(Some(UnixListener::from(owned)))
}

/// Binds `path` ourselves: created under a temporary name with a umask that keeps it private,
/// given mode 0660 and group `gid`, then renamed into place, so it is never reachable with looser
/// permissions. A stale socket at `path` is replaced; any other kind of file is an error.
pub fn bind(path: &Path, gid: Option<u32>) -> io::Result<UnixListener> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("{} has no directory", path.display())))?;
    std::fs::create_dir_all(dir)?;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(io::Error::other(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.{}",
        name.unwrap_or_else(|| "sock".into()),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let l = UnixListener::bind(&tmp);
    rustix::process::umask(old);
    let l = l?;
    let placed = (|| {
        if let Some(g) = gid {
            std::os::unix::fs::chown(&tmp, None, Some(g))?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(l)
}

/// True when `path` is a socket.
pub fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// A connected peer as the kernel recorded it at connect() (`SO_PEERCRED`, `SO_PEERGROUPS`).
/// Trust the uid and groups; the pid is an audit hint only (it may have exited and been reused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Process id at connect().
    pub pid: i32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Peer {
    /// Reads the peer's credentials and supplementary groups.
    pub fn of(stream: &UnixStream) -> io::Result<Self> {
        let cred = rustix::net::sockopt::socket_peercred(stream)?;
        Ok(Self {
            uid: cred.uid.as_raw(),
            gid: cred.gid.as_raw(),
            pid: cred.pid.as_raw_nonzero().get(),
            groups: peer_groups(stream)?,
        })
    }

    /// The process name at the time of asking (`/proc/PID/comm`), for audit records.
    pub fn command(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/comm", self.pid))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    }
}

/// The peer's supplementary groups at connect() (`SO_PEERGROUPS`, Linux >= 4.13).
fn peer_groups(stream: &UnixStream) -> io::Result<Vec<u32>> {
    let mut buf: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (buf.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `buf`, which holds exactly that many.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            buf.truncate(n);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        // ERANGE: the kernel put the size it needs in `len`.
        if err.raw_os_error() == Some(libc::ERANGE) && n > buf.len() && n <= 65536 {
            buf.resize(n, 0);
            continue;
        }
        return Err(err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socketpair_peer_is_this_process() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let p = Peer::of(&a).expect("peer");
        assert_eq!(p.uid, rustix::process::getuid().as_raw());
        assert_eq!(p.pid as u32, std::process::id());
        let mine = rustix::process::getgroups().expect("getgroups");
        for g in mine.iter().map(|g| g.as_raw()) {
            assert!(p.groups.contains(&g), "{:?} lacks {g}", p.groups);
        }
    }

    #[test]
    fn activation_variables_of_another_process_are_ignored_and_removed() {
        std::env::set_var("LISTEN_PID", "1");
        std::env::set_var("LISTEN_FDS", "1");
        assert!(from_systemd("test.socket").expect("ok").is_none());
        assert!(std::env::var_os("LISTEN_FDS").is_none());
    }

    #[test]
    fn bind_is_private_until_placed_and_refuses_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.sock");
        let l = bind(&path, None).expect("bind");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert!(is_socket(&path));
        drop(l);
        // A stale socket is replaced.
        bind(&path, None).expect("rebind over a stale socket");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let e = bind(&file, None).expect_err("a regular file is not replaced");
        assert!(e.to_string().contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read(&file).expect("read"), b"x");
        // No temporary names are left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
