// core::diag (diag.hpp): where diagnostic lines go, by level; the rotating file and its cap; a file
// that cannot be opened; lines from many threads. Every test puts the configuration back to
// "nowhere" when it ends.

#include <catch2/catch.hpp>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "avps/core/diag.hpp"
#include "avps/core/fs.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
namespace diag = avps::core::diag;
namespace fs = std::filesystem;

namespace {

// What a terminal writer was handed.
struct Captured {
  std::mutex mutex;
  std::vector<std::pair<diag::Level, std::string>> lines;

  diag::TerminalWriter writer() {
    return [this](diag::Level level, std::string_view message) {
      std::lock_guard<std::mutex> lock(mutex);
      lines.emplace_back(level, std::string(message));
    };
  }
};

struct ResetDiag {
  ~ResetDiag() { std::ignore = diag::configure({}); }
};

size_t count_lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) {
    n += c == '\n' ? 1 : 0;
  }
  return n;
}

}  // namespace

TEST_CASE("AVPS_LOG's words name the levels, in any case", "[diag]") {
  CHECK(diag::parse_level("debug") == diag::Level::debug);
  CHECK(diag::parse_level("INFO") == diag::Level::info);
  CHECK(diag::parse_level("Warn") == diag::Level::warn);
  CHECK(diag::parse_level("off") == diag::Level::off);
  CHECK_FALSE(diag::parse_level("warning").has_value());
  CHECK_FALSE(diag::parse_level("").has_value());
  CHECK(diag::level_name(diag::Level::warn) == "warn");
}

TEST_CASE("diagnostics go nowhere until configured, then to the terminal from its level up", "[diag]") {
  ResetDiag reset;
  Captured captured;
  REQUIRE(diag::configure({}).ok());
  CHECK_FALSE(diag::enabled(diag::Level::warn));
  diag::warn("unseen");

  diag::Options options;
  options.terminal_level = diag::Level::info;
  options.terminal = captured.writer();
  REQUIRE(diag::configure(options).ok());
  CHECK_FALSE(diag::enabled(diag::Level::debug));
  CHECK(diag::enabled(diag::Level::info));
  diag::debug("too fine");
  diag::info("one\nline\tonly");
  diag::warn("careful");

  REQUIRE(captured.lines.size() == 2);
  CHECK(captured.lines[0] == std::make_pair(diag::Level::info, std::string("one line only")));
  CHECK(captured.lines[1] == std::make_pair(diag::Level::warn, std::string("careful")));
}

TEST_CASE("the diagnostic file takes debug lines, rotates at its size and keeps max_files", "[diag]") {
  ResetDiag reset;
  testing::TempDir dir;
  diag::Options options;
  options.log_file = dir.path() / "diag.log";
  options.max_bytes = 1000;
  options.max_files = 2;
  REQUIRE(diag::configure(options).ok());
  CHECK(diag::enabled(diag::Level::debug));
  for (int i = 0; i < 100; ++i) {
    diag::debug("line " + std::to_string(i) + " " + std::string(40, '.'));
  }
  REQUIRE(diag::configure({}).ok());

  CHECK(fs::exists(dir.path() / "diag.log"));
  CHECK(fs::exists(dir.path() / "diag.1.log"));
  CHECK_FALSE(fs::exists(dir.path() / "diag.2.log"));
  for (const char* name : {"diag.log", "diag.1.log"}) {
    INFO(name);
    CHECK(fs::file_size(dir.path() / name) <= 1000);
  }
  // The newest line is in the current file, with its time and level
  Result<std::string> current = core::read_file(dir.path() / "diag.log");
  REQUIRE(current.ok());
  CHECK(current->find(" debug [") != std::string::npos);
  CHECK(current->find("line 99 ") != std::string::npos);
  CHECK(current->find('Z') == 23);  // "2026-11-25T15:27:24.123Z ..."
}

TEST_CASE("a diagnostic file that cannot be opened is an io_error and the terminal still works", "[diag]") {
  ResetDiag reset;
  testing::TempDir dir;
  REQUIRE(core::write_file_atomic(dir.path() / "not-a-folder", "x", core::Overwrite::no, core::Durability::cached)
              .ok());
  Captured captured;
  diag::Options options;
  options.terminal_level = diag::Level::warn;
  options.terminal = captured.writer();
  options.log_file = dir.path() / "not-a-folder" / "diag.log";

  Result<void> configured = diag::configure(options);
  REQUIRE_FALSE(configured.ok());
  CHECK(configured.error().code == ErrorCode::io_error);
  CHECK(configured.error().message.find("diag.log") != std::string::npos);

  diag::warn("still here");
  CHECK(captured.lines.size() == 1);
}

TEST_CASE("lines from many threads are whole lines", "[diag]") {
  ResetDiag reset;
  testing::TempDir dir;
  diag::Options options;
  options.log_file = dir.path() / "diag.log";
  REQUIRE(diag::configure(options).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 50; ++i) {
        diag::info("thread " + std::to_string(t) + " line " + std::to_string(i) + " end");
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  REQUIRE(diag::configure({}).ok());
  Result<std::string> text = core::read_file(dir.path() / "diag.log");
  REQUIRE(text.ok());
  CHECK(count_lines(*text) == 200);
  size_t start = 0;
  for (size_t end = text->find('\n'); end != std::string::npos; end = text->find('\n', start)) {
    const std::string line = text->substr(start, end - start);
    INFO(line);
    CHECK(line.size() > 4);
    CHECK(line.substr(line.size() - 4) == " end");
    start = end + 1;
  }
}
