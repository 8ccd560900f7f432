// The job backends' shared wire helpers (job_wire.hpp), moved here from async_job.cpp so that
// comfyui.cpp checks its outputs exactly as async_job does.

#include "job_wire.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "avps/backends/frames.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/process.hpp"

namespace avps::backends::job_wire {
using nlohmann::json;

const json* at_pointer(const json& doc, const std::string& pointer) {
  if (pointer.empty()) {
    return nullptr;
  }
  try {
    const json::json_pointer p(pointer);
    if (!doc.contains(p)) {
      return nullptr;
    }
    return &doc.at(p);
  } catch (const json::exception&) {
    return nullptr;
  }
}

std::string scrub(std::string text, const std::string& key) {
  if (key.size() < 4) {
    return text;
  }
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at)) {
    text.replace(at, key.size(), "***");
  }
  return text;
}

std::string capped(std::string text, size_t max) {
  if (text.size() > max) {
    text.resize(max);
    text += "...";
  }
  return text;
}

std::string path_escape(const std::string& value) {
  static const char* const k_hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == ':' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += k_hex[c >> 4];
      out += k_hex[c & 15];
    }
  }
  return out;
}

std::pair<int, int> dimensions(const std::string& pixels) {
  const size_t x = pixels.find('x');
  if (x == std::string::npos) {
    return {0, 0};
  }
  try {
    return {std::stoi(pixels.substr(0, x)), std::stoi(pixels.substr(x + 1))};
  } catch (const std::exception&) {
    return {0, 0};
  }
}

bool is_2xx(int status) { return status >= 200 && status < 300; }

Error status_error(int status, const std::string& what, const std::string& body, const std::string& key,
                   const HttpResponse& response) {
  const std::string said = capped(scrub(body, key));
  const std::string message = what + ": HTTP " + std::to_string(status) + (said.empty() ? "" : ": " + said);
  Error error = make_error(ErrorCode::rejected, message);
  if (status == 429) {
    error = make_error(ErrorCode::rate_limited, message);
  } else if (status == 408 || status == 504) {
    error = make_error(ErrorCode::timeout, message);
  } else if (status >= 500) {
    error = make_error(ErrorCode::backend_unavailable, message);
  }
  const std::string retry_after = response.header("retry-after");
  if (!retry_after.empty() && std::all_of(retry_after.begin(), retry_after.end(), ::isdigit)) {
    error.retry_after_ms = std::stoll(retry_after) * 1000;
  }
  return error;
}

std::string on_endpoint(const std::string& endpoint, const std::string& path) {
  if (path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0) {
    return path;
  }
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  return base + (path.empty() || path.front() == '/' ? "" : "/") + path;
}

std::string extension_of(const std::string& url, const std::string& content_type) {
  std::string path = url.substr(0, url.find('?'));
  for (const char* ext : {"mp4", "webm", "mov", "mkv", "png", "jpg", "jpeg", "webp", "gif"}) {
    const std::string dotted = std::string(".") + ext;
    if (path.size() > dotted.size() && path.compare(path.size() - dotted.size(), dotted.size(), dotted) == 0) {
      return ext;
    }
  }
  if (content_type.find("webm") != std::string::npos) {
    return "webm";
  }
  if (content_type.find("quicktime") != std::string::npos) {
    return "mov";
  }
  if (content_type.find("image/png") != std::string::npos) {
    return "png";
  }
  return "mp4";
}

Result<std::optional<json>> probe(const std::string& bytes, const std::string& extension) {
  if (!core::on_path("ffprobe")) {
    return std::optional<json>();
  }
  AVPS_TRY_ASSIGN(core::ScratchDir dir, core::ScratchDir::make("avps-probe"));
  const std::filesystem::path file = dir.path() / ("output." + extension);
  AVPS_TRY(core::write_file_atomic(file, bytes, core::Overwrite::yes, core::Durability::cached));
  Result<std::string> out =
      core::run_program({"ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                         "stream=codec_name,width,height,nb_read_packets:format=duration", "-of", "json",
                         file.string()},
                        "ffprobe", true);
  if (!out) {
    return make_error(ErrorCode::invalid_argument, "ffprobe cannot read it as a media file");
  }
  json parsed = json::parse(*out, nullptr, false);
  const json* stream = at_pointer(parsed, "/streams/0");
  if (!stream || !stream->is_object() || !stream->contains("width")) {
    return make_error(ErrorCode::invalid_argument, "ffprobe finds no video stream in it");
  }
  json result = {{"codec", stream->value("codec_name", "")},
                 {"width", stream->value("width", 0)},
                 {"height", stream->value("height", 0)}};
  if (const json* duration = at_pointer(parsed, "/format/duration"); duration && duration->is_string()) {
    result["duration_s"] = std::atof(duration->get<std::string>().c_str());
  }
  // Counted here, where the download is probed anyway, for the vision model that grades the render.
  if (const json* packets = at_pointer(*stream, "/nb_read_packets"); packets && packets->is_string()) {
    note_frame_count(bytes, std::atol(packets->get<std::string>().c_str()));
  }
  return std::optional<json>(std::move(result));
}

std::string query_escape(const std::string& value) {
  static const char* const k_hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += k_hex[c >> 4];
      out += k_hex[c & 15];
    }
  }
  return out;
}

Result<void> check_download(const HttpResponse& got, const std::string& url, const std::string& who,
                            const std::string& key) {
  if (!is_2xx(got.status)) {
    Error error = status_error(got.status, who + " output download", "", key, got);
    if (error.code == ErrorCode::rejected) {
      error.message = who + " succeeded, but its output download answered HTTP " + std::to_string(got.status) +
                      " (host " + url_host(url) + ")";
    }
    return error;
  }
  if (got.body.empty()) {
    return make_error(ErrorCode::rejected, who + " succeeded, but its output is empty");
  }
  return ok();
}

Result<void> accept_output(HttpResponse got, const std::string& url, const std::string& extension,
                           const std::string& who, const std::string& key, GenerationResult& result) {
  AVPS_TRY(check_download(got, url, who, key));
  result.extension = extension.empty() ? extension_of(url, got.header("content-type")) : extension;
  Result<std::optional<json>> probed = probe(got.body, result.extension);
  if (!probed) {
    return make_error(ErrorCode::rejected,
                      who + " succeeded, but its output is not a video: " + probed.error().message);
  }
  if (*probed) {
    result.details["probe"] = **probed;
  } else {
    result.details["probe"] = "not probed: ffprobe is not installed";
  }
  result.media_bytes = std::move(got.body);
  return ok();
}

JobTiming timing_of(const json& poll) {
  JobTiming timing;
  timing.poll_interval_ms = static_cast<int64_t>(std::llround(poll["interval_s"].get<double>() * 1000));
  timing.max_wait_ms = static_cast<int64_t>(std::llround(poll["max_wait_s"].get<double>() * 1000));
  return timing;
}

}  // namespace avps::backends::job_wire
