#pragma once
// What the job backends (async_job.cpp, comfyui.cpp) share on the wire: reading replies, the
// Error a status means, URLs on an endpoint, and the one check of a downloaded output (size limit
// by the HttpClient, non-empty, its extension, ffprobe's word). Backends-internal.
//
// Keys: scrub() takes a key out of any text that may reach a message or a trace.
//
// Threading: free functions without state; probe() runs ffprobe in a scratch directory of its own.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "avps/backends/backend.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/core/result.hpp"

namespace avps::backends::job_wire {

/// The value at a JSON pointer, or nullptr when the pointer is empty, malformed or absent.
const nlohmann::json* at_pointer(const nlohmann::json& doc, const std::string& pointer);
/// `text` with every occurrence of `key` (when 4 characters or longer) replaced by "***".
std::string scrub(std::string text, const std::string& key);
/// `text` cut to `max` bytes, "..." added when cut.
std::string capped(std::string text, size_t max = 300);
/// Percent-encodes what would change a URL's path or add a query; '/', ':' and '@' stay (Veo's
/// operation names and fal's model ids are paths).
std::string path_escape(const std::string& value);
/// Percent-encodes a query parameter's value (everything but unreserved characters).
std::string query_escape(const std::string& value);
/// The width and height of "1280x720"; {0, 0} when malformed.
std::pair<int, int> dimensions(const std::string& pixels);
bool is_2xx(int status);
/// The Error a non-2xx reply means: 429 rate_limited, 408/504 timeout, other 5xx
/// backend_unavailable (all retryable, with the Retry-After seconds), any other status rejected.
/// The message is `what`, the status and the body (scrubbed, capped).
Error status_error(int status, const std::string& what, const std::string& body, const std::string& key,
                   const HttpResponse& response);
/// The URL of `path` on `endpoint` (one trailing '/' of the endpoint dropped), or `path` itself
/// when it is an absolute http(s) URL a provider named.
std::string on_endpoint(const std::string& endpoint, const std::string& path);
/// The media extension of a URL's or file name's path ("mp4", "webm", "mov", "mkv", "png", "jpg",
/// "jpeg", "webp", "gif"), else from the content type, else "mp4".
std::string extension_of(const std::string& url, const std::string& content_type);
/// ffprobe's word on a file: {"duration_s", "width", "height", "codec"}; an invalid_argument
/// error when it finds no video stream; nullopt when ffprobe is not installed.
[[nodiscard]] Result<std::optional<nlohmann::json>> probe(const std::string& bytes, const std::string& extension);

/// A download's answer as such: a non-2xx `got` is the status's Error (rejected ones say the job
/// succeeded but its download answered HTTP n, naming `url`'s host); an empty body is rejected.
[[nodiscard]] Result<void> check_download(const HttpResponse& got, const std::string& url, const std::string& who,
                                          const std::string& key);

/// The one check of a downloaded video, into `result`: check_download, then a body ffprobe finds
/// no video stream in is rejected ("... its output is not a
/// video: ..."). On success `result` gets the bytes, the extension (`extension` when given, else
/// from the URL and content type) and details["probe"]. `who` starts every message.
[[nodiscard]] Result<void> accept_output(HttpResponse got, const std::string& url, const std::string& extension,
                                         const std::string& who, const std::string& key, GenerationResult& result);

/// A job backend's timing from its checked options' `poll` block ({interval_s, max_wait_s}).
JobTiming timing_of(const nlohmann::json& poll);

}  // namespace avps::backends::job_wire
