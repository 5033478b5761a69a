#!/usr/bin/env python3
"""Side-by-side throughput of ingest against `cat` (the I/O floor) and an equivalent mawk program.

    python3 benches/compare.py [--lines 5000000] [--runs 5] [--corpus clean|dirty] [--extra BIN]

Builds the release binary and the corpus generator, writes the corpus once (cached in
target/bench/), then runs every command --runs times, interleaved, file to file, and prints the
median wall time, lines/s, MB/s, ratios against cat and mawk, and peak RSS (/usr/bin/time %M).
--extra BIN adds another ingest binary (say, a baseline build) to the same run.
Machines are shared and noisy: compare ratios from one run, not figures across runs.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "ingest", "--example", "corpus"],
                   cwd=ROOT, check=True)
    return os.path.join(TARGET, "release", "ingest"), os.path.join(TARGET, "release", "examples", "corpus")


def corpus(generator, lines, kind):
    os.makedirs(os.path.join(TARGET, "bench"), exist_ok=True)
    path = os.path.join(TARGET, "bench", f"corpus-{kind}-{lines}.log")
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as out:
            subprocess.run([generator, str(lines), kind], stdout=out, check=True)
        os.rename(path + ".tmp", path)
    return path


def measure(shell_command):
    """Runs one command under /usr/bin/time; returns (wall s, user+sys CPU s, peak RSS KiB)."""
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%e %U %S %M", "sh", "-c", shell_command],
                       check=True, stderr=subprocess.DEVNULL)
        wall, user, system, rss = report.read().split()
    return float(wall), float(user) + float(system), int(rss)


def timed(shell_command):
    """Runs one command under /usr/bin/time; returns (wall seconds, peak RSS in KiB)."""
    wall, _, rss = measure(shell_command)
    return wall, rss


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", choices=["clean", "dirty"], default="clean")
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--extra", action="append", default=[], help="another ingest binary to compare")
    args = parser.parse_args()

    if not shutil.which("mawk"):
        sys.exit("mawk is missing: apt-get install mawk")
    ingest, generator = build()
    data = corpus(generator, args.lines, args.corpus)
    size_mb = os.path.getsize(data) / 1e6
    awk = os.path.join(ROOT, "benches", "ingest.awk")
    out = os.path.join(TARGET, "bench", "out")

    commands = [("cat > out", f"cat {data} > {out}"),
                # ingest fsyncs its output before it exits; this is the floor with that promise.
                ("cat, sync", f"cat {data} > {out} && sync {out}"),
                ("mawk", f"mawk -f {awk} {data} > {out}")]
    for w in args.workers.split(","):
        commands.append((f"ingest -w {w}", f"{ingest} -q -w {w} {out} < {data}"))
    for extra in args.extra:
        commands.append((f"{os.path.basename(extra)[:11]} -w 4", f"{extra} -q -w 4 {out} < {data}"))

    results = {name: [] for name, _ in commands}
    for _ in range(args.runs):
        for name, command in commands:
            if os.path.exists(out):
                os.remove(out)  # ingest appends: every run starts from an empty file
            results[name].append(timed(command))
    os.remove(out)

    median = {name: statistics.median(w for w, _ in runs) for name, runs in results.items()}
    print(f"corpus: {args.corpus}, {args.lines} lines, {size_mb:.0f} MB; {args.runs} runs each, median wall time; "
          f"{os.cpu_count()} cores")
    print(f"{'command':<16} {'wall s':>8} {'lines/s':>12} {'MB/s':>8} {'x cat':>7} {'mawk/x':>7} {'peak RSS':>10}")
    for name, runs in results.items():
        wall = median[name]
        rss = max(r for _, r in runs)
        print(f"{name:<16} {wall:>8.3f} {args.lines / wall:>12,.0f} {size_mb / wall:>8.0f} "
              f"{wall / median['cat > out']:>7.2f} {median['mawk'] / wall:>7.1f} {rss / 1024:>8.1f} MiB")
    print(f"empty input: {empty_input(ingest):.1f} ms (median of 21 runs)")


def empty_input(ingest, runs=21):
    """Median wall time of a run on empty input, in milliseconds (cron starts ingest often)."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([ingest, "-q", os.path.join(tmp, "out.log")], stdin=subprocess.DEVNULL, check=True)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    main()
