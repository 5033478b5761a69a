//! `json`: one JSON object per line, as structured loggers write it.
//!
//! The members are read in order with `serde_json` (strings borrowed, values kept as written),
//! the timestamp, severity and message taken by their usual names, and every other member kept
//! as a field with its original JSON value.

use std::ops::Range;

use super::head::{Defaults, Head, Text, epoch, numeric_severity};
use crate::format::{ESCAPED, Key, string};
use crate::layout::clock::Clock;
use crate::record::fields::{Fields, Part, Value};
use crate::record::{RejectReason, Severity};

/// How many bytes at the start of `s` may stand in a string as they are: up to the first
/// quote, backslash or control byte. Eight bytes at a time (SWAR; the lowest byte each test
/// flags is exact), the tail by table.
fn plain_run(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let (words, _) = s.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let w = u64::from_le_bytes(*word);
        let hit = (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')));
        if hit != 0 {
            return 8 * i + (hit.trailing_zeros() / 8) as usize;
        }
    }
    let tail = 8 * words.len();
    tail + s[tail..]
        .iter()
        .position(|&b| ESCAPED[usize::from(b)])
        .unwrap_or(s.len() - tail)
}

/// A strict JSON reader for one line's top-level object: the members in order, each value's
/// extent. Hand-written because loggers write flat objects and a general parser spends most of
/// its time on them validating and allocating; nested containers are still checked by
/// `serde_json`.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn blanks(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// A string at `at` (its opening quote): its extent with the quotes, and whether it has
    /// escapes. Control bytes are not allowed in it; UTF-8 was checked for the whole line.
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        let start = self.at;
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            self.at += plain_run(&self.bytes[self.at..]);
            let stop = *self.bytes.get(self.at)?;
            self.at += 1;
            match stop {
                b'"' => return Some((start..self.at, escaped)),
                b'\\' => {}
                _ => return None, // a control byte
            }
            escaped = true;
            match *self.bytes.get(self.at)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    let hex = self.bytes.get(self.at + 1..self.at + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 5;
                }
                _ => return None,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let n = self.bytes[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.at += n;
        n
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        let first = *self.bytes.get(self.at)?;
        let whole = self.digits();
        if whole == 0 || (first == b'0' && whole > 1) {
            return None;
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// An object or array: found by its brackets, then checked whole by `serde_json` (which
    /// also stops past 128 levels).
    fn container(&mut self) -> Option<()> {
        let start = self.at;
        let mut depth = 0usize;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.at += 1;
                        break;
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(&self.bytes[start..self.at]).ok()?;
        Some(())
    }

    /// Any value at `at`: its extent.
    fn value(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        match *self.bytes.get(self.at)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => self.container()?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.number()?,
        }
        Some(start..self.at)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }
}

/// Reads `line`, one JSON object, into `fields`: each member's key (unescaped) and its value as
/// written (objects and arrays compacted), in order.
pub(crate) fn members(line: &[u8], fields: &mut Fields) -> Result<(), RejectReason> {
    scan(line, fields).ok_or(RejectReason::NotInLayout)
}

fn scan(line: &[u8], fields: &mut Fields) -> Option<()> {
    // Valid UTF-8 as a whole: no string needs checking on its own. Most lines are ASCII,
    // which a branch-free fold tells faster than the general check.
    if line.iter().fold(0, |high, &b| high | b) >= 0x80 {
        std::str::from_utf8(line).ok()?;
    }
    let mut s = Scanner { bytes: line, at: 0 };
    s.blanks();
    s.eat(b'{')?;
    s.blanks();
    if s.eat(b'}').is_none() {
        loop {
            let (key, escaped) = s.string()?;
            s.blanks();
            s.eat(b':')?;
            s.blanks();
            let value = s.value()?;
            let key = if escaped {
                let Key(unescaped) = serde_json::from_slice(&line[key]).ok()?;
                fields.append(unescaped.as_bytes())
            } else {
                fields.append(&line[key.start + 1..key.end - 1])
            };
            let value = compact(&line[value], &mut fields.bytes)?;
            fields.add(key, value, Value::Json);
            s.blanks();
            if s.eat(b',').is_some() {
                s.blanks();
                continue;
            }
            s.eat(b'}')?;
            break;
        }
    }
    s.blanks();
    (s.at == line.len()).then_some(())
}

