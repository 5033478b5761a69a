//! Many logs in one run: `--from GLOB` (and `--from` several times), `--exclude`, rotated files
//! folded into their log, the `file` key, one checkpoint for all logs (taking on a checkpoint
//! of one log), loss per log. The kills under logrotate are in `tests/rotation.rs`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::{Scratch, run_in};

/// Lines `from..to` of log `name`.
fn lines(name: &str, range: std::ops::Range<u64>) -> String {
    range
        .map(|i| format!("2026-12-05T00:00:{:02}Z INFO {name} n={i}\n", i % 60))
        .collect()
}

fn write(dir: &Scratch, path: &str, text: &str) {
    let path = dir.path(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn append(dir: &Scratch, path: &str, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path(path))
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The messages of a JSON OUTPUT, per `file` key (relative to `dir`), in order.
fn per_log(dir: &Scratch, output: &str) -> BTreeMap<String, Vec<String>> {
    let root = dir.path("");
    let mut logs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in dir.read(output).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = record["file"]
            .as_str()
            .unwrap_or_else(|| panic!("no file key: {line}"));
        let file = std::path::Path::new(file).strip_prefix(&root).unwrap();
        logs.entry(file.display().to_string())
            .or_default()
            .push(record["message"].as_str().unwrap().to_owned());
    }
    logs
}

fn messages(name: &str, range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("{name} n={i}")).collect()
}

/// `-q --from GLOB --checkpoint cp --format json EXTRA.. out.json`.
fn json_run<'a>(glob: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-q", "--from", glob, "--checkpoint", "cp", "--format", "json"];
    args.extend_from_slice(extra);
    args.push("out.json");
    args
}

const GLOB_RUN: &[&str] = &[
    "-q",
    "--from",
    "*/*.log",
    "--exclude",
    "*/debug.log",
    "--checkpoint",
    "cp",
    "--format",
    "json",
    "out.json",
];

