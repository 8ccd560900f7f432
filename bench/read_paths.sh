#!/usr/bin/env bash
# The read paths at scale: on examples/feature_scale cut to 5, 50 and 500 scenes after a whole
# production (or on a produced project, --project DIR), the wall time and peak memory of
# `avps gate`, `avps status`, `avps log --json`, `avps report --no-frames`, and `avps run` with
# nothing left to do (a resume, on a copy), with the machine's floor (bench/floor.sh) printed
# first. Prints a table; changes nothing in the repo or the given project. Asserts nothing.
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

echo "floor on this machine (bench/floor.sh):"
bash "$root/bench/floor.sh" "$work" | sed 's/^/  /'
echo

# Prints "<wall_s> <peak_mb> <exit>" of a command, its output discarded.
measure() {
  set +e
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" > /dev/null 2> "$work/err"
  local rc=$?
  set -e
  local wall kb
  read -r wall kb < <(tail -n 1 "$work/time")
  echo "$wall $((kb / 1024)) $rc"
}

printf '%-7s %-7s %-9s %-24s %-8s %-8s %-5s\n' scenes events shots command wall_s peak_mb exit
for n in $sizes; do
  if [ -n "$project" ]; then
    p=$project
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
  row() { printf '%-7s %-7s %-9s %-24s %-8s %-8s %-5s\n' "$scenes" "$events" "$shots" "$1" $2; }
  row "gate" "$(measure "$avps" gate "$p")"
  row "status" "$(measure "$avps" status "$p")"
  row "log --json" "$(measure "$avps" --json log "$p")"
  row "report --no-frames" "$(measure "$avps" report "$p" -o "$work/page.html" --no-frames)"
  rm -rf "$work/copy"
  cp -r "$p" "$work/copy"
  row "run (nothing to do)" "$(measure "$avps" -q run "$work/copy" --jobs "$jobs")"
  rm -rf "$work/copy"
done
