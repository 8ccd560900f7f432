// Image outputs (image_output.hpp): magic bytes, the sizes rule, the PNG conversion.

#include "avps/backends/image_output.hpp"

#include <cmath>

#include "avps/core/fs.hpp"
#include "avps/core/process.hpp"

namespace avps::backends {

std::string image_format(std::string_view bytes) {
  if (bytes.size() >= 8 && bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) {
    return "png";
  }
  if (bytes.size() >= 3 && bytes.substr(0, 3) == std::string_view("\xFF\xD8\xFF", 3)) {
    return "jpeg";
  }
  if (bytes.size() >= 12 && bytes.substr(0, 4) == "RIFF" && bytes.substr(8, 4) == "WEBP") {
    return "webp";
  }
  return "";
}

std::string image_media_type(std::string_view format) {
  if (format == "png" || format == "jpeg" || format == "webp") {
    return "image/" + std::string(format);
  }
  return "";
}

std::string image_extension(std::string_view format) { return format == "jpeg" ? "jpg" : std::string(format); }

std::pair<int, int> pixel_size(const std::string& pixels) {
  size_t x = pixels.find('x');
  if (x == std::string::npos) {
    x = pixels.find(':');
  }
  if (x == std::string::npos || x == 0 || x + 1 >= pixels.size()) {
    return {0, 0};
  }
  int width = 0;
  int height = 0;
  for (size_t i = 0; i < pixels.size(); ++i) {
    if (i == x) {
      continue;
    }
    const char c = pixels[i];
    if (c < '0' || c > '9' || (i < x ? width : height) > 100000) {
      return {0, 0};
    }
    (i < x ? width : height) = (i < x ? width : height) * 10 + (c - '0');
  }
  return {width, height};
}

std::string nearest_aspect(const std::vector<std::string>& allowed, const std::string& pixels) {
  if (allowed.empty()) {
    return "";
  }
  const auto [width, height] = pixel_size(pixels);
  if (width <= 0 || height <= 0) {
    return allowed.front();
  }
  const double want = std::log(static_cast<double>(width) / height);
  std::string best = allowed.front();
  double best_distance = INFINITY;
  for (const std::string& entry : allowed) {
    const auto [w, h] = pixel_size(entry);
    if (w <= 0 || h <= 0) {
      continue;
    }
    const double distance = std::fabs(std::log(static_cast<double>(w) / h) - want);
    if (distance < best_distance - 1e-9) {
      best_distance = distance;
      best = entry;
    }
  }
  return best;
}

Result<std::string> to_png(const std::string& bytes) {
  const std::string format = image_format(bytes);
  if (format.empty()) {
    return make_error(ErrorCode::invalid_argument, "not a PNG, JPEG or WebP image");
  }
  if (format == "png") {
    return bytes;
  }
  if (!core::on_path("ffmpeg")) {
    return make_error(ErrorCode::configuration,
                      "a storyboard frame is a PNG, the model sent " + format +
                          ", and ffmpeg (which converts it) is not installed: apt-get install ffmpeg, or ask the "
                          "model for PNG (docs/providers.md, image models)");
  }
  AVPS_TRY_ASSIGN(core::ScratchDir dir, core::ScratchDir::make("avps-image"));
  const std::filesystem::path in = dir.path() / ("in." + image_extension(format));
  const std::filesystem::path out = dir.path() / "out.png";
  AVPS_TRY(core::write_file_atomic(in, bytes, core::Overwrite::yes, core::Durability::cached));
  AVPS_TRY(
      core::run_program({"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", in.string(), "-frames:v",
                         "1", "-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact", out.string()},
                        "converting a " + format + " storyboard frame to PNG"));
  return core::read_file(out);
}

}  // namespace avps::backends
