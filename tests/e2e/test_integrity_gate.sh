#!/usr/bin/env bash
# `avps init P && avps gate P` passes, and each kind of tampering makes the gate fail with a
# message naming what was touched.
source "$(dirname "$0")/lib.sh"

fresh() {  # fresh NAME: a newly initialised project in $WORK/NAME
  "$AVPS" init "$WORK/$1" --title "Gate test" >/dev/null
  P="$WORK/$1"
}

fresh clean
expect_exit 0 "$AVPS" gate "$P"
expect_out "PASS"

# One byte of an artifact file changed.
fresh byte
printf 'X' | dd of="$P/continuity/STYLE_PROJECT_LOCK_v001.txt" bs=1 seek=3 conv=notrunc status=none
expect_exit 1 "$AVPS" gate "$P"
expect_out "continuity/STYLE_PROJECT_LOCK_v001.txt: content changed"

# An artifact file deleted.
fresh deleted
rm "$P/continuity/WORLD_STATE_v001.json"
expect_exit 1 "$AVPS" gate "$P"
expect_out "continuity/WORLD_STATE_v001.json: recorded by ledger event"
expect_out "the file is gone"

# A file named like an artifact added by hand.
fresh added
echo "# beats" > "$P/narrative/BEATS_v001.md"
expect_exit 1 "$AVPS" gate "$P"
expect_out "narrative/BEATS_v001.md: named like an artifact but never recorded"

# A hand-made file with a banned suffix, and a version gap made by hand.
fresh named
cp "$P/continuity/WORLD_STATE_v001.json" "$P/continuity/WORLD_STATE_v003.json"
echo x > "$P/narrative/BEATS_final.md"
expect_exit 1 "$AVPS" gate "$P"
expect_out "narrative/BEATS_final.md"
expect_out "banned suffix"
expect_out "continuity/WORLD_STATE_v003.json: named like an artifact but never recorded"

# With the triggers dropped, a row edited.
fresh edited
sqlite3 "$P/.avps/ledger.db" "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;
  UPDATE events SET body = replace(body, 'recorded at project init', 'recorded at project init!') WHERE seq = 3;"
expect_exit 1 "$AVPS" gate "$P"
expect_out "ledger event 3: content does not match its hash"
expect_out "append-only trigger events_no_update is missing"

# With the triggers dropped, the last event deleted (tail truncation).
fresh truncated
sqlite3 "$P/.avps/ledger.db" "DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq = (SELECT max(seq) FROM events);"
expect_exit 1 "$AVPS" gate "$P"
expect_out ".avps/HEAD: records event 7 but the ledger ends at event 6"

# With the triggers in place, UPDATE and DELETE from the sqlite3 shell are refused.
fresh triggers
set +e
upd=$(sqlite3 "$P/.avps/ledger.db" "UPDATE events SET kind = 'x' WHERE seq = 1;" 2>&1); upd_rc=$?
del=$(sqlite3 "$P/.avps/ledger.db" "DELETE FROM artifacts;" 2>&1); del_rc=$?
set -e
[ $upd_rc -ne 0 ] && grep -q "append-only" <<<"$upd" || fail "UPDATE was not refused: $upd"
[ $del_rc -ne 0 ] && grep -q "append-only" <<<"$del" || fail "DELETE was not refused: $del"
expect_exit 0 "$AVPS" gate "$P"

# --json gives the same findings as data.
fresh json
rm "$P/continuity/WORLD_STATE_v001.json"
expect_exit 1 "$AVPS" --json gate "$P"
python3 - "$OUT" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
assert doc["verdict"] == "FAIL", doc
rules = {(v["rule"], v["subject"]) for v in doc["violations"]}
assert ("artifact.missing", "continuity/WORLD_STATE_v001.json") in rules, rules
PY

