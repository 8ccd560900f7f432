#include "avps/governance/quota.hpp"

#include <algorithm>
#include <set>

#include "avps/ledger/events.hpp"

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

bool is_narrative_tier(std::string_view tier) {
  return tier == "t1" || tier == "t2" || tier == "t3" || tier == "research";
}

NarrativeCalls recorded_narrative_calls(const std::vector<ledger::Event>& events) {
  NarrativeCallTally tally;
  for (const ledger::Event& e : events) {
    tally.add(e);
  }
  return tally.calls();
}

const std::vector<std::string>& NarrativeCallTally::members() {
  // What ledger::ExchangeIntent::from_event reads.
  static const std::vector<std::string> k_members{
      "key", "reservation_id", "skill", "model", "tier", "route", "request_sha256", "request_bytes", "possible_duplicate"};
  return k_members;
}

void NarrativeCallTally::add(const ledger::Event& e) {
  std::optional<ledger::ExchangeIntent> intent = ledger::ExchangeIntent::from_event(e);
  if (!intent || !is_narrative_tier(intent->tier) || !m_seen.insert(intent->key).second) {
    return;
  }
  ++m_calls.total;
  m_calls.t3 += intent->tier == "t3" ? 1 : 0;
}

nlohmann::json NarrativeCallTally::save() const {
  return {{"total", m_calls.total}, {"t3", m_calls.t3}, {"seen", m_seen}};
}

NarrativeCallTally NarrativeCallTally::restore(const nlohmann::json& saved) {
  NarrativeCallTally tally;
  tally.m_calls.total = saved.at("total").get<int64_t>();
  tally.m_calls.t3 = saved.at("t3").get<int64_t>();
  saved.at("seen").get_to(tally.m_seen);
  return tally;
}

std::string T3Admission::message() const {
  return "t3 quota " + std::to_string(pct) + "% of " + std::to_string(basis()) + " narrative calls (" +
         (projected >= recorded ? "projected for the project" : "recorded so far") + ") allows " +
         std::to_string(allowed) + " t3 call" + (allowed == 1 ? "" : "s") + "; " + std::to_string(used) +
         (used == 1 ? " is" : " are") + " used and the escalation may make " + std::to_string(needed) +
         " more: " + (admitted() ? "admitted" : "refused");
}

T3Admission admit_t3_escalation(int64_t t3_used, int64_t needed, int64_t projected_narrative_calls,
                                int64_t recorded_narrative_calls, int t3_narrative_pct) {
  T3Admission a;
  a.used = std::max<int64_t>(t3_used, 0);
  a.needed = std::max<int64_t>(needed, 1);
  a.projected = std::max<int64_t>(projected_narrative_calls, 0);
  a.recorded = std::max<int64_t>(recorded_narrative_calls, 0);
  a.pct = std::clamp(t3_narrative_pct, 0, 100);
  a.allowed = a.basis() * a.pct / 100;
  return a;
}

std::vector<LoggedReallocation> unlogged_reallocations(const std::vector<LoggedReallocation>& moves,
                                                       const std::vector<ShotAllocation>& planned,
                                                       const std::vector<ledger::Event>& events) {
  // The log's view: the latest route.reallocated event of each shot.
  std::map<std::string, LoggedReallocation> logged;
  for (const ledger::Event& e : events) {
    if (e.kind != "route.reallocated" || !e.body.is_object()) {
      continue;
    }
    LoggedReallocation r;
    r.shot_id = e.body.value("shot_id", "");
    r.to_tier = e.body.value("to_tier", "");
    const nlohmann::json cost = e.body.value("cost", nlohmann::json::object());
    r.cost_delta_micro_usd = cost.is_object() ? cost.value("delta_micro_usd", int64_t{0}) : 0;
    logged[r.shot_id] = r;
  }
  std::map<std::string, const ShotAllocation*> by_shot;
  for (const ShotAllocation& shot : planned) {
    by_shot[shot.shot_id] = &shot;
  }
  auto logged_tier = [&](const std::string& shot_id, const std::string& default_tier) {
    auto it = logged.find(shot_id);
    return it == logged.end() ? default_tier : it->second.to_tier;
  };

  std::vector<LoggedReallocation> out;
  std::set<std::string> moved;
  for (const LoggedReallocation& move : moves) {
    moved.insert(move.shot_id);
    auto shot = by_shot.find(move.shot_id);
    const std::string default_tier = shot == by_shot.end() ? move.from_tier : shot->second->tier;
    if (logged_tier(move.shot_id, default_tier) != move.to_tier) {
      out.push_back(move);
    }
  }
  for (const ShotAllocation& shot : planned) {
    auto it = logged.find(shot.shot_id);
    if (moved.count(shot.shot_id) || it == logged.end() || it->second.to_tier == shot.tier) {
      continue;
    }
    LoggedReallocation back;
    back.shot_id = shot.shot_id;
    back.scene_id = shot.scene_id;
    back.from_tier = it->second.to_tier;
    back.to_tier = shot.tier;
    back.reason = "the premium quota no longer moves " + shot.shot_id + ": it routes by its hero tier " +
                  shot.hero_tier + " again";
    back.cost_delta_micro_usd = -it->second.cost_delta_micro_usd;
    out.push_back(back);
  }
  return out;
}

}  // namespace avps::governance
