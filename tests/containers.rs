//! Container logs (`--input cri`, `--input docker`): files written the way the runtimes write
//! them, pieces of long lines interleaved between stdout and stderr, read into the lines the
//! programs wrote, whatever the batches and workers; a line past `--max-line-bytes` rejected
//! without being held.

mod common;

use common::containers::{PIECE, Runtime, container_log};
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
    dir.read("out.jsonl")
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

#[test]
fn pieces_written_as_runtimes_do_join_into_the_lines_written_whatever_the_batches_and_workers() {
    let dir = Scratch::new();
    for (runtime, seed) in [(Runtime::Cri, 7), (Runtime::Docker, 11)] {
        let (file, written) = container_log(runtime, 400, seed);
        let name = format!("{}.log", runtime.name());
        std::fs::write(dir.path(&name), &file).unwrap();
        for workers in ["1", "8"] {
            for input in [runtime.name(), "auto"] {
                let got = records(&dir, &["--input", input, "-w", workers], &name);
                let streams = by_stream(&got);
                for s in 0..2 {
                    assert_eq!(
                        streams[s].len(),
                        written[s].len(),
                        "{name}, --input {input}, -w {workers}: stream {s}'s lines"
                    );
                    for (i, (got, want)) in streams[s].iter().zip(&written[s]).enumerate() {
                        assert!(
                            got == want,
                            "{name}, --input {input}, -w {workers}: stream {s}, line {i}: {} bytes \
                             for {} written (starts {:?})",
                            got.len(),
                            want.len(),
                            &got[..got.len().min(40)]
                        );
                    }
                }
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
            let records: Vec<Value> = dir
                .read("out.jsonl")
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
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