# --- A produced project: every render and every recorded request and answer is vouched for ------
# The demo on the sim, with video renders where ffmpeg is installed (else PNG frames).
DEMO="$WORK/demo"
cp -r "$SRC/examples/demo_short_film" "$DEMO"
"$AVPS" init "$DEMO" > /dev/null
expect_exit 0 "$AVPS" run "$DEMO" --jobs 2
expect_exit 0 "$AVPS" gate "$DEMO"
q() { sqlite3 "$DEMO/.avps/ledger.db" "$1"; }
# The run log is complete: budget_pct on every row that moved money (the project's spend against
# its cap once the row's event is in: the last equals what `avps status` prints), duration_s on
# every row of a call, a row naming every QC_BATCH.
expect_exit 0 "$AVPS" status "$DEMO"
python3 - "$DEMO/logs/RUN_LOG_v001.csv" "$OUT" <<'PY'
import csv, re, sys
rows = list(csv.DictReader(open(sys.argv[1])))
money = lambda v: any(c in v for c in "123456789")
moved = [r for r in rows if money(r["estimated_cost"]) or money(r["actual_cost"])]
assert moved and all(r["budget_pct"] for r in moved), [r for r in moved if not r["budget_pct"]][:2]
calls = [r for r in rows if r["model_used"] and money(r["actual_cost"])]
assert calls and all(r["duration_s"] for r in calls), [r for r in calls if not r["duration_s"]][:2]
status = re.search(r"cap \((\d+) %\)", sys.argv[2]).group(1)
import glob, os
batches = {os.path.basename(f) for f in glob.glob(os.path.join(os.path.dirname(sys.argv[1]), "..", "production", "QC_BATCH_*"))}
named = {r["artifact_output"] for r in rows if r["skill_name"] == "qc-grader"}
assert batches and batches <= named, sorted(batches - named)[:3]  # every QC wave has its row
assert int(float(moved[-1]["budget_pct"])) == int(status), (moved[-1]["budget_pct"], status)  # status prints whole percent, rounded down
PY
copy() { rm -rf "$WORK/$1"; cp -r "$DEMO" "$WORK/$1"; P="$WORK/$1"; }
mapfile -t renders < <(q "SELECT json_extract(body,'$.path') FROM events WHERE kind='media.recorded' ORDER BY seq")
[ "${#renders[@]}" -ge 4 ] || fail "the demo recorded ${#renders[@]} renders"
A=${renders[0]} B=${renders[1]}

copy render_edited   # one byte of a render changed
printf 'X' | dd of="$P/$A" bs=1 seek=40 conv=notrunc status=none
expect_exit 1 "$AVPS" gate "$P"; expect_out "$A: render changed since ledger event"

copy render_swapped  # two renders swapped
mv "$P/$A" "$WORK/swap"; mv "$P/$B" "$P/$A"; mv "$WORK/swap" "$P/$B"
expect_exit 1 "$AVPS" gate "$P"; expect_out "$A: render changed"; expect_out "$B: render changed"

copy render_truncated
truncate -s 100 "$P/$A"
expect_exit 1 "$AVPS" gate "$P"; expect_out "$A: render changed"

copy render_deleted
rm "$P/$B"
expect_exit 1 "$AVPS" gate "$P"; expect_out "$B: render recorded by ledger event"; expect_out "the file is gone"

copy render_added
cp "$P/$A" "$P/media/S01_SH01_final_a09.${A##*.}"
expect_exit 1 "$AVPS" gate "$P"; expect_out "media/S01_SH01_final_a09.${A##*.}: under media/ but recorded by no ledger event"

copy media_removed   # rm -rf media: every render named
rm -rf "$P/media"
expect_exit 1 "$AVPS" --json gate "$P"
python3 - "$OUT" "${#renders[@]}" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
missing = [v for v in doc["violations"] if v["rule"] == "media.missing"]
assert len(missing) == int(sys.argv[2]), (len(missing), sys.argv[2])
PY

REQ=$(q "SELECT json_extract(body,'$.request_sha256') FROM events WHERE kind='exchange.intent' ORDER BY seq DESC LIMIT 1")
RESP=$(q "SELECT json_extract(body,'$.response_sha256') FROM events WHERE kind='exchange.response' AND json_extract(body,'$.response_sha256') IS NOT NULL ORDER BY seq DESC LIMIT 1")
copy request_edited
echo '{"edited":true}' > "$WORK/edited.json"; object_set "$P" "$REQ" "$WORK/edited.json"
expect_exit 1 "$AVPS" gate "$P"; expect_out "$(object "$REQ"): request_sha256 of exchange.intent"; expect_out "no longer matches its hash"

copy response_deleted
object_delete "$P" "$RESP"
expect_exit 1 "$AVPS" gate "$P"; expect_out "object $RESP: response_sha256 of exchange.response"; expect_out "is gone"

