// The real HTTP client against a loopback cpp-httplib server (STYLE §5 #17: no test touches the
// network): what comes back for a normal answer, an error status, a refused connection, a server
// that never answers and a body over the cap. Timeouts are a few hundred milliseconds so the
// file runs in about a second.

#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "avps/backends/http_client.hpp"

using namespace avps;
using backends::CurlHttpClient;
using backends::HttpOptions;
using backends::HttpRequest;
using backends::HttpResponse;

namespace {

// A server on 127.0.0.1 and a free port, listening on its own thread until the test ends.
class LoopbackServer {
 public:
  explicit LoopbackServer(const std::function<void(httplib::Server&)>& routes) {
    routes(m_server);
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
  }
  ~LoopbackServer() { stop(); }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  void stop() {
    if (!m_thread.joinable()) {
      return;
    }
    // stop() before the listen loop started would be lost, and join() would then wait forever.
    for (int i = 0; i < 2000 && !m_server.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    m_server.stop();
    m_thread.join();
  }

  int port() const { return m_port; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }

 private:
  httplib::Server m_server;
  int m_port = 0;
  std::thread m_thread;
};

HttpOptions fast_options() {
  HttpOptions options;
  options.connect_timeout_ms = 300;
  options.total_timeout_ms = 300;
  options.max_response_bytes = 1024 * 1024;
  return options;
}

}  // namespace

TEST_CASE("a POST round trip carries body, headers and status", "[http]") {
  // Given a server that echoes the body and a request header, and sets a mixed-case header
  LoopbackServer server([](httplib::Server& s) {
    s.Post("/v1/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 201;
      res.set_header("X-Request-Id", "req_123");
      res.set_header("X-Seen-Auth", req.get_header_value("Authorization"));
      res.set_content("echo:" + req.body + ":" + req.get_header_value("Content-Type"), "text/plain");
    });
  });
  CurlHttpClient client;
  HttpRequest request;
  request.url = server.url("/v1/echo");
  request.headers = {{"Authorization", "Bearer k"}, {"content-type", "application/json"}};
  request.body = R"({"a":1})";

  // When it is sent
  Result<HttpResponse> response = client.send(request, fast_options());

  // Then the response is whole, header names are lower-cased and looked up in any case
  REQUIRE(response.ok());
  CHECK(response->status == 201);
  CHECK(response->body == R"(echo:{"a":1}:application/json)");
  CHECK(response->header("x-request-id") == "req_123");
  CHECK(response->header("X-REQUEST-ID") == "req_123");
  CHECK(response->header("x-seen-auth") == "Bearer k");
  CHECK(response->header("x-not-there").empty());
  bool lower_cased = false;
  for (const auto& [name, value] : response->headers) {
    CHECK(name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos);
    lower_cased = lower_cased || (name == "x-request-id" && value == "req_123");
  }
  CHECK(lower_cased);
  CHECK(response->latency_ms >= 0);
}

TEST_CASE("a GET is sent without a body", "[http]") {
  LoopbackServer server([](httplib::Server& s) {
    s.Get("/status", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content("method " + req.method + " body " + std::to_string(req.body.size()), "text/plain");
    });
  });
  CurlHttpClient client;
  HttpRequest request;
  request.method = "GET";
  request.url = server.url("/status");
  Result<HttpResponse> response = client.send(request, fast_options());
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body == "method GET body 0");
}

TEST_CASE("a 503 comes back as a response, not an error", "[http]") {
  LoopbackServer server([](httplib::Server& s) {
    s.Post("/busy", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_header("Retry-After", "3");
      res.set_content(R"({"error":{"message":"overloaded"}})", "application/json");
    });
  });
  CurlHttpClient client;
  HttpRequest request;
  request.url = server.url("/busy");
  Result<HttpResponse> response = client.send(request, fast_options());
  REQUIRE(response.ok());
  CHECK(response->status == 503);
  CHECK(response->header("retry-after") == "3");
  CHECK(response->body.find("overloaded") != std::string::npos);
}

