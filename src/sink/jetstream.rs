//! The JetStream sink: every record published as a message on one subject, in input order, each
//! once; a batch settles when the server has acknowledged every message of it.
//!
//! Messages go out asynchronously, at most `window` unacknowledged. The first failure (a failed
//! or late ack, a lost connection) stops sending; once every message in flight has its answer,
//! the stream itself says what it holds: the messages of ours stored after the last one known to
//! be in order are read back, and publishing resumes with the first record the stream lacks.
//! Nothing relies on the server's duplicate window, though every message carries a
//! `Nats-Msg-Id` so that a copy that was still on its way is dropped by the server. Retries go
//! through a [`Breaker`]; once the server has been unavailable for `--sink-timeout`, the run
//! gives up with what was acknowledged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::{Future, IntoFuture};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_nats::Subject;
use async_nats::jetstream::consumer;
use async_nats::jetstream::context::{GetStreamByNameErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use bytes::Bytes;

use super::{Sink, Stop, Stored};
use crate::batch::ValidBatch;
use crate::breaker::{Breaker, State};
use crate::config::{NatsOutput, RetryPolicy};
use crate::error::Error;
use crate::metrics::{Metrics, add};
use crate::nats::message::Publisher;
use crate::nats::{self, Denied, Reconnect, Trouble};

/// JetStream's condition on a publish: the subject's last message is at this stream sequence
/// (0: the subject has none).
const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";

/// How often a rerun's guarded first message may find the subject moved on (other publishers
/// on it) before it is sent without the condition.
const GUARD_MISSES: u32 = 20;

/// A message unacknowledged for this long stops further sends until it is answered. An ack
/// normally takes a millisecond; a stream that lost its leader takes seconds to elect another,
/// and nothing sent meanwhile may overtake what the old leader lost.
const STALLED: Duration = Duration::from_millis(250);

type Ack =
    Pin<Box<dyn Future<Output = Result<PublishAck, async_nats::jetstream::context::PublishError>> + Send>>;

/// One message: a record, or consecutive records packed up to `--batch-bytes`.
#[derive(Debug)]
struct Message {
    /// Its publisher, an index into [`JetStreamSink::publishers`].
    publisher: u32,
    first_line: u64,
    last_line: u64,
    records: u64,
    /// Its body in the batch's rendering.
    body: Range<usize>,
}

/// A batch handed over, its messages, and how many of them (from the first) are acknowledged.
#[derive(Debug)]
struct InFlight {
    batch: ValidBatch,
    messages: Vec<Message>,
    acked: usize,
    /// Our last message known stored when the batch was handed over: every message of it is
    /// stored after this stream sequence (see [`Files::mark`]).
    floor: u64,
}

/// Who publishes what the sink is handed.
#[derive(Debug)]
pub enum Publishing {
    /// One input (`--from PATH`, standard input): one publisher.
    One(Publisher),
    /// Many logs: a publisher per file read.
    Files(Files),
}

/// Many logs (`--from GLOB`): each file read has a publisher of its own, and the checkpoint a
/// stream sequence its last commit covers, where a rerun reads back from.
#[derive(Debug, Default)]
pub struct Files {
    /// Per file read in this run (its log's index and its index in the log's set): its
    /// publisher, and how many of its lines the checkpoint holds.
    pub files: HashMap<(u32, u32), (Publisher, u64)>,
    /// Every message of ours stored at or before this stream sequence is covered by the
    /// checkpoint: a rerun reads back only what the stream holds after it. The sink's
    /// [`Sink::committed_len`] moves it, kept in the checkpoint as OUTPUT's length. `None`
    /// for a checkpoint made by this run: nothing of ours can be in the stream yet.
    pub mark: Option<u64>,
    /// The connection a round before left open, where this round's sink leaves its own.
    pub kept: Kept,
}

/// A connection a sink leaves for the next: many logs run a sink per round, and a follower's
/// rounds come several a second, each of which would otherwise connect (and authenticate) anew.
#[derive(Clone, Debug, Default)]
pub struct Kept(Arc<std::sync::Mutex<Option<Open>>>);

/// A connection kept open between rounds, with what the sink learnt of it.
#[derive(Debug)]
struct Open {
    js: async_nats::jetstream::Context,
    lost: Arc<AtomicBool>,
    denied: Denied,
    max_payload: usize,
}

impl Kept {
    /// The connection left here, unless it has dropped since.
    fn take(&self) -> Option<Open> {
        let open = self.0.lock().ok()?.take()?;
        (!open.lost.load(Ordering::Relaxed)).then_some(open)
    }

    /// Leaves `open` for the next sink.
    fn keep(&self, open: Open) {
        if let Ok(mut kept) = self.0.lock() {
            *kept = Some(open);
        }
    }
}

/// What the sink keeps of [`Files`].
#[derive(Debug)]
struct Marks {
    /// The mark the run started from: the checkpoint adds how far it moved to it.
    start: u64,
    /// The checkpoint is older than this run: what the stream holds after `from` is read back.
    read_back: bool,
    /// Where the read-back starts: `start`, or 0 for a stream made anew since.
    from: u64,
    /// Per publisher: lines of it the checkpoint holds.
    committed: Vec<u64>,
    /// Each of our publishers by its `Ingest-Source` name, for reading back.
    by_name: HashMap<String, u32>,
    /// The read-back from `start` found messages the checkpoint does not hold yet: the mark
    /// stays at `start` for this run, so that a rerun finds them again.
    held: bool,
}

/// A message published and not yet answered.
struct Pending {
    sent: Instant,
    ack: Ack,
}

/// A live connection and the stream that takes the subject.
struct Connection {
    js: async_nats::jetstream::Context,
    stream: stream::Stream,
    /// Set by the client's event callback when the connection drops.
    lost: Arc<AtomicBool>,
}

/// Publishes batches to a JetStream subject; see the module documentation.
pub struct JetStreamSink {
    target: NatsOutput,
    subject: Subject,
    /// Who publishes: one publisher for one input; many logs, one per file read.
    publishers: Vec<Publisher>,
    /// Many logs: the publisher of each (log, file) a batch can be of.
    publisher_of: HashMap<(u32, u32), u32>,
    /// Many logs: where reruns read back from, and how this run moves it.
    marks: Option<Marks>,
    connection: Option<Connection>,
    /// The server's largest message, headers included.
    max_payload: usize,
    /// Batches handed over and not settled, oldest first.
    batches: VecDeque<InFlight>,
    /// The next message to publish: an index into `batches`, and one into its messages.
    cursor: (usize, usize),
    /// Published and unanswered, in publishing order: always the messages just before `cursor`.
    pending: VecDeque<Pending>,
    /// Settled batches, each with its floor, until the writer takes them.
    settled: VecDeque<(ValidBatch, u64)>,
    /// The stream sequence of our last message known to be stored in order.
    last_seq: u64,
    /// Per publisher: lines up to this one are in the stream already (a rerun with
    /// `--checkpoint`).
    skip_through: Vec<u64>,
    /// A rerun's first message goes alone, and only if the subject's last message is still at
    /// this stream sequence (see [`JetStreamSink::send_guarded`]).
    guard: Option<u64>,
    /// Times the guard found the subject moved on since it was read.
    guard_misses: u32,
    /// Publishers and first lines of messages the read-back found stored: they are not sent
    /// again.
    found: HashSet<(u32, u64)>,
    /// Messages that had to be sent while a later one was already stored.
    reordered: u64,
    /// Messages still to publish that were published before (for the re-sends counter).
    resend: u64,
    breaker: Breaker,
    /// A permission error the server reported, which no retry fixes.
    denied: Denied,
    stored: Stored,
    metrics: Arc<Metrics>,
    /// Many logs: where the connection is left for the next round's sink.
    kept: Option<Kept>,
}

impl JetStreamSink {
    /// Connects (retrying per the breaker until `--sink-timeout`), finds the stream for the
    /// subject (or creates it with `--create-stream`), and reads back the subject's last
    /// message (many logs: every message after the checkpoint's mark): with `resume`, records
    /// of ours already there are not published again.
    ///
    /// # Errors
    /// [`Error::NoStream`], [`Error::NotPermitted`], [`Error::Unavailable`], [`Error::Nats`].
    pub async fn start(
        target: NatsOutput,
        publishing: Publishing,
        retry: RetryPolicy,
        resume: bool,
        metrics: Arc<Metrics>,
    ) -> Result<JetStreamSink, Error> {
        let (publishers, publisher_of, marks, kept) = match publishing {
            Publishing::One(one) => (vec![one], HashMap::new(), None, None),
            Publishing::Files(files) => {
                let (mut publishers, mut publisher_of, mut committed, mut by_name) =
                    (Vec::new(), HashMap::new(), Vec::new(), HashMap::new());
                for (file, (publisher, lines)) in files.files {
                    let index = publishers.len() as u32;
                    publisher_of.insert(file, index);
                    by_name.insert(publisher.name.clone(), index);
                    committed.push(lines);
                    publishers.push(publisher);
                }
                let marks = Marks {
                    start: files.mark.unwrap_or(0),
                    from: files.mark.unwrap_or(0),
                    read_back: files.mark.is_some(),
                    committed,
                    by_name,
                    held: false,
                };
                (publishers, publisher_of, Some(marks), Some(files.kept))
            }
        };
        let mut sink = JetStreamSink {
            subject: Subject::from(target.subject.as_str()),
            breaker: Breaker::new(target.server.breaker_failures, retry),
            target,
            skip_through: vec![0; publishers.len()],
            publishers,
            publisher_of,
            marks,
            connection: None,
            max_payload: 0,
            batches: VecDeque::new(),
            cursor: (0, 0),
            pending: VecDeque::new(),
            settled: VecDeque::new(),
            last_seq: 0,
            guard: None,
            guard_misses: 0,
            found: HashSet::new(),
            reordered: 0,
            resend: 0,
            denied: Denied::default(),
            stored: Stored::default(),
            metrics,
            kept,
        };
        sink.metrics.sink_active.store(true, Ordering::Relaxed);
        loop {
            let started = async {
                sink.ensure_connected().await?;
                sink.read_last(resume).await
            };
            match started.await {
                Ok(()) => break,
                Err(Trouble::Fatal(error)) => return Err(error),
                Err(Trouble::Transient(why)) => sink.wait_after_failure(&why).await?,
            }
        }
        if resume {
            sink.guard = Some(sink.last_seq);
        }
        sink.breaker_closed();
        Ok(sink)
    }

    /// Connects if there is no live connection; finds (or creates) the stream.
    async fn ensure_connected(&mut self) -> Result<(), Trouble> {
        if let Some(connection) = &self.connection
            && !connection.lost.load(Ordering::Relaxed)
        {
            return Ok(());
        }
        self.connection = None;
        let (js, lost) = match self.kept.as_ref().and_then(Kept::take) {
            Some(open) => {
                self.denied = open.denied;
                self.max_payload = open.max_payload;
                (open.js, open.lost)
            }
            None => {
                let lost = Arc::new(AtomicBool::new(false));
                let client = nats::connect(
                    &self.target.server,
                    Reconnect::Never,
                    lost.clone(),
                    self.denied.clone(),
                )
                .await?;
                self.max_payload = client.server_info().max_payload;
                let js = async_nats::jetstream::ContextBuilder::new()
                    .timeout(self.target.ack_timeout)
                    .max_ack_inflight(self.target.window)
                    .backpressure_on_inflight(true)
                    .build(client);
                (js, lost)
            }
        };
        // Found again on a kept connection too: the stream may have been made anew between.
        let stream = self.find_stream(&js).await?;
        self.connection = Some(Connection { js, stream, lost });
        Ok(())
    }

    /// The stream that takes the subject; created with `--create-stream`, else an error.
    async fn find_stream(&mut self, js: &async_nats::jetstream::Context) -> Result<stream::Stream, Trouble> {
        let name = match js.stream_by_subject(self.target.subject.as_str()).await {
            Ok(name) => name,
            Err(e) if e.kind() == GetStreamByNameErrorKind::NotFound => {
                let Some(name) = self.target.create_stream.clone() else {
                    return Err(Trouble::Fatal(Error::NoStream {
                        target: self.describe(),
                        subject: self.target.subject.clone(),
                    }));
                };
                let config = stream::Config {
                    name: name.clone(),
                    subjects: vec![self.target.subject.clone()],
                    storage: stream::StorageType::File,
                    num_replicas: self.target.replicas,
                    ..Default::default()
                };
                match js.create_stream(config).await {
                    Ok(_) => tracing::info!("created stream {name} for subject '{}'", self.target.subject),
                    Err(e) => {
                        return Err(Trouble::Fatal(Error::Nats {
                            target: self.describe(),
                            what: format!("cannot create stream {name}: {e}"),
                        }));
                    }
                }
                name
            }
            Err(e) => return Err(Trouble::Transient(format!("cannot look up the stream: {e}"))),
        };
        js.get_stream(&name)
            .await
            .map_err(|e| Trouble::Transient(format!("cannot read stream {name}: {e}")))
    }

    /// Reads the subject's last message: where read-backs start, and with `resume`, which
    /// lines of ours the stream holds already (many logs: read back from the mark on).
    async fn read_last(&mut self, resume: bool) -> Result<(), Trouble> {
        let stream = &self.connection.as_ref().expect("connected").stream;
        let last = match stream
            .get_last_raw_message_by_subject(self.target.subject.as_str())
            .await
        {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                self.forget_mark_past(0);
                return Ok(());
            }
            Err(e) => {
                return Err(Trouble::Transient(format!(
                    "cannot read the subject's last message: {e}"
                )));
            }
        };
        self.last_seq = last.sequence;
        if !resume {
            return Ok(());
        }
        if self.marks.is_some() {
            self.forget_mark_past(last.sequence);
            return self.read_ours(last.sequence).await;
        }
        if let Some((_, _, through)) = self.lines_of(&last.headers) {
            self.skip_through[0] = through;
            tracing::info!(
                "{}: lines up to {through} are in the stream already; continuing after them",
                self.target.server.shown
            );
        }
        Ok(())
    }

    /// Many logs: a mark past the subject's last message (`last`) is of a stream made anew;
    /// everything in it is read back (at every rerun, until its sequences pass the mark).
    fn forget_mark_past(&mut self, last: u64) {
        if let Some(marks) = self.marks.as_mut()
            && marks.from > last
        {
            tracing::warn!(
                "{}: the stream holds nothing past sequence {last}, though the checkpoint's last commit covers up to {}: made anew? reading back all of it",
                self.target.server.shown,
                marks.start
            );
            marks.from = 0;
        }
    }

    /// Many logs, a rerun: reads our messages after the mark up to stream sequence `through`;
    /// what each file's publisher has stored is not published again. Their headers only,
    /// through an ordered consumer: thousands of messages (other publishers' too) a second.
    async fn read_ours(&mut self, through: u64) -> Result<(), Trouble> {
        use futures_util::StreamExt;
        let marks = self.marks.as_ref().expect("many logs");
        if !marks.read_back || marks.from >= through {
            return Ok(());
        }
        let stream = &self.connection.as_ref().expect("connected").stream;
        let failed =
            |e: &dyn std::fmt::Display| Trouble::Transient(format!("cannot read the stream back: {e}"));
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.target.subject.clone(),
                headers_only: true,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: marks.from + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
        let mut read = 0u64;
        loop {
            let next = tokio::time::timeout(self.target.ack_timeout, messages.next());
            let message = match next.await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => return Err(failed(&e)),
                Ok(None) => return Err(failed(&"the consumer ended")),
                Err(_) => return Err(failed(&"no message in time")),
            };
            let info = message.info().map_err(|e| failed(&e))?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            read += 1;
            if let Some(headers) = &message.headers
                && let Some((publisher, _, last)) = self.lines_of(headers)
            {
                let skip = &mut self.skip_through[publisher as usize];
                *skip = (*skip).max(last);
            }
            if seq >= through || pending == 0 {
                break;
            }
        }
        let marks = self.marks.as_mut().expect("many logs");
        let ahead = self
            .skip_through
            .iter()
            .zip(&marks.committed)
            .filter(|(stored, committed)| stored > committed)
            .count();
        marks.held = ahead > 0;
        tracing::debug!(
            "{}: read back {read} messages after sequence {}: {ahead} files have lines in the stream past the checkpoint",
            self.target.server.shown,
            marks.from
        );
        Ok(())
    }

    /// The publisher of a message, its first and last line, when it is one of ours.
    fn lines_of(&self, headers: &async_nats::HeaderMap) -> Option<(u32, u64, u64)> {
        let publisher = match &self.marks {
            None => 0,
            Some(marks) => *marks.by_name.get(nats::message::publisher_of(Some(headers))?)?,
        };
        let (first, last) = self.publishers[publisher as usize].lines_of(headers)?;
        Some((publisher, first, last))
    }

    /// Many logs: the stream sequence every message of ours at or before which the checkpoint
    /// covers, were it committed now (see [`Files::mark`]).
    fn mark(&self) -> u64 {
        let Some(marks) = &self.marks else {
            return 0;
        };
        // Settled batches the writer has not taken yet are not covered either.
        let floors = self.settled.iter().map(|(_, floor)| *floor);
        let floors = floors.chain(self.batches.iter().map(|b| b.floor));
        mark(marks, floors, self.last_seq)
    }

    /// Splits a batch's rendering into messages, leaving out what the stream holds already.
    fn messages(&self, batch: &ValidBatch) -> Vec<Message> {
        let limit = self.max_record_bytes().unwrap_or(usize::MAX);
        let pack = self.target.batch_bytes.min(limit);
        let publisher = match batch.at() {
            Some(at) if self.marks.is_some() => *self
                .publisher_of
                .get(&(at.log, at.member))
                .expect("every file read has a publisher"),
            _ => 0,
        };
        let skip_through = self.skip_through[publisher as usize];
        let mut messages: Vec<Message> = Vec::new();
        let mut at = 0;
        for (line, rendered) in batch.rendered_records() {
            let range = at..at + rendered.len();
            at = range.end;
            if line <= skip_through {
                continue;
            }
            if pack > 0
                && let Some(last) = messages.last_mut()
                && last.body.end == range.start
                && range.end - last.body.start <= pack
            {
                last.last_line = line;
                last.records += 1;
                last.body.end = range.end;
                continue;
            }
            messages.push(Message {
                publisher,
                first_line: line,
                last_line: line,
                records: 1,
                body: range,
            });
        }
        messages
    }

    /// Publishes the message at the cursor.
    async fn publish_next(&mut self) -> Result<(), Trouble> {
        let connection = self.connection.as_ref().expect("connected");
        if connection.lost.load(Ordering::Relaxed) {
            return Err(Trouble::Transient("the connection was lost".to_owned()));
        }
        let (b, m) = self.cursor;
        let in_flight = &self.batches[b];
        let message = &in_flight.messages[m];
        let rendered = &in_flight.batch.rendered()[message.body.clone()];
        // One record: the JSON object (or text line) without its newline. Packed: JSON Lines.
        let body = if self.target.batch_bytes == 0 {
            &rendered[..rendered.len() - 1]
        } else {
            rendered
        };
        let mut headers =
            self.publishers[message.publisher as usize].headers(message.first_line, message.last_line);
        if let Some(seq) = self.guard {
            headers.insert(EXPECTED_LAST_SUBJECT_SEQUENCE, itoa::Buffer::new().format(seq));
        }
        let publish = PublishMessage::build()
            .payload(Bytes::copy_from_slice(body))
            .headers(headers);
        match connection.js.send_publish(self.subject.clone(), publish).await {
            Ok(ack) => {
                let (publisher, first_line) = (message.publisher, message.first_line);
                self.pending.push_back(Pending {
                    sent: Instant::now(),
                    ack: Box::pin(ack.into_future()),
                });
                self.advance();
                add(&self.metrics.sink_published, 1);
                if self.resend > 0 {
                    self.resend -= 1;
                    add(&self.metrics.sink_resent, 1);
                }
                // A later message of ours is stored already: this one lands after it.
                if self
                    .found
                    .iter()
                    .any(|&(p, line)| p == publisher && line > first_line)
                {
                    self.reordered += 1;
                }
                Ok(())
            }
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => Err(Trouble::Fatal(Error::Nats {
                target: self.describe(),
                what: format!("line {}: {e}", message.first_line),
            })),
            Err(e) => Err(Trouble::Transient(format!("cannot publish: {e}"))),
        }
    }

    fn advance(&mut self) {
        let (b, m) = self.cursor;
        self.cursor = if m + 1 < self.batches[b].messages.len() {
            (b, m + 1)
        } else {
            (b + 1, 0)
        };
        self.skip_empty();
    }

    /// Moves the cursor past batches without messages.
    fn skip_empty(&mut self) {
        while let Some(in_flight) = self.batches.get(self.cursor.0)
            && self.cursor.1 >= in_flight.messages.len()
        {
            self.cursor = (self.cursor.0 + 1, 0);
        }
    }

    /// Messages from `from` up to (not including) `to`.
    fn messages_between(&self, from: (usize, usize), to: (usize, usize)) -> u64 {
        let mut count = 0;
        for (b, in_flight) in self.batches.iter().enumerate().take(to.0 + 1).skip(from.0) {
            let start = if b == from.0 { from.1 } else { 0 };
            let end = if b == to.0 { to.1 } else { in_flight.messages.len() };
            count += end.saturating_sub(start) as u64;
        }
        count
    }

    fn more_to_send(&self) -> bool {
        self.cursor.0 < self.batches.len()
    }

    /// The oldest unacknowledged message is stored (at stream sequence `seq`): counts it and
    /// moves finished batches to `settled`.
    fn acked(&mut self, seq: u64, duplicate: bool) {
        let in_flight = self
            .batches
            .iter_mut()
            .find(|b| b.acked < b.messages.len())
            .expect("an ack answers a message");
        let message = &in_flight.messages[in_flight.acked];
        in_flight.acked += 1;
        self.stored.records += message.records;
        self.stored.bytes += message.body.len() as u64;
        self.last_seq = self.last_seq.max(seq);
        add(&self.metrics.sink_acked, 1);
        if duplicate {
            add(&self.metrics.sink_duplicates, 1);
        }
        self.settle_front();
    }

    /// Moves batches whose every message is acknowledged to `settled`, in order.
    fn settle_front(&mut self) {
        while self.batches.front().is_some_and(|b| b.acked == b.messages.len()) && self.cursor.0 > 0 {
            let done = self.batches.pop_front().expect("checked");
            self.cursor.0 -= 1;
            self.settled.push_back((done.batch, done.floor));
        }
    }

    /// Sends what there is to send, within the window, and waits for acknowledgements until the
    /// batches left unsettled hold at most `hold` slots of the pipeline's window.
    async fn pump(&mut self, hold: usize) -> Result<(), Stop> {
        loop {
            // Answers that are already back, without waiting.
            while let Some(front) = self.pending.front_mut() {
                let Some(answer) = poll_now(&mut front.ack) else {
                    break;
                };
                self.pending.pop_front();
                self.answer(answer).await?;
            }
            self.settle_front();
            let more = self.more_to_send();
            if !more && self.batches.iter().map(|b| b.batch.slots()).sum::<usize>() <= hold {
                return Ok(());
            }
            if more && self.guard.is_some() && self.pending.is_empty() {
                self.send_guarded().await?;
                continue;
            }
            let stalled = self.pending.front().is_some_and(|p| p.sent.elapsed() >= STALLED);
            // A message the read-back found is acknowledged without a send, in its turn.
            let found = self.skip_found();
            if found && self.pending.is_empty() {
                continue;
            }
            if found || !more || self.pending.len() >= self.target.window || stalled {
                let front = self
                    .pending
                    .pop_front()
                    .expect("waiting means something is pending");
                let answer = front.ack.await;
                self.answer(answer).await?;
                continue;
            }
            if let Err(trouble) = self.publish_next().await {
                self.recover(trouble).await?;
            }
        }
    }

    /// When the message at the cursor is one the read-back found stored: with nothing pending
    /// (so it is the oldest unacknowledged), acknowledges it without a send. True when the
    /// message at the cursor is a found one, handled or not.
    fn skip_found(&mut self) -> bool {
        let (b, m) = self.cursor;
        let Some(key) = self
            .batches
            .get(b)
            .and_then(|x| x.messages.get(m))
            .map(|x| (x.publisher, x.first_line))
        else {
            return false;
        };
        if !self.found.contains(&key) {
            return false;
        }
        if self.pending.is_empty() {
            self.found.remove(&key);
            self.resend = self.resend.saturating_sub(1);
            self.advance();
            self.acked(0, false);
        }
        true
    }

    /// Handles the answer to the oldest pending message.
    async fn answer(
        &mut self,
        answer: Result<PublishAck, async_nats::jetstream::context::PublishError>,
    ) -> Result<(), Stop> {
        match answer {
            Ok(ack) => {
                self.acked(ack.sequence, ack.duplicate);
                if self.breaker.success() {
                    self.breaker_closed();
                }
                Ok(())
            }
            Err(e) => {
                self.recover(Trouble::Transient(format!("no acknowledgement: {e}")))
                    .await
            }
        }
    }

    /// After a failure: waits out what is in flight, then, as the breaker allows, reads back
    /// what the stream holds and probes with the next message until one is acknowledged.
    async fn recover(&mut self, trouble: Trouble) -> Result<(), Stop> {
        let mut why = match trouble {
            Trouble::Fatal(error) => return Err(Stop::Fatal(error)),
            Trouble::Transient(why) => why,
        };
        loop {
            self.wait_after_failure(&why).await?;
            // Nothing of ours may be on its way while the stream is read back: every answer
            // is awaited (at once: each within the ack timeout), unless the connection is gone
            // and no answer can come.
            let pending = std::mem::take(&mut self.pending);
            let live = self
                .connection
                .as_ref()
                .is_some_and(|c| !c.lost.load(Ordering::Relaxed));
            if live {
                answers(pending).await;
            }
            let attempt = async {
                self.ensure_connected().await?;
                self.read_back().await?;
                self.probe().await
            };
            match attempt.await {
                Ok(()) => {
                    if self.breaker.success() {
                        self.breaker_closed();
                    }
                    return Ok(());
                }
                Err(Trouble::Fatal(error)) => return Err(Stop::Fatal(error)),
                Err(Trouble::Transient(again)) => why = again,
            }
        }
    }

    /// Counts a failure and sleeps as the breaker says; gives up once the server has been
    /// unavailable for `--sink-timeout`, or at once when it refused our credentials.
    async fn wait_after_failure(&mut self, why: &str) -> Result<(), Error> {
        self.denied.check(&self.target.server.shown)?;
        let now = Instant::now();
        let (delay, opened) = self
            .breaker
            .failure_within(now, self.target.server.timeout)
            .map_err(|after| Error::Unavailable {
                target: self.describe(),
                after,
                last_error: why.to_owned(),
            })?;
        if opened {
            add(&self.metrics.sink_breaker_openings, 1);
            self.metrics
                .sink_open_since
                .store(nats::unix_ms(), Ordering::Relaxed);
            tracing::warn!(
                "{}: {why}; {} failures in a row, the breaker is open: probing with one message at a time",
                self.target.server.shown,
                self.target.server.breaker_failures
            );
        } else if self.breaker.state() == State::Closed {
            tracing::warn!(
                "{}: {why}; retrying in {} ms",
                self.target.server.shown,
                delay.as_millis()
            );
        } else {
            tracing::debug!(
                "{}: {why}; unavailable for {} s; next probe in {} ms",
                self.target.server.shown,
                self.breaker.failing_for(now).as_secs(),
                delay.as_millis()
            );
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }

    fn breaker_closed(&self) {
        if self.metrics.sink_open_since.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!(
                "{}: available again; the breaker is closed",
                self.target.server.shown
            );
        }
    }

    /// Reads back our messages stored after the last one known to be in order, and puts the
    /// cursor at the first unacknowledged message: those found are not sent again.
    async fn read_back(&mut self) -> Result<(), Trouble> {
        let stream = &self.connection.as_ref().expect("connected").stream;
        let mut seq = self.last_seq + 1;
        let mut found = HashSet::new();
        // At most what can have been in flight, with room for other publishers' messages.
        for _ in 0..4 * self.target.window + 16 {
            let next = stream
                .raw_message_builder()
                .sequence(seq)
                .next_by_subject(self.target.subject.clone())
                .send();
            match next.await {
                Ok(message) => {
                    seq = message.sequence + 1;
                    if let Some((publisher, first, _)) = self.lines_of(&message.headers) {
                        found.insert((publisher, first));
                    }
                }
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(Trouble::Transient(format!("cannot read the stream back: {e}"))),
            }
        }
        self.last_seq = seq - 1;
        self.found = found;
        // Publishing starts again at the first unacknowledged message; what was published
        // after it is sent again (or found).
        let restart = self.first_unacked();
        self.resend = self.resend.max(self.messages_between(restart, self.cursor));
        self.cursor = restart;
        self.stored.retries += 1;
        Ok(())
    }

    /// Publishes the next message alone and waits for its acknowledgement.
    async fn probe(&mut self) -> Result<(), Trouble> {
        while self.skip_found() {}
        if !self.more_to_send() {
            return Ok(());
        }
        self.publish_next().await?;
        let pending = self.pending.pop_front().expect("just published");
        match pending.ack.await {
            Ok(ack) => {
                self.acked(ack.sequence, ack.duplicate);
                Ok(())
            }
            // The next attempt reads back first, and starts from the first unacknowledged.
            Err(e) => Err(Trouble::Transient(format!("no acknowledgement: {e}"))),
        }
    }

    /// Sends a rerun's first message alone, on condition that the subject's last message is
    /// still the one the run read at its start. A killed run's last messages may land after
    /// that read (its acknowledgements were on their way: slow with a server that syncs each
    /// write); packed from another line on, this run's would not be taken for them, and the
    /// records would be stored twice. When the subject moved on, it is read again and what is
    /// in the stream now is left out.
    async fn send_guarded(&mut self) -> Result<(), Stop> {
        if let Err(trouble) = self.publish_next().await {
            self.guard = None;
            return self.recover(trouble).await;
        }
        let pending = self.pending.pop_front().expect("just published");
        match pending.ack.await {
            Ok(ack) => {
                self.guard = None;
                self.acked(ack.sequence, ack.duplicate);
                Ok(())
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence && self.guard_misses < GUARD_MISSES => {
                self.guard_misses += 1;
                tracing::debug!(
                    "{}: the subject moved on since it was read; reading it again",
                    self.target.server.shown
                );
                if let Err(trouble) = self.read_last(true).await {
                    self.guard = None;
                    return self.recover(trouble).await;
                }
                self.guard = Some(self.last_seq);
                // Nothing is acknowledged yet: every batch is split again, past what is stored.
                let splits: Vec<Vec<Message>> =
                    self.batches.iter().map(|b| self.messages(&b.batch)).collect();
                for (in_flight, messages) in self.batches.iter_mut().zip(splits) {
                    self.stored.records += records(&in_flight.messages) - records(&messages);
                    in_flight.messages = messages;
                }
                self.cursor = (0, 0);
                self.skip_empty();
                Ok(())
            }
            Err(e) => {
                self.guard = None;
                self.recover(Trouble::Transient(format!("no acknowledgement: {e}")))
                    .await
            }
        }
    }

    /// Where the first unacknowledged message is (past the end when there is none).
    fn first_unacked(&self) -> (usize, usize) {
        self.batches
            .iter()
            .position(|b| b.acked < b.messages.len())
            .map_or((self.batches.len(), 0), |b| (b, self.batches[b].acked))
    }
}

