#pragma once
// The exchange: one backend call's life, for every backend kind (DESIGN §4). Engine-internal.
//
//   routed ──► replayed                       the record holds the answer to this very request
//     │
//     ├──► refused                            the budget governor said no: final, never retried
//     ▼
//   reserved ──► released (why)               an error before the request left (a full disk), or
//     │                                       the round ended before a worker was free
//     ▼
//   intent (durable: exchange.intent)         recorded only when a worker is free to send it;
//     │                                       the intents of the calls leaving together are
//     ▼                                       made durable by one sync before any leaves
//   submitted ──► answered ──► settled        exchange.response + settlement, one transaction,
//     │    │                                  recorded the moment the answer arrives; durable
//     │    │                                  with the next sync (before anything derived leaves)
//     │    └──► ticketed (durable:            a job backend gave a ticket: exchange.ticket is
//     │         exchange.ticket) ──► polled   recorded before the first poll; polled until it is
//     │         ... ──► answered | failed     answered or fails, past max wait canceled and failed
//     └──► failed ──► released (why)          exchange.failed + release, one transaction; then the
//                                             next model of the same tier (exchange.fallback and
//                                             a model-router RUN_LOG row), routed → reserved → ...
//                                             until the tier has none left: the call's error
//
// What a resumed run relies on: a request's idempotency key is sha256 of its canonical form (the
// model included), so the record answers it without a call; an intent without a response is sent
// again, once, flagged possible_duplicate; a reservation with no intent was never sent (the run
// reconciles it as released); a recorded fallback is followed (the key that failed
// is not tried again), so a run resumed after a fallback asks the model that answered. A ticket
// without a response or failure is polled again under its own open reservation: its job is never
// submitted twice.
//
// Polling (many jobs, few threads): tickets wait in one schedule on the recording thread, each
// with its next poll time (the backend's poll interval plus up to a fifth more, seeded by the key
// and the poll count) and its deadline (max wait from the ticket's recorded submit time). A due
// poll is one short work item for the same `jobs` workers that submit, so any number of jobs in
// flight costs `jobs` worker threads and the calling thread. A job past its deadline is canceled at
// the provider and fails its call (exchange.failed, reservation released).
//
// Interrupts: when the run's interrupt flag is set, send() records no further intent; tickets in
// flight are canceled at the provider and released (InterruptPolicy::cancel) or left open for the
// next run to collect (InterruptPolicy::keep); send() then returns ErrorCode::interrupted.
//
// The retry layer lives in the backends (RetryingBackend): by the time an answer or an error
// reaches the exchange, retries are spent. Budget refusals never reach a backend.
//
// Threading: prepare() and send() are called from the engine's thread. send() runs up to `jobs`
// submits at once on worker threads, which touch only their own Call; every ledger write happens
// on the calling thread, so the ledger sees one writer.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/backends/backend.hpp"
#include "avps/backends/registry.hpp"
#include "avps/engine/engine.hpp"
#include "avps/governance/router.hpp"
#include "avps/ledger/ledger.hpp"
#include "engine_internal.hpp"

namespace avps::engine {

enum class CallKind { model, generation };

/// What an interrupted send() does with the jobs still in flight at their providers.
enum class InterruptPolicy { keep, cancel };

enum class CallState {
  fresh,      ///< built, not routed
  routed,     ///< a model chosen; the key computed
  replayed,   ///< answered from the record (terminal)
  refused,    ///< the budget refused the reservation (terminal: a budget hard stop)
  reserved,   ///< the worst case reserved
  intent,     ///< exchange.intent recorded: the call may now leave
  submitted,  ///< handed to the backend (on a worker thread)
  ticketed,   ///< a job backend gave a ticket (recorded as exchange.ticket once ticket_recorded)
  answered,   ///< the backend answered (not yet recorded)
  settled,    ///< exchange.response recorded, reservation settled (terminal)
  failed,     ///< the backend gave up on this model (not yet recorded)
  released,   ///< reservation released, the failure recorded (terminal unless a fallback follows)
};

/// A file a vision call shows its model (a render), and how it is labelled.
struct Shown {
  std::filesystem::path file;
  std::string label;
};

/// One backend call: routed, reserved, recorded.
struct Call {
  CallKind kind = CallKind::model;
  CallState state = CallState::fresh;
  governance::Task task;
  backends::ModelRequest model_request;
  backends::GenerationRequest generation_request;
  std::string purpose;  ///< "plausibility-auditor S03"
  /// What a vision call shows: sampled into model_request.images when routed to a model that is
  /// not the sim (the sim reads the descriptors in the inputs instead).
  std::vector<Shown> shows;
  std::string scene_id;
  std::string shot_id;
  /// A render that is one attempt of a shot: {shot_id, resolution, attempt, inputs}. When set, a
  /// job that ends without a render (it failed, passed its maximum wait, its output 404'd or is
  /// not a video) fails this attempt, not the run: exchange.failed carries it as `shot_attempt`,
  /// and production's regen policy takes it from there. Empty for every other call.
  nlohmann::json shot_attempt;
  governance::Route route;
  std::string key;  ///< the idempotency key: sha256 of the canonical request
  std::string request_bytes;  ///< the canonical request (stored with the intent)
  int64_t request_size = 0;
  std::optional<std::string> refusal;  ///< the budget governor's refusal
  std::optional<ledger::Reservation> reservation;
  std::set<std::string> failed_models;  ///< models of the tier that failed this call (fallback skips them)
  nlohmann::json response;  ///< the exchange.response body (settled or replayed)

