//! systemd, the process boundary: the manager over D-Bus ([`Systemd`], real implementation
//! [`DbusSystemd`]) and, for a root filesystem that is not running (`--root`), unit enablement as
//! files, the same `.wants/` symlinks `systemctl enable` creates from a unit's `[Install]` section.
//!
//! Boot code never waits on a job: `StartUnit` with mode `replace` returns once the job is queued.

use std::path::Path;

use clawster_core::fs::{ensure_dir, write_atomic, FsError, HostRoot, Ownership, WriteOutcome};

/// Where our units live (never `/lib/...`: on a merged-/usr host that is a symlink we must not
/// touch, and on a split one not every systemd build scans it).
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The systemd manager boundary.
pub trait Systemd {
    /// `Reload` (daemon-reload).
    fn reload(&self) -> Result<(), String>;
    /// `EnableUnitFiles(units, runtime=false, force=true)`; returns the symlinks it changed.
    fn enable(&self, units: &[&str]) -> Result<Vec<String>, String>;
    /// `StartUnit(unit, "replace")`: queues the job and returns its object path at once.
    fn start_no_block(&self, unit: &str) -> Result<String, String>;
    /// The unit's `ActiveState` (`active`, `activating`, `inactive`, `failed`, ...).
    fn active_state(&self, unit: &str) -> Result<String, String>;
    /// `GetUnitFileState` (`enabled`, `disabled`, ...).
    fn unit_file_state(&self, unit: &str) -> Result<String, String>;

    // The methods below have defaults that refuse, so test doubles written for bootstrap keep
    // compiling; the real implementation overrides every one of them.

    /// `StopUnit(unit, "replace")`: queues the stop job and returns its object path; `Ok(None)`
    /// when systemd does not know the unit.
    fn stop(&self, unit: &str) -> Result<Option<String>, String> {
        Err(format!(
            "StopUnit {unit}: not supported by this systemd boundary"
        ))
    }
    /// `RestartUnit(unit, "replace")`: queues the job and returns its object path.
    fn restart_no_block(&self, unit: &str) -> Result<String, String> {
        Err(format!(
            "RestartUnit {unit}: not supported by this systemd boundary"
        ))
    }
    /// `DisableUnitFiles(units, runtime=false)`; returns the symlinks it removed.
    fn disable(&self, units: &[&str]) -> Result<Vec<String>, String> {
        Err(format!(
            "DisableUnitFiles {units:?}: not supported by this systemd boundary"
        ))
    }
    /// `MaskUnitFiles(units, runtime=false, force=true)`; returns the symlinks it made.
    fn mask(&self, units: &[&str]) -> Result<Vec<String>, String> {
        Err(format!(
            "MaskUnitFiles {units:?}: not supported by this systemd boundary"
        ))
    }
    /// Every name of the unit (its `Names` property: the unit and all its aliases); empty when
    /// systemd does not know it.
    fn unit_names(&self, unit: &str) -> Result<Vec<String>, String> {
        Err(format!(
            "Names of {unit}: not supported by this systemd boundary"
        ))
    }
    /// The unit's `LoadState` (`loaded`, `not-found`, `masked`, ...).
    fn load_state(&self, unit: &str) -> Result<String, String> {
        Err(format!(
            "LoadState of {unit}: not supported by this systemd boundary"
        ))
    }
    /// The unit's `NeedDaemonReload`: true when its file or drop-ins on disk changed since the
    /// manager loaded it.
    fn need_daemon_reload(&self, unit: &str) -> Result<bool, String> {
        Err(format!(
            "NeedDaemonReload of {unit}: not supported by this systemd boundary"
        ))
    }
    /// The unit's `Wants` property (as loaded by the manager).
    fn wants(&self, unit: &str) -> Result<Vec<String>, String> {
        Err(format!(
            "Wants of {unit}: not supported by this systemd boundary"
        ))
    }
    /// `KillUnit(unit, "main", signal)`: signals the unit's main process (e.g. SIGUSR2 makes
    /// journald rotate its files).
    fn kill_main(&self, unit: &str, signal: i32) -> Result<(), String> {
        Err(format!(
            "KillUnit {unit} (signal {signal}): not supported by this systemd boundary"
        ))
    }
}

/// systemd on the system bus.
#[derive(Debug)]
pub struct DbusSystemd {
    conn: zbus::blocking::Connection,
}

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

impl DbusSystemd {
    /// Connects to the system bus.
    pub fn connect() -> Result<Self, String> {
        zbus::blocking::Connection::system()
            .map(|conn| Self { conn })
            .map_err(|e| format!("connecting to the D-Bus system bus: {e}"))
    }

