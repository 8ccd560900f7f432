// FakeJobs (fake_jobs.hpp): the job APIs of the async_job presets on a loopback server.

#include "support/fake_jobs.hpp"

#include <httplib.h>

#include <chrono>
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
    if (job->bytes.empty()) {
      backends::GenerationRequest r;
      r.shot_id = "S01_SH01";
      r.attempt = 1;
      r.model = job->model;
      r.tier = "gen_mid";
      r.genpack_face = job->body;
      r.resolution = job->image ? "storyboard" : "proxy";
      r.pixels = job->image ? "80x34" : "128x72";
      r.duration_s = std::min(job->seconds, 2.0);
      r.seed = std::stoull(core::sha256_hex(job->body).substr(0, 12), nullptr, 16);
      Result<backends::GenerationResult> made = sim->generate(r);
      if (!made) {
        res.status = 500;
        res.set_content("render failed: " + made.error().message, "text/plain");
        return;
      }
      job->bytes = std::move(made->media_bytes);
    }
    res.set_content(job->bytes, job->image ? "image/png" : "video/mp4");
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
          {"jobs", states}};
}

void FakeJobs::reset_stats() {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  Impl& i = *m_impl;
  i.submissions.clear();
  i.bodies.clear();
  i.duplicate_submissions = i.polls = i.polls_too_early = i.cancels = i.downloads = i.invalid = 0;
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
  // Presigned-style outputs (no key).
  server.Get(R"(/files/(.+)\.mp4)", [impl](Req req, Res res) { impl->download(req.matches[1], false, req, res); });
  server.Get(R"(/files/(.+)\.png)", [impl](Req req, Res res) { impl->download(req.matches[1], false, req, res); });
}

}  // namespace avps::testing
