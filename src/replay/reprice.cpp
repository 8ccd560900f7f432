// `avps replay --reprice` (replay.hpp): the record's answered calls priced under two tables.

#include <algorithm>
#include <map>

#include "avps/core/clock.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/project/project.hpp"
#include "avps/replay/replay.hpp"
#include "record_reading.hpp"

namespace avps::replay {
namespace fs = std::filesystem;
using nlohmann::json;

json CostLine::to_json() const {
  return {{"name", name},
          {"calls", calls},
          {"charged_micro_usd", charged_micro_usd},
          {"current_pico_usd", current_pico_usd},
          {"repriced_pico_usd", repriced_pico_usd}};
}

json Repricing::to_json() const {
  auto lines = [](const std::vector<CostLine>& list) {
    json out = json::array();
    for (const CostLine& line : list) {
      out.push_back(line.to_json());
    }
    return out;
  };
  return {{"by_scene", lines(by_scene)},
          {"by_tier", lines(by_tier)},
          {"by_model", lines(by_model)},
          {"total", total.to_json()},
          {"unanswered", {{"calls", unanswered}, {"charged_micro_usd", unanswered_micro_usd}}}};
}

std::string format_pico_usd(int64_t pico_usd) {
  return governance::format_usd(pico_usd / 1'000'000 + (pico_usd % 1'000'000 > 0 ? 1 : 0));
}

namespace {

constexpr int64_t k_pico_per_micro = 1'000'000;

Result<int64_t> times(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) {
    return make_error(ErrorCode::invalid_argument, "a repriced amount overflows");
  }
  return out;
}

// The exact cost of one recorded answer at `model`'s prices, in pico-USD. `request`: the
// canonical request (a generation's resolution and pixel size).
Result<int64_t> exact_cost(const governance::Model& model, const json& response, const json& request) {
  auto missing = [&](const std::string& what) {
    return make_error(ErrorCode::configuration, "model \"" + model.id + "\" has no " + what + " in the price table");
  };
  if (!model.pricing) {
    return missing("pricing");
  }
  const governance::Pricing& price = *model.pricing;
  if (response.contains("media_sha256")) {
    const std::string resolution = request.value("resolution", "");
    if (resolution == "storyboard") {
      if (!price.per_image) {
        return missing("per-image price");
      }
      return times(*price.per_image, k_pico_per_micro);
    }
    AVPS_TRY_ASSIGN(governance::VideoPrice video, resolution == "final"
                                                      ? governance::final_video_price(model, request.value("pixels", ""))
                                                      : governance::proxy_video_price(model));
    AVPS_TRY_ASSIGN(int64_t ms, governance::duration_ms(response.value("seconds_billed", 0.0)));
    AVPS_TRY_ASSIGN(int64_t per_ms, times(video.per_second_micro_usd, ms));
    return times(per_ms, k_pico_per_micro / 1000);
  }
  if (!price.input_per_mtok || !price.output_per_mtok) {
    return missing("token prices");
  }
  const int64_t input = response.value("input_tokens", int64_t{0});
  const int64_t cached = std::clamp<int64_t>(response.value("cached_input_tokens", int64_t{0}), 0, input);
  const int64_t cached_price = std::min(price.cached_input_per_mtok.value_or(*price.input_per_mtok), *price.input_per_mtok);
  // Per-Mtok micro-USD × tokens is pico-USD exactly.
  AVPS_TRY_ASSIGN(int64_t uncached_cost, times(input - cached, *price.input_per_mtok));
  AVPS_TRY_ASSIGN(int64_t cached_cost, times(cached, cached_price));
  AVPS_TRY_ASSIGN(int64_t output_cost, times(response.value("output_tokens", int64_t{0}), *price.output_per_mtok));
  AVPS_TRY_ASSIGN(int64_t sum, governance::add_money(uncached_cost, cached_cost));
  return governance::add_money(sum, output_cost);
}

Result<void> add_to(std::map<std::string, CostLine>& lines, const std::string& name, int64_t charged, int64_t current,
                    int64_t repriced) {
  CostLine& line = lines[name];
  line.name = name;
  ++line.calls;
  AVPS_TRY_ASSIGN(line.charged_micro_usd, governance::add_money(line.charged_micro_usd, charged));
  AVPS_TRY_ASSIGN(line.current_pico_usd, governance::add_money(line.current_pico_usd, current));
  AVPS_TRY_ASSIGN(line.repriced_pico_usd, governance::add_money(line.repriced_pico_usd, repriced));
  return ok();
}

std::vector<CostLine> lines_of(std::map<std::string, CostLine> lines) {
  std::vector<CostLine> out;
  for (auto& [name, line] : lines) {
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace

Result<Repricing> reprice(const fs::path& project_dir, const std::string& run, const fs::path& price_table) {
  core::SystemClock clock;
  AVPS_TRY_ASSIGN(std::unique_ptr<project::Project> project,
                  project::Project::open(project_dir, ledger::OpenMode::read_only, {}, clock));
  AVPS_TRY_ASSIGN(governance::ModelsFile current,
                  governance::ModelsFile::load(project::data_dir(), project_dir, project->config()));
  AVPS_TRY_ASSIGN(governance::ModelsFile table, governance::ModelsFile::load_file(project::data_dir(), price_table));
  AVPS_TRY_ASSIGN(std::optional<std::string> run_id, run_filter(run));
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, project->ledger().events());
  std::map<std::string, json> intents;  // key -> its first intent
  for (const ledger::Event& e : events) {
    if (e.kind == "exchange.intent") {
      intents.emplace(e.body.value("key", ""), e.body);
    }
  }
  std::map<std::string, CostLine> scenes, tiers, models, total;
  total["total"].name = "total";
  Repricing out;
  bool found_run = !run_id;
  for (const ledger::Event& e : events) {
    if (run_id && e.run_id != *run_id) {
      continue;
    }
    found_run = true;
    if (e.kind == "budget.reconciled") {
      ++out.unanswered;
      AVPS_TRY_ASSIGN(out.unanswered_micro_usd,
                      governance::add_money(out.unanswered_micro_usd,
                                            e.body.value(json::json_pointer("/reservation_end/settled_micro_usd"),
                                                         int64_t{0})));
      continue;
    }
    if (e.kind != "exchange.response") {
      continue;
    }
    const std::string model_id = e.body.value("model", "");
    const json& intent = intents[e.body.value("key", "")];
    json request = json::object();
    if (e.body.contains("media_sha256")) {
      request = object_json(project->ledger(), intent.value("request_sha256", ""));
      if (request.is_null()) {
        return make_error(ErrorCode::corruption, "the request of ledger event " + std::to_string(e.seq) +
                                                     " cannot be read; run `avps gate`");
      }
    }
    const governance::Model* now = current.find(model_id);
    const governance::Model* then = table.find(model_id);
    if (now == nullptr || then == nullptr) {
      return make_error(ErrorCode::configuration,
                        "model \"" + model_id + "\" answered calls of the record but is not in " +
                            (then == nullptr ? price_table.string() : std::string("the project's models file")) +
                            "; a price table for --reprice lists every model the record used");
    }
    AVPS_TRY_ASSIGN(int64_t current_cost, exact_cost(*now, e.body, request));
    AVPS_TRY_ASSIGN(int64_t repriced_cost, exact_cost(*then, e.body, request));
    const int64_t charged = e.body.value("cost_micro_usd", int64_t{0});
    const std::string scene = e.body.value("scene_id", "");
    AVPS_TRY(add_to(scenes, scene.empty() ? "(project)" : scene, charged, current_cost, repriced_cost));
    AVPS_TRY(add_to(tiers, intent.value("tier", "?"), charged, current_cost, repriced_cost));
    AVPS_TRY(add_to(models, model_id, charged, current_cost, repriced_cost));
    AVPS_TRY(add_to(total, "total", charged, current_cost, repriced_cost));
  }
  if (!found_run) {
    return make_error(ErrorCode::not_found, "--run " + run + ": the ledger has no run " + *run_id);
  }
  out.total = total["total"];
  out.by_scene = lines_of(std::move(scenes));
  out.by_tier = lines_of(std::move(tiers));
  out.by_model = lines_of(std::move(models));
  return out;
}

}  // namespace avps::replay
