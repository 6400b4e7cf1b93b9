//! The shared stack's SSM documents: maintenance windows (`WindowDocument`) and read-only
//! operations (`OpsDocument`: health, NAT status, logs, the bots' state sync and restore), run on
//! hosts through SSM Run Command.

use serde_json::{json, Map, Value};

use crate::cfn::{self, resource, sub, Resources};
use crate::ops::{reads, state as state_ops, window as window_ops};
use crate::userdata;

/// One document parameter: a string reaching the script as the environment variable
/// `SSM_<name>` (`interpolationType: ENV_VAR`, SSM Agent 3.3.2746.0 or later), never pasted into
/// its text, and constrained by `allowedPattern` (and `allowedValues` for a fixed list).
fn parameter(
    description: &str,
    default: Option<&str>,
    pattern: &str,
    values: Option<&[&str]>,
) -> Value {
    let mut p = Map::new();
    p.insert("type".into(), json!("String"));
    p.insert("description".into(), json!(description));
    if let Some(d) = default {
        p.insert("default".into(), json!(d));
    }
    if let Some(v) = values {
        p.insert("allowedValues".into(), json!(v));
    }
    p.insert("allowedPattern".into(), json!(pattern));
    p.insert("interpolationType".into(), json!("ENV_VAR"));
    Value::Object(p)
}

/// The pattern of `name` among a document's patterns.
fn pattern_of(patterns: &[(&'static str, String)], name: &str) -> String {
    patterns
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("no pattern for {name}"))
}

/// The script's first lines: strict shell, and a clear refusal on an SSM Agent that would paste
/// parameters into the text instead of passing them as environment variables.
const SCRIPT_PRELUDE: [&str; 2] = [
    "set -eu",
    "printenv SSM_action >/dev/null || { echo 'this document needs SSM Agent 3.3.2746.0 or later (parameters as environment variables)' >&2; exit 1; }",
];

/// The `Content` of the maintenance-window SSM document.
///
/// Parameters are passed to the script as environment variables and never pasted into its text,
/// and each one is constrained by `allowedPattern`, so no operator string is ever parsed by the
/// shell; the script is constant and hands each value to the agent as one `--option=VALUE`
/// argument (so even a reason starting with `-` stays a value). The patterns are rendered from
/// the agent's own rules (`clawster_core::window_rules`): they admit exactly the wire form
/// `clawsterctl` sends ([`crate::ops::window::WindowArgs`]).
pub fn window_document() -> Value {
    let agent = userdata::AGENT_PATH;
    let p = window_ops::patterns();
    let mut script: Vec<String> = SCRIPT_PRELUDE.iter().map(|s| s.to_string()).collect();
    script.extend([
        "case \"$SSM_action\" in".to_string(),
        format!("  open) exec {agent} window open \"--pkgs=$SSM_pkgs\" \"--ttl=$SSM_ttl\" \"--reason=$SSM_reason\" ;;"),
        format!("  close) exec {agent} window close ;;"),
        format!("  status) if [ \"${{SSM_format:-text}}\" = json ]; then exec {agent} window status --json; fi; exec {agent} window status ;;"),
        "  *) echo \"unknown action\" >&2; exit 2 ;;".to_string(),
        "esac".to_string(),
    ]);
    json!({
        "schemaVersion": "2.2",
        "description": "Clawster package maintenance window on a bot host: runs `clawster-agent window open|close|status` as root. Open allows the listed packages (comma-separated, e.g. nginx,htop) for the given time (e.g. 10m, at most 4h).",
        "parameters": {
            "action": parameter("open, close or status", None, &pattern_of(&p, "action"), Some(&window_ops::ACTIONS)),
            "pkgs": parameter(
                "open only: comma-separated package names the window allows (at most 20), e.g. nginx,htop",
                Some(""),
                &pattern_of(&p, "pkgs"),
                None,
            ),
            "ttl": parameter(
                "open only: how long the window stays open, 5s to 4h, a number with unit s, m or h, e.g. 10m",
                Some(""),
                &pattern_of(&p, "ttl"),
                None,
            ),
            "reason": parameter(
                "open only: why, recorded in the audit record (at most 200 printable characters)",
                Some(""),
                &pattern_of(&p, "reason"),
                None,
            ),
            "format": parameter("status only: text or json", Some("text"), &pattern_of(&p, "format"), Some(&window_ops::FORMATS))
        },
        "mainSteps": [{
            "action": "aws:runShellScript",
            "name": "window",
            "precondition": { "StringEquals": ["platformType", "Linux"] },
            "inputs": {
                "timeoutSeconds": "300",
                "runCommand": script
            }
        }]
    })
}

/// Every `action` of the operations document: the reads, then the state commands.
pub fn ops_actions() -> Vec<&'static str> {
    reads::ACTIONS
        .iter()
        .chain(state_ops::ACTIONS.iter())
        .copied()
        .collect()
}

