#!/usr/bin/env python3
"""visionpool next to what people would otherwise use, in one run, alternating.

- visionpool: `visionpool serve` on a Unix socket, measured by `visionpool bench --socket`
  (JPEGs sent as KServe v2 BYTES, decoded by the front into shared memory, run by the pool);
- the Python baseline the usual tutorials teach: a `concurrent.futures.ProcessPoolExecutor`
  with one worker per CPU, each with its own ONNX Runtime session limited to one intra-op
  thread, decoding with cv2 in the worker (the parent reads the files and sends the bytes);
- OpenVINO's own `benchmark_app -hint throughput` on the same ONNX file: the engine's
  ceiling on this machine, with no decoding at all.

With --int8 the same three run on the model's int8 copy too (MODEL-int8, made by
tools/models/quantize.py during set-up): visionpool serving it, the Python baseline on the
same int8 file (what a careful Python user could do), and benchmark_app on it; the report
also sets visionpool int8 against the Python baseline on f32, what the tutorials run.

Each round runs them one after another, so drift on a shared machine falls on all alike;
the report gives medians and ratios, and the CPU flags that decide which kernels run. With
--sweep it also runs `visionpool bench --pool --sweep …` on each workload and prints its
recommendations (charts into --charts).

    tools/compare_peers.py [--model resnet50] [--int8] [--workloads imagenet,camera]
                           [--engine openvino|onnxruntime] [--max-batch N]
                           [--seconds 15] [--rounds 3] [--sweep]

With --engine onnxruntime visionpool serves on the baseline's own engine, so the two differ
only in architecture: pinned workers, shared-memory slots, the front's decoding.

The baseline's packages (onnxruntime, opencv-python-headless) are installed into .venv
from tools/requirements-peers.txt on first use.
"""

import argparse
import concurrent.futures
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from server_process import wait_for_socket
from release_binary import ROOT, release_binary

PYTHON = ROOT / ".venv/bin/python"
WORKLOADS = {"imagenet": "ImageNet-size JPEGs (500×375)", "camera": "camera-size JPEGs (12 MP)"}


def ensure_peer_packages():
    probe = subprocess.run([str(PYTHON), "-c", "import onnxruntime, cv2"], capture_output=True)
    if probe.returncode != 0:
        print("installing the baseline's packages (tools/requirements-peers.txt) into .venv …", flush=True)
        subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(ROOT / "tools/requirements-peers.txt")], check=True)


# The baseline, as the tutorials write it. These functions run in the worker processes.
_session = None
_mean = None
_std = None


def _start_worker(model_path, mean, std):
    global _session, _mean, _std
    import cv2
    import numpy as np
    import onnxruntime

    cv2.setNumThreads(1)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    _session = onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    _mean = np.array(mean, dtype=np.float32)
    _std = np.array(std, dtype=np.float32)


def _classify(image_bytes):
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(image_bytes, np.uint8), cv2.IMREAD_COLOR)
    height, width = image.shape[:2]
    scale = 256 / min(height, width)
    image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
    height, width = image.shape[:2]
    top, left = (height - 224) // 2, (width - 224) // 2
    image = cv2.cvtColor(image[top:top + 224, left:left + 224], cv2.COLOR_BGR2RGB).astype(np.float32)
    tensor = ((image - _mean) / _std).transpose(2, 0, 1)[None]
    scores = _session.run(None, {_session.get_inputs()[0].name: tensor})[0]
    return int(scores.argmax())


