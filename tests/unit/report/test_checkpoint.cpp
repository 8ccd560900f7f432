// The fold checkpoint (docs/formats/checkpoint.md, format 9): the read model restored from it, with
// and without events after it, is the model a fold of every event builds; a checkpoint cut short,
// malformed inside a whole file, or of an older format is not used, and the model is the same.
// The run's own record (engine::read_record) restored from it and the events after it is the fold
// of every event; one the run cannot use leaves it that fold; a wrong one is caught by the check
// every e2e run makes (RestoredRecordCheck::against_whole_fold).

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "../src/engine/engine_internal.hpp"
#include "avps/backends/registry.hpp"
#include "avps/backends/sim_backend.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/diag.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/byte_codec.hpp"
#include "avps/engine/engine.hpp"
#include "avps/engine/fold_checkpoint.hpp"
#include "avps/ledger/events.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/models.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/router.hpp"
#include "avps/project/project.hpp"
#include "avps/report/read_model.hpp"
#include "avps/skills/registry.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
using nlohmann::json;
namespace fs = std::filesystem;

namespace checkpoint_test {

class SilentObserver : public engine::Observer {
 public:
  void progress(const engine::Progress& /*progress*/) override {}
};

// The demo, run on the sim without latency, as `avps run` runs it (without writing a checkpoint:
// the test writes it where it wants one).
struct DemoFilm {
  testing::TempDir tmp;
  testing::FixedClock clock;
  fs::path dir = tmp.path() / "film";

  DemoFilm() {
    fs::copy(fs::path(AVPS_SOURCE_DATA_DIR) / "examples" / "demo_short_film", dir, fs::copy_options::recursive);
    auto config = core::parse_json(*core::read_file(dir / "avps.json"), "avps.json");
    REQUIRE(config.ok());
    // Still images, not MP4s: renders without an ffmpeg start each.
    (*config)["sim"] = {{"latency_ms", 0}, {"media", "image"}};
    std::ofstream(dir / "avps.json") << config->dump(2);
    REQUIRE(project::Project::init(dir, "", {}, clock).ok());
  }

  void run(const std::string& until) {
    auto project = project::Project::open(dir, ledger::OpenMode::read_write, {}, clock);
    REQUIRE(project.ok());
    auto registry = skills::Registry::load(project::data_dir(), &dir);
    REQUIRE(registry.ok());
    auto models = governance::ModelsFile::load(project::data_dir(), dir, (*project)->config());
    REQUIRE(models.ok());
    auto made = backends::SimBackend::from_config((*project)->config().document);
    REQUIRE(made.ok());
    std::shared_ptr<backends::Backend> sim = std::move(made).value();
    std::map<std::string, std::shared_ptr<backends::Backend>, std::less<>> by_model;
    for (const governance::Model& m : models->models()) {
      by_model[m.id] = sim;
    }
    auto backends = backends::BackendRegistry::of(std::move(by_model));
    governance::Router router(std::move(models).value());
    auto overrides = governance::Overrides::read((*project)->ledger());
    REQUIRE(overrides.ok());
    REQUIRE((*project)->ledger().begin_run("run", json::object()).ok());
    const project::Budget configured = (*project)->config().budget;
    governance::BudgetGovernor governor((*project)->ledger(), overrides->effective_budget(configured),
                                        [&overrides, configured](const std::string& scene, const std::string& shot) {
                                          return overrides->caps_for(configured, scene, shot);
                                        });
    SilentObserver observer;
    engine::Engine engine(**project, *registry, *backends, router, governor, observer);
    auto outcome = engine.run(engine::RunOptions{until, "", 1});
    INFO((outcome ? std::string() : outcome.error().message));
    REQUIRE(outcome.ok());
    REQUIRE((*project)->ledger().end_run("DONE", json::object()).ok());
  }

  report::CheckpointWritten write_checkpoint() {
    auto project = project::Project::open(dir, ledger::OpenMode::read_write, {}, clock);
    REQUIRE(project.ok());
    auto written = report::write_checkpoint(**project);
    INFO((written ? std::string() : written.error().message));
    REQUIRE(written.ok());
    return *written;
  }

