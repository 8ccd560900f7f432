// comfyui (comfyui.hpp): the options, the workflow and its bindings, the server check, and the
// upload / prompt / history / view / cancel exchanges.

#include "avps/backends/comfyui.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "avps/backends/async_job.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "job_wire.hpp"

namespace avps::backends {
using nlohmann::json;
namespace fs = std::filesystem;

namespace {
using job_wire::capped;
using job_wire::is_2xx;
using job_wire::on_endpoint;
using job_wire::path_escape;
using job_wire::query_escape;
using job_wire::scrub;
using job_wire::status_error;

// The request fields a binding may name, in the order the docs list them.
const std::vector<std::string>& bindable_fields() {
  static const std::vector<std::string> k_fields = {
      "prompt", "negative_prompt", "seed", "width", "height", "frames", "fps", "duration_s", "input_image"};
  return k_fields;
}

std::string joined(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string out;
  for (const std::string& item : items) {
    out += (out.empty() ? "" : separator) + item;
  }
  return out;
}

json defaults() {
  return json{{"workflow", ""},
              {"bindings", json::object()},
              {"output_nodes", json::array()},
              {"fps", 24},
              {"frames_multiple_of", 1},
              {"frames_remainder", 0},
              {"prompt_max_chars", 0},
              {"poll", {{"interval_s", 1}, {"max_wait_s", 3600}}},
              {"max_download_bytes", int64_t{512} * 1024 * 1024},
              {"timeout_s", 120},
              {"connect_timeout_s", 10},
              {"retry", json::object()}};
}

// A node reference of a binding or of output_nodes: {"node": id} or {"title": t} (with "input"
// when `with_input`). "" when well formed, else what is wrong.
std::string ref_problem(const json& ref, bool with_input) {
  if (!ref.is_object()) {
    return "must be an object";
  }
  const bool by_id = ref.contains("node");
  const bool by_title = ref.contains("title");
  if (by_id == by_title) {
    return "must name its node by exactly one of \"node\" (the node id) and \"title\" (its _meta.title)";
  }
  const json& name = by_id ? ref["node"] : ref["title"];
  if (!name.is_string() || name.get<std::string>().empty()) {
    return std::string("\"") + (by_id ? "node" : "title") + "\" must be a non-empty string";
  }
  if (with_input && (!ref.contains("input") || !ref["input"].is_string() || ref["input"].get<std::string>().empty())) {
    return "must give \"input\": the name of the node input that receives the value";
  }
  for (const auto& [key, value] : ref.items()) {
    if (key != "node" && key != "title" && !(with_input && key == "input")) {
      return "has an unknown field \"" + key + "\"";
    }
  }
  return "";
}

std::string class_of(const json& graph, const std::string& id) { return graph[id].value("class_type", std::string()); }

std::string node_name(const json& graph, const std::string& id) {
  return "node " + id + " (" + class_of(graph, id) + ")";
}

// The node id a reference means in `graph`, or a message saying why none.
Result<std::string> resolve(const json& graph, const json& ref, const std::string& what) {
  if (ref.contains("node")) {
    const std::string id = ref["node"].get<std::string>();
    if (graph.contains(id)) {
      return id;
    }
    std::vector<std::string> ids;
    for (const auto& [node_id, node] : graph.items()) {
      ids.push_back(node_id + " " + node.value("class_type", std::string()));
    }
    return make_error(ErrorCode::configuration,
                      what + " names node \"" + id +
                          "\", which the workflow does not have (its nodes: " + capped(joined(ids), 400) + ")");
  }
  const std::string title = ref["title"].get<std::string>();
  std::vector<std::string> matches;
  std::vector<std::string> titles;
  for (const auto& [node_id, node] : graph.items()) {
    const std::string t = node.value("_meta", json::object()).value("title", std::string());
    if (!t.empty()) {
      titles.push_back("\"" + t + "\"");
    }
    if (t == title) {
      matches.push_back(node_id);
    }
  }
  if (matches.empty()) {
    return make_error(ErrorCode::configuration,
                      what + " names the title \"" + title +
                          "\", which no node of the workflow has (its titles: " + capped(joined(titles), 400) +
                          "); rename the node in ComfyUI and export again, or bind by node id");
  }
  if (matches.size() > 1) {
    return make_error(ErrorCode::configuration, what + ": " + std::to_string(matches.size()) + " nodes are titled \"" +
                                                    title + "\" (ids " + joined(matches) +
                                                    "): bind by node id, or give the nodes titles of their own");
  }
  return matches.front();
}

// The GenPack face split for a workflow with a negative prompt: the face without its
// [NEGATIVES / NO-DRIFT] section, and that section's lines (list markers dropped) joined by ", ".
std::pair<std::string, std::string> split_negatives(const std::string& face) {
  static const std::vector<std::string> k_parts = {
      "[STYLE]", "[SET]", "[CHARACTERS]", "[ACTION]", "[NEGATIVES / NO-DRIFT]", "[SETTINGS]"};
  std::string positive;
  std::vector<std::string> negatives;
  bool in_negatives = false;
  size_t start = 0;
  while (start < face.size()) {
    size_t end = face.find('\n', start);
    if (end == std::string::npos) {
      end = face.size();
    }
    const std::string line = face.substr(start, end - start);
    start = end + 1;
    std::string trimmed = line;
    trimmed.erase(0, std::min(trimmed.find_first_not_of(" \t"), trimmed.size()));
    while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\r' || trimmed.back() == '\t')) {
      trimmed.pop_back();
    }
    if (std::find(k_parts.begin(), k_parts.end(), trimmed) != k_parts.end()) {
      in_negatives = trimmed == "[NEGATIVES / NO-DRIFT]";
      if (in_negatives) {
        continue;
      }
    }
    if (!in_negatives) {
      positive += line + "\n";
      continue;
    }
    if (trimmed.rfind("- ", 0) == 0) {
      trimmed = trimmed.substr(2);
    }
    if (!trimmed.empty()) {
      negatives.push_back(trimmed);
    }
  }
  while (!positive.empty() && positive.back() == '\n') {
    positive.pop_back();
  }
  return {positive, joined(negatives)};
}

// The smallest frame count that holds `seconds` at `fps` and has the workflow's form
// (multiple_of × k + remainder: Wan 4k+1, LTX 8k+1).
int64_t frames_for(double seconds, double fps, int64_t multiple_of, int64_t remainder) {
  int64_t frames = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(seconds * fps - 1e-9)));
  while (frames % multiple_of != remainder) {
    ++frames;
  }
  return frames;
}

