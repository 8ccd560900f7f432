#!/usr/bin/env bash
# Loops that keep their promises (issue 13, items 7 and 10; docs/cli.md `avps run`):
# (a) a storyboard FIX follows its on_fix policy: prompt-packager revises the GenPack with the
#     review's findings, the new GenPack's frame is drawn and reviewed again, at most twice, then a
#     hard stop; nothing of the scene renders meanwhile (a FIX is not a pass);
# (b) after `avps override --allow-attempts 1` the next revision is reviewed, passes, and only then
#     does the proxy render, from that GenPack;
# (c) a QC failure on continuity grounds re-runs continuity-supervisor for that scene once in the
#     run, logged with its cause before it runs; a later run does not fire again for what it answered.
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
# edit_config DIR PYTHON: runs PYTHON with `c` bound to the project's avps.json, then saves it.
edit_config() {
  python3 - "$1/avps.json" "$2" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["sim"]["media"] = "image"  # no ffmpeg: the test is about loops, not clips
exec(sys.argv[2])
json.dump(c, open(path, "w"), indent=2)
PY
}
verdicts() {  # verdicts DIR SHOT: the storyboard review's verdicts of SHOT, in order
  q "$1" "SELECT group_concat(v, ' ') FROM (SELECT json_extract(body,'$.verdict') AS v FROM events
          WHERE kind='step.finished' AND json_extract(body,'$.skill')='storyboard-generator'
          AND json_extract(body,'$.loop') LIKE '%/$2/%' ORDER BY seq)"
}

# (a) Every review of S01_SH02 says Adjust.
P="$WORK/fix"
cp -r "$SRC/examples/demo_short_film" "$P"
edit_config "$P" 'c["sim"]["fix_rates"]["storyboard-generator@S01_SH02"] = 1.0'
"$AVPS" init "$P" > /dev/null
expect_exit 3 "$AVPS" run "$P" --scene S01 --jobs 4
expect_out "storyboard-generator S01_SH02 (proxy) still asked for a fix after 3 attempts"
[ "$(verdicts "$P" S01_SH02)" = "FIX FIX FIX" ] || fail "expected three FIX reviews, got: $(verdicts "$P" S01_SH02)"
for v in 2 3; do
  pack="$P/production/GENPACK_S01_SH02_v00$v.txt"
  [ -f "$pack" ] || fail "the FIX of review $((v - 1)) should have revised the GenPack into $pack"
  grep -q "Revised for storyboard-generator attempt $((v - 1)): the storyboard shows fixable drift" "$pack" \
    || fail "$pack does not carry the review's findings"
