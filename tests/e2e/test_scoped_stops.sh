#!/usr/bin/env bash
# A hard stop holds only its scope (DESIGN §3, docs/cli.md `avps run`): a frozen shot holds its
# scene while every other scene reaches its final renders in the same run, which then exits 3;
# `avps override --allow-attempts N` or `--accept best` lets the next run finish that scene. A stop
# in a scene's continuity holds that scene and the later ones (their world state starts from it)
# while production goes on for the scenes before it; a lock's stop holds the scenes that show its
# entity and what depends on them.
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
# set_rate DIR KEY RATE|null: the sim's failure rate of KEY ("qc-grader@S02_SH02"); null removes it.
set_rate() {
  python3 - "$@" <<'PY'
import json, sys
path = sys.argv[1] + "/avps.json"
config = json.load(open(path))
rates = config["sim"]["failure_rates"]
if sys.argv[3] == "null":
    rates.pop(sys.argv[2], None)
else:
    rates[sys.argv[2]] = float(sys.argv[3])
json.dump(config, open(path, "w"), indent=2)
PY
}
# scene_row DIR SCENE: "proxy final" of the scene's row in `avps status --json` (which exits 3
# while a stop is open).
scene_row() {
  { "$AVPS" --json status "$1" || true; } | python3 -c '
import json, sys
for row in json.load(sys.stdin)["scenes"]:
    if row["scene_id"] == sys.argv[1]:
        print("%d/%d %d/%d" % (row["proxy"]["passed"], row["proxy"]["shots"], row["final"]["passed"], row["final"]["shots"]))' "$2"
}
# expect_finals DIR WHY SCENE...: each scene has every final render (status's final column n/n, n > 0).
expect_finals() {
  local dir=$1 why=$2 s proxy final
  shift 2
  for s in "$@"; do
    read -r proxy final <<<"$(scene_row "$dir" "$s")"
    [ "${final%/*}" = "${final#*/}" ] && [ "${final%/*}" != 0 ] || fail "$s should $why, status says $proxy $final"
  done
}
scenes="S01 S02 S03 S04 S05 S06"

# (a) S02_SH02 never passes QC: it freezes, S02 is held, every other scene is finished.
P="$WORK/frozen"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # what a stop holds, not the clips
set_rate "$P" qc-grader@S02_SH02 1.0
"$AVPS" init "$P" > /dev/null
expect_exit 3 "$AVPS" run "$P" --jobs 4
expect_out "1 hard stop(s) hold part of the production; the rest is done"
expect_out "S02_SH02 is frozen"
stop="STOP-$(q "$P" "SELECT seq FROM events WHERE kind='run.hard_stop'")"
[ "$(q "$P" "SELECT json_extract(body,'$.kind') || ' ' || json_extract(body,'$.scope.scene_id') FROM events WHERE kind='run.hard_stop'")" = "frozen S02" ] \
  || fail "expected one frozen stop of S02"
row=$(scene_row "$P" S02)
case "$row" in *" 0/"*) ;; *) fail "S02 is held: no final render expected, status says $row";; esac
expect_finals "$P" "have every final render" S01 S03 S04 S05 S06
# S02's other shots are not rendered at final; the scenes after S02 are.
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='media.recorded' AND json_extract(body,'$.scene_id')='S02' AND json_extract(body,'$.resolution')='final'")" = 0 ] \
  || fail "S02 is held, yet a final render of it was made"
"$AVPS" gate "$P" > /dev/null || fail "the gate should pass on a project held by a stop"

# The stop stands on the next run, which redoes nothing and exits 3 again.
events=$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.intent'")
expect_exit 3 "$AVPS" run "$P"
expect_out "$stop: S02_SH02 is frozen"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.intent'")" = "$events" ] || fail "the standing stop made calls"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='run.hard_stop'")" = 1 ] || fail "the standing stop was recorded again"

# (b) More attempts: with the shot's failure gone (as when a provider recovers), two more attempts
# let it pass and the run finishes S02 (proxy, cost loop, final) and exits 0.
A="$WORK/allowed"
cp -a "$P" "$A"
expect_exit 0 "$AVPS" override "$A" --stop "$stop" --reason "the provider's outage is over" --allow-attempts 2
set_rate "$A" qc-grader@S02_SH02 null
expect_exit 0 "$AVPS" run "$A"
[ "$(scene_row "$A" S02)" = "3/3 3/3" ] || fail "S02 should be finished after --allow-attempts, status says $(scene_row "$A" S02)"
"$AVPS" gate "$A" > /dev/null || fail "gate after --allow-attempts"

