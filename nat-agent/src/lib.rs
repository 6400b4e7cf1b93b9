//! The Clawster NAT-instance agent as a library: `main.rs` parses arguments and calls one of
//! [`apply_once`], [`status`], [`remove`] or [`run`].
//!
//! The order of every convergence is the safety argument, so it is written down once here:
//!
//! 1. Resolve the VPC CIDRs (options, else IMDSv2) and the egress interface (option, else the
//!    kernel's IPv4 default route, cross-checked with the IMDS primary MAC when IMDS answers),
//!    retrying until a deadline.
//! 2. Read our table back; if it differs from the intended one, replace it in one atomic
//!    nf_tables batch (only our table: create-if-missing, delete, create, chains, flowtable,
//!    rules). The intended table includes the fast path (a flowtable on the egress and VPC-side
//!    interfaces, and `flow add` rules) when the kernel accepts it: unless the table already
//!    holds it, the full batch is first sent as a dry run (no `BATCH_END`: the kernel checks
//!    every request, then aborts), and if the kernel refuses the flowtable or the `flow add`
//!    rules, the table is written without the fast path (see [`FastPath`]).
//! 3. Read it back again (rules and flowtables) and require exact equality with the intended
//!    ruleset.
//! 4. Kernel knobs: send_redirects off, conntrack sized for a small box; persisted in
//!    /etc/sysctl.d. Failure to tune or persist these is *degraded*, not fatal (NAT still works).
//! 5. Only now `net.ipv4.ip_forward = 1`.
//!
//! Failure policy: any failure in 1–3 turns forwarding **off** (fail closed: a NAT instance that
//! forwards without translating is the multi-hour silent outage seen in the field), writes a
//! `failed` health record naming the cause, and makes the command exit non-zero. A foreign base
//! chain on the forward hook with policy drop is reported as `degraded` (it would drop what we
//! accept) but not removed: we never touch other tables.
//!
//! Fast-path policy: it is an optimisation, so its absence never stops or fails the NAT. When the
//! kernel has no flowtables (`ENOENT`/`EOPNOTSUPP`: `CONFIG_NF_FLOW_TABLE` unset or the modules
//! `nf_flow_table`, `nf_flow_table_inet` missing) or refuses it for any other reason, or its
//! devices cannot be determined, the table is programmed and verified without it, one
//! `nat.fastpath` record with status `degraded` says why (again only when that changes, in
//! `run`), `status` shows `fast_path: false` with the reason and stays healthy.
//!
//! `ip_forward` is deliberately *not* persisted in /etc/sysctl.d: at boot it would come on before
//! the agent has verified the ruleset, which is exactly the failure above.

pub mod cli;
pub mod route;
pub mod ruleset;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clawster_core::fs::{HostRoot, Ownership};
use clawster_core::imds::Imds;
use clawster_core::logging::{health, Status};
use clawster_core::netlink::Socket;
use clawster_core::nft::{self, BaseChainInfo, Family};
use clawster_core::sdnotify::{self, Notifier};
use clawster_core::sysctl::{self, Sysctl};

pub use ruleset::{Cidr, Plan, TABLE};

/// The persisted kernel parameters.
pub const SYSCTL_CONF: &str = "/etc/sysctl.d/60-clawster-nat-agent.conf";
/// Name used in health records and the sysctl.d header.
pub const PROGRAM: &str = "clawster-nat-agent";

const IP_FORWARD: &str = "net.ipv4.ip_forward";
const CT_MAX: &str = "net.netfilter.nf_conntrack_max";
const CT_EST: &str = "net.netfilter.nf_conntrack_tcp_timeout_established";
const CT_COUNT: &str = "net.netfilter.nf_conntrack_count";

