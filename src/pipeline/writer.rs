//! The writer stage: formats records into a reused buffer and appends it to the output.
//!
//! Fed [`ValidBatch`]es in input order by the validator; the last stage. A failed write is
//! retried from its first unwritten byte, so a record is never written twice; when the writer
//! gives up, a torn record at the end of the file is cut off again where the sink allows it.

use std::io;
use std::time::Duration;

use backon::{ExponentialBuilder, RetryableWithContext};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::recv;
use super::validator::ValidBatch;
use crate::error::Error;
use crate::format::{Format, write_record, write_reject};
use crate::output::Sink;

/// A buffer this full is written out even while more records are waiting.
const FLUSH_BYTES: usize = 256 * 1024;

/// The retry schedule for a failing write.
///
/// A write that fails with a transient error is tried again up to `retries` times, after
/// `initial`, then twice as long each time up to `max`, each delay plus a random jitter of up
/// to 100% (so that many writers failing together do not retry in lockstep). Every write call
/// gets the whole schedule afresh: a write that makes progress resets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first failure.
    pub retries: u32,
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay between retries, before jitter.
    pub max: Duration,
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_max_times(self.retries as usize)
            .with_jitter()
    }
}

/// True for errors worth retrying: interrupted, would block, timed out, out of space.
pub fn is_transient(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(error.kind(), Interrupted | WouldBlock | TimedOut | StorageFull)
}

/// What the writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterReport {
    /// Records completely written to the output.
    pub written: u64,
    /// Bytes written to the output.
    pub bytes: u64,
    /// Lines written to the rejects file.
    pub rejects_written: u64,
    /// Write retries, for both files.
    pub retries: u64,
    /// The output was a pipe whose reader went away (`ingest - | head`): a quiet stop.
    pub output_closed: bool,
}

/// One destination: its sink, the bytes formatted for it, and what reached it.
struct Target<W> {
    sink: W,
    buf: Vec<u8>,
    /// Records in `buf`.
    pending: u64,
    /// Records that reached the sink whole.
    done: u64,
    /// Bytes that reached the sink.
    bytes: u64,
}

impl<W: Sink> Target<W> {
    fn new(sink: W) -> Self {
        Target {
            sink,
            buf: Vec::with_capacity(FLUSH_BYTES * 2),
            pending: 0,
            done: 0,
            bytes: 0,
        }
    }

    /// Writes the whole buffer, retrying transient errors; then empties it.
    ///
    /// On failure, the records that made it are counted and a torn last one is cut off.
    async fn flush(&mut self, policy: &RetryPolicy, retries: &mut u64) -> Result<(), (u32, io::Error)> {
        let mut written = 0;
        let result = loop {
            if written == self.buf.len() {
                break Ok(());
            }
            match write_with_retries(&mut self.sink, &self.buf[written..], policy, retries).await {
                Ok(0) => break Err((1, io::Error::from(io::ErrorKind::WriteZero))),
                Ok(n) => written += n,
                Err(failed) => break Err(failed),
            }
        };
        self.bytes += written as u64;
        if result.is_ok() {
            self.done += self.pending;
        } else {
            let whole = memchr::memrchr(b'\n', &self.buf[..written]).map_or(0, |i| i + 1);
            self.done += memchr::memchr_iter(b'\n', &self.buf[..whole]).count() as u64;
            let torn = (written - whole) as u64;
            if torn > 0 {
                match self.sink.discard_tail(torn) {
                    Ok(()) => self.bytes -= torn,
                    Err(e) => tracing::warn!(
                        "{} ends in {torn} bytes of a partial record that could not be removed: {e}",
                        self.sink.describe()
                    ),
                }
            }
        }
        self.buf.clear();
        self.pending = 0;
        result
    }
}

/// One `write` call; sink and bytes go in and come back out, as backon's context wants.
async fn write_once<'a, W: Sink>(
    (sink, bytes): (&'a mut W, &'a [u8]),
) -> ((&'a mut W, &'a [u8]), io::Result<usize>) {
    let result = sink.write(bytes).await;
    ((sink, bytes), result)
}

