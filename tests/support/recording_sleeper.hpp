#pragma once
#include <cstdint>
#include <vector>

#include "avps/backends/retry.hpp"

namespace avps::testing {

/// A sleeper that does not sleep: it keeps each wait asked of it, in order, for a test to compare
/// with the waits a retry policy or a provider's Retry-After should make.
class RecordingSleeper : public backends::Sleeper {
 public:
  void sleep_ms(int64_t ms) override { waits.push_back(ms); }
  std::vector<int64_t> waits;
};

}  // namespace avps::testing
