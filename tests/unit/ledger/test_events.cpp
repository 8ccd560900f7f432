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
