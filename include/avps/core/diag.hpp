#pragma once
// Diagnostics: lines for the person watching or debugging a run (HTTP attempts, retries and their
// waits, fallbacks), kept apart from the ledger. Logs are for operators, the ledger is for truth:
// nothing reads these lines back, and their wording may change in any release.
//
// Any module may call debug()/info()/warn(); by default they go nowhere. Where they go is set by
// configure(), which only the cli calls:
//   - the terminal: the cli hands in a writer (its own stderr printer) and a level, from `-v` or
//     AVPS_LOG. Core never writes to the terminal itself, so "only src/cli/ prints" holds.
//   - a file: a size-capped rotating log (`avps run` opens .avps/diag.log; docs/formats/diag-log.md).
//
// What a caller passes must never hold a key, a header value, a URL query or a request or
// response body: callers log what the ledger's CallTrace already keeps (model, host, status,
// latency, the short error text), nothing more. Control characters in a message become spaces, so
// one call is one line.
//
// Threading: every function may be called from any thread at any time; lines from several
// threads never interleave. configure() waits for lines being written, so once it returns the
// previous file is closed and nothing more goes to the previous writer.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>

#include "avps/core/result.hpp"

namespace avps::core::diag {

enum class Level { debug, info, warn, off };

/// "debug", "info", "warn", "off".
std::string_view level_name(Level level);
/// The level a word names (AVPS_LOG's values: debug, info, warn, off; any case), or nullopt.
std::optional<Level> parse_level(std::string_view word);

/// Prints one diagnostic line (the message alone, no newline) where the person sees it. Called
/// with diag's lock held, one line at a time: it must not log itself.
using TerminalWriter = std::function<void(Level level, std::string_view message)>;

/// Where diagnostics go. The default: nowhere.
struct Options {
  Level terminal_level = Level::off;  ///< lines at this level and above go to `terminal`
  /// The cli's printer. Also told once, at warn whatever terminal_level, when writing the file
  /// fails after it was opened (a full disk): lines may then be missing from the file.
  TerminalWriter terminal;
  std::filesystem::path log_file;     ///< empty: no file; else appended to, its folder must exist
  Level file_level = Level::debug;
  size_t max_bytes = size_t{1} << 20;  ///< a file is rotated before it would pass this size
  size_t max_files = 3;                ///< files kept in all, the current one included (at least 1)
};

/// Replaces the whole configuration. io_error naming the file when it cannot be opened (a
/// read-only project): everything else of `options` is in effect all the same, without a file.
[[nodiscard]] Result<void> configure(const Options& options);

/// Whether a line at `level` goes anywhere now: lets a caller skip building an expensive message.
bool enabled(Level level);

void log(Level level, std::string_view message);
inline void debug(std::string_view message) { log(Level::debug, message); }
inline void info(std::string_view message) { log(Level::info, message); }
inline void warn(std::string_view message) { log(Level::warn, message); }

}  // namespace avps::core::diag
