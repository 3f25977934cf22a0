#!/usr/bin/env python3
"""The worker pool next to the in-process engine, in one run, alternating.

Why: the pool must cost next to nothing over the engine it wraps. Each round runs, on the
same model and the same total threads: the engine alone in process, the pool as one worker
with all threads, and the pool as one single-thread worker per CPU; then the batch sizes;
then the pool's own per-request cost on the `tiny` model. Medians over rounds and ratios to
the in-process engine are printed.

    tools/compare_pool.py [--model resnet50] [--seconds 10] [--rounds 3] [--batches 1,2,4,8]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from release_binary import release_binary


def bench(binary, arguments, seconds):
    command = [str(binary), "bench", *arguments, "--workload", "tensor", "--duration", str(seconds), "--warm-up", "2", "--json", "-"]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout)["runs"][0]["measurement"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="1,2,4,8")
    args = parser.parse_args()

    binary = release_binary()
    cpus = len(os.sched_getaffinity(0))
    model = ["--model", args.model, "--precision", "f32"]
    shapes = {
        f"in-process, {cpus} threads": ["--in-process", "--threads", str(cpus)],
        f"pool 1×{cpus}": ["--pool", "--workers", "1", "--threads", str(cpus)],
        f"pool {cpus}×1": ["--pool", "--workers", str(cpus), "--threads", "1"],
    }
    for batch in map(int, args.batches.split(",")):
        if batch > 1:
            shapes[f"pool {cpus}×1, batch ≤ {batch}"] = [
                "--pool", "--workers", str(cpus), "--threads", "1", "--max-batch", str(batch), "--batch-delay", "5",
                "--concurrency", str(cpus * 2 * batch)]

    rates = {name: [] for name in shapes}
    for _ in range(args.rounds):
        for name, arguments in shapes.items():
            rates[name].append(bench(binary, model + arguments, args.seconds)["images_per_second"])
    baseline = statistics.median(next(iter(rates.values())))
    print(f"{args.model}, f32, {cpus} CPUs, {args.seconds:g} s per run, {args.rounds} rounds alternating")
    print(f"{'configuration':<32} {'images/s':>9} {'× in-process':>13}   runs")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:<32} {rate:>9.1f} {rate / baseline:>13.3f}   {[round(v, 1) for v in values]}")

    print("\npool cost per request on `tiny` (latency less inference, p50), 1 request in flight:")
    for _ in range(args.rounds):
        result = bench(binary, ["--model", "tiny", "--pool", "--concurrency", "1"], min(args.seconds, 5))
        stages = result["stages"]
        overhead = result["latency"]["p50"] - stages["inference"]["p50"]
        print(f"  {overhead * 1000:.0f} µs  (queue {stages['queue']['p50'] * 1000:.0f} µs, copy {stages['decode']['p50'] * 1000:.0f} µs, "
              f"hand-back {stages['handoff']['p50'] * 1000:.0f} µs; {result['requests']} requests, {result['images_per_second']:.0f} images/s)")


if __name__ == "__main__":
    main()
