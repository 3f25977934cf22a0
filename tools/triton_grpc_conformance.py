#!/usr/bin/env python3
"""Drive `visionpool serve`'s gRPC listeners with Triton's own client, `tritonclient.grpc`.

Starts one server with the KServe v2 protocol over gRPC on loopback TCP (--grpc) and on a
Unix-domain socket (--grpc-socket, reached as a `unix:` target), and over HTTP (--tcp) for
reference. Over each gRPC transport it checks:
  - health, server and model metadata (which lists the encoded_image BYTES input);
  - an FP32 tensor, whose scores must equal the HTTP path's;
  - BYTES images with the classification extension (a cat for chelsea), through the
    tensor input and through encoded_image;
  - the protocol's timeout parameter and a gRPC deadline (DEADLINE_EXCEEDED);
  - an unknown model (NOT_FOUND), a tensor of the wrong size (INVALID_ARGUMENT);
  - a Triton-only call (UNIMPLEMENTED, naming the call).
The server must still be live after all of them. It prints one line per check and exits
non-zero if any fails.

    tools/triton_grpc_conformance.py [--binary PATH] [--model efficientnet-lite0]
"""

import argparse
import subprocess
import tempfile

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from release_binary import ROOT, release_binary
from triton_conformance import CAT_CLASSES, free_port, report, run_checks, stop, wait_until_ready


def start_server(binary, model):
    folder = tempfile.mkdtemp(prefix="visionpool-grpc-conformance-")
    grpc_port, http_port = free_port(), free_port()
    socket_path = f"{folder}/grpc.sock"
    command = [binary, "serve", "--socket", f"{folder}/http.sock", "--tcp", f"127.0.0.1:{http_port}",
               "--grpc", f"127.0.0.1:{grpc_port}", "--grpc-socket", socket_path, "--model", model, "--workers", "2", "--threads", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    targets = {"tcp": f"127.0.0.1:{grpc_port}", "unix socket": f"unix:{socket_path}"}
    wait_until_ready(server, lambda: all(grpcclient.InferenceServerClient(url=target).is_server_ready() for target in targets.values()))
    return server, targets, httpclient.InferenceServerClient(url=f"127.0.0.1:{http_port}")


def expect_status(call, status, text=None):
    try:
        call()
    except InferenceServerException as error:
        assert error.status() == f"StatusCode.{status}", f"{error.status()}: {error.message()}"
        assert text is None or text in error.message(), error.message()
        return error.message()
    raise AssertionError(f"no error; expected {status}")


def checks(client, target, http, model):
    """(name, function) pairs for one gRPC target; each function raises on failure."""
    photos = [(ROOT / "Models/samples" / name).read_bytes() for name in ("chelsea.png", "coffee.png")]
    metadata = client.get_model_metadata(model, as_json=True)
    tensor_input, output = metadata["inputs"][0], metadata["outputs"][0]
    shape = [1] + [int(d) for d in tensor_input["shape"][1:]]
    tensor = np.random.default_rng(7).uniform(-1, 1, size=shape).astype(np.float32)

    def health():
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)

    def metadata_lists_both_inputs():
        assert client.get_server_metadata(as_json=True)["name"] == "visionpool"
        inputs = {entry["name"]: entry for entry in metadata["inputs"]}
        assert tensor_input["datatype"] == "FP32", tensor_input
        assert inputs["encoded_image"]["datatype"] == "BYTES" and inputs["encoded_image"]["shape"] == ["-1"], inputs

    def fp32_equals_http():
        inputs = [grpcclient.InferInput(tensor_input["name"], shape, "FP32")]
        inputs[0].set_data_from_numpy(tensor)
        scores = client.infer(model, inputs).as_numpy(output["name"])
        reference_input = httpclient.InferInput(tensor_input["name"], shape, "FP32")
        reference_input.set_data_from_numpy(tensor, binary_data=True)
        reference = http.infer(model, [reference_input]).as_numpy(output["name"])
        assert scores.shape == (1, int(output["shape"][1])), scores.shape
        assert np.allclose(scores, reference, rtol=1e-5, atol=1e-5), np.abs(scores - reference).max()

    def images(input_name):
        def check():
            inputs = [grpcclient.InferInput(input_name, [len(photos)], "BYTES")]
            inputs[0].set_data_from_numpy(np.array(photos, dtype=np.object_))
            outputs = [grpcclient.InferRequestedOutput(output["name"], class_count=3)]
            result = client.infer(model, inputs, outputs=outputs, request_id="photos")
            rows = result.as_numpy(output["name"])
            assert rows.shape == (2, 3), rows.shape
            assert int(rows[0][0].decode().split(":")[1]) in CAT_CLASSES, rows[0]
            assert {int(entry.decode().split(":")[1]) for entry in rows[1]} & {504, 967, 968}, rows[1]
            assert result.get_response().id == "photos"
        return check

    def deadlines():
        inputs = [grpcclient.InferInput("encoded_image", [len(photos)], "BYTES")]
        inputs[0].set_data_from_numpy(np.array(photos, dtype=np.object_))
        # The protocol's timeout parameter (µs): the server gives up and says why.
        message = expect_status(lambda: client.infer(model, inputs, timeout=1), "DEADLINE_EXCEEDED")
        assert "deadline" in message, message
        # A gRPC deadline the call cannot meet.
        expect_status(lambda: client.infer(model, inputs, client_timeout=0.001), "DEADLINE_EXCEEDED")

    def unknown_model():
        expect_status(lambda: client.get_model_metadata("no-such-model"), "NOT_FOUND", "no-such-model")
        expect_status(lambda: client.is_model_ready("no-such-model"), "NOT_FOUND")

    def malformed_sizes():
        channel = grpc.insecure_channel(target)
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name=model)
        request.inputs.add(name=tensor_input["name"], datatype="FP32", shape=shape)
        request.raw_input_contents.append(b"\0" * 100)
        try:
            stub.ModelInfer(request)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert "100 bytes" in error.details(), error.details()
        else:
            raise AssertionError("a 100-byte tensor was accepted")
        finally:
            channel.close()

    def triton_only_call():
        message = expect_status(lambda: client.get_system_shared_memory_status(), "UNIMPLEMENTED")
        assert "SystemSharedMemoryStatus" in message, message

    def still_live():
        assert client.is_server_live() and client.is_server_ready()

    return [("health", health), ("metadata lists the FP32 and encoded_image inputs", metadata_lists_both_inputs),
            ("FP32 scores equal the HTTP path's", fp32_equals_http),
            ("BYTES images through the tensor input, classification extension", images(tensor_input["name"])),
            ("BYTES images through encoded_image", images("encoded_image")),
            ("timeout parameter and gRPC deadline", deadlines), ("unknown model is NOT_FOUND", unknown_model),
            ("a tensor of the wrong size is INVALID_ARGUMENT", malformed_sizes),
            ("a Triton-only call is UNIMPLEMENTED", triton_only_call), ("the server is still up", still_live)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=None, help="the visionpool executable (default: the release build)")
    parser.add_argument("--model", default="efficientnet-lite0")
    args = parser.parse_args()

    server, targets, http = start_server(args.binary or str(release_binary()), args.model)
    outcomes = []
    try:
        for transport, target in targets.items():
            client = grpcclient.InferenceServerClient(url=target)
            outcomes += run_checks(checks(client, target, http, args.model), prefix=f"{transport}: ")
    finally:
        stop(server)
    report(outcomes)


if __name__ == "__main__":
    main()
