#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "avps/core/canonical_json.hpp"
#include "avps/core/hash.hpp"

using avps::core::canonical_json;
using avps::core::sha256_hex;

TEST_CASE("sha256 of known inputs matches the published test vectors", "[core][hash]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(avps::core::is_sha256_hex(sha256_hex("x")));
  CHECK_FALSE(avps::core::is_sha256_hex("ABC"));
}

TEST_CASE("sha256 of parts is the sha256 of their concatenation, whatever the cut", "[core][hash]") {
  using avps::core::sha256_hex_joined;
  CHECK(sha256_hex_joined({"a", "b", "c"}) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex_joined({}) == sha256_hex(""));
  CHECK(sha256_hex_joined({"", "abc", ""}) == sha256_hex("abc"));
  const std::string event = "{\"body\":{\"n\":1},\"kind\":\"step\",\"seq\":7}";
  for (size_t cut = 0; cut <= event.size(); ++cut) {
    const std::string_view whole(event);
    CHECK(sha256_hex_joined({whole.substr(0, cut), whole.substr(cut)}) == sha256_hex(event));
  }
  CHECK(sha256_hex_joined({"ab", "c"}) != sha256_hex_joined({"ab", "d"}));
}

TEST_CASE("canonical JSON sorts keys and drops whitespace, so equal values hash equal", "[core][json]") {
  auto a = nlohmann::json::parse(R"({"b": 1, "a": {"d": [1, 2], "c": "x"}})");
  auto b = nlohmann::json::parse(R"({"a":{"c":"x","d":[1,2]},"b":1})");
  REQUIRE(canonical_json(a).value() == R"({"a":{"c":"x","d":[1,2]},"b":1})");
  CHECK(canonical_json(a).value() == canonical_json(b).value());
}

TEST_CASE("canonical JSON refuses invalid UTF-8 instead of replacing it", "[core][json]") {
  nlohmann::json bad = std::string("\xff\xfe");
  CHECK_FALSE(canonical_json(bad).ok());
}

TEST_CASE("a forked hasher digests the prefix and goes on apart from the one it came from", "[core][hash]") {
  avps::core::Sha256 whole;
  whole.update("ab");
  avps::core::Sha256 prefix = whole.fork();
  whole.update("c");
  avps::core::Sha256 moved = std::move(prefix);
  CHECK(moved.hex() == sha256_hex("ab"));
  CHECK(whole.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
