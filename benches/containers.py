#!/usr/bin/env python3
"""Container logs (issue 29's targets), side by side in one go:

    python3 benches/containers.py [--lines N] [--runs K] [--bin PATH] [--dir DIR]

1. Throughput: the same N lines (default 5,000,000) as a plain file (`TIMESTAMP SEVERITY
   MESSAGE`), as JSON lines (`--input json`), as a CRI file (each line a whole piece: `TIME stdout F TIMESTAMP SEVERITY
   MESSAGE`, read with `--input cri`, the program's lines judged `plain`), as a CRI file of
   JSON lines (`--input cri`, judged `json`), and as Docker's json-file (`--input docker`),
   also with the `attrs` that `--log-opt labels=...` adds; plain and CRI with `--multiline`
   (every line a record's start: what looking for records costs);
   K runs each (default 5), interleaved, file to file. Medians, lines/s, the ratio to plain's.
2. Memory: 200 lines of 1 MB, written by a runtime in 16 KiB pieces interleaved with stderr
   lines, against the same 200 lines of 1 MB written whole (plain), and against 200 MB of short
   plain lines: peak RSS of each (`/usr/bin/time`-free: VmHWM from /proc while it runs).
   How much piles up depends on how the writer keeps up with the reader, so also the worst
   case: the same runs with an output that takes nothing (standard output, a pipe nobody reads),
   measured once the reader has stopped: the bytes it read ahead and the peak RSS.

The files go to DIR (default: a new directory under /dev/shm, so that the disk is not what is
measured).
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time


def stamp(i):
    return f"2026-04-15T{i // 3600 % 24:02}:{i // 60 % 60:02}:{i % 60:02}.{i % 1000:03}Z"


def runtime_time(i):
    """As a runtime writes it: RFC 3339 with nanoseconds."""
    return f"{stamp(i)[:-1]}000000Z"


def message(i):
    return f"request {i} served in {i % 997} ms for user {i % 7919}"


def write_corpora(root, lines):
    paths = {k: os.path.join(root, f"{k}-{lines}.log") for k in ("plain", "json", "cri", "cri-json", "docker", "docker-attrs")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    with open(paths["plain"], "w") as plain, open(paths["cri"], "w") as cri, open(paths["json"], "w") as js, \
            open(paths["cri-json"], "w") as cri_json, open(paths["docker"], "w") as docker, \
            open(paths["docker-attrs"], "w") as docker_attrs:
        for i in range(lines):
            line = f"{stamp(i)} INFO {message(i)}"
            plain.write(line + "\n")
            cri.write(f"{runtime_time(i)} stdout F {line}\n")
            as_json = json.dumps({"time": stamp(i), "level": "info", "msg": message(i)}, separators=(",", ":"))
            js.write(as_json + "\n")
            cri_json.write(f"{runtime_time(i)} stdout F {as_json}\n")
            docker.write(json.dumps({"log": line + "\n", "stream": "stdout", "time": runtime_time(i)},
                                    separators=(",", ":")) + "\n")
            # Docker's order: attrs between stream and time.
            attrs = {"com.example.app": "shop", "tag": "web"}
            docker_attrs.write(json.dumps({"log": line + "\n", "stream": "stdout", "attrs": attrs,
                                           "time": runtime_time(i)}, separators=(",", ":")) + "\n")
    return paths


def run(cmd):
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def peak_rss_kib(cmd):
    """Runs `cmd` to its end, sampling VmHWM (which only grows) until it exits."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            break
        time.sleep(0.01)
    assert proc.returncode == 0, cmd
    return peak


