//! `--from GLOB` (given once or more) and `--exclude GLOB`: which logs of a host a run reads.
//!
//! A glob is a path whose parts may hold `*` (any run of characters but `/`), `?` (one
//! character), `[...]` (one of a class: `[a-z]`, `[!.]`) and a whole part `**` (any number of
//! directories, none included). As in the shell, a name starting with `.` is matched only by a
//! part that starts with `.`, and `\` takes the next character as it is. [`discover`] walks the
//! directories the globs can match, folds rotated files into their log's set and says which
//! directories a new log could appear in (what a follower watches).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How deep `**` goes at most: a bound on a walk, not a limit anyone should meet.
const MAX_DEPTH: usize = 32;

/// A checked glob, absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    /// As given, for messages.
    text: String,
    /// Its parts below `/`.
    parts: Vec<Part>,
}

/// One part of a glob's path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// A name as it is.
    Name(OsString),
    /// A name with wildcards.
    Wild(Vec<Token>),
    /// `**`: any number of directories.
    AnyDirs,
}

/// One element of a wildcard part.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `?`
    One,
    /// `*`
    Any,
    /// `[...]`: byte ranges, and whether the class is negated.
    Class(Vec<(u8, u8)>, bool),
}

/// What is wrong with a glob.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// A `[` without its `]`.
    #[error("'{0}' has a '[' without its ']': write '\\[' for the character itself")]
    Unclosed(String),
    /// `**` beside other characters in one part.
    #[error("'{0}': '**' must be a whole part of the path ('dir/**/x.log'); for any name use '*'")]
    Stars(String),
    /// Nothing to match.
    #[error("an empty path is no glob")]
    Empty,
    /// A relative glob, and no working directory to make it absolute.
    #[error("'{0}' is relative, and the working directory cannot be read: give an absolute path")]
    Relative(String),
}

impl Glob {
    /// Parses `pattern`, made absolute against the working directory.
    ///
    /// # Errors
    /// When it is not a glob (see [`GlobError`]).
    pub fn new(pattern: &Path) -> Result<Glob, GlobError> {
        let text = pattern.to_string_lossy().into_owned();
        if pattern.as_os_str().is_empty() {
            return Err(GlobError::Empty);
        }
        let absolute = std::path::absolute(pattern).map_err(|_| GlobError::Relative(text.clone()))?;
        let mut parts = Vec::new();
        for part in absolute.as_os_str().as_bytes().split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    // Taken as written: `a/*/../b` is `a/b` only when `*` matches a directory.
                    parts.push(Part::Name(OsString::from("..")));
                }
                b"**" => {
                    if parts.last() != Some(&Part::AnyDirs) {
                        parts.push(Part::AnyDirs);
                    }
                }
                _ => parts.push(Self::part(part, &text)?),
            }
        }
        // `dir/**` is every file below `dir`.
        if parts.last() == Some(&Part::AnyDirs) {
            parts.push(Part::Wild(vec![Token::Any]));
        }
        Ok(Glob { text, parts })
    }

    fn part(part: &[u8], text: &str) -> Result<Part, GlobError> {
        let mut tokens = Vec::new();
        let mut wild = false;
        let mut i = 0;
        while i < part.len() {
            match part[i] {
                b'\\' if i + 1 < part.len() => {
                    tokens.push(Token::Byte(part[i + 1]));
                    i += 1;
                }
                b'*' => {
                    if part.get(i + 1) == Some(&b'*') {
                        return Err(GlobError::Stars(text.to_owned()));
                    }
                    wild = true;
                    tokens.push(Token::Any);
                }
                b'?' => {
                    wild = true;
                    tokens.push(Token::One);
                }
                b'[' => {
                    let (class, end) = class(part, i).ok_or_else(|| GlobError::Unclosed(text.to_owned()))?;
                    wild = true;
                    tokens.push(class);
                    i = end;
                }
                b => tokens.push(Token::Byte(b)),
            }
            i += 1;
        }
        Ok(if wild {
            Part::Wild(tokens)
        } else {
            let name: Vec<u8> = tokens
                .into_iter()
                .map(|t| match t {
                    Token::Byte(b) => b,
                    _ => unreachable!("a part without wildcards holds bytes only"),
                })
                .collect();
            Part::Name(OsStr::from_bytes(&name).to_owned())
        })
    }

    /// The glob as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when it has no wildcard: one path, as `--from PATH` always was.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Name(_)))
    }

    /// The path a literal glob names.
    pub fn literal(&self) -> Option<PathBuf> {
        self.is_literal().then(|| self.prefix(self.parts.len()))
    }

    /// The path of its first `n` parts.
    fn prefix(&self, n: usize) -> PathBuf {
        let mut path = PathBuf::from("/");
        for part in &self.parts[..n] {
            if let Part::Name(name) = part {
                path.push(name);
            }
        }
        path
    }

    /// True when `path` (absolute, without `.` or `..` parts) matches.
    pub fn matches(&self, path: &Path) -> bool {
        let names: Vec<&[u8]> = path
            .as_os_str()
            .as_bytes()
            .split(|&b| b == b'/')
            .filter(|n| !n.is_empty())
            .collect();
        matches_parts(&self.parts, &names)
    }

    /// Walks the file system for the files it matches now: `found` gets each (symbolic links
    /// not resolved), `watch` each directory a new match could appear in.
    fn walk(&self, found: &mut dyn FnMut(PathBuf, FileKey), watch: &mut dyn FnMut(&Path)) {
        // The longest literal start is looked up, not walked.
        let fixed = self
            .parts
            .iter()
            .take_while(|p| matches!(p, Part::Name(_)))
            .count();
        if fixed == self.parts.len() {
            let path = self.prefix(fixed);
            watch(crate::atomic::parent(&path));
            if let Some(key) = regular_file(&path) {
                found(path, key);
            }
            return;
        }
        walk(&self.prefix(fixed), &self.parts[fixed..], 0, found, watch);
    }
}

