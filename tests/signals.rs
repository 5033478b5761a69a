//! Drain on SIGINT and SIGTERM, with a real process and real signals.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Scratch, expected_text, read, valid_lines_range, wait_until};
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

/// After a drain ingest re-raises the signal: the status is death by that signal, which a shell
/// reports as `$?` = 128 + its number (130, 143).
fn assert_ended_by(status: std::process::ExitStatus, signal: Signal, context: &str) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(signal as i32),
        "status {status:?}; {context}"
    );
}

fn lines_in(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

#[test]
fn sigint_drains_what_was_read_and_ends_by_sigint() {
    signal_with_records_in_flight(Signal::SIGINT);
}

#[test]
fn sigterm_drains_what_was_read_and_ends_by_sigterm() {
    signal_with_records_in_flight(Signal::SIGTERM);
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
    assert_ended_by(output.status, Signal::SIGINT, &format!("stderr: {stderr}"));

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

/// Starts ingest writing to a stdout pipe that the test reads only when it wants to, fed by a
/// thread that writes `total` lines and counts the bytes it got in.
struct Blocked {
    child: Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    fed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    feeder: Option<std::thread::JoinHandle<std::process::ChildStdin>>,
}

impl Blocked {
    fn start(args: &[&str], total: usize) -> Blocked {
        let mut child = Command::new(BIN)
            .env_clear()
            .args(args)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ingest");
        let mut stdin = child.stdin.take().unwrap();
        let fed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = fed.clone();
        let feeder = std::thread::spawn(move || {
            for start in (0..total).step_by(1000) {
                let chunk = valid_lines_range(start..(start + 1000).min(total));
                if stdin.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
                counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
            }
            stdin // kept open: only the signal ends the run
        });
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        Blocked {
            child,
            stderr,
            fed,
            feeder: Some(feeder),
        }
    }

    /// Waits until ingest has taken in at least `bytes` of input (the pipe holds 64 KiB more).
    fn wait_fed(&self, bytes: usize) {
        wait_until("ingest has read its input", || {
            self.fed.load(std::sync::atomic::Ordering::SeqCst) >= bytes
        });
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Reads stderr until a line contains `text`; returns everything read.
    fn wait_for_stderr(&mut self, text: &str) -> String {
        use std::io::BufRead;
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = self.stderr.read_line(&mut line).unwrap();
            assert!(n > 0, "stderr ended before {text:?}: {seen}");
            seen.push_str(&line);
            if line.contains(text) {
                return seen;
            }
        }
    }
}

/// The signal comes while records are in flight: stdout is a pipe nobody reads until after
/// it, so the window is full and every stage is blocked. A cancel instead of a drain would
/// lose those records; the drain writes every one, and the summary says so.
fn signal_with_records_in_flight(signal: Signal) {
    let mut run = Blocked::start(&[], 500_000);
    run.wait_fed(512 << 10);
    run.signal(signal);
    run.wait_for_stderr(&format!("{signal}: finishing the lines already read"));
    let mut stdout = run.child.stdout.take().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    let status = run.child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut run.stderr, &mut rest).unwrap();
    assert_ended_by(status, signal, &format!("stderr: {rest}"));
    let written = out.lines().count();
    // The pipe held at most 64 KiB when the signal came: the rest was in flight.
    assert!(
        out.len() > 256 << 10,
        "only {} bytes written: nothing was in flight",
        out.len()
    );
    assert!(
        out == expected_text(written),
        "output is not the first {written} records"
    );
    assert!(
        rest.contains(&format!("{written} lines in")) && rest.contains(&format!("{written} written")),
        "{rest}"
    );
    drop(run.feeder.take().unwrap().join());
}

#[test]
fn a_second_signal_during_the_drain_exits_at_once() {
    let mut run = Blocked::start(&["--shutdown-timeout", "600"], 500_000);
    run.wait_fed(512 << 10);
    run.signal(Signal::SIGTERM);
    run.wait_for_stderr("finishing the lines already read");
    // The drain cannot finish: stdout is full and nobody reads it.
    run.signal(Signal::SIGINT);
    run.wait_for_stderr("SIGINT again: stopping at once");
    let started = Instant::now();
    let status = run.child.wait().unwrap();
    assert_ended_by(status, Signal::SIGINT, "the second signal");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it took {:?} to stop",
        started.elapsed()
    );
    drop(run.feeder.take().unwrap().join());
}

#[test]
fn a_drain_that_cannot_finish_gives_up_after_the_shutdown_timeout() {
    let mut run = Blocked::start(&["--shutdown-timeout", "1"], 500_000);
    run.wait_fed(512 << 10);
    run.signal(Signal::SIGINT);
    let signalled = Instant::now();
    run.wait_for_stderr("finishing the lines already read");
    let seen = run.wait_for_stderr("the drain did not finish within 1 s");
    let status = run.child.wait().unwrap();
    assert!(
        signalled.elapsed() >= Duration::from_secs(1),
        "gave up after only {:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(74), "stderr: {seen}");
    assert!(
        seen.contains("records written,") && seen.contains("lines still in flight and lost"),
        "{seen}"
    );
    drop(run.feeder.take().unwrap().join());
}
