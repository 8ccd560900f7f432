# The demo with its renders as provider jobs: video models on the async_job `runway` preset against
# the fake job APIs (tests/support/fake_jobs.*), text on openai_chat, vision and QC on
# anthropic_messages. Proves: an end-to-end run, `avps gate` and `avps replay`; kill -9 at several
# moments while jobs are polled, then a resume that submits nothing twice and ends with the
# artifacts of the uninterrupted run; the poll interval respected; no key anywhere. Failed jobs,
# the other presets and Ctrl-C are test_async_jobs_faults.sh (a test of its own, so that the two
# run in parallel). Every scenario starts from one base (make_base: the steps before the renders,
# made once), and the kills run only to the first scene's proxy renders (FIRST_PROXIES, below).
source "$(dirname "$0")/async_jobs_lib.sh"

# --- The demo end to end, renders on the runway preset --------------------------------------------
# One worker, so that the call order is the kill runs' own (below): a provider bills a prompt-cache
# write to whichever of several same-prompt calls reaches it first, so with concurrent scene calls
# the cost reports' actuals follow the arrival order, and the comparisons below would be flaky.
# (The base is made with one worker too: the engine.after_response kill below is compared with it.)
make_base
BASE_FILES=$(digest "$BASE")
start_fake clean
from_base clean "$PORT"
# In two steps, so that the kills below, which stop after the first scene's proxy renders, can be
# compared with this run's files there. The kills all land in those proxies, and the resumed run
# collects their jobs there; the other renders take the path those take, which this run covers.
expect_exit 0 "$AVPS" run "$P" --jobs 1 "${FIRST_PROXIES[@]}"
PROXIES=$(digest "$P")
expect_exit 0 "$AVPS" run "$P" --jobs 1
expect_out "done:"
expect_exit 0 "$AVPS" gate "$P"
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
# Replayed for an audit (each job's ticket and answer from the record, no provider, no key): after
# the kill at engine.after_poll:2 below, which replays the killed run and the resumed one (a replay
# of this run as well would re-execute the same jobs once more).

# --- Kill -9 while jobs are polled, at several moments; resume submits nothing twice -------------
# With one worker a ticket is recorded before the next submit leaves, so every kill leaves each job
# the fake created with its ticket in the ledger: exactly one submission per attempt. CI kills after
# a ticket, after a poll (with the replay) and after a later poll (with the provider's word in
# `avps status`); AVPS_E2E_JOB_KILLS=all adds a later ticket and a kill after the demo's second
# response, a chat answer before any job (test_run_narrative kills there too, on the sim, and
# test_providers at random moments over HTTP). The job kills start from the base and stop after the
# first scene's proxy renders, with the clean run's files there (PROXIES); the chat kill starts from
# scratch and stops where the base does, with its files.
crashes=(engine.after_ticket:1 engine.after_poll:2 engine.after_poll:7)
if [ "${AVPS_E2E_JOB_KILLS:-}" = all ]; then
  crashes=(engine.after_ticket:1 engine.after_ticket:3 engine.after_poll:2 engine.after_poll:7 engine.after_response:2)
elif [ -n "${AVPS_E2E_JOB_KILLS:-}" ]; then
  fail "AVPS_E2E_JOB_KILLS is \"all\" or unset, not \"$AVPS_E2E_JOB_KILLS\""
