// FakeImages (fake_images.hpp): OpenAI Images and Gemini image output on a loopback server.

#include "support/fake_images.hpp"

#include <httplib.h>

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "avps/backends/sim_backend.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/process.hpp"

namespace avps::testing {
using nlohmann::json;

namespace {

struct ImageFault {
  std::string fault;
  std::string provider;  // "" = any
  int64_t times = 1;
  int64_t skip = 0;
  int64_t retry_after_s = 0;
};

const std::set<std::string>& fault_names() {
  static const std::set<std::string> k_names = {"500", "429", "content_policy", "not_image", "jpeg"};
  return k_names;
}

bool starts(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

std::vector<std::string> sizes_of(const std::string& model) {
  if (starts(model, "dall-e-2")) {
    return {"256x256", "512x512", "1024x1024"};
  }
  if (starts(model, "dall-e-3")) {
    return {"1024x1024", "1792x1024", "1024x1792"};
  }
  return {"1024x1024", "1536x1024", "1024x1536", "auto"};
}

bool among(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

struct FakeImages::Impl {
  explicit Impl(FakeImagesConfig c) : config(std::move(c)), sim(backends::SimSettings{}, config.seed) {}

  FakeImagesConfig config;
  backends::SimBackend sim;
  mutable std::mutex mutex;
  std::vector<ImageFault> faults;
  int64_t requests = 0;
  int64_t valid = 0;
  int64_t invalid = 0;
  int64_t images = 0;
  int64_t faults_applied = 0;
  std::vector<std::string> invalid_reasons;
  std::map<std::string, std::map<std::string, int64_t>> by_provider;

  void count_invalid(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex);
    ++invalid;
    if (invalid_reasons.size() < 50) {
      invalid_reasons.push_back(reason);
    }
  }

  static void openai_error(httplib::Response& res, int status, const std::string& type, const std::string& code,
                           const std::string& message) {
    res.status = status;
    res.set_content(json{{"error",
                          {{"message", message},
                           {"type", type},
                           {"param", nullptr},
                           {"code", code.empty() ? json(nullptr) : json(code)}}}}
                        .dump(),
                    "application/json");
  }

  static void gemini_error(httplib::Response& res, int status, const std::string& state, const std::string& message,
                           json details = json::array()) {
    res.status = status;
    res.set_content(
        json{{"error", {{"code", status}, {"message", message}, {"status", state}, {"details", details}}}}.dump(),
        "application/json");
  }

  // The auth rule of both APIs: the key in its header only. "" when the request passes.
  std::string auth_problem(const httplib::Request& req, const std::string& header, const std::string& scheme,
                           const std::string& key) const {
    for (const auto& [name, value] : req.params) {
      if (name == "key" || name == "api_key" || (!key.empty() && value.find(key) != std::string::npos)) {
        return "a key in the URL";
      }
    }
    const std::string given = req.get_header_value(header);
    if (key.empty()) {
      return given.empty() ? "" : "an auth header where none is expected";
    }
    return given == scheme + key ? "" : "missing or wrong " + header + " header";
  }

  // The first fault rule for `provider` with times left, consumed; "" for none.
  ImageFault take_fault(const std::string& provider) {
    std::lock_guard<std::mutex> lock(mutex);
    for (ImageFault& f : faults) {
      if ((!f.provider.empty() && f.provider != provider) || f.times == 0) {
        continue;
      }
      if (f.skip > 0) {
        --f.skip;
        continue;
      }
      if (f.times > 0) {
        --f.times;
      }
      ++faults_applied;
      return f;
    }
    return {};
  }

  // A sim PNG for `prompt` at an eighth of `size` (at least 16 px a side).
  Result<std::string> draw(const std::string& prompt, const std::string& size) const {
    int width = 1024;
    int height = 1024;
    if (const size_t x = size.find('x'); x != std::string::npos) {
      width = std::atoi(size.substr(0, x).c_str());
      height = std::atoi(size.substr(x + 1).c_str());
    }
    backends::GenerationRequest r;
    r.shot_id = "S01_SH01";
    r.model = "fake-image";
    r.tier = "gen_low";
    r.genpack_face = prompt;
    r.resolution = "storyboard";
    r.pixels = std::to_string(std::max(16, width / 8)) + "x" + std::to_string(std::max(16, height / 8));
    r.seed = std::stoull(core::sha256_hex(prompt).substr(0, 12), nullptr, 16);
    AVPS_TRY_ASSIGN(backends::GenerationResult made, sim.generate(r));
    return made.media_bytes;
  }

  // "" when an OpenAI images body is what the API takes.
  static std::string check_openai(const json& b) {
    static const std::set<std::string> k_fields = {
        "model",           "prompt",        "n",          "size",       "quality",
        "response_format", "output_format", "background", "moderation", "output_compression",
        "style",           "user"};
    if (!b.is_object()) {
      return "the body is not a JSON object";
    }
    for (const auto& [key, value] : b.items()) {
      if (!k_fields.count(key)) {
        return "Unknown parameter: '" + key + "'";
      }
    }
    if (!b.contains("model") || !b["model"].is_string() || b["model"].get<std::string>().empty()) {
      return "model is required";
    }
    if (!b.contains("prompt") || !b["prompt"].is_string() || b["prompt"].get<std::string>().empty()) {
      return "prompt is required";
    }
    const std::string model = b["model"].get<std::string>();
    const bool dalle = starts(model, "dall-e");
    const size_t limit = starts(model, "dall-e-2") ? 1000 : starts(model, "dall-e-3") ? 4000 : 32000;
    if (b["prompt"].get<std::string>().size() > limit) {
      return "prompt is longer than " + std::to_string(limit) + " characters";
    }
    if (b.contains("n") && (!b["n"].is_number_integer() || b["n"].get<int>() < 1 || b["n"].get<int>() > 10 ||
                            (starts(model, "dall-e-3") && b["n"].get<int>() != 1))) {
      return "n must be an integer from 1 to 10 (1 for dall-e-3)";
    }
    if (b.contains("size") && (!b["size"].is_string() || !among(sizes_of(model), b["size"].get<std::string>()))) {
      return "size " + b["size"].dump() + " is not one " + model + " takes";
    }
    if (b.contains("quality")) {
      const std::vector<std::string> qualities = dalle ? std::vector<std::string>{"standard", "hd", "auto"}
                                                       : std::vector<std::string>{"low", "medium", "high", "auto"};
      if (!b["quality"].is_string() || !among(qualities, b["quality"].get<std::string>())) {
        return "quality " + b["quality"].dump() + " is not one " + model + " takes";
      }
    }
    if (b.contains("response_format")) {
      if (!dalle) {
        return "response_format is not supported for GPT image models (they always return b64_json)";
      }
      if (b["response_format"] != "b64_json" && b["response_format"] != "url") {
        return "response_format must be url or b64_json";
      }
    }
    if (b.contains("output_format") && dalle) {
      return "output_format is only supported for GPT image models";
    }
    return "";
  }

  void openai(const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++requests;
      ++by_provider["openai"]["requests"];
    }
    std::string problem = auth_problem(req, "Authorization", "Bearer ", config.openai_key);
    if (problem.empty() && req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
      problem = "content type must be application/json";
    }
    const json body = json::parse(req.body, nullptr, false);
    if (problem.empty()) {
      problem = check_openai(body);
    }
    if (!problem.empty()) {
      count_invalid("openai images: " + problem);
      openai_error(res, problem.find("header") != std::string::npos ? 401 : 400, "invalid_request_error", "", problem);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++valid;
    }
    const ImageFault fault = take_fault("openai");
    if (fault.fault == "500") {
      openai_error(res, 500, "server_error", "", "The server had an error while processing your request.");
      return;
    }
    if (fault.fault == "429") {
      res.set_header("Retry-After", std::to_string(fault.retry_after_s));
      openai_error(res, 429, "rate_limit_error", "rate_limit_exceeded", "Rate limit reached for images per minute.");
      return;
    }
    if (fault.fault == "content_policy") {
      openai_error(res, 400, "image_generation_user_error", "moderation_blocked",
                   "Your request was rejected by the safety system.");
      return;
    }
    const std::string size = body.value("size", "1024x1024");
    std::string bytes = "<html><body>Service temporarily unavailable</body></html>";
    if (fault.fault != "not_image") {
      Result<std::string> drawn = draw(body["prompt"].get<std::string>(), size == "auto" ? "1024x1024" : size);
      if (!drawn) {
        openai_error(res, 500, "server_error", "", "the fake could not draw: " + drawn.error().message);
        return;
      }
      bytes = std::move(*drawn);
    }
    const int64_t prompt_tokens = static_cast<int64_t>(body["prompt"].get<std::string>().size() + 3) / 4;
    json reply = {{"created", 1764900000},
                  {"data", json::array({{{"b64_json", core::base64(bytes)}}})},
                  {"usage",
                   {{"input_tokens", prompt_tokens},
                    {"input_tokens_details", {{"text_tokens", prompt_tokens}, {"image_tokens", 0}}},
                    {"output_tokens", 1056},
                    {"total_tokens", prompt_tokens + 1056}}}};
    if (!starts(body["model"].get<std::string>(), "dall-e")) {
      reply["size"] = size;
      reply["output_format"] = "png";
      reply["quality"] = body.value("quality", "medium") == "auto" ? "medium" : body.value("quality", "medium");
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (fault.fault.empty()) {
        ++images;
        ++by_provider["openai"]["images"];
      }
    }
    res.set_header("x-request-id", "req_fake_image");
    res.set_content(reply.dump(), "application/json");
  }

  // The frame as a JPEG, made by ffmpeg (the "jpeg" answer: Gemini may send image/jpeg).
  static Result<std::string> as_jpeg(const std::string& png) {
    AVPS_TRY_ASSIGN(core::ScratchDir dir, core::ScratchDir::make("fake-jpeg"));
    AVPS_TRY(core::write_file_atomic(dir.path() / "in.png", png, core::Overwrite::yes, core::Durability::cached));
    AVPS_TRY(core::run_program({"ffmpeg", "-nostdin", "-loglevel", "error", "-i", (dir.path() / "in.png").string(),
                                (dir.path() / "out.jpg").string()},
                               "the fake's JPEG"));
    return core::read_file(dir.path() / "out.jpg");
  }

  // "" when a Gemini image body is what the API takes.
  static std::string check_gemini(const json& b) {
    static const std::set<std::string> k_fields = {"contents", "generationConfig", "safetySettings",
                                                   "systemInstruction"};
    static const std::set<std::string> k_config = {"responseModalities", "imageConfig", "temperature", "seed",
                                                   "candidateCount"};
    static const std::vector<std::string> k_ratios = {"1:1", "2:3", "3:2",  "3:4",  "4:3",
                                                      "4:5", "5:4", "9:16", "16:9", "21:9"};
    if (!b.is_object()) {
      return "the body is not a JSON object";
    }
    for (const auto& [key, value] : b.items()) {
      if (!k_fields.count(key)) {
        return "Invalid JSON payload received. Unknown name \"" + key + "\"";
      }
    }
    const json& contents = b.value("contents", json());
    if (!contents.is_array() || contents.empty() || !contents.back().is_object() ||
        contents.back().value("role", "user") != "user" || !contents.back().value("parts", json()).is_array() ||
        contents.back()["parts"].empty()) {
      return "contents must end with a user turn with parts";
    }
    bool text = false;
    for (const json& part : contents.back()["parts"]) {
      text = text || (part.is_object() && part.contains("text") && part["text"].is_string() &&
                      !part["text"].get<std::string>().empty());
    }
    if (!text) {
      return "the user turn has no text part";
    }
    const json& config = b.value("generationConfig", json::object());
    for (const auto& [key, value] : config.items()) {
      if (!k_config.count(key)) {
        return "generationConfig." + key + " is not supported with image output";
      }
    }
    const json& modalities = config.value("responseModalities", json());
    bool image = false;
    if (!modalities.is_array()) {
      return "generationConfig.responseModalities must be an array";
    }
    for (const json& m : modalities) {
      if (m != "TEXT" && m != "IMAGE") {
        return "responseModalities holds " + m.dump();
      }
      image = image || m == "IMAGE";
    }
    if (!image) {
      return "responseModalities does not ask for IMAGE";
    }
    if (config.contains("imageConfig")) {
      const json& ic = config["imageConfig"];
      if (!ic.is_object()) {
        return "imageConfig must be an object";
      }
      for (const auto& [key, value] : ic.items()) {
        if (key == "aspectRatio") {
          if (!value.is_string() || !among(k_ratios, value.get<std::string>())) {
            return "imageConfig.aspectRatio " + value.dump() + " is not supported";
          }
        } else if (key == "imageSize") {
          if (value != "1K" && value != "2K" && value != "4K") {
            return "imageConfig.imageSize must be 1K, 2K or 4K";
          }
        } else {
          return "imageConfig." + key + " is not supported in the Gemini API";
        }
      }
    }
    return "";
  }

  void gemini(const std::string& model, const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++requests;
      ++by_provider["gemini"]["requests"];
    }
    std::string problem = auth_problem(req, "x-goog-api-key", "", config.gemini_key);
    const json body = json::parse(req.body, nullptr, false);
    if (problem.empty()) {
      problem = check_gemini(body);
    }
    if (!problem.empty()) {
      count_invalid("gemini image: " + problem);
      gemini_error(res, problem.find("header") != std::string::npos ? 401 : 400,
                   problem.find("header") != std::string::npos ? "UNAUTHENTICATED" : "INVALID_ARGUMENT", problem);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++valid;
    }
    const ImageFault fault = take_fault("gemini");
    if (fault.fault == "500") {
      gemini_error(res, 500, "INTERNAL", "An internal error has occurred.");
      return;
    }
    if (fault.fault == "429") {
      gemini_error(res, 429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.",
                   json::array({{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                 {"retryDelay", std::to_string(fault.retry_after_s) + "s"}}}));
      return;
    }
    std::string prompt;
    for (const json& part : body["contents"].back()["parts"]) {
      prompt += part.value("text", "");
    }
    const json usage = {{"promptTokenCount", static_cast<int64_t>(prompt.size() + 3) / 4},
                        {"candidatesTokenCount", 1290},
                        {"totalTokenCount", static_cast<int64_t>(prompt.size() + 3) / 4 + 1290}};
    if (fault.fault == "content_policy") {
      res.set_content(json{{"candidates", json::array({{{"finishReason", "IMAGE_SAFETY"}, {"index", 0}}})},
                           {"usageMetadata", usage},
                           {"modelVersion", model}}
                          .dump(),
                      "application/json");
      return;
    }
    std::string bytes = "<html><body>Service temporarily unavailable</body></html>";
    if (fault.fault != "not_image") {
      const std::string ratio =
          body["generationConfig"].value("imageConfig", json::object()).value("aspectRatio", "1:1");
      const size_t colon = ratio.find(':');
      const int w = std::atoi(ratio.substr(0, colon).c_str());
      const int h = std::atoi(ratio.substr(colon + 1).c_str());
      Result<std::string> drawn =
          draw(prompt, std::to_string(1024 * w / std::max(w, h)) + "x" + std::to_string(1024 * h / std::max(w, h)));
      if (!drawn) {
        gemini_error(res, 500, "INTERNAL", "the fake could not draw: " + drawn.error().message);
        return;
      }
      bytes = std::move(*drawn);
    }
    std::string mime = "image/png";
    if (fault.fault == "jpeg") {
      Result<std::string> jpeg = as_jpeg(bytes);
      if (!jpeg) {
        gemini_error(res, 500, "INTERNAL", "the fake could not make a JPEG: " + jpeg.error().message);
        return;
      }
      bytes = std::move(*jpeg);
      mime = "image/jpeg";
    }
    json parts = json::array();
    if (among(body["generationConfig"]["responseModalities"].get<std::vector<std::string>>(), "TEXT")) {
      parts.push_back({{"text", "Here is the storyboard frame."}});
    }
    parts.push_back({{"inlineData", {{"mimeType", mime}, {"data", core::base64(bytes)}}}});
    json reply = {
        {"candidates",
         json::array({{{"content", {{"role", "model"}, {"parts", parts}}}, {"finishReason", "STOP"}, {"index", 0}}})},
        {"usageMetadata", usage},
        {"modelVersion", model}};
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (fault.fault.empty() || fault.fault == "jpeg") {
        ++images;
        ++by_provider["gemini"]["images"];
      }
    }
    res.set_content(reply.dump(), "application/json");
  }
};

