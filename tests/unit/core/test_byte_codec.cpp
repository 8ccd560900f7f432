// The flat binary encoding of the fold checkpoint (core/byte_codec.hpp): what is written reads
// back the same, JSON types included; what is cut short, grown or damaged marks the reader failed
// and never reads past its input.

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "avps/core/byte_codec.hpp"

using namespace avps;
using nlohmann::json;

namespace {

// A document with every JSON type, the number types apart, nesting and an empty string.
json every_kind() {
  return json::parse(R"({"verdict": "PASS", "attempt": 2, "neg": -7, "big": 18446744073709551615,
      "ratio": 0.125, "none": null, "yes": true, "no": false, "empty": "", "reasons": ["a", "b;c"],
      "nested": {"rows": [[1, 2], {"k": [true, null]}], "é": "ü"}, "list": []})");
}

std::string written_values() {
  core::ByteWriter out;
  out.u64(0);
  out.u64(std::numeric_limits<uint64_t>::max());
  out.i64(-1);
  out.i64(std::numeric_limits<int64_t>::min());
  out.i64(std::numeric_limits<int64_t>::max());
  out.f64(-2.5);
  out.text("");
  out.text(std::string("a\0b", 3));
  out.json(every_kind());
  out.json(json::binary({1, 2, 255}));
  return out.take();
}

}  // namespace

TEST_CASE("values written by a ByteWriter read back the same, in order, and end the input", "[core][checkpoint]") {
  const std::string bytes = written_values();
  core::ByteReader in(bytes);
  CHECK(in.u64() == 0);
  CHECK(in.u64() == std::numeric_limits<uint64_t>::max());
  CHECK(in.i64() == -1);
  CHECK(in.i64() == std::numeric_limits<int64_t>::min());
  CHECK(in.i64() == std::numeric_limits<int64_t>::max());
  CHECK(in.f64() == -2.5);
  CHECK(in.text().empty());
  CHECK(in.text() == std::string("a\0b", 3));
  const json document = in.json();
  CHECK(document == every_kind());
  // The same types, so the same text: signed, unsigned and float numbers stay apart.
  CHECK(document.dump() == every_kind().dump());
  CHECK(document.at("attempt").is_number_unsigned() == every_kind().at("attempt").is_number_unsigned());
  CHECK(document.at("neg").is_number_integer());
  CHECK(document.at("ratio").is_number_float());
  CHECK(in.json() == json::binary({1, 2, 255}));
  CHECK(in.ok());
  CHECK(in.done());
}

TEST_CASE("input cut short at any byte fails the reader, which then reads nothing more", "[core][checkpoint]") {
  const std::string bytes = written_values();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    INFO("cut to " << cut << " of " << bytes.size() << " bytes");
    core::ByteReader in(std::string_view(bytes).substr(0, cut));
    in.u64();
    in.u64();
    in.i64();
    in.i64();
    in.i64();
    in.f64();
    in.text();
    in.text();
    in.json();
    in.json();
    CHECK_FALSE(in.ok());
    CHECK_FALSE(in.done());
    // After a failure every read is empty, whatever is asked.
    CHECK(in.text().empty());
    CHECK(in.count() == 0);
    CHECK(in.json().is_null());
  }
}

TEST_CASE("bytes after the values, a bad tag, a count beyond the input or a runaway varint are refused",
          "[core][checkpoint]") {
  const std::string bytes = written_values() + std::string(1, '\0');
  core::ByteReader grown(bytes);
  for (int i = 0; i < 2; ++i) {
    grown.u64();
  }
  for (int i = 0; i < 3; ++i) {
    grown.i64();
  }
  grown.f64();
  grown.text();
  grown.text();
  grown.json();
  grown.json();
  CHECK(grown.ok());
  CHECK_FALSE(grown.done());  // one byte left over: not the whole input

  const std::string bad_tag = "\x0a";
  core::ByteReader tag(bad_tag);
  CHECK(tag.json().is_null());
  CHECK_FALSE(tag.ok());

  core::ByteWriter counted;
  counted.u64(1000);  // a thousand items promised, three bytes follow
  counted.text("ab");
  const std::string count_bytes = counted.take();
  core::ByteReader count(count_bytes);
  CHECK(count.count() == 0);
  CHECK_FALSE(count.ok());
  const std::string array_bytes = std::string(1, '\x07') + count_bytes;  // the same count as an array's
  core::ByteReader array(array_bytes);  // (a reader views its input: the bytes must outlive it)
  array.json();  // (what it returns on a refusal is no promise: ok() says it was refused)
  CHECK_FALSE(array.ok());

  const std::string short_text("\x05" "abc");  // a length of 5, three bytes
  core::ByteReader text(short_text);
  CHECK(text.text().empty());
  CHECK_FALSE(text.ok());

  const std::string runaway(11, '\xff');
  core::ByteReader varint(runaway);
  CHECK(varint.u64() == 0);
  CHECK_FALSE(varint.ok());
}

