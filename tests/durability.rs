//! Durability as the kernel sees it: the real binary under `strace`, its system calls checked in
//! order. A SIGKILL never loses the page cache, so kill tests cannot see a missing fsync; this
//! can. Needs `strace` (`apt-get install strace`; `.ci/test` installs it).

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::process::Command;

use common::strace::{calls, quoted, rename_paths};
use common::{BIN, Scratch};

fn field(checkpoint: &str, key: &str) -> u64 {
    checkpoint
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {checkpoint:?}"))
}

#[test]
fn every_commit_names_only_bytes_already_synced_and_a_file_already_in_its_directory() {
    common::strace::require();
    let dir = Scratch::new();
    let input: String = (0..60_000)
        .map(|i| match i % 50 {
            49 => format!("Traceback line {i}\n"),
            _ => format!("2026-04-15T00:00:00Z INFO message {i}\n"),
        })
        .collect();
    std::fs::write(dir.path("in.log"), &input).unwrap();
    let status = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-s",
            "4096",
            "-e",
            "trace=openat,write,fsync,fdatasync,rename,renameat2,ftruncate",
            "-o",
        ])
        .arg(dir.path("trace"))
        .arg(BIN)
        .args(["-q", "--checkpoint-bytes", "65536", "--checkpoint"])
        .arg(dir.path("cp"))
        .arg("--rejects")
        .arg(dir.path("rejects.tsv"))
        .arg(dir.path("out.log"))
        .env_clear()
        .stdin(File::open(dir.path("in.log")).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}");

    let (out, rejects, cp) = (dir.path("out.log"), dir.path("rejects.tsv"), dir.path("cp"));
    let (out, rejects, cp) = (
        out.to_str().unwrap(),
        rejects.to_str().unwrap(),
        cp.to_str().unwrap(),
    );
    let directory = dir.path("");
    let directory = directory.to_str().unwrap().trim_end_matches('/');
    let mut open: HashMap<i64, String> = HashMap::new();
    let mut written: HashMap<String, u64> = HashMap::new();
    let mut synced: HashMap<String, u64> = HashMap::new();
    let mut contents: HashMap<String, String> = HashMap::new();
    // Files created in the directory since it was last synced.
    let mut unsynced_names: Vec<String> = Vec::new();
    let mut commits = 0;
    let trace = std::fs::read_to_string(dir.path("trace")).unwrap();
    for call in calls(&trace) {
        let fd = || {
            call.args
                .split(',')
                .next()
                .unwrap()
                .trim()
                .parse::<i64>()
                .unwrap_or(-1)
        };
        match call.name.as_str() {
            "openat" if call.result >= 0 => {
                let path = quoted(&call.args);
                if call.args.contains("O_CREAT") {
                    unsynced_names.push(path.clone());
                }
                open.insert(call.result, path);
            }
            "write" if call.result > 0 => {
                if let Some(path) = open.get(&fd()) {
                    *written.entry(path.clone()).or_default() += call.result as u64;
                    contents
                        .entry(path.clone())
                        .or_default()
                        .push_str(&quoted(&call.args));
                }
            }
            "fsync" | "fdatasync" if call.result == 0 => {
                let Some(path) = open.get(&fd()) else { continue };
                if path.trim_end_matches('/') == directory {
                    unsynced_names.clear();
                } else {
                    synced.insert(path.clone(), written.get(path).copied().unwrap_or(0));
                }
            }
            "rename" | "renameat2" if call.result == 0 => {
                let (from, to) = rename_paths(&call.args);
                if to != cp {
                    continue;
                }
                commits += 1;
                // A rename makes a new directory entry: durable once the directory is synced.
                unsynced_names.push(to.clone());
                let state = contents.get(&from).cloned().unwrap_or_default();
                assert_eq!(
                    synced.get(&from).copied(),
                    written.get(&from).copied(),
                    "commit {commits}: the checkpoint's temporary was renamed before it was synced"
                );
                for (file, key) in [(out, "output_bytes"), (rejects, "rejects_bytes")] {
                    let named = field(&state, key);
                    let durable = synced.get(file).copied().unwrap_or(0);
                    assert!(
                        named <= durable,
                        "commit {commits} names {named} bytes of {file}, only {durable} were synced"
                    );
                    assert!(
                        !unsynced_names.iter().any(|n| n == file),
                        "commit {commits} names {file}, whose directory entry was not synced yet"
                    );
                }
            }
            _ => {}
        }
    }
    assert!(
        commits >= 3,
        "only {commits} commits seen; the trace: {} calls",
        calls(&trace).len()
    );
    assert!(
        unsynced_names.iter().all(|n| !n.ends_with("/cp")),
        "the last rename was never made durable"
    );
}
