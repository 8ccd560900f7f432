#include "avps/governance/budget_status.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string_view>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/governance/models.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/ledger/events.hpp"

namespace avps::governance {
using nlohmann::json;

namespace {

double round2(double x) {
  return std::round(x * 100.0) / 100.0;
}

double percent_of(int64_t amount, int64_t cap) {
  return cap > 0 ? round2(100.0 * static_cast<double>(amount) / static_cast<double>(cap)) : 0.0;
}

std::string percent_text(double pct) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f%%", pct);
  return buffer;
}

// Micro-USD from the run log's six-decimal USD text; 0 when it is not one.
int64_t micro_of(const std::string& text) {
  const std::size_t dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  std::string fraction = dot == std::string::npos ? "" : text.substr(dot + 1);
  auto digits = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || whole.size() > 12 || !digits(whole) || fraction.size() > 6 || !digits(fraction)) {
    return 0;
  }
  fraction.append(6 - fraction.size(), '0');
  return std::stoll(whole) * 1'000'000 + std::stoll(fraction);
}

// "S03" from "scene S03", "S03_SH02" from "shot S03_SH02", "PROJECT" from "project".
std::string scope_id(const std::string& label) {
  const std::size_t space = label.find(' ');
  return space == std::string::npos ? "PROJECT" : label.substr(space + 1);
}

enum class Level { pass, warn, fail };

struct Finding {
  Level level;
  std::string reason;
};

}  // namespace

const std::vector<std::string>& BudgetTally::members() {
  static const std::vector<std::string> k_members{"reservation", "row"};  // reservation_of, Event::row
  return k_members;
}