TEST_CASE("a json nested deeper than the reader's bound is refused without recursing through it",
          "[core][checkpoint]") {
  std::string deep;
  for (int i = 0; i <= core::ByteReader::k_max_json_depth; ++i) {
    deep += "\x07\x01";  // an array of one item ...
  }
  deep += '\0';  // ... down to a null
  core::ByteReader in(deep);
  in.json();
  CHECK_FALSE(in.ok());

  json nested = nullptr;
  for (int i = 0; i < core::ByteReader::k_max_json_depth; ++i) {
    nested = json::array({nested});
  }
  core::ByteWriter out;
  out.json(nested);
  const std::string bytes = out.take();
  core::ByteReader at_bound(bytes);
  CHECK(at_bound.json() == nested);
  CHECK(at_bound.done());
}

TEST_CASE("a float keeps its every bit, infinities and signed zero included", "[core][checkpoint]") {
  core::ByteWriter out;
  for (double v : {0.0, -0.0, 1e-310, std::numeric_limits<double>::infinity(), 1.0 / 3.0}) {
    out.f64(v);
  }
  const std::string bytes = out.take();
  core::ByteReader in(bytes);
  CHECK(in.f64() == 0.0);
  CHECK(std::signbit(in.f64()));
  CHECK(in.f64() == 1e-310);
  CHECK(std::isinf(in.f64()));
  CHECK(in.f64() == 1.0 / 3.0);
  CHECK(in.done());
}

TEST_CASE("the bytes of a json value, read whole, decode to that value and leave the reader after it",
          "[core][checkpoint]") {
  // What a holder of values in this encoding keeps (core::FlatJson): one value's bytes, exactly.
  core::ByteWriter out;
  out.json(every_kind());
  const std::string one_value = out.bytes();
  out.text("after");
  const std::string bytes = out.take();
  core::ByteReader in(bytes);
  const std::string_view kept = in.json_bytes();
  CHECK(kept == one_value);
  CHECK(in.text() == "after");
  CHECK(in.done());
  CHECK(core::ByteReader(kept).json() == every_kind());
  CHECK(*core::FlatJson::of_bytes(std::string(kept)) == every_kind());
  CHECK(core::FlatJson(every_kind()).bytes() == one_value);
  CHECK((*core::FlatJson(every_kind())).dump() == every_kind().dump());  // the number types kept apart
  // A value cut short gives no bytes and fails the reader.
  for (size_t cut = 0; cut < one_value.size(); ++cut) {
    INFO("cut to " << cut << " of " << one_value.size() << " bytes");
    core::ByteReader short_input(std::string_view(one_value).substr(0, cut));
    CHECK(short_input.json_bytes().empty());
    CHECK_FALSE(short_input.ok());
  }
}

TEST_CASE("a kept value's bytes written as they are equal the value written again", "[core][checkpoint]") {
  // A writer copies what a FlatJson keeps instead of decoding it into a document (json_bytes):
  // the section's bytes must be those json() writes of the decoded value.
  const core::FlatJson kept(every_kind());
  core::ByteWriter copied;
  copied.text("before");
  copied.json_bytes(kept.bytes());
  copied.json_bytes(core::FlatJson().bytes());  // none kept: null, as *FlatJson() is
  core::ByteWriter written;
  written.text("before");
  written.json(*kept);
  written.json(*core::FlatJson());
  CHECK(copied.bytes() == written.bytes());
}
