#!/usr/bin/env bash
# Quick start 2: install what is missing, build, and run the whole test suite.
# --sanitize builds with AddressSanitizer + UBSan into build-sanitize/ and runs the suite there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh" --tests
bash "$root/scripts/build.sh" "$@"
dir=build
if [ "${1:-}" = --sanitize ]; then dir=build-sanitize; fi
cd "$root/$dir"
ctest --output-on-failure -j "$(nproc)"
