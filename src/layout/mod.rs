//! Input layouts: how a line of a real program's log becomes a record.
//!
//! Each layout is a module with the same two questions answered: does this line start a record
//! ([`Layout::starts_record`], for `--multiline`), and what record does it give
//! ([`Layout::parse`]). Every layout yields the same record (timestamp, severity, message, and
//! for structured input its other [`Fields`]), so nothing after the parser knows which it was.
//! `plain` is [`crate::record::parse_line`], unchanged, and keeps its fast path.

pub mod clock;
pub mod container;
mod head;
pub(crate) mod json;
mod logfmt;
mod pattern;
mod syslog;
#[cfg(test)]
mod tests;

use time::OffsetDateTime;

pub use clock::{Clock, ClockError};
pub use container::{Runtime, Stream};
pub use pattern::{NAMED, Pattern, PatternError};

use crate::record::{Fields, Line, RejectReason, Severity, trim_line};
use head::{Defaults, Head, Text, starts_with_date};

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
    /// A container runtime's log (`cri`, `docker`): pieces of what the program wrote.
    Container(Box<Container>),
}

/// A container runtime's log: each line a piece of what the program wrote to a stream, joined
/// per stream by the parser, the lines then read with their stream's own layout.
#[derive(Clone, Debug)]
pub struct Container {
    /// Which runtime's lines.
    pub runtime: Runtime,
    /// Per stream (stdout, stderr): the layout of what the program writes there.
    pub inner: [Inner; 2],
}

/// How the lines a program wrote to one stream are read.
#[derive(Clone, Debug)]
pub enum Inner {
    /// Not judged yet (`--inner auto` with nothing to judge by): taken as written.
    Unjudged,
    /// As written: the whole line is the message (no layout reads them).
    AsWritten,
    /// With this layout; a line it does not read is taken as written.
    Layout(Layout),
}

impl Inner {
    fn name(&self) -> &str {
        match self {
            Inner::Unjudged => "?",
            Inner::AsWritten => "-",
            Inner::Layout(layout) => &layout.name,
        }
    }
}

impl Container {
    /// The layout's name, which [`Layout::named`] reads back: `cri` before its streams are
    /// judged, then `cri:json,-` (stdout's layout, stderr's; `-` as written, `?` not judged).
    fn name(&self) -> String {
        match &self.inner {
            [Inner::Unjudged, Inner::Unjudged] => self.runtime.name().to_owned(),
            [out, err] => format!("{}:{},{}", self.runtime.name(), out.name(), err.name()),
        }
    }

    /// True when `content`, the start of a line the program wrote to `stream`, starts a record
    /// by its stream's layout (`--multiline`); every line does where no layout reads them.
    pub fn starts_record(&self, stream: container::Stream, content: &[u8]) -> bool {
        match &self.inner[stream as usize] {
            Inner::Layout(layout) => layout.starts_record(content),
            Inner::Unjudged | Inner::AsWritten => true,
        }
    }

    /// True when every stream's layout is settled (judged or named).
    pub fn judged(&self) -> bool {
        !self.inner.iter().any(|i| matches!(i, Inner::Unjudged))
    }
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
        "--input {0}: unknown layout (expected auto, plain, json, logfmt, syslog, cri, docker, or a named pattern: python, loguru, structlog, env_logger, postgres, nginx-error)"
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
        let (runtime, streams) = name.split_once(':').unwrap_or((name, ""));
        let runtime = match runtime {
            "cri" => Some(Runtime::Cri),
            "docker" => Some(Runtime::Docker),
            _ => None,
        };
        if let Some(runtime) = runtime {
            let unknown = || LayoutError::Unknown(name.to_owned());
            let inner = |name: &str| match name {
                "?" => Ok(Inner::Unjudged),
                "-" => Ok(Inner::AsWritten),
                "cri" | "docker" => Err(unknown()),
                name => Layout::named(name, clock.clone()).map(Inner::Layout),
            };
            let inner = match streams.split_once(',') {
                None if streams.is_empty() => [Inner::Unjudged, Inner::Unjudged],
                Some((out, err)) => [inner(out)?, inner(err)?],
                None => return Err(unknown()),
            };
            let container = Container { runtime, inner };
            return Ok(Layout {
                name: container.name(),
                kind: Kind::Container(Box::new(container)),
                clock,
            });
        }
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

