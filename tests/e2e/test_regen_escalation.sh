#!/usr/bin/env bash
# Generation-tier escalation is a routing decision that budget-gates approves (skills.md 2.19,
# 2.22; docs/cli.md `avps run`): it comes only after a round opened by simplification, goes one
# tier up, premium only for hero A shots, and only when the next round at the new tier fits under
# every cap; the decision, its cost delta and the caps it was checked against are in the log.
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }

PLAN="$WORK/plan"
cp -r "$SRC/examples/demo_short_film" "$PLAN"
png_renders "$PLAN"  # tiers and rounds, not clips (the copies below keep it)
"$AVPS" init "$PLAN" > /dev/null
expect_exit 0 "$AVPS" run "$PLAN" --until planning
# S01_SH01 is hero C (gen_low), S01_SH02 hero B (gen_mid): every QC of theirs fails.
for shot in S01_SH01 S01_SH02; do configure "$PLAN" "sim.failure_rates.qc-grader@$shot" 1.0; done
configure "$PLAN" regen.max_rounds 3
configure "$PLAN" budget.shot_cap_usd 100  # in force, far away: the approval shows the shot's spend

# rounds_of DIR: "shot round remedy tier" of each regen round of S01_SH01 and S01_SH02, in order.
rounds_of() {
  q "$1" "SELECT json_extract(body,'$.shot_id') || ' ' || json_extract(body,'$.round') || ' ' || json_extract(body,'$.remedy') || ' ' || json_extract(body,'$.tier') FROM events WHERE kind='regen.round' AND json_extract(body,'$.shot_id') IN ('S01_SH01','S01_SH02') ORDER BY seq"
}
# (a) Round 2 simplifies; round 3 escalates the C shot gen_low -> gen_mid, approved with its cost,
# and refuses premium to the B shot (simplifying again instead). Both freeze in the end: exit 3.
A="$WORK/a"
cp -r "$PLAN" "$A"
expect_exit 3 "$AVPS" run "$A" --scene S01
remedies=$(rounds_of "$A")
want="S01_SH01 2 simplify gen_low
S01_SH02 2 simplify gen_mid
S01_SH01 3 escalate gen_mid
S01_SH02 3 simplify gen_mid"
[ "$remedies" = "$want" ] || fail "regen rounds:
$remedies
expected:
$want"
approved=$(q "$A" "SELECT body FROM events WHERE kind='budget.escalation' AND json_extract(body,'$.shot_id')='S01_SH01'")
python3 - "$approved" <<'PY' || fail "the escalation's approval: $approved"
import json, sys
e = json.loads(sys.argv[1])
assert e["approved"] is True and e["from_tier"] == "gen_low" and e["to_tier"] == "gen_mid", e
assert e["attempt_micro_usd_after"] > e["attempt_micro_usd_before"] > 0, e
assert e["delta_micro_usd"] == (e["attempt_micro_usd_after"] - e["attempt_micro_usd_before"]) * e["attempts"], e
assert e["round_micro_usd"] == e["attempt_micro_usd_after"] * e["attempts"], e
scopes = {c["scope"] for c in e["caps"]}
assert {"project", "scene S01", "shot S01_SH01"} <= scopes, scopes
assert e["row"]["skill_name"] == "budget-gates" and e["row"]["outcome"] == "PASS", e["row"]
PY
grep -q ",budget-gates,S01,S01_SH01,.*,PASS,.*approved escalation of S01_SH01 gen_low -> gen_mid: +\\$" "$A/logs/RUN_LOG_v001.csv" \
  || fail "no budget-gates row approving the escalation"
grep -q ",model-router,S01,S01_SH01,.*escalate gen_low -> gen_mid, +\\$" "$A/logs/RUN_LOG_v001.csv" \
  || fail "no model-router row with the escalation's cost delta"

# (a') The project's stage graph allows only simplification (regen.remedies ["simplify"]): round 3
# simplifies the C shot again instead of escalating it, and nothing is escalated.
R="$WORK/simplify_only"
cp -r "$PLAN" "$R"
mkdir -p "$R/policies"
python3 - "$SRC/policies/stage_graph.json" "$R/policies/stage_graph.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
g["regen"]["remedies"] = ["simplify"]
json.dump(g, open(sys.argv[2], "w"), indent=2)
PY
expect_exit 3 "$AVPS" run "$R" --scene S01
remedies=$(rounds_of "$R")
want="S01_SH01 2 simplify gen_low
S01_SH02 2 simplify gen_mid
S01_SH01 3 simplify gen_low
S01_SH02 3 simplify gen_mid"
[ "$remedies" = "$want" ] || fail "regen rounds with remedies [simplify]:
$remedies
expected:
$want"
[ "$(q "$R" "SELECT count(*) FROM events WHERE kind='budget.escalation'")" = 0 ] \
  || fail "a generation tier was escalated although regen.remedies allows only simplify"
