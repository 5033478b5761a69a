//! End-to-end behaviour of the `ingest` binary: formats, files, flags and exit codes.

mod common;

use common::{Scratch, expected_text, ingest, valid_lines};
use predicates::prelude::*;

const SAMPLE: &str = "\
2026-04-15T00:00:01Z INFO started
2026-04-15 00:00:05,250 Warning disk 91%
2026-04-15T02:00:07+0200 [error] upstream 503

2026-04-15T00:00:27Z INFO
2026-02-29T00:00:12Z INFO x
2026-04-15T00:00:20Z NOTE x
Traceback (most recent call last):
2026-04-15T00:00:30Z debug cache warm\r
";

#[test]
fn text_output_has_line_numbers_severities_and_messages() {
    let dir = Scratch::new();
    ingest()
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success();
    assert_eq!(
        dir.read("out.log"),
        "     1  INFO started\n     2  WARN disk 91%\n     3 ERROR upstream 503\n     9 DEBUG cache warm\n"
    );
}

#[test]
fn json_output_is_one_object_per_line_with_utc_timestamps() {
    let dir = Scratch::new();
    ingest()
        .args(["--format", "json"])
        .arg(dir.path("out.json"))
        .write_stdin(SAMPLE)
        .assert()
        .success();
    let out = dir.read("out.json");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(
        lines[0],
        r#"{"line":1,"timestamp":"2026-04-15T00:00:01Z","severity":"INFO","message":"started"}"#
    );
    assert_eq!(
        lines[2],
        r#"{"line":3,"timestamp":"2026-04-15T00:00:07Z","severity":"ERROR","message":"upstream 503"}"#
    );
    for line in lines {
        serde_json::from_str::<serde_json::Value>(line).expect("valid JSON");
    }
}

#[test]
fn dash_writes_to_standard_output() {
    ingest()
        .arg("-")
        .write_stdin("2026-04-15T00:00:01Z INFO started\n")
        .assert()
        .success()
        .stdout("     1  INFO started\n");
}

#[test]
fn rejected_lines_go_to_the_rejects_file_with_number_and_reason() {
    let dir = Scratch::new();
    ingest()
        .arg("--rejects")
        .arg(dir.path("bad.tsv"))
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success()
        .stderr(predicate::str::contains("line 6: bad timestamp"));
    assert_eq!(
        dir.read("bad.tsv"),
        "6\tbad timestamp\t2026-02-29T00:00:12Z INFO x\n\
         7\tbad severity\t2026-04-15T00:00:20Z NOTE x\n\
         8\tbad timestamp\tTraceback (most recent call last):\n"
    );
}

#[test]
fn order_is_preserved_with_one_and_eight_workers() {
    let input = valid_lines(60_000);
    for workers in ["1", "8"] {
        let dir = Scratch::new();
        ingest()
            .args(["--workers", workers, "--capacity", "64"])
            .arg(dir.path("out.log"))
            .write_stdin(input.clone())
            .assert()
            .success();
        assert!(
            dir.read("out.log") == expected_text(60_000),
            "{workers} workers: output differs"
        );
    }
}

#[test]
fn min_level_counts_lower_records_as_filtered() {
    let dir = Scratch::new();
    ingest()
        .args(["--min-level", "warn"])
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "2 written, 3 rejected, 1 dropped, 2 filtered, 1 blank",
        ));
    assert_eq!(
        dir.read("out.log"),
        "     2  WARN disk 91%\n     3 ERROR upstream 503\n"
    );
}

#[test]
fn a_second_run_appends() {
    let dir = Scratch::new();
    for _ in 0..2 {
        ingest()
            .arg(dir.path("out.log"))
            .write_stdin("2026-04-15T00:00:01Z INFO started\n")
            .assert()
            .success();
    }
    assert_eq!(dir.read("out.log"), "     1  INFO started\n".repeat(2));
}