def python_baseline(model_file, preprocessing, images, seconds, warm_up=2.0):
    """Images/s of the ProcessPoolExecutor baseline, keeping two requests per worker in flight."""
    workers = len(os.sched_getaffinity(0))
    initargs = (str(model_file), preprocessing["mean"], preprocessing["std"])
    with concurrent.futures.ProcessPoolExecutor(workers, initializer=_start_worker, initargs=initargs) as pool:
        list(pool.map(_classify, images[:workers]))  # sessions loaded
        in_flight, done, index = set(), 0, 0
        start = time.monotonic()
        measure_from, end = start + warm_up, start + warm_up + seconds
        while True:
            now = time.monotonic()
            while now < end and len(in_flight) < 2 * workers:
                in_flight.add(pool.submit(_classify, images[index % len(images)]))
                index += 1
            if not in_flight:
                break
            finished, in_flight = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
            now = time.monotonic()
            for future in finished:
                future.result()
                if measure_from <= now <= end:
                    done += 1
            if now >= end and not in_flight:
                break
        return done / seconds


def benchmark_app(model_file, seconds):
    command = [str(ROOT / ".venv/bin/benchmark_app"), "-m", str(model_file), "-d", "CPU", "-hint", "throughput",
               "-shape", "[1,3,224,224]", "-t", str(int(seconds))]
    output = subprocess.run(command, capture_output=True, text=True).stdout
    match = re.search(r"Throughput:\s+([\d.]+)\s+FPS", output)
    if not match:
        sys.exit(f"benchmark_app printed no throughput:\n{output[-2000:]}")
    return float(match.group(1))


def visionpool_bench(binary, arguments):
    command = [str(binary), "bench", *arguments, "--json", "-"]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout)


def label(configuration):
    return f"{configuration['workers']} workers × {configuration['threads']} threads, batch ≤ {configuration['batch']}"