  // In flight (worker thread), consumed when recorded.
  backends::CallTrace trace;
  std::optional<backends::ModelResponse> model_answer;
  std::optional<backends::GenerationResult> generation_answer;
  std::optional<Error> failure;
  int64_t elapsed_ms = 0;  ///< wall time of the last submit, retries included

  // A job's ticket (async_job): handed back by submit, or read from the record on resume.
  enum class Work { submit, poll, cancel };
  Work work = Work::submit;          ///< what the next worker does with the call
  std::string ticket;                ///< the job handle (never a key)
  nlohmann::json submit_details;     ///< what the submit fitted to the provider's limits
  bool ticket_recorded = false;      ///< exchange.ticket is in the ledger
  int64_t submitted_unix_ms = 0;     ///< when the ticket was recorded (wall clock; age and deadline only)
  int polls = 0;                     ///< polls so far in this run
  std::string provider_state;        ///< the last poll's word: "queued", "running", "transient: ..."
  std::string provider_state_recorded;  ///< the last word recorded (exchange.polled) in this run
  std::chrono::steady_clock::time_point next_poll;
  std::chrono::steady_clock::time_point deadline;
  std::optional<Error> cancel_result;  ///< set when a cancel was asked and failed

  bool replayed() const { return state == CallState::replayed; }
  bool answered() const { return state == CallState::replayed || state == CallState::settled; }
  nlohmann::json request_json() const {
    return kind == CallKind::generation ? generation_request.to_json() : model_request.to_json();
  }
};

/// The run log's duration_s of a call's response: its elapsed_ms in seconds ("0.123"), "" when
/// the response predates the field.
std::string duration_s(const nlohmann::json& response);

/// What the exchange needs of a run.
class Exchange {
 public:
  Exchange(project::Project& project, const governance::Router& router, governance::BudgetGovernor& governor,
           const backends::BackendRegistry& backends, Record& record, RunOutcome& outcome)
      : m_project(project), m_router(router), m_governor(governor), m_backends(backends), m_record(record),
        m_outcome(outcome) {}

  /// routed → replayed, or → reserved. false when the budget refused (call.refusal set, state
  /// refused): the caller records the budget hard stop and releases the round's reservations.
  [[nodiscard]] Result<bool> prepare(Call& call);

  /// Sends every prepared call the record could not answer, up to `jobs` in flight, recording each
  /// one's intent as a worker takes it; records each answer the moment it arrives; fails over to the next model of the tier when a model gives
  /// up. Every call ends settled, replayed, or released; the first error (a tier with no model
  /// left, a budget refusal of a fallback, a failed write) is returned after all of them ended.
  [[nodiscard]] Result<void> send(const std::vector<Call*>& calls, int jobs);

  /// How send() learns of an interrupt (Ctrl-C) and what it then does with jobs in flight; the
  /// policy is asked once, when the interrupt is first seen (the CLI may ask a person). Unset:
  /// never interrupted.
  /// The skill the run log names for routing decisions the exchange makes (a fallback): the stage
  /// graph's roles.router.
  void log_routing_as(std::string skill) { m_router_skill = std::move(skill); }
  void on_interrupt(std::function<bool()> interrupted, std::function<InterruptPolicy()> policy) {
    m_interrupted = std::move(interrupted);
    m_interrupt_policy = std::move(policy);
  }

  /// The model's text of a settled or replayed model call.
  [[nodiscard]] Result<std::string> response_text(const Call& call) const;

  /// Stores `bytes` under .avps/objects by their sha256 (write-once) and returns the sha256.
  [[nodiscard]] Result<std::string> store_object(const std::string& bytes) const;

 private:
  /// Routes `call` to `route` and answers it from the record, or reserves its worst case.
  [[nodiscard]] Result<bool> reserve(Call& call, const governance::Route& route);
  /// reserved → intent: the request object and exchange.intent, durable; released on an error.
  [[nodiscard]] Result<void> record_intent(Call& call);
  /// answered → settled: the response, its bodies and the settlement, one transaction.
  [[nodiscard]] Result<void> record_answer(Call& call);
  /// failed → released: the failure and the release, one transaction.
  [[nodiscard]] Result<void> record_failure(Call& call);
  /// ticketed: exchange.ticket, durable before the first poll.
  [[nodiscard]] Result<void> record_ticket(Call& call);
  /// ticketed, still queued or running: exchange.polled when the provider's word changed (the
  /// first poll of each run included), so `avps status` shows it; never read by a decision.
  [[nodiscard]] Result<void> record_job_state(Call& call);
  /// The next poll of a ticketed call: its backend's interval plus seeded jitter.
  void schedule_poll(Call& call) const;
  /// Routes `call` to `route`: its images for that model's backend, then its key.
  [[nodiscard]] Result<void> apply_route(Call& call, const governance::Route& route);
  /// The next model of the call's tier after those that failed it (never a sim model after a
  /// real one), or the router's error.
  [[nodiscard]] Result<governance::Route> next_model(Call& call);
  /// released → routed on the next model of the tier (logged), or the call's error.
  [[nodiscard]] Result<bool> fall_back(Call& call);
  /// The exchange's diagnostic fields of a trace (provider, host, attempts, bodies by sha256).
  [[nodiscard]] Result<nlohmann::json> trace_fields(const backends::CallTrace& trace) const;

  project::Project& m_project;
  const governance::Router& m_router;
  governance::BudgetGovernor& m_governor;
  const backends::BackendRegistry& m_backends;
  Record& m_record;
  std::string m_router_skill;
  RunOutcome& m_outcome;
  std::function<bool()> m_interrupted;
  std::function<InterruptPolicy()> m_interrupt_policy;
};

}  // namespace avps::engine
