//! Input layouts and `--multiline`: files written by the real loggers read into the records they
//! must give, with the layout named and with `auto`; records that span lines, across batches,
//! workers, a quiet live pipe and the limits.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Scratch, ingest, wait_until};
use predicates::prelude::*;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layouts")
        .join(name)
}

/// Runs `ingest -f json ARGS -` on `input`; the JSON records and stderr.
fn json_records(args: &[&str], input: &[u8]) -> (Vec<Value>, String) {
    let output = ingest()
        .args(["-f", "json"])
        .args(args)
        .arg("-")
        .write_stdin(input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?}: {stderr}");
    let records = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (records, stderr)
}

/// Each record's `timestamp`, as written.
fn timestamps(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["timestamp"].as_str().unwrap()).collect()
}

/// An RFC 3339 timestamp as an instant.
fn instant(value: &Value) -> jiff::Timestamp {
    value
        .as_str()
        .expect("a timestamp string")
        .parse()
        .expect("RFC 3339")
}

/// The instant an RFC 3164 stamp (written without a year) must become: the expected one's date
/// and time in the latest year that does not put it more than a day past now.
fn year_inferred(expected: jiff::Timestamp) -> jiff::Timestamp {
    let civil = expected.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime();
    let latest = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    let now_year = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .year();
    (now_year - 8..=now_year + 1)
        .rev()
        .find_map(|year| {
            let at = civil.with().year(year).build().ok()?;
            let at = at.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok()?.timestamp();
            (at <= latest).then_some(at)
        })
        .expect("some year fits")
}

/// Checks `got` against a fixture's expected records: line, instant, severity, message, and
/// the fields it names (others may be there too).
fn assert_records(name: &str, got: &[Value], expected: &[Value]) {
    assert_eq!(got.len(), expected.len(), "{name}: record count");
    for (got, want) in got.iter().zip(expected) {
        let at = format!("{name}, line {}", want["line"]);
        assert_eq!(got["line"], want["line"], "{at}");
        assert_eq!(got["severity"], want["severity"], "{at}");
        assert_eq!(got["message"], want["message"], "{at}");
        let want_at = if want["year_inferred"] == true {
            year_inferred(instant(&want["timestamp"]))
        } else {
            instant(&want["timestamp"])
        };
        assert_eq!(instant(&got["timestamp"]), want_at, "{at}: timestamp");
        if let Some(fields) = want["fields"].as_object() {
            for (key, value) in fields {
                assert_eq!(&got["fields"][key], value, "{at}: field {key}");
            }
        }
    }
}

