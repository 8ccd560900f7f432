// FakeJobs (fake_jobs.hpp): the job APIs of the async_job presets on a loopback server.

#include "support/fake_jobs.hpp"

#include <httplib.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "avps/backends/async_job.hpp"
#include "avps/backends/sim_backend.hpp"
#include "avps/core/hash.hpp"

namespace avps::testing {
using nlohmann::json;

namespace {

struct JobFault {
  std::string fault;
  std::string preset;  // "" = any
  int64_t times = 1;
  int64_t skip = 0;
  int64_t polls = 3;  // throttled: how many polls report it
};

const std::set<std::string>& fault_names() {
  static const std::set<std::string> k_names = {"job_fails", "never_finishes", "throttled", "output_404",
                                                "not_video", "submit_429",     "not_image"};
  return k_names;
}

struct Job {
  std::string id;
  std::string preset;
  std::string model;
  std::string body;  // the submitted body, canonical as received
  double seconds = 5;
  bool image = false;  // an image model's job (replicate_image, fal_image): its output is a PNG
  std::string fault;
  int64_t throttled_polls = 0;
  int64_t polls = 0;
  bool canceled = false;
  bool ended = false;  // reported a terminal state (for in_flight)
  std::chrono::steady_clock::time_point last_touch;
  std::string bytes;  // the rendered output, once made
  // ComfyUI: the prompt's graph and client, its queue number, its output nodes, and whether a
  // POST /queue delete took it off the queue.
  json graph;
  std::string client_id;
  int64_t number = 0;
  std::vector<std::string> output_nodes;
  bool deleted = false;
  std::string state = "queued";  // what the last poll found (GET /queue reads it, never advances it)
};

std::string auth_header_of(const std::string& preset) { return preset == "veo" ? "x-goog-api-key" : "Authorization"; }
std::string scheme_of(const std::string& preset) {
  if (preset == "veo") {
    return "";
  }
  return preset == "fal" ? "Key " : "Bearer ";
}

}  // namespace

struct FakeJobs::Impl {
  explicit Impl(FakeJobsConfig c) : config(std::move(c)) {
    backends::SimSettings settings;
    settings.media = "video";
    sim = std::make_unique<backends::SimBackend>(settings, config.seed);
  }

  FakeJobsConfig config;
  std::unique_ptr<backends::SimBackend> sim;
  mutable std::mutex mutex;
  std::vector<JobFault> faults;
  std::map<std::string, Job> jobs;
  int64_t next_id = 1;
  // Counters.
  std::map<std::string, int64_t> submissions;
  std::set<std::string> bodies;
  int64_t duplicate_submissions = 0;
  int64_t polls = 0;
  int64_t polls_too_early = 0;
  int64_t cancels = 0;
  int64_t downloads = 0;
  int64_t in_flight = 0;
  int64_t max_in_flight = 0;
  int64_t invalid = 0;
  std::vector<std::string> invalid_reasons;
  // ComfyUI.
  std::map<std::string, std::string> uploads;  // input file name -> bytes
  std::string last_client_id;
  std::set<std::string> client_ids;
  int64_t interrupts = 0;
  int64_t queue_deletes = 0;

  void reject(httplib::Response& res, int status, const std::string& reason) {
    ++invalid;
    if (invalid_reasons.size() < 50) {
      invalid_reasons.push_back(reason);
    }
    res.status = status;
    res.set_content(json{{"error", reason}}.dump(), "application/json");
  }

  // The auth check of every job route: the preset's header and scheme with the key, no key in
  // the URL. Under the mutex.
  bool authorized(const std::string& preset, const httplib::Request& req, httplib::Response& res) {
    for (const auto& [name, value] : req.params) {
      if (name == "key" || name == "api_key" || (!config.key.empty() && value.find(config.key) != std::string::npos)) {
        reject(res, 400, preset + ": a key in the URL");
        return false;
      }
    }
    const std::string header = req.get_header_value(auth_header_of(preset));
    if (config.key.empty()) {
      if (!header.empty()) {
        reject(res, 401, preset + ": an auth header where none is expected");
        return false;
      }
      return true;
    }
    if (header != scheme_of(preset) + config.key) {
      reject(res, 401, preset + ": missing or wrong " + auth_header_of(preset) + " header");
      return false;
    }
    return true;
  }

  // The first fault rule that matches a new job of `preset`, consumed.
  std::string take_fault(const std::string& preset, int64_t& throttled_polls) {
    for (JobFault& f : faults) {
      if (!f.preset.empty() && f.preset != preset) {
        continue;
      }
      if (f.times == 0) {
        continue;
      }
      if (f.skip > 0) {
        --f.skip;
        continue;
      }
      if (f.times > 0) {
        --f.times;
      }
      throttled_polls = f.polls;
      return f.fault;
    }
    return "";
  }

  static std::string base(const httplib::Request& req) { return "http://" + req.get_header_value("Host"); }

  // What a submit body must hold, per preset: "" when it does.
  // Whether a submit body is an image model's (the replicate_image and fal_image presets' shape).
  static bool image_body(const std::string& preset, const json& b) {
    if (!b.is_object()) {
      return false;
    }
    if (preset == "replicate") {
      return b.contains("input") && b["input"].is_object() && b["input"].contains("output_format") &&
             !b["input"].contains("duration");
    }
    return preset == "fal" && b.contains("image_size") && !b.contains("duration");
  }

