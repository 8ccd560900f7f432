#pragma once
// comfyui: renders on a ComfyUI server (local, or behind a proxy), driven by an API-format
// workflow from the project (wire format: shared/reference/backend-apis.md §5; docs/providers.md
// "comfyui"). A models-file entry sets `endpoint` (e.g. http://127.0.0.1:8188) and options:
//   workflow    the workflow file ("Save (API)" / "Export (API)" in ComfyUI), a path relative to
//               the project folder: {"<node id>": {"class_type", "inputs", "_meta": {"title"}}}
//   bindings    which node inputs receive the request's fields, by node id or by the node's title:
//               {"prompt": {"node": "6", "input": "text"}, "seed": {"title": "Sampler", "input":
//               "seed"}, ...}; a field may go to several inputs (a list). Fields: prompt (the
//               GenPack face; without its [NEGATIVES / NO-DRIFT] section when negative_prompt is
//               bound), negative_prompt (that section's lines), seed (mod 2^32), width and height
//               (the request's pixels), frames (duration × fps, fitted to frames_multiple_of /
//               frames_remainder), fps, duration_s, input_image (the uploaded input frame's name).
//               prompt is required.
//   output_nodes  the nodes whose files are the render ({"node"} or {"title"}), default every
//               output; the first video file (mp4, webm, mov, mkv, gif, an animated webp) is taken,
//               for a storyboard frame the first image.
//   fps, frames_multiple_of, frames_remainder, prompt_max_chars (condense_prompt() of
//   async_job.hpp; 0 = no limit), poll {interval_s, max_wait_s}, max_download_bytes, timeout_s,
//   connect_timeout_s, retry.
//
// What is checked, and when: comfyui_options() and load_comfyui_workflow() without a server (the
// registry, `avps models check`): the options, the workflow file (there, JSON, API format, not the
// UI's nodes/links format), each binding's node and input (present in the workflow, a value not a
// link). check_server() when a run starts: GET /object_info has every class_type of the workflow,
// each bound input is one the class declares, each literal choice (a model file name) is one the
// server offers, and the output nodes are output nodes. Each refusal names the fix.
//
// The wire: an input frame is uploaded first (POST /upload/image, multipart: image, type=input,
// overwrite=true; named by its sha256, so a retried upload replaces itself). POST /prompt
// {"prompt": <workflow with the bindings applied>, "client_id": <this run's id>} gives the
// prompt_id, the ticket's id. A poll is GET /history/{id}: absent while queued or running (then
// GET /queue tells queued/running from lost: a prompt in neither the queue nor the history failed,
// the server was restarted or the prompt deleted); status_str "success" with outputs succeeded,
// "error" failed with the execution_error's node and exception message (or the interrupt). The
// output is GET /view?filename&subfolder&type and checked as async_job's are (job_wire.hpp: size
// limit, ffprobe). Cancel: GET /queue, then POST /interrupt {"prompt_id"} when the prompt is the
// running one (never a global interrupt, which would stop another client's prompt), POST /queue
// {"delete": [id]} when it waits; a finished or unknown prompt needs nothing.
//
// The ticket (canonical JSON, nothing secret): {"id", "client_id", "seconds", "output": "video" |
// "image", "frames", "fps"}. A key (api_key_env, optional: a proxy's) goes only in an
// Authorization: Bearer header to the endpoint's host.
//
// Threading: after check_server(), every method may be called from many threads at once.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/backends/backend.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/core/result.hpp"

namespace avps::backends {

/// A model's options checked, with defaults filled in; configuration error naming `where`, the
/// option and what it may be.
[[nodiscard]] Result<nlohmann::json> comfyui_options(const nlohmann::json& options, const std::string& where);

/// A workflow loaded and checked against checked options (see the top).
struct ComfyWorkflow {
  nlohmann::json graph;  ///< the API-format workflow as in the file
  std::string sha256;    ///< of the file's bytes (recorded with each ticket)
  std::string path;      ///< as resolved, for messages
  /// field -> [[node id, input name], ...]: where each bound field goes.
  nlohmann::json targets = nlohmann::json::object();
  nlohmann::json output_nodes = nlohmann::json::array();  ///< node ids, in the options' order
};

/// Reads options.workflow under `project_dir` and resolves the bindings and output nodes.
/// configuration error (naming `where`, the file and the fix) for a missing or unreadable file,
/// text that is not JSON, the UI format, a node without class_type or inputs, a binding to a node
/// id or title that is not there (or a title on several nodes), an input the node does not have or
/// that is a link.
[[nodiscard]] Result<ComfyWorkflow> load_comfyui_workflow(const std::filesystem::path& project_dir,
                                                          const nlohmann::json& options, const std::string& where);

/// A fresh client id for one run ("avps-" and 32 hex digits from std::random_device): ComfyUI
/// tells its clients' prompts apart by it.
std::string comfyui_client_id();

struct ComfyUiConfig {
  std::string model_id;
  std::string endpoint;    ///< the server's base URL
  std::string api_key;     ///< from the environment; empty = no auth header
  std::string client_id;   ///< this run's, sent with each prompt
  nlohmann::json options;  ///< from comfyui_options()
  ComfyWorkflow workflow;
  HttpOptions http;
};

class ComfyUiBackend : public Backend {
 public:
  /// `client` must outlive the backend.
  ComfyUiBackend(ComfyUiConfig config, HttpClient& client);

  /// GET /object_info and the checks of the top: every problem found, each naming its fix; empty
  /// when the server can run the workflow. A server that does not answer is one (start it, or fix
  /// the endpoint).
  [[nodiscard]] std::vector<std::string> check_server(CallTrace& trace) const;

  /// unsupported: a render model answers no text call.
  [[nodiscard]] Result<Submitted<ModelResponse>> submit_model(const ModelRequest& request, CallTrace& trace) override;
  /// The upload of an input frame (when the request carries one), then one POST /prompt.
  [[nodiscard]] Result<Submitted<GenerationResult>> submit_generation(const GenerationRequest& request,
                                                                      CallTrace& trace) override;
  [[nodiscard]] Result<std::optional<GenerationResult>> poll_generation(const std::string& ticket,
                                                                        CallTrace& trace) override;
  [[nodiscard]] Result<void> cancel_generation(const std::string& ticket, CallTrace& trace) override;
  JobTiming job_timing() const override;

  const ComfyUiConfig& config() const { return m_config; }
  /// The workflow with a request's values bound (what POST /prompt carries as "prompt"), and
  /// what was fitted ({"frames", "prompt_condensed"?}) into `details`. invalid_argument when the
  /// request's input frame has no binding, or input_image is bound and the request has none.
  [[nodiscard]] Result<nlohmann::json> bind(const GenerationRequest& request, const std::string& uploaded_image,
                                            nlohmann::json& details) const;

 private:
  [[nodiscard]] Result<HttpResponse> exchange(HttpRequest request, CallTrace& trace, const HttpOptions& http) const;
  /// Where the prompt is in GET /queue: "running", "pending" or "" (in neither).
  [[nodiscard]] Result<std::string> queue_place(const std::string& id, CallTrace& trace) const;
  [[nodiscard]] Result<std::string> upload(const Image& image, CallTrace& trace) const;

  ComfyUiConfig m_config;
  HttpClient& m_client;
};

}  // namespace avps::backends
