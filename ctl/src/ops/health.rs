//! `clawsterctl health BOT [--nat]`: the JSON of `clawster-agent health --json` and of
//! `clawster-nat-agent status --json` as a table (check, status, message) and an exit code:
//! 0 healthy, 1 degraded, 2 could not check.
//!
//! The shapes are the agents' (`agent/src/health.rs` `HealthReport`, `nat-agent/src/lib.rs`
//! `Report`); the tests serialise the agents' own types and read them back here. Fields this
//! side does not know are ignored, so a newer agent still renders.

use serde::Deserialize;

use super::clean;
use super::invocation::{is_cut, EXIT_FAILED, EXIT_NOT_RUN, EXIT_OK};

/// `clawster-agent health --json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentHealth {
    /// `ok`, `degraded` or `unknown`.
    pub status: String,
    /// Each check.
    pub checks: Vec<AgentCheck>,
}

/// One check of [`AgentHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentCheck {
    /// `CLAWSTER_CHECK`, e.g. `sysbox.units`.
    pub check: String,
    /// `ok`, `changed`, `skipped`, `degraded` or `failed`.
    pub status: String,
    /// Detail.
    pub message: String,
}

impl AgentHealth {
    /// 0 healthy, 1 degraded, 2 could not check (the agent's own codes).
    pub fn exit_code(&self) -> u8 {
        match self.status.as_str() {
            "ok" => EXIT_OK,
            "degraded" => EXIT_FAILED,
            _ => EXIT_NOT_RUN,
        }
    }
}

/// A foreign base chain on the forward hook with policy drop (`BaseChainInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ForeignChain {
    /// `ip`, `inet`, ...
    pub family: String,
    /// Table.
    pub table: String,
    /// Chain.
    pub chain: String,
    /// Priority.
    #[serde(default)]
    pub priority: i64,
}

/// `clawster-nat-agent status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NatStatus {
    /// The table matches, forwarding is on, nothing failed.
    pub healthy: bool,
    /// Our table's name.
    #[serde(default)]
    pub table: String,
    /// The egress interface.
    #[serde(default)]
    pub egress_interface: Option<String>,
    /// The VPC ranges translated.
    #[serde(default)]
    pub vpc_cidrs: Vec<String>,
    /// The kernel holds exactly the intended ruleset.
    #[serde(default)]
    pub ruleset_verified: bool,
    /// `net.ipv4.ip_forward`.
    #[serde(default)]
    pub ip_forward: Option<bool>,
    /// Foreign drop chains on the forward hook.
    #[serde(default)]
    pub foreign_drop_chains: Vec<ForeignChain>,
    /// Connection tracking entries and their maximum.
    #[serde(default)]
    pub conntrack: Option<(u64, u64)>,
    /// The flowtable fast path is programmed and verified (`None` from agents before it).
    #[serde(default)]
    pub fast_path: Option<bool>,
    /// Its devices, when on.
    #[serde(default)]
    pub fast_path_devices: Vec<String>,
    /// Why it is off, when off.
    #[serde(default)]
    pub fast_path_off: Option<String>,
    /// Problems, in words.
    #[serde(default)]
    pub problems: Vec<String>,
}

impl NatStatus {
    /// 0 healthy, 1 not.
    pub fn exit_code(&self) -> u8 {
        if self.healthy {
            EXIT_OK
        } else {
            EXIT_FAILED
        }
    }

