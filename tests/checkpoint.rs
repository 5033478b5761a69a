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
/// The first `n` lines of `all`.
fn first_lines(all: &[u8], n: usize) -> Vec<u8> {
    all.split_inclusive(|&b| b == b'\n')
        .take(n)
        .flatten()
        .copied()
        .collect()
}

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
    checkpointed_with(dir, input, name, &[])
}

/// [`checkpointed`] with more flags.
fn checkpointed_with(dir: &Scratch, input: &Path, name: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args(extra)
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

/// [`checkpointed_to_out`] with a file on stdin, as cron runs it (seekable, its size known);
/// returns its stderr after checking that it succeeded.
fn checkpointed_file_to_out(dir: &Scratch, input: &Path) -> String {
    let output = Command::new(BIN)
        .env_clear()
        .arg("--checkpoint")
        .arg(dir.path("cp"))
        .arg(dir.path("out.log"))
        .stdin(File::open(input).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    stderr
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

/// A number from the checkpoint file: `key N`.
fn checkpoint_field(dir: &Scratch, name: &str, key: &str) -> u64 {
    let text = dir.read(&format!("{name}.cp"));
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in the checkpoint: {text}"))
}

#[test]
fn runs_killed_at_random_moments_and_rerun_write_every_record_exactly_once() {
    killed_and_rerun(corpus(300_000), &[]);
}

/// `records` records of 1 to 12 lines (a stack trace after most), every 23rd rejected with its
/// continuation lines.
fn multiline_corpus(records: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..records {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        let severity = if i % 23 == 22 { "LOUD" } else { "ERROR" };
        out.extend_from_slice(
            format!("2026-04-15T{h:02}:{m:02}:{s:02}Z {severity} request {i} failed\n").as_bytes(),
        );
        for frame in 0..i % 12 {
            out.extend_from_slice(
                format!("\tat com.example.Handler.step{frame}(Handler.java:{i})\n").as_bytes(),
            );
        }
    }
    out
}

#[test]
fn multiline_runs_killed_mid_record_and_rerun_write_every_record_whole_exactly_once() {
    // Commits land only between records: a rerun never starts inside one, where its
    // continuation lines would be read as records of their own (and rejected).
    killed_and_rerun(multiline_corpus(60_000), &["--multiline"]);
}

#[test]
fn container_log_runs_killed_inside_long_lines_and_rerun_write_every_line_exactly_once() {
    // Commits land only where no stream has a line open; one lands inside a line past
    // --max-line-bytes (stderr writing on between its pieces), whose skipping the checkpoint
    // keeps: a rerun there must not take the rest of its pieces for a line.
    let (log, _) = common::containers::container_log(common::containers::Runtime::Cri, 600, 5);
    killed_and_rerun(
        log.into_bytes(),
        &["--input", "cri", "--max-line-bytes", "200000"],
    );
}

/// Kills runs on `corpus` at random moments and reruns them until one finishes: the output and
/// the rejects file end up byte-identical to one uninterrupted run's.
fn killed_and_rerun(corpus: Vec<u8>, extra: &[&str]) {
    let checkpointed = |dir: &Scratch, input: &Path, name: &str| checkpointed_with(dir, input, name, extra);
    let dir = Scratch::new();
    let input = dir.path("input.log");
    std::fs::write(&input, corpus).unwrap();
    let status = checkpointed(&dir, &input, "reference").status().unwrap();
    assert!(status.success());
    let reference = |ext: &str| std::fs::read(dir.path(&format!("reference.{ext}"))).unwrap();
    let total = reference("log").len() as u64;
    let size = || std::fs::metadata(dir.path("run.log")).map_or(0, |m| m.len());

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
            // Kill once the output has grown by a random share of what is left, plus a random
            // moment: the kill lands inside the run (not after it, however fast the machine),
            // in a write, a commit, or between them.
            // The run resumes from the committed length (it cuts back the rest first).
            let start = if attempt == 0 {
                0
            } else {
                checkpoint_field(&dir, "run", "output_bytes")
            };
            let target = start + (total - start) * (5 + rng.below(55)) / 100;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while size() < target && child.try_wait().unwrap().is_none() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "seed {seed}: the run stalled"
                );
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(Duration::from_micros(rng.below(1000)));
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
        // What the checkpoint names is, in both files, the reference's beginning: the rerun
        // will cut back anything after it.
        for (ext, key) in [("log", "output_bytes"), ("rej", "rejects_bytes")] {
            let committed = checkpoint_field(&dir, "run", key) as usize;
            let actual = std::fs::read(dir.path(&format!("run.{ext}"))).unwrap();
            assert!(
                actual.len() >= committed && actual[..committed] == reference(ext)[..committed],
                "seed {seed}, kill {killed_mid_run}: run.{ext} does not start with the reference's {committed} committed bytes"
            );
        }
    }
    assert!(
        killed_mid_run >= 5,
        "seed {seed}: only {killed_mid_run} of 8 kills landed mid-run"
    );
    for ext in ["log", "rej"] {
        let actual = std::fs::read(dir.path(&format!("run.{ext}"))).unwrap();
        assert!(
            reference(ext) == actual,
            "seed {seed}, {killed_mid_run} kills: run.{ext} differs ({} bytes, expected {})",
            actual.len(),
            reference(ext).len()
        );
    }
}

#[test]
fn a_growing_file_is_processed_one_new_part_per_run() {
    let dir = Scratch::new();
    let input = dir.path("app.log");
    let all = corpus(3000);
    let cut = |lines: usize| first_lines(&all, lines);
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
    // Replaced: a new file begins.
    std::fs::write(&input, "2026-04-16T00:00:01Z INFO new one\n").unwrap();
    run("is not the one");
    std::fs::write(&input, "2026-04-16T00:00:01Z INFO new").unwrap();
    run("is not the one");
    assert_eq!(
        dir.read("out.log"),
        "     1  INFO old one\n     2  INFO old two\n     1  INFO new one\n",
        "the last run held back its unterminated line"
    );
}

#[test]
fn an_input_truncated_in_place_below_the_committed_point_starts_over() {
    // Past the 4 KiB the fingerprint covers, only the length tells a truncated file from a
    // grown one: 400 lines committed, then the file cut to its first 200 (same first bytes).
    let dir = Scratch::new();
    let input = dir.path("app.log");
    let all = corpus(400);
    std::fs::write(&input, &all).unwrap();
    checkpointed_file_to_out(&dir, &input);
    let first_200 = first_lines(&all, 200);
    assert!(
        first_200.len() > 4096,
        "the truncated file must outgrow the fingerprint"
    );
    std::fs::write(&input, &first_200).unwrap();
    // A file on stdin, as cron runs it: its length is known before reading.
    let stderr = checkpointed_file_to_out(&dir, &input);
    assert!(
        stderr.contains("is not the one") && stderr.contains("200 lines in"),
        "{stderr}"
    );
    let out = dir.read("out.log");
    assert_eq!(
        out.lines().count(),
        390 + 195,
        "400 lines (10 bad), then the first 200 again (5 bad)"
    );
    assert!(
        out.ends_with("   200  INFO message 199\n"),
        "{}",
        &out[out.len() - 60..]
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
    let first = first_lines(&all, 1000);
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
    common::wait_until("something is written", || common::has_bytes(&dir.path("out.log")));
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

/// `ingest --checkpoint CP [ARGS..] OUT` on `input` (a file on stdin), in `dir`; returns the
/// exit code and stderr.
fn run_in(dir: &Scratch, args: &[&str], input: &Path) -> (Option<i32>, String) {
    let output = Command::new(BIN)
        .env_clear()
        .current_dir(dir.path(""))
        .args(args)
        .stdin(File::open(input).unwrap())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_checkpoint_beside_its_output_never_deletes_the_output_or_the_rejects_file() {
    // The old temporary name was PATH.with_extension("tmp"): out.cp's was out.tmp.
    let dir = Scratch::new();
    std::fs::write(dir.path("in.log"), corpus(100)).unwrap();
    for args in [
        ["--checkpoint", "out.cp", "out.tmp"].as_slice(),
        ["--checkpoint", "job.cp", "--rejects", "job.tmp", "job.log"].as_slice(),
        ["--checkpoint", "st.tmp", "st.log"].as_slice(),
    ] {
        let (code, stderr) = run_in(&dir, args, &dir.path("in.log"));
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
    }
    assert_eq!(dir.read("out.tmp").lines().count(), 98);
    assert_eq!(dir.read("job.tmp").lines().count(), 2);
    assert_eq!(dir.read("st.log").lines().count(), 98);
    assert!(dir.read("st.tmp").starts_with("ingest checkpoint"));
}

#[test]
fn a_checkpoint_may_not_be_output_or_the_rejects_file() {
    let dir = Scratch::new();
    for (args, says) in [
        (
            ["--checkpoint", "out.log", "out.log"].as_slice(),
            "--checkpoint 'out.log' is the same file as OUTPUT",
        ),
        (
            ["--checkpoint", "r.tsv", "--rejects", "./r.tsv", "out.log"].as_slice(),
            "is the same file as --rejects",
        ),
        (
            ["--stats-json", "out.log", "out.log"].as_slice(),
            "--stats-json 'out.log' is the same file as OUTPUT",
        ),
    ] {
        ingest()
            .current_dir(dir.path(""))
            .args(args)
            .write_stdin("2026-04-15T00:00:01Z INFO x\n")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
}

#[test]
fn a_checkpoint_used_with_another_output_is_refused_and_cuts_nothing() {
    let dir = Scratch::new();
    std::fs::write(dir.path("in.log"), corpus(100)).unwrap();
    let (code, _) = run_in(&dir, &["--checkpoint", "cp", "first.log"], &dir.path("in.log"));
    assert_eq!(code, Some(0));
    std::fs::write(dir.path("other.log"), "someone else's line\n").unwrap();
    let (code, stderr) = run_in(&dir, &["--checkpoint", "cp", "other.log"], &dir.path("in.log"));
    assert_eq!(code, Some(74), "{stderr}");
    assert!(
        stderr.contains("it was made for") && stderr.contains("first.log"),
        "{stderr}"
    );
    assert_eq!(dir.read("other.log"), "someone else's line\n");
}

#[test]
fn two_jobs_with_their_own_checkpoints_share_one_output_without_cutting_each_other() {
    let dir = Scratch::new();
    let a: Vec<u8> = corpus(60);
    std::fs::write(dir.path("a.log"), &a[..a.len() / 2]).unwrap();
    std::fs::write(dir.path("b.log"), "2026-04-16T00:00:00Z WARN from b\n").unwrap();
    let job = |cp: &str, input: &str| {
        run_in(
            &dir,
            &["--checkpoint", cp, "--rejects", "r.tsv", "out.log"],
            &dir.path(input),
        )
    };
    assert_eq!(job("a.cp", "a.log").0, Some(0));
    assert_eq!(job("b.cp", "b.log").0, Some(0));
    std::fs::write(dir.path("a.log"), &a).unwrap(); // a.log grew
    let (code, stderr) = job("a.cp", "a.log");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("appended to 'out.log' by another program or job"),
        "{stderr}"
    );
    let out = dir.read("out.log");
    assert!(out.contains("     1  WARN from b\n"), "b's record was cut: {out}");
    assert_eq!(out.lines().count(), 59 + 1);
    assert_eq!(
        dir.read("r.tsv").lines().count(),
        1,
        "a's one reject, not cut or doubled"
    );
}

#[test]
fn the_rejects_file_is_locked_like_output() {
    let dir = Scratch::new();
    let (rejects, one) = (dir.path("r.tsv"), dir.path("one.log"));
    let args = ["--rejects".as_ref(), rejects.as_os_str(), one.as_os_str()];
    let (mut first, stdin) = common::holding(&args, b"garbage\n", &rejects);
    ingest()
        .arg("--rejects")
        .arg(&rejects)
        .arg(dir.path("two.log"))
        .write_stdin("garbage\n")
        .assert()
        .code(75)
        .stderr(predicate::str::contains(
            "r.tsv' is being written by another ingest run",
        ));
    drop(stdin);
    assert!(first.wait().unwrap().success());
    assert_eq!(dir.read("r.tsv"), "1\tnot enough fields\tgarbage\n");
}

#[test]
fn after_a_killed_run_and_a_rotated_input_the_torn_tail_is_cut_before_anything_new() {
    let dir = Scratch::new();
    std::fs::write(dir.path("app.log"), "2026-04-15T00:00:01Z INFO old\n").unwrap();
    assert_eq!(
        run_in(&dir, &["--checkpoint", "cp", "out.log"], &dir.path("app.log")).0,
        Some(0)
    );
    // What a run SIGKILLed mid-write leaves: the checkpoint says "writing", a torn record.
    let cp = dir.read("cp").replace("finished 1", "finished 0");
    std::fs::write(dir.path("cp"), cp).unwrap();
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path("out.log"))
        .unwrap();
    out.write_all(b"     2  INFO torn rec").unwrap();
    std::fs::write(dir.path("app.log"), "2026-04-16T00:00:01Z INFO new\n").unwrap(); // rotated
    let (code, stderr) = run_in(&dir, &["--checkpoint", "cp", "out.log"], &dir.path("app.log"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dir.read("out.log"), "     1  INFO old\n     1  INFO new\n");
}

/// 100 lines of app.log, then 50 more after the run, then `mv app.log app.log.1` and a new
/// app.log of 10 lines: the shape of a rename rotation between two cron runs.
fn rotate_with_an_unread_tail(dir: &Scratch) -> u64 {
    let all = corpus(150);
    let first = first_lines(&all, 100);
    std::fs::write(dir.path("app.log"), &first).unwrap();
    assert_eq!(
        run_in(
            dir,
            &["-q", "--checkpoint", "cp", "out.log"],
            &dir.path("app.log")
        )
        .0,
        Some(0)
    );
    std::fs::write(dir.path("app.log"), &all).unwrap();
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    std::fs::write(dir.path("app.log"), common::valid_lines(10)).unwrap();
    (all.len() - first.len()) as u64
}

#[test]
fn a_rename_rotation_that_leaves_lines_unread_says_so_even_with_q_and_counts_them() {
    let dir = Scratch::new();
    let unread = rotate_with_an_unread_tail(&dir);
    let (code, stderr) = run_in(
        &dir,
        &[
            "-q",
            "--stats-json",
            "stats.json",
            "--metrics-textfile",
            "m.prom",
            "--checkpoint",
            "cp",
            "out.log",
        ],
        &dir.path("app.log"),
    );
    // Lost input is an exit code cron can alert on.
    assert_eq!(code, Some(66), "{stderr}");
    assert!(
        stderr.contains("ingest: error: the input was rotated")
            && stderr.contains(&format!("{unread} bytes at the end of its previous file"))
            && stderr.contains("app.log.1"),
        "{stderr}"
    );
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    assert_eq!(stats["rotated_unread_bytes"], unread);
    assert!(
        dir.read("m.prom")
            .contains(&format!("ingest_rotated_unread_bytes {unread}\n"))
    );
    assert_eq!(dir.read("out.log").lines().count(), 98 + 10);
}

#[test]
fn the_rotation_recipe_reads_the_old_files_tail_first_and_loses_nothing() {
    let dir = Scratch::new();
    // The README's cron line: the rotated file with --continue-only (read only if it is the
    // one the checkpoint was reading), then the current one, every time.
    let cron_run = |dir: &Scratch| {
        if dir.path("app.log.1").exists() {
            let args = ["-q", "--continue-only", "--checkpoint", "cp", "out.log"];
            let (code, stderr) = run_in(dir, &args, &dir.path("app.log.1"));
            assert_eq!((code, stderr.as_str()), (Some(0), ""), "app.log.1");
        }
        let (code, stderr) = run_in(
            dir,
            &["-q", "--checkpoint", "cp", "out.log"],
            &dir.path("app.log"),
        );
        assert_eq!((code, stderr.as_str()), (Some(0), ""), "app.log");
    };
    rotate_with_an_unread_tail(&dir);
    cron_run(&dir);
    cron_run(&dir); // nothing new: app.log.1 is no longer the checkpoint's, and is left alone
    let out = dir.read("out.log");
    let numbers: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(numbers.len(), 146 + 10, "every line of both files once");
    assert_eq!(numbers[145], "150");
    assert_eq!(
        numbers[146..],
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    );
}

#[test]
fn continue_only_reads_nothing_from_an_input_that_is_not_the_checkpoints() {
    let dir = Scratch::new();
    std::fs::write(dir.path("app.log"), corpus(10)).unwrap();
    std::fs::write(dir.path("other.log"), common::valid_lines(5)).unwrap();
    let (code, _) = run_in(
        &dir,
        &["--continue-only", "--checkpoint", "cp", "out.log"],
        &dir.path("app.log"),
    );
    assert_eq!(code, Some(0), "no checkpoint yet: nothing to continue");
    assert_eq!(dir.read("out.log"), "");
    assert_eq!(
        run_in(&dir, &["--checkpoint", "cp", "out.log"], &dir.path("app.log")).0,
        Some(0)
    );
    let (code, stderr) = run_in(
        &dir,
        &["--continue-only", "--checkpoint", "cp", "out.log"],
        &dir.path("other.log"),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("does not continue") && stderr.contains("0 lines in"),
        "{stderr}"
    );
    assert_eq!(dir.read("out.log").lines().count(), 10);
    ingest().args(["--continue-only", "out.log"]).assert().code(2);
}

#[test]
fn a_rotated_output_starts_afresh_instead_of_failing() {
    let dir = Scratch::new();
    let all = corpus(40);
    let first = first_lines(&all, 20);
    std::fs::write(dir.path("app.log"), first).unwrap();
    assert_eq!(
        run_in(&dir, &["--checkpoint", "cp", "out.log"], &dir.path("app.log")).0,
        Some(0)
    );
    // Runs on the grown input; OUTPUT must then start with `first`, and stderr say `says`.
    let run = |says: &str, first: &str| {
        let (code, stderr) = run_in(&dir, &["--checkpoint", "cp", "out.log"], &dir.path("app.log"));
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        let out = dir.read("out.log");
        assert!(out.starts_with(first), "{out}");
    };
    // logrotate on the output: renamed away (a new, empty file appears), or copied and emptied.
    std::fs::rename(dir.path("out.log"), dir.path("out.log.1")).unwrap();
    std::fs::write(dir.path("out.log"), "").unwrap();
    std::fs::write(dir.path("app.log"), &all).unwrap();
    run("is a new file since the last run", "    21  INFO message 20\n");
    std::fs::copy(dir.path("out.log"), dir.path("out.log.2")).unwrap();
    std::fs::write(dir.path("out.log"), "").unwrap(); // copytruncate
    std::fs::write(dir.path("app.log"), corpus(50)).unwrap();
    run("was emptied since the last run", "    41  INFO message 40\n");
}

#[test]
fn lines_that_give_no_output_at_the_end_of_a_run_are_committed_too() {
    let dir = Scratch::new();
    let records = common::valid_lines(200);
    // Then lines that write nothing: filtered, blank, and a traceback with no --rejects.
    let mut silent = "2026-04-15T00:00:02Z DEBUG filtered\n\n".repeat(5000);
    silent.push_str("Traceback (most recent call last):\n");
    let args = ["--max-rejects", "0", "--min-level", "info", "--checkpoint", "cp"];
    let mut child = Command::new(BIN)
        .env_clear()
        .current_dir(dir.path(""))
        .args(args)
        .arg(dir.path("out.log"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(records.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // The records are out before the silent lines come: those arrive at an idle writer.
    let records_out = common::expected_text(200).len() as u64;
    common::wait_until("the records are written", || {
        std::fs::metadata(dir.path("out.log")).is_ok_and(|m| m.len() >= records_out)
    });
    stdin.write_all(silent.as_bytes()).unwrap();
    drop(stdin);
    let first = child.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    // The same input again, nothing new: the traceback is not read (and rejected) again.
    let output = ingest()
        .current_dir(dir.path(""))
        .args(args)
        .arg(dir.path("out.log"))
        .write_stdin(format!("{records}{silent}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("0 lines in"), "{stderr}");
}

#[test]
fn a_hand_edited_checkpoint_that_would_wrap_line_numbers_is_unusable() {
    let dir = Scratch::new();
    std::fs::write(dir.path("app.log"), corpus(10)).unwrap();
    assert_eq!(
        run_in(&dir, &["--checkpoint", "cp", "out.log"], &dir.path("app.log")).0,
        Some(0)
    );
    let cp = dir.read("cp");
    let edited: String = cp
        .lines()
        .map(|l| {
            if l.starts_with("input_lines ") {
                "input_lines 18446744073709551615".to_owned()
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(dir.path("cp"), edited).unwrap();
    let (code, stderr) = run_in(&dir, &["--checkpoint", "cp", "out.log"], &dir.path("app.log"));
    assert_eq!(code, Some(74), "{stderr}");
    assert!(stderr.contains("edited out of shape"), "{stderr}");
}

#[test]
fn a_checkpoint_needs_regular_files_to_cut_back() {
    let dir = Scratch::new();
    ingest()
        .args(["--checkpoint"])
        .arg(dir.path("cp"))
        .arg("/dev/null")
        .write_stdin("2026-04-15T00:00:01Z INFO x\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--checkpoint needs OUTPUT to be a regular file",
        ));
}

/// `ingest --checkpoint cp out.log` in `dir`, reading a pipe the caller writes (stderr piped).
fn checkpointed_on_a_pipe(dir: &Scratch) -> std::process::Child {
    Command::new(BIN)
        .env_clear()
        .arg("--checkpoint")
        .arg(dir.path("cp"))
        .arg(dir.path("out.log"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_signal_while_a_checkpointed_pipe_waits_for_its_first_4k_writes_what_was_read() {
    let dir = Scratch::new();
    let mut child = checkpointed_on_a_pipe(&dir);
    let mut stdin = child.stdin.take().unwrap();
    // Less than the 4 KiB that identify an input, and the pipe stays open, as with `tail -f`.
    stdin.write_all(common::valid_lines(3).as_bytes()).unwrap();
    common::wait_until("ingest has read its input", || common::unread_in(&stdin) == 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let waited = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if waited.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("SIGTERM was ignored while waiting for the input's first 4 KiB");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}: {stderr}");
    assert_eq!(dir.read("out.log"), common::expected_text(3), "{stderr}");
    drop(stdin);
}

#[test]
fn a_refusal_for_the_rejects_file_leaves_output_untouched_too() {
    let dir = Scratch::new();
    std::fs::write(dir.path("app.log"), corpus(40)).unwrap();
    let args = ["--checkpoint", "cp", "--rejects", "first.tsv", "out.log"];
    assert_eq!(run_in(&dir, &args, &dir.path("app.log")).0, Some(0));
    // A killed run's leftovers on OUTPUT, then a rerun that names another rejects file.
    std::fs::write(dir.path("cp"), dir.read("cp").replace("finished 1", "finished 0")).unwrap();
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path("out.log"))
        .unwrap();
    out.write_all(b"    99  INFO torn").unwrap();
    let before = dir.read("out.log");
    let args = ["--checkpoint", "cp", "--rejects", "second.tsv", "out.log"];
    let (code, stderr) = run_in(&dir, &args, &dir.path("app.log"));
    assert_eq!(code, Some(74), "{stderr}");
    assert!(stderr.contains("first.tsv"), "{stderr}");
    assert_eq!(
        dir.read("out.log"),
        before,
        "nothing is cut when the run is refused"
    );
}

/// The checkpoint's `input_lines`, or 0 while there is none.
fn committed_lines(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("input_lines ")?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_quiet_live_pipe_is_committed_within_seconds_so_a_kill_then_loses_and_repeats_nothing() {
    let dir = Scratch::new();
    let mut child = checkpointed_on_a_pipe(&dir);
    let mut stdin = child.stdin.take().unwrap();
    // 300 lines, then nothing more, the pipe held open: a quiet `tail -f | ingest`.
    stdin.write_all(common::valid_lines(300).as_bytes()).unwrap();
    common::wait_until("the idle run commits its 300 lines", || {
        committed_lines(&dir.path("cp")) == 300
    });
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(dir.read("out.log"), common::expected_text(300));
    // The rerun on the whole input writes the rest, and nothing twice.
    ingest()
        .arg("--checkpoint")
        .arg(dir.path("cp"))
        .arg(dir.path("out.log"))
        .write_stdin(common::valid_lines(400))
        .assert()
        .success();
    assert_eq!(dir.read("out.log"), common::expected_text(400));
}
