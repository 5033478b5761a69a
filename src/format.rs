//! Rendering records for the output (text or JSON Lines) and rejected lines for the rejects file.
//!
//! Pure functions that append to a caller-owned buffer: the writer reuses one buffer for a whole
//! run, so formatting allocates nothing per record.

use std::borrow::Cow;

use time::{OffsetDateTime, UtcOffset};

use crate::record::{Fields, ParsedRecord, RejectReason, Severity, Value};

/// The output format chosen with `--format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `{line_no:>6} {severity:>5} {message}`, message bytes unchanged.
    #[default]
    Text,
    /// JSON Lines: line, UTC RFC 3339 timestamp, severity, message (invalid UTF-8 as U+FFFD).
    Json,
}

/// Appends one record in `format`, ending with `\n`.
///
/// Any parsed record renders; the parsers render every record of a batch, and the validator
/// keeps the bytes of those it accepts (see [`crate::batch::ValidBatch`]).
#[inline]
pub fn write_record(buf: &mut Vec<u8>, format: Format, record: &ParsedRecord<'_>) {
    match format {
        Format::Text => write_text(buf, record),
        Format::Json => write_json(buf, record),
    }
}

/// Columns before the message in the text layout: the line number, the severity and a space
/// each; continuation lines of a multiline message are indented by as much.
pub const TEXT_INDENT: usize = 13;

/// Appends what follows the message of a record read by a structured layout: its fields, in
/// text as logfmt ` key=value` pairs, in JSON as `,"fields":{...}`; nothing when there are none.
pub fn write_fields(buf: &mut Vec<u8>, format: Format, fields: &Fields) {
    if fields.is_empty() {
        return;
    }
    match format {
        Format::Text => {
            for (key, value, kind) in fields.iter() {
                buf.push(b' ');
                buf.extend_from_slice(key);
                buf.push(b'=');
                match kind {
                    Value::Json if value.first() == Some(&b'"') => match string(value) {
                        Some(text) => write_logfmt_value(buf, text.as_bytes()),
                        None => write_logfmt_value(buf, value),
                    },
                    Value::Json | Value::Text => write_logfmt_value(buf, value),
                }
            }
        }
        Format::Json => {
            buf.extend_from_slice(b",\"fields\":");
            write_json_fields_object(buf, fields);
        }
    }
}

/// Appends a container line's fields: `first` (its stream), then `leading` (its pod's, rendered
/// by [`write_member`]), then those its layout read ([`write_fields`]): in text ` key=value`
/// pairs, in JSON one object.
pub fn write_fields_after(
    buf: &mut Vec<u8>,
    format: Format,
    (key, value): (&[u8], &[u8]),
    leading: &[u8],
    fields: &Fields,
) {
    match format {
        Format::Text => {
            write_member(buf, format, key, value, false);
            buf.extend_from_slice(leading);
            write_fields(buf, format, fields);
        }
        Format::Json => {
            buf.extend_from_slice(b",\"fields\":{");
            write_json_string(buf, key);
            buf.push(b':');
            write_json_string(buf, value);
            buf.extend_from_slice(leading);
            if fields.is_empty() {
                buf.push(b'}');
            } else {
                // The others' object, its `{` made the `,` before its first member.
                let at = buf.len();
                write_json_fields_object(buf, fields);
                buf[at] = b',';
            }
        }
    }
}

/// Appends one field to go after another: in text ` key=value`, in JSON `,"key":value` (a
/// `number` as it is, anything else a string).
pub fn write_member(buf: &mut Vec<u8>, format: Format, key: &[u8], value: &[u8], number: bool) {
    match format {
        Format::Text => {
            buf.push(b' ');
            buf.extend_from_slice(key);
            buf.push(b'=');
            write_logfmt_value(buf, value);
        }
        Format::Json => {
            buf.push(b',');
            write_json_string(buf, key);
            buf.push(b':');
            match number {
                true => buf.extend_from_slice(value),
                false => write_json_string(buf, value),
            }
        }
    }
}

/// Appends the `file` key a record of many logs carries (written after its fields): in text
/// ` file=PATH` (logfmt), in JSON `,"file":"PATH"`.
pub fn write_file_key(buf: &mut Vec<u8>, format: Format, path: &str) {
    match format {
        Format::Text => {
            buf.extend_from_slice(b" file=");
            write_logfmt_value(buf, path.as_bytes());
        }
        Format::Json => {
            buf.extend_from_slice(b",\"file\":");
            write_json_string(buf, path.as_bytes());
        }
    }
}