#[test]
fn a_glob_reads_each_log_with_its_rotated_files_once_and_names_it_in_every_record() {
    let dir = Scratch::new();
    write(&dir, "web/access.log.2.gz", "");
    {
        let gz = std::fs::File::create(dir.path("web/access.log.2.gz")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(gz, flate2::Compression::default());
        gz.write_all(lines("access", 0..3).as_bytes()).unwrap();
        gz.finish().unwrap();
    }
    write(&dir, "web/access.log.1", &lines("access", 3..5));
    write(&dir, "web/access.log", &lines("access", 5..8));
    write(&dir, "web/error.log", &lines("error", 0..2));
    write(&dir, "app/app.log", &lines("app", 0..4));
    write(&dir, "app/debug.log", &lines("debug", 0..4));
    let (code, stderr) = run_in(&dir, GLOB_RUN, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let want = BTreeMap::from([
        ("app/app.log".to_owned(), messages("app", 0..4)),
        ("web/access.log".to_owned(), messages("access", 0..8)),
        ("web/error.log".to_owned(), messages("error", 0..2)),
    ]);
    assert_eq!(per_log(&dir, "out.json"), want);

    // A rerun writes nothing; lines appended since come out once, each log's after its own.
    let (code, stderr) = run_in(&dir, GLOB_RUN, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
    append(&dir, "web/error.log", &lines("error", 2..5));
    append(&dir, "app/app.log", &lines("app", 4..6));
    write(&dir, "app/new.log", &lines("new", 0..2));
    let (code, stderr) = run_in(&dir, GLOB_RUN, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let got = per_log(&dir, "out.json");
    assert_eq!(got["web/error.log"], messages("error", 0..5));
    assert_eq!(got["app/app.log"], messages("app", 0..6));
    assert_eq!(got["app/new.log"], messages("new", 0..2));
    assert_eq!(got["web/access.log"], messages("access", 0..8));
    // One checkpoint, a journal: commits append what moved.
    assert!(dir.read("cp").starts_with("ingest checkpoint 3\n"));
}

#[test]
fn a_line_still_being_written_when_a_run_reads_its_log_is_read_once_by_the_next() {
    let dir = Scratch::new();
    write(&dir, "a.log", &lines("a", 0..3));
    // b.log's last line has no newline yet: its writer is at it.
    write(
        &dir,
        "b.log",
        &format!("{}2026-04-15T00:00:09Z INFO half", lines("b", 0..2)),
    );
    let (code, stderr) = run_in(&dir, &json_run("*.log", &[]), "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    append(&dir, "b.log", " done\n");
    append(&dir, "b.log", &lines("b", 2..4));
    let (code, stderr) = run_in(&dir, &json_run("*.log", &[]), "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let logs = per_log(&dir, "out.json");
    assert_eq!(logs["a.log"], ["a n=0", "a n=1", "a n=2"]);
    assert_eq!(logs["b.log"], ["b n=0", "b n=1", "half done", "b n=2", "b n=3"]);
}

#[test]
fn text_output_of_many_logs_names_each_record_s_log_after_it() {
    let dir = Scratch::new();
    write(&dir, "a/x.log", &lines("x", 0..1));
    write(&dir, "b/y.log", &lines("y", 0..1));
    let (code, stderr) = run_in(
        &dir,
        &["-q", "--from", "a/*.log", "--from", "b/y.log", "out.log"],
        "",
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let root = dir.path("");
    assert_eq!(
        dir.read("out.log"),
        format!(
            "     1  INFO x n=0 file={}\n     1  INFO y n=0 file={}\n",
            root.join("a/x.log").display(),
            root.join("b/y.log").display()
        )
    );
}

#[test]
fn a_glob_that_matches_nothing_exits_66_and_says_what_to_check() {
    let dir = Scratch::new();
    let (code, stderr) = run_in(&dir, &["--from", "nothing/*.log", "out.log"], "", &[]);
    assert_eq!(code, Some(66));
    assert!(
        stderr.contains("no log matches --from 'nothing/*.log'"),
        "{stderr}"
    );
    assert!(stderr.contains("quoted"), "{stderr}");
}

#[test]
fn a_glob_that_takes_a_file_the_run_writes_is_refused() {
    let dir = Scratch::new();
    write(&dir, "app.log", &lines("app", 0..1));
    let (code, stderr) = run_in(&dir, &["--from", "*.log", "out.log"], "", &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--from '*.log' takes OUTPUT"), "{stderr}");
    // Left out, it is fine.
    let (code, stderr) = run_in(
        &dir,
        &["-q", "--from", "*.log", "--exclude", "out.log", "out.log"],
        "",
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dir.read("out.log").lines().count(), 1);
}

#[test]
fn a_checkpoint_of_one_log_is_taken_on_by_a_glob_without_a_line_twice() {
    let dir = Scratch::new();
    write(&dir, "logs/a.log", &lines("a", 0..3));
    write(&dir, "logs/b.log", &lines("b", 0..2));
    let one = [
        "-q",
        "--from",
        "logs/a.log",
        "--checkpoint",
        "cp",
        "--format",
        "json",
        "out.json",
    ];
    let (code, stderr) = run_in(&dir, &one, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.read("cp").starts_with("ingest checkpoint 2\n"));
    append(&dir, "logs/a.log", &lines("a", 3..4));
    let many = json_run("logs/*.log", &[]);
    let (code, stderr) = run_in(&dir, &many, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let out = dir.read("out.json");
    let a: Vec<&str> = out.lines().filter(|l| l.contains("\"a n=")).collect();
    assert_eq!(a.len(), 4, "{out}");
    // The first three were written by the run of one log, without a file key.
    assert!(!a[2].contains("\"file\"") && a[3].contains("\"file\""), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("\"b n=")).count(), 2, "{out}");
}

#[test]
fn a_window_of_one_line_reads_every_log_with_a_checkpoint_to_its_end() {
    // `--capacity 1`: one batch of one line in flight. The reader holds a log's latest batch
    // back until it knows whether it is the file's last; that batch must not keep the next one
    // from the only slot (the run hung there, holding one line).
    let dir = Scratch::new();
    write(&dir, "logs/a.log", &lines("a", 0..3));
    write(&dir, "logs/b.log", &lines("b", 0..2));
    let (code, stderr) = run_in(&dir, &json_run("logs/*.log", &["--capacity", "1"]), "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let want = BTreeMap::from([
        ("logs/a.log".to_owned(), messages("a", 0..3)),
        ("logs/b.log".to_owned(), messages("b", 0..2)),
    ]);
    assert_eq!(per_log(&dir, "out.json"), want);
}

#[test]
fn a_log_deleted_with_lines_unread_is_a_loss_said_once_and_then_forgotten() {
    let dir = Scratch::new();
    write(&dir, "logs/a.log", &lines("a", 0..2));
    write(&dir, "logs/b.log", &lines("b", 0..2));
    let run = ["--from", "logs/*.log", "--checkpoint", "cp", "out.log"];
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    append(&dir, "logs/b.log", &lines("b", 2..4));
    std::fs::remove_file(dir.path("logs/b.log")).unwrap();
    let stats = ["--stats-json", "st.json", "--metrics-textfile", "m.prom"];
    let (code, stderr) = run_in(&dir, &[&run[..], &stats].concat(), "", &[]);
    assert_eq!(code, Some(66), "{stderr}");
    assert_eq!(
        stderr.matches("was gone before its end was read").count(),
        1,
        "{stderr}"
    );
    let stats: serde_json::Value = serde_json::from_str(&dir.read("st.json")).unwrap();
    assert_eq!(stats["logs"]["known"], 2, "{stats}");
    assert_eq!(stats["logs"]["lost"], 1, "{stats}");
    assert!(dir.read("m.prom").contains("ingest_logs{state=\"lost\"} 1\n"));
    assert!(stderr.contains("logs/b.log"), "{stderr}");
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("gone"), "{stderr}");
    let dropped = dir
        .read("cp")
        .lines()
        .any(|l| l.starts_with("- ") && l.ends_with("logs/b.log"));
    assert!(dropped, "its entry is dropped: {}", dir.read("cp"));
    assert_eq!(dir.read("out.log").lines().count(), 4);
}

#[test]
fn follow_over_a_glob_without_a_checkpoint_is_refused_with_what_to_add() {
    let dir = Scratch::new();
    let (code, stderr) = run_in(&dir, &["--from", "*.log", "--follow", "out"], "", &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("add --checkpoint FILE"), "{stderr}");
}

/// The messages per log in OUTPUT `out.json` so far, once it holds only whole records (the
/// writer may be between two writes).
fn out_so_far(dir: &Scratch) -> Option<BTreeMap<String, Vec<String>>> {
    let out = std::fs::read_to_string(dir.path("out.json")).ok()?;
    out.ends_with('\n').then(|| per_log(dir, "out.json"))
}

/// Polls (bounded) until OUTPUT `out.json` holds `want` per log.
fn wait_for_logs(dir: &Scratch, want: &BTreeMap<String, Vec<String>>) {
    common::wait_until("every line is out", || out_so_far(dir).as_ref() == Some(want));
}

#[test]
fn following_a_glob_reads_appended_lines_new_logs_and_new_directories_as_they_come() {
    let dir = Scratch::new();
    write(&dir, "a/x.log", &lines("x", 0..3));
    write(&dir, "b/y.log", &lines("y", 0..2));
    // Without inotify, only a rescan would find what follows: an hour away.
    let run = follower(&dir, "*/*.log", &[]);
    let mut want = BTreeMap::from([
        ("a/x.log".to_owned(), messages("x", 0..3)),
        ("b/y.log".to_owned(), messages("y", 0..2)),
    ]);
    wait_for_logs(&dir, &want);
    append(&dir, "a/x.log", &lines("x", 3..5));
    write(&dir, "b/z.log", &lines("z", 0..1));
    want.insert("a/x.log".to_owned(), messages("x", 0..5));
    want.insert("b/z.log".to_owned(), messages("z", 0..1));
    wait_for_logs(&dir, &want);
    // A directory made while following: watched, its logs read from their first line.
    write(&dir, "c/w.log", &lines("w", 0..2));
    want.insert("c/w.log".to_owned(), messages("w", 0..2));
    wait_for_logs(&dir, &want);
    // Rotated: the old file's last lines, then the new file.
    append(&dir, "a/x.log", &lines("x", 5..6));
    std::fs::rename(dir.path("a/x.log"), dir.path("a/x.log.1")).unwrap();
    write(&dir, "a/x.log", &lines("x", 6..8));
    want.insert("a/x.log".to_owned(), messages("x", 0..8));
    wait_for_logs(&dir, &want);
    run.signal("-TERM");
    let (code, stderr) = common::finish(&dir, run.take());
    // Drained, it dies by the signal it got, as a shell expects.
    assert_eq!(code, None, "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
    // A cron run after it finds nothing left to read.
    let (code, stderr) = run_in(&dir, GLOB_RUN, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
}

#[test]
fn start_at_end_skips_the_backlog_of_the_logs_a_new_checkpoint_finds_and_reads_later_logs_whole() {
    let dir = Scratch::new();
    {
        let gz = std::fs::File::create(dir.path("web/access.log.2.gz")).or_else(|_| {
            std::fs::create_dir_all(dir.path("web"))?;
            std::fs::File::create(dir.path("web/access.log.2.gz"))
        });
        let mut gz = flate2::write::GzEncoder::new(gz.unwrap(), flate2::Compression::default());
        gz.write_all(lines("access", 0..3).as_bytes()).unwrap();
        gz.finish().unwrap();
    }
    write(&dir, "web/access.log.1", &lines("access", 3..5));
    // A last line being written as the checkpoint is made: read whole once it is.
    write(
        &dir,
        "web/access.log",
        &format!("{}2026-12-05T00:00:07Z INFO access", lines("access", 5..7)),
    );
    write(&dir, "app/app.log", &lines("app", 0..4));
    let run = json_run("*/*.log", &["--start-at", "end"]);
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dir.read("out.json"), "", "the backlog is skipped");
    append(&dir, "web/access.log", " n=7\n");
    append(&dir, "web/access.log", &lines("access", 8..9));
    append(&dir, "app/app.log", &lines("app", 4..5));
    write(&dir, "db/db.log", &lines("db", 0..2));
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let got = per_log(&dir, "out.json");
    assert_eq!(got["web/access.log"], messages("access", 7..9));
    assert_eq!(got["app/app.log"], messages("app", 4..5));
    // A log found after the checkpoint was made starts at its first line.
    assert_eq!(got["db/db.log"], messages("db", 0..2));
}

#[test]
fn the_stats_name_the_logs_furthest_behind_when_a_run_ends_early() {
    let dir = Scratch::new();
    // Read in path order; the reader of `-` goes away within the first.
    let sizes = [("a.log", 50_000), ("b.log", 100_000), ("c.log", 150_000)];
    for (name, n) in sizes {
        write(&dir, name, &lines(name, 0..n));
    }
    let mut run = std::process::Command::new(common::BIN)
        .env_clear()
        .current_dir(dir.path(""))
        .args(["--from", "*.log", "--stats-json", "st.json", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1000];
    std::io::Read::read_exact(run.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(run.stdout.take());
    assert_eq!(run.wait().unwrap().code(), Some(0));
    let stats: serde_json::Value = serde_json::from_str(&dir.read("st.json")).unwrap();
    let size = |name: &str| std::fs::metadata(dir.path(name)).unwrap().len();
    let behind: Vec<(String, u64)> = stats["logs"]["furthest_behind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let file = std::path::Path::new(b["file"].as_str().unwrap());
            (
                file.file_name().unwrap().to_string_lossy().into_owned(),
                b["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    // Most unread bytes first; the ones not begun with all their bytes.
    assert_eq!(
        behind[..2],
        [
            ("c.log".to_owned(), size("c.log")),
            ("b.log".to_owned(), size("b.log"))
        ],
        "{stats}"
    );
    let lag = stats["lag"]["bytes"].as_u64().unwrap();
    assert!(
        lag > size("c.log") + size("b.log") && lag < size("a.log") + size("b.log") + size("c.log"),
        "{stats}"
    );
    assert_eq!(stats["logs"]["known"], 3, "{stats}");
}

#[test]
fn following_a_glob_with_multiline_waits_for_a_record_s_further_lines_as_one_log_does() {
    let dir = Scratch::new();
    write(&dir, "a.log", "2026-12-05T00:00:00Z ERROR boom\n");
    // A record is out once the next one starts; the last one waits for the timeout.
    write(
        &dir,
        "b.log",
        "2026-12-05T00:00:00Z INFO marker\n2026-12-05T00:00:01Z INFO next\n",
    );
    let run = follower(&dir, "*.log", &["--multiline", "--multiline-timeout", "5000"]);
    // b.log's line is out: the turn that read a.log's first line is over.
    common::wait_until("b.log's line is out", || {
        std::fs::read_to_string(dir.path("out.json")).is_ok_and(|o| o.contains("marker"))
    });
    append(&dir, "a.log", "  at frame 1\n");
    common::wait_until("a.log's record is out", || {
        std::fs::read_to_string(dir.path("out.json")).is_ok_and(|o| o.contains("boom"))
    });
    run.signal("-TERM");
    let (code, stderr) = common::finish(&dir, run.take());
    assert_eq!(code, None, "{stderr}");
    let logs = per_log(&dir, "out.json");
    assert_eq!(logs["a.log"], ["boom\n  at frame 1"], "{logs:?}");
    assert_eq!(logs["b.log"], ["marker", "next"]);
}

#[test]
fn following_a_glob_with_multiline_a_record_before_one_left_waiting_goes_out_at_once() {
    let dir = Scratch::new();
    // `next` waits for further lines, up to a minute; `marker`, ended by it, must not wait
    // with it.
    write(
        &dir,
        "b.log",
        "2026-12-05T00:00:00Z INFO marker\n2026-12-05T00:00:01Z INFO next\n",
    );
    let run = follower(&dir, "*.log", &["--multiline", "--multiline-timeout", "60000"]);
    common::wait_until("b.log's first record is out, long before the timeout", || {
        std::fs::read_to_string(dir.path("out.json")).is_ok_and(|o| o.contains("marker"))
    });
    run.signal("-TERM");
    let (code, stderr) = common::finish(&dir, run.take());
    assert_eq!(code, None, "{stderr}");
    // `next` may still get further lines: the checkpoint leaves it to the next run.
    assert_eq!(per_log(&dir, "out.json")["b.log"], ["marker"]);
}

#[test]
fn following_links_to_logs_elsewhere_reads_what_is_written_to_their_targets() {
    // As /var/log/containers/*.log links into /var/log/pods/: the targets' directories are
    // watched too (without that, only a rescan, an hour away here, would see their lines).
    let dir = Scratch::new();
    write(&dir, "pods/a/0.log", &lines("a", 0..2));
    write(&dir, "pods/b/0.log", &lines("b", 0..1));
    std::fs::create_dir(dir.path("containers")).unwrap();
    std::os::unix::fs::symlink(dir.path("pods/a/0.log"), dir.path("containers/a.log")).unwrap();
    std::os::unix::fs::symlink(dir.path("pods/b/0.log"), dir.path("containers/b.log")).unwrap();
    let run = follower(&dir, "containers/*.log", &[]);
    let mut want = BTreeMap::from([
        ("containers/a.log".to_owned(), messages("a", 0..2)),
        ("containers/b.log".to_owned(), messages("b", 0..1)),
    ]);
    wait_for_logs(&dir, &want);
    append(&dir, "pods/a/0.log", &lines("a", 2..4));
    want.insert("containers/a.log".to_owned(), messages("a", 0..4));
    wait_for_logs(&dir, &want);
    // A container started later: its link and its lines.
    write(&dir, "pods/c/0.log", &lines("c", 0..1));
    std::os::unix::fs::symlink(dir.path("pods/c/0.log"), dir.path("containers/c.log")).unwrap();
    want.insert("containers/c.log".to_owned(), messages("c", 0..1));
    wait_for_logs(&dir, &want);
    append(&dir, "pods/c/0.log", &lines("c", 1..2));
    want.insert("containers/c.log".to_owned(), messages("c", 0..2));
    wait_for_logs(&dir, &want);
    run.signal("-TERM");
    let (code, stderr) = common::finish(&dir, run.take());
    assert_eq!(code, None, "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
}

/// How many files under `dir` process `pid` has open now.
fn open_under(pid: u32, dir: &std::path::Path) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// A follower over `glob` in `dir`, into `out.json`, with inotify alone to find changes.
fn follower(dir: &Scratch, glob: &str, args: &[&str]) -> common::Running {
    common::Running::new(
        std::process::Command::new(common::BIN)
            .env_clear()
            .current_dir(dir.path(""))
            .args(["-q", "--from", glob, "--follow", "--rescan", "3600"])
            .args(args)
            .args(["--checkpoint", "cp", "--format", "json", "out.json"])
            .stderr(std::fs::File::create(dir.path("stderr")).unwrap())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn a_follower_of_100_busy_logs_with_max_open_files_16_never_has_more_open_and_gives_every_line() {
    const LOGS: u64 = 100;
    const LINES: u64 = 300;
    let dir = Scratch::new();
    let logs = dir.path("logs");
    for log in 0..LOGS {
        write(&dir, &format!("logs/l{log:03}.log"), "");
    }
    let run = follower(
        &dir,
        "logs/*.log",
        &["--max-open-files", "16", "--stats-json", "stats.json"],
    );
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (pid, done, logs) = (run.id(), done.clone(), logs.clone());
        std::thread::spawn(move || {
            let (mut most, mut samples, mut caught) = (0, 0u64, 0u64);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !done.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let open = open_under(pid, &logs);
                most = most.max(open);
                samples += 1;
                caught += u64::from(open > 0);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            (most, samples, caught)
        })
    };
    // Four writers, 25 logs each, a line to each of theirs every 10 ms: 100 lines/s per log.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for i in 0..LINES {
                    for log in (w..LOGS).step_by(4) {
                        let mut file = std::fs::OpenOptions::new()
                            .append(true)
                            .open(logs.join(format!("l{log:03}.log")))
                            .unwrap();
                        file.write_all(lines(&format!("l{log:03}"), i..i + 1).as_bytes())
                            .unwrap();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let want: BTreeMap<String, Vec<String>> = (0..LOGS)
        .map(|log| {
            (
                format!("logs/l{log:03}.log"),
                messages(&format!("l{log:03}"), 0..LINES),
            )
        })
        .collect();
    wait_for_logs(&dir, &want);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (most, samples, caught) = sampler.join().unwrap();
    // A sampler that never saw a log open could not have seen too many.
    assert!(
        caught > 0,
        "no log seen open in {samples} samples of /proc/PID/fd"
    );
    assert!(most <= 16, "{most} logs open at once (in {samples} samples)");
    run.signal("-TERM");
    let (code, stderr) = common::finish(&dir, run.take());
    assert_eq!(code, None, "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
    // The stats count the logs kept open too.
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    let open = stats["logs"]["open"].as_u64().unwrap();
    assert!((1..=16).contains(&open), "{stats}");
    assert_eq!(stats["logs"]["known"], LOGS, "{stats}");
}

#[test]
fn logs_created_and_deleted_at_50_a_second_while_following_give_every_line_once_and_soon() {
    const LOGS: usize = 500;
    const TICK: std::time::Duration = std::time::Duration::from_millis(20);
    let dir = Scratch::new();
    std::fs::create_dir(dir.path("logs")).unwrap();
    let run = follower(&dir, "logs/*.log", &[]);
    // When each log's first record came out, seen by reading OUTPUT as it grows.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(
        BTreeMap::<String, std::time::Instant>::new(),
    ));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (seen, done, out, root) = (seen.clone(), done.clone(), dir.path("out.json"), dir.path(""));
        std::thread::spawn(move || {
            let mut read = 0;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !done.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let bytes = std::fs::read(&out).unwrap_or_default();
                let now = std::time::Instant::now();
                let whole = bytes[read..]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(read, |end| read + end + 1);
                for line in bytes[read..whole]
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                {
                    let record: serde_json::Value = serde_json::from_slice(line).unwrap();
                    let file = std::path::Path::new(record["file"].as_str().unwrap());
                    let file = file.strip_prefix(&root).unwrap().display().to_string();
                    seen.lock().unwrap().entry(file).or_insert(now);
                }
                read = whole;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let name = |k: usize| format!("logs/n{k:03}.log");
    let mut want = BTreeMap::new();
    let mut made = BTreeMap::new();
    let start = std::time::Instant::now();
    for k in 0..LOGS {
        // Paced by the clock: 50 new logs a second, however long a step took.
        std::thread::sleep((start + TICK * k as u32).saturating_duration_since(std::time::Instant::now()));
        made.insert(name(k), std::time::Instant::now());
        write(&dir, &name(k), &lines(&format!("n{k}"), 0..3));
        want.insert(name(k), messages(&format!("n{k}"), 0..3));
        if k >= 10 {
            append(&dir, &name(k - 10), &lines(&format!("n{}", k - 10), 3..5));
            want.insert(name(k - 10), messages(&format!("n{}", k - 10), 0..5));
        }
        // Deleted half a second after it was made, once read to its end (no loss then).
        if k >= 25 {
            let gone = name(k - 25);
            common::wait_until(&format!("{gone} is read"), || {
                out_so_far(&dir).is_some_and(|out| out.get(&gone) == want.get(&gone))
            });
            std::fs::remove_file(dir.path(&gone)).unwrap();
        }
    }
    let took = start.elapsed();
    wait_for_logs(&dir, &want);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    run.signal("-TERM");
    let (code, stderr) = common::finish(&dir, run.take());
    assert_eq!(code, None, "{stderr}");
    assert!(!stderr.contains("lost"), "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
    let seen = seen.lock().unwrap();
    let mut waits: Vec<std::time::Duration> = made.iter().map(|(log, at)| seen[log] - *at).collect();
    waits.sort();
    let p99 = waits[waits.len() * 99 / 100];
    assert!(
        p99 < std::time::Duration::from_secs(1),
        "a new log's first line out after {p99:?} (p99; longest {:?}; {LOGS} logs made in {took:?})",
        waits.last().unwrap()
    );
}

#[test]
fn changes_while_stopped_deleted_rotated_and_recreated_logs_give_each_line_once_and_gone_logs_are_forgotten()
{
    const LOGS: usize = 20;
    let dir = Scratch::new();
    let name = |l: usize| format!("logs/l{l:02}.log");
    // Every file of a log starts with the same banner, longer than the first bytes a file is
    // known by: recreated files look alike there.
    let pad = "=".repeat(5000);
    let banner = |l: usize| format!("2026-12-05T00:00:00Z INFO l{l:02} starting {pad}\n");
    let log = |l: usize, range: std::ops::Range<u64>| lines(&format!("l{l:02}"), range);
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in 0..LOGS {
        write(&dir, &name(l), &(banner(l) + &log(l, 0..4)));
        let mut messages = vec![format!("l{l:02} starting {pad}")];
        messages.extend(self::messages(&format!("l{l:02}"), 0..4));
        want.insert(name(l), messages);
    }
    let run = json_run("logs/*.log", &["--stats-json", "stats.json"]);
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
    // While no run is there: 30% deleted, each after lines no run read.
    for l in 0..6 {
        append(&dir, &name(l), &log(l, 4..6));
        std::fs::remove_file(dir.path(&name(l))).unwrap();
        want.remove(&name(l));
    }
    // Rotated: a last line to the old file, then a new one.
    for l in 6..14 {
        append(&dir, &name(l), &log(l, 4..5));
        std::fs::rename(dir.path(&name(l)), dir.path(&format!("{}.1", name(l)))).unwrap();
        write(&dir, &name(l), &log(l, 5..8));
        want.get_mut(&name(l))
            .unwrap()
            .extend(messages(&format!("l{l:02}"), 4..8));
    }
    // Recreated with the same banner: deleted and made anew (an inode the file system may
    // recycle), or emptied and written again on the very same inode.
    for l in 14..LOGS {
        let again = banner(l) + &log(l, 100..106);
        // After lines no run read: a loss, said.
        append(&dir, &name(l), &log(l, 4..6));
        if l < 17 {
            std::fs::remove_file(dir.path(&name(l))).unwrap();
            write(&dir, &name(l), &again);
        } else {
            std::fs::write(dir.path(&name(l)), again).unwrap();
        }
        let messages = want.get_mut(&name(l)).unwrap();
        messages.push(format!("l{l:02} starting {pad}"));
        messages.extend(self::messages(&format!("l{l:02}"), 100..106));
    }
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(66), "{stderr}");
    for l in 0..LOGS {
        let said = stderr
            .matches(&format!("{}' (as last seen) was gone", name(l)))
            .count();
        assert_eq!(said, usize::from(!(6..14).contains(&l)), "l{l:02}: {stderr}");
    }
    let per_log_now = per_log(&dir, "out.json");
    for (l, messages) in &want {
        assert_eq!(per_log_now.get(l), Some(messages), "{l}");
    }
    let read: usize = per_log_now.values().map(Vec::len).sum();
    // The deleted logs' first five lines, and nothing more.
    assert_eq!(read, 6 * 5 + want.values().map(Vec::len).sum::<usize>());
    // The next run: nothing more, nothing said again, the gone logs forgotten.
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("gone"), "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    assert_eq!(stats["logs"]["known"], LOGS - 6, "{stats}");
    assert_eq!(per_log(&dir, "out.json"), per_log_now);
}

#[test]
fn more_logs_than_one_round_takes_are_read_once_in_rounds_and_a_rerun_finds_nothing_new() {
    // A round reads at most 1,000 logs: 2,100 take three, each committed.
    const LOGS: usize = 2100;
    let dir = Scratch::new();
    let mut want = BTreeMap::new();
    for l in 0..LOGS {
        let name = format!("logs/d{}/l{l:04}.log", l % 7);
        write(&dir, &name, &lines(&format!("l{l}"), 0..2));
        want.insert(name, messages(&format!("l{l}"), 0..2));
    }
    let run = json_run("logs/*/*.log", &[]);
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
    append(&dir, "logs/d3/l1200.log", &lines("l1200", 2..3));
    want.insert("logs/d3/l1200.log".to_owned(), messages("l1200", 0..3));
    let (code, stderr) = run_in(&dir, &run, "", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(per_log(&dir, "out.json"), want);
}

/// Sets `fs.inotify.max_queued_events` until dropped (an inotify instance takes the value when
/// it is made), then puts the old value back.
struct QueueLimit(String);

impl QueueLimit {
    const PATH: &str = "/proc/sys/fs/inotify/max_queued_events";

    fn set(events: u32) -> QueueLimit {
        let old = std::fs::read_to_string(Self::PATH).unwrap();
        std::fs::write(Self::PATH, events.to_string())
            .unwrap_or_else(|e| panic!("cannot set {} ({e}): this test runs as root", Self::PATH));
        QueueLimit(old)
    }
}

impl Drop for QueueLimit {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, self.0.trim());
    }
}

#[test]
fn a_follower_whose_inotify_queue_overflowed_reads_every_log_again() {
    const LOGS: usize = 60;
    let dir = Scratch::new();
    let name = |l: usize| format!("logs/l{l:02}.log");
    let mut want = BTreeMap::new();
    for l in 0..LOGS {
        write(&dir, &name(l), &lines(&format!("l{l}"), 0..1));
        want.insert(name(l), messages(&format!("l{l}"), 0..1));
    }
    // A queue of 16 events: the follower's instance is made with it, then the limit is back.
    let limit = QueueLimit::set(16);
    let run = follower(&dir, "logs/*.log", &[]);
    wait_for_logs(&dir, &want);
    drop(limit);
    // Stopped while every log is written to: far more events than its queue holds, so the
    // kernel drops them and says so; without a rescan (an hour away), only reading every log
    // finds these lines.
    run.signal("-STOP");
    for l in 0..LOGS {
        append(&dir, &name(l), &lines(&format!("l{l}"), 1..2));
        want.insert(name(l), messages(&format!("l{l}"), 0..2));
    }
    run.signal("-CONT");
    wait_for_logs(&dir, &want);
    run.signal("-TERM");
    let (code, stderr) = common::finish(&dir, run.take());
    assert_eq!(code, None, "{stderr}");
}
