#!/usr/bin/env bash
# Measures `avps run` on examples/feature_scale cut to 5, 50 and 500 scenes (offline, sim backend,
# zero latency): exit code, model calls, wall time, peak memory, artifacts, shots, and the mean and
# largest request per model call (bytes of the canonical request avps recorded); then the largest
# request of each skill at each size, which must not grow with the number of scenes (DESIGN §1.5).
# Prints tables; changes nothing in the repo.
# Usage: bash bench/scale.sh [path/to/avps] [--until PHASE] [--scenes "5 50 500"] [--jobs N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
avps=$root/build/avps
until_args=()
sizes="5 50 500"
jobs=4
while [ $# -gt 0 ]; do
  case "$1" in
    --until) until_args=(--until "$2"); shift 2 ;;
    --scenes) sizes=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) avps=$1; shift ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-7s %-5s %-7s %-8s %-8s %-10s %-6s %-11s %-10s\n' scenes exit calls wall_s peak_mb artifacts shots mean_req_b max_req_b
for n in $sizes; do
  p="$work/p$n"
  cp -r "$root/examples/feature_scale" "$p"
  sed -i "s/^Scenes: .*/Scenes: $n/" "$p/brief.md"
  "$avps" init "$p" >/dev/null
  set +e
  /usr/bin/time -f '%e %M' -o "$work/time" "$avps" -q run "$p" --jobs "$jobs" "${until_args[@]}" 2>"$work/err"
  rc=$?
  set -e
  read -r wall kb < <(tail -n 1 "$work/time")
  python3 - "$p" "$n" "$rc" "$wall" "$kb" "$work/skills.tsv" <<'PY'
import json, os, sqlite3, sys
p, n, rc, wall, kb, out = sys.argv[1:]
db = sqlite3.connect(os.path.join(p, ".avps", "ledger.db"))
sizes, by_skill = [], {}
for (body,) in db.execute("SELECT body FROM events WHERE kind = 'exchange.intent'"):
    b = json.loads(body)
    sha = b["request_sha256"]
    # An object is a row of the ledger's objects table (schema 3), or a file when over 1 MiB.
    row = db.execute("SELECT length(bytes) FROM objects WHERE sha256 = ?", (sha,)).fetchone()
    size = row[0] if row else os.path.getsize(os.path.join(p, ".avps", "objects", sha[:2], sha[2:] + ".json"))
    sizes.append(size)
    skill = b["skill"].split(" ")[0]
    by_skill[skill] = max(by_skill.get(skill, 0), size)
artifacts = db.execute("SELECT count(*) FROM artifacts").fetchone()[0]
shots = db.execute("SELECT count(DISTINCT target) FROM artifacts WHERE kind = 'GENPACK'").fetchone()[0]
print(f"{n:<7} {rc:<5} {len(sizes):<7} {wall:<8} {int(kb) // 1024:<8} {artifacts:<10} {shots:<6} "
      f"{sum(sizes) // max(len(sizes), 1):<11} {max(sizes or [0]):<10}")
with open(out, "a") as f:
    for skill, size in by_skill.items():
        f.write(f"{n}\t{skill}\t{size}\n")
PY
  [ "$rc" = 0 ] || sed 's/^/         /' "$work/err" | tail -n 5
done
echo
python3 - "$work/skills.tsv" "$sizes" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
sizes = sys.argv[2].split()
table = {}
for n, skill, size in rows:
    table.setdefault(skill, {})[n] = int(size)
print("largest request per skill (bytes)")
print(f"{'skill':<28}" + "".join(f"{n + ' sc':>10}" for n in sizes))
for skill in sorted(table):
    print(f"{skill:<28}" + "".join(f"{table[skill].get(n, '-'):>10}" for n in sizes))
PY
