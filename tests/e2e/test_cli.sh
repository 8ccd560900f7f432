#!/usr/bin/env bash
# The command line: help, version, exit codes and init's refusals.
source "$(dirname "$0")/lib.sh"

expect_exit 0 "$AVPS" --version
expect_out "avps 0."
expect_out "allocator: "  # what a benchmark's figures were measured with
expect_exit 0 "$AVPS" --help
expect_out "Exit codes"
expect_exit 0 "$AVPS" help
expect_out "gate"
expect_exit 0 "$AVPS" help gate
expect_out "Integrity rules"
expect_exit 2 "$AVPS" help nosuch
expect_exit 2 "$AVPS"
expect_exit 2 "$AVPS" frobnicate
expect_exit 2 "$AVPS" gate --no-such-option

for cmd in init run status gate replay log cost override report; do
  expect_exit 0 "$AVPS" "$cmd" --help
  expect_out "Usage"
done
for cmd in "artifact show" "artifact import" "artifact edit" "skills list" "skills show" "skills validate"; do
  expect_exit 0 "$AVPS" $cmd --help
done

# A command on a folder that is no project says so and fails.
mkdir -p "$WORK/x"
expect_exit 4 "$AVPS" report "$WORK/x"
# Missing required options are usage errors.
expect_exit 2 "$AVPS" override "$WORK/x" --stop S1 --reason r
expect_exit 2 "$AVPS" init

# init: new folder, refusals, adoption of a folder holding only project inputs.
expect_exit 0 "$AVPS" init "$WORK/new" --title "New film"
grep -q '"title": "New film"' "$WORK/new/avps.json" || fail "title not written"
for d in narrative validation continuity production governance media logs; do
  [ -d "$WORK/new/$d" ] || fail "init did not create $d/"
done
[ -f "$WORK/new/brief.md" ] || fail "no brief.md"
expect_exit 4 "$AVPS" init "$WORK/new"
expect_out "already an avps project"

mkdir -p "$WORK/busy" && touch "$WORK/busy/notes.txt" "$WORK/busy/render.mp4"
expect_exit 4 "$AVPS" init "$WORK/busy"
expect_out "is not empty and is not an avps project"
expect_out "notes.txt, render.mp4"
[ ! -e "$WORK/busy/avps.json" ] || fail "init wrote into a refused folder"

cp -r "$SRC/examples/demo_short_film" "$WORK/adopt"
expect_exit 0 "$AVPS" init "$WORK/adopt"
expect_out "The Lighthouse Keeper's Daughter"
cmp -s "$SRC/examples/demo_short_film/avps.json" "$WORK/adopt/avps.json" || fail "init rewrote an existing avps.json"
expect_exit 4 "$AVPS" init "$WORK/adopt2" --set /budget/project_cap_usd=-5
expect_out "/budget/project_cap_usd"
[ ! -e "$WORK/adopt2/.avps" ] || fail "init left a ledger behind after a config error"

# A bad avps.json is a configuration error (4) naming the pointer, expected and found.
mkdir -p "$WORK/bad" && echo '{"title": 5}' > "$WORK/bad/avps.json"
expect_exit 4 "$AVPS" init "$WORK/bad"
expect_out "/title: expected string"
expect_out "found 5"
expect_exit 4 "$AVPS" init "$WORK/bad2" --set /nope=1
expect_out "/nope"

# An init killed while it makes its ledger leaves no ledger.db, never an empty or half-made one
# (which every command refuses as evidence): running init again finishes the project. Killed after
# the ledger is published, init again resumes it (no project.initialized yet).
for point in ledger.create.built ledger.create.before_publish store.after_intent; do
  rm -rf "$WORK/killed"
  set +e
  AVPS_CRASH_AT="$point" "$AVPS" init "$WORK/killed" > /dev/null 2>&1
  got=$?
  set -e
  [ "$got" = 137 ] || fail "init did not die at $point (exit $got)"
  if [ "$point" != store.after_intent ]; then
    [ ! -e "$WORK/killed/.avps/ledger.db" ] || fail "an init killed at $point left a ledger.db"
  fi
  expect_exit 0 "$AVPS" init "$WORK/killed"
  expect_exit 0 "$AVPS" gate "$WORK/killed"
  [ ! -e "$WORK/killed/.avps/ledger.db.new" ] || fail "the ledger being built at $point was left behind"
done

# Global flags work before or after the command; --json gives JSON.
expect_exit 0 "$AVPS" log "$WORK/new" --json
python3 -c 'import json,sys; rows=json.loads(sys.argv[1]); assert len(rows)==2 and rows[0]["skill_name"]=="init" and len(rows[0]["entry_hash"])==64' "$OUT"
expect_exit 0 "$AVPS" --quiet gate "$WORK/new"
[ -z "$OUT" ] || fail "--quiet printed: $OUT"
expect_exit 0 env NO_COLOR=1 "$AVPS" gate "$WORK/new"
if grep -q $'\033' <<<"$OUT"; then fail "colour despite NO_COLOR"; fi
echo ok
