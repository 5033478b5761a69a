//! Input layouts: how a line of a real program's log becomes a record.
//!
//! Each layout is a module with the same two questions answered: does this line start a record
//! ([`Layout::starts_record`], for `--multiline`), and what record does it give
//! ([`Layout::parse`]). Every layout yields the same record (timestamp, severity, message, and
//! for structured input its other [`Fields`]), so nothing after the parser knows which it was.
//! `plain` is [`crate::record::parse_line`], unchanged, and keeps its fast path.

pub mod clock;
pub(crate) mod json;
mod logfmt;
mod pattern;
mod syslog;

use std::ops::Range;

use time::OffsetDateTime;

pub use clock::{Clock, ClockError};
pub use pattern::{NAMED, Pattern, PatternError};

use crate::record::{Line, RejectReason, Severity, trim_line};

/// Which grammar the lines follow (`--input`, `--pattern`).
#[derive(Clone, Debug)]
pub enum Kind {
    /// `TIMESTAMP SEVERITY MESSAGE`, the record contract.
    Plain,
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
    /// RFC 5424 and RFC 3164 syslog, with or without `<PRI>`.
    Syslog,
    /// A template: `--pattern`, or a named one.
    Pattern(Box<Pattern>),
}

/// A layout with its clock: everything a parser needs to read a line.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The grammar.
    pub kind: Kind,
    /// How timestamps are read.
    pub clock: Clock,
    /// The name it was picked by (`plain`, `python`, `pattern`...), for messages and checkpoints.
    pub name: String,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            kind: Kind::Plain,
            clock: Clock::utc(),
            name: "plain".to_owned(),
        }
    }
}

/// The layouts `--input` names, in the order `auto` prefers them on a tie.
pub const NAMES: [&str; 4] = ["plain", "json", "logfmt", "syslog"];

/// A `--input` or `--pattern` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Not a layout's name.
    #[error(
        "--input {0}: unknown layout (expected auto, plain, json, logfmt, syslog, or a named pattern: python, loguru, structlog, env_logger, postgres, nginx-error)"
    )]
    Unknown(String),
    /// The template does not compile.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

impl Layout {
    /// The layout `--input NAME` names (not `auto`), reading timestamps with `clock`.
    ///
    /// # Errors
    /// [`LayoutError::Unknown`] for any other name.
    pub fn named(name: &str, clock: Clock) -> Result<Layout, LayoutError> {
        let kind = match name {
            "plain" => Kind::Plain,
            "json" => Kind::Json,
            "logfmt" => Kind::Logfmt,
            "syslog" => Kind::Syslog,
            _ => match NAMED.iter().find(|(n, _)| *n == name) {
                Some((_, template)) => Kind::Pattern(Box::new(Pattern::compile(template, name)?)),
                None => return Err(LayoutError::Unknown(name.to_owned())),
            },
        };
        Ok(Layout {
            kind,
            clock,
            name: name.to_owned(),
        })
    }

    /// The layout `--pattern TEMPLATE` describes.
    ///
    /// # Errors
    /// [`LayoutError::Pattern`] when the template does not compile.
    pub fn pattern(template: &str, clock: Clock) -> Result<Layout, LayoutError> {
        Ok(Layout {
            kind: Kind::Pattern(Box::new(Pattern::compile(template, "pattern")?)),
            clock,
            name: "pattern".to_owned(),
        })
    }

    /// Every layout `auto` chooses from, in its order of preference.
    pub fn candidates(clock: &Clock) -> Vec<Layout> {
        NAMES
            .iter()
            .chain(NAMED.iter().map(|(name, _)| name))
            .map(|name| Layout::named(name, clock.clone()).expect("the built-in layouts compile"))
            .collect()
    }

    /// True when this is `plain` with the default clock: the parser's fast path.
    pub fn is_fast_plain(&self) -> bool {
        matches!(self.kind, Kind::Plain) && self.clock.is_default()
    }

    /// Reads one line (without its `\n`); structured values go to `scratch`, which the record
    /// borrows (it is cleared first, and reused line after line).
    pub fn parse<'a>(&self, line: &'a [u8], scratch: &'a mut Scratch) -> Outcome<'a> {
        scratch.clear();
        let line = trim_line(line);
        if line.is_empty() {
            return Outcome::Blank;
        }
        let Scratch { text, fields } = scratch;
        let parsed = match &self.kind {
            Kind::Plain => plain(line, &self.clock),
            Kind::Json => json::parse(line, &self.clock, text, fields),
            Kind::Logfmt => logfmt::parse(line, &self.clock, text, fields),
            Kind::Syslog => syslog::parse(line, &self.clock, fields),
            Kind::Pattern(pattern) => pattern.parse(line, &self.clock),
        };
        match parsed {
            Err(reason) => Outcome::Rejected(reason),
            Ok(Head {
                timestamp,
                severity,
                message,
            }) => {
                let message = match message {
                    Text::Line(message) => message,
                    Text::Scratch(range) => &text[range],
                };
                Outcome::Record(Record {
                    timestamp,
                    severity,
                    message,
                    fields,
                })
            }
        }
    }

