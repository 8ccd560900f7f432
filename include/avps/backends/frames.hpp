#pragma once
// What a vision model is shown of a render or a storyboard frame: an image file as itself; a clip as
// `count` frames sampled with ffmpeg at the middle of `count` equal spans of its frames (fewer
// when the clip has fewer frames), scaled to at most 1024 px wide, as PNG. Without ffmpeg
// (or ffprobe), a clip is an error that says what to install — never a call without its frames.
//
// Threading: callable from any thread (the counts noted below sit behind a mutex).

#include <filesystem>
#include <string>
#include <string_view>
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

/// Notes that the clip with these bytes has `frames` frames (ffprobe's packet count of its first
/// video stream), so that frames_of need not count them again: a render downloaded and probed in
/// this process is shown to a vision model without a second ffprobe, whose start alone costs about
/// 0.1 s. Kept by the sha256 of the bytes, at most a few thousand clips.
void note_frame_count(std::string_view clip_bytes, long frames);

}  // namespace avps::backends
