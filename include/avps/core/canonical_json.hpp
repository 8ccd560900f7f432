#pragma once
// Canonical JSON: the byte form that is hashed and stored in the object store.
//
// Guarantee: equal JSON values (as nlohmann::json compares them) give equal bytes. Object keys
// are sorted bytewise, there is no insignificant whitespace, strings are UTF-8 with the minimal
// escapes of RFC 8259, integers print exactly. Invalid UTF-8 is refused, never replaced.
// Floating-point numbers print in shortest round-trip form; money is never a float (micro-USD).

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::core {

/// The canonical bytes of `value`. Fails only on invalid UTF-8 in a string.
Result<std::string> canonical_json(const nlohmann::json& value);

/// One JSON-pointer reference token, escaped (RFC 6901: "~" -> "~0", "/" -> "~1").
std::string escape_pointer_token(const std::string& token);

/// `object[key]` when `object` is an object holding a string there, else "": how every reader of a
/// recorded body reads a text field (a field older records lack reads as empty).
std::string json_text(const nlohmann::json& object, std::string_view key);
/// `object[key]` when it is an integer, else 0.
int64_t json_int(const nlohmann::json& object, std::string_view key);

/// Parses JSON text; the error names the byte offset and what was wrong.
Result<nlohmann::json> parse_json(std::string_view text, std::string_view what);

}  // namespace avps::core
