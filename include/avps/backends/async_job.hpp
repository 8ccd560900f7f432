#pragma once
// async_job: a declarative submit / poll / fetch / cancel machine for providers whose renders are
// jobs (Runway, Luma, Replicate, fal, Veo, OpenAI-videos-shaped gateways; wire formats in
// shared/reference/backend-apis.md §4 and docs/providers.md). A models-file entry names a preset
// (`"backend": "async_job", "preset": "runway"`) and sets provider_model, endpoint and
// api_key_env; any field of the preset can be overridden in `options` (objects merge, other
// values replace).
//
// The machine (every field is an option; JSON pointers address the provider's replies):
//   submit   method + path template ({model}) + body template. A string that is exactly one
//            placeholder becomes the placeholder's value with its type ("{{duration}}" -> 5);
//            placeholders inside longer strings are substituted as text ("{{duration}}s" -> "5s").
//            Placeholders: prompt, model, duration, duration_text, ratio, aspect_ratio, width,
//            height, pixels, resolution, seed.
//   id_path  where the job id is in the submit reply; poll_url_path / result_url_path /
//            cancel_url_path where a provider names its own URLs (fal), used verbatim, and only on
//            the endpoint's host (the key is never sent to another host).
//   poll     path template ({id}), interval_s (the provider's minimum), max_wait_s, accept_status.
//   state    status_path + status_map (provider value -> queued | running | succeeded | failed |
//            canceled; a value not in the map fails the job, never a guess), or done_path (Veo's
//            `done`) with error_path; error_path's text explains a failure.
//   result   fetch: inline (URLs in the poll reply), url (GET the result URL, fal) or binary
//            (GET result path: the bytes are the video, OpenAI videos); output_url_paths (the
//            first that holds a string wins); download_auth (send the key with the download; only
//            to the endpoint's host); max_download_bytes.
//   cost     cost_path (a number in the poll or result reply) x cost_unit_micro_usd.
//   cancel   method + path template, or the cancel URL the provider named.
//   limits   prompt_max_chars (UTF-16 units, as Runway counts), ratios, durations: a request
//            that does not fit is fitted by condense_prompt() / the nearest ratio / the nearest
//            allowed duration, and what was changed is recorded with the ticket.
//
// The ticket submit_generation() returns is canonical JSON {"id", "poll_url"?, "result_url"?,
// "cancel_url"?, "seconds"}: everything a later process needs to poll, fetch and cancel the job,
// and nothing secret. The engine records it before the first poll (exchange.ticket).
//
// Image models (capabilities.image_out; presets replicate_image, fal_image): a storyboard frame
// is a job like a render; its ticket carries "output": "image" (and "seconds": 0), and its
// downloaded output must be an image by its magic bytes (PNG, JPEG or WebP; the extension recorded
// is the format's, "png", "jpg", "webp"), else the job is a failed attempt. A storyboard frame on a
// model without image_out, or a render on one without video_out, is refused unsupported.
//
// What a poll gives: nullopt while the job is queued or running (THROTTLED and IN_QUEUE are not
// errors); the GenerationResult once it succeeded and its output is downloaded, hashed by the
// engine, and probed with ffprobe where installed (a file ffprobe finds no video stream in is a
// failed job); an Error otherwise: rejected for a job that failed or was canceled, an output URL
// that answers non-2xx, an output that is not a video, a malformed reply; rate_limited /
// backend_unavailable / timeout for transient trouble (the retry layer and the exchange poll again).
//
// Keys: only in a header; never in a URL, a ticket, a body, a detail or an error message.
//
// Threading: every method may be called from many threads at once (one HttpClient call each).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/backends/backend.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/core/result.hpp"

