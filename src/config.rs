//! What a run is asked to do, checked and free of the command line: [`Config`].
//!
//! The command line ([`crate::cli`]) builds one; the stages and reports read it. This module
//! depends on nothing but the pure record and format types, so no stage depends on clap.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use backon::ExponentialBuilder;

use crate::format::Format;
use crate::layout::{Clock, Layout};
use crate::progress;
use crate::record::Severity;

/// Parser tasks when none are asked for.
pub const DEFAULT_WORKERS: u16 = 4;
/// Lines in flight between reader and writer when `--capacity` is not given.
pub const DEFAULT_CAPACITY: usize = 32768;
/// Lines longer than this are rejected unless `--max-line-bytes` says otherwise.
pub const DEFAULT_MAX_LINE_BYTES: u64 = 1 << 20;
/// Output bytes between two checkpoint commits, at most.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 16 << 20;
/// The default retry schedule of a failing write.
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    retries: 3,
    initial: Duration::from_millis(50),
    max: Duration::from_millis(500),
};
/// How long a drain may take, by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where valid records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Standard output (`-`).
    Stdout,
    /// A file opened for appending.
    File(PathBuf),
    /// A NATS JetStream subject (`nats://HOST[:PORT][,...]/SUBJECT`).
    Nats(Box<NatsOutput>),
}

/// A NATS server (or cluster) and how to log in: what publishing and collecting share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsServer {
    /// The address as given, with any password replaced by `***`, for messages.
    pub shown: String,
    /// `host:port` of each server to try.
    pub servers: Vec<String>,
    /// `tls://`: the connection must be TLS.
    pub tls: bool,
    /// User and password, from the URL or `NATS_USER` / `NATS_PASSWORD`.
    pub user: Option<(String, String)>,
    /// A token, from `NATS_TOKEN` (or a URL user without a password).
    pub token: Option<String>,
    /// `--nats-creds`: a NATS credentials file (JWT and seed).
    pub creds: Option<PathBuf>,
    /// `--nats-tls-ca`: a private CA to trust.
    pub tls_ca: Option<PathBuf>,
    /// `--breaker-failures`: consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// `--sink-timeout`: how long the server may be unavailable before the run gives up.
    pub timeout: Duration,
}

/// Publishing to NATS JetStream: where, as whom, and how patiently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsOutput {
    /// The server and the login.
    pub server: NatsServer,
    /// The subject every record is published on.
    pub subject: String,
    /// `--create-stream NAME`: create a file-storage stream for the subject when none takes it.
    pub create_stream: Option<String>,
    /// `--replicas`: the replicas of a stream created with `--create-stream`.
    pub replicas: usize,
    /// `--batch-bytes`: pack records into messages of at most this many bytes (0: one each).
    pub batch_bytes: usize,
    /// Most messages published and not yet acknowledged.
    pub window: usize,
    /// How long an acknowledgement may take before the message counts as failed.
    pub ack_timeout: Duration,
}

/// Collecting from NATS JetStream (`--from`): which stream, through which durable consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsInput {
    /// The server and the login.
    pub server: NatsServer,
    /// The stream to read.
    pub stream: String,
    /// `--consumer`: the durable pull consumer's name.
    pub consumer: String,
    /// `--filter`: only messages on subjects matching this (wildcards allowed).
    pub filter: Option<String>,
    /// `--until-idle`: stop once no message arrived for this long; `None`: run until a signal.
    pub until_idle: Option<Duration>,
}

/// Where records come from instead of standard input (`--from`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A log file; with `--checkpoint`, its rotated predecessors too.
    Files(PathBuf),
    /// Every log some globs match (`--from` with wildcards or given several times).
    Logs(Logs),
    /// A JetStream stream, through a durable consumer.
    Nats(Box<NatsInput>),
}

/// What the parsers need of each log of a run over many.
#[derive(Clone, Debug, Default)]
pub struct PerLog {
    /// Each log's path.
    pub paths: Vec<std::sync::Arc<str>>,
    /// Each log's layout, as an index into `layouts`.
    pub layout_of: Vec<u32>,
    /// The layouts the logs are read with.
    pub layouts: Vec<std::sync::Arc<Layout>>,
}

/// `--from GLOB ... --exclude GLOB ...`: the logs of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logs {
    /// The globs that take logs (checked: each parses).
    pub include: Vec<PathBuf>,
    /// The globs that leave logs out.
    pub exclude: Vec<PathBuf>,
}

/// How input lines are read (`--input`, `--pattern`, `--tz`, `--time-format`).
#[derive(Clone, Debug)]
pub enum InputLayout {
    /// `auto`: the layout that reads most of the first lines, with this clock.
    Auto(Clock),
    /// A layout given by name or template.
    Fixed(Layout),
}

impl Default for InputLayout {
    fn default() -> InputLayout {
        InputLayout::Auto(Clock::utc())
    }
}

/// `--multiline`: records that span lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Multiline {
    /// `--max-record-lines`: the most lines one record keeps.
    pub max_record_lines: usize,
    /// `--multiline-timeout`: how long a live input may be quiet before its last record is
    /// finished.
    pub timeout: Duration,
}

/// `--rotate-wait` when not given: a program writes on to a rotated log until it reopens
/// the new one, and a thread of it may write one line more a moment later.
pub const DEFAULT_ROTATE_WAIT: Duration = Duration::from_secs(2);

