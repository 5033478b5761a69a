//! `ingest`: read log lines from stdin, check them, append the valid records to a file.
//!
//! The crate map, in the order a line travels:
//! - [`cli`]: flags into a checked [`Config`] ([`config`], which the stages read);
//! - [`pipeline`]: the stages ([`pipeline::reader`], [`pipeline::parser`],
//!   [`pipeline::validator`], [`pipeline::writer`]) and how they start, stop and push back;
//! - [`record`]: the line grammar and the record types, pure;
//! - [`format`]: text and JSON rendering, pure;
//! - [`sink`]: where the writer puts records (a file, standard output, a JetStream subject);
//! - [`output`]: the files the writer appends to, locked;
//! - [`checkpoint`]: `--checkpoint`, exactly-once reruns; [`atomic`]: replacing small files;
//! - [`metrics`]: the one set of counters every stage adds to, per batch;
//! - [`summary`], [`error`]: how a run ends (summary line, stats JSON, Prometheus textfile) and
//!   its exit code;
//! - [`signal`], [`logging`], [`progress`], [`os`]: signals into a drain, stderr messages, the
//!   progress line, the OS's limits; for the binary.
//!
//! The shutdown story: a signal cancels the *drain* token, the reader stops, and everything
//! already read flows out; the first error cancels every stage instead (see [`pipeline`]).

pub mod atomic;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod error;
pub mod format;
pub mod logging;
pub mod metrics;
pub mod os;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod signal;
pub mod sink;
pub mod summary;

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::{Config, Output};
pub use error::{Error, Exit};
pub use summary::Summary;

use checkpoint::Resume;
use metrics::Metrics;
use output::AppendFile;

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
        Output::Stdout => AppendFile::stdout()?,
        Output::File(path) => AppendFile::append_locked(path)?,
    };
    let mut rejects = config
        .rejects
        .as_deref()
        .map(AppendFile::append_locked)
        .transpose()?;
    // A regular file on stdin has a size: progress can show a percentage and an ETA.
    let size = match &input {
        Input::File(file) => file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()),
        Input::Reader(_) => None,
    };
    let (input, resume): (Box<dyn Read + Send>, _) = match (&config.checkpoint, input, &config.output) {
        (Some(path), Input::File(file), Output::File(output_path)) => {
            let output = checkpoint::Target {
                sink: &mut output,
                path: output_path,
            };
            let rejects = rejects
                .as_mut()
                .zip(config.rejects.as_deref())
                .map(|(sink, path)| checkpoint::Target { sink, path });
            let options = checkpoint::Options {
                every_bytes: config.checkpoint_bytes,
                continue_only: config.continue_only,
            };
            checkpoint::resume(path, file, output, rejects, options, &drain).await?
        }
        (Some(path), _, _) => {
            let source = std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "needs a file descriptor as input and a file as OUTPUT",
            );
            return Err(Error::Checkpoint {
                path: path.clone(),
                source,
            });
        }
        (None, Input::File(file), _) => (Box::new(file), Resume::default()),
        (None, Input::Reader(reader), _) => (reader, Resume::default()),
    };
    metrics::add(&metrics.rotated_unread_bytes, resume.rotated_unread_bytes);
    let total = size.map(|size| size.saturating_sub(resume.start.offset));
    let _progress = config.progress.start(metrics.clone(), total);
    let textfile = config.metrics_textfile.clone().map(|path| {
        tokio::spawn(metrics::keep_textfile_fresh(
            path,
            metrics.clone(),
            std::time::Instant::now(),
        ))
    });
    let output = sink::file::FileSink::new(output, config.retry);
    let result = pipeline::run(config, input, resume, output, rejects, metrics, drain).await;
    if let Some(textfile) = textfile {
        // Waited for, so that a refresh still being written cannot land after the final file.
        textfile.abort();
        let _ = textfile.await;
    }
    result
}
