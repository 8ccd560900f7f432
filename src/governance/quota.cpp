#include "avps/governance/quota.hpp"

#include <algorithm>

namespace avps::governance {

namespace {

// "30%" or "33.3%": one decimal, trailing ".0" dropped.
std::string percent_text(int64_t part, int64_t whole) {
  if (whole <= 0) {
    return "0%";
  }
  int64_t tenths = (part * 1000 + whole / 2) / whole;
  std::string out = std::to_string(tenths / 10);
  if (tenths % 10 != 0) {
    out += "." + std::to_string(tenths % 10);
  }
  return out + "%";
}

}  // namespace

int64_t premium_allowance(int64_t total_shots, int premium_shot_pct) {
  int pct = std::clamp(premium_shot_pct, 0, 100);
  return total_shots * pct / 100;
}

std::vector<QuotaChange> apply_premium_quota(std::vector<ShotAllocation>& shots, int premium_shot_pct) {
  auto total = static_cast<int64_t>(shots.size());
  int64_t premium = std::count_if(shots.begin(), shots.end(),
                                  [](const ShotAllocation& s) { return s.tier == "gen_premium"; });
  int64_t allowed = premium_allowance(total, premium_shot_pct);
  std::vector<QuotaChange> changes;
  for (auto it = shots.rbegin(); it != shots.rend() && premium > allowed; ++it) {
    if (it->tier != "gen_premium") {
      continue;
    }
    it->tier = "gen_mid";
    --premium;
    changes.push_back({it->shot_id, "gen_premium", "gen_mid",
                       "premium quota " + std::to_string(premium_shot_pct) + "% of " + std::to_string(total) +
                           " shots allows " + std::to_string(allowed) +
                           " premium shots; the latest premium shots in screen order move to gen_mid"});
  }
  return changes;
}

std::string QuotaCheck::message() const {
  return "t3 took " + std::to_string(used) + " of " + std::to_string(total) + " narrative calls (" +
         percent_text(used, total) + "), " + (within() ? "within" : "over") + " the quota of " +
         std::to_string(pct) + "% (quotas/t3_narrative_pct)";
}

QuotaCheck check_t3_quota(const std::map<std::string, int64_t>& calls_by_tier, int t3_narrative_pct) {
  auto count = [&](const char* tier) {
    auto it = calls_by_tier.find(tier);
    return it == calls_by_tier.end() ? int64_t{0} : it->second;
  };
  QuotaCheck check;
  check.pct = std::clamp(t3_narrative_pct, 0, 100);
  check.used = count("t3");
  check.total = count("t1") + count("t2") + count("t3") + count("research");
  check.allowed = check.total * check.pct / 100;
  return check;
}

}  // namespace avps::governance
