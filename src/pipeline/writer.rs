//! The writer stage: hands each batch's rendered records to the sink, writes its rejected
//! lines to the rejects file once the sink has stored them, and commits the checkpoint.
//!
//! Fed [`ValidBatch`]es in input order by the validator; the last stage. What "stored" means is
//! the sink's business (see [`crate::sink`]): a file has the bytes, a server has acknowledged
//! them. A batch's window slot is freed only then, so a slow sink holds the reader back.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::batch::ValidBatch;
use crate::channel::recv;
use crate::checkpoint::{Commit, Position};
use crate::config::RetryPolicy;
use crate::error::Error;
use crate::metrics::{Metrics, add};
use crate::output::Writable;
use crate::sink::file::FileSink;
use crate::sink::{Failure, Sink, Stop, Stored};

/// How the writer retries and commits.
#[derive(Debug)]
pub struct Settings {
    /// Retry schedule for failing writes of the rejects file.
    pub retry: RetryPolicy,
    /// With `--checkpoint`: the committer, and where this run started in its input.
    pub checkpoint: Option<(Box<dyn Commit>, Position)>,
    /// Window slots the sink's unsettled batches may hold between two sends (see
    /// [`Sink::send`], [`crate::batch::Window::hold`]).
    pub hold: usize,
    /// A follower's run, drained when OUTPUT is found rotated away at a commit, so that the
    /// next run writes to the file at OUTPUT's path (a run that reads to its end just ends).
    pub restart: Option<CancellationToken>,
}

/// The rejects file and the checkpoint: what the writer keeps besides the sink.
struct Books<R> {
    rejects: Option<FileSink<R>>,
    /// The committer, and where the input is settled (stored, with its rejects).
    checkpoint: Option<(Box<dyn Commit>, Position)>,
    /// Where the last batch handed to the sink ends, and where the last commit is: apart, the
    /// writer has something to commit even if no batch comes again.
    sent: Position,
    committed: Position,
    metrics: Arc<Metrics>,
    /// See [`Settings::restart`].
    restart: Option<CancellationToken>,
}

impl<R: Writable> Books<R> {
    /// Settles every batch the sink has stored: its rejects are written, it is counted, and
    /// the checkpoint commits when due (syncing both files first, so a commit never names
    /// bytes a power loss could take back).
    async fn settle(&mut self, sink: &mut impl Sink) -> Result<(), Stop> {
        while let Some(batch) = sink.settled() {
            let rejects_bytes = match self.rejects.as_mut() {
                Some(rejects) => {
                    let before = rejects.stored();
                    let written = rejects
                        .write(batch.rendered_rejects(), batch.rejects().len() as u64)
                        .await;
                    let now = rejects.stored();
                    add(&self.metrics.rejects_written, now.records - before.records);
                    add(&self.metrics.retries, now.retries - before.retries);
                    written?;
                    batch.rendered_rejects().len()
                }
                None => 0,
            };
            add(&self.metrics.lines_settled, batch.lines());
            if let Some(last) = batch.last_timestamp() {
                let ns = i64::try_from(last.unix_timestamp_nanos()).unwrap_or(i64::MAX);
                self.metrics
                    .last_record_ns
                    .store(ns, std::sync::atomic::Ordering::Relaxed);
            }
            let due = self.checkpoint.as_mut().is_some_and(|(committer, settled)| {
                *settled = batch.end();
                committer.settled(batch.end(), batch.at(), batch.lines());
                committer.due((batch.rendered().len() + rejects_bytes) as u64)
            });
            if due {
                self.commit(sink)?;
            }
            // The batch's window slot is freed here, once it is stored.
            drop(batch);
        }
        Ok(())
    }

    /// When the writer, idle, must commit what it sent since the last commit: the committer's
    /// time-based due point; `None` when nothing is uncommitted (or there is no checkpoint).
    fn idle_commit_at(&self) -> Option<Instant> {
        let (committer, _) = self.checkpoint.as_ref()?;
        (self.sent != self.committed)
            .then(|| committer.due_at())
            .flatten()
    }