#[test]
fn every_logger_sample_gives_its_records_with_its_flags_and_with_auto() {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".args")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 12, "the fixtures are there: {names:?}");
    for name in &names {
        let args = std::fs::read_to_string(fixture(&format!("{name}.args"))).unwrap();
        let args: Vec<&str> = args.split_whitespace().collect();
        let input = std::fs::read(fixture(&format!("{name}.log"))).unwrap();
        let expected: Vec<Value> = std::fs::read_to_string(fixture(&format!("{name}.expected.jsonl")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let (got, _) = json_records(&args, &input);
        assert_records(name, &got, &expected);
        // `auto` (only --multiline and --max-line-bytes kept) picks the same layout, and says
        // which with -v.
        let mut auto = Vec::new();
        for (i, &arg) in args.iter().enumerate() {
            match arg {
                "--multiline" => auto.push(arg),
                "--max-line-bytes" => auto.extend([arg, args[i + 1]]),
                _ => {}
            }
        }
        auto.push("-v");
        let (got, stderr) = json_records(&auto, &input);
        assert_records(&format!("{name} (auto)"), &got, &expected);
        assert!(
            stderr.contains("input layout: "),
            "{name}: -v names the layout: {stderr}"
        );
    }
}

#[test]
fn help_lists_every_layout_and_named_pattern_with_its_template() {
    ingest().arg("--help").assert().success().stdout(
        predicate::str::contains("--input <LAYOUT>")
            .and(predicate::str::contains("--pattern <TEMPLATE>"))
            .and(predicate::str::contains("--multiline"))
            .and(predicate::str::contains("--tz <ZONE>"))
            .and(predicate::str::contains("--time-format <FORMAT>"))
            .and(predicate::str::contains(
                "python       {timestamp} - {_} - {severity} - {message}",
            ))
            .and(predicate::str::contains(
                "loguru       {timestamp} | {severity} | {_} - {message}",
            ))
            .and(predicate::str::contains(
                "structlog    {timestamp} [{severity}] {message}",
            ))
            .and(predicate::str::contains(
                "env_logger   [{timestamp} {severity} {_}] {message}",
            ))
            .and(predicate::str::contains(
                "postgres     {timestamp} [{_}] {severity}: {message}",
            ))
            .and(predicate::str::contains(
                "nginx-error  {timestamp} [{severity}] {_}: {message}",
            )),
    );
    for (args, says) in [
        (&["--input", "yaml"][..], "unknown layout"),
        (
            &["--pattern", "{severity} {message}"][..],
            "exactly one {timestamp}",
        ),
        (&["--tz", "Mars/Olympus"][..], "--tz Mars/Olympus"),
        (&["--max-record-lines", "5"][..], "--multiline"),
        (
            &[
                "--from",
                "nats://127.0.0.1:1/LOGS",
                "--consumer",
                "c",
                "--checkpoint",
                "cp",
                "--multiline",
            ][..],
            "belong to the publishers",
        ),
    ] {
        common::assert_usage_error(args, says);
    }
}

/// `records` Java-like records, the i-th with `i % 13` continuation lines (`\tat ...`,
/// `Caused by:`, `... N more`, blank lines between some), every 17th with a bad severity; and the
/// text output `--multiline` must give for them.
fn stack_traces(records: usize) -> (String, String) {
    let (mut input, mut output) = (String::new(), String::new());
    let mut line = 1;
    for i in 0..records {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        let bad = i % 17 == 16;
        let severity = if bad { "LOUD" } else { "ERROR" };
        input.push_str(&format!(
            "2026-04-15T{h:02}:{m:02}:{s:02}.{i:03}Z {severity} request {i} failed\n"
        ));
        let first = line;
        line += 1;
        let mut message = format!("request {i} failed");
        for c in 0..i % 13 {
            let text = match c {
                0 => format!("java.lang.IllegalStateException: state {i}"),
                5 => "Caused by: java.io.IOException: gone".to_owned(),
                12 => "\t... 12 more".to_owned(),
                _ => format!("\tat com.example.Service.call(Service.java:{c})"),
            };
            if c == 3 {
                input.push('\n');
                line += 1;
            }
            input.push_str(&text);
            input.push_str("  \n");
            line += 1;
            message.push('\n');
            message.push_str(&" ".repeat(13));
            message.push_str(&text);
        }
        if !bad {
            output.push_str(&format!("{first:>6} ERROR {message}\n"));
        }
    }
    (input, output)
}

#[test]
fn multiline_records_straddling_batches_come_out_whole_with_1_and_8_workers() {
    let (input, expected) = stack_traces(3000);
    for workers in ["1", "8"] {
        // --capacity 8 makes batches of a line or two: nearly every record straddles several.
        let dir = Scratch::new();
        let output = ingest()
            .args([
                "--multiline",
                "--capacity",
                "8",
                "--workers",
                workers,
                "--stats-json",
                "-",
            ])
            .arg(dir.path("out.log"))
            .write_stdin(input.clone())
            .output()
            .unwrap();
        assert!(output.status.success());
        let out = dir.read("out.log");
        assert!(
            out == expected,
            "workers {workers}: the output differs ({} bytes, expected {})",
            out.len(),
            expected.len()
        );
        let stats: Value = String::from_utf8_lossy(&output.stderr)
            .lines()
            .find_map(|l| serde_json::from_str(l).ok())
            .expect("the stats line");
        let sum: u64 = ["blank", "rejected", "dropped", "filtered", "written", "continued"]
            .iter()
            .map(|k| stats[k].as_u64().unwrap())
            .sum();
        assert_eq!(sum, stats["lines"].as_u64().unwrap(), "{stats}");
        assert!(stats["continued"].as_u64().unwrap() > 10_000, "{stats}");
    }
}

#[test]
fn continuations_of_a_rejected_record_are_rejected_with_it_and_limits_hold() {
    let dir = Scratch::new();
    let input = "Traceback (most recent call last):\n\
                 2026-04-15T00:00:01Z LOUD bad\n\
                 \tat x\n\
                 \n\
                 2026-04-15T00:00:02Z INFO kept\n\
                 \tone\n\
                 \ttwo\n\
                 \tthree\n\
                 2026-04-15T00:00:03Z WARN long\n\
                 \tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\
                 \tBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n\
                 2026-04-15T00:00:04Z INFO last\n";
    ingest()
        .args([
            "--multiline",
            "--max-record-lines",
            "3",
            "--max-line-bytes",
            "100",
            "--rejects",
        ])
        .arg(dir.path("rej.tsv"))
        .arg(dir.path("out.log"))
        .write_stdin(input)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("12 lines in").and(predicate::str::contains(
                "2 written, 7 rejected, 0 dropped, 0 filtered, 1 blank, 2 continued",
            )),
        );
    assert_eq!(
        dir.read("out.log"),
        "     5  INFO kept\n             \tone\n             \ttwo\n    12  INFO last\n"
    );
    assert_eq!(
        dir.read("rej.tsv"),
        "1\tbad timestamp\tTraceback (most recent call last):\n\
         2\tbad severity\t2026-04-15T00:00:01Z LOUD bad\n\
         3\tbad severity\t\tat x\n\
         8\trecord too long\t\tthree\n\
         9\tline too long\t2026-04-15T00:00:03Z WARN long\n\
         10\tline too long\t\tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\
         11\tline too long\t\tBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n"
    );
}

