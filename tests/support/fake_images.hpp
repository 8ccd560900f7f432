#pragma once
// FakeImages: the image APIs of avps's image models on the FakeProvider's loopback server —
// OpenAI's POST /v1/images/generations, and Gemini's generateContent when its generationConfig
// asks for IMAGE output (the FakeProvider hands such requests here). Wire formats:
// shared/reference/backend-apis.md §1 and §3, checked against openai-python's
// image_generate_params.py and python-genai's ImageConfig.
//
// Strict: the method, content type, auth header (OpenAI "Authorization: Bearer <key>", Gemini
// x-goog-api-key; never a key in the URL; no auth header at all when the key is empty), the
// body's fields (only those the API documents; model and prompt required; n 1..10; size one the
// model family takes; quality one it takes; response_format refused for GPT image models, as
// the API does; for Gemini one user text part at least, responseModalities of TEXT and IMAGE
// holding IMAGE, imageConfig.aspectRatio one the API lists, imageSize 1K / 2K / 4K, no JSON
// output fields). A request that breaks a rule is answered 400 in the provider's error format and
// counted invalid with its reason.
//
// Answers: a PNG drawn by the sim (the storyboard frame of the prompt, at an eighth of the size
// asked for, so tests stay small), base64 in data[0].b64_json with the usage of a GPT image model,
// or in candidates[0].content.parts[].inlineData (after a text part when TEXT was asked for).
//
// Faults (set_faults(), or POST /control {"image_faults": [...]}), each rule {"fault", "provider":
// "openai" | "gemini" (default any), "times" (default 1, -1 every request), "skip" (default 0),
// "retry_after_s" (429)}:
//   "500"             the provider's server error
//   "429"             rate limited, Retry-After (OpenAI) or RetryInfo.retryDelay (Gemini)
//   "content_policy"  OpenAI 400 moderation_blocked; Gemini 200 with finishReason IMAGE_SAFETY
//   "not_image"       200 whose image data is base64 of an HTML page
//   "jpeg"            Gemini only: the frame as image/jpeg (made with ffmpeg), as Gemini may answer
//
// Counted (stats()): requests, valid, invalid (+ reasons), images (answered with one),
// faults_applied, by_provider {requests, images}.
//
// Threading: every method may be called from any thread (one mutex; the sim renders outside it).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "avps/core/result.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace avps::testing {

struct FakeImagesConfig {
  std::string openai_key;  ///< empty = no auth header expected
  std::string gemini_key;
  uint64_t seed = 0;
};

class FakeImages {
 public:
  explicit FakeImages(FakeImagesConfig config);
  ~FakeImages();
  FakeImages(const FakeImages&) = delete;
  FakeImages& operator=(const FakeImages&) = delete;

  /// Adds POST /v1/images/generations to `server` (before its catch-all routes).
  void routes(httplib::Server& server);
  /// Whether a generateContent request asks for image output (then gemini() answers it).
  static bool wants_image(const httplib::Request& req);
  /// Answers a Gemini generateContent image request for `model`.
  void gemini(const std::string& model, const httplib::Request& req, httplib::Response& res);
  /// Replaces the fault rules; invalid_argument naming the problem (the rules stay as they were).
  [[nodiscard]] Result<void> set_faults(const nlohmann::json& rules);
  nlohmann::json stats() const;
  void reset_stats();

  struct Impl;

 private:
  std::unique_ptr<Impl> m_impl;
};

}  // namespace avps::testing
