// The report page (html.hpp). Everything is written server-side from the model, so the page is
// complete before its script runs; the script only sorts, filters and pages tables.
#include "avps/report/html.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <vector>

#include "avps/core/canonical_json.hpp"
#include "avps/governance/budget.hpp"

namespace avps::report {

namespace {
using nlohmann::json;

// Rows a paged table shows at once: long lists stay light at 500 scenes.
constexpr int k_page_rows = 50;
// Frames the contact sheet shows at once. The others' images wait in data-src until the script
// pages to them: decoding 4,000 frames at load would double a 500-scene page's load time.
constexpr int k_sheet_page = 60;

// Money as people read it: dollars and cents (rounded half up); the exact micro-USD are in the
// element's data- attributes and title, and in the JSON.
std::string usd(int64_t micro) {
  const int64_t cents = (micro + (micro >= 0 ? 5000 : -5000)) / 10000;
  std::string whole = std::to_string((cents < 0 ? -cents : cents) / 100);
  for (int at = static_cast<int>(whole.size()) - 3; at > 0; at -= 3) {
    whole.insert(static_cast<size_t>(at), ",");
  }
  const int64_t rest = (cents < 0 ? -cents : cents) % 100;
  return std::string(cents < 0 ? "-$" : "$") + whole + "." + (rest < 10 ? "0" : "") + std::to_string(rest);
}

std::string usd_exact(int64_t micro) { return governance::usd_decimal(micro) + " USD"; }

// "20:46:17" of "2026-12-04T20:46:17.446Z", with the whole timestamp as its title.
std::string clock_cell(const std::string& ts) {
  const std::string shown = ts.size() >= 19 ? ts.substr(11, 8) : ts;
  return "<td title=\"" + html_escape(ts) + "\">" + html_escape(shown) + "</td>";
}

std::string num(double value, int decimals = 0) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string verdict_class(const std::string& verdict) {
  if (verdict == "PASS" || verdict == "ACCEPTED") return "v-pass";
  if (verdict == "WARN") return "v-warn";
  if (verdict == "FIX") return "v-fix";
  if (verdict == "FAIL") return "v-fail";
  if (verdict == "STOP") return "v-stop";
  return "v-none";
}

// What a person does about an open hard stop, by its kind (docs/cli.md, avps override).
std::string remedy(const json& stop) {
  const std::string kind = core::json_text(stop, "kind");
  const std::string id = core::json_text(stop, "id");
  if (kind == "budget") {
    return "raise the " +
           (core::json_text(stop, "cap").empty() ? std::string("project") : core::json_text(stop, "cap")) +
           " cap: avps override DIR --stop " + id + " --raise-cap USD --reason TEXT";
  }
  if (kind == "frozen") {
    return "give the shot more attempts (avps override DIR --stop " + id +
           " --allow-attempts N --reason TEXT) or accept a render (--accept best)";
  }
  if (kind == "integrity") {
    return "run avps gate DIR to see which files differ from the record, restore them, then avps run";
  }
  return "revise the input it stands on (avps artifact edit), allow more attempts (avps override DIR --stop " + id +
         " --allow-attempts N --reason TEXT) or accept an artifact (--accept NAME)";
}

class Page {
 public:
  Page(const json& model, const PageAssets& assets) : m(model), a(assets) { out.reserve(1 << 20); }

  std::string render() {
    head();
    summary();
    spend();
    cost();
    qc();
    loops();
    contact();
    scenes();
    runs();
    tail();
    return std::move(out);
  }

 private:
  void put(const std::string& s) { out += s; }
  void esc(const std::string& s) { out += html_escape(s); }

