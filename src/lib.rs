//! `ingest`: read log lines from stdin, check them, append the valid records to a file.
//!
//! The crate map, in the order a line travels:
//! - [`cli`]: flags into a checked [`Config`];
//! - [`pipeline`]: the stages ([`pipeline::reader`], [`pipeline::parser`],
//!   [`pipeline::validator`], [`pipeline::writer`]) and how they start, stop and push back;
//! - [`record`]: the line grammar and the record types, pure;
//! - [`format`]: text and JSON rendering, pure;
//! - [`output`]: the files the writer appends to;
//! - [`summary`], [`error`]: how a run ends, and its exit code;
//! - [`signal`]: SIGINT/SIGTERM into a drain, for the binary.
//!
//! The shutdown story: a signal cancels the *drain* token, the reader stops, and everything
//! already read flows out; the first error cancels every stage instead (see [`pipeline`]).

pub mod cli;
pub mod error;
pub mod format;
pub mod output;
pub mod pipeline;
pub mod record;
pub mod signal;
pub mod summary;

use std::io::Read;

use tokio_util::sync::CancellationToken;

pub use cli::{Config, Output};
pub use error::{Error, Exit};
pub use summary::Summary;

use output::FileSink;

/// Opens the output (and rejects file), then runs the pipeline from `input` to the end.
///
/// Cancelling `drain` stops reading and writes out everything already read.
///
/// # Errors
/// [`Error::Open`] when a file cannot be opened, [`Error::Locked`] when another run writes to
/// the output; otherwise the pipeline's first failure.
pub async fn run(
    config: &Config,
    input: impl Read + Send + 'static,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let output = match &config.output {
        Output::Stdout => FileSink::stdout()?,
        Output::File(path) => FileSink::append_locked(path)?,
    };
    let rejects = config.rejects.as_deref().map(FileSink::append).transpose()?;
    pipeline::run(config, input, output, rejects, drain).await
}
