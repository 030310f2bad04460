#include "auth/nkey.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>

namespace natsbus::detail {

namespace {

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

constexpr std::size_t signature_size = 64;  // Ed25519 (RFC 8032)

}  // namespace

void nkey_signer::key_deleter::operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }

nkey_signer nkey_signer::from_seed(std::string_view seed, error_code& ec) {
  ec = {};
  nkey_signer s;
  std::array<std::uint8_t, 32> raw{};
  protocol::nkey_type type{};
  ec = protocol::decode_seed(seed, type, raw);
  if (ec) return s;
  // An NKey seed is the 32-byte Ed25519 private key itself (RFC 8032's "seed"), which OpenSSL takes raw.
  s.key_.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
  OPENSSL_cleanse(raw.data(), raw.size());
  std::array<std::uint8_t, 32> pub{};
  std::size_t pub_len = pub.size();
  if (!s.key_ || EVP_PKEY_get_raw_public_key(s.key_.get(), pub.data(), &pub_len) != 1 || pub_len != pub.size()) {
    ec = error::signing_failed;
    return nkey_signer{};
  }
  s.type_ = type;
  s.public_key_ = protocol::encode_public_key(type, pub);
  return s;
}

std::string nkey_signer::sign(std::string_view message, error_code& ec) const {
  ec = {};
  std::string sig(signature_size, '\0');
  std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx(EVP_MD_CTX_new());
  std::size_t len = sig.size();
  // Ed25519 hashes internally: one-shot EVP_DigestSign with no digest named (EVP_DigestSignUpdate is not allowed).
  if (!key_ || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != signature_size) {
    ec = error::signing_failed;
    return {};
  }
  return sig;
}

std::string nkey_signer::sign_nonce_base64url(std::string_view nonce, error_code& ec) const {
  const std::string sig = sign(nonce, ec);
  if (ec) return {};
  return protocol::base64url_encode({reinterpret_cast<const std::uint8_t*>(sig.data()), sig.size()});
}

}  // namespace natsbus::detail