bool has_extension(const std::string& filename, std::initializer_list<const char*> extensions) {
  const size_t dot = filename.rfind('.');
  if (dot == std::string::npos) {
    return false;
  }
  std::string ext = filename.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::any_of(extensions.begin(), extensions.end(), [&](const char* e) { return ext == e; });
}

std::string lower_extension(const std::string& filename) {
  const size_t dot = filename.rfind('.');
  std::string ext = dot == std::string::npos ? std::string() : filename.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// The text of ComfyUI's refusal of a prompt (400): its error and each node's errors.
std::string refusal_text(const std::string& body) {
  const json parsed = json::parse(body, nullptr, false);
  if (!parsed.is_object()) {
    return capped(body);
  }
  std::string text;
  const json& error = parsed.contains("error") ? parsed["error"] : json();
  if (error.is_string()) {
    text = error.get<std::string>();
  } else if (error.is_object()) {
    text = error.value("message", std::string());
    const std::string details = error.value("details", std::string());
    if (!details.empty()) {
      text += ": " + details;
    }
  }
  if (parsed.contains("node_errors") && parsed["node_errors"].is_object()) {
    for (const auto& [id, node] : parsed["node_errors"].items()) {
      if (!node.is_object()) {
        continue;
      }
      for (const json& e : node.value("errors", json::array())) {
        if (e.is_object()) {
          text += "; node " + id + " (" + node.value("class_type", std::string()) +
                  "): " + e.value("message", std::string()) +
                  (e.value("details", std::string()).empty() ? "" : ": " + e.value("details", std::string()));
        }
      }
    }
  }
  return capped(text, 600);
}

// What an "error" history entry says went wrong: the execution_error's node and exception, or the
// interrupt.
std::string failure_text(const json& status) {
  for (const json& message : status.value("messages", json::array())) {
    if (!message.is_array() || message.size() < 2 || !message[0].is_string() || !message[1].is_object()) {
      continue;
    }
    const std::string event = message[0].get<std::string>();
    const json& data = message[1];
    const std::string node =
        "node " + core::json_text(data, "node_id") + " (" + core::json_text(data, "node_type") + ")";
    if (event == "execution_error") {
      std::string why = core::json_text(data, "exception_message");
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
        why.pop_back();
      }
      return node + ": " + core::json_text(data, "exception_type") + (why.empty() ? "" : ": " + why);
    }
    if (event == "execution_interrupted") {
      return "interrupted at " + node;
    }
  }
  return "no execution_error in its status messages";
}

// The choices of a combo input's spec ([["a", "b"], {...}] or ["COMBO", {"options": [...]}]), or
// nullptr when the input is not a combo.
const json* combo_choices(const json& spec) {
  if (!spec.is_array() || spec.empty()) {
    return nullptr;
  }
  if (spec[0].is_array()) {
    return &spec[0];
  }
  if (spec[0] == "COMBO" && spec.size() > 1 && spec[1].is_object() && spec[1].contains("options") &&
      spec[1]["options"].is_array()) {
    return &spec[1]["options"];
  }
  return nullptr;
}

}  // namespace

std::string comfyui_client_id() {
  std::random_device device;
  std::string id = "avps-";
  static const char* const k_hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    id += k_hex[device() & 15];
  }
  return id;
}

