// Typed events (ledger/events.hpp): what a writer records is what every reader reads.
#include <catch2/catch.hpp>

#include "avps/ledger/events.hpp"

using namespace avps;
using nlohmann::json;

namespace {

ledger::Event as_recorded(const ledger::EventDraft& draft) {
  ledger::Event e;
  e.seq = 7;
  e.kind = draft.kind;
  e.body = draft.body;
  return e;
}

}  // namespace

TEST_CASE("a media.recorded body is the documented one and reads back field for field", "[ledger][events]") {
  const ledger::MediaRecorded written{.key = "generate/S01_SH02/proxy#2",
                                      .shot_id = "S01_SH02",
                                      .scene_id = "S01",
                                      .resolution = "proxy",
                                      .attempt = 2,
                                      .path = "media/S01_SH02_proxy_a02.mp4",
                                      .sha256 = std::string(64, 'a'),
                                      .model = "sim-gen-mid",
                                      .tier = "gen_mid",
                                      .inputs = "0123456789abcdef",
                                      .input_hashes = {{"GENPACK", "fedcba9876543210"}}};
  const ledger::EventDraft draft = written.to_draft(std::nullopt);
  CHECK(draft.kind == "media.recorded");
  // The field set of docs/formats/ledger.md, no more: replay compares these bodies byte for byte.
  CHECK(draft.body == json{{"key", "generate/S01_SH02/proxy#2"},
                           {"shot_id", "S01_SH02"},
                           {"scene_id", "S01"},
                           {"resolution", "proxy"},
                           {"attempt", 2},
                           {"path", "media/S01_SH02_proxy_a02.mp4"},
                           {"sha256", std::string(64, 'a')},
                           {"model", "sim-gen-mid"},
                           {"tier", "gen_mid"},
                           {"inputs", "0123456789abcdef"},
                           {"input_hashes", {{"GENPACK", "fedcba9876543210"}}}});
  const std::optional<ledger::MediaRecorded> read = ledger::MediaRecorded::from_event(as_recorded(draft));
  REQUIRE(read);
  CHECK(read->path == written.path);
  CHECK(read->attempt == 2);
  CHECK(read->sha256 == written.sha256);
  CHECK(read->input_hashes == written.input_hashes);
  CHECK(read->to_draft(std::nullopt).body == draft.body);
}

TEST_CASE("typed events refuse other kinds and read older bodies' missing fields as empty", "[ledger][events]") {
  ledger::Event other;
  other.kind = "exchange.response";
  other.body = {{"path", "media/x.mp4"}};
  CHECK_FALSE(ledger::MediaRecorded::from_event(other));
  CHECK_FALSE(ledger::StepFinished::from_event(other));

  ledger::Event old_render;
  old_render.kind = "media.recorded";
  old_render.body = {{"shot_id", "S01_SH01"}, {"resolution", "final"}, {"attempt", 1}, {"path", "media/a.mp4"}};
  const auto render = ledger::MediaRecorded::from_event(old_render);
  REQUIRE(render);
  CHECK(render->inputs.empty());
  CHECK(render->input_hashes == json::object());
}

TEST_CASE("a step.finished reads its grade when it carries one", "[ledger][events]") {
  ledger::Event graded;
  graded.kind = "step.finished";
  graded.body = {
      {"step", "qc-grader/S01_SH01/proxy@abc"},
      {"loop", "qc-grader/S01_SH01/proxy"},
      {"skill", "qc-grader"},
      {"attempt", 2},
      {"tier", "t2"},
      {"verdict", "FIX"},
      {"reasons", {"total 9 < 10"}},
      {"outputs", "QC_BATCH_S01_v002.csv"},
      {"shot_attempt", {{"shot_id", "S01_SH01"}, {"resolution", "proxy"}, {"attempt", 2}, {"wave", "S01/proxy#2"}}}};
  const auto step = ledger::StepFinished::from_event(graded);
  REQUIRE(step);
  CHECK(step->verdict == "FIX");
  CHECK(step->reasons == json::array({"total 9 < 10"}));
  REQUIRE(step->shot_attempt);
  CHECK(step->shot_attempt->wave == "S01/proxy#2");
  CHECK(step->shot_attempt->attempt == 2);
  CHECK(step->shot_attempt->inputs.empty());

  graded.body.erase("shot_attempt");
  graded.body["verdict"] = "ACCEPTED";
  graded.body.erase("reasons");
  const auto accepted = ledger::StepFinished::from_event(graded);
  REQUIRE(accepted);
  CHECK_FALSE(accepted->shot_attempt);
  CHECK(accepted->reasons == json::array());
}

