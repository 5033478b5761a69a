//! Container logs (`--input cri`, `--input docker`): files written the way the runtimes write
//! them, pieces of long lines interleaved between stdout and stderr, read into the lines the
//! programs wrote, whatever the batches and workers; a line past `--max-line-bytes` rejected
//! without being held.

mod common;

use common::containers::{PIECE, Rng, Runtime, Writes, container_log, interleave};
use common::{BIN, Scratch, exit_and_peak_rss_kib, ingest};
use serde_json::Value;

/// Runs `ingest -f json ARGS FILE OUTPUT`; its records.
fn records(dir: &Scratch, args: &[&str], input: &str) -> Vec<Value> {
    let output = dir.path("out.jsonl");
    let _ = std::fs::remove_file(&output);
    ingest()
        .args(["-q", "-f", "json"])
        .args(args)
        .arg("--from")
        .arg(dir.path(input))
        .arg(&output)
        .assert()
        .success();
    written(dir)
}

/// The records in `DIR/out.jsonl`.
fn written(dir: &Scratch) -> Vec<Value> {
    written_to(dir, "out.jsonl")
}

/// The records in `DIR/NAME`.
fn written_to(dir: &Scratch, name: &str) -> Vec<Value> {
    dir.read(name)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Each stream's messages, in the order they came out.
fn by_stream(records: &[Value]) -> [Vec<String>; 2] {
    let mut streams: [Vec<String>; 2] = Default::default();
    for record in records {
        let s = match record["fields"]["stream"].as_str() {
            Some("stdout") => 0,
            Some("stderr") => 1,
            other => panic!("a record without its stream: {other:?} in {record}"),
        };
        streams[s].push(record["message"].as_str().expect("a message").to_owned());
    }
    streams
}

/// Writes what `make` makes for each runtime (with its seed) into `dir` as `cri.log` and
/// `docker.log`: each runtime, its file's name, and what each stream wrote.
fn each_runtime(
    dir: &Scratch,
    seeds: [u64; 2],
    make: impl Fn(Runtime, u64) -> (String, [Vec<String>; 2]),
) -> Vec<(Runtime, String, [Vec<String>; 2])> {
    [Runtime::Cri, Runtime::Docker]
        .into_iter()
        .zip(seeds)
        .map(|(runtime, seed)| {
            let (file, written) = make(runtime, seed);
            let name = format!("{}.log", runtime.name());
            std::fs::write(dir.path(&name), &file).unwrap();
            (runtime, name, written)
        })
        .collect()
}

/// Asserts each stream's messages are `want`'s, in order; a difference said briefly (the
/// messages run to megabytes).
fn assert_streams(got: &[Vec<String>; 2], want: &[Vec<String>; 2], run: &str) {
    for s in 0..2 {
        assert_eq!(got[s].len(), want[s].len(), "{run}: stream {s}'s messages");
        for (i, (got, want)) in got[s].iter().zip(&want[s]).enumerate() {
            assert!(
                got == want,
                "{run}: stream {s}, message {i}: {} bytes for {} written (starts {:?})",
                got.len(),
                want.len(),
                &got[..got.len().min(60)]
            );
        }
    }
}

#[test]
fn pieces_written_as_runtimes_do_join_into_the_lines_written_whatever_the_batches_and_workers() {
    let dir = Scratch::new();
    for (runtime, name, written) in each_runtime(&dir, [7, 11], |r, seed| container_log(r, 400, seed)) {
        for workers in ["1", "8"] {
            for input in [runtime.name(), "auto"] {
                let got = records(&dir, &["--input", input, "-w", workers], &name);
                let run = format!("{name}, --input {input}, -w {workers}");
                assert_streams(&by_stream(&got), &written, &run);
                // Numbered by their last piece: in the file's order.
                let numbers: Vec<u64> = got.iter().map(|r| r["line"].as_u64().unwrap()).collect();
                assert!(
                    numbers.windows(2).all(|w| w[0] < w[1]),
                    "{name}: line numbers in order"
                );
            }
        }
    }
}

#[test]
fn a_line_past_max_line_bytes_is_rejected_once_without_being_held_and_the_next_starts_clean() {
    let dir = Scratch::new();
    // 200 MB on stdout in 16 KiB pieces, stderr lines between some of them, then more lines.
    let mut file = String::new();
    let piece = "x".repeat(PIECE);
    let mut n = 0;
    Runtime::Cri.piece(&mut file, n, "stdout", "before", true);
    for k in 0..12_800 {
        n += 1;
        Runtime::Cri.piece(&mut file, n, "stdout", &piece, false);
        if k % 1000 == 0 {
            n += 1;
            Runtime::Cri.piece(&mut file, n, "stderr", &format!("stderr {k}"), true);
        }
    }
    Runtime::Cri.piece(&mut file, n + 1, "stdout", "end of the long one", true);
    Runtime::Cri.piece(&mut file, n + 2, "stdout", "after", true);
    std::fs::write(dir.path("long.log"), &file).unwrap();
    let rejects = dir.path("rejects.tsv");
    let got = records(
        &dir,
        &[
            "--input",
            "cri",
            "--max-line-bytes",
            "1000000",
            "--rejects",
            rejects.to_str().unwrap(),
        ],
        "long.log",
    );
    let [stdout, stderr] = by_stream(&got);
    assert_eq!(
        stdout,
        ["before", "after"],
        "the long line is not written, the next one is"
    );
    assert_eq!(stderr.len(), 13, "every stderr line between its pieces is");
    let rejected = std::fs::read_to_string(&rejects).unwrap();
    let reasons: Vec<&str> = rejected.lines().map(|l| l.split('\t').nth(1).unwrap()).collect();
    assert_eq!(reasons, ["line too long"], "rejected once: {rejected:.200}");

    // Not held: the run's memory stays far below the line's 200 MB.
    let mut command = std::process::Command::new(BIN);
    command.args(["-q", "--input", "cri", "--max-line-bytes", "1000000"]);
    command.arg(dir.path("out.txt"));
    let (code, peak_kib) = exit_and_peak_rss_kib(command, &dir.path("long.log"));
    assert_eq!(code, Some(0));
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB for a 200 MB line");
}

#[test]
fn a_rerun_that_starts_inside_a_line_too_long_skips_the_rest_of_its_pieces() {
    // The runtime is still writing a long line's pieces when a run reads the file: the run
    // rejects the line and ends inside it; the next run goes on skipping its pieces, with the
    // file on stdin, given by --from, or one of many logs alike.
    let piece = "y".repeat(PIECE);
    let pieces = |from: u64, count: u64| {
        let mut out = String::new();
        for n in from..from + count {
            Runtime::Cri.piece(&mut out, n, "stdout", &piece, false);
        }
        out
    };
    for how in ["stdin", "--from PATH", "--from GLOB"] {
        let dir = Scratch::new();
        let log = dir.path("0.log");
        let mut first = String::new();
        Runtime::Cri.piece(&mut first, 0, "stdout", "before", true);
        first.push_str(&pieces(1, 100));
        std::fs::write(&log, &first).unwrap();
        let run = || {
            let mut cmd = ingest();
            cmd.args([
                "-q",
                "-f",
                "json",
                "--input",
                "cri",
                "--max-line-bytes",
                "1000000",
            ])
            .arg("--checkpoint")
            .arg(dir.path("cp"));
            match how {
                "stdin" => cmd.pipe_stdin(&log).unwrap(),
                "--from PATH" => cmd.arg("--from").arg(&log),
                _ => cmd.arg("--from").arg(dir.path("*.log")),
            };
            cmd.arg(dir.path("out.jsonl")).assert().success();
            let records = written(&dir);
            by_stream(&records)[0].clone()
        };
        assert_eq!(run(), ["before"], "{how}");
        let mut rest = pieces(101, 50);
        Runtime::Cri.piece(&mut rest, 151, "stdout", "the long line's last piece", true);
        Runtime::Cri.piece(&mut rest, 152, "stdout", "after", true);
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut file, rest.as_bytes()).unwrap();
        assert_eq!(run(), ["before", "after"], "{how}");
    }
}