    fn call<B, R>(&self, method: &str, body: &B) -> Result<R, String>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'de> serde::Deserialize<'de> + zbus::zvariant::Type,
    {
        let msg = self
            .conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
            .map_err(|e| format!("systemd {method}: {e}"))?;
        msg.body()
            .deserialize::<R>()
            .map_err(|e| format!("systemd {method} reply: {e}"))
    }
}

impl DbusSystemd {
    /// A property of `org.freedesktop.systemd1.Unit` (the unit is loaded first, so a unit
    /// systemd has not loaded yet answers too).
    fn unit_property(&self, unit: &str, name: &str) -> Result<zbus::zvariant::OwnedValue, String> {
        let path: zbus::zvariant::OwnedObjectPath = self.call("LoadUnit", &(unit,))?;
        let msg = self
            .conn
            .call_method(
                Some(DEST),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.freedesktop.systemd1.Unit", name),
            )
            .map_err(|e| format!("{name} of {unit}: {e}"))?;
        msg.body()
            .deserialize()
            .map_err(|e| format!("{name} of {unit}: {e}"))
    }
}

impl Systemd for DbusSystemd {
    fn reload(&self) -> Result<(), String> {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), "Reload", &())
            .map(|_| ())
            .map_err(|e| format!("systemd Reload: {e}"))
    }

    fn enable(&self, units: &[&str]) -> Result<Vec<String>, String> {
        let (_, changes): (bool, Vec<(String, String, String)>) =
            self.call("EnableUnitFiles", &(units.to_vec(), false, true))?;
        Ok(changes
            .into_iter()
            .map(|(kind, path, dest)| format!("{kind} {path} -> {dest}"))
            .collect())
    }

    fn start_no_block(&self, unit: &str) -> Result<String, String> {
        let job: zbus::zvariant::OwnedObjectPath = self.call("StartUnit", &(unit, "replace"))?;
        Ok(job.to_string())
    }

    fn active_state(&self, unit: &str) -> Result<String, String> {
        let v = self.unit_property(unit, "ActiveState")?;
        String::try_from(v).map_err(|e| format!("ActiveState of {unit}: {e}"))
    }

    fn stop(&self, unit: &str) -> Result<Option<String>, String> {
        let reply = self.conn.call_method(
            Some(DEST),
            PATH,
            Some(MANAGER),
            "StopUnit",
            &(unit, "replace"),
        );
        match reply {
            Ok(msg) => {
                let job: zbus::zvariant::OwnedObjectPath = msg
                    .body()
                    .deserialize()
                    .map_err(|e| format!("systemd StopUnit reply: {e}"))?;
                Ok(Some(job.to_string()))
            }
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                Ok(None)
            }
            Err(e) => Err(format!("systemd StopUnit {unit}: {e}")),
        }
    }

    fn restart_no_block(&self, unit: &str) -> Result<String, String> {
        let job: zbus::zvariant::OwnedObjectPath = self.call("RestartUnit", &(unit, "replace"))?;
        Ok(job.to_string())
    }

    fn disable(&self, units: &[&str]) -> Result<Vec<String>, String> {
        let changes: Vec<(String, String, String)> =
            self.call("DisableUnitFiles", &(units.to_vec(), false))?;
        Ok(changes
            .into_iter()
            .map(|(kind, path, dest)| format!("{kind} {path} {dest}").trim().to_string())
            .collect())
    }

    fn mask(&self, units: &[&str]) -> Result<Vec<String>, String> {
        let changes: Vec<(String, String, String)> =
            self.call("MaskUnitFiles", &(units.to_vec(), false, true))?;
        Ok(changes
            .into_iter()
            .map(|(kind, path, dest)| format!("{kind} {path} -> {dest}"))
            .collect())
    }

    fn unit_names(&self, unit: &str) -> Result<Vec<String>, String> {
        if self.load_state(unit)? == "not-found" {
            return Ok(Vec::new());
        }
        let v = self.unit_property(unit, "Names")?;
        Vec::<String>::try_from(v).map_err(|e| format!("Names of {unit}: {e}"))
    }

    fn load_state(&self, unit: &str) -> Result<String, String> {
        let v = self.unit_property(unit, "LoadState")?;
        String::try_from(v).map_err(|e| format!("LoadState of {unit}: {e}"))
    }

    fn unit_file_state(&self, unit: &str) -> Result<String, String> {
        self.call("GetUnitFileState", &(unit,))
    }

    fn need_daemon_reload(&self, unit: &str) -> Result<bool, String> {
        let v = self.unit_property(unit, "NeedDaemonReload")?;
        bool::try_from(v).map_err(|e| format!("NeedDaemonReload of {unit}: {e}"))
    }

    fn wants(&self, unit: &str) -> Result<Vec<String>, String> {
        let v = self.unit_property(unit, "Wants")?;
        Vec::<String>::try_from(v).map_err(|e| format!("Wants of {unit}: {e}"))
    }

    fn kill_main(&self, unit: &str, signal: i32) -> Result<(), String> {
        self.call::<_, ()>("KillUnit", &(unit, "main", signal))
    }
}

