#pragma once
// What the engine makes of a model's text answer before the gate reads it (engine.cpp
// run_pages and finish_attempt). Engine-internal; apart from engine.cpp so that the fuzz target
// tests/fuzz/fuzz_answers.cpp drives the very code a run uses. A model's answer is untrusted:
// nothing here throws on its content; what does not fit is an error the attempt FAILs with.

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::engine {

/// One page of a paged attempt's answer: its outputs, and what the paging protocol adds.
struct PageAnswer {
  nlohmann::json answer;  ///< the object without "more" and "carry"
  bool more = false;      ///< the model says another page follows (paging by output)
  nlohmann::json carry;   ///< what the next page's call gets as inputs.CARRY; null when none
};

/// Parses one page's answer `text`. invalid_argument, worded as the page's failure reason, when
/// it is not a JSON object or its "more" is not true or false.
[[nodiscard]] Result<PageAnswer> read_page_answer(std::string_view text, const std::string& skill_name);

/// Adds one page's content of `kind` to `assembled` (kind -> content): rows are appended in page
/// order; any other output is the last page's. invalid_argument when both pages hold "rows" and
/// either is not a list.
[[nodiscard]] Result<void> merge_page(nlohmann::json& assembled, const std::string& kind, nlohmann::json content);

/// The content of output `kind` in a model's answer: with one model output the answer itself,
/// with several its member `kind` (null when it has none or the answer is not an object).
nlohmann::json output_content(const nlohmann::json& answer, const std::string& kind, std::size_t output_count);

}  // namespace avps::engine
