//! `clawster-agent state`: the bot's state survives its host.
//!
//! The bot's state directory (`/var/lib/clawster/openclaw`: device identity and pairings in
//! `state/openclaw.sqlite`, sessions in `agents/*/agent/*.sqlite`, `credentials/`, `workspace/`,
//! ...) is replicated to the region's shared bucket under `state/<bot>/` (layout:
//! [`manifest`]). Only the host's role can reach that prefix; the bot's task has no access.
//!
//! Order of work, and the failure policy of each step:
//!
//! 1. **restore** (unit `clawster-state-restore.service`, before `ecs.service` and
//!    `docker.service`, which require it): take the lease ([`lease`]: wait while another host
//!    still renews it). Then, if this host already tracks the state directory (its
//!    `local.json` names the bot: a reboot), keep the local state, which is at least as new as
//!    the replica. Otherwise restore the current manifest ([`restore`]). No manifest: start
//!    empty only if `init.json` (written by `clawsterctl deploy` for a new bot) says so.
//!    *Fatal*: a held lease, a missing or torn replica, or any S3 error fails the unit, so the
//!    ECS agent and with it the bot do not start on empty or partial state.
//! 2. **run** (unit `clawster-state.service`): every `--interval` (15 s) one pass: scan
//!    ([`collect`]: other files as they are; databases through `VACUUM INTO`, at most every
//!    `--db-interval` (30 s), because an idle gateway still writes its main database every few
//!    seconds), upload what changed, delete what went, and write a new manifest only if anything differs (an idle
//!    bot writes nothing). The lease is renewed every third of its lifetime. *Non-fatal*: a
//!    failed pass is recorded (`state.sync` failed) and retried next interval; the lag grows
//!    and `health` reports it. *Fatal*: losing the lease to another host (stop writing).
//! 3. **end of the host** (inside `run`, [`lifecycle`]): IMDSv2 is polled every 5 s for
//!    `autoscaling/target-lifecycle-state` = `Terminated` (the group terminates this instance
//!    and its `clawster-final-sync` hook holds it in Terminating:Wait) and for a spot
//!    interruption notice. Then: stop the bot's ECS container with its stop timeout (the gateway
//!    closes its databases), take the final pass, release the lease, and for the hook complete
//!    the lifecycle action (CONTINUE); `run` then idles without writing until SIGTERM.
//!    *Non-fatal*: IMDS errors (recorded, polled again); a failed container stop (recorded, the
//!    final pass taken anyway); a failed final pass (retried each interval, the lease kept and
//!    renewed); a failed completion (retried with backoff until the hook's heartbeat expires,
//!    then recorded: the hook's default result CONTINUE lets the instance go anyway).
//! 4. **stop** (SIGTERM to `run`): the unit is ordered before `docker.service`, so at shutdown
//!    (instance refresh, `destroy`, terminate) systemd stops it only after Docker stopped the
//!    bot's container with its stop timeout and the gateway closed its databases; `run` then
//!    takes a final pass and releases the lease: nothing written before the stop is lost.
//!    A crash or hard power-off loses at most the database writes of the last `--db-interval`
//!    plus one upload (under the minute the issue allows), and file writes of the last interval.
//!    After step 3 the lease is already released: `run` just exits.
//!
//! `state sync` asks the running service for a pass now (or takes one itself when no service
//! runs); `state restore --at TIME` restores the generation current at TIME (the bot's task
//! must be stopped); `state status` prints the last sync and the lag.

pub mod collect;
pub mod command;
pub mod install;
pub mod lease;
pub mod lifecycle;
pub mod manifest;
pub mod restore;
mod run;
mod signals;

pub use lifecycle::LIFECYCLE_HOOK;
pub use run::{run, EndOptions, RunOptions};

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clawster_core::timefmt::{fmt_utc, parse_utc};
use serde::{Deserialize, Serialize};

use crate::host::s3::{unix_now, Bucket, CredentialSource};
use collect::Known;
use lease::{LeaseKeeper, Taken};
use manifest::{Keys, Kind, Manifest};

/// The bot's state directory on the host (bind-mounted into the bot's task).
pub const STATE_DIR: &str = "/var/lib/clawster/openclaw";
/// The agent's own directory for replication: snapshots, status, what this host tracks.
pub const WORK_DIR: &str = "/var/lib/clawster/state";
/// Where bootstrap writes the replication settings.
pub const CONFIG_PATH: &str = "/etc/clawster/state.json";

