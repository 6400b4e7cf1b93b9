//! A small nf_tables client over netlink: the ruleset model, its encoder, a decoder for reading
//! the kernel back, and the atomic batch.
//!
//! # Why our own encoder
//!
//! The NAT instance must not depend on the `nft` or `iptables` binaries (the minimal AL2023 AMI
//! has neither, and installing them at boot on a 512 MB instance is how NAT setups fail in the
//! field). The options we had: the `nftables` crate only drives the `nft` binary through JSON;
//! `rustables` speaks netlink in pure Rust but is GPL-3.0 and lacks the `rt` and TCP-option
//! expressions MSS clamping needs; `nftnl`/`mnl` bind the C libraries (a C dependency in a static
//! musl build, and still no `rt`/`exthdr`). What we need is small — one table, two base chains and
//! a dozen rules built from ten expression types — so this module writes those messages itself
//! from the kernel's UAPI headers (`linux/netfilter/nf_tables.h`, `nfnetlink.h`, `netfilter.h`).
//!
//! # Shape
//!
//! - [`Ruleset`]: one table with its chains and rules, built by the caller (the NAT agent).
//! - [`Ruleset::replace_batch`]: the messages that atomically replace exactly that table:
//!   `BATCH_BEGIN, NEWTABLE, DELTABLE, NEWTABLE, NEWCHAIN…, NEWRULE…, BATCH_END`. The kernel
//!   applies a batch all-or-nothing, and the first NEWTABLE makes the DELTABLE succeed when the
//!   table did not exist yet, so the batch works from any state and touches no other table.
//! - [`read_table`]: dumps a table's chains and rules back from the kernel into the same model,
//!   so a caller can compare what it meant with what the kernel holds ([`Ruleset`] is `Eq`).
//! - [`list_base_chains`]: every base chain of every table (to find foreign `policy drop` chains).
//!
//! Numbers in nf_tables attributes are big-endian; register contents (compare data, masks) are
//! raw bytes in the order the packet or the kernel stores them.

pub mod expr;

use std::time::Duration;

pub use expr::Expr;

use crate::netlink::{
    self, MsgBuilder, NetlinkError, Socket, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REQUEST,
};

/// `NFNL_SUBSYS_NFTABLES`.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN` (`NLMSG_MIN_TYPE`).
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
/// `NFNL_MSG_BATCH_END`.
pub const NFNL_MSG_BATCH_END: u16 = 0x11;
/// `NFNLGRP_NFTABLES`: the multicast group announcing every ruleset change.
pub const NFNLGRP_NFTABLES: u32 = 7;

/// nf_tables message types (`enum nf_tables_msg_types`).
#[allow(missing_docs)]
pub mod msg {
    pub const NEWTABLE: u16 = 0;
    pub const GETTABLE: u16 = 1;
    pub const DELTABLE: u16 = 2;
    pub const NEWCHAIN: u16 = 3;
    pub const GETCHAIN: u16 = 4;
    pub const DELCHAIN: u16 = 5;
    pub const NEWRULE: u16 = 6;
    pub const GETRULE: u16 = 7;
    pub const DELRULE: u16 = 8;
    pub const NEWFLOWTABLE: u16 = 22;
    pub const GETFLOWTABLE: u16 = 23;
    pub const DELFLOWTABLE: u16 = 24;
}

mod attr {
    pub const TABLE_NAME: u16 = 1;
    pub const CHAIN_TABLE: u16 = 1;
    pub const CHAIN_NAME: u16 = 3;
    pub const CHAIN_HOOK: u16 = 4;
    pub const CHAIN_POLICY: u16 = 5;
    pub const CHAIN_TYPE: u16 = 7;
    pub const HOOK_HOOKNUM: u16 = 1;
    pub const HOOK_PRIORITY: u16 = 2;
    pub const RULE_TABLE: u16 = 1;
    pub const RULE_CHAIN: u16 = 2;
    pub const RULE_EXPRESSIONS: u16 = 4;
    pub const FLOWTABLE_TABLE: u16 = 1;
    pub const FLOWTABLE_NAME: u16 = 2;
    pub const FLOWTABLE_HOOK: u16 = 3;
    pub const FLOWTABLE_FLAGS: u16 = 7;
    pub const FLOWTABLE_HOOK_NUM: u16 = 1;
    pub const FLOWTABLE_HOOK_PRIORITY: u16 = 2;
    pub const FLOWTABLE_HOOK_DEVS: u16 = 3;
    pub const DEVICE_NAME: u16 = 1;
}

