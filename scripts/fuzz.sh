#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan) into build-fuzz/ and runs each
# for a bounded time on a scratch copy of its seed corpus (tests/fuzz/corpus/<target>/; the seeds
# are never changed). Prints per target the inputs run and whether it found anything. Exits 1 on
# any finding (a crash, a sanitizer report, an uncaught exception, a broken invariant, a hang, a
# leak or too much memory), keeping the input under build-fuzz/findings/<target>/; 2 on misuse.
#   --seconds N    time per target (default 15; `--seconds 600` for a longer run)
#   --target NAME  only this target (names, faces, config, answers, http_responses)
#   --jobs J       targets run at once (default: the number of cores)
#   --build-only   configure and build the targets, run none (scripts/test.sh builds them beside
#                  the CTest run, then runs them)
# Reproduce a finding: build-fuzz/tests/fuzz/fuzz_<target> <file>. Idempotent: configures once,
# rebuilds what changed, starts each run from the committed seeds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=15
only=
jobs=$(nproc)
build_only=no
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?}; shift 2 ;;
    --target) only=${2#fuzz_}; shift 2 ;;
    --jobs) jobs=${2:?}; shift 2 ;;
    --build-only) build_only=yes; shift ;;
    *) echo "usage: scripts/fuzz.sh [--seconds N] [--target NAME] [--jobs J] [--build-only]" >&2; exit 2 ;;
  esac
done
case "$seconds$jobs" in *[!0-9]*) echo "fuzz: --seconds and --jobs take whole numbers" >&2; exit 2 ;; esac

targets=()
for source in "$root"/tests/fuzz/fuzz_*.cpp; do
  name=$(basename "$source" .cpp)
  name=${name#fuzz_}
  if [ -z "$only" ] || [ "$only" = "$name" ]; then targets+=("$name"); fi
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no target named \"$only\" (see tests/fuzz/fuzz_*.cpp)" >&2
  exit 2
fi
if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is missing (scripts/setup.sh --tests installs clang and libclang-rt-14-dev)" >&2
  exit 2
fi

# Only the fuzz targets and what they need. -O1 with line tables: fast to build, readable stacks;
# asserts stay on (no NDEBUG). A unity build (AVPS_UNITY_BUILD, as scripts/build.sh): built once
# from scratch, in CI, it takes about 40 % less CPU than one file at a time.
dir="$root/build-fuzz"
started=$(date +%s)
mkdir -p "$dir"
if [ ! -f "$dir/build.ninja" ] && ! cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" -DAVPS_FUZZ=ON -DAVPS_BUILD_TESTS=OFF -DAVPS_UNITY_BUILD=ON \
    >"$dir/fuzz-configure.log" 2>&1; then
  tail -20 "$dir/fuzz-configure.log" >&2
  echo "fuzz: configuring build-fuzz/ failed (log: $dir/fuzz-configure.log)" >&2
  exit 2
fi
if ! cmake --build "$dir" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >"$dir/fuzz-build.log" 2>&1; then
  grep -E 'error|undefined reference' "$dir/fuzz-build.log" | head -20 >&2
  echo "fuzz: building the targets failed (log: $dir/fuzz-build.log; libFuzzer is in libclang-rt-14-dev)" >&2
  exit 2
fi
if [ "$build_only" = yes ]; then
  echo "fuzz: built ${#targets[@]} targets in $(( $(date +%s) - started )) s"
  exit 0
fi
echo "fuzz: built ${#targets[@]} targets in $(( $(date +%s) - started )) s; running each for $seconds s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# One run: the seeds copied to scratch (libFuzzer adds what it finds to its corpus folder),
# findings written under build-fuzz/findings/<target>/.
run_one() {
  local name=$1
  local findings="$dir/findings/$name"
  rm -rf "$findings" && mkdir -p "$findings" "$scratch/$name"
  cp -R "$root/tests/fuzz/corpus/$name/." "$scratch/$name/"
  local rc=0
  UBSAN_OPTIONS=print_stacktrace=1 "$dir/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" "$scratch/$name" \
    >"$scratch/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$scratch/$name.rc"
}
running=0
for name in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$name" &
  running=$((running + 1))
done
wait

failed=0
passed=0
for name in "${targets[@]}"; do
  log="$scratch/$name.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(find "$scratch/$name" -type f | wc -l)
  if [ "$(cat "$scratch/$name.rc")" = 0 ]; then
    echo "fuzz: $name: ${runs:-?} inputs in $seconds s, corpus $corpus, nothing found"
    passed=$((passed + 1))
    rmdir "$dir/findings/$name" 2>/dev/null || true
  else
    failed=1
    cp "$log" "$dir/findings/$name/fuzz.log"
    found=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "fuzz: $name: FOUND after ${runs:-?} inputs: ${found:-no input written} (log: $dir/findings/$name/fuzz.log)"
    grep -E 'ERROR: |runtime error|invariant broken|what\(\)|SUMMARY' "$log" | head -5 | sed 's/^/  /'
  fi
done
if [ "$failed" != 0 ]; then
  echo "fuzz: reproduce with build-fuzz/tests/fuzz/fuzz_<target> <file>; see docs/testing.md" >&2
fi
echo "fuzz: $passed passed, $((${#targets[@]} - passed)) failed"
exit "$failed"
