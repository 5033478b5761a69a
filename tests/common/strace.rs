//! Reading `strace -f` output: the system calls a run made, in the order they completed.

use std::collections::HashMap;

/// Fails the test, saying how to get it, when `strace` is not installed.
pub fn require() {
    if std::process::Command::new("strace").arg("-V").output().is_err() {
        panic!("strace is needed for this test: apt-get install strace (.ci/test installs it)");
    }
}

/// One system call that completed, as `strace -f` printed it.
#[derive(Debug)]
pub struct Call {
    /// The call's name (`write`, `rename`).
    pub name: String,
    /// Its arguments as printed.
    pub args: String,
    /// What it returned (-1 when unreadable).
    pub result: i64,
}

/// Reads `strace -f` output, joining `<unfinished ...>` with `<... resumed>` halves; a call is
/// placed where it completed.
pub fn calls(trace: &str) -> Vec<Call> {
    let mut pending: HashMap<&str, String> = HashMap::new();
    let mut calls = Vec::new();
    for line in trace.lines() {
        let Some((pid, text)) = line.split_once(' ') else {
            continue;
        };
        let text = text.trim_start();
        let text = if let Some(start) = text.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, start.to_owned());
            continue;
        } else if let Some(rest) = text.strip_prefix("<... ") {
            let Some((_, rest)) = rest.split_once(" resumed>") else {
                continue;
            };
            format!("{}{rest}", pending.remove(pid).unwrap_or_default())
        } else {
            text.to_owned()
        };
        // `name(args)   = result`, padded with spaces before the `=`.
        let Some(eq) = text.rfind(" = ") else { continue };
        let (Some(open), Some(close)) = (text.find('('), text[..eq].rfind(')')) else {
            continue;
        };
        let result = text[eq + 3..]
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok());
        calls.push(Call {
            name: text[..open].to_owned(),
            args: text[open + 1..close].to_owned(),
            result: result.unwrap_or(-1),
        });
    }
    calls
}

/// The first quoted string in `args`, unescaped (`\n`, `\t`, `\"`, `\\`).
pub fn quoted(args: &str) -> String {
    let start = args.find('"').expect("a quoted argument") + 1;
    let mut out = String::new();
    let mut chars = args[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

/// Both quoted paths of a `rename`.
pub fn rename_paths(args: &str) -> (String, String) {
    let first = quoted(args);
    let second_at = args.find("\", ").expect("two paths") + 3;
    (first, quoted(&args[second_at..]))
}
