//! Netlink sockets and message framing, just enough for nf_tables and rtnetlink.
//!
//! The kernel documents the wire format in `include/uapi/linux/netlink.h`: every message starts
//! with a 16-byte `nlmsghdr` (length, type, flags, sequence, port id; host byte order), followed by
//! a family-specific fixed header and then attributes (`nlattr`: 16-bit length including its own
//! 4-byte header, 16-bit type, payload padded to 4 bytes). Nested attributes carry
//! [`NLA_F_NESTED`] in their type.
//!
//! Sockets are opened with `rustix` (pure Rust, no `unsafe` here). [`MsgBuilder`] writes one or
//! more messages into one buffer, so an nf_tables batch goes to the kernel in a single `sendto`;
//! [`messages`] and [`attrs`] parse what comes back. The parsers never panic on malformed input:
//! a truncated message or attribute ends the iteration with an error or stops it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`: an error or (error 0) an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: end of a multipart dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_EXCL` (for NEW requests).
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE` (for NEW requests).
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND` (for NEW requests).
pub const NLM_F_APPEND: u16 = 0x800;

/// Flag bit of a nested attribute's type.
pub const NLA_F_NESTED: u16 = 0x8000;
/// Flag bit of an attribute in network byte order.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;

/// How big a receive buffer must be for one netlink datagram of a dump (the kernel sizes dump
/// messages to at most 32 KiB; 64 KiB leaves room).
pub const RECV_BUFFER: usize = 64 * 1024;

