//! `--from PATH --checkpoint` on a log the real logrotate rotates (Debian's `logrotate`, each
//! test with its own configuration and state file): a writer appends numbered lines while
//! cron-like runs, some SIGKILLed, read the set; at the end OUTPUT holds every line once, in
//! order. Also: a file set up by hand the ways rotation can leave it, and loss made loud.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{BIN, Scratch};

/// `logrotate`, or a failure that says how to get it.
fn logrotate() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join("logrotate");
        if path.exists() {
            return path;
        }
    }
    panic!("these tests drive the real logrotate: apt-get install logrotate (.ci/test does)");
}

/// Line `n` as the writer writes it.
fn line(n: u64) -> String {
    let (h, m, s) = (n / 3600 % 24, n / 60 % 60, n % 60);
    format!("2026-12-05T{h:02}:{m:02}:{s:02}Z INFO n={n:07}\n")
}

/// The numbers of the records in a text OUTPUT, in order.
fn numbers(output: &str) -> Vec<u64> {
    output
        .lines()
        .map(|l| {
            let n = l
                .rsplit_once("n=")
                .unwrap_or_else(|| panic!("not a record: {l:?}"))
                .1;
            n.parse().unwrap()
        })
        .collect()
}

/// Asserts OUTPUT holds lines 0..`written`, each once, in order.
fn assert_each_line_once(output: &str, written: u64, what: &str) {
    let got = numbers(output);
    let first_wrong = got.iter().zip(0..).find(|(n, i)| **n != *i);
    assert!(
        got.len() as u64 == written && first_wrong.is_none(),
        "{what}: {} records for {written} lines written; first out of place: {first_wrong:?} (around: {:?})",
        got.len(),
        first_wrong.map(|(_, i)| &got[(i as usize).saturating_sub(3)..(i as usize + 3).min(got.len())])
    );
}

/// A program writing numbered lines to `app.log` the way a logger does: through a file it keeps
/// open and writes on to while logrotate works, reopening it when told (logrotate's
/// `postrotate` HUP); `copy` and `copytruncate` need no reopen.
struct Writer {
    next: Arc<AtomicU64>,
    reopen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(path: PathBuf) -> Writer {
        // ~2,000-5,000 lines a second.
        Writer::paced(path, 5, Duration::from_millis(1))
    }

    /// A writer of `lines` lines a write, a write every `pause`.
    fn paced(path: PathBuf, lines: u64, pause: Duration) -> Writer {
        let next = Arc::new(AtomicU64::new(0));
        let reopen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (next, reopen, stop) = (next.clone(), reopen.clone(), stop.clone());
            std::thread::spawn(move || {
                let open = || {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .unwrap()
                };
                let mut file = open();
                while !stop.load(Ordering::Relaxed) {
                    if reopen.swap(false, Ordering::Relaxed) {
                        file = open();
                    }
                    let n = next.load(Ordering::Relaxed);
                    // Whole lines only.
                    let batch: String = (n..n + lines).map(line).collect();
                    file.write_all(batch.as_bytes()).unwrap();
                    next.store(n + lines, Ordering::Relaxed);
                    std::thread::sleep(pause);
                }
            })
        };
        Writer {
            next,
            reopen,
            stop,
            thread: Some(thread),
        }
    }

    /// Runs `rotate` while the writer writes on (to the renamed file, until told), then has it
    /// reopen the log, as a `postrotate` signal does.
    fn rotate(&self, rotate: impl FnOnce()) {
        rotate();
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Stops writing; returns how many lines were written.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.next.load(Ordering::Relaxed)
    }
}

/// The numbers of the lines the set's files in `dir` hold now (decompressed): what logrotate
/// kept of what was written. `copytruncate` loses the lines written between its copy and its
/// truncate, and `compress` those written to the rotated file after gzip read it: no reader can
/// have them but by chance.
fn kept_lines(dir: &Scratch) -> std::collections::BTreeSet<u64> {
    kept_lines_of(&dir.path("app.log"))
}

/// [`kept_lines`] of the set of the log at `log`.
fn kept_lines_of(log: &Path) -> std::collections::BTreeSet<u64> {
    let mut kept = std::collections::BTreeSet::new();
    let log_name = log.file_name().unwrap().to_string_lossy().into_owned();
    for entry in std::fs::read_dir(log.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with(&log_name) {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let text = if name.ends_with(".gz") {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text).unwrap();
            text
        } else {
            raw
        };
        for line in String::from_utf8_lossy(&text).lines() {
            if let Some(n) = line.rsplit_once("n=").and_then(|(_, n)| n.parse().ok()) {
                kept.insert(n);
            }
        }
    }
    kept
}

/// Asserts OUTPUT holds each line of 0..`written` at most once, in order, and every line the
/// files still hold (`kept`); with `lossless`, logrotate kept them all.
fn assert_kept_lines_once(
    output: &str,
    kept: &std::collections::BTreeSet<u64>,
    written: u64,
    lossless: bool,
    what: &str,
) {
    let got = numbers(output);
    let disorder = got.windows(2).position(|w| w[0] >= w[1]);
    assert!(
        disorder.is_none(),
        "{what}: a line twice or out of order at record {disorder:?} (around: {:?})",
        disorder.map(|i| &got[i.saturating_sub(3)..(i + 4).min(got.len())])
    );
    assert!(
        got.last().is_none_or(|&n| n < written),
        "{what}: a line never written"
    );
    let missing: Vec<u64> = kept
        .iter()
        .copied()
        .filter(|n| got.binary_search(n).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} lines the files hold are not in OUTPUT, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let dropped = written - kept.len() as u64;
    assert!(
        !lossless || dropped == 0,
        "{what}: logrotate lost {dropped} lines, none expected"
    );
    eprintln!(
        "{what}: {} of {written} lines out, {dropped} lost by logrotate",
        got.len()
    );
}

/// A logrotate configuration for `dir/app.log` with `options`, and its own state file.
struct Rotation {
    conf: PathBuf,
    state: PathBuf,
    rotations: u32,
}

impl Rotation {
    fn new(dir: &Scratch, options: &str) -> Rotation {
        Rotation::of(dir, "app.log", options)
    }

    /// A configuration whose stanza names `logs` (a glob, as host configurations do).
    fn of(dir: &Scratch, logs: &str, options: &str) -> Rotation {
        Rotation::stanzas(dir, &[(logs, options)])
    }

