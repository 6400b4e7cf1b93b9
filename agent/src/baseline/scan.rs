//! The secret scanner of `prepare-image`: finds credentials in an image's files and reports
//! file, line and kind with the value masked (never the value itself).
//!
//! Patterns (facts/host.md section 7, after gitleaks' rules, written as byte matchers so the
//! static binary needs no regex engine):
//!
//! - AWS access key ids: `(A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}` on word boundaries,
//!   except AWS's documentation keys ending in `EXAMPLE`; `aws_secret_access_key` with a
//!   40-character value;
//! - Telegram bot tokens without context: 5-16 digits (no digit before), `:A`, 34 of
//!   `[A-Za-z0-9_-]` (none after);
//! - LLM API keys: `sk-` on a word boundary followed by 20+ of `[A-Za-z0-9_-]` (Anthropic
//!   `sk-ant-…`, OpenAI `sk-proj-…`/`…T3BlbkFJ…`, others), skipping placeholders (a real key
//!   has digits, letters and at least 10 distinct characters);
//! - private keys: `-----BEGIN … PRIVATE KEY-----` followed by a key body (a newline, or an
//!   escaped `\n` in JSON or SQLite text, then base64), so a program that merely contains the
//!   header text (this one) is not reported.
//!
//! Every regular file is read as bytes (SQLite databases and logs included); symlinks are not
//! followed; files over [`MAX_FILE`] are listed as skipped.

use std::path::{Path, PathBuf};

use clawster_core::fs::HostRoot;

/// Files larger than this are not read (reported as skipped).
pub const MAX_FILE: u64 = 256 * 1024 * 1024;

/// Directories scanned by default.
pub const SCAN_DIRS: [&str; 8] = [
    "/etc",
    "/home",
    "/root",
    "/var",
    "/opt",
    "/srv",
    "/usr/local",
    "/tmp",
];
/// Never scanned: kernel and runtime file systems, container images, package archives.
pub const SKIP_DIRS: [&str; 6] = [
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/var/lib/docker",
    "/var/cache/apt/archives",
];

/// One secret found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hit {
    /// Host path of the file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// What it looks like.
    pub kind: String,
    /// The value, masked.
    pub masked: String,
}

/// What a scan looked at.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Scan {
    /// Secrets found.
    pub hits: Vec<Hit>,
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Files too large to read.
    pub skipped: Vec<String>,
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn mask(v: &[u8]) -> String {
    let head: String = v.iter().take(4).map(|&b| b as char).collect();
    format!("{head}…({} chars)", v.len())
}

fn aws_key_at(d: &[u8], i: usize) -> Option<usize> {
    let p = &d[i..];
    let prefix = p.starts_with(b"AKIA")
        || p.starts_with(b"ASIA")
        || p.starts_with(b"ABIA")
        || p.starts_with(b"ACCA")
        || (p.starts_with(b"A3T")
            && p.get(3)
                .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    if !prefix || (i > 0 && word(d[i - 1])) || p.len() < 20 {
        return None;
    }
    if !p[4..20]
        .iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return None;
    }
    if p.get(20).is_some_and(|&b| word(b)) || p[..20].ends_with(b"EXAMPLE") {
        return None;
    }
    Some(20)
}

fn aws_secret_at(d: &[u8], i: usize) -> Option<(usize, usize)> {
    const K: &[u8] = b"aws_secret_access_key";
    if d.len() < i + K.len() || !d[i..i + K.len()].eq_ignore_ascii_case(K) {
        return None;
    }
    let mut j = i + K.len();
    let skip = |j: &mut usize, set: &[u8]| {
        while *j < d.len() && set.contains(&d[*j]) {
            *j += 1;
        }
    };
    skip(&mut j, b" \t\"'");
    if j >= d.len() || !(d[j] == b'=' || d[j] == b':') {
        return None;
    }
    j += 1;
    skip(&mut j, b" \t\"'");
    let start = j;
    while j < d.len() && (d[j].is_ascii_alphanumeric() || d[j] == b'/' || d[j] == b'+') {
        j += 1;
    }
    (j - start == 40).then_some((start, 40))
}

fn telegram_at(d: &[u8], colon: usize) -> Option<(usize, usize)> {
    let mut s = colon;
    while s > 0 && d[s - 1].is_ascii_digit() {
        s -= 1;
    }
    let digits = colon - s;
    if !(5..=16).contains(&digits) {
        return None;
    }
    let rest = &d[colon + 1..];
    if rest.first() != Some(&b'A') || rest.len() < 35 || !rest[1..35].iter().all(|&b| token_char(b))
    {
        return None;
    }
    if rest.get(35).is_some_and(|&b| token_char(b)) {
        return None;
    }
    Some((s, digits + 36))
}

