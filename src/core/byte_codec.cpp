#include "avps/core/byte_codec.hpp"

#include <cstring>
#include <utility>

namespace avps::core {

namespace {

// The json tags of the grammar (byte_codec.hpp). Written to disk: never renumbered.
enum Tag : uint8_t {
  k_null = 0,
  k_false = 1,
  k_true = 2,
  k_signed = 3,
  k_unsigned = 4,
  k_float = 5,
  k_string = 6,
  k_array = 7,
  k_object = 8,
  k_binary = 9,
};
}  // namespace

void ByteWriter::u64(uint64_t value) {
  while (value >= 0x80) {
    m_out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  m_out.push_back(static_cast<char>(value));
}

void ByteWriter::i64(int64_t value) {
  u64((static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63));
}

void ByteWriter::f64(double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 8; ++i) {
    m_out.push_back(static_cast<char>(bits & 0xff));
    bits >>= 8;
  }
}

void ByteWriter::text(std::string_view value) {
  u64(value.size());
  m_out.append(value);
}

void ByteWriter::json_bytes(std::string_view encoded) {
  if (encoded.empty()) {
    m_out.push_back(static_cast<char>(k_null));
    return;
  }
  m_out.append(encoded);
}

void ByteWriter::json(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      m_out.push_back(static_cast<char>(k_null));
      return;
    case nlohmann::json::value_t::boolean:
      m_out.push_back(static_cast<char>(value.get<bool>() ? k_true : k_false));
      return;
    case nlohmann::json::value_t::number_integer:
      m_out.push_back(static_cast<char>(k_signed));
      i64(value.get<int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned:
      m_out.push_back(static_cast<char>(k_unsigned));
      u64(value.get<uint64_t>());
      return;
    case nlohmann::json::value_t::number_float:
      m_out.push_back(static_cast<char>(k_float));
      f64(value.get<double>());
      return;
    case nlohmann::json::value_t::string:
      m_out.push_back(static_cast<char>(k_string));
      text(value.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::array:
      m_out.push_back(static_cast<char>(k_array));
      u64(value.size());
      for (const nlohmann::json& item : value) {
        json(item);
      }
      return;
    case nlohmann::json::value_t::object:
      m_out.push_back(static_cast<char>(k_object));
      u64(value.size());
      for (const auto& [key, item] : value.get_ref<const nlohmann::json::object_t&>()) {
        text(key);
        json(item);
      }
      return;
    case nlohmann::json::value_t::binary: {
      m_out.push_back(static_cast<char>(k_binary));
      const nlohmann::json::binary_t& bytes = value.get_binary();
      u64(bytes.size());
      m_out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      return;
    }
  }
}

uint64_t ByteReader::u64() {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (m_at >= m_in.size()) {
      fail();
      return 0;
    }
    const auto byte = static_cast<uint8_t>(m_in[m_at++]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      return value;
    }
  }
  fail();  // more than ten bytes: not a varint this writer made
  return 0;
}

int64_t ByteReader::i64() {
  const uint64_t zigzag = u64();
  return static_cast<int64_t>((zigzag >> 1) ^ (~(zigzag & 1) + 1));
}

double ByteReader::f64() {
  if (m_in.size() - m_at < 8) {
    fail();
    return 0;
  }
  uint64_t bits = 0;
  for (int i = 7; i >= 0; --i) {
    bits = (bits << 8) | static_cast<uint8_t>(m_in[m_at + static_cast<size_t>(i)]);
  }
  m_at += 8;
  double value = 0;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

std::string ByteReader::text() {
  const uint64_t length = u64();
  if (length > m_in.size() - m_at) {
    fail();
    return {};
  }
  std::string out(m_in.substr(m_at, static_cast<size_t>(length)));
  m_at += static_cast<size_t>(length);
  return out;
}

size_t ByteReader::count() {
  const uint64_t n = u64();
  if (n > m_in.size() - m_at) {
    fail();
    return 0;
  }
  return static_cast<size_t>(n);
}

nlohmann::json ByteReader::json() { return json_at(0); }

std::string_view ByteReader::json_bytes() {
  const size_t at = m_at;
  skip_json_at(0);
  return ok() ? m_in.substr(at, m_at - at) : std::string_view();
}

// json_at's reading, its checks the same, with no value made.
void ByteReader::skip_json_at(int depth) {
  if (m_at >= m_in.size()) {
    fail();
    return;
  }
  const auto tag = static_cast<uint8_t>(m_in[m_at++]);
  switch (tag) {
    case k_null:
    case k_false:
    case k_true:
      return;
    case k_signed:
    case k_unsigned:
      u64();  // (a zigzag i64 is a u64 on the wire)
      return;
    case k_float:
      f64();
      return;
    case k_string:
    case k_binary: {
      const uint64_t length = u64();
      if (length > m_in.size() - m_at) {
        fail();
        return;
      }
      m_at += static_cast<size_t>(length);
      return;
    }
    case k_array:
    case k_object: {
      if (depth >= k_max_json_depth) {
        fail();
        return;
      }
      const size_t n = count();
      for (size_t i = 0; i < n && ok(); ++i) {
        if (tag == k_object) {
          const uint64_t length = u64();
          if (length > m_in.size() - m_at) {
            fail();
            return;
          }
          m_at += static_cast<size_t>(length);
        }
        skip_json_at(depth + 1);
      }
      return;
    }
    default:
      fail();
      return;
  }
}

FlatJson::FlatJson(const nlohmann::json& value) {
  ByteWriter out;
  out.json(value);
  m_bytes = out.take();
}

FlatJson FlatJson::of_bytes(std::string bytes) {
  FlatJson kept;
  kept.m_bytes = std::move(bytes);
  return kept;
}

nlohmann::json FlatJson::operator*() const {
  if (m_bytes.empty()) {
    return nullptr;
  }
  ByteReader in(m_bytes);
  return in.json();
}

nlohmann::json ByteReader::json_at(int depth) {
  if (m_at >= m_in.size()) {
    fail();
    return nullptr;
  }
  const auto tag = static_cast<uint8_t>(m_in[m_at++]);
  switch (tag) {
    case k_null:
      return nullptr;
    case k_false:
      return false;
    case k_true:
      return true;
    case k_signed:
      return i64();
    case k_unsigned:
      return u64();
    case k_float:
      return f64();
    case k_string:
      return text();
    case k_array:
    case k_object: {
      if (depth >= k_max_json_depth) {
        fail();
        return nullptr;
      }
      const size_t n = count();
      if (tag == k_array) {
        nlohmann::json out = nlohmann::json::array();
        nlohmann::json::array_t& items = out.get_ref<nlohmann::json::array_t&>();
        items.reserve(n);
        for (size_t i = 0; i < n && ok(); ++i) {
          items.push_back(json_at(depth + 1));
        }
        return out;
      }
      nlohmann::json out = nlohmann::json::object();
      nlohmann::json::object_t& members = out.get_ref<nlohmann::json::object_t&>();
      for (size_t i = 0; i < n && ok(); ++i) {
        std::string key = text();
        // Written in the object's own (sorted) order: each member goes at the end.
        members.emplace_hint(members.end(), std::move(key), json_at(depth + 1));
      }
      return out;
    }
    case k_binary: {
      const std::string bytes = text();
      return nlohmann::json::binary(nlohmann::json::binary_t::container_type(bytes.begin(), bytes.end()));
    }
    default:
      fail();
      return nullptr;
  }
}

}  // namespace avps::core