done
[ ! -f "$P/production/GENPACK_S01_SH02_v004.txt" ] || fail "more revisions than on_fix.max_revisions allows"
frames=$(q "$P" "SELECT json_extract(body,'$.row.notes') FROM events WHERE kind='artifact.recorded'
                 AND json_extract(body,'$.artifact.kind')='STORYBOARD' AND json_extract(body,'$.artifact.target')='S01_SH02'
                 ORDER BY seq")
[ "$frames" = "storyboard frame of GENPACK_S01_SH02_v001.txt
storyboard frame of GENPACK_S01_SH02_v002.txt
storyboard frame of GENPACK_S01_SH02_v003.txt" ] || fail "each GenPack should get a frame of its own, got:
$frames"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='media.recorded'")" = 0 ] \
  || fail "a FIX is not a pass: nothing of S01 may render before the review settles"
stop="STOP-$(q "$P" "SELECT seq FROM events WHERE kind='run.hard_stop'")"
[ "$(q "$P" "SELECT json_extract(body,'$.scope.shot_id') FROM events WHERE kind='run.hard_stop'")" = S01_SH02 ] \
  || fail "the stop should be scoped to S01_SH02"
"$AVPS" gate "$P" > /dev/null || fail "the gate should pass on a project held by a stop"

# (b) One more attempt, and the reviews pass from now on: the fourth GenPack is drawn and reviewed
# before the shot's first proxy render, which is made from it.
expect_exit 0 "$AVPS" override "$P" --stop "$stop" --reason "the art director pinned the light" --allow-attempts 1
edit_config "$P" 'del c["sim"]["fix_rates"]["storyboard-generator@S01_SH02"]'
expect_exit 0 "$AVPS" run "$P" --scene S01 --jobs 4
# (A later QC round may re-plan the shot, whose new row is drawn and reviewed again: those pass.)
[[ "$(verdicts "$P" S01_SH02)" =~ ^"FIX FIX FIX PASS"( PASS)*$ ]] || fail "expected the fourth review to pass, got: $(verdicts "$P" S01_SH02)"
grep -q "Revised for storyboard-generator attempt 3" "$P/production/GENPACK_S01_SH02_v004.txt" \
  || fail "the allowed attempt should revise the GenPack once more"
board=$(q "$P" "SELECT seq FROM events WHERE kind='artifact.recorded' AND json_extract(body,'$.row.notes')='storyboard frame of GENPACK_S01_SH02_v004.txt'")
passed=$(q "$P" "SELECT min(seq) FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='storyboard-generator'
                 AND json_extract(body,'$.verdict')='PASS' AND json_extract(body,'$.loop') LIKE '%/S01_SH02/%'")
render=$(q "$P" "SELECT min(seq) FROM events WHERE kind='media.recorded' AND json_extract(body,'$.shot_id')='S01_SH02'")
[ -n "$board" ] && [ -n "$passed" ] && [ -n "$render" ] && [ "$board" -lt "$passed" ] && [ "$passed" -lt "$render" ] \
  || fail "frame ($board), passing review ($passed) and first proxy render ($render) out of order"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='artifact.recorded' AND json_extract(body,'$.artifact.kind')='GENPACK'
             AND json_extract(body,'$.artifact.target')='S01_SH02' AND seq > $passed AND seq < $render")" = 0 ] \
  || fail "the proxy must render the GenPack the review passed"
"$AVPS" gate "$P" > /dev/null || fail "gate after the storyboard loop settled"

# (c) S01_SH03's renders keep contradicting the world state (one regen round, so it freezes soon).
T="$WORK/trigger"
cp -r "$SRC/examples/demo_short_film" "$T"
contradicting='
c["sim"]["failure_rates"]["qc-grader@S01_SH03"] = 1.0
c["sim"]["failure_rates"]["continuity-supervisor"] = 0.0
c["sim"]["qc_violations"] = {"S01_SH03": "world_state_contradiction"}
c["regen"]["max_rounds"] = 1'
edit_config "$T" "$contradicting"
"$AVPS" init "$T" > /dev/null
expect_exit 3 "$AVPS" run "$T" --scene S01 --jobs 4
expect_out "S01_SH03 is frozen"
expect_out "trigger qc_continuity: 1 shot(s) of S01 failed QC concerning S01"
[ "$(q "$T" "SELECT count(*) FROM events WHERE kind='trigger.fired'")" = 1 ] || fail "the trigger should fire once in the run"
fired=$(q "$T" "SELECT json_extract(body,'$.trigger') || ' ' || json_extract(body,'$.skill') || ' ' || json_extract(body,'$.key')
                || ' ' || json_extract(body,'$.cause.id') || ' ' || json_extract(body,'$.cause.rule') FROM events WHERE kind='trigger.fired'")
[ "$fired" = "qc_continuity continuity-supervisor S01 S01_SH03/proxy#1 world_state_contradiction" ] || fail "trigger.fired: $fired"
# Two failed attempts carried the violation; the second found the trigger fired in this run.
[ "$(q "$T" "SELECT count(*) FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='qc-grader'
             AND json_extract(body,'$.shot_attempt.shot_id')='S01_SH03' AND json_extract(body,'$.verdict')='FAIL'")" = 2 ] \
  || fail "S01_SH03 should have failed twice"
fired_seq=$(q "$T" "SELECT seq FROM events WHERE kind='trigger.fired'")
rerun=$(q "$T" "SELECT count(*) || ' ' || min(seq) FROM events WHERE kind='step.finished'
                AND json_extract(body,'$.skill')='continuity-supervisor' AND json_extract(body,'$.trigger.id')='qc_continuity'")
[ "${rerun%% *}" = 1 ] && [ "${rerun#* }" -gt "$fired_seq" ] || fail "continuity-supervisor should re-run once after the trigger: $rerun"
grep -q "continuity-supervisor,S01,S01_SH03,.*trigger qc_continuity: 1 shot(s) of S01 failed QC concerning S01 (last: S01_SH03 proxy attempt 1, world_state_contradiction" \
  "$T/logs/RUN_LOG_v001.csv" || fail "the RUN_LOG should have the trigger's row with its cause"
# The next run: the stop stands, nothing fires again, nothing is called.
intents=$(q "$T" "SELECT count(*) FROM events WHERE kind='exchange.intent'")
expect_exit 3 "$AVPS" run "$T" --scene S01
[ "$(q "$T" "SELECT count(*) FROM events WHERE kind='trigger.fired'")" = 1 ] || fail "a later run fired again for answered findings"
[ "$(q "$T" "SELECT count(*) FROM events WHERE kind='exchange.intent'")" = "$intents" ] || fail "the standing stop made calls"
"$AVPS" gate "$T" > /dev/null || fail "gate after a trigger"

# (d) Killed right after the trigger was recorded, before continuity-supervisor ran: the next run
# runs it, once, fires nothing again, and leaves the files of the run never killed (the spend
# reports aside: a call in flight at the kill counts as spent).
K="$WORK/killed"
cp -r "$SRC/examples/demo_short_film" "$K"
edit_config "$K" "$contradicting"
"$AVPS" init "$K" > /dev/null
set +e
AVPS_CRASH_AT=engine.after_trigger_fired:1 "$AVPS" run "$K" --scene S01 --jobs 4 > /dev/null 2>&1
code=$?
set -e
[ "$code" = 137 ] || fail "expected the run to be killed right after the trigger fired (137), got $code"
reruns() { q "$1" "SELECT count(*) FROM events WHERE kind='step.finished' AND json_extract(body,'$.trigger.id')='qc_continuity'"; }
[ "$(reruns "$K")" = 0 ] || fail "the kill should come before continuity-supervisor's re-run"
expect_exit 3 "$AVPS" run "$K" --scene S01 --jobs 4
[ "$(q "$K" "SELECT count(*) FROM events WHERE kind='trigger.fired'")" = 1 ] || fail "the resumed run fired the trigger again"
[ "$(reruns "$K")" = 1 ] || fail "the resumed run should run the recorded trigger's skill once, ran $(reruns "$K")"
digest() {
  (cd "$1" && find . -path ./.avps -prune -o -path ./logs -prune -o -type f -print | sort | xargs sha256sum) \
    | grep -v -e "BUDGET_STATUS_" -e "COST_REPORT_"
}
[ "$(digest "$T")" = "$(digest "$K")" ] || fail "the resumed run's files differ from the uninterrupted run's:
$(diff <(digest "$T") <(digest "$K"))"
"$AVPS" gate "$K" > /dev/null || fail "gate after the resumed trigger"
echo "loop triggers e2e: ok"