def stalled(cmd):
    """Runs `cmd` with its standard output a pipe nobody reads until it has read nothing for
    a second: the bytes it read and its peak RSS in KiB then."""
    def figure(name, key):
        with open(f"/proc/{proc.pid}/{name}") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(key))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    try:
        read, still, deadline = -1, 0, time.monotonic() + 60
        while still < 20 and time.monotonic() < deadline:
            now = figure("io", "rchar:")
            still, read = (still + 1 if now == read else 0), now
            time.sleep(0.05)
        return read, figure("status", "VmHWM:")
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default="target/release/ingest")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    root = args.dir or tempfile.mkdtemp(prefix="ingest-containers-", dir="/dev/shm")
    os.makedirs(root, exist_ok=True)
    paths = write_corpora(root, args.lines)
    out = os.path.join(root, "out")
    cmds = {
        "plain": [binary, "-q", "--input", "plain", paths["plain"]],
        "cri (plain inside)": [binary, "-q", "--input", "cri", paths["cri"]],
        "plain --multiline": [binary, "-q", "--input", "plain", "--multiline", paths["plain"]],
        "cri --multiline": [binary, "-q", "--input", "cri", "--multiline", paths["cri"]],
        "json": [binary, "-q", "--input", "json", paths["json"]],
        "cri (json inside)": [binary, "-q", "--input", "cri", paths["cri-json"]],
        "docker (plain inside)": [binary, "-q", "--input", "docker", paths["docker"]],
        "docker with attrs": [binary, "-q", "--input", "docker", paths["docker-attrs"]],
    }
    for name, cmd in cmds.items():
        # Every line a record: a corpus the layout rejected would measure nothing.
        done = subprocess.run(cmd[:-1] + ["--stats-json", "-", "--from", cmd[-1], out], check=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stats = json.loads(done.stderr.strip().splitlines()[-1])
        assert stats["written"] == args.lines, (name, stats)
    times = {k: [] for k in cmds}
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            # The file given by --from, OUTPUT a file on the same tmpfs (removed each run).
            full = cmd[:-1] + ["--from", cmd[-1], out]
            if os.path.exists(out):
                os.remove(out)
            times[name].append(run(full))
    base = statistics.median(times["plain"])
    print(f"1. {args.lines} lines, medians of {args.runs} runs, interleaved:")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"   {name:24} {m:7.3f} s  {args.lines / m / 1e6:6.2f} M lines/s  "
              f"{base / m:5.2f}x plain's lines/s   (runs: {['%.3f' % x for x in t]})")
    os.remove(out)

    # 2. Memory: 1 MB lines in 16 KiB pieces (stderr lines between), whole, and short lines.
    piece = 16 * 1024
    big = os.path.join(root, "big-pieces-v2.log")
    whole = os.path.join(root, "big-whole.log")
    short = os.path.join(root, "short.log")
    if not os.path.exists(big):
        body = "x" * 1_000_000
        with open(big, "w") as b, open(whole, "w") as w, open(short, "w") as s:
            for i in range(200):
                parts = [body[k:k + piece] for k in range(0, len(body), piece)]
                for k, part in enumerate(parts):
                    tag = "F" if k == len(parts) - 1 else "P"
                    b.write(f"{runtime_time(i)} stdout {tag} {part}\n")
                    if k % 16 == 0:
                        b.write(f"{runtime_time(i)} stderr F progress {i}.{k}\n")
                w.write(f"{stamp(i)} INFO {body}\n")
            for i in range(200_000_000 // 62):
                s.write(f"{stamp(i)} INFO {message(i)}\n")
    print("2. peak RSS (VmHWM), --max-line-bytes default (1 MiB):")
    for name, path, extra in (("1 MB lines in 16 KiB pieces (cri)", big, ["--input", "cri"]),
                              ("the same lines whole (plain)", whole, ["--input", "plain"]),
                              ("200 MB of short lines (plain)", short, ["--input", "plain"])):
        kib = peak_rss_kib([binary, "-q"] + extra + ["--from", path, out])
        os.remove(out)
        print(f"   {name:36} {kib / 1024:7.1f} MiB")
    print("   the worst case, an output that takes nothing (read ahead, peak RSS):")
    for name, path, extra in (("1 MB lines in 16 KiB pieces (cri)", big, ["--input", "cri"]),
                              ("the same lines whole (plain)", whole, ["--input", "plain"])):
        read, kib = stalled([binary, "-q"] + extra + ["--from", path, "-"])
        print(f"   {name:36} {read / 1e6:7.1f} MB {kib / 1024:7.1f} MiB")


if __name__ == "__main__":
    main()
