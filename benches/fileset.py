#!/usr/bin/env python3
"""File sets and --follow, side by side in one go (issue 22's targets):

    python3 benches/fileset.py [--mb N] [--runs K] [--bin PATH] [--seconds S] [--extra OLD_BIN]

1. Throughput: `--from` a set of 10 rotated files of N/10 MB each (app.log.9 ... app.log.1,
   app.log) against `--from` one N MB file (default 500), and `--from big.log.gz` against
   `zcat big.log.gz | ingest`; K runs each (default 5), interleaved, each with a fresh
   checkpoint and OUTPUT on tmpfs. Medians and ratios. With --extra, another build's (a
   baseline's) runs of the same four are interleaved with them, and the ratios printed.
2. `--follow` latency: a writer appends 1,000 lines a second for S seconds (default 20), each
   carrying the time it was written; the follower writes them to OUTPUT, which this script reads
   as it grows (every millisecond): the time from a line's write to its record in OUTPUT,
   median, 99th percentile and worst.
   The same with the log rotated every 5 s (renamed to app.log-NNNN, the writer reopening
   app.log at once, as a `postrotate` reload does): the new file's first lines wait for the old
   one to be done with (quiet for --rotate-wait, 2 s) so that no late line of it comes after
   them; with --rotate-wait S, again with that value (2c).
3. `--follow` idle: CPU time (utime + stime, /proc) the follower takes over 60 s with nothing
   to read, per 10 s.
4. Peak RSS (VmHWM): a follower that read the N MB file and waits at its end, against a stdin
   run on the same file through a pipe (read just before the input closes).
"""

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time


def corpus_line(i):
    return (f"2026-04-15T{i // 3600 % 24:02}:{i // 60 % 60:02}:{i % 60:02}Z INFO "
            f"request {i} served in {i % 997} ms for user {i % 7919}\n")


def write_corpus(path, mb, start=0):
    """Lines from `start` until the file holds `mb` MB; returns the next line's number."""
    target, i, size = mb * 1_000_000, start, 0
    with open(path, "w") as f:
        chunk = []
        while size < target:
            line = corpus_line(i)
            chunk.append(line)
            size += len(line)
            i += 1
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return i


def median_runs(variants, runs, reset):
    times = {name: [] for name in variants}
    for _ in range(runs):
        for name, command in variants.items():
            reset()
            start = time.perf_counter()
            subprocess.run(["bash", "-c", command], check=True)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(samples) for name, samples in times.items()}


def proc_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return None


