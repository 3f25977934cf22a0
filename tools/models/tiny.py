"""Generate `tiny`: the smallest graph with the bundled models' input and output.

Why: measuring what the pool and the server cost per request needs a model whose own
inference time is close to nothing. `tiny` takes the same [batch, 3, 224, 224] input and
gives the same [batch, 1000] logits as the ImageNet models, through GlobalAveragePool,
Flatten and one Gemm with seeded synthetic weights, so every byte of a real request still
moves while the engine does almost no work.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import onnx_graph
from onnx_graph import GraphBuilder


def build(seed):
    rng = np.random.RandomState(seed)
    graph = GraphBuilder("tiny")
    weight = rng.uniform(-1.0, 1.0, (onnx_graph.NUM_CLASSES, 3))
    bias = rng.uniform(-0.1, 0.1, onnx_graph.NUM_CLASSES)
    graph.classifier("input", weight, bias)
    return graph.model("tiny: GlobalAveragePool -> Gemm with SYNTHETIC weights, for overhead measurements.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=onnx_graph.MODELS_DIR / "tiny.onnx")
    args = parser.parse_args()
    try:
        onnx_graph.write_atomic(args.out, build(args.seed).SerializeToString())
    except OSError as e:
        sys.exit(f"cannot write {args.out}: {e}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
