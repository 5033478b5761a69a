//! Publishing to NATS JetStream against real `nats-server` processes (see `common::nats`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::nats::{
    Cluster, Server, Stored, block_on, create_stream, last_stored_line, publish_raw, read_stream,
};
use common::{
    BIN, Scratch, finish, run, run_in, run_with_env, spawn_in, valid_lines, valid_lines_range, wait_until,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The JSON body's `line` and `message`.
fn line_and_message(stored: &Stored) -> (u64, String) {
    let value: serde_json::Value = serde_json::from_slice(&stored.payload)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&stored.payload)));
    (
        value["line"].as_u64().unwrap(),
        value["message"].as_str().unwrap().to_owned(),
    )
}

/// Asserts that `stored` holds the records of `valid_lines(n)` (messages `Message 0` up to
/// `Message n-1`, bad lines in between or not), once each and in order, each message's
/// `Ingest-Line` header naming its record's line.
fn assert_each_once_in_order(stored: &[Stored], n: usize) {
    let numbers: Vec<u64> = stored
        .iter()
        .map(|s| {
            let (line, message) = line_and_message(s);
            assert_eq!(s.header("Ingest-Line"), Some(line.to_string().as_str()));
            message.strip_prefix("Message ").unwrap().parse().unwrap()
        })
        .collect();
    let expected: Vec<u64> = (0..n as u64).collect();
    if numbers != expected {
        let first_bad = numbers.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "{} messages for {n} records; first difference at index {first_bad:?}: {:?}",
            numbers.len(),
            first_bad.map(|i| &numbers[i.saturating_sub(2)..(i + 3).min(numbers.len())])
        );
    }
}

#[test]
fn every_valid_record_reaches_the_stream_once_in_input_order_with_its_headers() {
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let n = 200_000;
    let mut input = valid_lines(n);
    input.push_str("not a record\n");
    let url = format!("{}/logs.app", server.url());
    let (code, stderr) = run(&[&url, "--rejects", "bad.tsv"], &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains(&format!("{n} written, 1 rejected")), "{stderr}");
    let stored = read_stream(&server.url(), "LOGS");
    assert_each_once_in_order(&stored, n);
    let first = &stored[0];
    assert_eq!(first.subject, "logs.app");
    let source = first.header("Ingest-Source").unwrap();
    let (host, fingerprint) = source.split_once('/').unwrap();
    assert!(!host.is_empty() && fingerprint.len() == 16, "{source}");
    assert_eq!(
        first.header("Nats-Msg-Id"),
        Some(format!("{fingerprint}:1").as_str())
    );
    assert!(stored.iter().all(|s| s.header("Ingest-Source") == Some(source)));
    // The body is exactly the --format json line, without its newline.
    assert_eq!(
        String::from_utf8_lossy(&first.payload),
        r#"{"line":1,"timestamp":"2026-04-15T00:00:00Z","severity":"INFO","message":"Message 0"}"#
    );
}

#[test]
fn batch_bytes_packs_the_same_records_into_fewer_messages() {
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    // Many more batches than the pipeline's window: acknowledgements must be awaited while
    // the sink holds batches, or the reader waits for a slot forever.
    let n = 200_000;
    let url = format!("{}/logs.app", server.url());
    let (code, stderr) = run(&[&url, "--batch-bytes", "65536"], &valid_lines(n));
    assert_eq!(code, Some(0), "{stderr}");
    let stored = read_stream(&server.url(), "LOGS");
    assert!(stored.len() < n / 20, "{} messages for {n} records", stored.len());
    let mut lines = Vec::new();
    for message in &stored {
        assert!(message.payload.len() <= 65536);
        let records: Vec<&[u8]> = message
            .payload
            .split(|&b| b == b'\n')
            .filter(|r| !r.is_empty())
            .collect();
        let first = message.header("Ingest-Line").unwrap().parse::<u64>().unwrap();
        let last = message
            .header("Ingest-Last-Line")
            .map_or(first, |l| l.parse().unwrap());
        assert_eq!(last - first + 1, records.len() as u64);
        for record in records {
            let value: serde_json::Value = serde_json::from_slice(record).unwrap();
            lines.push(value["line"].as_u64().unwrap());
        }
    }
    assert_eq!(lines, (1..=n as u64).collect::<Vec<_>>());
}

#[test]
fn text_format_sends_the_text_line() {
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let url = format!("{}/logs.app", server.url());
    let (code, stderr) = run(&[&url, "-f", "text"], &valid_lines(2));
    assert_eq!(code, Some(0), "{stderr}");
    let stored = read_stream(&server.url(), "LOGS");
    let bodies: Vec<String> = stored
        .iter()
        .map(|s| String::from_utf8_lossy(&s.payload).into_owned())
        .collect();
    assert_eq!(bodies, ["     1  INFO Message 0", "     2  INFO Message 1"]);
}

