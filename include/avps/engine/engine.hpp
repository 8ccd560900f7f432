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
//     FIX: the same through the skill's on_fix branch when it has one; else it proceeds
//
// Decisions come only from the ledger and the artifacts, never from process memory: killing the
// process at any point and running again continues where the record says.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "avps/backends/registry.hpp"
#include "avps/core/exit_code.hpp"
#include "avps/core/result.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/router.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"

namespace avps::engine {

/// One thing a run reports as it goes (docs/formats/run-events.md). `text` is always a complete
/// plain line, as a log shows it; the other members are the same facts as data, for a live status
/// line or a JSON event stream. Members that do not apply stay empty (or 0).
struct Progress {
  enum class Kind {
    phase,     ///< a phase starts (for `scene_id` when it runs scene by scene)
    attempt,   ///< a call is about to be made: `skill` (or "generate"), `attempt`, `tier`
    verdict,   ///< a gate's verdict on an attempt: `skill`, `attempt`, `verdict`
    wave,      ///< a QC wave of a scene was graded: `wave`, `verdict` (the wave's QC_BATCH gate)
    revise,    ///< a FAIL of `skill` (the judge), or a FIX its on_fix acts on, sends its findings for a revision
    escalate,  ///< a loop moves up a tier after failed attempts: `tier` is the new one
    wait,      ///< a step (or a scene's production) waits for an input that does not exist yet
    stop,      ///< a hard stop is recorded (or an open one stands): the run ends with exit 3
    note,      ///< anything else worth a line (reservations reconciled, another pass of the walk)
  };
  Kind kind = Kind::note;
  std::string phase{};  ///< the phase being walked; the engine fills it in
  std::string scene_id{};
  std::string shot_id{};
  std::string skill{};
  std::string tier{};
  std::string verdict{};  ///< PASS, WARN, FIX, FAIL or STOP
  int attempt = 0;  ///< 1 for a first attempt; 0 when it does not apply
  int wave = 0;     ///< production waves of a scene count from 1; 0 when it does not apply
  /// Where spend stands when the event is reported: committed + reserved against the project,
  /// and the project cap in force (configured, or raised by `avps override`). Micro-USD.
  int64_t spent_micro_usd = 0;
  int64_t cap_micro_usd = 0;
  std::string text{};
};

/// The name of a kind as the JSON event stream writes it ("phase", "attempt", ...); frozen.
constexpr const char* progress_kind_name(Progress::Kind kind) {
  switch (kind) {
    case Progress::Kind::phase:
      return "phase";
    case Progress::Kind::attempt:
      return "attempt";
    case Progress::Kind::verdict:
      return "verdict";
    case Progress::Kind::wave:
      return "wave";
    case Progress::Kind::revise:
      return "revise";
    case Progress::Kind::escalate:
      return "escalate";
    case Progress::Kind::wait:
      return "wait";
    case Progress::Kind::stop:
      return "stop";
    case Progress::Kind::note:
      return "note";
  }
  return "note";
}

/// Progress out; the engine never prints (only the cli does). Called from the thread that called
/// Engine::run, never from the threads that send calls.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void progress(const Progress& progress) = 0;
  /// True once the user asked to stop (Ctrl-C): the engine finishes the call in hand, records
  /// it, and returns with ExitCode::interrupted; the next run resumes.
  virtual bool interrupted() const { return false; }
  /// Asked once, after an interrupt, when provider jobs are in flight: true cancels them at their
  /// providers (their reservations are released), false leaves them for the next run to collect.
  /// The CLI answers from --cancel-on-interrupt / --keep-on-interrupt, or asks on a terminal.
  virtual bool cancel_jobs_on_interrupt() { return false; }
};

struct RunOptions {
  std::string until;  ///< stop after this phase ("" = every phase)
  std::string scene;  ///< produce only this scene (and run the scenes before it that it needs)
  int jobs = 1;       ///< backend calls in flight at once; never changes what is written
  /// Every step found up to date by the names of its inputs (step.finished's inputs_by_name) is
  /// gathered whole as well, and a step key that differs is an error: a check for tests
  /// (AVPS_VERIFY_BY_NAME=1 for `avps run`), not for production runs.
  bool verify_by_name = false;
};

struct RunOutcome {
  ExitCode exit = ExitCode::ok;
  int calls_made = 0;      ///< backend calls actually sent
  int calls_replayed = 0;  ///< answered from recorded responses
  int steps_skipped = 0;   ///< up to date
  int steps_known_by_name = 0;  ///< of those, known by the names of their inputs (nothing gathered)
  int steps_waiting = 0;   ///< not ready: a required input does not exist yet
  int artifacts_written = 0;
  std::string message;     ///< the hard stop, or why the run stopped
};

struct Impl;