Result<json> comfyui_options(const json& overrides, const std::string& where) {
  auto problem = [&](const std::string& what) { return make_error(ErrorCode::configuration, where + ": " + what); };
  if (!overrides.is_object()) {
    return problem("options must be an object");
  }
  json options = defaults();
  std::vector<std::string> allowed;
  for (const auto& [key, value] : options.items()) {
    allowed.push_back(key);
  }
  for (const auto& [key, value] : overrides.items()) {
    if (!options.contains(key)) {
      return problem("options." + key + " is not a comfyui option (allowed: " + joined(allowed) + ")");
    }
    if (key == "poll" && value.is_object()) {
      for (const auto& [field, v] : value.items()) {
        options["poll"][field] = v;
      }
    } else {
      options[key] = value;
    }
  }
  if (!options["workflow"].is_string() || options["workflow"].get<std::string>().empty()) {
    return problem(
        "options.workflow is missing: give the path (relative to the project folder) of the workflow "
        "exported from ComfyUI in API format (Workflow > Export (API))");
  }
  const json& bindings = options["bindings"];
  if (!bindings.is_object()) {
    return problem("options.bindings must be an object: {\"prompt\": {\"node\": \"6\", \"input\": \"text\"}, ...}");
  }
  for (const auto& [field, value] : bindings.items()) {
    if (std::find(bindable_fields().begin(), bindable_fields().end(), field) == bindable_fields().end()) {
      return problem("options.bindings." + field + " is not a field avps binds (fields: " + joined(bindable_fields()) +
                     ")");
    }
    const json targets = value.is_array() ? value : json::array({value});
    if (targets.empty()) {
      return problem("options.bindings." + field + " is an empty list: give at least one node input");
    }
    for (const json& target : targets) {
      if (std::string why = ref_problem(target, true); !why.empty()) {
        return problem("options.bindings." + field + " " + why);
      }
    }
  }
  if (!bindings.contains("prompt")) {
    return problem(
        "options.bindings.prompt is missing: bind the GenPack to the positive prompt's text input, "
        "e.g. {\"prompt\": {\"title\": \"Positive Prompt\", \"input\": \"text\"}} (without it every shot "
        "would render the workflow's own prompt)");
  }
  if (!options["output_nodes"].is_array()) {
    return problem("options.output_nodes must be a list of {\"node\": id} or {\"title\": title}");
  }
  for (const json& ref : options["output_nodes"]) {
    if (std::string why = ref_problem(ref, false); !why.empty()) {
      return problem("options.output_nodes: an entry " + why);
    }
  }
  if (!options["fps"].is_number() || options["fps"].get<double>() <= 0 || options["fps"].get<double>() > 240) {
    return problem("options.fps must be a number above 0 and at most 240");
  }
  const json& multiple = options["frames_multiple_of"];
  const json& remainder = options["frames_remainder"];
  if (!multiple.is_number_integer() || multiple.get<int64_t>() < 1 || multiple.get<int64_t>() > 1000 ||
      !remainder.is_number_integer() || remainder.get<int64_t>() < 0 ||
      remainder.get<int64_t>() >= multiple.get<int64_t>()) {
    return problem(
        "options.frames_multiple_of must be an integer from 1 to 1000 and frames_remainder an integer "
        "from 0 to frames_multiple_of - 1 (Wan: 4 and 1, LTX-Video: 8 and 1)");
  }
  if (!options["prompt_max_chars"].is_number_integer() || options["prompt_max_chars"].get<int64_t>() < 0) {
    return problem("options.prompt_max_chars must be an integer >= 0 (0: no limit)");
  }
  const json& poll = options["poll"];
  if (!poll.is_object() || poll.size() != 2 || !poll["interval_s"].is_number() || !poll["max_wait_s"].is_number() ||
      poll["interval_s"].get<double>() < 0.01 || poll["max_wait_s"].get<double>() < poll["interval_s"].get<double>()) {
    return problem("options.poll must be {\"interval_s\": at least 0.01, \"max_wait_s\": at least the interval}");
  }
  if (!options["max_download_bytes"].is_number_integer() || options["max_download_bytes"].get<int64_t>() < 1) {
    return problem("options.max_download_bytes must be a positive integer");
  }
  if (!options["timeout_s"].is_number_integer() || options["timeout_s"].get<int64_t>() < 1 ||
      !options["connect_timeout_s"].is_number_integer() || options["connect_timeout_s"].get<int64_t>() < 1) {
    return problem("options.timeout_s and connect_timeout_s must be whole seconds, at least 1");
  }
  return options;
}