  void head() {
    const std::string title = core::json_text(m, "title");
    put("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // No fetch of any kind: the page is whole in itself. Images are data: URIs; links to the
    // project's files are navigations, which CSP does not govern.
    put("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n");
    put("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    esc(title);
    put(" · avps report</title>\n<style>\n");
    put(R"CSS(:root{--bg:#fbfbfa;--fg:#1d1d1f;--mut:#6b6b70;--line:#e3e3e0;--card:#fff;--pass:#2e8b57;--warn:#d9a400;--fix:#e07b00;--fail:#c8372d;--stop:#7a1f1a;--none:#c9c9c9;--acc:#3867d6}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:1200px;margin:0 auto;padding:24px}h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 10px;border-bottom:1px solid var(--line);padding-bottom:6px}h3{font-size:15px;margin:18px 0 6px}
nav{position:sticky;top:0;background:var(--bg);border-bottom:1px solid var(--line);padding:8px 24px;z-index:2;font-size:13px}nav a{margin-right:14px;color:var(--acc);text-decoration:none}
.sub{color:var(--mut)}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin:14px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}.card .k{color:var(--mut);font-size:12px}.card .v{font-size:20px;font-weight:600}.card .n{font-size:12px;color:var(--mut)}
.bar{height:6px;background:var(--line);border-radius:3px;margin-top:6px;overflow:hidden}.bar i{display:block;height:100%;background:var(--acc)}.bar i.hot{background:var(--fail)}
table{border-collapse:collapse;width:100%;background:var(--card);font-size:13px}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}th{background:#f3f3f1;position:sticky;top:37px;cursor:pointer;user-select:none}td.r,th.r{text-align:right}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600;color:#fff}.v-pass{background:var(--pass)}.v-warn{background:var(--warn)}.v-fix{background:var(--fix)}.v-fail{background:var(--fail)}.v-stop{background:var(--stop)}.v-none{background:var(--none);color:#333}
.stops{border-left:4px solid var(--fail);background:#fff4f3;padding:8px 12px;margin:12px 0}.stops li{margin:4px 0}.stops code{background:#fff;padding:1px 4px;border:1px solid var(--line)}
.qc td.cell{width:26px;height:22px;padding:0;text-align:center;font-size:11px;color:#fff}.qc td.gap{background:transparent}
.sheet{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}.sheet figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:6px;overflow:hidden}.sheet img{display:block;width:100%;aspect-ratio:16/9;object-fit:cover;background:#222}.sheet .noimg{aspect-ratio:16/9;display:flex;align-items:center;justify-content:center;background:#333;color:#bbb;font-size:12px;padding:8px;text-align:center}.sheet figcaption{padding:6px 8px;font-size:12px}.sheet a{color:var(--acc)}
details{background:var(--card);border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:4px 10px}summary{cursor:pointer;font-weight:600}
.tools{margin:6px 0}.tools input{padding:4px 8px;border:1px solid var(--line);border-radius:4px;width:260px}.pager{margin:6px 0;font-size:12px;color:var(--mut)}.pager button{margin:0 4px}
svg text{font-size:11px;fill:var(--mut)}.legend span{display:inline-block;margin-right:14px;font-size:12px}.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}
)CSS");
    put("</style>\n</head>\n<body>\n<nav><a href=\"#summary\">Summary</a><a href=\"#spend\">Spend</a><a "
        "href=\"#cost\">Cost</a><a href=\"#qc\">QC</a><a href=\"#loops\">Loops</a><a href=\"#contact\">Contact "
        "sheet</a><a href=\"#scenes\">Scenes</a><a href=\"#runs\">Runs</a></nav>\n<main>\n");
  }

  void card(const std::string& key, const std::string& value, const std::string& note = "", int pct = -1,
            bool hot = false, const std::string& title = "") {
    put("<div class=\"card\"" + (title.empty() ? std::string() : " title=\"" + html_escape(title) + "\"") +
        "><div class=\"k\">");
    esc(key);
    put("</div><div class=\"v\">");
    esc(value);
    put("</div>");
    if (!note.empty()) {
      put("<div class=\"n\">");
      esc(note);
      put("</div>");
    }
    if (pct >= 0) {
      put("<div class=\"bar\"><i" + std::string(hot ? " class=\"hot\"" : "") +
          " style=\"width:" + std::to_string(std::min(pct, 100)) + "%\"></i></div>");
    }
    put("</div>");
  }

  void summary() {
    const json& spend = m["spend"];
    const json& usage = m["usage"];
    put("<header id=\"summary\">\n<h1>");
    esc(core::json_text(m, "title"));
    put("</h1>\n<div class=\"sub\">Production report · phase reached: <b id=\"phase-reached\">");
    esc(m["phase_reached"].is_string() ? m["phase_reached"].get<std::string>() : "not started");
    put("</b> · as of event ");
    put(std::to_string(core::json_int(m["as_of"], "seq")));
    put(" (");
    esc(core::json_text(m["as_of"], "ts"));
    put(")");
    if (!a.live_note.empty()) {
      put(" · <b id=\"live-note\">");
      esc(a.live_note);
      put("</b>");
    }
    put("</div>\n<div class=\"cards\">");
    const int64_t committed = core::json_int(spend, "committed_micro_usd");
    const int64_t reserved = core::json_int(spend, "reserved_micro_usd");
    const int64_t cap = core::json_int(spend, "project_cap_micro_usd");
    const int64_t configured = core::json_int(spend, "configured_project_cap_micro_usd");
    const int pct = cap > 0 ? static_cast<int>((committed + reserved) * 100 / cap) : 0;
    put("<div id=\"spend-total\" data-committed-micro-usd=\"" + std::to_string(committed) +
        "\" data-reserved-micro-usd=\"" + std::to_string(reserved) + "\" hidden></div>");
    card("Committed", usd(committed), reserved > 0 ? usd(reserved) + " reserved" : "nothing reserved", -1, false,
         usd_exact(committed) + " committed, " + usd_exact(reserved) + " reserved");
    card("Project cap", usd(cap),
         std::to_string(pct) + " % used" + (cap != configured ? ", raised from " + usd(configured) : "") +
             ", warn at " + std::to_string(core::json_int(spend, "warn_pct")) + " %",
         pct, pct >= core::json_int(spend, "warn_pct"), usd_exact(cap));
    if (spend.contains("projected_micro_usd") && spend["projected_micro_usd"].is_number()) {
      card("Projected", usd(core::json_int(spend, "projected_micro_usd")), "budget-gates' latest projection");
    }
    if (spend["scene_cap_micro_usd"].is_number()) {
      card("Scene cap", usd(core::json_int(spend, "scene_cap_micro_usd")), "each scene");
    }
    if (spend["shot_cap_micro_usd"].is_number()) {
      card("Shot cap", usd(core::json_int(spend, "shot_cap_micro_usd")), "each shot");
    }
    card("Model calls", std::to_string(core::json_int(usage, "calls")),
         std::to_string(core::json_int(usage, "failed_calls")) + " failed, " +
             std::to_string(core::json_int(usage, "retries")) + " retries");
    card("Tokens", std::to_string(core::json_int(usage, "input_tokens") + core::json_int(usage, "output_tokens")),
         std::to_string(core::json_int(usage, "input_tokens")) + " in, " +
             std::to_string(core::json_int(usage, "output_tokens")) + " out");
    const double seconds = usage.value("seconds_rendered", 0.0);
    card("Seconds rendered", num(seconds, 1), std::to_string(core::json_int(usage, "renders")) + " renders");
    int scenes = 0, finals = 0, shots = 0;
    for (const json& s : m["scenes"]) {
      if (s.value("in_latest_scenes", true)) {
        ++scenes;
        finals += static_cast<int>(core::json_int(s["final"], "passed"));
        shots += static_cast<int>(core::json_int(s["final"], "shots"));
      }
    }
    card("Scenes", std::to_string(scenes), std::to_string(finals) + " of " + std::to_string(shots) + " shots final",
         shots > 0 ? finals * 100 / shots : 0);
    put("</div>\n");
    const json& stops = m["hard_stops"];
    put("<div id=\"hard-stops\" data-count=\"" + std::to_string(stops.size()) + "\">");
    if (stops.empty()) {
      put("<p class=\"sub\">No hard stop is open.</p>");
    } else {
      put("<div class=\"stops\"><b>" + std::to_string(stops.size()) + " hard stop(s) wait for a person</b><ul>");
      for (const json& stop : stops) {
        put("<li class=\"stop\"><span class=\"badge v-stop\">");
        esc(core::json_text(stop, "id"));
        put("</span> ");
        esc(core::json_text(stop, "kind") + " · " + core::json_text(stop, "loop") + ": " +
            core::json_text(stop, "reason"));
        put("<br>What to do: <code>");
        esc(remedy(stop));
        put("</code></li>");
      }
      put("</ul></div>");
    }
    put("</div>\n");
    if (!m["stale_shots"].empty()) {
      put("<p class=\"sub\">" + std::to_string(m["stale_shots"].size()) +
          " shot(s) are stale (made from inputs that changed since); the next run renders them again.</p>");
    }
    put("</header>\n");
  }

  // Cumulative committed and committed + reserved over the record, against the cap, the WARN line
  // and the projection; every cap raise marked.
  void spend() {
    put("<section id=\"spend\">\n<h2>Spend over the run</h2>\n");
    const json& series = m["spend_series"];
    const json& spend = m["spend"];
    if (series.empty()) {
      put("<p class=\"sub\">Nothing has been spent or reserved yet.</p></section>\n");
      return;
    }
    const double w = 1000, h = 280, left = 70, right = 20, top = 14, bottom = 30;
    const int64_t first = core::json_int(series.front(), "seq"),
                  last = std::max(core::json_int(series.back(), "seq"), first + 1);
    int64_t high =
        std::max(core::json_int(spend, "project_cap_micro_usd"), core::json_int(spend, "projected_micro_usd"));
    for (const json& p : series) {
      high = std::max(high, core::json_int(p, "committed_micro_usd") + core::json_int(p, "reserved_micro_usd"));
    }
    for (const json& raise : m["cost"]["cap_raises"]) {
      if (core::json_text(raise, "cap") == "project") {
        high = std::max(high, core::json_int(raise, "cap_micro_usd"));
      }
    }
    high = std::max<int64_t>(high * 105 / 100, 1);
    auto x = [&](int64_t seq) { return left + (w - left - right) * double(seq - first) / double(last - first); };
    auto y = [&](int64_t micro) { return top + (h - top - bottom) * (1.0 - double(micro) / double(high)); };
    put("<svg id=\"spend-chart\" viewBox=\"0 0 1000 280\" width=\"100%\" role=\"img\" aria-label=\"Spend over the "
        "run\">\n");
    for (int i = 0; i <= 4; ++i) {
      const int64_t v = high * i / 4;
      put("<line x1=\"" + num(left) + "\" x2=\"" + num(w - right) + "\" y1=\"" + num(y(v), 1) + "\" y2=\"" +
          num(y(v), 1) + "\" stroke=\"#eee\"/><text x=\"" + num(left - 6) + "\" y=\"" + num(y(v) + 4, 1) +
          "\" text-anchor=\"end\">" + html_escape(usd(v)) + "</text>\n");
    }
    auto hline = [&](int64_t value, const char* colour, const char* dash, const std::string& label, const char* id) {
      put("<line id=\"" + std::string(id) + "\" x1=\"" + num(left) + "\" x2=\"" + num(w - right) + "\" y1=\"" +
          num(y(value), 1) + "\" y2=\"" + num(y(value), 1) + "\" stroke=\"" + colour + "\" stroke-dasharray=\"" + dash +
          "\"/><text x=\"" + num(w - right) + "\" y=\"" + num(y(value) - 4, 1) + "\" text-anchor=\"end\">" +
          html_escape(label) + "</text>\n");
    };
    const int64_t cap = core::json_int(spend, "project_cap_micro_usd");
    hline(cap, "#c8372d", "0", "project cap " + usd(cap), "cap-line");
    const int64_t warn = cap * core::json_int(spend, "warn_pct") / 100;
    hline(warn, "#d9a400", "6 4", "WARN " + std::to_string(core::json_int(spend, "warn_pct")) + " %", "warn-line");
    if (spend.contains("projected_micro_usd") && spend["projected_micro_usd"].is_number()) {
      hline(core::json_int(spend, "projected_micro_usd"), "#8a8a8a", "2 4",
            "projected " + usd(core::json_int(spend, "projected_micro_usd")), "projection-line");
    }
    for (const json& raise : m["cost"]["cap_raises"]) {
      const double at = x(std::clamp(core::json_int(raise, "seq"), first, last));
      put("<line class=\"cap-raise\" x1=\"" + num(at, 1) + "\" x2=\"" + num(at, 1) + "\" y1=\"" + num(top) +
          "\" y2=\"" + num(h - bottom) + "\" stroke=\"#3867d6\" stroke-dasharray=\"3 3\"><title>");
      esc("cap raised: " + core::json_text(raise, "cap") + " to " + usd(core::json_int(raise, "cap_micro_usd")) +
          " at " + core::json_text(raise, "ts"));
      put("</title></line>\n");
    }
    std::string committed, total;
    for (const json& p : series) {
      const double px = x(core::json_int(p, "seq"));
      committed += num(px, 1) + "," + num(y(core::json_int(p, "committed_micro_usd")), 1) + " ";
      total += num(px, 1) + "," +
               num(y(core::json_int(p, "committed_micro_usd") + core::json_int(p, "reserved_micro_usd")), 1) + " ";
    }
    put("<polyline id=\"reserved-line\" fill=\"none\" stroke=\"#9bb3f0\" stroke-width=\"1.5\" points=\"" + total +
        "\"/>\n<polyline id=\"committed-line\" fill=\"none\" stroke=\"#3867d6\" stroke-width=\"2\" points=\"" +
        committed + "\"/>\n");
    put("<text x=\"" + num(left) + "\" y=\"" + num(h - 8) + "\">event " + std::to_string(first) + "</text><text x=\"" +
        num(w - right) + "\" y=\"" + num(h - 8) + "\" text-anchor=\"end\">event " + std::to_string(last) +
        "</text>\n</svg>\n");
    put("<div class=\"legend\"><span><i style=\"background:#3867d6\"></i>committed</span><span><i "
        "style=\"background:#9bb3f0\"></i>committed + reserved</span><span><i "
        "style=\"background:#c8372d\"></i>project cap</span><span><i "
        "style=\"background:#d9a400\"></i>WARN line</span><span><i style=\"background:#3867d6\"></i>cap raise "
        "(dashed)</span></div>\n</section>\n");
  }

  void table_tools(const std::string& id, const std::string& placeholder) {
    put("<div class=\"tools\"><input type=\"search\" data-filter=\"" + id + "\" placeholder=\"");
    esc(placeholder);
    put("\"></div>\n");
  }

  void cost() {
    put("<section id=\"cost\">\n<h2>Cost</h2>\n");
    const json& cost = m["cost"];
    std::set<std::string> tiers;
    int64_t most = 1;
    for (const json& row : cost["by_scene"]) {
      for (const auto& [tier, amount] : row["by_tier"].items()) {
        tiers.insert(tier);
      }
      most = std::max(most, core::json_int(row, "committed_micro_usd"));
    }
    put("<h3>By scene and tier</h3>\n");
    table_tools("cost-by-scene", "filter scenes");
    put("<table id=\"cost-by-scene\" class=\"sortable paged\"><thead><tr><th>scene</th>");
    for (const std::string& tier : tiers) {
      put("<th class=\"r\">");
      esc(tier);
      put("</th>");
    }
    put("<th class=\"r\">total</th><th>share</th></tr></thead><tbody>\n");
    for (const json& row : cost["by_scene"]) {
      put("<tr><td>");
      esc(core::json_text(row, "scene_id"));
      put("</td>");
      for (const std::string& tier : tiers) {
        const int64_t amount = row["by_tier"].value(tier, int64_t{0});
        put("<td class=\"r\" data-sort=\"" + std::to_string(amount) + "\">" + html_escape(usd(amount)) + "</td>");
      }
      const int64_t total = core::json_int(row, "committed_micro_usd");
      put("<td class=\"r\" data-sort=\"" + std::to_string(total) + "\">" + html_escape(usd(total)) +
          "</td><td data-sort=\"" + std::to_string(total) +
          "\"><div class=\"bar\" style=\"width:160px\"><i style=\"width:" +
          num(100.0 * double(total) / double(most), 1) + "%\"></i></div></td></tr>\n");
    }
    put("</tbody></table>\n<h3>By model</h3>\n<table id=\"cost-by-model\" class=\"sortable\"><thead><tr><th>model</th>"
        "<th>tier</th><th class=\"r\">calls</th><th class=\"r\">input tokens</th><th class=\"r\">output "
        "tokens</th><th class=\"r\">committed</th></tr></thead><tbody>\n");
    for (const json& row : cost["by_model"]) {
      put("<tr><td>");
      esc(core::json_text(row, "model"));
      put("</td><td>");
      esc(core::json_text(row, "tier"));
      put("</td>");
      for (const char* field : {"calls", "input_tokens", "output_tokens"}) {
        put("<td class=\"r\">" + std::to_string(core::json_int(row, field)) + "</td>");
      }
      put("<td class=\"r\" data-sort=\"" + std::to_string(core::json_int(row, "committed_micro_usd")) + "\">" +
          html_escape(usd(core::json_int(row, "committed_micro_usd"))) + "</td></tr>\n");
    }
    put("</tbody></table>\n<h3>Most expensive shots</h3>\n<table id=\"top-shots\" class=\"sortable\"><thead><tr>"
        "<th>shot</th><th class=\"r\">committed</th></tr></thead><tbody>\n");
    for (const json& row : cost["top_shots"]) {
      put("<tr><td>");
      esc(core::json_text(row, "shot_id"));
      put("</td><td class=\"r\" data-sort=\"" + std::to_string(core::json_int(row, "committed_micro_usd")) + "\">" +
          html_escape(usd(core::json_int(row, "committed_micro_usd"))) + "</td></tr>\n");
    }
    put("</tbody></table>\n</section>\n");
  }

  // Shots x attempts, one cell per recorded attempt, coloured by verdict; the scores and reasons on
  // hover (title).
  void qc() {
    put("<section id=\"qc\">\n<h2>QC</h2>\n<p class=\"sub\">One cell per recorded attempt (proxy, then final), "
        "coloured by QC verdict; hover a cell for its scores and reasons. Grey: rendered, not graded yet.</p>\n");
    size_t proxy_width = 0, final_width = 0;
    for (const json& scene : m["scenes"]) {
      for (const json& shot : scene["shots"]) {
        size_t p = 0, f = 0;
        for (const json& at : shot["attempts"]) {
          (core::json_text(at, "resolution") == "final" ? f : p) += 1;
        }
        proxy_width = std::max(proxy_width, p);
        final_width = std::max(final_width, f);
      }
    }
    table_tools("qc-grid", "filter shots");
    put("<table id=\"qc-grid\" class=\"qc paged\"><thead><tr><th>shot</th><th colspan=\"" +
        std::to_string(std::max<size_t>(proxy_width, 1)) + "\">proxy attempts</th><th colspan=\"" +
        std::to_string(std::max<size_t>(final_width, 1)) +
        "\">final attempts</th><th>state</th></tr></thead><tbody>\n");
    for (const json& scene : m["scenes"]) {
      for (const json& shot : scene["shots"]) {
        put("<tr><td>");
        esc(core::json_text(shot, "shot_id"));
        put("</td>");
        for (const char* resolution : {"proxy", "final"}) {
          size_t shown = 0;
          for (const json& at : shot["attempts"]) {
            if (core::json_text(at, "resolution") != resolution) {
              continue;
            }
            ++shown;
            const std::string verdict = at["verdict"].is_string() ? at["verdict"].get<std::string>() : "";
            std::string tip = core::json_text(shot, "shot_id") + " " + resolution + " attempt " +
                              std::to_string(core::json_int(at, "attempt")) + ": " +
                              (verdict.empty() ? std::string("not graded") : verdict);
            if (!core::json_text(at, "model").empty()) {
              tip += " (" + core::json_text(at, "model") + ", " + core::json_text(at, "tier") + ")";
            }
            for (const auto& [name, score] : at["scores"].items()) {
              tip += "\n" + name + ": " + (score.is_string() ? score.get<std::string>() : score.dump());
            }
            for (const json& reason : at["reasons"]) {
              tip += "\n- " + reason.get<std::string>();
            }
            put("<td class=\"cell qc-cell " + verdict_class(verdict) + "\" data-verdict=\"" + html_escape(verdict) +
                "\" data-resolution=\"" + resolution + "\" title=\"" + html_escape(tip) + "\">" +
                std::to_string(core::json_int(at, "attempt")) + "</td>");
          }
          const size_t width = std::max<size_t>(std::string(resolution) == "proxy" ? proxy_width : final_width, 1);
          for (; shown < width; ++shown) {
            put("<td class=\"gap\"></td>");
          }
        }
        const bool final_passed = shot.value("passed_final", false);
        const bool proxy_passed = shot.value("passed_proxy", false);
        put(std::string("<td>") +
            (final_passed   ? "<span class=\"badge v-pass\">final passed</span>"
             : proxy_passed ? "<span class=\"badge v-warn\">proxy passed</span>"
                            : "<span class=\"badge v-none\">open</span>") +
            "</td></tr>\n");
      }
    }
    put("</tbody></table>\n");
    // Regen rounds and frozen shots: the production loop's own record.
    std::vector<const json*> rounds;
    for (const json& item : m["loops"]) {
      const std::string kind = core::json_text(item, "kind");
      if (kind == "regen_round" ||
          (kind == "hard_stop" && core::json_text(item, "what").find("(frozen)") != std::string::npos)) {
        rounds.push_back(&item);
      }
    }
    put("<h3>Regen rounds and frozen shots</h3>\n");
    if (rounds.empty()) {
      put("<p class=\"sub\">No regen round was needed.</p>\n");
    } else {
      put("<table id=\"regen\" class=\"sortable paged\"><thead><tr><th>when</th><th>shot</th><th>what</th>"
          "<th>why</th></tr></thead><tbody>\n");
      for (const json* item : rounds) {
        put("<tr>" + clock_cell(core::json_text(*item, "ts")) + "<td>");
        esc(core::json_text(*item, "shot_id"));
        put("</td><td>");
        esc(core::json_text(*item, "what"));
        put("</td><td>");
        esc(core::json_text(*item, "reason"));
        put("</td></tr>\n");
      }
      put("</tbody></table>\n");
    }
    put("</section>\n");
  }

  // Revisions, escalations, fallbacks, retries, overrides and stops as a timeline per scene.
  void loops() {
    put("<section id=\"loops\">\n<h2>The loops</h2>\n<p class=\"sub\">Every revision, regen, escalation (with its cost "
        "delta), fallback, retry, override and hard stop, with its reason, per scene.</p>\n");
    std::map<std::string, std::vector<const json*>> by_scene;
    for (const json& item : m["loops"]) {
      const std::string scene = core::json_text(item, "scene_id");
      by_scene[scene.empty() ? "project" : scene].push_back(&item);
    }
    // The project-wide loops, then the scenes in story order.
    std::vector<std::string> order;
    if (by_scene.count("project")) {
      order.push_back("project");
    }
    for (const json& scene : m["scenes"]) {
      if (by_scene.count(core::json_text(scene, "scene_id"))) {
        order.push_back(core::json_text(scene, "scene_id"));
      }
    }
    for (const auto& [scene, items] : by_scene) {
      if (std::find(order.begin(), order.end(), scene) == order.end()) {
        order.push_back(scene);
      }
    }
    if (order.empty()) {
      put("<p class=\"sub\">Every step passed at its first attempt.</p>\n");
    }
    for (const std::string& scene : order) {
      const auto& items = by_scene[scene];
      put("<details class=\"scene-loops\" data-scene=\"" + html_escape(scene) + "\"" +
          (order.size() <= 8 ? " open" : "") + "><summary>");
      esc(scene);
      put(" · " + std::to_string(items.size()) +
          " event(s)</summary>\n<table class=\"timeline\"><thead><tr>"
          "<th>when</th><th>kind</th><th>shot</th><th>who</th><th>what</th><th class=\"r\">cost delta</th>"
          "<th>reason</th></tr></thead><tbody>\n");
      for (const json* item : items) {
        put("<tr data-kind=\"" + html_escape(core::json_text(*item, "kind")) + "\">" +
            clock_cell(core::json_text(*item, "ts")) + "<td>");
        esc(core::json_text(*item, "kind"));
        put("</td><td>");
        esc(core::json_text(*item, "shot_id"));
        put("</td><td>");
        esc(core::json_text(*item, "who"));
        put("</td><td>");
        esc(core::json_text(*item, "what"));
        put("</td><td class=\"r\">");
        if (item->contains("cost_delta_micro_usd")) {
          esc(usd(core::json_int(*item, "cost_delta_micro_usd")));
        }
        put("</td><td>");
        esc(core::json_text(*item, "reason"));
        put("</td></tr>\n");
      }
      put("</tbody></table>\n</details>\n");
    }
    put("</section>\n");
  }

  void contact() {
    put("<section id=\"contact\">\n<h2>Contact sheet</h2>\n<p class=\"sub\">The latest render of every shot (a "
        "frame of the clip), else its storyboard frame; each links to its file and its GenPack.</p>\n"
        "<div class=\"sheet\" id=\"sheet\">\n");
    int shown = 0;
    for (const json& scene : m["scenes"]) {
      for (const json& shot : scene["shots"]) {
        const std::string id = core::json_text(shot, "shot_id");
        put("<figure class=\"shot\" data-shot=\"" + html_escape(id) + "\">");
        auto frame = a.frames.find(id);
        if (frame != a.frames.end()) {
          put("<img alt=\"" + html_escape(id) + "\" " + (shown++ < k_sheet_page ? "src" : "data-src") + "=\"" +
              frame->second + "\">");
        } else {
          put("<div class=\"noimg\">no frame" +
              std::string(shot["latest_render"].is_string() || shot["storyboard"].is_string()
                              ? " (install ffmpeg to see one)"
                              : ": not rendered yet") +
              "</div>");
        }
        put("<figcaption><b>");
        esc(id);
        put("</b> ");
        const bool final_passed = shot.value("passed_final", false);
        put(final_passed                        ? "<span class=\"badge v-pass\">final</span>"
            : shot.value("passed_proxy", false) ? "<span class=\"badge v-warn\">proxy</span>"
                                                : "<span class=\"badge v-none\">open</span>");
        put(" " + num(shot.value("planned_s", 0.0), 1) + " s<br>");
        if (shot["latest_render"].is_string()) {
          link(shot["latest_render"].get<std::string>(), "render");
        }
        if (shot["genpack"].is_string()) {
          put(" · ");
          link(shot["genpack"].get<std::string>(), "GenPack");
        }
        if (auto source = a.frame_sources.find(id); source != a.frame_sources.end()) {
          put("<br><span class=\"sub\">frame: ");
          esc(source->second);
          put("</span>");
        }
        put("</figcaption></figure>\n");
      }
    }
    put("</div>\n</section>\n");
  }

  void link(const std::string& path, const std::string& label) {
    put("<a href=\"" + html_escape(a.project_href + path) + "\">");
    esc(label);
    put("</a>");
  }

  void scenes() {
    put("<section id=\"scenes\">\n<h2>Scenes</h2>\n");
    table_tools("scene-table", "filter scenes, phases, verdicts");
    put("<table id=\"scene-table\" class=\"sortable paged\"><thead><tr><th>scene</th><th>phase</th>"
        "<th>validation</th><th>continuity</th><th>plan</th><th class=\"r\">proxy</th><th class=\"r\">final</th>"
        "<th class=\"r\">spend</th><th class=\"r\">scene cap</th></tr></thead><tbody>\n");
    auto verdict = [&](const json& v) {
      const std::string text = v.is_string() ? v.get<std::string>() : "";
      put("<td data-sort=\"" + html_escape(text) + "\">" +
          (text.empty() ? std::string("-") : "<span class=\"badge " + verdict_class(text) + "\">" + text + "</span>") +
          "</td>");
    };
    for (const json& s : m["scenes"]) {
      put("<tr data-scene=\"" + html_escape(core::json_text(s, "scene_id")) + "\" data-spend-micro-usd=\"" +
          std::to_string(core::json_int(s, "spend_micro_usd")) + "\"><td>");
      esc(core::json_text(s, "scene_id") + (s.value("in_latest_scenes", true) ? "" : " (dropped)"));
      put("</td><td class=\"phase\">");
      esc(s["phase"].is_string() ? s["phase"].get<std::string>() : "-");
      put("</td>");
      verdict(s["validation"]);
      verdict(s["continuity"]);
      verdict(s["plan"]);
      for (const char* res : {"proxy", "final"}) {
        put("<td class=\"r\">" + std::to_string(core::json_int(s[res], "passed")) + "/" +
            std::to_string(core::json_int(s[res], "shots")) + "</td>");
      }
      put("<td class=\"r\" data-sort=\"" + std::to_string(core::json_int(s, "spend_micro_usd")) + "\">" +
          html_escape(usd(core::json_int(s, "spend_micro_usd"))) + "</td><td class=\"r\">" +
          (s["cap_micro_usd"].is_number() ? html_escape(usd(core::json_int(s, "cap_micro_usd"))) : std::string("-")) +
          "</td></tr>\n");
    }
    put("</tbody></table>\n</section>\n");
  }

  void runs() {
    put("<section id=\"runs\">\n<h2>Runs</h2>\n<table id=\"run-table\" class=\"sortable paged\"><thead><tr><th>run</th>"
        "<th>command</th><th>started</th><th>finished</th><th>outcome</th></tr></thead><tbody>\n");
    for (const json& run : m["runs"]) {
      put("<tr><td>");
      esc(core::json_text(run, "run_id"));
      put("</td><td>");
      esc(core::json_text(run, "command"));
      put("</td><td>");
      esc(core::json_text(run, "started"));
      put("</td><td>");
      esc(run["finished"].is_string() ? run["finished"].get<std::string>() : "(running or interrupted)");
      put("</td><td>");
      esc(core::json_text(run, "outcome"));
      put("</td></tr>\n");
    }
    put("</tbody></table>\n</section>\n");
  }

  void tail() {
    put("<p class=\"sub\">Written by avps from the project's ledger, event " +
        std::to_string(core::json_int(m["as_of"], "seq")) + " (hash ");
    esc(core::json_text(m["as_of"], "hash").substr(0, 16));
    put("...). The same data: avps report --json.</p>\n</main>\n<script>\n");
    put("const PAGE=" + std::to_string(k_page_rows) + ",SHEET=" + std::to_string(k_sheet_page) + ";\n");
    put(R"JS((function(){
function rows(t){return Array.prototype.slice.call(t.tBodies[0].rows);}
function key(td){if(!td)return"";var s=td.getAttribute("data-sort");return s!==null?s:td.textContent.trim();}
function paint(t){var page=+(t.getAttribute("data-page")||0),shown=0,matching=0;
 var want=(t.getAttribute("data-filter")||"").toLowerCase(),paged=t.classList.contains("paged");
 rows(t).forEach(function(r){var ok=!want||r.textContent.toLowerCase().indexOf(want)>=0;
  if(ok){var on=!paged||(matching>=page*PAGE&&matching<(page+1)*PAGE);r.style.display=on?"":"none";if(on)shown++;matching++;}
  else r.style.display="none";});
 var p=t.previousElementSibling&&t.previousElementSibling.classList.contains("pager")?t.previousElementSibling:null;
 if(paged){if(!p){p=document.createElement("div");p.className="pager";t.parentNode.insertBefore(p,t);}
  var pages=Math.max(1,Math.ceil(matching/PAGE));p.textContent="";
  var prev=document.createElement("button");prev.textContent="<";prev.disabled=page<=0;
  prev.onclick=function(){t.setAttribute("data-page",page-1);paint(t);};
  var next=document.createElement("button");next.textContent=">";next.disabled=page>=pages-1;
  next.onclick=function(){t.setAttribute("data-page",page+1);paint(t);};
  p.appendChild(prev);p.appendChild(document.createTextNode("page "+(page+1)+" of "+pages+" ("+matching+" rows)"));p.appendChild(next);}}
document.querySelectorAll("table.sortable").forEach(function(t){
 Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){th.onclick=function(){
  var asc=th.getAttribute("data-dir")!=="asc";th.setAttribute("data-dir",asc?"asc":"desc");
  var body=t.tBodies[0],list=rows(t);list.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
   var nx=parseFloat(x),ny=parseFloat(y),c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
  list.forEach(function(r){body.appendChild(r);});t.setAttribute("data-page",0);paint(t);};});});
document.querySelectorAll("input[data-filter]").forEach(function(input){var t=document.getElementById(input.getAttribute("data-filter"));
 input.oninput=function(){t.setAttribute("data-filter",input.value);t.setAttribute("data-page",0);paint(t);};});
document.querySelectorAll("table.paged").forEach(paint);
var sheet=document.getElementById("sheet");
if(sheet){var figs=Array.prototype.slice.call(sheet.children),pages=Math.ceil(figs.length/SHEET);
 if(pages>1){var bar=document.createElement("div");bar.className="pager";sheet.parentNode.insertBefore(bar,sheet);
  var show=function(page){figs.forEach(function(f,i){var on=i>=page*SHEET&&i<(page+1)*SHEET;f.style.display=on?"":"none";
    var img=f.querySelector("img[data-src]");if(on&&img){img.src=img.getAttribute("data-src");img.removeAttribute("data-src");}});
   bar.textContent="";var prev=document.createElement("button");prev.textContent="<";prev.disabled=page<=0;
   prev.onclick=function(){show(page-1);};var next=document.createElement("button");next.textContent=">";
   next.disabled=page>=pages-1;next.onclick=function(){show(page+1);};bar.appendChild(prev);
   bar.appendChild(document.createTextNode("shots "+(page*SHEET+1)+"-"+Math.min(figs.length,(page+1)*SHEET)+" of "+figs.length));
   bar.appendChild(next);};
  show(0);}}
})();
)JS");
    put("</script>\n</body>\n</html>\n");
  }

  const json& m;
  const PageAssets& a;
  std::string out;
};

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_html(const nlohmann::json& model, const PageAssets& assets) { return Page(model, assets).render(); }

}  // namespace avps::report
