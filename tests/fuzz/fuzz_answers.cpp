// Fuzz target: what the engine does with a model's text answer (src/engine/engine.cpp
// run_pages and finish_attempt, through src/engine/answer.hpp), for every shipped model skill:
//   byte 0     the skill: an index into the shipped model skills, by name
//   the rest   the answer text; for a paged skill, pages separated by the byte 0x1e (RS)
// The steps a run takes: parse (each page: read_page_answer, merge_page), each model output's
// content (output_content), the gate object put in, schema validation; when every output is
// valid, the STATE_DIFF post step, the skill's gate (evaluate_gate_outputs over a context with
// the demo's configuration and no recorded artifacts), canonical JSON and the face: it renders,
// parses back, and renders to the same bytes (face.hpp's guarantee for what the schema accepts).

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../../src/engine/answer.hpp"
#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/builtins/world_state.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/gates/gate.hpp"
#include "avps/project/config.hpp"
#include "avps/skills/registry.hpp"
#include "fuzz_tables.hpp"

using namespace avps;
using avps::fuzz::fuzz_fail;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json read_json(const fs::path& path) {
  Result<std::string> text = core::read_file(path);
  if (!text) {
    fuzz_fail("cannot read " + path.string() + ": " + text.error().message);
  }
  return json::parse(*text);
}

// A gate context with the demo's configuration and nothing recorded yet.
class EmptyProject : public gates::GateContext {
 public:
  EmptyProject() {
    project::ConfigSources sources;
    sources.project_dir = avps::fuzz::k_source_dir / "examples" / "demo_short_film";
    sources.data_dir = avps::fuzz::k_source_dir;
    Result<project::Config> config = project::load_config(sources);
    if (!config) {
      fuzz_fail("the demo's configuration does not load: " + config.error().message);
    }
    m_config = config->document;
  }
  const json& config() const override { return m_config; }
  Result<std::optional<json>> latest(std::string_view /*kind*/, std::string_view /*target*/) const override {
    return std::optional<json>();
  }
  Result<std::optional<Face>> latest_face(std::string_view /*kind*/, std::string_view /*target*/) const override {
    return std::optional<Face>();
  }

 private:
  json m_config;
};

struct World {
  std::map<std::string, artifacts::FaceCodec> codecs;
  json world_state;  ///< the WORLD_STATE a STATE_DIFF applies to
  EmptyProject context;
};

World& world() {
  static World* const k_world = [] {
    auto* w = new World{{}, read_json(avps::fuzz::k_source_dir / "tests/fixtures/artifacts/world_state.json"), {}};
    for (const skills::SkillDef* skill : avps::fuzz::model_skills()) {
      for (const skills::SkillOutput* output : skill->model_outputs()) {
        Result<artifacts::FaceCodec> codec = artifacts::FaceCodec::load(avps::fuzz::k_source_dir / "schemas", output->kind);
        if (!codec) {
          fuzz_fail("no codec for " + output->kind + ": " + codec.error().message);
        }
        w->codecs.emplace(output->kind, std::move(codec).value());
      }
    }
    return w;
  }();
  return *k_world;
}

bool carries_gate(const artifacts::FaceCodec& codec) {
  const json& document = codec.schema().document();
  return document.contains("properties") && document["properties"].contains("gate");
}

// The answer of a paged attempt, as run_pages assembles it; nullopt when a page fails.
std::optional<json> paged_answer(const skills::SkillDef& skill, std::string_view text) {
  const std::vector<const skills::SkillOutput*> outputs = skill.model_outputs();
  json assembled = json::object();
  while (true) {
    const std::size_t end = text.find('\x1e');
    Result<engine::PageAnswer> page = engine::read_page_answer(text.substr(0, end), skill.name);
    if (!page) {
      return std::nullopt;
    }
    if (!core::canonical_json(page->carry)) {
      return std::nullopt;
    }
    for (const skills::SkillOutput* output : outputs) {
      json content = engine::output_content(page->answer, output->kind, outputs.size());
      if (content.is_object() && !content.empty() && !engine::merge_page(assembled, output->kind, std::move(content))) {
        return std::nullopt;
      }
    }
    if (end == std::string_view::npos || (skill.paging->input.empty() && !page->more)) {
      break;
    }
    text.remove_prefix(end + 1);
  }
  return outputs.size() == 1 ? (assembled.empty() ? json::object() : assembled.begin().value()) : assembled;
}

