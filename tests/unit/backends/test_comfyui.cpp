// comfyui (include/avps/backends/comfyui.hpp) against the fake ComfyUI of tests/support/fake_jobs.hpp
// over loopback: the options and the workflow's bindings (by node id and by title), the server
// check of GET /object_info, submit / poll / download, each fault, cancel, the upload of an input
// frame, the registry's refusal before a run, and the key only in a header.

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "avps/backends/comfyui.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/backends/registry.hpp"
#include "avps/core/exit_code.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/process.hpp"
#include "avps/governance/models.hpp"
#include "support/fake_provider.hpp"
#include "support/temp_dir.hpp"

using avps::backends::CallTrace;
using avps::backends::ComfyUiBackend;
using avps::backends::ComfyUiConfig;
using avps::backends::GenerationRequest;
using avps::backends::GenerationResult;
using avps::testing::FakeProvider;
using avps::testing::FakeProviderConfig;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* k_proxy_key = "comfy-proxy-AVPSLEAKCANARY-77";

FakeProviderConfig comfy_fake_config(const std::string& key = "") {
  FakeProviderConfig config;
  config.data_dir = AVPS_SOURCE_DATA_DIR;
  config.project = {{"seed", 7}};
  config.keys = {"", "", "", key};
  return config;
}

fs::path examples() { return fs::path(AVPS_SOURCE_DATA_DIR) / "examples" / "comfyui"; }

json example_graph() {
  std::ifstream in(examples() / "wan_t2v_api.json");
  return json::parse(in);
}

// The bindings of examples/comfyui/models.json's video model: by title and by node id.
json example_options() {
  return {{"workflow", (examples() / "wan_t2v_api.json").string()},
          {"bindings",
           {{"prompt", {{"title", "Positive Prompt"}, {"input", "text"}}},
            {"negative_prompt", {{"title", "Negative Prompt"}, {"input", "text"}}},
            {"seed", {{"node", "3"}, {"input", "seed"}}},
            {"width", {{"title", "Video Size"}, {"input", "width"}}},
            {"height", {{"title", "Video Size"}, {"input", "height"}}},
            {"frames", {{"title", "Video Size"}, {"input", "length"}}},
            {"fps", {{"title", "Create Video"}, {"input", "fps"}}}}},
          {"output_nodes", {{{"title", "Save Video"}}}},
          {"fps", 16},
          {"frames_multiple_of", 4},
          {"frames_remainder", 1},
          {"poll", {{"interval_s", 0.01}, {"max_wait_s", 5}}}};
}

void write_comfy_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

avps::Result<ComfyUiConfig> config_for(const std::string& endpoint, json overrides, const fs::path& dir = {}) {
  AVPS_TRY_ASSIGN(json options, avps::backends::comfyui_options(overrides, "model \"wan\""));
  ComfyUiConfig config;
  config.model_id = "wan";
  config.endpoint = endpoint;
  config.client_id = "avps-test-client";
  config.options = options;
  AVPS_TRY_ASSIGN(config.workflow, avps::backends::load_comfyui_workflow(dir, options, "model \"wan\""));
  return config;
}

GenerationRequest comfy_shot_request() {
  GenerationRequest r;
  r.shot_id = "S01_SH01";
  r.attempt = 1;
  r.model = "wan";
  r.tier = "gen_mid";
  r.genpack_face =
      "GenPack: S01_SH01\n[STYLE]\nwarm dusk light\n[ACTION]\nMara turns to the window.\n"
      "[NEGATIVES / NO-DRIFT]\n- no sunshine\n- no modern devices\n[SETTINGS]\nresolution: proxy";
  r.resolution = "proxy";
  r.pixels = "640x272";
  r.duration_s = 3;
  r.seed = (uint64_t{1} << 32) + 11;
  return r;
}

void control(const FakeProvider& fake, const json& body) {
  avps::backends::CurlHttpClient client;
  avps::backends::HttpRequest request;
  request.url = fake.base_url() + "/control";
  request.body = body.dump();
  auto sent = client.send(request, {});
  REQUIRE(sent.ok());
  REQUIRE(sent->status == 200);
}

