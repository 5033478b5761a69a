//! `ingest`: read log lines from stdin, check them, append the valid records to a file (or
//! publish them to a NATS JetStream subject).
//!
//! The crate map, in the order a line travels (no import circle, no source or sink importing a
//! stage: `tests/shape.rs` checks both):
//! - [`cli`], [`generate`]: flags into a checked [`Config`] ([`config`], which everything below
//!   reads); the man page and completions from clap's `Command`;
//! - [`mod@run`]: the runs [`run()`] starts, one file each (one input, a log alone, a log and its
//!   rotated files, many logs, the collector): each picks a source and a sink and starts the
//!   pipeline;
//! - [`source`]: every way records come in, one [`source::Source`] trait: standard input or a
//!   file ([`source::file`]; compressed: [`source::decompress`]; a log and its rotated files:
//!   [`source::set`]; the logs `--from` globs match: [`source::glob`]), a JetStream stream ([`source::jetstream`], the collector's fetcher,
//!   on [`source::consumer`] and its [`source::lease`]);
//! - [`pipeline`]: parse -> validate -> write ([`pipeline::parser`], [`pipeline::validator`],
//!   [`pipeline::writer`]), and how the stages start, stop and push back;
//! - [`sink`]: every way records go out, one [`sink::Sink`] trait: a file or standard output
//!   ([`sink::file`], on [`output`]'s locked files), a JetStream subject ([`sink::jetstream`]);
//! - [`nats`]: what the sink and the collector share: connecting, and the message headers
//!   ([`nats::message`]); [`breaker`]: the circuit breaker both retry through;
//! - [`layout`]: the input layouts (`--input`, `--pattern`, `--tz`), one module each, and where
//!   a record starts for `--multiline`, pure; container runtimes' pieces and what a pod log's
//!   path says ([`layout::container`]);
//! - [`batch`], [`channel`]: what flows between sources, stages and sinks, and the bounded
//!   channels it goes through;
//! - [`mod@format`]: text and JSON rendering, JSON string escaping, pure; [`record`]: the line
//!   grammar, the record types and their fields ([`record::fields`]), pure;
//! - [`checkpoint`]: `--checkpoint`, exactly-once reruns (a file set's: [`checkpoint::set`];
//!   many logs' shared one: [`checkpoint::journal`]);
//!   [`atomic`]: replacing small files;
//! - [`metrics`]: the one set of counters every stage adds to, per batch;
//! - [`summary`], [`error`]: how a run ends (summary line, stats JSON, Prometheus textfile) and
//!   its exit code;
//! - [`signal`], [`logging`], [`progress`], [`os`]: signals into a drain, stderr messages, the
//!   progress line, the OS's limits; for the binary.
//!
//! The shutdown story: a signal cancels the *drain* token, the reader stops, and everything
//! already read flows out; the first error cancels every stage instead (see [`pipeline`]).

pub mod atomic;
pub mod batch;
pub mod breaker;
pub mod channel;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod error;
pub mod format;
pub mod generate;
pub mod layout;
pub mod logging;
pub mod metrics;
pub mod nats;
pub mod os;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod run;
pub mod signal;
pub mod sink;
pub mod source;
pub mod summary;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::{Config, Output};
pub use error::{Error, Exit};
pub use run::Input;
pub use summary::Summary;

use metrics::Metrics;

/// Opens the output (and rejects file), resumes from the checkpoint if there is one, then runs
/// the pipeline from `input` to the end.
///
/// Cancelling `drain` stops reading and writes out everything already read.
///
/// # Errors
/// [`Error::Open`] when a file cannot be opened, [`Error::Locked`] when another run writes to
/// the output, [`Error::Checkpoint`] when the checkpoint is unusable, the NATS errors of
/// [`sink::jetstream::JetStreamSink::start`]; otherwise the pipeline's first failure.
pub async fn run(
    config: &Config,
    input: Input,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    match (&config.from, &config.checkpoint) {
        (Some(config::Origin::Nats(from)), _) => run::collect::collect(config, from, metrics, drain).await,
        (Some(config::Origin::Files(path)), Some(checkpoint)) => {
            run::set::read_set(config, path, checkpoint, metrics, drain).await
        }
        (Some(config::Origin::Files(path)), None) => run::file::read_file(config, path, metrics, drain).await,
        (Some(config::Origin::Logs(logs)), Some(checkpoint)) if config.follow => {
            run::follow_logs::follow_logs(config, logs, checkpoint, metrics, drain).await
        }
        (Some(config::Origin::Logs(logs)), checkpoint) => {
            run::logs::read_logs(config, logs, checkpoint.as_deref(), metrics, drain).await
        }
        (None, _) => run::read_stdin(config, input, metrics, drain).await,
    }
}
