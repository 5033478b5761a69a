//! `--from nats://...`: the collector, a JetStream stream into OUTPUT.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{file_target, open_bytes, open_rejects, rejects_target, run_pipeline};
use crate::checkpoint;
use crate::config::{self, Config};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::sink;
use crate::source;
use crate::summary::Summary;

/// Collects from a JetStream stream (`--from`) into OUTPUT: squares the files with the
/// checkpoint, starts the consumer after the last commit, and runs the pipeline.
pub async fn collect(
    config: &Config,
    from: &config::NatsInput,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let checkpoint = config
        .checkpoint
        .as_deref()
        .expect("the command line asks for --checkpoint with --from");
    let mut output = open_bytes(&config.output)?;
    let mut rejects = open_rejects(config)?;
    // Standard output cannot be cut back; the checkpoint still says what is written.
    let target = file_target(&config.output, &mut output).unwrap_or(checkpoint::Output::Pipe);
    let rejects_target = rejects_target(config, rejects.as_mut());
    let what = format!("stream {} consumer {}", from.stream, from.consumer);
    let (resume, committed) =
        checkpoint::resume_stream(checkpoint, &what, target, rejects_target, config.checkpoint_bytes)?;
    let collector =
        source::consumer::Collector::start((*from).clone(), committed, config.retry, metrics.clone()).await?;
    tracing::debug!(
        "collecting from {} after stream sequence {}",
        collector.describe(),
        collector.start
    );
    let output = sink::file::FileSink::new(output, config.retry);
    run_pipeline(
        config,
        Box::new(collector),
        resume,
        None,
        output,
        rejects,
        metrics,
        drain,
    )
    .await
}