// Submits and polls until an answer or an error (at most 30 polls).
avps::Result<GenerationResult> comfy_run_job(ComfyUiBackend& backend, CallTrace& trace,
                                       const GenerationRequest& request = comfy_shot_request(),
                                       std::string* ticket_out = nullptr) {
  AVPS_TRY_ASSIGN(auto submitted, backend.submit_generation(request, trace));
  REQUIRE(!submitted.answer);
  REQUIRE(!submitted.ticket.empty());
  if (ticket_out) {
    *ticket_out = submitted.ticket;
  }
  for (int i = 0; i < 30; ++i) {
    AVPS_TRY_ASSIGN(auto polled, backend.poll_generation(submitted.ticket, trace));
    if (polled) {
      return std::move(*polled);
    }
  }
  return avps::make_error(avps::ErrorCode::timeout, "the prompt did not finish in 30 polls");
}

// A one-pixel PNG.
std::string png_bytes() {
  static const unsigned char k_png[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
      0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xde, 0x00, 0x00, 0x00,
      0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8, 0xcf, 0xc0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0x18,
      0xdd, 0x8d, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(k_png), sizeof k_png);
}

}  // namespace

TEST_CASE("comfyui options: each wrong option is refused by name, with the fix", "[comfyui]") {
  auto check = [](json options, const std::string& said) {
    INFO(options.dump());
    auto checked = avps::backends::comfyui_options(options, "model \"wan\"");
    REQUIRE(!checked.ok());
    CHECK(checked.error().code == avps::ErrorCode::configuration);
    CHECK_THAT(checked.error().message, Catch::Contains("model \"wan\": " + said));
  };
  json options = example_options();
  options.erase("workflow");
  check(options, "options.workflow is missing");
  check(json{{"workflw", "x.json"}}, "options.workflw is not a comfyui option (allowed:");
  options = example_options();
  options["bindings"]["steps"] = {{"node", "3"}, {"input", "steps"}};
  check(options, "options.bindings.steps is not a field avps binds");
  options = example_options();
  options["bindings"]["seed"] = {{"node", "3"}, {"title", "Sampler"}, {"input", "seed"}};
  check(options, "options.bindings.seed must name its node by exactly one of");
  options = example_options();
  options["bindings"]["seed"] = {{"node", "3"}};
  check(options, "options.bindings.seed must give \"input\"");
  options = example_options();
  options["bindings"].erase("prompt");
  check(options, "options.bindings.prompt is missing");
  options = example_options();
  options["frames_remainder"] = 4;
  check(options, "options.frames_multiple_of must be an integer from 1 to 1000 and frames_remainder");
  options = example_options();
  options["poll"] = {{"interval_s", 0}};
  check(options, "options.poll must be");
  // Defaults fill in what is not given.
  auto minimal = avps::backends::comfyui_options(
      {{"workflow", "w.json"}, {"bindings", {{"prompt", {{"node", "6"}, {"input", "text"}}}}}}, "m");
  REQUIRE(minimal.ok());
  CHECK((*minimal)["fps"] == 24);
  CHECK((*minimal)["poll"]["max_wait_s"] == 3600);
}