#[test]
fn a_record_larger_than_max_line_bytes_is_rejected_whole_even_across_reads() {
    // 400 continuation lines of 100 bytes (40 KB) under a 10 KB limit: the reader hands the
    // record out in parts, each rejected, with nothing of it written.
    let mut input = String::from("2026-04-15T00:00:01Z INFO before\n2026-04-15T00:00:02Z ERROR huge\n");
    for i in 0..400 {
        input.push_str(&format!("\tat frame {i:04} {}\n", "x".repeat(85)));
    }
    input.push_str("2026-04-15T00:00:03Z INFO after\n\tcontinued\n");
    let dir = Scratch::new();
    let mut child = Command::new(BIN)
        .env_clear()
        .args(["--multiline", "--max-line-bytes", "10000", "--rejects"])
        .arg(dir.path("rej.tsv"))
        .arg(dir.path("out.log"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        // Written in small pieces, so that the reader sees the record grow over many reads.
        let mut stdin = child.stdin.take().unwrap();
        for piece in input.as_bytes().chunks(3000) {
            stdin.write_all(piece).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        dir.read("out.log"),
        "     1  INFO before\n   403  INFO after\n             \tcontinued\n"
    );
    let rejects = dir.read("rej.tsv");
    assert_eq!(rejects.lines().count(), 401, "the record's every line");
    assert!(rejects.lines().all(|l| l.contains("\tline too long\t")));
    assert!(rejects.starts_with("2\tline too long\t2026-04-15T00:00:02Z ERROR huge\n"));
}

#[test]
fn a_quiet_live_pipe_finishes_its_last_record_after_the_timeout() {
    let dir = Scratch::new();
    let mut child = Command::new(BIN)
        .env_clear()
        .args(["--multiline", "--multiline-timeout", "200"])
        .arg(dir.path("out.log"))
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"2026-04-15T00:00:01Z ERROR boom\nTraceback (most recent call last):\n  File \"x.py\"\n")
        .unwrap();
    stdin.flush().unwrap();
    // The pipe stays open: only the timeout can finish the record.
    wait_until("the held record is written", || {
        std::fs::read_to_string(dir.path("out.log")).is_ok_and(|s| s.contains("File"))
    });
    assert_eq!(
        dir.read("out.log"),
        "     1 ERROR boom\n             Traceback (most recent call last):\n               File \"x.py\"\n"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn tz_places_local_times_across_a_dst_change() {
    let input = "2026-03-29 01:30:00 INFO before the change\n\
                 2026-03-29 02:30:00 INFO skipped by the clocks\n\
                 2026-03-29 03:30:00 INFO after the change\n\
                 2026-10-25 02:30:00 INFO happened twice\n\
                 2026-10-25 02:30:00+01:00 INFO the offset wins\n";
    let (records, _) = json_records(&["--tz", "Europe/Berlin"], input.as_bytes());
    let times = timestamps(&records);
    assert_eq!(
        times,
        [
            "2026-03-29T00:30:00Z",
            "2026-03-29T01:30:00Z",
            "2026-03-29T01:30:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00Z"
        ]
    );
}

#[test]
fn a_named_tz_reads_the_last_day_of_year_9999_as_the_default_clock_does() {
    let input = "9999-12-31 12:00:00 INFO noon of the last day\n\
                 9999-12-31 23:30:00 INFO its last hour\n\
                 9999-12-30 10:00:00 INFO the day before\n";
    let (records, stderr) = json_records(&["--tz", "Europe/Berlin"], input.as_bytes());
    let times = timestamps(&records);
    assert_eq!(
        times,
        [
            "9999-12-31T11:00:00Z",
            "9999-12-31T22:30:00Z",
            "9999-12-30T09:00:00Z"
        ],
        "{stderr}"
    );
    // West of UTC the last evening of year 9999 is already year 10000 in UTC: a bad timestamp.
    let input = "9999-12-31 20:00:00 INFO past the end\n9999-12-31 12:00:00 INFO before it\n";
    let (records, stderr) = json_records(&["--tz", "America/New_York"], input.as_bytes());
    let times = timestamps(&records);
    assert_eq!(times, ["9999-12-31T17:00:00Z"]);
    assert!(stderr.contains("line 1: bad timestamp"), "{stderr}");
}

#[test]
fn a_pattern_with_a_time_format_reads_an_access_log_like_layout() {
    let input =
        "[15/Apr/2026:10:00:00 +0200] warn db: slow query\n[16/Apr/2026:11:30:00 +0000] error web: 503\n";
    let (records, _) = json_records(
        &[
            "--pattern",
            "[{timestamp}] {severity} {_}: {message}",
            "--time-format",
            "%d/%b/%Y:%H:%M:%S %z",
        ],
        input.as_bytes(),
    );
    let got: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["timestamp"].as_str().unwrap(),
                r["severity"].as_str().unwrap(),
                r["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2026-04-15T08:00:00Z", "WARN", "slow query"),
            ("2026-04-16T11:30:00Z", "ERROR", "503")
        ]
    );
}

#[test]
fn structured_fields_are_kept_in_text_as_logfmt_pairs() {
    let input = r#"{"time":"2026-04-15T00:00:01Z","level":"info","msg":"hi","user":"ann lee","n":3,"tags":["a","b"],"ok":true}"#;
    let dir = Scratch::new();
    ingest()
        .arg(dir.path("out.log"))
        .write_stdin(input)
        .assert()
        .success();
    assert_eq!(
        dir.read("out.log"),
        concat!(
            r#"     1  INFO hi user="ann lee" n=3 tags="[\"a\",\"b\"]" ok=true"#,
            "\n"
        )
    );
}

#[test]
fn hostile_json_lines_are_read_or_rejected_and_the_run_goes_on() {
    let deep = format!(
        "{{\"time\":1,\"msg\":\"deep\",\"a\":{}0{}}}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    let huge_number = format!("1{}", "0".repeat(100_000));
    let mut input = deep.into_bytes();
    input.extend_from_slice(format!("{{\"time\":1,\"msg\":\"huge\",\"n\":{huge_number}}}\n").as_bytes());
    input.extend_from_slice(b"{\"time\":1,\"msg\":\"caf\xe9\"}\n");
    input.extend_from_slice(b"{\"time\":1,\"msg\":\"first\",\"msg\":\"second\"}\n");
    input.extend_from_slice(
        b"{\"time\":1e999,\"msg\":\"inf\"}\n{\"time\":-5,\"level\":1e300,\"msg\":\"x\"}\n",
    );
    input.extend_from_slice(b"{\"time\":1,\"level\":1e400,\"msg\":\"y\"}\n{\"time\":");
    let output = ingest()
        .args(["--input", "json", "-f", "json", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    // A number past any float is kept as written (a reader with arbitrary precision reads it).
    assert!(lines[0].contains(&format!(
        "\"message\":\"huge\",\"fields\":{{\"n\":{huge_number}}}"
    )));
    let first: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        (&first["message"], &first["fields"]["msg"]),
        (&Value::from("first"), &Value::from("second"))
    );
    let x: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(
        (&x["message"], &x["severity"]),
        (&Value::from("x"), &Value::from("FATAL"))
    );
    assert!(
        stderr.contains("8 lines in") && stderr.contains("3 written, 5 rejected"),
        "{stderr}"
    );
    assert!(stderr.contains("line 1: not in the layout"), "too deep: {stderr}");
    assert!(
        stderr.contains("line 3: not in the layout"),
        "invalid UTF-8: {stderr}"
    );
    assert!(stderr.contains("line 5: bad timestamp"), "{stderr}");
    assert!(stderr.contains("line 7: bad severity"), "{stderr}");
}

#[test]
fn the_checkpoint_keeps_the_layout_auto_picked_for_the_input() {
    let dir = Scratch::new();
    let input = dir.path("in.log");
    let python = "2026-03-02 09:30:01,235 - app - ERROR - one\n2026-03-02 09:30:02,235 - app - INFO - two\n";
    std::fs::write(&input, python).unwrap();
    let run = || {
        Command::new(BIN)
            .env_clear()
            .arg("--checkpoint")
            .arg(dir.path("cp"))
            .arg(dir.path("out.log"))
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    assert!(dir.read("cp").contains("\nlayout python\n"), "{}", dir.read("cp"));
    // Lines of another layout appended: the rerun still reads python, and says why they fail.
    let mut file = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
    file.write_all(b"2026-03-02T09:30:03Z INFO plain now\n").unwrap();
    let output = run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success());
    assert!(stderr.contains("line 3: not in the layout"), "{stderr}");
    assert!(
        stderr.contains("input layout 'python' (kept by the checkpoint) rejected 1 of 1 lines"),
        "a kept layout that reads none of a run's lines says so: {stderr}"
    );
    assert_eq!(dir.read("out.log"), "     1 ERROR one\n     2  INFO two\n");
}

#[test]
fn auto_keeps_no_choice_made_from_an_empty_or_banner_only_file() {
    let json = |i: u32| {
        format!(
            "{{\"time\":{},\"level\":\"info\",\"msg\":\"m{i}\"}}\n",
            1_776_211_200 + i
        )
    };
    for first in ["", "=== app starting ===\n"] {
        let dir = Scratch::new();
        let input = dir.path("app.log");
        let run = || {
            let output = Command::new(BIN)
                .env_clear()
                .arg("--checkpoint")
                .arg(dir.path("cp"))
                .arg(dir.path("out.log"))
                .stdin(std::fs::File::open(&input).unwrap())
                .output()
                .unwrap();
            assert!(output.status.success());
            String::from_utf8_lossy(&output.stderr).into_owned()
        };
        // logrotate's `create`, or cron before the app wrote its first record.
        std::fs::write(&input, first).unwrap();
        run();
        assert!(
            !dir.read("cp").contains("\nlayout "),
            "{first:?}: {}",
            dir.read("cp")
        );
        let mut file = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
        for i in 1..=5 {
            file.write_all(json(i).as_bytes()).unwrap();
        }
        let stderr = run();
        assert!(stderr.contains("5 written, 0 rejected"), "{first:?}: {stderr}");
        assert!(dir.read("cp").contains("\nlayout json\n"), "{}", dir.read("cp"));
        let out = dir.read("out.log");
        assert_eq!(out.lines().count(), 5, "{first:?}: {out}");
        assert!(out.ends_with(" INFO m5\n"), "{out}");
    }
}

#[test]
fn tracing_fmt_and_python_logging_files_read_as_plain_with_their_tracebacks_kept() {
    let read = |name: &str, args: &[&str]| {
        let input = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap();
        json_records(args, &input)
    };
    // The tracing crates' fmt layer: `TIMESTAMP  LEVEL target: message`, every line a record.
    let (records, stderr) = read("rust-tracing-fmt.log", &["-v"]);
    assert_eq!(records.len(), 300, "{stderr}");
    assert!(stderr.contains("input layout: plain"), "{stderr}");
    assert_eq!(
        records[2]["message"],
        "rc_tracing: request served in 2 ms user=\"ana\""
    );
    // Python's logging with its tracebacks: each stays with its record, nothing is rejected.
    let (records, stderr) = read("python-logging-default.log", &["--multiline"]);
    assert!(
        stderr.contains("0 rejected") && stderr.contains("16 continued"),
        "{stderr}"
    );
    let traces: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["message"]
                .as_str()
                .unwrap()
                .contains("Traceback (most recent call last):")
        })
        .collect();
    assert_eq!(traces.len(), 4);
    assert!(traces.iter().all(|r| {
        r["message"]
            .as_str()
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .starts_with("ValueError: ")
    }));
}

#[test]
fn go_panics_and_rust_backtraces_stay_with_their_record() {
    let input = "2026-04-15T10:00:00Z ERROR worker crashed\n\
                 panic: runtime error: index out of range [5] with length 3\n\
                 \n\
                 goroutine 1 [running]:\n\
                 main.main()\n\
                 \t/app/main.go:8 +0x1d\n\
                 exit status 2\n\
                 2026-04-15T10:00:01Z ERROR thread panicked\n\
                 thread 'main' panicked at src/main.rs:4:5:\n\
                 boom\n\
                 stack backtrace:\n   \
                 0: rust_begin_unwind\n             \
                 at /rustc/library/std/src/panicking.rs:652:5\n\
                 note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n\
                 2026-04-15T10:00:02Z INFO recovered\n";
    let (records, stderr) = json_records(&["--multiline"], input.as_bytes());
    let messages: Vec<&str> = records.iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages,
        [
            "worker crashed\npanic: runtime error: index out of range [5] with length 3\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:8 +0x1d\nexit status 2",
            "thread panicked\nthread 'main' panicked at src/main.rs:4:5:\nboom\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/library/std/src/panicking.rs:652:5\nnote: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
            "recovered"
        ]
    );
    assert!(stderr.contains("1 blank, 11 continued"), "{stderr}");
}

