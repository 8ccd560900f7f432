// `avps replay` (replay.hpp): a recorded run re-executed on a scratch copy, answered from the
// record, and its events compared with the recorded ones.

#include "avps/replay/replay.hpp"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "avps/artifacts/store.hpp"
#include "avps/backends/registry.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/clock.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/engine/engine.hpp"
#include "avps/governance/override.hpp"
#include "avps/project/project.hpp"
#include "record_reading.hpp"

namespace avps::replay {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t k_shown_chars = 160;  // a value quoted in a divergence

// How an exchange.* body records the wire and the clock: different on every run, never an input
// to a decision (DESIGN §4), and not what a replay verifies.
const char* const k_exchange_volatile[] = {"elapsed_ms",    "latency_ms",          "attempts",
                                           "retries",       "status",              "provider",
                                           "endpoint_host", "wire_request_sha256", "wire_response_sha256",
                                           "polls",         "submitted_unix_ms"};
// What a job's provider said while it ran (exchange.polled): the wire and the clock only, decided
// nothing, and a replay (whose recorded jobs answer at their first poll) has none.
constexpr std::string_view k_wire_only_kind = "exchange.polled";
// The run log's columns that say when and how long, or depend on which of the calls in flight
// together finished first.
const char* const k_row_volatile[] = {"timestamp", "duration_s", "budget_pct"};

// An event as a replay compares it: its kind and its body without what varies between two runs
// of the same decisions.
json decision_of(const ledger::Event& e) {
  json body = e.body;
  if (e.kind.rfind("exchange.", 0) == 0) {
    for (const char* field : k_exchange_volatile) {
      body.erase(field);
    }
  }
  if (auto row = body.find("row"); row != body.end() && row->is_object()) {
    for (const char* field : k_row_volatile) {
      row->erase(field);
    }
  }
  if (auto artifact = body.find("artifact"); artifact != body.end() && artifact->is_object()) {
    artifact->erase("event_seq");  // its own position, which calls finishing in another order move
  }
  if (e.kind == "run.started" || e.kind == "run.finished") {
    body.erase("details");  // call counts; what the run did is in the other events
  }
  if (e.kind == "artifact.intent") {
    // The row its write will carry, kept for recovery: compared on artifact.recorded, and absent
    // from the intents of records made before it was kept.
    body.erase("row_to_record");
  }
  return json{{"kind", e.kind}, {"body", std::move(body)}};
}

std::string key_of_reservation(const std::string& reservation_id) {
  return reservation_id.substr(0, reservation_id.find('#'));
}

// What names an event among others of its kind, for pairing a recorded event with the replayed
// one that should have equalled it. `purposes`: a call's key -> its intent's purpose.
json identity_of(const ledger::Event& e, const std::map<std::string, std::string>& purposes) {
  const json& b = e.body;
  auto pick = [&](std::initializer_list<const char*> fields) {
    json id = json::object();
    for (const char* field : fields) {
      if (b.contains(field)) {
        id[field] = b[field];
      }
    }
    return id;
  };
  auto purpose = [&](const std::string& key) {
    auto it = purposes.find(key);
    return json{{"purpose", it == purposes.end() ? key : it->second}};
  };
  const std::string& k = e.kind;
  if (k == "step.finished") {
    return pick({"skill", "loop", "attempt", "shot_attempt"});
  }
  if (k == "exchange.intent") {
    return json{{"purpose", b.value("skill", "")}};
  }
  if (k == "exchange.response" || k == "exchange.failed" || k == "exchange.fallback" || k == "exchange.ticket") {
    return purpose(b.value("key", ""));
  }
  if (k == "budget.reserved") {
    return json{{"purpose", b.value(json::json_pointer("/reservation/purpose"), "")}};
  }
  if (k == "budget.settled" || k == "budget.released" || k == "budget.reconciled") {
    return purpose(key_of_reservation(b.value(json::json_pointer("/reservation_end/id"), "")));
  }
  if (k == "artifact.intent") {
    return json{{"name", b.value(json::json_pointer("/intent/name"), "")}};
  }
  if (k == "artifact.recorded") {
    return json{{"name", b.value(json::json_pointer("/artifact/name"), "")}};
  }
  if (k == "artifact.abandoned") {
    return pick({"name"});
  }
  if (k == "media.recorded") {
    return pick({"path"});
  }
  if (k == "run.hard_stop") {
    return pick({"skill", "scope", "kind"});
  }
  if (k == "route.escalated" || k == "route.escalation_refused") {
    return pick({"loop", "skill", "from"});
  }
  if (k == "route.reallocated") {
    return pick({"shot_id"});
  }
  if (k == "route.rerouted") {
    return pick({"loop", "scene_id", "attempt"});
  }
  if (k == "regen.round") {
    return pick({"shot_id", "resolution", "round"});
  }
  if (k == "trigger.fired") {
    return pick({"trigger", "key"});
  }
  return json::object();
}

// "qc-grader/S05_SH05/proxy attempt 6": an identity as words, names first, then numbers.
std::string subject_of(const json& identity) {
  std::string out;
  for (const bool numbers : {false, true}) {
    for (const auto& [field, value] : identity.items()) {
      std::string word = !numbers && value.is_string()  ? value.get<std::string>()
                         : numbers && value.is_number() ? field + " " + value.dump()
                                                        : "";
      if (!word.empty() && out.find(word) == std::string::npos) {
        out += (out.empty() ? "" : " ") + word;
      }
    }
  }
  return out;
}

std::string escape_pointer_token(const std::string& token) {
  std::string out;
  for (char c : token) {
    out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  }
  return out;
}

// The value at `pointer` in `doc`, as shortened JSON, or "(absent)". Two strings that differ are
// shown from a little before their first differing character (`other`: the value compared with).
std::string shown_at(const json& doc, const std::string& pointer, const json& other = json()) {
  json::json_pointer p(pointer);
  if (!doc.contains(p)) {
    return "(absent)";
  }
  const json& value = doc.at(p);
  json::json_pointer q(pointer);
  if (value.is_string() && other.contains(q) && other.at(q).is_string()) {
    const std::string& a = value.get_ref<const std::string&>();
    const std::string& b = other.at(q).get_ref<const std::string&>();
    size_t at = 0;
    while (at < a.size() && at < b.size() && a[at] == b[at]) {
      ++at;
    }
    if (at > 40) {
      const size_t from = at - 40;
      return "(from character " + std::to_string(from) + ") " +
             json(a.substr(from, k_shown_chars)).dump() + (a.size() > from + k_shown_chars ? "..." : "");
    }
  }
  std::string text = value.dump();
  if (text.size() > k_shown_chars) {
    text = text.substr(0, k_shown_chars) + "...";
  }
  return text;
}

ErrorCode error_code_named(const std::string& name) {
  for (int code = 0; code <= static_cast<int>(ErrorCode::rejected); ++code) {
    if (error_code_name(static_cast<ErrorCode>(code)) == name) {
      return static_cast<ErrorCode>(code);
    }
  }
  return ErrorCode::rejected;
}

/// Every model of a replay: answers a request with what the record holds for its hash (the
/// answer's bytes re-hashed first), repeats a recorded failure, and refuses anything else. After
/// a refusal or a damaged answer it asks the run to stop (stopped()). Thread-safe.
class RecordedAnswers final : public backends::Backend {
 public:
  struct Outcome {
    int64_t seq = 0;  ///< the exchange.response or exchange.failed that recorded it
    bool failed = false;
    json body;
  };

