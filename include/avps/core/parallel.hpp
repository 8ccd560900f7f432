#pragma once
// Work split over a few threads for the read paths (`avps gate`): items taken in order, a few at a
// time, so that each thread's items lie close together.

#include <cstddef>
#include <functional>

namespace avps::core {

/// How many threads for_each_index(count, threads, batch, ...) uses: at least one, at most 64, and
/// no more than `threads` or the batches of `batch` items there are. For a caller that makes
/// per-thread state first (a connection, a checker) for exactly the threads that will run.
size_t threads_used(size_t count, size_t threads, size_t batch);

/// Calls work(thread, i) for every i < count, on threads_used(count, threads, batch) threads (this
/// one is thread 0), each taking the next `batch` items in order as it finishes the last. `thread`
/// is below threads_used(), so a caller can keep per-thread state in a vector of that many. An exception one call throws ends
/// the others' work and is rethrown here once every thread has stopped (the first thread's first).
///
/// Threading: `work` is called from several threads at once; what it shares it must guard.
void for_each_index(size_t count, size_t threads, size_t batch, const std::function<void(size_t thread, size_t i)>& work);

}  // namespace avps::core
