//! The replica's layout in the bucket, and the manifest that makes one generation of it whole.
//!
//! Under `state/<bot>/` in the shared (versioned, SSE) bucket:
//! - `files/<path>`: one object per replicated file, overwritten when the file changes. S3
//!   versioning keeps the history; the bucket's lifecycle expires noncurrent versions after the
//!   retention, so an idle bot's replica does not grow at all and a busy one's is bounded.
//! - `manifest.json`: the current generation: every file with its size, SHA256, owner, mode and
//!   the S3 version id of its object. It is written only after every object it names is stored,
//!   so a restore from any manifest version is consistent. Restoring "as of TIME" takes the
//!   manifest version current at TIME. (A file version outlives every manifest that names it:
//!   it turns noncurrent only when a later manifest names its successor.)
//! - `lease.json`: which host may write (see [`super::lease`]).
//! - `init.json`: written by `clawsterctl deploy` for a new bot: starting with empty state is
//!   intended. Without it and without a manifest, nothing starts.

use serde::{Deserialize, Serialize};

/// Format version of the manifest.
pub const VERSION: u32 = 1;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A directory (restored with its owner and mode).
    Dir,
    /// A regular file, copied as it is.
    File,
    /// A SQLite database, copied through a consistent snapshot (`VACUUM INTO`).
    Sqlite,
    /// A symbolic link (its target text).
    Symlink,
}

/// One replicated path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the state directory, `/`-separated, never `..` or absolute.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes of the content (files and databases).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// SHA256 of the content (files and databases), hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// The S3 version id of its object (files and databases).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version_id: String,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One consistent generation of the replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`VERSION`].
    pub version: u32,
    /// The bot.
    pub bot: String,
    /// The host that wrote it.
    pub instance: String,
    /// Increases by one per written generation.
    pub generation: u64,
    /// When it was taken (`2026-12-07T12:00:00Z`).
    pub taken_at: String,
    /// The state directory's own owner and mode (a new host makes it so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Owner>,
    /// Every replicated path, sorted.
    pub files: Vec<Entry>,
}

/// An owner and permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

impl Manifest {
    /// Parses and checks a manifest: the version, the bot, and that every path is relative and
    /// stays inside the state directory.
    pub fn parse(bytes: &[u8], bot: &str) -> Result<Self, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
        if m.version != VERSION {
            return Err(format!(
                "manifest version {} (this agent reads {VERSION})",
                m.version
            ));
        }
        if m.bot != bot {
            return Err(format!("manifest of bot {:?}, not {bot:?}", m.bot));
        }
        for e in &m.files {
            check_path(&e.path)?;
            let content = matches!(e.kind, Kind::File | Kind::Sqlite);
            if content && (e.sha256.len() != 64 || e.version_id.is_empty()) {
                return Err(format!("{}: no SHA256 or version id", e.path));
            }
        }
        Ok(m)
    }

    /// The content entries' total size.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|e| e.size).sum()
    }
}

/// Refuses paths that could leave the state directory.
pub fn check_path(path: &str) -> Result<(), String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(format!("unsafe path {path:?} in the manifest"))
    } else {
        Ok(())
    }
}

/// Keys of one bot's replica.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys under `state/<bot>/`.
    pub fn new(bot: &str) -> Self {
        Self {
            prefix: format!("state/{bot}/"),
        }
    }
    /// `state/<bot>/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The manifest.
    pub fn manifest(&self) -> String {
        format!("{}manifest.json", self.prefix)
    }
    /// The lease.
    pub fn lease(&self) -> String {
        format!("{}lease.json", self.prefix)
    }
    /// The new-bot marker ctl writes.
    pub fn init(&self) -> String {
        format!("{}init.json", self.prefix)
    }
    /// The object of a replicated file.
    pub fn file(&self, path: &str) -> String {
        format!("{}files/{path}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::File,
            uid: 1000,
            gid: 1000,
            mode: 0o600,
            size: 3,
            sha256: "a".repeat(64),
            version_id: "v1".into(),
            target: String::new(),
        }
    }

    fn manifest(files: Vec<Entry>) -> Vec<u8> {
        serde_json::to_vec(&Manifest {
            version: VERSION,
            bot: "bot".into(),
            instance: "i-1".into(),
            generation: 1,
            taken_at: "2026-12-07T12:00:00Z".into(),
            root: None,
            files,
        })
        .unwrap()
    }

    #[test]
    fn refuses_paths_that_leave_the_directory() {
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a/../../b",
            "",
        ] {
            let err = Manifest::parse(&manifest(vec![entry(bad)]), "bot").unwrap_err();
            assert!(err.contains("unsafe path"), "{bad}: {err}");
        }
        assert!(Manifest::parse(&manifest(vec![entry("state/openclaw.sqlite")]), "bot").is_ok());
    }

    #[test]
    fn refuses_another_bots_manifest_and_torn_entries() {
        let err = Manifest::parse(&manifest(vec![]), "other").unwrap_err();
        assert!(err.contains("not \"other\""), "{err}");
        let mut torn = entry("credentials/creds.json");
        torn.version_id.clear();
        let err = Manifest::parse(&manifest(vec![torn]), "bot").unwrap_err();
        assert!(err.contains("no SHA256 or version id"), "{err}");
        let err = Manifest::parse(b"{\"version\":1", "bot").unwrap_err();
        assert!(err.contains("not a manifest"), "{err}");
    }
}
