//! What is replicated, and how each file is read consistently.
//!
//! The whole state directory, except what is scratch, cannot be copied or has a better source:
//! `tmp/`, `logs/`, `cache/`, `.cache/`, SQLite's `-wal`, `-shm` and `-journal` files, sockets
//! and FIFOs, and the top-level `openclaw.json` the bot image writes from the config secret.
//! A SQLite database (recognised by its 16-byte header, whatever its name) is never copied
//! raw: a read-only connection runs `VACUUM INTO` a private file, which SQLite makes from one
//! read transaction, so it holds exactly the committed state, WAL included, at one instant.
//! Other files are copied as they are.
//!
//! A scan is cheap when nothing changed: a file whose (inode, size, mtime, ctime) equals the
//! last scan's keeps its hash, and a database whose file and WAL are unchanged keeps its
//! snapshot's.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{Entry, Kind};

/// Top-level directories never replicated.
const SKIP_DIRS: [&str; 4] = ["tmp", "logs", "cache", ".cache"];
/// Top-level files never replicated: the configuration the bot image's entry point writes from
/// the Secrets Manager secret at every start (a second copy of its secrets in the bucket would
/// add nothing; the secret is the source), and its temporary file.
const SKIP_TOP_FILES: [&str; 2] = ["openclaw.json", ".openclaw.json.new"];
/// File name endings never replicated (SQLite's side files: the snapshot covers them).
const SKIP_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];
/// Largest file replicated; a larger one is reported and left out.
pub const MAX_FILE: u64 = 1 << 30;

/// A file's identity for change detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    /// For databases: the WAL's size and mtime (0 without a WAL).
    wal: (u64, i128),
}

/// One path found by a scan.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its entry (no version id yet).
    pub entry: Entry,
    /// For content entries: the file whose bytes are uploaded (the snapshot for a database).
    pub source: Option<PathBuf>,
    /// Its identity.
    pub stamp: Option<Stamp>,
}

/// What the previous pass learnt of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The file's identity then.
    pub stamp: Stamp,
    /// SHA256 of the content replicated (for a database: of its snapshot).
    pub sha256: String,
    /// Size of that content (for a database: of its snapshot, not of the live file).
    pub size: u64,
    /// The S3 version id it was stored as.
    pub version_id: String,
}

/// What the previous pass learnt, by path.
pub type Known = BTreeMap<String, Seen>;

/// A scan's result.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every path to replicate, sorted.
    pub found: Vec<Found>,
    /// Paths left out, with why (too large, unreadable, not UTF-8).
    pub skipped: Vec<String>,
}

fn nanos(sec: i64, nsec: i64) -> i128 {
    i128::from(sec) * 1_000_000_000 + i128::from(nsec)
}

fn stamp_of(md: &fs::Metadata, wal: Option<&fs::Metadata>) -> Stamp {
    Stamp {
        ino: md.ino(),
        size: md.size(),
        mtime_ns: nanos(md.mtime(), md.mtime_nsec()),
        ctime_ns: nanos(md.ctime(), md.ctime_nsec()),
        wal: wal.map_or((0, 0), |w| (w.size(), nanos(w.mtime(), w.mtime_nsec()))),
    }
}

/// True when `path` starts with SQLite's header.
fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"SQLite format 3\0"
}

