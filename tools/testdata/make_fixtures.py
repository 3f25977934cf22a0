#!/usr/bin/env python3
"""Write the deterministic image fixtures used by visionpool's decoder and preprocessing tests.

Why this exists: the Swift/OpenCV pipeline has one code path per container, pixel layout,
EXIF orientation, JPEG DCT-reduction factor and failure mode, and every one of them needs a
checked-in input whose expected output `reference_preprocess.py` can compute independently.
All fixtures are derived from the real photos in Models/samples (chelsea, coffee, astronaut,
rocket, motorcycle_left) so that interpolation and codec errors show up as they would on
camera images, not on flat synthetic patterns.

Usage:
    make_fixtures.py [--samples DIR] [--out DIR]

Running it twice produces byte-identical files (same Pillow/libjpeg/libwebp build); files
whose content is unchanged are not rewritten, and every write goes through a temporary
file plus rename, so a concurrent test run never sees a half-written fixture.
"""

import argparse
import hashlib
import io
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLES = REPO / "Models" / "samples"
DEFAULT_OUT = REPO / "Tests" / "Fixtures" / "images"

EXIF_ORIENTATION = 0x0112
# Transform that, stored under EXIF orientation N, makes ImageOps.exif_transpose return the
# upright picture: the inverse of the transform exif_transpose applies for N.
STORED_FOR_ORIENTATION = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GRAY, PNG_RGB = 0, 2  # IHDR colour types


def write_atomic(path: Path, data: bytes) -> bool:
    """Replace `path` with `data` via rename; skip unchanged files to keep reruns idempotent."""
    if path.is_file() and path.read_bytes() == data:
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; fixtures must be readable by everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    """Encode with Pillow into memory, so every fixture is handled as bytes until written."""
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, scanlines: bytes) -> bytes:
    """Assemble a PNG by hand: Pillow cannot write 16-bit RGB, and the bomb needs a lying IHDR."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(scanlines, 9)
    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png16_bytes(samples: np.ndarray) -> bytes:
    """16-bit gray (H×W) or RGB (H×W×3) PNG from uint16 samples, filter type 0 on every row."""
    height, width = samples.shape[:2]
    rows = samples.astype(">u2").view(np.uint8).reshape(height, -1)
    scanlines = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()
    color_type = PNG_GRAY if samples.ndim == 2 else PNG_RGB
    return png_bytes(width, height, 16, color_type, scanlines)


def npy_bytes(array: np.ndarray) -> bytes:
    """Serialise an array as .npy in memory so it can go through write_atomic too."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def patch_jpeg_sof(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the frame size in a JPEG's SOF0 segment, leaving the (small) scan data intact."""
    pos = 2  # after SOI
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker == 0xC0:
            # SOF0 body: precision (1 byte), height (2), width (2), ...
            return data[: pos + 5] + struct.pack(">HH", height, width) + data[pos + 9 :]
        pos += 2 + length
    raise ValueError("no SOF0 segment found")


def exif_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """JPEG whose stored pixels only look upright after applying EXIF `orientation`.

    Verified here with ImageOps.exif_transpose, because getting the rotation direction
    backwards (6 vs 8) would silently produce a fixture that tests the wrong thing.
    """
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored = upright.transpose(STORED_FOR_ORIENTATION[orientation])
    data = encode(stored, "JPEG", quality=90, exif=exif.tobytes())
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    error = np.abs(np.asarray(shown, np.float64) - np.asarray(upright, np.float64)).mean()
    if shown.size != upright.size or error > 4.0:
        raise AssertionError(f"orientation {orientation}: mean error {error:.1f} after exif_transpose")
    return data


def alpha_gradient(width: int, height: int) -> np.ndarray:
    """Diagonal 0..255 ramp: every alpha value occurs, so compositing instead of dropping shows."""
    x = np.linspace(0.0, 1.0, width)[None, :]
    y = np.linspace(0.0, 1.0, height)[:, None]
    return np.rint(255.0 * (x + y) / 2.0).astype(np.uint8)


