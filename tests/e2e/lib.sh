# Shared helpers for the end-to-end tests. Each test script gets the avps binary and the source
# root as $1 and $2, works in a fresh temp folder, and exits non-zero on the first failed check.
set -euo pipefail
AVPS="$1"
SRC="$2"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0

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
