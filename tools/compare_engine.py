#!/usr/bin/env python3
"""visionpool's in-process engine next to OpenVINO's own benchmark_app, in one run.

Why: the engine wrapper must not cost throughput. Both tools run the same ONNX file at
batch 1 on every core (benchmark_app's -hint latency refuses -nthreads, so visionpool's
--threads defaults to the core count), alternating round by round so the machine's noise
falls on both alike; the report gives medians and the ratio visionpool / benchmark_app.

    tools/compare_engine.py [--model resnet50] [--threads 2] [--seconds 15] [--rounds 3]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from release_binary import ROOT, release_binary


def visionpool_rate(binary: Path, model: str, threads: int, seconds: float, precision: str) -> float:
    command = [str(binary), "bench", "--in-process", "--model", model, "--threads", str(threads),
               "--precision", precision, "--duration", str(seconds), "--warm-up", "2", "--json", "-"]
    report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return report["runs"][0]["measurement"]["images_per_second"]


def benchmark_app_rate(model_file: Path, seconds: float, precision: str) -> float:
    command = [str(ROOT / ".venv/bin/benchmark_app"), "-m", str(model_file), "-d", "CPU", "-hint", "latency",
               "-shape", "[1,3,224,224]", "-t", str(int(seconds))]
    if precision != "default":
        command += ["-infer_precision", precision]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    match = re.search(r"Throughput:\s+([\d.]+)\s+FPS", output)
    if match is None:
        sys.exit(f"benchmark_app printed no throughput:\n{output[-2000:]}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", default="default,f32")
    args = parser.parse_args()

    binary = release_binary()
    model_file = ROOT / "Models" / f"{args.model}.onnx"

    print(f"{args.model}, batch 1, {args.threads} threads, {args.seconds:g} s per run, {args.rounds} rounds alternating")
    print(f"{'precision':<10} {'visionpool img/s':>18} {'benchmark_app img/s':>20} {'ratio':>7}")
    for precision in args.precisions.split(","):
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(visionpool_rate(binary, args.model, args.threads, args.seconds, precision))
            theirs.append(benchmark_app_rate(model_file, args.seconds, precision))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{precision:<10} {a:>18.1f} {b:>20.1f} {a / b:>7.3f}   runs: {[round(x, 1) for x in ours]} vs {[round(x, 1) for x in theirs]}")


if __name__ == "__main__":
    main()
