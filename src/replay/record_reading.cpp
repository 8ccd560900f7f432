#include "record_reading.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "avps/artifacts/store.hpp"
#include "avps/core/canonical_json.hpp"

namespace avps::replay {

Result<std::optional<std::string>> run_filter(const std::string& run) {
  if (run.empty()) {
    return std::optional<std::string>{};
  }
  std::string digits = run;
  for (const char* prefix : {"RUN_", "run_"}) {
    if (digits.rfind(prefix, 0) == 0) {
      digits = digits.substr(4);
    }
  }
  if (digits.empty() || digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
    return make_error(ErrorCode::invalid_argument, "--run " + run + ": name a run as its number (2) or its id (RUN_0002)");
  }
  char id[16];
  std::snprintf(id, sizeof id, "RUN_%04d", std::stoi(digits));
  return std::optional<std::string>{id};
}

nlohmann::json object_json(const ledger::Ledger& ledger, const std::string& sha256) {
  Result<std::string> bytes = artifacts::read_object(ledger, sha256);
  if (!bytes) {
    return nullptr;
  }
  Result<nlohmann::json> parsed = core::parse_json(*bytes, "object");
  return parsed ? *parsed : nlohmann::json(nullptr);
}

}  // namespace avps::replay
