#pragma once
// Small text helpers shared by the readers of people's markdown (the sim's brief reader and the
// `avps cost` brief estimate). ASCII rules: trimming and case-folding leave UTF-8 bytes alone.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace avps::core {

/// `text` without leading and trailing whitespace.
std::string trim(std::string_view text);
/// `text` with A-Z folded to a-z.
std::string lower(std::string_view text);
/// Length of the well-formed UTF-8 sequence starting at text[i] (2 to 4), or 0 if there is none
/// (a stray continuation byte, a truncated sequence, an overlong form, a surrogate, past U+10FFFF).
/// ASCII bytes are not sequences: the caller tests them first.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i);
/// The byte offset of the first byte of `text` that is not well-formed UTF-8, or nullopt.
std::optional<std::size_t> first_invalid_utf8(std::string_view text);
/// The trimmed text of a markdown list item ("- x", "* x", "+ x", "1. x", "2) x"), or nullopt.
std::optional<std::string> list_item(std::string_view line);

}  // namespace avps::core
