//! Where a run is in its input, and how the checkpoint recognises an input by its bytes: the
//! leaf the checkpoint's other parts share.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::record::RejectReason;

/// How many leading bytes of the input identify it.
pub const FINGERPRINT_BYTES: usize = 4096;

/// Where a run starts in its input: bytes and lines already consumed (and committed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Input bytes before this point.
    pub offset: u64,
    /// Input lines before this point; the next line's number is `lines + 1`.
    pub lines: u64,
    /// `--multiline`: the point is inside a record past what it keeps, whose further lines (up
    /// to the next record's start) are rejected for this reason. A rerun that starts here
    /// rejects them the same way instead of taking the first as a record of its own.
    pub continues: Option<RejectReason>,
    /// A container's log: the streams (bit 0 stdout, bit 1 stderr) inside a line too long to
    /// keep, whose further pieces are skipped up to its last one (see
    /// [`crate::layout::container::Open`]).
    pub skipping: u8,
    /// A hash of the input's last bytes before this point (at most [`CONTEXT_BYTES`]), when
    /// known: with the fingerprint of its first bytes, what tells a rotated file from another
    /// that starts the same (a banner).
    pub context: Option<Fingerprint>,
}

/// How many input bytes before a position its [`Position::context`] covers, at most.
pub const CONTEXT_BYTES: usize = 256;

/// A hash of some of the input's bytes (its first ones, or those before a position), and how
/// many bytes it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub(super) len: u64,
    pub(super) hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `bytes`.
    pub fn of(bytes: &[u8]) -> Fingerprint {
        // FNV-1a: tiny, and stable across Rust releases, unlike the std hasher.
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Fingerprint {
            len: bytes.len() as u64,
            hash,
        }
    }

    /// The fingerprint of the last [`CONTEXT_BYTES`] (at most) of `bytes`.
    pub fn of_end(bytes: &[u8]) -> Fingerprint {
        Fingerprint::of(&bytes[bytes.len().saturating_sub(CONTEXT_BYTES)..])
    }

    /// How many bytes it covers.
    pub fn covers(&self) -> u64 {
        self.len
    }

    /// True when `prefix` (the input's first bytes) starts with what this fingerprint saw.
    pub(super) fn matches(&self, prefix: &[u8]) -> bool {
        prefix.len() as u64 >= self.len && Fingerprint::of(&prefix[..self.len as usize]).hash == self.hash
    }

    pub(super) fn parse(text: &str) -> Option<Fingerprint> {
        let (len, hash) = text.split_once(':')?;
        Some(Fingerprint {
            len: len.parse().ok()?,
            hash: u64::from_str_radix(hash, 16).ok()?,
        })
    }
}

/// As the checkpoint writes it: `LEN:HASH`.
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:016x}", self.len, self.hash)
    }
}

/// A path on one line of text: `\` and newline escaped, other bytes as they are (lossy for
/// invalid UTF-8, which then only fails to match and is reported).
pub(super) fn escape(path: &std::ffi::OsStr) -> std::borrow::Cow<'_, str> {
    let text = String::from_utf8_lossy(path.as_bytes());
    // Most paths have nothing to escape: no copy (a commit escapes every path it moves).
    if !text.contains(['\\', '\n']) {
        return text;
    }
    text.replace('\\', "\\\\").replace('\n', "\\n").into()
}

/// The path [`escape`] wrote.
pub(super) fn unescape(text: &str) -> Option<OsString> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.bytes();
    while let Some(b) = chars.next() {
        match b {
            b'\\' => out.push(match chars.next()? {
                b'n' => b'\n',
                b'\\' => b'\\',
                _ => return None,
            }),
            b => out.push(b),
        }
    }
    Some(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::{escape, unescape};
    use std::ffi::OsStr;

    /// A path is one line of the checkpoint whatever it holds, and reads back as it was.
    #[test]
    fn paths_with_backslashes_and_newlines_are_one_line_and_read_back() {
        for path in [
            "/var/log/app.log",
            "/logs/a\\b.log",
            "/logs/two\nlines.log",
            "\\n\\\n",
        ] {
            let escaped = escape(OsStr::new(path));
            assert!(!escaped.contains('\n'), "{escaped:?}");
            assert_eq!(unescape(&escaped).as_deref(), Some(OsStr::new(path)));
        }
        assert_eq!(escape(OsStr::new("/logs/a\\b\n")), "/logs/a\\\\b\\n");
    }
}
