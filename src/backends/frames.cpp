#include "avps/backends/frames.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/process.hpp"

namespace avps::backends {
namespace fs = std::filesystem;

namespace {

std::string lower_extension(const fs::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// Frame counts noted by note_frame_count, by the sha256 of the clip's bytes.
struct NotedCounts {
  static constexpr size_t k_most = 4096;  // a bound, not a working set: a run shows each render once or twice
  std::mutex mutex;
  std::unordered_map<std::string, long> by_sha256;
};

NotedCounts& noted_counts() {
  static NotedCounts counts;
  return counts;
}

// ffprobe's count of the frames of a clip's first video stream (its packets: no decoding), unless
// the same bytes were counted already. The clip is read and hashed only when some count was noted:
// a replay, or a render made by the sim or ComfyUI, notes none.
Result<long> frame_count_of(const fs::path& clip) {
  NotedCounts& noted = noted_counts();
  bool any_noted = false;
  {
    std::lock_guard<std::mutex> lock(noted.mutex);
    any_noted = !noted.by_sha256.empty();
  }
  if (any_noted) {
    AVPS_TRY_ASSIGN(std::string bytes, core::read_file(clip));
    const std::string sha256 = core::sha256_hex(bytes);
    std::lock_guard<std::mutex> lock(noted.mutex);
    if (auto found = noted.by_sha256.find(sha256); found != noted.by_sha256.end()) {
      return found->second;
    }
  }
  AVPS_TRY_ASSIGN(std::string out,
                  core::run_program({"ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                                     "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", clip.string()},
                                    "counting the frames of " + clip.filename().string(), true));
  char* end = nullptr;
  const long frames = std::strtol(out.c_str(), &end, 10);
  if (end == out.c_str() || frames <= 0) {
    return make_error(ErrorCode::io_error, "ffprobe found no video frame in " + clip.filename().string());
  }
  return frames;
}

}  // namespace

void note_frame_count(std::string_view clip_bytes, long frames) {
  if (frames <= 0) {
    return;
  }
  std::string sha256 = core::sha256_hex(clip_bytes);
  NotedCounts& noted = noted_counts();
  std::lock_guard<std::mutex> lock(noted.mutex);
  if (noted.by_sha256.size() >= NotedCounts::k_most) {
    noted.by_sha256.clear();
  }
  noted.by_sha256[std::move(sha256)] = frames;
}

Result<std::vector<Image>> frames_of(const fs::path& file, const std::string& label, int count) {
  const std::string ext = lower_extension(file);
  if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") {
    AVPS_TRY_ASSIGN(std::string bytes, core::read_file(file));
    return std::vector<Image>{Image{ext == ".png" ? "image/png" : "image/jpeg", std::move(bytes), label}};
  }
  if (ext != ".mp4" && ext != ".mov" && ext != ".webm" && ext != ".mkv") {
    return make_error(ErrorCode::unsupported,
                      "cannot show " + file.filename().string() + " to a vision model: not an image or a clip");
  }
  if (!core::on_path("ffmpeg") || !core::on_path("ffprobe")) {
    return make_error(ErrorCode::configuration,
                      "a vision model grades the clip " + file.filename().string() +
                          " from frames sampled with ffmpeg, which is not installed: apt-get install ffmpeg "
                          "(or route the skill to the sim)");
  }
  count = std::clamp(count, 1, 32);
  AVPS_TRY_ASSIGN(long total, frame_count_of(file));
  AVPS_TRY_ASSIGN(core::ScratchDir dir, core::ScratchDir::make("avps-frames"));
  // The frame at the middle of each of `count` equal spans (every frame when the clip has fewer),
  // picked by index in one ffmpeg: a time-based fps filter drops the last span of a short clip.
  std::string pick;
  long previous = -1;
  for (int i = 0; i < count; ++i) {
    const long index = std::min(total - 1, static_cast<long>((2 * i + 1) * total / (2L * count)));
    if (index != previous) {
      pick += (pick.empty() ? "" : "+") + std::string("eq(n\\,") + std::to_string(index) + ")";
      previous = index;
    }
  }
  AVPS_TRY(core::run_program({"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", file.string(), "-vf",
                              "select=" + pick + ",scale='min(1024,iw)':-2", "-fps_mode", "passthrough",
                              "-frames:v", std::to_string(count), "-threads", "1", "-fflags", "+bitexact", "-flags:v",
                              "+bitexact", (dir.path() / "frame%02d.png").string()},
                             "sampling frames of " + file.filename().string()));
  std::vector<Image> images;
  for (int i = 1; i <= count; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "frame%02d.png", i);
    const fs::path frame = dir.path() / name;
    if (!fs::exists(frame)) {
      break;  // a clip with fewer frames than asked for: the frames it has
    }
    AVPS_TRY_ASSIGN(std::string bytes, core::read_file(frame));
    images.push_back(Image{"image/png", std::move(bytes), ""});
  }
  if (images.empty()) {
    return make_error(ErrorCode::io_error, "ffmpeg sampled no frame of " + file.filename().string());
  }
  for (size_t i = 0; i < images.size(); ++i) {
    images[i].label = label + ", frame " + std::to_string(i + 1) + " of " + std::to_string(images.size());
  }
  return images;
}

}  // namespace avps::backends
