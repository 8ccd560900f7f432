#pragma once
// Tier quotas (spec §3, DESIGN §3): premium video ≤ quotas/premium_shot_pct of the shots (default
// 25 %), t3 ≤ quotas/t3_narrative_pct of the narrative calls (default 15 %).
//
// "Within quota" means used × 100 ≤ pct × total, the same comparison the tier_quotas gate check
// makes. Every function here is pure: it changes, reports or decides, and the caller logs what
// changed (route.reallocated, route.escalation_refused; docs/formats/ledger.md).

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "avps/ledger/ledger.hpp"

namespace avps::governance {

/// One shot's generation allocation.
struct ShotAllocation {
  std::string shot_id;
  std::string scene_id;
  std::string hero_tier;    ///< A, B, C
  std::string tier;         ///< the generation tier it routes in
  int64_t duration_ms = 0;  ///< for the cost delta of a change
};

/// One re-allocation the quota forced.
struct QuotaChange {
  std::string shot_id;
  std::string from_tier;
  std::string to_tier;
  std::string reason;
};

/// The most premium shots `total` shots may have: floor(pct × total / 100).
int64_t premium_allowance(int64_t total_shots, int premium_shot_pct);

/// Downgrades gen_premium shots beyond the quota to gen_mid, lowest priority first. `shots` must be
/// in screen order (scenes in SCENES order, shots in SHOTLIST order): the latest shots are the
/// lowest priority. Exactly the excess is changed; the returned changes are in the order they
/// were made (latest shot first). Nothing changes when the quota holds.
std::vector<QuotaChange> apply_premium_quota(std::vector<ShotAllocation>& shots, int premium_shot_pct);

/// The t3 share of narrative calls.
struct QuotaCheck {
  int64_t used = 0;     ///< t3 calls
  int64_t total = 0;    ///< narrative calls: t1 + t2 + t3 + research (vision and generation excluded)
  int64_t allowed = 0;  ///< floor(pct × total / 100)
  int pct = 0;
  bool within() const { return used * 100 <= static_cast<int64_t>(pct) * total; }
  int64_t excess() const { return within() ? 0 : used - allowed; }
  std::string message() const;  ///< "t3 took 3 of 10 narrative calls (30%), over the quota of 15%"
};

/// Counts `calls_by_tier` (tier -> calls) against the t3 quota. Early in a run the share is
/// noisy (one red-team call of four is 25 %), so this is a check over a whole run's or project's
/// counts, as the tier_quotas gate reads them, not a per-call admission rule.
QuotaCheck check_t3_quota(const std::map<std::string, int64_t>& calls_by_tier, int t3_narrative_pct);

/// t1, t2, t3 and research: the tiers whose calls the t3 quota counts.
bool is_narrative_tier(std::string_view tier);

/// The narrative calls a record holds: distinct `exchange.intent` keys (a call re-sent after a
/// crash counts once) whose tier is narrative, and the t3 ones among them.
struct NarrativeCalls {
  int64_t total = 0;
  int64_t t3 = 0;
};
NarrativeCalls recorded_narrative_calls(const std::vector<ledger::Event>& events);
/// The same folded one event at a time (a reader that keeps it up to date by adding only new
/// events instead of holding them): memory is one key per narrative call. Not thread-safe.
class NarrativeCallTally {
 public:
  /// Reads only the members of `e`'s body that members() names.
  void add(const ledger::Event& e);
  /// The members of an event's body add() reads: a reader may hand it bodies with only these.
  static const std::vector<std::string>& members();
  const NarrativeCalls& calls() const { return m_calls; }
  /// The tally as JSON (a fold checkpoint's), and back; restore() throws nlohmann::json::exception
  /// on what save() did not make.
  nlohmann::json save() const;
  static NarrativeCallTally restore(const nlohmann::json& saved);

 private:
  NarrativeCalls m_calls;
  std::set<std::string> m_seen;  // exchange keys counted
};

/// The admission rule for an escalation to t3 (DESIGN §3: t3 ≤ quotas/t3_narrative_pct of the
/// narrative calls). The quota is a share of the whole project's narrative calls, so its basis is
/// the larger of the calls the plan projects for the project and the calls recorded so far: the
/// recorded count alone would make the first t3 call of a run look like a large share. The
/// escalation is admitted when the t3 calls used plus the calls it may make at t3 (its attempts
/// on the new tier) stay within floor(pct × basis / 100), so a loop admitted to t3 cannot carry
/// the project past the quota with its revisions.
struct T3Admission {
  int64_t used = 0;       ///< t3 calls recorded so far
  int64_t needed = 1;     ///< t3 calls the escalation may make
  int64_t projected = 0;  ///< narrative calls the plan projects for the whole project
  int64_t recorded = 0;   ///< narrative calls recorded so far
  int64_t allowed = 0;    ///< floor(pct × basis() / 100)
  int pct = 0;
  int64_t basis() const { return projected > recorded ? projected : recorded; }
  bool admitted() const { return used + needed <= allowed; }
  /// "t3 quota 15% of 142 narrative calls (projected for the project) allows 21 t3 calls; 20 are
  /// used and the escalation may make 2 more: refused"
  std::string message() const;
};
T3Admission admit_t3_escalation(int64_t t3_used, int64_t needed, int64_t projected_narrative_calls,
                                int64_t recorded_narrative_calls, int t3_narrative_pct);

/// One premium-quota move as the run log records it (event `route.reallocated`).
struct LoggedReallocation {
  std::string shot_id;
  std::string scene_id;
  std::string from_tier;
  std::string to_tier;
  std::string reason;
  int64_t cost_delta_micro_usd = 0;  ///< projected cost after − before (negative: a saving)
};

/// The moves the run log still lacks for an allocation. `moves` are the allocation's premium-quota
/// moves; `planned` holds every planned shot in screen order, `tier` being the tier its hero tier
/// routes to. The log's view of a shot is the `to_tier` of its latest
/// `route.reallocated` event, else its hero tier's. Returned, in this order: each move whose shot
/// the log has on another tier (latest shot first, as `moves` are), then each planned shot the
/// log has moved that the allocation no longer moves (back to its hero tier's tier, screen
/// order, with the opposite of the logged delta). Shots no longer planned are left as logged.
/// Appending the result makes the log agree with the allocation, so calling it again with the
/// same allocation returns nothing: a resumed run does not log a move twice.
std::vector<LoggedReallocation> unlogged_reallocations(const std::vector<LoggedReallocation>& moves,
                                                       const std::vector<ShotAllocation>& planned,
                                                       const std::vector<ledger::Event>& events);

}  // namespace avps::governance
