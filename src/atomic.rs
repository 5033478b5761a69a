//! Replacing a small file atomically: the checkpoint, `--stats-json`, `--metrics-textfile`.
//!
//! Each replacement writes a temporary file of its own (a unique name in the same directory,
//! created with `O_EXCL`), fsyncs it, renames it over the target and fsyncs the directory. So no
//! two writers, and no two files of one run, ever share a temporary name, and a reader sees the
//! old contents or the new, never a mix.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory `path` is in (`.` for a bare file name).
pub fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes the directory entries of `path`'s directory durable (a new name, a rename).
///
/// # Errors
/// When the directory cannot be opened or synced.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    File::open(parent(path))?.sync_all()
}

/// Creates a temporary file beside `path` that no one else has: `.NAME.PID.N.tmp`, `O_EXCL`.
fn create_temporary(path: &Path) -> io::Result<(File, PathBuf)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or(path.as_os_str());
    loop {
        let mut tmp = OsString::from(".");
        tmp.push(name);
        tmp.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = parent(path).join(tmp);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((file, tmp)),
            // Left behind by a killed process that had our pid: take the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Replaces `path` with `contents`: temporary file, fsync, rename, fsync the directory.
///
/// # Errors
/// When the temporary file cannot be created, written or renamed; it is removed again then.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let (mut file, tmp) = create_temporary(path)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_never_touches_a_file_named_like_its_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // The names the old scheme used: PATH.with_extension("tmp") and PATH + ".tmp".
        for neighbour in ["state.tmp", "state.cp.tmp"] {
            fs::write(dir.path().join(neighbour), "keep me").unwrap();
        }
        let path = dir.path().join("state.cp");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        for neighbour in ["state.tmp", "state.cp.tmp"] {
            assert_eq!(fs::read_to_string(dir.path().join(neighbour)).unwrap(), "keep me");
        }
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 3, "no temporary file left behind: {left:?}");
    }

    #[test]
    fn a_file_named_tmp_is_replaced_through_a_temporary_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("st.tmp");
        fs::write(&path, "old").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }
}