/// One `write` call, retried per `policy` while it fails transiently.
async fn write_with_retries<W: Sink>(
    sink: &mut W,
    bytes: &[u8],
    policy: &RetryPolicy,
    retries: &mut u64,
) -> Result<usize, (u32, io::Error)> {
    let mut attempts = 1;
    let (_, result) = write_once
        .retry(policy.backoff())
        .context((sink, bytes))
        .when(is_transient)
        .notify(|e, delay| {
            attempts += 1;
            *retries += 1;
            tracing::warn!("write failed ({e}); retrying in {} ms", delay.as_millis());
        })
        .await;
    result.map_err(|e| (attempts, e))
}

/// Runs the writer until the validator is done and everything is written, or `cancel` fires.
///
/// The buffer goes out when it is full or when no batch is waiting, so a slow trickle of input
/// still reaches the file promptly. At the end both files are flushed and fsynced.
///
/// # Errors
/// [`Error::Write`] when a write fails for good or the final sync fails.
pub async fn run<W: Sink, R: Sink>(
    valid_rx: async_channel::Receiver<ValidBatch>,
    output: W,
    rejects: Option<R>,
    format: Format,
    policy: RetryPolicy,
    cancel: CancellationToken,
) -> Result<WriterReport, Error> {
    let mut out = Target::new(output);
    let mut rejects = rejects.map(Target::new);
    let mut report = WriterReport::default();

    let result = async {
        while let Some(batch) = recv(&valid_rx, &cancel).await {
            for record in &batch.records {
                write_record(&mut out.buf, format, record);
            }
            out.pending += batch.records.len() as u64;
            if let Some(rejects) = rejects.as_mut() {
                for r in &batch.rejects {
                    write_reject(&mut rejects.buf, r.line_no, r.reason, &r.line);
                }
                rejects.pending += batch.rejects.len() as u64;
            }
            // The batch's bytes are copied out: free its window slot before the slow part.
            drop(batch);
            if out.buf.len() >= FLUSH_BYTES || valid_rx.is_empty() {
                flush_all(&mut out, &mut rejects, &policy, &mut report.retries).await?;
            }
        }
        flush_all(&mut out, &mut rejects, &policy, &mut report.retries).await?;
        shutdown(&mut out).await?;
        if let Some(rejects) = rejects.as_mut() {
            shutdown(rejects).await?;
        }
        Ok(())
    }
    .await;

    report.written = out.done;
    report.bytes = out.bytes;
    report.rejects_written = rejects.as_ref().map_or(0, |r| r.done);
    tracing::debug!("writer finished: {} records", report.written);
    match result {
        Ok(()) => Ok(report),
        Err(Failure { error, .. }) if error.kind() == io::ErrorKind::BrokenPipe => {
            report.output_closed = true;
            Ok(report)
        }
        Err(Failure {
            target,
            attempts,
            error,
        }) => Err(Error::Write {
            target,
            attempts,
            source: error,
        }),
    }
}

/// A write that failed for good, with what it was writing to.
struct Failure {
    target: String,
    attempts: u32,
    error: io::Error,
}

async fn flush_all<W: Sink, R: Sink>(
    out: &mut Target<W>,
    rejects: &mut Option<Target<R>>,
    policy: &RetryPolicy,
    retries: &mut u64,
) -> Result<(), Failure> {
    flush(out, policy, retries).await?;
    if let Some(rejects) = rejects {
        flush(rejects, policy, retries).await?;
    }
    Ok(())
}

async fn flush<W: Sink>(
    target: &mut Target<W>,
    policy: &RetryPolicy,
    retries: &mut u64,
) -> Result<(), Failure> {
    target
        .flush(policy, retries)
        .await
        .map_err(|(attempts, error)| Failure {
            target: target.sink.describe(),
            attempts,
            error,
        })
}

async fn shutdown<W: Sink>(target: &mut Target<W>) -> Result<(), Failure> {
    // Not retried: after a failed fsync the kernel may have dropped the dirty pages, and a
    // second fsync that succeeds would wrongly say the data is safe.
    target.sink.shutdown().await.map_err(|error| Failure {
        target: target.sink.describe(),
        attempts: 1,
        error,
    })
}
