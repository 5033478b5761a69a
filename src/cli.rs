//! The command line: clap's raw [`Args`], checked and turned into the library's [`Config`].
//!
//! `main` parses `Args`, calls [`Args::into_config`] and hands the `Config` to [`crate::run()`];
//! nothing past this file sees a raw flag.

use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::config::{self, Config, NatsInput, NatsOutput, NatsServer, Output, RetryPolicy};
use crate::format::Format;
use crate::layout::{Clock, Layout, LayoutError};
use crate::progress;
use crate::record::Severity;
use crate::source::glob::Glob;

const AFTER_HELP: &str = "\
Records (--input plain):
  TIMESTAMP SEVERITY MESSAGE, one per line, fields separated by spaces or tabs.
  TIMESTAMP  2026-04-15T00:00:01Z, 2026-04-15 00:00:05,250, ...T02:00:07+0200, 2026/04/15 10:00:00,
             ... 10:00:00.123 UTC (no offset: --tz, default UTC)
  SEVERITY   trace debug[1-5] info notice log warn[ing] err[or] fatal crit[ical] panic emerg[ency]
             alert, any case, [brackets] allowed
  A record with an empty message is dropped; a line that does not parse is rejected.

Input layouts (--input, default auto: the one that reads most of the first 64 lines):
  plain        the records above
  json         one object a line: timestamp|time|ts|@timestamp|t|date, level|severity|lvl|
               log.level|levelname|loglevel, msg|message|event|log|fields.message; the rest: fields
  logfmt       key=value pairs (values quoted with \\\" escapes), the same keys
  syslog       RFC 5424 and RFC 3164 (with or without <PRI>); host, app, pid become fields
  python       {timestamp} - {_} - {severity} - {message}
  loguru       {timestamp} | {severity} | {_} - {message}
  structlog    {timestamp} [{severity}] {message}
  env_logger   [{timestamp} {severity} {_}] {message}
  postgres     {timestamp} [{_}] {severity}: {message}
  nginx-error  {timestamp} [{severity}] {_}: {message}
  --pattern TEMPLATE: literal text, {timestamp}, {severity}, {_} (skip to the next literal),
  {message} (the rest); a space matches any run of spaces and tabs.

Examples:
  ingest --rejects bad.tsv --checkpoint app.cp out.log < app.log
  ingest --from /var/log/app.log --checkpoint app.cp out.log   (and its rotated files)
  ingest --checkpoint app.cp nats://nats1:4222,nats2:4222/logs.app < app.log
  ingest --from nats://nats1:4222/LOGS --consumer central --checkpoint central.cp all.log

Output formats:
  text   `     1  INFO started` (line number, severity, message)
  json   {\"line\":1,\"timestamp\":\"2026-04-15T00:00:01Z\",\"severity\":\"INFO\",\"message\":\"started\"}

Exit codes:
  0 ok   2 usage   65 more rejects than --max-rejects
  66 input lost (a file rotated away or deleted before its end was read), or no --from PATH
  69 NATS server unavailable past --sink-timeout   70 internal error
  71 out of file descriptors, memory or threads   73 cannot open output
  74 read/write error, drain timeout or unusable checkpoint
  75 output or rejects file in use by another run, or (--from) the consumer by another collector
  77 NATS refused the credentials   78 no JetStream stream takes the subject (--from: no such stream)
  130/143 drained after SIGINT/SIGTERM";

/// Most parser tasks: past the cores of any machine, and each costs a runtime thread.
const MAX_WORKERS: i64 = 256;

/// The longest line `--max-line-bytes` may allow: the reader holds a line that long whole.
const MAX_LINE_BYTES: u64 = 1 << 30;

/// Raw command-line flags, as clap parses them.
#[derive(Debug, Parser)]
#[command(
    name = "ingest",
    version,
    about = "Check log lines from stdin and append the valid records to a file.",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// File to append valid records to; `-` writes to standard output;
    /// `nats://HOST[:PORT][,HOST[:PORT]...]/SUBJECT` (or `tls://...`) publishes to JetStream
    #[arg(value_name = "OUTPUT", default_value = "ingest.log")]
    pub output: PathBuf,

    /// How lines are written: auto, plain, json, logfmt, syslog, cri, docker, or a named
    /// pattern (below)
    #[arg(
        long,
        value_name = "LAYOUT",
        default_value = "auto",
        conflicts_with = "pattern"
    )]
    pub input: String,

    /// Container logs (cri, docker): how the programs write their lines, judged per container
    /// and stream by default
    #[arg(long, value_name = "LAYOUT", default_value = "auto")]
    pub inner: String,

    /// Container logs: the severity of a line that says none (an access log line, a print)
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub default_severity: Severity,

    /// Read lines laid out as TEMPLATE (see Input layouts below)
    #[arg(long, value_name = "TEMPLATE")]
    pub pattern: Option<String>,

    /// Time zone of timestamps written without an offset: an IANA name or `local` [default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// Read timestamps with a strftime-like FORMAT (`%d/%b/%Y:%H:%M:%S %z`) instead of the
    /// built-in spellings
    #[arg(long, value_name = "FORMAT")]
    pub time_format: Option<String>,

    /// Join lines that do not start a record (stack traces, DETAIL lines) to the record before
    /// them (see README, Multiline records)
    #[arg(long)]
    pub multiline: bool,

    /// With --multiline: the most lines one record keeps; later ones are rejected as
    /// `record too long`
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_MAX_RECORD_LINES, requires = "multiline", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_record_lines: u32,

    /// With --multiline: finish the last record once the input was quiet for MS milliseconds
    /// (a container's line written that much later than its record's last joins it no more);
    /// container logs: a line whose last piece has not come
    #[arg(long, value_name = "MS", default_value_t = config::DEFAULT_MULTILINE_TIMEOUT_MS)]
    pub multiline_timeout: u64,

    /// Parser tasks working in parallel (1-256)
    #[arg(short, long, value_name = "N", default_value_t = config::DEFAULT_WORKERS, value_parser = clap::value_parser!(u16).range(1..=MAX_WORKERS))]
    pub workers: u16,

    /// Lines in flight between reader and writer (bounds memory; see README)
    #[arg(long, value_name = "N", default_value_t = NonZeroUsize::new(config::DEFAULT_CAPACITY).expect("not zero"))]
    pub capacity: NonZeroUsize,

    /// Output format [default: text; json for a NATS OUTPUT]
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,

    /// Count records below LEVEL as filtered instead of writing them
    #[arg(long, value_name = "LEVEL")]
    pub min_level: Option<Severity>,

    /// Append each rejected line to PATH as `line_no<TAB>reason<TAB>line`
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<PathBuf>,

    /// Exit 65 after the run if more than N lines were rejected
    #[arg(long, value_name = "N")]
    pub max_rejects: Option<u64>,

    /// Reject longer lines (not counting `\n` or `\r\n`) as `line too long`, up to 1 GiB
    #[arg(long, value_name = "BYTES", default_value_t = config::DEFAULT_MAX_LINE_BYTES, value_parser = clap::value_parser!(u64).range(1..=MAX_LINE_BYTES))]
    pub max_line_bytes: u64,

    /// Remember in PATH how far the input is committed; a rerun resumes there (see README)
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,

    /// With --checkpoint: read the input only if it continues the checkpoint's (a rotated file's
    /// unread tail); otherwise read nothing (see README, Rotation)
    #[arg(long, requires = "checkpoint")]
    pub continue_only: bool,

    /// Commit at least every BYTES of output (tests use small values)
    #[arg(long, value_name = "BYTES", default_value_t = config::DEFAULT_CHECKPOINT_BYTES, hide = true)]
    pub checkpoint_bytes: u64,

    /// Write the run's counters as one JSON object to PATH (`-`: stderr) at the end
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,

    /// Keep Prometheus metrics in PATH (node_exporter textfile format), every 10 s and at the end
    #[arg(long, value_name = "PATH")]
    pub metrics_textfile: Option<PathBuf>,

    /// Show a progress line on stderr: auto (only on a terminal), always or never
    #[arg(long, value_enum, value_name = "WHEN", default_value_t)]
    pub progress: progress::Mode,

    /// Retries of a failing write before giving up
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_RETRY.retries)]
    pub retry_attempts: u32,

    /// First retry delay in milliseconds (doubles each retry, with jitter)
    #[arg(long, value_name = "MS", default_value_t = config::DEFAULT_RETRY.initial.as_millis() as u64)]
    pub retry_initial_ms: u64,

    /// Longest retry delay in milliseconds
    #[arg(long, value_name = "MS", default_value_t = config::DEFAULT_RETRY.max.as_millis() as u64)]
    pub retry_max_ms: u64,

    /// After SIGINT/SIGTERM, give up on the drain after SECS and exit 74
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_SHUTDOWN_TIMEOUT.as_secs_f64())]
    pub shutdown_timeout: f64,

    /// Read the log file PATH instead of stdin; with --checkpoint, also the rotated files
    /// beside it that are not read yet (PATH.1, PATH.2.gz, PATH-20261204...), oldest first.
    /// PATH may be a glob (`*`, `?`, `[...]`, `**` for any directories; quote it) and --from
    /// may be given several times: every log they match, one after another. Or collect records
    /// from a JetStream stream: `nats://HOST[:PORT][,HOST[:PORT]...]/STREAM` (or `tls://...`;
    /// needs --consumer and --checkpoint)
    #[arg(long, value_name = "PATH|GLOB|URL")]
    pub from: Vec<PathBuf>,

    /// With --from GLOB: leave out the logs GLOB matches (may be given several times)
    #[arg(long, value_name = "GLOB", requires = "from")]
    pub exclude: Vec<PathBuf>,

    /// With --from and a --checkpoint not made yet: read the logs from their first line, or
    /// from their end (a host with a long backlog: only what is written from now on)
    #[arg(long, value_name = "WHERE", value_enum, default_value_t = StartAt::First, requires_all = ["from", "checkpoint"])]
    pub start_at: StartAt,

    /// With --from: keep running at the end of the logs and read lines as they are appended,
    /// across rotations (rename and create, copytruncate), until SIGINT/SIGTERM; with a glob,
    /// logs that appear later are read too, from their first line
    #[arg(long, requires = "from")]
    pub follow: bool,

    /// With --follow and a glob: look each SECS at the logs in directories inotify cannot watch
    /// (NFS, SMB, FUSE: another machine's writes raise no event); local ones are read at once
    #[arg(long, value_name = "SECS", requires = "follow", default_value_t = config::DEFAULT_RESCAN.as_secs_f64())]
    pub rescan: f64,

    /// With --follow and a glob: hold at most N logs open at once. The reader has one open at a
    /// time; the others are the logs read last, kept open so that a deleted log's end is known
    /// (read to it: no loss) and closed once it is deleted, least recently read first past N
    #[arg(long, value_name = "N", requires = "follow", default_value_t = config::DEFAULT_MAX_OPEN_FILES, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_open_files: u32,

    /// With --follow: once the program writes to the new file, read the rotated log on until
    /// it was quiet for SECS (lines a program writes late to it come out first), then the new file
    #[arg(long, value_name = "SECS", requires = "follow", default_value_t = config::DEFAULT_ROTATE_WAIT.as_secs_f64())]
    pub rotate_wait: f64,

    /// Collector: the durable pull consumer to read through (created when missing)
    #[arg(long, value_name = "NAME", requires = "from", help_heading = "NATS COLLECTOR")]
    pub consumer: Option<String>,

    /// Collector: only messages on subjects matching SUBJECT (`logs.web.>`); for a new consumer
    #[arg(
        long,
        value_name = "SUBJECT",
        requires = "from",
        help_heading = "NATS COLLECTOR"
    )]
    pub filter: Option<String>,

    /// Collector: exit 0 once no new message arrived for SECS (for cron); default: run until
    /// SIGINT/SIGTERM
    #[arg(long, value_name = "SECS", requires = "from", help_heading = "NATS COLLECTOR")]
    pub until_idle: Option<f64>,

    /// NATS: pack consecutive records into messages of at most BYTES (JSON Lines); 0: one record
    /// a message
    #[arg(long, value_name = "BYTES", default_value_t = 0, help_heading = "NATS OUTPUT")]
    pub batch_bytes: usize,

    /// NATS: create a file-storage stream NAME for the subject if no stream takes it
    #[arg(long, value_name = "NAME", help_heading = "NATS OUTPUT")]
    pub create_stream: Option<String>,

    /// NATS: replicas of a stream made by --create-stream
    #[arg(long, value_name = "N", default_value_t = 1, requires = "create_stream", value_parser = clap::value_parser!(u8).range(1..=5), help_heading = "NATS OUTPUT")]
    pub replicas: u8,

    /// NATS: consecutive failures that open the circuit breaker (then one probe at a time)
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..), help_heading = "NATS")]
    pub breaker_failures: u32,

    /// NATS: give up (exit 69) once the server has been unavailable for SECS
    #[arg(long, value_name = "SECS", default_value_t = 300.0, help_heading = "NATS")]
    pub sink_timeout: f64,

    /// NATS: a credentials file (user JWT and seed); or set NATS_USER and NATS_PASSWORD, or
    /// NATS_TOKEN
    #[arg(long, value_name = "FILE", help_heading = "NATS")]
    pub nats_creds: Option<PathBuf>,

    /// NATS: trust this CA (PEM) for TLS, for servers with a private CA
    #[arg(long, value_name = "FILE", help_heading = "NATS")]
    pub nats_tls_ca: Option<PathBuf>,

    /// NATS: most messages published and not yet acknowledged
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536), help_heading = "NATS OUTPUT")]
    pub nats_window: u32,

    /// NATS: seconds an acknowledgement may take before the message is sent again
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5.0,
        help_heading = "NATS OUTPUT"
    )]
    pub ack_timeout: f64,

    /// Print the man page or a shell's completions to stdout, and exit
    #[arg(long, value_enum, value_name = "KIND")]
    pub generate: Option<crate::generate::Kind>,

    /// Print only errors (RUST_LOG overrides)
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: -v for each stage's report, -vv for everything (RUST_LOG overrides)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `--start-at`: where a checkpoint's first run starts in the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StartAt {
    /// Their first line.
    First,
    /// Their end: rotated files are done with, the live log read from its last whole line on.
    End,
}

