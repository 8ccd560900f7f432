#include "avps/core/canonical_json.hpp"

namespace avps::core {

Result<std::string> canonical_json(const nlohmann::json& value) {
  // nlohmann::json keeps objects in a std::map, so keys are already sorted bytewise; dump()
  // without indentation emits no insignificant whitespace. strict mode refuses invalid UTF-8.
  try {
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::invalid_argument, std::string("cannot encode JSON: ") + e.what());
  }
}

std::string escape_pointer_token(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string json_text(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) {
    return "";
  }
  auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

int64_t json_int(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) {
    return 0;
  }
  auto found = object.find(key);
  return found != object.end() && found->is_number_integer() ? found->get<int64_t>() : 0;
}

Result<nlohmann::json> parse_json(std::string_view text, std::string_view what) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    return make_error(ErrorCode::invalid_argument,
                      std::string(what) + ": invalid JSON at byte " + std::to_string(e.byte) + ": " +
                          e.what());
  } catch (const nlohmann::json::exception& e) {
    // Well-formed text the parser still refuses: a number too large for a double ("1e999",
    // out_of_range 406). Found by fuzzing: it escaped as an exception from any JSON avps reads.
    return make_error(ErrorCode::invalid_argument, std::string(what) + ": invalid JSON: " + e.what());
  }
}

}  // namespace avps::core
