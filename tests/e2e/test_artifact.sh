#!/usr/bin/env bash
# `avps artifact show | import | edit`: a person's edit becomes the next version, marked
# human-authored; a bad face is refused with the line and field named, and nothing changes.
source "$(dirname "$0")/lib.sh"
P="$WORK/film"
"$AVPS" init "$P" --title "Artifact test" >/dev/null
FACE="$SRC/tests/fixtures/faces/CHAR_ALEX_LOCK_v001.txt"

# show: the face (hash-checked) or the canonical JSON.
expect_exit 0 "$AVPS" artifact show "$P" STYLE_PROJECT_LOCK
expect_out "[Visual Style]"
expect_exit 0 "$AVPS" --json artifact show "$P" WORLD_STATE_v001.json
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["format_version"]==1 and d["characters"]=={}' "$OUT"
expect_exit 4 "$AVPS" artifact show "$P" CHAR_NOBODY_LOCK
expect_out "no recorded artifact named CHAR_NOBODY_LOCK"

# A first lock written by hand, then a hand-edited second version.
expect_exit 0 "$AVPS" artifact import "$P" "$FACE" --reason "cast decision: Alex is in his thirties"
expect_out "Recorded continuity/CHAR_ALEX_LOCK_v001.txt (human-authored)"
sed 's/grey at the temples/fully grey/' "$FACE" > "$WORK/CHAR_ALEX_LOCK_v001.txt"
expect_exit 0 "$AVPS" --json artifact import "$P" "$WORK/CHAR_ALEX_LOCK_v001.txt" --reason "actor is older than planned"
python3 - "$OUT" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["recorded"] == "continuity/CHAR_ALEX_LOCK_v002.txt", d
assert d["author"] == "human" and d["follows"] == "CHAR_ALEX_LOCK_v001.txt", d
assert d["gate"]["verdict"] == "PASS", d
PY
grep -q "fully grey" "$P/continuity/CHAR_ALEX_LOCK_v002.txt" || fail "v002 lacks the edit"
# The same face again is not a new version (and an interrupted import can simply be run again).
expect_exit 0 "$AVPS" artifact import "$P" "$WORK/CHAR_ALEX_LOCK_v001.txt" --reason "actor is older than planned"
expect_out "No change: continuity/CHAR_ALEX_LOCK_v002.txt already holds this face; nothing recorded."
[ ! -e "$P/continuity/CHAR_ALEX_LOCK_v003.txt" ] || fail "an unchanged face was recorded as v003"
expect_exit 0 "$AVPS" --json log "$P"
python3 - "$OUT" <<'PY'
import json, sys
rows = json.loads(sys.argv[1])
row = [r for r in rows if r["artifact_output"] == "CHAR_ALEX_LOCK_v002.txt"][0]
assert row["skill_name"] == "artifact-import" and "human-authored: actor is older" in row["notes"], row
PY
expect_exit 0 "$AVPS" gate "$P"

snapshot() { (cd "$P" && find . -type f ! -name '*-wal' ! -name '*-shm' -print0 | sort -z | xargs -0 sha256sum); }
before=$(snapshot)

# A malformed face: the error names the line and field, and nothing is recorded.
sed 's/^accessories:$/accessories: a badge/' "$FACE" > "$WORK/CHAR_ALEX_LOCK_v009.txt"
expect_exit 1 "$AVPS" artifact import "$P" "$WORK/CHAR_ALEX_LOCK_v009.txt" --reason "typo"
expect_out "line 16 (wardrobe_baseline): expected a list"
# A face breaking the schema (an empty forbidden-drift list): the pointer is named.
awk '/^\[Forbidden Drift List\]/{print; print "[]"; exit} {print}' "$FACE" > "$WORK/CHAR_ALEX_LOCK_v003.txt"
expect_exit 1 "$AVPS" artifact import "$P" "$WORK/CHAR_ALEX_LOCK_v003.txt" --reason "no drift rules"
expect_out "/forbidden_drift"
# A hedge word fails the character-lock gate.
sed 's/^temperament: Patient until cornered$/temperament: Sometimes patient/' "$FACE" > "$WORK/CHAR_ALEX_LOCK_v004.txt"
expect_exit 1 "$AVPS" artifact import "$P" "$WORK/CHAR_ALEX_LOCK_v004.txt" --reason "hedging"
expect_out "FAIL gate of character-lock"
# Not an artifact name, and a missing reason.
cp "$FACE" "$WORK/alex.txt"
expect_exit 2 "$AVPS" artifact import "$P" "$WORK/alex.txt" --reason "x"
expect_exit 2 "$AVPS" artifact import "$P" "$FACE"

