//! The nf_tables expressions we emit, their netlink encoding and decoding.
//!
//! Each expression travels as `NFTA_LIST_ELEM { NFTA_EXPR_NAME "name", NFTA_EXPR_DATA { … } }`
//! inside `NFTA_RULE_EXPRESSIONS`. Attribute numbers come from `linux/netfilter/nf_tables.h`;
//! every number inside `NFTA_EXPR_DATA` is a big-endian u32 except `NFTA_EXTHDR_TYPE` (u8).
//! Registers use the 128-bit names (`NFT_REG_VERDICT` = 0, `NFT_REG_1` = 1), which the kernel
//! reports back unchanged.

use crate::netlink::{self, MsgBuilder};

/// `NFT_REG_VERDICT`.
pub const REG_VERDICT: u32 = 0;
/// `NFT_REG_1`.
pub const REG_1: u32 = 1;

/// `NFT_META_IIFNAME`.
pub const META_IIFNAME: u32 = 6;
/// `NFT_META_OIFNAME`.
pub const META_OIFNAME: u32 = 7;
/// `NFT_META_L4PROTO`.
pub const META_L4PROTO: u32 = 16;
/// `NFT_CT_STATE`.
pub const CT_STATE: u32 = 0;
/// `NFT_RT_TCPMSS` (what `nft` calls `rt mtu`).
pub const RT_TCPMSS: u32 = 3;
/// `NFT_PAYLOAD_NETWORK_HEADER`.
pub const BASE_NETWORK: u32 = 1;
/// `NFT_PAYLOAD_TRANSPORT_HEADER`.
pub const BASE_TRANSPORT: u32 = 2;
/// `NFT_BYTEORDER_HTON`.
pub const BYTEORDER_HTON: u32 = 1;
/// `NFT_EXTHDR_OP_TCPOPT`.
pub const EXTHDR_OP_TCPOPT: u32 = 1;
/// TCP option kind of the maximum segment size.
pub const TCPOPT_MAXSEG: u8 = 2;
/// `NF_NAT_RANGE_PROTO_RANDOM_FULLY`: masquerade with fully random source ports.
pub const NAT_RANDOM_FULLY: u32 = 0x10;

/// Connection-tracking state bits as `ct state` sees them (`NF_CT_STATE_*_BIT`).
pub mod ct_state {
    /// invalid.
    pub const INVALID: u32 = 1;
    /// established.
    pub const ESTABLISHED: u32 = 2;
    /// related.
    pub const RELATED: u32 = 4;
    /// new.
    pub const NEW: u32 = 8;
}

/// `NF_DROP`.
pub const VERDICT_DROP: i32 = 0;
/// `NF_ACCEPT`.
pub const VERDICT_ACCEPT: i32 = 1;

/// A comparison operator (`enum nft_cmp_ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Neq,
}

impl CmpOp {
    fn number(self) -> u32 {
        match self {
            Self::Eq => 0,
            Self::Neq => 1,
        }
    }
}

