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

# Not a project: exit 4 with a hint.
mkdir -p "$WORK/empty"
expect_exit 4 "$AVPS" gate "$WORK/empty"
expect_out "not an avps project"
echo "ok"
