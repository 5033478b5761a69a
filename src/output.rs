//! Where bytes end up: the output file, standard output or the rejects file, as a [`Writable`].
//!
//! The writer stage drives a `Writable`; tests drive it with fault-injecting ones. A sink's
//! `poll_write` result is honest (the bytes it counts are on the device), which is what lets a
//! retry resume at the first unwritten byte.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::Error;

/// An output the writer stage can drive: an `AsyncWrite` with a name for messages.
pub trait Writable: AsyncWrite + Unpin + Send {
    /// How messages name this sink: `'path'` or `standard output`.
    fn describe(&self) -> String;

    /// Makes everything written so far durable (fsync) without closing.
    ///
    /// # Errors
    /// When the device reports that the data may be lost.
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Removes the last `bytes` bytes written: the torn tail of a record after a failed write.
    ///
    /// # Errors
    /// `Unsupported` where the sink cannot take bytes back (pipes, terminals).
    fn discard_tail(&mut self, bytes: u64) -> io::Result<()> {
        let _ = bytes;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// True when a reader closing this sink ends the run quietly: only `-` (`ingest - | head`).
    fn closed_is_quiet(&self) -> bool {
        false
    }

    /// Its length now, for a regular file (which a checkpoint names); `None` for the others.
    fn length(&self) -> Option<u64> {
        None
    }

    /// True when its path names another file now, or none (rotated away: renamed, deleted).
    fn replaced(&self) -> bool {
        false
    }
}

/// A file descriptor written with plain blocking `write(2)` calls, fsynced on shutdown.
///
/// Not `tokio::fs::File`: that one reports a write as done before it happens, so after an error
/// nobody knows how many bytes reached the file, and a retry could duplicate or tear a record.
#[derive(Debug)]
pub struct AppendFile {
    file: File,
    name: String,
    /// A regular file: it can be locked, synced, cut back. Pipes and devices cannot.
    regular: bool,
    /// Standard output, whose reader may close it early without that being an error.
    stdout: bool,
    /// Bytes written since writeback was last started; see [`AppendFile::start_writeback`].
    unsynced: u64,
    /// The path it was opened by, to tell when it was rotated away; `None` for standard output.
    path: Option<std::path::PathBuf>,
}

impl AppendFile {
    /// Opens `path` for appending, creating it if needed, and takes an exclusive lock on it for
    /// as long as the sink lives, so that two runs never interleave their records. Only regular
    /// files are locked: `/dev/null` or a FIFO is no one's to hold.
    ///
    /// # Errors
    /// [`Error::Open`] naming the path; [`Error::Locked`] when another process holds the lock.
    pub fn append_locked(path: &Path) -> Result<AppendFile, Error> {
        let sink = AppendFile::append(path)?;
        if !sink.regular {
            return Ok(sink);
        }
        match sink.file.try_lock() {
            Ok(()) => Ok(sink),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
                path: path.to_owned(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(Error::Open {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Opens `path` for appending, creating it if needed. A file it creates is made durable in
    /// its directory at once, so a checkpoint naming its bytes never outlives it.
    ///
    /// # Errors
    /// [`Error::Open`] naming the path.
    pub fn append(path: &Path) -> Result<AppendFile, Error> {
        let open_error = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let (file, created) = match OpenOptions::new().append(true).create_new(true).open(path) {
            Ok(file) => (file, true),
            // Exists (or is a symlink, which O_EXCL does not follow): open it, or its target.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                    .map_err(open_error)?,
                false,
            ),
            Err(e) => return Err(open_error(e)),
        };
        if created {
            crate::atomic::sync_parent(path).map_err(open_error)?;
        }
        let regular = file.metadata().map_err(open_error)?.is_file();
        Ok(AppendFile {
            file,
            name: format!("'{}'", path.display()),
            regular,
            stdout: false,
            unsynced: 0,
            path: Some(path.to_owned()),
        })
    }

    /// Standard output, through its own descriptor so that no library buffer sits in between.
    ///
    /// # Errors
    /// [`Error::Open`] when descriptor 1 is closed.
    pub fn stdout() -> Result<AppendFile, Error> {
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::Open {
                path: "-".into(),
                source,
            })?;
        let file = File::from(fd);
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        Ok(AppendFile {
            file,
            name: "standard output".to_owned(),
            regular,
            stdout: true,
            unsynced: 0,
            path: None,
        })
    }

    /// The file's device and inode: which file this is, whatever its path says now.
    ///
    /// # Errors
    /// When the file cannot be examined.
    pub fn id(&self) -> io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = self.file.metadata()?;
        Ok((meta.dev(), meta.ino()))
    }
}

impl AppendFile {
    /// The file's current length.
    ///
    /// # Errors
    /// When the file cannot be examined.
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// The file's last byte, if it has one.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn last_byte(&self) -> io::Result<Option<u8>> {
        use std::os::unix::fs::FileExt;
        let len = self.size()?;
        if len == 0 {
            return Ok(None);
        }
        use std::os::fd::AsRawFd;
        // Opened for appending only: read through a descriptor of our own on the same file.
        let reader = File::open(format!("/proc/self/fd/{}", self.file.as_raw_fd()))?;
        let mut byte = [0];
        reader.read_exact_at(&mut byte, len - 1)?;
        Ok(Some(byte[0]))
    }

    /// Cuts the file back to `len` bytes; appends then continue from there.
    ///
    /// # Errors
    /// When the file cannot be truncated.
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

/// How much is written before the kernel is asked to start writing it to the device.
const WRITEBACK_BYTES: u64 = 8 << 20;

impl AppendFile {
    /// Asks the kernel to start writing what is dirty, without waiting for it.
    ///
    /// Otherwise the final fsync would wait for the whole run's output at once; started early,
    /// the device works while the pipeline does, and the fsync only waits for the tail.
    fn start_writeback(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain syscall on a descriptor this struct owns; no memory is passed.
            // Offset 0 and length 0 mean the whole file; an error only loses the head start.
            unsafe { libc::sync_file_range(self.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
        }
    }
}

/// Runs a blocking call without stalling the runtime's other tasks where the runtime allows it.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl AsyncWrite for AppendFile {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = blocking(|| (&self.file).write(buf));
        if let Ok(n) = written {
            self.unsynced += n as u64;
            if self.unsynced >= WRITEBACK_BYTES {
                self.unsynced = 0;
                self.start_writeback();
            }
        }
        Poll::Ready(written)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every write went straight to the descriptor: nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Pipes, terminals and character devices cannot be synced; there is nothing to sync.
        if !self.regular {
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(blocking(|| self.file.sync_all()))
    }
}

impl Writable for AppendFile {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn sync(&mut self) -> io::Result<()> {
        if !self.regular {
            return Ok(());
        }
        blocking(|| self.file.sync_data())
    }

    fn discard_tail(&mut self, bytes: u64) -> io::Result<()> {
        if !self.regular {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        let len = self.file.metadata()?.len();
        self.file.set_len(len.saturating_sub(bytes))
    }

    fn closed_is_quiet(&self) -> bool {
        self.stdout
    }

    fn length(&self) -> Option<u64> {
        self.regular.then(|| self.size().ok()).flatten()
    }

    fn replaced(&self) -> bool {
        let Some(path) = self.path.as_deref().filter(|_| self.regular) else {
            return false;
        };
        let now = std::fs::metadata(path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        self.id().is_ok_and(|id| now != Some(id))
    }
}

/// Tokio's sink takes every byte and keeps none: an output for benches and tests.
impl Writable for tokio::io::Sink {
    fn describe(&self) -> String {
        "nowhere".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_and_takes_back_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        std::fs::write(&path, "old\n").unwrap();
        let mut sink = AppendFile::append(&path).unwrap();
        sink.write_all(b"new\ntor").await.unwrap();
        sink.discard_tail(3).unwrap();
        sink.shutdown().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
    }

    #[test]
    fn opening_in_a_missing_directory_names_the_path() {
        let err = AppendFile::append(Path::new("/nonexistent-dir/out.log")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot open '/nonexistent-dir/out.log' for appending"
        );
    }
}