/// One nf_tables expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `meta load KEY => reg DREG`.
    Meta {
        /// `NFT_META_*`.
        key: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `cmp OP reg SREG DATA`.
    Cmp {
        /// Source register.
        sreg: u32,
        /// Operator.
        op: CmpOp,
        /// The bytes compared with.
        data: Vec<u8>,
    },
    /// `payload load LENb @ BASE + OFFSET => reg DREG`.
    Payload {
        /// Destination register.
        dreg: u32,
        /// `NFT_PAYLOAD_*_HEADER`.
        base: u32,
        /// Byte offset in that header.
        offset: u32,
        /// Bytes to load.
        len: u32,
    },
    /// `bitwise reg DREG = (reg SREG & MASK) ^ XOR`.
    Bitwise {
        /// Source register.
        sreg: u32,
        /// Destination register.
        dreg: u32,
        /// Bytes.
        len: u32,
        /// AND mask.
        mask: Vec<u8>,
        /// XOR value.
        xor: Vec<u8>,
    },
    /// `ct load KEY => reg DREG`.
    Ct {
        /// `NFT_CT_*`.
        key: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `immediate reg 0 VERDICT`: accept (1) or drop (0).
    Verdict(i32),
    /// `masq` with `NF_NAT_RANGE_*` flags.
    Masq {
        /// Flags (0 or [`NAT_RANDOM_FULLY`]).
        flags: u32,
    },
    /// `rt load KEY => reg DREG`.
    Rt {
        /// `NFT_RT_*`.
        key: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `byteorder reg DREG = OP(reg SREG, SIZE, LEN)`.
    Byteorder {
        /// Source register.
        sreg: u32,
        /// Destination register.
        dreg: u32,
        /// `NFT_BYTEORDER_NTOH` (0) or `HTON` (1).
        op: u32,
        /// Bytes.
        len: u32,
        /// Element size (2, 4 or 8).
        size: u32,
    },
    /// `exthdr write tcpopt reg SREG => LENb @ KIND + OFFSET`.
    TcpOptWrite {
        /// Source register.
        sreg: u32,
        /// TCP option kind.
        kind: u8,
        /// Offset inside the option.
        offset: u32,
        /// Bytes written.
        len: u32,
    },
    /// `flow add @NAME` (kernel expression `flow_offload`): hands the packet's connection to the
    /// flowtable `NAME` of the same table, so later packets of it skip the forward path. The
    /// kernel only offloads confirmed TCP/UDP connections without helpers; it is not a verdict.
    FlowOffload {
        /// The flowtable's name (`NFTA_FLOW_TABLE_NAME`).
        flowtable: String,
    },
    /// `counter`: counts the packets and bytes that reach it. Created at zero; the values the
    /// kernel reports back are not part of the model (read them with [`counter_values`]), so a
    /// rule with a counter still compares equal to its intended form.
    Counter,
    /// An expression read from the kernel that this module does not model (its name and a
    /// short reason). Never emitted; it makes comparisons with an intended ruleset fail.
    Unknown(String),
}

mod a {
    pub const LIST_ELEM: u16 = 1;
    pub const EXPR_NAME: u16 = 1;
    pub const EXPR_DATA: u16 = 2;
    pub const DATA_VALUE: u16 = 1;
    pub const DATA_VERDICT: u16 = 2;
    pub const VERDICT_CODE: u16 = 1;
}

fn data_value(b: &mut MsgBuilder, ty: u16, bytes: &[u8]) {
    b.nest_begin(ty);
    b.attr(a::DATA_VALUE, bytes);
    b.nest_end();
}

impl Expr {
    /// The kernel's name of the expression type.
    pub fn name(&self) -> &str {
        match self {
            Self::Meta { .. } => "meta",
            Self::Cmp { .. } => "cmp",
            Self::Payload { .. } => "payload",
            Self::Bitwise { .. } => "bitwise",
            Self::Ct { .. } => "ct",
            Self::Verdict(_) => "immediate",
            Self::Masq { .. } => "masq",
            Self::Rt { .. } => "rt",
            Self::Byteorder { .. } => "byteorder",
            Self::TcpOptWrite { .. } => "exthdr",
            Self::Counter => "counter",
            Self::FlowOffload { .. } => "flow_offload",
            Self::Unknown(n) => n,
        }
    }

    /// Appends this expression as one `NFTA_LIST_ELEM`.
    pub fn encode(&self, b: &mut MsgBuilder) {
        b.nest_begin(a::LIST_ELEM);
        b.attr_str(a::EXPR_NAME, self.name());
        b.nest_begin(a::EXPR_DATA);
        match self {
            Self::Meta { key, dreg } => {
                b.attr_be32(1, *dreg); // NFTA_META_DREG
                b.attr_be32(2, *key); // NFTA_META_KEY
            }
            Self::Cmp { sreg, op, data } => {
                b.attr_be32(1, *sreg); // NFTA_CMP_SREG
                b.attr_be32(2, op.number()); // NFTA_CMP_OP
                data_value(b, 3, data); // NFTA_CMP_DATA
            }
            Self::Payload {
                dreg,
                base,
                offset,
                len,
            } => {
                b.attr_be32(1, *dreg); // NFTA_PAYLOAD_DREG
                b.attr_be32(2, *base); // NFTA_PAYLOAD_BASE
                b.attr_be32(3, *offset); // NFTA_PAYLOAD_OFFSET
                b.attr_be32(4, *len); // NFTA_PAYLOAD_LEN
            }
            Self::Bitwise {
                sreg,
                dreg,
                len,
                mask,
                xor,
            } => {
                b.attr_be32(1, *sreg); // NFTA_BITWISE_SREG
                b.attr_be32(2, *dreg); // NFTA_BITWISE_DREG
                b.attr_be32(3, *len); // NFTA_BITWISE_LEN
                data_value(b, 4, mask); // NFTA_BITWISE_MASK
                data_value(b, 5, xor); // NFTA_BITWISE_XOR
            }
            Self::Ct { key, dreg } => {
                b.attr_be32(1, *dreg); // NFTA_CT_DREG
                b.attr_be32(2, *key); // NFTA_CT_KEY
            }
            Self::Verdict(code) => {
                b.attr_be32(1, REG_VERDICT); // NFTA_IMMEDIATE_DREG
                b.nest_begin(2); // NFTA_IMMEDIATE_DATA
                b.nest_begin(a::DATA_VERDICT);
                b.attr_be32(a::VERDICT_CODE, *code as u32);
                b.nest_end();
                b.nest_end();
            }
            Self::Masq { flags } => {
                if *flags != 0 {
                    b.attr_be32(1, *flags); // NFTA_MASQ_FLAGS
                }
            }
            Self::Rt { key, dreg } => {
                b.attr_be32(1, *dreg); // NFTA_RT_DREG
                b.attr_be32(2, *key); // NFTA_RT_KEY
            }
            Self::Byteorder {
                sreg,
                dreg,
                op,
                len,
                size,
            } => {
                b.attr_be32(1, *sreg); // NFTA_BYTEORDER_SREG
                b.attr_be32(2, *dreg); // NFTA_BYTEORDER_DREG
                b.attr_be32(3, *op); // NFTA_BYTEORDER_OP
                b.attr_be32(4, *len); // NFTA_BYTEORDER_LEN
                b.attr_be32(5, *size); // NFTA_BYTEORDER_SIZE
            }
            Self::TcpOptWrite {
                sreg,
                kind,
                offset,
                len,
            } => {
                b.attr(2, &[*kind]); // NFTA_EXTHDR_TYPE (u8)
                b.attr_be32(3, *offset); // NFTA_EXTHDR_OFFSET
                b.attr_be32(4, *len); // NFTA_EXTHDR_LEN
                b.attr_be32(6, EXTHDR_OP_TCPOPT); // NFTA_EXTHDR_OP
                b.attr_be32(7, *sreg); // NFTA_EXTHDR_SREG
            }
            Self::FlowOffload { flowtable } => {
                b.attr_str(1, flowtable); // NFTA_FLOW_TABLE_NAME
            }
            Self::Counter | Self::Unknown(_) => {}
        }
        b.nest_end();
        b.nest_end();
    }
}

/// `(packets, bytes)` of every `counter` in the payload of `NFTA_RULE_EXPRESSIONS`, in order.
pub fn counter_values(data: &[u8]) -> Vec<(u64, u64)> {
    let be64 = |p: &[u8]| p.try_into().ok().map(u64::from_be_bytes);
    netlink::attrs(data)
        .filter(|(t, _)| *t == a::LIST_ELEM)
        .filter(|(_, e)| {
            netlink::attr(e, a::EXPR_NAME)
                .and_then(netlink::string)
                .as_deref()
                == Some("counter")
        })
        .map(|(_, e)| {
            let d = netlink::attr(e, a::EXPR_DATA).unwrap_or(&[]);
            (
                netlink::attr(d, 2).and_then(be64).unwrap_or(0), // NFTA_COUNTER_PACKETS
                netlink::attr(d, 1).and_then(be64).unwrap_or(0), // NFTA_COUNTER_BYTES
            )
        })
        .collect()
}

/// Decodes the payload of `NFTA_RULE_EXPRESSIONS`.
pub fn decode_list(data: &[u8]) -> Vec<Expr> {
    netlink::attrs(data)
        .filter(|(t, _)| *t == a::LIST_ELEM)
        .map(|(_, elem)| decode_one(elem))
        .collect()
}

fn decode_one(elem: &[u8]) -> Expr {
    let name = netlink::attr(elem, a::EXPR_NAME)
        .and_then(netlink::string)
        .unwrap_or_default();
    let d = netlink::attr(elem, a::EXPR_DATA).unwrap_or(&[]);
    decode_data(&name, d).unwrap_or(Expr::Unknown(name))
}

fn u(d: &[u8], ty: u16) -> Option<u32> {
    netlink::attr(d, ty).and_then(netlink::be32)
}

fn value(d: &[u8], ty: u16) -> Option<Vec<u8>> {
    netlink::attr(d, ty)
        .and_then(|n| netlink::attr(n, a::DATA_VALUE))
        .map(<[u8]>::to_vec)
}

fn decode_data(name: &str, d: &[u8]) -> Option<Expr> {
    Some(match name {
        "meta" => {
            if netlink::attr(d, 3).is_some() {
                return None; // a meta *set*
            }
            Expr::Meta {
                dreg: u(d, 1)?,
                key: u(d, 2)?,
            }
        }
        "cmp" => {
            let op = match u(d, 2)? {
                0 => CmpOp::Eq,
                1 => CmpOp::Neq,
                _ => return None,
            };
            Expr::Cmp {
                sreg: u(d, 1)?,
                op,
                data: value(d, 3)?,
            }
        }
        "payload" => {
            if netlink::attr(d, 5).is_some() {
                return None; // a payload write
            }
            Expr::Payload {
                dreg: u(d, 1)?,
                base: u(d, 2)?,
                offset: u(d, 3)?,
                len: u(d, 4)?,
            }
        }
        "bitwise" => {
            if u(d, 6).unwrap_or(0) != 0 {
                return None; // a shift, not a mask-and-xor
            }
            Expr::Bitwise {
                sreg: u(d, 1)?,
                dreg: u(d, 2)?,
                len: u(d, 3)?,
                mask: value(d, 4)?,
                xor: value(d, 5)?,
            }
        }
        "ct" => {
            if netlink::attr(d, 3).is_some() || netlink::attr(d, 4).is_some() {
                return None; // direction-specific or a ct set
            }
            Expr::Ct {
                dreg: u(d, 1)?,
                key: u(d, 2)?,
            }
        }
        "immediate" => {
            if u(d, 1)? != REG_VERDICT {
                return None;
            }
            let data = netlink::attr(d, 2)?;
            let verdict = netlink::attr(data, a::DATA_VERDICT)?;
            if netlink::attr(verdict, 2).is_some() {
                return None; // jump/goto a chain
            }
            Expr::Verdict(netlink::attr(verdict, a::VERDICT_CODE).and_then(netlink::be32)? as i32)
        }
        "masq" => {
            if netlink::attr(d, 2).is_some() || netlink::attr(d, 3).is_some() {
                return None; // port range registers
            }
            Expr::Masq {
                flags: u(d, 1).unwrap_or(0),
            }
        }
        "counter" => Expr::Counter,
        "flow_offload" => Expr::FlowOffload {
            flowtable: netlink::attr(d, 1).and_then(netlink::string)?,
        },
        "rt" => Expr::Rt {
            dreg: u(d, 1)?,
            key: u(d, 2)?,
        },
        "byteorder" => Expr::Byteorder {
            sreg: u(d, 1)?,
            dreg: u(d, 2)?,
            op: u(d, 3)?,
            len: u(d, 4)?,
            size: u(d, 5)?,
        },
        "exthdr" => {
            if u(d, 6)? != EXTHDR_OP_TCPOPT || u(d, 5).unwrap_or(0) != 0 {
                return None;
            }
            Expr::TcpOptWrite {
                sreg: u(d, 7)?,
                kind: *netlink::attr(d, 2)?.first()?,
                offset: u(d, 3)?,
                len: u(d, 4)?,
            }
        }
        _ => return None,
    })
}

/// `meta load oifname => reg 1; cmp eq reg 1 "NAME"` (the name NUL-padded to IFNAMSIZ, 16 bytes,
/// as `nft` encodes `oifname "NAME"`).
pub fn match_ifname(key: u32, name: &str) -> Vec<Expr> {
    let mut data = name.as_bytes().to_vec();
    data.resize(16, 0);
    vec![
        Expr::Meta { key, dreg: REG_1 },
        Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Eq,
            data,
        },
    ]
}

/// `ip saddr|daddr ADDR/PREFIX`: payload load 4 bytes at network offset 12 (saddr) or 16
/// (daddr), masked unless the prefix is /32, compared with the network address.
pub fn match_ipv4_prefix(offset: u32, addr: [u8; 4], prefix: u8) -> Vec<Expr> {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    let net = (u32::from_be_bytes(addr) & mask).to_be_bytes();
    let mut v = vec![Expr::Payload {
        dreg: REG_1,
        base: BASE_NETWORK,
        offset,
        len: 4,
    }];
    if prefix < 32 {
        v.push(Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            len: 4,
            mask: mask.to_be_bytes().to_vec(),
            xor: vec![0; 4],
        });
    }
    v.push(Expr::Cmp {
        sreg: REG_1,
        op: CmpOp::Eq,
        data: net.to_vec(),
    });
    v
}

