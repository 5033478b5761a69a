//! Power loss: ingest runs with `--checkpoint` on a disk that forgets whatever was not fsynced
//! (`common::power`), the power is cut at every point of a run where it asked the disk for a
//! change, the disk comes back with only what was durable, and a rerun on the same input must
//! leave OUTPUT and the rejects file byte for byte as one uninterrupted run leaves them.
//! Needs root and /dev/fuse (see `common::power`); the collector's case needs nats-server.

mod common;

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::power::Disk;
use common::{BIN, Scratch};

/// What one case compares: OUTPUT and the rejects file, as bytes.
#[derive(Debug, PartialEq)]
struct Written {
    output: Vec<u8>,
    rejects: Vec<u8>,
}

/// OUTPUT (`out.log`) and the rejects file (`rejects.tsv`) in the disk's directory `dir` (""
/// for its root).
fn written(disk: &Disk, dir: &str) -> Written {
    let read = |name: &str| std::fs::read(disk.path(&format!("{dir}{name}"))).unwrap_or_default();
    Written {
        output: read("out.log"),
        rejects: read("rejects.tsv"),
    }
}

/// A disk with `dir` made on it and durable (its name fsynced), nothing of that counted as a
/// change of the run's.
fn disk_with(dir: &str) -> Disk {
    let mut disk = Disk::mount();
    if !dir.is_empty() {
        std::fs::create_dir(disk.path(dir)).unwrap();
        std::fs::File::open(disk.root()).unwrap().sync_all().unwrap();
        disk.power_cycle();
    }
    disk
}

/// `ingest ARGS` with the disk as its working directory and `input` on stdin, to its end (a
/// run that has not ended in 60 s is killed and fails the test): how it ended, and its stderr.
fn run(disk: &Disk, args: &[&str], input: &Path) -> (ExitStatus, String) {
    use std::io::{Read, Seek};
    let mut stderr = tempfile::tempfile().unwrap();
    let mut child = Command::new(BIN)
        .env_clear()
        .current_dir(disk.root())
        .env("RUST_LOG", "ingest=debug")
        .args(args)
        .stdin(std::fs::File::open(input).unwrap())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .expect("start ingest");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut text = String::new();
            stderr.rewind().unwrap();
            stderr.read_to_string(&mut text).unwrap();
            return (status, text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ingest {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn killed(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL)
}

/// Cuts the power at `most` points spread over the changes a run asks for, and once after a
/// finished run; after every fourth cut, once more in the rerun; then a rerun to the end must
/// write what an uninterrupted run wrote. `args(n)` are the arguments for the `n`-th cut point's
/// runs, 0 for the uninterrupted one (the collector takes a consumer of its own for each).
/// Returns how many cuts were taken.
fn cut_everywhere(args: &dyn Fn(u64) -> Vec<String>, input: &Path, most: u64) -> u64 {
    cut_everywhere_in("", args, input, most)
}

/// [`cut_everywhere`] for a case whose OUTPUT and rejects file are in `dir` on the disk (which
/// is there before the run).
fn cut_everywhere_in(dir: &str, args: &dyn Fn(u64) -> Vec<String>, input: &Path, most: u64) -> u64 {
    let written = |disk: &Disk| written(disk, dir);
    let reference_args = args(0);
    let reference_args: Vec<&str> = reference_args.iter().map(String::as_str).collect();
    let mut disk = disk_with(dir);
    let (status, stderr) = run(&disk, &reference_args, input);
    let changes = disk.changes();
    let reference = written(&disk);
    assert!(
        !reference.output.is_empty() && !reference.rejects.is_empty(),
        "the case writes both files: {status:?} {stderr}"
    );
    // A run that ended has made what it wrote durable: a cut right after it loses nothing.
    assert!(!disk.power_cycle());
    assert_eq!(
        written(&disk),
        reference,
        "a finished run's files after a power cut"
    );
    drop(disk);
    assert!(
        changes >= 20,
        "a run asks for few changes ({changes}): too few points to cut at"
    );

    // How many changes a run asks for depends on how its batches fall, which timing moves: the
    // points are spread over the fewest changes any run of this case asked for.
    let mut span = changes;
    let mut cuts = 0;
    for i in 0..most {
        let at = 1 + i * span / most;
        let args = args(i + 1);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut disk = disk_with(dir);
        disk.cut_at(at);
        let (first, mut told) = run(&disk, &args, input);
        if !killed(first) {
            span = span.min(disk.changes());
        }
        let taken = disk.power_cycle();
        assert!(
            taken == killed(first),
            "cut at change {at} of {changes}: taken {taken}, the run ended {first:?}"
        );
        cuts += u64::from(taken);
        if i % 4 == 3 {
            // The rerun itself loses power, at a point of its own.
            disk.cut_at(1 + (at * 7) % span);
            let (second, said) = run(&disk, &args, input);
            told = format!("{told}--- after the first cut:\n{said}");
            let taken = disk.power_cycle();
            assert!(
                taken == killed(second),
                "second cut: taken {taken}, the run ended {second:?}"
            );
            cuts += u64::from(taken);
        }
        let found = std::fs::read_to_string(disk.path("cp")).unwrap_or_default();
        let (last, stderr) = run(&disk, &args, input);
        assert_eq!(
            last.code(),
            status.code(),
            "cut at change {at} of {changes}: the rerun's exit: {stderr}"
        );
        let got = written(&disk);
        if got != reference {
            panic!(
                "cut at change {at} of {changes}, rerun: OUTPUT {} bytes (want {}), rejects {} bytes (want {})\n{}{}\
                 the checkpoint after the cut:\n{found}\nthe stderr of the runs cut:\n{told}\nthe rerun's stderr:\n{stderr}",
                got.output.len(),
                reference.output.len(),
                got.rejects.len(),
                reference.rejects.len(),
                difference("OUTPUT", &got.output, &reference.output),
                difference("rejects", &got.rejects, &reference.rejects),
            );
        }
    }
    cuts
}

/// Where `got` first differs from `want`, with the lines around it, or nothing if they agree.
fn difference(name: &str, got: &[u8], want: &[u8]) -> String {
    let Some(at) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) else {
        return String::new();
    };
    let around = |bytes: &[u8]| {
        let start = bytes[..at.min(bytes.len())]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let start = bytes[..start.saturating_sub(1)]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = (start + 300).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..end]).into_owned()
    };
    format!(
        "{name} first differs at byte {at}:\n--- got\n{}\n--- want\n{}\n",
        around(got),
        around(want)
    )
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Plain lines with a bad one every 7th, a line past --max-line-bytes every 1000th and one far
/// past it (longer than a read): 30,000 lines, ~2.3 MB.
fn plain_with_rejects() -> String {
    (0..30_000)
        .map(|i| match i % 1000 {
            999 if i == 14_999 => format!("2026-04-15T10:00:00Z INFO {}\n", "y".repeat(600_000)),
            999 => format!("2026-04-15T10:00:00Z INFO {}\n", "x".repeat(5000)),
            _ if i % 7 == 6 => format!("not a record {i}\n"),
            _ => format!(
                "2026-04-15T10:{:02}:{:02}Z WARN plain message number {i}\n",
                i / 60 % 60,
                i % 60
            ),
        })
        .collect()
}

