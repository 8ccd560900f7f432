// Fuzz target: the project configuration loader (src/project/config.cpp), from text.
//   the input up to the first NUL   avps.json's text, parsed as the loader parses it
//                                   (core::parse_json) and merged over the shipped layers by
//                                   load_config_from, the loader's own entry for a project layer
//   each further NUL-separated part a --set POINTER=VALUE option (parse_override), used when valid
// Invariant: no exception, no crash; a loaded configuration holds what it was validated to hold
// (the typed fields agree with the document) and loads again to the same document.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "avps/core/canonical_json.hpp"
#include "avps/project/config.hpp"
#include "fuzz_support.hpp"

using namespace avps;
using avps::fuzz::fuzz_fail;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = avps::fuzz::as_text(data, size);
  std::size_t end = input.find('\0');
  const std::string_view text = input.substr(0, end);

  project::ConfigSources sources;
  // A project folder that does not exist: the shipped policies are the second layer.
  sources.project_dir = "/nonexistent/avps-fuzz-project";
  sources.data_dir = avps::fuzz::k_source_dir;
  while (end != std::string_view::npos) {
    const std::size_t next = input.find('\0', end + 1);
    const std::string option(input.substr(end + 1, next == std::string_view::npos ? next : next - end - 1));
    Result<project::Override> parsed = project::parse_override(option);
    if (parsed) {
      sources.overrides.push_back(std::move(parsed).value());
    }
    end = next;
  }

  Result<json> layer = core::parse_json(text, "avps.json");
  if (!layer) {
    return 0;
  }
  Result<project::Config> config = project::load_config_from(*layer, sources);
  if (!config) {
    if (config.error().message.empty()) {
      fuzz_fail("an empty error message");
    }
    return 0;
  }
  if (config->title != config->document["title"].get<std::string>() ||
      config->budget.project_cap_micro_usd !=
          project::usd_to_micro(config->document["budget"]["project_cap_usd"].get<double>())) {
    fuzz_fail("the typed configuration disagrees with its document");
  }
  // The merged document is a valid project layer of its own, and a fixed point.
  sources.overrides.clear();
  Result<project::Config> again = project::load_config_from(config->document, sources);
  if (!again) {
    fuzz_fail("a loaded configuration does not load again: " + again.error().message);
  }
  if (again->document != config->document) {
    fuzz_fail("loading a loaded configuration changed it");
  }
  return 0;
}