  static std::string check_body(const std::string& preset, const json& b, double& seconds) {
    auto str = [&](const json& v) { return v.is_string() && !v.get<std::string>().empty(); };
    if (!b.is_object()) {
      return "the body is not a JSON object";
    }
    if (preset == "runway") {
      if (!str(b.value("promptText", json())) || !str(b.value("model", json())) || !str(b.value("ratio", json()))) {
        return "runway needs model, promptText and ratio";
      }
      if (backends::utf16_units(b["promptText"].get<std::string>()) > 1000) {
        return "runway: promptText longer than 1000 UTF-16 units";
      }
      static const std::set<std::string> k_ratios = {"1280:720", "720:1280", "1104:832",
                                                     "960:960",  "832:1104", "1584:672"};
      if (!k_ratios.count(b["ratio"].get<std::string>())) {
        return "runway: ratio " + b["ratio"].get<std::string>() + " is not one Runway takes";
      }
      if (!b.value("duration", json()).is_number_integer() ||
          (b["duration"].get<int>() != 5 && b["duration"].get<int>() != 10)) {
        return "runway: duration must be 5 or 10";
      }
      seconds = b["duration"].get<double>();
    } else if (preset == "luma" || preset == "luma_agents") {
      if (!str(b.value("prompt", json())) || !str(b.value("model", json()))) {
        return preset + " needs model and prompt";
      }
      const json d =
          preset == "luma" ? b.value("duration", json()) : b.value("video", json::object()).value("duration", json());
      if (!str(d) || d.get<std::string>().back() != 's') {
        return preset + ": duration must be like \"5s\"";
      }
      seconds = std::atof(d.get<std::string>().c_str());
      if (preset == "luma_agents" && b.value("type", "") != "video") {
        return "luma_agents: type must be video";
      }
    } else if (preset == "replicate") {
      if (!b.contains("input") || !str(b["input"].value("prompt", json()))) {
        return "replicate needs input.prompt";
      }
      if (image_body(preset, b)) {
        static const std::set<std::string> k_formats = {"png", "jpg", "webp"};
        static const std::set<std::string> k_ratios = {"1:1", "16:9", "21:9", "3:2",  "2:3", "4:5",
                                                       "5:4", "3:4",  "4:3",  "9:16", "9:21"};
        if (!k_formats.count(b["input"].value("output_format", "")) ||
            !k_ratios.count(b["input"].value("aspect_ratio", ""))) {
          return "replicate image: output_format png, jpg or webp and a listed aspect_ratio are required";
        }
      }
      seconds = b["input"].value("duration", 5.0);
    } else if (preset == "fal") {
      if (!str(b.value("prompt", json()))) {
        return "fal needs prompt";
      }
      if (image_body(preset, b)) {
        const json size = b["image_size"];
        if (!size.is_object() || !size.value("width", json()).is_number_integer() ||
            !size.value("height", json()).is_number_integer() || b.value("num_images", 1) != 1) {
          return "fal image: image_size {width, height} integers and num_images 1 are required";
        }
      }
      seconds = b.value("duration", 5.0);
    } else if (preset == "veo") {
      if (!b.contains("instances") || !b["instances"].is_array() || b["instances"].empty() ||
          !str(b["instances"][0].value("prompt", json()))) {
        return "veo needs instances[0].prompt";
      }
      if (b.value("parameters", json::object()).contains("seed")) {
        return "veo: the Developer API rejects seed";
      }
      seconds = b.value("parameters", json::object()).value("durationSeconds", 8.0);
    } else if (preset == "openai_videos") {
      if (!str(b.value("prompt", json())) || !str(b.value("model", json()))) {
        return "openai_videos needs model and prompt";
      }
      const std::string s = b.value("seconds", "");
      if (s != "4" && s != "8" && s != "12") {
        return "openai_videos: seconds must be the string \"4\", \"8\" or \"12\"";
      }
      seconds = std::atof(s.c_str());
    }
    return "";
  }

  void submit(const std::string& preset, const std::string& model, const httplib::Request& req,
              httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized(preset, req, res)) {
      return;
    }
    if (preset == "runway" && req.get_header_value("X-Runway-Version") != "2024-11-06") {
      reject(res, 400, "runway: X-Runway-Version 2024-11-06 is required");
      return;
    }
    const json body = json::parse(req.body, nullptr, false);
    double seconds = 5;
    if (std::string problem = check_body(preset, body, seconds); !problem.empty()) {
      reject(res, 400, problem);
      return;
    }
    int64_t throttled_polls = 0;
    const std::string fault = take_fault(preset, throttled_polls);
    if (fault == "submit_429") {
      res.status = 429;
      res.set_header("Retry-After", "0");
      res.set_content(json{{"error", "Too many requests"}}.dump(), "application/json");
      return;
    }
    Job job;
    const int64_t n = next_id++;
    job.preset = preset;
    job.model = model;
    job.body = req.body;
    job.seconds = seconds;
    job.image = image_body(preset, body);
    job.fault = fault;
    job.throttled_polls = throttled_polls;
    job.last_touch = std::chrono::steady_clock::now();
    if (preset == "veo") {
      job.id = "models/" + model + "/operations/op" + std::to_string(n);
    } else {
      job.id = preset + "-job-" + std::to_string(n);
    }
    ++submissions[preset];
    if (!bodies.insert(preset + "\n" + req.body).second) {
      ++duplicate_submissions;
    }
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    json reply;
    if (preset == "runway") {
      reply = {{"id", job.id}};
    } else if (preset == "luma" || preset == "luma_agents") {
      reply = {{"id", job.id}, {"state", "queued"}};
    } else if (preset == "replicate") {
      reply = {{"id", job.id}, {"status", "starting"}};
    } else if (preset == "fal") {
      const std::string owner_app = model.substr(0, model.find('/', model.find('/') + 1));
      const std::string at = base(req) + "/fal/" + owner_app + "/requests/" + job.id;
      reply = {{"request_id", job.id},
               {"status", "IN_QUEUE"},
               {"status_url", at + "/status"},
               {"response_url", at},
               {"cancel_url", at + "/cancel"}};
    } else if (preset == "veo") {
      reply = {{"name", job.id}};
    } else {
      reply = {{"id", job.id}, {"object", "video"}, {"status", "queued"}};
    }
    jobs[job.id] = std::move(job);
    res.status = preset == "fal" ? 200 : 200;
    res.set_content(reply.dump(), "application/json");
  }

  // The job's state at this poll: queued, throttled, running, succeeded, failed, canceled.
  std::string advance(Job& job) {
    ++job.polls;
    std::string state;
    if (job.canceled) {
      state = "canceled";
    } else if (job.fault == "throttled" && job.polls <= job.throttled_polls) {
      state = "throttled";
    } else if (job.fault == "never_finishes") {
      state = "running";
    } else {
      const int64_t extra = job.fault == "throttled" ? job.throttled_polls : 0;
      if (job.polls - extra >= config.polls_to_finish) {
        state = job.fault == "job_fails" ? "failed" : "succeeded";
      } else {
        state = "running";
      }
    }
    if ((state == "succeeded" || state == "failed" || state == "canceled") && !job.ended) {
      job.ended = true;
      --in_flight;
    }
    return state;
  }

