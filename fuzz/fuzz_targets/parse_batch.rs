//! Fuzzes the line grammar and both renderings through `parse_batch`: any bytes, split into
//! lines, parsed, and every record written as text and as JSON, every reject as a TSV line.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_batch` (see README). Beyond "never panics", it checks
//! that every line gets exactly one outcome, that messages are slices of their line, and that
//! every JSON line parses back with the record's line number and severity.
#![no_main]

use bytes::Bytes;
use ingest::format::{Format, write_record, write_reject};
use ingest::pipeline::parser::parse_batch;
use ingest::record::split_lines;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_batch(1, Bytes::copy_from_slice(data));
    let lines: Vec<&[u8]> = split_lines(data).collect();
    assert_eq!(parsed.lines, lines.len() as u64);
    let records: Vec<_> = parsed.records().collect();
    assert_eq!(parsed.blank + parsed.rejects.len() as u64 + records.len() as u64, parsed.lines);
    for record in &records {
        let line = lines[(record.line_no - 1) as usize];
        // The message runs to the end of the line, less trailing spaces, tabs and `\r` only.
        let end = line.iter().rposition(|b| !matches!(b, b' ' | b'\t' | b'\r')).map_or(0, |i| i + 1);
        assert!(line[..end].ends_with(record.message));
        assert!(!record.message.contains(&b'\n'));
    }
    let mut buf = Vec::new();
    for record in &records {
        buf.clear();
        write_record(&mut buf, Format::Text, record);
        assert!(buf.ends_with(&[record.message, b"\n"].concat()));
        buf.clear();
        write_record(&mut buf, Format::Json, record);
        let value: serde_json::Value = serde_json::from_slice(&buf).expect("a JSON line");
        assert_eq!(value["line"], record.line_no);
        assert_eq!(value["severity"], record.severity.as_str());
        assert!(value["timestamp"].as_str().is_some_and(|t| t.len() >= 20 && t.ends_with('Z')));
    }
    for reject in &parsed.rejects {
        assert_eq!(&reject.line[..], lines[(reject.line_no - 1) as usize]);
        buf.clear();
        write_reject(&mut buf, reject.line_no, reject.reason, &reject.line);
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
    }
});
