//! `--from PATH --checkpoint`: a log file and its rotated predecessors (`PATH.1`, `PATH.2.gz`,
//! `PATH-20261204`, ...) read as one input, each line once.
//!
//! The checkpoint keeps every file of the set it has looked at, in the set's order, each known
//! by its content: a fingerprint of its first bytes, how far it was read, and a fingerprint of
//! the bytes just before that point. Names and inodes change under rotation (a rename, a copy
//! for `copytruncate`, a compressed copy, a recycled inode); content read so far does not. At
//! the start of a run, [`super::plan_set`] matches those entries to the files there now, oldest first, and
//! says which to read from where; a file the checkpoint was reading that is gone before its end
//! was seen is reported as lost.

use std::io;
use std::path::{Path, PathBuf};

use super::position::{CONTEXT_BYTES, FINGERPRINT_BYTES, Fingerprint, Position, escape, unescape};

/// The set as the checkpoint keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Set {
    /// PATH, absolute.
    path: PathBuf,
    /// The files, oldest first.
    files: Vec<Entry>,
    /// The one being read: the checkpoint's input.
    current: usize,
}

/// One file of the set as the checkpoint knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// Its first bytes (decompressed), as many as it had, up to [`super::FINGERPRINT_BYTES`].
    head: Fingerprint,
    /// How far it is read and committed.
    read: Position,
    /// The file as `stat` saw it when it was last read to its end: while it stays so, there is
    /// nothing new in it (and a compressed file need not be decompressed to be recognised).
    seen: Option<Seen>,
    /// Read to its end after it was rotated: nothing of it can be lost any more.
    complete: bool,
    /// Its inode when last listed: recognises a file nothing was read of yet (see [`assign`]).
    ino: u64,
    /// Who publishes it to a NATS OUTPUT (see `crate::nats::message::Publisher`): the same in
    /// every run that reads it, so that a rerun knows its own messages; 0 until it is read.
    pub(super) source: u64,
    /// Where it was last seen, for messages.
    path: PathBuf,
}

/// What the checkpoint's input fields say of the current file (its commits move them, not the
/// entry's copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Current {
    /// How far it is read and committed.
    pub(super) input: Position,
    /// Its first bytes.
    pub(super) head: Fingerprint,
    /// Its publisher.
    pub(super) source: u64,
}

/// A file as `stat` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Inode number.
    pub ino: u64,
    /// Size on disk (compressed, for a compressed file).
    pub size: u64,
    /// Last modification, in nanoseconds since the epoch.
    pub mtime_ns: i64,
}

impl Seen {
    /// The file as `meta` (its `stat`) says.
    pub fn of(meta: &std::fs::Metadata) -> Seen {
        use std::os::unix::fs::MetadataExt;
        Seen {
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        }
    }

    fn parse(text: &str) -> Option<Seen> {
        let mut parts = text.split(':');
        let seen = Seen {
            ino: parts.next()?.parse().ok()?,
            size: parts.next()?.parse().ok()?,
            mtime_ns: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(seen)
    }
}

/// As the checkpoint writes it: `INO:SIZE:MTIME_NS`.
impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.ino, self.size, self.mtime_ns)
    }
}

/// `-` for none, else what it displays as.
pub(super) struct Or<T>(pub(super) Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Or<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl Set {
    /// Appends the set's lines of the checkpoint to `text`, the current file as `current` says.
    pub(super) fn write(&self, current: Current, text: &mut String) {
        use std::fmt::Write as _;
        // Written in place: a commit writes the set of every log it moves.
        let _ = writeln!(text, "set {}", escape(self.path.as_os_str()));
        for (i, entry) in self.files.iter().enumerate() {
            let (read, head, source) = if i == self.current {
                (current.input, current.head, current.source)
            } else {
                (entry.read, entry.head, entry.source)
            };
            let _ = writeln!(
                text,
                "file {head} {} {} {} {} {} {} {source:016x} {}",
                read.offset,
                read.lines,
                Or(read.context),
                u8::from(entry.complete),
                Or(entry.seen),
                entry.ino,
                escape(entry.path.as_os_str()),
            );
        }
        let _ = writeln!(text, "current {}", self.current);
    }
}

/// The set's lines, as the checkpoint meets them.
#[derive(Default)]
pub(super) struct Parsing {
    path: Option<PathBuf>,
    files: Vec<Entry>,
    current: Option<usize>,
}

impl Parsing {
    /// Takes one `key value` line; `None` when it is no line of a checkpoint.
    pub(super) fn line(&mut self, key: &str, value: &str) -> Option<()> {
        match key {
            "set" => self.path = Some(PathBuf::from(unescape(value)?)),
            "current" => self.current = Some(value.parse().ok()?),
            "file" => {
                let mut fields = value.splitn(9, ' ');
                let mut next = || fields.next();
                let head = Fingerprint::parse(next()?)?;
                let offset = next()?.parse().ok()?;
                let lines = next()?.parse().ok()?;
                let context = match next()? {
                    "-" => None,
                    c => Some(Fingerprint::parse(c)?),
                };
                let complete = next()? == "1";
                let seen = match next()? {
                    "-" => None,
                    s => Some(Seen::parse(s)?),
                };
                let ino = next()?.parse().ok()?;
                let source = u64::from_str_radix(next()?, 16).ok()?;
                let path = PathBuf::from(unescape(next()?)?);
                let read = Position {
                    offset,
                    lines,
                    continues: None,
                    skipping: 0,
                    context,
                };
                (lines <= offset).then_some(())?;
                self.files.push(Entry {
                    head,
                    read,
                    seen,
                    complete,
                    ino,
                    source,
                    path,
                });
            }
            _ => return None,
        }
        Some(())
    }

    /// The set, `Some(None)` for a checkpoint without one, `None` when its lines do not add up.
    pub(super) fn finish(self) -> Option<Option<Set>> {
        match (self.path, self.current) {
            (None, None) if self.files.is_empty() => Some(None),
            (Some(path), Some(current)) if current < self.files.len() => Some(Some(Set {
                path,
                files: self.files,
                current,
            })),
            _ => None,
        }
    }
}

/// Which log of many (`--from GLOB`) and which file of its set a batch is of: its position is
/// in that file. The batch after a file's last one says that file was read to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    /// The log, by its index in the run.
    pub log: u32,
    /// The file, by its index in the log's set as the run planned it.
    pub member: u32,
    /// The file was read to its end: nothing of it follows.
    pub done: Option<Done>,
}