#[test]
fn the_sample_logs_traceback_stays_in_its_record_with_multiline() {
    let input = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sample.log")).unwrap();
    let (records, _) = json_records(&["--multiline"], &input);
    let record = records
        .iter()
        .find(|r| r["line"] == 6)
        .expect("the record before the traceback");
    assert_eq!(record["severity"], "FATAL", "written as CRITICAL");
    assert_eq!(
        record["message"],
        "\nTraceback (most recent call last):\n  File \"app.py\", line 30, in <module>\n    raise ValueError(\"boom %d\" % i)\nValueError: boom 5"
    );
}

#[test]
fn a_utf8_byte_order_mark_is_no_part_of_the_first_record_in_any_layout() {
    let firsts = [
        ("plain", "2026-04-15T10:00:00Z INFO first"),
        (
            "json",
            r#"{"time":"2026-04-15T10:00:00Z","level":"info","msg":"first"}"#,
        ),
        ("logfmt", "time=2026-04-15T10:00:00Z level=info msg=first"),
        ("syslog", "<14>1 2026-04-15T10:00:00Z host app 1 - - first"),
        ("python", "2026-04-15 10:00:00,000 - app - INFO - first"),
    ];
    for (layout, line) in firsts {
        let input = format!("\u{feff}{line}\n");
        for args in [&["--input", layout][..], &[], &["--multiline"]] {
            let (records, stderr) = json_records(args, input.as_bytes());
            assert_eq!(records.len(), 1, "{layout} {args:?}: {stderr}");
            assert_eq!(records[0]["message"], "first", "{layout} {args:?}");
            assert_eq!(
                records[0]["timestamp"], "2026-04-15T10:00:00Z",
                "{layout} {args:?}"
            );
        }
    }
}