TEST_CASE("comfyui bindings resolve by node id and by title, and every wrong one is refused", "[comfyui]") {
  auto loaded = config_for("http://127.0.0.1:1", example_options());
  REQUIRE(loaded.ok());
  const json& targets = loaded->workflow.targets;
  CHECK(targets["prompt"] == json::array({json::array({"6", "text"})}));  // by title
  CHECK(targets["negative_prompt"] == json::array({json::array({"7", "text"})}));
  CHECK(targets["seed"] == json::array({json::array({"3", "seed"})}));  // by id
  CHECK(targets["frames"] == json::array({json::array({"40", "length"})}));
  CHECK(loaded->workflow.output_nodes == json::array({"50"}));
  CHECK(loaded->workflow.sha256.size() == 64);

  avps::testing::TempDir dir;
  auto refused = [&](const json& options, const std::string& said) {
    INFO(options.dump());
    auto config = config_for("http://127.0.0.1:1", options, dir.path());
    REQUIRE(!config.ok());
    CHECK(config.error().code == avps::ErrorCode::configuration);
    CHECK_THAT(config.error().message, Catch::Contains(said));
  };
  json options = example_options();
  options["workflow"] = "missing.json";
  refused(options, "cannot be read");
  refused(options, "Export (API)");
  write_comfy_file(dir.path() / "ui.json", R"({"last_node_id": 9, "nodes": [], "links": []})");
  options["workflow"] = "ui.json";
  refused(options, "is ComfyUI's UI format (nodes and links)");
  write_comfy_file(dir.path() / "junk.json", "{not json");
  options["workflow"] = "junk.json";
  refused(options, "is not a JSON object");
  write_comfy_file(dir.path() / "flat.json", R"({"3": {"inputs": {}}})");
  options["workflow"] = "flat.json";
  refused(options, "\"3\" is not an API-format node");

  options = example_options();
  options["bindings"]["seed"] = {{"node", "99"}, {"input", "seed"}};
  refused(options, "options.bindings.seed names node \"99\", which the workflow does not have (its nodes: 3 KSampler");
  options = example_options();
  options["bindings"]["prompt"] = {{"title", "Prompt+"}, {"input", "text"}};
  refused(options, "names the title \"Prompt+\", which no node of the workflow has");
  options = example_options();
  options["bindings"]["seed"] = {{"node", "3"}, {"input", "noise_seed"}};
  refused(options, "node 3 (KSampler) has no input \"noise_seed\" in the workflow (its inputs: ");
  options = example_options();
  options["bindings"]["prompt"] = {{"node", "3"}, {"input", "positive"}};
  refused(options, "input \"positive\" of node 3 (KSampler) is a link from node \"6\", not a value");
  options = example_options();
  options["bindings"]["negative_prompt"] = {{"node", "6"}, {"input", "text"}};
  refused(options, "input \"text\" of node 6 (CLIPTextEncode) is bound to ");
  options = example_options();
  options["output_nodes"] = {{{"title", "Save Vid"}}};
  refused(options, "options.output_nodes names the title \"Save Vid\"");

  // Two nodes with one title: the title is ambiguous, the id is not.
  json graph = example_graph();
  graph["7"]["_meta"]["title"] = "Positive Prompt";
  write_comfy_file(dir.path() / "twins.json", graph.dump());
  options = example_options();
  options["workflow"] = "twins.json";
  options["bindings"].erase("negative_prompt");
  refused(options, "2 nodes are titled \"Positive Prompt\" (ids 6, 7): bind by node id");
  // A field may go to several inputs.
  options["bindings"]["prompt"] = json::array({{{"node", "6"}, {"input", "text"}}, {{"node", "7"}, {"input", "text"}}});
  auto both = config_for("http://127.0.0.1:1", options, dir.path());
  REQUIRE(both.ok());
  CHECK(both->workflow.targets["prompt"].size() == 2);
}

