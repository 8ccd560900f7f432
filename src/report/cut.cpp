#include "avps/report/cut.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <optional>

#include "avps/core/fs.hpp"
#include "avps/core/process.hpp"
#include "avps/project/project.hpp"
#include "avps/report/report.hpp"

namespace avps::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The cut's width; its height follows the style's aspect ratio.
constexpr int k_width = 1280;

std::string seconds_text(double seconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", seconds);
  return buffer;
}

// The frames of `seconds` at `fps`, at least one.
int64_t frames_of(double seconds, int fps) { return std::max<int64_t>(1, std::llround(seconds * fps)); }

// The ffmpeg arguments that encode one shot's segment into `out`: exactly its planned frames.
std::vector<std::string> segment_args(const fs::path& project_dir, const CutPlan& plan, const CutShot& shot,
                                      const fs::path& out) {
  const std::string size = std::to_string(plan.width) + "x" + std::to_string(plan.height);
  const int64_t frames = frames_of(shot.planned_s, plan.fps);
  const std::string seconds = seconds_text(static_cast<double>(frames) / plan.fps);
  std::vector<std::string> args = {"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"};
  if (shot.source == "slate") {
    args.insert(args.end(), {"-f", "lavfi", "-i", "color=c=black:s=" + size + ":r=" + std::to_string(plan.fps)});
  } else if (shot.source == "storyboard") {
    args.insert(args.end(), {"-loop", "1", "-i", (project_dir / shot.file).string()});
  } else {
    args.insert(args.end(), {"-i", (project_dir / shot.file).string()});
  }
  // Fit inside the frame (letterboxed), the style's rate, then hold the last frame long enough and
  // cut at the planned length: a short clip is held, a long one trimmed.
  const std::string w = std::to_string(plan.width), h = std::to_string(plan.height);
  const std::string filter = "scale=" + w + ":" + h + ":force_original_aspect_ratio=decrease,pad=" + w + ":" + h +
                             ":(ow-iw)/2:(oh-ih)/2,setsar=1,fps=" + std::to_string(plan.fps) +
                             ",tpad=stop_mode=clone:stop_duration=" + seconds;
  args.insert(args.end(), {"-vf", filter, "-frames:v", std::to_string(frames), "-an", "-c:v", "libx264", "-preset",
                           "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-r", std::to_string(plan.fps),
                           "-video_track_timescale", std::to_string(plan.fps * 1000), out.string()});
  return args;
}

}  // namespace

json CutPlan::to_json() const {
  json shots_json = json::array();
  json missing = json::array();
  for (const CutShot& shot : shots) {
    shots_json.push_back({{"scene_id", shot.scene_id},
                          {"shot_id", shot.shot_id},
                          {"source", shot.source},
                          {"file", shot.file.empty() ? json(nullptr) : json(shot.file)},
                          {"planned_s", shot.planned_s}});
    if (shot.source != "render") {
      missing.push_back(shot.shot_id);
    }
  }
  return {{"format_version", 1},      {"kind", "CUT"},       {"as_of_seq", as_of_seq},
          {"width", width},           {"height", height},    {"fps", fps},
          {"duration_s", duration_s}, {"shots", shots_json}, {"without_final", missing}};
}

