//! What a run tells monitors: `--stats-json` and `--metrics-textfile`.

mod common;

use common::{Scratch, ingest};
use predicates::prelude::*;

const SAMPLE: &str = "\
2026-04-15T00:00:01Z INFO started
2026-04-15T00:00:02Z DEBUG detail
Traceback (most recent call last):

2026-04-15T00:00:03Z ERROR
2026-04-15T00:00:04Z NOTE x
2026-04-15T00:00:05Z WARN disk
";

fn stats(dir: &Scratch) -> serde_json::Value {
    serde_json::from_str(&dir.read("stats.json")).expect("stats are JSON")
}

#[test]
fn stats_json_has_the_documented_keys_and_its_counts_add_up() {
    let dir = Scratch::new();
    ingest()
        .args(["--min-level", "info", "--stats-json"])
        .arg(dir.path("stats.json"))
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success();
    let s = stats(&dir);
    for key in [
        "lines",
        "blank",
        "rejected",
        "dropped",
        "filtered",
        "written",
        "rejected_by_reason",
        "bytes_in",
        "bytes_out",
        "retries",
        "elapsed_seconds",
        "exit_code",
        "version",
        "stages",
    ] {
        assert!(s.get(key).is_some(), "missing {key} in {s}");
    }
    let n = |key: &str| s[key].as_u64().unwrap();
    assert_eq!(
        (
            n("lines"),
            n("blank"),
            n("rejected"),
            n("dropped"),
            n("filtered"),
            n("written")
        ),
        (7, 1, 2, 1, 1, 2)
    );
    assert_eq!(
        n("lines"),
        n("blank") + n("rejected") + n("dropped") + n("filtered") + n("written")
    );
    assert_eq!(s["rejected_by_reason"]["bad_timestamp"], 1);
    assert_eq!(s["rejected_by_reason"]["bad_severity"], 1);
    assert_eq!(n("bytes_in"), SAMPLE.len() as u64);
    assert_eq!(
        n("bytes_out"),
        std::fs::metadata(dir.path("out.log")).unwrap().len()
    );
    assert_eq!(
        (n("exit_code"), s["version"].as_str().unwrap()),
        (0, env!("CARGO_PKG_VERSION"))
    );
    for stage in ["reader", "parser", "validator", "writer"] {
        for key in ["blocked_seconds", "idle_seconds", "channel_high_water"] {
            assert!(
                s["stages"][stage].get(key).is_some(),
                "missing stages.{stage}.{key} in {s}"
            );
        }
    }
    assert_eq!(s["stages"]["writer"]["records_written"], 2);
}

#[test]
fn stats_json_records_the_exit_code_and_dash_means_stderr() {
    ingest()
        .args(["--max-rejects", "0", "--stats-json", "-", "-"])
        .write_stdin(SAMPLE)
        .assert()
        .code(65)
        .stderr(predicate::str::contains("\"exit_code\":65").and(predicate::str::contains("\"rejected\":2")));
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus exposition")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

#[test]
fn the_metrics_textfile_parses_as_prometheus_exposition_with_help_and_type() {
    let dir = Scratch::new();
    let path = dir.path("ingest.prom");
    ingest()
        .arg("--metrics-textfile")
        .arg(&path)
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success();
    let text = dir.read("ingest.prom");
    let scrape = scrape(&text);
    assert_eq!(
        value(&scrape, "ingest_lines_total", Some(("outcome", "written"))),
        3.0
    );
    assert_eq!(
        value(&scrape, "ingest_lines_total", Some(("outcome", "rejected"))),
        2.0
    );
    assert_eq!(
        value(&scrape, "ingest_lines_total", Some(("outcome", "blank"))),
        1.0
    );
    assert_eq!(
        value(&scrape, "ingest_bytes_total", Some(("direction", "in"))),
        SAMPLE.len() as f64
    );
    assert_eq!(value(&scrape, "ingest_last_run_success", None), 1.0);
    assert_eq!(value(&scrape, "ingest_run_in_progress", None), 0.0);
    assert!(value(&scrape, "ingest_last_run_timestamp_seconds", None) > 1.7e9);
    assert!(value(&scrape, "ingest_run_duration_seconds", None) >= 0.0);
    assert_eq!(value(&scrape, "ingest_write_retries_total", None), 0.0);
    for name in [
        "ingest_lines_total",
        "ingest_last_run_success",
        "ingest_run_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")) && text.contains(&format!("# TYPE {name} ")),
            "{name}"
        );
    }
    assert!(
        !dir.path("ingest.prom.tmp").exists(),
        "the temporary file was renamed away"
    );
}

