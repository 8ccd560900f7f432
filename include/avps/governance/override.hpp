#pragma once
// Hard stops and the human decisions that lift them (`avps override`, DESIGN §3 Hard stops).
//
// The engine ends a loop it cannot resolve with a `run.hard_stop` event; people know it as
// "STOP-<seq>". A person lifts it with exactly one decision, recorded as a `stop.override` event
// (docs/formats/ledger.md) with a reason, its cost impact and a RUN_LOG row:
//   raise_cap       (budget stops)        the cap that refused the call gets a new, higher value
//   allow_attempts  (gate, frozen stops)  N more attempts for the stopped loop
//   accept          (gate stops)          an artifact the loop wrote is accepted despite its verdict
//                   (frozen stops)        one of the shot's graded renders ("best": the attempt QC
//                                         ranked highest) counts as its passed render
// The ledger is the only store of decisions: Overrides reads them back, so the engine and
// `avps status` see the same caps, attempts and acceptances.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/config.hpp"
#include "avps/project/project.hpp"

namespace avps::governance {

/// gate, budget, frozen: see below. integrity: files of the project no longer match the ledger
/// (the findings of `avps gate`); no decision lifts it: the next run that finds the files as the
/// ledger vouches for them records `stop.resolved`.
enum class StopKind { gate, budget, frozen, integrity };
std::string_view stop_kind_name(StopKind kind);

/// A `run.hard_stop` event as people and overrides see it. Events written before stops carried
/// kind, loop and scope read as: kind gate, loop = the step (skill[/entity]) of the skill's last
/// attempt before the stop, or the skill's name; scope {}.
struct HardStop {
  int64_t seq = 0;
  std::string skill;
  StopKind kind = StopKind::gate;
  std::string loop;                                 ///< "plausibility-auditor/S03"
  nlohmann::json scope = nlohmann::json::object();  ///< {scene_id?, shot_id?, entity_id?}
  std::string reason;
  std::string graph_step;  ///< the stage graph step it was raised at ("" in records older than the field)
  nlohmann::json findings = nlohmann::json::array();
  std::string cap;                                ///< budget stops: "project", "scene S03", "shot S03_SH02"
  std::optional<int64_t> needed_micro_usd;        ///< budget stops: the refused reservation
  std::optional<int64_t> last_attempt_micro_usd;  ///< actual cost of the loop's last attempt, if logged

  std::string id() const { return "STOP-" + std::to_string(seq); }  ///< "STOP-42"
};

/// The hard stops of a record folded one event at a time, in order: what hard_stops and
/// open_hard_stops return for the events added so far, without holding the events (a reader pages
/// through the ledger and adds each). Memory grows with the loops and stops, not the events.
/// A value; not thread-safe.
class HardStopFold {
 public:
  void add(const ledger::Event& e);
  /// Every hard stop added, oldest first.
  const std::vector<HardStop>& all() const { return m_all; }
  /// The stops still waiting for a person, oldest first (see open_hard_stops).
  std::vector<HardStop> open() const;

  /// The fold's whole state as JSON (kept in a fold checkpoint, docs/formats/checkpoint.md), and a
  /// fold restored from it that goes on as the saved one would. restore() throws
  /// nlohmann::json::exception on what save() did not make.
  nlohmann::json save() const;
  static HardStopFold restore(const nlohmann::json& saved);

 private:
  std::vector<HardStop> m_all;
  std::map<int64_t, size_t> m_by_seq;  // stop seq -> index in m_all
  std::map<std::string, std::string> m_last_loop_of_skill;
  std::map<std::string, int64_t> m_last_cost_of_loop;
  std::map<std::string, size_t> m_open;  // loop -> index in m_all of its latest stop
  std::set<int64_t> m_overridden;        // stop seqs a stop.override names
};

/// Every hard stop of the record, oldest first.
std::vector<HardStop> hard_stops(const std::vector<ledger::Event>& events);
/// The hard stops still waiting for a person: not overridden, not resolved (`stop.resolved`), and
/// not followed by an attempt of the same loop that ended other than FAIL or STOP (the inputs were
/// revised and it passed).
std::vector<HardStop> open_hard_stops(const std::vector<ledger::Event>& events);
/// The caps whose projection a failing budget-gates check found over them, as `avps override
/// --raise-cap` names caps ("project", "scene S03", "shot S03_SH02"), in the order of its reasons.
/// Read from the budget_caps check's FAIL reasons, "<scope>: projected spend ... of the <scene |
/// shot | project> cap ...: simplify before producing" (gates/checks.cpp check_cap): its WARNs
/// and STOPs are not projections over a cap; a reason without a scene or shot id is the project's.
std::vector<std::string> caps_over_projection(const nlohmann::json& gate_reasons);
/// The cap a failing budget-gates check stops on, as `avps override --raise-cap` names caps:
/// "project", "scene S03" or "shot S03_SH02". The scope of the BUDGET_STATUS's first hard_stop
/// enforcement action; else the scene of a gate reason "S03: projected spend ... scene cap ..."
/// (the budget_caps check's FAIL of a scene's projection), or the shot of a reason
/// "S03_SH02: projected spend ... shot cap ..." (a shot's projection), the first such reason;
/// else "project".
std::string budget_stop_cap(const nlohmann::json& budget_status, const nlohmann::json& gate_reasons);

/// 42 from "STOP-42"; invalid_argument for anything else.
[[nodiscard]] Result<int64_t> parse_stop_id(std::string_view id);

/// One recorded `stop.override` decision.
struct OverrideRecord {
  int64_t event_seq = 0;
  int64_t stop_seq = 0;
  std::string skill;
  std::string loop;
  nlohmann::json scope = nlohmann::json::object();
  std::string reason;
  std::string decision;  ///< "raise_cap", "allow_attempts", "accept"
  nlohmann::json value;  ///< new cap (micro-USD), attempts (int), or artifact name
  std::string cap;       ///< raise_cap: the cap raised ("project", "scene S03", "shot S03_SH02")
  int64_t cost_impact_micro_usd = 0;