  /// `tickets`: by key, the exchange.ticket bodies of the jobs the run submitted, in order.
  /// `ledger`: the recorded project's (read-only, thread-safe), which holds the answers' objects.
  RecordedAnswers(const ledger::Ledger& ledger, std::map<std::string, std::deque<Outcome>> by_key,
                  std::map<std::string, std::deque<json>> tickets = {})
      : m_ledger(ledger), m_by_key(std::move(by_key)), m_tickets(std::move(tickets)) {}

  Result<backends::Submitted<backends::ModelResponse>> submit_model(const backends::ModelRequest& request,
                                                                    backends::CallTrace& trace) override {
    AVPS_TRY_ASSIGN(Outcome outcome, take(request.to_json(), trace));
    AVPS_TRY_ASSIGN(std::string text, answer_bytes(outcome, "response_sha256"));
    const json& b = outcome.body;
    backends::ModelResponse response;
    response.text = std::move(text);
    response.model = b.value("model", "");
    response.stop_reason = b.value("stop_reason", "");
    response.usage.input_tokens = b.value("input_tokens", int64_t{0});
    response.usage.output_tokens = b.value("output_tokens", int64_t{0});
    response.usage.cached_input_tokens = b.value("cached_input_tokens", int64_t{0});
    if (b.contains("provider_cost_micro_usd")) {
      response.usage.provider_cost_micro_usd = b.value("provider_cost_micro_usd", int64_t{0});
    }
    return backends::Submitted<backends::ModelResponse>{std::move(response), ""};
  }

