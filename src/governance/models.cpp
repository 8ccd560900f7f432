#include "avps/governance/models.hpp"

#include <algorithm>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/json_schema.hpp"

namespace avps::governance {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string>& model_tiers() {
  static const std::vector<std::string> k_tiers = {"t1",       "t2",          "t3",      "vision",
                                                   "research", "gen_premium", "gen_mid", "gen_low"};
  return k_tiers;
}

bool is_text_tier(std::string_view tier) {
  return tier == "t1" || tier == "t2" || tier == "t3" || tier == "vision" || tier == "research";
}

bool is_generation_tier(std::string_view tier) {
  return tier == "gen_premium" || tier == "gen_mid" || tier == "gen_low";
}

Result<std::string> generation_tier_for(std::string_view hero_tier) {
  if (hero_tier == "A") {
    return std::string("gen_premium");
  }
  if (hero_tier == "B") {
    return std::string("gen_mid");
  }
  if (hero_tier == "C") {
    return std::string("gen_low");
  }
  return make_error(ErrorCode::invalid_argument,
                    "hero tier \"" + std::string(hero_tier) + "\" is not A, B or C");
}

bool Model::in_tier(std::string_view tier) const {
  return std::find(tiers.begin(), tiers.end(), tier) != tiers.end();
}

namespace {

std::optional<int64_t> optional_price(const json& pricing, const char* key) {
  if (pricing.contains(key)) {
    return pricing.at(key).get<int64_t>();
  }
  return std::nullopt;
}

// The typed copy of one entry that passed the schema.
Model model_from_json(const json& entry, int index) {
  Model model;
  model.id = entry.at("id").get<std::string>();
  model.backend = entry.at("backend").get<std::string>();
  model.endpoint = entry.value("endpoint", std::string());
  model.api_key_env = entry.value("api_key_env", std::string());
  model.provider_model = entry.value("provider_model", model.id);
  model.preset = entry.value("preset", "");
  model.options = entry.value("options", json::object());
  model.tiers = entry.at("tiers").get<std::vector<std::string>>();
  const json& caps = entry.at("capabilities");
  model.capabilities =
      Capabilities{caps.at("text").get<bool>(),      caps.at("json_schema").get<bool>(),
                   caps.at("vision").get<bool>(),    caps.at("image_out").get<bool>(),
                   caps.at("video_out").get<bool>(), caps.at("context_tokens").get<int64_t>()};
  if (entry.contains("pricing")) {
    const json& p = entry.at("pricing");
    Pricing pricing;
    pricing.input_per_mtok = optional_price(p, "input_per_mtok_micro_usd");
    pricing.output_per_mtok = optional_price(p, "output_per_mtok_micro_usd");
    pricing.cached_input_per_mtok = optional_price(p, "cached_input_per_mtok_micro_usd");
    pricing.per_image = optional_price(p, "per_image_micro_usd");
    if (p.contains("per_video_second_micro_usd")) {
      pricing.per_video_second = p.at("per_video_second_micro_usd").get<std::map<std::string, int64_t>>();
    }
    model.pricing = pricing;
  }
  model.price_as_of = entry.value("price_as_of", std::string());
  model.price_source = entry.value("price_source", std::string());
  model.index = index;
  return model;
}

}  // namespace

Result<ModelsFile> ModelsFile::from_json(const fs::path& data_dir, const json& document,
                                         const std::string& source) {
  fs::path schema_path = data_dir / "schemas" / "models.schema.json";
  Result<core::JsonSchema> schema = core::JsonSchema::load(schema_path);
  if (!schema) {
    return make_error(ErrorCode::configuration,
                      "cannot load the shipped models schema: " + schema.error().message);
  }
  std::vector<core::SchemaIssue> issues = schema->validate(document);
  if (!issues.empty()) {
    return make_error(ErrorCode::configuration, core::format_schema_issues("models file " + source, issues));
  }

  ModelsFile file;
  file.m_source = source;
  file.m_document = document;
  std::map<std::string, int> first_index;
  std::string duplicates;
  const json& models = document.at("models");
  for (size_t i = 0; i < models.size(); ++i) {
    Model model = model_from_json(models[i], static_cast<int>(i));
    auto [it, inserted] = first_index.emplace(model.id, model.index);
    if (!inserted) {
      duplicates += "\n  /models/" + std::to_string(i) + "/id: \"" + model.id +
                    "\" is already the id of /models/" + std::to_string(it->second);
    }
    file.m_models.push_back(std::move(model));
  }
  if (!duplicates.empty()) {
    return make_error(ErrorCode::configuration, "models file " + source + " repeats model ids:" + duplicates);
  }
  return file;
}

Result<ModelsFile> ModelsFile::load_file(const fs::path& data_dir, const fs::path& path) {
  Result<std::string> text = core::read_file(path);
  if (!text) {
    Error e = std::move(text).error();
    e.code = ErrorCode::configuration;
    e.message = "cannot read the models file: " + e.message;
    return e;
  }
  Result<json> document = core::parse_json(*text, path.string());
  if (!document) {
    Error e = std::move(document).error();
    e.code = ErrorCode::configuration;
    return e;
  }
  return from_json(data_dir, *document, path.string());
}

Result<ModelsFile> ModelsFile::load(const fs::path& data_dir, const fs::path& project_dir,
                                    const project::Config& config) {
  const json& document = config.document;
  if (document.is_object() && document.contains("models") && document.at("models").is_string()) {
    if (project_dir.empty()) {
      return make_error(
          ErrorCode::configuration,
          "the configuration names a models file (/models) but there is no project folder to find it in");
    }
    return load_file(data_dir, project_dir / document.at("models").get<std::string>());
  }
  return load_file(data_dir, data_dir / "policies" / "models.json");
}

const Model* ModelsFile::find(std::string_view id) const {
  for (const Model& model : m_models) {
    if (model.id == id) {
      return &model;
    }
  }
  return nullptr;
}

std::vector<const Model*> ModelsFile::in_tier(std::string_view tier) const {
  std::vector<const Model*> out;
  for (const Model& model : m_models) {
    if (model.in_tier(tier)) {
      out.push_back(&model);
    }
  }
  return out;
}

}  // namespace avps::governance
