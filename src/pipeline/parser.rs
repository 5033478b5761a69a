//! The parser stage: a pool of tasks sharing one receiver, each parsing whole batches.
//!
//! Fed [`RawBatch`]es by the reader, in whatever order the pool picks them up; feeds
//! [`ParsedBatch`]es to the validator, which restores the order. Parsing is [`parse_batch`], a
//! plain function: no allocation per line. Each record is rendered (text or JSON, and each
//! rejected line for the rejects file) right here, where batches are handled in parallel, so
//! that the ordered stages after this one only check and copy finished bytes.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::batch::{
    EntryPool, Fetched, LONG_LINE_PREFIX, Parsed, ParsedBatch, RawBatch, Render, decoding_buffer,
};
use crate::channel::{recv, send};
use crate::checkpoint::Position;
use crate::config::Multiline;
use crate::error::Error;
use crate::format::{
    Format, Origin, write_collected, write_fields, write_fields_after, write_line_with, write_record,
    write_record_with,
};
use crate::layout::container::{self, Decoding, Step};
use crate::layout::{Container, Inner, Layout, Outcome, Scratch};
use crate::metrics::{Metrics, add};
use crate::record::{
    Fields, Line, ParsedRecord, RejectReason, Severity, parse_line, parse_timestamp, split_lines, trim_line,
};

/// Parses every line of `data`, numbering them from `first_line`, and renders the records as
/// text and the rejected lines for a rejects file.
///
/// Messages are ranges of `data`; only rejected lines take a (reference-counted) slice.
pub fn parse_batch(first_line: u64, data: Bytes) -> Parsed {
    let render = Render {
        format: Format::Text,
        rejects: true,
    };
    parse_into(first_line, data, usize::MAX, render, b"", None)
}

/// [`parse_batch`] with another layout (and `--multiline`'s record-line limit), rendering
/// records as `format`: the general path, for tests and the fuzzer.
pub fn parse_batch_with(
    first_line: u64,
    data: Bytes,
    layout: Arc<Layout>,
    max_record_lines: Option<usize>,
    format: Format,
) -> Parsed {
    let window = Arc::new(tokio::sync::Semaphore::new(1));
    let batch = RawBatch {
        at: None,
        seq: 0,
        first_line,
        data,
        long_line: false,
        tail_too_long: false,
        head_continues: None,
        tail_continues: None,
        head_skipping: 0,
        tail_skipping: 0,
        cut_open: false,
        end_offset: 0,
        end_context: None,
        permit: window.try_acquire_owned().expect("a new window has a slot"),
        messages: Vec::new(),
    };
    let render = Render {
        format,
        rejects: true,
    };
    let multiline = max_record_lines.map(|max_record_lines| Multiline {
        max_record_lines,
        timeout: std::time::Duration::from_millis(crate::config::DEFAULT_MULTILINE_TIMEOUT_MS),
    });
    parse_layout(
        &batch,
        usize::MAX,
        render,
        None,
        &mut Reading::new(layout, multiline, Severity::Info),
        b"",
    )
}

/// [`parse_batch`], rejecting lines over `max_line_bytes`, rendering as `render` says (and the
/// log's `file` key after each record, many logs), with the entry list and buffers taken from
/// (and later given back to) `pool`.
fn parse_into(
    first_line: u64,
    data: Bytes,
    max_line_bytes: usize,
    render: Render,
    file: &[u8],
    pool: Option<&Arc<EntryPool>>,
) -> Parsed {
    // One loop each, so that the line loop asks nothing it could ask once per batch.
    if file.is_empty() {
        parse_lines(first_line, data, max_line_bytes, render, pool, write_record)
    } else {
        let write = |out: &mut Vec<u8>, format, record: &ParsedRecord<'_>| {
            write_line_with(out, format, record, file);
        };
        parse_lines(first_line, data, max_line_bytes, render, pool, write)
    }
}

/// [`parse_into`] with `write` rendering each record.
fn parse_lines(
    first_line: u64,
    data: Bytes,
    max_line_bytes: usize,
    render: Render,
    pool: Option<&Arc<EntryPool>>,
    write: impl Fn(&mut Vec<u8>, Format, &ParsedRecord<'_>),
) -> Parsed {
    assert!(
        data.len() <= u32::MAX as usize,
        "a batch is far smaller than 4 GiB"
    );
    let mut parsed = Parsed::new(data, render, pool);
    // A second handle on the batch's bytes (one count per batch), so that lines can be kept
    // while `parsed` is being filled.
    let data = parsed.data.clone();
    parsed.size_for(data.len());
    for (text, line_no) in split_lines(&data).zip(first_line..) {
        parsed.lines += 1;
        // The limit counts the line without its terminator, `\n` or `\r\n` alike.
        let rejected = if text.len() - usize::from(text.last() == Some(&b'\r')) > max_line_bytes {
            Some((
                RejectReason::LineTooLong,
                &text[..LONG_LINE_PREFIX.min(text.len())],
            ))
        } else {
            match parse_line(text) {
                Line::Blank => {
                    parsed.blank += 1;
                    None
                }
                Line::Rejected(reason) => Some((reason, text)),
                Line::Parsed {
                    timestamp,
                    severity,
                    message,
                } => {
                    let record = ParsedRecord {
                        line_no,
                        timestamp,
                        severity,
                        message,
                    };
                    write(&mut parsed.out, render.format, &record);
                    parsed.keep(&record, message.as_ptr() as usize - data.as_ptr() as usize);
                    None
                }
            }
        };
        if let Some((reason, line)) = rejected {
            let line = data.slice_ref(line);
            parsed.reject(line_no, reason, line);
        }
    }
    parsed
}

/// How a parser reads lines with a layout other than fast `plain`, and its buffers.
pub(crate) struct Reading {
    /// The layout.
    pub layout: Arc<Layout>,
    /// `--multiline`: the most lines a record keeps, and (a container's log) how long after
    /// its stream's record's last line a line still joins it; `None` without it.
    pub multiline: Option<Multiline>,
    scratch: Scratch,
    /// The rendering of the open record's fields, written after its message.
    suffix: Vec<u8>,
    /// A container's log: `--default-severity`, a piece's decoding, and each stream's open
    /// line as joined so far.
    default_severity: Severity,
    decoding: Decoding,
    joined: [Vec<u8>; 2],
    /// Per stream, the time of its open line's first piece, as written.
    first_time: [Vec<u8>; 2],
    /// Per stream, what follows a message with no fields of its own (see [`parse_pieces`]).
    plain_suffix: [Vec<u8>; 2],
    /// `--multiline`, a container's log: each stream's record as the batch builds it.
    gathering: Gathering,
}

impl Reading {
    /// A parser's reading of `layout`, joining continuation lines as `multiline` says; a
    /// container's line that says no severity is `default_severity`.
    pub(crate) fn new(
        layout: Arc<Layout>,
        multiline: Option<Multiline>,
        default_severity: Severity,
    ) -> Reading {
        Reading {
            layout,
            multiline,
            scratch: Scratch::default(),
            suffix: Vec::new(),
            default_severity,
            decoding: Decoding::default(),
            joined: Default::default(),
            first_time: Default::default(),
            plain_suffix: Default::default(),
            gathering: Gathering::default(),
        }
    }
}

/// The record a batch is building (`--multiline`): the lines after it that do not start a
/// record join it.
enum Open {
    /// No record yet: lines are read alone (the input's first lines, before any record).
    None,
    /// A record, its message at `message_start..` of the decoded bytes, its lines at
    /// `raw_start..raw_end` of the batch.
    Record {
        line_no: u64,
        timestamp: time::OffsetDateTime,
        severity: Severity,
        message_start: usize,
        lines: usize,
        raw_start: usize,
        raw_end: usize,
    },
    /// A rejected record: its continuation lines are rejected for the same reason.
    Rejected(RejectReason),
}

/// What a batch parsed with a [`Reading`] is building.
struct Building<'r> {
    parsed: Parsed,
    raw: Bytes,
    /// The messages, one after another: what the entries point into.
    decoded: Vec<u8>,
    max_line_bytes: usize,
    render: Render,
    suffix: &'r mut Vec<u8>,
    /// The log's `file` key, rendered (many logs), written after the fields.
    file: &'r [u8],
}