/// The operations document's `allowedPattern`s, by parameter.
pub fn ops_patterns() -> [(&'static str, String); 3] {
    [
        ("action", window_ops::one_of(&ops_actions())),
        ("since", reads::since_pattern()),
        ("at", crate::state::time::at_pattern()),
    ]
}

/// Seconds the operations document's step may run: a restore downloads the bot's whole state.
pub const OPS_TIMEOUT_SECONDS: u32 = 900;

/// The `Content` of the operations SSM document: commands on a bot host or the NAT instance,
/// each with bounded output (SSM keeps 24,000 characters of stdout).
///
/// - `health`: `clawster-agent health --json` (bot host);
/// - `nat-status`: `clawster-nat-agent status --json` (NAT instance);
/// - `logs`: the agent's journal records since `since` ago, as JSON lines, newest first, at most
///   [`reads::LOG_LINES`], only the fields `clawsterctl` shows;
/// - `window-logs`: the same for the window's audit records only;
/// - `state-sync`, `state-status`: `clawster-agent state sync|status --json` (bot host);
/// - `state-restore`: `clawster-agent state restore --at=AT --json`, refused here without `at`.
///
/// Like the window document: constant script, parameters as environment variables with
/// `allowedPattern`s, `since` handed to journalctl as one `--since=-VALUE` argument and `at` to
/// the agent as one `--at=VALUE` argument.
pub fn ops_document() -> Value {
    let agent = userdata::AGENT_PATH;
    let nat = userdata::NAT_AGENT_PATH;
    let p = ops_patterns();
    let journal = reads::journalctl_args().join(" ");
    let since = "\"--since=-$SSM_since\"";
    let mut script: Vec<String> = SCRIPT_PRELUDE.iter().map(|s| s.to_string()).collect();
    script.extend([
        "case \"$SSM_action\" in".to_string(),
        format!("  health) exec {agent} health --json ;;"),
        format!("  nat-status) exec {nat} status --json ;;"),
        format!("  logs) exec {journal} {since} ;;"),
        format!(
            "  window-logs) exec {journal} {since} {} ;;",
            reads::window_matches().join(" ")
        ),
        format!("  state-sync) exec {agent} state sync --json ;;"),
        format!("  state-status) exec {agent} state status --json ;;"),
        format!("  state-restore) [ -n \"${{SSM_at:-}}\" ] || {{ echo \"state-restore needs the at parameter\" >&2; exit 2; }}; exec {agent} state restore \"--at=$SSM_at\" --json ;;"),
        "  *) echo \"unknown action\" >&2; exit 2 ;;".to_string(),
        "esac".to_string(),
    ]);
    json!({
        "schemaVersion": "2.2",
        "description": "Clawster operations: `health` (clawster-agent health --json on a bot host), `nat-status` (clawster-nat-agent status --json on the NAT instance), `logs` and `window-logs` (the agent's journal records, or only the maintenance window's audit records, since the given time, as JSON lines, newest first), all read-only; `state-sync`, `state-status` and `state-restore` (clawster-agent state sync|status|restore --json on a bot host: take a sync of the bot's state now, show replication, or restore the state as of `at` while the bot's task is stopped).",
        "parameters": {
            "action": parameter("health, nat-status, logs, window-logs, state-sync, state-restore or state-status", None, &pattern_of(&p, "action"), Some(ops_actions().as_slice())),
            "since": parameter(
                "logs and window-logs: how far back, a number (1-9999) with unit s, m, h or d, e.g. 30m",
                Some(reads::DEFAULT_SINCE),
                &pattern_of(&p, "since"),
                None,
            ),
            "at": parameter(
                "state-restore only: the time to restore the state as of, in UTC as YYYY-MM-DDTHH:MM:SSZ, e.g. 2026-12-07T09:30:00Z",
                Some(""),
                &pattern_of(&p, "at"),
                None,
            )
        },
        "mainSteps": [{
            "action": "aws:runShellScript",
            "name": "ops",
            "precondition": { "StringEquals": ["platformType", "Linux"] },
            "inputs": {
                "timeoutSeconds": OPS_TIMEOUT_SECONDS.to_string(),
                "runCommand": script
            }
        }]
    })
}

/// Adds the two SSM documents.
pub(super) fn build(res: &mut Resources) {
    res.add(
        "WindowDocument",
        resource(
            "AWS::SSM::Document",
            json!({
                "DocumentType": "Command",
                "DocumentFormat": "JSON",
                "TargetType": "/AWS::EC2::Instance",
                "Content": window_document(),
                "Tags": cfn::tags(sub("${AWS::StackName}-window"))
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "OpsDocument",
        resource(
            "AWS::SSM::Document",
            json!({
                "DocumentType": "Command",
                "DocumentFormat": "JSON",
                "TargetType": "/AWS::EC2::Instance",
                "Content": ops_document(),
                "Tags": cfn::tags(sub("${AWS::StackName}-ops"))
            }),
            &[],
            &[],
        ),
    );
}