/// The mark a commit leaves (see [`Files::mark`]): where this run started while the stream
/// holds messages of ours the checkpoint does not; else just before the first message of the
/// batches not committed (`floors`: our last stored message when each was handed over); else
/// our last stored message (`last_seq`).
fn mark(marks: &Marks, floors: impl Iterator<Item = u64>, last_seq: u64) -> u64 {
    if marks.held {
        return marks.start;
    }
    floors.min().unwrap_or(last_seq).max(marks.start)
}

/// Records the messages hold.
fn records(messages: &[Message]) -> u64 {
    messages.iter().map(|m| m.records).sum()
}

impl Sink for JetStreamSink {
    fn describe(&self) -> String {
        self.target.server.shown.clone()
    }

    async fn send(&mut self, batch: ValidBatch, hold: usize) -> Result<(), Stop> {
        let messages = self.messages(&batch);
        // Records a killed run stored before this rerun are in the output: counted as written,
        // as a file rerun counts the records it writes again after cutting them off.
        self.stored.records += batch.len() as u64 - records(&messages);
        self.batches.push_back(InFlight {
            batch,
            messages,
            acked: 0,
            floor: self.last_seq,
        });
        self.skip_empty();
        self.pump(hold).await
    }

    fn settled(&mut self) -> Option<ValidBatch> {
        self.settled.pop_front().map(|(batch, _)| batch)
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        self.pump(0).await?;
        if self.reordered > 0 {
            tracing::error!(
                "{}: {} messages had to be sent again after later ones were already stored: they are in the stream once, but out of order",
                self.target.server.shown,
                self.reordered
            );
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Stop> {
        // An acknowledged message is stored by the server (on a quorum, for a replicated stream).
        Ok(())
    }

    /// One input: 0. Many logs: how far the mark moved in this run (the checkpoint adds it
    /// to the mark it started from: OUTPUT's length is the mark for a subject).
    fn committed_len(&self) -> u64 {
        // Never below `start` (see `mark`).
        self.marks.as_ref().map_or(0, |marks| self.mark() - marks.start)
    }

    fn stored(&self) -> Stored {
        self.stored
    }

    fn max_record_bytes(&self) -> Option<usize> {
        // Every publisher's name is as long: HOST/ and 16 hex digits.
        let headers = self.publishers.first().map_or(0, Publisher::header_bytes);
        Some(self.max_payload.saturating_sub(headers))
    }

    async fn shutdown(&mut self) -> Result<(), Stop> {
        if let Some(connection) = self.connection.take() {
            let client = connection.js.client();
            // Acknowledged means stored; this only says goodbye, or (many logs) leaves the
            // connection to the next round.
            let _ = client.flush().await;
            if let Some(kept) = &self.kept {
                kept.keep(Open {
                    js: connection.js,
                    lost: connection.lost,
                    denied: self.denied.clone(),
                    max_payload: self.max_payload,
                });
            }
        }
        Ok(())
    }
}

/// Waits until every one of `pending` has its answer (or has timed out), whatever it is.
async fn answers(pending: VecDeque<Pending>) {
    let mut acks: Vec<Ack> = pending.into_iter().map(|p| p.ack).collect();
    std::future::poll_fn(|cx| {
        acks.retain_mut(|ack| ack.as_mut().poll(cx).is_pending());
        if acks.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// Polls `ack` once: its answer if it is already there.
fn poll_now(ack: &mut Ack) -> Option<Result<PublishAck, async_nats::jetstream::context::PublishError>> {
    let mut context = Context::from_waker(std::task::Waker::noop());
    match ack.as_mut().poll(&mut context) {
        Poll::Ready(answer) => Some(answer),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(start: u64, held: bool) -> Marks {
        Marks {
            start,
            from: start,
            read_back: true,
            committed: Vec::new(),
            by_name: HashMap::new(),
            held,
        }
    }

    #[test]
    fn a_commit_never_marks_a_stored_message_of_a_batch_it_does_not_cover() {
        // Our messages up to 90 are stored; the batch not committed yet was handed over when
        // 70 was our last: its first messages (71..=90) may be stored, and a rerun must find
        // them, so the mark stays at 70.
        assert_eq!(mark(&marks(10, false), [70, 85].into_iter(), 90), 70);
        // Everything handed over is committed: up to our last stored message.
        assert_eq!(mark(&marks(10, false), std::iter::empty(), 90), 90);
        // The read-back found messages of ours the checkpoint does not hold: they stay past
        // the mark until a commit covers them.
        assert_eq!(mark(&marks(10, true), [70].into_iter(), 90), 10);
        // Never behind where the run started.
        assert_eq!(mark(&marks(10, false), [4].into_iter(), 9), 10);
    }
}
