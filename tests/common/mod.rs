//! Shared helpers for the end-to-end tests: run the real binary hermetically, in a temp dir.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};

/// Path of the built `ingest` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_ingest");

/// `ingest` with a clean environment (no `RUST_LOG` from the developer's shell).
pub fn ingest() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(BIN);
    cmd.env_clear();
    cmd
}

/// A temporary directory that lives as long as the test holds it.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> String {
        read(&self.path(name))
    }
}

pub fn read(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    String::from_utf8(bytes).expect("UTF-8 output")
}

/// `n` valid lines with distinct, calendar-valid timestamps: `... INFO Message {i}` for i in 0..n.
pub fn valid_lines(n: usize) -> String {
    valid_lines_range(0..n)
}

/// Lines `range` of the endless sequence that [`valid_lines`] starts.
pub fn valid_lines_range(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
            format!("2026-04-15T{h:02}:{m:02}:{s:02}Z INFO Message {i}\n")
        })
        .collect()
}

/// What the text format makes of `valid_lines(n)`.
pub fn expected_text(n: usize) -> String {
    (0..n)
        .map(|i| format!("{:>6} {:>5} Message {i}\n", i + 1, "INFO"))
        .collect()
}