#[test]
fn utf16_input_is_named_as_such() {
    let text = "2026-04-15T10:00:00Z INFO first\n";
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    for (input, says) in [
        (
            [&[0xFF, 0xFE][..], &le].concat(),
            "UTF-16LE (it starts with a byte order mark)",
        ),
        (le, "UTF-16LE"),
        (
            [&[0xFE, 0xFF][..], &be].concat(),
            "UTF-16BE (it starts with a byte order mark)",
        ),
    ] {
        let (_, stderr) = json_records(&[], &input);
        assert!(
            stderr.contains(&format!("warning: the input is {says}: ingest reads UTF-8")),
            "{stderr}"
        );
        assert!(stderr.contains("iconv -f UTF-16 -t UTF-8"), "{stderr}");
    }
    // UTF-8 says nothing of the kind.
    let (_, stderr) = json_records(&[], text.as_bytes());
    assert!(!stderr.contains("UTF-16"), "{stderr}");
}

#[test]
fn a_zone_read_by_time_format_q_places_the_time_before_tz_does() {
    let input = "2026-04-15 10:00:00 Europe/Berlin INFO a named zone\n\
                 2026-04-15 10:00:00 +02:00 INFO an offset with a colon\n\
                 2026-04-15 10:00:00 +0200 INFO an offset without\n\
                 2026-04-15 10:00:00 UTC INFO UTC\n";
    let (records, stderr) = json_records(
        &[
            "--time-format",
            "%Y-%m-%d %H:%M:%S %Q",
            "--tz",
            "America/New_York",
        ],
        input.as_bytes(),
    );
    let times = timestamps(&records);
    assert_eq!(
        times,
        [
            "2026-04-15T08:00:00Z",
            "2026-04-15T08:00:00Z",
            "2026-04-15T08:00:00Z",
            "2026-04-15T10:00:00Z"
        ],
        "{stderr}"
    );
    // Epoch seconds are a format that works.
    let (records, stderr) = json_records(&["--time-format", "%s"], b"1776247200 INFO epoch\n");
    assert_eq!(records.len(), 1, "{stderr}");
    assert_eq!(records[0]["timestamp"], "2026-04-15T10:00:00Z");
}

