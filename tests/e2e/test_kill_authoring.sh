#!/usr/bin/env bash
# The crash suite of the commands a person runs (DESIGN §5 "Crash safety"): `avps artifact
# import`, `avps artifact edit` and `avps override`, each killed with SIGKILL at every labelled
# crash point it passes (docs/formats/ledger.md), every time it passes it ("label:n" for n = 1, 2,
# ... until the command completes without reaching it). After each kill:
# - `avps gate` passes, or reports only what the next writing command completes (--json
#   "transient": a HEAD or CSV face behind the ledger, an interrupted write);
# - the next writing command (the same command again; for an edit, importing the copy it kept)
#   completes, and then the gate passes;
# - no version is lost or duplicated: exactly the one new version, with the person's text; an
#   override recorded once, with its BUDGET_STATUS under the new cap;
# - an edit killed after its editor ran has kept its working copy where it said it would.
# AVPS_KILL_MAX_N=N kills at most at the first N passes of each label (CI: all of them). The
# projects are on tmpfs where there is one: a SIGKILL keeps the page cache, so what is under test
# is the same there, and the suite runs in a fraction of the time.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
source "$(dirname "$0")/lib.sh"
export TMPDIR="$WORK/tmp"  # where `artifact edit` keeps its working copies
mkdir -p "$TMPDIR"
q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
max_n=${AVPS_KILL_MAX_N:-99}
labels="ledger.before_commit ledger.after_commit ledger.after_head append.torn atomic.before_fsync
atomic.before_publish atomic.after_link atomic.before_dir_sync store.after_intent store.after_object store.after_face"
FACE="$SRC/tests/fixtures/faces/CHAR_ALEX_LOCK_v001.txt"

# gate_recoverable DIR: the gate passes, or every violation it reports is transient.
gate_recoverable() {
  set +e
  local out
  out=$("$AVPS" --json gate "$1" 2>&1)
  local code=$?
  set -e
  [ "$code" = 0 ] && return 0
  [ "$code" = 1 ] || fail "$point: gate exited $code after the kill: $out"
  python3 - "$out" "$point" <<'PY' || fail "$point: the gate reports more than an interrupted write: $out"
import json, sys
d = json.loads(sys.argv[1])
bad = [v for v in d["violations"] if not v.get("transient")]
sys.exit(1 if bad or not d["violations"] else 0)
PY
}

# kill_suite NAME BASE COMMAND: for every label and n, a copy of BASE at $P, COMMAND run in it
# with AVPS_CRASH_AT=label:n; then resume_NAME and check_NAME. The first n at which COMMAND
# completes ends the label (and is checked as an uninterrupted run).
kill_suite() {
  local name=$1 base=$2 command=$3 kills=0 fired=""
  for label in $labels; do
    local n=1
    while [ "$n" -le "$max_n" ]; do
      point="$label:$n"
      P="$WORK/$name-$label-$n"
      cp -a "$base" "$P"
      set +e
      KILL_OUT=$(AVPS_CRASH_AT="$point" "$command" "$P" 2>&1)
      local code=$?
      set -e
      if [ "$code" != 137 ]; then
        [ "$code" = 0 ] || fail "$point: $name exited $code without being killed: $KILL_OUT"
        "check_$name" "$P"
        rm -rf "$P"
        break
      fi
      kills=$((kills + 1))
      gate_recoverable "$P"
      "resume_$name" "$P"
      "check_$name" "$P"
      expect_exit 0 "$AVPS" gate "$P"
      rm -rf "$P"
      n=$((n + 1))
    done
    [ "$n" -gt 1 ] && fired="$fired $label:$((n - 1))"
  done
  [ "$kills" -gt 0 ] || fail "$name passed no crash point"
  echo "kill suite $name: $kills kills:$fired"
  total_kills=$((total_kills + kills))
}
total_kills=0

# --- avps artifact import: a first CHAR_ALEX_LOCK, written by hand.
BASE_IMPORT="$WORK/base-import"
"$AVPS" init "$BASE_IMPORT" --title "Kill test" > /dev/null
run_import() { "$AVPS" artifact import "$1" "$FACE" --reason "cast decision"; }
resume_import() { expect_exit 0 run_import "$1"; }
check_import() {
  [ "$(q "$1" "SELECT count(*) FROM artifacts WHERE kind='CHAR_LOCK'")" = 1 ] \
    || fail "$point: expected one CHAR_ALEX_LOCK version, the ledger has: $(q "$1" "SELECT name FROM artifacts WHERE kind='CHAR_LOCK'")"
  [ -f "$1/continuity/CHAR_ALEX_LOCK_v001.txt" ] && [ ! -e "$1/continuity/CHAR_ALEX_LOCK_v002.txt" ] \
    || fail "$point: expected continuity/CHAR_ALEX_LOCK_v001.txt alone: $(ls "$1/continuity")"
  grep -q "grey at the temples" "$1/continuity/CHAR_ALEX_LOCK_v001.txt" || fail "$point: v001 is not the imported face"
  [ "$(q "$1" "SELECT json_extract(body,'$.artifact.author') FROM events WHERE kind='artifact.recorded' AND json_extract(body,'$.artifact.kind')='CHAR_LOCK'")" = human ] \
    || fail "$point: the imported version is not marked human-authored"
}
kill_suite import "$BASE_IMPORT" run_import

