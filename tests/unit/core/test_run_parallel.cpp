// core::run_parallel and core::for_each_index: every index once, whatever the thread count, and
// nothing after they return.
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "avps/core/parallel.hpp"
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

TEST_CASE("for_each_index gives every index once, names threads below those it used, and rethrows", "[process]") {
  for (size_t threads : {size_t{0}, size_t{1}, size_t{2}, size_t{5}}) {
    for (size_t count : {size_t{0}, size_t{1}, size_t{9}, size_t{200}}) {
      std::vector<std::atomic<int>> calls(count);
      std::atomic<size_t> highest_thread{0};
      avps::core::for_each_index(count, threads, 4, [&](size_t thread, size_t i) {
        ++calls[i];
        size_t seen = highest_thread.load();
        while (thread > seen && !highest_thread.compare_exchange_weak(seen, thread)) {
        }
      });
      for (size_t i = 0; i < count; ++i) {
        INFO("threads " << threads << ", count " << count << ", index " << i);
        CHECK(calls[i] == 1);
      }
      // At most the threads asked for (at least one), and no more than there are batches of 4.
      CHECK(highest_thread < std::max<size_t>(1, std::min(threads, (count + 3) / 4)));
      CHECK(avps::core::threads_used(count, threads, 4) == std::max<size_t>(1, std::min(threads, (count + 3) / 4)));
    }
  }
  // An exception reaches the caller once every thread has stopped; on one thread, nothing after
  // the item that threw is called.
  for (size_t threads : {size_t{1}, size_t{3}}) {
    std::atomic<int> others{0};
    CHECK_THROWS_WITH(avps::core::for_each_index(1000, threads, 1,
                                                 [&](size_t, size_t i) {
                                                   if (i == 10) {
                                                     throw std::runtime_error("item 10");
                                                   }
                                                   ++others;
                                                 }),
                      "item 10");
    if (threads == 1) {
      CHECK(others == 10);
    }
  }
}
