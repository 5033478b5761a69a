//! `--follow` over many logs: reads the logs something happened to, a round at a time. Each
//! round is one pipeline run over those logs (`round`), planned against the checkpoint as a
//! cron run is, so that every rotation mode, loss and restart behaves as it does there.
//!
//! What happened is told by one inotify instance over the directories the globs can match (new
//! ones included) and those that linked logs point into; where it cannot tell (a network or
//! FUSE file system, no watch left), a rescan every `--rescan` looks at the logs there. New logs
//! are read from their first line.
//!
//! The logs read last stay open (at most `--max-open-files`, the reader's one included): a
//! log deleted once read to its end is then known to be no loss, where its path alone could not
//! tell whether a line was written between the read and the delete.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::logs::{Across, Globs, ROUND_LOGS, round};
use crate::checkpoint::Shared;
use crate::checkpoint::set::Seen;
use crate::config::Config;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::source::{self, watch::DirWatch};
use crate::summary::Summary;

/// How the live file at `path` looks now (`None`: there is none). A rescan reads the logs
/// whose live file looks otherwise than when last read, where no event told of it.
fn look(path: &Path) -> Option<Seen> {
    std::fs::metadata(path).ok().map(|meta| Seen::of(&meta))
}

/// Follows every log `logs` matches, and those that appear, until drained (`--follow` with a
/// glob; the command line asks for a checkpoint).
///
/// # Errors
/// The errors of a run over the logs.
pub async fn follow_logs(
    config: &Config,
    logs: &crate::config::Logs,
    checkpoint: &Path,
    metrics: Arc<Metrics>,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    let started = Instant::now();
    metrics.logs_active.store(true, Ordering::Relaxed);
    let globs = Globs::new(logs);
    let shared = Shared::open(checkpoint)?;
    Follower::new(config, &globs, &shared)
        .run(&metrics, &drain)
        .await?;
    Ok(metrics.snapshot(started.elapsed()))
}

/// A log's live file kept open after a round.
struct Held {
    file: std::fs::File,
    /// The round that last read the log: the least recent are closed first.
    round: u64,
}

/// A follower of the logs `globs` match.
struct Follower<'a> {
    /// `--start-at end` holds for the first round only: logs found later start at line 1.
    config: Config,
    globs: &'a Globs,
    shared: &'a Shared,
    /// What its rounds share (the checkpoint, a publishing connection).
    across: Across<'a>,
    watch: DirWatch,
    /// The logs followed, and how each live file looked when last read.
    followed: HashMap<PathBuf, Option<Seen>>,
    /// Logs that are links: per directory their targets are in, the target's name and the log.
    links: HashMap<PathBuf, Vec<(OsString, PathBuf)>>,
    /// The logs the checkpoint knows, for the first look: the globs' logs among them are
    /// followed from the start, there or not.
    checkpointed: Option<Vec<PathBuf>>,
    /// Logs to read in the next round, in path order.
    dirty: BTreeSet<PathBuf>,
    /// `--multiline` or container logs: logs whose last record may still be open, and when to
    /// finish it (read again once the log was quiet for `--multiline-timeout`).
    due: Vec<(Instant, PathBuf)>,
    /// The globs are to be walked again (a directory came or went, a new name appeared).
    look_again: bool,
    rescan_at: Instant,
    /// The live files of the logs read last, at most `--max-open-files` less the reader's one.
    held: HashMap<PathBuf, Held>,
    /// Rounds run so far.
    rounds: u64,
}

