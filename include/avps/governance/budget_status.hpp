#pragma once
// BUDGET_STATUS, the budget-gates artifact (schemas/budget_status.schema.json): where spend stands
// against the effective caps, built from the ledger. Project-wide, one version per write.
//
// Sections and how they are computed (money in micro-USD):
//   current_spend       project committed + reserved (ledger::Ledger::spend)
//   projected_spend     max(current, the projected total when one is given, e.g. COST_REPORT_PROJECT)
//   percent_of_budget   current / project cap × 100, two decimals
//   regen_count_by_shot the highest regen_count of each shot's RUN_LOG rows, for the shots where it is
//                       above 0 (a shot not listed was never regenerated)
//   tier_usage          RUN_LOG rows that are model calls (tier and model set): calls, actual cost
//   violations          YES exactly when the verdict is FAIL
//   enforcement         warn + require_cost_optimizer at >= warn_pct, hard_stop over a cap
// Gate: FAIL when projected spend passes the project cap or spend passes a scene / shot cap; WARN
// at >= warn_pct of one; else PASS. scores hold the caps and percentages; reasons name each
// finding and every cap an override raised.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/override.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"

namespace avps::governance {

struct TierUsage {
  int64_t calls = 0;
  int64_t spend_micro_usd = 0;
  bool operator==(const TierUsage&) const = default;
};

/// Everything a BUDGET_STATUS is computed from.
struct BudgetStatusInput {
  int warn_pct = 90;
  CapPosition project;              ///< scope "project", the effective project cap
  std::vector<CapPosition> scopes;  ///< each scene and shot with spend that has a cap ("scene S03")
  std::optional<int64_t> projected_total_micro_usd;
  std::map<std::string, int> regen_by_shot;  ///< shot id -> regen count, of shots regenerated at least once
  std::map<std::string, TierUsage> tiers;    ///< model tier -> usage
  std::vector<std::string> raised_caps;      ///< "project cap 300.000000 USD (raised by STOP-42)"
};

/// What a BUDGET_STATUS reads of the events themselves, folded one event at a time (a reader that
/// pages through the ledger, or keeps it up to date by adding only new events, holds this instead
/// of the events): the scenes and shots that have reservations, and from the RUN_LOG rows the
/// regen count per shot and the usage per model tier. A value; not thread-safe.
struct BudgetTally {
  std::set<std::string> scenes;  ///< scene ids with reservations
  std::set<std::string> shots;   ///< shot ids with reservations
  std::map<std::string, int> regen_by_shot;  ///< shots regenerated at least once (absent: 0)
  std::map<std::string, TierUsage> tiers;
  /// Reads only the members of `e`'s body that members() names.
  void add(const ledger::Event& e);
  /// The members of an event's body add() reads: a reader may hand it bodies with only these.
  static const std::vector<std::string>& members();
  /// The tally as JSON (a fold checkpoint's), and back: a tally restored from it goes on as the
  /// saved one would. restore() throws nlohmann::json::exception on what save() did not make.
  nlohmann::json save() const;
  static BudgetTally restore(const nlohmann::json& saved);
  bool operator==(const BudgetTally&) const = default;
};

/// Gathers the input from the ledger: spend against the caps in force (configured, raised by the
/// overrides in `overrides`), every scene and shot that has reservations, and the RUN_LOG rows.
[[nodiscard]] Result<BudgetStatusInput> budget_status_input(const ledger::Ledger& ledger,
                                                            const std::vector<ledger::Event>& events,
                                                            const project::Budget& configured,
                                                            const Overrides& overrides,
                                                            std::optional<int64_t> projected_total_micro_usd);

/// The same from a tally of the events (BudgetTally) instead of the events.
[[nodiscard]] Result<BudgetStatusInput> budget_status_input(const ledger::Ledger& ledger, const BudgetTally& tally,
                                                            const project::Budget& configured,
                                                            const Overrides& overrides,
                                                            std::optional<int64_t> projected_total_micro_usd);

/// The canonical JSON (kind BUDGET_STATUS, format_version 1, gate computed). A pure function.
nlohmann::json budget_status_json(const BudgetStatusInput& input);

/// The projected total of the latest COST_REPORT_PROJECT, if one was recorded.
[[nodiscard]] Result<std::optional<int64_t>> latest_projected_total(project::Project& project);

/// Writes `content` as the next BUDGET_STATUS version (validated against its schema, face rendered)
/// with a RUN_LOG row (skill budget-gates, outcome the verdict). `producer` is the skill or command
/// that asked for it ("budget-gates", "override"); `details` go into the recorded event, with
/// `verdict_by: "budget_status"` (its gate is that arithmetic, not a skill's). A run must
/// be begun. Returns the file name.
[[nodiscard]] Result<std::string> write_budget_status(
    project::Project& project, const nlohmann::json& content, std::string producer,
    const nlohmann::json& details = nlohmann::json::object());

}  // namespace avps::governance
