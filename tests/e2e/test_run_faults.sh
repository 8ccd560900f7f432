#!/usr/bin/env bash
# A failing disk under `avps run` (DESIGN §5 "Crash safety"; the fault plan of core/fs.hpp,
# AVPS_FAULT_AT=write:K | fsync:K | rename:K): the demo's narrative and planning (--jobs 4: calls
# in flight when the disk fails), with the K-th
# write, fsync or rename of the run failing with EIO — avps's own files and the ledger's SQLite
# commits alike. Each time the run stops with exit 4 and an error naming the file, never
# "internal error" and never a success that dropped the write; a plain `avps run` then resumes to
# the files of an uninterrupted run, pays for no recorded call twice, and the gate passes.
# CI: a seeded sample of 4 K's per operation (AVPS_FAULT_POINTS=N for N per operation,
# AVPS_FAULT_SEED for another sample). The project is on tmpfs where there is one: what is under
# test is what the error path leaves, not the disk's speed.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
source "$(dirname "$0")/lib.sh"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
fresh() { P="$WORK/$1"; rm -rf "$P"; cp -r "$SRC/examples/demo_short_film" "$P"; "$AVPS" init "$P" > /dev/null; }
digest() { (cd "$1" && find . -path ./.avps -prune -o -path ./logs -prune -o -type f -print | sort | xargs sha256sum); }
# As in the crash suite: a call left in flight is reconciled as spent in full, so the spend
# reports may differ; they are compared by count.
digest_but_spend() { digest "$1" | grep -v -e "BUDGET_STATUS_" -e "COST_REPORT_"; }

# The uninterrupted run, counting what it does.
fresh reference
REF="$P"
set +e
OUT=$(AVPS_FAULT_AT=count "$AVPS" run "$REF" --until planning 2>&1)
code=$?
set -e
[ "$code" = 0 ] || fail "the reference run exited $code: $OUT"
counted=$(sed -n 's/^avps: fault plan counted \([0-9]*\) writes, \([0-9]*\) fsyncs, \([0-9]*\) renames$/\1 \2 \3/p' <<<"$OUT")
read -r writes fsyncs renames <<<"$counted"
[ -n "$renames" ] && [ "$writes" -gt 0 ] && [ "$fsyncs" -gt 0 ] && [ "$renames" -gt 0 ] \
  || fail "the counting run reported no counts: $OUT"
calls_total=$(q "$REF" "SELECT count(*) FROM events WHERE kind='exchange.response'")

points=$(python3 - "${AVPS_FAULT_POINTS:-4}" "${AVPS_FAULT_SEED:-1}" "$writes" "$fsyncs" "$renames" <<'PY'
import random, sys
per_op, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
out = []
for op, n in zip(("write", "fsync", "rename"), map(int, sys.argv[3:6])):
    out += [f"{op}:{k}" for k in sorted(rng.sample(range(1, n + 1), min(per_op, n)))]
print(" ".join(out))
PY
)
n=0
for point in $points; do
  n=$((n + 1))
  fresh "fault$n"
  set +e
  OUT=$(AVPS_FAULT_AT="$point" "$AVPS" run "$P" --until planning --jobs 4 2>&1)
  code=$?
  set -e
  if [ "$code" = 0 ]; then
    # Only the checkpoint SQLite runs when the ledger closes may fail unnoticed: the commits are
    # durable in its write-ahead log by then, so nothing was lost. The files must say so.
    [ "$(digest_but_spend "$REF")" = "$(digest_but_spend "$P")" ] \
      || fail "$point: the run reported success, but its files differ from an uninterrupted run's"
  else
    [ "$code" = 4 ] || fail "$point: expected exit 4 (an environment error), got $code: $(tail -5 <<<"$OUT")"
    grep -q "internal error" <<<"$OUT" && fail "$point: $(grep "internal error" <<<"$OUT")"
    grep "^avps: error: " <<<"$OUT" | grep -F "$P" | grep -q -e "Input/output error" -e "disk I/O error" \
      || fail "$point: the error does not name the file that failed: $(tail -5 <<<"$OUT")"
  fi
  expect_exit 0 "$AVPS" run "$P" --until planning
  [ "$(digest_but_spend "$REF")" = "$(digest_but_spend "$P")" ] || fail "$point: the resumed run differs from an uninterrupted one:
$(diff <(digest_but_spend "$REF") <(digest_but_spend "$P"))"
  [ "$(ls "$REF/governance" | grep -c BUDGET_STATUS_)" = "$(ls "$P/governance" | grep -c BUDGET_STATUS_)" ] \
    || fail "$point: a different number of BUDGET_STATUS versions"
  responses=$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response'")
  distinct=$(q "$P" "SELECT count(DISTINCT json_extract(body,'$.key')) FROM events WHERE kind='exchange.response'")
  [ "$responses" = "$distinct" ] || fail "$point: a recorded call was made again ($responses responses, $distinct calls)"
  [ "$responses" = "$calls_total" ] || fail "$point: $responses calls recorded, an uninterrupted run records $calls_total"
  expect_exit 0 "$AVPS" gate "$P"
  rm -rf "$P"
done
echo "fault suite: $n faults in a run of $writes writes, $fsyncs fsyncs, $renames renames, each resumed to the same files: $points"