def garbage(size: int) -> bytes:
    """Deterministic random bytes from SHA-256 (stable across numpy versions, unlike RNG streams)."""
    blocks = (hashlib.sha256(b"visionpool-garbage-%d" % i).digest() for i in range(-(-size // 32)))
    return b"".join(blocks)[:size]


def center_crop(im: Image.Image, width: int, height: int) -> Image.Image:
    """Crop the centre `width`×`height` region (used to make a portrait photo)."""
    left, top = (im.width - width) // 2, (im.height - height) // 2
    return im.crop((left, top, left + width, top + height))


def build(samples: Path) -> dict[str, bytes]:
    """All fixtures by file name. Order matters only where one fixture is cut from another."""
    def load(name: str) -> Image.Image:
        """Pixels only: the samples' ICC/XMP/dpi metadata would otherwise leak into every fixture."""
        with Image.open(samples / name) as im:
            return Image.fromarray(np.asarray(im.convert("RGB")))

    cat = load("chelsea.png")  # 451×300
    gray = cat.convert("L")
    rgb16 = np.asarray(cat).astype(np.uint16) * 257  # canonical 8→16 expansion (0→0, 255→65535)
    rgba = cat.copy()
    rgba.putalpha(Image.fromarray(alpha_gradient(*cat.size)))
    thumb = cat.resize((64, 43), Image.Resampling.BICUBIC)

    f = {
        "cat.jpg": encode(cat, "JPEG", quality=90),
        "cat_progressive.jpg": encode(cat, "JPEG", quality=90, progressive=True),
        "cat_gray.jpg": encode(gray, "JPEG", quality=90),
        # CMYK: libjpeg-turbo has no CMYK-to-BGR output, so this one takes OpenCV's own reader.
        "cat_cmyk.jpg": encode(cat.convert("CMYK"), "JPEG", quality=90),
        "cat.png": encode(cat, "PNG"),
        "cat_gray.png": encode(gray, "PNG"),
        "cat_rgba.png": encode(rgba, "PNG"),
        "cat_palette.png": encode(cat.quantize(256), "PNG"),
        "cat_16bit.png": png16_bytes(rgb16),
        "cat_16bit.u16.npy": npy_bytes(rgb16),
        "cat_gray16.png": png16_bytes(np.asarray(gray).astype(np.uint16) * 257),
        "cat.bmp": encode(cat, "BMP"),
        "cat.webp": encode(cat, "WEBP", lossless=True),
        "cat.tiff": encode(cat, "TIFF", compression="tiff_lzw"),
        # 4000×2660 → DCT 1/8 (2660/8 = 332.5 ≥ 256), decoded 500×333 (ceil).
        "big_cat.jpg": encode(cat.resize((4000, 2660), Image.Resampling.BICUBIC), "JPEG", quality=92),
        # 1100×731 → DCT 1/2 (731/4 < 256 ≤ 731/2), decoded 550×366 (ceil).
        "mid_cat.jpg": encode(cat.resize((1100, 731), Image.Resampling.BICUBIC), "JPEG", quality=90),
        "coffee.jpg": encode(load("coffee.png"), "JPEG", quality=90),  # 600×400 → no reduction
        # 512×512 → DCT 1/2 exactly at the boundary, decoded 256×256 so the resize is skipped.
        "astronaut.jpg": encode(load("astronaut.png"), "JPEG", quality=90),
        # Portrait (w < h) exercises the other branch of the short-side resize.
        "motorcycle_portrait.png": encode(center_crop(load("motorcycle_left.png"), 333, 500), "PNG"),
        # Third-party encoder, 4:4:4 sampling with an ICC profile; copied verbatim.
        "rocket.jpg": (samples / "rocket.jpg").read_bytes(),
        "tiny.png": encode(cat.crop((225, 150, 226, 151)), "PNG"),
        # Bad inputs.
        "empty.jpg": b"",
        "garbage.bin": garbage(4096),
        # IHDR claims 100000×100000 8-bit gray; the stream holds 16 zero rows (≈1 KB on disk).
        "bomb.png": png_bytes(100000, 100000, 8, PNG_GRAY, bytes(16 * (1 + 100000))),
        "bomb.jpg": patch_jpeg_sof(encode(thumb, "JPEG", quality=90), 60000, 60000),
        "text.txt": b"visionpool test fixture: this is plain text, not an image.\n",
        # Several images in one file: a classifier takes one, so these are refused by name.
        "animated.gif": encode(thumb, "GIF", save_all=True, append_images=[thumb.rotate(90)], duration=100, loop=0),
        "animated.webp": encode(thumb, "WEBP", save_all=True, append_images=[thumb.rotate(90)], duration=100, lossless=True),
        "multipage.tiff": encode(thumb, "TIFF", save_all=True, append_images=[thumb.rotate(90)]),
    }
    f.update({f"cat_exif{o}.jpg": exif_jpeg(cat, o) for o in STORED_FOR_ORIENTATION})
    f["truncated.jpg"] = f["cat.jpg"][: len(f["cat.jpg"]) * 2 // 5]
    f["truncated.png"] = f["cat.png"][: len(f["cat.png"]) // 2]
    return f


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="source photos (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(build(args.samples).items()):
        state = "wrote" if write_atomic(args.out / name, data) else "same "
        print(f"{state} {len(data):>9} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
