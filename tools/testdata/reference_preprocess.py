#!/usr/bin/env python3
"""Independent reference for visionpool's image preprocessing (Pillow decode + numpy, no OpenCV).

Why: the service's Swift/C++ path (OpenCV 4.6) turns an encoded image into a model tensor;
the tests compare it against this re-implementation of the same spec, so a bug has to be
made twice, in two different code bases, to go unnoticed.

Pipeline (mirrors the service's spec):
 1. Decode to 8-bit RGB with Pillow. Gray is replicated to 3 channels, alpha is dropped (not
    composited), palettes are expanded, 16-bit samples keep their high byte (v >> 8).
    Pillow truncates 16-bit colour PNGs to their high byte, so for those the raw samples are
    read from a sidecar `<name>.u16.npy` (written by make_fixtures.py next to the PNG).
 2. JPEGs only: DCT-reduced decode by s = largest of 8, 4, 2 with min(W, H) / s >= resize
    (else 1); output is ceil(W / s) x ceil(H / s). EXIF orientation (0x0112) is applied after.
 3. Short side resized to exactly `resize` (long side: round(long * resize / short)) with
    OpenCV-style INTER_LINEAR (half-pixel centres, no antialiasing) in float64, rounded to uint8.
    Skipped when the short side already equals `resize`.
 4. Centre crop `crop` x `crop` at ((w - crop) // 2, (h - crop) // 2).
 5. (v - mean[c]) / std[c] in float32, mean/std in pixel units and in the model's channel order
    (RGB, or BGR with --bgr); written as raw little-endian float32, NCHW, batch 1.

Single image:
    reference_preprocess.py IMAGE --out OUT.f32 [--resize 256] [--crop 224]
        [--mean 127,127,127] [--std 128,128,128] [--bgr] [--no-dct]

Batch (one process for a whole test-suite set-up):
    reference_preprocess.py --manifest FILE.json
    {
      "image_dir": "images",          optional, default: the manifest's directory
      "out_dir": "expected",          optional, default: the manifest's directory
      "defaults": {"resize": 256, "crop": 224, "mean": [127, 127, 127],
                   "std": [128, 128, 128], "bgr": false, "dct": true},      optional
      "items": [{"image": "cat.jpg", "out": "cat_effnet.f32", ...any "defaults" key}]
    }
    Relative directories are resolved against the manifest's directory; "out" defaults to
    "<image stem>.f32".

Every OUT.f32 gets an OUT.f32.json sidecar with the decoded sizes, DCT scale, orientation and
crop box, to tell decoder differences from resize differences when a comparison fails.
Exit status is 1, with the failing image named on stderr, if any input cannot be processed.
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112
JPEG_FORMATS = {"JPEG", "MPO"}  # Pillow opens some camera JPEGs as MPO
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES_WITH_RGB = {2, 6}  # IHDR colour types RGB and RGBA
# Pillow modes whose numpy view holds the samples we need directly (gray, gray+alpha,
# colour, colour+alpha, 16-bit gray); anything else goes through convert("RGB").
DIRECT_MODES = {"L", "LA", "RGB", "RGBA", "RGBX", "I;16", "I;16L", "I;16B"}
# EXIF orientation -> (transpose, flip rows, flip columns), applied in that order; this is
# what ImageOps.exif_transpose does, written out so the reference can orient numpy arrays.
ORIENTATIONS = {
    1: (False, False, False),
    2: (False, False, True),
    3: (False, True, True),
    4: (False, True, False),
    5: (True, False, False),
    6: (True, False, True),
    7: (True, True, True),
    8: (True, True, False),
}
DEFAULTS = {"resize": 256, "crop": 224, "mean": [127.0] * 3, "std": [128.0] * 3, "bgr": False, "dct": True}


def dct_scale(width: int, height: int, resize: int) -> int:
    """Largest libjpeg IDCT reduction that still leaves the short side >= `resize`."""
    return next((s for s in (8, 4, 2) if min(width, height) / s >= resize), 1)


def to_uint8(samples: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit by keeping the high byte (v >> 8), as libpng's strip-16 does."""
    if samples.dtype == np.uint8:
        return samples
    return (samples >> 8).astype(np.uint8)


