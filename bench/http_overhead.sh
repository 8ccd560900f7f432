#!/usr/bin/env bash
# Per-call overhead of the HTTP path against the sim's: the demo production (examples/demo_short_film,
# PNG renders, sim latency 0) run once on the sim and once with its text calls on openai_chat and
# its vision calls on anthropic_messages through the loopback fake provider (zero latency), at
# --jobs 1 and --jobs 4. Prints wall time, calls and ms per call, with the machine's floor beside
# them: one durable SQLite commit (WAL, synchronous=FULL) and one durable small-file write
# (temp, fsync, rename, fsync folder). Asserts nothing.
#
#   bash bench/http_overhead.sh [BUILD_DIR]     (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
avps="$build/avps"
fake="$build/tests/avps_fake_provider"
[ -x "$avps" ] && [ -x "$fake" ] || { echo "build avps and avps_fake_provider first (ninja -C $build avps avps_fake_provider)" >&2; exit 4; }
work=$(mktemp -d)
fake_pid=""
trap 'if [ -n "$fake_pid" ]; then kill "$fake_pid" 2> /dev/null; fi; rm -rf "$work"' EXIT
export OPENAI_API_KEY=sk-bench ANTHROPIC_API_KEY=sk-ant-bench

# project NAME [MODELS PORT]: the demo with PNG renders, on the sim or on examples/models/MODELS.
project() {
  local p="$work/$1"
  cp -r "$root/examples/demo_short_film" "$p"
  python3 - "$p" "${2:-}" "${3:-}" "$root" <<'PY'
import json, sys
p, models, port, root = sys.argv[1:5]
c = json.load(open(p + "/avps.json"))
c["sim"]["media"] = "image"
if models:
    d = json.load(open(root + "/examples/models/" + models + ".json"))
    for m in d["models"]:
        if m["backend"] == "openai_chat":
            m["endpoint"] = "http://127.0.0.1:%s/v1" % port
        elif m["backend"] != "sim":
            m["endpoint"] = "http://127.0.0.1:%s" % port
    json.dump(d, open(p + "/models.json", "w"))
    c["models"] = "models.json"
json.dump(c, open(p + "/avps.json", "w"))
PY
  "$avps" init "$p" > /dev/null
  echo "$p"
}
start_fake() {
  rm -f "$work/port"
  "$fake" --project "$root/examples/demo_short_film" --port-file "$work/port" \
    --key-openai "$OPENAI_API_KEY" --key-anthropic "$ANTHROPIC_API_KEY" > /dev/null 2>&1 &
  fake_pid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  port=$(cat "$work/port")
}
stop_fake() { kill "$fake_pid" 2> /dev/null || true; wait "$fake_pid" 2> /dev/null || true; fake_pid=""; }
# run DIR JOBS: wall seconds and calls of one uninterrupted run.
run() {
  local start end
  start=$(date +%s%N)
  "$avps" run "$1" --jobs "$2" > "$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  end=$(date +%s%N)
  local calls
  calls=$(sqlite3 "$1/.avps/ledger.db" "SELECT count(*) FROM events WHERE kind='exchange.response'")
  local http
  http=$(sqlite3 "$1/.avps/ledger.db" "SELECT count(*) FROM events WHERE kind='exchange.response' AND json_extract(body,'$.endpoint_host') IS NOT NULL")
  python3 -c "import sys; s=($end-$start)/1e9; print('%-26s %5d %6d %8.2f %8.2f' % (sys.argv[1], $calls, $http, s, 1000*s/$calls))" "$3"
}

echo "floor on this machine (mean of 200, bench/floor.sh):"
bash "$root/bench/floor.sh" "$work" | sed -e 's/^commit_ms/  durable SQLite commit (WAL, synchronous=FULL) ms:/' \
  -e 's/^write_ms/  durable small-file write (fsync, rename, fsync dir) ms:/'
echo
printf '%-26s %5s %6s %8s %8s\n' "run" "calls" "http" "wall_s" "ms/call"
for jobs in 1 4; do
  run "$(project "sim-j$jobs")" "$jobs" "sim --jobs $jobs"
  start_fake
  run "$(project "http-j$jobs" openai-anthropic "$port")" "$jobs" "http (fake) --jobs $jobs"
  stop_fake
done
echo
echo "The difference per call is the HTTP path's overhead (request building, JSON schema transform,"
echo "libcurl on loopback, the fake's validation and answer, response parsing, storing the wire"
echo "bodies); both runs pay the same durability costs per call."