impl Building<'_> {
    /// Reads the line that starts a record (`text`, a slice of the batch): the record it opens,
    /// its message copied out and its fields rendered; or why it is rejected, the line kept.
    fn start(&mut self, layout: &Layout, scratch: &mut Scratch, text: &[u8], line_no: u64) -> Open {
        let line = self.raw.slice_ref(text);
        if text.len() - usize::from(text.last() == Some(&b'\r')) > self.max_line_bytes {
            let shown = line.slice(..LONG_LINE_PREFIX.min(text.len()));
            self.parsed.reject(line_no, RejectReason::LineTooLong, shown);
            return Open::Rejected(RejectReason::LineTooLong);
        }
        match layout.parse(text, scratch) {
            Outcome::Record(read) => {
                self.suffix.clear();
                write_fields(self.suffix, self.render.format, read.fields);
                if !self.file.is_empty() {
                    self.suffix.extend_from_slice(self.file);
                }
                let message_start = self.decoded.len();
                self.decoded.extend_from_slice(read.message);
                let raw_start = text.as_ptr() as usize - self.raw.as_ptr() as usize;
                Open::Record {
                    line_no,
                    timestamp: read.timestamp,
                    severity: read.severity,
                    message_start,
                    lines: 1,
                    raw_start,
                    raw_end: raw_start + text.len(),
                }
            }
            Outcome::Rejected(reason) => {
                self.parsed.reject(line_no, reason, line);
                Open::Rejected(reason)
            }
            Outcome::Blank => unreachable!("blank lines are counted before"),
        }
    }

    /// Writes out the open record, or rejects it whole when its lines outgrew
    /// `--max-line-bytes` (or `too_long`: it goes on past the batch, and did). False when it
    /// was rejected.
    fn finish(&mut self, open: Open, too_long: bool) -> bool {
        let Open::Record {
            line_no,
            timestamp,
            severity,
            message_start,
            lines,
            raw_start,
            raw_end,
        } = open
        else {
            return true;
        };
        if too_long || raw_end - raw_start > self.max_line_bytes {
            self.decoded.truncate(message_start);
            self.parsed.continued -= lines as u64 - 1;
            let raw = self.raw.clone();
            for (number, text) in (line_no..).zip(split_lines(&raw[raw_start..raw_end])) {
                if !trim_line(text).is_empty() {
                    let shown = &text[..LONG_LINE_PREFIX.min(text.len())];
                    self.parsed
                        .reject(number, RejectReason::LineTooLong, raw.slice_ref(shown));
                }
            }
            return false;
        }
        let record = ParsedRecord {
            line_no,
            timestamp,
            severity,
            message: &self.decoded[message_start..],
        };
        write_record_with(&mut self.parsed.out, self.render.format, &record, self.suffix);
        self.parsed.keep(&record, message_start);
        true
    }
}

