#!/usr/bin/env bash
# Faces tell the truth (docs/formats/faces.md, docs/cli.md `avps artifact import`), on a real demo
# run: every QC_BATCH face shows the verdict the production acted on for each attempt, the grader's
# claim beside it and the attempt's violations, and re-imports (unchanged: nothing recorded; edited:
# verdicts recomputed and said); BEATS imports alone (judged with the recorded SCENES) or with its
# SCENES; an imported STATE_DIFF records the next WORLD_STATE, the world before its scene with the
# diff applied, which the next run reads. `avps gate` passes after each, and refusals change nothing.
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$P/.avps/ledger.db" "$1"; }
P="$WORK/film"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # the faces, not the clips
"$AVPS" init "$P" > /dev/null
expect_exit 0 "$AVPS" run "$P" --jobs 4
snapshot() { (cd "$P" && find . -type f ! -name '*-wal' ! -name '*-shm' -print0 | sort -z | xargs -0 sha256sum); }

# --- QC_BATCH: the face is what avps decided -----------------------------------------------------
# For every wave's batch: each row's verdict is the verdict of that attempt's qc-grader step (what
# the production acted on), model_verdict is the grader's claim, and the violations column holds
# exactly the JSON's violations of that attempt.
q "SELECT json_extract(body,'$.shot_attempt.wave') || '|' || json_extract(body,'$.shot_attempt.shot_id') || '|' ||
          json_extract(body,'$.shot_attempt.attempt') || '|' || json_extract(body,'$.verdict')
   FROM events WHERE kind='step.finished' AND json_extract(body,'$.shot_attempt') IS NOT NULL" > "$WORK/steps.txt"
q "SELECT json_extract(body,'$.details.wave') || '|' || json_extract(body,'$.artifact.path')
   FROM events WHERE kind='artifact.recorded' AND json_extract(body,'$.artifact.kind')='QC_BATCH'" > "$WORK/waves.txt"
for path in $(cut -d'|' -f2 "$WORK/waves.txt"); do
  "$AVPS" --json artifact show "$P" "$(basename "$path")" > "$WORK/$(basename "$path").json"
done
python3 - "$P" "$WORK" <<'PY'
import csv, json, os, sys
project, work = sys.argv[1], sys.argv[2]
acted = {}
for line in open(os.path.join(work, "steps.txt")):
    wave, shot, attempt, verdict = line.strip().split("|")
    acted[(wave, shot, int(attempt))] = verdict  # the last step of an attempt is the one that counts
rows_checked, not_pass, violations_seen = 0, 0, 0
for line in open(os.path.join(work, "waves.txt")):
    wave, path = line.strip().split("|")
    rows = list(csv.DictReader(open(os.path.join(project, path), newline="")))
    assert list(rows[0].keys())[-4:] == ["verdict", "model_verdict", "notes", "violations"], (path, rows[0].keys())
    content = json.load(open(os.path.join(work, os.path.basename(path) + ".json")))
    for row, row_json in zip(rows, content["rows"]):
        key = (wave, row["shot_id"], int(row["attempt_number"]))
        assert row["verdict"] == acted[key], (path, key, row["verdict"], acted[key])
        assert row["model_verdict"] == row_json["model_verdict"] and row_json["model_verdict"] in ("PASS", "FIX", "FAIL"), (path, row)
        mine = [v["rule"] + ": " + v["description"] for v in content["violations"]
                if (v["shot_id"], v["attempt_number"]) == (row["shot_id"], int(row["attempt_number"]))]
        shown = [] if not row["violations"] else row["violations"].replace("\\,", "\0").split(", ")
        assert [s.replace("\0", ",") for s in shown] == mine, (path, row["violations"], mine)
        rows_checked += 1
        not_pass += row["verdict"] != "PASS"
        violations_seen += len(mine)
assert rows_checked > 20 and not_pass > 0 and violations_seen > 0, (rows_checked, not_pass, violations_seen)
PY

# Unchanged, it re-imports as nothing new: through edit and through import of the file.
batch=$(grep -l "identity_drift\|lock_violation" "$P"/production/QC_BATCH_S0*_v*.csv | head -1)
stem=$(basename "$batch" | sed 's/_v[0-9]*\.csv$//')
latest=$(ls "$P"/production/"$stem"_v*.csv | tail -1)
expect_exit 0 env EDITOR=true "$AVPS" artifact edit "$P" "$stem" --reason "looked"
expect_out "nothing recorded"
cp "$latest" "$WORK/"
expect_exit 0 "$AVPS" artifact import "$P" "$WORK/$(basename "$latest")" --reason "same grades"
expect_out "No change: production/$(basename "$latest") already holds this face"

