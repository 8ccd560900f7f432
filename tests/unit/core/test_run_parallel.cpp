// core::run_parallel: every index once, whatever the thread count, and nothing after it returns.
#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

#include "avps/core/process.hpp"

TEST_CASE("run_parallel calls every index exactly once and returns when all are done", "[process]") {
  for (int threads : {0, 1, 3, 64}) {
    for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{100}}) {
      std::vector<std::atomic<int>> calls(count);
      avps::core::run_parallel(count, threads, [&](size_t i) { ++calls[i]; });
      for (size_t i = 0; i < count; ++i) {
        INFO("threads " << threads << ", count " << count << ", index " << i);
        CHECK(calls[i] == 1);
      }
    }
  }
}