TEST_CASE("comfyui: GET /object_info refuses what the server cannot run, naming each fix", "[comfyui]") {
  FakeProvider fake(comfy_fake_config());
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  auto config = config_for(fake.base_url(), example_options());
  REQUIRE(config.ok());
  {
    ComfyUiBackend ready(*config, client);
    CallTrace trace;
    CHECK(ready.check_server(trace).empty());
    CHECK(trace.provider == "comfyui");
  }
  auto problems_of = [&](json graph, json options = example_options()) {
    ComfyUiConfig changed = *config;
    changed.workflow.graph = std::move(graph);
    if (options != example_options()) {
      auto reloaded = config_for(fake.base_url(), options);
      REQUIRE(reloaded.ok());
      changed.workflow.output_nodes = reloaded->workflow.output_nodes;
    }
    ComfyUiBackend backend(changed, client);
    CallTrace trace;
    std::string all;
    for (const std::string& p : backend.check_server(trace)) {
      all += p + "\n";
    }
    return all;
  };
  // A custom node the server lacks.
  json graph = example_graph();
  graph["50"]["class_type"] = "VHS_VideoCombine";
  CHECK_THAT(problems_of(graph), Catch::Contains("has no node class VHS_VideoCombine (node 50)") &&
                                     Catch::Contains("Install Missing Custom Nodes"));
  // A model file the server does not have.
  graph = example_graph();
  graph["37"]["inputs"]["unet_name"] = "wan2.2_t2v_14B.safetensors";
  CHECK_THAT(problems_of(graph), Catch::Contains("node 37 (UNETLoader) input unet_name: \"wan2.2_t2v_14B.safetensors\" "
                                                 "is not one the server at") &&
                                     Catch::Contains("wan2.1_t2v_1.3B_fp16.safetensors"));
  // A bound input the class does not declare (the workflow holds it, the server ignores it).
  graph = example_graph();
  graph["3"]["inputs"]["noise_seed"] = 1;
  ComfyUiConfig extra = *config;
  extra.workflow.graph = graph;
  extra.workflow.targets["seed"] = json::array({json::array({"3", "noise_seed"})});
  {
    ComfyUiBackend backend(extra, client);
    CallTrace trace;
    const auto problems = backend.check_server(trace);
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0], Catch::Contains("options.bindings.seed: node 3 (KSampler) has no input \"noise_seed\" on "
                                            "the server"));
  }
  // An output node that saves nothing.
  json options = example_options();
  options["output_nodes"] = {{{"title", "Create Video"}}};
  CHECK_THAT(problems_of(example_graph(), options),
             Catch::Contains("options.output_nodes: node 49 (CreateVideo) is not an output node"));
  // No server at all.
  {
    ComfyUiConfig nowhere = *config;
    nowhere.endpoint = "http://127.0.0.1:9";
    ComfyUiBackend backend(nowhere, client);
    CallTrace trace;
    const auto problems = backend.check_server(trace);
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0], Catch::Contains("does not answer GET /object_info") && Catch::Contains("start it"));
  }
  CHECK(fake.stats()["jobs"]["invalid"] == 0);
}

TEST_CASE("comfyui: one prompt with the bindings applied, polled in the history, its video downloaded", "[comfyui]") {
  FakeProvider fake(comfy_fake_config());
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  auto config = config_for(fake.base_url(), example_options());
  REQUIRE(config.ok());
  ComfyUiBackend backend(*config, client);
  CallTrace trace;
  std::string ticket_text;
  auto result = comfy_run_job(backend, trace, comfy_shot_request(), &ticket_text);
  REQUIRE(result.ok());
  CHECK(result->extension == "mp4");
  CHECK(result->media_bytes.size() > 100);
  CHECK(result->seconds_billed == 3);
  CHECK(result->details["job_id"] == json::parse(ticket_text)["id"]);
  CHECK(result->details["output"]["node"] == "50");
  CHECK(result->details["frames"] == 49);  // 3 s x 16 fps = 48, the next 4k+1
  if (avps::core::on_path("ffprobe")) {
    CHECK(result->details["probe"].value("codec", "") != "");
  }
  const json ticket = json::parse(ticket_text);
  CHECK(ticket["client_id"] == "avps-test-client");
  CHECK(ticket["output"] == "video");

  // What the server was sent: the workflow with the request's values at the bound inputs.
  REQUIRE(trace.attempts.size() >= 3);
  const json stats = fake.stats()["jobs"];
  CHECK(stats["invalid"] == 0);
  CHECK(stats["by_preset"]["comfyui"] == 1);
  CHECK(stats["comfyui"]["last_client_id"] == "avps-test-client");
  CHECK(stats["downloads"] == 1);
  ComfyUiBackend binder(*config, client);
  json details;
  auto bound = binder.bind(comfy_shot_request(), "", details);
  REQUIRE(bound.ok());
  const json& graph = *bound;
  const std::string prompt = graph["6"]["inputs"]["text"];
  CHECK(prompt.find("Mara turns to the window.") != std::string::npos);
  CHECK(prompt.find("no sunshine") == std::string::npos);  // the negatives went to their own prompt
  CHECK(prompt.find("[SETTINGS]") != std::string::npos);
  CHECK(graph["7"]["inputs"]["text"] == "no sunshine, no modern devices");
  CHECK(graph["3"]["inputs"]["seed"] == 11);  // mod 2^32
  CHECK(graph["40"]["inputs"]["width"] == 640);
  CHECK(graph["40"]["inputs"]["height"] == 272);
  CHECK(graph["40"]["inputs"]["length"] == 49);
  CHECK(graph["49"]["inputs"]["fps"] == 16);
  CHECK(graph["37"] == example_graph()["37"]);  // unbound nodes as exported

  // Without a negative binding the whole face is the prompt.
  json options = example_options();
  options["bindings"].erase("negative_prompt");
  auto plain = config_for(fake.base_url(), options);
  REQUIRE(plain.ok());
  json plain_details;
  auto whole = ComfyUiBackend(*plain, client).bind(comfy_shot_request(), "", plain_details);
  REQUIRE(whole.ok());
  CHECK((*whole)["6"]["inputs"]["text"] == comfy_shot_request().genpack_face);
  CHECK((*whole)["7"]["inputs"]["text"] == example_graph()["7"]["inputs"]["text"]);
}

