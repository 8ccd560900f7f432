#!/usr/bin/env bash
# `avps status`: the per-scene view (phase reached, gate verdicts, shots passed, spend against the
# scene cap) after a whole production, after a run stopped early and at a hard stop; its --json;
# and the per-step list of --steps.
source "$(dirname "$0")/lib.sh"

# PNG renders: status counts renders and QC, it never opens a clip.
fresh() { P="$WORK/$1"; rm -rf "$P"; cp -r "$SRC/examples/demo_short_film" "$P"; png_renders "$P"; "$AVPS" init "$P" > /dev/null; }

# The scene table of a status text: one "scene phase validation continuity plan proxy final spend
# cap" line per scene row, whitespace-separated (no cell holds a space).
scene_rows() { grep -E '^  S[0-9]{2,} ' <<<"$1" || true; }

# --- A whole production: every scene reaches shots_final with every shot passed. -------------
fresh film
expect_exit 0 "$AVPS" run "$P" --jobs 4
expect_exit 0 "$AVPS" --no-color status "$P"
TEXT="$OUT"
expect_out "story-architect"
expect_out "audience-simulator"
# A skill run per entity is one line: its worst verdict and how many passed.
grep -qE '^  voice-lock +PASS  3/3 passed$' <<<"$TEXT" || fail "no summarised voice-lock line:
$TEXT"
grep -q "voice-lock MARA_QUILL" <<<"$TEXT" && fail "the default view lists per-entity steps:
$TEXT"
grep -q "plausibility-auditor S03" <<<"$TEXT" && fail "the default view lists per-scene steps:
$TEXT"
expect_out "USD project cap"
[ "$(scene_rows "$TEXT" | awk '{print $1}' | tr '\n' ' ')" = "S01 S02 S03 S04 S05 S06 " ] \
  || fail "expected the scene rows S01..S06 in story order, got:
$TEXT"

# The expected shot count of each scene: the rows of its latest SHOTLIST face.
shots_of() {
  python3 - "$P/production" "$1" <<'PY'
import csv, glob, sys
folder, scene = sys.argv[1], sys.argv[2]
latest = sorted(glob.glob(f"{folder}/SHOTLIST_{scene}_v*.csv"))[-1]
print(len(list(csv.DictReader(open(latest, newline="")))))
PY
}
while read -r scene phase validation continuity plan proxy final spend cap; do
  n=$(shots_of "$scene")
  [ "$n" -gt 0 ] || fail "$scene has no planned shot"
  [ "$phase $validation $continuity $plan" = "shots_final PASS PASS PASS" ] \
    || fail "$scene: expected shots_final and PASS gates, got: $phase $validation $continuity $plan"
  [ "$proxy" = "$n/$n" ] || fail "$scene: proxy $proxy, expected $n/$n (its latest SHOTLIST)"
  [ "$final" = "$n/$n" ] || fail "$scene: final $final, expected $n/$n (its latest SHOTLIST)"
  [ "$cap" = "\$60.000000" ] || fail "$scene: scene cap $cap, expected the configured \$60.000000"
  [ "$spend" != "\$0.000000" ] || fail "$scene: no spend"
done < <(scene_rows "$TEXT")

# --json says the same, keeps the keys it had, and the scenes' spend is part of the project's.
expect_exit 0 "$AVPS" --json status "$P"
python3 - "$OUT" "$TEXT" "$P/production" <<'PY'
import csv, glob, json, re, sys
d, text, folder = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
for key in ("project", "steps", "hard_stops", "overrides", "spend", "scenes", "project_steps"):
    assert key in d, f"--json lacks {key}"
scenes = d["scenes"]
assert [s["scene_id"] for s in scenes] == ["S01", "S02", "S03", "S04", "S05", "S06"], scenes
rows = {m.group(1): m.group(0).split() for m in re.finditer(r"(?m)^  (S\d{2,}) .*$", text)}
for s in scenes:
    latest = sorted(glob.glob(f"{folder}/SHOTLIST_{s['scene_id']}_v*.csv"))[-1]
    n = len(list(csv.DictReader(open(latest, newline=""))))
    assert s["phase"] == "shots_final", s
    assert s["validation"] == s["continuity"] == s["plan"] == "PASS", s
    assert s["proxy"] == {"passed": n, "shots": n} and s["final"] == {"passed": n, "shots": n}, (s, n)
    assert s["cap_micro_usd"] == 60_000_000 and s["spend_micro_usd"] > 0, s
    row = rows[s["scene_id"]]
    assert row[1] == s["phase"] and row[6] == f"{n}/{n}", (row, s)
    assert row[7] == "$%d.%06d" % divmod(s["spend_micro_usd"], 1_000_000), (row, s)
