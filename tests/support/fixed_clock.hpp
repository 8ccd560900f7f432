#pragma once
#include <string>

#include "avps/core/clock.hpp"

namespace avps::testing {

/// A clock that always says the same time.
class FixedClock : public core::Clock {
 public:
  std::string now_iso8601() const override { return "2026-01-01T00:00:00.000Z"; }
};

}  // namespace avps::testing