#[test]
fn a_line_left_open_while_the_other_stream_writes_on_goes_out_in_parts_in_order() {
    // stdout leaves a line unfinished (a progress bar) while stderr writes 6 MB: past four
    // times --max-line-bytes the reader holds no more, and the open line goes out as it is.
    let dir = Scratch::new();
    let mut file = String::new();
    Runtime::Cri.piece(&mut file, 0, "stdout", "progress: 10%", false);
    let filler = "e".repeat(1000);
    for n in 1..=6000 {
        Runtime::Cri.piece(&mut file, n, "stderr", &format!("{n} {filler}"), true);
    }
    Runtime::Cri.piece(&mut file, 6001, "stdout", " done", true);
    std::fs::write(dir.path("open.log"), &file).unwrap();
    let got = records(
        &dir,
        &["--input", "cri", "--max-line-bytes", "1000000"],
        "open.log",
    );
    let [stdout, stderr] = by_stream(&got);
    // The second part as written, its leading space kept.
    assert_eq!(stdout, ["progress: 10%", " done"]);
    assert_eq!(stderr.len(), 6000);
    let numbers: Vec<u64> = got.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "line numbers in order");
    assert_eq!(
        got.iter()
            .position(|r| r["message"] == "progress: 10%")
            .map(|at| numbers[at]),
        Some(1)
    );
}

#[test]
fn a_quiet_live_pipe_writes_a_line_whose_last_piece_has_not_come_after_the_timeout() {
    use std::io::Write;
    let dir = Scratch::new();
    let mut child = std::process::Command::new(BIN)
        .env_clear()
        .args(["--input", "cri", "--multiline-timeout", "200"])
        .arg(dir.path("out.log"))
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"2026-04-15T00:00:01Z stdout F whole\n2026-04-15T00:00:02Z stdout P half a li\n")
        .unwrap();
    stdin.flush().unwrap();
    // The pipe stays open: only the timeout can write the open line.
    common::wait_until("the open line is written", || {
        std::fs::read_to_string(dir.path("out.log")).is_ok_and(|s| s.contains("half"))
    });
    stdin.write_all(b"2026-04-15T00:00:03Z stdout F ne\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(
        dir.read("out.log"),
        "     1  INFO whole stream=stdout\n     2  INFO half a li stream=stdout\n     3  INFO ne stream=stdout\n"
    );
}

