//! What every layout reads from a line before it is a record: the head (timestamp, severity,
//! message) and the readers the layouts share (a leading date, a numeric severity, an epoch).

use std::ops::Range;

use time::OffsetDateTime;

use crate::record::{Severity, in_rfc3339_range};

/// What a layout read, its message borrowed from the line or unescaped into the scratch text.
pub(crate) struct Head<'a> {
    pub(crate) timestamp: OffsetDateTime,
    pub(crate) severity: Severity,
    pub(crate) message: Text<'a>,
}

/// What a structured layout takes for a timestamp or severity its line does not have: a
/// container's message ([`super::Container`]) keeps the runtime's time and `--default-severity`.
pub(crate) struct Defaults<'d> {
    /// The timestamp, read only when the line has none.
    pub(crate) timestamp: &'d dyn Fn() -> Option<OffsetDateTime>,
    pub(crate) severity: Severity,
}

impl Defaults<'_> {
    /// A line read alone: no timestamp is no record; no severity is INFO.
    pub(crate) const NONE: Defaults<'static> = Defaults {
        timestamp: &no_timestamp,
        severity: Severity::Info,
    };
}

fn no_timestamp() -> Option<OffsetDateTime> {
    None
}

/// A string a layout read: a slice of the line, or a range of [`Scratch::text`].
pub(crate) enum Text<'a> {
    Line(&'a [u8]),
    Scratch(Range<usize>),
}

/// True when `s` begins `YYYY-MM-DD` (or `YYYY/MM/DD`).
pub(crate) fn starts_with_date(s: &[u8]) -> bool {
    match s.get(..10) {
        Some(&[y0, y1, y2, y3, sep1, m0, m1, sep2, d0, d1]) => {
            [y0, y1, y2, y3, m0, m1, d0, d1].iter().all(u8::is_ascii_digit)
                && matches!((sep1, sep2), (b'-', b'-') | (b'/', b'/'))
        }
        _ => false,
    }
}

/// A severity written as a number, as pino and bunyan do (10 trace ... 60 fatal); numbers
/// between take the level below them.
pub(crate) fn numeric_severity(text: &[u8]) -> Option<Severity> {
    let n: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    Some(match n {
        n if !n.is_finite() => return None,
        n if n < 20.0 => Severity::Trace,
        n if n < 30.0 => Severity::Debug,
        n if n < 40.0 => Severity::Info,
        n if n < 50.0 => Severity::Warn,
        n if n < 60.0 => Severity::Error,
        _ => Severity::Fatal,
    })
}

/// A timestamp written as a number: seconds since the epoch with a fraction (zap), or
/// milliseconds when it is above 1e11 (pino). Read from the decimal text, so that no digit is
/// lost to floating point.
pub(crate) fn epoch(text: &[u8]) -> Option<OffsetDateTime> {
    let (int, frac) = match memchr::memchr(b'.', text) {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if int.is_empty() || int.len() > 18 || !digits(int) || !digits(frac) {
        // Exponents and signs are not what loggers write; read them the approximate way.
        let value: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
        let nanos = if value > 1e11 { value * 1e6 } else { value * 1e9 };
        // A negative or huge number may fall outside years 0000-9999: no timestamp for us.
        return OffsetDateTime::from_unix_timestamp_nanos(nanos as i128)
            .ok()
            .filter(|t| in_rfc3339_range(*t));
    }
    let whole = int.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    // Nanoseconds from the fraction's first nine digits (milliseconds: six, after the
    // whole part's last three).
    let fraction = |wanted: usize| {
        (0..wanted).fold(0u32, |n, i| {
            n * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'))
        })
    };
    let (seconds, nanos) = if whole > 100_000_000_000 {
        (whole / 1000, (whole % 1000) as u32 * 1_000_000 + fraction(6))
    } else {
        (whole, fraction(9))
    };
    // Up to 9999-12-31T23:59:59Z: as far as RFC 3339 (the JSON output) writes.
    if seconds > 253_402_300_799 {
        return None;
    }
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()?
        .replace_nanosecond(nanos)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn epoch_numbers_read_seconds_or_milliseconds_exactly() {
        assert_eq!(
            epoch(b"1772535601377"),
            Some(datetime!(2026-03-03 11:00:01.377 UTC))
        );
        assert_eq!(
            epoch(b"1772535601.123456"),
            Some(datetime!(2026-03-03 11:00:01.123456 UTC))
        );
        assert_eq!(epoch(b"1772535601"), Some(datetime!(2026-03-03 11:00:01 UTC)));
        assert_eq!(epoch(b"1.7725356e9"), Some(datetime!(2026-03-03 11:00:00 UTC)));
        assert_eq!(epoch(b"x"), None);
        assert_eq!(epoch(b"99999999999999999999999"), None);
    }
}
