//! What flows between the stages: a source's [`RawBatch`]es of bytes (or [`Fetched`] messages),
//! the parsers' [`ParsedBatch`]es and the validator's [`ValidBatch`]es, which the sinks take.
//!
//! Below the sources, the stages and the sinks alike, so that each of them names a batch without
//! importing another. A batch holds its slot of the in-flight window from the source to the
//! writer: dropping it is what lets the source read on.

use std::sync::{Arc, Mutex};

use async_nats::Subject;
use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::checkpoint::{At, Fingerprint, Position};
use crate::format::{Format, write_reject};
use crate::record::{ParsedRecord, RawRecord, RejectReason, Severity, split_lines};

/// How many input bytes a source puts in one batch at most: what the file source asks for per
/// `read(2)`, and a collector's bound on message bytes per batch.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The in-flight window: slots a batch takes before it is sent and frees once written, so that a
/// slow writer stops the source and memory is bounded whatever the input.
///
/// A batch takes a slot per [`CHUNK_BYTES`] of input it holds, so that batches of lines of a
/// megabyte hold no more in flight than as many full chunks would; but never more than what a
/// sink holding [`Window::hold`] slots leaves, or the source could wait for slots forever.
#[derive(Clone, Debug)]
pub struct Window {
    free: Arc<Semaphore>,
    /// Slots in all.
    size: usize,
}

impl Window {
    /// A window of `size` slots (at least one).
    pub fn new(size: usize) -> Window {
        let size = size.max(1);
        Window {
            free: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// The slots a sink may keep between two sends (batches sent, not yet stored): half, so
    /// that the source keeps slots to read ahead while acknowledgements come.
    pub fn hold(&self) -> usize {
        self.size / 2
    }

    /// The slots a batch of `bytes` of input takes: one per whole chunk (a chunk's lines with a
    /// line carried over from the read before are one).
    fn slots_for(&self, bytes: usize) -> u32 {
        let heaviest = self.size - self.hold();
        (bytes / CHUNK_BYTES).clamp(1, heaviest) as u32
    }

    /// Slots for a batch of `bytes`, if they are free now.
    pub fn try_take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.free)
            .try_acquire_many_owned(self.slots_for(bytes))
            .ok()
    }

    /// Slots for a batch of `bytes`, once they are free.
    pub async fn take(&self, bytes: usize) -> OwnedSemaphorePermit {
        Arc::clone(&self.free)
            .acquire_many_owned(self.slots_for(bytes))
            .await
            .expect("the window is never closed")
    }
}

/// Consecutive whole lines of input, a zero-copy slice of one read chunk.
#[derive(Debug)]
pub struct RawBatch {
    /// Position in the input, from 0; the validator restores order by it.
    pub seq: u64,
    /// Line number of the first line in `data`.
    pub first_line: u64,
    /// The lines, each ending in `\n` except possibly the input's last.
    pub data: Bytes,
    /// `data` is the first bytes of one line longer than `--max-line-bytes`.
    pub long_line: bool,
    /// `--multiline`: the batch's last record goes on in the next batch and is longer than
    /// `--max-line-bytes`: rejected whole.
    pub tail_too_long: bool,
    /// `--multiline`: the batch starts with continuation lines of a record that kept what it
    /// could in an earlier batch (or was rejected there): they are rejected for this reason.
    pub head_continues: Option<RejectReason>,
    /// `--multiline`: the batch ends inside a record past what it keeps; the lines after it
    /// continue that record and are rejected for this reason (the next batch's `head_continues`).
    pub tail_continues: Option<RejectReason>,
    /// A container's log: the streams (bits, see [`crate::checkpoint::Position::skipping`])
    /// whose pieces are skipped from the batch's start, up to the last piece of a line too long.
    pub head_skipping: u8,
    /// The same after the batch's end: the next batch's `head_skipping`.
    pub tail_skipping: u8,
    /// A container's log: lines still open at the batch's end go out as they are (the input
    /// ended, or they waited too long for their last piece).
    pub cut_open: bool,
    /// Input bytes consumed through the end of this batch, from where the run started reading.
    pub end_offset: u64,
    /// A fingerprint of the input's bytes just before `end_offset`, when the batch holds them
    /// (not the prefix of a line too long to hold): the checkpoint tells files apart by it.
    pub end_context: Option<Fingerprint>,
    /// One slot of the in-flight window, released when the writer is done with the batch.
    pub(crate) permit: OwnedSemaphorePermit,
    /// A collector's batch: the messages fetched (`data` is empty; `end_offset` is the last
    /// one's stream sequence).
    pub messages: Vec<Fetched>,
    /// Many logs: which log and file the batch is of.
    pub at: Option<At>,
}

