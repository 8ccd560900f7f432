#pragma once
// The memory allocator avps is linked with (CMake's AVPS_ALLOCATOR: jemalloc by default, the C
// library's malloc in sanitizer and fuzz builds, which replace malloc themselves), and the one
// thing avps asks of it: to give memory it has freed back to the system at the points where a
// long-lived process has just let go of a large structure (docs/architecture.md "The allocator").
//
// Threading: both functions may be called from any thread. With jemalloc the process has its
// background threads too (they return freed pages to the system as those age).

#include <string>

namespace avps::core {

/// "jemalloc 5.3.0-0-g54eaed1..." or "system (glibc 2.36)": what `avps --version` and the
/// benchmarks print beside their figures.
std::string allocator_name();

/// Returns the free memory of every arena to the system (jemalloc: purges the dirty pages of every
/// arena; glibc: malloc_trim). Costs a walk over the allocator's free lists: for the end of a
/// phase, not for every call.
void give_back_free_memory();

}  // namespace avps::core
