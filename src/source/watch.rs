//! `--follow` over many logs: one inotify instance watching every directory the globs can
//! match (a kernel allows a user only 128 instances, so never one per log), saying which paths
//! in them changed; where inotify cannot see (NFS, no instance left), the follower's rescan
//! finds the changes instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tokio::io::unix::AsyncFd;
use tokio_util::sync::CancellationToken;

/// Watches directories for what happens to the files in them.
pub struct DirWatch {
    /// `None`: inotify is not to be had; only the rescan finds changes.
    inotify: Option<AsyncFd<Inotify>>,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    watched: std::collections::HashSet<PathBuf>,
    /// Directories whose changes inotify may not tell: not watched (no watch left), or on a
    /// network or FUSE file system, where another machine's writes raise no event.
    blind: std::collections::HashSet<PathBuf>,
    /// A directory could not be watched: said once.
    warned: bool,
}

/// What happened in the watched directories since the last look.
#[derive(Debug, Default)]
pub struct Changes {
    /// Files written to, created, renamed or deleted (each path once).
    pub paths: Vec<PathBuf>,
    /// A directory appeared or went: walk the globs again.
    pub look_again: bool,
    /// The kernel dropped events (its queue was full): every log may have changed.
    pub dropped: bool,
}

impl Default for DirWatch {
    fn default() -> DirWatch {
        DirWatch::new()
    }
}

impl DirWatch {
    /// A watch over no directory yet (inotify, or nothing when it cannot be had: said).
    pub fn new() -> DirWatch {
        // SAFETY: the `Inotify` owns its descriptor, and nothing replaces or closes it while the
        // `AsyncFd` holds it.
        let inotify = Inotify::init()
            .and_then(|inotify| unsafe { AsyncFd::register(inotify) }.map_err(std::io::Error::from));
        if let Err(e) = &inotify {
            tracing::warn!("cannot use inotify ({e}): new lines and logs are found by the rescan only");
        }
        DirWatch {
            inotify: inotify.ok(),
            dirs: HashMap::new(),
            watched: std::collections::HashSet::new(),
            blind: std::collections::HashSet::new(),
            warned: false,
        }
    }

    /// True when changes in `dir` may go untold: the rescan is to look there.
    pub fn is_blind(&self, dir: &Path) -> bool {
        self.inotify.is_none() || self.blind.contains(dir) || !self.watched.contains(dir)
    }

    /// True when some directory's changes may go untold (see [`DirWatch::is_blind`]).
    pub fn has_blind(&self) -> bool {
        self.inotify.is_none() || !self.blind.is_empty()
    }

    /// Watches `dirs` too (the ones watched already stay).
    pub fn watch(&mut self, dirs: &[PathBuf]) {
        let Some(inotify) = self.inotify.as_mut() else {
            return;
        };
        let mask = WatchMask::MODIFY
            | WatchMask::CREATE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::DELETE
            | WatchMask::ATTRIB
            | WatchMask::CLOSE_WRITE
            | WatchMask::ONLYDIR;
        for dir in dirs {
            if self.watched.contains(dir) {
                continue;
            }
            if self.blind.contains(dir) {
                continue;
            }
            match inotify.get_mut().watches().add(dir, mask) {
                Ok(wd) => {
                    self.watched.insert(dir.clone());
                    self.dirs.insert(wd, dir.clone());
                    if crate::os::is_remote(dir) {
                        self.blind.insert(dir.clone());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if !self.warned => {
                    self.warned = true;
                    self.blind.insert(dir.clone());
                    tracing::warn!(
                        "cannot watch '{}' ({e}): changes there are found by the rescan only{}",
                        dir.display(),
                        if e.raw_os_error() == Some(libc::ENOSPC) {
                            "; raise fs.inotify.max_user_watches"
                        } else {
                            ""
                        }
                    );
                }
                Err(_) => {
                    self.blind.insert(dir.clone());
                }
            }
        }
    }

    /// Waits until something happens in a watched directory, `timeout` passes, or `stop` is
    /// cancelled; then says what happened (nothing when the time ran out).
    pub async fn wait(&mut self, timeout: Duration, stop: &CancellationToken) -> Changes {
        let mut changes = Changes::default();
        let Some(inotify) = self.inotify.as_mut() else {
            tokio::select! {
                () = tokio::time::sleep(timeout) => {}
                () = stop.cancelled() => {}
            }
            return changes;
        };
        let ready = tokio::select! {
            ready = inotify.readable_mut() => ready.ok(),
            () = tokio::time::sleep(timeout) => None,
            () = stop.cancelled() => None,
        };
        let Some(mut ready) = ready else {
            return changes;
        };
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let events = match ready.get_inner_mut().read_events(&mut buffer) {
                Ok(events) => events,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    ready.clear_ready();
                    break;
                }
                Err(_) => {
                    changes.look_again = true;
                    changes.dropped = true;
                    break;
                }
            };
            let mut any = false;
            for event in events {
                any = true;
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    changes.look_again = true;
                    changes.dropped = true;
                    continue;
                }
                if event.mask.contains(EventMask::IGNORED) {
                    // The directory went (or was unmounted): watched again if it comes back.
                    if let Some(dir) = self.dirs.remove(&event.wd) {
                        self.watched.remove(&dir);
                        self.blind.remove(&dir);
                    }
                    changes.look_again = true;
                    continue;
                }
                let (Some(dir), Some(name)) = (self.dirs.get(&event.wd), event.name) else {
                    continue;
                };
                if event.mask.contains(EventMask::ISDIR) {
                    changes.look_again = true;
                    continue;
                }
                changes.paths.push(dir.join(name));
            }
            if !any {
                break;
            }
        }
        changes.paths.sort();
        changes.paths.dedup();
        changes
    }
}
