//! The window's state and the clock it is judged by.
//!
//! Guarantees (facts/host.md §4):
//! - The deadline is CLOCK_BOOTTIME plus the boot id: a wall-clock jump (settimeofday, NTP) never
//!   moves it, suspend does not stretch it, and a window from another boot is locked. The wall
//!   clock expiry is stored for people and audit only.
//! - The state is one JSON file written atomically (`clawster_core::fs::write_atomic`), root-owned
//!   0644 so anyone can read the status. Anything unexpected (missing, unreadable, not JSON, a
//!   future version, wrong owner or mode, an expiry further away than the longest TTL) means
//!   locked: the window fails closed.
//! - Read-modify-write (open, close, expiry, recording an install) happens under an exclusive
//!   `flock` on `window.lock` in the same directory.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clawster_core::fs::{ensure_dir, write_atomic, FsError, Ownership};
use clawster_core::timefmt::fmt_utc;
use clawster_core::window_rules::HARD_MAX_TTL;
use serde::{Deserialize, Serialize};

/// Default run directory (holds the socket, the state and its lock).
pub const DEFAULT_RUN_DIR: &str = "/run/clawster";
/// The state file's name in the run directory.
pub const STATE_FILE: &str = "window.json";
/// The lock file's name in the run directory.
pub const LOCK_FILE: &str = "window.lock";
/// The socket's name in the run directory.
pub const SOCKET_FILE: &str = "window.sock";
const STATE_VERSION: u32 = 1;

/// The clock a window is judged by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Now {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// CLOCK_BOOTTIME.
    pub boottime: Duration,
    /// Wall clock (display and audit only).
    pub unix: i64,
}

impl Now {
    /// The running kernel's clocks.
    pub fn read() -> io::Result<Self> {
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id")?
            .trim()
            .to_string();
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let boottime = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Ok(Self {
            boot_id,
            boottime,
            unix,
        })
    }
}

/// One install made in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// The package asked for.
    pub package: String,
    /// Wall-clock time of the result.
    pub at: i64,
    /// Who asked (uid).
    pub uid: u32,
    /// `installed`, `already-installed` or `failed`.
    pub result: String,
    /// What the package manager installed or upgraded (`name version` / `name old -> new`).
    #[serde(default)]
    pub changes: Vec<String>,
}

/// The state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Format version.
    pub version: u32,
    /// Random id of this window (audit; installs are recorded only into the window they ran in).
    pub id: String,
    /// `open` or `locked`.
    pub state: String,
    /// Boot the window belongs to.
    pub boot_id: String,
    /// CLOCK_BOOTTIME at open, milliseconds.
    pub opened_boottime_ms: u64,
    /// CLOCK_BOOTTIME deadline, milliseconds.
    pub expires_boottime_ms: u64,
    /// Wall clock at open (display only).
    pub opened_at: i64,
    /// Wall clock expiry (display only).
    pub expires_at: i64,
    /// TTL in seconds.
    pub ttl_secs: u64,
    /// The allowlist.
    pub packages: Vec<String>,
    /// The operator's reason.
    #[serde(default)]
    pub reason: String,
    /// When it was locked (wall clock), if it was.
    #[serde(default)]
    pub locked_at: Option<i64>,
    /// `close`, `expiry` or `replaced`.
    #[serde(default)]
    pub locked_by: Option<String>,
    /// Installs made in it.
    #[serde(default)]
    pub installed: Vec<Installed>,
}

/// What a window means now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Open, with this much time left.
    Open(Duration),
    /// Locked, and why.
    Locked(String),
    /// Still marked open in the file but past its deadline (or from another boot): locked, and
    /// the service still has to record the expiry.
    Expired(String),
}

impl Verdict {
    /// True when installs may happen.
    pub fn is_open(&self) -> bool {
        matches!(self, Verdict::Open(_))
    }
}

