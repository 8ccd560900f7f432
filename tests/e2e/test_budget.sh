#!/usr/bin/env bash
# The budget on the demo (DESIGN §3, §5): budget-gates checks the whole project's projection before
# the first generation call. A cap just above the projection WARNs, records the cost loop's
# simplify / downgrade suggestions, and the run completes; a cap below it ends the run in a budget
# hard stop (exit 3) before any generation call is sent, after a re-route one generation tier down
# and a simpler shot list did not bring it under; a person raises the cap with
# `avps override`, and the run completes. Also: premium-quota re-allocations are logged one event
# per change, an escalation to t3 past the t3 quota is refused and logged, and a shot-cap stop names its cap.
# The ledger is on tmpfs where there is one: what is under test here is the budget, not fsync.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
source "$(dirname "$0")/lib.sh"

q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
# Generation calls recorded: storyboard frames and video renders route in the generation tiers
# (gen_low / gen_mid / gen_premium); model calls route in t1, t2, t3, vision, research.
generation_calls() {
  q "$1" "SELECT count(*) FROM events WHERE kind='exchange.intent' AND json_extract(body,'$.tier') LIKE 'gen\_%' ESCAPE '\\'"
}
# The field of a BUDGET_STATUS face: "Projected Spend: 35023800" -> 35023800.
face_field() { sed -n "s/^$2: //p" "$1"; }

# One planned project: every scene's SHOTLIST, no production yet.
PLAN="$WORK/plan"
cp -r "$SRC/examples/demo_short_film" "$PLAN"
png_renders "$PLAN"  # money, not clips (the copies below keep it)
"$AVPS" init "$PLAN" > /dev/null
expect_exit 0 "$AVPS" run "$PLAN" --until planning
[ "$(generation_calls "$PLAN")" = 0 ] || fail "planning sent a generation call"
expect_exit 0 "$AVPS" --json cost "$PLAN"
projected=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["basis"] == "recorded", d["basis"]; print(d["total_micro_usd"])' "$OUT")
spent=$(q "$PLAN" "SELECT coalesce(sum(json_extract(body,'$.cost_micro_usd')),0) FROM events WHERE kind='exchange.response'")
[ "$spent" -lt "$((projected / 2))" ] || fail "planning spent $spent of a projection of $projected"
usd() { python3 -c "print('%.6f' % ($1 / 1e6))"; }

# (a) A cap 2 % above the projection: 98 % of the cap, past the 90 % warn line.
A="$WORK/a"
cp -r "$PLAN" "$A"
configure "$A" budget.project_cap_usd "$(usd "$projected * 1.02")"
expect_exit 0 "$AVPS" run "$A"
expect_out "done:"
first="$A/governance/BUDGET_STATUS_v001.md"
grep -q "^Gate: WARN" "$first" || fail "the first BUDGET_STATUS is not a WARN: $(head -6 "$first")"
# budget-gates sees the projection `avps cost` printed: the same plan, the same arithmetic.
[ "$(face_field "$first" "Projected Spend")" = "$projected" ] \
  || fail "budget-gates projected $(face_field "$first" "Projected Spend"), avps cost $projected"
[ "$(q "$A" "SELECT count(*) FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='budget-gates' AND json_extract(body,'$.verdict')='WARN'")" -gt 0 ] \
  || fail "no budget-gates WARN in the ledger"
# The WARN ran the cost loop again over the project: its suggestions are recorded, once.
report="$A/governance/COST_REPORT_PROJECT_v001.md"
[ -f "$report" ] || fail "no COST_REPORT_PROJECT after a WARN: $(ls "$A/governance")"
# Reviewed once per plan: a later version only after a re-plan (a simplified shot) changed the
# projection it reviews.
reviews=$(ls "$A"/governance/COST_REPORT_PROJECT_v*.md | wc -l)
[ "$(for r in "$A"/governance/COST_REPORT_PROJECT_v*.md; do grep -E '^(Estimated Total Duration|- projected)' "$r" | tr '\n' ' '; echo; done | sort -u | wc -l)" = "$reviews" ] \
  || fail "the same plan was reviewed twice"
[ "$reviews" = 1 ] || [ "$(q "$A" "SELECT count(*) FROM artifacts WHERE kind='SHOTLIST' AND version > 1")" -ge $((reviews - 1)) ] \
  || fail "$reviews project reviews for fewer re-plans"
grep -q "^Gate: WARN" "$report" || fail "the project cost review is not a WARN"
grep -q "^- Simplify the high-risk shots" "$report" || fail "no simplify suggestion in $report"
grep -q "^- Downgrade: moving the" "$report" || fail "no downgrade suggestion in $report"
grep -q "one generation tier down" "$report" || fail "no per-shot downgrade in $report"
grep -q ",cost-optimizer,.*,WARN,0,COST_REPORT_PROJECT_v001.md," "$A/logs/RUN_LOG_v001.csv" \
  || fail "no RUN_LOG row for the project cost review"