/// `meta l4proto tcp`.
pub fn match_l4proto_tcp() -> Vec<Expr> {
    vec![
        Expr::Meta {
            key: META_L4PROTO,
            dreg: REG_1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Eq,
            data: vec![6],
        },
    ]
}

/// `tcp dport PORT` (with its `meta l4proto tcp` dependency).
pub fn match_tcp_dport(port: u16) -> Vec<Expr> {
    let mut v = match_l4proto_tcp();
    v.push(Expr::Payload {
        dreg: REG_1,
        base: BASE_TRANSPORT,
        offset: 2,
        len: 2,
    });
    v.push(Expr::Cmp {
        sreg: REG_1,
        op: CmpOp::Eq,
        data: port.to_be_bytes().to_vec(),
    });
    v
}

/// `ct state BITS` (any of the bits): ct load state, mask, compare with zero for "not equal".
/// The state is a host-order u32 in the register.
pub fn match_ct_state(bits: u32) -> Vec<Expr> {
    vec![
        Expr::Ct {
            key: CT_STATE,
            dreg: REG_1,
        },
        Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            len: 4,
            mask: bits.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        },
        Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Neq,
            data: vec![0; 4],
        },
    ]
}

/// `tcp flags syn tcp option maxseg size set rt mtu`: clamp the MSS of SYN and SYN/ACK segments
/// to what the route's MTU allows (the kernel only ever lowers it).
pub fn clamp_mss_to_route() -> Vec<Expr> {
    let mut v = match_l4proto_tcp();
    v.extend([
        Expr::Payload {
            dreg: REG_1,
            base: BASE_TRANSPORT,
            offset: 13,
            len: 1,
        },
        Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            len: 1,
            mask: vec![0x02],
            xor: vec![0],
        },
        Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Neq,
            data: vec![0],
        },
        Expr::Rt {
            key: RT_TCPMSS,
            dreg: REG_1,
        },
        Expr::Byteorder {
            sreg: REG_1,
            dreg: REG_1,
            op: BYTEORDER_HTON,
            len: 2,
            size: 2,
        },
        Expr::TcpOptWrite {
            sreg: REG_1,
            kind: TCPOPT_MAXSEG,
            offset: 2,
            len: 2,
        },
    ]);
    v
}

