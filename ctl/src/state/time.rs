//! Times of the state commands: RFC3339 in (the agent's `taken_at`, `restore --at`), the wire form
//! `YYYY-MM-DDTHH:MM:SSZ` out (what the operations document's `at` parameter admits), and
//! `restore --at`'s relative form (`2h`: two hours ago).

use clawster_core::timefmt::fmt_utc;

use super::RETENTION_DAYS;

/// The most digits of a relative `--at` number.
const AGO_MAX_DIGITS: usize = 5;

/// Days since 1970-01-01 of a proleptic Gregorian date: H. Hinnant's days-from-civil.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// An RFC3339 date-time (`2026-12-07T11:59:30Z`, `...30.25+01:00`) as seconds since the epoch
/// (fractions of a second are dropped, so the time named is never passed).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let sep = |i: usize, c: &[u8]| c.contains(&b[i]);
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let y = digits(&s[0..4])?;
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    let h = digits(&s[11..13])?;
    let mi = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    let y = i64::from(y);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    if sec > 60 {
        return None;
    }
    // A leap second reads as the last second of its minute.
    let sec = sec.min(59);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !b"+-".contains(&rb[0]) || rb[3] != b':' {
                return None;
            }
            let oh = i64::from(digits(&rest[1..3])?);
            let om = i64::from(digits(&rest[4..6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if rb[0] == b'-' {
                -o
            } else {
                o
            }
        }
    };
    let local = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(sec);
    Some(local - offset)
}

/// `restore --at` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtError {
    /// Neither RFC3339 nor a relative time.
    #[error("--at {0:?} is not a time: give an RFC3339 time (e.g. 2026-12-07T09:30:00Z) or how long ago (1 to 99999 with unit s, m, h or d, e.g. 2h)")]
    Form(String),
    /// After now.
    #[error("--at {0:?} is in the future: a restore goes back to a sync already taken")]
    Future(String),
    /// Older than the bucket keeps versions.
    #[error("--at {given:?} is more than {RETENTION_DAYS} days ago: the bucket keeps replaced state for {RETENTION_DAYS} days, so nothing that old is left")]
    TooOld {
        /// The value given.
        given: String,
    },
}

/// A checked `restore --at` time, in seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At(pub i64);

impl At {
    /// Parses `--at` against `now`: RFC3339 (any offset), or `N` with unit `s`, `m`, `h` or `d`
    /// meaning that long ago; it must be neither in the future nor older than the retention.
    pub fn parse(s: &str, now: i64) -> Result<Self, AtError> {
        let shown = crate::ops::clean(s);
        let t = match parse_rfc3339(s) {
            Some(t) => t,
            None => now - ago(s).ok_or_else(|| AtError::Form(shown.clone()))?,
        };
        if t > now {
            return Err(AtError::Future(shown));
        }
        if now - t > i64::from(RETENTION_DAYS) * 86_400 {
            return Err(AtError::TooOld { given: shown });
        }
        Ok(Self(t))
    }

    /// The wire form: `YYYY-MM-DDTHH:MM:SSZ` (what the document's `at` pattern admits).
    pub fn wire(self) -> String {
        fmt_utc(self.0)
    }
}

/// Seconds of a relative time such as `90s`, `30m`, `2h`, `3d`.
fn ago(s: &str) -> Option<i64> {
    let (at, unit) = s.char_indices().last()?;
    let num = &s[..at];
    if num.is_empty() || num.len() > AGO_MAX_DIGITS || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = num.parse().ok()?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    Some(n * per)
}

/// The operations document's `at` pattern: empty (for the other actions) or the wire form.
pub fn at_pattern() -> String {
    "^$|^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$".to_string()
}

/// Seconds since the epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An age for people: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_644_770; // 2026-12-07T11:59:30Z

    #[test]
    fn rfc3339_round_trips_and_honours_offsets() {
        for t in [0, 951_782_400, NOW, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&fmt_utc(t)), Some(t), "{}", fmt_utc(t));
        }
        assert_eq!(parse_rfc3339("2026-12-07T12:59:30+01:00"), Some(NOW));
        assert_eq!(parse_rfc3339("2026-12-07T06:29:30-05:30"), Some(NOW));
        assert_eq!(parse_rfc3339("2026-12-07t11:59:30.999z"), Some(NOW));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in [
            "",
            "2026-12-07",
            "2026-12-07 11:59:30Z",
            "2026-12-07T11:59:30",
            "2026-13-07T11:59:30Z",
            "2026-02-29T11:59:30Z",
            "2026-12-07T24:00:00Z",
            "2026-12-07T11:60:00Z",
            "2026-12-07T11:59:30.Z",
            "2026-12-07T11:59:30+0100",
            "2026-12-07T11:59:30+24:00",
            "2026-12-07T11:59:30Z;id",
            "+026-12-07T11:59:30Z",
            "２026-12-07T11:59:30Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn at_takes_rfc3339_or_how_long_ago() {
        assert_eq!(At::parse("2h", NOW), Ok(At(NOW - 7200)));
        assert_eq!(At::parse("90s", NOW), Ok(At(NOW - 90)));
        assert_eq!(At::parse("14d", NOW), Ok(At(NOW - 14 * 86_400)));
        assert_eq!(At::parse("0s", NOW), Ok(At(NOW)));
        assert_eq!(
            At::parse("2026-12-07T10:00:00+01:00", NOW).map(At::wire),
            Ok("2026-12-07T09:00:00Z".to_string())
        );
        assert_eq!(
            At::parse("30m", NOW).map(At::wire),
            Ok("2026-12-07T11:29:30Z".into())
        );
        for bad in [
            "",
            "2",
            "h",
            "2w",
            "-2h",
            "2 h",
            "1.5h",
            "123456s",
            "2h;id",
            "yesterday",
        ] {
            assert!(
                matches!(At::parse(bad, NOW), Err(AtError::Form(_))),
                "{bad:?}"
            );
        }
        let e = At::parse("2027-01-01T00:00:00Z", NOW).expect_err("future");
        assert!(e.to_string().contains("is in the future"), "{e}");
        let e = At::parse("15d", NOW).expect_err("old");
        assert_eq!(e.to_string(), "--at \"15d\" is more than 14 days ago: the bucket keeps replaced state for 14 days, so nothing that old is left");
        let e = At::parse("soon\u{1b}[2J", NOW).expect_err("form");
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
    }

    #[test]
    fn the_wire_form_matches_the_document_pattern() {
        let re = |s: &str| {
            let b = s.as_bytes();
            s.len() == 20
                && b.iter().enumerate().all(|(i, c)| match i {
                    4 | 7 => *c == b'-',
                    10 => *c == b'T',
                    13 | 16 => *c == b':',
                    19 => *c == b'Z',
                    _ => c.is_ascii_digit(),
                })
        };
        for t in [0, NOW, NOW - 3600] {
            assert!(re(&At(t).wire()));
        }
        assert!(at_pattern().starts_with("^$|^") && at_pattern().ends_with("Z$"));
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(age(-5), "0s");
        assert_eq!(age(45), "45s");
        assert_eq!(age(720), "12m");
        assert_eq!(age(3600 * 3 + 300), "3h 5m");
        assert_eq!(age(86_400 * 2 + 3600 * 4), "2d 4h");
    }
}
