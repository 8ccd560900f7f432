// Storyboard frames on real image models (http_images.hpp, image_output.hpp, async_job image
// presets) against the fake image and job APIs over loopback (tests/support/fake_images.hpp,
// fake_jobs.hpp): the wire format each provider takes, the sizes rule, the decoded image and its
// extension, usage in the details, each fault (500, 429 with Retry-After, a content-policy
// refusal, a body that is not an image), the refusals (a text call on an image-only model, a
// video on an image model), the registry's rules, and that no key and no base64 image reaches a
// trace.

#include <catch2/catch.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/backends/async_job.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/backends/http_images.hpp"
#include "avps/backends/http_model.hpp"
#include "avps/backends/image_output.hpp"
#include "avps/backends/registry.hpp"
#include "avps/backends/retry.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/process.hpp"
#include "support/fake_provider.hpp"
#include "support/recording_sleeper.hpp"

using namespace avps;
using backends::CallTrace;
using backends::GenerationRequest;
using backends::HttpModelBackend;
using backends::HttpModelConfig;
using backends::WireKind;
using nlohmann::json;
using testing::FakeProvider;
using testing::FakeProviderConfig;
using testing::RecordingSleeper;

namespace {

constexpr const char* k_image_openai_key = "sk-img-AVPSLEAKCANARY-openai";
constexpr const char* k_image_gemini_key = "gm-img-AVPSLEAKCANARY-gemini";
constexpr const char* k_image_job_key = "job-img-AVPSLEAKCANARY-jobs";

std::unique_ptr<FakeProvider> started_fake(json image_faults = json::array()) {
  FakeProviderConfig config;
  config.data_dir = AVPS_SOURCE_DATA_DIR;
  config.project = {{"seed", 7}};
  config.keys = {k_image_openai_key, "", k_image_gemini_key, k_image_job_key};
  config.image_faults = std::move(image_faults);
  auto fake = std::make_unique<FakeProvider>(config);
  REQUIRE(fake->start().ok());
  return fake;
}

HttpModelConfig image_model(const FakeProvider& fake, WireKind kind, const std::string& provider_model,
                            json options = json::object()) {
  HttpModelConfig config;
  config.model_id = "frames";
  config.kind = kind;
  config.endpoint = fake.base_url() + (kind == WireKind::openai_chat ? "/v1" : "");
  config.provider_model = provider_model;
  config.api_key = kind == WireKind::openai_chat ? k_image_openai_key : k_image_gemini_key;
  config.options = std::move(options);
  config.image_out = true;
  config.text = false;
  config.http.total_timeout_ms = 10000;
  return config;
}

GenerationRequest frame_request() {
  GenerationRequest r;
  r.shot_id = "S01_SH02";
  r.attempt = 1;
  r.model = "frames";
  r.tier = "gen_low";
  r.genpack_face = "[STYLE]\nwarm dusk light\n[CHARACTERS]\nMARA: scar over left brow\n[ACTION]\nMara turns.";
  r.resolution = "storyboard";
  r.pixels = "640x272";
  r.seed = 11;
  return r;
}

void no_key_in(const CallTrace& trace) {
  for (const char* key : {k_image_openai_key, k_image_gemini_key, k_image_job_key}) {
    CHECK(trace.request_body.find(key) == std::string::npos);
    CHECK(trace.response_body.find(key) == std::string::npos);
  }
}

}  // namespace

TEST_CASE("base64 decodes what base64 encodes and refuses anything else", "[images]") {
  for (const std::string& bytes : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                                   std::string("\x89PNG\r\n\x1a\n\0\xff", 10)}) {
    const auto decoded = core::base64_decode(core::base64(bytes));
    REQUIRE(decoded.has_value());
    CHECK(*decoded == bytes);
  }
  CHECK(core::base64_decode("YWJj") == std::optional<std::string>("abc"));
  CHECK(core::base64_decode("YWI") == std::optional<std::string>("ab"));  // padding optional
  CHECK_FALSE(core::base64_decode("YW Jj").has_value());
  CHECK_FALSE(core::base64_decode("YWJj\n").has_value());
  CHECK_FALSE(core::base64_decode("<html>").has_value());
  CHECK_FALSE(core::base64_decode("Y").has_value());
}

