#!/usr/bin/env bash
# Runs the whole test suite: prepares what the tests need (packages, Python env, models,
# fixtures; see tools/setup.sh), then builds and runs every test target.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tools/setup.sh --prepare
printf '\n==> tests: swift test\n'
swift test "$@"
