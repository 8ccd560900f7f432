#!/usr/bin/env bash
# Measures `avps report` and the page it writes on examples/feature_scale cut to 5, 50 and 500
# scenes after a whole production (offline, sim backend, zero latency): the time to write the page
# with the contact sheet's frames taken by ffmpeg (cold: an empty frame cache), again with them
# cached (warm: what every later report and `avps run --report` pays), and without frames; the time
# of --json and of `avps status`; the page's size; and the time headless Chromium takes to load it
# (to its first screen painted, and the same for an empty page: the browser's own start-up). Prints a
# table; changes nothing in the repo. The production itself takes minutes at 500 scenes
# (bench/scale.sh has its figures). --project DIR measures an existing, produced project instead.
# Usage: bash bench/report.sh [path/to/avps] [--scenes "5 50 500"] [--jobs N] [--project DIR]
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
chromium=$(command -v chromium || true)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seconds() {  # wall seconds of a command, its output discarded
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  end=$(date +%s.%N)
  echo "$start $end" | awk '{printf "%.2f", $2 - $1}'
}

# Loads a page and paints its first screen (a screenshot: unlike --dump-dom, no serialising of a
# large DOM is timed with it).
browse() {
  rm -rf "$work/profile"
  timeout 300 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$work/profile" \
    --window-size=1280,900 --screenshot="$work/screen.png" "$1"
}

echo '<!DOCTYPE html><title>empty</title>' > "$work/empty.html"
blank=-
if [ -n "$chromium" ]; then
  browse "file://$work/empty.html" > /dev/null 2>&1  # a first start warms the disk cache
  blank=$(seconds browse "file://$work/empty.html")
fi
printf '%-7s %-7s %-8s %-8s %-8s %-10s %-8s %-8s %-9s %-10s %-8s\n' scenes shots run_s cold_s warm_s no_frames json_s status_s page_kb chromium_s empty_s
for n in $sizes; do
  if [ -n "$project" ]; then
    p=$project
    run=-
  else
    p="$work/p$n"
    cp -r "$root/examples/feature_scale" "$p"
    sed -i "s/^Scenes: .*/Scenes: $n/" "$p/brief.md"
    "$avps" init "$p" > /dev/null
    run=$(seconds "$avps" -q run "$p" --jobs "$jobs")
  fi
  n=$(sqlite3 "file:$p/.avps/ledger.db?mode=ro" "SELECT count(DISTINCT target) FROM artifacts WHERE kind = 'PSYCH'")
  shots=$(sqlite3 "file:$p/.avps/ledger.db?mode=ro" "SELECT count(DISTINCT target) FROM artifacts WHERE kind = 'GENPACK'")
  rm -rf "$work/cache"
  cold=$(seconds env AVPS_CACHE_DIR="$work/cache" "$avps" report "$p" -o "$work/page$n.html")
  with_frames=$(seconds env AVPS_CACHE_DIR="$work/cache" "$avps" report "$p" -o "$work/page$n.html")
  without=$(seconds "$avps" report "$p" -o "$work/bare$n.html" --no-frames)
  json=$(seconds "$avps" --json report "$p")
  status=$(seconds "$avps" status "$p")
  kb=$(( $(stat -c %s "$work/page$n.html") / 1024 ))
  load=-
  if [ -n "$chromium" ]; then
    load=$(seconds browse "file://$work/page$n.html")
  fi
  printf '%-7s %-7s %-8s %-8s %-8s %-10s %-8s %-8s %-9s %-10s %-8s\n' "$n" "$shots" "$run" "$cold" "$with_frames" "$without" \
    "$json" "$status" "$kb" "$load" "$blank"
done
