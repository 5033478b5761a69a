//! The pipeline in-process, through the library: counts, and backpressure bounding memory.

mod common;

use std::io::{self, Cursor, Read};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Scratch, expected_text, valid_lines};
use ingest::checkpoint::Resume;
use ingest::metrics::Metrics;
use ingest::output::{FileSink, Sink};
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

/// An endless supply of valid lines that counts how many it has handed out.
struct CountingInput {
    handed_out: Arc<AtomicU64>,
    next: usize,
    limit: usize,
    pending: Vec<u8>,
}

impl Read for CountingInput {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() && self.next < self.limit {
            self.pending = common::valid_lines_range(self.next..self.next + 1000).into_bytes();
            self.next += 1000;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
        self.handed_out.fetch_add(lines as u64, Ordering::SeqCst);
        Ok(n)
    }
}

/// A slow output: its first write stalls for 200 ms (a device waking up); every write records
/// how far the reader was ahead of it.
struct SlowSink {
    handed_out: Arc<AtomicU64>,
    written_lines: u64,
    max_lead: Arc<AtomicU64>,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncWrite for SlowSink {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.written_lines == 0 {
            let stall = self
                .stall
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(200))));
            if stall.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let lead = self.handed_out.load(Ordering::SeqCst) - self.written_lines;
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

impl Sink for SlowSink {
    fn describe(&self) -> String {
        "slow sink".to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_writer_holds_the_reader_to_a_bounded_lead() {
    let handed_out = Arc::new(AtomicU64::new(0));
    let max_lead = Arc::new(AtomicU64::new(0));
    let total = 300_000;
    let input = CountingInput {
        handed_out: handed_out.clone(),
        next: 0,
        limit: total,
        pending: Vec::new(),
    };
    let sink = SlowSink {
        handed_out,
        written_lines: 0,
        max_lead: max_lead.clone(),
        stall: None,
    };
    let mut config = Config::new(Output::Stdout);
    config.capacity = NonZeroUsize::new(1024).unwrap();

    let summary = ingest::pipeline::run(
        &config,
        input,
        Resume::default(),
        sink,
        None::<FileSink>,
        Arc::new(Metrics::default()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.written, total as u64);

    // The lead is at most --capacity lines in flight, plus the reader's read-ahead (two 256 KiB
    // chunks, ~7000 of these 40-byte lines each) and the writer's 256 KiB buffer. Without
    // backpressure the reader would be through most of the input during the stall.
    let lead = max_lead.load(Ordering::SeqCst);
    assert!(lead <= 20_000, "the reader ran {lead} lines ahead of the writer");
}
