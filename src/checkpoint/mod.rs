//! `--checkpoint PATH`: exactly-once runs over the same (possibly growing) input.
//!
//! A checkpoint says which input it belongs to (a fingerprint of its first bytes, and the file's
//! identity), how much of it is committed (bytes and lines), which OUTPUT and rejects file it
//! writes (device, inode, path) and how long they were at that commit, and whether the run that
//! wrote it finished. The writer commits (files fsynced first, then the checkpoint replaced
//! atomically); at start, [`resume`] squares the files with the commit and skips the committed
//! input.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::atomic;
use crate::error::Error;
use crate::output::{AppendFile, Writable};
use crate::record::RejectReason;

pub mod journal;
pub mod position;
pub mod set;

pub use position::{CONTEXT_BYTES, FINGERPRINT_BYTES, Fingerprint, Position};
use position::{escape, unescape};
use set::Or;
pub use set::{At, Done};

/// How the writer records its progress; [`Committer`] (the checkpoint file) in a real run.
///
/// The writer calls [`Commit::start_writing`] before its first byte, and [`Commit::commit`] only
/// after syncing every byte the commit names.
pub trait Commit: Send + std::fmt::Debug {
    /// Marks the checkpoint "a run is writing": bytes past its lengths may be this run's.
    /// `output_written`: the sink's committed length now (where a subject's mark stands
    /// before this run's first message).
    ///
    /// # Errors
    /// When the checkpoint cannot be written.
    fn start_writing(&mut self, output_written: u64) -> Result<(), Error>;

    /// True when `written` more bytes make a commit due.
    fn due(&mut self, written: u64) -> bool;

    /// Records that the input up to `input` is settled and the files are this long, synced;
    /// `finished` at the end of a run that wrote everything it read.
    ///
    /// # Errors
    /// When the checkpoint cannot be written.
    fn commit(
        &mut self,
        input: Position,
        output_bytes: u64,
        rejects_bytes: u64,
        finished: bool,
    ) -> Result<(), Error>;

    /// Keeps the layout `--input auto` picked, written with the next commit, so that reruns on
    /// the same input read it the same way.
    fn keep_layout(&mut self, _name: &str) {}

    /// When a commit falls due by time alone: a writer left idle with settled records commits
    /// then, instead of at its next batch, which may never come.
    fn due_at(&self) -> Option<Instant> {
        None
    }

    /// The files' lengths as they are, synced, just before a commit (`None`: not a file). Where
    /// one differs from what this run wrote to it (emptied by `copytruncate` while written),
    /// the commit names it as it is, so that a rerun finds what the checkpoint says.
    fn lengths_are(&mut self, _output: Option<u64>, _rejects: Option<u64>) {}

    /// A batch of `lines` input lines is written: the input is settled up to `end` (many logs:
    /// in the log and file `at` names). Called for every batch, before the commit that covers
    /// it.
    fn settled(&mut self, _end: Position, _at: Option<At>, _lines: u64) {}
}

/// Where a run starts, and how it commits: what [`resume`] found.
#[derive(Debug, Default)]
pub struct Resume {
    /// Where in the input reading starts.
    pub start: Position,
    /// Input bytes to read and discard before the first line (a pipe cannot seek).
    pub skip: u64,
    /// Input already read while recognising it; handed out before anything else, even when a
    /// drain began meanwhile (it was read).
    pub preread: Bytes,
    /// With `--checkpoint`: commits the writer's progress.
    pub committer: Option<Box<dyn Commit>>,
    /// Bytes of a rotated-away input that were never read (README, "Rotation").
    pub rotated_unread_bytes: u64,
    /// Who publishes this input (see [`crate::nats::message::Publisher`]); 0 without a checkpoint.
    pub source: u64,
    /// The layout `--input auto` picked for this input in an earlier run, kept for reruns.
    pub layout: Option<String>,
}

/// Which file: device and inode (what it is), and its absolute path (where it was).
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    path: PathBuf,
}

/// As the checkpoint writes it: `DEV:INO PATH`.
impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            DevIno(self.dev, self.ino),
            escape(self.path.as_os_str())
        )
    }
}

impl FileId {
    fn parse(text: &str) -> Option<FileId> {
        let (id, path) = text.split_once(' ')?;
        let (dev, ino) = id.split_once(':')?;
        Some(FileId {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
            path: PathBuf::from(unescape(path)?),
        })
    }
}

/// A device and inode as the checkpoint writes them: `DEV:INO`.
struct DevIno(u64, u64);

impl std::fmt::Display for DevIno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// `None` for `-`, the checkpoint's "none".
fn optional(value: &str) -> Option<&str> {
    (value != "-").then_some(value)
}

/// One written file as the checkpoint knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Written {
    /// `None` in a version-1 checkpoint, which did not record it.
    id: Option<FileId>,
    /// Its length at the commit.
    bytes: u64,
}

/// The committed state, as stored in the checkpoint file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    fingerprint: Fingerprint,
    /// The input file's device and inode, when it is a file.
    input_id: Option<(u64, u64)>,
    input: Position,
    output: Written,
    rejects: Option<Written>,
    /// The run that wrote this ended after writing everything it read: nothing in the files
    /// past these lengths is its.
    finished: bool,
    /// Who publishes this input, for a NATS OUTPUT: the same for every rerun on the same
    /// input, so that a rerun recognises its own messages. 0 in older checkpoints.
    source: u64,
    /// The layout `--input auto` picked for this input; empty when none was (older
    /// checkpoints, or a layout given by name).
    layout: String,
    /// `--from PATH`: the files of the set, of which the input is the current one.
    set: Option<set::Set>,
}

const HEADER: &str = "ingest checkpoint 2";
const HEADER_V1: &str = "ingest checkpoint 1";

impl State {
    /// The checkpoint file's text: the header, the input's first lines, the head's, the rest.
    fn render(&self) -> String {
        let mut text = String::with_capacity(512);
        text.push_str(HEADER);
        text.push('\n');
        self.write_input(&mut text);
        self.write_head(&mut text);
        self.write_rest(&mut text);
        text
    }

    // Each part written in place: a commit writes the entry of every log it moves, and a
    // first run over many logs the entry of each.

    /// The input's first lines: its first bytes' fingerprint, its identity, the position.
    fn write_input(&self, text: &mut String) {
        let input_id = self.input_id.map(|(dev, ino)| DevIno(dev, ino));
        let _ = writeln!(
            text,
            "fingerprint_bytes {}\nfingerprint {:016x}\ninput_file {}\ninput_bytes {}\ninput_lines {}",
            self.fingerprint.len,
            self.fingerprint.hash,
            Or(input_id),
            self.input.offset,
            self.input.lines,
        );
    }

    /// The files' lines, which hold for every log of a journal: OUTPUT's and the rejects file's,
    /// and whether the run that wrote them finished.
    fn write_head(&self, text: &mut String) {
        let _ = writeln!(
            text,
            "output_bytes {}\noutput_file {}\nrejects_bytes {}\nrejects_file {}\nfinished {}",
            self.output.bytes,
            Or(self.output.id.as_ref()),
            Or(self.rejects.as_ref().map(|w| w.bytes)),
            Or(self.rejects.as_ref().and_then(|w| w.id.as_ref())),
            u8::from(self.finished),
        );
    }

