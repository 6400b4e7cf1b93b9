//! The maintenance window's input rules, in one place for the agent that enforces them and the
//! control client that checks them before it sends anything (and renders the SSM document's
//! `allowedPattern`s from the same constants, so the document can never drift from the agent).
//!
//! - **Package names** (facts/host.md §1): ASCII, [`NAME_MIN_LEN`] to [`NAME_MAX_LEN`] bytes, first
//!   byte alphanumeric, last byte alphanumeric or `+`, the bytes between in `[A-Za-z0-9._+-]`, and no
//!   name ending in `.deb` or `.rpm` (any case). It refuses every option, path, pattern, version,
//!   release, architecture and modifier form apt-get and dnf accept, and accepts every Debian
//!   bookworm name and the AL2023 forms (`mod_ssl`, `perl-Data-Dumper`, `gcc-c++`). The rule alone
//!   does not make a name safe to pass on: the agent passes it as argv after `--`, it must equal an
//!   allowlist entry exactly, and must exist as exactly that package.
//! - **Package lists**: at least one and at most [`MAX_PACKAGES`] names.
//! - **TTL**: a whole number with `s`, `m` or `h`, from [`MIN_TTL`] up to a cap ([`DEFAULT_MAX_TTL`]
//!   unless the agent is told otherwise; never above [`HARD_MAX_TTL`]).
//! - **Reason**: at most [`REASON_MAX_CHARS`] characters, none of them a control character.
//!
//! Two forms of the same values:
//!
//! - What a person types ([`OpenRequest::parse`], used by `clawster-agent window open` and by
//!   `clawsterctl window open`): packages separated by commas and/or whitespace, duplicates
//!   dropped; a TTL may carry spaces around it or leading zeros.
//! - The wire form, one canonical spelling, which `clawsterctl` sends as SSM parameters
//!   ([`OpenRequest::pkgs_param`], [`OpenRequest::ttl_param`]) and the SSM document admits
//!   ([`pkgs_pattern`], [`ttl_pattern`], [`reason_pattern`]): names joined by single commas, a TTL
//!   without spaces or leading zeros. [`check_pkgs_param`] and [`check_ttl_param`] are the same
//!   rules as code; everything they accept the agent accepts too.
//!
//! Errors name the command-line option the value came from (`--pkgs`, `--ttl`, `--max-ttl`,
//! `--reason`), which is the same in both programs.

use std::time::Duration;

/// The shortest package name accepted.
pub const NAME_MIN_LEN: usize = 2;
/// The longest package name accepted (bookworm's longest is 75).
pub const NAME_MAX_LEN: usize = 100;
/// At most this many packages per window.
pub const MAX_PACKAGES: usize = 20;
/// The shortest TTL.
pub const MIN_TTL: Duration = Duration::from_secs(5);
/// The cap on the TTL unless the agent is given another (`--max-ttl`); the SSM document never is.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(4 * 3600);
/// The cap can never be raised beyond this.
pub const HARD_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// A TTL's number has at most this many digits (it cannot overflow, whatever the unit).
pub const TTL_MAX_DIGITS: usize = 9;
/// The longest `--reason`, in characters.
pub const REASON_MAX_CHARS: usize = 200;

/// The `CLAWSTER_CHECK` values of the window's audit records (`journalctl ... CLAWSTER_CHECK=...`).
pub const AUDIT_CHECKS: [&str; 6] = [
    "window.open",
    "window.close",
    "window.expire",
    "window.request",
    "window.install",
    "window.serve",
];

/// The journal fields the window's audit records carry besides `CLAWSTER_CHECK`,
/// `CLAWSTER_STATUS` and `MESSAGE` (journald adds its trusted `_UID`, `_PID`, `_SYSTEMD_UNIT`).
pub const AUDIT_FIELDS: [&str; 20] = [
    "WINDOW_ID",
    "PACKAGES",
    "TTL_SECS",
    "EXPIRES",
    "REASON",
    "REPLACED",
    "OPERATOR_UID",
    "WAS",
    "LATENCY_MS",
    "PACKAGE",
    "CALLER_UID",
    "CALLER_GID",
    "CALLER_PID",
    "CALLER_COMMAND",
    "DECISION",
    "EXIT_STATUS",
    "DURATION_MS",
    "CHANGES",
    "SOCKET",
    "ACTIVATION",
];