impl Args {
    /// Checks the flags that clap cannot check alone.
    ///
    /// # Errors
    /// A message for the user when the retry delays contradict each other.
    pub fn into_config(self) -> Result<Config, String> {
        if self.retry_initial_ms > self.retry_max_ms {
            return Err(format!(
                "--retry-initial-ms {} is larger than --retry-max-ms {}",
                self.retry_initial_ms, self.retry_max_ms
            ));
        }
        let shutdown_timeout = Duration::try_from_secs_f64(self.shutdown_timeout).map_err(|_| {
            format!(
                "--shutdown-timeout {} is not a number of seconds",
                self.shutdown_timeout
            )
        })?;
        let secs = |value: f64, flag: &str| {
            Duration::try_from_secs_f64(value)
                .map_err(|_| format!("{flag} {value} is not a number of seconds"))
        };
        let timeout = secs(self.sink_timeout, "--sink-timeout")?;
        let nats = match nats_address(&self.output, Role::Subject) {
            Some(address) => {
                Some(self.nats_output(address?, timeout, secs(self.ack_timeout, "--ack-timeout")?)?)
            }
            None => None,
        };
        let streams = self
            .from
            .iter()
            .filter(|url| nats_address(url, Role::Stream).is_some())
            .count();
        if streams > 0 && (self.from.len() > 1 || !self.exclude.is_empty()) {
            return Err("a NATS stream is collected alone: give --from once, without --exclude".to_owned());
        }
        let from = match self
            .from
            .first()
            .map(|url| (url, nats_address(url, Role::Stream)))
        {
            Some((_, Some(address))) => {
                if self.consumer.is_none() {
                    return Err("--from a NATS stream needs --consumer NAME: the durable consumer that keeps its place".to_owned());
                }
                let until_idle = self.until_idle.map(|s| secs(s, "--until-idle")).transpose()?;
                Some(Box::new(self.nats_input(address?, timeout, until_idle)?))
            }
            Some((_, None)) => {
                for path in &self.from {
                    self.check_file_set(path, nats.is_some())?;
                }
                self.check_globs(nats.is_some())?;
                None
            }
            None => None,
        };
        if from.is_some() {
            if nats.is_some() {
                return Err(
                    "--from collects into a file (or `-`); OUTPUT cannot be a NATS address as well"
                        .to_owned(),
                );
            }
            if self.input != "auto"
                || self.pattern.is_some()
                || self.multiline
                || self.tz.is_some()
                || self.time_format.is_some()
            {
                return Err("--from reads records ingest published, whatever their layout was: --input, --pattern, --multiline, --tz and --time-format belong to the publishers".to_owned());
            }
            if self.checkpoint.is_none() {
                return Err("--from needs --checkpoint PATH: the checkpoint holds what is written, so that acks go out only after it and a rerun writes nothing twice".to_owned());
            }
        }
        if self.checkpoint.is_some() && self.output.as_os_str() == "-" && self.from.is_empty() {
            return Err("--checkpoint needs an OUTPUT file: standard output cannot be cut back".to_owned());
        }
        if self.checkpoint.is_some() {
            let output = Some(&self.output).filter(|_| nats.is_none());
            let files = [(output, "OUTPUT"), (self.rejects.as_ref(), "--rejects")];
            for (path, what) in files {
                if let Some(path) = path.filter(|p| !is_regular_or_missing(p)) {
                    return Err(format!(
                        "--checkpoint needs {what} to be a regular file, which it can cut back and sync: '{}' is not one (a device or a pipe); run without --checkpoint",
                        path.display()
                    ));
                }
            }
        }
        self.refuse_shared_files(nats.is_some())?;
        let input = self.input_layout()?;
        let inner = match self.inner.as_str() {
            "auto" => None,
            name => {
                let clock =
                    Clock::new(self.tz.as_deref(), self.time_format.as_deref()).map_err(|e| e.to_string())?;
                let layout = Layout::named(name, clock).map_err(|e| match e {
                    LayoutError::Unknown(_) => {
                        format!("--inner {name}: unknown layout (expected auto or a layout --input names, but cri and docker)")
                    }
                    other => other.to_string(),
                })?;
                if layout.container().is_some() {
                    return Err(format!(
                        "--inner {name}: a container's programs write lines, not container logs"
                    ));
                }
                Some(layout)
            }
        };
        // A container's layout with `--inner` is settled here: nothing to judge per log.
        let input = match (input, &inner) {
            (config::InputLayout::Fixed(layout), Some(inner)) if layout.container().is_some() => {
                config::InputLayout::Fixed(layout.judge_streams([], Some(inner), &[]))
            }
            (input, _) => input,
        };
        let format = self.format.unwrap_or(if nats.is_some() {
            Format::Json
        } else {
            Format::Text
        });
        let output = match nats {
            Some(nats) => Output::Nats(Box::new(nats)),
            None if self.output.as_os_str() == "-" => Output::Stdout,
            None => Output::File(self.output),
        };
        let one_log = match self.from.as_slice() {
            [path] if self.exclude.is_empty() => Glob::new(path).is_ok_and(|g| g.is_literal()),
            _ => false,
        };
        let from = match (from, self.from) {
            (Some(nats), _) => Some(config::Origin::Nats(nats)),
            (None, mut paths) if one_log => Some(config::Origin::Files(paths.remove(0))),
            (None, paths) if paths.is_empty() => None,
            (None, include) => Some(config::Origin::Logs(config::Logs {
                include,
                exclude: self.exclude,
            })),
        };
        match from {
            Some(config::Origin::Files(_)) => {}
            Some(config::Origin::Logs(_)) if self.follow && self.checkpoint.is_none() => {
                return Err(
                    "--follow over many logs keeps each log's place in a checkpoint: add --checkpoint FILE"
                        .to_owned(),
                );
            }
            Some(config::Origin::Logs(_)) => {}
            _ if self.follow => {
                return Err("--follow is for --from PATH (a log file); a NATS stream is followed by running without --until-idle".to_owned());
            }
            _ => {}
        }
        let rotate_wait = secs(self.rotate_wait, "--rotate-wait")?;
        let rescan = secs(self.rescan, "--rescan")?;
        if rescan.is_zero() {
            return Err("--rescan must be more than 0 seconds".to_owned());
        }
        Ok(Config {
            output,
            from,
            follow: self.follow,
            start_at_end: self.start_at == StartAt::End,
            per_log: None,
            rotate_wait,
            rescan,
            max_open_files: self.max_open_files as usize,
            input,
            multiline: self.multiline.then(|| config::Multiline {
                max_record_lines: self.max_record_lines as usize,
                timeout: Duration::from_millis(self.multiline_timeout),
            }),
            hold_timeout: Duration::from_millis(self.multiline_timeout),
            inner,
            default_severity: self.default_severity,
            workers: NonZeroUsize::new(usize::from(self.workers)).expect("clap's range starts at 1"),
            capacity: self.capacity,
            format,
            min_level: self.min_level,
            rejects: self.rejects,
            max_rejects: self.max_rejects,
            max_line_bytes: usize::try_from(self.max_line_bytes).expect("at most 1 GiB by clap's range"),
            checkpoint: self.checkpoint,
            checkpoint_bytes: self.checkpoint_bytes.max(1),
            continue_only: self.continue_only,
            stats_json: self.stats_json,
            metrics_textfile: self.metrics_textfile,
            progress: self.progress.display(std::io::stderr().is_terminal()),
            shutdown_timeout,
            retry: RetryPolicy {
                retries: self.retry_attempts,
                initial: Duration::from_millis(self.retry_initial_ms),
                max: Duration::from_millis(self.retry_max_ms),
            },
        })
    }

