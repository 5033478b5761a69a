#!/usr/bin/env python3
"""Many logs in one run (issue 28's targets), side by side in one go:

    python3 benches/logs.py [--logs N] [--dirs D] [--mb M] [--runs K] [--bin PATH] [--dir DIR]
                            [--extra PATH]

1. Throughput: `--from 'DIR/*/*.log' --checkpoint` over N logs (default 10,000) in D
   directories (default 1,000), M MB in all (default 1,000), against `--from one.log
   --checkpoint` over one file of the same lines; K runs each (default 3), interleaved, each
   with a fresh checkpoint and OUTPUT. Medians and the ratio of rates.
2. Startup: a rerun over the N logs with nothing new (the checkpoint knows all of them).
3. A commit's cost: one log grows by 10 lines, a rerun: how many bytes the checkpoint grew by,
   against its size.

The files go to DIR (default: a new directory under /dev/shm, so that the disk is not what
is measured). `--extra PATH`: another build's first run over the N logs, interleaved with the
others (a baseline in the same go).
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time


def line(i):
    return (f"2026-04-15T{i // 3600 % 24:02}:{i // 60 % 60:02}:{i % 60:02}Z INFO "
            f"request {i} served in {i % 997} ms for user {i % 7919}\n")


def run(cmd, cwd):
    start = time.monotonic()
    subprocess.run(cmd, cwd=cwd, check=True)
    return time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", type=int, default=10_000)
    ap.add_argument("--dirs", type=int, default=1_000)
    ap.add_argument("--mb", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default="target/release/ingest")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--extra", default=None)
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    root = args.dir or tempfile.mkdtemp(prefix="ingest-logs-", dir="/dev/shm")
    per_log = args.mb * 1_000_000 // args.logs
    lines_per_log = max(1, per_log // len(line(0)))
    text = "".join(line(i) for i in range(lines_per_log))
    print(f"writing {args.logs} logs of {len(text)} bytes in {args.dirs} directories under {root}")
    for n in range(args.logs):
        d = os.path.join(root, "logs", f"d{n % args.dirs}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"app{n}.log"), "w") as f:
            f.write(text)
    with open(os.path.join(root, "one.log"), "w") as f:
        for _ in range(args.logs):
            f.write(text)
    many = [binary, "-q", "--from", "logs/*/*.log", "--checkpoint", "many.cp", "many.out"]
    one = [binary, "-q", "--from", "one.log", "--checkpoint", "one.cp", "one.out"]
    times = {"many": [], "one": [], "extra": []}
    cmds = [("one", one), ("many", many)]
    if args.extra:
        extra = [os.path.abspath(args.extra)] + many[1:]
        extra[extra.index("many.cp")] = "extra.cp"
        extra[extra.index("many.out")] = "extra.out"
        cmds.append(("extra", extra))
    def clear(name):
        for f in (f"{name}.cp", f"{name}.out"):
            try:
                os.remove(os.path.join(root, f))
            except FileNotFoundError:
                pass

    for k in range(args.runs):
        # Each run in another place of the order: on a shared machine the place alone moved a
        # command's time by 20% (the one after the many-logs run was the slowest).
        for name, cmd in cmds[k % len(cmds):] + cmds[:k % len(cmds)]:
            clear(name)
            times[name].append(run(cmd, root))
            # Memory back before the next run writes its OUTPUT.
            clear(name)
    # The reruns below start from a first run's checkpoint and OUTPUT.
    run(many, root)
    m_one, m_many = statistics.median(times["one"]), statistics.median(times["many"])
    total = args.logs * len(text) / 1e6
    print(f"1. {args.logs} logs, {total:.0f} MB: first run median {m_many:.3f} s "
          f"({total / m_many:.0f} MB/s); one file: {m_one:.3f} s ({total / m_one:.0f} MB/s); "
          f"many logs at {m_one / m_many:.0%} of one file's rate "
          f"(runs: many {['%.3f' % t for t in times['many']]}, one {['%.3f' % t for t in times['one']]})")
    if args.extra:
        m_extra = statistics.median(times["extra"])
        print(f"   {args.extra}: first run median {m_extra:.3f} s, at {m_one / m_extra:.0%} of one file's "
              f"rate; this build takes {m_many / m_extra:.3f}x its time "
              f"(runs: {['%.3f' % t for t in times['extra']]})")
    reruns = [run(many, root) for _ in range(args.runs)]
    print(f"2. rerun with nothing new over {args.logs} known logs: median {statistics.median(reruns):.3f} s")
    cp = os.path.join(root, "many.cp")
    grew = []
    for k in range(args.runs):
        before = os.path.getsize(cp)
        with open(os.path.join(root, "logs", "d0", "app0.log"), "a") as f:
            f.write("".join(line(i) for i in range(10)))
        run(many, root)
        grew.append(os.path.getsize(cp) - before)
    print(f"3. one log grows by 10 lines, a rerun: the checkpoint grew by {grew} bytes "
          f"(its size {os.path.getsize(cp)} bytes)")


if __name__ == "__main__":
    main()
