#!/usr/bin/env bash
# The per-call cost of avps against the machine's floor for durability (issue 14, item 4).
#
# For each size and --jobs: the whole production of examples/feature_scale cut to N scenes (sim
# backend, zero latency, PNG renders so that no ffmpeg process is timed), run twice on fresh copies:
#   1. plain, for the wall time (strace slows every syscall, so it is not timed);
#   2. under `strace -c -f`, for the syscalls per call: fsync + fdatasync (the durable syncs), and
#      file opens (open + openat).
# A call is a recorded exchange.response (model calls and renders). Beside the figures, measured
# in the same run on the same file system (bench/floor.sh): one durable SQLite commit (WAL,
# synchronous=FULL) and one durable small-file write (write, fsync, rename, fsync folder); the
# wall time per call is printed as a multiple of each.
#
# Without strace the syscall columns say "no strace" and a warning goes to stderr: the figures are
# not silently missing. Asserts nothing.
#
#   bash bench/syncs.sh [path/to/avps] [--scenes "5 50"] [--jobs "1 8"] [--no-strace]
#   (500 scenes: --scenes "5 50 500"; about 10 minutes per run on the 2-core machine, two runs
#   per --jobs value)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
avps=$root/build/avps
sizes="5 50"
jobs_list="1 8"
use_strace=1
while [ $# -gt 0 ]; do
  case "$1" in
    --scenes) sizes=$2; shift 2 ;;
    --jobs) jobs_list=$2; shift 2 ;;
    --no-strace) use_strace=0; shift ;;
    *) avps=$1; shift ;;
  esac
done
[ -x "$avps" ] || { echo "no avps at $avps: build it first (cmake --build build)" >&2; exit 4; }
if [ "$use_strace" = 1 ] && ! command -v strace > /dev/null; then
  echo "WARNING: strace is not installed: syscalls per call are NOT measured (install strace)" >&2
  use_strace=0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/avps-syncs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# project N: feature_scale cut to N scenes, PNG renders, initialised.
project() {
  local p
  p=$(mktemp -d "$work/p$1.XXXX")
  cp -r "$root/examples/feature_scale/." "$p"
  sed -i "s/^Scenes: .*/Scenes: $1/" "$p/brief.md"
  python3 - "$p/avps.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("sim", {})["media"] = "image"
json.dump(c, open(sys.argv[1], "w"))
PY
  "$avps" init "$p" > /dev/null
  echo "$p"
}
calls_of() { sqlite3 "$1/.avps/ledger.db" "SELECT count(*) FROM events WHERE kind='exchange.response'"; }

bash "$root/bench/floor.sh" "$work" > "$work/floor"
commit_ms=$(awk '$1 == "commit_ms" {print $2}' "$work/floor")
write_ms=$(awk '$1 == "write_ms" {print $2}' "$work/floor")
echo "$("$avps" --version | tr '\n' ' ')"
echo "floor on this machine, same file system, now (bench/floor.sh, mean of 200):"
echo "  durable SQLite commit (WAL, synchronous=FULL):      $commit_ms ms"
echo "  durable small-file write (fsync, rename, fsync dir): $write_ms ms"
echo
printf '%-7s %-5s %-7s %-9s %-9s %-10s %-9s %-10s %-10s %-9s\n' \
  scenes jobs calls wall_s ms/call x_commit x_write syncs/call fsync/fdat opens/call
for n in $sizes; do
  for jobs in $jobs_list; do
    p=$(project "$n")
    start=$(date +%s%N)
    "$avps" -q run "$p" --jobs "$jobs" > "$work/out" 2>&1 || { tail -n 5 "$work/out" >&2; exit 1; }
    end=$(date +%s%N)
    calls=$(calls_of "$p")
    syncs="no strace"
    if [ "$use_strace" = 1 ]; then
      q=$(project "$n")
      strace -c -f -o "$work/strace" "$avps" -q run "$q" --jobs "$jobs" > "$work/out" 2>&1 ||
        { tail -n 5 "$work/out" >&2; exit 1; }
      syncs=$(python3 - "$work/strace" "$(calls_of "$q")" <<'PY'
import sys
counts = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and not f[-1].startswith("total"):
        counts[f[-1]] = int(f[3])
calls = int(sys.argv[2])
fsync, fdatasync = counts.get("fsync", 0), counts.get("fdatasync", 0)
opens = counts.get("open", 0) + counts.get("openat", 0)
print("%.1f %d/%d %.1f" % ((fsync + fdatasync) / calls, fsync, fdatasync, opens / calls))
PY
)
    fi
    python3 - "$n" "$jobs" "$calls" "$start" "$end" "$commit_ms" "$write_ms" "$syncs" <<'PY'
import sys
n, jobs, calls, start, end, commit, write = sys.argv[1:8]
syncs = sys.argv[8].split() if sys.argv[8] != "no strace" else ["no-strace", "-", "-"]
wall = (int(end) - int(start)) / 1e9
per = 1000 * wall / int(calls)
print("%-7s %-5s %-7s %-9.2f %-9.2f %-10.1f %-9.1f %-10s %-10s %-9s" % (
    n, jobs, calls, wall, per, per / float(commit), per / float(write), syncs[0], syncs[1], syncs[2]))
PY
  done
done
echo
echo "x_commit, x_write: wall time per call over one durable SQLite commit, and over one durable"
echo "small-file write. syncs/call: (fsync + fdatasync) / calls of the straced run (fsync/fdat: the"
echo "totals); opens/call: (open + openat) / calls, every process (-f: ffmpeg is not run, PNG renders)."
