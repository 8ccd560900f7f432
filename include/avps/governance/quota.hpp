#pragma once
// Tier quotas (spec §3, DESIGN §3): premium video ≤ quotas/premium_shot_pct of the shots (default
// 25 %), t3 ≤ quotas/t3_narrative_pct of the narrative calls (default 15 %).
//
// "Within quota" means used × 100 ≤ pct × total, the same comparison the tier_quotas gate check
// makes, so what the router allows the gate passes. Both functions are pure: they change or report,
// and the caller logs what changed.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

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

}  // namespace avps::governance
