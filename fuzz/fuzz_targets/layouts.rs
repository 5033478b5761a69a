//! Fuzzes every input layout, with and without `--multiline`, through `parse_batch_with`: any
//! bytes after a first one that picks the layout, split into lines, read, and every record
//! rendered as JSON and as text.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run layouts` (see README). Beyond "never panics", it checks
//! that every line gets exactly one outcome (continued lines included), that every JSON line is
//! an object with the record's line number, and that the text output has one numbered line per
//! record (continuation lines are indented past the number).
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use ingest::format::Format;
use ingest::layout::{Clock, Layout, NAMED};
use ingest::pipeline::parser::parse_batch_with;
use ingest::record::split_lines;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let names: Vec<&str> = ["plain", "json", "logfmt", "syslog"]
        .into_iter()
        .chain(NAMED.iter().map(|(name, _)| *name))
        .collect();
    let layout = Arc::new(Layout::named(names[usize::from(pick) % names.len()], Clock::utc()).unwrap());
    let max_record_lines = (pick & 0x80 != 0).then_some(4);
    let lines = split_lines(input).count() as u64;

    let parsed = parse_batch_with(1, Bytes::copy_from_slice(input), layout.clone(), max_record_lines, Format::Json);
    let records: Vec<_> = parsed.records().collect();
    assert_eq!(parsed.lines, lines);
    assert_eq!(parsed.blank + parsed.rejects.len() as u64 + records.len() as u64 + parsed.continued, lines);
    let rendered: Vec<&[u8]> = split_lines(parsed.rendered()).collect();
    assert_eq!(rendered.len(), records.len());
    for (line, record) in rendered.iter().zip(&records) {
        assert!(line.starts_with(format!("{{\"line\":{},", record.line_no).as_bytes()));
        assert!(line.ends_with(b"}"));
    }

    let text = parse_batch_with(1, Bytes::copy_from_slice(input), layout, max_record_lines, Format::Text);
    let numbered = split_lines(text.rendered()).filter(|l| l.get(5).is_some_and(u8::is_ascii_digit)).count();
    assert_eq!(numbered, records.len());
});
