//! The bot's replicated state in the shared artifacts bucket, from ctl's side (issue 19).
//!
//! `clawster-agent state` on the bot host replicates the bot's state directory to the region's
//! artifacts bucket (versioned, SSE-KMS) under the bot's own prefix, and restores it on a new
//! host before the bot's task may start. The layout is the contract between the agent and ctl:
//!
//! | key | written by | what |
//! |---|---|---|
//! | `state/<bot>/manifest.json` | agent | the current consistent generation: `{"version":1,"bot","instance","generation","taken_at","files"}` |
//! | `state/<bot>/blobs/<sha256>` | agent | content-addressed file contents |
//! | `state/<bot>/lease.json` | agent | the one writer: `{"instance","renewed_at","released"}` |
//! | `state/<bot>/init.json` | ctl, first deploy only | `{"version":1,"bot","created_at"}`: starting empty is intended |
//!
//! Without `init.json` and without a manifest the agent refuses to start the bot ("replica
//! missing"), so a lost replica never turns silently into a fresh bot.
//!
//! Retention: the bucket keeps every overwritten or deleted state object as a noncurrent version
//! for [`RETENTION_DAYS`] (the shared stack's lifecycle rule), which bounds an idle bot's growth
//! and is how far back `clawsterctl restore --at` reaches. `destroy` deletes the current objects
//! (they stay restorable that long); `destroy --delete-state` deletes every version at once.
//!
//! This module is pure (keys, bodies, parsing); [`bucket`] makes the S3 calls.

pub mod bucket;
pub mod time;

use serde::Deserialize;
use serde_json::json;

use crate::names::BotName;

/// The top-level prefix of every bot's state in the artifacts bucket.
pub const STATE_PREFIX: &str = "state";
/// Days a replaced or deleted state object stays restorable (noncurrent version expiry).
pub const RETENTION_DAYS: u32 = 14;
/// The layout version of `init.json` and `manifest.json`.
pub const LAYOUT_VERSION: u32 = 1;

/// `state/<bot>/`: everything of one bot, and nothing of another (IAM scopes the host to it).
pub fn prefix(bot: &BotName) -> String {
    format!("{STATE_PREFIX}/{bot}/")
}

/// `state/<bot>/manifest.json`.
pub fn manifest_key(bot: &BotName) -> String {
    format!("{}manifest.json", prefix(bot))
}

/// `state/<bot>/init.json`.
pub fn init_key(bot: &BotName) -> String {
    format!("{}init.json", prefix(bot))
}

/// The body of `init.json` for a bot deployed for the first time at `created_at` (RFC3339).
pub fn init_body(bot: &BotName, created_at: &str) -> String {
    json!({ "version": LAYOUT_VERSION, "bot": bot.as_str(), "created_at": created_at }).to_string()
}

/// What ctl reads of a manifest: which generation, taken when.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ManifestSummary {
    /// Layout version.
    pub version: u32,
    /// The bot it belongs to.
    pub bot: String,
    /// The generation number.
    pub generation: u64,
    /// When it was taken (RFC3339).
    pub taken_at: String,
}

/// A manifest that does not have the contract's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or a field is missing.
    #[error("{key} is not a state manifest: {why}")]
    Shape {
        /// The object's key.
        key: String,
        /// What was wrong.
        why: String,
    },
    /// Another layout version than this ctl knows.
    #[error("{key} has layout version {version}; this clawsterctl knows version {LAYOUT_VERSION}")]
    Version {
        /// The object's key.
        key: String,
        /// Its version.
        version: u32,
    },
    /// It names another bot.
    #[error("{key} belongs to bot {found:?}, not {expected}")]
    Bot {
        /// The object's key.
        key: String,
        /// The bot it names.
        found: String,
        /// The bot asked for.
        expected: String,
    },
    /// `taken_at` is not a time.
    #[error("{key}: taken_at {0:?} is not an RFC3339 time", .value)]
    Time {
        /// The object's key.
        key: String,
        /// The value.
        value: String,
    },
}

/// Reads a manifest's summary; `unix` is `taken_at` in seconds since the epoch.
pub fn parse_manifest(bot: &BotName, body: &[u8]) -> Result<(ManifestSummary, i64), ManifestError> {
    let key = manifest_key(bot);
    let m: ManifestSummary = serde_json::from_slice(body).map_err(|e| ManifestError::Shape {
        key: key.clone(),
        why: e.to_string(),
    })?;
    if m.version != LAYOUT_VERSION {
        return Err(ManifestError::Version {
            key,
            version: m.version,
        });
    }
    if m.bot != bot.as_str() {
        return Err(ManifestError::Bot {
            key,
            found: crate::ops::clean(&m.bot),
            expected: bot.to_string(),
        });
    }
    let unix = time::parse_rfc3339(&m.taken_at).ok_or_else(|| ManifestError::Time {
        key,
        value: crate::ops::clean(&m.taken_at),
    })?;
    Ok((m, unix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(s: &str) -> BotName {
        s.parse().expect("bot")
    }

    #[test]
    fn keys_stay_under_the_bots_prefix() {
        let b = bot("demo");
        assert_eq!(prefix(&b), "state/demo/");
        assert_eq!(manifest_key(&b), "state/demo/manifest.json");
        assert_eq!(init_key(&b), "state/demo/init.json");
        // A bot whose name extends another's has a prefix of its own.
        assert!(!manifest_key(&bot("demo2")).starts_with(&prefix(&b)));
        let v: serde_json::Value =
            serde_json::from_str(&init_body(&b, "2026-12-07T12:00:00Z")).expect("json");
        assert_eq!(
            v,
            json!({"version": 1, "bot": "demo", "created_at": "2026-12-07T12:00:00Z"})
        );
    }

    #[test]
    fn manifests_are_checked() {
        let b = bot("demo");
        let good = br#"{"version":1,"bot":"demo","instance":"i-0abc","generation":42,"taken_at":"2026-12-07T11:59:30Z","files":[]}"#;
        let (m, unix) = parse_manifest(&b, good).expect("manifest");
        assert_eq!(m.generation, 42);
        assert_eq!(unix, 1_796_644_770);
        let e = parse_manifest(&b, b"not json").expect_err("shape");
        assert!(e
            .to_string()
            .starts_with("state/demo/manifest.json is not a state manifest"));
        let v2 = String::from_utf8_lossy(good).replace("\"version\":1", "\"version\":2");
        let e = parse_manifest(&b, v2.as_bytes()).expect_err("version");
        assert!(e.to_string().contains("layout version 2"), "{e}");
        let other = String::from_utf8_lossy(good).replace("\"demo\"", "\"other\"");
        let e = parse_manifest(&b, other.as_bytes()).expect_err("bot");
        assert!(e.to_string().contains("belongs to bot \"other\""), "{e}");
        let t = String::from_utf8_lossy(good).replace("2026-12-07T11:59:30Z", "yesterday");
        let e = parse_manifest(&b, t.as_bytes()).expect_err("time");
        assert!(e.to_string().contains("\"yesterday\""), "{e}");
    }
}