after=$(snapshot)
[ "$before" = "$after" ] || fail "a refused import changed the project:
$(diff <(echo "$before") <(echo "$after"))"

# edit: $EDITOR changes the latest face; unchanged means nothing recorded.
expect_exit 0 env EDITOR=true "$AVPS" artifact edit "$P" CHAR_ALEX_LOCK --reason "looked, no change"
expect_out "nothing recorded"
cat > "$WORK/editor.sh" <<'SH'
#!/bin/sh
sed -i 's/^temperament: Patient until cornered$/temperament: Patient until betrayed/' "$1"
SH
chmod +x "$WORK/editor.sh"
expect_exit 0 env EDITOR="$WORK/editor.sh" "$AVPS" artifact edit "$P" CHAR_ALEX_LOCK --reason "rewrite after S04"
expect_out "continuity/CHAR_ALEX_LOCK_v003.txt"
grep -q "until betrayed" "$P/continuity/CHAR_ALEX_LOCK_v003.txt" || fail "edit not recorded"
expect_exit 0 "$AVPS" gate "$P"

# A face that is not UTF-8 is refused with the file, the byte and where it is; nothing recorded.
events=$(sqlite3 "$P/.avps/ledger.db" "SELECT count(*) FROM events")
mkdir -p "$WORK/latin1"
{ head -c 40 "$FACE"; printf '\xff\xfe'; tail -c +41 "$FACE"; } > "$WORK/latin1/CHAR_ALEX_LOCK_v001.txt"
expect_exit 4 "$AVPS" artifact import "$P" "$WORK/latin1/CHAR_ALEX_LOCK_v001.txt" --reason "pasted from a Windows file"
expect_out "CHAR_ALEX_LOCK_v001.txt is not UTF-8 text: byte 0xFF at offset 40 (line"
[ "$(sqlite3 "$P/.avps/ledger.db" "SELECT count(*) FROM events")" = "$events" ] || fail "a refused face was recorded"
# An edit that saves a bad byte: refused, and the person's copy is kept.
cat > "$WORK/bad_editor.sh" <<'SH'
#!/bin/sh
printf 'Age: \351\n' >> "$1"
SH
chmod +x "$WORK/bad_editor.sh"
expect_exit 4 env EDITOR="$WORK/bad_editor.sh" "$AVPS" artifact edit "$P" CHAR_ALEX_LOCK --reason "age"
expect_out "is not UTF-8 text: byte 0xE9"
expect_out "your edit is kept at"

# Edits that collide: while one person edits v003, another version is recorded. The edit is
# refused naming both; its copy (announced before the editor opened) is kept; nothing is recorded.
cat > "$WORK/slow_editor.sh" <<SH
#!/bin/sh
sed 's/until betrayed/until the storm/' "\$1" > "$WORK/other.txt"
mv "$WORK/other.txt" "$WORK/other/CHAR_ALEX_LOCK_v001.txt"
"$AVPS" artifact import "$P" "$WORK/other/CHAR_ALEX_LOCK_v001.txt" --reason "the other person's edit" > /dev/null
sed -i 's/until betrayed/until betrayed twice/' "\$1"
SH
chmod +x "$WORK/slow_editor.sh"; mkdir -p "$WORK/other"
events=$(sqlite3 "$P/.avps/ledger.db" "SELECT count(*) FROM events")
expect_exit 1 env EDITOR="$WORK/slow_editor.sh" "$AVPS" artifact edit "$P" CHAR_ALEX_LOCK --reason "hand detail"
expect_out "avps: editing a copy of CHAR_ALEX_LOCK_v003.txt at "
expect_out "CHAR_ALEX_LOCK_v004.txt was recorded while you edited CHAR_ALEX_LOCK_v003.txt"
expect_out "your edit is kept at"
kept=$(grep -o "kept at [^;]*CHAR_ALEX_LOCK_v003.txt" <<<"$OUT" | head -1 | sed 's/^kept at //')
grep -q "until betrayed twice" "$kept" || fail "the colliding edit's copy was not kept: $kept"
[ "$(sqlite3 "$P/.avps/ledger.db" "SELECT count(*) FROM events")" -gt "$events" ] || fail "the other import was not recorded"
[ ! -e "$P/continuity/CHAR_ALEX_LOCK_v005.txt" ] || fail "a colliding edit was recorded"
expect_exit 0 "$AVPS" gate "$P"
echo ok
