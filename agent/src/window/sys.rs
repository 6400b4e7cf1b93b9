//! Local civil time for the window's messages: the one system interface it needs that neither std
//! nor rustix offers (sockets and peer credentials are in [`crate::host::socket`]).
#![allow(unsafe_code)]
//! `unsafe` is allowed here for [`local_time`] only: `localtime_r` into a zeroed `tm` we own.

/// Local civil time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// Year.
    pub year: i64,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0-23.
    pub hour: u32,
    /// 0-59.
    pub minute: u32,
    /// 0-60.
    pub second: u32,
    /// Zone abbreviation.
    pub zone: String,
    /// Offset from UTC in seconds.
    pub offset: i64,
}

/// Seconds since the epoch as local civil time, per the host's /etc/localtime or `TZ`.
pub fn local_time(unix: i64) -> Option<LocalTime> {
    // libc marks musl's `time_t` alias deprecated (it announces musl 1.2's 64-bit change); on
    // x86_64 and aarch64 it is 64 bits either way.
    #[allow(deprecated)]
    let t = libc::time_t::try_from(unix).ok()?;
    // SAFETY: localtime_r fills `tm`, which we own; it returns NULL on failure.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let p = unsafe { libc::localtime_r(&t, &mut tm) };
    if p.is_null() {
        return None;
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: tm_zone points at a NUL-terminated static string owned by libc.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    Some(LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        zone,
        offset: tm.tm_gmtoff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_of_the_epoch_is_sane() {
        let t = local_time(0).expect("localtime");
        assert!((1969..=1970).contains(&t.year) && (1..=12).contains(&t.month));
        assert!((1..=31).contains(&t.day) && t.offset.abs() <= 14 * 3600);
    }
}