    /// A configuration of a stanza per `(logs, options)`.
    fn stanzas(dir: &Scratch, stanzas: &[(&str, &str)]) -> Rotation {
        let conf = dir.path("logrotate.conf");
        let text: String = stanzas
            .iter()
            .map(|(logs, options)| {
                format!(
                    "{} {{\n  rotate 50\n  missingok\n  ifempty\n  {}\n}}\n",
                    dir.path(logs).display(),
                    options.replace(';', "\n  ")
                )
            })
            .collect();
        std::fs::write(&conf, text).unwrap();
        Rotation {
            conf,
            state: dir.path("logrotate.state"),
            rotations: 0,
        }
    }

    fn rotate(&mut self) {
        let out = Command::new(logrotate())
            .args(["-f", "-s"])
            .arg(&self.state)
            .arg(&self.conf)
            .output()
            .unwrap();
        // dateext refuses a second rotation within the same second: a skip, not a failure.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("already exists"),
            "logrotate: {stderr}"
        );
        self.rotations += u32::from(out.status.success());
    }
}

/// `ingest --from app.log --checkpoint cp out.log` in `dir`, started.
fn start_run(dir: &Scratch, extra: &[&str]) -> Child {
    start_run_to(dir, extra, "out.log")
}

/// `ingest --from app.log --checkpoint cp OUTPUT` in `dir`, started.
fn start_run_to(dir: &Scratch, extra: &[&str], output: &str) -> Child {
    Command::new(BIN)
        .env_clear()
        .current_dir(dir.path(""))
        .args([
            "-q",
            "--from",
            "app.log",
            "--checkpoint",
            "cp",
            "--rejects",
            "rejects.tsv",
        ])
        .args(extra)
        .arg(output)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a run; its exit code (128 + the signal that ended it) and stderr (bounded: a run past a minute fails the test).
fn wait(child: Child) -> (Option<i32>, String) {
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    let _ = watchdog.join();
    // A drained run dies by the signal it got: 128 + its number, as a shell shows it.
    let code = out
        .status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&out.status).map(|s| 128 + s));
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// SIGTERM to a run, which drains it: it ends by the signal (143). Returns its stderr.
fn drain(run: Child) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status();
    let (code, stderr) = wait(run);
    assert_eq!(code, Some(143), "{stderr}");
    stderr
}

