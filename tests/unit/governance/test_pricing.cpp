// The cost model: integer micro-USD, every division rounded up, and no price ever assumed to be 0.

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "avps/governance/pricing.hpp"
#include "unit/governance/governance_support.hpp"

namespace {

using namespace avps;
using namespace avps::governance;
using nlohmann::json;

Model text_model(int64_t in_price, int64_t out_price, int64_t context = 128000) {
  ModelsFile file = avps::testing::models_from(
      {avps::testing::text_model("m", "t1", in_price, out_price, true, false, context)});
  return file.models().front();
}

}  // namespace

TEST_CASE("token costs are integers rounded up to the next micro-dollar", "[governance]") {
  Model model = text_model(150000, 600000);  // $0.15 / $0.60 per million tokens
  // 1000 × 0.15 + 500 × 0.60 = 450 micro-USD exactly.
  CHECK(token_cost(model, 1000, 500).value() == 450);
  // 7 × 0.15 + 3 × 0.60 = 2.85 micro-USD -> 3.
  CHECK(token_cost(model, 7, 3).value() == 3);
  // A single input token costs 0.15 micro-USD: charged 1, never 0.
  CHECK(token_cost(model, 1, 0).value() == 1);
  CHECK(token_cost(model, 0, 0).value() == 0);
  // One rounding per call: 1,000,001 input tokens = 150,000.15 -> 150,001.
  CHECK(token_cost(model, 1'000'001, 0).value() == 150'001);
}

TEST_CASE("the worst case of a call clamps max output tokens to what the context leaves", "[governance]") {
  Model model = text_model(1'000'000, 2'000'000, 10'000);  // $1 / $2 per million, 10k context
  CHECK(clamp_output_tokens(model, 9'000, 4'000).value() == 1'000);
  CHECK(clamp_output_tokens(model, 1'000, 4'000).value() == 4'000);
  // 9000 × 1 + 1000 × 2 = 11,000 micro-USD: the clamped 1000 tokens, not the requested 4000.
  CHECK(worst_case_call_cost(model, 9'000, 4'000).value() == 11'000);

  auto unbounded = worst_case_call_cost(model, 10, 0);
  REQUIRE_FALSE(unbounded.ok());
  CHECK(unbounded.error().code == ErrorCode::invalid_argument);
  auto too_big = worst_case_call_cost(model, 10'000, 100);
  REQUIRE_FALSE(too_big.ok());
  CHECK(too_big.error().code == ErrorCode::configuration);
}

TEST_CASE("a model without a price is refused naming it and the missing price, never priced at 0",
          "[governance]") {
  ModelsFile fixture = avps::testing::fixture_models();
  const Model* comfy = fixture.find("local-comfyui");
  REQUIRE(comfy != nullptr);

  auto video = final_video_price(*comfy, "1920x1080");
  REQUIRE_FALSE(video.ok());
  CHECK(video.error().code == ErrorCode::configuration);
  CHECK_THAT(video.error().message, Catch::Contains("local-comfyui"));
  CHECK_THAT(video.error().message, Catch::Contains("$0"));
  CHECK_FALSE(proxy_video_price(*comfy).ok());
  CHECK_FALSE(token_cost(*comfy, 10, 10).ok());
  CHECK_FALSE(image_cost(*comfy, 1).ok());
  CHECK_FALSE(actual_call_cost(*comfy, 10, 10, int64_t{5}).ok());  // a provider figure is no excuse

  // Half a price is no price: input priced, output not.
  json half = avps::testing::text_model("half", "t1", 100, 100);
  half["pricing"].erase("output_per_mtok_micro_usd");
  ModelsFile file = avps::testing::models_from({half});
  auto cost = token_cost(file.models().front(), 10, 10);
  REQUIRE_FALSE(cost.ok());
  CHECK_THAT(cost.error().message,
             Catch::Contains("\"half\"") && Catch::Contains("output_per_mtok_micro_usd"));

  // A video model without a price at (or above) the final resolution.
  const Model* mid = fixture.find("sim-video-mid");
  REQUIRE(mid != nullptr);
  auto uhd = final_video_price(*mid, "3840x2160");
  REQUIRE_FALSE(uhd.ok());
  CHECK_THAT(uhd.error().message, Catch::Contains("sim-video-mid") && Catch::Contains("3840x2160"));
  auto image = image_cost(*mid, 1);
  REQUIRE_FALSE(image.ok());
  CHECK_THAT(image.error().message, Catch::Contains("per_image_micro_usd"));
}

TEST_CASE("video is priced per second at the resolution, rounded up to the micro-dollar", "[governance]") {
  ModelsFile file = avps::testing::models_from({avps::testing::video_model(
      "v", "gen_low",
      {{"640x360", 20001}, {"1280x720", 50000}, {"1920x1080", 80000}, {"2048x1080", 70000}})});
  const Model& model = file.models().front();

  CHECK(final_video_price(model, "1920x1080").value().per_second_micro_usd == 80000);  // exact key wins
  // 1920x817 (2.39:1) is covered by every listed size with as many pixels; the cheapest is chosen.
  VideoPrice scope = final_video_price(model, "1920x817").value();
  CHECK(scope.resolution == "2048x1080");
  CHECK(scope.per_second_micro_usd == 70000);
  // A proxy pays the lowest listed resolution.
  VideoPrice proxy = proxy_video_price(model).value();
  CHECK(proxy.resolution == "640x360");
  CHECK(proxy.per_second_micro_usd == 20001);

  CHECK(video_cost(proxy, 4000).value() == 80004);  // 4 s × 20001
  CHECK(video_cost(proxy, 1).value() == 21);        // 20.001 -> 21
  CHECK(video_cost(proxy, 3500).value() == 70004);  // 70003.5 -> 70004
  CHECK(video_cost(proxy, 0).value() == 0);
}

TEST_CASE("durations become whole milliseconds, rounded up, ignoring binary noise", "[governance]") {
  CHECK(duration_ms(4).value() == 4000);
  CHECK(duration_ms(3.5).value() == 3500);
  CHECK(duration_ms(2.3).value() == 2300);  // 2299.9999999999995 in binary
  CHECK(duration_ms(0.1 + 0.2).value() == 300);
  CHECK(duration_ms(0.0004).value() == 1);
  CHECK(duration_ms(1.0005).value() == 1001);
  CHECK_FALSE(duration_ms(-1).ok());
  CHECK_FALSE(duration_ms(std::nan("")).ok());
  CHECK_FALSE(duration_ms(std::numeric_limits<double>::infinity()).ok());
}

TEST_CASE("the actual cost prefers the provider's figure and flags a divergence over 2 percent",
          "[governance]") {
  Model model = text_model(1'000'000, 2'000'000);
  auto local = actual_call_cost(model, 1000, 500, std::nullopt).value();
  CHECK(local.micro_usd == 2000);
  CHECK(local.source == CostSource::local);
  CHECK_FALSE(local.diverges);

  auto close = actual_call_cost(model, 1000, 500, int64_t{2040}).value();  // +2 %: not divergent
  CHECK(close.micro_usd == 2040);
  CHECK(close.source == CostSource::provider);
  CHECK(close.local_micro_usd == 2000);
  CHECK_FALSE(close.diverges);

  auto far = actual_call_cost(model, 1000, 500, int64_t{2041}).value();
  CHECK(far.diverges);
  auto zero = actual_call_cost(model, 1000, 500, int64_t{0}).value();  // a provider's $0 is flagged
  CHECK(zero.diverges);
  auto negative = actual_call_cost(model, 1000, 500, int64_t{-1}).value();
  CHECK(negative.micro_usd == 2000);
  CHECK(negative.diverges);

  auto video = actual_video_cost(VideoPrice{"640x360", 20000}, 4.2, std::nullopt).value();
  CHECK(video.micro_usd == 84000);
}

TEST_CASE("costs that overflow 64 bits are errors, not wrapped numbers", "[governance]") {
  Model model = text_model(std::numeric_limits<int64_t>::max() / 2, 1);
  CHECK_FALSE(token_cost(model, 4, 0).ok());
  CHECK_FALSE(scale_up(std::numeric_limits<int64_t>::max(), 2, 1).ok());
  CHECK_FALSE(add_money(std::numeric_limits<int64_t>::max(), 1).ok());
}

TEST_CASE("money prints as exact dollars with six decimals", "[governance]") {
  CHECK(format_usd(0) == "$0.000000");
  CHECK(format_usd(973000) == "$0.973000");
  CHECK(format_usd(15'000'000'001) == "$15000.000001");
  CHECK(format_usd(-1'680'000) == "-$1.680000");
}
