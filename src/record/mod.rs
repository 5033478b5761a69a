//! The record types and the line grammar: pure functions, no I/O, no async.
//!
//! The parser stage calls [`parse_line`] on each line the reader split off; the validator turns a
//! [`ParsedRecord`] into a [`ValidRecord`], the only type the writer accepts.

pub mod fields;

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

pub use fields::{Fields, Value};

/// How serious a record is, ordered `Trace < Debug < Info < Warn < Error < Fatal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `TRACE`
    Trace,
    /// `DEBUG`, or `DEBUG1` to `DEBUG5` (PostgreSQL)
    Debug,
    /// `INFO`, `NOTICE` or `LOG`
    Info,
    /// `WARN` or `WARNING`
    Warn,
    /// `ERROR` or `ERR`
    Error,
    /// `FATAL`, `CRITICAL`, `CRIT`, `PANIC`, `EMERG`, `EMERGENCY` or `ALERT`
    Fatal,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 6] = [
        Severity::Trace,
        Severity::Debug,
        Severity::Info,
        Severity::Warn,
        Severity::Error,
        Severity::Fatal,
    ];

    /// The canonical upper-case name, as written to the output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }

    /// Parses a severity field: a name or alias, any case, optionally in brackets (`[warn]`).
    #[inline(always)]
    pub fn from_field(field: &[u8]) -> Option<Severity> {
        let name = match field {
            [b'[', inner @ .., b']'] => inner,
            _ => field,
        };
        match name.len() {
            1..=8 => {}
            // The one name longer than a word.
            9 if name.eq_ignore_ascii_case(b"emergency") => return Some(Severity::Fatal),
            _ => return None,
        }
        // PostgreSQL's DEBUG1 to DEBUG5: checked apart, as folding would turn 0x11 into `1`.
        if let [head @ .., b'1'..=b'5'] = name
            && head.len() == 5
        {
            return (fold(head) == DEBUG).then_some(Severity::Debug);
        }
        Some(match fold(name) {
            TRACE => Severity::Trace,
            DEBUG => Severity::Debug,
            INFO | NOTICE | LOG => Severity::Info,
            WARN | WARNING => Severity::Warn,
            ERROR | ERR => Severity::Error,
            FATAL | CRITICAL | CRIT | PANIC | EMERG | ALERT => Severity::Fatal,
            _ => return None,
        })
    }
}

/// A name of 1 to 8 bytes as one word, lower-cased if it is letters: every name is letters
/// only, and for a letter `b | 0x20` is its lower case while no other byte maps onto a lower-case
/// letter: one OR and one compare per name, any case.
#[inline(always)]
fn fold(name: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..name.len()].copy_from_slice(name);
    u64::from_le_bytes(word) | fold_mask(name.len())
}

/// Sets bit 5 of the first `len` (1 to 8) bytes of a little-endian word: lower-cases ASCII
/// letters there. The padding after the name stays zero, so a name with a NUL or a space in it
/// (`INFO\0`, which folds to `info `) never equals a shorter name.
const fn fold_mask(len: usize) -> u64 {
    0x2020_2020_2020_2020 >> (8 * (8 - len))
}

/// A lower-case name of at most 8 letters as one folded word, for [`Severity::from_field`].
const fn folded(name: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let mut i = 0;
    while i < name.len() {
        word[i] = name[i];
        i += 1;
    }
    u64::from_le_bytes(word) | fold_mask(name.len())
}

const TRACE: u64 = folded(b"trace");
const DEBUG: u64 = folded(b"debug");
const INFO: u64 = folded(b"info");
const NOTICE: u64 = folded(b"notice");
const LOG: u64 = folded(b"log");
const WARN: u64 = folded(b"warn");
const WARNING: u64 = folded(b"warning");
const ERROR: u64 = folded(b"error");
const ERR: u64 = folded(b"err");
const FATAL: u64 = folded(b"fatal");
const CRITICAL: u64 = folded(b"critical");
const CRIT: u64 = folded(b"crit");
const PANIC: u64 = folded(b"panic");
const EMERG: u64 = folded(b"emerg");
const ALERT: u64 = folded(b"alert");

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that width and alignment (`{:>5}`) apply.
        f.pad(self.as_str())
    }
}

