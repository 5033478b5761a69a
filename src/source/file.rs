//! Standard input or a file as a source (the reader stage): reads the input in large chunks and
//! hands batches of whole lines downstream, each with the input offset and line it ends at.
//!
//! All of it runs on a dedicated thread: `read(2)` blocks (Tokio's stdin cannot be cancelled),
//! and a task would wait behind busy parsers for every chunk. The thread cuts each chunk into
//! [`RawBatch`]es, numbers them, and sends them to the parser pool; the stage's task only
//! watches for a drain or a cancel and waits for the thread.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::follow::{Follow, Woke};
use super::{Feed, Source, Started};
use crate::batch::{CHUNK_BYTES, LONG_LINE_PREFIX, RawBatch, Window};
use crate::checkpoint::{At, Commit, Done, Fingerprint, Position};
use crate::config::Config;
use crate::error::Error;
use crate::layout::Layout;
use crate::layout::container::{self, Decoding, Open, RecordEnds, Runtime};
use crate::metrics::{Metrics, add};
use crate::record::{RejectReason, UTF8_BOM, split_lines, trim_line};

/// Where the reader thread is, shared with the stage's task so a drain can stop it.
#[derive(Debug, Default)]
struct Progress {
    /// Inside `read(2)`, which may never return: a drain must close the channel itself.
    reading: bool,
    /// The task asked the thread to stop after handing out what it holds.
    stop: bool,
    error: Option<io::Error>,
    /// What the thread did, for the stage's report: bytes searched for line ends and bytes
    /// copied to carry a partial line into the next buffer. Both stay within a small multiple of
    /// the input, however long its lines.
    searched: u64,
    carried: u64,
}

fn lock(progress: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    // A panic elsewhere cannot leave `Progress` half-updated: every update is one assignment.
    progress.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A line that outgrew `--max-line-bytes` and is being skipped to its end.
struct LongLine {
    /// Its first bytes, for the rejects file.
    prefix: Bytes,
    /// Its length so far, `\n` included once found.
    bytes: u64,
}

/// The reader thread: reads chunks, hands out their whole lines as batches, repeats.
struct ReadLoop<'a> {
    lines_tx: &'a async_channel::Sender<RawBatch>,
    window: &'a Window,
    progress: &'a Mutex<Progress>,
    metrics: &'a Metrics,
    cancel: &'a CancellationToken,
    runtime: &'a Handle,
    limits: Settings,
    buffers: Buffers,
    pieces: Vec<(Bytes, u64)>,
    long_line: Option<LongLine>,
    /// Bytes at the front of the current buffer already searched and free of `\n`: the start of
    /// a line still being read, never searched again.
    scanned: usize,
    /// Bytes searched for line ends so far.
    searched: u64,
    seq: u64,
    /// The next line's number.
    line_no: u64,
    /// Input bytes handed out so far, counted from where this run started.
    offset: u64,
    /// `--multiline`: bytes of whole lines at the front of the current buffer held back as the
    /// record still open (more lines may join it), and how many lines they are.
    held: usize,
    held_lines: usize,
    /// `--multiline`: after how many of its lines the held record is looked at again for
    /// --max-record-lines (see `take_records`); `None` for a new one.
    held_threshold: Option<usize>,
    /// `--multiline`: the open record is past what it keeps (`--max-record-lines`) or too long
    /// (`--max-line-bytes`): its further lines, until the next record starts, are not held but
    /// handed out to be rejected for this reason.
    excess: Option<RejectReason>,
    /// `--multiline`: where the whole lines are cut into batches, and the reason the lines
    /// after a cut that continue a record are rejected for, if they are (reused).
    cuts: Vec<(usize, Option<RejectReason>)>,
    /// A container's log: the streams skipping at each of `cuts` (reused).
    cut_bits: Vec<u8>,
    /// A container's log with `--multiline`: where a batch may end.
    record_ends: RecordEnds,
    /// The input's first bytes were looked at: a UTF-8 byte order mark, or an encoding ingest
    /// does not read.
    encoding_checked: bool,
    /// `--follow`: the file was found done with (rotated away, see [`Woke::Rotated`]); it is
    /// read to its end once more, then ends.
    rotated: bool,
    /// Many logs: the log and file its batches are of.
    at: Option<At>,
    /// Bytes read from this input so far.
    read: u64,
    /// A container's log: which streams have a line open at the end of the lines scanned, and
    /// which skip a line too long (see [`Open`]).
    open: Open,
    /// A container's log: the streams skipping a line too long at the end of what was sent.
    skipping: u8,
    decoding: Decoding,
    /// Many logs, a file whose end the checkpoint is to be told of: its last batch sent so far,
    /// held until the next one or the file's end, which it then says (one batch less per
    /// file through every stage: for many small logs, half of them).
    deferred: Option<Option<RawBatch>>,
}

/// What following the input at its end came to.
enum Followed {
    /// There is more to read.
    Read,
    /// The file is done with (rotated away and read to its end, or truncated).
    End,
    /// The pipeline stopped, or a drain was asked for.
    Stop,
}

/// How the reader cuts its input, and where it starts.
#[derive(Debug, Default)]
pub struct Settings {
    /// Most lines in one batch: the pipeline's, set when the source starts.
    pub batch_lines: usize,
    /// Longer lines are rejected as `line too long` without being held whole.
    pub max_line_bytes: usize,
    /// Leave a last line without `\n` unread (it may still be being written).
    pub hold_last_line: bool,
    /// Where in the input reading starts (after what a checkpoint says is committed).
    pub start: Position,
    /// Input bytes to read and discard first: the committed part of a pipe (counted down as
    /// they are read).
    pub skip: u64,
    /// Input already read (while recognising it): handed out first, even during a drain.
    pub preread: Bytes,
    /// `--multiline`: batches end only where a record starts.
    pub multiline: Option<Records>,
    /// A container runtime's log: batches end only where no stream has a line open.
    pub pieces: Option<Pieces>,
    /// The input's file descriptor, to wait on with a timeout (`--multiline-timeout`).
    pub fd: Option<std::os::fd::RawFd>,
    /// `--follow`: at the end of the input, wait for more instead of ending (until the file is
    /// rotated away or truncated).
    pub follow: Option<Follow>,
    /// About how many bytes there are to read (a file's size when listed, less where reading
    /// starts): a small file's reads ask for little more, instead of a whole chunk zeroed.
    pub size_hint: Option<u64>,
    /// `--multiline`, following many logs: a record still open at the end of the input (its
    /// log written to within `--multiline-timeout`) is left for the next turn, which may find
    /// more lines of it.
    pub hold_last_record: bool,
    /// Where reading stops as if the input ended there (a file's size when listed): a log
    /// written faster than it is read gives the other logs their turn; the rest is read next time.
    pub until: Option<u64>,
    /// A file of a set read from its start: the first bytes it was recognised by. If the file
    /// starts otherwise once read (emptied and written anew meanwhile, as `copytruncate` does),
    /// nothing of it is handed out and `replaced` is set: the set is listed again.
    pub expect_head: Option<(Fingerprint, Arc<std::sync::atomic::AtomicBool>)>,
}

