#pragma once
// Project configuration: avps.json, merged from five layers and validated as a whole against
// schemas/project.schema.json. Later layers win (JSON merge patch, RFC 7386):
//   1. shipped defaults compiled into avps
//   2. shipped policies/project_defaults.json (or the project's own policies/project_defaults.json)
//   3. the project's avps.json
//   4. AVPS_* environment variables (table in docs/cli.md)
//   5. command-line --set POINTER=VALUE options
// Every error names the JSON pointer, what was expected, what was found, and the layer the
// offending value came from.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::project {

/// One --set option: a JSON pointer and a value (parsed as JSON when it is JSON, else a string).
struct Override {
  std::string pointer;
  nlohmann::json value;
};
/// Parses "POINTER=VALUE" ("/budget/project_cap_usd=500", "/title=My film").
[[nodiscard]] Result<Override> parse_override(const std::string& text);

struct Budget {
  int64_t project_cap_micro_usd = 0;
  std::optional<int64_t> scene_cap_micro_usd;
  std::optional<int64_t> shot_cap_micro_usd;
  int warn_pct = 90;
};

struct Config {
  nlohmann::json document;  ///< the merged, validated configuration
  std::string title;
  std::filesystem::path brief;  ///< absolute
  uint64_t seed = 0;
  Budget budget;
};

/// Where the config layers come from; `environment` is injectable for tests.
struct ConfigSources {
  std::filesystem::path project_dir;
  std::filesystem::path data_dir;  ///< shipped schemas/ and policies/
  std::vector<Override> overrides;
  std::map<std::string, std::string> environment;  ///< name -> value, only AVPS_* are read
};

/// The environment variables that override configuration: name -> JSON pointer.
const std::vector<std::pair<std::string, std::string>>& environment_overrides();
/// The AVPS_* variables of this process.
std::map<std::string, std::string> process_environment();

/// Loads, merges and validates. The errors list every problem at once.
[[nodiscard]] Result<Config> load_config(const ConfigSources& sources);

/// Validates a candidate avps.json on its own merged over the shipped layers (used by init).
[[nodiscard]] Result<Config> load_config_from(const nlohmann::json& project_layer, const ConfigSources& sources);

/// USD (as written in avps.json) to integer micro-USD, rounded to the nearest micro-dollar.
int64_t usd_to_micro(double usd);

}  // namespace avps::project