[ "$(generation_calls "$A")" -gt 0 ] || fail "the WARN run rendered nothing"
expect_exit 0 "$AVPS" gate "$A"

# (b) A cap below the projection (above what planning spent), and a premium quota of 5 %.
B="$WORK/b"
cp -r "$PLAN" "$B"
configure "$B" budget.project_cap_usd "$(usd "$projected * 0.6")" quotas.premium_shot_pct 5
expect_exit 3 "$AVPS" run "$B"
expect_out "budget: budget-gates S01 found the projection over the project cap"
[ "$(generation_calls "$B")" = 0 ] || fail "$(generation_calls "$B") generation calls were sent before the budget stop"
[ -z "$(ls "$B/media" 2> /dev/null)" ] || fail "media was written before the budget stop"
expect_exit 3 "$AVPS" --json status "$B"
stop=$(python3 - "$OUT" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
stops = d["hard_stops"]
assert len(stops) == 1, stops
s = stops[0]
assert s["kind"] == "budget" and s["cap"] == "project" and s["skill"] == "budget-gates", s
print(s["id"])
PY
)
expect_exit 3 "$AVPS" status "$B"
expect_out "HARD STOP $stop (budget, budget-gates/S01)"
# The FAIL was re-routed before shot-planner was asked to simplify (docs/governance.md).
rerouted=$(q "$B" "SELECT seq FROM events WHERE kind='route.rerouted'")
[ -n "$rerouted" ] || fail "the budget FAIL was not re-routed first"
# The premium quota re-allocated shots before the check: one route.reallocated event and one
# model-router RUN_LOG row per moved shot, as the ROUTING_DECISION lists them. (The re-route moved
# a premium shot down, so the quota then let one of them back up: logged too, after it.)
before="kind='route.reallocated' AND seq < $rerouted"
moved=$(q "$B" "SELECT count(*) FROM events WHERE $before")
[ "$moved" -gt 0 ] || fail "no route.reallocated event under a 5 % premium quota"
[ "$(q "$B" "SELECT count(*) FROM events WHERE $before AND json_extract(body,'$.from_tier')='gen_premium' AND json_extract(body,'$.to_tier')='gen_mid' AND json_extract(body,'$.cost.delta_micro_usd') < 0 AND json_extract(body,'$.row.skill_name')='model-router'")" = "$moved" ] \
  || fail "a route.reallocated event without its tiers, saving or model-router row"
[ "$(grep -c ",model-router,.*re-allocate S[0-9]*_SH[0-9]* gen_premium -> gen_mid" "$B/logs/RUN_LOG_v001.csv")" = "$moved" ] \
  || fail "the RUN_LOG does not have one row per re-allocation"
moved=$(q "$B" "SELECT count(*) FROM events WHERE kind='route.reallocated'")
for shot in $(q "$B" "SELECT json_extract(body,'$.shot_id') FROM events WHERE kind='route.reallocated'"); do
  grep -q "render at gen_mid: .*$shot" "$B/governance/ROUTING_DECISION_PROJECT_v001.md" \
    || fail "$shot was logged as re-allocated but the ROUTING_DECISION does not say so"
done

# (c) A person raises the cap to just above the projection; the run resumes and completes.
expect_exit 0 "$AVPS" override "$B" --stop "$stop" --reason "the producer approved the overage" \
  --raise-cap "$(usd "$projected * 1.02")"
expect_out "raise the project cap"
expect_exit 0 "$AVPS" run "$B"
expect_out "done:"
[ "$(generation_calls "$B")" -gt 0 ] || fail "nothing was rendered after the raise"
expect_exit 0 "$AVPS" --json status "$B"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["hard_stops"] == [], d["hard_stops"]' "$OUT"
# The allocation did not change: no re-allocation was logged twice.
[ "$(q "$B" "SELECT count(*) FROM events WHERE kind='route.reallocated'")" = "$moved" ] \
  || fail "re-allocations were logged again for an unchanged allocation"
expect_exit 0 "$AVPS" gate "$B"