impl Settings {
    /// What the command line says of reading (`--max-line-bytes`, `--multiline`), from the
    /// input's start; where to start and what was read ahead are the caller's to set.
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            max_line_bytes: config.max_line_bytes,
            multiline: config.multiline.map(|m| Records {
                layout: Arc::new(config.layout()),
                timeout: m.timeout,
                max_record_lines: m.max_record_lines,
            }),
            pieces: Pieces::of(&config.layout(), config),
            ..Settings::default()
        }
    }

    /// How long a live input may be quiet before what is held back goes out: the record
    /// `--multiline` holds, or the lines a container's streams have open.
    fn hold_timeout(&self) -> Option<std::time::Duration> {
        (self.multiline.as_ref().map(|r| r.timeout)).or(self.pieces.as_ref().map(|p| p.timeout))
    }
}

/// How a container runtime's log is cut: its layout, and how long a line left open may wait
/// for its last piece on a live input.
#[derive(Clone, Copy, Debug)]
pub struct Pieces {
    /// Whose lines.
    pub runtime: Runtime,
    /// After this long without input, the open lines go out as they are (`--multiline-timeout`).
    pub timeout: std::time::Duration,
}

impl Pieces {
    /// A container's log read with `layout`, its timeout from `config`; `None` for another.
    pub fn of(layout: &Layout, config: &Config) -> Option<Pieces> {
        layout.container().map(|c| Pieces {
            runtime: c.runtime,
            timeout: config.hold_timeout,
        })
    }
}

/// How `--multiline` cuts the input: where records start, and how long the last one may wait
/// for more lines on a live input.
#[derive(Clone, Debug)]
pub struct Records {
    /// The layout, whose record-start shape ends a record.
    pub layout: Arc<Layout>,
    /// After this long without input, the record held at the end is handed out.
    pub timeout: std::time::Duration,
    /// The most lines a record keeps (`--max-record-lines`); later ones are rejected.
    pub max_record_lines: usize,
}

/// Lines a container's streams hold open are cut once this many times `--max-line-bytes` of the
/// file went by since none was open: what the reader holds stays bounded when a program leaves
/// a line unfinished on one stream and writes on to the other.
const HELD_PIECES_BYTES: usize = 4;

/// How a container's streams stand where a batch ends, for the batch after it.
#[derive(Clone, Copy, Debug)]
struct Tail {
    /// The streams skipping a line too long (see [`Open::skipping_bits`]).
    skipping: u8,
    /// Lines open there were cut: their next pieces start new lines.
    cut_open: bool,
}

/// What kind of batch is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    /// Whole lines.
    Lines,
    /// The prefix of one line too long to hold.
    LongLine,
    /// Whole lines whose last record is too long to hold (`--multiline`).
    RecordTooLong,
}