    /// The report as table rows.
    pub fn rows(&self) -> Vec<Row> {
        let yes = |b: bool| if b { "ok" } else { "failed" };
        let mut rows = vec![
            Row::new(
                "nat.ruleset",
                yes(self.ruleset_verified),
                format!(
                    "table ip {} {}; egress {}; VPC {}",
                    self.table,
                    if self.ruleset_verified {
                        "verified"
                    } else {
                        "not as intended"
                    },
                    self.egress_interface.as_deref().unwrap_or("unknown"),
                    if self.vpc_cidrs.is_empty() {
                        "unknown".to_string()
                    } else {
                        self.vpc_cidrs.join(", ")
                    }
                ),
            ),
            Row::new(
                "nat.forwarding",
                yes(self.ip_forward == Some(true)),
                match self.ip_forward {
                    Some(true) => "net.ipv4.ip_forward = 1",
                    Some(false) => "net.ipv4.ip_forward = 0",
                    None => "net.ipv4.ip_forward unreadable",
                },
            ),
        ];
        if let Some((n, max)) = self.conntrack {
            rows.push(Row::new(
                "nat.conntrack",
                "ok",
                format!("{n} of {max} entries"),
            ));
        }
        // Informational: without the fast path the NAT still works, through conntrack alone.
        match (self.fast_path, &self.fast_path_off) {
            (Some(true), _) => rows.push(Row::new(
                "nat.fast_path",
                "ok",
                format!(
                    "flowtable on {} carries established flows",
                    self.fast_path_devices.join(", ")
                ),
            )),
            (Some(false), why) => rows.push(Row::new(
                "nat.fast_path",
                "off",
                format!(
                    "established flows take the full path ({})",
                    why.as_deref().unwrap_or("no reason given")
                ),
            )),
            (None, _) => {}
        }
        for c in &self.foreign_drop_chains {
            rows.push(Row::new(
                "nat.foreign_chain",
                "degraded",
                format!(
                    "{} {} {} (priority {}) drops forwarded packets",
                    c.family, c.table, c.chain, c.priority
                ),
            ));
        }
        for p in &self.problems {
            rows.push(Row::new("nat.problem", "failed", p.clone()));
        }
        rows
    }
}

/// One table row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Check name.
    pub check: String,
    /// Status word.
    pub status: String,
    /// Detail.
    pub message: String,
}

impl Row {
    fn new(check: &str, status: &str, message: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status: status.into(),
            message: message.into(),
        }
    }
}

/// Rows as aligned columns (check, status, message), every value cleaned.
pub fn render_table(rows: &[Row]) -> String {
    let rows: Vec<[String; 3]> = rows
        .iter()
        .map(|r| [clean(&r.check), clean(&r.status), clean(&r.message)])
        .collect();
    let width = |i: usize, head: &str| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head.len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0, "CHECK"), width(1, "STATUS"));
    let mut out = format!("{:<w0$}  {:<w1$}  MESSAGE\n", "CHECK", "STATUS");
    for [c, s, m] in &rows {
        out.push_str(&format!("{c:<w0$}  {s:<w1$}  {m}\n"));
    }
    out
}

/// Output that could not be read as the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Nothing on stdout.
    #[error("the host printed no report")]
    Empty,
    /// SSM cut the output, so the JSON is incomplete.
    #[error("the report was cut at 24,000 characters by SSM and cannot be read")]
    Cut,
    /// Not the expected JSON.
    #[error("the report is not the expected JSON")]
    Json(#[source] serde_json::Error),
}

fn parse<T: serde::de::DeserializeOwned>(stdout: &str) -> Result<T, ReportError> {
    if stdout.trim().is_empty() {
        return Err(ReportError::Empty);
    }
    serde_json::from_str(stdout).map_err(|e| {
        if is_cut(stdout) {
            ReportError::Cut
        } else {
            ReportError::Json(e)
        }
    })
}

/// Reads `clawster-agent health --json`.
pub fn parse_agent_health(stdout: &str) -> Result<AgentHealth, ReportError> {
    parse(stdout)
}

/// Reads `clawster-nat-agent status --json`.
pub fn parse_nat_status(stdout: &str) -> Result<NatStatus, ReportError> {
    parse(stdout)
}

/// What to print and exit with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Text for the terminal.
    pub text: String,
    /// `clawsterctl`'s exit code.
    pub exit_code: u8,
}

fn could_not_check(what: &str, e: &ReportError, stderr: &str) -> Rendered {
    let mut text = format!("could not check {what}: {e}");
    if let ReportError::Json(inner) = e {
        text.push_str(&format!(" ({inner})"));
    }
    if let Some(line) = stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        let line = line.trim().strip_prefix("error: ").unwrap_or(line.trim());
        text.push_str(&format!("; the host said: {}", clean(line)));
    }
    text.push('\n');
    Rendered {
        text,
        exit_code: EXIT_NOT_RUN,
    }
}

