#!/usr/bin/env bash
# What `avps run` shows as it goes: the --json event stream (every stdout line valid JSON, events
# carrying phase, skill, attempt and spend against the cap, then the result), plain lines when
# stdout and stderr are not terminals, and the live status line on a terminal.
source "$(dirname "$0")/lib.sh"

q() { sqlite3 "$1/.avps/ledger.db" "$2"; }
fresh() { P="$WORK/$1"; rm -rf "$P"; cp -r "$SRC/examples/demo_short_film" "$P"; "$AVPS" init "$P" > /dev/null; }

# --json: events, then the result, one JSON document per line; nothing on stderr.
fresh json
set +e
"$AVPS" --json run "$P" --until locks > "$WORK/events.jsonl" 2> "$WORK/stderr.txt"
rc=$?
set -e
[ $rc -eq 0 ] || fail "--json run --until locks exited $rc: $(cat "$WORK/stderr.txt")"
[ ! -s "$WORK/stderr.txt" ] || fail "--json run wrote to stderr: $(cat "$WORK/stderr.txt")"
settled=$(q "$P" "SELECT COALESCE(SUM(settled_micro_usd), 0) FROM reservation_ends")
python3 - "$WORK/events.jsonl" "$settled" <<'PY' || fail "the --json event stream is not as documented"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
assert lines[-1] == "", "stdout must end with a newline"
docs = []
for number, line in enumerate(lines[:-1], 1):
    assert "\r" not in line, f"line {number} has a carriage return"
    try:
        docs.append(json.loads(line))
    except ValueError as e:
        sys.exit(f"line {number} is not JSON ({e}): {line[:200]}")
*events, result = docs
assert result.get("ok") is True and "event" not in result, f"last line is not the result: {result}"
for key in ("calls_made", "calls_replayed", "steps_skipped", "artifacts_written"):
    assert isinstance(result.get(key), int), f"result lacks {key}: {result}"
assert result["calls_made"] > 0, result
kinds = {"phase", "attempt", "verdict", "wave", "revise", "escalate", "wait", "stop", "note"}
cap = 250 * 1_000_000  # the demo's project_cap_usd
for e in events:
    assert e.get("v") == 1, f"event without v=1: {e}"
    assert e.get("event") in kinds, f"unknown event: {e}"
    assert isinstance(e.get("elapsed_ms"), int) and e["elapsed_ms"] >= 0, e
    assert isinstance(e.get("text"), str) and e["text"], e
    assert e.get("cap_micro_usd") == cap, f"cap is not the project's: {e}"
    assert 0 <= e.get("spent_micro_usd", -1) <= cap, e
    for key in ("phase", "scene_id", "shot_id", "skill", "tier", "verdict"):
        assert key not in e or (isinstance(e[key], str) and e[key]), f"empty {key}: {e}"
phases = [e["phase"] for e in events if e["event"] == "phase"]
assert phases[:2] == ["narrative", "locks"], phases
attempts = [e for e in events if e["event"] == "attempt"]
assert len(attempts) == result["calls_made"], f"{len(attempts)} attempt events for {result['calls_made']} calls"
for e in attempts:
    assert e.get("skill") and e.get("tier") and e.get("attempt", 0) >= 1, f"attempt event lacks fields: {e}"
    assert e.get("phase") in ("narrative", "locks"), e
assert any(e["skill"] == "story-architect" and e["phase"] == "narrative" for e in attempts), attempts
assert any(e["phase"] == "locks" for e in attempts), "no call in the locks phase"
verdicts = [e for e in events if e["event"] == "verdict"]
assert verdicts and all(e.get("verdict") in ("PASS", "WARN", "FIX", "FAIL", "STOP") for e in verdicts), verdicts
# Spend moves with the calls and ends at what the ledger settled.
assert events[-1]["spent_micro_usd"] == int(sys.argv[2]), (events[-1], sys.argv[2])
assert int(sys.argv[2]) > 0
assert all(a["elapsed_ms"] <= b["elapsed_ms"] for a, b in zip(events, events[1:])), "elapsed_ms went back"
PY

# Run again: a resume emits its events and a result with no new call.
expect_exit 0 "$AVPS" --json run "$P" --until locks
python3 -c '
import json, sys
docs = [json.loads(l) for l in sys.stdin.read().splitlines()]
assert docs[-1]["ok"] is True and docs[-1]["calls_made"] == 0, docs[-1]
assert all(d.get("v") == 1 for d in docs[:-1])
' <<<"$OUT" || fail "a resumed --json run is not one JSON document per line"

