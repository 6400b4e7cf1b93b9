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
use serde::{Deserialize, Serialize};

use super::name::{validate_name, NameError};

/// Default run directory (holds the socket, the state and its lock).
pub const DEFAULT_RUN_DIR: &str = "/run/clawster";
/// The state file's name in the run directory.
pub const STATE_FILE: &str = "window.json";
/// The lock file's name in the run directory.
pub const LOCK_FILE: &str = "window.lock";
/// The socket's name in the run directory.
pub const SOCKET_FILE: &str = "window.sock";
/// The shortest TTL.
pub const MIN_TTL: Duration = Duration::from_secs(5);
/// The default cap on the TTL.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(4 * 3600);
/// The cap can never be raised beyond this.
pub const HARD_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// At most this many packages per window.
pub const MAX_PACKAGES: usize = 20;
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

/// Bad input to `window open`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The TTL is not `<number><s|m|h>`.
    #[error("--ttl {0:?} is not a duration: use a whole number with s, m or h (e.g. 10m)")]
    TtlSyntax(String),
    /// The TTL is below [`MIN_TTL`].
    #[error("--ttl {0} is too short: at least 5s")]
    TtlTooShort(String),
    /// The TTL is above the cap.
    #[error("--ttl {ttl} is longer than the cap of {cap}")]
    TtlTooLong {
        /// As given.
        ttl: String,
        /// The cap, formatted.
        cap: String,
    },
    /// The cap is above 24h.
    #[error("--max-ttl {0} is beyond the hard limit of 24h")]
    CapTooLong(String),
    /// No package.
    #[error("--pkgs names no package")]
    NoPackages,
    /// Too many packages.
    #[error("--pkgs names {0} packages; at most 20")]
    TooManyPackages(usize),
    /// A bad name.
    #[error("--pkgs")]
    Name(#[from] NameError),
    /// The reason is too long or has control characters.
    #[error("--reason must be at most 200 printable characters")]
    Reason,
}

/// Parses a TTL like `10m`, `90s`, `2h`.
pub fn parse_ttl(s: &str) -> Result<Duration, OpenError> {
    let t = s.trim();
    let bad = || OpenError::TtlSyntax(s.to_string());
    let unit = t.chars().last().ok_or_else(bad)?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return Err(bad()),
    };
    let num = &t[..t.len() - 1];
    if num.is_empty() || num.len() > 9 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    Ok(Duration::from_secs(n * mult))
}

/// Checks a TTL against the minimum and `cap` (itself at most 24h).
pub fn check_ttl(s: &str, cap: Duration) -> Result<Duration, OpenError> {
    if cap > HARD_MAX_TTL {
        return Err(OpenError::CapTooLong(fmt_duration(cap)));
    }
    let ttl = parse_ttl(s)?;
    if ttl < MIN_TTL {
        return Err(OpenError::TtlTooShort(s.trim().to_string()));
    }
    if ttl > cap {
        return Err(OpenError::TtlTooLong {
            ttl: s.trim().to_string(),
            cap: fmt_duration(cap),
        });
    }
    Ok(ttl)
}

/// Splits `--pkgs` (commas and/or whitespace), validates every name, drops duplicates.
pub fn parse_packages(s: &str) -> Result<Vec<String>, OpenError> {
    let mut out: Vec<String> = Vec::new();
    for p in s.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
        if p.is_empty() {
            continue;
        }
        validate_name(p)?;
        if !out.iter().any(|x| x == p) {
            out.push(p.to_string());
        }
    }
    if out.is_empty() {
        return Err(OpenError::NoPackages);
    }
    if out.len() > MAX_PACKAGES {
        return Err(OpenError::TooManyPackages(out.len()));
    }
    Ok(out)
}

/// Checks `--reason`.
pub fn check_reason(s: &str) -> Result<String, OpenError> {
    if s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(OpenError::Reason);
    }
    Ok(s.to_string())
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

/// `1h30m`, `10m`, `45s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn civil(days: i64) -> (i64, u32, u32) {
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2026-12-02T07:00:00Z`.
pub fn fmt_utc(unix: i64) -> String {
    let (y, mo, d) = civil(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
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
    fn ttl_rules() {
        assert_eq!(parse_ttl("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_ttl("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        for bad in [
            "",
            "10",
            "m",
            "-5m",
            "1.5h",
            "10 m",
            "10d",
            "0x10s",
            "9999999999s",
            "+5m",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            check_ttl("4s", DEFAULT_MAX_TTL),
            Err(OpenError::TtlTooShort(_))
        ));
        assert!(matches!(
            check_ttl("0s", DEFAULT_MAX_TTL),
            Err(OpenError::TtlTooShort(_))
        ));
        assert!(check_ttl("4h", DEFAULT_MAX_TTL).is_ok());
        let e = check_ttl("5h", DEFAULT_MAX_TTL).expect_err("over cap");
        assert_eq!(e.to_string(), "--ttl 5h is longer than the cap of 4h");
        assert!(check_ttl("24h", HARD_MAX_TTL).is_ok());
        assert!(matches!(
            check_ttl("1h", Duration::from_secs(25 * 3600)),
            Err(OpenError::CapTooLong(_))
        ));
        let e = parse_ttl("10d").expect_err("unit");
        assert!(e.to_string().contains("\"10d\""), "{e}");
    }

    #[test]
    fn package_lists() {
        assert_eq!(
            parse_packages("hello, nginx-light hello,,g++").expect("ok"),
            vec!["hello", "nginx-light", "g++"]
        );
        assert_eq!(parse_packages(" , "), Err(OpenError::NoPackages));
        let many: Vec<String> = (0..21).map(|i| format!("p{i:02}")).collect();
        assert_eq!(
            parse_packages(&many.join(",")),
            Err(OpenError::TooManyPackages(21))
        );
        let e = parse_packages("hello,nginx*").expect_err("bad");
        assert_eq!(e.to_string(), "--pkgs");
        let OpenError::Name(inner) = &e else {
            panic!("{e:?}")
        };
        assert!(inner.to_string().contains("nginx*"), "{inner}");
        assert!(parse_packages("hello,-oDPkg::Pre-Invoke::=id").is_err());
        assert!(check_reason("ticket 42").is_ok());
        assert!(check_reason("a\nb").is_err());
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
    fn time_formats() {
        assert_eq!(fmt_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_utc(1_796_194_800), "2026-12-02T07:00:00Z");
        assert_eq!(fmt_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_secs(20)), "20s");
        assert!(fmt_local(0).contains("19"));
    }
}
