#!/usr/bin/env python3
"""SIGKILL loop on a large corpus: kill `ingest --checkpoint` at random moments, rerun until it
finishes, and compare output and rejects byte for byte with one uninterrupted run.

    python3 benches/kill_loop.py [--lines 2000000] [--kills 20] [--seed N]

(`cargo test` runs the same loop on a small corpus: tests/checkpoint.rs.)
"""

import argparse
import filecmp
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (same build and corpus helpers)


def run(ingest, corpus, tmp, name, kill_after=None):
    cmd = [ingest, "-q", "--checkpoint", os.path.join(tmp, name + ".cp"),
           "--rejects", os.path.join(tmp, name + ".rej"), os.path.join(tmp, name + ".log")]
    with open(corpus, "rb") as stdin:
        proc = subprocess.Popen(cmd, stdin=stdin, stderr=subprocess.DEVNULL)
    if kill_after is not None:
        time.sleep(kill_after)
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)

    ingest, generator = compare.build()
    corpus = compare.corpus(generator, args.lines, "dirty")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        assert run(ingest, corpus, tmp, "reference") == 0
        whole = time.monotonic() - started
        killed = 0
        for _ in range(args.kills):
            if run(ingest, corpus, tmp, "run", kill_after=rng.uniform(0.01, whole * 0.5)) == -signal.SIGKILL:
                killed += 1
        while run(ingest, corpus, tmp, "run") != 0:
            pass
        same = all(filecmp.cmp(os.path.join(tmp, "reference" + ext), os.path.join(tmp, "run" + ext), shallow=False)
                   for ext in (".log", ".rej"))
        size = os.path.getsize(os.path.join(tmp, "run.log"))
    print(f"seed {args.seed}: {args.lines} lines, one run {whole:.2f} s; {killed} of {args.kills} runs killed "
          f"mid-run, then resumed; output ({size / 1e6:.0f} MB) and rejects identical: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
