//! A JetStream stream as a source (a collector's fetcher stage): pulls messages from the
//! consumer ([`super::consumer`]) and hands them to the parser pool in batches, in stream order,
//! each batch ending at its last message's stream sequence.
//!
//! A message is acknowledged only once the checkpoint has committed it: the writer's commits
//! reach this stage through a [`watch`] channel ([`Announce`] wraps the committer), and a task
//! of the stage's own acks every message up to the committed stream sequence then, while
//! fetching goes on. A message at or before the commit that comes again (an ack lost with a
//! connection) is acked at once and not written again. On a drain or after `--until-idle`,
//! fetching stops, everything fetched flows out, and the stage acks what the last commit
//! covers before it ends.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::Subject;
use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::consumer::{Acker, Collector, Standing};
use super::{Feed, Source, Started};
use crate::batch::{CHUNK_BYTES, Fetched, RawBatch, Window};
use crate::channel::send;
use crate::checkpoint::{Commit, Position};
use crate::error::Error;
use crate::metrics::{Metrics, add};
use crate::nats::message::publisher_of;

/// How long a batch waits for more messages once it has one and nothing more has arrived: the
/// latency a trickle sees. Longer only adds waits: a busy stream fills batches without it.
const LINGER: Duration = Duration::from_millis(1);

/// Most message bytes in one batch, as the reader's chunks: packed messages hold hundreds of
/// records each, and a window of batches must stay within the memory bound.
const BATCH_BYTES: u64 = CHUNK_BYTES as u64;

/// The committer of a collector: commits as usual, then announces the committed stream
/// sequence to the acker, which acks up to it. Also makes a commit due when the consumer's
/// limit on unacknowledged messages comes near, since nothing more arrives past it.
#[derive(Debug)]
pub struct Announce {
    inner: Box<dyn Commit>,
    committed: watch::Sender<u64>,
    unacked: Arc<AtomicU64>,
    limit: u64,
}

impl Commit for Announce {
    fn start_writing(&mut self, output_written: u64) -> Result<(), Error> {
        self.inner.start_writing(output_written)
    }

    fn due(&mut self, written: u64) -> bool {
        self.inner.due(written) || self.unacked.load(Ordering::Relaxed) >= self.limit
    }

