// The exchange (exchange.hpp): one call's life from routing to settlement or release.

#include "exchange.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include "avps/artifacts/store.hpp"
#include "avps/backends/frames.hpp"
#include "avps/backends/retry.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/ledger/events.hpp"

namespace avps::engine {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// On a worker thread: the call's submit, into the call's own members.
void submit(Call& call, backends::Backend* backend) {
  const auto started = std::chrono::steady_clock::now();
  call.trace = backends::CallTrace{};
  call.model_answer.reset();
  call.generation_answer.reset();
  call.failure.reset();
  call.state = CallState::submitted;
  if (backend == nullptr) {
    call.failure = make_error(ErrorCode::configuration, "model \"" + call.route.model + "\" has no backend");
  } else if (call.kind == CallKind::model) {
    Result<backends::Submitted<backends::ModelResponse>> r = backend->submit_model(call.model_request, call.trace);
    if (!r) {
      call.failure = std::move(r).error();
    } else if (r->answer) {
      call.model_answer = std::move(r->answer);
    } else {
      call.failure = make_error(ErrorCode::unsupported,
                                "model \"" + call.route.model + "\" answered a chat call with a job ticket");
    }
  } else {
    Result<backends::Submitted<backends::GenerationResult>> r =
        backend->submit_generation(call.generation_request, call.trace);
    if (!r) {
      call.failure = std::move(r).error();
    } else if (r->answer) {
      call.generation_answer = std::move(r->answer);
    } else {
      // A job: the recording thread records the ticket before anything polls it.
      call.ticket = std::move(r->ticket);
      call.submit_details = std::move(r->details);
    }
  }
  call.elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  call.state = call.failure ? CallState::failed : !call.ticket.empty() ? CallState::ticketed : CallState::answered;
}

// On a worker thread: one poll of a ticketed call. Still running, or a transient fault the retry
// layer could not get past, leaves it ticketed (polled again until its deadline).
void poll(Call& call, backends::Backend* backend) {
  call.trace = backends::CallTrace{};
  ++call.polls;
  Result<std::optional<backends::GenerationResult>> r = backend->poll_generation(call.ticket, call.trace);
  if (!r) {
    if (backends::retryable(r.error()) && !backend->poll_errors_end_jobs()) {
      call.provider_state = "transient: " + r.error().message;
      call.state = CallState::ticketed;
    } else {
      call.failure = std::move(r).error();
      call.state = CallState::failed;
    }
  } else if (*r) {
    call.generation_answer = std::move(**r);
    call.state = CallState::answered;
  } else {
    call.provider_state = call.trace.job_state.empty() ? "running" : call.trace.job_state;
    call.state = CallState::ticketed;
  }
  core::crash_point("engine.after_poll");
}

// On a worker thread: asks the provider to cancel a ticketed call's job; the call has failed
// already (call.failure says why), the cancel's own trouble is kept beside it.
void cancel(Call& call, backends::Backend* backend) {
  backends::CallTrace trace;
  if (Result<void> canceled = backend->cancel_generation(call.ticket, trace); !canceled) {
    call.cancel_result = canceled.error();
  }
  call.state = CallState::failed;
}

void work_on(Call& call, backends::Backend* backend) {
  if (backend == nullptr || call.work == Call::Work::submit) {
    submit(call, backend);
  } else if (call.work == Call::Work::poll) {
    poll(call, backend);
  } else {
    cancel(call, backend);
  }
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// Points the request at `route`'s model, with the images that model's backend needs, and computes
// its key: the request's canonical form hashed (the model, the clamped output tokens and the
// images' digests are part of it).
Result<void> Exchange::apply_route(Call& call, const governance::Route& route) {
  call.route = route;
  if (call.kind == CallKind::generation) {
    call.generation_request.model = route.model;
    call.generation_request.tier = route.tier;
  } else {
    call.model_request.model = route.model;
    call.model_request.tier = route.tier;
    call.model_request.max_output_tokens = static_cast<int>(route.output_tokens);
    call.model_request.images.clear();
    if (!call.shows.empty() && m_backends.kind_of(route.model) != "sim") {
      const int frames = static_cast<int>(m_project.config().document.value(
          json::json_pointer("/vision/frames_per_clip"), backends::k_default_frames_per_clip));
      for (const Shown& shown : call.shows) {
        AVPS_TRY_ASSIGN(std::vector<backends::Image> images, backends::frames_of(shown.file, shown.label, frames));
        for (backends::Image& image : images) {
          call.model_request.images.push_back(std::move(image));
        }
      }
    }
  }
  AVPS_TRY_ASSIGN(call.request_bytes, core::canonical_json(call.request_json()));
  call.key = core::sha256_hex(call.request_bytes);
  call.request_size = static_cast<int64_t>(call.request_bytes.size());
  call.state = CallState::routed;
  return ok();
}

std::string duration_s(const json& response) {
  if (!response.contains("elapsed_ms")) {
    return "";
  }
  const int64_t ms = response.value("elapsed_ms", int64_t{0});
  char text[32];
  std::snprintf(text, sizeof text, "%lld.%03lld", static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000));
  return text;
}

Result<std::string> Exchange::store_object(const std::string& bytes) const {
  // In the ledger (a large render: a durable file), durable no later than the event naming it.
  return artifacts::store_object(m_project.ledger(), bytes);
}

Result<bool> Exchange::prepare(Call& call) {
  AVPS_TRY_ASSIGN(std::string first_bytes, core::canonical_json(call.request_json()));
  if (call.kind == CallKind::model) {
    call.task.input_tokens = static_cast<int64_t>(first_bytes.size() / 4 + 1);
  }
  AVPS_TRY_ASSIGN(governance::Route route, m_router.route(call.task));
  AVPS_TRY(apply_route(call, route));
  // A fallback recorded by an earlier run is followed: the model that failed is not asked again.
  while (m_record.response(call.key) == nullptr) {
    auto fallback = m_record.fallbacks.find(call.key);
    if (fallback == m_record.fallbacks.end()) {
      break;
    }
    Result<governance::Route> next = next_model(call);
    if (!next) {
      break;  // the models file changed since: ask the routed model again
    }
    AVPS_TRY(apply_route(call, *next));
  }
  return reserve(call, call.route);
}

Result<bool> Exchange::reserve(Call& call, const governance::Route& route) {
  if (call.key.empty() || call.route.model != route.model) {
    AVPS_TRY(apply_route(call, route));  // (prepare has routed it here already)
  }
  if (const RecordedResponse* recorded = m_record.response(call.key)) {
    AVPS_TRY_ASSIGN(call.response, response_body(m_project.ledger(), *recorded));
    ++m_outcome.calls_replayed;
    call.state = CallState::replayed;
    return true;
  }
  // A job an earlier run submitted and recorded: polled under its own open reservation, never
  // submitted again.
  if (auto ticketed = m_record.tickets.find(call.key); ticketed != m_record.tickets.end()) {
    const json& t = ticketed->second;
    ledger::Reservation adopted{t.value("reservation_id", ""), t.value("scene_id", ""), t.value("shot_id", ""),
                                t.value("amount_micro_usd", int64_t{0}), t.value("purpose", "")};
    call.reservation = adopted;
    call.ticket = t.value("ticket", "");
    call.ticket_recorded = true;
    call.submitted_unix_ms = t.value("submitted_unix_ms", int64_t{0});
    call.work = Call::Work::poll;
    call.state = CallState::ticketed;
    return true;
  }
  ledger::Reservation reservation{call.key + "#" + std::to_string(++m_record.exchanges[call.key].reservations), call.scene_id,
                                  call.shot_id, route.worst_case_micro_usd, call.purpose};
  Result<ledger::Reservation> reserved = m_governor.reserve(reservation);
  if (!reserved) {
    if (reserved.error().code == ErrorCode::budget_exceeded) {
      call.refusal = reserved.error().message;
      call.state = CallState::refused;
      return false;
    }
    return std::move(reserved).error();
  }
  call.reservation = reservation;
  call.state = CallState::reserved;
  return true;
}

Result<void> Exchange::record_intent(Call& call) {
  // Until the intent is durable the call cannot leave: an error releases the reservation with its
  // reason, so the next run does not count it as spent.
  auto release_unsent = [&](const Error& error) -> Error {
    std::ignore = m_governor.release(*call.reservation, "not sent: " + error.message);
    call.state = CallState::released;
    return error;
  };
  Result<std::string> request_sha = store_object(call.request_bytes);
  if (!request_sha) {
    return release_unsent(request_sha.error());
  }
  ledger::ExchangeIntent intent{.key = call.key,
                                .reservation_id = call.reservation->id,
                                .skill = call.purpose,
                                .model = call.route.model,
                                .tier = call.route.tier,
                                .route = call.route.reason,
                                .request_sha256 = *request_sha,
                                .request_bytes = static_cast<int64_t>(call.request_size),
                                // An intent without a response is a call an interrupted run may or
                                // may not have sent: it is sent again (the only way to get its
                                // answer) and flagged.
                                .possible_duplicate = m_record.exchanges[call.key].intents++ > 0};
  // Deferred: send() makes the intents of the calls that leave together durable in one sync
  // before any of them is handed to a worker.
  if (auto appended = m_project.ledger().append(intent.to_draft(), ledger::Sync::deferred); !appended) {
    return release_unsent(appended.error());
  }
  core::crash_point("engine.after_intent");
  call.state = CallState::intent;
  return ok();
}

Result<json> Exchange::trace_fields(const backends::CallTrace& trace) const {
  json fields = json::object();
  if (!trace.provider.empty()) {
    fields["provider"] = trace.provider;
  }
  if (trace.attempts.empty()) {
    return fields;
  }
  fields["endpoint_host"] = trace.endpoint_host;
  json attempts = json::array();
  int64_t latency = 0;
  for (const backends::HttpAttempt& a : trace.attempts) {
    json one = {{"status", a.status}, {"latency_ms", a.latency_ms}};
    if (!a.error.empty()) {
      one["error"] = a.error;
    }
    if (a.wait_ms > 0) {
      one["wait_ms"] = a.wait_ms;
    }
    if (!a.request_id.empty()) {
      one["request_id"] = a.request_id;
    }
    latency += a.latency_ms;
    attempts.push_back(std::move(one));
  }
  fields["attempts"] = std::move(attempts);
  fields["retries"] = static_cast<int64_t>(trace.attempts.size()) - 1;
  fields["status"] = trace.attempts.back().status;
  fields["latency_ms"] = latency;
  // The wire bodies, content-addressed: adapters put keys only in headers, which are not kept.
  if (!trace.request_body.empty()) {
    AVPS_TRY_ASSIGN(std::string sha, store_object(trace.request_body));
    fields["wire_request_sha256"] = sha;
  }
  if (!trace.response_body.empty()) {
    AVPS_TRY_ASSIGN(std::string sha, store_object(trace.response_body));
    fields["wire_response_sha256"] = sha;
  }
  return fields;
}

Result<void> Exchange::record_answer(Call& c) {
  const governance::Model* model = m_router.models().find(c.route.model);
  // elapsed_ms: the call's wall time in this run, retries and their waits included (the run log's
  // duration_s); a diagnostic, never an input to a decision.
  json response = {
      {"key", c.key}, {"model", c.route.model}, {"request_bytes", c.request_size}, {"elapsed_ms", c.elapsed_ms}};
  if (!c.scene_id.empty()) {
    response["scene_id"] = c.scene_id;  // whose COST_REPORT counts its caching
  }
  governance::ActualCost actual;
  if (c.kind == CallKind::generation) {
    const backends::GenerationResult& r = *c.generation_answer;
    if (c.task.output == governance::Output::image) {
      AVPS_TRY_ASSIGN(actual, governance::actual_image_cost(*model, 1, r.provider_cost_micro_usd));
    } else {
      AVPS_TRY_ASSIGN(actual, governance::actual_video_cost(
                                  governance::VideoPrice{c.route.resolution, c.route.per_second_micro_usd},
                                  r.seconds_billed, r.provider_cost_micro_usd));
    }
    AVPS_TRY_ASSIGN(std::string media_sha, store_object(r.media_bytes));
    response["media_sha256"] = media_sha;
    response["extension"] = r.extension;
    response["seconds_billed"] = r.seconds_billed;
    if (!r.details.empty()) {
      response["job"] = r.details;  // job id, provider status, ffprobe's probe, the raw provider cost
    }
    if (!c.ticket.empty()) {
      response["ticket"] = c.ticket;
      response["polls"] = c.polls;
      // From the ticket's recording to the answer, across runs: what the job took.
      response["elapsed_ms"] = std::max<int64_t>(0, unix_ms_now() - c.submitted_unix_ms);
    }
  } else {
    const backends::ModelResponse& r = *c.model_answer;
    const int64_t cached_tokens = std::clamp<int64_t>(r.usage.cached_input_tokens, 0, r.usage.input_tokens);
    AVPS_TRY_ASSIGN(actual, governance::actual_call_cost(*model, r.usage.input_tokens, r.usage.output_tokens,
                                                        r.usage.provider_cost_micro_usd, cached_tokens));
    AVPS_TRY_ASSIGN(std::string response_sha, store_object(r.text));
    response["response_sha256"] = response_sha;
    response["input_tokens"] = r.usage.input_tokens;
    response["output_tokens"] = r.usage.output_tokens;
    if (cached_tokens > 0) {
      response["cached_input_tokens"] = cached_tokens;
      AVPS_TRY_ASSIGN(int64_t saved, governance::caching_saving(*model, cached_tokens));
      response["caching_saved_micro_usd"] = saved;
    }
    if (!r.stop_reason.empty()) {
      response["stop_reason"] = r.stop_reason;
    }
  }
  response["cost_micro_usd"] = actual.micro_usd;
  if (actual.provider_micro_usd) {
    // The provider's bill is what is charged; avps's price stays beside it for the audit.
    response["provider_cost_micro_usd"] = *actual.provider_micro_usd;
    response["local_cost_micro_usd"] = actual.local_micro_usd;
    if (actual.diverges) {
      response["provider_cost_differs"] = true;
    }
  }
  AVPS_TRY_ASSIGN(json fields, trace_fields(c.trace));
  response.update(fields);
  // The response and the settlement of its reservation are one transaction; deferred: durable
  // with the next sync, which comes before anything derived from the answer leaves the ledger
  // (the next call, an artifact's face, a render file).
  AVPS_TRY_ASSIGN(
      ledger::Event recorded,
      m_project.ledger().append(ledger::ExchangeResponse::to_draft(
                                    response, governance::BudgetGovernor::settlement(*c.reservation, actual.micro_usd,
                                                                                     actual.provider_micro_usd)),
                                ledger::Sync::deferred));
  core::crash_point("engine.after_response");
  note_response(m_record, c.key, recorded.seq, response);
  m_record.tickets.erase(c.key);
  c.response = std::move(response);
  c.model_answer.reset();
  c.generation_answer.reset();
  c.state = CallState::settled;
  return ok();
}

Result<void> Exchange::record_failure(Call& c) {
  const Error& failure = *c.failure;
  json body = {{"key", c.key},
               {"model", c.route.model},
               {"error", std::string(error_code_name(failure.code))},
               {"message", failure.message}};
  AVPS_TRY_ASSIGN(json fields, trace_fields(c.trace));
  body.update(fields);
  ledger::ReservationEnd end{c.reservation->id, 0, c.reservation->amount_micro_usd, std::nullopt, "released"};
  ledger::EventDraft draft{.kind = "exchange.failed", .body = body, .reservation_end = end};
  if (!c.ticket.empty()) {
    // A job that ended without a render: its ticket is closed, and the run log says why.
    draft.body["ticket"] = c.ticket;
    draft.body["polls"] = c.polls;
    if (c.cancel_result) {
      draft.body["cancel_error"] = c.cancel_result->message;
    }
    ledger::LogRow row;
    row.skill_name = "generate";
    row.scene_id = c.scene_id;
    row.shot_id = c.shot_id;
    row.model_used = c.route.model;
    row.tier = c.route.tier;
    row.estimated_cost = governance::usd_decimal(c.reservation->amount_micro_usd);
    row.actual_cost = governance::usd_decimal(0);
    row.outcome = "ERROR";
    row.notes = c.purpose + ": job failed, reservation released: " + failure.message +
                (c.cancel_result ? " (cancel: " + c.cancel_result->message + ")" : "");
    if (!c.shot_attempt.empty() && failure.code != ErrorCode::interrupted) {
      // The attempt failed with its job, in the same transaction: a resumed run counts it.
      draft.body["shot_attempt"] = c.shot_attempt;
      row.regen_count = std::to_string(c.shot_attempt.value("attempt", 1) - 1);
      row.notes += "; attempt " + std::to_string(c.shot_attempt.value("attempt", 1)) + " failed";
    }
    draft.row = row;
  }
  AVPS_TRY(m_project.ledger().append(draft, ledger::Sync::deferred));  // durable with the next sync, as an answer
  m_record.tickets.erase(c.key);
  c.state = CallState::released;
  return ok();
}

Result<void> Exchange::record_ticket(Call& c) {
  c.submitted_unix_ms = unix_ms_now();
  json body = {{"key", c.key},
               {"reservation_id", c.reservation->id},
               {"amount_micro_usd", c.reservation->amount_micro_usd},
               {"purpose", c.purpose},
               {"model", c.route.model},
               {"ticket", c.ticket},
               {"submitted_unix_ms", c.submitted_unix_ms}};
  if (!c.scene_id.empty()) {
    body["scene_id"] = c.scene_id;
  }
  if (!c.shot_id.empty()) {
    body["shot_id"] = c.shot_id;
  }
  if (!c.submit_details.empty()) {
    body["submit"] = c.submit_details;
  }
  AVPS_TRY_ASSIGN(json fields, trace_fields(c.trace));
  body.update(fields);
  AVPS_TRY(m_project.ledger().append(ledger::EventDraft{.kind = "exchange.ticket", .body = body}));
  core::crash_point("engine.after_ticket");
  m_record.tickets[c.key] = body;
  c.ticket_recorded = true;
  return ok();
}

Result<void> Exchange::record_job_state(Call& c) {
  const json body = {{"key", c.key}, {"provider_state", c.provider_state}, {"polls", c.polls}};
  AVPS_TRY(m_project.ledger().append(ledger::EventDraft{.kind = "exchange.polled", .body = body},
                                     ledger::Sync::deferred));  // for `avps status` only
  c.provider_state_recorded = c.provider_state;
  return ok();
}

void Exchange::schedule_poll(Call& c) const {
  backends::Backend* backend = m_backends.for_model(c.route.model);
  const backends::JobTiming timing = backend ? backend->job_timing() : backends::JobTiming{};
  // Jitter (0 to 20 % on top of the provider's interval, never below it) spreads many jobs'
  // polls apart; seeded by the key and the poll count, so it is no source of nondeterminism.
  uint64_t h = 1469598103934665603ULL;
  for (char ch : c.key + "#" + std::to_string(c.polls)) {
    h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ULL;
  }
  const int64_t jitter = timing.poll_interval_ms / 5 == 0
                             ? 0
                             : static_cast<int64_t>(h % static_cast<uint64_t>(timing.poll_interval_ms / 5 + 1));
  const auto now = std::chrono::steady_clock::now();
  c.next_poll = now + std::chrono::milliseconds(timing.poll_interval_ms + jitter);
  const int64_t waited_ms = std::max<int64_t>(0, unix_ms_now() - c.submitted_unix_ms);
  c.deadline = now + std::chrono::milliseconds(std::max<int64_t>(0, timing.max_wait_ms - waited_ms));
  c.work = Call::Work::poll;
}

Result<governance::Route> Exchange::next_model(Call& c) {
  c.failed_models.insert(c.route.model);
  Result<governance::Route> next = m_router.fallback(c.task, c.failed_models);
  // A real model's call never falls back to the sim: its made-up answer would pass for the
  // provider's. Sim models of the tier are skipped, and the error says so when none is left.
  const bool real = m_backends.kind_of(c.route.model) != "sim";
  while (next && real && m_backends.kind_of(next->model) == "sim") {
    c.failed_models.insert(next->model);
    next = m_router.fallback(c.task, c.failed_models);
  }
  return next;
}

Result<bool> Exchange::fall_back(Call& c) {
  const Error failure = *c.failure;
  const bool real = m_backends.kind_of(c.route.model) != "sim";
  Result<governance::Route> next = next_model(c);
  if (!next) {
    std::string tried;
    bool skipped_sim = false;
    for (const std::string& m : c.failed_models) {
      if (real && m_backends.kind_of(m) == "sim") {
        skipped_sim = true;
        continue;
      }
      tried += (tried.empty() ? "" : ", ") + m;
    }
    backends::log_fallback(c.purpose, c.route.model, "", failure);
    return Error{failure.code, c.purpose + ": every model of tier " + c.route.tier + " failed (" + tried + ")" +
                                   (skipped_sim ? "; its sim models are never a fallback for a provider's" : "") +
                                   "; the last: " + failure.message};
  }
  ledger::LogRow row;
  row.skill_name = m_router_skill;
  row.scene_id = c.scene_id;
  row.shot_id = c.shot_id;
  row.model_used = next->model;
  row.tier = next->tier;
  row.outcome = "DONE";
  row.notes = "fallback for " + c.purpose + ": " + c.route.model + " -> " + next->model + " (same tier) because " +
              failure.message;
  AVPS_TRY(m_project.ledger().append(
      ledger::EventDraft{.kind = "exchange.fallback",
                         .body = {{"key", c.key},
                                  {"from_model", c.route.model},
                                  {"to_model", next->model},
                                  {"reason", failure.message}},
                         .row = row},
      ledger::Sync::deferred));  // durable with the next intent's sync, before the call leaves again
  backends::log_fallback(c.purpose, c.route.model, next->model, failure);
  m_record.fallbacks[c.key] = next->model;
  c.failure.reset();
  AVPS_TRY_ASSIGN(bool granted, reserve(c, *next));
  if (!granted) {
    return make_error(ErrorCode::budget_exceeded, c.purpose + ": the fallback to " + next->model +
                                                      " was refused by the budget: " + c.refusal.value_or(""));
  }
  return c.state == CallState::reserved;  // true: to be sent; false: answered from the record
}

// The loop of send(), structured like this: this thread records a call's intent when a worker
// is free to take it (so an interrupted run leaves at most `jobs` intents without a response or a
// ticket, each of a call that may have left); workers submit, poll or cancel and put the call on
// `done`; this thread records each one as it comes back: an answer, a failure (a call that fell
// back to another model goes in line again), or a fresh ticket (recorded, then scheduled). Tickets
// wait in `polling`; a due one is handed to a free worker as a poll; one past its deadline as a
// cancel. The loop ends when nothing is pending, in work, in flight or polling.
Result<void> Exchange::send(const std::vector<Call*>& calls, int jobs) {
  std::deque<Call*> pending;   // reserved, no intent yet: not sent
  std::vector<Call*> polling;  // ticketed, recorded: waiting for their next poll
  for (Call* c : calls) {
    if (c->state == CallState::reserved) {
      pending.push_back(c);
    } else if (c->state == CallState::ticketed) {
      schedule_poll(*c);
      c->next_poll = std::chrono::steady_clock::now();  // resumed: ask at once
      polling.push_back(c);
    }
  }
  if (pending.empty() && polling.empty()) {
    return ok();
  }
  std::mutex mutex;
  std::condition_variable wake_worker;
  std::condition_variable wake_recorder;
  std::deque<Call*> work;  // intent recorded (or a poll or cancel due), waiting for a worker
  std::deque<Call*> done;
  size_t in_flight = 0;
  bool closing = false;
  auto worker = [&] {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      wake_worker.wait(lock, [&] { return closing || !work.empty(); });
      if (work.empty()) {
        return;
      }
      Call* c = work.front();
      work.pop_front();
      ++in_flight;
      lock.unlock();
      work_on(*c, m_backends.for_model(c->route.model));
      lock.lock();
      --in_flight;
      done.push_back(c);
      wake_recorder.notify_one();
    }
  };
  const size_t threads = std::clamp<size_t>(static_cast<size_t>(std::max(1, jobs)), 1,
                                            std::max<size_t>(1, pending.size() + polling.size()));
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back(worker);
  }
  std::optional<Error> first_error;
  bool interrupted = false;
  std::optional<InterruptPolicy> policy;
  std::unique_lock<std::mutex> lock(mutex);
  auto release_pending = [&](const std::string& why) {
    while (!pending.empty()) {
      Call* unsent = pending.front();
      pending.pop_front();
      lock.unlock();
      std::ignore = m_governor.release(*unsent->reservation, "not sent: " + why);
      unsent->state = CallState::released;
      lock.lock();
    }
  };
  for (;;) {
    if (!interrupted && m_interrupted && m_interrupted()) {
      interrupted = true;
      // Asked only when jobs are in flight (a chat-only round has nothing to decide). A job whose
      // submit is still on a worker is kept: the safe choice, the next run collects it.
      policy = InterruptPolicy::keep;
      if (!polling.empty() && m_interrupt_policy) {
        lock.unlock();
        policy = m_interrupt_policy();
        lock.lock();
      }
      if (!first_error) {
        const std::string jobs_word =
            polling.empty() ? std::string()
                            : *policy == InterruptPolicy::cancel
                                  ? "; jobs in flight canceled at their providers, their reservations released"
                                  : "; jobs in flight kept running: `avps run` again collects them";
        first_error = make_error(ErrorCode::interrupted,
                                 "interrupted: calls not yet sent were released" + jobs_word);
      }
    }
    // What came back is recorded before more is sent: a ticket is durable before a worker takes
    // the next submit, so with one worker a kill at any moment leaves no job unrecorded.
    // Group commit: the intents of every call a free worker can take are recorded, then made
    // durable in one sync, then the calls leave.
    std::vector<Call*> announced;
    while (!first_error && !pending.empty() && done.empty() && in_flight + work.size() + announced.size() < threads) {
      Call* c = pending.front();
      pending.pop_front();
      lock.unlock();
      Result<void> recorded = record_intent(*c);
      lock.lock();
      if (!recorded) {
        first_error = recorded.error();
      } else {
        announced.push_back(c);
      }
    }
    if (!announced.empty()) {
      lock.unlock();
      Result<void> durable = m_project.ledger().sync();
      core::crash_point("engine.intents_synced");
      lock.lock();
      for (Call* c : announced) {
        if (!durable) {
          lock.unlock();
          std::ignore = m_governor.release(*c->reservation, "not sent: " + durable.error().message);
          c->state = CallState::released;
          lock.lock();
          continue;
        }
        c->work = Call::Work::submit;
        work.push_back(c);
        wake_worker.notify_one();
      }
      if (!durable && !first_error) {
        first_error = durable.error();
      }
    }
    if (first_error) {
      release_pending(first_error->message);
    }
    // Tickets: on an interrupt each is canceled (policy cancel) or left open for the next run
    // (keep); past its deadline it is canceled and fails; when due it is polled.
    const auto now = std::chrono::steady_clock::now();
    for (auto it = polling.begin(); done.empty() && it != polling.end();) {
      Call* c = *it;
      if (interrupted && *policy == InterruptPolicy::keep) {
        it = polling.erase(it);  // its ticket and reservation stay open in the ledger
        continue;
      }
      const bool cancel_now = interrupted || now >= c->deadline;
      if (!cancel_now && (now < c->next_poll || in_flight + work.size() >= threads)) {
        ++it;
        continue;
      }
      if (cancel_now && in_flight + work.size() >= threads) {
        ++it;
        continue;
      }
      if (cancel_now) {
        c->failure = interrupted ? make_error(ErrorCode::interrupted, "canceled on interrupt (--cancel-on-interrupt)")
                                 : make_error(ErrorCode::timeout, "the job did not finish within its maximum wait (" +
                                                                      std::to_string(m_backends.for_model(c->route.model)
                                                                                         ->job_timing()
                                                                                         .max_wait_ms /
                                                                                     1000) +
                                                                      " s): canceled");
        c->work = Call::Work::cancel;
      } else {
        c->work = Call::Work::poll;
      }
      work.push_back(c);
      wake_worker.notify_one();
      it = polling.erase(it);
    }
    auto finished = [&] { return !done.empty() || (work.empty() && in_flight == 0 && polling.empty()); };
    if (polling.empty()) {
      wake_recorder.wait(lock, finished);
    } else {
      // Wake at least every 200 ms to see an interrupt, and sooner when a poll or a cancel falls
      // due, but only while a worker is free to take it: a busy pool wakes the recorder when a
      // worker finishes, and waiting until a due call's time, already past, would spin.
      auto earliest = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      if (in_flight + work.size() < threads) {
        for (const Call* c : polling) {
          earliest = std::min({earliest, c->next_poll, c->deadline});
        }
      }
      wake_recorder.wait_until(lock, earliest, finished);
    }
    if (done.empty()) {
      if (work.empty() && in_flight == 0 && polling.empty() && (pending.empty() || first_error)) {
        break;
      }
      continue;
    }
    Call* c = done.front();
    done.pop_front();
    lock.unlock();
    Result<bool> resend = false;
    if (c->state == CallState::ticketed && !c->ticket_recorded) {
      ++m_outcome.calls_made;
      // The job exists at the provider: its ticket is durable before anything polls it.
      if (Result<void> recorded = record_ticket(*c); !recorded) {
        resend = std::move(recorded).error();
      } else {
        schedule_poll(*c);
      }
    } else if (c->state == CallState::ticketed) {
      // Still queued or running: a change of the provider's word is recorded, for `avps status`.
      if (c->provider_state != c->provider_state_recorded) {
        if (Result<void> recorded = record_job_state(*c); !recorded) {
          resend = std::move(recorded).error();
        }
      }
      schedule_poll(*c);
    } else {
      if (c->ticket.empty()) {
        ++m_outcome.calls_made;
      }
      if (c->state == CallState::answered) {
        if (Result<void> recorded = record_answer(*c); !recorded) {
          resend = std::move(recorded).error();
        }
      } else if (Result<void> recorded = record_failure(*c); !recorded) {
        resend = std::move(recorded).error();
      } else if (!c->ticket.empty() || c->failure->code == ErrorCode::interrupted) {
        // A job that failed, timed out or was canceled: final for this call, and for the run
        // unless the call is a shot's attempt (then the attempt failed, and production decides).
        if (c->failure->code != ErrorCode::interrupted && c->shot_attempt.empty()) {
          resend = Error{c->failure->code, c->purpose + " on " + c->route.model + ": " + c->failure->message};
        }
      } else if (!first_error && backends::retryable(*c->failure)) {
        resend = fall_back(*c);  // retries are spent on a transient fault: another model of the tier
      } else {
        resend = Error{c->failure->code, c->purpose + " call to " + c->route.model + " failed: " + c->failure->message};
      }
    }
    lock.lock();
    if (c->state == CallState::ticketed && resend) {
      polling.push_back(c);
    }
    if (!resend && !first_error) {
      first_error = resend.error();
    } else if (resend && *resend) {
      pending.push_front(c);
    }
    if (done.empty()) {
      // The answers (failures, job states) that came back together are committed, not synced:
      // the next sync makes them durable with whatever follows them (the next intents before a
      // call leaves, an artifact's intent before its face, the sync before render files are
      // written, a hard stop, the run's end), so nothing outside the ledger is derived from an
      // answer a power cut could lose (docs/formats/ledger.md, "Durability and group commit").
      core::crash_point("engine.answers_synced");
    }
  }
  closing = true;
  wake_worker.notify_all();
  lock.unlock();
  for (std::thread& t : pool) {
    t.join();
  }
  if (first_error) {
    return *first_error;
  }
  return ok();  // what was recorded here is durable with the engine's next sync (above)
}

Result<std::string> Exchange::response_text(const Call& c) const {
  return artifacts::read_object(m_project.ledger(), c.response.value("response_sha256", ""));
}

}  // namespace avps::engine