Result<CutPlan> plan_cut(project::Project& project, const ProjectView& view) {
  CutPlan plan;
  plan.as_of_seq = view.as_of_seq;
  AVPS_TRY_ASSIGN(auto style, project.store().latest("STYLE_LOCK", "PROJECT"));
  double aspect = 16.0 / 9.0;
  if (style) {
    AVPS_TRY_ASSIGN(json lock, project.store().load(*style));
    plan.fps = lock.value("frame_rate", plan.fps);
    const std::string ratio = lock.value("aspect_ratio", "");
    double a = 0, b = 0;
    if (std::sscanf(ratio.c_str(), "%lf:%lf", &a, &b) == 2 && a > 0 && b > 0) {
      aspect = a / b;
    }
  }
  plan.width = k_width;
  plan.height = std::max(2, static_cast<int>(std::lround(k_width / aspect / 2)) * 2);  // even, for yuv420p
  int64_t frames = 0;
  for (const SceneView& scene : view.scenes) {
    if (!scene.in_latest_scenes) {
      continue;
    }
    for (const ShotView& shot : scene.shots) {
      CutShot cut{scene.scene_id, shot.shot_id, "slate", "", shot.planned_s};
      if (shot.passed_final && !shot.passed_final_render.empty()) {
        cut.source = "render";
        cut.file = shot.passed_final_render;
      } else if (!shot.storyboard.empty()) {
        cut.source = "storyboard";
        cut.file = shot.storyboard;
      }
      frames += frames_of(shot.planned_s, plan.fps);
      plan.shots.push_back(std::move(cut));
    }
  }
  plan.duration_s = static_cast<double>(frames) / plan.fps;
  return plan;
}

Result<void> assemble_cut(const fs::path& project_dir, const CutPlan& plan, const fs::path& out, int jobs,
                          const std::function<void(size_t done, size_t total)>& progress) {
  if (!core::on_path("ffmpeg")) {
    return make_error(ErrorCode::configuration,
                      "avps cut assembles the film with ffmpeg, which is not installed: apt-get install ffmpeg");
  }
  if (plan.shots.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "there is no shot to cut yet: no scene has a SHOTLIST (`avps run` plans them)");
  }
  AVPS_TRY_ASSIGN(core::ScratchDir scratch, core::ScratchDir::make("avps-cut"));
  std::vector<fs::path> segments;
  for (size_t i = 0; i < plan.shots.size(); ++i) {
    segments.push_back(scratch.path() / ("segment" + std::to_string(i) + ".mp4"));
  }
  size_t done = 0;
  std::mutex mutex;  // guards done and failed, and makes progress calls one at a time
  std::optional<Error> failed;
  core::run_parallel(plan.shots.size(), jobs, [&](size_t i) {
    if (std::lock_guard<std::mutex> lock(mutex); failed) {
      return;  // the cut has failed: no segment more is encoded
    }
    Result<std::string> ran = core::run_program(segment_args(project_dir, plan, plan.shots[i], segments[i]),
                                                "ffmpeg (cut: " + plan.shots[i].shot_id + ")");
    std::lock_guard<std::mutex> lock(mutex);
    if (!ran) {
      failed = failed.value_or(ran.error());
      return;
    }
    progress(++done, plan.shots.size());
  });
  if (failed) {
    return *failed;
  }
  // The segments share size, rate, codec and timescale: the concat demuxer joins them as they are.
  std::string list;
  for (const fs::path& segment : segments) {
    list += "file '" + segment.string() + "'\n";
  }
  AVPS_TRY(
      core::write_file_atomic(scratch.path() / "segments.txt", list, core::Overwrite::no, core::Durability::cached));
  const fs::path joined = scratch.path() / "cut.mp4";
  AVPS_TRY(core::run_program(
      {"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i",
       (scratch.path() / "segments.txt").string(), "-c", "copy", "-movflags", "+faststart", joined.string()},
      "ffmpeg (cut: joining the segments)"));
  AVPS_TRY_ASSIGN(std::string bytes, core::read_file(joined));
  return core::write_file_atomic(out, bytes, core::Overwrite::yes, core::Durability::durable);
}

Result<ledger::ArtifactRecord> record_cut(project::Project& project, const CutPlan& plan, const fs::path& assembled) {
  const json content = plan.to_json();
  AVPS_TRY_ASSIGN(std::string bytes, core::read_file(assembled));
  return record_made(project, "CUT", content, bytes, "cut",
                     std::to_string(plan.shots.size()) + " shots, " + seconds_text(plan.duration_s) + " s, " +
                         std::to_string(content["without_final"].size()) + " without a passed final");
}

}  // namespace avps::report
