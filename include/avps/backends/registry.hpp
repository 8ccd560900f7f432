#pragma once
// The backend registry: one Backend per model of the models file, found by the entry's `backend`
// field (as ccache keys its remote storages by scheme). `sim` is always built; the HTTP kinds
// (openai_chat, anthropic_messages, gemini_generate) are each an HttpModelBackend wrapped in the
// one retry layer; `async_job` is an AsyncJobBackend (async_job.hpp) configured by its preset and
// options, in the same retry layer. The engine asks for the backend of the model the router chose.
//
// openai_chat and gemini_generate models with capabilities.image_out draw storyboard frames by
// their image operation (http_images.hpp); video_out on them, and image_out on
// anthropic_messages, are refused.
//
// `comfyui` is a ComfyUiBackend (comfyui.hpp) on the workflow its options name, in the same retry
// layer; open() asks its server (GET /object_info) whether it can run the workflow.
//
// Nothing is answered by a backend the user did not declare: a model whose backend is not built,
// an async_job or comfyui model without video_out or image_out, an async_job model with an unknown
// preset, a comfyui model whose workflow file or bindings are wrong or whose server cannot run the
// workflow, a model whose api_key_env names an unset or empty variable, whose endpoint is missing
// or malformed, or whose options are wrong is refused when the registry opens, that is before a
// run starts, with one configuration error (exit 4) that lists every refused model, the field and
// the fix.
//
// Keys are read from the environment once, at open, into the backends' memory; they appear in
// no message of this module.
//
// Threading: open() and check() on one thread; for_model() and the backends it returns from any
// number of threads once open.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/backends/backend.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/backends/retry.hpp"
#include "avps/core/result.hpp"

namespace avps::backends {

/// A models-file entry as far as the registry needs it. (backends sit beside governance, not
/// above it, so the caller copies these fields from governance::Model.)
struct BackendSpec {
  std::string model_id;
  std::string backend;         ///< sim, openai_chat, anthropic_messages, gemini_generate, async_job, comfyui
  std::string endpoint;
  std::string api_key_env;     ///< a variable's name, never a key
  std::string provider_model;  ///< default: model_id
  std::string preset;          ///< async_job: "runway", "luma", ... (async_job.hpp); may be empty
  nlohmann::json options = nlohmann::json::object();
  bool generates = false;  ///< the entry claims image_out or video_out
  /// Of those: image_out (storyboard frames; also on openai_chat and gemini_generate, as their
  /// image operation) and video_out (renders: async_job, comfyui, sim). `generates` without either
  /// counts as video_out.
  bool image_out = false;
  bool video_out = false;
  bool text = true;  ///< capabilities.text: false for an image-only model
  /// The project folder: what paths in options are relative to (comfyui's workflow).
  std::filesystem::path project_dir;
};

/// Where keys come from: the process environment, or a test's map. Returns nullptr when unset.
using EnvLookup = std::function<const char*(const char* name)>;
EnvLookup process_env();

/// What `avps models check` says of one model.
struct ModelCheck {
  std::string model_id;
  std::string backend;
  std::string endpoint_host;  ///< "" for sim
  std::string key;            ///< "set (OPENAI_API_KEY)", "UNSET (OPENAI_API_KEY)" or "not needed"
  std::vector<std::string> problems;  ///< empty = ready; each names the field and the fix
};

/// Checks every spec without opening anything (a comfyui workflow file is read, its server is not
/// asked). Never reads a key's value beyond "set or not".
std::vector<ModelCheck> check_models(const std::vector<BackendSpec>& specs, const EnvLookup& env);

/// What the HTTP backends share. Null members: the registry makes and owns the real ones.
struct Transport {
  HttpClient* client = nullptr;
  Sleeper* sleeper = nullptr;
};

class BackendRegistry {
 public:

  /// Opens a backend for every spec; configuration error when any is refused (see the top).
  /// `project_config` is the merged avps.json (its "sim" block, "seed" and "thresholds").
  [[nodiscard]] static Result<std::unique_ptr<BackendRegistry>> open(const std::vector<BackendSpec>& specs,
                                                                     const nlohmann::json& project_config,
                                                                     const EnvLookup& env, Transport transport = {});
  /// A registry over given backends, by model id (engine tests' scripted backends, replay's
  /// recorded answers). kind_of() answers from `kinds`, "scripted" for a model not in it: replay
  /// gives each model its declared kind, on which what a request holds depends (a vision call
  /// to a sim model carries no images).
  static std::unique_ptr<BackendRegistry> of(std::map<std::string, std::shared_ptr<Backend>, std::less<>> by_model,
                                             const std::map<std::string, std::string, std::less<>>& kinds = {});

  /// The backend of a model given to open(), or nullptr for an unknown id.
  Backend* for_model(std::string_view model_id) const;
  /// The backend kind of a model ("sim", "openai_chat", ...), or "".
  std::string kind_of(std::string_view model_id) const;

 private:
  std::unique_ptr<HttpClient> m_own_client;
  std::unique_ptr<Sleeper> m_own_sleeper;
  std::map<std::string, std::shared_ptr<Backend>, std::less<>> m_by_model;
  std::map<std::string, std::string, std::less<>> m_kind;
};

}  // namespace avps::backends