/// `NF_NETDEV_INGRESS`: the only hook a flowtable attaches to.
pub const FLOWTABLE_HOOK_INGRESS: u32 = 0;

/// A flowtable: a fast path on the ingress hook of `devices` for connections a `flow add`
/// rule ([`Expr::FlowOffload`]) handed to it. Packets of an offloaded connection are forwarded
/// (with conntrack's NAT mangling) straight from ingress, skipping the forward and postrouting
/// chains, until the connection ends or times out of the table.
///
/// Devices are a set: the kernel keeps them in the order they were sent, and [`read_flowtables`]
/// returns them sorted, so send them sorted to compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flowtable {
    /// Its name (what `flow add @NAME` refers to).
    pub name: String,
    /// The hook number ([`FLOWTABLE_HOOK_INGRESS`]).
    pub hook: u32,
    /// The hook priority (`filter` = 0).
    pub priority: i32,
    /// Interface names whose ingress it hooks.
    pub devices: Vec<String>,
    /// `NFT_FLOWTABLE_*` flags (0: software fast path, no counters).
    pub flags: u32,
}

/// A protocol family of nf_tables (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `inet` (IPv4 and IPv6).
    Inet,
    /// `ip` (IPv4).
    Ip,
    /// `arp`.
    Arp,
    /// `netdev`.
    Netdev,
    /// `bridge`.
    Bridge,
    /// `ip6`.
    Ip6,
    /// Anything else, by number.
    Other(u8),
}

impl Family {
    /// The `NFPROTO_*` number.
    pub fn number(self) -> u8 {
        match self {
            Self::Inet => 1,
            Self::Ip => 2,
            Self::Arp => 3,
            Self::Netdev => 5,
            Self::Bridge => 7,
            Self::Ip6 => 10,
            Self::Other(n) => n,
        }
    }

    /// The family of a number.
    pub fn from_number(n: u8) -> Self {
        match n {
            1 => Self::Inet,
            2 => Self::Ip,
            3 => Self::Arp,
            5 => Self::Netdev,
            7 => Self::Bridge,
            10 => Self::Ip6,
            n => Self::Other(n),
        }
    }

    /// The name `nft` uses.
    pub fn name(self) -> String {
        match self {
            Self::Inet => "inet".into(),
            Self::Ip => "ip".into(),
            Self::Arp => "arp".into(),
            Self::Netdev => "netdev".into(),
            Self::Bridge => "bridge".into(),
            Self::Ip6 => "ip6".into(),
            Self::Other(n) => format!("family{n}"),
        }
    }
}

/// Netfilter hooks of the IP families (`enum nf_inet_hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// prerouting.
    Prerouting,
    /// input.
    Input,
    /// forward.
    Forward,
    /// output.
    Output,
    /// postrouting.
    Postrouting,
    /// Another hook number.
    Other(u32),
}

impl Hook {
    /// The hook number.
    pub fn number(self) -> u32 {
        match self {
            Self::Prerouting => 0,
            Self::Input => 1,
            Self::Forward => 2,
            Self::Output => 3,
            Self::Postrouting => 4,
            Self::Other(n) => n,
        }
    }

    /// The hook of a number.
    pub fn from_number(n: u32) -> Self {
        match n {
            0 => Self::Prerouting,
            1 => Self::Input,
            2 => Self::Forward,
            3 => Self::Output,
            4 => Self::Postrouting,
            n => Self::Other(n),
        }
    }
}

/// A chain verdict policy (`NF_DROP` = 0, `NF_ACCEPT` = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Drop what no rule accepted.
    Drop,
    /// Accept what no rule dropped.
    Accept,
}

impl Policy {
    fn number(self) -> u32 {
        match self {
            Self::Drop => 0,
            Self::Accept => 1,
        }
    }
}

/// What makes a chain a base chain: type, hook, priority, policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    /// `filter`, `nat` or `route`.
    pub kind: String,
    /// The hook it is attached to.
    pub hook: Hook,
    /// Its priority (filter = 0, srcnat = 100).
    pub priority: i32,
    /// Its policy.
    pub policy: Policy,
}

