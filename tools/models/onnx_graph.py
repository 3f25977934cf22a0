"""Shared helpers for the model-production tools.

The service runs its models in two engines (OpenVINO and OpenCV 4.6 cv::dnn),
so every graph here is built from the small opset-10 vocabulary both read:
Conv (BatchNorm folded into it), Relu, Clip with attribute bounds, Add,
GlobalAveragePool, MaxPool, Flatten and Gemm.  Keeping the builder in one
place keeps the converters short and the graphs consistent.  The atomic
writer lives here too so that every tool publishes its outputs the same way.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "Models"

# Opset 10 is the newest whose Clip takes min/max as attributes, the only form
# OpenCV 4.6's ONNX importer accepts; OpenVINO reads it as well.
OPSET = 10
IMAGE_SIZE = 224
NUM_CLASSES = 1000


def fold_batchnorm(weight, bias, gamma, beta, mean, var, eps):
    """Return conv (weight, bias) equivalent to conv followed by BatchNorm.

    Folding at export time gives both engines the same plain convolutions,
    instead of relying on each one to fuse BatchNormalization its own way.
    """
    scale = gamma / np.sqrt(var + eps)
    if bias is None:
        bias = np.zeros_like(mean)
    folded_weight = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    folded_bias = (bias - mean) * scale + beta
    return folded_weight.astype(np.float32), folded_bias.astype(np.float32)


def same_pads(size, kernel, stride):
    """Explicit TensorFlow "SAME" padding (before, after) for one spatial axis.

    TF puts the odd pixel after; computing it explicitly for the fixed input
    size avoids depending on how each engine interprets auto_pad.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class GraphBuilder:
    """Accumulates nodes and initializers for an NCHW image classifier.

    Every graph has the service's contract: input "input" of shape
    [batch, 3, 224, 224] float32 and output "logits" of shape [batch, 1000].
    """

    def __init__(self, name):
        self.name = name
        self.nodes = []
        self.initializers = []
        self._count = 0

    def _fresh(self, prefix):
        self._count += 1
        return f"{prefix}_{self._count}"

    def constant(self, prefix, array):
        """Store a float32 array as an initializer and return its name."""
        name = self._fresh(prefix)
        self.initializers.append(
            numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)
        )
        return name

    def node(self, op, inputs, output=None, **attrs):
        """Append one node and return the name of its (single) output."""
        output = output or self._fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def conv(self, x, weight, bias, stride=1, pads=(0, 0, 0, 0), group=1):
        """Conv with bias; pads are ONNX order (top, left, bottom, right)."""
        kernel = list(weight.shape[2:])
        return self.node(
            "Conv",
            [x, self.constant("w", weight), self.constant("b", bias)],
            kernel_shape=kernel,
            strides=[stride, stride],
            pads=list(pads),
            group=group,
        )

    def relu(self, x):
        return self.node("Relu", [x])

    def relu6(self, x):
        return self.node("Clip", [x], min=0.0, max=6.0)

    def add(self, a, b):
        return self.node("Add", [a, b])

    def classifier(self, x, weight, bias):
        """GlobalAveragePool -> Flatten -> Gemm producing "logits".

        weight has PyTorch Linear layout [classes, features], hence transB.
        """
        pooled = self.node("GlobalAveragePool", [x])
        flat = self.node("Flatten", [pooled], axis=1)
        return self.node(
            "Gemm",
            [flat, self.constant("fc_w", weight), self.constant("fc_b", bias)],
            output="logits",
            transB=1,
        )

    def model(self, doc):
        """Assemble and check the ModelProto."""
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", NUM_CLASSES])],
            self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="visionpool-tools",
            doc_string=doc,
        )
        # Opset 10 pairs with IR version 5; newer onnx defaults would make
        # older readers reject the file for no benefit.
        model.ir_version = 5
        onnx.checker.check_model(model)
        return model


def write_atomic(path, data):
    """Write bytes to path via a temp file in the same directory and a rename.

    Readers (the service, a running test) never see a half-written file, and
    a failed run leaves the previous output in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
