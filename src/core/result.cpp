#include "avps/core/result.hpp"

#include "avps/core/exit_code.hpp"

namespace avps {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::already_exists: return "already_exists";
    case ErrorCode::corruption: return "corruption";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::io_error: return "io_error";
    case ErrorCode::schema_violation: return "schema_violation";
    case ErrorCode::budget_exceeded: return "budget_exceeded";
    case ErrorCode::backend_unavailable: return "backend_unavailable";
    case ErrorCode::timeout: return "timeout";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::interrupted: return "interrupted";
    case ErrorCode::configuration: return "configuration";
    case ErrorCode::rate_limited: return "rate_limited";
    case ErrorCode::rejected: return "rejected";
  }
  return "unknown";
}

ExitCode exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::corruption:
    case ErrorCode::schema_violation:
      return ExitCode::violation;
    case ErrorCode::budget_exceeded:
      return ExitCode::hard_stop;
    case ErrorCode::interrupted:
      return ExitCode::interrupted;
    case ErrorCode::invalid_argument:
    case ErrorCode::not_found:
    case ErrorCode::already_exists:
    case ErrorCode::io_error:
    case ErrorCode::backend_unavailable:
    case ErrorCode::timeout:
    case ErrorCode::unsupported:
    case ErrorCode::configuration:
    case ErrorCode::rate_limited:
    case ErrorCode::rejected:
      return ExitCode::environment;
  }
  return ExitCode::environment;
}

}  // namespace avps
