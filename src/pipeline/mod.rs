//! The pipeline: four stages as tasks in one `JoinSet`, joined by bounded channels.
//!
//! ```text
//!   input ──▶ reader ──lines──▶ parser × N ──parsed──▶ validator ──valid──▶ writer ──▶ OUTPUT
//!  (thread)   RawBatch          (one shared receiver)   (restores order)     (retries)  [rejects]
//! ```
//!
//! **Backpressure.** Every batch takes a permit from the in-flight window before the reader sends
//! it and gives it back once the writer has copied it out. A slow writer therefore stops the
//! reader, and memory is bounded by `--capacity`, never by the input's size.
//!
//! **Two ways to stop.** *Drain* (SIGINT/SIGTERM): the reader stops taking input and closes its
//! channel; every stage finishes what it has and closes the next, so all that was read is written.
//! *Cancel* (the first error or panic in any stage): every stage stops at its next await and the
//! run returns that error. Stages never stop on a failed send: the stage that closed the channel
//! reports why.

pub mod parser;
pub mod reader;
pub mod validator;
pub mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{Committer, Position};
use crate::cli::Config;
use crate::error::Error;
use crate::output::Sink;
use crate::summary::Summary;

/// Receives the next message, or `None` once the channel is closed and empty or `cancel` fires.
///
/// # Cancel safety
/// Safe: a message is either returned or left in the channel.
async fn recv<T>(rx: &async_channel::Receiver<T>, cancel: &CancellationToken) -> Option<T> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        msg = rx.recv() => msg.ok(),
    }
}

/// Sends `msg`, waiting while the channel is full; false when the receiver is gone or on cancel.
async fn send<T>(tx: &async_channel::Sender<T>, msg: T, cancel: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = cancel.cancelled() => false,
        sent = tx.send(msg) => sent.is_ok(),
    }
}

/// Counters every stage can read while the run goes on, for the drain timeout's message.
/// Updated once per batch or buffer, never per line.
#[derive(Debug, Default)]
pub struct Live {
    /// Lines the reader has handed out.
    pub lines_read: AtomicU64,
    /// Lines whose outcome is final: written, or rejected, dropped, filtered or blank.
    pub lines_settled: AtomicU64,
    /// Records written to the output.
    pub written: AtomicU64,
}

/// How `--capacity` (records in flight) becomes batches: the batch size and the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Most lines in one batch.
    pub batch_lines: usize,
    /// Most batches between the reader and the writer; also each channel's bound.
    pub window: usize,
}

impl Tuning {
    /// Splits `capacity` lines into a window of batches: enough batches to keep every parser
    /// busy, each as large as that allows.
    pub fn new(capacity: usize, workers: usize) -> Tuning {
        let window = (2 * workers + 2).min(capacity).max(1);
        let batch_lines = capacity.div_ceil(window);
        Tuning { batch_lines, window }
    }
}

/// One stage's report, as the `JoinSet` returns it.
enum Report {
    Reader(reader::ReaderReport),
    Parser(parser::ParserReport),
    Validator(validator::ValidatorReport),
    Writer(writer::WriterReport),
}

