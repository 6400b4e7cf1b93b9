//! The bot's OpenClaw configuration: the operator's file merged with the settings ctl owns.
//!
//! The operator brings the model provider, keys and channels (`--openclaw-config FILE`, a JSON
//! object); ctl owns what the deployment's safety rests on ([`crate::openclaw::config`]: gateway
//! mode, LAN bind behind the load balancer, trusted proxies, token auth, the sandbox, the web
//! terminal off, no unasked traffic). A file that sets an owned key to another value is refused
//! with the key named, never silently overridden: the operator would otherwise believe a setting
//! is in force that is not. The merged document holds the operator's secrets, so it goes only to
//! Secrets Manager: no error or output ever quotes a value from it.

use std::path::Path;

use serde_json::{Map, Value};

use crate::names::GatewayPort;

/// Subtrees ctl owns whole: the operator may not add keys under them.
const OWNED_SUBTREES: [(&str, &str); 2] = [
    (
        "gateway.auth",
        "clawsterctl generates the gateway token once and keeps it in the configuration secret across deploys",
    ),
    (
        "gateway.trustedProxies",
        "only the VPC's load balancer may set X-Forwarded-For",
    ),
];

/// Why an owned key is owned, for the refusal message.
fn why(path: &str) -> &'static str {
    for (owned, why) in OWNED_SUBTREES {
        if path == owned || path.starts_with(&format!("{owned}.")) {
            return why;
        }
    }
    match path {
        "gateway.mode" | "gateway.bind" | "gateway.port" => {
            "the load balancer reaches the gateway on the task's LAN address at this port"
        }
        "gateway.terminal.enabled" => "the operator terminal is a shell in the browser",
        "agents.defaults.sandbox.mode" => {
            "every session's tools run in a Sysbox sandbox behind the docker guard"
        }
        _ => "the deployment sends no traffic the operator did not ask for",
    }
}

/// The operator's file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("cannot read --openclaw-config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Not JSON, or JSON that is not an object. Only the position is reported, never content.
    #[error("--openclaw-config {path} is not valid JSON (line {line}, column {column}): the file must hold one JSON object")]
    Syntax {
        /// The file.
        path: String,
        /// Where the parser stopped.
        line: usize,
        /// Where the parser stopped.
        column: usize,
    },
    /// Valid JSON of the wrong shape.
    #[error("--openclaw-config {path} holds a JSON {found}, not an object: the file must hold one JSON object such as {{\"models\": {{...}}, \"channels\": {{...}}}}")]
    NotObject {
        /// The file.
        path: String,
        /// What it holds.
        found: &'static str,
    },
    /// Sets an owned key differently.
    #[error("--openclaw-config {path} sets {key}, which clawsterctl owns ({why}); remove {key} from the file")]
    Owned {
        /// The file.
        path: String,
        /// The dotted key.
        key: String,
        /// Why ctl owns it.
        why: &'static str,
    },
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reads the operator's file (`None`: an empty object) and merges it with the owned settings.
pub fn load(file: Option<&Path>, port: GatewayPort, vpc_cidr: &str) -> Result<Value, ConfigError> {
    let owned = crate::openclaw::config(port, vpc_cidr);
    let Some(file) = file else {
        return Ok(owned);
    };
    let shown = file.display().to_string();
    let text = std::fs::read(file).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let operator: Value = serde_json::from_slice(&text).map_err(|e| ConfigError::Syntax {
        path: shown.clone(),
        line: e.line(),
        column: e.column(),
    })?;
    merge(&shown, operator, owned)
}

/// Merges `operator` into `owned`; refuses any owned key the operator sets differently.
pub fn merge(path: &str, operator: Value, owned: Value) -> Result<Value, ConfigError> {
    let Value::Object(op) = operator else {
        return Err(ConfigError::NotObject {
            path: path.to_string(),
            found: kind(&operator),
        });
    };
    let Value::Object(mut out) = owned else {
        return Ok(Value::Object(op));
    };
    merge_into(path, "", op, &mut out)?;
    Ok(Value::Object(out))
}

