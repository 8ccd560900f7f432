// async_job (async_job.hpp): presets, the option check, the prompt condensing rule, and the
// submit / poll / fetch / cancel machine.

#include "avps/backends/async_job.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "avps/backends/image_output.hpp"
#include "avps/core/canonical_json.hpp"
#include "job_wire.hpp"

namespace avps::backends {
using nlohmann::json;

namespace {
using job_wire::at_pointer;
using job_wire::capped;
using job_wire::dimensions;
using job_wire::is_2xx;
using job_wire::on_endpoint;
using job_wire::path_escape;
using job_wire::scrub;
using job_wire::status_error;

// The presets of backend-apis.md §4 (read 2026-11-25). Providers change their APIs: every field
// can be overridden in a model's options.
const char* const k_presets = R"JSON({
"runway": {
  "submit": {"method": "POST", "path": "/v1/text_to_video",
             "body": {"model": "{{model}}", "promptText": "{{prompt}}", "ratio": "{{ratio}}",
                      "duration": "{{duration}}", "seed": "{{seed}}"}},
  "headers": {"X-Runway-Version": "2024-11-06"},
  "auth": {"header": "Authorization", "scheme": "Bearer "},
  "id_path": "/id",
  "poll": {"path": "/v1/tasks/{id}", "interval_s": 5, "max_wait_s": 1800, "accept_status": [200]},
  "status_path": "/status",
  "status_map": {"PENDING": "queued", "THROTTLED": "queued", "RUNNING": "running", "SUCCEEDED": "succeeded",
                 "FAILED": "failed", "CANCELLED": "canceled"},
  "error_path": "/failure",
  "result": {"fetch": "inline"},
  "output_url_paths": ["/output/0"],
  "download_auth": false,
  "cost_path": "/cost/credits", "cost_unit_micro_usd": 10000,
  "cancel": {"method": "DELETE", "path": "/v1/tasks/{id}"},
  "limits": {"prompt_max_chars": 1000, "ratios": ["1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"],
             "durations": [5, 10]}
},
"luma": {
  "submit": {"method": "POST", "path": "/dream-machine/v1/generations/video",
             "body": {"model": "{{model}}", "prompt": "{{prompt}}", "aspect_ratio": "{{ratio}}",
                      "duration": "{{duration}}s", "resolution": "{{resolution}}"}},
  "auth": {"header": "Authorization", "scheme": "Bearer "},
  "id_path": "/id",
  "poll": {"path": "/dream-machine/v1/generations/{id}", "interval_s": 3, "max_wait_s": 1800, "accept_status": [200]},
  "status_path": "/state",
  "status_map": {"queued": "queued", "dreaming": "running", "completed": "succeeded", "failed": "failed"},
  "error_path": "/failure_reason",
  "result": {"fetch": "inline"},
  "output_url_paths": ["/assets/video"],
  "download_auth": false,
  "cancel": {"method": "DELETE", "path": "/dream-machine/v1/generations/{id}"},
  "limits": {"ratios": ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"], "durations": [5, 9],
             "resolutions": ["540p", "720p", "1080p"]}
},
"luma_agents": {
  "submit": {"method": "POST", "path": "/v1/generations",
             "body": {"model": "{{model}}", "type": "video", "prompt": "{{prompt}}", "aspect_ratio": "{{ratio}}",
                      "video": {"duration": "{{duration}}s", "resolution": "{{resolution}}"}}},
  "headers": {"X-API-Version": "2026-04-01"},
  "auth": {"header": "Authorization", "scheme": "Bearer "},
  "id_path": "/id",
  "poll": {"path": "/v1/generations/{id}", "interval_s": 3, "max_wait_s": 1800, "accept_status": [200]},
  "status_path": "/state",
  "status_map": {"queued": "queued", "processing": "running", "completed": "succeeded", "failed": "failed"},
  "error_path": "/failure_reason",
  "result": {"fetch": "inline"},
  "output_url_paths": ["/output/0/url"],
  "download_auth": false,
  "cancel": null,
  "limits": {"ratios": ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"], "durations": [5, 10],
             "resolutions": ["540p", "720p", "1080p"]}
},
"replicate": {
  "submit": {"method": "POST", "path": "/v1/models/{model}/predictions",
             "body": {"input": {"prompt": "{{prompt}}", "duration": "{{duration}}", "aspect_ratio": "{{ratio}}",
                                "seed": "{{seed}}"}}},
  "auth": {"header": "Authorization", "scheme": "Bearer "},
  "id_path": "/id",
  "poll": {"path": "/v1/predictions/{id}", "interval_s": 2, "max_wait_s": 1800, "accept_status": [200]},
  "status_path": "/status",
  "status_map": {"starting": "queued", "processing": "running", "succeeded": "succeeded", "failed": "failed",
                 "canceled": "canceled", "aborted": "failed"},
  "error_path": "/error",
  "result": {"fetch": "inline"},
  "output_url_paths": ["/output", "/output/0"],
  "download_auth": false,
  "cancel": {"method": "POST", "path": "/v1/predictions/{id}/cancel"},
  "limits": {"ratios": ["16:9", "9:16", "1:1"], "durations": [5, 8, 10]}
},
"fal": {
  "submit": {"method": "POST", "path": "/{model}",
             "body": {"prompt": "{{prompt}}", "duration": "{{duration}}", "aspect_ratio": "{{ratio}}"}},
  "auth": {"header": "Authorization", "scheme": "Key "},
  "id_path": "/request_id",
  "poll_url_path": "/status_url", "result_url_path": "/response_url", "cancel_url_path": "/cancel_url",
  "poll": {"path": "", "interval_s": 2, "max_wait_s": 1800, "accept_status": [200, 202]},
  "status_path": "/status",
  "status_map": {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "succeeded"},
  "result": {"fetch": "url"},
  "output_url_paths": ["/video/url"],
  "download_auth": false,
  "cancel": {"method": "PUT", "path": ""},
  "limits": {"ratios": ["16:9", "9:16", "1:1"], "durations": [4, 6, 8]}
},
"veo": {
  "submit": {"method": "POST", "path": "/v1beta/models/{model}:predictLongRunning",
             "body": {"instances": [{"prompt": "{{prompt}}"}],
                      "parameters": {"aspectRatio": "{{ratio}}", "durationSeconds": "{{duration}}",
                                     "resolution": "{{resolution}}", "sampleCount": 1}}},
  "auth": {"header": "x-goog-api-key", "scheme": ""},
  "id_path": "/name",
  "poll": {"path": "/v1beta/{id}", "interval_s": 10, "max_wait_s": 1800, "accept_status": [200]},
  "done_path": "/done",
  "error_path": "/error/message",
  "result": {"fetch": "inline"},
  "output_url_paths": ["/response/generateVideoResponse/generatedSamples/0/video/uri"],
  "download_auth": true,
  "cancel": null,
  "limits": {"ratios": ["16:9", "9:16"], "durations": [4, 6, 8], "resolutions": ["720p", "1080p"]}
},
"openai_videos": {
  "submit": {"method": "POST", "path": "/v1/videos",
             "body": {"model": "{{model}}", "prompt": "{{prompt}}", "seconds": "{{duration_text}}", "size": "{{ratio}}"}},
  "auth": {"header": "Authorization", "scheme": "Bearer "},
  "id_path": "/id",
  "poll": {"path": "/v1/videos/{id}", "interval_s": 5, "max_wait_s": 1800, "accept_status": [200]},
  "status_path": "/status",
  "status_map": {"queued": "queued", "in_progress": "running", "completed": "succeeded", "failed": "failed"},
  "error_path": "/error/message",
  "result": {"fetch": "binary", "path": "/v1/videos/{id}/content?variant=video"},
  "download_auth": true,
  "cancel": {"method": "DELETE", "path": "/v1/videos/{id}"},
  "limits": {"ratios": ["1280x720", "720x1280", "1792x1024", "1024x1792"], "durations": [4, 8, 12]}
},
"replicate_image": {
  "submit": {"method": "POST", "path": "/v1/models/{model}/predictions",
             "body": {"input": {"prompt": "{{prompt}}", "aspect_ratio": "{{ratio}}", "output_format": "png",
                                "seed": "{{seed}}"}}},
  "auth": {"header": "Authorization", "scheme": "Bearer "},
  "id_path": "/id",
  "poll": {"path": "/v1/predictions/{id}", "interval_s": 1, "max_wait_s": 600, "accept_status": [200]},
  "status_path": "/status",
  "status_map": {"starting": "queued", "processing": "running", "succeeded": "succeeded", "failed": "failed",
                 "canceled": "canceled", "aborted": "failed"},
  "error_path": "/error",
  "result": {"fetch": "inline"},
  "output_url_paths": ["/output", "/output/0"],
  "download_auth": false,
  "cancel": {"method": "POST", "path": "/v1/predictions/{id}/cancel"},
  "limits": {"ratios": ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]}
},
"fal_image": {
  "submit": {"method": "POST", "path": "/{model}",
             "body": {"prompt": "{{prompt}}", "image_size": {"width": "{{width}}", "height": "{{height}}"},
                      "num_images": 1, "output_format": "png", "seed": "{{seed}}"}},
  "auth": {"header": "Authorization", "scheme": "Key "},
  "id_path": "/request_id",
  "poll_url_path": "/status_url", "result_url_path": "/response_url", "cancel_url_path": "/cancel_url",
  "poll": {"path": "", "interval_s": 1, "max_wait_s": 600, "accept_status": [200, 202]},
  "status_path": "/status",
  "status_map": {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "succeeded"},
  "result": {"fetch": "url"},
  "output_url_paths": ["/images/0/url"],
  "download_auth": false,
  "cancel": {"method": "PUT", "path": ""}
}
})JSON";