#[test]
fn without_a_stream_for_the_subject_the_run_exits_78_and_says_how_to_make_one() {
    let server = Server::start("");
    let url = format!("{}/logs.app", server.url());
    let (code, stderr) = run(&[&url], &valid_lines(3));
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("no JetStream stream"), "{stderr}");
    assert!(
        stderr.contains("'logs.app'") && stderr.contains("--create-stream"),
        "{stderr}"
    );
    // --create-stream makes one.
    let (code, stderr) = run(&[&url, "--create-stream", "APP"], &valid_lines(3));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(read_stream(&server.url(), "APP").len(), 3);
}

#[test]
fn wrong_credentials_exit_77_and_never_show_the_password() {
    let server = Server::start("authorization { user: ingest, password: s3cret }");
    let wrong = format!("nats://ingest:wrong-pass@127.0.0.1:{}/logs.app", server.port);
    let (code, stderr) = run(&[&wrong], &valid_lines(3));
    assert_eq!(code, Some(77), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("NATS_USER"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-pass"), "{stderr}");
    let right = format!("nats://ingest:s3cret@127.0.0.1:{}/logs.app", server.port);
    let (code, stderr) = run(&[&right, "--create-stream", "APP"], &valid_lines(3));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn an_unreachable_server_exits_69_after_the_sink_timeout() {
    let port = common::nats::free_port();
    let url = format!("nats://127.0.0.1:{port}/logs.app");
    let started = std::time::Instant::now();
    let (code, stderr) = run(
        &[&url, "--sink-timeout", "1", "--stats-json", "-"],
        &valid_lines(3),
    );
    assert_eq!(code, Some(69), "{stderr}");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1));
    // Generous for a slow machine, and still far below a 30 s floor on the timeout.
    assert!(
        took < Duration::from_secs(20),
        "gave up after {took:?} with --sink-timeout 1"
    );
    assert!(stderr.contains("unavailable"), "{stderr}");
}

#[test]
fn a_server_killed_mid_run_and_never_back_ends_the_run_with_69_after_the_sink_timeout() {
    let mut server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let url = format!("{}/logs.app", server.url());
    let mut running = Running::start(&[&url, "--sink-timeout", "2"]);
    running.write(&valid_lines(100));
    wait_until("the first 100 records are stored", || {
        stream_len(&server.url(), "LOGS") == 100
    });
    server.kill();
    let killed = std::time::Instant::now();
    running.write(&valid_lines_range(100..200));
    let (status, stderr) = running.finish();
    let took = killed.elapsed();
    assert_eq!(status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("unavailable"), "{stderr}");
    assert!(
        stderr.contains("100 written"),
        "what was acknowledged is counted: {stderr}"
    );
    assert!(
        took >= Duration::from_secs(2),
        "gave up {took:?} after the server went away"
    );
    assert!(
        took < Duration::from_secs(20),
        "gave up only {took:?} after the server went away, with --sink-timeout 2"
    );
}

#[test]
fn a_record_over_the_servers_max_payload_is_rejected_as_too_large() {
    let server = Server::start("max_payload: 2048");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let big = format!("2026-04-15T00:00:00Z INFO {}\n", "x".repeat(4000));
    let input = format!("{}{big}{}", valid_lines(1), valid_lines_range(1..2));
    let dir = Scratch::new();
    let url = format!("{}/logs.app", server.url());
    let (code, stderr) = run_in(&dir, &[&url, "--rejects", "bad.tsv"], &input, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("2 written, 1 rejected"), "{stderr}");
    assert_eq!(dir.read("bad.tsv"), format!("2\ttoo large\t{big}"));
    let lines: Vec<u64> = read_stream(&server.url(), "LOGS")
        .iter()
        .map(|s| line_and_message(s).0)
        .collect();
    assert_eq!(lines, [1, 3]);
}

#[test]
fn lines_long_enough_to_take_several_window_slots_each_all_reach_the_stream() {
    // 700 KB lines: a batch of one takes two slots of a window of four (`--capacity 4`), and
    // the sink keeps two slots' worth unacknowledged. Counted as batches, the sink would keep
    // every slot while the writer waits for the next batch, which cannot be read: a hang.
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let body = "z".repeat(700_000);
    let input: String = (0..30)
        .map(|i| format!("2026-04-15T00:00:{i:02}Z INFO {i} {body}\n"))
        .collect();
    let url = format!("{}/logs.app", server.url());
    for capacity in ["4", "32768"] {
        let (code, stderr) = run(&[&url, "--capacity", capacity], &input);
        assert_eq!(code, Some(0), "--capacity {capacity}: {stderr}");
        assert!(stderr.contains("30 written, 0 rejected"), "{stderr}");
    }
    let lines: Vec<u64> = read_stream(&server.url(), "LOGS")
        .iter()
        .map(|s| line_and_message(s).0)
        .collect();
    let once: Vec<u64> = (1..=30).collect();
    assert_eq!(lines, [once.clone(), once].concat());
}

/// A running `ingest` whose stdin the test writes and whose stderr it watches.
struct Running {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .env_clear()
            .args(args)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let seen = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut seen = seen.lock().unwrap();
                seen.push_str(&line);
                seen.push('\n');
            }
        });
        Running {
            stdin: child.stdin.take(),
            child,
            stderr,
        }
    }

    fn write(&mut self, text: &str) {
        self.stdin.as_mut().unwrap().write_all(text.as_bytes()).unwrap();
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_for_stderr(&self, what: &str) {
        wait_until(&format!("ingest says '{what}'"), || self.stderr().contains(what));
    }

    fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        // The reader thread ends with the pipe.
        wait_until("stderr to be read to its end", || {
            Arc::strong_count(&self.stderr) == 1
        });
        (status, self.stderr())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages in stream `name` right now.
fn stream_len(url: &str, name: &str) -> u64 {
    block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let mut stream = async_nats::jetstream::new(client).get_stream(name).await.unwrap();
        stream.info().await.unwrap().state.messages
    })
}