    /// The input's other lines: its publisher, layout, what its position is inside, its set.
    fn write_rest(&self, text: &mut String) {
        let _ = writeln!(text, "source {:016x}", self.source);
        if !self.layout.is_empty() {
            let _ = writeln!(text, "layout {}", self.layout);
        }
        if let Some(reason) = self.input.continues {
            let _ = writeln!(text, "record_continues {reason}");
        }
        if self.input.skipping != 0 {
            let _ = writeln!(text, "pieces_skipped {}", self.input.skipping);
        }
        if let Some(context) = self.input.context {
            let _ = writeln!(text, "input_context {context}");
        }
        if let Some(set) = &self.set {
            set.write(self.current(), text);
        }
    }

    /// What the input fields say of the input: a file set's current file.
    fn current(&self) -> set::Current {
        set::Current {
            input: self.input,
            head: self.fingerprint,
            source: self.source,
        }
    }

    /// Makes `current` what the input fields say.
    fn set_current(&mut self, current: set::Current) {
        self.input = current.input;
        self.fingerprint = current.head;
        self.source = current.source;
    }

    fn parse(text: &str) -> Option<State> {
        let mut lines = text.lines();
        let version = match lines.next()? {
            HEADER => 2,
            HEADER_V1 => 1,
            _ => return None,
        };
        let mut field = |name: &str| -> Option<&str> {
            let (key, value) = lines.next()?.split_once(' ')?;
            (key == name).then_some(value)
        };
        let fingerprint_len = field("fingerprint_bytes")?.parse().ok()?;
        let hash = u64::from_str_radix(field("fingerprint")?, 16).ok()?;
        let input_id = if version == 2 {
            match optional(field("input_file")?) {
                Some(id) => {
                    let (dev, ino) = id.split_once(':')?;
                    Some((dev.parse().ok()?, ino.parse().ok()?))
                }
                None => None,
            }
        } else {
            None
        };
        let offset = field("input_bytes")?.parse().ok()?;
        let lines_done = field("input_lines")?.parse().ok()?;
        let output_bytes = field("output_bytes")?.parse().ok()?;
        let output_id = if version == 2 {
            Some(FileId::parse(field("output_file")?)?)
        } else {
            None
        };
        let rejects_bytes: Option<u64> = match optional(field("rejects_bytes")?) {
            Some(n) => Some(n.parse().ok()?),
            None => None,
        };
        let rejects_id = if version == 2 {
            optional(field("rejects_file")?).map(FileId::parse)
        } else {
            None
        };
        let finished = version == 2 && field("finished")? == "1";
        // Added within version 2, each absent from checkpoints written before it: `source`
        // (NATS outputs), `layout` (--input), `record_continues` (--multiline's rejected
        // continuations), `pieces_skipped` (a container's line too long), `input_context`, and
        // the set's lines (`--from PATH`). Read by name, in any order.
        let mut source = 0;
        let mut layout = String::new();
        let mut continues = None;
        let mut skipping = 0;
        let mut context = None;
        let mut set = set::Parsing::default();
        for line in lines {
            match line.split_once(' ')? {
                ("source", hex) => source = u64::from_str_radix(hex, 16).ok()?,
                ("layout", name) => name.clone_into(&mut layout),
                ("record_continues", reason) => {
                    continues = Some(*RejectReason::ALL.iter().find(|r| r.as_str() == reason)?);
                }
                ("pieces_skipped", bits) => skipping = bits.parse().ok().filter(|&b: &u8| b <= 3)?,
                ("input_context", value) => context = Some(Fingerprint::parse(value)?),
                (key, value) => set.line(key, value)?,
            }
        }
        let state = State {
            fingerprint: Fingerprint {
                len: fingerprint_len,
                hash,
            },
            input_id,
            input: Position {
                offset,
                lines: lines_done,
                continues,
                skipping,
                context,
            },
            output: Written {
                id: output_id,
                bytes: output_bytes,
            },
            rejects: rejects_bytes.map(|bytes| Written {
                id: rejects_id.flatten(),
                bytes,
            }),
            finished,
            source,
            layout,
            set: set.finish()?,
        };
        state.is_sane().then_some(state)
    }

    /// What a run could have written: a hand edit that breaks it would wrap line numbers or
    /// point past any real file.
    fn is_sane(&self) -> bool {
        const MAX: u64 = i64::MAX as u64;
        self.fingerprint.len <= FINGERPRINT_BYTES as u64
            && self.input.lines <= self.input.offset
            && self.input.offset <= MAX
            && self.output.bytes <= MAX
            && self.rejects.as_ref().is_none_or(|r| r.bytes <= MAX)
    }

    fn load(path: &Path) -> Result<Option<State>, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(unusable(path, source)),
        };
        State::parse(&text).map(Some).ok_or_else(|| {
            unusable(
                path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not an ingest checkpoint, or edited out of shape: remove it to start over",
                ),
            )
        })
    }

    /// Replaces the checkpoint atomically: temporary file, fsync, rename, fsync the directory.
    fn save(&self, path: &Path) -> Result<(), Error> {
        atomic::write(path, self.render().as_bytes()).map_err(|source| unusable(path, source))
    }

    /// A log nothing was read of yet.
    fn fresh() -> State {
        State {
            fingerprint: Fingerprint::of(b""),
            input_id: None,
            input: Position::default(),
            output: Written { id: None, bytes: 0 },
            rejects: None,
            finished: true,
            source: 0,
            layout: String::new(),
            set: None,
        }
    }

    /// Its lines as a journal keeps them: the head (the files', shared by every log) and the
    /// log's entry.
    fn split(&self) -> (String, String) {
        let mut head = String::with_capacity(256);
        self.write_head(&mut head);
        let mut entry = String::with_capacity(512);
        self.write_input(&mut entry);
        self.write_rest(&mut entry);
        (head, entry)
    }

    /// [`State::split`] undone; `None` when the lines do not make a state.
    fn join(head: &str, entry: &str) -> Option<State> {
        // The input's five fixed lines come before the head's, as in a checkpoint file.
        let mut lines = entry.lines();
        let mut text = format!("{HEADER}\n");
        for line in lines.by_ref().take(5) {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(head);
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        State::parse(&text)
    }
}

fn unusable(path: &Path, source: io::Error) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        source,
    }
}

fn refuse(path: &Path, message: String) -> Error {
    unusable(path, io::Error::new(io::ErrorKind::InvalidData, message))
}

/// The checkpoint many logs share (`--from GLOB --checkpoint PATH`): a journal whose head
/// (OUTPUT's and the rejects file's lengths, and whether a run is writing) holds for all logs,
/// and an entry per log (see [`journal`]). Made at the first save when there is none.
#[derive(Clone, Debug)]
pub struct Shared {
    path: PathBuf,
    journal: Arc<Mutex<Option<journal::Journal>>>,
    /// There was no checkpoint: this run makes it (what `--start-at end` is for).
    new: bool,
}

