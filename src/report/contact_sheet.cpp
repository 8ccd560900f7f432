// The contact sheet's frames (html.hpp gather_frames). ffmpeg's start-up costs more than taking one
// frame of a short clip, so one process takes frames of many clips: one input and one output per
// clip, each output mapped to its own input.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/process.hpp"
#include "avps/report/html.hpp"

namespace avps::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Clips per ffmpeg process: enough to pay its start-up once for many, few enough that one bad
// file (which fails the whole process, then each of its clips is tried alone) costs little.
constexpr size_t k_batch = 24;
// A storyboard shown as it is, without ffmpeg to scale it, at most this big.
constexpr uintmax_t k_max_raw_image = 512 * 1024;

struct Wanted {
  std::string shot_id;
  fs::path source;     ///< absolute
  std::string label;   ///< project-relative, as the page names it
  std::string sha256;  ///< the file's recorded content hash: its frame's name in the cache
  double at_s = 0;     ///< where to take the frame (0 for an image)
  fs::path out;
};

// Where a frame of `w` is kept across reports: named by the file's content and the moment taken,
// so a frame found there is the frame of exactly those bytes. "" without a cache or a hash.
fs::path cached_frame(const fs::path& cache_dir, const Wanted& w) {
  if (cache_dir.empty() || w.sha256.size() != 64) {
    return {};
  }
  return cache_dir / "frames" / (w.sha256 + "_" + std::to_string(std::lround(w.at_s * 1000)) + "ms_w320.jpg");
}

bool is_video(const fs::path& path) {
  const std::string ext = path.extension().string();
  return ext == ".mp4" || ext == ".mov" || ext == ".webm" || ext == ".mkv";
}

// One ffmpeg for all of `batch`; true when it ran (each output may still be missing).
bool extract(const std::vector<Wanted*>& batch) {
  std::vector<std::string> args = {"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"};
  for (const Wanted* w : batch) {
    if (w->at_s > 0) {
      char at[32];
      std::snprintf(at, sizeof at, "%.3f", w->at_s);
      args.insert(args.end(), {"-ss", at});
    }
    args.insert(args.end(), {"-i", w->source.string()});
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    args.insert(args.end(), {"-map", std::to_string(i) + ":v:0", "-frames:v", "1", "-vf", "scale=320:-2", "-q:v", "6",
                             batch[i]->out.string()});
  }
  return static_cast<bool>(core::run_program(args, "ffmpeg (contact sheet frames)"));
}

std::string data_uri(const std::string& media_type, const std::string& bytes) {
  return "data:" + media_type + ";base64," + core::base64(bytes);
}

}  // namespace

fs::path frame_cache_dir() {
  if (const char* dir = std::getenv("AVPS_CACHE_DIR"); dir && *dir) {
    return dir;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return fs::path(xdg) / "avps";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return fs::path(home) / ".cache" / "avps";
  }
  return {};
}

void gather_frames(const fs::path& project_dir, const json& model, int jobs, PageAssets& assets,
                   const fs::path& cache_dir) {
  const bool ffmpeg = core::on_path("ffmpeg");
  Result<core::ScratchDir> scratch = core::ScratchDir::make("avps-frames");
  std::vector<Wanted> wanted;
  std::vector<Wanted> storyboards;  // the fallback of each shot that has one
  auto text = [](const json& shot, const char* field) {
    const json value = shot.value(field, json(nullptr));
    return value.is_string() ? value.get<std::string>() : std::string();
  };
  for (const json& scene : model.value("scenes", json::array())) {
    for (const json& shot : scene.value("shots", json::array())) {
      const std::string id = text(shot, "shot_id");
      const std::string render = text(shot, "latest_render");
      const std::string storyboard = text(shot, "storyboard");
      if (!storyboard.empty()) {
        storyboards.push_back(Wanted{id, project_dir / storyboard, storyboard, text(shot, "storyboard_sha256"), 0, {}});
      }
      if (!render.empty() && ffmpeg && is_video(render)) {
        // A second in, or the middle of a shorter shot: past the fade-in, and inside the clip even
        // when it is shorter than planned (the sim's are; a provider's may be). A clip shorter
        // still is tried again at its start.
        const double planned = shot.value("planned_s", 0.0);
        wanted.push_back(Wanted{
            id, project_dir / render, render, text(shot, "latest_render_sha256"), std::min(planned / 2, 1.0), {}});
      }
    }
  }
  if (!ffmpeg || !scratch) {
    // Storyboards as they are: PNG needs no decoder.
    for (const Wanted& w : storyboards) {
      std::error_code ec;
      const uintmax_t size = fs::file_size(w.source, ec);
      if (ec || size > k_max_raw_image) {
        continue;
      }
      if (Result<std::string> bytes = core::read_file(w.source)) {
        assets.frames[w.shot_id] = data_uri("image/png", *bytes);
        assets.frame_sources[w.shot_id] = w.label;
      }
    }
    return;
  }

  auto show = [&](const Wanted& w, const std::string& jpeg) {
    assets.frames[w.shot_id] = data_uri("image/jpeg", jpeg);
    char at[48] = "";
    if (w.at_s > 0) {
      std::snprintf(at, sizeof at, " at %.1f s", w.at_s);
    }
    assets.frame_sources[w.shot_id] = w.label + at;
  };
  auto run_all = [&](std::vector<Wanted>& list, const std::string& tag) {
    std::vector<Wanted*> todo;
    for (size_t i = 0; i < list.size(); ++i) {
      list[i].out = scratch->path() / (tag + std::to_string(i) + ".jpg");
      const fs::path kept = cached_frame(cache_dir, list[i]);
      Result<std::string> bytes = kept.empty() ? Result<std::string>(std::string()) : core::read_file(kept);
      if (bytes && !bytes->empty()) {
        show(list[i], *bytes);
      } else {
        todo.push_back(&list[i]);
      }
    }
    std::vector<std::vector<Wanted*>> batches;
    for (size_t i = 0; i < todo.size(); i += k_batch) {
      batches.emplace_back(todo.begin() + static_cast<std::ptrdiff_t>(i),
                           todo.begin() + static_cast<std::ptrdiff_t>(std::min(todo.size(), i + k_batch)));
    }
    core::run_parallel(batches.size(), jobs, [&](size_t b) {
      if (!extract(batches[b]) && batches[b].size() > 1) {
        for (Wanted* w : batches[b]) {
          (void)extract({w});  // the file that failed the batch fails alone; the others go on
        }
      }
    });
    for (const Wanted* w : todo) {
      Result<std::string> bytes = core::read_file(w->out);
      if (!bytes || bytes->empty()) {
        continue;
      }
      show(*w, *bytes);
      // Kept for the next report; a cache that cannot be written only costs the next one time.
      if (const fs::path kept = cached_frame(cache_dir, *w); !kept.empty()) {
        std::error_code ignored;
        fs::create_directories(kept.parent_path(), ignored);
        (void)core::write_file_atomic(kept, *bytes, core::Overwrite::yes, core::Durability::cached);
      }
    }
  };
  run_all(wanted, "render");
  std::vector<Wanted> from_start;
  for (const Wanted& w : wanted) {
    if (!assets.frames.count(w.shot_id) && w.at_s > 0) {
      from_start.push_back(w);
      from_start.back().at_s = 0;
    }
  }
  run_all(from_start, "start");
  // Shots with no frame of a render: their storyboard.
  std::vector<Wanted> missing;
  for (const Wanted& w : storyboards) {
    if (!assets.frames.count(w.shot_id)) {
      missing.push_back(w);
    }
  }
  run_all(missing, "storyboard");
}

}  // namespace avps::report
