#!/usr/bin/env bash
# `avps report`: the demo's page opens in headless Chromium with no console message (so no error
# and no network request: the page's CSP turns any fetch into one) and holds every section with
# the ledger's own figures; it is recorded as a REPORT artifact the gate vouches for; --json and
# `avps status --json` agree scene by scene, on a finished production and on one stopped mid-way;
# a run in progress gets a snapshot (-o), never a recorded report, and `avps run --report` keeps
# a live page and records the REPORT at its end. `avps cut` assembles the film.
source "$(dirname "$0")/lib.sh"

# The contact sheet's frames are kept between reports; here, in this test's own folder.
export AVPS_CACHE_DIR="$WORK/cache"
CHROMIUM=$(command -v chromium || true)
[ -n "$CHROMIUM" ] || fail "chromium is not installed (scripts/test.sh installs it): the report's browser test needs it"

# fresh NAME [png]: the demo initialised at $WORK/NAME; with png, its renders PNG frames (lib.sh
# png_renders).
fresh() {
  P="$WORK/$1"; rm -rf "$P"; cp -r "$SRC/examples/demo_short_film" "$P"
  if [ "${2:-}" = png ]; then png_renders "$P"; fi
  "$AVPS" init "$P" > /dev/null
}

# status --json and report --json: the same phase, verdicts, shots passed and spend per scene.
agree() {
  "$AVPS" --json status "$1" > "$WORK/status.json" || [ $? = 3 ]
  "$AVPS" --json report "$1" > "$WORK/report.json"
  python3 - "$WORK/status.json" "$WORK/report.json" <<'PY'
import json, sys
status, report = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert report["format_version"] == 1 and report["kind"] == "REPORT", report.keys()
keys = ("scene_id", "phase", "validation", "continuity", "plan", "proxy", "final", "spend_micro_usd", "cap_micro_usd")
a = [{k: s[k] for k in keys} for s in status["scenes"]]
b = [{k: s[k] for k in keys} for s in report["scenes"]]
assert a == b, f"status and report disagree:\n{a}\n{b}"
assert status["spend"]["committed_micro_usd"] == report["spend"]["committed_micro_usd"]
assert [h["id"] for h in status["hard_stops"]] == [h["id"] for h in report["hard_stops"]]
PY
}

# Opens a page in headless Chromium: the DOM after its script ran in $DOM, what the browser logged
# in $LOG, a screenshot in $2. A fresh profile; no background networking. One start of the browser
# does both (--dump-dom and --screenshot: the same DOM and the same image as a start for each, and
# a start costs about 6 s on 2 busy cores); a browser that took no screenshot fails the size check
# below.
browse() {
  local profile="$WORK/chromium-profile"
  rm -rf "$profile"
  DOM="$WORK/dom.html"; LOG="$WORK/chromium.log"
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
    --enable-logging=stderr --v=0 --window-size=1280,2400 --dump-dom --screenshot="$2" "file://$1" \
    > "$DOM" 2> "$LOG" || fail "chromium could not open $1: $(tail -5 "$LOG")"
  [ -s "$2" ] || fail "chromium took no screenshot of $1"
}

# --- The demo production, reported. --------------------------------------------------------------
fresh film
expect_exit 0 "$AVPS" run "$P" --jobs 4
expect_exit 0 "$AVPS" report "$P"
expect_out "recorded reports/REPORT_v001.html"
[ -s "$P/reports/REPORT_v001.html" ] || fail "no reports/REPORT_v001.html"
expect_exit 0 "$AVPS" gate "$P"
# A frame per shot's latest render, kept by the render's content hash for the next report.
[ "$(ls "$WORK/cache/frames" | wc -l)" = 22 ] || fail "expected 22 cached frames: $(ls "$WORK/cache/frames")"
expect_exit 0 "$AVPS" artifact show "$P" REPORT_v001.html
expect_exit 0 "$AVPS" --json artifact show "$P" REPORT_v001.html
grep -q '"phase_reached": "shots_final"' <<<"$OUT" || fail "the REPORT's JSON is not the read model: $OUT"
# A page is made by avps, never imported or edited.
mkdir -p "$WORK/mine" && cp "$P/reports/REPORT_v001.html" "$WORK/mine/REPORT_v001.html"
expect_exit 1 "$AVPS" artifact import "$P" "$WORK/mine/REPORT_v001.html" --reason "hand-made"
expect_out "cannot be imported or edited"
# Tampering with the recorded page is caught like any artifact's.
cp "$P/reports/REPORT_v001.html" "$WORK/kept.html"
echo "<!-- edited -->" >> "$P/reports/REPORT_v001.html"
expect_exit 1 "$AVPS" gate "$P"
cp "$WORK/kept.html" "$P/reports/REPORT_v001.html"
expect_exit 0 "$AVPS" gate "$P"
agree "$P"

