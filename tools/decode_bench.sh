#!/usr/bin/env bash
# Decode and preprocess time per image, before and after a change to the decoder: builds the
# shim (Sources/COpenCVCodec) from a git revision and from the working tree, both with clang -O2
# as SwiftPM builds it, and
# runs them in turn on the same files, per format, for a few rounds. Medians in µs.
#
#   tools/decode_bench.sh [REVISION] [--rounds 3] [--seconds 2] [--jpeg MODE]
#
# --jpeg decodes JPEGs with libjpeg-turbo's faster options in the working tree's build only
# (fast-upsampling, fast-idct or fast): against REVISION's exact decode, what the option saves.
#
# Files: Models/bench/imagenet (JPEG, 500×375) and Models/bench/camera (12 MP JPEG), and the
# ImageNet-size ones re-encoded as PNG, WebP, BMP and TIFF (into .build-decode-bench/).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
revision=HEAD rounds=3 seconds=2 jpeg=exact
while (($#)); do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --jpeg) jpeg=$2; shift 2 ;;
        *) revision=$1; shift ;;
    esac
done
out=.build-decode-bench
rm -rf "$out/before"
mkdir -p "$out/before/include" "$out/formats"

build() {  # build FOLDER-WITH-SOURCES OUTPUT
    local sources=$1 header=$1/include/COpenCVCodec.h flags=()
    if grep -q preprocess_seconds "$header"; then
        flags+=(-DVP_BENCH_PREPROCESS_SECONDS\(r\)=\(r.preprocess_seconds\))
    else
        flags+=(-DVP_BENCH_PREPROCESS_SECONDS\(r\)=\(r.resize_seconds+r.normalize_seconds\))
    fi
    grep -q allow_crop_decoding "$header" && flags+=(-DVP_BENCH_CROP_DECODING)
    grep -q jpeg_fast_upsampling "$header" && flags+=(-DVP_BENCH_JPEG_OPTIONS)
    # The C decoders the revision has: JPEGDecoder.c, and at 75c0a74 (libspng, measured slower
    # than OpenCV's libpng and reverted; docs/PERFORMANCE.md) PNGDecoder.c, which needs libspng-dev.
    local objects=() libraries=()
    for decoder in "$sources"/*.c; do
        clang -O2 -c "$decoder" -o "$2.$(basename "$decoder" .c).o"
        objects+=("$2.$(basename "$decoder" .c).o")
    done
    [[ -f $sources/PNGDecoder.c ]] && libraries+=(-lspng)
    clang++ -std=c++17 -O2 "${flags[@]}" -I"$sources/include" -I"$sources" -I/usr/include/opencv4 "$sources/ImageCodec.cpp" \
        "$sources/SilentPNGWarnings.cpp" tools/decode_bench/decode_bench.cpp "${objects[@]}" \
        -Wl,--export-dynamic-symbol=png_create_read_struct -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -lpng -ljpeg "${libraries[@]}" -o "$2"
}
for file in ImageCodec.cpp JPEGDecoder.c JPEGDecoder.h PNGDecoder.c PNGDecoder.h SilentPNGWarnings.cpp include/COpenCVCodec.h; do
    git cat-file -e "$revision:Sources/COpenCVCodec/$file" 2>/dev/null || continue
    git show "$revision:Sources/COpenCVCodec/$file" > "$out/before/$file"
done
build "$out/before" "$out/decode_bench_before"
build Sources/COpenCVCodec "$out/decode_bench_after"

.venv/bin/python - "$out/formats" <<'PY'
import sys
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
for path in sorted(Path("Models/bench/imagenet").glob("*.jpg")):
    image = Image.open(path).convert("RGB")
    for suffix, options in (("png", {}), ("webp", {"quality": 90}), ("bmp", {}), ("tiff", {})):
        (out / suffix).mkdir(exist_ok=True)
        image.save(out / suffix / f"{path.stem}.{suffix}", **options)
PY

printf 'revision %s against the working tree (JPEG decoding: %s); CPU flags: %s\n' "$(git rev-parse --short "$revision")" "$jpeg" \
    "$(grep -o -w -E 'avx2|avx512f|avx512_bf16|avx512_vnni|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
printf '%-22s %24s %24s\n' "format" "before decode / prep µs" "after decode / prep µs"
for set in imagenet:Models/bench/imagenet/*.jpg camera:Models/bench/camera/*.jpg png:$out/formats/png/* webp:$out/formats/webp/* \
    bmp:$out/formats/bmp/* tiff:$out/formats/tiff/*; do
    name=${set%%:*}
    files=(${set#*:})
    before=() after=()
    for ((round = 0; round < rounds; round++)); do
        before+=("$("$out/decode_bench_before" --seconds "$seconds" "${files[@]}")")
        after+=("$("$out/decode_bench_after" --seconds "$seconds" --jpeg "$jpeg" "${files[@]}")")
    done
    .venv/bin/python - "$name" "${#files[@]}" "${before[@]}" -- "${after[@]}" <<'PY'
import json, statistics, sys
name, count, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
split = rest.index("--")
def medians(runs):
    runs = [json.loads(r) for r in runs]
    return statistics.median(r["decode_us"] for r in runs), statistics.median(r["preprocess_us"] for r in runs)
b, a = medians(rest[:split]), medians(rest[split + 1:])
print(f"{name + ' (' + count + ' files)':<22} {b[0]:11.0f} / {b[1]:7.0f}    {a[0]:11.0f} / {a[1]:7.0f}    "
      f"total {(a[0] + a[1]) / (b[0] + b[1]):.2f}×")
PY
done