/// Appends one record whose message may span lines (`\n` inside), then `suffix` (see
/// [`write_fields`]): in text, each line after the first indented by [`TEXT_INDENT`] spaces so
/// that every output line starting with a digit starts a record; in JSON, `\n` escaped.
#[inline(always)]
pub fn write_record_with(buf: &mut Vec<u8>, format: Format, record: &ParsedRecord<'_>, suffix: &[u8]) {
    match format {
        Format::Text => {
            write_text_head(buf, record);
            write_indented(buf, record.message, TEXT_INDENT);
            buf.extend_from_slice(suffix);
            buf.push(b'\n');
        }
        Format::Json => {
            write_json_fields(buf, record);
            buf.extend_from_slice(suffix);
            buf.extend_from_slice(b"}\n");
        }
    }
}

/// [`write_record_with`] for a record read from one line: its message holds no `\n` to indent
/// (many logs' `plain`, where looking for one in every message cost more than the `file` key).
#[inline(always)]
pub fn write_line_with(buf: &mut Vec<u8>, format: Format, record: &ParsedRecord<'_>, suffix: &[u8]) {
    match format {
        Format::Text => {
            write_text_head(buf, record);
            buf.extend_from_slice(record.message);
            buf.extend_from_slice(suffix);
            buf.push(b'\n');
        }
        Format::Json => write_record_with(buf, format, record, suffix),
    }
}

/// `message` with `indent` spaces after each `\n` in it.
fn write_indented(buf: &mut Vec<u8>, message: &[u8], indent: usize) {
    const SPACES: &[u8; 64] = &[b' '; 64];
    if memchr::memchr(b'\n', message).is_none() {
        buf.extend_from_slice(message);
        return;
    }
    let mut lines = message.split(|&b| b == b'\n');
    buf.extend_from_slice(lines.next().unwrap_or_default());
    for line in lines {
        buf.push(b'\n');
        buf.extend_from_slice(&SPACES[..indent.min(SPACES.len())]);
        buf.extend_from_slice(line);
    }
}

/// A record's fields as one JSON object: JSON values as written, strings quoted.
pub fn write_json_fields_object(buf: &mut Vec<u8>, fields: &Fields) {
    buf.push(b'{');
    for (n, (key, value, kind)) in fields.iter().enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        write_json_string(buf, key);
        buf.push(b':');
        match kind {
            Value::Json => buf.extend_from_slice(value),
            Value::Text => write_json_string(buf, value),
        }
    }
    buf.push(b'}');
}

/// `bytes` as a JSON string, quotes included.
pub fn write_json_string(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.push(b'"');
    write_json_string_body(buf, bytes);
    buf.push(b'"');
}

/// A logfmt value: as it is when it has no space, `=`, quote or control byte, else quoted with
/// `\"`, `\\`, `\n`, `\r` and `\t` escaped.
fn write_logfmt_value(buf: &mut Vec<u8>, value: &[u8]) {
    let plain = !value.is_empty()
        && value
            .iter()
            .all(|&b| b > b' ' && b != b'=' && b != b'"' && b != 0x7f);
    if plain {
        buf.extend_from_slice(value);
        return;
    }
    buf.push(b'"');
    for &b in value {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => buf.push(b),
        }
    }
    buf.push(b'"');
}

/// Where a collected record came from: the publisher (`Ingest-Source`) and the subject.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// `HOST/FINGERPRINT`, or `None` for a message without the header.
    pub source: Option<&'a [u8]>,
    /// The subject it was published on.
    pub subject: &'a [u8],
}

/// Columns the source takes in collected text: `HOST/` and 16 hex digits for a short host name.
pub const SOURCE_WIDTH: usize = 24;

