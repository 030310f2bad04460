#include "jwt_chain.hpp"

// The signer is internal to the library (src/ is not on this target's include path); its symbols are in natsbus.
#include "../../src/auth/nkey.hpp"

#include <natsbus/protocol/nkeys.hpp>

#include <boost/json.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>

namespace natsbus::test {
namespace {

namespace json = boost::json;
namespace np = natsbus::protocol;

std::span<const std::uint8_t> bytes_of(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string random_seed(np::nkey_type type) {
  std::array<std::uint8_t, 32> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string seed = np::encode_seed(type, raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return seed;
}

detail::nkey_signer signer_of(std::string_view seed) {
  error_code ec;
  auto s = detail::nkey_signer::from_seed(seed, ec);
  if (ec) throw std::runtime_error("nkey_signer::from_seed: " + ec.message());
  return s;
}

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// nats-io/jwt v2 names a JWT by a hash of its claims made with an empty jti: base32 (no padding) of SHA-512/256.
// The server does not check it; it only has to be unique, which the fresh iat and keys make it.
std::string claims_id(const json::object& claims) {
  const std::string text = json::serialize(claims);
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md.data(), &len, EVP_sha512_256(), nullptr) != 1)
    throw std::runtime_error("EVP_Digest failed");
  return np::base32_encode({md.data(), len});
}

std::string make_jwt(const detail::nkey_signer& issuer, std::string_view subject, std::string_view name,
                     std::optional<std::int64_t> exp, json::object nats) {
  json::object claims;
  claims["jti"] = "";
  claims["iat"] = unix_seconds(std::chrono::system_clock::now());
  if (exp) claims["exp"] = *exp;
  claims["iss"] = issuer.public_key();
  claims["name"] = name;
  claims["sub"] = subject;
  claims["nats"] = std::move(nats);
  claims["jti"] = claims_id(claims);

  const std::string signing_input = np::base64url_encode(bytes_of(R"({"typ":"JWT","alg":"ed25519-nkey"})")) + "." +
                                    np::base64url_encode(bytes_of(json::serialize(claims)));
  error_code ec;
  const std::string sig = issuer.sign(signing_input, ec);
  if (ec) throw std::runtime_error("signing a JWT: " + ec.message());
  return signing_input + "." + np::base64url_encode(bytes_of(sig));
}

json::object operator_nats(std::string_view system_account) {
  return {{"system_account", system_account}, {"type", "operator"}, {"version", 2}};
}

// -1 is "no limit" in every field. JetStream is on for an account when mem_storage or disk_storage is non-zero;
// the system account goes without.
json::object account_nats(bool jetstream) {
  json::object limits{{"subs", -1},    {"data", -1}, {"payload", -1}, {"imports", -1},
                      {"exports", -1}, {"wildcards", true}, {"conn", -1}, {"leaf", -1}};
  if (jetstream) {
    limits["mem_storage"] = -1;
    limits["disk_storage"] = -1;
    limits["streams"] = -1;
    limits["consumer"] = -1;
  }
  return {{"limits", std::move(limits)},
          {"default_permissions", {{"pub", json::object{}}, {"sub", json::object{}}}},
          {"type", "account"},
          {"version", 2}};
}

json::object user_nats() {
  return {{"pub", json::object{}}, {"sub", json::object{}}, {"subs", -1},       {"data", -1},
          {"payload", -1},         {"type", "user"},         {"version", 2}};
}

}  // namespace

jwt_chain make_jwt_chain() {
  jwt_chain c;
  c.operator_seed = random_seed(np::nkey_type::operator_);
  c.account_seed = random_seed(np::nkey_type::account);
  c.user_seed = random_seed(np::nkey_type::user);
  const auto op = signer_of(c.operator_seed);
  const auto sys = signer_of(random_seed(np::nkey_type::account));
  const auto acc = signer_of(c.account_seed);
  const auto user = signer_of(c.user_seed);
  c.operator_public_key = op.public_key();
  c.system_account_public_key = sys.public_key();
  c.account_public_key = acc.public_key();
  c.user_public_key = user.public_key();
  c.operator_jwt =
      make_jwt(op, op.public_key(), "natsbus-test-operator", std::nullopt, operator_nats(sys.public_key()));
  c.system_account_jwt = make_jwt(op, sys.public_key(), "SYS", std::nullopt, account_nats(false));
  c.account_jwt = make_jwt(op, acc.public_key(), "natsbus-test-account", std::nullopt, account_nats(true));
  c.user_jwt = make_jwt(acc, user.public_key(), "natsbus-test-user", std::nullopt, user_nats());
  return c;
}

std::string jwt_chain::server_config() const {
  return "operator: \"" + operator_jwt + "\"\nsystem_account: " + system_account_public_key +
         "\nresolver: MEMORY\nresolver_preload: {\n  " + system_account_public_key + ": \"" + system_account_jwt +
         "\"\n  " + account_public_key + ": \"" + account_jwt + "\"\n}\n";
}

std::string jwt_chain::user_jwt_with_expiry(std::chrono::system_clock::time_point exp) const {
  return make_jwt(signer_of(account_seed), user_public_key, "natsbus-test-user", unix_seconds(exp), user_nats());
}

std::string jwt_chain::creds_file_text(std::string_view jwt) const {
  std::string out;
  out += "-----BEGIN NATS USER JWT-----\n";
  out += jwt;
  out += "\n------END NATS USER JWT------\n\n";
  out += "*** Test credentials made by natsbus::test::make_jwt_chain; the seed below is for this test only. ***\n\n";
  out += "-----BEGIN USER NKEY SEED-----\n";
  out += user_seed;
  out += "\n------END USER NKEY SEED------\n";
  return out;
}

nkey_user make_nkey_user() {
  nkey_user u;
  u.seed = random_seed(np::nkey_type::user);
  u.public_key = signer_of(u.seed).public_key();
  return u;
}

std::string nkey_user::server_config() const {
  return "authorization {\n  users = [\n    { nkey: \"" + public_key + "\" }\n  ]\n}\n";
}

}  // namespace natsbus::test
