"""Extract a few of scikit-image's bundled public-domain photos for testing.

They give the classifiers real photographs (a cat, a coffee cup, a rocket...)
with known expected classes, without downloading anything: scikit-image's
wheel ships them and is reachable through PyPI.
"""

import argparse
import sys
import time
import zipfile
from pathlib import Path

import onnx_graph

PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png"]
DATA_DIR = "skimage/data/"
WHEEL_HINT = "pip download --no-deps scikit-image==0.26.0 -d /tmp/dl"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="scikit-image wheel (.whl)")
    parser.add_argument("--out", type=Path, default=onnx_graph.MODELS_DIR / "samples")
    args = parser.parse_args()

    start = time.monotonic()
    if not args.wheel.is_file():
        sys.exit(f"scikit-image wheel not found: {args.wheel} ({WHEEL_HINT})")
    try:
        with zipfile.ZipFile(args.wheel) as z:
            missing = [p for p in PHOTOS if DATA_DIR + p not in z.namelist()]
            if missing:
                sys.exit(f"{args.wheel} lacks {', '.join(missing)}")
            photos = {p: z.read(DATA_DIR + p) for p in PHOTOS}
    except (OSError, zipfile.BadZipFile) as e:
        sys.exit(f"cannot read {args.wheel}: {e}")
    try:
        for name, data in photos.items():
            onnx_graph.write_atomic(args.out / name, data)
    except OSError as e:
        sys.exit(f"cannot write to {args.out}: {e}")
    print(f"wrote {len(photos)} photos to {args.out} ({time.monotonic() - start:.2f}s)")


if __name__ == "__main__":
    main()
