// NKey encodings (CRC-16, base32, base64url, seeds and public keys), the Ed25519 signer built on them, and the
// .creds parser: known vectors, round trips, and every way a seed or a .creds text can be refused, with the error
// text never carrying the secret.
#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include "auth/nkey.hpp"

#include <natsbus/protocol/creds.hpp>
#include <natsbus/protocol/nkeys.hpp>

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using namespace natsbus;
using namespace natsbus::protocol;

namespace {

// A public test vector: the user seed of nats.go's trust tests, whose user JWT there has this subject. The signature
// over the ASCII bytes "nonce" was checked against another client's test (Ed25519 signatures are deterministic).
constexpr std::string_view vector_seed = "SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY";
constexpr std::string_view vector_public_key = "UAT6BWCSCWLUKJT6K6MBJJOEOTXZ5AJDOYKNEVRFC7VNO6OA43N4TRNO";
constexpr std::string_view vector_nonce_sig =
    "m50It12aTgfbJwsQhucujqhXbsq7tLM-Mf_hSjBQsG_4onm8y2Vkw6JG1bbcDkdxXe-Ng0K-7X9ov4rZ4wFcDg";

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string text_of(const std::vector<std::uint8_t>& v) { return {v.begin(), v.end()}; }

std::array<std::uint8_t, 32> pattern_key(std::uint8_t start) {
  std::array<std::uint8_t, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(start + 37 * i);
  return k;
}

// 36 seed bytes with a correct checksum over whatever prefix bytes the test wants, base32-encoded.
std::string seed_text_with_prefix(std::uint8_t b0, std::uint8_t b1) {
  std::array<std::uint8_t, 36> buf{};
  buf[0] = b0;
  buf[1] = b1;
  const auto key = pattern_key(9);
  std::copy(key.begin(), key.end(), buf.begin() + 2);
  const std::uint16_t crc = crc16({buf.data(), 34});
  buf[34] = static_cast<std::uint8_t>(crc & 0xff);
  buf[35] = static_cast<std::uint8_t>(crc >> 8);
  return base32_encode(buf);
}

std::string_view seed_problem(std::string_view seed) {
  nkey_type t{};
  std::array<std::uint8_t, 32> raw{};
  raw.fill(0xAA);
  std::string_view problem;
  const error_code ec = decode_seed(seed, t, raw, problem);
  BOOST_TEST(ec == error::invalid_nkey_seed, seed);
  BOOST_TEST((raw == std::array<std::uint8_t, 32>{}), "raw is zeroed on failure");
  return problem;
}

// Whether `sig` is `key`'s valid Ed25519 signature of `message`, checked with OpenSSL from the encoded public key.
bool verifies(std::string_view public_key, std::string_view message, std::string_view sig) {
  nkey_type t{};
  std::array<std::uint8_t, 32> raw{};
  if (!decode_public_key(public_key, t, raw)) return false;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()), &EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

detail::nkey_signer signer_of(std::string_view seed) {
  error_code ec;
  auto s = detail::nkey_signer::from_seed(seed, ec);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nkey_tests)

BOOST_AUTO_TEST_CASE(crc16_xmodem_vectors) {
  struct row {
    std::vector<std::uint8_t> in;
    std::uint16_t crc;
  };
  const auto str = [](std::string_view s) { return std::vector<std::uint8_t>(s.begin(), s.end()); };
  const row rows[] = {
      {{}, 0x0000},
      {str("abc"), 0x9DD6},
      {str("ABC"), 0x3994},
      {str("This is a string"), 0x21E3},
      {str("123456789"), 0x31C3},  // the CRC catalogue's check value for CRC-16/XMODEM
      {str("abcdefghijklmnopqrstuvwxyz0123456789"), 0xCBDE},
      {{0x7F}, 0x8F78},
      {{0x80}, 0x9188},
      {{0xFF}, 0x1EF0},
      {{0x00, 0x01, 0x7D, 0x7E, 0x7F, 0x80, 0xFE, 0xFF}, 0xE26F},
  };
  for (const auto& r : rows) BOOST_TEST(crc16(r.in) == r.crc);
}

BOOST_AUTO_TEST_CASE(base32_and_base64url_rfc4648_vectors) {
  // RFC 4648 section 10, without the padding.
  const std::pair<std::string_view, std::string_view> b32[] = {
      {"", ""},           {"f", "MY"},           {"fo", "MZXQ"},          {"foo", "MZXW6"},
      {"foob", "MZXW6YQ"}, {"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"},
  };
  for (const auto& [plain, enc] : b32) {
    BOOST_TEST(base32_encode(bytes_of(plain)) == enc);
    std::vector<std::uint8_t> out;
    BOOST_TEST(base32_decode(enc, out), enc);
    BOOST_TEST(text_of(out) == plain);
  }
  const std::pair<std::string_view, std::string_view> b64[] = {
      {"", ""},          {"f", "Zg"},         {"fo", "Zm8"},           {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},  // "+/8=" in base64
  };
  for (const auto& [plain, enc] : b64) {
    BOOST_TEST(base64url_encode(bytes_of(plain)) == enc);
    std::vector<std::uint8_t> out;
    BOOST_TEST(base64url_decode(enc, out), enc);
    BOOST_TEST(text_of(out) == plain);
  }
}

BOOST_AUTO_TEST_CASE(round_trips_of_every_length) {
  std::vector<std::uint8_t> data;
  for (std::size_t n = 0; n <= 70; ++n) {
    BOOST_TEST_CONTEXT("length " << n) {
      std::vector<std::uint8_t> out;
      const std::string b32 = base32_encode(data);
      BOOST_TEST(b32.size() == (n * 8 + 4) / 5);
      BOOST_TEST(base32_decode(b32, out));
      BOOST_TEST((out == data));
      const std::string b64 = base64url_encode(data);
      BOOST_TEST(b64.size() == (n * 8 + 5) / 6);
      BOOST_TEST(base64url_decode(b64, out));
      BOOST_TEST((out == data));
    }
    data.push_back(static_cast<std::uint8_t>(n * 151 + 7));
  }
}

BOOST_AUTO_TEST_CASE(decoders_refuse_what_no_encoder_makes) {
  for (std::string_view bad : {"mzxw6",      // lower case
                               "MZXW6=",     // padding
                               "MZXW60",     // '0' and '1' are not in the alphabet
                               "MZ1",
                               "M",          // 1, 3 or 6 characters past a multiple of 8 leave a whole
                               "MZX",        //   unused character
                               "MZXW6Y",
                               "MZ",         // "f" is "MY": 'Z' sets an unused low bit
                               "MZXW6YTBOJ",
                               "MZ XW",
                               "MZXW\n"}) {
    std::vector<std::uint8_t> out{1, 2, 3};
    BOOST_TEST(!base32_decode(bad, out), bad);
    BOOST_TEST(out.empty());
  }
  for (std::string_view bad : {"Zg==", "Zm9v+", "Zm9v/w", "Z", "Zm9vY", "Zh", "Zm9", "Zm 9v", "Zm9v\r"}) {
    std::vector<std::uint8_t> out{1, 2, 3};
    BOOST_TEST(!base64url_decode(bad, out), bad);
    BOOST_TEST(out.empty());
  }
  std::vector<std::uint8_t> out;
  BOOST_TEST(base64url_decode("Zm8", out));  // "fo": the last character's two unused bits are zero
}

BOOST_AUTO_TEST_CASE(the_known_seed_gives_the_known_public_key_and_signature) {
  nkey_type type{};
  std::array<std::uint8_t, 32> raw{};
  BOOST_TEST_REQUIRE(!decode_seed(vector_seed, type, raw));
  BOOST_TEST((type == nkey_type::user));
  BOOST_TEST(encode_seed(type, raw) == vector_seed);

  const auto signer = signer_of(vector_seed);
  BOOST_TEST(signer.valid());
  BOOST_TEST((signer.type() == nkey_type::user));
  BOOST_TEST(signer.public_key() == vector_public_key);
  error_code ec;
  BOOST_TEST(signer.sign_nonce_base64url("nonce", ec) == vector_nonce_sig);
  BOOST_TEST(!ec);

  nkey_type pub_type{};
  std::array<std::uint8_t, 32> pub{};
  BOOST_TEST(decode_public_key(vector_public_key, pub_type, pub));
  BOOST_TEST((pub_type == nkey_type::user));
  BOOST_TEST(encode_public_key(pub_type, pub) == vector_public_key);
}

BOOST_AUTO_TEST_CASE(every_key_type_round_trips_with_its_letters) {
  struct row {
    nkey_type type;
    char public_letter;
    std::string_view seed_letters;
  };
  const row rows[] = {{nkey_type::operator_, 'O', "SO"},
                      {nkey_type::account, 'A', "SA"},
                      {nkey_type::user, 'U', "SU"},
                      {nkey_type::server, 'N', "SN"},
                      {nkey_type::cluster, 'C', "SC"}};
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(to_string(r.type)) {
      const auto key = pattern_key(static_cast<std::uint8_t>(r.public_letter));
      const std::string pub = encode_public_key(r.type, key);
      BOOST_TEST(pub.size() == 56u);
      BOOST_TEST(pub.front() == r.public_letter);
      nkey_type t{};
      std::array<std::uint8_t, 32> raw{};
      BOOST_TEST(decode_public_key(pub, t, raw));
      BOOST_TEST((t == r.type));
      BOOST_TEST((raw == key));

      const std::string seed = encode_seed(r.type, key);
      BOOST_TEST(seed.size() == 58u);
      BOOST_TEST(seed.starts_with(r.seed_letters));
      BOOST_TEST(!decode_seed(seed, t, raw));
      BOOST_TEST((t == r.type));
      BOOST_TEST((raw == key));

      // A seed is not a public key and the other way round.
      BOOST_TEST(!decode_public_key(seed, t, raw));
      BOOST_TEST(decode_seed(pub, t, raw) == error::invalid_nkey_seed);
    }
  }
}

