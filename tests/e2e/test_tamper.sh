#!/usr/bin/env bash
# The tamper suite (tests/e2e/tamper_suite.py) on a demo production of its first scene (every
# kind of file a project holds, renders included, at a third of the size, so each gate is quick):
# 200 seeded random mutations, each caught by `avps gate` naming what was touched; then a face and
# a render changed behind the run's integrity mark, each an integrity stop of the next run.
# AVPS_TAMPER_COUNT and AVPS_TAMPER_SEED run longer or other samples (docs/testing.md).
source "$(dirname "$0")/lib.sh"

P="$WORK/demo"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # a render is bytes the gate hashes, MP4 or PNG
"$AVPS" init "$P" > /dev/null
expect_exit 0 "$AVPS" run "$P" --jobs 4 --scene S01
cp -r "$P" "$P.pristine"
python3 "$SRC/tests/e2e/tamper_suite.py" "$AVPS" "$P" --count "${AVPS_TAMPER_COUNT:-200}" \
  --seed "${AVPS_TAMPER_SEED:-1}"

# A run's own check, made from the mark the last clean one left (docs/formats/verified.md): a file
# recorded before the mark and changed since is an integrity stop naming it, as the whole check
# makes it; so is one changed in place with its size and mtime put back (its ctime shows it).
R="$P.pristine"
expect_exit 0 "$AVPS" run "$R" --scene S01
[ -s "$R/.avps/verified" ] || fail "a clean run left no integrity mark"
sleep 2.1  # every file settled: the next mark keeps their identities
expect_exit 0 "$AVPS" run "$R" --scene S01
face=$(sqlite3 "$R/.avps/ledger.db" "SELECT path FROM artifacts WHERE kind = 'SHOTLIST' ORDER BY event_seq LIMIT 1")
render=$(sqlite3 "$R/.avps/ledger.db" "SELECT json_extract(body, '$.path') FROM events WHERE kind = 'media.recorded' LIMIT 1")
[ -n "$face" ] && [ -n "$render" ] || fail "no SHOTLIST or render to change"
grep -q "^face	[0-9a-f]*	[0-9]" <(grep -F "	$face" "$R/.avps/verified") || fail "the mark keeps no identity for $face"
for file in "$face" "$render"; do
  cp -p "$R/$file" "$WORK/kept"
  printf 'x' | dd of="$R/$file" bs=1 seek=0 conv=notrunc status=none  # same size, same inode
  touch -r "$WORK/kept" "$R/$file"                                     # mtime put back
  expect_exit 3 "$AVPS" run "$R" --scene S01
  expect_out "no longer match the ledger (first: $file"
  cp -p "$WORK/kept" "$R/$file"
  expect_exit 0 "$AVPS" run "$R" --scene S01
  expect_out "resolved: the project's files match the ledger again"
done
expect_exit 0 "$AVPS" gate "$R"
echo "ok"