#[test]
fn a_failed_run_says_so_in_the_metrics_textfile() {
    let dir = Scratch::new();
    let path = dir.path("ingest.prom");
    ingest()
        .args([
            "--retry-attempts",
            "1",
            "--retry-initial-ms",
            "1",
            "--retry-max-ms",
            "1",
            "--metrics-textfile",
        ])
        .arg(&path)
        .arg("/dev/full")
        .write_stdin(SAMPLE)
        .assert()
        .code(74);
    let scrape = scrape(&dir.read("ingest.prom"));
    assert_eq!(value(&scrape, "ingest_last_run_success", None), 0.0);
    assert_eq!(value(&scrape, "ingest_write_retries_total", None), 1.0);
}

#[test]
fn a_run_refused_by_the_lock_leaves_the_running_jobs_reports_alone() {
    let dir = Scratch::new();
    let (prom, stats, out) = (
        dir.path("ingest.prom"),
        dir.path("stats.json"),
        dir.path("out.log"),
    );
    let args = [
        "--metrics-textfile".as_ref(),
        prom.as_os_str(),
        "--stats-json".as_ref(),
        stats.as_os_str(),
        out.as_os_str(),
    ];
    let (mut first, stdin) = common::holding(&args, b"2026-04-15T00:00:01Z INFO first\n", &out);
    ingest().args(args).write_stdin("").assert().code(75);
    assert!(!prom.exists(), "the refused run wrote the textfile");
    assert!(!stats.exists(), "the refused run wrote the stats");
    drop(stdin);
    assert!(first.wait().unwrap().success());
    assert_eq!(
        value(&scrape(&dir.read("ingest.prom")), "ingest_last_run_success", None),
        1.0
    );
}

#[test]
fn quiet_still_says_when_the_reports_cannot_be_written() {
    let dir = Scratch::new();
    ingest()
        .arg("-q")
        .arg("--stats-json")
        .arg(dir.path("missing/stats.json"))
        .arg("--metrics-textfile")
        .arg(dir.path("missing/ingest.prom"))
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success()
        .stderr(predicate::str::contains("ingest: error: cannot write stats to"))
        .stderr(predicate::str::contains("ingest: error: cannot write metrics to"));
}

#[test]
fn the_readme_documents_every_stats_key_and_every_textfile_metric() {
    let dir = Scratch::new();
    ingest()
        .args(["--stats-json"])
        .arg(dir.path("stats.json"))
        .arg("--metrics-textfile")
        .arg(dir.path("m.prom"))
        .arg(dir.path("out.log"))
        .write_stdin(SAMPLE)
        .assert()
        .success();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let s = stats(&dir);
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    let metrics = scrape(&dir.read("m.prom"));
    let names: std::collections::BTreeSet<&str> = metrics.samples.iter().map(|m| m.metric.as_str()).collect();
    let missing: Vec<String> = keys
        .iter()
        .map(|k| format!("`{k}`"))
        .chain(names.iter().map(|n| format!("`{n}")))
        .filter(|k| !readme.contains(k.as_str()))
        .collect();
    assert!(missing.is_empty(), "the README does not name {missing:?}");
}