  // The model's JSON, read as `folds` says, and the checkpoint debug lines the read wrote.
  std::pair<std::string, std::string> model(report::Folds folds) {
    std::mutex mutex;
    std::string lines;
    core::diag::Options options;
    options.terminal_level = core::diag::Level::debug;
    options.terminal = [&](core::diag::Level, std::string_view message) {
      std::lock_guard<std::mutex> lock(mutex);
      if (message.find("fold checkpoint") != std::string_view::npos) {
        lines += std::string(message) + "\n";
      }
    };
    REQUIRE(core::diag::configure(options).ok());
    auto project = project::Project::open(dir, ledger::OpenMode::read_only, {}, clock);
    REQUIRE(project.ok());
    auto view = report::read_project(**project, folds);
    std::ignore = core::diag::configure({});
    INFO((view ? std::string() : view.error().message));
    REQUIRE(view.ok());
    return {report::to_json(*view).dump(), lines};
  }

  fs::path checkpoint() const { return report::checkpoint_path(dir); }
};

std::string bytes_of(const fs::path& path) { return core::read_file(path).value(); }
void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// The file's format line split into its words, and its three sections.
struct Parts {
  std::vector<std::string> line;
  std::string fold, record, run;
};
Parts parts_of(const std::string& file) {
  Parts parts;
  const size_t eol = file.find('\n');
  std::istringstream words(file.substr(0, eol));
  for (std::string word; words >> word;) {
    parts.line.push_back(word);
  }
  REQUIRE(parts.line.size() == 8);
  const size_t fold_size = std::stoul(parts.line[2]);
  const size_t record_size = std::stoul(parts.line[4]);
  parts.fold = file.substr(eol + 1, fold_size);
  parts.record = file.substr(eol + 1 + fold_size, record_size);
  parts.run = file.substr(eol + 1 + fold_size + record_size);
  return parts;
}
// A file of these parts, each section's size and hash made to match it (what a bug, not a torn
// write, would leave).
std::string file_of(Parts parts) {
  const std::string* sections[] = {&parts.fold, &parts.record, &parts.run};
  for (size_t i = 0; i < 3; ++i) {
    parts.line[2 + 2 * i] = std::to_string(sections[i]->size());
    parts.line[3 + 2 * i] = core::sha256_hex(*sections[i]);
  }
  std::string out;
  for (const std::string& word : parts.line) {
    out += (out.empty() ? "" : " ") + word;
  }
  return out + "\n" + parts.fold + parts.record + parts.run;
}

}  // namespace checkpoint_test

using namespace checkpoint_test;

TEST_CASE("the model from a checkpoint of this format equals the fold of every event, with or without events after it",
          "[report][checkpoint]") {
  DemoFilm film;
  film.run("planning");
  const report::CheckpointWritten early = film.write_checkpoint();
  REQUIRE(early.seq > 100);
  CHECK(early.bytes > 0);
  const std::string early_file = bytes_of(film.checkpoint());
  CHECK(early_file.rfind("avps-fold-checkpoint 9 ", 0) == 0);

  const auto [reference, none] = film.model(report::Folds::record);
  CHECK(none.empty());  // the whole fold never looks at the checkpoint
  const auto [restored, used] = film.model(report::Folds::checkpoint);
  CHECK(used.find("as of event " + std::to_string(early.seq) + " used: 0 events folded after it") !=
        std::string::npos);
  CHECK(restored == reference);

  // More events, proxies rendered and graded among them: the checkpoint is now older than the
  // ledger; its tail is folded onto it.
  film.run("shots_proxy");
  const auto [later_reference, later_none] = film.model(report::Folds::record);
  CHECK(later_reference != reference);
  const auto [with_tail, tail_used] = film.model(report::Folds::checkpoint);
  CHECK(tail_used.find("as of event " + std::to_string(early.seq) + " used: ") != std::string::npos);
  CHECK(tail_used.find("used: 0 events") == std::string::npos);
  CHECK(with_tail == later_reference);

  // Written again from the older one (its events since folded onto it), then read: the same.
  const report::CheckpointWritten later = film.write_checkpoint();
  CHECK(later.from_previous);
  CHECK(later.seq > early.seq);
  const auto [again, again_used] = film.model(report::Folds::checkpoint);
  CHECK(again_used.find("as of event " + std::to_string(later.seq) + " used: 0 events") != std::string::npos);
  CHECK(again == later_reference);
  // Nothing recorded since: nothing written.
  CHECK(film.write_checkpoint().bytes == 0);
}