/// A chain and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The chain's name.
    pub name: String,
    /// Set for base chains.
    pub base: Option<BaseChain>,
    /// Its rules in order, each a list of expressions.
    pub rules: Vec<Vec<Expr>>,
}

/// One table with everything in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// The family.
    pub family: Family,
    /// The table's name.
    pub table: String,
    /// Its chains, in creation order.
    pub chains: Vec<Chain>,
}

/// An nf_tables operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// Netlink itself failed or the kernel refused.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// A name is too long or has a NUL byte.
    #[error("invalid nf_tables name {0:?}")]
    InvalidName(String),
}

/// How long we wait for the kernel to answer one request.
pub const KERNEL_TIMEOUT: Duration = Duration::from_secs(5);

fn nfgenmsg(family: u8) -> [u8; 4] {
    // family, version NFNETLINK_V0, res_id (big-endian, 0 for nf_tables requests)
    [family, 0, 0, 0]
}

fn nft_type(m: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | m
}

fn check_name(name: &str) -> Result<(), NftError> {
    // NFT_NAME_MAXLEN is 256 including the NUL.
    if name.is_empty() || name.len() > 255 || name.contains('\0') {
        return Err(NftError::InvalidName(name.into()));
    }
    Ok(())
}

fn check_device(name: &str) -> Result<(), NftError> {
    // IFNAMSIZ is 16 including the NUL.
    if name.is_empty() || name.len() > 15 || name.contains(['\0', '/']) {
        return Err(NftError::InvalidName(name.into()));
    }
    Ok(())
}

/// One encoded batch and the sequence numbers the kernel must acknowledge.
#[derive(Debug)]
pub struct Batch {
    /// The bytes to send in one `sendto`.
    pub bytes: Vec<u8>,
    /// `(sequence, description)` of every acknowledged request.
    pub acks: Vec<(u32, String)>,
}

impl Batch {
    /// Starts a batch whose first sequence number is `seq`.
    fn begin(seq: u32) -> (MsgBuilder, u32) {
        let mut b = MsgBuilder::new();
        // res_id of the batch messages names the subsystem, big-endian.
        let sub = NFNL_SUBSYS_NFTABLES.to_be_bytes();
        b.begin(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            &[0, 0, sub[0], sub[1]],
        );
        b.end();
        (b, seq.wrapping_add(1))
    }

    fn finish(mut b: MsgBuilder, seq: u32, acks: Vec<(u32, String)>) -> Self {
        let sub = NFNL_SUBSYS_NFTABLES.to_be_bytes();
        b.begin(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq,
            &[0, 0, sub[0], sub[1]],
        );
        b.end();
        Self {
            bytes: b.into_bytes(),
            acks,
        }
    }

    /// Sends the batch and waits for every acknowledgement.
    pub fn send(&self, sock: &mut Socket) -> Result<(), NftError> {
        sock.transact(&self.bytes, &self.acks, KERNEL_TIMEOUT)?;
        Ok(())
    }

    /// The batch without its closing `BATCH_END`: the kernel runs every request (including
    /// module autoloading and its own validation) and acknowledges each, then aborts the whole
    /// transaction because the batch never ended, so nothing changes. This is how `nft --check`
    /// asks the kernel. The sequence numbers are the batch's own: do not reuse them for a real
    /// send on the same socket, or send this first and the real batch with fresh numbers.
    pub fn dry_run_bytes(&self) -> &[u8] {
        let mut last = 0;
        let mut off = 0;
        for m in netlink::messages(&self.bytes) {
            let Ok(m) = m else { break };
            last = off;
            off += netlink::align4(netlink::NLMSG_HDRLEN + m.payload.len());
        }
        &self.bytes[..last]
    }

    /// Sends [`Batch::dry_run_bytes`] and waits for every acknowledgement: `Ok` when the kernel
    /// would accept the batch, the first refused request otherwise. Changes nothing.
    pub fn send_dry_run(&self, sock: &mut Socket) -> Result<(), NftError> {
        sock.transact(self.dry_run_bytes(), &self.acks, KERNEL_TIMEOUT)?;
        Ok(())
    }
}

fn table_msg(b: &mut MsgBuilder, m: u16, flags: u16, seq: u32, family: Family, table: &str) {
    b.begin(nft_type(m), flags, seq, &nfgenmsg(family.number()));
    b.attr_str(attr::TABLE_NAME, table);
    b.end();
}