const FILES: [&str; 6] = [
    "--checkpoint",
    "cp",
    "--checkpoint-bytes",
    "8192",
    "--rejects",
    "rejects.tsv",
];

#[test]
fn text_output_after_a_power_cut_at_any_point_is_one_uninterrupted_runs() {
    let dir = Scratch::new();
    std::fs::write(dir.path("in.log"), plain_with_rejects()).unwrap();
    let args = [&FILES[..], &["--max-line-bytes", "4096", "out.log"]].concat();
    let cuts = cut_everywhere(&|_| strings(&args), &dir.path("in.log"), 80);
    assert!(cuts >= 70, "only {cuts} cuts taken");
}

#[test]
fn output_in_another_directory_than_the_checkpoint_after_a_power_cut_is_one_uninterrupted_runs() {
    // The checkpoint's directory is fsynced at every commit; OUTPUT's and the rejects file's
    // names in a directory of their own are durable only by the fsync made when they are created.
    let dir = Scratch::new();
    std::fs::write(dir.path("in.log"), plain_with_rejects()).unwrap();
    let args = [
        "--checkpoint",
        "cp",
        "--checkpoint-bytes",
        "8192",
        "--rejects",
        "out/rejects.tsv",
        "--max-line-bytes",
        "4096",
        "out/out.log",
    ];
    let cuts = cut_everywhere_in("out/", &|_| strings(&args), &dir.path("in.log"), 40);
    assert!(cuts >= 30, "only {cuts} cuts taken");
}