/// `WantedBy=` targets from a unit's `[Install]` section.
pub fn wanted_by(unit_text: &str) -> Vec<String> {
    let mut in_install = false;
    let mut out = Vec::new();
    for line in unit_text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_install = line == "[Install]";
        } else if in_install {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "WantedBy" {
                    out.extend(v.split_whitespace().map(str::to_string));
                }
            }
        }
    }
    out
}

fn valid_unit_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() < 256
        && n.contains('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':'))
}

/// Writes unit files (root:root 0644, atomically, unchanged files left alone) to
/// `/etc/systemd/system` under `root`.
pub fn write_unit_files(root: &HostRoot, units: &[(&str, &[u8])]) -> Result<WriteOutcome, FsError> {
    let dir = root.path(UNIT_DIR);
    if !dir.exists() {
        ensure_dir(&dir, Ownership::root(0o755))?;
    }
    let mut outcome = WriteOutcome::Unchanged;
    for (name, text) in units {
        outcome = outcome.or(write_atomic(&dir.join(name), text, Ownership::root(0o644))?);
    }
    Ok(outcome)
}

/// Enables units as files: `<target>.wants/<unit>` symlinks to `/etc/systemd/system/<unit>`.
/// Returns the symlinks created or corrected.
pub fn enable_as_files(
    root: &HostRoot,
    units: &[(String, Vec<u8>)],
) -> Result<Vec<String>, FsError> {
    let mut made = Vec::new();
    for (name, text) in units {
        let dest = format!("{UNIT_DIR}/{name}");
        made.extend(enable_file_as_files(
            root,
            name,
            &dest,
            &String::from_utf8_lossy(text),
        )?);
    }
    Ok(made)
}

