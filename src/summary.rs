//! The run's totals, summed once from the stages' reports, and the exit code they imply.

use std::fmt;
use std::time::Duration;

use crate::error::Exit;
use crate::pipeline::{reader::ReaderReport, validator::ValidatorReport, writer::WriterReport};
use crate::record::RejectReason;
use crate::signal::Signal;

/// What a finished run did. `lines = blank + rejected + dropped + filtered + written` when the
/// input was read to its end and the output took every record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read.
    pub lines: u64,
    /// Lines empty after trimming.
    pub blank: u64,
    /// Rejected lines, indexed like [`RejectReason::ALL`].
    pub rejected_by_reason: [u64; RejectReason::ALL.len()],
    /// Lines each parser worker parsed, in the order the workers finished.
    pub parsed_by_worker: Vec<u64>,
    /// Records with an empty message.
    pub dropped: u64,
    /// Records below `--min-level`.
    pub filtered: u64,
    /// Records written to the output.
    pub written: u64,
    /// Input bytes read.
    pub bytes_in: u64,
    /// Output bytes written.
    pub bytes_out: u64,
    /// Write retries.
    pub retries: u64,
    /// Wall time of the pipeline.
    pub elapsed: Duration,
    /// A drain stopped reading before the end of the input.
    pub drained: bool,
    /// The output pipe was closed by its reader.
    pub output_closed: bool,
}

impl Summary {
    pub(crate) fn add_reader(&mut self, r: ReaderReport) {
        self.lines = r.lines;
        self.bytes_in = r.bytes;
        self.drained = r.drained;
    }

    pub(crate) fn add_validator(&mut self, v: ValidatorReport) {
        self.blank = v.blank;
        self.rejected_by_reason = v.rejected_by_reason;
        self.dropped = v.dropped;
        self.filtered = v.filtered;
    }

    pub(crate) fn add_writer(&mut self, w: WriterReport) {
        self.written = w.written;
        self.bytes_out = w.bytes;
        self.retries = w.retries;
        self.output_closed = w.output_closed;
    }

    /// All rejected lines.
    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.iter().sum()
    }

    /// The exit code of a run that did not fail: a signal's, else 65 past `max_rejects`, else 0.
    pub fn exit(&self, max_rejects: Option<u64>, signal: Option<Signal>) -> Exit {
        match signal {
            Some(signal) => signal.exit(),
            None if max_rejects.is_some_and(|max| self.rejected() > max) => Exit::TooManyRejects,
            None => Exit::Ok,
        }
    }
}

impl fmt::Display for Summary {
    /// One line for people: `N lines in S s (R lines/s): W written, ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { self.lines as f64 / secs } else { 0.0 };
        write!(
            f,
            "{} lines in {secs:.2} s ({}/s): {} written, {} rejected, {} dropped, {} filtered, {} blank",
            self.lines,
            human(rate),
            self.written,
            self.rejected(),
            self.dropped,
            self.filtered,
            self.blank
        )
    }
}

/// `950`, `11.9k`, `3.2M` lines.
fn human(rate: f64) -> String {
    match rate {
        r if r >= 1e6 => format!("{:.1}M lines", r / 1e6),
        r if r >= 1e3 => format!("{:.1}k lines", r / 1e3),
        r => format!("{r:.0} lines"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_win_over_too_many_rejects() {
        let summary = Summary {
            rejected_by_reason: [0, 3, 0, 0],
            ..Summary::default()
        };
        assert_eq!(summary.exit(Some(2), None), Exit::TooManyRejects);
        assert_eq!(summary.exit(Some(3), None), Exit::Ok);
        assert_eq!(summary.exit(None, None), Exit::Ok);
        assert_eq!(summary.exit(Some(2), Some(Signal::Interrupt)), Exit::Interrupted);
    }

    #[test]
    fn the_summary_line_reads_like_the_issue_example() {
        let summary = Summary {
            lines: 10000,
            written: 9998,
            rejected_by_reason: [0, 2, 0, 0],
            elapsed: Duration::from_millis(840),
            ..Summary::default()
        };
        assert_eq!(
            summary.to_string(),
            "10000 lines in 0.84 s (11.9k lines/s): 9998 written, 2 rejected, 0 dropped, 0 filtered, 0 blank"
        );
    }
}
