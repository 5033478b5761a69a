#!/usr/bin/env python3
"""Throughput of each input layout beside `plain` and mawk, on corpora of the same byte size.

    python3 benches/layouts.py [--lines 5000000] [--runs 5] [--workers 4] [--extra BIN]

Writes the clean corpus (--lines lines) and, of the same byte size, the json, logfmt, python and
multiline corpora (examples/corpus.rs), then runs every command --runs times, interleaved, file
to file, and prints the median wall time, lines/s, the ratio to `plain`'s lines/s, mawk's time
over each, and peak RSS. --extra BIN adds another ingest binary (a baseline build) reading the
clean corpus as `plain`, for before/after. Compare ratios from one run, not figures across runs.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import ROOT, TARGET, build, corpus, timed  # noqa: E402


def sized_corpus(generator, kind, size):
    """A corpus of `kind` records, `size` bytes (to the next whole record), cached."""
    path = os.path.join(TARGET, "bench", f"corpus-{kind}-{size}b.log")
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as out:
            subprocess.run([generator, "0", kind, str(size)], stdout=out, check=True)
        os.rename(path + ".tmp", path)
    return path


def count_lines(path):
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", default="4")
    parser.add_argument("--extra", action="append", default=[], help="a baseline ingest binary, run as plain")
    args = parser.parse_args()

    if not shutil.which("mawk"):
        sys.exit("mawk is missing: apt-get install mawk")
    ingest, generator = build()
    clean = corpus(generator, args.lines, "clean")
    size = os.path.getsize(clean)
    data = {"clean": clean}
    for kind in ["json", "logfmt", "python", "multiline"]:
        data[kind] = sized_corpus(generator, kind, size)
    lines = {kind: count_lines(path) for kind, path in data.items()}
    awk = os.path.join(ROOT, "benches", "ingest.awk")
    out = os.path.join(TARGET, "bench", "out")
    w = args.workers

    commands = [("mawk", "clean", f"mawk -f {awk} {data['clean']} > {out}"),
                ("plain", "clean", f"{ingest} -q -w {w} --input plain {out} < {data['clean']}")]
    for extra in args.extra:
        commands.append((f"{os.path.basename(extra)[:14]}", "clean", f"{extra} -q -w {w} {out} < {data['clean']}"))
    commands += [
        ("auto (plain)", "clean", f"{ingest} -q -w {w} {out} < {data['clean']}"),
        ("json", "json", f"{ingest} -q -w {w} --input json {out} < {data['json']}"),
        ("logfmt", "logfmt", f"{ingest} -q -w {w} --input logfmt {out} < {data['logfmt']}"),
        ("python", "python", f"{ingest} -q -w {w} --input python {out} < {data['python']}"),
        ("multiline", "multiline", f"{ingest} -q -w {w} --multiline {out} < {data['multiline']}"),
    ]

    results = {name: [] for name, _, _ in commands}
    for _ in range(args.runs):
        for name, _, command in commands:
            if os.path.exists(out):
                os.remove(out)  # ingest appends: every run starts from an empty file
            results[name].append(timed(command))
    os.remove(out)

    median = {name: statistics.median(w for w, _ in runs) for name, runs in results.items()}
    rate = {name: lines[kind] / median[name] for name, kind, _ in commands}
    print(f"{size / 1e6:.0f} MB per corpus ({', '.join(f'{k} {n:,} lines' for k, n in lines.items())}); "
          f"{args.runs} runs each, median wall time; -w {w}; {os.cpu_count()} cores")
    print(f"{'command':<16} {'corpus':<10} {'wall s':>8} {'lines/s':>12} {'x plain':>8} {'mawk/x':>7} {'peak RSS':>10}")
    for name, kind, _ in commands:
        rss = max(r for _, r in results[name])
        print(f"{name:<16} {kind:<10} {median[name]:>8.3f} {rate[name]:>12,.0f} {rate[name] / rate['plain']:>8.2f} "
              f"{median['mawk'] / median[name]:>7.1f} {rss / 1024:>8.1f} MiB")


if __name__ == "__main__":
    main()
