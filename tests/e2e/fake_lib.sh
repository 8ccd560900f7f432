# Shared helpers for the end-to-end tests that talk to the fake provider server
# (tests/support/fake_provider.*, fake_jobs.*, fake_images.*, run as avps_fake_provider): lib.sh,
# then starting fakes on loopback, reading their /stats, steering them through /control, and the
# ledger queries those tests compare with what a fake saw. A script sources this instead of
# lib.sh and gets the fake binary as its third argument. Before its first start_fake it sets
# FAKE_ARGS to the options every fake of the script takes (the keys it expects, a minimum poll
# interval, ...).
source "$(dirname "$0")/lib.sh"
FAKE="${3:?the avps_fake_provider binary is the third argument}"
FAKE_ARGS=()

# Every fake started is stopped when the script ends; AVPS_E2E_KEEP=1 keeps the scratch folder.
FAKE_PIDS=()
cleanup() {
  for pid in "${FAKE_PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  if [ -n "${AVPS_E2E_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# start_fake NAME [OPTION...]: a fake provider for the demo, with FAKE_ARGS and the OPTIONs
# (--faults JSON, --job-faults JSON, ...), logging its requests to $WORK/NAME.log; sets PORT. The
# fakes of a script keep their job renders in one folder (--render-cache): each is made once.
start_fake() {
  local name=$1
  shift
  rm -f "$WORK/$name.port"
  "$FAKE" --project "$SRC/examples/demo_short_film" --port-file "$WORK/$name.port" --log "$WORK/$name.log" \
    --render-cache "$WORK/fake-renders" "${FAKE_ARGS[@]}" "$@" 2> "$WORK/$name.err" &
  FAKE_PIDS+=($!)
  for _ in $(seq 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.05; done
  [ -s "$WORK/$name.port" ] || fail "the fake provider did not start: $(cat "$WORK/$name.err")"
  PORT=$(cat "$WORK/$name.port")
}
# stop_last_fake: stops the fake started last (its port is then free).
stop_last_fake() { kill "${FAKE_PIDS[-1]}" 2> /dev/null || true; wait "${FAKE_PIDS[-1]}" 2> /dev/null || true; }
# stat PORT EXPR: a Python expression over the fake's GET /stats: `s` is the whole document, `i` its
# image counts, `j` its job counts, `c` the ComfyUI part of those.
stat() {
  python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
s = json.load(urllib.request.urlopen("http://127.0.0.1:%s/stats" % sys.argv[1]))
i, j = s.get("images", {}), s.get("jobs", {})
c = j.get("comfyui", {})
print(eval(sys.argv[2]))
PY
}
# control PORT JSON: POSTs JSON to the fake's /control (faults, job timing, ...).
control() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%s/control" % sys.argv[1], data=sys.argv[2].encode(),
                                              headers={"Content-Type": "application/json"})).read()
PY
}

# q PROJECT SQL: a query on PROJECT's ledger.
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
# digest PROJECT: the files that must be identical between runs: everything but the ledger, its log
# face, and the models file (it names the fake's port).
digest() { (cd "$1" && find . -path ./.avps -prune -o -path ./logs -prune -o -name models.json -prune -o -type f -print | sort | xargs sha256sum); }
open_reservations() { q "$1" "SELECT count(*) FROM reservations r LEFT JOIN reservation_ends e ON e.id=r.id WHERE e.id IS NULL"; }
# tickets PROJECT: the provider jobs PROJECT's ledger holds a ticket for.
tickets() { q "$1" "SELECT count(*) FROM events WHERE kind='exchange.ticket'"; }
# no_canary PATH...: no file under PATH, nor $OUT, holds $CANARY (the distinctive part of the keys).
no_canary() {
  if grep -rl "$CANARY" "$@" 2> /dev/null; then fail "a key reached the files above"; fi
  if grep -q "$CANARY" <<<"$OUT"; then fail "a key reached the output: $OUT"; fi
}
