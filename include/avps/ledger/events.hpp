#pragma once
// Typed views of the event kinds that several modules read (docs/formats/ledger.md has every
// kind): each names its body's fields once, instead of each reader spelling them with
// body.value("…"). from_event returns nullopt for an event of another kind; a missing field reads
// as its empty value, as the readers did (older records lack newer fields). to_draft gives the
// exact body the writer records, so the record's bytes do not depend on which code wrote them.
//
// Threading: plain values.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "avps/ledger/ledger.hpp"

namespace avps::ledger {

/// `media.recorded`: a generated video written under media/.
struct MediaRecorded {
  static constexpr const char* k_kind = "media.recorded";
  std::string key;  ///< the exchange that made it
  std::string shot_id;
  std::string scene_id;
  std::string resolution;  ///< "proxy" or "final"
  int attempt = 0;         ///< every render of the shot at that resolution counts
  std::string path;        ///< project-relative, "media/S01_SH01_proxy_a01.mp4"
  std::string sha256;      ///< of the file's bytes
  std::string model;
  std::string tier;
  std::string inputs;  ///< the render's identity (docs/formats/ledger.md)
  nlohmann::json input_hashes = nlohmann::json::object();

  static std::optional<MediaRecorded> from_event(const Event& e);
  EventDraft to_draft(std::optional<LogRow> row) const;
};

/// The QC grade a `step.finished` of a shot's grader carries.
struct ShotAttemptGrade {
  std::string shot_id;
  std::string resolution;
  int attempt = 0;
  std::string wave;    ///< "S01/proxy#3"; "" in older records
  std::string inputs;  ///< the graded render's identity
};

/// `step.finished`, as its readers use it: one attempt of a step. The writer (the engine) adds
/// fields of its own to the body; those stay in `body`.
struct StepFinished {
  static constexpr const char* k_kind = "step.finished";
  std::string step;  ///< "skill/target/resolution@hash..."
  std::string loop;
  std::string skill;
  int attempt = 0;
  std::string tier;
  std::string verdict;
  nlohmann::json reasons = nlohmann::json::array();
  std::string outputs;
  std::optional<ShotAttemptGrade> shot_attempt;
  nlohmann::json body;  ///< the whole body

  static std::optional<StepFinished> from_event(const Event& e);
};

/// `exchange.intent`: a call about to be sent, durable before it leaves.
struct ExchangeIntent {
  static constexpr const char* k_kind = "exchange.intent";
  std::string key;             ///< the call's idempotency key
  std::string reservation_id;  ///< "" in records before it was recorded (then any of the key's)
  std::string skill;           ///< what the call is for ("qc-grader S01_SH02 proxy")
  std::string model;
  std::string tier;
  std::string route;           ///< why the router chose the model
  std::string request_sha256;  ///< the canonical request's object
  int64_t request_bytes = 0;
  bool possible_duplicate = false;  ///< an earlier intent of this key has no response

  static std::optional<ExchangeIntent> from_event(const Event& e);
  EventDraft to_draft() const;
};

/// `exchange.response`: the answer and the settlement of its reservation, one transaction. The
/// body is open: each backend adds its trace (docs/formats/ledger.md); the fields readers use are
/// named here, the rest stay in `body`.
struct ExchangeResponse {
  static constexpr const char* k_kind = "exchange.response";
  std::string key;
  std::string model;
  std::string scene_id;
  int64_t cost_micro_usd = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t retries = 0;
  std::optional<double> seconds_billed;  ///< generations only
  std::string endpoint_host;             ///< HTTP backends only
  nlohmann::json body;                   ///< the whole body

  static std::optional<ExchangeResponse> from_event(const Event& e);
  /// The event of an answer: its body as the exchange built it, and its reservation's end.
  static EventDraft to_draft(nlohmann::json body, ReservationEnd settlement);
  /// The objects the response names (the answer, a render's bytes, the wire bodies), by field.
  std::vector<std::pair<std::string, std::string>> objects() const;
};

/// The reservation an event made (the ledger adds it to the body of the event `reserve` records,
/// `budget.reserved`), or nullopt.
std::optional<Reservation> reservation_of(const Event& e);

}  // namespace avps::ledger
