//! Collecting from NATS JetStream into files (`--from`), against real `nats-server` processes
//! (see `common::nats`): publishers are ingest runs, as in production.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::nats::{Cluster, Server, StalePull, consumer_pending, create_stream, publish_raw, waiting_pulls};
use common::{Scratch, finish, run_in, spawn_in, valid_lines_range, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::Child;

/// Publishes `input` (a log) to `url/SUBJECT` with ingest and `extra` flags; panics unless it
/// ends 0.
fn publish(url: &str, subject: &str, input: &str, extra: &[&str]) {
    let target = format!("{url}/{subject}");
    let mut args = vec![target.as_str()];
    args.extend_from_slice(extra);
    let (code, stderr) = run_in(&Scratch::new(), &args, input, &[]);
    assert_eq!(code, Some(0), "publishing: {stderr}");
}

/// Starts a collector `ingest ARGS` in `dir` (standard input empty: it reads the stream).
fn start(dir: &Scratch, args: &[&str]) -> Child {
    if !dir.path("in.log").exists() {
        std::fs::write(dir.path("in.log"), "").unwrap();
    }
    spawn_in(dir, args, &[])
}

/// Runs a collector in `dir` to its end (see [`collector_args`]); its exit code and stderr.
fn collect(dir: &Scratch, from: &str, consumer: &str, output: &str, extra: &[&str]) -> (Option<i32>, String) {
    finish(dir, start(dir, &collector_args(from, consumer, output, extra)))
}

/// A server with stream LOGS taking `logs.>`, and the `--from` address of that stream.
fn server_with_logs() -> (Server, String) {
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let from = format!("{}/LOGS", server.url());
    (server, from)
}

/// The collector's arguments: `--from URL/LOGS --consumer NAME --checkpoint cp OUTPUT`, then
/// `extra`.
fn collector_args<'a>(from: &'a str, consumer: &'a str, output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--from",
        from,
        "--consumer",
        consumer,
        "--checkpoint",
        "cp",
        output,
    ];
    args.extend_from_slice(extra);
    args
}

/// `input` with a bad line after every 1000th record.
fn with_bad_lines(range: std::ops::Range<usize>) -> String {
    let mut input = String::new();
    for i in range {
        input.push_str(&valid_lines_range(i..i + 1));
        if i % 1000 == 999 {
            input.push_str(&format!("bad line {i}\n"));
        }
    }
    input
}

