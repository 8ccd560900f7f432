#pragma once
// FakeJobs: the async job APIs of avps's async_job presets (runway, luma, luma_agents, replicate,
// fal, veo, openai_videos; wire formats in shared/reference/backend-apis.md §4) and a ComfyUI
// server (§5; "comfyui" as the preset of its faults and counters), served on the FakeProvider's
// loopback server. Each route checks the method, the auth header (the preset's header and scheme
// with the expected key, ComfyUI's Authorization: Bearer; never a key in a URL) and the submit
// body's required fields; anything else is answered 400/401/404 and counted as invalid.
//
// ComfyUI: GET /object_info (a fixed set of core node classes: the Wan text-to-video graph of
// examples/comfyui, LoadImage, WanImageToVideo, SaveImage), POST /prompt (refused 400 in ComfyUI's
// shape, with node_errors, unless the body is {"prompt": <API-format graph>, "client_id"} and the
// graph is one execution.validate_prompt would run: known classes, required inputs, links of the
// right type, combo values the server offers or files uploaded, an output node), GET
// /history/{id} ({} while queued or running; a success with each output node's file, an error with
// execution_error or execution_interrupted), GET /queue, POST /queue {"delete": [ids]} (a clear is
// refused), POST /interrupt {"prompt_id"} (a global interrupt is refused; a prompt that is not
// running is skipped), POST /upload/image (multipart image, type input) and GET /view (type
// output). The render is deterministic in the graph, never in the client id.
//
// A job's life is counted in polls, not in time, so tests never depend on timing: a job is queued
// at submit, running at its first poll, and succeeded at poll `polls_to_finish` (default 2), when
// its output is rendered by the sim as an MP4 (an image model's job, the replicate_image or
// fal_image body shape, as a PNG at /files/{id}.png) (deterministic in the submitted body, so a job
// resubmitted with the same body renders the same bytes; FakeJobsConfig::render_cache keeps them
// across fakes). Its output URL is on the same server.
//
// Faults on demand (set_faults(), or POST /control {"job_faults": [...]}), each rule
// {"fault": ..., "preset": optional filter, "times": n (default 1, -1 every job), "skip": n}:
//   "job_fails"        the job ends failed at its finishing poll (the preset's failure shape)
//   "never_finishes"   the job stays running for ever (avps must cancel it at max wait)
//   "throttled"        the job reports THROTTLED / IN_QUEUE for "polls" polls first (default 3)
//   "output_404"       the job succeeds but its output URL answers 404
//   "not_video"        the job succeeds but its output is HTML, not a video
//   "not_image"        the same for an image job (HTML served as image/png)
//   "submit_429"       the submit is refused with 429 (no job is created)
//
// Counted (stats()): submissions (jobs created) per preset, duplicate_submissions (a body
// submitted before), polls, polls_too_early (a poll of a job sooner than min_poll_interval_ms
// after its previous poll or its submit), cancels, downloads, in_flight now and max_in_flight,
// invalid (with reasons), per job id its state, and "comfyui": {uploads, last_client_id,
// client_ids (distinct), interrupts, queue_deletes}.
//
// Threading: every method may be called from any thread (one mutex).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "avps/core/result.hpp"

namespace httplib {
class Server;
}

namespace avps::testing {

struct FakeJobsConfig {
  std::string key;                   ///< the key every job API expects; empty = no auth header
  int polls_to_finish = 2;           ///< polls until a job succeeds
  int64_t min_poll_interval_ms = 0;  ///< a poll sooner than this after the last is counted too early
  uint64_t seed = 0;
  /// When set, a folder of renders kept by everything they are made from (the seed, the model, the
  /// resolution, the duration, the submitted body): the fakes one test starts one after another
  /// render each output once (the sim's ffmpeg is most of a fake's time). Written by rename, so
  /// fakes running at once may share it.
  std::string render_cache;
};

class FakeJobs {
 public:
  explicit FakeJobs(FakeJobsConfig config);
  ~FakeJobs();
  FakeJobs(const FakeJobs&) = delete;
  FakeJobs& operator=(const FakeJobs&) = delete;

  /// Adds the job routes to `server` (before its catch-all routes).
  void routes(httplib::Server& server);
  /// Replaces the fault rules; invalid_argument naming the problem (the rules stay as they were).
  [[nodiscard]] Result<void> set_faults(const nlohmann::json& rules);
  /// Applies a /control body's job fields: "job_faults", "min_poll_interval_ms", "polls_to_finish".
  [[nodiscard]] Result<void> control(const nlohmann::json& body);
  nlohmann::json stats() const;
  void reset_stats();

  struct Impl;

 private:
  std::unique_ptr<Impl> m_impl;
};

}  // namespace avps::testing