fi
for crash in "${crashes[@]}"; do
  name="kill_${crash//[:.]/_}"
  start_fake "$name"
  if [ "${crash%%:*}" = engine.after_response ]; then
    project "$name" "$PORT"
    until=(--until planning)
    want="$BASE_FILES"
  else
    from_base "$name" "$PORT"
    until=("${FIRST_PROXIES[@]}")
    want="$PROXIES"
  fi
  set +e
  AVPS_CRASH_AT=$crash "$AVPS" run "$P" --jobs 1 "${until[@]}" > "$WORK/$name.out" 2>&1
  code=$?
  set -e
  # Every kill lands within the first scene's proxies (5 jobs, 10 polls) or the base's chat calls.
  [ "$code" = 137 ] || fail "$crash: the kill did not happen (exit $code): $(tail -5 "$WORK/$name.out")"
  in_flight=$(q "$P" "SELECT count(*) FROM events t WHERE t.kind='exchange.ticket' AND NOT EXISTS (SELECT 1 FROM events r WHERE r.kind IN ('exchange.response','exchange.failed') AND json_extract(r.body,'$.key')=json_extract(t.body,'$.key'))")
  if [ "${crash%%:*}" != engine.after_response ]; then
    [ "$in_flight" -ge 1 ] || fail "$crash: no job in flight after the kill"
    expect_exit 0 "$AVPS" status "$P"
    expect_out "in flight"
    if [ "$crash" = engine.after_poll:7 ]; then
      expect_out "running (RUNNING) at "  # the provider's word at the last recorded poll
    fi
  fi
  expect_exit 0 "$AVPS" run "$P" --jobs 1 "${until[@]}"  # one worker: the reference's call order (above)
  [ "$(stat "$PORT" 'j["submissions"]')" = "$(tickets "$P")" ] || fail "$crash: submissions != tickets"
  [ "$(open_reservations "$P")" = 0 ] || fail "$crash: a reservation was left open"
  expect_exit 0 "$AVPS" gate "$P"
  if [ "$crash" = engine.after_poll:2 ]; then
    # The killed run and the resumed one, which polled a ticket of the killed one (RUN_0002 is the
    # base's, all chat, which test_providers replays).
    expect_exit 0 env -i PATH="$PATH" "$AVPS" replay "$P" --run 3
    expect_out "REPRODUCED RUN_0003 (UNFINISHED)"
    expect_exit 0 env -i PATH="$PATH" "$AVPS" replay "$P" --run 4
    expect_out "REPRODUCED RUN_0004 (DONE)"
  fi
  [ "$want" = "$(digest "$P")" ] || fail "$crash: the artifacts differ from the uninterrupted run's:
$(diff <(echo "$want") <(digest "$P"))"
done

# With four workers a kill may fall between a provider's reply and its ticket's record (the one
# window no client can close): that job is submitted again on resume, its intent flagged
# possible_duplicate. Every other job is polled, not resubmitted. From the base to the first scene's
# proxies, as the kills above (its 5 jobs polled twice each: the kill at the 9th poll lands).
start_fake kill_jobs4
from_base kill_jobs4 "$PORT"
set +e
AVPS_CRASH_AT=engine.after_poll:9 "$AVPS" run "$P" --jobs 4 "${FIRST_PROXIES[@]}" > "$WORK/kill_jobs4.out" 2>&1
code=$?
set -e
[ "$code" = 137 ] || fail "the --jobs 4 kill did not happen (exit $code)"
expect_exit 0 "$AVPS" run "$P" --jobs 4 "${FIRST_PROXIES[@]}"
flagged=$(q "$P" "SELECT count(*) FROM events i WHERE i.kind='exchange.intent' AND json_extract(i.body,'$.possible_duplicate')=1 AND json_extract(i.body,'$.skill') LIKE 'generate %'")
[ "$(stat "$PORT" 'j["submissions"]')" = "$(( $(tickets "$P") + flagged ))" ] \
  || fail "--jobs 4 kill: $(stat "$PORT" 'j["submissions"]') submissions, $(tickets "$P") tickets, $flagged flagged"
# Its scene phases ran with four calls in flight, so which scene's call the fake billed as the
# prompt-cache write (and so the cost reports' actuals) follows arrival order: compared without them.
spendless() { grep -v -e BUDGET_STATUS_ -e COST_REPORT_; }
[ "$(spendless <<<"$PROXIES")" = "$(digest "$P" | spendless)" ] || fail "--jobs 4 kill: the artifacts differ from the uninterrupted run's:
$(diff <(spendless <<<"$PROXIES") <(digest "$P" | spendless))"
no_canary "$WORK"
echo "ok"