    /// True when the line has the layout's record-start shape, whether it then parses or not:
    /// any other non-blank line continues the record before it under `--multiline`.
    pub fn starts_record(&self, line: &[u8]) -> bool {
        let line = trim_line(line);
        match &self.kind {
            Kind::Plain => starts_with_date(line),
            Kind::Json => line.first() == Some(&b'{'),
            Kind::Logfmt => logfmt::starts_record(line),
            Kind::Syslog => syslog::starts_record(line),
            Kind::Pattern(pattern) => pattern.starts_record(line, &self.clock),
        }
    }
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

/// `plain` with a clock other than the default one (`--tz`, `--time-format`).
fn plain<'a>(line: &'a [u8], clock: &Clock) -> Result<Head<'a>, RejectReason> {
    match crate::record::parse_line_with(line, |s| clock.timestamp(s)) {
        Line::Parsed {
            timestamp,
            severity,
            message,
        } => Ok(Head {
            timestamp,
            severity,
            message: Text::Line(message),
        }),
        Line::Rejected(reason) => Err(reason),
        Line::Blank => unreachable!("blank lines are handled before"),
    }
}

/// What a layout read, its message borrowed from the line or unescaped into the scratch text.
struct Head<'a> {
    timestamp: OffsetDateTime,
    severity: Severity,
    message: Text<'a>,
}

/// A string a layout read: a slice of the line, or a range of [`Scratch::text`].
enum Text<'a> {
    Line(&'a [u8]),
    Scratch(Range<usize>),
}

/// What one line gives.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Empty after trimming.
    Blank,
    /// Does not follow the layout.
    Rejected(RejectReason),
    /// A record (its message may still be empty: the validator's to drop).
    Record(Record<'a>),
}

/// A record as a layout read it.
#[derive(Debug)]
pub struct Record<'a> {
    /// When it happened.
    pub timestamp: OffsetDateTime,
    /// How serious it is.
    pub severity: Severity,
    /// The message, unescaped.
    pub message: &'a [u8],
    /// Its other fields (structured layouts), in the order written.
    pub fields: &'a Fields,
}

/// Buffers a layout reads into, reused line after line: no allocation per line once warm.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Unescaped strings (a JSON or logfmt message).
    text: Vec<u8>,
    /// The record's other fields.
    fields: Fields,
}

impl Scratch {
    fn clear(&mut self) {
        self.text.clear();
        self.fields.clear();
    }
}

/// How a field's value is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A JSON value as written (compacted): objects, arrays, numbers, strings with their quotes.
    Json,
    /// A string (logfmt and syslog values), unescaped.
    Text,
}

#[derive(Clone, Debug)]
struct Field {
    key: Range<usize>,
    value: Range<usize>,
    kind: Value,
    /// Taken as the record's timestamp, severity or message: not a field any more.
    taken: bool,
    /// Which part of the record its key names, if any (see [`role`]).
    role: Option<(Part, u8)>,
}

/// A record's other fields, in the order written: keys and values in one buffer.
#[derive(Debug, Default)]
pub struct Fields {
    bytes: Vec<u8>,
    list: Vec<Field>,
}

impl Fields {
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.list.clear();
    }

    /// Appends a field; the key and value are copied.
    fn push(&mut self, key: &[u8], value: &[u8], kind: Value) {
        let key = self.append(key);
        let value = self.append(value);
        self.add(key, value, kind);
    }

    /// Adds a field whose key and value are already in `bytes`.
    #[inline(always)]
    fn add(&mut self, key: Range<usize>, value: Range<usize>, kind: Value) {
        let role = role(&self.bytes[key.clone()]);
        self.list.push(Field {
            key,
            value,
            kind,
            taken: false,
            role,
        });
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// True when there is no field left to write.
    pub fn is_empty(&self) -> bool {
        self.list.iter().all(|f| f.taken)
    }

    /// The fields as `(key, value, kind)`, in the order written.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Value)> {
        self.list
            .iter()
            .filter(|f| !f.taken)
            .map(|f| (&self.bytes[f.key.clone()], &self.bytes[f.value.clone()], f.kind))
    }

    fn key(&self, i: usize) -> &[u8] {
        &self.bytes[self.list[i].key.clone()]
    }

    fn value(&self, i: usize) -> &[u8] {
        &self.bytes[self.list[i].value.clone()]
    }

    /// The first field not taken whose key is `name` and whose value `fits`.
    fn find(&self, name: &str, fits: impl Fn(&[u8]) -> bool) -> Option<usize> {
        (0..self.list.len())
            .find(|&i| !self.list[i].taken && self.key(i) == name.as_bytes() && fits(self.value(i)))
    }

    /// The field that gives `part` (the most preferred of its names present, whose value
    /// `fits`): its preference and index.
    // These three run for every field of every json and logfmt line: inlined, their closures
    // and bounds checks fold away (callgrind: 4% more instructions on logfmt lines without).
    #[inline(always)]
    fn best(&self, part: Part, fits: impl Fn(&[u8]) -> bool) -> Option<(u8, usize)> {
        self.list
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match f.role {
                Some((p, rank)) if p == part && !f.taken && fits(&self.bytes[f.value.clone()]) => {
                    Some((rank, i))
                }
                _ => None,
            })
            .min()
    }

    /// Takes the most preferred field that gives `part` out of the fields: its index.
    #[inline(always)]
    fn take_best(&mut self, part: Part) -> Option<usize> {
        let (_, i) = self.best(part, |_| true)?;
        self.list[i].taken = true;
        Some(i)
    }
}

