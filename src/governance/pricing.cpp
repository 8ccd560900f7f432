#include "avps/governance/pricing.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace avps::governance {

namespace {

Error overflow(const std::string& what) {
  return make_error(ErrorCode::invalid_argument, what + " overflows 64-bit micro-USD");
}

Result<int64_t> mul(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) {
    return overflow("a cost");
  }
  return out;
}

// ceil(n / d) for n >= 0, d > 0.
int64_t ceil_div(int64_t n, int64_t d) { return n / d + (n % d != 0 ? 1 : 0); }

Error unpriced(const Model& model, const std::string& what) {
  std::string message = "model \"" + model.id + "\" has no " + what +
                        " in the models file; avps never prices a call at $0, so it refuses to use it";
  if (!model.price_source.empty()) {
    message += " (price_source: " + model.price_source + ")";
  }
  return make_error(ErrorCode::configuration, message);
}

Result<int64_t> non_negative(int64_t value, const char* what) {
  if (value < 0) {
    return make_error(ErrorCode::invalid_argument, std::string(what) + " is negative");
  }
  return value;
}

ActualCost settle(int64_t local, std::optional<int64_t> provider) {
  ActualCost cost;
  cost.local_micro_usd = local;
  cost.micro_usd = local;
  if (provider && *provider < 0) {
    // A negative bill is broken data: charge the local figure and flag it for reconciliation.
    cost.provider_micro_usd = provider;
    cost.diverges = true;
  } else if (provider) {
    cost.provider_micro_usd = provider;
    cost.micro_usd = *provider;
    cost.source = CostSource::provider;
    // |provider - local| > 2 % of local, in integers (both are at most ~9e18 / 50 in practice;
    // a difference that large is divergent anyway).
    int64_t diff = *provider > local ? *provider - local : local - *provider;
    int64_t scaled = 0;
    cost.diverges = __builtin_mul_overflow(diff, int64_t{50}, &scaled) || scaled > local;
  }
  return cost;
}

}  // namespace

std::string format_usd(int64_t micro_usd) {
  std::string sign = micro_usd < 0 ? "-" : "";
  // Avoid negating INT64_MIN: work on the unsigned magnitude.
  uint64_t magnitude =
      micro_usd < 0 ? uint64_t{0} - static_cast<uint64_t>(micro_usd) : static_cast<uint64_t>(micro_usd);
  std::string fraction = std::to_string(magnitude % 1'000'000);
  fraction.insert(0, 6 - fraction.size(), '0');
  return sign + "$" + std::to_string(magnitude / 1'000'000) + "." + fraction;
}

Result<int64_t> duration_ms(double seconds) {
  // 1e12 ms is 31 years of footage: anything above is a broken input, not a film.
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e9) {
    return make_error(ErrorCode::invalid_argument,
                      "duration " + std::to_string(seconds) + " s is not a non-negative number of seconds");
  }
  double scaled = seconds * 1000.0;
  double nearest = std::nearbyint(scaled);
  double ms = std::fabs(scaled - nearest) < 1e-6 ? nearest : std::ceil(scaled);
  return static_cast<int64_t>(ms);
}

Result<int64_t> pixel_count(std::string_view resolution) {
  size_t x = resolution.find('x');
  int64_t width = 0;
  int64_t height = 0;
  if (x != std::string_view::npos && x > 0 && x + 1 < resolution.size() && x <= 5 &&
      resolution.size() - x - 1 <= 5) {
    auto w = std::from_chars(resolution.data(), resolution.data() + x, width);
    auto h = std::from_chars(resolution.data() + x + 1, resolution.data() + resolution.size(), height);
    if (w.ec == std::errc() && w.ptr == resolution.data() + x && h.ec == std::errc() &&
        h.ptr == resolution.data() + resolution.size() && width > 0 && height > 0) {
      return width * height;
    }
  }
  return make_error(ErrorCode::invalid_argument,
                    "\"" + std::string(resolution) + "\" is not a resolution WIDTHxHEIGHT such as 1280x720");
}

Result<int64_t> clamp_output_tokens(const Model& model, int64_t input_tokens,
                                    int64_t requested_output_tokens) {
  if (requested_output_tokens <= 0) {
    // An unbounded request would reserve the whole remaining budget (LiteLLM PR #27539).
    return make_error(ErrorCode::invalid_argument,
                      "a model call must set max_output_tokens (> 0); model \"" + model.id + "\"");
  }
  AVPS_TRY(non_negative(input_tokens, "input token count"));
  int64_t room = model.capabilities.context_tokens - input_tokens;
  if (room <= 0) {
    return make_error(ErrorCode::configuration,
                      "a request of " + std::to_string(input_tokens) + " input tokens does not fit model \"" +
                          model.id + "\" (context " + std::to_string(model.capabilities.context_tokens) +
                          " tokens)");
  }
  return std::min(requested_output_tokens, room);
}

Result<int64_t> token_cost(const Model& model, int64_t input_tokens, int64_t output_tokens) {
  if (!model.pricing) {
    return unpriced(model, "pricing");
  }
  if (!model.pricing->input_per_mtok) {
    return unpriced(model, "input token price (pricing.input_per_mtok_micro_usd)");
  }
  if (!model.pricing->output_per_mtok) {
    return unpriced(model, "output token price (pricing.output_per_mtok_micro_usd)");
  }
  AVPS_TRY(non_negative(input_tokens, "input token count"));
  AVPS_TRY(non_negative(output_tokens, "output token count"));
  // Sum before dividing: one rounding per call, still never below the table's price.
  AVPS_TRY_ASSIGN(int64_t in, mul(input_tokens, *model.pricing->input_per_mtok));
  AVPS_TRY_ASSIGN(int64_t out, mul(output_tokens, *model.pricing->output_per_mtok));
  AVPS_TRY_ASSIGN(int64_t total, add_money(in, out));
  return ceil_div(total, k_tokens_per_mtok);
}