# A wave with a failed attempt and its violation, re-imported with a note added: recorded as the
# shots' grade with its FAIL gate, the violation kept.
cp "$batch" "$WORK/"
python3 - "$WORK/$(basename "$batch")" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows[1][12] = rows[1][12] + " Checked by the supervisor."
csv.writer(open(sys.argv[1], "w", newline=""), lineterminator="\n").writerows(rows)
PY
expect_exit 0 "$AVPS" --json artifact import "$P" "$WORK/$(basename "$batch")" --reason "supervisor's note"
python3 - "$OUT" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["author"] == "human" and d["gate"]["verdict"] == "FAIL" and d["judged_by"] == "qc-grader", d
assert any("production's decisions" in n for n in d["notes"]), d
PY
recorded=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["recorded"])' "$OUT")
grep -q "Checked by the supervisor" "$P/$recorded" || fail "the note did not reach $recorded"
grep -q "identity_drift\|lock_violation" "$P/$recorded" || fail "the violations were dropped from $recorded"

# A person zeroes a category of a passing row and leaves its verdict PASS: avps recomputes it,
# says so, and keeps the grader's claim beside it.
passing=$(grep -l ",PASS,PASS," "$P"/production/QC_BATCH_S0*_v*.csv | tail -1)
stem=$(basename "$passing" | sed 's/_v[0-9]*\.csv$//')
mkdir -p "$WORK/regrade"
python3 - "$passing" "$WORK/regrade/$(basename "$passing")" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
header = rows[0]
for row in rows[1:]:
    if row[header.index("verdict")] == "PASS":
        row[header.index("face_consistency")] = "0"
        open(sys.argv[2] + ".shot", "w").write(row[0] + " attempt " + row[1])
        break
else:
    sys.exit("no passing row to regrade")
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
PY
shot=$(cat "$WORK/regrade/$(basename "$passing").shot")
expect_exit 0 "$AVPS" artifact import "$P" "$WORK/regrade/$(basename "$passing")" --reason "the face drifts at 0:03"
expect_out "recomputed: QC verdict of $shot: PASS -> FAIL"
regraded=$(ls "$P"/production/"$stem"_v*.csv | tail -1)
python3 - "$regraded" "$shot" <<'PY'
import csv, sys
shot, attempt = sys.argv[2].split(" attempt ")
row = [r for r in csv.DictReader(open(sys.argv[1], newline="")) if (r["shot_id"], r["attempt_number"]) == (shot, attempt)][0]
assert row["verdict"] == "FAIL" and row["model_verdict"] == "PASS" and row["face_consistency"] == "0", row
PY
[ "$(q "SELECT json_extract(body,'$.artifact.author') FROM events WHERE kind='artifact.recorded' ORDER BY seq DESC LIMIT 1")" = human ] \
  || fail "the regraded batch is not marked human-authored"
expect_exit 0 "$AVPS" gate "$P"

# Refused, and nothing changes: a face of the earlier layout, a row of a shot no SHOTLIST has.
before=$(snapshot)
python3 - "$regraded" "$WORK/old/$(basename "$regraded")" <<'PY'
import csv, os, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
old = [r[:11] + [r[12]] for r in rows]  # layout 1: no model_verdict, no violations
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(old)
PY
expect_exit 1 "$AVPS" artifact import "$P" "$WORK/old/$(basename "$regraded")" --reason "old file"
expect_out "has an earlier layout: layout 1"
sed '2s/^S0\([0-9]\)_SH0[0-9]/S0\1_SH97/' "$regraded" > "$WORK/$(basename "$regraded")"
expect_exit 1 "$AVPS" artifact import "$P" "$WORK/$(basename "$regraded")" --reason "a shot that does not exist"
expect_out "_SH97 is not a shot of the latest SHOTLIST"
[ "$before" = "$(snapshot)" ] || fail "a refused QC import changed the project"

