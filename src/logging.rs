//! Log lines on stderr in the shape of a Unix tool's messages: `ingest: warning: line 7: ...`.
//!
//! `main` installs it once; `-q`/`-v` pick the level and `RUST_LOG` overrides them. While a
//! progress bar is up, each line is printed with the bar lifted, so the two never tear.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// `ingest: ` then the level (none for info), then the message.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::INFO => "",
            Level::WARN => "warning: ",
            Level::ERROR => "error: ",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        write!(writer, "ingest: {level}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The progress bar on screen, if any: log lines are printed around it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Makes log lines go around `bar` (or straight to stderr when `None`).
pub fn route_around(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// Stderr, one whole log line at a time, with the progress bar lifted while it prints.
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// A log line being formatted; printed when the formatter is done with it.
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        print_bytes(&self.0);
    }
}

/// Prints `bytes` on stderr, best effort, with the progress bar lifted if one is up. A message
/// that cannot be printed (stderr on a full disk) has nowhere else to go: the run goes on, and
/// its exit code stays its own.
fn print_bytes(bytes: &[u8]) {
    let print = || drop(io::stderr().write_all(bytes));
    match BAR.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// Prints one line on stderr as `print_bytes` does, adding the newline; for `main`'s messages
/// and the progress lines, never `eprintln!` (which panics when stderr fails).
pub fn print_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    print_bytes(&bytes);
}

/// Sends log lines to stderr at `default_filter` unless `RUST_LOG` says otherwise.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .event_format(Plain)
        .init();
}