def _sixteen_bit_colour_samples(path: Path, im: Image.Image) -> np.ndarray:
    """Raw uint16 samples of a 16-bit colour PNG from its .u16.npy sidecar.

    The sidecar is checked against Pillow's high-byte decode so a stale one cannot pass.
    """
    sidecar = path.with_suffix(".u16.npy")
    if not sidecar.is_file():
        raise ValueError(f"16-bit colour PNG needs its raw samples in {sidecar.name}")
    samples = np.load(sidecar, allow_pickle=False)
    high = np.asarray(im.convert("RGB"))
    matches = samples.dtype == np.uint16 and samples.shape[:2] == high.shape[:2]
    if not (matches and np.array_equal(samples[..., :3] >> 8, high)):
        raise ValueError(f"{sidecar.name} does not match {path.name}")
    return samples


def _is_16bit_colour_png(path: Path) -> bool:
    """IHDR says bit depth 16 with colour type RGB/RGBA (Pillow would silently truncate it)."""
    with path.open("rb") as f:
        head = f.read(26)
    return head[:8] == PNG_SIGNATURE and head[24] == 16 and head[25] in PNG_COLOUR_TYPES_WITH_RGB


def apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright for an EXIF orientation; unknown values mean 'as stored'."""
    transpose, flip_rows, flip_cols = ORIENTATIONS.get(orientation, ORIENTATIONS[1])
    if transpose:
        rgb = rgb.swapaxes(0, 1)
    return np.ascontiguousarray(rgb[:: -1 if flip_rows else 1, :: -1 if flip_cols else 1])


def load_rgb(path: Path, resize: int = DEFAULTS["resize"], dct: bool = True) -> tuple[np.ndarray, dict]:
    """Steps 1-2: decode `path` to an upright H×W×3 uint8 array, plus what happened on the way."""
    with Image.open(path) as im:
        header = im.size
        scale = dct_scale(*header, resize) if dct and im.format in JPEG_FORMATS else 1
        if scale > 1:
            # Pillow derives the factor from floor(size / request): asking for the ceil size
            # can pick a smaller factor (2660 // 333 == 7 -> 4), the floor size always gives s.
            im.draft("RGB", (header[0] // scale, header[1] // scale))
            expected = (math.ceil(header[0] / scale), math.ceil(header[1] / scale))
            if im.size != expected:
                raise ValueError(f"DCT 1/{scale} decode gave {im.size}, expected {expected}")
        im.load()
        orientation = im.getexif().get(EXIF_ORIENTATION, 1)
        if _is_16bit_colour_png(path):
            samples = _sixteen_bit_colour_samples(path, im)
        else:
            samples = np.asarray(im if im.mode in DIRECT_MODES else im.convert("RGB"))
        info = {"image": str(path), "format": im.format, "mode": im.mode,
                "header_size": list(header), "dct_scale": scale}
    pixels = to_uint8(samples).reshape(samples.shape[0], samples.shape[1], -1)
    rgb = np.repeat(pixels[..., :1], 3, axis=2) if pixels.shape[2] < 3 else pixels[..., :3]
    info["decoded_size"] = [rgb.shape[1], rgb.shape[0]]
    info["orientation"] = orientation
    rgb = apply_orientation(rgb, orientation)
    info["oriented_size"] = [rgb.shape[1], rgb.shape[0]]
    return rgb, info


def short_side_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """Step 3 target size: short side exactly `resize`, long side rounded (Python round)."""
    if width <= height:
        return resize, round(height * resize / width)
    return round(width * resize / height), resize


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output index: left/right source index and right weight, as OpenCV INTER_LINEAR."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    left = np.floor(src).astype(np.intp)
    weight = src - left
    weight[left < 0] = 0.0  # before the first centre: all weight on pixel 0
    left = np.clip(left, 0, n_in - 1)
    return left, np.minimum(left + 1, n_in - 1), weight


def resize_bilinear(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Separable half-pixel bilinear resize in float64, rounded once at the end; no antialias."""
    top, bottom, wy = _linear_taps(rgb.shape[0], height)
    left, right, wx = _linear_taps(rgb.shape[1], width)
    src = rgb.astype(np.float64)
    rows = src[top] * (1.0 - wy)[:, None, None] + src[bottom] * wy[:, None, None]
    out = rows[:, left] * (1.0 - wx)[None, :, None] + rows[:, right] * wx[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def preprocess(path: Path, resize: int, crop: int, mean, std, bgr: bool, dct: bool) -> tuple[np.ndarray, dict]:
    """Steps 1-5 for one image: returns the 1×3×crop×crop float32 tensor and its debug info."""
    if not 0 < crop <= resize:
        raise ValueError(f"need 0 < crop <= resize, got crop={crop} resize={resize}")
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    if mean.shape != (3,) or std.shape != (3,) or not np.all(std != 0):
        raise ValueError("mean and std need 3 values each, std non-zero")

    rgb, info = load_rgb(path, resize, dct)
    height, width = rgb.shape[:2]
    new_width, new_height = short_side_size(width, height, resize)
    if (new_width, new_height) != (width, height):
        rgb = resize_bilinear(rgb, new_width, new_height)
    x0, y0 = (new_width - crop) // 2, (new_height - crop) // 2
    chw = rgb[y0 : y0 + crop, x0 : x0 + crop].transpose(2, 0, 1)
    if bgr:
        chw = chw[::-1]
    tensor = ((chw.astype(np.float32) - mean[:, None, None]) / std[:, None, None])[None]

    info.update(
        resized_size=[new_width, new_height], crop_box=[x0, y0, x0 + crop, y0 + crop],
        channel_order="BGR" if bgr else "RGB", mean=mean.tolist(), std=std.tolist(),
        shape=list(tensor.shape), dtype="float32", byte_order="little",
    )
    return tensor, info


def write_outputs(out: Path, tensor: np.ndarray, info: dict) -> None:
    """Write OUT and OUT.json, each via rename so a reader never sees a partial file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, data in (
        (out, tensor.astype("<f4").tobytes()),
        (out.with_name(out.name + ".json"), (json.dumps(info, indent=2) + "\n").encode()),
    ):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def run(image: Path, out: Path, options: dict) -> None:
    """Preprocess one image with `options` (keys of DEFAULTS) and write its outputs."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}")
    opts = {**DEFAULTS, **options}
    tensor, info = preprocess(image, int(opts["resize"]), int(opts["crop"]), opts["mean"], opts["std"],
                              bool(opts["bgr"]), bool(opts["dct"]))
    write_outputs(out, tensor, info)


