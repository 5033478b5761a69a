//! Text layouts described by a template (`--pattern`, or a named one): literal text,
//! `{timestamp}`, `{severity}`, `{message}` (the rest of the line) and `{_}` (skip up to the
//! next literal); a space matches any run of spaces and tabs. Compiled once into pieces and
//! matched left to right, no backtracking but `{_}`'s search.

use super::head::{Head, Text, starts_with_date};
use crate::layout::clock::Clock;
use crate::record::{RejectReason, Severity};

/// The named patterns, in the order `--help` lists them and `auto` prefers them.
pub const NAMED: [(&str, &str); 6] = [
    ("python", "{timestamp} - {_} - {severity} - {message}"),
    ("loguru", "{timestamp} | {severity} | {_} - {message}"),
    ("structlog", "{timestamp} [{severity}] {message}"),
    ("env_logger", "[{timestamp} {severity} {_}] {message}"),
    ("postgres", "{timestamp} [{_}] {severity}: {message}"),
    ("nginx-error", "{timestamp} [{severity}] {_}: {message}"),
];

/// PostgreSQL writes a statement's details as records of their own; they belong to the record
/// before them.
const POSTGRES_CONTINUATIONS: [&str; 5] = ["DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY"];

/// A template that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "--pattern {template:?}: {reason} (a template is literal text with {{timestamp}}, {{severity}}, {{_}} and a final {{message}})"
)]
pub struct PatternError {
    template: String,
    reason: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Bytes to match exactly; a space stands for a run of spaces and tabs.
    Literal(Vec<u8>),
    Timestamp,
    Severity,
    Skip,
    Message,
}

/// A compiled template.
#[derive(Clone, Debug)]
pub struct Pattern {
    pieces: Vec<Piece>,
    /// Severity words that mark a continuation, not a record (PostgreSQL's `DETAIL:` lines).
    continuations: &'static [&'static str],
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Matches `literal` at the start of `s`; returns the bytes used.
fn literal_at(literal: &[u8], s: &[u8]) -> Option<usize> {
    let mut at = 0;
    for &want in literal {
        if want == b' ' {
            let run = s.get(at..)?.iter().take_while(|&&b| is_blank(b)).count();
            if run == 0 {
                return None;
            }
            at += run;
        } else if s.get(at) == Some(&want) {
            at += 1;
        } else {
            return None;
        }
    }
    Some(at)
}

/// What a line gave, before the severity word is read.
struct Matched<'a> {
    timestamp: Option<time::OffsetDateTime>,
    severity: Option<&'a [u8]>,
    message: &'a [u8],
}