const json& presets() {
  static const json k_parsed = json::parse(k_presets);
  return k_parsed;
}

// Defaults every preset and a preset-less entry start from.
json defaults() {
  return json{{"submit", {{"method", "POST"}, {"path", ""}, {"body", json::object()}}},
              {"headers", json::object()},
              {"auth", {{"header", "Authorization"}, {"scheme", "Bearer "}}},
              {"id_path", "/id"},
              {"poll_url_path", ""},
              {"result_url_path", ""},
              {"cancel_url_path", ""},
              {"poll", {{"path", ""}, {"interval_s", 5}, {"max_wait_s", 1800}, {"accept_status", {200}}}},
              {"status_path", ""},
              {"status_map", json::object()},
              {"done_path", ""},
              {"error_path", ""},
              {"result", {{"fetch", "inline"}, {"path", ""}}},
              {"output_url_paths", json::array()},
              {"download_auth", false},
              {"max_download_bytes", int64_t{512} * 1024 * 1024},
              {"cost_path", ""},
              {"cost_unit_micro_usd", 0},
              {"cancel", nullptr},
              {"limits",
               {{"prompt_max_chars", 0},
                {"ratios", json::array()},
                {"durations", json::array()},
                {"resolutions", json::array()}}},
              {"timeout_s", 120},
              {"connect_timeout_s", 10},
              {"retry", json::object()}};
}