impl Ruleset {
    /// The messages that replace this table atomically, numbered from `seq` (the batch uses
    /// `4 + chains + rules` sequence numbers). Other tables are not touched.
    pub fn replace_batch(&self, seq: u32) -> Result<Batch, NftError> {
        self.replace_batch_with(seq, &[])
    }

    /// [`Ruleset::replace_batch`] with `flowtables` created in the same table, after the chains
    /// and before the rules (a `flow add @NAME` rule needs its flowtable to exist). Uses
    /// [`Ruleset::batch_len_with`] sequence numbers. A flowtable request is described as
    /// `add flowtable TABLE NAME …`, a rule holding [`Expr::FlowOffload`] as `… (flow add @NAME)`,
    /// so a caller can tell from [`NetlinkError::Kernel`] whether the kernel refused the fast path.
    pub fn replace_batch_with(
        &self,
        seq: u32,
        flowtables: &[Flowtable],
    ) -> Result<Batch, NftError> {
        check_name(&self.table)?;
        let (mut b, mut seq) = Batch::begin(seq);
        let mut acks = Vec::new();
        let req = NLM_F_REQUEST | NLM_F_ACK;
        let mut push =
            |b: &mut MsgBuilder, what: String, f: &mut dyn FnMut(&mut MsgBuilder, u32)| {
                f(b, seq);
                acks.push((seq, what));
                seq = seq.wrapping_add(1);
            };
        let fam = self.family;
        let t = self.table.as_str();
        push(
            &mut b,
            format!("create table {} {t}", fam.name()),
            &mut |b, s| table_msg(b, msg::NEWTABLE, req | NLM_F_CREATE, s, fam, t),
        );
        push(
            &mut b,
            format!("delete table {} {t}", fam.name()),
            &mut |b, s| table_msg(b, msg::DELTABLE, req, s, fam, t),
        );
        push(
            &mut b,
            format!("add table {} {t}", fam.name()),
            &mut |b, s| table_msg(b, msg::NEWTABLE, req | NLM_F_CREATE, s, fam, t),
        );
        for chain in &self.chains {
            check_name(&chain.name)?;
            push(
                &mut b,
                format!("add chain {t} {}", chain.name),
                &mut |b, s| encode_chain(b, s, fam, t, chain),
            );
        }
        for ft in flowtables {
            check_name(&ft.name)?;
            for d in &ft.devices {
                check_device(d)?;
            }
            push(
                &mut b,
                format!(
                    "add flowtable {t} {} (devices {})",
                    ft.name,
                    ft.devices.join(", ")
                ),
                &mut |b, s| encode_flowtable(b, s, fam, t, ft),
            );
        }
        for chain in &self.chains {
            for (i, rule) in chain.rules.iter().enumerate() {
                let flow = rule.iter().find_map(|e| match e {
                    Expr::FlowOffload { flowtable } => Some(format!(" (flow add @{flowtable})")),
                    _ => None,
                });
                push(
                    &mut b,
                    format!(
                        "add rule {t} {} #{}{}",
                        chain.name,
                        i + 1,
                        flow.unwrap_or_default()
                    ),
                    &mut |b, s| encode_rule(b, s, fam, t, &chain.name, rule),
                );
            }
        }
        Ok(Batch::finish(b, seq, acks))
    }

    /// Number of sequence numbers [`Ruleset::replace_batch`] uses.
    pub fn batch_len(&self) -> u32 {
        self.batch_len_with(&[])
    }

    /// Number of sequence numbers [`Ruleset::replace_batch_with`] uses.
    pub fn batch_len_with(&self, flowtables: &[Flowtable]) -> u32 {
        let rules: usize = self.chains.iter().map(|c| c.rules.len()).sum();
        (5 + self.chains.len() + flowtables.len() + rules) as u32
    }
}

/// The messages that delete table `family table` if it exists (and do nothing otherwise).
pub fn delete_batch(seq: u32, family: Family, table: &str) -> Result<Batch, NftError> {
    check_name(table)?;
    let (mut b, s) = Batch::begin(seq);
    let req = NLM_F_REQUEST | NLM_F_ACK;
    table_msg(&mut b, msg::NEWTABLE, req | NLM_F_CREATE, s, family, table);
    table_msg(&mut b, msg::DELTABLE, req, s.wrapping_add(1), family, table);
    let acks = vec![
        (s, format!("create table {} {table}", family.name())),
        (
            s.wrapping_add(1),
            format!("delete table {} {table}", family.name()),
        ),
    ];
    Ok(Batch::finish(b, s.wrapping_add(2), acks))
}

