//! `--follow`: what the reader does at the end of the live log instead of ending: waits for
//! more (woken by inotify on the log's directory, or every [`POLL`] without it), and ends the
//! file's run once it was truncated (`copytruncate`), or rotated away (renamed, deleted,
//! replaced) and done with: the program writes to the new file and this one was quiet for
//! `--rotate-wait`. Then the set is listed again and the old file's tail read first.

use std::fs::File;
use std::io::Seek;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the file is looked at without inotify (a drain is seen within it).
pub const POLL: Duration = Duration::from_millis(100);

/// How long one wait lasts at most with inotify, which wakes it for anything that happens to
/// the log: an idle follower wakes once a second (a drain is seen within it).
const WATCHED: Duration = Duration::from_secs(1);

/// A live log being followed.
#[derive(Debug)]
pub struct Follow {
    /// PATH, where the log is written.
    path: PathBuf,
    /// The file being read (a descriptor of its own, sharing the reader's offset).
    file: File,
    ino: u64,
    /// Watches PATH's directory: appends, renames, creations; `None`: polling.
    watch: Option<inotify::Inotify>,
    /// When the file last had more to read (or following began): a file rotated away is done
    /// with once it has been quiet for `rotate_wait`.
    grew: Instant,
    /// How long a log rotated away must stay quiet, once the program writes to the new file (or
    /// the old one is deleted), before it is done with. A program writes on to the file it has
    /// open until it reopens PATH (logrotate's `postrotate` signal, a thread still holding the
    /// old descriptor); those lines come out before the new file's. Fluent Bit's `Rotate_Wait`.
    rotate_wait: Duration,
    /// The last bytes read (up to [`LAST_BYTES`]), as the reader read them: a file emptied and
    /// written again past where reading stopped (`copytruncate` and a busy writer) has other
    /// bytes there. Taken when read, not when the wait begins, which may be after the truncate.
    last: Vec<u8>,
}

/// How many of the last bytes read are kept to tell a file written anew from the one read.
const LAST_BYTES: usize = 64;

/// What a wait at the end of the file came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// The file has more bytes to read.
    More,
    /// PATH is another file now (or none), the program writes elsewhere (the new file has
    /// bytes, or this one is deleted), and this one was quiet for `--rotate-wait`: done with.
    Rotated,
    /// The file is shorter than what was read: truncated (`copytruncate`).
    Truncated,
    /// The deadline passed with nothing new.
    Quiet,
    /// The reader is to stop.
    Stopped,
}

impl Follow {
    /// Follows `file`, the log at `path`; done with it once it is rotated away and was quiet
    /// for `rotate_wait` (see [`Woke::Rotated`]).
    ///
    /// # Errors
    /// When the file's descriptor cannot be duplicated or looked at.
    pub fn new(path: PathBuf, file: &File, rotate_wait: Duration) -> std::io::Result<Follow> {
        let file = file.try_clone()?;
        let ino = file.metadata()?.ino();
        let watch = inotify::Inotify::init().ok().and_then(|inotify| {
            use inotify::WatchMask;
            let mask = WatchMask::MODIFY
                | WatchMask::CREATE
                | WatchMask::MOVED_FROM
                | WatchMask::MOVED_TO
                | WatchMask::DELETE
                | WatchMask::ATTRIB
                | WatchMask::MOVE_SELF
                | WatchMask::DELETE_SELF;
            match inotify.watches().add(crate::atomic::parent(&path), mask) {
                Ok(_) => Some(inotify),
                Err(e) => {
                    tracing::warn!(
                        "cannot watch the log's directory ({e}): looking for new lines every {} ms",
                        POLL.as_millis()
                    );
                    None
                }
            }
        });
        let mut follow = Follow {
            path,
            file,
            ino,
            watch,
            grew: Instant::now(),
            rotate_wait,
            last: Vec::new(),
        };
        // The bytes before where reading starts: an earlier run read them.
        let start = follow.file.stream_position()?;
        follow.last = follow.last_bytes(start);
        Ok(follow)
    }

    /// Takes note of bytes the reader just read from the file (see `Follow::last`).
    pub fn saw(&mut self, read: &[u8]) {
        let keep = &read[read.len().saturating_sub(LAST_BYTES)..];
        let excess = (self.last.len() + keep.len()).saturating_sub(LAST_BYTES);
        self.last.drain(..excess);
        self.last.extend_from_slice(keep);
    }