impl Shared {
    /// The checkpoint at `path`: its journal, or a journal made from a checkpoint of one
    /// `--from PATH` (which becomes that log's entry), or none yet.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when it cannot be read, or belongs to standard input.
    pub fn open(path: &Path) -> Result<Shared, Error> {
        let shared = |journal: Option<journal::Journal>| Shared {
            path: path.to_owned(),
            new: journal.is_none(),
            journal: Arc::new(Mutex::new(journal)),
        };
        if let Some(journal) = journal::Journal::open(path).map_err(|e| unusable(path, e))? {
            return Ok(shared(Some(journal)));
        }
        let Some(state) = State::load(path)? else {
            return Ok(shared(None));
        };
        let Some(set) = &state.set else {
            return Err(refuse(
                path,
                "it was made for standard input, not --from: give each input its own checkpoint".to_owned(),
            ));
        };
        let key = set.path().to_string_lossy().into_owned();
        let (head, entry) = state.split();
        let journal = journal::Journal::create(path, &head, std::iter::once((key, entry)).collect())
            .map_err(|e| unusable(path, e))?;
        tracing::info!(
            "{}: now the checkpoint of many logs (it was of one)",
            path.display()
        );
        Ok(shared(Some(journal)))
    }

    /// The logs it knows, by path.
    pub fn logs(&self) -> Vec<PathBuf> {
        lock(&self.journal)
            .as_ref()
            .map_or_else(Vec::new, |j| j.entries().keys().map(PathBuf::from).collect())
    }

    /// Where the log at `path` is read to in the file it is reading: that file's inode, and
    /// the offset; `None` when it knows no such file.
    pub fn read_to(&self, path: &Path) -> Option<(u64, u64)> {
        let state = self.load(Some(path)).ok()??;
        let ino = match &state.set {
            Some(set) => set.current_ino(),
            None => state.input_id?.1,
        };
        Some((ino, state.input.offset))
    }