#[test]
fn a_server_killed_and_restarted_mid_run_loses_and_repeats_nothing() {
    let mut server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let dir = Scratch::new();
    let stats = dir.path("stats.json");
    let url = format!("{}/logs.app", server.url());
    let mut ingest = Running::start(&[
        &url,
        "--stats-json",
        stats.to_str().unwrap(),
        "--breaker-failures",
        "2",
    ]);
    let n = 200_000;
    // Fed from a thread: the writes block while the server is away (backpressure).
    let mut stdin = ingest.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(valid_lines(n).as_bytes()));
    // Killed while messages are on their way: some acknowledged, some not.
    wait_until("the first messages to be stored", || {
        stream_len(&server.url(), "LOGS") >= 1_000
    });
    server.kill();
    ingest.wait_for_stderr("breaker is open");
    server.restart();
    feeder.join().unwrap().unwrap();
    let (status, stderr) = ingest.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("available again"), "{stderr}");
    assert_each_once_in_order(&read_stream(&server.url(), "LOGS"), n);
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    assert_eq!(stats["written"], n as u64);
    assert!(
        stats["sink"]["breaker_openings"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert_eq!(stats["sink"]["breaker_open"], false);
}

#[test]
fn sigint_with_acknowledgements_outstanding_drains_them_and_ends_by_sigint() {
    use std::os::unix::process::ExitStatusExt;
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let url = format!("{}/logs.app", server.url());
    let mut ingest = Running::start(&[&url, "--progress", "always"]);
    ingest.write(&valid_lines_range(0..100));
    wait_until("the first records to be stored", || {
        stream_len(&server.url(), "LOGS") == 100
    });
    // The server stops answering: what is published now waits for its acknowledgement.
    kill(Pid::from_raw(server.pid()), Signal::SIGSTOP).unwrap();
    ingest.write(&valid_lines_range(100..200));
    ingest.wait_for_stderr("progress: 200 lines");
    kill(Pid::from_raw(ingest.child.id() as i32), Signal::SIGINT).unwrap();
    kill(Pid::from_raw(server.pid()), Signal::SIGCONT).unwrap();
    let (status, stderr) = ingest.finish();
    assert_eq!(
        status.signal(),
        Some(Signal::SIGINT as i32),
        "{status:?}: {stderr}"
    );
    assert!(stderr.contains("200 written"), "{stderr}");
    assert_each_once_in_order(&read_stream(&server.url(), "LOGS"), 200);
}

#[test]
fn a_publisher_killed_again_and_again_with_a_checkpoint_leaves_each_record_once_in_order() {
    kill_loop(&[], 1);
}

#[test]
fn a_packing_publisher_killed_again_and_again_with_a_checkpoint_leaves_each_record_once_in_order() {
    // About 45 records a message: a rerun packs from another line on, and still continues
    // after the last line the stream holds.
    kill_loop(&["--batch-bytes", "4096"], 45);
}

/// Publishes 60,000 records (and a bad line every 1,000) with `--checkpoint` and `extra`,
/// SIGKILLs the publisher again and again at different points (some reruns after the 1-second
/// duplicate window), lets the last run finish, and checks the stream and the rejects file.
fn kill_loop(extra: &[&str], records_per_message: u64) {
    let server = Server::start("");
    // A 1-second duplicate window: most reruns come after it, so the message ids alone could
    // not keep a record from being stored twice.
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(1));
    let dir = Scratch::new();
    let n = 60_000;
    let mut input = String::new();
    // Which input lines (from 1) are records; the others are rejected.
    let mut is_record = vec![false];
    for i in 0..n {
        input.push_str(&valid_lines_range(i..i + 1));
        is_record.push(true);
        if i % 1000 == 999 {
            input.push_str(&format!("bad line {i}\n"));
            is_record.push(false);
        }
    }
    std::fs::write(dir.path("in.log"), &input).unwrap();
    let url = format!("{}/logs.app", server.url());
    let mut args = vec![
        url.as_str(),
        "--checkpoint",
        "cp",
        "--rejects",
        "bad.tsv",
        "--checkpoint-bytes",
        "100000",
    ];
    args.extend_from_slice(extra);
    let start = || spawn_in(&dir, &args, &[]);
    let mut kills = 0;
    for round in 0..40u64 {
        let before = stream_len(&server.url(), "LOGS");
        let mut child = start();
        // Killed at a different point each time: some rounds before the first message.
        let target = before + (500 + (round % 7) * 900) / records_per_message;
        wait_until("the publisher to make progress or end", || {
            stream_len(&server.url(), "LOGS") >= target || child.try_wait().unwrap().is_some()
        });
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        // The checkpoint names only records the stream holds: it commits what the server
        // acknowledged, never what was merely sent.
        if let Ok(checkpoint) = std::fs::read_to_string(dir.path("cp")) {
            let committed: usize = checkpoint
                .lines()
                .find_map(|l| l.strip_prefix("input_lines ")?.parse().ok())
                .expect("input_lines in the checkpoint");
            if let Some(record) = (1..=committed).rev().find(|&l| is_record[l]) {
                let stored = last_stored_line(&server.url(), "LOGS", "logs.app").unwrap_or(0);
                assert!(
                    record as u64 <= stored,
                    "round {round}: the checkpoint commits line {committed} (record {record}); the stream holds up to line {stored}"
                );
            }
        }
        if round % 3 == 2 {
            // Past the duplicate window.
            std::thread::sleep(Duration::from_millis(1100));
        }
    }
    assert!(
        kills >= 5,
        "only {kills} kills: the runs were too quick to interrupt"
    );
    let stats_args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--stats-json", "stats.json"])
        .collect();
    let (code, stderr) = finish(&dir, spawn_in(&dir, &stats_args, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    // The last run's counts add up, the records an earlier run stored included.
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    let (lines, written, rejected) = (&stats["lines"], &stats["written"], &stats["rejected"]);
    assert_eq!(
        lines.as_u64(),
        Some(written.as_u64().unwrap() + rejected.as_u64().unwrap()),
        "{stats}"
    );
    // Packed messages split back into their records.
    let mut records = Vec::new();
    for message in read_stream(&server.url(), "LOGS") {
        for body in message.payload.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
            let mut one = message.clone();
            one.payload = body.to_vec();
            one.headers.retain(|(name, _)| name != "Ingest-Line");
            let line = line_and_message(&one).0;
            one.headers.push(("Ingest-Line".to_owned(), line.to_string()));
            records.push(one);
        }
    }
    assert_each_once_in_order(&records, n);
    // Each bad line once, in order, whatever the kills did to the rejects file.
    let rejected: Vec<String> = dir
        .read("bad.tsv")
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..n)
        .filter(|i| i % 1000 == 999)
        .map(|i| format!("bad line {i}"))
        .collect();
    assert_eq!(rejected, expected);
}

