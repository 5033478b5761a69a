//! `--from PATH` without `--checkpoint`: the file alone, from its first line (followed with
//! `--follow`, each new file after a rotation from its first line).

use std::fs::File;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Input, Reading, output_closed, read_input, wait_for};
use crate::config::Config;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::source;
use crate::summary::Summary;

/// `--from PATH` without `--checkpoint`: PATH alone, from its first line; with `--follow`, on
/// after each rotation with the new file's first line (what the old one got after the run last
/// read it is not known: a checkpoint knows).
pub async fn read_file(
    config: &Config,
    path: &std::path::Path,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let started = std::time::Instant::now();
    let name = format!("'{}'", path.display());
    let failed = |source| Error::Input {
        path: path.to_owned(),
        source,
    };
    loop {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.follow => {
                if !wait_for(path, &drain).await {
                    break;
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoInput {
                    path: path.to_owned(),
                });
            }
            Err(source) => return Err(failed(source)),
        };
        let follow = config
            .follow
            .then(|| source::follow::Follow::new(path.to_owned(), &file, config.rotate_wait))
            .transpose()
            .map_err(failed)?;
        let reading = Reading {
            follow,
            ..Reading::default()
        };
        read_input(
            config,
            Input::File(file),
            reading,
            &name,
            metrics.clone(),
            drain.clone(),
        )
        .await?;
        if !config.follow || drain.is_cancelled() || output_closed(&metrics) {
            break;
        }
    }
    Ok(metrics.snapshot(started.elapsed()))
}
