//! Kernel parameters: read, raise-only or exact writes through `/proc/sys`, and persistence in
//! `/etc/sysctl.d`.
//!
//! [`Sysctl`] takes the directory that stands for `/proc/sys` as a parameter, so tests can point
//! it at a temp directory. Offline work on a root filesystem (`--root DIR`) must never construct a
//! live [`Sysctl`]: it only renders the persisted file with [`render_conf`].

use std::fs;
use std::io;
use std::path::PathBuf;

/// An error reading or writing one kernel parameter.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The key has characters that cannot name a parameter.
    #[error("invalid sysctl key {key:?}")]
    InvalidKey {
        /// The key as given.
        key: String,
    },
    /// Reading the parameter failed.
    #[error("read sysctl {key} ({path})")]
    Read {
        /// The key.
        key: String,
        /// Its file under /proc/sys.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Writing the parameter failed.
    #[error("set sysctl {key} = {value} ({path})")]
    Write {
        /// The key.
        key: String,
        /// The value we tried to set.
        value: String,
        /// Its file under /proc/sys.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The current value is not a number where a number was expected.
    #[error("sysctl {key} has non-numeric value {value:?}")]
    NotNumeric {
        /// The key.
        key: String,
        /// What the kernel reported.
        value: String,
    },
}

/// What a sysctl write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysctlChange {
    /// The value was already what we wanted (or higher, for raise-only writes).
    Unchanged {
        /// The value in force.
        current: String,
    },
    /// The value was changed.
    Changed {
        /// The value before.
        from: String,
        /// The value now.
        to: String,
    },
}

/// Access to the kernel parameters under one `/proc/sys` directory.
#[derive(Debug, Clone)]
pub struct Sysctl {
    proc_sys: PathBuf,
}

impl Default for Sysctl {
    fn default() -> Self {
        Self::live()
    }
}

impl Sysctl {
    /// The running kernel's parameters.
    pub fn live() -> Self {
        Self {
            proc_sys: PathBuf::from("/proc/sys"),
        }
    }

    /// Parameters under another directory laid out like `/proc/sys` (tests).
    pub fn at(proc_sys: impl Into<PathBuf>) -> Self {
        Self {
            proc_sys: proc_sys.into(),
        }
    }

    /// The file of a dotted key (`net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`).
    pub fn path_of(&self, key: &str) -> Result<PathBuf, SysctlError> {
        validate_key(key)?;
        Ok(self.proc_sys.join(key.replace('.', "/")))
    }

    /// True when the running kernel has this parameter (some are distribution-specific, e.g.
    /// `kernel.unprivileged_userns_clone` exists on Debian and Ubuntu kernels only).
    pub fn exists(&self, key: &str) -> Result<bool, SysctlError> {
        Ok(self.path_of(key)?.exists())
    }

    /// The current value, whitespace-trimmed (multi-value keys keep their inner tabs).
    pub fn read(&self, key: &str) -> Result<String, SysctlError> {
        let path = self.path_of(key)?;
        fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|source| SysctlError::Read {
                key: key.into(),
                path,
                source,
            })
    }

    /// Sets the value exactly.
    pub fn set(&self, key: &str, value: &str) -> Result<SysctlChange, SysctlError> {
        let current = self.read(key)?;
        if normalize(&current) == normalize(value) {
            return Ok(SysctlChange::Unchanged { current });
        }
        let path = self.path_of(key)?;
        fs::write(&path, format!("{value}\n")).map_err(|source| SysctlError::Write {
            key: key.into(),
            value: value.into(),
            path,
            source,
        })?;
        Ok(SysctlChange::Changed {
            from: current,
            to: value.into(),
        })
    }

    /// Raises a numeric value to at least `min`; never lowers it.
    pub fn raise_to(&self, key: &str, min: u64) -> Result<SysctlChange, SysctlError> {
        let current = self.read(key)?;
        let now: u64 = current.parse().map_err(|_| SysctlError::NotNumeric {
            key: key.into(),
            value: current.clone(),
        })?;
        if now >= min {
            return Ok(SysctlChange::Unchanged { current });
        }
        self.set(key, &min.to_string())
    }
}

