//! Criterion benches: the line parser alone, rendering alone, and the whole pipeline in-process.
//!
//! `cargo bench --bench ingest` (figures and how to read them: BENCHMARKS.md).

use std::hint::black_box;
use std::io::Cursor;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ingest::format::{Format, write_record};
use ingest::metrics::Metrics;
use ingest::output::AppendFile;
use ingest::record::parse_line;
use ingest::sink::file::FileSink;
use ingest::source::file::{FileSource, Settings};
use ingest::{Config, Output};
use tokio_util::sync::CancellationToken;

/// Realistic lines like the corpus generator's: RFC 3339 with millis, mixed severities.
fn lines(n: usize, dirty: bool) -> Vec<u8> {
    let severities = ["INFO", "INFO", "DEBUG", "WARN", "ERROR", "TRACE"];
    let words = [
        "request",
        "served",
        "user",
        "cache",
        "miss",
        "upstream",
        "timeout",
        "path=/api/v1/orders",
    ];
    let mut out = Vec::new();
    for i in 0..n {
        if dirty && i % 33 == 0 {
            out.extend_from_slice(b"Traceback (most recent call last):\n");
            continue;
        }
        let (s, ms) = (i / 1000, i % 1000);
        let line = format!(
            "2026-04-15T{:02}:{:02}:{:02}.{ms:03}Z {} {}\n",
            s / 3600 % 24,
            s / 60 % 60,
            s % 60,
            severities[i % severities.len()],
            (0..3 + i % 16)
                .map(|w| words[(i + w) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_line");
    for (name, dirty) in [("clean", false), ("dirty", true)] {
        let data = lines(10_000, dirty);
        group.throughput(Throughput::Elements(10_000));
        group.bench_function(name, |b| {
            b.iter(|| {
                for line in ingest::record::split_lines(&data) {
                    black_box(parse_line(black_box(line)));
                }
            })
        });
    }
    group.finish();
}

/// Rendering alone: every record of 10k parsed lines, as text and as JSON.
fn render(c: &mut Criterion) {
    let parsed = ingest::pipeline::parser::parse_batch(1, lines(10_000, false).into());
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(10_000));
    for (name, format) in [("text", Format::Text), ("json", Format::Json)] {
        let mut buf = Vec::with_capacity(4 << 20);
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                for record in parsed.records() {
                    write_record(&mut buf, format, &record);
                }
                black_box(buf.len())
            })
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .unwrap();
    let data = lines(200_000, false);
    let config = Config::new(Output::Stdout);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(200_000)).sample_size(20);
    group.bench_function("200k_lines_in_memory", |b| {
        b.iter_batched(
            || Cursor::new(data.clone()),
            |input| {
                let run = ingest::pipeline::run(
                    &config,
                    Box::new(FileSource::new(Box::new(input), Settings::from_config(&config))),
                    None,
                    FileSink::new(tokio::io::sink(), config.retry),
                    None::<AppendFile>,
                    Arc::new(Metrics::default()),
                    CancellationToken::new(),
                );
                runtime.block_on(run).unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, parser, render, pipeline);
criterion_main!(benches);
