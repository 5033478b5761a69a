//! The collector's side of JetStream: the connection, the durable pull consumer and its lease.
//!
//! [`Collector::start`] connects (retrying through a [`Breaker`] until `--sink-timeout`), takes
//! the consumer's [`Lease`], creates the consumer when it is missing, and puts its delivery
//! position right after the last message the checkpoint committed: messages a killed run
//! fetched but never committed come again, in stream order, before anything newer. The
//! fetcher stage ([`super::jetstream`]) then pulls from it and acknowledges only
//! what the checkpoint has committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::Subject;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::GetStreamErrorKind;
use bytes::Bytes;

use super::lease::Lease;
use crate::breaker::{Breaker, State};
use crate::config::{NatsInput, RetryPolicy};
use crate::error::Error;
use crate::metrics::{Metrics, add};
use crate::nats::{self, Denied, Reconnect, Trouble};

/// Unacknowledged messages a consumer made by ingest allows: room for the in-flight window and
/// for what waits for the next commit.
const MAX_ACK_PENDING: i64 = 131_072;

/// Most bytes one pull asks for.
const PULL_BYTES: usize = 8 << 20;

/// How long the server waits for an ack before delivering a message again. Acks go out at
/// commits, which come every few seconds at most; a redelivery only costs a skipped message.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// A connected collector holding its consumer's lease.
pub struct Collector {
    input: NatsInput,
    client: async_nats::Client,
    consumer: PullConsumer,
    lease: Lease,
    /// The stream sequence of the last message committed before this run: where it starts.
    pub start: u64,
    /// The consumer's number for its last delivery when this run began: the run's first
    /// delivery must be the next, or deliveries went elsewhere (a killed run's pull request,
    /// still waiting on the server, takes messages into the void).
    pub delivered: u64,
    /// The consumer's limit on unacknowledged messages.
    pub max_ack_pending: u64,
    /// Set by the client while its connection is down.
    lost: Arc<AtomicBool>,
    denied: Denied,
    breaker: Breaker,
    metrics: Arc<Metrics>,
}

