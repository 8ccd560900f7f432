#pragma once
// Faces: the human-readable file of an artifact, rendered deterministically from its canonical
// JSON and parsed back (for `avps artifact import|edit`). Format: docs/formats/faces.md.
//
// One codec serves every kind: it is driven by the kind's schema (its "x-avps-face" block gives
// the format, the title and the sections or columns; the schema's properties give order and
// types). Guarantees:
//   - render is a function of the content: same JSON, same bytes.
//   - render(parse(render(x))) == render(x) for every x the schema accepts.
//   - parse(render(x)) holds every field the face shows, with the same values; the one field a
//     face does not show (the gate of a CSV kind) is absent and recomputed by avps. A CSV kind may
//     show a top-level list in a column of the rows its items name ("row_items": QC_BATCH's
//     violations); an item no row names is refused by render, never left off.
//   - a CSV face of an earlier layout ("older_layouts") is refused by parse, saying why.
//   - parse errors name the line and the field.
// Kinds whose face is made by their command (format "html": REPORT; "mp4": CUT) have a schema for
// their JSON only: render and parse refuse them, so they can be neither rendered nor imported.

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "avps/artifacts/names.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/core/result.hpp"

namespace avps::artifacts {

class FaceCodec {
 public:
  /// The codec of `kind` from `<schemas_dir>/<kind lower case>.schema.json`.
  static Result<FaceCodec> load(const std::filesystem::path& schemas_dir, std::string_view kind);
  /// The codec of `kind` from the first of `schema_dirs` that has its schema (project::schema_dirs:
  /// a project's schemas/, then the shipped ones); files it refers to resolve in that folder, then
  /// in the ones after it.
  static Result<FaceCodec> load(const std::vector<std::filesystem::path>& schema_dirs, std::string_view kind);

  /// The face of `content` (canonical JSON of this kind).
  [[nodiscard]] Result<std::string> render(const nlohmann::json& content) const;
  /// The canonical JSON a face describes. `name` supplies what the file name carries (scene,
  /// shot, entity or target id). The result is not yet validated against the schema.
  [[nodiscard]] Result<nlohmann::json> parse(std::string_view face, const ArtifactName& name) const;

  /// The kind's schema, for validating what parse() returns.
  const core::JsonSchema& schema() const;
  const std::string& format() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> m_impl;
};

}  // namespace avps::artifacts