def manifest_jobs(manifest: Path) -> list[tuple[Path, Path, dict]]:
    """Batch mode: (image, out, options) for every item of the manifest (schema above)."""
    spec = json.loads(manifest.read_text())
    base = manifest.resolve().parent
    image_dir, out_dir = (base / spec.get(key, ".") for key in ("image_dir", "out_dir"))
    defaults = spec.get("defaults", {})
    return [
        (
            image_dir / item["image"],
            out_dir / item.get("out", Path(item["image"]).stem + ".f32"),
            {**defaults, **{k: v for k, v in item.items() if k not in ("image", "out")}},
        )
        for item in spec["items"]
    ]


def _triple(text: str) -> list[float]:
    """Parse '127' or '123.675,116.28,103.53' into three floats."""
    values = [float(v) for v in text.split(",")]
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError("expected 1 or 3 comma-separated numbers")
    return values * (3 // len(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", type=Path, help="input image (single mode)")
    parser.add_argument("--out", type=Path, help="output .f32 (single mode)")
    parser.add_argument("--manifest", type=Path, help="JSON batch description (batch mode)")
    parser.add_argument("--resize", type=int, default=DEFAULTS["resize"], help="short side after resize")
    parser.add_argument("--crop", type=int, default=DEFAULTS["crop"], help="centre crop size")
    parser.add_argument("--mean", type=_triple, default=DEFAULTS["mean"], help="per-channel mean, pixel units, model order")
    parser.add_argument("--std", type=_triple, default=DEFAULTS["std"], help="per-channel std, pixel units, model order")
    parser.add_argument("--bgr", action="store_true", help="model expects BGR channel order")
    parser.add_argument("--no-dct", dest="dct", action="store_false", help="disable JPEG DCT-reduced decoding")
    args = parser.parse_args(argv)
    if (args.manifest is None) == (args.image is None) or (args.image is not None) != (args.out is not None):
        parser.error("give either IMAGE --out OUT.f32, or --manifest FILE.json")

    if args.manifest:
        jobs = manifest_jobs(args.manifest)
    else:
        jobs = [(args.image, args.out, {k: getattr(args, k) for k in DEFAULTS})]
    for image, out, options in jobs:
        try:
            run(image, out, options)
        except Exception as error:
            print(f"reference_preprocess: {image}: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
