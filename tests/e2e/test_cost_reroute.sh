#!/usr/bin/env bash
# The cost loop's answer to a budget-gates FAIL (DESIGN §3 cost escalation; docs/governance.md):
# model-router first applies the one-tier-down suggestions of the scene's COST_REPORT, logged as a
# route.rerouted event with its RUN_LOG row, writes the next ROUTING_DECISION, and budget-gates
# checks again; only if that still FAILs does shot-planner get asked for a simpler shot list.
# Shot caps are part of the check: a shot projected over its cap is a FAIL naming it.
# Only S01's first cost loop runs (--scene S01 --until cost_proxy): built-ins and the sim, no render.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
source "$(dirname "$0")/lib.sh"

q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
usd() { python3 -c "print('%.6f' % ($1 / 1e6))"; }
# The canonical JSON of an artifact, from the object store.
artifact_json() { "$AVPS" --json artifact show "$1" "$2"; }
budget_verdicts() {
  q "$1" "SELECT group_concat(json_extract(body,'$.verdict'), ' ') FROM (SELECT body FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='budget-gates' ORDER BY seq)"
}
revisions() {
  q "$1" "SELECT count(*) FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='shot-planner' AND json_extract(body,'$.step') LIKE '%<budget-gates/S01'"
}

PLAN="$WORK/plan"
cp -r "$SRC/examples/demo_short_film" "$PLAN"
png_renders "$PLAN"  # money and routes, not clips (the copies below keep it)
"$AVPS" init "$PLAN" > /dev/null
expect_exit 0 "$AVPS" run "$PLAN" --until planning

# (b) A scene cap no re-route can meet (above what planning spent on S01, so shot-planner's call
# fits under it): the re-route, its re-check FAILs, then the simpler shot list, then a stop.
B="$WORK/b"
cp -r "$PLAN" "$B"
configure "$B" budget.scene_cap_usd 0.5
expect_exit 3 "$AVPS" run "$B" --scene S01 --until cost_proxy
expect_out "re-routing via model-router"
[ "$(q "$B" "SELECT count(*) FROM events WHERE kind='route.rerouted'")" = 1 ] || fail "one re-route expected"
rerouted=$(q "$B" "SELECT seq FROM events WHERE kind='route.rerouted'")
revised=$(q "$B" "SELECT min(seq) FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='shot-planner' AND json_extract(body,'$.step') LIKE '%<budget-gates/S01'")
[ -n "$revised" ] && [ "$rerouted" -lt "$revised" ] || fail "the re-route ($rerouted) did not come before the shot-planner revision ($revised)"
case "$(budget_verdicts "$B")" in "FAIL FAIL"*) ;; *) fail "budget-gates: $(budget_verdicts "$B")" ;; esac
[ "$(q "$B" "SELECT json_extract(body,'$.attempt') FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='shot-planner' AND json_extract(body,'$.step') LIKE '%<budget-gates/S01'")" = 1 ] \
  || fail "shot-planner was asked more than once"
stop=$(q "$B" "SELECT json_extract(body,'$.skill') || ' ' || json_extract(body,'$.cap') FROM events WHERE kind='run.hard_stop'")
case "$stop" in "budget-gates scene S01" | "shot-planner "*) ;; *) fail "the stop: $stop" ;; esac
# The re-route moved every shot of S01 that had a tier below it, and the re-projection is lower by
# exactly the saving it logged.
event=$(q "$B" "SELECT body FROM events WHERE kind='route.rerouted'")
before=$(artifact_json "$B" COST_REPORT_S01_v001.md)
after=$(artifact_json "$B" COST_REPORT_S01_v002.md)
routing=$(artifact_json "$B" ROUTING_DECISION_PROJECT)
python3 - "$event" "$before" "$after" "$routing" <<'PY' || fail "the re-route of S01"
import json, sys
event, before, after, routing = (json.loads(a) for a in sys.argv[1:])
changes = event["changes"]
assert changes and event["cost_report"] == "COST_REPORT_S01_v001.md", event
assert event["row"]["skill_name"] == "model-router" and event["row"]["outcome"] == "DONE", event["row"]
ladder = ["gen_low", "gen_mid", "gen_premium"]
for c in changes:
    assert c["shot_id"].startswith("S01_"), c
    assert ladder.index(c["to_tier"]) + 1 == ladder.index(c["from_tier"]), c
moved = {c["shot_id"]: c["to_tier"] for c in changes}
# every S01 shot above gen_low was moved one tier down, no other
above = {r["shot_id"] for r in before["shot_breakdown"] if r["tier"] != "gen_low"}
assert set(moved) == above, (moved, above)
assert event["saving_micro_usd"] == -sum(c["saving_micro_usd"] for c in changes) > 0, event
assert before["total_projected_cost_micro_usd"] - after["total_projected_cost_micro_usd"] == event["saving_micro_usd"], (before["total_projected_cost_micro_usd"], after["total_projected_cost_micro_usd"])
for r in after["shot_breakdown"]:
    if r["shot_id"] in moved:
        assert r["tier"] == moved[r["shot_id"]], r
kept = {s["shot_id"]: s["tier"] for s in routing.get("shot_tiers", [])}
for shot, tier in moved.items():
    assert kept.get(shot) == tier, (shot, kept)