    fn due_at(&self) -> Option<std::time::Instant> {
        self.inner.due_at()
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

/// What the fetcher hands the acker, once per burst of messages: their stream sequences and
/// reply subjects.
#[derive(Default)]
struct ToAck {
    /// New messages, acked once a commit covers them.
    wait: Vec<(u64, Subject)>,
    /// Messages that came again while their first delivery was still on its way (or after it
    /// was committed): acked with it.
    again: Vec<(u64, Subject)>,
}

/// Messages fetched and not yet acknowledged, and the last committed stream sequence.
struct Acks {
    /// In stream order: acked once committed.
    waiting: VecDeque<(u64, Subject)>,
    /// Messages that came again while their first delivery was still on its way.
    again: Vec<(u64, Subject)>,
    committed: u64,
    unacked: Arc<AtomicU64>,
    acker: Acker,
}

impl Acks {
    /// Takes what the fetcher handed over; acks at once what a commit covers already (the
    /// announcement can overtake it).
    async fn take(&mut self, handed: ToAck) {
        self.waiting.extend(handed.wait);
        self.again.extend(handed.again);
        let committed = self.committed;
        self.commit(committed).await;
    }

    /// Acks everything up to the committed sequence `committed`.
    async fn commit(&mut self, committed: u64) {
        self.committed = self.committed.max(committed);
        while let Some((seq, _)) = self.waiting.front()
            && *seq <= self.committed
        {
            let (_, reply) = self.waiting.pop_front().expect("checked");
            self.acker.ack(reply).await;
            self.unacked.fetch_sub(1, Ordering::Relaxed);
        }
        let (done, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.again)
            .into_iter()
            .partition(|(seq, _)| *seq <= self.committed);
        self.again = later;
        for (_, reply) in done {
            self.acker.ack(reply).await;
        }
    }

    /// Acks as commits come, until the writer is done (it drops the committer, closing the
    /// announcements) and the fetcher has handed over everything.
    async fn run(
        mut self,
        mut messages: mpsc::UnboundedReceiver<ToAck>,
        mut committed: watch::Receiver<u64>,
    ) {
        let (mut announcing, mut fetching) = (true, true);
        while announcing || fetching {
            tokio::select! {
                changed = committed.changed(), if announcing => {
                    announcing = changed.is_ok();
                    let c = *committed.borrow_and_update();
                    self.commit(c).await;
                }
                message = messages.recv(), if fetching => match message {
                    Some(message) => self.take(message).await,
                    None => fetching = false,
                },
            }
        }
    }
}

/// How the collector's stages batch and commit.
pub struct Settings {
    /// Most messages in one batch.
    pub batch_lines: usize,
    /// Records in flight (`--capacity`): room a commit must leave under the consumer's limit
    /// on unacknowledged messages.
    pub window_lines: usize,
}

impl Source for Collector {
    fn start(self: Box<Self>, feed: Feed, committer: Option<Box<dyn Commit>>) -> Started {
        let inner = committer.expect("a collector always has a checkpoint");
        let settings = Settings {
            batch_lines: feed.batch_lines,
            window_lines: feed.capacity,
        };
        let (announce, fetcher, acker) = start(
            *self,
            inner,
            settings,
            feed.lines_tx,
            feed.window,
            feed.metrics,
            feed.drain,
            feed.cancel,
        );
        Started {
            tasks: vec![("fetcher", Box::pin(fetcher)), ("acker", Box::pin(acker))],
            committer: Some(Box::new(announce)),
        }
    }
}

/// The collector's stages: the fetcher (pulls and batches) and the acker (acks what commits
/// cover), and the committer that announces commits to the acker, wrapping `inner`.
#[allow(clippy::too_many_arguments)]
fn start(
    collector: Collector,
    inner: Box<dyn Commit>,
    settings: Settings,
    lines_tx: async_channel::Sender<RawBatch>,
    window: Window,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
    cancel: CancellationToken,
) -> (
    Announce,
    impl Future<Output = Result<(), Error>> + use<>,
    impl Future<Output = Result<(), Error>> + use<>,
) {
    let (committed_tx, committed) = watch::channel(collector.start);
    let unacked = Arc::new(AtomicU64::new(0));
    // Room for a full window of fetched messages before the consumer's limit stops delivery.
    let max = collector.max_ack_pending;
    let limit = max
        .saturating_sub(settings.window_lines as u64)
        .max(max / 2)
        .max(1);
    let announce = Announce {
        inner,
        committed: committed_tx,
        unacked: unacked.clone(),
        limit,
    };
    let (to_ack, handed) = mpsc::unbounded_channel();
    let (done_tx, done) = oneshot::channel();
    let acks = Acks {
        waiting: VecDeque::new(),
        again: Vec::new(),
        committed: collector.start,
        unacked: unacked.clone(),
        acker: collector.acker(),
    };
    let fetching = Fetching {
        to_ack,
        handing: ToAck::default(),
        unacked,
        highest: collector.start,
        last_delivery: collector.delivered,
        expect: None,
        last_source: None,
        metrics,
    };
    let fetcher = run(
        collector,
        fetching,
        settings,
        lines_tx,
        window,
        done_tx,
        drain,
        cancel.clone(),
    );
    let acker = async move {
        tokio::select! {
            biased;
            () = cancel.cancelled() => {}
            () = acks.run(handed, committed) => {
                // The fetcher hands the collector over when it stopped without a cancel.
                if let Ok(collector) = done.await {
                    collector.finish().await;
                }
            }
        }
        Ok(())
    };
    (announce, fetcher, acker)
}

/// How a batch being gathered ended.
enum Gathered {
    /// Full, or lingered long enough: send it and go on.
    Go,
    /// Drained, or idle past `--until-idle`: send it and stop.
    Stop,
}

/// What the fetcher keeps while it sorts messages (see [`judge`]).
struct Fetching {
    to_ack: mpsc::UnboundedSender<ToAck>,
    /// The current burst's messages, for the acker.
    handing: ToAck,
    /// Messages handed to the acker and not yet acked.
    unacked: Arc<AtomicU64>,
    /// The highest stream sequence fetched (or committed before this run).
    highest: u64,
    /// The consumer's number for the last delivery: at the start, and after each reposition,
    /// the consumer's own, so that deliveries that went elsewhere are a gap too.
    last_delivery: u64,
    /// After a reposition, the stream sequence the next new message must have: the count of
    /// deliveries the reset reports may already include messages another pull took meanwhile.
    expect: Option<u64>,
    /// The last publisher seen: consecutive messages share one allocation of it.
    last_source: Option<Arc<str>>,
    metrics: Arc<Metrics>,
}

impl Fetching {
    /// Puts the consumer right after the last message taken and pulls afresh, after a gap in
    /// the deliveries.
    ///
    /// The old pull goes first: while its subscription lives, the server may serve its request
    /// with the messages the reset puts back, which no one reads then.
    async fn deliver_again(
        &mut self,
        collector: &mut Collector,
        old: pull::Stream,
        batch: usize,
    ) -> Result<pull::Stream, Error> {
        drop(old);
        tracing::warn!(
            "{}: deliveries went missing after stream sequence {}; asking for them again",
            collector.describe(),
            self.highest
        );
        add(&self.metrics.source_gaps, 1);
        self.last_delivery = collector.reposition(self.highest).await?;
        self.expect = Some(self.highest + 1);
        collector.messages(batch).await
    }

    /// Hands the burst's messages to the acker: one send per burst, not per message.
    fn hand_over(&mut self) {
        let handing = std::mem::take(&mut self.handing);
        if !(handing.wait.is_empty() && handing.again.is_empty()) {
            // The acker outlives the fetcher: a send fails only on a cancel.
            let _ = self.to_ack.send(handing);
        }
    }
}

/// Runs the fetcher until a drain, `--until-idle` or a cancel; then hands the collector to the
/// acker, which finishes it once the last commit is acked.
///
/// # Errors
/// [`Error::Unavailable`] when the server is away past `--sink-timeout`, [`Error::Collecting`]
/// when another collector took the consumer, [`Error::Nats`] when the consumer is deleted.
#[allow(clippy::too_many_arguments)]
async fn run(
    mut collector: Collector,
    mut fetching: Fetching,
    settings: Settings,
    lines_tx: async_channel::Sender<RawBatch>,
    window: Window,
    done: oneshot::Sender<Collector>,
    drain: CancellationToken,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let mut messages = collector.messages(settings.batch_lines).await?;
    let metrics = fetching.metrics.clone();
    let mut last_arrival;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch_no = 0;
    let idle = collector.until_idle();
    // When `--until-idle` runs out, unless a message comes first.
    let idle_end =
        |last: Instant| tokio::time::Instant::from_std(last + idle.unwrap_or(Duration::from_secs(3600)));
    loop {
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            () = drain.cancelled() => break,
            _ = tick.tick() => {
                collector.check().await?;
                continue;
            }
            // Taken before the messages come: a batch of at most `BATCH_BYTES`.
            permit = window.take(BATCH_BYTES as usize) => permit,
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
                _ = tick.tick() => {
                    // Time the server is away is not idle time.
                    if !collector.check().await? {
                        last_arrival = Instant::now();
                    }
                }
                () = tokio::time::sleep_until(until), if linger.is_some() => break Gathered::Go,
                () = tokio::time::sleep_until(idle_end(last_arrival)), if idle.is_some() && batch.is_empty() => {
                    messages = match collector.standing(fetching.highest).await {
                        Standing::CaughtUp => break Gathered::Stop,
                        Standing::Lost => fetching.deliver_again(&mut collector, messages, settings.batch_lines).await?,
                        // Messages wait and none come: the pull was lost with a consumer
                        // leader that moved (the heartbeats would say so later). Pull afresh.
                        Standing::Behind => {
                            drop(messages);
                            collector.messages(settings.batch_lines).await?
                        }
                    };
                    last_arrival = Instant::now();
                }
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
                            match judge(message, &mut fetching) {
                                Judged::Take(fetched) => {
                                    bytes += fetched.payload.len() as u64;
                                    batch.push(fetched);
                                }
                                Judged::Nothing => {}
                                Judged::Gap => {
                                    // What came after the gap is dropped with the pull.
                                    messages = fetching.deliver_again(&mut collector, messages, settings.batch_lines).await?;
                                    break;
                                }
                                Judged::Ahead { message, expected, seq, delivery } => {
                                    if collector.first_from(expected).await?.is_some_and(|first| first < seq) {
                                        tracing::debug!(
                                            "stream sequence {seq} came first after asking from {expected}"
                                        );
                                        messages = fetching.deliver_again(&mut collector, messages, settings.batch_lines).await?;
                                        break;
                                    }
                                    // Nothing before it is left in the stream: it is the next.
                                    fetching.expect = None;
                                    fetching.last_delivery = delivery.saturating_sub(1);
                                    next = Some(*message);
                                    continue;
                                }
                            }
                            if batch.len() < settings.batch_lines
                                && bytes < BATCH_BYTES
                                && let Some(Some(Ok(message))) = messages.next().now_or_never()
                            {
                                next = Some(message);
                            }
                        }
                        fetching.hand_over();
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
            let end = batch.last().map_or(fetching.highest, |m| m.seq);
            let raw = RawBatch {
                at: None,
                seq: batch_no,
                first_line: 1,
                data: Bytes::new(),
                long_line: false,
                tail_too_long: false,
                head_continues: None,
                tail_continues: None,
                head_skipping: 0,
                tail_skipping: 0,
                cut_open: false,
                end_offset: end,
                end_context: None,
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
    // Stopped fetching: what was fetched flows out, and the acker acks it as the writer
    // commits it; then it finishes the collector.
    drop(messages);
    drop(lines_tx);
    let _ = done.send(collector);
    Ok(())
}

/// What [`judge`] makes of a message.
enum Judged {
    /// New: into the batch.
    Take(Fetched),
    /// On its way or committed already (only acked: never written twice), or not a
    /// JetStream message.
    Nothing,
    /// Deliveries before it went missing: not taken; the consumer must deliver again from the
    /// first message not taken.
    Gap,
    /// After a reposition, a message past the first one not taken (`expected`): a gap, unless
    /// the stream holds nothing before it any more.
    Ahead {
        message: Box<async_nats::jetstream::Message>,
        expected: u64,
        seq: u64,
        delivery: u64,
    },
}

/// Where a delivery stands in the consumer's order (see [`place`]).
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// Next, or one delivered again: judged by its stream sequence.
    InTurn,
    /// Deliveries were skipped: some never arrived.
    Gap,
    /// After a reposition, a later message than the first not taken (`expected`): the ones
    /// before it may have gone to a stale pull, which only the stream can tell.
    Ahead {
        /// The stream sequence the next new message must have.
        expected: u64,
    },
}

/// Places delivery number `delivery` of stream sequence `seq`, after `last_delivery` and, after
/// a reposition, with `expect` the stream sequence the next new message must have; moves both
/// on for a delivery in turn.
fn place(expect: &mut Option<u64>, last_delivery: &mut u64, seq: u64, delivery: u64) -> Place {
    if let Some(expected) = *expect {
        if seq > expected {
            return Place::Ahead { expected };
        }
        // Ours in order from here: the numbering is trusted again from this delivery on.
        if seq == expected {
            *expect = None;
        }
    } else if delivery > *last_delivery + 1 {
        // Deliveries are numbered one by one: a jump means some never arrived (lost with a
        // server or a consumer leader). Taking this one would leave them behind for good.
        tracing::debug!("delivery {delivery} (stream sequence {seq}) came after delivery {last_delivery}");
        return Place::Gap;
    }
    *last_delivery = delivery;
    Place::InTurn
}

/// Sorts a fetched message by its stream sequence: new, or on its way or committed already;
/// or after a gap in the deliveries.
fn judge(message: async_nats::jetstream::Message, fetching: &mut Fetching) -> Judged {
    let Ok((seq, delivery, delivered)) = message
        .info()
        .map(|i| (i.stream_sequence, i.consumer_sequence, i.delivered))
    else {
        return Judged::Nothing;
    };
    match place(&mut fetching.expect, &mut fetching.last_delivery, seq, delivery) {
        Place::InTurn => {}
        Place::Gap => return Judged::Gap,
        Place::Ahead { expected } => {
            return Judged::Ahead {
                message: Box::new(message),
                expected,
                seq,
                delivery,
            };
        }
    }
    let message = message.message;
    let Some(reply) = message.reply else {
        return Judged::Nothing;
    };
    add(&fetching.metrics.source_fetched, 1);
    if delivered > 1 {
        add(&fetching.metrics.source_redelivered, 1);
    }
    if seq <= fetching.highest {
        fetching.handing.again.push((seq, reply));
        return Judged::Nothing;
    }
    fetching.highest = seq;
    fetching.unacked.fetch_add(1, Ordering::Relaxed);
    fetching.handing.wait.push((seq, reply));
    let last_source = &mut fetching.last_source;
    // One allocation per publisher, not per message: consecutive messages share it.
    let source = publisher_of(message.headers.as_ref());
    let source = match (source, last_source.as_ref()) {
        (Some(now), Some(last)) if **last == *now => Some(last.clone()),
        (Some(now), _) => {
            let now: Arc<str> = Arc::from(now);
            *last_source = Some(now.clone());
            Some(now)
        }
        (None, _) => None,
    };
    Judged::Take(Fetched {
        seq,
        subject: message.subject,
        source,
        payload: message.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::{Place, place};

    #[test]
    fn after_a_reposition_a_later_message_than_the_first_not_taken_is_not_taken_as_next() {
        // The collector took up to stream sequence 9 and repositioned the consumer there. The
        // reset's count of deliveries (5) already counts two messages (10 and 11) a stale pull
        // took right after it: the next delivery, number 6, is 12, and looks in turn.
        let (mut expect, mut last_delivery) = (Some(10), 5);
        assert_eq!(
            place(&mut expect, &mut last_delivery, 12, 6),
            Place::Ahead { expected: 10 }
        );
        assert_eq!((expect, last_delivery), (Some(10), 5), "nothing moved on");
        // The first not taken comes: in turn, and the numbering is trusted again.
        assert_eq!(place(&mut expect, &mut last_delivery, 10, 6), Place::InTurn);
        assert_eq!((expect, last_delivery), (None, 6));
        assert_eq!(place(&mut expect, &mut last_delivery, 11, 7), Place::InTurn);
        // Without a reposition, a jump in the deliveries is a gap.
        assert_eq!(place(&mut expect, &mut last_delivery, 13, 9), Place::Gap);
        // One delivered again (an earlier stream sequence) is in turn: judged by its sequence.
        assert_eq!(place(&mut expect, &mut last_delivery, 11, 8), Place::InTurn);
    }
}
