#!/usr/bin/env bash
# `avps skills list | show | validate`: the shipped definitions, and a project's overrides that
# break them (missing output schema, unknown gate field, dangling input) failing with the reason.
source "$(dirname "$0")/lib.sh"

# row NAME LAYER LOOP TIER EXECUTOR SCOPE : $OUT has that table row (columns padded by spaces).
row() {
  grep -qE "^$1 +$2 +$3 +$4 +$5 +$6( |\$)" <<<"$OUT" || fail "no row '$*' in:
$OUT"
}

# override NAME PYTHON : writes $WORK/<project>/skills/NAME/skill.json, the shipped one changed by
# PYTHON (a statement on the dict `s`). The project folder is $PROJ.
override() {
  mkdir -p "$PROJ/skills/$1"
  python3 - "$SRC/skills/$1/skill.json" "$PROJ/skills/$1/skill.json" "$2" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(s, open(sys.argv[2], "w"), indent=2)
EOF
}

# The shipped set.
expect_exit 0 "$AVPS" skills list
[ "$(grep -cE '^[a-z]' <<<"$OUT")" = 24 ] || fail "expected a header and 23 skills:
$OUT"
row name layer loop tier executor scope
row narrative-red-team validation narrative t3 model project
row prompt-packager production production builtin builtin shot
row research-agent validation validation research model scene
row character-lock continuity none t2 model character
row run-logger observability observability builtin builtin project
expect_exit 0 "$AVPS" skills list --json
python3 -c '
import json, sys
rows = {r["name"]: r for r in json.loads(sys.argv[1])}
assert len(rows) == 23, len(rows)
assert rows["storyboard-generator"]["tier"] == "vision" and rows["storyboard-generator"]["escalation"] == ["t3"]
assert rows["cost-optimizer"]["tier"] is None and rows["cost-optimizer"]["builtin"] == "project_cost"
assert all(r["source"] == "shipped" for r in rows.values())
' "$OUT"

expect_exit 0 "$AVPS" skills validate
expect_out "23 skills, stage graph of 11 phases: valid"
expect_exit 0 "$AVPS" --json skills validate
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["verdict"]=="PASS" and d["violations"]==[] and d["skills"]==23' "$OUT"

expect_exit 0 "$AVPS" skills show plausibility-auditor
expect_out "validation"
expect_out "t2, escalation t3"
expect_out "SCENES"
expect_out "plaus.schema.json"
expect_out "/total_score >= config /thresholds/plaus_total (default 7), else FAIL"
expect_out "revise SCENES via story-architect"
expect_out "# plausibility-auditor"   # the prompt follows the summary
expect_exit 0 "$AVPS" skills show prompt-packager --json
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["builtin"]=="assemble_genpack" and d["prompt"].startswith("# prompt-packager")' "$OUT"
expect_exit 4 "$AVPS" skills show plausability-auditor
expect_out "did you mean plausibility-auditor"
expect_exit 2 "$AVPS" skills show
expect_exit 2 "$AVPS" skills
expect_exit 4 "$AVPS" skills validate "$WORK/no-such-project"
expect_out "no-such-project"

# A project whose override is used and marked.
PROJ="$WORK/fine"
override plausibility-auditor 's["max_output_tokens"] = 5000'
expect_exit 0 "$AVPS" skills list "$PROJ"
row plausibility-auditor validation validation t2 model 'scene +project'
row qc-grader production production t2 model 'shot +shipped'
expect_exit 0 "$AVPS" skills validate "$PROJ"
expect_exit 0 "$AVPS" skills show plausibility-auditor "$PROJ"
expect_out "5000 tokens"
expect_out "$PROJ/skills/plausibility-auditor/skill.json"

# A missing output schema.
PROJ="$WORK/schema"
override plausibility-auditor 's["outputs"][0]["schema"] = "plausibility.schema.json"'
expect_exit 1 "$AVPS" skills validate "$PROJ"
expect_out "$PROJ/skills/plausibility-auditor/skill.json: output PLAUS names schema plausibility.schema.json"
expect_out "[skill.output_schema]"

# A gate rule reading a field the output's schema does not have.
PROJ="$WORK/field"
override plausibility-auditor 's["gate"]["rules"][0]["field"] = "/total_scroe"'
expect_exit 1 "$AVPS" skills validate "$PROJ"
expect_out "reads field /total_scroe, which schemas/plaus.schema.json does not define  [skill.gate_field]"
expect_exit 1 "$AVPS" --json skills validate "$PROJ"
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["verdict"] == "FAIL"
assert [v["rule"] for v in d["violations"]] == ["skill.gate_field"], d["violations"]
' "$OUT"

# A required input nobody produces before the skill runs.
PROJ="$WORK/dangling"
override story-architect 's["inputs"].append({"kind": "REGEN_RULES", "required": True, "slice": "latest"})'
expect_exit 1 "$AVPS" skills validate "$PROJ"
expect_out "skill story-architect (step story-architect) in phase narrative requires REGEN_RULES"
expect_out "[graph.dangling_input]"

# A skill.json that is not JSON: a violation, and the listing says what it left out.
PROJ="$WORK/broken"
mkdir -p "$PROJ/skills/qc-grader" && echo '{"name": ' > "$PROJ/skills/qc-grader/skill.json"
expect_exit 1 "$AVPS" skills validate "$PROJ"
expect_out "[skill.load]"
expect_exit 0 "$AVPS" skills list "$PROJ"
expect_out "could not be loaded (qc-grader)"
echo ok
