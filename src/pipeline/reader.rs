//! The reader stage: reads the input in large chunks and hands batches of whole lines downstream.
//!
//! A dedicated thread blocks on `read(2)` (Tokio's stdin cannot be cancelled, and a blocked read
//! must never hold up a drain); this stage's task cuts its chunks into [`RawBatch`]es for the
//! parser pool, numbering lines and batches, and stops taking chunks on drain.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::send;
use crate::error::Error;
use crate::record::{RawRecord, split_lines};

/// How much the reader thread asks for per `read(2)`.
const CHUNK_BYTES: usize = 256 * 1024;

/// Consecutive whole lines of input, a zero-copy slice of one read chunk.
#[derive(Debug)]
pub struct RawBatch {
    /// Position in the input, from 0; the validator restores order by it.
    pub seq: u64,
    /// Line number of the first line in `data`.
    pub first_line: u64,
    /// The lines, each ending in `\n` except possibly the input's last.
    pub data: Bytes,
    /// One slot of the in-flight window, released when the writer is done with the batch.
    pub(crate) permit: OwnedSemaphorePermit,
}

impl RawBatch {
    /// The batch's lines with their numbers.
    pub fn records(&self) -> impl Iterator<Item = RawRecord<'_>> {
        split_lines(&self.data)
            .zip(self.first_line..)
            .map(|(text, line_no)| RawRecord { line_no, text })
    }
}

/// What the reader did, for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderReport {
    /// Lines handed downstream.
    pub lines: u64,
    /// Bytes handed downstream.
    pub bytes: u64,
    /// True when a drain stopped the reading before the end of the input.
    pub drained: bool,
}

/// Reads `input` to its end on a thread of its own, sending chunks that end on a line boundary.
///
/// A line that straddles two reads is copied once, when the partial tail moves to the next buffer.
/// The thread ends at end of input, on a read error (sent on), or when `chunks` is closed.
fn spawn_read_thread(mut input: impl Read + Send + 'static, chunks: mpsc::Sender<io::Result<Bytes>>) {
    let read_loop = move || {
        let mut buf = BytesMut::new();
        loop {
            let filled = buf.len();
            buf.reserve(CHUNK_BYTES);
            buf.resize(filled + CHUNK_BYTES, 0);
            let read = input.read(&mut buf[filled..]);
            buf.truncate(filled + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => {
                    // End of input: what is left is a last line without `\n`.
                    if !buf.is_empty() {
                        let _ = chunks.blocking_send(Ok(buf.split().freeze()));
                    }
                    return;
                }
                Ok(n) => {
                    if let Some(last_newline) = memchr::memrchr(b'\n', &buf[filled..filled + n]) {
                        let lines = buf.split_to(filled + last_newline + 1).freeze();
                        if chunks.blocking_send(Ok(lines)).is_err() {
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = chunks.blocking_send(Err(e));
                    return;
                }
            }
        }
    };
    std::thread::Builder::new()
        .name("ingest-reader".into())
        .spawn(read_loop)
        .expect("the OS can start one more thread");
}

/// Cuts `chunk` into pieces of at most `max_lines` lines; returns `(piece, lines)` pairs.
fn cut(chunk: &Bytes, max_lines: usize, pieces: &mut Vec<(Bytes, u64)>) {
    pieces.clear();
    let mut start = 0;
    let mut lines = 0;
    for newline in memchr::memchr_iter(b'\n', chunk) {
        lines += 1;
        if lines == max_lines {
            pieces.push((chunk.slice(start..=newline), lines as u64));
            start = newline + 1;
            lines = 0;
        }
    }
    if start < chunk.len() {
        // Lines left over, the last of which may lack its `\n` at end of input.
        let unterminated = usize::from(chunk.last() != Some(&b'\n'));
        pieces.push((chunk.slice(start..), (lines + unterminated) as u64));
    }
}

/// Runs the reader stage until the input ends, a drain is asked for, or `cancel` fires.
///
/// Each batch takes a permit from `in_flight` before it is sent: the window bounds how much of
/// the input is in memory, whatever the input's size.
///
/// # Errors
/// [`Error::Read`] when reading the input fails.
pub async fn run(
    input: impl Read + Send + 'static,
    lines_tx: async_channel::Sender<RawBatch>,
    in_flight: Arc<Semaphore>,
    max_lines: usize,
    drain: CancellationToken,
    cancel: CancellationToken,
) -> Result<ReaderReport, Error> {
    // One chunk of read-ahead: the thread reads the next while this task hands out the last.
    let (chunks_tx, mut chunks_rx) = mpsc::channel(1);
    spawn_read_thread(input, chunks_tx);

    let mut report = ReaderReport::default();
    let mut pieces = Vec::new();
    let mut seq = 0;
    loop {
        let chunk = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = drain.cancelled() => {
                report.drained = true;
                break;
            }
            chunk = chunks_rx.recv() => match chunk {
                None => break,
                Some(Err(e)) => return Err(Error::Read(e)),
                Some(Ok(chunk)) => chunk,
            },
        };
        cut(&chunk, max_lines, &mut pieces);
        for (data, lines) in pieces.drain(..) {
            // A chunk taken from the thread is handed out whole, even during a drain: it was read.
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(report),
                permit = in_flight.clone().acquire_owned() => permit.expect("the window is never closed"),
            };
            let bytes = data.len() as u64;
            let batch = RawBatch {
                seq,
                first_line: report.lines + 1,
                data,
                permit,
            };
            if !send(&lines_tx, batch, &cancel).await {
                return Ok(report);
            }
            seq += 1;
            report.lines += lines;
            report.bytes += bytes;
        }
    }
    tracing::debug!("reader finished: {} lines", report.lines);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_all(data: &'static [u8], max_lines: usize) -> Vec<(String, u64)> {
        let mut pieces = Vec::new();
        cut(&Bytes::from_static(data), max_lines, &mut pieces);
        pieces
            .into_iter()
            .map(|(b, n)| (String::from_utf8(b.to_vec()).unwrap(), n))
            .collect()
    }

    #[test]
    fn chunks_are_cut_into_pieces_of_at_most_max_lines() {
        let piece = |s: &str, n| (s.to_owned(), n);
        assert_eq!(cut_all(b"a\nb\nc\n", 2), [piece("a\nb\n", 2), piece("c\n", 1)]);
        assert_eq!(cut_all(b"a\nb\n", 2), [piece("a\nb\n", 2)]);
        assert_eq!(cut_all(b"a\nb\nc", 2), [piece("a\nb\n", 2), piece("c", 1)]);
        assert_eq!(cut_all(b"abc", 2), [piece("abc", 1)]);
    }

    #[tokio::test]
    async fn every_line_arrives_once_in_order_whatever_the_chunking() {
        let input: Vec<u8> = (1..=5000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .chain(*b"last")
            .collect();
        let (tx, rx) = async_channel::bounded(4);
        let window = Arc::new(Semaphore::new(4));
        let stage = tokio::spawn(run(
            io::Cursor::new(input.clone()),
            tx,
            window,
            7,
            CancellationToken::new(),
            CancellationToken::new(),
        ));
        let mut seen = Vec::new();
        let mut next_line = 1;
        while let Ok(batch) = rx.recv().await {
            for record in batch.records() {
                assert_eq!(record.line_no, next_line);
                next_line += 1;
            }
            seen.extend_from_slice(&batch.data);
        }
        let report = stage.await.unwrap().unwrap();
        assert_eq!(seen, input);
        assert_eq!(report.lines, 5001);
        assert_eq!(next_line, 5002);
    }
}