impl RawBatch {
    /// The batch's lines with their numbers.
    pub fn records(&self) -> impl Iterator<Item = RawRecord<'_>> {
        split_lines(&self.data)
            .zip(self.first_line..)
            .map(|(text, line_no)| RawRecord { line_no, text })
    }
}

/// How much of a too-long line is kept, for the rejects file.
pub const LONG_LINE_PREFIX: usize = 1024;

/// One fetched message, on its way to a parser.
#[derive(Debug)]
pub struct Fetched {
    /// Its stream sequence.
    pub seq: u64,
    /// The subject it was published on.
    pub subject: Subject,
    /// Its publisher, the `Ingest-Source` header.
    pub source: Option<Arc<str>>,
    /// Its body: one record, or JSON Lines packed by `--batch-bytes`.
    pub payload: Bytes,
}

impl Fetched {
    /// The publisher, from the `Ingest-Source` header.
    pub fn source(&self) -> Option<&[u8]> {
        self.source.as_deref().map(str::as_bytes)
    }
}

/// A line that did not follow the grammar, kept whole for the rejects file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based input line number.
    pub line_no: u64,
    /// Why it was rejected.
    pub reason: RejectReason,
    /// The original line without its `\n`.
    pub line: Bytes,
}

/// A parsed line stored in its batch: the message is a range of the batch's bytes, so a
/// record costs no allocation and no reference count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) line_no: u64,
    timestamp: OffsetDateTime,
    severity: Severity,
    message_start: u32,
    message_len: u32,
    /// Where the record's rendering ends in [`Parsed::out`]; it starts where the previous
    /// entry's ends.
    pub(crate) out_end: usize,
}

/// How the parsers render what they parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Render {
    /// The output format of records.
    pub format: Format,
    /// Render rejected lines too (there is a rejects file).
    pub rejects: bool,
}

/// Spent entry lists and render buffers, handed back when a batch is done so the next batch
/// parses and renders into them.
///
/// A batch's list is ~160 KiB and its rendering ~400 KiB: allocating them per batch on one
/// thread and freeing them on another costs page faults and grows the heap with the input.
#[derive(Debug, Default)]
pub(crate) struct EntryPool {
    entries: Mutex<Vec<Vec<Entry>>>,
    rejects: Mutex<Vec<Vec<Rejected>>>,
    bytes: Mutex<Vec<Vec<u8>>>,
    /// Renderings for the rejects file, apart from the others: a buffer keeps the pages it ever
    /// touched, and mixed in, every buffer would end up as large as a batch of rejected lines.
    rejects_bytes: Mutex<Vec<Vec<u8>>>,
    /// Decoded messages, apart from the renderings for the same reason: a batch of 1 MB lines
    /// needs its rendering half again as large as its messages.
    decoded: Mutex<Vec<Vec<u8>>>,
}

