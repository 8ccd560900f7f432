#pragma once
// Process exit codes. These are a public interface (CI scripts branch on them), documented in
// docs/cli.md; never renumber one.

#include <stdexcept>
#include <string>

#include "avps/core/result.hpp"

namespace avps {

enum class ExitCode : int {
  ok = 0,
  violation = 1,        ///< a rule or gate was violated
  usage = 2,            ///< the command line was wrong
  hard_stop = 3,        ///< a hard stop awaits a human decision (avps override)
  environment = 4,      ///< configuration or environment error (also: not built yet)
  interrupted = 130,    ///< stopped by SIGINT / SIGTERM
};

/// The one exception type: "abort this command". Caught once, in cli::main, and turned into
/// an exit code. Library code returns Result for expected failures and throws Fatal only where
/// no caller could do anything but give up.
class Fatal : public std::runtime_error {
 public:
  Fatal(ExitCode code, const std::string& message) : std::runtime_error(message), m_code(code) {}
  ExitCode code() const { return m_code; }

 private:
  ExitCode m_code;
};

/// The exit code a command gives for an error of this kind.
ExitCode exit_code_for(ErrorCode code);

}  // namespace avps
