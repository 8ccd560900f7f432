#include "avps/backends/http_client.hpp"

// The only file of avps that includes curl.h (STYLE §5 #7): everything else speaks HttpClient.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

namespace avps::backends {

namespace {

// ---- RAII for the two curl resources a call holds ---------------------------------------------

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

// curl_global_init is not thread-safe and must run before the first easy handle; the engine's
// --jobs threads may all make their first call at once. It is never undone: curl_global_cleanup
// at exit would race threads still winding down, and the process ends anyway.
CURLcode global_init() {
  static std::once_flag s_once;
  static CURLcode s_result = CURLE_OK;
  std::call_once(s_once, [] { s_result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return s_result;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

// What the callbacks of one transfer write into.
struct Transfer {
  int64_t max_bytes = 0;
  bool too_large = false;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  if (static_cast<int64_t>(transfer->body.size() + bytes) > transfer->max_bytes) {
    // Returning less than we were given makes curl abort with CURLE_WRITE_ERROR: the body is cut
    // here, never buffered whole.
    transfer->too_large = true;
    return 0;
  }
  transfer->body.append(data, bytes);
  return bytes;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  std::string_view line(data, bytes);
  // Each response (a proxy's CONNECT reply, a 100 Continue, then the real one) starts with its
  // status line: only the last response's headers are the answer's.
  if (line.substr(0, 5) == "HTTP/") {
    transfer->headers.clear();
    return bytes;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return bytes;  // the blank line that ends the block, or a folded continuation
  }
  transfer->headers.emplace_back(lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  return bytes;
}

// The error text for a failed transfer: the method and the host, never the URL's path or query,
// never a header (keys travel in headers), never curl's error buffer (it may quote the URL).
Error transfer_error(CURLcode code, const HttpRequest& request, const HttpOptions& options,
                     const Transfer& transfer) {
  const std::string where = request.method + " " + url_host(request.url);
  const std::string detail = std::string(" (curl: ") + curl_easy_strerror(code) + ")";
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    return make_error(ErrorCode::backend_unavailable, where + ": the response is larger than " +
                                                          std::to_string(options.max_response_bytes) + " bytes");
  }
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return make_error(ErrorCode::timeout, where + ": no complete response within the timeout (connect " +
                                                std::to_string(options.connect_timeout_ms) + " ms, total " +
                                                std::to_string(options.total_timeout_ms) + " ms)");
    case CURLE_COULDNT_CONNECT:
      return make_error(ErrorCode::backend_unavailable, where + ": connection refused or unreachable" + detail);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return make_error(ErrorCode::backend_unavailable, where + ": could not resolve the host" + detail);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return make_error(ErrorCode::backend_unavailable, where + ": TLS failed" + detail);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      // A configuration mistake, not a transient failure: retrying cannot help.
      return make_error(ErrorCode::invalid_argument, where + ": not a usable http(s) URL" + detail);
    default:
      return make_error(ErrorCode::backend_unavailable, where + ": transfer failed" + detail);
  }
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  const std::string wanted = lower(name);
  for (const auto& [key, value] : headers) {
    if (lower(key) == wanted) {
      return value;
    }
  }
  return "";
}

CurlHttpClient::CurlHttpClient() {
  // Initialise early so the first send() of each thread does not contend; a failure here shows
  // again (as an error) on send().
  std::ignore = global_init();
}

Result<HttpResponse> CurlHttpClient::send(const HttpRequest& request, const HttpOptions& options) {
  const std::string where = request.method + " " + url_host(request.url);
  if (global_init() != CURLE_OK) {
    return make_error(ErrorCode::backend_unavailable, where + ": libcurl could not be initialised");
  }
  EasyHandle easy(curl_easy_init());
  if (!easy) {
    return make_error(ErrorCode::backend_unavailable, where + ": libcurl could not make a handle");
  }
  CURL* h = easy.get();

  // curl_slist_append copies each string; a failed append (out of memory) returns null and leaves
  // the list as it was, which the error below reports.
  HeaderList headers;
  auto add_header = [&](const std::string& line) -> bool {
    curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
    if (grown == nullptr) {
      return false;
    }
    std::ignore = headers.release();  // now owned through `grown`
    headers.reset(grown);
    return true;
  };
  bool headers_ok = true;
  for (const auto& [name, value] : request.headers) {
    headers_ok = headers_ok && add_header(name + ": " + value);
  }
  // No "Expect: 100-continue" round trip before large bodies (images): provider APIs answer the
  // POST directly, and some servers never send the 100, which would cost a second per call.
  headers_ok = headers_ok && add_header("Expect:");
  if (!headers_ok) {
    return make_error(ErrorCode::backend_unavailable, where + ": out of memory building the headers");
  }

  Transfer transfer;
  transfer.max_bytes = options.max_response_bytes;

  // Every setopt below takes a valid value for this libcurl (>= 7.88, Dependencies.cmake), so
  // their CURLcode results carry nothing to act on; a rejected option would show in perform().
  std::ignore = curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  std::ignore = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  // No signals: the resolver's alarm() would hit whichever thread the kernel picks.
  std::ignore = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  std::ignore = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout_ms));
  std::ignore = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options.total_timeout_ms));
  std::ignore = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  std::ignore = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  std::ignore = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  // A declared Content-Length over the cap is refused before any byte is read.
  std::ignore = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_response_bytes));
  std::ignore = curl_easy_setopt(h, CURLOPT_USERAGENT, "avps/" AVPS_VERSION_STRING);
  std::ignore = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  std::ignore = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  std::ignore = curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  std::ignore = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  std::ignore = curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
  if (request.method == "GET") {
    std::ignore = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    if (request.method != "POST") {
      std::ignore = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    if (request.method == "POST" || !request.body.empty()) {
      std::ignore = curl_easy_setopt(h, CURLOPT_POST, 1L);
      std::ignore = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      std::ignore = curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    }
  }

  const auto start = std::chrono::steady_clock::now();
  const CURLcode code = curl_easy_perform(h);
  const auto end = std::chrono::steady_clock::now();
  if (code != CURLE_OK) {
    return transfer_error(code, request, options, transfer);
  }

  HttpResponse response;
  long status = 0;
  std::ignore = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  response.headers = std::move(transfer.headers);
  response.body = std::move(transfer.body);
  response.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(end - start).count();
  return response;
}