/// Parses the class starting at `part[start]` (`[`); the class and the index of its `]`.
fn class(part: &[u8], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(part.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    // A `]` first is a member, not the end.
    let first = i;
    while i < part.len() {
        let mut b = part[i];
        if b == b']' && i > first {
            return Some((Token::Class(ranges, negated), i));
        }
        if b == b'\\' && i + 1 < part.len() {
            i += 1;
            b = part[i];
        }
        if part.get(i + 1) == Some(&b'-') && part.get(i + 2).is_some_and(|&e| e != b']') {
            ranges.push((b, part[i + 2]));
            i += 3;
        } else {
            ranges.push((b, b));
            i += 1;
        }
    }
    None
}

/// True when `name` matches one wildcard part.
fn matches_name(tokens: &[Token], name: &[u8]) -> bool {
    // A hidden name only for a part that says so.
    if name.first() == Some(&b'.') && tokens.first() != Some(&Token::Byte(b'.')) {
        return false;
    }
    // Iterative matching with one backtrack point per `*` (the last one seen): linear in
    // practice, never exponential.
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match tokens.get(t) {
            Some(Token::Any) => {
                star = Some((t, n));
                t += 1;
                continue;
            }
            Some(Token::One) => true,
            Some(Token::Byte(b)) => *b == name[n],
            Some(Token::Class(ranges, negated)) => {
                ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&name[n])) != *negated
            }
            None => false,
        };
        if step {
            t += 1;
            n += 1;
        } else if let Some((st, sn)) = star {
            t = st + 1;
            n = sn + 1;
            star = Some((st, sn + 1));
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|t| *t == Token::Any)
}

fn matches_part(part: &Part, name: &[u8]) -> bool {
    match part {
        Part::Name(want) => want.as_bytes() == name,
        Part::Wild(tokens) => matches_name(tokens, name),
        Part::AnyDirs => true,
    }
}

fn matches_parts(parts: &[Part], names: &[&[u8]]) -> bool {
    match parts.split_first() {
        None => names.is_empty(),
        Some((Part::AnyDirs, rest)) => {
            // None, one, ... of the names are directories `**` stands for (hidden ones not).
            (0..=names.len())
                .take_while(|&skip| skip == 0 || names[skip - 1].first() != Some(&b'.'))
                .any(|skip| matches_parts(rest, &names[skip..]))
        }
        Some((part, rest)) => names
            .split_first()
            .is_some_and(|(name, names)| matches_part(part, name) && matches_parts(rest, names)),
    }
}

/// Walks `dir` for `parts`.
fn walk(
    dir: &Path,
    parts: &[Part],
    depth: usize,
    found: &mut dyn FnMut(PathBuf, FileKey),
    watch: &mut dyn FnMut(&Path),
) {
    let Some((part, rest)) = parts.split_first() else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    watch(dir);
    let entries = match part {
        Part::Name(name) => {
            step(&dir.join(name), rest, depth, found, watch);
            return;
        }
        _ => match fs::read_dir(dir) {
            Ok(entries) => entries,
            // Not there (yet), or not a directory: nothing in it to match.
            Err(_) => return,
        },
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let path = dir.join(&name);
        match part {
            Part::AnyDirs => {
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                // Into real directories only (a link could loop), hidden ones left out.
                if is_dir && name.as_bytes().first() != Some(&b'.') {
                    walk(&path, parts, depth + 1, found, watch);
                }
            }
            _ if matches_part(part, name.as_bytes()) => step(&path, rest, depth, found, watch),
            _ => {}
        }
    }
    if *part == Part::AnyDirs {
        // `**` as no directory at all (never last: see `Glob::new`).
        walk(dir, rest, depth, found, watch);
    }
}