  std::string stop_id() const { return "STOP-" + std::to_string(stop_seq); }
  /// "raise the project cap to 300.000000 USD", "allow 2 more attempts", "accept PLAUS_S03_v003.md".
  std::string describe() const;
};

/// The decisions in force, read from the ledger. Cheap to build; rebuild it after new events.
class Overrides {
 public:
  static Overrides from_events(const std::vector<ledger::Event>& events);
  /// Takes in one more event in order (a reader folding the ledger page by page); only
  /// stop.override events change anything.
  void add(const ledger::Event& e);
  [[nodiscard]] static Result<Overrides> read(const ledger::Ledger& ledger);

  /// The configured budget with the project cap raised by overrides (the latest raise wins).
  /// scene_cap / shot_cap stay the configured defaults: a raise names one scene or shot, see cap().
  project::Budget effective_budget(const project::Budget& configured) const;
  /// The effective cap named "project", "scene S03" or "shot S03_SH02": the latest raise of that
  /// cap, else the configured one; nullopt when no such cap is configured or raised.
  std::optional<int64_t> cap(const project::Budget& configured, const std::string& label) const;
  /// The caps a reservation for scene/shot ("" for none) must fit under, raises applied.
  ledger::Caps caps_for(const project::Budget& configured, const std::string& scene_id,
                        const std::string& shot_id) const;
  /// Every cap a person raised, by label ("project", "scene S03", "shot S03_SH02") -> latest raise.
  const std::map<std::string, int64_t>& raised_caps() const { return m_raised_caps; }
  /// Attempts added to a loop ("plausibility-auditor/S03") by allow_attempts decisions, summed.
  int extra_attempts(const std::string& loop_key) const;
  /// How many times a person raised a cap to lift a budget stop of a loop ("budget-gates/S01").
  /// Each raise buys the loop one re-check of its unchanged plan under the new cap: the decision
  /// was to pay, not to simplify.
  int cap_raises(const std::string& loop_key) const;
  /// The artifact file name (a render's path for a frozen shot) accepted for a loop, if any (the
  /// latest acceptance).
  std::optional<std::string> accepted(const std::string& loop_key) const;
  bool is_overridden(int64_t stop_seq) const;

  /// The decisions as JSON (a fold checkpoint's), and back; restore() throws
  /// nlohmann::json::exception on what save() did not make.
  nlohmann::json save() const;
  static Overrides restore(const nlohmann::json& saved);

  /// Every decision, oldest first.
  const std::vector<OverrideRecord>& records() const { return m_records; }

 private:
  std::vector<OverrideRecord> m_records;
  std::map<std::string, int64_t> m_raised_caps;  // cap label -> latest raise
};

/// What `avps override` asks for. Numbers are the text as typed, parsed and checked here.
struct OverrideRequest {
  std::string stop;  ///< "STOP-42"
  std::string reason;
  std::optional<std::string> raise_cap_usd;   ///< a decimal USD amount: "300", "312.50"
  std::optional<std::string> allow_attempts;  ///< a whole number 1..1000
  std::optional<std::string> accept;          ///< an artifact file name: "PLAUS_S03_v003.md"; a render or "best"
};

struct OverrideRecorded {
  OverrideRecord record;
  std::string budget_status;  ///< the BUDGET_STATUS version written with a raise_cap, else ""
};

/// Checks `request` against the record and, if it fits, records it: a `stop.override` event with
/// its RUN_LOG row (skill budget-gates for budget stops, else the stop's skill; outcome DONE;
/// notes "override STOP-42: <decision>: <reason>"), and for raise_cap the next BUDGET_STATUS
/// version under the new cap. `project` must be open read-write; the writes go into the current
/// run, or into a run of their own (command "override") when none is begun.
/// Refused with invalid_argument, before anything is written: an unknown or malformed stop id, a
/// stop already overridden, an empty reason, not exactly one decision, a decision that does not fit
/// the stop's kind, a bad number, a cap not above the effective one, an artifact that was not
/// recorded or does not come from the stop's skill and scope.
[[nodiscard]] Result<OverrideRecorded> record_override(project::Project& project,
                                                       const OverrideRequest& request);

/// "300", "0.5", "312.000001" → micro-USD. Refuses signs, exponents, more than 6 decimals, zero,
/// and more than 100,000,000 USD (the configuration's own limit).
[[nodiscard]] Result<int64_t> parse_usd(std::string_view text);

}  // namespace avps::governance
