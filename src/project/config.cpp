#include "avps/project/config.hpp"

#include <cmath>
#include <cstdlib>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/json_schema.hpp"

extern char** environ;

namespace avps::project {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Layer 1: what avps assumes when nothing else says otherwise.
json compiled_defaults() {
  return {{"format_version", 1}, {"brief", "brief.md"}, {"seed", 1}};
}

struct Layer {
  std::string name;
  json patch;
};

Result<json> read_json_file(const fs::path& path) {
  AVPS_TRY_ASSIGN(std::string text, core::read_file(path));
  return core::parse_json(text, path.string());
}

Result<std::vector<Layer>> shipped_layers(const ConfigSources& sources) {
  std::vector<Layer> layers;
  layers.push_back({"avps's built-in defaults", compiled_defaults()});
  // A project may override the shipped policies file as a whole.
  fs::path policy = sources.project_dir / "policies" / "project_defaults.json";
  if (!fs::exists(policy)) {
    policy = sources.data_dir / "policies" / "project_defaults.json";
  }
  AVPS_TRY_ASSIGN(json defaults, read_json_file(policy));
  layers.push_back({policy.string(), std::move(defaults)});
  return layers;
}

Result<std::vector<Layer>> override_layers(const ConfigSources& sources) {
  std::vector<Layer> layers;
  for (const auto& [name, pointer] : environment_overrides()) {
    auto it = sources.environment.find(name);
    if (it == sources.environment.end()) {
      continue;
    }
    json value;
    try {
      value = json::parse(it->second);
    } catch (const json::exception&) {
      value = it->second;
    }
    json patch = json::object();
    patch[json::json_pointer(pointer)] = value;
    layers.push_back({"environment variable " + name, patch});
  }
  for (const Override& o : sources.overrides) {
    json patch = json::object();
    try {
      patch[json::json_pointer(o.pointer)] = o.value;
    } catch (const json::exception& e) {
      return make_error(ErrorCode::invalid_argument, "--set " + o.pointer + ": " + e.what());
    }
    layers.push_back({"--set " + o.pointer, patch});
  }
  return layers;
}

Result<Config> merge_and_validate(const std::vector<Layer>& layers, const ConfigSources& sources) {
  json merged = json::object();
  for (const Layer& layer : layers) {
    merged.merge_patch(layer.patch);
  }
  AVPS_TRY_ASSIGN(core::JsonSchema schema, core::JsonSchema::load(sources.data_dir / "schemas" / "project.schema.json"));
  std::vector<core::SchemaIssue> issues = schema.validate(merged);
  if (!issues.empty()) {
    std::string message = "the project configuration is invalid:";
    for (const core::SchemaIssue& issue : issues) {
      // Name the last layer that set this value (or its nearest parent).
      std::string origin = "avps.json";
      for (json::json_pointer p(issue.pointer);; p = p.parent_pointer()) {
        bool found = false;
        for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
          if (it->patch.contains(p)) {
            origin = it->name;
            found = true;
            break;
          }
        }
        if (found || p.empty()) {
          break;
        }
      }
      message += "\n  " + issue.to_string() + "  [from " + origin + "]";
    }
    return make_error(ErrorCode::configuration, message);
  }
  Config config;
  config.document = merged;
  config.title = merged["title"].get<std::string>();
  config.brief = sources.project_dir / merged["brief"].get<std::string>();
  config.seed = merged["seed"].get<uint64_t>();
  const json& budget = merged["budget"];
  config.budget.project_cap_micro_usd = usd_to_micro(budget["project_cap_usd"].get<double>());
  if (budget.contains("scene_cap_usd")) {
    config.budget.scene_cap_micro_usd = usd_to_micro(budget["scene_cap_usd"].get<double>());
  }
  if (budget.contains("shot_cap_usd")) {
    config.budget.shot_cap_micro_usd = usd_to_micro(budget["shot_cap_usd"].get<double>());
  }
  config.budget.warn_pct = budget["warn_pct"].get<int>();
  return config;
}

}  // namespace

Result<Override> parse_override(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || text[0] != '/') {
    return make_error(ErrorCode::invalid_argument,
                      "--set wants POINTER=VALUE with a JSON pointer, e.g. /budget/project_cap_usd=500; got \"" +
                          text + "\"");
  }
  Override o;
  o.pointer = text.substr(0, eq);
  std::string value = text.substr(eq + 1);
  try {
    (void)json::json_pointer(o.pointer);
  } catch (const json::exception& e) {
    return make_error(ErrorCode::invalid_argument, "--set " + o.pointer + ": not a JSON pointer (" + e.what() + ")");
  }
  try {
    o.value = json::parse(value);
  } catch (const json::exception&) {
    o.value = value;
  }
  return o;
}

const std::vector<std::pair<std::string, std::string>>& environment_overrides() {
  static const std::vector<std::pair<std::string, std::string>> k_table = {
      {"AVPS_PROJECT_CAP_USD", "/budget/project_cap_usd"},
      {"AVPS_SCENE_CAP_USD", "/budget/scene_cap_usd"},
      {"AVPS_SHOT_CAP_USD", "/budget/shot_cap_usd"},
      {"AVPS_SEED", "/seed"},
      {"AVPS_MODELS", "/models"},
  };
  return k_table;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    if (entry.rfind("AVPS_", 0) != 0) {
      continue;
    }
    auto eq = entry.find('=');
    if (eq != std::string::npos) {
      out[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
  }
  return out;
}

Result<Config> load_config_from(const json& project_layer, const ConfigSources& sources) {
  if (!project_layer.is_object()) {
    return make_error(ErrorCode::configuration, "avps.json must hold a JSON object");
  }
  AVPS_TRY_ASSIGN(std::vector<Layer> layers, shipped_layers(sources));
  layers.push_back({(sources.project_dir / "avps.json").string(), project_layer});
  AVPS_TRY_ASSIGN(std::vector<Layer> overrides, override_layers(sources));
  layers.insert(layers.end(), overrides.begin(), overrides.end());
  return merge_and_validate(layers, sources);
}

Result<Config> load_config(const ConfigSources& sources) {
  fs::path path = sources.project_dir / "avps.json";
  Result<json> project_layer = read_json_file(path);
  if (!project_layer) {
    Error e = std::move(project_layer).error();
    if (e.code == ErrorCode::not_found) {
      e.message = sources.project_dir.string() + " has no avps.json; create a project with `avps init`";
    } else {
      e.code = ErrorCode::configuration;
    }
    return e;
  }
  return load_config_from(*project_layer, sources);
}

int64_t usd_to_micro(double usd) {
  return static_cast<int64_t>(std::llround(usd * 1'000'000.0));
}

}  // namespace avps::project