  Result<backends::Submitted<backends::GenerationResult>> submit_generation(const backends::GenerationRequest& request,
                                                                            backends::CallTrace& trace) override {
    AVPS_TRY_ASSIGN(std::string canonical, core::canonical_json(request.to_json()));
    const std::string key = core::sha256_hex(canonical);
    {
      // A job the run submitted: the same ticket again, its answer (or failure) at the first poll.
      std::lock_guard<std::mutex> lock(m_mutex);
      auto ticketed = m_tickets.find(key);
      if (ticketed != m_tickets.end() && !ticketed->second.empty()) {
        json ticket = std::move(ticketed->second.front());
        ticketed->second.pop_front();
        backends::Submitted<backends::GenerationResult> submitted;
        submitted.ticket = ticket.value("ticket", "");
        submitted.details = ticket.value("submit", json::object());
        trace.provider = "replay";
        return submitted;
      }
    }
    AVPS_TRY_ASSIGN(Outcome outcome, take(request.to_json(), trace));
    AVPS_TRY_ASSIGN(backends::GenerationResult result, generation_of(outcome));
    return backends::Submitted<backends::GenerationResult>{std::move(result), ""};
  }

  /// A recorded job's answer: the response or failure recorded with this ticket.
  Result<std::optional<backends::GenerationResult>> poll_generation(const std::string& ticket,
                                                                    backends::CallTrace& trace) override {
    trace.provider = "replay";
    std::optional<Outcome> found;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      for (auto& [key, outcomes] : m_by_key) {
        for (auto it = outcomes.begin(); it != outcomes.end(); ++it) {
          if (it->body.value("ticket", "") == ticket) {
            found = std::move(*it);
            outcomes.erase(it);
            break;
          }
        }
        if (found) {
          break;
        }
      }
      if (!found) {
        m_stopped = true;
        return make_error(ErrorCode::rejected, "replay: the record holds no answer to job " + ticket);
      }
    }
    if (found->failed) {
      return Error{error_code_named(found->body.value("error", "")), found->body.value("message", "")};
    }
    AVPS_TRY_ASSIGN(backends::GenerationResult result, generation_of(*found));
    return std::optional<backends::GenerationResult>(std::move(result));
  }
  Result<void> cancel_generation(const std::string&, backends::CallTrace&) override { return ok(); }
  /// Recorded jobs answer at once: poll at once.
  backends::JobTiming job_timing() const override { return {1, 24LL * 3600 * 1000}; }
  /// A recorded failure ended its job (one past its maximum wait too, recorded as `timeout`).
  bool poll_errors_end_jobs() const override { return true; }

  /// True once a request had no recorded answer or an answer was damaged: the replay ends there.
  bool stopped() const { return m_stopped; }

  /// The first recorded answer whose bytes no longer match their hash: (its event, the message).
  std::optional<std::pair<int64_t, std::string>> damaged() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_damaged;
  }

 private:
  Result<Outcome> take(const json& request, backends::CallTrace& trace) {
    trace.provider = "replay";
    AVPS_TRY_ASSIGN(std::string canonical, core::canonical_json(request));
    const std::string key = core::sha256_hex(canonical);
    std::lock_guard<std::mutex> lock(m_mutex);
    auto it = m_by_key.find(key);
    if (it == m_by_key.end() || it->second.empty()) {
      m_stopped = true;
      return make_error(ErrorCode::rejected, "replay: the record holds no answer to request " + key);
    }
    Outcome outcome = std::move(it->second.front());
    it->second.pop_front();
    if (outcome.failed) {
      return Error{error_code_named(outcome.body.value("error", "")), outcome.body.value("message", "")};
    }
    return outcome;
  }

  Result<backends::GenerationResult> generation_of(const Outcome& outcome) {
    AVPS_TRY_ASSIGN(std::string bytes, answer_bytes(outcome, "media_sha256"));
    const json& b = outcome.body;
    backends::GenerationResult result;
    result.media_bytes = std::move(bytes);
    result.extension = b.value("extension", "");
    result.seconds_billed = b.value("seconds_billed", 0.0);
    result.model = b.value("model", "");
    result.details = b.value("job", json::object());
    if (b.contains("provider_cost_micro_usd")) {
      result.provider_cost_micro_usd = b.value("provider_cost_micro_usd", int64_t{0});
    }
    return result;
  }

  Result<std::string> answer_bytes(const Outcome& outcome, const char* field) {
    Result<std::string> bytes = artifacts::read_object(m_ledger, outcome.body.value(field, ""));
    if (!bytes) {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_stopped = true;
      if (!m_damaged) {
        m_damaged = std::make_pair(outcome.seq, bytes.error().message);
      }
    }
    return bytes;
  }

  const ledger::Ledger& m_ledger;
  mutable std::mutex m_mutex;
  std::map<std::string, std::deque<Outcome>> m_by_key;
  std::map<std::string, std::deque<json>> m_tickets;
  std::atomic<bool> m_stopped{false};
  std::optional<std::pair<int64_t, std::string>> m_damaged;
};