def cpu_seconds(pid):
    """CPU time (utime + stime) of `pid`, threads that ended included, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_lines(path, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path, "rb") as f:
                if f.read().count(b"\n") >= n:
                    return True
        time.sleep(0.05)
    return False


def follow_latency(binary, tmp, cp, out, seconds, rotate_every, label, extra=()):
    """A follower of a log written at 1,000 lines a second for `seconds` (renamed every
    `rotate_every` seconds, the writer reopening it at once): prints the time from a line's write
    to its record in OUTPUT; returns the follower, still running."""
    live = os.path.join(tmp, f"live{label}")
    os.makedirs(live)
    log = os.path.join(live, "app.log")
    open(log, "w").close()
    follower = subprocess.Popen([binary, "-q", "--from", log, "--follow", *extra, "--checkpoint", cp, out])
    wrote = {}

    def writer():
        f = open(log, "a")
        n, began, rotations = 0, time.perf_counter(), 0
        while n < seconds * 1000:
            due = began + n / 1000
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            if rotate_every and n > 0 and n % (rotate_every * 1000) == 0:
                rotations += 1
                os.rename(log, f"{log}-{rotations:04d}")
                f.close()
                f = open(log, "a")
            wrote[n] = time.perf_counter()
            f.write(f"2026-04-15T00:00:00Z INFO seq={n}\n")
            f.flush()
            n += 1
        f.close()

    thread = threading.Thread(target=writer)
    thread.start()
    latencies, seen, buf = [], 0, b""
    while os.path.exists(out) is False:
        time.sleep(0.001)
    with open(out, "rb") as f:
        deadline = time.time() + seconds + 30
        while seen < seconds * 1000 and time.time() < deadline:
            chunk = f.read()
            if not chunk:
                time.sleep(0.001)
                continue
            now = time.perf_counter()
            buf += chunk
            *whole, buf = buf.split(b"\n")
            for line in whole:
                n = int(line.rsplit(b"seq=", 1)[1])
                latencies.append((now - wrote[n]) * 1000)
                seen += 1
    thread.join()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    what = f", renamed every {rotate_every} s" if rotate_every else ""
    print(f"{label} --follow at 1,000 lines/s for {seconds} s{what}: {len(latencies)} lines; write -> OUTPUT "
          f"median {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, worst {latencies[-1]:.1f} ms")
    return follower


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--bin", default="target/release/ingest")
    parser.add_argument("--extra", help="another build to run beside --bin in section 1")
    parser.add_argument("--rotate-wait", type=float, help="section 2b again with this --rotate-wait")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        one = os.path.join(tmp, "one")
        sets = os.path.join(tmp, "set")
        os.makedirs(one)
        os.makedirs(sets)
        big = os.path.join(one, "big.log")
        lines = write_corpus(big, args.mb)
        subprocess.run(["gzip", "-k", "-6", big], check=True)
        os.rename(big + ".gz", os.path.join(tmp, "big.log.gz"))
        start = 0
        names = [f"app.log.{k}" for k in range(9, 0, -1)] + ["app.log"]
        for name in names:
            start = write_corpus(os.path.join(sets, name), args.mb // 10, start)
        out = os.path.join(tmp, "out.log")
        cp = os.path.join(tmp, "cp")

        def reset():
            for path in (out, cp):
                if os.path.exists(path):
                    os.remove(path)

        variants = {
            "--from one file": f"{binary} -q --from {big} --checkpoint {cp} {out}",
            "--from 10 files": f"{binary} -q --from {sets}/app.log --checkpoint {cp} {out}",
            "zcat .gz | ingest": f"zcat {tmp}/big.log.gz | {binary} -q {out}",
            "--from .gz": f"{binary} -q --from {tmp}/big.log.gz {out}",
        }
        if args.extra:
            extra = os.path.abspath(args.extra)
            variants.update({f"{name} (extra)": command.replace(binary, extra) for name, command in variants.items()})
        medians = median_runs(variants, args.runs, reset)
        print(f"1. {args.mb} MB, {lines} lines; {args.runs} runs each, interleaved")
        for name, median in medians.items():
            print(f"   {name:26} median {median:6.3f} s  {lines / median / 1e6:5.2f} M lines/s")
        for name in list(medians):
            if f"{name} (extra)" in medians:
                print(f"   {name}: {medians[name] / medians[f'{name} (extra)']:.3f}x the extra build's time")
        print(f"   10 files / one file: {medians['--from 10 files'] / medians['--from one file']:.3f}x the time;"
              f"  --from .gz / zcat | ingest: {medians['--from .gz'] / medians['zcat .gz | ingest']:.3f}x")

        # 2. Latency at 1,000 lines a second.
        reset()
        follower = follow_latency(binary, tmp, cp, out, args.seconds, None, "2.")

        # 3. Idle: over 60 s, as CPU time comes in clock ticks (10 ms).
        before = cpu_seconds(follower.pid)
        time.sleep(60)
        idle = cpu_seconds(follower.pid) - before
        print(f"3. --follow idle: {idle * 1000:.0f} ms of CPU in 60 s, {idle * 1000 / 6:.1f} ms per 10 s")
        follower.send_signal(signal.SIGTERM)
        follower.wait()

        # 2b. Latency across rotations.
        reset()
        rotating = follow_latency(binary, tmp, cp, out, args.seconds, 5, "2b.")
        rotating.send_signal(signal.SIGTERM)
        rotating.wait()
        if args.rotate_wait is not None:
            reset()
            label = f"2c. (--rotate-wait {args.rotate_wait})"
            extra = ["--rotate-wait", str(args.rotate_wait)]
            rotating = follow_latency(binary, tmp, cp, out, args.seconds, 5, label, extra)
            rotating.send_signal(signal.SIGTERM)
            rotating.wait()

        # 4. Peak RSS: a follower that read the big file, and a stdin run through a pipe.
        reset()
        follower = subprocess.Popen([binary, "-q", "--from", big, "--follow", "--checkpoint", cp, out])
        assert wait_lines(out, lines, 300), "the follower did not catch up"
        follow_rss = proc_field(follower.pid, "VmHWM")
        follower.send_signal(signal.SIGTERM)
        follower.wait()
        reset()
        stdin_run = subprocess.Popen([binary, "-q", out], stdin=subprocess.PIPE)
        with open(big, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                stdin_run.stdin.write(chunk)
        stdin_run.stdin.flush()
        assert wait_lines(out, lines, 300), "the stdin run did not catch up"
        stdin_rss = proc_field(stdin_run.pid, "VmHWM")
        stdin_run.stdin.close()
        stdin_run.wait()
        print(f"4. peak RSS: --follow {follow_rss / 1024:.1f} MiB, stdin {stdin_rss / 1024:.1f} MiB, "
              f"difference {(follow_rss - stdin_rss) / 1024:+.1f} MiB")


if __name__ == "__main__":
    main()
