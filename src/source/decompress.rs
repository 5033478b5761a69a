//! Compressed input: gzip (multi-member too, as `cat a.gz b.gz` makes) and zstd, known by their
//! magic bytes whatever the file is called.
//!
//! A thread of its own decompresses into a pipe, so that decompression overlaps parsing and the
//! rest of the run reads the input as it reads a pipe on stdin: a checkpoint fingerprints and
//! counts decompressed bytes and lines, and a rerun skips the committed part by reading it.
//! Damaged or cut-short data ends the input at the last whole line before the damage; the run
//! then fails naming the compressed offset ([`Decompressing::finish`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crate::error::Error;

/// A compression format ingest reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// gzip (RFC 1952), one member or several.
    Gzip,
    /// Zstandard, one frame or several.
    Zstd,
}

impl Format {
    /// The format whose magic bytes `first` starts with.
    pub fn sniff(first: &[u8]) -> Option<Format> {
        if first.starts_with(&[0x1f, 0x8b]) {
            Some(Format::Gzip)
        } else if first.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Format::Zstd)
        } else {
            None
        }
    }

    /// How users name it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
        }
    }

    /// The command that checks a file of this format.
    fn test_command(self) -> &'static str {
        match self {
            Format::Gzip => "gzip -t",
            Format::Zstd => "zstd -t",
        }
    }
}

/// The format of the regular file `file`, read from its first bytes without moving its offset;
/// `None` for anything else (a pipe cannot be looked into without taking its bytes).
pub fn format_of(file: &File) -> Option<Format> {
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut first = [0u8; 4];
    let n = file.read_at(&mut first, 0).ok()?;
    Format::sniff(&first[..n])
}

/// The decompressing thread, for the end of the run.
pub struct Decompressing {
    format: Format,
    thread: JoinHandle<Result<(), Damage>>,
}

/// Where and how the compressed data went bad.
struct Damage {
    offset: u64,
    dropped: u64,
    source: io::Error,
}

/// Starts decompressing `file` (of `format`) on a thread of its own; returns the read end of the
/// pipe it writes the decompressed bytes into.
///
/// # Errors
/// When no pipe or thread can be had.
pub fn start(file: File, format: Format) -> io::Result<(File, Decompressing)> {
    let (read, write) = pipe()?;
    let thread = std::thread::Builder::new()
        .name("decompress".to_owned())
        .spawn(move || decompress(file, format, File::from(write)))?;
    Ok((File::from(read), Decompressing { format, thread }))
}

impl Decompressing {
    /// Waits for the thread (the pipeline has let go of the pipe by now); the damage it met,
    /// as the run's error naming `input` (`standard input`, a quoted path), counted in
    /// `damaged`.
    ///
    /// # Errors
    /// [`Error::Damaged`] when the data was damaged or cut short.
    pub fn finish(self, damaged: &AtomicU64, input: &str) -> Result<(), Error> {
        let Ok(outcome) = self.thread.join() else {
            damaged.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Damaged {
                input: input.to_owned(),
                format: self.format.name(),
                offset: 0,
                dropped: 0,
                check: self.format.test_command(),
                source: io::Error::other("the decompressing thread panicked"),
            });
        };
        outcome.map_err(|damage| {
            damaged.fetch_add(1, Ordering::Relaxed);
            Error::Damaged {
                input: input.to_owned(),
                format: self.format.name(),
                offset: damage.offset,
                dropped: damage.dropped,
                check: self.format.test_command(),
                source: damage.source,
            }
        })
    }
}

/// Counts the compressed bytes the decoder has consumed (not merely buffered): where damage
/// was found.
struct Counting {
    file: io::BufReader<File>,
    taken: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl io::BufRead for Counting {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.file.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        self.file.consume(n);
    }
}

/// The thread's work: decompressed bytes into the pipe, whole lines only until the end, so that
/// damage never leaves a torn last line for the parsers.
fn decompress(file: File, format: Format, mut out: File) -> Result<(), Damage> {
    let taken = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        file: io::BufReader::with_capacity(128 << 10, file),
        taken: Arc::clone(&taken),
    };
    let mut decoder = decoder(counting, format).map_err(|source| Damage {
        offset: 0,
        dropped: 0,
        source,
    })?;
    let mut buf = vec![0u8; 256 << 10];
    // Bytes at the front of `buf` after the last newline handed out.
    let mut held = 0;
    loop {
        if held == buf.len() {
            // A line longer than the buffer: handed out as it comes (the reader bounds it).
            if out.write_all(&buf[..held]).is_err() {
                return Ok(());
            }
            held = 0;
        }
        let n = match decoder.read(&mut buf[held..]) {
            Ok(0) => {
                // The end: the last line goes out whole or without its newline, as it is.
                let _ = out.write_all(&buf[..held]);
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Damage {
                    offset: taken.load(Ordering::Relaxed),
                    dropped: held as u64,
                    source,
                });
            }
        };
        let filled = held + n;
        let whole = memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1);
        // The reader stopped (a drain, an error): nothing more is wanted.
        if out.write_all(&buf[..whole]).is_err() {
            return Ok(());
        }
        buf.copy_within(whole..filled, 0);
        held = filled - whole;
    }
}

/// The decompressed bytes of `file`, read in place (a rotated file looked into, not a run's
/// input: damage is an error of the read).
///
/// # Errors
/// When the decoder cannot start (a zstd frame header that is not one).
pub fn reader(file: File, format: Format) -> io::Result<Box<dyn Read + Send>> {
    decoder(io::BufReader::with_capacity(64 << 10, file), format)
}

fn decoder<R: io::BufRead + Send + 'static>(input: R, format: Format) -> io::Result<Box<dyn Read + Send>> {
    Ok(match format {
        Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// A pipe, both ends close-on-exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just made for us and nothing else holds them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_known_by_their_magic_bytes() {
        assert_eq!(Format::sniff(&[0x1f, 0x8b, 8, 0]), Some(Format::Gzip));
        assert_eq!(Format::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Some(Format::Zstd));
        assert_eq!(Format::sniff(b"2026"), None);
        assert_eq!(Format::sniff(&[0x1f]), None);
    }
}