/// The replication settings (`/etc/clawster/state.json`, written by bootstrap from
/// `--state-bucket` and `--bot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The bot.
    pub bot: String,
    /// The shared bucket.
    pub bucket: String,
    /// Its region (empty: this instance's, from IMDS).
    #[serde(default)]
    pub region: String,
    /// An S3 endpoint other than AWS's (tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl Settings {
    /// Reads and checks the settings file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let s: Settings = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not valid settings: {e}", path.display()))?;
        check_bot(&s.bot).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(s)
    }
}

/// Bot names as ctl allows them: lower-case letters, digits and '-', 1-32 characters.
pub fn check_bot(bot: &str) -> Result<(), String> {
    let ok = !bot.is_empty()
        && bot.len() <= 32
        && bot
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bot.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bot name {bot:?}: use 1-32 lower-case letters, digits and '-'"
        ))
    }
}

/// Everything a state command works with.
#[derive(Debug)]
pub struct Replica {
    /// The bucket.
    pub bucket: Bucket,
    /// Keys under `state/<bot>/`.
    pub keys: Keys,
    /// The bot.
    pub bot: String,
    /// This host's instance id.
    pub instance: String,
    /// The region (the bucket's, which is the host's).
    pub region: String,
    /// The state directory.
    pub dir: PathBuf,
    /// The agent's work directory.
    pub work: PathBuf,
    /// The lease lifetime.
    pub lease_ttl: Duration,
}

/// What this host knows it tracks (`<work>/local.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Local {
    bot: String,
    generation: u64,
}

/// The last pass, for `status` and `health` (`<work>/status.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The bot.
    pub bot: String,
    /// When the replica was last known to equal the local state (unix seconds; 0: never).
    pub last_sync: i64,
    /// The generation then.
    pub generation: u64,
    /// Bytes of state replicated.
    pub bytes: u64,
    /// Files that could not be replicated, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// The last pass's error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the last pass (successful or not) ended.
    pub last_attempt: i64,
    /// The end of this host, once seen: `draining: WHY` while the bot's container stops,
    /// `released for termination: WHY` after the final pass (the replica is final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

impl SyncStatus {
    /// What `status` and `health` add after the figures: the last pass's error and the end of
    /// the host, each as `; ...` (empty when neither).
    pub fn notes(&self) -> String {
        let failed = self
            .last_error
            .as_ref()
            .map(|e| format!("; last pass failed: {e}"))
            .unwrap_or_default();
        let end = self
            .end
            .as_ref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default();
        format!("{failed}{end}")
    }

    /// Reads `<work>/status.json`; `None` when no pass ran yet.
    pub fn load(work: &Path) -> Option<Self> {
        serde_json::from_slice(&fs::read(work.join("status.json")).ok()?).ok()
    }

    /// Seconds the replica may be behind the local state: since the last successful pass.
    pub fn lag(&self, now: i64) -> Option<i64> {
        (self.last_sync > 0).then(|| (now - self.last_sync).max(0))
    }
}

