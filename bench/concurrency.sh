#!/usr/bin/env bash
# Concurrency against the critical path (issue 14 item 5): the whole production of
# examples/feature_scale cut to N scenes, on the sim with every call taking LATENCY ms, at each
# --jobs value; beside each wall time, the critical-path bound of the calls that run recorded
# (bench/critical_path.py: the longest chain of dependent calls x the latency, what unbounded
# --jobs could reach at best) and the ratio wall / bound; then the bound that keeps the walk's
# order (critical_path.py --walk: every scene validated before any is produced, and each scene's
# cost loop after the earlier scenes' production) and the ratio to it.
#
#   bash bench/concurrency.sh [AVPS] [--scenes N] [--latency-ms L] [--jobs "1 8 64"]
#
# Defaults: 5 scenes, 2000 ms, --jobs "64". The issue's figure is --scenes 50 (long: the walk runs
# its scene phases and production scene by scene today, so expect tens of minutes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
avps=$root/build/avps
scenes=5
latency=2000
jobs="64"
while [ $# -gt 0 ]; do
  case "$1" in
    --scenes) scenes=$2; shift 2 ;;
    --latency-ms) latency=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) avps=$1; shift ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-7s %-8s %-5s %-6s %-7s %-9s %-9s %-7s %-11s %-12s %-11s %s\n' scenes latency jobs exit calls wall_s bound_s \
  ratio path_calls walk_bound_s walk_ratio walk_path_calls
for j in $jobs; do
  p="$work/p$j"
  cp -r "$root/examples/feature_scale" "$p"
  sed -i "s/^Scenes: .*/Scenes: $scenes/" "$p/brief.md"
  python3 - "$p/avps.json" "$latency" <<'PY'
import json, sys
path, latency = sys.argv[1], int(sys.argv[2])
config = json.load(open(path))
config.setdefault("sim", {})["latency_ms"] = latency
json.dump(config, open(path, "w"), indent=2)
PY
  "$avps" init "$p" > /dev/null
  set +e
  start=$(date +%s.%N)
  "$avps" -q run "$p" --jobs "$j" > /dev/null 2> "$work/err"
  rc=$?
  end=$(date +%s.%N)
  set -e
  line=$(python3 "$root/bench/critical_path.py" "$p" "$latency")
  bound=$(sed -n 's/.*bound_s=\([0-9.]*\).*/\1/p' <<<"$line")
  calls=$(sed -n 's/.* calls=\([0-9]*\).*/\1/p' <<<"$line")
  path_calls=$(sed -n 's/.*path_calls=\([0-9]*\).*/\1/p' <<<"$line")
  walk_line=$(python3 "$root/bench/critical_path.py" "$p" "$latency" --walk)
  walk_bound=$(sed -n 's/.*bound_s=\([0-9.]*\).*/\1/p' <<<"$walk_line")
  walk_path_calls=$(sed -n 's/.*path_calls=\([0-9]*\).*/\1/p' <<<"$walk_line")
  python3 - "$scenes" "$latency" "$j" "$rc" "$calls" "$start" "$end" "$bound" "$path_calls" "$walk_bound" \
    "$walk_path_calls" <<'PY'
import sys
scenes, latency, jobs, rc, calls, start, end, bound, path_calls, walk_bound, walk_path_calls = sys.argv[1:]
wall = float(end) - float(start)
ratio = wall / float(bound) if float(bound) > 0 else float("nan")
walk_ratio = wall / float(walk_bound) if float(walk_bound) > 0 else float("nan")
print(f"{scenes:<7} {latency:<8} {jobs:<5} {rc:<6} {calls:<7} {wall:<9.2f} {float(bound):<9.2f} {ratio:<7.2f} "
      f"{path_calls:<11} {float(walk_bound):<12.2f} {walk_ratio:<11.2f} {walk_path_calls}")
PY
  [ "$rc" = 0 ] || sed 's/^/         /' "$work/err" | tail -n 5
done