TEST_CASE("a redirect is returned, not followed", "[http]") {
  LoopbackServer server([](httplib::Server& s) {
    s.Post("/old", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/new", 307); });
    s.Post("/new", [](const httplib::Request&, httplib::Response& res) { res.set_content("moved", "text/plain"); });
  });
  CurlHttpClient client;
  HttpRequest request;
  request.url = server.url("/old");
  Result<HttpResponse> response = client.send(request, fast_options());
  REQUIRE(response.ok());
  CHECK(response->status == 307);
  CHECK(response->body != "moved");
}

TEST_CASE("a refused connection is backend_unavailable naming the host", "[http]") {
  // Given a port that was free a moment ago and has no listener now
  int port = 0;
  {
    LoopbackServer server([](httplib::Server&) {});
    port = server.port();
  }
  CurlHttpClient client;
  HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions?secret=1";
  request.headers = {{"Authorization", "Bearer sk-never-shown"}};

  Result<HttpResponse> response = client.send(request, fast_options());

  REQUIRE_FALSE(response.ok());
  CHECK(response.error().code == ErrorCode::backend_unavailable);
  CHECK(response.error().message.find("POST 127.0.0.1:" + std::to_string(port)) != std::string::npos);
  // Neither the path's query nor a header value is in the message
  CHECK(response.error().message.find("secret") == std::string::npos);
  CHECK(response.error().message.find("sk-never-shown") == std::string::npos);
}

TEST_CASE("a server slower than the total timeout gives a timeout", "[http]") {
  // The handler waits until released (or 3 s), so stopping the server does not wait long
  std::atomic<bool> released{false};
  LoopbackServer server([&](httplib::Server& s) {
    s.Post("/slow", [&](const httplib::Request&, httplib::Response& res) {
      for (int i = 0; i < 300 && !released; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      res.set_content("late", "text/plain");
    });
  });
  CurlHttpClient client;
  HttpRequest request;
  request.url = server.url("/slow");

  const auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> response = client.send(request, fast_options());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  released = true;

  REQUIRE_FALSE(response.ok());
  CHECK(response.error().code == ErrorCode::timeout);
  CHECK(response.error().message.find("127.0.0.1") != std::string::npos);
  CHECK(elapsed < std::chrono::seconds(2));
}

TEST_CASE("a body larger than max_response_bytes is refused", "[http]") {
  LoopbackServer server([](httplib::Server& s) {
    // Declared length: refused from the Content-Length
    s.Post("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(10'000, 'x'), "text/plain");
    });
    // Chunked, no length: cut by the write callback once past the cap
    s.Post("/stream", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink& sink) {
        if (offset >= 64 * 1024) {
          sink.done();
          return true;
        }
        const std::string chunk(4096, 'y');
        return sink.write(chunk.data(), chunk.size());
      });
    });
  });
  CurlHttpClient client;
  HttpOptions options = fast_options();
  options.max_response_bytes = 1000;
  for (const char* path : {"/big", "/stream"}) {
    INFO(path);
    HttpRequest request;
    request.url = server.url(path);
    Result<HttpResponse> response = client.send(request, options);
    REQUIRE_FALSE(response.ok());
    CHECK(response.error().code == ErrorCode::backend_unavailable);
    CHECK(response.error().message.find("larger than 1000 bytes") != std::string::npos);
  }
  // And the same bodies under a larger cap arrive whole
  options.max_response_bytes = 1024 * 1024;
  HttpRequest request;
  request.url = server.url("/stream");
  Result<HttpResponse> whole = client.send(request, options);
  REQUIRE(whole.ok());
  CHECK(whole->body.size() == 64 * 1024);
}

TEST_CASE("several threads send at once", "[http]") {
  LoopbackServer server([](httplib::Server& s) {
    s.Post("/n", [](const httplib::Request& req, httplib::Response& res) { res.set_content(req.body, "text/plain"); });
  });
  CurlHttpClient client;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        HttpRequest request;
        request.url = server.url("/n");
        request.body = std::to_string(t * 100 + i);
        HttpOptions options = fast_options();
        options.total_timeout_ms = 2000;
        Result<HttpResponse> response = client.send(request, options);
        if (response.ok() && response->body == request.body) {
          ++good;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  CHECK(good == 20);
}

TEST_CASE("url_host keeps host and port only", "[http]") {
  using backends::url_host;
  CHECK(url_host("https://api.openai.com/v1") == "api.openai.com");
  CHECK(url_host("http://127.0.0.1:8080/v1/chat") == "127.0.0.1:8080");
  CHECK(url_host("HTTPS://Example.com") == "Example.com");
  CHECK(url_host("http://[::1]:11434/v1") == "[::1]:11434");
  CHECK(url_host("https://user:secret@host.example/x") == "host.example");
  CHECK(url_host("https://host.example?key=abc") == "host.example");
  CHECK(url_host("ftp://host.example/") == "");
  CHECK(url_host("host.example") == "");
  CHECK(url_host("") == "");
}

TEST_CASE("valid_endpoint accepts base URLs and says what is wrong with others", "[http]") {
  using backends::valid_endpoint;
  std::string why;
  CHECK(valid_endpoint("https://api.openai.com/v1", why));
  CHECK(why.empty());
  CHECK(valid_endpoint("http://127.0.0.1:11434/v1/", why));
  CHECK(valid_endpoint("https://generativelanguage.googleapis.com", why));
  CHECK(valid_endpoint("http://[::1]:8080", why));

  CHECK_FALSE(valid_endpoint("api.openai.com/v1", why));
  CHECK(why.find("http://") != std::string::npos);
  CHECK_FALSE(valid_endpoint("ftp://host/", why));
  CHECK_FALSE(valid_endpoint("https://host/v1?key=abc", why));
  CHECK(why.find("query") != std::string::npos);
  CHECK_FALSE(valid_endpoint("https://host/v1#frag", why));
  CHECK_FALSE(valid_endpoint("https://user:pw@host/v1", why));
  CHECK(why.find("user info") != std::string::npos);
  CHECK_FALSE(valid_endpoint("https:///v1", why));
  CHECK(why.find("no host") != std::string::npos);
  CHECK_FALSE(valid_endpoint("http://host:99999", why));
  CHECK_FALSE(valid_endpoint("http://host:abc", why));
  CHECK_FALSE(valid_endpoint("http://host:", why));
  CHECK_FALSE(valid_endpoint("https://ho st/v1", why));
  CHECK_FALSE(valid_endpoint("", why));
}