/// `clawster-agent health --json`'s stdout and stderr as a table and exit code.
pub fn agent_health(stdout: &str, stderr: &str) -> Rendered {
    match parse_agent_health(stdout) {
        Ok(h) => {
            let rows: Vec<Row> = h
                .checks
                .iter()
                .map(|c| Row::new(&c.check, &c.status, c.message.clone()))
                .collect();
            let mut text = render_table(&rows);
            text.push_str(&format!("overall: {}\n", clean(&h.status)));
            Rendered {
                text,
                exit_code: h.exit_code(),
            }
        }
        Err(e) => could_not_check("the host", &e, stderr),
    }
}

/// `clawster-nat-agent status --json`'s stdout and stderr as a table and exit code.
pub fn nat_status(stdout: &str, stderr: &str) -> Rendered {
    match parse_nat_status(stdout) {
        Ok(s) => {
            let mut text = render_table(&s.rows());
            text.push_str(if s.healthy {
                "overall: ok\n"
            } else {
                "overall: degraded\n"
            });
            Rendered {
                text,
                exit_code: s.exit_code(),
            }
        }
        Err(e) => could_not_check("the NAT instance", &e, stderr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of `clawster-agent health --json --root DIR` on an empty root (shortened).
    const DEGRADED: &str = r#"{
  "status": "degraded",
  "checks": [
    {
      "check": "sysbox.binaries",
      "status": "failed",
      "message": "/usr/bin/sysbox-runc: No such file or directory (os error 2)"
    },
    {
      "check": "sysbox.user",
      "status": "failed",
      "message": "no sysbox user in /etc/passwd"
    },
    {
      "check": "window.units",
      "status": "ok",
      "message": "clawster-window.socket listening; group clawster-window"
    }
  ]
}"#;

    #[test]
    fn agent_health_as_a_table() {
        let r = agent_health(DEGRADED, "");
        assert_eq!(r.exit_code, 1);
        assert_eq!(
            r.text,
            "CHECK            STATUS  MESSAGE\n\
             sysbox.binaries  failed  /usr/bin/sysbox-runc: No such file or directory (os error 2)\n\
             sysbox.user      failed  no sysbox user in /etc/passwd\n\
             window.units     ok      clawster-window.socket listening; group clawster-window\n\
             overall: degraded\n"
        );
        let ok = r#"{"status":"ok","checks":[{"check":"a","status":"ok","message":"m"}],"new":1}"#;
        assert_eq!(agent_health(ok, "").exit_code, 0);
        let unknown = r#"{"status":"unknown","checks":[]}"#;
        assert_eq!(agent_health(unknown, "").exit_code, 2);
    }

    #[test]
    fn unreadable_reports_could_not_check() {
        let r = agent_health(
            "",
            "error: cannot check the live host: connecting to the D-Bus system bus: No such file\n",
        );
        assert_eq!(r.exit_code, 2);
        assert_eq!(
            r.text,
            "could not check the host: the host printed no report; the host said: cannot check the live host: connecting to the D-Bus system bus: No such file\n"
        );
        let r = agent_health("[1,2]", "");
        assert_eq!(r.exit_code, 2);
        assert!(
            r.text
                .starts_with("could not check the host: the report is not the expected JSON ("),
            "{}",
            r.text
        );
        let cut = format!("{{\"status\":\"ok\",\"checks\":[{}", "x".repeat(24_000));
        assert!(agent_health(&cut, "")
            .text
            .contains("cut at 24,000 characters"));
    }

    #[test]
    fn hostile_values_cannot_reach_the_terminal_raw() {
        let evil = r#"{"status":"ok\u001b[2J","checks":[{"check":"x\nforged  ok","status":"ok","message":"\u001b]0;pwned\u0007"}]}"#;
        let r = agent_health(evil, "");
        assert!(
            !r.text.contains('\u{1b}') && !r.text.contains('\u{7}'),
            "{:?}",
            r.text
        );
        assert_eq!(r.text.lines().count(), 3, "{:?}", r.text);
        assert_eq!(r.exit_code, 2, "an unknown overall status is not healthy");
    }

    #[test]
    fn the_agents_own_types_read_back() {
        use clawster_agent::health::{Check, HealthReport};
        use clawster_core::logging::Status;
        let report = HealthReport {
            status: "degraded".into(),
            checks: vec![
                Check {
                    check: "sysbox.units".into(),
                    status: Status::Degraded,
                    message: "sysbox-fs.service inactive".into(),
                },
                Check {
                    check: "docker.runtime".into(),
                    status: Status::Skipped,
                    message: "offline".into(),
                },
            ],
        };
        let json = serde_json::to_string_pretty(&report).expect("json");
        let h = parse_agent_health(&json).expect("reads");
        assert_eq!(h.exit_code(), report.exit_code());
        assert_eq!(h.checks[0].status, "degraded");
        assert_eq!(h.checks[1].check, "docker.runtime");

        let nat = clawster_nat_agent::Report {
            healthy: false,
            table: "clawster_nat".into(),
            egress_interface: Some("ens5".into()),
            vpc_cidrs: vec!["10.0.0.0/16".into()],
            ruleset_verified: true,
            ruleset_changed: false,
            apply_ms: Some(1.5),
            ip_forward: Some(false),
            foreign_drop_chains: vec![clawster_core::nft::BaseChainInfo {
                family: "ip".into(),
                table: "filter".into(),
                chain: "FORWARD".into(),
                kind: "filter".into(),
                hook: 2,
                priority: 0,
                policy_drop: true,
            }],
            conntrack: Some((12, 65536)),
            fast_path: false,
            fast_path_devices: Vec::new(),
            fast_path_off: Some("disabled by --no-fast-path".into()),
            problems: vec!["IP forwarding is off".into()],
        };
        let json = serde_json::to_string_pretty(&nat).expect("json");
        let s = parse_nat_status(&json).expect("reads");
        assert_eq!(s.foreign_drop_chains[0].chain, "FORWARD");
        assert_eq!(s.conntrack, Some((12, 65536)));
        let r = nat_status(&json, "");
        assert_eq!(r.exit_code, 1);
        assert_eq!(
            r.text,
            "CHECK              STATUS    MESSAGE\n\
             nat.ruleset        ok        table ip clawster_nat verified; egress ens5; VPC 10.0.0.0/16\n\
             nat.forwarding     failed    net.ipv4.ip_forward = 0\n\
             nat.conntrack      ok        12 of 65536 entries\n\
             nat.fast_path      off       established flows take the full path (disabled by --no-fast-path)\n\
             nat.foreign_chain  degraded  ip filter FORWARD (priority 0) drops forwarded packets\n\
             nat.problem        failed    IP forwarding is off\n\
             overall: degraded\n"
        );
    }

    #[test]
    fn nat_status_failures() {
        let r = nat_status(
            "",
            "error: open nf_tables netlink socket (needs CAP_NET_ADMIN): Operation not permitted\n",
        );
        assert_eq!(r.exit_code, 2);
        assert!(r.text.contains("could not check the NAT instance"));
        assert!(r.text.contains("needs CAP_NET_ADMIN"));
        let healthy =
            r#"{"healthy":true,"table":"clawster_nat","ruleset_verified":true,"ip_forward":true}"#;
        let r = nat_status(healthy, "");
        assert_eq!(r.exit_code, 0);
        assert!(r.text.ends_with("overall: ok\n"));
        assert!(
            !r.text.contains("nat.fast_path"),
            "an older agent says nothing of it"
        );
        let on = r#"{"healthy":true,"table":"clawster_nat","ruleset_verified":true,"ip_forward":true,"fast_path":true,"fast_path_devices":["ens5"]}"#;
        let r = nat_status(on, "");
        assert_eq!(r.exit_code, 0);
        assert!(
            r.text
                .contains("nat.fast_path   ok      flowtable on ens5 carries established flows"),
            "{}",
            r.text
        );
    }
}
