#!/usr/bin/env python3
"""Drive a `visionpool serve --model-repository` with Triton's own clients, over HTTP and gRPC.

Lays out a repository of three models from the catalog (efficientnet-lite0, its int8 copy and
tiny, each with its manifest and labels), serves it with `--model-control explicit
--load-model '*'`, and checks with `tritonclient.http` and `tritonclient.grpc`:
  - get_model_repository_index: every model READY at version 1;
  - each model answers (the real ones see a cat in chelsea), with its true version;
  - get_model_config: max batch, inputs, output, one instance group of the pool's workers;
  - get_inference_statistics: inference and success counts equal to the requests sent;
  - unload_model, then the model is unavailable while the others serve; load_model, ready again.
It prints one line per check and exits non-zero if any fails.

    tools/repository_conformance.py [--binary PATH]
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from release_binary import ROOT, release_binary
from triton_conformance import CAT_CLASSES, free_port, report, run_checks, stop, wait_until_ready

MODELS = ("efficientnet-lite0", "efficientnet-lite0-int8", "tiny")


def make_repository(folder: Path) -> Path:
    """A repository of MODELS: each folder holds the catalog's manifest, with its ONNX file and labels linked."""
    repository = folder / "repository"
    for name in MODELS:
        manifest = json.loads((ROOT / "Models" / f"{name}.json").read_text())
        model = repository / name
        model.mkdir(parents=True)
        (model / f"{name}.json").write_text(json.dumps(manifest))
        for key in ("file", "labels"):
            if manifest.get(key):
                (model / manifest[key]).symlink_to(ROOT / "Models" / manifest[key])
    return repository


def start_server(binary):
    folder = Path(tempfile.mkdtemp(prefix="visionpool-repository-"))
    repository = make_repository(folder)
    http_port, grpc_port = free_port(), free_port()
    command = [binary, "serve", "--socket", str(folder / "visionpool.sock"), "--tcp", f"127.0.0.1:{http_port}", "--grpc",
               f"127.0.0.1:{grpc_port}", "--model-repository", str(repository), "--model-control", "explicit", "--load-model", "*"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    http = httpclient.InferenceServerClient(url=f"127.0.0.1:{http_port}")
    wait_until_ready(server, http.is_server_ready)
    return server, http, grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")


def classify(client, module, model):
    """Chelsea through `model` with the classification extension: (top class, response)."""
    image = module.InferInput("encoded_image", [1], "BYTES")
    image.set_data_from_numpy(np.array([(ROOT / "Models/samples/chelsea.png").read_bytes()], dtype=np.object_))
    output = module.InferRequestedOutput("logits", class_count=1)
    result = client.infer(model, [image], outputs=[output])
    top = result.as_numpy("logits")[0][0]
    return int((top.decode() if isinstance(top, bytes) else top).split(":")[1]), result


def checks(http, grpc):
    clients = (("HTTP", http, httpclient), ("gRPC", grpc, grpcclient))

    def index():
        for name, client, _ in clients:
            entries = client.get_model_repository_index()
            entries = entries if isinstance(entries, list) else [
                {"name": m.name, "version": m.version, "state": m.state} for m in entries.models]
            ready = {(e["name"], e.get("version")) for e in entries if e["state"] == "READY"}
            assert ready == {(model, "1") for model in MODELS}, f"{name}: {entries}"

    def every_model_answers():
        for name, client, module in clients:
            for model in MODELS[:2]:
                top, result = classify(client, module, model)
                assert top in CAT_CLASSES, f"{name} {model}: {top}"
                version = result.get_response()["model_version"] if module is httpclient else result.get_response().model_version
                assert version == "1", version
            tensor = module.InferInput("input", [1, 3, 224, 224], "FP32")
            tensor.set_data_from_numpy(np.zeros((1, 3, 224, 224), dtype=np.float32))
            assert client.infer("tiny", [tensor]).as_numpy("logits").shape == (1, 1000)

    def configs():
        for name, client, _ in clients:
            for model in MODELS:
                config = client.get_model_config(model)
                config = config if isinstance(config, dict) else json.loads(__import__("google.protobuf.json_format", fromlist=["x"]).MessageToJson(
                    config.config, preserving_proto_field_name=True))
                config = config.get("config", config)
                assert config["name"] == model, config
                assert int(config["max_batch_size"]) >= 1, config
                dims = [int(d) for d in config["input"][0]["dims"]]
                assert dims == [3, 224, 224], f"{name} {model}: {config['input']}"
                assert int(config["instance_group"][0]["count"]) >= 1, config
                assert config["instance_group"][0]["kind"] == "KIND_CPU", config

    def statistics():
        def counts(client):
            stats = client.get_inference_statistics("tiny")
            if not isinstance(stats, dict):
                return int(stats.model_stats[0].inference_count), int(stats.model_stats[0].inference_stats.success.count)
            entry = stats["model_stats"][0]
            return int(entry["inference_count"]), int(entry["inference_stats"]["success"]["count"])
        before = counts(http)
        tensor = np.zeros((1, 3, 224, 224), dtype=np.float32)
        for _, client, module in clients:
            for _ in range(3):
                infer_input = module.InferInput("input", [1, 3, 224, 224], "FP32")
                infer_input.set_data_from_numpy(tensor)
                client.infer("tiny", [infer_input])
        after_http, after_grpc = counts(http), counts(grpc)
        assert after_http == after_grpc, (after_http, after_grpc)
        assert after_http[0] - before[0] == 6 and after_http[1] - before[1] == 6, f"{before} -> {after_http}"

    def unload_and_load():
        for name, client, module in clients:
            client.unload_model(MODELS[1])
            assert not client.is_model_ready(MODELS[1]), f"{name}: still ready after unload"
            try:
                classify(client, module, MODELS[1])
            except InferenceServerException as error:
                assert "not available" in error.message() or "unloaded" in error.message(), error.message()
            else:
                raise AssertionError(f"{name}: the unloaded model answered")
            assert classify(client, module, MODELS[0])[0] in CAT_CLASSES, "the others serve on"
            client.load_model(MODELS[1])
            assert client.is_model_ready(MODELS[1]), f"{name}: not ready after load"
            assert classify(client, module, MODELS[1])[0] in CAT_CLASSES

    return [("repository index: every model READY", index), ("every model answers, with its version", every_model_answers),
            ("model configuration", configs), ("inference statistics count the requests", statistics),
            ("unload and load again", unload_and_load)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=None, help="the visionpool executable (default: the release build)")
    args = parser.parse_args()
    server, http, grpc = start_server(args.binary or str(release_binary()))
    try:
        results = run_checks(checks(http, grpc))
    finally:
        stop(server)
    report(results)


if __name__ == "__main__":
    main()
