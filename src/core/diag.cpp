#include "avps/core/diag.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>

namespace avps::core::diag {

namespace {

// UTC like the ledger's timestamps, then the level, the thread (calls run on --jobs workers) and
// the message: "2026-11-25T15:27:24.123Z debug [4242] ...".
constexpr const char* k_file_pattern = "%Y-%m-%dT%H:%M:%S.%eZ %l [%t] %v";
// spdlog refuses more rotated files than this.
constexpr size_t k_spdlog_max_files = 200'000;

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::debug:
      return spdlog::level::debug;
    case Level::info:
      return spdlog::level::info;
    case Level::warn:
      return spdlog::level::warn;
    case Level::off:
      return spdlog::level::off;
  }
  return spdlog::level::off;
}

Level from_spdlog(spdlog::level::level_enum level) {
  if (level <= spdlog::level::debug) {
    return Level::debug;
  }
  if (level == spdlog::level::info) {
    return Level::info;
  }
  return level == spdlog::level::off ? Level::off : Level::warn;
}

// Hands the bare message to the cli's writer, which owns the terminal and its format.
class TerminalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit TerminalSink(TerminalWriter writer) : m_writer(std::move(writer)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    m_writer(from_spdlog(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  TerminalWriter m_writer;
};

// The configuration in effect. Lines are written under the mutex, so configure() can swap the
// logger knowing no thread is still writing through the old one. A diagnostic line is rare (one
// per HTTP attempt), so the lock costs nothing that matters.
struct State {
  std::mutex mutex;
  std::shared_ptr<spdlog::logger> logger;  // null: nowhere
};

State& state() {
  static State s;
  return s;
}

// The lowest level any sink takes, as an int of Level: the lock-free check of enabled().
std::atomic<int> g_threshold{static_cast<int>(Level::off)};

// One line: control characters (a provider's error text may hold newlines or escapes) become
// spaces. Bytes of UTF-8 sequences are left as they are.
std::string one_line(std::string_view message) {
  std::string line(message);
  for (char& c : line) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      c = ' ';
    }
  }
  return line;
}

}  // namespace

std::string_view level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::off:
      return "off";
  }
  return "off";
}

std::optional<Level> parse_level(std::string_view word) {
  std::string lower(word);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (Level level : {Level::debug, Level::info, Level::warn, Level::off}) {
    if (lower == level_name(level)) {
      return level;
    }
  }
  return std::nullopt;
}

Result<void> configure(const Options& options) {
  // The previous configuration goes first (its file closed), so a file reopened at the same path
  // is never held twice. Lines logged while this runs go nowhere.
  std::shared_ptr<spdlog::logger> previous;
  {
    std::lock_guard<std::mutex> lock(state().mutex);
    previous = std::exchange(state().logger, nullptr);
    g_threshold = static_cast<int>(Level::off);
  }
  previous.reset();

  std::vector<spdlog::sink_ptr> sinks;
  Level threshold = Level::off;
  if (options.terminal && options.terminal_level != Level::off) {
    auto terminal = std::make_shared<TerminalSink>(options.terminal);
    terminal->set_level(to_spdlog(options.terminal_level));
    sinks.push_back(std::move(terminal));
    threshold = options.terminal_level;
  }
  Result<void> opened = ok();
  if (!options.log_file.empty() && options.file_level != Level::off) {
    try {
      auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          options.log_file.string(), std::max<size_t>(options.max_bytes, 1),
          std::clamp<size_t>(options.max_files, 1, k_spdlog_max_files + 1) - 1);
      file->set_formatter(std::make_unique<spdlog::pattern_formatter>(k_file_pattern, spdlog::pattern_time_type::utc));
      file->set_level(to_spdlog(options.file_level));
      sinks.push_back(std::move(file));
      threshold = std::min(threshold, options.file_level);
    } catch (const spdlog::spdlog_ex& e) {
      opened = make_error(ErrorCode::io_error,
                          "cannot open the diagnostic log " + options.log_file.string() + ": " + e.what());
    }
  }
  if (sinks.empty()) {
    return opened;
  }

  // Not registered with spdlog: its global registry and default logger stay untouched.
  auto logger = std::make_shared<spdlog::logger>("avps", sinks.begin(), sinks.end());
  logger->set_level(to_spdlog(threshold));
  logger->flush_on(spdlog::level::debug);  // a line is in the file when log() returns
  // spdlog's own handler prints to stderr; only the cli's writer may, and only once.
  auto told = std::make_shared<std::atomic<bool>>(false);
  logger->set_error_handler([writer = options.terminal, told](const std::string& what) {
    if (writer && !told->exchange(true)) {
      writer(Level::warn,
             "the diagnostic log cannot be written (" + one_line(what) + "); lines may be missing from it");
    }
  });
  {
    std::lock_guard<std::mutex> lock(state().mutex);
    state().logger = std::move(logger);
    g_threshold = static_cast<int>(threshold);
  }
  return opened;
}

bool enabled(Level level) {
  return level != Level::off && static_cast<int>(level) >= g_threshold.load(std::memory_order_relaxed);
}

void log(Level level, std::string_view message) {
  if (!enabled(level)) {
    return;
  }
  const std::string line = one_line(message);
  std::lock_guard<std::mutex> lock(state().mutex);
  if (state().logger) {
    state().logger->log(to_spdlog(level), spdlog::string_view_t(line.data(), line.size()));
  }
}

}  // namespace avps::core::diag
