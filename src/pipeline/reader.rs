//! The reader stage: reads the input in large chunks and hands batches of whole lines downstream.
//!
//! All of it runs on a dedicated thread: `read(2)` blocks (Tokio's stdin cannot be cancelled),
//! and a task would wait behind busy parsers for every chunk. The thread cuts each chunk into
//! [`RawBatch`]es, numbers them, and sends them to the parser pool; the stage's task only
//! watches for a drain or a cancel and collects the thread's report.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

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

/// Where the reader thread is, shared with the stage's task so a drain can stop it.
#[derive(Debug, Default)]
struct Progress {
    /// Inside `read(2)`, which may never return: a drain must close the channel itself.
    reading: bool,
    /// The task asked the thread to stop after handing out what it holds.
    stop: bool,
    report: ReaderReport,
    error: Option<io::Error>,
}

fn lock(progress: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    // A panic elsewhere cannot leave `Progress` half-updated: every update is one assignment.
    progress.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The thread's loop: read a chunk, hand out its whole lines as batches, repeat.
///
/// Returns at end of input, on a read error (left in `progress`), on cancel, on a stop
/// request, or when the parsers are gone.
fn read_loop(
    mut input: impl Read,
    lines_tx: &async_channel::Sender<RawBatch>,
    window: &Arc<Semaphore>,
    max_lines: usize,
    progress: &Mutex<Progress>,
    cancel: &CancellationToken,
    runtime: &Handle,
) {
    let mut buffers = Buffers::default();
    let mut pieces = Vec::new();
    let mut seq = 0;
    let mut line_no = 1;
    loop {
        let buf = buffers.make_room();
        let filled = buf.len();
        buf.resize(filled + CHUNK_BYTES, 0);
        {
            // Checked under the same lock that marks the read, so a drain either sees the read
            // and closes the channel, or stops the thread here.
            let mut progress = lock(progress);
            if progress.stop {
                return;
            }
            progress.reading = true;
        }
        let read = input.read(&mut buf[filled..]);
        {
            let mut progress = lock(progress);
            progress.reading = false;
            if progress.stop {
                // Drained while blocked in `read`: what came back arrived after the signal.
                return;
            }
        }
        let chunk = match read {
            Ok(0) if filled == 0 => return,
            // End of input: what is left is a last line without `\n`.
            Ok(0) => {
                buf.truncate(filled);
                buf.split().freeze()
            }
            Ok(n) => {
                buf.truncate(filled + n);
                match memchr::memrchr(b'\n', &buf[filled..]) {
                    Some(last_newline) => buf.split_to(filled + last_newline + 1).freeze(),
                    None => continue,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                buf.truncate(filled);
                continue;
            }
            Err(e) => {
                lock(progress).error = Some(e);
                return;
            }
        };
        let at_end = matches!(read, Ok(0));

        // A chunk taken from the input is handed out whole, even during a drain: it was read.
        cut(&chunk, max_lines, &mut pieces);
        for (data, lines) in pieces.drain(..) {
            let permit = runtime.block_on(async {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => None,
                    permit = Arc::clone(window).acquire_owned() => permit.ok(),
                }
            });
            let Some(permit) = permit else { return };
            let bytes = data.len() as u64;
            let batch = RawBatch {
                seq,
                first_line: line_no,
                data,
                permit,
            };
            if lines_tx.send_blocking(batch).is_err() {
                return;
            }
            seq += 1;
            line_no += lines;
            let report = &mut lock(progress).report;
            report.lines += lines;
            report.bytes += bytes;
        }
        if at_end || lock(progress).stop {
            return;
        }
    }
}

/// The reader's buffers, each reused once every batch cut from it has been written.
///
/// A fresh allocation per read would cost page faults and kernel zeroing for every byte of
/// input; a handful of recycled buffers cost neither.
#[derive(Default)]
struct Buffers {
    /// Being read into; holds the partial last line of the previous read at its front.
    current: BytesMut,
    /// Buffers whose bytes may still be in flight, oldest first.
    spent: VecDeque<BytesMut>,
}

impl Buffers {
    /// Four reads, and room for the partial line carried over from the last buffer.
    const SIZE: usize = 4 * CHUNK_BYTES + 64 * 1024;
    /// Enough to cover the in-flight window (10 batches by default: 3 buffers) twice over.
    const MAX_SPENT: usize = 8;

    /// Returns the current buffer with room for one more read after what it holds.
    fn make_room(&mut self) -> &mut BytesMut {
        let needed = self.current.len() + CHUNK_BYTES;
        if self.current.capacity() < needed {
            let reusable = self.spent.iter_mut().position(|b| b.try_reclaim(needed));
            let mut next = match reusable {
                Some(i) => self.spent.remove(i).expect("found above"),
                None => BytesMut::with_capacity(needed.max(Self::SIZE)),
            };
            // The line that straddles two reads: copied once, here.
            next.extend_from_slice(&self.current);
            let mut spent = std::mem::replace(&mut self.current, next);
            spent.clear();
            if self.spent.len() < Self::MAX_SPENT {
                self.spent.push_back(spent);
            }
        }
        &mut self.current
    }
}

/// Counts `\n` in `bytes` (memchr's `count` is vectorised, unlike a byte loop's).
fn count_newlines(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
}

/// Cuts `chunk` into pieces of at most `max_lines` lines; fills `pieces` with `(piece, lines)`.
///
/// Counts newlines a block at a time and looks for the exact cut only in the block holding it.
fn cut(chunk: &Bytes, max_lines: usize, pieces: &mut Vec<(Bytes, u64)>) {
    const BLOCK: usize = 4096;
    pieces.clear();
    let (mut start, mut pos, mut lines) = (0, 0, 0);
    while pos < chunk.len() {
        let block = &chunk[pos..(pos + BLOCK).min(chunk.len())];
        let n = count_newlines(block);
        if lines + n < max_lines {
            lines += n;
            pos += block.len();
            continue;
        }
        let last = memchr::memchr_iter(b'\n', block)
            .nth(max_lines - lines - 1)
            .expect("counted above");
        let end = pos + last + 1;
        pieces.push((chunk.slice(start..end), max_lines as u64));
        (start, pos, lines) = (end, end, 0);
    }
    if start < chunk.len() {
        // Lines left over, the last of which may lack its `\n` at end of input.
        let unterminated = usize::from(chunk.last() != Some(&b'\n'));
        pieces.push((chunk.slice(start..), (lines + unterminated) as u64));
    }
}

/// Runs the reader stage until the input ends, a drain is asked for, or `cancel` fires.
///
/// Each batch takes a permit from `window` before it is sent: the window bounds how much of the
/// input is in memory, whatever the input's size.
///
/// # Errors
/// [`Error::Read`] when reading the input fails.
pub async fn run(
    input: impl Read + Send + 'static,
    lines_tx: async_channel::Sender<RawBatch>,
    window: Arc<Semaphore>,
    max_lines: usize,
    drain: CancellationToken,
    cancel: CancellationToken,
) -> Result<ReaderReport, Error> {
    let progress = Arc::new(Mutex::new(Progress::default()));
    // Not a sender: holding one would keep the channel open after the thread is done.
    let lines = lines_tx.clone().downgrade();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let thread = {
        let (progress, cancel, runtime) = (Arc::clone(&progress), cancel.clone(), Handle::current());
        move || {
            read_loop(input, &lines_tx, &window, max_lines, &progress, &cancel, &runtime);
            drop(lines_tx); // closes the channel for the parsers
            let _ = done_tx.send(());
        }
    };
    std::thread::Builder::new()
        .name("ingest-reader".into())
        .spawn(thread)
        .map_err(Error::Read)?;

    let close = || {
        if let Some(lines) = lines.upgrade() {
            lines.close();
        }
    };
    let mut done_rx = done_rx;
    let stopped_early = tokio::select! {
        _ = &mut done_rx => false,
        () = cancel.cancelled() => {
            // Unblocks a thread waiting to send to parsers that stopped receiving.
            close();
            true
        }
        () = drain.cancelled() => {
            let reading = {
                let mut progress = lock(&progress);
                progress.stop = true;
                progress.reading
            };
            if reading {
                // The thread may never come back from `read`: close the parsers' channel for it.
                // Everything it already sent stays in the channel and is still received.
                close();
            } else {
                // It hands out the chunk it holds, then stops.
                let _ = done_rx.await;
            }
            true
        }
    };
    let mut progress = lock(&progress);
    if let Some(error) = progress.error.take() {
        return Err(Error::Read(error));
    }
    let mut report = progress.report;
    report.drained = stopped_early && drain.is_cancelled();
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
