//! Where the writer stage puts records, behind one interface: [`Sink`].
//!
//! A file or standard output ([`mod@file`]) and a NATS JetStream subject ([`jetstream`]) have the
//! same shape: the writer hands a sink batches in input order and takes back, in that order, the
//! batches whose records are stored for good (written to the file, acknowledged by the server).
//! Only then does it count them, write their rejected lines and commit the checkpoint; each
//! batch holds its window slot until then, so a slow or absent destination stops the reader.

pub mod file;
pub mod jetstream;

use std::future::Future;
use std::io;

use crate::batch::ValidBatch;
use crate::error::Error;

/// A destination for the writer's records.
pub trait Sink: Send {
    /// How messages name this sink: `'out.log'`, `standard output`, `nats://host/subject`.
    fn describe(&self) -> String;

    /// Takes a batch, in input order; returns once the sink has room for the next one and the
    /// batches not yet settled hold at most `hold` slots of the pipeline's window: holding them
    /// all would leave the reader no slot to read the next.
    fn send(&mut self, batch: ValidBatch, hold: usize) -> impl Future<Output = Result<(), Stop>> + Send;

    /// The oldest batch whose records are now stored for good; each batch comes back once.
    fn settled(&mut self) -> Option<ValidBatch>;

    /// Waits until every batch sent has settled.
    fn flush(&mut self) -> impl Future<Output = Result<(), Stop>> + Send;

    /// Makes what settled durable before a checkpoint names it.
    fn sync(&mut self) -> Result<(), Stop>;

    /// The output's length for a checkpoint, which a rerun cuts back to (0 where there is
    /// nothing to cut back).
    fn committed_len(&self) -> u64;

    /// What reached the destination so far.
    fn stored(&self) -> Stored;

    /// The output's length now, where a checkpoint names it (a regular file).
    fn length(&self) -> Option<u64> {
        None
    }

    /// True when the output's path names another file now (rotated away).
    fn replaced(&self) -> bool {
        false
    }

    /// The largest rendered record (without its newline) this sink can carry, if limited.
    fn max_record_bytes(&self) -> Option<usize> {
        None
    }

    /// The last step of a run: makes everything durable.
    fn shutdown(&mut self) -> impl Future<Output = Result<(), Stop>> + Send;
}

/// Running totals of what reached a sink, for the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Records stored whole.
    pub records: u64,
    /// Bytes of those records.
    pub bytes: u64,
    /// Retried writes or re-sent messages.
    pub retries: u64,
}

/// Why a sink (or the writer) stopped.
#[derive(Debug)]
pub enum Stop {
    /// A write failed for good.
    Write(Failure),
    /// Anything else that ends the run: a commit that failed, a server that refused.
    Fatal(Error),
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Self {
        Stop::Write(failure)
    }
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Fatal(error)
    }
}

/// A write that failed for good, with what it was writing to.
#[derive(Debug)]
pub struct Failure {
    /// The sink's [`Sink::describe`].
    pub target: String,
    /// How many times the failing write was tried.
    pub attempts: u32,
    /// The reader of `-` went away (`ingest - | head`): the run ends quietly, exit 0.
    pub quiet: bool,
    /// The last error.
    pub error: io::Error,
}
