#!/usr/bin/env bash
# A skill added in a project's own folder runs with the unchanged binary (docs/skills.md, "Adding a
# skill to a project"): examples/prop_master's prop-master (its skill.json, prompt and the schema of
# a new kind, PROP_LIST) is copied into the demo, the stage graph gets its step and the edges that
# feed PROP_LIST into the GenPacks, and the packager marks PROP_LIST into_genpack. `avps skills
# validate` passes on it and refuses a broken variant; `avps run` on the sim finishes; each scene has
# PROP_LIST_<scene>_v001.md; every GenPack carries its scene's PROP_LIST verbatim; the gate passes;
# a second run makes no call; an edit of the project's prompt re-runs exactly prop-master and what
# depends on its output.
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
P="$WORK/film"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # which steps a skill reaches, not the clips
cp -r "$SRC/examples/prop_master/skills" "$SRC/examples/prop_master/schemas" "$P/"
python3 - "$SRC" "$P" <<'PY'
import json, sys
src, project = sys.argv[1], sys.argv[2]
# QC passes first time, so which shots render again after the edit is exact.
config = json.load(open(project + "/avps.json"))
config["sim"]["failure_rates"]["qc-grader"] = 0.0
config["sim"]["fix_rates"]["qc-grader"] = 0.0
json.dump(config, open(project + "/avps.json", "w"), indent=2)
# The stage graph: prop-master after shot-planner, fed by SCENES and BREAKDOWN, feeding both packagers.
graph = json.load(open(src + "/policies/stage_graph.json"))
planning = next(p for p in graph["phases"] if p["name"] == "planning")
planning["steps"].append({"id": "prop-master", "skill": "prop-master"})
graph["edges"] += [
    {"from": "story-architect", "kind": "SCENES", "to": "prop-master"},
    {"from": "script-breakdown", "kind": "BREAKDOWN", "to": "prop-master"},
    {"from": "prop-master", "kind": "PROP_LIST", "to": "shots_proxy.prompt-packager"},
    {"from": "prop-master", "kind": "PROP_LIST", "to": "shots_final.prompt-packager"},
]
import os
os.makedirs(project + "/policies", exist_ok=True)
json.dump(graph, open(project + "/policies/stage_graph.json", "w"), indent=2)
# The packager pastes PROP_LIST into every GenPack of the scene.
packager = json.load(open(src + "/skills/prompt-packager/skill.json"))
packager["inputs"].append({"kind": "PROP_LIST", "required": True, "slice": "latest", "into_genpack": True})
os.makedirs(project + "/skills/prompt-packager", exist_ok=True)
json.dump(packager, open(project + "/skills/prompt-packager/skill.json", "w"), indent=2)
PY

# The project's additions validate like the shipped files.
expect_exit 0 "$AVPS" skills validate "$P"
expect_out "24 skills"
expect_exit 0 "$AVPS" skills list "$P"
grep -q "^prop-master .* project$" <<<"$OUT" || fail "skills list should show prop-master from the project:
$OUT"

# A broken variant is refused, each problem with its fix: the schema of the new kind missing.
B="$WORK/broken"
cp -r "$P" "$B"
rm "$B/schemas/prop_list.schema.json"
expect_exit 1 "$AVPS" skills validate "$B"
expect_out "output kind PROP_LIST is not an artifact kind avps knows; a project adds one with a schema schemas/prop_list.schema.json"
expect_out "[skill.kind]"
"$AVPS" init "$B" > /dev/null
expect_exit 4 "$AVPS" run "$B"
expect_out "do not validate"
expect_out "skills validate"
# A declaration that would make names ambiguous is refused before anything is read.
cp -r "$P" "$WORK/clash"
python3 - "$WORK/clash/schemas/prop_list.schema.json" <<'PY'
import json, os, sys
schema = json.load(open(sys.argv[1]))
os.remove(sys.argv[1])
sys.argv[1] = sys.argv[1].replace("prop_list", "scenes_props")
schema["x-avps-artifact"]["kind"] = "SCENES_PROPS"
schema["properties"]["kind"]["const"] = "SCENES_PROPS"
json.dump(schema, open(sys.argv[1], "w"))
PY
expect_exit 1 "$AVPS" skills validate "$WORK/clash"
expect_out "[schema.artifact]"
expect_out "could be read as SCENES names"