# --- STATE_DIFF: the next WORLD_STATE follows, and the next run reads it ------------------------
diff_file=$(ls "$P"/continuity/STATE_DIFF_S03_v*.json | tail -1)
mkdir -p "$WORK/world"
python3 - "$diff_file" "$WORK/world/$(basename "$diff_file")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
who = sorted(k for k, v in d["character_updates"].items() if v is not None)[0]
d["character_updates"][who].setdefault("knowledge", {"add": [], "remove": []})
d["character_updates"][who]["knowledge"].setdefault("add", []).append("The lens was cracked before the storm")
json.dump(d, open(sys.argv[2], "w"), indent=2)
open(sys.argv[2] + ".who", "w").write(who)
PY
who=$(cat "$WORK/world/$(basename "$diff_file").who")
worlds_before=$(ls "$P"/continuity/WORLD_STATE_v*.json | wc -l)
expect_exit 0 "$AVPS" artifact import "$P" "$WORK/world/$(basename "$diff_file")" --reason "the crack is a plot point"
expect_out "(the world before S03) with STATE_DIFF_S03_v"
world=$(ls "$P"/continuity/WORLD_STATE_v*.json | tail -1)
[ "$(ls "$P"/continuity/WORLD_STATE_v*.json | wc -l)" = $((worlds_before + 1)) ] || fail "no WORLD_STATE followed the STATE_DIFF"
# The new world is the world before S03 (named in the record) with the imported diff applied.
python3 - "$P" "$world" "$who" "$(q "SELECT json_extract(body,'$.details') FROM events WHERE kind='artifact.recorded' ORDER BY seq DESC LIMIT 1")" <<'PY'
import json, os, sys
project, world, who, details = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
assert details["scene"] == "S03" and details["step"].startswith("artifact-import/STATE_DIFF_S03_v"), details
before_name = details["inputs"][0]["names"][0]
before = json.load(open(os.path.join(project, "continuity", before_name)))
after = json.load(open(world))
assert "The lens was cracked before the storm" in after["characters"][who]["knowledge"], after["characters"][who]
assert "The lens was cracked before the storm" not in before["characters"].get(who, {}).get("knowledge", [])
assert after["timeline"]["current_scene"] == "S03", after["timeline"]
PY
[ "$(q "SELECT json_extract(body,'$.artifact.author') FROM events WHERE kind='artifact.recorded' ORDER BY seq DESC LIMIT 1 OFFSET 1")" = human ] \
  || fail "the STATE_DIFF is not marked human-authored"
expect_exit 0 "$AVPS" gate "$P"
# Again: nothing new. A WORLD_STATE by hand, and a diff that does not apply, are refused.
before=$(snapshot)
expect_exit 0 "$AVPS" artifact import "$P" "$WORK/world/$(basename "$diff_file")" --reason "the crack is a plot point"
expect_out "No change"
cp "$world" "$WORK/world/"
expect_exit 2 "$AVPS" artifact import "$P" "$WORK/world/$(basename "$world")" --reason "by hand"
expect_out "import what it is made from instead (the scene's STATE_DIFF: its WORLD_STATE follows)"
python3 - "$WORK/world/$(basename "$diff_file")" "$who" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["character_updates"][sys.argv[2]]["knowledge"]["remove"] = ["Something never learned"]
json.dump(d, open(sys.argv[1], "w"), indent=2)
PY
expect_exit 1 "$AVPS" artifact import "$P" "$WORK/world/$(basename "$diff_file")" --reason "forget"
expect_out "does not apply to WORLD_STATE_v003.json (the world before S03)"
[ "$before" = "$(snapshot)" ] || fail "a refused or unchanged STATE_DIFF import changed the project"

# A judge failing the person's diff does not get it replaced by an automatic revision: the run
# stops there for a person, naming it (a copy, its continuity check forced to fail).
J="$WORK/judged"
cp -r "$P" "$J"
python3 - "$J/avps.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["sim"]["failure_rates"]["continuity-supervisor@S03"] = 1.0
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
jlast=$(sqlite3 "$J/.avps/ledger.db" "SELECT max(seq) FROM events")
expect_exit 3 "$AVPS" run "$J"
expect_out "a person's version"
[ "$(sqlite3 "$J/.avps/ledger.db" "SELECT count(*) FROM artifacts a JOIN events e ON e.seq = a.event_seq WHERE a.kind='STATE_DIFF' AND a.target='S03' AND e.seq > $jlast")" = 0 ] \
  || fail "an automatic revision replaced the person's STATE_DIFF of S03"

