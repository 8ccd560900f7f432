#!/usr/bin/env bash
# Quick start 2: install what is missing, build, and run the whole test suite, then a short fuzz
# run (scripts/fuzz.sh). --sanitize builds with AddressSanitizer + UBSan into build-sanitize/ and
# runs the suite there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh" --tests
bash "$root/scripts/build.sh" "$@"
dir=build
if [ "${1:-}" = --sanitize ]; then dir=build-sanitize; fi
cd "$root/$dir"
ctest --output-on-failure -j "$(nproc)"
# Then a short, bounded fuzz run of every target (docs/testing.md; AVPS_FUZZ_SECONDS per target,
# 0 skips it).
fuzz_seconds=${AVPS_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ]; then
  bash "$root/scripts/fuzz.sh" --seconds "$fuzz_seconds"
fi
