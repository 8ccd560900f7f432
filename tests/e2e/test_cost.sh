#!/usr/bin/env bash
# `avps cost`: the projection per scene and tier, read-only. Before `avps init` (from the brief),
# after it, and once shots are planned (from the record, with actual spend); --json carries the
# same numbers; near or over the cap it says so and still exits 0; a folder that is no project is
# refused.
source "$(dirname "$0")/lib.sh"
P="$WORK/film"
cp -r "$SRC/examples/demo_short_film" "$P"
# No injected sim failures: the run below must reach planning without a hard stop.
python3 - "$P/avps.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["sim"] = {"latency_ms": 0}
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
snapshot() { (cd "$P" && find . -type f ! -name '*-wal' ! -name '*-shm' -print0 | sort -z | xargs -0 sha256sum); }

# A line per scene S01..S06, per generation tier at both resolutions, and the total.
expect_table() {
  for s in S01 S02 S03 S04 S05 S06; do
    grep -qE "^  $s +[0-9]+ +[0-9.]+ s +\\\$" <<<"$OUT" || fail "no line for $s in:
$OUT"
  done
  for t in gen_premium gen_mid gen_low; do
    for r in proxy final; do
      grep -qE "^  $t +$r +[0-9]+ " <<<"$OUT" || fail "no $t $r line in:
$OUT"
    done
  done
  expect_out "Total projected: \$"
  expect_out "Project cap: \$250.000000; the projection is "
}

# Before init: only avps.json and brief.md. "six scenes, about twenty shots".
before=$(snapshot)
expect_exit 0 "$AVPS" cost "$P"
expect_out "Basis: estimate from the brief (no shot list yet)"
expect_out "6 scenes, from the brief's ## Length (\"six scenes\")"
expect_out "20 shots in all"
expect_out "5 s per shot on average"
expect_out "hero tier mix A 20 % / B 50 % / C 30 %"
expect_out "regen risk medium (x1.3)"
expect_table
[ "$(snapshot)" = "$before" ] || fail "avps cost changed the folder"
[ ! -e "$P/.avps" ] || fail "avps cost created a ledger"
text_total=$(grep -oE '^Total projected: \$[0-9.]+' <<<"$OUT" | sed 's/.*\$//')

# --json: the same numbers, every scene line summing to the total.
expect_exit 0 "$AVPS" --json cost "$P"
brief_json="$OUT"
python3 - "$OUT" "$text_total" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["basis"] == "brief_estimate", d["basis"]
ids = [s["scene_id"] for s in d["scenes"]]
assert ids == ["S01", "S02", "S03", "S04", "S05", "S06", "PROJECT"], ids
assert sum(s["shots"] for s in d["scenes"]) == 20
assert sum(s["total_micro_usd"] for s in d["scenes"]) == d["total_micro_usd"]
assert d["total_micro_usd"] == d["video_proxy_micro_usd"] + d["video_final_micro_usd"] + d["model_calls_micro_usd"]
assert "%.6f" % (d["total_micro_usd"] / 1e6) == sys.argv[2], (d["total_micro_usd"], sys.argv[2])
assert {(t["tier"], t["resolution"]) for t in d["tiers"]} == {
    (t, r) for t in ("gen_premium", "gen_mid", "gen_low") for r in ("proxy", "final")}
assert d["project_cap_micro_usd"] == 250_000_000 and d["verdict"] == "PASS", d
PY

# Near the cap a WARN line, over it a FAIL line; the exit stays 0 (cost only informs).
expect_exit 0 env AVPS_PROJECT_CAP_USD="$(python3 -c "print($text_total / 0.95)")" "$AVPS" cost "$P"
expect_out "WARN: projected \$$text_total reaches 90% of the cap"
expect_exit 0 env AVPS_PROJECT_CAP_USD=1 AVPS_SCENE_CAP_USD=0.5 "$AVPS" cost "$P"
expect_out "FAIL: projected \$$text_total exceeds the cap \$1.000000"
expect_out "FAIL: S01 projects"

# After init the estimate is the same, and still nothing is written.
"$AVPS" init "$P" >/dev/null
before=$(snapshot)
expect_exit 0 "$AVPS" --json cost "$P"
python3 - "$OUT" "$brief_json" <<'PY'
import json, sys
after, before = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert after["total_micro_usd"] == before["total_micro_usd"] and after["basis"] == "brief_estimate"
PY
[ "$(snapshot)" = "$before" ] || fail "avps cost changed an initialised project"

# Once scenes are planned: the record's SHOTLISTs, and the committed spend beside them.
"$AVPS" run "$P" --until planning >/dev/null
before=$(snapshot)
log_rows=$("$AVPS" --json log "$P" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
expect_exit 0 "$AVPS" cost "$P"
expect_out "Basis: the recorded SCENES and SHOTLISTs ("
expect_out "every planned shot at its SHOTLIST duration, hero tier and regen risk"
expect_out "actual"
expect_out "Spent so far (committed): \$"
expect_table
expect_exit 0 "$AVPS" --json cost "$P"
python3 - "$OUT" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["basis"] == "recorded", d["basis"]
assert sum(s["total_micro_usd"] for s in d["scenes"]) == d["total_micro_usd"]
assert any("actual_micro_usd" in s for s in d["scenes"]), d["scenes"]
versus = d["projected_vs_actual"]
assert versus["actual_micro_usd"] == sum(s.get("actual_micro_usd", 0) for s in d["scenes"]), versus
PY
[ "$(snapshot)" = "$before" ] || fail "avps cost changed a project with a record"
after_rows=$("$AVPS" --json log "$P" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$after_rows" = "$log_rows" ] || fail "avps cost added to the run log ($log_rows -> $after_rows rows)"
expect_exit 0 "$AVPS" gate "$P"

# No project and no avps.json: nothing to estimate, the usual configuration exit.
mkdir -p "$WORK/empty"
expect_exit 4 "$AVPS" cost "$WORK/empty"
expect_out "is not an avps project and holds no avps.json"
expect_exit 4 "$AVPS" cost "$WORK/missing"
expect_exit 0 "$AVPS" cost --help
expect_out "What the numbers mean"
echo ok