TEST_CASE("an image is told by its magic bytes, not its name", "[images]") {
  CHECK(backends::image_format(std::string("\x89PNG\r\n\x1a\n....", 12)) == "png");
  CHECK(backends::image_format("\xFF\xD8\xFF\xE0....") == "jpeg");
  CHECK(backends::image_format(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16)) == "webp");
  CHECK(backends::image_format(std::string("RIFF\x10\0\0\0WAVEfmt ", 16)) == "");  // RIFF, but audio
  CHECK(backends::image_format("<html><body>Access denied</body></html>") == "");
  CHECK(backends::image_format(std::string("\0\0\0\x20"
                                           "ftypisom",
                                           12)) == "");  // an MP4
  CHECK(backends::image_extension("jpeg") == "jpg");
  CHECK(backends::image_media_type("webp") == "image/webp");
}

TEST_CASE("the sizes rule picks the allowed size nearest the frame's aspect, the first of equals", "[images]") {
  const std::vector<std::string> gpt = {"1024x1024", "1536x1024", "1024x1536"};
  CHECK(backends::nearest_aspect(gpt, "640x272") == "1536x1024");  // 2.35:1 -> the widest
  CHECK(backends::nearest_aspect(gpt, "272x640") == "1024x1536");
  CHECK(backends::nearest_aspect(gpt, "500x500") == "1024x1024");
  CHECK(backends::nearest_aspect(gpt, "nonsense") == "1024x1024");  // no aspect: the first
  const std::vector<std::string> ratios = {"1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9"};
  CHECK(backends::nearest_aspect(ratios, "640x272") == "21:9");
  CHECK(backends::nearest_aspect(ratios, "1280x720") == "16:9");
  CHECK(backends::nearest_aspect({"4:3", "3:4"}, "100x100") == "4:3");  // equals: the first listed
  CHECK(backends::nearest_aspect({}, "640x272").empty());
}

TEST_CASE("OpenAI Images draws a storyboard frame: size by the rule, PNG decoded, usage kept", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  HttpModelBackend backend(image_model(*fake, WireKind::openai_chat, "gpt-image-1", {{"image_quality", "low"}}),
                           client);
  CallTrace trace;
  auto submitted = backend.submit_generation(frame_request(), trace);
  REQUIRE(submitted.ok());
  REQUIRE(submitted->answer.has_value());
  CHECK(submitted->ticket.empty());
  const backends::GenerationResult& frame = *submitted->answer;
  CHECK(backends::image_format(frame.media_bytes) == "png");
  CHECK(frame.extension == "png");
  CHECK(frame.model == "frames");
  CHECK(frame.details["size"] == "1536x1024");
  CHECK(frame.details["usage"]["output_tokens"] == 1056);
  CHECK(frame.details["usage"]["input_tokens"].get<int64_t>() > 0);
  const json sent = json::parse(trace.request_body);
  CHECK(sent == json{{"model", "gpt-image-1"},
                     {"prompt", frame_request().genpack_face},
                     {"n", 1},
                     {"size", "1536x1024"},
                     {"quality", "low"}});
  CHECK(trace.provider == "openai_chat");
  REQUIRE(trace.attempts.size() == 1);
  CHECK(trace.attempts[0].status == 200);
  CHECK(trace.attempts[0].request_id == "req_fake_image");
  // The trace keeps the reply without the image's base64, naming its size and hash instead.
  CHECK(trace.response_body.find(core::base64(frame.media_bytes).substr(0, 40)) == std::string::npos);
  CHECK(trace.response_body.find("sha256 " + core::sha256_hex(frame.media_bytes)) != std::string::npos);
  no_key_in(trace);
  const json stats = fake->stats()["images"];
  CHECK(stats["invalid"] == 0);
  CHECK(stats["images"] == 1);
}

