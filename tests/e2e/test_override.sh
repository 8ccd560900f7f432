#!/usr/bin/env bash
# `avps override`: help, and the refusals, which change nothing. (Recording a decision needs a hard
# stop in the ledger, which no command can fake: tests/unit/governance/override_test.cpp covers it.)
source "$(dirname "$0")/lib.sh"
P="$WORK/film"
cp -r "$SRC/examples/demo_short_film" "$P"
"$AVPS" init "$P" >/dev/null

expect_exit 0 "$AVPS" override --help
expect_out "--raise-cap"
expect_out "--allow-attempts"
expect_out "--accept"

snapshot() { (cd "$P" && find . -type f ! -name '*-wal' ! -name '*-shm' -print0 | sort -z | xargs -0 sha256sum); }
before=$(snapshot)

# A request that does not fit the record: exit 2, the reason named, nothing written.
expect_exit 2 "$AVPS" override "$P" --stop STOP-999 --reason "approved" --raise-cap 300
expect_out "there is no hard stop STOP-999"
expect_exit 2 "$AVPS" override "$P" --stop 42 --reason "approved" --allow-attempts 1
expect_out "is not a hard stop id"
expect_exit 2 "$AVPS" override "$P" --stop STOP-1 --reason "   " --allow-attempts 1
expect_out "needs a --reason"
expect_exit 2 "$AVPS" --json override "$P" --stop STOP-999 --reason "approved" --accept PLAUS_S03_v003.md
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["ok"] is False and d["exit_code"] == 2 and "STOP-999" in d["error"], d' "$OUT"
# The command line itself: a missing reason or stop, no decision, two decisions.
expect_exit 2 "$AVPS" override "$P" --stop STOP-1 --allow-attempts 1
expect_exit 2 "$AVPS" override "$P" --reason "approved" --allow-attempts 1
expect_exit 2 "$AVPS" override "$P" --stop STOP-1 --reason "approved"
expect_exit 2 "$AVPS" override "$P" --stop STOP-1 --reason "approved" --allow-attempts 1 --raise-cap 300

after=$(snapshot)
[ "$before" = "$after" ] || fail "a refused override changed the project:
$(diff <(echo "$before") <(echo "$after"))"

# Not a project: exit 4.
mkdir -p "$WORK/empty"
expect_exit 4 "$AVPS" override "$WORK/empty" --stop STOP-1 --reason "approved" --allow-attempts 1

# Status: no stop, no override, spend against the configured cap (250 USD in the example).
expect_exit 0 "$AVPS" --json status "$P"
python3 - "$OUT" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["hard_stops"] == [] and d["overrides"] == [], d
assert d["spend"]["project_cap_micro_usd"] == 250000000 == d["spend"]["configured_project_cap_micro_usd"], d
PY
expect_exit 0 "$AVPS" gate "$P"
