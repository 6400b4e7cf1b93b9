//! Kernel parameters Sysbox needs: the package's sysctl file plus `user.max_user_namespaces`,
//! applied live (raise only, never lower) and persisted in `/etc/sysctl.d`.

use clawster_core::fs::{ensure_dir, write_atomic, FsError, HostRoot, Ownership, WriteOutcome};
use clawster_core::sysctl::{parse_conf, render_conf, Sysctl, SysctlChange, SysctlError};

/// The persisted file (same name as the package's, so it also masks `/lib/sysctl.d/...`).
pub const SYSCTL_CONF: &str = "/etc/sysctl.d/99-sysbox-sysctl.conf";
/// Sysbox needs user namespaces; its own start script raises this to at least 10000.
pub const USERNS_KEY: &str = "user.max_user_namespaces";
/// The minimum for [`USERNS_KEY`].
pub const USERNS_MIN: u64 = 10000;

/// The wanted parameters: the package's (numeric ones only) plus the user namespace minimum.
pub fn wanted(package_conf: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for (k, v) in parse_conf(package_conf) {
        match v.parse::<u64>() {
            Ok(n) => match out.iter_mut().find(|(key, _)| *key == k) {
                Some(e) => e.1 = n,
                None => out.push((k, n)),
            },
            Err(_) => tracing::warn!(
                clawster_check = "sysbox.sysctl",
                "ignoring non-numeric {k} = {v}"
            ),
        }
    }
    if !out.iter().any(|(k, _)| k == USERNS_KEY) {
        out.push((USERNS_KEY.to_string(), USERNS_MIN));
    }
    out
}

/// What the sysctl step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysctlOutcome {
    /// Keys raised live: (key, from, to).
    pub raised: Vec<(String, String, String)>,
    /// Keys the running kernel does not have (left out of the file).
    pub dropped: Vec<String>,
    /// Live writes the kernel refused (the value is persisted all the same).
    pub refused: Vec<String>,
    /// Whether the persisted file changed.
    pub file_changed: bool,
}

/// Applies `wanted` through `live` (None = offline root: nothing applied, every key persisted with
/// systemd-sysctl's `-` prefix so a kernel that lacks one ignores it at boot) and persists it.
pub fn apply(
    root: &HostRoot,
    wanted: &[(String, u64)],
    live: Option<&Sysctl>,
) -> Result<SysctlOutcome, SysctlStepError> {
    let mut out = SysctlOutcome::default();
    let mut persist: Vec<(String, String)> = Vec::new();
    for (key, min) in wanted {
        match live {
            Some(s) => {
                if !s.exists(key)? {
                    out.dropped.push(key.clone());
                    continue;
                }
                let now = match s.raise_to(key, *min) {
                    Ok(SysctlChange::Unchanged { current }) => current,
                    Ok(SysctlChange::Changed { from, to }) => {
                        out.raised.push((key.clone(), from, to.clone()));
                        to
                    }
                    // Policy: a kernel that refuses the write (read-only /proc/sys in a container,
                    // a locked-down host) is reported and the value is still persisted for boot.
                    Err(e @ SysctlError::Write { .. }) => {
                        out.refused.push(format!(
                            "{e}: {}",
                            std::error::Error::source(&e)
                                .map(|s| s.to_string())
                                .unwrap_or_default()
                        ));
                        s.read(key).unwrap_or_default()
                    }
                    Err(e) => return Err(e.into()),
                };
                // Persist what is in force, so boot never lowers a value someone raised further.
                let keep = now.parse::<u64>().map(|n| n.max(*min)).unwrap_or(*min);
                persist.push((key.clone(), keep.to_string()));
            }
            None => persist.push((format!("-{key}"), min.to_string())),
        }
    }
    let path = root.path(SYSCTL_CONF);
    let dir = path.parent().expect("sysctl.d file has a parent");
    if !dir.exists() {
        ensure_dir(dir, Ownership::root(0o755))?;
    }
    let text = render_conf("clawster-agent bootstrap (Sysbox)", &persist);
    out.file_changed =
        write_atomic(&path, text.as_bytes(), Ownership::root(0o644))? == WriteOutcome::Changed;
    Ok(out)
}

/// The sysctl step failed.
#[derive(Debug, thiserror::Error)]
pub enum SysctlStepError {
    /// A live parameter could not be read or raised.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// The persisted file could not be written.
    #[error(transparent)]
    Fs(#[from] FsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_adds_userns_and_skips_text() {
        let w = wanted("kernel.pid_max = 4194304\n# c\nfoo.bar = a b\nkernel.pid_max=5\n");
        assert_eq!(
            w,
            vec![
                ("kernel.pid_max".into(), 5),
                (USERNS_KEY.into(), USERNS_MIN)
            ]
        );
    }

    #[test]
    fn live_raises_drops_absent_and_persists_in_force_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let proc_sys = dir.path().join("proc");
        std::fs::create_dir_all(proc_sys.join("kernel")).expect("mkdir");
        std::fs::create_dir_all(proc_sys.join("user")).expect("mkdir");
        std::fs::write(proc_sys.join("kernel/pid_max"), "9999999\n").expect("seed");
        std::fs::write(proc_sys.join("user/max_user_namespaces"), "0\n").expect("seed");
        let root = HostRoot::new(dir.path().join("root"));
        let w = vec![
            ("kernel.pid_max".to_string(), 4194304),
            ("kernel.unprivileged_userns_clone".to_string(), 1),
            (USERNS_KEY.to_string(), USERNS_MIN),
        ];
        let s = Sysctl::at(&proc_sys);
        let out = apply(&root, &w, Some(&s)).expect("apply");
        assert_eq!(
            out.dropped,
            vec!["kernel.unprivileged_userns_clone".to_string()]
        );
        assert_eq!(
            out.raised,
            vec![(USERNS_KEY.into(), "0".into(), "10000".into())]
        );
        assert!(out.file_changed);
        let text = std::fs::read_to_string(root.path(SYSCTL_CONF)).expect("read");
        assert!(text.contains("kernel.pid_max = 9999999\n"), "{text}");
        assert!(!text.contains("unprivileged"), "{text}");
        let again = apply(&root, &w, Some(&s)).expect("apply");
        assert!(again.raised.is_empty() && !again.file_changed);
    }
}
