# Storyboard frames on real image models through the fake provider server (tests/support/
# fake_images.*, fake_jobs.*): the demo with its frames on an OpenAI Images model (openai_chat
# with image_out) end to end, `avps gate`, and `avps replay` without keys; then, from one planned
# copy, scene S01 up to its proxies with its frames on a Gemini image model (two of them answered
# as JPEG, converted to PNG)
# and on a Replicate image model through async_job; a content-policy refusal ending the run with
# its reason and its reservation released. Text on openai_chat, vision and QC on
# anthropic_messages, renders on the sim (PNG). Keys are distinctive strings that must appear
# nowhere the runs write.
source "$(dirname "$0")/fake_lib.sh"

export OPENAI_API_KEY="sk-proj-AVPSLEAKCANARY-openai-1ma9"
export ANTHROPIC_API_KEY="sk-ant-AVPSLEAKCANARY-anthropic-2mb8"
export GEMINI_API_KEY="AIzaAVPSLEAKCANARY-gemini-3mc7"
export REPLICATE_API_TOKEN="r8_AVPSLEAKCANARY-replicate-4md6"
CANARY="AVPSLEAKCANARY"
FAKE_ARGS=(--key-openai "$OPENAI_API_KEY" --key-anthropic "$ANTHROPIC_API_KEY" --key-gemini "$GEMINI_API_KEY"
  --key-jobs "$REPLICATE_API_TOKEN")

