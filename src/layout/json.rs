//! `json`: one JSON object per line, as structured loggers write it.
//!
//! The members are read in order with `serde_json` (strings borrowed, values kept as written),
//! the timestamp, severity and message taken by their usual names, and every other member kept
//! as a field with its original JSON value.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{
    Fields, Head, MESSAGE_KEYS, SEVERITY_KEYS, TIMESTAMP_KEYS, Text, Value, epoch, numeric_severity,
};
use crate::layout::clock::Clock;
use crate::record::{RejectReason, Severity};

/// A key, borrowed from the line unless it holds escapes.
#[derive(serde::Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// Reads an object's members into `fields`, in order, values compacted.
struct Members<'f>(&'f mut Fields);

impl<'de> DeserializeSeed<'de> for Members<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Members<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            let fields = &mut *self.0;
            let key = fields.append(key.as_bytes());
            let value = compact(value.get().as_bytes(), &mut fields.bytes)
                .ok_or_else(|| de::Error::custom("nested deeper than 128 levels"))?;
            fields.list.push(super::Field {
                key,
                value,
                kind: Value::Json,
                taken: false,
            });
        }
        Ok(())
    }
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

/// Reads `line` as one JSON object into `fields`.
fn members(line: &[u8], fields: &mut Fields) -> Result<(), RejectReason> {
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    Members(fields)
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|_| RejectReason::NotInLayout)
}

/// A JSON string's contents, unescaped; `None` for any other value.
pub(crate) fn string(raw: &[u8]) -> Option<Cow<'_, str>> {
    if raw.first() != Some(&b'"') {
        return None;
    }
    serde_json::from_slice::<Key<'_>>(raw).ok().map(|Key(s)| s)
}

/// Parses one (trimmed, non-blank) line.
pub(super) fn parse<'a>(
    line: &'a [u8],
    clock: &Clock,
    text: &mut Vec<u8>,
    fields: &mut Fields,
) -> Result<Head<'a>, RejectReason> {
    if line.first() != Some(&b'{') {
        return Err(RejectReason::NotInLayout);
    }
    members(line, fields)?;

    let timestamp = take(fields, &TIMESTAMP_KEYS, |raw| {
        !raw.starts_with(b"{") && !raw.starts_with(b"[")
    })
    .ok_or(RejectReason::BadTimestamp)?;
    let timestamp = match string(&timestamp) {
        Some(s) => clock.whole(s.as_bytes()),
        None => epoch(&timestamp),
    }
    .ok_or(RejectReason::BadTimestamp)?;

    let severity = match take(fields, &SEVERITY_KEYS, |raw| {
        !raw.starts_with(b"{") && !raw.starts_with(b"[")
    }) {
        // Without one, a record is INFO (as syslog without PRI is).
        None => Severity::Info,
        Some(raw) => match string(&raw) {
            Some(word) => Severity::from_field(word.trim().as_bytes()),
            None => std::str::from_utf8(&raw)
                .ok()
                .and_then(|n| n.parse().ok())
                .and_then(numeric_severity),
        }
        .ok_or(RejectReason::BadSeverity)?,
    };

    let start = text.len();
    if let Some(raw) = take(fields, &MESSAGE_KEYS, |raw| raw.starts_with(b"\"")) {
        text.extend_from_slice(string(&raw).ok_or(RejectReason::NotInLayout)?.as_bytes());
    }
    Ok(Head {
        timestamp,
        severity,
        message: Text::Scratch(start..text.len()),
    })
}

/// Takes the value of the first of `names` present (dotted names also as nested objects, ECS
/// style: `log.level` is `{"log":{"level":..}}` too) whose raw value `fits`, and removes it from
/// the fields. A nested object keeps its other members.
fn take(fields: &mut Fields, names: &[&str], fits: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    for name in names {
        if let Some(i) = (0..fields.list.len())
            .find(|&i| !fields.list[i].taken && fields.key(i) == name.as_bytes() && fits(fields.value(i)))
        {
            fields.list[i].taken = true;
            return Some(fields.value(i).to_vec());
        }
        if let Some((outer, inner)) = name.split_once('.')
            && let Some(found) = take_nested(fields, outer, inner, &fits)
        {
            return Some(found);
        }
    }
    None
}

