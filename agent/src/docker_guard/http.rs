//! HTTP/1.1 framing for the guard, as pure functions on bytes: the request head parser
//! ([`parse_request_head`]), the chunked-body decoder ([`decode_chunked`]) and the response head
//! parser ([`parse_response_head`]).
//!
//! The guard never forwards a client's head: it forwards a head it writes itself from the parsed
//! and judged request ([`Request::forward_head`]), so the parser only has to be unambiguous, not
//! lenient. Anything unusual (obsolete line folding, a bare LF, a duplicate or conflicting
//! `Content-Length`/`Transfer-Encoding`, a non-origin request target, control bytes) is a
//! [`HttpError`], answered with 400 and never forwarded.

use std::fmt;

/// Largest request or response head we read.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head.
pub const MAX_HEADERS: usize = 100;

/// Why a head or body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// More bytes are needed (not an error yet: read more and call again).
    #[error("incomplete")]
    Incomplete,
    /// The head is larger than [`MAX_HEAD`] or has more than [`MAX_HEADERS`] fields.
    #[error("request head too large")]
    TooLarge,
    /// The head is malformed; the text names what was wrong.
    #[error("malformed request: {0}")]
    Malformed(String),
}

fn bad(msg: impl Into<String>) -> HttpError {
    HttpError::Malformed(msg.into())
}

/// How a request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target exactly as sent (origin form: starts with `/`).
    pub target: String,
    /// HTTP minor version (0 or 1).
    pub minor_version: u8,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Body framing.
    pub body: BodyFraming,
    /// Length of the head in bytes, including the blank line.
    pub head_len: usize,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when the client asks to keep the connection open after this request.
    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let tokens: Vec<&str> = conn.split(',').map(str::trim).collect();
        if self.minor_version == 0 {
            tokens.contains(&"keep-alive")
        } else {
            !tokens.contains(&"close")
        }
    }

    /// True when the client asks for the connection upgrade Docker uses for hijacked streams
    /// (`Connection: Upgrade` and `Upgrade: tcp`).
    pub fn wants_tcp_upgrade(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        conn.split(',').any(|t| t.trim() == "upgrade")
            && self
                .header("upgrade")
                .is_some_and(|u| u.trim().eq_ignore_ascii_case("tcp"))
    }
}