impl Window {
    /// A new open window.
    pub fn new(now: &Now, ttl: Duration, packages: Vec<String>, reason: String) -> Self {
        let mut id = [0u8; 8];
        let _ =
            fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut id));
        let opened = now.boottime.as_millis() as u64;
        Self {
            version: STATE_VERSION,
            id: hex::encode(id),
            state: "open".into(),
            boot_id: now.boot_id.clone(),
            opened_boottime_ms: opened,
            expires_boottime_ms: opened + ttl.as_millis() as u64,
            opened_at: now.unix,
            expires_at: now.unix + ttl.as_secs() as i64,
            ttl_secs: ttl.as_secs(),
            packages,
            reason,
            locked_at: None,
            locked_by: None,
            installed: Vec::new(),
        }
    }

    /// Judges the window by `now` (never by the wall clock).
    pub fn verdict(&self, now: &Now) -> Verdict {
        if self.state != "open" {
            let by = self.locked_by.as_deref().unwrap_or("operator");
            let at = self.locked_at.map(fmt_utc).unwrap_or_default();
            return Verdict::Locked(match by {
                "expiry" => format!("the window expired at {}", fmt_utc(self.expires_at)),
                "reboot" => "the window was opened before the last reboot".to_string(),
                "close" => format!("the window was closed by the operator at {at}"),
                other => format!("the window was locked ({other}) at {at}"),
            });
        }
        if self.boot_id != now.boot_id {
            return Verdict::Expired("the window was opened before the last reboot".into());
        }
        let now_ms = now.boottime.as_millis() as u64;
        if now_ms >= self.expires_boottime_ms {
            return Verdict::Expired(format!(
                "the window expired at {}",
                fmt_utc(self.expires_at)
            ));
        }
        let left = Duration::from_millis(self.expires_boottime_ms - now_ms);
        if left > HARD_MAX_TTL || self.expires_boottime_ms < self.opened_boottime_ms {
            return Verdict::Expired("the window state is inconsistent (treated as locked)".into());
        }
        Verdict::Open(left)
    }

    /// Marks it locked.
    pub fn lock(&mut self, by: &str, now: &Now) {
        self.state = "locked".into();
        self.locked_by = Some(by.into());
        self.locked_at = Some(now.unix);
    }
}

/// Reading the state: a window, none, or a reason it cannot be trusted (= locked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// No state file: no window was opened in this boot.
    None,
    /// A window.
    Window(Box<Window>),
    /// The file exists but cannot be trusted.
    Unreadable(String),
}

impl Loaded {
    /// The verdict for `now`.
    pub fn verdict(&self, now: &Now) -> Verdict {
        match self {
            Loaded::None => Verdict::Locked("no window is open".into()),
            Loaded::Window(w) => w.verdict(now),
            Loaded::Unreadable(why) => {
                Verdict::Locked(format!("the window state is unreadable ({why}): locked"))
            }
        }
    }

    /// The window, if one could be read.
    pub fn window(&self) -> Option<&Window> {
        match self {
            Loaded::Window(w) => Some(w),
            _ => None,
        }
    }
}

/// The run directory and the files in it.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub dir: PathBuf,
}

impl RunDir {
    /// At `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// The state file.
    pub fn state(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }
    /// The socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET_FILE)
    }

    /// Reads the state; anything untrustworthy is [`Loaded::Unreadable`].
    pub fn load(&self) -> Loaded {
        load_from(&self.state())
    }

    /// Takes the exclusive lock for a read-modify-write (creating the directory root 0755).
    pub fn lock(&self) -> Result<StateLock, FsError> {
        if !self.dir.exists() {
            ensure_dir(&self.dir, Ownership::root(0o755))?;
        }
        let path = self.dir.join(LOCK_FILE);
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| FsError::new("open", &path, e))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| FsError::new("lock", &path, e.into()))?;
        Ok(StateLock { _file: f })
    }

    /// Writes the state atomically, owner = this process, 0644 (callers hold the lock).
    pub fn save(&self, w: &Window) -> Result<(), FsError> {
        let path = self.state();
        let mut text = serde_json::to_vec_pretty(w).expect("window serialises");
        text.push(b'\n');
        let own = Ownership {
            mode: 0o644,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        };
        write_atomic(&path, &text, own).map(|_| ())
    }
}

/// Held while the state is being changed.
#[derive(Debug)]
pub struct StateLock {
    _file: fs::File,
}

