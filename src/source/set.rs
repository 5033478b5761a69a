//! `--from PATH`: the log file and the rotated files logrotate leaves beside it, as the
//! checkpoint's [`Candidate`]s, oldest first.
//!
//! A rotated file is `PATH` with a number or a date after it (`app.log.1`, `app.log-20261204`,
//! `app.log-2026-12-04-1733356800`), or before its extension with logrotate's `extension`
//! (`app.1.log`), compressed or not (`.gz`, `.zst`; known by their magic bytes once listed).
//! Numbered files go from the highest number (oldest) down; dated ones by their date; PATH
//! last. While logrotate compresses `app.log.1` into `app.log.1.gz`, both are there: the plain
//! one is read, the other is still being written.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::decompress::{self, Format};
use crate::checkpoint::FINGERPRINT_BYTES;
use crate::checkpoint::set::{Candidate, Seen};

/// One file of the set.
#[derive(Debug)]
pub struct Member {
    path: PathBuf,
    format: Option<Format>,
    seen: Seen,
    order: Order,
    head: Option<Vec<u8>>,
    /// Its content's length, once a compressed one was measured.
    len: Option<u64>,
}

/// Where a file stands in the set: its rotation suffix read as numbers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Order {
    /// A date (its digit groups as numbers): older first.
    Dated(Vec<u64>),
    /// `.N`: the higher, the older.
    Numbered(std::cmp::Reverse<u64>),
    /// PATH itself.
    Live,
}

impl Member {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its compression, if any.
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Its first bytes as looked at when the set was planned, if they were.
    pub fn listed_head(&self) -> Option<&[u8]> {
        self.head.as_deref()
    }

    /// Opens it for reading from its start; `None` when it is gone or no longer the file listed
    /// (rotated meanwhile: the set is listed again). The same inode is not enough:
    /// `copytruncate` empties the file in place and the program writes it anew, so its first
    /// bytes must still be the ones the checkpoint matched it by.
    ///
    /// # Errors
    /// When it is there but cannot be opened.
    pub fn open(&self) -> io::Result<Option<File>> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if file.metadata()?.ino() != self.seen.ino {
            return Ok(None);
        }
        if let (None, Some(head)) = (self.format, &self.head) {
            let mut now = vec![0; head.len()];
            let n = file.read_at(&mut now, 0)?;
            if now[..n] != head[..] {
                return Ok(None);
            }
        }
        Ok(Some(file))
    }

    /// [`Member::open`], a file rotated meanwhile an error (of looking into it).
    fn opened(&self) -> io::Result<File> {
        self.open()?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "rotated meanwhile"))
    }

    fn content(&self) -> io::Result<Box<dyn Read + Send>> {
        let file = self.opened()?;
        match self.format {
            Some(format) => decompress::reader(file, format),
            None => Ok(Box::new(file)),
        }
    }
}

impl Candidate for Member {
    fn path(&self) -> &Path {
        &self.path
    }

    fn seen(&self) -> Seen {
        self.seen
    }

    fn live(&self) -> bool {
        self.order == Order::Live
    }

    fn head(&mut self) -> io::Result<&[u8]> {
        if self.head.is_none() {
            let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
            self.content()?
                .take(FINGERPRINT_BYTES as u64)
                .read_to_end(&mut head)?;
            self.head = Some(head);
        }
        Ok(self.head.as_deref().unwrap_or_default())
    }

    fn content_len(&mut self) -> io::Result<u64> {
        if self.format.is_none() {
            return Ok(self.seen.size);
        }
        if self.len.is_none() {
            // Decompressed once; a checkpoint knows it by its `stat` afterwards.
            self.len = Some(io::copy(&mut self.content()?, &mut io::sink())?);
        }
        Ok(self.len.unwrap_or_default())
    }