TEST_CASE("comfyui: a failed prompt, a 404 output, a non-video output and a lost prompt are final errors",
          "[comfyui]") {
  avps::backends::CurlHttpClient client;
  struct Case {
    std::string fault;
    std::string said;
  };
  const std::vector<Case> cases = {{"job_fails", "failed: node 3 (KSampler): RuntimeError: the fake failed this job"},
                                   {"output_404", "its output download answered HTTP 404"},
                                   {"not_video", "its output is not a video"}};
  for (const Case& c : cases) {
    INFO(c.fault);
    if (c.fault == "not_video" && !avps::core::on_path("ffprobe")) {
      continue;  // only ffprobe can tell
    }
    FakeProvider fake(comfy_fake_config());
    REQUIRE(fake.start().ok());
    control(fake, {{"job_faults", {{{"fault", c.fault}, {"preset", "comfyui"}}}}});
    auto config = config_for(fake.base_url(), example_options());
    REQUIRE(config.ok());
    ComfyUiBackend backend(*config, client);
    CallTrace trace;
    auto result = comfy_run_job(backend, trace);
    REQUIRE(!result.ok());
    CHECK(result.error().code == avps::ErrorCode::rejected);  // final: the exchange records a failed attempt
    CHECK_THAT(result.error().message, Catch::Contains(c.said));
    CHECK(fake.stats()["jobs"]["invalid"] == 0);
  }
  FakeProvider fake(comfy_fake_config());
  REQUIRE(fake.start().ok());
  auto config = config_for(fake.base_url(), example_options());
  REQUIRE(config.ok());
  ComfyUiBackend backend(*config, client);
  CallTrace trace;
  // A prompt the server does not know (it was restarted): failed, not waited for until max wait.
  auto lost = backend.poll_generation(R"({"client_id":"c","id":"0badc0de","output":"video","seconds":3})", trace);
  REQUIRE(!lost.ok());
  CHECK(lost.error().code == avps::ErrorCode::rejected);
  CHECK_THAT(lost.error().message, Catch::Contains("in neither the queue nor the history"));
  // A 429 at submit is transient: no prompt was queued.
  control(fake, {{"job_faults", {{{"fault", "submit_429"}, {"preset", "comfyui"}}}}});
  auto throttled = backend.submit_generation(comfy_shot_request(), trace);
  REQUIRE(!throttled.ok());
  CHECK(throttled.error().code == avps::ErrorCode::rate_limited);
  CHECK(fake.stats()["jobs"]["submissions"] == 0);
  // A workflow the server refuses (400 with node_errors): the refusal says which node and why.
  ComfyUiConfig broken = *config;
  broken.workflow.graph["38"]["inputs"].erase("clip_name");
  auto refused = ComfyUiBackend(broken, client).submit_generation(comfy_shot_request(), trace);
  REQUIRE(!refused.ok());
  CHECK(refused.error().code == avps::ErrorCode::rejected);
  CHECK_THAT(refused.error().message,
             Catch::Contains("refused the workflow: Prompt outputs failed validation") &&
                 Catch::Contains("node 38 (CLIPLoader): Required input is missing: clip_name"));
}

