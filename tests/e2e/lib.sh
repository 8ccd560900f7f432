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
