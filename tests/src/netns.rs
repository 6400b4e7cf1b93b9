//! Network namespaces for the NAT suites: a private host, a NAT host and an outside host joined
//! by veth pairs, documentation addresses only.
//!
//! ```text
//!  private (10.0.2.2/24)          nat                               outside (198.51.100.2/24,
//!   eth0 ── veth ── in0 10.0.2.1/24     out0 198.51.100.1/24 ── veth ── eth0   169.254.169.254/32)
//!   default via 10.0.2.1           default via 198.51.100.2         10.0.2.0/24 via 198.51.100.1
//! ```
//!
//! The outside host has a route back to the private network, so plain routing works without
//! NAT: a connection that arrives from 198.51.100.1 proves translation, and a dropped connection
//! proves our filter (not a missing route). Every namespace gets a unique name and is deleted in
//! `Drop`, also when a test panics. Nothing here sends traffic anywhere else.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::process::{run, run_ok, Output};

/// The private host's address.
pub const PRIVATE_ADDR: &str = "10.0.2.2";
/// The private network.
pub const PRIVATE_NET: &str = "10.0.2.0/24";
/// The NAT host's inside address.
pub const NAT_INSIDE_ADDR: &str = "10.0.2.1";
/// The NAT host's outside address (what the outside sees after masquerade).
pub const NAT_OUTSIDE_ADDR: &str = "198.51.100.1";
/// The outside host's address.
pub const OUTSIDE_ADDR: &str = "198.51.100.2";
/// The metadata address, held by the outside host so that only our filter can stop it.
pub const METADATA_ADDR: &str = "169.254.169.254";
/// The NAT host's interface towards the outside.
pub const NAT_EGRESS: &str = "out0";

const TIMEOUT: Duration = Duration::from_secs(20);
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn ip_bin() -> Result<PathBuf> {
    crate::prereq::which("ip")
        .ok_or_else(|| anyhow!("`ip` (iproute2) is not on PATH; install tests/deps/nat.apt"))
}

/// One network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    ip: PathBuf,
}

