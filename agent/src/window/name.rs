//! The package-name rule, one for apt-get and dnf (facts/host.md §1): ASCII, 2 to 100 bytes,
//! first byte alphanumeric, last byte alphanumeric or `+`, the bytes between in `[A-Za-z0-9._+-]`,
//! and no name ending in `.deb` or `.rpm` (any case). It refuses every option, path, pattern,
//! version, release, architecture and modifier form both package managers accept, and accepts
//! every Debian bookworm name and the AL2023 forms (`mod_ssl`, `perl-Data-Dumper`, `gcc-c++`).
//!
//! The rule alone does not make a name safe to pass on: it is argv after `--`, must equal an
//! allowlist entry exactly, and must exist as exactly that package (see `host::packages`).

/// The longest name accepted (bookworm's longest is 75).
pub const MAX_LEN: usize = 100;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Shorter than 2 bytes.
    #[error("package name {0:?} is too short (at least 2 characters)")]
    TooShort(String),
    /// Longer than [`MAX_LEN`] bytes.
    #[error("package name is too long ({0} bytes; at most 100)")]
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

/// Checks a name against the rule; `Ok` gives it back as `&str`.
pub fn validate_name(name: &str) -> Result<&str, NameError> {
    validate_name_bytes(name.as_bytes()).map(|_| name)
}

/// The same rule on raw bytes (requests arrive as bytes; fuzzing feeds anything).
pub fn validate_name_bytes(bytes: &[u8]) -> Result<(), NameError> {
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    if bytes.len() > MAX_LEN {
        return Err(NameError::TooLong(bytes.len()));
    }
    if let Some(pos) = bytes.iter().position(|&b| !middle_ok(b)) {
        return Err(NameError::BadByte {
            name: shown(),
            pos,
            what: describe(bytes[pos]),
        });
    }
    if bytes.len() < 2 {
        return Err(NameError::TooShort(shown()));
    }
    if !bytes[0].is_ascii_alphanumeric() {
        return Err(NameError::BadStart(shown()));
    }
    let last = bytes[bytes.len() - 1];
    if !(last.is_ascii_alphanumeric() || last == b'+') {
        return Err(NameError::BadEnd(shown()));
    }
    let lower = bytes.to_ascii_lowercase();
    if lower.ends_with(b".deb") || lower.ends_with(b".rpm") {
        return Err(NameError::PackageFile(shown()));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The hostile corpus of facts/host.md §1 (31 inputs) plus more of each kind.
    pub(crate) fn hostile() -> Vec<String> {
        let mut v: Vec<String> = [
            // options
            "-oDPkg::Pre-Invoke::=id",
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
            "nginx\n",
            "nginx\nid",
            "nginx\r",
            "nginx\t",
            "nginx\0",
            "\0",
            "nginx\u{7f}",
            "nginx\u{1b}[2J",
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
        v.push("x".repeat(101));
        v.push("a".repeat(5000));
        v
    }

    /// Names that must pass (facts/host.md §1) plus the longest bookworm-like shapes.
    pub(crate) const VALID: &[&str] = &[
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
    ];

    #[test]
    fn hostile_corpus_is_refused() {
        for n in hostile() {
            assert!(validate_name(&n).is_err(), "accepted {n:?}");
        }
    }

    #[test]
    fn valid_names_pass() {
        for n in VALID {
            assert_eq!(validate_name(n), Ok(*n));
        }
        assert!(validate_name(&"x".repeat(100)).is_ok());
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
        assert!(matches!(
            validate_name("evil.deb"),
            Err(NameError::PackageFile(_))
        ));
        let e = validate_name("ngínx").expect_err("bad");
        assert!(e.to_string().contains("non-ASCII byte 0xc3"), "{e}");
    }

    /// Small deterministic generator (no extra crates): xorshift64*.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub fn below(&mut self, n: usize) -> usize {
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
            let base = VALID[rng.below(VALID.len())].as_bytes().to_vec();
            let mut v = base.clone();
            let pos = rng.below(v.len() + 1);
            v.insert(pos, bad[rng.below(bad.len())]);
            assert!(
                validate_name_bytes(&v).is_err(),
                "{:?}",
                String::from_utf8_lossy(&v)
            );
        }
    }
}