impl Pattern {
    /// Compiles `template`; `name` picks a named pattern's extra rules.
    ///
    /// # Errors
    /// [`PatternError`] without exactly one `{timestamp}`, with a `{message}` anywhere but at
    /// the end, with a `{_}` not followed by literal text, or with an unknown `{...}`.
    pub fn compile(template: &str, name: &str) -> Result<Pattern, PatternError> {
        let bad = |reason| PatternError {
            template: template.to_owned(),
            reason,
        };
        let mut pieces = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let close = after.find('}').ok_or_else(|| bad("a `{` is never closed"))?;
                pieces.push(match &after[..close] {
                    "timestamp" => Piece::Timestamp,
                    "severity" => Piece::Severity,
                    "message" => Piece::Message,
                    "_" => Piece::Skip,
                    _ => return Err(bad("unknown placeholder")),
                });
                rest = &after[close + 1..];
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let mut literal = Vec::new();
                for b in rest[..end].bytes() {
                    // Runs of spaces and tabs in the template are one space: any run matches.
                    let blank = is_blank(b);
                    if !(blank && literal.last() == Some(&b' ')) {
                        literal.push(if blank { b' ' } else { b });
                    }
                }
                pieces.push(Piece::Literal(literal));
                rest = &rest[end..];
            }
        }
        let count = |p: &Piece| pieces.iter().filter(|q| *q == p).count();
        if count(&Piece::Timestamp) != 1 {
            return Err(bad("it needs exactly one {timestamp}"));
        }
        if count(&Piece::Severity) > 1 {
            return Err(bad("it takes at most one {severity}"));
        }
        if pieces.last() != Some(&Piece::Message) || count(&Piece::Message) != 1 {
            return Err(bad("it must end with {message}"));
        }
        for pair in pieces.windows(2) {
            if matches!(pair[0], Piece::Skip | Piece::Severity | Piece::Timestamp)
                && !matches!(pair[1], Piece::Literal(_) | Piece::Message)
            {
                return Err(bad("two placeholders need literal text between them"));
            }
            if pair[0] == Piece::Skip && pair[1] == Piece::Message {
                return Err(bad("{_} must be followed by literal text"));
            }
        }
        Ok(Pattern {
            pieces,
            continuations: if name == "postgres" {
                &POSTGRES_CONTINUATIONS
            } else {
                &[]
            },
        })
    }

    /// Matches the pieces against `line`: what it gave, before the severity word is read.
    fn matches<'a>(&self, line: &'a [u8], clock: &Clock) -> Result<Matched<'a>, RejectReason> {
        let mut at = 0;
        let mut matched = Matched {
            timestamp: None,
            severity: None,
            message: b"",
        };
        for (i, piece) in self.pieces.iter().enumerate() {
            let rest = &line[at..];
            let next_literal = match self.pieces.get(i + 1) {
                Some(Piece::Literal(l)) => Some(l.as_slice()),
                _ => None,
            };
            match piece {
                Piece::Literal(literal) => {
                    at += literal_at(literal, rest).ok_or(RejectReason::NotInLayout)?;
                }
                Piece::Timestamp => {
                    let (timestamp, used) = clock.timestamp(rest).ok_or(RejectReason::BadTimestamp)?;
                    matched.timestamp = Some(timestamp);
                    at += used;
                }
                Piece::Severity => {
                    // The word ends at a blank or where the next literal text begins.
                    let stop = next_literal.and_then(|l| l.iter().find(|&&b| b != b' ').copied());
                    let len = rest
                        .iter()
                        .take_while(|&&b| !is_blank(b) && Some(b) != stop)
                        .count();
                    matched.severity = Some(&rest[..len]);
                    at += len;
                    // Padding after the word (`[info     ]`, `INFO     |`) when the text after
                    // it does not begin with a space of its own.
                    if next_literal.is_some_and(|l| l.first() != Some(&b' ')) {
                        at += line[at..].iter().take_while(|&&b| is_blank(b)).count();
                    }
                }
                Piece::Skip => {
                    let literal = next_literal.expect("compile checks {_} is followed by text");
                    let skip = (0..rest.len())
                        .find(|&p| literal_at(literal, &rest[p..]).is_some())
                        .ok_or(RejectReason::NotInLayout)?;
                    at += skip;
                }
                Piece::Message => matched.message = rest,
            }
        }
        Ok(matched)
    }

    /// Parses one (trimmed, non-blank) line.
    pub(super) fn parse<'a>(&self, line: &'a [u8], clock: &Clock) -> Result<Head<'a>, RejectReason> {
        let matched = self.matches(line, clock)?;
        let severity = match matched.severity {
            None => Severity::Info,
            Some(word) => Severity::from_field(word).ok_or(RejectReason::BadSeverity)?,
        };
        Ok(Head {
            timestamp: matched.timestamp.expect("a pattern has a timestamp"),
            severity,
            message: Text::Line(matched.message),
        })
    }

    /// The record-start shape: the text up to and including the timestamp's date; for the
    /// postgres pattern, not one of its continuation records.
    pub(super) fn starts_record(&self, line: &[u8], clock: &Clock) -> bool {
        let mut at = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(literal) => match literal_at(literal, &line[at..]) {
                    Some(used) => at += used,
                    None => return false,
                },
                Piece::Timestamp => {
                    let dated = if clock.is_default() {
                        starts_with_date(&line[at..])
                    } else {
                        clock.timestamp(&line[at..]).is_some()
                    };
                    if !dated {
                        return false;
                    }
                    break;
                }
                _ => return false,
            }
        }
        if self.continuations.is_empty() {
            return true;
        }
        match self.matches(line, clock) {
            Ok(Matched {
                severity: Some(word), ..
            }) => !self.continuations.iter().any(|c| c.as_bytes() == word),
            _ => true,
        }
    }
}