PY
grep -q ",model-router,S01,.*,DONE,.*re-route for budget-gates S01 (FAIL of attempt 1): S01_SH" "$B/logs/RUN_LOG_v001.csv" \
  || fail "no model-router RUN_LOG row for the re-route"
# A person raises the scene cap over the stop: the next run re-checks the plan as it is under the
# raised cap (no further re-route: the decision was to pay) and goes on.
stop_seq=$(q "$B" "SELECT seq FROM events WHERE kind='run.hard_stop' AND json_extract(body,'$.skill')='budget-gates'")
if [ -n "$stop_seq" ]; then
  expect_exit 0 "$AVPS" override "$B" --stop "STOP-$stop_seq" --reason "the producer pays for S01" --raise-cap 20
  expect_exit 0 "$AVPS" run "$B" --scene S01 --until cost_proxy
  [ "$(q "$B" "SELECT count(*) FROM events WHERE kind='route.rerouted'")" = 1 ] || fail "the re-check after a raise re-routed"
  case "$(budget_verdicts "$B")" in *" PASS" | *" WARN") ;; *) fail "budget-gates after the raise: $(budget_verdicts "$B")" ;; esac
fi
projected=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total_projected_cost_micro_usd"])' "$before")
rerouted_total=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total_projected_cost_micro_usd"])' "$after")

# (a) A scene cap between the two projections: the re-route is enough, no simpler shot list.
A="$WORK/a"
cp -r "$PLAN" "$A"
configure "$A" budget.scene_cap_usd "$(usd "($projected + $rerouted_total) / 2")"
expect_exit 0 "$AVPS" run "$A" --scene S01 --until cost_proxy
[ "$(q "$A" "SELECT count(*) FROM events WHERE kind='route.rerouted'")" = 1 ] || fail "one re-route expected"
case "$(budget_verdicts "$A")" in "FAIL PASS" | "FAIL WARN") ;; *) fail "budget-gates: $(budget_verdicts "$A")" ;; esac
[ "$(q "$A" "SELECT json_extract(body,'$.attempt') FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='budget-gates' ORDER BY seq DESC LIMIT 1")" = 2 ] \
  || fail "the re-check is not budget-gates' second attempt"
[ "$(revisions "$A")" = 0 ] || fail "shot-planner revised although the re-route was enough"
[ ! -e "$A/plans/SHOTLIST_S01_v002.md" ] && [ -z "$(ls "$A"/*/SHOTLIST_S01_v002* 2> /dev/null)" ] \
  || fail "a second SHOTLIST_S01 was written"
[ -z "$(q "$A" "SELECT seq FROM events WHERE kind='run.hard_stop'")" ] || fail "a stop after the re-route"
python3 - "$(artifact_json "$A" ROUTING_DECISION_PROJECT)" <<'PY' || fail "the ROUTING_DECISION after the re-route"
import json, sys
d = json.loads(sys.argv[1])
assert d["shot_tiers"] and "Budget re-routes" in d["justification"], d
PY
expect_exit 0 "$AVPS" gate "$A"
# A second run re-routes nothing more: the cost loop is up to date on the re-routed plan.
expect_exit 0 "$AVPS" run "$A" --scene S01 --until cost_proxy
[ "$(q "$A" "SELECT count(*) FROM events WHERE kind='route.rerouted'")" = 1 ] || fail "a second run re-routed again"

# (c) A shot cap one micro-dollar under the dearest shot's projection: a FAIL naming that shot with
# its projection; the re-route moves only the shots the FAIL names, and the re-check passes.
C="$WORK/c"
cp -r "$PLAN" "$C"
read -r shot cap <<<"$(python3 -c '
import json, sys
rows = json.loads(sys.argv[1])["shot_breakdown"]
top = max(rows, key=lambda r: r["projected_micro_usd"])
print(top["shot_id"], top["projected_micro_usd"] - 1)' "$before")"
configure "$C" budget.shot_cap_usd "$(usd "$cap")"
expect_exit 0 "$AVPS" run "$C" --scene S01 --until cost_proxy
first=$(q "$C" "SELECT json_extract(body,'$.reasons') FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='budget-gates' ORDER BY seq LIMIT 1")
python3 - "$shot" "$first" <<'PY' || fail "the first budget-gates FAIL does not name $shot with its projection: $first"
import json, re, sys
shot, reasons = sys.argv[1], json.loads(sys.argv[2])
pattern = (re.escape(shot) + r": projected spend \$[0-9.]+ is [0-9.]+% of the shot cap \$[0-9.]+: simplify before "
           r"producing \(hero [ABC], gen_[a-z]+, [0-9.]+ s, proxy \+ final\)$")
assert any(re.match(pattern, r) for r in reasons), reasons
PY
python3 - "$(q "$C" "SELECT body FROM events WHERE kind='route.rerouted'")" "$first" <<'PY' || fail "the shot-cap re-route"
import json, sys
event, reasons = json.loads(sys.argv[1]), json.loads(sys.argv[2])
named = {r.split(":")[0] for r in reasons if "shot cap" in r and "simplify before producing" in r}
assert {c["shot_id"] for c in event["changes"]} == named, (event["changes"], named)
PY
case "$(budget_verdicts "$C")" in "FAIL PASS" | "FAIL WARN") ;; *) fail "budget-gates: $(budget_verdicts "$C")" ;; esac
[ "$(revisions "$C")" = 0 ] || fail "shot-planner revised although the re-route was enough"
echo "cost re-route e2e: ok"