/// Options every command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// VPC CIDR whose traffic is translated (repeatable or comma-separated). Without it the
    /// CIDRs are read from IMDSv2 (vpc-ipv4-cidr-blocks of the primary interface).
    #[arg(
        long = "vpc-cidr",
        value_name = "CIDR",
        value_delimiter = ',',
        env = "CLAWSTER_NAT_VPC_CIDR"
    )]
    pub vpc_cidrs: Vec<Cidr>,

    /// Interface traffic leaves by. Without it: the interface of the kernel's IPv4 default route,
    /// cross-checked with the primary MAC from IMDSv2 when IMDS answers.
    #[arg(long, value_name = "NAME", env = "CLAWSTER_NAT_EGRESS_INTERFACE")]
    pub egress_interface: Option<String>,

    /// TCP destination ports new connections may be forwarded to (mirrors the NAT security group).
    #[arg(
        long,
        value_name = "PORTS",
        value_delimiter = ',',
        default_value = "80,443",
        env = "CLAWSTER_NAT_ALLOW_PORTS"
    )]
    pub allow_ports: Vec<u16>,

    /// Raise net.netfilter.nf_conntrack_max to at least N (about 300 bytes per entry).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 65536,
        env = "CLAWSTER_NAT_CONNTRACK_MAX"
    )]
    pub conntrack_max: u64,

    /// Set nf_conntrack_tcp_timeout_established to SECS (kernel default 5 days; RFC 5382 asks
    /// for at least 7440).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 7440,
        env = "CLAWSTER_NAT_CONNTRACK_ESTABLISHED_TIMEOUT"
    )]
    pub conntrack_established_timeout: u64,

    /// Clamp the TCP MSS of forwarded SYNs to the route MTU.
    #[arg(long, env = "CLAWSTER_NAT_MSS_CLAMP")]
    pub mss_clamp: bool,

    /// Masquerade with fully random source ports.
    #[arg(long, env = "CLAWSTER_NAT_FULLY_RANDOM")]
    pub fully_random: bool,

    /// Interface(s) facing the VPC, for the fast path's flowtable (repeatable or
    /// comma-separated). Without it: the interface(s) the kernel routes each VPC CIDR to (on
    /// AWS the same ENI as the egress). The flowtable always includes the egress interface.
    #[arg(
        long = "inside-interface",
        value_name = "NAME",
        value_delimiter = ',',
        env = "CLAWSTER_NAT_INSIDE_INTERFACE"
    )]
    pub inside_interfaces: Vec<String>,

    /// Never program the fast path (nftables flowtable for established flows).
    #[arg(long, env = "CLAWSTER_NAT_NO_FAST_PATH")]
    pub no_fast_path: bool,

    /// IMDS endpoint as host:port, or `off` to never ask IMDS.
    #[arg(long, value_name = "HOST:PORT", default_value = clawster_core::imds::DEFAULT_ENDPOINT, env = "CLAWSTER_IMDS_ENDPOINT")]
    pub imds_endpoint: String,

    /// How long to keep retrying interface and CIDR detection before giving up.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 60,
        env = "CLAWSTER_NAT_DETECT_TIMEOUT"
    )]
    pub detect_timeout: u64,

    /// The nf_tables table (family ip) the agent owns.
    #[arg(long, value_name = "NAME", default_value = TABLE)]
    pub table: String,

    /// Directory standing for `/` for the files we write (/etc/sysctl.d).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Directory standing for /proc/sys (tests).
    #[arg(long, value_name = "DIR", default_value = "/proc/sys")]
    pub proc_sys: PathBuf,
}

impl Options {
    fn imds(&self) -> Result<Option<Imds>> {
        if self.imds_endpoint.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        Ok(Some(Imds::new(&self.imds_endpoint)?))
    }

    fn validate(&self) -> Result<()> {
        if self.allow_ports.is_empty() || self.allow_ports.contains(&0) {
            bail!("--allow-ports needs one or more ports between 1 and 65535");
        }
        let bad = |n: &str| n.is_empty() || n.len() > 15 || n.contains(['/', ' ', '\0']);
        if let Some(n) = &self.egress_interface {
            if bad(n) {
                bail!("--egress-interface {n:?} is not a valid interface name");
            }
        }
        if let Some(n) = self.inside_interfaces.iter().find(|n| bad(n)) {
            bail!("--inside-interface {n:?} is not a valid interface name");
        }
        Ok(())
    }
}

/// What the agent found or did; `status --json` prints it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// True when the table matches, forwarding is on and nothing failed.
    pub healthy: bool,
    /// Our table.
    pub table: String,
    /// Egress interface in use.
    pub egress_interface: Option<String>,
    /// VPC CIDRs translated.
    pub vpc_cidrs: Vec<String>,
    /// The kernel holds exactly the intended ruleset.
    pub ruleset_verified: bool,
    /// The ruleset was (re)written by this run.
    pub ruleset_changed: bool,
    /// Milliseconds the atomic replace plus read-back took (when it was written).
    pub apply_ms: Option<f64>,
    /// `net.ipv4.ip_forward`.
    pub ip_forward: Option<bool>,
    /// Other tables' base chains on the forward hook with policy drop.
    pub foreign_drop_chains: Vec<BaseChainInfo>,
    /// `nf_conntrack_count` / `nf_conntrack_max`.
    pub conntrack: Option<(u64, u64)>,
    /// The fast path (flowtable) is programmed and verified.
    pub fast_path: bool,
    /// Its devices, when it is.
    pub fast_path_devices: Vec<String>,
    /// Why it is off, when it is.
    pub fast_path_off: Option<String>,
    /// Problems found, in words.
    pub problems: Vec<String>,
}

/// The live (or test) host.
struct Host {
    opts: Options,
    root: HostRoot,
    sysctl: Sysctl,
    nft: Socket,
    rtnl: Socket,
    imds: Option<Imds>,
    imds_mac: Option<String>,
    /// The fast-path state last written to the journal (`run` writes it again only on change).
    fast_path_reported: Option<FastPath>,
}