/// Goes on at `path`, which matched a part: a file when no parts are left, else a directory.
fn step(
    path: &Path,
    rest: &[Part],
    depth: usize,
    found: &mut dyn FnMut(PathBuf, FileKey),
    watch: &mut dyn FnMut(&Path),
) {
    if rest.is_empty() {
        if let Some(key) = regular_file(path) {
            found(path.to_owned(), key);
        }
    } else if path.is_dir() {
        walk(path, rest, depth + 1, found, watch);
    }
}

/// A file's device and inode: the same file, whichever path leads to it.
type FileKey = (u64, u64);

/// The key of the regular file at `path` (a link followed); `None` for anything else.
fn regular_file(path: &Path) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path)
        .ok()
        .filter(fs::Metadata::is_file)
        .map(|m| (m.dev(), m.ino()))
}

/// What a look at the file system found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The logs: each a set's PATH (`source::set` lists its rotated files), sorted, one per file.
    pub logs: Vec<PathBuf>,
    /// The directories a new match could appear in, sorted.
    pub dirs: Vec<PathBuf>,
}

/// The logs `include` matches now and `exclude` does not. A match that is a rotated file of a
/// log (`app.log.1` of `app.log`, there now or a match `known`) is left to that log's set; a
/// file reached by two paths (a symbolic link) is one log, under the path that sorts first.
pub fn discover(include: &[Glob], exclude: &[Glob], known: &dyn Fn(&Path) -> bool) -> Found {
    let mut matched = Vec::new();
    let mut dirs = Vec::new();
    for glob in include {
        glob.walk(&mut |path, key| matched.push((path, key)), &mut |dir| {
            dirs.push(dir.to_owned())
        });
    }
    matched.sort();
    matched.dedup_by(|a, b| a.0 == b.0);
    let mut logs = Vec::new();
    let mut seen = HashSet::new();
    for (path, key) in matched {
        if log_of(include, exclude, &path, known).as_ref() != Some(&path) {
            continue;
        }
        // One file, one log, whichever path leads to it.
        if seen.insert(key) {
            logs.push(path);
        }
    }
    dirs.sort();
    dirs.dedup();
    Found { logs, dirs }
}

/// The log `path` is part of, as [`discover`] decides: the log it is a rotated file of (a match
/// of `include`, there now or `known`), else itself when `include` matches it and `exclude`
/// does not; `None` when it is no log's.
pub fn log_of(
    include: &[Glob],
    exclude: &[Glob],
    path: &Path,
    known: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let wanted =
        |path: &Path| include.iter().any(|g| g.matches(path)) && !exclude.iter().any(|g| g.matches(path));
    let base = base_names(path)
        .into_iter()
        .find(|base| base != path && wanted(base) && (base.is_file() || known(base)));
    base.or_else(|| wanted(path).then(|| path.to_owned()))
}