TEST_CASE("comfyui: a queued prompt is waited for, and cancel deletes a waiting prompt or interrupts the running one",
          "[comfyui]") {
  FakeProvider fake(comfy_fake_config());
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  control(fake, {{"job_faults", {{{"fault", "throttled"}, {"polls", 4}, {"preset", "comfyui"}}}}});
  auto config = config_for(fake.base_url(), example_options());
  REQUIRE(config.ok());
  ComfyUiBackend backend(*config, client);
  CallTrace trace;
  auto result = comfy_run_job(backend, trace);
  REQUIRE(result.ok());
  CHECK(fake.stats()["jobs"]["polls"].get<int>() >= 6);

  // Waiting in the queue (never polled): taken off the queue.
  auto waiting = backend.submit_generation(comfy_shot_request(), trace);
  REQUIRE(waiting.ok());
  REQUIRE(backend.cancel_generation(waiting->ticket, trace).ok());
  json stats = fake.stats()["jobs"];
  CHECK(stats["cancels"] == 1);
  CHECK(stats["comfyui"]["queue_deletes"] == 1);
  CHECK(stats["in_flight"] == 0);
  auto gone = backend.poll_generation(waiting->ticket, trace);
  REQUIRE(!gone.ok());
  CHECK_THAT(gone.error().message, Catch::Contains("in neither the queue nor the history"));

  // Running for ever: interrupted, by its prompt id (never a global interrupt).
  control(fake, {{"job_faults", {{{"fault", "never_finishes"}, {"preset", "comfyui"}}}}});
  auto running = backend.submit_generation(comfy_shot_request(), trace);
  REQUIRE(running.ok());
  for (int i = 0; i < 5; ++i) {
    auto polled = backend.poll_generation(running->ticket, trace);
    REQUIRE(polled.ok());
    CHECK(!*polled);
  }
  REQUIRE(backend.cancel_generation(running->ticket, trace).ok());
  stats = fake.stats()["jobs"];
  CHECK(stats["cancels"] == 2);
  CHECK(stats["comfyui"]["interrupts"] == 1);
  auto interrupted = backend.poll_generation(running->ticket, trace);
  REQUIRE(!interrupted.ok());
  CHECK_THAT(interrupted.error().message, Catch::Contains("failed: interrupted at node 3 (KSampler)"));
  // A finished prompt needs nothing.
  std::string done_ticket;
  control(fake, {{"job_faults", json::array()}});
  REQUIRE(comfy_run_job(backend, trace, comfy_shot_request(), &done_ticket).ok());
  REQUIRE(backend.cancel_generation(done_ticket, trace).ok());
  stats = fake.stats()["jobs"];
  CHECK(stats["cancels"] == 2);
  CHECK(stats["invalid"] == 0);
}

