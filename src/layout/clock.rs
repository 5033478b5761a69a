//! Timestamps as every layout reads them: the built-in spellings or `--time-format`, placed in
//! `--tz` when written without an offset.

use jiff::fmt::strtime::BrokenDownTime;
use jiff::tz::TimeZone;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::record::{in_rfc3339_range, parse_timestamp_parts};

/// A `--tz` or `--time-format` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// No such time zone in the system's database.
    #[error("--tz {name}: {reason} (give an IANA name such as Europe/Berlin, or `local`)")]
    Zone {
        /// The name as given.
        name: String,
        /// What jiff said.
        reason: String,
    },
    /// The format cannot be parsed, or cannot read back what it writes.
    #[error(
        "--time-format {format:?}: {reason} (strftime-like: %Y-%m-%d %H:%M:%S, %b for a month name, %z for an offset, %.f for a fraction)"
    )]
    Format {
        /// The format as given.
        format: String,
        /// What went wrong.
        reason: String,
    },
}

/// How timestamps are read: which spellings, and where those without an offset happened.
#[derive(Clone, Debug)]
pub struct Clock {
    /// `--tz`; `None` is UTC, which needs no database and takes the fast path.
    zone: Option<TimeZone>,
    /// `--time-format`: a strftime-like format instead of the built-in spellings.
    format: Option<Box<str>>,
    /// The format with `%Q` as `%:Q`, tried when it fails: `%Q` reads `+0200`, and a zone
    /// written `+02:00` is the same zone.
    format_colon: Option<Box<str>>,
    /// When the run started: a date without a year takes the latest year that does not put it
    /// more than a day after this.
    now: OffsetDateTime,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::utc()
    }
}

impl Clock {
    /// The built-in spellings, UTC when no offset is written: what `plain` has always read.
    pub fn utc() -> Clock {
        Clock {
            zone: None,
            format: None,
            format_colon: None,
            now: OffsetDateTime::now_utc(),
        }
    }

    /// A clock for `--tz ZONE` (an IANA name, `local`, or `UTC`) and `--time-format FORMAT`.
    ///
    /// # Errors
    /// [`ClockError`] when the zone is unknown or the format cannot read what it writes.
    pub fn new(zone: Option<&str>, format: Option<&str>) -> Result<Clock, ClockError> {
        let mut clock = Clock::utc();
        clock.zone = match zone {
            None | Some("UTC" | "utc") => None,
            Some("local") => Some(TimeZone::try_system().map_err(|e| ClockError::Zone {
                name: "local".to_owned(),
                reason: e.to_string(),
            })?),
            Some(name) => Some(TimeZone::get(name).map_err(|e| ClockError::Zone {
                name: name.to_owned(),
                reason: e.to_string(),
            })?),
        };
        if let Some(format) = format {
            let bad = |reason: String| ClockError::Format {
                format: format.to_owned(),
                reason,
            };
            // A format is good when it reads back what it writes.
            let sample = jiff::civil::date(2026, 4, 15).at(10, 20, 30, 123_000_000);
            let sample = sample
                .to_zoned_datetime(TimeZone::UTC)
                .map_err(|e| bad(e.to_string()))?;
            let written = jiff::fmt::strtime::format(format, &sample).map_err(|e| bad(e.to_string()))?;
            BrokenDownTime::parse_prefix(format, &written).map_err(|e| bad(e.to_string()))?;
            clock.format = Some(format.into());
            clock.format_colon = format.contains("%Q").then(|| {
                format
                    .replace("%%", "\0")
                    .replace("%Q", "%:Q")
                    .replace('\0', "%%")
                    .into()
            });
            // It must give an instant: a date and a time of day, or `%s` (an empty format, or
            // one of a time alone, would reject every line).
            if clock.formatted(format, written.as_bytes()).is_none() {
                return Err(bad(format!(
                    "it writes {written:?}, from which no date and time can be read back"
                )));
            }
        }
        Ok(clock)
    }

    /// The same clock, reading dates without a year relative to `now` (for tests).
    pub fn at(mut self, now: OffsetDateTime) -> Clock {
        self.now = now;
        self
    }

    /// True for the clock `plain` has always used, which its fast path reads itself.
    pub fn is_default(&self) -> bool {
        self.zone.is_none() && self.format.is_none()
    }

    /// Reads a timestamp at the start of `s`: the instant and how many bytes it took.
    pub fn timestamp(&self, s: &[u8]) -> Option<(OffsetDateTime, usize)> {
        match &self.format {
            None => {
                let (civil, offset, used) = parse_timestamp_parts(s)?;
                Some((self.place(civil, offset)?, used))
            }
            Some(format) => self.formatted(format, s),
        }
    }

