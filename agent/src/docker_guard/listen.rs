//! The listening socket: inherited from systemd (socket activation) or bound here.
#![allow(unsafe_code)]
//! `unsafe` is needed once, to adopt file descriptor 3 that systemd passed (`LISTEN_FDS`): it is
//! only taken after `LISTEN_PID` names this process, `LISTEN_FDS` is exactly 1, and `fstat`/
//! `getsockname` say fd 3 is a Unix stream socket; nothing else in the process uses fd 3.

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

const SD_LISTEN_FDS_START: i32 = 3;

/// The socket systemd passed us, if this process was socket-activated.
pub fn from_systemd() -> io::Result<Option<UnixListener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    if fds != "1" {
        return Err(io::Error::other(format!(
            "socket activation passed {fds} sockets; the guard takes exactly one"
        )));
    }
    // SAFETY: fd 3 is open for the lifetime of this borrow (systemd passed it; checked below).
    let fd = unsafe { BorrowedFd::borrow_raw(SD_LISTEN_FDS_START) };
    let st = rustix::fs::fstat(fd).map_err(io::Error::from)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
        return Err(io::Error::other("fd 3 from systemd is not a socket"));
    }
    let addr = rustix::net::getsockname(fd).map_err(io::Error::from)?;
    if addr.address_family() != rustix::net::AddressFamily::UNIX {
        return Err(io::Error::other("fd 3 from systemd is not a Unix socket"));
    }
    if rustix::net::sockopt::socket_type(fd).map_err(io::Error::from)?
        != rustix::net::SocketType::STREAM
    {
        return Err(io::Error::other("fd 3 from systemd is not a stream socket"));
    }
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC).map_err(io::Error::from)?;
    // SAFETY: checked above that fd 3 is a Unix stream socket systemd handed to this process;
    // ownership moves to the listener and no other code in the process refers to fd 3.
    let l = unsafe { UnixListener::from_raw_fd(SD_LISTEN_FDS_START) };
    Ok(Some(l))
}

/// Binds `path` (mode 0660), replacing a stale socket file but never another kind of file.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::other(format!(
                "{} exists and is not a socket",
                path.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}
