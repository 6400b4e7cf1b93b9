//! The firewall where UFW is installed: UFW's own configuration, written as files (no `ufw`
//! binary is run; facts/host.md section 6 shows the result is identical to the CLI's), then
//! `ufw.service` enabled and restarted over D-Bus (its ExecStart, `ufw-init start`, loads them).
//!
//! - `/etc/ufw/ufw.conf`: `ENABLED=yes`
//! - `/etc/default/ufw`: `DEFAULT_INPUT_POLICY="DROP"`, `DEFAULT_OUTPUT_POLICY="ACCEPT"`, `IPV6=yes`
//! - `/etc/ufw/user.rules` / `user6.rules`: allow in on lo, deny in from 127.0.0.0/8 / ::1, each
//!   as the `### tuple ###` comment the CLI reads plus the iptables-restore line it loads.
//!
//! UFW's before-rules already keep established traffic and accept loopback ahead of these. Every
//! file is parsed before anything is written; one we cannot read as UFW's format stops the run,
//! naming it, and is left byte for byte. An operator's own `allow ... in` rule is kept but fails
//! the control (it opens an inbound port).

use std::path::PathBuf;

use clawster_core::fs::{read_optional, write_atomic, HostRoot, Ownership, WriteOutcome};

use super::BaselineError;

/// Files of UFW we write.
pub const UFW_CONF: &str = "/etc/ufw/ufw.conf";
/// Defaults file.
pub const UFW_DEFAULTS: &str = "/etc/default/ufw";
/// IPv4 user rules.
pub const USER_RULES: &str = "/etc/ufw/user.rules";
/// IPv6 user rules.
pub const USER6_RULES: &str = "/etc/ufw/user6.rules";

/// Our rules: (file, tuple comment, iptables-restore line).
pub const RULES: [(&str, &str, &str); 4] = [
    (
        USER_RULES,
        "### tuple ### allow any any 0.0.0.0/0 any 0.0.0.0/0 in_lo",
        "-A ufw-user-input -i lo -j ACCEPT",
    ),
    (
        USER_RULES,
        "### tuple ### deny any any 0.0.0.0/0 any 127.0.0.0/8 in",
        "-A ufw-user-input -s 127.0.0.0/8 -j DROP",
    ),
    (
        USER6_RULES,
        "### tuple ### allow any any ::/0 any ::/0 in_lo",
        "-A ufw6-user-input -i lo -j ACCEPT",
    ),
    (
        USER6_RULES,
        "### tuple ### deny any any ::/0 any ::1 in",
        "-A ufw6-user-input -s ::1 -j DROP",
    ),
];

/// Key settings: (file, key, value).
pub const SETTINGS: [(&str, &str, &str); 4] = [
    (UFW_CONF, "ENABLED", "yes"),
    (UFW_DEFAULTS, "DEFAULT_INPUT_POLICY", "\"DROP\""),
    (UFW_DEFAULTS, "DEFAULT_OUTPUT_POLICY", "\"ACCEPT\""),
    (UFW_DEFAULTS, "IPV6", "yes"),
];

/// True when UFW is installed under the root.
pub fn installed(root: &HostRoot) -> bool {
    [
        "/usr/sbin/ufw",
        "/lib/ufw/ufw-init",
        "/usr/lib/ufw/ufw-init",
    ]
    .iter()
    .any(|p| root.path(p).exists())
}

/// The new contents of every UFW file that has to change, computed before anything is written.
#[derive(Debug, Default)]
pub struct Plan {
    /// (host path, path under the root, new bytes, owner and mode kept).
    pub writes: Vec<(String, PathBuf, Vec<u8>, Ownership)>,
    /// Operator rules that open inbound ports.
    pub foreign_allows: Vec<String>,
}

fn ownership_of(path: &std::path::Path, default: Ownership) -> Ownership {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| Ownership {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        })
        .unwrap_or(default)
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Sets `KEY=value` lines in a shell-style settings file; an unreadable line is an error.
pub fn set_keys(text: &str, keys: &[(&str, &str)]) -> Result<String, String> {
    let mut lines: Vec<String> = Vec::new();
    let mut done = vec![false; keys.len()];
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            lines.push(line.to_string());
            continue;
        }
        let Some((k, _)) = t.split_once('=') else {
            return Err(format!("line {}: {t:?} is not KEY=VALUE", n + 1));
        };
        if !valid_key(k) {
            return Err(format!("line {}: {k:?} is not a setting name", n + 1));
        }
        match keys.iter().position(|(key, _)| *key == k) {
            Some(i) => {
                if !done[i] {
                    lines.push(format!("{k}={}", keys[i].1));
                    done[i] = true;
                }
            }
            None => lines.push(line.to_string()),
        }
    }
    for (i, (k, v)) in keys.iter().enumerate() {
        if !done[i] {
            lines.push(format!("{k}={v}"));
        }
    }
    Ok(lines.join("\n") + "\n")
}