    /// The state of the log at `path`, `None` when it does not know it; with `None`, the
    /// head (the files' lengths) as a state of nothing read, `None` while there is no journal.
    fn load(&self, path: Option<&Path>) -> Result<Option<State>, Error> {
        let journal = lock(&self.journal);
        let Some(journal) = journal.as_ref() else {
            return Ok(None);
        };
        let key = path.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let entry = match (journal.entries().get(&key), path) {
            (Some(entry), _) => entry.clone(),
            (None, Some(_)) => return Ok(None),
            (None, None) => State::fresh().split().1,
        };
        State::join(journal.head(), &entry).map(Some).ok_or_else(|| {
            refuse(
                &self.path,
                format!("its entry for '{key}' is out of shape: remove it to start over"),
            )
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change to the journal is whole or not made: a panic cannot leave half of one.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Commits the writer's progress every few MiB or seconds, and at the end.
#[derive(Debug)]
pub struct Committer {
    path: PathBuf,
    /// Many logs in one pipeline: their states, the writer's progress applied batch by batch.
    many: Option<Logs>,
    /// What is on disk now (or will be at the first save); `finished: false` there means a
    /// run is writing.
    state: State,
    /// What the files' lengths are at a commit: their length at an anchor (when this run
    /// started writing, or when a file was found other than this run left it), plus what this
    /// run wrote since (its count of bytes written was at `.1` then).
    output_base: (u64, u64),
    rejects_base: Option<(u64, u64)>,
    /// The files' lengths as they are, for the next commit (see [`Commit::lengths_are`]).
    real: (Option<u64>, Option<u64>),
    /// Output bytes since the last commit.
    pending: u64,
    every_bytes: u64,
    last: Instant,
}

impl Committer {
    /// Commit at least this often, in time.
    const EVERY: Duration = Duration::from_secs(2);

    /// A committer that starts from `state`, whose file lengths are where this run's writing
    /// begins.
    fn new(path: &Path, state: State, every_bytes: u64) -> Committer {
        Committer {
            path: path.to_owned(),
            many: None,
            output_base: (state.output.bytes, 0),
            rejects_base: state.rejects.as_ref().map(|r| (r.bytes, 0)),
            real: (None, None),
            state,
            pending: 0,
            every_bytes,
            last: Instant::now(),
        }
    }

    fn save(&mut self, finished: bool) -> Result<(), Error> {
        self.state.finished = finished;
        match self.many.as_mut() {
            Some(logs) => logs.save(&self.state)?,
            None => self.state.save(&self.path)?,
        }
        self.pending = 0;
        self.last = Instant::now();
        Ok(())
    }
}

impl Commit for Committer {
    fn keep_layout(&mut self, name: &str) {
        name.clone_into(&mut self.state.layout);
    }

    fn start_writing(&mut self, output_written: u64) -> Result<(), Error> {
        if !self.state.finished {
            return Ok(());
        }
        self.state.output.bytes = anchored(&mut self.output_base, output_written, None, "OUTPUT");
        self.save(false)
    }

    fn due(&mut self, written: u64) -> bool {
        self.pending += written;
        self.pending >= self.every_bytes || self.last.elapsed() >= Self::EVERY
    }

    fn due_at(&self) -> Option<Instant> {
        Some(self.last + Self::EVERY)
    }

    fn lengths_are(&mut self, output: Option<u64>, rejects: Option<u64>) {
        self.real = (output, rejects);
    }

    fn settled(&mut self, end: Position, at: Option<At>, lines: u64) {
        if let (Some(logs), Some(at)) = (self.many.as_mut(), at) {
            logs.settled(end, at, lines > 0);
        }
    }

    fn commit(
        &mut self,
        input: Position,
        output_written: u64,
        rejects_written: u64,
        finished: bool,
    ) -> Result<(), Error> {
        if self.many.is_none() {
            self.state.input = input;
        }
        let (output_real, rejects_real) = std::mem::take(&mut self.real);
        self.state.output.bytes = anchored(&mut self.output_base, output_written, output_real, "OUTPUT");
        if let (Some(rejects), Some(base)) = (self.state.rejects.as_mut(), self.rejects_base.as_mut()) {
            rejects.bytes = anchored(base, rejects_written, rejects_real, "the rejects file");
        }
        self.save(finished)
    }
}

/// A file's length at a commit, from its `base` (length, and bytes written then) and the bytes
/// written by now; re-anchored on `real`, its length as it is, where that differs.
fn anchored(base: &mut (u64, u64), written: u64, real: Option<u64>, name: &str) -> u64 {
    let expected = base.0 + (written - base.1);
    match real {
        Some(real) if real != expected => {
            tracing::info!(
                "{name} is {real} bytes long, not the {expected} this run accounts for: emptied while written (rotated with copytruncate?) or appended to by another program; going on from its length as it is"
            );
            *base = (real, written);
            real
        }
        _ => expected,
    }
}

/// Where this run's records go, as [`resume`] needs to know it.
pub enum Output<'a> {
    /// A file, which a rerun cuts back to the committed length.
    File(Target<'a>),
    /// A NATS subject: nothing to cut back; the stream itself says what it holds.
    Nats {
        /// The subject records are published on.
        subject: &'a str,
    },
    /// Standard output (a collector's `-`): nothing to cut back.
    Pipe,
}

/// A file this run writes, as [`resume`] needs it.
pub struct Target<'a> {
    /// The open, locked file.
    pub sink: &'a mut AppendFile,
    /// Its path as given.
    pub path: &'a Path,
}

impl Target<'_> {
    fn id(&self) -> io::Result<FileId> {
        let (dev, ino) = self.sink.id()?;
        Ok(FileId {
            dev,
            ino,
            path: fs::canonicalize(self.path)?,
        })
    }
}

/// What squaring one file with the checkpoint takes: its state afterwards, and how many bytes a
/// killed run of this checkpoint left after its last commit (to cut off).
struct Plan {
    written: Written,
    cut: u64,
}

/// Plans how to square one file with what the checkpoint says of it: cut back what a killed run
/// of this checkpoint wrote after its last commit, and never touch bytes that are not its own.
/// Only plans, so that a refusal for either file leaves both untouched.
fn reconcile(
    checkpoint: &Path,
    target: &Target<'_>,
    known: Option<&Written>,
    finished: bool,
) -> Result<Plan, Error> {
    let failed = |source| unusable(checkpoint, source);
    let id = target.id().map_err(failed)?;
    let len = target.sink.size().map_err(failed)?;
    let name = target.sink.describe();
    let fresh = |id, bytes| Plan {
        written: Written { id: Some(id), bytes },
        cut: 0,
    };
    let Some(known) = known else {
        return Ok(fresh(id, len));
    };
    if let Some(was) = &known.id {
        if was.path != id.path {
            return Err(refuse(
                checkpoint,
                format!(
                    "it was made for '{}', not {name}: give each output its own checkpoint, or remove this one to start over",
                    was.path.display()
                ),
            ));
        }
        // By inode, not device: a file's device number can differ after a reboot or a remount
        // (FUSE, NFS, btrfs subvolumes, LVM volumes activated in another order).
        if was.ino != id.ino {
            tracing::info!("{name} is a new file since the last run (rotated?): appending to it");
            return Ok(fresh(id, len));
        }
    }
    let committed = known.bytes;
    if len < committed {
        if len == 0 {
            tracing::info!("{name} was emptied since the last run (rotated?): starting it afresh");
            return Ok(fresh(id, 0));
        }
        return Err(refuse(
            checkpoint,
            format!(
                "{name} is shorter ({len} bytes) than at the last commit ({committed}): it was changed outside ingest; remove the checkpoint to start over"
            ),
        ));
    }
    if len > committed && finished {
        // The run that committed ended cleanly: these bytes are someone else's, never cut them.
        if target.sink.last_byte().map_err(failed)? != Some(b'\n') {
            return Err(refuse(
                checkpoint,
                format!(
                    "{name} ends in a partial line written by another program or job after this checkpoint's last run: let that writer finish (or rerun it) first"
                ),
            ));
        }
        tracing::warn!(
            "{} bytes were appended to {name} by another program or job since this checkpoint's last run: kept",
            len - committed
        );
        return Ok(fresh(id, len));
    }
    Ok(Plan {
        written: Written {
            id: Some(id),
            bytes: committed,
        },
        cut: len - committed,
    })
}

/// Squares an OUTPUT that cannot be cut back (`nats:SUBJECT`, or `-`) with the checkpoint:
/// nothing to cut, but a checkpoint made for another output is refused as for a file. A
/// subject's length is the stream sequence many logs read back from (see
/// [`crate::sink::jetstream::Files::mark`]): kept.
fn reconcile_subject(checkpoint: &Path, subject: &str, known: Option<&Written>) -> Result<Plan, Error> {
    let id = FileId {
        dev: 0,
        ino: 0,
        path: PathBuf::from(subject),
    };
    if let Some(was) = known.and_then(|k| k.id.as_ref())
        && was.path != id.path
    {
        return Err(refuse(
            checkpoint,
            format!(
                "it was made for '{}', not '{subject}': give each output its own checkpoint, or remove this one to start over",
                was.path.display()
            ),
        ));
    }
    let bytes = match known {
        Some(known) if subject.starts_with("nats:") => known.bytes,
        _ => 0,
    };
    Ok(Plan {
        written: Written { id: Some(id), bytes },
        cut: 0,
    })
}

/// A new publisher identity (for a NATS OUTPUT's messages): differs between hosts, processes and
/// instants. A checkpoint keeps one per input; a run without a checkpoint takes a new one.
pub fn new_source() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!(
        "{}:{}:{}",
        crate::os::host_name(),
        std::process::id(),
        now.as_nanos()
    );
    Fingerprint::of(seed.as_bytes()).hash.max(1)
}

/// Carries out a [`Plan`]: cuts the file back to the committed length.
fn apply(checkpoint: &Path, target: &mut Target<'_>, plan: Plan) -> Result<Written, Error> {
    if plan.cut > 0 {
        tracing::info!(
            "removing {} bytes from {} that a run stopped before its next commit had written",
            plan.cut,
            target.sink.describe()
        );
        let committed = plan.written.bytes;
        target
            .sink
            .truncate(committed)
            .map_err(|source| unusable(checkpoint, source))?;
    }
    Ok(plan.written)
}

/// The input's first bytes, and the input itself when it is still there to read from.
struct Prefix {
    bytes: Vec<u8>,
    rest: Option<File>,
    size: Option<u64>,
}

/// Reads up to `FINGERPRINT_BYTES` from the start of the input (fewer only at its end). A pipe
/// may take long to give them (`tail -f`): a drain meanwhile keeps what came and stops waiting.
async fn read_prefix(input: File, drain: &CancellationToken) -> Result<Prefix, Error> {
    let meta = input.metadata().map_err(Error::Read)?;
    if meta.is_file() {
        let size = meta.len();
        let mut bytes = vec![0; FINGERPRINT_BYTES.min(size as usize)];
        input.read_exact_at(&mut bytes, 0).map_err(Error::Read)?;
        return Ok(Prefix {
            bytes,
            rest: Some(input),
            size: Some(size),
        });
    }
    let got = Arc::new(Mutex::new(Vec::with_capacity(FINGERPRINT_BYTES)));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let filling = Arc::clone(&got);
    std::thread::Builder::new()
        .name("ingest-prefix".into())
        .spawn(move || {
            let mut input = input;
            let mut chunk = [0; FINGERPRINT_BYTES];
            let result = loop {
                let have = filling.lock().map_or(FINGERPRINT_BYTES, |g| g.len());
                if have == FINGERPRINT_BYTES {
                    break Ok(());
                }
                match input.read(&mut chunk[..FINGERPRINT_BYTES - have]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        if let Ok(mut g) = filling.lock() {
                            g.extend_from_slice(&chunk[..n]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            let _ = done_tx.send(result.map(|()| input));
        })
        .map_err(Error::Read)?;
    let rest = tokio::select! {
        done = done_rx => {
            let gone = || io::Error::other("the thread reading the input's first bytes stopped");
            Some(done.map_err(|_| Error::Read(gone()))?.map_err(Error::Read)?)
        }
        // Drained while waiting: what arrived before the signal is still processed.
        () = drain.cancelled() => None,
    };
    let bytes = std::mem::take(&mut *got.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Prefix {
        bytes,
        rest,
        size: None,
    })
}

/// The input's device and inode, and its path, when it is a file.
fn input_identity(input: &File) -> Option<((u64, u64), PathBuf)> {
    use std::os::fd::AsRawFd;
    let meta = input.metadata().ok().filter(|m| m.is_file())?;
    let path = fs::read_link(format!("/proc/self/fd/{}", input.as_raw_fd())).ok()?;
    Some(((meta.dev(), meta.ino()), path))
}

/// Looks beside the new input for the file the checkpoint was reading (renamed by rotation) and
/// returns its path and how many of its bytes were never read.
fn unread_rotated(was: (u64, u64), committed: u64, input_path: &Path) -> Option<(PathBuf, u64)> {
    for entry in fs::read_dir(atomic::parent(input_path)).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && (meta.dev(), meta.ino()) == was {
            return Some((entry.path(), meta.len().saturating_sub(committed)));
        }
    }
    None
}

/// How a checkpointed run treats its input.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Commit at least every this many output bytes.
    pub every_bytes: u64,
    /// Read the input only if it continues the checkpoint's (`--continue-only`).
    pub continue_only: bool,
}

/// A run that reads nothing: the committed state stays as it was, less what [`reconcile`] did
/// to the files.
fn read_nothing(
    path: &Path,
    state: Option<&State>,
    output: &Written,
    rejects: Option<&Written>,
    every_bytes: u64,
) -> (Box<dyn Read + Send>, Resume) {
    let committer = state.map(|s| {
        let state = State {
            output: output.clone(),
            rejects: rejects.cloned(),
            ..s.clone()
        };
        Box::new(Committer::new(path, state, every_bytes)) as Box<dyn Commit>
    });
    let start = state.map_or_else(Position::default, |s| s.input);
    let resume = Resume {
        start,
        committer,
        source: state.map_or(0, |s| s.source),
        layout: state.map(|s| s.layout.clone()).filter(|l| !l.is_empty()),
        ..Resume::default()
    };
    (Box::new(io::empty()), resume)
}

/// Squares OUTPUT and the rejects file with the last commit: a killed run's torn tail goes. Both
/// are checked before either is touched. Returns what the checkpoint now says of each.
fn square_files(
    path: &Path,
    state: Option<&State>,
    mut output: Output<'_>,
    rejects: Option<Target<'_>>,
) -> Result<(Written, Option<Written>), Error> {
    let finished = state.is_some_and(|s| s.finished);
    let known_output = state.map(|s| &s.output);
    let output_plan = match &output {
        Output::File(target) => reconcile(path, target, known_output, finished)?,
        Output::Nats { subject } => reconcile_subject(path, &format!("nats:{subject}"), known_output)?,
        Output::Pipe => reconcile_subject(path, "-", known_output)?,
    };
    let rejects_plan = match &rejects {
        Some(target) => {
            let known = state.and_then(|s| s.rejects.as_ref());
            Some(reconcile(path, target, known, finished)?)
        }
        None => None,
    };
    let output_now = match &mut output {
        Output::File(target) => apply(path, target, output_plan)?,
        Output::Nats { .. } | Output::Pipe => output_plan.written,
    };
    let rejects_now = match (rejects, rejects_plan) {
        (Some(mut target), Some(plan)) => Some(apply(path, &mut target, plan)?),
        _ => None,
    };
    Ok((output_now, rejects_now))
}

/// Prepares a collector's run (`--from`): squares OUTPUT and the rejects file with the last
/// commit, as [`resume`] does. `stream` names what is collected (stream and consumer); a
/// checkpoint made for anything else is refused.
///
/// Returns the [`Resume`], whose `start.offset` is the stream sequence of the last message
/// committed, and that sequence again when the checkpoint had one (`None` when it is new).
///
/// # Errors
/// [`Error::Checkpoint`] as for [`resume`].
pub fn resume_stream(
    path: &Path,
    stream: &str,
    output: Output<'_>,
    rejects: Option<Target<'_>>,
    every_bytes: u64,
) -> Result<(Resume, Option<u64>), Error> {
    let state = State::load(path)?;
    let fingerprint = Fingerprint::of(stream.as_bytes());
    if let Some(state) = &state
        && state.fingerprint != fingerprint
    {
        return Err(refuse(
            path,
            format!(
                "it was made for another input, not {stream}: give each run its own checkpoint, or remove this one to start over"
            ),
        ));
    }
    let (output, rejects) = square_files(path, state.as_ref(), output, rejects)?;
    let start = state.as_ref().map_or_else(Position::default, |s| s.input);
    let state = State {
        fingerprint,
        input_id: None,
        input: start,
        output,
        rejects,
        finished: true,
        source: 0,
        layout: String::new(),
        set: None,
    };
    let committed = (state.input.offset > 0).then_some(state.input.offset);
    let resume = Resume {
        start,
        committer: Some(Box::new(Committer::new(path, state, every_bytes))),
        ..Resume::default()
    };
    Ok((resume, committed))
}

/// `--from PATH`: plans a run over the set at `set_path` (its files now: `candidates`, oldest
/// first): squares OUTPUT and the rejects file with the checkpoint at `path`, matches what the
/// checkpoint read to the files there now (see [`set`]), and saves what it learnt; unless a
/// file could not be looked into ([`set::Plan::unsure`]) and `sure` is false: then nothing is
/// saved, and the set is to be listed again.
///
/// # Errors
/// [`Error::Checkpoint`] as for [`resume`], and for a checkpoint made for standard input or
/// another set.
pub fn plan_set(
    path: &Path,
    set_path: &Path,
    candidates: &mut [impl set::Candidate],
    output: Output<'_>,
    rejects: Option<Target<'_>>,
    sure: bool,
    start_at_end: bool,
) -> Result<set::Plan, Error> {
    let loaded = State::load(path)?;
    if let Some(state) = &loaded {
        match &state.set {
            None => {
                return Err(refuse(
                    path,
                    format!(
                        "it was made for standard input, not --from '{}': give each input its own checkpoint",
                        set_path.display()
                    ),
                ));
            }
            Some(set) if set.path() != set_path => {
                return Err(refuse(
                    path,
                    format!(
                        "it was made for --from '{}', not '{}': give each input its own checkpoint, or remove this one to start over",
                        set.path().display(),
                        set_path.display()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let (output, rejects) = square_files(path, loaded.as_ref(), output, rejects)?;
    let (entries, was_current) = known_files(loaded.as_ref());
    let (mut files, mut plan, current) = set::arrange(&entries, was_current, candidates);
    if start_at_end && loaded.is_none() {
        set::at_end(&mut files, &mut plan, candidates);
    }
    tracing::debug!(
        "the set as the checkpoint knew it: {entries:?} (current {was_current:?}); now: {files:?}; plan: {plan:?}"
    );
    if plan.unsure && !sure {
        return Ok(plan);
    }
    if files.is_empty() {
        // No file there now: what is lost is said once, the next run knows it.
        if let Some(mut state) = loaded.filter(|_| !plan.lost.is_empty()) {
            let current = state.current();
            if let Some(set) = state.set.as_mut() {
                set.all_gone(current);
            }
            state.save(path)?;
        }
        return Ok(plan);
    }
    let mut state = loaded.clone().unwrap_or_else(|| State {
        fingerprint: Fingerprint::of(b""),
        input_id: None,
        input: Position::default(),
        output: output.clone(),
        rejects: rejects.clone(),
        finished: true,
        source: 0,
        layout: String::new(),
        set: None,
    });
    state.output = output;
    state.rejects = rejects;
    state.finished = true;
    let (mut set, index) = set_now(set_path, files, &plan, current);
    let now = set.current(new_source);
    if current != Some(index) {
        state.layout.clear();
    }
    state.set_current(now);
    state.set = Some(set);
    if loaded.as_ref() != Some(&state) {
        state.save(path)?;
    }
    Ok(plan)
}

/// The set of `files` (not empty) as planned: its current file the first to read, else the one
/// that was current, else the newest; and that file's index.
fn set_now(
    path: &Path,
    files: Vec<set::Entry>,
    plan: &set::Plan,
    current: Option<usize>,
) -> (set::Set, usize) {
    let index = plan
        .steps
        .first()
        .map(|&(c, _)| c)
        .or(current)
        .unwrap_or(files.len() - 1);
    (set::Set::new(path.to_owned(), files, index), index)
}

/// The files of the set `state` knows (none without one), and which of them is current.
fn known_files(state: Option<&State>) -> (Vec<set::Entry>, Option<usize>) {
    match state.and_then(|s| Some((s.set.as_ref()?, s))) {
        Some((set, state)) => {
            let (files, current) = set.entries(state.current());
            (files, Some(current))
        }
        None => (Vec::new(), None),
    }
}

/// `--from PATH`: prepares the run over file `index` of the set (as [`plan_set`] listed them)
/// from what the checkpoint says now: squares OUTPUT and the rejects file, makes that file the
/// checkpoint's input, and returns where reading starts and the committer.
///
/// # Errors
/// [`Error::Checkpoint`] when the checkpoint cannot be read or written.
pub fn resume_in_set(
    path: &Path,
    index: usize,
    output: Output<'_>,
    rejects: Option<Target<'_>>,
    every_bytes: u64,
) -> Result<Resume, Error> {
    let changed = || {
        unusable(
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                "it changed while this run was using it",
            ),
        )
    };
    let mut state = State::load(path)?.ok_or_else(changed)?;
    let (output, rejects) = square_files(path, Some(&state), output, rejects)?;
    state.output = output;
    state.rejects = rejects;
    state.finished = true;
    let current = state.current();
    let set = state.set.as_mut().ok_or_else(changed)?;
    let (now, other) = set.switch(index, current, new_source).ok_or_else(changed)?;
    if other {
        state.layout.clear();
    }
    state.set_current(now);
    let input = now.input;
    Ok(Resume {
        start: input,
        source: state.source,
        layout: Some(state.layout.clone()).filter(|l| !l.is_empty()),
        committer: Some(Box::new(Committer::new(path, state, every_bytes))),
        ..Resume::default()
    })
}

/// `--from PATH`: records that file `index` of the set was read to its end as it was when
/// `seen`; `complete` when it was a rotated file (nothing more can come to it unseen). Not when
/// a plain file's last line, without newline, was left unread (`compressed`: its size says
/// nothing of that): it is read again once that line is final.
///
/// # Errors
/// [`Error::Checkpoint`] when the checkpoint cannot be read or written.
pub fn read_to_end(
    path: &Path,
    index: usize,
    seen: set::Seen,
    complete: bool,
    compressed: bool,
) -> Result<(), Error> {
    let Some(mut state) = State::load(path)? else {
        return Ok(());
    };
    let current = state.current();
    let Some(set) = state.set.as_mut() else {
        return Ok(());
    };
    if !compressed
        && set
            .read_of(index, current)
            .is_none_or(|read| read.offset < seen.size)
    {
        return Ok(());
    }
    if set.read_to_end(index, seen, complete) {
        state.save(path)?;
    }
    Ok(())
}

/// Prepares a checkpointed run: squares OUTPUT and the rejects file with the last commit (whatever
/// the input is now), recognises the input, and says where reading starts.
///
/// Returns the input to read from (after [`Resume::preread`]) and the [`Resume`].
///
/// # Errors
/// [`Error::Checkpoint`] when the checkpoint cannot be read or belongs to other files, or the
/// files were changed behind its back; [`Error::Read`] when the input cannot be read.
pub async fn resume(
    path: &Path,
    input: File,
    output: Output<'_>,
    rejects: Option<Target<'_>>,
    options: Options,
    drain: &CancellationToken,
) -> Result<(Box<dyn Read + Send>, Resume), Error> {
    let state = State::load(path)?;
    let (output_now, rejects_now) = square_files(path, state.as_ref(), output, rejects)?;

    let identity = input_identity(&input);
    let prefix = read_prefix(input, drain).await?;
    let nothing = |why: &str| {
        tracing::info!("{why}: nothing read");
        read_nothing(
            path,
            state.as_ref(),
            &output_now,
            rejects_now.as_ref(),
            options.every_bytes,
        )
    };
    if state
        .as_ref()
        .is_some_and(|s| prefix.rest.is_none() && (prefix.bytes.len() as u64) < s.fingerprint.len)
    {
        // Drained before the input could be told from the one committed: its lines may be the
        // committed ones. Read nothing, write nothing; the next run reads them.
        return Ok(nothing("stopped before the input could be recognised"));
    }
    let same_input = state.as_ref().filter(|s| {
        s.fingerprint.matches(&prefix.bytes) && prefix.size.is_none_or(|size| size >= s.input.offset)
    });
    if options.continue_only && same_input.is_none() {
        return Ok(nothing(&format!(
            "the input does not continue the one {} was reading (--continue-only)",
            path.display()
        )));
    }
    let mut rotated_unread_bytes = 0;
    if let (Some(s), None) = (&state, same_input) {
        let beside = s
            .input_id
            .zip(identity.as_ref())
            .filter(|(was, (now, _))| was != now)
            .and_then(|(was, (_, now_path))| unread_rotated(was, s.input.offset, now_path));
        match beside {
            Some((old, unread)) if unread > 0 => {
                rotated_unread_bytes = unread;
                // The checkpoint moves on to the new file: the old one's tail can only be read
                // by hand now, without it. `--from PATH` reads rotated files and avoids this.
                tracing::error!(
                    "the input was rotated, and {unread} bytes at the end of its previous file '{}' were never read: this run starts on the new file; read them by hand with `tail -c +{} '{}' | ingest ...` (without this checkpoint), and run with --from PATH instead of standard input to lose nothing next time (README, \"Rotation\")",
                    old.display(),
                    s.input.offset + 1,
                    old.display(),
                );
            }
            Some((old, _)) => tracing::info!(
                "the input was rotated ('{}' was read to its end): starting on the new file",
                old.display()
            ),
            None => tracing::warn!(
                "the input is not the one {} was made for (replaced, rotated or truncated): starting from its first line",
                path.display()
            ),
        }
    }
    let start = same_input.map_or_else(Position::default, |s| s.input);
    let source = same_input
        .map(|s| s.source)
        .filter(|&s| s != 0)
        .unwrap_or_else(new_source);

    let state = State {
        fingerprint: Fingerprint::of(&prefix.bytes),
        input_id: identity.map(|(id, _)| id),
        input: start,
        output: output_now,
        rejects: rejects_now,
        finished: true,
        source,
        layout: same_input.map(|s| s.layout.clone()).unwrap_or_default(),
        set: None,
    };
    let layout = Some(state.layout.clone()).filter(|l| !l.is_empty());
    let committer = Committer::new(path, state, options.every_bytes);

    let prefix_len = prefix.bytes.len() as u64;
    let (input, skip, preread): (Box<dyn Read + Send>, u64, Bytes) = match (prefix.size, prefix.rest) {
        (Some(_), Some(mut file)) => {
            use std::io::Seek;
            file.seek(io::SeekFrom::Start(start.offset))
                .map_err(Error::Read)?;
            (Box::new(file), 0, Bytes::new())
        }
        // A pipe cannot seek: hand out the prefix we took (less what is committed), then read
        // past the rest of the committed part.
        (_, rest) => {
            let rest: Box<dyn Read + Send> = match rest {
                Some(file) => Box::new(file),
                None => Box::new(io::empty()),
            };
            let mut preread = Bytes::from(prefix.bytes);
            let skip = start.offset.saturating_sub(prefix_len);
            bytes::Buf::advance(&mut preread, start.offset.min(prefix_len) as usize);
            (rest, skip, preread)
        }
    };
    let resume = Resume {
        start,
        skip,
        preread,
        committer: Some(Box::new(committer)),
        rotated_unread_bytes,
        source,
        layout,
    };
    Ok((input, resume))
}

// Many logs in one pipeline (`--from GLOB --checkpoint`): the plan of a run over all of them,
// made against the shared checkpoint ([`Shared`]) and saved in one commit; then each log's
// state as the writer settles its batches, every commit naming only the logs that moved.

/// Every log's state as the run moves it, by the index its batches carry.
#[derive(Debug)]
struct Logs {
    shared: Shared,
    keys: Vec<String>,
    states: Vec<State>,
    /// Logs moved since the last commit, in the order they moved (`moved` says which).
    order: Vec<usize>,
    moved: Vec<bool>,
}

impl Logs {
    /// A batch of log `at.log` is written: its file `at.member` is read up to `end` (`lines`:
    /// the batch had some), and with `at.done` to its end (its last batch, or one of no lines
    /// after it).
    fn settled(&mut self, end: Position, at: At, lines: bool) {
        let log = at.log as usize;
        let Some(state) = self.states.get_mut(log) else {
            return;
        };
        let member = at.member as usize;
        let current = state.current();
        let Some(set) = state.set.as_mut() else {
            return;
        };
        let mut moved = false;
        if at.done.is_none() || lines {
            if let Some((now, _)) = set.switch(member, current, new_source) {
                state.set_current(now);
            }
            state.input = end;
            moved = true;
        }
        if let Some(done) = at.done {
            // The file's last batch (or one of no lines after it): read to its end. Not when a
            // plain file's last line, without newline, was left unread.
            let current = state.current();
            let set = state.set.as_mut().expect("checked above");
            let read = set.read_of(member, current);
            let whole = done.compressed || read.is_some_and(|read| read.offset >= done.seen.size);
            moved |= whole && set.read_to_end(member, done.seen, done.complete);
        }
        if moved && !self.moved[log] {
            self.moved[log] = true;
            self.order.push(log);
        }
    }

    /// Commits `head` (the files' lengths) and the logs moved since the last commit.
    fn save(&mut self, head: &State) -> Result<(), Error> {
        let (head, _) = head.split();
        let entries: Vec<(String, String)> = self
            .order
            .drain(..)
            .map(|log| {
                self.moved[log] = false;
                (self.keys[log].clone(), self.states[log].split().1)
            })
            .collect();
        commit(
            &self.shared,
            &head,
            entries.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))),
        )
    }
}

/// Commits `head` and `changes` to the shared journal (made when there is none).
fn commit<'a>(
    shared: &Shared,
    head: &str,
    changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), Error> {
    let mut journal = lock(&shared.journal);
    let saved = match journal.as_mut() {
        Some(journal) => journal.commit(head, changes).map(drop),
        None => {
            let entries = changes
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
                .collect();
            journal::Journal::create(&shared.path, head, entries).map(|made| *journal = Some(made))
        }
    };
    saved.map_err(|e| unusable(&shared.path, e))
}

/// What [`plan_logs`] makes of a run over many logs.
#[derive(Debug)]
pub struct Planned {
    /// Per log, in the order given: which of its files to read from where, and what is lost.
    pub plans: Vec<set::Plan>,
    /// Per log, publishing to a subject: each file's publisher (by its index in the set, 0
    /// for a file not read); empty otherwise.
    pub sources: Vec<Vec<u64>>,
    /// Publishing to a subject: where the last commit's mark stands (see
    /// [`crate::sink::jetstream::Files::mark`]); `None` for a checkpoint this plan made.
    pub stream_mark: Option<u64>,
    /// Commits the writer's progress over all logs.
    pub committer: Committer,
}

/// Each log's entry matched to its files now, by [`arrange_logs`]; what [`plan_logs`] saves.
#[derive(Debug)]
pub struct Arranged {
    loads: Vec<Option<State>>,
    /// Per log: its files as the checkpoint will know them, the plan, the current one.
    arranged: Vec<(Vec<set::Entry>, set::Plan, Option<usize>)>,
}

/// Matches each log's entry in the shared checkpoint to its files now (`logs`: each a path and
/// its set's files, oldest first; a log new to it starts at its first line, or with
/// `start_at_end` at its end when this run makes the checkpoint). `None` when a file could not
/// be looked into (rotated meanwhile) and not `sure`: the logs are better listed again.
///
/// # Errors
/// [`Error::Checkpoint`] when the checkpoint cannot be read.
pub fn arrange_logs(
    shared: &Shared,
    logs: &mut [(PathBuf, Vec<impl set::Candidate>)],
    sure: bool,
    start_at_end: bool,
) -> Result<Option<Arranged>, Error> {
    let loads: Vec<Option<State>> = logs
        .iter()
        .map(|(path, _)| shared.load(Some(path)))
        .collect::<Result<_, _>>()?;
    let mut arranged = Vec::with_capacity(logs.len());
    for ((_, candidates), loaded) in logs.iter_mut().zip(&loads) {
        let (entries, was_current) = known_files(loaded.as_ref());
        let (mut files, mut plan, current) = set::arrange(&entries, was_current, candidates);
        if plan.unsure && !sure {
            return Ok(None);
        }
        if start_at_end && shared.new && loaded.is_none() {
            set::at_end(&mut files, &mut plan, candidates);
        }
        arranged.push((files, plan, current));
    }
    Ok(Some(Arranged { loads, arranged }))
}

impl Arranged {
    /// Log `log`'s plan: which of its files to read from where.
    pub fn plan(&self, log: usize) -> &set::Plan {
        &self.arranged[log].1
    }

    /// The layout `--input auto` picked for log `log` in an earlier run (empty: none).
    pub fn layout(&self, log: usize) -> &str {
        self.loads[log].as_ref().map_or("", |state| state.layout.as_str())
    }
}

/// Plans a run over the logs at `paths`, as [`arrange_logs`] matched them (maybe while an
/// earlier round ran): squares OUTPUT and the rejects file with the shared checkpoint as it is
/// now, and saves what changed in one commit. A
/// log with no file left is said lost if it was not read to its end (its plan's `lost`) and
/// forgotten.
///
/// # Errors
/// [`Error::Checkpoint`] when the checkpoint cannot be read or written, or the files were
/// changed behind its back.
pub fn plan_logs(
    shared: &Shared,
    paths: &[PathBuf],
    arranged: Arranged,
    output: Output<'_>,
    rejects: Option<Target<'_>>,
    every_bytes: u64,
) -> Result<Planned, Error> {
    let Arranged { loads, arranged } = arranged;
    let head = shared.load(None)?;
    let publishing = matches!(output, Output::Nats { .. });
    let (output, rejects) = square_files(&shared.path, head.as_ref(), output, rejects)?;
    let fresh = || State {
        output: output.clone(),
        rejects: rejects.clone(),
        ..State::fresh()
    };
    let made = head.is_none();
    let mut head = head.unwrap_or_else(fresh);
    head.output = output.clone();
    head.rejects = rejects.clone();
    head.finished = true;
    let mut changes = Vec::new();
    let (mut keys, mut states, mut plans) = (Vec::new(), Vec::new(), Vec::new());
    let mut sources = Vec::new();
    for ((path, loaded), (mut files, plan, current)) in paths.iter().zip(loads).zip(arranged) {
        if publishing {
            // Every file read publishes as itself, from its first line: a publisher each.
            for &(index, _) in &plan.steps {
                if files[index].source == 0 {
                    files[index].source = new_source();
                }
            }
            sources.push(files.iter().map(|f| f.source).collect());
        }
        let key = path.to_string_lossy().into_owned();
        let state = if files.is_empty() {
            // Gone: what is lost is said once (the plan), and the log forgotten.
            if loaded.is_some() {
                changes.push((key.clone(), None));
            }
            fresh()
        } else {
            let mut state = loaded.clone().unwrap_or_else(fresh);
            let (mut set, _) = set_now(path, files, &plan, current);
            let now = set.current(new_source);
            state.set_current(now);
            state.set = Some(set);
            // The head's fields are the run's, whatever the entry said.
            (state.output, state.rejects, state.finished) = (output.clone(), rejects.clone(), true);
            let changed = loaded.is_none_or(|was| {
                State {
                    output: output.clone(),
                    rejects: rejects.clone(),
                    finished: true,
                    ..was
                } != state
            });
            if changed {
                changes.push((key.clone(), Some(state.split().1)));
            }
            state
        };
        keys.push(key);
        states.push(state);
        plans.push(plan);
    }
    let (head_text, _) = head.split();
    commit(
        shared,
        &head_text,
        changes.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
    )?;
    let count = states.len();
    let mut committer = Committer::new(&shared.path, head, every_bytes);
    committer.many = Some(Logs {
        shared: shared.clone(),
        keys,
        states,
        order: Vec::new(),
        moved: vec![false; count],
    });
    Ok(Planned {
        plans,
        sources,
        stream_mark: (!made).then_some(output.bytes),
        committer,
    })
}

impl Committer {
    /// Many logs: keeps the layout `--input auto` picked for log `log`, written with its next
    /// commit.
    pub fn keep_layout_of(&mut self, log: usize, name: &str) {
        if let Some(state) = self.many.as_mut().and_then(|m| m.states.get_mut(log)) {
            name.clone_into(&mut state.layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            fingerprint: Fingerprint::of(b"2026-04-15T00:00:01Z INFO started\n"),
            input_id: Some((2049, 77)),
            input: Position {
                offset: 123_456,
                lines: 789,
                continues: Some(RejectReason::RecordTooLong),
                skipping: 2,
                context: Some(Fingerprint::of(b"started\n")),
            },
            output: Written {
                id: Some(FileId {
                    dev: 2049,
                    ino: 12,
                    path: "/var/log/app/clean log\n\\x".into(),
                }),
                bytes: 42,
            },
            rejects: Some(Written {
                id: Some(FileId {
                    dev: 2049,
                    ino: 13,
                    path: "/var/log/app/rejects.tsv".into(),
                }),
                bytes: 7,
            }),
            finished: true,
            source: 0x1234_5678_9abc_def0,
            layout: "python".to_owned(),
            set: None,
        }
    }

    #[test]
    fn a_state_survives_a_round_trip_through_its_file_format() {
        let state = state();
        assert_eq!(State::parse(&state.render()), Some(state.clone()));
        let no_rejects = State {
            rejects: None,
            input_id: None,
            finished: false,
            ..state
        };
        assert_eq!(State::parse(&no_rejects.render()), Some(no_rejects));
        assert_eq!(State::parse("something else\n"), None);
    }

    #[test]
    fn a_state_with_a_set_is_written_as_before_and_splits_into_a_journals_head_and_entry() {
        // The text of a checkpoint of one log of a rotated set, as every version wrote it.
        let text = "ingest checkpoint 2\nfingerprint_bytes 34\nfingerprint 00000000000000ff\n\
            input_file 2049:77\ninput_bytes 123456\ninput_lines 789\noutput_bytes 42\n\
            output_file 2049:12 /var/log/out\\nput\nrejects_bytes -\nrejects_file -\nfinished 1\n\
            source 123456789abcdef0\nlayout python\npieces_skipped 2\n\
            input_context 8:0000000000000abc\nset /var/log/app.log\n\
            file 34:00000000000000ff 123456 789 8:0000000000000abc 0 77:200000:1700000000 77 123456789abcdef0 /var/log/app.log\n\
            file 10:0000000000000011 500 5 - 1 - 76 0000000000000001 /var/log/app.log.1\n\
            current 0\n";
        let state = State::parse(text).expect("a checkpoint");
        assert!(state.set.is_some());
        assert_eq!(state.render(), text);
        let (head, entry) = state.split();
        assert_eq!(
            head,
            "output_bytes 42\noutput_file 2049:12 /var/log/out\\nput\nrejects_bytes -\nrejects_file -\nfinished 1\n"
        );
        assert!(entry.starts_with("fingerprint_bytes 34\n") && entry.ends_with("current 0\n"));
        assert_eq!(State::join(&head, &entry), Some(state));
    }

    #[test]
    fn a_version_1_checkpoint_still_reads_without_file_identities() {
        let v1 = "ingest checkpoint 1\nfingerprint_bytes 10\nfingerprint 00000000000000ff\ninput_bytes 100\ninput_lines 3\noutput_bytes 50\nrejects_bytes 7\n";
        let state = State::parse(v1).unwrap();
        assert_eq!(state.output, Written { id: None, bytes: 50 });
        assert_eq!(state.rejects, Some(Written { id: None, bytes: 7 }));
        assert!(!state.finished, "a v1 checkpoint's tail is its own, as before");
    }

    #[test]
    fn a_hand_edited_checkpoint_that_could_not_have_been_written_is_refused() {
        let good = state().render();
        for (field, bad) in [
            ("input_lines 789", "input_lines 18446744073709551615"),
            ("input_lines 789", "input_lines 200000"),
            ("fingerprint_bytes 34", "fingerprint_bytes 99999"),
            ("output_bytes 42", "output_bytes 18446744073709551615"),
        ] {
            assert!(good.contains(field), "{field}");
            assert_eq!(State::parse(&good.replace(field, bad)), None, "{bad}");
        }
    }

    #[test]
    fn a_fingerprint_matches_a_grown_input_but_not_a_different_or_shorter_one() {
        let fp = Fingerprint::of(b"first line\n");
        assert!(fp.matches(b"first line\nsecond line\n"));
        assert!(!fp.matches(b"other line\n"));
        assert!(!fp.matches(b"first"));
    }
}