/// Whether the table carries the fast path, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastPath {
    /// Programmed on these devices.
    On(Vec<String>),
    /// Not programmed, for this reason.
    Off(String),
}

impl FastPath {
    fn report(&self, report: &mut Report) {
        match self {
            Self::On(d) => {
                report.fast_path = true;
                report.fast_path_devices = d.clone();
                report.fast_path_off = None;
            }
            Self::Off(why) => {
                report.fast_path = false;
                report.fast_path_devices = Vec::new();
                report.fast_path_off = Some(why.clone());
            }
        }
    }

    fn journal(&self) {
        match self {
            Self::On(d) => health(
                "nat.fastpath",
                Status::Ok,
                &format!(
                    "fast path on: established TCP/UDP flows are offloaded to flowtable {} on {}",
                    ruleset::FLOWTABLE,
                    d.join(", ")
                ),
            ),
            Self::Off(why) => health(
                "nat.fastpath",
                Status::Degraded,
                &format!(
                    "fast path off: {why}; forwarding and masquerade run through the ordinary \
                     forward path"
                ),
            ),
        }
    }
}

/// The reason to give up on the fast path when the kernel refused one of its requests
/// (`what` names them: see [`nft::Ruleset::replace_batch_with`]); `None` for other errors.
fn fast_path_refusal(e: &nft::NftError) -> Option<String> {
    let nft::NftError::Netlink(clawster_core::netlink::NetlinkError::Kernel { what, errno }) = e
    else {
        return None;
    };
    if !(what.starts_with("add flowtable") || what.contains("(flow add @")) {
        return None;
    }
    let said = std::io::Error::from_raw_os_error(*errno);
    Some(
        if *errno == rustix::io::Errno::NOENT.raw_os_error()
            || *errno == rustix::io::Errno::OPNOTSUPP.raw_os_error()
        {
            format!(
                "the kernel has no flowtable support ({what}: kernel said {said}; needs \
                 CONFIG_NF_FLOW_TABLE, modules nf_flow_table and nf_flow_table_inet), or a \
                 flowtable device vanished"
            )
        } else {
            format!("the kernel refused the flowtable ({what}: kernel said {said})")
        },
    )
}

impl Host {
    fn open(opts: &Options) -> Result<Self> {
        opts.validate()?;
        Ok(Self {
            opts: opts.clone(),
            root: HostRoot::new(&opts.root),
            sysctl: Sysctl::at(&opts.proc_sys),
            nft: nft::open_socket(false)
                .context("open nf_tables netlink socket (needs CAP_NET_ADMIN)")?,
            rtnl: route::open(0).context("open rtnetlink socket")?,
            imds: opts.imds()?,
            imds_mac: None,
            fast_path_reported: None,
        })
    }

