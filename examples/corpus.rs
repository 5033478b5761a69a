//! Writes a deterministic benchmark corpus of log lines to stdout.
//!
//! `cargo run --release --example corpus -- LINES [clean|dirty] > corpus.log`
//!
//! Lines are ~100 bytes: an RFC 3339 timestamp with milliseconds, a mixed severity, and a message
//! of 3 to 18 words. `dirty` makes ~3% of the lines bad (broken timestamps, unknown severities,
//! tracebacks, blank lines, empty messages). The same arguments always give the same bytes.

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
    let dirty = args.next().as_deref() == Some("dirty");

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
        let severity = SEVERITIES[rng.below(SEVERITIES.len() as u64) as usize];
        let words = 3 + rng.below(16);

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