# (d) t3 quota: story-architect fails at t2 until it escalates. With a t3 quota of 0 % the
# escalation is refused and logged, and the hard stop says why; with the default 15 % it escalates.
for pct in 0 15; do
  T="$WORK/t3_$pct"
  cp -r "$SRC/examples/demo_short_film" "$T"
  configure "$T" sim '{"latency_ms": 0, "failure_rates": {"story-architect": 1.0}}' quotas.t3_narrative_pct "$pct"
  "$AVPS" init "$T" > /dev/null
  expect_exit 3 "$AVPS" run "$T"
  refused=$(q "$T" "SELECT count(*) FROM events WHERE kind='route.escalation_refused' AND json_extract(body,'$.to')='t3' AND json_extract(body,'$.row.skill_name')='model-router'")
  escalated=$(q "$T" "SELECT count(*) FROM events WHERE kind='route.escalated' AND json_extract(body,'$.to')='t3'")
  if [ "$pct" = 0 ]; then
    expect_out "escalation of story-architect t2 -> t3 refused: t3 quota 0% of"
    [ "$refused" = 1 ] && [ "$escalated" = 0 ] || fail "t3 quota 0: $refused refusals, $escalated escalations"
    [ "$(q "$T" "SELECT count(*) FROM events WHERE kind='exchange.intent' AND json_extract(body,'$.tier')='t3'")" = 0 ] \
      || fail "a t3 call was sent past a t3 quota of 0"
  else
    [ "$refused" = 0 ] && [ "$escalated" = 1 ] || fail "t3 quota 15: $refused refusals, $escalated escalations"
  fi
done

# (e) A call refused at reservation time by a shot cap: the hard stop names that cap; the calls of
# the same wave reserved before it were never sent, so they are released, not counted as spent;
# raising the cap lets that render through. budget-gates checks each shot's projection against the
# cap before production (test_cost_reroute.sh), so the cap here is S01's dearest shot's projection
# (not over it) and that shot's QC, and another's, keeps failing: its attempts spend past it (8
# regen rounds: each round's re-plan makes the shot cheaper, so its attempts add up slowly).
E="$WORK/shot_cap"
cp -r "$PLAN" "$E"
expect_exit 0 "$AVPS" run "$E" --scene S01 --until cost_proxy
read -r dearest dearest_cap <<<"$("$AVPS" --json artifact show "$E" COST_REPORT_S01_v001.md | python3 -c '
import json, sys
rows = json.load(sys.stdin)["shot_breakdown"]
top = max(rows, key=lambda r: r["projected_micro_usd"])
print(top["shot_id"], top["projected_micro_usd"])')"
other=S01_SH02
[ "$dearest" != "$other" ] || other=S01_SH01
configure "$E" budget.shot_cap_usd "$(usd "$dearest_cap")" regen.max_rounds 8 \
  "sim.failure_rates.qc-grader@$dearest" 1.0 "sim.failure_rates.qc-grader@$other" 1.0
expect_exit 3 "$AVPS" run "$E" --scene S01 --jobs 4
expect_out "past its cap"
stops=$(q "$E" "SELECT count(*) FROM events WHERE kind='run.hard_stop'")
[ "$(grep -c "^  STOP-" <<<"$OUT")" = "$stops" ] || fail "the run should list its $stops stops, got: $OUT"
stop="STOP-$(q "$E" "SELECT seq FROM events WHERE kind='run.hard_stop' ORDER BY seq DESC LIMIT 1")"
shot=$(q "$E" "SELECT json_extract(body,'$.cap') FROM events WHERE kind='run.hard_stop' ORDER BY seq DESC LIMIT 1")
case "$shot" in "shot S"*) ;; *) fail "the budget stop should name a shot cap, got '$shot'";; esac
expect_out "raise the $shot cap"
released=$(q "$E" "SELECT count(*) FROM events WHERE kind='budget.released' AND json_extract(body,'$.why') LIKE 'not sent:%'")
[ "$released" -ge 1 ] || fail "the wave's calls reserved before the refusal were not released"
[ "$(q "$E" "SELECT count(*) FROM reservations r LEFT JOIN reservation_ends e ON e.id = r.id WHERE e.id IS NULL")" = 0 ] \
  || fail "a reservation was left open by the budget stop"
[ "$shot" = "shot $dearest" ] || fail "the stop names $shot, not $dearest's cap"
expect_exit 0 "$AVPS" override "$E" --stop "$stop" --reason "this render is worth it" --raise-cap 100
expect_out "raise the $shot cap from $(usd "$dearest_cap") to 100.000000 USD"
"$AVPS" run "$E" --scene S01 --jobs 4 > /dev/null 2>&1 || true
refusals=$(q "$E" "SELECT count(*) FROM events WHERE kind='budget.refused' AND json_extract(body,'$.refused.shot_id')='${shot#shot }'")
[ "$refusals" = 1 ] || fail "the raised $shot cap refused the render again ($refusals refusals)"
[ "$(q "$E" "SELECT count(*) FROM events WHERE kind='budget.reconciled'")" = 0 ] \
  || fail "calls that were never sent were reconciled as spent"
echo "budget e2e: ok"