    /// The VPC CIDRs, retrying IMDS until `deadline`.
    fn cidrs(&mut self, deadline: Instant) -> Result<Vec<Cidr>> {
        if !self.opts.vpc_cidrs.is_empty() {
            return Ok(self.opts.vpc_cidrs.clone());
        }
        let Some(imds) = self.imds.clone() else {
            bail!("no --vpc-cidr given and IMDS is off: cannot know which networks to translate");
        };
        let mut last;
        loop {
            match imds
                .primary_mac()
                .and_then(|mac| imds.vpc_ipv4_cidrs(&mac).map(|c| (mac, c)))
            {
                Ok((mac, list)) => {
                    self.imds_mac = Some(mac);
                    let parsed: Result<Vec<Cidr>, String> =
                        list.iter().map(|c| c.parse()).collect();
                    let parsed = parsed.map_err(|e| anyhow!("IMDS vpc-ipv4-cidr-blocks: {e}"))?;
                    if parsed.is_empty() {
                        bail!("IMDS returned no VPC CIDR blocks");
                    }
                    return Ok(parsed);
                }
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(
                    anyhow!(last).context("read the VPC CIDRs from IMDSv2 (or pass --vpc-cidr)")
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// One attempt at finding the egress interface.
    fn egress_once(&mut self) -> Result<String> {
        let links = route::links(&mut self.rtnl).context("list network interfaces")?;
        if let Some(name) = &self.opts.egress_interface {
            return match links.iter().find(|l| &l.name == name) {
                Some(_) => Ok(name.clone()),
                None => bail!(
                    "egress interface {name:?} does not exist (interfaces: {})",
                    names(&links)
                ),
            };
        }
        let oif = route::default_route_oif(&mut self.rtnl)
            .context("read the routing table")?
            .ok_or_else(|| {
                anyhow!("no IPv4 default route yet: cannot tell the egress interface")
            })?;
        let link = links.iter().find(|l| l.index == oif).ok_or_else(|| {
            anyhow!("the default route uses interface index {oif}, which does not exist")
        })?;
        if link.name.is_empty() {
            bail!("the default route's interface (index {oif}) has no name");
        }
        if self.imds_mac.is_none() {
            if let Some(imds) = &self.imds {
                match imds.primary_mac() {
                    Ok(mac) => self.imds_mac = Some(mac),
                    Err(e) => tracing::debug!("IMDS unavailable for the MAC cross-check: {e}"),
                }
            }
        }
        if let Some(mac) = &self.imds_mac {
            if !link.mac.eq_ignore_ascii_case(mac) {
                bail!(
                    "the default route leaves by {} ({}), but IMDS says the primary interface has MAC {mac}",
                    link.name,
                    link.mac
                );
            }
        }
        Ok(link.name.clone())
    }

    fn egress(&mut self, deadline: Instant) -> Result<String> {
        loop {
            match self.egress_once() {
                Ok(n) => return Ok(n),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(e) => tracing::debug!("egress detection: {e:#}; retrying"),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn plan(&self, cidrs: Vec<Cidr>, egress: String) -> Plan {
        Plan {
            table: self.opts.table.clone(),
            cidrs,
            egress,
            ports: self.opts.allow_ports.clone(),
            mss_clamp: self.opts.mss_clamp,
            fully_random: self.opts.fully_random,
            fast_path: Vec::new(),
        }
    }

    /// The fast path's flowtable devices: the egress interface and the interfaces facing the
    /// VPC (`--inside-interface`, else where the kernel routes each CIDR), sorted, without `lo`.
    fn fast_path_devices(&mut self, plan: &Plan) -> Result<Vec<String>, String> {
        if self.opts.no_fast_path {
            return Err("disabled by --no-fast-path".into());
        }
        let links = route::links(&mut self.rtnl)
            .map_err(|e| format!("cannot list interfaces for the flowtable: {e}"))?;
        let mut devices = vec![plan.egress.clone()];
        if self.opts.inside_interfaces.is_empty() {
            for c in &plan.cidrs {
                // A host address of the CIDR (the network address itself may be special).
                let probe = if c.prefix < 31 {
                    std::net::Ipv4Addr::from(u32::from(c.addr) | 1)
                } else {
                    c.addr
                };
                let oif = route::route_oif(&mut self.rtnl, probe)
                    .map_err(|e| format!("cannot look up the route to {c}: {e}"))?;
                if let Some(l) = oif.and_then(|i| links.iter().find(|l| l.index == i)) {
                    devices.push(l.name.clone());
                }
            }
        } else {
            for n in &self.opts.inside_interfaces {
                if !links.iter().any(|l| &l.name == n) {
                    return Err(format!(
                        "--inside-interface {n:?} does not exist (interfaces: {})",
                        names(&links)
                    ));
                }
                devices.push(n.clone());
            }
        }
        devices.retain(|d| d != "lo" && !d.is_empty());
        devices.sort();
        devices.dedup();
        Ok(devices)
    }

    /// The plan with the fast path when the kernel takes it, and the fast-path state. Reads
    /// only, and sends at most a dry run: nothing changes.
    fn decide_fast_path(&mut self, plan: Plan) -> Result<(Plan, FastPath)> {
        let devices = match self.fast_path_devices(&plan) {
            Ok(d) => d,
            Err(why) => return Ok((plan.without_fast_path(), FastPath::Off(why))),
        };
        let full = Plan {
            fast_path: devices.clone(),
            ..plan
        };
        // Already there: the kernel took it before, no need to ask.
        if self.read_back(&full)?.is_none() {
            return Ok((full, FastPath::On(devices)));
        }
        let (rs, fts) = (full.ruleset(), full.flowtables());
        let seq = self.nft.next_seq();
        let batch = rs
            .replace_batch_with(seq, &fts)
            .context("encode the ruleset")?;
        for _ in 1..rs.batch_len_with(&fts) {
            self.nft.next_seq();
        }
        match batch.send_dry_run(&mut self.nft) {
            Ok(()) => Ok((full, FastPath::On(devices))),
            Err(e) => match fast_path_refusal(&e) {
                Some(why) => Ok((full.without_fast_path(), FastPath::Off(why))),
                // Something else is wrong: the real batch reports it.
                None => Ok((full, FastPath::On(devices))),
            },
        }
    }

    fn read_back(&mut self, plan: &Plan) -> Result<Option<String>> {
        let want = plan.ruleset();
        let got = nft::read_table(&mut self.nft, Family::Ip, &plan.table)
            .context("read our table back")?;
        let Some(got) = got else {
            return Ok(Some(format!("table ip {} does not exist", plan.table)));
        };
        if let Some(d) = ruleset::first_difference(&want, &got) {
            return Ok(Some(d));
        }
        let got_ft = nft::read_flowtables(&mut self.nft, Family::Ip, &plan.table)
            .context("read our flowtables back")?;
        Ok(ruleset::flowtable_difference(&plan.flowtables(), &got_ft))
    }

    fn send_table(&mut self, plan: &Plan) -> Result<(), nft::NftError> {
        let (rs, fts) = (plan.ruleset(), plan.flowtables());
        let seq = self.nft.next_seq();
        let batch = rs.replace_batch_with(seq, &fts)?;
        for _ in 1..rs.batch_len_with(&fts) {
            self.nft.next_seq();
        }
        batch.send(&mut self.nft)
    }

    /// Steps 2–3: returns (changed, apply time, fast-path state).
    fn converge_table(&mut self, plan: Plan) -> Result<(bool, Option<f64>, FastPath)> {
        let (mut plan, mut fast) = self.decide_fast_path(plan)?;
        let Some(why) = self.read_back(&plan)? else {
            return Ok((false, None, fast));
        };
        tracing::info!("replacing table ip {}: {why}", plan.table);
        let start = Instant::now();
        let mut sent = self.send_table(&plan);
        // The dry run passed but the kernel refused the fast path now (a device went away in
        // between): the NAT must not wait for it.
        if let Err(e) = &sent {
            if let (Some(why), false) = (fast_path_refusal(e), plan.fast_path.is_empty()) {
                plan = plan.without_fast_path();
                fast = FastPath::Off(why);
                sent = self.send_table(&plan);
            }
        }
        sent.with_context(|| format!("program table ip {} (atomic batch)", plan.table))?;
        if let Some(diff) = self.read_back(&plan)? {
            bail!("the kernel does not hold the ruleset we sent: {diff}");
        }
        Ok((true, Some(start.elapsed().as_secs_f64() * 1000.0), fast))
    }

    fn forward_off(&self, why: &str) {
        match self.sysctl.set(IP_FORWARD, "0") {
            Ok(sysctl::SysctlChange::Changed { .. }) => health(
                "nat.forwarding",
                Status::Failed,
                &format!("IP forwarding turned off: {why}"),
            ),
            Ok(_) => health(
                "nat.forwarding",
                Status::Failed,
                &format!("IP forwarding stays off: {why}"),
            ),
            Err(e) => health(
                "nat.forwarding",
                Status::Failed,
                &format!("{why}; and turning forwarding off failed: {e}"),
            ),
        }
    }

    fn foreign_drop_chains(&mut self) -> Result<Vec<BaseChainInfo>> {
        let table = self.opts.table.clone();
        Ok(nft::list_base_chains(&mut self.nft)
            .context("list base chains")?
            .into_iter()
            .filter(|c| {
                c.hook == nft::Hook::Forward.number()
                    && c.policy_drop
                    && matches!(c.family.as_str(), "ip" | "inet")
                    && !(c.family == "ip" && c.table == table)
            })
            .collect())
    }

    fn conntrack(&self) -> Option<(u64, u64)> {
        let n = |k| self.sysctl.read(k).ok().and_then(|v| v.parse().ok());
        Some((n(CT_COUNT)?, n(CT_MAX)?))
    }

    fn ip_forward(&self) -> Option<bool> {
        self.sysctl.read(IP_FORWARD).ok().map(|v| v == "1")
    }

    /// Steps 1–5 once, with `deadline` for detection. On error forwarding is off.
    fn converge(&mut self, cidrs: &mut Option<Vec<Cidr>>, deadline: Instant) -> Result<Report> {
        let mut report = Report {
            table: self.opts.table.clone(),
            ..Report::default()
        };
        let result = self.converge_inner(cidrs, deadline, &mut report);
        if let Err(e) = &result {
            self.forward_off(&format!("{e:#}"));
            report.ip_forward = self.ip_forward();
            report.problems.push(format!("{e:#}"));
        }
        result.map(|()| report)
    }

    fn converge_inner(
        &mut self,
        cidrs: &mut Option<Vec<Cidr>>,
        deadline: Instant,
        report: &mut Report,
    ) -> Result<()> {
        if cidrs.is_none() {
            *cidrs = Some(self.cidrs(deadline)?);
        }
        let cidrs = cidrs.clone().unwrap_or_default();
        report.vpc_cidrs = cidrs.iter().map(ToString::to_string).collect();
        let egress = self.egress(deadline).context("find the egress interface")?;
        report.egress_interface = Some(egress.clone());
        let plan = self.plan(cidrs, egress);
        let egress = plan.egress.clone();
        let table = plan.table.clone();
        let (changed, ms, fast) = self.converge_table(plan)?;
        fast.report(report);
        if self.fast_path_reported.as_ref() != Some(&fast) {
            fast.journal();
            self.fast_path_reported = Some(fast);
        }
        report.ruleset_verified = true;
        report.ruleset_changed = changed;
        report.apply_ms = ms;
        if changed {
            health(
                "nat.ruleset",
                Status::Changed,
                &format!(
                    "table ip {table} programmed and verified in {:.2} ms: masquerade {} out of {egress}{}",
                    ms.unwrap_or_default(),
                    report.vpc_cidrs.join(", "),
                    if report.fast_path {
                        ", fast path on"
                    } else {
                        ", fast path off"
                    }
                ),
            );
        }
        for p in tune_sysctls(&self.sysctl, &self.root, &self.opts) {
            health("nat.sysctl", Status::Degraded, &p);
            report.problems.push(p);
        }
        report.foreign_drop_chains = self.foreign_drop_chains()?;
        let was = self
            .sysctl
            .set(IP_FORWARD, "1")
            .context("turn IP forwarding on")?;
        if matches!(was, sysctl::SysctlChange::Changed { .. }) {
            health(
                "nat.forwarding",
                Status::Changed,
                "IP forwarding on (ruleset verified)",
            );
        }
        report.ip_forward = self.ip_forward();
        report.conntrack = self.conntrack();
        report.healthy = report.ip_forward == Some(true) && report.foreign_drop_chains.is_empty();
        Ok(())
    }
}

/// Step 4: send_redirects off, conntrack sized, the sysctl.d file written.
///
/// Failure policy: none of this is needed for translation to work, so every problem (a
/// read-only key in a network namespace, a read-only /etc) is returned as a *degraded* finding
/// and never keeps forwarding off.
pub fn tune_sysctls(sysctl: &Sysctl, root: &HostRoot, opts: &Options) -> Vec<String> {
    let chain = |e: &dyn std::error::Error| {
        let mut s = e.to_string();
        let mut src = e.source();
        while let Some(c) = src {
            s.push_str(&format!(": {c}"));
            src = c.source();
        }
        s
    };
    let mut problems = Vec::new();
    for k in [
        "net.ipv4.conf.all.send_redirects",
        "net.ipv4.conf.default.send_redirects",
    ] {
        if let Err(e) = sysctl.set(k, "0") {
            problems.push(format!("send_redirects: {}", chain(&e)));
        }
    }
    if let Err(e) = sysctl.raise_to(CT_MAX, opts.conntrack_max) {
        problems.push(format!("conntrack table size: {}", chain(&e)));
    }
    if let Err(e) = sysctl.set(CT_EST, &opts.conntrack_established_timeout.to_string()) {
        problems.push(format!("conntrack established timeout: {}", chain(&e)));
    }
    let entries = vec![
        (
            "net.ipv4.conf.all.send_redirects".to_string(),
            "0".to_string(),
        ),
        (
            "net.ipv4.conf.default.send_redirects".to_string(),
            "0".to_string(),
        ),
        // `-`: conntrack keys exist only once the module is loaded; do not fail boot on them.
        (format!("-{CT_MAX}"), opts.conntrack_max.to_string()),
        (
            format!("-{CT_EST}"),
            opts.conntrack_established_timeout.to_string(),
        ),
    ];
    let mut text = sysctl::render_conf(PROGRAM, &entries);
    text.push_str(
        "# net.ipv4.ip_forward is set at runtime only, after the NAT ruleset is verified.\n",
    );
    let path = root.path(SYSCTL_CONF);
    let written = path
        .parent()
        .map_or(Ok(clawster_core::fs::WriteOutcome::Unchanged), |dir| {
            clawster_core::fs::ensure_dir(dir, Ownership::root(0o755))
        })
        .and_then(|_| {
            clawster_core::fs::write_atomic(&path, text.as_bytes(), Ownership::root(0o644))
        });
    if let Err(e) = written {
        problems.push(format!("persist kernel settings: {}", chain(&e)));
    }
    problems
}

fn names(links: &[route::Link]) -> String {
    links
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn report_foreign(chains: &[BaseChainInfo]) {
    for c in chains {
        health(
            "nat.foreign-drop",
            Status::Degraded,
            &format!(
                "foreign base chain {} {} {} on the forward hook (priority {}) has policy drop: it drops \
                 forwarded traffic our table accepts",
                c.family, c.table, c.chain, c.priority
            ),
        );
    }
}

/// `apply --once`: converge once and exit. Errors leave forwarding off.
pub fn apply_once(opts: &Options) -> Result<Report> {
    let mut host = Host::open(opts)?;
    let deadline = Instant::now() + Duration::from_secs(opts.detect_timeout);
    let report = host.converge(&mut None, deadline)?;
    report_foreign(&report.foreign_drop_chains);
    let state = if report.ruleset_changed {
        Status::Changed
    } else {
        Status::Ok
    };
    health(
        "nat.apply",
        if report.foreign_drop_chains.is_empty() {
            state
        } else {
            Status::Degraded
        },
        &format!(
            "NAT for {} via {} verified, forwarding on",
            report.vpc_cidrs.join(", "),
            report.egress_interface.as_deref().unwrap_or("?")
        ),
    );
    Ok(report)
}

/// `status`: reads the kernel without changing anything.
pub fn status(opts: &Options) -> Result<Report> {
    let mut host = Host::open(opts)?;
    let mut r = Report {
        table: opts.table.clone(),
        ..Report::default()
    };
    r.ip_forward = host.ip_forward();
    r.conntrack = host.conntrack();
    match host.foreign_drop_chains() {
        Ok(c) => r.foreign_drop_chains = c,
        Err(e) => r.problems.push(format!("{e:#}")),
    }
    let deadline = Instant::now();
    let plan = host.cidrs(deadline).and_then(|c| {
        Ok((
            c,
            host.egress(deadline).context("find the egress interface")?,
        ))
    });
    match plan {
        Ok((cidrs, egress)) => {
            r.vpc_cidrs = cidrs.iter().map(ToString::to_string).collect();
            r.egress_interface = Some(egress.clone());
            let plan = host.plan(cidrs, egress);
            match host.decide_fast_path(plan).and_then(|(plan, fast)| {
                fast.report(&mut r);
                host.read_back(&plan)
            }) {
                Ok(None) => r.ruleset_verified = true,
                Ok(Some(diff)) => r.problems.push(diff),
                Err(e) => r.problems.push(format!("{e:#}")),
            }
        }
        Err(e) => r.problems.push(format!("{e:#}")),
    }
    if r.ip_forward != Some(true) {
        r.problems.push("IP forwarding is off".into());
    }
    for c in &r.foreign_drop_chains {
        r.problems.push(format!(
            "foreign base chain {} {} {} on the forward hook has policy drop",
            c.family, c.table, c.chain
        ));
    }
    r.healthy = r.problems.is_empty();
    Ok(r)
}

/// `remove`: forwarding off first, then our table and our sysctl.d file.
pub fn remove(opts: &Options) -> Result<()> {
    let mut host = Host::open(opts)?;
    host.sysctl
        .set(IP_FORWARD, "0")
        .context("turn IP forwarding off")?;
    let seq = host.nft.next_seq();
    nft::delete_batch(seq, Family::Ip, &opts.table)?
        .send(&mut host.nft)
        .with_context(|| format!("delete table ip {}", opts.table))?;
    host.nft.next_seq();
    host.nft.next_seq();
    host.nft.next_seq();
    let path = host.root.path(SYSCTL_CONF);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove {}", path.display())),
    }
    health(
        "nat.remove",
        Status::Changed,
        &format!("table ip {} removed, IP forwarding off", opts.table),
    );
    Ok(())
}

/// `run`: converge, then keep it true on netlink events and every `interval`; never returns
/// unless a socket breaks.
pub fn run(opts: &Options, interval: Duration) -> Result<()> {
    let notifier = Notifier::from_env().context("open $NOTIFY_SOCKET")?;
    let watchdog = sdnotify::watchdog_interval().map(|d| d / 2);
    let mut host = Host::open(opts)?;
    let mut nft_events = nft::open_socket(true).context("subscribe to nf_tables events")?;
    let mut rt_events =
        route::open(route::EVENT_GROUPS).context("subscribe to link and route events")?;
    let mut cidrs: Option<Vec<Cidr>> = None;
    let mut ready = false;
    let mut last_foreign: Vec<BaseChainInfo> = Vec::new();
    let mut last_ok = false;
    let mut next_watchdog = Instant::now();
    let retry = Duration::from_secs(2);
    // The first convergence may wait for the interface and IMDS like `apply` does.
    let mut deadline = Instant::now() + Duration::from_secs(opts.detect_timeout);
    loop {
        let ok = match host.converge(&mut cidrs, deadline) {
            Ok(report) => {
                if report.foreign_drop_chains != last_foreign {
                    report_foreign(&report.foreign_drop_chains);
                    last_foreign = report.foreign_drop_chains.clone();
                }
                let text = format!(
                    "forwarding {} via {}{}",
                    report.vpc_cidrs.join(","),
                    report.egress_interface.as_deref().unwrap_or("?"),
                    if last_foreign.is_empty() {
                        String::new()
                    } else {
                        "; foreign drop chain on forward hook".into()
                    }
                );
                if !last_ok || report.ruleset_changed {
                    health("nat.run", Status::Ok, &text);
                }
                if ready {
                    let _ = notifier.status(&text);
                } else {
                    let _ = notifier.ready(&text);
                    ready = true;
                }
                true
            }
            Err(e) => {
                let _ = notifier.status(&format!("NOT forwarding: {e:#}"));
                false
            }
        };
        last_ok = ok;
        // Later convergences are single attempts; events and the timer retry them.
        deadline = Instant::now();
        let wait = if ok { interval } else { retry };
        let until = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if let Some(wd) = watchdog {
                if now >= next_watchdog {
                    let _ = notifier.watchdog();
                    next_watchdog = now + wd;
                }
            }
            if now >= until {
                break;
            }
            let mut timeout = until - now;
            if watchdog.is_some() {
                timeout = timeout.min(next_watchdog.saturating_duration_since(now));
            }
            if wait_events(&mut nft_events, &mut rt_events, timeout)? {
                // Let a burst (a flush, an interface being replaced) settle, then converge.
                std::thread::sleep(Duration::from_millis(50));
                drain(&mut nft_events)?;
                drain(&mut rt_events)?;
                break;
            }
        }
    }
}

/// Waits up to `timeout` for either socket; true when something arrived.
fn wait_events(a: &mut Socket, b: &mut Socket, timeout: Duration) -> Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [PollFd::new(a, PollFlags::IN), PollFd::new(b, PollFlags::IN)];
    match poll(&mut fds, Some(&ts)) {
        Ok(0) | Err(rustix::io::Errno::INTR) => Ok(false),
        Ok(_) => {
            drain(a)?;
            drain(b)?;
            Ok(true)
        }
        Err(e) => Err(std::io::Error::from(e)).context("wait for netlink events"),
    }
}

/// Reads every waiting event; an overrun (ENOBUFS) only means "something changed".
fn drain(s: &mut Socket) -> Result<()> {
    loop {
        match s.try_recv() {
            Ok(Some(_)) => continue,
            Ok(None) => return Ok(()),
            Err(clawster_core::netlink::NetlinkError::Io { source, .. })
                if source.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error()) =>
            {
                continue
            }
            Err(e) => return Err(e).context("read netlink events"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        o: Options,
    }

    fn opts(args: &[&str]) -> Options {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .expect("parse")
            .o
    }

    #[test]
    fn options_parse_and_validate() {
        let o = opts(&[
            "--vpc-cidr",
            "10.0.0.0/16,10.1.0.0/16",
            "--allow-ports",
            "443",
        ]);
        assert_eq!(o.vpc_cidrs.len(), 2);
        assert_eq!(o.allow_ports, [443]);
        assert!(o.validate().is_ok());
        assert!(opts(&["--allow-ports", "0"]).validate().is_err());
        let e = opts(&["--egress-interface", "a/b"])
            .validate()
            .expect_err("bad name");
        assert!(e.to_string().contains("a/b"), "{e}");
        assert!(T::try_parse_from(["t", "--vpc-cidr", "10.0.0.1/16"]).is_err());
        assert!(opts(&["--imds-endpoint", "off"])
            .imds()
            .expect("off")
            .is_none());
    }

    #[test]
    fn sysctls_are_tuned_and_persisted_without_ip_forward() {
        let dir = tempfile::tempdir().expect("tempdir");
        let proc_sys = dir.path().join("proc");
        for d in [
            "net/ipv4/conf/all",
            "net/ipv4/conf/default",
            "net/netfilter",
        ] {
            std::fs::create_dir_all(proc_sys.join(d)).expect("mkdir");
        }
        std::fs::write(proc_sys.join("net/ipv4/conf/all/send_redirects"), "1\n").expect("seed");
        std::fs::write(proc_sys.join("net/ipv4/conf/default/send_redirects"), "1\n").expect("seed");
        std::fs::write(proc_sys.join("net/netfilter/nf_conntrack_max"), "4096\n").expect("seed");
        // nf_conntrack_tcp_timeout_established is absent: a degraded finding, not an error.
        let root_dir = dir.path().join("root");
        std::fs::create_dir_all(root_dir.join("etc")).expect("mkdir");
        let sysctl = Sysctl::at(&proc_sys);
        let root = HostRoot::new(&root_dir);
        let o = opts(&["--conntrack-max", "65536"]);
        let problems = tune_sysctls(&sysctl, &root, &o);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("nf_conntrack_tcp_timeout_established"),
            "{problems:?}"
        );
        assert_eq!(
            sysctl
                .read("net.ipv4.conf.all.send_redirects")
                .expect("read"),
            "0"
        );
        assert_eq!(sysctl.read(CT_MAX).expect("read"), "65536");
        let conf = std::fs::read_to_string(root.path(SYSCTL_CONF)).expect("conf");
        let keys: Vec<String> = sysctl::parse_conf(&conf)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(
            keys.contains(&CT_MAX.to_string()) && !keys.contains(&IP_FORWARD.to_string()),
            "{conf}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.path(SYSCTL_CONF))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        // Raise-only: a bigger table is kept.
        std::fs::write(proc_sys.join("net/netfilter/nf_conntrack_max"), "262144\n").expect("seed");
        assert!(tune_sysctls(&sysctl, &root, &o).len() == 1);
        assert_eq!(sysctl.read(CT_MAX).expect("read"), "262144");
    }
}
