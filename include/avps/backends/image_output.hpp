#pragma once
// What every image backend shares (OpenAI Images, Gemini image output, async_job image models):
// telling an image from anything else by its first bytes, fitting a storyboard's pixels to the
// sizes or ratios a provider takes, and turning a provider's JPEG or WebP into the PNG a
// STORYBOARD artifact is (docs/formats/artifacts.md).
//
// Threading: pure functions, callable from any thread; to_png() runs ffmpeg in a scratch folder.

#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"

namespace avps::backends {

/// "png", "jpeg" or "webp" by the file's magic bytes (PNG signature, JPEG SOI FF D8 FF, RIFF....WEBP),
/// or "" for anything else (an HTML error page, a video, text).
std::string image_format(std::string_view bytes);

/// "image/png", "image/jpeg", "image/webp" for a format of image_format(); "" otherwise.
std::string image_media_type(std::string_view format);

/// The file extension recorded for a format: "png", "jpg", "webp".
std::string image_extension(std::string_view format);

/// Width and height of "640x272"; {0, 0} when malformed.
std::pair<int, int> pixel_size(const std::string& pixels);

/// The entry of `allowed` ("WxH" sizes or "W:H" ratios) whose aspect ratio is nearest the aspect of
/// `pixels` (distance |log(a) - log(b)|; of equals, the first listed). With no usable `pixels` or
/// entries: the first entry (or "" when `allowed` is empty). This is the sizes rule of
/// docs/providers.md for OpenAI Images and Gemini image output.
std::string nearest_aspect(const std::vector<std::string>& allowed, const std::string& pixels);

/// The image as PNG: PNG bytes as they are; JPEG or WebP converted by ffmpeg (bit-exact flags, so
/// the same input gives the same PNG). configuration error naming the fix when ffmpeg is not
/// installed; invalid_argument when `bytes` is not an image.
[[nodiscard]] Result<std::string> to_png(const std::string& bytes);

}  // namespace avps::backends
