"""Generate torchvision-architecture ResNet graphs with synthetic weights.

No pretrained ResNet weights can be fetched here, yet the service needs
realistic heavier models for throughput and batching work.  These graphs have
exactly torchvision's ResNet v1.5 topology and tensor shapes (stride on the
bottleneck's 3x3 conv), with BatchNorm folded into the convolutions as
torch.onnx does for an eval-mode export.  Weights come from a seeded legacy
numpy RandomState, whose stream is frozen across numpy versions, so a given
--seed always yields the same bytes.  Predictions are meaningless; activations
stay finite and logits moderate so that numerical checks remain informative.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import onnx_graph
from onnx_graph import GraphBuilder, fold_batchnorm

BN_EPS = 1e-5
# arch -> (bottleneck?, blocks per stage)
ARCHS = {"resnet18": (False, [2, 2, 2, 2]), "resnet50": (True, [3, 4, 6, 3])}
# Scale of the last BatchNorm in each residual branch: keeps the residual
# sum's variance from doubling at every block (trained ResNets learn small
# gammas there; torchvision's zero_init_residual is the extreme case).
RESIDUAL_GAMMA = 0.2


class _Generator:
    """Emits a ResNet graph, drawing every parameter from one seeded stream."""

    def __init__(self, arch, seed):
        self.arch = arch
        self.rng = np.random.RandomState(seed)
        self.g = GraphBuilder(arch)
        self.channels = 3

    def conv_bn(self, x, out_ch, kernel, stride=1, relu=True, gamma_scale=1.0):
        """He-initialized conv with plausible folded BatchNorm statistics."""
        fan_in = self.channels * kernel * kernel
        weight = self.rng.standard_normal((out_ch, self.channels, kernel, kernel))
        weight *= np.sqrt(2.0 / fan_in)
        gamma = self.rng.uniform(0.8, 1.2, out_ch) * gamma_scale
        beta = self.rng.normal(0.0, 0.05, out_ch)
        mean = self.rng.normal(0.0, 0.05, out_ch)
        var = self.rng.uniform(0.8, 1.25, out_ch)
        weight, bias = fold_batchnorm(weight, None, gamma, beta, mean, var, BN_EPS)
        pad = kernel // 2
        self.channels = out_ch
        y = self.g.conv(x, weight, bias, stride, (pad, pad, pad, pad))
        return self.g.relu(y) if relu else y

    def block(self, x, planes, stride, bottleneck):
        in_ch = self.channels
        out_ch = planes * 4 if bottleneck else planes
        if bottleneck:
            y = self.conv_bn(x, planes, 1)
            y = self.conv_bn(y, planes, 3, stride)
        else:
            y = self.conv_bn(x, planes, 3, stride)
        y = self.conv_bn(y, out_ch, 1 if bottleneck else 3, relu=False,
                         gamma_scale=RESIDUAL_GAMMA)
        if stride != 1 or in_ch != out_ch:
            self.channels = in_ch
            x = self.conv_bn(x, out_ch, 1, stride, relu=False)
        return self.g.relu(self.g.add(x, y))

    def build(self):
        bottleneck, layers = ARCHS[self.arch]
        x = self.conv_bn("input", 64, 7, 2)
        x = self.g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
        for stage, blocks in enumerate(layers):
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                x = self.block(x, 64 << stage, stride, bottleneck)
        bound = 1.0 / np.sqrt(self.channels)
        weight = self.rng.uniform(-bound, bound, (onnx_graph.NUM_CLASSES, self.channels))
        bias = self.rng.uniform(-bound, bound, onnx_graph.NUM_CLASSES)
        self.g.classifier(x, weight, bias)
        return self.g.model(
            f"{self.arch}: torchvision ResNet v1.5 topology with SYNTHETIC weights (no real "
            "predictions). Input RGB NCHW 224x224 normalized with ImageNet mean/std; "
            "output raw logits.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        help="output path (default: Models/<arch>.onnx in the repository)")
    args = parser.parse_args()

    start = time.monotonic()
    out = args.out or onnx_graph.MODELS_DIR / f"{args.arch}.onnx"
    try:
        model = _Generator(args.arch, args.seed).build()
    except ValueError as e:  # e.g. a seed outside RandomState's 32-bit range
        sys.exit(f"cannot generate {args.arch}: {e}")
    try:
        onnx_graph.write_atomic(out, model.SerializeToString())
    except OSError as e:
        sys.exit(f"cannot write {out}: {e}")
    print(f"wrote {out} ({time.monotonic() - start:.1f}s)")


if __name__ == "__main__":
    main()