/// `take` for `outer.inner` written as `{"outer":{"inner":..}}`: the outer object is written
/// back without the member taken (and dropped when nothing is left).
fn take_nested(
    fields: &mut Fields,
    outer: &str,
    inner: &str,
    fits: &impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let i = (0..fields.list.len()).find(|&i| {
        !fields.list[i].taken && fields.key(i) == outer.as_bytes() && fields.value(i).starts_with(b"{")
    })?;
    let mut nested = Fields::default();
    members(fields.value(i), &mut nested).ok()?;
    let j = nested.find(&[inner]).filter(|&j| fits(nested.value(j)))?;
    nested.list[j].taken = true;
    let found = nested.value(j).to_vec();
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
mod tests {
    use super::super::{Layout, Outcome, Scratch};
    use crate::record::{RejectReason, Severity};
    use time::macros::datetime;

    fn read(line: &str) -> Result<(time::OffsetDateTime, Severity, String, String), RejectReason> {
        let layout = Layout::named("json", super::Clock::utc()).unwrap();
        let mut scratch = Scratch::default();
        match layout.parse(line.as_bytes(), &mut scratch) {
            Outcome::Record(r) => {
                let mut fields = Vec::new();
                crate::format::write_json_fields_object(&mut fields, r.fields);
                Ok((
                    r.timestamp,
                    r.severity,
                    String::from_utf8(r.message.to_vec()).unwrap(),
                    String::from_utf8(fields).unwrap(),
                ))
            }
            Outcome::Rejected(reason) => Err(reason),
            Outcome::Blank => panic!("blank"),
        }
    }

    #[test]
    fn the_usual_keys_give_timestamp_severity_and_message_and_the_rest_stay_fields() {
        let (ts, sev, msg, fields) =
            read(r#"{"level":30,"time":1772535601377,"pid":42,"msg":"hi \"you\"","err":{"a": [1, 2]}}"#)
                .unwrap();
        assert_eq!(
            (ts, sev, msg.as_str()),
            (
                datetime!(2026-03-03 11:00:01.377 UTC),
                Severity::Info,
                "hi \"you\""
            )
        );
        assert_eq!(fields, r#"{"pid":42,"err":{"a":[1,2]}}"#);
    }

    #[test]
    fn ecs_dotted_keys_are_read_flat_and_nested() {
        let (_, sev, msg, fields) = read(
            r#"{"@timestamp":"2026-04-15T10:00:00Z","log":{"level":"warn","logger":"x"},"message":"m"}"#,
        )
        .unwrap();
        assert_eq!(
            (sev, msg.as_str(), fields.as_str()),
            (Severity::Warn, "m", r#"{"log":{"logger":"x"}}"#)
        );
        let (_, sev, _, fields) =
            read(r#"{"@timestamp":"2026-04-15T10:00:00Z","log.level":"error","message":"m"}"#).unwrap();
        assert_eq!((sev, fields.as_str()), (Severity::Error, "{}"));
        // tracing's json layer: the message inside `fields`.
        let (_, _, msg, fields) =
            read(r#"{"timestamp":"2026-04-15T10:00:00.5Z","level":"INFO","fields":{"message":"hello","n":1},"target":"app"}"#)
                .unwrap();
        assert_eq!(
            (msg.as_str(), fields.as_str()),
            ("hello", r#"{"fields":{"n":1},"target":"app"}"#)
        );
    }

    #[test]
    fn hostile_json_is_rejected_or_read_never_a_crash() {
        let deep = format!(
            "{{\"time\":1,\"msg\":\"x\",\"a\":{}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // Rejected: too deep for the readers of the output (serde_json reads 128 levels).
        assert_eq!(read(&deep).unwrap_err(), RejectReason::NotInLayout);
        let fine = format!(
            "{{\"time\":1,\"msg\":\"x\",\"a\":{}1{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(read(&fine).is_ok_and(|r| r.3.len() > 200), "100 levels are kept");
        let huge = format!(r#"{{"time":1,"msg":"x","n":1{}}}"#, "0".repeat(5000));
        assert!(
            read(&huge).unwrap().3.len() > 5000,
            "a huge number is kept as written"
        );
        assert_eq!(
            read("{\"time\":1,\"msg\":\"caf\u{e9}\"").unwrap_err(),
            RejectReason::NotInLayout
        );
        let layout = Layout::named("json", super::Clock::utc()).unwrap();
        let bad_utf8 = b"{\"time\":1,\"msg\":\"caf\xe9\"}";
        assert!(matches!(
            layout.parse(bad_utf8, &mut Scratch::default()),
            Outcome::Rejected(RejectReason::NotInLayout)
        ));
        // Duplicate keys: the first is the message, the second stays a field.
        let (_, _, msg, fields) = read(r#"{"time":1,"msg":"a","msg":"b"}"#).unwrap();
        assert_eq!((msg.as_str(), fields.as_str()), ("a", r#"{"msg":"b"}"#));
        assert_eq!(
            read(r#"{"msg":"no time"}"#).unwrap_err(),
            RejectReason::BadTimestamp
        );
        assert_eq!(
            read(r#"{"time":1,"level":"loud","msg":"x"}"#).unwrap_err(),
            RejectReason::BadSeverity
        );
        assert_eq!(read("[1,2]").unwrap_err(), RejectReason::NotInLayout);
    }
}
