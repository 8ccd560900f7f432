#!/usr/bin/env bash
# Fewer, grouped syncs (issue 14 item 3; docs/formats/ledger.md, "Durability and group commit"):
# the demo's narrative and planning run with every fsync counted (AVPS_FAULT_AT=count: avps's own
# files' fsyncs and every sync of the ledger's log), at --jobs 1 and at --jobs 8.
# - At --jobs 1 a call costs at most 6 syncs (4.9 measured; about 7 while each group of answers
#   and each step.finished had a sync of its own, 14.4 before objects moved into the ledger, 31.4
#   before the ledger grouped its syncs: a sync per commit, HEAD and the CSV face after each).
# - At --jobs 8 the calls that leave and come back together share their syncs: fewer in all.
# - Both runs end with the same files, HEAD naming the ledger's last event and the CSV face whole
#   (the mirrors are exact once a command ends), and the gate passes.
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
digest() { (cd "$1" && find . -path ./.avps -prune -o -path ./logs -prune -o -type f -print | sort | xargs sha256sum); }

# run JOBS: a fresh demo run to the end of planning; prints "fsyncs calls".
run() {
  local p="$WORK/j$1"
  cp -r "$SRC/examples/demo_short_film" "$p"
  "$AVPS" init "$p" > /dev/null
  local out code
  set +e
  out=$(AVPS_FAULT_AT=count "$AVPS" run "$p" --until planning --jobs "$1" 2>&1)
  code=$?
  set -e
  [ "$code" = 0 ] || fail "--jobs $1: the run exited $code: $out"
  local fsyncs
  fsyncs=$(sed -n 's/^avps: fault plan counted [0-9]* writes, \([0-9]*\) fsyncs, [0-9]* renames$/\1/p' <<<"$out")
  [ -n "$fsyncs" ] || fail "--jobs $1: no counts reported: $out"
  echo "$fsyncs $(q "$p" "SELECT count(*) FROM events WHERE kind='exchange.response'")"
}

counted=$(run 1)
read -r sync1 calls1 <<<"$counted"
counted=$(run 8)
read -r sync8 calls8 <<<"$counted"
echo "--jobs 1: $sync1 syncs for $calls1 calls; --jobs 8: $sync8 syncs for $calls8 calls"
[ "$calls1" -gt 20 ] && [ "$calls1" = "$calls8" ] || fail "expected the same calls at both --jobs ($calls1, $calls8)"
[ "$sync1" -le $((6 * calls1)) ] || fail "--jobs 1: $sync1 syncs for $calls1 calls, more than 6 a call"
[ "$sync8" -lt "$sync1" ] || fail "--jobs 8 made $sync8 syncs, not fewer than --jobs 1's $sync1: nothing was grouped"

[ "$(digest "$WORK/j1")" = "$(digest "$WORK/j8")" ] || fail "--jobs 1 and --jobs 8 ended with different files"
for j in 1 8; do
  p="$WORK/j$j"
  head=$(q "$p" "SELECT seq || ' ' || hash FROM events ORDER BY seq DESC LIMIT 1")
  [ "$(sed -n 2p "$p/.avps/HEAD")" = "$head" ] || fail "--jobs $j: HEAD does not name the last event once the run ended"
  rows=$(q "$p" "SELECT count(*) FROM events WHERE json_extract(body, '$.row') IS NOT NULL")
  [ "$(($(wc -l < "$p/logs/RUN_LOG_v001.csv") - 1))" = "$rows" ] || fail "--jobs $j: the CSV face lacks rows once the run ended"
  expect_exit 0 "$AVPS" gate "$p"
done
echo "PASS"