/// `NFT_META_NFPROTO` (the family of a packet in an `inet` table).
pub const META_NFPROTO: u32 = 15;
/// `NFT_CT_STATUS`.
pub const CT_STATUS: u32 = 2;
/// `IPS_DST_NAT`: the connection's destination was rewritten (DNAT).
pub const CT_STATUS_DNAT: u32 = 0x20;
/// `NFPROTO_IPV4`.
pub const NFPROTO_IPV4: u8 = 2;
/// `NFPROTO_IPV6`.
pub const NFPROTO_IPV6: u8 = 10;

/// `meta nfproto ipv4|ipv6` (what `nft` adds before an `ip`/`ip6` match in an `inet` table).
pub fn match_nfproto(proto: u8) -> Vec<Expr> {
    vec![
        Expr::Meta {
            key: META_NFPROTO,
            dreg: REG_1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Eq,
            data: vec![proto],
        },
    ]
}

/// `iifname != "NAME"`.
pub fn match_ifname_not(key: u32, name: &str) -> Vec<Expr> {
    let mut v = match_ifname(key, name);
    if let Some(Expr::Cmp { op, .. }) = v.last_mut() {
        *op = CmpOp::Neq;
    }
    v
}

/// A network-header address match of any length: `ip saddr 127.0.0.0/8` (offset 12, 4 bytes)
/// or `ip6 saddr ::1` (offset 8, 16 bytes), masked unless the prefix covers every bit.
pub fn match_addr_prefix(offset: u32, addr: &[u8], prefix: u32) -> Vec<Expr> {
    let len = addr.len() as u32;
    let bits = len * 8;
    let prefix = prefix.min(bits);
    let mask: Vec<u8> = (0..len)
        .map(|i| {
            let start = i * 8;
            if prefix >= start + 8 {
                0xff
            } else if prefix <= start {
                0
            } else {
                0xffu8 << (8 - (prefix - start))
            }
        })
        .collect();
    let net: Vec<u8> = addr.iter().zip(&mask).map(|(a, m)| a & m).collect();
    let mut v = vec![Expr::Payload {
        dreg: REG_1,
        base: BASE_NETWORK,
        offset,
        len,
    }];
    if prefix < bits {
        v.push(Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            len,
            mask,
            xor: vec![0; len as usize],
        });
    }
    v.push(Expr::Cmp {
        sreg: REG_1,
        op: CmpOp::Eq,
        data: net,
    });
    v
}

