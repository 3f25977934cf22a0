#!/usr/bin/env python3
"""Drive `visionpool serve` with Triton's own Python client over the loopback TCP listener.

Why: the Open Inference Protocol is only worth speaking if existing clients understand it.
This starts a server (or uses --url), then checks health, metadata, inference with FP32
tensors as JSON and as binary data, encoded images as BYTES, and the classification
extension, with `tritonclient.http`. It prints one line per check and exits non-zero if any
fails.

    tools/triton_conformance.py [--binary PATH] [--model efficientnet-lite0] [--url 127.0.0.1:PORT]
"""

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import tritonclient.http as http

from release_binary import ROOT, release_binary
CAT_CLASSES = range(281, 286)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(binary, model):
    port = free_port()
    folder = tempfile.mkdtemp(prefix="visionpool-conformance-")
    command = [binary, "serve", "--socket", f"{folder}/visionpool.sock", "--tcp", f"127.0.0.1:{port}", "--model", model,
               "--workers", "2", "--threads", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = http.InferenceServerClient(url=f"127.0.0.1:{port}")
    wait_until_ready(server, client.is_server_ready)
    return server, client


def wait_until_ready(server, ready):
    """Polls `ready` for up to 60 s; exits with the server's error output if it dies first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:
            pass
        if server.poll() is not None:
            sys.exit(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    server.kill()
    sys.exit("the server did not become ready within 60 s")


def checks(client, model):
    """(name, function) pairs; each function raises AssertionError on failure."""
    photos = [(ROOT / "Models/samples" / name).read_bytes() for name in ("chelsea.png", "coffee.png")]
    metadata = client.get_model_metadata(model)
    input_name = metadata["inputs"][0]["name"]
    output_name = metadata["outputs"][0]["name"]
    shape = [1] + [int(d) for d in metadata["inputs"][0]["shape"][1:]]
    tensor = (np.arange(np.prod(shape), dtype=np.float32) % 251 / 251 - 0.5).reshape(shape)

    def health():
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)

    def server_metadata():
        assert client.get_server_metadata()["name"] == "visionpool"

    def model_metadata():
        assert metadata["name"] == model and metadata["inputs"][0]["datatype"] == "FP32"

    def fp32(binary):
        inputs = [http.InferInput(input_name, shape, "FP32")]
        inputs[0].set_data_from_numpy(tensor, binary_data=binary)
        outputs = [http.InferRequestedOutput(output_name, binary_data=binary)]
        return client.infer(model, inputs, outputs=outputs).as_numpy(output_name)

    def fp32_json_and_binary_agree():
        as_json, as_binary = fp32(False), fp32(True)
        assert as_json.shape == (1, metadata["outputs"][0]["shape"][1]), as_json.shape
        assert np.allclose(as_json, as_binary, rtol=1e-5, atol=1e-5)

    def bytes_images_classified():
        inputs = [http.InferInput(input_name, [len(photos)], "BYTES")]
        inputs[0].set_data_from_numpy(np.array(photos, dtype=np.object_), binary_data=True)
        outputs = [http.InferRequestedOutput(output_name, binary_data=True, class_count=3)]
        result = client.infer(model, inputs, outputs=outputs, request_id="photos")
        rows = result.as_numpy(output_name)
        assert rows.shape == (2, 3), rows.shape
        cat = int(rows[0][0].decode().split(":")[1])
        coffee = {int(entry.decode().split(":")[1]) for entry in rows[1]}
        assert cat in CAT_CLASSES, rows[0]
        assert coffee & {504, 967, 968}, rows[1]
        assert result.get_response()["id"] == "photos"

    def unknown_model_is_an_error():
        try:
            client.get_model_metadata("no-such-model")
        except Exception as error:
            assert "no-such-model" in str(error), error
        else:
            raise AssertionError("no error for an unknown model")

    return [("health", health), ("server metadata", server_metadata), ("model metadata", model_metadata),
            ("FP32 as JSON and as binary data agree", fp32_json_and_binary_agree),
            ("BYTES images with the classification extension", bytes_images_classified),
            ("unknown model is an error", unknown_model_is_an_error)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=None, help="the visionpool executable (default: the release build)")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--url", help="use a running server at HOST:PORT instead of starting one")
    args = parser.parse_args()

    server = None
    if args.url:
        client = http.InferenceServerClient(url=args.url)
    else:
        binary = args.binary or str(release_binary())
        server, client = start_server(binary, args.model)
    try:
        results = run_checks(checks(client, args.model))
    finally:
        if server is not None:
            stop(server)
    report(results)


def stop(server):
    """Stops a server the way an orchestrator does (SIGTERM) and waits for it to exit."""
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def run_checks(named_checks, prefix=""):
    """Runs (name, function) checks, printing PASS or FAIL for each; returns the outcomes."""
    outcomes = []
    for name, check in named_checks:
        try:
            check()
            print(f"PASS  {prefix}{name}")
            outcomes.append(True)
        except Exception as error:
            print(f"FAIL  {prefix}{name}: {error!r}")
            outcomes.append(False)
    return outcomes


def report(outcomes):
    """Prints the tally and exits non-zero if any check failed."""
    failed = outcomes.count(False)
    print(f"{len(outcomes) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