impl ReadLoop<'_> {
    /// Reads `input` to its end, a read error (left in `progress`), a stop request, a cancel,
    /// or until the parsers are gone; leaves the work done in `progress` for the stage's report.
    fn run(&mut self, input: impl Read) {
        self.read_all(input);
        // Stopped by a drain: the record held back was read, and goes out whole.
        if self.held > 0 && !self.cancel.is_cancelled() {
            self.hand_out_held(Piece::Lines);
        }
        let mut progress = lock(self.progress);
        (progress.searched, progress.carried) = (self.searched, self.buffers.carried);
    }

    fn read_all(&mut self, mut input: impl Read) {
        // This input's lag from the start: what the run before it (another file) left goes.
        self.metrics.input_read.store(self.offset, Ordering::Relaxed);
        // A file of known size (a part of many logs) is that far behind before its first read.
        let size = self.offset + self.limits.size_hint.unwrap_or(0);
        self.metrics.input_size.store(size, Ordering::Relaxed);
        self.metrics.input_mtime_ns.store(0, Ordering::Relaxed);
        self.look_at_input();
        let preread = std::mem::take(&mut self.limits.preread);
        if !preread.is_empty() {
            self.buffers.make_room().extend_from_slice(&preread);
            if !self.take() {
                return;
            }
        }
        loop {
            if !self.wait_for_more() {
                return;
            }
            let left = self
                .limits
                .until
                .map(|until| until.saturating_sub(self.limits.start.offset + self.read));
            if left == Some(0) {
                self.finish();
                return;
            }
            {
                // Checked under the same lock that marks the read, so a drain either sees the
                // read and closes the channel, or stops the thread here.
                let mut progress = lock(self.progress);
                if progress.stop {
                    return;
                }
                progress.reading = true;
            }
            // Room for what is left of a file of known size (and a little more: it may have
            // grown), else a whole chunk.
            let mut chunk = self.limits.size_hint.map_or(CHUNK_BYTES, |left| {
                (left.saturating_sub(self.read) as usize + 4096).min(CHUNK_BYTES)
            });
            if let Some(left) = left {
                chunk = chunk.min(usize::try_from(left).unwrap_or(usize::MAX));
            }
            let buf = self.buffers.make_room();
            let filled = buf.len();
            buf.resize(filled + chunk, 0);
            // Time in `read(2)` is time waiting on the input: the reader's idle time.
            let reading = Instant::now();
            let read = input.read(&mut buf[filled..]);
            self.metrics.reader.idle(reading.elapsed());
            buf.truncate(filled + *read.as_ref().unwrap_or(&0));
            self.read += *read.as_ref().unwrap_or(&0) as u64;
            if let Some(follow) = self.limits.follow.as_mut() {
                follow.saw(&buf[filled..]);
            }
            self.look_at_input();
            {
                let mut progress = lock(self.progress);
                progress.reading = false;
                if progress.stop {
                    // Drained while blocked in `read`: what came back arrived after the signal.
                    return;
                }
            }
            let handed_out = match read {
                Ok(0) if self.limits.follow.is_some() => match self.follow() {
                    Followed::Read => true,
                    Followed::End => {
                        self.finish();
                        return;
                    }
                    Followed::Stop => return,
                },
                Ok(0) => {
                    self.finish();
                    return;
                }
                Ok(n) if self.limits.skip > 0 => {
                    // Nothing is carried while skipping: the committed part ends on a line end.
                    let skipped = self.limits.skip.min(n as u64);
                    self.buffers.current.advance(skipped as usize);
                    self.limits.skip -= skipped;
                    self.take()
                }
                Ok(_) => self.take(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
                Err(e) => {
                    lock(self.progress).error = Some(e);
                    return;
                }
            };
            // A chunk taken from the input is handed out whole, even during a drain: it was read.
            if !handed_out || lock(self.progress).stop {
                return;
            }
        }
    }

    /// Notes how large the input file is now, for the lag (see `Metrics::lag_bytes`).
    fn look_at_input(&self) {
        if let Some((size, mtime_ns)) = self.limits.fd.and_then(crate::os::size_and_mtime) {
            self.metrics.input_size.store(size, Ordering::Relaxed);
            self.metrics.input_mtime_ns.store(mtime_ns, Ordering::Relaxed);
        }
    }

    /// `--follow`, at the end of the input: waits for more; hands out the record held back
    /// (`--multiline`) once none came for `--multiline-timeout`.
    fn follow(&mut self) -> Followed {
        let timeout = self.limits.hold_timeout();
        loop {
            let deadline = timeout.filter(|_| self.held > 0).map(|t| Instant::now() + t);
            let (progress, cancel) = (self.progress, self.cancel);
            let waiting = Instant::now();
            let follow = self.limits.follow.as_mut().expect("called when following");
            let woke = follow.wait(deadline, || cancel.is_cancelled() || lock(progress).stop);
            self.metrics.reader.idle(waiting.elapsed());
            match woke {
                Woke::More => {
                    // Rotated away but still written to: the next time it is done with, it is
                    // read once more first.
                    self.rotated = false;
                    return Followed::Read;
                }
                Woke::Quiet => {
                    if !self.hand_out_held(Piece::Lines) {
                        return Followed::Stop;
                    }
                }
                // What was written to it before it went: read once more to its end.
                Woke::Rotated if !self.rotated => {
                    self.rotated = true;
                    return Followed::Read;
                }
                Woke::Rotated => {
                    // The program writes elsewhere: a last line without newline is final.
                    self.limits.hold_last_line = false;
                    return Followed::End;
                }
                Woke::Truncated => return Followed::End,
                Woke::Stopped => return Followed::Stop,
            }
        }
    }

    /// Hands out what the buffer holds, by lines or (`--multiline`) by records.
    fn take(&mut self) -> bool {
        if let Some((head, replaced)) = &self.limits.expect_head {
            let have = &self.buffers.current;
            let len = usize::try_from(head.covers()).unwrap_or(usize::MAX);
            if have.len() < len {
                // Not all of it read yet: nothing is handed out before it is checked.
                return true;
            }
            if Fingerprint::of(&have[..len]) != *head {
                replaced.store(true, Ordering::Relaxed);
                return false;
            }
            self.limits.expect_head = None;
        }
        if !self.encoding_checked {
            self.encoding_checked = true;
            if self.buffers.current.starts_with(UTF8_BOM) {
                // Read, and consumed, but handed out as no line's part.
                self.buffers.current.advance(UTF8_BOM.len());
                self.offset += UTF8_BOM.len() as u64;
                add(&self.metrics.bytes_in, UTF8_BOM.len() as u64);
            } else if let Some(encoding) = utf16(&self.buffers.current) {
                tracing::warn!(
                    "the input is {encoding}: ingest reads UTF-8, so its lines will be rejected; \
                     convert it first (iconv -f UTF-16 -t UTF-8)"
                );
            }
        }
        if let Some(pieces) = self.limits.pieces {
            return self.take_pieces(pieces);
        }
        match self.limits.multiline.clone() {
            None => self.take_lines(),
            Some(records) => self.take_records(&records),
        }
    }

    /// `--multiline` on a live input: while a record is held back, waits up to the timeout for
    /// more input, and hands the record out when none came. False when the pipeline stopped.
    fn wait_for_more(&mut self) -> bool {
        let (Some(timeout), Some(fd)) = (self.limits.hold_timeout(), self.limits.fd) else {
            return true;
        };
        if self.held == 0 {
            return true;
        }
        let deadline = Instant::now() + timeout;
        let waiting = Instant::now();
        let quiet = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break true;
            }
            // In slices, so that a drain is seen while waiting.
            if crate::os::wait_readable(fd, left.min(std::time::Duration::from_millis(100))) {
                break false;
            }
            if lock(self.progress).stop {
                break false;
            }
        };
        self.metrics.reader.idle(waiting.elapsed());
        !quiet || self.hand_out_held(Piece::Lines)
    }

    /// Sends the record held back (`--multiline`), whole lines only.
    fn hand_out_held(&mut self, piece: Piece) -> bool {
        let held = std::mem::take(&mut self.held);
        let lines = std::mem::take(&mut self.held_lines) as u64;
        self.held_threshold = None;
        // A container's lines still open go out as they are: their next pieces start new ones.
        let cut_open = !self.open.settled();
        self.open.cut();
        self.record_ends.cut();
        let tail = Tail {
            skipping: self.open.skipping_bits(),
            cut_open,
        };
        let data = self.buffers.current.split_to(held).freeze();
        self.scanned = self.scanned.saturating_sub(held);
        // A record rejected whole for its size takes its further lines with it.
        let after = (piece == Piece::RecordTooLong).then_some(RejectReason::LineTooLong);
        self.send(data, lines, piece, held as u64, after, tail)
    }

    /// Skips on through a line too long to hold; sends its prefix once its end is found.
    /// False when the pipeline stopped.
    fn skip_long_line(&mut self) -> bool {
        if let Some(mut long) = self.long_line.take() {
            let buf = &mut self.buffers.current;
            let Some(newline) = memchr::memchr(b'\n', buf) else {
                long.bytes += buf.len() as u64;
                buf.clear();
                self.long_line = Some(long);
                return true;
            };
            long.bytes += newline as u64 + 1;
            buf.advance(newline + 1);
            // Its continuation lines, if it started a record, are rejected with it.
            if !self.send(
                long.prefix,
                1,
                Piece::LongLine,
                long.bytes,
                self.long_line_after(),
                self.tail(),
            ) {
                return false;
            }
        }
        true
    }

    /// `--multiline`: hands out whole records, in batches of about `batch_lines` lines that
    /// start where a record starts; holds back the last record, which more lines may join.
    ///
    /// A record that reaches `--max-record-lines` goes out then: what it keeps is settled, and
    /// its further lines, until the next record starts, go out as they come, to be rejected
    /// (`record too long`, or `line too long` when what it keeps outgrew `--max-line-bytes`).
    /// So a record's rejected lines follow its kept ones, and none of them is held.
    fn take_records(&mut self, records: &Records) -> bool {
        if !self.skip_long_line() {
            return false;
        }
        if self.long_line.is_some() {
            return true;
        }
        let (layout, max_lines) = (&*records.layout, records.max_record_lines);
        if let Some(complete) = self.whole_lines_end() {
            let buf = &self.buffers.current;
            let mut since_cut = self.held_lines;
            // The open record: where it starts in the buffer, and its lines. Per line, only a
            // record start is looked for; the rest waits until `since_start` reaches
            // `threshold`: a record that may be past --max-record-lines (its kept lines, the
            // ones not blank, are counted then), or a run of rejected lines long enough to cut.
            let mut record_start = 0;
            let mut since_start = self.held_lines;
            let mut excess = self.excess;
            let mut threshold = match excess {
                Some(_) => self.limits.batch_lines,
                None => self.held_threshold.unwrap_or(max_lines),
            };
            let mut last_start = 0;
            let mut at = self.held;
            while at < complete {
                let end = at + memchr::memchr(b'\n', &buf[at..complete]).expect("whole lines") + 1;
                let line = &buf[at..end - 1];
                if (at > 0 || excess.is_some()) && layout.starts_record(line) {
                    if since_cut >= self.limits.batch_lines || excess.is_some() {
                        self.cuts.push((at, None));
                        since_cut = 0;
                    }
                    (record_start, since_start, last_start, excess, threshold) = (at, 0, at, None, max_lines);
                } else if since_start >= threshold {
                    if excess.is_some() {
                        // A long run of rejected lines goes out in batches of the usual size.
                        self.cuts.push((at, excess));
                        since_cut = 0;
                        threshold = since_start + self.limits.batch_lines;
                    } else if !trim_line(line).is_empty() {
                        // What the record keeps ends where its last line that is not blank ends
                        // (as the parser measures it against --max-line-bytes).
                        let (mut kept_lines, mut kept_end) = (0, record_start);
                        for kept in split_lines(&buf[record_start..at]).filter(|l| !trim_line(l).is_empty()) {
                            kept_lines += 1;
                            kept_end = kept.as_ptr() as usize - buf.as_ptr() as usize + kept.len();
                        }
                        if kept_lines >= max_lines {
                            // The record keeps what it has; this line and the rest of it are
                            // rejected, for what became of what it keeps.
                            let reason = if kept_end - record_start > self.limits.max_line_bytes {
                                RejectReason::LineTooLong
                            } else {
                                RejectReason::RecordTooLong
                            };
                            excess = Some(reason);
                            self.cuts.push((at, excess));
                            since_cut = 0;
                            threshold = since_start + self.limits.batch_lines;
                        } else {
                            threshold = since_start + (max_lines - kept_lines);
                        }
                    }
                }
                since_cut += 1;
                since_start += 1;
                at = end;
            }
            // Up to the last record start goes out, and the open record is held; past what it
            // keeps, everything goes out.
            let keep_from = if excess.is_some() { complete } else { last_start };
            if keep_from > 0 {
                let data = self.buffers.current.split_to(keep_from).freeze();
                let mut cuts = std::mem::take(&mut self.cuts);
                cuts.retain(|&(cut, _)| cut > 0 && cut < keep_from);
                // Each piece ends where the next starts: in the state that one starts in.
                let mut from = 0;
                for (cut, after) in cuts.iter().copied().chain([(keep_from, excess)]) {
                    let piece = data.slice(from..cut);
                    let lines = count_newlines(&piece) as u64;
                    if !self.send(
                        piece,
                        lines,
                        Piece::Lines,
                        (cut - from) as u64,
                        after,
                        self.tail(),
                    ) {
                        return false;
                    }
                    from = cut;
                }
                self.cuts = cuts;
            }
            self.held = complete - keep_from;
            (self.held_lines, self.held_threshold) = match self.held {
                0 => (0, None),
                _ => (since_start, Some(threshold)),
            };
            self.excess = excess;
        }
        self.scanned = self.buffers.current.len();
        if self.buffers.current.len() > self.limits.max_line_bytes.saturating_add(1) && self.held > 0 {
            // The line being read starts a record: the one held is whole. Otherwise the record
            // outgrew --max-line-bytes: what is whole of it goes out to be rejected, and its
            // further lines with it.
            let reading = &self.buffers.current[self.held..];
            let ended = !reading.is_empty() && layout.starts_record(reading);
            let piece = if ended { Piece::Lines } else { Piece::RecordTooLong };
            if !self.hand_out_held(piece) {
                return false;
            }
        }
        self.hold_long_line();
        true
    }

    /// A container runtime's log: hands out whole lines in batches of about `batch_lines` lines,
    /// each ending where no stream has a line open; holds back the lines since the last such
    /// point, which later pieces complete.
    ///
    /// A line grown past `--max-line-bytes` is rejected where it did and its further pieces are
    /// skipped, not held (both the reader and the parser step [`Open`] alike). Lines held open
    /// while more than [`HELD_PIECES_BYTES`] times `--max-line-bytes` of the file went by (the
    /// other stream writing on) go out as they are.
    fn take_pieces(&mut self, pieces: Pieces) -> bool {
        if !self.skip_long_line() {
            return false;
        }
        if self.long_line.is_some() {
            return true;
        }
        let max = self.limits.max_line_bytes;
        // `--multiline`: each stream's lines joined into records as well (see [`RecordEnds`]).
        let records = self.limits.multiline.clone();
        let joining = records
            .as_ref()
            .and_then(|r| Some((r.layout.container()?, r.timeout)));
        if let Some(complete) = self.whole_lines_end() {
            let buf = &self.buffers.current;
            let mut since_cut = self.held_lines;
            // The last point where no line is open, the streams skipping there, and the lines
            // after it.
            let (mut settled, mut settled_bits, mut after) = (0, self.skipping, self.held_lines);
            let mut last_cut = self.record_ends.lines().saturating_sub(self.held_lines as u64);
            let mut at = self.held;
            while at < complete {
                if self.open == Open::default() && joining.is_none() {
                    // No line open, none skipped: until a line that may leave one open (tagged
                    // `P`) every line ends where a batch may, and none needs reading.
                    let next = match pieces.runtime {
                        Runtime::Cri => container::next_partial_cri(&buf[at..complete]),
                        Runtime::Docker => container::next_partial_docker(&buf[at..complete]),
                    };
                    let next = next.map_or(complete, |p| at + p);
                    for end in memchr::memchr_iter(b'\n', &buf[at..next]).map(|i| at + i + 1) {
                        since_cut += 1;
                        (settled, settled_bits, after) = (end, 0, 0);
                        if since_cut >= self.limits.batch_lines {
                            self.cuts.push((end, None));
                            self.cut_bits.push(0);
                            since_cut = 0;
                        }
                    }
                    at = next;
                    if at == complete {
                        break;
                    }
                }
                let end = at + memchr::memchr(b'\n', &buf[at..complete]).expect("whole lines") + 1;
                // Not trimmed: a piece's spaces are the program's.
                let line = &buf[at..end - 1];
                let piece = container::decode(pieces.runtime, line, &mut self.decoding);
                let step = piece.as_ref().map(|piece| {
                    let len = piece.content(line, &self.decoding).len();
                    self.open.step(piece.stream, piece.last, len, max)
                });
                since_cut += 1;
                after += 1;
                at = end;
                if let Some((container, gap)) = joining {
                    let piece = piece
                        .as_ref()
                        .zip(step)
                        .map(|(p, step)| (p, line, &self.decoding, step));
                    let skipping = self.open.skipping_bits();
                    let starts = |stream, content: &[u8]| container.starts_record(stream, content);
                    self.record_ends
                        .line(starts, gap, piece, end, self.open.settled(), skipping);
                    let lines = self.record_ends.lines();
                    for point in self.record_ends.ends() {
                        (settled, settled_bits) = (point.at, point.skipping);
                        after = (lines - point.line) as usize;
                        if point.line - last_cut >= self.limits.batch_lines as u64 {
                            self.cuts.push((point.at, None));
                            self.cut_bits.push(point.skipping);
                            last_cut = point.line;
                        }
                    }
                } else if self.open.settled() {
                    (settled, settled_bits, after) = (end, self.open.skipping_bits(), 0);
                    if since_cut >= self.limits.batch_lines {
                        self.cuts.push((end, None));
                        self.cut_bits.push(settled_bits);
                        since_cut = 0;
                    }
                }
            }
            let cut_open = complete - settled > HELD_PIECES_BYTES.saturating_mul(max);
            if cut_open {
                // Open too long: everything goes, the open lines cut.
                self.open.cut();
                self.record_ends.cut();
                (settled, settled_bits, after) = (complete, self.open.skipping_bits(), 0);
            }
            let keep_from = settled;
            if keep_from > 0 {
                self.record_ends.shift(keep_from);
                let data = self.buffers.current.split_to(keep_from).freeze();
                let mut cuts = std::mem::take(&mut self.cuts);
                let mut bits = std::mem::take(&mut self.cut_bits);
                let mut from = 0;
                let ends = cuts.iter().map(|&(cut, _)| cut).zip(bits.iter().copied());
                for (cut, skipping) in ends.chain([(keep_from, settled_bits)]) {
                    if cut <= from || cut > keep_from {
                        continue;
                    }
                    let piece = data.slice(from..cut);
                    let lines = count_newlines(&piece) as u64;
                    // The open state where the batch ends, not where the lines scanned end.
                    let tail = Tail {
                        skipping,
                        cut_open: cut_open && cut == keep_from,
                    };
                    if !self.send(piece, lines, Piece::Lines, (cut - from) as u64, None, tail) {
                        return false;
                    }
                    from = cut;
                }
                cuts.clear();
                bits.clear();
                (self.cuts, self.cut_bits) = (cuts, bits);
            }
            self.held = complete - keep_from;
            self.held_lines = after;
        }
        self.scanned = self.buffers.current.len();
        if self.buffers.current.len() - self.held > max.saturating_add(1) && self.held > 0 {
            // The line being read is past the limit: what is held goes out first, in order.
            if !self.hand_out_held(Piece::Lines) {
                return false;
            }
        }
        self.hold_long_line();
        true
    }

    /// `--multiline` and container logs: where the buffer's whole lines end, when the bytes not
    /// searched yet (after the lines held back) hold a line's end; the cuts cleared for them.
    fn whole_lines_end(&mut self) -> Option<usize> {
        let buf = &self.buffers.current;
        let from = self.scanned.clamp(self.held, buf.len());
        self.searched += (buf.len() - from) as u64;
        let newline = memchr::memrchr(b'\n', &buf[from..])?;
        self.cuts.clear();
        Some(from + newline + 1)
    }

    /// Starts skipping the line being read once it outgrew --max-line-bytes.
    fn hold_long_line(&mut self) {
        let buf = &mut self.buffers.current;
        // One byte of slack: a `\r` there may be the start of a `\r\n`, which the limit does not
        // count (the parser checks the whole line once its end is known).
        if buf.len() - self.held > self.limits.max_line_bytes.saturating_add(1) {
            let line = &buf[self.held..];
            let prefix = Bytes::copy_from_slice(&line[..LONG_LINE_PREFIX.min(line.len())]);
            self.long_line = Some(LongLine {
                prefix,
                bytes: line.len() as u64,
            });
            buf.truncate(self.held);
            self.scanned = self.held;
        }
    }

    /// Hands out every whole line in the buffer; starts or continues skipping a too-long one.
    fn take_lines(&mut self) -> bool {
        if !self.skip_long_line() {
            return false;
        }
        if self.long_line.is_some() {
            return true;
        }
        let buf = &mut self.buffers.current;
        // Only the new bytes: searching the carried line again on every read would make one
        // long line cost its length squared.
        let scanned = self.scanned.min(buf.len());
        self.searched += (buf.len() - scanned) as u64;
        if let Some(last_newline) = memchr::memrchr(b'\n', &buf[scanned..]) {
            let lines = buf.split_to(scanned + last_newline + 1).freeze();
            if !self.hand_out(&lines) {
                return false;
            }
        }
        self.scanned = self.buffers.current.len();
        self.hold_long_line();
        true
    }

    /// At end of input: what is left is a last line without `\n`.
    fn finish(&mut self) {
        if let Some((_, replaced)) = self.limits.expect_head.take() {
            // Shorter than the first bytes it was recognised by: emptied meanwhile.
            replaced.store(true, Ordering::Relaxed);
            return;
        }
        if self.limits.skip > 0 {
            tracing::warn!(
                "the input ended {} bytes before the committed point: nothing new",
                self.limits.skip
            );
        }
        if self.held > 0 && self.limits.hold_last_record {
            // Not handed out at all (not even by a drain): the next turn reads it again.
            tracing::debug!(
                "line {}: a record still open at the end of the input: left for the next turn",
                self.line_no
            );
            (self.held, self.held_lines, self.held_threshold) = (0, 0, None);
            self.buffers.current.clear();
            return;
        }
        // A record held back is whole at the end of the input.
        if self.held > 0 && !self.hand_out_held(Piece::Lines) {
            return;
        }
        let unfinished = self.long_line.is_some() || !self.buffers.current.is_empty();
        if unfinished && self.limits.hold_last_line {
            tracing::warn!(
                "line {}: no newline at the end of the input yet: left for the next run",
                self.line_no
            );
            return;
        }
        if let Some(long) = self.long_line.take() {
            let after = self.long_line_after();
            self.send(long.prefix, 1, Piece::LongLine, long.bytes, after, self.tail());
        } else if !self.buffers.current.is_empty() {
            let last = self.buffers.current.split().freeze();
            self.hand_out(&last);
        }
    }

    /// Cuts whole lines into batches and sends them; false when the pipeline stopped.
    fn hand_out(&mut self, lines: &Bytes) -> bool {
        cut(lines, self.limits.batch_lines, &mut self.pieces);
        let mut pieces = std::mem::take(&mut self.pieces);
        let sent = pieces.drain(..).all(|(data, n)| {
            let bytes = data.len() as u64;
            self.send(data, n, Piece::Lines, bytes, None, self.tail())
        });
        self.pieces = pieces;
        sent
    }

    /// `--multiline`: a line too long to keep that started a record takes the record's further
    /// lines with it.
    fn long_line_after(&self) -> Option<RejectReason> {
        self.limits.multiline.as_ref().map(|_| RejectReason::LineTooLong)
    }

    /// A container's streams as they stand after the lines scanned, where most batches end.
    fn tail(&self) -> Tail {
        Tail {
            skipping: self.open.skipping_bits(),
            cut_open: false,
        }
    }

    /// Sends one batch of `lines` lines that took `bytes` bytes of input, after which the lines
    /// that follow continue a record past what it keeps (`after`, `--multiline`) or not, and a
    /// container's streams stand as `tail` says.
    fn send(
        &mut self,
        data: Bytes,
        lines: u64,
        piece: Piece,
        bytes: u64,
        after: Option<RejectReason>,
        tail: Tail,
    ) -> bool {
        // The batch held back is not its file's last: out before this one waits for a slot,
        // which it may hold (a window of one slot waited for it forever).
        if let Some(before) = self.deferred.as_mut().and_then(Option::take)
            && !self.push(before)
        {
            return false;
        }
        // Time waiting for the window or the parsers is the reader's blocked time.
        let permit = match self.window.try_take(data.len()) {
            Some(permit) => Some(permit),
            None => {
                let waiting = Instant::now();
                let permit = self.runtime.block_on(async {
                    tokio::select! {
                        biased;
                        () = self.cancel.cancelled() => None,
                        permit = self.window.take(data.len()) => Some(permit),
                    }
                });
                self.metrics.reader.blocked(waiting.elapsed());
                permit
            }
        };
        let Some(permit) = permit else { return false };
        let end_offset = self.offset + bytes;
        let end_context = (piece != Piece::LongLine).then(|| Fingerprint::of_end(&data));
        let batch = RawBatch {
            at: self.at,
            seq: self.seq,
            first_line: self.line_no,
            data,
            long_line: piece == Piece::LongLine,
            tail_too_long: piece == Piece::RecordTooLong,
            // What continues a record past what it keeps is rejected with it; once.
            head_continues: self.excess.filter(|_| self.limits.multiline.is_some()),
            tail_continues: after.filter(|_| self.limits.multiline.is_some()),
            head_skipping: self.skipping,
            tail_skipping: tail.skipping,
            cut_open: tail.cut_open,
            end_offset,
            end_context,
            permit,
            messages: Vec::new(),
        };
        let sent = match self.deferred.as_mut() {
            Some(slot) => {
                *slot = Some(batch);
                true
            }
            None => self.push(batch),
        };
        if !sent {
            return false;
        }
        self.seq += 1;
        self.line_no += lines;
        self.offset += bytes;
        self.metrics.input_read.store(self.offset, Ordering::Relaxed);
        self.excess = after;
        self.skipping = tail.skipping;
        add(&self.metrics.lines_read, lines);
        add(&self.metrics.bytes_in, bytes);
        true
    }

    /// Puts `batch` in the parsers' channel, waiting for room. False when it is closed.
    fn push(&self, batch: RawBatch) -> bool {
        let sent = match self.lines_tx.try_send(batch) {
            Ok(()) => true,
            Err(async_channel::TrySendError::Closed(_)) => false,
            Err(async_channel::TrySendError::Full(batch)) => {
                let waiting = Instant::now();
                let sent = self.lines_tx.send_blocking(batch).is_ok();
                self.metrics.reader.blocked(waiting.elapsed());
                sent
            }
        };
        if sent {
            self.metrics.reader.queued(self.lines_tx.len());
        }
        sent
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
    /// Bytes copied to carry partial lines into a new buffer, for the stage's report.
    carried: u64,
}