impl Collector {
    /// Connects, takes the lease, finds or creates the consumer and positions it after
    /// `committed` (the checkpoint's last stream sequence; `None` for a new checkpoint, which
    /// continues where the consumer's acknowledgements stand).
    ///
    /// # Errors
    /// [`Error::NoSuchStream`], [`Error::Collecting`], [`Error::NotPermitted`],
    /// [`Error::Unavailable`], [`Error::Nats`].
    pub async fn start(
        input: NatsInput,
        committed: Option<u64>,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Result<Collector, Error> {
        metrics.source_active.store(true, Ordering::Relaxed);
        let mut breaker = Breaker::new(input.server.breaker_failures, retry);
        let denied = Denied::default();
        loop {
            let lost = Arc::new(AtomicBool::new(false));
            let why = match open(&input, committed, lost.clone(), denied.clone()).await {
                Ok(opened) => {
                    return Ok(Collector {
                        input,
                        client: opened.client,
                        consumer: opened.consumer,
                        lease: opened.lease,
                        start: opened.start,
                        delivered: opened.delivered,
                        max_ack_pending: opened.max_ack_pending,
                        lost,
                        denied,
                        breaker,
                        metrics,
                    });
                }
                Err(Trouble::Fatal(error)) => return Err(error),
                Err(Trouble::Transient(why)) => why,
            };
            denied.check(&input.server.shown)?;
            let (delay, _) = breaker
                .failure_within(Instant::now(), input.server.timeout)
                .map_err(|after| Error::Unavailable {
                    target: input.server.shown.clone(),
                    after,
                    last_error: why.clone(),
                })?;
            tracing::warn!(
                "{}: {why}; retrying in {} ms",
                input.server.shown,
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// The address, password redacted.
    pub fn describe(&self) -> &str {
        &self.input.server.shown
    }

    /// `--until-idle`, if given.
    pub fn until_idle(&self) -> Option<Duration> {
        self.input.until_idle
    }

    /// Starts pulling: batches of up to `batch` messages, with heartbeats so that a server
    /// gone quiet is noticed.
    ///
    /// # Errors
    /// [`Error::Nats`] when the pull cannot start.
    pub async fn messages(&self, batch: usize) -> Result<pull::Stream, Error> {
        self.consumer
            .stream()
            .max_messages_per_batch(batch.max(1))
            // Packed messages are up to a MiB each: a pull for thousands of them would outgrow
            // what the server lets a client have pending, and it would drop the connection.
            .max_bytes_per_batch(PULL_BYTES)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| {
                self.error(format!(
                    "cannot pull from consumer '{}': {e}",
                    self.input.consumer
                ))
            })
    }

    /// Where the consumer stands against `taken`, the last stream sequence this run took:
    /// asked when no message came for `--until-idle`.
    pub async fn standing(&mut self, taken: u64) -> Standing {
        match tokio::time::timeout(Duration::from_secs(2), self.consumer.info()).await {
            Ok(Ok(info)) if info.delivered.stream_sequence > taken => Standing::Lost,
            Ok(Ok(info)) if info.num_pending == 0 => Standing::CaughtUp,
            _ => Standing::Behind,
        }
    }

    /// Puts the consumer's delivery right after stream sequence `taken`: what it delivered
    /// since and never arrived comes again, in order. Returns the consumer's number for its last
    /// delivery, which the next one follows.
    ///
    /// # Errors
    /// [`Error::Nats`] when the server refuses.
    pub async fn reposition(&mut self, taken: u64) -> Result<u64, Error> {
        let reset = self.consumer.reset(Some(taken + 1)).await;
        reset.map(|r| r.info.delivered.consumer_sequence).map_err(|e| {
            self.error(format!(
                "cannot put consumer '{}' back to stream sequence {}: {e}",
                self.input.consumer,
                taken + 1
            ))
        })
    }

    /// The stream sequence of the first message at or after `seq` this consumer delivers (on
    /// its `--filter`); `None` when there is none.
    ///
    /// # Errors
    /// [`Error::Nats`] when the server cannot be asked.
    pub async fn first_from(&self, seq: u64) -> Result<Option<u64>, Error> {
        let js = async_nats::jetstream::new(self.client.clone());
        let asked = async {
            let stream = js
                .get_stream(&self.input.stream)
                .await
                .map_err(|e| e.to_string())?;
            let subject = self.input.filter.clone().unwrap_or_else(|| ">".to_owned());
            match stream
                .raw_message_builder()
                .sequence(seq)
                .next_by_subject(subject)
                .send()
                .await
            {
                Ok(message) => Ok(Some(message.sequence)),
                Err(e)
                    if e.kind() == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
                {
                    Ok(None)
                }
                Err(e) => Err(e.to_string()),
            }
        };
        asked
            .await
            .map_err(|e| self.error(format!("cannot look up stream sequence {seq}: {e}")))
    }

    /// What acknowledges messages, for a task of its own.
    pub fn acker(&self) -> Acker {
        Acker {
            client: self.client.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Checks the connection and the lease; call about once a second. Counts an outage
    /// through the breaker and gives up after `--sink-timeout`. True while the server is
    /// there.
    ///
    /// # Errors
    /// [`Error::Unavailable`] past the timeout; [`Error::Collecting`] when the lease was
    /// taken; [`Error::NotPermitted`].
    pub async fn check(&mut self) -> Result<bool, Error> {
        self.denied.check(&self.input.server.shown)?;
        let trouble = if self.lost.load(Ordering::Relaxed) {
            Some("the connection was lost".to_owned())
        } else if self.lease.due() {
            match self.lease.renew().await {
                Ok(()) => None,
                Err(Trouble::Fatal(error)) => return Err(error),
                Err(Trouble::Transient(why)) => Some(why),
            }
        } else {
            None
        };
        match trouble {
            None => {
                if self.breaker.success() {
                    self.metrics.source_open_since.store(0, Ordering::Relaxed);
                    tracing::info!("{}: available again", self.input.server.shown);
                }
                Ok(true)
            }
            Some(why) => self.failed(why).map(|()| false),
        }
    }

    /// Counts a failure to fetch (a missed heartbeat, a failed pull).
    ///
    /// # Errors
    /// [`Error::Unavailable`] once the server has been unavailable for `--sink-timeout`.
    pub fn failed(&mut self, why: String) -> Result<(), Error> {
        let (_, opened) = self
            .breaker
            .failure_within(Instant::now(), self.input.server.timeout)
            .map_err(|after| Error::Unavailable {
                target: self.input.server.shown.clone(),
                after,
                last_error: why.clone(),
            })?;
        if opened {
            add(&self.metrics.source_breaker_openings, 1);
            self.metrics
                .source_open_since
                .store(crate::nats::unix_ms(), Ordering::Relaxed);
            tracing::warn!(
                "{}: {why}; waiting for the server (giving up after {} s)",
                self.input.server.shown,
                self.input.server.timeout.as_secs()
            );
        } else if self.breaker.state() == State::Closed {
            tracing::debug!("{}: {why}", self.input.server.shown);
        }
        Ok(())
    }

    /// Flushes the acks, reads how many messages the consumer still has, and releases the
    /// lease.
    pub async fn finish(mut self) {
        if tokio::time::timeout(Duration::from_secs(5), self.client.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                "{}: the last acks may not have arrived (they come again, and are skipped)",
                self.describe()
            );
        }
        // The server applies acks in the background: until it has, the consumer still counts
        // those messages as pending. Asked again for a moment, not longer: messages fetched and
        // never written (a drain) stay pending for good, and come again next run.
        for _ in 0..25 {
            let Ok(Ok(info)) = tokio::time::timeout(Duration::from_secs(5), self.consumer.info()).await
            else {
                break;
            };
            let pending = info.num_pending + info.num_ack_pending as u64;
            self.metrics.source_pending.store(pending, Ordering::Relaxed);
            if info.num_ack_pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.lease.release().await;
    }

    fn error(&self, what: String) -> Error {
        Error::Nats {
            target: self.input.server.shown.clone(),
            what,
        }
    }
}

/// Where a consumer stands when no message comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Nothing left to deliver: idle indeed.
    CaughtUp,
    /// Messages wait, or the server cannot say (a consumer leader being elected).
    Behind,
    /// It delivered past what arrived: those deliveries were lost.
    Lost,
}

/// Acknowledges messages by their reply subjects.
pub struct Acker {
    client: async_nats::Client,
    metrics: Arc<Metrics>,
}

impl Acker {
    /// Acknowledges one message.
    pub async fn ack(&self, reply: Subject) {
        // An ack lost on the way only means a redelivery, which the fetcher skips and acks.
        if self
            .client
            .publish(reply, Bytes::from_static(b"+ACK"))
            .await
            .is_ok()
        {
            add(&self.metrics.source_acked, 1);
        }
    }
}

/// What one attempt at [`Collector::start`] sets up.
struct Opened {
    client: async_nats::Client,
    consumer: PullConsumer,
    lease: Lease,
    start: u64,
    delivered: u64,
    max_ack_pending: u64,
}

/// One attempt at [`Collector::start`].
async fn open(
    input: &NatsInput,
    committed: Option<u64>,
    lost: Arc<AtomicBool>,
    denied: Denied,
) -> Result<Opened, Trouble> {
    let fatal = |what: String| {
        Trouble::Fatal(Error::Nats {
            target: input.server.shown.clone(),
            what,
        })
    };
    let client = nats::connect(&input.server, Reconnect::Always, lost, denied).await?;
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client.clone());
    let mut stream = match js.get_stream(&input.stream).await {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Err(Trouble::Fatal(Error::NoSuchStream {
                target: input.server.shown.clone(),
                stream: input.stream.clone(),
            }));
        }
        Err(e) => {
            return Err(Trouble::Transient(format!(
                "cannot read stream {}: {e}",
                input.stream
            )));
        }
    };
    let replicas = stream
        .info()
        .await
        .map_err(|e| Trouble::Transient(format!("cannot read stream {}: {e}", input.stream)))?
        .config
        .num_replicas;
    let lease = Lease::acquire(&js, &input.stream, &input.consumer, replicas).await?;
    let config = pull::Config {
        durable_name: Some(input.consumer.clone()),
        description: Some("ingest --from: a collector's consumer".to_owned()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        filter_subject: input.filter.clone().unwrap_or_default(),
        max_ack_pending: MAX_ACK_PENDING,
        ..Default::default()
    };
    let mut consumer: PullConsumer = stream
        .get_or_create_consumer(&input.consumer, config)
        .await
        .map_err(|e| Trouble::Transient(format!("cannot create consumer '{}': {e}", input.consumer)))?;
    let info = consumer
        .info()
        .await
        .map_err(|e| Trouble::Transient(format!("cannot read consumer '{}': {e}", input.consumer)))?
        .clone();
    let wanted = input.filter.clone().unwrap_or_default();
    if info.config.filter_subject != wanted {
        let shown = |f: &str| {
            if f.is_empty() {
                "no subject filter".to_owned()
            } else {
                format!("filter '{f}'")
            }
        };
        return Err(fatal(format!(
            "consumer '{}' has {}, not {}: give this collector a new --consumer name, or remove the old one (`nats consumer rm {} {}`)",
            input.consumer,
            shown(&info.config.filter_subject),
            shown(&wanted),
            input.stream,
            input.consumer
        )));
    }
    if info.config.ack_policy != AckPolicy::Explicit {
        return Err(fatal(format!(
            "consumer '{}' does not take explicit acks: give this collector its own --consumer name",
            input.consumer
        )));
    }
    let max_ack_pending = if info.config.max_ack_pending > 0 {
        info.config.max_ack_pending as u64
    } else {
        u64::MAX
    };
    // Where this run starts: after the checkpoint's last message, or, for a new checkpoint,
    // after what the consumer has acknowledged.
    let start = committed.unwrap_or(info.ack_floor.stream_sequence);
    let mut delivered = info.delivered.consumer_sequence;
    if info.delivered.stream_sequence != start || info.ack_floor.stream_sequence != start {
        // Delivered past the commit (a killed run's messages, not yet redelivered), or behind
        // it: start over right after the commit, in stream order.
        tracing::debug!(
            "consumer '{}' delivered through {} and acknowledged through {}; resetting it to {}",
            input.consumer,
            info.delivered.stream_sequence,
            info.ack_floor.stream_sequence,
            start + 1
        );
        let reset = consumer.reset(Some(start + 1)).await.map_err(|e| {
            fatal(format!(
                "cannot put consumer '{}' back to stream sequence {} (needs nats-server 2.14 or later): {e}",
                input.consumer,
                start + 1
            ))
        })?;
        delivered = reset.info.delivered.consumer_sequence;
    }
    Ok(Opened {
        client,
        consumer,
        lease,
        start,
        delivered,
        max_ack_pending,
    })
}
