//! The fetcher stage: a collector's first stage, in the reader's place. Pulls messages from
//! the consumer and hands them to the parser pool in batches, in stream order.
//!
//! A message is acknowledged only once the checkpoint has committed it: the writer's commits
//! reach this stage through a [`watch`] channel ([`Announce`] wraps the committer), and every
//! message up to the committed stream sequence is acked then. A message at or before the
//! commit that comes again (an ack lost with a connection) is acked at once and not written
//! again. On a drain or after `--until-idle`, fetching stops, everything fetched flows out,
//! and this stage acks what the last commit covers before it ends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::Subject;
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::reader::RawBatch;
use super::send;
use crate::checkpoint::{Commit, Position};
use crate::error::Error;
use crate::metrics::{Metrics, add};
use crate::sink::jetstream::SOURCE;
use crate::source::jetstream::Collector;

/// How long a batch waits for more messages once it has one and nothing more has arrived: the
/// latency a trickle sees. Longer only adds waits: a busy stream fills batches without it.
const LINGER: Duration = Duration::from_millis(1);

/// Most message bytes in one batch, as the reader's chunks: packed messages hold hundreds of
/// records each, and a window of batches must stay within the memory bound.
const BATCH_BYTES: u64 = super::reader::CHUNK_BYTES as u64;

/// One fetched message, on its way to a parser.
#[derive(Debug)]
pub struct Fetched {
    /// Its stream sequence.
    pub seq: u64,
    /// The subject it was published on.
    pub subject: Subject,
    /// Its publisher, the `Ingest-Source` header.
    pub source: Option<Arc<str>>,
    /// Its body: one record, or JSON Lines packed by `--batch-bytes`.
    pub payload: Bytes,
}

impl Fetched {
    /// The publisher, from the `Ingest-Source` header.
    pub fn source(&self) -> Option<&[u8]> {
        self.source.as_deref().map(str::as_bytes)
    }
}

/// The committer of a collector: commits as usual, then announces the committed stream
/// sequence to the fetcher, which acks up to it. Also makes a commit due when the consumer's
/// limit on unacknowledged messages comes near, since nothing more arrives past it.
#[derive(Debug)]
pub struct Announce {
    inner: Box<dyn Commit>,
    committed: watch::Sender<u64>,
    unacked: Arc<AtomicU64>,
    limit: u64,
}

impl Commit for Announce {
    fn start_writing(&mut self) -> Result<(), Error> {
        self.inner.start_writing()
    }

    fn due(&mut self, written: u64) -> bool {
        self.inner.due(written) || self.unacked.load(Ordering::Relaxed) >= self.limit
    }

    fn commit(
        &mut self,
        input: Position,
        output_bytes: u64,
        rejects_bytes: u64,
        finished: bool,
    ) -> Result<(), Error> {
        self.inner.commit(input, output_bytes, rejects_bytes, finished)?;
        self.committed.send_replace(input.offset);
        Ok(())
    }
}

/// Messages fetched and not yet acknowledged, and the last committed stream sequence.
struct Acks {
    /// In stream order: acked once committed.
    waiting: VecDeque<(u64, Subject)>,
    /// Messages that came again while their first delivery was still on its way.
    again: Vec<(u64, Subject)>,
    committed: u64,
    unacked: Arc<AtomicU64>,
}

impl Acks {
    /// Acks everything up to the committed sequence `committed`.
    async fn commit(&mut self, committed: u64, collector: &Collector) {
        self.committed = self.committed.max(committed);
        while let Some((seq, _)) = self.waiting.front()
            && *seq <= self.committed
        {
            let (_, reply) = self.waiting.pop_front().expect("checked");
            collector.ack(reply).await;
            self.unacked.fetch_sub(1, Ordering::Relaxed);
        }
        let (done, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.again)
            .into_iter()
            .partition(|(seq, _)| *seq <= self.committed);
        self.again = later;
        for (_, reply) in done {
            collector.ack(reply).await;
        }
    }
}

