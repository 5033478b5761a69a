//! `--checkpoint`: exactly-once reruns, proven with real SIGKILLs, growing files and rotation.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Scratch, ingest};
use predicates::prelude::*;

/// `n` lines, every 37th of them bad, so both files get written.
fn corpus(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        if i % 37 == 36 {
            out.extend_from_slice(format!("Traceback line {i}\n").as_bytes());
        } else {
            let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
            out.extend_from_slice(format!("2026-04-15T{h:02}:{m:02}:{s:02}Z INFO message {i}\n").as_bytes());
        }
    }
    out
}

/// Runs ingest on `input` (a regular file on stdin) with a checkpoint and a rejects file.
fn checkpointed(dir: &Scratch, input: &Path, name: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args(["-q", "--checkpoint-bytes", "65536", "--checkpoint"])
        .arg(dir.path(&format!("{name}.cp")))
        .arg("--rejects")
        .arg(dir.path(&format!("{name}.rej")))
        .arg(dir.path(&format!("{name}.log")))
        .stdin(File::open(input).unwrap())
        .stderr(Stdio::null());
    cmd
}

/// `ingest --checkpoint DIR/cp DIR/out.log`, for the runs that feed their own stdin.
fn checkpointed_to_out(dir: &Scratch) -> assert_cmd::Command {
    let mut cmd = ingest();
    cmd.arg("--checkpoint")
        .arg(dir.path("cp"))
        .arg(dir.path("out.log"));
    cmd
}

/// xorshift: the kill times vary from run to run; the seed is printed to replay a failure.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn runs_killed_at_random_moments_and_rerun_write_every_record_exactly_once() {
    let dir = Scratch::new();
    let input = dir.path("input.log");
    std::fs::write(&input, corpus(300_000)).unwrap();
    let status = checkpointed(&dir, &input, "reference").status().unwrap();
    assert!(status.success());

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let mut killed_mid_run = 0;
    for attempt in 0.. {
        let mut child = checkpointed(&dir, &input, "run").spawn().unwrap();
        if attempt < 8 {
            // Deliberately random: a kill can land in a write, a commit, or between them.
            std::thread::sleep(Duration::from_millis(5 + rng.below(150)));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let status = child.wait().unwrap();
        if status.success() {
            break;
        }
        killed_mid_run += 1;
        assert!(attempt < 50, "seed {seed}: never finished");
    }
    assert!(
        killed_mid_run > 0,
        "seed {seed}: every run finished before its kill; nothing was tested"
    );
    for name in ["log", "rej"] {
        let expected = std::fs::read(dir.path(&format!("reference.{name}"))).unwrap();
        let actual = std::fs::read(dir.path(&format!("run.{name}"))).unwrap();
        assert!(
            expected == actual,
            "seed {seed}, {killed_mid_run} kills: run.{name} differs ({} bytes, expected {})",
            actual.len(),
            expected.len()
        );
    }
}

#[test]
fn a_growing_file_is_processed_one_new_part_per_run() {
    let dir = Scratch::new();
    let input = dir.path("app.log");
    let all = corpus(3000);
    let cut = |lines: usize| {
        all.split_inclusive(|&b| b == b'\n')
            .take(lines)
            .flatten()
            .copied()
            .collect::<Vec<u8>>()
    };
    std::fs::write(&input, cut(1000)).unwrap();
    assert!(checkpointed(&dir, &input, "out").status().unwrap().success());
    std::fs::write(&input, cut(2500)).unwrap(); // the log grew
    assert!(checkpointed(&dir, &input, "out").status().unwrap().success());
    assert!(checkpointed(&dir, &input, "out").status().unwrap().success()); // nothing new

    std::fs::write(dir.path("whole.log"), &all[..cut(2500).len()]).unwrap();
    assert!(
        checkpointed(&dir, &dir.path("whole.log"), "once")
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(
        dir.read("out.log"),
        dir.read("once.log"),
        "incremental runs differ from one run"
    );
    assert_eq!(dir.read("out.rej"), dir.read("once.rej"));
    assert!(dir.read("out.log").ends_with("  2500  INFO message 2499\n"));
}

#[test]
fn a_last_line_without_newline_waits_for_the_next_run() {
    let dir = Scratch::new();
    let input = dir.path("app.log");
    std::fs::write(
        &input,
        "2026-04-15T00:00:01Z INFO one\n2026-04-15T00:00:02Z INFO still being wri",
    )
    .unwrap();
    checkpointed_to_out(&dir)
        .pipe_stdin(&input)
        .unwrap()
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "line 2: no newline at the end of the input yet",
        ));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap()
        .write_all(b"tten\n")
        .unwrap();
    checkpointed_to_out(&dir)
        .pipe_stdin(&input)
        .unwrap()
        .assert()
        .success();
    assert_eq!(
        dir.read("out.log"),
        "     1  INFO one\n     2  INFO still being written\n"
    );
}

