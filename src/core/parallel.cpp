#include "avps/core/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <vector>

namespace avps::core {

size_t threads_used(size_t count, size_t threads, size_t batch) {
  batch = std::max<size_t>(batch, 1);
  return std::clamp<size_t>(std::min(threads, (count + batch - 1) / batch), 1, 64);
}

void for_each_index(size_t count, size_t threads, size_t batch, const std::function<void(size_t, size_t)>& work) {
  const size_t used = threads_used(count, threads, batch);
  batch = std::max<size_t>(batch, 1);
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> thrown(used);
  auto take_items = [&](size_t thread) {
    try {
      for (size_t begin = next.fetch_add(batch); begin < count; begin = next.fetch_add(batch)) {
        for (size_t i = begin; i < std::min(begin + batch, count); ++i) {
          work(thread, i);
        }
      }
    } catch (...) {
      thrown[thread] = std::current_exception();
      next = count;
    }
  };
  std::vector<std::thread> started;
  for (size_t t = 1; t < used; ++t) {
    started.emplace_back(take_items, t);
  }
  take_items(0);
  for (std::thread& t : started) {
    t.join();
  }
  for (const std::exception_ptr& e : thrown) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
}

}  // namespace avps::core