/// Appends one collected record in `format`, ending with `\n`: text is
/// `{line_no:>6} {severity:>5} {source:<24} {message}` (`-` for no source), JSON gains
/// `"source"` and `"subject"` after the four usual keys; `suffix` (the record's fields, see
/// [`write_fields`]) follows the message.
pub fn write_collected(
    buf: &mut Vec<u8>,
    format: Format,
    record: &ParsedRecord<'_>,
    origin: Origin<'_>,
    suffix: &[u8],
) {
    match format {
        Format::Text => {
            let source = origin.source.unwrap_or(b"-");
            write_text_head(buf, record);
            buf.extend_from_slice(source);
            const SPACES: &[u8; SOURCE_WIDTH] = &[b' '; SOURCE_WIDTH];
            buf.extend_from_slice(&SPACES[..SOURCE_WIDTH.saturating_sub(source.len())]);
            buf.push(b' ');
            write_indented(buf, record.message, TEXT_INDENT + SOURCE_WIDTH + 1);
            buf.extend_from_slice(suffix);
            buf.push(b'\n');
        }
        Format::Json => {
            write_json_fields(buf, record);
            buf.extend_from_slice(suffix);
            buf.extend_from_slice(b",\"source\":");
            match origin.source {
                Some(source) => {
                    buf.push(b'"');
                    write_json_string_body(buf, source);
                    buf.push(b'"');
                }
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"subject\":\"");
            write_json_string_body(buf, origin.subject);
            buf.extend_from_slice(b"\"}\n");
        }
    }
}

/// The severity right-aligned in five columns, as `{:>5}` would print it.
const fn padded(severity: Severity) -> &'static [u8] {
    match severity {
        Severity::Trace => b"TRACE",
        Severity::Debug => b"DEBUG",
        Severity::Info => b" INFO",
        Severity::Warn => b" WARN",
        Severity::Error => b"ERROR",
        Severity::Fatal => b"FATAL",
    }
}

/// A record's fixed-size part, assembled on the stack and appended to the output in one copy:
/// one capacity check per record instead of one per field.
struct Head {
    bytes: [u8; 128],
    len: usize,
}

