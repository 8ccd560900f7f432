# The demo with its renders on a ComfyUI server: the video models on `comfyui` with the shipped
# example workflow (examples/comfyui/wan_t2v_api.json) against the fake ComfyUI of
# tests/support/fake_jobs.*, text on openai_chat, vision and QC on anthropic_messages. Proves: a
# workflow the server cannot run is refused before anything is recorded (exit 4); an end-to-end
# run and `avps gate`, one submission per ticket, no invalid request, no poll sooner than the
# interval; kill -9 while prompts are polled, then a resume that submits nothing twice and ends
# with the artifacts of an uninterrupted run; a failed prompt ends recorded, its reservation
# released. Bounded: about a minute.
source "$(dirname "$0")/fake_lib.sh"

export OPENAI_API_KEY="sk-proj-AVPSLEAKCANARY-openai-a11c"
export ANTHROPIC_API_KEY="sk-ant-AVPSLEAKCANARY-anthropic-b22d"
CANARY="AVPSLEAKCANARY"
MIN_POLL_MS=40  # the comfyui models poll at 0.05 s here; the fake counts polls sooner than 40 ms
# ComfyUI wants no key (--key-jobs "").
FAKE_ARGS=(--key-openai "$OPENAI_API_KEY" --key-anthropic "$ANTHROPIC_API_KEY" --key-jobs ""
  --min-poll-interval-ms "$MIN_POLL_MS")

# project NAME PORT [WORKFLOW_EDIT]: the demo on examples/models/openai-anthropic.json, its render
# models on comfyui at the fake with the example workflow and bindings (examples/comfyui/models.json),
# the workflow copied into the project (after `avps init`, which takes only a project's own
# sources); storyboard frames (images) stay on one sim model. WORKFLOW_EDIT is Python run on the
# workflow `w` before it is written.
project() {
  P="$WORK/$1"
  rm -rf "$P"
  cp -r "$SRC/examples/demo_short_film" "$P"
  "$AVPS" init "$P" > /dev/null
  mkdir "$P/comfyui"
  python3 - "$SRC" "$P" "$2" "${3:-pass}" <<'PY'
import json, sys
src, project, port, edit = sys.argv[1:5]
w = json.load(open(src + "/examples/comfyui/wan_t2v_api.json"))
exec(edit)
json.dump(w, open(project + "/comfyui/wan_t2v_api.json", "w"), indent=2)
example = {m["id"]: m for m in json.load(open(src + "/examples/comfyui/models.json"))["models"]}
options = example["wan2.1-t2v-1.3b"]["options"]
options["poll"] = {"interval_s": 0.05, "max_wait_s": 20}
options["retry"] = {"max_retries": 1, "base_ms": 10}
d = json.load(open(src + "/examples/models/openai-anthropic.json"))
for m in d["models"]:
    if m["backend"] == "openai_chat":
        m["endpoint"] = "http://127.0.0.1:%s/v1" % port
    elif m["backend"] == "anthropic_messages":
        m["endpoint"] = "http://127.0.0.1:%s" % port
    elif m["id"] == "sim-gen-low-alt":
        m["capabilities"]["video_out"] = False  # storyboard frames only
    else:
        m["backend"] = "comfyui"
        m["endpoint"] = "http://127.0.0.1:%s" % port
        m["capabilities"]["image_out"] = False
        m["options"] = options
json.dump(d, open(project + "/models.json", "w"), indent=2)
c = json.load(open(project + "/avps.json"))
c["models"] = "models.json"
json.dump(c, open(project + "/avps.json", "w"), indent=2)
PY
}
# from_base NAME PORT: a copy of the base project (its text phases done) pointed at the fake on PORT.
from_base() {
  P="$WORK/$1"
  rm -rf "$P"
  cp -a "$BASE" "$P"
  sed -i "s#127.0.0.1:$BASE_PORT#127.0.0.1:$2#" "$P/models.json"
}

# --- Refused before the run: a node class the server does not have --------------------------------
start_fake refusal
project refusal "$PORT" 'w["50"]["class_type"] = "VHS_VideoCombine"'
events=$(q "$P" "SELECT count(*) FROM events")
expect_exit 4 "$AVPS" run "$P"
expect_out "has no node class VHS_VideoCombine (node 50)"
expect_out "Install Missing Custom Nodes"
[ "$(q "$P" "SELECT count(*) FROM events")" = "$events" ] || fail "a refused run recorded something"
[ "$(stat "$PORT" 'j["submissions"]')" = 0 ] || fail "a refused run queued a prompt"

# --- The demo end to end, renders on ComfyUI -------------------------------------------------------
# The text phases up to the renders run once, in a base every scenario below starts from.
start_fake base
project base "$PORT"
BASE="$P"
BASE_PORT=$PORT
expect_exit 0 "$AVPS" models check "$P"
expect_exit 0 "$AVPS" run "$P" --jobs 4 --until cost_proxy
[ "$(stat "$PORT" 'j["submissions"]')" = 0 ] || fail "a prompt was queued before the renders"
start_fake clean
from_base clean "$PORT"
# In two steps, so that the kill below can be compared with the proxies' state.
expect_exit 0 "$AVPS" run "$P" --jobs 4 --until shots_proxy
PROXIES=$(digest "$P")
expect_exit 0 "$AVPS" run "$P" --jobs 4
expect_out "done:"
expect_exit 0 "$AVPS" gate "$P"
[ "$(stat "$PORT" 'j["invalid"]')" = 0 ] || fail "invalid ComfyUI requests: $(stat "$PORT" 'j["invalid_reasons"]')"
[ "$(stat "$PORT" 's["invalid"]')" = 0 ] || fail "invalid chat requests: $(stat "$PORT" 's["invalid_reasons"]')"
[ "$(stat "$PORT" 'j["by_preset"].get("comfyui", 0)')" -gt 0 ] || fail "no prompt was queued"
[ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] \
  || fail "submissions $(stat "$PORT" 'j["submissions"]') != tickets $(tickets "$P")"
