// .creds text and NKey strings on arbitrary bytes (protocol/creds.hpp, protocol/nkeys.hpp): no crash; a text that
// parses holds a three-part JWT and a user seed, and parses again the same when written out in the canonical layout;
// a refusal leaves the output empty and explains itself with one of the parser's fixed sentences, so no input
// (a seed) ever reaches the problem text. The same bytes go through the seed, public key, base32 and base64url
// decoders, whose results must encode back (the seed modulo the three bits the format ignores). Every prefix of
// the input is parsed too (of a long input, 64 spread-out prefixes and the last 16), each in a buffer of its own
// exact size.
#include <natsbus/protocol/creds.hpp>
#include <natsbus/protocol/nkeys.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace np = natsbus::protocol;
using natsbus::error;
using natsbus::error_code;

// Every prefix of a short input; of a longer one (a whole .creds file is some 850 bytes), a sample, so that a run
// stays in the thousands of inputs a second.
constexpr std::size_t all_prefixes_input = 512;

void check(bool ok) {
  if (!ok) std::abort();
}

bool known_problem(std::string_view p) {
  for (std::string_view k :
       {"the JWT block has no END line", "the seed block has no END line", "a block has no END line",
        "no user JWT block", "no seed block", "the JWT block is empty", "the seed block is empty",
        "the JWT is not three base64url parts", "the seed: wrong length", "the seed: bad base32",
        "the seed: bad checksum", "the seed: not a seed", "the seed: unknown key type",
        "the seed is not a user seed (its type: account)", "the seed is not a user seed (its type: operator)",
        "the seed is not a user seed (its type: server)", "the seed is not a user seed (its type: cluster)"})
    if (p == k) return true;
  return false;
}

void check_creds(std::string_view text) {
  np::credentials c;
  std::string problem;
  const error_code ec = np::parse_creds(text, c, problem);
  if (ec) {
    check(ec == error::invalid_credentials || ec == error::invalid_nkey_seed);
    check(c.jwt.empty() && c.seed.empty());
    check(known_problem(problem));
    return;
  }
  check(problem.empty());
  check(np::looks_like_jwt(c.jwt));
  np::nkey_type type{};
  std::array<std::uint8_t, 32> raw{};
  check(!np::decode_seed(c.seed, type, raw) && type == np::nkey_type::user);

  const std::string canonical = "-----BEGIN NATS USER JWT-----\n" + c.jwt +
                                "\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n" + c.seed +
                                "\n------END USER NKEY SEED------\n";
  np::credentials again;
  check(!np::parse_creds(canonical, again, problem));
  check(again.jwt == c.jwt && again.seed == c.seed);
}

void check_keys(std::string_view text) {
  np::nkey_type type{};
  std::array<std::uint8_t, 32> raw{};
  std::string_view problem;
  if (!np::decode_seed(text, type, raw, problem)) {
    check(problem.empty());
    np::nkey_type type2{};
    std::array<std::uint8_t, 32> raw2{};
    check(!np::decode_seed(np::encode_seed(type, raw), type2, raw2) && type2 == type && raw2 == raw);
  } else {
    check(!problem.empty() && raw == std::array<std::uint8_t, 32>{});
  }
  if (np::decode_public_key(text, type, raw)) check(np::encode_public_key(type, raw) == text);

  std::vector<std::uint8_t> out;
  if (np::base32_decode(text, out)) check(np::base32_encode(out) == text);
  if (np::base64url_decode(text, out)) check(np::base64url_encode(out) == text);
}

void check_text(std::string_view text) {
  check_creds(text);
  check_keys(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::vector<char> exact(data, data + size);
    check_text(std::string_view(exact.data(), size));
  }
  const auto check_prefix = [&](std::size_t n) {
    std::vector<char> prefix(data, data + n);
    check_text(std::string_view(prefix.data(), n));
  };
  if (size <= all_prefixes_input) {
    for (std::size_t n = 0; n < size; ++n) check_prefix(n);
  } else {
    for (std::size_t i = 0; i < 64; ++i) check_prefix(size * i / 64);
    for (std::size_t n = size - 16; n < size; ++n) check_prefix(n);
  }
  return 0;
}