/// An error talking netlink.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// A socket call failed.
    #[error("netlink {op}")]
    Io {
        /// The operation (e.g. "open NETLINK_NETFILTER socket").
        op: &'static str,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a request.
    #[error("{what}: kernel said {}", errno_text(*.errno))]
    Kernel {
        /// Which request (e.g. "NEWRULE forward #2").
        what: String,
        /// The positive errno value.
        errno: i32,
    },
    /// The kernel did not answer within the deadline.
    #[error("no answer from the kernel to {what} within {timeout:?}")]
    Timeout {
        /// Which request.
        what: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// A message or attribute did not parse.
    #[error("malformed netlink message: {0}")]
    Malformed(String),
}

fn errno_text(errno: i32) -> String {
    // "Operation not permitted (os error 1)"
    std::io::Error::from_raw_os_error(errno).to_string()
}

fn io(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> NetlinkError {
    move |e| NetlinkError::Io {
        op,
        source: e.into(),
    }
}

/// A netlink socket bound to the kernel (port id chosen by the kernel).
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Socket {
    /// Opens a socket of `protocol` (e.g. `Some(rustix::net::netlink::NETFILTER)`; `None` is
    /// protocol 0, `NETLINK_ROUTE`), subscribed to the multicast `groups` bit mask (0 for none).
    /// The socket is close-on-exec.
    pub fn open(
        protocol: Option<rustix::net::Protocol>,
        groups: u32,
    ) -> Result<Self, NetlinkError> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            protocol,
        )
        .map_err(io("open socket"))?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, groups)).map_err(io("bind socket"))?;
        // Event sockets can see bursts (a whole ruleset flushed); a bigger buffer avoids ENOBUFS,
        // and ENOBUFS is handled by callers anyway (it only means "re-read everything").
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 256 * 1024);
        // Start sequence numbers from the clock so replies to an earlier process can't match.
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(Self {
            fd,
            seq,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// The next sequence number for a request.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one buffer (one or more messages) to the kernel.
    pub fn send(&self, buf: &[u8]) -> Result<(), NetlinkError> {
        let n = rustix::net::sendto(
            &self.fd,
            buf,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .map_err(io("send"))?;
        if n != buf.len() {
            return Err(NetlinkError::Malformed(format!(
                "sent {n} of {} bytes",
                buf.len()
            )));
        }
        Ok(())
    }

    /// Receives one datagram, waiting at most `timeout` (`None`: wait forever). Returns `None`
    /// on timeout. `ENOBUFS` (the kernel dropped multicast messages) is returned as an error.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Option<&[u8]>, NetlinkError> {
        if let Some(t) = timeout {
            let ts = rustix::event::Timespec {
                tv_sec: t.as_secs() as i64,
                tv_nsec: i64::from(t.subsec_nanos()),
            };
            let mut fds = [rustix::event::PollFd::new(
                &self.fd,
                rustix::event::PollFlags::IN,
            )];
            let ready = loop {
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Err(rustix::io::Errno::INTR) => continue,
                    other => break other.map_err(io("poll"))?,
                }
            };
            if ready == 0 {
                return Ok(None);
            }
        }
        let (n, full) = loop {
            match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other.map_err(io("receive"))?,
            }
        };
        if full > n {
            return Err(NetlinkError::Malformed(format!(
                "datagram of {full} bytes truncated to {n}"
            )));
        }
        Ok(Some(&self.buf[..n]))
    }

    /// Receives one datagram if one is waiting, without blocking.
    pub fn try_recv(&mut self) -> Result<Option<&[u8]>, NetlinkError> {
        self.recv(Some(Duration::ZERO))
    }

    /// Sends `buf` and waits for an acknowledgement of every sequence number in `acks`
    /// (messages sent with [`NLM_F_ACK`]). `names` describes each sequence number for errors.
    ///
    /// All answers are collected before returning, so the first kernel error reported is the
    /// first failing request, not a follow-up.
    pub fn transact(
        &mut self,
        buf: &[u8],
        acks: &[(u32, String)],
        timeout: Duration,
    ) -> Result<(), NetlinkError> {
        self.send(buf)?;
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<u32> = acks.iter().map(|(s, _)| *s).collect();
        let mut first_error: Option<(u32, i32)> = None;
        while !pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            // After an error the kernel aborts the batch; give the remaining answers a moment.
            let wait = if first_error.is_some() {
                left.min(Duration::from_millis(200))
            } else {
                left
            };
            let Some(data) = self.recv(Some(wait))? else {
                if first_error.is_some() {
                    break;
                }
                let what = acks
                    .iter()
                    .find(|(s, _)| pending.contains(s))
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default();
                return Err(NetlinkError::Timeout { what, timeout });
            };
            for msg in messages(data) {
                let msg = msg?;
                if msg.ty != NLMSG_ERROR {
                    continue;
                }
                let errno = msg.error_code()?;
                let Some(i) = pending.iter().position(|s| *s == msg.seq) else {
                    // The batch begin/end messages (one before and after the acknowledged
                    // requests) are not acknowledged, but the kernel reports their errors (e.g.
                    // EPERM without CAP_NET_ADMIN). Anything else is a stale answer.
                    let lo = acks.first().map(|(s, _)| s.wrapping_sub(1));
                    let hi = acks.last().map(|(s, _)| s.wrapping_add(1));
                    if errno != 0
                        && first_error.is_none()
                        && (Some(msg.seq) == lo || Some(msg.seq) == hi)
                    {
                        first_error = Some((msg.seq, -errno));
                    }
                    continue;
                };
                pending.swap_remove(i);
                if errno != 0 {
                    let earlier =
                        first_error.map(|(s, _)| seq_index(acks, msg.seq) < seq_index(acks, s));
                    if earlier.unwrap_or(true) {
                        first_error = Some((msg.seq, -errno));
                    }
                }
            }
        }
        if let Some((seq, errno)) = first_error {
            let what = acks.iter().find(|(s, _)| *s == seq).map(|(_, n)| n.clone());
            return Err(NetlinkError::Kernel {
                what: what.unwrap_or_else(|| "the nf_tables batch".to_string()),
                errno,
            });
        }
        Ok(())
    }

    /// Sends a dump request (one message, sequence `seq`) and calls `each` with every reply
    /// message until `NLMSG_DONE`.
    pub fn dump(
        &mut self,
        buf: &[u8],
        seq: u32,
        what: &str,
        timeout: Duration,
        mut each: impl FnMut(&Msg<'_>) -> Result<(), NetlinkError>,
    ) -> Result<(), NetlinkError> {
        self.send(buf)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(data) = self.recv(Some(left))? else {
                return Err(NetlinkError::Timeout {
                    what: what.to_string(),
                    timeout,
                });
            };
            // Copy out to release the borrow of our buffer before calling back.
            let data = data.to_vec();
            for msg in messages(&data) {
                let msg = msg?;
                if msg.seq != seq {
                    continue;
                }
                match msg.ty {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let errno = msg.error_code()?;
                        if errno != 0 {
                            return Err(NetlinkError::Kernel {
                                what: what.to_string(),
                                errno: -errno,
                            });
                        }
                        return Ok(());
                    }
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    _ => {
                        each(&msg)?;
                        if msg.flags & NLM_F_MULTI == 0 {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

fn seq_index(acks: &[(u32, String)], seq: u32) -> usize {
    acks.iter()
        .position(|(s, _)| *s == seq)
        .unwrap_or(usize::MAX)
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One parsed netlink message.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// Everything after the 16-byte header.
    pub payload: &'a [u8],
}

impl Msg<'_> {
    /// The (negative or zero) error of an `NLMSG_ERROR` message.
    pub fn error_code(&self) -> Result<i32, NetlinkError> {
        let b: [u8; 4] = self
            .payload
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| NetlinkError::Malformed("short NLMSG_ERROR".into()))?;
        Ok(i32::from_ne_bytes(b))
    }
}

/// Iterates over the messages in one datagram.
pub fn messages(mut data: &[u8]) -> impl Iterator<Item = Result<Msg<'_>, NetlinkError>> {
    std::iter::from_fn(move || {
        if data.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            data = &[];
            return Some(Err(NetlinkError::Malformed(format!(
                "message length {len} out of range"
            ))));
        }
        let msg = Msg {
            ty: u16::from_ne_bytes([data[4], data[5]]),
            flags: u16::from_ne_bytes([data[6], data[7]]),
            seq: u32::from_ne_bytes([data[8], data[9], data[10], data[11]]),
            payload: &data[NLMSG_HDRLEN..len],
        };
        data = data.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(msg))
    })
}

