//! The checkpoint of many logs: a snapshot of every log's entry, then the commits appended to
//! it, each naming only the entries that moved. So a commit costs what moved, not what is known
//! (one busy log among 10,000 writes a few hundred bytes), and stays atomic for all logs at once.
//!
//! The file starts `ingest checkpoint 3`; then records, each a few lines: `= HEAD` (what holds
//! for the whole run at that commit: OUTPUT's length, ...), `+ KEY` and `> VALUE` (an entry
//! set), `- KEY` (an entry gone), each escaped as the checkpoint's paths are (`\n`, `\\`), and
//! last `. LEN HASH`: the record's length and a hash of its bytes before
//! that line. A record counts whole or not at all: a torn tail (a power cut mid-append) ends
//! the replay there, and the next commit writes over it. The first record is the snapshot; once
//! the records after it outgrow it (and [`COMPACT_BYTES`]), a commit writes a fresh snapshot
//! instead, replacing the file atomically.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::position::{Fingerprint, escape, unescape};
use crate::atomic;

/// The file's first line.
pub const MAGIC: &str = "ingest checkpoint 3\n";

/// Appended records may grow to this much (or the snapshot's size, if larger) before the next
/// commit writes a fresh snapshot.
pub const COMPACT_BYTES: u64 = 1 << 20;

/// A journaled checkpoint, open for commits.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Where the last whole record ends: the next one is written here.
    end: u64,
    /// How long the snapshot (with the first line) is.
    snapshot: u64,
    head: String,
    entries: BTreeMap<String, String>,
}

/// What a replay found.
struct Replayed {
    head: String,
    entries: BTreeMap<String, String>,
    end: u64,
    snapshot: u64,
}

impl Journal {
    /// Writes a new journal at `path` holding `head` and `entries` (replacing any file there).
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn create(path: &Path, head: &str, entries: BTreeMap<String, String>) -> io::Result<Journal> {
        let snapshot = snapshot(head, &entries);
        atomic::write(path, &snapshot)?;
        Ok(Journal {
            path: path.to_owned(),
            file: OpenOptions::new().write(true).open(path)?,
            end: snapshot.len() as u64,
            snapshot: snapshot.len() as u64,
            head: head.to_owned(),
            entries,
        })
    }

    /// Opens the journal at `path`, replayed up to its last whole record; `None` when the file
    /// is not a journal (or not there).
    ///
    /// # Errors
    /// When it cannot be read, or its snapshot is not whole (no run writes one so).
    pub fn open(path: &Path) -> io::Result<Option<Journal>> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !bytes.starts_with(MAGIC.as_bytes()) {
            return Ok(None);
        }
        let replayed = replay(&bytes).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "its snapshot is cut short or altered")
        })?;
        Ok(Some(Journal {
            path: path.to_owned(),
            file: OpenOptions::new().write(true).open(path)?,
            end: replayed.end,
            snapshot: replayed.snapshot,
            head: replayed.head,
            entries: replayed.entries,
        }))
    }

    /// What holds for the whole run at the last commit.
    pub fn head(&self) -> &str {
        &self.head
    }

    /// The entries at the last commit, by key.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.entries
    }

    /// Commits `head` and the entries that changed (`None`: gone), durably, all or none;
    /// returns how many bytes it wrote.
    ///
    /// # Errors
    /// When the file cannot be written or synced; the journal then holds the last commit (a
    /// torn record counts for nothing).
    pub fn commit<'a>(
        &mut self,
        head: &str,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> io::Result<u64> {
        let changes: Vec<(&str, Option<&str>)> = changes.into_iter().collect();
        if changes.is_empty() && head == self.head {
            // Nothing to say: no write, no sync.
            return Ok(0);
        }
        let mut record = Vec::new();
        push_line(&mut record, '=', head, None);
        // Which keys the entries hold as the record goes (they are changed only once it is
        // written: copying thousands of entries per commit would cost what is known).
        let mut added = std::collections::HashSet::new();
        let mut removed = std::collections::HashSet::new();
        for &(key, value) in &changes {
            match value {
                Some(value) => {
                    push_line(&mut record, '+', key, Some(value));
                    added.insert(key);
                    removed.remove(key);
                }
                None => {
                    if added.contains(key) || (self.entries.contains_key(key) && !removed.contains(key)) {
                        push_line(&mut record, '-', key, None);
                    }
                    added.remove(key);
                    removed.insert(key);
                }
            }
        }
        let apply = |entries: &mut BTreeMap<String, String>| {
            for &(key, value) in &changes {
                match value {
                    Some(value) => drop(entries.insert(key.to_owned(), value.to_owned())),
                    None => drop(entries.remove(key)),
                }
            }
        };
        let appended = self.end - self.snapshot;
        if appended + record.len() as u64 > COMPACT_BYTES.max(self.snapshot) {
            // A fresh snapshot instead: replay stays quick, the file stays near its snapshot
            // (rarely: a copy of the entries, which stay as they were should it fail).
            let mut entries = self.entries.clone();
            apply(&mut entries);
            *self = Journal::create(&self.path, head, entries)?;
            return Ok(self.end);
        }
        close(&mut record);
        self.file.write_all_at(&record, self.end)?;
        let end = self.end + record.len() as u64;
        // A torn record of an earlier run past it, if any, is cut off with it.
        self.file.set_len(end)?;
        self.file.sync_data()?;
        self.end = end;
        head.clone_into(&mut self.head);
        apply(&mut self.entries);
        Ok(record.len() as u64)
    }
}

