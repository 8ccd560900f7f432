# Shared helpers for the end-to-end tests. Each test script gets the avps binary and the source
# root as $1 and $2, works in a fresh temp folder, and exits non-zero on the first failed check.
set -euo pipefail
AVPS="$1"
SRC="$2"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# What avps or a tool leaves in the temp folder goes with the test's own folder: an edit whose
# import is refused keeps the person's copy there (`avps artifact edit`), by design.
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
failures=0
# python3 called as the interpreter itself, not through a version manager's shim on PATH (pyenv's is
# a bash script that runs pyenv first: about 0.5 CPU s a call, over a second on a loaded machine,
# and the fake-provider tests call python3 dozens of times: stat, control, their models files).
PYTHON3=$(python3 -c 'import sys; print(sys.executable)')
python3() { "$PYTHON3" "$@"; }

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_exit CODE CMD... : runs CMD, captures stdout+stderr in $OUT, checks the exit code.
expect_exit() {
  local want=$1; shift
  set +e
  OUT=$("$@" 2>&1)
  local got=$?
  set -e
  [ "$got" = "$want" ] || fail "expected exit $want, got $got from: $*
$OUT"
}

# expect_out TEXT : $OUT contains TEXT.
expect_out() {
  grep -qF -- "$1" <<<"$OUT" || fail "expected output to contain '$1', got:
$OUT"
}

# configure DIR KEY.PATH VALUE ... : edits DIR/avps.json, setting each dotted KEY.PATH to VALUE
# (JSON), creating the objects on the way.
configure() {
  python3 - "$@" <<'PY'
import json, sys
path, edits = sys.argv[1] + "/avps.json", sys.argv[2:]
config = json.load(open(path))
for key, value in zip(edits[::2], edits[1::2]):
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = json.loads(value)
json.dump(config, open(path, "w"), indent=2)
PY
}

# png_renders DIR: the sim renders each shot as a PNG frame (sim.media "image") instead of an MP4
# clip: no ffmpeg start per render nor per QC call (about 0.12 CPU s each; the demo makes about 50
# renders). For a test that never looks at the video. test_report (its cut and contact sheet),
# test_replay (renders re-made bit-exact), test_run_production's reference run and the job-API
# tests (the fakes' clips, probed and sampled) keep MP4.
png_renders() { configure "$1" sim.media '"image"'; }

# Objects (canonical requests, answers, artifacts' JSON, renders up to 1 MiB) are kept in the
# ledger (schema 3, docs/formats/ledger.md "Objects"). object SHA: how avps names one in a finding.
object() { echo "object $1 (.avps/ledger.db)"; }
# object_save DIR SHA FILE: the object's bytes into FILE.
object_save() { sqlite3 "$1/.avps/ledger.db" "SELECT writefile('$3', bytes) FROM objects WHERE sha256='$2'" > /dev/null; }
# object_set DIR SHA FILE / object_delete DIR SHA: what someone with the sqlite3 shell can do to an
# object: the append-only trigger dropped for the edit and put back, so only its hash can tell.
object_set() {
  sqlite3 "$1/.avps/ledger.db" "DROP TRIGGER objects_no_update; UPDATE objects SET bytes = readfile('$3') WHERE sha256 = '$2';
    CREATE TRIGGER objects_no_update BEFORE UPDATE ON objects BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;"
}
object_delete() {
  sqlite3 "$1/.avps/ledger.db" "DROP TRIGGER objects_no_delete; DELETE FROM objects WHERE sha256 = '$2';
    CREATE TRIGGER objects_no_delete BEFORE DELETE ON objects BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;"
}
