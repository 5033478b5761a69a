//! The layouts read through [`Layout`], one module of tests each: what a real logger's line gives
//! (timestamp, severity, message, fields) and what is rejected.

use super::{Clock, Layout, Outcome, Pattern, Scratch, detect};
use crate::record::{RejectReason, Severity};

#[test]
fn auto_picks_the_layout_that_reads_most_lines_and_none_when_none_does() {
    let clock = Clock::utc();
    let pick = |text: &'static str| detect(text.lines().map(str::as_bytes), &clock).map(|l| l.name);
    assert_eq!(
        pick("2026-04-15T00:00:01Z INFO a\nnoise\n").as_deref(),
        Some("plain")
    );
    assert_eq!(
        pick("{\"time\":1,\"level\":30,\"msg\":\"x\"}\n").as_deref(),
        Some("json")
    );
    assert_eq!(
        pick("time=2026-04-15T00:00:01Z level=info msg=x\n").as_deref(),
        Some("logfmt")
    );
    assert_eq!(
        pick("<34>Oct 11 22:14:15 host su: x\n").as_deref(),
        Some("syslog")
    );
    assert_eq!(
        pick("2026-03-02 09:30:01,235 - app - ERROR - x\n").as_deref(),
        Some("python")
    );
    // Every nginx error line reads as plain too; nginx-error reads more of it.
    let nginx =
        "2026/04/15 10:00:00 [warn] 4242#0: *17 buffered\n2026/04/15 10:00:01 [error] 4242#0: *18 x\n";
    assert_eq!(pick(nginx).as_deref(), Some("nginx-error"));
    assert_eq!(pick("nothing here\nat all\n"), None, "nothing to judge by");
    assert_eq!(pick(""), None);
}

mod json {
    use super::*;

    use crate::record::{RejectReason, Severity};
    use time::macros::datetime;

    fn read(line: &str) -> Result<(time::OffsetDateTime, Severity, String, String), RejectReason> {
        let layout = Layout::named("json", Clock::utc()).unwrap();
        let mut scratch = Scratch::default();
        match layout.parse(line.as_bytes(), &mut scratch) {
            Outcome::Record(r) => {
                let mut fields = Vec::new();
                crate::format::write_json_fields_object(&mut fields, r.fields);
                Ok((
                    r.timestamp,
                    r.severity,
                    String::from_utf8(r.message.to_vec()).unwrap(),
                    String::from_utf8(fields).unwrap(),
                ))
            }
            Outcome::Rejected(reason) => Err(reason),
            Outcome::Blank => panic!("blank"),
        }
    }