/// The whole journal as one record: the first line, `head` and every entry.
fn snapshot(head: &str, entries: &BTreeMap<String, String>) -> Vec<u8> {
    let mut record = Vec::new();
    push_line(&mut record, '=', head, None);
    for (key, value) in entries {
        push_line(&mut record, '+', key, Some(value));
    }
    close(&mut record);
    [MAGIC.as_bytes(), &record].concat()
}

/// Ends `record` with its length and hash.
fn close(record: &mut Vec<u8>) {
    let closing = format!(". {} {:016x}\n", record.len(), Fingerprint::of(record).hash);
    record.extend_from_slice(closing.as_bytes());
}

fn push_line(record: &mut Vec<u8>, op: char, key: &str, value: Option<&str>) {
    let mut line = |op: char, text: &str| {
        let mut bytes = [0; 4];
        record.extend_from_slice(op.encode_utf8(&mut bytes).as_bytes());
        record.push(b' ');
        record.extend_from_slice(escape(OsStr::new(text)).as_bytes());
        record.push(b'\n');
    };
    line(op, key);
    if let Some(value) = value {
        line('>', value);
    }
}

/// A line's text, as [`push_line`] escaped it.
fn text(line: &str) -> Option<String> {
    unescape(line)?.into_string().ok()
}

/// Replays `bytes` (starting with [`MAGIC`]) up to the last whole record; `None` when not even
/// the snapshot is whole.
fn replay(bytes: &[u8]) -> Option<Replayed> {
    let mut at = MAGIC.len();
    let mut replayed: Option<Replayed> = None;
    while let Some((ops, next)) = record(bytes, at) {
        let state = replayed.get_or_insert_with(|| Replayed {
            head: String::new(),
            entries: BTreeMap::new(),
            end: 0,
            snapshot: next as u64,
        });
        for op in ops {
            match op {
                Op::Head(head) => state.head = head,
                Op::Set(key, value) => {
                    state.entries.insert(key, value);
                }
                Op::Remove(key) => {
                    state.entries.remove(&key);
                }
            }
        }
        state.end = next as u64;
        at = next;
    }
    replayed
}

enum Op {
    Head(String),
    Set(String, String),
    Remove(String),
}