/// What the fetcher needs besides the collector.
pub struct Settings {
    /// Most messages in one batch.
    pub batch_lines: usize,
}

/// Wraps the run's committer so that its commits reach the fetcher; returns the wrapper and
/// the fetcher's end of the announcements.
pub fn announce(inner: Box<dyn Commit>, collector: &Collector, window_lines: usize) -> (Announce, Watch) {
    let (tx, rx) = watch::channel(collector.start);
    let unacked = Arc::new(AtomicU64::new(0));
    // Room for a full window of fetched messages before the consumer's limit stops delivery.
    let limit = collector
        .max_ack_pending
        .saturating_sub(window_lines as u64)
        .max(collector.max_ack_pending / 2)
        .max(1);
    let announce = Announce {
        inner,
        committed: tx,
        unacked: unacked.clone(),
        limit,
    };
    (
        announce,
        Watch {
            committed: rx,
            unacked,
        },
    )
}

/// The fetcher's end of [`announce`].
pub struct Watch {
    committed: watch::Receiver<u64>,
    unacked: Arc<AtomicU64>,
}

/// How a batch being gathered ended.
enum Gathered {
    /// Full, or lingered long enough: send it and go on.
    Go,
    /// Drained, or idle past `--until-idle`: send it and stop.
    Stop,
}

/// Runs the fetcher until a drain, `--until-idle` or a cancel; then acks what the writer's last
/// commit covers.
///
/// # Errors
/// [`Error::Unavailable`] when the server is away past `--sink-timeout`, [`Error::Collecting`]
/// when another collector took the consumer, [`Error::Nats`] when the consumer is deleted.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    mut collector: Collector,
    lines_tx: async_channel::Sender<RawBatch>,
    window: Arc<Semaphore>,
    settings: Settings,
    watch: Watch,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let Watch {
        mut committed,
        unacked,
    } = watch;
    let mut acks = Acks {
        waiting: VecDeque::new(),
        again: Vec::new(),
        committed: collector.start,
        unacked,
    };
    let mut messages = collector.messages(settings.batch_lines).await?;
    let mut highest = collector.start;
    let mut last_arrival;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch_no = 0;
    let mut last_source = None;
    let idle = collector.until_idle();
    // When `--until-idle` runs out, unless a message comes first.
    let idle_end =
        |last: Instant| tokio::time::Instant::from_std(last + idle.unwrap_or(Duration::from_secs(3600)));
    loop {
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            () = drain.cancelled() => break,
            Ok(()) = committed.changed() => {
                let c = *committed.borrow_and_update();
                acks.commit(c, &collector).await;
                continue;
            }
            _ = tick.tick() => {
                collector.check().await?;
                continue;
            }
            permit = window.clone().acquire_owned() => permit.expect("the window is never closed"),
        };
        // Idle time is time with room for messages and none coming: not time held back by a
        // full window.
        last_arrival = Instant::now();
        let mut batch = Vec::new();
        let mut linger = None;
        let mut bytes = 0;
        let gathered = loop {
            if batch.len() >= settings.batch_lines || bytes >= BATCH_BYTES {
                break Gathered::Go;
            }
            let until = linger.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                () = drain.cancelled() => break Gathered::Stop,
                Ok(()) = committed.changed() => {
                    let c = *committed.borrow_and_update();
                    acks.commit(c, &collector).await;
                }
                _ = tick.tick() => {
                    // Time the server is away is not idle time.
                    if !collector.check().await? {
                        last_arrival = Instant::now();
                    }
                }
                () = tokio::time::sleep_until(until), if linger.is_some() => break Gathered::Go,
                () = tokio::time::sleep_until(idle_end(last_arrival)), if idle.is_some() && batch.is_empty() => break Gathered::Stop,
                next = messages.next() => match next {
                    None => messages = collector.messages(settings.batch_lines).await?,
                    Some(Err(e)) if e.kind() == MessagesErrorKind::ConsumerDeleted => {
                        return Err(Error::Nats {
                            target: collector.describe().to_owned(),
                            what: "the consumer was deleted while collecting".to_owned(),
                        });
                    }
                    Some(Err(e)) => {
                        collector.failed(e.to_string())?;
                        last_arrival = Instant::now();
                    }
                    Some(Ok(message)) => {
                        last_arrival = Instant::now();
                        let mut next = Some(message);
                        // Then whatever else has arrived, without a select per message.
                        while let Some(message) = next.take() {
                            match judge(message, &mut acks, &mut highest, &mut last_source, &metrics) {
                                Verdict::Take(fetched) => {
                                    bytes += fetched.payload.len() as u64;
                                    batch.push(fetched);
                                }
                                Verdict::AckNow(reply) => collector.ack(reply).await,
                                Verdict::Skip => {}
                            }
                            if batch.len() < settings.batch_lines
                                && bytes < BATCH_BYTES
                                && let Some(Some(Ok(message))) = messages.next().now_or_never()
                            {
                                next = Some(message);
                            }
                        }
                        if !batch.is_empty() {
                            linger.get_or_insert_with(|| tokio::time::Instant::now() + LINGER);
                        }
                    }
                },
            }
        };
        if !batch.is_empty() {
            // Lines are counted by the parsers, which split the messages anyway.
            add(&metrics.bytes_in, bytes);
            let end = batch.last().map_or(highest, |m| m.seq);
            let raw = RawBatch {
                seq: batch_no,
                first_line: 1,
                data: Bytes::new(),
                long_line: false,
                end_offset: end,
                permit,
                messages: batch,
            };
            batch_no += 1;
            if !send(&lines_tx, raw, &cancel, &metrics.reader).await {
                return Ok(());
            }
        }
        if matches!(gathered, Gathered::Stop) {
            break;
        }
    }
    // Stopped fetching: what was fetched flows out; ack as the writer commits it, until the
    // writer is done (it drops the committer, which closes the channel).
    drop(messages);
    drop(lines_tx);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            changed = committed.changed() => {
                let c = *committed.borrow_and_update();
                acks.commit(c, &collector).await;
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    collector.finish().await;
    Ok(())
}

