#pragma once
// Small text helpers shared by the readers of people's markdown (the sim's brief reader and the
// `avps cost` brief estimate). ASCII rules: trimming and case-folding leave UTF-8 bytes alone.

#include <optional>
#include <string>
#include <string_view>

namespace avps::core {

/// `text` without leading and trailing whitespace.
std::string trim(std::string_view text);
/// `text` with A-Z folded to a-z.
std::string lower(std::string_view text);
/// The trimmed text of a markdown list item ("- x", "* x", "+ x", "1. x", "2) x"), or nullopt.
std::optional<std::string> list_item(std::string_view line);

}  // namespace avps::core
