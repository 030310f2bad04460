#include "auth/credentials.hpp"

#include "auth/nkey.hpp"

#include <natsbus/protocol/creds.hpp>
#include <natsbus/protocol/nkeys.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <span>

namespace natsbus::detail {
namespace {

// Reads a whole file; false when it cannot be opened or read. The caller wipes `out`.
bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

// A seed file holds the seed, perhaps with spaces or a newline around it.
std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

error_code signer_from(const connection_options& o, nkey_signer& signer, std::string& problem) {
  error_code ec;
  if (!o.nkey_seed.empty()) {
    signer = nkey_signer::from_seed(trimmed(o.nkey_seed), ec);
    if (ec) problem = "nkey_seed: " + ec.message();
    return ec;
  }
  std::string text;
  if (!read_file(o.nkey_seed_file, text)) {
    problem = "nkey_seed_file " + o.nkey_seed_file + ": cannot be read";
    return error::invalid_nkey_seed;
  }
  signer = nkey_signer::from_seed(trimmed(text), ec);
  protocol::secure_wipe(text);
  if (ec) problem = "nkey_seed_file " + o.nkey_seed_file + ": " + ec.message();
  return ec;
}

// The signature by the user's callback, as base64url.
error_code callback_signature(const connection_options& o, std::string_view nonce, std::string& sig,
                              std::string& problem) {
  std::string raw;
  error_code ec;
  try {
    ec = o.sign_nonce(nonce, raw);
  } catch (const std::exception&) {
    ec = error::signing_failed;
  }
  if (ec || raw.empty()) {
    problem = "the sign_nonce callback failed" + (ec ? ": " + ec.message() : std::string(": no signature"));
    return error::signing_failed;
  }
  sig = protocol::base64url_encode(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()));
  return {};
}

}  // namespace

void wipe(std::string& s) noexcept { protocol::secure_wipe(s); }

error_code check_auth_options(const connection_options& o, std::string& problem) {
  const bool seed = !o.nkey_seed.empty() || !o.nkey_seed_file.empty();
  int methods = 0;
  methods += !o.credentials_file.empty();
  methods += static_cast<bool>(o.user_jwt);
  methods += !o.nkey_public_key.empty();
  if (!o.nkey_seed.empty() && !o.nkey_seed_file.empty()) {
    problem = "set nkey_seed or nkey_seed_file, not both";
    return error::invalid_config;
  }
  if (methods > 1 || (methods == 1 && seed && !o.user_jwt)) {
    problem = "set one of credentials_file, user_jwt, nkey_public_key and an NKey seed";
    return error::invalid_config;
  }
  if (!o.nkey_public_key.empty() && !o.sign_nonce) {
    problem = "nkey_public_key needs a sign_nonce callback";
    return error::invalid_config;
  }
  if (o.user_jwt && !o.sign_nonce && !seed) {
    problem = "user_jwt needs a signer: sign_nonce or an NKey seed";
    return error::invalid_config;
  }
  if (o.sign_nonce && !o.user_jwt && o.nkey_public_key.empty()) {
    problem = "sign_nonce is used with user_jwt or nkey_public_key";
    return error::invalid_config;
  }
  return {};
}

error_code sign_in(const connection_options& o, std::string_view nonce, protocol::connect_fields& f,
                   std::string& problem) {
  const bool seed = !o.nkey_seed.empty() || !o.nkey_seed_file.empty();
  error_code ec;
  if (!o.credentials_file.empty()) {
    std::string text;
    if (!read_file(o.credentials_file, text)) {
      problem = "credentials_file " + o.credentials_file + ": cannot be read";
      return error::invalid_credentials;
    }
    protocol::credentials creds;
    std::string what;
    ec = protocol::parse_creds(text, creds, what);
    protocol::secure_wipe(text);
    if (ec) {
      problem = "credentials_file " + o.credentials_file + ": " + what;
      return ec;
    }
    nkey_signer signer = nkey_signer::from_seed(creds.seed, ec);
    if (ec) {
      problem = "credentials_file " + o.credentials_file + ": the seed: " + ec.message();
      return ec;
    }
    std::string sig = signer.sign_nonce_base64url(nonce, ec);
    if (ec) {
      problem = "credentials_file " + o.credentials_file + ": signing failed";
      return ec;
    }
    f.jwt = std::move(creds.jwt);
    f.sig = std::move(sig);
    return {};
  }
  if (o.user_jwt) {
    std::string jwt;
    try {
      ec = o.user_jwt(jwt);
    } catch (const std::exception&) {
      ec = error::invalid_credentials;
    }
    if (ec || jwt.empty()) {
      problem = "the user_jwt callback failed" + (ec ? ": " + ec.message() : std::string(": no JWT"));
      return error::invalid_credentials;
    }
    std::string sig;
    if (o.sign_nonce) {
      if ((ec = callback_signature(o, nonce, sig, problem))) return ec;
    } else {
      nkey_signer signer;
      if ((ec = signer_from(o, signer, problem))) return ec;
      sig = signer.sign_nonce_base64url(nonce, ec);
      if (ec) {
        problem = "signing the nonce failed";
        return ec;
      }
    }
    f.jwt = std::move(jwt);
    f.sig = std::move(sig);
    return {};
  }
  if (!o.nkey_public_key.empty()) {
    std::string sig;
    if ((ec = callback_signature(o, nonce, sig, problem))) return ec;
    f.nkey = o.nkey_public_key;
    f.sig = std::move(sig);
    return {};
  }
  if (seed) {
    nkey_signer signer;
    if ((ec = signer_from(o, signer, problem))) return ec;
    std::string sig = signer.sign_nonce_base64url(nonce, ec);
    if (ec) {
      problem = "signing the nonce failed";
      return ec;
    }
    f.nkey = signer.public_key();
    f.sig = std::move(sig);
  }
  return {};
}

}  // namespace natsbus::detail
