//! Compressed standard input: gzip (one member or several) and zstd, known by their magic bytes
//! whatever the file is called, decompressed on a thread of their own; damaged or cut-short
//! data processed up to its last whole line, then a clear error.

mod common;

use std::io::Write;

use common::{Scratch, finish, run_in, spawn_in, valid_lines};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// `ingest ARGS out.log` on `input` (bytes) as standard input, in `dir`: exit code, stderr.
fn ingest_bytes(dir: &Scratch, args: &[&str], input: &[u8]) -> (Option<i32>, String) {
    std::fs::write(dir.path("in.log"), input).unwrap();
    finish(dir, spawn_in(dir, &[args, &["out.log"]].concat(), &[]))
}

#[test]
fn gzip_several_members_and_zstd_give_what_the_plain_input_gives() {
    let plain = valid_lines(30_000);
    // Members split mid-line: the line goes on in the next member.
    let (first, second) = plain.split_at(plain.len() / 2 + 17);
    let members = [gzip(first.as_bytes()), gzip(second.as_bytes())].concat();
    let reference = Scratch::new();
    run_in(&reference, &["out.log"], &plain, &[]);
    let want = reference.read("out.log");
    for (name, input) in [
        ("gzip", gzip(plain.as_bytes())),
        ("two gzip members", members),
        ("zstd", zstd(plain.as_bytes())),
    ] {
        let dir = Scratch::new();
        let (code, stderr) = ingest_bytes(&dir, &[], &input);
        assert_eq!(code, Some(0), "{name}: {stderr}");
        assert!(
            dir.read("out.log") == want,
            "{name}: OUTPUT differs from the plain input's"
        );
    }
}

#[test]
fn cut_short_or_damaged_input_keeps_its_whole_lines_then_fails_naming_the_offset() {
    let plain = valid_lines(40_000);
    let whole = gzip(plain.as_bytes());
    let mut damaged = whole.clone();
    let at = whole.len() / 2;
    damaged[at..at + 8].copy_from_slice(&[0xff; 8]);
    for (name, input, check) in [
        ("cut gzip", whole[..at].to_vec(), "gzip -t"),
        ("damaged gzip", damaged, "gzip -t"),
        ("cut zstd", zstd(plain.as_bytes())[..at / 4].to_vec(), "zstd -t"),
    ] {
        let dir = Scratch::new();
        let (code, stderr) = ingest_bytes(&dir, &["--stats-json", "stats.json"], &input);
        assert_eq!(code, Some(74), "{name}: {stderr}");
        assert!(
            stderr.contains("is damaged or cut short at or before byte "),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(check), "{name}: {stderr}");
        let out = dir.read("out.log");
        assert!(
            out.len() > 1000 && out.ends_with('\n'),
            "{name}: its whole lines are written"
        );
        // Cut short, every line written is one of the input's, whole, in order. (Damaged
        // deflate data may decode to garbage before the damage shows: gzip checks a member's
        // CRC at its end.)
        let n = out.lines().count();
        if name.starts_with("cut") {
            assert!(
                out == common::expected_text(n),
                "{name}: OUTPUT is not the input's first {n} lines"
            );
        }
        let stats: serde_json::Value = serde_json::from_str(&dir.read("stats.json")).unwrap();
        assert_eq!(stats["damaged_inputs"], 1, "{name}");
    }
}

#[test]
fn a_checkpointed_rerun_resumes_inside_a_compressed_input() {
    // The first run gets the file cut short (as a copy still being made), the rerun the whole
    // file: together, the output of one run on the plain input.
    let plain = valid_lines(40_000);
    let whole = gzip(plain.as_bytes());
    let dir = Scratch::new();
    let args = ["--checkpoint", "cp"];
    let (code, stderr) = ingest_bytes(&dir, &args, &whole[..whole.len() / 2]);
    assert_eq!(code, Some(74), "{stderr}");
    let first = dir.read("out.log").lines().count();
    assert!(first > 1000 && first < 40_000, "{first} lines at first");
    let (code, stderr) = ingest_bytes(&dir, &args, &whole);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        dir.read("out.log") == common::expected_text(40_000),
        "the rerun went on where the first stopped"
    );
    let (code, stderr) = ingest_bytes(&dir, &args, &whole);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        dir.read("out.log") == common::expected_text(40_000),
        "a third run adds nothing"
    );
}
