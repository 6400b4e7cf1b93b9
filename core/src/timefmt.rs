//! Times written for people and for records, in UTC, without a time-zone database.
//!
//! The agent stamps audit records and window states with [`fmt_utc`]; `clawsterctl` prints journal
//! timestamps with the same function, so an operator reads one format on both sides.

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): H. Hinnant's civil-from-days.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Seconds since the epoch as `2026-12-02T07:00:00Z`.
pub fn fmt_utc(unix: i64) -> String {
    let (y, mo, d) = civil(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// (year, month, day) to days since 1970-01-01: the inverse of [`civil`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `2026-12-02T07:00:00Z` (fractions of a second, as S3 writes them, are accepted and
/// dropped; `+00:00` is accepted for `Z`). Any other offset or shape is refused.
pub fn parse_utc(text: &str) -> Option<i64> {
    let t = text.trim();
    let t = t.strip_suffix('Z').or_else(|| t.strip_suffix("+00:00"))?;
    let (date, time) = t.split_once('T')?;
    let time = time.split_once('.').map_or(time, |(whole, frac)| {
        if frac.bytes().all(|b| b.is_ascii_digit()) && !frac.is_empty() {
            whole
        } else {
            "invalid"
        }
    });
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let mut d = date.split('-');
    let (y, mo, da) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    let mut h = time.split(':');
    let (hh, mi, ss) = (num(h.next()?, 2)?, num(h.next()?, 2)?, num(h.next()?, 2)?);
    if d.next().is_some() || h.next().is_some() {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || hh > 23 || mi > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, da as u32);
    // Refuse days a month does not have (2026-02-30).
    if civil(days) != (y, mo as u32, da as u32) {
        return None;
    }
    Some(days * 86_400 + hh * 3600 + mi * 60 + ss)
}

/// Parses an HTTP date (`Mon, 07 Dec 2026 12:00:00 GMT`, RFC 9110's preferred form).
pub fn parse_http_date(text: &str) -> Option<i64> {
    let mut p = text.split_whitespace();
    let _weekday = p.next()?;
    let day: u32 = p.next()?.parse().ok()?;
    let month = match p.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = p.next()?.parse().ok()?;
    let time = p.next()?;
    if p.next()? != "GMT" {
        return None;
    }
    parse_utc(&format!("{year:04}-{month:02}-{day:02}T{time}Z"))
}

/// Seconds since the epoch as the compact form SigV4 signs: `20261202T070000Z`.
pub fn fmt_amz(unix: i64) -> String {
    fmt_utc(unix).replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(fmt_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_utc(1_796_194_800), "2026-12-02T07:00:00Z");
        assert_eq!(fmt_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(fmt_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_what_it_formats_and_refuses_the_rest() {
        for t in [0, 951_782_400, 1_796_194_800, 4_102_444_799, -86_400] {
            assert_eq!(parse_utc(&fmt_utc(t)), Some(t), "{t}");
        }
        assert_eq!(parse_utc("2026-12-02T07:00:00.123Z"), Some(1_796_194_800));
        assert_eq!(parse_utc("2026-12-02T07:00:00+00:00"), Some(1_796_194_800));
        for bad in [
            "2026-12-02 07:00:00Z",
            "2026-12-02T07:00:00+01:00",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T07:00Z",
            "2026-12-02T07:00:00.Z",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
        assert_eq!(
            parse_http_date("Wed, 02 Dec 2026 07:00:00 GMT"),
            Some(1_796_194_800)
        );
        assert_eq!(parse_http_date("Wed, 02 Foo 2026 07:00:00 GMT"), None);
        assert_eq!(fmt_amz(1_796_194_800), "20261202T070000Z");
    }
}