FakeImages::FakeImages(FakeImagesConfig config) : m_impl(std::make_unique<Impl>(std::move(config))) {}
FakeImages::~FakeImages() = default;

bool FakeImages::wants_image(const httplib::Request& req) {
  const json body = json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("generationConfig") || !body["generationConfig"].is_object()) {
    return false;
  }
  const json& modalities = body["generationConfig"].value("responseModalities", json());
  return modalities.is_array() && std::find(modalities.begin(), modalities.end(), json("IMAGE")) != modalities.end();
}

void FakeImages::gemini(const std::string& model, const httplib::Request& req, httplib::Response& res) {
  m_impl->gemini(model, req, res);
}

Result<void> FakeImages::set_faults(const json& rules) {
  if (!rules.is_array()) {
    return make_error(ErrorCode::invalid_argument, "image_faults must be an array");
  }
  std::vector<ImageFault> parsed;
  for (const json& rule : rules) {
    if (!rule.is_object()) {
      return make_error(ErrorCode::invalid_argument, "an image fault rule must be an object");
    }
    ImageFault f;
    for (const auto& [key, value] : rule.items()) {
      if (key == "fault" && value.is_string() && fault_names().count(value.get<std::string>())) {
        f.fault = value.get<std::string>();
      } else if (key == "provider" && (value == "openai" || value == "gemini")) {
        f.provider = value.get<std::string>();
      } else if (key == "times" && value.is_number_integer()) {
        f.times = value.get<int64_t>();
      } else if (key == "skip" && value.is_number_integer()) {
        f.skip = value.get<int64_t>();
      } else if (key == "retry_after_s" && value.is_number_integer()) {
        f.retry_after_s = value.get<int64_t>();
      } else {
        return make_error(ErrorCode::invalid_argument, "image fault rule: bad field \"" + key + "\"");
      }
    }
    if (f.fault.empty()) {
      return make_error(ErrorCode::invalid_argument, "image fault rule: \"fault\" is required");
    }
    parsed.push_back(f);
  }
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  m_impl->faults = std::move(parsed);
  return ok();
}

json FakeImages::stats() const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  const Impl& i = *m_impl;
  return {{"requests", i.requests},      {"valid", i.valid},
          {"invalid", i.invalid},        {"invalid_reasons", i.invalid_reasons},
          {"images", i.images},          {"faults_applied", i.faults_applied},
          {"by_provider", i.by_provider}};
}

void FakeImages::reset_stats() {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  Impl& i = *m_impl;
  i.requests = i.valid = i.invalid = i.images = i.faults_applied = 0;
  i.invalid_reasons.clear();
  i.by_provider.clear();
}

void FakeImages::routes(httplib::Server& server) {
  Impl* impl = m_impl.get();
  server.Post("/v1/images/generations",
              [impl](const httplib::Request& req, httplib::Response& res) { impl->openai(req, res); });
}

}  // namespace avps::testing
