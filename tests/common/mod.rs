//! Shared helpers for the end-to-end tests: run the real binary hermetically, in a temp dir.

#![allow(dead_code)] // each test file uses its own subset

pub mod containers;
pub mod nats;
pub mod power;
pub mod strace;

use std::path::{Path, PathBuf};

/// Path of the built `ingest` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_ingest");

/// `ingest` with a clean environment (no `RUST_LOG` from the developer's shell).
pub fn ingest() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(BIN);
    cmd.env_clear();
    cmd
}

/// `ingest ARGS -` on no input is a usage error (exit 2) whose message says `says`.
pub fn assert_usage_error(args: &[&str], says: &str) {
    ingest()
        .args(args)
        .arg("-")
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(says));
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

/// Polls until `ready` holds; panics after a generous deadline (a slow machine only waits longer).
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// True once `path` holds at least one byte.
pub fn has_bytes(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// `ingest ARGS` running with a stdin pipe the test holds open, after writing `first` to it and
/// waiting until `written` has bytes: a run that holds its locks for as long as the test likes.
pub fn holding(
    args: &[&std::ffi::OsStr],
    first: &[u8],
    written: &Path,
) -> (std::process::Child, std::process::ChildStdin) {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .env_clear()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ingest");
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(first).unwrap();
    stdin.flush().unwrap();
    wait_until(&format!("the first run wrote {}", written.display()), || {
        has_bytes(written)
    });
    (child, stdin)
}

/// Runs `ingest ARGS` with stdout a pipe, fed `chunk` repeatedly; reads `keep` bytes of stdout,
/// then closes it like `| head`. Returns the bytes read, the exit code and stderr.
pub fn closed_after(args: &[&std::ffi::OsStr], chunk: String, keep: usize) -> (Vec<u8>, Option<i32>, String) {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(BIN)
        .env_clear()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ingest");
    let mut stdout = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        // Keeps writing until ingest stops reading; the error then is expected.
        for _ in 0..100 {
            if stdin.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
    });
    // Closed only once the pipe is full: ingest is then blocked inside a large write, which the
    // close cuts short in the middle of a record, as `| head` does to a busy producer.
    wait_until("the output pipe is full", || unread_in(&stdout) >= 60 << 10);
    let mut first = vec![0u8; keep];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (first, output.status.code(), stderr)
}

/// Bytes waiting in a pipe that its reader has not taken yet (`FIONREAD`).
pub fn unread_in(pipe: &impl std::os::fd::AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int, into `n`, for a descriptor the caller holds open.
    let rc = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// `ingest ARGS` with `input` on stdin; returns the exit code and stderr. A run that has not
/// ended after two minutes is killed and fails the test.
pub fn run(args: &[&str], input: &str) -> (Option<i32>, String) {
    run_in(&Scratch::new(), args, input, &[])
}

/// [`run`] with `env` set (and nothing else from the test's environment).
pub fn run_with_env(args: &[&str], input: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    run_in(&Scratch::new(), args, input, env)
}

/// [`run`] in `dir`, with `env`.
pub fn run_in(dir: &Scratch, args: &[&str], input: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    std::fs::write(dir.path("in.log"), input).unwrap();
    finish(dir, spawn_in(dir, args, env))
}

/// Starts `ingest ARGS` in `dir` with `dir/in.log` (a file) on stdin, stderr into `dir/stderr`,
/// and nothing from the test's environment but `env`.
pub fn spawn_in(dir: &Scratch, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    std::process::Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path(""))
        .args(args)
        .stdin(std::fs::File::open(dir.path("in.log")).unwrap())
        .stderr(std::fs::File::create(dir.path("stderr")).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for a run started by [`spawn_in`]; returns its exit code and stderr. After two minutes
/// it is killed and the test fails.
pub fn finish(dir: &Scratch, mut child: std::process::Child) -> (Option<i32>, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ingest still running after 120 s: {}", dir.read("stderr"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status.code(), dir.read("stderr"))
}

/// Runs `command` on `input` (streamed through a pipe, output discarded) to its end: its exit
/// code and its peak resident memory in KiB. The peak is read (VmHWM, which only grows) once
/// the process has taken every byte, before its input closes: the steady state of the run.
/// (A child's rusage would count the test process's own memory, shared until exec.)
pub fn exit_and_peak_rss_kib(mut command: std::process::Command, input: &Path) -> (Option<i32>, u64) {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // As large as a file's reads: the run reads full chunks, as from a file.
    // SAFETY: F_SETPIPE_SZ takes an int, on a pipe this process holds open.
    unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&stdin),
            libc::F_SETPIPE_SZ,
            1 << 20,
        )
    };
    let mut file = std::fs::File::open(input).unwrap();
    let mut chunk = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        stdin.write_all(&chunk[..n]).unwrap();
    }
    wait_until("the run has read all its input", || unread_in(&stdin) == 0);
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.split_whitespace().next()?.parse().ok())
        .expect("VmHWM in /proc/PID/status");
    drop(stdin);
    (child.wait().unwrap().code(), peak)
}

/// A run the test started, SIGKILLed when dropped: a test that fails midway leaves no run behind.
pub struct Running(Option<std::process::Child>);

impl Running {
    /// Takes charge of `child`.
    pub fn new(child: std::process::Child) -> Running {
        Running(Some(child))
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// Sends it `signal` (`-TERM`, `-9`, ...).
    pub fn signal(&self, signal: &str) {
        let _ = std::process::Command::new("kill")
            .args([signal, &self.id().to_string()])
            .status();
    }

    /// The child, no longer killed when dropped (to wait for it).
    pub fn take(mut self) -> std::process::Child {
        self.0.take().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