// ---- URLs -------------------------------------------------------------------------------------

namespace {

// The scheme's length ("http://" or "https://", any case), or 0.
size_t scheme_length(std::string_view url) {
  const std::string head = lower(url.substr(0, 8));
  if (head.rfind("https://", 0) == 0) {
    return 8;
  }
  if (head.rfind("http://", 0) == 0) {
    return 7;
  }
  return 0;
}

}  // namespace

std::string url_host(std::string_view url) {
  const size_t scheme = scheme_length(url);
  if (scheme == 0) {
    return "";
  }
  std::string_view authority = url.substr(scheme);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  // User info ("user:secret@") is never shown.
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  return std::string(authority);
}

bool valid_endpoint(std::string_view url, std::string& why) {
  const size_t scheme = scheme_length(url);
  if (scheme == 0) {
    why = "must start with http:// or https://";
    return false;
  }
  for (unsigned char c : url) {
    if (c <= 0x20 || c == 0x7f) {
      why = "must not contain spaces or control characters";
      return false;
    }
  }
  if (url.find_first_of("?#") != std::string_view::npos) {
    why = "must not have a query or a fragment (keys go in the environment, not the URL)";
    return false;
  }
  std::string_view authority = url.substr(scheme);
  authority = authority.substr(0, authority.find('/'));
  if (authority.find('@') != std::string_view::npos) {
    why = "must not carry user info (user:password@); keys go in the environment";
    return false;
  }
  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {  // IPv6 literal: [::1]:8080
    const size_t close = host.find(']');
    if (close == std::string_view::npos || close == 1) {
      why = "has a malformed IPv6 host";
      return false;
    }
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      why = "has a malformed IPv6 host";
      return false;
    }
    port = rest.empty() ? rest : rest.substr(1);
    host = host.substr(0, close + 1);
    if (!rest.empty() && port.empty()) {
      why = "has an empty port";
      return false;
    }
  } else if (const size_t colon = host.find(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (port.empty()) {
      why = "has an empty port";
      return false;
    }
  }
  if (host.empty()) {
    why = "has no host";
    return false;
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); })) {
      why = "has a port that is not a number";
      return false;
    }
    const int number = std::stoi(std::string(port));
    if (number < 1 || number > 65535) {
      why = "has a port outside 1..65535";
      return false;
    }
  }
  why.clear();
  return true;
}

}  // namespace avps::backends
