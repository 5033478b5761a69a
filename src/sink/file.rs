//! The file sink: a batch's rendered records appended to a file or standard output.
//!
//! A failed write is retried from its first unwritten byte, so a record is never written twice;
//! when the sink gives up, a torn record at the end of the file is cut off again where the
//! output allows it. The rejects file is written the same way.

use std::io;

use backon::RetryableWithContext;
use tokio::io::AsyncWriteExt;

use super::{Failure, Sink, Stop, Stored};
use crate::batch::ValidBatch;
use crate::config::RetryPolicy;
use crate::output::Writable;

/// True for errors worth retrying: interrupted, would block, timed out, out of space.
pub fn is_transient(error: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(error.kind(), Interrupted | WouldBlock | TimedOut | StorageFull)
}

/// An output written with retries, and what reached it.
#[derive(Debug)]
pub struct FileSink<W> {
    output: W,
    policy: RetryPolicy,
    stored: Stored,
    /// The batch last written, until the writer takes it back.
    settled: Option<ValidBatch>,
}

impl<W: Writable> FileSink<W> {
    /// Writes to `output`, retrying transient failures as `policy` says.
    pub fn new(output: W, policy: RetryPolicy) -> Self {
        FileSink {
            output,
            policy,
            stored: Stored::default(),
            settled: None,
        }
    }

    /// What reached the output so far.
    pub fn stored(&self) -> Stored {
        self.stored
    }

    /// Writes all of `buf`, which holds `records` whole records, retrying transient errors.
    ///
    /// On failure, the records that made it are counted and a torn last one is cut off.
    ///
    /// # Errors
    /// The failure that ended the retries.
    pub async fn write(&mut self, buf: &[u8], records: u64) -> Result<(), Failure> {
        let mut written = 0;
        let result = loop {
            if written == buf.len() {
                break Ok(());
            }
            let retries = &mut self.stored.retries;
            match write_with_retries(&mut self.output, &buf[written..], &self.policy, retries).await {
                Ok(0) => break Err((1, io::Error::from(io::ErrorKind::WriteZero))),
                Ok(n) => written += n,
                Err(failed) => break Err(failed),
            }
        };
        self.stored.bytes += written as u64;
        let Err((attempts, error)) = result else {
            self.stored.records += records;
            return Ok(());
        };
        let whole = memchr::memrchr(b'\n', &buf[..written]).map_or(0, |i| i + 1);
        self.stored.records += memchr::memchr_iter(b'\n', &buf[..whole]).count() as u64;
        let torn = (written - whole) as u64;
        // A closed pipe has no reader left to see a torn record, and cannot take bytes back.
        if torn > 0 && error.kind() != io::ErrorKind::BrokenPipe {
            match self.output.discard_tail(torn) {
                Ok(()) => self.stored.bytes -= torn,
                Err(e) => tracing::warn!(
                    "{} ends in {torn} bytes of a partial record that could not be removed: {e}",
                    self.output.describe()
                ),
            }
        }
        Err(self.failure(attempts, error))
    }

    fn failure(&self, attempts: u32, error: io::Error) -> Failure {
        Failure {
            target: self.output.describe(),
            attempts,
            quiet: error.kind() == io::ErrorKind::BrokenPipe && self.output.closed_is_quiet(),
            error,
        }
    }

    /// Makes what was written durable (fsync).
    ///
    /// # Errors
    /// When the device reports that data may be lost.
    pub fn sync(&mut self) -> Result<(), Failure> {
        self.output.sync().map_err(|error| self.failure(1, error))
    }

    /// Flushes and fsyncs the output.
    ///
    /// # Errors
    /// When the device reports that data may be lost.
    pub async fn shutdown(&mut self) -> Result<(), Failure> {
        // Not retried: after a failed fsync the kernel may have dropped the dirty pages, and a
        // second fsync that succeeds would wrongly say the data is safe.
        let result = self.output.shutdown().await;
        result.map_err(|error| self.failure(1, error))
    }
}

impl<W: Writable> Sink for FileSink<W> {
    fn describe(&self) -> String {
        self.output.describe()
    }

    async fn send(&mut self, batch: ValidBatch, _hold: usize) -> Result<(), Stop> {
        self.write(batch.rendered(), batch.len() as u64).await?;
        // Written is settled: a commit syncs first (see `sync`).
        self.settled = Some(batch);
        Ok(())
    }

    fn settled(&mut self) -> Option<ValidBatch> {
        self.settled.take()
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        // Every write went straight to the output.
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Stop> {
        Ok(FileSink::sync(self)?)
    }

    fn committed_len(&self) -> u64 {
        self.stored.bytes
    }

    fn stored(&self) -> Stored {
        self.stored
    }

    fn length(&self) -> Option<u64> {
        self.output.length()
    }

    fn replaced(&self) -> bool {
        self.output.replaced()
    }

    async fn shutdown(&mut self) -> Result<(), Stop> {
        Ok(FileSink::shutdown(self).await?)
    }
}

/// One `write` call; output and bytes go in and come back out, as backon's context wants.
async fn write_once<'a, W: Writable>(
    (output, bytes): (&'a mut W, &'a [u8]),
) -> ((&'a mut W, &'a [u8]), io::Result<usize>) {
    let result = output.write(bytes).await;
    ((output, bytes), result)
}

/// One `write` call, retried per `policy` while it fails transiently.
async fn write_with_retries<W: Writable>(
    output: &mut W,
    bytes: &[u8],
    policy: &RetryPolicy,
    retries: &mut u64,
) -> Result<usize, (u32, io::Error)> {
    let mut attempts = 1;
    let (_, result) = write_once
        .retry(policy.backoff())
        .context((output, bytes))
        .when(is_transient)
        .notify(|e, delay| {
            attempts += 1;
            *retries += 1;
            tracing::warn!("write failed ({e}); retrying in {} ms", delay.as_millis());
        })
        .await;
    result.map_err(|e| (attempts, e))
}