    /// Refuses two roles for one file: a checkpoint or a report written over OUTPUT, say.
    fn refuse_shared_files(&self, output_is_nats: bool) -> Result<(), String> {
        let dash = |p: &&PathBuf| p.as_os_str() != "-";
        let files = [
            (
                Some(&self.output).filter(dash).filter(|_| !output_is_nats),
                "OUTPUT",
            ),
            (self.rejects.as_ref(), "--rejects"),
            (self.checkpoint.as_ref(), "--checkpoint"),
            (self.stats_json.as_ref().filter(dash), "--stats-json"),
            (self.metrics_textfile.as_ref(), "--metrics-textfile"),
        ];
        let files: Vec<(&PathBuf, &str)> = files.into_iter().filter_map(|(p, n)| p.map(|p| (p, n))).collect();
        for (i, (a, a_flag)) in files.iter().enumerate() {
            for (b, b_flag) in &files[i + 1..] {
                if same_file(a, b) {
                    return Err(format!(
                        "{b_flag} '{}' is the same file as {a_flag} '{}': give each its own file",
                        b.display(),
                        a.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The log filter the flags ask for, used when `RUST_LOG` is not set. The NATS client's
    /// own messages show only with -vv: ingest says what matters in its own words.
    pub fn log_filter(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error,async_nats=off",
            (false, 0) => "info,async_nats=off",
            (false, 1) => "debug,async_nats=off",
            (false, _) => "trace",
        }
    }
}

impl Args {
    /// The input layout the flags ask for.
    fn input_layout(&self) -> Result<config::InputLayout, String> {
        let clock = Clock::new(self.tz.as_deref(), self.time_format.as_deref()).map_err(|e| e.to_string())?;
        Ok(match (&self.pattern, self.input.as_str()) {
            (Some(template), _) => {
                config::InputLayout::Fixed(Layout::pattern(template, clock).map_err(|e| e.to_string())?)
            }
            (None, "auto") => config::InputLayout::Auto(clock),
            (None, name) => {
                config::InputLayout::Fixed(Layout::named(name, clock).map_err(|e| e.to_string())?)
            }
        })
    }

    /// The NATS side of the configuration, for an OUTPUT that is a NATS address.
    fn nats_output(
        &self,
        address: NatsAddress,
        timeout: Duration,
        ack_timeout: Duration,
    ) -> Result<NatsOutput, String> {
        Ok(NatsOutput {
            subject: address.path.clone(),
            server: self.nats_server(address, timeout)?,
            create_stream: self.create_stream.clone(),
            replicas: usize::from(self.replicas),
            batch_bytes: self.batch_bytes,
            window: self.nats_window as usize,
            ack_timeout,
        })
    }

    /// Checks `--from PATH` (a file set) against the other flags.
    fn check_file_set(&self, path: &Path, nats_output: bool) -> Result<(), String> {
        if self.consumer.is_some() || self.filter.is_some() || self.until_idle.is_some() {
            return Err(format!(
                "--consumer, --filter and --until-idle are for a NATS stream; --from '{}' is a file",
                path.display()
            ));
        }
        if self.continue_only {
            return Err("--continue-only is for standard input: --from PATH --checkpoint finds the rotated files itself".to_owned());
        }
        let outputs = [
            (Some(&self.output).filter(|_| !nats_output), "OUTPUT"),
            (self.rejects.as_ref(), "--rejects"),
            (self.checkpoint.as_ref(), "--checkpoint"),
        ];
        for (other, what) in outputs {
            if let Some(other) = other.filter(|o| same_file(path, o)) {
                return Err(format!(
                    "--from '{}' is {what} '{}': ingest would read back what it writes; give each its own file",
                    path.display(),
                    other.display()
                ));
            }
        }
        Ok(())
    }

    /// Checks `--from` and `--exclude` globs: each one well formed, and none taking a file the
    /// run writes.
    fn check_globs(&self, nats_output: bool) -> Result<(), String> {
        let parse = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| Glob::new(p).map_err(|e| format!("--from/--exclude {e}")))
                .collect::<Result<Vec<Glob>, String>>()
        };
        let (include, exclude) = (parse(&self.from)?, parse(&self.exclude)?);
        let outputs = [
            (Some(&self.output).filter(|_| !nats_output), "OUTPUT"),
            (self.rejects.as_ref(), "--rejects"),
            (self.checkpoint.as_ref(), "--checkpoint"),
        ];
        for (path, what) in outputs {
            let Some(path) = path else { continue };
            let Ok(path) = std::path::absolute(path) else {
                continue;
            };
            let taken = include.iter().find(|g| !g.is_literal() && g.matches(&path));
            let left_out = exclude.iter().any(|g| g.matches(&path));
            if let (Some(glob), false) = (taken, left_out) {
                return Err(format!(
                    "--from '{}' takes {what} '{}': ingest would read back what it writes; write elsewhere, or leave it out with --exclude",
                    glob.text(),
                    path.display()
                ));
            }
        }
        Ok(())
    }

    /// The collector's configuration, for `--from`.
    fn nats_input(
        &self,
        address: NatsAddress,
        timeout: Duration,
        until_idle: Option<Duration>,
    ) -> Result<NatsInput, String> {
        let consumer = self.consumer.clone().unwrap_or_default();
        if !is_name(&consumer) {
            return Err(format!(
                "--consumer '{consumer}' is not a consumer name (no dots, wildcards, slashes or spaces)"
            ));
        }
        if let Some(filter) = self.filter.as_deref().filter(|f| !is_subject(f, true)) {
            return Err(format!(
                "--filter '{filter}' is not a subject (dot-separated names; `*` for one, `>` for the rest)"
            ));
        }
        Ok(NatsInput {
            stream: address.path.clone(),
            server: self.nats_server(address, timeout)?,
            consumer,
            filter: self.filter.clone(),
            until_idle,
        })
    }

    /// The server, the login and the breaker of a NATS address.
    fn nats_server(&self, address: NatsAddress, timeout: Duration) -> Result<NatsServer, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        // The URL's credentials win over the environment's; a user alone is a token.
        let (user, token) = match (address.user, address.password) {
            (Some(user), Some(password)) => (Some((user, password)), None),
            (Some(token), None) => (None, Some(token)),
            _ => (
                env("NATS_USER").map(|u| (u, env("NATS_PASSWORD").unwrap_or_default())),
                env("NATS_TOKEN"),
            ),
        };
        if self.nats_creds.is_some() && (user.is_some() || token.is_some()) {
            return Err(
                "--nats-creds and a user, password or token (URL or NATS_*): give one of them".to_owned(),
            );
        }
        Ok(NatsServer {
            shown: address.shown,
            servers: address.servers,
            tls: address.tls || self.nats_tls_ca.is_some(),
            user,
            token,
            creds: self.nats_creds.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            breaker_failures: self.breaker_failures,
            timeout,
        })
    }
}

/// A parsed `nats://` or `tls://` address: OUTPUT (a subject) or `--from` (a stream).
#[derive(Debug, PartialEq, Eq)]
struct NatsAddress {
    shown: String,
    servers: Vec<String>,
    /// The subject (OUTPUT) or the stream (`--from`).
    path: String,
    tls: bool,
    user: Option<String>,
    password: Option<String>,
}

/// What a NATS address names after its hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// OUTPUT: the subject to publish on.
    Subject,
    /// `--from`: the stream to collect.
    Stream,
}

/// Parses `nats://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/SUBJECT` (or `/STREAM` for
/// `--from`); `None` when it is not a NATS address at all (a file name), an error when it is
/// one but malformed.
fn nats_address(text: &Path, role: Role) -> Option<Result<NatsAddress, String>> {
    let text = text.to_str()?;
    let (tls, rest) = if let Some(rest) = text.strip_prefix("nats://") {
        (false, rest)
    } else {
        (true, text.strip_prefix("tls://")?)
    };
    Some(parse_nats(tls, rest, role))
}

fn parse_nats(tls: bool, rest: &str, role: Role) -> Result<NatsAddress, String> {
    let scheme = if tls { "tls" } else { "nats" };
    let (flag, what) = match role {
        Role::Subject => ("OUTPUT", "SUBJECT"),
        Role::Stream => ("--from", "STREAM"),
    };
    let usage = |why: &str| {
        format!("{flag} {scheme}://...: {why}; write {scheme}://HOST[:PORT][,HOST[:PORT]...]/{what}")
    };
    let no_path = format!("no {}", what.to_lowercase());
    let (hosts, path) = rest.split_once('/').ok_or_else(|| usage(&no_path))?;
    let (userinfo, hosts) = match hosts.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, hosts),
    };
    let (user, password) = match userinfo.map(|u| u.split_once(':').map_or((u, None), |(u, p)| (u, Some(p))))
    {
        Some((user, password)) => (Some(user.to_owned()), password.map(str::to_owned)),
        None => (None, None),
    };
    let mut servers = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() {
            return Err(usage("an empty host"));
        }
        let has_port = host.rsplit_once(':').is_some_and(|(_, port)| !port.contains(']'));
        if has_port {
            let port = host.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
            port.parse::<u16>()
                .map_err(|_| usage(&format!("'{port}' is not a port")))?;
            servers.push(host.to_owned());
        } else {
            servers.push(format!("{host}:4222"));
        }
    }
    match role {
        Role::Subject if !is_subject(path, false) => {
            return Err(usage(&format!(
                "'{path}' is not a subject to publish on (dot-separated names, no wildcards or spaces)"
            )));
        }
        Role::Stream if !is_name(path) => {
            return Err(usage(&format!(
                "'{path}' is not a stream name (no dots, wildcards, slashes or spaces)"
            )));
        }
        _ => {}
    }
    let shown_user = match (&user, &password) {
        (Some(user), Some(_)) => format!("{user}:***@"),
        (Some(_), None) => "***@".to_owned(),
        _ => String::new(),
    };
    Ok(NatsAddress {
        shown: format!("{scheme}://{shown_user}{hosts}/{path}"),
        servers,
        path: path.to_owned(),
        tls,
        user,
        password,
    })
}