/// Builds the head the guard forwards: our own request line and a fixed set of headers, so
/// dockerd never sees a header the guard did not write.
pub fn forward_head(
    method: &str,
    target: &str,
    user_agent: Option<&str>,
    body_len: Option<usize>,
    upgrade: bool,
) -> Vec<u8> {
    let mut h = format!("{method} {target} HTTP/1.1\r\nHost: docker\r\n");
    if let Some(ua) = user_agent {
        let ua: String = ua
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(200)
            .collect();
        h.push_str(&format!("User-Agent: {ua}\r\n"));
    }
    if let Some(n) = body_len {
        h.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {n}\r\n"
        ));
    }
    if upgrade {
        h.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Finds the end of a head (`\r\n\r\n`); returns the index just past it.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Splits the lines of a head (everything before the final empty line, each line ending in
/// CRLF); a bare LF or CR anywhere is malformed.
fn head_lines(lines_crlf: &[u8]) -> Result<Vec<&[u8]>, HttpError> {
    let mut lines = Vec::new();
    let mut rest = lines_crlf;
    while !rest.is_empty() {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("unterminated line"))?;
        let line = rest[..nl]
            .strip_suffix(b"\r")
            .ok_or_else(|| bad("bare LF"))?;
        if line.contains(&b'\r') {
            return Err(bad("bare CR"));
        }
        lines.push(line);
        rest = &rest[nl + 1..];
    }
    Ok(lines)
}

/// Parses a request head from the start of `buf`.
///
/// Returns [`HttpError::Incomplete`] when `buf` does not hold a whole head yet (and is below
/// [`MAX_HEAD`]).
pub fn parse_request_head(buf: &[u8]) -> Result<Request, HttpError> {
    let end = match head_end(buf) {
        Some(e) if e > MAX_HEAD => return Err(HttpError::TooLarge),
        Some(e) => e,
        None if buf.len() >= MAX_HEAD => return Err(HttpError::TooLarge),
        None => {
            // A bare LF in what we have so far can never become valid: fail early.
            if buf.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r') || buf.first() == Some(&b'\n')
            {
                return Err(bad("bare LF"));
            }
            return Err(HttpError::Incomplete);
        }
    };
    // head[..end-2] ends with "\r\n" after the last field line.
    // `buf[..end - 2]` is every line of the head, each ending in CRLF.
    let lines = head_lines(&buf[..end - 2])?;
    let (first, fields) = lines.split_first().ok_or_else(|| bad("empty head"))?;
    let first = std::str::from_utf8(first).map_err(|_| bad("request line is not UTF-8"))?;
    let mut parts = first.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(bad("request line is not METHOD SP TARGET SP VERSION")),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad(format!("method {method:?}")));
    }
    if !target.starts_with('/') {
        return Err(bad(
            "request target is not in origin form (must start with /)",
        ));
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "request target holds control, space or non-ASCII bytes",
        ));
    }
    if target.contains('#') {
        return Err(bad("request target holds a fragment"));
    }
    let minor_version = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v => return Err(bad(format!("HTTP version {v:?}"))),
    };
    if fields.len() > MAX_HEADERS {
        return Err(HttpError::TooLarge);
    }
    let mut headers = Vec::with_capacity(fields.len());
    for line in fields {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(bad("obsolete line folding"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad("header line without a colon"))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad(format!(
                "header name {:?}",
                String::from_utf8_lossy(name)
            )));
        }
        let value = &line[colon + 1..];
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(bad(format!(
                "control byte in header {}",
                String::from_utf8_lossy(name)
            )));
        }
        let value = String::from_utf8_lossy(value)
            .trim_matches(|c| c == ' ' || c == '\t')
            .to_string();
        headers.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    let mut cl: Option<u64> = None;
    let mut te: Option<String> = None;
    for (n, v) in &headers {
        if n.eq_ignore_ascii_case("content-length") {
            if cl.is_some() {
                return Err(bad("more than one Content-Length"));
            }
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("Content-Length {v:?}")));
            }
            cl = Some(
                v.parse()
                    .map_err(|_| bad(format!("Content-Length {v:?}")))?,
            );
        } else if n.eq_ignore_ascii_case("transfer-encoding") {
            if te.is_some() {
                return Err(bad("more than one Transfer-Encoding"));
            }
            te = Some(v.to_ascii_lowercase());
        }
    }
    let body = match (cl, te) {
        (Some(_), Some(_)) => return Err(bad("both Content-Length and Transfer-Encoding")),
        (None, Some(t)) if t == "chunked" && minor_version == 1 => BodyFraming::Chunked,
        (None, Some(t)) => return Err(bad(format!("Transfer-Encoding {t:?}"))),
        (Some(0), None) | (None, None) => BodyFraming::None,
        (Some(n), None) => BodyFraming::Length(n),
    };
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        minor_version,
        headers,
        body,
        head_len: end,
    })
}

/// Progress of decoding a chunked body from a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dechunked {
    /// The decoded body.
    pub body: Vec<u8>,
    /// Bytes of the input consumed (the whole chunked body including trailers).
    pub consumed: usize,
}

/// Decodes a complete chunked body at the start of `buf` into at most `max` bytes.
///
/// [`HttpError::Incomplete`] means more input is needed; [`HttpError::TooLarge`] that the decoded
/// body would exceed `max`. Chunk extensions are refused; trailers are read and dropped.
pub fn decode_chunked(buf: &[u8], max: usize) -> Result<Dechunked, HttpError> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let line_end = find_crlf(&buf[pos..]).ok_or_else(|| {
            if buf.len() - pos > 32 {
                bad("chunk size line too long")
            } else {
                HttpError::Incomplete
            }
        })?;
        let line = &buf[pos..pos + line_end];
        if line.is_empty() || line.len() > 16 || !line.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad(format!(
                "chunk size {:?}",
                String::from_utf8_lossy(line)
            )));
        }
        let size = usize::from_str_radix(std::str::from_utf8(line).unwrap_or("x"), 16)
            .map_err(|_| bad("chunk size out of range"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let e = find_crlf(&buf[pos..]).ok_or(HttpError::Incomplete)?;
                if buf[pos..pos + e].contains(&b'\n') {
                    return Err(bad("bare LF in trailer"));
                }
                pos += e + 2;
                if e == 0 {
                    return Ok(Dechunked {
                        body,
                        consumed: pos,
                    });
                }
                if pos > MAX_HEAD {
                    return Err(HttpError::TooLarge);
                }
            }
        }
        if body.len().saturating_add(size) > max {
            return Err(HttpError::TooLarge);
        }
        if buf.len() < pos + size + 2 {
            return Err(HttpError::Incomplete);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size;
        if &buf[pos..pos + 2] != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
        pos += 2;
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// How a response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Until the connection closes (also Docker's hijacked raw stream without an upgrade).
    UntilClose,
    /// 101 Switching Protocols: raw bytes both ways from here on.
    Upgraded,
}

