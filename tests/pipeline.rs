//! The pipeline in-process, through the library: counts, and backpressure bounding memory.

mod common;

use std::future::Future;
use std::io::{self, Cursor, Read};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Scratch, expected_text, valid_lines};
use ingest::metrics::Metrics;
use ingest::output::{AppendFile, Writable};
use ingest::sink::file::FileSink;
use ingest::source::file::{FileSource, Settings};
use ingest::{Config, Input, Output};
use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_records_go_through_parsers_and_validator() {
    let dir = Scratch::new();
    let config = Config::new(Output::File(dir.path("out.log")));
    let summary = ingest::run(
        &config,
        Input::Reader(Box::new(Cursor::new(valid_lines(100)))),
        Arc::new(Metrics::default()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        (summary.lines, summary.written, summary.rejected()),
        (100, 100, 0)
    );
    assert_eq!(
        (summary.lines_parsed, summary.valid, summary.bytes_in),
        (100, 100, valid_lines(100).len() as u64)
    );
    assert_eq!(dir.read("out.log"), expected_text(100));
}

/// `limit` lines of about 2 KB each: valid records, or (`garbage`) lines that are rejected.
struct BigLines {
    next: usize,
    limit: usize,
    garbage: bool,
    pending: Vec<u8>,
}

impl Read for BigLines {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Reads as full as a file's: many lines each, so batches fill up.
        while self.pending.len() < buf.len() && self.next < self.limit {
            let filler = "x".repeat(2000);
            let line = if self.garbage {
                format!("garbage {} {filler}\n", self.next)
            } else {
                format!("2026-04-15T00:00:00Z INFO {} {filler}\n", self.next)
            };
            self.pending.extend_from_slice(line.as_bytes());
            self.next += 1;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

/// An output that blocks its first write until the reader has handed out `until_read` lines
/// (or a few seconds passed), then records how far the reader got ahead of it at every write.
struct StalledSink {
    metrics: Arc<Metrics>,
    until_read: u64,
    deadline: tokio::time::Instant,
    released: bool,
    poll: Option<Pin<Box<tokio::time::Sleep>>>,
    written_lines: u64,
    max_lead: Arc<AtomicU64>,
}

impl StalledSink {
    fn new(metrics: &Arc<Metrics>, until_read: u64, max_lead: &Arc<AtomicU64>) -> StalledSink {
        StalledSink {
            metrics: metrics.clone(),
            until_read,
            deadline: tokio::time::Instant::now() + Duration::from_secs(3),
            released: false,
            poll: None,
            written_lines: 0,
            max_lead: max_lead.clone(),
        }
    }
}

impl AsyncWrite for StalledSink {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        while !self.released {
            let read = self.metrics.lines_read.load(Ordering::SeqCst);
            if read >= self.until_read || tokio::time::Instant::now() >= self.deadline {
                self.released = true;
                break;
            }
            let poll = self
                .poll
                .insert(Box::pin(tokio::time::sleep(Duration::from_millis(5))));
            if poll.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let lead = self.metrics.lines_read.load(Ordering::SeqCst) - self.written_lines;
        self.max_lead.fetch_max(lead, Ordering::SeqCst);
        self.written_lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Writable for StalledSink {
    fn describe(&self) -> String {
        "stalled sink".to_owned()
    }
}

/// The most lines the reader may be ahead of a stalled output with `--capacity 1024` and 4
/// workers: the in-flight window, 10 batches of 103 lines, each holding its slot until it is
/// written (`--capacity` rounded up to whole batches). Without the window, the bounded channels
/// alone would let ~35 batches (3,600 lines) through.
const LEAD_BOUND: u64 = 10 * 103;

async fn max_lead_with_a_stalled_output(garbage: bool) -> (u64, ingest::Summary) {
    let metrics = Arc::new(Metrics::default());
    let max_lead = Arc::new(AtomicU64::new(0));
    let input = BigLines {
        next: 0,
        limit: 20_000,
        garbage,
        pending: Vec::new(),
    };
    let mut config = Config::new(Output::Stdout);
    config.capacity = NonZeroUsize::new(1024).unwrap();
    config.workers = NonZeroUsize::new(4).unwrap();
    // Stalled until the reader is well past any bound, or for 3 s.
    let stalled = StalledSink::new(&metrics, 4 * LEAD_BOUND, &max_lead);
    let summary = if garbage {
        let output = FileSink::new(tokio::io::sink(), config.retry);
        ingest::pipeline::run(
            &config,
            Box::new(FileSource::new(Box::new(input), Settings::from_config(&config))),
            None,
            output,
            Some(stalled),
            metrics,
            CancellationToken::new(),
        )
        .await
    } else {
        ingest::pipeline::run(
            &config,
            Box::new(FileSource::new(Box::new(input), Settings::from_config(&config))),
            None,
            FileSink::new(stalled, config.retry),
            None::<AppendFile>,
            metrics,
            CancellationToken::new(),
        )
        .await
    };
    (max_lead.load(Ordering::SeqCst), summary.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_output_holds_the_reader_to_capacity() {
    let (lead, summary) = max_lead_with_a_stalled_output(false).await;
    assert_eq!(summary.written, 20_000);
    assert!(
        lead <= LEAD_BOUND,
        "the reader ran {lead} lines ahead of the writer (bound {LEAD_BOUND})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_rejects_file_holds_the_reader_back_just_the_same() {
    let (lead, summary) = max_lead_with_a_stalled_output(true).await;
    assert_eq!((summary.rejected(), summary.rejects_written), (20_000, 20_000));
    assert!(
        lead <= LEAD_BOUND,
        "the reader ran {lead} lines ahead of the rejects file (bound {LEAD_BOUND})"
    );
}