fn load_from(path: &Path) -> Loaded {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::None,
        Err(e) => return Loaded::Unreadable(format!("{}: {e}", path.display())),
    };
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_file() {
        return Loaded::Unreadable(format!("{} is not a regular file", path.display()));
    }
    if meta.uid() != 0 && meta.uid() != me {
        return Loaded::Unreadable(format!("{} is owned by uid {}", path.display(), meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Loaded::Unreadable(format!(
            "{} is writable by others (mode {:o})",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => return Loaded::Unreadable(format!("{}: {e}", path.display())),
    };
    match serde_json::from_slice::<Window>(&bytes) {
        Ok(w) if w.version == STATE_VERSION => Loaded::Window(Box::new(w)),
        Ok(w) => Loaded::Unreadable(format!("unknown state version {}", w.version)),
        Err(e) => Loaded::Unreadable(format!("{}: {e}", path.display())),
    }
}

/// `2026-12-02 08:00:00 CET (+01:00)` in the host's time zone.
pub fn fmt_local(unix: i64) -> String {
    match super::sys::local_time(unix) {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {} ({}{:02}:{:02})",
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.zone,
            if t.offset < 0 { '-' } else { '+' },
            t.offset.abs() / 3600,
            t.offset.abs() / 60 % 60
        ),
        None => fmt_utc(unix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(boot: &str, secs: u64, unix: i64) -> Now {
        Now {
            boot_id: boot.into(),
            boottime: Duration::from_secs(secs),
            unix,
        }
    }

    #[test]
    fn verdict_uses_boottime_and_boot_id_only() {
        let t0 = now("boot-a", 1000, 1_700_000_000);
        let w = Window::new(
            &t0,
            Duration::from_secs(20),
            vec!["hello".into()],
            String::new(),
        );
        assert_eq!(w.verdict(&t0), Verdict::Open(Duration::from_secs(20)));
        // A wall clock set back an hour does not extend it; boottime decides.
        let later = now("boot-a", 1019, 1_700_000_000 - 3600);
        assert_eq!(later.boottime - t0.boottime, Duration::from_secs(19));
        assert_eq!(w.verdict(&later), Verdict::Open(Duration::from_secs(1)));
        // Wall clock far ahead does not end it early either.
        assert!(w.verdict(&now("boot-a", 1010, 1_800_000_000)).is_open());
        assert!(matches!(
            w.verdict(&now("boot-a", 1020, 0)),
            Verdict::Expired(_)
        ));
        // Another boot: locked, whatever the clocks say.
        assert!(matches!(
            w.verdict(&now("boot-b", 5, 1_700_000_001)),
            Verdict::Expired(_)
        ));
        let mut closed = w.clone();
        closed.lock("close", &t0);
        assert!(matches!(closed.verdict(&t0), Verdict::Locked(r) if r.contains("closed")));
        // Locked by the expiry thread because it belongs to another boot: the reason says so.
        let mut rebooted = w.clone();
        rebooted.lock("reboot", &t0);
        assert!(
            matches!(rebooted.verdict(&t0), Verdict::Locked(r) if r.contains("before the last reboot"))
        );
        // A tampered expiry beyond 24h is not trusted.
        let mut far = w.clone();
        far.expires_boottime_ms = u64::MAX / 2;
        assert!(!far.verdict(&t0).is_open());
    }

    #[test]
    fn state_files_round_trip_and_fail_closed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let rd = RunDir::new(dir.path());
        let t0 = now("boot-a", 100, 1_700_000_000);
        assert_eq!(rd.load(), Loaded::None);
        assert!(!rd.load().verdict(&t0).is_open());
        let w = Window::new(
            &t0,
            Duration::from_secs(60),
            vec!["hello".into()],
            "r".into(),
        );
        {
            let _l = rd.lock().expect("lock");
            rd.save(&w).expect("save");
        }
        assert_eq!(rd.load().window(), Some(&w));
        assert!(rd.load().verdict(&t0).is_open());
        let mode = fs::metadata(rd.state()).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644);
        // Group-writable: untrusted.
        fs::set_permissions(rd.state(), fs::Permissions::from_mode(0o664)).expect("chmod");
        assert!(matches!(rd.load(), Loaded::Unreadable(r) if r.contains("writable")));
        // Garbage: locked, with the reason.
        fs::write(rd.state(), b"{not json").expect("write");
        fs::set_permissions(rd.state(), fs::Permissions::from_mode(0o644)).expect("chmod");
        let v = rd.load().verdict(&t0);
        assert!(
            matches!(&v, Verdict::Locked(r) if r.contains("unreadable")),
            "{v:?}"
        );
        // Empty file (a crash can never leave one, but a person can).
        fs::write(rd.state(), b"").expect("write");
        assert!(!rd.load().verdict(&t0).is_open());
    }

    #[test]
    fn local_time_format() {
        assert!(fmt_local(0).contains("19"));
    }
}