    /// Idle past the due point: waits until the sink has stored everything sent, settles it and
    /// commits, so that a quiet input (a live pipe, a stream with no new messages) loses nothing
    /// to a kill and a collector acknowledges what it wrote.
    async fn commit_idle(&mut self, sink: &mut impl Sink) -> Result<(), Stop> {
        let before = sink.stored();
        let flushed = sink.flush().await;
        count(&self.metrics, before, sink.stored());
        flushed?;
        self.settle(sink).await?;
        if self
            .checkpoint
            .as_ref()
            .is_some_and(|(_, settled)| *settled != self.committed)
        {
            self.commit(sink)?;
        }
        // Everything sent is settled now: a drain or cancel aside, nothing is left to commit.
        self.sent = self.committed;
        Ok(())
    }

    /// Commits what is settled, syncing both files first, so that a commit never names bytes a
    /// power loss could take back.
    fn commit(&mut self, sink: &mut impl Sink) -> Result<(), Stop> {
        let Some((committer, settled)) = self.checkpoint.as_mut() else {
            return Ok(());
        };
        sink.sync()?;
        if let Some(rejects) = self.rejects.as_mut() {
            rejects.sync()?;
        }
        commit_files(committer.as_mut(), *settled, sink, self.rejects.as_ref(), false)?;
        self.committed = *settled;
        // Rotated away while written: this run ends as a drain does, and the next one opens
        // OUTPUT anew (a follower's; see `Settings::restart`).
        if let Some(restart) = self.restart.as_ref().filter(|_| sink.replaced()) {
            tracing::info!("{} was rotated away: reopening it", sink.describe());
            self.metrics
                .output_replaced
                .store(true, std::sync::atomic::Ordering::Relaxed);
            restart.cancel();
        }
        Ok(())
    }
}

/// Commits the input up to `settled` with what this run stored in OUTPUT and the rejects file
/// (both synced), and their lengths as they are (see [`Commit::lengths_are`]).
fn commit_files<R: Writable>(
    committer: &mut dyn Commit,
    settled: Position,
    sink: &impl Sink,
    rejects: Option<&FileSink<R>>,
    finished: bool,
) -> Result<(), Error> {
    committer.lengths_are(sink.length(), rejects.and_then(|r| r.length()));
    let rejects_len = rejects.map_or(0, |r| r.stored().bytes);
    committer.commit(settled, sink.committed_len(), rejects_len, finished)
}

/// Adds what reached the sink between `before` and `now` to the counters.
fn count(metrics: &Metrics, before: Stored, now: Stored) {
    add(&metrics.written, now.records - before.records);
    add(&metrics.bytes_out, now.bytes - before.bytes);
    add(&metrics.retries, now.retries - before.retries);
}