#[test]
fn many_logs_published_by_runs_killed_again_and_again_are_in_the_stream_once_each_in_order() {
    many_logs_kill_loop(&[], 1);
}

#[test]
fn many_logs_packed_by_runs_killed_again_and_again_are_in_the_stream_once_each_in_order() {
    many_logs_kill_loop(&["--batch-bytes", "4000"], 30);
}

#[test]
fn a_follower_of_many_logs_publishes_each_line_once_across_a_restart_naming_its_log() {
    let server = Server::start("");
    let (dir, args) = following_logs_to(&server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let write = |k: usize, lines: std::ops::Range<usize>| write_log(&dir, k, lines);
    write(0, 0..50);
    write(1, 0..50);
    let stored = || stream_len(&server.url(), "LOGS");
    let run = Running::start(&args);
    wait_until("the logs' lines to be stored", || stored() >= 100);
    // One log grows, another appears: each read in a round of its own.
    write(1, 50..80);
    write(2, 0..20);
    wait_until("the new lines to be stored", || stored() >= 150);
    terminate(run);
    // Restarted over its checkpoint: only what is new is published.
    write(0, 50..60);
    let run = Running::start(&args);
    wait_until("the line written while stopped to be stored", || stored() >= 160);
    write(2, 20..25);
    wait_until("the last lines to be stored", || stored() >= 165);
    terminate(run);
    let mut got: Vec<Vec<usize>> = vec![Vec::new(); 3];
    for message in read_stream(&server.url(), "LOGS") {
        let (k, i) = log_and_line(&message.payload);
        got[k].push(i);
    }
    assert_eq!(got[0], (0..60).collect::<Vec<_>>());
    assert_eq!(got[1], (0..80).collect::<Vec<_>>());
    assert_eq!(got[2], (0..25).collect::<Vec<_>>());
}

/// A follower's rounds come several a second; each publishes over the connection the round
/// before left open, not over one of its own (a node agent would otherwise connect to NATS,
/// and authenticate, again and again for as long as it runs). After the server restarted, the
/// next round connects anew at once (not after a request on the dropped connection timed
/// out), and every line is stored once.
#[test]
fn a_follower_of_many_logs_publishes_round_after_round_over_one_connection() {
    // The server's trace shows each connection's CONNECT, with the client's name.
    let mut server = Server::start("trace: true");
    let (dir, args) = following_logs_to(&server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let connections = |server: &Server| server.log().matches("\"name\":\"ingest\"").count();
    write_log(&dir, 0, 0..10);
    let run = Running::start(&args);
    let server_url = server.url();
    let stored = || stream_len(&server_url, "LOGS");
    wait_until("the first lines to be stored", || stored() >= 10);
    // Each burst is read by a round of its own: the one before was stored already.
    let mut written = [10, 0];
    for burst in 0..8 {
        let k = burst % 2;
        write_log(&dir, k, written[k]..written[k] + 10);
        written[k] += 10;
        wait_until("the burst to be stored", || stored() >= 20 + 10 * burst as u64);
    }
    assert_eq!(
        connections(&server),
        1,
        "one connection for 9 rounds: {}",
        server.log()
    );
    // The server goes away between rounds: the next round connects anew.
    server.restart();
    write_log(&dir, 1, written[1]..written[1] + 10);
    written[1] += 10;
    wait_until("the lines after the restart to be stored", || stored() >= 100);
    // The dropped connection was not tried again (a request on it would time out first).
    let said = run.stderr.lock().unwrap().clone();
    assert!(!said.contains("warning"), "{said}");
    terminate(run);
    assert_eq!(connections(&server), 2, "a new connection after the restart only");
    let mut got: Vec<Vec<usize>> = vec![Vec::new(); 2];
    for message in read_stream(&server.url(), "LOGS") {
        let (k, i) = log_and_line(&message.payload);
        got[k].push(i);
    }
    assert_eq!(got[0], (0..written[0]).collect::<Vec<_>>());
    assert_eq!(got[1], (0..written[1]).collect::<Vec<_>>());
}

/// Stops a follower as systemd would, and checks it ended by the signal.
fn terminate(run: Running) {
    use std::os::unix::process::ExitStatusExt;
    kill(Pid::from_raw(run.child.id() as i32), Signal::SIGTERM).unwrap();
    let (status, stderr) = run.finish();
    assert_eq!(
        status.signal(),
        Some(Signal::SIGTERM as i32),
        "{status:?}: {stderr}"
    );
}

/// A stream `LOGS` on `server`, a directory with `logs/` in it, and the arguments of a
/// follower of `logs/*.log` with a checkpoint, publishing JSON to `logs.app`.
fn following_logs_to(server: &Server) -> (Scratch, Vec<String>) {
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let dir = Scratch::new();
    std::fs::create_dir(dir.path("logs")).unwrap();
    let args = [
        "--from".to_owned(),
        dir.path("logs/*.log").display().to_string(),
        "--follow".to_owned(),
        "--checkpoint".to_owned(),
        dir.path("cp").display().to_string(),
        "-f".to_owned(),
        "json".to_owned(),
        format!("{}/logs.app", server.url()),
    ];
    (dir, args.to_vec())
}

/// Log `k`'s line `i`.
fn log_line(k: usize, i: usize) -> String {
    format!(
        "2026-04-15T00:{:02}:{:02}Z INFO log {k} message {i}\n",
        i / 60 % 60,
        i % 60
    )
}

/// Appends log `k`'s lines `lines` to `dir/logs/appK.log` (made if need be).
fn write_log(dir: &Scratch, k: usize, lines: std::ops::Range<usize>) {
    let text: String = lines.map(|i| log_line(k, i)).collect();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path(&format!("logs/app{k}.log")))
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The log (`k` of its `file` key) and line (`i` of its message) of a record [`log_line`]
/// made, published with `-f json`.
fn log_and_line(record: &[u8]) -> (usize, usize) {
    let record: serde_json::Value = serde_json::from_slice(record).unwrap();
    let file = record["file"].as_str().expect("every record names its log");
    let k = file
        .rsplit_once("/app")
        .unwrap()
        .1
        .strip_suffix(".log")
        .unwrap()
        .parse()
        .unwrap();
    let message = record["message"].as_str().unwrap();
    let (of, i) = message
        .strip_prefix("log ")
        .unwrap()
        .split_once(" message ")
        .unwrap();
    assert_eq!(of.parse::<usize>().unwrap(), k, "{file}: {message}");
    (k, i.parse().unwrap())
}

/// `--from 'logs/*.log'` over 12 logs of one checkpoint, published to a subject another
/// producer writes to as well, SIGKILLed at a different point each run; meanwhile one log is
/// rotated (its files are publishers of their own) and the others grow. At the end every line
/// of every log is in the stream once, in its log's order, named by its log; a collector
/// writes the log back out.
fn many_logs_kill_loop(extra: &[&str], records_per_message: u64) {
    let server = Server::start("");
    // The shortest duplicate window, and every rerun after it: the message ids cannot keep a
    // record from being stored twice.
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_millis(100));
    let dir = Scratch::new();
    std::fs::write(dir.path("in.log"), "").unwrap();
    std::fs::create_dir(dir.path("logs")).unwrap();
    const LOGS: usize = 12;
    let mut written = [0usize; LOGS];
    let append = |written: &mut [usize; LOGS], k: usize, n: usize| {
        write_log(&dir, k, written[k]..written[k] + n);
        written[k] += n;
    };
    for k in 0..LOGS {
        append(&mut written, k, 4000);
    }
    let url = format!("{}/logs.app", server.url());
    let mut args = vec![
        "--from",
        "logs/*.log",
        "--checkpoint",
        "cp",
        "-f",
        "json",
        "--checkpoint-bytes",
        "100000",
        url.as_str(),
    ];
    args.extend_from_slice(extra);
    let mut kills = 0;
    for round in 0..30u64 {
        let before = stream_len(&server.url(), "LOGS");
        let mut child = spawn_in(&dir, &args, &[]);
        // Killed at a different point each time: some runs before their first message.
        let target = before + (300 + (round % 7) * 700) / records_per_message;
        wait_until("the publisher to make progress or end", || {
            stream_len(&server.url(), "LOGS") >= target || child.try_wait().unwrap().is_some()
        });
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none_or(|c| c == 0),
            "{status}: {}",
            dir.read("stderr")
        );
        // Another producer on the subject: its messages sit among ours.
        publish_raw(&server.url(), "logs.app", &[b"another producer's message"]);
        // Past the duplicate window.
        std::thread::sleep(Duration::from_millis(110));
        if round == 4 {
            // Rotated while stopped: the rest of app0.log is read from app0.log.1, and the
            // new app0.log from its first line.
            std::fs::rename(dir.path("logs/app0.log"), dir.path("logs/app0.log.1")).unwrap();
            append(&mut written, 0, 1500);
        } else if round < 12 {
            append(&mut written, round as usize % LOGS, 1500);
        }
    }
    assert!(
        kills >= 5,
        "only {kills} kills: the runs were too quick to interrupt"
    );
    let (code, stderr) = finish(&dir, spawn_in(&dir, &args, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("lost"), "{stderr}");
    // Each log's lines, in stream order, from the records' `file` keys.
    let mut got: Vec<Vec<usize>> = vec![Vec::new(); LOGS];
    let mut ours = 0;
    for message in read_stream(&server.url(), "LOGS") {
        if message.header("Ingest-Source").is_none() {
            continue;
        }
        ours += 1;
        for body in message.payload.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
            let (k, i) = log_and_line(body);
            got[k].push(i);
        }
    }
    assert!(ours > 0);
    for k in 0..LOGS {
        let expected: Vec<usize> = (0..written[k]).collect();
        if got[k] != expected {
            let first_bad = got[k].iter().zip(&expected).position(|(a, b)| a != b);
            panic!(
                "log {k}: {} records for {} lines; first difference at {first_bad:?}",
                got[k].len(),
                written[k]
            );
        }
    }
    // A collector writes each record's log back out.
    let (code, stderr) = run_in(
        &dir,
        &[
            "--from",
            &format!("{}/LOGS", server.url()),
            "--consumer",
            "central",
            "--checkpoint",
            "collected.cp",
            "--until-idle",
            "1",
            "-f",
            "json",
            "collected.jsonl",
        ],
        "",
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let collected = dir.read("collected.jsonl");
    let total: usize = written.iter().sum();
    let files: Vec<String> = collected
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["file"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(files.len(), total);
    for (k, &lines) in written.iter().enumerate() {
        let suffix = format!("/logs/app{k}.log");
        assert_eq!(
            files.iter().filter(|f| f.ends_with(&suffix)).count(),
            lines,
            "{suffix}"
        );
    }
}

#[test]
fn a_replicated_stream_losing_its_leader_mid_run_keeps_each_record_once_in_order() {
    let mut cluster = Cluster::start();
    create_stream(
        &cluster.nodes[0].url(),
        "LOGS",
        &["logs.>"],
        3,
        Duration::from_secs(120),
    );
    let leader = cluster.stream_leader(&cluster.nodes[0], "LOGS");
    let n = 100_000;
    let dir = Scratch::new();
    std::fs::write(dir.path("in.log"), valid_lines(n)).unwrap();
    let url = format!("{}/logs.app", cluster.urls());
    let child = spawn_in(&dir, &[&url, "--stats-json", "stats.json"], &[]);
    let index: usize = leader.trim_start_matches('n').parse::<usize>().unwrap() - 1;
    let survivor_url = cluster.nodes[(index + 1) % 3].url();
    wait_until("the first records to be stored", || {
        stream_len(&survivor_url, "LOGS") >= 5_000
    });
    cluster.nodes[index].kill();
    let (code, stderr) = finish(&dir, child);
    assert_eq!(code, Some(0), "{stderr}");
    assert_each_once_in_order(&read_stream(&survivor_url, "LOGS"), n);
}

/// A CA and a server certificate for 127.0.0.1, made with openssl in `dir`.
fn make_certificates(dir: &Scratch) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .current_dir(dir.path(""))
            .args(args)
            .stderr(Stdio::null())
            .status()
            .expect("openssl is needed for the TLS test (apt-get install openssl)");
        assert!(status.success(), "openssl {args:?}");
    };
    std::fs::write(dir.path("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ingest test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[test]
fn tls_with_a_private_ca_publishes_and_an_unknown_ca_is_refused() {
    let dir = Scratch::new();
    make_certificates(&dir);
    let tls = format!(
        "tls {{ cert_file: {:?}, key_file: {:?} }}",
        dir.path("server.pem"),
        dir.path("server.key")
    );
    let server = Server::start(&tls);
    let url = format!("tls://127.0.0.1:{}/logs.app", server.port);
    let ca = dir.path("ca.pem");
    let (code, stderr) = run(
        &[
            &url,
            "--nats-tls-ca",
            ca.to_str().unwrap(),
            "--create-stream",
            "APP",
        ],
        &valid_lines(3),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("3 written"), "{stderr}");
    let stored = block_on(async {
        let client = async_nats::ConnectOptions::new()
            .add_root_certificates(ca.clone())
            .require_tls(true)
            .connect(format!("tls://127.0.0.1:{}", server.port))
            .await
            .unwrap();
        let mut stream = async_nats::jetstream::new(client)
            .get_stream("APP")
            .await
            .unwrap();
        stream.info().await.unwrap().state.messages
    });
    assert_eq!(stored, 3);
    // Without the CA the server's certificate cannot be trusted: a clear error, not a retry loop.
    let (code, stderr) = run(&[&url, "--sink-timeout", "30"], &valid_lines(3));
    assert_eq!(code, Some(74), "{stderr}");
    assert!(stderr.contains("--nats-tls-ca"), "{stderr}");
}

#[test]
fn a_user_who_may_not_publish_to_the_subject_exits_77() {
    let server = Server::start(
        r#"authorization { users = [ {user: admin, password: admin}, {user: app, password: app, permissions: {publish: {deny: ["logs.>"]}}} ] }"#,
    );
    let admin = format!("nats://admin:admin@127.0.0.1:{}/logs.app", server.port);
    let (code, stderr) = run(&[&admin, "--create-stream", "LOGS"], "");
    assert_eq!(code, Some(0), "{stderr}");
    let app = format!("nats://app:app@127.0.0.1:{}/logs.app", server.port);
    let (code, stderr) = run(&[&app, "--ack-timeout", "1"], &valid_lines(3));
    assert_eq!(code, Some(77), "{stderr}");
    assert!(stderr.contains("Permissions Violation"), "{stderr}");
}

#[test]
fn credentials_come_from_the_environment_too() {
    let server = Server::start("authorization { token: t0ken-from-env }");
    let url = format!("{}/logs.app", server.url());
    let (code, stderr) = run(&[&url, "--create-stream", "APP"], &valid_lines(3));
    assert_eq!(code, Some(77), "no token: {stderr}");
    let (code, stderr) = run_with_env(
        &[&url, "--create-stream", "APP"],
        &valid_lines(3),
        &[("NATS_TOKEN", "t0ken-from-env")],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("t0ken-from-env"), "{stderr}");

    let server = Server::start("authorization { user: app, password: pw-from-env }");
    let url = format!("{}/logs.app", server.url());
    let (code, stderr) = run_with_env(
        &[&url, "--create-stream", "APP"],
        &valid_lines(3),
        &[("NATS_USER", "app"), ("NATS_PASSWORD", "pw-from-env")],
    );
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_rerun_counts_the_records_the_stream_already_holds_as_written() {
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let dir = Scratch::new();
    let n = 50_000;
    std::fs::write(dir.path("in.log"), valid_lines(n)).unwrap();
    let url = format!("{}/logs.app", server.url());
    let args = [url.as_str(), "--checkpoint", "cp"];
    // Killed with records stored after its last commit (it commits every 2 s or 16 MiB).
    let mut first = spawn_in(&dir, &args, &[]);
    wait_until("records to be stored", || {
        stream_len(&server.url(), "LOGS") >= 2_000 || first.try_wait().unwrap().is_some()
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let stored_before = stream_len(&server.url(), "LOGS");
    assert!(
        stored_before < n as u64,
        "the first run ended before it could be killed"
    );
    let (code, stderr) = finish(
        &dir,
        spawn_in(
            &dir,
            &[&url, "--checkpoint", "cp", "--stats-json", "stats.json"],
            &[],
        ),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stream_len(&server.url(), "LOGS"), n as u64);
    // Every line this run read is accounted for: those already stored count as written.
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    assert_eq!(stats["written"], stats["lines"], "{stats}");
    assert!(
        stats["sink"]["published"].as_u64().unwrap() < stats["written"].as_u64().unwrap(),
        "{stats}"
    );
}

/// `input_lines` of the checkpoint at `path` (0 while there is none).
fn committed_lines(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path).map_or(0, |checkpoint| {
        checkpoint
            .lines()
            .find_map(|l| l.strip_prefix("input_lines ")?.parse().ok())
            .expect("input_lines in the checkpoint")
    })
}

/// Publishes with headers (`HPUB`) in a client's bytes.
fn publishes(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"HPUB "))
        .count()
}

/// A TCP relay between one client and the server that can hold the client's bytes back: what
/// a client sent and the server has not read yet, as the last messages of a killed publisher.
struct Relay {
    port: u16,
    hold: Arc<Mutex<Option<Vec<u8>>>>,
    upstream: Arc<Mutex<Option<std::net::TcpStream>>>,
    /// Publish acknowledgements the server sent back (`"stream":` in its bytes).
    acks: Arc<Mutex<usize>>,
}

impl Relay {
    fn to(server: &Server) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (hold, upstream, acks) = (Arc::default(), Arc::new(Mutex::new(None)), Arc::default());
        let server_port = server.port;
        let relay = Relay {
            port,
            hold: Arc::clone(&hold),
            upstream: Arc::clone(&upstream),
            acks: Arc::clone(&acks),
        };
        std::thread::spawn(move || {
            let (mut client, _) = listener.accept().unwrap();
            let server = std::net::TcpStream::connect(("127.0.0.1", server_port)).unwrap();
            *upstream.lock().unwrap() = Some(server.try_clone().unwrap());
            let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = std::io::Read::read(&mut from_server, &mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    *acks.lock().unwrap() += text.matches("\"stream\":").count();
                    let _ = to_client.write_all(&buf[..n]);
                }
            });
            let mut buf = [0u8; 65536];
            while let Ok(n @ 1..) = std::io::Read::read(&mut client, &mut buf) {
                let mut hold = hold.lock().unwrap();
                match hold.as_mut() {
                    Some(held) => held.extend_from_slice(&buf[..n]),
                    None => upstream
                        .lock()
                        .unwrap()
                        .as_mut()
                        .unwrap()
                        .write_all(&buf[..n])
                        .unwrap(),
                }
            }
        });
        relay
    }

    /// From now on the client's bytes are kept from the server.
    fn hold(&self) {
        *self.hold.lock().unwrap() = Some(Vec::new());
    }

    /// Publishes (`HPUB`) held back so far.
    fn held_publishes(&self) -> usize {
        self.hold.lock().unwrap().as_deref().map_or(0, publishes)
    }

    /// Hands the server what was held; returns how many publishes that was.
    fn release(&self) -> usize {
        let held = self.hold.lock().unwrap().take().unwrap_or_default();
        let publishes = publishes(&held);
        // Only the answers to these are counted from here on.
        *self.acks.lock().unwrap() = 0;
        self.upstream
            .lock()
            .unwrap()
            .as_mut()
            .unwrap()
            .write_all(&held)
            .unwrap();
        publishes
    }

    fn acks(&self) -> usize {
        *self.acks.lock().unwrap()
    }
}