/// The replay's observer: hears nothing, and asks the engine to stop once the record has no
/// answer to give.
class StopWhenUnanswered final : public engine::Observer {
 public:
  explicit StopWhenUnanswered(const RecordedAnswers& answers) : m_answers(answers) {}
  void progress(const engine::Progress&) override {}
  bool interrupted() const override { return m_answers.stopped(); }

 private:
  const RecordedAnswers& m_answers;
};

/// One recorded run of `avps run`: its events' range and how it ended.
struct RecordedRun {
  std::string run_id;
  json options;           ///< run.started details: until, scene, jobs
  size_t first = 0;       ///< index of run.started in the events
  size_t end = 0;         ///< one past its last event
  std::string outcome;    ///< run.finished outcome, or "UNFINISHED"
  bool finished() const { return outcome != "UNFINISHED" && outcome != "INTERRUPTED"; }
};

std::vector<RecordedRun> runs_of(const std::vector<ledger::Event>& events) {
  std::vector<RecordedRun> runs;
  for (size_t i = 0; i < events.size(); ++i) {
    const ledger::Event& e = events[i];
    if (e.kind == "run.started") {
      if (!runs.empty() && runs.back().end == 0) {
        runs.back().end = i;
      }
      if (e.body.value("command", "") == "run") {
        runs.push_back(RecordedRun{e.run_id, e.body.value("details", json::object()), i, 0, "UNFINISHED"});
      }
    } else if (e.kind == "run.finished" && !runs.empty() && runs.back().end == 0 && e.run_id == runs.back().run_id) {
      runs.back().outcome = e.body.value("outcome", "UNFINISHED");
      runs.back().end = i + 1;
    }
  }
  if (!runs.empty() && runs.back().end == 0) {
    runs.back().end = events.size();
  }
  return runs;
}

// Every path an artifact or render event names, and those the record vouched for by `before`.
struct RecordedPaths {
  std::set<std::string> named;
  std::set<std::string> vouched;
};

RecordedPaths recorded_paths(const std::vector<ledger::Event>& events, size_t before) {
  RecordedPaths paths;
  for (size_t i = 0; i < events.size(); ++i) {
    const ledger::Event& e = events[i];
    std::string path;
    if (e.kind == "artifact.intent") {
      path = e.body.value(json::json_pointer("/intent/path"), "");
    } else if (e.kind == "artifact.recorded") {
      path = e.body.value(json::json_pointer("/artifact/path"), "");
    } else if (e.kind == "media.recorded") {
      path = e.body.value("path", "");
    }
    if (path.empty()) {
      continue;
    }
    paths.named.insert(path);
    if (i < before && e.kind != "artifact.intent") {
      paths.vouched.insert(path);
    }
  }
  return paths;
}

Result<void> link_or_copy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);  // the engine never writes into an existing file
  if (!ec) {
    return ok();
  }
  fs::copy_file(from, to, ec);
  if (ec) {
    return make_error(ErrorCode::io_error, "cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
  }
  return ok();
}

