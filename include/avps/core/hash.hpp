#pragma once
// SHA-256 (OpenSSL EVP), as lower-case hex. Used for artifact content hashes, the ledger's hash
// chain and content-addressed object names. And base64, the other encoding OpenSSL gives us.

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace avps::core {

/// Lower-case hex SHA-256 of `data` (64 characters).
std::string sha256_hex(std::string_view data);
/// Lower-case hex SHA-256 of the concatenation of `parts`, without building it.
std::string sha256_hex_joined(std::initializer_list<std::string_view> parts);

/// SHA-256 of data given in pieces (a stream compared without holding it). Not thread-safe: one
/// owner at a time.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(std::string_view data);
  /// The hex digest of everything given so far; the object is spent after it.
  std::string hex();
  /// A hasher holding what this one has been given so far, to go on apart from it (a digest of a
  /// prefix and of the whole, in one reading of the prefix).
  Sha256 fork() const;

 private:
  struct Context;
  std::unique_ptr<Context> m_context;
};

/// True if `s` looks like a sha256_hex() value.
bool is_sha256_hex(std::string_view s);

/// Standard base64 (RFC 4648, with padding) without line breaks: images in requests and pages.
std::string base64(std::string_view bytes);

/// The bytes of standard base64 text (RFC 4648; padding optional; no other characters, not even
/// line breaks), or nullopt when `text` is not base64: what a provider sends as an image.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace avps::core