# (c) Accepting the best attempt: the proxy counts as passed, the final renders run; the shot
# freezes at final too (its failure rate is still 1) and is accepted there as well.
B="$WORK/accepted"
cp -a "$P" "$B"
expect_exit 0 "$AVPS" override "$B" --stop "$stop" --reason "good enough for the cut" --accept best
expect_out "accept media/S02_SH02_proxy_a"
expect_exit 3 "$AVPS" run "$B"
expect_out "S02_SH02 is frozen: "
# The accepted proxy let the final renders run. A failed final round re-plans the shot (the regen
# remedy), and the re-planned row needs a proxy of its own, so the shot may freeze again at either
# resolution; each stop is accepted in turn until the scene is finished.
[ "$(q "$B" "SELECT count(*) FROM events WHERE kind='step.finished' AND json_extract(body,'$.shot_attempt.shot_id')='S02_SH02' AND json_extract(body,'$.shot_attempt.resolution')='final'")" -ge 1 ] \
  || fail "no final render of S02_SH02 after its proxy was accepted"
final_stop="STOP-$(q "$B" "SELECT seq FROM events WHERE kind='run.hard_stop' ORDER BY seq DESC LIMIT 1")"
expect_exit 2 "$AVPS" override "$B" --stop "$final_stop" --reason "x" --accept S02_SH02_final_a99.png
expect_out "is not a graded render of S02_SH02"
# open_stops DIR: "STOP-N phase" of each open stop, the phase it holds from (status's read of the Plan).
open_stops() {
  { "$AVPS" --json status "$1" || true; } | python3 -c '
import json, sys
for stop in json.load(sys.stdin)["hard_stops"]:
    print(stop["id"], stop.get("holds_from_phase", ""))'
}
finished=""
required=""
for _ in 1 2 3 4 5 6 7 8; do
  stops=$(open_stops "$B")
  [ -n "$stops" ] || fail "run exited 3 with no open stop"
  # `avps gate --require` asks the engine's Plan what a stop holds: a shot frozen at final holds
  # the final renders, not the proxies (all in, one accepted); one frozen at proxy holds those.
  if ! grep -q " shots_proxy$" <<<"$stops"; then
    expect_exit 0 "$AVPS" gate "$B" --require proxy
    expect_exit 1 "$AVPS" gate "$B" --require final
    expect_out "$(head -n 1 <<<"$stops" | cut -d' ' -f1): open (qc-grader, frozen stop, holds from shots_final)"
    required=yes
  else
    expect_exit 1 "$AVPS" gate "$B" --require proxy
    expect_out "$(grep " shots_proxy$" <<<"$stops" | head -n 1 | cut -d' ' -f1): open (qc-grader, frozen stop, holds from shots_proxy)"
  fi
  for open_stop in $(cut -d' ' -f1 <<<"$stops"); do
    expect_exit 0 "$AVPS" override "$B" --stop "$open_stop" --reason "good enough for the cut" --accept best
  done
  set +e
  OUT=$(timeout 120 "$AVPS" run "$B" 2>&1)
  rc=$?
  set -e
  [ "$rc" = 124 ] && fail "a run after --accept did not end within 120 s"
  [ "$rc" = 0 ] && { finished=yes; break; }
  [ "$rc" = 3 ] || fail "run after --accept exited $rc: $OUT"
  expect_out "S02_SH02 is frozen: "
done
[ -n "$finished" ] || fail "S02 never finished after accepting each stop"
[ -n "$required" ] || fail "no final freeze of S02_SH02 met --require"
[ "$(q "$B" "SELECT count(*) FROM events WHERE kind='stop.override' AND json_extract(body,'$.decision.value') LIKE '%final%'")" -ge 1 ] \
  || fail "no final render of S02_SH02 was accepted"
