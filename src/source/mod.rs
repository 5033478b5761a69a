//! Every way records come in, one shape: a [`Source`] is handed a [`Feed`] (the parsers'
//! channel, the in-flight window, the stop tokens) and hands the parsers [`RawBatch`]es in order,
//! each with where it ends in the input, which the checkpoint commits once it is written.
//!
//! Standard input or a file ([`mod@file`]); a JetStream stream through a durable consumer
//! ([`jetstream`], on [`consumer`] and its [`lease`]). A new source is a module here and a line
//! where `crate::run` chooses one; the stages never know which source feeds them.

pub mod consumer;
pub mod decompress;
pub mod file;
pub mod follow;
pub mod glob;
pub mod jetstream;
pub mod lease;
pub mod set;
pub mod watch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::batch::{RawBatch, Window};
use crate::checkpoint::Commit;
use crate::error::Error;
use crate::metrics::Metrics;

/// One of a source's tasks, run in the pipeline's `JoinSet` beside the stages.
pub type Task = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// What the pipeline gives a source to feed the parsers.
pub struct Feed {
    /// Where batches go; a source numbers them from 0 (`RawBatch::seq`) in input order.
    pub lines_tx: async_channel::Sender<RawBatch>,
    /// The in-flight window: a batch takes its slots before it is sent and frees them once
    /// written, so a slow writer stops the source.
    pub window: Window,
    /// Most lines (or messages) in one batch.
    pub batch_lines: usize,
    /// Records in flight (`--capacity`).
    pub capacity: usize,
    /// The run's counters.
    pub metrics: Arc<Metrics>,
    /// Stop taking input and close `lines_tx`; what was sent is still written.
    pub drain: CancellationToken,
    /// Stop now: another stage failed.
    pub cancel: CancellationToken,
}

/// A started source: its tasks, and the committer the writer commits through (the
/// checkpoint's, or one the source wraps around it to learn what is committed).
pub struct Started {
    /// Named for messages about them (`reader`, `fetcher`, `acker`).
    pub tasks: Vec<(&'static str, Task)>,
    /// `None` without `--checkpoint`.
    pub committer: Option<Box<dyn Commit>>,
}

/// A way records come in.
pub trait Source: Send {
    /// Starts reading into `feed`. `committer` is the checkpoint's (if any), which the source
    /// hands back in [`Started::committer`], wrapped if it must hear of commits.
    fn start(self: Box<Self>, feed: Feed, committer: Option<Box<dyn Commit>>) -> Started;
}
