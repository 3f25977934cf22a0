#!/usr/bin/env python3
"""Soak test: `visionpool serve` for a long time at ~70 % of its peak, with workers killed.

Starts a server, measures its peak (closed loop), then offers --load × peak as an open loop
(Poisson arrivals, via `visionpool bench --socket --rate`) minute after minute with a
realistic mix of photos (ImageNet-size mostly, some 12 MP camera images), and SIGKILLs a
random worker every --kill-every seconds. Every few seconds it samples the resident memory
and open descriptors (sockets aside) of the front and of each worker.

A shared machine slows down and speeds up by tens of percent within minutes (other tenants
share its caches, memory bandwidth and cores; little of it shows as steal, printed too).
70 % of a peak measured at the start can become 100 % of a slower machine, and then the
queue, not the server, sets p99. So the load follows the machine: each minute offers
--load × peak divided by the slowdown, the server's own inference p50 in the previous minute
over its p50 at the peak (never below 1), and p99 is judged divided by the same minute's
slowdown. Both raw and adjusted figures are printed.

At the end it checks the targets after warm-up: memory and descriptors flat (the median of the
last five minutes within 10 % of the first five), p99 flat (the same trend within 25 %, and
the worst minute is reported), and no lost request.

    tools/soak.py [--minutes 30] [--model resnet50] [--load 0.7] [--kill-every 300] [--json FILE]
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from server_process import wait_for_socket
from release_binary import release_binary

WORKLOAD = "imagenet=9,camera=1"


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(found)


def resident_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def descriptors(pid):
    """Open descriptors other than sockets: connections come and go with the load, a leaked
    file, memfd, pidfd or pipe does not."""
    try:
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return None
    return sum(1 for target in targets if not target.startswith("socket:"))


class Sampler(threading.Thread):
    """Memory and descriptors of the front and its workers every few seconds, by minute."""

    def __init__(self, front, interval=5):
        super().__init__(daemon=True)
        self.front, self.interval = front, interval
        self.samples = []  # (time, front rss, front fds, [worker rss], [worker fds])
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            workers = children(self.front)
            self.samples.append((time.monotonic(), resident_bytes(self.front), descriptors(self.front),
                                 [resident_bytes(pid) for pid in workers], [descriptors(pid) for pid in workers]))


def bench(binary, socket_path, model, arguments):
    command = [str(binary), "bench", "--socket", socket_path, "--model", model, "--workload", WORKLOAD, "--json", "-", *arguments]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0 and not run.stdout:
        sys.exit(f"{' '.join(command)} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout)["runs"][0]["measurement"]


def cpu_times():
    """The machine's CPU time so far (jiffies): total, and stolen by the hypervisor."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return sum(fields[:8]), fields[7]


