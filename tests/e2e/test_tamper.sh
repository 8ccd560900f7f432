#!/usr/bin/env bash
# The tamper suite (tests/e2e/tamper_suite.py) on a demo production of its first scene (every
# kind of file a project holds, renders included, at a third of the size, so each gate is quick):
# 200 seeded random mutations, each caught by `avps gate` naming what was touched.
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
echo "ok"
