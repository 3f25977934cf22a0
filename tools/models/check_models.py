"""Print top-5 predictions of an ONNX classifier on images, using OpenVINO.

A developer's sanity check that a produced model classifies real photos as
expected before the service uses it.  Preprocessing follows the usual
ImageNet evaluation recipe: RGB, short side resized to 256 (bilinear), center
crop 224, then (pixel - mean) / std per channel with pixels in 0..255.
Defaults suit EfficientNet-Lite0 (mean 127, std 128); for torchvision-style
models pass --mean 123.675,116.28,103.53 --std 58.395,57.12,57.375.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

import onnx_graph

RESIZE = 256


def channel_values(text):
    """Parse "v" or "r,g,b" into a list of floats (argparse type)."""
    values = [float(v) for v in text.split(",")]
    if len(values) not in (1, 3):
        raise ValueError(text)
    return values


def preprocess(path, mean, std):
    """Return a [1,3,224,224] float32 tensor for one image file."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = RESIZE / min(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)),
                         Image.Resampling.BILINEAR)
    crop = onnx_graph.IMAGE_SIZE
    left, top = (img.width - crop) // 2, (img.height - crop) // 2
    pixels = np.asarray(img.crop((left, top, left + crop, top + crop)), dtype=np.float32)
    pixels = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return pixels.transpose(2, 0, 1)[np.newaxis]


def main():
    samples = onnx_graph.MODELS_DIR / "samples"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, nargs="*",
                        help=f"image files (default: every file in {samples})")
    parser.add_argument("--model", type=Path,
                        default=onnx_graph.MODELS_DIR / "efficientnet-lite0.onnx")
    parser.add_argument("--labels", type=Path,
                        default=onnx_graph.MODELS_DIR / "imagenet-labels.txt")
    parser.add_argument("--mean", type=channel_values, default=[127.0],
                        help="one value or r,g,b (default 127)")
    parser.add_argument("--std", type=channel_values, default=[128.0],
                        help="one value or r,g,b (default 128)")
    parser.add_argument("--precision", default="f32",
                        help="OpenVINO INFERENCE_PRECISION_HINT (f32, bf16, f16)")
    args = parser.parse_args()

    images = args.images or sorted(p for p in samples.glob("*") if p.is_file())
    if not images:
        sys.exit(f"no images given and none in {samples} (run sample_photos.py)")
    if not args.model.is_file():
        sys.exit(f"model not found: {args.model}")
    if not args.labels.is_file():
        sys.exit(f"labels not found: {args.labels} (run imagenet_labels.py)")
    labels = args.labels.read_text(encoding="utf-8").splitlines()

    import openvino as ov  # imported late so argument errors stay fast

    compiled = ov.Core().compile_model(
        str(args.model), "CPU", {"INFERENCE_PRECISION_HINT": args.precision})
    for path in images:
        try:
            tensor = preprocess(path, args.mean, args.std)
        except (OSError, UnidentifiedImageError) as e:
            sys.exit(f"cannot read image {path}: {e}")
        logits = compiled(tensor)["logits"][0]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        top = np.argsort(-logits)[:5]
        print(f"{path.name}: " + ", ".join(
            f"{i} {labels[i]} ({probs[i]:.1%}, logit {logits[i]:.2f})" for i in top))


if __name__ == "__main__":
    main()