// RFC 7386-style merge: objects merge member by member, anything else replaces.
void merge_into(json& target, const json& patch) {
  if (!patch.is_object() || !target.is_object()) {
    target = patch;
    return;
  }
  for (const auto& [key, value] : patch.items()) {
    if (value.is_object() && target.contains(key) && target[key].is_object()) {
      merge_into(target[key], value);
    } else {
      target[key] = value;
    }
  }
}

bool valid_pointer(const json& value) {
  if (!value.is_string()) {
    return false;
  }
  const std::string& text = value.get_ref<const std::string&>();
  if (text.empty()) {
    return true;
  }
  try {
    json::json_pointer p(text);
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string text_of(const json& value) {
  if (value.is_string()) {
    return value.get<std::string>();
  }
  if (value.is_null()) {
    return "";
  }
  return value.dump();
}

// "16:9" or "1280x720" as width / height, 0 when malformed.
double ratio_value(const std::string& ratio) {
  size_t sep = ratio.find(':');
  if (sep == std::string::npos) {
    sep = ratio.find('x');
  }
  if (sep == std::string::npos) {
    return 0;
  }
  try {
    const double w = std::stod(ratio.substr(0, sep));
    const double h = std::stod(ratio.substr(sep + 1));
    return h > 0 ? w / h : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

// The allowed ratio nearest to the request's aspect (the first of equals), or the reduced
// aspect itself when the provider lists none.
std::string fit_ratio(const json& ratios, int width, int height) {
  if (width <= 0 || height <= 0) {
    return ratios.empty() ? std::string("16:9") : ratios[0].get<std::string>();
  }
  if (ratios.empty()) {
    const int g = std::gcd(width, height);
    return std::to_string(width / g) + ":" + std::to_string(height / g);
  }
  const double want = std::log(static_cast<double>(width) / height);
  std::string best = ratios[0].get<std::string>();
  double best_distance = 1e9;
  for (const json& r : ratios) {
    const double value = ratio_value(r.get<std::string>());
    if (value <= 0) {
      continue;
    }
    const double distance = std::fabs(std::log(value) - want);
    if (distance < best_distance - 1e-9) {
      best_distance = distance;
      best = r.get<std::string>();
    }
  }
  return best;
}

// The smallest allowed duration that holds the shot, else the longest allowed.
int64_t fit_duration(const json& durations, double seconds) {
  const int64_t want = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(seconds - 1e-9)));
  if (durations.empty()) {
    return want;
  }
  std::vector<int64_t> allowed;
  for (const json& d : durations) {
    allowed.push_back(d.get<int64_t>());
  }
  std::sort(allowed.begin(), allowed.end());
  for (int64_t d : allowed) {
    if (d >= want) {
      return d;
    }
  }
  return allowed.back();
}

// "720p" for a height, snapped to the provider's list (nearest, the first of equals).
std::string fit_resolution(const json& resolutions, int height) {
  if (resolutions.empty()) {
    return std::to_string(height) + "p";
  }
  std::string best = resolutions[0].get<std::string>();
  int best_distance = 1 << 30;
  for (const json& r : resolutions) {
    const std::string text = r.get<std::string>();
    const int value = text == "4k" ? 2160 : std::atoi(text.c_str());
    if (std::abs(value - height) < best_distance) {
      best_distance = std::abs(value - height);
      best = text;
    }
  }
  return best;
}

// Fills a body template: a string that is one placeholder takes the value's type; other strings
// get text substitution.
json fill_template(const json& node, const std::map<std::string, json>& values) {
  if (node.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : node.items()) {
      out[key] = fill_template(value, values);
    }
    return out;
  }
  if (node.is_array()) {
    json out = json::array();
    for (const json& value : node) {
      out.push_back(fill_template(value, values));
    }
    return out;
  }
  if (!node.is_string()) {
    return node;
  }
  std::string text = node.get<std::string>();
  for (const auto& [name, value] : values) {
    if (text == "{{" + name + "}}") {
      return value;
    }
  }
  for (const auto& [name, value] : values) {
    text = replace_all(text, "{{" + name + "}}", text_of(value));
  }
  return text;
}

// The placeholders a template uses that no value fills.
void unknown_placeholders(const json& node, std::vector<std::string>& out) {
  static const std::vector<std::string> k_known = {"prompt", "model",  "duration", "duration_text", "ratio",
                                                   "width",  "height", "pixels",   "resolution",    "seed"};
  if (node.is_object() || node.is_array()) {
    for (const json& value : node) {
      unknown_placeholders(value, out);
    }
    return;
  }
  if (!node.is_string()) {
    return;
  }
  const std::string& text = node.get_ref<const std::string&>();
  for (size_t open = text.find("{{"); open != std::string::npos; open = text.find("{{", open + 2)) {
    const size_t close = text.find("}}", open);
    if (close == std::string::npos) {
      out.push_back(text.substr(open));
      return;
    }
    const std::string name = text.substr(open + 2, close - open - 2);
    if (std::find(k_known.begin(), k_known.end(), name) == k_known.end()) {
      out.push_back("{{" + name + "}}");
    }
  }
}

}  // namespace

const std::vector<std::string>& async_job_presets() {
  static const std::vector<std::string> k_names = [] {
    std::vector<std::string> names;
    for (const auto& [name, value] : presets().items()) {
      names.push_back(name);
    }
    return names;
  }();
  return k_names;
}