Result<ComfyWorkflow> load_comfyui_workflow(const fs::path& project_dir, const json& options,
                                            const std::string& where) {
  auto problem = [&](const std::string& what) { return make_error(ErrorCode::configuration, where + ": " + what); };
  ComfyWorkflow out;
  const fs::path given = options["workflow"].get<std::string>();
  const fs::path path = given.is_absolute() ? given : project_dir / given;
  out.path = path.string();
  Result<std::string> bytes = core::read_file(path);
  if (!bytes) {
    return problem("options.workflow " + out.path + " cannot be read (" + bytes.error().message +
                   "): export the workflow from ComfyUI in API format (Workflow > Export (API)) to that path, "
                   "relative to the project folder");
  }
  out.sha256 = core::sha256_hex(*bytes);
  out.graph = json::parse(*bytes, nullptr, false);
  const json& graph = out.graph;
  if (graph.is_discarded() || !graph.is_object()) {
    return problem("options.workflow " + out.path + " is not a JSON object: export it again in API format");
  }
  if (graph.contains("nodes") && graph.contains("links")) {
    return problem("options.workflow " + out.path +
                   " is ComfyUI's UI format (nodes and links), which its API does not run: export it with "
                   "Workflow > Export (API) (or \"Save (API Format)\" with dev mode on)");
  }
  if (graph.empty()) {
    return problem("options.workflow " + out.path + " has no nodes");
  }
  for (const auto& [id, node] : graph.items()) {
    if (!node.is_object() || !node.contains("class_type") || !node["class_type"].is_string() ||
        !node.contains("inputs") || !node["inputs"].is_object()) {
      return problem("options.workflow " + out.path + ": \"" + id +
                     "\" is not an API-format node ({\"class_type\", \"inputs\"}): export the workflow in API format");
    }
  }
  std::map<std::pair<std::string, std::string>, std::string> bound;  // (node, input) -> field
  for (const auto& [field, value] : options["bindings"].items()) {
    json targets = json::array();
    for (const json& target : value.is_array() ? value : json::array({value})) {
      const std::string what = "options.bindings." + field;
      AVPS_TRY_ASSIGN(std::string id, resolve(graph, target, where + ": " + what));
      const std::string input = target["input"].get<std::string>();
      const json& inputs = graph[id]["inputs"];
      if (!inputs.contains(input)) {
        std::vector<std::string> names;
        for (const auto& [name, v] : inputs.items()) {
          names.push_back(name);
        }
        return problem(what + ": " + node_name(graph, id) + " has no input \"" + input +
                       "\" in the workflow (its inputs: " + joined(names) + ")");
      }
      if (inputs[input].is_array()) {
        const std::string from = inputs[input].empty() ? std::string("?") : inputs[input][0].dump();
        return problem(what + ": input \"" + input + "\" of " + node_name(graph, id) + " is a link from node " + from +
                       ", not a value: bind the input of the node that holds the value (e.g. a CLIPTextEncode's text)");
      }
      if (auto [it, fresh] = bound.emplace(std::make_pair(id, input), field); !fresh) {
        return problem(what + ": input \"" + input + "\" of " + node_name(graph, id) + " is bound to " + it->second +
                       " already: one input takes one field");
      }
      targets.push_back({id, input});
    }
    out.targets[field] = std::move(targets);
  }
  for (const json& ref : options["output_nodes"]) {
    AVPS_TRY_ASSIGN(std::string id, resolve(graph, ref, where + ": options.output_nodes"));
    out.output_nodes.push_back(id);
  }
  return out;
}

ComfyUiBackend::ComfyUiBackend(ComfyUiConfig config, HttpClient& client)
    : m_config(std::move(config)), m_client(client) {}

Result<Submitted<ModelResponse>> ComfyUiBackend::submit_model(const ModelRequest& /*request*/, CallTrace& /*trace*/) {
  return make_error(ErrorCode::unsupported, "model \"" + m_config.model_id +
                                                "\" is a comfyui render model: it answers no text call (give its "
                                                "tiers only gen_premium, gen_mid or gen_low)");
}

JobTiming ComfyUiBackend::job_timing() const { return job_wire::timing_of(m_config.options["poll"]); }

Result<HttpResponse> ComfyUiBackend::exchange(HttpRequest request, CallTrace& trace, const HttpOptions& http) const {
  trace.provider = "comfyui";
  trace.endpoint_host = url_host(m_config.endpoint);
  if (!m_config.api_key.empty() && url_host(request.url) == url_host(m_config.endpoint)) {
    request.headers.emplace_back("Authorization", "Bearer " + m_config.api_key);
  }
  HttpAttempt attempt;
  Result<HttpResponse> sent = m_client.send(request, http);
  if (!sent) {
    attempt.error = scrub(sent.error().message, m_config.api_key);
    trace.attempts.push_back(std::move(attempt));
    return make_error(sent.error().code, scrub(sent.error().message, m_config.api_key));
  }
  attempt.status = sent->status;
  attempt.latency_ms = sent->latency_ms;
  if (!is_2xx(sent->status)) {
    attempt.error = std::to_string(sent->status);
  }
  trace.attempts.push_back(std::move(attempt));
  return sent;
}

