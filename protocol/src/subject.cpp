#include <natsbus/protocol/subject.hpp>

namespace natsbus::protocol {
namespace {

// Whitespace, control characters and DEL end an argument on the wire or are not printable: never in a name.
constexpr bool is_forbidden(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x21 || u == 0x7f;
}

enum class wildcards { none, allowed };

// As the server does, '*' and '>' are wildcards only as whole tokens; inside a token ("a*b") they are plain
// characters.
bool valid_subject(std::string_view s, wildcards w) noexcept {
  if (s.empty()) return false;
  std::size_t token_start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] != '.') {
      if (is_forbidden(s[i])) return false;
      continue;
    }
    const std::size_t len = i - token_start;
    if (len == 0) return false;
    if (len == 1) {
      const char c = s[token_start];
      if (c == '*' || c == '>') {
        if (w == wildcards::none) return false;
        if (c == '>' && i != s.size()) return false;  // '>' only as the last token
      }
    }
    token_start = i + 1;
  }
  return true;
}

// Splits off the next token; `rest` is left after the '.' (or empty at the end).
std::string_view next_token(std::string_view& rest, bool& more) noexcept {
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) {
    auto t = rest;
    rest = {};
    more = false;
    return t;
  }
  auto t = rest.substr(0, dot);
  rest.remove_prefix(dot + 1);
  more = true;
  return t;
}

}  // namespace

bool is_valid_publish_subject(std::string_view subject) noexcept { return valid_subject(subject, wildcards::none); }

bool is_valid_subscription_subject(std::string_view pattern) noexcept {
  return valid_subject(pattern, wildcards::allowed);
}

bool is_valid_queue_group(std::string_view group) noexcept {
  if (group.empty()) return false;
  for (char c : group) {
    if (is_forbidden(c)) return false;
  }
  return true;
}

bool subject_matches(std::string_view pattern, std::string_view subject) noexcept {
  if (pattern.empty() || subject.empty()) return false;
  bool pattern_more = true;
  bool subject_more = true;
  while (pattern_more && subject_more) {
    const auto p = next_token(pattern, pattern_more);
    const auto s = next_token(subject, subject_more);
    if (p == ">") return !pattern_more;  // one or more tokens (s is one); only valid as the last
    if (p != "*" && p != s) return false;
  }
  return !pattern_more && !subject_more;
}

}  // namespace natsbus::protocol