TEST_CASE("OpenAI Images asks dall-e models for b64_json in their own sizes", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  HttpModelBackend backend(image_model(*fake, WireKind::openai_chat, "dall-e-3"), client);
  CallTrace trace;
  auto submitted = backend.submit_generation(frame_request(), trace);
  REQUIRE(submitted.ok());
  const json sent = json::parse(trace.request_body);
  CHECK(sent["response_format"] == "b64_json");
  CHECK(sent["size"] == "1792x1024");
  CHECK(fake->stats()["images"]["invalid"] == 0);
  // Configured sizes replace the model's; a malformed one is refused with the fix.
  HttpModelBackend sized(image_model(*fake, WireKind::openai_chat, "dall-e-3", {{"image_sizes", {"1024x1024"}}}),
                         client);
  CallTrace sized_trace;
  REQUIRE(sized.submit_generation(frame_request(), sized_trace).ok());
  CHECK(json::parse(sized_trace.request_body)["size"] == "1024x1024");
  auto bad = backends::check_options(WireKind::openai_chat, {{"image_sizes", {"wide"}}}, "model \"x\"");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("a size such as \"1536x1024\"") != std::string::npos);
}

TEST_CASE("a GenPack longer than the model's prompt limit is condensed and the condensing recorded", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  HttpModelBackend backend(image_model(*fake, WireKind::openai_chat, "dall-e-2"), client);
  GenerationRequest r = frame_request();
  for (int i = 0; i < 60; ++i) {
    r.genpack_face += "\nMara walks past lantern " + std::to_string(i) + " along the wet quay.";
  }
  REQUIRE(r.genpack_face.size() > 1000);
  CallTrace trace;
  auto submitted = backend.submit_generation(r, trace);
  REQUIRE(submitted.ok());
  CHECK(json::parse(trace.request_body)["prompt"].get<std::string>().size() <= 1000);
  CHECK(submitted->answer->details["prompt_condensed"]["limit"] == 1000);
  CHECK(fake->stats()["images"]["invalid"] == 0);
}

TEST_CASE("OpenAI Images faults: 500, 429 with Retry-After, content policy, a body that is not an image", "[images]") {
  auto fake = started_fake(json::array({{{"fault", "500"}},
                                        {{"fault", "429"}, {"retry_after_s", 3}},
                                        {{"fault", "content_policy"}},
                                        {{"fault", "not_image"}}}));
  backends::CurlHttpClient client;
  HttpModelBackend backend(image_model(*fake, WireKind::openai_chat, "gpt-image-1"), client);
  auto attempt = [&] {
    CallTrace trace;
    auto result = backend.submit_generation(frame_request(), trace);
    no_key_in(trace);
    REQUIRE_FALSE(result.ok());
    return result.error();
  };
  const Error server = attempt();
  CHECK(server.code == ErrorCode::backend_unavailable);
  CHECK(backends::retryable(server));
  const Error limited = attempt();
  CHECK(limited.code == ErrorCode::rate_limited);
  CHECK(limited.retry_after_ms == std::optional<int64_t>(3000));
  const Error policy = attempt();
  CHECK(policy.code == ErrorCode::rejected);
  CHECK(policy.message.find("moderation_blocked") != std::string::npos);
  CHECK(policy.message.find("content policy") != std::string::npos);
  CHECK(policy.message.find("revise the GenPack") != std::string::npos);
  const Error junk = attempt();
  CHECK(junk.code == ErrorCode::rejected);
  CHECK(junk.message.find("not an image") != std::string::npos);
  // The faults spent, the next request draws.
  CallTrace trace;
  CHECK(backend.submit_generation(frame_request(), trace).ok());
  CHECK(fake->stats()["images"]["faults_applied"] == 4);
}