    /// Every layout `auto` chooses from, in its order of preference; the container runtimes'
    /// last (a container's streams are judged among those before them).
    pub fn candidates(clock: &Clock) -> Vec<Layout> {
        NAMES
            .iter()
            .chain(NAMED.iter().map(|(name, _)| name))
            .chain(&["cri", "docker"])
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
        self.parse_with(line, scratch, &Defaults::NONE)
    }

    /// Reads a line a program wrote to a container's stream: [`Layout::parse`], a structured
    /// line without a timestamp taking `timestamp()` (the runtime's, read then), one without a
    /// severity `severity`.
    pub fn parse_written<'a>(
        &self,
        line: &'a [u8],
        scratch: &'a mut Scratch,
        timestamp: &dyn Fn() -> Option<OffsetDateTime>,
        severity: Severity,
    ) -> Outcome<'a> {
        let defaults = Defaults { timestamp, severity };
        self.parse_with(line, scratch, &defaults)
    }

    fn parse_with<'a>(
        &self,
        line: &'a [u8],
        scratch: &'a mut Scratch,
        defaults: &Defaults<'_>,
    ) -> Outcome<'a> {
        scratch.clear();
        let line = trim_line(line);
        if line.is_empty() {
            return Outcome::Blank;
        }
        let Scratch {
            text,
            fields,
            decoding,
        } = scratch;
        let parsed = match &self.kind {
            Kind::Plain => plain(line, &self.clock),
            Kind::Json => json::parse(line, &self.clock, text, fields, defaults),
            Kind::Logfmt => logfmt::parse(line, &self.clock, text, fields, defaults),
            Kind::Syslog => syslog::parse(line, &self.clock, fields),
            Kind::Pattern(pattern) => pattern.parse(line, &self.clock),
            // A piece alone, as `auto` judges lines: its content is its message.
            Kind::Container(container) => match container::decode(container.runtime, line, decoding) {
                None => Err(RejectReason::NotInLayout),
                Some(piece) => match piece.time(line, decoding) {
                    None => Err(RejectReason::BadTimestamp),
                    Some(timestamp) => {
                        text.extend_from_slice(piece.content(line, decoding));
                        Ok(Head {
                            timestamp,
                            severity: defaults.severity,
                            message: Text::Scratch(0..text.len()),
                        })
                    }
                },
            },
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
            Kind::Container(container) => {
                container::decode(container.runtime, line, &mut container::Decoding::default()).is_some()
            }
        }
    }

    /// The container runtime's layout this is, if it is one.
    pub fn container(&self) -> Option<&Container> {
        match &self.kind {
            Kind::Container(container) => Some(container),
            _ => None,
        }
    }

    /// A container's layout with each stream's layout settled: `inner` when given (`--inner`),
    /// else judged from the lines the program wrote to it among `lines` (the file's pieces,
    /// joined). A stream with no line to judge by stays unjudged.
    pub fn judge_streams<'a>(
        &self,
        lines: impl IntoIterator<Item = &'a [u8]>,
        inner: Option<&Layout>,
        candidates: &[Layout],
    ) -> Layout {
        let Kind::Container(container) = &self.kind else {
            return self.clone();
        };
        let mut container = (**container).clone();
        match inner {
            Some(inner) => container.inner = [0, 1].map(|_| Inner::Layout(inner.clone())),
            None => {
                let written = container::whole_lines(container.runtime, lines, DETECT_LINES);
                // What a program writes is judged among the others (not a container's lines),
                // which come first.
                let programs = candidates.iter().take_while(|l| l.container().is_none()).count();
                let among = &candidates[..programs];
                for (s, lines) in written.iter().enumerate() {
                    if !matches!(container.inner[s], Inner::Unjudged) || lines.is_empty() {
                        continue;
                    }
                    // Judged as they will be read: a line without a time takes the runtime's.
                    let runtime_time = || Some(OffsetDateTime::UNIX_EPOCH);
                    let defaults = Defaults {
                        timestamp: &runtime_time,
                        severity: Severity::Info,
                    };
                    container.inner[s] = match judge(lines.iter().map(Vec::as_slice), among, &defaults) {
                        Some(layout) => Inner::Layout(layout.clone()),
                        None => Inner::AsWritten,
                    };
                }
            }
        }
        Layout {
            name: container.name(),
            kind: Kind::Container(Box::new(container)),
            clock: self.clock.clone(),
        }
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
    /// A container line's piece (Docker's JSON unescaped).
    decoding: container::Decoding,
}