impl Head {
    fn new() -> Head {
        Head {
            bytes: [0; 128],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) {
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// `n` (below 100) as two digits.
    fn pair(&mut self, n: u32) {
        let i = 2 * n as usize;
        self.push(&PAIRS[i..i + 2]);
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// `00` to `99`, two bytes each: a table lookup per pair of digits, no division per digit.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Exactly `format!("{:>6} {:>5} {}\n", line_no, severity, message)`, without the formatter.
fn write_text(buf: &mut Vec<u8>, record: &ParsedRecord<'_>) {
    write_text_head(buf, record);
    buf.extend_from_slice(record.message);
    buf.push(b'\n');
}

/// The text layout's line number and severity columns, and the space after them.
fn write_text_head(buf: &mut Vec<u8>, record: &ParsedRecord<'_>) {
    let mut digits = itoa::Buffer::new();
    let line_no = digits.format(record.line_no).as_bytes();
    const SPACES: &[u8; 6] = b"      ";
    buf.extend_from_slice(&SPACES[..6usize.saturating_sub(line_no.len())]);
    buf.extend_from_slice(line_no);
    buf.push(b' ');
    buf.extend_from_slice(padded(record.severity));
    buf.push(b' ');
}

fn write_json(buf: &mut Vec<u8>, record: &ParsedRecord<'_>) {
    write_json_fields(buf, record);
    buf.extend_from_slice(b"}\n");
}

/// The four keys of a JSON record, the object left open for more (or its `}`).
fn write_json_fields(buf: &mut Vec<u8>, record: &ParsedRecord<'_>) {
    let mut head = Head::new();
    head.push(b"{\"line\":");
    head.push(itoa::Buffer::new().format(record.line_no).as_bytes());
    head.push(b",\"timestamp\":\"");
    push_rfc3339_utc(&mut head, record.timestamp);
    head.push(b"\",\"severity\":\"");
    head.push(record.severity.as_str().as_bytes());
    head.push(b"\",\"message\":\"");
    buf.reserve(head.len + record.message.len() + 3);
    buf.extend_from_slice(head.as_slice());
    write_json_string_body(buf, record.message);
    buf.push(b'"');
}

/// The instant in UTC as RFC 3339, `2026-04-15T00:00:07.25Z`, exactly as `time`'s `Rfc3339`
/// writes it (fraction without trailing zeros, none when zero), without its general formatter.
fn push_rfc3339_utc(head: &mut Head, timestamp: OffsetDateTime) {
    let utc = timestamp
        .checked_to_offset(UtcOffset::UTC)
        .expect("the grammar keeps every instant within the years 0000-9999");
    let (year, month, day) = utc.to_calendar_date();
    let (hour, minute, second, nanos) = utc.to_hms_nano();
    let year = year as u32;
    head.pair(year / 100);
    head.pair(year % 100);
    head.push(b"-");
    head.pair(u32::from(month as u8));
    head.push(b"-");
    head.pair(u32::from(day));
    head.push(b"T");
    head.pair(u32::from(hour));
    head.push(b":");
    head.pair(u32::from(minute));
    head.push(b":");
    head.pair(u32::from(second));
    if nanos != 0 {
        head.push(b".");
        // Milliseconds, the usual precision, in two table lookups; nine digits otherwise.
        let (value, digits) = if nanos % 1_000_000 == 0 {
            (nanos / 1_000_000, 3)
        } else if nanos % 1000 == 0 {
            (nanos / 1000, 6)
        } else {
            (nanos, 9)
        };
        let start = head.len;
        let mut rest = value;
        head.len += digits;
        let mut at = head.len;
        while at - start >= 2 {
            let i = 2 * (rest % 100) as usize;
            head.bytes[at - 2..at].copy_from_slice(&PAIRS[i..i + 2]);
            rest /= 100;
            at -= 2;
        }
        if at > start {
            head.bytes[start] = b'0' + rest as u8;
        }
        while head.bytes[head.len - 1] == b'0' {
            head.len -= 1;
        }
    }
    head.push(b"Z");
}

/// Bytes that JSON strings escape: control characters, `"` and `\`.
pub(crate) const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The inside of a JSON string for `bytes`, as `serde_json` writes `String::from_utf8_lossy`
/// of them: invalid UTF-8 as U+FFFD, the usual short escapes, other controls as `\u00XX`. Runs
/// of plain bytes are copied whole; nothing is allocated.
fn write_json_string_body(buf: &mut Vec<u8>, bytes: &[u8]) {
    // The usual message: printable ASCII with no quote or backslash, copied whole.
    if is_plain(bytes) {
        buf.extend_from_slice(bytes);
        return;
    }
    // Valid UTF-8 is the rule, and checking it whole is far faster than chunk by chunk.
    if std::str::from_utf8(bytes).is_ok() {
        write_escaped(buf, bytes);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        write_escaped(buf, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            buf.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

/// True when no byte of `bytes` needs attention in a JSON string: all below 0x80, none a
/// control character, `"` or `\`. Eight bytes at a time (SWAR: each test below is exact for
/// "some byte of the word").
fn is_plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let needs = |w: u64| {
        w & HIGH != 0
            || w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
    };
    let (words, rest) = bytes.as_chunks::<8>();
    !words.iter().any(|w| needs(u64::from_le_bytes(*w)))
        && !rest.iter().any(|&b| b >= 0x80 || ESCAPED[usize::from(b)])
}

/// Valid UTF-8 `text` with JSON's escapes applied.
fn write_escaped(buf: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if !ESCAPED[b as usize] {
            continue;
        }
        buf.extend_from_slice(&text[start..i]);
        start = i + 1;
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let escape = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ];
                buf.extend_from_slice(&escape);
            }
        }
    }
    buf.extend_from_slice(&text[start..]);
}

/// A key or string value with escapes, unescaped by `serde_json` (the rare case).
#[derive(serde::Deserialize)]
pub(crate) struct Key<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// A JSON string's contents, unescaped; `None` for any other value.
pub fn string(raw: &[u8]) -> Option<Cow<'_, str>> {
    if raw.first() != Some(&b'"') {
        return None;
    }
    let body = raw.get(1..raw.len().checked_sub(1)?)?;
    let (backslash, high) = body.iter().fold((false, 0), |(backslash, high), &b| {
        (backslash | (b == b'\\'), high | b)
    });
    if !backslash {
        if high < 0x80 {
            // SAFETY: every byte is below 0x80: ASCII, which is valid UTF-8.
            return Some(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(body) }));
        }
        return std::str::from_utf8(body).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<Key<'_>>(raw).ok().map(|Key(s)| s)
}