  std::string output_url(const Job& job, const httplib::Request& req) const {
    if (job.preset == "veo") {
      return base(req) + "/v1beta/files/" + job.id.substr(job.id.rfind('/') + 1) + ":download?alt=media";
    }
    return base(req) + "/files/" + job.id + (job.image ? ".png" : ".mp4");
  }

  void poll(const std::string& preset, const std::string& id, const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized(preset, req, res)) {
      return;
    }
    auto it = jobs.find(id);
    if (it == jobs.end() || it->second.preset != preset) {
      reject(res, 404, preset + ": no job " + id);
      return;
    }
    Job& job = it->second;
    ++polls;
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration_cast<std::chrono::milliseconds>(now - job.last_touch).count() <
        config.min_poll_interval_ms) {
      ++polls_too_early;
    }
    job.last_touch = now;
    const std::string state = advance(job);
    const std::string url = output_url(job, req);
    const std::string why = "the fake failed this job on request";
    json reply;
    int status = 200;
    if (preset == "runway") {
      static const std::map<std::string, std::string> k = {{"queued", "PENDING"},  {"throttled", "THROTTLED"},
                                                           {"running", "RUNNING"}, {"succeeded", "SUCCEEDED"},
                                                           {"failed", "FAILED"},   {"canceled", "CANCELLED"}};
      reply = {{"id", id}, {"status", k.at(state)}};
      if (state == "running") {
        reply["progress"] = 0.5;
      } else if (state == "succeeded") {
        reply["output"] = {url};
        reply["cost"] = {{"credits", static_cast<int64_t>(job.seconds) * 5}};
      } else if (state == "failed") {
        reply["failure"] = why;
        reply["failureCode"] = "INTERNAL";
        reply["cost"] = {{"credits", 0}};
      }
    } else if (preset == "luma" || preset == "luma_agents") {
      const bool agents = preset == "luma_agents";
      static const std::map<std::string, std::string> k = {{"queued", "queued"},    {"throttled", "queued"},
                                                           {"running", "dreaming"}, {"succeeded", "completed"},
                                                           {"failed", "failed"},    {"canceled", "failed"}};
      std::string s = k.at(state);
      if (agents && s == "dreaming") {
        s = "processing";
      }
      reply = {{"id", id}, {"state", s}};
      if (state == "succeeded") {
        if (agents) {
          reply["output"] = json::array({{{"type", "video"}, {"url", url}}});
        } else {
          reply["assets"] = {{"video", url}};
        }
      } else if (state == "failed" || state == "canceled") {
        reply["failure_reason"] = state == "canceled" ? "canceled" : why;
      }
    } else if (preset == "replicate") {
      static const std::map<std::string, std::string> k = {{"queued", "starting"},    {"throttled", "starting"},
                                                           {"running", "processing"}, {"succeeded", "succeeded"},
                                                           {"failed", "failed"},      {"canceled", "canceled"}};
      reply = {{"id", id}, {"status", k.at(state)}};
      if (state == "succeeded") {
        reply["output"] = url;
      } else if (state == "failed") {
        reply["error"] = why;
      }
    } else if (preset == "fal") {
      if (state == "queued" || state == "throttled") {
        status = 202;
        reply = {{"status", "IN_QUEUE"}, {"queue_position", 3}};
      } else if (state == "running") {
        status = 202;
        reply = {{"status", "IN_PROGRESS"}};
      } else {
        reply = {{"status", "COMPLETED"}};
      }
    } else if (preset == "veo") {
      reply = {{"name", id}, {"done", state == "succeeded" || state == "failed" || state == "canceled"}};
      if (state == "succeeded") {
        reply["response"] = {
            {"generateVideoResponse", {{"generatedSamples", json::array({{{"video", {{"uri", url}}}}})}}}};
      } else if (state == "failed" || state == "canceled") {
        reply["error"] = {{"code", 13}, {"message", why}};
      }
    } else {
      static const std::map<std::string, std::string> k = {{"queued", "queued"},       {"throttled", "queued"},
                                                           {"running", "in_progress"}, {"succeeded", "completed"},
                                                           {"failed", "failed"},       {"canceled", "failed"}};
      reply = {{"id", id}, {"object", "video"}, {"status", k.at(state)}};
      if (state == "failed" || state == "canceled") {
        reply["error"] = {{"code", "internal"}, {"message", why}};
      }
    }
    res.status = status;
    res.set_content(reply.dump(), "application/json");
  }

  // fal's result: the model output, or the job's failure as an error status.
  void fal_result(const std::string& id, const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized("fal", req, res)) {
      return;
    }
    auto it = jobs.find(id);
    if (it == jobs.end() || it->second.preset != "fal") {
      reject(res, 404, "fal: no request " + id);
      return;
    }
    const Job& job = it->second;
    if (job.canceled) {
      res.status = 400;
      res.set_content(json{{"detail", "request was canceled"}}.dump(), "application/json");
      return;
    }
    if (job.fault == "job_fails") {
      res.status = 500;
      res.set_content(json{{"detail", "the fake failed this job on request"}}.dump(), "application/json");
      return;
    }
    json reply = job.image
                     ? json{{"images", json::array({{{"url", output_url(job, req)},
                                                     {"content_type", "image/png"},
                                                     {"width", 640},
                                                     {"height", 272}}})},
                            {"seed", 1}}
                     : json{{"video", {{"url", output_url(job, req)}, {"content_type", "video/mp4"}}}, {"seed", 1}};
    res.set_content(reply.dump(), "application/json");
  }

  void cancel(const std::string& preset, const std::string& id, const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized(preset, req, res)) {
      return;
    }
    auto it = jobs.find(id);
    if (it == jobs.end() || it->second.preset != preset) {
      reject(res, 404, preset + ": no job " + id + " to cancel");
      return;
    }
    ++cancels;
    it->second.canceled = true;
    if (!it->second.ended) {
      it->second.ended = true;
      --in_flight;
    }
    res.status = preset == "fal" ? 202 : 200;
    res.set_content(preset == "fal" ? json{{"status", "CANCELLATION_REQUESTED"}}.dump() : "{}", "application/json");
  }

  // The output bytes of a finished job (rendered by the sim the first time).
  void download(const std::string& id, bool keyed, const httplib::Request& req, httplib::Response& res) {
    std::unique_lock<std::mutex> lock(mutex);
    Job* job = nullptr;
    for (auto& [job_id, j] : jobs) {
      if (job_id == id || (j.preset == "veo" && job_id.substr(job_id.rfind('/') + 1) == id)) {
        job = &j;
      }
    }
    if (job == nullptr) {
      reject(res, 404, "no output " + id);
      return;
    }
    if (keyed && !authorized(job->preset, req, res)) {
      return;
    }
    ++downloads;
    if (job->fault == "output_404") {
      res.status = 404;
      res.set_content("Not Found", "text/plain");
      return;
    }
    if (job->fault == "not_video" || job->fault == "not_image") {
      res.set_content("<html><body>Access denied</body></html>", job->image ? "image/png" : "video/mp4");
      return;
    }
    if (!render(*job, job->image ? "storyboard" : "proxy", res)) {
      return;
    }
    res.set_content(job->bytes, job->image ? "image/png" : "video/mp4");
  }

  // Renders a job's output by the sim the first time (deterministic in the submitted body):
  // "proxy" an MP4, "storyboard" a PNG. false (and a 500) when the sim cannot.
  bool render(Job& job, const std::string& resolution, httplib::Response& res) {
    if (!job.bytes.empty()) {
      return true;
    }
    backends::GenerationRequest r;
    r.shot_id = "S01_SH01";
    r.attempt = 1;
    r.model = job.model;
    r.tier = "gen_mid";
    r.genpack_face = job.body;
    r.resolution = resolution;
    r.pixels = resolution == "storyboard" ? "80x34" : "128x72";
    r.duration_s = std::min(job.seconds, 2.0);
    r.seed = std::stoull(core::sha256_hex(job.body).substr(0, 12), nullptr, 16);
    std::filesystem::path cached;
    if (!config.render_cache.empty()) {
      cached = std::filesystem::path(config.render_cache) /
               core::sha256_hex(std::to_string(config.seed) + '\n' + r.model + '\n' + r.resolution + '\n' +
                                r.pixels + '\n' + std::to_string(r.duration_s) + '\n' + job.body);
      std::ifstream in(cached, std::ios::binary);
      if (in) {
        job.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        if (!job.bytes.empty()) {
          return true;
        }
      }
    }
    Result<backends::GenerationResult> made = sim->generate(r);
    if (!made) {
      res.status = 500;
      res.set_content("render failed: " + made.error().message, "text/plain");
      return false;
    }
    job.bytes = std::move(made->media_bytes);
    if (!cached.empty()) {  // best effort: a render not kept is made again next time
      std::error_code ec;
      std::filesystem::create_directories(cached.parent_path(), ec);
      std::filesystem::path part = cached;
      part += ".part" + std::to_string(::getpid());
      std::ofstream(part, std::ios::binary) << job.bytes;
      std::filesystem::rename(part, cached, ec);
    }
    return true;
  }

  // --- ComfyUI (backend-apis.md §5) -------------------------------------------------------------
  // The node classes this fake "server" has, as GET /object_info gives them (inputs by group, a
  // combo's choices first, RETURN_TYPES, OUTPUT_NODE), enough for the shipped example workflow, an
  // image-to-video graph and storyboard stills.
  static const json& comfy_classes() {
    static const json k_classes = json::parse(R"JSON({
"UNETLoader": {"input": {"required": {"unet_name": [["wan2.1_t2v_1.3B_fp16.safetensors", "wan2.1_i2v_480p_14B_fp16.safetensors"]],
                                      "weight_dtype": [["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]]}},
               "output": ["MODEL"], "output_node": false},
"CLIPLoader": {"input": {"required": {"clip_name": [["umt5_xxl_fp8_e4m3fn_scaled.safetensors"]],
                                      "type": [["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image"]]},
                         "optional": {"device": [["default", "cpu"], {"advanced": true}]}},
               "output": ["CLIP"], "output_node": false},
"VAELoader": {"input": {"required": {"vae_name": [["wan_2.1_vae.safetensors"]]}}, "output": ["VAE"], "output_node": false},
"ModelSamplingSD3": {"input": {"required": {"model": ["MODEL"], "shift": ["FLOAT", {"default": 3.0, "min": 0.0, "max": 100.0, "step": 0.01}]}},
                     "output": ["MODEL"], "output_node": false},
"CLIPTextEncode": {"input": {"required": {"text": ["STRING", {"multiline": true, "dynamicPrompts": true}], "clip": ["CLIP"]}},
                   "output": ["CONDITIONING"], "output_node": false},
"EmptyHunyuanLatentVideo": {"input": {"required": {"width": ["INT", {"default": 848, "min": 16, "max": 16384, "step": 16}],
                                                   "height": ["INT", {"default": 480, "min": 16, "max": 16384, "step": 16}],
                                                   "length": ["INT", {"default": 25, "min": 1, "max": 16384, "step": 4}],
                                                   "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}]}},
                            "output": ["LATENT"], "output_node": false},
"KSampler": {"input": {"required": {"model": ["MODEL"], "seed": ["INT", {"default": 0, "min": 0, "max": 18446744073709551615}],
                                    "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
                                    "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0}],
                                    "sampler_name": [["euler", "euler_ancestral", "dpmpp_2m", "uni_pc", "uni_pc_bh2"]],
                                    "scheduler": [["simple", "normal", "karras", "exponential", "sgm_uniform", "beta"]],
                                    "positive": ["CONDITIONING"], "negative": ["CONDITIONING"], "latent_image": ["LATENT"],
                                    "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}]}},
             "output": ["LATENT"], "output_node": false},
"VAEDecode": {"input": {"required": {"samples": ["LATENT"], "vae": ["VAE"]}}, "output": ["IMAGE"], "output_node": false},
"CreateVideo": {"input": {"required": {"images": ["IMAGE"], "fps": ["FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0}]},
                          "optional": {"audio": ["AUDIO"]}},
                "output": ["VIDEO"], "output_node": false},
"SaveVideo": {"input": {"required": {"video": ["VIDEO"], "filename_prefix": ["STRING", {"default": "video/ComfyUI"}],
                                     "format": [["auto", "mp4"]], "codec": [["auto", "h264"]]}},
              "output": [], "output_node": true},
"SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
              "output": [], "output_node": true},
"LoadImage": {"input": {"required": {"image": [["example.png"], {"image_upload": true}]}}, "output": ["IMAGE", "MASK"],
              "output_node": false},
"WanImageToVideo": {"input": {"required": {"positive": ["CONDITIONING"], "negative": ["CONDITIONING"], "vae": ["VAE"],
                                           "width": ["INT", {"default": 832, "min": 16, "max": 16384, "step": 16}],
                                           "height": ["INT", {"default": 480, "min": 16, "max": 16384, "step": 16}],
                                           "length": ["INT", {"default": 81, "min": 1, "max": 16384, "step": 4}],
                                           "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}]},
                              "optional": {"clip_vision_output": ["CLIP_VISION_OUTPUT"], "start_image": ["IMAGE"]}},
                    "output": ["CONDITIONING", "CONDITIONING", "LATENT"], "output_node": false}
})JSON");
    return k_classes;
  }

  // ComfyUI's refusal of a prompt: 400 {"error": {type, message, details, extra_info}, "node_errors"}.
  void comfy_refuse(httplib::Response& res, const std::string& type, const std::string& message,
                    const json& node_errors = json::object()) {
    reject(res, 400, "comfyui: " + message);
    res.set_content(
        json{{"error", {{"type", type}, {"message", message}, {"details", ""}, {"extra_info", json::object()}}},
             {"node_errors", node_errors}}
            .dump(),
        "application/json");
  }

  // What execution.validate_prompt would refuse in a graph: "" when it runs. Under the mutex.
  std::string comfy_problem(const json& graph, json& node_errors) const {
    if (!graph.is_object() || graph.empty()) {
      return "the prompt is not an API-format graph (an object of nodes)";
    }
    const json& classes = comfy_classes();
    bool has_output = false;
    for (const auto& [id, node] : graph.items()) {
      if (!node.is_object() || !node.contains("class_type") || !node["class_type"].is_string() ||
          !node.contains("inputs") || !node["inputs"].is_object()) {
        return "node " + id + " is not {class_type, inputs}";
      }
      const std::string type = node["class_type"].get<std::string>();
      if (!classes.contains(type)) {
        return "Cannot execute because node " + type + " does not exist.";
      }
      has_output = has_output || classes[type]["output_node"].get<bool>();
      std::vector<std::string> errors;
      const json& declared = classes[type]["input"];
      for (const char* group : {"required", "optional"}) {
        if (!declared.contains(group)) {
          continue;
        }
        for (const auto& [input, spec] : declared[group].items()) {
          if (!node["inputs"].contains(input)) {
            if (std::string(group) == "required") {
              errors.push_back("Required input is missing: " + input);
            }
            continue;
          }
          const json& value = node["inputs"][input];
          if (value.is_array()) {
            if (value.size() != 2 || !value[0].is_string() || !value[1].is_number_integer() ||
                !graph.contains(value[0].get<std::string>())) {
              errors.push_back("Bad linked input, must be a length-2 list of [node_id, slot_index]: " + input);
              continue;
            }
            const std::string from = graph[value[0].get<std::string>()].value("class_type", "");
            const json outputs = classes.contains(from) ? classes[from]["output"] : json::array();
            const int64_t slot = value[1].get<int64_t>();
            if (slot < 0 || slot >= static_cast<int64_t>(outputs.size()) || !spec[0].is_string() ||
                outputs[static_cast<size_t>(slot)] != spec[0]) {
              errors.push_back("Return type mismatch between linked nodes: " + input);
            }
            continue;
          }
          if (spec[0].is_array()) {
            const bool uploaded = type == "LoadImage" && value.is_string() && uploads.count(value.get<std::string>());
            if (!uploaded && std::find(spec[0].begin(), spec[0].end(), value) == spec[0].end()) {
              errors.push_back("Value not in list: " + input + ": " + value.dump());
            }
          } else if (spec[0] == "INT" && !value.is_number_integer()) {
            errors.push_back("Failed to convert an input value to a INT value: " + input + ", " + value.dump());
          } else if (spec[0] == "FLOAT" && !value.is_number()) {
            errors.push_back("Failed to convert an input value to a FLOAT value: " + input + ", " + value.dump());
          } else if (spec[0] == "STRING" && !value.is_string()) {
            errors.push_back("Failed to convert an input value to a STRING value: " + input);
          } else if (spec[0].is_string() && spec[0] != "INT" && spec[0] != "FLOAT" && spec[0] != "STRING" &&
                     spec[0] != "BOOLEAN") {
            errors.push_back("Required input " + input + " of type " + spec[0].get<std::string>() + " must be a link");
          }
        }
      }
      if (!errors.empty()) {
        json list = json::array();
        for (const std::string& e : errors) {
          list.push_back({{"type", "invalid_input"}, {"message", e}, {"details", ""}, {"extra_info", json::object()}});
        }
        node_errors[id] = {{"errors", list}, {"dependent_outputs", json::array()}, {"class_type", type}};
      }
    }
    if (!has_output) {
      return "Prompt has no outputs";
    }
    if (!node_errors.empty()) {
      return "Prompt outputs failed validation";
    }
    return "";
  }

  void comfy_submit(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized("comfyui", req, res)) {
      return;
    }
    const json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("prompt")) {
      comfy_refuse(res, "no_prompt", "No prompt provided");
      return;
    }
    for (const auto& [key, value] : body.items()) {
      if (key != "prompt" && key != "client_id" && key != "prompt_id" && key != "extra_data" && key != "front" &&
          key != "number") {
        comfy_refuse(res, "invalid_prompt", "unknown field " + key + " in the POST /prompt body");
        return;
      }
    }
    if (!body.contains("client_id") || !body["client_id"].is_string() || body["client_id"].get<std::string>().empty()) {
      comfy_refuse(res, "invalid_prompt", "no client_id: the prompt's events would reach no client");
      return;
    }
    json node_errors = json::object();
    if (std::string problem = comfy_problem(body["prompt"], node_errors); !problem.empty()) {
      comfy_refuse(res, problem == "Prompt has no outputs" ? "prompt_no_outputs" : "prompt_outputs_failed_validation",
                   problem, node_errors);
      return;
    }
    int64_t throttled_polls = 0;
    const std::string fault = take_fault("comfyui", throttled_polls);
    if (fault == "submit_429") {
      res.status = 429;
      res.set_header("Retry-After", "0");
      res.set_content(json{{"error", "Too many requests"}}.dump(), "application/json");
      return;
    }
    Job job;
    const int64_t n = next_id++;
    job.id = "c0ffee00-0000-4000-8000-" + std::string(12 - std::to_string(n).size(), '0') + std::to_string(n);
    job.preset = "comfyui";
    job.graph = body["prompt"];
    job.body = job.graph.dump();  // what renders: the graph, never the run's client id
    job.client_id = body["client_id"].get<std::string>();
    job.number = n;
    job.fault = fault;
    job.throttled_polls = throttled_polls;
    job.last_touch = std::chrono::steady_clock::now();
    for (const auto& [id, node] : job.graph.items()) {
      if (comfy_classes()[node["class_type"].get<std::string>()]["output_node"].get<bool>()) {
        job.output_nodes.push_back(id);
      }
      if (node["class_type"] == "EmptyHunyuanLatentVideo" || node["class_type"] == "WanImageToVideo") {
        job.seconds = node["inputs"].value("length", 33) / 16.0;
      }
    }
    job.model = "comfyui";
    last_client_id = job.client_id;
    client_ids.insert(job.client_id);
    ++submissions["comfyui"];
    if (!bodies.insert("comfyui\n" + job.body).second) {
      ++duplicate_submissions;
    }
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    const json reply = {{"prompt_id", job.id}, {"number", n}, {"node_errors", json::object()}};
    jobs[job.id] = std::move(job);
    res.set_content(reply.dump(), "application/json");
  }

  // The history entry of a finished prompt (execution.py PromptQueue.task_done).
  json comfy_entry(const Job& job, const std::string& state) const {
    const int64_t t = 1764900000000 + job.number;
    json messages = json::array(
        {json::array({"execution_start", {{"prompt_id", job.id}, {"timestamp", t}}}),
         json::array({"execution_cached", {{"nodes", json::array()}, {"prompt_id", job.id}, {"timestamp", t}}})});
    json outputs = json::object();
    json meta = json::object();
    std::string sampler = job.graph.begin().key();
    for (const auto& [id, node] : job.graph.items()) {
      if (node["class_type"] == "KSampler") {
        sampler = id;
      }
    }
    if (state == "succeeded") {
      for (const std::string& id : job.output_nodes) {
        const bool video = job.graph[id]["class_type"] == "SaveVideo";
        const std::string name =
            (video ? "avps_" : "ComfyUI_") + std::to_string(job.number) + "_" + id + (video ? "_.mp4" : "_.png");
        outputs[id] = {
            {"images", json::array({{{"filename", name}, {"subfolder", video ? "video" : ""}, {"type", "output"}}})}};
        if (video) {
          outputs[id]["animated"] = json::array({true});
        }
        meta[id] = {{"node_id", id}, {"display_node", id}, {"parent_node", nullptr}, {"real_node_id", id}};
      }
      messages.push_back(json::array({"execution_success", {{"prompt_id", job.id}, {"timestamp", t}}}));
    } else if (state == "failed") {
      messages.push_back(json::array({"execution_error",
                                      {{"prompt_id", job.id},
                                       {"node_id", sampler},
                                       {"node_type", job.graph[sampler]["class_type"]},
                                       {"executed", json::array()},
                                       {"exception_message", "the fake failed this job on request\n"},
                                       {"exception_type", "RuntimeError"},
                                       {"traceback", json::array()},
                                       {"current_inputs", json::object()},
                                       {"current_outputs", json::array()},
                                       {"timestamp", t}}}));
    } else {
      messages.push_back(json::array({"execution_interrupted",
                                      {{"prompt_id", job.id},
                                       {"node_id", sampler},
                                       {"node_type", job.graph[sampler]["class_type"]},
                                       {"executed", json::array()},
                                       {"timestamp", t}}}));
    }
    const bool succeeded = state == "succeeded";
    return {
        {"prompt",
         json::array(
             {job.number, job.id, job.graph, {{"client_id", job.client_id}, {"create_time", t}}, job.output_nodes})},
        {"outputs", outputs},
        {"status", {{"status_str", succeeded ? "success" : "error"}, {"completed", succeeded}, {"messages", messages}}},
        {"meta", meta}};
  }

  void comfy_history(const std::string& id, const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized("comfyui", req, res)) {
      return;
    }
    json reply = json::object();
    auto it = jobs.find(id);
    if (it != jobs.end() && it->second.preset == "comfyui" && !it->second.deleted) {
      Job& job = it->second;
      ++polls;
      const auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration_cast<std::chrono::milliseconds>(now - job.last_touch).count() <
          config.min_poll_interval_ms) {
        ++polls_too_early;
      }
      job.last_touch = now;
      if (job.state != "succeeded" && job.state != "failed" && job.state != "canceled") {
        job.state = advance(job);
      }
      if (job.state == "succeeded" || job.state == "failed" || job.state == "canceled") {
        reply[id] = comfy_entry(job, job.state);
      }
    }
    res.set_content(reply.dump(), "application/json");  // {} for a prompt not (yet) in the history
  }

  void comfy_queue(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized("comfyui", req, res)) {
      return;
    }
    json running = json::array();
    json pending = json::array();
    for (const auto& [id, job] : jobs) {
      if (job.preset != "comfyui" || job.deleted || job.ended) {
        continue;
      }
      const json item = json::array({job.number, job.id, job.graph, {{"client_id", job.client_id}}, job.output_nodes});
      (job.state == "running" ? running : pending).push_back(item);
    }
    res.set_content(json{{"queue_running", running}, {"queue_pending", pending}}.dump(), "application/json");
  }

  void comfy_queue_post(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized("comfyui", req, res)) {
      return;
    }
    const json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || body.contains("clear") || !body.contains("delete") || !body["delete"].is_array()) {
      reject(res, 400, "comfyui: POST /queue other than {\"delete\": [ids]} (a clear empties every client's queue)");
      return;
    }
    for (const json& id : body["delete"]) {
      auto it = jobs.find(id.is_string() ? id.get<std::string>() : "");
      if (it != jobs.end() && !it->second.ended && it->second.state != "running") {
        it->second.deleted = true;
        it->second.canceled = true;
        it->second.ended = true;
        --in_flight;
        ++cancels;
        ++queue_deletes;
      }
    }
    res.status = 200;
  }

  void comfy_interrupt(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized("comfyui", req, res)) {
      return;
    }
    const json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("prompt_id") || !body["prompt_id"].is_string()) {
      reject(res, 400, "comfyui: a global POST /interrupt (no prompt_id) stops whatever prompt runs, any client's");
      return;
    }
    auto it = jobs.find(body["prompt_id"].get<std::string>());
    if (it != jobs.end() && !it->second.ended && it->second.state == "running") {
      it->second.canceled = true;
      it->second.ended = true;
      it->second.state = "canceled";
      --in_flight;
      ++cancels;
      ++interrupts;
    }
    res.status = 200;  // a prompt that is not the running one is skipped, as ComfyUI does
  }

  void comfy_upload(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized("comfyui", req, res)) {
      return;
    }
    if (!req.is_multipart_form_data() || !req.has_file("image") || req.get_file_value("image").filename.empty()) {
      reject(res, 400, "comfyui: POST /upload/image without a multipart \"image\" file");
      return;
    }
    const httplib::MultipartFormData image = req.get_file_value("image");
    const std::string type = req.has_file("type") ? req.get_file_value("type").content : "input";
    if (type != "input") {
      reject(res, 400, "comfyui: an input frame uploaded as type " + type + ", not input");
      return;
    }
    if (image.content.empty()) {
      reject(res, 400, "comfyui: an empty image upload");
      return;
    }
    uploads[image.filename] = image.content;
    res.set_content(json{{"name", image.filename}, {"subfolder", ""}, {"type", "input"}}.dump(), "application/json");
  }

  void comfy_view(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!authorized("comfyui", req, res)) {
      return;
    }
    const std::string filename = req.get_param_value("filename");
    const std::string subfolder = req.get_param_value("subfolder");
    if (req.get_param_value("type") != "output") {
      reject(res, 400, "comfyui: GET /view of type " + req.get_param_value("type") + ", not output");
      return;
    }
    for (auto& [id, job] : jobs) {
      if (job.preset != "comfyui" || job.state != "succeeded") {
        continue;
      }
      for (const std::string& node : job.output_nodes) {
        const bool video = job.graph[node]["class_type"] == "SaveVideo";
        const std::string name =
            (video ? "avps_" : "ComfyUI_") + std::to_string(job.number) + "_" + node + (video ? "_.mp4" : "_.png");
        if (name != filename || subfolder != (video ? "video" : "")) {
          continue;
        }
        ++downloads;
        if (job.fault == "output_404") {
          res.status = 404;
          return;
        }
        if (job.fault == "not_video") {
          res.set_content("<html><body>Access denied</body></html>", "video/mp4");
          return;
        }
        if (!render(job, video ? "proxy" : "storyboard", res)) {
          return;
        }
        res.set_content(job.bytes, video ? "video/mp4" : "image/png");
        return;
      }
    }
    res.status = 404;  // as ComfyUI answers a file it does not have
  }
};

