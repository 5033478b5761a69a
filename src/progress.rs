//! `--progress`: a status line on stderr for people watching a long run.
//!
//! Reads the shared [`Metrics`] ten times a second; never touches the pipeline. With a regular
//! file on stdin it knows the total, so it shows a bar, a percentage and an ETA. Log lines
//! printed meanwhile go around the bar (see [`crate::logging`]) instead of tearing it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::logging;
use crate::metrics::Metrics;
use crate::summary::human;

/// When to show progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Only when stderr is a terminal.
    #[default]
    Auto,
    /// Even when stderr is not a terminal.
    Always,
    /// Never.
    Never,
}

/// How progress is shown, once `--progress` meets the terminal (or not) on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Nothing.
    Off,
    /// A status line redrawn in place, on a terminal.
    Bar,
    /// A plain line every second, for a log file or a pipe (`--progress always`).
    Lines,
}

impl Mode {
    /// What this mode shows when stderr is (or is not) a terminal.
    pub fn display(self, terminal: bool) -> Display {
        match (self, terminal) {
            (Mode::Never, _) | (Mode::Auto, false) => Display::Off,
            (Mode::Auto | Mode::Always, true) => Display::Bar,
            (Mode::Always, false) => Display::Lines,
        }
    }
}

impl Display {
    /// Starts showing progress, if any; `total` is the input's size in bytes, when known.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn start(self, metrics: Arc<Metrics>, total: Option<u64>) -> Option<Progress> {
        match self {
            Display::Off => None,
            Display::Bar => Some(Progress::bar(metrics, total)),
            Display::Lines => Some(Progress::lines(metrics, total)),
        }
    }
}

/// The progress display of one run; cleared when finished or dropped.
pub struct Progress {
    bar: Option<ProgressBar>,
    updater: tokio::task::JoinHandle<()>,
}

/// `12.3k lines, 1.2 MB; 10.0k/s, 1.0 MB/s` after `secs` seconds, and how long the sink has
/// been unavailable, if it is.
fn rates(metrics: &Metrics, secs: f64) -> (u64, String) {
    let lines = metrics.lines_read.load(Ordering::Relaxed);
    let bytes = metrics.bytes_in.load(Ordering::Relaxed);
    let secs = secs.max(1e-3);
    let mut text = format!(
        "{} lines, {:.1} MB; {}/s, {:.1} MB/s",
        human(lines as f64),
        bytes as f64 / 1e6,
        human(lines as f64 / secs),
        bytes as f64 / 1e6 / secs
    );
    if metrics.logs_active.load(Ordering::Relaxed) {
        text.push_str(&format!("; {} logs", metrics.logs_known.load(Ordering::Relaxed)));
    }
    let lag = metrics.lag_bytes();
    if lag > 0 {
        let behind = age(metrics.lag_ms() as f64 / 1e3);
        text.push_str(&format!("; {:.1} MB ({behind}) behind", lag as f64 / 1e6));
    }
    if let Some(ms) = metrics.last_record_age_ms() {
        text.push_str(&format!("; last record {} old", age(ms as f64 / 1e3)));
    }
    if let Some(down) = unavailable_for(&metrics.sink_open_since) {
        text.push_str(&format!("; sink unavailable for {} s", down.as_secs()));
    }
    if let Some(down) = unavailable_for(&metrics.source_open_since) {
        text.push_str(&format!("; source unavailable for {} s", down.as_secs()));
    }
    (bytes, text)
}

/// `secs` in the unit that reads best: `42 s`, `5 min`, `3 h`, `12 d`.
fn age(secs: f64) -> String {
    match secs {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.0} h", s / 3600.0),
        s => format!("{:.0} d", s / 86400.0),
    }
}

/// How long a NATS server has been unavailable (since `open_since`, Unix ms), if it is.
fn unavailable_for(open_since: &std::sync::atomic::AtomicU64) -> Option<Duration> {
    let since = open_since.load(Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    (since != 0).then(|| Duration::from_millis(now.saturating_sub(since)))
}

impl Progress {
    fn bar(metrics: Arc<Metrics>, total: Option<u64>) -> Progress {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(10));
        let template = match total {
            Some(_) => "{wide_bar} {percent:>3}% ETA {eta} {msg}",
            None => "{spinner} {msg}",
        };
        bar.set_style(ProgressStyle::with_template(template).expect("the templates are valid"));
        logging::route_around(Some(bar.clone()));
        let shown = bar.clone();
        let updater = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            loop {
                ticks.tick().await;
                let (bytes, text) = rates(&metrics, started.elapsed().as_secs_f64());
                shown.set_position(bytes);
                shown.set_message(text);
                shown.tick();
            }
        });
        Progress {
            bar: Some(bar),
            updater,
        }
    }

    /// Whole lines, no escape sequences: a log file or a pipe reads them as they come.
    fn lines(metrics: Arc<Metrics>, total: Option<u64>) -> Progress {
        let updater = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            ticks.tick().await; // the first tick is immediate; nothing to say yet
            loop {
                ticks.tick().await;
                let secs = started.elapsed().as_secs_f64();
                let (bytes, mut text) = rates(&metrics, secs);
                if let Some(total) = total.filter(|&t| t > 0) {
                    let done = (bytes as f64 / total as f64).min(1.0);
                    text.push_str(&format!(" ({:.0}%", done * 100.0));
                    if done > 0.0 {
                        text.push_str(&format!(", ETA {:.0} s", secs * (1.0 - done) / done));
                    }
                    text.push(')');
                }
                logging::print_line(&format!("ingest: progress: {text}"));
            }
        });
        Progress { bar: None, updater }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.updater.abort();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            logging::route_around(None);
        }
    }
}