/// Deepest nesting of a field's value: as deep as `serde_json` (and so most readers of the
/// output) reads by default. Deeper lines are not in the layout.
const MAX_DEPTH: usize = 128;

/// Appends a JSON value without the whitespace between its tokens; returns where it went, or
/// `None` when it nests deeper than [`MAX_DEPTH`].
fn compact(raw: &[u8], out: &mut Vec<u8>) -> Option<std::ops::Range<usize>> {
    let start = out.len();
    // Only objects and arrays can hold whitespace between tokens.
    if !matches!(raw.first(), Some(b'{' | b'[')) {
        out.extend_from_slice(raw);
        return Some(start..out.len());
    }
    let (mut in_string, mut escaped, mut depth) = (false, false, 0usize);
    for &b in raw {
        if in_string {
            in_string = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
        } else {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => continue,
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    // The record's own object and `fields` wrap this value: two levels more.
                    if depth + 2 > MAX_DEPTH {
                        out.truncate(start);
                        return None;
                    }
                }
                b'}' | b']' => depth -= 1,
                _ => {}
            }
        }
        out.push(b);
    }
    Some(start..out.len())
}

/// Parses one (trimmed, non-blank) line.
pub(super) fn parse<'a>(
    line: &'a [u8],
    clock: &Clock,
    text: &mut Vec<u8>,
    fields: &mut Fields,
    defaults: &Defaults<'_>,
) -> Result<Head<'a>, RejectReason> {
    if line.first() != Some(&b'{') {
        return Err(RejectReason::NotInLayout);
    }
    members(line, fields)?;
    let scalar = |raw: &[u8]| !raw.starts_with(b"{") && !raw.starts_with(b"[");

    let timestamp = match take(fields, Part::Timestamp, scalar) {
        Some(at) => {
            let raw = &fields.bytes[at];
            match string(raw) {
                Some(s) => clock.whole(s.as_bytes()),
                None => epoch(raw),
            }
        }
        None => (defaults.timestamp)(),
    }
    .ok_or(RejectReason::BadTimestamp)?;

    let severity = match take(fields, Part::Severity, scalar) {
        // Without one, a record is INFO (as syslog without PRI is), or what `defaults` says.
        None => defaults.severity,
        Some(at) => {
            let raw = &fields.bytes[at];
            match string(raw) {
                Some(word) => Severity::from_field(word.trim().as_bytes()),
                None => numeric_severity(raw),
            }
            .ok_or(RejectReason::BadSeverity)?
        }
    };

    let start = text.len();
    if let Some(at) = take(fields, Part::Message, |raw| raw.starts_with(b"\"")) {
        let message = string(&fields.bytes[at]).ok_or(RejectReason::NotInLayout)?;
        text.extend_from_slice(message.as_bytes());
    }
    Ok(Head {
        timestamp,
        severity,
        message: Text::Scratch(start..text.len()),
    })
}

/// Takes the value of the field that gives `part` (the first of its names present, whose raw
/// value `fits`; ECS's nested `{"log":{"level":..}}` and tracing's `{"fields":{"message":..}}`
/// in their place among them) out of the fields; where its value is in `fields.bytes`.
fn take(fields: &mut Fields, part: Part, fits: impl Fn(&[u8]) -> bool) -> Option<Range<usize>> {
    let best = fields.best(part, &fits);
    let nested = match part {
        Part::Severity => Some(("log", "level", 3)),
        Part::Message => Some(("fields", "message", 4)),
        Part::Timestamp => None,
    };
    if let Some((outer, inner, rank)) = nested
        && best.is_none_or(|(r, _)| r > rank)
        && let Some(found) = take_nested(fields, outer, inner, &fits)
    {
        return Some(found);
    }
    let (_, i) = best?;
    fields.list[i].taken = true;
    Some(fields.list[i].value.clone())
}