// ---------------------------------------------------------------------------------------------
// Package names

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Shorter than [`NAME_MIN_LEN`] bytes.
    #[error("package name {0:?} is too short (at least {NAME_MIN_LEN} characters)")]
    TooShort(String),
    /// Longer than [`NAME_MAX_LEN`] bytes.
    #[error("package name is too long ({0} bytes; at most {NAME_MAX_LEN})")]
    TooLong(usize),
    /// A byte outside the allowed set, at a position.
    #[error("package name {name:?} has {what} at position {pos}: only letters, digits and . _ + - are allowed")]
    BadByte {
        /// The name (escaped when printed).
        name: String,
        /// Byte offset.
        pos: usize,
        /// A description of the byte.
        what: String,
    },
    /// Starts with something other than a letter or digit (an option, path, pattern, ...).
    #[error("package name {0:?} must start with a letter or digit")]
    BadStart(String),
    /// Ends with something other than a letter, digit or `+` (`bash-` means remove to apt).
    #[error("package name {0:?} must end with a letter, digit or +")]
    BadEnd(String),
    /// Ends in `.deb` or `.rpm`: a local package file to apt or dnf.
    #[error("package name {0:?} ends in .deb or .rpm (a package file, not a name)")]
    PackageFile(String),
}

fn describe(b: u8) -> String {
    match b {
        b' ' => "a space".into(),
        0 => "a NUL byte".into(),
        b'\n' => "a newline".into(),
        b'\t' => "a tab".into(),
        0x01..=0x1f | 0x7f => format!("control byte 0x{b:02x}"),
        0x80..=0xff => format!("non-ASCII byte 0x{b:02x}"),
        _ => format!("{:?}", b as char),
    }
}

fn middle_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-')
}

fn last_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+'
}

/// Checks a name against the rule; `Ok` gives it back.
pub fn validate_name(name: &str) -> Result<&str, NameError> {
    validate_name_bytes(name.as_bytes()).map(|_| name)
}