std::vector<std::string> ComfyUiBackend::check_server(CallTrace& trace) const {
  const std::string host = url_host(m_config.endpoint);
  HttpRequest wire;
  wire.method = "GET";
  wire.url = on_endpoint(m_config.endpoint, "/object_info");
  Result<HttpResponse> reply = exchange(wire, trace, m_config.http);
  if (!reply) {
    return {"the ComfyUI server at " + host + " does not answer GET /object_info (" + reply.error().message +
            "): start it (python main.py --listen 127.0.0.1 --port 8188), or fix the endpoint"};
  }
  if (!is_2xx(reply->status)) {
    return {"the server at " + host + " answered GET /object_info with HTTP " + std::to_string(reply->status) +
            ": is the endpoint a ComfyUI server (its base URL, e.g. http://127.0.0.1:8188)?"};
  }
  const json info = json::parse(reply->body, nullptr, false);
  if (!info.is_object()) {
    return {"the server at " + host +
            " answered GET /object_info with something that is not a JSON object: is the "
            "endpoint a ComfyUI server?"};
  }
  const json& graph = m_config.workflow.graph;
  const std::string file = "the workflow " + m_config.workflow.path;
  std::vector<std::string> problems;
  std::vector<std::string> missing;
  for (const auto& [id, node] : graph.items()) {
    const std::string class_type = node["class_type"].get<std::string>();
    if (!info.contains(class_type)) {
      missing.push_back(class_type + " (node " + id + ")");
    }
  }
  if (!missing.empty()) {
    problems.push_back("the ComfyUI server at " + host + " has no node class " + joined(missing) + ", which " + file +
                       " uses: install the custom nodes that provide them (ComfyUI-Manager: Install Missing Custom "
                       "Nodes) and restart ComfyUI, or export a workflow this server can run");
  }
  // What each node class declares: its inputs and, for a combo, the choices the server offers.
  std::set<std::pair<std::string, std::string>> bound;
  for (const auto& [field, targets] : m_config.workflow.targets.items()) {
    for (const json& target : targets) {
      const std::string id = target[0].get<std::string>();
      const std::string input = target[1].get<std::string>();
      bound.emplace(id, input);
      const std::string class_type = class_of(graph, id);
      if (!info.contains(class_type) || !info[class_type].contains("input")) {
        continue;
      }
      const json& declared = info[class_type]["input"];
      bool known = false;
      for (const char* group : {"required", "optional"}) {
        known = known || (declared.contains(group) && declared[group].is_object() && declared[group].contains(input));
      }
      if (!known) {
        problems.push_back("options.bindings." + field + ": " + node_name(graph, id) + " has no input \"" + input +
                           "\" on the server at " + host + ": bind an input its class declares");
      }
    }
  }
  for (const auto& [id, node] : graph.items()) {
    const std::string class_type = node["class_type"].get<std::string>();
    if (!info.contains(class_type) || !info[class_type].contains("input")) {
      continue;
    }
    const json& declared = info[class_type]["input"];
    for (const auto& [input, value] : node["inputs"].items()) {
      if (!value.is_string() || bound.count({id, input})) {
        continue;
      }
      for (const char* group : {"required", "optional"}) {
        if (!declared.contains(group) || !declared[group].is_object() || !declared[group].contains(input)) {
          continue;
        }
        const json* choices = combo_choices(declared[group][input]);
        if (choices && std::find(choices->begin(), choices->end(), value) == choices->end()) {
          std::vector<std::string> offered;
          for (const json& c : *choices) {
            offered.push_back(c.is_string() ? c.get<std::string>() : c.dump());
          }
          problems.push_back(node_name(graph, id) + " input " + input + ": " + value.dump() +
                             " is not one the server at " + host +
                             " offers (it offers: " + capped(joined(offered), 300) +
                             "): put the file in ComfyUI's models folder and restart it, or pick one it has");
        }
      }
    }
  }
  const auto is_output = [&](const std::string& class_type) {
    return info.contains(class_type) && info[class_type].value("output_node", false);
  };
  if (m_config.workflow.output_nodes.empty()) {
    bool any = false;
    for (const auto& [id, node] : graph.items()) {
      any = any || is_output(node["class_type"].get<std::string>());
    }
    if (!any && missing.empty()) {
      problems.push_back(file +
                         " has no output node: add one that saves the render (SaveVideo, VHS_VideoCombine, "
                         "SaveImage for storyboard frames)");
    }
  }
  for (const json& id : m_config.workflow.output_nodes) {
    const std::string class_type = class_of(graph, id.get<std::string>());
    if (info.contains(class_type) && !is_output(class_type)) {
      problems.push_back("options.output_nodes: " + node_name(graph, id.get<std::string>()) +
                         " is not an output node on the server at " + host +
                         ": name the node that saves the render (SaveVideo, VHS_VideoCombine, ...)");
    }
  }
  return problems;
}