TEST_CASE("an image-only model refuses text calls, and an image model refuses videos", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  HttpModelBackend backend(image_model(*fake, WireKind::openai_chat, "gpt-image-1"), client);
  CallTrace trace;
  auto text = backend.submit_model(backends::ping_request("frames"), trace);
  REQUIRE_FALSE(text.ok());
  CHECK(text.error().code == ErrorCode::unsupported);
  CHECK(text.error().message.find("image model (capabilities.text is false)") != std::string::npos);
  GenerationRequest video = frame_request();
  video.resolution = "proxy";
  video.duration_s = 4;
  auto rendered = backend.submit_generation(video, trace);
  REQUIRE_FALSE(rendered.ok());
  CHECK(rendered.error().code == ErrorCode::unsupported);
  CHECK(rendered.error().message.find("storyboard frames only") != std::string::npos);
  CHECK(rendered.error().message.find("async_job") != std::string::npos);
  // A chat model without image_out draws nothing.
  HttpModelConfig chat = image_model(*fake, WireKind::openai_chat, "gpt-5-mini");
  chat.image_out = false;
  HttpModelBackend chat_backend(chat, client);
  auto drawn = chat_backend.submit_generation(frame_request(), trace);
  REQUIRE_FALSE(drawn.ok());
  CHECK(drawn.error().message.find("set capabilities.image_out") != std::string::npos);
  CHECK(fake->stats()["images"]["requests"] == 0);
}

TEST_CASE("the fake image API is strict about the fields OpenAI takes", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  auto post = [&](const json& body) {
    backends::HttpRequest request;
    request.url = fake->base_url() + "/v1/images/generations";
    request.headers = {{"content-type", "application/json"},
                       {"authorization", std::string("Bearer ") + k_image_openai_key}};
    request.body = body.dump();
    auto sent = client.send(request, {});
    REQUIRE(sent.ok());
    return sent->status;
  };
  const json good = {{"model", "gpt-image-1"}, {"prompt", "a quay at dusk"}, {"n", 1}, {"size", "1024x1024"}};
  CHECK(post(good) == 200);
  json wrong_size = good;
  wrong_size["size"] = "640x272";
  CHECK(post(wrong_size) == 400);
  json response_format = good;
  response_format["response_format"] = "b64_json";
  CHECK(post(response_format) == 400);
  json unknown = good;
  unknown["steps"] = 30;
  CHECK(post(unknown) == 400);
  const json stats = fake->stats()["images"];
  CHECK(stats["invalid"] == 3);
  CHECK(stats["invalid_reasons"].dump().find("response_format is not supported for GPT image models") !=
        std::string::npos);
}

TEST_CASE("Gemini image output: responseModalities and aspect ratio sent, inlineData decoded", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  for (const std::string modalities : {"text_and_image", "image"}) {
    HttpModelBackend backend(image_model(*fake, WireKind::gemini_generate, "gemini-2.5-flash-image",
                                         {{"image_modalities", modalities}, {"image_size", "1K"}}),
                             client);
    CallTrace trace;
    auto submitted = backend.submit_generation(frame_request(), trace);
    REQUIRE(submitted.ok());
    const backends::GenerationResult& frame = *submitted->answer;
    CHECK(frame.extension == "png");
    CHECK(backends::image_format(frame.media_bytes) == "png");
    CHECK(frame.details["aspect_ratio"] == "21:9");
    CHECK(frame.details["usage"]["candidatesTokenCount"] == 1290);
    const json sent = json::parse(trace.request_body);
    CHECK(sent["generationConfig"]["responseModalities"] ==
          (modalities == "image" ? json::array({"IMAGE"}) : json::array({"TEXT", "IMAGE"})));
    CHECK(sent["generationConfig"]["imageConfig"] == json{{"aspectRatio", "21:9"}, {"imageSize", "1K"}});
    CHECK(sent["contents"][0]["parts"][0]["text"] == frame_request().genpack_face);
    CHECK(trace.response_body.find("<image: ") != std::string::npos);
    no_key_in(trace);
  }
  CHECK(fake->stats()["images"]["invalid"] == 0);
  CHECK(fake->stats()["images"]["by_provider"]["gemini"]["images"] == 2);
  CHECK(fake->stats()["requests"] == 0);  // none reached the chat fake
}