/// The outcome of one pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pass {
    /// The generation the replica holds after the pass.
    pub generation: u64,
    /// True when the pass wrote a new manifest.
    pub wrote: bool,
    /// Objects uploaded.
    pub uploaded: usize,
    /// The paths uploaded (the first 8).
    pub uploaded_paths: Vec<String>,
    /// Bytes uploaded (compressed).
    pub uploaded_bytes: u64,
    /// Objects deleted.
    pub deleted: usize,
    /// Bytes of state.
    pub bytes: u64,
    /// When the pass was taken.
    pub taken_at: String,
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn dir_owner(dir: &Path) -> Option<manifest::Owner> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir).ok().map(|md| manifest::Owner {
        uid: md.uid(),
        gid: md.gid(),
        mode: md.mode() & 0o7777,
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// The state of a replicating host between passes.
#[derive(Debug, Default)]
pub struct Tracker {
    known: Known,
    last: Option<Manifest>,
}

impl Replica {
    /// Builds the replica's client from settings; `instance` and an unset region from IMDS
    /// at `imds` (`host:port`).
    pub fn open(
        settings: &Settings,
        instance: Option<String>,
        imds: &str,
        dir: PathBuf,
        work: PathBuf,
        lease_ttl: Duration,
        creds: CredentialSource,
    ) -> Result<Self, String> {
        check_bot(&settings.bot)?;
        let ask = |path: &str, what: &str, option: &str| {
            if imds.eq_ignore_ascii_case("off") {
                return Err(format!(
                    "{what}: not given and IMDS is off (--imds-endpoint off); pass {option}"
                ));
            }
            clawster_core::imds::Imds::new(imds)
                .and_then(|i| i.get(path))
                .map_err(|e| format!("{what} (not given, and IMDS did not say): {e}"))
        };
        let region = if settings.region.is_empty() {
            ask("placement/region", "the region", "--region")?
        } else {
            settings.region.clone()
        };
        let instance = match instance {
            Some(i) => i,
            None => ask("instance-id", "this instance's id", "--instance-id")?,
        };
        let bucket = Bucket::new(
            &settings.bucket,
            &region,
            settings.endpoint.as_deref(),
            creds,
        )
        .map_err(|e| e.to_string())?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(work.join("snapshots"))
            .map_err(|e| format!("creating {}: {e}", work.display()))?;
        Ok(Self {
            bucket,
            keys: Keys::new(&settings.bot),
            bot: settings.bot.clone(),
            instance,
            region,
            dir,
            work,
            lease_ttl,
        })
    }

    /// The lease keeper of this host.
    pub fn lease(&self) -> LeaseKeeper<'_> {
        LeaseKeeper::new(
            &self.bucket,
            self.keys.lease(),
            &self.instance,
            self.lease_ttl,
        )
    }

    fn local(&self) -> Option<Local> {
        let l: Local =
            serde_json::from_slice(&fs::read(self.work.join("local.json")).ok()?).ok()?;
        (l.bot == self.bot).then_some(l)
    }

    fn set_local(&self, generation: u64) -> Result<(), String> {
        let l = Local {
            bot: self.bot.clone(),
            generation,
        };
        write_private(
            &self.work.join("local.json"),
            &serde_json::to_vec(&l).map_err(|e| e.to_string())?,
        )
    }

    /// The manifest current now (`at` None) or at unix time `at`; `None` when there is none.
    pub fn manifest(&self, at: Option<i64>) -> Result<Option<Manifest>, String> {
        let key = self.keys.manifest();
        let bytes = match at {
            None => self.bucket.get(&key, None).map_err(|e| e.to_string())?,
            Some(t) => {
                let versions = self.bucket.list_versions(&key).map_err(|e| e.to_string())?;
                let ours: Vec<_> = versions.iter().filter(|v| v.key == key).collect();
                let pick = ours
                    .iter()
                    .filter(|v| v.last_modified <= t)
                    .max_by_key(|v| v.last_modified);
                match pick {
                    Some(v) if !v.delete_marker => self
                        .bucket
                        .get(&key, Some(&v.version_id))
                        .map_err(|e| e.to_string())?,
                    Some(_) => {
                        return Err(format!(
                            "the replica was deleted at or before {}",
                            fmt_utc(t)
                        ))
                    }
                    None => {
                        let oldest = ours.iter().map(|v| v.last_modified).min();
                        return Err(match oldest {
                            Some(o) => format!(
                                "no generation at or before {}: the oldest kept is from {}",
                                fmt_utc(t),
                                fmt_utc(o)
                            ),
                            None => {
                                format!("no generation at or before {}: none is kept", fmt_utc(t))
                            }
                        });
                    }
                }
            }
        };
        bytes
            .map(|b| Manifest::parse(&b, &self.bot).map_err(|e| format!("{key}: {e}")))
            .transpose()
    }

    /// Step 1: take the lease, then keep, restore or start empty. `at` forces a restore of
    /// that time's generation (operator restore; the task must be stopped).
    pub fn restore(&self, at: Option<i64>) -> Result<RestoreOutcome, String> {
        let taken = self.lease().acquire().map_err(|e| e.to_string())?;
        if at.is_none() {
            if let Some(l) = self.local() {
                if self.dir.is_dir() {
                    return Ok(RestoreOutcome::KeptLocal {
                        generation: l.generation,
                        lease: taken,
                    });
                }
            }
        }
        match self.manifest(at)? {
            Some(m) => {
                let r = restore::restore(&self.bucket, &self.keys, &m, &self.dir)?;
                self.set_local(m.generation)?;
                Ok(RestoreOutcome::Restored {
                    restored: r,
                    lease: taken,
                })
            }
            None => {
                let init = self
                    .bucket
                    .get(&self.keys.init(), None)
                    .map_err(|e| e.to_string())?;
                if init.is_none() {
                    return Err(format!(
                        "replica missing: no {} and no {} (a new bot's marker) in bucket {}; refusing to start bot {} on empty state (restore a backup with `clawsterctl restore {} --at TIME`, or redeploy)",
                        self.keys.manifest(),
                        self.keys.init(),
                        self.bucket.name(),
                        self.bot,
                        self.bot
                    ));
                }
                if !self.dir.is_dir() {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&self.dir)
                        .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
                }
                self.set_local(0)?;
                Ok(RestoreOutcome::NewBot { lease: taken })
            }
        }
    }

    /// Rebuilds what this host knows from the current manifest (after a restart of `run`):
    /// files whose content still matches need no upload.
    pub fn tracker(&self) -> Result<Tracker, String> {
        Ok(Tracker {
            known: Known::new(),
            last: self.manifest(None)?,
        })
    }

    /// One pass: scan, upload what changed, delete what went, write a manifest if anything
    /// differs. Updates `status.json`.
    pub fn pass(&self, t: &mut Tracker) -> Result<Pass, String> {
        self.pass_with(t, true)
    }

    /// One pass; `dbs` false leaves changed databases for the next database round (see
    /// [`collect::scan`]).
    pub fn pass_with(&self, t: &mut Tracker, dbs: bool) -> Result<Pass, String> {
        let snaps = self.work.join("snapshots");
        let scan = collect::scan(&self.dir, &snaps, &t.known, dbs)?;
        let prev: BTreeMap<&str, &manifest::Entry> = t
            .last
            .as_ref()
            .map(|m| m.files.iter().map(|e| (e.path.as_str(), e)).collect())
            .unwrap_or_default();
        let mut entries = Vec::with_capacity(scan.found.len());
        let mut known = Known::new();
        let (mut uploaded, mut uploaded_bytes) = (0usize, 0u64);
        let mut uploaded_paths = Vec::new();
        for f in &scan.found {
            let mut e = f.entry.clone();
            if matches!(e.kind, Kind::File | Kind::Sqlite) && e.version_id.is_empty() {
                match prev.get(e.path.as_str()) {
                    Some(p) if p.sha256 == e.sha256 && !p.version_id.is_empty() => {
                        e.version_id.clone_from(&p.version_id);
                    }
                    _ => {
                        let raw = match &f.source {
                            Some(src) => {
                                fs::read(src).map_err(|err| format!("{}: {err}", src.display()))?
                            }
                            None => Vec::new(),
                        };
                        if f.source.is_none()
                            || hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&raw)) != e.sha256
                        {
                            // Changed between hashing and reading: the previous generation's
                            // entry stands until the next pass.
                            if let Some(p) = prev.get(e.path.as_str()) {
                                entries.push((*p).clone());
                            }
                            continue;
                        }
                        let packed = gzip(&raw);
                        e.version_id = self
                            .bucket
                            .put(&self.keys.file(&e.path), &packed, "application/gzip")
                            .map_err(|err| err.to_string())?;
                        uploaded += 1;
                        uploaded_bytes += packed.len() as u64;
                        if uploaded_paths.len() < 8 {
                            uploaded_paths.push(e.path.clone());
                        }
                    }
                }
            }
            if let Some(st) = f.stamp {
                known.insert(
                    e.path.clone(),
                    collect::Seen {
                        stamp: st,
                        sha256: e.sha256.clone(),
                        size: e.size,
                        version_id: e.version_id.clone(),
                    },
                );
            }
            entries.push(e);
        }
        collect::clear_dir(&snaps)?;
        let now = unix_now();
        let same = t
            .last
            .as_ref()
            .is_some_and(|m| m.files == entries && m.root == dir_owner(&self.dir));
        let mut deleted = 0usize;
        let generation = if same {
            t.last.as_ref().map_or(0, |m| m.generation)
        } else {
            let generation = t.last.as_ref().map_or(0, |m| m.generation) + 1;
            let m = Manifest {
                version: manifest::VERSION,
                bot: self.bot.clone(),
                instance: self.instance.clone(),
                generation,
                taken_at: fmt_utc(now),
                root: dir_owner(&self.dir),
                files: entries,
            };
            let body = serde_json::to_vec_pretty(&m).map_err(|e| e.to_string())?;
            self.bucket
                .put(&self.keys.manifest(), &body, "application/json")
                .map_err(|e| e.to_string())?;
            // Objects of files that went: their current version turns noncurrent, so the
            // lifecycle expires it after the retention (older manifests still name it).
            let now_paths: std::collections::BTreeSet<&str> =
                m.files.iter().map(|e| e.path.as_str()).collect();
            for (path, e) in &prev {
                if matches!(e.kind, Kind::File | Kind::Sqlite) && !now_paths.contains(path) {
                    self.bucket
                        .delete(&self.keys.file(path))
                        .map_err(|err| err.to_string())?;
                    deleted += 1;
                }
            }
            t.last = Some(m);
            self.set_local(generation)?;
            generation
        };
        t.known = known;
        let bytes = t.last.as_ref().map_or(0, Manifest::bytes);
        let status = SyncStatus {
            bot: self.bot.clone(),
            last_sync: now,
            generation,
            bytes,
            skipped: scan.skipped,
            last_error: None,
            last_attempt: now,
            end: SyncStatus::load(&self.work).and_then(|s| s.end),
        };
        self.save_status(&status)?;
        Ok(Pass {
            generation,
            wrote: !same,
            uploaded,
            uploaded_paths,
            uploaded_bytes,
            deleted,
            bytes,
            taken_at: fmt_utc(now),
        })
    }

    fn save_status(&self, s: &SyncStatus) -> Result<(), String> {
        write_private(
            &self.work.join("status.json"),
            &serde_json::to_vec(s).map_err(|e| e.to_string())?,
        )
    }

    /// Records the end of this host in `status.json` (None: a fresh `run`, no end seen).
    pub fn set_end(&self, end: Option<String>) {
        let mut s = SyncStatus::load(&self.work).unwrap_or_else(|| SyncStatus {
            bot: self.bot.clone(),
            ..SyncStatus::default()
        });
        if s.end != end {
            s.end = end;
            let _ = self.save_status(&s);
        }
    }

    /// Records a failed pass in `status.json` (the last success stays).
    pub fn record_failure(&self, error: &str) {
        let mut s = SyncStatus::load(&self.work).unwrap_or_else(|| SyncStatus {
            bot: self.bot.clone(),
            ..SyncStatus::default()
        });
        s.last_error = Some(error.to_string());
        s.last_attempt = unix_now();
        let _ = self.save_status(&s);
    }
}

