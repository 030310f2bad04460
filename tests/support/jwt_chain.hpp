// Test support: NATS decentralized auth ("operator mode") without nsc. Makes fresh random NKeys and an operator ->
// account -> user chain of signed JWTs, with the project's own NKey code, for a nats-server with the MEMORY account
// resolver. The account has JetStream with no limits.
//
// A JWT here is base64url(header) "." base64url(claims) "." base64url(Ed25519 signature of the first two parts, by
// the issuer's key), no padding, with the header {"typ":"JWT","alg":"ed25519-nkey"} and the claims of nats-io/jwt
// v2 (jti, iat, iss, sub, name, optional exp, and "nats" with the type's fields, "type" and "version":2).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace natsbus::test {

struct jwt_chain {
  std::string operator_public_key;
  std::string operator_seed;
  std::string operator_jwt;  // self-signed; names the system account
  // JetStream in operator mode needs a system account (nats-server refuses to start JetStream without one).
  std::string system_account_public_key;
  std::string system_account_jwt;  // signed by the operator, no JetStream
  std::string account_public_key;
  std::string account_seed;
  std::string account_jwt;  // signed by the operator
  std::string user_public_key;
  std::string user_seed;
  std::string user_jwt;  // signed by the account, no expiry

  // Config file text trusting the operator, with both accounts preloaded into a MEMORY resolver:
  //   operator: "<jwt>"
  //   system_account: <system account public key>
  //   resolver: MEMORY
  //   resolver_preload: { <system account>: "<jwt>", <account public key>: "<jwt>" }
  // JetStream itself comes from server_options::jetstream (the fixture's -js) or a jetstream block of the caller's.
  [[nodiscard]] std::string server_config() const;

  // Another user JWT for the same user key, signed by the account, expiring at `exp` (whole seconds; a time in the
  // past makes a JWT the server refuses at CONNECT).
  [[nodiscard]] std::string user_jwt_with_expiry(std::chrono::system_clock::time_point exp) const;

  // The armored .creds text (as `nsc generate creds` writes it) of `jwt` with the user seed.
  [[nodiscard]] std::string creds_file_text(std::string_view jwt) const;
  [[nodiscard]] std::string creds_file_text() const { return creds_file_text(user_jwt); }
};

// Fresh keys and JWTs on every call. Throws std::runtime_error when OpenSSL fails.
jwt_chain make_jwt_chain();

// A key pair for plain NKey auth (no JWT): the server lists the public key, the client signs with the seed.
struct nkey_user {
  std::string public_key;  // "U..."
  std::string seed;        // "SU..."
  // authorization { users = [ { nkey: "U..." } ] }
  [[nodiscard]] std::string server_config() const;
};
nkey_user make_nkey_user();

}  // namespace natsbus::test