/// A file of a set read to its end (see `checkpoint::read_to_end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// The file as `stat` saw it when listed.
    pub seen: Seen,
    /// It was a rotated file: nothing more can come to it unseen.
    pub complete: bool,
    /// Compressed: its size says nothing of a last line left unread.
    pub compressed: bool,
}

/// A file of the set as [`super::plan_set`] looks at it; the source lists them and reads them.
pub trait Candidate {
    /// Where it is.
    fn path(&self) -> &Path;
    /// Its `stat` when listed.
    fn seen(&self) -> Seen;
    /// PATH itself (a log still written to), not a rotated file.
    fn live(&self) -> bool;
    /// Its first bytes, decompressed, up to [`super::FINGERPRINT_BYTES`].
    ///
    /// # Errors
    /// When it cannot be read.
    fn head(&mut self) -> io::Result<&[u8]>;
    /// The `len` bytes of its content before `offset`; `None` when it is shorter than `offset`.
    ///
    /// # Errors
    /// When it cannot be read.
    fn before(&mut self, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>>;
    /// How long its content is (decompressed, for a compressed file).
    ///
    /// # Errors
    /// When it cannot be read.
    fn content_len(&mut self) -> io::Result<u64>;
}

/// What a run over the set does.
#[derive(Debug, Default)]
pub struct Plan {
    /// The files to read, oldest first: the candidate's index, and where its reading starts.
    pub steps: Vec<(usize, Position)>,
    /// Files the checkpoint was reading that are gone before their end was read.
    pub lost: Vec<Lost>,
    /// A file could not be looked into (rotated while the set was being matched): the set is
    /// better listed again before the plan is trusted.
    pub unsure: bool,
}

/// A file gone before its end was read.
#[derive(Debug)]
pub struct Lost {
    /// Where it was last seen.
    pub path: PathBuf,
    /// The lines of it that were read.
    pub lines: u64,
    /// Bytes of it known to be unread (it may have grown after it was last seen).
    pub unread: u64,
}

/// True when `candidate` is the file `entry` describes: unchanged since it was read to its end,
/// or starting with the same bytes and holding the same bytes before the point read to.
fn matches(entry: &Entry, candidate: &mut impl Candidate) -> io::Result<bool> {
    if entry.seen == Some(candidate.seen()) {
        return Ok(true);
    }
    // Nothing read, nothing to recognise it by: taken as a new file, read from its start.
    if entry.read.offset == 0 {
        return Ok(false);
    }
    if !entry.head.matches(candidate.head()?) {
        return Ok(false);
    }
    let want = entry.read.context.map_or(0, |c| c.covers() as usize);
    let Some(before) = candidate.before(entry.read.offset, want)? else {
        return Ok(false);
    };
    Ok(entry.read.context.is_none_or(|c| Fingerprint::of(&before) == c))
}

/// Matches the checkpoint's entries to `candidates` (the set now, oldest first), in order where
/// the order allows: returns, per candidate, the entry it is.
/// Also says whether a file could not be looked into.
fn assign(entries: &[Entry], candidates: &mut [impl Candidate]) -> (Vec<Option<usize>>, bool) {
    let mut owner = vec![None; candidates.len()];
    let mut unreadable = false;
    let mut next = 0;
    for (e, entry) in entries.iter().enumerate() {
        // The file itself first (still on its inode, holding what was read): a copy of it made
        // since (logrotate's `copy`, or `copytruncate` before its truncate) is not it. Then, as
        // two files may start alike (a banner), the one after the last file matched.
        let itself =
            (0..candidates.len()).find(|&c| owner[c].is_none() && candidates[c].seen().ino == entry.ino);
        let in_order = (next..candidates.len()).chain(0..next.min(candidates.len()));
        let order = itself.into_iter().chain(in_order.filter(|&c| Some(c) != itself));
        for c in order {
            if owner[c].is_some() {
                continue;
            }
            match matches(entry, &mut candidates[c]) {
                Ok(true) => {
                    owner[c] = Some(e);
                    next = c + 1;
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!("cannot read '{}': {e}", candidates[c].path().display());
                    unreadable = true;
                }
            }
        }
    }
    // A file nothing was committed of yet (a run killed before its first commit) has no content
    // to be known by, but it may have published: found by its inode, and its first bytes when
    // it had any, it keeps its publisher, so that the rerun knows what of it the stream holds.
    // Without first bytes to check, a recycled inode could pass for it: not taken then.
    for (e, entry) in entries.iter().enumerate() {
        if entry.read.offset > 0 || entry.head.covers() == 0 || owner.contains(&Some(e)) {
            continue;
        }
        for c in 0..candidates.len() {
            let same = owner[c].is_none()
                && candidates[c].seen().ino == entry.ino
                && candidates[c].head().is_ok_and(|head| entry.head.matches(head));
            if same {
                owner[c] = Some(e);
                break;
            }
        }
    }
    (owner, unreadable)
}

/// A rotated file that holds a copy of a log's content (logrotate's `copy` and `copytruncate`
/// make one; the log keeps its inode), measured against how far that content was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Copy {
    /// It holds nothing that was not read (it is shorter than entry `.0`'s read point, or as
    /// long): done with, never read.
    Read(usize),
    /// It holds bytes past the read point of the live log's entry `.0` (none: nothing of the log
    /// read yet), which the log holds too and gives: not read itself while the log does.
    Pending(Option<usize>),
    /// It holds bytes past entry `.0`'s read point, and that log was emptied (`copytruncate`):
    /// it takes the entry's place, and is read from there.
    From(usize),
}