/// Enables one unit whose file is at `dest` (a host path: ours in `/etc/systemd/system`, or a
/// vendor unit under `/usr/lib/systemd/system`) as files, from its `[Install] WantedBy=`.
/// Returns the symlinks created or corrected.
pub fn enable_file_as_files(
    root: &HostRoot,
    name: &str,
    dest: &str,
    text: &str,
) -> Result<Vec<String>, FsError> {
    let mut made = Vec::new();
    for target in wanted_by(text) {
        if !valid_unit_name(&target) {
            continue;
        }
        let wants = root.path(UNIT_DIR).join(format!("{target}.wants"));
        if !wants.exists() {
            ensure_dir(&wants, Ownership::root(0o755))?;
        }
        let link = wants.join(name);
        if std::fs::read_link(&link).ok().as_deref() == Some(Path::new(dest)) {
            continue;
        }
        // Create under a temporary name and rename over, so a killed run leaves no half state.
        let tmp = wants.join(format!(".{name}.clawster-tmp"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(dest, &tmp).map_err(|e| FsError::new("symlink", &tmp, e))?;
        std::fs::rename(&tmp, &link).map_err(|e| FsError::new("rename into", &link, e))?;
        made.push(format!("{} -> {dest}", link.display()));
    }
    Ok(made)
}

/// Enables `unit` (whose shipped text is `text`) and starts it unless it is already active.
/// Live (`sd` given): EnableUnitFiles, Reload, then StartUnit without waiting on the job.
/// Offline (`None`: an image being baked, or `--no-start`): the enablement symlinks, so it starts
/// at the next boot. Returns whether anything changed and what was done.
pub fn enable_and_start(
    root: &HostRoot,
    sd: Option<&dyn Systemd>,
    unit: &str,
    text: &str,
) -> Result<(bool, String), String> {
    let Some(sd) = sd else {
        let made = enable_as_files(root, &[(unit.to_string(), text.as_bytes().to_vec())])
            .map_err(|e| format!("{e:#}"))?;
        return Ok((
            !made.is_empty(),
            format!("{unit} enabled as files; it starts at the next boot"),
        ));
    };
    let changes = sd.enable(&[unit])?;
    sd.reload()?;
    if sd.active_state(unit)? == "active" {
        return Ok((!changes.is_empty(), format!("{unit} enabled and active")));
    }
    let job = sd.start_no_block(unit)?;
    Ok((true, format!("{unit} enabled; start queued as {job}")))
}

/// Why the manager's view of `units` (name, shipped text) and of `dropin_owners` (units that
/// have a drop-in of ours) differs from the files on disk, i.e. why a `Reload` is needed; empty
/// when it provably is not. Asked after enabling: a unit whose file or drop-ins changed since it
/// was loaded says `NeedDaemonReload`; an enablement symlink the loaded target does not show in
/// its `Wants` was made after the target was loaded. A unit the manager has not loaded yet is
/// loaded from disk by the question itself (`LoadUnit`), so it cannot be stale.
pub fn reload_reasons(
    sd: &dyn Systemd,
    units: &[(&str, &str)],
    dropin_owners: &[&str],
) -> Result<Vec<String>, String> {
    let mut why = Vec::new();
    for u in units
        .iter()
        .map(|(n, _)| *n)
        .chain(dropin_owners.iter().copied())
    {
        if sd.need_daemon_reload(u)? {
            why.push(format!("{u} changed on disk since it was loaded"));
        }
    }
    for (name, text) in units {
        for target in wanted_by(text) {
            if !sd.wants(&target)?.iter().any(|w| w == name) {
                why.push(format!("{target} does not want {name} yet"));
            }
        }
    }
    Ok(why)
}

/// True when every `WantedBy=` symlink of the unit exists and points at our unit file.
pub fn enabled_as_files(root: &HostRoot, name: &str, text: &str) -> bool {
    let targets = wanted_by(text);
    !targets.is_empty()
        && targets.iter().all(|t| {
            let link = root.path(UNIT_DIR).join(format!("{t}.wants")).join(name);
            std::fs::read_link(link).ok().as_deref()
                == Some(Path::new(&format!("{UNIT_DIR}/{name}")))
        })
}

/// Where systemd looks for unit files, most local first (`/lib/...` and `/usr/lib/...` both, for
/// split-/usr hosts).
pub const UNIT_SEARCH_PATH: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The unit file that defines `name` under `root` (first in the search path), if any. A masked
/// unit's `/dev/null` link counts.
pub fn unit_file(root: &HostRoot, name: &str) -> Option<std::path::PathBuf> {
    UNIT_SEARCH_PATH
        .iter()
        .map(|d| root.path(d).join(name))
        .find(|p| std::fs::symlink_metadata(p).is_ok())
}

/// `Alias=` names from a unit's `[Install]` section.
pub fn aliases(unit_text: &str) -> Vec<String> {
    install_values(unit_text, "Alias")
}

fn install_values(unit_text: &str, key: &str) -> Vec<String> {
    let mut in_install = false;
    let mut out = Vec::new();
    for line in unit_text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_install = line == "[Install]";
        } else if in_install {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    out.extend(v.split_whitespace().map(str::to_string));
                }
            }
        }
    }
    out
}

/// True when `/etc/systemd/system/<name>` is a link to `/dev/null` (what `systemctl mask` makes).
pub fn masked_as_files(root: &HostRoot, name: &str) -> bool {
    std::fs::read_link(root.path(UNIT_DIR).join(name))
        .ok()
        .as_deref()
        == Some(Path::new("/dev/null"))
}

/// Disables units as files, the way `systemctl --root disable` does: removes every symlink under
/// `/etc/systemd/system` (also in `*.wants/` and `*.requires/`) whose name or target names one of
/// `units`, except `/dev/null` masks. Returns what it removed.
pub fn disable_as_files(root: &HostRoot, units: &[&str]) -> Result<Vec<String>, FsError> {
    let base = root.path(UNIT_DIR);
    let mut removed = Vec::new();
    let mut dirs = vec![base.clone()];
    if let Ok(rd) = std::fs::read_dir(&base) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if (n.ends_with(".wants") || n.ends_with(".requires")) && e.path().is_dir() {
                dirs.push(e.path());
            }
        }
    }
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(target) = std::fs::read_link(&path) else {
                continue;
            };
            if target == Path::new("/dev/null") {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let tname = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if units.iter().any(|u| *u == name || *u == tname) {
                std::fs::remove_file(&path).map_err(|e| FsError::new("remove", &path, e))?;
                removed.push(format!("{} -> {}", path.display(), target.display()));
            }
        }
    }
    Ok(removed)
}

