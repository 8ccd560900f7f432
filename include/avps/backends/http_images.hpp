#pragma once
// Image output as a second operation of the HTTP kinds (shared/reference/backend-apis.md §1 and
// §3, "Model OpenAI Images and Gemini image output as a second operation of kinds 1 and 3"): a
// model entry with capabilities.image_out true on openai_chat or gemini_generate answers
// submit_generation() for a storyboard frame at once (no ticket). docs/providers.md, "Image
// models", is the user's page.
//
//   openai_chat      POST {endpoint}/images/generations {"model", "prompt", "n": 1, "size",
//                    "quality"?, "response_format": "b64_json" (dall-e-* only: GPT image models
//                    always answer base64 and refuse the field)}; the reply's data[0].b64_json.
//   gemini_generate  POST {endpoint}/v1beta/models/{model}:generateContent {"contents": [one user
//                    text part], "generationConfig": {"responseModalities": ["TEXT", "IMAGE"] (or
//                    ["IMAGE"]), "imageConfig": {"aspectRatio", "imageSize"?}}}; the first
//                    candidate's first inlineData part that is an image and not a thought.
//
// The prompt is the GenPack face, condensed by async_job's condense_prompt() rule when it exceeds
// the model's prompt limit (options.image_prompt_max_chars; what was dropped is recorded). The
// size (OpenAI) or aspect ratio (Gemini) is the allowed one nearest the frame's aspect
// (nearest_aspect(), image_output.hpp).
//
// What comes back: a GenerationResult with the decoded bytes (checked by their magic bytes to be
// PNG, JPEG or WebP; the extension says which) and details {"usage": the provider's usage as
// reported, "size" or "aspect_ratio" asked for, "revised_prompt"?, "prompt_condensed"?}. The
// cost is the model's pricing.per_image_micro_usd (the engine prices it; neither API reports a
// price). Errors: a non-2xx is classified as every HTTP call is (http_model.hpp: 429
// rate_limited with Retry-After, 5xx backend_unavailable, other 4xx rejected); a content-policy
// refusal (OpenAI moderation_blocked / content_policy_violation, Gemini promptFeedback.blockReason
// or a finishReason such as IMAGE_SAFETY) is rejected with a message that says to revise the
// GenPack; a 2xx without an image, or with data that is not base64 of an image, is rejected (the
// attempt fails; it is not sent again, since the provider may have billed it).
//
// The trace keeps the request body as sent and the response body with each image's base64
// replaced by "<image: N bytes, sha256 H>" (the image itself is the render's media object).
//
// Threading: pure functions apart from the HttpClient's send.

#include <string>

#include "avps/backends/backend.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/backends/http_model.hpp"
#include "avps/core/result.hpp"

namespace avps::backends {

/// The request of a storyboard frame on an image model (see the top). unsupported for a kind with
/// no image operation (anthropic_messages) or a request that is not a storyboard frame (videos
/// need async_job or comfyui).
[[nodiscard]] Result<HttpRequest> build_image_request(const HttpModelConfig& config, const GenerationRequest& request,
                                                      nlohmann::json* details = nullptr);

/// The frame in `response`, or the error it means (see the top). `attempt_error` gets the short
/// form the HttpAttempt records ("" for a 2xx with an image).
[[nodiscard]] Result<GenerationResult> parse_image_response(const HttpModelConfig& config, const HttpResponse& response,
                                                            std::string& attempt_error);

/// `body` with every image's base64 replaced by "<image: N bytes, sha256 H>" (OpenAI
/// data[].b64_json, Gemini inlineData.data); a body that is not JSON comes back as it is.
std::string without_image_data(const std::string& body);

/// One storyboard frame through `client`: build, send, parse, the attempt and bodies in `trace`.
[[nodiscard]] Result<GenerationResult> submit_image(const HttpModelConfig& config, HttpClient& client,
                                                    const GenerationRequest& request, CallTrace& trace);

}  // namespace avps::backends