TEST_CASE("comfyui: an input frame is uploaded first and bound by its file name", "[comfyui]") {
  FakeProvider fake(comfy_fake_config());
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  avps::testing::TempDir dir;
  // Wan image-to-video: LoadImage feeds the start image.
  json graph = example_graph();
  graph["52"] = {
      {"class_type", "LoadImage"}, {"inputs", {{"image", "example.png"}}}, {"_meta", {{"title", "Start Frame"}}}};
  graph["51"] = {{"class_type", "WanImageToVideo"},
                 {"inputs",
                  {{"positive", {"6", 0}},
                   {"negative", {"7", 0}},
                   {"vae", {"39", 0}},
                   {"width", 832},
                   {"height", 480},
                   {"length", 33},
                   {"batch_size", 1},
                   {"start_image", {"52", 0}}}},
                 {"_meta", {{"title", "Image to Video"}}}};
  graph["3"]["inputs"]["positive"] = {"51", 0};
  graph["3"]["inputs"]["negative"] = {"51", 1};
  graph["3"]["inputs"]["latent_image"] = {"51", 2};
  graph.erase("40");
  graph["37"]["inputs"]["unet_name"] = "wan2.1_i2v_480p_14B_fp16.safetensors";
  write_comfy_file(dir.path() / "i2v.json", graph.dump());
  json options = example_options();
  options["workflow"] = "i2v.json";
  options["bindings"]["width"] = {{"title", "Image to Video"}, {"input", "width"}};
  options["bindings"]["height"] = {{"title", "Image to Video"}, {"input", "height"}};
  options["bindings"]["frames"] = {{"title", "Image to Video"}, {"input", "length"}};
  options["bindings"]["input_image"] = {{"title", "Start Frame"}, {"input", "image"}};
  auto config = config_for(fake.base_url(), options, dir.path());
  REQUIRE(config.ok());
  ComfyUiBackend backend(*config, client);
  CallTrace check_trace;
  CHECK(backend.check_server(check_trace).empty());  // the bound LoadImage value is not checked against the list

  GenerationRequest request = comfy_shot_request();
  request.input_frame = avps::backends::Image{"image/png", png_bytes(), "S01_SH01 storyboard"};
  CallTrace trace;
  std::string ticket;
  auto result = comfy_run_job(backend, trace, request, &ticket);
  REQUIRE(result.ok());
  const json stats = fake.stats()["jobs"];
  CHECK(stats["invalid"] == 0);
  CHECK(stats["comfyui"]["uploads"] == 1);
  const std::string name = "avps-" + avps::core::sha256_hex(png_bytes()).substr(0, 16) + ".png";
  json details;
  auto bound = backend.bind(request, name, details);
  REQUIRE(bound.ok());
  CHECK((*bound)["52"]["inputs"]["image"] == name);
  // The frame is part of the request's canonical form (its key), by digest.
  CHECK(request.to_json()["input_frame"]["sha256"] == avps::core::sha256_hex(png_bytes()));
  CHECK(!comfy_shot_request().to_json().contains("input_frame"));

  // A frame with nowhere to go, or a binding with no frame, is refused, never dropped.
  auto no_frame = backend.submit_generation(comfy_shot_request(), trace);
  REQUIRE(!no_frame.ok());
  CHECK(no_frame.error().code == avps::ErrorCode::invalid_argument);
  CHECK_THAT(no_frame.error().message, Catch::Contains("options.bindings.input_image is set, but the request has no"));
  auto t2v = config_for(fake.base_url(), example_options());
  REQUIRE(t2v.ok());
  auto unbound = ComfyUiBackend(*t2v, client).submit_generation(request, trace);
  REQUIRE(!unbound.ok());
  CHECK_THAT(unbound.error().message,
             Catch::Contains("carries an input frame, but options.bindings has no input_image"));
  CHECK(fake.stats()["jobs"]["submissions"] == 1);
}

TEST_CASE("comfyui: a key is sent only as a Bearer header, never in a ticket, a body or an error", "[comfyui]") {
  FakeProvider fake(comfy_fake_config(k_proxy_key));
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  auto config = config_for(fake.base_url(), example_options());
  REQUIRE(config.ok());
  {
    ComfyUiBackend keyless(*config, client);
    CallTrace trace;
    CHECK(!keyless.check_server(trace).empty());  // the proxy wants its key
  }
  config->api_key = k_proxy_key;
  ComfyUiBackend backend(*config, client);
  CallTrace trace;
  CHECK(backend.check_server(trace).empty());
  std::string ticket;
  auto result = comfy_run_job(backend, trace, comfy_shot_request(), &ticket);
  REQUIRE(result.ok());
  CHECK(ticket.find(k_proxy_key) == std::string::npos);
  CHECK(trace.request_body.find(k_proxy_key) == std::string::npos);
  CHECK(trace.response_body.find(k_proxy_key) == std::string::npos);
  CHECK(result->details.dump().find(k_proxy_key) == std::string::npos);
  CHECK(fake.stats()["jobs"]["invalid"] == 1);  // the keyless GET /object_info, refused 401
}

