#!/usr/bin/env python3
"""The GPU check's Python side (tools/gpu_check.sh runs it; see docs/gpu.md).

    peer.py tensors --manifest Models/M.json --photos DIR --out photos.f32
        real photos preprocessed as the manifest says, one float32 sample after another
    peer.py session --model M.onnx --inputs photos.f32 --provider cuda|cpu [--batches 1,8,32] [--seconds 5]
        the peer: ONNX Runtime's own Python session, as a Python user runs it (session.run on
        numpy arrays), on the same model and batches; prints JSON
    peer.py compare --reference cpu.f32 --candidate cuda.f32 --classes 1000
        top-5 agreement and the largest score difference between two runs of the driver
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "testdata"))
import photo_sets  # noqa: E402


def tensors(args):
    manifest = json.loads(args.manifest.read_text())
    photos = photo_sets.photos_in(args.photos)
    if not photos:
        raise SystemExit(f"no photos in {args.photos}")
    batch = np.concatenate([photo_sets.tensor(photo_sets.load_rgb(p), manifest["preprocessing"]) for p in photos]).astype(np.float32)
    batch.tofile(args.out)
    print(json.dumps({"photos": [p.name for p in photos], "shape": list(batch.shape)}))


def session(args):
    import onnxruntime

    providers = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"] if args.provider == "cuda" else ["CPUExecutionProvider"]
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1  # as the driver: one host thread, as a GPU worker has
    options.inter_op_num_threads = 1
    started = time.monotonic()
    runner = onnxruntime.InferenceSession(str(args.model), options, providers=providers)
    load = time.monotonic() - started
    name = runner.get_inputs()[0].name
    sample = [d for d in runner.get_inputs()[0].shape[1:]]
    photos = np.fromfile(args.inputs, dtype=np.float32).reshape([-1] + sample)
    runs = []
    for batch in [int(b) for b in args.batches.split(",")]:
        feed = {name: photos[np.arange(batch) % len(photos)]}
        for _ in range(3):
            runner.run(None, feed)
        times, start = [], time.monotonic()
        while time.monotonic() - start < args.seconds:
            began = time.monotonic()
            runner.run(None, feed)
            times.append(time.monotonic() - began)
        elapsed = time.monotonic() - start
        times.sort()
        runs.append({"batch": batch, "images_per_second": round(len(times) * batch / elapsed, 1),
                     "batch_ms_p50": round(times[len(times) // 2] * 1e3, 3), "batch_ms_p99": round(times[len(times) * 99 // 100] * 1e3, 3)})
    print(json.dumps({"peer": f"onnxruntime {onnxruntime.__version__} Python session", "providers": runner.get_providers(),
                      "load_seconds": round(load, 3), "runs": runs}))


def compare(args):
    reference = np.fromfile(args.reference, dtype=np.float32).reshape(-1, args.classes)
    candidate = np.fromfile(args.candidate, dtype=np.float32).reshape(-1, args.classes)
    top5 = lambda scores: np.argsort(-scores, axis=1, kind="stable")[:, :5]
    same = [bool((a == b).all()) for a, b in zip(top5(reference), top5(candidate))]
    print(json.dumps({"photos": len(same), "same_top5": sum(same), "same_top1": int((reference.argmax(1) == candidate.argmax(1)).sum()),
                      "max_abs_difference": float(np.abs(reference - candidate).max()),
                      "largest_score": float(np.abs(reference).max())}))
    return 0 if all(same) else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("tensors")
    make.add_argument("--manifest", type=Path, required=True)
    make.add_argument("--photos", type=Path, required=True)
    make.add_argument("--out", type=Path, required=True)
    run = commands.add_parser("session")
    run.add_argument("--model", type=Path, required=True)
    run.add_argument("--inputs", type=Path, required=True)
    run.add_argument("--provider", choices=["cuda", "cpu"], default="cuda")
    run.add_argument("--batches", default="1,8,32")
    run.add_argument("--seconds", type=float, default=5)
    check = commands.add_parser("compare")
    check.add_argument("--reference", type=Path, required=True)
    check.add_argument("--candidate", type=Path, required=True)
    check.add_argument("--classes", type=int, default=1000)
    args = parser.parse_args()
    return {"tensors": tensors, "session": session, "compare": compare}[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