Result<json> ComfyUiBackend::bind(const GenerationRequest& request, const std::string& uploaded_image,
                                  json& details) const {
  const json& options = m_config.options;
  const json& targets = m_config.workflow.targets;
  const std::string who = "model \"" + m_config.model_id + "\"";
  if (request.input_frame && !targets.contains("input_image")) {
    return make_error(ErrorCode::invalid_argument,
                      who +
                          ": the request carries an input frame, but options.bindings has no input_image: bind it to "
                          "the LoadImage node's image input (or give the model only text-to-video requests)");
  }
  if (!request.input_frame && targets.contains("input_image")) {
    return make_error(ErrorCode::invalid_argument,
                      who +
                          ": options.bindings.input_image is set, but the request has no input frame: the workflow "
                          "would start from its own image; remove the binding, or use an image-to-video workflow "
                          "only for requests with a frame");
  }
  std::string prompt = request.genpack_face;
  std::string negative;
  if (targets.contains("negative_prompt")) {
    std::tie(prompt, negative) = split_negatives(request.genpack_face);
  }
  const int64_t max_chars = options["prompt_max_chars"].get<int64_t>();
  const CondensedPrompt condensed = condense_prompt(prompt, max_chars);
  if (condensed.condensed) {
    details["prompt_condensed"] = {{"from_units", condensed.original_units},
                                   {"to_units", condensed.units},
                                   {"dropped", condensed.dropped},
                                   {"limit", max_chars}};
  }
  const auto [width, height] = job_wire::dimensions(request.pixels);
  const double fps = options["fps"].get<double>();
  const int64_t frames = frames_for(request.duration_s, fps, options["frames_multiple_of"].get<int64_t>(),
                                    options["frames_remainder"].get<int64_t>());
  details["frames"] = frames;
  details["fps"] = options["fps"];
  const std::map<std::string, json> values = {
      {"prompt", condensed.text},
      {"negative_prompt", negative},
      {"seed", static_cast<int64_t>(request.seed % 4294967296ULL)},
      {"width", width},
      {"height", height},
      {"frames", frames},
      {"fps", options["fps"]},
      {"duration_s", request.duration_s},
      {"input_image", uploaded_image},
  };
  json graph = m_config.workflow.graph;
  for (const auto& [field, list] : targets.items()) {
    for (const json& target : list) {
      graph[target[0].get<std::string>()]["inputs"][target[1].get<std::string>()] = values.at(field);
    }
  }
  return graph;
}

Result<std::string> ComfyUiBackend::upload(const Image& image, CallTrace& trace) const {
  const std::string sha = core::sha256_hex(image.bytes);
  const std::string ext = image.media_type == "image/jpeg" ? "jpg" : image.media_type == "image/webp" ? "webp" : "png";
  const std::string filename = "avps-" + sha.substr(0, 16) + "." + ext;
  std::string boundary = "avps-boundary-" + sha.substr(16, 24);
  while (image.bytes.find(boundary) != std::string::npos) {
    boundary += "x";
  }
  auto field = [&](const std::string& name, const std::string& value) {
    return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
  };
  HttpRequest wire;
  wire.method = "POST";
  wire.url = on_endpoint(m_config.endpoint, "/upload/image");
  wire.headers.emplace_back("Content-Type", "multipart/form-data; boundary=" + boundary);
  wire.body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + filename +
              "\"\r\nContent-Type: " + (image.media_type.empty() ? "image/png" : image.media_type) + "\r\n\r\n" +
              image.bytes + "\r\n" + field("type", "input") + field("overwrite", "true") + "--" + boundary + "--\r\n";
  AVPS_TRY_ASSIGN(HttpResponse reply, exchange(wire, trace, m_config.http));
  const std::string who = "model \"" + m_config.model_id + "\" (" + url_host(m_config.endpoint) + ")";
  if (!is_2xx(reply.status)) {
    return status_error(reply.status, who + " refused the input frame upload", reply.body, m_config.api_key, reply);
  }
  const json parsed = json::parse(reply.body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("name") || !parsed["name"].is_string()) {
    return make_error(ErrorCode::rejected, who + ": the upload's reply has no file name: " + capped(reply.body, 120));
  }
  const std::string subfolder = core::json_text(parsed, "subfolder");
  return subfolder.empty() ? parsed["name"].get<std::string>() : subfolder + "/" + parsed["name"].get<std::string>();
}

Result<Submitted<GenerationResult>> ComfyUiBackend::submit_generation(const GenerationRequest& request,
                                                                      CallTrace& trace) {
  const std::string who = "model \"" + m_config.model_id + "\" (" + url_host(m_config.endpoint) + ")";
  Submitted<GenerationResult> submitted;
  std::string uploaded;
  if (request.input_frame && m_config.workflow.targets.contains("input_image")) {
    AVPS_TRY_ASSIGN(uploaded, upload(*request.input_frame, trace));
    submitted.details["input_image"] = uploaded;
  }
  AVPS_TRY_ASSIGN(json graph, bind(request, uploaded, submitted.details));
  submitted.details["workflow_sha256"] = m_config.workflow.sha256;
  HttpRequest wire;
  wire.method = "POST";
  wire.url = on_endpoint(m_config.endpoint, "/prompt");
  wire.headers.emplace_back("Content-Type", "application/json");
  AVPS_TRY_ASSIGN(wire.body, core::canonical_json(json{{"prompt", graph}, {"client_id", m_config.client_id}}));
  trace.request_body = wire.body;
  trace.response_body.clear();
  AVPS_TRY_ASSIGN(HttpResponse reply, exchange(wire, trace, m_config.http));
  trace.response_body = scrub(reply.body, m_config.api_key);
  if (reply.status == 400) {
    return make_error(ErrorCode::rejected,
                      who + " refused the workflow: " + scrub(refusal_text(reply.body), m_config.api_key));
  }
  if (!is_2xx(reply.status)) {
    return status_error(reply.status, who + " refused the prompt", reply.body, m_config.api_key, reply);
  }
  const json parsed = json::parse(reply.body, nullptr, false);
  const json* id = job_wire::at_pointer(parsed, "/prompt_id");
  if (!id || !id->is_string() || id->get<std::string>().empty()) {
    // Not retried: the prompt may be queued, and a second POST would render it twice.
    return make_error(ErrorCode::rejected, who +
                                               " accepted the prompt but its reply has no prompt_id (check the "
                                               "server's queue for an orphaned prompt)");
  }
  const json ticket = {{"id", *id},
                       {"client_id", m_config.client_id},
                       {"seconds", request.duration_s},
                       {"output", request.resolution == "storyboard" ? "image" : "video"},
                       {"frames", submitted.details["frames"]},
                       {"fps", submitted.details["fps"]}};
  AVPS_TRY_ASSIGN(submitted.ticket, core::canonical_json(ticket));
  return submitted;
}