Result<json> async_job_options(const std::string& preset, const json& overrides, const std::string& where) {
  auto problem = [&](const std::string& what) { return make_error(ErrorCode::configuration, where + ": " + what); };
  json options = defaults();
  if (!preset.empty()) {
    if (!presets().contains(preset)) {
      std::string known;
      for (const std::string& name : async_job_presets()) {
        known += (known.empty() ? "" : ", ") + name;
      }
      return problem("preset \"" + preset + "\" is not known (known: " + known + ")");
    }
    merge_into(options, presets()[preset]);
  }
  if (!overrides.is_object()) {
    return problem("options must be an object");
  }
  for (const auto& [key, value] : overrides.items()) {
    if (!options.contains(key)) {
      return problem("options." + key + " is not an async_job option (docs/providers.md lists them)");
    }
  }
  merge_into(options, overrides);
  // Shapes and values, each named.
  const json& submit = options["submit"];
  if (!submit.is_object() || !submit["method"].is_string() || !submit["path"].is_string() ||
      !submit["body"].is_object()) {
    return problem("options.submit must be {\"method\", \"path\", \"body\": {...}}");
  }
  if (submit["path"].get<std::string>().empty()) {
    return problem("options.submit.path is empty: give the provider's submit path (or a preset)");
  }
  std::vector<std::string> unknown;
  unknown_placeholders(submit["body"], unknown);
  if (!unknown.empty()) {
    return problem("options.submit.body uses " + unknown.front() +
                   ", which is not a placeholder (prompt, model, duration, duration_text, ratio, width, height, "
                   "pixels, resolution, seed)");
  }
  for (const char* pointer_field : {"id_path", "poll_url_path", "result_url_path", "cancel_url_path", "status_path",
                                    "done_path", "error_path", "cost_path"}) {
    if (!valid_pointer(options[pointer_field])) {
      return problem(std::string("options.") + pointer_field + " must be a JSON pointer such as \"/id\"");
    }
  }
  if (options["id_path"].get<std::string>().empty()) {
    return problem("options.id_path is empty: say where the job id is in the submit reply");
  }
  const json& poll = options["poll"];
  if (!poll.is_object() || !poll["path"].is_string() || !poll["interval_s"].is_number() ||
      !poll["max_wait_s"].is_number() || !poll["accept_status"].is_array()) {
    return problem("options.poll must be {\"path\", \"interval_s\", \"max_wait_s\", \"accept_status\": [200]}");
  }
  if (poll["interval_s"].get<double>() < 0.01 || poll["max_wait_s"].get<double>() < poll["interval_s"].get<double>()) {
    return problem("options.poll.interval_s must be at least 0.01 and max_wait_s at least the interval");
  }
  if (poll["path"].get<std::string>().empty() && options["poll_url_path"].get<std::string>().empty()) {
    return problem("options.poll.path is empty and no poll_url_path says where the provider names it");
  }
  const bool by_status = !options["status_path"].get<std::string>().empty();
  const bool by_done = !options["done_path"].get<std::string>().empty();
  if (by_status == by_done) {
    return problem("give exactly one of options.status_path (with status_map) and options.done_path");
  }
  static const std::vector<std::string> k_states = {"queued", "running", "succeeded", "failed", "canceled"};
  if (!options["status_map"].is_object()) {
    return problem("options.status_map must map provider values to queued, running, succeeded, failed, canceled");
  }
  for (const auto& [value, state] : options["status_map"].items()) {
    if (!state.is_string() || std::find(k_states.begin(), k_states.end(), state.get<std::string>()) == k_states.end()) {
      return problem("options.status_map." + value + " must be one of queued, running, succeeded, failed, canceled");
    }
  }
  const json& result = options["result"];
  const std::string fetch = result.is_object() ? result.value("fetch", "") : "";
  if (fetch != "inline" && fetch != "url" && fetch != "binary") {
    return problem("options.result.fetch must be \"inline\", \"url\" or \"binary\"");
  }
  if (fetch == "binary" && result.value("path", "").empty()) {
    return problem("options.result.path is empty: fetch \"binary\" downloads from that path");
  }
  if (fetch == "url" && options["result_url_path"].get<std::string>().empty()) {
    return problem("options.result_url_path is empty: fetch \"url\" reads the result from the URL it names");
  }
  if (fetch != "binary" && (!options["output_url_paths"].is_array() || options["output_url_paths"].empty())) {
    return problem("options.output_url_paths must list where the output's URL is (JSON pointers)");
  }
  for (const json& p : options["output_url_paths"]) {
    if (!valid_pointer(p)) {
      return problem("options.output_url_paths holds a value that is not a JSON pointer");
    }
  }
  if (!options["download_auth"].is_boolean()) {
    return problem("options.download_auth must be true or false");
  }
  if (!options["max_download_bytes"].is_number_integer() || options["max_download_bytes"].get<int64_t>() < 1) {
    return problem("options.max_download_bytes must be a positive integer");
  }
  if (!options["cost_unit_micro_usd"].is_number_integer() || options["cost_unit_micro_usd"].get<int64_t>() < 0) {
    return problem("options.cost_unit_micro_usd must be an integer >= 0 (micro-USD per unit at cost_path)");
  }
  const json& cancel = options["cancel"];
  if (!cancel.is_null() && (!cancel.is_object() || !cancel["method"].is_string() || !cancel["path"].is_string())) {
    return problem("options.cancel must be null (the provider cannot cancel) or {\"method\", \"path\"}");
  }
  if (cancel.is_object() && cancel["path"].get<std::string>().empty() &&
      options["cancel_url_path"].get<std::string>().empty()) {
    return problem("options.cancel.path is empty and no cancel_url_path says where the provider names it");
  }
  const json& limits = options["limits"];
  if (!limits.is_object() || !limits["prompt_max_chars"].is_number_integer() || !limits["ratios"].is_array() ||
      !limits["durations"].is_array() || !limits["resolutions"].is_array()) {
    return problem("options.limits must be {\"prompt_max_chars\", \"ratios\", \"durations\", \"resolutions\"}");
  }
  for (const json& d : limits["durations"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1) {
      return problem("options.limits.durations must hold whole seconds");
    }
  }
  for (const json& r : limits["ratios"]) {
    if (!r.is_string() || ratio_value(r.get<std::string>()) <= 0) {
      return problem("options.limits.ratios must hold \"W:H\" or \"WxH\" strings");
    }
  }
  if (!options["headers"].is_object() || !options["auth"].is_object() || !options["auth"]["header"].is_string() ||
      !options["auth"]["scheme"].is_string()) {
    return problem("options.headers must be an object and options.auth {\"header\", \"scheme\"}");
  }
  for (const auto& [name, value] : options["headers"].items()) {
    if (!value.is_string()) {
      return problem("options.headers." + name + " must be a string");
    }
  }
  if (!options["timeout_s"].is_number_integer() || !options["connect_timeout_s"].is_number_integer()) {
    return problem("options.timeout_s and connect_timeout_s must be whole seconds");
  }
  return options;
}