def cpu_flags():
    """The flags that decide OpenVINO's and ONNX Runtime's kernels, as lscpu spells them."""
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    flags = next((line.split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    return " ".join(flag for flag in wanted if flag in flags) or "none of " + " ".join(wanted)


def main():
    # The baseline's worker processes import cv2 and onnxruntime, which live in .venv: a run
    # started by another Python (`python3 tools/compare_peers.py`) goes on under .venv's.
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        os.execv(PYTHON, [str(PYTHON), __file__, *sys.argv[1:]])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--int8", action="store_true", help="also run MODEL-int8, the model's quantized copy")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated, of {', '.join(WORKLOADS)}")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=0, help="visionpool's requests in flight (default: 4 per CPU)")
    parser.add_argument("--max-batch", type=int, default=0, help="visionpool serve's --max-batch (default: serve's own)")
    parser.add_argument("--engine", choices=["openvino", "onnxruntime"], default="openvino", help="visionpool serve's --engine")
    parser.add_argument("--sweep", action="store_true", help="also sweep the pool's shape on each workload")
    parser.add_argument("--charts", type=Path, default=Path(tempfile.gettempdir()), help="where --sweep writes its charts")
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    if not workloads or any(w not in WORKLOADS for w in workloads):
        sys.exit(f"--workloads takes a comma-separated list of {', '.join(WORKLOADS)}")

    ensure_peer_packages()
    binary = release_binary()
    cpus = len(os.sched_getaffinity(0))
    concurrency = args.concurrency or 4 * cpus
    models = [args.model] + ([f"{args.model}-int8"] if args.int8 else [])
    manifests = {}
    for model in models:
        path = ROOT / f"Models/{model}.json"
        if not path.is_file() or not (ROOT / "Models" / json.loads(path.read_text())["file"]).is_file():
            sys.exit(f"Models/{model} is missing: run tools/setup.sh (int8 copies come from tools/models/quantize.py)")
        manifests[model] = json.loads(path.read_text())
    images = {name: [path.read_bytes() for path in sorted((ROOT / "Models/bench" / name).glob("*.jpg"))] for name in workloads}
    if not all(images.values()):
        sys.exit("Models/bench is missing its JPEGs: run tools/setup.sh --prepare")

    folder = tempfile.mkdtemp(prefix="visionpool-peers-")
    sockets = {model: os.path.join(folder, f"{model}.sock") for model in models}
    batching = ["--max-batch", str(args.max_batch)] if args.max_batch else []
    servers = [subprocess.Popen([str(binary), "serve", "--socket", sockets[model], "--model", model, "--engine", args.engine, *batching],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for model in models]
    measurements = []  # (key, how to measure it once), run in this order every round
    for model in models:
        model_file = ROOT / "Models" / manifests[model]["file"]
        for workload in workloads:
            bench = ["--socket", sockets[model], "--model", model, "--workload", workload,
                     "--concurrency", str(concurrency), "--duration", str(args.seconds)]
            measurements.append((f"visionpool {model} {workload}", lambda bench=bench:
                                 visionpool_bench(binary, bench)["runs"][0]["measurement"]["images_per_second"]))
            measurements.append((f"python {model} {workload}", lambda f=model_file, m=model, w=workload:
                                 python_baseline(f, manifests[m]["preprocessing"], images[w], args.seconds)))
        measurements.append((f"benchmark_app {model}", lambda f=model_file: benchmark_app(f, args.seconds)))
    results = {key: [] for key, _ in measurements}
    try:
        for server, model in zip(servers, models):
            wait_for_socket(sockets[model], server)
        for round_number in range(1, args.rounds + 1):
            for key, measure in measurements:
                results[key].append(measure())
            print(f"round {round_number}: " + ", ".join(f"{key} {values[-1]:.1f}" for key, values in results.items()), flush=True)
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=60)

    median = {key: statistics.median(values) for key, values in results.items()}
    batch = f"serve --max-batch {args.max_batch}, " if args.max_batch else ""
    print(f"\n{args.model}, {cpus} CPUs (flags: {cpu_flags()}), visionpool on {args.engine}, {batch}{args.seconds:g} s per run, "
          f"{args.rounds} rounds alternating; "
          f"images/s (median):")
    for model in models:
        engine_ceiling = median[f"benchmark_app {model}"]
        print(f"  {model}:")
        print(f"    benchmark_app -hint throughput (no decoding)     {engine_ceiling:7.1f}")
        for workload in workloads:
            ours, theirs = median[f"visionpool {model} {workload}"], median[f"python {model} {workload}"]
            print(f"  {model}, {WORKLOADS[workload]}:")
            print(f"    visionpool ({args.engine}) through the Unix socket {ours:7.1f}")
            print(f"    Python ProcessPoolExecutor + ONNX Runtime        {theirs:7.1f}")
            print(f"    visionpool / Python baseline, same file          {ours / theirs:7.2f}×")
            print(f"    visionpool / benchmark_app, same file            {ours / engine_ceiling:7.2f}×")
            if model != args.model:
                print(f"    visionpool int8 / Python baseline on f32         {ours / median[f'python {args.model} {workload}']:7.2f}×")

    if args.sweep:
        print(f"\npool sweep, workers=1,2 threads=1,2 batch=1,4, {concurrency} in flight (shapes needing more CPUs are skipped):")
        for workload in workloads:
            chart = args.charts / f"visionpool-sweep-{workload}.png"
            report = visionpool_bench(binary, ["--pool", "--model", args.model, "--workload", workload, "--duration",
                                               str(args.seconds), "--concurrency", str(concurrency), "--sweep", "workers=1,2",
                                               "threads=1,2", "batch=1,4", "--chart", str(chart)])
            for run in report["runs"]:
                measurement = run["measurement"]
                print(f"  {workload:<9} {label(run['configuration']):<22} {measurement['images_per_second']:6.1f} images/s, "
                      f"p50 {measurement['latency']['p50']:7.1f} ms, p99 {measurement['latency']['p99']:7.1f} ms")
            for goal in ["throughput", "latency"]:
                pick = report["recommendation"][goal]
                print(f"  {workload:<9} recommended for {goal}: {label(pick['configuration'])} ({pick['reason']})")
            print(f"  chart: {chart}")


if __name__ == "__main__":
    main()