/// Iterates over the attributes in `data` as `(type without flag bits, payload)`. Stops at the
/// first truncated attribute.
pub fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            data = &[];
            return None;
        }
        let payload = &data[4..len];
        data = data.get(align4(len)..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

/// The payload of the first attribute of type `ty`.
pub fn attr(data: &[u8], ty: u16) -> Option<&[u8]> {
    attrs(data).find(|(t, _)| *t == ty).map(|(_, p)| p)
}

/// A big-endian u32 attribute payload.
pub fn be32(p: &[u8]) -> Option<u32> {
    p.try_into().ok().map(u32::from_be_bytes)
}

/// A native-endian u32 attribute payload.
pub fn ne32(p: &[u8]) -> Option<u32> {
    p.try_into().ok().map(u32::from_ne_bytes)
}

/// A NUL-terminated string attribute payload.
pub fn string(p: &[u8]) -> Option<String> {
    let end = p.iter().position(|b| *b == 0).unwrap_or(p.len());
    std::str::from_utf8(&p[..end]).ok().map(str::to_string)
}

/// Rounds up to the netlink alignment of 4 bytes.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Writes netlink messages into one buffer.
#[derive(Debug, Default)]
pub struct MsgBuilder {
    buf: Vec<u8>,
    msg_start: usize,
    nests: Vec<usize>,
}

impl MsgBuilder {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a message; `fixed` is the family header that follows `nlmsghdr`.
    pub fn begin(&mut self, ty: u16, flags: u16, seq: u32, fixed: &[u8]) {
        self.msg_start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(fixed);
        self.pad();
    }

    /// Finishes the current message (fills in its length).
    pub fn end(&mut self) {
        debug_assert!(self.nests.is_empty(), "unclosed nest");
        let len = (self.buf.len() - self.msg_start) as u32;
        self.buf[self.msg_start..self.msg_start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Adds an attribute with a raw payload.
    pub fn attr(&mut self, ty: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    /// Adds a big-endian u32 attribute (nf_tables numbers are big-endian).
    pub fn attr_be32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_be_bytes());
    }

    /// Adds a native-endian u32 attribute (rtnetlink numbers are host order).
    pub fn attr_ne32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }

    /// Adds a NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) {
        let mut p = Vec::with_capacity(s.len() + 1);
        p.extend_from_slice(s.as_bytes());
        p.push(0);
        self.attr(ty, &p);
    }

    /// Opens a nested attribute; close it with [`MsgBuilder::nest_end`].
    pub fn nest_begin(&mut self, ty: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }

    /// Closes the innermost nested attribute.
    pub fn nest_end(&mut self) {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_parser_round_trip() {
        let mut b = MsgBuilder::new();
        b.begin(0x0a00, NLM_F_REQUEST | NLM_F_ACK, 7, &[2, 0, 0, 10]);
        b.attr_str(1, "nat");
        b.nest_begin(4);
        b.attr_be32(1, 2);
        b.nest_end();
        b.end();
        let bytes = b.into_bytes();
        // header 16 + nfgenmsg 4 + "nat\0" attr 8 + nest (4 + 8) = 40
        assert_eq!(bytes.len(), 40);
        assert_eq!(&bytes[..4], &40u32.to_ne_bytes());
        let msgs: Vec<_> = messages(&bytes).collect::<Result<_, _>>().expect("parse");
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].ty, msgs[0].seq), (0x0a00, 7));
        let a: Vec<_> = attrs(&msgs[0].payload[4..]).collect();
        assert_eq!(a.len(), 2);
        assert_eq!(string(a[0].1).as_deref(), Some("nat"));
        assert_eq!(a[1].0, 4, "nested flag is masked off");
        assert_eq!(be32(attr(a[1].1, 1).expect("inner")), Some(2));
    }

    #[test]
    fn malformed_input_does_not_panic() {
        assert!(messages(&[0xff; 20]).next().expect("one").is_err());
        assert_eq!(attrs(&[9, 0, 1, 0]).count(), 0);
        assert_eq!(messages(&[1, 2, 3]).count(), 0);
    }
}