# The next run keeps the person's diff for S03 and goes on from the world it made.
last=$(q "SELECT max(seq) FROM events")
expect_exit 0 "$AVPS" run "$P" --jobs 4
[ -z "$(q "SELECT 1 FROM events WHERE seq > $last AND kind='artifact.recorded' AND json_extract(body,'$.artifact.kind')='STATE_DIFF' AND json_extract(body,'$.artifact.target')='S03'")" ] \
  || fail "the run replaced the person's STATE_DIFF of S03"
python3 - "$P" "$(q "SELECT json_extract(body,'$.details.inputs') FROM events WHERE seq > $last AND kind='artifact.recorded' AND json_extract(body,'$.artifact.kind')='WORLD_STATE' AND json_extract(body,'$.details.scene')='S04' LIMIT 1")" "$(basename "$world")" <<'PY'
import json, sys
inputs = json.loads(sys.argv[2])
assert [i["names"][0] for i in inputs if i["kind"] == "WORLD_STATE"] == [sys.argv[3]], (inputs, sys.argv[3])
PY
expect_exit 0 "$AVPS" gate "$P"
# --- BEATS: alone, judged with the recorded SCENES; or together with its SCENES -------------------
scenes=$(basename "$(ls "$P"/narrative/SCENES_v*.csv | tail -1)")
cat > "$WORK/beats_editor.sh" <<'SH'
#!/bin/sh
sed -i '0,/^- /s/^- \(.*\)$/- \1 The fog thickens./' "$1"
SH
chmod +x "$WORK/beats_editor.sh"
expect_exit 0 env EDITOR="$WORK/beats_editor.sh" "$AVPS" artifact edit "$P" BEATS --reason "more weather"
expect_out "judged by story-architect's gate together with $scenes as recorded"
beats=$(ls "$P"/narrative/BEATS_v*.md | tail -1)
grep -q "The fog thickens." "$beats" || fail "the BEATS edit was not recorded"
[ "$(q "SELECT json_extract(body,'$.details.judged_with[0]') FROM events WHERE kind='artifact.recorded' ORDER BY seq DESC LIMIT 1")" = "$scenes" ] \
  || fail "the BEATS record does not name the SCENES it was judged with"
expect_exit 0 "$AVPS" gate "$P"

# Together: one step judged by story-architect; a failing SCENES (a scene id twice) refuses both.
mkdir -p "$WORK/story"
cp "$beats" "$P/narrative/$scenes" "$WORK/story/"
sed -i 's/The fog thickens\./The fog thickens; the horn sounds./' "$WORK/story/$(basename "$beats")"
python3 - "$WORK/story/$scenes" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows[2][0] = rows[1][0]  # two scenes with one id
csv.writer(open(sys.argv[1], "w", newline=""), lineterminator="\n").writerows(rows)
PY
before=$(snapshot)
expect_exit 1 "$AVPS" artifact import "$P" "$WORK/story/$(basename "$beats")" "$WORK/story/$scenes" --reason "fog"
expect_out "gate of story-architect refuses it"
[ "$before" = "$(snapshot)" ] || fail "a refused BEATS and SCENES import changed the project"
cp "$P/narrative/$scenes" "$WORK/story/"
python3 - "$WORK/story/$scenes" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows[1][1] += " The fog horn sounds."
csv.writer(open(sys.argv[1], "w", newline=""), lineterminator="\n").writerows(rows)
PY
expect_exit 0 "$AVPS" --json artifact import "$P" "$WORK/story/$(basename "$beats")" "$WORK/story/$scenes" --reason "fog"
python3 - "$OUT" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
paths = [a["path"] for a in d["artifacts"]]
assert len(paths) == 2 and paths[0].startswith("narrative/BEATS_v") and paths[1].startswith("narrative/SCENES_v"), d
assert all(a["author"] == "human" for a in d["artifacts"]) and d["judged_with"] == [], d
PY
[ "$(q "SELECT count(DISTINCT json_extract(body,'$.details.step')) FROM events WHERE kind='artifact.recorded' AND seq > (SELECT max(seq) - 6 FROM events) AND json_extract(body,'$.artifact.kind') IN ('BEATS','SCENES')")" = 1 ] \
  || fail "BEATS and SCENES imported together are not one step"
expect_exit 2 "$AVPS" artifact import "$P" "$WORK/story/$(basename "$beats")" "$P/continuity/STYLE_PROJECT_LOCK_v001.txt" --reason "mixed"
expect_out "must be written by one skill in one step"
expect_exit 0 "$AVPS" gate "$P"

echo ok
