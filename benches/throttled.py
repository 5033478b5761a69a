#!/usr/bin/env python3
"""Backpressure with a slow output: OUTPUT is a FIFO drained at 5 MB/s.

    python3 benches/throttled.py [--seconds 20] [--rate 5e6] [--lines 5000000]

Runs the release binary on the clean corpus (made by benches/compare.py's generator) with its
output going into a FIFO that this script drains at --rate bytes/s. Every 0.2 s it compares how
far ingest has read its stdin (a regular file: /proc/PID/fdinfo/0 gives the offset) with how many
records have come out of the FIFO, and reports the largest lead of reading over writing, in input
bytes, against the configured in-flight bound; then peak RSS (VmHWM) before stopping ingest.
"""

import argparse
import fcntl
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches"))
import compare  # noqa: E402  (same build and corpus helpers)

CHUNK = 256 * 1024  # reader: bytes per read, and most bytes per batch
FLUSH = 256 * 1024  # writer: a buffer goes out at this size


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=5e6, help="bytes per second drained from the FIFO")
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    ingest, generator = compare.build()
    corpus = compare.corpus(generator, args.lines, "clean")
    with open(corpus, "rb") as f:
        data = f.read()
    # Offset just past line n, for n in 0..: where ingest must have read to for n records out.
    line_ends = [0]
    pos = data.find(b"\n")
    while pos != -1:
        line_ends.append(pos + 1)
        pos = data.find(b"\n", pos + 1)

    window = 2 * args.workers + 2

    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "out.fifo")
        os.mkfifo(fifo)
        drained = {"bytes": 0, "lines": 0}

        def drain():
            with open(fifo, "rb", buffering=0) as out:
                started = time.monotonic()
                while True:
                    # Read only what the rate allows so far.
                    allowed = int((time.monotonic() - started) * args.rate) - drained["bytes"]
                    if allowed <= 0:
                        time.sleep(0.01)
                        continue
                    chunk = out.read(min(allowed, 65536))
                    if not chunk:
                        return
                    drained["bytes"] += len(chunk)
                    drained["lines"] += chunk.count(b"\n")

        # The FIFO's own buffer holds records ingest wrote that the drainer has not read yet.
        fifo_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        pipe_bytes = fcntl.fcntl(fifo_fd, 1032)  # F_GETPIPE_SZ
        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        with open(corpus, "rb") as stdin:
            proc = subprocess.Popen([ingest, "-q", "-w", str(args.workers), fifo], stdin=stdin)
        max_lead = 0
        deadline = time.monotonic() + args.seconds
        hwm = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                with open(f"/proc/{proc.pid}/fdinfo/0") as info:
                    read_pos = int(next(l for l in info if l.startswith("pos:")).split()[1])
                with open(f"/proc/{proc.pid}/status") as status:
                    hwm = int(next(l for l in status if l.startswith("VmHWM:")).split()[1])
            except (FileNotFoundError, StopIteration, ProcessLookupError):
                break
            written_upto = line_ends[min(drained["lines"], len(line_ends) - 1)]
            max_lead = max(max_lead, read_pos - written_upto)
        proc.send_signal(2)
        proc.wait()
        os.close(fifo_fd)

    # Input bytes per output byte for these records: the writer's buffers hold output.
    ratio = line_ends[drained["lines"]] / max(drained["bytes"], 1)
    # Batches in the window, one read held by the reader thread, three writer buffers of up to
    # 2 x FLUSH bytes of output, and the FIFO's buffer.
    bound = window * CHUNK + CHUNK + int((3 * 2 * FLUSH + pipe_bytes) * ratio)

    print(f"FIFO drained at {args.rate / 1e6:.1f} MB/s for {args.seconds:.0f} s: {drained['bytes'] / 1e6:.1f} MB, "
          f"{drained['lines']} records")
    print(f"largest lead of reading over writing: {max_lead / 2**20:.2f} MiB of input "
          f"(bound: {bound / 2**20:.2f} MiB = {window} batches x 256 KiB + a read + 3 writer buffers "
          f"+ the FIFO's {pipe_bytes // 1024} KiB, at {ratio:.2f} input bytes per output byte)")
    print(f"peak RSS: {hwm / 1024:.1f} MiB")
    if max_lead > bound:
        sys.exit("the reader ran further ahead than the bound")


if __name__ == "__main__":
    main()