namespace avps::backends {

/// The presets shipped: runway, luma, luma_agents, replicate, fal, veo, openai_videos, and for
/// image models (storyboard frames) replicate_image and fal_image.
const std::vector<std::string>& async_job_presets();

/// The options of a preset merged with an entry's overrides, checked, with defaults filled in.
/// configuration error naming `where`, the field and what it may be; an unknown preset lists the
/// known ones. `preset` may be "" (then every field comes from `overrides`).
[[nodiscard]] Result<nlohmann::json> async_job_options(const std::string& preset, const nlohmann::json& overrides,
                                                       const std::string& where);

/// What condense_prompt() did.
struct CondensedPrompt {
  std::string text;
  bool condensed = false;            ///< false: the prompt fitted as it was (text == input)
  int64_t original_units = 0;        ///< UTF-16 units before
  int64_t units = 0;                 ///< after
  std::vector<std::string> dropped;  ///< what did not fit: "[ACTION] line 3", "[SETTINGS]"
};

/// Length in UTF-16 code units (what Runway's 1,000-unit promptText limit counts).
int64_t utf16_units(const std::string& utf8);

/// Fits a GenPack face into `max_units` UTF-16 units by a fixed rule (docs/providers.md). The
/// face's bookkeeping lines go first (GenPack:/Gate: lines, lock file names, heredoc markers,
/// blank lines). The other lines are kept whole, never cut, by priority while they fit: 0 the
/// locks' anchors ([Signature Identifiers], [Visual Anchors], [Canonical Appearance], [Prop
/// Anchors], the "Character Lock: X" / "Set Lock: X" lines that say whose), 1 [ACTION], 2 the
/// style's [Visual Style] / [Palette] / [Lighting], 3 [NEGATIVES / NO-DRIFT], 4 [SETTINGS], 5 the
/// rest; within a priority, in the face's order. The kept lines are joined in the face's order,
/// and `dropped` says per section how many lines did not fit. A face that fits comes back as is.
CondensedPrompt condense_prompt(const std::string& face, int64_t max_units);

struct AsyncJobConfig {
  std::string model_id;
  std::string preset;
  std::string endpoint;        ///< the provider's base URL
  std::string provider_model;  ///< {model}
  std::string api_key;         ///< from the environment; empty = no auth header
  nlohmann::json options;      ///< from async_job_options()
  HttpOptions http;
  /// capabilities: a storyboard frame needs image_out, a proxy or final render video_out.
  bool image_out = false;
  bool video_out = true;
};

class AsyncJobBackend : public Backend {
 public:
  /// `client` must outlive the backend.
  AsyncJobBackend(AsyncJobConfig config, HttpClient& client);

  /// unsupported: a render model answers no text call.
  [[nodiscard]] Result<Submitted<ModelResponse>> submit_model(const ModelRequest& request, CallTrace& trace) override;
  /// One POST; a ticket on 2xx with a job id (see the top).
  [[nodiscard]] Result<Submitted<GenerationResult>> submit_generation(const GenerationRequest& request,
                                                                      CallTrace& trace) override;
  [[nodiscard]] Result<std::optional<GenerationResult>> poll_generation(const std::string& ticket,
                                                                        CallTrace& trace) override;
  [[nodiscard]] Result<void> cancel_generation(const std::string& ticket, CallTrace& trace) override;
  JobTiming job_timing() const override;

  const AsyncJobConfig& config() const { return m_config; }

 private:
  /// One HTTP exchange, recorded in `trace`; `with_key` adds the auth header.
  [[nodiscard]] Result<HttpResponse> exchange(HttpRequest request, bool with_key, CallTrace& trace,
                                              const HttpOptions& http) const;
  [[nodiscard]] Result<GenerationResult> fetch_output(const nlohmann::json& ticket, const nlohmann::json& reply,
                                                      CallTrace& trace) const;
  /// unsupported when the model lacks the capability the request needs (image: a storyboard frame).
  [[nodiscard]] Result<void> check_output_kind(bool image, const GenerationRequest& request) const;
  /// An image job's downloaded output: rejected unless its magic bytes say PNG, JPEG or WebP.
  [[nodiscard]] Result<GenerationResult> image_result(GenerationResult result, std::string bytes,
                                                      const std::string& who) const;

  AsyncJobConfig m_config;
  HttpClient& m_client;
};

}  // namespace avps::backends