/// The error of parsing a severity name from the command line.
#[derive(Debug, thiserror::Error)]
#[error("unknown severity '{0}' (expected trace, debug, info, warn, error or fatal)")]
pub struct UnknownSeverity(String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::from_field(s.as_bytes()).ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// One input line as the reader split it: its 1-based number and its bytes, without the `\n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// 1-based line number; every line counts, blank and bad ones too.
    pub line_no: u64,
    /// The line's bytes without its `\n`.
    pub text: &'a [u8],
}

/// A line that follows the grammar: timestamp, severity and (possibly empty) message.
///
/// A view into the batch that holds the line's bytes: making one copies and counts nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedRecord<'a> {
    /// 1-based input line number.
    pub line_no: u64,
    /// When the event happened, with the offset the line gave (UTC when none).
    pub timestamp: OffsetDateTime,
    /// The record's severity.
    pub severity: Severity,
    /// The rest of the line, bytes unchanged.
    pub message: &'a [u8],
}

/// A record the validator accepted: its message is not empty.
///
/// The field is private, so `ValidRecord::validate` is the only way to build one and the writer
/// never has to check again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidRecord<'a>(ParsedRecord<'a>);

impl<'a> ValidRecord<'a> {
    /// Accepts a parsed record whose message is not empty; otherwise gives it back.
    ///
    /// # Errors
    /// Returns the record unchanged when its message is empty.
    pub(crate) fn validate(record: ParsedRecord<'a>) -> Result<ValidRecord<'a>, ParsedRecord<'a>> {
        if record.message.is_empty() {
            Err(record)
        } else {
            Ok(ValidRecord(record))
        }
    }

    /// The record's fields.
    pub fn record(&self) -> &ParsedRecord<'a> {
        &self.0
    }
}

/// Why a line was rejected; the `Display` text is the reason users see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Fewer than two whitespace-separated fields.
    NotEnoughFields,
    /// The first field (or two) is not a valid timestamp.
    BadTimestamp,
    /// The field after the timestamp is not a known severity.
    BadSeverity,
    /// Longer than `--max-line-bytes`.
    LineTooLong,
    /// A record larger than the sink can carry (a NATS server's max_payload).
    TooLarge,
    /// A collected message (or a line of one) that is not a record ingest published: not JSON,
    /// or without a field.
    NotARecord,
    /// A continuation line past `--max-record-lines` (`--multiline`).
    RecordTooLong,
    /// Does not follow the `--input` layout: not a JSON object, not `key=value` pairs, not
    /// syslog, or off the pattern's literal text.
    NotInLayout,
}

impl RejectReason {
    /// Every reason, in a stable order (used for per-reason counters).
    pub const ALL: [RejectReason; 8] = [
        RejectReason::NotEnoughFields,
        RejectReason::BadTimestamp,
        RejectReason::BadSeverity,
        RejectReason::LineTooLong,
        RejectReason::TooLarge,
        RejectReason::NotARecord,
        RejectReason::RecordTooLong,
        RejectReason::NotInLayout,
    ];

    /// The reason as a machine-readable key, for `--stats-json`.
    pub const fn key(self) -> &'static str {
        match self {
            RejectReason::NotEnoughFields => "not_enough_fields",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::BadSeverity => "bad_severity",
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::TooLarge => "too_large",
            RejectReason::NotARecord => "not_a_record",
            RejectReason::RecordTooLong => "record_too_long",
            RejectReason::NotInLayout => "not_in_layout",
        }
    }

    /// The reason as written to the rejects file and the log.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::NotEnoughFields => "not enough fields",
            RejectReason::BadTimestamp => "bad timestamp",
            RejectReason::BadSeverity => "bad severity",
            RejectReason::LineTooLong => "line too long",
            RejectReason::TooLarge => "too large",
            RejectReason::NotARecord => "not a record",
            RejectReason::RecordTooLong => "record too long",
            RejectReason::NotInLayout => "not in the layout",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the grammar makes of one line; borrows from the line, allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Empty after trimming: skipped and counted, not an error.
    Blank,
    /// Does not follow the grammar.
    Rejected(RejectReason),
    /// Follows the grammar; the message may still be empty.
    Parsed {
        /// The parsed timestamp.
        timestamp: OffsetDateTime,
        /// The parsed severity.
        severity: Severity,
        /// The rest of the line after the whitespace that follows the severity.
        message: &'a [u8],
    },
}