/// What becomes of a fetched message.
enum Verdict {
    /// New: into the batch.
    Take(Fetched),
    /// Committed already (an ack was lost): ack it again, write nothing.
    AckNow(Subject),
    /// In flight already, or not a JetStream message: nothing now.
    Skip,
}

/// Sorts a fetched message by its stream sequence: new, committed, or on its way already.
fn judge(
    message: async_nats::jetstream::Message,
    acks: &mut Acks,
    highest: &mut u64,
    last_source: &mut Option<Arc<str>>,
    metrics: &Metrics,
) -> Verdict {
    let Ok((seq, delivered)) = message.info().map(|i| (i.stream_sequence, i.delivered)) else {
        return Verdict::Skip;
    };
    let message = message.message;
    let Some(reply) = message.reply else {
        return Verdict::Skip;
    };
    add(&metrics.source_fetched, 1);
    if delivered > 1 {
        add(&metrics.source_redelivered, 1);
    }
    if seq <= acks.committed {
        return Verdict::AckNow(reply);
    }
    if seq <= *highest {
        acks.again.push((seq, reply));
        return Verdict::Skip;
    }
    *highest = seq;
    acks.waiting.push_back((seq, reply));
    acks.unacked.fetch_add(1, Ordering::Relaxed);
    // One allocation per publisher, not per message: consecutive messages share it.
    let source = message
        .headers
        .as_ref()
        .and_then(|h| h.get(SOURCE))
        .map(|v| v.as_str());
    let source = match (source, last_source.as_ref()) {
        (Some(now), Some(last)) if **last == *now => Some(last.clone()),
        (Some(now), _) => {
            let now: Arc<str> = Arc::from(now);
            *last_source = Some(now.clone());
            Some(now)
        }
        (None, _) => None,
    };
    Verdict::Take(Fetched {
        seq,
        subject: message.subject,
        source,
        payload: message.payload,
    })
}