# models P PORT KIND: P's models file is examples/models/openai-anthropic.json at the fake on PORT,
# its storyboard frames on one image model of KIND (openai, gemini, replicate); the sim's gen_low
# models keep rendering the shots but draw no frames.
models() {
  python3 - "$SRC/examples/models/openai-anthropic.json" "$1" "$2" "$3" <<'PY'
import json, sys
src, project, port, kind = sys.argv[1:5]
d = json.load(open(src))
for m in d["models"]:
    if m["backend"] == "openai_chat":
        m["endpoint"] = "http://127.0.0.1:%s/v1" % port
    elif m["backend"] == "anthropic_messages":
        m["endpoint"] = "http://127.0.0.1:%s" % port
    elif m["tiers"] == ["gen_low"]:
        m["capabilities"]["image_out"] = False
caps = {"text": False, "json_schema": False, "vision": False, "image_out": True, "video_out": False,
        "context_tokens": 0}
image = {"id": "frames-" + kind, "tiers": ["gen_low"], "capabilities": caps,
         "pricing": {"per_image_micro_usd": 11000}, "price_as_of": "2026-12-05", "price_source": "e2e"}
if kind == "openai":
    image.update(backend="openai_chat", provider_model="gpt-image-1", endpoint="http://127.0.0.1:%s/v1" % port,
                 api_key_env="OPENAI_API_KEY", options={"image_quality": "low"})
elif kind == "gemini":
    image.update(backend="gemini_generate", provider_model="gemini-2.5-flash-image",
                 endpoint="http://127.0.0.1:%s" % port, api_key_env="GEMINI_API_KEY")
else:
    image.update(backend="async_job", preset="replicate_image", provider_model="black-forest-labs/flux-schnell",
                 endpoint="http://127.0.0.1:%s" % port, api_key_env="REPLICATE_API_TOKEN",
                 options={"poll": {"interval_s": 0.05}})
d["models"].append(image)
json.dump(d, open(project + "/models.json", "w"), indent=2)
c = json.load(open(project + "/avps.json"))
c["models"] = "models.json"
c["sim"]["media"] = "image"
json.dump(c, open(project + "/avps.json", "w"), indent=2)
PY
}
# project NAME PORT KIND: a fresh copy of the demo, its models for KIND.
project() {
  P="$WORK/$1"
  rm -rf "$P"
  cp -r "$SRC/examples/demo_short_film" "$P"
  models "$P" "$2" "$3"
  "$AVPS" init "$P" > /dev/null
}
# from_base NAME PORT KIND: a copy of $BASE (the demo planned, no frame drawn), its models for KIND.
from_base() {
  P="$WORK/$1"
  rm -rf "$P"
  cp -r "$BASE" "$P"
  models "$P" "$2" "$3"
}
frames() { ls "$1"/production/*STORYBOARD_S*_v*.png 2> /dev/null | wc -l; }
# check_frames PROJECT MODEL: every STORYBOARD face is a PNG, and each frame's response names the
# image model, an image extension and the per-image price.
check_frames() {
  local p=$1 model=$2
  [ "$(frames "$p")" -gt 0 ] || fail "$model: no STORYBOARD frame stored"
  for f in "$p"/production/*STORYBOARD_S*_v*.png; do
    [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$f is not a PNG"
  done
  [ "$(q "$p" "SELECT count(*) FROM events WHERE kind='exchange.response' AND json_extract(body,'$.model')='$model' AND json_extract(body,'$.extension') IN ('png','jpg') AND json_extract(body,'$.cost_micro_usd')=11000")" = "$(frames "$p")" ] \
    || fail "$model: the frames' responses do not match the STORYBOARD artifacts: $(frames "$p") frames"
}

# --- The demo end to end, its storyboard frames on OpenAI Images ----------------------------------
start_fake openai
project openai "$PORT" openai
expect_exit 0 "$AVPS" run "$P" --jobs 4
expect_out "done:"
expect_exit 0 "$AVPS" gate "$P"
[ "$(stat "$PORT" 'i["invalid"]')" = 0 ] || fail "invalid image requests: $(stat "$PORT" 'i["invalid_reasons"]')"
[ "$(stat "$PORT" 's["invalid"]')" = 0 ] || fail "invalid chat requests: $(stat "$PORT" 's["invalid_reasons"]')"
check_frames "$P" frames-openai
[ "$(stat "$PORT" 'i["images"]')" = "$(frames "$P")" ] || fail "images drawn $(stat "$PORT" 'i["images"]') != frames $(frames "$P")"
# What the provider said is recorded; the wire reply is kept without the image's base64.
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response' AND json_extract(body,'$.model')='frames-openai' AND json_extract(body,'$.job.size')='1536x1024' AND json_extract(body,'$.job.usage.output_tokens')=1056")" = "$(frames "$P")" ] \
  || fail "a frame's response lacks the size asked for or the provider's usage"
wire=$(q "$P" "SELECT json_extract(body,'$.wire_response_sha256') FROM events WHERE kind='exchange.response' AND json_extract(body,'$.model')='frames-openai' LIMIT 1")
object_save "$P" "$wire" "$WORK/wire.json"
grep -q '<image: [0-9]* bytes, sha256 ' "$WORK/wire.json" || fail "the wire reply kept is not the redacted one"
[ "$(open_reservations "$P")" = 0 ] || fail "a reservation was left open"
no_canary "$P" "$WORK/openai.log"
# A second run makes no call.
expect_exit 0 "$AVPS" run "$P"
expect_out "0 calls made"
# Replayed for an audit: the frames come from the record, no provider and no key needed.
expect_exit 0 env -i PATH="$PATH" "$AVPS" replay "$P"
expect_out "REPRODUCED RUN_0002 (DONE)"

# --- Scene S01 to its proxies: frames on a Gemini image model, and on Replicate through async_job --
# From one planned copy of the demo (the narrative and the plans are the same whatever draws).
start_fake base
project base "$PORT" openai
expect_exit 0 "$AVPS" run "$P" --jobs 4 --until planning
BASE="$P"
[ "$(frames "$BASE")" = 0 ] || fail "frames were drawn before the proxies"
# Gemini answers two frames as JPEG here where ffmpeg is installed: each is converted to the PNG a
# STORYBOARD is, the response keeping the JPEG.
for kind in gemini replicate; do
  start_fake "$kind"
  from_base "$kind" "$PORT" "$kind"
  jpegs=0
  if [ "$kind" = gemini ] && command -v ffmpeg > /dev/null; then
    control "$PORT" '{"image_faults": [{"fault": "jpeg", "provider": "gemini", "times": 2}]}'
    jpegs=2
  fi
  expect_exit 0 "$AVPS" run "$P" --jobs 4 --until shots_proxy --scene S01
  [ "$(stat "$PORT" 'i["invalid"] + j["invalid"]')" = 0 ] \
    || fail "$kind: invalid requests: $(stat "$PORT" 'i["invalid_reasons"] + j["invalid_reasons"]')"
  check_frames "$P" "frames-$kind"
  [ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.response' AND json_extract(body,'$.extension')='jpg'")" = "$jpegs" ] \
    || fail "$kind: not $jpegs JPEG frames recorded as jpg"
  converted=0
  for sha in $(q "$P" "SELECT json_sha256 FROM artifacts WHERE kind='STORYBOARD'"); do
    object_save "$P" "$sha" "$WORK/storyboard.json"
    if grep -q '"converted_from":"jpeg"' "$WORK/storyboard.json"; then converted=$((converted + 1)); fi
  done
  [ "$converted" = "$jpegs" ] || fail "$kind: $converted STORYBOARDs say converted_from jpeg, not $jpegs"
  if [ "$kind" = gemini ]; then
    [ "$(stat "$PORT" 'i["by_provider"]["gemini"]["images"]')" = "$(frames "$P")" ] || fail "gemini: images != frames"
  else
    [ "$(stat "$PORT" 'j["submissions"]')" = "$(frames "$P")" ] || fail "replicate: submissions != frames"
    [ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.ticket' AND json_extract(body,'$.ticket') LIKE '%\"output\":\"image\"%'")" = "$(frames "$P")" ] \
      || fail "replicate: a frame's ticket does not say it is an image job"
  fi
  [ "$(open_reservations "$P")" = 0 ] || fail "$kind: a reservation was left open"
  no_canary "$P" "$WORK/$kind.log"
done

# --- A content-policy refusal is a failed attempt: the run stops with why, nothing left open -------
start_fake policy
from_base policy "$PORT" openai
control "$PORT" '{"image_faults": [{"fault": "content_policy", "skip": 1}]}'
set +e
OUT=$(timeout 120 "$AVPS" run "$P" --jobs 4 --until shots_proxy --scene S01 2>&1)
code=$?
set -e
[ "$code" != 124 ] || fail "the refused run hung"
[ "$code" != 0 ] || fail "a refused storyboard frame did not stop the run"
expect_out "content policy"
[ "$(q "$P" "SELECT count(*) FROM events WHERE kind='exchange.failed' AND json_extract(body,'$.model')='frames-openai' AND json_extract(body,'$.message') LIKE '%moderation_blocked%'")" = 1 ] \
  || fail "no exchange.failed records the refusal"
[ "$(open_reservations "$P")" = 0 ] || fail "the refused frame's reservation was left open"
no_canary "$P" "$WORK/policy.log"
echo "ok"