TEST_CASE("a checkpoint whose stale-shot record is not one this avps saved is not used once events follow it",
          "[report][checkpoint]") {
  // Given a checkpoint, then events after it that may change the stale shots (a reader then works
  // them out again from the checkpoint's stale-shot record section)
  DemoFilm film;
  film.run("planning");
  film.write_checkpoint();
  const Parts parts = parts_of(bytes_of(film.checkpoint()));
  film.run("shots_proxy");
  const auto [reference, none] = film.model(report::Folds::record);
  const auto [restored, used] = film.model(report::Folds::checkpoint);
  REQUIRE(used.find(" used: ") != std::string::npos);  // the section as written is used
  CHECK(restored == reference);
  // When that section is cut short, followed by more bytes, or the run's whole record (the
  // flat encoding of every part), its hash made to match
  Parts cut_short = parts;
  cut_short.record.resize(parts.record.size() - 1);
  Parts grown = parts;
  grown.record += std::string(3, '\0');
  Parts whole_record = parts;
  whole_record.record = parts.run;
  for (const Parts* malformed : {&cut_short, &grown, &whole_record}) {
    write_bytes(film.checkpoint(), file_of(*malformed));
    // Then the checkpoint is not used and the model is the fold of every event
    const auto [model, lines] = film.model(report::Folds::checkpoint);
    INFO(lines);
    CHECK(lines.find("not used (malformed: its stale-shot record is not one this avps saved") != std::string::npos);
    CHECK(model == reference);
  }
}

TEST_CASE("a checkpoint cut short, malformed inside a whole file, or of an older format is not used, and the model holds",
          "[report][checkpoint]") {
  DemoFilm film;
  film.run("planning");
  film.write_checkpoint();
  const std::string whole = bytes_of(film.checkpoint());
  const auto [reference, none] = film.model(report::Folds::record);
  const Parts parts = parts_of(whole);

  auto expect_unused = [&](const std::string& file, const std::string& why) {
    write_bytes(film.checkpoint(), file);
    const auto [model, lines] = film.model(report::Folds::checkpoint);
    INFO(lines);
    CHECK(lines.find("not used (" + why) != std::string::npos);
    CHECK(lines.find(" used: ") == std::string::npos);
    CHECK(model == reference);
  };
  SECTION("the file cut short") {
    for (size_t keep : {size_t{0}, size_t{40}, whole.find('\n') + 1, whole.size() / 2, whole.size() - 1}) {
      INFO("kept " << keep << " of " << whole.size() << " bytes");
      expect_unused(whole.substr(0, keep), keep <= whole.find('\n') ? "no format line" : "its length is not");
    }
  }
  SECTION("a byte of the fold changed") {
    std::string damaged = whole;
    damaged[whole.find('\n') + 1 + parts.fold.size() / 2] ^= 0x20;
    expect_unused(damaged, "its content does not match its sha256");
  }
  SECTION("the fold's Book cut short or followed by more, its hash made to match") {
    for (size_t cut : {size_t{1}, size_t{9}, parts.fold.size() / 3}) {
      INFO("the fold cut by " << cut << " bytes");
      Parts cut_short = parts;
      cut_short.fold.resize(parts.fold.size() - cut);
      expect_unused(file_of(cut_short), "malformed");
    }
    Parts grown = parts;
    grown.fold += std::string(3, '\0');
    expect_unused(file_of(grown), "malformed: its fold is not one this avps saved");
  }
  SECTION("an older format's line") {
    Parts older = parts;
    older.line[1] = std::to_string(engine::k_checkpoint_format_version - 1);
    expect_unused(file_of(older),
                  "not a format " + std::to_string(engine::k_checkpoint_format_version) + " checkpoint");
  }
  SECTION("the whole file put back is used again") {
    write_bytes(film.checkpoint(), whole);
    const auto [model, lines] = film.model(report::Folds::checkpoint);
    CHECK(lines.find("used: 0 events folded after it") != std::string::npos);
    CHECK(model == reference);
  }
}

