//! systemd, the process boundary: the manager over D-Bus ([`Systemd`], real implementation
//! [`DbusSystemd`]) and, for a root filesystem that is not running (`--root`), unit enablement as
//! files, the same `.wants/` symlinks `systemctl enable` creates from a unit's `[Install]` section.
//!
//! Boot code never waits on a job: `StartUnit` with mode `replace` returns once the job is queued.

use std::path::Path;

use clawster_core::fs::{ensure_dir, FsError, HostRoot, Ownership};

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
        let path: zbus::zvariant::OwnedObjectPath = self.call("LoadUnit", &(unit,))?;
        let msg = self
            .conn
            .call_method(
                Some(DEST),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.freedesktop.systemd1.Unit", "ActiveState"),
            )
            .map_err(|e| format!("ActiveState of {unit}: {e}"))?;
        let v: zbus::zvariant::OwnedValue = msg
            .body()
            .deserialize()
            .map_err(|e| format!("ActiveState of {unit}: {e}"))?;
        String::try_from(v).map_err(|e| format!("ActiveState of {unit}: {e}"))
    }

    fn unit_file_state(&self, unit: &str) -> Result<String, String> {
        self.call("GetUnitFileState", &(unit,))
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

/// Enables units as files: `<target>.wants/<unit>` symlinks to `/etc/systemd/system/<unit>`.
/// Returns the symlinks created or corrected.
pub fn enable_as_files(
    root: &HostRoot,
    units: &[(String, Vec<u8>)],
) -> Result<Vec<String>, FsError> {
    let mut made = Vec::new();
    for (name, text) in units {
        for target in wanted_by(&String::from_utf8_lossy(text)) {
            if !valid_unit_name(&target) {
                continue;
            }
            let wants = root.path(UNIT_DIR).join(format!("{target}.wants"));
            if !wants.exists() {
                ensure_dir(&wants, Ownership::root(0o755))?;
            }
            let link = wants.join(name);
            let dest = format!("{UNIT_DIR}/{name}");
            if std::fs::read_link(&link).ok().as_deref() == Some(Path::new(&dest)) {
                continue;
            }
            // Create under a temporary name and rename over, so a killed run leaves no half state.
            let tmp = wants.join(format!(".{name}.clawster-tmp"));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&dest, &tmp)
                .map_err(|e| FsError::new("symlink", &tmp, e))?;
            std::fs::rename(&tmp, &link).map_err(|e| FsError::new("rename into", &link, e))?;
            made.push(format!("{} -> {dest}", link.display()));
        }
    }
    Ok(made)
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
