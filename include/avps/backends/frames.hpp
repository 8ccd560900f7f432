#pragma once
// What a vision model is shown of a render or a storyboard frame: an image file as itself; a clip as
// `count` frames sampled with ffmpeg at the middle of `count` equal spans of its frames (fewer
// when the clip has fewer frames), scaled to at most 1024 px wide, as PNG. Without ffmpeg
// (or ffprobe), a clip is an error that says what to install — never a call without its frames.
//
// Threading: pure apart from the programs it runs; callable from any thread.

#include <filesystem>
#include <string>
#include <vector>

#include "avps/backends/backend.hpp"
#include "avps/core/result.hpp"

namespace avps::backends {

/// Frames of a clip when no count is configured (avps.json /vision/frames_per_clip).
inline constexpr int k_default_frames_per_clip = 4;

/// The images of `file` ("*.png", "*.jpg", "*.jpeg", or a clip "*.mp4", "*.mov", "*.webm",
/// "*.mkv"), each labelled "<label>" or "<label>, frame i of n" (n: the frames returned). unsupported for another
/// extension; io_error when the file cannot be read or ffmpeg fails; configuration error when a
/// clip needs ffmpeg and it is not installed.
[[nodiscard]] Result<std::vector<Image>> frames_of(const std::filesystem::path& file, const std::string& label,
                                                   int count);

}  // namespace avps::backends
