#!/usr/bin/env python3
"""Compressed input, side by side in one go: `ingest out < big.log.gz` against
`zcat big.log.gz | ingest out` and the plain file, and zstd against gzip.

    python3 benches/compressed.py [--lines N] [--runs K] [--bin PATH]

Writes a corpus of N plain lines (default 3,000,000, ~190 MB) and its .gz (gzip -6) and .zst
(zstd -3) into a temp dir, runs each variant K times (default 5) interleaved, to /dev/null-like
output on tmpfs, and prints median wall seconds, lines/s and the ratio to the plain file.
Needs gzip and zstd on PATH (only to make the corpus and for the zcat baseline).
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bin", default="target/release/ingest")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        plain = os.path.join(tmp, "big.log")
        with open(plain, "w") as f:
            for i in range(args.lines):
                f.write(f"2026-04-15T{i // 3600 % 24:02}:{i // 60 % 60:02}:{i % 60:02}Z INFO "
                        f"request {i} served in {i % 997} ms for user {i % 7919}\n")
        subprocess.run(["gzip", "-k", "-6", plain], check=True)
        subprocess.run(["zstd", "-q", "-3", plain, "-o", plain + ".zst"], check=True)
        out = os.path.join(tmp, "out.log")
        variants = {
            "plain file": f"{binary} -q {out} < {plain}",
            "zcat | ingest": f"zcat {plain}.gz | {binary} -q {out}",
            "ingest < .gz": f"{binary} -q {out} < {plain}.gz",
            "ingest < .zst": f"{binary} -q {out} < {plain}.zst",
        }
        times = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, command in variants.items():
                if os.path.exists(out):
                    os.remove(out)
                start = time.perf_counter()
                subprocess.run(["bash", "-c", command], check=True)
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["plain file"])
        sizes = {n: os.path.getsize(p) for n, p in
                 [("plain", plain), ("gz", plain + ".gz"), ("zst", plain + ".zst")]}
        print(f"{args.lines} lines; plain {sizes['plain'] / 1e6:.0f} MB, .gz {sizes['gz'] / 1e6:.1f} MB, "
              f".zst {sizes['zst'] / 1e6:.1f} MB; {args.runs} runs each, interleaved")
        for name, samples in times.items():
            median = statistics.median(samples)
            print(f"{name:15} median {median:6.3f} s  {args.lines / median / 1e6:5.2f} M lines/s  "
                  f"{median / base:5.2f}x the plain file  (min {min(samples):.3f}, max {max(samples):.3f})")


if __name__ == "__main__":
    main()
