"""How often libjpeg-turbo's fast decoding options change a model's top class.

Makes JPEGs from the bundled validation photos (Models/photos, the ones int8 quantization
validates on): each photo as it is, then seeded views of it (crops, mirrors, small colour
shifts; tools/models/photo_sets.py) with the short side at 375 pixels, as ImageNet's validation
images have, saved at quality 90 with 4:2:0 chroma as cameras and the web save them. Then
classifies them with `visionpool classify --json --top 1` under each `--jpeg-decoding` and
prints each model's top-1 agreement with the exact decode: on every image, and on the
confident ones (top probability over 0.5 with the exact decode), since these photos are
mostly not of ImageNet's classes and a model's top two are often within a hair of each other.

    .venv/bin/python tools/jpeg_agreement.py [--models efficientnet-lite0,efficientnet-lite0-int8] [--count 500]

Only models with real weights say anything: a synthetic model answers the same class for
every input. Decode times are tools/decode_bench.sh's (--jpeg MODE).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent / "models"))
import photo_sets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODES = ["exact", "fast-upsampling", "fast-idct", "fast"]


def make_jpegs(out: Path, count: int) -> list[Path]:
    _, validation = photo_sets.split(photo_sets.photos_in(ROOT / "Models" / "photos"))
    if not validation:
        raise SystemExit("no photos in Models/photos: run tools/setup.sh")
    pictures = [photo_sets.load_rgb(p) for p in validation]
    paths = []
    for index in range(count):
        round_, photo = divmod(index, len(validation))
        rgb = pictures[photo]
        if round_ > 0:
            rgb = photo_sets.view(rgb, zlib.crc32(f"{validation[photo].name}:{round_}".encode()), 375)
        path = out / f"{index:04}.jpg"
        Image.fromarray(rgb).save(path, quality=90, subsampling="4:2:0")
        paths.append(path)
    return paths


def top_classes(binary: Path, model: str, mode: str, folder: Path) -> dict[str, tuple[int, float]]:
    run = subprocess.run([str(binary), "classify", "--json", "--top", "1", "--model", model, "--jpeg-decoding", mode, str(folder)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"visionpool classify --model {model} --jpeg-decoding {mode} failed:\n{run.stderr[-2000:]}")
    answers = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return {Path(a["path"]).name: (a["top"][0]["class_index"], a["top"][0]["score"]) for a in answers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="efficientnet-lite0,efficientnet-lite0-int8")
    parser.add_argument("--count", type=int, default=500, help="JPEGs to make and classify")
    parser.add_argument("--binary", type=Path, default=ROOT / ".build" / "release" / "visionpool")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        jpegs = make_jpegs(Path(folder), args.count)
        print(f"{len(jpegs)} JPEGs (quality 90, 4:2:0, short side 375) from the validation photos")
        print(f"{'model':28} " + " ".join(f"{mode:>24}" for mode in MODES[1:]) + "   (all / confident)")
        for model in [m for m in args.models.split(",") if m]:
            exact = top_classes(args.binary, model, "exact", Path(folder))
            confident = [name for name, (_, score) in exact.items() if score > 0.5]
            row = {"confident_images": len(confident)}
            for mode in MODES[1:]:
                answers = top_classes(args.binary, model, mode, Path(folder))
                agree = {name: answers[name][0] == exact[name][0] for name in exact}
                row[mode] = {"all": sum(agree.values()) / len(agree),
                             "confident": sum(agree[name] for name in confident) / max(1, len(confident))}
            results[model] = row
            print(f"{model:28} " + " ".join(f"{row[m]['all']:14.1%} / {row[m]['confident']:6.1%}" for m in MODES[1:])
                  + f"   ({len(confident)} confident)")
    if args.json:
        args.json.write_text(json.dumps({"images": len(jpegs), "top1_agreement_with_exact": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