# A recorded answer edited while a run was interrupted is never used: the resumed run stops on it
# (an integrity hard stop, exit 3, naming the object, as the gate does) and writes nothing from it;
# no decision lifts that stop; restored, the next run records it resolved and goes on.
P="$WORK/resumed"
cp -r "$SRC/examples/demo_short_film" "$P"
"$AVPS" init "$P" > /dev/null
(AVPS_CRASH_AT="engine.after_response:3" "$AVPS" run "$P" > /dev/null 2>&1 || true) 2> /dev/null
LAST=$(sqlite3 "$P/.avps/ledger.db" "SELECT json_extract(body,'$.response_sha256') FROM events WHERE kind='exchange.response' ORDER BY seq DESC LIMIT 1")
[ -n "$LAST" ] || fail "the interrupted run recorded no answer"
object_save "$P" "$LAST" "$WORK/answer"
[ -s "$WORK/answer" ] || fail "the interrupted run's answer is not in the ledger"
echo '{"title":"an answer edited by hand"}' > "$WORK/edited.json"; object_set "$P" "$LAST" "$WORK/edited.json"
before=$(sqlite3 "$P/.avps/ledger.db" "SELECT count(*) FROM artifacts")
expect_exit 3 "$AVPS" run "$P"
expect_out "1 file(s) no longer match the ledger (first: $(object "$LAST")"
stop=$(grep -o "STOP-[0-9]*" <<<"$OUT" | head -n 1)
[ "$(sqlite3 "$P/.avps/ledger.db" "SELECT count(*) FROM artifacts")" = "$before" ] || fail "an artifact was written from a tampered answer"
expect_exit 1 "$AVPS" gate "$P"; expect_out "$(object "$LAST")"
expect_exit 3 "$AVPS" run "$P"   # the stop stands while the file is as it is
expect_out "$stop: 1 file(s) no longer match the ledger"
[ "$(sqlite3 "$P/.avps/ledger.db" "SELECT count(*) FROM events WHERE kind='run.hard_stop'")" = 1 ] || fail "the standing stop was recorded again"
expect_exit 2 "$AVPS" override "$P" --stop "$stop" --reason "ship it" --allow-attempts 1
expect_out "is an integrity stop"
object_set "$P" "$LAST" "$WORK/answer"
expect_exit 0 "$AVPS" run "$P" --until narrative
expect_out "$stop resolved: the project's files match the ledger again"
expect_exit 0 "$AVPS" gate "$P"
# A replay says which runs met the stop instead of re-executing them.
expect_exit 0 "$AVPS" replay "$P" --run 3
expect_out "NOT REPLAYED RUN_0003 (STOP): it met the integrity stop $stop"
# --require: this project has the narrative and its locks, and no scene past them.
expect_exit 0 "$AVPS" gate "$P" --require narrative
expect_exit 1 "$AVPS" gate "$P" --require validation
expect_out "S01: not started, not yet at validation (--require validation)  [require.phase]"
expect_exit 1 "$AVPS" gate "$P" --require final
expect_out "[require.phase]"

# --- For CI: --expect-head catches rewritten history; --junit is JUnit XML a real parser reads -----
expect_exit 0 "$AVPS" --json gate "$DEMO"
PINNED=$(python3 -c 'import json,sys; h=json.loads(sys.argv[1])["head"]; print(str(h["seq"]) + ":" + h["hash"])' "$OUT")
expect_exit 0 "$AVPS" gate "$DEMO" --expect-head "$PINNED"
expect_out "head $PINNED"
expect_exit 0 "$AVPS" gate "$DEMO" --expect-head "${PINNED#*:}"   # the hash alone
# An earlier head is still part of the chain: appending is not rewriting.
EARLIER=$(q "SELECT seq || ':' || hash FROM events WHERE seq = 100")
expect_exit 0 "$AVPS" gate "$DEMO" --expect-head "$EARLIER"
# The history rewritten consistently (an event edited, every later hash recomputed, HEAD and the
# CSV face rewritten to match): every integrity rule holds, and only the pinned head catches it.
copy rewritten
python3 - "$P" <<'PY'
import hashlib, json, sqlite3, sys, csv, io
dir = sys.argv[1]
db = sqlite3.connect(f"{dir}/.avps/ledger.db")
for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
    db.execute(f"DROP TRIGGER {name}")
