"""Real photographs for calibrating and validating quantized models, offline.

Where the photos come from (both reachable here without the internet):
  - PyPI scikit-image 0.26.0: the photographs in skimage/data (public domain or CC0, see
    the wheel's skimage/data/README.txt); the five in Models/samples are among them.
  - Debian 12 opencv-doc 4.6.0: the photographs in /usr/share/doc/opencv-doc/examples/data
    (OpenCV's sample images, shipped for its tutorials).
Drawings, charts, text pages, logos and synthetic scenes in those folders are left out.

    photo_sets.py extract --skimage WHEEL --opencv-doc DEB [--out Models/photos]

writes the photos and a SOURCES.json saying where each came from. The quantization tool
then splits them by photo into a calibration set and a disjoint validation set (no photo
feeds both), and expands each deterministically into views: random crops, flips, scales and
small colour shifts, seeded by the photo's name and the view's number, so every machine
builds the same sets. The five sample photos and the near-twin of one of them are kept for
validation, so the photos `classify` is checked on are never seen while calibrating.
"""

import argparse
import io
import json
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "testdata"))
import onnx_graph  # noqa: E402
from reference_preprocess import resize_bilinear, short_side_size  # noqa: E402

SKIMAGE_PHOTOS = [
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "clock_motion.png", "coffee.png", "coins.png",
    "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
    "motorcycle_right.png", "retina.jpg", "rocket.jpg",
]
OPENCV_PHOTOS = [
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg",
    "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg",
    "graf1.png", "home.jpg", "left01.jpg", "leuvenA.jpg", "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg",
    "pca_test1.jpg", "rubberwhale1.png", "squirrel_cls.jpg", "stuff.jpg",
]
SKIMAGE_PREFIX = "skimage/data/"
OPENCV_PREFIX = "./usr/share/doc/opencv-doc/examples/data/"
# Kept out of calibration: the photos `classify` and the tests are judged on, and a near-twin.
VALIDATION_ONLY = {"chelsea", "coffee", "astronaut", "rocket", "motorcycle_left", "motorcycle_right"}


def extract(skimage_wheel: Path, opencv_deb: Path, out: Path) -> None:
    sources = {}
    with zipfile.ZipFile(skimage_wheel) as wheel:
        for name in SKIMAGE_PHOTOS:
            onnx_graph.write_atomic(out / "skimage" / name, wheel.read(SKIMAGE_PREFIX + name))
            sources[f"skimage/{name}"] = f"PyPI {skimage_wheel.name}: {SKIMAGE_PREFIX}{name}"
    # A .deb is an ar archive; dpkg-deb gives its file tree as a tar stream.
    tree = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(opencv_deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
        for name in OPENCV_PHOTOS:
            member = archive.extractfile(OPENCV_PREFIX + name)
            onnx_graph.write_atomic(out / "opencv" / name, member.read())
            sources[f"opencv/{name}"] = f"Debian {opencv_deb.name}: {OPENCV_PREFIX[1:]}{name}"
    onnx_graph.write_atomic(out / "SOURCES.json", (json.dumps(sources, indent=1) + "\n").encode())
    print(f"wrote {len(sources)} photos to {out}")


def photos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"})


def split(photos: list[Path]) -> tuple[list[Path], list[Path]]:
    """Calibration and validation photos: alternate in name order, the validation-only ones aside."""
    calibration, validation = [], []
    rest = [p for p in photos if p.stem not in VALIDATION_ONLY]
    for index, photo in enumerate(rest):
        (calibration if index % 2 == 0 else validation).append(photo)
    validation += [p for p in photos if p.stem in VALIDATION_ONLY]
    return calibration, sorted(validation)


class UnreadablePhoto(Exception):
    """An image file that PIL cannot decode."""


def load_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as picture:
            return np.asarray(picture.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadablePhoto(f"cannot decode {path}: {error}") from error


def view(rgb: np.ndarray, seed: int, resize: int) -> np.ndarray:
    """One deterministic view of a photo, its short side resized to `resize` as the server would.

    A random crop of 30–100 % of the area (aspect 3:4 to 4:3), a coin-flip mirror, and small
    colour shifts: saturation, contrast and brightness within ±15 %, a per-channel tint within
    ±4 %. Flips and colour shifts are applied after the resize, where they cost least.
    """
    rng = np.random.default_rng(seed)
    height, width = rgb.shape[:2]
    area = rng.uniform(0.3, 1.0) * height * width
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    crop_w = int(min(width, round(np.sqrt(area * aspect))))
    crop_h = int(min(height, round(np.sqrt(area / aspect))))
    x0, y0 = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
    pixels = rgb[y0 : y0 + crop_h, x0 : x0 + crop_w]
    pixels = resize_bilinear(pixels, *short_side_size(crop_w, crop_h, resize)).astype(np.float32)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    grey = pixels.mean(axis=2, keepdims=True)
    pixels = grey + (pixels - grey) * rng.uniform(0.85, 1.15)
    pixels = pixels.mean() + (pixels - pixels.mean()) * rng.uniform(0.85, 1.15)
    pixels = pixels * rng.uniform(0.85, 1.15) * rng.uniform(0.96, 1.04, size=3)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def tensor(rgb: np.ndarray, preprocessing: dict) -> np.ndarray:
    """The served preprocessing (bilinear short-side resize, centre crop, (v − mean) / std, NCHW)."""
    height, width = rgb.shape[:2]
    resize = preprocessing["resize_short_side"]
    crop_h, crop_w = preprocessing["crop"]
    new_width, new_height = short_side_size(width, height, resize)
    if (new_width, new_height) != (width, height):
        rgb = resize_bilinear(rgb, new_width, new_height)
    x0, y0 = (new_width - crop_w) // 2, (new_height - crop_h) // 2
    chw = rgb[y0 : y0 + crop_h, x0 : x0 + crop_w].transpose(2, 0, 1)
    if preprocessing["channel_order"] == "BGR":
        chw = chw[::-1]
    mean = np.asarray(preprocessing["mean"], np.float32)[:, None, None]
    std = np.asarray(preprocessing["std"], np.float32)[:, None, None]
    return ((chw.astype(np.float32) - mean) / std)[None]


def views(photos: list[Path], count: int, preprocessing: dict) -> np.ndarray:
    """`count` tensors spread evenly over `photos`: each photo as it is first, then seeded views."""
    if not photos:
        raise ValueError("no photos to make tensors from")
    pictures = [load_rgb(p) for p in photos]
    out = []
    for index in range(count):
        round_, photo = divmod(index, len(photos))
        rgb = pictures[photo]
        if round_ > 0:
            rgb = view(rgb, zlib.crc32(f"{photos[photo].name}:{round_}".encode()), preprocessing["resize_short_side"])
        out.append(tensor(rgb, preprocessing))
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    extract_parser = commands.add_parser("extract", help="write the photos from the scikit-image wheel and the opencv-doc package")
    extract_parser.add_argument("--skimage", type=Path, required=True, help="scikit-image wheel (.whl)")
    extract_parser.add_argument("--opencv-doc", type=Path, required=True, help="Debian opencv-doc package (.deb)")
    extract_parser.add_argument("--out", type=Path, default=onnx_graph.MODELS_DIR / "photos")
    args = parser.parse_args()
    try:
        extract(args.skimage, args.opencv_doc, args.out)
    except (OSError, KeyError, zipfile.BadZipFile, tarfile.TarError, subprocess.CalledProcessError) as error:
        sys.exit(f"cannot extract the photos: {error}")


if __name__ == "__main__":
    main()