[ "$(scene_row "$B" S02)" = "3/3 3/3" ] || fail "S02 should be finished after --accept, status says $(scene_row "$B" S02)"
"$AVPS" gate "$B" > /dev/null || fail "gate after --accept"

# (d) A stop in S03's continuity holds S03 and the scenes after it (their world state starts from
# S03's); S01 and S02 reach their final renders in the same run.
V="$WORK/continuity"
cp -r "$SRC/examples/demo_short_film" "$V"
png_renders "$V"  # what a stop holds, not the clips
set_rate "$V" world-state-tracker@S03 1.0
"$AVPS" init "$V" > /dev/null
expect_exit 3 "$AVPS" run "$V" --jobs 4
expect_out "1 hard stop(s) hold part of the production"
expect_out "world-state-tracker S03 failed its gate"
stop="STOP-$(q "$V" "SELECT seq FROM events WHERE kind='run.hard_stop' ORDER BY seq DESC LIMIT 1")"
# The plan holds S03 from the step that reads its stopped world state on, and each later scene
# from the first step that reads the previous scene's world state (validation).
expect_out "$stop holds S04 from validation on; the work that does not depend on it goes on"
expect_out "$stop holds S06 from validation on"
expect_exit 3 "$AVPS" --no-color status "$V"
expect_out "    holds S03 from continuity; S04, S05, S06 from validation"
# The stop's skill runs in continuity, but what it holds starts at validation (S04's): the project
# has reached the narrative review, not validation.
expect_exit 0 "$AVPS" gate "$V" --require narrative_review
expect_exit 1 "$AVPS" gate "$V" --require validation
expect_out "$stop: open (world-state-tracker, gate stop, holds from validation)"
expect_finals "$V" "have every final render" S01 S02
[ "$(q "$V" "SELECT count(*) FROM events WHERE kind='media.recorded' AND json_extract(body,'$.scene_id') IN ('S03','S04','S05','S06')")" = 0 ] \
  || fail "a scene held by S03's stop was rendered"

# (e) A lock's stop holds its entity and the scenes that show it: the cottage set (S04 only, by the
# BREAKDOWN) never passes its gate, so S04 is held from the step that reads set locks (its
# continuity), and S05, S06 behind it (continuity runs in scene order); S01-S03 reach their final
# renders in the same run. More attempts, with the lock's failure gone, finish the rest.
L="$WORK/lock"
cp -r "$SRC/examples/demo_short_film" "$L"
png_renders "$L"  # what a stop holds, not the clips
set_rate "$L" set-lock@THE_KEEPER_S_COTTAGE 1.0
"$AVPS" init "$L" > /dev/null
expect_exit 3 "$AVPS" run "$L" --jobs 4
expect_out "1 hard stop(s) hold part of the production; the rest is done"
stop="STOP-$(q "$L" "SELECT seq FROM events WHERE kind='run.hard_stop'")"
[ "$(q "$L" "SELECT json_extract(body,'$.skill') || ' ' || json_extract(body,'$.scope.entity_id') FROM events WHERE kind='run.hard_stop'")" = "set-lock THE_KEEPER_S_COTTAGE" ] \
  || fail "expected one stop of the cottage's set lock"
expect_out "$stop holds S04 from continuity on"
expect_exit 3 "$AVPS" --no-color status "$L"
expect_out "    holds S04, S05 from continuity; S06 from validation"
expect_finals "$L" "have every final render" S01 S02 S03
[ "$(q "$L" "SELECT count(*) FROM events WHERE kind='media.recorded' AND json_extract(body,'$.scene_id') IN ('S04','S05','S06')")" = 0 ] \
  || fail "a scene held by the set lock's stop was rendered"
expect_exit 0 "$AVPS" gate "$L" --require narrative
expect_exit 1 "$AVPS" gate "$L" --require locks
expect_out "$stop: open (set-lock, gate stop, holds from locks)"
expect_exit 0 "$AVPS" override "$L" --stop "$stop" --reason "the set's lighting is settled" --allow-attempts 2
set_rate "$L" set-lock@THE_KEEPER_S_COTTAGE null
expect_exit 0 "$AVPS" run "$L"
expect_finals "$L" "be finished after the override" $scenes
"$AVPS" gate "$L" > /dev/null || fail "gate after the lock's override"
echo "scoped stops e2e: ok"
