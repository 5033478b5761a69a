//! `--progress` under a real pseudo-terminal (`script` allocates one), and without one.

mod common;

use std::process::Command;

use common::{BIN, Scratch, ingest, valid_lines};

/// Runs `shell` under `script`, whose pty becomes the command's terminal; returns what the
/// terminal showed.
fn on_a_terminal(shell: &str) -> String {
    // A real terminal type: on a "dumb" one indicatif does not draw (it cannot redraw a line).
    let out = Command::new("script")
        .args(["-qfec", shell, "/dev/null"])
        .env_clear()
        .env("TERM", "xterm")
        .output()
        .expect("script(1)");
    assert!(
        out.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A shell command feeding ingest 20k lines, a pause (a slow producer), a bad line, then 20k
/// more.
fn slow_run(dir: &Scratch, extra: &str) -> String {
    std::fs::write(dir.path("in.log"), valid_lines(20_000)).unwrap();
    let input = dir.path("in.log");
    let out = dir.path("out.log");
    format!(
        "(cat {input}; sleep 0.5; echo garbage; cat {input}) | {BIN} {extra} {out}",
        input = input.display(),
        out = out.display()
    )
}

#[test]
fn a_progress_line_appears_on_a_terminal_and_is_cleared_at_the_end() {
    let dir = Scratch::new();
    let screen = on_a_terminal(&slow_run(&dir, ""));
    assert!(
        screen.contains(" lines, ") && screen.contains("MB/s"),
        "no progress on the terminal: {screen:?}"
    );
    // The summary comes after the bar was cleared (erase-line, then the text).
    assert!(
        screen.contains("\x1b[2Kingest: 40001 lines in"),
        "bar not cleared before the summary: {screen:?}"
    );
    // A warning during the run is printed whole, on a line of its own, with the bar lifted.
    assert!(
        screen.contains("\x1b[2Kingest: warning: line 20001: not enough fields: 'garbage'\r\n"),
        "the warning tore the bar: {screen:?}"
    );
}

#[test]
fn no_progress_when_asked_not_to_even_on_a_terminal() {
    let dir = Scratch::new();
    let screen = on_a_terminal(&slow_run(&dir, "--progress never"));
    assert!(!screen.contains("MB/s") && !screen.contains('\x1b'), "{screen:?}");
    assert!(screen.contains("ingest: 40001 lines in"));
}

#[test]
fn nothing_of_the_bar_reaches_stderr_when_it_is_a_file() {
    let dir = Scratch::new();
    ingest()
        .arg(dir.path("out.log"))
        .write_stdin(valid_lines(20_000))
        .assert()
        .success()
        .stderr(predicates::str::is_match("^ingest: 20000 lines in [^\r\x1b]*\n$").unwrap());
}

#[test]
fn a_regular_file_on_stdin_gets_a_percentage_and_an_eta() {
    let dir = Scratch::new();
    std::fs::write(dir.path("in.log"), valid_lines(50_000)).unwrap();
    let shell = format!(
        "{BIN} --progress always {} < {}",
        dir.path("out.log").display(),
        dir.path("in.log").display()
    );
    let screen = on_a_terminal(&shell);
    assert!(
        screen.contains("% ETA ") && screen.contains(" lines, "),
        "no percentage or ETA: {screen:?}"
    );
}

#[test]
fn progress_always_prints_whole_lines_when_stderr_is_not_a_terminal() {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    let dir = Scratch::new();
    let mut child = Command::new(BIN)
        .env_clear()
        .args(["--progress", "always"])
        .arg(dir.path("out.log"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(valid_lines(1000).as_bytes()).unwrap();
    stdin.flush().unwrap();
    // The input stays open until a progress line shows (one comes every second), or for 30 s.
    let (shown_tx, shown_rx) = std::sync::mpsc::channel::<()>();
    let closer = std::thread::spawn(move || {
        let _ = shown_rx.recv_timeout(std::time::Duration::from_secs(30));
        drop(stdin);
    });
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let _ = shown_tx.send(());
    closer.join().unwrap();
    assert!(
        line.starts_with("ingest: progress: ")
            && line.contains(" lines, ")
            && line.contains("MB/s")
            && line.contains("; last record ")
            && line.ends_with(" old\n"),
        "{line:?}"
    );
    assert!(!line.contains('\x1b') && !line.contains('\r'), "{line:?}");
    assert!(child.wait().unwrap().success());
}
