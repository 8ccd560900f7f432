#pragma once
// The cost model: what a call or a generation costs, in integer micro-USD, from the models file.
//
// Rules every function here keeps (DESIGN §1.4, lessons-gateways §2c/§2d):
//   - int64_t arithmetic only; every division rounds UP to the next micro-dollar, so an estimate
//     is never below what the price table says. Overflow is an error, never a wrap.
//   - A price the models file does not give is refused (ErrorCode::configuration, naming the model
//     and the missing price). Nothing is ever priced at $0 by default.
//   - Durations are counted in whole milliseconds, rounded up (binary noise below 1e-6 ms is
//     ignored, so 2.3 s is 2300 ms, not 2301).
//
// Resolutions are "WxH" pixel strings, as the models file and avps.json write them. A final render
// is priced at the cheapest listed resolution covering the requested pixel count (the exact one
// when listed); a proxy render at the model's lowest listed resolution (DESIGN §3).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "avps/core/result.hpp"
#include "avps/governance/models.hpp"

namespace avps::governance {

inline constexpr int64_t k_micro_usd_per_usd = 1'000'000;
inline constexpr int64_t k_tokens_per_mtok = 1'000'000;

/// "$1.234567" (exact: micro-USD have six decimals).
std::string format_usd(int64_t micro_usd);

/// ceil(seconds × 1000) as above. invalid_argument for a negative, non-finite or absurd value.
[[nodiscard]] Result<int64_t> duration_ms(double seconds);

/// Width × height of "1280x720"; invalid_argument otherwise.
[[nodiscard]] Result<int64_t> pixel_count(std::string_view resolution);

/// The output tokens a call may really produce: min(requested, context − input). This is what the
/// engine sends as max_tokens, so the worst case below holds. invalid_argument when requested ≤ 0
/// or input < 0; configuration when the input alone does not fit the model's context.
[[nodiscard]] Result<int64_t> clamp_output_tokens(const Model& model, int64_t input_tokens,
                                                  int64_t requested_output_tokens);

/// Cost of a model call that used these tokens: ceil((in × input price + out × output price) / 1e6).
/// Needs both token prices.
[[nodiscard]] Result<int64_t> token_cost(const Model& model, int64_t input_tokens, int64_t output_tokens);

/// The most a call can cost: token_cost(input, clamp_output_tokens(max_output)). What the budget
/// governor reserves before the call.
[[nodiscard]] Result<int64_t> worst_case_call_cost(const Model& model, int64_t input_tokens,
                                                   int64_t max_output_tokens);

/// One listed per-second video price.
struct VideoPrice {
  std::string resolution;  ///< the listed key the price is for, "1280x720"
  int64_t per_second_micro_usd = 0;
};
/// The price a final render at `resolution` pays: the exact key if listed, else the cheapest
/// listed resolution with at least as many pixels. configuration error naming the model when none.
[[nodiscard]] Result<VideoPrice> final_video_price(const Model& model, std::string_view resolution);
/// The model's lowest listed resolution (fewest pixels, then cheapest): what a proxy pays.
[[nodiscard]] Result<VideoPrice> proxy_video_price(const Model& model);

/// ceil(duration_ms × per-second price / 1000).
[[nodiscard]] Result<int64_t> video_cost(const VideoPrice& price, int64_t duration_ms);
/// images × per-image price.
[[nodiscard]] Result<int64_t> image_cost(const Model& model, int64_t images);

/// ceil(value × numerator / denominator) for non-negative value and positive denominator.
[[nodiscard]] Result<int64_t> scale_up(int64_t value, int64_t numerator, int64_t denominator);
/// a + b, or an error on overflow.
[[nodiscard]] Result<int64_t> add_money(int64_t a, int64_t b);

/// Where an actual cost comes from.
enum class CostSource {
  local,     ///< computed from the reported usage and the models file
  provider,  ///< the provider's own reported cost (authoritative, like OpenRouter's usage.cost)
};
std::string_view cost_source_name(CostSource source);  ///< "local", "provider"

/// The settled cost of a finished call.
struct ActualCost {
  int64_t micro_usd =
      0;  ///< what is charged: the provider's figure when reported (and not negative), else local
  CostSource source = CostSource::local;
  int64_t local_micro_usd = 0;  ///< always computed, for reconciliation
  std::optional<int64_t> provider_micro_usd;
  bool diverges = false;  ///< provider and local differ by more than 2 % (lessons-gateways target 16)
};

/// Actual cost of a model call from its reported usage (and the provider's cost if it gave one).
/// The model must be priced even when the provider reports a cost: the local figure is what the
/// provider's is checked against. A call whose usage was not reported is not priced here: the
/// budget governor charges its reservation instead.
/// `cached_input_tokens` (of input_tokens, read from the provider's prompt cache) are priced at
/// pricing.cached_input_per_mtok where the model has one, else as input.
[[nodiscard]] Result<ActualCost> actual_call_cost(const Model& model, int64_t input_tokens,
                                                  int64_t output_tokens,
                                                  std::optional<int64_t> provider_micro_usd,
                                                  int64_t cached_input_tokens = 0);
/// What prompt caching saved on a call: its cached input tokens priced as input, less priced at
/// the cached rate (0 when the model has no cached rate). Micro-USD, rounded down.
[[nodiscard]] Result<int64_t> caching_saving(const Model& model, int64_t cached_input_tokens);
/// Actual cost of a generation: billed seconds at `price`, or the provider's figure.
/// Actual cost of `images` images: per_image_micro_usd each, or the provider's figure when it
/// reported one (an async_job image model with a cost_path), the local price beside it.
[[nodiscard]] Result<ActualCost> actual_image_cost(const Model& model, int64_t images,
                                                   std::optional<int64_t> provider_micro_usd);
[[nodiscard]] Result<ActualCost> actual_video_cost(const VideoPrice& price, double seconds_billed,
                                                   std::optional<int64_t> provider_micro_usd);

}  // namespace avps::governance