/// Finds the copies among `candidates` (see [`Copy`]), and the entries whose file is gone or
/// was emptied in place and whose content a copy holds (not lost: their lines are in the copy,
/// or were read; what was written between logrotate's copy and its truncate, or to a rotated
/// file after gzip read it, is lost by logrotate, and no one can tell).
///
/// Copies are told by content: the same first bytes, and either the same bytes before the
/// copy's end as the live log has there (the log still holds them), or, for a log gone or
/// emptied in place, no more than was read of it, or the bytes before its read point. A file
/// known by an entry of its own is taken for a copy of a log gone only when that entry is a
/// copy left pending for it (or the log was emptied in place: `copytruncate`), so that a file
/// that merely starts alike keeps its own reading.
fn copies(
    entries: &[Entry],
    owner: &[Option<usize>],
    candidates: &mut [impl Candidate],
) -> io::Result<(Vec<Option<Copy>>, Vec<bool>)> {
    let mut found = vec![None; candidates.len()];
    let mut covered = vec![false; entries.len()];
    let live = candidates.iter().position(|c| c.live());
    // Entries whose file is gone, or is the live log's inode with other content now (emptied
    // in place), each with whether it was emptied.
    let gone: Vec<(usize, bool)> = (0..entries.len())
        // Read to its end too: gzip's copy of a rotated file misses what the program wrote to it
        // after gzip read it, which a reader may have read first.
        .filter(|&e| !owner.contains(&Some(e)) && entries[e].read.offset > 0)
        .map(|e| {
            (
                e,
                live.is_some_and(|l| candidates[l].seen().ino == entries[e].ino),
            )
        })
        .collect();
    for c in 0..candidates.len() {
        if candidates[c].live() {
            continue;
        }
        let own = owner[c].map(|e| &entries[e]);
        let unchanged = own.is_some_and(|e| e.seen == Some(candidates[c].seen()));
        if let (false, Some(l)) = (unchanged, live)
            && is_copy_of(candidates, c, l)?
        {
            // The log's entry, if it is still that content (else it was read from none yet).
            let log = owner[l].filter(|&e| entries[e].read.offset > 0);
            let read = log.map_or(0, |e| entries[e].read.offset);
            found[c] = Some(match log {
                Some(e) if candidates[c].content_len()? <= read => Copy::Read(e),
                _ => Copy::Pending(log),
            });
            continue;
        }
        // Newest first: of files that start alike (a banner), a copy is most likely of the
        // file rotated last.
        for &(e, emptied) in gone.iter().rev() {
            let entry = &entries[e];
            // Its first bytes unknown (the file was empty when the entry was made, and was
            // rotated away, compressed, before a listing looked again): its head matches any
            // file, so only one file, the oldest, is taken for its copy; a newer file that
            // starts "alike" is the next live file, read from its start.
            let head_unknown = entry.head.covers() < entry.read.offset.min(FINGERPRINT_BYTES as u64);
            if head_unknown && covered[e] {
                continue;
            }
            // A copy left pending for this log carries its publisher (see `Copy::Pending`).
            let pending_of_it = own.is_some_and(|o| o.source != 0 && o.source == entry.source);
            if (own.is_some() && !emptied && !pending_of_it) || !entry.head.matches(candidates[c].head()?) {
                continue;
            }
            let shorter = candidates[c].content_len()? <= entry.read.offset;
            if !shorter && !matches(entry, &mut candidates[c])? {
                continue;
            }
            covered[e] = true;
            // Read to its end already, or further by its own entry: nothing to change.
            if !unchanged && own.is_none_or(|o| o.read.offset < entry.read.offset) {
                found[c] = Some(if shorter { Copy::Read(e) } else { Copy::From(e) });
            }
            break;
        }
    }
    Ok((found, covered))
}

