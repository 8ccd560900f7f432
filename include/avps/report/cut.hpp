#pragma once
// `avps cut`: the film so far as one video. Every shot of the latest SCENES and SHOTLISTs, in story
// order, holds its planned duration: its passed final render (trimmed, or held on its last frame
// when the clip is shorter), else its storyboard frame, else a black slate; each normalised to the
// style lock's frame rate and to its aspect ratio at 1280 pixels wide (letterboxed). Picture only:
// renders' sound is not carried yet. Segments are encoded apart (many at once), then joined
// without re-encoding.
//
// Threading: assemble_cut runs its own threads, joined before it returns.

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/report/read_model.hpp"

namespace avps::project {
class Project;
}

namespace avps::report {

struct CutShot {
  std::string scene_id;
  std::string shot_id;
  std::string source;  ///< "render" (its passed final), "storyboard" or "slate"
  std::string file;    ///< project-relative; "" for a slate
  double planned_s = 0;
};

struct CutPlan {
  int width = 1280;
  int height = 720;
  int fps = 24;
  std::vector<CutShot> shots;
  double duration_s = 0;  ///< the sum of the shots' planned durations, in whole frames
  int64_t as_of_seq = 0;

  /// The CUT artifact's JSON (schemas/cut.schema.json).
  nlohmann::json to_json() const;
};

/// The cut of `view`: its shots in story order, the style lock's frame rate and aspect ratio.
[[nodiscard]] Result<CutPlan> plan_cut(project::Project& project, const ProjectView& view);

/// Encodes `plan` into the MP4 file `out` with ffmpeg (`jobs` segments at once); `progress` is
/// told each finished segment. A configuration error saying what to install without ffmpeg.
[[nodiscard]] Result<void> assemble_cut(const std::filesystem::path& project_dir, const CutPlan& plan,
                                        const std::filesystem::path& out, int jobs,
                                        const std::function<void(size_t done, size_t total)>& progress);

/// Records the assembled file as the next CUT version (cut/CUT_v###.mp4), in a run of its own
/// (command "cut") with its RUN_LOG row. The project must be open read-write.
[[nodiscard]] Result<ledger::ArtifactRecord> record_cut(project::Project& project, const CutPlan& plan,
                                                        const std::filesystem::path& assembled);

}  // namespace avps::report
