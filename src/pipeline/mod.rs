//! The pipeline: four stages as tasks in one `JoinSet`, joined by bounded channels.
//!
//! ```text
//!   source ──lines──▶ parser × N ──parsed──▶ validator ──valid──▶ writer ──▶ sink (OUTPUT)
//!  (reader,   RawBatch  (one shared receiver)   (restores order)     (retries)  [rejects]
//!   fetcher)
//! ```
//!
//! **Backpressure.** Every batch takes its slots of the in-flight window (one, or one per 256 KiB
//! of long lines: [`Window`]) before the reader sends it and gives them back once the writer has
//! written it out. A slow writer therefore stops the reader, and memory is bounded by
//! `--capacity` and `--max-line-bytes`, never by the input's size.
//!
//! **Two ways to stop.** *Drain* (SIGINT/SIGTERM): the reader stops taking input and closes its
//! channel; every stage finishes what it has and closes the next, so all that was read is written.
//! *Cancel* (the first error or panic in any stage, or the output pipe closing): every stage
//! stops at its next await and the run returns that error. A stage whose send fails stops
//! quietly: the stage that closed the channel reports why. A drain that outlasts
//! `--shutdown-timeout` is cut short with a cancel.

//!
//! The source is any [`Source`] (`crate::source`): the stages take batches (`crate::batch`) and
//! never know where they came from.

pub mod parser;
pub mod validator;
pub mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::batch::{EntryPool, Window};
use crate::checkpoint::{Commit, Position};
use crate::config::Config;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::output::Writable;
use crate::sink::Sink;
use crate::source::{Feed, Source};
use crate::summary::Summary;

/// How `--capacity` (records in flight) becomes batches: the batch size and the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Most lines in one batch.
    pub batch_lines: usize,
    /// Slots of the in-flight window between the reader and the writer (a batch takes one or
    /// more); also each channel's bound.
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

