// async_job (include/avps/backends/async_job.hpp) against the fake job APIs
// (tests/support/fake_jobs.hpp) over loopback: every preset's submit / poll / fetch / cancel,
// the provider's faults, the limits (prompt condensing, ratios, durations), the option check, and
// that the key stays in headers.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "avps/backends/async_job.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/core/process.hpp"
#include "support/fake_provider.hpp"

using avps::backends::AsyncJobBackend;
using avps::backends::AsyncJobConfig;
using avps::backends::CallTrace;
using avps::backends::GenerationRequest;
using avps::backends::GenerationResult;
using avps::testing::FakeProvider;
using avps::testing::FakeProviderConfig;
using nlohmann::json;

namespace {

constexpr const char* k_job_key = "job-key-AVPSLEAKCANARY-42";

FakeProviderConfig fake_config() {
  FakeProviderConfig config;
  config.data_dir = AVPS_SOURCE_DATA_DIR;
  config.project = {{"seed", 7}};
  config.keys = {"", "", "", k_job_key};
  return config;
}

// A backend of `preset` on the fake, polling every 10 ms.
AsyncJobBackend backend_for(const FakeProvider& fake, avps::backends::HttpClient& client, const std::string& preset,
                            json overrides = json::object()) {
  overrides["poll"]["interval_s"] = 0.01;
  overrides["poll"]["max_wait_s"] = 5;
  auto options = avps::backends::async_job_options(preset, overrides, "test model");
  REQUIRE(options.ok());
  AsyncJobConfig config;
  config.model_id = "video-" + preset;
  config.preset = preset;
  config.endpoint = fake.base_url() + (preset == "fal" ? "/fal" : "");
  config.provider_model = preset == "replicate" || preset == "fal" ? "acme/video-model" : "gen-fake";
  config.api_key = k_job_key;
  config.options = *options;
  return AsyncJobBackend(config, client);
}

GenerationRequest shot_request() {
  GenerationRequest r;
  r.shot_id = "S01_SH01";
  r.attempt = 1;
  r.model = "video";
  r.tier = "gen_mid";
  r.genpack_face = "[STYLE]\nwarm dusk light\n[CHARACTERS]\nMARA: scar over left brow\n[ACTION]\nMara turns.";
  r.resolution = "proxy";
  r.pixels = "1280x720";
  r.duration_s = 4;
  r.seed = 11;
  return r;
}

// Submits and polls until an answer or an error (at most 20 polls).
avps::Result<GenerationResult> run_job(AsyncJobBackend& backend, CallTrace& trace, std::string* ticket_out = nullptr) {
  auto submitted = backend.submit_generation(shot_request(), trace);
  if (!submitted) {
    return submitted.error();
  }
  REQUIRE(!submitted->answer);
  REQUIRE(!submitted->ticket.empty());
  if (ticket_out) {
    *ticket_out = submitted->ticket;
  }
  for (int i = 0; i < 20; ++i) {
    auto polled = backend.poll_generation(submitted->ticket, trace);
    if (!polled) {
      return polled.error();
    }
    if (*polled) {
      return std::move(**polled);
    }
  }
  return avps::make_error(avps::ErrorCode::timeout, "the job did not finish in 20 polls");
}

}  // namespace

TEST_CASE("every async_job preset submits once, polls and fetches a probed video", "[async_job]") {
  FakeProvider fake(fake_config());
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  int64_t video_presets = 0;
  for (const std::string& preset : avps::backends::async_job_presets()) {
    if (preset.size() > 6 && preset.compare(preset.size() - 6, 6, "_image") == 0) {
      continue;  // image models' presets: tests/unit/backends/test_images.cpp
    }
    ++video_presets;
    INFO(preset);
    AsyncJobBackend backend = backend_for(fake, client, preset);
    CallTrace trace;
    std::string ticket;
    auto result = run_job(backend, trace, &ticket);
    REQUIRE(result.ok());
    CHECK(result->media_bytes.size() > 100);
    CHECK(result->extension == "mp4");
    CHECK(result->details.value("job_id", "") != "");
    if (avps::core::on_path("ffprobe")) {
      CHECK(result->details["probe"].value("codec", "") != "");
      CHECK(result->details["probe"].value("width", 0) > 0);
    }
    // The key travels only in headers: not in the ticket, the bodies or anything recorded.
    CHECK(ticket.find(k_job_key) == std::string::npos);
    CHECK(trace.request_body.find(k_job_key) == std::string::npos);
    CHECK(trace.response_body.find(k_job_key) == std::string::npos);
    CHECK(result->details.dump().find(k_job_key) == std::string::npos);
    CHECK(fake.stats()["jobs"]["by_preset"].value(preset, 0) == 1);
  }
  const json stats = fake.stats()["jobs"];
  CHECK(stats["invalid"] == 0);
  CHECK(stats["duplicate_submissions"] == 0);
  CHECK(video_presets == 7);
  CHECK(stats["submissions"] == video_presets);
}