# The run: the unchanged binary, on the sim.
"$AVPS" init "$P" > /dev/null
expect_exit 0 "$AVPS" run "$P" --jobs 4
scenes=$(ls "$P"/narrative/SCENES_v*.csv | tail -n 1 | xargs python3 -c 'import csv, sys; print(" ".join(r["scene_id"] for r in csv.DictReader(open(sys.argv[1]))))')
[ -n "$scenes" ] || fail "no scenes"
for s in $scenes; do
  f="$P/production/PROP_LIST_${s}_v001.md"
  [ -f "$f" ] || fail "no $f"
  head -n 1 "$f" | grep -qx "# Prop List: $s" || fail "$f has no title line"
  grep -qx "Gate: PASS" "$f" || fail "$f is not gated PASS"
done
# Named, versioned and recorded like shipped kinds: in the ledger's artifact index, with a log row.
[ "$(q "$P" "SELECT count(*) FROM artifacts WHERE kind='PROP_LIST'")" = "$(wc -w <<<"$scenes")" ] \
  || fail "PROP_LIST artifacts recorded: $(q "$P" "SELECT name FROM artifacts WHERE kind='PROP_LIST'")"
grep -q ",prop-master,.*PROP_LIST_S01_v001.md" "$P/logs/RUN_LOG_v001.csv" || fail "no RUN_LOG row for prop-master"
expect_exit 0 "$AVPS" artifact show "$P" PROP_LIST_S01
expect_out "# Prop List: S01"

# Every latest GenPack carries its scene's latest PROP_LIST face verbatim, named, after ACTION.
carried_latest() {
  python3 - "$P" <<'PY'
import glob, os, re, sys
project = sys.argv[1]
def version(path):
    return int(re.search(r"_v(\d+)\.", path).group(1))
latest = {}
for pack in glob.glob(f"{project}/production/GENPACK_*_v*.txt"):
    shot = re.search(r"GENPACK_(S\d+_SH\d+)_v", pack).group(1)
    if shot not in latest or version(pack) > version(latest[shot]):
        latest[shot] = pack
assert latest, "no GenPacks"
for shot, pack in sorted(latest.items()):
    scene = shot.split("_")[0]
    prop_list = max(glob.glob(f"{project}/production/PROP_LIST_{scene}_v*.md"), key=version)
    text = open(pack).read()
    name = os.path.basename(prop_list)
    assert "\n[CARRIED INPUTS]\n" in text, pack
    assert text.index("[ACTION]") < text.index("[CARRIED INPUTS]") < text.index("[NEGATIVES / NO-DRIFT]"), pack
    assert f"- artifact: {name}\n  text: <<END\n" + open(prop_list).read() + "\nEND\n" in text, (pack, name)
PY
}
carried_latest || fail "a GenPack does not carry its scene's PROP_LIST verbatim"
expect_exit 0 "$AVPS" gate "$P"

# Up to date: a second run makes no call and writes nothing.
expect_exit 0 "$AVPS" run "$P"
expect_out "0 artifacts written, 0 calls made"

# An edit of the project's prompt: exactly prop-master runs again (each scene), then what reads
# PROP_LIST (the GenPacks, and their renders and QC where the list changed); nothing upstream.
before=$(q "$P" "SELECT max(seq) FROM events")
echo "Name the hand each prop starts in first." >> "$P/skills/prop-master/prompt.md"
expect_exit 0 "$AVPS" run "$P" --jobs 4
ran=$(q "$P" "SELECT DISTINCT json_extract(body,'$.skill') FROM events WHERE kind='exchange.intent' AND seq > $before ORDER BY 1")
while read -r skill _; do
  case "$skill" in
    prop-master|qc-grader|storyboard-generator|generate|storyboard) ;;  # the renders and storyboard frames
    *) fail "$skill was called after an edit of prop-master's prompt" ;;
  esac