/// Takes a spent vector from `pool`, or a new one.
fn take<T>(pool: &Mutex<Vec<Vec<T>>>) -> Vec<T> {
    pool.lock()
        .map(|mut spent| spent.pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Gives `list` back to `pool`, emptied, unless the pool holds enough already.
fn give<T>(pool: &Mutex<Vec<Vec<T>>>, mut list: Vec<T>) {
    list.clear();
    if list.capacity() > 0
        && let Ok(mut spent) = pool.lock()
        && spent.len() < EntryPool::MAX
    {
        spent.push(list);
    }
}

impl EntryPool {
    /// More than the in-flight window ever needs; extra vectors are freed.
    const MAX: usize = 64;
}

/// A buffer for the messages decoded from `bytes` of input, from `pool` when there is one (a
/// [`Parsed`] made with the pool gives it back), sized exactly as [`Parsed::size_for`] sizes.
pub(crate) fn decoding_buffer(pool: Option<&Arc<EntryPool>>, bytes: usize) -> Vec<u8> {
    let mut buffer = pool.map(|p| take(&p.decoded)).unwrap_or_default();
    buffer.reserve_exact(bytes);
    buffer
}

/// What the grammar made of one batch's lines.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The batch's bytes, which the records point into.
    pub(crate) data: Bytes,
    /// Lines in the batch.
    pub lines: u64,
    /// Lines that were empty after trimming.
    pub blank: u64,
    /// Lines joined to the record before them (`--multiline`).
    pub continued: u64,
    /// Lines that parsed, in input order.
    pub(crate) entries: Vec<Entry>,
    /// Lines that did not, in input order.
    pub rejects: Vec<Rejected>,
    /// Every entry rendered in the output format, one after the other (see [`Entry::out_end`]).
    pub(crate) out: Vec<u8>,
    /// Every rejected line rendered for the rejects file, when there is one.
    pub(crate) rejects_out: Vec<u8>,
    /// Where `entries`, `out` and `rejects_out` go back to once the batch is done.
    pool: Option<Arc<EntryPool>>,
    /// How the batch was rendered.
    render: Render,
    /// The batch came from a stream: rejects are numbered by stream sequence, not line.
    pub(crate) from_stream: bool,
    /// When the messages were decoded (a layout other than `plain`, a collector's batch), the
    /// batch's lines as read and the first one's number: where a record's line is found again.
    pub(crate) raw: Option<(Bytes, u64)>,
    /// Decoded messages, one after another (`data` is then empty): pooled like `out`.
    pub(crate) decoded: Vec<u8>,
}

/// See [`Parsed::messages`]: a function of the two fields, so that the other fields can be
/// borrowed beside it.
fn messages_of<'a>(data: &'a Bytes, decoded: &'a [u8]) -> &'a [u8] {
    if data.is_empty() { decoded } else { data }
}

impl Drop for Parsed {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            give(&pool.entries, std::mem::take(&mut self.entries));
            give(&pool.rejects, std::mem::take(&mut self.rejects));
            give(&pool.bytes, std::mem::take(&mut self.out));
            give(&pool.rejects_bytes, std::mem::take(&mut self.rejects_out));
            give(&pool.decoded, std::mem::take(&mut self.decoded));
        }
    }
}

impl Parsed {
    /// An empty outcome for `data`, its entry list and buffers taken from `pool` (and given back
    /// to it when dropped).
    pub(crate) fn new(data: Bytes, render: Render, pool: Option<&Arc<EntryPool>>) -> Parsed {
        Parsed {
            data,
            lines: 0,
            blank: 0,
            continued: 0,
            entries: pool.map(|p| take(&p.entries)).unwrap_or_default(),
            rejects: pool.map(|p| take(&p.rejects)).unwrap_or_default(),
            out: pool.map(|p| take(&p.bytes)).unwrap_or_default(),
            // Taken from the pool only when it is used: every buffer a batch gives back must
            // have been taken, or the pool fills with them (64 spent renderings, ~30 MiB).
            rejects_out: pool
                .filter(|_| render.rejects)
                .map(|p| take(&p.rejects_bytes))
                .unwrap_or_default(),
            pool: pool.cloned(),
            render,
            from_stream: false,
            raw: None,
            decoded: Vec::new(),
        }
    }

    /// Sizes the entry list and the rendering once for `bytes` of input, rather than growing
    /// them per line. Exactly: a pooled buffer keeps what it grew to, and growing by doubling,
    /// one batch of 1 MB lines leaves every buffer of the pool twice the size it needs.
    pub(crate) fn size_for(&mut self, bytes: usize) {
        // Most lines of a real log are longer than 64 bytes; a batch of long lines has few.
        self.entries.reserve_exact(bytes.min(CHUNK_BYTES) / 64 + 1);
        self.out.reserve_exact(bytes + bytes / 2);
    }

    /// Drops the batch's input and its decoded messages (back to the pool): once the records
    /// are validated, their rendering is all that is written. The entries' messages are gone.
    fn let_go_of_input(&mut self) {
        self.data = Bytes::new();
        self.raw = None;
        let decoded = std::mem::take(&mut self.decoded);
        if let Some(pool) = &self.pool {
            give(&pool.decoded, decoded);
        }
    }

