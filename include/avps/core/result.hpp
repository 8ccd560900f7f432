#pragma once
// Result<T>: the value of an operation that can fail in an expected way (I/O, parse, schema,
// budget, backend). GCC 12 has no std::expected in C++20 mode, so this is a small in-house one.
//
// Errors carry a stable code and a message meant for the user: it names what failed and where
// (a path, a JSON pointer, a ledger row). Codes are never renumbered; they are not written to disk
// as integers (see error_code_name).

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace avps {

enum class ErrorCode {
  not_found,
  already_exists,
  corruption,
  invalid_argument,
  io_error,
  schema_violation,
  budget_exceeded,
  backend_unavailable,
  timeout,
  unsupported,
  interrupted,
  configuration,  ///< a configuration file or variable is invalid
  rate_limited,   ///< a provider said "too many requests" (429): transient, retried after its hint
  rejected,       ///< a provider refused the request for good (4xx other than 408/409/429, a spent quota)
};

/// Stable lower-case name of an error code, for logs and --json output.
std::string_view error_code_name(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;
  /// A transient failure's own word on when to try again (Retry-After, retry-after-ms, Gemini's
  /// retryDelay), in milliseconds; the retry layer honours it over its backoff.
  std::optional<int64_t> retry_after_ms = std::nullopt;
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_state(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : m_state(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return m_state.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(m_state); }
  const T& value() const& { assert(ok()); return std::get<0>(m_state); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(m_state)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { assert(!ok()); return std::get<1>(m_state); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(m_state)); }

 private:
  std::variant<T, Error> m_state;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : m_error(std::move(error)), m_failed(true) {}  // NOLINT

  bool ok() const { return !m_failed; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { assert(m_failed); return m_error; }
  Error&& error() && { assert(m_failed); return std::move(m_error); }

 private:
  Error m_error{ErrorCode::invalid_argument, {}};
  bool m_failed = false;
};

inline Result<void> ok() { return {}; }

}  // namespace avps

/// Returns the error of `expr` (a Result) from the enclosing function, if it failed.
#define AVPS_TRY(expr)                                   \
  do {                                                   \
    auto&& avps_try_result_ = (expr);                    \
    if (!avps_try_result_.ok()) {                        \
      return std::move(avps_try_result_).error();        \
    }                                                    \
  } while (false)

#define AVPS_CONCAT_INNER_(a, b) a##b
#define AVPS_CONCAT_(a, b) AVPS_CONCAT_INNER_(a, b)

/// `AVPS_TRY_ASSIGN(auto x, f())` declares x with f()'s value, or returns f()'s error.
#define AVPS_TRY_ASSIGN(decl, expr) \
  AVPS_TRY_ASSIGN_IMPL_(AVPS_CONCAT_(avps_try_tmp_, __LINE__), decl, expr)
#define AVPS_TRY_ASSIGN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) {                             \
    return std::move(tmp).error();             \
  }                                            \
  decl = std::move(tmp).value()