FakeJobs::FakeJobs(FakeJobsConfig config) : m_impl(std::make_unique<Impl>(std::move(config))) {}
FakeJobs::~FakeJobs() = default;

Result<void> FakeJobs::set_faults(const json& rules) {
  if (!rules.is_array()) {
    return make_error(ErrorCode::invalid_argument, "job_faults must be an array");
  }
  std::vector<JobFault> parsed;
  for (const json& rule : rules) {
    if (!rule.is_object()) {
      return make_error(ErrorCode::invalid_argument, "a job fault rule must be an object");
    }
    JobFault f;
    for (const auto& [key, value] : rule.items()) {
      if (key == "fault" && value.is_string() && fault_names().count(value.get<std::string>())) {
        f.fault = value.get<std::string>();
      } else if (key == "preset" && value.is_string()) {
        f.preset = value.get<std::string>();
      } else if (key == "times" && value.is_number_integer()) {
        f.times = value.get<int64_t>();
      } else if (key == "skip" && value.is_number_integer()) {
        f.skip = value.get<int64_t>();
      } else if (key == "polls" && value.is_number_integer()) {
        f.polls = value.get<int64_t>();
      } else {
        return make_error(ErrorCode::invalid_argument, "job fault rule: bad field \"" + key + "\"");
      }
    }
    if (f.fault.empty()) {
      return make_error(ErrorCode::invalid_argument, "job fault rule: \"fault\" is required");
    }
    parsed.push_back(f);
  }
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  m_impl->faults = std::move(parsed);
  return ok();
}

