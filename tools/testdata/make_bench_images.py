#!/usr/bin/env python3
"""Make the benchmark's JPEG workloads from the bundled photos, deterministically.

    imagenet/  500×375 JPEGs (quality 95, ≈100 KB): the size of a typical ImageNet image
    camera/    4000×3000 JPEGs (12 MP, quality 92, 2–4 MB): what a phone camera writes

Each photo is cropped to 4:3 and resized with Lanczos. The camera-size images also get a
seeded sensor-like grain: an upscaled photo alone is too smooth to compress like a real
12 MP picture, and the decoder's work depends on what it has to decode.

    tools/testdata/make_bench_images.py [--samples Models/samples] [--out Models/bench]
"""

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SIZES = {"imagenet": ((500, 375), 95, 0.0), "camera": ((4000, 3000), 92, 5.0)}


def four_by_three(picture):
    width, height = picture.size
    if width * 3 > height * 4:
        crop = height * 4 // 3
        return picture.crop(((width - crop) // 2, 0, (width - crop) // 2 + crop, height))
    crop = width * 3 // 4
    return picture.crop((0, (height - crop) // 2, width, (height - crop) // 2 + crop))


def make(photo, size, quality, grain, seed):
    picture = four_by_three(Image.open(photo).convert("RGB")).resize(size, Image.LANCZOS)
    if grain:
        pixels = np.asarray(picture, dtype=np.float32)
        noise = np.random.default_rng(seed).normal(0.0, grain, pixels.shape[:2] + (1,)).astype(np.float32)
        picture = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    return picture, quality


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=ROOT / "Models/samples")
    parser.add_argument("--out", type=Path, default=ROOT / "Models/bench")
    args = parser.parse_args()

    start = time.monotonic()
    photos = sorted(path for path in args.samples.iterdir() if path.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if not photos:
        raise SystemExit(f"no photos in {args.samples}: tools/setup.sh puts the bundled ones there")
    for name, (size, quality, grain) in SIZES.items():
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for seed, photo in enumerate(photos):
            target = folder / f"{photo.stem}.jpg"
            if target.exists():
                continue
            picture, quality = make(photo, size, quality, grain, seed)
            partial = target.with_suffix(".partial")
            picture.save(partial, "JPEG", quality=quality, optimize=False)
            partial.replace(target)
        sizes = [path.stat().st_size for path in folder.glob("*.jpg")]
        print(f"{name}: {len(sizes)} JPEGs {size[0]}×{size[1]}, {min(sizes) // 1024}–{max(sizes) // 1024} KB")
    print(f"made in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