#[test]
fn a_rotated_or_replaced_input_starts_from_its_first_line() {
    let dir = Scratch::new();
    let input = dir.path("app.log");
    let run = |expect: &str| {
        checkpointed_to_out(&dir)
            .pipe_stdin(&input)
            .unwrap()
            .assert()
            .success()
            .stderr(predicate::str::contains(expect))
    };
    std::fs::write(
        &input,
        "2026-04-15T00:00:01Z INFO old one\n2026-04-15T00:00:02Z INFO old two\n",
    )
    .unwrap();
    run("2 written");
    // Rotated: a new file begins.
    std::fs::write(&input, "2026-04-16T00:00:01Z INFO new one\n").unwrap();
    run("is not the one");
    // Truncated in place (same first line, shorter than what was committed).
    std::fs::write(&input, "").unwrap();
    std::fs::write(&input, "2026-04-16T00:00:01Z INFO new one\n").unwrap();
    run("0 lines in");
    std::fs::write(&input, "2026-04-16T00:00:01Z INFO new").unwrap();
    run("is not the one");
    assert_eq!(
        dir.read("out.log"),
        "     1  INFO old one\n     2  INFO old two\n     1  INFO new one\n",
        "the last run held back its unterminated line"
    );
}

#[test]
fn a_piped_input_skips_the_committed_part_by_reading_it() {
    let dir = Scratch::new();
    let first = corpus(500);
    let mut both = first.clone();
    both.extend_from_slice(b"2026-04-16T00:00:00Z WARN appended\n");
    checkpointed_to_out(&dir).write_stdin(first).assert().success();
    checkpointed_to_out(&dir)
        .write_stdin(both)
        .assert()
        .success()
        .stderr(predicate::str::contains("1 line in").and(predicate::str::contains("1 written")));
    assert!(dir.read("out.log").ends_with("   501  WARN appended\n"));
}

#[test]
fn a_checkpoint_needs_an_output_file_and_a_readable_checkpoint() {
    ingest()
        .args(["--checkpoint", "cp", "-"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs an OUTPUT file"));
    let dir = Scratch::new();
    std::fs::write(dir.path("cp"), "not a checkpoint\n").unwrap();
    ingest()
        .arg("--checkpoint")
        .arg(dir.path("cp"))
        .arg(dir.path("out.log"))
        .write_stdin("")
        .assert()
        .code(74)
        .stderr(predicate::str::contains("not an ingest checkpoint"));
}

#[test]
fn a_run_killed_before_its_first_commit_is_not_duplicated_by_the_rerun() {
    let dir = Scratch::new();
    let cp = dir.path("cp");
    let all = corpus(1500);
    let first: Vec<u8> = all
        .split_inclusive(|&b| b == b'\n')
        .take(1000)
        .flatten()
        .copied()
        .collect();
    // Commits only at the end (a huge interval): the kill lands before any regular commit.
    let mut child = Command::new(BIN)
        .env_clear()
        .args(["--checkpoint-bytes", "1000000000", "--checkpoint"])
        .arg(&cp)
        .arg(dir.path("out.log"))
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&first).unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read(dir.path("out.log")).map_or(0, |b| b.len()) == 0 {
        assert!(std::time::Instant::now() < deadline, "nothing was written");
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    drop(stdin);

    std::fs::write(dir.path("input.log"), &all).unwrap();
    assert!(
        checkpointed(&dir, &dir.path("input.log"), "once")
            .status()
            .unwrap()
            .success()
    );
    checkpointed_to_out(&dir).write_stdin(all).assert().success();
    assert_eq!(dir.read("out.log"), dir.read("once.log"));
}
