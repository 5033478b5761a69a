//! The parser stage: a pool of tasks sharing one receiver, each parsing whole batches.
//!
//! Fed [`RawBatch`]es by the reader, in whatever order the pool picks them up; feeds
//! [`ParsedBatch`]es to the validator, which restores the order. Parsing is [`parse_batch`], a
//! plain function: one allocation per batch, none per line.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::reader::{LONG_LINE_PREFIX, RawBatch};
use super::{recv, send};
use crate::checkpoint::Position;
use crate::error::Error;
use crate::metrics::{Metrics, add};
use crate::record::{Line, ParsedRecord, RejectReason, Severity, parse_line, split_lines};

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
    line_no: u64,
    timestamp: OffsetDateTime,
    severity: Severity,
    message_start: u32,
    message_len: u32,
}

/// Spent entry lists, handed back when a batch is done so the next batch parses into one.
///
/// A batch's list is ~160 KiB: allocating one per batch on one thread and freeing it on another
/// costs page faults and grows the heap with the input's size.
#[derive(Debug, Default)]
pub(crate) struct EntryPool(Mutex<Vec<Vec<Entry>>>);

impl EntryPool {
    /// More than the in-flight window ever needs; extra lists are freed.
    const MAX: usize = 64;

    fn take(&self) -> Vec<Entry> {
        self.0
            .lock()
            .map(|mut lists| lists.pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn give(&self, mut list: Vec<Entry>) {
        list.clear();
        if let Ok(mut lists) = self.0.lock()
            && lists.len() < Self::MAX
        {
            lists.push(list);
        }
    }
}

/// What the grammar made of one batch's lines.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The batch's bytes, which the records point into.
    data: Bytes,
    /// Lines in the batch.
    pub lines: u64,
    /// Lines that were empty after trimming.
    pub blank: u64,
    /// Lines that parsed, in input order.
    pub(crate) entries: Vec<Entry>,
    /// Lines that did not, in input order.
    pub rejects: Vec<Rejected>,
    /// Where `entries` goes back to once the batch is done.
    pool: Option<Arc<EntryPool>>,
}

impl Drop for Parsed {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool
            && self.entries.capacity() > 0
        {
            pool.give(std::mem::take(&mut self.entries));
        }
    }
}

impl Parsed {
    /// One line too long to hold, of which `prefix` is the start: rejected.
    fn long_line(line_no: u64, prefix: Bytes) -> Parsed {
        let reject = Rejected {
            line_no,
            reason: RejectReason::LineTooLong,
            line: prefix,
        };
        Parsed {
            data: Bytes::new(),
            lines: 1,
            blank: 0,
            entries: Vec::new(),
            rejects: vec![reject],
            pool: None,
        }
    }

    /// The parsed records, in input order.
    pub fn records(&self) -> impl Iterator<Item = ParsedRecord<'_>> {
        self.entries.iter().map(|e| self.record(e))
    }

    pub(crate) fn record(&self, entry: &Entry) -> ParsedRecord<'_> {
        let start = entry.message_start as usize;
        ParsedRecord {
            line_no: entry.line_no,
            timestamp: entry.timestamp,
            severity: entry.severity,
            message: &self.data[start..start + entry.message_len as usize],
        }
    }
}

/// A parsed batch on its way to the validator.
#[derive(Debug)]
pub struct ParsedBatch {
    /// The reader's batch number, for reordering.
    pub seq: u64,
    /// Where in the input the batch ends.
    pub end: Position,
    /// The batch's outcome.
    pub parsed: Parsed,
    /// The batch's slot in the in-flight window.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// Parses every line of `data`, numbering them from `first_line`.
///
/// Messages are ranges of `data`; only rejected lines take a (reference-counted) slice.
pub fn parse_batch(first_line: u64, data: Bytes) -> Parsed {
    parse_into(first_line, data, usize::MAX, None)
}

/// [`parse_batch`], rejecting lines over `max_line_bytes`, with the entry list taken from (and
/// later given back to) `pool`.
fn parse_into(first_line: u64, data: Bytes, max_line_bytes: usize, pool: Option<&Arc<EntryPool>>) -> Parsed {
    assert!(
        data.len() <= u32::MAX as usize,
        "a batch is far smaller than 4 GiB"
    );
    let mut parsed = Parsed {
        data,
        lines: 0,
        blank: 0,
        entries: pool.map(|p| p.take()).unwrap_or_default(),
        rejects: Vec::new(),
        pool: pool.cloned(),
    };
    let data = &parsed.data;
    // Most lines of a real log parse: size for them once rather than growing per line.
    parsed.entries.reserve(data.len() / 64 + 1);
    for (text, line_no) in split_lines(data).zip(first_line..) {
        parsed.lines += 1;
        // The limit counts the line without its terminator, `\n` or `\r\n` alike.
        if text.len() - usize::from(text.last() == Some(&b'\r')) > max_line_bytes {
            let line = data.slice_ref(&text[..LONG_LINE_PREFIX.min(text.len())]);
            parsed.rejects.push(Rejected {
                line_no,
                reason: RejectReason::LineTooLong,
                line,
            });
            continue;
        }
        match parse_line(text) {
            Line::Blank => parsed.blank += 1,
            Line::Rejected(reason) => parsed.rejects.push(Rejected {
                line_no,
                reason,
                line: data.slice_ref(text),
            }),
            Line::Parsed {
                timestamp,
                severity,
                message,
            } => parsed.entries.push(Entry {
                line_no,
                timestamp,
                severity,
                message_start: (message.as_ptr() as usize - data.as_ptr() as usize) as u32,
                message_len: message.len() as u32,
            }),
        }
    }
    parsed
}

/// One parser task and what it needs.
pub(crate) struct Worker {
    /// Which worker, from 0, for the log.
    pub id: usize,
    /// Where entry lists come from and go back to.
    pub pool: Arc<EntryPool>,
    /// Longer lines are rejected.
    pub max_line_bytes: usize,
    /// Where the counts go.
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// Parses batches until the reader's channel is closed and empty, or `cancel` fires.
    ///
    /// # Errors
    /// None today; the signature matches the other stages so the pipeline treats them alike.
    pub(crate) async fn run(
        self,
        lines_rx: async_channel::Receiver<RawBatch>,
        parsed_tx: async_channel::Sender<ParsedBatch>,
        cancel: CancellationToken,
    ) -> Result<(), Error> {
        let times = &self.metrics.parser;
        let mut lines = 0;
        while let Some(batch) = recv(&lines_rx, &cancel, times).await {
            let parsed = if batch.long_line {
                Parsed::long_line(batch.first_line, batch.data)
            } else {
                parse_into(
                    batch.first_line,
                    batch.data,
                    self.max_line_bytes,
                    Some(&self.pool),
                )
            };
            lines += parsed.lines;
            add(&self.metrics.lines_parsed, parsed.lines);
            let end = Position {
                offset: batch.end_offset,
                lines: batch.first_line - 1 + parsed.lines,
            };
            let out = ParsedBatch {
                seq: batch.seq,
                end,
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