/// True when candidate `c` holds the first bytes of live log `l` (its first bytes, and the
/// bytes before its end, are the log's there): a copy of it, which the log still holds.
fn is_copy_of(candidates: &mut [impl Candidate], c: usize, l: usize) -> io::Result<bool> {
    let head = candidates[c].head()?.to_vec();
    if head.is_empty() || !candidates[l].head()?.starts_with(&head) {
        return Ok(false);
    }
    let len = candidates[c].content_len()?;
    let tail = candidates[c].before(len, CONTEXT_BYTES)?;
    Ok(tail.is_some() && tail == candidates[l].before(len, CONTEXT_BYTES)?)
}

/// Lays the checkpoint's `entries` (the current one at `was_current`) over `candidates`, the
/// set now, oldest first: the set's files as the checkpoint will know them (one per candidate),
/// the plan, and which candidate was the current file.
pub(super) fn arrange(
    entries: &[Entry],
    was_current: Option<usize>,
    candidates: &mut [impl Candidate],
) -> (Vec<Entry>, Plan, Option<usize>) {
    let (owner, mut unsure) = assign(entries, candidates);
    let (found, covered) = copies(entries, &owner, candidates).unwrap_or_else(|e| {
        // Not trusted: the set is listed again.
        tracing::debug!("cannot look for copies in the set: {e}");
        unsure = true;
        (vec![None; candidates.len()], vec![false; entries.len()])
    });
    let mut plan = Plan {
        unsure,
        ..Plan::default()
    };
    for (e, entry) in entries.iter().enumerate() {
        if owner.contains(&Some(e)) || covered[e] || entry.complete || entry.read.offset == 0 {
            continue;
        }
        plan.lost.push(Lost {
            path: entry.path.clone(),
            lines: entry.read.lines,
            unread: entry.seen.map_or(0, |s| s.size.saturating_sub(entry.read.offset)),
        });
    }
    let mut files = Vec::with_capacity(candidates.len());
    let mut current = None;
    for (c, candidate) in candidates.iter_mut().enumerate() {
        let mut entry = match owner[c] {
            Some(e) => entries[e].clone(),
            None => Entry {
                head: Fingerprint::of(b""),
                read: Position::default(),
                seen: None,
                complete: false,
                ino: 0,
                source: 0,
                path: PathBuf::new(),
            },
        };
        if owner[c].is_some() && owner[c] == was_current {
            current = Some(c);
        }
        entry.path = candidate.path().to_owned();
        entry.ino = candidate.seen().ino;
        if let Some(copy) = found[c] {
            match copy {
                Copy::Read(e) => {
                    // Nothing of it is read again: its end is where reading stands. (The line
                    // count there is the log's, past the copy's end when it is shorter: no line
                    // of it is ever numbered again.)
                    let len = candidate.content_len().unwrap_or(entries[e].read.offset);
                    let tail = candidate
                        .before(len, CONTEXT_BYTES)
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    entry.read = Position {
                        offset: len,
                        lines: entries[e].read.lines.min(len),
                        continues: None,
                        skipping: 0,
                        context: Some(Fingerprint::of(&tail)),
                    };
                    entry.head = entries[e].head;
                    entry.seen = Some(candidate.seen());
                    entry.complete = true;
                }
                // Read where the log it copies stands, from the log itself.
                Copy::Pending(log) => {
                    if let Some(e) = log
                        && entry.read.offset < entries[e].read.offset
                    {
                        entry.read = entries[e].read;
                        entry.head = entries[e].head;
                        entry.source = entries[e].source;
                    }
                    entry.look_longer(candidate);
                    entry.seen = None;
                }
                Copy::From(e) => {
                    entry = Entry {
                        path: entry.path,
                        ino: entry.ino,
                        ..entries[e].clone()
                    };
                    if Some(e) == was_current {
                        current = Some(c);
                    }
                    plan.steps.push((c, entry.read));
                }
            }
            files.push(entry);
            continue;
        }
        if entry.seen == Some(candidate.seen()) {
            // Read to its end as it is now, and rotated since: nothing of it can be lost.
            entry.complete |= !candidate.live();
        } else {
            entry.look_longer(candidate);
            plan.steps.push((c, entry.read));
        }
        files.push(entry);
    }
    (files, plan, current)
}

