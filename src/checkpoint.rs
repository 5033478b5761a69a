//! `--checkpoint PATH`: exactly-once runs over the same (possibly growing) input.
//!
//! A checkpoint says which input it belongs to (a fingerprint of its first bytes), how much of
//! it is committed (bytes and lines), and how long the output and rejects files were at that
//! commit. The writer commits (output fsynced first, then the checkpoint replaced atomically);
//! at start, [`resume`] cuts the files back to the commit and skips the committed input.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::output::{FileSink, Sink};

/// How many leading bytes of the input identify it.
const FINGERPRINT_BYTES: usize = 4096;

/// Where a run starts in its input: bytes and lines already consumed (and committed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Input bytes before this point.
    pub offset: u64,
    /// Input lines before this point; the next line's number is `lines + 1`.
    pub lines: u64,
}

/// Where a run starts, and how it commits: what [`resume`] found.
#[derive(Debug, Default)]
pub struct Resume {
    /// Where in the input reading starts.
    pub start: Position,
    /// With `--checkpoint`: commits the writer's progress.
    pub committer: Option<Committer>,
}

/// A hash of the input's first bytes, and how many bytes it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    hash: u64,
}

impl Fingerprint {
    fn of(bytes: &[u8]) -> Fingerprint {
        // FNV-1a: tiny, and stable across Rust releases, unlike the std hasher.
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Fingerprint {
            len: bytes.len() as u64,
            hash,
        }
    }

    /// True when `prefix` (the input's first bytes) starts with what this fingerprint saw.
    fn matches(&self, prefix: &[u8]) -> bool {
        prefix.len() as u64 >= self.len && Fingerprint::of(&prefix[..self.len as usize]).hash == self.hash
    }
}

/// The committed state, as stored in the checkpoint file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    fingerprint: Fingerprint,
    input: Position,
    output_bytes: u64,
    rejects_bytes: Option<u64>,
}

const HEADER: &str = "ingest checkpoint 1";

impl State {
    fn render(&self) -> String {
        let rejects = self
            .rejects_bytes
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!(
            "{HEADER}\nfingerprint_bytes {}\nfingerprint {:016x}\ninput_bytes {}\ninput_lines {}\noutput_bytes {}\nrejects_bytes {rejects}\n",
            self.fingerprint.len,
            self.fingerprint.hash,
            self.input.offset,
            self.input.lines,
            self.output_bytes
        )
    }

    fn parse(text: &str) -> Option<State> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut field = |name: &str| -> Option<&str> {
            let (key, value) = lines.next()?.split_once(' ')?;
            (key == name).then_some(value)
        };
        let fingerprint_len = field("fingerprint_bytes")?.parse().ok()?;
        let hash = u64::from_str_radix(field("fingerprint")?, 16).ok()?;
        let offset = field("input_bytes")?.parse().ok()?;
        let lines_done = field("input_lines")?.parse().ok()?;
        let output_bytes = field("output_bytes")?.parse().ok()?;
        let rejects_bytes = match field("rejects_bytes")? {
            "-" => None,
            n => Some(n.parse().ok()?),
        };
        Some(State {
            fingerprint: Fingerprint {
                len: fingerprint_len,
                hash,
            },
            input: Position {
                offset,
                lines: lines_done,
            },
            output_bytes,
            rejects_bytes,
        })
    }

    fn load(path: &Path) -> Result<Option<State>, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Checkpoint {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        State::parse(&text).map(Some).ok_or_else(|| Error::Checkpoint {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, "not an ingest checkpoint"),
        })
    }

    /// Replaces the checkpoint atomically: temporary file, fsync, rename, fsync the directory.
    fn save(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(self.render().as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    }
}

/// Commits the writer's progress every few MiB or seconds, and at the end.
#[derive(Debug)]
pub struct Committer {
    path: PathBuf,
    fingerprint: Fingerprint,
    /// Output and rejects file lengths when this run started writing.
    output_base: u64,
    rejects_base: Option<u64>,
    /// Output bytes since the last commit.
    pending: u64,
    every_bytes: u64,
    last: Instant,
}

impl Committer {
    /// Commit at least this often, in time.
    const EVERY: Duration = Duration::from_secs(2);

    /// True when `written` more output bytes make a commit due.
    pub fn due(&mut self, written: u64) -> bool {
        self.pending += written;
        self.pending >= self.every_bytes || self.last.elapsed() >= Self::EVERY
    }

    /// Records that everything up to `input` is written and synced, with the files' lengths.
    ///
    /// # Errors
    /// When the checkpoint cannot be written.
    pub fn commit(
        &mut self,
        input: Position,
        output_written: u64,
        rejects_written: u64,
    ) -> Result<(), Error> {
        let state = State {
            fingerprint: self.fingerprint,
            input,
            output_bytes: self.output_base + output_written,
            rejects_bytes: self.rejects_base.map(|base| base + rejects_written),
        };
        state.save(&self.path).map_err(|source| Error::Checkpoint {
            path: self.path.clone(),
            source,
        })?;
        self.pending = 0;
        self.last = Instant::now();
        Ok(())
    }
}