TEST_CASE("Gemini image answers: thought images skipped, blocks and missing images are failed attempts", "[images]") {
  HttpModelConfig config;
  config.model_id = "frames";
  config.kind = WireKind::gemini_generate;
  config.endpoint = "https://generativelanguage.googleapis.com";
  config.image_out = true;
  auto answer = [&](const json& body) {
    backends::HttpResponse response;
    response.status = 200;
    response.body = body.dump();
    std::string attempt_error;
    return backends::parse_image_response(config, response, attempt_error);
  };
  const std::string thought = core::base64("\xFF\xD8\xFF\xE0 a thought sketch");
  const std::string final_frame = core::base64(std::string("\x89PNG\r\n\x1a\n the frame", 18));
  auto drawn = answer({{"candidates",
                        {{{"content",
                           {{"parts",
                             {{{"inlineData", {{"mimeType", "image/jpeg"}, {"data", thought}}}, {"thought", true}},
                              {{"text", "Here it is."}},
                              {{"inlineData", {{"mimeType", "image/png"}, {"data", final_frame}}}}}}}},
                          {"finishReason", "STOP"}}}}});
  REQUIRE(drawn.ok());
  CHECK(drawn->extension == "png");
  CHECK(drawn->details["text"] == "Here it is.");
  auto blocked = answer({{"promptFeedback", {{"blockReason", "PROHIBITED_CONTENT"}}}});
  REQUIRE_FALSE(blocked.ok());
  CHECK(blocked.error().code == ErrorCode::rejected);
  CHECK(blocked.error().message.find("blocked: PROHIBITED_CONTENT") != std::string::npos);
  auto text_only = answer(
      {{"candidates", {{{"content", {{"parts", {{{"text", "I cannot draw that."}}}}}}, {"finishReason", "STOP"}}}}});
  REQUIRE_FALSE(text_only.ok());
  CHECK(text_only.error().message.find("no image part") != std::string::npos);
  CHECK(text_only.error().message.find("I cannot draw that.") != std::string::npos);
}

TEST_CASE("Gemini image faults: 500, 429 with RetryInfo, IMAGE_SAFETY, not an image", "[images]") {
  auto fake = started_fake(json::array({{{"fault", "500"}, {"provider", "gemini"}},
                                        {{"fault", "429"}, {"provider", "gemini"}, {"retry_after_s", 2}},
                                        {{"fault", "content_policy"}, {"provider", "gemini"}},
                                        {{"fault", "not_image"}, {"provider", "gemini"}}}));
  backends::CurlHttpClient client;
  HttpModelBackend backend(image_model(*fake, WireKind::gemini_generate, "gemini-2.5-flash-image"), client);
  auto attempt = [&] {
    CallTrace trace;
    auto result = backend.submit_generation(frame_request(), trace);
    no_key_in(trace);
    REQUIRE_FALSE(result.ok());
    return result.error();
  };
  CHECK(attempt().code == ErrorCode::backend_unavailable);
  const Error limited = attempt();
  CHECK(limited.code == ErrorCode::rate_limited);
  CHECK(limited.retry_after_ms == std::optional<int64_t>(2000));
  const Error policy = attempt();
  CHECK(policy.code == ErrorCode::rejected);
  CHECK(policy.message.find("blocked: IMAGE_SAFETY") != std::string::npos);
  CHECK(policy.message.find("content policy") != std::string::npos);
  const Error junk = attempt();
  CHECK(junk.code == ErrorCode::rejected);
  CHECK(junk.message.find("not an image") != std::string::npos);
}

namespace {

backends::AsyncJobBackend image_job(const FakeProvider& fake, backends::HttpClient& client, const std::string& preset) {
  auto options = backends::async_job_options(preset, {{"poll", {{"interval_s", 0.01}, {"max_wait_s", 5}}}}, "test");
  REQUIRE(options.ok());
  backends::AsyncJobConfig config;
  config.model_id = "frames-" + preset;
  config.preset = preset;
  config.endpoint = fake.base_url() + (preset == "fal_image" ? "/fal" : "");
  config.provider_model = "acme/flux-fake";
  config.api_key = k_image_job_key;
  config.options = *options;
  config.image_out = true;
  config.video_out = false;
  return backends::AsyncJobBackend(config, client);
}

Result<backends::GenerationResult> run_image_job(backends::AsyncJobBackend& backend, CallTrace& trace,
                                                 std::string* ticket = nullptr) {
  AVPS_TRY_ASSIGN(auto submitted, backend.submit_generation(frame_request(), trace));
  REQUIRE(!submitted.ticket.empty());
  if (ticket) {
    *ticket = submitted.ticket;
  }
  for (int i = 0; i < 20; ++i) {
    AVPS_TRY_ASSIGN(auto polled, backend.poll_generation(submitted.ticket, trace));
    if (polled) {
      return std::move(*polled);
    }
  }
  FAIL("the image job never finished");
  return make_error(ErrorCode::timeout, "never finished");
}

}  // namespace