/// `--start-at end`, for a set the checkpoint did not know: every file as read to its end now
/// (rotated ones done with, the live log up to its last whole line, its lines counted from
/// there), nothing planned. A file that cannot be looked into keeps its plan (read whole).
pub(super) fn at_end(files: &mut [Entry], plan: &mut Plan, candidates: &mut [impl Candidate]) {
    let mut skipped = Vec::new();
    for (c, (entry, candidate)) in files.iter_mut().zip(candidates.iter_mut()).enumerate() {
        let end = if candidate.live() {
            candidate
                .seen()
                .size
                .checked_sub(1)
                .map_or(Ok(0), |last| last_line_end(candidate, last))
        } else {
            candidate.content_len()
        };
        let Ok(end) = end else { continue };
        let tail = candidate
            .before(end, CONTEXT_BYTES)
            .ok()
            .flatten()
            .unwrap_or_default();
        entry.look_longer(candidate);
        entry.read = Position {
            offset: end,
            lines: 0,
            continues: None,
            skipping: 0,
            context: Some(Fingerprint::of(&tail)),
        };
        if !candidate.live() {
            entry.seen = Some(candidate.seen());
            entry.complete = true;
        }
        skipped.push(c);
    }
    plan.steps.retain(|(c, _)| !skipped.contains(c));
}

/// Where the last whole line of `candidate` ends at or before byte `last` (0: none).
fn last_line_end(candidate: &mut impl Candidate, last: u64) -> io::Result<u64> {
    const STEP: u64 = 64 * 1024;
    let mut to = last + 1;
    while to > 0 {
        let len = to.min(STEP);
        let bytes = candidate.before(to, len as usize)?.unwrap_or_default();
        if let Some(i) = memchr::memrchr(b'\n', &bytes) {
            return Ok(to - len + i as u64 + 1);
        }
        to -= len;
    }
    Ok(0)
}

impl Entry {
    /// Takes a longer look at `candidate`'s first bytes, when it has more than the entry knows:
    /// it tells the file apart from more files next time.
    fn look_longer(&mut self, candidate: &mut impl Candidate) {
        match candidate.head() {
            Ok(head) if head.len() as u64 > self.head.covers() => self.head = Fingerprint::of(head),
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot read '{}': {e}", candidate.path().display()),
        }
    }

    /// Takes what the checkpoint's input fields say of it, as the current file.
    fn keep(&mut self, current: Current) {
        self.read = current.input;
        self.head = current.head;
        self.source = current.source;
    }
}

impl Set {
    /// A set at `path` of `files`, reading `current`.
    pub(super) fn new(path: PathBuf, files: Vec<Entry>, current: usize) -> Set {
        Set { path, files, current }
    }

    /// PATH, absolute.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The inode of the file it is reading, when last listed.
    pub(super) fn current_ino(&self) -> u64 {
        self.files[self.current].ino
    }

    /// The files and the current one's index, the current one as `current` says.
    pub(super) fn entries(&self, current: Current) -> (Vec<Entry>, usize) {
        let mut files = self.files.clone();
        files[self.current].keep(current);
        (files, self.current)
    }

    /// What the checkpoint's input fields are to say of the current file (a publisher made by
    /// `new_source` if it has none yet).
    pub(super) fn current(&mut self, new_source: impl FnOnce() -> u64) -> Current {
        let entry = &mut self.files[self.current];
        if entry.source == 0 {
            entry.source = new_source();
        }
        Current {
            input: entry.read,
            head: entry.head,
            source: entry.source,
        }
    }

    /// Makes file `index` the current one (the one before it left as `current` says); what the
    /// checkpoint's input fields are to say of it (a publisher made by `new_source` if it has
    /// none yet), and whether it is another file than before. `None` when there is no such file.
    pub(super) fn switch(
        &mut self,
        index: usize,
        current: Current,
        new_source: impl FnOnce() -> u64,
    ) -> Option<(Current, bool)> {
        (index < self.files.len()).then_some(())?;
        let other = self.current != index;
        self.files[self.current].keep(current);
        self.current = index;
        Some((self.current(new_source), other))
    }

    /// Marks every file done with: none of them is there any more, and what was lost of them
    /// has been said (the current one as `current` says).
    pub(super) fn all_gone(&mut self, current: Current) {
        self.files[self.current].keep(current);
        for entry in &mut self.files {
            entry.complete = true;
        }
    }

