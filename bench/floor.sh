#!/usr/bin/env bash
# The machine's floor for durable writes, measured now in DIR (default: a temporary folder on the
# same file system as /tmp): one durable SQLite commit (WAL, synchronous=FULL, as the ledger
# commits) and one durable small-file write (temp, fsync, rename, fsync folder, as an artifact is
# written). The other benchmarks print their per-call figures beside these. Asserts nothing.
# Usage: bash bench/floor.sh [DIR] [--count N]   (prints two lines: "commit_ms X" and "write_ms Y")
set -euo pipefail
dir=
count=200
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    *) dir=$1; shift ;;
  esac
done
own=
if [ -z "$dir" ]; then
  dir=$(mktemp -d)
  own=$dir
fi
trap '[ -z "$own" ] || rm -rf "$own"' EXIT
python3 - "$dir" "$count" <<'PY'
import os, sqlite3, sys, tempfile, time
work = tempfile.mkdtemp(dir=sys.argv[1])
n = int(sys.argv[2])
db = sqlite3.connect(os.path.join(work, "floor.db"), isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (x BLOB)")
t = time.perf_counter()
for i in range(n):
    db.execute("BEGIN"); db.execute("INSERT INTO t VALUES (?)", (os.urandom(512),)); db.execute("COMMIT")
commit_ms = 1000 * (time.perf_counter() - t) / n
d = os.open(work, os.O_RDONLY)
t = time.perf_counter()
for i in range(n):
    tmp, final = os.path.join(work, "f.tmp"), os.path.join(work, "f%d" % i)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, os.urandom(2048)); os.fsync(fd); os.close(fd)
    os.rename(tmp, final); os.fsync(d)
write_ms = 1000 * (time.perf_counter() - t) / n
print("commit_ms %.3f" % commit_ms)
print("write_ms %.3f" % write_ms)
import shutil; shutil.rmtree(work)
PY
