//! `clawsterctl logs BOT [--window]`: journalctl's JSON lines (`--output=json`, one object per
//! record, newest first as the document asks) as readable lines, oldest first:
//!
//! ```text
//! 2026-12-02T07:00:00Z  window.request  refused  install "nginx" by uid 1000 ...  [package=nginx caller=uid 1000 pid 42 (node) decision=refused window=ab12]
//! ```
//!
//! journalctl writes a field as a string, as an array of byte values when it is not valid UTF-8,
//! as an array of those when the record has the field more than once, and as null when it is too
//! large; all four are read. Every value is cleaned before it is printed: records carry text the
//! bot chose (package names it asked for, its command name).

use std::collections::BTreeMap;

use clawster_core::logging::{FIELD_CHECK, FIELD_STATUS};
use clawster_core::timefmt::fmt_utc;
use serde_json::Value;

use super::clean;

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `__REALTIME_TIMESTAMP`, microseconds since the epoch.
    pub time_us: Option<u64>,
    /// Every field as text (not yet cleaned).
    pub fields: BTreeMap<String, String>,
}

impl Record {
    fn get(&self, k: &str) -> Option<&str> {
        self.fields
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// True for the window's audit records.
    pub fn is_window(&self) -> bool {
        self.get(FIELD_CHECK)
            .is_some_and(|c| c.starts_with("window."))
    }
}

/// journalctl's output, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    /// The records, oldest first.
    pub records: Vec<Record>,
    /// Lines that were not a JSON object (other than a last line SSM cut).
    pub bad_lines: usize,
    /// The last line was incomplete (the output was cut).
    pub cut_line: bool,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "[too large to show]".into(),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|n| u8::try_from(n).unwrap_or(b'?'))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" | "),
        other => other.to_string(),
    }
}

/// Reads journalctl's JSON lines. A last line that is not JSON counts as cut when `cut` (SSM
/// kept only the first 24,000 characters).
pub fn parse_journal(stdout: &str, cut: bool) -> Journal {
    let mut j = Journal::default();
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("-- "))
        .collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => {
                let time_us = map
                    .get("__REALTIME_TIMESTAMP")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok());
                let fields = map
                    .iter()
                    .filter(|(k, _)| !k.starts_with("__"))
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect();
                j.records.push(Record { time_us, fields });
            }
            _ if cut && i + 1 == lines.len() => j.cut_line = true,
            _ => j.bad_lines += 1,
        }
    }
    // journalctl --reverse gives newest first; people read oldest first. Stable, so records of
    // one microsecond keep their order relative to each other (reversed back).
    j.records.reverse();
    j.records.sort_by_key(|r| r.time_us.unwrap_or(0));
    j
}

/// One record as a line.
pub fn render_record(r: &Record) -> String {
    let time = r.time_us.map_or_else(
        || "????-??-??T??:??:??Z".to_string(),
        |us| fmt_utc((us / 1_000_000) as i64),
    );
    let field = |k: &str| clean(r.get(k).unwrap_or("-"));
    let mut line = format!(
        "{time}  {:<15}  {:<8}  {}",
        field(FIELD_CHECK),
        field(FIELD_STATUS),
        clean(r.get("MESSAGE").unwrap_or(""))
    );
    if r.is_window() {
        let mut extra = Vec::new();
        if let Some(p) = r.get("PACKAGE").or_else(|| r.get("PACKAGES")) {
            extra.push(format!("package={}", clean(p)));
        }
        if let Some(uid) = r.get("CALLER_UID") {
            let mut caller = format!("caller=uid {}", clean(uid));
            if let Some(pid) = r.get("CALLER_PID") {
                caller.push_str(&format!(" pid {}", clean(pid)));
            }
            if let Some(c) = r.get("CALLER_COMMAND") {
                caller.push_str(&format!(" ({})", clean(c)));
            }
            extra.push(caller);
        }
        if let Some(d) = r.get("DECISION") {
            extra.push(format!("decision={}", clean(d)));
        }
        if let Some(x) = r.get("EXIT_STATUS") {
            extra.push(format!("exit={}", clean(x)));
        }
        if let Some(w) = r.get("WINDOW_ID") {
            extra.push(format!("window={}", clean(w)));
        }
        if !extra.is_empty() {
            line.push_str(&format!("  [{}]", extra.join(" ")));
        }
    }
    line
}