/// `take` for `outer.inner` written as `{"outer":{"inner":..}}`: the outer object is written
/// back without the member taken (and dropped when nothing is left).
fn take_nested(
    fields: &mut Fields,
    outer: &str,
    inner: &str,
    fits: &impl Fn(&[u8]) -> bool,
) -> Option<Range<usize>> {
    let i = fields.find(outer, |value| value.starts_with(b"{"))?;
    let mut nested = Fields::default();
    members(fields.value(i), &mut nested).ok()?;
    let j = nested.find(inner, |_| true).filter(|&j| fits(nested.value(j)))?;
    nested.list[j].taken = true;
    let found = fields.append(nested.value(j));
    if nested.is_empty() {
        fields.list[i].taken = true;
    } else {
        let start = fields.bytes.len();
        fields.bytes.push(b'{');
        for (n, (key, value, _)) in nested.iter().enumerate() {
            if n > 0 {
                fields.bytes.push(b',');
            }
            crate::format::write_json_string(&mut fields.bytes, key);
            fields.bytes.push(b':');
            fields.bytes.extend_from_slice(value);
        }
        fields.bytes.push(b'}');
        fields.list[i].value = start..fields.bytes.len();
    }
    Some(found)
}

#[cfg(test)]
mod strict {
    use super::{Fields, scan};
    use proptest::prelude::*;

    /// Lines near a JSON object: members of good and bad keys and values, between good
    /// (mostly) or bad separators, with odd bytes now and then.
    fn near_object() -> impl Strategy<Value = Vec<u8>> {
        let key = proptest::sample::select(vec![
            "\"k\"",
            "\"time\"",
            "\"a\\\"b\"",
            "\"\\u00e9\"",
            "\"\\x\"",
            "\"\\u12\"",
            "k",
        ]);
        let value = proptest::sample::select(vec![
            "0",
            "-1",
            "01",
            "1.5",
            "1.",
            "2e9",
            "1E+2",
            "1e400",
            "-",
            "true",
            "tru",
            "null",
            "false",
            "\"caf\u{e9}\"",
            "\"\t\"",
            "\"a\\/b\"",
            "[1,{\"a\":[]}]",
            "[1,]",
            "{\"x\":1}",
            "{\"x\" 1}",
            "[\"]\"]",
            "\"",
            "\"b\\xc\"",
            "\"\\ud83d\\ude00\"",
        ]);
        let colon = prop_oneof![8 => Just(":"), 1 => Just(""), 1 => Just("::")];
        let comma = prop_oneof![8 => Just(","), 1 => Just(""), 1 => Just(",,")];
        let blank = prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\t\r\n")];
        let member = (key, colon, value, comma, blank);
        let odd = proptest::collection::vec(
            proptest::sample::select(vec![0x00u8, 0x1f, 0xff, 0xc3, b'x']),
            0..2,
        );
        (proptest::collection::vec(member, 0..5), odd, 0usize..40).prop_map(|(members, odd, at)| {
            let mut line = b"{".to_vec();
            let n = members.len();
            for (i, (k, colon, v, comma, blank)) in members.into_iter().enumerate() {
                line.extend_from_slice(blank.as_bytes());
                line.extend_from_slice(k.as_bytes());
                line.extend_from_slice(colon.as_bytes());
                line.extend_from_slice(blank.as_bytes());
                line.extend_from_slice(v.as_bytes());
                if i + 1 < n {
                    line.extend_from_slice(comma.as_bytes());
                }
            }
            line.push(b'}');
            for (i, b) in odd.into_iter().enumerate() {
                line.insert((at + i).min(line.len()), b);
            }
            line
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20000))]

        /// The hand-written reader takes exactly the lines serde_json reads as a JSON object.
        #[test]
        fn the_scanner_accepts_what_serde_json_accepts(line in near_object()) {
            let ours = scan(&line, &mut Fields::default()).is_some();
            let object = line.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{');
            let theirs = object
                && std::str::from_utf8(&line).is_ok()
                && serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_ok();
            prop_assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(&line));
        }
    }
}