/// A NATS subject: dot-separated non-empty tokens without spaces; `*` and `>` (last) only
/// when `wildcards`.
fn is_subject(subject: &str, wildcards: bool) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    !subject.is_empty()
        && !subject.contains(|c: char| c.is_whitespace())
        && tokens.iter().enumerate().all(|(i, t)| match *t {
            "" => false,
            "*" => wildcards,
            ">" => wildcards && i == tokens.len() - 1,
            t => !t.contains(['*', '>']),
        })
}

/// A stream or consumer name as JetStream allows it.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.contains(|c: char| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c))
}

/// Refuses an input that is OUTPUT or the rejects file (`ingest app.log < app.log`): the run
/// would read the records it appends, as `cat f >> f` would (GNU cat refuses that too).
///
/// # Errors
/// A message for the user naming the file and its role.
pub fn refuse_input_as_output(config: &Config, input: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if !input.is_file() || config.from.is_some() {
        return Ok(());
    }
    let output = match &config.output {
        Output::File(path) => Some(path),
        Output::Stdout | Output::Nats(_) => None,
    };
    let files = [(output, "OUTPUT"), (config.rejects.as_ref(), "--rejects")];
    for (path, what) in files {
        let Some(path) = path else { continue };
        if let Ok(m) = std::fs::metadata(path)
            && (m.dev(), m.ino()) == (input.dev(), input.ino())
        {
            return Err(format!(
                "standard input is {what} '{}': ingest would read back what it appends; write to another file",
                path.display()
            ));
        }
    }
    Ok(())
}