#[test]
fn a_nodes_pod_logs_read_by_a_glob_carry_their_pod_and_container() {
    // kubelet's tree, and its /var/log/containers links named POD_NAMESPACE_CONTAINER-ID.log.
    let dir = Scratch::new();
    let id = "ab12".repeat(16);
    let pods = [
        ("shop_web-5d9f_1a2b3c4d-0000-4000-8000-000000000001", "nginx", "0"),
        (
            "kube-system_coredns-7c6d_1a2b3c4d-0000-4000-8000-000000000002",
            "coredns",
            "2",
        ),
    ];
    for (n, (pod_dir, container, restart)) in pods.iter().enumerate() {
        let at = dir.path(&format!("pods/{pod_dir}/{container}"));
        std::fs::create_dir_all(&at).unwrap();
        let mut log = String::new();
        Runtime::Cri.piece(&mut log, 0, "stdout", &format!("hello from {container}"), true);
        std::fs::write(at.join(format!("{restart}.log")), log).unwrap();
        if n == 0 {
            std::fs::create_dir_all(dir.path("containers")).unwrap();
            std::os::unix::fs::symlink(
                at.join("0.log"),
                dir.path(&format!("containers/web-5d9f_shop_nginx-{id}.log")),
            )
            .unwrap();
        }
    }
    let run = |glob: &str, format: &str| {
        let out = dir.path("out");
        let _ = std::fs::remove_file(&out);
        ingest()
            .args(["-q", "-f", format, "--from"])
            .arg(dir.path(glob))
            .arg(&out)
            .assert()
            .success();
        dir.read("out")
    };
    let json = run("pods/*/*/*.log", "json");
    let records: Vec<Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let fields: Vec<String> = records.iter().map(|r| r["fields"].to_string()).collect();
    assert_eq!(
        fields,
        [
            r#"{"container":"coredns","namespace":"kube-system","pod":"coredns-7c6d","pod_uid":"1a2b3c4d-0000-4000-8000-000000000002","restart":2,"stream":"stdout"}"#,
            r#"{"container":"nginx","namespace":"shop","pod":"web-5d9f","pod_uid":"1a2b3c4d-0000-4000-8000-000000000001","restart":0,"stream":"stdout"}"#,
        ]
    );
    assert!(
        run("pods/*/*/*.log", "text")
            .contains(" INFO hello from nginx stream=stdout namespace=shop pod=web-5d9f")
    );
    let linked: Value = serde_json::from_str(run("containers/*.log", "json").trim()).unwrap();
    assert_eq!(linked["fields"]["pod"], "web-5d9f");
    assert_eq!(linked["fields"]["namespace"], "shop");
    assert_eq!(linked["fields"]["container"], "nginx");
    assert_eq!(linked["fields"]["container_id"], id.as_str());
}

/// A container's runtime: the file it writes its log to, reopened when kubelet asks, and how
/// many times it was (a line written across a reopen is in two files).
struct ContainerRuntime {
    log: std::path::PathBuf,
    file: std::sync::Mutex<std::fs::File>,
    reopened: std::sync::atomic::AtomicU64,
    running: std::sync::atomic::AtomicBool,
}