fn encode_chain(b: &mut MsgBuilder, seq: u32, family: Family, table: &str, chain: &Chain) {
    b.begin(
        nft_type(msg::NEWCHAIN),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
        seq,
        &nfgenmsg(family.number()),
    );
    b.attr_str(attr::CHAIN_TABLE, table);
    b.attr_str(attr::CHAIN_NAME, &chain.name);
    if let Some(base) = &chain.base {
        b.nest_begin(attr::CHAIN_HOOK);
        b.attr_be32(attr::HOOK_HOOKNUM, base.hook.number());
        b.attr_be32(attr::HOOK_PRIORITY, base.priority as u32);
        b.nest_end();
        b.attr_be32(attr::CHAIN_POLICY, base.policy.number());
        b.attr_str(attr::CHAIN_TYPE, &base.kind);
    }
    b.end();
}

fn encode_flowtable(b: &mut MsgBuilder, seq: u32, family: Family, table: &str, ft: &Flowtable) {
    b.begin(
        nft_type(msg::NEWFLOWTABLE),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
        seq,
        &nfgenmsg(family.number()),
    );
    b.attr_str(attr::FLOWTABLE_TABLE, table);
    b.attr_str(attr::FLOWTABLE_NAME, &ft.name);
    b.nest_begin(attr::FLOWTABLE_HOOK);
    b.attr_be32(attr::FLOWTABLE_HOOK_NUM, ft.hook);
    b.attr_be32(attr::FLOWTABLE_HOOK_PRIORITY, ft.priority as u32);
    b.nest_begin(attr::FLOWTABLE_HOOK_DEVS);
    for d in &ft.devices {
        b.attr_str(attr::DEVICE_NAME, d);
    }
    b.nest_end();
    b.nest_end();
    b.attr_be32(attr::FLOWTABLE_FLAGS, ft.flags);
    b.end();
}

fn encode_rule(
    b: &mut MsgBuilder,
    seq: u32,
    family: Family,
    table: &str,
    chain: &str,
    exprs: &[Expr],
) {
    b.begin(
        nft_type(msg::NEWRULE),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
        seq,
        &nfgenmsg(family.number()),
    );
    b.attr_str(attr::RULE_TABLE, table);
    b.attr_str(attr::RULE_CHAIN, chain);
    b.nest_begin(attr::RULE_EXPRESSIONS);
    for e in exprs {
        e.encode(b);
    }
    b.nest_end();
    b.end();
}

/// A base chain found in the kernel (any table, any family).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BaseChainInfo {
    /// The table's family (`ip`, `inet`, …).
    pub family: String,
    /// The table's name.
    pub table: String,
    /// The chain's name.
    pub chain: String,
    /// The chain type (`filter`, `nat`, …).
    pub kind: String,
    /// The hook number.
    pub hook: u32,
    /// The priority.
    pub priority: i32,
    /// True when the policy is drop.
    pub policy_drop: bool,
}

struct RawChain {
    family: u8,
    table: String,
    name: String,
    base: Option<BaseChain>,
    /// Policy as the kernel reported it (for BaseChainInfo), when a base chain.
    policy_raw: Option<u32>,
}

fn parse_chain(m: &netlink::Msg<'_>) -> Result<RawChain, NetlinkError> {
    let family = *m
        .payload
        .first()
        .ok_or_else(|| NetlinkError::Malformed("short chain message".into()))?;
    let a = m.payload.get(4..).unwrap_or(&[]);
    let s = |ty| {
        netlink::attr(a, ty)
            .and_then(netlink::string)
            .unwrap_or_default()
    };
    let table = s(attr::CHAIN_TABLE);
    let name = s(attr::CHAIN_NAME);
    let mut base = None;
    let mut policy_raw = None;
    if let Some(hook) = netlink::attr(a, attr::CHAIN_HOOK) {
        let num = netlink::attr(hook, attr::HOOK_HOOKNUM)
            .and_then(netlink::be32)
            .unwrap_or(u32::MAX);
        let prio = netlink::attr(hook, attr::HOOK_PRIORITY)
            .and_then(netlink::be32)
            .unwrap_or(0) as i32;
        let pol = netlink::attr(a, attr::CHAIN_POLICY)
            .and_then(netlink::be32)
            .unwrap_or(1);
        policy_raw = Some(pol);
        base = Some(BaseChain {
            kind: s(attr::CHAIN_TYPE),
            hook: Hook::from_number(num),
            priority: prio,
            policy: if pol == 0 {
                Policy::Drop
            } else {
                Policy::Accept
            },
        });
    }
    Ok(RawChain {
        family,
        table,
        name,
        base,
        policy_raw,
    })
}