/// Masks units as files: `/etc/systemd/system/<unit>` becomes a link to `/dev/null`, replacing
/// whatever symlink was there (an alias link of a disabled unit). A regular file there (a unit
/// an administrator wrote) is an error, never replaced. Returns the units newly masked.
pub fn mask_as_files(root: &HostRoot, units: &[&str]) -> Result<Vec<String>, FsError> {
    let dir = root.path(UNIT_DIR);
    if !dir.exists() {
        ensure_dir(&dir, Ownership::root(0o755))?;
    }
    let mut made = Vec::new();
    for u in units {
        if !valid_unit_name(u) || masked_as_files(root, u) {
            continue;
        }
        let link = dir.join(u);
        if let Ok(m) = std::fs::symlink_metadata(&link) {
            if !m.file_type().is_symlink() {
                return Err(FsError::new(
                    "mask",
                    &link,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "a unit file (not a symlink) is in the way",
                    ),
                ));
            }
        }
        let tmp = dir.join(format!(".{u}.clawster-tmp"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink("/dev/null", &tmp)
            .map_err(|e| FsError::new("symlink", &tmp, e))?;
        std::fs::rename(&tmp, &link).map_err(|e| FsError::new("rename into", &link, e))?;
        made.push(u.to_string());
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_by_reads_install_section_only() {
        let t =
            "[Unit]\nWantedBy=nope.target\n[Install]\nWantedBy=multi-user.target  other.target\n";
        assert_eq!(wanted_by(t), vec!["multi-user.target", "other.target"]);
        assert!(wanted_by("[Service]\nExecStart=/x\n").is_empty());
    }

    #[test]
    fn disable_and_mask_as_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        let lib = root.path("/lib/systemd/system");
        std::fs::create_dir_all(&lib).expect("mkdir");
        std::fs::write(
            lib.join("ssh.service"),
            "[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n",
        )
        .expect("unit");
        let etc = root.path(UNIT_DIR);
        std::fs::create_dir_all(etc.join("multi-user.target.wants")).expect("mkdir");
        std::os::unix::fs::symlink(
            "/lib/systemd/system/ssh.service",
            etc.join("multi-user.target.wants/ssh.service"),
        )
        .expect("ln");
        std::os::unix::fs::symlink("/lib/systemd/system/ssh.service", etc.join("sshd.service"))
            .expect("ln");
        std::os::unix::fs::symlink(
            "/lib/systemd/system/cron.service",
            etc.join("multi-user.target.wants/cron.service"),
        )
        .expect("ln");
        assert_eq!(
            aliases(&std::fs::read_to_string(lib.join("ssh.service")).expect("read")),
            vec!["sshd.service"]
        );
        let removed = disable_as_files(&root, &["ssh.service", "sshd.service"]).expect("disable");
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(
            etc.join("multi-user.target.wants/cron.service").exists()
                || std::fs::symlink_metadata(etc.join("multi-user.target.wants/cron.service"))
                    .is_ok(),
            "other units untouched"
        );
        assert_eq!(
            mask_as_files(&root, &["ssh.service", "sshd.service"])
                .expect("mask")
                .len(),
            2
        );
        assert!(masked_as_files(&root, "ssh.service") && masked_as_files(&root, "sshd.service"));
        assert!(mask_as_files(&root, &["ssh.service"])
            .expect("mask")
            .is_empty());
        assert!(
            disable_as_files(&root, &["ssh.service"])
                .expect("again")
                .is_empty(),
            "masks are kept"
        );
        assert_eq!(
            unit_file(&root, "ssh.service"),
            Some(etc.join("ssh.service"))
        );
        std::fs::write(etc.join("mine.service"), "[Service]\n").expect("unit");
        let err = mask_as_files(&root, &["mine.service"]).expect_err("regular file in the way");
        assert!(err.to_string().contains("mine.service"), "{err}");
    }

    #[test]
    fn file_enablement_converges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        let units = vec![(
            "sysbox.service".to_string(),
            b"[Install]\nWantedBy=multi-user.target\n".to_vec(),
        )];
        assert_eq!(enable_as_files(&root, &units).expect("enable").len(), 1);
        assert!(enable_as_files(&root, &units).expect("enable").is_empty());
        assert!(enabled_as_files(
            &root,
            "sysbox.service",
            "[Install]\nWantedBy=multi-user.target\n"
        ));
    }
}