/// The whole record at `bytes[start..]`, and where it ends; `None` when none is whole there.
fn record(bytes: &[u8], start: usize) -> Option<(Vec<Op>, usize)> {
    let mut ops = Vec::new();
    let mut at = start;
    // `+ KEY`, waiting for its `> VALUE`.
    let mut key = None;
    loop {
        let len = memchr::memchr(b'\n', &bytes[at..])?;
        let line = std::str::from_utf8(&bytes[at..at + len]).ok()?;
        let next = at + len + 1;
        let (op, rest) = line.split_once(' ')?;
        match op {
            "." => {
                let (length, hash) = rest.split_once(' ')?;
                let body = &bytes[start..at];
                let whole = length.parse::<usize>().ok()? == body.len()
                    && u64::from_str_radix(hash, 16).ok()? == Fingerprint::of(body).hash;
                return whole.then_some((ops, next));
            }
            "=" => ops.push(Op::Head(text(rest)?)),
            "+" => key = Some(text(rest)?),
            ">" => ops.push(Op::Set(key.take()?, text(rest)?)),
            "-" => ops.push(Op::Remove(text(rest)?)),
            _ => return None,
        }
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_commit_writes_what_moved_and_a_reopen_sees_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let known: BTreeMap<String, String> = (0..10_000)
            .map(|i| {
                (
                    format!("/var/log/app/{i}.log"),
                    format!("file 4096:{i:016x} 0 0 -\nfile more {i}"),
                )
            })
            .collect();
        let mut journal = Journal::create(&path, "output 0", known.clone()).unwrap();
        let before = fs::metadata(&path).unwrap().len();
        let wrote = journal
            .commit(
                "output 120",
                [("/var/log/app/7.log", Some("file 4096:7 120 3 -"))],
            )
            .unwrap();
        assert!(wrote < 200, "a commit of one log wrote {wrote} bytes");
        assert_eq!(fs::metadata(&path).unwrap().len(), before + wrote);
        journal
            .commit(
                "output 130",
                [("/var/log/app/8.log", None), ("new one.log", Some("a \\ b\nc"))],
            )
            .unwrap();
        let again = Journal::open(&path).unwrap().unwrap();
        let mut want = known;
        want.insert("/var/log/app/7.log".into(), "file 4096:7 120 3 -".into());
        want.remove("/var/log/app/8.log");
        want.insert("new one.log".into(), "a \\ b\nc".into());
        assert_eq!(again.head(), "output 130");
        assert_eq!(again.entries(), &want);
    }

    #[test]
    fn a_record_cut_anywhere_counts_for_nothing_and_the_next_commit_writes_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let mut journal = Journal::create(&path, "h0", entries(&[("a", "1"), ("b", "2")])).unwrap();
        journal.commit("h1", [("a", Some("10"))]).unwrap();
        let whole = fs::read(&path).unwrap();
        let last = journal
            .commit("h2", [("b", Some("20")), ("c", Some("3"))])
            .unwrap() as usize;
        let full = fs::read(&path).unwrap();
        for cut in whole.len()..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let mut torn = Journal::open(&path).unwrap().unwrap();
            assert_eq!(torn.head(), "h1", "cut at {cut}");
            assert_eq!(torn.entries(), &entries(&[("a", "10"), ("b", "2")]));
            torn.commit("h3", [("b", Some("30"))]).unwrap();
            let after = Journal::open(&path).unwrap().unwrap();
            assert_eq!(
                (after.head(), after.entries()),
                ("h3", &entries(&[("a", "10"), ("b", "30")]))
            );
        }
        assert_eq!(full.len() - whole.len(), last);
        // A changed byte is a torn record too.
        let mut flipped = full.clone();
        flipped[whole.len() + 3] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert_eq!(Journal::open(&path).unwrap().unwrap().head(), "h1");
    }

    #[test]
    fn commits_past_the_snapshot_size_write_a_fresh_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let mut journal = Journal::create(&path, "h", entries(&[("a", "0")])).unwrap();
        let value = "x".repeat(1000);
        for i in 0..3000 {
            journal
                .commit(
                    &format!("h{i}"),
                    [("a", Some(value.as_str())), ("n", Some(&*i.to_string()))],
                )
                .unwrap();
            assert!(fs::metadata(&path).unwrap().len() < 2 * COMPACT_BYTES + 4096);
        }
        let again = Journal::open(&path).unwrap().unwrap();
        assert_eq!(again.head(), "h2999");
        assert_eq!(again.entries(), &entries(&[("a", &value), ("n", "2999")]));
    }

    #[test]
    fn a_file_that_is_no_journal_is_none_and_a_cut_snapshot_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        assert!(Journal::open(&path).unwrap().is_none());
        fs::write(&path, "ingest checkpoint 2\n").unwrap();
        assert!(Journal::open(&path).unwrap().is_none());
        Journal::create(&path, "h", entries(&[("a", "1")])).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        assert!(Journal::open(&path).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_key_and_value_survive_a_round_trip(key in "\\PC*", value in "(\\PC|\n| |\\\\)*") {
            let mut record = Vec::new();
            push_line(&mut record, '+', &key, Some(&value));
            close(&mut record);
            let (ops, end) = record_at(&record);
            proptest::prop_assert_eq!(end, record.len());
            match &ops[..] {
                [Op::Set(k, v)] => {
                    proptest::prop_assert_eq!(k, &key);
                    proptest::prop_assert_eq!(v, &value);
                }
                _ => proptest::prop_assert!(false, "one set"),
            }
        }
    }

    fn record_at(bytes: &[u8]) -> (Vec<Op>, usize) {
        record(bytes, 0).expect("a whole record")
    }
}