# The page in a browser: no console message at all, every section, the ledger's figures.
browse "$P/reports/REPORT_v001.html" "$WORK/report.png"
if grep -q "CONSOLE" "$LOG"; then
  fail "the page logged to the console (an error, or a blocked request):
$(grep CONSOLE "$LOG")"
fi
[ "$(stat -c %s "$WORK/report.png")" -gt 20000 ] || fail "the screenshot is empty"
sqlite3 "file:$P/.avps/ledger.db?mode=ro" "SELECT body FROM events WHERE kind IN ('media.recorded', 'step.finished')" \
  > "$WORK/attempt_events.jsonl"
python3 - "$DOM" "$P/reports/REPORT_v001.html" "$WORK/attempt_events.jsonl" \
  "$(sqlite3 "file:$P/.avps/ledger.db?mode=ro" "SELECT COALESCE(SUM(settled_micro_usd), 0) FROM reservation_ends")" \
  "$WORK/report.json" "$(sqlite3 "file:$P/.avps/ledger.db?mode=ro" "SELECT kind, count(*) FROM events GROUP BY kind")" <<'PY'
import json, re, sys
from html.parser import HTMLParser
dom, raw, events, settled, model = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3], int(sys.argv[4]), json.load(open(sys.argv[5]))
counts = {k: int(v) for k, v in (line.split("|") for line in sys.argv[6].split())}

class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.by_id, self.classes, self.links = set(), {}, {}, []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"]); self.by_id[a["id"]] = a
        for c in (a.get("class") or "").split():
            self.classes[c] = self.classes.get(c, 0) + 1
        for k in ("src", "href"):
            if k in a:
                self.links.append(a[k])
page = Page(); page.feed(dom)
for section in ("summary", "spend", "cost", "qc", "loops", "contact", "scenes", "runs",
                "spend-chart", "committed-line", "cap-line", "warn-line", "cost-by-scene", "cost-by-model",
                "top-shots", "qc-grid", "scene-table", "hard-stops", "phase-reached"):
    assert section in page.ids, f"no #{section} in the page"
# Nothing the page loads or links to leaves the machine.
for link in page.links:
    assert not re.match(r"(?i)(https?|ftp|wss?):", link), f"the page refers to the network: {link}"
assert "default-src 'none'" in raw, "the page has no CSP forbidding fetches"
# The spend total is the ledger's: the settled amounts of every ended reservation.
total = page.by_id["spend-total"]
assert int(total["data-committed-micro-usd"]) == settled, (total, settled)
assert model["spend"]["committed_micro_usd"] == settled
# The QC grid: one cell per recorded attempt (a render, a grade, or both), as the ledger has them.
attempts = set()
for line in open(events):
    body = json.loads(line)
    at = body.get("shot_attempt") if "shot_attempt" in body else (body if "resolution" in body and "path" in body else None)
    if at:
        attempts.add((at["shot_id"], at["resolution"], at["attempt"]))
assert page.classes.get("qc-cell", 0) == len(attempts), (page.classes.get("qc-cell"), len(attempts))
shots = sum(len(s["shots"]) for s in model["scenes"])
assert page.classes.get("shot", 0) == shots, ("contact sheet", page.classes.get("shot"), shots)
assert shots == 22, shots
# The loops' timeline holds every escalation (with its cost delta) and every regen round the ledger has.
loops = model["loops"]
for kind, event_kind in (("escalation", "route.escalated"), ("regen_round", "regen.round"), ("override", "stop.override")):
    recorded = counts.get(event_kind, 0)
    assert sum(1 for l in loops if l["kind"] == kind) == recorded, (kind, recorded)
assert counts.get("route.escalated", 0) >= 1, "the demo escalates a loop: the check above must test something"
assert all(l["cost_delta_micro_usd"] > 0 for l in loops if l["kind"] == "escalation"), loops
assert dom.count('class="scene-loops"') >= 1 and 'data-kind="escalation"' in dom, "no escalation on the page"
# The scene table's rows and the script's paging both ran: the pager says how many rows there are.
assert "page 1 of 1 (6 rows)" in dom, "the scene table's pager did not run"
assert int(page.by_id["hard-stops"]["data-count"]) == 0
PY
if [ -n "${AVPS_REPORT_SCREENSHOT:-}" ]; then cp "$WORK/report.png" "$AVPS_REPORT_SCREENSHOT"; fi