// The project as it stood when the run began: its inputs as they are now, what the record
// vouched for before the run, and every object; the ledger cut before the run.
Result<void> build_scratch(const fs::path& project_dir, const ledger::Ledger& ledger,
                           const std::vector<ledger::Event>& events, const RecordedRun& run, const fs::path& scratch) {
  const RecordedPaths paths = recorded_paths(events, run.first);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(project_dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string relative = fs::relative(it->path(), project_dir).generic_string();
    const bool state = relative.rfind(".avps", 0) == 0 && relative != ".avps" && relative != ".avps/objects" &&
                       relative.rfind(".avps/objects/", 0) != 0;
    if (state || relative == ledger::k_run_log_relative) {
      if (it->is_directory()) {
        it.disable_recursion_pending();
      }
      continue;  // the ledger, its mirrors, the lock and the diagnostic log are the cut ledger's own
    }
    if (it->is_directory()) {
      fs::create_directories(scratch / relative, ec);
      if (ec) {
        break;
      }
      continue;
    }
    if (!it->is_regular_file() || core::is_atomic_temp_name(it->path().filename().string()) ||
        (paths.named.count(relative) && !paths.vouched.count(relative))) {
      continue;  // made by this run or a later one: the replay makes it again
    }
    AVPS_TRY(link_or_copy(it->path(), scratch / relative));
  }
  if (ec) {
    return make_error(ErrorCode::io_error, "cannot copy " + project_dir.string() + " for the replay: " + ec.message());
  }
  fs::create_directories(scratch / ".avps", ec);
  if (ec) {
    return make_error(ErrorCode::io_error, "cannot create " + (scratch / ".avps").string() + ": " + ec.message());
  }
  return ledger.copy_prefix(scratch, events[run.first].seq - 1);
}

// A fresh folder under the system's temporary folder ($TMPDIR, else /tmp).
Result<fs::path> make_scratch_dir() {
  std::string pattern = (fs::temp_directory_path() / "avps-replay-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return make_error(ErrorCode::io_error, "cannot create a scratch folder under " +
                                               fs::temp_directory_path().string() + " for the replay");
  }
  return fs::path(pattern);
}

// The event that explains the first divergence. A step records its reservation before its
// request and its artifact before its verdict, so the first event to differ is often a
// consequence: a reservation whose worst case changed because the request did, an artifact whose
// bytes changed because the verdict did. The request or the verdict is then what is reported.
const ledger::Event* cause_of(const std::vector<const ledger::Event*>& missed,
                              const std::map<std::string, std::string>& purposes) {
  const ledger::Event* first = missed.front();
  const json identity = identity_of(*first, purposes);
  for (const ledger::Event* e : missed) {
    if (first->kind == "budget.reserved" && e->kind == "exchange.intent" &&
        identity_of(*e, purposes) == identity) {
      return e;
    }
    if ((first->kind == "artifact.intent" || first->kind == "artifact.recorded") && e->kind == "step.finished" &&
        e->body.value("outputs", "").find(identity.value("name", "?")) != std::string::npos) {
      return e;
    }
  }
  return first;
}

