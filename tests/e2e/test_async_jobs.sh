# The demo with its renders as provider jobs: video models on async_job presets (runway, then
# others) against the fake job APIs (tests/support/fake_jobs.*), text on openai_chat, vision and
# QC on anthropic_messages. Proves: an end-to-end run and `avps gate`; kill -9 at several moments
# while jobs are polled, then a resume that submits nothing twice and ends with the artifacts of an
# uninterrupted run; a failed job, a job that never finishes, a 404 output and a non-video output
# each end recorded (reservation released, a run-log row saying why) without hanging; Ctrl-C with
# --cancel-on-interrupt and --keep-on-interrupt; the poll interval respected; no key anywhere.
source "$(dirname "$0")/fake_lib.sh"

export OPENAI_API_KEY="sk-proj-AVPSLEAKCANARY-openai-a11c"
export ANTHROPIC_API_KEY="sk-ant-AVPSLEAKCANARY-anthropic-b22d"
export RUNWAY_API_KEY="key_AVPSLEAKCANARY-runway-c33e"
CANARY="AVPSLEAKCANARY"
MIN_POLL_MS=40  # every preset polls at 0.05 s here; the fake counts polls sooner than 40 ms
FAKE_ARGS=(--key-openai "$OPENAI_API_KEY" --key-anthropic "$ANTHROPIC_API_KEY" --key-jobs "$RUNWAY_API_KEY"
  --min-poll-interval-ms "$MIN_POLL_MS")

# project NAME PORT [PRESET] [MAX_WAIT_S]: the demo on examples/models/openai-anthropic.json, its
# render models on async_job PRESET at the fake; storyboard frames (images) stay on one sim model.
project() {
  P="$WORK/$1"
  rm -rf "$P"
  cp -r "$SRC/examples/demo_short_film" "$P"
  python3 - "$SRC/examples/models/openai-anthropic.json" "$P" "$2" "${3:-runway}" "${4:-20}" <<'PY'
import json, sys
src, project, port, preset, max_wait = sys.argv[1:6]
d = json.load(open(src))
for m in d["models"]:
    if m["backend"] == "openai_chat":
        m["endpoint"] = "http://127.0.0.1:%s/v1" % port
    elif m["backend"] == "anthropic_messages":
        m["endpoint"] = "http://127.0.0.1:%s" % port
    elif m["id"] == "sim-gen-low-alt":
        m["capabilities"]["video_out"] = False  # storyboard frames only
    else:
        m["backend"] = "async_job"
        m["preset"] = preset
        m["provider_model"] = "acme/gen-video" if preset in ("fal", "replicate") else "gen4_turbo"
        m["endpoint"] = "http://127.0.0.1:%s%s" % (port, "/fal" if preset == "fal" else "")
        m["api_key_env"] = "RUNWAY_API_KEY"
        m["capabilities"]["image_out"] = False
        m["options"] = {"poll": {"interval_s": 0.05, "max_wait_s": float(max_wait)},
                        "retry": {"max_retries": 1, "base_ms": 10}}
json.dump(d, open(project + "/models.json", "w"), indent=2)
c = json.load(open(project + "/avps.json"))
c["models"] = "models.json"
json.dump(c, open(project + "/avps.json", "w"), indent=2)
PY
  "$AVPS" init "$P" > /dev/null
}