#[test]
fn too_many_rejects_exits_65_after_writing_the_rest() {
    let dir = Scratch::new();
    ingest()
        .args(["--max-rejects", "2"])
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .code(65)
        .stderr(predicate::str::contains(
            "3 lines rejected, more than --max-rejects 2",
        ));
    assert_eq!(dir.read("out.log").lines().count(), 4);
    ingest()
        .args(["--max-rejects", "3"])
        .arg(dir.path("out2.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success();
}

#[test]
fn an_output_in_a_missing_directory_exits_73_naming_it() {
    let dir = Scratch::new();
    let path = dir.path("missing/out.log");
    ingest()
        .arg(&path)
        .write_stdin(SAMPLE)
        .assert()
        .code(73)
        .stderr(predicate::str::contains(format!(
            "cannot open '{}' for appending",
            path.display()
        )))
        .stderr(predicate::str::contains("No such file or directory"));
}

#[test]
fn a_full_device_is_retried_then_exits_74() {
    ingest()
        .args([
            "--retry-attempts",
            "2",
            "--retry-initial-ms",
            "1",
            "--retry-max-ms",
            "2",
            "/dev/full",
        ])
        .write_stdin(SAMPLE)
        .assert()
        .code(74)
        .stderr(predicate::str::contains("retrying in").count(2))
        .stderr(predicate::str::contains(
            "cannot write to '/dev/full' (gave up after 3 attempts)",
        ))
        .stderr(predicate::str::contains("No space left on device"));
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    let (first, code, stderr) = common::closed_after(&["-".as_ref()], valid_lines(10_000), 22);
    assert_eq!(&first, b"     1  INFO Message 0");
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error") && !stderr.contains("partial record"),
        "stderr: {stderr}"
    );
}

#[test]
fn a_closed_pipe_on_the_rejects_file_is_an_io_error_not_a_quiet_end() {
    // `ingest --rejects /dev/stdout clean.log < app.log | head -3`
    let dir = Scratch::new();
    let clean = dir.path("clean.log");
    let args = ["--rejects".as_ref(), "/dev/stdout".as_ref(), clean.as_os_str()];
    let chunk = "garbage line\n2026-04-15T00:00:01Z INFO kept\n".repeat(5000);
    let (_, code, stderr) = common::closed_after(&args, chunk, 10);
    assert_eq!(code, Some(74), "stderr: {stderr}");
    assert!(
        stderr.contains("cannot write to '/dev/stdout'") && stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

#[test]
fn blank_lines_crlf_and_a_final_line_without_newline_are_handled() {
    let dir = Scratch::new();
    ingest()
        .arg(dir.path("out.log"))
        .write_stdin("2026-04-15T00:00:01Z INFO a\r\n\r\n  \t\n2026-04-15T00:00:02Z INFO b")
        .assert()
        .success()
        .stderr(predicate::str::contains("4 lines"));
    assert_eq!(dir.read("out.log"), "     1  INFO a\n     4  INFO b\n");
}

#[test]
fn the_hundred_line_count_test_rejects_the_forty_impossible_seconds() {
    let dir = Scratch::new();
    let input: String = (0..100)
        .map(|i| format!("2026-04-15T00:00:{i:02} INFO Message {i}\n"))
        .collect();
    ingest()
        .arg("--rejects")
        .arg(dir.path("bad.tsv"))
        .arg(dir.path("out.log"))
        .write_stdin(input)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("100 lines").and(predicate::str::contains("60 written, 40 rejected")),
        );
    let rejects = dir.read("bad.tsv");
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines.len(), 40);
    assert_eq!(lines[0], "61\tbad timestamp\t2026-04-15T00:00:60 INFO Message 60");
}

#[test]
fn verbose_shows_each_stage_finishing() {
    let dir = Scratch::new();
    ingest()
        .args(["-v", "--workers", "3"])
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success()
        .stderr(predicate::str::contains("reader finished: 9 lines"))
        .stderr(predicate::str::contains("parser worker finished:").count(3))
        .stderr(predicate::str::contains("validator finished: 4 valid, 1 dropped"))
        .stderr(predicate::str::contains("writer finished: 4 records"))
        .stderr(predicate::str::contains(
            "waits (blocked on output / idle for input): reader ",
        ));
}

#[test]
fn quiet_prints_nothing_on_success() {
    let dir = Scratch::new();
    ingest()
        .arg("-q")
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success()
        .stderr("");
}

#[test]
fn rejected_line_warnings_stop_after_ten_with_a_total() {
    let dir = Scratch::new();
    ingest()
        .arg(dir.path("out.log"))
        .write_stdin("garbage here\n".repeat(25))
        .assert()
        .success()
        .stderr(predicate::str::contains("bad timestamp").count(10))
        .stderr(predicate::str::contains("25 lines rejected in all"));
}

#[test]
fn usage_errors_exit_2() {
    ingest().args(["--workers", "0"]).assert().code(2);
    ingest().args(["--format", "xml"]).assert().code(2);
    ingest()
        .args(["--retry-initial-ms", "10", "--retry-max-ms", "5"])
        .assert()
        .code(2);
    ingest()
        .args(["--from", "app.log", "--rotate-wait", "1"])
        .assert()
        .code(2);
    ingest()
        .args(["--from", "app.log", "--follow", "--rotate-wait", "-1"])
        .assert()
        .code(2);
}

#[test]
fn help_teaches_the_format_and_exit_codes() {
    ingest()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("TIMESTAMP SEVERITY MESSAGE"))
        .stdout(predicate::str::contains("Exit codes"))
        .stdout(predicate::str::contains("73 cannot open output"));
    ingest()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("ingest "));
}

#[test]
fn reading_the_output_or_the_rejects_file_from_stdin_is_refused_and_writes_nothing() {
    let dir = Scratch::new();
    let before = "2026-04-15T00:00:01Z INFO one\nbad line\n";
    std::fs::write(dir.path("app.log"), before).unwrap();
    for (args, says) in [
        (vec!["app.log"], "standard input is OUTPUT 'app.log'"),
        (
            vec!["--rejects", "app.log", "out.log"],
            "standard input is --rejects 'app.log'",
        ),
    ] {
        // A file on stdin, as the shell gives it: not a pipe with a copy of its bytes.
        let run = std::process::Command::new(common::BIN)
            .env_clear()
            .current_dir(dir.path(""))
            .args(&args)
            .stdin(std::fs::File::open(dir.path("app.log")).unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(dir.read("app.log"), before, "{args:?}");
    }
    assert!(!dir.path("out.log").exists());
}

#[test]
fn a_collector_needs_a_consumer_and_a_checkpoint_and_says_so() {
    let from = "nats://127.0.0.1:1/LOGS";
    ingest()
        .args(["--from", from, "--consumer", "c", "out.log"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--from needs --checkpoint PATH"));
    ingest()
        .args(["--from", from, "--checkpoint", "cp", "out.log"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--consumer"));
    for (flag, value, says) in [
        ("--from", "nats://127.0.0.1:1/LOGS.X", "not a stream name"),
        ("--filter", "logs.>.x", "not a subject"),
        ("--consumer", "a.b", "not a consumer name"),
    ] {
        let mut args = vec!["--from", from, "--consumer", "c", "--checkpoint", "cp", "out.log"];
        let at = args.iter().position(|a| *a == flag).map(|i| i + 1);
        match at {
            Some(i) => args[i] = value,
            None => args.extend([flag, value]),
        }
        ingest()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
}