/// Inserts our tuples and rules right after `### RULES ###` (those not there yet); returns the
/// new text and the operator's `allow ... in` tuples.
pub fn add_rules(text: &str, rules: &[(&str, &str)]) -> Result<(String, Vec<String>), String> {
    for marker in ["*filter", "### RULES ###", "### END RULES ###", "COMMIT"] {
        if !text.lines().any(|l| l.trim() == marker) {
            return Err(format!("no {marker:?} line (not a UFW rules file)"));
        }
    }
    let ours: Vec<&str> = rules.iter().map(|(t, _)| *t).collect();
    let foreign: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("### tuple ### allow") && !ours.contains(l))
        .filter(|l| {
            l.split_whitespace()
                .last()
                .is_some_and(|d| d == "in" || d.starts_with("in_"))
        })
        .map(|l| l.trim_start_matches("### tuple ### ").to_string())
        .collect();
    let missing: Vec<&(&str, &str)> = rules
        .iter()
        .filter(|(t, r)| {
            !(text.lines().any(|l| l.trim() == *t) && text.lines().any(|l| l.trim() == *r))
        })
        .collect();
    if missing.is_empty() {
        return Ok((text.to_string(), foreign));
    }
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == "### RULES ###" {
            for (t, r) in &missing {
                out.push('\n');
                out.push_str(t);
                out.push('\n');
                out.push_str(r);
                out.push('\n');
            }
        }
    }
    if !text.ends_with('\n') {
        out.pop();
    }
    Ok((out, foreign))
}

/// Reads every UFW file and computes the changes; `None` when UFW is not installed.
pub fn preflight(root: &HostRoot) -> Result<Option<Plan>, BaselineError> {
    if !installed(root) {
        return Ok(None);
    }
    let mut plan = Plan::default();
    for file in [UFW_CONF, UFW_DEFAULTS] {
        let path = root.path(file);
        let text = read_optional(&path)?.unwrap_or_default();
        let text = String::from_utf8(text)
            .map_err(|_| BaselineError::malformed(&path, "not UTF-8 text"))?;
        let keys: Vec<(&str, &str)> = SETTINGS
            .iter()
            .filter(|(f, _, _)| *f == file)
            .map(|(_, k, v)| (*k, *v))
            .collect();
        let new = set_keys(&text, &keys).map_err(|e| BaselineError::malformed(&path, e))?;
        if new != text {
            let own = ownership_of(&path, Ownership::root(0o644));
            plan.writes.push((file.into(), path, new.into_bytes(), own));
        }
    }
    for file in [USER_RULES, USER6_RULES] {
        let path = root.path(file);
        let Some(bytes) = read_optional(&path)? else {
            return Err(BaselineError::malformed(
                &path,
                "missing although UFW is installed (reinstall ufw)",
            ));
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| BaselineError::malformed(&path, "not UTF-8 text"))?;
        let rules: Vec<(&str, &str)> = RULES
            .iter()
            .filter(|(f, _, _)| *f == file)
            .map(|(_, t, r)| (*t, *r))
            .collect();
        let (new, foreign) =
            add_rules(&text, &rules).map_err(|e| BaselineError::malformed(&path, e))?;
        plan.foreign_allows
            .extend(foreign.into_iter().map(|f| format!("{file}: allow {f}")));
        if new != text {
            let own = ownership_of(&path, Ownership::root(0o640));
            plan.writes.push((file.into(), path, new.into_bytes(), own));
        }
    }
    Ok(Some(plan))
}

/// Writes the planned files; returns whether anything changed.
pub fn write(plan: &Plan) -> Result<WriteOutcome, BaselineError> {
    let mut o = WriteOutcome::Unchanged;
    for (_, path, bytes, own) in &plan.writes {
        o = o.or(write_atomic(path, bytes, *own)?);
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_set_once_and_bad_lines_refused() {
        let t = "# c\nIPV6=no\nDEFAULT_INPUT_POLICY=\"ACCEPT\"\nOTHER=1\n";
        let n = set_keys(
            t,
            &[
                ("IPV6", "yes"),
                ("DEFAULT_INPUT_POLICY", "\"DROP\""),
                ("NEW", "x"),
            ],
        )
        .expect("set");
        assert_eq!(
            n,
            "# c\nIPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nOTHER=1\nNEW=x\n"
        );
        assert_eq!(set_keys(&n, &[("IPV6", "yes")]).expect("again"), n);
        assert!(set_keys("IPV6 yes\n", &[])
            .expect_err("bad")
            .contains("line 1"));
    }

    #[test]
    fn rules_go_after_the_marker_once() {
        let t = "*filter\n:ufw-user-input - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n### END RULES ###\nCOMMIT\n";
        let rules = [(RULES[0].1, RULES[0].2), (RULES[1].1, RULES[1].2)];
        let (n, foreign) = add_rules(t, &rules).expect("add");
        assert_eq!(foreign, vec!["allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in"]);
        let pos = |s: &str| n.find(s).expect(s);
        assert!(
            pos("### RULES ###") < pos(RULES[0].2) && pos(RULES[1].2) < pos("### END RULES ###")
        );
        assert_eq!(add_rules(&n, &rules).expect("again").0, n);
        assert!(add_rules("garbage\n", &rules)
            .expect_err("bad")
            .contains("*filter"));
    }
}
