//! The egress interface from the kernel's routing table, over rtnetlink.
//!
//! `RTM_GETROUTE` and `RTM_GETLINK` dumps (layouts in `linux/rtnetlink.h` and `linux/if_link.h`);
//! all numbers are host byte order. No `ip` binary, no parsing of command output.

use std::time::Duration;

use clawster_core::netlink::{self, MsgBuilder, NetlinkError, Socket, NLM_F_DUMP, NLM_F_REQUEST};

const RTM_GETLINK: u16 = 18;
const RTM_GETROUTE: u16 = 26;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
/// `RTM_F_FIB_MATCH`: answer with the matching FIB entry, not the resolved route (for a local
/// address that is the entry's device, not `lo`).
const RTM_F_FIB_MATCH: u32 = 0x2000;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFF_UP: u32 = 1;

/// Multicast groups for link, IPv4 address and IPv4 route changes.
pub const EVENT_GROUPS: u32 = 0x1 | 0x10 | 0x40;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// MAC address, lower-case `aa:bb:…` (empty when it has none).
    pub mac: String,
    /// Administratively up.
    pub up: bool,
}

/// Opens an rtnetlink socket (subscribed to `groups`, 0 for none).
pub fn open(groups: u32) -> Result<Socket, NetlinkError> {
    // NETLINK_ROUTE is protocol 0.
    Socket::open(None, groups)
}

/// Every interface.
pub fn links(sock: &mut Socket) -> Result<Vec<Link>, NetlinkError> {
    let seq = sock.next_seq();
    let mut b = MsgBuilder::new();
    b.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, &[0u8; 16]);
    b.end();
    let mut out = Vec::new();
    sock.dump(b.bytes(), seq, "list interfaces", TIMEOUT, |m| {
        let p = m.payload;
        if p.len() < 16 {
            return Ok(());
        }
        let index = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]);
        let flags = u32::from_ne_bytes([p[8], p[9], p[10], p[11]]);
        let a = &p[16..];
        let name = netlink::attr(a, IFLA_IFNAME)
            .and_then(netlink::string)
            .unwrap_or_default();
        let mac = netlink::attr(a, IFLA_ADDRESS)
            .map(|m| {
                m.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        out.push(Link {
            index,
            name,
            mac,
            up: flags & IFF_UP != 0,
        });
        Ok(())
    })?;
    Ok(out)
}

/// The interface index of the IPv4 default route of the main table with the lowest metric
/// (the first hop of a multipath route).
pub fn default_route_oif(sock: &mut Socket) -> Result<Option<u32>, NetlinkError> {
    let seq = sock.next_seq();
    let mut b = MsgBuilder::new();
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32)
    b.begin(
        RTM_GETROUTE,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        &[AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    b.end();
    let mut best: Option<(u32, u32)> = None; // (metric, oif)
    sock.dump(b.bytes(), seq, "list routes", TIMEOUT, |m| {
        let p = m.payload;
        if p.len() < 12 || p[0] != AF_INET || p[1] != 0 || p[7] != RTN_UNICAST {
            return Ok(());
        }
        let a = &p[12..];
        let table = netlink::attr(a, RTA_TABLE)
            .and_then(netlink::ne32)
            .unwrap_or(u32::from(p[4]));
        if table != RT_TABLE_MAIN {
            return Ok(());
        }
        let metric = netlink::attr(a, RTA_PRIORITY)
            .and_then(netlink::ne32)
            .unwrap_or(0);
        let oif = netlink::attr(a, RTA_OIF)
            .and_then(netlink::ne32)
            .or_else(|| {
                // struct rtnexthop: len u16, flags u8, hops u8, ifindex i32
                netlink::attr(a, RTA_MULTIPATH)
                    .and_then(|mp| mp.get(4..8))
                    .and_then(netlink::ne32)
            });
        if let Some(oif) = oif {
            if best.is_none_or(|(m, _)| metric < m) {
                best = Some((metric, oif));
            }
        }
        Ok(())
    })?;
    Ok(best.map(|(_, oif)| oif))
}

/// The interface index the main routing decision sends `addr` out of (`ip route get fibmatch
/// ADDR`): `None` when there is no route (ENETUNREACH and the like) or no single device.
pub fn route_oif(sock: &mut Socket, addr: std::net::Ipv4Addr) -> Result<Option<u32>, NetlinkError> {
    let seq = sock.next_seq();
    let mut b = MsgBuilder::new();
    // struct rtmsg with dst_len 32 and rtm_flags RTM_F_FIB_MATCH (host order u32 at offset 8).
    let f = RTM_F_FIB_MATCH.to_ne_bytes();
    b.begin(
        RTM_GETROUTE,
        NLM_F_REQUEST,
        seq,
        &[AF_INET, 32, 0, 0, 0, 0, 0, 0, f[0], f[1], f[2], f[3]],
    );
    b.attr(RTA_DST, &addr.octets());
    b.end();
    let mut oif = None;
    match sock.dump(b.bytes(), seq, "look up a route", TIMEOUT, |m| {
        let a = m.payload.get(12..).unwrap_or(&[]);
        oif = netlink::attr(a, RTA_OIF).and_then(netlink::ne32);
        Ok(())
    }) {
        Ok(()) => Ok(oif),
        Err(NetlinkError::Kernel { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
