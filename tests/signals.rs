//! Drain on SIGINT and SIGTERM, with a real process and real signals.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Scratch, expected_text, read, valid_lines, valid_lines_range};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn spawn(output: &Path) -> Child {
    Command::new(BIN)
        .env_clear()
        .arg(output)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ingest")
}

/// Polls until `ready` holds; panics after a generous deadline (a slow machine only waits longer).
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lines_in(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

fn signal_after_lines_are_written(signal: Signal, expected_code: i32) {
    let dir = Scratch::new();
    let out = dir.path("out.log");
    let mut child = spawn(&out);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(valid_lines(1000).as_bytes()).unwrap();
    stdin.flush().unwrap();
    wait_until("the 1000 lines are written", || lines_in(&out) == 1000);

    // Stdin stays open: the drain must not wait for end of input.
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(expected_code), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("{signal}: finishing the lines already read")),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("1000 lines in"), "stderr: {stderr}");
    assert_eq!(read(&out), expected_text(1000));
    drop(stdin);
}

#[test]
fn sigint_drains_what_was_read_and_exits_130() {
    signal_after_lines_are_written(Signal::SIGINT, 130);
}

#[test]
fn sigterm_drains_what_was_read_and_exits_143() {
    signal_after_lines_are_written(Signal::SIGTERM, 143);
}

#[test]
fn sigint_mid_stream_writes_every_line_read_exactly_once() {
    let dir = Scratch::new();
    let out = dir.path("out.log");
    let mut child = spawn(&out);
    let mut stdin = child.stdin.take().unwrap();
    // An endless input: only the signal can end this run.
    let feeder = std::thread::spawn(move || {
        for start in (0..).step_by(10_000) {
            if stdin
                .write_all(valid_lines_range(start..start + 10_000).as_bytes())
                .is_err()
            {
                break; // ingest stopped reading, as it should after the signal
            }
        }
    });
    wait_until("some lines are written", || lines_in(&out) >= 1000);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");

    // The output is a whole-record prefix of the input, and the summary says every line read
    // was written: nothing in flight was lost.
    let written = lines_in(&out);
    assert!(
        read(&out) == expected_text(written),
        "output is not the first {written} records"
    );
    let summary = format!("{written} lines in");
    assert!(
        stderr.contains(&summary) && stderr.contains(&format!("{written} written")),
        "stderr: {stderr}"
    );
}