TEST_CASE("runway: the provider's credits are its cost, the shot fitted to its ratios and durations", "[async_job]") {
  FakeProvider fake(fake_config());
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  AsyncJobBackend backend = backend_for(fake, client, "runway");
  CallTrace trace;
  auto submitted = backend.submit_generation(shot_request(), trace);
  REQUIRE(submitted.ok());
  // 4 s asked: Runway renders 5 or 10, so 5; 1280x720 is one of its ratios.
  CHECK(submitted->details["duration_s"] == 5);
  CHECK(submitted->details["ratio"] == "1280:720");
  const json sent = json::parse(trace.request_body);
  CHECK(sent["duration"] == 5);
  CHECK(sent["promptText"].get<std::string>().find("MARA") != std::string::npos);
  CHECK(json::parse(submitted->ticket)["seconds"] == 5);
  std::optional<GenerationResult> answer;
  for (int i = 0; i < 10 && !answer; ++i) {
    auto polled = backend.poll_generation(submitted->ticket, trace);
    REQUIRE(polled.ok());
    answer = std::move(*polled);
  }
  REQUIRE(answer);
  // 5 credits per second x 5 s x $0.01 per credit.
  REQUIRE(answer->provider_cost_micro_usd);
  CHECK(*answer->provider_cost_micro_usd == 250000);
  CHECK(answer->seconds_billed == 5);
}

TEST_CASE("a failed job, an output that 404s and an output that is not a video are final errors", "[async_job]") {
  avps::backends::CurlHttpClient client;
  struct Case {
    std::string fault;
    std::string preset;
    std::string said;
  };
  const std::vector<Case> cases = {{"job_fails", "runway", "failed"},
                                   {"job_fails", "fal", "failed"},
                                   {"job_fails", "veo", "failed"},
                                   {"output_404", "luma", "HTTP 404"},
                                   {"not_video", "replicate", "not a video"}};
  for (const Case& c : cases) {
    INFO(c.fault + " on " + c.preset);
    if (c.fault == "not_video" && !avps::core::on_path("ffprobe")) {
      continue;  // only ffprobe can tell
    }
    FakeProvider one(fake_config());
    REQUIRE(one.start().ok());
    REQUIRE(one.set_faults(json::array()).ok());
    AsyncJobBackend backend = backend_for(one, client, c.preset);
    {
      avps::backends::HttpRequest control;
      control.url = one.base_url() + "/control";
      control.body = json{{"job_faults", {{{"fault", c.fault}}}}}.dump();
      auto sent = client.send(control, {});
      REQUIRE(sent.ok());
      REQUIRE(sent->status == 200);
    }
    CallTrace trace;
    auto result = run_job(backend, trace);
    REQUIRE(!result.ok());
    CHECK(result.error().code == avps::ErrorCode::rejected);
    CHECK(result.error().message.find(c.said) != std::string::npos);
    CHECK(result.error().message.find(k_job_key) == std::string::npos);
  }
}

TEST_CASE("a throttled job is waited for, not an error, and a canceled job is canceled at the provider",
          "[async_job]") {
  FakeProvider fake(fake_config());
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  avps::backends::HttpRequest control;
  control.url = fake.base_url() + "/control";
  control.body = json{{"job_faults", {{{"fault", "throttled"}, {"polls", 4}}}}}.dump();
  REQUIRE(client.send(control, {}).ok());
  AsyncJobBackend backend = backend_for(fake, client, "runway");
  CallTrace trace;
  auto result = run_job(backend, trace);
  REQUIRE(result.ok());
  CHECK(fake.stats()["jobs"]["polls"].get<int>() >= 6);

  CallTrace cancel_trace;
  auto submitted = backend.submit_generation(shot_request(), cancel_trace);
  REQUIRE(submitted.ok());
  REQUIRE(backend.cancel_generation(submitted->ticket, cancel_trace).ok());
  CHECK(fake.stats()["jobs"]["cancels"] == 1);
  auto polled = backend.poll_generation(submitted->ticket, cancel_trace);
  REQUIRE(!polled.ok());
  CHECK(polled.error().message.find("canceled") != std::string::npos);
}