/// The collected JSON lines' `(subject, message number)`, in file order.
fn collected(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let message = value["message"].as_str().unwrap();
            (
                value["subject"].as_str().unwrap().to_owned(),
                message.strip_prefix("Message ").unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Asserts that `lines` holds records `range` of `subject`, each once, in input order.
fn assert_once_in_order(lines: &[(String, u64)], subject: &str, range: std::ops::Range<u64>) {
    let got: Vec<u64> = lines
        .iter()
        .filter(|(s, _)| s == subject)
        .map(|(_, n)| *n)
        .collect();
    let expected: Vec<u64> = range.collect();
    if got != expected {
        let first = got.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "{subject}: {} records for {}; first difference at {first:?}",
            got.len(),
            expected.len()
        );
    }
}

#[test]
fn two_publishers_and_one_collector_give_every_record_once_in_each_inputs_order() {
    let (server, from) = server_with_logs();
    let n = 30_000;
    // Published at the same time: their messages interleave in the stream.
    let url = server.url();
    std::thread::scope(|s| {
        s.spawn(|| publish(&url, "logs.web", &with_bad_lines(0..n), &[]));
        s.spawn(|| publish(&url, "logs.db", &with_bad_lines(0..n), &["--batch-bytes", "4096"]));
    });
    let dir = Scratch::new();
    let args = collector_args(
        &from,
        "central",
        "all.log",
        &[
            "-f",
            "json",
            "--filter",
            "logs.>",
            "--until-idle",
            "1",
            "--stats-json",
            "stats.json",
        ],
    );
    let (code, stderr) = finish(&dir, start(&dir, &args));
    assert_eq!(code, Some(0), "{stderr}");
    let lines = collected(&dir.read("all.log"));
    assert_eq!(lines.len(), 2 * n);
    assert_once_in_order(&lines, "logs.web", 0..n as u64);
    assert_once_in_order(&lines, "logs.db", 0..n as u64);
    // Each line names its publisher: two of them.
    let sources: std::collections::BTreeSet<String> = dir
        .read("all.log")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["source"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(sources.len(), 2, "{sources:?}");
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    assert_eq!(stats["written"], 2 * n);
    assert_eq!(stats["source"]["pending"], 0, "{stats}");
    assert_eq!(stats["source"]["acked"], stats["source"]["fetched"], "{stats}");
    assert_eq!(consumer_pending(&url, "LOGS", "central"), (0, 0));
    // A rerun finds nothing new and writes nothing.
    let before = dir.read("all.log");
    let (code, stderr) = finish(&dir, start(&dir, &args));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dir.read("all.log"), before);
}

#[test]
fn the_text_layout_adds_the_source_column() {
    let (server, from) = server_with_logs();
    publish(&server.url(), "logs.app", &valid_lines_range(0..3), &[]);
    let dir = Scratch::new();
    let (code, stderr) = collect(&dir, &from, "c", "out.log", &["--until-idle", "0.5"]);
    assert_eq!(code, Some(0), "{stderr}");
    let out = dir.read("out.log");
    let first = out.lines().next().unwrap();
    // `{line:>6} {severity:>5} {source:<24} {message}`
    assert_eq!(&first[..13], "     1  INFO ");
    let source = first[13..].split(' ').next().unwrap();
    assert!(source.contains('/'), "{first}");
    assert_eq!(&first[13 + source.len().max(24)..], " Message 0", "{first}");
}

#[test]
fn a_collector_killed_again_and_again_leaves_the_same_file_as_one_run() {
    let (server, from) = server_with_logs();
    let n = 60_000;
    publish(&server.url(), "logs.app", &with_bad_lines(0..n), &[]);
    publish_raw(&server.url(), "logs.app", &[b"not a record"]);
    publish(
        &server.url(),
        "logs.app",
        &with_bad_lines(n..n + 20_000),
        &["--batch-bytes", "2048"],
    );

    let reference = Scratch::new();
    let args = collector_args(
        &from,
        "reference",
        "out.log",
        &["--rejects", "bad.tsv", "--until-idle", "1"],
    );
    let (code, stderr) = finish(&reference, start(&reference, &args));
    assert_eq!(code, Some(0), "{stderr}");

    let dir = Scratch::new();
    let args = collector_args(
        &from,
        "killed",
        "out.log",
        &[
            "--rejects",
            "bad.tsv",
            "--until-idle",
            "1",
            "--checkpoint-bytes",
            "50000",
        ],
    );
    let full = std::fs::metadata(reference.path("out.log")).unwrap().len();
    let mut kills = 0;
    for round in 0..30u64 {
        let size = || std::fs::metadata(dir.path("out.log")).map_or(0, |m| m.len());
        let before = size();
        let mut child = start(&dir, &args);
        let target = before + 20_000 + (round % 5) * 70_000;
        wait_until("the collector to make progress or end", || {
            size() >= target.min(full) || child.try_wait().unwrap().is_some()
        });
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    assert!(
        kills >= 5,
        "only {kills} kills: the runs were too quick to interrupt"
    );
    let started = Instant::now();
    let (code, stderr) = finish(&dir, start(&dir, &args));
    assert_eq!(code, Some(0), "{stderr}");
    // A killed collector's lease is taken over at once on its own host.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the last run waited {:?}",
        started.elapsed()
    );
    assert!(
        dir.read("out.log") == reference.read("out.log"),
        "after {kills} kills the output differs from one run's ({} vs {} bytes)",
        dir.read("out.log").len(),
        reference.read("out.log").len()
    );
    assert_eq!(dir.read("bad.tsv"), reference.read("bad.tsv"));
    assert_eq!(consumer_pending(&server.url(), "LOGS", "killed"), (0, 0));
}

#[test]
fn messages_that_are_not_records_are_rejected_acked_and_the_run_goes_on() {
    let (server, from) = server_with_logs();
    publish(&server.url(), "logs.app", &valid_lines_range(0..2), &[]);
    publish_raw(
        &server.url(),
        "logs.other",
        &[
            b"plain text from another producer",
            br#"{"level":"info","msg":"someone else's JSON"}"#,
            br#"{"line":9,"timestamp":"yesterday","severity":"INFO","message":"x"}"#,
            br#"{"line":9,"timestamp":"2026-04-15T00:00:00Z","severity":"LOUD","message":"x"}"#,
            b"\xff\xfe binary",
            b"",
        ],
    );
    publish(&server.url(), "logs.app", &valid_lines_range(2..4), &[]);
    let dir = Scratch::new();
    let args = collector_args(
        &from,
        "c",
        "out.log",
        &["--rejects", "bad.tsv", "--until-idle", "1"],
    );
    let (code, stderr) = finish(&dir, start(&dir, &args));
    assert_eq!(code, Some(0), "{stderr}");
    // Every message is counted: 4 records and 6 others, the empty one too.
    assert!(stderr.contains("10 lines in"), "{stderr}");
    assert!(stderr.contains("4 written, 6 rejected"), "{stderr}");
    assert_eq!(dir.read("out.log").lines().count(), 4);
    let rejects = String::from_utf8_lossy(&std::fs::read(dir.path("bad.tsv")).unwrap()).into_owned();
    let rejects: Vec<&str> = rejects.lines().collect();
    assert_eq!(rejects[0], "3\tnot a record\tplain text from another producer");
    assert_eq!(
        rejects[1],
        "4\tnot a record\t{\"level\":\"info\",\"msg\":\"someone else's JSON\"}"
    );
    assert!(rejects[2].starts_with("5\tbad timestamp\t"), "{rejects:?}");
    assert!(rejects[3].starts_with("6\tbad severity\t"), "{rejects:?}");
    assert!(rejects[4].starts_with("7\tnot a record\t"), "{rejects:?}");
    assert_eq!(rejects[5], "8\tnot a record\t", "an empty message");
    // Acked: nothing comes again.
    assert_eq!(consumer_pending(&server.url(), "LOGS", "c"), (0, 0));
}

#[test]
fn until_idle_on_an_empty_stream_exits_0() {
    let (_server, from) = server_with_logs();
    let dir = Scratch::new();
    let started = Instant::now();
    let (code, stderr) = collect(&dir, &from, "c", "out.log", &["--until-idle", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(dir.read("out.log"), "");
}

#[test]
fn sigterm_drains_what_was_fetched_and_ends_by_sigterm() {
    let (server, from) = server_with_logs();
    let n = 200_000;
    publish(
        &server.url(),
        "logs.app",
        &valid_lines_range(0..n),
        &["--batch-bytes", "65536"],
    );
    let dir = Scratch::new();
    // A service: no --until-idle.
    let args = collector_args(&from, "c", "out.log", &["-f", "json"]);
    let mut child = start(&dir, &args);
    wait_until("the collector to write", || {
        std::fs::metadata(dir.path("out.log")).is_ok_and(|m| m.len() > 0)
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 60 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.signal(),
        Some(Signal::SIGTERM as i32),
        "{status:?}: {}",
        dir.read("stderr")
    );
    // Whatever it wrote is whole and committed; a rerun collects the rest, once.
    let (code, stderr) = collect(&dir, &from, "c", "out.log", &["-f", "json", "--until-idle", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_once_in_order(&collected(&dir.read("out.log")), "logs.app", 0..n as u64);
}

#[test]
fn a_second_collector_on_the_same_consumer_is_refused_with_75() {
    let (_server, from) = server_with_logs();
    let first = Scratch::new();
    let mut running = start(&first, &collector_args(&from, "shared", "out.log", &["-v"]));
    wait_until("the first collector to start", || {
        first.read("stderr").contains("collecting from")
    });
    let second = Scratch::new();
    let (code, stderr) = collect(&second, &from, "shared", "out.log", &[]);
    assert_eq!(code, Some(75), "{stderr}");
    assert!(
        stderr.contains("consumer 'shared' is being read by another collector"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {}", running.id())), "{stderr}");
    kill(Pid::from_raw(running.id() as i32), Signal::SIGTERM).unwrap();
    running.wait().unwrap();
    // Once the first has stopped, the consumer is free at once.
    let (code, stderr) = collect(&second, &from, "shared", "out.log", &["--until-idle", "0.5"]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn the_server_killed_and_restarted_while_collecting_loses_and_repeats_nothing() {
    let (mut server, from) = server_with_logs();
    let n = 300_000;
    publish(&server.url(), "logs.app", &valid_lines_range(0..n), &[]);
    let dir = Scratch::new();
    let args = collector_args(
        &from,
        "c",
        "out.log",
        &["-f", "json", "--until-idle", "3", "--stats-json", "stats.json"],
    );
    let child = start(&dir, &args);
    wait_until("the collector to write", || {
        std::fs::metadata(dir.path("out.log")).is_ok_and(|m| m.len() > 1_000_000)
    });
    server.kill();
    std::thread::sleep(Duration::from_millis(1500));
    server.restart();
    let (code, stderr) = finish(&dir, child);
    assert_eq!(code, Some(0), "{stderr}");
    assert_once_in_order(&collected(&dir.read("out.log")), "logs.app", 0..n as u64);
    assert_eq!(consumer_pending(&server.url(), "LOGS", "c"), (0, 0));
}

#[test]
fn a_three_node_cluster_losing_a_node_while_collecting_loses_and_repeats_nothing() {
    let mut cluster = Cluster::start();
    let urls = cluster.urls();
    create_stream(
        &cluster.nodes[0].url(),
        "LOGS",
        &["logs.>"],
        3,
        Duration::from_secs(120),
    );
    let n = 200_000;
    publish(&urls, "logs.app", &valid_lines_range(0..n), &[]);
    let dir = Scratch::new();
    let from = format!("{urls}/LOGS");
    let args = collector_args(&from, "c", "out.log", &["-f", "json", "--until-idle", "3"]);
    let child = start(&dir, &args);
    wait_until("the collector to write", || {
        std::fs::metadata(dir.path("out.log")).is_ok_and(|m| m.len() > 1_000_000)
    });
    let leader = cluster.stream_leader(&cluster.nodes[0], "LOGS");
    let index: usize = leader.trim_start_matches('n').parse::<usize>().unwrap() - 1;
    cluster.nodes[index].kill();
    let (code, stderr) = finish(&dir, child);
    assert_eq!(code, Some(0), "{stderr}");
    assert_once_in_order(&collected(&dir.read("out.log")), "logs.app", 0..n as u64);
}

/// The collector's peak resident memory (VmHWM) in MiB, read while it runs until it ends; its
/// exit code and stderr.
fn peak_rss_mib(dir: &Scratch, mut child: Child) -> (f64, Option<i32>, String) {
    let status = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut peak_kib = 0u64;
    loop {
        // The high-water mark only grows: the last reading before the exit is the peak.
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak_kib = peak_kib.max(kib);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "still running after 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, stderr) = finish(dir, child);
    (peak_kib as f64 / 1024.0, code, stderr)
}

#[test]
fn packed_messages_keep_the_collectors_memory_bounded() {
    let (server, from) = server_with_logs();
    // About 60 MB of records in 64 KiB messages: far more than the in-flight window may hold.
    let n = 500_000;
    publish(
        &server.url(),
        "logs.app",
        &valid_lines_range(0..n),
        &["--batch-bytes", "65536"],
    );
    let dir = Scratch::new();
    let child = start(
        &dir,
        &collector_args(&from, "c", "out.log", &["--until-idle", "1"]),
    );
    let (peak, code, stderr) = peak_rss_mib(&dir, child);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dir.read("out.log").lines().count(), n);
    assert!(peak < 64.0, "peak RSS {peak:.1} MiB for {n} packed records");
}

#[test]
fn structured_fields_travel_from_the_publisher_to_the_collected_file() {
    let (server, from) = server_with_logs();
    // A publisher reading JSON logs (pino): its records carry their other keys as fields.
    let pino = "{\"level\":50,\"time\":1776247200123,\"pid\":4242,\"user\":\"ann lee\",\"msg\":\"order failed\",\"err\":{\"code\":7}}\n\
                {\"level\":30,\"time\":1776247201000,\"msg\":\"no fields\"}\n";
    publish(
        &server.url(),
        "logs.app",
        pino,
        &["--input", "json", "--batch-bytes", "65536"],
    );
    let dir = Scratch::new();
    let (code, stderr) = collect(&dir, &from, "c", "out.json", &["-f", "json", "--until-idle", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = dir
        .read("out.json")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["message"], "order failed");
    assert_eq!(
        lines[0]["fields"],
        serde_json::json!({"pid": 4242, "user": "ann lee", "err": {"code": 7}})
    );
    assert_eq!(lines[0]["subject"], "logs.app");
    assert!(lines[1].get("fields").is_none(), "{}", lines[1]);
    // The text layout appends them as logfmt pairs, after the source column.
    let dir = Scratch::new();
    let (code, stderr) = collect(&dir, &from, "t", "out.log", &["--until-idle", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let text = dir.read("out.log");
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("     1 ERROR "), "{text}");
    assert!(
        first.ends_with(r#" order failed pid=4242 user="ann lee" err="{\"code\":7}""#),
        "{text}"
    );
}

#[test]
fn a_quiet_stream_has_what_was_written_committed_and_acknowledged_within_seconds() {
    let (server, from) = server_with_logs();
    publish(&server.url(), "logs.app", &valid_lines_range(0..300), &[]);
    let dir = Scratch::new();
    // A service: no --until-idle, and no message comes after these 300.
    let mut child = start(&dir, &collector_args(&from, "c", "out.log", &["-f", "json"]));
    wait_until(
        "the collector commits and acknowledges all 300 while idle",
        || {
            let written = std::fs::read_to_string(dir.path("out.log")).map_or(0, |t| t.lines().count());
            written == 300 && consumer_pending(&server.url(), "LOGS", "c") == (0, 0)
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed after the acknowledgements: nothing comes again, nothing is missing.
    let (code, stderr) = collect(&dir, &from, "c", "out.log", &["-f", "json", "--until-idle", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_once_in_order(&collected(&dir.read("out.log")), "logs.app", 0..300);
}

#[test]
fn the_collector_acknowledges_no_message_before_a_commit_covers_it() {
    use common::strace::{calls, quoted, rename_paths};
    common::strace::require();
    let (server, from) = server_with_logs();
    let n = 3000;
    publish(&server.url(), "logs.app", &valid_lines_range(0..n), &[]);
    let dir = Scratch::new();
    let args = collector_args(
        &from,
        "c",
        "out.log",
        &["--until-idle", "1", "--checkpoint-bytes", "20000"],
    );
    let status = std::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-s",
            "1000000",
            "-e",
            "trace=openat,write,writev,sendto,sendmsg,rename,renameat2",
            "-o",
        ])
        .arg(dir.path("trace"))
        .arg(common::BIN)
        .args(&args)
        .current_dir(dir.path(""))
        .env_clear()
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(dir.read("out.log").lines().count(), n);
    // In the order the calls completed: each commit's stream sequence (the checkpoint's
    // input_bytes, as renamed into place), and each ack the client wrote to the server.
    let trace = std::fs::read_to_string(dir.path("trace")).unwrap();
    let mut open = std::collections::HashMap::new();
    let mut contents: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let (mut committed, mut commits, mut acks) = (0u64, 0, 0);
    for call in calls(&trace) {
        match call.name.as_str() {
            "openat" if call.result >= 0 => {
                open.insert(call.result, quoted(&call.args));
            }
            "rename" | "renameat2" if call.result == 0 => {
                let (from, to) = rename_paths(&call.args);
                if to == "cp" {
                    let state = contents.remove(&from).unwrap_or_default();
                    committed = state
                        .lines()
                        .find_map(|l| l.strip_prefix("input_bytes ")?.parse().ok())
                        .unwrap_or_else(|| panic!("no input_bytes in {state:?}"));
                    commits += 1;
                }
            }
            "write" | "writev" | "sendto" | "sendmsg" if call.result > 0 => {
                // `PUB $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...` (or the form
                // with a domain and account hash before the stream: two tokens more) to the
                // server; anything else is a file's (descriptors are reused: acks first).
                if !call.args.contains("PUB $JS.ACK.") {
                    let fd: i64 = call.args.split(',').next().unwrap().trim().parse().unwrap_or(-1);
                    if let Some(path) = open.get(&fd) {
                        contents
                            .entry(path.clone())
                            .or_default()
                            .push_str(&quoted(&call.args));
                    }
                    continue;
                }
                for at in call.args.match_indices("PUB $JS.ACK.").map(|(at, _)| at + 4) {
                    let subject = call.args[at..].split([' ', '\\']).next().unwrap();
                    let tokens: Vec<&str> = subject.split('.').collect();
                    let seq_at = if tokens.len() >= 11 { 7 } else { 5 };
                    let seq: u64 = tokens[seq_at].parse().unwrap_or_else(|_| panic!("{subject}"));
                    acks += 1;
                    assert!(
                        seq <= committed,
                        "stream sequence {seq} acknowledged while the checkpoint commits up to {committed} (commit {commits})"
                    );
                }
            }
            _ => {}
        }
    }
    assert!(commits >= 3, "only {commits} commits");
    assert_eq!(acks, n, "every message acknowledged once");
}

#[test]
fn deliveries_taken_by_a_stale_pull_are_a_gap_the_collector_sees_and_fills() {
    // A pull request of another client waits on the consumer before the collector's: the
    // server serves it first, so the collector's first delivery is not the consumer's next.
    // Taking it would leave the first 500 messages behind for good (they come back after the
    // ack wait, as already taken, and are dropped).
    let (server, from) = server_with_logs();
    let stale = StalePull::start(&server.url(), "LOGS", "c", 500);
    let dir = Scratch::new();
    let collector = start(
        &dir,
        &collector_args(&from, "c", "out.log", &["-f", "json", "--until-idle", "3"]),
    );
    wait_until("the collector's pull request waits too", || {
        waiting_pulls(&server.url(), "LOGS", "c") >= 2
    });
    publish(&server.url(), "logs.app", &valid_lines_range(0..2000), &[]);
    let (code, stderr) = finish(&dir, collector);
    drop(stale);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("deliveries went missing"),
        "the gap is reported: {stderr}"
    );
    assert_once_in_order(&collected(&dir.read("out.log")), "logs.app", 0..2000);
}