# A second report is the next version; -o writes a snapshot and records nothing.
expect_exit 0 "$AVPS" report "$P" --no-frames
expect_out "recorded reports/REPORT_v002.html"
head_before=$(cat "$P/.avps/HEAD")
expect_exit 0 "$AVPS" report "$P" -o "$WORK/out/page.html"
[ -s "$WORK/out/page.html" ] || fail "-o wrote nothing"
[ "$(cat "$P/.avps/HEAD")" = "$head_before" ] || fail "report -o changed the record"
grep -q "href=\"../film/media/" "$WORK/out/page.html" || fail "-o's page does not link to the project's renders"

# --- The cut: every shot in story order, each for its planned duration. ------------------------
expect_exit 4 env PATH=/nonexistent "$AVPS" cut "$P"
expect_out "apt-get install ffmpeg"
expect_exit 0 "$AVPS" --json cut "$P"
echo "$OUT" > "$WORK/cut.json"
[ -s "$P/cut/CUT_v001.mp4" ] || fail "no cut/CUT_v001.mp4"
expect_exit 0 "$AVPS" gate "$P"
python3 - "$WORK/cut.json" "$WORK/report.json" \
  "$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$P/cut/CUT_v001.mp4")" <<'PY'
import json, sys
cut, model, probed = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
shots = [(s["scene_id"], sh["shot_id"], sh["planned_s"]) for s in model["scenes"] for sh in s["shots"]]
assert [(c["scene_id"], c["shot_id"], c["planned_s"]) for c in cut["shots"]] == shots, "the cut's shots are not the story's"
assert all(c["source"] == "render" and c["file"].startswith("media/") for c in cut["shots"]), cut["shots"]
assert cut["without_final"] == [] and cut["file"] == "cut/CUT_v001.mp4", cut
total = sum(p for _, _, p in shots)
assert abs(probed - total) < 0.05 and abs(cut["duration_s"] - total) < 1e-9, (probed, total, cut["duration_s"])
assert (cut["width"], cut["height"], cut["fps"]) == (1280, 536, 24), cut  # the style lock: 2.39:1 at 24 fps
PY

# --- Stopped mid-way, then a run in progress. ----------------------------------------------------
# PNG renders: what is checked here is the read model and the lock, not the clips (the film above
# keeps MP4 for the cut and the contact sheet); MP4 cost the second half of a production's ffmpeg
# starts again, about 10 CPU s (bench/README.md 2026-12-07).
fresh midway png
expect_exit 0 "$AVPS" run "$P" --until continuity --jobs 4
agree "$P"
python3 - "$WORK/report.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
phases = {s["phase"] for s in d["scenes"]}
assert phases == {"continuity"}, phases
assert d["phase_reached"] == "continuity", d["phase_reached"]
PY
expect_exit 4 "$AVPS" cut "$P"
expect_out "no shot to cut yet"
python3 - "$P/avps.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c.setdefault("sim", {})["latency_ms"] = 30; json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
"$AVPS" run "$P" --jobs 1 --report > "$WORK/run.out" 2>&1 &
RUN_PID=$!
# Wait until the run holds the project, asking with a snapshot (a reader: a recorded report takes
# the writer's lock itself, and a run starting in that moment is refused, so the wait would race it).
held=no
for _ in $(seq 1 200); do
  set +e; OUT=$("$AVPS" report "$P" -o "$WORK/probe.html" --no-frames 2>&1); set -e
  case "$OUT" in *"a run is writing the project"*) held=yes; break ;; esac
  sleep 0.05
done
[ "$held" = yes ] || fail "the run never held the project: $(tail -5 "$WORK/run.out")"
# Then a recorded report is refused, with the way out.
expect_exit 4 "$AVPS" report "$P"
expect_out "avps report $P -o FILE"
expect_exit 0 "$AVPS" report "$P" -o "$WORK/live.html" --no-frames
expect_out "a snapshot: a run is writing the project"
grep -q 'id="live-note"' "$WORK/live.html" || fail "the live page does not say it is a snapshot"
# --report keeps reports/live.html current while the run goes, and says so on the page.
for _ in $(seq 1 200); do [ -s "$P/reports/live.html" ] && break; sleep 0.05; done
[ -s "$P/reports/live.html" ] || fail "run --report wrote no reports/live.html"
grep -q "written during the run" "$P/reports/live.html" || fail "live.html does not say it was written during the run"
wait "$RUN_PID" || fail "the run failed: $(tail -5 "$WORK/run.out")"
grep -q "recorded reports/REPORT_v001.html" "$WORK/run.out" || fail "run --report recorded no REPORT: $(tail -5 "$WORK/run.out")"
[ ! -e "$P/reports/live.html" ] || fail "live.html was left beside the recorded REPORT"
expect_exit 0 "$AVPS" gate "$P"
agree "$P"
echo "ok"