Result<void> FakeJobs::control(const json& body) {
  if (body.contains("job_faults")) {
    AVPS_TRY(set_faults(body["job_faults"]));
  }
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  if (body.contains("min_poll_interval_ms")) {
    m_impl->config.min_poll_interval_ms = body["min_poll_interval_ms"].get<int64_t>();
  }
  if (body.contains("polls_to_finish")) {
    m_impl->config.polls_to_finish = body["polls_to_finish"].get<int>();
  }
  return ok();
}

json FakeJobs::stats() const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  const Impl& i = *m_impl;
  int64_t total = 0;
  for (const auto& [preset, n] : i.submissions) {
    total += n;
  }
  json states = json::object();
  for (const auto& [id, job] : i.jobs) {
    states[id] = {{"preset", job.preset}, {"polls", job.polls}, {"canceled", job.canceled}, {"fault", job.fault}};
  }
  return {{"submissions", total},
          {"by_preset", i.submissions},
          {"duplicate_submissions", i.duplicate_submissions},
          {"polls", i.polls},
          {"polls_too_early", i.polls_too_early},
          {"cancels", i.cancels},
          {"downloads", i.downloads},
          {"in_flight", i.in_flight},
          {"max_in_flight", i.max_in_flight},
          {"invalid", i.invalid},
          {"invalid_reasons", i.invalid_reasons},
          {"jobs", states},
          {"comfyui",
           {{"uploads", static_cast<int64_t>(i.uploads.size())},
            {"last_client_id", i.last_client_id},
            {"client_ids", static_cast<int64_t>(i.client_ids.size())},
            {"interrupts", i.interrupts},
            {"queue_deletes", i.queue_deletes}}}};
}

