#include "avps/governance/budget.hpp"

#include <cstdlib>

#include "avps/governance/pricing.hpp"

namespace avps::governance {
using nlohmann::json;

namespace {

ledger::LogRow budget_row(const ledger::Reservation& r, const std::string& outcome, const std::string& notes) {
  ledger::LogRow row;
  row.skill_name = "budget-gates";
  row.scene_id = r.scene_id;
  row.shot_id = r.shot_id;
  row.estimated_cost = usd_decimal(r.amount_micro_usd);
  row.outcome = outcome;
  row.notes = notes;
  return row;
}

}  // namespace

std::string usd_decimal(int64_t micro_usd) {
  std::string text = format_usd(micro_usd);
  if (!text.empty() && text.front() == '$') {
    text.erase(0, 1);
  } else if (text.rfind("-$", 0) == 0) {
    text.erase(1, 1);
  }
  return text;
}

int CapPosition::percent() const {
  return cap_micro_usd <= 0 ? 100 : static_cast<int>(spend.total() * 100 / cap_micro_usd);
}

BudgetGovernor::BudgetGovernor(ledger::Ledger& ledger, const project::Budget& budget)
    : m_ledger(ledger),
      m_caps{budget.project_cap_micro_usd, budget.scene_cap_micro_usd, budget.shot_cap_micro_usd},
      m_warn_pct(budget.warn_pct) {
  m_ledger.set_budget_basis(budget.project_cap_micro_usd);  // every money row's budget_pct is of this cap
}

BudgetGovernor::BudgetGovernor(ledger::Ledger& ledger, const project::Budget& budget, CapsFor caps_for)
    : BudgetGovernor(ledger, budget) {
  m_caps_for = std::move(caps_for);
}

Result<std::vector<CapPosition>> BudgetGovernor::positions(const std::string& scene_id,
                                                           const std::string& shot_id) const {
  std::vector<CapPosition> out;
  const ledger::Caps caps = m_caps_for ? m_caps_for(scene_id, shot_id) : m_caps;
  AVPS_TRY_ASSIGN(ledger::Spend project, m_ledger.spend("", ""));
  out.push_back(CapPosition{"project", caps.project_micro_usd, project});
  if (!scene_id.empty() && caps.scene_micro_usd) {
    AVPS_TRY_ASSIGN(ledger::Spend scene, m_ledger.spend(scene_id, ""));
    out.push_back(CapPosition{"scene " + scene_id, *caps.scene_micro_usd, scene});
  }
  if (!shot_id.empty() && caps.shot_micro_usd) {
    AVPS_TRY_ASSIGN(ledger::Spend shot, m_ledger.spend("", shot_id));
    out.push_back(CapPosition{"shot " + shot_id, *caps.shot_micro_usd, shot});
  }
  return out;
}

Result<ledger::Reservation> BudgetGovernor::reserve(const ledger::Reservation& r) {
  ledger::EventDraft granted{.kind = "budget.reserved", .body = json::object()};
  granted.row = budget_row(r, "DONE", "reserved for " + r.purpose);
  const ledger::Caps caps = m_caps_for ? m_caps_for(r.scene_id, r.shot_id) : m_caps;
  Result<ledger::Event> reserved = m_ledger.reserve(r, caps, granted);
  if (!reserved) {
    Error refusal = std::move(reserved).error();
    if (refusal.code == ErrorCode::budget_exceeded) {
      // The refusal is part of the record; it is never retried or rerouted.
      ledger::EventDraft stop{.kind = "budget.refused", .body = {{"refused", r.to_json()}, {"why", refusal.message}}};
      stop.row = budget_row(r, "STOP", refusal.message);
      AVPS_TRY(m_ledger.append(stop));
    }
    return refusal;
  }
  return r;
}

ledger::ReservationEnd BudgetGovernor::settlement(const ledger::Reservation& r, int64_t actual,
                                                  std::optional<int64_t> provider_cost) {
  ledger::ReservationEnd end;
  end.id = r.id;
  end.settled_micro_usd = actual;
  end.released_micro_usd = actual <= r.amount_micro_usd ? r.amount_micro_usd - actual : 0;
  end.provider_cost_micro_usd = provider_cost;
  end.how = "settled";
  return end;
}

Result<void> BudgetGovernor::settle(const ledger::Reservation& r, int64_t actual, std::optional<int64_t> provider_cost) {
  ledger::ReservationEnd end = settlement(r, actual, provider_cost);
  json body = json::object();
  if (provider_cost && std::llabs(*provider_cost - actual) * 100 > 2 * std::max<int64_t>(actual, 1)) {
    body["provider_cost_differs"] = true;  // more than 2 % apart: flagged for audit
  }
  if (actual > r.amount_micro_usd) {
    body["overrun_micro_usd"] = actual - r.amount_micro_usd;
  }
  ledger::EventDraft draft{.kind = "budget.settled", .body = body, .reservation_end = end};
  AVPS_TRY(m_ledger.append(draft));
  return ok();
}

Result<void> BudgetGovernor::release(const ledger::Reservation& r, const std::string& why) {
  ledger::ReservationEnd end{r.id, 0, r.amount_micro_usd, std::nullopt, "released"};
  AVPS_TRY(m_ledger.append(ledger::EventDraft{.kind = "budget.released", .body = {{"why", why}}, .reservation_end = end}));
  return ok();
}

Result<BudgetGovernor::Reconciled> BudgetGovernor::reconcile_open_reservations(
    const std::function<bool(const ledger::Reservation&)>& maybe_sent,
    const std::function<bool(const ledger::Reservation&)>& keep_open) {
  AVPS_TRY_ASSIGN(std::vector<ledger::Reservation> open, m_ledger.open_reservations());
  Reconciled done;
  for (const ledger::Reservation& r : open) {
    if (keep_open && keep_open(r)) {
      continue;
    }
    if (!maybe_sent(r)) {
      AVPS_TRY(release(r, "not sent: the run was interrupted before the call's intent was recorded"));
      ++done.released;
      continue;
    }
    ledger::ReservationEnd end{r.id, r.amount_micro_usd, 0, std::nullopt, "reconciled"};
    ledger::EventDraft draft{.kind = "budget.reconciled",
                             .body = {{"why", "in flight when a run was interrupted: counted as spent in full"}},
                             .reservation_end = end};
    draft.row = budget_row(r, "WARN", "reconciled after an interrupted run: " + r.purpose +
                                          " was in flight, counted as spent in full");
    AVPS_TRY(m_ledger.append(draft));
    ++done.counted_as_spent;
    done.spent_micro_usd += r.amount_micro_usd;
  }
  return done;
}

}  // namespace avps::governance