/// A parsed response head (from dockerd, which the guard trusts for framing only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields.
    pub headers: Vec<(String, String)>,
    /// Body framing.
    pub body: ResponseBody,
    /// Head length including the blank line.
    pub head_len: usize,
}

impl Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a response head at the start of `buf`, for a request made with `method`.
pub fn parse_response_head(buf: &[u8], method: &str) -> Result<Response, HttpError> {
    let end = match head_end(buf) {
        Some(e) if e > MAX_HEAD => return Err(HttpError::TooLarge),
        Some(e) => e,
        None if buf.len() >= MAX_HEAD => return Err(HttpError::TooLarge),
        None => return Err(HttpError::Incomplete),
    };
    let text = std::str::from_utf8(&buf[..end - 4]).map_err(|_| bad("response head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut sp = status_line.splitn(3, ' ');
    let (ver, code) = (sp.next().unwrap_or(""), sp.next().unwrap_or(""));
    if !ver.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(bad(format!("status line {status_line:?}")));
    }
    let status: u16 = code.parse().map_err(|_| bad(format!("status {code:?}")))?;
    let mut headers = Vec::new();
    for l in lines {
        let (n, v) = l
            .split_once(':')
            .ok_or_else(|| bad("response header without colon"))?;
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut r = Response {
        status,
        headers,
        body: ResponseBody::None,
        head_len: end,
    };
    r.body = if status == 101 {
        ResponseBody::Upgraded
    } else if method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
        ResponseBody::None
    } else if r
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        ResponseBody::Chunked
    } else if let Some(cl) = r.header("content-length") {
        ResponseBody::Length(
            cl.parse()
                .map_err(|_| bad(format!("response Content-Length {cl:?}")))?,
        )
    } else {
        ResponseBody::UntilClose
    };
    Ok(r)
}

/// Percent-decodes `s`; `plus_is_space` for query components. Invalid escapes and decoded
/// control bytes are errors.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, HttpError> {
    let b = s.as_bytes();
    // Nothing to decode (the common case): the text is `s` itself.
    if !b.iter().any(|&c| c == b'%' || (plus_is_space && c == b'+')) {
        if s.chars().any(char::is_control) {
            return Err(bad(format!("{s:?} decodes to a control character")));
        }
        return Ok(s.to_string());
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad(format!("bad percent escape in {s:?}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(out).map_err(|_| bad(format!("{s:?} decodes to non-UTF-8")))?;
    if text.chars().any(char::is_control) {
        return Err(bad(format!("{s:?} decodes to a control character")));
    }
    Ok(text)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Writing to a String cannot fail.
    let _ = write_percent_encoded(&mut out, s);
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// [`percent_encode`] into `out`, runs of unreserved characters in one piece.
fn write_percent_encoded(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let mut rest = s;
    while !rest.is_empty() {
        let plain = rest.bytes().take_while(|&b| is_unreserved(b)).count();
        out.write_str(&rest[..plain])?;
        let Some(&b) = rest.as_bytes().get(plain) else {
            break;
        };
        write!(out, "%{b:02X}")?;
        // `b` is one byte of a UTF-8 sequence; the rest are encoded byte by byte too.
        let bytes = &rest.as_bytes()[plain + 1..];
        let next = bytes.iter().take_while(|&&c| c & 0xC0 == 0x80).count();
        for &c in &bytes[..next] {
            write!(out, "%{c:02X}")?;
        }
        rest = &rest[plain + 1 + next..];
    }
    Ok(())
}

/// A request target split into decoded path segments and decoded query pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The API version prefix (`1.44` of `/v1.44/...`), if any.
    pub version: Option<String>,
    /// Decoded path segments after the version prefix.
    pub segments: Vec<String>,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = &self.version {
            write!(f, "/v{v}")?;
        }
        for s in &self.segments {
            f.write_str("/")?;
            write_percent_encoded(f, s)?;
        }
        // A bare version prefix (`/v1.44`) stays as it is: `/v1.44/` would not parse back.
        if self.segments.is_empty() && self.version.is_none() {
            f.write_str("/")?;
        }
        for (i, (k, v)) in self.query.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write_percent_encoded(f, k)?;
            f.write_str("=")?;
            write_percent_encoded(f, v)?;
        }
        Ok(())
    }
}