BOOST_AUTO_TEST_CASE(seed_errors_name_the_problem) {
  std::string s(vector_seed);
  BOOST_TEST(seed_problem("") == "wrong length");
  BOOST_TEST(seed_problem(s.substr(1)) == "wrong length");
  BOOST_TEST(seed_problem(s + "A") == "wrong length");
  BOOST_TEST(seed_problem(" " + s.substr(1)) == "bad base32");

  std::string lower = s;
  lower[10] = 'q';
  BOOST_TEST(seed_problem(lower) == "bad base32");
  std::string one = s;
  one[20] = '1';
  BOOST_TEST(seed_problem(one) == "bad base32");
  std::string trailing = s;
  trailing.back() = 'Z';  // the last character of a seed has two unused bits: "GY" -> "GZ" sets one
  BOOST_TEST(seed_problem(trailing) == "bad base32");

  std::string flipped = s;
  flipped[30] = flipped[30] == 'A' ? 'B' : 'A';
  BOOST_TEST(seed_problem(flipped) == "bad checksum");

  // Well-formed, checksummed, but not a seed: a public-key prefix byte, then an unknown type inside a seed prefix.
  BOOST_TEST(seed_problem(seed_text_with_prefix(static_cast<std::uint8_t>(nkey_type::user), 0)) == "not a seed");
  constexpr std::uint8_t unknown = 1 << 3;  // 'B'
  BOOST_TEST(seed_problem(seed_text_with_prefix(nkey_seed_prefix | (unknown >> 5), (unknown & 0x1f) << 3)) ==
             "unknown key type");
  // The seed prefix itself is not a key type either ("SS...").
  BOOST_TEST(seed_problem(seed_text_with_prefix(nkey_seed_prefix | (nkey_seed_prefix >> 5),
                                                (nkey_seed_prefix & 0x1f) << 3)) == "unknown key type");
}

