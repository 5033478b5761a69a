//! `logfmt`: `key=value` pairs, values quoted with `"` and `\` escapes where they need it (Go
//! slog's text handler, logrus, Heroku, Grafana). The same keys as `json` give the timestamp,
//! severity and message; the other pairs are kept as fields, their values as strings.

use super::head::{Defaults, Head, Text, epoch, numeric_severity};
use crate::layout::clock::Clock;
use crate::record::fields::{Fields, Part, Value};
use crate::record::{RejectReason, Severity};

/// A line starts a record when it begins with a `key=` pair.
pub(super) fn starts_record(line: &[u8]) -> bool {
    let key = line.iter().take_while(|&&b| is_key_byte(b)).count();
    key > 0 && line.get(key) == Some(&b'=')
}

fn is_key_byte(b: u8) -> bool {
    b > b' ' && b != b'=' && b != b'"' && b != 0x7f
}

/// Reads the pairs of `line` into `fields`, unquoting values.
fn pairs(line: &[u8], fields: &mut Fields) -> Result<(), RejectReason> {
    let mut rest = line;
    let mut any_pair = false;
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            break;
        }
        let key_len = rest.iter().take_while(|&&b| is_key_byte(b)).count();
        if key_len == 0 {
            return Err(RejectReason::NotInLayout);
        }
        let key = &rest[..key_len];
        rest = &rest[key_len..];
        let key_range = fields.append(key);
        let value = if let Some(after) = rest.strip_prefix(b"=") {
            any_pair = true;
            if let Some(quoted) = after.strip_prefix(b"\"") {
                let start = fields.bytes.len();
                let used = unquote(quoted, &mut fields.bytes).ok_or(RejectReason::NotInLayout)?;
                rest = &quoted[used..];
                start..fields.bytes.len()
            } else {
                let len = after.iter().take_while(|&&b| !b.is_ascii_whitespace()).count();
                rest = &after[len..];
                fields.append(&after[..len])
            }
        } else {
            // A key alone: a flag, kept with an empty value.
            fields.bytes.len()..fields.bytes.len()
        };
        fields.add(key_range, value, Value::Text);
    }
    if any_pair {
        Ok(())
    } else {
        Err(RejectReason::NotInLayout)
    }
}

/// Appends the contents of a quoted value (after its opening `"`) unescaped; returns the bytes
/// used, closing quote included, or `None` when it never closes.
fn unquote(s: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut at = 0;
    loop {
        let stop = at + memchr::memchr2(b'"', b'\\', &s[at..])?;
        out.extend_from_slice(&s[at..stop]);
        if s[stop] == b'"' {
            return Some(stop + 1);
        }
        let escaped = *s.get(stop + 1)?;
        match escaped {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'"' | b'\\' => out.push(escaped),
            other => out.extend_from_slice(&[b'\\', other]),
        }
        at = stop + 2;
    }
}

/// Parses one (trimmed, non-blank) line.
pub(super) fn parse<'a>(
    line: &'a [u8],
    clock: &Clock,
    text: &mut Vec<u8>,
    fields: &mut Fields,
    defaults: &Defaults<'_>,
) -> Result<Head<'a>, RejectReason> {
    pairs(line, fields)?;
    let timestamp = match fields.take_best(Part::Timestamp) {
        Some(i) => {
            let value = fields.value(i);
            clock.whole(value).or_else(|| epoch(value))
        }
        None => (defaults.timestamp)(),
    }
    .ok_or(RejectReason::BadTimestamp)?;
    let severity = match fields.take_best(Part::Severity) {
        None => defaults.severity,
        Some(i) => {
            let value = fields.value(i);
            Severity::from_field(value)
                .or_else(|| numeric_severity(value))
                .ok_or(RejectReason::BadSeverity)?
        }
    };
    let start = text.len();
    if let Some(i) = fields.take_best(Part::Message) {
        text.extend_from_slice(fields.value(i));
    }
    Ok(Head {
        timestamp,
        severity,
        message: Text::Scratch(start..text.len()),
    })
}