grep -q ",budget-gates,S01,S01_SH02,.*,FAIL,.*refused escalation of S01_SH02: premium escalation is for hero A shots only" \
  "$A/logs/RUN_LOG_v001.csv" || fail "premium was not refused to a hero B shot"
# The attempts after the approval render on gen_mid; none of S01_SH02's on gen_premium.
after=$(q "$A" "SELECT group_concat(DISTINCT json_extract(body,'$.tier')) FROM events WHERE kind='media.recorded' AND json_extract(body,'$.shot_id')='S01_SH01' AND seq > (SELECT seq FROM events WHERE kind='budget.escalation' AND json_extract(body,'$.shot_id')='S01_SH01')")
[ "$after" = gen_mid ] || fail "renders of S01_SH01 after the escalation were on: $after"
[ "$(q "$A" "SELECT count(*) FROM events WHERE kind='media.recorded' AND json_extract(body,'$.tier')='gen_premium' AND json_extract(body,'$.shot_id')='S01_SH02'")" = 0 ] \
  || fail "a hero B shot rendered on gen_premium"
expect_exit 0 "$AVPS" gate "$A"

# (b) A shot cap the gen_mid round would pass: budget-gates refuses the escalation, naming the
# cap, and the round simplifies instead. Two hero C shots fail (a B shot's dearer attempts would
# meet the cap first); a first run with a far cap measures the shot's spend at the decision, the
# second, making the same calls, has a cap one micro-dollar short of that spend plus the round.
B0="$WORK/b0"
cp -r "$PLAN" "$B0"
configure "$B0" "sim.failure_rates.qc-grader@S01_SH02" 0
configure "$B0" "sim.failure_rates.qc-grader@S01_SH03" 1.0
B="$WORK/b"
cp -r "$B0" "$B"
expect_exit 3 "$AVPS" run "$B0" --scene S01
measured=$(q "$B0" "SELECT body FROM events WHERE kind='budget.escalation' AND json_extract(body,'$.shot_id')='S01_SH01'")
cap=$(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); assert e["approved"], e; print(next(c["spend_micro_usd"] for c in e["caps"] if c["scope"] == "shot S01_SH01") + e["round_micro_usd"] - 1)' "$measured") \
  || fail "the escalation with a far cap: $measured"
# The cap comes in after S01's cost loop passed: budget-gates checks every shot's projection
# against the shot cap (test_cost_reroute.sh), and one this low would fail S01's dearer shots there.
expect_exit 0 "$AVPS" run "$B" --scene S01 --until cost_proxy
configure "$B" budget.shot_cap_usd "$(python3 -c "print('%.6f' % ($cap / 1e6))")"
expect_exit 3 "$AVPS" run "$B" --scene S01
refused=$(q "$B" "SELECT json_extract(body,'$.refused') FROM events WHERE kind='budget.escalation' AND json_extract(body,'$.shot_id')='S01_SH01'")
case "$refused" in
  "the round at gen_mid "*"would take the shot S01_SH01 cap to"*) ;;
  *) fail "the escalation past the shot cap was not refused for it: $refused" ;;
esac
grep -q ",budget-gates,S01,S01_SH01,.*,FAIL,.*refused escalation of S01_SH01: the round at gen_mid" "$B/logs/RUN_LOG_v001.csv" \
  || fail "no budget-gates row refusing the escalation"
[ "$(q "$B" "SELECT json_extract(body,'$.remedy') FROM events WHERE kind='regen.round' AND json_extract(body,'$.shot_id')='S01_SH01' AND json_extract(body,'$.round')=3")" = simplify ] \
  || fail "a refused escalation did not simplify"
[ "$(q "$B" "SELECT count(*) FROM events WHERE kind='media.recorded' AND json_extract(body,'$.shot_id')='S01_SH01' AND json_extract(body,'$.tier')='gen_mid'")" = 0 ] \
  || fail "S01_SH01 rendered on gen_mid after its escalation was refused"
echo "ok"