/// Splits and decodes a request target. Empty segments (`//`), `.` and `..` segments (also when
/// percent-encoded), an encoded `/` inside a segment, `;` in the query and duplicate query keys
/// are refused: dockerd's router would clean, redirect or read them differently.
pub fn parse_target(target: &str) -> Result<Target, HttpError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let raw = path
        .strip_prefix('/')
        .ok_or_else(|| bad("path must start with /"))?;
    let mut segments = Vec::new();
    if !raw.is_empty() {
        for seg in raw.split('/') {
            let d = percent_decode(seg, false)?;
            if d.is_empty() {
                return Err(bad(format!("empty path segment in {path:?}")));
            }
            if d == "." || d == ".." {
                return Err(bad(format!("dot segment in {path:?}")));
            }
            if d.contains('/') || d.contains('\\') {
                return Err(bad(format!("encoded slash in {path:?}")));
            }
            segments.push(d);
        }
    }
    let mut version = None;
    if let Some(first) = segments.first() {
        if let Some(v) = first.strip_prefix('v') {
            if v.starts_with(|c: char| c.is_ascii_digit()) {
                let ok = v.split_once('.').is_some_and(|(maj, min)| {
                    maj == "1"
                        && !min.is_empty()
                        && min.len() <= 3
                        && min.bytes().all(|b| b.is_ascii_digit())
                });
                if !ok {
                    return Err(bad(format!("API version prefix {first:?}")));
                }
                version = Some(v.to_string());
                segments.remove(0);
            }
        }
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(q) = query {
        if q.contains(';') {
            return Err(bad("';' in the query"));
        }
        for part in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = percent_decode(k, true)?;
            let v = percent_decode(v, true)?;
            if pairs.iter().any(|(pk, _)| *pk == k) {
                return Err(bad(format!("query parameter {k:?} given twice")));
            }
            pairs.push((k, v));
        }
    }
    Ok(Target {
        version,
        segments,
        query: pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_targets_parse_back_to_themselves() {
        // Found by the fuzz target: a bare version prefix was written as `/v1.44/`, which the
        // parser refuses as an empty segment.
        for t in [
            "/v1.44?containers/json?all=1",
            "/v1.44",
            "/",
            "/_ping",
            "/v1.44/containers/json?all=1&filters=%7B%7D",
            "/containers/a%20b/json?x=a+b",
        ] {
            let parsed = parse_target(t).expect(t);
            let written = parsed.to_string();
            assert_eq!(
                parse_target(&written).expect(&written),
                parsed,
                "{t} -> {written}"
            );
        }
    }

    #[test]
    fn percent_encoding_keeps_unreserved_and_escapes_every_other_byte() {
        for (plain, encoded) in [
            ("", ""),
            ("openclaw-sbx-a_1.x~", "openclaw-sbx-a_1.x~"),
            ("a b", "a%20b"),
            (
                "{\"label\":[\"x=y\"]}",
                "%7B%22label%22%3A%5B%22x%3Dy%22%5D%7D",
            ),
            ("é/ü", "%C3%A9%2F%C3%BC"),
            ("%", "%25"),
            ("€x", "%E2%82%ACx"),
        ] {
            assert_eq!(percent_encode(plain), encoded, "{plain:?}");
            if !plain.contains(['/']) {
                assert_eq!(percent_decode(encoded, false).as_deref(), Ok(plain));
            }
        }
        assert!(percent_decode("a\u{7f}", false).is_err());
        assert!(percent_decode("a%7f", false).is_err());
        assert_eq!(percent_decode("a+b", true).as_deref(), Ok("a b"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Ok("a+b"));
    }

    #[test]
    fn parses_a_cli_request() {
        let raw = b"POST /v1.44/containers/create?name=openclaw-sbx-a HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}";
        let r = parse_request_head(raw).expect("parse");
        assert_eq!(r.method, "POST");
        assert_eq!(r.body, BodyFraming::Length(2));
        assert_eq!(&raw[r.head_len..], b"{}");
        assert!(r.keep_alive());
        let t = parse_target(&r.target).expect("target");
        assert_eq!(t.version.as_deref(), Some("1.44"));
        assert_eq!(t.segments, vec!["containers", "create"]);
        assert_eq!(t.query, vec![("name".into(), "openclaw-sbx-a".into())]);
    }

    #[test]
    fn a_head_split_across_reads_is_incomplete_until_whole() {
        let raw = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(
                parse_request_head(&raw[..cut]),
                Err(HttpError::Incomplete),
                "cut at {cut}"
            );
        }
        assert!(parse_request_head(raw).is_ok());
    }

    #[test]
    fn ambiguous_framing_is_malformed() {
        for raw in [
            &b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"[..],
            b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length : 1\r\n\r\n",
            b"POST /x HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"POST /x HTTP/1.1\nHost: x\r\n\r\n",
            b"POST http://h/x HTTP/1.1\r\n\r\n",
            b"POST /x HTTP/2.0\r\n\r\n",
            b"POST  /x HTTP/1.1\r\n\r\n",
            b"get /x HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1\r\nX: a\x00b\r\n\r\n",
            b"GET /x\x7f HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request_head(raw), Err(HttpError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut raw = b"GET /x HTTP/1.1\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert_eq!(parse_request_head(&raw), Err(HttpError::TooLarge));
    }

    #[test]
    fn chunked_bodies_decode_and_bad_ones_fail() {
        let raw = b"4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: y\r\n\r\nNEXT";
        let d = decode_chunked(raw, 100).expect("decode");
        assert_eq!(d.body, b"{\"a\":1}");
        assert_eq!(&raw[d.consumed..], b"NEXT");
        for cut in 0..raw.len() - 4 {
            assert_eq!(decode_chunked(&raw[..cut], 100), Err(HttpError::Incomplete));
        }
        assert_eq!(decode_chunked(raw, 3), Err(HttpError::TooLarge));
        assert!(matches!(
            decode_chunked(b"4;ext=1\r\nabcd\r\n0\r\n\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            decode_chunked(b"4\r\nabcdX\r\n0\r\n\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            decode_chunked(b"-1\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn path_tricks_are_refused() {
        for t in [
            "/containers//json",
            "/containers/%2e%2e/json",
            "/containers/./x/json",
            "/containers/../images/x/json",
            "/containers/a%2Fb/json",
            "/containers/a%5cb/json",
            "/v1.44/../x",
            "/v2.0/containers/x/json",
            "/v1.x/containers/x/json",
            "/containers/json?all=1;x=2",
            "/containers/create?name=a&name=b",
            "/containers/%zz/json",
            "/containers/%00/json",
        ] {
            assert!(parse_target(t).is_err(), "{t}");
        }
        let t = parse_target("/v1.41/containers/x/json?size=0").expect("ok");
        assert_eq!(t.to_string(), "/v1.41/containers/x/json?size=0");
        let t = parse_target("/_ping").expect("ok");
        assert_eq!(t.version, None);
        assert_eq!(t.to_string(), "/_ping");
    }

    #[test]
    fn response_framing() {
        let r = parse_response_head(
            b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            "POST",
        )
        .expect("parse");
        assert_eq!(r.body, ResponseBody::Upgraded);
        let r = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "HEAD")
            .expect("parse");
        assert_eq!(r.body, ResponseBody::None);
        let r = parse_response_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET",
        )
        .expect("parse");
        assert_eq!(r.body, ResponseBody::Chunked);
        let r = parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n",
            "POST",
        )
        .expect("parse");
        assert_eq!(r.body, ResponseBody::UntilClose);
    }
}