/// Runs the whole pipeline from `source` to `output` (and `rejects`) until the input ends, a
/// drain is asked for, or a stage fails. With `checkpoint` (the committer, and where in the
/// input this run starts), the writer commits as it goes. Counters go to `metrics`.
///
/// # Errors
/// The first stage error; [`Error::Panic`] naming the stage if one panicked;
/// [`Error::DrainTimedOut`] when a drain outlasts `--shutdown-timeout`.
pub async fn run<S, R>(
    config: &Config,
    source: Box<dyn Source>,
    checkpoint: Option<(Box<dyn Commit>, Position)>,
    output: S,
    rejects: Option<R>,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error>
where
    S: Sink + 'static,
    R: Writable + 'static,
{
    let started = Instant::now();
    let cancel = CancellationToken::new();
    // This run's own drain: a signal drains it, and so does the writer when it must end early.
    let drain = drain.child_token();
    let tuning = Tuning::new(config.capacity.get(), config.workers.get());
    let window = Window::new(tuning.window);
    let hold = window.hold();
    let (lines_tx, lines_rx) = async_channel::bounded(tuning.window);
    let (parsed_tx, parsed_rx) = async_channel::bounded(tuning.window);
    let (valid_tx, valid_rx) = async_channel::bounded(tuning.window);

    let mut stages = Stages::new(cancel.clone());
    let layout = Arc::new(config.layout());
    let (committer, start) = checkpoint.unzip();
    let feed = Feed {
        lines_tx,
        window,
        batch_lines: tuning.batch_lines,
        capacity: config.capacity.get(),
        metrics: metrics.clone(),
        drain: drain.clone(),
        cancel: cancel.clone(),
    };
    let fed = source.start(feed, committer);
    for (name, task) in fed.tasks {
        stages.spawn(name, task);
    }
    let pool = Arc::new(EntryPool::default());
    // A layout is read by the general parser unless it is fast `plain` without --multiline.
    let reading_of = |layout: &Arc<crate::layout::Layout>| {
        (!layout.is_fast_plain() || config.multiline.is_some())
            .then(|| parser::Reading::new(layout.clone(), config.multiline, config.default_severity))
    };
    for worker in 0..config.workers.get() {
        let parser = parser::Worker {
            id: worker,
            pool: pool.clone(),
            max_line_bytes: config.max_line_bytes,
            render: crate::batch::Render {
                format: config.format,
                // Rendered for the rejects file the writer is given, whatever the config says.
                rejects: rejects.is_some(),
            },
            metrics: metrics.clone(),
            reading: reading_of(&layout),
            pod: match &config.from {
                Some(crate::config::Origin::Files(path)) => pod_of(path, config.format),
                _ => Vec::new(),
            },
            per_log: config.per_log.as_ref().map(|logs| {
                let files = logs
                    .paths
                    .iter()
                    .map(|path| {
                        let mut key = Vec::new();
                        crate::format::write_file_key(&mut key, config.format, path);
                        key
                    })
                    .collect();
                let pods = logs
                    .paths
                    .iter()
                    .map(|path| pod_of(std::path::Path::new(&**path), config.format))
                    .collect();
                let fast: Vec<bool> = logs.layouts.iter().map(|l| reading_of(l).is_none()).collect();
                let readings = logs
                    .layout_of
                    .iter()
                    .map(|&l| (!fast[l as usize]).then_some(l as usize))
                    .collect();
                parser::PerLog {
                    files,
                    pods,
                    readings,
                }
            }),
            readings: config.per_log.as_ref().map_or_else(Vec::new, |logs| {
                logs.layouts
                    .iter()
                    .map(|l| {
                        reading_of(l)
                            .unwrap_or_else(|| parser::Reading::new(l.clone(), None, config.default_severity))
                    })
                    .collect()
            }),
        };
        stages.spawn(
            "parser",
            parser.run(lines_rx.clone(), parsed_tx.clone(), cancel.clone()),
        );
    }
    // The stages hold the only handles now, so each channel closes when its senders finish.
    drop((lines_rx, parsed_tx));
    let validator = validator::run(
        parsed_rx,
        valid_tx,
        validator::Rules {
            min_level: config.min_level,
            max_record_bytes: output.max_record_bytes(),
        },
        metrics.clone(),
        cancel.clone(),
    );
    stages.spawn("validator", validator);
    let settings = writer::Settings {
        retry: config.retry,
        checkpoint: fed.committer.zip(start),
        hold,
        // A checkpointed follower goes on in a new run: what it read next is found by the
        // checkpoint (without one, a new run would read the log from its first line again).
        restart: (config.follow && config.checkpoint.is_some()).then(|| drain.clone()),
    };
    let writer = writer::run(
        valid_rx,
        output,
        rejects,
        settings,
        metrics.clone(),
        cancel.clone(),
    );
    stages.spawn("writer", writer);

    // A drain that cannot finish (a writer stuck retrying, a pipe nobody reads) is cut short.
    let timeout = config.shutdown_timeout;
    let drain_expired = async move {
        drain.cancelled().await;
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        joined = stages.join() => joined?,
        () = drain_expired => {
            cancel.cancel();
            let now = metrics.snapshot(started.elapsed());
            return Err(Error::DrainTimedOut { after: timeout, written: now.written, in_flight: now.in_flight });
        }
    };
    Ok(metrics.snapshot(started.elapsed()))
}

/// The running stages: one `JoinSet`, the stage name of each task, and the cancel token.
struct Stages {
    tasks: JoinSet<Result<(), Error>>,
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

    fn spawn(&mut self, stage: &'static str, task: impl Future<Output = Result<(), Error>> + Send + 'static) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), stage);
    }

    /// Waits for every stage; on the first error or panic, cancels the others and returns it.
    async fn join(mut self) -> Result<(), Error> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let error = match joined {
                Ok((_, Ok(()))) => continue,
                Ok((_, Err(error))) => error,
                Err(join_error) => {
                    let stage = self.names.get(&join_error.id()).copied().unwrap_or("unknown");
                    Error::Panic { stage }
                }
            };
            self.cancel.cancel();
            first_error.get_or_insert(error);
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// What the log at `path` says of its container's pod (see
/// [`crate::layout::container::path_fields`]), rendered as fields in `format`.
fn pod_of(path: &std::path::Path, format: crate::format::Format) -> Vec<u8> {
    let mut rendered = Vec::new();
    for (key, value, number) in crate::layout::container::path_fields(path) {
        crate::format::write_member(&mut rendered, format, key.as_bytes(), value.as_bytes(), number);
    }
    rendered
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
            Ok(())
        });
        stages.spawn("parser", async { panic!("injected") });
        let error = stages.join().await.unwrap_err();
        assert!(matches!(error, Error::Panic { stage: "parser" }), "got {error:?}");
        assert!(cancel.is_cancelled());
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
