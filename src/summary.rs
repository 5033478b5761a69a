//! What a run did, as plain numbers: the one-line summary, `--stats-json` and
//! `--metrics-textfile` are renderings of a [`Summary`], and so is the exit code.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::error::Exit;
use crate::record::RejectReason;
use crate::signal::Signal;

/// One stage's waits and channel high-water mark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageSummary {
    /// Time blocked on a full output channel or window: downstream is the bottleneck.
    pub blocked: Duration,
    /// Time idle on an empty input: upstream is the bottleneck.
    pub idle: Duration,
    /// The fullest the stage's output channel got, in batches.
    pub channel_high_water: u64,
}

/// What a NATS sink did: messages published, acknowledged, re-sent, and its circuit breaker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkSummary {
    /// Messages published, re-sends included.
    pub published: u64,
    /// Messages the server acknowledged.
    pub acked: u64,
    /// Acknowledgements saying the server had the message already (dropped by its id).
    pub duplicates: u64,
    /// Messages published again after a failure.
    pub resent: u64,
    /// Times the circuit breaker opened.
    pub breaker_openings: u64,
    /// Since when (Unix ms) the breaker is open; `None` while it is closed.
    pub open_since_ms: Option<u64>,
}

/// What a collector's stream consumer did (`--from`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceSummary {
    /// Messages fetched, redeliveries included.
    pub fetched: u64,
    /// Acks sent.
    pub acked: u64,
    /// Messages the server delivered again.
    pub redelivered: u64,
    /// Times deliveries went missing (a server or consumer leader lost) and were asked for again.
    pub gaps: u64,
    /// Messages the consumer still held at the end: not yet delivered, or not acknowledged.
    pub pending: u64,
    /// Times the server was unavailable long enough to open the breaker.
    pub breaker_openings: u64,
    /// Since when (Unix ms) the server is unavailable; `None` while it is there.
    pub open_since_ms: Option<u64>,
}

/// The counters of a run. For a run that read its input to the end (or drained) and wrote every
/// record, `lines = blank + rejected + dropped + filtered + written + continued`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read.
    pub lines: u64,
    /// Lines empty after trimming.
    pub blank: u64,
    /// Lines joined to the record before them (`--multiline`).
    pub continued: u64,
    /// Rejected lines, indexed like [`RejectReason::ALL`].
    pub rejected_by_reason: [u64; RejectReason::ALL.len()],
    /// Records with an empty message.
    pub dropped: u64,
    /// Records below `--min-level`.
    pub filtered: u64,
    /// Records written to the output.
    pub written: u64,
    /// Lines the parsers parsed.
    pub lines_parsed: u64,
    /// Records the validator passed to the writer.
    pub valid: u64,
    /// Lines written to the rejects file.
    pub rejects_written: u64,
    /// Input bytes read.
    pub bytes_in: u64,
    /// Output bytes written.
    pub bytes_out: u64,
    /// Write retries.
    pub retries: u64,
    /// Lines read whose outcome was not final yet.
    pub in_flight: u64,
    /// Bytes at the end of a rotated-away input that the checkpoint never read.
    pub rotated_unread_bytes: u64,
    /// Compressed inputs found damaged or cut short.
    pub damaged_inputs: u64,
    /// `--from PATH`: files gone before their end was read.
    pub lost_files: u64,
    /// How far behind the run is: input bytes not read yet (of the file being read, and of the
    /// set's files after it).
    pub lag_bytes: u64,
    /// How far behind the run is in time (see [`crate::metrics::Metrics::lag_ms`]).
    pub lag_ms: i64,
    /// Wall time so far.
    pub elapsed: Duration,
    /// The reader's waits; its channel is the parsers' input.
    pub reader: StageSummary,
    /// The parsers' waits; their channel is the validator's input.
    pub parser: StageSummary,
    /// The validator's waits; its channel is the writer's input.
    pub validator: StageSummary,
    /// The writer's waits: idle for batches, blocked on the output.
    pub writer: StageSummary,
    /// The NATS sink's counters, when OUTPUT is one.
    pub sink: Option<SinkSummary>,
    /// The stream consumer's counters, when collecting (`--from`).
    pub source: Option<SourceSummary>,
    /// Many logs' counters (`--from GLOB`).
    pub logs: Option<LogsSummary>,
}

