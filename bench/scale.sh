#!/usr/bin/env bash
# Measures `avps run --until locks` on generated briefs of 5, 50 and 500 scenes (offline, sim
# backend, zero latency): wall time, peak memory, and the mean and largest request size per model
# call (bytes of the canonical request avps recorded). Prints a table; changes nothing in the repo.
# Usage: bash bench/scale.sh [path/to/avps]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
avps=${1:-$root/build/avps}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-8s %-6s %-8s %-8s %-8s %-10s %-12s %-12s\n' scenes exit calls wall_s peak_mb artifacts mean_req_b max_req_b
for n in 5 50 500; do
  p="$work/p$n"
  cp -r "$root/examples/feature_scale" "$p"
  sed -i "s/Scenes: 52/Scenes: $n/" "$p/brief.md"
  "$avps" init "$p" >/dev/null
  set +e
  /usr/bin/time -f '%e %M' -o "$work/time" "$avps" -q run "$p" --until locks 2>"$work/err"
  rc=$?
  set -e
  read -r wall kb < <(tail -n 1 "$work/time")
  stats=$(python3 - "$p" <<'PY'
import json, os, sqlite3, sys
p = sys.argv[1]
db = sqlite3.connect(os.path.join(p, ".avps", "ledger.db"))
sizes = []
for (body,) in db.execute("SELECT body FROM events WHERE kind = 'exchange.intent'"):
    sha = json.loads(body)["request_sha256"]
    sizes.append(os.path.getsize(os.path.join(p, ".avps", "objects", sha[:2], sha[2:] + ".json")))
artifacts = db.execute("SELECT count(*) FROM artifacts").fetchone()[0]
print(len(sizes), artifacts, sum(sizes) // max(len(sizes), 1), max(sizes or [0]))
PY
)
  read -r calls artifacts mean max <<<"$stats"
  printf '%-8s %-6s %-8s %-8s %-8s %-10s %-12s %-12s\n' "$n" "$rc" "$calls" "$wall" "$((kb / 1024))" "$artifacts" "$mean" "$max"
  [ "$rc" = 0 ] || sed 's/^/         /' "$work/err"
done
