//! Control `secrets` [seed 000: no tokens in the image; a Telegram token lives in a file only
//! openclaw can read]: the config holds no inline credential (only SecretRefs and token files),
//! and every token file it names is a regular file, 0600, owned by openclaw.
//!
//! OpenClaw does not check the mode or owner of `channels.telegram.tokenFile` itself (its `file`
//! SecretRef provider does), so the host enforces it. Apply fixes owners and modes; inline tokens
//! are moved into files by [`super::gateway`] before the config is written. Whether any token is
//! left anywhere in an image is `prepare-image`'s scan ([`super::scan`]).

use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use clawster_core::fs::{HostRoot, Ownership, WriteOutcome};

use super::gateway::get_path;
use super::{user_ids, ApplyReport, BaselineError, Ctx, Finding, CONFIG, GATEWAY_TOKEN, USER};

const ID: &str = "secrets";

fn config(root: &HostRoot) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(root.path(CONFIG)).ok()?).ok()
}

/// Token files the config names (gateway token, Telegram token files of the channel and its
/// accounts, `file` secret providers).
pub fn token_files(doc: &Value) -> Vec<String> {
    let mut out = vec![GATEWAY_TOKEN.to_string()];
    let mut add = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str) {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
    };
    add(get_path(doc, "channels.telegram.tokenFile"));
    if let Some(accts) = get_path(doc, "channels.telegram.accounts").and_then(Value::as_object) {
        for a in accts.values() {
            add(a.get("tokenFile"));
        }
    }
    if let Some(p) = get_path(doc, "secrets.providers").and_then(Value::as_object) {
        for prov in p.values() {
            if prov.get("source").and_then(Value::as_str) == Some("file") {
                add(prov.get("path"));
            }
        }
    }
    out
}

/// Dotted paths of string values whose key names a credential (token, apiKey, secret, password).
pub fn inline_credentials(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let key = k.to_ascii_lowercase().replace(['_', '-'], "");
                    let named = key.ends_with("token")
                        || key.ends_with("apikey")
                        || key.ends_with("secret")
                        || key.ends_with("password");
                    if named && v.as_str().is_some_and(|s| !s.trim().is_empty()) {
                        out.push(p);
                    } else {
                        walk(v, &p, out);
                    }
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, "", &mut out);
    out
}

/// Fixes owner and mode of every token file that exists.
pub fn apply(ctx: &Ctx<'_>, rep: &mut ApplyReport) -> Result<(), BaselineError> {
    let (uid, gid) = user_ids(&ctx.root, USER)
        .ok_or_else(|| BaselineError::Other("user openclaw does not exist".into()))?;
    let doc = config(&ctx.root).unwrap_or(Value::Null);
    let mut o = WriteOutcome::Unchanged;
    let mut seen = Vec::new();
    for f in token_files(&doc) {
        let p = ctx.root.path(&f);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if !m.is_file() {
            return Err(BaselineError::Other(format!(
                "token file {f} is not a regular file (OpenClaw refuses symlinks): replace it with the token itself"
            )));
        }
        seen.push(f.clone());
        let bytes =
            std::fs::read(&p).map_err(|e| clawster_core::fs::FsError::new("read", &p, e))?;
        o = o.or(clawster_core::fs::write_atomic(
            &p,
            &bytes,
            Ownership {
                mode: 0o600,
                uid,
                gid,
            },
        )?);
    }
    let inline = inline_credentials(&doc);
    if !inline.is_empty() {
        rep.record(
            ID,
            clawster_core::logging::Status::Failed,
            format!(
                "inline credentials in {CONFIG}: {} (move each into a file SecretRef)",
                inline.join(", ")
            ),
        );
        return Ok(());
    }
    rep.outcome(
        ID,
        o,
        if seen.is_empty() {
            "no token files yet; no inline credentials in the config".to_string()
        } else {
            format!(
                "{} 0600 openclaw; no inline credentials in the config",
                seen.join(", ")
            )
        },
    );
    Ok(())
}

/// No inline credentials; token files owner-only for openclaw.
pub fn audit(ctx: &Ctx<'_>) -> Finding {
    let fix = "clawster-agent baseline apply (moves inline tokens into 0600 files and fixes modes)";
    let Some(doc) = config(&ctx.root) else {
        return Finding::failed(ID, format!("{CONFIG} missing or not JSON"), fix);
    };
    let uid = user_ids(&ctx.root, USER).map(|(u, _)| u);
    let mut problems: Vec<String> = inline_credentials(&doc)
        .into_iter()
        .map(|p| format!("inline credential at {p} in {CONFIG}"))
        .collect();
    let mut files = Vec::new();
    for f in token_files(&doc) {
        if let Ok(m) = std::fs::symlink_metadata(ctx.root.path(&f)) {
            if !m.is_file() {
                problems.push(format!("{f} is not a regular file"));
            } else if m.mode() & 0o7777 != 0o600 || Some(m.uid()) != uid {
                problems.push(format!(
                    "{f} is {:o} uid {}, expected 0600 openclaw",
                    m.mode() & 0o7777,
                    m.uid()
                ));
            } else {
                files.push(f);
            }
        }
    }
    Finding::from_problems(
        ID,
        format!(
            "no inline credentials in {CONFIG}; token files owner-only: {}",
            if files.is_empty() {
                "none yet".to_string()
            } else {
                files.join(", ")
            }
        ),
        &problems,
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_inline_credentials_but_not_refs() {
        let d = json!({
            "gateway": {"auth": {"mode": "token", "token": {"source": "file", "provider": "gwtoken", "id": "value"}}},
            "channels": {"telegram": {"botToken": "123:abc", "tokenFile": "/x"}},
            "models": {"providers": [{"api_key": "sk-1"}, {"apiKey": ""}]},
        });
        assert_eq!(
            inline_credentials(&d),
            vec!["channels.telegram.botToken", "models.providers[0].api_key"]
        );
        assert!(token_files(&d).contains(&"/x".to_string()));
    }
}