/// Many logs (`--from GLOB`): how many, and which are furthest behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogsSummary {
    /// Logs known: matched by the globs, or in the checkpoint.
    pub known: u64,
    /// Logs open now.
    pub open: u64,
    /// Logs found with lines gone unread.
    pub lost: u64,
    /// The logs furthest behind, most unread bytes first: path and bytes.
    pub behind: Vec<(String, u64)>,
}

impl Summary {
    /// All rejected lines.
    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.iter().sum()
    }

    /// The exit code of a run that did not fail: a signal's, else 66 when input was lost, else
    /// 65 past `max_rejects`, else 0.
    pub fn exit(&self, max_rejects: Option<u64>, signal: Option<Signal>) -> Exit {
        match signal {
            // A file of a set found damaged (said when met): the rest was read, then this.
            _ if self.damaged_inputs > 0 => Exit::Io,
            Some(signal) => signal.exit(),
            None if self.lost_files > 0 || self.rotated_unread_bytes > 0 => Exit::InputLost,
            None if max_rejects.is_some_and(|max| self.rejected() > max) => Exit::TooManyRejects,
            None => Exit::Ok,
        }
    }

    /// Where the run waited, per stage: blocked on its output / idle for input. The stage that
    /// is rarely idle while the others wait on it is the bottleneck.
    pub fn waits(&self) -> String {
        let stages = [
            ("reader", &self.reader),
            ("parser", &self.parser),
            ("validator", &self.validator),
            ("writer", &self.writer),
        ];
        let each: Vec<String> = stages
            .iter()
            .map(|(name, s)| {
                format!(
                    "{name} {:.2}/{:.2} s",
                    s.blocked.as_secs_f64(),
                    s.idle.as_secs_f64()
                )
            })
            .collect();
        format!("waits (blocked on output / idle for input): {}", each.join(", "))
    }

    /// The `--stats-json` object (schema in the README).
    pub fn to_json(&self, exit: Exit) -> serde_json::Value {
        let by_reason: serde_json::Map<String, serde_json::Value> = RejectReason::ALL
            .iter()
            .zip(self.rejected_by_reason)
            .map(|(reason, n)| (reason.key().to_owned(), n.into()))
            .collect();
        let stage = |s: &StageSummary, counts: serde_json::Value| {
            let mut object = counts;
            object["blocked_seconds"] = s.blocked.as_secs_f64().into();
            object["idle_seconds"] = s.idle.as_secs_f64().into();
            object["channel_high_water"] = s.channel_high_water.into();
            object
        };
        let mut object = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "exit_code": exit as u8,
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "lines": self.lines,
            "blank": self.blank,
            "continued": self.continued,
            "rejected": self.rejected(),
            "dropped": self.dropped,
            "filtered": self.filtered,
            "written": self.written,
            "rejected_by_reason": by_reason,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "retries": self.retries,
            "rotated_unread_bytes": self.rotated_unread_bytes,
            "damaged_inputs": self.damaged_inputs,
            "lost_files": self.lost_files,
            "lag": {"bytes": self.lag_bytes, "seconds": self.lag_ms as f64 / 1e3},
            "stages": {
                "reader": stage(&self.reader, json!({"lines_out": self.lines, "bytes_in": self.bytes_in})),
                "parser": stage(&self.parser, json!({"lines_in": self.lines_parsed})),
                "validator": stage(&self.validator, json!({
                    "lines_in": self.blank + self.rejected() + self.dropped + self.filtered + self.valid + self.continued,
                    "records_out": self.valid,
                })),
                "writer": stage(&self.writer, json!({
                    "records_in": self.valid,
                    "records_written": self.written,
                    "rejects_written": self.rejects_written,
                    "bytes_out": self.bytes_out,
                    "retries": self.retries,
                })),
            },
        });
        if let Some(sink) = &self.sink {
            object["sink"] = json!({
                "published": sink.published,
                "acked": sink.acked,
                "duplicates": sink.duplicates,
                "resent": sink.resent,
                "breaker_openings": sink.breaker_openings,
                "breaker_open": sink.open_since_ms.is_some(),
                "breaker_open_since_unix_ms": sink.open_since_ms,
            });
        }
        if let Some(source) = &self.source {
            object["source"] = json!({
                "fetched": source.fetched,
                "acked": source.acked,
                "redelivered": source.redelivered,
                "gaps": source.gaps,
                "pending": source.pending,
                "breaker_openings": source.breaker_openings,
                "breaker_open": source.open_since_ms.is_some(),
            });
        }
        if let Some(logs) = &self.logs {
            let behind: Vec<serde_json::Value> = logs
                .behind
                .iter()
                .map(|(file, bytes)| json!({"file": file, "bytes": bytes}))
                .collect();
            object["logs"] = json!({
                "known": logs.known,
                "open": logs.open,
                "lost": logs.lost,
                "furthest_behind": behind,
            });
        }
        object
    }

    /// The `--metrics-textfile` content, in Prometheus text exposition format.
    ///
    /// `exit` is `None` while the run is still going: success then means "no failure so far".
    pub fn to_prometheus(&self, exit: Option<Exit>, now: SystemTime) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        metric(
            "ingest_lines_total",
            "counter",
            "Input lines of the last run, by outcome.",
            &[
                ("{outcome=\"written\"}", self.written as f64),
                ("{outcome=\"rejected\"}", self.rejected() as f64),
                ("{outcome=\"dropped\"}", self.dropped as f64),
                ("{outcome=\"filtered\"}", self.filtered as f64),
                ("{outcome=\"blank\"}", self.blank as f64),
                ("{outcome=\"continued\"}", self.continued as f64),
            ],
        );
        metric(
            "ingest_bytes_total",
            "counter",
            "Bytes read from the input and written to the output by the last run.",
            &[
                ("{direction=\"in\"}", self.bytes_in as f64),
                ("{direction=\"out\"}", self.bytes_out as f64),
            ],
        );
        metric(
            "ingest_write_retries_total",
            "counter",
            "Write retries of the last run.",
            &[("", self.retries as f64)],
        );
        metric(
            "ingest_rotated_unread_bytes",
            "gauge",
            "Bytes at the end of a rotated-away input that the last run found never read (lost unless read by hand).",
            &[("", self.rotated_unread_bytes as f64)],
        );
        metric(
            "ingest_lag_bytes",
            "gauge",
            "Input bytes not read yet: of the file being read and of the rotated files after it.",
            &[("", self.lag_bytes as f64)],
        );
        metric(
            "ingest_lag_seconds",
            "gauge",
            "How far behind in time: 0 when nothing is unread, else seconds since the last written record's timestamp.",
            &[("", self.lag_ms as f64 / 1e3)],
        );
        metric(
            "ingest_lost_files",
            "gauge",
            "Files the last run found gone before their end was read (rotated past `rotate N`, deleted).",
            &[("", self.lost_files as f64)],
        );
        metric(
            "ingest_damaged_inputs",
            "gauge",
            "Compressed inputs of the last run found damaged or cut short (read up to the damage).",
            &[("", self.damaged_inputs as f64)],
        );
        if let Some(sink) = &self.sink {
            metric(
                "ingest_sink_messages_total",
                "counter",
                "NATS messages of the last run: published (re-sends included), acknowledged, acknowledged as duplicates, re-sent.",
                &[
                    ("{event=\"published\"}", sink.published as f64),
                    ("{event=\"acked\"}", sink.acked as f64),
                    ("{event=\"duplicate\"}", sink.duplicates as f64),
                    ("{event=\"resent\"}", sink.resent as f64),
                ],
            );
            metric(
                "ingest_sink_breaker_openings_total",
                "counter",
                "Times the circuit breaker around the NATS sink opened in the last run.",
                &[("", sink.breaker_openings as f64)],
            );
            metric(
                "ingest_sink_breaker_open",
                "gauge",
                "1 while the circuit breaker around the NATS sink is open (the server is unavailable).",
                &[("", f64::from(u8::from(sink.open_since_ms.is_some())))],
            );
        }
        if let Some(source) = &self.source {
            metric(
                "ingest_source_messages_total",
                "counter",
                "NATS messages the last collector run fetched (redeliveries included), acknowledged, and got again.",
                &[
                    ("{event=\"fetched\"}", source.fetched as f64),
                    ("{event=\"acked\"}", source.acked as f64),
                    ("{event=\"redelivered\"}", source.redelivered as f64),
                ],
            );
            metric(
                "ingest_source_pending_messages",
                "gauge",
                "Messages the collector's consumer still held at the end of the last run.",
                &[("", source.pending as f64)],
            );
            metric(
                "ingest_source_unavailable",
                "gauge",
                "1 while the NATS server the collector reads from is unavailable.",
                &[("", f64::from(u8::from(source.open_since_ms.is_some())))],
            );
        }
        if let Some(logs) = &self.logs {
            // Totals only: a series per log would be thousands of series.
            metric(
                "ingest_logs",
                "gauge",
                "Logs the run knows (matched by --from, or in the checkpoint), holds open now, and found with lines gone unread.",
                &[
                    ("{state=\"known\"}", logs.known as f64),
                    ("{state=\"open\"}", logs.open as f64),
                    ("{state=\"lost\"}", logs.lost as f64),
                ],
            );
        }
        let unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        metric(
            "ingest_last_run_timestamp_seconds",
            "gauge",
            "When the last run ended (or, while it runs, when this file was written).",
            &[("", unix)],
        );
        let success = exit.is_none_or(|e| matches!(e, Exit::Ok | Exit::Interrupted | Exit::Terminated));
        metric(
            "ingest_last_run_success",
            "gauge",
            "1 if the last run succeeded (exit 0, or drained after a signal), 0 if not.",
            &[("", f64::from(u8::from(success)))],
        );
        metric(
            "ingest_run_duration_seconds",
            "gauge",
            "Wall time of the last run (so far, while it runs).",
            &[("", self.elapsed.as_secs_f64())],
        );
        metric(
            "ingest_run_in_progress",
            "gauge",
            "1 while a run is going on, 0 once it has ended.",
            &[("", f64::from(u8::from(exit.is_none())))],
        );
        out
    }
}