/// The same rule on raw bytes (requests arrive as bytes; fuzzing feeds anything).
pub fn validate_name_bytes(bytes: &[u8]) -> Result<(), NameError> {
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    if bytes.len() > NAME_MAX_LEN {
        return Err(NameError::TooLong(bytes.len()));
    }
    if let Some(pos) = bytes.iter().position(|&b| !middle_ok(b)) {
        return Err(NameError::BadByte {
            name: shown(),
            pos,
            what: describe(bytes[pos]),
        });
    }
    if bytes.len() < NAME_MIN_LEN {
        return Err(NameError::TooShort(shown()));
    }
    if !bytes[0].is_ascii_alphanumeric() {
        return Err(NameError::BadStart(shown()));
    }
    if !last_ok(bytes[bytes.len() - 1]) {
        return Err(NameError::BadEnd(shown()));
    }
    let lower = bytes.to_ascii_lowercase();
    if lower.ends_with(b".deb") || lower.ends_with(b".rpm") {
        return Err(NameError::PackageFile(shown()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The request to open a window

/// Bad input to `window open`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The TTL is not `<number><s|m|h>`.
    #[error("--ttl {0:?} is not a duration: use a whole number with s, m or h (e.g. 10m)")]
    TtlSyntax(String),
    /// The TTL has spaces around it or leading zeros (wire form only).
    #[error("--ttl {0:?} is not in its plain form: no spaces, no leading zero (e.g. 10m)")]
    TtlNotPlain(String),
    /// The TTL is below [`MIN_TTL`].
    #[error("--ttl {0} is too short: at least {min}", min = fmt_duration(MIN_TTL))]
    TtlTooShort(String),
    /// The TTL is above the cap.
    #[error("--ttl {ttl} is longer than the cap of {cap}")]
    TtlTooLong {
        /// As given.
        ttl: String,
        /// The cap, formatted.
        cap: String,
    },
    /// The cap is above [`HARD_MAX_TTL`].
    #[error("--max-ttl {0} is beyond the hard limit of {max}", max = fmt_duration(HARD_MAX_TTL))]
    CapTooLong(String),
    /// No package.
    #[error("--pkgs names no package")]
    NoPackages,
    /// Too many packages.
    #[error("--pkgs names {0} packages; at most {MAX_PACKAGES}")]
    TooManyPackages(usize),
    /// A bad name.
    #[error("--pkgs")]
    Name(#[from] NameError),
    /// The reason is too long or has control characters.
    #[error("--reason must be at most {REASON_MAX_CHARS} printable characters")]
    Reason,
}

/// The number and unit of a TTL, unchecked against any limit.
fn split_ttl(t: &str) -> Option<(u64, u64)> {
    let unit = t.chars().last()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return None,
    };
    let num = &t[..t.len() - 1];
    if num.is_empty() || num.len() > TTL_MAX_DIGITS || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((num.parse().ok()?, mult))
}

/// Parses a TTL like `10m`, `90s`, `2h` (spaces around it are ignored).
pub fn parse_ttl(s: &str) -> Result<Duration, OpenError> {
    let (n, mult) = split_ttl(s.trim()).ok_or_else(|| OpenError::TtlSyntax(s.to_string()))?;
    Ok(Duration::from_secs(n * mult))
}

/// Checks a TTL against [`MIN_TTL`] and `cap` (itself at most [`HARD_MAX_TTL`]).
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

/// Checks `--reason` (the same rule for the typed and the wire form).
pub fn check_reason(s: &str) -> Result<&str, OpenError> {
    if s.chars().count() > REASON_MAX_CHARS || s.chars().any(char::is_control) {
        return Err(OpenError::Reason);
    }
    Ok(s)
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

/// A TTL in the wire form: one number in the largest unit that holds it exactly (`90m`, `2h`, `45s`).
pub fn fmt_ttl(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A checked request to open a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// The allowlist, in the order given, without duplicates.
    pub packages: Vec<String>,
    /// How long the window stays open.
    pub ttl: Duration,
    /// The operator's reason (may be empty).
    pub reason: String,
}

impl OpenRequest {
    /// Checks what a person typed, in the order the agent always has: the cap, the TTL, the
    /// packages, the reason. The first problem is the error.
    pub fn parse(pkgs: &str, ttl: &str, reason: &str, cap: Duration) -> Result<Self, OpenError> {
        let ttl = check_ttl(ttl, cap)?;
        let packages = parse_packages(pkgs)?;
        let reason = check_reason(reason)?.to_string();
        Ok(Self {
            packages,
            ttl,
            reason,
        })
    }

    /// The packages in the wire form (`nginx,htop`).
    pub fn pkgs_param(&self) -> String {
        self.packages.join(",")
    }

    /// The TTL in the wire form (see [`fmt_ttl`]).
    pub fn ttl_param(&self) -> String {
        fmt_ttl(self.ttl)
    }
}

/// The wire form of the package list: names joined by single commas, at most [`MAX_PACKAGES`]
/// of them (duplicates count; the agent would drop them). What [`pkgs_pattern`] admits except
/// the empty value and `.deb`/`.rpm` endings, which no regular expression here says.
pub fn check_pkgs_param(s: &str) -> Result<Vec<&str>, OpenError> {
    if s.is_empty() {
        return Err(OpenError::NoPackages);
    }
    let names: Vec<&str> = s.split(',').collect();
    for n in &names {
        validate_name(n)?;
    }
    if names.len() > MAX_PACKAGES {
        return Err(OpenError::TooManyPackages(names.len()));
    }
    Ok(names)
}

/// The wire form of a TTL: [`check_ttl`] plus the plain spelling (no spaces, no leading zero).
/// Exactly what [`ttl_pattern`]`(cap)` admits, apart from the empty value.
pub fn check_ttl_param(s: &str, cap: Duration) -> Result<Duration, OpenError> {
    let ttl = check_ttl(s, cap)?;
    if s.trim() != s || s.starts_with('0') {
        return Err(OpenError::TtlNotPlain(s.to_string()));
    }
    Ok(ttl)
}

// ---------------------------------------------------------------------------------------------
// The same rules as SSM `allowedPattern`s
//
// The patterns use only what SSM's, Python's and Rust's regex dialects agree on: character
// classes, counted repetition, groups, alternation, `^` and `$`. Every parameter may also be
// empty (`^$|`), because one document serves actions that do not use it; the agent refuses an
// empty value where the action needs one.

/// One package name, unanchored: `[A-Za-z0-9][A-Za-z0-9._+-]{0,98}[A-Za-z0-9+]`.
pub fn name_pattern() -> String {
    // First and last byte are explicit, so the shortest name is 2 bytes ([`NAME_MIN_LEN`]).
    const _: () = assert!(NAME_MIN_LEN == 2);
    format!(
        "[A-Za-z0-9][A-Za-z0-9._+-]{{0,{}}}[A-Za-z0-9+]",
        NAME_MAX_LEN - 2
    )
}

/// The `pkgs` parameter: empty, or 1 to [`MAX_PACKAGES`] names joined by commas.
pub fn pkgs_pattern() -> String {
    let n = name_pattern();
    format!("^$|^{n}(,{n}){{0,{}}}$", MAX_PACKAGES - 1)
}

/// The `ttl` parameter for an agent whose cap is `cap`: empty, or a TTL from [`MIN_TTL`] to `cap`
/// in its plain form, in seconds, minutes or hours.
pub fn ttl_pattern(cap: Duration) -> String {
    let (min, cap) = (MIN_TTL.as_secs(), cap.min(HARD_MAX_TTL).as_secs());
    let mut alts = Vec::new();
    for (unit, secs) in [('s', 1), ('m', 60), ('h', 3600)] {
        let (lo, hi) = (min.div_ceil(secs), cap / secs);
        if lo <= hi {
            alts.push(format!("({}){unit}", decimal_range_pattern(lo, hi)));
        }
    }
    format!("^$|^({})$", alts.join("|"))
}

/// The `reason` parameter: at most [`REASON_MAX_CHARS`] characters, none in Unicode's control
/// category Cc (U+0000..U+001F, U+007F..U+009F: what `char::is_control` means).
pub fn reason_pattern() -> String {
    format!("^[^\\x00-\\x1F\\x7F-\\x9F]{{0,{REASON_MAX_CHARS}}}$")
}

/// An unanchored alternation matching the decimal numbers `lo..=hi` written without leading zeros.
pub fn decimal_range_pattern(lo: u64, hi: u64) -> String {
    assert!(lo <= hi, "empty range {lo}..={hi}");
    let mut alts = Vec::new();
    let digits = |n: u64| n.to_string().len();
    for len in digits(lo)..=digits(hi) {
        let first = if len == 1 {
            0
        } else {
            10u64.pow(len as u32 - 1)
        };
        let last = 10u64.pow(len as u32) - 1;
        let (a, b) = (lo.max(first), hi.min(last));
        alts.extend(same_width(
            a.to_string().as_bytes(),
            b.to_string().as_bytes(),
        ));
    }
    alts.join("|")
}

/// Alternatives matching the digit strings of one width from `a` to `b` (`a <= b`).
fn same_width(a: &[u8], b: &[u8]) -> Vec<String> {
    let Some((&da, rest_a)) = a.split_first() else {
        return vec![String::new()];
    };
    let (&db, rest_b) = b.split_first().expect("same width");
    let prefixed = |d: u8, tails: Vec<String>| -> Vec<String> {
        tails
            .into_iter()
            .map(|t| format!("{}{t}", d as char))
            .collect()
    };
    if da == db {
        return prefixed(da, same_width(rest_a, rest_b));
    }
    let width = rest_a.len();
    let (nines, zeros) = (vec![b'9'; width], vec![b'0'; width]);
    let mut out = Vec::new();
    // The first leading digit takes only the tails from rest_a up, unless that is all of them.
    let mut from = da;
    if rest_a != zeros.as_slice() {
        out.extend(prefixed(da, same_width(rest_a, &nines)));
        from = da + 1;
    }
    // Likewise the last one takes only the tails up to rest_b.
    let partial_last = rest_b != nines.as_slice();
    let to = if partial_last { db - 1 } else { db };
    if from <= to {
        let class = if from == to {
            (from as char).to_string()
        } else {
            format!("[{}-{}]", from as char, to as char)
        };
        let any = match width {
            0 => String::new(),
            1 => "[0-9]".into(),
            w => format!("[0-9]{{{w}}}"),
        };
        out.push(format!("{class}{any}"));
    }
    if partial_last {
        out.extend(prefixed(db, same_width(&zeros, rest_b)));
    }
    out
}

/// Inputs every layer's tests share: the core rule, the agent's request parser, the SSM patterns.
pub mod corpus {
    /// Names the rule must refuse (facts/host.md §1, plus more of each kind).
    pub fn hostile_names() -> Vec<String> {
        let mut v: Vec<String> = [
            // options
            "-oDPkg::Pre-Invoke::=id",
            "-oAPT::x=y",
            "--reinstall",
            "-c/tmp/evil.conf",
            "--setopt=tsflags=noscripts",
            "--repofrompath=x,file:///repo",
            "-y",
            "--",
            // paths and package files
            "./evil.deb",
            "/tmp/x.deb",
            "../x/evil.deb",
            "evil.rpm",
            "evil.deb",
            "EVIL.DEB",
            "evil.Rpm",
            "/usr/bin/python3",
            "/usr/bin/*-tool",
            // patterns, globs, regexes
            "nginx*",
            "^ngin.*",
            "fo?",
            "nginx[a-z]",
            "~nnginx",
            "?name(nginx)",
            "?exact-name(hello)",
            "hell.",
            // versions, releases, architectures
            "nginx=1.22.1-9",
            "nginx/bookworm",
            "nginx:amd64",
            "hello:any",
            "foo > 1",
            // modifiers and trailing forms
            "bash-",
            "nginx.",
            "ngin_",
            "-nginx",
            "+nginx",
            ".nginx",
            "_nginx",
            // groups, provides
            "@development-tools",
            "@module:stream",
            "perl(Foo::Bar)",
            "webserver(x)",
            // shell and control characters
            "nginx;id",
            "$(id)",
            "`id`",
            "nginx|id",
            "nginx&&id",
            "nginx id",
            "a b",
            "nginx\n",
            "nginx\nid",
            "nginx\r",
            "nginx\t",
            "nginx\0",
            "\0",
            "nginx\u{7f}",
            "nginx\u{1b}[2J",
            "{{ssm:x}}",
            // unicode look-alikes
            "ngínx",
            "nginх",      // Cyrillic ha
            "ｎｇｉｎｘ", // fullwidth
            "nginx\u{200b}",
            "ngi\u{00a0}nx",
            // lengths
            "a",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("x".repeat(super::NAME_MAX_LEN + 1));
        v.push("a".repeat(5000));
        v
    }

    /// Names that must pass (facts/host.md §1) plus the shapes at the limits.
    pub const VALID_NAMES: &[&str] = &[
        "libstdc++6",
        "g++",
        "python3.11",
        "nginx-light",
        "gcc-c++",
        "vera++",
        "389-ds-base",
        "perl-Data-Dumper",
        "mod_ssl",
        "0ad",
        "xz",
        "hello",
        "python3.1",
        "gcc-12+",
        "Nginx",
        "a.deb1",
    ];
}

#[cfg(test)]
mod tests {
    use super::corpus::{hostile_names, VALID_NAMES};
    use super::*;

    #[test]
    fn hostile_corpus_is_refused() {
        for n in hostile_names() {
            assert!(validate_name(&n).is_err(), "accepted {n:?}");
        }
    }

    #[test]
    fn valid_names_pass() {
        for n in VALID_NAMES {
            assert_eq!(validate_name(n), Ok(*n));
        }
        assert!(validate_name(&"x".repeat(NAME_MAX_LEN)).is_ok());
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let e = validate_name("nginx;id").expect_err("bad");
        assert!(e.to_string().contains("';' at position 5"), "{e}");
        let e = validate_name("nginx\n").expect_err("bad");
        assert!(e.to_string().contains("a newline at position 5"), "{e}");
        assert!(matches!(validate_name("-y"), Err(NameError::BadStart(_))));
        assert!(matches!(validate_name("bash-"), Err(NameError::BadEnd(_))));
        assert!(matches!(validate_name("a"), Err(NameError::TooShort(_))));
        assert!(matches!(
            validate_name(&"x".repeat(101)),
            Err(NameError::TooLong(101))
        ));
        assert_eq!(
            validate_name(&"x".repeat(101))
                .expect_err("long")
                .to_string(),
            "package name is too long (101 bytes; at most 100)"
        );
        assert!(matches!(
            validate_name("evil.deb"),
            Err(NameError::PackageFile(_))
        ));
        let e = validate_name("ngínx").expect_err("bad");
        assert!(e.to_string().contains("non-ASCII byte 0xc3"), "{e}");
    }

    /// Small deterministic generator (no extra crates): xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The rule written as the facts file's regex, checked independently of the byte code.
    fn oracle(b: &[u8]) -> bool {
        let n = b.len();
        let ok_mid = |c: &u8| c.is_ascii_alphanumeric() || b"._+-".contains(c);
        (2..=100).contains(&n)
            && b[0].is_ascii_alphanumeric()
            && (b[n - 1].is_ascii_alphanumeric() || b[n - 1] == b'+')
            && b.iter().all(ok_mid)
            && !{
                let l = String::from_utf8_lossy(b).to_ascii_lowercase();
                l.ends_with(".deb") || l.ends_with(".rpm")
            }
    }

    #[test]
    fn property_rule_matches_its_specification_on_random_bytes() {
        let alphabet: Vec<u8> = (0u8..=255).collect();
        let near: &[u8] = b"abcXYZ019._+-/:=*?~@()[] \n\0";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for i in 0..200_000 {
            let len = rng.below(if i % 10 == 0 { 130 } else { 12 });
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.below(4) == 0 {
                        alphabet[rng.below(256)]
                    } else {
                        near[rng.below(near.len())]
                    }
                })
                .collect();
            let got = validate_name_bytes(&bytes).is_ok();
            assert_eq!(got, oracle(&bytes), "{bytes:?}");
            if got {
                accepted += 1;
                // Whatever passes is safe as one argv element after `--` for both managers.
                let s = std::str::from_utf8(&bytes).expect("accepted names are ASCII");
                assert!(!s.starts_with('-') && !s.contains('/') && !s.contains('='));
                assert!(!s.contains(':') && !s.contains('*') && !s.contains('?'));
                assert!(!s.ends_with('-') && !s.ends_with('.'));
            }
        }
        assert!(accepted > 1000, "generator too narrow: {accepted} accepted");
    }

    #[test]
    fn property_any_valid_name_with_a_hostile_byte_inserted_is_refused() {
        let mut rng = Rng(42);
        let bad: &[u8] = b"/:=*?~@()[] \n\r\t\0;$`|&<>'\"\\,!#%^{}";
        for _ in 0..20_000 {
            let mut v = VALID_NAMES[rng.below(VALID_NAMES.len())]
                .as_bytes()
                .to_vec();
            let pos = rng.below(v.len() + 1);
            v.insert(pos, bad[rng.below(bad.len())]);
            assert!(
                validate_name_bytes(&v).is_err(),
                "{:?}",
                String::from_utf8_lossy(&v)
            );
        }
    }

    #[test]
    fn ttl_rules() {
        assert_eq!(parse_ttl("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_ttl("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_ttl(" 010m "), Ok(Duration::from_secs(600)));
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
            "１０m",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            check_ttl("4s", DEFAULT_MAX_TTL),
            Err(OpenError::TtlTooShort(_))
        ));
        let e = check_ttl("0s", DEFAULT_MAX_TTL).expect_err("short");
        assert_eq!(e.to_string(), "--ttl 0s is too short: at least 5s");
        assert!(check_ttl("4h", DEFAULT_MAX_TTL).is_ok());
        let e = check_ttl("5h", DEFAULT_MAX_TTL).expect_err("over cap");
        assert_eq!(e.to_string(), "--ttl 5h is longer than the cap of 4h");
        assert!(check_ttl("24h", HARD_MAX_TTL).is_ok());
        let e = check_ttl("1h", Duration::from_secs(25 * 3600)).expect_err("cap");
        assert_eq!(
            e.to_string(),
            "--max-ttl 25h is beyond the hard limit of 24h"
        );
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
        assert_eq!(
            OpenError::TooManyPackages(21).to_string(),
            "--pkgs names 21 packages; at most 20"
        );
        let e = parse_packages("hello,nginx*").expect_err("bad");
        assert_eq!(e.to_string(), "--pkgs");
        let OpenError::Name(inner) = &e else {
            panic!("{e:?}")
        };
        assert!(inner.to_string().contains("nginx*"), "{inner}");
        assert!(parse_packages("hello,-oDPkg::Pre-Invoke::=id").is_err());
    }

    #[test]
    fn reasons() {
        assert_eq!(check_reason("ticket 42"), Ok("ticket 42"));
        assert_eq!(check_reason(""), Ok(""));
        assert_eq!(check_reason("ünïcödé ✓"), Ok("ünïcödé ✓"));
        assert!(check_reason(&"é".repeat(200)).is_ok());
        assert!(check_reason(&"a".repeat(201)).is_err());
        for bad in ["a\nb", "a\u{1b}[2J", "\u{85}", "tab\there", "\0"] {
            assert_eq!(check_reason(bad), Err(OpenError::Reason), "{bad:?}");
        }
        assert_eq!(
            OpenError::Reason.to_string(),
            "--reason must be at most 200 printable characters"
        );
    }

    #[test]
    fn open_requests_and_their_wire_form() {
        let r = OpenRequest::parse("nginx htop,nginx", " 090m", "ticket 42", DEFAULT_MAX_TTL)
            .expect("ok");
        assert_eq!(r.packages, ["nginx", "htop"]);
        assert_eq!(r.pkgs_param(), "nginx,htop");
        assert_eq!(r.ttl_param(), "90m");
        assert_eq!(r.reason, "ticket 42");
        for (ttl, wire) in [
            ("3600s", "1h"),
            ("120m", "2h"),
            ("61s", "61s"),
            ("5s", "5s"),
        ] {
            let r = OpenRequest::parse("xz", ttl, "", DEFAULT_MAX_TTL).expect("ok");
            assert_eq!(r.ttl_param(), wire);
            assert_eq!(check_ttl_param(wire, DEFAULT_MAX_TTL), Ok(r.ttl));
        }
        // The cap is checked first, then the TTL, then the packages, then the reason.
        assert!(matches!(
            OpenRequest::parse("nginx;id", "1d", "\n", DEFAULT_MAX_TTL),
            Err(OpenError::TtlSyntax(_))
        ));
        assert!(matches!(
            OpenRequest::parse("nginx;id", "1m", "\n", DEFAULT_MAX_TTL),
            Err(OpenError::Name(_))
        ));
        assert_eq!(
            OpenRequest::parse("nginx", "1m", "\n", DEFAULT_MAX_TTL),
            Err(OpenError::Reason)
        );
    }

    #[test]
    fn wire_forms_are_strict_and_never_wider_than_the_typed_forms() {
        assert_eq!(check_pkgs_param("nginx,htop"), Ok(vec!["nginx", "htop"]));
        for bad in [
            "",
            "nginx,",
            ",nginx",
            "nginx,,htop",
            "nginx htop",
            " nginx",
        ] {
            assert!(check_pkgs_param(bad).is_err(), "{bad:?}");
        }
        let with_dup: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
        let line = format!("{},p00", with_dup.join(","));
        assert_eq!(check_pkgs_param(&line), Err(OpenError::TooManyPackages(21)));
        assert!(parse_packages(&line).is_ok(), "the agent drops duplicates");
        for bad in ["010m", " 10m", "10m ", "0s"] {
            assert!(check_ttl_param(bad, DEFAULT_MAX_TTL).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_ttl_param("010m", DEFAULT_MAX_TTL)
                .expect_err("zero")
                .to_string(),
            "--ttl \"010m\" is not in its plain form: no spaces, no leading zero (e.g. 10m)"
        );
        for n in 0..20_000u64 {
            for unit in ["s", "m", "h", "d"] {
                let s = format!("{n}{unit}");
                if let Ok(d) = check_ttl_param(&s, DEFAULT_MAX_TTL) {
                    assert_eq!(check_ttl(&s, DEFAULT_MAX_TTL), Ok(d));
                }
            }
        }
    }

    #[test]
    fn patterns_are_rendered_from_the_limits() {
        assert_eq!(
            name_pattern(),
            "[A-Za-z0-9][A-Za-z0-9._+-]{0,98}[A-Za-z0-9+]"
        );
        assert_eq!(
            pkgs_pattern(),
            format!("^$|^{0}(,{0}){{0,19}}$", name_pattern())
        );
        assert_eq!(
            ttl_pattern(DEFAULT_MAX_TTL),
            "^$|^(([5-9]|[1-9][0-9]|[1-9][0-9]{2}|[1-9][0-9]{3}|1[0-3][0-9]{3}|14[0-3][0-9]{2}|14400)s\
             |([1-9]|[1-9][0-9]|1[0-9]{2}|2[0-3][0-9]|240)m|([1-4])h)$"
        );
        assert_eq!(reason_pattern(), "^[^\\x00-\\x1F\\x7F-\\x9F]{0,200}$");
        assert_eq!(decimal_range_pattern(7, 7), "7");
        assert_eq!(decimal_range_pattern(0, 9), "[0-9]");
        assert_eq!(decimal_range_pattern(10, 99), "[1-9][0-9]");
        assert_eq!(decimal_range_pattern(19, 31), "19|2[0-9]|3[0-1]");
        assert_eq!(decimal_range_pattern(100, 199), "1[0-9][0-9]");
    }

    /// A matcher for the patterns `decimal_range_pattern` produces (digits, `[a-b]`, `[0-9]{n}`,
    /// alternation), so the range code is checked here without a regex engine; ctl checks the
    /// rendered documents with a real one.
    fn matches_range(pattern: &str, s: &str) -> bool {
        pattern.split('|').any(|alt| {
            let mut chars = s.bytes();
            let mut p = alt.as_bytes();
            loop {
                match p.first() {
                    None => return chars.next().is_none(),
                    Some(b'[') => {
                        let (lo, hi) = (p[1], p[3]);
                        p = &p[5..];
                        let mut count = 1;
                        if p.first() == Some(&b'{') {
                            let end = p.iter().position(|&c| c == b'}').expect("}");
                            count = std::str::from_utf8(&p[1..end])
                                .expect("utf8")
                                .parse()
                                .expect("count");
                            p = &p[end + 1..];
                        }
                        for _ in 0..count {
                            match chars.next() {
                                Some(c) if (lo..=hi).contains(&c) => {}
                                _ => return false,
                            }
                        }
                    }
                    Some(&d) => {
                        if chars.next() != Some(d) {
                            return false;
                        }
                        p = &p[1..];
                    }
                }
            }
        })
    }

    #[test]
    fn property_decimal_ranges_match_exactly_their_numbers() {
        let mut rng = Rng(3);
        let mut cases = vec![
            (1, 1),
            (5, 14400),
            (1, 240),
            (1, 4),
            (0, 0),
            (9, 10),
            (99, 1000),
        ];
        for _ in 0..60 {
            let a = rng.below(3_000) as u64;
            let b = a + rng.below(3_000) as u64;
            cases.push((a, b));
        }
        for (lo, hi) in cases {
            let p = decimal_range_pattern(lo, hi);
            for n in 0..=hi + 1000 {
                assert_eq!(
                    matches_range(&p, &n.to_string()),
                    (lo..=hi).contains(&n),
                    "{n} in {lo}..={hi}: {p}"
                );
            }
            // Leading zeros are never matched.
            assert!(!matches_range(&p, &format!("0{lo}")), "{p}");
        }
    }
}