    /// Reads a whole field as a timestamp: every byte of it must be used.
    pub fn whole(&self, s: &[u8]) -> Option<OffsetDateTime> {
        match self.timestamp(s)? {
            (timestamp, used) if used == s.len() => Some(timestamp),
            _ => None,
        }
    }

    /// The instant of a date and time as written, with its offset if one was written.
    pub fn place(&self, civil: PrimitiveDateTime, offset: Option<UtcOffset>) -> Option<OffsetDateTime> {
        self.place_in(civil, offset, self.zone.as_ref())
    }

    /// [`Clock::place`] in `zone` (`None`: UTC) rather than `--tz`.
    fn place_in(
        &self,
        civil: PrimitiveDateTime,
        offset: Option<UtcOffset>,
        zone: Option<&TimeZone>,
    ) -> Option<OffsetDateTime> {
        let timestamp = match (offset, zone) {
            (Some(offset), _) => civil.assume_offset(offset),
            (None, None) => civil.assume_utc(),
            (None, Some(zone)) => {
                let dt = jiff::civil::DateTime::new(
                    i16::try_from(civil.year()).ok()?,
                    civil.month() as i8,
                    civil.day() as i8,
                    civil.hour() as i8,
                    civil.minute() as i8,
                    civil.second() as i8,
                    civil.nanosecond() as i32,
                )
                .ok()?;
                // A time the clocks skipped is read with the offset before the change (02:30
                // in a spring-forward gap is 03:30); one they repeated is its first occurrence.
                match zone.to_ambiguous_timestamp(dt).compatible() {
                    Ok(instant) => OffsetDateTime::from_unix_timestamp_nanos(instant.as_nanosecond()).ok()?,
                    // jiff's instants end at 9999-12-30T22:00Z (so that any offset can show
                    // them): the rest of year 9999 takes the zone's offset at that end.
                    Err(_) if civil.year() == 9999 => {
                        let offset = zone.to_offset(jiff::Timestamp::MAX);
                        civil.assume_offset(UtcOffset::from_whole_seconds(offset.seconds()).ok()?)
                    }
                    Err(_) => return None,
                }
            }
        };
        in_rfc3339_range(timestamp).then_some(timestamp)
    }

    /// The instant of a date written without a year (`Mar  5 09:30:02`): the latest year that
    /// does not put it more than a day after the run started.
    pub fn without_year(&self, month: u8, day: u8, time: Time) -> Option<OffsetDateTime> {
        self.without_year_in(month, day, time, self.zone.as_ref())
    }

    /// [`Clock::without_year`] in `zone` (`None`: UTC) rather than `--tz`.
    fn without_year_in(
        &self,
        month: u8,
        day: u8,
        time: Time,
        zone: Option<&TimeZone>,
    ) -> Option<OffsetDateTime> {
        let month = Month::try_from(month).ok()?;
        let latest = self.now + time::Duration::DAY;
        // Eight years back reach a Feb 29 from any year.
        (self.now.year() - 8..=self.now.year() + 1)
            .rev()
            .find_map(|year| {
                let date = Date::from_calendar_date(year, month, day).ok()?;
                let timestamp = self.place_in(PrimitiveDateTime::new(date, time), None, zone)?;
                (timestamp <= latest).then_some(timestamp)
            })
    }

