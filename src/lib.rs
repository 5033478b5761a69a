//! `ingest`: read log lines from stdin, check them, append the valid records to a file.
//!
//! The crate map, in the order a line travels:
//! - [`cli`]: flags into a checked [`Config`];
//! - [`pipeline`]: the stages ([`pipeline::reader`], [`pipeline::parser`],
//!   [`pipeline::validator`], [`pipeline::writer`]) and how they start, stop and push back;
//! - [`record`]: the line grammar and the record types, pure;
//! - [`format`]: text and JSON rendering, pure;
//! - [`output`]: the files the writer appends to, locked;
//! - [`checkpoint`]: `--checkpoint`, exactly-once reruns;
//! - [`metrics`]: the one set of counters every stage adds to, per batch;
//! - [`summary`], [`error`]: how a run ends (summary line, stats JSON, Prometheus textfile) and
//!   its exit code;
//! - [`signal`], [`logging`], [`progress`]: signals into a drain, stderr messages, the progress
//!   line; for the binary.
//!
//! The shutdown story: a signal cancels the *drain* token, the reader stops, and everything
//! already read flows out; the first error cancels every stage instead (see [`pipeline`]).

pub mod checkpoint;
pub mod cli;
pub mod error;
pub mod format;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod signal;
pub mod summary;

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use cli::{Config, Output};
pub use error::{Error, Exit};
pub use summary::Summary;

use checkpoint::Resume;
use metrics::Metrics;
use output::FileSink;

/// Where the lines come from.
pub enum Input {
    /// A file descriptor, as standard input is: a regular file can be sought in, which
    /// `--checkpoint` uses to skip what is committed.
    File(File),
    /// Any other reader (tests, embedding).
    Reader(Box<dyn Read + Send>),
}

/// Opens the output (and rejects file), resumes from the checkpoint if there is one, then runs
/// the pipeline from `input` to the end.
///
/// Cancelling `drain` stops reading and writes out everything already read.
///
/// # Errors
/// [`Error::Open`] when a file cannot be opened, [`Error::Locked`] when another run writes to
/// the output, [`Error::Checkpoint`] when the checkpoint is unusable; otherwise the pipeline's
/// first failure.
pub async fn run(
    config: &Config,
    input: Input,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let mut output = match &config.output {
        Output::Stdout => FileSink::stdout()?,
        Output::File(path) => FileSink::append_locked(path)?,
    };
    let mut rejects = config.rejects.as_deref().map(FileSink::append).transpose()?;
    // A regular file on stdin has a size: progress can show a percentage and an ETA.
    let size = match &input {
        Input::File(file) => file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()),
        Input::Reader(_) => None,
    };
    let (input, resume): (Box<dyn Read + Send>, _) = match (&config.checkpoint, input) {
        (Some(path), Input::File(file)) => {
            let (input, start, committer) =
                checkpoint::resume(path, file, &mut output, rejects.as_mut(), config.checkpoint_bytes)?;
            (
                input,
                Resume {
                    start,
                    committer: Some(committer),
                },
            )
        }
        (Some(path), Input::Reader(_)) => {
            let source = std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "needs a file descriptor as input",
            );
            return Err(Error::Checkpoint {
                path: path.clone(),
                source,
            });
        }
        (None, Input::File(file)) => (Box::new(file), Resume::default()),
        (None, Input::Reader(reader)) => (reader, Resume::default()),
    };
    let total = size.map(|size| size.saturating_sub(resume.start.offset));
    let _progress = config
        .progress
        .then(|| progress::Progress::start(metrics.clone(), total));
    let textfile = config.metrics_textfile.clone().map(|path| {
        tokio::spawn(summary::keep_textfile_fresh(
            path,
            metrics.clone(),
            std::time::Instant::now(),
        ))
    });
    let result = pipeline::run(config, input, resume, output, rejects, metrics, drain).await;
    if let Some(textfile) = textfile {
        textfile.abort();
    }
    result
}