TEST_CASE("Replicate and fal image models through async_job give PNG frames, checked by their bytes", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  for (const std::string preset : {"replicate_image", "fal_image"}) {
    auto backend = image_job(*fake, client, preset);
    CallTrace trace;
    std::string ticket;
    auto frame = run_image_job(backend, trace, &ticket);
    REQUIRE(frame.ok());
    CHECK(frame->extension == "png");
    CHECK(backends::image_format(frame->media_bytes) == "png");
    CHECK(frame->details["image"]["format"] == "png");
    CHECK(frame->seconds_billed == 0);
    CHECK(json::parse(ticket)["output"] == "image");
    const json sent = json::parse(trace.request_body);
    if (preset == "replicate_image") {
      CHECK(sent["input"]["output_format"] == "png");
      CHECK(sent["input"]["aspect_ratio"] == "21:9");
    } else {
      CHECK(sent["image_size"] == json{{"width", 640}, {"height", 272}});
      CHECK(sent["num_images"] == 1);
    }
    no_key_in(trace);
  }
  const json jobs = fake->stats()["jobs"];
  CHECK(jobs["invalid"] == 0);
  CHECK(jobs["submissions"] == 2);
}

TEST_CASE("an image job whose output is not an image is a failed attempt", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  // The job faults are set through the control route, as an e2e script does.
  backends::HttpRequest control;
  control.url = fake->base_url() + "/control";
  control.headers = {{"content-type", "application/json"}};
  control.body = json{{"job_faults", {{{"fault", "not_image"}}}}}.dump();
  REQUIRE(client.send(control, {}).ok());
  auto backend = image_job(*fake, client, "replicate_image");
  CallTrace trace;
  auto frame = run_image_job(backend, trace);
  REQUIRE_FALSE(frame.ok());
  CHECK(frame.error().code == ErrorCode::rejected);
  CHECK(frame.error().message.find("not an image") != std::string::npos);
}

TEST_CASE("an async_job model renders only what its capabilities claim", "[images]") {
  auto fake = started_fake();
  backends::CurlHttpClient client;
  auto image_only = image_job(*fake, client, "replicate_image");
  GenerationRequest video = frame_request();
  video.resolution = "proxy";
  video.duration_s = 4;
  CallTrace trace;
  auto refused = image_only.submit_generation(video, trace);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::unsupported);
  CHECK(refused.error().message.find("image model (video_out false)") != std::string::npos);
  auto options = backends::async_job_options("runway", json::object(), "test");
  REQUIRE(options.ok());
  backends::AsyncJobConfig config;
  config.model_id = "video-only";
  config.endpoint = fake->base_url();
  config.provider_model = "gen4_turbo";
  config.options = *options;
  backends::AsyncJobBackend video_only(config, client);
  auto no_frame = video_only.submit_generation(frame_request(), trace);
  REQUIRE_FALSE(no_frame.ok());
  CHECK(no_frame.error().message.find("has no image_out") != std::string::npos);
  CHECK(fake->stats()["jobs"]["submissions"] == 0);
}