namespace checkpoint_test {

// The run's record as Engine::run reads it (engine::read_record with the project), with the
// checkpoint debug lines it wrote.
struct RunRecord {
  Result<engine::Record> record;
  std::string lines;
};
RunRecord run_record(DemoFilm& film, engine::RestoredRecordCheck check) {
  std::mutex mutex;
  std::string lines;
  core::diag::Options options;
  options.terminal_level = core::diag::Level::debug;
  options.terminal = [&](core::diag::Level, std::string_view message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (message.find("fold checkpoint") != std::string_view::npos) {
      lines += std::string(message) + "\n";
    }
  };
  REQUIRE(core::diag::configure(options).ok());
  auto project = project::Project::open(film.dir, ledger::OpenMode::read_only, {}, film.clock);
  REQUIRE(project.ok());
  Result<engine::Record> record = engine::read_record(**project, check);
  std::ignore = core::diag::configure({});
  return {std::move(record), lines};
}

// The record of every event (no checkpoint looked at).
engine::Record whole_record(DemoFilm& film) {
  auto project = project::Project::open(film.dir, ledger::OpenMode::read_only, {}, film.clock);
  REQUIRE(project.ok());
  auto record = engine::read_record((*project)->ledger());
  REQUIRE(record.ok());
  return std::move(record).value();
}

// What the run reads of a record: every member Engine::run and its walk take from it.
void check_same_record(const engine::Record& a, const engine::Record& b) {
  CHECK(a.steps == b.steps);
  CHECK(a.loops == b.loops);
  CHECK(a.intent_reservations == b.intent_reservations);
  CHECK(a.fallbacks == b.fallbacks);
  CHECK(a.tickets == b.tickets);
  CHECK(a.written_by == b.written_by);
  CHECK(a.cut_short == b.cut_short);
  CHECK(a.world_after == b.world_after);
  CHECK(a.revisions_done == b.revisions_done);
  CHECK(a.media == b.media);
  CHECK(a.renders == b.renders);
  CHECK(a.media_paths == b.media_paths);
  CHECK(a.shot_attempts == b.shot_attempts);
  CHECK(a.analyzer_runs == b.analyzer_runs);
  CHECK(a.rounds == b.rounds);
  CHECK(a.waves_written == b.waves_written);
  CHECK(a.wave_of == b.wave_of);
  CHECK(a.triggers_fired == b.triggers_fired);
  CHECK(a.firing_verdicts == b.firing_verdicts);
  CHECK(a.stopped_loops == b.stopped_loops);
  CHECK(a.open_stops == b.open_stops);
  CHECK(a.caching_by_scene == b.caching_by_scene);
  REQUIRE(a.exchanges.size() == b.exchanges.size());
  for (auto x = a.exchanges.begin(), y = b.exchanges.begin(); x != a.exchanges.end(); ++x, ++y) {
    CHECK(x->first == y->first);
    CHECK(x->second.intents == y->second.intents);
    CHECK(x->second.reservations == y->second.reservations);
    REQUIRE(x->second.response.has_value() == y->second.response.has_value());
    if (x->second.response) {
      CHECK(x->second.response->seq == y->second.response->seq);
      CHECK(x->second.response->scene_id == y->second.response->scene_id);
      CHECK(x->second.response->cached_input_tokens == y->second.response->cached_input_tokens);
      CHECK(x->second.response->caching_saved_micro_usd == y->second.response->caching_saved_micro_usd);
    }
  }
}

// Appends `drafts` in a run of their own (as another command would); returns the seq of the last.
int64_t append(DemoFilm& film, std::vector<ledger::EventDraft> drafts) {
  auto project = project::Project::open(film.dir, ledger::OpenMode::read_write, {}, film.clock);
  REQUIRE(project.ok());
  REQUIRE((*project)->ledger().begin_run("test", json::object()).ok());
  int64_t last = 0;
  if (!drafts.empty()) {
    auto committed = (*project)->ledger().commit(std::move(drafts));
    REQUIRE(committed.ok());
    last = committed->back().seq;
  }
  REQUIRE((*project)->ledger().end_run("DONE", json::object()).ok());
  return last;
}

// A hard stop of the scene S01's plausibility loop, as the engine records one.
ledger::EventDraft hard_stop() {
  const json body = {{"skill", "plausibility-auditor"},
                     {"kind", "gate"},
                     {"loop", "plausibility-auditor/S01"},
                     {"scope", {{"scene_id", "S01"}}},
                     {"reason", "plausibility-auditor failed its gate 3 times"},
                     {"findings", {"plaus_total 5 < 7"}},
                     {"inputs", "SCENES_v001.csv"}};
  ledger::LogRow row;
  row.skill_name = "plausibility-auditor";
  row.outcome = "STOP";
  row.notes = body.value("reason", "");
  return ledger::EventDraft{.kind = "run.hard_stop", .body = body, .row = row};
}

// The intent of a call (`possible_duplicate`: recorded again by the run that resumed it).
ledger::EventDraft intent(bool possible_duplicate) {
  ledger::ExchangeIntent call{.key = "plausibility-auditor/S01@00ff",
                              .reservation_id = "plausibility-auditor/S01@00ff#1",
                              .skill = "plausibility-auditor S01",
                              .model = "sim-text",
                              .tier = "t2",
                              .route = "default tier",
                              .request_sha256 = std::string(64, 'c'),
                              .request_bytes = 100,
                              .possible_duplicate = possible_duplicate};
  return call.to_draft();
}

}  // namespace checkpoint_test