    /// True when the file was rotated away and is done with (see [`Woke::Rotated`]); else, how
    /// long it may still have to stay quiet (`None`: as long as the program writes nowhere else).
    fn done(&self, now: Instant) -> Result<(), Option<Duration>> {
        let elsewhere = match std::fs::metadata(&self.path) {
            Ok(meta) if meta.ino() == self.ino => return Err(None),
            Ok(meta) => meta.len() > 0,
            Err(_) => false,
        };
        // A deleted file can be reopened by no one: only a descriptor still open writes to it.
        let deleted = self.file.metadata().is_ok_and(|m| m.nlink() == 0);
        if !elsewhere && !deleted {
            return Err(None);
        }
        match self.rotate_wait.checked_sub(now - self.grew) {
            Some(left) if !left.is_zero() => Err(Some(left)),
            _ => Ok(()),
        }
    }

    /// Waits at the end of the file until it has more, was rotated or truncated, `deadline`
    /// passes, or `stop()` says so (asked at least once a second).
    pub fn wait(&mut self, deadline: Option<Instant>, stop: impl Fn() -> bool) -> Woke {
        let read_to = self.file.stream_position().unwrap_or(0);
        loop {
            if stop() {
                return Woke::Stopped;
            }
            let size = self.file.metadata().map_or(0, |m| m.len());
            if size < read_to || !self.last_bytes(read_to).ends_with(&self.last) {
                return Woke::Truncated;
            }
            let now = Instant::now();
            if size > read_to {
                self.grew = now;
                return Woke::More;
            }
            let mut most = if self.watch.is_some() { WATCHED } else { POLL };
            match self.done(now) {
                Ok(()) => return Woke::Rotated,
                Err(Some(left)) => most = most.min(left),
                Err(None) => {}
            }
            let slice = match deadline {
                Some(deadline) if deadline <= now => return Woke::Quiet,
                Some(deadline) => (deadline - now).min(most),
                None => most,
            };
            match &mut self.watch {
                Some(watch) => {
                    if crate::os::wait_readable(watch.as_raw_fd(), slice) {
                        // Only that something happened matters: the events are let go.
                        let mut buffer = [0u8; 4096];
                        while watch
                            .read_events(&mut buffer)
                            .is_ok_and(|mut e| e.next().is_some())
                        {}
                    }
                }
                None => std::thread::sleep(slice),
            }
        }
    }

    /// Up to [`LAST_BYTES`] of the file before `offset`.
    fn last_bytes(&self, offset: u64) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let len = offset.min(LAST_BYTES as u64);
        let mut bytes = vec![0; len as usize];
        let n = self.file.read_at(&mut bytes, offset - len).unwrap_or(0);
        bytes.truncate(n);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, SeekFrom};

    #[test]
    fn a_log_emptied_and_written_past_where_reading_stopped_is_seen_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let old: String = (0..10)
            .map(|n| format!("2026-12-05T00:00:0{n}Z INFO old {n}\n"))
            .collect();
        std::fs::write(&path, &old).unwrap();
        let mut file = File::open(&path).unwrap();
        let mut follow = Follow::new(path.clone(), &file, Duration::from_secs(2)).unwrap();
        let mut read = Vec::new();
        file.read_to_end(&mut read).unwrap();
        follow.saw(&read);
        // copytruncate, and the program writes on past where reading stopped, all before the
        // follower next looks: the same inode, longer than what was read, other bytes there.
        let new: String = (0..20)
            .map(|n| format!("2026-12-05T00:01:{n:02}Z INFO new {n}\n"))
            .collect();
        std::fs::write(&path, &new).unwrap();
        let soon = Some(Instant::now() + Duration::from_secs(1));
        assert_eq!(follow.wait(soon, || false), Woke::Truncated);

        // Only appended to: more to read.
        std::fs::write(&path, &old).unwrap();
        file.seek(SeekFrom::End(0)).unwrap();
        let mut follow = Follow::new(path.clone(), &file, Duration::from_secs(2)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"more\n"))
            .unwrap();
        assert_eq!(follow.wait(soon, || false), Woke::More);
    }
}
