#include "avps/core/csv.hpp"

namespace avps::core {

std::string csv_format_record(const CsvRecord& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    const std::string& f = fields[i];
    if (f.find_first_of(",\"\r\n") == std::string::npos) {
      out += f;
      continue;
    }
    out += '"';
    for (char c : f) {
      if (c == '"') {
        out += '"';
      }
      out += c;
    }
    out += '"';
  }
  out += '\n';
  return out;
}

Result<std::vector<CsvRecord>> csv_parse(std::string_view text) {
  std::vector<CsvRecord> records;
  CsvRecord record;
  std::string field;
  size_t line = 1;
  size_t record_line = 1;
  size_t i = 0;
  bool at_record_start = true;
  auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::invalid_argument, "CSV line " + std::to_string(line) + ": " + what);
  };
  while (i < text.size()) {
    at_record_start = false;
    if (text[i] == '"' && field.empty()) {
      // Quoted field: runs to the closing quote, "" is a literal quote.
      ++i;
      for (;;) {
        if (i >= text.size()) {
          line = record_line;
          return bad("unterminated quoted field");
        }
        char c = text[i];
        if (c == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (c == '\n') {
          ++line;
        }
        field += c;
        ++i;
      }
      if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        return bad("text after a closing quote");
      }
      continue;
    }
    char c = text[i];
    if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      ++i;
    } else if (c == '\r' || c == '\n') {
      record.push_back(std::move(field));
      field.clear();
      records.push_back(std::move(record));
      record.clear();
      i += (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ? 2 : 1;
      ++line;
      record_line = line;
      at_record_start = true;
    } else if (c == '"') {
      return bad("quote inside an unquoted field");
    } else {
      field += c;
      ++i;
    }
  }
  if (!at_record_start) {
    record.push_back(std::move(field));
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace avps::core