Result<std::string> ComfyUiBackend::queue_place(const std::string& id, CallTrace& trace) const {
  HttpRequest wire;
  wire.method = "GET";
  wire.url = on_endpoint(m_config.endpoint, "/queue");
  AVPS_TRY_ASSIGN(HttpResponse reply, exchange(wire, trace, m_config.http));
  if (!is_2xx(reply.status)) {
    return status_error(reply.status, "model \"" + m_config.model_id + "\" GET /queue", reply.body, m_config.api_key,
                        reply);
  }
  const json parsed = json::parse(reply.body, nullptr, false);
  if (!parsed.is_object()) {
    return make_error(ErrorCode::backend_unavailable, "model \"" + m_config.model_id + "\": GET /queue is not JSON");
  }
  // Each item is [number, prompt_id, prompt, extra_data, outputs_to_execute, ...].
  for (const char* place : {"queue_running", "queue_pending"}) {
    for (const json& item : parsed.value(place, json::array())) {
      if (item.is_array() && item.size() > 1 && item[1] == id) {
        return std::string(place == std::string("queue_running") ? "running" : "pending");
      }
    }
  }
  return std::string();
}

Result<std::optional<GenerationResult>> ComfyUiBackend::poll_generation(const std::string& ticket_text,
                                                                        CallTrace& trace) {
  const json ticket = json::parse(ticket_text, nullptr, false);
  if (!ticket.is_object() || !ticket.contains("id") || !ticket["id"].is_string()) {
    return make_error(ErrorCode::invalid_argument, "not a comfyui ticket: " + capped(ticket_text, 80));
  }
  const std::string id = ticket["id"].get<std::string>();
  const std::string who = "model \"" + m_config.model_id + "\" prompt " + id;
  auto history = [&]() -> Result<json> {
    HttpRequest wire;
    wire.method = "GET";
    wire.url = on_endpoint(m_config.endpoint, "/history/" + path_escape(id));
    AVPS_TRY_ASSIGN(HttpResponse reply, exchange(wire, trace, m_config.http));
    trace.response_body = scrub(reply.body, m_config.api_key);
    if (!is_2xx(reply.status)) {
      return status_error(reply.status, who + " GET /history", reply.body, m_config.api_key, reply);
    }
    json parsed = json::parse(reply.body, nullptr, false);
    if (!parsed.is_object()) {
      return make_error(ErrorCode::backend_unavailable, who + ": GET /history is not a JSON object");
    }
    return parsed;
  };
  AVPS_TRY_ASSIGN(json entries, history());
  if (!entries.contains(id)) {
    AVPS_TRY_ASSIGN(std::string place, queue_place(id, trace));
    if (!place.empty()) {
      trace.job_state = place == "running" ? "running" : "queued (pending)";
      return std::optional<GenerationResult>();
    }
    // It may have finished between the two requests: the history has the last word.
    AVPS_TRY_ASSIGN(entries, history());
    if (!entries.contains(id)) {
      return make_error(ErrorCode::rejected,
                        who + " is in neither the queue nor the history of the server at " +
                            url_host(m_config.endpoint) +
                            " (restarted, or the prompt deleted): the attempt failed");
    }
  }
  const json& entry = entries[id];
  const json status = entry.is_object() ? entry.value("status", json()) : json();
  const std::string status_str = status.is_object() ? core::json_text(status, "status_str") : "";
  if (status_str == "error") {
    return make_error(ErrorCode::rejected, who + " failed: " + capped(scrub(failure_text(status), m_config.api_key)));
  }
  if (status_str != "success") {
    return make_error(ErrorCode::rejected, who + ": its history entry has status \"" + capped(status_str, 40) +
                                               "\", neither success nor error");
  }
  // The files of the output nodes (the options' order, else every node in id order).
  struct File {
    std::string node, filename, subfolder, type;
    bool animated = false;
  };
  std::vector<File> files;
  const json outputs = entry.value("outputs", json::object());
  std::vector<std::string> nodes;
  for (const json& node : m_config.workflow.output_nodes) {
    nodes.push_back(node.get<std::string>());
  }
  if (nodes.empty()) {
    for (const auto& [node, value] : outputs.items()) {
      nodes.push_back(node);
    }
  }
  for (const std::string& node : nodes) {
    if (!outputs.contains(node) || !outputs[node].is_object()) {
      continue;
    }
    const json& ui = outputs[node];
    const json animated = ui.value("animated", json::array());
    const bool is_animated = animated.is_array() && std::find(animated.begin(), animated.end(), true) != animated.end();
    for (const auto& [key, list] : ui.items()) {
      if (!list.is_array()) {
        continue;
      }
      for (const json& item : list) {
        if (item.is_object() && item.contains("filename") && item["filename"].is_string()) {
          files.push_back({node, item["filename"].get<std::string>(), core::json_text(item, "subfolder"),
                           item.value("type", std::string("output")), is_animated});
        }
      }
    }
  }
  const bool want_image = ticket.value("output", std::string("video")) == "image";
  const File* chosen = nullptr;
  for (const File& f : files) {
    const bool video = has_extension(f.filename, {"mp4", "webm", "mov", "mkv", "gif", "avi", "m4v"}) ||
                       (f.animated && has_extension(f.filename, {"webp"}));
    const bool image = !f.animated && has_extension(f.filename, {"png", "jpg", "jpeg", "webp"});
    if (want_image ? image : video) {
      chosen = &f;
      break;
    }
  }
  if (chosen == nullptr) {
    std::vector<std::string> names;
    for (const File& f : files) {
      names.push_back(f.filename);
    }
    return make_error(ErrorCode::rejected,
                      who + " succeeded, but its outputs hold no " + (want_image ? "image" : "video") + " file (" +
                          (names.empty() ? std::string("no files") : "only " + capped(joined(names), 200)) +
                          "): save the render with " + (want_image ? "SaveImage" : "SaveVideo or VHS_VideoCombine") +
                          ", or name its node in options.output_nodes");
  }
  GenerationResult result;
  result.model = m_config.model_id;
  result.seconds_billed = ticket.value("seconds", 0.0);
  HttpRequest download;
  download.method = "GET";
  download.url = on_endpoint(m_config.endpoint, "/view?filename=" + query_escape(chosen->filename) +
                                                    "&subfolder=" + query_escape(chosen->subfolder) +
                                                    "&type=" + query_escape(chosen->type));
  HttpOptions http = m_config.http;
  http.max_response_bytes = m_config.options["max_download_bytes"].get<int64_t>();
  AVPS_TRY_ASSIGN(HttpResponse got, exchange(download, trace, http));
  AVPS_TRY(job_wire::accept_output(std::move(got), download.url, lower_extension(chosen->filename), who,
                                   m_config.api_key, result));
  result.details["job_id"] = id;
  result.details["provider_status"] = status_str;
  result.details["output"] = {{"node", chosen->node}, {"filename", chosen->filename}, {"subfolder", chosen->subfolder}};
  for (const char* field : {"frames", "fps", "client_id"}) {
    if (ticket.contains(field)) {
      result.details[field] = ticket[field];
    }
  }
  return std::optional<GenerationResult>(std::move(result));
}