[ "$(stat "$PORT" 'j["polls_too_early"]')" = 0 ] || fail "a prompt was polled sooner than its interval"
[ "$(stat "$PORT" 'c["client_ids"]')" = 2 ] || fail "two runs, two client ids: $(stat "$PORT" 'c["client_ids"]')"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response' AND json_extract(body,'$.provider')='comfyui' AND json_extract(body,'$.job.output.node')='50' AND json_extract(body,'$.media_sha256') IS NOT NULL")" = "$(tickets "$P")" ] \
  || fail "a prompt's response lacks its output node or its media"
[ "$(q "$P" "SELECT count(DISTINCT json_extract(body,'$.submit.workflow_sha256')) FROM events WHERE kind='exchange.ticket'")" = 1 ] \
  || fail "the tickets do not record the workflow's sha256"
if command -v ffprobe > /dev/null; then
  [ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response' AND json_extract(body,'$.job.probe.codec') != ''")" -gt 0 ] \
    || fail "no render was probed"
fi
ls "$P"/media/*_proxy_a01.mp4 > /dev/null || fail "no render under media/"
[ "$(open_reservations "$P")" = 0 ] || fail "a reservation was left open"
no_canary "$P" "$WORK/clean.log"

# --- Kill -9 while prompts are polled; the resume submits nothing twice ----------------------------
# With one worker a ticket is recorded before the next submit leaves: every prompt the fake queued
# has its ticket in the ledger when the kill lands. Both runs stop after the proxies (the finals
# take the same path), and end with the files the uninterrupted run had there.
start_fake kill
from_base kill "$PORT"
set +e
AVPS_CRASH_AT=engine.after_poll:5 "$AVPS" run "$P" --jobs 1 --until shots_proxy > "$WORK/kill.out" 2>&1
code=$?
set -e
[ "$code" = 137 ] || fail "the kill did not happen (exit $code): $(tail -5 "$WORK/kill.out")"
in_flight=$(q "$P" "SELECT count(*) FROM events t WHERE t.kind='exchange.ticket' AND NOT EXISTS (SELECT 1 FROM events r WHERE r.kind IN ('exchange.response','exchange.failed') AND json_extract(r.body,'$.key')=json_extract(t.body,'$.key'))")
[ "$in_flight" -ge 1 ] || fail "no prompt in flight after the kill"
expect_exit 0 "$AVPS" status "$P"
expect_out "in flight"
expect_exit 0 "$AVPS" run "$P" --jobs 4 --until shots_proxy
[ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "after the kill: submissions != tickets"
[ "$(stat "$PORT" 'j["duplicate_submissions"]')" = 0 ] || fail "a prompt was queued twice"
[ "$(stat "$PORT" 'c["client_ids"]')" = 2 ] || fail "two runs, two client ids: $(stat "$PORT" 'c["client_ids"]')"
[ "$(open_reservations "$P")" = 0 ] || fail "after the kill: a reservation was left open"
expect_exit 0 "$AVPS" gate "$P"
[ "$PROXIES" = "$(digest "$P")" ] || fail "the resumed run's artifacts differ from the uninterrupted run's:
$(diff <(echo "$PROXIES") <(digest "$P"))"

# --- A prompt that fails is a failed attempt, rendered again; never hangs -------------------------
# The second prompt queued fails: a proxy of the first scene, so the run stops after that scene's
# proxies (the other scenes' would cost as much again in probes and QC frames, and take the path
# the clean run covers; bench/README.md 2026-12-07).
start_fake fault --job-faults '[{"fault": "job_fails", "preset": "comfyui", "skip": 1}]'
from_base fault "$PORT"
set +e
OUT=$(timeout 120 "$AVPS" run "$P" --jobs 4 --scene S01 --until shots_proxy 2>&1)
code=$?
set -e
[ "$code" != 124 ] || fail "the run with a failed prompt hung"
[ "$code" = 0 ] || fail "a failed prompt was not handled as a failed attempt: exit $code: $OUT"
expect_out "failed: node 3 (KSampler): RuntimeError: the fake failed this job on request"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.failed' AND json_extract(body,'$.ticket') IS NOT NULL AND json_extract(body,'$.shot_attempt.attempt') IS NOT NULL")" = 1 ] \
  || fail "no exchange.failed with its shot attempt for the failed prompt"
grep -q ",generate,.*,ERROR,.*job failed, reservation released.*attempt [0-9]* failed" "$P/logs/RUN_LOG_v001.csv" \
  || fail "no run-log row says why: $(tail -3 "$P/logs/RUN_LOG_v001.csv")"
[ "$(open_reservations "$P")" = 0 ] || fail "the failed prompt's reservation was left open"
[ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "fault: submissions != tickets"
echo "ok"