fn sk_key_at(d: &[u8], i: usize) -> Option<(usize, &'static str)> {
    if !d[i..].starts_with(b"sk-") || (i > 0 && (word(d[i - 1]) || d[i - 1] == b'-')) {
        return None;
    }
    let mut j = i + 3;
    while j < d.len() && token_char(d[j]) {
        j += 1;
    }
    let body = &d[i + 3..j];
    if body.len() < 20 {
        return None;
    }
    let digits = body.iter().any(u8::is_ascii_digit);
    let letters = body.iter().any(u8::is_ascii_alphabetic);
    let mut distinct = [false; 256];
    body.iter().for_each(|&b| distinct[b as usize] = true);
    if !digits || !letters || distinct.iter().filter(|x| **x).count() < 10 {
        return None;
    }
    let kind = if body.starts_with(b"ant-") {
        "Anthropic API key"
    } else if body.starts_with(b"proj-")
        || body.starts_with(b"svcacct-")
        || body.starts_with(b"admin-")
        || body.windows(8).any(|w| w == b"T3BlbkFJ")
    {
        "OpenAI API key"
    } else {
        "API key (sk-)"
    };
    Some((j - i, kind))
}

fn private_key_at(d: &[u8], i: usize) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"PRIVATE KEY-----";
    if !d[i..].starts_with(BEGIN) {
        return None;
    }
    let window = &d[i + BEGIN.len()..d.len().min(i + BEGIN.len() + 40)];
    let pos = window.windows(END.len()).position(|w| w == END)?;
    if window[..pos].contains(&b'\n') {
        return None;
    }
    let mut j = i + BEGIN.len() + pos + END.len();
    if d[j..].starts_with(b"\r\n") {
        j += 2;
    } else if d[j..].starts_with(b"\n") || d[j..].starts_with(b"\\n") {
        j += if d[j] == b'\n' { 1 } else { 2 };
    } else {
        return None;
    }
    let body = d[j..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'+' || **b == b'/')
        .count();
    (body >= 16).then_some(j - i)
}

/// Every secret in `data` as (line, kind, masked value).
pub fn scan_bytes(data: &[u8]) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        let mut advance = 1;
        match b {
            b'\n' => line += 1,
            b'-' => {
                if let Some(n) = private_key_at(data, i) {
                    out.push((
                        line,
                        "private key".to_string(),
                        "-----BEGIN … PRIVATE KEY-----".to_string(),
                    ));
                    advance = n;
                }
            }
            b'A' => {
                if let Some(n) = aws_key_at(data, i) {
                    out.push((line, "AWS access key id".to_string(), mask(&data[i..i + n])));
                    advance = n;
                }
            }
            b'a' => {
                if let Some((s, n)) = aws_secret_at(data, i) {
                    out.push((
                        line,
                        "AWS secret access key".to_string(),
                        mask(&data[s..s + n]),
                    ));
                    advance = s + n - i;
                }
            }
            b':' => {
                if let Some((s, n)) = telegram_at(data, i) {
                    out.push((
                        line,
                        "Telegram bot token".to_string(),
                        mask(&data[s..s + n]),
                    ));
                    advance = s + n - i;
                }
            }
            b's' => {
                if let Some((n, kind)) = sk_key_at(data, i) {
                    out.push((line, kind.to_string(), mask(&data[i..i + n])));
                    advance = n;
                }
            }
            _ => {}
        }
        // Count the newlines we jump over.
        if advance > 1 {
            line += data[i + 1..i + advance]
                .iter()
                .filter(|&&c| c == b'\n')
                .count();
        }
        i += advance;
    }
    out
}

fn host_path(root: &HostRoot, p: &Path) -> String {
    match p.strip_prefix(root.dir()) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => p.display().to_string(),
    }
}