/// What step 1 did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// This host already tracks the state directory (a reboot): nothing fetched.
    KeptLocal {
        /// The generation it last wrote or restored.
        generation: u64,
        /// How the lease was taken.
        lease: Taken,
    },
    /// A generation was restored.
    Restored {
        /// What was restored.
        restored: restore::Restored,
        /// How the lease was taken.
        lease: Taken,
    },
    /// A new bot: empty state, as `init.json` allows.
    NewBot {
        /// How the lease was taken.
        lease: Taken,
    },
}

/// `state sync`: asks the running service for a pass and waits for it; takes the pass itself
/// when no service runs (its lock is free).
pub fn sync_now(r: &Replica, wait: Duration) -> Result<SyncStatus, String> {
    let lock_path = r.work.join("run.lock");
    let lock = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let free =
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
    if free {
        r.lease().acquire().map_err(|e| e.to_string())?;
        let mut t = r.tracker()?;
        r.pass(&mut t)?;
        return SyncStatus::load(&r.work).ok_or_else(|| "no status after the pass".into());
    }
    let asked = unix_now();
    write_private(&r.work.join("sync-request"), fmt_utc(asked).as_bytes())?;
    let start = Instant::now();
    while start.elapsed() < wait {
        if let Some(s) = SyncStatus::load(&r.work) {
            if s.last_attempt >= asked {
                return match (&s.last_error, s.last_sync >= asked) {
                    (_, true) => Ok(s),
                    (Some(e), false) => Err(format!("the sync failed: {e}")),
                    (None, false) => Err("the sync did not complete".into()),
                };
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "clawster-state.service did not take the pass within {} s",
        wait.as_secs()
    ))
}

/// Holds `run.lock` for the life of `run`, so `state sync` knows a service is running.
pub fn hold_run_lock(work: &Path) -> Result<fs::File, String> {
    let p = work.join("run.lock");
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&p)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| format!("another `clawster-agent state run` holds {}", p.display()))?;
    Ok(f)
}

/// Parses `--at`: RFC 3339 UTC (`2026-12-07T12:00:00Z`).
pub fn parse_at(text: &str) -> Result<i64, String> {
    parse_utc(text)
        .ok_or_else(|| format!("--at {text:?}: expected a UTC time like 2026-12-07T12:00:00Z"))
}
