// Writes the seed corpora of the fuzz targets whose inputs are made from the test fixtures
// (tests/fixtures/artifacts/*.json): faces (each kind's fixture rendered) and answers (each
// model skill's fixture outputs as its answer). The other targets' seeds are small hand-written
// files. Run from the fuzz build, then commit what changed:
//   ninja -C build-fuzz avps_fuzz_seeds && build-fuzz/tests/fuzz/avps_fuzz_seeds tests/fuzz/corpus

#include <cctype>
#include <fstream>
#include <iostream>
#include <string>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "fuzz_tables.hpp"

using namespace avps;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json fixture(const std::string& kind) {
  std::string file;
  for (char c : kind) {
    file += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  Result<std::string> text = core::read_file(fuzz::k_source_dir / "tests/fixtures/artifacts" / (file + ".json"));
  return text ? json::parse(*text) : json();
}

void write_seed(const fs::path& dir, const std::string& name, std::size_t index, const std::string& text) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.put(static_cast<char>(index));
  out << text;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: avps_fuzz_seeds CORPUS_DIR\n";
    return 2;
  }
  const fs::path corpus = argv[1];
  const std::vector<fuzz::KindCodec>& kinds = fuzz::face_kinds();
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    const json content = fixture(kinds[i].kind);
    Result<std::string> face = kinds[i].codec.render(content);
    if (content.is_null() || !face) {
      std::cerr << kinds[i].kind << ": no seed (" << (face ? "no fixture" : face.error().message) << ")\n";
      continue;
    }
    std::string target;
    if (artifacts::find_kind(kinds[i].kind)->target != artifacts::TargetKind::none) {
      for (const char* field : {"scene_id", "shot_id", "entity_id", "target"}) {
        if (content.contains(field) && content[field].is_string()) {
          target = content[field].get<std::string>();
        }
      }
    }
    write_seed(corpus / "faces", kinds[i].kind, i, target + "\n" + *face);
  }
  const std::vector<const skills::SkillDef*>& skills = fuzz::model_skills();
  for (std::size_t i = 0; i < skills.size(); ++i) {
    const std::vector<const skills::SkillOutput*> outputs = skills[i]->model_outputs();
    json answer = json::object();
    for (const skills::SkillOutput* output : outputs) {
      json content = fixture(output->kind);
      content.erase("gate");  // the engine puts its own in
      if (outputs.size() == 1) {
        answer = content;
      } else {
        answer[output->kind] = content;
      }
    }
    write_seed(corpus / "answers", skills[i]->name, i, answer.dump(1));
  }
  return 0;
}