/// Runs the whole pipeline from `input` to `output` (and `rejects`) until the input ends, a
/// drain is asked for, or a stage fails.
///
/// # Errors
/// The first stage error; [`Error::Panic`] naming the stage if one panicked.
pub async fn run<W, R>(
    config: &Config,
    input: impl Read + Send + 'static,
    start: Position,
    output: W,
    rejects: Option<R>,
    committer: Option<Committer>,
    drain: CancellationToken,
) -> Result<Summary, Error>
where
    W: Sink + 'static,
    R: Sink + 'static,
{
    let started = Instant::now();
    let cancel = CancellationToken::new();
    let live = Arc::new(Live::default());
    let tuning = Tuning::new(config.capacity.get(), config.workers.get());
    let window = Arc::new(Semaphore::new(tuning.window));
    let (lines_tx, lines_rx) = async_channel::bounded(tuning.window);
    let (parsed_tx, parsed_rx) = async_channel::bounded(tuning.window);
    let (valid_tx, valid_rx) = async_channel::bounded(tuning.window);

    let mut stages = Stages::new(cancel.clone());
    let limits = reader::Settings {
        batch_lines: tuning.batch_lines,
        max_line_bytes: config.max_line_bytes,
        // A growing log's last line may still be half-written: a checkpointed run leaves it.
        hold_last_line: committer.is_some(),
        start,
    };
    let reader = reader::run(
        input,
        lines_tx,
        window,
        limits,
        live.clone(),
        drain.clone(),
        cancel.clone(),
    );
    stages.spawn("reader", async move { reader.await.map(Report::Reader) });
    let pool = Arc::new(parser::EntryPool::default());
    for worker in 0..config.workers.get() {
        let parser = parser::run(
            worker,
            lines_rx.clone(),
            parsed_tx.clone(),
            pool.clone(),
            config.max_line_bytes,
            cancel.clone(),
        );
        stages.spawn("parser", async move { parser.await.map(Report::Parser) });
    }
    // The stages hold the only handles now, so each channel closes when its senders finish.
    drop((lines_rx, parsed_tx));
    let validator = validator::run(parsed_rx, valid_tx, config.min_level, cancel.clone());
    stages.spawn("validator", async move { validator.await.map(Report::Validator) });
    let writer = writer::run(
        valid_rx,
        output,
        rejects,
        writer::Settings {
            format: config.format,
            retry: config.retry,
            checkpoint: committer.map(|c| (c, start)),
        },
        live.clone(),
        cancel.clone(),
    );
    stages.spawn("writer", async move { writer.await.map(Report::Writer) });

    // A drain that cannot finish (a writer stuck retrying, a pipe nobody reads) is cut short.
    let timeout = config.shutdown_timeout;
    let drain_expired = async move {
        drain.cancelled().await;
        tokio::time::sleep(timeout).await;
    };
    let mut summary = tokio::select! {
        joined = stages.join() => joined?,
        () = drain_expired => {
            cancel.cancel();
            let written = live.written.load(Ordering::Relaxed);
            let read = live.lines_read.load(Ordering::Relaxed);
            let in_flight = read - live.lines_settled.load(Ordering::Relaxed).min(read);
            return Err(Error::DrainTimedOut { after: timeout, written, in_flight });
        }
    };
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The running stages: one `JoinSet`, the stage name of each task, and the cancel token.
struct Stages {
    tasks: JoinSet<Result<Report, Error>>,
    names: HashMap<tokio::task::Id, &'static str>,
    cancel: CancellationToken,
}

impl Stages {
    fn new(cancel: CancellationToken) -> Stages {
        Stages {
            tasks: JoinSet::new(),
            names: HashMap::new(),
            cancel,
        }
    }

    fn spawn(
        &mut self,
        stage: &'static str,
        task: impl Future<Output = Result<Report, Error>> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), stage);
    }

    /// Waits for every stage; on the first error or panic, cancels the others and returns it.
    async fn join(mut self) -> Result<Summary, Error> {
        let mut summary = Summary::default();
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let error = match joined {
                Ok((_, Ok(report))) => {
                    match report {
                        Report::Reader(r) => summary.add_reader(r),
                        Report::Parser(p) => summary.parsed_by_worker.push(p.lines),
                        Report::Validator(v) => summary.add_validator(v),
                        Report::Writer(w) => {
                            if w.output_closed {
                                // Nobody reads the output any more: stop the rest, quietly.
                                self.cancel.cancel();
                            }
                            summary.add_writer(w);
                        }
                    }
                    continue;
                }
                Ok((_, Err(error))) => error,
                Err(join_error) => {
                    let stage = self.names.get(&join_error.id()).copied().unwrap_or("unknown");
                    Error::Panic { stage }
                }
            };
            self.cancel.cancel();
            first_error.get_or_insert(error);
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(summary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_stage_cancels_the_others_and_is_named() {
        let cancel = CancellationToken::new();
        let mut stages = Stages::new(cancel.clone());
        let waiter = cancel.clone();
        stages.spawn("validator", async move {
            waiter.cancelled().await;
            Ok(Report::Validator(validator::ValidatorReport::default()))
        });
        stages.spawn("parser", async { panic!("injected") });
        let error = stages.join().await.unwrap_err();
        assert!(matches!(error, Error::Panic { stage: "parser" }), "got {error:?}");
        assert!(cancel.is_cancelled());
    }

    /// The original design's backpressure test: with room for 4, a consumer taking 50 ms an item
    /// holds the sender back. Of 10 sends, 4 fill the channel, 1 is taken at once, and each of
    /// the other 5 waits for the consumer: at least 250 ms. (A lower bound: a slow machine only
    /// makes it longer.)
    #[tokio::test]
    async fn a_full_channel_suspends_the_sender() {
        let (tx, rx) = async_channel::bounded(4);
        let consumer = tokio::spawn(async move {
            while rx.recv().await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        let cancel = CancellationToken::new();
        let started = Instant::now();
        for i in 0..10 {
            assert!(send(&tx, i, &cancel).await);
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed >= std::time::Duration::from_millis(250),
            "10 sends took only {elapsed:?}"
        );
        drop(tx);
        consumer.await.unwrap();
    }

    #[test]
    fn capacity_splits_into_enough_batches_for_every_worker() {
        assert_eq!(
            Tuning::new(1024, 4),
            Tuning {
                batch_lines: 103,
                window: 10
            }
        );
        assert_eq!(
            Tuning::new(4, 4),
            Tuning {
                batch_lines: 1,
                window: 4
            }
        );
        assert_eq!(
            Tuning::new(1, 8),
            Tuning {
                batch_lines: 1,
                window: 1
            }
        );
    }
}