/// [`parse_into`] for a layout other than fast `plain`: each line read by the layout (with
/// `--multiline`, continuation lines joined to the record before them), messages copied one
/// after another into the batch's `data`, structured fields rendered after them.
fn parse_layout(
    batch: &RawBatch,
    max_line_bytes: usize,
    render: Render,
    pool: Option<&Arc<EntryPool>>,
    reading: &mut Reading,
    file: &[u8],
) -> Parsed {
    let raw = batch.data.clone();
    let (first_line, head_continues, tail_too_long) =
        (batch.first_line, batch.head_continues, batch.tail_too_long);
    let Reading {
        layout,
        multiline,
        scratch,
        suffix,
        ..
    } = reading;
    let max_record_lines = multiline.map(|m| m.max_record_lines);
    let mut building = Building {
        parsed: Parsed::new(Bytes::new(), render, pool),
        decoded: decoding_buffer(pool, raw.len()),
        raw: raw.clone(),
        max_line_bytes,
        render,
        suffix,
        file,
    };
    building.parsed.size_for(raw.len());
    let mut open = match head_continues {
        Some(reason) => Open::Rejected(reason),
        None => Open::None,
    };
    for (text, line_no) in split_lines(&raw).zip(first_line..) {
        let parsed = &mut building.parsed;
        parsed.lines += 1;
        if trim_line(text).is_empty() {
            // Counted, and no end to a record.
            parsed.blank += 1;
            continue;
        }
        let offset = text.as_ptr() as usize - raw.as_ptr() as usize;
        let starts = max_record_lines.is_none() || layout.starts_record(text);
        if !starts {
            match &mut open {
                Open::Record { lines, raw_end, .. } if *lines < max_record_lines.unwrap_or(usize::MAX) => {
                    building.decoded.push(b'\n');
                    building.decoded.extend_from_slice(text.trim_ascii_end());
                    *lines += 1;
                    *raw_end = offset + text.len();
                    parsed.continued += 1;
                }
                Open::Record { .. } => {
                    // The record keeps what it has, written (or rejected whole) now, so that
                    // its rejected lines follow it; the rest of it is rejected for its fate.
                    let kept = std::mem::replace(&mut open, Open::None);
                    let reason = if building.finish(kept, false) {
                        RejectReason::RecordTooLong
                    } else {
                        RejectReason::LineTooLong
                    };
                    building.parsed.reject(line_no, reason, raw.slice_ref(text));
                    open = Open::Rejected(reason);
                }
                Open::Rejected(reason) => parsed.reject(line_no, *reason, raw.slice_ref(text)),
                // Before any record: read alone, as without --multiline.
                Open::None => {
                    let alone = building.start(layout, scratch, text, line_no);
                    building.finish(alone, false);
                }
            }
            continue;
        }
        building.finish(std::mem::replace(&mut open, Open::None), false);
        open = building.start(layout, scratch, text, line_no);
    }
    building.finish(open, tail_too_long);
    let mut parsed = building.parsed;
    parsed.decoded = building.decoded;
    parsed.raw = Some((raw, first_line));
    parsed
}

/// [`parse_into`] for a container runtime's log: each stream's pieces joined into the lines the
/// program wrote, each numbered by its last piece and read with its stream's layout (a line it
/// does not read, as written). A line grown past `--max-line-bytes` is rejected where it did,
/// its later pieces skipped; one still open where the batch is cut goes out as it is.
fn parse_pieces(
    batch: &RawBatch,
    container: &Container,
    max_line_bytes: usize,
    render: Render,
    pool: Option<&Arc<EntryPool>>,
    reading: &mut Reading,
    (file, pod): (&[u8], &[u8]),
) -> Parsed {
    let raw = batch.data.clone();
    let Reading {
        scratch,
        suffix,
        default_severity,
        decoding,
        joined,
        first_time,
        plain_suffix,
        multiline,
        gathering,
        ..
    } = reading;
    // `--multiline`: the lines of each stream joined into records; per stream, whether the
    // line being joined starts one (by its first piece, as the reader sees it) and its time.
    let rules = multiline.map(|m| Rules {
        max_lines: m.max_record_lines,
        gap: m.timeout,
        max_line_bytes,
    });
    gathering.clear();
    let mut heads: [(bool, Option<i128>); 2] = [(true, None); 2];
    // What follows the message of a line with no fields of its own, per stream: made once.
    for (s, stream) in [container::Stream::Stdout, container::Stream::Stderr]
        .into_iter()
        .enumerate()
    {
        plain_suffix[s].clear();
        let first = (&b"stream"[..], stream.as_str().as_bytes());
        write_fields_after(
            &mut plain_suffix[s],
            render.format,
            first,
            pod,
            &Fields::default(),
        );
        plain_suffix[s].extend_from_slice(file);
    }
    let mut written = Written {
        parsed: Parsed::new(Bytes::new(), render, pool),
        decoded: decoding_buffer(pool, raw.len()),
        render,
        scratch,
        suffix,
        plain_suffix,
        file,
        pod,
        default_severity: *default_severity,
    };
    written.parsed.size_for(raw.len());
    // Where the lines cut open at the batch's end have their last piece: they end there, in
    // order with the others.
    let last = match batch.cut_open {
        true => last_pieces(container.runtime, &raw, decoding),
        false => [None, None],
    };
    let mut open = container::Open::from_skipping_bits(batch.head_skipping);
    // Per stream, the open line's last piece's line (its first piece's time in `first_time`).
    let mut first: [Option<u64>; 2] = [None, None];
    joined.iter_mut().for_each(Vec::clear);
    for (text, line_no) in split_lines(&raw).zip(batch.first_line..) {
        let parsed = &mut written.parsed;
        parsed.lines += 1;
        let Some(piece) = container::decode(container.runtime, text, decoding) else {
            if trim_line(text).is_empty() {
                parsed.blank += 1;
            } else {
                parsed.reject(line_no, RejectReason::NotInLayout, raw.slice_ref(text));
            }
            continue;
        };
        let s = piece.stream as usize;
        let content = piece.content(text, decoding);
        let at = text.as_ptr() as usize - raw.as_ptr() as usize;
        let step = open.step(piece.stream, piece.last, content.len(), max_line_bytes);
        if rules.is_some() && first[s].is_none() && matches!(step, Step::Joins | Step::Ends) {
            // A line's first piece: whether it starts a record, and its time.
            heads[s] = (
                container.starts_record(piece.stream, content),
                piece.nanos(text, decoding),
            );
        }
        match step {
            Step::Skipped => parsed.continued += 1,
            Step::TooLong => {
                if first[s].take().is_some() {
                    parsed.continued += 1;
                }
                joined[s].clear();
                let shown = &text[..LONG_LINE_PREFIX.min(text.len())];
                parsed.reject(line_no, RejectReason::LineTooLong, raw.slice_ref(shown));
            }
            Step::Joins if last[s] != Some(at) => {
                match &mut first[s] {
                    None => {
                        first_time[s].clear();
                        first_time[s].extend_from_slice(piece.time_bytes(text, decoding));
                        first[s] = Some(line_no);
                    }
                    Some(last_line) => {
                        *last_line = line_no;
                        parsed.continued += 1;
                    }
                }
                joined[s].extend_from_slice(content);
            }
            // Its last piece, or the last the batch has of a line cut open.
            Step::Ends | Step::Joins => {
                let (time, message) = match first[s].take() {
                    None => (piece.time_bytes(text, decoding), content),
                    Some(_) => {
                        parsed.continued += 1;
                        joined[s].extend_from_slice(content);
                        (&first_time[s][..], &joined[s][..])
                    }
                };
                let line = WrittenLine {
                    stream: piece.stream,
                    message,
                    time,
                    line_no,
                };
                match &rules {
                    None => written.line(&container.inner[s], &line, b"", || raw.slice_ref(text)),
                    Some(rules) => {
                        let at = (&raw, text);
                        gathering.line(&mut written, &container.inner[s], &line, heads[s], rules, at);
                    }
                }
                joined[s].clear();
            }
        }
    }
    // Open still (not cut where the reader said): out as they are, never dropped.
    for stream in [container::Stream::Stdout, container::Stream::Stderr] {
        let s = stream as usize;
        if let Some(line_no) = first[s].take() {
            let line = WrittenLine {
                stream,
                message: &joined[s],
                time: &first_time[s],
                line_no,
            };
            match &rules {
                None => written.line(&container.inner[s], &line, b"", Bytes::new),
                Some(rules) => gathering.line(
                    &mut written,
                    &container.inner[s],
                    &line,
                    heads[s],
                    rules,
                    (&raw, &[]),
                ),
            }
        }
    }
    // The records open at the batch's end are whole: the reader cut where each stream's next
    // line starts one.
    gathering.finish_all(&mut written, &container.inner, &raw);
    let mut parsed = written.parsed;
    if rules.is_some() {
        // Written as each was whole: out in the order they started (a batch holds every line
        // of its records, so the batches' order does the rest).
        parsed.sort_by_line();
    }
    parsed.decoded = written.decoded;
    parsed.raw = Some((raw, batch.first_line));
    // A line of a megabyte leaves its stream's buffer that large: freed, rather than kept by
    // every parser for the rest of the run (most lines are one piece, and need none).
    for line in joined.iter_mut().filter(|line| line.capacity() > JOINED_KEPT) {
        *line = Vec::new();
    }
    parsed
}

