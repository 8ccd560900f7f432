#!/usr/bin/env bash
# A resume knows up-to-date steps by the names of their inputs (step.finished's inputs_by_name,
# docs/architecture.md "A resume with nothing to do"), and every step it knows so has the step key
# its inputs gathered whole make (AVPS_VERIFY_BY_NAME=1, set here as for every e2e test): after a
# whole production, a resume with nothing to do knows its steps by name and makes no call; after
# an edited lock, the steps that read it are not known by name (new names) and run again, and the
# next resume is again nothing to do, those steps now known by name.
source "$(dirname "$0")/lib.sh"
export AVPS_VERIFY_BY_NAME=1
json_field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$1"; }
P="$WORK/film"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # step keys, not clips
"$AVPS" init "$P" > /dev/null
expect_exit 0 "$AVPS" run "$P" --jobs 4 --scene S01
recorded=$(sqlite3 "$P/.avps/ledger.db" \
  "SELECT count(*) FROM events WHERE kind = 'step.finished' AND json_extract(body, '$.inputs_by_name') IS NOT NULL")
[ "$recorded" -gt 0 ] || fail "no step.finished records inputs_by_name"

steps_finished() { sqlite3 "$P/.avps/ledger.db" "SELECT count(*) FROM events WHERE kind = 'step.finished'"; }
finished_before=$(steps_finished)
expect_exit 0 "$AVPS" --json run "$P" --jobs 4 --scene S01
[ "$(json_field calls_made <<<"$OUT")" = 0 ] || fail "a resume with nothing to do made calls: $OUT"
[ "$(steps_finished)" = "$finished_before" ] || fail "a resume with nothing to do ran steps: $OUT"
known=$(json_field steps_known_by_name <<<"$OUT")
skipped=$(json_field steps_skipped <<<"$OUT")
[ "$known" -gt 0 ] || fail "no step known by name on a resume with nothing to do: $OUT"
[ "$known" = "$skipped" ] || fail "up-to-date steps not known by name ($known of $skipped): $OUT"

# An edit: new names for the steps that read the lock; they are gathered whole and run again.
lock=$(ls "$P/continuity/CHAR_MARA_QUILL_LOCK_v"*.txt | tail -n 1)
cat > "$WORK/editor.sh" <<'SH'
#!/bin/sh
sed -i 's/^\(distinguishing_marks: .*\)$/\1; a thin white scar across the left eyebrow/' "$1"
SH
chmod +x "$WORK/editor.sh"
expect_exit 0 env EDITOR="$WORK/editor.sh" "$AVPS" artifact edit "$P" CHAR_MARA_QUILL_LOCK --reason "new makeup"
expect_exit 0 "$AVPS" --json run "$P" --jobs 4 --scene S01
[ "$(json_field artifacts_written <<<"$OUT")" -gt 0 ] || fail "the edit reached nothing: $OUT"
after_edit_known=$(json_field steps_known_by_name <<<"$OUT")
[ "$after_edit_known" -lt "$known" ] || fail "the steps that read the edited lock were known by name: $OUT"

expect_exit 0 "$AVPS" --json run "$P" --jobs 4 --scene S01
[ "$(json_field calls_made <<<"$OUT")" = 0 ] || fail "a second resume made calls: $OUT"
# (A step whose inputs got new names but cut to the same content, the edited line being outside
# its fields, is up to date with no digest of those names recorded: it is gathered whole.)
[ "$(json_field steps_known_by_name <<<"$OUT")" -gt "$after_edit_known" ] ||
  fail "the steps the edit's run finished were not known by name: $OUT"
expect_exit 0 "$AVPS" gate "$P"

# A whole production of examples/feature_scale, cut to two scenes: the run after it has nothing to
# do, not even a built-in. model-router reads its own kind (the previous ROUTING_DECISION); it used
# to read on resume the decision its own step had written, which it had not when it ran, and so
# ran again after every whole production (WriterFacts::hidden_from).
P="$WORK/feature"
cp -r "$SRC/examples/feature_scale" "$P"
sed -i 's/^Scenes: .*/Scenes: 2/' "$P/brief.md"
png_renders "$P"
"$AVPS" init "$P" > /dev/null
expect_exit 0 "$AVPS" run "$P" --jobs 4
finished_before=$(steps_finished)
expect_exit 0 "$AVPS" --json run "$P" --jobs 4
[ "$(json_field calls_made <<<"$OUT")" = 0 ] || fail "the run after a whole production made calls: $OUT"
[ "$(steps_finished)" = "$finished_before" ] || fail "the run after a whole production ran steps: $OUT"
echo "ok"