TEST_CASE("the registry allows image_out where an image operation exists, and says the fix elsewhere",
          "[images][registry]") {
  auto spec = [](const std::string& id, const std::string& backend) {
    backends::BackendSpec s;
    s.model_id = id;
    s.backend = backend;
    s.endpoint = backend == "openai_chat" ? "https://api.openai.com/v1" : "https://generativelanguage.googleapis.com";
    s.generates = true;
    s.image_out = true;
    s.text = false;
    return s;
  };
  const auto env = [](const char*) -> const char* { return nullptr; };
  auto opened = backends::BackendRegistry::open({spec("gpt-image", "openai_chat"), spec("nano", "gemini_generate")},
                                                json::object(), env);
  REQUIRE(opened.ok());
  CHECK((*opened)->kind_of("gpt-image") == "openai_chat");
  backends::BackendSpec video = spec("gpt-video", "openai_chat");
  video.video_out = true;
  backends::BackendSpec claude = spec("claude-draws", "anthropic_messages");
  claude.endpoint = "https://api.anthropic.com";
  auto refused = backends::BackendRegistry::open({video, claude}, json::object(), env);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::configuration);
  const std::string& message = refused.error().message;
  CHECK(message.find("model \"gpt-video\" (openai_chat): capabilities.video_out is true, but openai_chat renders "
                     "no video: set it to false") != std::string::npos);
  CHECK(message.find("model \"claude-draws\" (anthropic_messages): capabilities.image_out is true, but "
                     "anthropic_messages has no image output") != std::string::npos);
}

TEST_CASE("a JPEG or WebP frame becomes the PNG a STORYBOARD is", "[images]") {
  const std::string png(std::string("\x89PNG\r\n\x1a\n rest", 13));
  auto same = backends::to_png(png);
  REQUIRE(same.ok());
  CHECK(*same == png);
  auto junk = backends::to_png("<html></html>");
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.error().code == ErrorCode::invalid_argument);
  if (!core::on_path("ffmpeg")) {
    WARN("ffmpeg is not installed: the JPEG conversion is not exercised");
    return;
  }
  auto dir = core::ScratchDir::make("avps-test-jpeg");
  REQUIRE(dir.ok());
  const auto jpeg_file = dir->path() / "frame.jpg";
  REQUIRE(core::run_program({"ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=orange:s=64x32",
                             "-frames:v", "1", jpeg_file.string()},
                            "making a test JPEG")
              .ok());
  auto jpeg = core::read_file(jpeg_file);
  REQUIRE(jpeg.ok());
  REQUIRE(backends::image_format(*jpeg) == "jpeg");
  auto converted = backends::to_png(*jpeg);
  REQUIRE(converted.ok());
  CHECK(backends::image_format(*converted) == "png");
  auto again = backends::to_png(*jpeg);
  REQUIRE(again.ok());
  CHECK(*again == *converted);  // bit-exact: the same frame gives the same PNG
}

TEST_CASE("a frame refused 429 waits the provider's Retry-After and is drawn, a 500 is not sent again", "[images]") {
  auto fake = started_fake(json::array({{{"fault", "429"}, {"retry_after_s", 4}}, {{"fault", "500"}, {"skip", 1}}}));
  backends::CurlHttpClient client;
  RecordingSleeper sleeper;
  auto policy = backends::RetryPolicy::from_json(json::object(), "test");
  REQUIRE(policy.ok());
  backends::RetryingBackend backend(
      std::make_unique<HttpModelBackend>(image_model(*fake, WireKind::openai_chat, "gpt-image-1"), client), *policy, 7,
      sleeper);
  CallTrace trace;
  auto drawn = backend.submit_generation(frame_request(), trace);
  REQUIRE(drawn.ok());
  CHECK(backends::image_format(drawn->answer->media_bytes) == "png");
  REQUIRE(trace.attempts.size() == 2);
  CHECK(trace.attempts[0].status == 429);
  CHECK(trace.attempts[0].wait_ms == 4000);
  CHECK(sleeper.waits == std::vector<int64_t>{4000});
  // A 500 may have come after the provider drew (and billed) the frame: the generation rule does
  // not send it again; the exchange moves to the tier's next image model, or stops the run.
  CallTrace failed_trace;
  auto failed = backend.submit_generation(frame_request(), failed_trace);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == ErrorCode::backend_unavailable);
  CHECK(failed_trace.attempts.size() == 1);
  CHECK(fake->stats()["images"]["requests"] == 3);
}