/// The most a parser keeps of the buffer a stream's pieces were joined in, between batches.
const JOINED_KEPT: usize = 64 * 1024;

/// Per stream, where in `raw` the last piece of it starts when that piece leaves a line open
/// (read from the end, until both streams are found).
fn last_pieces(runtime: container::Runtime, raw: &[u8], decoding: &mut Decoding) -> [Option<usize>; 2] {
    let (mut found, mut last) = ([false; 2], [None; 2]);
    let mut end = raw.len();
    if raw.last() == Some(&b'\n') {
        end -= 1;
    }
    while found != [true; 2] {
        let start = memchr::memrchr(b'\n', &raw[..end]).map_or(0, |i| i + 1);
        if let Some(piece) = container::decode(runtime, &raw[start..end], decoding) {
            let s = piece.stream as usize;
            if !found[s] {
                found[s] = true;
                last[s] = (!piece.last).then_some(start);
            }
        }
        if start == 0 {
            break;
        }
        end = start - 1;
    }
    last
}

/// One line a program wrote, its pieces joined.
struct WrittenLine<'a> {
    stream: container::Stream,
    message: &'a [u8],
    /// Its first piece's time, as the runtime wrote it (read only when the line has none).
    time: &'a [u8],
    /// Its last piece's line.
    line_no: u64,
}

/// What a container log's batch is writing: the records, their messages, how they render.
struct Written<'r> {
    parsed: Parsed,
    /// The messages, one after another: what the entries point into.
    decoded: Vec<u8>,
    render: Render,
    scratch: &'r mut Scratch,
    suffix: &'r mut Vec<u8>,
    /// Per stream, what follows the message of a line with no fields of its own.
    plain_suffix: &'r [Vec<u8>; 2],
    file: &'r [u8],
    /// What the log's path says of its pod, rendered (see [`container::path_fields`]).
    pod: &'r [u8],
    default_severity: Severity,
}

impl Written<'_> {
    /// Writes `line`, read with `inner` (a line it does not read, as written), `more` after its
    /// message (the further lines of a record, `--multiline`); `shown` gives its last piece,
    /// for a reject.
    fn line(&mut self, inner: &Inner, line: &WrittenLine<'_>, more: &[u8], shown: impl FnOnce() -> Bytes) {
        let Written {
            parsed,
            decoded,
            render,
            scratch,
            suffix,
            plain_suffix,
            file,
            pod,
            default_severity,
        } = self;
        let time = || match parse_timestamp(line.time) {
            Some((time, used)) if used == line.time.len() => Some(time),
            _ => None,
        };
        let read = match inner {
            Inner::Layout(layout) => layout.parse_written(line.message, scratch, &time, *default_severity),
            Inner::Unjudged | Inner::AsWritten => Outcome::Rejected(RejectReason::NotInLayout),
        };
        let (timestamp, severity, message, fields) = match read {
            Outcome::Record(record) => (
                Some(record.timestamp),
                record.severity,
                record.message,
                Some(record.fields),
            ),
            // Not in its layout (a panic's trace on a JSON logger's stream): as written.
            Outcome::Rejected(_) | Outcome::Blank => {
                let message = line.message.trim_ascii_end();
                if trim_line(message).is_empty() {
                    parsed.blank += 1;
                    return;
                }
                (time(), *default_severity, message, None)
            }
        };
        let Some(timestamp) = timestamp else {
            parsed.reject(line.line_no, RejectReason::BadTimestamp, shown());
            return;
        };
        let suffix: &[u8] = match fields.filter(|f| !f.is_empty()) {
            None => &plain_suffix[line.stream as usize],
            Some(fields) => {
                suffix.clear();
                let stream = (&b"stream"[..], line.stream.as_str().as_bytes());
                write_fields_after(suffix, render.format, stream, pod, fields);
                suffix.extend_from_slice(file);
                suffix
            }
        };
        let message_start = decoded.len();
        decoded.extend_from_slice(message);
        decoded.extend_from_slice(more);
        let record = ParsedRecord {
            line_no: line.line_no,
            timestamp,
            severity,
            message: &decoded[message_start..],
        };
        write_record_with(&mut parsed.out, render.format, &record, suffix);
        parsed.keep(&record, message_start);
    }
}

