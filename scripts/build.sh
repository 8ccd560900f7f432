#!/usr/bin/env bash
# Configures and builds avps into build/ (or build-sanitize/ with --sanitize). A unity build
# (AVPS_UNITY_BUILD, CMakeLists.txt): from scratch, as here on a clean clone, it takes about half
# the CPU of one file at a time; configure without it for a folder you edit and rebuild in.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=build
flags=()
if [ "${1:-}" = --sanitize ]; then dir=build-sanitize; flags+=(-DAVPS_SANITIZE=ON); fi
cd "$root"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAVPS_WARNINGS_AS_ERRORS=ON -DAVPS_UNITY_BUILD=ON \
    "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -j "$(nproc)"
