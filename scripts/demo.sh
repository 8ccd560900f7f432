#!/usr/bin/env bash
# Quick start 1: install what is missing, build, and run the demo production on the sim backend.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
avps="$root/build/avps"
work="$root/build/demo_short_film"
# The example stays pristine in the repo; each demo works on a fresh copy.
rm -rf "$work"
cp -r "$root/examples/demo_short_film" "$work"
"$avps" init "$work"
# The whole production on the offline sim backend: all five loops, proxy and final renders.
"$avps" run "$work" --jobs 4
"$avps" status "$work"
"$avps" log "$work"
# The producer's view: the report page and the film so far, both recorded; then the gate vouches
# for everything, those two included.
"$avps" report "$work"
"$avps" cut "$work"
"$avps" gate "$work"
echo "demo: project folder is $work; open $work/reports/REPORT_v001.html in a browser"
