#pragma once
// Shared by the libFuzzer targets of tests/fuzz (built only with -DAVPS_FUZZ=ON, clang).
//
// A target reports a broken invariant with fuzz_fail(): it prints what broke and aborts, which
// libFuzzer records as a crash with the input that caused it. Sanitizer reports and exceptions
// that escape LLVMFuzzerTestOneInput (std::terminate -> abort) are findings the same way.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace avps::fuzz {

/// The source tree: shipped schemas/, skills/, policies/ and the test fixtures.
inline const std::filesystem::path k_source_dir = AVPS_SOURCE_DATA_DIR;

/// Prints `what` and aborts: a finding.
[[noreturn]] inline void fuzz_fail(const std::string& what) {
  std::fprintf(stderr, "avps fuzz invariant broken: %s\n", what.c_str());
  std::abort();
}

/// The input as text.
inline std::string_view as_text(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace avps::fuzz
