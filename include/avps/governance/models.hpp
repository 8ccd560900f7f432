#pragma once
// The models file (schemas/models.schema.json): which models avps may call, on which backend,
// in which tiers, with which capabilities and at which prices.
//
// Where it comes from: the project's own file when avps.json names one ("models", a path relative
// to the project folder; also AVPS_MODELS), else the shipped policies/models.json. The project's
// file replaces the shipped one as a whole (no merge): a production pins exactly the models it
// may spend money on. The schema is always the shipped one, because avps relies on it.
//
// Guarantees of a loaded ModelsFile: the document passed models.schema.json, model ids are
// unique, and every Model below is a faithful typed copy of its entry. Prices are integer
// micro-USD; a price the file does not give is *absent* (std::nullopt / not in the map), never 0.
// Whoever prices a call must refuse an absent price (see pricing.hpp); an explicit 0 is the
// owner's statement (a local model they run for free) and is honoured.

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/project/config.hpp"

namespace avps::governance {

/// The tiers of common.schema.json#/definitions/model_tier, in escalation order for the text
/// tiers and premium-first for the generation tiers.
const std::vector<std::string>& model_tiers();
/// t1, t2, t3, vision, research: tiers of model (text / JSON) calls.
bool is_text_tier(std::string_view tier);
/// gen_premium, gen_mid, gen_low: tiers of video and image generation.
bool is_generation_tier(std::string_view tier);
/// DESIGN §3: hero tier A -> gen_premium, B -> gen_mid, C -> gen_low. invalid_argument otherwise.
[[nodiscard]] Result<std::string> generation_tier_for(std::string_view hero_tier);

struct Capabilities {
  bool text = false;
  bool json_schema = false;  ///< honours a JSON Schema for structured output
  bool vision = false;       ///< accepts images / frames as input
  bool image_out = false;
  bool video_out = false;
  int64_t context_tokens = 0;  ///< input + output tokens one call may hold
};

/// Prices in integer micro-USD. Absent means "not priced", never free.
struct Pricing {
  std::optional<int64_t> input_per_mtok;   ///< per million input tokens
  std::optional<int64_t> output_per_mtok;  ///< per million output tokens
  /// Per million input tokens read from the provider's prompt cache; absent = priced as input.
  std::optional<int64_t> cached_input_per_mtok;
  std::optional<int64_t> per_image;
  std::map<std::string, int64_t> per_video_second;  ///< by resolution "1280x720"
};

struct Model {
  std::string id;
  std::string backend;      ///< sim, openai_chat, anthropic_messages, gemini_generate, async_job, comfyui
  std::string endpoint;     ///< may be empty (sim)
  std::string api_key_env;  ///< the variable's name, never the key; may be empty
  std::string provider_model;  ///< the name sent on the wire ("provider_model"; default the id)
  std::string preset;          ///< async_job: the provider preset ("runway", ...); may be empty
  nlohmann::json options = nlohmann::json::object();  ///< per-backend fields (docs/providers.md)
  std::vector<std::string> tiers;
  Capabilities capabilities;
  std::optional<Pricing> pricing;  ///< nullopt: the model has no price at all
  std::string price_as_of;         ///< YYYY-MM-DD, present whenever pricing is
  std::string price_source;
  int index = 0;  ///< position in the file; breaks price ties so routing is deterministic

  bool in_tier(std::string_view tier) const;
};

class ModelsFile {
 public:
  /// Loads the models file a project uses (see the top of this header). `project_dir` may be empty
  /// when there is no project (then only the shipped file is read). Errors (configuration) name the
  /// file and, for schema problems, every offending JSON pointer; a duplicate id names both
  /// pointers.
  [[nodiscard]] static Result<ModelsFile> load(const std::filesystem::path& data_dir,
                                               const std::filesystem::path& project_dir,
                                               const project::Config& config);
  /// Reads and checks one models file against `data_dir`/schemas/models.schema.json.
  [[nodiscard]] static Result<ModelsFile> load_file(const std::filesystem::path& data_dir,
                                                    const std::filesystem::path& path);
  /// Checks a document already in memory; `source` names it in errors.
  [[nodiscard]] static Result<ModelsFile> from_json(const std::filesystem::path& data_dir,
                                                    const nlohmann::json& document,
                                                    const std::string& source);

  const std::vector<Model>& models() const { return m_models; }
  /// The model with this id, or nullptr.
  const Model* find(std::string_view id) const;
  /// Models listing `tier`, in file order.
  std::vector<const Model*> in_tier(std::string_view tier) const;
  /// The file the models came from (or the `source` given to from_json).
  const std::string& source() const { return m_source; }
  const nlohmann::json& document() const { return m_document; }

 private:
  std::vector<Model> m_models;
  std::string m_source;
  nlohmann::json m_document;
};

}  // namespace avps::governance