BOOST_AUTO_TEST_CASE(signatures_verify_with_the_public_key) {
  const std::string seed = encode_seed(nkey_type::account, pattern_key(77));
  const auto signer = signer_of(seed);
  BOOST_TEST(signer.public_key().front() == 'A');
  error_code ec;
  const std::string message = "a nonce: TzB4c2l0ZQ";
  const std::string sig = signer.sign(message, ec);
  BOOST_TEST_REQUIRE(!ec);
  BOOST_TEST(sig.size() == 64u);
  BOOST_TEST(verifies(signer.public_key(), message, sig));
  BOOST_TEST(!verifies(signer.public_key(), message + "x", sig));
  BOOST_TEST(!verifies(std::string(vector_public_key), message, sig));  // another key

  // The nonce form is the same signature in base64url.
  const std::string b64 = signer.sign_nonce_base64url(message, ec);
  std::vector<std::uint8_t> decoded;
  BOOST_TEST(base64url_decode(b64, decoded));
  BOOST_TEST(text_of(decoded) == sig);
  BOOST_TEST(b64.find('=') == std::string::npos);

  // Moving keeps the key; the moved-from signer signs nothing.
  detail::nkey_signer moved = signer_of(seed);
  detail::nkey_signer other = std::move(moved);
  BOOST_TEST(verifies(other.public_key(), "m", other.sign("m", ec)));
}

