// The fold checkpoint (docs/formats/checkpoint.md, format 5): the read model restored from it, with
// and without events after it, is the model a fold of every event builds; a checkpoint cut short,
// malformed inside a whole file, or of an older format is not used, and the model is the same.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "avps/backends/registry.hpp"
#include "avps/backends/sim_backend.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/diag.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/engine/engine.hpp"
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

// The file's format line split into its words, and its two sections.
struct Parts {
  std::vector<std::string> line;
  std::string fold, record;
};
Parts parts_of(const std::string& file) {
  Parts parts;
  const size_t eol = file.find('\n');
  std::istringstream words(file.substr(0, eol));
  for (std::string word; words >> word;) {
    parts.line.push_back(word);
  }
  REQUIRE(parts.line.size() == 6);
  const size_t fold_size = std::stoul(parts.line[2]);
  parts.fold = file.substr(eol + 1, fold_size);
  parts.record = file.substr(eol + 1 + fold_size);
  return parts;
}
// A file of these parts, its fold's size and hash made to match it (what a bug, not a torn write,
// would leave).
std::string file_of(Parts parts) {
  parts.line[2] = std::to_string(parts.fold.size());
  parts.line[3] = core::sha256_hex(parts.fold);
  std::string out;
  for (const std::string& word : parts.line) {
    out += (out.empty() ? "" : " ") + word;
  }
  return out + "\n" + parts.fold + parts.record;
}

}  // namespace checkpoint_test

using namespace checkpoint_test;

TEST_CASE("the model from a format 5 checkpoint equals the fold of every event, with or without events after it",
          "[report][checkpoint]") {
  DemoFilm film;
  film.run("planning");
  const report::CheckpointWritten early = film.write_checkpoint();
  REQUIRE(early.seq > 100);
  CHECK(early.bytes > 0);
  const std::string early_file = bytes_of(film.checkpoint());
  CHECK(early_file.rfind("avps-fold-checkpoint 5 ", 0) == 0);

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

TEST_CASE("a checkpoint cut short, malformed inside a whole file, or of format 3 is not used, and the model holds",
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
    older.line[1] = "4";
    expect_unused(file_of(older), "not a format 5 checkpoint");
  }
  SECTION("the whole file put back is used again") {
    write_bytes(film.checkpoint(), whole);
    const auto [model, lines] = film.model(report::Folds::checkpoint);
    CHECK(lines.find("used: 0 events folded after it") != std::string::npos);
    CHECK(model == reference);
  }
}