/// The parts of a record structured layouts read from named keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Timestamp,
    Severity,
    Message,
}

/// Which part a key names, and how preferred it is (0 first): the timestamp from the first
/// present of `timestamp`, `time`, `ts`, `@timestamp`, `t`, `date`; the severity from `level`,
/// `severity`, `lvl`, `log.level`, `levelname`, `loglevel`; the message from `msg`, `message`,
/// `event`, `log` (and `fields.message`, tracing's, nested: see the json layout).
fn role(key: &[u8]) -> Option<(Part, u8)> {
    Some(match key {
        b"timestamp" => (Part::Timestamp, 0),
        b"time" => (Part::Timestamp, 1),
        b"ts" => (Part::Timestamp, 2),
        b"@timestamp" => (Part::Timestamp, 3),
        b"t" => (Part::Timestamp, 4),
        b"date" => (Part::Timestamp, 5),
        b"level" => (Part::Severity, 0),
        b"severity" => (Part::Severity, 1),
        b"lvl" => (Part::Severity, 2),
        b"log.level" => (Part::Severity, 3),
        b"levelname" => (Part::Severity, 4),
        b"loglevel" => (Part::Severity, 5),
        b"msg" => (Part::Message, 0),
        b"message" => (Part::Message, 1),
        b"event" => (Part::Message, 2),
        b"log" => (Part::Message, 3),
        b"fields.message" => (Part::Message, 4),
        _ => return None,
    })
}

/// A severity written as a number, as pino and bunyan do (10 trace ... 60 fatal); numbers
/// between take the level below them.
fn numeric_severity(text: &[u8]) -> Option<Severity> {
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
fn epoch(text: &[u8]) -> Option<OffsetDateTime> {
    let (int, frac) = match memchr::memchr(b'.', text) {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if int.is_empty() || int.len() > 18 || !digits(int) || !digits(frac) {
        // Exponents and signs are not what loggers write; read them the approximate way.
        let value: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
        let nanos = if value > 1e11 { value * 1e6 } else { value * 1e9 };
        return OffsetDateTime::from_unix_timestamp_nanos(nanos as i128).ok();
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

/// Picks the layout that reads the most of `lines` (ties go to the earlier in
/// [`Layout::candidates`], so `plain` first); `plain` when none reads any.
pub fn detect<'a>(lines: impl IntoIterator<Item = &'a [u8]>, clock: &Clock) -> Layout {
    let candidates = Layout::candidates(clock);
    let mut scores = vec![0usize; candidates.len()];
    let mut scratch = Scratch::default();
    for line in lines
        .into_iter()
        .filter(|l| !trim_line(l).is_empty())
        .take(DETECT_LINES)
    {
        for (layout, score) in candidates.iter().zip(&mut scores) {
            if let Outcome::Record(_) = layout.parse(line, &mut scratch) {
                *score += 1;
            }
        }
    }
    let best = scores.iter().copied().max().unwrap_or(0);
    let at = scores
        .iter()
        .position(|&s| s == best)
        .filter(|_| best > 0)
        .unwrap_or(0);
    candidates.into_iter().nth(at).expect("there are candidates")
}

/// Non-blank lines `auto` looks at.
pub const DETECT_LINES: usize = 64;

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

    #[test]
    fn auto_picks_the_layout_that_reads_most_lines_and_plain_when_none_does() {
        let clock = Clock::utc();
        let pick = |text: &'static str| detect(text.lines().map(str::as_bytes), &clock).name;
        assert_eq!(pick("2026-04-15T00:00:01Z INFO a\nnoise\n"), "plain");
        assert_eq!(pick("{\"time\":1,\"level\":30,\"msg\":\"x\"}\n"), "json");
        assert_eq!(pick("time=2026-04-15T00:00:01Z level=info msg=x\n"), "logfmt");
        assert_eq!(pick("<34>Oct 11 22:14:15 host su: x\n"), "syslog");
        assert_eq!(pick("2026-03-02 09:30:01,235 - app - ERROR - x\n"), "python");
        assert_eq!(pick("nothing here\nat all\n"), "plain");
    }
}
