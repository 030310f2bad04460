// Internal: Ed25519 signing with an NKey seed, through OpenSSL 3's EVP interface. The server's INFO carries a
// nonce; the client proves it holds the key by sending CONNECT with "sig": base64url (no padding) of the Ed25519
// signature over the nonce's bytes, plus "nkey" (plain NKey auth) or "jwt" (a user JWT whose subject is this key).
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/protocol/nkeys.hpp>

#include <openssl/types.h>  // EVP_PKEY, without all of <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

namespace natsbus::detail {

class nkey_signer {
 public:
  nkey_signer() = default;  // holds no key: sign() fails with error::signing_failed

  // A signer for the key of an NKey seed ("SU...", "SA...", "SO...", ...). A bad seed is error::invalid_nkey_seed;
  // OpenSSL refusing the key is error::signing_failed. The seed's decoded bytes are wiped before returning.
  static nkey_signer from_seed(std::string_view seed, error_code& ec);

  [[nodiscard]] bool valid() const noexcept { return key_ != nullptr; }
  [[nodiscard]] protocol::nkey_type type() const noexcept { return type_; }
  // The encoded public key ("U..." for a user seed), what the server's config and JWT subjects name.
  [[nodiscard]] const std::string& public_key() const noexcept { return public_key_; }

  // The raw 64-byte Ed25519 signature of `message`; empty with error::signing_failed on failure.
  std::string sign(std::string_view message, error_code& ec) const;
  // base64url (no padding) of the signature over the nonce's ASCII bytes: CONNECT's "sig".
  std::string sign_nonce_base64url(std::string_view nonce, error_code& ec) const;

 private:
  struct key_deleter {
    void operator()(EVP_PKEY* k) const noexcept;
  };
  std::unique_ptr<EVP_PKEY, key_deleter> key_;  // OpenSSL wipes the private key when it frees it
  protocol::nkey_type type_ = protocol::nkey_type::user;
  std::string public_key_;
};

}  // namespace natsbus::detail
