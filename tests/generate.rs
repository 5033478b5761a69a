//! `ingest --generate KIND`: the man page renders with every exit code, the completions load
//! in their shells and complete the flags, an unknown kind is a usage error.

mod common;

use std::process::Command;

use common::{BIN, ingest};
use predicates::prelude::*;

fn generate(kind: &str) -> String {
    let output = Command::new(BIN).args(["--generate", kind]).output().unwrap();
    assert!(
        output.status.success(),
        "--generate {kind}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[test]
fn the_man_page_renders_with_every_exit_code_and_the_sections_help_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("ingest.1");
    std::fs::write(&page, generate("man")).unwrap();
    assert!(
        on_path("groff"),
        "these tests render the man page with groff: apt-get install groff-base"
    );
    let output = Command::new("groff")
        .args(["-man", "-Tutf8", "-P", "-cbou"])
        .arg(&page)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.is_empty(), "groff: {stderr}");
    let text = String::from_utf8(output.stdout).unwrap();
    for section in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "RECORDS",
        "GUARANTEES",
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "EXAMPLES",
    ] {
        assert!(
            text.contains(&format!("\n{section}\n")),
            "no {section} section:\n{text}"
        );
    }
    let status = &text[text.find("\nEXIT STATUS\n").unwrap()..text.find("\nFILES\n").unwrap()];
    for code in [
        "0", "2", "65", "69", "70", "71", "73", "74", "75", "77", "78", "130", "143",
    ] {
        assert!(
            status
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "exit {code} missing:\n{status}"
        );
    }
    assert!(text.contains("--checkpoint") && text.contains("NATS_TOKEN") && text.contains("*/5 * * * *"));
}

#[test]
fn bash_completes_the_flags() {
    let script = generate("complete-bash");
    let output = Command::new("bash")
        .arg("-c")
        .arg(
            "source /dev/stdin; COMP_WORDS=(ingest --chec); COMP_CWORD=1; COMP_LINE='ingest --chec'; \
             COMP_POINT=${#COMP_LINE}; _ingest ingest --chec ingest; printf '%s\\n' \"${COMPREPLY[@]}\"",
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let offered = String::from_utf8(output.stdout).unwrap();
    assert!(
        offered.lines().any(|l| l == "--checkpoint"),
        "offered: {offered:?}"
    );
    assert!(
        !offered.lines().any(|l| l == "--workers"),
        "only what starts with --chec: {offered:?}"
    );
}

#[test]
fn zsh_and_fish_completions_load_where_those_shells_are() {
    for (shell, kind, load) in [
        (
            "zsh",
            "complete-zsh",
            "autoload -U compinit && compinit -u && source /dev/stdin",
        ),
        ("fish", "complete-fish", "source -"),
    ] {
        let script = generate(kind);
        assert!(script.contains("--checkpoint"), "{kind} knows the flags");
        if !on_path(shell) {
            eprintln!("{shell} is not installed here: its completions were generated but not loaded");
            continue;
        }
        let mut child = Command::new(shell)
            .args(["-c", load])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        assert!(
            child.wait().unwrap().success(),
            "{shell} could not load its completions"
        );
    }
}

#[test]
fn an_unknown_kind_is_a_usage_error() {
    ingest()
        .args(["--generate", "complete-tcsh"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "possible values: man, complete-bash, complete-zsh, complete-fish",
        ));
}

#[test]
fn the_packaged_man_page_and_completions_are_what_generate_prints() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for (kind, file) in [
        ("man", "assets/ingest.1"),
        ("complete-bash", "assets/completions/ingest.bash"),
        ("complete-zsh", "assets/completions/_ingest"),
        ("complete-fish", "assets/completions/ingest.fish"),
    ] {
        let packaged = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            packaged == generate(kind),
            "{file} is not what `ingest --generate {kind}` prints: regenerate it with `cargo run -- --generate {kind} > {file}`"
        );
    }
}

#[test]
fn the_collector_unit_stops_restarting_on_every_exit_a_restart_cannot_help() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("systemd/ingest-collect@.service")).unwrap();
    let setting = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("the unit has no {key}="))
            .to_owned()
    };
    let prevented: Vec<u8> = setting("RestartPreventExitStatus")
        .split_whitespace()
        .map(|code| code.parse().unwrap())
        .collect();
    let needing_a_person: Vec<u8> = ingest::Exit::ALL
        .into_iter()
        .filter(|e| e.needs_a_person())
        .map(|e| e as u8)
        .collect();
    assert_eq!(prevented, needing_a_person, "(74: an unusable checkpoint)");
    // A collector keeps what is not a record, with why, as a publisher's cron line does.
    assert!(
        setting("ExecStart").contains("--rejects "),
        "{}",
        setting("ExecStart")
    );
}
