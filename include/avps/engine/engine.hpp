#pragma once
// The loop engine (DESIGN §4). It walks the whole stage graph: the project-wide phases once (or
// per entity), validation / continuity / planning scene by scene in story order, then per scene
// the cost loop, proxy waves, the cost loop again and final waves (production.cpp). Every step,
// model or built-in, goes through one loop:
//
//   for each step, for every context it fans out to (calls of a round in flight together):
//     skip it when its latest outputs passed their gate and were made from the current inputs
//     build the request (prompt, input slices, output schema, findings when revising)
//     route (cheapest capable model of the tier) → reserve the worst case (budget governor)
//     record intent (exchange.intent: the request, by its hash) → call the backend, unless the
//       ledger already holds the response to that very request (resume never pays twice)
//     record the response → settle the reservation with the actual cost
//     parse → schema → gate (avps's verdict, from the skill's rules and checks)
//     record every output as the next version, with its inputs, model, cost and verdict
//     FAIL: revise with the findings (a new version), up to the skill's max_revisions; then
//       escalate one tier if its policy allows; then hard stop (exit 3, recorded)
//
// Decisions come only from the ledger and the artifacts, never from process memory: killing the
// process at any point and running again continues where the record says.

#include <string>

#include "avps/backends/backend.hpp"
#include "avps/core/exit_code.hpp"
#include "avps/core/result.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/router.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"

namespace avps::engine {

/// Progress out; the engine never prints (only the cli does).
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void progress(const std::string& line) = 0;
  /// True once the user asked to stop (Ctrl-C): the engine finishes the call in hand, records
  /// it, and returns with ExitCode::interrupted; the next run resumes.
  virtual bool interrupted() const { return false; }
};

struct RunOptions {
  std::string until;  ///< stop after this phase ("" = every phase)
  std::string scene;  ///< produce only this scene (and run the scenes before it that it needs)
  int jobs = 1;       ///< backend calls in flight at once; never changes what is written
};

struct RunOutcome {
  ExitCode exit = ExitCode::ok;
  int calls_made = 0;      ///< backend calls actually sent
  int calls_replayed = 0;  ///< answered from recorded responses
  int steps_skipped = 0;   ///< up to date
  int steps_waiting = 0;   ///< not ready: a required input does not exist yet
  int artifacts_written = 0;
  std::string message;     ///< the hard stop, or why the run stopped
};

struct Impl;

class Engine {
 public:
  Engine(project::Project& project, const skills::Registry& registry, backends::Backend& backend,
         const governance::Router& router, governance::BudgetGovernor& governor, Observer& observer);

  /// Runs the phases (see the header comment for what is built). Errors are failures to run
  /// (I/O, configuration); a gate that keeps failing is a hard stop in the outcome, not an error.
  [[nodiscard]] Result<RunOutcome> run(const RunOptions& options);

 private:
  friend struct Impl;
  project::Project& m_project;
  const skills::Registry& m_registry;
  backends::Backend& m_backend;
  const governance::Router& m_router;
  governance::BudgetGovernor& m_governor;
  Observer& m_observer;
};

}  // namespace avps::engine