    /// Reads a timestamp with `--time-format`.
    fn formatted(&self, format: &str, s: &[u8]) -> Option<(OffsetDateTime, usize)> {
        let (mut parts, used) = BrokenDownTime::parse_prefix(format, s)
            .ok()
            .or_else(|| BrokenDownTime::parse_prefix(self.format_colon.as_deref()?, s).ok())?;
        // `%s`: the instant itself.
        if let Some(instant) = parts.timestamp() {
            let timestamp = OffsetDateTime::from_unix_timestamp_nanos(instant.as_nanosecond()).ok()?;
            return in_rfc3339_range(timestamp).then_some((timestamp, used));
        }
        // `%Q` read a zone's name: the line's own zone, before `--tz`.
        let named = match parts.iana_time_zone() {
            Some(name) => Some(TimeZone::get(name).ok()?),
            None => None,
        };
        let zone = named.as_ref().or(self.zone.as_ref());
        if parts.year().is_none() {
            let time = Time::from_hms_nano(
                parts.hour().unwrap_or(0) as u8,
                parts.minute().unwrap_or(0) as u8,
                parts.second().unwrap_or(0) as u8,
                parts.subsec_nanosecond().unwrap_or(0) as u32,
            )
            .ok()?;
            let (month, day) = (parts.month()? as u8, parts.day()? as u8);
            if parts.offset().is_none() {
                return Some((self.without_year_in(month, day, time, zone)?, used));
            }
            let inferred = self.without_year_in(month, day, time, zone)?;
            parts.set_year(Some(inferred.year() as i16)).ok()?;
        }
        let dt = parts.to_datetime().ok()?;
        let date = Date::from_calendar_date(
            i32::from(dt.year()),
            Month::try_from(dt.month() as u8).ok()?,
            dt.day() as u8,
        )
        .ok()?;
        let time = Time::from_hms_nano(
            dt.hour() as u8,
            dt.minute() as u8,
            dt.second() as u8,
            dt.subsec_nanosecond() as u32,
        )
        .ok()?;
        let offset = match parts.offset() {
            Some(offset) => Some(UtcOffset::from_whole_seconds(offset.seconds()).ok()?),
            None => None,
        };
        Some((
            self.place_in(PrimitiveDateTime::new(date, time), offset, zone)?,
            used,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, time};

    #[test]
    fn local_times_follow_the_zone_across_dst_changes() {
        let berlin = Clock::new(Some("Europe/Berlin"), None).unwrap();
        let at = |s: &str| berlin.whole(s.as_bytes()).unwrap();
        // Winter (+01:00) and summer (+02:00), either side of the 2026-03-29 change.
        assert_eq!(at("2026-03-29 01:30:00"), datetime!(2026-03-29 00:30:00 UTC));
        assert_eq!(at("2026-03-29 03:30:00"), datetime!(2026-03-29 01:30:00 UTC));
        // 02:30 did not happen that night: read with the offset before the change.
        assert_eq!(at("2026-03-29 02:30:00"), datetime!(2026-03-29 01:30:00 UTC));
        // 02:30 happened twice on 2026-10-25: the first one.
        assert_eq!(at("2026-10-25 02:30:00"), datetime!(2026-10-25 00:30:00 UTC));
        // A written offset wins over the zone.
        assert_eq!(at("2026-07-01T12:00:00Z"), datetime!(2026-07-01 12:00:00 UTC));
    }

    #[test]
    fn unknown_zones_and_formats_that_cannot_read_back_are_refused() {
        assert!(Clock::new(Some("Mars/Olympus_Mons"), None).is_err());
        assert!(Clock::new(None, Some("%Y-%m-%d %")).is_err());
        assert!(Clock::new(Some("America/New_York"), Some("%d/%b/%Y:%H:%M:%S %z")).is_ok());
    }

    #[test]
    fn a_time_format_reads_a_prefix_and_infers_a_missing_year() {
        let clock = Clock::new(None, Some("%d/%b/%Y:%H:%M:%S %z"))
            .unwrap()
            .at(datetime!(2026-12-03 00:00 UTC));
        let (ts, used) = clock.timestamp(b"15/Apr/2026:10:00:00 +0200 GET /").unwrap();
        assert_eq!((ts, used), (datetime!(2026-04-15 08:00:00 UTC), 26));
        let clock = Clock::new(None, Some("%b %d %H:%M:%S"))
            .unwrap()
            .at(datetime!(2026-01-01 10:00 UTC));
        // December is last year's; January 2 is within a day of now, so this year's.
        assert_eq!(
            clock.whole(b"Dec 31 23:00:00").unwrap(),
            datetime!(2025-12-31 23:00 UTC)
        );
        assert_eq!(
            clock.whole(b"Jan 02 09:00:00").unwrap(),
            datetime!(2026-01-02 09:00 UTC)
        );
    }

    #[test]
    fn a_date_without_a_year_is_never_more_than_a_day_ahead() {
        let clock = Clock::utc().at(datetime!(2026-03-04 12:00 UTC));
        assert_eq!(
            clock.without_year(3, 5, time!(09:30:02)),
            Some(datetime!(2026-03-05 09:30:02 UTC))
        );
        assert_eq!(
            clock.without_year(3, 6, time!(09:30:02)),
            Some(datetime!(2025-03-06 09:30:02 UTC))
        );
        // Feb 29 goes back to the last leap year.
        assert_eq!(
            clock.without_year(2, 29, time!(00:00)),
            Some(datetime!(2024-02-29 00:00 UTC))
        );
    }
}