TEST_CASE("an exchange.intent body is the documented one, flagged a possible duplicate only when it is one",
          "[ledger][events]") {
  ledger::ExchangeIntent written{.key = "qc-grader/S01_SH02/proxy@0123",
                                 .reservation_id = "qc-grader/S01_SH02/proxy@0123#1",
                                 .skill = "qc-grader S01_SH02 proxy",
                                 .model = "sim-vision",
                                 .tier = "t2",
                                 .route = "default tier",
                                 .request_sha256 = std::string(64, 'b'),
                                 .request_bytes = 2048};
  const json documented = {{"key", "qc-grader/S01_SH02/proxy@0123"},
                           {"reservation_id", "qc-grader/S01_SH02/proxy@0123#1"},
                           {"skill", "qc-grader S01_SH02 proxy"},
                           {"model", "sim-vision"},
                           {"tier", "t2"},
                           {"route", "default tier"},
                           {"request_sha256", std::string(64, 'b')},
                           {"request_bytes", 2048}};
  CHECK(written.to_draft().kind == "exchange.intent");
  CHECK(written.to_draft().body == documented);
  written.possible_duplicate = true;
  json flagged = documented;
  flagged["possible_duplicate"] = true;
  CHECK(written.to_draft().body == flagged);
  const std::optional<ledger::ExchangeIntent> read =
      ledger::ExchangeIntent::from_event(as_recorded(written.to_draft()));
  REQUIRE(read);
  CHECK(read->to_draft().body == flagged);
  CHECK(read->possible_duplicate);
  CHECK(read->request_bytes == 2048);
  // An intent recorded before reservations were named reads with none.
  ledger::Event older;
  older.kind = "exchange.intent";
  older.body = {{"key", "k"}, {"tier", "t1"}};
  CHECK(ledger::ExchangeIntent::from_event(older)->reservation_id.empty());
  CHECK_FALSE(ledger::ExchangeIntent::from_event(as_recorded(ledger::ExchangeResponse::to_draft({}, {}))));
}

TEST_CASE("an exchange.response reads its usage and names the objects it vouches for", "[ledger][events]") {
  const json body = {{"key", "generate/S01_SH02/proxy#1"},
                     {"model", "sim-gen-mid"},
                     {"scene_id", "S01"},
                     {"cost_micro_usd", 180000},
                     {"media_sha256", std::string(64, 'c')},
                     {"wire_request_sha256", std::string(64, 'd')},
                     {"seconds_billed", 4.5},
                     {"retries", 2},
                     {"endpoint_host", "127.0.0.1"},
                     {"attempts", json::array({{{"status", 503}}, {{"status", 503}}, {{"status", 200}}})}};
  ledger::ReservationEnd settled;
  settled.id = "generate/S01_SH02/proxy#1#1";
  settled.settled_micro_usd = 180000;
  const ledger::EventDraft draft = ledger::ExchangeResponse::to_draft(body, settled);
  CHECK(draft.kind == "exchange.response");
  CHECK(draft.body == body);  // open: each backend's trace stays as the exchange built it
  REQUIRE(draft.reservation_end);
  CHECK(draft.reservation_end->id == settled.id);
  const std::optional<ledger::ExchangeResponse> read = ledger::ExchangeResponse::from_event(as_recorded(draft));
  REQUIRE(read);
  CHECK(read->cost_micro_usd == 180000);
  CHECK(read->retries == 2);
  CHECK(read->seconds_billed == 4.5);
  CHECK(read->input_tokens == 0);
  CHECK(read->endpoint_host == "127.0.0.1");
  CHECK(read->objects() == std::vector<std::pair<std::string, std::string>>{
                               {"media_sha256", std::string(64, 'c')}, {"wire_request_sha256", std::string(64, 'd')}});
  CHECK(read->body == body);
}

TEST_CASE("the reservation an event made is read from its body, and only a whole one", "[ledger][events]") {
  ledger::Event reserved;
  reserved.kind = "budget.reserved";
  reserved.body = {
      {"reservation", ledger::Reservation{"k#1", "S01", "S01_SH02", 5000, "generate S01_SH02 proxy"}.to_json()}};
  const std::optional<ledger::Reservation> r = ledger::reservation_of(reserved);
  REQUIRE(r);
  CHECK(r->id == "k#1");
  CHECK(r->shot_id == "S01_SH02");
  CHECK(r->amount_micro_usd == 5000);
  reserved.body = {{"reservation", {{"id", "k#2"}}}};  // no amount: not a reservation the ledger made
  CHECK_FALSE(ledger::reservation_of(reserved));
  reserved.body = json::array();
  CHECK_FALSE(ledger::reservation_of(reserved));
}