/// Appends one rejects-file line: `line_no<TAB>reason<TAB>original line`.
pub fn write_reject(buf: &mut Vec<u8>, line_no: u64, reason: RejectReason, line: &[u8]) {
    buf.extend_from_slice(itoa::Buffer::new().format(line_no).as_bytes());
    buf.push(b'\t');
    buf.extend_from_slice(reason.as_str().as_bytes());
    buf.push(b'\t');
    buf.extend_from_slice(line);
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ValidRecord;
    use time::macros::datetime;

    fn valid(line_no: u64, severity: Severity, message: &'static [u8]) -> ValidRecord<'static> {
        ValidRecord::validate(ParsedRecord {
            line_no,
            timestamp: datetime!(2026-04-15 02:00:07.25 +2),
            severity,
            message,
        })
        .expect("non-empty message")
    }

    fn render(format: Format, record: &ValidRecord<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        write_record(&mut buf, format, record.record());
        buf
    }

    #[test]
    fn text_matches_the_format_macro_for_every_severity_and_width() {
        for severity in Severity::ALL {
            for line_no in [1, 42, 999_999, 1_000_000, 123_456_789_012] {
                let expected = format!("{:>6} {:>5} {}\n", line_no, severity, "hello  world");
                let actual = render(Format::Text, &valid(line_no, severity, b"hello  world"));
                assert_eq!(String::from_utf8(actual).unwrap(), expected);
            }
        }
    }

    #[test]
    fn text_passes_invalid_utf8_through_untouched() {
        assert_eq!(
            render(Format::Text, &valid(3, Severity::Info, b"caf\xe9")),
            b"     3  INFO caf\xe9\n"
        );
    }

    #[test]
    fn json_normalises_the_timestamp_to_utc_and_escapes_the_message() {
        let out = render(Format::Json, &valid(7, Severity::Error, b"say \"hi\"\t\xff"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"line\":7,\"timestamp\":\"2026-04-15T00:00:07.25Z\",\"severity\":\"ERROR\",\"message\":\"say \\\"hi\\\"\\t\u{fffd}\"}\n"
        );
    }

    #[test]
    fn json_lines_parse_back_with_serde() {
        let out = render(Format::Json, &valid(1, Severity::Info, b"started"));
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"line": 1, "timestamp": "2026-04-15T00:00:07.25Z", "severity": "INFO", "message": "started"})
        );
    }

    /// The JSON line as the first build wrote it, with `time`'s RFC 3339 formatter and
    /// `serde_json`: the lean writer must match it byte for byte.
    fn reference_json(record: &ValidRecord<'_>) -> Vec<u8> {
        use time::format_description::well_known::Rfc3339;
        let record = record.record();
        let mut buf = format!("{{\"line\":{},\"timestamp\":\"", record.line_no).into_bytes();
        let utc = record.timestamp.to_offset(time::UtcOffset::UTC);
        utc.format_into(&mut buf, &Rfc3339).unwrap();
        buf.extend_from_slice(format!("\",\"severity\":\"{}\",\"message\":", record.severity).as_bytes());
        serde_json::to_writer(&mut buf, &*String::from_utf8_lossy(record.message)).unwrap();
        buf.extend_from_slice(b"}\n");
        buf
    }

    mod lean_json {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn json_is_byte_identical_to_the_general_formatters(
                line_no in any::<u64>(),
                julian_day in 1_721_060i32..5_373_484, // 0000-01-01 to 9999-12-31
                seconds in 0u32..86_400,
                nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000, (0u32..1000).prop_map(|m| m * 1_000_000)],
                offset_minutes in -1439i32..1440,
                severity in 0usize..6,
                message in proptest::collection::vec(prop_oneof![
                    any::<u8>(),
                    proptest::sample::select(vec![b'"', b'\\', b'\n', b'\t', 0x08, 0x7f, 0xc3, 0xe9, 0xff, 0x00, b'a']),
                ], 1..60),
            ) {
                let date = time::Date::from_julian_day(julian_day).unwrap();
                let (h, m, sec) = ((seconds / 3600) as u8, (seconds / 60 % 60) as u8, (seconds % 60) as u8);
                let time = time::Time::from_hms_nano(h, m, sec, nanos).unwrap();
                let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
                let timestamp = time::PrimitiveDateTime::new(date, time).assume_offset(offset);
                let in_range = timestamp.checked_to_offset(UtcOffset::UTC).is_some_and(|t| (0..=9999).contains(&t.year()));
                prop_assume!(in_range);
                let record = ValidRecord::validate(ParsedRecord {
                    line_no,
                    timestamp,
                    severity: Severity::ALL[severity],
                    message: &message[..],
                })
                .unwrap();
                let mut lean = Vec::new();
                write_record(&mut lean, Format::Json, record.record());
                let reference = reference_json(&record);
                prop_assert_eq!(String::from_utf8_lossy(&lean), String::from_utf8_lossy(&reference));
                prop_assert_eq!(lean, reference);
            }
        }
    }

    #[test]
    fn rejects_are_tab_separated_with_the_original_line() {
        let mut buf = Vec::new();
        write_reject(
            &mut buf,
            12,
            RejectReason::BadSeverity,
            b"2026-04-15T00:00:20Z NOTE x",
        );
        assert_eq!(buf, b"12\tbad severity\t2026-04-15T00:00:20Z NOTE x\n");
    }
}
