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
# render models on async_job PRESET at the fake; storyboard frames (images) stay on one sim model.
project() {
  P="$WORK/$1"
  rm -rf "$P"
  cp -r "$SRC/examples/demo_short_film" "$P"
  python3 - "$SRC/examples/models/openai-anthropic.json" "$P" "$2" "${3:-runway}" "${4:-20}" <<'PY'
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
  "$AVPS" init "$P" > /dev/null
}
