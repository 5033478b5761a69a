//! Writes a deterministic benchmark corpus of log lines to stdout.
//!
//! `cargo run --release --example corpus -- LINES [KIND [BYTES]] > corpus.log`
//!
//! Lines are ~100 bytes: an RFC 3339 timestamp with milliseconds, a mixed severity, and a message
//! of 3 to 18 words. KIND `clean` (the default) is that; `dirty` makes ~3% of the lines bad
//! (broken timestamps, unknown severities, tracebacks, blank lines, empty messages). The other
//! kinds write the same records in another layout: `json` (pino-like, with two fields), `logfmt`
//! (Go slog's text handler), `python` (logging's `asctime - name - levelname - message`), and
//! `multiline` (clean lines, with a Java stack trace after some ERROR records: 10% of the lines
//! are trace lines). With BYTES, it stops once that many bytes are written instead (to compare
//! layouts on the same input size). The same arguments always give the same bytes.

use std::io::{self, BufWriter, Write};

const WORDS: &[&str] = &[
    "request",
    "served",
    "user",
    "cache",
    "miss",
    "hit",
    "upstream",
    "timeout",
    "retrying",
    "connection",
    "pool",
    "exhausted",
    "query",
    "took",
    "ms",
    "payment",
    "accepted",
    "declined",
    "session",
    "expired",
    "shard",
    "rebalanced",
    "disk",
    "usage",
    "at",
    "percent",
    "worker",
    "started",
    "stopped",
    "job",
    "queued",
    "for",
    "tenant",
    "acme",
    "id=42",
    "path=/api/v1/orders",
    "status=200",
    "status=503",
];

const SEVERITIES: &[&str] = &[
    "INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR", "TRACE", "FATAL",
];

/// xorshift64*: small, fast and deterministic; quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let lines: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| {
        eprintln!("usage: corpus LINES [clean|dirty]");
        std::process::exit(2);
    });
    let kind = args.next().unwrap_or_else(|| "clean".to_owned());
    let dirty = kind == "dirty";
    let bytes_target: Option<u64> = args.next().and_then(|n| n.parse().ok());
    let structured = !matches!(kind.as_str(), "clean" | "dirty");
    let lines = if bytes_target.is_some() && structured {
        u64::MAX
    } else {
        lines
    };
    let mut written = 0u64;
    let mut line = String::with_capacity(1024);

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    for i in 0..lines {
        // Milliseconds since 2026-04-15T00:00:00Z, ~7 apart and increasing.
        let ms = i * 7 + rng.below(7);
        let (secs, millis) = (ms / 1000, ms % 1000);
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // 2026-04-15 is day 104 of the year; the corpus stays in 2026 for ~3.1e9 lines.
        let (month, day) = month_day(104 + days);
        let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
        if bytes_target.is_some_and(|target| written >= target) {
            break;
        }
        let severity = SEVERITIES[rng.below(SEVERITIES.len() as u64) as usize];
        let words = 3 + rng.below(16);
        if structured {
            line.clear();
            let stamp = format!("2026-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z");
            let mut message = String::new();
            for w in 0..words {
                if w > 0 {
                    message.push(' ');
                }
                message.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
            }
            use std::fmt::Write as _;
            match kind.as_str() {
                "json" => {
                    let level = match severity {
                        "TRACE" => 10,
                        "DEBUG" => 20,
                        "INFO" => 30,
                        "WARN" => 40,
                        "ERROR" => 50,
                        _ => 60,
                    };
                    let epoch_ms = 1_776_211_200_000 + ms;
                    let _ = writeln!(
                        line,
                        "{{\"level\":{level},\"time\":{epoch_ms},\"pid\":4242,\"hostname\":\"web-1\",\"msg\":\"{message}\"}}"
                    );
                }
                "logfmt" => {
                    let _ = writeln!(
                        line,
                        "time={stamp} level={} msg=\"{message}\" pid=4242",
                        severity.to_lowercase()
                    );
                }
                "python" => {
                    let stamp = format!("2026-{month:02}-{day:02} {h:02}:{m:02}:{s:02},{millis:03}");
                    let name = ["app", "app.db", "urllib3.connectionpool"][i as usize % 3];
                    let _ = writeln!(line, "{stamp} - {name} - {severity} - {message}");
                }
                "multiline" => {
                    let _ = writeln!(line, "{stamp} {severity} {message}");
                    // After one ERROR record in 3, a trace of 2 to 5 lines: 10% of the lines.
                    if severity == "ERROR" && i % 3 == 0 {
                        line.push_str("java.lang.IllegalStateException: pool exhausted\n");
                        for frame in 0..rng.below(4) {
                            let _ = writeln!(line, "\tat com.example.Pool.take(Pool.java:{})", 100 + frame);
                        }
                        line.push_str("\t... 12 more\n");
                    }
                }
                other => {
                    eprintln!("unknown corpus kind {other}: clean, dirty, json, logfmt, python or multiline");
                    std::process::exit(2);
                }
            }
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
            continue;
        }

        if dirty && rng.below(100) < 3 {
            match rng.below(5) {
                0 => write!(
                    out,
                    "2026-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z NOTE bad severity"
                )?,
                1 => write!(
                    out,
                    "2026-02-30T{h:02}:{m:02}:{s:02}.{millis:03}Z {severity} impossible date"
                )?,
                2 => write!(out, "Traceback (most recent call last):")?,
                3 => write!(
                    out,
                    "2026-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z {severity}"
                )?,
                _ => {}
            }
            writeln!(out)?;
            continue;
        }
        write!(
            out,
            "2026-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z {severity}"
        )?;
        for _ in 0..words {
            write!(out, " {}", WORDS[rng.below(WORDS.len() as u64) as usize])?;
        }
        writeln!(out)?;
    }
    out.flush()
}

/// Month and day of the `day_of_year`-th day (0-based) of 2026, a common year.
fn month_day(day_of_year: u64) -> (u64, u64) {
    const LENGTHS: [u64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut left = day_of_year % 365;
    for (i, len) in LENGTHS.iter().enumerate() {
        if left < *len {
            return (i as u64 + 1, left + 1);
        }
        left -= len;
    }
    unreachable!("a day of the year is below 365")
}
