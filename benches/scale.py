#!/usr/bin/env python3
"""The "every core" targets in one run: one core against all, text against JSON, ingest against
`cat; sync` and mawk, peak RSS and empty input.

    python3 benches/scale.py [--lines 5000000] [--runs 5] [--extra BIN]

Scaling and formats write to tmpfs (/dev/shm) so no disk is involved; `cat; sync`, mawk and
"text, disk" write to target/bench/ on disk. Every command runs --runs times, interleaved, after
a `sync`; medians are printed with user+sys CPU, then each target with its figure. --extra BIN
adds another ingest binary's two-core text and JSON runs (say, the build before a change).
Machines are shared and noisy: compare ratios from one run, not figures across runs.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys

from compare import TARGET, build, corpus, empty_input, measure


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--extra", action="append", default=[], help="another ingest binary to compare")
    args = parser.parse_args()

    if not shutil.which("mawk") or not shutil.which("taskset"):
        sys.exit("mawk and taskset are needed: apt-get install mawk util-linux")
    ingest, generator = build()
    data = corpus(generator, args.lines, "clean")
    awk = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ingest.awk")
    shm = f"/dev/shm/ingest-scale-{os.getpid()}"
    disk = os.path.join(TARGET, "bench", "out")

    commands = [
        ("text, 1 core", f"taskset -c 0 {ingest} -q {shm} < {data}", shm),
        ("text, 2 cores", f"{ingest} -q {shm} < {data}", shm),
        ("json, 1 core", f"taskset -c 0 {ingest} -q -f json {shm} < {data}", shm),
        ("json, 2 cores", f"{ingest} -q -f json {shm} < {data}", shm),
        ("cat, sync", f"cat {data} > {disk} && sync {disk}", disk),
        ("text, disk", f"{ingest} -q {disk} < {data}", disk),
        ("mawk", f"mawk -f {awk} {data} > {disk}", disk),
    ]
    for extra in args.extra:
        name = os.path.basename(extra)[:10]
        commands.append((f"{name} text", f"{extra} -q {shm} < {data}", shm))
        commands.append((f"{name} json", f"{extra} -q -f json {shm} < {data}", shm))

    results = {name: [] for name, _, _ in commands}
    try:
        for _ in range(args.runs):
            for name, command, out in commands:
                if os.path.exists(out):
                    os.remove(out)  # ingest appends: every run starts from an empty file
                subprocess.run(["sync"], check=True)
                results[name].append(measure(command))
    finally:
        for out in (shm, disk):
            if os.path.exists(out):
                os.remove(out)

    wall = {name: statistics.median(r[0] for r in runs) for name, runs in results.items()}
    print(f"corpus: clean, {args.lines} lines, {os.path.getsize(data) / 1e6:.0f} MB; {args.runs} runs each, "
          f"medians; {os.cpu_count()} cores")
    print(f"{'command':<16} {'wall s':>8} {'CPU s':>7} {'peak RSS':>10}")
    for name, runs in results.items():
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        print(f"{name:<16} {wall[name]:>8.3f} {cpu:>7.2f} {rss / 1024:>6.1f} MiB")

    rss = max(r[2] for name in ("text, 2 cores", "json, 2 cores", "text, disk") for r in results[name]) / 1024
    empty = empty_input(ingest)
    checks = [
        ("text: 2 cores / 1 core >= 1.7", wall["text, 1 core"] / wall["text, 2 cores"], 1.7, True),
        ("json: 2 cores / 1 core >= 1.7", wall["json, 1 core"] / wall["json, 2 cores"], 1.7, True),
        ("text on disk / (cat; sync) <= 1.5", wall["text, disk"] / wall["cat, sync"], 1.5, False),
        ("mawk / text on disk >= 10", wall["mawk"] / wall["text, disk"], 10, True),
        ("json / text (2 cores) <= 1.3", wall["json, 2 cores"] / wall["text, 2 cores"], 1.3, False),
        ("peak RSS MiB <= 16", rss, 16, False),
        ("empty input ms < 5", empty, 5, False),
    ]
    print()
    for label, figure, target, at_least in checks:
        met = figure >= target if at_least else figure <= target
        print(f"{label:<36} {figure:>7.2f}  {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
