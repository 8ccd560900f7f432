#include "avps/core/memory.hpp"

#if defined(AVPS_WITH_JEMALLOC)
#include <jemalloc/jemalloc.h>

// jemalloc's options, read when it starts (before main). Background threads purge the pages freed
// memory leaves dirty as they age, so the engine thread does not stop to do it at its next
// allocation: without them the 500-scene production took about 15 % longer (bench/README.md).
// MALLOC_CONF in the environment still adds to or overrides these.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true";
}
#elif defined(__GLIBC__)
#include <gnu/libc-version.h>
#include <malloc.h>
#endif

namespace avps::core {

std::string allocator_name() {
#if defined(AVPS_WITH_JEMALLOC)
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (mallctl("version", static_cast<void*>(&version), &size, nullptr, 0) == 0 && version != nullptr) {
    return std::string("jemalloc ") + version;
  }
  return "jemalloc";
#elif defined(__GLIBC__)
  return std::string("system (glibc ") + gnu_get_libc_version() + ")";
#else
  return "system";
#endif
}

void give_back_free_memory() {
#if defined(AVPS_WITH_JEMALLOC)
  // Dirty pages are otherwise returned only as they age (opt.dirty_decay_ms, 10 s by default).
  static const std::string all_arenas = "arena." + std::to_string(MALLCTL_ARENAS_ALL) + ".purge";
  mallctl(all_arenas.c_str(), nullptr, nullptr, nullptr, 0);
#elif defined(__GLIBC__)
  // glibc keeps what it cannot return from the top of a heap; malloc_trim also releases the free
  // pages inside every arena's heaps.
  ::malloc_trim(0);
#endif
}

}  // namespace avps::core