/// `--rescan` when not given: how often a follower of many logs looks at the logs inotify cannot
/// tell of (NFS, FUSE, no watch left). Filebeat scans every 10 s.
pub const DEFAULT_RESCAN: Duration = Duration::from_secs(10);

/// `--max-open-files` when not given: a quarter of the usual limit of 1,024 descriptors.
pub const DEFAULT_MAX_OPEN_FILES: u32 = 256;

/// `--max-record-lines` when not given.
pub const DEFAULT_MAX_RECORD_LINES: u32 = 1000;
/// `--multiline-timeout` when not given, in milliseconds.
pub const DEFAULT_MULTILINE_TIMEOUT_MS: u64 = 1000;

/// A checked run configuration; what the library needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where valid records go.
    pub output: Output,
    /// `--from`: read a file set or collect from a JetStream stream instead of reading stdin.
    pub from: Option<Origin>,
    /// `--follow`: keep reading `--from PATH` as it grows, across rotations, until a signal.
    pub follow: bool,
    /// `--start-at end`: a checkpoint's first run starts at the logs' ends.
    pub start_at_end: bool,
    /// Many logs in one pipeline: each log's path (its records' `file` key) and layout, by the
    /// index its batches carry.
    pub per_log: Option<std::sync::Arc<PerLog>>,
    /// `--rotate-wait`: how long a followed log rotated away must stay quiet, once the program
    /// writes elsewhere, before the new file is read (see `source::follow`).
    pub rotate_wait: Duration,
    /// `--rescan`: following many logs, how often all of them are looked at (see
    /// [`DEFAULT_RESCAN`]).
    pub rescan: Duration,
    /// `--max-open-files`: the most log files open at once (the reader's one, and those a
    /// follower of many logs holds to know a deleted log's end).
    pub max_open_files: usize,
    /// How input lines are read.
    pub input: InputLayout,
    /// `--multiline`: join continuation lines to the record before them.
    pub multiline: Option<Multiline>,
    /// `--multiline-timeout`: how long a live input may be quiet before what is held back goes
    /// out (a record of `--multiline`, a container's line whose last piece has not come).
    pub hold_timeout: Duration,
    /// `--inner`: container logs, the layout of the programs' lines; `None`: judged per
    /// container and stream.
    pub inner: Option<Layout>,
    /// `--default-severity`: container logs, the severity of a line that says none.
    pub default_severity: Severity,
    /// Number of parser tasks.
    pub workers: NonZeroUsize,
    /// Records in flight between reader and writer.
    pub capacity: NonZeroUsize,
    /// Output format.
    pub format: Format,
    /// Records below this are filtered.
    pub min_level: Option<Severity>,
    /// Where rejected lines go, if anywhere.
    pub rejects: Option<PathBuf>,
    /// Most rejected lines tolerated before exit 65.
    pub max_rejects: Option<u64>,
    /// Lines longer than this are rejected without being held whole.
    pub max_line_bytes: usize,
    /// Where committed progress is kept, for exactly-once reruns.
    pub checkpoint: Option<PathBuf>,
    /// Output bytes between two commits, at most.
    pub checkpoint_bytes: u64,
    /// Read the input only if it continues the checkpoint's.
    pub continue_only: bool,
    /// Where the final counters go as JSON (`-`: stderr).
    pub stats_json: Option<PathBuf>,
    /// Where Prometheus metrics are kept.
    pub metrics_textfile: Option<PathBuf>,
    /// How progress is shown on stderr.
    pub progress: progress::Display,
    /// The writer's retry schedule.
    pub retry: RetryPolicy,
    /// How long a drain may take before the run gives up on it.
    pub shutdown_timeout: Duration,
}

impl Config {
    /// A configuration with every default, writing to `output`.
    pub fn new(output: Output) -> Config {
        Config {
            output,
            from: None,
            follow: false,
            start_at_end: false,
            per_log: None,
            rotate_wait: DEFAULT_ROTATE_WAIT,
            rescan: DEFAULT_RESCAN,
            max_open_files: DEFAULT_MAX_OPEN_FILES as usize,
            input: InputLayout::default(),
            multiline: None,
            hold_timeout: Duration::from_millis(DEFAULT_MULTILINE_TIMEOUT_MS),
            inner: None,
            default_severity: Severity::Info,
            workers: NonZeroUsize::from(
                std::num::NonZeroU16::new(DEFAULT_WORKERS).expect("the default is not zero"),
            ),
            capacity: NonZeroUsize::new(DEFAULT_CAPACITY).expect("the default is not zero"),
            format: Format::Text,
            min_level: None,
            rejects: None,
            max_rejects: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES as usize,
            checkpoint: None,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
            continue_only: false,
            stats_json: None,
            metrics_textfile: None,
            progress: progress::Display::Off,
            retry: DEFAULT_RETRY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// The layout records are read with: `auto` is settled before a run starts (see
    /// `crate::run`); a collector reads ingest's own JSON and no layout.
    pub fn layout(&self) -> Layout {
        match &self.input {
            InputLayout::Fixed(layout) => layout.clone(),
            InputLayout::Auto(_) => Layout::default(),
        }
    }
}

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
    /// The schedule as backon's builder.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_max_times(self.retries as usize)
            .with_jitter()
    }
}