/// A shot whose passed render was made from other inputs than it has now (an edited lock, a new
/// world state): the next `avps run` renders it again.
struct StaleShot {
  std::string scene_id;
  std::string shot_id;
  std::vector<std::string> resolutions;  ///< "proxy", "final": those with a render from other inputs
  std::vector<std::string> changed;      ///< the inputs whose content differs from that render's ("CHAR_MARA_QUILL_LOCK_v002.txt")
};

/// Whether a step's verdict needs no further attempt, for a summary that does not know its skill:
/// PASS, WARN, FIX, or a person's ACCEPTED. The engine decides with SkillDef::settles, for which a
/// FIX of a skill with loop_policy.on_fix is no pass.
bool passed(const std::string& verdict);

/// Whether stale_shots() reads events of `kind`: every kind but the exchanges and the reservations
/// (what was asked and paid: a run's to replay and resume, no render's identity). A caller that
/// passes its own events may leave out the others.
bool stale_shots_read(std::string_view kind);

/// Every stale shot of the project, scene by scene in story order: what `avps status` shows
/// before a run. Reads only (the project may be open read-only); loads the skills, nothing else.
/// `events`: the ledger's events when the caller has read them already (one snapshot; at least
/// those stale_shots_read), else null;
/// `registry`: the project's skills when the caller has loaded them, else null.
[[nodiscard]] Result<std::vector<StaleShot>> stale_shots(project::Project& project,
                                                         const std::vector<ledger::Event>* events = nullptr,
                                                         const skills::Registry* registry = nullptr);

/// What stale_shots() reads of a record, folded one event at a time in order: a reader that pages
/// through the ledger (one snapshot) adds each event to it instead of keeping the events. It holds
/// what decides whether a shot's renders are up to date (steps, artifacts, renders, stops), not
/// the events. Not thread-safe.
class StaleShotsRecord {
 public:
  StaleShotsRecord();
  ~StaleShotsRecord();
  StaleShotsRecord(StaleShotsRecord&&) noexcept;
  StaleShotsRecord& operator=(StaleShotsRecord&&) noexcept;
  void add(const ledger::Event& e);
  /// The record in a fold checkpoint's flat encoding (its stale-shot record section,
  /// docs/formats/checkpoint.md), and a record restored from those bytes that goes on as the saved
  /// one would; restore_bytes gives nullopt on bytes save_bytes() did not make (cut short, bytes
  /// after them, or a run's whole record).
  std::string save_bytes() const;
  static std::optional<StaleShotsRecord> restore_bytes(std::string_view bytes);

 private:
  friend class Engine;
  struct Fold;
  std::unique_ptr<Fold> m_fold;
};

/// The same from a record folded by the caller (`record`: every event of one snapshot added).
[[nodiscard]] Result<std::vector<StaleShot>> stale_shots(project::Project& project, StaleShotsRecord record,
                                                         const skills::Registry* registry = nullptr);

/// What the backend registry needs of each model of the models file; `project_dir` is what paths
/// in a model's options are relative to.
std::vector<backends::BackendSpec> backend_specs(const governance::ModelsFile& models,
                                                 const std::filesystem::path& project_dir = {});

/// Makes the backends of a run from the project's models file and configuration.
using BackendsFactory = std::function<Result<std::unique_ptr<backends::BackendRegistry>>(
    const governance::ModelsFile& models, const project::Config& config)>;

/// `avps run` around the engine, on a project open read-write: loads the skills (shipped and the
/// project's) and the models file, makes the backends, raises the caps where a person recorded
/// `avps override --raise-cap`, then records run.started (command "run", the options) and, after
/// Engine::run, run.finished with its outcome (DONE, STOP, INTERRUPTED or ERROR). An error before
/// run.started leaves the record untouched. `avps replay` runs a recorded run through this same
/// function, with recorded answers for backends.
[[nodiscard]] Result<RunOutcome> run_production(project::Project& project, const RunOptions& options,
                                                const BackendsFactory& make_backends, Observer& observer);

class Engine {
 public:
  /// `backends` answers every model the router may choose (BackendRegistry::open checked them).
  Engine(project::Project& project, const skills::Registry& registry, const backends::BackendRegistry& backends,
         const governance::Router& router, governance::BudgetGovernor& governor, Observer& observer);

  /// Runs the phases (see the header comment for what is built). Errors are failures to run
  /// (I/O, configuration); a gate that keeps failing is a hard stop in the outcome, not an error.
  [[nodiscard]] Result<RunOutcome> run(const RunOptions& options);
  /// stale_shots() of the project, from this engine's view of the record (`events` as above).
  [[nodiscard]] Result<std::vector<StaleShot>> stale_shots(const std::vector<ledger::Event>* events = nullptr);
  /// The same from a record the caller folded.
  [[nodiscard]] Result<std::vector<StaleShot>> stale_shots(StaleShotsRecord record);

 private:
  friend struct Impl;

  project::Project& m_project;
  const skills::Registry& m_registry;
  const backends::BackendRegistry& m_backends;
  const governance::Router& m_router;
  governance::BudgetGovernor& m_governor;
  Observer& m_observer;
};

}  // namespace avps::engine
