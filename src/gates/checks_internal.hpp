#pragma once
// Internal to the gates module: what evaluate_gate needs to know about a named check besides the
// function itself.

#include <string_view>

#include "avps/gates/gate.hpp"

namespace avps::gates::detail {

struct CheckInfo {
  std::string_view name;
  /// The output kind the check reads; empty = the skill's first output with a schema (a check
  /// that serves several kinds, like lock_hedge_words).
  std::string_view reads;
  Check check;
  /// Reads what other steps change while a run goes on (the budget's caps and overrides, the
  /// project's routing table), so its findings cannot be recomputed from the record afterwards.
  bool reads_live_state = false;
};

/// The registry entry of `name`, or nullptr (unknown, or left to the engine).
const CheckInfo* find_check_info(std::string_view name);

bool is_engine_check(std::string_view name);

/// The verdict qc_verdict_from_scores gives each row of a QC_BATCH, in row order (FAIL for a shot
/// whose hero tier is unknown). `params` are qc-grader's resolved gate.params.
Result<std::vector<Verdict>> qc_row_verdicts(const nlohmann::json& output, const nlohmann::json& params,
                                             const GateContext& context);

}  // namespace avps::gates::detail