rows = db.execute("SELECT seq, run_id, ts, kind, body FROM events ORDER BY seq").fetchall()
prev = "0" * 64
for seq, run_id, ts, kind, body in rows:
    if seq == 50:
        ts = ts[:-4] + "999Z"   # a timestamp moved: the body is untouched, the chain is not
    canonical = json.dumps({"seq": seq, "run_id": run_id, "ts": ts, "kind": kind, "body": json.loads(body)},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    h = hashlib.sha256((prev + canonical).encode()).hexdigest()
    db.execute("UPDATE events SET ts=?, prev_hash=?, hash=? WHERE seq=?", (ts, prev, h, seq))
    prev = h
db.commit()
open(f"{dir}/.avps/HEAD", "w").write(f"avps-head 1\n{rows[-1][0]} {prev}\n")
PY
expect_exit 1 "$AVPS" gate "$P" --expect-head "$PINNED"
expect_out "the pinned head $PINNED is not an event of this ledger's chain"
# JUnit XML: a failing case for each seeded violation, a passing case for each rule that held.
copy junit
rm "$P/$B"
printf 'X' | dd of="$P/$A" bs=1 seek=40 conv=notrunc status=none
echo '{"edited":true}' > "$WORK/edited.json"; object_set "$P" "$REQ" "$WORK/edited.json"
expect_exit 1 "$AVPS" gate "$P" --junit "$WORK/gate.xml" --expect-head "$PINNED"
# Debian's python3 (/usr/bin), where python3-junitparser is installed, whatever python3 is first on PATH.
/usr/bin/python3 - "$WORK/gate.xml" "$A" "$B" "$(object "$REQ")" <<'PY'
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
failed, passed = {}, set()
for suite in xml:
    for case in suite:
        failures = [r for r in case.result if isinstance(r, Failure)]
        if failures:
            failed[(case.classname, case.name)] = failures[0].message
        else:
            passed.add(case.classname)
want = {("avps.gate.media.hash", sys.argv[2]), ("avps.gate.media.missing", sys.argv[3]),
        ("avps.gate.object.hash", sys.argv[4])}
assert want <= set(failed), (want - set(failed), failed)
assert "avps.gate.ledger.chain" in passed and "avps.gate.ledger.expected_head" in passed, passed
assert all(failed.values()), failed
total = sum(suite.tests for suite in xml)
assert total == len(failed) + len(passed), (total, len(failed), len(passed))
PY

# --- The full gate: verdicts recomputed, the money within its caps, --require ---------------------
expect_exit 0 "$AVPS" gate "$DEMO" --require final
expect_exit 0 "$AVPS" gate "$DEMO" --require shots_final
expect_exit 2 "$AVPS" gate "$DEMO" --require finals
expect_out "its phases: narrative, locks,"
expect_out "shots_final (or final)"
# A rule of a skill changed after the run (the project's own copy of plausibility-auditor): every
# artifact the old rule passed and the new one fails is named, with the finding.
edit_json() {  # edit_json FILE PYTHON-STATEMENT-ON-d
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); exec(sys.argv[2]); json.dump(d, open(sys.argv[1], "w"), indent=2)
PY
}
copy rule_changed
mkdir -p "$P/skills" && cp -r "$SRC/skills/plausibility-auditor" "$P/skills/"
edit_json "$P/skills/plausibility-auditor/skill.json" 'd["gate"]["rules"][0]["value"] = 30'
expect_exit 1 "$AVPS" gate "$P"
plaus=$(cd "$P" && ls validation/PLAUS_S0*_v001.md | head -n 1)
expect_out "$plaus: "
expect_out "but its recorded content gives FAIL (plausibility-auditor's gate as it is now"
expect_out "< 30\"  [gate.verdict]"
# A threshold changed in avps.json after the run is not a rule changed: the verdicts stand on the
# thresholds their scores recorded.
copy threshold_changed
edit_json "$P/avps.json" 'd.setdefault("thresholds", {})["plaus_total"] = 10'
expect_exit 0 "$AVPS" gate "$P"
# Caps lowered below what was spent: each cap in force is named with the spend over it; a raised
# cap (an override) would be the one in force.
copy caps_lowered
edit_json "$P/avps.json" 'd["budget"]["scene_cap_usd"] = 1; d["budget"]["project_cap_usd"] = 5'
expect_exit 1 "$AVPS" gate "$P"
expect_out "project: "
expect_out "is over the project cap of \$5.000000 in force  [budget.cap]"
expect_out "S01: "
expect_out "is over the scene cap of \$1.000000 in force  [budget.cap]"