int64_t utf16_units(const std::string& utf8) {
  int64_t units = 0;
  for (unsigned char c : utf8) {
    if ((c & 0xC0) != 0x80) {
      units += (c >= 0xF0) ? 2 : 1;  // a 4-byte sequence is a surrogate pair
    }
  }
  return units;
}

CondensedPrompt condense_prompt(const std::string& face, int64_t max_units) {
  CondensedPrompt out;
  out.original_units = utf16_units(face);
  if (max_units <= 0 || out.original_units <= max_units) {
    out.text = face;
    out.units = out.original_units;
    return out;
  }
  out.condensed = true;
  static const std::vector<std::string> k_parts = {
      "[STYLE]", "[SET]", "[CHARACTERS]", "[ACTION]", "[CARRIED INPUTS]", "[NEGATIVES / NO-DRIFT]", "[SETTINGS]"};
  static const std::vector<std::string> k_anchor_sections = {"[Signature Identifiers]", "[Visual Anchors]",
                                                             "[Canonical Appearance]", "[Prop Anchors]"};
  static const std::vector<std::string> k_style_sections = {"[Visual Style]", "[Palette]", "[Lighting]"};
  auto among = [](const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  };
  auto starts = [](const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; };
  // Each line with its priority (0 first) and the section it belongs to.
  struct Line {
    std::string text;
    std::string section;
    int priority = 0;
  };
  std::vector<Line> lines;
  std::string part;     // the GenPack's own section
  std::string section;  // a lock's sub-section inside it, else the part
  size_t start = 0;
  while (start <= face.size()) {
    size_t end = face.find('\n', start);
    if (end == std::string::npos) {
      end = face.size();
    }
    std::string text = face.substr(start, end - start);
    start = end + 1;
    if (!text.empty() && text.back() == '\r') {
      text.pop_back();
    }
    const size_t first = text.find_first_not_of(" \t");
    if (first == std::string::npos) {
      continue;  // blank
    }
    const std::string trimmed = text.substr(first);
    if (among(k_parts, trimmed)) {
      part = section = trimmed;
    } else if (trimmed.front() == '[' && trimmed.back() == ']') {
      section = trimmed;
    }
    // Bookkeeping of the face (gate lines, lock file names, heredoc markers) carries nothing a
    // video model can use: it goes first.
    if (starts(trimmed, "GenPack:") || starts(trimmed, "Gate:") || starts(trimmed, "Gate scores:") ||
        starts(trimmed, "Gate reasons:") || starts(trimmed, "text: <<") || trimmed == "END" ||
        starts(trimmed, "lock:") || starts(trimmed, "- lock:") || starts(trimmed, "- artifact:") ||
        starts(trimmed, "reinforced_anchors: []")) {
      continue;
    }
    int priority = 5;
    if (among(k_anchor_sections, section) || starts(trimmed, "Character Lock:") || starts(trimmed, "Set Lock:") ||
        starts(trimmed, "reinforced_anchors") || (part == "[CHARACTERS]" && section == part)) {
      priority = 0;  // the locks' anchors, and whose they are
    } else if (part == "[ACTION]") {
      priority = 1;
    } else if (among(k_style_sections, section)) {
      priority = 2;
    } else if (part == "[NEGATIVES / NO-DRIFT]" || part == "[CARRIED INPUTS]") {
      priority = 3;  // a project's carried inputs (PROP_LIST) rank with the negatives
    } else if (part == "[SETTINGS]") {
      priority = 4;
    }
    lines.push_back({text, section.empty() ? "(header)" : section, priority});
  }
  std::vector<size_t> by_priority(lines.size());
  std::iota(by_priority.begin(), by_priority.end(), size_t{0});
  std::stable_sort(by_priority.begin(), by_priority.end(),
                   [&](size_t a, size_t b) { return lines[a].priority < lines[b].priority; });
  std::vector<bool> kept(lines.size(), false);
  int64_t used = 0;
  for (size_t i : by_priority) {
    const int64_t cost = utf16_units(lines[i].text) + (used == 0 ? 0 : 1);  // + the newline joining it
    if (used + cost <= max_units) {
      kept[i] = true;
      used += cost;
    }
  }
  // The kept lines in the face's own order; what was dropped, by section, in order.
  std::vector<std::string> order;
  std::map<std::string, std::pair<int, int>> dropped_of;  // section -> (dropped, lines)
  for (size_t i = 0; i < lines.size(); ++i) {
    if (kept[i]) {
      out.text += (out.text.empty() ? "" : "\n") + lines[i].text;
    }
    auto& [dropped, total] = dropped_of[lines[i].section];
    if (total == 0) {
      order.push_back(lines[i].section);
    }
    ++total;
    dropped += kept[i] ? 0 : 1;
  }
  for (const std::string& name : order) {
    const auto& [dropped, total] = dropped_of[name];
    if (dropped > 0) {
      out.dropped.push_back(name + " " + std::to_string(dropped) + " of " + std::to_string(total) + " lines");
    }
  }
  out.units = utf16_units(out.text);
  return out;
}

