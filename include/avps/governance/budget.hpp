#pragma once
// The budget governor (DESIGN §3 Budget, §5 Budget exactness). Money is integer micro-USD.
//
// Before every paid call the engine reserves its worst case here; the reservation and the cap
// check are one ledger transaction, so no number of concurrent calls can together pass a cap.
// After the call the reservation is settled with the actual cost and the rest released; on
// error or cancel it is released; after a crash, an open reservation whose call may have left (its
// intent is recorded) is reconciled conservatively (counted as spent in full), one whose call was
// never sent is released, and either is logged. Every reservation ends exactly
// once — the ledger refuses a second end. A refusal is final: budget_exceeded is never retried
// and never routed to a fallback model; it is a hard stop awaiting `avps override`.

#include <functional>
#include <optional>
#include <string>

#include "avps/core/result.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/config.hpp"

namespace avps::governance {

/// Where spend stands against one cap, for WARN (>= warn_pct) and STOP decisions.
struct CapPosition {
  std::string scope;  ///< "project", "scene S03", "shot S03_SH02"
  int64_t cap_micro_usd = 0;
  ledger::Spend spend;
  int percent() const;  ///< (committed + outstanding) * 100 / cap, rounded down
};

class BudgetGovernor {
 public:
  BudgetGovernor(ledger::Ledger& ledger, const project::Budget& budget);
  /// Caps per reservation: `caps_for(scene, shot)` gives the caps a call for that scene and shot
  /// must fit under (the configured ones with `avps override --raise-cap` decisions applied).
  using CapsFor = std::function<ledger::Caps(const std::string& scene_id, const std::string& shot_id)>;
  BudgetGovernor(ledger::Ledger& ledger, const project::Budget& budget, CapsFor caps_for);

  /// Reserves `amount` for a call. Granted: the reservation is recorded with a RUN_LOG row
  /// (skill "budget-gates", outcome DONE, or WARN when it takes a cap to warn_pct or more).
  /// Refused: budget_exceeded naming the cap, and a STOP row is recorded; nothing is reserved.
  [[nodiscard]] Result<ledger::Reservation> reserve(const ledger::Reservation& reservation);

  /// The end of a reservation that cost `actual` (provider-reported cost kept beside ours; a
  /// difference above 2 % is flagged in the event). For the engine to commit together with the
  /// call's artifact.
  static ledger::ReservationEnd settlement(const ledger::Reservation& reservation, int64_t actual_micro_usd,
                                           std::optional<int64_t> provider_cost_micro_usd);
  /// Settles on its own (when there is no artifact to commit with).
  [[nodiscard]] Result<void> settle(const ledger::Reservation& reservation, int64_t actual_micro_usd,
                                    std::optional<int64_t> provider_cost_micro_usd);
  /// Releases a reservation whose call failed or was cancelled before it cost anything.
  [[nodiscard]] Result<void> release(const ledger::Reservation& reservation, const std::string& why);
  /// After a crash: an open reservation for which `maybe_sent` is true is settled in full
  /// ("reconciled"), the conservative assumption that the provider was paid; the others were
  /// never sent and are released. One for which `keep_open` is true (a provider job whose ticket
  /// is recorded: it is polled and settled when it ends) is left as it is. The engine calls it on
  /// resume before it answers calls from recorded responses.
  struct Reconciled {
    int counted_as_spent = 0;
    int released = 0;
    int64_t spent_micro_usd = 0;
  };
  [[nodiscard]] Result<Reconciled> reconcile_open_reservations(
      const std::function<bool(const ledger::Reservation&)>& maybe_sent,
      const std::function<bool(const ledger::Reservation&)>& keep_open = nullptr);

  /// Positions of the caps in force (caps_for) a call for scene/shot is under (project always).
  [[nodiscard]] Result<std::vector<CapPosition>> positions(const std::string& scene_id, const std::string& shot_id) const;

  const ledger::Caps& caps() const { return m_caps; }
  int warn_pct() const { return m_warn_pct; }

 private:
  ledger::Ledger& m_ledger;
  ledger::Caps m_caps;
  CapsFor m_caps_for;
  int m_warn_pct;
};

/// "0.163359": micro-USD as a plain USD decimal, the RUN_LOG's cost columns.
std::string usd_decimal(int64_t micro_usd);

}  // namespace avps::governance