/// True unless `path` exists and is something other than a regular file (a device, a FIFO).
fn is_regular_or_missing(path: &Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| m.is_file())
}

/// True when two paths name one regular file: the same device and inode if both exist, else
/// the same absolute path once their directories are resolved. Devices such as `/dev/null` take
/// any number of roles.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if !is_regular_or_missing(a) || !is_regular_or_missing(b) {
        return false;
    }
    if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return (a.dev(), a.ino()) == (b.dev(), b.ino());
    }
    let resolved = |p: &Path| {
        let dir = std::fs::canonicalize(crate::atomic::parent(p)).ok()?;
        Some(dir.join(p.file_name()?))
    };
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn dash_means_standard_output() {
        let config = Args::parse_from(["ingest", "-"]).into_config().unwrap();
        assert_eq!(config.output, Output::Stdout);
        let config = Args::parse_from(["ingest"]).into_config().unwrap();
        assert_eq!(config.output, Output::File("ingest.log".into()));
    }

    #[test]
    fn min_level_accepts_aliases() {
        let args = Args::parse_from(["ingest", "--min-level", "warning"]);
        assert_eq!(args.min_level, Some(Severity::Warn));
    }

    #[test]
    fn contradicting_retry_delays_are_refused() {
        let args = Args::parse_from(["ingest", "--retry-initial-ms", "900", "--retry-max-ms", "100"]);
        assert!(args.into_config().unwrap_err().contains("--retry-initial-ms 900"));
    }
}