void BudgetTally::add(const ledger::Event& e) {
  if (std::optional<ledger::Reservation> r = ledger::reservation_of(e)) {
    if (artifacts::is_scene_id(r->scene_id)) {
      scenes.insert(r->scene_id);
    }
    if (artifacts::is_shot_id(r->shot_id)) {
      shots.insert(r->shot_id);
    }
  }
  std::optional<ledger::LogRow> row = e.row();
  if (!row) {
    return;
  }
  if (artifacts::is_shot_id(row->shot_id) && !row->regen_count.empty() && row->regen_count.size() <= 6 &&
      std::all_of(row->regen_count.begin(), row->regen_count.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Only shots regenerated at least once: the map is copied into every BUDGET_STATUS's input,
    // and a shot with none (most of them) is listed nowhere.
    if (const int count = std::stoi(row->regen_count); count > 0) {
      int& regen = regen_by_shot[row->shot_id];
      regen = std::max(regen, count);
    }
  }
  const auto& known = model_tiers();
  if (!row->model_used.empty() && std::find(known.begin(), known.end(), row->tier) != known.end()) {
    TierUsage& usage = tiers[row->tier];
    ++usage.calls;
    usage.spend_micro_usd += micro_of(row->actual_cost);
  }
}

json BudgetTally::save() const {
  json by_tier = json::object();
  for (const auto& [tier, usage] : tiers) {
    by_tier[tier] = {usage.calls, usage.spend_micro_usd};
  }
  return {{"scenes", scenes}, {"shots", shots}, {"regen_by_shot", regen_by_shot}, {"tiers", by_tier}};
}

BudgetTally BudgetTally::restore(const json& saved) {
  BudgetTally tally;
  saved.at("scenes").get_to(tally.scenes);
  saved.at("shots").get_to(tally.shots);
  saved.at("regen_by_shot").get_to(tally.regen_by_shot);
  for (const auto& [tier, usage] : saved.at("tiers").items()) {
    tally.tiers[tier] = TierUsage{usage.at(0).get<int64_t>(), usage.at(1).get<int64_t>()};
  }
  return tally;
}

Result<BudgetStatusInput> budget_status_input(const ledger::Ledger& ledger,
                                              const std::vector<ledger::Event>& events,
                                              const project::Budget& configured, const Overrides& overrides,
                                              std::optional<int64_t> projected_total_micro_usd) {
  BudgetTally tally;
  for (const ledger::Event& e : events) {
    tally.add(e);
  }
  return budget_status_input(ledger, tally, configured, overrides, projected_total_micro_usd);
}

Result<BudgetStatusInput> budget_status_input(const ledger::Ledger& ledger, const BudgetTally& tally,
                                              const project::Budget& configured, const Overrides& overrides,
                                              std::optional<int64_t> projected_total_micro_usd) {
  BudgetStatusInput in;
  in.warn_pct = configured.warn_pct;
  in.projected_total_micro_usd = projected_total_micro_usd;
  AVPS_TRY_ASSIGN(ledger::Spend project_spend, ledger.spend("", ""));
  in.project =
      CapPosition{"project", overrides.effective_budget(configured).project_cap_micro_usd, project_spend};
  in.regen_by_shot = tally.regen_by_shot;
  in.tiers = tally.tiers;
  const std::set<std::string>& scenes = tally.scenes;
  const std::set<std::string>& shots = tally.shots;
  for (const std::string& scene : scenes) {
    if (std::optional<int64_t> cap = overrides.cap(configured, "scene " + scene)) {
      AVPS_TRY_ASSIGN(ledger::Spend spend, ledger.spend(scene, ""));
      in.scopes.push_back(CapPosition{"scene " + scene, *cap, spend});
    }
  }
  // A shot has a cap when one is configured for every shot, or when a person raised its own.
  // Without the first only the raised ones are looked at, in the same order (by shot id): looking
  // up every shot with reservations made each budget step grow with the project.
  if (configured.shot_cap_micro_usd) {
    for (const std::string& shot : shots) {
      if (std::optional<int64_t> cap = overrides.cap(configured, "shot " + shot)) {
        AVPS_TRY_ASSIGN(ledger::Spend spend, ledger.spend("", shot));
        in.scopes.push_back(CapPosition{"shot " + shot, *cap, spend});
      }
    }
  } else {
    const std::string_view prefix = "shot ";
    for (const auto& [label, raised] : overrides.raised_caps()) {
      if (label.rfind(prefix, 0) == 0 && shots.count(label.substr(prefix.size()))) {
        AVPS_TRY_ASSIGN(ledger::Spend spend, ledger.spend("", label.substr(prefix.size())));
        in.scopes.push_back(CapPosition{label, raised, spend});
      }
    }
  }

  // The caps in force that a person raised, each once (the latest raise).
  std::map<std::string, const OverrideRecord*> raises;
  for (const OverrideRecord& r : overrides.records()) {
    if (r.decision == "raise_cap") {
      raises[r.cap] = &r;
    }
  }
  for (const auto& [cap, r] : raises) {
    in.raised_caps.push_back(cap + " cap " + format_usd(r->value.get<int64_t>()) + " (raised from " +
                             format_usd(r->value.get<int64_t>() - r->cost_impact_micro_usd) +
                             " by override " + r->stop_id() + ": " + r->reason + ")");
  }
  return in;
}

json budget_status_json(const BudgetStatusInput& in) {
  const int64_t cap = in.project.cap_micro_usd;
  const int64_t current = in.project.spend.total();
  const int64_t projected = std::max(current, in.projected_total_micro_usd.value_or(current));
  const double used_pct = percent_of(current, cap);
  const double projected_pct = percent_of(projected, cap);

  std::vector<Finding> findings;
  json actions = json::array();
  auto at_or_over_warn = [&](int64_t amount, int64_t limit) {
    return static_cast<double>(amount) * 100.0 >=
           static_cast<double>(in.warn_pct) * static_cast<double>(limit);
  };
  if (projected > cap) {
    std::string reason = (in.projected_total_micro_usd ? "projected spend " : "spend ") +
                         format_usd(projected) + " is " + percent_text(projected_pct) +
                         " of the project cap " + format_usd(cap);
    findings.push_back({Level::fail, reason});
    actions.push_back({{"action", "hard_stop"},
                       {"scope", "PROJECT"},
                       {"reason", reason + ": simplify, or a person raises the cap"}});
  } else if (at_or_over_warn(projected, cap)) {
    std::string reason = (in.projected_total_micro_usd ? "projected spend " : "spend ") +
                         format_usd(projected) + " is " + percent_text(projected_pct) +
                         " of the project cap " + format_usd(cap) + " (warn at " +
                         std::to_string(in.warn_pct) + "%)";
    findings.push_back({Level::warn, reason});
    actions.push_back({{"action", "warn"}, {"scope", "PROJECT"}, {"reason", reason}});
    actions.push_back({{"action", "require_cost_optimizer"},
                       {"scope", "PROJECT"},
                       {"reason", "review the tier allocation before the next batch"}});
  }
  for (const CapPosition& position : in.scopes) {
    const int64_t spent = position.spend.total();
    const std::string reason = position.scope + " spend " + format_usd(spent) + " is " +
                               percent_text(percent_of(spent, position.cap_micro_usd)) + " of its cap " +
                               format_usd(position.cap_micro_usd);
    if (spent > position.cap_micro_usd) {
      findings.push_back({Level::fail, reason});
      actions.push_back({{"action", "hard_stop"}, {"scope", scope_id(position.scope)}, {"reason", reason}});
    } else if (at_or_over_warn(spent, position.cap_micro_usd)) {
      findings.push_back({Level::warn, reason + " (warn at " + std::to_string(in.warn_pct) + "%)"});
      actions.push_back(
          {{"action", "warn"}, {"scope", scope_id(position.scope)}, {"reason", findings.back().reason}});
    }
  }

  Level level = Level::pass;
  json reasons = json::array();
  for (const Finding& f : findings) {
    level = std::max(level, f.level);
    reasons.push_back(f.reason);
  }
  for (const std::string& raised : in.raised_caps) {
    reasons.push_back(raised);
  }
  const char* verdict = level == Level::fail ? "FAIL" : level == Level::warn ? "WARN" : "PASS";

  // Only the shots that were regenerated: a shot not listed has regen_count 0. Listing every shot
  // made each version grow with the project, and a version is written per scene (quadratic: 78 MB
  // of BUDGET_STATUS in a 500-scene production, most of the record's artifact bytes).
  json regen = json::array();
  for (const auto& [shot, count] : in.regen_by_shot) {
    if (count > 0) {
      regen.push_back({{"shot_id", shot}, {"regen_count", count}});
    }
  }
  json tiers = json::array();
  for (const std::string& tier : model_tiers()) {
    if (auto usage = in.tiers.find(tier); usage != in.tiers.end()) {
      tiers.push_back({{"tier", tier},
                       {"calls", usage->second.calls},
                       {"spend_micro_usd", usage->second.spend_micro_usd}});
    }
  }
  return {{"format_version", 1},
          {"kind", "BUDGET_STATUS"},
          {"gate",
           {{"verdict", verdict},
            {"scores",
             {{"project_cap_micro_usd", cap},
              {"used_pct", used_pct},
              {"projected_pct", projected_pct},
              {"warn_pct", in.warn_pct}}},
            {"reasons", reasons}}},
          {"current_spend_micro_usd", current},
          {"projected_spend_micro_usd", projected},
          {"percent_of_budget_used", used_pct},
          {"regen_count_by_shot", regen},
          {"tier_usage_breakdown", tiers},
          {"violations_detected", level == Level::fail ? "YES" : "NO"},
          {"enforcement_actions", actions}};
}

Result<std::optional<int64_t>> latest_projected_total(project::Project& project) {
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> report,
                  project.store().latest("COST_REPORT", "PROJECT"));
  if (!report) {
    return std::optional<int64_t>();
  }
  AVPS_TRY_ASSIGN(json content, project.store().load(*report));
  const json total = content.value("total_projected_cost_micro_usd", json());
  return total.is_number_integer() ? std::optional<int64_t>(total.get<int64_t>()) : std::nullopt;
}

