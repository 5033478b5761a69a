//! Hostile input and hostile surroundings: long lines, binary bytes, locked or unwritable output.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{BIN, Scratch, ingest};
use predicates::prelude::*;

#[test]
fn a_line_over_max_line_bytes_is_rejected_with_its_first_kilobyte_kept() {
    let dir = Scratch::new();
    let mut input = b"2026-04-15T00:00:01Z INFO before\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3 << 20));
    input.extend_from_slice(b"\n2026-04-15T00:00:02Z INFO after\n");
    input.extend(std::iter::repeat_n(b'y', 2 << 20)); // last line, no newline, too long too
    ingest()
        .arg("--rejects")
        .arg(dir.path("bad.tsv"))
        .arg(dir.path("out.log"))
        .write_stdin(input)
        .assert()
        .success()
        .stderr(predicate::str::contains("4 lines in"))
        .stderr(predicate::str::contains("2 written, 2 rejected"));
    assert_eq!(dir.read("out.log"), "     1  INFO before\n     3  INFO after\n");
    let rejects = dir.read("bad.tsv");
    let expected = format!(
        "2\tline too long\t{}\n4\tline too long\t{}\n",
        "x".repeat(1024),
        "y".repeat(1024)
    );
    assert!(
        rejects == expected,
        "rejects file: {} bytes, starts {:?}",
        rejects.len(),
        &rejects[..40]
    );
}

#[test]
fn max_line_bytes_applies_to_short_complete_lines_too() {
    let dir = Scratch::new();
    ingest()
        .args(["--max-line-bytes", "30"])
        .arg(dir.path("out.log"))
        .write_stdin("2026-04-15T00:00:01Z INFO ok\n2026-04-15T00:00:02Z INFO far too long\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("line 2: line too long"));
    assert_eq!(dir.read("out.log"), "     1  INFO ok\n");
}

#[test]
fn a_gigantic_line_of_zeros_is_one_rejected_line() {
    let dir = Scratch::new();
    // 64 MiB without a newline: held whole it would be 64 MiB; skipped it is one reject.
    ingest()
        .arg(dir.path("out.log"))
        .write_stdin(vec![0u8; 64 << 20])
        .assert()
        .success()
        .stderr(predicate::str::contains("line 1: line too long: '\\0\\0\\0"))
        .stderr(predicate::str::contains("1 line in"));
}

#[test]
fn binary_garbage_nul_bytes_and_invalid_utf8_each_get_their_contract_outcome() {
    let dir = Scratch::new();
    let input: &[u8] = b"2026-04-15T00:00:01Z INFO nul\x00inside\n\
        \x00\x01\x02\x03\n\
        \xff\xfe\xfd INFO x\n\
        2026-04-15T00:00:02Z INFO caf\xe9 \xff\r\n\
        2026-04-15T00:00:03Z \xffINFO x\n\
        \x00\n\
        2026-04-15T00:00:04Z WARN last, no newline";
    ingest()
        .arg("--rejects")
        .arg(dir.path("bad.tsv"))
        .arg(dir.path("out.log"))
        .write_stdin(input)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("7 lines in").and(predicate::str::contains("3 written, 4 rejected")),
        );
    let out = std::fs::read(dir.path("out.log")).unwrap();
    assert_eq!(
        out,
        b"     1  INFO nul\x00inside\n     4  INFO caf\xe9 \xff\n     7  WARN last, no newline\n".to_vec()
    );
    let rejects = std::fs::read(dir.path("bad.tsv")).unwrap();
    let reasons: Vec<String> = rejects
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            String::from_utf8_lossy(l)
                .split('\t')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "2 not enough fields",
            "3 bad timestamp",
            "5 bad severity",
            "6 not enough fields"
        ]
    );
}

#[test]
fn json_output_replaces_invalid_utf8() {
    ingest()
        .args(["-f", "json", "-"])
        .write_stdin(&b"2026-04-15T00:00:01Z INFO caf\xe9\n"[..])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"message\":\"caf\u{fffd}\""));
}

#[test]
fn a_second_run_on_the_same_output_exits_75_at_once() {
    let dir = Scratch::new();
    let out = dir.path("out.log");
    let mut first = Command::new(BIN)
        .env_clear()
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(b"2026-04-15T00:00:01Z INFO first\n").unwrap();
    stdin.flush().unwrap();
    // The first run holds the lock from before it writes its first record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read(&out).map_or(true, |b| b.is_empty()) {
        assert!(std::time::Instant::now() < deadline, "the first run never wrote");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    ingest()
        .arg(&out)
        .write_stdin("2026-04-15T00:00:02Z INFO second\n")
        .assert()
        .code(75)
        .stderr(predicate::str::contains(format!(
            "'{}' is being written by another ingest run",
            out.display()
        )));
    drop(stdin);
    assert!(first.wait().unwrap().success());
    assert_eq!(dir.read("out.log"), "     1  INFO first\n");
    // Once the first run is gone, the lock is free again.
    ingest()
        .arg(&out)
        .write_stdin("2026-04-15T00:00:02Z INFO second\n")
        .assert()
        .success();
}

#[test]
fn a_directory_we_may_not_write_to_exits_73() {
    // sysfs refuses new files even to root, who would ignore a read-only mode bit.
    ingest()
        .arg("/sys/ingest-test.log")
        .write_stdin("2026-04-15T00:00:01Z INFO x\n")
        .assert()
        .code(73)
        .stderr(predicate::str::contains(
            "cannot open '/sys/ingest-test.log' for appending: Permission denied",
        ));
}
