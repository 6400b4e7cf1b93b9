//! The socket protocol, one request per connection.
//!
//! Request: everything the client writes before shutting down its writing side, which must be
//! exactly one line of printable ASCII, at most [`MAX_REQUEST`] bytes with its newline:
//! `install NAME\n` (the bot), or `refresh\n` (root: `window open`/`close` wake the service so it
//! re-reads the state and arms the expiry timer; it also starts a socket-activated service).
//! Reply: lines `O <text>` (the package manager's output, control characters replaced) and one
//! final `R <code> <reason>` (code 0 installed, 3 refused, 1 failed). Nothing in a request is
//! trusted: the caller's identity comes from the kernel, and NAME still has to pass the name rule
//! and the allowlist.

/// The longest request, newline included.
pub const MAX_REQUEST: usize = 256;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Install this (still unvalidated) package name.
    Install(String),
    /// Re-read the state (root only).
    Refresh,
}

/// Why a request could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Empty input.
    #[error("empty request")]
    Empty,
    /// Longer than [`MAX_REQUEST`].
    #[error("request longer than {MAX_REQUEST} bytes")]
    TooLong,
    /// No final newline, or more than one line.
    #[error("a request is exactly one line ending in a newline")]
    NotOneLine,
    /// A byte that is not printable ASCII.
    #[error("request has byte 0x{byte:02x} at position {pos} (only printable ASCII is allowed)")]
    BadByte {
        /// Offset.
        pos: usize,
        /// The byte.
        byte: u8,
    },
    /// Unknown verb or wrong arguments.
    #[error("unknown request {0:?} (expected `install NAME` or `refresh`)")]
    Unknown(String),
}

/// Parses one request (pure: the fuzz target).
pub fn parse_request(bytes: &[u8]) -> Result<Request, RequestError> {
    if bytes.is_empty() {
        return Err(RequestError::Empty);
    }
    if bytes.len() > MAX_REQUEST {
        return Err(RequestError::TooLong);
    }
    let Some((&b'\n', line)) = bytes.split_last() else {
        return Err(RequestError::NotOneLine);
    };
    if line.contains(&b'\n') {
        return Err(RequestError::NotOneLine);
    }
    if let Some(pos) = line.iter().position(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(RequestError::BadByte {
            pos,
            byte: line[pos],
        });
    }
    let text = std::str::from_utf8(line).expect("printable ASCII is UTF-8");
    let mut parts = text.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("install"), Some(name), None) if !name.is_empty() => {
            Ok(Request::Install(name.to_string()))
        }
        (Some("refresh"), None, None) => Ok(Request::Refresh),
        _ => Err(RequestError::Unknown(text.chars().take(64).collect())),
    }
}

/// Encodes a request (the client side).
pub fn encode_install(name: &str) -> Vec<u8> {
    format!("install {name}\n").into_bytes()
}

/// Exit code: installed or already installed.
pub const CODE_OK: u8 = 0;
/// Exit code: the install itself failed.
pub const CODE_FAILED: u8 = 1;
/// Exit code: refused.
pub const CODE_REFUSED: u8 = 3;

/// One output line frame (control characters other than tab replaced by `?`).
pub fn frame_output(text: &str) -> String {
    let clean: String = text
        .trim_end_matches(['\n', '\r'])
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect();
    format!("O {clean}\n")
}

/// The final frame.
pub fn frame_result(code: u8, reason: &str) -> String {
    format!("R {code} {}\n", reason.replace(['\n', '\r'], " "))
}

/// A reply line as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Output text.
    Output(String),
    /// The result.
    Result(u8, String),
}

/// Parses one reply line (without its newline).
pub fn parse_reply(line: &str) -> Option<Reply> {
    if let Some(t) = line.strip_prefix("O ") {
        return Some(Reply::Output(t.to_string()));
    }
    if line == "O" {
        return Some(Reply::Output(String::new()));
    }
    let rest = line.strip_prefix("R ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(Reply::Result(code.parse().ok()?, reason.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_requests() {
        assert_eq!(
            parse_request(b"install hello\n"),
            Ok(Request::Install("hello".into()))
        );
        assert_eq!(parse_request(b"refresh\n"), Ok(Request::Refresh));
        // The name is not judged here; the name rule does that (with its own reason).
        assert_eq!(
            parse_request(b"install nginx*\n"),
            Ok(Request::Install("nginx*".into()))
        );
    }

    #[test]
    fn malformed_requests_say_why() {
        assert_eq!(parse_request(b""), Err(RequestError::Empty));
        assert_eq!(
            parse_request(b"install hello"),
            Err(RequestError::NotOneLine)
        );
        assert_eq!(
            parse_request(b"install hello\ninstall x\n"),
            Err(RequestError::NotOneLine)
        );
        assert_eq!(
            parse_request(b"install hel\0lo\n"),
            Err(RequestError::BadByte { pos: 11, byte: 0 })
        );
        assert!(matches!(
            parse_request("install ngínx\n".as_bytes()),
            Err(RequestError::BadByte { .. })
        ));
        assert!(matches!(
            parse_request(b"install\n"),
            Err(RequestError::Unknown(_))
        ));
        assert!(matches!(
            parse_request(b"install \n"),
            Err(RequestError::Unknown(_))
        ));
        assert!(matches!(
            parse_request(b"install a b\n"),
            Err(RequestError::Unknown(_))
        ));
        assert!(matches!(
            parse_request(b"open hello\n"),
            Err(RequestError::Unknown(_))
        ));
        assert!(matches!(
            parse_request(b"refresh now\n"),
            Err(RequestError::Unknown(_))
        ));
        let long = format!("install {}\n", "a".repeat(300));
        assert_eq!(parse_request(long.as_bytes()), Err(RequestError::TooLong));
        let e = parse_request(b"install a\tb\n").expect_err("tab");
        assert!(e.to_string().contains("0x09 at position 9"), "{e}");
    }

    #[test]
    fn property_random_bytes_never_panic_and_installs_round_trip() {
        // splitmix64: any fixed sequence of well-mixed bytes does.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for _ in 0..100_000 {
            let len = (next() % 40) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 2 == 0 {
                v.splice(0..0, b"install ".iter().copied());
                v.push(b'\n');
            }
            if let Ok(Request::Install(n)) = parse_request(&v) {
                assert_eq!(encode_install(&n), v);
                assert!(!n.contains(' ') && n.bytes().all(|b| (0x21..0x7f).contains(&b)));
            }
        }
    }

    #[test]
    fn frames_round_trip_and_strip_control_characters() {
        assert_eq!(
            parse_reply(frame_output("Setting up hello (2.10-3) ...\n").trim_end()),
            Some(Reply::Output("Setting up hello (2.10-3) ...".into()))
        );
        assert_eq!(frame_output("a\u{1b}[2Jb"), "O a?[2Jb\n");
        assert_eq!(
            parse_reply(frame_result(3, "package \"x\" is not\non the list").trim_end()),
            Some(Reply::Result(3, "package \"x\" is not on the list".into()))
        );
        assert_eq!(parse_reply("X nope"), None);
        assert_eq!(parse_reply("R x y"), None);
    }
}
