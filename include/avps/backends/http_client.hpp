#pragma once
// The one HTTP client (libcurl; src/backends/http_client.cpp is the only file that includes
// curl.h). Adapters build an HttpRequest, the client sends it and hands back status, headers and
// body; it knows nothing of providers, retries or keys.
//
// Guarantees of CurlHttpClient:
//   - TLS peer and host verification are always on; the proxy variables (http_proxy,
//     https_proxy, no_proxy, ...) are honoured as curl honours them.
//   - A connect timeout and a total timeout per request; a response body larger than
//     max_response_bytes is refused (the transfer is cut, never buffered whole).
//   - Transport failures are Results: connection refused / reset / DNS / TLS ->
//     backend_unavailable, a timeout -> timeout, an oversized body -> backend_unavailable with
//     "larger than". The message names the method and the host, never a header value (keys travel
//     in headers) and never a query string.
//   - Redirects are not followed (a provider API never redirects a POST; a redirect is an error
//     the user must see).
//   - Thread-safe: send() may be called from many threads at once (one curl easy handle per call;
//     curl_global_init happens once, before the first handle). Many calls are in flight at once
//     when the engine runs --jobs threads.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "avps/core/result.hpp"

namespace avps::backends {

struct HttpRequest {
  std::string method = "POST";  ///< POST or GET
  std::string url;              ///< absolute http:// or https:// URL
  std::vector<std::pair<std::string, std::string>> headers;  ///< name, value (may hold a key: never logged)
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lower-cased, in arrival order
  std::string body;
  int64_t latency_ms = 0;  ///< from send to the last byte

  /// The first header of that name (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

struct HttpOptions {
  int64_t connect_timeout_ms = 10'000;
  int64_t total_timeout_ms = 300'000;
  int64_t max_response_bytes = 64LL * 1024 * 1024;
};

/// The transport seam: the real client, or a test's fake.
class HttpClient {
 public:
  virtual ~HttpClient() = default;
  /// Sends the request and returns whatever status came back (4xx and 5xx are responses, not
  /// errors); an error only when no complete response arrived.
  [[nodiscard]] virtual Result<HttpResponse> send(const HttpRequest& request, const HttpOptions& options) = 0;
};

class CurlHttpClient : public HttpClient {
 public:
  CurlHttpClient();
  [[nodiscard]] Result<HttpResponse> send(const HttpRequest& request, const HttpOptions& options) override;
};

/// "host[:port]" of an absolute URL (what logs and errors may show of an endpoint), or "" when
/// `url` is not an absolute http(s) URL.
std::string url_host(std::string_view url);

/// Whether `url` is an absolute http:// or https:// URL with a host and no query, fragment or
/// user info: what a models file's endpoint must be. On false, `why` says what is wrong.
bool valid_endpoint(std::string_view url, std::string& why);

}  // namespace avps::backends