TEST_CASE("a GenPack longer than the provider's limit is condensed by the rule, the locks' anchors first",
          "[async_job]") {
  std::string face =
      "GenPack: S01_SH01\nGate: PASS\n\n[STYLE]\nlock: STYLE_PROJECT_LOCK_v001.txt\ntext: <<END\n[Palette]\n";
  for (int i = 0; i < 20; ++i) {
    face += "palette line " + std::to_string(i) + " with muted teal and amber grading, soft film grain\n";
  }
  face += "END\n\n[CHARACTERS]\n- lock: CHAR_MARA_QUILL_LOCK_v001.txt\n  text: <<END\nCharacter Lock: MARA_QUILL\n";
  face +=
      "[Voice Profile]\ntone: Clear and quick\n[Signature Identifiers]\n- A burn scar on her left "
      "palm\nEND\n[ACTION]\n";
  for (int i = 0; i < 20; ++i) {
    face += "action beat " + std::to_string(i) + " where the camera tracks slowly left past the window\n";
  }
  const auto condensed = avps::backends::condense_prompt(face, 1000);
  CHECK(condensed.condensed);
  CHECK(condensed.units <= 1000);
  CHECK(condensed.original_units > 1000);
  // The anchor and whose it is are kept; bookkeeping goes; ACTION before style.
  CHECK(condensed.text.find("- A burn scar on her left palm") != std::string::npos);
  CHECK(condensed.text.find("Character Lock: MARA_QUILL") != std::string::npos);
  CHECK(condensed.text.find("Gate: PASS") == std::string::npos);
  CHECK(condensed.text.find("lock: CHAR_MARA") == std::string::npos);
  CHECK(condensed.text.find("action beat 0 ") != std::string::npos);
  CHECK(condensed.text.find("palette line 19") == std::string::npos);
  CHECK(!condensed.dropped.empty());
  // Kept lines stay in the face's own order.
  CHECK(condensed.text.find("Character Lock: MARA_QUILL") < condensed.text.find("action beat 0 "));
  const auto fits = avps::backends::condense_prompt("[STYLE]\nshort", 1000);
  CHECK(!fits.condensed);
  CHECK(fits.text == "[STYLE]\nshort");
  // UTF-16 units: an emoji is two.
  CHECK(avps::backends::utf16_units("a\xF0\x9F\x8E\xAC") == 3);
}

TEST_CASE("async_job options: an unknown preset or option is refused by name, overrides merge", "[async_job]") {
  auto unknown = avps::backends::async_job_options("runwayy", json::object(), "model \"x\"");
  REQUIRE(!unknown.ok());
  CHECK(unknown.error().code == avps::ErrorCode::configuration);
  CHECK(unknown.error().message.find("runway, ") != std::string::npos);
  auto bad_key = avps::backends::async_job_options("runway", {{"pol", {}}}, "model \"x\"");
  REQUIRE(!bad_key.ok());
  CHECK(bad_key.error().message.find("options.pol") != std::string::npos);
  auto bad_placeholder =
      avps::backends::async_job_options("runway", {{"submit", {{"body", {{"p", "{{promt}}"}}}}}}, "model \"x\"");
  REQUIRE(!bad_placeholder.ok());
  CHECK(bad_placeholder.error().message.find("{{promt}}") != std::string::npos);
  auto merged = avps::backends::async_job_options("runway", {{"poll", {{"interval_s", 7}}}}, "model \"x\"");
  REQUIRE(merged.ok());
  CHECK((*merged)["poll"]["interval_s"] == 7);
  CHECK((*merged)["poll"]["path"] == "/v1/tasks/{id}");
  auto none = avps::backends::async_job_options("", json::object(), "model \"x\"");
  REQUIRE(!none.ok());
  CHECK(none.error().message.find("submit.path") != std::string::npos);
}