impl ContainerRuntime {
    fn start(log: std::path::PathBuf) -> std::sync::Arc<ContainerRuntime> {
        std::sync::Arc::new(ContainerRuntime {
            file: std::sync::Mutex::new(append_to(&log)),
            log,
            reopened: std::sync::atomic::AtomicU64::new(0),
            running: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// CRI's ReopenContainerLog: the next pieces go to a new file at the log's path.
    fn reopen(&self) {
        let mut file = self.file.lock().unwrap();
        *file = append_to(&self.log);
        self.reopened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Writes `pieces` as the runtime does, about `rate` bytes a second; a program that `dies`
    /// leaves a last piece with no final one. Returns, per stream, each line written and
    /// whether its pieces went to more than one file.
    fn run(
        &self,
        pieces: &[common::containers::Piece],
        written: &[Vec<String>; 2],
        dies: bool,
        rate: f64,
        quiet: std::time::Duration,
    ) -> [Vec<(String, bool)>; 2] {
        use std::io::Write;
        let started = std::time::Instant::now();
        let (mut bytes, mut last_write) = (0, started);
        // Per stream: the line it has open.
        let mut open: [Option<usize>; 2] = [None, None];
        // Per stream and line: the reopen count at its first piece, and whether it may come out
        // in parts (the count changed, or the log was quiet while it was open).
        let mut files: [Vec<(u64, bool)>; 2] = [
            vec![(0, false); written[0].len()],
            vec![(0, false); written[1].len()],
        ];
        let mut first_piece: [Vec<bool>; 2] = [vec![true; written[0].len()], vec![true; written[1].len()]];
        let write = |stream: usize, text: &str, last: bool, n: u64| {
            let mut line = String::new();
            Runtime::Cri.piece(&mut line, n, ["stdout", "stderr"][stream], text, last);
            let file = self.file.lock().unwrap();
            (&*file).write_all(line.as_bytes()).unwrap();
            (
                self.reopened.load(std::sync::atomic::Ordering::SeqCst),
                line.len(),
            )
        };
        for (n, piece) in pieces.iter().enumerate() {
            let (generation, len) = write(piece.stream, &piece.text, piece.last, n as u64);
            bytes += len;
            // Quiet that long with a line open (a stalled writer): the follower may write it as
            // it is, as it must.
            if last_write.elapsed() >= quiet {
                for (t, line) in open.iter().enumerate() {
                    if let Some(j) = line {
                        files[t][*j].1 = true;
                    }
                }
            }
            last_write = std::time::Instant::now();
            let (s, i) = (piece.stream, piece.line);
            open[s] = (!piece.last).then_some(i);
            if std::mem::take(&mut first_piece[s][i]) {
                files[s][i].0 = generation;
            } else if files[s][i].0 != generation {
                files[s][i].1 = true;
            }
            let due = std::time::Duration::from_secs_f64(bytes as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let mut out: [Vec<(String, bool)>; 2] = Default::default();
        for s in 0..2 {
            out[s] = written[s]
                .iter()
                .cloned()
                .zip(files[s].iter().map(|f| f.1))
                .collect();
        }
        if dies {
            write(0, "died mid-line", false, pieces.len() as u64);
            out[0].push(("died mid-line".to_owned(), false));
        }
        self.running.store(false, std::sync::atomic::Ordering::SeqCst);
        out
    }
}

fn append_to(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// kubelet's rotation of one container's log (`pkg/kubelet/logs/container_log_manager.go`,
/// `rotateLog`): its `.tmp` files and plain files already compressed removed, the oldest
/// removed down to `max_files - 2` rotated ones, the others compressed through `.tmp` into
/// `.gz`, then the log renamed to `LOG.STAMP` and the runtime asked to reopen it.
fn kubelet_rotate(runtime: &ContainerRuntime, max_files: usize, stamp: &str) {
    let log = &runtime.log;
    let dir = log.parent().unwrap();
    let prefix = format!("{}.", log.file_name().unwrap().to_str().unwrap());
    let mut logs: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    let all = logs.clone();
    logs.retain(|l| {
        let in_use = !l.ends_with(".tmp") && (l.ends_with(".gz") || !all.contains(&format!("{l}.gz")));
        if !in_use {
            let _ = std::fs::remove_file(dir.join(l));
        }
        in_use
    });
    logs.sort();
    let excess = logs.len().saturating_sub(max_files - 2);
    for old in logs.drain(..excess) {
        std::fs::remove_file(dir.join(old)).unwrap();
    }
    for plain in logs.iter().filter(|l| !l.ends_with(".gz")) {
        let tmp = dir.join(format!("{plain}.tmp"));
        let mut gz =
            flate2::write::GzEncoder::new(std::fs::File::create(&tmp).unwrap(), flate2::Compression::fast());
        std::io::copy(&mut std::fs::File::open(dir.join(plain)).unwrap(), &mut gz).unwrap();
        gz.finish().unwrap();
        std::fs::rename(&tmp, dir.join(format!("{plain}.gz"))).unwrap();
        std::fs::remove_file(dir.join(plain)).unwrap();
    }
    std::fs::rename(log, dir.join(format!("{prefix}{stamp}"))).unwrap();
    runtime.reopen();
}

#[test]
fn a_follower_killed_again_and_again_reads_a_nodes_containers_rotated_as_kubelet_does_each_line_once() {
    use std::sync::atomic::Ordering;
    let dir = Scratch::new();
    let pods = dir.path("pods");
    // (pod directory, container, restart, dies: leaves a line unfinished, then restarts).
    let logs = [
        (
            "shop_web-5d9f_00000000-0000-4000-8000-000000000001",
            "nginx",
            0,
            false,
        ),
        (
            "shop_web-5d9f_00000000-0000-4000-8000-000000000001",
            "sidecar",
            0,
            false,
        ),
        (
            "jobs_batch-x1_00000000-0000-4000-8000-000000000002",
            "worker",
            0,
            true,
        ),
        (
            "jobs_batch-x1_00000000-0000-4000-8000-000000000002",
            "worker",
            1,
            false,
        ),
        // A pod scheduled while the follower runs: a directory made then.
        (
            "shop_api-77aa_00000000-0000-4000-8000-000000000003",
            "app",
            0,
            false,
        ),
    ];
    const MAX_SIZE: u64 = 1 << 20;
    const MAX_FILES: usize = 5;
    const RATE: f64 = 1e6;
    // The follower's --multiline-timeout: a line open while its log was quiet this long is
    // written as it is.
    const QUIET: std::time::Duration = std::time::Duration::from_secs(2);
    let log_path = |(pod, container, restart, _): &(&str, &str, u32, bool)| {
        pods.join(pod).join(container).join(format!("{restart}.log"))
    };
    for log in &logs[..3] {
        std::fs::create_dir_all(log_path(log).parent().unwrap()).unwrap();
    }
    let runtimes: std::sync::Mutex<Vec<std::sync::Arc<ContainerRuntime>>> = Default::default();
    let done = std::sync::atomic::AtomicBool::new(false);
    let follower_args = |dir: &Scratch| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_clear()
            .args(["-q", "--follow", "-f", "json", "--multiline-timeout"])
            .arg(QUIET.as_millis().to_string())
            // Far above the 1 MB lines: no line here is cut for being held open too long.
            .args(["--max-line-bytes", "4194304", "--from"])
            .arg(dir.path("pods/*/*/*.log"))
            .arg("--checkpoint")
            .arg(dir.path("cp"))
            .arg(dir.path("out.jsonl"))
            .stderr(std::fs::File::create(dir.path("stderr")).unwrap());
        cmd
    };
    let (expected, kills) = std::thread::scope(|scope| {
        // kubelet: rotates a running container's log once it is past its size, on a clock of
        // its own (a second a rotation: names stay apart however fast the test goes).
        let kubelet = scope.spawn(|| {
            let mut rotations = 0u64;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !done.load(Ordering::SeqCst) {
                assert!(std::time::Instant::now() < deadline, "the writers never finished");
                for runtime in runtimes.lock().unwrap().iter() {
                    let size = std::fs::metadata(&runtime.log).map_or(0, |m| m.len());
                    if runtime.running.load(Ordering::SeqCst) && size >= MAX_SIZE {
                        let at = 1_776_247_200 + rotations;
                        let stamp = format!(
                            "20260415-{:02}{:02}{:02}",
                            10 + at / 3600 % 24,
                            at / 60 % 60,
                            at % 60
                        );
                        kubelet_rotate(runtime, MAX_FILES, &stamp);
                        rotations += 1;
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            rotations
        });
        let writers: Vec<_> = logs
            .iter()
            .enumerate()
            .map(|(n, log)| {
                let (runtimes, log_path) = (&runtimes, &log_path);
                scope.spawn(move || {
                    // The restarted container starts once the first one died; the new pod a
                    // moment after the others.
                    if n == 3 {
                        std::thread::sleep(std::time::Duration::from_secs(3));
                    }
                    if n == 4 {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                        std::fs::create_dir_all(log_path(log).parent().unwrap()).unwrap();
                    }
                    let runtime = ContainerRuntime::start(log_path(log));
                    runtimes.lock().unwrap().push(runtime.clone());
                    let (pieces, written) = common::containers::pieces(150, 100 + n as u64, true);
                    let lines = runtime.run(&pieces, &written, log.3, RATE, QUIET / 2);
                    (log_path(log), lines)
                })
            })
            .collect();
        // The follower, SIGKILLed at random moments while the containers write.
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut kills = 0;
        while writers.iter().any(|w| !w.is_finished()) && kills < 10 {
            let run = common::Running::new(follower_args(&dir).spawn().unwrap());
            std::thread::sleep(std::time::Duration::from_millis(200 + rng.below(800)));
            drop(run);
            kills += 1;
        }
        let expected: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        done.store(true, Ordering::SeqCst);
        let rotations = kubelet.join().unwrap();
        assert!(rotations >= 10, "kubelet rotated {rotations} times");
        (expected, kills)
    });
    assert!(kills >= 5, "killed {kills} times while the containers wrote");
    // The last follower reads what is left, then is stopped.
    let run = common::Running::new(follower_args(&dir).spawn().unwrap());
    let read = || -> Vec<Value> {
        std::fs::read_to_string(dir.path("out.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let per_stream = |records: &[Value], log: &std::path::Path, s: usize| -> Vec<String> {
        records
            .iter()
            .filter(|r| {
                r["file"] == log.to_str().unwrap() && r["fields"]["stream"] == ["stdout", "stderr"][s]
            })
            .map(|r| r["message"].as_str().unwrap().to_owned())
            .collect()
    };
    let all_out = |records: &[Value]| {
        expected.iter().all(|(log, lines)| {
            (0..2).all(|s| {
                let want: String = lines[s].iter().map(|(l, _)| l.as_str()).collect();
                per_stream(records, log, s).concat().len() >= want.len()
            })
        })
    };
    // Bounded: past it, the checks below say what is missing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !all_out(&read()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    run.signal("-TERM");
    let (code, stderr) = common::finish(&dir, run.take());
    assert_eq!(code, None, "{stderr}");
    let records = read();
    for (log, lines) in &expected {
        for (s, lines) in lines.iter().enumerate() {
            let got = per_stream(&records, log, s);
            let mut at = 0;
            for (i, (line, in_parts)) in lines.iter().enumerate() {
                // A line is one record; one written across a rotation (or open while its log was
                // quiet), its parts in a row.
                let mut joined = String::new();
                let mut parts = 0;
                while joined.len() < line.len() && at < got.len() {
                    joined.push_str(&got[at]);
                    at += 1;
                    parts += 1;
                }
                assert!(
                    joined == *line && (parts == 1 || *in_parts),
                    "{}, stream {s}, line {i} ({} bytes, may be in parts: {in_parts}): {parts} records of {} bytes; around it: {:?}",
                    log.display(),
                    line.len(),
                    joined.len(),
                    got[at.saturating_sub(parts + 2)..(at + 2).min(got.len())]
                        .iter()
                        .map(|m| format!("{} bytes: {}", m.len(), &m[..m.len().min(12)]))
                        .collect::<Vec<_>>()
                );
            }
            assert_eq!(
                at,
                got.len(),
                "{}, stream {s}: records after the last line",
                log.display()
            );
        }
    }
    // Each record names its pod and container.
    for record in &records {
        let file = record["file"].as_str().unwrap();
        let fields = &record["fields"];
        let want = format!(
            "{}_{}_{}/{}/{}.log",
            fields["namespace"].as_str().unwrap(),
            fields["pod"].as_str().unwrap(),
            fields["pod_uid"].as_str().unwrap(),
            fields["container"].as_str().unwrap(),
            fields["restart"]
        );
        assert!(file.ends_with(&want), "{file} has fields {fields}");
    }
}

#[test]
fn dockers_json_file_rotated_by_number_is_one_set_read_once() {
    // Docker's json-file driver: ID-json.log, then ID-json.log.1, .2 as it rotates (max-file).
    let dir = Scratch::new();
    let id = "cd34".repeat(16);
    let at = dir.path(&format!("containers/{id}"));
    std::fs::create_dir_all(&at).unwrap();
    let log = at.join(format!("{id}-json.log"));
    let lines = |from: u64, to: u64| {
        let mut out = String::new();
        for n in from..to {
            // A line in two pieces now and then.
            if n % 5 == 0 {
                Runtime::Docker.piece(&mut out, n, "stdout", &format!("line {n} "), false);
            }
            Runtime::Docker.piece(&mut out, n, "stdout", &format!("line {n} written"), true);
        }
        out
    };
    let append = |text: String| {
        let mut file = append_to(&log);
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    };
    let rotate = || {
        let numbered = |n: u32| at.join(format!("{id}-json.log.{n}"));
        if numbered(1).exists() {
            std::fs::rename(numbered(1), numbered(2)).unwrap();
        }
        std::fs::rename(&log, numbered(1)).unwrap();
    };
    let run = || {
        ingest()
            .args(["-q", "-f", "json", "--input", "docker", "--from"])
            .arg(&log)
            .arg("--checkpoint")
            .arg(dir.path("cp"))
            .arg(dir.path("out.jsonl"))
            .assert()
            .success();
    };
    append(lines(0, 10));
    run();
    append(lines(10, 20));
    rotate();
    append(lines(20, 30));
    rotate();
    append(lines(30, 40));
    run();
    let records = written(&dir);
    let messages: Vec<String> = records
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (0..40)
        .map(|n| match n % 5 {
            0 => format!("line {n} line {n} written"),
            _ => format!("line {n} written"),
        })
        .collect();
    assert_eq!(messages, want);
    assert!(records.iter().all(|r| r["fields"]["container_id"] == id.as_str()));
}

#[test]
fn a_json_logger_that_writes_no_time_is_read_as_json_with_the_runtimes_time() {
    // Loggers in containers often leave the time to the runtime: auto still reads them as JSON.
    let dir = Scratch::new();
    let mut file = String::new();
    for (n, level) in ["info", "warn", "error"].iter().enumerate() {
        let line = format!(r#"{{"level":"{level}","msg":"event {n}","user":"ana"}}"#);
        Runtime::Cri.piece(&mut file, n as u64, "stdout", &line, true);
    }
    std::fs::write(dir.path("0.log"), &file).unwrap();
    let got = records(&dir, &[], "0.log");
    let read: Vec<(String, String, String)> = got
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("timestamp"), s("severity"), s("message"))
        })
        .collect();
    assert_eq!(
        read,
        [
            (
                "2026-04-15T10:00:00Z".to_owned(),
                "INFO".to_owned(),
                "event 0".to_owned()
            ),
            (
                "2026-04-15T10:00:01.000000001Z".to_owned(),
                "WARN".to_owned(),
                "event 1".to_owned()
            ),
            (
                "2026-04-15T10:00:02.000000002Z".to_owned(),
                "ERROR".to_owned(),
                "event 2".to_owned()
            ),
        ]
    );
    assert!(got.iter().all(|r| r["fields"]["user"] == "ana"));
}

/// A Java service writing records of several lines to both streams (a dated first line, stack
/// frames after it, some frames long enough to be cut in pieces), its runtime interleaving the
/// two streams' pieces: the file, and each stream's records' messages as they must come out.
fn traces(runtime: Runtime, records: usize, seed: u64) -> (String, [Vec<String>; 2]) {
    let mut rng = Rng(seed);
    let mut messages: [Vec<String>; 2] = Default::default();
    let mut queues: [std::collections::VecDeque<(String, bool)>; 2] = Default::default();
    for (s, queue) in queues.iter_mut().enumerate() {
        for i in 0..records {
            let head = format!("s{s}-r{i} failed");
            let mut lines = vec![format!("2026-04-15T10:00:00Z ERROR {head}")];
            let mut message = head;
            for j in 0..rng.below(5) {
                if rng.below(8) == 0 {
                    // A blank line between frames: counted, no part of the record.
                    lines.push("  ".to_owned());
                }
                let mut frame = format!("\tat frame.s{s}.r{i}.f{j}(Shop.java:{j})");
                if rng.below(6) == 0 {
                    // Long enough to come in pieces.
                    frame.extend(
                        (0..PIECE + rng.below(2 * PIECE as u64) as usize)
                            .map(|k| (b'a' + (k % 26) as u8) as char),
                    );
                }
                message.push('\n');
                message.push_str(&frame);
                lines.push(frame);
            }
            messages[s].push(message);
            for line in lines {
                let chars: Vec<char> = line.chars().collect();
                let count = chars.len().div_ceil(PIECE);
                for (k, piece) in chars.chunks(PIECE).enumerate() {
                    queue.push_back((piece.iter().collect(), k + 1 == count));
                }
            }
        }
    }
    let mut out = String::new();
    for (n, (s, (text, last))) in interleave(queues, &mut rng).into_iter().enumerate() {
        runtime.piece(&mut out, n as u64, ["stdout", "stderr"][s], &text, last);
    }
    (out, messages)
}

#[test]
fn multiline_joins_each_streams_records_from_their_pieces_whatever_the_batches_and_workers() {
    // A batch may end only where each stream's next line starts a record: however small the
    // batches, a record's frames stay with it, the other stream's records between them.
    let dir = Scratch::new();
    for (runtime, name, messages) in each_runtime(&dir, [3, 5], |r, seed| traces(r, 150, seed)) {
        // `--multiline` with `workers` parsers, batches of `capacity` lines over the window.
        let multiline = |workers: &str, capacity: &str, more: &[&str]| {
            let mut args = vec![
                "--input",
                runtime.name(),
                "--multiline",
                "-w",
                workers,
                "--capacity",
                capacity,
            ];
            args.extend_from_slice(more);
            records(&dir, &args, &name)
        };
        for (workers, capacity) in [("1", "8"), ("4", "64"), ("8", "100000")] {
            // The test's runtime times are a second apart per piece: the gap is set past them.
            let got = multiline(workers, capacity, &["--multiline-timeout", "3600000"]);
            assert_streams(
                &by_stream(&got),
                &messages,
                &format!("{name}, capacity {capacity}"),
            );
            // In the order they start, the two streams' records between each other.
            let numbers: Vec<u64> = got.iter().map(|r| r["line"].as_u64().unwrap()).collect();
            assert!(
                numbers.is_sorted(),
                "{name}, capacity {capacity}: records in line order"
            );
            assert!(
                got.iter().all(|r| r["severity"] == "ERROR"),
                "{name}: every record read by its first line"
            );
        }
        // With the default timeout, the test's times (a second a piece) end many records early,
        // the other stream's pieces between their lines: where, the batches do not change.
        let mut seen: Option<[Vec<String>; 2]> = None;
        for (workers, capacity) in [("1", "8"), ("2", "24"), ("8", "100000")] {
            let streams = by_stream(&multiline(workers, capacity, &[]));
            match &seen {
                None => {
                    assert!(
                        streams[0].len() > messages[0].len(),
                        "{name}: some records end by the time"
                    );
                    seen = Some(streams);
                }
                Some(before) => assert!(
                    &streams == before,
                    "{name}, capacity {capacity}: the same records"
                ),
            }
        }
    }
}

#[test]
fn multiline_a_frame_written_after_the_timeout_starts_no_part_of_the_record_before_it() {
    // By the runtime's times, so that a rerun decides alike: a frame written 5 s after its
    // record's last line (default --multiline-timeout: 1 s) comes out alone; one within it joins.
    // --max-record-lines holds per stream: the rest of a record past it is rejected.
    let dir = Scratch::new();
    let lines = [
        ("00.000", "stdout", "2026-04-15T10:00:00Z ERROR checkout failed"),
        ("00.001", "stderr", "2026-04-15T10:00:00Z WARN disk slow"),
        ("00.500", "stdout", "\tat Cart.add(Cart.java:42)"),
        ("00.600", "stderr", "\tat Disk.write(Disk.java:7)"),
        ("05.600", "stdout", "\tat Late.frame(Late.java:1)"),
        ("05.700", "stderr", "2026-04-15T10:00:05Z INFO disk fine"),
        ("05.800", "stderr", "\tat one"),
        ("05.900", "stderr", "\tat two"),
        ("06.000", "stderr", "\tat three"),
    ];
    let file: String = lines
        .iter()
        .map(|(at, stream, text)| format!("2026-04-15T10:00:{at}000000Z {stream} F {text}\n"))
        .collect();
    std::fs::write(dir.path("0.log"), file).unwrap();
    let rejects = dir.path("rejects.tsv");
    let args = [
        "--input",
        "cri",
        "--multiline",
        "--max-record-lines",
        "3",
        "--rejects",
        rejects.to_str().unwrap(),
    ];
    let got = records(&dir, &args, "0.log");
    let [stdout, stderr] = by_stream(&got);
    assert_eq!(
        stdout,
        [
            "checkout failed\n\tat Cart.add(Cart.java:42)",
            "\tat Late.frame(Late.java:1)"
        ]
    );
    assert_eq!(
        stderr,
        [
            "disk slow\n\tat Disk.write(Disk.java:7)",
            "disk fine\n\tat one\n\tat two"
        ]
    );
    let numbers: Vec<u64> = got.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert!(
        numbers.contains(&1) && numbers.contains(&2) && numbers.contains(&5) && numbers.contains(&6),
        "{numbers:?}"
    );
    let rejected = dir.read("rejects.tsv");
    assert!(rejected.starts_with("9\trecord too long\t"), "{rejected}");
    assert_eq!(rejected.lines().count(), 1, "{rejected}");
}

#[test]
fn multiline_a_stream_quiet_since_one_record_does_not_hold_the_others_records_open() {
    // stderr writes one line, then only stdout writes, for far more than the reader may hold
    // (four times --max-line-bytes): each stdout record still comes out whole, as the runtime's
    // times show stderr's record ended once a timeout went by.
    let dir = Scratch::new();
    let mut file =
        String::from("2026-04-15T10:00:00.000000000Z stderr F 2026-04-15T10:00:00Z WARN started slow\n");
    let mut want = Vec::new();
    for i in 0..300 {
        let at = |k: u64| {
            format!(
                "2026-04-15T10:00:{:02}.{:03}000000Z",
                2 + (i * 4 + k) / 1000,
                (i * 4 + k) % 1000
            )
        };
        file.push_str(&format!(
            "{} stdout F 2026-04-15T10:00:02Z ERROR r{i} failed\n",
            at(0)
        ));
        let mut message = format!("r{i} failed");
        for k in 1..4 {
            file.push_str(&format!("{} stdout F \tat frame{k}(Shop.java:{i})\n", at(k)));
            message.push_str(&format!("\n\tat frame{k}(Shop.java:{i})"));
        }
        want.push(message);
    }
    std::fs::write(dir.path("0.log"), &file).unwrap();
    assert!(file.len() > 8 * 2000, "more than the reader may hold");
    let args = [
        "--input",
        "cri",
        "--multiline",
        "--max-line-bytes",
        "2000",
        "--capacity",
        "8",
        "-w",
        "2",
    ];
    let [stdout, stderr] = by_stream(&records(&dir, &args, "0.log"));
    assert_eq!(stderr, ["started slow"]);
    assert!(
        stdout == want,
        "stdout's records whole: {:?}",
        &stdout[..stdout.len().min(4)]
    );
}

#[test]
fn multiline_a_cron_run_leaves_a_record_its_next_line_may_continue_to_the_next_run() {
    // A checkpointed run that ends while the log was just written: the last record of each
    // stream may go on (more frames); it waits with the lines after it for the next run, which
    // finds it whole: the two runs write what one run over the whole file writes.
    let dir = Scratch::new();
    let (file, messages) = traces(Runtime::Cri, 40, 9);
    let lines: Vec<&str> = file.split_inclusive('\n').collect();
    let log = dir.path("0.log");
    let run = || {
        ingest()
            .args([
                "-q",
                "-f",
                "json",
                "--input",
                "cri",
                "--multiline",
                "--multiline-timeout",
                "3600000",
                "--capacity",
                "16",
                "-w",
                "2",
            ])
            .arg("--checkpoint")
            .arg(dir.path("cp"))
            .arg("--from")
            .arg(&log)
            .arg(dir.path("out.jsonl"))
            .assert()
            .success();
    };
    // Cut in a few places, each a rerun.
    let cuts = [lines.len() / 5, lines.len() / 2, lines.len() * 4 / 5, lines.len()];
    let mut from = 0;
    for cut in cuts {
        let mut f = append_to(&log);
        std::io::Write::write_all(&mut f, lines[from..cut].concat().as_bytes()).unwrap();
        drop(f);
        from = cut;
        run();
    }
    // Then the log is quiet (not written to for two hours, past the timeout): what was held
    // goes out.
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    append_to(&log).set_modified(two_hours_ago).unwrap();
    run();
    assert_streams(&by_stream(&written(&dir)), &messages, "five runs");
}

#[test]
fn what_cannot_work_with_container_logs_is_a_usage_error_that_says_why() {
    for (args, says) in [
        (
            &["--input", "docker", "--inner", "cri"][..],
            "--inner cri: a container's programs write lines",
        ),
        (&["--inner", "nope"][..], "--inner nope: unknown layout"),
    ] {
        common::assert_usage_error(args, says);
    }
}

/// A follower of `DIR/*.log` (a `--multiline-timeout` of 300 ms, no rescan, `-f json` into
/// `DIR/out.json`), with `more` arguments.
fn follow_logs(dir: &Scratch, more: &[&str]) -> common::Running {
    common::Running::new(
        std::process::Command::new(BIN)
            .env_clear()
            .current_dir(dir.path(""))
            .args(["-q", "--from", "*.log", "--follow", "--rescan", "3600"])
            .args(["--multiline-timeout", "300"])
            .args(more)
            .args(["--checkpoint", "cp", "--format", "json", "out.json"])
            .stderr(std::fs::File::create(dir.path("stderr")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Stops `run` with SIGTERM; asserts it drained and ended as a signal's.
fn stop(dir: &Scratch, run: common::Running) {
    run.signal("-TERM");
    let (code, stderr) = common::finish(dir, run.take());
    assert_eq!(code, None, "{stderr}");
}

#[test]
fn following_container_logs_a_line_whose_last_piece_has_not_come_goes_out_once_the_log_is_quiet() {
    // Two logs followed by a glob; one ends with a piece of a line. Nothing more is written to
    // it: only the follower coming back once the log was quiet for the timeout writes it.
    let dir = Scratch::new();
    let mut a = String::new();
    Runtime::Cri.piece(&mut a, 0, "stdout", "whole", true);
    Runtime::Cri.piece(&mut a, 1, "stdout", "half a li", false);
    std::fs::write(dir.path("a.log"), &a).unwrap();
    let mut b = String::new();
    Runtime::Cri.piece(&mut b, 0, "stderr", "marker", true);
    std::fs::write(dir.path("b.log"), &b).unwrap();
    let run = follow_logs(&dir, &[]);
    common::wait_until("the open line is out", || {
        std::fs::read_to_string(dir.path("out.json")).is_ok_and(|o| o.contains("half a li"))
    });
    stop(&dir, run);
    let mut messages: Vec<String> = dir
        .read("out.json")
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    messages.sort();
    assert_eq!(messages, ["half a li", "marker", "whole"]);
}

#[test]
fn following_a_container_log_with_multiline_writes_each_record_whole_once_the_log_is_quiet() {
    // A trace's frames after its first line, one of them in pieces, stderr between: the record
    // waits for its stream's next line, and goes out whole once the log is quiet.
    let dir = Scratch::new();
    std::fs::write(dir.path("0.log"), "").unwrap();
    let run = follow_logs(&dir, &["--input", "cri", "--multiline"]);
    let lines = [
        ("stdout F", "2026-04-15T10:00:00Z ERROR checkout failed"),
        ("stderr F", "2026-04-15T10:00:00Z WARN disk slow"),
        ("stdout P", "\tat Cart.add(Car"),
        ("stdout F", "t.java:42)"),
        ("stdout F", "\tat Shop.main(Shop.java:7)"),
    ];
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, (stream_tag, content))| {
            format!("2026-04-15T10:00:00.00000000{i}Z {stream_tag} {content}\n")
        })
        .collect();
    std::io::Write::write_all(&mut append_to(&dir.path("0.log")), text.as_bytes()).unwrap();
    common::wait_until("the trace is out", || {
        std::fs::read_to_string(dir.path("out.json")).is_ok_and(|o| o.contains("Shop.main"))
    });
    stop(&dir, run);
    let [stdout, stderr] = by_stream(&written_to(&dir, "out.json"));
    assert_eq!(
        stdout,
        ["checkout failed\n\tat Cart.add(Cart.java:42)\n\tat Shop.main(Shop.java:7)"]
    );
    assert_eq!(stderr, ["disk slow"]);
}

#[test]
fn a_cron_run_leaves_a_line_whose_last_piece_is_not_written_yet_to_the_next_run() {
    // A checkpointed run that ends while the runtime is between a line's pieces: the line is
    // left for the next run, which finds it whole; unless the log was quiet for
    // --multiline-timeout, when it goes out as it is.
    for how in ["--from PATH", "--from GLOB", "quiet"] {
        let dir = Scratch::new();
        let log = dir.path("0.log");
        let mut first = String::new();
        Runtime::Cri.piece(&mut first, 0, "stdout", "before", true);
        Runtime::Cri.piece(&mut first, 1, "stdout", "a line in ", false);
        Runtime::Cri.piece(&mut first, 2, "stderr", "between", true);
        std::fs::write(&log, &first).unwrap();
        let run = || {
            let mut cmd = ingest();
            cmd.args(["-q", "-f", "json", "--input", "cri", "--checkpoint"])
                .arg(dir.path("cp"));
            match how {
                "--from GLOB" => cmd.arg("--from").arg(dir.path("*.log")),
                "quiet" => cmd.args(["--multiline-timeout", "0", "--from"]).arg(&log),
                _ => cmd.arg("--from").arg(&log),
            };
            cmd.arg(dir.path("out.jsonl")).assert().success();
            let records = written(&dir);
            by_stream(&records)
        };
        let [stdout, stderr] = run();
        let left = ["before"].map(str::to_owned).to_vec();
        let cut = ["before", "a line in"].map(str::to_owned).to_vec();
        assert_eq!(stdout, if how == "quiet" { cut.clone() } else { left }, "{how}");
        // The other stream's line after the open one waits with it (a batch cannot end inside).
        let between = if how == "quiet" { vec!["between"] } else { vec![] };
        assert_eq!(stderr, between, "{how}");
        let mut rest = String::new();
        Runtime::Cri.piece(&mut rest, 3, "stdout", "two pieces", true);
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut file, rest.as_bytes()).unwrap();
        let [stdout, stderr] = run();
        let whole = ["before", "a line in two pieces"].map(str::to_owned).to_vec();
        let parts = ["before", "a line in", "two pieces"].map(str::to_owned).to_vec();
        assert_eq!(stdout, if how == "quiet" { parts } else { whole }, "{how}");
        assert_eq!(stderr, ["between"], "{how}");
    }
}