Result<std::string> write_budget_status(project::Project& project, const json& content, std::string producer,
                                        const json& details) {
  AVPS_TRY_ASSIGN(artifacts::FaceCodec codec,
                  artifacts::FaceCodec::load(project::schema_dirs(project.dir()), "BUDGET_STATUS"));
  if (std::vector<core::SchemaIssue> issues = codec.schema().validate(content); !issues.empty()) {
    return make_error(ErrorCode::schema_violation, core::format_schema_issues("BUDGET_STATUS", issues));
  }
  AVPS_TRY_ASSIGN(std::string face, codec.render(content));
  AVPS_TRY_ASSIGN(artifacts::ArtifactName name, project.store().next_name("BUDGET_STATUS", ""));

  const json& gate = content["gate"];
  const json reasons = gate.value("reasons", json::array());
  ledger::LogRow row;
  row.skill_name = "budget-gates";
  row.estimated_cost = usd_decimal(0);
  row.actual_cost = usd_decimal(0);
  row.outcome = gate.value("verdict", "PASS");
  row.regen_count = "0";
  row.artifact_output = name.filename();
  std::string notes = producer == "budget-gates" ? "" : "written after " + producer;
  if (!reasons.empty() && reasons.front().is_string()) {
    notes += (notes.empty() ? "" : ": ") + reasons.front().get<std::string>();
  }
  row.notes = notes;
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.2f", content.value("percent_of_budget_used", 0.0));
  row.budget_pct = pct;

  // Its gate is the budget's arithmetic under the caps in force, not budget-gates' gate: the
  // details say so, for `avps gate`, which recomputes skill gates (docs/formats/ledger.md).
  json recorded_details = details;
  recorded_details["verdict_by"] = "budget_status";
  artifacts::NewArtifact artifact{name, content, face, "avps", std::move(producer), row, recorded_details};
  AVPS_TRY(project.store().write(artifact));
  return name.filename();
}

}  // namespace avps::governance
