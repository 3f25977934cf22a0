#!/usr/bin/env bash
# visionpool's GPU check: the CUDA path of the worker's engine layer on a real GPU, next to ONNX
# Runtime's own Python CUDA session on the same model. Made for a GPU machine that has Python
# with numpy, onnx and scikit-image, the CUDA 13 libraries as PyPI wheels and a C compiler, but
# no Swift and no network (docs/gpu.md says how to run it there, step by step).
#
#   tools/gpu_check.sh pack              here: fetch what the GPU machine lacks into .gpu-check/,
#                                        in parts small enough to carry one at a time
#   tools/gpu_check.sh run [--device cuda:0] [--seconds 5] [--batches 1,8,32] [--out DIR]
#                                        there: reassemble, build, and check; figures to DIR
#
# `run` checks: the same top-5 on the real photos on the GPU as on the CPU (the same library's
# CPU provider), the slot buffer pinned with cudaHostRegister and bound in place, and ResNet-50
# images/s and batch latency at each batch size, against the Python session. `--device cpu`
# runs every step without a GPU (the CPU provider throughout), to check the script itself.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
pack=.gpu-check
wheel=onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
part_size=56m

fail() { printf 'gpu_check: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
pack)
    python=${PYTHON:-.venv/bin/python}
    mkdir -p "$pack/download" "$pack/parts"
    # The GPU machine's Python is 3.12: its wheel, whatever Python runs here.
    [[ -f $pack/download/$wheel ]] || $python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 -d "$pack/download" onnxruntime-gpu==1.31.1
    [[ -f $pack/download/$wheel ]] || fail "pip did not download $wheel"
    rm -f "$pack"/parts/*
    split -b "$part_size" -d -a 2 "$pack/download/$wheel" "$pack/parts/$wheel.part"
    (cd "$pack/download" && sha256sum "$wheel") > "$pack/parts/$wheel.sha256"
    ls -l "$pack/parts"
    echo "carry each part on its own call (docs/gpu.md), then run: tools/gpu_check.sh run"
    ;;
run)
    shift
    device=cuda:0 seconds=5 batches=1,8,32 out=${OUT:-$root/gpu-check-results}
    while (($#)); do
        case "$1" in
            --device) device=$2; shift 2 ;;
            --seconds) seconds=$2; shift 2 ;;
            --batches) batches=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            *) fail "unknown option $1" ;;
        esac
    done
    python=${PYTHON:-python3}
    work=${GPU_CHECK_WORK:-/tmp/visionpool-gpu-check}
    mkdir -p "$work" "$out"
    # Parts carried by earlier calls wait in $work; this call's are in .gpu-check/parts.
    cp "$pack"/parts/* "$work/" 2>/dev/null || true
    if [[ ! -e $work/site/onnxruntime/capi/libonnxruntime.so.1.31.1 ]]; then
        [[ -f $work/$wheel.sha256 ]] || fail "no parts of $wheel in $work or $pack/parts: run 'tools/gpu_check.sh pack' here first"
        cat "$work/$wheel".part* > "$work/$wheel"
        (cd "$work" && sha256sum --quiet -c "$wheel.sha256") || fail "the reassembled $wheel does not match its checksum: a part is missing"
        # A wheel is a zip: unpacked, its libraries serve the driver and its Python package the peer.
        $python -m zipfile -e "$work/$wheel" "$work/site"
    fi
    library=$work/site/onnxruntime/capi/libonnxruntime.so.1.31.1
    # The CUDA libraries the machine's Python already has, under the layout visionpool expects.
    nvidia=$($python -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
    mkdir -p "$work/root"
    [[ -n $nvidia ]] && ln -sfn "$nvidia" "$work/root/nvidia"
    ln -sfn "$work/site/onnxruntime" "$work/root/onnxruntime"

    echo "==> models and photos"
    [[ -f $work/resnet50.onnx ]] || $python tools/models/resnet.py --arch resnet50 --out "$work/resnet50.onnx" >/dev/null
    # scikit-image's photos, as set-up's Models/samples has them (those, where it has run).
    photos=$($python -c 'import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), "data"))' 2>/dev/null || echo "$root/Models/samples")
    mkdir -p "$work/photos"
    for photo in astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg; do ln -sfn "$photos/$photo" "$work/photos/$photo"; done
    $python tools/gpu_check/peer.py tensors --manifest Models/resnet50.json --photos "$work/photos" --out "$work/photos.f32"

    echo "==> the driver (Sources/COnnxRuntime, Sources/CCuda and tools/gpu_check/gpu_check.c)"
    cc -O2 -std=c11 -ISources/COnnxRuntime/include -ISources/CCuda/include -o "$work/gpu_check" tools/gpu_check/gpu_check.c \
        Sources/COnnxRuntime/OnnxRuntime.c Sources/CCuda/Cuda.c -ldl -lpthread
    common=(--model "$work/resnet50.onnx" --library "$library" --inputs "$work/photos.f32" --cuda-root "$work/root")

    echo "==> top-5 on $device against the CPU provider, on $(ls "$work/photos" | wc -l) photos"
    "$work/gpu_check" "${common[@]}" --device cpu --batches 1 --seconds 1 --scores "$work/cpu.f32" > "$out/cpu.json"
    "$work/gpu_check" "${common[@]}" --device "$device" --batches "$batches" --seconds "$seconds" --scores "$work/device.f32" > "$out/visionpool.json"
    agreement=0
    $python tools/gpu_check/peer.py compare --reference "$work/cpu.f32" --candidate "$work/device.f32" > "$out/agreement.json" || agreement=$?

    echo "==> the peer: ONNX Runtime's Python session on the same model"
    provider=cpu site=
    # The GPU build's Python package for the CUDA peer; the CPU dry run uses the Python's own.
    [[ $device == cuda* ]] && provider=cuda site=$work/site
    PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH} $python tools/gpu_check/peer.py session --model "$work/resnet50.onnx" \
        --inputs "$work/photos.f32" --provider "$provider" --batches "$batches" --seconds "$seconds" > "$out/peer.json"

    $python - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
ours, peer, agreement = (json.loads((out / f"{n}.json").read_text()) for n in ("visionpool", "peer", "agreement"))
print(f"\n{ours['device']} {ours['name']}: pinned {ours['pinned']}, bound in place {ours['bound_in_place']}, "
      f"model loaded in {ours['load_seconds']:.2f} s")
print(f"provider options: {ours['provider_options'] or '(CPU)'}")
print(f"top-5 as on the CPU: {agreement['same_top5']} of {agreement['photos']} photos "
      f"(largest score difference {agreement['max_abs_difference']:.2e} on scores up to {agreement['largest_score']:.1f})")
print(f"ResNet-50, images/s (batch p50 ms)      visionpool engine layer    {peer['peer']} {peer['providers'][0]}")
for mine, theirs in zip(ours["runs"], peer["runs"]):
    print(f"  batch {mine['batch']:>3}                       {mine['images_per_second']:9.1f} ({mine['batch_ms_p50']:7.2f})"
          f"       {theirs['images_per_second']:9.1f} ({theirs['batch_ms_p50']:7.2f})    {mine['images_per_second'] / theirs['images_per_second']:.2f}×")
json.dump({"visionpool": ours, "peer": peer, "agreement": agreement}, open(out / "gpu_check.json", "w"), indent=2)
PY
    exit "$agreement"
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 64
    ;;
esac
