#!/usr/bin/env bash
# `avps run --until narrative` on the demo, offline on the sim backend: the artifacts, the
# record, determinism, resume after a kill, staleness, and the hard stop of a gate that keeps
# failing.
source "$(dirname "$0")/lib.sh"

fresh() {  # fresh NAME: a new copy of the demo, initialised
  rm -rf "$WORK/$1"
  cp -r "$SRC/examples/demo_short_film" "$WORK/$1"
  # The demo injects sim failures to exercise every loop; these checks count calls without them.
  python3 - "$WORK/$1/avps.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["sim"] = {"latency_ms": 0}
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
  "$AVPS" init "$WORK/$1" >/dev/null
  P="$WORK/$1"
}
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
always_fails() {  # always_fails SKILL: the sim fails SKILL's gate on every attempt in $P
  python3 - "$P/avps.json" "$1" <<'PY'
import json, sys
path, skill = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["sim"] = {"latency_ms": 0, "failure_rates": {skill: 1.0}}
json.dump(config, open(path, "w"), indent=2)
PY
}
faces() { (cd "$1" && sha256sum narrative/*); }

fresh a
expect_exit 0 "$AVPS" run "$P" --until narrative
expect_out "story-architect: PASS -> BEATS_v001.md SCENES_v001.csv"
expect_out "script-breakdown: PASS -> BREAKDOWN_v001.csv"
for f in BEATS_v001.md SCENES_v001.csv BREAKDOWN_v001.csv; do [ -f "$P/narrative/$f" ] || fail "no $f"; done
[ "$(tail -n +2 "$P/narrative/SCENES_v001.csv" | cut -c1-3 | sort -u | wc -l)" = 6 ] || fail "the demo should have 6 scenes"
expect_exit 0 "$AVPS" gate "$P"
# Every call was reserved, recorded and settled; the run log has a row per step and per budget check.
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response'")" = 2 ] || fail "expected 2 recorded calls"
[ "$(q "$P" "SELECT count(*) FROM reservations r LEFT JOIN reservation_ends e ON e.id=r.id WHERE e.id IS NULL")" = 0 ] \
  || fail "a reservation was left open"
grep -q ",story-architect,.*,sim-t2-lite,t2,.*,PASS," "$P/logs/RUN_LOG_v001.csv" || fail "no story-architect row"
grep -q ",budget-gates,.*reserved for script-breakdown" "$P/logs/RUN_LOG_v001.csv" || fail "no budget row"

# Running again does nothing: no call, no new version.
expect_exit 0 "$AVPS" run "$P" --until narrative
expect_out "0 artifacts written, 0 calls made"

# Determinism: a second fresh run gives byte-identical artifacts.
first=$(faces "$P")
fresh b
expect_exit 0 "$AVPS" run "$P" --until narrative
[ "$(faces "$P")" = "$first" ] || fail "two fresh runs differ"

# Resume: killed after a call's intent, or after its response, the next run ends identical and
# never pays twice for a recorded response.
for point in engine.after_intent:1 engine.after_intent:2 engine.after_response:1 engine.after_response:2 \
             ledger.after_commit:9 store.after_face:2 append.torn:1 engine.intents_synced:2 \
             engine.answers_synced:2 ledger.before_sync:4 ledger.after_object:3 store.after_object:2; do
  fresh "crash_${point//[:.]/_}"
  set +e
  AVPS_CRASH_AT="$point" "$AVPS" run "$P" --until narrative >/dev/null 2>&1
  rc=$?
  set -e
  [ $rc -eq 137 ] || fail "$point: expected a kill (137), got $rc"
  expect_exit 0 "$AVPS" run "$P" --until narrative
  [ "$(faces "$P")" = "$first" ] || fail "$point: resumed run differs from an uninterrupted one"
  responses=$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response'")
  distinct=$(q "$P" "SELECT count(DISTINCT json_extract(body,'$.key')) FROM events WHERE kind='exchange.response'")
  [ "$responses" = "$distinct" ] || fail "$point: a recorded call was made twice"
  [ "$responses" = 2 ] || fail "$point: expected 2 recorded calls, got $responses"
  expect_exit 0 "$AVPS" gate "$P"
done

# Staleness: a new brief re-derives the narrative (new versions), nothing is overwritten.
fresh stale
expect_exit 0 "$AVPS" run "$P" --until narrative
printf '\nScenes: 4\n' >> "$P/brief.md"
expect_exit 0 "$AVPS" run "$P" --until narrative
expect_out "BEATS_v002.md SCENES_v002.csv"
expect_out "BREAKDOWN_v002.csv"
[ "$(tail -n +2 "$P/narrative/SCENES_v002.csv" | cut -c1-3 | sort -u | wc -l)" = 4 ] || fail "v002 should follow the new brief"
expect_exit 0 "$AVPS" gate "$P"

# The locks phase: one lock per character, set and voice that BREAKDOWN requires.
fresh locks
expect_exit 0 "$AVPS" run "$P" --until locks
for lock in CHAR_MARA_QUILL CHAR_ELIAS_QUILL CHAR_HARBOUR_MASTER_OYELARAN SET_THE_LAMP_ROOM SET_THE_LANDING_STAGE \
            SET_THE_KEEPER_S_COTTAGE VOICE_MARA_QUILL VOICE_ELIAS_QUILL VOICE_HARBOUR_MASTER_OYELARAN; do
  [ -f "$P/continuity/${lock}_LOCK_v001.txt" ] || fail "no ${lock}_LOCK_v001.txt"
done
expect_exit 0 "$AVPS" status "$P" --steps
expect_out "voice-lock MARA_QUILL"
expect_out "USD project cap"
# Staleness: a person edits Mara's character lock; the next run re-derives exactly what read the
# part that changed and nothing else. Her eyes: no step of these phases reads her appearance.
before=$(cd "$P" && find narrative continuity -type f | sort)
cat > "$WORK/editor.sh" <<'SH'
#!/bin/sh
sed -i 's/^eyes: .*$/eyes: Dark brown, flecked with amber/' "$1"
SH
chmod +x "$WORK/editor.sh"
expect_exit 0 env EDITOR="$WORK/editor.sh" "$AVPS" artifact edit "$P" CHAR_MARA_QUILL_LOCK --reason "casting: brown eyes"
expect_exit 0 "$AVPS" run "$P" --until locks
expect_out "0 artifacts written, 0 calls made"
# Her voice's tone: her voice lock reads it, and is re-derived.
cat > "$WORK/editor.sh" <<'SH'
#!/bin/sh
sed -i 's/^tone: .*$/tone: Low and careful/' "$1"
SH
expect_exit 0 env EDITOR="$WORK/editor.sh" "$AVPS" artifact edit "$P" CHAR_MARA_QUILL_LOCK --reason "casting: a lower voice"
expect_exit 0 "$AVPS" run "$P" --until locks
expect_out "voice-lock MARA_QUILL: PASS -> VOICE_MARA_QUILL_LOCK_v002.txt"
expect_out "1 artifacts written, 1 calls made"
after=$(cd "$P" && find narrative continuity -type f | sort)
new=$(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')
[ "$new" = "continuity/CHAR_MARA_QUILL_LOCK_v002.txt continuity/CHAR_MARA_QUILL_LOCK_v003.txt continuity/VOICE_MARA_QUILL_LOCK_v002.txt " ] \
  || fail "expected exactly Mara's two edits and her re-derived voice lock, got: $new"
expect_exit 0 "$AVPS" gate "$P"

# A gate that keeps failing: revisions, one escalation, then a hard stop (exit 3), recorded.
fresh stop
always_fails story-architect
expect_exit 3 "$AVPS" run "$P" --until narrative
expect_out "escalating story-architect t2 -> t3"
expect_out "story-architect failed its gate 6 times"
[ "$(grep -c ',story-architect,.*,FAIL,' "$P/logs/RUN_LOG_v001.csv")" = 6 ] || fail "expected 6 failed attempts in the log"
[ -f "$P/narrative/SCENES_v002.csv" ] || fail "revisions should be recorded as new versions"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response'")" = 6 ] || fail "each revision is a call of its own"
grep -q ",story-architect,.*,STOP," "$P/logs/RUN_LOG_v001.csv" || fail "no STOP row"
expect_exit 3 "$AVPS" status "$P"
expect_out "HARD STOP"
expect_out "story-architect failed its gate 6 times"
expect_exit 0 "$AVPS" gate "$P"

# A red team that fails forever: each FAIL sends its findings to story-architect for a revision,
# the reviser escalates once, then the loop ends in a hard stop that names itself.
fresh redteam
always_fails narrative-red-team
expect_exit 3 "$AVPS" run "$P" --until narrative_review
expect_out "escalating story-architect t2 -> t3"
expect_out "narrative-red-team failed its gate 6 times"
stop=$(grep -o "STOP-[0-9]*" <<<"$OUT" | tail -n 1)
[ -n "$stop" ] || fail "the hard stop is not named"
[ -f "$P/narrative/SCENES_v002.csv" ] || fail "the red team's findings should revise SCENES"
revisions=$(q "$P" "SELECT count(*) FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='story-architect' AND json_extract(body,'$.revision_for.judge')='narrative-red-team'")
[ "$revisions" -ge 5 ] || fail "expected a story-architect revision after each red-team FAIL, got $revisions"
expect_exit 3 "$AVPS" status "$P"
expect_out "HARD STOP $stop (gate, narrative-red-team)"
expect_exit 3 "$AVPS" run "$P"
expect_out "$stop is open"

# A brief that is not UTF-8 (saved as Latin-1): refused before the run records anything, naming
# the file, the byte and its line; the run after the fix goes on as if nothing happened.
fresh latin1
events=$(q "$P" "SELECT count(*) FROM events")
cp "$P/brief.md" "$WORK/brief.good"
printf '\nCaf\351 scene at dawn.\n' >> "$P/brief.md"
expect_exit 4 "$AVPS" run "$P" --until narrative
expect_out "brief.md is not UTF-8 text: byte 0xE9 at offset"
expect_out "save it as UTF-8"
[ "$(q "$P" "SELECT count(*) FROM events")" = "$events" ] || fail "a refused run was recorded"
expect_exit 4 "$AVPS" cost "$P"
expect_out "brief.md is not UTF-8 text"
cp "$WORK/brief.good" "$P/brief.md"
# A cast name that cannot become an entity id (no Latin letter): named with its line, nothing recorded.
python3 - "$WORK/brief.good" "$P/brief.md" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
assert "## Characters\n" in text, "the demo brief has no ## Characters list"
open(sys.argv[2], "w", encoding="utf-8").write(
    text.replace("## Characters\n", "## Characters\n- \u03a9\u03bc\u03ad\u03b3\u03b1 \u2014 a ghost of the lighthouse\n", 1))
PY
expect_exit 4 "$AVPS" run "$P" --until narrative
expect_out "1 name(s) of its cast cannot become entity ids:"
expect_out "the character display name"
expect_out "has no ASCII letters or digits to make an id from; add a name in Latin letters"
[ "$(q "$P" "SELECT count(*) FROM events")" = "$events" ] || fail "a refused run was recorded"
cp "$WORK/brief.good" "$P/brief.md"
expect_exit 0 "$AVPS" run "$P" --until narrative
echo ok