    /// The bytes the entries' messages point into: the batch's, or the decoded messages.
    pub(crate) fn messages(&self) -> &[u8] {
        messages_of(&self.data, &self.decoded)
    }

    /// [`Parsed::messages`] beside the entries and the rendering, to drop entries and move
    /// renderings while reading records.
    pub(crate) fn split_for_validation(&mut self) -> (&[u8], &mut Vec<Entry>, &mut Vec<u8>) {
        (
            messages_of(&self.data, &self.decoded),
            &mut self.entries,
            &mut self.out,
        )
    }

    /// Keeps a parsed record whose rendering was just appended to `out`; its message is
    /// `data[message_start..]`, `record.message.len()` bytes long.
    pub(crate) fn keep(&mut self, record: &ParsedRecord<'_>, message_start: usize) {
        self.entries.push(Entry {
            line_no: record.line_no,
            timestamp: record.timestamp,
            severity: record.severity,
            message_start: message_start as u32,
            message_len: record.message.len() as u32,
            out_end: self.out.len(),
        });
    }

    /// Puts the records in line order, each rendering with its record: a container's records
    /// under `--multiline` are whole (and kept) in another order than the one they start in.
    pub(crate) fn sort_by_line(&mut self) {
        if self.entries.is_sorted_by_key(|e| e.line_no) {
            return;
        }
        let mut start = 0;
        let mut spans: Vec<(Entry, usize)> = self
            .entries
            .iter()
            .map(|&entry| (entry, std::mem::replace(&mut start, entry.out_end)))
            .collect();
        spans.sort_by_key(|(entry, _)| entry.line_no);
        let mut out = Vec::with_capacity(self.out.len());
        self.entries.clear();
        for (mut entry, start) in spans {
            out.extend_from_slice(&self.out[start..entry.out_end]);
            entry.out_end = out.len();
            self.entries.push(entry);
        }
        // The copy goes back to the pool in its place.
        self.out = out;
    }

    /// One line too long to hold, of which `prefix` is the start: rejected.
    pub(crate) fn long_line(line_no: u64, prefix: Bytes, render: Render) -> Parsed {
        let mut parsed = Parsed::new(Bytes::new(), render, None);
        parsed.lines = 1;
        parsed.reject(line_no, RejectReason::LineTooLong, prefix);
        parsed
    }

    /// Keeps a rejected line, rendered for the rejects file if there is one.
    pub(crate) fn reject(&mut self, line_no: u64, reason: RejectReason, line: Bytes) {
        if self.render.rejects {
            write_reject(&mut self.rejects_out, line_no, reason, &line);
        }
        self.rejects.push(Rejected {
            line_no,
            reason,
            line,
        });
    }

    /// Rejects a parsed record as too large for the sink (see
    /// the validator's `Rules`); the rejects stay in line order.
    pub(crate) fn reject_too_large(&mut self, entry: &Entry) {
        let line = match &self.raw {
            Some((raw, first_line)) => {
                let text = split_lines(raw)
                    .nth((entry.line_no - first_line) as usize)
                    .expect("a record's line is in its batch");
                raw.slice_ref(text)
            }
            None => {
                let start = entry.message_start as usize;
                let end = start + entry.message_len as usize;
                let line_start = memchr::memrchr(b'\n', &self.data[..start]).map_or(0, |i| i + 1);
                let line_end = memchr::memchr(b'\n', &self.data[end..]).map_or(self.data.len(), |i| end + i);
                self.data.slice(line_start..line_end)
            }
        };
        let line = match line.strip_suffix(b"\r") {
            Some(trimmed) => line.slice_ref(trimmed),
            None => line,
        };
        let at = self.rejects.partition_point(|r| r.line_no < entry.line_no);
        self.rejects.insert(
            at,
            Rejected {
                line_no: entry.line_no,
                reason: RejectReason::TooLarge,
                line,
            },
        );
        if self.render.rejects {
            // Rare: rendered again whole, so that the file keeps line order.
            self.rejects_out.clear();
            for r in &self.rejects {
                write_reject(&mut self.rejects_out, r.line_no, r.reason, &r.line);
            }
        }
    }