impl<'a> Follower<'a> {
    /// A follower of the logs `globs` match, its place kept in `shared`.
    fn new(config: &Config, globs: &'a Globs, shared: &'a Shared) -> Follower<'a> {
        Follower {
            config: config.clone(),
            globs,
            shared,
            across: Across::new(Some(shared)),
            watch: DirWatch::new(),
            followed: HashMap::new(),
            links: HashMap::new(),
            checkpointed: Some(shared.logs()),
            dirty: BTreeSet::new(),
            due: Vec::new(),
            look_again: true,
            rescan_at: Instant::now() + config.rescan,
            held: HashMap::new(),
            rounds: 0,
        }
    }

    /// Follows until `drain` is cancelled (or the reader of `-` goes away).
    ///
    /// # Errors
    /// The errors of a run over the logs.
    async fn run(mut self, metrics: &Arc<Metrics>, drain: &CancellationToken) -> Result<(), Error> {
        loop {
            let now = Instant::now();
            let rescan = now >= self.rescan_at && self.watch.has_blind();
            if now >= self.rescan_at {
                self.rescan_at = now + self.config.rescan;
            }
            if self.look_again || rescan {
                self.look();
                metrics
                    .logs_known
                    .store(self.followed.len() as u64, Ordering::Relaxed);
            }
            if rescan {
                self.rescan();
            }
            if !self.dirty.is_empty() {
                let paths: Vec<PathBuf> = (0..ROUND_LOGS).map_while(|_| self.dirty.pop_first()).collect();
                tracing::debug!("reading {} logs", paths.len());
                let ended = self.ended(&paths);
                let turns = round(&self.config, &paths, &ended, &self.across, metrics, drain.clone()).await?;
                self.rounds += 1;
                self.config.start_at_end = false;
                self.read(paths, &turns.holding);
                self.dirty.extend(turns.more);
                metrics.logs_held.store(self.held.len() as u64, Ordering::Relaxed);
                metrics
                    .logs_known
                    .store(self.followed.len() as u64, Ordering::Relaxed);
            }
            if drain.is_cancelled() || super::output_closed(metrics) {
                return Ok(());
            }
            // A log with more to read than its turn took: no waiting, only a look at events.
            let wake = match self.dirty.is_empty() {
                true => self.due.iter().map(|(at, _)| *at).fold(self.rescan_at, Ord::min),
                false => Instant::now(),
            };
            let changes = self
                .watch
                .wait(wake.saturating_duration_since(Instant::now()), drain)
                .await;
            self.changed(changes);
        }
    }

    /// Walks the globs: new logs are followed (and read), the directories watched.
    fn look(&mut self) {
        let mut known: HashSet<PathBuf> = self.followed.keys().cloned().collect();
        known.extend(self.checkpointed.take().unwrap_or_default());
        let found = self.globs.discover(&known);
        let mut dirs = found.dirs.clone();
        let matched: HashSet<&PathBuf> = found.logs.iter().collect();
        // Known and wanted but not found: gone, or between a rotation's rename and create; the
        // round lists its set (and forgets it when no file of it is left).
        let missing = known
            .iter()
            .filter(|k| !matched.contains(k) && self.globs.log_of(k, &|_| false).as_ref() == Some(*k));
        for log in found.logs.iter().chain(missing) {
            if self.followed.contains_key(log) {
                continue;
            }
            self.followed.insert(log.clone(), None);
            self.dirty.insert(log.clone());
            // A link (`/var/log/containers/*.log`): its target is written, in a directory of
            // its own, which is watched too.
            if std::fs::symlink_metadata(log).is_ok_and(|m| m.file_type().is_symlink()) {
                let target = source::set::resolve(log);
                if let Some(name) = target.file_name() {
                    let dir = crate::atomic::parent(&target).to_owned();
                    self.links
                        .entry(dir.clone())
                        .or_default()
                        .push((name.to_owned(), log.clone()));
                    dirs.push(dir);
                }
            }
        }
        self.watch.watch(&dirs);
        self.look_again = false;
    }

    /// Where changes may go untold: the logs whose live file looks otherwise than when read.
    fn rescan(&mut self) {
        for (log, seen) in &self.followed {
            if self.watch.is_blind(crate::atomic::parent(log)) && look(log) != *seen {
                self.dirty.insert(log.clone());
            }
        }
    }

    /// Of the logs at `paths`, those whose held live file was deleted once read to its end (as
    /// far as the checkpoint says). Deleted files are closed: their space is freed.
    fn ended(&mut self, paths: &[PathBuf]) -> HashSet<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let mut ended = HashSet::new();
        for path in paths {
            let Some(meta) = self.held.get(path).and_then(|held| held.file.metadata().ok()) else {
                continue;
            };
            if meta.nlink() > 0 {
                continue;
            }
            self.held.remove(path);
            if self.shared.read_to(path) == Some((meta.ino(), meta.len())) {
                ended.insert(path.clone());
            }
        }
        ended
    }

    /// Keeps the live file `seen` describes open for the log at `path`, closing the least
    /// recently read past the cap.
    fn hold(&mut self, path: &Path, seen: Seen) {
        use std::os::unix::fs::MetadataExt;
        let cap = self.config.max_open_files.saturating_sub(1);
        if let Some(held) = self.held.get_mut(path)
            && held.file.metadata().is_ok_and(|m| m.ino() == seen.ino)
        {
            held.round = self.rounds;
            return;
        }
        // The one it held is another file now (rotated): closed before the next is opened.
        self.held.remove(path);
        if cap == 0 {
            return;
        }
        if self.held.len() >= cap
            && let Some(oldest) = self
                .held
                .iter()
                .min_by_key(|(_, h)| h.round)
                .map(|(p, _)| p.clone())
        {
            self.held.remove(&oldest);
        }
        if let Ok(file) = std::fs::File::open(path)
            && file.metadata().is_ok_and(|m| m.ino() == seen.ino)
        {
            self.held.insert(
                path.to_owned(),
                Held {
                    file,
                    round: self.rounds,
                },
            );
        }
    }

    /// After a round over `paths`: how each looks now; logs with no file left are forgotten;
    /// those `holding` a record open are read again once quiet.
    fn read(&mut self, paths: Vec<PathBuf>, holding: &[PathBuf]) {
        for path in paths {
            let seen = look(&path);
            match seen {
                Some(seen) => self.hold(&path, seen),
                None => drop(self.held.remove(&path)),
            }
            // A record --multiline holds, or a container's line whose last piece has not come,
            // left unread: finished once the log is quiet.
            if let (true, Some(seen)) = (holding.contains(&path), seen)
                && let Some(wait) = crate::os::quiet_in(seen.mtime_ns, self.config.hold_timeout)
            {
                self.due.push((Instant::now() + wait, path.clone()));
            }
            if seen.is_none() && source::set::list(&path).is_ok_and(|m| m.is_empty()) {
                for links in self.links.values_mut() {
                    links.retain(|(_, log)| *log != path);
                }
                self.followed.remove(&path);
            } else {
                self.followed.insert(path, seen);
            }
        }
    }

    /// Marks the logs `changes` (and the time) tell of to be read.
    fn changed(&mut self, changes: source::watch::Changes) {
        let now = Instant::now();
        let dirty = &mut self.dirty;
        self.due.retain(|(at, path)| {
            if *at <= now {
                dirty.insert(path.clone());
            }
            *at > now
        });
        self.look_again |= changes.look_again;
        if changes.dropped {
            tracing::debug!("inotify dropped events: reading every log");
            self.dirty.extend(self.followed.keys().cloned());
        }
        for path in changes.paths {
            let followed = &self.followed;
            match self.globs.log_of(&path, &|p| followed.contains_key(p)) {
                Some(log) if followed.contains_key(&log) => {
                    self.dirty.insert(log);
                    continue;
                }
                // A new log: the walk names it (once, whichever path leads to it).
                Some(_) => self.look_again = true,
                None => {}
            }
            // A linked log's target, or one of its rotated files.
            let (Some(name), Some(links)) = (path.file_name(), self.links.get(crate::atomic::parent(&path)))
            else {
                continue;
            };
            for (target, log) in links {
                if name == target || source::set::is_rotation_of(target, name) {
                    self.dirty.insert(log.clone());
                }
            }
        }
    }
}
