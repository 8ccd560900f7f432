#pragma once
// RFC 4180 CSV: fields separated by ',', records by "\r\n" on input or "\n" (what avps writes),
// a field quoted when it holds ',', '"', CR or LF (and then '"' doubled). Shared by every CSV face.

#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"

namespace avps::core {

using CsvRecord = std::vector<std::string>;

/// One record, terminated by "\n".
std::string csv_format_record(const CsvRecord& fields);

/// Parses a whole document. Errors name the 1-based line of the problem (an unterminated quote,
/// a stray quote inside an unquoted field). A final record without a line ending is accepted.
[[nodiscard]] Result<std::vector<CsvRecord>> csv_parse(std::string_view text);

}  // namespace avps::core
