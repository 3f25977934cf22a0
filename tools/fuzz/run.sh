#!/usr/bin/env bash
# Fuzzes the decode/preprocess shim with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer, seeded with tools/fuzz/corpus (real files of every format).
#
#   tools/fuzz/run.sh [SECONDS] [JOBS]     default 600 seconds, one job per CPU
#
# The growing corpus and any crash inputs go to .build-fuzz/; a crash input belongs in
# the committed regressions (tools/fuzz/regressions/) once fixed, which the test suite replays.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-600}
jobs=${2:-$(nproc)}
out="$root/.build-fuzz"
mkdir -p "$out/corpus" "$out/artifacts" "$root/tools/fuzz/regressions"

sanitizers=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
# The JPEG decoder is C (libjpeg-turbo's API); the rest of the shim is C++.
clang -std=c11 "${sanitizers[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" -c "$root/Sources/COpenCVCodec/JPEGDecoder.c" \
    -o "$out/JPEGDecoder.o"
clang++ -std=c++17 "${sanitizers[@]}" \
    -I"$root/Sources/COpenCVCodec/include" -I"$root/Sources/COpenCVCodec" -I/usr/include/opencv4 \
    "$root/Sources/COpenCVCodec/ImageCodec.cpp" "$root/Sources/COpenCVCodec/SilentPNGWarnings.cpp" "$root/tools/fuzz/decode_fuzzer.cpp" \
    "$out/JPEGDecoder.o" -Wl,--export-dynamic-symbol=png_create_read_struct -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -lpng -ljpeg \
    -o "$out/decode_fuzzer"

cd "$out"
# -jobs runs that many fuzzers side by side, each logging to fuzz-N.log; they share the corpus.
./decode_fuzzer corpus "$root/tools/fuzz/corpus" "$root/tools/fuzz/regressions" \
    -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
    -artifact_prefix="$out/artifacts/" -print_final_stats=1 || status=$?
executions=$(grep -h "stat::number_of_executed_units" fuzz-*.log 2>/dev/null | awk '{ total += $2 } END { print total + 0 }')
echo "executions: $executions in ${seconds} s with $jobs jobs; corpus: $(ls corpus | wc -l) inputs; crashes: $(ls artifacts | wc -l)"
exit "${status:-0}"
