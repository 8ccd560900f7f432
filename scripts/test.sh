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
# After the CTest run, a short, bounded fuzz run of every target (docs/testing.md;
# AVPS_FUZZ_SECONDS per target, 0 skips it). The targets' clang build (build-fuzz/) runs beside
# the CTest run at the lowest priority: the e2e tests leave the cores idle part of the time
# (fsyncs, the fakes' poll intervals, waits for a process), which it takes, and it gives a core
# back at once when a test wants it. Once the CTest run has ended it goes on at the normal
# priority where the user may raise it (root, as in CI: on a shared machine a build at 19 would
# wait for everyone else's), and its output is shown. It is its own process group (set -m), so
# that an interrupted test run stops it too.
fuzz_seconds=${AVPS_FUZZ_SECONDS:-15}
fuzz_build=
stop_fuzz_build() { if [ -n "$fuzz_build" ]; then kill -- -"$fuzz_build" 2> /dev/null || true; fi; }
trap stop_fuzz_build EXIT
if [ "$fuzz_seconds" != 0 ]; then
  fuzz_build_out=$(mktemp)
  set -m
  nice -n 19 bash "$root/scripts/fuzz.sh" --build-only > "$fuzz_build_out" 2>&1 &
  fuzz_build=$!
  set +m
fi
ctest_rc=0
ctest --output-on-failure -j "$(nproc)" || ctest_rc=$?
fuzz_build_rc=0
if [ -n "$fuzz_build" ]; then
  renice -n 0 -g "$fuzz_build" > /dev/null 2>&1 || true
  wait "$fuzz_build" || fuzz_build_rc=$?
  fuzz_build=  # ended: nothing for stop_fuzz_build to stop
  cat "$fuzz_build_out"
  rm -f "$fuzz_build_out"
fi
if [ "$ctest_rc" != 0 ]; then exit "$ctest_rc"; fi
if [ "$fuzz_build_rc" != 0 ]; then exit "$fuzz_build_rc"; fi
if [ "$fuzz_seconds" != 0 ]; then
  bash "$root/scripts/fuzz.sh" --seconds "$fuzz_seconds"
fi