AsyncJobBackend::AsyncJobBackend(AsyncJobConfig config, HttpClient& client)
    : m_config(std::move(config)), m_client(client) {}

Result<Submitted<ModelResponse>> AsyncJobBackend::submit_model(const ModelRequest& /*request*/, CallTrace& /*trace*/) {
  return make_error(ErrorCode::unsupported, "model \"" + m_config.model_id +
                                                "\" is an async_job render model: it answers no text call (give "
                                                "its tiers only gen_premium, gen_mid or gen_low)");
}

JobTiming AsyncJobBackend::job_timing() const { return job_wire::timing_of(m_config.options["poll"]); }

Result<HttpResponse> AsyncJobBackend::exchange(HttpRequest request, bool with_key, CallTrace& trace,
                                               const HttpOptions& http) const {
  trace.provider = "async_job";
  trace.endpoint_host = url_host(m_config.endpoint);
  // The key goes only to the endpoint's host: a URL the provider named elsewhere gets none.
  if (with_key && !m_config.api_key.empty() && url_host(request.url) == url_host(m_config.endpoint)) {
    request.headers.emplace_back(m_config.options["auth"]["header"].get<std::string>(),
                                 m_config.options["auth"]["scheme"].get<std::string>() + m_config.api_key);
  }
  if (with_key) {
    for (const auto& [name, value] : m_config.options["headers"].items()) {
      request.headers.emplace_back(name, value.get<std::string>());
    }
  }
  HttpAttempt attempt;
  Result<HttpResponse> sent = m_client.send(request, http);
  if (!sent) {
    attempt.error = scrub(sent.error().message, m_config.api_key);
    trace.attempts.push_back(std::move(attempt));
    return make_error(sent.error().code, scrub(sent.error().message, m_config.api_key));
  }
  attempt.status = sent->status;
  attempt.latency_ms = sent->latency_ms;
  attempt.request_id = sent->header("x-request-id");
  if (!is_2xx(sent->status)) {
    attempt.error = std::to_string(sent->status);
  }
  trace.attempts.push_back(std::move(attempt));
  return sent;
}

Result<Submitted<GenerationResult>> AsyncJobBackend::submit_generation(const GenerationRequest& request,
                                                                       CallTrace& trace) {
  const json& options = m_config.options;
  const json& limits = options["limits"];
  const std::string who = "model \"" + m_config.model_id + "\" (" + url_host(m_config.endpoint) + ")";
  const bool image = request.resolution == "storyboard";
  AVPS_TRY(check_output_kind(image, request));
  Submitted<GenerationResult> submitted;
  const CondensedPrompt prompt = condense_prompt(request.genpack_face, limits["prompt_max_chars"].get<int64_t>());
  if (prompt.condensed) {
    submitted.details["prompt_condensed"] = {{"from_units", prompt.original_units},
                                             {"to_units", prompt.units},
                                             {"dropped", prompt.dropped},
                                             {"limit", limits["prompt_max_chars"]}};
  }
  const auto [width, height] = dimensions(request.pixels);
  const int64_t duration = fit_duration(limits["durations"], request.duration_s);
  const std::string ratio = fit_ratio(limits["ratios"], width, height);
  const std::string resolution = fit_resolution(limits["resolutions"], height);
  submitted.details["duration_s"] = duration;
  submitted.details["ratio"] = ratio;
  const std::map<std::string, json> values = {
      {"prompt", prompt.text},    {"model", m_config.provider_model},
      {"duration", duration},     {"duration_text", std::to_string(duration)},
      {"ratio", ratio},           {"width", width},
      {"height", height},         {"pixels", request.pixels},
      {"resolution", resolution}, {"seed", static_cast<int64_t>(request.seed % 4294967296ULL)},
  };
  HttpRequest wire;
  wire.method = options["submit"]["method"].get<std::string>();
  wire.url = on_endpoint(m_config.endpoint, replace_all(options["submit"]["path"].get<std::string>(), "{model}",
                                                        path_escape(m_config.provider_model)));
  wire.headers.emplace_back("Content-Type", "application/json");
  AVPS_TRY_ASSIGN(wire.body, core::canonical_json(fill_template(options["submit"]["body"], values)));
  trace.request_body = wire.body;
  trace.response_body.clear();
  AVPS_TRY_ASSIGN(HttpResponse reply, exchange(wire, true, trace, m_config.http));
  trace.response_body = scrub(reply.body, m_config.api_key);
  if (!is_2xx(reply.status)) {
    return status_error(reply.status, who + " refused the job", reply.body, m_config.api_key, reply);
  }
  const json parsed = json::parse(reply.body, nullptr, false);
  const json* id = at_pointer(parsed, options["id_path"].get<std::string>());
  if (!id || !id->is_string() || id->get<std::string>().empty()) {
    // 2xx without a job id: a job may exist that avps cannot follow. Not retried (a second POST
    // could bill twice); the message says where to look.
    return make_error(ErrorCode::rejected, who + " accepted the job but its reply has no job id at " +
                                               options["id_path"].get<std::string>() +
                                               " (check the provider's dashboard for an orphaned job)");
  }
  // An image job's ticket says so: its output is checked as an image, and it bills no seconds.
  json ticket =
      image ? json{{"id", *id}, {"output", "image"}, {"seconds", 0}} : json{{"id", *id}, {"seconds", duration}};
  for (const char* field : {"poll_url", "result_url", "cancel_url"}) {
    const std::string pointer = options[std::string(field) + "_path"].get<std::string>();
    if (pointer.empty()) {
      continue;
    }
    const json* url = at_pointer(parsed, pointer);
    if (!url || !url->is_string()) {
      return make_error(ErrorCode::rejected, who + " replied without the " + field + " at " + pointer + " (job id " +
                                                 id->get<std::string>() + ")");
    }
    ticket[field] = *url;
  }
  AVPS_TRY_ASSIGN(submitted.ticket, core::canonical_json(ticket));
  return submitted;
}