/// The logs `path` could be a rotated file of (`app.log` for `app.log.1`, `app.log-2026.gz`,
/// `app.1.log`), by `source::set`'s rules.
fn base_names(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name() else {
        return Vec::new();
    };
    let dir = crate::atomic::parent(path);
    let bytes = name.as_bytes();
    let mut bases = Vec::new();
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        if !matches!(b, b'.' | b'-' | b'_') {
            continue;
        }
        // After the whole name (`app.log.1`), or before its extension (`app.1.log`).
        let mut candidates = vec![bytes[..i].to_vec()];
        for (j, &e) in bytes.iter().enumerate().skip(i + 1) {
            if e == b'.' {
                candidates.push([&bytes[..i], &bytes[j..]].concat());
            }
        }
        for base in candidates {
            let base = OsStr::from_bytes(&base);
            if super::set::is_rotation_of(base, name) {
                bases.push(dir.join(base));
            }
        }
    }
    bases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(text: &str) -> Glob {
        Glob::new(Path::new(text)).unwrap()
    }

    #[test]
    fn wildcards_match_within_one_part_of_the_path() {
        let g = glob("/var/log/*.log");
        assert!(g.matches(Path::new("/var/log/app.log")));
        assert!(!g.matches(Path::new("/var/log/.log")));
        assert!(!g.matches(Path::new("/var/log/nginx/app.log")));
        assert!(!g.matches(Path::new("/var/log/app.log.1")));
        let g = glob("/var/log/app?.[k-m]og");
        assert!(g.matches(Path::new("/var/log/app1.log")));
        assert!(!g.matches(Path::new("/var/log/app1.dog")));
        assert!(!g.matches(Path::new("/var/log/app12.log")));
        let g = glob("/l/[!.]*");
        assert!(g.matches(Path::new("/l/x")));
        assert!(!g.matches(Path::new("/l/.x")));
        assert!(glob("/l/a*b*c").matches(Path::new("/l/aXbYbZc")));
        assert!(!glob("/l/a*b*c").matches(Path::new("/l/aXbYbZ")));
        assert!(glob("/l/\\*").matches(Path::new("/l/*")));
        assert!(!glob("/l/\\*").matches(Path::new("/l/x")));
    }

    #[test]
    fn hidden_names_are_matched_only_by_a_part_that_starts_with_a_dot() {
        assert!(!glob("/l/*").matches(Path::new("/l/.app.log")));
        assert!(glob("/l/.*").matches(Path::new("/l/.app.log")));
        assert!(!glob("/l/**/*.log").matches(Path::new("/l/.git/app.log")));
    }

    #[test]
    fn two_stars_stand_for_any_number_of_directories() {
        let g = glob("/var/log/pods/**/*.log");
        assert!(g.matches(Path::new("/var/log/pods/0.log")));
        assert!(g.matches(Path::new("/var/log/pods/ns_pod_uid/c/0.log")));
        assert!(!g.matches(Path::new("/var/log/0.log")));
        assert!(glob("/a/**").matches(Path::new("/a/b/c")));
    }

    #[test]
    fn a_bad_glob_says_what_to_write() {
        assert_eq!(
            Glob::new(Path::new("/l/[ab")).unwrap_err(),
            GlobError::Unclosed("/l/[ab".to_owned())
        );
        assert!(matches!(
            Glob::new(Path::new("/l/x**.log")),
            Err(GlobError::Stars(_))
        ));
        assert!(glob("/l/[]]").matches(Path::new("/l/]")));
        assert!(glob("/l/a.log").is_literal());
        assert_eq!(glob("/l/./a.log").literal(), Some(PathBuf::from("/l/a.log")));
    }

    fn touch(dir: &Path, names: &[&str]) {
        for name in names {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x\n").unwrap();
        }
    }

    fn names(dir: &Path, paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn discovery_folds_rotated_files_into_their_log_and_leaves_out_excluded_ones() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(
            d,
            &[
                "app.log",
                "app.log.1",
                "app.log-20261204.gz",
                "app.2.log",
                "db.log",
                "debug.log",
                "old.log.3",
                "2026-12-05.log",
                "2026-12-06.log",
                "sub/x.log",
            ],
        );
        let found = discover(
            &[glob(&format!("{}/*", d.display()))],
            &[glob(&format!("{}/debug*", d.display()))],
            &|_| false,
        );
        assert_eq!(
            names(d, &found.logs),
            [
                "2026-12-05.log",
                "2026-12-06.log",
                "app.log",
                "db.log",
                "old.log.3"
            ]
        );
        assert_eq!(found.dirs, [d.to_owned()]);
        // A log renamed away a moment ago (logrotate's `create` before it makes the new one)
        // is still the log its rotated files belong to.
        let found = discover(&[glob(&format!("{}/*", d.display()))], &[], &|p| {
            p.ends_with("old.log")
        });
        assert!(!names(d, &found.logs).contains(&"old.log.3".to_owned()));
    }

    #[test]
    fn discovery_walks_two_stars_and_says_which_directories_to_watch() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(
            d,
            &[
                "pods/a_p1_u1/c/0.log",
                "pods/a_p1_u1/c/0.log.20261205-100000",
                "pods/b_p2_u2/c/1.log",
                "pods/x.txt",
                "pods/.hidden/2.log",
            ],
        );
        let found = discover(&[glob(&format!("{}/pods/**/*.log", d.display()))], &[], &|_| {
            false
        });
        assert_eq!(
            names(d, &found.logs),
            ["pods/a_p1_u1/c/0.log", "pods/b_p2_u2/c/1.log"]
        );
        assert_eq!(
            names(d, &found.dirs),
            [
                "pods",
                "pods/a_p1_u1",
                "pods/a_p1_u1/c",
                "pods/b_p2_u2",
                "pods/b_p2_u2/c"
            ]
        );
    }

    #[test]
    fn two_paths_to_one_file_are_one_log() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(d, &["pods/p/c/0.log"]);
        fs::create_dir(d.join("containers")).unwrap();
        std::os::unix::fs::symlink(d.join("pods/p/c/0.log"), d.join("containers/p_c.log")).unwrap();
        let found = discover(
            &[
                glob(&format!("{}/containers/*.log", d.display())),
                glob(&format!("{}/pods/*/*/*.log", d.display())),
            ],
            &[],
            &|_| false,
        );
        assert_eq!(names(d, &found.logs), ["containers/p_c.log"]);
    }
}