def drift(values, span=5):
    """The trend: the median of the last `span` minutes against that of the first `span`
    (single minutes swing with the load; a leak keeps growing)."""
    values = [value for value in values if value]
    if len(values) < 2:
        return 0.0
    first, last = statistics.median(values[:span]), statistics.median(values[-span:])
    return abs(last - first) / first


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--load", type=float, default=0.7, help="offered rate as a fraction of the measured peak")
    parser.add_argument("--kill-every", type=float, default=300, help="seconds between worker kills (0: none)")
    parser.add_argument("--warm-up-minutes", type=int, default=2, help="minutes left out of the flatness checks")
    parser.add_argument("--json", help="write the per-minute figures here")
    args = parser.parse_args()

    binary = release_binary()
    socket_path = os.path.join(tempfile.mkdtemp(prefix="visionpool-soak-"), "visionpool.sock")
    server = subprocess.Popen([str(binary), "serve", "--socket", socket_path, "--model", args.model],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_socket(socket_path, server)
    try:
        peak = bench(binary, socket_path, args.model, ["--concurrency", str(2 * len(os.sched_getaffinity(0))), "--duration", "30"])
        rate = args.load * peak["images_per_second"]
        reference_inference = peak["stages"]["inference"]["p50"]
        print(f"{args.model}, {WORKLOAD}: peak {peak['images_per_second']:.1f} images/s (inference p50 {reference_inference:.0f} ms); "
              f"offering {rate:.1f}/s ÷ slowdown for {args.minutes} min, a worker killed every {args.kill_every:g} s", flush=True)
        sampler = Sampler(server.pid)
        sampler.start()
        kills = []
        generator = random.Random(11)
        next_kill = time.monotonic() + args.kill_every if args.kill_every > 0 else float("inf")
        minutes = []
        print(f"{'min':>3} {'offered':>7} {'img/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'infer ms':>8} {'queue ms':>8} {'slow':>5} "
              f"{'p99/slow':>8} {'steal':>5} {'failed':>6} {'front MB':>8} {'workers MB':>11} {'fds':>9} {'kills':>5}", flush=True)
        slowdown = 1.0
        for minute in range(1, args.minutes + 1):
            start = time.monotonic()
            cpu_before = cpu_times()
            offered = rate / slowdown
            killer = None
            if next_kill < start + 60:
                def kill_one(delay):
                    time.sleep(delay)
                    workers = children(server.pid)
                    if workers:
                        victim = generator.choice(workers)
                        os.kill(victim, signal.SIGKILL)
                        kills.append((time.monotonic(), victim))
                killer = threading.Thread(target=kill_one, args=(max(0.0, next_kill - start),), daemon=True)
                killer.start()
                next_kill += args.kill_every
            measurement = bench(binary, socket_path, args.model, ["--rate", f"{offered:.3f}", "--duration", "60", "--warm-up", "0"])
            cpu_after = cpu_times()
            slowdown = max(1.0, measurement["stages"]["inference"]["p50"] / reference_inference)
            if killer:
                killer.join()
            window = [sample for sample in sampler.samples if start <= sample[0] < time.monotonic()]
            last = window[-1] if window else (0, None, None, [], [])
            # Connections come and go with the load generator: the minute's median says more than one sample.
            front_fds = statistics.median([sample[2] for sample in window if sample[2]]) if window else None
            row = {
                "minute": minute, "offered_per_second": offered, "images_per_second": measurement["images_per_second"],
                "p50_ms": measurement["latency"]["p50"], "p99_ms": measurement["latency"]["p99"], "slowdown": slowdown,
                "adjusted_p99_ms": measurement["latency"]["p99"] / slowdown,
                "steal": (cpu_after[1] - cpu_before[1]) / max(1, cpu_after[0] - cpu_before[0]),
                "failed": measurement["failed"] + measurement["dropped"],
                "stage_p50_ms": {stage: summary["p50"] for stage, summary in measurement["stages"].items()},
                "failures": measurement["failures"], "front_rss_bytes": last[1], "front_fds": front_fds,
                "worker_rss_bytes": last[3], "worker_fds": last[4], "kills": sum(1 for moment, _ in kills if moment >= start),
            }
            minutes.append(row)
            workers_mb = "/".join(str((value or 0) >> 20) for value in row["worker_rss_bytes"])
            fds = f"{row['front_fds']:g}/{'+'.join(str(value) for value in row['worker_fds'])}"
            stages = row["stage_p50_ms"]
            print(f"{minute:>3} {offered:>7.1f} {row['images_per_second']:>6.1f} {row['p50_ms']:>7.0f} {row['p99_ms']:>7.0f} "
                  f"{stages.get('inference', 0):>8.0f} {stages.get('queue', 0):>8.0f} {slowdown:>5.2f} {row['adjusted_p99_ms']:>8.0f} "
                  f"{row['steal']:>5.1%} {row['failed']:>6} "
                  f"{(row['front_rss_bytes'] or 0) >> 20:>8} {workers_mb:>11} {fds:>9} {row['kills']:>5}", flush=True)
        sampler.stopped.set()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    steady = minutes[args.warm_up_minutes:] or minutes
    front_drift = drift([row["front_rss_bytes"] for row in steady])
    worker_fd_drift = drift([max(filter(None, row["worker_fds"]), default=0) for row in steady])
    # Workers are replaced by the kills, so their memory is compared as the largest per minute.
    worker_drift = drift([max(filter(None, row["worker_rss_bytes"]), default=0) for row in steady])
    fd_drift = max(drift([row["front_fds"] for row in steady]), worker_fd_drift)
    p99s = [row["adjusted_p99_ms"] for row in steady]
    p99_drift = drift(p99s)
    worst = max(steady, key=lambda row: row["adjusted_p99_ms"])
    lost = sum(row["failed"] for row in minutes)
    print(f"\nafter {args.warm_up_minutes} min of warm-up: front RSS drift {front_drift:.1%}, worker RSS drift {worker_drift:.1%}, "
          f"descriptors (not sockets) drift {fd_drift:.1%}; p99 ÷ slowdown median {statistics.median(p99s):.0f} ms, drift {p99_drift:.1%}, "
          f"worst minute {worst['minute']} ({worst['adjusted_p99_ms']:.0f} ms{', a worker killed' if worst['kills'] else ''}); "
          f"raw p99 {min(row['p99_ms'] for row in steady):.0f}–{max(row['p99_ms'] for row in steady):.0f} ms; "
          f"{len(kills)} workers killed; {lost} requests lost")
    verdicts = {"memory flat (trend ≤ 10 %)": max(front_drift, worker_drift) <= 0.10, "descriptors flat (trend ≤ 10 %)": fd_drift <= 0.10,
                "p99 flat (trend ≤ 25 %, slowdown taken out)": p99_drift <= 0.25, "no lost request": lost == 0}
    for name, ok in verdicts.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rate": rate, "peak": peak["images_per_second"], "reference_inference_ms": reference_inference,
                       "minutes": minutes, "kills": len(kills)}, out, indent=2)
    sys.exit(0 if all(verdicts.values()) else 1)


if __name__ == "__main__":
    main()