#[test]
fn a_time_format_that_cannot_give_a_date_and_time_is_a_usage_error() {
    for format in ["", "%H:%M:%S", "%Y"] {
        ingest()
            .args(["--time-format", format, "-"])
            .write_stdin("2026-04-15 10:00:00 INFO x\n")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("--time-format {format:?}")))
            .stderr(predicate::str::contains("no date and time can be read back"));
    }
}

#[test]
fn a_record_past_max_record_lines_keeps_its_first_lines_and_its_rejects_follow_in_order() {
    let dir = Scratch::new();
    let mut input = String::from("2026-04-15T10:00:00Z INFO before\n2026-04-15T10:00:01Z ERROR big\n");
    for i in 0..20_000 {
        input.push_str(&format!("    at frame {i:05} {}\n", "y".repeat(80)));
    }
    input.push_str("2026-04-15T10:00:02Z INFO after\n");
    // ~2 MB of continuations: what the record keeps (1,000 lines, ~100 KB) is far under
    // --max-line-bytes; with 50 KB, it is over, and every line of the record is too long.
    for (max_line_bytes, kept, reason, rejected) in [
        ("1048576", 1_000, "record too long", 19_001),
        ("50000", 0, "line too long", 20_001),
    ] {
        for workers in ["1", "8"] {
            let rejects = dir.path("rejects.tsv");
            let _ = std::fs::remove_file(&rejects);
            let (records, stderr) = json_records(
                &[
                    "--multiline",
                    "-w",
                    workers,
                    "--max-line-bytes",
                    max_line_bytes,
                    "--rejects",
                    rejects.to_str().unwrap(),
                ],
                input.as_bytes(),
            );
            let what = format!("--max-line-bytes {max_line_bytes} -w {workers}");
            let lines: Vec<usize> = records
                .iter()
                .map(|r| r["message"].as_str().unwrap().lines().count())
                .collect();
            let expected = if kept > 0 { vec![1, kept, 1] } else { vec![1, 1] };
            assert_eq!(lines, expected, "{what}: {stderr}");
            let rejects = std::fs::read_to_string(&rejects).unwrap();
            let numbers: Vec<u64> = rejects
                .lines()
                .map(|l| l.split('\t').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(numbers.len(), rejected, "{what}");
            let first = if kept > 0 { 3 + kept as u64 - 1 } else { 2 };
            assert_eq!(
                numbers,
                (first..first + rejected as u64).collect::<Vec<_>>(),
                "{what}: in line order"
            );
            assert!(
                rejects.lines().all(|l| l.split('\t').nth(1) == Some(reason)),
                "{what}: one reason"
            );
        }
    }
}

#[test]
fn what_a_record_keeps_is_measured_alike_whoever_cuts_it_at_the_byte_limit() {
    // Three lines kept (blank ones are not lines of the record), two past --max-record-lines.
    let head = "2026-04-15T10:00:00Z ERROR x\n  a  \n\n  b";
    let kept = head.len();
    let input = format!("{head}\n  c\n\n  d\n2026-04-15T10:00:01Z INFO next\n");
    for (limit, reason, written) in [(kept, "record too long", 2), (kept - 1, "line too long", 1)] {
        let dir = Scratch::new();
        let rejects = dir.path("rejects.tsv");
        let limit = limit.to_string();
        let (records, stderr) = json_records(
            &[
                "--multiline",
                "--max-record-lines",
                "3",
                "--max-line-bytes",
                &limit,
                "--rejects",
                rejects.to_str().unwrap(),
            ],
            input.as_bytes(),
        );
        assert_eq!(records.len(), written, "--max-line-bytes {limit}: {stderr}");
        let rejects = std::fs::read_to_string(&rejects).unwrap();
        let reasons: Vec<&str> = rejects.lines().map(|l| l.split('\t').nth(1).unwrap()).collect();
        assert!(
            !reasons.is_empty() && reasons.iter().all(|r| *r == reason),
            "--max-line-bytes {limit}: {rejects}"
        );
        let numbers: Vec<u64> = rejects
            .lines()
            .map(|l| l.split('\t').next().unwrap().parse().unwrap())
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "in line order: {numbers:?}"
        );
    }
}