/// Runs the writer until the validator is done and everything is stored, or `cancel` fires.
///
/// At the end the sink and the rejects file are shut down (fsynced) and committed. A closed `-`
/// pipe ends the whole run, quietly: the other stages are cancelled (the reader may be blocked
/// on an input that never ends).
///
/// # Errors
/// [`Error::Write`] when a write fails for good or a sync fails; [`Error::Checkpoint`] when a
/// commit cannot be written; the sink's own errors.
pub async fn run<S: Sink, R: Writable>(
    valid_rx: async_channel::Receiver<ValidBatch>,
    mut sink: S,
    rejects: Option<R>,
    settings: Settings,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let hold = settings.hold;
    let start = settings
        .checkpoint
        .as_ref()
        .map(|(_, start)| *start)
        .unwrap_or_default();
    let mut books = Books {
        rejects: rejects.map(|r| FileSink::new(r, settings.retry)),
        checkpoint: settings.checkpoint,
        sent: start,
        committed: start,
        metrics: metrics.clone(),
        restart: settings.restart,
    };
    let result = async {
        loop {
            let next = recv(&valid_rx, &cancel, &metrics.writer);
            let batch = match books.idle_commit_at() {
                None => next.await,
                Some(at) => tokio::select! {
                    biased;
                    batch = next => batch,
                    () = tokio::time::sleep_until(at.into()) => {
                        books.commit_idle(&mut sink).await?;
                        continue;
                    }
                },
            };
            let Some(batch) = batch else { break };
            books.sent = batch.end();
            let rejects_bytes = books
                .rejects
                .as_ref()
                .map_or(0, |_| batch.rendered_rejects().len());
            if let Some((committer, _)) = books.checkpoint.as_mut()
                && !(batch.rendered().is_empty() && rejects_bytes == 0)
            {
                committer.start_writing(sink.committed_len())?;
            }
            // Time handing over is time waiting for the output: the writer's blocked time.
            let before = sink.stored();
            let writing = Instant::now();
            let sent = sink.send(batch, hold).await;
            metrics.writer.blocked(writing.elapsed());
            // Counted whether or not it failed: what reached the output, did.
            count(&metrics, before, sink.stored());
            sent?;
            books.settle(&mut sink).await?;
        }
        let before = sink.stored();
        let flushed = sink.flush().await;
        count(&metrics, before, sink.stored());
        flushed?;
        books.settle(&mut sink).await?;
        sink.shutdown().await?;
        if let Some(rejects) = books.rejects.as_mut() {
            rejects.shutdown().await?;
        }
        if let Some((committer, settled)) = books.checkpoint.as_mut() {
            commit_files(committer.as_mut(), *settled, &sink, books.rejects.as_ref(), true)?;
        }
        Ok::<(), Stop>(())
    }
    .await;

    tracing::debug!("writer finished: {} records", sink.stored().records);
    match result {
        Ok(()) => Ok(()),
        Err(Stop::Write(Failure { quiet: true, .. })) => {
            metrics
                .output_closed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            cancel.cancel();
            Ok(())
        }
        Err(Stop::Write(Failure {
            target,
            attempts,
            error,
            ..
        })) => Err(Error::Write {
            target,
            attempts,
            source: error,
        }),
        Err(Stop::Fatal(error)) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use tokio::io::AsyncWrite;
    use tokio::sync::Semaphore;

    use std::io;
    use std::time::Duration;

    use super::*;
    use crate::Summary;
    use crate::batch::ParsedBatch;
    use crate::pipeline::parser::parse_batch;
    use crate::pipeline::validator::{Rules, ValidatorReport, validate};

    /// A sink that accepts at most `max_per_write` bytes a call; after its first `ok_first`
    /// calls, it fails the next `failures` with `kind`. So errors strike with bytes already out,
    /// where a retry from the buffer's start would write them twice.
    struct FaultySink {
        written: Vec<u8>,
        ok_first: usize,
        failures: usize,
        kind: io::ErrorKind,
        max_per_write: usize,
        calls: usize,
        /// From this call on, every write fails with `kind`.
        fail_from_call: Option<usize>,
    }

    impl FaultySink {
        fn new(failures: usize, kind: io::ErrorKind, max_per_write: usize) -> Self {
            FaultySink {
                written: Vec::new(),
                ok_first: 1,
                failures,
                kind,
                max_per_write,
                calls: 0,
                fail_from_call: None,
            }
        }
    }

    impl AsyncWrite for FaultySink {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.fail_from_call.is_some_and(|from| self.calls >= from) {
                return Poll::Ready(Err(io::Error::from(self.kind)));
            }
            if self.calls > self.ok_first && self.failures > 0 {
                self.failures -= 1;
                return Poll::Ready(Err(io::Error::from(self.kind)));
            }
            let n = buf.len().min(self.max_per_write);
            self.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Writable for FaultySink {
        fn describe(&self) -> String {
            "'faulty'".to_owned()
        }
        fn discard_tail(&mut self, bytes: u64) -> io::Result<()> {
            let len = self.written.len() - bytes as usize;
            self.written.truncate(len);
            Ok(())
        }
    }

    /// Shares a sink with the test, which reads what was written after the writer is done.
    struct Shared<T>(Arc<std::sync::Mutex<T>>);

    impl<T: AsyncWrite + Unpin> AsyncWrite for Shared<T> {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut *self.0.lock().unwrap()).poll_write(cx, buf)
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl<T: Writable> Writable for Shared<T> {
        fn describe(&self) -> String {
            self.0.lock().unwrap().describe()
        }
        fn discard_tail(&mut self, bytes: u64) -> io::Result<()> {
            self.0.lock().unwrap().discard_tail(bytes)
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 3,
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };

    /// A batch of valid records numbered `lines`, made the way the pipeline makes them.
    fn batch(lines: std::ops::RangeInclusive<u64>, window: &Arc<Semaphore>) -> ValidBatch {
        let first_line = *lines.start();
        let text: String = lines
            .map(|i| format!("2026-04-15T00:00:00Z INFO message number {i}\n"))
            .collect();
        let parsed = parse_batch(first_line, Bytes::from(text));
        let permit = window.clone().try_acquire_owned().unwrap();
        validate(
            ParsedBatch {
                at: None,
                seq: 0,
                end: Position::default(),
                parsed,
                permit,
            },
            &Rules::default(),
            &mut ValidatorReport::default(),
        )
    }

    fn expected(lines: std::ops::RangeInclusive<u64>) -> String {
        lines
            .map(|i| format!("{i:>6}  INFO message number {i}\n"))
            .collect()
    }

    /// Runs the writer over `batches` batches of 10 records into `sink`.
    async fn write_batches(
        sink: FaultySink,
        batches: u64,
    ) -> (Result<Summary, Error>, Arc<std::sync::Mutex<FaultySink>>) {
        let sink = Arc::new(std::sync::Mutex::new(sink));
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = async_channel::bounded(batches as usize);
        let window = Arc::new(Semaphore::new(batches as usize));
        for b in 0..batches {
            tx.try_send(batch(b * 10 + 1..=b * 10 + 10, &window)).unwrap();
        }
        drop(tx);
        let result = run(
            rx,
            FileSink::new(Shared(sink.clone()), POLICY),
            None::<FaultySink>,
            Settings {
                retry: POLICY,
                checkpoint: None,
                hold: 0,
                restart: None,
            },
            metrics.clone(),
            CancellationToken::new(),
        )
        .await;
        (result.map(|()| metrics.snapshot(Duration::ZERO)), sink)
    }

    #[tokio::test(start_paused = true)]
    async fn writer_retries_transient_errors_without_duplicates() {
        for kind in [
            io::ErrorKind::Interrupted,
            io::ErrorKind::TimedOut,
            io::ErrorKind::StorageFull,
        ] {
            // 100 bytes a call: the errors come with the first record and a half already out.
            let (result, sink) = write_batches(FaultySink::new(3, kind, 100), 5).await;
            let report = result.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(
                String::from_utf8(sink.lock().unwrap().written.clone()).unwrap(),
                expected(1..=50)
            );
            assert_eq!((report.written, report.retries), (50, 3), "{kind:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn short_writes_resume_at_the_first_unwritten_byte() {
        let mut faulty = FaultySink::new(2, io::ErrorKind::WouldBlock, 7);
        faulty.ok_first = 3; // 21 bytes out, then the errors
        let (result, sink) = write_batches(faulty, 5).await;
        assert_eq!(result.unwrap().written, 50);
        assert_eq!(
            String::from_utf8(sink.lock().unwrap().written.clone()).unwrap(),
            expected(1..=50)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_from_the_initial_delay() {
        let started = tokio::time::Instant::now();
        let mut faulty = FaultySink::new(3, io::ErrorKind::TimedOut, usize::MAX);
        faulty.ok_first = 0;
        let (result, _) = write_batches(faulty, 1).await;
        result.unwrap();
        // 50 + 100 + 200 ms before jitter; jitter only adds (up to 100%).
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(350), "waited {waited:?}");
        assert!(waited <= Duration::from_millis(700), "waited {waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn writer_gives_up_after_its_retries_with_a_clear_error() {
        let (result, sink) =
            write_batches(FaultySink::new(usize::MAX, io::ErrorKind::StorageFull, 7), 1).await;
        let error = result.unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot write to 'faulty' (gave up after 4 attempts)"
        );
        assert_eq!(error.exit(), crate::Exit::Io);
        assert_eq!(
            sink.lock().unwrap().calls,
            1 + 4,
            "one write went out, then four tries"
        );
        assert!(
            sink.lock().unwrap().written.is_empty(),
            "the torn 7 bytes were cut off"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let (result, sink) = write_batches(FaultySink::new(1, io::ErrorKind::PermissionDenied, 7), 1).await;
        assert!(
            matches!(result, Err(Error::Write { attempts: 1, .. })),
            "{result:?}"
        );
        assert_eq!(sink.lock().unwrap().calls, 2, "one write went out, then one try");
    }

    #[tokio::test(start_paused = true)]
    async fn a_torn_record_is_cut_off_when_the_writer_gives_up() {
        // 30 bytes a call: the first call writes one record (29 bytes) and a byte of the next,
        // then the device fails for good.
        let mut sink = FaultySink::new(0, io::ErrorKind::PermissionDenied, 30);
        sink.fail_from_call = Some(2);
        let (result, sink) = write_batches(sink, 1).await;
        assert!(
            matches!(result, Err(Error::Write { attempts: 1, .. })),
            "{result:?}"
        );
        assert_eq!(
            String::from_utf8(sink.lock().unwrap().written.clone()).unwrap(),
            expected(1..=1)
        );
    }

    /// What the writer did, in order, as the recording sinks and committer saw it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Event {
        /// A file's length after a write (`rejects` tells which file).
        Wrote {
            rejects: bool,
            len: u64,
        },
        /// A sync (fsync, or the shutdown's) of a file at this length.
        Synced {
            rejects: bool,
            len: u64,
        },
        StartWriting,
        Commit {
            out: u64,
            rejects: u64,
            finished: bool,
        },
    }

    type Log = Arc<std::sync::Mutex<Vec<Event>>>;

    struct RecordingSink {
        rejects: bool,
        len: u64,
        log: Log,
    }

    impl AsyncWrite for RecordingSink {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            // Short writes, so that syncs can fall between the pieces of one buffer.
            let n = buf.len().min(1000);
            self.len += n as u64;
            let event = Event::Wrote {
                rejects: self.rejects,
                len: self.len,
            };
            self.log.lock().unwrap().push(event);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let event = Event::Synced {
                rejects: self.rejects,
                len: self.len,
            };
            self.log.lock().unwrap().push(event);
            Poll::Ready(Ok(()))
        }
    }

    impl Writable for RecordingSink {
        fn describe(&self) -> String {
            "'recording'".to_owned()
        }
        fn sync(&mut self) -> io::Result<()> {
            let event = Event::Synced {
                rejects: self.rejects,
                len: self.len,
            };
            self.log.lock().unwrap().push(event);
            Ok(())
        }
    }

    #[derive(Debug)]
    struct RecordingCommitter {
        log: Log,
        pending: u64,
    }

    impl Commit for RecordingCommitter {
        fn start_writing(&mut self, _: u64) -> Result<(), Error> {
            self.log.lock().unwrap().push(Event::StartWriting);
            Ok(())
        }
        fn due(&mut self, written: u64) -> bool {
            self.pending += written;
            std::mem::replace(&mut self.pending, 0) > 0
        }
        fn commit(&mut self, _: Position, out: u64, rejects: u64, finished: bool) -> Result<(), Error> {
            self.log.lock().unwrap().push(Event::Commit {
                out,
                rejects,
                finished,
            });
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_commit_follows_a_sync_of_the_bytes_it_names_in_both_files() {
        let log: Log = Arc::default();
        let sink = |rejects| RecordingSink {
            rejects,
            len: 0,
            log: log.clone(),
        };
        let window = Arc::new(Semaphore::new(40));
        let (tx, rx) = async_channel::bounded(40);
        for b in 0..40u64 {
            // Every fourth line rejected: both files grow.
            let text: String = (1..=1000)
                .map(|i| match i % 4 {
                    0 => format!("garbage {b} {i}\n"),
                    _ => format!("2026-04-15T00:00:00Z INFO batch {b} line {i}\n"),
                })
                .collect();
            let parsed = parse_batch(b * 1000 + 1, Bytes::from(text));
            let permit = window.clone().try_acquire_owned().unwrap();
            let batch = ParsedBatch {
                at: None,
                seq: b,
                end: Position::default(),
                parsed,
                permit,
            };
            tx.try_send(validate(
                batch,
                &Rules::default(),
                &mut ValidatorReport::default(),
            ))
            .unwrap();
        }
        drop(tx);
        let committer = RecordingCommitter {
            log: log.clone(),
            pending: 0,
        };
        let settings = Settings {
            retry: POLICY,
            checkpoint: Some((Box::new(committer), Position::default())),
            hold: 0,
            restart: None,
        };
        let metrics = Arc::new(Metrics::default());
        run(
            rx,
            FileSink::new(sink(false), POLICY),
            Some(sink(true)),
            settings,
            metrics,
            CancellationToken::new(),
        )
        .await
        .unwrap();

        let log = log.lock().unwrap().clone();
        let first_write = log.iter().position(|e| matches!(e, Event::Wrote { .. })).unwrap();
        assert!(
            log[..first_write].contains(&Event::StartWriting),
            "wrote before marking the checkpoint"
        );
        let (mut written, mut synced) = ([0u64; 2], [0u64; 2]);
        let mut commits = 0;
        for (i, event) in log.iter().enumerate() {
            let recent = &log[i.saturating_sub(4)..=i];
            match *event {
                Event::Wrote { rejects, len } => written[usize::from(rejects)] = len,
                Event::Synced { rejects, len } => synced[usize::from(rejects)] = len,
                Event::StartWriting => {}
                Event::Commit { out, rejects, .. } => {
                    commits += 1;
                    assert_eq!([out, rejects], written, "a commit names what was written");
                    assert_eq!(
                        written, synced,
                        "commit #{commits} names bytes not synced yet: ...{recent:?}"
                    );
                }
            }
        }
        assert!(commits > 3, "{commits} commits: too few to see the order");
        assert!(
            matches!(log.last(), Some(Event::Commit { finished: true, .. })),
            "{:?}",
            log.last()
        );
    }

    /// A sink that follows a script: per step, a few transient errors, then one short write.
    struct Scripted {
        written: Vec<u8>,
        steps: Vec<(usize, io::ErrorKind, usize)>,
        next: usize,
    }

    impl AsyncWrite for Scripted {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let this = &mut *self;
            let Some(step) = this.steps.get_mut(this.next) else {
                this.written.extend_from_slice(buf);
                return Poll::Ready(Ok(buf.len()));
            };
            if step.0 > 0 {
                step.0 -= 1;
                return Poll::Ready(Err(io::Error::from(step.1)));
            }
            let n = buf.len().min(step.2);
            this.next += 1;
            this.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Writable for Scripted {
        fn describe(&self) -> String {
            "'scripted'".to_owned()
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn any_pattern_of_transient_errors_and_short_writes_keeps_every_record_once(
            steps in proptest::collection::vec(
                (
                    0usize..=3, // at most the retry budget in a row
                    proptest::sample::select(vec![
                        io::ErrorKind::Interrupted,
                        io::ErrorKind::WouldBlock,
                        io::ErrorKind::TimedOut,
                        io::ErrorKind::StorageFull,
                    ]),
                    1usize..300,
                ),
                0..60,
            ),
            batches in 1u64..12,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            let sink = Arc::new(std::sync::Mutex::new(Scripted { written: Vec::new(), steps, next: 0 }));
            let report = runtime.block_on(async {
                let (tx, rx) = async_channel::bounded(batches as usize);
                let window = Arc::new(Semaphore::new(batches as usize));
                for b in 0..batches {
                    tx.try_send(batch(b * 10 + 1..=b * 10 + 10, &window)).unwrap();
                }
                drop(tx);
                let settings = Settings { retry: POLICY, checkpoint: None, hold: 0, restart: None };
                let metrics = Arc::new(Metrics::default());
                let result = run(rx, FileSink::new(Shared(sink.clone()), POLICY), None::<FaultySink>, settings, metrics.clone(), CancellationToken::new()).await;
                result.map(|()| metrics.snapshot(Duration::ZERO))
            });
            let report = report.unwrap();
            let written = String::from_utf8(sink.lock().unwrap().written.clone()).unwrap();
            proptest::prop_assert_eq!(written, expected(1..=batches * 10));
            proptest::prop_assert_eq!(report.written, batches * 10);
        }
    }
}