/// Scans `dirs` under `root`, skipping [`SKIP_DIRS`] and the host paths in `allow` (files or
/// directories the operator vouched for).
pub fn scan_tree(root: &HostRoot, dirs: &[&str], allow: &[String]) -> Scan {
    let mut scan = Scan::default();
    let skip: Vec<PathBuf> = SKIP_DIRS
        .iter()
        .map(|d| root.path(d))
        .chain(allow.iter().map(|a| root.path(a)))
        .collect();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| root.path(d)).collect();
    while let Some(p) = stack.pop() {
        if skip.iter().any(|s| &p == s) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
            continue;
        }
        if !m.is_file() {
            continue;
        }
        if m.len() > MAX_FILE {
            scan.skipped.push(host_path(root, &p));
            continue;
        }
        let Ok(data) = std::fs::read(&p) else {
            continue;
        };
        scan.files += 1;
        scan.bytes += data.len() as u64;
        for (line, kind, masked) in scan_bytes(&data) {
            scan.hits.push(Hit {
                path: host_path(root, &p),
                line,
                kind,
                masked,
            });
        }
    }
    scan.hits
        .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    // Synthetic values in the shapes of real credentials (never real ones).
    pub(crate) const TG: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1";
    pub(crate) const AWS_ID: &str = "AKIAZ7QRSTUVWXY23456";
    pub(crate) const AWS_SECRET: &str = "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";
    pub(crate) const ANTHROPIC: &str =
        "sk-ant-api03-Zq8xV2mN4pR7tY1wK9sL3dF6gH0jQ5cB8nM2vX4zA7eR1tY9uI3oP6aS0dF2gH5jK8lZ";
    pub(crate) const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDeadBeefDeadBeefDeadBeefDeadBeefDeadBeef\n-----END PRIVATE KEY-----\n";

    fn kinds(s: &str) -> Vec<String> {
        scan_bytes(s.as_bytes())
            .into_iter()
            .map(|(_, k, _)| k)
            .collect()
    }

    #[test]
    fn finds_each_kind_with_line_and_mask() {
        let text = format!("a\nTELEGRAM_BOT_TOKEN={TG}\nid = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\nkey: \"{ANTHROPIC}\"\n{PEM}");
        let hits = scan_bytes(text.as_bytes());
        let got: Vec<(usize, &str)> = hits.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (2, "Telegram bot token"),
                (3, "AWS access key id"),
                (4, "AWS secret access key"),
                (5, "Anthropic API key"),
                (6, "private key")
            ]
        );
        for (_, _, m) in &hits {
            assert!(
                !text.contains(m.as_str()) || m.starts_with("-----"),
                "masked value must not be the secret: {m}"
            );
        }
        assert_eq!(hits[0].2, "1234…(45 chars)");
    }

    #[test]
    fn json_escaped_pem_and_binary_files_count() {
        let json = "{\"privateKeyPem\":\"-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEIDeadBeefDeadBeef\\n-----END PRIVATE KEY-----\\n\"}";
        assert_eq!(kinds(json), vec!["private key"]);
        let mut sqlite = b"SQLite format 3\0\x01\x02\xff".to_vec();
        sqlite.extend_from_slice(PEM.as_bytes());
        assert_eq!(scan_bytes(&sqlite).len(), 1);
    }

    #[test]
    fn placeholders_and_lookalikes_are_not_secrets() {
        for s in [
            "AKIAIOSFODNN7EXAMPLE",             // AWS documentation key
            "XAKIAZ7QRSTUVWXY23456",            // not on a word boundary
            "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxx",  // placeholder
            "sk-your-api-key-goes-here-please", // placeholder, no digits
            "disk-1234567890abcdefghij",        // inside a word
            "const BEGIN = \"-----BEGIN \"; const END = \"PRIVATE KEY-----\";", // a scanner's own text
            "-----BEGIN PRIVATE KEY-----\n...\n",                               // no key body
            "1234:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1",                         // 4-digit bot id
            "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1x",                   // 35 chars after A
            "time 12:30:45",
        ] {
            assert!(kinds(s).is_empty(), "{s:?} -> {:?}", kinds(s));
        }
    }

    #[test]
    fn tree_scan_names_files_and_honours_allow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        std::fs::create_dir_all(root.path("/etc/x")).expect("mkdir");
        std::fs::create_dir_all(root.path("/proc")).expect("mkdir");
        std::fs::write(root.path("/etc/x/a.env"), format!("# c\nT={TG}\n")).expect("w");
        std::fs::write(root.path("/etc/x/ok"), "nothing\n").expect("w");
        std::fs::write(root.path("/proc/k"), TG).expect("w");
        std::fs::create_dir_all(root.path("/opt/vendor")).expect("mkdir");
        std::fs::write(root.path("/opt/vendor/fixture.pem"), PEM).expect("w");
        std::os::unix::fs::symlink("/etc/x/a.env", root.path("/etc/link")).expect("ln");
        let s = scan_tree(
            &root,
            &["/etc", "/opt", "/proc"],
            &["/opt/vendor".to_string()],
        );
        assert_eq!(s.hits.len(), 1, "{:?}", s.hits);
        assert_eq!(
            (s.hits[0].path.as_str(), s.hits[0].line),
            ("/etc/x/a.env", 2)
        );
        assert_eq!(s.files, 2);
    }
}
