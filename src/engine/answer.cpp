#include "answer.hpp"

#include "avps/core/canonical_json.hpp"

namespace avps::engine {

using nlohmann::json;

Result<PageAnswer> read_page_answer(std::string_view text, const std::string& skill_name) {
  Result<json> parsed = core::parse_json(text, skill_name + " output");
  if (!parsed || !parsed->is_object()) {
    return make_error(ErrorCode::invalid_argument,
                      "the output is not a JSON object" + (parsed ? std::string() : ": " + parsed.error().message));
  }
  PageAnswer page;
  page.answer = std::move(parsed).value();
  if (auto more = page.answer.find("more"); more != page.answer.end()) {
    // json::value("more", false) would throw on a string here: the model's word is not trusted.
    if (!more->is_boolean()) {
      return make_error(ErrorCode::invalid_argument, "its \"more\" is " + more->dump() + ", not true or false");
    }
    page.more = more->get<bool>();
    page.answer.erase(more);
  }
  if (auto carry = page.answer.find("carry"); carry != page.answer.end()) {
    page.carry = std::move(*carry);
    page.answer.erase(carry);
  }
  return page;
}

Result<void> merge_page(json& assembled, const std::string& kind, json content) {
  if (!assembled.contains(kind) || !content.contains("rows") || !assembled[kind].contains("rows")) {
    assembled[kind] = std::move(content);
    return ok();
  }
  json& rows = assembled[kind]["rows"];
  if (!rows.is_array() || !content["rows"].is_array()) {
    return make_error(ErrorCode::invalid_argument, "its " + kind + " \"rows\" is not a list");
  }
  for (json& row : content["rows"]) {
    rows.push_back(std::move(row));
  }
  return ok();
}

json output_content(const json& answer, const std::string& kind, std::size_t output_count) {
  if (output_count == 1) {
    return answer;
  }
  if (!answer.is_object()) {
    return json();
  }
  auto it = answer.find(kind);
  return it == answer.end() ? json() : *it;
}

}  // namespace avps::engine
