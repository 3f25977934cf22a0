#!/usr/bin/env python3
"""Drive `visionpool serve` with KServe's own Python SDK (`kserve`), over REST and gRPC.

Starts one server (HTTP on loopback TCP, gRPC on loopback TCP) and checks, with
`kserve.InferenceRESTClient` (protocol v2) and `kserve.InferenceGRPCClient`:
  - server live, server ready, model ready (the REST client parses {"live": true} and
    {"ready": true} bodies);
  - an FP32 tensor, whose scores must be the same over both;
  - BYTES images (binary data), classified: a cat for chelsea.
It prints one line per check and exits non-zero if any fails.

    tools/kserve_conformance.py [--binary PATH] [--model efficientnet-lite0]
"""

import argparse
import asyncio
import subprocess
import tempfile

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

from release_binary import ROOT, release_binary
from triton_conformance import CAT_CLASSES, free_port, report, run_checks, stop, wait_until_ready


def start_server(binary, model):
    folder = tempfile.mkdtemp(prefix="visionpool-kserve-")
    http_port, grpc_port = free_port(), free_port()
    command = [binary, "serve", "--socket", f"{folder}/visionpool.sock", "--tcp", f"127.0.0.1:{http_port}",
               "--grpc", f"127.0.0.1:{grpc_port}", "--model", model, "--workers", "2", "--threads", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{http_port}"

    def ready():
        return asyncio.run(InferenceRESTClient(RESTConfig(protocol="v2")).is_server_ready(base_url))

    wait_until_ready(server, ready)
    return server, base_url, f"127.0.0.1:{grpc_port}"


def checks(base_url, grpc_url, model):
    """(name, function) pairs; each function raises AssertionError on failure."""
    shape = [1, 3, 224, 224]
    tensor = (np.arange(np.prod(shape), dtype=np.float32) % 251 / 251 - 0.5).reshape(shape)
    chelsea = (ROOT / "Models/samples/chelsea.png").read_bytes()
    rest = lambda: InferenceRESTClient(RESTConfig(protocol="v2"))  # noqa: E731 - a new client per event loop

    def fp32_request(name):
        tensor_input = InferInput(name="input", shape=shape, datatype="FP32")
        tensor_input.set_data_from_numpy(tensor, binary_data=False)
        return InferRequest(model_name=model, infer_inputs=[tensor_input], request_id=name)

    def image_request():
        image = InferInput(name="encoded_image", shape=[1], datatype="BYTES")
        image.set_data_from_numpy(np.array([chelsea], dtype=np.object_), binary_data=True)
        return InferRequest(model_name=model, infer_inputs=[image], request_id="chelsea")

    def rest_health():
        async def run():
            client = rest()
            try:
                assert await client.is_server_live(base_url) is True
                assert await client.is_server_ready(base_url) is True
                assert await client.is_model_ready(base_url, model) is True
            finally:
                await client.close()
        asyncio.run(run())

    def grpc_health():
        async def run():
            client = InferenceGRPCClient(url=grpc_url)
            try:
                assert await client.is_server_live() is True
                assert await client.is_server_ready() is True
                assert await client.is_model_ready(model) is True
            finally:
                await client.close()
        asyncio.run(run())

    scores = {}

    def rest_fp32():
        async def run():
            client = rest()
            try:
                response = await client.infer(base_url, fp32_request("rest"), model_name=model)
            finally:
                await client.close()
            return response.outputs[0].as_numpy()
        scores["rest"] = asyncio.run(run())
        assert scores["rest"].shape == (1, 1000), scores["rest"].shape

    def grpc_fp32():
        async def run():
            client = InferenceGRPCClient(url=grpc_url)
            try:
                response = await client.infer(fp32_request("grpc"))
            finally:
                await client.close()
            return response.outputs[0].as_numpy()
        scores["grpc"] = asyncio.run(run())
        assert np.array_equal(scores["grpc"].reshape(1, 1000), scores["rest"]), "the two protocols' scores differ"

    def classified(response):
        top = int(np.asarray(response.outputs[0].as_numpy()).reshape(-1, 1000)[0].argmax())
        assert top in CAT_CLASSES, top

    def rest_image():
        async def run():
            client = rest()
            try:
                return await client.infer(base_url, image_request(), model_name=model)
            finally:
                await client.close()
        classified(asyncio.run(run()))

    def grpc_image():
        async def run():
            client = InferenceGRPCClient(url=grpc_url)
            try:
                return await client.infer(image_request())
            finally:
                await client.close()
        classified(asyncio.run(run()))

    return [("REST: live, ready, model ready", rest_health), ("gRPC: live, ready, model ready", grpc_health),
            ("REST: FP32 tensor", rest_fp32), ("gRPC: FP32 tensor, the same scores", grpc_fp32),
            ("REST: BYTES image classified", rest_image), ("gRPC: BYTES image classified", grpc_image)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=None, help="the visionpool executable (default: the release build)")
    parser.add_argument("--model", default="efficientnet-lite0")
    args = parser.parse_args()
    server, base_url, grpc_url = start_server(args.binary or str(release_binary()), args.model)
    try:
        results = run_checks(checks(base_url, grpc_url, args.model))
    finally:
        stop(server)
    report(results)


if __name__ == "__main__":
    main()
