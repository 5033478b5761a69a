//! Fuzzes the line grammar through `parse_batch`: any bytes, split into lines and parsed.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_batch` (see README). Beyond "never panics", it checks
//! that every line gets exactly one outcome and that messages are slices of their line.
#![no_main]

use bytes::Bytes;
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
    for reject in &parsed.rejects {
        assert_eq!(&reject.line[..], lines[(reject.line_no - 1) as usize]);
    }
});