# --- avps artifact edit: v002 of that lock, edited by a script as $EDITOR.
BASE_EDIT="$WORK/base-edit"
cp -a "$BASE_IMPORT" "$BASE_EDIT"
run_import "$BASE_EDIT" > /dev/null
cat > "$WORK/editor.sh" <<'SH'
#!/bin/sh
sed -i 's/^temperament: Patient until cornered$/temperament: Patient until betrayed/' "$1"
SH
chmod +x "$WORK/editor.sh"
run_edit() { EDITOR="$WORK/editor.sh" "$AVPS" artifact edit "$1" CHAR_ALEX_LOCK --reason "rewrite after S04"; }
resume_edit() {
  # The path the edit announced; once its editor has run, the copy must still be there, edited.
  local copy
  copy=$(sed -n 's/^avps: editing a copy of CHAR_ALEX_LOCK_v001.txt at \(.*\) (kept there unless it is recorded)$/\1/p' <<<"$KILL_OUT")
  if [ -n "$copy" ] && [ -f "$copy" ] && grep -q "until betrayed" "$copy"; then
    expect_exit 0 "$AVPS" artifact import "$1" "$copy" --reason "rewrite after S04"
  else
    case "$point" in
      atomic.*:1) ;;  # killed writing the copy itself, before the editor ran: nothing to keep
      *) fail "$point: the edit's working copy is lost (announced: '$copy'): $KILL_OUT";;
    esac
    expect_exit 0 run_edit "$1"
  fi
}
check_edit() {
  [ "$(q "$1" "SELECT group_concat(name, ' ') FROM artifacts WHERE kind='CHAR_LOCK'")" = \
    "CHAR_ALEX_LOCK_v001.txt CHAR_ALEX_LOCK_v002.txt" ] \
    || fail "$point: expected v001 and v002, the ledger has: $(q "$1" "SELECT name FROM artifacts WHERE kind='CHAR_LOCK'")"
  grep -q "until betrayed" "$1/continuity/CHAR_ALEX_LOCK_v002.txt" || fail "$point: v002 lacks the edit"
  [ ! -e "$1/continuity/CHAR_ALEX_LOCK_v003.txt" ] || fail "$point: the edit was recorded twice"
}
kill_suite edit "$BASE_EDIT" run_edit

# --- avps override: a budget stop (a project cap below the first call), lifted by raising the cap.
BASE_STOP="$WORK/base-stop"
cp -r "$SRC/examples/demo_short_film" "$BASE_STOP"
python3 - "$BASE_STOP/avps.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["budget"]["project_cap_usd"] = 0.0001; json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
"$AVPS" init "$BASE_STOP" > /dev/null
expect_exit 3 "$AVPS" run "$BASE_STOP"
STOP="STOP-$(q "$BASE_STOP" "SELECT seq FROM events WHERE kind='run.hard_stop'")"
[ "$STOP" != STOP- ] || fail "no budget stop to override"
run_override() { "$AVPS" override "$1" --stop "$STOP" --reason "the producer approved it" --raise-cap 250; }
resume_override() {
  set +e
  OUT=$(run_override "$1" 2>&1)
  local code=$?
  set -e
  # Recorded by the killed command already: refused as such, which is the record being whole.
  [ "$code" = 0 ] || { [ "$code" = 2 ] && grep -q "was already overridden" <<<"$OUT"; } \
    || fail "$point: override again exited $code: $OUT"
}
check_override() {
  [ "$(q "$1" "SELECT count(*) FROM events WHERE kind='stop.override'")" = 1 ] \
    || fail "$point: expected one stop.override, got $(q "$1" "SELECT count(*) FROM events WHERE kind='stop.override'")"
  [ "$(q "$1" "SELECT group_concat(name, ' ') FROM artifacts WHERE kind='BUDGET_STATUS'")" = BUDGET_STATUS_v001.md ] \
    || fail "$point: expected BUDGET_STATUS_v001.md under the new cap, the ledger has: $(q "$1" "SELECT name FROM artifacts WHERE kind='BUDGET_STATUS'")"
  grep -q "override $STOP" "$1/governance/BUDGET_STATUS_v001.md" || fail "$point: BUDGET_STATUS_v001.md does not name the override"
}
kill_suite override "$BASE_STOP" run_override

echo "authoring kill suite: $total_kills kills over import, edit and override, each recovered to one whole version"