# --- Beside a running `avps run`: 50 gates, each reading one snapshot, report no false violation --
LIVE="$WORK/live"
cp -r "$SRC/examples/demo_short_film" "$LIVE"
png_renders "$LIVE"  # snapshots beside a writer, not clips (the demo above keeps MP4)
python3 - "$LIVE/avps.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["sim"]["latency_ms"] = 40; json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
"$AVPS" init "$LIVE" > /dev/null
"$AVPS" run "$LIVE" --jobs 2 > /dev/null 2>&1 &
run_pid=$!
# Each gate runs with the writer paused wherever it is (SIGSTOP: its lock held, a write perhaps
# half done), then lets it go on for a moment: how many gates run beside it does not depend on how
# fast a gate is (a sanitizer build, a loaded machine). A writer paused in one of the moments that
# keep readers out for an instant (its open of the ledger, the checkpoint of its close) makes the
# gate wait for it (SQLite's busy timeout), so a gate not done after 2 s lets the writer go on
# while it waits; it must then pass as the others do.
# The gates start once the writer holds its lock: before that each round gives it only 0.05 s, and
# a slow start (a sanitizer build's) left the first gates with no writer to run beside.
for _ in $(seq 400); do
  # (Read from /proc/locks, as `avps` itself tells a writer: taking the lock to test it could make
  # the writer's own attempt fail.)
  inode=$(stat -c %i "$LIVE/.avps/lock" 2>/dev/null || true)
  [ -n "$inode" ] && grep -Eq "FLOCK +ADVISORY +WRITE +[0-9]+ [0-9a-f]+:[0-9a-f]+:$inode " /proc/locks && break
  sleep 0.05
done
gates=0 beside=0
while [ "$gates" -lt 50 ]; do
  sleep 0.05
  kill -STOP "$run_pid" 2>/dev/null || true
  "$AVPS" --json gate "$LIVE" > "$WORK/live-gate.out" 2>&1 &
  gate_pid=$!
  for _ in $(seq 40); do kill -0 "$gate_pid" 2>/dev/null || break; sleep 0.05; done
  kill -CONT "$run_pid" 2>/dev/null || true
  set +e
  wait "$gate_pid"
  rc=$?
  set -e
  OUT=$(cat "$WORK/live-gate.out")
  [ "$rc" = 0 ] || fail "gate $gates beside the run: exit $rc
$OUT"
  gates=$((gates + 1))
  if grep -Eq '"writer_active": ?true' <<<"$OUT"; then beside=$((beside + 1)); fi
done
wait "$run_pid" || fail "the run beside the gates failed"
[ "$beside" -ge 45 ] || fail "only $beside of 50 gates ran beside the writer"
expect_exit 0 "$AVPS" gate "$LIVE"
echo "gate beside a run: $gates gates, $beside while it wrote, no false violation"

# A read-only copy of a finished project (an auditor's mount): every reading command works. As
# root, permissions do not bind, so the copy is read by the unprivileged user `nobody`.
RO="$WORK/readonly"
cp -r "$DEMO" "$RO"
# (The readers above left SQLite's empty -wal and -shm beside the ledger, as any reader of a WAL
# database in a writable folder does; an auditor's copy is taken with no process attached.)
rm -f "$RO/.avps/ledger.db-wal" "$RO/.avps/ledger.db-shm"
chmod -R a+rX,a-w "$RO"; chmod a+rx "$WORK"
as_reader=()
if [ "$(id -u)" = 0 ]; then
  command -v runuser > /dev/null || fail "runuser (util-linux) is needed to read as another user"
  as_reader=(runuser -u nobody --)
fi
# The binary and the shipped data where that user can read them (the checkout may not be).
mkdir -p "$WORK/home"; cp -r "$SRC/skills" "$SRC/schemas" "$SRC/policies" "$WORK/home/"
cp "$AVPS" "$WORK/avps-reader"; chmod -R a+rX "$WORK/home" "$WORK/avps-reader"
for cmd in gate status log cost; do
  expect_exit 0 "${as_reader[@]}" env AVPS_HOME="$WORK/home" "$WORK/avps-reader" "$cmd" "$RO"
done
expect_exit 0 "${as_reader[@]}" env AVPS_HOME="$WORK/home" "$WORK/avps-reader" artifact show "$RO" BEATS
expect_out "Beat"
[ ! -e "$RO/.avps/ledger.db-wal" ] || fail "a reader left a WAL file in a read-only folder"
chmod -R u+w "$RO"

# Not a project: exit 4 with a hint.
mkdir -p "$WORK/empty"
expect_exit 4 "$AVPS" gate "$WORK/empty"
expect_out "not an avps project"
echo "ok"
