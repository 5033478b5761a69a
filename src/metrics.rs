//! The run's counters: one set, shared by every stage, read by the summary, `--stats-json`,
//! `--metrics-textfile` and the drain timeout's message.
//!
//! Stages add to them once per batch or buffer, never per line, so counting costs nothing
//! measurable on the hot path. [`Metrics::snapshot`] turns them into a plain [`Summary`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::record::RejectReason;
use crate::summary::{LogsSummary, SinkSummary, SourceSummary, StageSummary, Summary};

/// Time a stage spent waiting, and the fullest its output channel got.
#[derive(Debug, Default)]
pub struct StageTimes {
    /// Waiting to hand work on: a full channel or in-flight window (backpressure).
    blocked_ns: AtomicU64,
    /// Waiting for work: an empty input channel (starvation).
    idle_ns: AtomicU64,
    /// Most messages seen in the stage's output channel.
    high_water: AtomicU64,
}

impl StageTimes {
    /// Adds time spent blocked on a full output.
    pub fn blocked(&self, waited: Duration) {
        self.blocked_ns
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Adds time spent idle on an empty input.
    pub fn idle(&self, waited: Duration) {
        self.idle_ns
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Records the output channel's length after a send.
    pub fn queued(&self, len: usize) {
        self.high_water.fetch_max(len as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> StageSummary {
        StageSummary {
            blocked: Duration::from_nanos(self.blocked_ns.load(Ordering::Relaxed)),
            idle: Duration::from_nanos(self.idle_ns.load(Ordering::Relaxed)),
            channel_high_water: self.high_water.load(Ordering::Relaxed),
        }
    }
}

/// Every counter of a run.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Lines the reader has handed out (a collector's: as the parsers split its messages).
    pub lines_read: AtomicU64,
    /// Input bytes the reader has handed out.
    pub bytes_in: AtomicU64,
    /// Lines the parsers have parsed.
    pub lines_parsed: AtomicU64,
    /// Lines empty after trimming.
    pub blank: AtomicU64,
    /// Lines joined to the record before them (`--multiline`).
    pub continued: AtomicU64,
    /// Rejected lines, indexed like [`RejectReason::ALL`].
    pub rejected: [AtomicU64; RejectReason::ALL.len()],
    /// Records with an empty message.
    pub dropped: AtomicU64,
    /// Records below `--min-level`.
    pub filtered: AtomicU64,
    /// Records passed to the writer.
    pub valid: AtomicU64,
    /// Records written to the output.
    pub written: AtomicU64,
    /// Bytes written to the output.
    pub bytes_out: AtomicU64,
    /// Lines written to the rejects file.
    pub rejects_written: AtomicU64,
    /// Write retries.
    pub retries: AtomicU64,
    /// Lines whose outcome is final: written, or rejected, dropped, filtered or blank.
    pub lines_settled: AtomicU64,
    /// Bytes at the end of a rotated-away input that the checkpoint never read.
    pub rotated_unread_bytes: AtomicU64,
    /// `--from PATH`: files gone before their end was read (rotated away, deleted).
    pub lost_files: AtomicU64,
    /// The regular file being read: its size at the reader's last look (each read), and
    /// where in it the reader has handed out lines up to; their difference is what is unread.
    pub input_size: AtomicU64,
    /// See [`Metrics::input_size`].
    pub input_read: AtomicU64,
    /// The file being read: its last modification at the reader's last look, in Unix
    /// nanoseconds (0: not a regular file).
    pub input_mtime_ns: std::sync::atomic::AtomicI64,
    /// Many logs (`--from GLOB`): the `logs` counters below mean something.
    pub logs_active: AtomicBool,
    /// Many logs: how many the run knows (matched by the globs, or in the checkpoint).
    pub logs_known: AtomicU64,
    /// Many logs: how many the reader has open now (one at a time).
    pub logs_open: AtomicU64,
    /// Many logs, followed: how many the follower keeps open between rounds (`--max-open-files`).
    pub logs_held: AtomicU64,
    /// Many logs: how many were found with lines gone unread (each said once).
    pub logs_lost: AtomicU64,
    /// Many logs: the ones furthest behind, most unread bytes first (at most
    /// [`FURTHEST_BEHIND`]), as the current run planned them, less those read since.
    pub behind: std::sync::Mutex<Vec<Behind>>,
    /// `--from PATH`: bytes of the set's files still to read after the current one.
    pub pending_files_bytes: AtomicU64,
    /// The last written record's timestamp, in Unix nanoseconds; 0 before the first.
    pub last_record_ns: std::sync::atomic::AtomicI64,
    /// Compressed inputs found damaged or cut short (their whole lines before it were read);
    /// many logs: files that could not be opened.
    pub damaged_inputs: AtomicU64,
    /// The reader of `-` went away (`ingest - | head`): nothing more is read, not even the next
    /// file of a set or what a follower waits for.
    pub output_closed: AtomicBool,
    /// A follower found OUTPUT rotated away (renamed, deleted) at a commit and ended its run:
    /// the next run opens it anew. Taken back by the loop that starts the next run.
    pub output_replaced: AtomicBool,
    /// The output is a NATS sink (the `sink` counters below mean something).
    pub sink_active: AtomicBool,
    /// Messages published to NATS (re-sends included).
    pub sink_published: AtomicU64,
    /// Messages the server acknowledged.
    pub sink_acked: AtomicU64,
    /// Acknowledgements that said the server already had the message.
    pub sink_duplicates: AtomicU64,
    /// Messages published again after a failure.
    pub sink_resent: AtomicU64,
    /// Times the circuit breaker opened.
    pub sink_breaker_openings: AtomicU64,
    /// Since when (Unix ms) the breaker is open; 0 while it is closed.
    pub sink_open_since: AtomicU64,
    /// Records come from a NATS stream (the `source` counters below mean something).
    pub source_active: AtomicBool,
    /// Messages fetched from the stream (redeliveries included).
    pub source_fetched: AtomicU64,
    /// Acks sent for messages.
    pub source_acked: AtomicU64,
    /// Messages the server delivered again.
    pub source_redelivered: AtomicU64,
    /// Times deliveries went missing and were asked for again.
    pub source_gaps: AtomicU64,
    /// Messages the consumer still held at the end (not yet delivered or acknowledged).
    pub source_pending: AtomicU64,
    /// Times the server became unavailable long enough to open the breaker.
    pub source_breaker_openings: AtomicU64,
    /// Since when (Unix ms) the server is unavailable; 0 while it is there.
    pub source_open_since: AtomicU64,
    /// Per-stage waits and channel high-water marks.
    pub reader: StageTimes,
    /// See [`Metrics::reader`].
    pub parser: StageTimes,
    /// See [`Metrics::reader`].
    pub validator: StageTimes,
    /// See [`Metrics::reader`].
    pub writer: StageTimes,
}

/// How many of the logs furthest behind the stats name.
pub const FURTHEST_BEHIND: usize = 5;

/// A log with bytes not read yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behind {
    /// Its index in the run (its batches' `At::log`).
    pub log: u32,
    /// Its path.
    pub path: std::sync::Arc<str>,
    /// Bytes of its files not read yet.
    pub bytes: u64,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// How far behind the run is in input: bytes not handed out yet, of the file being read
    /// (as large as it was at the reader's last read) and of the set's files after it.
    pub fn lag_bytes(&self) -> u64 {
        let size = self.input_size.load(Ordering::Relaxed);
        size.saturating_sub(self.input_read.load(Ordering::Relaxed))
            + self.pending_files_bytes.load(Ordering::Relaxed)
    }

    /// Milliseconds from the last written record's timestamp to now; `None` before the first.
    pub fn last_record_age_ms(&self) -> Option<i64> {
        let last = self.last_record_ns.load(Ordering::Relaxed);
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        (last != 0).then(|| i64::try_from((now - i128::from(last)) / 1_000_000).unwrap_or(i64::MAX))
    }

    /// How far behind the run is in time, in milliseconds: 0 when nothing is unread; else from
    /// the last written record's timestamp to now (the unread lines came after it), or, before
    /// any, from when the file being read was last written to (they are at least that old).
    /// Never negative (a clock ahead, timestamps in the future).
    pub fn lag_ms(&self) -> i64 {
        if self.lag_bytes() == 0 {
            return 0;
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let since = match self.last_record_ns.load(Ordering::Relaxed) {
            0 => self.input_mtime_ns.load(Ordering::Relaxed),
            last => last,
        };
        if since == 0 {
            return 0;
        }
        i64::try_from((now - i128::from(since)) / 1_000_000).map_or(i64::MAX, |ms| ms.max(0))
    }

    /// The counters now, as plain numbers.
    pub fn snapshot(&self, elapsed: Duration) -> Summary {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Summary {
            lines: get(&self.lines_read),
            blank: get(&self.blank),
            continued: get(&self.continued),
            rejected_by_reason: std::array::from_fn(|i| get(&self.rejected[i])),
            dropped: get(&self.dropped),
            filtered: get(&self.filtered),
            written: get(&self.written),
            lines_parsed: get(&self.lines_parsed),
            valid: get(&self.valid),
            rejects_written: get(&self.rejects_written),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            retries: get(&self.retries),
            in_flight: get(&self.lines_read).saturating_sub(get(&self.lines_settled)),
            rotated_unread_bytes: get(&self.rotated_unread_bytes),
            damaged_inputs: get(&self.damaged_inputs),
            lost_files: get(&self.lost_files),
            lag_bytes: self.lag_bytes(),
            lag_ms: self.lag_ms(),
            elapsed,
            reader: self.reader.snapshot(),
            parser: self.parser.snapshot(),
            validator: self.validator.snapshot(),
            writer: self.writer.snapshot(),
            sink: self.sink_active.load(Ordering::Relaxed).then(|| SinkSummary {
                published: get(&self.sink_published),
                acked: get(&self.sink_acked),
                duplicates: get(&self.sink_duplicates),
                resent: get(&self.sink_resent),
                breaker_openings: get(&self.sink_breaker_openings),
                open_since_ms: Some(get(&self.sink_open_since)).filter(|&ms| ms != 0),
            }),
            logs: self.logs_active.load(Ordering::Relaxed).then(|| LogsSummary {
                known: get(&self.logs_known),
                open: get(&self.logs_open) + get(&self.logs_held),
                lost: get(&self.logs_lost),
                behind: self
                    .behind
                    .lock()
                    .map(|b| b.iter().map(|b| (b.path.to_string(), b.bytes)).collect())
                    .unwrap_or_default(),
            }),
            source: self.source_active.load(Ordering::Relaxed).then(|| SourceSummary {
                fetched: get(&self.source_fetched),
                acked: get(&self.source_acked),
                redelivered: get(&self.source_redelivered),
                gaps: get(&self.source_gaps),
                pending: get(&self.source_pending),
                breaker_openings: get(&self.source_breaker_openings),
                open_since_ms: Some(get(&self.source_open_since)).filter(|&ms| ms != 0),
            }),
        }
    }
}

/// How often a long run refreshes `--metrics-textfile`.
const TEXTFILE_EVERY: Duration = Duration::from_secs(10);

/// Rewrites the metrics textfile every 10 s while a run goes on; the binary writes the final one.
pub async fn keep_textfile_fresh(
    path: std::path::PathBuf,
    metrics: std::sync::Arc<Metrics>,
    started: std::time::Instant,
) {
    let mut ticks = tokio::time::interval(TEXTFILE_EVERY);
    ticks.tick().await; // the first tick is immediate; the run has only just begun
    let mut failing = false;
    loop {
        ticks.tick().await;
        let now = metrics.snapshot(started.elapsed());
        match crate::atomic::write(
            &path,
            now.to_prometheus(None, std::time::SystemTime::now()).as_bytes(),
        ) {
            // Said once, not every 10 s; the final write says it again if it still fails.
            Err(e) if !failing => {
                tracing::error!("cannot write metrics to '{}': {e}", path.display());
                failing = true;
            }
            Err(_) => {}
            Ok(()) => failing = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_metrics_textfile_is_refreshed_every_ten_seconds_during_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.prom");
        let metrics = std::sync::Arc::new(Metrics::default());
        let refresher = tokio::spawn(keep_textfile_fresh(
            path.clone(),
            metrics.clone(),
            std::time::Instant::now(),
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!path.exists(), "written before the first 10 s");
        metrics.written.store(7, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(6)).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("ingest_lines_total{outcome=\"written\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("ingest_run_in_progress 1\n"), "{text}");
        metrics.written.store(9, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("ingest_lines_total{outcome=\"written\"} 9\n"),
            "{text}"
        );
        refresher.abort();
    }
}
