#!/usr/bin/env bash
# An edited lock reaches the screen, and nothing else moves (docs/cli.md `avps run`, "Edits"):
# after `avps artifact edit` of one character's appearance, `avps run` packs new GenPacks carrying
# the new lock verbatim and renders again (proxy, QC, final) exactly the shots that character is
# in; no step that does not read the appearance runs, no other artifact gets a new version, and
# the gate passes. QC never fails here, so the renders pass first time and the count is exact.
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
P="$WORK/film"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # which shots render again, not what a render holds
python3 - "$P/avps.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["sim"]["failure_rates"]["qc-grader"] = 0.0
config["sim"]["fix_rates"]["qc-grader"] = 0.0
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
"$AVPS" init "$P" > /dev/null
expect_exit 0 "$AVPS" run "$P" --jobs 4

who=MARA_QUILL
lock=$(ls "$P/continuity/CHAR_${who}_LOCK_v"*.txt | tail -n 1)
grep -q "^distinguishing_marks: " "$lock" || fail "no distinguishing_marks line in $lock"
cat > "$WORK/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/^\(distinguishing_marks: .*\)$/\1; a thin white scar across the left eyebrow/' "$1"
EOF
chmod +x "$WORK/editor.sh"
expect_exit 0 env EDITOR="$WORK/editor.sh" "$AVPS" artifact edit "$P" "CHAR_${who}_LOCK" --reason "new makeup design"
before=$(q "$P" "SELECT max(seq) FROM events")

# The shots that carry the lock: those whose latest SHOTLIST row has the character.
expected=$(python3 - "$P/production" "$who" <<'PY'
import csv, glob, os, re, sys
latest = {}
for path in glob.glob(os.path.join(sys.argv[1], "SHOTLIST_*_v*.csv")):
    scene, version = re.search(r"SHOTLIST_(S\d+)_v(\d+)", path).groups()
    if int(version) > latest.get(scene, (0, ""))[0]:
        latest[scene] = (int(version), path)
for scene in sorted(latest):
    for row in csv.DictReader(open(latest[scene][1])):
        if sys.argv[2] in [c.strip() for c in row["char_ids"].split(",")]:
            print(row["shot_id"])
PY
)
[ -n "$expected" ] || fail "no shot carries $who"
[ "$(wc -l <<<"$expected")" -lt "$(q "$P" "SELECT count(DISTINCT json_extract(body,'$.shot_id')) FROM events WHERE kind='media.recorded'")" ] \
  || fail "every shot carries $who: the test would not tell a re-render of all from one of some"

# Before the run, `avps status` says which shots are stale and why.
expect_exit 0 "$AVPS" status "$P"
stale=$(grep -o "STALE [A-Z0-9_]*" <<<"$OUT" | cut -d' ' -f2 | sort)
[ "$stale" = "$(sort <<<"$expected")" ] || fail "status should list the shots $who is in as stale, got: $stale"
new_lock=$(ls "$P/continuity/CHAR_${who}_LOCK_v"*.txt | tail -n 1)
[ "$(grep -c "renders were made from other inputs: $(basename "$new_lock") changed" <<<"$OUT")" = "$(wc -l <<<"$expected")" ] \
  || fail "each stale shot should name the edited lock:
$OUT"
expect_exit 0 "$AVPS" --json status "$P"
python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert len(d["stale_shots"]) == int(sys.argv[2]) and d["stale_shots"][0]["resolutions"] == ["proxy", "final"], d["stale_shots"]' "$OUT" "$(wc -l <<<"$expected")"

# A copy in which one of those shots never passes QC again: its scene is held, and status counts
# neither its old pass (stale) nor its failing attempts, while the scene's other shots pass anew.
F="$WORK/frozen"
cp -a "$P" "$F"
first=$(head -n 1 <<<"$expected")
python3 - "$F/avps.json" "qc-grader@$first" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["sim"]["failure_rates"][sys.argv[2]] = 1.0
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
expect_exit 3 "$AVPS" run "$F" --scene "${first%_SH*}"
expect_out "$first is frozen"
expect_exit 3 "$AVPS" --json status "$F"
python3 - "$OUT" "${first%_SH*}" "$first" <<'PY' || fail "status miscounts a frozen stale shot: $OUT"
import json, sys
status, scene, shot = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
row = next(r for r in status["scenes"] if r["scene_id"] == scene)
assert row["proxy"]["passed"] == row["proxy"]["shots"] - 1, row
assert any(s["shot_id"] == shot for s in status["stale_shots"]), status["stale_shots"]
PY

expect_exit 0 "$AVPS" run "$P" --jobs 4
# Rendered again: exactly those shots, once at proxy and once at final.
rendered=$(q "$P" "SELECT json_extract(body,'$.shot_id') || ' ' || json_extract(body,'$.resolution') FROM events WHERE kind='media.recorded' AND seq > $before ORDER BY 1")
want=$(while read -r shot; do echo "$shot final"; echo "$shot proxy"; done <<<"$expected" | sort)
[ "$rendered" = "$want" ] || fail "renders after the edit:
$rendered
expected:
$want"
# New versions: a GenPack per new render, storyboards, QC batches, and the cost loop before final
# renders of each scene that was rendered again (its COST_REPORT, the project's BUDGET_STATUS);
# nothing else.
scenes_again=$(sed 's/_SH.*//' <<<"$expected" | sort -u | paste -sd '|')
others=$(q "$P" "SELECT json_extract(body,'$.artifact.name') FROM events WHERE kind='artifact.recorded' AND seq > $before" \
  | grep -v -E "^(GENPACK|STORYBOARD|STORYBOARD_REPORT|QC_BATCH)_|^COST_REPORT_($scenes_again)_v|^BUDGET_STATUS_v" || true)
[ -z "$others" ] || fail "artifacts that do not carry the lock got new versions:
$others"
# Every new GenPack carries the edited lock verbatim, the new scar among its anchors' text.
packs=$(q "$P" "SELECT json_extract(body,'$.artifact.path') FROM events WHERE kind='artifact.recorded' AND seq > $before AND json_extract(body,'$.artifact.kind')='GENPACK'")
[ "$(wc -l <<<"$packs")" = "$(wc -l <<<"$rendered")" ] || fail "one GenPack per render expected"
while read -r pack; do
  grep -q "a thin white scar across the left eyebrow" "$P/$pack" || fail "$pack does not carry the edited lock"
  grep -qF "$(basename "$new_lock")" "$P/$pack" || fail "$pack does not name $(basename "$new_lock")"
done <<<"$packs"
"$AVPS" gate "$P" > /dev/null || fail "gate after the edit"
expect_exit 0 "$AVPS" status "$P"
grep -q "STALE" <<<"$OUT" && fail "nothing should be stale after the run: $OUT"
# Nothing is stale any more.
expect_exit 0 "$AVPS" run "$P"
expect_out "0 calls made"
echo "edit reaches the screen e2e: ok"