/// journalctl's stdout as lines for the operator, with notes about what could not be read.
pub fn render_journal(stdout: &str, cut: bool) -> String {
    let j = parse_journal(stdout, cut);
    let mut out = String::new();
    if j.records.is_empty() {
        out.push_str("no records in that time\n");
    }
    for r in &j.records {
        out.push_str(&render_record(r));
        out.push('\n');
    }
    if j.cut_line {
        out.push_str("note: the oldest records were cut off by SSM's 24,000-character limit\n");
    }
    if j.bad_lines > 0 {
        out.push_str(&format!(
            "note: {} line(s) were not journal records and are not shown\n",
            j.bad_lines
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1796194801500000","__MONOTONIC_TIMESTAMP":"1","_BOOT_ID":"b","MESSAGE":"install \"nginx\" by uid 1000 (pid 42, node): refused: nginx is not on the list","PRIORITY":"4","CLAWSTER_CHECK":"window.request","CLAWSTER_STATUS":"refused","PACKAGE":"nginx","CALLER_UID":"1000","CALLER_PID":"42","CALLER_COMMAND":"node","DECISION":"refused","WINDOW_ID":"ab12"}"#;
    const HEALTH: &str = r#"{"__REALTIME_TIMESTAMP":"1796194800000000","MESSAGE":"sysbox-runc, sysbox-mgr, sysbox-fs 0755 root","CLAWSTER_CHECK":"sysbox.binaries","CLAWSTER_STATUS":"ok"}"#;

    #[test]
    fn records_read_oldest_first_with_window_fields() {
        // journalctl --reverse: newest first.
        let out = format!("{REQUEST}\n{HEALTH}\n");
        assert_eq!(
            render_journal(&out, false),
            "2026-12-02T07:00:00Z  sysbox.binaries  ok        sysbox-runc, sysbox-mgr, sysbox-fs 0755 root\n\
             2026-12-02T07:00:01Z  window.request   refused   install \"nginx\" by uid 1000 (pid 42, node): refused: nginx is not on the list  [package=nginx caller=uid 1000 pid 42 (node) decision=refused window=ab12]\n"
        );
    }

    #[test]
    fn binary_repeated_null_and_missing_fields() {
        let line = r#"{"__REALTIME_TIMESTAMP":"x","MESSAGE":[104,105,255],"CLAWSTER_CHECK":["window.open","window.close"],"PACKAGES":null}"#;
        let j = parse_journal(line, false);
        let r = &j.records[0];
        assert_eq!(r.time_us, None);
        assert_eq!(r.fields["MESSAGE"], "hi\u{fffd}");
        assert_eq!(r.fields["CLAWSTER_CHECK"], "window.open | window.close");
        assert_eq!(
            render_record(r),
            "????-??-??T??:??:??Z  window.open | window.close  -         hi\u{fffd}  [package=[too large to show]]"
        );
        // A record without a check (a plain log line) still shows its message.
        let plain = r#"{"__REALTIME_TIMESTAMP":"0","MESSAGE":"started"}"#;
        assert_eq!(
            render_journal(plain, false),
            "1970-01-01T00:00:00Z  -                -         started\n"
        );
        assert_eq!(render_journal("", false), "no records in that time\n");
        assert_eq!(
            render_journal("-- No entries --\n", false),
            "no records in that time\n"
        );
    }

    #[test]
    fn hostile_values_are_cleaned() {
        let evil = r#"{"__REALTIME_TIMESTAMP":"0","MESSAGE":"a\u001b[2J\nFAKE 2026 ok","CLAWSTER_CHECK":"window.request","CALLER_COMMAND":"\u001b]0;x\u0007","CALLER_UID":"0","PACKAGE":[27,91,50,74]}"#;
        let out = render_journal(evil, false);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert_eq!(out.lines().count(), 1, "{out:?}");
        assert!(out.contains("a\\u{1b}[2J\\nFAKE 2026 ok"), "{out:?}");
    }

    #[test]
    fn cut_and_bad_lines_are_reported() {
        let out = format!("{REQUEST}\n{HEALTH}\n{{\"__REALTIME_TIMESTAMP\":\"17961");
        let r = render_journal(&out, true);
        assert_eq!(r.lines().count(), 3, "{r}");
        assert!(
            r.ends_with("note: the oldest records were cut off by SSM's 24,000-character limit\n")
        );
        let r = render_journal(&format!("garbage\n{HEALTH}\n[1]\n"), false);
        assert!(
            r.ends_with("note: 2 line(s) were not journal records and are not shown\n"),
            "{r}"
        );
    }
}