// The name an output of `content` gets: its ids, as the engine's target_for gives them.
std::optional<artifacts::ArtifactName> name_for(const std::string& kind, const json& content) {
  const artifacts::KindInfo* info = artifacts::find_kind(kind);
  std::string target;
  if (info->target != artifacts::TargetKind::none) {
    for (const char* field : {"scene_id", "shot_id", "entity_id", "target"}) {
      if (content.contains(field) && content[field].is_string()) {
        target = content[field].get<std::string>();
      }
    }
  }
  Result<artifacts::ArtifactName> name = artifacts::make_artifact_name(kind, target, 1);
  return name ? std::optional(*name) : std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  World& w = world();
  const std::vector<const skills::SkillDef*>& model_skills = avps::fuzz::model_skills();
  const skills::SkillDef& skill = *model_skills[data[0] % model_skills.size()];
  const std::string_view text = avps::fuzz::as_text(data + 1, size - 1);

  json answer;
  if (skill.paging) {
    std::optional<json> assembled = paged_answer(skill, text);
    if (!assembled) {
      return 0;
    }
    answer = std::move(*assembled);
  } else {
    Result<json> parsed = core::parse_json(text, skill.name + " output");
    if (!parsed) {
      return 0;
    }
    answer = std::move(parsed).value();
  }

  const std::vector<const skills::SkillOutput*> model_outputs = skill.model_outputs();
  gates::Outputs outputs;
  bool valid = true;
  for (const skills::SkillOutput* output : model_outputs) {
    const artifacts::FaceCodec& codec = w.codecs.at(output->kind);
    json content = engine::output_content(answer, output->kind, model_outputs.size());
    if (content.is_object() && carries_gate(codec)) {
      content["gate"] = gates::GateResult{}.to_json();
    }
    valid = codec.schema().validate(content).empty() && valid;
    outputs[output->kind] = std::move(content);
  }
  if (!valid) {
    return 0;
  }
  if (outputs.count("STATE_DIFF")) {
    std::ignore = builtins::apply_state_diff(w.world_state, outputs["STATE_DIFF"]);
  }
  std::ignore = gates::evaluate_gate_outputs(skill.raw, outputs, w.context);
  if (outputs.count("QC_BATCH")) {
    gates::file_violations_under_rows(outputs["QC_BATCH"]);  // as the engine files a grader's answer into its wave
  }

  for (const auto& [kind, content] : outputs) {
    if (!core::canonical_json(content)) {
      continue;  // invalid UTF-8: the engine's write refuses it
    }
    const artifacts::FaceCodec& codec = w.codecs.at(kind);
    Result<std::string> face = codec.render(content);
    if (!face) {
      fuzz_fail(kind + ": an answer the schema accepts does not render: " + face.error().message);
    }
    std::optional<artifacts::ArtifactName> name = name_for(kind, content);
    if (!name) {
      continue;
    }
    Result<json> parsed = codec.parse(*face, *name);
    if (!parsed) {
      fuzz_fail(kind + ": the face of a valid answer does not parse: " + parsed.error().message + "\n--- face\n" +
                *face);
    }
    Result<std::string> again = codec.render(*parsed);
    if (!again || *again != *face) {
      fuzz_fail(kind + ": render(parse(render(x))) != render(x)\n--- first\n" + *face + "\n--- second\n" +
                (again ? *again : again.error().message));
    }
  }
  return 0;
}
