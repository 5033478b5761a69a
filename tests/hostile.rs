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
    // The first run holds the lock from before it writes its first record.
    let first_line = b"2026-04-15T00:00:01Z INFO first\n";
    let (mut first, stdin) = common::holding(&[out.as_os_str()], first_line, &out);
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

#[test]
fn a_timestamp_at_the_calendars_end_is_rejected_in_every_format_never_a_crash() {
    let input =
        "9999-12-31T23:59:59-01:00 INFO x\n0000-01-01T00:30:00+01:00 INFO x\n2026-04-15T00:00:01Z INFO ok\n";
    for format in ["text", "json"] {
        ingest()
            .args(["-f", format, "-"])
            .write_stdin(input)
            .assert()
            .success()
            .stderr(
                predicate::str::contains("line 1: bad timestamp")
                    .and(predicate::str::contains("line 2: bad timestamp")),
            )
            .stdout(predicate::str::contains("ok").and(predicate::str::contains("x").not()));
    }
}

#[test]
fn a_severity_glued_to_nul_bytes_is_a_bad_severity() {
    let dir = Scratch::new();
    ingest()
        .arg("--rejects")
        .arg(dir.path("bad.tsv"))
        .arg(dir.path("out.log"))
        .write_stdin(&b"2026-04-15T00:00:01Z INFO\0 x\n2026-04-15T00:00:02Z [INFO\0] x\n2026-04-15T00:00:03Z WARN\0\0\0\0 x\n"[..])
        .assert()
        .success()
        .stderr(predicate::str::contains("0 written, 3 rejected"));
    assert_eq!(dir.read("bad.tsv").matches("\tbad severity\t").count(), 3);
}

#[test]
fn max_line_bytes_counts_a_line_without_its_terminator_whether_lf_or_crlf() {
    let line = "2026-04-15T00:00:01Z INFO 0123"; // 30 bytes
    for ending in ["\n", "\r\n", ""] {
        ingest()
            .args(["--max-line-bytes", "30", "-"])
            .write_stdin(format!("{line}{ending}"))
            .assert()
            .success()
            .stdout("     1  INFO 0123\n");
    }
    ingest()
        .args(["--max-line-bytes", "29", "-"])
        .write_stdin(format!("{line}\r\n"))
        .assert()
        .success()
        .stderr(predicate::str::contains("line 1: line too long"));
}

#[test]
fn workers_and_max_line_bytes_out_of_range_are_usage_errors() {
    for args in [
        ["-w", "40000"],
        ["-w", "18446744073709551615"],
        ["--max-line-bytes", "5000000000"],
        ["--max-line-bytes", "0"],
    ] {
        common::assert_usage_error(&args, "error:");
    }
}

