"""Write the 1000 ImageNet-1k class names, one per line, in class-index order.

The service maps logit indices to names with this file.  torchvision carries
the canonical human-readable list in torchvision/models/_meta.py; reading it
straight out of the wheel with ast avoids installing torchvision (and torch).
"""

import argparse
import ast
import sys
import time
import zipfile
from pathlib import Path

import onnx_graph

META_PATH = "torchvision/models/_meta.py"
LIST_NAME = "_IMAGENET_CATEGORIES"
WHEEL_HINT = "pip download --no-deps torchvision==0.29.2 -d /tmp/dl"


def read_categories(wheel):
    """Return the category list from a torchvision wheel without importing it."""
    with zipfile.ZipFile(wheel) as z:
        source = z.read(META_PATH).decode("utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == LIST_NAME for t in node.targets):
            labels = ast.literal_eval(node.value)
            break
    else:
        raise ValueError(f"{LIST_NAME} not found in {META_PATH}")
    if len(labels) != onnx_graph.NUM_CLASSES or not all(
            isinstance(s, str) and s and "\n" not in s for s in labels):
        raise ValueError(f"{LIST_NAME} is not {onnx_graph.NUM_CLASSES} one-line names")
    return labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="torchvision wheel (.whl)")
    parser.add_argument("--out", type=Path,
                        default=onnx_graph.MODELS_DIR / "imagenet-labels.txt")
    args = parser.parse_args()

    start = time.monotonic()
    if not args.wheel.is_file():
        sys.exit(f"torchvision wheel not found: {args.wheel} ({WHEEL_HINT})")
    try:
        labels = read_categories(args.wheel)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, SyntaxError) as e:
        sys.exit(f"cannot read labels from {args.wheel}: {e}")
    try:
        onnx_graph.write_atomic(args.out, "".join(f"{s}\n" for s in labels).encode("utf-8"))
    except OSError as e:
        sys.exit(f"cannot write {args.out}: {e}")
    print(f"wrote {args.out} ({len(labels)} labels, {time.monotonic() - start:.2f}s)")


if __name__ == "__main__":
    main()