TEST_CASE("the run's record restored from the checkpoint and the events after it equals the fold of every event",
          "[engine][report][checkpoint]") {
  // Given a production with a hard stop and a call whose intent has no answer, checkpointed; then
  // a decision on the stop, the call's intent recorded again by a run that resumed it, and the
  // next phases run.
  DemoFilm film;
  film.run("narrative");
  const int64_t stop_seq = append(film, {hard_stop()});
  append(film, {intent(false)});
  const report::CheckpointWritten early = film.write_checkpoint();
  REQUIRE(early.seq > stop_seq);
  {
    auto project = project::Project::open(film.dir, ledger::OpenMode::read_write, {}, film.clock);
    REQUIRE(project.ok());
    auto decided = governance::record_override(
        **project, {"STOP-" + std::to_string(stop_seq), "one more pass with the new research", std::nullopt, "2",
                    std::nullopt});
    INFO((decided ? std::string() : decided.error().message));
    REQUIRE(decided.ok());
  }
  append(film, {intent(true)});
  film.run("planning");

  // When the run reads its record (checked against the fold of every event, as in every e2e run).
  RunRecord checked = run_record(film, engine::RestoredRecordCheck::against_whole_fold);
  INFO(checked.lines);
  REQUIRE(checked.record.ok());
  // Then it came from the checkpoint and the events after it, and it is the fold of every event.
  CHECK(checked.lines.find("fold checkpoint as of event " + std::to_string(early.seq) + " used by the run: ") !=
        std::string::npos);
  CHECK(checked.lines.find("used by the run: 0 events") == std::string::npos);
  const engine::Record whole = whole_record(film);
  CHECK(whole.exchanges.at("plausibility-auditor/S01@00ff").intents == 2);
  CHECK(whole.open_stops.count("plausibility-auditor/S01") == 0);  // overridden after the checkpoint
  check_same_record(*checked.record, whole);
  RunRecord unchecked = run_record(film, engine::RestoredRecordCheck::none);
  REQUIRE(unchecked.record.ok());
  check_same_record(*unchecked.record, whole);

  // A checkpoint written from the older one (its run's record folded on from it), then a run that
  // did nothing: that checkpoint is kept as it is, and the record restored from it and the run's two
  // events is still the fold.
  const report::CheckpointWritten later = film.write_checkpoint();
  CHECK(later.from_previous);
  const std::string after_planning = bytes_of(film.checkpoint());
  append(film, {});  // nothing but a run.started and a run.finished
  const report::CheckpointWritten noop = film.write_checkpoint();
  CHECK(noop.kept_with_tail == 2);
  CHECK(noop.seq == later.seq);
  CHECK(noop.bytes == 0);
  CHECK(bytes_of(film.checkpoint()) == after_planning);
  RunRecord from_noop = run_record(film, engine::RestoredRecordCheck::against_whole_fold);
  INFO(from_noop.lines);
  REQUIRE(from_noop.record.ok());
  CHECK(from_noop.lines.find("as of event " + std::to_string(later.seq) + " used by the run: 2 events") !=
        std::string::npos);
  check_same_record(*from_noop.record, whole_record(film));
}