fn dump_request(sock: &mut Socket, m: u16, family: u8, table: Option<&str>) -> (Vec<u8>, u32) {
    let seq = sock.next_seq();
    let mut b = MsgBuilder::new();
    b.begin(
        nft_type(m),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        &nfgenmsg(family),
    );
    if let Some(t) = table {
        // NFTA_CHAIN_TABLE and NFTA_RULE_TABLE are both type 1: the kernel filters the dump.
        b.attr_str(1, t);
    }
    b.end();
    (b.into_bytes(), seq)
}

/// Reads table `family name` back from the kernel: `None` when it does not exist.
///
/// Rules whose expressions this module does not know come back as [`Expr::Unknown`], so a
/// comparison with an intended ruleset fails instead of ignoring them.
pub fn read_table(
    sock: &mut Socket,
    family: Family,
    name: &str,
) -> Result<Option<Ruleset>, NftError> {
    check_name(name)?;
    // Table: a GETTABLE for one name answers ENOENT when it is absent.
    let seq = sock.next_seq();
    let mut b = MsgBuilder::new();
    table_msg(&mut b, msg::GETTABLE, NLM_F_REQUEST, seq, family, name);
    let mut found = false;
    match sock.dump(
        b.bytes(),
        seq,
        &format!("get table {} {name}", family.name()),
        KERNEL_TIMEOUT,
        |_| {
            found = true;
            Ok(())
        },
    ) {
        Ok(()) => {}
        Err(NetlinkError::Kernel { errno: 2, .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    if !found {
        return Ok(None);
    }

    let mut chains: Vec<Chain> = Vec::new();
    let (req, seq) = dump_request(sock, msg::GETCHAIN, family.number(), Some(name));
    sock.dump(&req, seq, "list chains", KERNEL_TIMEOUT, |m| {
        let c = parse_chain(m)?;
        if c.table == name {
            chains.push(Chain {
                name: c.name,
                base: c.base,
                rules: Vec::new(),
            });
        }
        Ok(())
    })?;

    let (req, seq) = dump_request(sock, msg::GETRULE, family.number(), Some(name));
    let mut orphan = None;
    sock.dump(&req, seq, "list rules", KERNEL_TIMEOUT, |m| {
        let a = m.payload.get(4..).unwrap_or(&[]);
        let s = |ty| {
            netlink::attr(a, ty)
                .and_then(netlink::string)
                .unwrap_or_default()
        };
        if s(attr::RULE_TABLE) != name {
            return Ok(());
        }
        let chain = s(attr::RULE_CHAIN);
        let exprs = rule_exprs(m);
        match chains.iter_mut().find(|c| c.name == chain) {
            Some(c) => c.rules.push(exprs),
            None => orphan = Some(chain),
        }
        Ok(())
    })?;
    if let Some(chain) = orphan {
        return Err(NetlinkError::Malformed(format!("rule in unknown chain {chain}")).into());
    }
    Ok(Some(Ruleset {
        family,
        table: name.into(),
        chains,
    }))
}

/// The base chain a chain message (`NEWCHAIN`, as a dump answers) describes; `None` for a regular
/// chain. Pure, so the decoder of what the kernel sends can be fuzzed without a kernel.
pub fn base_chain_info(m: &netlink::Msg<'_>) -> Result<Option<BaseChainInfo>, NetlinkError> {
    let c = parse_chain(m)?;
    Ok(c.base.map(|base| BaseChainInfo {
        family: Family::from_number(c.family).name(),
        table: c.table,
        chain: c.name,
        kind: base.kind,
        hook: base.hook.number(),
        priority: base.priority,
        policy_drop: c.policy_raw == Some(0),
    }))
}

/// The expressions of a rule message (`NEWRULE`, as a dump answers). Pure, like [`base_chain_info`].
pub fn rule_exprs(m: &netlink::Msg<'_>) -> Vec<Expr> {
    let a = m.payload.get(4..).unwrap_or(&[]);
    expr::decode_list(netlink::attr(a, attr::RULE_EXPRESSIONS).unwrap_or(&[]))
}

/// The table name and flowtable a flowtable message (`NEWFLOWTABLE`, as a dump answers)
/// describes, devices sorted. Pure, like [`base_chain_info`]. A message without a name, or
/// without a hook, is malformed (the kernel always sends both).
pub fn flowtable_info(m: &netlink::Msg<'_>) -> Result<(String, Flowtable), NetlinkError> {
    let a = m
        .payload
        .get(4..)
        .ok_or_else(|| NetlinkError::Malformed("short flowtable message".into()))?;
    let s = |ty| netlink::attr(a, ty).and_then(netlink::string);
    let table = s(attr::FLOWTABLE_TABLE).unwrap_or_default();
    let name = s(attr::FLOWTABLE_NAME)
        .ok_or_else(|| NetlinkError::Malformed("flowtable without a name".into()))?;
    let hook = netlink::attr(a, attr::FLOWTABLE_HOOK)
        .ok_or_else(|| NetlinkError::Malformed(format!("flowtable {name} without a hook")))?;
    let mut devices: Vec<String> = netlink::attr(hook, attr::FLOWTABLE_HOOK_DEVS)
        .map(|d| {
            netlink::attrs(d)
                .filter(|(t, _)| *t == attr::DEVICE_NAME)
                .map(|(_, p)| netlink::string(p).unwrap_or_else(|| "<not UTF-8>".into()))
                .collect()
        })
        .unwrap_or_default();
    devices.sort();
    let ft = Flowtable {
        name,
        hook: netlink::attr(hook, attr::FLOWTABLE_HOOK_NUM)
            .and_then(netlink::be32)
            .unwrap_or(u32::MAX),
        priority: netlink::attr(hook, attr::FLOWTABLE_HOOK_PRIORITY)
            .and_then(netlink::be32)
            .unwrap_or(0) as i32,
        devices,
        flags: netlink::attr(a, attr::FLOWTABLE_FLAGS)
            .and_then(netlink::be32)
            .unwrap_or(0),
    };
    Ok((table, ft))
}

/// The flowtables of table `family name`, in the kernel's order (empty when there are none,
/// when the table does not exist, and on kernels without flowtable support).
pub fn read_flowtables(
    sock: &mut Socket,
    family: Family,
    name: &str,
) -> Result<Vec<Flowtable>, NftError> {
    check_name(name)?;
    // NFTA_FLOWTABLE_TABLE is type 1 as well: the kernel filters the dump by table.
    let (req, seq) = dump_request(sock, msg::GETFLOWTABLE, family.number(), Some(name));
    let mut out = Vec::new();
    match sock.dump(&req, seq, "list flowtables", KERNEL_TIMEOUT, |m| {
        let (table, ft) = flowtable_info(m)?;
        if table == name {
            out.push(ft);
        }
        Ok(())
    }) {
        Ok(()) => Ok(out),
        // The table is gone (or never was): no flowtables.
        Err(NetlinkError::Kernel { errno: 2, .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Every base chain of every table in every family.
pub fn list_base_chains(sock: &mut Socket) -> Result<Vec<BaseChainInfo>, NftError> {
    let mut out = Vec::new();
    let (req, seq) = dump_request(sock, msg::GETCHAIN, 0, None);
    sock.dump(&req, seq, "list chains", KERNEL_TIMEOUT, |m| {
        out.extend(base_chain_info(m)?);
        Ok(())
    })?;
    Ok(out)
}

/// Opens an nf_tables socket; with `events`, it also receives every ruleset change.
pub fn open_socket(events: bool) -> Result<Socket, NetlinkError> {
    let groups = if events {
        1 << (NFNLGRP_NFTABLES - 1)
    } else {
        0
    };
    Socket::open(Some(rustix::net::netlink::NETFILTER), groups)
}

#[cfg(test)]
mod tests;