/// `--multiline` on a container's log: what a record of a stream may hold.
struct Rules {
    /// `--max-record-lines`.
    max_lines: usize,
    /// `--multiline-timeout` (see [`container::Records::step`]).
    gap: std::time::Duration,
    /// `--max-line-bytes`, which a record's whole message is held to.
    max_line_bytes: usize,
}

/// `--multiline` on a container's log: each stream's record as a batch builds it, stepped
/// by [`container::Records`] as the reader steps it.
#[derive(Default)]
struct Gathering {
    records: container::Records,
    open: [Gathered; 2],
}

/// The record one stream is building: its first line (as written, read with its layout once
/// the record is whole) and what its further lines add.
#[derive(Default)]
struct Gathered {
    state: Gathers,
    /// Its first line's message as the program wrote it, and its time as the runtime did.
    first: Vec<u8>,
    time: Vec<u8>,
    line_no: u64,
    /// Its further lines, each after a `\n`.
    more: Vec<u8>,
    lines: usize,
    /// Its first line's last piece, for a reject: where in the batch.
    shown: std::ops::Range<usize>,
}

/// Where a stream's record stands.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Gathers {
    /// None open in this batch.
    #[default]
    None,
    /// One is open.
    Record,
    /// One was rejected: its further lines are rejected for the same reason.
    Rejected(RejectReason),
}

impl Gathering {
    /// A batch starts with no record open.
    fn clear(&mut self) {
        self.records = container::Records::default();
        for open in &mut self.open {
            open.state = Gathers::None;
        }
    }

    /// Takes one line the program wrote to `line.stream` (`head`: whether it starts a record,
    /// its runtime time in nanoseconds; `(raw, shown)`: the batch, and the line's last piece
    /// in it, for a reject): it starts a record, joins the one open, or is written alone.
    fn line(
        &mut self,
        written: &mut Written<'_>,
        inner: &Inner,
        line: &WrittenLine<'_>,
        head: (bool, Option<i128>),
        rules: &Rules,
        (raw, shown): (&Bytes, &[u8]),
    ) {
        let s = line.stream as usize;
        if trim_line(line.message).is_empty() {
            // Counted, and no end to a record (as without a container).
            written.parsed.blank += 1;
            return;
        }
        // Sliced only for a reject: a slice's count, taken and dropped per line by every
        // parser at once, cost an eighth of the run.
        let prefix = |shown: &[u8]| raw.slice_ref(&shown[..LONG_LINE_PREFIX.min(shown.len())]);
        let range = |shown: &[u8]| match shown.is_empty() {
            true => 0..0,
            false => {
                let start = shown.as_ptr() as usize - raw.as_ptr() as usize;
                start..start + shown.len()
            }
        };
        match self.records.step(line.stream, head.0, head.1, rules.gap) {
            container::Joins::Starts => {
                self.finish(s, written, inner, raw);
                let open = &mut self.open[s];
                open.state = Gathers::Record;
                open.first.clear();
                open.first.extend_from_slice(line.message);
                open.time.clear();
                open.time.extend_from_slice(line.time);
                open.more.clear();
                (open.line_no, open.lines, open.shown) = (line.line_no, 1, range(shown));
            }
            container::Joins::Alone => {
                self.finish(s, written, inner, raw);
                written.line(inner, line, b"", || raw.slice_ref(shown));
            }
            container::Joins::Continues => {
                let open = &mut self.open[s];
                let grown = open.first.len() + open.more.len() + 1 + line.message.trim_ascii_end().len();
                match open.state {
                    Gathers::Record if open.lines >= rules.max_lines => {
                        // It keeps what it has, written now so that its rejected lines follow it.
                        self.finish(s, written, inner, raw);
                        let shown = raw.slice_ref(shown);
                        written
                            .parsed
                            .reject(line.line_no, RejectReason::RecordTooLong, shown);
                        self.open[s].state = Gathers::Rejected(RejectReason::RecordTooLong);
                    }
                    Gathers::Record if grown > rules.max_line_bytes => {
                        // Rejected once for what it holds, numbered by its first line; what
                        // follows of it, line by line.
                        let whole = prefix(&raw[open.shown.clone()]);
                        written
                            .parsed
                            .reject(open.line_no, RejectReason::LineTooLong, whole);
                        written
                            .parsed
                            .reject(line.line_no, RejectReason::LineTooLong, prefix(shown));
                        open.state = Gathers::Rejected(RejectReason::LineTooLong);
                    }
                    Gathers::Record => {
                        open.more.push(b'\n');
                        open.more.extend_from_slice(line.message.trim_ascii_end());
                        open.lines += 1;
                        written.parsed.continued += 1;
                    }
                    Gathers::Rejected(reason) => {
                        let shown = if reason == RejectReason::LineTooLong {
                            prefix(shown)
                        } else {
                            raw.slice_ref(shown)
                        };
                        written.parsed.reject(line.line_no, reason, shown);
                    }
                    // A batch starts with none open: the reader cut where none continues.
                    Gathers::None => written.line(inner, line, b"", || raw.slice_ref(shown)),
                }
            }
        }
    }

    /// Writes stream `s`'s open record, if any: its first line read with `inner`, its further
    /// lines after the message.
    fn finish(&mut self, s: usize, written: &mut Written<'_>, inner: &Inner, raw: &Bytes) {
        let open = &mut self.open[s];
        if open.state != Gathers::Record {
            return;
        }
        open.state = Gathers::None;
        let line = WrittenLine {
            stream: if s == 0 {
                container::Stream::Stdout
            } else {
                container::Stream::Stderr
            },
            message: &open.first,
            time: &open.time,
            line_no: open.line_no,
        };
        written.line(inner, &line, &open.more, || raw.slice(open.shown.clone()));
    }

    /// Writes the records still open (in either order: the batch's records are put in line
    /// order after).
    fn finish_all(&mut self, written: &mut Written<'_>, inner: &[Inner; 2], raw: &Bytes) {
        for (s, inner) in inner.iter().enumerate() {
            self.finish(s, written, inner, raw);
        }
    }
}