# --json -q: only the result.
expect_exit 0 "$AVPS" --json -q run "$P" --until locks
[ "$(wc -l <<<"$OUT")" = 1 ] || fail "--json -q should print the result alone, got: $OUT"

# An error is one JSON line too.
mkdir -p "$WORK/not_a_project"
expect_exit 4 "$AVPS" --json run "$WORK/not_a_project"
[ "$(wc -l <<<"$OUT")" = 1 ] || fail "a --json error should be one line, got: $OUT"
python3 -c 'import json, sys; d = json.loads(sys.stdin.read()); assert d["ok"] is False and d["exit_code"] == 4' \
  <<<"$OUT" || fail "not a JSON error: $OUT"

# A gate that keeps failing: FAIL verdicts, an escalation and a hard stop are events, and the
# last line is the error result (exit 3).
fresh stop
python3 - "$P/avps.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["sim"] = {"latency_ms": 0, "failure_rates": {"story-architect": 1.0}}
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
expect_exit 3 "$AVPS" --json run "$P" --until narrative
python3 -c '
import json, sys
docs = [json.loads(l) for l in sys.stdin.read().splitlines()]
*events, result = docs
assert result == {"ok": False, "exit_code": 3, "error": result["error"]} and result["error"].startswith("STOP-"), result
escalations = [e for e in events if e["event"] == "escalate"]
assert escalations and escalations[0]["skill"] == "story-architect" and escalations[0]["tier"] == "t3", escalations
stops = [e for e in events if e["event"] == "stop"]
assert len(stops) == 1 and stops[0]["text"] == result["error"] and stops[0]["skill"] == "story-architect", stops
assert events[-1]["event"] == "stop", events[-1]
assert sum(1 for e in events if e["event"] == "verdict" and e["verdict"] == "FAIL") == 6
' <<<"$OUT" || fail "the events of a hard stop are not as documented: $OUT"

# Not a terminal: the plain lines, no carriage return, no escape sequence.
fresh plain
"$AVPS" run "$P" --until narrative > "$WORK/plain.txt" 2> "$WORK/plain_err.txt" || fail "plain run failed"
grep -q $'\r' "$WORK/plain.txt" "$WORK/plain_err.txt" && fail "plain output has a carriage return"
grep -q $'\033' "$WORK/plain.txt" "$WORK/plain_err.txt" && fail "plain output has an escape sequence"
grep -qx "phase narrative" "$WORK/plain.txt" || fail "no phase line: $(cat "$WORK/plain.txt")"
grep -q "^story-architect: attempt 1 on t2" "$WORK/plain.txt" || fail "no attempt line: $(cat "$WORK/plain.txt")"
grep -q "^done: " "$WORK/plain.txt" || fail "no summary line"

# A terminal (script(1) gives the run a pseudo-terminal): the status line is drawn in place, no
# wider than the terminal, and cleared before the summary; phase starts stay as lines, attempts
# only update the status line. The sim answers slowly here so that redraws fall inside the run.
if command -v script > /dev/null; then
  fresh tty
  python3 - "$P/avps.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["sim"]["latency_ms"] = 400
json.dump(config, open(sys.argv[1], "w"), indent=2)
PY
  COLUMNS=100 script -qec "\"$AVPS\" run \"$P\" --until narrative" /dev/null > "$WORK/tty.txt" 2>&1 \
    || fail "run on a terminal failed: $(cat -v "$WORK/tty.txt")"
  python3 - "$WORK/tty.txt" <<'PY' || fail "the terminal output is not as expected: $(cat -v "$WORK/tty.txt")"
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace", newline="").read()
clear = "\r\x1b[K"
# A status line is followed by the next redraw or by its clearing; printed lines end in "\r\n".
drawn = re.findall(r"\r\x1b\[K([^\r\n\x1b]+)(?=\r\x1b\[K)", text)
assert drawn, "no status line drawn"
for line in drawn:
    assert len(line) <= 99, f"status line wider than the terminal: {line!r}"
    assert line.startswith("narrative") and " of $250.00 (" in line, f"status line lacks phase or spend: {line!r}"
assert any("story-architect attempt 1 on t2" in line for line in drawn), drawn
before_done = text[: text.index("done: ")]
last = before_done.rindex(clear + drawn[-1]) + len(clear + drawn[-1])
assert clear in before_done[last:], "the status line was not cleared before the summary"
assert "phase narrative" in text, "no phase line"
assert not re.search(r"(^|\n)story-architect: attempt", text), "attempt lines should only update the status line"
PY
fi
echo "test_run_progress: ok"
