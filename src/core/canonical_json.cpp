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

Result<nlohmann::json> parse_json(std::string_view text, std::string_view what) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    return make_error(ErrorCode::invalid_argument,
                      std::string(what) + ": invalid JSON at byte " + std::to_string(e.byte) + ": " +
                          e.what());
  }
}

}  // namespace avps::core