/// `meta l4proto PROTO`.
pub fn match_l4proto(proto: u8) -> Vec<Expr> {
    vec![
        Expr::Meta {
            key: META_L4PROTO,
            dreg: REG_1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Eq,
            data: vec![proto],
        },
    ]
}

/// One byte of a header equals `value` (e.g. `icmpv6 type 135`: transport offset 0;
/// `ip6 hoplimit 255`: network offset 7).
pub fn match_byte(base: u32, offset: u32, value: u8) -> Vec<Expr> {
    vec![
        Expr::Payload {
            dreg: REG_1,
            base,
            offset,
            len: 1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Eq,
            data: vec![value],
        },
    ]
}

/// `udp sport S udp dport D` (with its `meta l4proto udp` dependency).
pub fn match_udp_ports(sport: u16, dport: u16) -> Vec<Expr> {
    let mut v = match_l4proto(17);
    for (off, port) in [(0, sport), (2, dport)] {
        v.push(Expr::Payload {
            dreg: REG_1,
            base: BASE_TRANSPORT,
            offset: off,
            len: 2,
        });
        v.push(Expr::Cmp {
            sreg: REG_1,
            op: CmpOp::Eq,
            data: port.to_be_bytes().to_vec(),
        });
    }
    v
}

/// `ct status BITS` (any of the bits).
pub fn match_ct_status(bits: u32) -> Vec<Expr> {
    let mut v = match_ct_state(bits);
    if let Some(Expr::Ct { key, .. }) = v.first_mut() {
        *key = CT_STATUS;
    }
    v
}