#[test]
fn a_long_line_allowed_by_max_line_bytes_is_searched_and_copied_a_bounded_number_of_times() {
    // 48 MiB in one line, arriving in small pieces through a pipe: searching the whole partial
    // line again on every read, or growing its buffer by one read at a time, would cost its
    // length squared. `-v` reports the reader's work.
    let long = 48usize << 20;
    let mut child = Command::new(BIN)
        .env_clear()
        .args(["-v", "--max-line-bytes", "67108864", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        stdin.write_all(b"2026-04-15T00:00:01Z INFO ").unwrap();
        let piece = vec![b'x'; 4096];
        for _ in 0..long / 4096 {
            stdin.write_all(&piece).unwrap();
        }
        stdin.write_all(b"\n").unwrap();
    });
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(output.stdout.len(), 13 + long + 1);
    let report = stderr
        .lines()
        .find(|l| l.contains("reader finished"))
        .expect("-v reports the reader");
    let number = |after: &str| -> u64 {
        let rest = &report[..report.find(after).unwrap_or_else(|| panic!("{report}"))];
        rest.rsplit(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let (searched, carried) = (number(" bytes searched"), number(" carried"));
    assert!(searched <= 2 * long as u64, "{report}");
    assert!(carried <= 3 * long as u64, "{report}");
}

#[test]
fn a_file_size_limit_is_an_io_error_with_the_torn_record_cut_off() {
    use std::os::unix::process::CommandExt;
    let dir = Scratch::new();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args(["-q", "--retry-attempts", "0"])
        .arg(dir.path("out.log"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 10_000,
                rlim_max: 10_000,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(common::valid_lines(5000).as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(74), "{:?}: {stderr}", output.status);
    assert!(stderr.contains("File too large"), "{stderr}");
    let out = dir.read("out.log");
    assert!(
        out.len() <= 10_000 && out.ends_with('\n'),
        "{} bytes, torn tail",
        out.len()
    );
    assert_eq!(out, common::expected_text(out.lines().count()));
}

#[test]
fn a_failing_stderr_does_not_turn_an_error_into_a_crash() {
    // Output and `2>>ingest.err` on the same full disk.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut child = Command::new(BIN)
        .env_clear()
        .args(["--retry-attempts", "0", "/dev/full"])
        .stdin(Stdio::piped())
        .stderr(Stdio::from(full))
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"2026-04-15T00:00:01Z INFO x\n")
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(74), "{status:?}");
}

/// Runs `ingest` with a soft and hard limit on `resource`, fed `input`; bounded in time.
fn with_limit(resource: libc::__rlimit_resource_t, value: u64, dir: &Scratch) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .arg(dir.path("out.log"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(common::valid_lines(1000).as_bytes());
    drop(stdin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ingest hung under the limit");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn too_few_file_descriptors_is_an_os_error_with_a_hint() {
    let dir = Scratch::new();
    let (code, stderr) = with_limit(libc::RLIMIT_NOFILE, 6, &dir);
    assert_eq!(code, Some(71), "{stderr}");
    assert!(
        stderr.contains("too few file descriptors") && stderr.contains("ulimit -n"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn too_little_memory_for_threads_ends_with_an_error_never_a_hang() {
    let dir = Scratch::new();
    // Enough address space to load the binary (with its NATS and TLS code, ~26 MB for the
    // debug build), too little for the runtime's threads and their stacks (~36 MB).
    let (code, stderr) = with_limit(libc::RLIMIT_AS, 30_000 * 1024, &dir);
    assert_eq!(code, Some(71), "{stderr}");
    assert!(
        stderr.contains("ingest: error: out of") && stderr.contains("ulimit -v"),
        "{stderr}"
    );
}

#[test]
fn dev_null_is_nobodys_to_lock() {
    let dir = Scratch::new();
    let first_rejects = dir.path("first.tsv");
    let args = [
        "--rejects".as_ref(),
        first_rejects.as_os_str(),
        "/dev/null".as_ref(),
    ];
    let (mut first, stdin) = common::holding(&args, b"garbage\n", &first_rejects);
    ingest()
        .arg("--rejects")
        .arg(dir.path("second.tsv"))
        .arg("/dev/null")
        .write_stdin("2026-04-15T00:00:01Z INFO x\n")
        .assert()
        .success();
    drop(stdin);
    assert!(first.wait().unwrap().success());
}

#[test]
fn a_fifo_output_works_without_checkpoint_and_is_refused_plainly_with_one() {
    let dir = Scratch::new();
    let fifo = dir.path("out.fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain syscall on a NUL-terminated path that lives until it returns.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    ingest()
        .arg("--checkpoint")
        .arg(dir.path("cp"))
        .arg(&fifo)
        .write_stdin("2026-04-15T00:00:01Z INFO x\n")
        .timeout(std::time::Duration::from_secs(30)) // opening a FIFO nobody reads blocks
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--checkpoint needs OUTPUT to be a regular file",
        ));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    ingest()
        .arg(&fifo)
        .write_stdin("2026-04-15T00:00:01Z INFO x\n")
        .assert()
        .success();
    assert_eq!(reader.join().unwrap(), "     1  INFO x\n");
}

#[test]
fn an_epoch_before_year_0_is_a_bad_timestamp_in_every_layout_and_format_never_a_crash() {
    let lines = [
        ("json", r#"{"time":-62167219201,"level":"info","msg":"x"}"#),
        ("json", r#"{"time":-1e11,"level":"info","msg":"x"}"#),
        ("json", r#"{"time":-62167219201000,"level":"info","msg":"x"}"#),
        ("logfmt", "time=-62167219201 level=info msg=x"),
    ];
    for (layout, line) in lines {
        for format in ["text", "json"] {
            let input = format!("{line}\n{{\"time\":1776211200,\"level\":\"info\",\"msg\":\"after\"}}\n");
            let input = if layout == "logfmt" {
                format!("{line}\ntime=1776211200 level=info msg=after\n")
            } else {
                input
            };
            ingest()
                .args(["--input", layout, "-f", format, "-"])
                .write_stdin(input)
                .assert()
                .success()
                .stdout(predicate::str::contains("after"))
                .stdout(predicate::str::contains("\"x\"").not())
                .stderr(predicate::str::contains("line 1: bad timestamp"))
                .stderr(predicate::str::contains("1 written, 1 rejected"));
        }
    }
}

/// Peak RSS in MiB of `ingest -q ARGS /dev/null < input`, which must end 0.
fn peak_mib(args: &[&str], input: &std::path::Path) -> f64 {
    let mut command = Command::new(BIN);
    command.env_clear().args(["-q"]).args(args).arg("/dev/null");
    let (code, kib) = common::exit_and_peak_rss_kib(command, input);
    assert_eq!(code, Some(0), "{args:?}");
    kib as f64 / 1024.0
}

#[test]
fn rejected_lines_take_no_more_memory_than_written_ones_however_many_there_are() {
    let dir = Scratch::new();
    // 40 MB of lines that are all rejected, far more than the in-flight window.
    let garbage = dir.path("garbage.log");
    let line = format!("garbage {}\n", "x".repeat(190));
    std::fs::write(&garbage, line.repeat(200_000)).unwrap();
    // One record of 400,000 lines: it keeps 1,000, the rest are rejected as `record too long`.
    let record = dir.path("record.log");
    let mut text = String::from("2026-04-15T10:00:00Z ERROR huge\n");
    text.push_str(&format!("    at frame {}\n", "z".repeat(87)).repeat(400_000));
    text.push_str("2026-04-15T10:00:01Z INFO after\n");
    std::fs::write(&record, text).unwrap();
    let rejects = dir.path("rejects.tsv");
    let rejects = rejects.to_str().unwrap();
    for (input, extra) in [(&garbage, &[][..]), (&record, &["--multiline"][..])] {
        for workers in ["1", "4"] {
            let without = peak_mib(&[&["-w", workers], extra].concat(), input);
            let with = peak_mib(&[&["-w", workers, "--rejects", rejects], extra].concat(), input);
            // Rendering rejected lines for the file costs a window of batches, no more.
            assert!(
                with < without + 10.0,
                "{} -w {workers} {extra:?}: {with:.1} MiB with --rejects, {without:.1} MiB without",
                input.display()
            );
        }
    }
}

/// A `/proc/PID/status` or `/proc/PID/io` figure (`VmHWM:`, `rchar:`): its number.
fn proc_figure(pid: u32, file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/{file}"))
}

#[test]
fn an_output_that_takes_nothing_holds_long_lines_in_flight_by_their_bytes_not_their_count() {
    // 24 lines of 4 MB. Counted as batches, a window of one-line batches held 40 MB of them
    // read ahead and 117 MiB resident; by their bytes, a few chunks' worth of slots.
    let dir = Scratch::new();
    let input = dir.path("long.log");
    let body = "y".repeat(4_000_000);
    let text: String = (0..24)
        .map(|i| format!("2026-04-15T10:00:{i:02}Z INFO {body}\n"))
        .collect();
    std::fs::write(&input, &text).unwrap();
    let child = Command::new(BIN)
        .env_clear()
        .args(["-q", "--max-line-bytes", "8388608", "--from"])
        .arg(&input)
        .arg("-")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = common::Running::new(child);
    // Nothing reads its output: the reader stops once the window is full, and reads no more.
    let (mut read, mut still) = (0, 0);
    common::wait_until("the reader stopped reading", || {
        let now = proc_figure(run.id(), "io", "rchar:");
        still = if now == read { still + 1 } else { 0 };
        read = now;
        std::thread::sleep(std::time::Duration::from_millis(50));
        still >= 20
    });
    let peak_mib = proc_figure(run.id(), "status", "VmHWM:") as f64 / 1024.0;
    assert!(
        read < 24_000_000,
        "{read} bytes read ahead of an output that took nothing"
    );
    assert!(peak_mib < 64.0, "{peak_mib:.1} MiB resident");
    // Then it takes them: every line out.
    let mut child = run.take();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(out.lines().count(), 24);
}