impl Summary {
    /// Writes `--stats-json` and the final `--metrics-textfile`, if asked for; a failure there
    /// is only a warning: the run itself is done.
    pub fn write_reports(&self, stats_json: Option<&Path>, metrics_textfile: Option<&Path>, exit: Exit) {
        if let Some(path) = stats_json {
            let json = format!("{}\n", self.to_json(exit));
            let written = if path.as_os_str() == "-" {
                io::stderr().write_all(json.as_bytes())
            } else {
                crate::atomic::write(path, json.as_bytes())
            };
            // An error, shown even with -q: a monitor reading these files would go blind.
            if let Err(e) = written {
                tracing::error!("cannot write stats to '{}': {e}", path.display());
            }
        }
        if let Some(path) = metrics_textfile {
            let text = self.to_prometheus(Some(exit), SystemTime::now());
            if let Err(e) = crate::atomic::write(path, text.as_bytes()) {
                tracing::error!("cannot write metrics to '{}': {e}", path.display());
            }
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
            "{} line{} in {secs:.2} s ({} lines/s): {} written, {} rejected, {} dropped, {} filtered, {} blank",
            self.lines,
            if self.lines == 1 { "" } else { "s" },
            human(rate),
            self.written,
            self.rejected(),
            self.dropped,
            self.filtered,
            self.blank
        )?;
        if self.continued > 0 {
            write!(f, ", {} continued", self.continued)?;
        }
        Ok(())
    }
}

/// A count for people: `950`, `11.9k`, `3.2M`.
pub(crate) fn human(n: f64) -> String {
    match n {
        n if n >= 1e6 => format!("{:.1}M", n / 1e6),
        n if n >= 1e3 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_win_over_too_many_rejects() {
        let summary = Summary {
            rejected_by_reason: [0, 3, 0, 0, 0, 0, 0, 0],
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
            rejected_by_reason: [0, 2, 0, 0, 0, 0, 0, 0],
            elapsed: Duration::from_millis(840),
            ..Summary::default()
        };
        assert_eq!(
            summary.to_string(),
            "10000 lines in 0.84 s (11.9k lines/s): 9998 written, 2 rejected, 0 dropped, 0 filtered, 0 blank"
        );
    }
}
