#pragma once
// `avps replay`: re-executes a recorded run offline and proves it reproduces (DESIGN §1, §4).
//
// For each run of `avps run` replayed, a scratch project is built in a temporary folder: the
// project's inputs as they are now (avps.json, brief, models, skills, policies), the ledger cut
// right before the run began (Ledger::copy_prefix), the artifacts and renders that prefix vouches
// for, and the content-addressed objects. The same engine then runs there with the run's recorded
// options (engine::run_production), through a registry whose every model answers from the record:
// a request is answered by its hash with the response the record holds (re-hashed before use), a
// recorded failure is repeated, and anything else is refused and stops the replay. No backend of
// the models file is opened, so nothing reaches a network and no key is read.
//
// The replay's events are then compared with the recorded run's as multisets (calls in flight
// together finish in any order) of their decisions: every field but the wall-clock ones
// (timestamps, elapsed time, HTTP attempts and latency, the run log's duration_s and budget_pct),
// the wire bodies and the event's own position. The first recorded event the replay did not
// reproduce, in the record's order, is the divergence. It is explained by the replayed event of
// the same kind and identity (the same step and attempt, artifact name, reservation purpose, ...)
// and the first JSON pointer at which the two differ; when two requests differ, the pointer is
// into the requests themselves.
//
// A run that did not finish (killed, or interrupted with Ctrl-C) is verified as far as it went:
// every recorded event must be reproduced; the replay may go further, answered by later runs.
//
// Threading: one call at a time per project; the engine's workers are internal.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"
#include "avps/governance/models.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::replay {

/// Where a replay first differs from its record.
struct Divergence {
  int64_t seq = 0;       ///< the recorded event not reproduced; 0 when the replay did more than the record
  std::string kind;      ///< that event's kind (or the extra replayed event's)
  std::string subject;   ///< what it is about: "plausibility-auditor S03", "attempt 2", an artifact name
  std::string pointer;   ///< the first JSON pointer where record and replay differ ("" when there is no counterpart)
  std::string recorded;  ///< the value there in the record (JSON, shortened)
  std::string replayed;  ///< the value the replay produced there ("(absent)" when it has none)
  std::string message;   ///< one line that says it all

  nlohmann::json to_json() const;
};

/// What the replay of one run found.
struct RunReplay {
  std::string run_id;
  std::string outcome;        ///< the recorded run.finished outcome, or "UNFINISHED"
  int64_t first_seq = 0;      ///< its run.started
  int64_t last_seq = 0;       ///< its last event
  int events = 0;             ///< recorded events reproduced
  int steps = 0;              ///< of which step.finished (every verdict, revision and escalation)
  int calls = 0;              ///< of which exchange.response (answers, tokens and cost)
  int artifacts = 0;          ///< of which artifact.recorded (both hashes)
  int renders = 0;            ///< of which media.recorded
  std::optional<Divergence> divergence;
  /// Why the run was not re-executed, if it was not: it met an integrity stop (files that no
  /// longer matched the ledger), a fact of the folder then, not a decision a replay from the
  /// files the record vouches for could make again.
  std::string not_replayed;
  std::string scratch;        ///< the scratch project, when kept

  nlohmann::json to_json() const;
};

struct Options {
  std::string run;            ///< "RUN_0002" or "2"; "" = every run of `avps run`, oldest first
  bool keep_scratch = false;  ///< leave each scratch project in place (its path is in the report)
};

/// Replays. `note` hears one line as each run starts. Errors: the project cannot be read, no run
/// matches, a scratch project cannot be made. A divergence is not an error: it is in the report.
[[nodiscard]] Result<std::vector<RunReplay>> replay_runs(const std::filesystem::path& project_dir,
                                                         const Options& options,
                                                         const std::function<void(const std::string&)>& note);

/// What the recorded calls cost under two price tables, for one line of a --reprice table.
/// Amounts at a table's prices are exact, in pico-USD (10^-12 USD): tokens × per-Mtok price,
/// seconds × per-second price and images × per-image price need no rounding at that unit, so
/// doubling every price doubles every figure exactly. `charged` is what the record settled (each
/// call rounded up to the micro-dollar, or the provider's own figure).
struct CostLine {
  std::string name;                 ///< "S03", "(project)", "t2", "gpt-5-mini", "total"
  int calls = 0;                    ///< answered calls (a failed call is never charged)
  int64_t charged_micro_usd = 0;
  int64_t current_pico_usd = 0;     ///< at the models file's prices now
  int64_t repriced_pico_usd = 0;    ///< at the given table's prices

  nlohmann::json to_json() const;
};

struct Repricing {
  std::vector<CostLine> by_scene;  ///< in scene order; "(project)" for calls of no one scene
  std::vector<CostLine> by_tier;
  std::vector<CostLine> by_model;
  CostLine total;
  int unanswered = 0;               ///< interrupted calls charged in full with no usage to reprice
  int64_t unanswered_micro_usd = 0;

  nlohmann::json to_json() const;
};

/// Prices every answered call of the record (of one run when `run` names it) from its recorded
/// tokens, seconds and images, under the project's models file and under `price_table` (a models
/// file: the same schema, read with the same rules). Changes nothing. A model the record used that
/// a table does not price is a configuration error naming it.
[[nodiscard]] Result<Repricing> reprice(const std::filesystem::path& project_dir, const std::string& run,
                                        const std::filesystem::path& price_table);

/// ceil(pico / 10^6) as "$1.234567".
std::string format_pico_usd(int64_t pico_usd);

/// One line of the audit trail (`--timeline`): a run-log row of the record, or a call's retries.
struct TimelineEntry {
  int64_t seq = 0;         ///< the event
  std::string run_id;
  std::string timestamp;
  std::string scene_id;    ///< "" for the project-wide steps
  std::string shot_id;     ///< "" for a scene's own steps
  std::string skill;       ///< the row's skill_name ("story-architect", "budget-gates", "model-router", ...)
  std::string model;
  std::string tier;
  std::string cost;        ///< the row's actual cost, else its estimate, in USD ("0.014539"); "" when none
  std::string outcome;     ///< PASS FIX FAIL WARN STOP DONE ERROR, or RETRY
  std::string artifact;
  std::string detail;      ///< the row's notes: the reason of a revision, an escalation, a fallback, an override

  nlohmann::json to_json() const;
};

/// The record's audit trail (of one run when `run` names it), in the record's order: every
/// run-log row (each attempt and its verdict, reservations, revisions, escalations, fallbacks,
/// regen rounds, stops, a person's overrides and imports with their reasons) and every call the
/// retry layer had to repeat (RETRY, with each attempt's status). Sorted by callers as they show it.
[[nodiscard]] Result<std::vector<TimelineEntry>> timeline(const std::filesystem::path& project_dir,
                                                          const std::string& run);

/// The first JSON pointer at which `a` and `b` differ (keys in byte order, arrays by index), or
/// nullopt when they are equal; "" when they differ at the root.
std::optional<std::string> first_difference(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace avps::replay