/// The UTF-8 byte order mark a file from a Windows tool may start with: no part of its first
/// line.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits input bytes into lines on `\n`; a final line without `\n` still counts.
pub fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, tail) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        rest = tail;
        Some(line)
    })
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_start_blanks(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_blank(b)).unwrap_or(s.len());
    &s[start..]
}

/// Splits off the first field; returns it and the rest after the whitespace run that follows.
fn next_field(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|&b| is_blank(b)).unwrap_or(s.len());
    (&s[..end], trim_start_blanks(&s[end..]))
}

/// The line without leading spaces and tabs and without trailing spaces, tabs and `\r`.
pub fn trim_line(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| !(is_blank(b) || b == b'\r'))
        .map_or(0, |i| i + 1);
    trim_start_blanks(&line[..end])
}

/// Parses one line (without its `\n`) by the record contract in the README.
#[inline]
pub fn parse_line(line: &[u8]) -> Line<'_> {
    parse_line_with(line, parse_timestamp)
}

/// [`parse_line`] with another way to read the timestamp (`--tz`, `--time-format`).
#[inline(always)]
pub fn parse_line_with(
    line: &[u8],
    timestamp: impl Fn(&[u8]) -> Option<(OffsetDateTime, usize)>,
) -> Line<'_> {
    let line = trim_line(line);
    if line.is_empty() {
        return Line::Blank;
    }
    // The timestamp first: on the happy path, nothing needs scanning for fields before it.
    let rest = match timestamp(line) {
        Some((timestamp, used)) if line.get(used).is_none_or(|&b| is_blank(b)) => {
            (timestamp, trim_start_blanks(&line[used..]))
        }
        // Fewer than two fields wins over a bad timestamp (`Traceback` alone, `...Zjunk`).
        _ if next_field(line).1.is_empty() => return Line::Rejected(RejectReason::NotEnoughFields),
        _ => return Line::Rejected(RejectReason::BadTimestamp),
    };
    let (timestamp, rest) = rest;
    if rest.is_empty() {
        // A timestamp alone, in one field or two (`date time`).
        return Line::Rejected(RejectReason::NotEnoughFields);
    }
    let (field, message) = next_field(rest);
    match Severity::from_field(field) {
        Some(severity) => Line::Parsed {
            timestamp,
            severity,
            message,
        },
        None => Line::Rejected(RejectReason::BadSeverity),
    }
}

