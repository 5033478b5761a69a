#!/usr/bin/env python3
"""Following many logs (issue 28's targets), in one go:

    python3 benches/follow_logs.py [--logs N] [--dirs D] [--idle S] [--backlog-mb M] [--bin PATH]

1. Idle: `--from 'DIR/*/*.log' --follow --checkpoint` over N quiet logs (default 10,000) in D
   directories (default 1,000), each with one line: once every line is out, the follower's CPU
   time over S seconds (default 60; the default --rescan of 10 s falls in it), in ms per
   second, and its peak RSS; then a follower started again over that checkpoint: how soon a
   line written at its start is out.
2. Fairness: one log with a backlog of M MB (default 500) beside 999 logs written at one line
   a second each: how long the busy log's backlog takes to come out, against the same follower
   over the busy log alone; and, meanwhile, each quiet line's time from its write to OUTPUT
   (median, p99, worst).

Files go to a new directory under /dev/shm (the disk is not what is measured).
"""

import argparse
import os
import re
import resource
import subprocess
import tempfile
import threading
import time


SEQ = re.compile(rb"seq=(-?\d+)")


def cpu_seconds(pid):
    """CPU time (utime + stime) of `pid`, threads that ended included, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def count_lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def wait_for_lines(path, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if count_lines(path) >= n:
            return True
        time.sleep(0.2)
    raise SystemExit(f"{count_lines(path)} of {n} lines in {path} after {timeout} s")


def follower(binary, root, glob):
    return subprocess.Popen(
        [binary, "-q", "--from", glob, "--follow", "--checkpoint", "cp", "out.log"], cwd=root
    )


def stop(proc):
    proc.terminate()
    proc.wait(timeout=60)


def idle(binary, logs, dirs, seconds):
    root = tempfile.mkdtemp(prefix="ingest-follow-idle-", dir="/dev/shm")
    for n in range(logs):
        d = os.path.join(root, "logs", f"d{n % dirs}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"app{n}.log"), "w") as f:
            f.write(f"2026-04-15T00:00:00Z INFO log {n} started\n")
    proc = follower(binary, root, "logs/*/*.log")
    began = time.monotonic()
    wait_for_lines(os.path.join(root, "out.log"), logs, 600)
    first = time.monotonic() - began
    time.sleep(2)  # the last commit
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(seconds)
    cpu = cpu_seconds(proc.pid) - cpu0
    wall = time.monotonic() - t0
    rss = peak_rss_kib(proc.pid)
    stop(proc)
    # Started again over the checkpoint of every log: a line written at once is out when?
    proc = follower(binary, root, "logs/*/*.log")
    began = time.monotonic()
    with open(os.path.join(root, "logs", "d0", "app0.log"), "a") as f:
        f.write("2026-04-15T00:00:01Z INFO log 0 again\n")
    wait_for_lines(os.path.join(root, "out.log"), logs + 1, 600)
    restart = time.monotonic() - began
    stop(proc)
    subprocess.run(["rm", "-rf", root], check=True)
    print(f"1. {logs} quiet logs in {dirs} directories: all lines out in {first:.2f} s; then idle for "
          f"{wall:.0f} s: {cpu * 1000 / wall:.2f} ms CPU per second; peak RSS {rss / 1024:.1f} MiB; "
          f"restarted over their checkpoint, a line written at the start out in {restart:.2f} s")


def line(i):
    return (f"2026-04-15T{i // 3600 % 24:02}:{i // 60 % 60:02}:{i % 60:02}Z INFO "
            f"request {i} served in {i % 997} ms for user {i % 7919}\n")


def fairness(binary, backlog_mb, quiet_logs, with_quiet):
    root = tempfile.mkdtemp(prefix="ingest-follow-fair-", dir="/dev/shm")
    os.makedirs(os.path.join(root, "logs"))
    block = "".join(line(i) for i in range(10_000))
    busy_lines = 0
    with open(os.path.join(root, "logs", "busy.log"), "w") as f:
        while f.tell() < backlog_mb * 1_000_000:
            f.write(block)
            busy_lines += 10_000
    quiet = []
    if with_quiet:
        for q in range(quiet_logs):
            path = os.path.join(root, "logs", f"quiet{q:03}.log")
            with open(path, "w") as f:
                f.write(f"2026-04-15T00:00:00Z INFO quiet {q} seq=-1\n")
            quiet.append(path)
    out = os.path.join(root, "out.log")
    proc = follower(binary, root, "logs/*.log")
    began = time.monotonic()
    wrote, stop_writing = {}, threading.Event()

    def writer():
        files = [open(p, "a") for p in quiet]
        seq, tick = 0, time.perf_counter()
        while not stop_writing.is_set():
            for f in files:
                tick += 1.0 / len(files)
                delay = tick - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                wrote[seq] = time.perf_counter()
                f.write(f"2026-04-15T00:00:01Z INFO quiet seq={seq}\n")
                f.flush()
                seq += 1
                if stop_writing.is_set():
                    break
        for f in files:
            f.close()

    thread = threading.Thread(target=writer)
    if with_quiet:
        thread.start()
    latencies, busy_out, busy_done, buf = [], 0, None, b""
    while not os.path.exists(out):
        time.sleep(0.001)
    with open(out, "rb") as f:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            chunk = f.read(1 << 20)
            if not chunk:
                if busy_done is not None and (not with_quiet or time.monotonic() - busy_done > 5):
                    break
                time.sleep(0.001)
                continue
            now = time.perf_counter()
            buf += chunk
            cut = buf.rfind(b"\n") + 1
            whole, buf = buf[:cut], buf[cut:]
            # Searched in C: the busy log's records are millions.
            for n in SEQ.findall(whole):
                if int(n) >= 0:
                    latencies.append((now - wrote[int(n)]) * 1000)
            busy_out += whole.count(b" request ")
            if busy_out == busy_lines and busy_done is None:
                busy_done = time.monotonic()
    stop_writing.set()
    if with_quiet:
        thread.join()
    stop(proc)
    subprocess.run(["rm", "-rf", root], check=True)
    if busy_done is None:
        raise SystemExit(f"the busy log: {busy_out} of {busy_lines} lines out")
    return busy_done - began, busy_lines, sorted(latencies)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", type=int, default=10_000)
    ap.add_argument("--dirs", type=int, default=1_000)
    ap.add_argument("--idle", type=int, default=60)
    ap.add_argument("--backlog-mb", type=int, default=500)
    ap.add_argument("--quiet-logs", type=int, default=999)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default="target/release/ingest")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    binary = os.path.abspath(args.bin)
    idle(binary, args.logs, args.dirs, args.idle)
    alone, beside, latencies = [], [], []
    for _ in range(args.runs):
        took, lines, _ = fairness(binary, args.backlog_mb, args.quiet_logs, False)
        alone.append(took)
        took, _, lat = fairness(binary, args.backlog_mb, args.quiet_logs, True)
        beside.append(took)
        latencies += lat
    med = lambda xs: sorted(xs)[len(xs) // 2]
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    latencies.sort()
    print(f"2. a {args.backlog_mb} MB backlog ({lines} lines), {args.runs} runs each, interleaved: alone median "
          f"{med(alone):.2f} s; beside {args.quiet_logs} logs at 1 line/s median {med(beside):.2f} s "
          f"({med(alone) / med(beside) * 100:.0f}% of its rate alone)")
    print(f"   the quiet logs' lines meanwhile ({len(latencies)}): write -> OUTPUT median {p(0.5):.0f} ms, "
          f"p99 {p(0.99):.0f} ms, worst {latencies[-1]:.0f} ms")


if __name__ == "__main__":
    main()