/// A small random source (xorshift), seeded from the clock and printed, for the kill points.
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        // DICE_SEED replays a failed run's choices (its timing still differs).
        let seed = std::env::var("DICE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("dice seed {seed}");
        Dice(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A third of the time, SIGKILLs the run `child` within `within_ms` (1 returned); else waits
/// for it to end with 0 (0 returned).
fn kill_or_wait(child: Child, dice: &mut Dice, within_ms: u64, what: &str) -> u32 {
    if dice.below(3) == 0 {
        std::thread::sleep(Duration::from_millis(dice.below(within_ms)));
        let _ = Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status();
        let _ = wait(child);
        1
    } else {
        let (code, stderr) = wait(child);
        assert_eq!(code, Some(0), "{what}: {stderr}");
        0
    }
}

/// Cron-like runs every ~100 ms while the writer writes and logrotate rotates in `options`' way
/// (the writer writing on while it works); a third of the runs SIGKILLed at a random moment;
/// sometimes two or three rotations with no run between. Then the writer stops, a last run
/// reads the rest: every line the files hold once, in order (`lossless`: they hold them all).
fn cron_like(options: &str, min_rotations: u32, lossless: bool) {
    let dir = Scratch::new();
    let mut rotation = Rotation::new(&dir, options);
    let writer = Writer::start(dir.path("app.log"));
    let mut dice = Dice::new();
    let mut killed = 0;
    for round in 0..45 {
        match dice.below(6) {
            0 => {
                // Several rotations, no run between.
                for _ in 0..2 + dice.below(2) {
                    writer.rotate(|| rotation.rotate());
                }
            }
            1 | 2 => writer.rotate(|| rotation.rotate()),
            _ => {}
        }
        killed += kill_or_wait(
            start_run(&dir, &[]),
            &mut dice,
            60,
            &format!("round {round} ({options})"),
        );
        std::thread::sleep(Duration::from_millis(dice.below(100)));
    }
    let written = writer.stop();
    let (code, stderr) = wait(start_run(&dir, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        rotation.rotations >= min_rotations,
        "only {} rotations ({options})",
        rotation.rotations
    );
    assert!(killed > 0);
    let out = common::read(&dir.path("out.log"));
    assert_kept_lines_once(&out, &kept_lines(&dir), written, lossless, options);
    assert_eq!(std::fs::read(dir.path("rejects.tsv")).unwrap(), b"", "{options}");
}

#[test]
fn create_mode_cron_runs_with_kills_give_each_line_once_in_order() {
    cron_like("create", 5, true);
}

#[test]
fn copy_mode_cron_runs_with_kills_give_each_line_once_in_order() {
    // A snapshot each rotation, the log itself untouched: none of it is read twice.
    cron_like("copy", 5, true);
}

#[test]
fn copytruncate_cron_runs_with_kills_give_each_line_once_in_order() {
    // Lines written between its copy and its truncate are lost by logrotate.
    cron_like("copytruncate", 5, false);
}

#[test]
fn compress_with_delaycompress_cron_runs_with_kills_give_each_line_once_in_order() {
    cron_like("create;compress;delaycompress", 5, true);
}

#[test]
fn compress_at_once_cron_runs_with_kills_give_each_line_once_in_order() {
    // Lines written to the rotated file after gzip read it are lost by logrotate.
    cron_like("create;compress", 5, false);
}

#[test]
fn dateext_compress_cron_runs_with_kills_give_each_line_once_in_order() {
    // One rotation a second at most: dateext names files by the second.
    cron_like("create;compress;dateext;dateformat -%Y%m%d-%s", 2, false);
}

/// Runs ingest on the set in `dir` to its end.
fn run_ok(dir: &Scratch) -> String {
    let (code, stderr) = wait(start_run(dir, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    stderr
}

fn write(dir: &Scratch, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.path(name), bytes).unwrap();
}

fn append(dir: &Scratch, name: &str, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path(name))
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn gzip(dir: &Scratch, name: &str) {
    let status = Command::new("gzip").arg(dir.path(name)).status().unwrap();
    assert!(status.success());
}

fn lines(range: std::ops::Range<u64>) -> String {
    range.map(line).collect()
}

#[test]
fn a_first_run_reads_the_rotated_files_too_oldest_first() {
    let dir = Scratch::new();
    write(&dir, "app.log.3", lines(0..10));
    gzip(&dir, "app.log.3");
    write(&dir, "app.log.2", lines(10..20));
    let zstd = zstd::encode_all(lines(20..30).as_bytes(), 3).unwrap();
    write(&dir, "app.log.2.zst.tmp", zstd);
    // A zstd file named as logrotate's compresscmd would name it.
    std::fs::rename(dir.path("app.log.2"), dir.path("app.log.2.x")).unwrap();
    std::fs::rename(dir.path("app.log.2.zst.tmp"), dir.path("app.log.1.zst")).unwrap();
    std::fs::rename(dir.path("app.log.2.x"), dir.path("app.log.2")).unwrap();
    write(&dir, "app.log", lines(30..35));
    write(&dir, "app.log.bak", lines(100..110));
    run_ok(&dir);
    assert_each_line_once(&dir.read("out.log"), 35, "first run");
    // A second run has nothing to read.
    run_ok(&dir);
    assert_each_line_once(&dir.read("out.log"), 35, "second run");
}

#[test]
fn a_short_file_that_grows_and_files_with_the_same_first_4_kib_are_not_mistaken() {
    let dir = Scratch::new();
    // 100 bytes: fewer than the fingerprint.
    write(&dir, "app.log", &line(0)[..]);
    run_ok(&dir);
    append(&dir, "app.log", &lines(1..200));
    run_ok(&dir);
    assert_each_line_once(&dir.read("out.log"), 200, "grown");

    // Every file of this program starts with the same banner, longer than the fingerprint.
    let dir = Scratch::new();
    let banner: String = (0..80)
        .map(|i| format!("2026-12-05T00:00:00Z INFO banner line {i:03} ..................\n"))
        .collect();
    assert!(banner.len() > 4096);
    let banner_lines = 80;
    let body = |range: std::ops::Range<u64>| format!("{banner}{}", lines(range));
    write(&dir, "app.log", body(1000..1010));
    run_ok(&dir);
    // Rotated, a new file with the same banner, and more lines: then the old one rotated away
    // for good (read to its end) while the new one has grown past the old one's length.
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", body(2000..2005));
    run_ok(&dir);
    std::fs::remove_file(dir.path("app.log.1")).unwrap();
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    append(&dir, "app.log.1", &lines(2005..2030));
    write(&dir, "app.log", body(3000..3003));
    run_ok(&dir);
    let got = numbers(
        &dir.read("out.log")
            .lines()
            .filter(|l| !l.contains("banner"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let want: Vec<u64> = (1000..1010).chain(2000..2030).chain(3000..3003).collect();
    assert_eq!(got, want);
    let banners = dir
        .read("out.log")
        .lines()
        .filter(|l| l.contains("banner"))
        .count();
    assert_eq!(banners, 3 * banner_lines);
}

#[test]
fn a_new_file_on_the_old_files_inode_is_read_from_its_first_line() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..50));
    run_ok(&dir);
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let old = ino(&dir.path("app.log"));
    // Deleted, and files made until one gets the old inode back (the file system hands a freed
    // inode out again soon; bounded).
    std::fs::remove_file(dir.path("app.log")).unwrap();
    let mut reused = false;
    for i in 0..2000 {
        let path = dir.path(&format!("filler{i}"));
        std::fs::write(&path, "").unwrap();
        if ino(&path) == old {
            std::fs::rename(&path, dir.path("app.log")).unwrap();
            reused = true;
            break;
        }
    }
    if !reused {
        // tmpfs and ext4 both give it back within a few files; a file system that never does
        // cannot show this, and says so rather than passing.
        panic!("the inode never came back in 2000 files on this file system");
    }
    write(&dir, "app.log.tmp", lines(1000..1020));
    let text = std::fs::read(dir.path("app.log.tmp")).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path("app.log"))
        .unwrap()
        .write_all(&text)
        .unwrap();
    assert_eq!(ino(&dir.path("app.log")), old);
    let (code, stderr) = wait(start_run(&dir, &[]));
    // The old file is gone: whatever was written to it after the last run cannot be known.
    assert_eq!(code, Some(66), "{stderr}");
    let got = numbers(&dir.read("out.log"));
    let want: Vec<u64> = (0..50).chain(1000..1020).collect();
    assert_eq!(got, want);
}

#[test]
fn a_file_rotated_away_before_its_end_was_read_is_loud() {
    let dir = Scratch::new();
    let mut rotation = Rotation::new(&dir, "create");
    std::fs::write(
        dir.path("logrotate.conf"),
        format!("{} {{\n  rotate 1\n  create\n}}\n", dir.path("app.log").display()),
    )
    .unwrap();
    write(&dir, "app.log", lines(0..100));
    run_ok(&dir);
    append(&dir, "app.log", &lines(100..130));
    // Two rotations with `rotate 1` and no run between: the file read last is deleted with 30
    // lines unread.
    rotation.rotate();
    append(&dir, "app.log", &lines(130..140));
    rotation.rotate();
    append(&dir, "app.log", &lines(140..150));
    let (code, stderr) = wait(start_run(
        &dir,
        &["--stats-json", "stats.json", "--metrics-textfile", "m.prom"],
    ));
    assert_eq!(code, Some(66), "{stderr}");
    assert!(
        stderr.contains("ingest: error:")
            && stderr.contains("/app.log' (as last seen) was gone before its end was read")
            && stderr.contains("after line 100"),
        "{stderr}"
    );
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    assert_eq!(stats["lost_files"], 1);
    assert!(dir.read("m.prom").contains("ingest_lost_files 1\n"));
    let want: Vec<u64> = (0..100).chain(130..150).collect();
    assert_eq!(numbers(&dir.read("out.log")), want);
    // Said once: the next run is quiet and reads on.
    append(&dir, "app.log", &lines(150..160));
    run_ok(&dir);
    assert_eq!(numbers(&dir.read("out.log")).len(), 130);
}

#[test]
fn a_cut_short_rotated_gz_gives_its_good_lines_then_an_error_naming_it_and_the_rest_is_read() {
    let dir = Scratch::new();
    write(&dir, "app.log.2", lines(0..3000));
    gzip(&dir, "app.log.2");
    // Cut short, as a disk that filled up while logrotate compressed leaves it.
    let gz = std::fs::read(dir.path("app.log.2.gz")).unwrap();
    write(&dir, "app.log.2.gz", &gz[..gz.len() / 2]);
    write(&dir, "app.log.1", lines(3000..3010));
    write(&dir, "app.log", lines(3010..3020));
    let (code, stderr) = wait(start_run(&dir, &["--stats-json", "stats.json"]));
    assert_eq!(code, Some(74), "{stderr}");
    assert!(stderr.contains("app.log.2.gz' (gzip) is damaged"), "{stderr}");
    let got = numbers(&dir.read("out.log"));
    let good = got.iter().take_while(|&&n| n < 3000).count() as u64;
    assert!(good > 0 && good < 3000, "{good} lines of the damaged file");
    assert!(
        got == (0..good).chain(3000..3020).collect::<Vec<_>>(),
        "not each line once in order"
    );
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    assert_eq!(stats["damaged_inputs"], 1);
    assert_eq!(
        stderr.matches("is damaged").count(),
        1,
        "said more than once:\n{stderr}"
    );
    // Said once: the next run does not read the damaged file again.
    run_ok(&dir);
    assert_eq!(numbers(&dir.read("out.log")).len() as u64, good + 20);
}

#[test]
fn a_checkpoint_of_standard_input_or_of_another_set_is_refused() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..5));
    write(&dir, "in.log", lines(0..5));
    let (code, stderr) = common::run_in(&dir, &["--checkpoint", "cp", "out.log"], &lines(0..5), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = wait(start_run(&dir, &[]));
    assert_eq!(code, Some(74), "{stderr}");
    assert!(stderr.contains("made for standard input"), "{stderr}");
    let (code, stderr) = common::run_in(&dir, &["--from", "missing.log", "out2.log"], "", &[]);
    assert_eq!(code, Some(66), "{stderr}");
    assert!(stderr.contains("no file"), "{stderr}");
}

#[test]
fn a_log_in_a_directory_that_is_not_there_is_no_input_with_or_without_a_checkpoint() {
    let dir = Scratch::new();
    for extra in [&["--checkpoint", "cp"][..], &[]] {
        let mut args = vec!["--from", "missing_dir/app.log"];
        args.extend_from_slice(extra);
        args.push("out.log");
        let (code, stderr) = common::run_in(&dir, &args, "", &[]);
        assert_eq!(code, Some(66), "{args:?}: {stderr}");
        assert!(stderr.contains("no file 'missing_dir/app.log'"), "{stderr}");
    }
}

#[test]
fn a_follower_writing_to_a_closed_pipe_ends_quietly_with_exit_0() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..300));
    let mut run = Command::new(BIN)
        .env_clear()
        .current_dir(dir.path(""))
        .args(["-q", "--from", "app.log", "--follow", "--checkpoint", "cp", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -3`: three lines read, then the pipe closed (by the thread that reads them).
    let stdout = run.stdout.take().unwrap();
    let (read_tx, read_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = std::io::BufReader::new(stdout);
        for _ in 0..3 {
            let _ = std::io::BufRead::read_line(&mut stdout, &mut String::new());
        }
        // Closed before the lines below are appended: written into a pipe still open, they
        // would meet no EPIPE.
        drop(stdout);
        let _ = read_tx.send(());
    });
    if read_rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = run.kill();
        panic!("three lines not written within 30 s");
    }
    append(&dir, "app.log", &lines(300..310));
    // Bounded: a follower that goes on (it restarted the pipeline on every EPIPE) fails here.
    let deadline = Instant::now() + Duration::from_secs(20);
    while run.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!("still running 20 s after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, stderr) = wait(run);
    assert_eq!(code, Some(0), "{stderr}");
}

/// `ingest --from app.log --follow --checkpoint cp out.log` in `dir`, started.
fn start_follow(dir: &Scratch) -> Child {
    start_run(dir, &["--follow"])
}

/// Waits (bounded: 30 s) until OUTPUT holds `n` records or more.
fn wait_for_records(dir: &Scratch, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let have = std::fs::read_to_string(dir.path("out.log")).map_or(0, |o| o.lines().count() as u64);
        if have >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{have} of {n} records after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `--follow` run while the writer writes and logrotate rotates in `options`' way (the
/// writer writing on while it works), SIGKILLed and started again now and then; at the end every
/// line the files hold once, in order (`lossless`: they hold them all), and SIGTERM drains it
/// (143).
fn follow_with_kills(options: &str, rounds: u32, lossless: bool) {
    let dir = Scratch::new();
    let mut rotation = Rotation::new(&dir, options);
    let writer = Writer::start(dir.path("app.log"));
    let mut dice = Dice::new();
    let mut run = start_follow(&dir);
    let mut kills = 0;
    for _ in 0..rounds {
        if dice.below(3) == 0 {
            writer.rotate(|| rotation.rotate());
        }
        // Paces the events (not a synchronisation: any moment is a fair one to kill at).
        std::thread::sleep(Duration::from_millis(dice.below(150)));
        if dice.below(4) == 0 {
            let _ = Command::new("kill").args(["-9", &run.id().to_string()]).status();
            let _ = wait(run);
            kills += 1;
            run = start_follow(&dir);
        }
    }
    let written = writer.stop();
    let kept = kept_lines(&dir);
    // Bounded: 30 s for the last of them to come out (the assertion below says what is missing).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let got: std::collections::BTreeSet<u64> =
            numbers(&common::read(&dir.path("out.log"))).into_iter().collect();
        if kept.is_subset(&got) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = drain(run);
    assert!(
        kills > 0 && rotation.rotations >= 2,
        "{kills} kills, {} rotations",
        rotation.rotations
    );
    let out = common::read(&dir.path("out.log"));
    // What the last run said, should a line be missing.
    let what = format!("{options} (the last run said: {stderr:?})");
    assert_kept_lines_once(&out, &kept, written, lossless, &what);
}

#[test]
fn follow_in_create_mode_killed_and_restarted_gives_each_line_once_in_order() {
    follow_with_kills("create", 30, true);
}

#[test]
fn follow_with_copy_killed_and_restarted_gives_each_line_once_in_order() {
    follow_with_kills("copy", 30, true);
}

#[test]
fn follow_with_copytruncate_killed_and_restarted_gives_each_line_once_in_order() {
    follow_with_kills("copytruncate", 30, false);
}

#[test]
fn follow_with_compress_killed_and_restarted_gives_each_line_once_in_order() {
    follow_with_kills("create;compress", 30, false);
}

#[test]
fn follow_with_delaycompress_and_dateext_killed_and_restarted_gives_each_line_once_in_order() {
    // dateext rotates once a second at most: more rounds.
    follow_with_kills(
        "create;compress;delaycompress;dateext;dateformat -%Y%m%d-%s",
        60,
        true,
    );
}

#[test]
fn a_follower_commits_while_idle_and_a_rerun_after_a_kill_writes_nothing_twice() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..100));
    let run = start_follow(&dir);
    wait_for_records(&dir, 100);
    append(&dir, "app.log", &lines(100..110));
    wait_for_records(&dir, 110);
    // Idle from here: the checkpoint covers every line within seconds.
    wait_for_commit(&dir);
    let _ = Command::new("kill").args(["-9", &run.id().to_string()]).status();
    let _ = wait(run);
    let (code, stderr) = wait(start_run(&dir, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_each_line_once(&dir.read("out.log"), 110, "after the kill");
}

/// The lines a child writes to `out`, as a thread reads them.
fn lines_of(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
            let Ok(line) = line else { break };
            if tx.send(line + "\n").is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line from [`lines_of`]; bounded: after 30 s without one, the test fails.
fn next_line(lines: &std::sync::mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(30))
        .expect("a line within 30 s")
}

#[test]
fn follow_to_standard_output_without_a_checkpoint_prints_appended_lines_and_drains_on_sigint() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..3));
    let mut run = Command::new(BIN)
        .env_clear()
        .current_dir(dir.path(""))
        .args(["-q", "--from", "app.log", "--follow", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines_of(run.stdout.take().unwrap());
    let read_records = |n: usize| (0..n).map(|_| next_line(&stdout)).collect::<String>();
    assert_eq!(numbers(&read_records(3)), [0, 1, 2]);
    append(&dir, "app.log", &lines(3..5));
    assert_eq!(numbers(&read_records(2)), [3, 4]);
    // Rotated: the new file from its first line.
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", lines(5..6));
    assert_eq!(numbers(&read_records(1)), [5]);
    let _ = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status();
    let (code, stderr) = wait(run);
    assert_eq!(code, Some(130), "{stderr}");
}

/// A run on `dir`'s set with the stats and the textfile: the lag they give (bytes, seconds),
/// the same in both.
fn lag(dir: &Scratch) -> (u64, f64) {
    let (code, stderr) = wait(start_run(
        dir,
        &["--stats-json", "stats.json", "--metrics-textfile", "m.prom"],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    let bytes = stats["lag"]["bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("{stats}"));
    let seconds = stats["lag"]["seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("{stats}"));
    let textfile = dir.read("m.prom");
    let metric = |name: &str| -> f64 {
        let found = textfile.lines().find_map(|l| l.strip_prefix(&format!("{name} ")));
        found
            .unwrap_or_else(|| panic!("no {name}:\n{textfile}"))
            .parse()
            .unwrap()
    };
    assert_eq!(metric("ingest_lag_bytes"), bytes as f64);
    assert!((metric("ingest_lag_seconds") - seconds).abs() < 1e-9);
    (bytes, seconds)
}

#[test]
fn the_stats_say_how_far_behind_the_run_is() {
    let stamp = |ago: i64| {
        let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(ago);
        t.format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    // Everything read: no lag, however old the records (235 days) or new (2 h ahead).
    for ago in [235 * 86_400, 90, -7_200] {
        let dir = Scratch::new();
        write(&dir, "app.log.1", lines(0..10));
        write(&dir, "app.log", format!("{} INFO n=0000010\n", stamp(ago)));
        assert_eq!(lag(&dir), (0, 0.0), "records {ago} s old");
        // A run with nothing new says the same.
        assert_eq!(lag(&dir), (0, 0.0), "records {ago} s old, a rerun");
    }
    // A last line still being written is unread: its bytes exactly, and the time since the last
    // record written (never negative).
    for (ago, seconds) in [(90, 90.0..150.0), (-7_200, 0.0..0.001)] {
        let dir = Scratch::new();
        let partial = format!("{} INFO n=0000011 still being wri", stamp(0));
        write(
            &dir,
            "app.log",
            format!("{} INFO n=0000010\n{partial}", stamp(ago)),
        );
        let (bytes, lag_seconds) = lag(&dir);
        assert_eq!(bytes, partial.len() as u64, "records {ago} s old");
        assert!(
            seconds.contains(&lag_seconds),
            "records {ago} s old: lag {lag_seconds} s"
        );
    }
}

#[test]
fn auto_decides_per_file_and_a_multiline_record_never_spans_two_files() {
    let dir = Scratch::new();
    let json: String = (0..10)
        .map(|n| format!("{{\"ts\":\"2026-12-05T00:00:{n:02}Z\",\"level\":\"info\",\"msg\":\"n={n:07}\"}}\n"))
        .collect();
    write(&dir, "app.log.1", json);
    write(&dir, "app.log", lines(10..20));
    run_ok(&dir);
    assert_each_line_once(&dir.read("out.log"), 20, "json, then plain");
    assert_eq!(dir.read("rejects.tsv"), "");

    let dir = Scratch::new();
    write(
        &dir,
        "app.log.1",
        format!("{}  at frame 1\n  at frame 2\n", lines(0..5)),
    );
    write(
        &dir,
        "app.log",
        format!("  at the start of the new file\n{}", lines(5..10)),
    );
    let (code, stderr) = wait(start_run(&dir, &["--multiline", "-f", "json"]));
    assert_eq!(code, Some(0), "{stderr}");
    let out = dir.read("out.log");
    let records: Vec<&str> = out.lines().collect();
    assert_eq!(records.len(), 10, "{out}");
    assert!(
        records[4].contains("at frame 2") && !records[4].contains("new file"),
        "{}",
        records[4]
    );
    // The new file's first line continues nothing: rejected, not joined to the old file's record.
    assert!(dir.read("rejects.tsv").contains("at the start of the new file"));
}

#[test]
fn a_follower_publishing_to_jetstream_sends_each_line_once_across_a_rotation_and_a_kill() {
    let server = common::nats::Server::start("");
    common::nats::create_stream(&server.url(), "LOGS", &["logs.>"], 1, Duration::from_secs(120));
    let dir = Scratch::new();
    let target = format!("{}/logs.app", server.url());
    let follow = |dir: &Scratch| start_run_to(dir, &["--follow"], &target);
    let stored = || -> Vec<u64> {
        common::nats::read_stream(&server.url(), "LOGS")
            .iter()
            .map(|m| {
                let text = String::from_utf8_lossy(&m.payload);
                text.split("n=").nth(1).unwrap()[..7].parse().unwrap()
            })
            .collect()
    };
    let wait_stored = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while stored().len() < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages after 30 s",
                stored().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    write(&dir, "app.log", lines(0..100));
    let run = follow(&dir);
    wait_stored(100);
    append(&dir, "app.log", &lines(100..120));
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", lines(120..150));
    wait_stored(150);
    let _ = Command::new("kill").args(["-9", &run.id().to_string()]).status();
    let _ = wait(run);
    append(&dir, "app.log", &lines(150..160));
    let run = follow(&dir);
    wait_stored(160);
    drain(run);
    assert_eq!(stored(), (0..160).collect::<Vec<u64>>());
}

#[test]
fn a_follower_started_before_the_log_exists_waits_for_it_and_drains_on_sigterm() {
    let dir = Scratch::new();
    // Not there yet: the follower waits instead of failing, and a SIGTERM then ends it cleanly.
    let mut run = start_follow(&dir);
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        assert!(
            run.try_wait().unwrap().is_none(),
            "the follower ended though it was to wait for the log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drain(run);
    // Started again, it reads the log once it is there.
    let run = start_follow(&dir);
    write(&dir, "app.log", lines(0..10));
    wait_for_records(&dir, 10);
    drain(run);
    assert_each_line_once(&dir.read("out.log"), 10, "created after the start");
}

#[test]
fn a_rotated_files_last_line_without_newline_is_written_once_a_newer_file_has_lines() {
    let dir = Scratch::new();
    let mut unfinished = lines(0..100);
    unfinished.pop();
    write(&dir, "app.log", &unfinished);
    run_ok(&dir);
    assert_each_line_once(&dir.read("out.log"), 99, "the last line left for later");
    // Rotated (logrotate's `create`), and the program writes to the new file: line 99 is final.
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", lines(100..200));
    run_ok(&dir);
    assert_each_line_once(&dir.read("out.log"), 200, "after the rotation");
    run_ok(&dir);
    assert_each_line_once(&dir.read("out.log"), 200, "a rerun");

    // Followed: the same, once the program writes to the new file.
    let dir = Scratch::new();
    write(&dir, "app.log", &unfinished);
    let run = start_follow(&dir);
    wait_for_records(&dir, 99);
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", lines(100..200));
    wait_for_records(&dir, 200);
    drain(run);
    assert_each_line_once(&dir.read("out.log"), 200, "followed");
}

#[test]
fn a_follower_reads_what_the_program_writes_to_the_renamed_log_before_the_new_files_lines() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..100));
    // The program's descriptor: it writes there until it is told to reopen PATH.
    let mut program = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path("app.log"))
        .unwrap();
    let run = start_follow(&dir);
    wait_for_records(&dir, 100);
    // logrotate's `create`: renamed, a new empty file.
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", "");
    // The program's own pace, not a synchronisation: its `postrotate` signal comes a moment
    // later, and it writes on to the old file meanwhile (any moment must give the same output).
    std::thread::sleep(Duration::from_millis(500));
    program.write_all(lines(100..200).as_bytes()).unwrap();
    wait_for_records(&dir, 200);
    // Reopened: the new file's lines come after the old file's.
    let mut program = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path("app.log"))
        .unwrap();
    program.write_all(lines(200..300).as_bytes()).unwrap();
    wait_for_records(&dir, 300);
    drain(run);
    assert_each_line_once(&dir.read("out.log"), 300, "late writes to the renamed log");
}

/// Follows `app.log` in `dir` (200 lines), has `rotate` append 10 lines and rotate it once they
/// are out, and expects 220 lines in all and no loss said: nothing was unread.
fn follow_and_expect_no_loss(dir: &Scratch, what: &str, rotate: impl FnOnce()) {
    let run = start_run_to(dir, &["--follow", "--stats-json", "stats.json"], "out.log");
    wait_for_records(dir, 200);
    rotate();
    wait_for_records(dir, 220);
    let stderr = drain(run);
    assert!(
        !stderr.contains("lost"),
        "{what}: a loss said where there is none:\n{stderr}"
    );
    let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
    assert_eq!(stats["lost_files"], 0, "{what}: {stats}");
    assert_each_line_once(&dir.read("out.log"), 220, what);
}

#[test]
fn a_followed_log_deleted_or_rotated_beside_its_links_target_after_it_was_read_is_not_lost() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..200));
    follow_and_expect_no_loss(&dir, "deleted, then written anew", || {
        append(&dir, "app.log", &lines(200..210));
        wait_for_records(&dir, 210);
        std::fs::remove_file(dir.path("app.log")).unwrap();
        write(&dir, "app.log", lines(210..220));
    });

    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..200));
    follow_and_expect_no_loss(&dir, "appended, deleted and written anew at once", || {
        append(&dir, "app.log", &lines(200..210));
        std::fs::remove_file(dir.path("app.log")).unwrap();
        write(&dir, "app.log", lines(210..220));
    });

    // A link to the log, as /var/log/containers/ has: rotated beside its target.
    let dir = Scratch::new();
    std::fs::create_dir(dir.path("real")).unwrap();
    write(&dir, "real/app.log", lines(0..200));
    std::os::unix::fs::symlink("real/app.log", dir.path("app.log")).unwrap();
    follow_and_expect_no_loss(&dir, "a link's target rotated", || {
        append(&dir, "real/app.log", &lines(200..210));
        std::fs::rename(dir.path("real/app.log"), dir.path("real/app.log.1")).unwrap();
        write(&dir, "real/app.log", lines(210..220));
    });
}

#[test]
fn a_run_between_copytruncates_copy_and_its_truncate_reads_nothing_twice_and_reports_no_loss() {
    // The copy holds just what was read.
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..200));
    run_ok(&dir);
    std::fs::copy(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    run_ok(&dir);
    write(&dir, "app.log", "");
    let stderr = run_ok(&dir);
    assert!(!stderr.contains("lost"), "{stderr}");
    assert_each_line_once(&dir.read("out.log"), 200, "copy as long as what was read");

    // The copy holds more than was read, and the log more than the copy when the run lands.
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..200));
    run_ok(&dir);
    append(&dir, "app.log", &lines(200..250));
    std::fs::copy(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    append(&dir, "app.log", &lines(250..300));
    run_ok(&dir);
    write(&dir, "app.log", lines(300..310));
    let stderr = run_ok(&dir);
    assert!(!stderr.contains("lost"), "{stderr}");
    assert_each_line_once(&dir.read("out.log"), 310, "copy longer than what was read");
    run_ok(&dir);
    assert_each_line_once(&dir.read("out.log"), 310, "a rerun");

    // Killed before its first commit on the log, a run leaves the copy to be read from where the
    // log was read.
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..200));
    run_ok(&dir);
    append(&dir, "app.log", &lines(200..250));
    std::fs::copy(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", lines(250..260));
    let stderr = run_ok(&dir);
    assert!(!stderr.contains("lost"), "{stderr}");
    assert_each_line_once(&dir.read("out.log"), 260, "truncated before any run saw the copy");
}

/// logrotate's `copytruncate` of `name` in `dir` to `copy`.
fn copytruncate(dir: &Scratch, name: &str, copy: &str) {
    std::fs::copy(dir.path(name), dir.path(copy)).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path(name))
        .unwrap();
    file.set_len(0).unwrap();
}

/// Waits (bounded: 10 s) until the checkpoint in `dir` has committed all of `app.log`.
fn wait_for_commit(dir: &Scratch) {
    let size = std::fs::metadata(dir.path("app.log")).unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.read("cp").contains(&format!("\ninput_bytes {size}\n")) {
        assert!(Instant::now() < deadline, "not committed:\n{}", dir.read("cp"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_follower_goes_on_when_output_is_emptied_or_rotated_away_while_it_writes() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..100));
    let run = start_follow(&dir);
    wait_for_records(&dir, 100);
    copytruncate(&dir, "out.log", "out.log.1");
    append(&dir, "app.log", &lines(100..150));
    wait_for_records(&dir, 50);
    // Drained, then started again: it goes on (it exited 74, "shorter than at the last commit").
    drain(run);
    let run = start_follow(&dir);
    append(&dir, "app.log", &lines(150..160));
    wait_for_records(&dir, 60);
    // Emptied again, committed while idle, killed, started again.
    copytruncate(&dir, "out.log", "out.log.2");
    append(&dir, "app.log", &lines(160..170));
    wait_for_records(&dir, 10);
    wait_for_commit(&dir);
    let _ = Command::new("kill").args(["-9", &run.id().to_string()]).status();
    let _ = wait(run);
    let run = start_follow(&dir);
    append(&dir, "app.log", &lines(170..180));
    wait_for_records(&dir, 20);
    // Rotated away (renamed): what was read before its next commit goes to the renamed file,
    // and from that commit on the follower writes to a new OUTPUT at its path.
    std::fs::rename(dir.path("out.log"), dir.path("out.log.3")).unwrap();
    append(&dir, "app.log", &lines(180..190));
    wait_for_commit(&dir);
    append(&dir, "app.log", &lines(190..200));
    wait_for_records(&dir, 10);
    drain(run);
    let all: String = ["out.log.1", "out.log.2", "out.log.3", "out.log"]
        .iter()
        .map(|name| dir.read(name))
        .collect();
    assert_each_line_once(&all, 200, "OUTPUT rotated three times");
}

#[test]
fn a_loss_found_while_no_file_of_the_set_is_there_is_said_once() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..200));
    run_ok(&dir);
    append(&dir, "app.log", &lines(200..210));
    std::fs::remove_file(dir.path("app.log")).unwrap();
    let (code, stderr) = wait(start_run(&dir, &[]));
    assert_eq!(code, Some(66), "{stderr}");
    assert_eq!(stderr.matches("are lost").count(), 1, "{stderr}");
    // The log is back: the loss is not said again.
    write(&dir, "app.log", lines(210..220));
    let stderr = run_ok(&dir);
    assert!(!stderr.contains("lost"), "said again:\n{stderr}");
    let want: Vec<u64> = (0..200).chain(210..220).collect();
    assert_eq!(numbers(&dir.read("out.log")), want);
}

#[test]
fn a_rotated_log_is_read_until_it_was_quiet_for_the_rotate_wait_before_the_new_file() {
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..100));
    let mut program = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path("app.log"))
        .unwrap();
    let run = start_run(&dir, &["--follow", "--rotate-wait", "3"]);
    wait_for_records(&dir, 100);
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", lines(101..110));
    // A thread of the program writes one line more to the old file after the new one has lines.
    let late = Instant::now();
    program.write_all(line(100).as_bytes()).unwrap();
    wait_for_records(&dir, 110);
    // Not before the old file was quiet for 3 s (a lower bound: a slow machine only adds).
    assert!(
        late.elapsed() >= Duration::from_secs(3),
        "the new file after {:?}",
        late.elapsed()
    );
    drain(run);
    assert_each_line_once(&dir.read("out.log"), 110, "the late line first");
}

#[test]
fn a_compressed_copy_missing_what_was_written_late_to_its_file_is_not_read_again() {
    // logrotate's `compress` without `delaycompress`: app.log.1 is renamed, the program writes
    // on to it a moment, a run reads it all, and gzip had read it before those late lines. (Of
    // a file under 4 KiB, a copy shorter than what was read is not recognised: it is read.)
    let dir = Scratch::new();
    write(&dir, "app.log", lines(0..1000));
    run_ok(&dir);
    std::fs::rename(dir.path("app.log"), dir.path("app.log.1")).unwrap();
    write(&dir, "app.log", lines(1010..1020));
    append(&dir, "app.log.1", &lines(1000..1010));
    run_ok(&dir);
    write(&dir, "app.log.1", lines(0..1000));
    gzip(&dir, "app.log.1");
    append(&dir, "app.log", &lines(1020..1030));
    let stderr = run_ok(&dir);
    assert!(!stderr.contains("lost"), "{stderr}");
    assert_each_line_once(&dir.read("out.log"), 1030, "the shorter .gz");
}

/// The numbers of a JSON OUTPUT's records, per `file`, in order.
fn numbers_per_log(output: &str) -> std::collections::BTreeMap<String, Vec<u64>> {
    let mut logs: std::collections::BTreeMap<String, Vec<u64>> = std::collections::BTreeMap::new();
    for line in output.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let file = record["file"]
            .as_str()
            .unwrap_or_else(|| panic!("no file key: {line}"));
        let message = record["message"].as_str().unwrap();
        let n = message.rsplit_once("n=").unwrap().1.parse().unwrap();
        logs.entry(file.to_owned()).or_default().push(n);
    }
    logs
}

#[test]
fn cron_runs_over_a_glob_of_logs_with_kills_give_each_line_of_each_log_once_in_order() {
    let dir = Scratch::new();
    let logs: Vec<PathBuf> = (0..4).map(|i| dir.path(&format!("l{i}/app.log"))).collect();
    for log in &logs {
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    }
    // One stanza for all of them, as a host's configuration has.
    let mut rotation = Rotation::of(&dir, "*/app.log", "create");
    let writers: Vec<Writer> = logs.iter().map(|l| Writer::start(l.clone())).collect();
    let mut dice = Dice::new();
    let run = |dir: &Scratch| {
        Command::new(BIN)
            .env_clear()
            .current_dir(dir.path(""))
            .args([
                "-q",
                "--from",
                "*/app.log",
                "--checkpoint",
                "cp",
                "--format",
                "json",
            ])
            .args(["--rejects", "rejects.tsv", "out.json"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut killed = 0;
    for round in 0..30 {
        if dice.below(3) == 0 {
            rotation.rotate();
            for writer in &writers {
                // The postrotate HUP: each program reopens its log.
                writer.rotate(|| {});
            }
        }
        killed += kill_or_wait(run(&dir), &mut dice, 80, &format!("round {round}"));
        std::thread::sleep(Duration::from_millis(dice.below(100)));
    }
    let written: Vec<u64> = writers.into_iter().map(Writer::stop).collect();
    let (code, stderr) = wait(run(&dir));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        killed > 0 && rotation.rotations >= 3,
        "{killed} kills, {} rotations",
        rotation.rotations
    );
    let per_log = numbers_per_log(&common::read(&dir.path("out.json")));
    for (log, written) in logs.iter().zip(written) {
        let got = per_log.get(&*log.to_string_lossy()).cloned().unwrap_or_default();
        let out: String = got.iter().map(|&n| format!("x n={n}\n")).collect();
        let kept = kept_lines_of(log);
        // `create` loses nothing: every line written is kept, once, in order.
        assert_kept_lines_once(&out, &kept, written, true, &log.display().to_string());
    }
    assert_eq!(std::fs::read(dir.path("rejects.tsv")).unwrap(), b"");
}

#[test]
fn a_follower_of_200_logs_under_logrotate_in_every_mode_killed_10_times_gives_each_line_once() {
    // A directory per mode, 40 logs in each, 4 of them written at ~150 lines/s; logrotate
    // rotates every log about once a second, the follower is SIGKILLed 10 times.
    const MODES: [(&str, &str, bool); 5] = [
        ("create", "create", true),
        ("copytruncate", "copytruncate", false),
        ("compress", "create;compress", false),
        ("delaycompress", "create;compress;delaycompress", true),
        (
            "dateext",
            "create;compress;delaycompress;dateext;dateformat -%Y%m%d-%s",
            true,
        ),
    ];
    let dir = Scratch::new();
    let mut logs = Vec::new();
    let mut writers = Vec::new();
    for (mode, _, lossless) in MODES {
        std::fs::create_dir_all(dir.path(mode)).unwrap();
        for i in 0..40 {
            let log = dir.path(&format!("{mode}/l{i:02}.log"));
            if i < 4 {
                writers.push(Writer::paced(log.clone(), 3, Duration::from_millis(20)));
                logs.push((log, lossless, None));
            } else {
                std::fs::write(&log, (0..3).map(line).collect::<String>()).unwrap();
                logs.push((log, true, Some(3)));
            }
        }
    }
    let globs: Vec<String> = MODES.iter().map(|(mode, ..)| format!("{mode}/*.log")).collect();
    let stanzas: Vec<(&str, &str)> = globs
        .iter()
        .zip(MODES)
        .map(|(g, (_, o, _))| (g.as_str(), o))
        .collect();
    let mut rotation = Rotation::stanzas(&dir, &stanzas);
    let follow = |dir: &Scratch| {
        common::Running::new(
            Command::new(BIN)
                .env_clear()
                .current_dir(dir.path(""))
                .args(["-q", "--from", "*/*.log", "--follow", "--checkpoint", "cp"])
                .args(["--format", "json", "--rejects", "rejects.tsv", "out.json"])
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let mut dice = Dice::new();
    let mut run = follow(&dir);
    let mut kills = 0;
    for second in 0..20 {
        rotation.rotate();
        for writer in &writers {
            writer.rotate(|| {});
        }
        // Paces the rotations (not a synchronisation: any moment is a fair one to kill at).
        std::thread::sleep(Duration::from_millis(500 + dice.below(500)));
        if second % 2 == 1 {
            run.signal("-9");
            let _ = wait(run.take());
            kills += 1;
            run = follow(&dir);
        }
    }
    let mut written = writers.into_iter().map(Writer::stop);
    let logs: Vec<(PathBuf, bool, u64)> = logs
        .into_iter()
        .map(|(log, lossless, lines)| {
            let lines = lines.unwrap_or_else(|| written.next().unwrap());
            (log, lossless, lines)
        })
        .collect();
    let kept: Vec<std::collections::BTreeSet<u64>> =
        logs.iter().map(|(log, ..)| kept_lines_of(log)).collect();
    // Bounded: 60 s for the last of them to come out (the assertions below say what is missing).
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let per_log = numbers_per_log(&common::read(&dir.path("out.json")));
        let all_out = logs.iter().zip(&kept).all(|((log, ..), kept)| {
            let got = per_log.get(&*log.to_string_lossy()).cloned().unwrap_or_default();
            kept.iter().all(|n| got.contains(n))
        });
        if all_out {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drain(run.take());
    assert_eq!(kills, 10);
    assert!(rotation.rotations >= 10, "{} rotations", rotation.rotations);
    let per_log = numbers_per_log(&common::read(&dir.path("out.json")));
    for ((log, lossless, written), kept) in logs.iter().zip(&kept) {
        let got = per_log.get(&*log.to_string_lossy()).cloned().unwrap_or_default();
        let out: String = got.iter().map(|&n| format!("x n={n}\n")).collect();
        assert_kept_lines_once(&out, kept, *written, *lossless, &log.display().to_string());
    }
    assert_eq!(std::fs::read(dir.path("rejects.tsv")).unwrap(), b"");
}
