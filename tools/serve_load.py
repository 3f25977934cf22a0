#!/usr/bin/env python3
"""End-to-end load on `visionpool serve` over its Unix socket, next to the in-process engine.

Why: what users get is images in, classes out, through the socket. This starts a server,
sends ImageNet-size JPEGs (≈500×375, made from the bundled photos) as BYTES with the
classification extension, closed loop at each concurrency, then open loop (Poisson
arrivals) at a fraction of the peak to show latency under load, and runs the in-process
engine benchmark in the same invocation for the ratio.

    tools/serve_load.py [--model resnet50] [--seconds 15] [--concurrency 4,8] [--load 0.7]
"""

import argparse
import http.client
import io
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from release_binary import ROOT, release_binary


class UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix-domain socket, kept alive across requests."""

    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def imagenet_size_jpegs():
    """The bundled photos as 500×375 JPEGs (quality 90), the size of a typical ImageNet image."""
    images = []
    for photo in sorted((ROOT / "Models/samples").glob("*")):
        picture = Image.open(photo).convert("RGB").resize((500, 375), Image.BILINEAR)
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def infer_body(model, image):
    payload = struct.pack("<I", len(image)) + image
    header = json.dumps({
        "inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(payload)}}],
        "outputs": [{"name": "logits", "parameters": {"classification": 5}}],
    }).encode()
    return header + payload, {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}


def send(connection, model, body, headers):
    start = time.monotonic()
    connection.request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"status {response.status}")
    return time.monotonic() - start


def closed_loop(path, model, bodies, concurrency, seconds):
    latencies, lock = [], threading.Lock()
    end = time.monotonic() + seconds

    def client(index):
        connection = UnixConnection(path)
        position = index
        while time.monotonic() < end:
            body, headers = bodies[position % len(bodies)]
            elapsed = send(connection, model, body, headers)
            with lock:
                latencies.append(elapsed)
            position += concurrency

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.monotonic() - start), latencies


def open_loop(path, model, bodies, rate, seconds):
    """Poisson arrivals at `rate`; latency counts from the scheduled arrival, so queueing shows."""
    local = threading.local()
    latencies, lock = [], threading.Lock()

    def request(scheduled, body, headers):
        if not hasattr(local, "connection"):
            local.connection = UnixConnection(path)
        send(local.connection, model, body, headers)
        with lock:
            latencies.append(time.monotonic() - scheduled)

    generator = random.Random(7)
    with ThreadPoolExecutor(max_workers=64) as pool:
        now = start = time.monotonic()
        index = 0
        while now - start < seconds:
            now += generator.expovariate(rate)
            time.sleep(max(0.0, now - time.monotonic()))
            body, headers = bodies[index % len(bodies)]
            pool.submit(request, now, body, headers)
            index += 1
    return latencies


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", default="4,8")
    parser.add_argument("--load", type=float, default=0.7, help="open-loop rate as a fraction of the peak")
    parser.add_argument("--server-args", default="", help="extra arguments for visionpool serve")
    args = parser.parse_args()

    binary = str(release_binary())
    path = os.path.join(tempfile.mkdtemp(prefix="visionpool-load-"), "visionpool.sock")
    server = subprocess.Popen([binary, "serve", "--socket", path, "--model", args.model, *args.server_args.split()],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = UnixConnection(path)
                connection.request("GET", "/v2/health/ready")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit(f"the server did not become ready: {server.stderr.read().decode()[-2000:] if server.poll() is not None else ''}")
            time.sleep(0.1)
        bodies = [infer_body(args.model, image) for image in imagenet_size_jpegs()]
        sizes = [len(body) for body, _ in bodies]
        print(f"{args.model}, {len(bodies)} ImageNet-size JPEGs (500×375, {min(sizes) // 1024}–{max(sizes) // 1024} KB), "
              f"{args.seconds:g} s per run")
        closed_loop(path, args.model, bodies, 4, 3)  # warm-up
        peak = 0.0
        for concurrency in map(int, args.concurrency.split(",")):
            rate, latencies = closed_loop(path, args.model, bodies, concurrency, args.seconds)
            peak = max(peak, rate)
            print(f"socket, concurrency {concurrency}: {rate:6.1f} images/s  p50 {percentile(latencies, 0.5) * 1000:6.1f} ms  "
                  f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms")
        latencies = open_loop(path, args.model, bodies, args.load * peak, args.seconds)
        print(f"socket, open loop at {args.load:.0%} of peak ({args.load * peak:.1f}/s): p50 {percentile(latencies, 0.5) * 1000:6.1f} ms  "
              f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms  ({len(latencies)} requests)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    engine = json.loads(subprocess.run([binary, "bench", "--in-process", "--model", args.model, "--threads", str(len(os.sched_getaffinity(0))),
                                        "--duration", str(args.seconds), "--json"], check=True, capture_output=True, text=True).stdout)
    in_process = engine["result"]["images_per_second"]
    print(f"in-process engine, {len(os.sched_getaffinity(0))} threads: {in_process:6.1f} images/s")
    print(f"socket peak / in-process engine: {peak / in_process:.3f}")


if __name__ == "__main__":
    main()
