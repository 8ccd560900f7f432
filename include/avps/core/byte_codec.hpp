#pragma once
// A flat binary encoding for derived state a reader must take back fast (the fold checkpoint,
// docs/formats/checkpoint.md): values written one after another, no keys, no framing of their
// own. Decoding one builds the reader's own structures directly, with no document tree between
// the bytes and them (a CBOR or JSON document is first a tree of nodes, then copied).
//
// Grammar (all integers little-endian base-128 varints, LEB128):
//   u64    := varint
//   i64    := varint of the zigzag value ((v << 1) ^ (v >> 63))
//   f64    := 8 bytes, the IEEE 754 binary64 bits, little-endian
//   text   := u64 length, then that many bytes
//   count  := u64: how many items follow (each item is at least one byte)
//   json   := tag byte, then: 0 null | 1 false | 2 true | 3 i64 (a signed integer) |
//             4 u64 (an unsigned integer) | 5 f64 | 6 text (a string) |
//             7 count, then that many json (an array) | 8 count, then that many (text key, json)
//             (an object) | 9 text (binary bytes, no subtype)
// A json value decodes to the same nlohmann value it was written from: the same types (signed,
// unsigned and float numbers stay apart), so it serialises to the same bytes.
//
// A ByteReader never reads past its input and never throws: a value that does not fit the bytes
// left (cut short, a count larger than the bytes left, an unknown tag, a json nested deeper than
// k_max_json_depth) marks it failed, and every later read returns an empty value. The caller reads
// on and asks ok() once: a failed read is then refused whole, never half taken.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace avps::core {

/// Appends values to a byte string.
class ByteWriter {
 public:
  void u64(uint64_t value);
  void i64(int64_t value);
  void f64(double value);
  void text(std::string_view value);
  /// Any nlohmann value; a discarded one (never in a parsed document) is written as null.
  void json(const nlohmann::json& value);
  /// A value json() wrote, kept as its bytes (FlatJson::bytes(); empty: null), appended as they
  /// are: the bytes json() writes of the value they decode to (one encoding per value), without
  /// decoding them into a document first.
  void json_bytes(std::string_view encoded);

  const std::string& bytes() const { return m_out; }
  std::string take() { return std::move(m_out); }
  /// Empties the bytes and keeps the buffer: a writer handing its bytes on in parts reuses it.
  void clear() { m_out.clear(); }

 private:
  std::string m_out;
};

/// Reads values back, in the order they were written (see the failure rule above).
class ByteReader {
 public:
  /// How deep arrays and objects nest at most: a deeper json is refused (no recursion unbounded
  /// by the input).
  static constexpr int k_max_json_depth = 128;

  /// `bytes` must outlive the reader.
  explicit ByteReader(std::string_view bytes) : m_in(bytes) {}

  uint64_t u64();
  int64_t i64();
  double f64();
  std::string text();
  /// A u64 that counts items following it: refused when larger than the bytes left (so a damaged
  /// count never makes a reader reserve or loop for more than the input holds).
  size_t count();
  nlohmann::json json();
  /// The bytes of the next json value, checked as json() checks them but decoded into nothing:
  /// for a reader that keeps a value in this encoding (FlatJson) and decodes it where it is used.
  /// Empty when the read failed.
  std::string_view json_bytes();

  /// No read failed so far.
  bool ok() const { return !m_failed; }
  /// Every byte read, none failed: the whole input was one value sequence.
  bool done() const { return !m_failed && m_at == m_in.size(); }
  /// How many bytes were read so far (where the next value starts).
  size_t consumed() const { return m_at; }
  /// Marks the reader failed: for a caller that finds a value out of its own range.
  void fail() {
    m_failed = true;
    m_at = m_in.size();
  }

 private:
  nlohmann::json json_at(int depth);
  void skip_json_at(int depth);

  std::string_view m_in;
  size_t m_at = 0;
  bool m_failed = false;
};

/// A JSON value held as its bytes in this encoding and decoded where it is read: one block of
/// heap, where a parsed object is a map node per member and a block per string (an object of ten
/// members took about 1,500 bytes of heap, its bytes about 250). For the many small values a fold
/// keeps per step, render or attempt, most of which no rule reads again. A plain value: const use
/// from several threads is safe, as for a std::string.
class FlatJson {
 public:
  FlatJson() = default;
  /// `value` encoded.
  explicit FlatJson(const nlohmann::json& value);
  /// Bytes ByteWriter::json wrote (one value), kept as they are.
  static FlatJson of_bytes(std::string bytes);
  /// The value, decoded anew at each `*` (null when empty): a reader of several members decodes
  /// once and reads its copy.
  nlohmann::json operator*() const;
  const std::string& bytes() const { return m_bytes; }
  /// Equal values have equal bytes (one encoding per value).
  bool operator==(const FlatJson& other) const = default;

 private:
  std::string m_bytes;
};

}  // namespace avps::core
