//! Rendering records for the output (text or JSON Lines) and rejected lines for the rejects file.
//!
//! Pure functions that append to a caller-owned buffer: the writer reuses one buffer for a whole
//! run, so formatting allocates nothing per record.

use std::io::Write as _;

use time::format_description::well_known::Rfc3339;

use crate::record::{RejectReason, Severity, ValidRecord};

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
pub fn write_record(buf: &mut Vec<u8>, format: Format, record: &ValidRecord<'_>) {
    match format {
        Format::Text => write_text(buf, record),
        Format::Json => write_json(buf, record),
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

/// Exactly `format!("{:>6} {:>5} {}\n", line_no, severity, message)`, without the formatter.
fn write_text(buf: &mut Vec<u8>, record: &ValidRecord<'_>) {
    let record = record.record();
    let mut digits = itoa::Buffer::new();
    let line_no = digits.format(record.line_no).as_bytes();
    const SPACES: &[u8; 6] = b"      ";
    buf.extend_from_slice(&SPACES[..6usize.saturating_sub(line_no.len())]);
    buf.extend_from_slice(line_no);
    buf.push(b' ');
    buf.extend_from_slice(padded(record.severity));
    buf.push(b' ');
    buf.extend_from_slice(record.message);
    buf.push(b'\n');
}

fn write_json(buf: &mut Vec<u8>, record: &ValidRecord<'_>) {
    let record = record.record();
    buf.extend_from_slice(b"{\"line\":");
    buf.extend_from_slice(itoa::Buffer::new().format(record.line_no).as_bytes());
    buf.extend_from_slice(b",\"timestamp\":\"");
    record
        .timestamp
        .to_offset(time::UtcOffset::UTC)
        .format_into(buf, &Rfc3339)
        .expect("a 4-digit year with a UTC offset always formats as RFC 3339");
    buf.extend_from_slice(b"\",\"severity\":\"");
    buf.extend_from_slice(record.severity.as_str().as_bytes());
    buf.extend_from_slice(b"\",\"message\":");
    let message = String::from_utf8_lossy(record.message);
    serde_json::to_writer(&mut *buf, &*message).expect("writing JSON to a Vec cannot fail");
    buf.extend_from_slice(b"}\n");
}

/// Appends one rejects-file line: `line_no<TAB>reason<TAB>original line`.
pub fn write_reject(buf: &mut Vec<u8>, line_no: u64, reason: RejectReason, line: &[u8]) {
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{line_no}\t{reason}\t");
    buf.extend_from_slice(line);
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ParsedRecord;
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
        write_record(&mut buf, format, record);
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

    #[test]
    fn rejects_are_tab_separated_with_the_original_line() {
        let mut buf = Vec::new();
        write_reject(
            &mut buf,
            12,
            RejectReason::BadSeverity,
            b"2026-04-15T00:00:20Z NOTICE x",
        );
        assert_eq!(buf, b"12\tbad severity\t2026-04-15T00:00:20Z NOTICE x\n");
    }
}