    #[test]
    fn the_usual_keys_give_timestamp_severity_and_message_and_the_rest_stay_fields() {
        let (ts, sev, msg, fields) =
            read(r#"{"level":30,"time":1772535601377,"pid":42,"msg":"hi \"you\"","err":{"a": [1, 2]}}"#)
                .unwrap();
        assert_eq!(
            (ts, sev, msg.as_str()),
            (
                datetime!(2026-03-03 11:00:01.377 UTC),
                Severity::Info,
                "hi \"you\""
            )
        );
        assert_eq!(fields, r#"{"pid":42,"err":{"a":[1,2]}}"#);
    }

    #[test]
    fn ecs_dotted_keys_are_read_flat_and_nested() {
        let (_, sev, msg, fields) = read(
            r#"{"@timestamp":"2026-04-15T10:00:00Z","log":{"level":"warn","logger":"x"},"message":"m"}"#,
        )
        .unwrap();
        assert_eq!(
            (sev, msg.as_str(), fields.as_str()),
            (Severity::Warn, "m", r#"{"log":{"logger":"x"}}"#)
        );
        let (_, sev, _, fields) =
            read(r#"{"@timestamp":"2026-04-15T10:00:00Z","log.level":"error","message":"m"}"#).unwrap();
        assert_eq!((sev, fields.as_str()), (Severity::Error, "{}"));
        // tracing's json layer: the message inside `fields`.
        let (_, _, msg, fields) =
            read(r#"{"timestamp":"2026-04-15T10:00:00.5Z","level":"INFO","fields":{"message":"hello","n":1},"target":"app"}"#)
                .unwrap();
        assert_eq!(
            (msg.as_str(), fields.as_str()),
            ("hello", r#"{"fields":{"n":1},"target":"app"}"#)
        );
    }

    #[test]
    fn hostile_json_is_rejected_or_read_never_a_crash() {
        let deep = format!(
            "{{\"time\":1,\"msg\":\"x\",\"a\":{}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // Rejected: too deep for the readers of the output (serde_json reads 128 levels).
        assert_eq!(read(&deep).unwrap_err(), RejectReason::NotInLayout);
        let fine = format!(
            "{{\"time\":1,\"msg\":\"x\",\"a\":{}1{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(read(&fine).is_ok_and(|r| r.3.len() > 200), "100 levels are kept");
        let huge = format!(r#"{{"time":1,"msg":"x","n":1{}}}"#, "0".repeat(5000));
        assert!(
            read(&huge).unwrap().3.len() > 5000,
            "a huge number is kept as written"
        );
        assert_eq!(
            read("{\"time\":1,\"msg\":\"caf\u{e9}\"").unwrap_err(),
            RejectReason::NotInLayout
        );
        let layout = Layout::named("json", Clock::utc()).unwrap();
        let bad_utf8 = b"{\"time\":1,\"msg\":\"caf\xe9\"}";
        assert!(matches!(
            layout.parse(bad_utf8, &mut Scratch::default()),
            Outcome::Rejected(RejectReason::NotInLayout)
        ));
        // Duplicate keys: the first is the message, the second stays a field.
        let (_, _, msg, fields) = read(r#"{"time":1,"msg":"a","msg":"b"}"#).unwrap();
        assert_eq!((msg.as_str(), fields.as_str()), ("a", r#"{"msg":"b"}"#));
        assert_eq!(
            read(r#"{"msg":"no time"}"#).unwrap_err(),
            RejectReason::BadTimestamp
        );
        assert_eq!(
            read(r#"{"time":1,"level":"loud","msg":"x"}"#).unwrap_err(),
            RejectReason::BadSeverity
        );
        assert_eq!(read("[1,2]").unwrap_err(), RejectReason::NotInLayout);
    }
}

mod logfmt {
    use super::*;

    #[test]
    fn quoted_values_unescape_and_the_rest_are_fields() {
        let layout = Layout::named("logfmt", Clock::utc()).unwrap();
        let mut scratch = Scratch::default();
        let line =
            br#"time=2026-03-02T09:30:01.662793Z level=error msg="a \"b\" \\ c\nd" id=r-1 flag up="x=y""#;
        let Outcome::Record(record) = layout.parse(line, &mut scratch) else {
            panic!("a record")
        };
        assert_eq!(record.severity, Severity::Error);
        assert_eq!(record.message, b"a \"b\" \\ c\nd");
        let fields: Vec<(&[u8], &[u8])> = record.fields.iter().map(|(k, v, _)| (k, v)).collect();
        assert_eq!(
            fields,
            [(&b"id"[..], &b"r-1"[..]), (b"flag", b""), (b"up", b"x=y")]
        );
    }

    #[test]
    fn lines_that_are_not_pairs_are_not_in_the_layout() {
        let layout = Layout::named("logfmt", Clock::utc()).unwrap();
        for line in ["just words", "time=1 msg=\"never closed", "=x"] {
            assert!(
                matches!(
                    layout.parse(line.as_bytes(), &mut Scratch::default()),
                    Outcome::Rejected(RejectReason::NotInLayout)
                ),
                "{line}"
            );
        }
        assert!(matches!(
            layout.parse(b"level=info msg=x", &mut Scratch::default()),
            Outcome::Rejected(RejectReason::BadTimestamp)
        ));
    }
}

mod pattern {
    use super::*;

    fn read(name: &str, line: &str) -> Result<(Severity, String), RejectReason> {
        let layout = Layout::named(name, Clock::utc()).unwrap();
        match layout.parse(line.as_bytes(), &mut Scratch::default()) {
            Outcome::Record(r) => Ok((r.severity, String::from_utf8_lossy(r.message).into_owned())),
            Outcome::Rejected(reason) => Err(reason),
            Outcome::Blank => panic!("blank"),
        }
    }

    #[test]
    fn the_named_patterns_read_their_loggers_lines() {
        let cases = [
            (
                "python",
                "2026-03-02 09:30:01,235 - billing.worker-x - WARNING - a - b",
                Severity::Warn,
                "a - b",
            ),
            (
                "loguru",
                "2026-03-02 09:30:02.833 | ERROR    | __main__:<lambda>:175 - request 2 failed",
                Severity::Error,
                "request 2 failed",
            ),
            (
                "structlog",
                "2026-03-02T09:30:00.636454Z [info     ] worker 1 started     k=v",
                Severity::Info,
                "worker 1 started     k=v",
            ),
            (
                "env_logger",
                "[2026-04-15T10:00:00Z INFO  app::db] connected",
                Severity::Info,
                "connected",
            ),
            (
                "postgres",
                "2026-11-29 23:14:27.507 UTC [28789] LOG:  starting",
                Severity::Info,
                "starting",
            ),
            (
                "nginx-error",
                "2026/04/15 10:00:00 [error] 1234#0: *5 open() failed",
                Severity::Error,
                "*5 open() failed",
            ),
        ];
        for (name, line, severity, message) in cases {
            assert_eq!(
                read(name, line),
                Ok((severity, message.to_owned())),
                "{name}: {line}"
            );
        }
    }

    #[test]
    fn lines_off_the_pattern_say_why() {
        assert_eq!(
            read("python", "2026-03-02 09:30:01,235 app ERROR x"),
            Err(RejectReason::NotInLayout)
        );
        assert_eq!(
            read("python", "2026-13-02 09:30:01,235 - app - ERROR - x"),
            Err(RejectReason::BadTimestamp)
        );
        assert_eq!(
            read("python", "2026-03-02 09:30:01,235 - app - LOUD - x"),
            Err(RejectReason::BadSeverity)
        );
    }

    #[test]
    fn templates_that_cannot_work_are_refused() {
        for bad in [
            "{severity} {message}",
            "{timestamp} {message} x",
            "{timestamp} {_}{message}",
            "{timestamp} {sev} {message}",
            "{timestamp}{severity}{message}",
        ] {
            assert!(Pattern::compile(bad, "pattern").is_err(), "{bad}");
        }
        assert!(Pattern::compile("{timestamp} {message}", "pattern").is_ok());
    }

    #[test]
    fn postgres_detail_records_are_not_record_starts() {
        let layout = Layout::named("postgres", Clock::utc()).unwrap();
        assert!(layout.starts_record(b"2026-11-29 23:14:27.507 UTC [1] ERROR:  boom"));
        assert!(!layout.starts_record(b"2026-11-29 23:14:27.507 UTC [1] STATEMENT:  select 1"));
        assert!(!layout.starts_record(b"\tat x"));
    }
}

mod syslog {
    use super::*;

    use time::macros::datetime;

    fn read(line: &str) -> (time::OffsetDateTime, Severity, String, Vec<(String, String)>) {
        let clock = Clock::utc().at(datetime!(2026-12-03 00:00 UTC));
        let layout = Layout::named("syslog", clock).unwrap();
        let mut scratch = Scratch::default();
        match layout.parse(line.as_bytes(), &mut scratch) {
            Outcome::Record(r) => (
                r.timestamp,
                r.severity,
                String::from_utf8_lossy(r.message).into_owned(),
                r.fields
                    .iter()
                    .map(|(k, v, _)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect(),
            ),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn rfc5424_gives_its_parts_and_skips_structured_data() {
        let (ts, sev, msg, fields) = read(
            r#"<34>1 2026-03-05T09:30:04.312500+00:00 build-7 svc 23956 - [timeQuality tzKnown="1" x="a\]b"] config reloaded"#,
        );
        assert_eq!(
            (ts, sev, msg.as_str()),
            (
                datetime!(2026-03-05 09:30:04.3125 UTC),
                Severity::Fatal,
                "config reloaded"
            )
        );
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["host", "app", "pid", "sd"]);
    }

    #[test]
    fn rfc3164_with_and_without_pri_infers_the_year() {
        let (ts, sev, msg, fields) = read("<187>Mar  5 09:30:02 build-7 job[183]: said 'hello'");
        assert_eq!(
            (ts, sev, msg.as_str()),
            (
                datetime!(2026-03-05 09:30:02 UTC),
                Severity::Error,
                "said 'hello'"
            )
        );
        assert_eq!(
            fields,
            [
                ("host".into(), "build-7".into()),
                ("app".into(), "job".into()),
                ("pid".into(), "183".into())
            ]
        );
        let (ts, sev, msg, _) = read("Dec 24 10:00:00 host su: x");
        assert_eq!(
            (ts, sev, msg.as_str()),
            (datetime!(2025-12-24 10:00:00 UTC), Severity::Info, "x")
        );
        let (ts, _, msg, _) = read("2026-03-05T09:30:02.123+01:00 host kernel: y");
        assert_eq!((ts, msg.as_str()), (datetime!(2026-03-05 08:30:02.123 UTC), "y"));
        let (_, _, msg, _) = read("<13>Dec 24 10:00:00 host no tag here");
        assert_eq!(msg, "no tag here");
    }

    #[test]
    fn without_pri_a_tag_is_required_so_plain_lines_are_not_syslog() {
        let layout = Layout::named("syslog", Clock::utc()).unwrap();
        let line = b"2026-04-15T00:00:01Z INFO started";
        assert!(matches!(
            layout.parse(line, &mut Scratch::default()),
            Outcome::Rejected(RejectReason::NotInLayout)
        ));
    }
}

/// [`super::detect_among`] without its pruning: every candidate tries every line.
fn detect_trying_all<'l>(lines: &[&[u8]], candidates: &'l [Layout]) -> Option<&'l Layout> {
    let mut scores = vec![(0usize, 0usize); candidates.len()];
    let mut scratch = Scratch::default();
    for line in lines
        .iter()
        .filter(|l| !super::trim_line(l).is_empty())
        .take(super::DETECT_LINES)
    {
        for (layout, score) in candidates.iter().zip(&mut scores) {
            if let Outcome::Record(record) = layout.parse(line, &mut scratch) {
                score.0 += 1;
                score.1 += record.message.len();
            }
        }
    }
    let (at, _) = scores
        .iter()
        .enumerate()
        .filter(|(_, (read, _))| *read > 0)
        .min_by_key(|(at, (read, bytes))| {
            let container = candidates[*at].container().is_some();
            (std::cmp::Reverse(*read), !container, *bytes, *at)
        })?;
    candidates.get(at)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

    /// Leaving out candidates that can no longer win never changes the pick, whatever mix of
    /// layouts a log's first lines are.
    #[test]
    fn pruned_judging_picks_what_trying_every_candidate_picks(
        picks in proptest::collection::vec(0usize..16, 0..80)
    ) {
        const LINES: [&str; 16] = [
            "2026-04-15T00:00:01Z INFO started",
            "2026-04-15 10:00:00,123 - app - ERROR - boom",
            "2026-04-15 10:00:00.123 | WARNING  | m:f:1 - w",
            "2026-04-15T10:00:00.1Z [info     ] e k=v",
            "2026/04/15 10:00:00 [error] 1#0: *1 q",
            "{\"time\":1776247200123,\"level\":30,\"msg\":\"j\"}",
            "time=2026-04-15T00:00:01Z level=info msg=\"a\" k=v",
            "<34>1 2026-04-15T10:00:00Z h a 1 - - m",
            "<13>Apr 15 10:00:00 host tag[1]: m",
            "2026-04-15 10:00:00.123 UTC [1] LOG:  y",
            "Traceback (most recent call last):",
            "",
            "not a record at all",
            "2026-04-15T00:00:01Z WARN disk 91% full",
            "2026-04-15T10:00:00.123456789Z stdout F {\"level\":\"info\",\"msg\":\"c\"}",
            "{\"log\":\"d\\n\",\"stream\":\"stderr\",\"time\":\"2026-04-15T10:00:00.1Z\"}",
        ];
        let candidates = Layout::candidates(&Clock::default());
        let lines: Vec<&[u8]> = picks.iter().map(|&i| LINES[i].as_bytes()).collect();
        let pruned = super::detect_among(lines.iter().copied(), &candidates).map(|l| &l.name);
        let all = detect_trying_all(&lines, &candidates).map(|l| &l.name);
        proptest::prop_assert_eq!(pruned, all);
    }
}

/// A container's streams are judged among the layouts before the first container runtime's:
/// every other layout comes before them.
#[test]
fn the_container_runtimes_come_last_among_the_candidates() {
    let candidates = Layout::candidates(&Clock::default());
    let first = candidates
        .iter()
        .position(|l| l.container().is_some())
        .expect("cri and docker");
    assert!(candidates[first..].iter().all(|l| l.container().is_some()));
    assert_eq!(candidates.len() - first, 2);
}
