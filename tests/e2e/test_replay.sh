#!/usr/bin/env bash
# `avps replay`: a finished demo run reproduces offline, read-only; a changed answer, prompt or
# threshold is named as the first divergence; a killed and resumed production replays run by run.
source "$(dirname "$0")/lib.sh"

q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
# Every file of a project folder with its hash: a replay must leave it byte-identical. (SQLite's
# -wal and -shm files, which any reader of a WAL database in a writable folder may create, are not
# the project's content.)
tree_digest() {
  (cd "$1" && find . -type f ! -name 'ledger.db-wal' ! -name 'ledger.db-shm' -print0 | sort -z |
    xargs -0 sha256sum | sha256sum)
}

DEMO="$WORK/demo"
cp -r "$SRC/examples/demo_short_film" "$DEMO"
"$AVPS" init "$DEMO" > /dev/null
expect_exit 0 "$AVPS" run "$DEMO" --jobs 4

# --- The finished demo reproduces, and replay changes nothing in the project ----------------------
before=$(tree_digest "$DEMO")
expect_exit 0 "$AVPS" replay "$DEMO"
expect_out "REPRODUCED RUN_0002 (DONE): verified"
[ "$(tree_digest "$DEMO")" = "$before" ] || fail "replay changed the project folder"
expect_exit 0 "$AVPS" --json replay "$DEMO"
python3 - "$OUT" "$(q "$DEMO" "SELECT count(*) FROM events WHERE kind='step.finished'")" \
  "$(q "$DEMO" "SELECT count(*) FROM events WHERE kind='artifact.recorded' AND run_id='RUN_0002'")" \
  "$(q "$DEMO" "SELECT count(*) FROM events WHERE run_id='RUN_0002'")" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
steps, artifacts, events = map(int, sys.argv[2:5])
assert doc["reproduced"] is True, doc
(run,) = doc["runs"]
assert run["run_id"] == "RUN_0002" and run["outcome"] == "DONE", run
assert run["steps"] == steps and run["artifacts"] == artifacts and run["events"] == events, (run, steps, artifacts, events)
assert run["calls"] > 200 and run["renders"] > 0, run
PY
expect_exit 0 "$AVPS" replay "$DEMO" --run 2
expect_exit 4 "$AVPS" replay "$DEMO" --run 7
expect_out "no run RUN_0007"
expect_exit 4 "$AVPS" replay "$DEMO" --run latest
expect_out "name a run as its number"
mkdir -p "$WORK/empty"
expect_exit 4 "$AVPS" replay "$WORK/empty"
expect_out "not an avps project"

# --- --reprice: every price doubled is exactly twice the cost, per line; nothing re-executed -------
python3 - "$SRC/policies/models.json" "$WORK/doubled.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for m in doc["models"]:
    for key, value in list(m.get("pricing", {}).items()):
        if isinstance(value, int):
            m["pricing"][key] = 2 * value
        elif isinstance(value, dict):
            m["pricing"][key] = {k: 2 * v for k, v in value.items()}
json.dump(doc, open(sys.argv[2], "w"), indent=2)
PY
expect_exit 0 "$AVPS" --json replay "$DEMO" --reprice "$WORK/doubled.json"
python3 - "$OUT" "$(q "$DEMO" "SELECT count(*) FROM events WHERE kind='exchange.response'")" \
  "$(q "$DEMO" "SELECT sum(json_extract(body,'$.cost_micro_usd')) FROM events WHERE kind='exchange.response'")" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
calls, charged = int(sys.argv[2]), int(sys.argv[3])
total = doc["total"]
assert total["calls"] == calls and total["charged_micro_usd"] == charged, (total, calls, charged)
for group in ("by_scene", "by_tier", "by_model"):
    assert sum(l["calls"] for l in doc[group]) == calls, group
    for line in doc[group] + [total]:
        assert line["repriced_pico_usd"] == 2 * line["current_pico_usd"], line
        # What was charged is each call rounded up to the micro-dollar: within a micro-dollar a call.
        assert 0 <= line["charged_micro_usd"] * 10**6 - line["current_pico_usd"] < line["calls"] * 10**6, line
assert {l["name"] for l in doc["by_tier"]} >= {"t2", "gen_low"}, doc["by_tier"]
PY
expect_exit 0 "$AVPS" replay "$DEMO" --reprice "$WORK/doubled.json" --run 2
expect_out "(+100.0%)"
[ "$(tree_digest "$DEMO")" = "$before" ] || fail "--reprice changed the project folder"
python3 - "$WORK/doubled.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["models"] = [m for m in doc["models"] if m["id"] != "sim-t2-lite"]
json.dump(doc, open(sys.argv[1], "w"), indent=2)
PY
expect_exit 4 "$AVPS" replay "$DEMO" --reprice "$WORK/doubled.json"
expect_out 'model "sim-t2-lite" answered calls of the record but is not in'

# --- --timeline: the audit trail per scene and shot, from the record ------------------------------
expect_exit 0 "$AVPS" replay "$DEMO" --timeline
expect_out "Scene S01"
expect_out "  Shot S01_SH01"
grep -Eq '^    [0-9T:.-]+Z  RUN_0002  qc-grader +t2 sim-t2-[a-z]+ +\$0\.[0-9]{6} +(PASS|FIX|FAIL)' <<<"$OUT" \
  || fail "no QC attempt with its tier, model, cost and verdict in the timeline"
