#!/usr/bin/env bash
# The fold checkpoint (docs/formats/checkpoint.md): `avps run` writes .avps/fold_checkpoint; `avps
# status`, `avps report` and their --json say the same, byte for byte, from it (no event after it),
# from an older one (the events after it folded onto it: a run's tail, an override's), and from
# none; a damaged, truncated, foreign or outdated one (other skills or configuration) is not used,
# the output the same. `avps gate` never reads it. Which way each reader went is its `-v` line.
source "$(dirname "$0")/lib.sh"

CP=.avps/fold_checkpoint

# Everything the read model shows, in one file: status (per scene and --steps), their --json,
# report --json and the HTML page (without frames: no ffmpeg).
views() {
  local p=$1 out=$2
  {
    for args in "--no-color status" "--no-color status --steps" "--json status" "--json status --steps" \
      "--json report"; do
      echo "== $args"
      # shellcheck disable=SC2086
      "$AVPS" $args "$p" 2> /dev/null || echo "exit $?"
    done
    echo "== report -o"
    "$AVPS" -q report "$p" -o "$WORK/page.html" --no-frames > /dev/null 2>&1 || echo "exit $?"
    cat "$WORK/page.html"
  } > "$out"
}

# read_way P: what `avps -v status` says of the checkpoint (its debug line).
read_way() { "$AVPS" -v status "$1" 2>&1 > /dev/null | grep "fold checkpoint" || true; }

# same_views P REFERENCE WHAT: the views of P equal REFERENCE (made without a checkpoint).
same_views() {
  views "$1" "$WORK/views"
  cmp -s "$WORK/views" "$2" || fail "$3: the views differ from those of a fold of every event:
$(diff "$2" "$WORK/views" | head -40)"
}

# --- A production in two runs: planning first, then the rest. ----------------------------------
P="$WORK/film"
cp -r "$SRC/examples/demo_short_film" "$P"
png_renders "$P"  # the views and the checkpoint, not the clips
"$AVPS" init "$P" > /dev/null
expect_exit 0 "$AVPS" -v run "$P" --until planning
expect_out "fold checkpoint as of event"
[ -s "$P/$CP" ] || fail "avps run wrote no $CP"
head -n 1 "$P/$CP" | grep -qE "^avps-fold-checkpoint 9( [0-9]+ [0-9a-f]{64}){3}$" \
  || fail "$CP does not start with its format line"
cp "$P/$CP" "$WORK/early"
early_seq=$(sqlite3 "file:$P/.avps/ledger.db?mode=ro" "SELECT max(seq) FROM events")
expect_exit 0 "$AVPS" -v run "$P" --jobs 4
expect_out "events folded after the previous checkpoint"
# The run started from the first run's checkpoint (its run.started the one event after it), and
# under AVPS_VERIFY_BY_NAME checked that record against the fold of every event.
expect_out "fold checkpoint as of event $early_seq used by the run: 1 events folded after it"
last_seq=$(sqlite3 "file:$P/.avps/ledger.db?mode=ro" "SELECT max(seq) FROM events")
[ "$last_seq" -gt "$early_seq" ] || fail "the second run recorded nothing"

# The reference: no checkpoint, every event folded.
mv "$P/$CP" "$WORK/full"
grep -q "not used (none)" <<<"$(read_way "$P")" || fail "no checkpoint, yet: $(read_way "$P")"
views "$P" "$WORK/reference"
grep -q '"stale_shots"' "$WORK/reference" || fail "the views carry no model: $(head -c 600 "$WORK/reference")"

# The run's own checkpoint: as of the last event, nothing folded after it.
cp "$WORK/full" "$P/$CP"
grep -q "as of event $last_seq used: 0 events folded after it" <<<"$(read_way "$P")" \
  || fail "the run's checkpoint was not used as it is: $(read_way "$P")"
same_views "$P" "$WORK/reference" "the run's checkpoint"

