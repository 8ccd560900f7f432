#pragma once
// A backend whose answers a test scripts: per model, per skill, a queue of outcomes (an error, a
// junk text, a refusal) taken in call order; when a queue is empty the sim answers. Counts every
// call it receives, so a test can say "this request was sent once". Thread-safe.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "avps/backends/backend.hpp"
#include "avps/backends/sim_backend.hpp"

namespace avps::testing {

struct Scripted {
  std::optional<Error> error;       ///< fail with this
  std::optional<std::string> text;  ///< answer this text instead of the sim's
  std::string stop_reason;          ///< with text: why the answer is not whole
  std::optional<int64_t> provider_cost_micro_usd;  ///< the sim's answer, with this bill reported

  static Scripted fails(Error error) { return Scripted{std::move(error), std::nullopt, "", std::nullopt}; }
  static Scripted answers(std::string text, std::string stop_reason = "") {
    return Scripted{std::nullopt, std::move(text), std::move(stop_reason), std::nullopt};
  }
  static Scripted bills(int64_t micro_usd) { return Scripted{std::nullopt, std::nullopt, "", micro_usd}; }
};

class ScriptedBackend : public backends::Backend {
 public:
  explicit ScriptedBackend(std::shared_ptr<backends::SimBackend> sim) : m_sim(std::move(sim)) {}

  /// Outcomes for calls of `skill` ("" = any skill) on `model` ("" = any model), in order.
  void script(const std::string& model, const std::string& skill, Scripted outcome, int times = 1) {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (int i = 0; i < times; ++i) {
      m_script[model + "|" + skill].push_back(outcome);
    }
  }
  /// Every call to `model` fails with `error`.
  void fail_model(const std::string& model, Error error) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_failing.insert_or_assign(model, std::move(error));
  }

  /// Runs `hook` once, when the first call of `skill` arrives, before it is answered: what a person
  /// does to the project while a run is in flight.
  void before_call(const std::string& skill, std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_before[skill] = std::move(hook);
  }

  /// Forgets every scripted outcome and failing model: the providers have recovered.
  void clear() {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_script.clear();
    m_failing.clear();
  }

  int calls(const std::string& model = "") const {
    std::lock_guard<std::mutex> lock(m_mutex);
    int n = 0;
    for (const auto& [m, count] : m_calls) {
      n += (model.empty() || m == model) ? count : 0;
    }
    return n;
  }
  /// The most answers given to one request (by its canonical JSON): a request answered twice was
  /// paid twice.
  int max_answers_per_request() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    int most = 0;
    for (const auto& [request, count] : m_answered) {
      most = std::max(most, count);
    }
    return most;
  }

  Result<backends::Submitted<backends::ModelResponse>> submit_model(const backends::ModelRequest& request,
                                                                    backends::CallTrace& trace) override {
    trace.provider = "scripted";
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (auto it = m_before.find(request.skill); it != m_before.end()) {
        hook = std::move(it->second);
        m_before.erase(it);
      }
    }
    if (hook) {
      hook();
    }
    std::optional<Scripted> next;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      ++m_calls[request.model];
      if (auto failing = m_failing.find(request.model); failing != m_failing.end()) {
        return failing->second;
      }
      for (const std::string& key : {request.model + "|" + request.skill, request.model + "|",
                                     "|" + request.skill, std::string("|")}) {
        auto it = m_script.find(key);
        if (it != m_script.end() && !it->second.empty()) {
          next = it->second.front();
          it->second.pop_front();
          break;
        }
      }
    }
    if (next && next->error) {
      return *next->error;
    }
    AVPS_TRY_ASSIGN(backends::ModelResponse response, m_sim->complete(request));
    if (next && next->text) {
      response.text = *next->text;
      response.stop_reason = next->stop_reason;
    }
    if (next && next->provider_cost_micro_usd) {
      response.usage.provider_cost_micro_usd = next->provider_cost_micro_usd;
    }
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      ++m_answered[request.to_json().dump()];
    }
    return backends::Submitted<backends::ModelResponse>{std::move(response), {}};
  }

  Result<backends::Submitted<backends::GenerationResult>> submit_generation(const backends::GenerationRequest& request,
                                                                            backends::CallTrace& trace) override {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      ++m_calls[request.model];
      ++m_answered[request.to_json().dump()];
    }
    return m_sim->submit_generation(request, trace);
  }

 private:
  std::shared_ptr<backends::SimBackend> m_sim;
  mutable std::mutex m_mutex;
  std::map<std::string, std::deque<Scripted>> m_script;
  std::map<std::string, std::function<void()>> m_before;  ///< skill -> what happens before its first call
  std::map<std::string, Error> m_failing;
  std::map<std::string, int> m_calls;
  std::map<std::string, int> m_answered;
};

}  // namespace avps::testing