/// Compares the recorded run with the replay's events and fills `report`.
void compare(const ledger::Ledger& recorded_ledger, const ledger::Ledger& replayed_ledger,
             const std::vector<ledger::Event>& recorded, const std::vector<ledger::Event>& replayed,
             bool recorded_finished, const std::string& engine_error, RunReplay& report) {
  std::map<std::string, std::string> purposes;  // call key -> purpose, from both records
  for (const auto* events : {&recorded, &replayed}) {
    for (const ledger::Event& e : *events) {
      if (e.kind == "exchange.intent") {
        purposes[e.body.value("key", "")] = e.body.value("skill", "");
      }
    }
  }
  std::map<std::string, std::deque<size_t>> unmatched;  // a replayed decision -> its events, in order
  std::vector<std::string> replayed_decisions;
  std::vector<bool> used(replayed.size(), false);
  for (size_t i = 0; i < replayed.size(); ++i) {
    if (replayed[i].kind == k_wire_only_kind) {
      used[i] = true;
      replayed_decisions.emplace_back();
      continue;
    }
    replayed_decisions.push_back(decision_of(replayed[i]).dump());
    unmatched[replayed_decisions.back()].push_back(i);
  }
  std::vector<const ledger::Event*> missed;  // recorded events not reproduced, in the record's order
  for (const ledger::Event& e : recorded) {
    if (e.kind == k_wire_only_kind) {
      continue;
    }
    auto found = unmatched.find(decision_of(e).dump());
    if (found == unmatched.end() || found->second.empty()) {
      missed.push_back(&e);
      continue;
    }
    used[found->second.front()] = true;
    found->second.pop_front();
    ++report.events;
    report.steps += e.kind == "step.finished";
    report.calls += e.kind == "exchange.response";
    report.artifacts += e.kind == "artifact.recorded";
    report.renders += e.kind == "media.recorded";
  }
  if (missed.empty()) {
    if (!recorded_finished) {
      return;  // verified as far as the record goes; the replay may have gone further
    }
    for (size_t i = 0; i < replayed.size(); ++i) {
      if (!used[i]) {
        Divergence d;
        d.kind = replayed[i].kind;
        d.subject = subject_of(identity_of(replayed[i], purposes));
        d.recorded = "(absent)";
        d.replayed = shown_at(decision_of(replayed[i]), "/body");
        d.message = "the replay did more than the record: " + d.kind + (d.subject.empty() ? "" : " " + d.subject) +
                    " is not in the recorded run";
        report.divergence = d;
        return;
      }
    }
    return;
  }
  const ledger::Event& e = *cause_of(missed, purposes);
  Divergence d;
  d.seq = e.seq;
  d.kind = e.kind;
  const json identity = identity_of(e, purposes);
  d.subject = subject_of(identity);
  const std::string where = "event " + std::to_string(e.seq) + " (" + e.kind +
                            (d.subject.empty() ? "" : ", " + d.subject) + ")";
  const ledger::Event* counterpart = nullptr;
  for (size_t i = 0; i < replayed.size() && !counterpart; ++i) {
    if (!used[i] && replayed[i].kind == e.kind && identity_of(replayed[i], purposes) == identity) {
      counterpart = &replayed[i];
    }
  }
  if (!counterpart) {
    d.recorded = shown_at(decision_of(e), "/body");
    d.replayed = "(absent)";
    d.message = where + " was not reproduced: the replay " +
                (engine_error.empty() ? std::string("never made it") : "stopped with: " + engine_error);
    report.divergence = d;
    return;
  }
  const json recorded_decision = decision_of(e);
  const json replayed_decision = decision_of(*counterpart);
  d.pointer = first_difference(recorded_decision["body"], replayed_decision["body"]).value_or("");
  d.recorded = shown_at(recorded_decision["body"], d.pointer, replayed_decision["body"]);
  d.replayed = shown_at(replayed_decision["body"], d.pointer, recorded_decision["body"]);
  std::string what = "differs at " + (d.pointer.empty() ? "/" : d.pointer);
  // Two hashes differ: what they hash is what differs (a request, or an artifact's content).
  auto into_objects = [&](const std::string& recorded_sha, const std::string& replayed_sha, const std::string& noun) {
    const json recorded_object = object_json(recorded_ledger, recorded_sha);
    const json replayed_object = object_json(replayed_ledger, replayed_sha);
    if (recorded_object.is_null() || replayed_object.is_null()) {
      return;
    }
    d.pointer = first_difference(recorded_object, replayed_object).value_or("");
    d.recorded = shown_at(recorded_object, d.pointer, replayed_object);
    d.replayed = shown_at(replayed_object, d.pointer, recorded_object);
    what = noun + " differs at " + (d.pointer.empty() ? "/" : d.pointer);
  };
  if (e.kind == "exchange.intent" &&
      (d.pointer == "/key" || d.pointer == "/request_sha256" || d.pointer == "/reservation_id")) {
    into_objects(e.body.value("request_sha256", ""), counterpart->body.value("request_sha256", ""), "its request");
  } else if ((e.kind == "artifact.intent" || e.kind == "artifact.recorded") &&
             (d.pointer.ends_with("/face_sha256") || d.pointer.ends_with("/json_sha256"))) {
    const std::string field = e.kind == "artifact.intent" ? "/intent/json_sha256" : "/artifact/json_sha256";
    into_objects(e.body.value(json::json_pointer(field), ""),
                 counterpart->body.value(json::json_pointer(field), ""), "its content");
  } else if (e.kind == "step.finished" && (d.pointer == "/verdict" || d.pointer.rfind("/row/outcome", 0) == 0 ||
                                           d.pointer.rfind("/reasons", 0) == 0)) {
    what = "recorded verdict " + e.body.value("verdict", "?") + ", recomputed " +
           counterpart->body.value("verdict", "?") + "; differs at " + d.pointer;
  }
  d.message = where + ": " + what + ": recorded " + d.recorded + ", replayed " + d.replayed;
  report.divergence = d;
}

