# The demo with its renders as provider jobs, as test_async_jobs.sh (whose uninterrupted run and
# kills this test does not need, so that the two run in parallel): a failed job, a job that never
# finishes, a 404 output and a non-video output each end recorded (reservation released, a run-log
# row saying why) without hanging; the luma_agents, fal, veo and openai_videos presets to the first
# scene's proxy renders; Ctrl-C with --cancel-on-interrupt and --keep-on-interrupt; the poll
# interval respected; no key anywhere. Every scenario starts from one base (make_base: the steps
# before the renders, made once), each on its own fresh fake with its own models file.
source "$(dirname "$0")/async_jobs_lib.sh"
make_base

# --- Faults: each a failed attempt the production loop handles, never a hang --------------------
# One job of the run fails in each way: its attempt fails (no render, no QC grade), its reservation
# is released, a run-log row says why, and the shot's next attempt renders it (and QC grades it);
# the run goes on. The failing job is the second, a proxy of the first scene, so each run stops
# after that scene's proxies and their QC (FIRST_PROXIES): the other renders take the same path,
# which test_async_jobs runs.
for fault in job_fails output_404 not_video never_finishes; do
  if [ "$fault" = not_video ] && ! command -v ffprobe > /dev/null; then continue; fi
  start_fake "fault_$fault" --job-faults "[{\"fault\": \"$fault\", \"skip\": 1}]"
  # A job's maximum wait ends the job that never finishes; the others keep the default, so that a
  # loaded machine cannot time out a second job (a second failed attempt where one was injected).
  max_wait=20
  if [ "$fault" = never_finishes ]; then max_wait=2; fi
  from_base "fault_$fault" "$PORT" runway "$max_wait"
  set +e
  OUT=$(timeout 300 "$AVPS" run "$P" --jobs 4 "${FIRST_PROXIES[@]}" 2>&1)
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
expect_exit 0 "$AVPS" run "$P" "${FIRST_PROXIES[@]}"
expect_out "0 calls made"
expect_exit 0 env -i PATH="$PATH" "$AVPS" replay "$P"
expect_out "REPRODUCED RUN_0002 (DONE)"  # the base's (RUN_0001 is init)
expect_out "REPRODUCED RUN_0003 (DONE)"  # the run with the failed job

# --- Other presets end to end through the same fake ----------------------------------------------
# Each to the first scene's proxies and their QC: its 5 jobs, 4 at once, from submit to download.
for preset in luma_agents fal veo openai_videos; do
  start_fake "preset_$preset"
  from_base "preset_$preset" "$PORT" "$preset"
  expect_exit 0 "$AVPS" run "$P" --jobs 4 "${FIRST_PROXIES[@]}"
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
  from_base "interrupt_$choice" "$PORT" runway 600
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
    # The kept jobs are the first scene's proxies: the run after collects them there (what follows
    # would add new jobs, not kept ones).
    expect_exit 0 "$AVPS" run "$P" --jobs 4 "${FIRST_PROXIES[@]}"
    [ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "kept jobs: submissions != tickets"
    [ "$(open_reservations "$P")" = 0 ] || fail "a kept job's reservation was left open"
  fi
done
no_canary "$WORK"
echo "ok"