#[test]
fn three_logs_of_a_glob_after_a_power_cut_at_any_point_are_one_uninterrupted_runs() {
    // One checkpoint for all three (a journal, on the disk); the logs themselves elsewhere.
    let dir = Scratch::new();
    let lines: Vec<String> = plain_with_rejects()
        .lines()
        .take(8_000)
        .map(|l| format!("{l}\n"))
        .collect();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        std::fs::create_dir(dir.path(name)).unwrap();
        let text: String = lines[i * 1000..].concat();
        std::fs::write(dir.path(&format!("{name}/app.log")), text).unwrap();
    }
    let glob = format!("{}/*/app.log", dir.path("").display());
    let args = [
        &FILES[..],
        &[
            "--from",
            &glob,
            "--max-line-bytes",
            "4096",
            "--format",
            "json",
            "out.log",
        ],
    ]
    .concat();
    let cuts = cut_everywhere(&|_| strings(&args), &dir.path("a/app.log"), 60);
    assert!(cuts >= 50, "only {cuts} cuts taken");
}

#[test]
fn json_records_after_a_power_cut_at_any_point_are_one_uninterrupted_runs() {
    let dir = Scratch::new();
    let input: String = (0..12_000)
        .map(|i| match i % 9 {
            8 => format!("{{\"time\":\"yesterday\",\"level\":\"info\",\"msg\":\"bad {i}\"}}\n"),
            _ => format!(
                "{{\"time\":\"2026-04-15T10:{:02}:{:02}Z\",\"level\":\"error\",\"msg\":\"json message {i}\",\"user\":{i}}}\n",
                i / 60 % 60,
                i % 60
            ),
        })
        .collect();
    std::fs::write(dir.path("in.log"), input).unwrap();
    let args = [&FILES[..], &["--input", "json", "-f", "json", "out.log"]].concat();
    let cuts = cut_everywhere(&|_| strings(&args), &dir.path("in.log"), 60);
    assert!(cuts >= 50, "only {cuts} cuts taken");
}

#[test]
fn multiline_records_after_a_power_cut_at_any_point_are_one_uninterrupted_runs() {
    let dir = Scratch::new();
    let mut input = String::new();
    for i in 0..600 {
        input.push_str(&format!(
            "2026-04-15T11:{:02}:{:02}Z ERROR failed request {i}\n",
            i / 60 % 60,
            i % 60
        ));
        // Every 5th record has more lines than --max-record-lines keeps: those are rejected.
        for j in 0..(if i % 5 == 4 { 9 } else { i % 4 }) {
            input.push_str(&format!("    at frame {j} of record {i}\n"));
        }
        if i % 11 == 10 {
            input.push_str("orphan line before any record\n");
        }
    }
    std::fs::write(dir.path("in.log"), input).unwrap();
    let args = [
        &FILES[..],
        &["--multiline", "--max-record-lines", "6", "-f", "json", "out.log"],
    ]
    .concat();
    let cuts = cut_everywhere(&|_| strings(&args), &dir.path("in.log"), 60);
    assert!(cuts >= 50, "only {cuts} cuts taken");
}

#[test]
fn a_collectors_files_after_a_power_cut_at_any_point_are_one_uninterrupted_runs() {
    use common::nats::{Server, create_stream, publish_raw};
    let server = Server::start("");
    create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    // Records ingest published, with another producer's garbage between them.
    let dir = Scratch::new();
    for round in 0..4 {
        let lines: String = (round * 300..round * 300 + 300)
            .map(|i| {
                format!(
                    "2026-04-15T12:{:02}:{:02}Z INFO collected message {i}\n",
                    i / 60 % 60,
                    i % 60
                )
            })
            .collect();
        let target = format!("{}/logs.app", server.url());
        let (code, stderr) = common::run_in(&dir, &[&target], &lines, &[]);
        assert_eq!(code, Some(0), "publishing: {stderr}");
        let garbage: Vec<String> = (0..25).map(|i| format!("garbage {round}.{i}")).collect();
        let payloads: Vec<&[u8]> = garbage.iter().map(|m| m.as_bytes()).collect();
        publish_raw(&server.url(), "logs.app", &payloads);
    }
    std::fs::write(dir.path("in.log"), "").unwrap();
    let from = format!("{}/LOGS", server.url());
    // Each cut point has a consumer of its own: its first run starts on a fresh disk.
    let args = |point: u64| {
        let consumer = format!("point{point}");
        let mut args = strings(&[
            "--from",
            &from,
            "--consumer",
            &consumer,
            "--until-idle",
            "0.1",
            "-f",
            "json",
        ]);
        args.extend(strings(&[&FILES[..], &["out.log"]].concat()));
        args
    };
    let cuts = cut_everywhere(&args, &dir.path("in.log"), 40);
    assert!(cuts >= 30, "only {cuts} cuts taken");
}