done <<<"$ran"
grep -q "^prop-master" <<<"$ran" || fail "prop-master was not called after its prompt changed"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='step.finished' AND seq > $before AND json_extract(body,'$.skill')='prop-master'")" \
  = "$(wc -w <<<"$scenes")" ] || fail "prop-master should run once per scene after its prompt changed"
# What reads PROP_LIST, and what reads that: the packager, storyboards, renders and QC, and the cost
# loop before final renders (it reads the new proxy QC batches). Nothing upstream of prop-master.
outside=$(q "$P" "SELECT DISTINCT json_extract(body,'$.skill') FROM events WHERE kind='step.finished' AND seq > $before
  AND json_extract(body,'$.skill') NOT IN ('prop-master','prompt-packager','storyboard-generator','qc-grader',
  'regen-analyzer','cost-optimizer','model-router','budget-gates','run-logger')")
[ -z "$outside" ] || fail "steps that do not depend on PROP_LIST ran again: $outside"
new_versions=$(q "$P" "SELECT DISTINCT kind FROM artifacts WHERE event_seq > $before ORDER BY 1" | tr '\n' ' ')
for kind in $new_versions; do
  case "$kind" in
    PROP_LIST|GENPACK|QC_BATCH|STORYBOARD|STORYBOARD_REPORT|REGEN_RULES|COST_REPORT|ROUTING_DECISION|BUDGET_STATUS) ;;
    *) fail "$kind got a new version after an edit of prop-master's prompt" ;;
  esac
done
[ -f "$P/production/PROP_LIST_S01_v002.md" ] || fail "the edited prompt wrote no PROP_LIST_S01_v002.md"
carried_latest || fail "after the edit, a GenPack does not carry its scene's new PROP_LIST"
expect_exit 0 "$AVPS" gate "$P"
expect_exit 0 "$AVPS" run "$P"
expect_out "0 artifacts written, 0 calls made"

# A person's edit of the new kind is a version like any other: imported, gated, and carried by
# exactly the GenPacks of its scene on the next run.
cat > "$WORK/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/^Readiness Score: .*/Readiness Score: 2/; s/^\(- Handling notes: \).*/\1the lamp key stays on its hook by the door/' "$1"
EOF
chmod +x "$WORK/editor.sh"
expect_exit 0 env EDITOR="$WORK/editor.sh" "$AVPS" artifact edit "$P" PROP_LIST_S02 --reason "props walk-through"
[ -f "$P/production/PROP_LIST_S02_v003.md" ] || fail "the edit wrote no PROP_LIST_S02_v003.md"
before=$(q "$P" "SELECT max(seq) FROM events")
expect_exit 0 "$AVPS" run "$P" --jobs 4
repacked=$(q "$P" "SELECT DISTINCT target FROM artifacts WHERE kind='GENPACK' AND event_seq > $before" | cut -d_ -f1 | sort -u)
[ "$repacked" = "S02" ] || fail "an edit of S02's PROP_LIST should re-pack only S02's shots, got: $repacked"
carried_latest || fail "after the edit, a GenPack does not carry PROP_LIST_S02_v003.md"
expect_exit 0 "$AVPS" gate "$P"
# The last run reproduces offline (earlier ones ran under the prompt before its edit, and replay
# uses the skills as they are now).
last=$(q "$P" "SELECT count(*) FROM events WHERE kind='run.started'")  # runs are numbered in order
expect_exit 0 "$AVPS" replay "$P" --run "$last"
expect_out "REPRODUCED"
echo "ok"
