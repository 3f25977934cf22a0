#!/usr/bin/env bash
# Sets up visionpool on Debian 12 from a fresh clone, then classifies the bundled sample photos.
#
#   tools/setup.sh            everything: packages, Python env, models, fixtures, release build, demo
#   tools/setup.sh --prepare  everything but the build and the demo (what tools/test.sh needs)
#
# Idempotent: each step skips what is already in place. A failing step names itself.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
prepare_only=false
[[ "${1:-}" == "--prepare" ]] && prepare_only=true

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nsetup failed at step "%s": %s\n' "$current" "$*" >&2; exit 1; }
trap 'fail "the command above exited with status $?"' ERR

apt_packages=(libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-dnn-dev libpng-dev python3 python3-venv curl)
python=.venv/bin/python
wheels=.venv/downloads

current="system packages"
step "$current: ${apt_packages[*]}"
missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || fail "missing packages ${missing[*]}: run as root or install sudo"
        sudo=sudo
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "all installed"
fi
command -v swift >/dev/null || fail "swift is not on PATH: install the Swift 6.1+ toolchain from swift.org"

current="python environment"
step "$current: .venv with tools/requirements.txt"
if [[ ! -x $python ]]; then
    python3 -m venv .venv
fi
$python -m pip install -q --disable-pip-version-check -r tools/requirements.txt
site=$($python -c 'import openvino, os; print(os.path.dirname(openvino.__file__))')
ln -sfn "$site" .venv/openvino
[[ -f .venv/openvino/include/openvino/c/openvino.h && -e .venv/openvino/libs/libopenvino_c.so.2641 ]] ||
    fail "the openvino wheel lacks its C API (expected include/openvino/c and libs/libopenvino_c.so.2641)"
echo "openvino C API at $site"

current="sample photos"
step "$current: scikit-image's bundled photos into Models/samples"
if [[ ! -f Models/samples/chelsea.png ]]; then
    $python -m pip download -q --disable-pip-version-check --no-deps -d "$wheels" scikit-image==0.26.0
    $python tools/models/sample_photos.py "$wheels"/scikit_image-0.26.0-*.whl --out Models/samples
fi
ls Models/samples

current="models"
step "$current: efficientnet-lite0 (real weights), resnet18, resnet50 and tiny (synthetic) into Models/"
[[ -f Models/efficientnet-lite0.onnx ]] || $python tools/models/efficientnet_lite0.py --out Models/efficientnet-lite0.onnx
for arch in resnet18 resnet50; do
    [[ -f Models/$arch.onnx ]] || $python tools/models/resnet.py --arch "$arch" --out "Models/$arch.onnx"
done
[[ -f Models/tiny.onnx ]] || $python tools/models/tiny.py --out Models/tiny.onnx
ls -l Models/*.onnx

current="test fixtures"
step "$current: images for every decoder path and their numpy reference tensors"
$python tools/testdata/make_fixtures.py --samples Models/samples --out Tests/Fixtures/images
$python tools/testdata/reference_preprocess.py --manifest tools/testdata/references.json

current="benchmark images"
step "$current: ImageNet-size and 12 MP camera-size JPEGs into Models/bench"
$python tools/testdata/make_bench_images.py --samples Models/samples --out Models/bench

if $prepare_only; then
    exit 0
fi

current="build"
step "$current: swift build -c release"
swift build -c release

current="demo"
step "$current: visionpool classify Models/samples"
"$(swift build -c release --show-bin-path)/visionpool" classify Models/samples