BOOST_AUTO_TEST_CASE(a_signer_without_a_key_fails) {
  error_code ec;
  const auto bad = detail::nkey_signer::from_seed("SUBADSEED", ec);
  BOOST_TEST(ec == error::invalid_nkey_seed);
  BOOST_TEST(!bad.valid());
  BOOST_TEST(bad.sign("x", ec).empty());
  BOOST_TEST(ec == error::signing_failed);
  BOOST_TEST(detail::nkey_signer{}.sign_nonce_base64url("x", ec).empty());
  BOOST_TEST(ec == error::signing_failed);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(creds_tests)

namespace {

// A JWT-shaped string (its parts are not checked as JSON or as a signature by the parser).
const std::string test_jwt = base64url_encode(bytes_of(R"({"typ":"JWT","alg":"ed25519-nkey"})")) + "." +
                             base64url_encode(bytes_of(R"({"sub":"U","nats":{"type":"user"}})")) + "." +
                             base64url_encode(pattern_key(3));

std::string creds_text(std::string_view jwt, std::string_view seed, std::string_view eol = "\n") {
  std::string t;
  const auto line = [&](std::string_view l) {
    t += l;
    t += eol;
  };
  line("-----BEGIN NATS USER JWT-----");
  line(jwt);
  line("------END NATS USER JWT------");
  line("");
  line("************************* IMPORTANT *************************");
  line("Comment text between the blocks is ignored.");
  line("");
  line("-----BEGIN USER NKEY SEED-----");
  line(seed);
  line("------END USER NKEY SEED------");
  line("");
  line("*************************************************************");
  return t;
}

// Parses, expecting success, and checks the result.
void parses(const std::string& text) {
  credentials c;
  std::string problem;
  const error_code ec = parse_creds(text, c, problem);
  BOOST_TEST(!ec, problem);
  BOOST_TEST(problem.empty());
  BOOST_TEST(c.jwt == test_jwt);
  BOOST_TEST(c.seed == vector_seed);
}

// Parses, expecting `expected` and `why`; the problem text never holds the seed or a piece of it, and the output
// is left empty.
void refused(const std::string& text, error_code expected, std::string_view why) {
  credentials c;
  c.jwt = "old";
  c.seed = "SUOLD";
  std::string problem;
  const error_code ec = parse_creds(text, c, problem);
  BOOST_TEST(ec == expected, why << ": " << ec.message());
  BOOST_TEST(problem == why);
  BOOST_TEST(c.jwt.empty());
  BOOST_TEST(c.seed.empty());
  BOOST_TEST(problem.find(vector_seed.substr(2, 12)) == std::string::npos);
  BOOST_TEST(problem.find(vector_seed.substr(40, 12)) == std::string::npos);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_layouts_nsc_and_editors_produce) {
  parses(creds_text(test_jwt, vector_seed));
  parses(creds_text(test_jwt, vector_seed, "\r\n"));
  std::string no_final_newline = creds_text(test_jwt, vector_seed);
  no_final_newline.resize(no_final_newline.rfind("------END USER NKEY SEED------") + 30);
  BOOST_TEST(no_final_newline.back() == '-');
  parses(no_final_newline);
  // Only the two blocks, no comment, no final newline.
  parses("-----BEGIN NATS USER JWT-----\n" + test_jwt +
         "\n------END NATS USER JWT------\n-----BEGIN USER NKEY SEED-----\n" + std::string(vector_seed) +
         "\n------END USER NKEY SEED------");
  // Spaces and tabs around lines, blank lines inside blocks, a byte order mark, 3-dash markers.
  parses("\xEF\xBB\xBF  -----BEGIN NATS USER JWT-----  \r\n\r\n\t" + test_jwt +
         "  \r\n\r\n ------END NATS USER JWT------\r\n\n   \n---BEGIN USER NKEY SEED---\n\n  " +
         std::string(vector_seed) + "\t\n\n---END USER NKEY SEED---\n\n");
  // The seed block first.
  parses("-----BEGIN USER NKEY SEED-----\n" + std::string(vector_seed) +
         "\n------END USER NKEY SEED------\n-----BEGIN NATS USER JWT-----\n" + test_jwt +
         "\n------END NATS USER JWT------\n");
}

BOOST_AUTO_TEST_CASE(missing_blocks) {
  const std::string full = creds_text(test_jwt, vector_seed);
  const std::string jwt_only = full.substr(0, full.find("-----BEGIN USER NKEY SEED"));
  const std::string seed_only = full.substr(full.find("-----BEGIN USER NKEY SEED"));
  refused(jwt_only, error::invalid_credentials, "no seed block");
  refused(seed_only, error::invalid_credentials, "no user JWT block");
  refused("", error::invalid_credentials, "no user JWT block");
  refused("garbage\x01\xff\n-----\n---- x ----\n", error::invalid_credentials, "no user JWT block");
  refused(std::string(vector_seed), error::invalid_credentials, "no user JWT block");  // a bare seed file
  refused("-----BEGIN NATS USER JWT-----\n" + test_jwt + "\n", error::invalid_credentials,
          "the JWT block has no END line");
  refused(jwt_only + "-----BEGIN USER NKEY SEED-----\n" + std::string(vector_seed), error::invalid_credentials,
          "the seed block has no END line");
  refused("-----BEGIN NATS USER JWT-----\n" + test_jwt + "\n-----BEGIN USER NKEY SEED-----\n" +
              std::string(vector_seed) + "\n------END USER NKEY SEED------\n",
          error::invalid_credentials, "the JWT block has no END line");
  refused(creds_text("", vector_seed), error::invalid_credentials, "the JWT block is empty");
  refused(creds_text(test_jwt, ""), error::invalid_credentials, "the seed block is empty");
}

BOOST_AUTO_TEST_CASE(a_malformed_jwt) {
  const std::string two_parts = test_jwt.substr(0, test_jwt.rfind('.'));
  refused(creds_text(two_parts, vector_seed), error::invalid_credentials, "the JWT is not three base64url parts");
  refused(creds_text(test_jwt + ".x4", vector_seed), error::invalid_credentials,
          "the JWT is not three base64url parts");
  refused(creds_text(test_jwt + "=", vector_seed), error::invalid_credentials,
          "the JWT is not three base64url parts");
  refused(creds_text("a..b", vector_seed), error::invalid_credentials, "the JWT is not three base64url parts");
  BOOST_TEST(looks_like_jwt(test_jwt));
  BOOST_TEST(looks_like_jwt("ab.cd.ef"));
  for (std::string_view bad :
       {"", "..", "a.b.c", "ab.cd", "ab.cd.ef.gh", "ab.c+.ef", "ab.cd.e/", "ab.cd.ef=", "ab cd.ef.gh"})
    BOOST_TEST(!looks_like_jwt(bad), bad);
}

BOOST_AUTO_TEST_CASE(a_bad_seed_or_one_of_another_type) {
  const std::string account_seed = encode_seed(nkey_type::account, pattern_key(5));
  refused(creds_text(test_jwt, account_seed), error::invalid_credentials,
          "the seed is not a user seed (its type: account)");
  refused(creds_text(test_jwt, encode_seed(nkey_type::operator_, pattern_key(6))), error::invalid_credentials,
          "the seed is not a user seed (its type: operator)");
  std::string flipped(vector_seed);
  flipped[30] = flipped[30] == 'A' ? 'B' : 'A';
  refused(creds_text(test_jwt, flipped), error::invalid_nkey_seed, "the seed: bad checksum");
  refused(creds_text(test_jwt, vector_seed.substr(0, 50)), error::invalid_nkey_seed, "the seed: wrong length");
  refused(creds_text(test_jwt, "su" + std::string(vector_seed.substr(2))), error::invalid_nkey_seed,
          "the seed: bad base32");
  refused(creds_text(test_jwt, vector_public_key), error::invalid_nkey_seed, "the seed: wrong length");
  // A seed split over two lines is joined (and then checked like any other).
  parses(creds_text(test_jwt, std::string(vector_seed.substr(0, 20)) + "\n" + std::string(vector_seed.substr(20))));
}

BOOST_AUTO_TEST_CASE(a_second_parse_starts_afresh) {
  credentials c;
  std::string problem;
  BOOST_TEST(!parse_creds(creds_text(test_jwt, vector_seed), c, problem));
  BOOST_TEST(parse_creds("nothing", c, problem) == error::invalid_credentials);
  BOOST_TEST(c.jwt.empty());
  BOOST_TEST(c.seed.empty());
  BOOST_TEST(!parse_creds(creds_text(test_jwt, vector_seed), c, problem));
  BOOST_TEST(problem.empty());
  credentials moved = std::move(c);
  BOOST_TEST(moved.seed == vector_seed);
}

BOOST_AUTO_TEST_SUITE_END()
