//! The systemd notification protocol (`sd_notify`), written out: one datagram of `KEY=VALUE`
//! lines to the Unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an abstract
//! socket). No libsystemd: the protocol is a `sendto` and the static binaries have no C.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go; a no-op when the service manager did not ask for them.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Uses `$NOTIFY_SOCKET` when set (and not empty); otherwise notifications are dropped.
    pub fn from_env() -> io::Result<Self> {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(s) if !s.is_empty() => Self::at(&s.to_string_lossy()),
            _ => Ok(Self { target: None }),
        }
    }

    /// Sends to `socket`: a filesystem path, or `@name` for an abstract socket.
    pub fn at(socket: &str) -> io::Result<Self> {
        let addr = if let Some(name) = socket.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else {
            SocketAddr::from_pathname(socket)?
        };
        Ok(Self {
            target: Some((UnixDatagram::unbound()?, addr)),
        })
    }

    /// True when notifications reach a service manager.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one notification, e.g. `"READY=1\nSTATUS=forwarding"`. Newlines inside a STATUS
    /// value must already be replaced by the caller ([`Notifier::status`] does that).
    pub fn notify(&self, state: &str) -> io::Result<()> {
        if let Some((sock, addr)) = &self.target {
            sock.send_to_addr(state.as_bytes(), addr)?;
        }
        Ok(())
    }

    /// `STATUS=<text>` with newlines flattened.
    pub fn status(&self, text: &str) -> io::Result<()> {
        self.notify(&format!("STATUS={}", text.replace('\n', " ")))
    }

    /// `READY=1` plus a status line.
    pub fn ready(&self, text: &str) -> io::Result<()> {
        self.notify(&format!("READY=1\nSTATUS={}", text.replace('\n', " ")))
    }

    /// `WATCHDOG=1`.
    pub fn watchdog(&self) -> io::Result<()> {
        self.notify("WATCHDOG=1")
    }
}

/// The watchdog period the service manager expects (`$WATCHDOG_USEC`, for this process per
/// `$WATCHDOG_PID` when set); ping at half of it.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_string_lossy().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier::at(path.to_str().expect("utf8")).expect("notifier");
        assert!(n.enabled());
        n.ready("up\nand running").expect("send");
        n.watchdog().expect("send");
        let mut buf = [0u8; 128];
        let len = server.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up and running");
        let len = server.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn abstract_sockets_work() {
        let name = format!("clawster-sdnotify-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let server = UnixDatagram::bind_addr(
            &SocketAddr::from_abstract_name(name.as_bytes()).expect("addr"),
        )
        .expect("bind");
        Notifier::at(&format!("@{name}"))
            .expect("notifier")
            .status("x")
            .expect("send");
        let mut buf = [0u8; 32];
        let len = server.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"STATUS=x");
    }
}