    /// How far file `index` is read, the current one as `current` says; `None` when there is no
    /// such file.
    pub(super) fn read_of(&self, index: usize, current: Current) -> Option<Position> {
        let entry = self.files.get(index)?;
        Some(if index == self.current {
            current.input
        } else {
            entry.read
        })
    }

    /// Records that file `index` was read to its end as it was when `seen`; `complete` when
    /// it was rotated. False when that changes nothing.
    pub(super) fn read_to_end(&mut self, index: usize, seen: Seen, complete: bool) -> bool {
        let Some(entry) = self.files.get_mut(index) else {
            return false;
        };
        if entry.seen == Some(seen) && entry.complete == complete {
            return false;
        }
        entry.seen = Some(seen);
        entry.complete = complete;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::position::FINGERPRINT_BYTES;
    use super::*;

    /// A file in memory.
    struct Mem {
        path: PathBuf,
        bytes: Vec<u8>,
        seen: Seen,
        live: bool,
    }

    impl Candidate for Mem {
        fn path(&self) -> &Path {
            &self.path
        }
        fn seen(&self) -> Seen {
            self.seen
        }
        fn live(&self) -> bool {
            self.live
        }
        fn head(&mut self) -> io::Result<&[u8]> {
            Ok(&self.bytes[..self.bytes.len().min(FINGERPRINT_BYTES)])
        }
        fn before(&mut self, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
            let offset = offset as usize;
            Ok((offset <= self.bytes.len()).then(|| self.bytes[offset.saturating_sub(len)..offset].to_vec()))
        }
        fn content_len(&mut self) -> io::Result<u64> {
            Ok(self.bytes.len() as u64)
        }
    }

    fn mem(name: &str, bytes: &[u8], ino: u64) -> Mem {
        Mem {
            path: PathBuf::from(name),
            bytes: bytes.to_vec(),
            seen: Seen {
                ino,
                size: bytes.len() as u64,
                mtime_ns: ino as i64,
            },
            live: name == "app.log",
        }
    }

    /// The entry a run leaves after reading `bytes` up to `offset`.
    fn read(bytes: &[u8], offset: usize, complete: bool) -> Entry {
        Entry {
            head: Fingerprint::of(&bytes[..bytes.len().min(FINGERPRINT_BYTES)]),
            read: Position {
                offset: offset as u64,
                lines: 1,
                continues: None,
                skipping: 0,
                context: Some(Fingerprint::of_end(&bytes[..offset])),
            },
            seen: None,
            complete,
            ino: 3,
            source: 7,
            path: PathBuf::from("gone"),
        }
    }

    fn banner(rest: &str) -> Vec<u8> {
        let mut bytes = vec![b'#'; FINGERPRINT_BYTES];
        bytes.push(b'\n');
        bytes.extend_from_slice(rest.as_bytes());
        bytes
    }

    #[test]
    fn files_that_start_alike_are_told_apart_by_what_was_read() {
        let (a, b) = (banner("a1\na2\n"), banner("b1\nb2\nb3\n"));
        // A read to its end; B is newer and starts with the same banner.
        let entries = [read(&a, a.len(), true)];
        let mut now = [mem("app.log.1", &a, 1), mem("app.log", &b, 2)];
        assert_eq!(assign(&entries, &mut now).0, [Some(0), None]);
        // A rotated away for good: B is not taken for it, though longer and alike at first.
        let mut now = [mem("app.log.1", &b, 2), mem("app.log", b"new\n", 3)];
        assert_eq!(assign(&entries, &mut now).0, [None, None]);
    }

    #[test]
    fn a_file_with_the_same_first_bytes_and_length_but_other_bytes_where_reading_stopped_is_another() {
        // Both start with the same 4 KiB banner and are as long; only the 256 bytes before the
        // point read to tell them apart.
        let (a, b) = (banner("one\nline a\n"), banner("two\nline b\n"));
        assert_eq!(a.len(), b.len());
        let entries = [read(&a, a.len(), false)];
        assert_eq!(assign(&entries, &mut [mem("app.log", &b, 8)]).0, [None]);
        assert_eq!(assign(&entries, &mut [mem("app.log", &a, 8)]).0, [Some(0)]);
    }

    #[test]
    fn entries_match_in_order_when_content_alone_cannot_tell() {
        // Both read only inside the same banner: the older entry is the older file.
        let (a, b) = (banner("a\n"), banner("b\n"));
        let entries = [read(&a, 100, true), read(&b, 100, false)];
        let mut now = [mem("app.log.2.gz", &a, 5), mem("app.log.1", &b, 6)];
        assert_eq!(assign(&entries, &mut now).0, [Some(0), Some(1)]);
    }

    #[test]
    fn a_grown_short_file_and_a_recycled_inode_are_recognised_by_content() {
        let short = b"2026-12-05T00:00:00Z INFO first\n".to_vec();
        let entries = [read(&short, short.len(), false)];
        let mut grown = short.clone();
        grown.extend_from_slice(&[b'x'; 5000]);
        let mut now = [mem("app.log", &grown, 7)];
        assert_eq!(assign(&entries, &mut now).0, [Some(0)]);
        // Same inode, other content: a new file.
        let mut now = [mem("app.log", b"2026-12-05T00:00:01Z INFO other\n", 7)];
        assert_eq!(assign(&entries, &mut now).0, [None]);
    }

    #[test]
    fn a_file_nothing_was_committed_of_is_known_by_its_inode_and_first_bytes() {
        let bytes = b"2026-12-05T00:00:00Z INFO first\n";
        let entry = Entry {
            ino: 5,
            head: Fingerprint::of(bytes),
            ..read(bytes, 0, false)
        };
        let entries = [entry.clone()];
        assert_eq!(assign(&entries, &mut [mem("app.log", bytes, 5)]).0, [Some(0)]);
        // Another inode, or other first bytes on the same inode: not it.
        assert_eq!(assign(&entries, &mut [mem("app.log", bytes, 6)]).0, [None]);
        assert_eq!(assign(&entries, &mut [mem("app.log", b"other\n", 5)]).0, [None]);
        // Nothing to check the inode against: not taken.
        let empty = [Entry {
            head: Fingerprint::of(b""),
            ..entry
        }];
        assert_eq!(assign(&empty, &mut [mem("app.log", bytes, 5)]).0, [None]);
    }

    /// The plan's steps (candidate, offset) and the losses it reports.
    fn plan(entries: &[Entry], now: &mut [Mem]) -> (Vec<(usize, u64)>, usize) {
        let (_, plan, _) = arrange(entries, entries.len().checked_sub(1), now);
        let steps = plan.steps.iter().map(|(c, p)| (*c, p.offset)).collect();
        (steps, plan.lost.len())
    }

    #[test]
    fn a_copy_of_the_log_is_never_read_while_the_log_gives_its_lines() {
        let log = b"2026-12-05T00:00:00Z INFO a\n2026-12-05T00:00:01Z INFO b\n2026-12-05T00:00:02Z INFO c\n"
            .to_vec();
        // Read up to `b`; copied (logrotate's `copy`, or `copytruncate` before its truncate) as
        // long as what was read, then longer: the log itself is read on, never the copy.
        let entries = [Entry {
            ino: 2,
            ..read(&log, 56, false)
        }];
        let mut now = [mem("app.log.1", &log[..56], 9), mem("app.log", &log, 2)];
        assert_eq!(plan(&entries, &mut now), (vec![(1, 56)], 0));
        let mut now = [mem("app.log.1", &log, 9), mem("app.log", &log, 2)];
        assert_eq!(plan(&entries, &mut now), (vec![(1, 56)], 0));
        // Nothing read of the log yet: the log, from its start.
        let mut now = [mem("app.log.1", &log[..56], 9), mem("app.log", &log, 2)];
        assert_eq!(plan(&[], &mut now).0, [(1, 0)]);
    }

    #[test]
    fn a_log_emptied_in_place_goes_on_in_its_copy_and_is_no_loss() {
        let log = b"2026-12-05T00:00:00Z INFO a\n2026-12-05T00:00:01Z INFO b\n2026-12-05T00:00:02Z INFO c\n"
            .to_vec();
        // Its first bytes as they were when it was first planned: a copy is never shorter.
        let entries = [Entry {
            ino: 2,
            head: Fingerprint::of(&log[..28]),
            ..read(&log, 56, false)
        }];
        let new = b"2026-12-05T00:00:03Z INFO d\n";
        // The copy holds more than was read: read from there, then the new content.
        let mut now = [mem("app.log.1", &log, 9), mem("app.log", new, 2)];
        assert_eq!(plan(&entries, &mut now), (vec![(0, 56), (1, 0)], 0));
        // The copy holds less than was read (a follower read past it before the truncate).
        let mut now = [mem("app.log.1", &log[..28], 9), mem("app.log", new, 2)];
        assert_eq!(plan(&entries, &mut now), (vec![(1, 0)], 0));
        // No copy: the log's unread end is gone, and said so.
        let mut now = [mem("app.log", new, 2)];
        assert_eq!(plan(&entries, &mut now), (vec![(0, 0)], 1));
        // A rotated file that only starts alike is no copy of a log known by an entry of its own.
        let other = [&log[..28], b"2026-12-05T00:00:09Z INFO x\n".as_slice()].concat();
        let mut now = [mem("app.log.1", &other, 9), mem("app.log", &log, 2)];
        assert_eq!(plan(&entries, &mut now).0, [(0, 0), (1, 56)]);
    }

    #[test]
    fn a_copy_left_pending_goes_on_where_its_log_was_read_when_the_log_is_deleted() {
        let log = b"2026-12-05T00:00:00Z INFO a\n2026-12-05T00:00:01Z INFO b\n2026-12-05T00:00:02Z INFO c\n"
            .to_vec();
        let head = Fingerprint::of(&log[..28]);
        // The copy was pending at `a` (the log's publisher, 7); the log, read on to `c`, is then
        // deleted (no new file on its inode).
        let copy = Entry {
            ino: 9,
            head,
            ..read(&log, 28, false)
        };
        let gone = Entry {
            ino: 2,
            head,
            ..read(&log, 84, false)
        };
        let mut now = [mem("app.log.1", &log[..56], 9), mem("app.log", b"new\n", 3)];
        assert_eq!(plan(&[copy.clone(), gone.clone()], &mut now), (vec![(1, 0)], 0));
        // Read only to `b` when deleted: the copy from there.
        let gone = Entry {
            ino: 2,
            head,
            ..read(&log, 56, false)
        };
        let mut now = [mem("app.log.1", &log, 9), mem("app.log", b"new\n", 3)];
        assert_eq!(plan(&[copy.clone(), gone], &mut now), (vec![(0, 56), (1, 0)], 0));
        // A file of its own that only starts alike is not taken for a copy of a gone log.
        let other = Entry { source: 8, ..copy };
        let gone = Entry {
            ino: 2,
            head,
            ..read(&log, 84, false)
        };
        let mut now = [mem("app.log.1", &log[..56], 9), mem("app.log", b"new\n", 3)];
        assert_eq!(plan(&[other, gone], &mut now), (vec![(0, 28), (1, 0)], 1));
    }

    #[test]
    fn a_rotated_file_that_starts_like_the_log_but_ends_otherwise_is_no_copy_of_it() {
        // The same first 4 KiB (a banner), other bytes before its end than the log has there.
        let (log, other) = (banner("a1\na2\na3\n"), banner("b1\n"));
        let entries = [Entry {
            ino: 2,
            ..read(&log, log.len(), false)
        }];
        let mut now = [mem("app.log.1", &other, 9), mem("app.log", &log, 2)];
        assert_eq!(plan(&entries, &mut now).0, [(0, 0), (1, log.len() as u64)]);
    }

    #[test]
    fn a_compressed_copy_shorter_than_what_was_read_of_its_file_is_done_with() {
        // app.log.1 read to its end (with what the program wrote to it late), then compressed
        // by logrotate from what it held when gzip read it, and deleted.
        let log = b"2026-12-05T00:00:00Z INFO a\n2026-12-05T00:00:01Z INFO b\n2026-12-05T00:00:02Z INFO c\n"
            .to_vec();
        let entries = [Entry {
            ino: 2,
            head: Fingerprint::of(&log[..28]),
            ..read(&log, 84, true)
        }];
        let mut now = [mem("app.log.1.gz", &log[..56], 9), mem("app.log", b"new\n", 3)];
        assert_eq!(plan(&entries, &mut now), (vec![(1, 0)], 0));
    }

    #[test]
    fn a_log_read_from_empty_and_rotated_away_has_one_copy_and_the_next_file_is_read() {
        // The live log was empty when its entry was made, so its first bytes are not known; a
        // follower read it, was killed, and two rotations with `compress` went by: its copy
        // (which misses the line written after gzip read it), and the next live log (never
        // read), compressed too. Both "start like" an empty head.
        let log = b"2026-12-05T00:00:00Z INFO a\n2026-12-05T00:00:01Z INFO b\n".to_vec();
        let next = b"2026-12-05T00:00:02Z INFO c\n".to_vec();
        let entries = [Entry {
            head: Fingerprint::of(b""),
            ..read(&log, 56, false)
        }];
        let mut now = [
            mem("app.log.2.gz", &log[..28], 9),
            mem("app.log.1.gz", &next, 10),
            mem("app.log", b"", 11),
        ];
        // The copy is done with; the next file is read from its start.
        assert_eq!(plan(&entries, &mut now), (vec![(1, 0), (2, 0)], 0));
    }

    #[test]
    fn a_set_survives_a_round_trip_through_the_checkpoint() {
        let set = Set {
            path: PathBuf::from("/var/log/my app.log"),
            files: vec![
                Entry {
                    seen: Some(Seen {
                        ino: 9,
                        size: 100,
                        mtime_ns: -5,
                    }),
                    path: PathBuf::from("/var/log/my app.log.1.gz"),
                    ..read(b"a\nb\n", 4, true)
                },
                Entry {
                    path: PathBuf::from("/var/log/my app.log"),
                    ..read(b"c\nd\n", 2, false)
                },
            ],
            current: 1,
        };
        let current = &set.files[1];
        let mut text = String::new();
        let current = Current {
            input: current.read,
            head: current.head,
            source: current.source,
        };
        set.write(current, &mut text);
        let mut parsing = Parsing::default();
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap();
            parsing.line(key, value).unwrap();
        }
        assert_eq!(parsing.finish(), Some(Some(set)));
    }
}