/// A record as an ingest publisher sends it (`-f json`), its strings borrowed from the message
/// unless they hold escapes.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
struct Published<'a> {
    line: u64,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    severity: Cow<'a, str>,
    #[serde(borrow)]
    message: Cow<'a, str>,
    /// Many logs: the log the record is of.
    #[serde(borrow, default)]
    file: Option<Cow<'a, str>>,
}

impl<'a> Published<'a> {
    /// Reads a line exactly as ingest's `-f json` writes it (the four keys in its order, no
    /// whitespace, no escapes) without a general JSON parser, which costs a collector a third
    /// of its time. `None` for anything else, which `serde_json` then reads: the two agree on
    /// every line this accepts.
    fn own(line: &'a [u8]) -> Option<Published<'a>> {
        let rest = line.strip_prefix(b"{\"line\":")?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        let line_no = rest[..digits]
            .iter()
            .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?;
        let rest = rest[digits..].strip_prefix(b",\"timestamp\":\"")?;
        let (timestamp, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(b",\"severity\":\"")?;
        let (severity, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(b",\"message\":\"")?;
        let (message, rest) = plain_string(rest)?;
        let (file, rest) = match rest.strip_prefix(b",\"file\":\"") {
            Some(rest) => plain_string(rest).map(|(file, rest)| (Some(Cow::Borrowed(file)), rest))?,
            None => (None, rest),
        };
        (rest == b"}").then_some(Published {
            line: line_no,
            timestamp: Cow::Borrowed(timestamp),
            severity: Cow::Borrowed(severity),
            message: Cow::Borrowed(message),
            file,
        })
    }
}

/// The body of a JSON string (after its opening quote) when it has no escapes and is valid as
/// it stands (no control bytes, UTF-8), and what follows its closing quote.
fn plain_string(s: &[u8]) -> Option<(&str, &[u8])> {
    let end = memchr::memchr2(b'"', b'\\', s)?;
    if s[end] != b'"' {
        return None;
    }
    let body = &s[..end];
    // Folded without a branch per byte, so that the loops vectorize: messages are long.
    if body.iter().fold(false, |control, &b| control | (b < 0x20)) {
        return None;
    }
    let text = if body.iter().fold(0, |high, &b| high | b) < 0x80 {
        // SAFETY: every byte is below 0x80: ASCII, which is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(body) }
    } else {
        std::str::from_utf8(body).ok()?
    };
    Some((text, &s[end + 1..]))
}

/// The `"fields"` a publisher reading a structured layout added to a record.
#[derive(serde::Deserialize)]
struct PublishedFields<'a> {
    #[serde(borrow)]
    fields: Option<&'a serde_json::value::RawValue>,
}

/// A collected record: its line number, instant, severity, message, its fields as a raw JSON
/// object when it has any, and its log's path (many logs).
type Decoded<'a> = (
    u64,
    OffsetDateTime,
    Severity,
    Cow<'a, str>,
    Option<&'a [u8]>,
    Option<Cow<'a, str>>,
);

/// Reads one line of a collected message as a record; or why it is not one.
fn decode(line: &[u8]) -> Result<Decoded<'_>, RejectReason> {
    let (published, fields) = match Published::own(line) {
        Some(published) => (published, None),
        None => {
            let published = serde_json::from_slice(line).map_err(|_| RejectReason::NotARecord)?;
            // Only records from a structured layout have them: no second look at the others.
            let fields = match memchr::memmem::find(line, b"\"fields\"") {
                Some(_) => serde_json::from_slice::<PublishedFields<'_>>(line)
                    .map_err(|_| RejectReason::NotARecord)?
                    .fields
                    .map(|raw| raw.get().as_bytes()),
                None => None,
            };
            (published, fields)
        }
    };
    let timestamp = match parse_timestamp(published.timestamp.as_bytes()) {
        Some((timestamp, used)) if used == published.timestamp.len() => timestamp,
        _ => return Err(RejectReason::BadTimestamp),
    };
    let severity = Severity::from_field(published.severity.as_bytes()).ok_or(RejectReason::BadSeverity)?;
    Ok((
        published.line,
        timestamp,
        severity,
        published.message,
        fields,
        published.file,
    ))
}

/// Parses a collector's batch: every line of every message (a record, or JSON Lines packed by
/// `--batch-bytes`), rendered with where it came from. Rejects are numbered by the message's
/// stream sequence.
fn parse_messages(messages: &[Fetched], render: Render, pool: &Arc<EntryPool>) -> Parsed {
    let mut parsed = Parsed::new(Bytes::new(), render, Some(pool));
    parsed.from_stream = true;
    // The messages, unescaped, one after another: what the entries point into.
    let mut decoded = decoding_buffer(Some(pool), 0);
    let (mut fields, mut suffix) = (Fields::default(), Vec::new());
    for message in messages {
        let origin = Origin {
            source: message.source(),
            subject: message.subject.as_bytes(),
        };
        if message.payload.is_empty() {
            // No line in it, but a message all the same: counted, and rejected as no record.
            parsed.lines += 1;
            parsed.reject(message.seq, RejectReason::NotARecord, Bytes::new());
            continue;
        }
        for line in split_lines(&message.payload) {
            parsed.lines += 1;
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                parsed.blank += 1;
                continue;
            }
            match decode(trimmed) {
                Err(reason) => {
                    let line = message.payload.slice_ref(line.trim_ascii_end());
                    parsed.reject(message.seq, reason, line);
                }
                Ok((line_no, timestamp, severity, text, raw_fields, file)) => {
                    let record = ParsedRecord {
                        line_no,
                        timestamp,
                        severity,
                        message: text.as_bytes(),
                    };
                    suffix.clear();
                    if let Some(raw) = raw_fields {
                        fields.clear();
                        if crate::layout::json::members(raw, &mut fields).is_err() {
                            let line = message.payload.slice_ref(line.trim_ascii_end());
                            parsed.reject(message.seq, RejectReason::NotARecord, line);
                            continue;
                        }
                        write_fields(&mut suffix, render.format, &fields);
                    }
                    if let Some(file) = file {
                        crate::format::write_file_key(&mut suffix, render.format, &file);
                    }
                    write_collected(&mut parsed.out, render.format, &record, origin, &suffix);
                    parsed.keep(&record, decoded.len());
                    decoded.extend_from_slice(text.as_bytes());
                }
            }
        }
    }
    parsed.decoded = decoded;
    parsed
}

