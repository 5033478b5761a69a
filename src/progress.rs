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

/// The progress display of one run; cleared when finished or dropped.
pub struct Progress {
    bar: ProgressBar,
    updater: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts showing progress; `total` is the input's size in bytes, when known.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn start(metrics: Arc<Metrics>, total: Option<u64>) -> Progress {
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
                let lines = metrics.lines_read.load(Ordering::Relaxed);
                let bytes = metrics.bytes_in.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                shown.set_position(bytes);
                shown.set_message(format!(
                    "{} lines, {:.1} MB; {}/s, {:.1} MB/s",
                    human(lines as f64),
                    bytes as f64 / 1e6,
                    human(lines as f64 / secs),
                    bytes as f64 / 1e6 / secs
                ));
                shown.tick();
            }
        });
        Progress { bar, updater }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.updater.abort();
        self.bar.finish_and_clear();
        logging::route_around(None);
    }
}