TEST_CASE("the registry opens a comfyui model after asking its server, and refuses it before a run otherwise",
          "[comfyui]") {
  FakeProvider fake(comfy_fake_config());
  REQUIRE(fake.start().ok());
  avps::testing::TempDir project;
  fs::create_directories(project.path() / "comfyui");
  fs::copy_file(examples() / "wan_t2v_api.json", project.path() / "comfyui" / "wan.json");
  json options = example_options();
  options["workflow"] = "comfyui/wan.json";  // relative to the project folder
  avps::backends::BackendSpec spec{.model_id = "wan",
                                   .backend = "comfyui",
                                   .endpoint = fake.base_url(),
                                   .api_key_env = "",
                                   .provider_model = "",
                                   .preset = "",
                                   .options = options,
                                   .generates = true,
                                   .project_dir = project.path()};
  const auto env = [](const char*) -> const char* { return nullptr; };
  auto opened = avps::backends::BackendRegistry::open({spec}, json::object(), env);
  REQUIRE(opened.ok());
  CHECK((*opened)->kind_of("wan") == "comfyui");
  CHECK((*opened)->for_model("wan") != nullptr);
  CHECK((*opened)->for_model("wan")->job_timing().poll_interval_ms == 10);

  // The server lacks a node class: refused with the fix, exit 4.
  json graph = example_graph();
  graph["50"]["class_type"] = "VHS_VideoCombine";
  write_comfy_file(project.path() / "comfyui" / "vhs.json", graph.dump());
  spec.options["workflow"] = "comfyui/vhs.json";
  auto refused = avps::backends::BackendRegistry::open({spec}, json::object(), env);
  REQUIRE(!refused.ok());
  CHECK(avps::exit_code_for(refused.error().code) == avps::ExitCode::environment);
  CHECK_THAT(refused.error().message, Catch::Contains("model \"wan\" (comfyui): the ComfyUI server at") &&
                                          Catch::Contains("has no node class VHS_VideoCombine (node 50)"));
  // A workflow that is not there: refused by check_models too, without asking the server.
  spec.options["workflow"] = "comfyui/nope.json";
  const auto checks = avps::backends::check_models({spec}, env);
  REQUIRE(checks.size() == 1);
  REQUIRE(checks[0].problems.size() == 1);
  CHECK_THAT(checks[0].problems[0], Catch::StartsWith("options.workflow ") && Catch::Contains("cannot be read"));
  CHECK(checks[0].key == "not needed");
}

TEST_CASE("the shipped examples/comfyui models file and workflows pass every check, a still rendered as an image",
          "[comfyui]") {
  auto file = avps::governance::ModelsFile::load_file(AVPS_SOURCE_DATA_DIR, examples() / "models.json");
  REQUIRE(file.ok());
  FakeProvider fake(comfy_fake_config());
  REQUIRE(fake.start().ok());
  avps::backends::CurlHttpClient client;
  int comfy_models = 0;
  for (const avps::governance::Model& model : file->models()) {
    if (model.backend != "comfyui") {
      continue;
    }
    INFO(model.id);
    ++comfy_models;
    // The workflow paths are relative to a project folder that holds examples/comfyui as comfyui/.
    auto config = config_for(fake.base_url(), model.options, examples().parent_path());
    REQUIRE(config.ok());
    ComfyUiBackend backend(*config, client);
    CallTrace trace;
    CHECK(backend.check_server(trace).empty());
    GenerationRequest request = comfy_shot_request();
    if (model.capabilities.image_out) {
      request.resolution = "storyboard";  // a storyboard still: the first image of the output nodes
    }
    auto result = comfy_run_job(backend, trace, request);
    REQUIRE(result.ok());
    CHECK(result->extension == (model.capabilities.image_out ? "png" : "mp4"));
  }
  CHECK(comfy_models == 2);
  CHECK(fake.stats()["jobs"]["invalid"] == 0);
}