TEST_CASE("a checkpoint the run cannot use leaves it the fold of every event", "[engine][report][checkpoint]") {
  DemoFilm film;
  film.run("narrative");
  film.write_checkpoint();
  film.run("planning");  // events after the checkpoint
  const std::string whole_file = bytes_of(film.checkpoint());
  const Parts parts = parts_of(whole_file);
  const engine::Record whole = whole_record(film);

  auto expect_unused = [&](const std::string& file, const std::string& why) {
    write_bytes(film.checkpoint(), file);
    RunRecord read = run_record(film, engine::RestoredRecordCheck::against_whole_fold);
    INFO(read.lines);
    REQUIRE(read.record.ok());
    CHECK(read.lines.find("not used by the run (" + why) != std::string::npos);
    CHECK(read.lines.find("used by the run: ") == std::string::npos);
    check_same_record(*read.record, whole);
  };
  SECTION("a byte of the run's record changed") {
    std::string damaged = whole_file;
    damaged[whole_file.size() - parts.run.size() / 2] ^= 0x20;
    expect_unused(damaged, "its run's record does not match its sha256: damaged");
  }
  SECTION("a byte of the fold changed") {
    std::string damaged = whole_file;
    damaged[whole_file.find('\n') + 1 + parts.fold.size() / 2] ^= 0x20;
    expect_unused(damaged, "its content does not match its sha256: damaged");
  }
  SECTION("the file cut short") {
    expect_unused(whole_file.substr(0, whole_file.size() - 1), "its length is not the one its format line gives");
  }
  SECTION("an older format") {
    Parts older = parts;
    older.line[1] = std::to_string(engine::k_checkpoint_format_version - 1);
    expect_unused(file_of(older),
                  "not a format " + std::to_string(engine::k_checkpoint_format_version) + " checkpoint");
  }
  SECTION("made as of an event the ledger holds with another hash") {
    core::ByteReader head(parts.fold);
    engine::CheckpointHead changed{head.text(), head.text(), head.i64(), head.text(), head.text()};
    REQUIRE(head.ok());
    changed.hash = std::string(64, '0');
    core::ByteWriter fold;
    engine::write_checkpoint_head(fold, changed);
    Parts other = parts;
    other.fold = fold.bytes() + parts.fold.substr(head.consumed());
    expect_unused(file_of(other), "the ledger's event " + std::to_string(changed.seq) + " is not the one");
  }
  SECTION("its run's record not one this avps saved, its hash made to match") {
    for (size_t cut : {size_t{1}, size_t{7}, parts.run.size() / 2}) {
      INFO("the run's record cut by " << cut << " bytes");
      Parts malformed = parts;
      malformed.run.resize(parts.run.size() - cut);
      expect_unused(file_of(malformed), "malformed: its run's record is not one this avps saved");
    }
    Parts grown = parts;
    grown.run += std::string(3, '\0');
    expect_unused(file_of(grown), "malformed: its run's record is not one this avps saved");
  }
  SECTION("an empty file") {
    expect_unused("", "no format line");
  }
  SECTION("no checkpoint") {
    fs::remove(film.checkpoint());
    RunRecord read = run_record(film, engine::RestoredRecordCheck::against_whole_fold);
    REQUIRE(read.record.ok());
    CHECK(read.lines.find("not used by the run (none)") != std::string::npos);
    check_same_record(*read.record, whole);
  }
}

TEST_CASE("a run's record restored wrong from a checkpoint whose hashes hold is an error under the check, naming "
          "the first member that differs",
          "[engine][report][checkpoint]") {
  // Given a checkpoint whose run's record lacks a step the record has (what a bug in a fold's
  // save or restore would leave: here the fold of every event up to the checkpoint but one
  // step.finished), its sections' hashes made to match, and events after it.
  DemoFilm film;
  film.run("narrative");
  const report::CheckpointWritten written = film.write_checkpoint();
  film.run("planning");
  Parts parts = parts_of(bytes_of(film.checkpoint()));
  {
    auto project = project::Project::open(film.dir, ledger::OpenMode::read_only, {}, film.clock);
    REQUIRE(project.ok());
    auto events = (*project)->ledger().events();
    REQUIRE(events.ok());
    engine::RecordFold wrong(engine::RecordParts::all);
    bool left_out = false;
    for (const ledger::Event& e : *events) {
      if (e.seq > written.seq) {
        break;
      }
      if (!left_out && e.kind == "step.finished") {
        left_out = true;
        continue;
      }
      wrong.add(e);
    }
    REQUIRE(left_out);
    core::ByteWriter saved;
    wrong.save(saved);
    parts.run = saved.take();
  }
  write_bytes(film.checkpoint(), file_of(parts));

  // Then without the check the run would go on from it (nothing else can tell), and with the
  // check (every e2e run) it is an error naming the first member that differs.
  RunRecord unchecked = run_record(film, engine::RestoredRecordCheck::none);
  REQUIRE(unchecked.record.ok());
  CHECK(unchecked.lines.find("used by the run: ") != std::string::npos);
  CHECK_FALSE(unchecked.record->steps == whole_record(film).steps);
  RunRecord checked = run_record(film, engine::RestoredRecordCheck::against_whole_fold);
  REQUIRE_FALSE(checked.record.ok());
  const std::string message = checked.record.error().message;
  INFO(message);
  // The first member (in the saved state's order) the left-out step changed.
  const size_t named = message.find("differs from the fold of every event in `");
  REQUIRE(named != std::string::npos);
  const std::string member = message.substr(named + 41, message.find('`', named + 41) - named - 41);
  CHECK(engine::RecordFold(engine::RecordParts::all).save().contains(member));
}