impl Buffers {
    /// Two reads, and room for the partial line carried over from the last buffer.
    const SIZE: usize = 2 * CHUNK_BYTES + 64 * 1024;
    /// Enough to cover the in-flight window (10 batches by default: 5 buffers) twice over.
    const MAX_SPENT: usize = 10;

    /// Returns the current buffer with room for one more read after what it holds.
    fn make_room(&mut self) -> &mut BytesMut {
        let needed = self.current.len() + CHUNK_BYTES;
        if self.current.capacity() < needed {
            let reusable = self.spent.iter_mut().position(|b| b.try_reclaim(needed));
            let mut next = match reusable {
                Some(i) => self.spent.remove(i).expect("found above"),
                // At least double: a line longer than a buffer is then copied a few times in
                // all, not once per read.
                None => BytesMut::with_capacity(needed.max(Self::SIZE).max(2 * self.current.len())),
            };
            // The line that straddles two reads: copied here.
            self.carried += self.current.len() as u64;
            next.extend_from_slice(&self.current);
            let mut spent = std::mem::replace(&mut self.current, next);
            spent.clear();
            // A buffer grown for one long line is not worth keeping.
            if self.spent.len() < Self::MAX_SPENT && spent.capacity() <= 2 * Self::SIZE {
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

/// Bytes read from a file descriptor or any reader, as [`Settings`] say; or the files of a run
/// over many logs, one after another.
pub struct FileSource {
    parts: Vec<Part>,
}

impl FileSource {
    /// Reads `input` from `settings.start` on.
    pub fn new(input: Box<dyn Read + Send>, settings: Settings) -> FileSource {
        FileSource {
            parts: vec![Part {
                open: Box::new(move || Some(input)),
                settings,
                at: None,
                done: None,
                left: 0,
            }],
        }
    }

    /// Reads `parts` one after another (see [`run_parts`]).
    pub fn parts(parts: Vec<Part>) -> FileSource {
        FileSource { parts }
    }
}

impl Source for FileSource {
    fn start(self: Box<Self>, feed: Feed, committer: Option<Box<dyn Commit>>) -> Started {
        let mut parts = self.parts;
        for part in &mut parts {
            part.settings.batch_lines = feed.batch_lines;
        }
        let reader = run_parts(
            parts,
            feed.lines_tx,
            feed.window,
            feed.metrics,
            feed.drain,
            feed.cancel,
        );
        Started {
            tasks: vec![("reader", Box::pin(reader))],
            committer,
        }
    }
}

/// `Some("UTF-16LE")` (or BE) when `start`, an input's first bytes, is UTF-16: a byte order
/// mark, or ASCII with a zero byte beside every character, as Windows tools write.
fn utf16(start: &[u8]) -> Option<&'static str> {
    match start {
        [0xFF, 0xFE, ..] => Some("UTF-16LE (it starts with a byte order mark)"),
        [0xFE, 0xFF, ..] => Some("UTF-16BE (it starts with a byte order mark)"),
        [a, 0, b, 0, c, 0, d, 0, ..] if [a, b, c, d].iter().all(|&&x| x != 0) => Some("UTF-16LE"),
        [0, a, 0, b, 0, c, 0, d, ..] if [a, b, c, d].iter().all(|&&x| x != 0) => Some("UTF-16BE"),
        _ => None,
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
    window: Window,
    limits: Settings,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let part = Part {
        open: Box::new(move || Some(Box::new(input) as Box<dyn Read + Send>)),
        settings: limits,
        at: None,
        done: None,
        left: 0,
    };
    run_parts(vec![part], lines_tx, window, metrics, drain, cancel).await
}

/// One file of a run over many logs: opened in its turn (so that few are open at once), its
/// batches numbered on from the last file's.
pub struct Part {
    /// Opens it; `None` when it is gone or no longer the file planned (its log is passed over
    /// for the rest of the run).
    pub open: Box<dyn FnOnce() -> Option<Box<dyn Read + Send>> + Send>,
    /// How it is read.
    pub settings: Settings,
    /// Its log and file, for its batches.
    pub at: Option<At>,
    /// Read to its end, a batch says so (with `at`), for the checkpoint.
    pub done: Option<Done>,
    /// Its bytes not read yet (a compressed file's: its size), for the lag.
    pub left: u64,
}

/// [`run`] over `parts`, one after another, as one input for the pipeline.
///
/// # Errors
/// [`Error::Read`] when reading a part fails.
pub async fn run_parts(
    parts: Vec<Part>,
    lines_tx: async_channel::Sender<RawBatch>,
    window: Window,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let progress = Arc::new(Mutex::new(Progress::default()));
    // Not a sender: holding one would keep the channel open after the thread is done.
    let lines = lines_tx.clone().downgrade();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let thread = {
        let (progress, metrics, cancel, runtime) = (
            Arc::clone(&progress),
            Arc::clone(&metrics),
            cancel.clone(),
            Handle::current(),
        );
        move || {
            let (mut seq, mut buffers, mut searched) = (0, Buffers::default(), 0);
            // A log whose file was not there as planned: the rest of it waits for the next run.
            let mut passed_over = None;
            // What is left to read after each part, for the lag.
            let mut after: Vec<u64> = parts
                .iter()
                .rev()
                .scan(0, |sum, p| {
                    let now = *sum;
                    *sum += p.left;
                    Some(now)
                })
                .collect();
            let next_logs: Vec<Option<u32>> = parts
                .iter()
                .skip(1)
                .map(|p| p.at.map(|at| at.log))
                .chain([None])
                .collect();
            for (part, next_log) in parts.into_iter().zip(next_logs) {
                metrics
                    .pending_files_bytes
                    .store(after.pop().unwrap_or(0), Ordering::Relaxed);
                // A drain is seen by the read loop, after it handed out what was read ahead.
                if cancel.is_cancelled() {
                    break;
                }
                if part.at.is_some_and(|at| Some(at.log) == passed_over) {
                    continue;
                }
                let Some(input) = (part.open)() else {
                    passed_over = part.at.map(|at| at.log);
                    continue;
                };
                metrics.logs_open.store(1, Ordering::Relaxed);
                let limits = part.settings;
                let replaced = limits.expect_head.as_ref().map(|(_, r)| r.clone());
                let mut read_loop = ReadLoop {
                    lines_tx: &lines_tx,
                    window: &window,
                    progress: &progress,
                    metrics: &metrics,
                    cancel: &cancel,
                    runtime: &runtime,
                    line_no: limits.start.lines + 1,
                    offset: limits.start.offset,
                    buffers,
                    pieces: Vec::new(),
                    long_line: None,
                    scanned: 0,
                    searched,
                    seq,
                    held: 0,
                    held_lines: 0,
                    held_threshold: None,
                    // A rerun that starts inside a record past what it keeps goes on rejecting it.
                    excess: limits.start.continues,
                    cuts: Vec::new(),
                    cut_bits: Vec::new(),
                    record_ends: RecordEnds::default(),
                    open: Open::from_skipping_bits(limits.start.skipping),
                    skipping: limits.start.skipping,
                    decoding: Decoding::default(),
                    // Only a run that starts at the input's first byte sees how it begins.
                    encoding_checked: limits.start.offset > 0 || limits.skip > 0,
                    rotated: false,
                    at: part.at,
                    read: 0,
                    deferred: (part.at.is_some() && part.done.is_some()).then_some(None),
                    limits,
                };
                read_loop.run(input);
                let last = read_loop.deferred.take().flatten();
                metrics.logs_open.store(0, Ordering::Relaxed);
                let stopped = cancel.is_cancelled() || {
                    let progress = lock(&progress);
                    progress.stop || progress.error.is_some()
                };
                if let Some(at) = part.at.filter(|at| !stopped && Some(at.log) != next_log) {
                    // Its last file is read: it is no longer behind.
                    if let Ok(mut behind) = metrics.behind.lock() {
                        behind.retain(|b| b.log != at.log);
                    }
                }
                let replaced = replaced.is_some_and(|r| r.load(Ordering::Relaxed));
                let end = match (stopped, part.at, part.done) {
                    (false, Some(at), Some(done)) if !replaced => Some(At {
                        done: Some(done),
                        ..at
                    }),
                    _ => None,
                };
                let sent = match (last, end) {
                    // The file's last batch says it was read to its end.
                    (Some(mut last), Some(end)) => {
                        last.at = Some(end);
                        read_loop.push(last)
                    }
                    // Nothing of it was handed out: a batch of no lines says so.
                    (None, Some(end)) => {
                        read_loop.at = Some(end);
                        read_loop.send(Bytes::new(), 0, Piece::Lines, 0, None, read_loop.tail())
                    }
                    // Read, if not to its end (a drain): written all the same.
                    (Some(last), None) => cancel.is_cancelled() || read_loop.push(last),
                    (None, None) => true,
                };
                if replaced {
                    passed_over = part.at.map(|at| at.log);
                }
                if !sent {
                    break;
                }
                (seq, searched) = (read_loop.seq, read_loop.searched);
                buffers = std::mem::take(&mut read_loop.buffers);
                // A line left unfinished is read again by the run that finds it whole.
                buffers.current.clear();
                if stopped {
                    break;
                }
            }
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
    tokio::select! {
        done = &mut done_rx => {
            // The thread drops its end without answering only when it panicked.
            if done.is_err() {
                return Err(Error::Panic { stage: "reader" });
            }
        }
        () = cancel.cancelled() => {
            // Unblocks a thread waiting to send to parsers that stopped receiving.
            close();
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
        }
    }
    let mut progress = lock(&progress);
    if let Some(error) = progress.error.take() {
        return Err(Error::Read(error));
    }
    tracing::debug!(
        "reader finished: {} lines ({} bytes searched for line ends, {} carried across reads)",
        metrics.lines_read.load(Ordering::Relaxed),
        progress.searched,
        progress.carried
    );
    Ok(())
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

    /// Reads `input` through the reader with `settings`; the lines handed out.
    async fn hand_out(input: &'static [u8], settings: Settings) -> Vec<u8> {
        let (tx, rx) = async_channel::bounded(4);
        let stage = tokio::spawn(run(
            io::Cursor::new(input),
            tx,
            Window::new(4),
            Settings {
                batch_lines: 7,
                max_line_bytes: 1 << 20,
                ..settings
            },
            Arc::new(Metrics::default()),
            CancellationToken::new(),
            CancellationToken::new(),
        ));
        let mut seen = Vec::new();
        while let Ok(batch) = rx.recv().await {
            seen.extend_from_slice(&batch.data);
        }
        stage.await.unwrap().unwrap();
        seen
    }

    #[tokio::test]
    async fn a_file_that_no_longer_starts_as_it_was_listed_hands_out_nothing() {
        // Emptied and written anew (copytruncate) between its listing and its first read: its
        // old lines are in the copy, these are not the ones the set planned to read from here.
        let replaced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let listed = Fingerprint::of(b"2026-12-05T00:00:00Z INFO old\n");
        let settings = Settings {
            expect_head: Some((listed, replaced.clone())),
            ..Settings::default()
        };
        let out = hand_out(b"2026-12-05T00:00:01Z INFO new\nmore\n", settings).await;
        assert_eq!(String::from_utf8_lossy(&out), "");
        assert!(replaced.load(Ordering::Relaxed));
        // As listed: read.
        let replaced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let settings = Settings {
            expect_head: Some((listed, replaced.clone())),
            ..Settings::default()
        };
        let out = hand_out(b"2026-12-05T00:00:00Z INFO old\nmore\n", settings).await;
        assert_eq!(out, b"2026-12-05T00:00:00Z INFO old\nmore\n");
        assert!(!replaced.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn every_line_arrives_once_in_order_whatever_the_chunking() {
        let input: Vec<u8> = (1..=5000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .chain(*b"last")
            .collect();
        let (tx, rx) = async_channel::bounded(4);
        let window = Window::new(4);
        let metrics = Arc::new(Metrics::default());
        let stage = tokio::spawn(run(
            io::Cursor::new(input.clone()),
            tx,
            window,
            Settings {
                batch_lines: 7,
                max_line_bytes: 1 << 20,
                hold_last_line: false,
                ..Settings::default()
            },
            metrics.clone(),
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
        stage.await.unwrap().unwrap();
        assert_eq!(seen, input);
        assert_eq!(metrics.lines_read.load(Ordering::Relaxed), 5001);
        assert_eq!(next_line, 5002);
    }
}