    /// Every record rendered in the output format, one after the other.
    pub fn rendered(&self) -> &[u8] {
        &self.out
    }

    /// The parsed records, in input order.
    pub fn records(&self) -> impl Iterator<Item = ParsedRecord<'_>> {
        self.entries.iter().map(|e| self.record(e))
    }

    pub(crate) fn record(&self, entry: &Entry) -> ParsedRecord<'_> {
        record_of(self.messages(), entry)
    }
}

/// The record `entry` describes, its message a slice of `data` (its batch's bytes).
pub(crate) fn record_of<'a>(data: &'a [u8], entry: &Entry) -> ParsedRecord<'a> {
    let start = entry.message_start as usize;
    ParsedRecord {
        line_no: entry.line_no,
        timestamp: entry.timestamp,
        severity: entry.severity,
        message: &data[start..start + entry.message_len as usize],
    }
}

/// A parsed batch on its way to the validator.
#[derive(Debug)]
pub struct ParsedBatch {
    /// The reader's batch number, for reordering.
    pub seq: u64,
    /// Where in the input the batch ends.
    pub end: Position,
    /// Many logs: which log and file the batch is of.
    pub at: Option<At>,
    /// The batch's outcome.
    pub parsed: Parsed,
    /// The batch's slot in the in-flight window.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// Records ready for the writer, in input order, rendered. Only the validator makes one
/// ([`crate::pipeline::validator::validate`]), so every
/// record in it, and every byte of [`ValidBatch::rendered`], has passed validation.
#[derive(Debug)]
pub struct ValidBatch {
    /// The parsed batch, its entries reduced to the ones that passed.
    parsed: Parsed,
    /// Where in the input the batch ends.
    end: Position,
    /// Many logs: which log and file the batch is of.
    at: Option<At>,
    /// The batch's slots in the in-flight window, freed once written.
    permit: OwnedSemaphorePermit,
}

impl ValidBatch {
    /// The batch the validator passes on: `parsed` with only the entries that passed, rendered.
    /// Its input and decoded messages are let go: what is written is the rendering, and until
    /// it is, a batch of long lines would hold every copy of them.
    pub(crate) fn new(
        mut parsed: Parsed,
        end: Position,
        at: Option<At>,
        permit: OwnedSemaphorePermit,
    ) -> ValidBatch {
        parsed.let_go_of_input();
        ValidBatch {
            parsed,
            end,
            at,
            permit,
        }
    }

    /// The slots of the in-flight window the batch holds (see [`Window`]).
    pub fn slots(&self) -> usize {
        self.permit.num_permits()
    }

    /// How many records there are to write.
    pub fn len(&self) -> usize {
        self.parsed.entries.len()
    }

    /// The timestamp of the batch's last record, if it has one.
    pub fn last_timestamp(&self) -> Option<OffsetDateTime> {
        self.parsed.entries.last().map(|e| e.timestamp)
    }

    /// Where in the input the batch ends: once it is written, everything before is settled.
    pub fn end(&self) -> Position {
        self.end
    }

    /// Many logs: which log and file the batch is of.
    pub fn at(&self) -> Option<At> {
        self.at
    }

    /// Input lines the batch covered, whatever their outcome.
    pub fn lines(&self) -> u64 {
        self.parsed.lines
    }

    /// True when there is no record to write.
    pub fn is_empty(&self) -> bool {
        self.parsed.entries.is_empty()
    }

    /// The rejected lines, for the rejects file.
    pub fn rejects(&self) -> &[Rejected] {
        &self.parsed.rejects
    }

    /// The records to write, rendered in the output format, one after the other.
    pub fn rendered(&self) -> &[u8] {
        &self.parsed.out
    }

    /// The rejected lines rendered for the rejects file (empty when there is none).
    pub fn rendered_rejects(&self) -> &[u8] {
        &self.parsed.rejects_out
    }

    /// Each record's line number and rendering (with its `\n`), in input order.
    pub fn rendered_records(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let out = &self.parsed.out;
        let mut start = 0;
        self.parsed.entries.iter().map(move |entry| {
            let rendered = &out[start..entry.out_end];
            start = entry.out_end;
            (entry.line_no, rendered)
        })
    }
}
