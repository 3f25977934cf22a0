#!/usr/bin/env python3
"""Write the fuzzer's seed corpus: small real files of every format the decoder reads.

Each is a bundled photo shrunk to a few dozen pixels, so one execution stays cheap and the
whole corpus is a few tens of kilobytes. Committed; re-run only to change it.

    tools/fuzz/make_corpus.py [--photo Models/samples/chelsea.png] [--out tools/fuzz/corpus]
"""

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=ROOT / "Models/samples/chelsea.png")
    parser.add_argument("--out", type=Path, default=ROOT / "tools/fuzz/corpus")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    rgb = Image.open(args.photo).convert("RGB").resize((48, 32), Image.BILINEAR)
    grey = rgb.convert("L")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    files = {
        "baseline.jpg": (rgb, "JPEG", {"quality": 85}),
        "progressive.jpg": (rgb, "JPEG", {"quality": 85, "progressive": True}),
        "grey.jpg": (grey, "JPEG", {"quality": 85}),
        "exif-rotated.jpg": (rgb, "JPEG", {"quality": 85, "exif": exif.tobytes()}),
        "large-dct.jpg": (Image.open(args.photo).convert("RGB").resize((600, 400), Image.BILINEAR), "JPEG", {"quality": 30}),
        "rgb.png": (rgb, "PNG", {}),
        "grey.png": (grey, "PNG", {}),
        "rgba.png": (rgb.convert("RGBA"), "PNG", {}),
        "palette.png": (rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG", {}),
        "grey16.png": (Image.fromarray((np.asarray(grey, dtype=np.uint16) * 257)), "PNG", {}),
        "rgb.bmp": (rgb, "BMP", {}),
        "lossy.webp": (rgb, "WEBP", {"quality": 80}),
        "lossless.webp": (rgb, "WEBP", {"lossless": True}),
        "rgb.tiff": (rgb, "TIFF", {}),
        "deflate.tiff": (rgb, "TIFF", {"compression": "tiff_deflate"}),
        "refused.gif": (rgb.convert("P"), "GIF", {}),
    }
    files["animated.webp"] = (rgb, "WEBP", {"save_all": True, "append_images": [grey.convert("RGB")], "duration": 100})
    files["multipage.tiff"] = (rgb, "TIFF", {"save_all": True, "append_images": [grey.convert("RGB")]})
    for name, (picture, kind, options) in files.items():
        buffer = io.BytesIO()
        picture.save(buffer, kind, **options)
        (args.out / name).write_bytes(buffer.getvalue())
        print(f"{name}: {len(buffer.getvalue())} bytes")


if __name__ == "__main__":
    main()