Result<RunReplay> replay_one(const fs::path& project_dir, const ledger::Ledger& ledger,
                             const std::vector<ledger::Event>& events, const RecordedRun& run, bool keep_scratch) {
  RunReplay report;
  report.run_id = run.run_id;
  report.outcome = run.outcome;
  report.first_seq = events[run.first].seq;
  report.last_seq = events[run.end - 1].seq;

  // The answers: this run's, in the order it got them; an unfinished run may go further, so later
  // runs' answers are there too (after its own).
  std::map<std::string, std::deque<RecordedAnswers::Outcome>> by_key;
  std::map<std::string, std::deque<json>> tickets;
  const size_t answers_end = run.finished() ? run.end : events.size();
  for (size_t i = run.first; i < answers_end; ++i) {
    const ledger::Event& e = events[i];
    if (e.kind == "exchange.response" || e.kind == "exchange.failed") {
      by_key[e.body.value("key", "")].push_back({e.seq, e.kind == "exchange.failed", e.body});
    } else if (e.kind == "exchange.ticket") {
      tickets[e.body.value("key", "")].push_back(e.body);
    }
  }
  auto answers = std::make_shared<RecordedAnswers>(ledger, std::move(by_key), std::move(tickets));

  AVPS_TRY_ASSIGN(fs::path scratch, make_scratch_dir());
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      if (!keep) {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
      }
    }
  } cleanup{scratch, keep_scratch};
  if (keep_scratch) {
    report.scratch = scratch.string();
  }
  AVPS_TRY(build_scratch(project_dir, ledger, events, run, scratch));

  core::SystemClock clock;
  std::string engine_error;
  {
    AVPS_TRY_ASSIGN(std::unique_ptr<project::Project> copy,
                    project::Project::open(scratch, ledger::OpenMode::read_write, {}, clock));
    auto recorded_models = [answers](const governance::ModelsFile& models, const project::Config&) {
      std::map<std::string, std::shared_ptr<backends::Backend>, std::less<>> by_model;
      std::map<std::string, std::string, std::less<>> kinds;
      for (const governance::Model& m : models.models()) {
        by_model[m.id] = answers;
        kinds[m.id] = m.backend;
      }
      return Result<std::unique_ptr<backends::BackendRegistry>>(backends::BackendRegistry::of(by_model, kinds));
    };
    StopWhenUnanswered observer(*answers);
    const engine::RunOptions options{run.options.value("until", ""), run.options.value("scene", ""),
                                     std::max(1, run.options.value("jobs", 1))};
    Result<engine::RunOutcome> outcome = engine::run_production(*copy, options, recorded_models, observer);
    if (!outcome) {
      engine_error = outcome.error().message;
    }
  }
  AVPS_TRY_ASSIGN(std::unique_ptr<ledger::Ledger> replayed_ledger,
                  ledger::Ledger::open(scratch, ledger::OpenMode::read_only, clock));
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> replayed, replayed_ledger->events(report.first_seq - 1));
  const std::vector<ledger::Event> recorded(events.begin() + static_cast<std::ptrdiff_t>(run.first),
                                            events.begin() + static_cast<std::ptrdiff_t>(run.end));
  compare(ledger, *replayed_ledger, recorded, replayed, run.finished(), engine_error, report);
  // A damaged answer is the divergence, whatever else the replay then did without it.
  if (auto damaged = answers->damaged()) {
    Divergence d;
    d.seq = damaged->first;
    d.kind = "exchange.response";
    for (size_t i = run.first; i < events.size(); ++i) {
      if (events[i].seq == damaged->first) {
        const std::string key = events[i].body.value("key", "");
        for (const ledger::Event& e : events) {
          if (e.kind == "exchange.intent" && e.body.value("key", "") == key) {
            d.subject = e.body.value("skill", "");
            break;
          }
        }
        break;
      }
    }
    d.message = "event " + std::to_string(d.seq) + " (exchange.response, " + d.subject +
                "): its recorded answer cannot be used: " + damaged->second;
    report.divergence = d;
  }
  return report;
}

}  // namespace

json Divergence::to_json() const {
  return {{"seq", seq},           {"kind", kind},         {"subject", subject}, {"pointer", pointer},
          {"recorded", recorded}, {"replayed", replayed}, {"message", message}};
}