impl Scratch {
    fn clear(&mut self) {
        self.text.clear();
        self.fields.clear();
    }
}

/// Picks the layout that reads the most of `lines`; among those that read as many, the one that
/// leaves the least in the messages (it read more of each line's structure: `nginx-error` over
/// `plain` for nginx's lines, which `plain` reads too); then the earlier in
/// [`Layout::candidates`]. `None` when none reads any: nothing to judge by.
pub fn detect<'a>(lines: impl IntoIterator<Item = &'a [u8]>, clock: &Clock) -> Option<Layout> {
    detect_among(lines, &Layout::candidates(clock)).cloned()
}

/// [`detect`] among `candidates` (made once for many logs: [`Layout::candidates`] compiles
/// patterns).
pub fn detect_among<'a, 'l>(
    lines: impl IntoIterator<Item = &'a [u8]>,
    candidates: &'l [Layout],
) -> Option<&'l Layout> {
    judge(lines, candidates, &Defaults::NONE)
}

/// [`detect_among`], lines read as `defaults` says (a container's: a JSON line without a time
/// is read, as it will be with the runtime's).
fn judge<'a, 'l>(
    lines: impl IntoIterator<Item = &'a [u8]>,
    candidates: &'l [Layout],
    defaults: &Defaults<'_>,
) -> Option<&'l Layout> {
    let lines: Vec<&[u8]> = lines
        .into_iter()
        .filter(|l| !trim_line(l).is_empty())
        .take(DETECT_LINES)
        .collect();
    let mut scratch = Scratch::default();
    let mut read = |c: usize, line: &[u8]| match candidates[c].parse_with(line, &mut scratch, defaults) {
        Outcome::Record(record) => Some(record.message.len()),
        _ => None,
    };
    // Per candidate: records read, and their messages' bytes (none for one left out).
    let mut scores = vec![(0usize, 0usize); candidates.len()];
    let (first, rest) = lines.split_first()?;
    let firsts: Vec<Option<usize>> = (0..candidates.len()).map(|c| read(c, first)).collect();
    // A candidate that fails more lines than one tried before cannot win, nor tie: it is left
    // at its first failure past that. Those that read the first line go first, so the bound is
    // tight from the start (judging many small logs, most of the time went to candidates that
    // read none of their lines).
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&c| firsts[c].is_none());
    let mut fewest_failures = usize::MAX;
    for c in order {
        let (mut failures, mut score) = match firsts[c] {
            Some(bytes) => (0, (1, bytes)),
            None => (1, (0, 0)),
        };
        for line in rest {
            if failures > fewest_failures {
                break;
            }
            match read(c, line) {
                Some(bytes) => score = (score.0 + 1, score.1 + bytes),
                None => failures += 1,
            }
        }
        if failures <= fewest_failures {
            fewest_failures = failures;
            scores[c] = score;
        }
    }
    let (at, _) = scores
        .iter()
        .enumerate()
        .filter(|(_, (read, _))| *read > 0)
        // A container runtime's layout first: `json` reads Docker's lines too, leaving less in
        // the messages (it knows no `log` key).
        .min_by_key(|(at, (read, message_bytes))| {
            let container = candidates[*at].container().is_some();
            (std::cmp::Reverse(*read), !container, *message_bytes, *at)
        })?;
    candidates.get(at)
}

/// Non-blank lines `auto` looks at.
pub const DETECT_LINES: usize = 64;