    fn before(&mut self, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
        let len = len.min(offset as usize);
        let mut bytes = vec![0; len];
        if self.format.is_none() {
            let file = self.opened()?;
            if file.metadata()?.len() < offset {
                return Ok(None);
            }
            file.read_exact_at(&mut bytes, offset - len as u64)?;
            return Ok(Some(bytes));
        }
        // Compressed: decompressed up to `offset`, once per file (a checkpoint then knows it by
        // its `stat`).
        let mut content = self.content()?;
        let skip = offset - len as u64;
        let skipped = io::copy(&mut (&mut content).take(skip), &mut io::sink())?;
        if skipped < skip {
            return Ok(None);
        }
        match content.read_exact(&mut bytes) {
            Ok(()) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The files of the set at `path`, oldest first (PATH last, when it exists).
///
/// A directory read while logrotate renames files in it may miss a file (renamed to a name
/// already read past) or show one twice: the set is listed until two listings in a row agree
/// (name for name, inode for inode), a few times at most.
///
/// # Errors
/// When PATH's directory cannot be read.
pub fn list(path: &Path) -> io::Result<Vec<Member>> {
    list_with(path, &mut || {})
}

/// [`list`], running `between` in each listing between reading the directory's names and
/// looking at the files they name: the moment a rotation makes a listing wrong, which a test
/// makes happen there.
fn list_with(path: &Path, between: &mut dyn FnMut()) -> io::Result<Vec<Member>> {
    const TRIES: usize = 20;
    let mut last = list_once(path, between)?;
    for _ in 0..TRIES {
        let now = list_once(path, between)?;
        if same_listing(&last, &now) {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Where the log at `path` really is: a symbolic link (`/var/log/containers/*.log`, a log
/// linked into place) followed, so that its rotated files are looked for beside its target.
pub fn resolve(path: &Path) -> PathBuf {
    let mut path = path.to_owned();
    // A few links deep at most: a loop of links is no log.
    for _ in 0..8 {
        match fs::read_link(&path) {
            // A relative target is relative to the link's directory (an absolute one replaces it).
            Ok(target) => path = crate::atomic::parent(&path).join(target),
            Err(_) => break,
        }
    }
    path
}

/// [`list`] of each of `paths`, reading each directory once per listing however many of the
/// logs are in it (a host's thousand logs in one directory).
pub fn list_all(paths: &[PathBuf]) -> Vec<io::Result<Vec<Member>>> {
    const TRIES: usize = 20;
    let resolved: Vec<PathBuf> = paths.iter().map(|p| resolve(p)).collect();
    let pass = |which: &[usize]| -> Vec<io::Result<Vec<Member>>> {
        let mut dirs: std::collections::HashMap<&Path, Result<Vec<OsString>, (io::ErrorKind, String)>> =
            std::collections::HashMap::new();
        which
            .iter()
            .map(|&i| {
                let path = &resolved[i];
                let names = dirs
                    .entry(crate::atomic::parent(path))
                    .or_insert_with_key(|dir| names_in(dir).map_err(|e| (e.kind(), e.to_string())));
                match names {
                    Ok(names) => members_of(path, names),
                    Err((kind, message)) => Err(io::Error::new(*kind, message.clone())),
                }
            })
            .collect()
    };
    let all: Vec<usize> = (0..paths.len()).collect();
    let mut last = pass(&all);
    let mut unsure = all;
    for _ in 0..TRIES {
        let now = pass(&unsure);
        let mut still = Vec::new();
        for (i, now) in unsure.iter().copied().zip(now) {
            let agree = matches!((&last[i], &now), (Ok(a), Ok(b)) if same_listing(a, b));
            if !agree && now.is_ok() {
                still.push(i);
            }
            last[i] = now;
        }
        unsure = still;
        if unsure.is_empty() {
            break;
        }
    }
    last
}

/// True when two listings of a set agree: name for name, inode for inode, and the live log's
/// first bytes (one may have grown into the other's: emptied and written anew in place between
/// two listings, its copy may be missing from the first).
fn same_listing(a: &[Member], b: &[Member]) -> bool {
    let same_start = |a: &Option<Vec<u8>>, b: &Option<Vec<u8>>| match (a, b) {
        (Some(a), Some(b)) => a.starts_with(b) || b.starts_with(a),
        (a, b) => a.is_none() && b.is_none(),
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.path == b.path && a.seen.ino == b.seen.ino && same_start(&a.head, &b.head))
}

/// The names in `dir`, sorted (a set's files are then a range of them); none when it is not
/// there (yet).
fn names_in(dir: &Path) -> io::Result<Vec<OsString>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = entries
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort_unstable();
    Ok(names)
}

/// One reading of the set's directory; none when the directory is not there (yet).
fn list_once(path: &Path, between: &mut dyn FnMut()) -> io::Result<Vec<Member>> {
    let path = &resolve(path);
    let names = names_in(crate::atomic::parent(path))?;
    between();
    members_of(path, &names)
}

/// The files of the set at `path` (resolved) among `names`, its directory's names, sorted.
fn members_of(path: &Path, names: &[OsString]) -> io::Result<Vec<Member>> {
    let dir = crate::atomic::parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    // Every file of the set starts with the name's stem (`app` of `app.log`: `app.log.1`,
    // `app.1.log`, `app-20261204.log`): only that range is looked at.
    let stem = {
        let bytes = name.as_bytes();
        let dot = memchr::memrchr(b'.', bytes)
            .filter(|&i| i > 0)
            .unwrap_or(bytes.len());
        &bytes[..dot]
    };
    let first = names.partition_point(|n| n.as_bytes() < stem);
    let mut members = Vec::new();
    let mut found = Vec::new();
    for file_name in names[first..]
        .iter()
        .take_while(|n| n.as_bytes().starts_with(stem))
    {
        if let Some((order, _)) = rotation(name, file_name) {
            found.push((dir.join(file_name), order));
        }
    }
    for (file, order) in found {
        let meta = match fs::metadata(&file) {
            Ok(meta) if meta.is_file() => meta,
            _ => continue,
        };
        let seen = Seen::of(&meta);
        // The live log's first bytes are taken now, with its name: `copytruncate` rewrites it
        // in place, and first bytes looked at after the listing could be of content newer
        // than the listing knows (its copy missing from it).
        let live = order == Order::Live;
        let first = File::open(&file)
            .and_then(|f| {
                let mut first = Vec::with_capacity(if live { FINGERPRINT_BYTES } else { 4 });
                f.take(if live { FINGERPRINT_BYTES as u64 } else { 4 })
                    .read_to_end(&mut first)
                    .map(|_| first)
            })
            .unwrap_or_default();
        // By its first bytes, whatever its name says.
        let format = Format::sniff(&first[..first.len().min(4)]);
        let head = (live && format.is_none()).then_some(first);
        members.push(Member {
            path: file,
            format,
            seen,
            order,
            head,
            len: None,
        });
    }
    // `app.log.1.gz` beside `app.log.1` is being compressed from it: not read yet.
    let plain: Vec<Order> = members
        .iter()
        .filter(|m| !is_compressed_name(&m.path))
        .map(|m| m.order.clone())
        .collect();
    members.retain(|m| !is_compressed_name(&m.path) || !plain.contains(&m.order));
    members.sort_by(|a, b| a.order.cmp(&b.order));
    Ok(members)
}

/// True when `file` is a rotated file of the log named `name` (both file names).
pub(crate) fn is_rotation_of(name: &OsStr, file: &OsStr) -> bool {
    name != file && rotation(name, file).is_some()
}

fn is_compressed_name(path: &Path) -> bool {
    matches!(path.extension().and_then(OsStr::to_str), Some("gz" | "zst"))
}

/// Where `file` stands in the set of `name` (PATH's file name), and whether its name says it is
/// compressed; `None` when it is not one of the set.
fn rotation(name: &OsStr, file: &OsStr) -> Option<(Order, bool)> {
    if file == name {
        return Some((Order::Live, false));
    }
    let file = file.as_bytes();
    let (file, compressed) = [&b".gz"[..], b".zst"]
        .iter()
        .find_map(|ext| file.strip_suffix(*ext).map(|f| (f, true)))
        .unwrap_or((file, false));
    let name = name.as_bytes();
    // After the whole name (`app.log.1`), or between its stem and extension (`app.1.log`).
    let suffix = file.strip_prefix(name).or_else(|| {
        let dot = memchr::memrchr(b'.', name).filter(|&i| i > 0)?;
        let (stem, ext) = name.split_at(dot);
        file.strip_prefix(stem)?.strip_suffix(ext)
    })?;
    let (&sep, rest) = suffix.split_first()?;
    let is_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if sep == b'.' && is_digits(rest) && rest.len() < 8 {
        let n = std::str::from_utf8(rest).ok()?.parse().ok()?;
        return Some((Order::Numbered(std::cmp::Reverse(n)), compressed));
    }
    // A date: digits and separators, starting and ending with a digit.
    let date_like = matches!(sep, b'-' | b'_' | b'.')
        && rest.first().is_some_and(u8::is_ascii_digit)
        && rest.last().is_some_and(u8::is_ascii_digit)
        && rest
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b':' | b'T'));
    if !date_like {
        return None;
    }
    let groups = rest
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(|g| std::str::from_utf8(g).ok()?.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    Some((Order::Dated(groups), compressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contents of the files a listing found, oldest first.
    fn contents(members: &[Member]) -> Vec<String> {
        members
            .iter()
            .map(|m| fs::read_to_string(&m.path).unwrap())
            .collect()
    }

    #[test]
    fn a_listing_taken_while_logrotate_renames_is_listed_again_until_it_holds_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        fs::write(dir.path().join("app.log.1"), "a\n").unwrap();
        fs::write(&path, "b\n").unwrap();
        // logrotate's `create`, once, after the first listing read the names: that listing
        // finds app.log.1 (now b) and the new app.log (c), and misses app.log.2 (a).
        let mut rotated = false;
        let mut rotate = || {
            if !std::mem::replace(&mut rotated, true) {
                fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2")).unwrap();
                fs::rename(&path, dir.path().join("app.log.1")).unwrap();
                fs::write(&path, "c\n").unwrap();
            }
        };
        let members = list_with(&path, &mut rotate).unwrap();
        assert_eq!(contents(&members), ["a\n", "b\n", "c\n"]);
    }

    #[test]
    fn a_listing_taken_while_logrotate_copies_and_truncates_is_listed_again_until_it_holds_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        fs::write(&path, "a\n").unwrap();
        // `copytruncate` (and a line written after it) while the second listing is between
        // the names (app.log alone, as in the first) and the files: the names agree, the
        // log's first bytes do not.
        let mut listings = 0;
        let mut rotate = || {
            listings += 1;
            if listings == 2 {
                fs::copy(&path, dir.path().join("app.log.1")).unwrap();
                fs::write(&path, "b\n").unwrap();
            }
        };
        let members = list_with(&path, &mut rotate).unwrap();
        assert_eq!(contents(&members), ["a\n", "b\n"]);
    }

    #[test]
    fn a_file_emptied_and_written_anew_since_it_was_listed_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        fs::write(&path, "2026-12-05T00:00:00Z INFO old\n").unwrap();
        let mut members = list(&path).unwrap();
        // copytruncate between the listing and the plan (which looks at the first bytes) and
        // the open: the same inode, other first bytes. Its copy is not in this listing: what
        // the log holds now must not be taken for what it held when listed.
        fs::copy(&path, dir.path().join("app.log.1")).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        fs::write(&path, "2026-12-05T00:00:01Z INFO new\n").unwrap();
        assert_eq!(members[0].head().unwrap(), b"2026-12-05T00:00:00Z INFO old\n");
        assert!(
            members[0].open().unwrap().is_none(),
            "opened a file that is not the one listed"
        );
        // Unchanged, it is opened.
        let mut members = list(&path).unwrap();
        members[0].head().unwrap();
        assert!(members[0].open().unwrap().is_some());
    }

    fn order(names: &[&str]) -> Vec<String> {
        let mut known: Vec<(Order, &str)> = names
            .iter()
            .filter_map(|n| Some((rotation(OsStr::new("app.log"), OsStr::new(n))?.0, *n)))
            .collect();
        known.sort();
        known.into_iter().map(|(_, n)| n.to_owned()).collect()
    }

    #[test]
    fn rotated_files_are_ordered_oldest_first_and_others_left_out() {
        assert_eq!(
            order(&[
                "app.log",
                "app.log.1",
                "app.log.10.gz",
                "app.log.2.gz",
                "app.log.cp",
                "app.log.bak",
                "other.log.1"
            ]),
            ["app.log.10.gz", "app.log.2.gz", "app.log.1", "app.log"]
        );
        assert_eq!(
            order(&[
                "app.log-20261204.gz",
                "app.log",
                "app.log-20261205",
                "app.log-20261130.gz"
            ]),
            [
                "app.log-20261130.gz",
                "app.log-20261204.gz",
                "app.log-20261205",
                "app.log"
            ]
        );
        assert_eq!(
            order(&[
                "app.log-2026-12-05-1733400000",
                "app.log-2026-12-05-1733399999.zst"
            ]),
            [
                "app.log-2026-12-05-1733399999.zst",
                "app.log-2026-12-05-1733400000"
            ]
        );
        // logrotate's `extension .log`.
        assert_eq!(
            order(&["app.2.log.gz", "app.1.log", "app.log"]),
            ["app.2.log.gz", "app.1.log", "app.log"]
        );
    }
}