Result<int64_t> worst_case_call_cost(const Model& model, int64_t input_tokens, int64_t max_output_tokens) {
  AVPS_TRY_ASSIGN(int64_t output, clamp_output_tokens(model, input_tokens, max_output_tokens));
  return token_cost(model, input_tokens, output);
}

Result<VideoPrice> final_video_price(const Model& model, std::string_view resolution) {
  if (!model.pricing || model.pricing->per_video_second.empty()) {
    return unpriced(model, "video price (pricing.per_video_second_micro_usd)");
  }
  const auto& prices = model.pricing->per_video_second;
  if (auto exact = prices.find(std::string(resolution)); exact != prices.end()) {
    return VideoPrice{exact->first, exact->second};
  }
  AVPS_TRY_ASSIGN(int64_t wanted, pixel_count(resolution));
  std::optional<VideoPrice> best;
  for (const auto& [key, price] : prices) {
    AVPS_TRY_ASSIGN(int64_t pixels, pixel_count(key));
    if (pixels >= wanted && (!best || price < best->per_second_micro_usd)) {
      best = VideoPrice{key, price};
    }
  }
  if (!best) {
    return unpriced(model, "video price for " + std::string(resolution) + " or larger");
  }
  return *best;
}

Result<VideoPrice> proxy_video_price(const Model& model) {
  if (!model.pricing || model.pricing->per_video_second.empty()) {
    return unpriced(model, "video price (pricing.per_video_second_micro_usd)");
  }
  std::optional<VideoPrice> best;
  int64_t best_pixels = 0;
  for (const auto& [key, price] : model.pricing->per_video_second) {
    AVPS_TRY_ASSIGN(int64_t pixels, pixel_count(key));
    if (!best || pixels < best_pixels || (pixels == best_pixels && price < best->per_second_micro_usd)) {
      best = VideoPrice{key, price};
      best_pixels = pixels;
    }
  }
  return *best;
}

Result<int64_t> scale_up(int64_t value, int64_t numerator, int64_t denominator) {
  if (value < 0 || numerator < 0 || denominator <= 0) {
    return make_error(ErrorCode::invalid_argument,
                      "scale_up wants non-negative values and a positive denominator");
  }
  AVPS_TRY_ASSIGN(int64_t product, mul(value, numerator));
  return ceil_div(product, denominator);
}

Result<int64_t> add_money(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) {
    return overflow("a sum of costs");
  }
  return out;
}

Result<int64_t> video_cost(const VideoPrice& price, int64_t duration_in_ms) {
  AVPS_TRY(non_negative(duration_in_ms, "duration"));
  return scale_up(duration_in_ms, price.per_second_micro_usd, 1000);
}

Result<int64_t> image_cost(const Model& model, int64_t images) {
  if (!model.pricing || !model.pricing->per_image) {
    return unpriced(model, "image price (pricing.per_image_micro_usd)");
  }
  AVPS_TRY(non_negative(images, "image count"));
  return mul(images, *model.pricing->per_image);
}

std::string_view cost_source_name(CostSource source) {
  switch (source) {
    case CostSource::local: return "local";
    case CostSource::provider: return "provider";
  }
  return "local";
}

Result<ActualCost> actual_call_cost(const Model& model, int64_t input_tokens, int64_t output_tokens,
                                    std::optional<int64_t> provider_micro_usd, int64_t cached_input_tokens) {
  AVPS_TRY_ASSIGN(int64_t local, token_cost(model, input_tokens, output_tokens));
  AVPS_TRY_ASSIGN(int64_t saving, caching_saving(model, std::min(cached_input_tokens, input_tokens)));
  return settle(local - saving, provider_micro_usd);
}

Result<int64_t> caching_saving(const Model& model, int64_t cached_input_tokens) {
  if (cached_input_tokens <= 0 || !model.pricing || !model.pricing->cached_input_per_mtok ||
      !model.pricing->input_per_mtok || *model.pricing->cached_input_per_mtok >= *model.pricing->input_per_mtok) {
    return int64_t{0};
  }
  const int64_t per_mtok_saved = *model.pricing->input_per_mtok - *model.pricing->cached_input_per_mtok;
  AVPS_TRY_ASSIGN(int64_t saved, mul(cached_input_tokens, per_mtok_saved));
  // Rounded down, so a call is never charged below what the table's prices give.
  return saved / k_tokens_per_mtok;
}

Result<ActualCost> actual_image_cost(const Model& model, int64_t images, std::optional<int64_t> provider_micro_usd) {
  AVPS_TRY_ASSIGN(int64_t local, image_cost(model, images));
  return settle(local, provider_micro_usd);
}

Result<ActualCost> actual_video_cost(const VideoPrice& price, double seconds_billed,
                                     std::optional<int64_t> provider_micro_usd) {
  AVPS_TRY_ASSIGN(int64_t ms, duration_ms(seconds_billed));
  AVPS_TRY_ASSIGN(int64_t local, video_cost(price, ms));
  return settle(local, provider_micro_usd);
}

}  // namespace avps::governance