fn merge_into(
    file: &str,
    prefix: &str,
    op: Map<String, Value>,
    owned: &mut Map<String, Value>,
) -> Result<(), ConfigError> {
    for (k, v) in op {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let refuse = || ConfigError::Owned {
            path: file.to_string(),
            key: key.clone(),
            why: why(&key),
        };
        let subtree_owned = OWNED_SUBTREES
            .iter()
            .any(|(o, _)| key == *o || key.starts_with(&format!("{o}.")));
        match owned.get_mut(&k) {
            None => {
                if subtree_owned {
                    return Err(refuse());
                }
                owned.insert(k, v);
            }
            Some(mine) => {
                if *mine == v {
                    continue;
                }
                match (mine, v) {
                    (Value::Object(m), Value::Object(o)) => merge_into(file, &key, o, m)?,
                    _ => return Err(refuse()),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owned() -> Value {
        crate::openclaw::config(GatewayPort::DEFAULT, "10.0.0.0/16")
    }

    #[test]
    fn operator_settings_are_added() {
        let op = json!({
            "models": { "providers": { "anthropic": { "apiKey": "sk-ant-secret" } } },
            "channels": { "telegram": { "enabled": true } },
            "gateway": { "controlUi": { "enabled": true } }
        });
        let m = merge("f", op, owned()).unwrap();
        assert_eq!(m["channels"]["telegram"]["enabled"], true);
        assert_eq!(m["gateway"]["controlUi"]["enabled"], true);
        assert_eq!(m["gateway"]["bind"], "lan");
        assert_eq!(m["gateway"]["terminal"]["enabled"], false);
    }

    #[test]
    fn equal_owned_values_are_fine() {
        let op = json!({ "gateway": { "mode": "local", "auth": { "mode": "token" } } });
        assert!(merge("f", op, owned()).is_ok());
    }

    #[test]
    fn contradictions_are_refused_by_key_without_the_value() {
        for (op, key) in [
            (json!({ "gateway": { "bind": "loopback" } }), "gateway.bind"),
            (
                json!({ "gateway": { "terminal": { "enabled": true } } }),
                "gateway.terminal.enabled",
            ),
            (
                json!({ "gateway": { "auth": { "token": "s3cr3t-value" } } }),
                "gateway.auth.token",
            ),
            (
                json!({ "gateway": { "auth": { "mode": "none" } } }),
                "gateway.auth.mode",
            ),
            (
                json!({ "gateway": { "trustedProxies": ["0.0.0.0/0"] } }),
                "gateway.trustedProxies",
            ),
            (json!({ "gateway": "s3cr3t-value" }), "gateway"),
            (
                json!({ "update": { "checkOnStart": true } }),
                "update.checkOnStart",
            ),
            (
                json!({ "agents": { "defaults": { "sandbox": { "mode": "off" } } } }),
                "agents.defaults.sandbox.mode",
            ),
        ] {
            let e = merge("oc.json", op, owned()).unwrap_err().to_string();
            assert!(e.contains(&format!("sets {key},")), "{e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn not_an_object_is_refused() {
        for (v, what) in [
            (json!([1]), "array"),
            (json!("x"), "string"),
            (json!(null), "null"),
        ] {
            let e = merge("oc.json", v, owned()).unwrap_err().to_string();
            assert!(e.contains(&format!("holds a JSON {what}")), "{e}");
        }
    }

    #[test]
    fn syntax_errors_give_a_position_but_no_content() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("oc.json");
        std::fs::write(&f, "{\"apiKey\": \"sk-live-123\",\n oops}").unwrap();
        let e = load(Some(&f), GatewayPort::DEFAULT, "10.0.0.0/16")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("sk-live"), "{e}");
        let missing = load(
            Some(&dir.path().join("nope.json")),
            GatewayPort::DEFAULT,
            "10.0.0.0/16",
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("cannot read --openclaw-config"),
            "{missing}"
        );
    }
}