json RunReplay::to_json() const {
  json j = {{"run_id", run_id}, {"outcome", outcome}, {"first_seq", first_seq}, {"last_seq", last_seq},
            {"events", events}, {"steps", steps},     {"calls", calls},         {"artifacts", artifacts},
            {"renders", renders}, {"reproduced", !divergence}};
  if (!not_replayed.empty()) {
    j["not_replayed"] = not_replayed;
  }
  if (divergence) {
    j["divergence"] = divergence->to_json();
  }
  if (!scratch.empty()) {
    j["scratch"] = scratch;
  }
  return j;
}

std::optional<std::string> first_difference(const json& a, const json& b) {
  if (a == b) {
    return std::nullopt;
  }
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [key, value] : a.items()) {
      keys.insert(key);
    }
    for (const auto& [key, value] : b.items()) {
      keys.insert(key);
    }
    for (const std::string& key : keys) {
      const std::string here = "/" + escape_pointer_token(key);
      if (!a.contains(key) || !b.contains(key)) {
        return here;
      }
      if (auto below = first_difference(a[key], b[key])) {
        return here + *below;
      }
    }
  }
  if (a.is_array() && b.is_array()) {
    const size_t common = std::min(a.size(), b.size());
    for (size_t i = 0; i < common; ++i) {
      if (auto below = first_difference(a[i], b[i])) {
        return "/" + std::to_string(i) + *below;
      }
    }
    return "/" + std::to_string(common);
  }
  return std::string();
}

Result<std::vector<RunReplay>> replay_runs(const fs::path& project_dir, const Options& options,
                                           const std::function<void(const std::string&)>& note) {
  core::SystemClock clock;
  AVPS_TRY_ASSIGN(std::unique_ptr<ledger::Ledger> ledger,
                  ledger::Ledger::open(project_dir, ledger::OpenMode::read_only, clock));
  // A replay compares with the record, so the record must first be what it was: the chain, HEAD,
  // the indexes and the CSV face verified (the files are `avps gate`'s).
  if (std::vector<core::Violation> problems = ledger->verify(); !problems.empty()) {
    return make_error(ErrorCode::corruption, "the ledger does not verify (" + problems.front().subject + ": " +
                                                 problems.front().message + "); run `avps gate` for every problem");
  }
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, ledger->events());
  std::vector<RecordedRun> runs = runs_of(events);
  AVPS_TRY_ASSIGN(std::optional<std::string> id, run_filter(options.run));
  if (id) {
    std::erase_if(runs, [&](const RecordedRun& r) { return r.run_id != *id; });
    if (runs.empty()) {
      return make_error(ErrorCode::not_found, "--run " + options.run + ": the ledger has no run " + *id +
                                                  " of `avps run` (`avps log` lists the runs)");
    }
  }
  if (runs.empty()) {
    return make_error(ErrorCode::not_found, "nothing to replay: the ledger records no run of `avps run`");
  }
  std::vector<RunReplay> reports;
  for (const RecordedRun& run : runs) {
    // A run that met an integrity stop (it recorded one, or one was open when it began and it did
    // not resolve it) stopped on the folder as it was then: there is nothing to re-execute.
    std::string held;
    bool resolved = false;
    for (size_t i = run.first; i < run.end; ++i) {
      resolved = resolved || events[i].kind == "stop.resolved";
      if (events[i].kind == "run.hard_stop" && events[i].body.value("kind", "") == "integrity") {
        held = "STOP-" + std::to_string(events[i].seq);
      }
    }
    if (held.empty() && !resolved && run.outcome == "STOP") {
      const std::vector<ledger::Event> before(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(run.first));
      for (const governance::HardStop& stop : governance::open_hard_stops(before)) {
        held = stop.kind == governance::StopKind::integrity ? stop.id() : held;
      }
    }
    if (!held.empty()) {
      RunReplay report;
      report.run_id = run.run_id;
      report.outcome = run.outcome;
      report.first_seq = events[run.first].seq;
      report.last_seq = events[run.end - 1].seq;
      report.not_replayed = "it met the integrity stop " + held +
                            ": files no longer matched the ledger, so it made no decision to re-execute";
      reports.push_back(std::move(report));
      continue;
    }
    note("replaying " + run.run_id + " (events " + std::to_string(events[run.first].seq) + "-" +
         std::to_string(events[run.end - 1].seq) + ", " + run.outcome + ")");
    AVPS_TRY_ASSIGN(RunReplay report, replay_one(project_dir, *ledger, events, run, options.keep_scratch));
    reports.push_back(std::move(report));
  }
  return reports;
}

}  // namespace avps::replay