void FakeJobs::reset_stats() {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  Impl& i = *m_impl;
  i.submissions.clear();
  i.bodies.clear();
  i.duplicate_submissions = i.polls = i.polls_too_early = i.cancels = i.downloads = i.invalid = 0;
  i.interrupts = i.queue_deletes = 0;
  i.client_ids.clear();
  i.max_in_flight = i.in_flight;
  i.invalid_reasons.clear();
}

void FakeJobs::routes(httplib::Server& server) {
  Impl* impl = m_impl.get();
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  // Runway.
  server.Post("/v1/text_to_video", [impl](Req req, Res res) {
    const json body = json::parse(req.body, nullptr, false);
    impl->submit("runway", body.is_object() ? body.value("model", "") : "", req, res);
  });
  server.Get(R"(/v1/tasks/([^/]+))", [impl](Req req, Res res) { impl->poll("runway", req.matches[1], req, res); });
  server.Delete(R"(/v1/tasks/([^/]+))", [impl](Req req, Res res) { impl->cancel("runway", req.matches[1], req, res); });
  // Luma (legacy Dream Machine).
  server.Post("/dream-machine/v1/generations/video", [impl](Req req, Res res) {
    const json body = json::parse(req.body, nullptr, false);
    impl->submit("luma", body.is_object() ? body.value("model", "") : "", req, res);
  });
  server.Get(R"(/dream-machine/v1/generations/([^/]+))",
             [impl](Req req, Res res) { impl->poll("luma", req.matches[1], req, res); });
  server.Delete(R"(/dream-machine/v1/generations/([^/]+))",
                [impl](Req req, Res res) { impl->cancel("luma", req.matches[1], req, res); });
  // Luma Agents.
  server.Post("/v1/generations", [impl](Req req, Res res) {
    const json body = json::parse(req.body, nullptr, false);
    impl->submit("luma_agents", body.is_object() ? body.value("model", "") : "", req, res);
  });
  server.Get(R"(/v1/generations/([^/]+))",
             [impl](Req req, Res res) { impl->poll("luma_agents", req.matches[1], req, res); });
  // Replicate.
  server.Post(R"(/v1/models/([^/]+/[^/]+)/predictions)",
              [impl](Req req, Res res) { impl->submit("replicate", req.matches[1], req, res); });
  server.Get(R"(/v1/predictions/([^/]+))",
             [impl](Req req, Res res) { impl->poll("replicate", req.matches[1], req, res); });
  server.Post(R"(/v1/predictions/([^/]+)/cancel)",
              [impl](Req req, Res res) { impl->cancel("replicate", req.matches[1], req, res); });
  // fal (the endpoint is the server's /fal, standing in for https://queue.fal.run).
  server.Get(R"(/fal/(.+)/requests/([^/]+)/status)",
             [impl](Req req, Res res) { impl->poll("fal", req.matches[2], req, res); });
  server.Put(R"(/fal/(.+)/requests/([^/]+)/cancel)",
             [impl](Req req, Res res) { impl->cancel("fal", req.matches[2], req, res); });
  server.Get(R"(/fal/(.+)/requests/([^/]+))", [impl](Req req, Res res) { impl->fal_result(req.matches[2], req, res); });
  server.Post(R"(/fal/(.+))", [impl](Req req, Res res) { impl->submit("fal", req.matches[1], req, res); });
  // Veo (Gemini API long-running operations).
  server.Post(R"(/v1beta/models/([^/:]+):predictLongRunning)",
              [impl](Req req, Res res) { impl->submit("veo", req.matches[1], req, res); });
  server.Get(R"(/v1beta/(models/[^/]+/operations/[^/]+))",
             [impl](Req req, Res res) { impl->poll("veo", req.matches[1], req, res); });
  server.Get(R"(/v1beta/files/([^/:]+):download)",
             [impl](Req req, Res res) { impl->download(req.matches[1], true, req, res); });
  // OpenAI videos.
  server.Post("/v1/videos", [impl](Req req, Res res) {
    const json body = json::parse(req.body, nullptr, false);
    impl->submit("openai_videos", body.is_object() ? body.value("model", "") : "", req, res);
  });
  server.Get(R"(/v1/videos/([^/]+)/content)",
             [impl](Req req, Res res) { impl->download(req.matches[1], true, req, res); });
  server.Get(R"(/v1/videos/([^/]+))",
             [impl](Req req, Res res) { impl->poll("openai_videos", req.matches[1], req, res); });
  server.Delete(R"(/v1/videos/([^/]+))",
                [impl](Req req, Res res) { impl->cancel("openai_videos", req.matches[1], req, res); });
  // ComfyUI (the endpoint is the server's root, as a local ComfyUI's http://127.0.0.1:8188).
  server.Get("/object_info", [impl](Req req, Res res) {
    std::lock_guard<std::mutex> lock(impl->mutex);
    if (impl->authorized("comfyui", req, res)) {
      res.set_content(Impl::comfy_classes().dump(), "application/json");
    }
  });
  server.Post("/prompt", [impl](Req req, Res res) { impl->comfy_submit(req, res); });
  server.Get(R"(/history/([^/]+))", [impl](Req req, Res res) { impl->comfy_history(req.matches[1], req, res); });
  server.Get("/queue", [impl](Req req, Res res) { impl->comfy_queue(req, res); });
  server.Post("/queue", [impl](Req req, Res res) { impl->comfy_queue_post(req, res); });
  server.Post("/interrupt", [impl](Req req, Res res) { impl->comfy_interrupt(req, res); });
  server.Post("/upload/image", [impl](Req req, Res res) { impl->comfy_upload(req, res); });
  server.Get("/view", [impl](Req req, Res res) { impl->comfy_view(req, res); });
  // Presigned-style outputs (no key).
  server.Get(R"(/files/(.+)\.mp4)", [impl](Req req, Res res) { impl->download(req.matches[1], false, req, res); });
  server.Get(R"(/files/(.+)\.png)", [impl](Req req, Res res) { impl->download(req.matches[1], false, req, res); });
}

}  // namespace avps::testing
