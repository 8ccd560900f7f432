#pragma once
// What replay, --reprice and --timeline share in reading a record. Replay-internal.

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::replay {

/// `--run`: "" (every run) → nullopt; "2", "RUN_0002" or "run_2" → the run's id as the ledger
/// writes it; anything else → invalid_argument saying how to name a run.
[[nodiscard]] Result<std::optional<std::string>> run_filter(const std::string& run);

/// A JSON object of the project (a canonical request, an artifact's content) by its sha256,
/// verified; null when it is gone, damaged or not JSON.
nlohmann::json object_json(const ledger::Ledger& ledger, const std::string& sha256);

}  // namespace avps::replay
