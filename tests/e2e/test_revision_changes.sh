#!/usr/bin/env bash
# A revision must change something (issue 13 item 4). The whole demo: no target gets two
# consecutive versions of the same content, its revisions change what they revise, and a second run
# has nothing to do. The whole demo on a sim whose revisions change nothing (sim.identical_revisions):
# each identical revision is a FAIL of its attempt, named in the log, its loop goes on by its policy
# and ends in a stop, and still no version repeats the one before. The narrative review alone, the
# red team always failing: the details of the refusal (event, RUN_LOG row, escalation, stop).
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }

# Targets whose consecutive versions have the same content (json_sha256 of the ledger's artifact
# index): a version that changes nothing.
consecutive_same() {
  q "$1" "SELECT b.name || ' == ' || a.name FROM artifacts a JOIN artifacts b ON b.kind = a.kind AND
          b.target = a.target AND b.version = a.version + 1 AND b.json_sha256 = a.json_sha256"
}

# --- The whole demo: every revision the sim makes changes what its findings name ---------------
P="$WORK/demo"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # revisions of artifacts, not clips
"$AVPS" init "$P" > /dev/null
expect_exit 0 "$AVPS" run "$P" --jobs 4
dupes=$(consecutive_same "$P")
[ -z "$dupes" ] || fail "the demo wrote versions that change nothing:
$dupes"
# Revisions did happen, and changed what they revised (else the check above proves nothing).
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='step.finished' AND json_extract(body,'$.revision_for') IS NOT NULL AND json_extract(body,'$.outputs') != ''")" -ge 3 ] \
  || fail "the demo made fewer than 3 revisions"
grep -q "revision identical to" "$P/logs/RUN_LOG_v001.csv" && fail "a sim revision of the demo changed nothing"
expect_exit 0 "$AVPS" run "$P"
expect_out "0 artifacts written, 0 calls made"
expect_exit 0 "$AVPS" gate "$P" --require final

# --- The whole demo with a sim whose revisions change nothing: refused, escalated, stopped ------
P="$WORK/demo_same"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # revisions of artifacts, not clips
configure "$P" sim.identical_revisions true
"$AVPS" init "$P" > /dev/null
expect_exit 3 "$AVPS" run "$P" --jobs 4
grep -q "revision identical to" "$P/logs/RUN_LOG_v001.csv" || fail "no identical revision refused in the RUN_LOG"
dupes=$(consecutive_same "$P")
[ -z "$dupes" ] || fail "identical revisions wrote versions that change nothing:
$dupes"
# Each refused revision's loop went on by its policy: an escalation or a stop, logged, after it.
for seq in $(q "$P" "SELECT seq FROM events WHERE kind='step.finished' AND json_extract(body,'$.identical_to') IS NOT NULL"); do
  loop=$(q "$P" "SELECT json_extract(body,'$.loop') FROM events WHERE seq=$seq")
  [ "$(q "$P" "SELECT count(*) FROM events WHERE seq > $seq AND json_extract(body,'$.loop')='$loop' AND kind IN ('route.escalated','route.escalation_refused','run.hard_stop','step.finished')")" -ge 1 ] \
    || fail "the identical revision at event $seq ($loop) was the end of its loop: no escalation, stop or next attempt"
done
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='run.hard_stop' AND json_extract(body,'$.loop') IN (SELECT json_extract(body,'$.loop') FROM events WHERE kind='step.finished' AND json_extract(body,'$.identical_to') IS NOT NULL)")" -ge 1 ] \
  || fail "no loop of an identical revision ended in a hard stop"
expect_exit 0 "$AVPS" gate "$P"

# --- The narrative review alone, the red team always failing --------------------------------
P="$WORK/same"
cp -r "$SRC/examples/demo_short_film" "$P"
python3 - "$P/avps.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["sim"]["identical_revisions"] = True
c["sim"]["failure_rates"]["narrative-red-team"] = 1.0  # the red team always asks for a revision
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
"$AVPS" init "$P" > /dev/null
expect_exit 3 "$AVPS" run "$P" --until narrative_review
expect_out "STOP-"

dupes=$(consecutive_same "$P")
[ -z "$dupes" ] || fail "versions with the same content:
$dupes"

# The first revision story-architect made for the red team changed nothing: a FAIL naming the
# version it equals, in the event and in its RUN_LOG row, and nothing written.
first=$(q "$P" "SELECT seq FROM events WHERE kind='step.finished' AND json_extract(body,'$.skill')='story-architect' AND json_extract(body,'$.reasons[0]') LIKE 'revision identical to BEATS_v001.md%' ORDER BY seq LIMIT 1")
[ -n "$first" ] || fail "no FAIL of an identical story-architect revision"
body=$(q "$P" "SELECT body FROM events WHERE seq=$first")
python3 - "$body" <<'PY' || fail "the identical revision's event: $body"
import json, sys
b = json.loads(sys.argv[1])
assert b["verdict"] == "FAIL" and b["outputs"] == "", b
assert b["identical_to"] == {"BEATS": "BEATS_v001.md", "SCENES": "SCENES_v001.csv"}, b
assert b["revision_for"]["judge"] == "narrative-red-team", b
PY
grep -q ',story-architect,,,.*,FAIL,.*,"revision identical to BEATS_v001.md, SCENES_v001.csv: a revision must change something' \
  "$P/logs/RUN_LOG_v001.csv" || fail "no RUN_LOG row of the identical revision"

# The reviser's loop escalated after its revisions, and then stopped: the stop is logged and names
# the identical revision; no endless loop (the run ended, exit 3 above).
loop=$(q "$P" "SELECT json_extract(body,'$.loop') FROM events WHERE seq=$first")
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind IN ('route.escalated','route.escalation_refused') AND json_extract(body,'$.loop')='$loop' AND seq > $first")" -ge 1 ] \
  || fail "the loop $loop did not escalate (or log why not) after identical revisions"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='run.hard_stop' AND json_extract(body,'$.loop')='$loop' AND seq > $first")" = 1 ] \
  || fail "the loop $loop of the identical revisions did not end in a hard stop"
grep -q ",story-architect,.*,STOP," "$P/logs/RUN_LOG_v001.csv" || fail "no STOP row in the RUN_LOG"
[ "$(q "$P" "SELECT count(*) FROM artifacts WHERE kind='BEATS'")" = "$(q "$P" "SELECT count(DISTINCT json_sha256) FROM artifacts WHERE kind='BEATS'")" ] \
  || fail "two BEATS versions with the same bytes"
expect_exit 0 "$AVPS" gate "$P"
echo "ok"