# The first run's: the second run's events are its tail.
cp "$WORK/early" "$P/$CP"
grep -q "as of event $early_seq used: $((last_seq - early_seq)) events folded after it" <<<"$(read_way "$P")" \
  || fail "the older checkpoint was not used with its tail: $(read_way "$P")"
same_views "$P" "$WORK/reference" "a checkpoint older than the ledger"

# Damaged. The format line gives each section's length and sha256: the fold, then the stale-shot
# record, which is read (and checked) only when events follow the checkpoint, then the run's
# record, which only a run reads.
damage() {  # damage FROM TO SECTION: a byte of section 0 (the fold), 1 (the record) or 2 (the run's) flipped
  python3 - "$@" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
eol = data.index(b"\n")
sizes = [int(size) for size in data[:eol].split(b" ")[2::2]]
section = int(sys.argv[3])
start = eol + 1 + sum(sizes[:section])
data[start + sizes[section] // 2] ^= 0x5A
open(sys.argv[2], "wb").write(data)
PY
}
damage "$WORK/full" "$P/$CP" 0
grep -q "not used (its content does not match its sha256: damaged)" <<<"$(read_way "$P")" \
  || fail "a damaged checkpoint: $(read_way "$P")"
same_views "$P" "$WORK/reference" "a damaged checkpoint"
damage "$WORK/early" "$P/$CP" 1
grep -q "not used (its stale-shot record does not match its sha256: damaged)" <<<"$(read_way "$P")" \
  || fail "a damaged stale-shot record, with events after the checkpoint: $(read_way "$P")"
same_views "$P" "$WORK/reference" "a damaged stale-shot record"
# With no event after it the record is neither read nor checked: a damaged one does not matter.
damage "$WORK/full" "$P/$CP" 1
grep -q "as of event $last_seq used: 0 events folded after it" <<<"$(read_way "$P")" \
  || fail "a damaged stale-shot record, no event after the checkpoint: $(read_way "$P")"
same_views "$P" "$WORK/reference" "a damaged stale-shot record it did not need"
head -c 5000 "$WORK/full" > "$P/$CP"
grep -q "not used (its length is not the one its format line gives" <<<"$(read_way "$P")" \
  || fail "a truncated checkpoint: $(read_way "$P")"
same_views "$P" "$WORK/reference" "a truncated checkpoint"
printf 'avps-fold-checkpoint 999 0 %064d 0 %064d 0 %064d\n' 0 0 0 > "$P/$CP"
grep -q "not used (not a format 9 checkpoint)" <<<"$(read_way "$P")" || fail "another version: $(read_way "$P")"
# A format 8 checkpoint's line (what the avps before this one wrote), the file whole and its
# hashes right: an older version is not read, whatever its content.
python3 - "$WORK/full" "$P/$CP" <<'PY'
import hashlib, sys
data = open(sys.argv[1], "rb").read()
eol = data.index(b"\n")
magic, _, *sections = data[:eol].split(b" ")
line = b" ".join([magic, b"8"] + sections)
open(sys.argv[2], "wb").write(line + b"\n" + data[eol + 1:])
PY
grep -q "not used (not a format 9 checkpoint)" <<<"$(read_way "$P")" || fail "a format 8 file: $(read_way "$P")"
same_views "$P" "$WORK/reference" "a format 8 checkpoint"
# A whole checkpoint, its hashes right, whose fold is malformed (what a bug would write): the
# Book's bytes cut short, or followed by bytes it did not save. Not used either way.
malformed() {  # malformed FROM TO HOW: the fold section cut by 7 bytes ("cut") or grown by 7 ("grown")
  python3 - "$@" <<'PY'
import hashlib, sys
data = open(sys.argv[1], "rb").read()
eol = data.index(b"\n")
magic, version, main_size, _, *others = data[:eol].split(b" ")
main = data[eol + 1:eol + 1 + int(main_size)]
rest = data[eol + 1 + int(main_size):]
main = main[:-7] if sys.argv[3] == "cut" else main + b"\x00" * 7
line = b" ".join([magic, version, str(len(main)).encode(), hashlib.sha256(main).hexdigest().encode()] + others)
open(sys.argv[2], "wb").write(line + b"\n" + main + rest)
PY
}
for how in cut grown; do
  malformed "$WORK/full" "$P/$CP" $how
  grep -q "not used (malformed: its fold is not one this avps saved)" <<<"$(read_way "$P")" \
    || fail "a malformed fold ($how): $(read_way "$P")"
  same_views "$P" "$WORK/reference" "a checkpoint with a malformed fold ($how)"
done

# --- Another project's checkpoint, at a sequence number this ledger has: its event differs. -----
Q="$WORK/other"
cp -r "$SRC/examples/demo_short_film" "$Q"
png_renders "$Q"  # the same configuration as $P: only the ledger differs
"$AVPS" init "$Q" > /dev/null
expect_exit 0 "$AVPS" run "$Q" --until narrative
cp "$Q/$CP" "$P/$CP"
grep -q "not used (the ledger's event" <<<"$(read_way "$P")" || fail "a foreign checkpoint: $(read_way "$P")"
same_views "$P" "$WORK/reference" "another project's checkpoint"

# --- What the folds depend on besides the record: the configuration, the project's skills. -----
cp "$WORK/full" "$P/$CP"
cp "$P/avps.json" "$WORK/avps.json"
configure "$P" budget.warn_pct 75
grep -q "not used (made with other skills" <<<"$(read_way "$P")" || fail "an edited configuration: $(read_way "$P")"
views "$P" "$WORK/views"
mv "$P/$CP" "$WORK/held"
views "$P" "$WORK/views-full"
cmp -s "$WORK/views" "$WORK/views-full" || fail "an outdated checkpoint changed the views"
mv "$WORK/held" "$P/$CP"
cp "$WORK/avps.json" "$P/avps.json"
grep -q "used: 0 events folded" <<<"$(read_way "$P")" || fail "the configuration restored: $(read_way "$P")"
mkdir -p "$P/policies"
cp "$SRC/policies/stage_graph.json" "$P/policies/stage_graph.json"
echo " " >> "$P/policies/stage_graph.json"
grep -q "not used (made with other skills" <<<"$(read_way "$P")" || fail "the project's stage graph: $(read_way "$P")"
rm -r "$P/policies"
grep -q "used: 0 events folded" <<<"$(read_way "$P")" || fail "the stage graph removed again: $(read_way "$P")"

# --- The gate never reads it: a checkpoint that lies changes nothing the gate says. -------------
expect_exit 0 "$AVPS" --json gate "$P"
GATE="$OUT"
cp "$WORK/early" "$P/$CP"
expect_exit 0 "$AVPS" -v --json gate "$P"
grep -q "fold checkpoint" <<<"$OUT" && fail "the gate read the checkpoint: $OUT"
expect_exit 0 "$AVPS" --json gate "$P"
[ "$OUT" = "$GATE" ] || fail "the gate's verdict moved with the checkpoint"

# --- A hard stop, then a person's decision: the override's events are the checkpoint's tail. ---
S="$WORK/stopped"
cp -r "$SRC/examples/demo_short_film" "$S"
"$AVPS" init "$S" > /dev/null
configure "$S" sim.failure_rates.plausibility-auditor 1.0 sim.failure_rates.narrative-red-team 0.0
expect_exit 3 "$AVPS" run "$S"
[ -s "$S/$CP" ] || fail "a run that stopped wrote no checkpoint"
stop=$({ "$AVPS" --json status "$S" 2> /dev/null || true; } | python3 -c 'import json,sys; print(json.load(sys.stdin)["hard_stops"][0]["id"])')
expect_exit 0 "$AVPS" override "$S" --stop "$stop" --reason "one more try" --allow-attempts 1
grep -q "events folded after it" <<<"$(read_way "$S")" || fail "the override's events: $(read_way "$S")"
views "$S" "$WORK/stopped-cp"
grep -q '"overrides": \[\]' "$WORK/stopped-cp" && fail "the override does not show: $(grep -m1 overrides "$WORK/stopped-cp")"
mv "$S/$CP" "$WORK/stopped-held"
views "$S" "$WORK/stopped-full"
cmp -s "$WORK/stopped-cp" "$WORK/stopped-full" || fail "a stop and an override: the views differ:
$(diff "$WORK/stopped-full" "$WORK/stopped-cp" | head -40)"
# --- A run with nothing to do: it records run.started and run.finished only, reads its own record
# from the checkpoint, and keeps that checkpoint as it is (not written again): readers fold the two
# events onto it and take its stale shots, with views equal to a fold of every event. -------------
cp "$WORK/full" "$P/$CP"
expect_exit 0 "$AVPS" -v run "$P"
expect_out "fold checkpoint as of event $last_seq used by the run: 1 events folded after it"
expect_out "fold checkpoint as of event $last_seq kept as it is: the 2 events after it are runs with nothing to do"
cmp -s "$WORK/full" "$P/$CP" || fail "a run with nothing to do wrote the checkpoint again"
grep -q "as of event $last_seq used: 2 events folded after it" <<<"$(read_way "$P")" \
  || fail "the kept checkpoint: $(read_way "$P")"
mv "$P/$CP" "$WORK/noop-held"
views "$P" "$WORK/noop-reference"
mv "$WORK/noop-held" "$P/$CP"
same_views "$P" "$WORK/noop-reference" "the checkpoint kept by a run with nothing to do"
# The tail stays short: with 16 such events after it the checkpoint is still kept; the next run
# finds 18 and writes it anew, as of its own last event.
for _ in 1 2 3 4 5 6 7; do expect_exit 0 "$AVPS" -q run "$P"; done
cmp -s "$WORK/full" "$P/$CP" || fail "a checkpoint followed by 16 events of runs with nothing to do was written again"
expect_exit 0 "$AVPS" -v run "$P"
expect_out "18 events folded after the previous checkpoint"
noop_seq=$(sqlite3 "file:$P/.avps/ledger.db?mode=ro" "SELECT max(seq) FROM events")
grep -q "as of event $noop_seq used: 0 events folded after it" <<<"$(read_way "$P")" \
  || fail "the checkpoint after a long tail: $(read_way "$P")"
cp "$P/$CP" "$WORK/noop"
mv "$P/$CP" "$WORK/noop-held"
views "$P" "$WORK/noop-reference"
cp "$WORK/noop" "$P/$CP"
same_views "$P" "$WORK/noop-reference" "the checkpoint written after a long tail"

# --- The run's record section damaged: the run folds every event, and says why; the checkpoint is
# not kept (though only run.started and run.finished follow it) but written anew. -----------------
damage "$WORK/noop" "$P/$CP" 2
expect_exit 0 "$AVPS" -v run "$P"
expect_out "not used by the run (its run's record does not match its sha256: damaged): every event is folded"
grep -q "used: 0 events folded after it" <<<"$(read_way "$P")" || fail "after a damaged run's record: $(read_way "$P")"
# --- The stale-shot record damaged (which the run itself does not read), only runs with nothing to
# do after it: the run's end checks it, and writes the checkpoint anew instead of keeping it. ------
damage "$WORK/noop" "$P/$CP" 1
cp "$P/$CP" "$WORK/noop-damaged"
expect_exit 0 "$AVPS" -v run "$P"
expect_out "fold checkpoint as of event $noop_seq used by the run"
grep -q "kept as it is" <<<"$OUT" && fail "a checkpoint with a damaged stale-shot record was kept: $OUT"
cmp -s "$WORK/noop-damaged" "$P/$CP" && fail "a checkpoint with a damaged stale-shot record was left as it was"
grep -q "used: 0 events folded after it" <<<"$(read_way "$P")" \
  || fail "after a damaged stale-shot record: $(read_way "$P")"

echo ok
