#pragma once
// Wall-clock time, behind an interface so tests can fix it. Time goes into the run log only,
// never into an artifact and never into a decision (DESIGN §4).

#include <string>

namespace avps::core {

class Clock {
 public:
  virtual ~Clock() = default;
  /// UTC, ISO 8601 with milliseconds: "2026-11-25T15:27:24.123Z".
  virtual std::string now_iso8601() const = 0;
};

class SystemClock : public Clock {
 public:
  std::string now_iso8601() const override;
};

}  // namespace avps::core
