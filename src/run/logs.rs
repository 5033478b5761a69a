//! `--from GLOB` (or `--from` given several times): every log the globs match, each with its
//! rotated files, one after another; with `--checkpoint`, one checkpoint for all of them (a
//! journal: each commit names the log that moved, and OUTPUT's length for all).
//!
//! Each log is read as `--from PATH` reads one ([`super::set`], [`super::file`]), its records
//! naming it in a `file` key. Logs the checkpoint knows whose files are all gone are said lost
//! if lines of them were unread, and forgotten.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{file, output_closed, set};
use crate::checkpoint::Shared;
use crate::config::{Config, Logs};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::source;
use crate::source::glob::Glob;
use crate::summary::Summary;

/// Reads every log `logs` matches now, in the order of their paths.
///
/// # Errors
/// [`Error::NoLogs`] when none matches (and the checkpoint knows none); the first error of a
/// log's run otherwise (a log gone between the look and its reading is passed over).
pub async fn read_logs(
    config: &Config,
    logs: &Logs,
    checkpoint: Option<&Path>,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let started = std::time::Instant::now();
    let globs = |paths: &[PathBuf]| {
        paths
            .iter()
            .filter_map(|p| Glob::new(p).ok())
            .collect::<Vec<Glob>>()
    };
    let (include, exclude) = (globs(&logs.include), globs(&logs.exclude));
    let shared = checkpoint.map(Shared::open).transpose()?;
    let known = shared.as_ref().map_or_else(Vec::new, Shared::logs);
    let found = source::glob::discover(&include, &exclude, &|path| known.iter().any(|k| k == path));
    tracing::debug!("{} logs match", found.logs.len());
    // Logs the checkpoint knows whose files are all gone: what of them was unread is said lost
    // (by the plan, once), then they are forgotten.
    let gone: Vec<&PathBuf> = known
        .iter()
        .filter(|k| !found.logs.contains(k) && source::set::list(k).is_ok_and(|m| m.is_empty()))
        .collect();
    if found.logs.is_empty() && gone.is_empty() {
        let shown: Vec<String> = logs
            .include
            .iter()
            .map(|p| format!("'{}'", p.display()))
            .collect();
        return Err(Error::NoLogs {
            globs: shown.join(" "),
        });
    }
    if let Some(shared) = &shared {
        for path in gone {
            let store = shared.store(path);
            match set::read_set(config, path, &store, metrics.clone(), drain.clone()).await {
                Ok(_) | Err(Error::NoInput { .. }) => store.forget()?,
                Err(error) => return Err(error),
            }
        }
    }
    for path in &found.logs {
        if drain.is_cancelled() || output_closed(&metrics) {
            break;
        }
        let config = Config {
            file_key: Some(Arc::from(path.to_string_lossy())),
            ..config.clone()
        };
        let read = match &shared {
            Some(shared) => {
                set::read_set(&config, path, &shared.store(path), metrics.clone(), drain.clone()).await
            }
            None => file::read_file(&config, path, metrics.clone(), drain.clone()).await,
        };
        match read {
            Ok(_) => {}
            // Gone between the look and its turn (with a checkpoint, a loss was said).
            Err(Error::NoInput { .. }) => tracing::debug!("'{}' is gone: passed over", path.display()),
            Err(error) => return Err(error),
        }
    }
    Ok(metrics.snapshot(started.elapsed()))
}