/// Reads exactly two ASCII digits at `s[at..]`.
fn two_digits(s: &[u8], at: usize) -> Option<u8> {
    match s.get(at..at + 2)? {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

/// Parses a timestamp at the start of `s`; returns it and how many bytes it used.
///
/// Hand-written for speed; the calendar check is `time`'s own constructors, so it is exact.
pub fn parse_timestamp(s: &[u8]) -> Option<(OffsetDateTime, usize)> {
    let (civil, offset, used) = parse_timestamp_parts(s)?;
    let offset = offset.unwrap_or(UtcOffset::UTC);
    let timestamp = civil.assume_offset(offset);
    // Only at the calendar's two ends can an offset push the instant out of years 0000-9999,
    // which RFC 3339 (the JSON output) cannot write: such a timestamp does not exist for us.
    if !offset.is_utc() && matches!(&s[..4], b"0000" | b"9999") && !in_rfc3339_range(timestamp) {
        return None;
    }
    Some((timestamp, used))
}

/// [`parse_timestamp`]'s pieces: the date and time as written, the offset when one was written
/// (a zone word is UTC), and how many bytes it used. For `--tz`, which places the rest.
#[inline(always)]
pub fn parse_timestamp_parts(s: &[u8]) -> Option<(PrimitiveDateTime, Option<UtcOffset>, usize)> {
    // YYYY-MM-DD?HH:MM:SS: check the fixed shape in one go, then read the digits unchecked.
    let head: &[u8; 19] = s.get(..19)?.try_into().ok()?;
    let digit = |i: usize| head[i].wrapping_sub(b'0');
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    // `-` between the date's parts, or `/` as nginx and Go write it; never one of each.
    let shape_ok = matches!((head[4], head[7]), (b'-', b'-') | (b'/', b'/'))
        && matches!(head[10], b'T' | b't' | b' ')
        && head[13] == b':'
        && head[16] == b':'
        && DIGITS.iter().all(|&i| digit(i) <= 9);
    if !shape_ok {
        return None;
    }
    let pair = |i: usize| digit(i) * 10 + digit(i + 1);
    let year = u16::from(pair(0)) * 100 + u16::from(pair(2));
    let (month, day) = (pair(5), pair(8));
    let (hour, minute, second) = (pair(11), pair(14), pair(17));
    let mut at = 19;

    let mut nanos = 0u32;
    if matches!(s.get(at), Some(b'.' | b',')) {
        at += 1;
        let digits = s[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        for &d in &s[at..at + digits] {
            nanos = nanos * 10 + u32::from(d - b'0');
        }
        nanos *= 10u32.pow(9 - digits as u32);
        at += digits;
    }

    let offset = match s.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            Some(UtcOffset::UTC)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hours = two_digits(s, at + 1)?;
            at += 3;
            let minutes = if s.get(at) == Some(&b':') {
                let m = two_digits(s, at + 1)?;
                at += 3;
                m
            } else if let Some(m) = two_digits(s, at) {
                at += 2;
                m
            } else {
                0
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let (h, m) = (hours as i8, minutes as i8);
            let (h, m) = if sign == b'-' { (-h, -m) } else { (h, m) };
            Some(UtcOffset::from_hms(h, m, 0).ok()?)
        }
        // A zone word after the time, as PostgreSQL writes it (`... 10:00:00.123 UTC`).
        // (The first letter first: after most timestamps comes a space and the severity.)
        Some(b' ') if matches!(s.get(at + 1), Some(b'U' | b'G')) && zone_word(&s[at + 1..]) => {
            at += 4;
            Some(UtcOffset::UTC)
        }
        _ => None,
    };

    let date = Date::from_calendar_date(i32::from(year), Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some((PrimitiveDateTime::new(date, time), offset, at))
}

/// True when `s` starts with `UTC` or `GMT` as a word of its own.
fn zone_word(s: &[u8]) -> bool {
    matches!(s.get(..3), Some(b"UTC" | b"GMT")) && s.get(3).is_none_or(|&b| is_blank(b))
}

/// True when the instant, in UTC, lies in years 0000-9999.
pub(crate) fn in_rfc3339_range(timestamp: OffsetDateTime) -> bool {
    // An offset moves the instant by less than a day: away from the calendar's two end years,
    // it is in range whatever the offset.
    (1..=9998).contains(&timestamp.year())
        || timestamp
            .checked_to_offset(UtcOffset::UTC)
            .is_some_and(|utc| (0..=9999).contains(&utc.year()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn parsed(line: &str) -> (OffsetDateTime, Severity, &[u8]) {
        match parse_line(line.as_bytes()) {
            Line::Parsed {
                timestamp,
                severity,
                message,
            } => (timestamp, severity, message),
            other => panic!("line {line:?}: expected a parsed record, got {other:?}"),
        }
    }

    fn rejected(line: &str) -> RejectReason {
        match parse_line(line.as_bytes()) {
            Line::Rejected(reason) => reason,
            other => panic!("line {line:?}: expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn the_contract_examples_have_their_documented_outcomes() {
        let (ts, sev, msg) = parsed("2026-04-15T00:00:01Z INFO started");
        assert_eq!(
            (ts, sev, msg),
            (
                datetime!(2026-04-15 00:00:01 UTC),
                Severity::Info,
                &b"started"[..]
            )
        );

        let (ts, sev, msg) = parsed("2026-04-15 00:00:05,250 Warning disk 91%");
        assert_eq!(
            (ts, sev, msg),
            (
                datetime!(2026-04-15 00:00:05.25 UTC),
                Severity::Warn,
                &b"disk 91%"[..]
            )
        );

        let (ts, sev, msg) = parsed("2026-04-15T02:00:07+0200 [error] upstream 503");
        assert_eq!(
            (ts, sev, msg),
            (
                datetime!(2026-04-15 02:00:07 +2),
                Severity::Error,
                &b"upstream 503"[..]
            )
        );

        let (_, sev, msg) = parsed("2026-04-15T00:00:27Z INFO");
        assert_eq!(
            (sev, msg),
            (Severity::Info, &b""[..]),
            "parses, empty message is the validator's to drop"
        );

        assert_eq!(
            rejected("2026-02-29T00:00:12Z INFO x"),
            RejectReason::BadTimestamp
        );
        assert_eq!(rejected("2026-04-15T00:00:20Z NOTE x"), RejectReason::BadSeverity);
        assert_eq!(
            rejected("Traceback (most recent call last):"),
            RejectReason::BadTimestamp
        );
    }

    #[test]
    fn blank_lines_are_empty_after_trimming_spaces_tabs_and_cr() {
        for line in ["", " ", "\t", "\r", " \t \r", "\r\r"] {
            assert_eq!(parse_line(line.as_bytes()), Line::Blank, "line {line:?}");
        }
    }

    #[test]
    fn trailing_whitespace_and_cr_are_removed_before_parsing() {
        let (_, _, msg) = parsed("2026-04-15T00:00:01Z INFO started \t\r");
        assert_eq!(msg, b"started");
        let (_, _, msg) = parsed("2026-04-15T00:00:01Z INFO   \r");
        assert_eq!(msg, b"", "only whitespace after the severity is an empty message");
    }

    #[test]
    fn leading_whitespace_is_ignored_and_inner_whitespace_kept() {
        let (_, sev, msg) = parsed(" \t2026-04-15T00:00:01Z\t\tINFO \t  a  b\tc");
        assert_eq!((sev, msg), (Severity::Info, &b"a  b\tc"[..]));
    }

    #[test]
    fn fewer_than_two_fields_is_not_enough_fields() {
        assert_eq!(rejected("Traceback"), RejectReason::NotEnoughFields);
        assert_eq!(rejected("2026-04-15T00:00:01Z"), RejectReason::NotEnoughFields);
        assert_eq!(
            rejected("  2026-04-15T00:00:01Z  "),
            RejectReason::NotEnoughFields
        );
        // A space timestamp takes two fields, leaving no severity.
        assert_eq!(rejected("2026-04-15 00:00:01"), RejectReason::NotEnoughFields);
    }

    #[test]
    fn timestamp_separator_is_t_lowercase_t_or_one_space() {
        for line in [
            "2026-04-15T00:00:01 INFO x",
            "2026-04-15t00:00:01 INFO x",
            "2026-04-15 00:00:01 INFO x",
        ] {
            assert_eq!(
                parsed(line).0,
                datetime!(2026-04-15 00:00:01 UTC),
                "line {line:?}"
            );
        }
        assert_eq!(
            rejected("2026-04-15  00:00:01 INFO x"),
            RejectReason::BadTimestamp
        );
        assert_eq!(
            rejected("2026-04-15\t00:00:01 INFO x"),
            RejectReason::BadTimestamp
        );
        assert_eq!(rejected("2026-04-15_00:00:01 INFO x"), RejectReason::BadTimestamp);
        assert_eq!(rejected("2026-04-15 INFO x"), RejectReason::BadTimestamp);
    }

    #[test]
    fn dates_take_slashes_and_times_a_utc_or_gmt_zone_word() {
        assert_eq!(
            parsed("2026/04/15 10:00:00 INFO x").0,
            datetime!(2026-04-15 10:00:00 UTC)
        );
        for zone in ["UTC", "GMT"] {
            let line = format!("2026-04-15 10:00:00.123 {zone} LOG x");
            let (ts, sev, msg) = parsed(&line);
            assert_eq!(
                (ts, sev, msg),
                (datetime!(2026-04-15 10:00:00.123 UTC), Severity::Info, &b"x"[..])
            );
        }
        // Only a word of its own: `UTCX` is a bad severity, a lone zone leaves no severity.
        assert_eq!(rejected("2026-04-15 10:00:00 UTCX x"), RejectReason::BadSeverity);
        assert_eq!(rejected("2026-04-15 10:00:00 UTC"), RejectReason::NotEnoughFields);
    }

    #[test]
    fn fractions_take_dot_or_comma_and_one_to_nine_digits() {
        assert_eq!(
            parsed("2026-04-15T00:00:01.5 INFO x").0,
            datetime!(2026-04-15 00:00:01.5 UTC)
        );
        assert_eq!(
            parsed("2026-04-15T00:00:01,123456789 INFO x").0,
            datetime!(2026-04-15 00:00:01.123456789 UTC)
        );
        assert_eq!(
            parsed("2026-04-15T00:00:01.000001Z INFO x").0,
            datetime!(2026-04-15 00:00:01.000001 UTC)
        );
        assert_eq!(
            rejected("2026-04-15T00:00:01. INFO x"),
            RejectReason::BadTimestamp
        );
        assert_eq!(
            rejected("2026-04-15T00:00:01.1234567890 INFO x"),
            RejectReason::BadTimestamp
        );
    }

    #[test]
    fn offsets_take_every_documented_form() {
        let cases = [
            ("Z", datetime!(2026-04-15 12:00:00 UTC)),
            ("z", datetime!(2026-04-15 12:00:00 UTC)),
            ("+02:00", datetime!(2026-04-15 12:00:00 +2)),
            ("-05:30", datetime!(2026-04-15 12:00:00 -5:30)),
            ("+0230", datetime!(2026-04-15 12:00:00 +2:30)),
            ("+23", datetime!(2026-04-15 12:00:00 +23)),
            ("-00:00", datetime!(2026-04-15 12:00:00 UTC)),
            ("", datetime!(2026-04-15 12:00:00 UTC)),
        ];
        for (offset, expected) in cases {
            let line = format!("2026-04-15T12:00:00{offset} INFO x");
            let ts = parsed(&line).0;
            assert_eq!(ts, expected, "line {line:?}");
            assert_eq!(
                ts.offset(),
                expected.offset(),
                "line {line:?}: the offset is kept"
            );
        }
        for bad in ["+24:00", "+02:60", "+2", "+02:0", "+02:", "Zjunk", "+02:00:00"] {
            let line = format!("2026-04-15T12:00:00{bad} INFO x");
            assert_eq!(rejected(&line), RejectReason::BadTimestamp, "line {line:?}");
        }
    }

    #[test]
    fn dates_and_times_must_exist_on_the_calendar() {
        assert_eq!(
            parsed("2024-02-29T00:00:00Z INFO leap").0,
            datetime!(2024-02-29 00:00:00 UTC)
        );
        for bad in [
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:60Z",
            "2026-1-01T00:00:00Z",
            "26-01-01T00:00:00Z",
            "2026/01-01T00:00:00Z",
            "2026-01/01T00:00:00Z",
            "2026-01-01T0:00:00Z",
        ] {
            let line = format!("{bad} INFO x");
            assert_eq!(rejected(&line), RejectReason::BadTimestamp, "line {line:?}");
        }
    }

    #[test]
    fn severities_accept_aliases_any_case_and_brackets() {
        let cases = [
            ("TRACE", Severity::Trace),
            ("debug", Severity::Debug),
            ("Info", Severity::Info),
            ("WARN", Severity::Warn),
            ("warning", Severity::Warn),
            ("ERROR", Severity::Error),
            ("err", Severity::Error),
            ("FATAL", Severity::Fatal),
            ("Critical", Severity::Fatal),
            ("CRIT", Severity::Fatal),
            ("[WARN]", Severity::Warn),
            ("[crit]", Severity::Fatal),
            ("NOTICE", Severity::Info),
            ("log", Severity::Info),
            ("Panic", Severity::Fatal),
            ("EMERG", Severity::Fatal),
            ("emergency", Severity::Fatal),
            ("[EMERGENCY]", Severity::Fatal),
            ("ALERT", Severity::Fatal),
            ("DEBUG1", Severity::Debug),
            ("debug5", Severity::Debug),
        ];
        for (field, expected) in cases {
            let line = format!("2026-04-15T00:00:01Z {field} x");
            assert_eq!(parsed(&line).1, expected, "line {line:?}");
        }
        for bad in [
            "NOTE",
            "DEBUG0",
            "DEBUG6",
            "DEBUG\x11",
            "EMERGENCE",
            "LOGS",
            "[WARN",
            "WARN]",
            "[]",
            "INF",
            "INFOO",
            "WARNINGS",
            "CRITICALLY",
            "I NFO",
        ] {
            let line = format!("2026-04-15T00:00:01Z {bad}");
            let line = if bad.contains(' ') { line } else { line + " x" };
            assert_eq!(rejected(&line), RejectReason::BadSeverity, "line {line:?}");
        }
    }

    #[test]
    fn a_severity_with_nul_or_other_bytes_glued_on_is_bad() {
        for bad in [
            "INFO\0",
            "[INFO\0]",
            "WARN\0\0\0\0",
            "\0INFO",
            "ERR\0R",
            "INFO\x01",
        ] {
            let line = format!("2026-04-15T00:00:01Z {bad} x");
            assert_eq!(rejected(&line), RejectReason::BadSeverity, "line {line:?}");
        }
    }

    #[test]
    fn timestamps_whose_utc_instant_leaves_years_0000_to_9999_are_bad() {
        // Both exist as local times, but not as RFC 3339 instants in UTC (year 10000, year -1).
        for bad in ["9999-12-31T23:59:59-01:00", "0000-01-01T00:30:00+01:00"] {
            let line = format!("{bad} INFO x");
            assert_eq!(rejected(&line), RejectReason::BadTimestamp, "line {line:?}");
        }
        // The very ends themselves are fine, with or without an offset that keeps them inside.
        for good in [
            "9999-12-31T23:59:59.999999999Z",
            "9999-12-31T22:59:59-01:00",
            "0000-01-01T00:00:00Z",
            "0000-01-01T01:00:00+01:00",
            "0000-06-01T00:30:00+01:00",
        ] {
            parsed(&format!("{good} INFO x"));
        }
    }

    #[test]
    fn severities_order_and_print_as_documented() {
        let printed: Vec<String> = Severity::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(printed, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]);
        assert!(Severity::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(format!("{:>5}", Severity::Info), " INFO");
    }

    #[test]
    fn messages_keep_invalid_utf8_bytes_unchanged() {
        let line = b"2026-04-15T00:00:01Z INFO caf\xe9 \xff\x00end";
        match parse_line(line) {
            Line::Parsed { message, .. } => assert_eq!(message, b"caf\xe9 \xff\x00end"),
            other => panic!("expected parsed, got {other:?}"),
        }
    }

    /// Found by the fuzzer (fuzz/artifacts, crash-7916226b): only spaces, tabs and `\r` are
    /// trimmed; other control bytes, and `\r` inside, belong to the message.
    #[test]
    fn trimming_stops_at_other_control_bytes() {
        let line = b"2026-11-29T20:11:16.264641Z  INFO rc_tracing:\r\r\xff\x0c\r\r";
        let (_, _, message) = match parse_line(line) {
            Line::Parsed {
                timestamp,
                severity,
                message,
            } => (timestamp, severity, message),
            other => panic!("expected parsed, got {other:?}"),
        };
        assert_eq!(message, b"rc_tracing:\r\r\xff\x0c");
    }

    #[test]
    fn lines_split_on_newline_and_count_a_final_unterminated_line() {
        let lines: Vec<&[u8]> = split_lines(b"a\n\nb\r\nc").collect();
        assert_eq!(lines, [&b"a"[..], b"", b"b\r", b"c"]);
        assert_eq!(split_lines(b"a\n").count(), 1);
        assert_eq!(split_lines(b"").count(), 0);
        assert_eq!(split_lines(b"\n").count(), 1);
    }

    #[test]
    fn valid_records_need_a_non_empty_message() {
        let record = |message: &'static [u8]| ParsedRecord {
            line_no: 1,
            timestamp: datetime!(2026-04-15 00:00:01 UTC),
            severity: Severity::Info,
            message,
        };
        assert!(ValidRecord::validate(record(b"")).is_err());
        assert_eq!(
            ValidRecord::validate(record(b"x")).unwrap().record().message,
            b"x"
        );
    }

    mod round_trip {
        use super::*;
        use proptest::prelude::*;

        const ALIASES: [(&str, Severity); 10] = [
            ("trace", Severity::Trace),
            ("debug", Severity::Debug),
            ("info", Severity::Info),
            ("warn", Severity::Warn),
            ("warning", Severity::Warn),
            ("error", Severity::Error),
            ("err", Severity::Error),
            ("fatal", Severity::Fatal),
            ("critical", Severity::Fatal),
            ("crit", Severity::Fatal),
        ];

        /// A run of 1-3 spaces and tabs.
        fn blanks() -> impl Strategy<Value = String> {
            proptest::collection::vec(prop_oneof![Just(' '), Just('\t')], 1..4).prop_map(String::from_iter)
        }

        /// An offset as written (one of the five forms, or none) and its value in seconds.
        fn offset() -> impl Strategy<Value = (String, i32)> {
            (0u8..5, any::<bool>(), 0i32..24, 0i32..60).prop_map(|(form, negative, h, m)| {
                let sign = if negative { '-' } else { '+' };
                let seconds = (h * 3600 + m * 60) * if negative { -1 } else { 1 };
                match form {
                    0 => (String::new(), 0),
                    1 => (if negative { "z" } else { "Z" }.to_owned(), 0),
                    2 => (format!("{sign}{h:02}:{m:02}"), seconds),
                    3 => (format!("{sign}{h:02}{m:02}"), seconds),
                    _ => (
                        format!("{sign}{h:02}"),
                        (h * 3600) * if negative { -1 } else { 1 },
                    ),
                }
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Any record, written out as an input line in any of the accepted spellings,
            /// parses back to the same record.
            #[test]
            fn any_record_rendered_as_a_line_parses_back_to_itself(
                julian_day in 1_721_060i32..5_373_484, // 0000-01-01 to 9999-12-31
                (hour, minute, second) in (0u8..24, 0u8..60, 0u8..60),
                (digits, fraction) in (0u32..10, any::<u32>()),
                separator in prop_oneof![Just('T'), Just('t'), Just(' ')],
                comma in any::<bool>(),
                (offset_text, offset_seconds) in offset(),
                (alias, bracketed, upper) in (0usize..ALIASES.len(), any::<bool>(), proptest::collection::vec(any::<bool>(), 8)),
                (lead, gap1, gap2) in (proptest::option::of(blanks()), blanks(), blanks()),
                trail in "[ \t\r]{0,3}",
                message in proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 1..60),
            ) {
                prop_assume!(!matches!(message.first(), Some(b' ' | b'\t')));
                prop_assume!(!matches!(message.last(), Some(b' ' | b'\t' | b'\r')));
                let date = Date::from_julian_day(julian_day).unwrap();
                let fraction = if digits == 0 { 0 } else { fraction % 10u32.pow(digits) };
                let nanos = fraction * 10u32.pow(9 - digits);
                let time = Time::from_hms_nano(hour, minute, second, nanos).unwrap();
                let offset = UtcOffset::from_whole_seconds(offset_seconds).unwrap();
                let expected = PrimitiveDateTime::new(date, time).assume_offset(offset);

                let (name, severity) = ALIASES[alias];
                let name: String = name.chars().zip(&upper).map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c }).collect();
                let name = if bracketed { format!("[{name}]") } else { name };
                let frac = if digits == 0 {
                    String::new()
                } else {
                    format!("{}{:0width$}", if comma { ',' } else { '.' }, fraction, width = digits as usize)
                };
                let mut line = format!(
                    "{}{:04}-{:02}-{:02}{separator}{hour:02}:{minute:02}:{second:02}{frac}{offset_text}{gap1}{name}{gap2}",
                    lead.unwrap_or_default(), date.year(), date.month() as u8, date.day()
                ).into_bytes();
                line.extend_from_slice(&message);
                line.extend_from_slice(trail.as_bytes());

                if !in_rfc3339_range(expected) {
                    // At the calendar's ends an offset can push the instant out of 0000-9999.
                    prop_assert_eq!(parse_line(&line), Line::Rejected(RejectReason::BadTimestamp));
                    return Ok(());
                }
                match parse_line(&line) {
                    Line::Parsed { timestamp, severity: parsed_severity, message: parsed_message } => {
                        prop_assert_eq!(timestamp, expected);
                        prop_assert_eq!(timestamp.offset(), offset);
                        prop_assert_eq!(parsed_severity, severity);
                        prop_assert_eq!(parsed_message, &message[..]);
                    }
                    other => prop_assert!(false, "line {:?} gave {:?}", String::from_utf8_lossy(&line), other),
                }
            }
        }
    }
}
