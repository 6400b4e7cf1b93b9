//! The three system interfaces the window service needs that neither std nor rustix offers.
#![allow(unsafe_code)]
//! `unsafe` is allowed here, and only here, because each item is one libc call whose contract is
//! simple and checked right at the call:
//!
//! - [`listen_fd`]: adopting fd 3 handed over by systemd socket activation (`LISTEN_FDS=1`,
//!   `LISTEN_PID` = our pid). `FromRawFd` is unsafe because the fd must be open and owned by no one
//!   else; the protocol guarantees that, and we first check with `fstat` that it is a socket and
//!   with `getsockopt(SO_ACCEPTCONN)` that it listens.
//! - [`peer_groups`]: `getsockopt(SO_PEERGROUPS)` into a buffer we own, with its length passed in.
//! - [`local_time`]: `localtime_r` into a zeroed `tm` we own.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

/// The first socket-activation fd.
const SD_LISTEN_FDS_START: i32 = 3;

/// The listening socket systemd passed us, if it did (and the variables are for this process).
/// The variables are removed so children (the package manager) never see them.
pub fn listen_fd() -> io::Result<Option<UnixListener>> {
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
    match fds.parse::<i32>() {
        Ok(1) => {}
        _ => {
            return Err(io::Error::other(format!(
                "systemd passed LISTEN_FDS={fds}; the window socket unit must have exactly one ListenStream="
            )))
        }
    }
    let fd = SD_LISTEN_FDS_START;
    // SAFETY: fstat on an fd number only reads its metadata into `st`, which we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::other("fd 3 from systemd is not a socket"));
    }
    let mut acc: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `acc`, which we own.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut acc as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || acc == 0 {
        return Err(io::Error::other(
            "fd 3 from systemd is not a listening socket (the unit needs Accept=no)",
        ));
    }
    // SAFETY: fd 3 is open (fstat succeeded), a listening socket, handed to this process by the
    // socket-activation protocol, and adopted exactly once (the variables are removed above).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(Some(UnixListener::from(owned)))
}

/// The peer's supplementary groups at connect() (SO_PEERGROUPS, Linux >= 4.13).
pub fn peer_groups(stream: &UnixStream) -> io::Result<Vec<u32>> {
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
        // ERANGE: the kernel put the needed size in `len`.
        if err.raw_os_error() == Some(libc::ERANGE) && n > buf.len() && n <= 65536 {
            buf.resize(n, 0);
            continue;
        }
        return Err(err);
    }
}

/// Local civil time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// Year.
    pub year: i64,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0-23.
    pub hour: u32,
    /// 0-59.
    pub minute: u32,
    /// 0-60.
    pub second: u32,
    /// Zone abbreviation.
    pub zone: String,
    /// Offset from UTC in seconds.
    pub offset: i64,
}

/// Seconds since the epoch as local civil time, per the host's /etc/localtime or `TZ`.
pub fn local_time(unix: i64) -> Option<LocalTime> {
    // libc marks musl's `time_t` alias deprecated (it announces musl 1.2's 64-bit change); on
    // x86_64 and aarch64 it is 64 bits either way.
    #[allow(deprecated)]
    let t = libc::time_t::try_from(unix).ok()?;
    // SAFETY: localtime_r fills `tm`, which we own; it returns NULL on failure.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let p = unsafe { libc::localtime_r(&t, &mut tm) };
    if p.is_null() {
        return None;
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: tm_zone points at a NUL-terminated static string owned by libc.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    Some(LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        zone,
        offset: tm.tm_gmtoff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_groups_of_a_socketpair_are_ours() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let groups = peer_groups(&a).expect("SO_PEERGROUPS");
        let mine = rustix::process::getgroups().expect("getgroups");
        let mine: Vec<u32> = mine.iter().map(|g| g.as_raw()).collect();
        for g in &mine {
            assert!(groups.contains(g), "{groups:?} lacks {g}");
        }
    }

    #[test]
    fn no_activation_variables_means_no_fd() {
        // LISTEN_PID for another process: not ours.
        std::env::set_var("LISTEN_PID", "1");
        std::env::set_var("LISTEN_FDS", "1");
        assert!(listen_fd().expect("ok").is_none());
        assert!(std::env::var_os("LISTEN_FDS").is_none());
    }

    #[test]
    fn local_time_of_the_epoch_is_sane() {
        let t = local_time(0).expect("localtime");
        assert!((1969..=1970).contains(&t.year) && (1..=12).contains(&t.month));
        assert!((1..=31).contains(&t.day) && t.offset.abs() <= 14 * 3600);
    }
}
