#include "avps/core/hash.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>

namespace avps::core {

namespace {

std::string hex_of(const std::array<unsigned char, EVP_MAX_MD_SIZE>& digest, unsigned int length) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(k_hex[digest[i] >> 4]);
    out.push_back(k_hex[digest[i] & 0xf]);
  }
  return out;
}

[[noreturn]] void digest_failed() {
  // Only an OpenSSL misconfiguration gets here; nothing sensible can continue.
  throw std::runtime_error("internal error: OpenSSL SHA-256 failed");
}

// SHA-256 as fetched from OpenSSL's providers once: given EVP_sha256(), OpenSSL 3 looks the
// algorithm up again at every digest's start, which cost more than hashing a small event.
const EVP_MD* sha256_algorithm() {
  static EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return fetched != nullptr ? fetched : EVP_sha256();
}

// One digest context per thread for the one-shot digests (sha256_hex, sha256_hex_joined): the
// ledger hashes every event, and a context made and freed for each was most of a small digest.
EVP_MD_CTX* scratch_context() {
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context{EVP_MD_CTX_new(),
                                                                                     &EVP_MD_CTX_free};
  if (!context || EVP_DigestInit_ex(context.get(), sha256_algorithm(), nullptr) != 1) {
    digest_failed();
  }
  return context.get();
}

std::string final_hex(EVP_MD_CTX* context) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context, digest.data(), &length) != 1) {
    digest_failed();
  }
  return hex_of(digest, length);
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  EVP_MD_CTX* context = scratch_context();
  if (EVP_DigestUpdate(context, data.data(), data.size()) != 1) {
    digest_failed();
  }
  return final_hex(context);
}

struct Sha256::Context {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
};

Sha256::Sha256() : m_context(std::make_unique<Context>()) {
  if (!m_context->md || EVP_DigestInit_ex(m_context->md.get(), sha256_algorithm(), nullptr) != 1) {
    digest_failed();
  }
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view data) {
  if (EVP_DigestUpdate(m_context->md.get(), data.data(), data.size()) != 1) {
    digest_failed();
  }
}

Sha256 Sha256::fork() const {
  Sha256 copy;
  if (EVP_MD_CTX_copy_ex(copy.m_context->md.get(), m_context->md.get()) != 1) {
    digest_failed();
  }
  return copy;
}

std::string Sha256::hex() { return final_hex(m_context->md.get()); }

std::string sha256_hex_joined(std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* context = scratch_context();
  for (std::string_view part : parts) {
    if (EVP_DigestUpdate(context, part.data(), part.size()) != 1) {
      digest_failed();
    }
  }
  return final_hex(context);
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// EVP_EncodeBlock takes an int length, so large inputs go in chunks of whole 3-byte groups (which
// encode independently).
std::string base64(std::string_view bytes) {
  constexpr size_t k_chunk = 3 * 1024 * 1024;
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::string buffer(k_chunk / 3 * 4 + 1, '\0');
  for (size_t at = 0; at < bytes.size(); at += k_chunk) {
    const size_t n = std::min(k_chunk, bytes.size() - at);
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(buffer.data()),
                                        reinterpret_cast<const unsigned char*>(bytes.data() + at), static_cast<int>(n));
    out.append(buffer.data(), static_cast<size_t>(std::max(written, 0)));
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  // By hand rather than EVP_DecodeBlock, which accepts whitespace and cannot say how much padding
  // it read.
  while (!text.empty() && text.back() == '=') {
    text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int value = -1;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    }
    if (value < 0) {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace avps::core