Result<std::optional<GenerationResult>> AsyncJobBackend::poll_generation(const std::string& ticket_text,
                                                                         CallTrace& trace) {
  const json& options = m_config.options;
  const json ticket = json::parse(ticket_text, nullptr, false);
  if (!ticket.is_object() || !ticket.contains("id")) {
    return make_error(ErrorCode::invalid_argument, "not an async_job ticket: " + capped(ticket_text, 80));
  }
  const std::string id = ticket["id"].get<std::string>();
  const std::string who = "model \"" + m_config.model_id + "\" job " + id;
  HttpRequest wire;
  wire.method = "GET";
  wire.url = ticket.contains("poll_url")
                 ? ticket["poll_url"].get<std::string>()
                 : on_endpoint(m_config.endpoint,
                               replace_all(options["poll"]["path"].get<std::string>(), "{id}", path_escape(id)));
  AVPS_TRY_ASSIGN(HttpResponse reply, exchange(wire, true, trace, m_config.http));
  trace.response_body = scrub(reply.body, m_config.api_key);
  const json& accept = options["poll"]["accept_status"];
  if (std::find(accept.begin(), accept.end(), json(reply.status)) == accept.end()) {
    if (reply.status == 404) {
      return make_error(ErrorCode::rejected, who + ": the provider does not know the job (HTTP 404)");
    }
    return status_error(reply.status, who + " poll", reply.body, m_config.api_key, reply);
  }
  const json parsed = json::parse(reply.body, nullptr, false);
  if (parsed.is_discarded()) {
    return make_error(ErrorCode::backend_unavailable, who + ": the poll reply is not JSON");
  }
  std::string state;
  std::string provider_status;
  if (const std::string done_path = options["done_path"].get<std::string>(); !done_path.empty()) {
    const json* done = at_pointer(parsed, done_path);
    const bool finished = done && done->is_boolean() && done->get<bool>();
    const json* error = at_pointer(parsed, options["error_path"].get<std::string>());
    state = !finished ? "running" : (error && !error->is_null() ? "failed" : "succeeded");
    provider_status = finished ? "done" : "not done";
  } else {
    const json* status = at_pointer(parsed, options["status_path"].get<std::string>());
    provider_status = status ? text_of(*status) : "";
    const json& map = options["status_map"];
    if (!map.contains(provider_status)) {
      return make_error(ErrorCode::rejected, who + ": status \"" + capped(provider_status, 60) + "\" at " +
                                                 options["status_path"].get<std::string>() +
                                                 " is not in options.status_map (add it to the model's options)");
    }
    state = map[provider_status].get<std::string>();
  }
  if (state == "queued" || state == "running") {
    trace.job_state = provider_status == state || provider_status.empty()
                          ? state
                          : state + " (" + capped(scrub(provider_status, m_config.api_key), 40) + ")";
    return std::optional<GenerationResult>();
  }
  if (state == "failed" || state == "canceled") {
    const json* error = at_pointer(parsed, options["error_path"].get<std::string>());
    const std::string why = error && !error->is_null() ? capped(scrub(text_of(*error), m_config.api_key)) : "";
    return make_error(ErrorCode::rejected, who + (state == "failed" ? " failed" : " was canceled by the provider") +
                                               " (" + provider_status + ")" + (why.empty() ? "" : ": " + why));
  }
  AVPS_TRY_ASSIGN(GenerationResult result, fetch_output(ticket, parsed, trace));
  result.details["job_id"] = id;
  result.details["provider_status"] = provider_status;
  return std::optional<GenerationResult>(std::move(result));
}