#[test]
fn a_killed_publishers_last_messages_landing_after_its_rerun_are_dropped_as_duplicates() {
    // The killed run's last messages reach the server only once the rerun has stored what it
    // had to (a relay holds them back): the same records under the same message ids, within
    // the duplicate window. The server must drop every one; none is stored twice.
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let relay = Relay::to(&server);
    let dir = Scratch::new();
    let checkpoint = dir.path("cp");
    let input = valid_lines_range(0..3000);
    std::fs::write(dir.path("in.log"), &input).unwrap();
    let via_relay = format!("nats://127.0.0.1:{}/logs.app", relay.port);
    let mut first = Running::start(&[&via_relay, "--checkpoint", checkpoint.to_str().unwrap()]);
    first.write(&valid_lines_range(0..1000));
    wait_until("the first 1,000 records are stored and committed", || {
        committed_lines(&checkpoint) == 1000
    });
    relay.hold();
    first.write(&valid_lines_range(1000..3000));
    wait_until("the first run has sent 100 more messages", || {
        relay.held_publishes() >= 100
    });
    drop(first); // SIGKILL, with those messages unread by the server
    let direct = format!("{}/logs.app", server.url());
    let (code, stderr) = run_in(&dir, &[&direct, "--checkpoint", "cp"], &input, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stream_len(&server.url(), "LOGS"),
        3000,
        "the rerun stored the rest"
    );
    let late = relay.release();
    assert!(late >= 100, "{late} messages held back");
    wait_until("the server answered every late message", || relay.acks() >= late);
    assert_each_once_in_order(&read_stream(&server.url(), "LOGS"), 3000);
}