# --- The demo end to end, renders on the runway preset --------------------------------------------
# One worker, so that the call order is the kill runs' own (below): a provider bills a prompt-cache
# write to whichever of several same-prompt calls reaches it first, so with concurrent scene calls
# the cost reports' actuals follow the arrival order, and the comparisons below would be flaky.
start_fake clean
CLEAN_PORT=$PORT
project clean "$PORT"
expect_exit 0 "$AVPS" run "$P" --jobs 1
expect_out "done:"
expect_exit 0 "$AVPS" gate "$P"
CLEAN="$P"
[ "$(stat "$PORT" 'j["invalid"]')" = 0 ] || fail "invalid job requests: $(stat "$PORT" 'j["invalid_reasons"]')"
[ "$(stat "$PORT" 's["invalid"]')" = 0 ] || fail "invalid chat requests: $(stat "$PORT" 's["invalid_reasons"]')"
[ "$(stat "$PORT" 'j["submissions"]')" -gt 0 ] || fail "no job was submitted"
# Exactly one submission per attempt: each job the fake created has its one ticket in the ledger.
# (Two attempts may send the same body, so the fake's duplicate count is no measure here.)
[ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "submissions $(stat "$PORT" 'j["submissions"]') != tickets $(tickets "$P")"
[ "$(stat "$PORT" 'j["polls_too_early"]')" = 0 ] || fail "a job was polled sooner than its interval"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response' AND json_extract(body,'$.ticket') IS NOT NULL AND json_extract(body,'$.provider_cost_micro_usd') > 0 AND json_extract(body,'$.media_sha256') IS NOT NULL")" = "$(tickets "$P")" ] \
  || fail "a job's response lacks its ticket, the provider's cost or its media"
if command -v ffprobe > /dev/null; then
  [ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response' AND json_extract(body,'$.job.probe.codec') != ''")" -gt 0 ] \
    || fail "no render was probed"
fi
ls "$P"/media/*_proxy_a01.mp4 > /dev/null || fail "no render under media/"
[ "$(open_reservations "$P")" = 0 ] || fail "a reservation was left open"
expect_exit 0 "$AVPS" run "$P"
expect_out "0 calls made"
no_canary "$P" "$WORK/clean.log"
# Replayed for an audit: each job's ticket and answer come from the record, no provider needed.
expect_exit 0 env -i PATH="$PATH" "$AVPS" replay "$P"
expect_out "REPRODUCED RUN_0002 (DONE)"

# --- Kill -9 while jobs are polled, at several moments; resume submits nothing twice -------------
# With one worker a ticket is recorded before the next submit leaves, so every kill leaves each job
# the fake created with its ticket in the ledger: exactly one submission per attempt.
for crash in engine.after_ticket:1 engine.after_ticket:3 engine.after_poll:2 engine.after_poll:7 engine.after_response:2; do
  name="kill_${crash//[:.]/_}"
  start_fake "$name"
  project "$name" "$PORT"
  set +e
  AVPS_CRASH_AT=$crash "$AVPS" run "$P" --jobs 1 > "$WORK/$name.out" 2>&1
  code=$?
  set -e
  [ "$code" = 137 ] || [ "$code" = 0 ] || fail "$crash: run ended $code: $(tail -5 "$WORK/$name.out")"
  in_flight=$(q "$P" "SELECT count(*) FROM events t WHERE t.kind='exchange.ticket' AND NOT EXISTS (SELECT 1 FROM events r WHERE r.kind IN ('exchange.response','exchange.failed') AND json_extract(r.body,'$.key')=json_extract(t.body,'$.key'))")
  if [ "$code" = 137 ] && [ "${crash%%:*}" != engine.after_response ]; then
    [ "$in_flight" -ge 1 ] || fail "$crash: no job in flight after the kill"
    expect_exit 0 "$AVPS" status "$P"
    expect_out "in flight"
    if [ "$crash" = engine.after_poll:7 ]; then
      expect_out "running (RUNNING) at "  # the provider's word at the last recorded poll
    fi
  fi
  expect_exit 0 "$AVPS" run "$P" --jobs 1  # one worker: the reference's call order (above)
  [ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "$crash: submissions != tickets"
  [ "$(open_reservations "$P")" = 0 ] || fail "$crash: a reservation was left open"
  expect_exit 0 "$AVPS" gate "$P"
  if [ "$crash" = engine.after_poll:2 ]; then
    expect_exit 0 env -i PATH="$PATH" "$AVPS" replay "$P"  # the resumed run polled a ticket of the killed one
    expect_out "REPRODUCED RUN_0003"
  fi
  [ "$(digest "$CLEAN")" = "$(digest "$P")" ] || fail "$crash: the artifacts differ from the uninterrupted run's:
$(diff <(digest "$CLEAN") <(digest "$P"))"
done

# With four workers a kill may fall between a provider's reply and its ticket's record (the one
# window no client can close): that job is submitted again on resume, its intent flagged
# possible_duplicate. Every other job is polled, not resubmitted.
start_fake kill_jobs4
project kill_jobs4 "$PORT"
set +e
AVPS_CRASH_AT=engine.after_poll:9 "$AVPS" run "$P" --jobs 4 > "$WORK/kill_jobs4.out" 2>&1
code=$?
set -e
[ "$code" = 137 ] || fail "the --jobs 4 kill did not happen (exit $code)"
expect_exit 0 "$AVPS" run "$P" --jobs 4
flagged=$(q "$P" "SELECT count(*) FROM events i WHERE i.kind='exchange.intent' AND json_extract(i.body,'$.possible_duplicate')=1 AND json_extract(i.body,'$.skill') LIKE 'generate %'")
[ "$(stat "$PORT" 'j["submissions"]')" = "$(( $(tickets "$P") + flagged ))" ] \
  || fail "--jobs 4 kill: $(stat "$PORT" 'j["submissions"]') submissions, $(tickets "$P") tickets, $flagged flagged"
# Its scene phases ran with four calls in flight, so which scene's call the fake billed as the
# prompt-cache write (and so the cost reports' actuals) follows arrival order: compared without them.
spendless() { digest "$1" | grep -v -e BUDGET_STATUS_ -e COST_REPORT_; }
[ "$(spendless "$CLEAN")" = "$(spendless "$P")" ] || fail "--jobs 4 kill: the artifacts differ from the uninterrupted run's:
$(diff <(spendless "$CLEAN") <(spendless "$P"))"

# --- Faults: each a failed attempt the production loop handles, never a hang --------------------
# One job of the run fails in each way: its attempt fails (no render, no QC grade), its reservation
# is released, a run-log row says why, and the shot's next attempt renders it; the run finishes.
for fault in job_fails output_404 not_video never_finishes; do
  if [ "$fault" = not_video ] && ! command -v ffprobe > /dev/null; then continue; fi
  start_fake "fault_$fault" --job-faults "[{\"fault\": \"$fault\", \"skip\": 1}]"
  project "fault_$fault" "$PORT" runway 2
  set +e
  OUT=$(timeout 300 "$AVPS" run "$P" --jobs 4 2>&1)
  code=$?
  set -e
  [ "$code" != 124 ] || fail "$fault: the run hung"
  [ "$code" = 0 ] || fail "$fault: the failed job was not handled as a failed attempt (exit $code): $(tail -5 <<<"$OUT")"
  failed=$(q "$P" "SELECT json_extract(body,'$.shot_attempt.shot_id') || '/' || json_extract(body,'$.shot_attempt.resolution') || '#' || json_extract(body,'$.shot_attempt.attempt') FROM events WHERE kind='exchange.failed' AND json_extract(body,'$.ticket') IS NOT NULL")
  [ "$(wc -l <<<"$failed")" = 1 ] && [ -n "$failed" ] || fail "$fault: expected one failed job attempt, got: $failed"
  grep -q ",generate,.*,ERROR,.*job failed, reservation released.*attempt [0-9]* failed" "$P/logs/RUN_LOG_v001.csv" \
    || fail "$fault: no run-log row says why: $(tail -3 "$P/logs/RUN_LOG_v001.csv")"
  # The attempt after the failed one rendered, and no QC grade was given to the failed one.
  shot=${failed%%/*}
  rest=${failed#*/}
  resolution=${rest%%#*}
  attempt=${rest#*#}
  [ ! -e "$P/media/${shot}_${resolution}_a$(printf %02d "$attempt").mp4" ] || fail "$fault: a failed attempt has a render"
  ls "$P/media/${shot}_${resolution}_a$(printf %02d $((attempt + 1))).mp4" > /dev/null || fail "$fault: $shot was not rendered again"
  [ "$(q "$P" "SELECT count(*) FROM events WHERE kind='step.finished' AND json_extract(body,'$.shot_attempt.shot_id')='$shot' AND json_extract(body,'$.shot_attempt.resolution')='$resolution' AND json_extract(body,'$.shot_attempt.attempt')=$attempt")" = 0 ] \
    || fail "$fault: the failed attempt was graded"
  [ "$(open_reservations "$P")" = 0 ] || fail "$fault: a reservation was left open"
  [ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "$fault: submissions != tickets"
  if [ "$fault" = never_finishes ]; then
    [ "$(stat "$PORT" 'j["cancels"]')" -ge 1 ] || fail "a job past its maximum wait was not canceled"
  fi
  expect_exit 0 "$AVPS" gate "$P"
done
# A resumed run counts the failed attempt from the record: nothing to do, nothing sent.
expect_exit 0 "$AVPS" run "$P"
expect_out "0 calls made"
expect_exit 0 env -i PATH="$PATH" "$AVPS" replay "$P"
expect_out "REPRODUCED RUN_0002 (DONE)"  # the run with the failed job (RUN_0001 is init)

# --- Other presets end to end through the same fake ----------------------------------------------
for preset in luma_agents fal veo openai_videos; do
  start_fake "preset_$preset"
  project "preset_$preset" "$PORT" "$preset"
  expect_exit 0 "$AVPS" run "$P" --jobs 4 --until shots_proxy
  [ "$(stat "$PORT" 'j["invalid"]')" = 0 ] || fail "$preset: invalid job requests: $(stat "$PORT" 'j["invalid_reasons"]')"
  [ "$(stat "$PORT" "j['by_preset'].get('$preset', 0)")" -gt 0 ] || fail "$preset: no job submitted"
  [ "$(stat "$PORT" 'j["polls_too_early"]')" = 0 ] || fail "$preset: a job was polled sooner than its interval"
  [ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "$preset: submissions != tickets"
  [ "$(open_reservations "$P")" = 0 ] || fail "$preset: a reservation was left open"
done

# --- Ctrl-C while jobs are polled ----------------------------------------------------------------
# wait_for_tickets PORT: until the fake has jobs in flight (bounded).
wait_for_jobs() {
  for _ in $(seq 600); do
    [ "$(stat "$1" 'j["in_flight"]')" -ge 1 ] && return 0
    sleep 0.1
  done
  fail "no job went in flight"
}
for choice in cancel keep; do
  start_fake "interrupt_$choice"
  control "$PORT" '{"polls_to_finish": 100000}'
  project "interrupt_$choice" "$PORT" runway 600
  "$AVPS" run "$P" --jobs 4 "--$choice-on-interrupt" > "$WORK/interrupt_$choice.out" 2>&1 &
  run_pid=$!
  wait_for_jobs "$PORT"
  sleep 0.3  # let the tickets be recorded (the fake counts a job at submit, avps records it after)
  kill -INT "$run_pid"
  set +e
  timeout 60 tail --pid="$run_pid" -f /dev/null
  wait "$run_pid"
  code=$?
  set -e
  [ "$code" = 130 ] || fail "Ctrl-C ($choice): exit $code: $(tail -5 "$WORK/interrupt_$choice.out")"
  submitted=$(stat "$PORT" 'j["submissions"]')
  if [ "$choice" = cancel ]; then
    [ "$(stat "$PORT" 'j["cancels"]')" = "$submitted" ] || fail "Ctrl-C: $(stat "$PORT" 'j["cancels"]') of $submitted jobs canceled"
    [ "$(open_reservations "$P")" = 0 ] || fail "Ctrl-C: a canceled job's reservation was left open"
  else
    [ "$(stat "$PORT" 'j["cancels"]')" = 0 ] || fail "--keep-on-interrupt canceled a job"
    [ "$(open_reservations "$P")" -ge 1 ] || fail "--keep-on-interrupt: no job kept open"
    control "$PORT" '{"polls_to_finish": 1}'
    expect_exit 0 "$AVPS" run "$P" --jobs 4
    [ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "kept jobs: submissions != tickets"
    [ "$(open_reservations "$P")" = 0 ] || fail "a kept job's reservation was left open"
  fi
done
no_canary "$WORK"
echo "ok"