/// Reads up to `FINGERPRINT_BYTES` from the start of a stream (fewer only at its end).
fn read_prefix(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(FINGERPRINT_BYTES);
    input.take(FINGERPRINT_BYTES as u64).read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// Prepares a checkpointed run: recognises the input, cuts the output (and rejects) back to
/// the last commit, and skips the committed input. Returns the input to read from, where it
/// starts, and the committer for the writer.
///
/// # Errors
/// [`Error::Checkpoint`] when the checkpoint cannot be read or the output was shortened behind
/// its back; [`Error::Read`] when the input cannot be read.
pub fn resume(
    path: &Path,
    mut input: File,
    output: &mut FileSink,
    rejects: Option<&mut FileSink>,
    every_bytes: u64,
) -> Result<(Box<dyn Read + Send>, Position, Committer), Error> {
    let state = State::load(path)?;
    let seekable = input.metadata().map_err(Error::Read)?.is_file();
    let (prefix, size) = if seekable {
        let size = input.metadata().map_err(Error::Read)?.len();
        let mut prefix = vec![0; FINGERPRINT_BYTES.min(size as usize)];
        input.read_exact_at(&mut prefix, 0).map_err(Error::Read)?;
        (prefix, Some(size))
    } else {
        (read_prefix(&mut input).map_err(Error::Read)?, None)
    };

    let same_input = state.filter(|s| {
        let same = s.fingerprint.matches(&prefix) && size.is_none_or(|size| size >= s.input.offset);
        if !same {
            tracing::warn!(
                "the input is not the one {} was made for (replaced, rotated or truncated): starting from its first line",
                path.display()
            );
        }
        same
    });
    let unusable = |source| Error::Checkpoint {
        path: path.to_owned(),
        source,
    };
    let mut rejects = rejects;
    let start = match same_input {
        Some(s) => {
            // Cut back what a killed run wrote after its last commit.
            cut_back(output, s.output_bytes, path)?;
            if let (Some(r), Some(committed)) = (rejects.as_deref_mut(), s.rejects_bytes) {
                cut_back(r, committed, path)?;
            }
            s.input
        }
        None => Position::default(),
    };
    let mut committer = Committer {
        path: path.to_owned(),
        fingerprint: Fingerprint::of(&prefix),
        output_base: output.size().map_err(unusable)?,
        rejects_base: rejects.map(|r| r.size()).transpose().map_err(unusable)?,
        pending: 0,
        every_bytes,
        last: Instant::now(),
    };
    if same_input.is_none() {
        // Commit the starting point before writing anything: should this run be killed before
        // its first commit, the next one must still know where the output stood.
        committer.commit(start, 0, 0)?;
    }

    let input: Box<dyn Read + Send> = if seekable {
        input.seek(SeekFrom::Start(start.offset)).map_err(Error::Read)?;
        Box::new(input)
    } else {
        // A pipe cannot seek: replay the prefix we took, then read past the committed part.
        let mut stream = io::Cursor::new(prefix).chain(input);
        let skipped =
            io::copy(&mut stream.by_ref().take(start.offset), &mut io::sink()).map_err(Error::Read)?;
        if skipped < start.offset {
            tracing::warn!(
                "the input ended before the committed point ({} of {} bytes): nothing new",
                skipped,
                start.offset
            );
        }
        Box::new(stream)
    };
    Ok((input, start, committer))
}

/// Truncates `sink` back to `committed` bytes, refusing if it is shorter.
fn cut_back(sink: &mut FileSink, committed: u64, checkpoint: &Path) -> Result<(), Error> {
    let unusable = |source| Error::Checkpoint {
        path: checkpoint.to_owned(),
        source,
    };
    let len = sink.size().map_err(unusable)?;
    if len < committed {
        return Err(unusable(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is shorter ({len} bytes) than at the last commit ({committed}): it was changed outside ingest; remove the checkpoint to start over",
                sink.describe()
            ),
        )));
    }
    if len > committed {
        tracing::info!(
            "removing {} bytes written after the last commit from {}",
            len - committed,
            sink.describe()
        );
        sink.truncate(committed).map_err(unusable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_survives_a_round_trip_through_its_file_format() {
        let state = State {
            fingerprint: Fingerprint::of(b"2026-04-15T00:00:01Z INFO started\n"),
            input: Position {
                offset: 123_456,
                lines: 789,
            },
            output_bytes: 42,
            rejects_bytes: Some(7),
        };
        assert_eq!(State::parse(&state.render()), Some(state));
        let no_rejects = State {
            rejects_bytes: None,
            ..state
        };
        assert_eq!(State::parse(&no_rejects.render()), Some(no_rejects));
        assert_eq!(State::parse("something else\n"), None);
    }

    #[test]
    fn a_fingerprint_matches_a_grown_input_but_not_a_different_or_shorter_one() {
        let fp = Fingerprint::of(b"first line\n");
        assert!(fp.matches(b"first line\nsecond line\n"));
        assert!(!fp.matches(b"other line\n"));
        assert!(!fp.matches(b"first"));
    }
}