Result<GenerationResult> AsyncJobBackend::fetch_output(const json& ticket, const json& poll_reply,
                                                       CallTrace& trace) const {
  const json& options = m_config.options;
  const std::string id = ticket["id"].get<std::string>();
  const std::string who = "model \"" + m_config.model_id + "\" job " + id;
  const std::string fetch = options["result"]["fetch"].get<std::string>();
  json reply = poll_reply;
  if (fetch == "url") {
    HttpRequest wire;
    wire.method = "GET";
    wire.url = ticket.value("result_url", "");
    AVPS_TRY_ASSIGN(HttpResponse got, exchange(wire, true, trace, m_config.http));
    trace.response_body = scrub(got.body, m_config.api_key);
    if (!is_2xx(got.status)) {
      Error error = status_error(got.status, who + " result", got.body, m_config.api_key, got);
      // A finished job whose result is an error with the provider's "detail" (fal's way of saying a
      // run failed) is the job's failure, not load shedding.
      const json detail = json::parse(got.body, nullptr, false);
      const bool job_failed = got.status != 429 && detail.is_object() && detail.contains("detail");
      if (error.code == ErrorCode::rejected || job_failed) {
        error.code = ErrorCode::rejected;
        error.retry_after_ms.reset();
        error.message = who + " failed: its result is HTTP " + std::to_string(got.status) + ": " +
                        capped(scrub(got.body, m_config.api_key));
      }
      return error;
    }
    reply = json::parse(got.body, nullptr, false);
    if (reply.is_discarded()) {
      return make_error(ErrorCode::backend_unavailable, who + ": the result is not JSON");
    }
  }
  GenerationResult result;
  result.model = m_config.model_id;
  result.seconds_billed = ticket.value("seconds", 0.0);
  // The provider's bill, where it names one.
  if (const std::string cost_path = options["cost_path"].get<std::string>(); !cost_path.empty()) {
    const json* cost = at_pointer(reply, cost_path);
    if (!cost) {
      cost = at_pointer(poll_reply, cost_path);
    }
    if (cost && cost->is_number()) {
      result.details["provider_cost_raw"] = *cost;
      result.provider_cost_micro_usd =
          static_cast<int64_t>(std::llround(cost->get<double>() * options["cost_unit_micro_usd"].get<double>()));
    }
  }
  HttpRequest download;
  download.method = "GET";
  bool with_key = options["download_auth"].get<bool>();
  if (fetch == "binary") {
    download.url = on_endpoint(m_config.endpoint,
                               replace_all(options["result"]["path"].get<std::string>(), "{id}", path_escape(id)));
    with_key = true;
  } else {
    for (const json& pointer : options["output_url_paths"]) {
      const json* url = at_pointer(reply, pointer.get<std::string>());
      if (url && url->is_string() && !url->get<std::string>().empty()) {
        download.url = url->get<std::string>();
        break;
      }
    }
    if (download.url.empty()) {
      return make_error(ErrorCode::rejected,
                        who + " succeeded, but no output URL is at any of options.output_url_paths");
    }
    if (download.url.rfind("http://", 0) != 0 && download.url.rfind("https://", 0) != 0) {
      return make_error(ErrorCode::rejected, who + ": the output URL is not http(s)");
    }
  }
  HttpOptions http = m_config.http;
  http.max_response_bytes = options["max_download_bytes"].get<int64_t>();
  HttpResponse got;
  // Redirects (Veo's download) are followed by hand, at most 3, the key never leaving the
  // endpoint's host (exchange() sends it only there).
  for (int hop = 0;; ++hop) {
    AVPS_TRY_ASSIGN(got, exchange(download, with_key, trace, http));
    const std::string location = got.header("location");
    if (got.status >= 300 && got.status < 400 && !location.empty() && hop < 3) {
      download.url = location;
      continue;
    }
    break;
  }
  if (ticket.value("output", "") == "image") {
    AVPS_TRY(job_wire::check_download(got, download.url, who, m_config.api_key));
    AVPS_TRY_ASSIGN(result, image_result(std::move(result), std::move(got.body), who));
    return result;
  }
  AVPS_TRY(job_wire::accept_output(std::move(got), download.url, "", who, m_config.api_key, result));
  return result;
}

Result<void> AsyncJobBackend::cancel_generation(const std::string& ticket_text, CallTrace& trace) {
  const json& options = m_config.options;
  const json ticket = json::parse(ticket_text, nullptr, false);
  if (!ticket.is_object() || !ticket.contains("id")) {
    return make_error(ErrorCode::invalid_argument, "not an async_job ticket: " + capped(ticket_text, 80));
  }
  const std::string id = ticket["id"].get<std::string>();
  const json& cancel = options["cancel"];
  if (cancel.is_null()) {
    return make_error(ErrorCode::unsupported, "model \"" + m_config.model_id + "\": the provider has no cancel (job " +
                                                  id + " runs on; the preset's options.cancel is null)");
  }
  HttpRequest wire;
  wire.method = cancel["method"].get<std::string>();
  wire.url =
      ticket.contains("cancel_url")
          ? ticket["cancel_url"].get<std::string>()
          : on_endpoint(m_config.endpoint, replace_all(cancel["path"].get<std::string>(), "{id}", path_escape(id)));
  AVPS_TRY_ASSIGN(HttpResponse reply, exchange(wire, true, trace, m_config.http));
  // 404 and 409: the job is gone or finished already; either way nothing runs on.
  if (!is_2xx(reply.status) && reply.status != 404 && reply.status != 409) {
    return status_error(reply.status, "model \"" + m_config.model_id + "\" cancel of job " + id, reply.body,
                        m_config.api_key, reply);
  }
  return ok();
}

Result<void> AsyncJobBackend::check_output_kind(bool image, const GenerationRequest& request) const {
  const std::string who = "model \"" + m_config.model_id + "\"";
  if (image && !m_config.image_out) {
    return make_error(ErrorCode::unsupported, who + " has no image_out: it draws no storyboard frame of " +
                                                  request.shot_id +
                                                  " (set capabilities.image_out and an image "
                                                  "preset such as replicate_image or fal_image)");
  }
  if (!image && !m_config.video_out) {
    return make_error(ErrorCode::unsupported, who + " is an image model (video_out false): it renders no " +
                                                  request.resolution + " video of " + request.shot_id);
  }
  return ok();
}

Result<GenerationResult> AsyncJobBackend::image_result(GenerationResult result, std::string bytes,
                                                       const std::string& who) const {
  // By the bytes, not the URL or the content type: a CDN's error page can be served as image/png.
  const std::string format = image_format(bytes);
  if (format.empty()) {
    return make_error(ErrorCode::rejected, who +
                                               " succeeded, but its output is not an image (no PNG, JPEG or WebP "
                                               "signature; " +
                                               std::to_string(bytes.size()) + " bytes)");
  }
  result.extension = image_extension(format);
  result.details["image"] = {{"format", format}, {"bytes", static_cast<int64_t>(bytes.size())}};
  result.media_bytes = std::move(bytes);
  return result;
}

}  // namespace avps::backends