namespace checkpoint_test {

// The format line and sections as one document and one buffer make them: what the spilled writer
// must write, byte for byte.
std::string checkpoint_in_one_buffer(const std::vector<std::string>& sections) {
  std::string line = "avps-fold-checkpoint " + std::to_string(engine::k_checkpoint_format_version);
  std::string body;
  for (const std::string& section : sections) {
    line += " " + std::to_string(section.size()) + " " + core::sha256_hex(section);
    body += section;
  }
  return line + "\n" + body;
}

size_t files_in(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace checkpoint_test

TEST_CASE("a checkpoint written part by part through its spill file is the one buffer's bytes, and leaves no spill",
          "[checkpoint]") {
  using engine::CheckpointSection;
  testing::TempDir tmp;
  fs::create_directories(tmp.path() / ".avps");
  // Given sections of several parts, larger than the writer's buffer, and a fold head set last
  std::string book(engine::SectionParts::k_part_bytes * 2 + 17, 'b');
  for (size_t i = 0; i < book.size(); i += 7) {
    book[i] = static_cast<char>('a' + i % 23);
  }
  core::ByteWriter book_bytes;  // the Book's values in one buffer
  for (size_t i = 0; i < book.size(); i += 4096) {
    book_bytes.text(std::string_view(book).substr(i, 4096));
  }
  const std::string head = "head and stale shots, known last";
  const std::string stale_record = "the stale-shot record's CBOR";
  const std::string run_record(engine::SectionParts::k_part_bytes + 3, 'r');
  const std::string expected =
      checkpoint_test::checkpoint_in_one_buffer({head + book_bytes.bytes(), stale_record, run_record});
  {
    auto writer = engine::CheckpointWriter::create(tmp.path());
    REQUIRE(writer.ok());
    engine::SectionParts parts(writer->sink(CheckpointSection::fold));
    for (size_t i = 0; i < book.size(); i += 4096) {
      parts.out().text(std::string_view(book).substr(i, 4096));
      parts.cut();
    }
    CHECK(parts.take().empty());  // every part went to the writer
    writer->write(CheckpointSection::stale_record, stale_record);
    writer->set_head(CheckpointSection::fold, head);
    writer->write(CheckpointSection::run_record, std::string_view(run_record).substr(0, 5));
    writer->write(CheckpointSection::run_record, std::string_view(run_record).substr(5));
    CHECK(checkpoint_test::files_in(tmp.path() / ".avps") == 1);  // the spill, while it is written
    // When it is committed
    auto bytes = writer->commit();
    // Then the file is what one buffer of the same sections makes
    REQUIRE(bytes.ok());
    CHECK(*bytes == expected.size());
  }
  CHECK(*core::read_file(engine::checkpoint_path(tmp.path())) == expected);
  // and the spill went with its writer
  CHECK(checkpoint_test::files_in(tmp.path() / ".avps") == 1);
}

TEST_CASE("a checkpoint whose sections come out of order is not written, and the old one stays", "[checkpoint]") {
  using engine::CheckpointSection;
  testing::TempDir tmp;
  fs::create_directories(tmp.path() / ".avps");
  REQUIRE(core::write_file_atomic(engine::checkpoint_path(tmp.path()), "the old one", core::Overwrite::yes,
                                  core::Durability::cached)
              .ok());
  auto writer = engine::CheckpointWriter::create(tmp.path());
  REQUIRE(writer.ok());
  // Given a part of the fold section written after the run's record
  writer->write(CheckpointSection::run_record, "record");
  writer->write(CheckpointSection::fold, "book");
  // When it is committed, then it is an error, and the old checkpoint stays as it was
  CHECK_FALSE(writer->commit().ok());
  CHECK(*core::read_file(engine::checkpoint_path(tmp.path())) == "the old one");
}
