//! The floor for `ingest nats://…`: the least a program can do to publish the same messages.
//!
//! Reads JSON Lines (what `ingest -f json` writes for the corpus) and publishes each line as one
//! JetStream message with the headers ingest sends (`Nats-Msg-Id`, `Ingest-Source`,
//! `Ingest-Line`), keeping at most WINDOW acknowledgements outstanding, then waits for the rest.
//! Run by `benches/nats.py`; by hand:
//!
//! ```sh
//! cargo bench --bench nats_loop -- --create-stream nats://127.0.0.1:4222 BENCH 'bench.>'
//! cargo bench --bench nats_loop -- nats://127.0.0.1:4222 bench.loop BODIES.jsonl 512
//! ```
//!
//! And the floor for `ingest --from …` (`benches/collect.py`): `--consume URL STREAM CONSUMER
//! FILTER BATCH IDLE_SECS` pulls through a durable consumer with explicit acks, as ingest does,
//! acking each message, until none came for IDLE_SECS.

use std::collections::VecDeque;
use std::future::IntoFuture;

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [create, url, name, subjects] = args.as_slice()
        && create == "--create-stream"
    {
        // The bench's stream: R1, file storage, for `subjects` (a wildcard such as `bench.>`).
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await?);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subjects.clone()],
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await?;
        return Ok(());
    }
    if let [consume, url, stream, consumer, filter, batch, idle] = args.as_slice()
        && consume == "--consume"
    {
        return consume_loop(url, stream, consumer, filter, batch.parse()?, idle.parse()?).await;
    }
    let [url, subject, bodies, window] = args.as_slice() else {
        // `cargo bench` runs every bench target with `--bench`: nothing to do without a server.
        eprintln!("usage: nats_loop URL SUBJECT BODIES.jsonl WINDOW (see benches/nats.py)");
        return Ok(());
    };
    let window: usize = window.parse()?;
    let bodies = Bytes::from(std::fs::read(bodies)?);
    let client = async_nats::connect(url.as_str()).await?;
    let js = async_nats::jetstream::ContextBuilder::new()
        .max_ack_inflight(window)
        .backpressure_on_inflight(true)
        .build(client);
    let subject = async_nats::Subject::from(subject.as_str());
    let fingerprint = "0123456789abcdef";
    let source = format!("bench/{fingerprint}");
    let mut pending = VecDeque::with_capacity(window);
    let mut start = 0;
    let mut line = 0u64;
    while let Some(end) = memchr::memchr(b'\n', &bodies[start..]).map(|i| start + i) {
        line += 1;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{fingerprint}:{line}").as_str());
        headers.insert("Ingest-Source", source.as_str());
        headers.insert("Ingest-Line", line.to_string().as_str());
        let message = PublishMessage::build()
            .payload(bodies.slice(start..end))
            .headers(headers);
        let ack = js.send_publish(subject.clone(), message).await?;
        pending.push_back(ack.into_future());
        if pending.len() >= window
            && let Some(oldest) = pending.pop_front()
        {
            oldest.await?;
        }
        start = end + 1;
    }
    for ack in pending {
        ack.await?;
    }
    eprintln!("nats_loop: {line} messages acknowledged");
    Ok(())
}

/// Pulls every message of `filter` through a new durable consumer, acking each, until none came
/// for `idle` seconds.
async fn consume_loop(
    url: &str,
    stream: &str,
    consumer: &str,
    filter: &str,
    batch: usize,
    idle: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures_util::StreamExt;
    let js = async_nats::jetstream::new(async_nats::connect(url).await?);
    let stream = js.get_stream(stream).await?;
    let consumer: pull::Stream = stream
        .create_consumer(pull::Config {
            durable_name: Some(consumer.to_owned()),
            ack_policy: AckPolicy::Explicit,
            filter_subject: filter.to_owned(),
            max_ack_pending: 131_072,
            ..Default::default()
        })
        .await?
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await?;
    let mut messages = consumer;
    let idle = std::time::Duration::from_secs_f64(idle);
    let mut count = 0u64;
    while let Ok(Some(message)) = tokio::time::timeout(idle, messages.next()).await {
        message?.ack().await.map_err(|e| e.to_string())?;
        count += 1;
    }
    eprintln!("nats_loop: {count} messages consumed and acked");
    Ok(())
}
