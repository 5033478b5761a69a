//! The command line: clap's raw [`Args`], checked and turned into the library's [`Config`].
//!
//! `main` parses `Args`, calls [`Args::into_config`] and hands the `Config` to [`crate::run`];
//! nothing past this file sees a raw flag.

use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::config::{self, Config, Output, RetryPolicy};
use crate::format::Format;
use crate::progress;
use crate::record::Severity;

const AFTER_HELP: &str = "\
Records:
  TIMESTAMP SEVERITY MESSAGE, one per line, fields separated by spaces or tabs.
  TIMESTAMP  2026-04-15T00:00:01Z, 2026-04-15 00:00:05,250, ...T02:00:07+0200 (no offset: UTC)
  SEVERITY   trace debug info warn[ing] err[or] fatal crit[ical], any case, [brackets] allowed
  A record with an empty message is dropped; a line that does not parse is rejected.

Example:
  ingest --rejects bad.tsv --checkpoint app.cp out.log < app.log

Output formats:
  text   `     1  INFO started` (line number, severity, message)
  json   {\"line\":1,\"timestamp\":\"2026-04-15T00:00:01Z\",\"severity\":\"INFO\",\"message\":\"started\"}

Exit codes:
  0 ok   2 usage   65 more rejects than --max-rejects   70 internal error
  71 out of file descriptors, memory or threads   73 cannot open output
  74 read/write error, drain timeout or unusable checkpoint   75 output or rejects file in use by another run
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
    /// File to append valid records to; `-` writes to standard output
    #[arg(value_name = "OUTPUT", default_value = "ingest.log")]
    pub output: PathBuf,

    /// Parser tasks working in parallel (1-256)
    #[arg(short, long, value_name = "N", default_value_t = config::DEFAULT_WORKERS, value_parser = clap::value_parser!(u16).range(1..=MAX_WORKERS))]
    pub workers: u16,

    /// Lines in flight between reader and writer (bounds memory; see README)
    #[arg(long, value_name = "N", default_value_t = NonZeroUsize::new(config::DEFAULT_CAPACITY).expect("not zero"))]
    pub capacity: NonZeroUsize,

    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    pub format: Format,

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

    /// Print only errors (RUST_LOG overrides)
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: -v for each stage's report, -vv for everything (RUST_LOG overrides)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
        if self.checkpoint.is_some() && self.output.as_os_str() == "-" {
            return Err("--checkpoint needs an OUTPUT file: standard output cannot be cut back".to_owned());
        }
        if self.checkpoint.is_some() {
            let files = [
                (Some(&self.output), "OUTPUT"),
                (self.rejects.as_ref(), "--rejects"),
            ];
            for (path, what) in files {
                if let Some(path) = path.filter(|p| !is_regular_or_missing(p)) {
                    return Err(format!(
                        "--checkpoint needs {what} to be a regular file, which it can cut back and sync: '{}' is not one (a device or a pipe); run without --checkpoint",
                        path.display()
                    ));
                }
            }
        }
        self.refuse_shared_files()?;
        let output = if self.output.as_os_str() == "-" {
            Output::Stdout
        } else {
            Output::File(self.output)
        };
        Ok(Config {
            output,
            workers: NonZeroUsize::new(usize::from(self.workers)).expect("clap's range starts at 1"),
            capacity: self.capacity,
            format: self.format,
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
    fn refuse_shared_files(&self) -> Result<(), String> {
        let dash = |p: &&PathBuf| p.as_os_str() != "-";
        let files = [
            (Some(&self.output).filter(dash), "OUTPUT"),
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

    /// The log filter the flags ask for, used when `RUST_LOG` is not set.
    pub fn log_filter(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        }
    }
}

/// Refuses an input that is OUTPUT or the rejects file (`ingest app.log < app.log`): the run
/// would read the records it appends, as `cat f >> f` would (GNU cat refuses that too).
///
/// # Errors
/// A message for the user naming the file and its role.
pub fn refuse_input_as_output(config: &Config, input: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if !input.is_file() {
        return Ok(());
    }
    let output = match &config.output {
        Output::File(path) => Some(path),
        Output::Stdout => None,
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