/// SHA256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Takes a consistent copy of the live database `db` at `out` (which must not exist).
///
/// The connection is read-only, so it never checkpoints or writes the database. If opening it
/// made SQLite create a `-wal` or `-shm` (no other connection had the database open), those
/// are given to the database's owner: a root-owned side file would lock the gateway out.
pub fn snapshot_sqlite(db: &Path, out: &Path) -> Result<(), String> {
    use rusqlite::OpenFlags;
    let side = |suffix: &str| PathBuf::from(format!("{}{suffix}", db.display()));
    let existed = [side("-wal").exists(), side("-shm").exists()];
    let result = (|| {
        let conn = rusqlite::Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("opening {}: {e}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let target = out
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", out.display()))?;
        conn.execute("VACUUM INTO ?1", [target])
            .map_err(|e| format!("VACUUM INTO from {}: {e}", db.display()))?;
        conn.close()
            .map_err(|(_, e)| format!("closing {}: {e}", db.display()))
    })();
    if let Ok(md) = fs::metadata(db) {
        for (suffix, was) in [("-wal", existed[0]), ("-shm", existed[1])] {
            let p = side(suffix);
            if !was {
                if let Ok(s) = fs::metadata(&p) {
                    if s.uid() != md.uid() || s.gid() != md.gid() {
                        let _ = std::os::unix::fs::chown(&p, Some(md.uid()), Some(md.gid()));
                    }
                }
            }
        }
    }
    result
}

/// Removes the files in `dir` (the previous scan's snapshots).
pub fn clear_dir(dir: &Path) -> Result<(), String> {
    let rd = fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for ent in rd.flatten() {
        let p = ent.path();
        fs::remove_file(&p).map_err(|e| format!("removing {}: {e}", p.display()))?;
    }
    Ok(())
}

fn skipped_name(rel: &str, depth: usize, name: &str) -> bool {
    (depth == 0 && (SKIP_DIRS.contains(&name) || SKIP_TOP_FILES.contains(&name)))
        || SKIP_SUFFIXES.iter().any(|s| name.ends_with(s))
        || rel.is_empty()
}

/// Scans `dir`. Databases whose identity changed since `known` are snapshotted into `work`
/// (a private directory; the previous scan's snapshots in it are removed first); other content
/// keeps its known hash when its identity is unchanged.
///
/// With `dbs` false, a database that changed keeps its last snapshot's entry (and its old
/// identity, so it counts as changed again next time); only a database never seen before is
/// snapshotted. The run loop snapshots databases at most once a minute this way, which bounds
/// what a gateway that writes every few seconds even when idle uploads.
pub fn scan(dir: &Path, work: &Path, known: &Known, dbs: bool) -> Result<Scan, String> {
    clear_dir(work)?;
    let mut scan = Scan::default();
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0usize)];
    let mut serial = 0u32;
    while let Some((abs, rel, depth)) = stack.pop() {
        let rd = fs::read_dir(&abs).map_err(|e| format!("reading {}: {e}", abs.display()))?;
        for ent in rd {
            let ent = ent.map_err(|e| format!("reading {}: {e}", abs.display()))?;
            let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                scan.skipped
                    .push(format!("{}: name is not UTF-8", ent.path().display()));
                continue;
            };
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if skipped_name(&path, depth, &name) {
                continue;
            }
            let p = ent.path();
            let md = match fs::symlink_metadata(&p) {
                Ok(m) => m,
                // Removed while we looked: it is simply not in this generation.
                Err(_) => continue,
            };
            let ft = md.file_type();
            let mut entry = Entry {
                path: path.clone(),
                kind: Kind::File,
                uid: md.uid(),
                gid: md.gid(),
                mode: md.permissions().mode() & 0o7777,
                size: 0,
                sha256: String::new(),
                version_id: String::new(),
                target: String::new(),
            };
            if ft.is_dir() {
                entry.kind = Kind::Dir;
                scan.found.push(Found {
                    entry,
                    source: None,
                    stamp: None,
                });
                stack.push((p, path, depth + 1));
            } else if ft.is_symlink() {
                entry.kind = Kind::Symlink;
                entry.target = match fs::read_link(&p)
                    .ok()
                    .and_then(|t| t.to_str().map(String::from))
                {
                    Some(t) => t,
                    None => {
                        scan.skipped.push(format!("{path}: unreadable link"));
                        continue;
                    }
                };
                scan.found.push(Found {
                    entry,
                    source: None,
                    stamp: None,
                });
            } else if ft.is_file() {
                if md.size() > MAX_FILE {
                    scan.skipped.push(format!(
                        "{path}: {} bytes, over the {MAX_FILE}-byte limit",
                        md.size()
                    ));
                    continue;
                }
                let sqlite = is_sqlite(&p);
                let wal_md = if sqlite {
                    fs::metadata(format!("{}-wal", p.display())).ok()
                } else {
                    None
                };
                let stamp = stamp_of(&md, wal_md.as_ref());
                entry.kind = if sqlite { Kind::Sqlite } else { Kind::File };
                if let Some(seen) = known.get(&path) {
                    if seen.stamp == stamp || (sqlite && !dbs) {
                        entry.sha256.clone_from(&seen.sha256);
                        entry.version_id.clone_from(&seen.version_id);
                        entry.size = seen.size;
                        scan.found.push(Found {
                            entry,
                            source: None,
                            stamp: Some(seen.stamp),
                        });
                        continue;
                    }
                }
                let source = if sqlite {
                    serial += 1;
                    let out = work.join(format!("snap-{serial}.sqlite"));
                    match snapshot_sqlite(&p, &out) {
                        Ok(()) => out,
                        Err(e) => {
                            scan.skipped.push(format!("{path}: {e}"));
                            continue;
                        }
                    }
                } else {
                    p.clone()
                };
                match fs::metadata(&source).and_then(|m| Ok((m.size(), sha256_file(&source)?))) {
                    Ok((size, sha)) => {
                        entry.size = size;
                        entry.sha256 = sha;
                    }
                    // Removed while we read it: not in this generation.
                    Err(_) => continue,
                }
                scan.found.push(Found {
                    entry,
                    source: Some(source),
                    stamp: Some(stamp),
                });
            }
            // Anything else (sockets, FIFOs, devices) is a runtime object, not state.
        }
    }
    scan.found.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a pass would remember of `s` (every content entry stored as version "v1").
    fn known_of(s: &Scan) -> Known {
        s.found
            .iter()
            .filter_map(|f| {
                let stamp = f.stamp?;
                let seen = Seen {
                    stamp,
                    sha256: f.entry.sha256.clone(),
                    size: f.entry.size,
                    version_id: "v1".into(),
                };
                Some((f.entry.path.clone(), seen))
            })
            .collect()
    }

    #[test]
    fn snapshots_a_live_wal_database_consistently_and_skips_scratch() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("state");
        let work = t.path().join("work");
        fs::create_dir_all(dir.join("state")).unwrap();
        fs::create_dir_all(dir.join("tmp")).unwrap();
        fs::create_dir_all(dir.join("logs")).unwrap();
        fs::create_dir_all(&work).unwrap();
        fs::write(dir.join("tmp/scratch"), "x").unwrap();
        fs::write(dir.join("logs/a.log"), "x").unwrap();
        fs::write(dir.join("credentials.json"), "{}").unwrap();
        fs::write(dir.join("openclaw.json"), "{\"from\":\"the secret\"}").unwrap();
        let db = dir.join("state/openclaw.sqlite");
        // A writer that keeps the database open in WAL mode, with commits only in the WAL.
        let w = rusqlite::Connection::open(&db).unwrap();
        w.pragma_update(None, "journal_mode", "WAL").unwrap();
        w.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        w.execute_batch("CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('paired');")
            .unwrap();
        assert!(PathBuf::from(format!("{}-wal", db.display())).exists());

        let s = scan(&dir, &work, &Known::new(), true).unwrap();
        let paths: Vec<&str> = s.found.iter().map(|f| f.entry.path.as_str()).collect();
        assert_eq!(
            paths,
            ["credentials.json", "state", "state/openclaw.sqlite"],
            "tmp/, logs/, the -wal/-shm and the config written from the secret are left out"
        );
        let dbf = &s.found[2];
        assert_eq!(dbf.entry.kind, Kind::Sqlite);
        let snap = dbf.source.clone().unwrap();
        assert!(snap.starts_with(&work), "a snapshot, never the live file");
        let r = rusqlite::Connection::open(&snap).unwrap();
        let v: String = r
            .query_row("SELECT v FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(v, "paired", "the committed row that lived only in the WAL");

        // Nothing changed: the next scan snapshots nothing and keeps the hashes.
        let known = known_of(&s);
        let again = scan(&dir, &work, &known, true).unwrap();
        assert!(again.found.iter().all(|f| f.source.is_none()));
        // The kept size is the snapshot's, not the live file's (whose rows sit in the WAL).
        assert_eq!(again.found[2].entry.size, dbf.entry.size);
        assert_ne!(fs::metadata(&db).unwrap().len(), dbf.entry.size);
        // A commit changes the WAL, so the database is snapshotted again.
        w.execute("INSERT INTO t VALUES ('session')", []).unwrap();
        let third = scan(&dir, &work, &known, true).unwrap();
        let changed: Vec<&str> = third
            .found
            .iter()
            .filter(|f| f.source.is_some())
            .map(|f| f.entry.path.as_str())
            .collect();
        assert_eq!(changed, ["state/openclaw.sqlite"]);
        // Between database rounds the change waits; it is still seen as a change afterwards.
        let later = scan(&dir, &work, &known, false).unwrap();
        assert!(later.found.iter().all(|f| f.source.is_none()));
        assert_eq!(later.found[2].entry.sha256, dbf.entry.sha256);
        let known_later = known_of(&later);
        assert!(scan(&dir, &work, &known_later, true).unwrap().found[2]
            .source
            .is_some());
    }
}