impl Netns {
    /// Creates namespace `name` with loopback up.
    pub fn create(name: &str) -> Result<Self> {
        let ip = ip_bin()?;
        run_ok(Command::new(&ip).args(["netns", "add", name]), TIMEOUT)?;
        let ns = Self {
            name: name.into(),
            ip,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS…`, failing unless it exits 0.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        run_ok(
            Command::new(&self.ip).arg("-n").arg(&self.name).args(args),
            TIMEOUT,
        )
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(&self.ip);
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `program args` inside the namespace and returns what it printed.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        run(self.command(program).args(args), TIMEOUT)
    }

    /// Like [`Netns::exec`], failing unless it exits 0.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> Result<Output> {
        run_ok(self.command(program).args(args), TIMEOUT)
    }

    /// Reads a sysctl of this namespace, e.g. `net.ipv4.ip_forward`.
    pub fn sysctl(&self, key: &str) -> Result<String> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.in_ns(move || Ok(std::fs::read_to_string(&path)?.trim().to_string()))
    }

    /// Writes a sysctl of this namespace.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value = value.to_string();
        self.in_ns(move || Ok(std::fs::write(&path, value)?))
    }

    fn enter(name: &str) -> Result<()> {
        let f = File::open(format!("/run/netns/{name}"))
            .with_context(|| format!("open netns {name}"))?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&f),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .with_context(|| format!("enter netns {name}"))?;
        Ok(())
    }

    /// Runs `f` on a thread that has entered this namespace and waits for it.
    pub fn in_ns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.spawn(f)?
            .join()
            .map_err(|_| anyhow!("thread in netns {} panicked", self.name))?
    }

    /// Starts `f` on a thread inside this namespace (for servers).
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<JoinHandle<Result<T>>> {
        let name = self.name.clone();
        Ok(std::thread::spawn(move || {
            Self::enter(&name)?;
            f()
        }))
    }

    /// Connects from this namespace to `addr` and exchanges a line; `Ok(false)` when the
    /// connection could not be made within `timeout` (dropped or refused).
    pub fn tcp_probe(&self, addr: &str, timeout: Duration) -> Result<bool> {
        let addr: SocketAddr = addr.parse().with_context(|| format!("address {addr}"))?;
        self.in_ns(move || {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
                return Ok(false);
            };
            s.set_read_timeout(Some(timeout))?;
            s.write_all(b"hello\n")?;
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            Ok(n > 0)
        })
    }

    /// A TCP server in this namespace on `addr` that answers every connection with one line
    /// and records the peer addresses.
    pub fn tcp_server(&self, addr: &str) -> Result<TcpServer> {
        let addr: SocketAddr = addr.parse().with_context(|| format!("address {addr}"))?;
        let name = self.name.clone();
        let listener = self.in_ns(move || {
            TcpListener::bind(addr).with_context(|| format!("bind {addr} in netns {name}"))
        })?;
        listener.set_nonblocking(true)?;
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peers.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        if let Ok(mut v) = p.lock() {
                            v.push(peer.ip().to_string());
                        }
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 64];
                        let _ = conn.read(&mut buf);
                        let _ = conn.write_all(b"ok\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(TcpServer {
            peers,
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes still inside keep nothing alive that matters: deleting the name unmounts it,
        // and the namespace goes away with its last process.
        let _ = run(
            Command::new(&self.ip).args(["netns", "del", &self.name]),
            TIMEOUT,
        );
    }
}

/// A running test server; stops on drop.
#[derive(Debug)]
pub struct TcpServer {
    peers: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// The source addresses of the connections seen so far.
    pub fn peers(&self) -> Vec<String> {
        self.peers.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The three hosts. Fields drop (and delete their namespaces) in declaration order.
#[derive(Debug)]
pub struct Topology {
    /// The private host (a bot host in a private subnet).
    pub private: Netns,
    /// The NAT instance.
    pub nat: Netns,
    /// The "internet".
    pub outside: Netns,
}

impl Topology {
    /// Builds the topology with names derived from `tag` (short, unique per test).
    pub fn new(tag: &str) -> Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("cn{}-{}-{tag}", std::process::id(), n);
        let private = Netns::create(&format!("{base}-prv"))?;
        let nat = Netns::create(&format!("{base}-nat"))?;
        let outside = Netns::create(&format!("{base}-out"))?;
        nat.ip(&[
            "link",
            "add",
            "in0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            private.name(),
        ])?;
        nat.ip(&[
            "link",
            "add",
            NAT_EGRESS,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            outside.name(),
        ])?;
        for (ns, dev, addr) in [
            (&private, "eth0", "10.0.2.2/24"),
            (&nat, "in0", "10.0.2.1/24"),
            (&nat, NAT_EGRESS, "198.51.100.1/24"),
            (&outside, "eth0", "198.51.100.2/24"),
        ] {
            ns.ip(&["addr", "add", addr, "dev", dev])?;
            ns.ip(&["link", "set", dev, "up"])?;
        }
        outside.ip(&["addr", "add", "169.254.169.254/32", "dev", "lo"])?;
        private.ip(&["route", "add", "default", "via", NAT_INSIDE_ADDR])?;
        nat.ip(&["route", "add", "default", "via", OUTSIDE_ADDR])?;
        outside.ip(&["route", "add", PRIVATE_NET, "via", NAT_OUTSIDE_ADDR])?;
        let t = Self {
            private,
            nat,
            outside,
        };
        if t.nat.sysctl("net.ipv4.ip_forward")? != "0" {
            bail!("a fresh namespace should start with ip_forward 0");
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn documented_addresses_only() {
        for a in [super::PRIVATE_ADDR, super::NAT_INSIDE_ADDR] {
            assert!(a.starts_with("10.0.2."));
        }
        for a in [super::NAT_OUTSIDE_ADDR, super::OUTSIDE_ADDR] {
            assert!(a.starts_with("198.51.100."));
        }
    }
}
