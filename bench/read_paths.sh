#!/usr/bin/env bash
# The read paths at scale: on examples/feature_scale cut to 5, 50 and 500 scenes after a whole
# production (or on a produced project, --project DIR), the wall time and peak memory of
# `avps gate`, `avps status`, `avps log --json`, `avps report --no-frames`, and `avps run` with
# nothing left to do (a resume), with the machine's floor (bench/floor.sh) and its load
# (/proc/loadavg, before and after) printed beside them. A given project is measured on a copy: a
# first, untimed `avps run` brings its ledger to this avps's schema (a reader refuses an older
# one) and the page cache to the same state for every command. Prints a table; changes nothing
# in the repo or the given project. Asserts nothing. Where the first run wrote a fold checkpoint
# (.avps/fold_checkpoint), status and report are timed from it and again without it (whole fold).
# Usage: bash bench/read_paths.sh [path/to/avps] [--scenes "5 50 500"] [--jobs N] [--project DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
avps=$root/build/avps
sizes="5 50 500"
jobs=4
project=
while [ $# -gt 0 ]; do
  case "$1" in
    --scenes) sizes=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --project) project=$2; sizes=given; shift 2 ;;
    *) avps=$1; shift ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "load before (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "$("$avps" --version | tr '\n' ' ')"
echo "floor on this machine (bench/floor.sh):"
bash "$root/bench/floor.sh" "$work" | sed 's/^/  /'
echo

# Prints "<wall_s> <cpu_s> <peak_mb> <exit>" of a command, its output discarded. cpu_s (user +
# system) is what the command itself spent: on a loaded machine it moves less than the wall time.
measure() {
  set +e
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > /dev/null 2> "$work/err"
  local rc=$?
  set -e
  local wall user sys kb
  read -r wall user sys kb < <(tail -n 1 "$work/time")
  echo "$wall $(echo "$user + $sys" | bc) $((kb / 1024)) $rc"
}

printf '%-7s %-7s %-9s %-24s %-8s %-8s %-8s %-5s\n' scenes events shots command wall_s cpu_s peak_mb exit
for n in $sizes; do
  if [ -n "$project" ]; then
    p="$work/given"
    rm -rf "$p"
    cp -a "$project" "$p"
    "$avps" -q run "$p" --jobs "$jobs" > /dev/null 2>&1 || true
  else
    p="$work/p$n"
    cp -r "$root/examples/feature_scale" "$p"
    sed -i "s/^Scenes: .*/Scenes: $n/" "$p/brief.md"
    "$avps" init "$p" > /dev/null
    "$avps" -q run "$p" --jobs "$jobs" > /dev/null
  fi
  scenes=$(sqlite3 "file:$p/.avps/ledger.db?mode=ro" "SELECT count(DISTINCT target) FROM artifacts WHERE kind = 'PSYCH'")
  events=$(sqlite3 "file:$p/.avps/ledger.db?mode=ro" "SELECT max(seq) FROM events")
  shots=$(sqlite3 "file:$p/.avps/ledger.db?mode=ro" "SELECT count(DISTINCT target) FROM artifacts WHERE kind = 'GENPACK'")
  row() { printf '%-7s %-7s %-9s %-24s %-8s %-8s %-8s %-5s\n' "$scenes" "$events" "$shots" "$1" $2; }
  row "gate" "$(measure "$avps" gate "$p")"
  row "status" "$(measure "$avps" status "$p")"
  # The same without the writer's fold checkpoint (docs/formats/checkpoint.md): every event folded,
  # as before there was one, and as after a checkpoint that no longer matches.
  if [ -f "$p/.avps/fold_checkpoint" ]; then
    mv "$p/.avps/fold_checkpoint" "$work/fold_checkpoint"
    row "status (whole fold)" "$(measure "$avps" status "$p")"
    row "report (whole fold)" "$(measure "$avps" report "$p" -o "$work/page.html" --no-frames)"
    mv "$work/fold_checkpoint" "$p/.avps/fold_checkpoint"
  fi
  row "log --json" "$(measure "$avps" --json log "$p")"
  row "report --no-frames" "$(measure "$avps" report "$p" -o "$work/page.html" --no-frames)"
  rm -rf "$work/copy"
  cp -r "$p" "$work/copy"
  row "run (nothing to do)" "$(measure "$avps" -q run "$work/copy" --jobs "$jobs")"
  rm -rf "$work/copy"
done
echo "load after (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