assert sum(s["spend_micro_usd"] for s in scenes) <= d["spend"]["committed_micro_usd"], d["spend"]
steps = {s["skill"]: s for s in d["project_steps"]}
assert list(steps)[:2] == ["story-architect", "script-breakdown"], list(steps)
assert steps["voice-lock"]["instances"] == steps["voice-lock"]["passed"] == 3, steps["voice-lock"]
assert steps["voice-lock"]["verdict"] == "PASS" and steps["voice-lock"]["not_passed"] == [], steps["voice-lock"]
assert not any(s in steps for s in ("plausibility-auditor", "shot-planner", "qc-grader")), list(steps)
assert any(s["step"] == "plausibility-auditor S03" for s in d["steps"]), "steps lost a per-scene step"
PY

# --steps: the last attempt of every step, one line each, as before.
expect_exit 0 "$AVPS" --no-color status "$P" --steps
grep -qE '^  plausibility-auditor S03 +PASS  attempt [0-9]+ on t[0-9]  PLAUS_S03_v[0-9]{3}\.md$' <<<"$OUT" \
  || fail "--steps lacks the plausibility-auditor S03 line:
$OUT"
expect_out "voice-lock MARA_QUILL"
expect_out "qc-grader S06_SH01 final"
expect_out "USD project cap"
[ -z "$(scene_rows "$OUT")" ] || fail "--steps printed the scene table"

# --- A run stopped after continuity: nothing planned yet. -------------------------------------
fresh early
expect_exit 0 "$AVPS" run "$P" --until continuity
expect_exit 0 "$AVPS" --no-color status "$P"
[ "$(scene_rows "$OUT" | wc -l)" = 6 ] || fail "expected 6 scene rows:
$OUT"
while read -r scene phase validation continuity plan proxy final spend cap; do
  [ "$phase $plan $proxy $final" = "continuity - - -" ] \
    || fail "$scene: expected phase continuity and nothing planned, got: $phase $plan $proxy $final"
  [ "$validation $continuity" = "PASS PASS" ] || fail "$scene: gates $validation $continuity"
done < <(scene_rows "$OUT")
expect_exit 0 "$AVPS" --json status "$P"
python3 -c '
import json, sys
for s in json.loads(sys.argv[1])["scenes"]:
    assert s["phase"] == "continuity" and s["plan"] is None, s
    assert s["proxy"] == s["final"] == {"passed": 0, "shots": 0}, s
' "$OUT"

# --- A hard stop in validation: the worst verdict shows, the other scenes wait, exit 3. -------
fresh stopped
python3 - "$P/avps.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["sim"]["failure_rates"]["plausibility-auditor"] = 1.0
# The story-architect revisions S01's auditor asks for really change the story, so the red team
# judges each one again: at its demo rate it may stop the narrative first. This case is about a
# stop in validation, so the red team passes.
config["sim"]["failure_rates"]["narrative-red-team"] = 0.0
json.dump(config, open(path, "w"), indent=2)
PY
expect_exit 3 "$AVPS" run "$P"
expect_exit 3 "$AVPS" --no-color status "$P"
expect_out "HARD STOP"
grep -qE '^  S01 +validation +FAIL +- +- +- +- ' <<<"$OUT" || fail "S01 should show its failed validation:
$OUT"
# The later scenes ran what does not read S01's world state (research), nothing after it.
[ -z "$(scene_rows "$OUT" | awk '$1 != "S01" && $2 != "psychology" && $2 != "validation"')" ] \
  || fail "the scenes after the stop should have gone no further than validation:
$OUT"
expect_out "    holds S01, S02, S03, S04, S05, S06 from validation"
expect_exit 3 "$AVPS" --json status "$P"
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
s = d["scenes"][0]
assert s["scene_id"] == "S01" and s["phase"] == "validation" and s["validation"] == "FAIL", s
assert len(d["hard_stops"]) == 1 and d["hard_stops"][0]["loop"] == "plausibility-auditor/S01", d["hard_stops"]
stop = d["hard_stops"][0]["id"]
for s in d["scenes"]:
    assert s["held_by"] == {"stop": stop, "from_phase": "validation"}, s
' "$OUT"
echo ok