expect_exit 0 "$AVPS" --json replay "$DEMO" --timeline --run 2
printf '%s' "$OUT" > "$WORK/timeline.json"
python3 - "$WORK/timeline.json" "$(q "$DEMO" "SELECT count(*) FROM events WHERE run_id='RUN_0002' AND json_extract(body,'$.row') IS NOT NULL")" <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))["timeline"]
assert len(entries) == int(sys.argv[2]), (len(entries), sys.argv[2])  # every run-log row, no retries on the sim
assert {e["outcome"] for e in entries} >= {"PASS", "DONE"}, {e["outcome"] for e in entries}
assert any(e["shot_id"] and e["skill"] == "generate" and e["artifact"].startswith("media/") for e in entries)
PY
expect_exit 2 "$AVPS" replay "$DEMO" --timeline --reprice "$WORK/doubled.json"

# --- A recorded answer changed on disk: the step whose answer it was is named ---------------------
# (an answer no other call got: objects are stored by content, and a re-derived step may get the
# very bytes an earlier call got, whose event replay then meets first)
P="$WORK/answer"
cp -r "$DEMO" "$P"
row=$(q "$P" "SELECT e.seq, json_extract(e.body,'$.response_sha256'), json_extract(i.body,'$.skill')
  FROM events e JOIN events i ON i.kind='exchange.intent' AND json_extract(i.body,'$.key')=json_extract(e.body,'$.key')
  WHERE e.kind='exchange.response' AND json_extract(e.body,'$.response_sha256') IS NOT NULL
    AND (SELECT count(*) FROM events o WHERE o.kind='exchange.response'
         AND json_extract(o.body,'$.response_sha256')=json_extract(e.body,'$.response_sha256')) = 1
  LIMIT 1 OFFSET 30")
IFS='|' read -r seq sha purpose <<<"$row"
object_save "$P" "$sha" "$WORK/answer.bytes"; printf ' ' >> "$WORK/answer.bytes"
object_set "$P" "$sha" "$WORK/answer.bytes"
expect_exit 1 "$AVPS" replay "$P"
expect_out "DIVERGES RUN_0002: event $seq (exchange.response, $purpose): its recorded answer cannot be used"
expect_out "object $sha (.avps/ledger.db) no longer matches its hash"

# --- A skill's prompt changed since the run: the first request that differs, at /prompt ----------
mkdir -p "$WORK/home"; cp -r "$SRC/skills" "$SRC/schemas" "$SRC/policies" "$WORK/home/"
echo "Answer in haiku." >> "$WORK/home/skills/plausibility-auditor/prompt.md"
expect_exit 1 env AVPS_HOME="$WORK/home" "$AVPS" replay "$DEMO"
expect_out "(exchange.intent, plausibility-auditor S01): its request differs at /prompt"
expect_out 'Answer in haiku.'
rm -rf "$WORK/home"

# --- A gate threshold raised since the run: the recorded and the recomputed verdicts -------------
# (raised to one above the total S01's first plausibility audit scored)
P="$WORK/threshold"
cp -r "$DEMO" "$P"
sha=$(q "$P" "SELECT json_sha256 FROM artifacts WHERE name='PLAUS_S01_v001.md'")
object_save "$P" "$sha" "$WORK/plaus.json"
total=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["total_score"])' "$WORK/plaus.json")
python3 - "$P/avps.json" "$((total + 1))" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["thresholds"] = {"plaus_total": int(sys.argv[2])}
json.dump(doc, open(sys.argv[1], "w"), indent=2)
PY
expect_exit 1 "$AVPS" replay "$P"
expect_out "(step.finished, plausibility-auditor/S01 attempt 1): recorded verdict PASS, recomputed FAIL"
expect_out "total_score $total < $((total + 1))"

# --- Offline and read-only: no network at all, as an unprivileged user, on a read-only copy -------
RO="$WORK/readonly"
cp -r "$DEMO" "$RO"
chmod -R a+rX,a-w "$RO"; chmod a+rx "$WORK"
isolated=()
if [ "$(id -u)" = 0 ]; then
  command -v runuser > /dev/null || fail "runuser (util-linux) is needed to read as another user"
  command -v unshare > /dev/null || fail "unshare (util-linux) is needed to cut the network"
  isolated=(unshare --net runuser -u nobody --)
fi
mkdir -p "$WORK/home"; cp -r "$SRC/skills" "$SRC/schemas" "$SRC/policies" "$WORK/home/"
cp "$AVPS" "$WORK/avps-reader"; chmod -R a+rX "$WORK/home" "$WORK/avps-reader"
expect_exit 0 "${isolated[@]}" env AVPS_HOME="$WORK/home" TMPDIR=/tmp HTTP_PROXY=http://127.0.0.1:9 \
  HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 "$WORK/avps-reader" replay "$RO"
expect_out "REPRODUCED RUN_0002 (DONE)"
chmod -R u+w "$RO"

# --- Killed mid-production and resumed: each run replays; the killed one as far as it went -------
# (The first scene's production: the same loops, a third of the calls. PNG renders: the renders
# re-made bit-exact are the demo's clips above; here it is which run replays how far.)
P="$WORK/killed"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"
"$AVPS" init "$P" > /dev/null
set +e
(AVPS_CRASH_AT="engine.after_response:40" "$AVPS" run "$P" --jobs 4 --scene S01 > /dev/null 2>&1) 2> /dev/null
code=$?
set -e
[ "$code" = 137 ] || fail "expected the run to be killed (137), got $code"
expect_exit 0 "$AVPS" run "$P" --jobs 4 --scene S01
expect_exit 0 "$AVPS" replay "$P"
expect_out "REPRODUCED RUN_0002 (UNFINISHED)"
expect_out "verified as far as it went"
expect_out "REPRODUCED RUN_0003 (DONE)"
echo "ok"
