#include <catch2/catch.hpp>

#include "avps/replay/replay.hpp"

using avps::replay::first_difference;
using nlohmann::json;

TEST_CASE("first_difference names the first JSON pointer where two documents differ", "[replay]") {
  CHECK_FALSE(first_difference(json{{"a", 1}}, json{{"a", 1}}).has_value());
  CHECK(first_difference(json{{"a", 1}, {"b", 2}}, json{{"a", 1}, {"b", 3}}) == "/b");
  // Keys in byte order: the first differing key wins, wherever it sits in either document.
  CHECK(first_difference(json{{"prompt", "x"}, {"model", "m1"}}, json{{"prompt", "y"}, {"model", "m2"}}) == "/model");
  CHECK(first_difference(json{{"inputs", {{"BEATS", {1, 2, 3}}}}}, json{{"inputs", {{"BEATS", {1, 5, 3}}}}}) ==
        "/inputs/BEATS/1");
  CHECK(first_difference(json{{"a", {1, 2}}}, json{{"a", {1, 2, 3}}}) == "/a/2");  // one array is longer
  CHECK(first_difference(json{{"a", 1}}, json{{"a", 1}, {"z", 0}}) == "/z");        // a key only one has
  CHECK(first_difference(json{{"a/b~c", 1}}, json{{"a/b~c", 2}}) == "/a~1b~0c");   // RFC 6901 escapes
  CHECK(first_difference(json(1), json("1")) == "");                               // the root itself
}
