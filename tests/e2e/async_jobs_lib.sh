# Shared by the test_async_jobs*.sh scripts (one ctest test each, so that they run in parallel):
# fake_lib.sh, the keys the runs and the fake use, and `project`, the demo with its renders on an
# async_job preset at the fake.
source "$(dirname "$0")/fake_lib.sh"

export OPENAI_API_KEY="sk-proj-AVPSLEAKCANARY-openai-a11c"
export ANTHROPIC_API_KEY="sk-ant-AVPSLEAKCANARY-anthropic-b22d"
export RUNWAY_API_KEY="key_AVPSLEAKCANARY-runway-c33e"
CANARY="AVPSLEAKCANARY"
MIN_POLL_MS=40  # every preset polls at 0.05 s here; the fake counts polls sooner than 40 ms
FAKE_ARGS=(--key-openai "$OPENAI_API_KEY" --key-anthropic "$ANTHROPIC_API_KEY" --key-jobs "$RUNWAY_API_KEY"
  --min-poll-interval-ms "$MIN_POLL_MS")

# project NAME PORT [PRESET] [MAX_WAIT_S]: the demo on examples/models/openai-anthropic.json, its
# render models on async_job PRESET at the fake (models_at); storyboard frames (images) stay on one
# sim model.
project() {
  P="$WORK/$1"
  rm -rf "$P"
  cp -r "$SRC/examples/demo_short_film" "$P"
  models_at "$P" "$2" "${3:-runway}" "${4:-20}"
  "$AVPS" init "$P" > /dev/null
}
# models_at DIR PORT PRESET MAX_WAIT_S: DIR's models file: text on openai_chat, vision and QC on
# anthropic_messages, at the fake on PORT; the render models on async_job PRESET there.
models_at() {
  python3 - "$SRC/examples/models/openai-anthropic.json" "$@" <<'PY'
import json, sys
src, project, port, preset, max_wait = sys.argv[1:6]
d = json.load(open(src))
for m in d["models"]:
    if m["backend"] == "openai_chat":
        m["endpoint"] = "http://127.0.0.1:%s/v1" % port
    elif m["backend"] == "anthropic_messages":
        m["endpoint"] = "http://127.0.0.1:%s" % port
    elif m["id"] == "sim-gen-low-alt":
        m["capabilities"]["video_out"] = False  # storyboard frames only
    else:
        m["backend"] = "async_job"
        m["preset"] = preset
        m["provider_model"] = "acme/gen-video" if preset in ("fal", "replicate") else "gen4_turbo"
        m["endpoint"] = "http://127.0.0.1:%s%s" % (port, "/fal" if preset == "fal" else "")
        m["api_key_env"] = "RUNWAY_API_KEY"
        m["capabilities"]["image_out"] = False
        m["options"] = {"poll": {"interval_s": 0.05, "max_wait_s": float(max_wait)},
                        "retry": {"max_retries": 1, "base_ms": 10}}
json.dump(d, open(project + "/models.json", "w"), indent=2)
c = json.load(open(project + "/avps.json"))
c["models"] = "models.json"
json.dump(c, open(project + "/avps.json", "w"), indent=2)
PY
}

# make_base: the steps before the first render (`--until planning`: the narrative, then each
# scene's validation, continuity and planning, storyboard frames included), run once on a fake of
# their own into $BASE, which the scenarios start from (from_base) instead of making them again each
# (96 of a demo run's 234 calls). The base ends before the first cost loop, so every step that
# reads the render models (the cost loop's routing, the renders) runs on the scenario's own models
# file. Its fake is checked as the scenarios' are: no invalid request, and no job yet.
make_base() {
  start_fake base
  project base "$PORT"
  expect_exit 0 "$AVPS" run "$P" --jobs 1 --until planning
  [ "$(stat "$PORT" 's["invalid"]')" = 0 ] || fail "base: invalid chat requests: $(stat "$PORT" 's["invalid_reasons"]')"
  [ "$(stat "$PORT" 's["requests"] > 20')" = True ] || fail "base: too few chat requests"
  [ "$(stat "$PORT" 'j["submissions"]')" = 0 ] || fail "base: a job was submitted before the renders"
  [ "$(tickets "$P")" = 0 ] || fail "base: a ticket before the renders"
  BASE="$P"
  stop_last_fake
}
# The first scene's proxy renders and their QC (5 jobs): where the kills, the faults and Ctrl-C of
# these tests land (the walk renders scene by scene, proxies then finals), and all that a scenario
# after the clean run needs to prove them; the other scenes' renders take the same path again.
FIRST_PROXIES=(--scene S01 --until shots_proxy)

# from_base NAME PORT [PRESET] [MAX_WAIT_S]: P, a copy of the base with its models at the fake on
# PORT (as `project` makes them). Every scenario starts from the same base on a fake of its own,
# started fresh, so they all meet the same fake state (prompt-cache writes, job counts, a fault's
# skip count) from the base on.
from_base() {
  P="$WORK/$1"
  rm -rf "$P"
  cp -a "$BASE" "$P"
  models_at "$P" "$2" "${3:-runway}" "${4:-20}"
}
