#!/usr/bin/env bash
# Configures and builds avps into build/ (or build-sanitize/ with --sanitize).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=build
flags=()
if [ "${1:-}" = --sanitize ]; then dir=build-sanitize; flags+=(-DAVPS_SANITIZE=ON); fi
cd "$root"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAVPS_WARNINGS_AS_ERRORS=ON "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -j "$(nproc)"