Result<void> ComfyUiBackend::cancel_generation(const std::string& ticket_text, CallTrace& trace) {
  const json ticket = json::parse(ticket_text, nullptr, false);
  if (!ticket.is_object() || !ticket.contains("id") || !ticket["id"].is_string()) {
    return make_error(ErrorCode::invalid_argument, "not a comfyui ticket: " + capped(ticket_text, 80));
  }
  const std::string id = ticket["id"].get<std::string>();
  AVPS_TRY_ASSIGN(std::string place, queue_place(id, trace));
  if (place.empty()) {
    return ok();  // finished or unknown: nothing runs on
  }
  HttpRequest wire;
  wire.method = "POST";
  wire.headers.emplace_back("Content-Type", "application/json");
  if (place == "running") {
    // Targeted: a server that knows prompt_id interrupts only this prompt; the queue check above
    // keeps an older one (which interrupts whatever runs) from stopping another client's.
    wire.url = on_endpoint(m_config.endpoint, "/interrupt");
    AVPS_TRY_ASSIGN(wire.body, core::canonical_json(json{{"prompt_id", id}}));
  } else {
    wire.url = on_endpoint(m_config.endpoint, "/queue");
    AVPS_TRY_ASSIGN(wire.body, core::canonical_json(json{{"delete", json::array({id})}}));
  }
  AVPS_TRY_ASSIGN(HttpResponse reply, exchange(wire, trace, m_config.http));
  if (!is_2xx(reply.status)) {
    return status_error(reply.status, "model \"" + m_config.model_id + "\" cancel of prompt " + id, reply.body,
                        m_config.api_key, reply);
  }
  return ok();
}

}  // namespace avps::backends