fn normalize(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn validate_key(key: &str) -> Result<(), SysctlError> {
    let ok = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        });
    if ok {
        Ok(())
    } else {
        Err(SysctlError::InvalidKey { key: key.into() })
    }
}

/// Renders a sysctl.d file: a header comment naming its owner, then `key = value` lines in the
/// given order.
pub fn render_conf(owner: &str, entries: &[(String, String)]) -> String {
    let mut out = format!("# Written by {owner}; edits are overwritten on its next run.\n");
    for (k, v) in entries {
        out.push_str(k);
        out.push_str(" = ");
        out.push_str(v);
        out.push('\n');
    }
    out
}

/// Parses `key = value` lines of a sysctl.d file, skipping blanks and `#`/`;` comments.
/// A leading `-` (ignore-failure marker) is stripped from the key.
pub fn parse_conf(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().trim_start_matches('-').to_string(),
                v.trim().to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc() -> (tempfile::TempDir, Sysctl) {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("kernel")).expect("mkdir");
        fs::create_dir_all(dir.path().join("net/ipv4")).expect("mkdir");
        fs::write(dir.path().join("kernel/pid_max"), "32768\n").expect("seed");
        fs::write(dir.path().join("net/ipv4/ip_forward"), "0\n").expect("seed");
        fs::write(dir.path().join("kernel/keys_name"), "abc\n").expect("seed");
        let s = Sysctl::at(dir.path());
        (dir, s)
    }

    #[test]
    fn raise_only_never_lowers() {
        let (_d, s) = fake_proc();
        assert_eq!(
            s.raise_to("kernel.pid_max", 4194304).expect("raise"),
            SysctlChange::Changed {
                from: "32768".into(),
                to: "4194304".into()
            }
        );
        assert_eq!(s.read("kernel.pid_max").expect("read"), "4194304");
        assert_eq!(
            s.raise_to("kernel.pid_max", 1000).expect("raise"),
            SysctlChange::Unchanged {
                current: "4194304".into()
            }
        );
        assert_eq!(s.read("kernel.pid_max").expect("read"), "4194304");
    }

    #[test]
    fn set_is_idempotent() {
        let (_d, s) = fake_proc();
        assert!(matches!(
            s.set("net.ipv4.ip_forward", "1").expect("set"),
            SysctlChange::Changed { .. }
        ));
        assert!(matches!(
            s.set("net.ipv4.ip_forward", "1").expect("set"),
            SysctlChange::Unchanged { .. }
        ));
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        let (_d, s) = fake_proc();
        let e = s.read("kernel/../../etc").expect_err("invalid");
        assert!(e.to_string().contains("kernel/../../etc"), "{e}");
        assert!(!s
            .exists("kernel.unprivileged_userns_clone")
            .expect("exists"));
        let e = s.raise_to("kernel.keys_name", 5).expect_err("not numeric");
        assert!(e.to_string().contains("kernel.keys_name"), "{e}");
        let e = s.read("kernel.nope").expect_err("absent");
        assert!(e.to_string().contains("kernel.nope"), "{e}");
    }

    #[test]
    fn conf_round_trip() {
        let entries = vec![("net.ipv4.ip_forward".to_string(), "1".to_string())];
        let text = render_conf("clawster-nat-agent", &entries);
        assert!(text.starts_with("# Written by clawster-nat-agent"));
        assert_eq!(parse_conf(&text), entries);
        assert_eq!(
            parse_conf("; c\n-kernel.x=2\n\n# y\nfs.a =  3 \n"),
            vec![("kernel.x".into(), "2".into()), ("fs.a".into(), "3".into())]
        );
    }
}
