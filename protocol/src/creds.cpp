#include <natsbus/protocol/creds.hpp>
#include <natsbus/protocol/nkeys.hpp>

#include <array>
#include <cstdint>

namespace natsbus::protocol {

namespace {

std::string_view trim(std::string_view s) noexcept {
  constexpr std::string_view space = " \t\r\f\v";
  const auto b = s.find_first_not_of(space);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

// The text between the dash runs of a marker line ("-----BEGIN NATS USER JWT-----" gives "BEGIN NATS USER JWT"),
// or empty when the line is not one.
std::string_view marker_text(std::string_view line) noexcept {
  const auto lead = line.find_first_not_of('-');
  if (lead == std::string_view::npos || lead < 3) return {};
  const auto last = line.find_last_not_of('-');
  if (line.size() - 1 - last < 3) return {};
  return trim(line.substr(lead, last + 1 - lead));
}

bool starts_word(std::string_view text, std::string_view word) noexcept {
  return text.starts_with(word) && (text.size() == word.size() || text[word.size()] == ' ');
}

bool base64url_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

enum class block { none, jwt, seed, other };

}  // namespace

credentials::~credentials() { secure_wipe(seed); }

bool looks_like_jwt(std::string_view jwt) noexcept {
  int parts = 0;
  std::size_t start = 0;
  while (true) {
    const auto dot = jwt.find('.', start);
    const auto part = jwt.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    // Unpadded base64url never leaves a single character past a multiple of four.
    if (part.empty() || part.size() % 4 == 1) return false;
    for (const char c : part)
      if (!base64url_char(c)) return false;
    if (++parts > 3) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 3;
}

error_code parse_creds(std::string_view text, credentials& out, std::string& problem) {
  out.jwt.clear();
  secure_wipe(out.seed);
  problem.clear();
  credentials found;
  // Reserved up front: a seed appended into a growing string would leave copies in freed memory.
  found.seed.reserve(text.size());
  bool have_jwt = false, have_seed = false;

  const auto fail = [&](error_code ec, std::string why) {
    out.jwt.clear();
    problem = std::move(why);
    return ec;  // the seed read so far is wiped by `found`'s destructor
  };

  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte order mark from a Windows editor
  block in = block::none;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto nl = text.find('\n', pos);
    const auto line = trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = (nl == std::string_view::npos) ? text.size() + 1 : nl + 1;

    const auto marker = marker_text(line);
    const bool begin = starts_word(marker, "BEGIN");
    const bool end = starts_word(marker, "END");
    if (in != block::none) {
      if (end) {
        in = block::none;
      } else if (begin) {
        return fail(error::invalid_credentials, in == block::jwt    ? "the JWT block has no END line"
                                                : in == block::seed ? "the seed block has no END line"
                                                                    : "a block has no END line");
      } else if (in == block::jwt) {
        out.jwt.append(line);
      } else if (in == block::seed) {
        found.seed.append(line);
      }
      continue;
    }
    if (!begin) continue;  // comment text between blocks
    const auto label = marker.substr(5);
    if (label.ends_with("JWT") && !have_jwt) {
      in = block::jwt;
      have_jwt = true;
    } else if (label.ends_with("SEED") && !have_seed) {
      in = block::seed;
      have_seed = true;
    } else {
      in = block::other;  // a block of some other kind, or a second one: skipped
    }
  }
  if (in == block::jwt) return fail(error::invalid_credentials, "the JWT block has no END line");
  if (in == block::seed) return fail(error::invalid_credentials, "the seed block has no END line");
  if (in == block::other) return fail(error::invalid_credentials, "a block has no END line");
  if (!have_jwt) return fail(error::invalid_credentials, "no user JWT block");
  if (!have_seed) return fail(error::invalid_credentials, "no seed block");
  if (out.jwt.empty()) return fail(error::invalid_credentials, "the JWT block is empty");
  if (found.seed.empty()) return fail(error::invalid_credentials, "the seed block is empty");
  if (!looks_like_jwt(out.jwt)) return fail(error::invalid_credentials, "the JWT is not three base64url parts");

  nkey_type type{};
  std::array<std::uint8_t, 32> raw{};
  std::string_view why;
  const error_code ec = decode_seed(found.seed, type, raw, why);
  secure_wipe(raw.data(), raw.size());  // only the check was wanted here; the signer decodes it again
  if (ec) return fail(ec, "the seed: " + std::string(why));
  if (type != nkey_type::user)
    return fail(error::invalid_credentials,
                "the seed is not a user seed (its type: " + std::string(to_string(type)) + ")");
  out.seed = std::move(found.seed);
  return {};
}

}  // namespace natsbus::protocol