/// Many logs: per log, by the index its batches carry, what its records carry.
pub(crate) struct PerLog {
    /// Its `file` key, rendered.
    pub files: Vec<Vec<u8>>,
    /// What its path says of its pod, rendered for a container log's records.
    pub pods: Vec<Vec<u8>>,
    /// The index of its reading in [`Worker::readings`] (`None`: fast `plain`).
    pub readings: Vec<Option<usize>>,
}

/// One parser task and what it needs.
pub(crate) struct Worker {
    /// Which worker, from 0, for the log.
    pub id: usize,
    /// Where entry lists come from and go back to.
    pub pool: Arc<EntryPool>,
    /// Longer lines are rejected.
    pub max_line_bytes: usize,
    /// How records and rejected lines are rendered.
    pub render: Render,
    /// Where the counts go.
    pub metrics: Arc<Metrics>,
    /// How lines are read, when not with fast `plain`.
    pub reading: Option<Reading>,
    /// One log: what its path says of its pod, rendered for a container log's records.
    pub pod: Vec<u8>,
    /// Many logs: what each log's batches are parsed with.
    pub per_log: Option<PerLog>,
    /// Many logs: a reading per layout the logs are read with.
    pub readings: Vec<Reading>,
}

impl Worker {
    /// Parses batches until the reader's channel is closed and empty, or `cancel` fires.
    ///
    /// # Errors
    /// None today; the signature matches the other stages so the pipeline treats them alike.
    pub(crate) async fn run(
        mut self,
        lines_rx: async_channel::Receiver<RawBatch>,
        parsed_tx: async_channel::Sender<ParsedBatch>,
        cancel: CancellationToken,
    ) -> Result<(), Error> {
        let times = &self.metrics.parser;
        let mut lines = 0;
        while let Some(batch) = recv(&lines_rx, &cancel, times).await {
            let (parsed, end) = if batch.messages.is_empty() {
                // The batch's log's `file` key and layout (many logs), or the run's.
                let (file, pod, reading): (&[u8], &[u8], Option<&mut Reading>) =
                    match (&self.per_log, batch.at) {
                        (Some(logs), Some(at)) => (
                            &logs.files[at.log as usize],
                            &logs.pods[at.log as usize],
                            logs.readings[at.log as usize].map(|r| &mut self.readings[r]),
                        ),
                        _ => (b"", &self.pod, self.reading.as_mut()),
                    };
                let parsed = if batch.long_line {
                    Parsed::long_line(batch.first_line, batch.data, self.render)
                } else if let Some(reading) = reading {
                    let layout = reading.layout.clone();
                    match layout.container() {
                        Some(container) => parse_pieces(
                            &batch,
                            container,
                            self.max_line_bytes,
                            self.render,
                            Some(&self.pool),
                            reading,
                            (file, pod),
                        ),
                        None => parse_layout(
                            &batch,
                            self.max_line_bytes,
                            self.render,
                            Some(&self.pool),
                            reading,
                            file,
                        ),
                    }
                } else {
                    parse_into(
                        batch.first_line,
                        batch.data,
                        self.max_line_bytes,
                        self.render,
                        file,
                        Some(&self.pool),
                    )
                };
                let end = Position {
                    offset: batch.end_offset,
                    lines: batch.first_line - 1 + parsed.lines,
                    continues: batch.tail_continues,
                    skipping: batch.tail_skipping,
                    context: batch.end_context,
                };
                (parsed, end)
            } else {
                let parsed = parse_messages(&batch.messages, self.render, &self.pool);
                // The fetcher hands over messages; their lines are known once split here.
                add(&self.metrics.lines_read, parsed.lines);
                // A stream's position is the last message's sequence, in both fields.
                let end = Position {
                    offset: batch.end_offset,
                    lines: batch.end_offset,
                    continues: None,
                    skipping: 0,
                    context: None,
                };
                (parsed, end)
            };
            lines += parsed.lines;
            add(&self.metrics.lines_parsed, parsed.lines);
            let out = ParsedBatch {
                seq: batch.seq,
                end,
                at: batch.at,
                parsed,
                permit: batch.permit,
            };
            if !send(&parsed_tx, out, &cancel, times).await {
                break;
            }
        }
        tracing::debug!("parser worker finished: {lines} (worker {})", self.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Rejected;
    use proptest::prelude::*;

    #[test]
    fn ingests_own_json_lines_take_the_fast_path() {
        let record = ParsedRecord {
            line_no: 42,
            timestamp: time::macros::datetime!(2026-04-15 00:00:07.25 UTC),
            severity: Severity::Warn,
            message: b"disk 91% full on /var",
        };
        let mut line = Vec::new();
        write_record(&mut line, Format::Json, &record);
        let own = Published::own(line.trim_ascii_end()).expect("the fast path reads it");
        assert_eq!(own.line, 42);
        assert_eq!(own.message, "disk 91% full on /var");
        // Escapes go the general way.
        assert_eq!(
            Published::own(br#"{"line":1,"timestamp":"t","severity":"s","message":"a\"b"}"#),
            None
        );
        // Many logs: the log's path after the message.
        line.truncate(line.trim_ascii_end().len());
        line.pop();
        crate::format::write_file_key(&mut line, Format::Json, "/var/log/app.log");
        line.push(b'}');
        let own = Published::own(&line).expect("the fast path reads it");
        assert_eq!(own.file.as_deref(), Some("/var/log/app.log"));
    }

    /// A JSON line close to ingest's: its pieces, each maybe spoiled.
    fn near_own_line() -> impl Strategy<Value = Vec<u8>> {
        let piece = |good: &'static str| {
            prop_oneof![
                4 => Just(good.as_bytes().to_vec()),
                1 => proptest::collection::vec(
                    proptest::sample::select(vec![b'"', b'\\', b'{', b'}', b':', b',', b' ', b'0', b'7', b'a', b'\n', 0x01, 0x7f, 0xc3, 0xa9, 0xff]),
                    0..6
                ),
            ]
        };
        (
            piece("{\"line\":"),
            prop_oneof![
                Just("0".to_owned()),
                Just("007".to_owned()),
                Just("18446744073709551616".to_owned()),
                any::<u64>().prop_map(|n| n.to_string())
            ],
            piece(",\"timestamp\":\"2026-04-15T00:00:07Z"),
            piece("\",\"severity\":\"INFO"),
            piece("\",\"message\":\""),
            proptest::collection::vec(any::<u8>(), 0..12),
            prop_oneof![Just(Vec::new()), piece("\",\"file\":\"/var/log/a.log")],
            piece("\"}"),
        )
            .prop_map(|(a, n, b, c, d, m, f, e)| [a, n.into_bytes(), b, c, d, m, f, e].concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn the_fast_path_agrees_with_serde_on_every_line_it_accepts(line in near_own_line()) {
            if let Some(own) = Published::own(&line) {
                let general: Result<Published<'_>, _> = serde_json::from_slice(&line);
                prop_assert_eq!(Some(own), general.ok(), "{}", String::from_utf8_lossy(&line));
            }
        }
    }

    /// Lines in the neighbourhood of every layout: pieces of each, shuffled and spoiled.
    fn layout_soup() -> impl Strategy<Value = Vec<u8>> {
        let piece = proptest::sample::select(vec![
            "2026-04-15T00:00:01Z INFO started",
            "2026-04-15 10:00:00,123 - app - ERROR - boom",
            "2026-04-15 10:00:00.123 | WARNING  | m:f:1 - w",
            "2026-04-15T10:00:00.1Z [info     ] e k=v",
            "[2026-04-15T10:00:00Z WARN  app] x",
            "2026-04-15 10:00:00.123 UTC [1] LOG:  y",
            "2026-04-15 10:00:00.123 UTC [1] DETAIL:  z",
            "2026/04/15 10:00:00 [error] 1#0: *1 q",
            "{\"time\":1776247200123,\"level\":30,\"msg\":\"j\",\"a\":[1,{\"b\":null}]}",
            "{\"ts\":\"2026-04-15T00:00:01Z\",\"msg\":\"a\\nb\",\"msg\":1}",
            "time=2026-04-15T00:00:01Z level=info msg=\"a \\\"q\\\"\" k=v flag",
            "<34>1 2026-04-15T10:00:00Z h a 1 - [x y=\"]\"] m",
            "<13>Apr 15 10:00:00 host tag[1]: m",
            "Traceback (most recent call last):",
            "\tat com.example.A.b(A.java:1)",
            "  File \"x.py\", line 1",
            "",
            "   ",
            "{",
            "caf\u{e9} \u{1}",
        ]);
        let spoil = proptest::collection::vec(
            proptest::sample::select(vec![
                b'"', b'\\', b'{', b'=', b' ', b'\t', b'\r', b'0', b':', 0xff, 0x00,
            ]),
            0..3,
        );
        proptest::collection::vec((piece, spoil, any::<bool>()), 0..30).prop_map(|lines| {
            let mut out = Vec::new();
            for (line, spoil, spoiled) in lines {
                out.extend_from_slice(line.as_bytes());
                if spoiled {
                    let at = out.len() - line.len().min(out.len()) / 2;
                    for (i, b) in spoil.into_iter().enumerate() {
                        out.insert((at + i).min(out.len()), b);
                    }
                }
                out.push(b'\n');
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every layout, with and without --multiline: every line gets exactly one outcome, and
        /// every record is one JSON line (or one text record) with its line number.
        #[test]
        fn every_layout_gives_every_line_one_outcome(data in layout_soup(), multiline in any::<bool>()) {
            let names = ["plain", "json", "logfmt", "syslog"].into_iter().chain(crate::layout::NAMED.iter().map(|(n, _)| *n));
            for name in names {
                let layout = Arc::new(Layout::named(name, crate::layout::Clock::utc()).unwrap());
                let max_lines = multiline.then_some(3);
                let parsed = parse_batch_with(1, Bytes::from(data.clone()), layout.clone(), max_lines, Format::Json);
                let records: Vec<_> = parsed.records().collect();
                prop_assert_eq!(parsed.lines, split_lines(&data).count() as u64);
                prop_assert_eq!(parsed.blank + parsed.rejects.len() as u64 + records.len() as u64 + parsed.continued, parsed.lines, "{}", name);
                let rendered: Vec<&[u8]> = split_lines(parsed.rendered()).collect();
                prop_assert_eq!(rendered.len(), records.len());
                for (line, record) in rendered.iter().zip(&records) {
                    let value: serde_json::Value = serde_json::from_slice(line).expect("a JSON line");
                    prop_assert_eq!(&value["line"], &serde_json::Value::from(record.line_no));
                }
                let text = parse_batch_with(1, Bytes::from(data.clone()), layout, max_lines, Format::Text);
                // A record's line has its number in the first six columns; a continuation is
                // indented past them.
                let starts = split_lines(text.rendered()).filter(|l| l.get(5).is_some_and(u8::is_ascii_digit)).count();
                prop_assert_eq!(starts, records.len(), "{}: one numbered text line per record", name);
            }
        }
    }

    #[test]
    fn a_batch_sorts_lines_into_blank_rejected_and_parsed_with_their_numbers() {
        let data =
            Bytes::from_static(b"2026-04-15T00:00:01Z INFO a\n\nbad line\n2026-04-15T00:00:02Z WARN b\n");
        let parsed = parse_batch(10, data);
        assert_eq!((parsed.lines, parsed.blank), (4, 1));
        assert_eq!(
            parsed.rejects,
            [Rejected {
                line_no: 12,
                reason: RejectReason::BadTimestamp,
                line: Bytes::from_static(b"bad line")
            }]
        );
        let records: Vec<(u64, &[u8])> = parsed.records().map(|r| (r.line_no, r.message)).collect();
        assert_eq!(records, [(10, &b"a"[..]), (13, &b"b"[..])]);
    }
}
