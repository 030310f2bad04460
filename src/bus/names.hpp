// Internal: spellings of configuration enumerators ("create_only", "CreateOnly", "create-only", ...).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace natsbus::detail {

inline constexpr bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }
inline constexpr bool is_lower_or_digit(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
inline constexpr char to_lower(char c) noexcept { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

// Writes the snake_case form of an enumerator spelling into buf: any case, '-' for '_', and camel case
// ("CreateOnly" -> "create_only"). Returns the length, or nothing when it does not fit.
inline std::optional<std::size_t> normalize_name(std::string_view s, char* buf, std::size_t cap) noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i > 0 && is_upper(c) && is_lower_or_digit(s[i - 1])) {
      if (n == cap) return std::nullopt;
      buf[n++] = '_';
    }
    if (n == cap) return std::nullopt;
    buf[n++] = c == '-' ? '_' : to_lower(c);
  }
  return n;
}

// Looks a spelling up in a table of snake_case names (see normalize_name).
template <class T, std::size_t N>
std::optional<T> lookup_name(std::string_view s, const std::pair<std::string_view, T> (&table)[N],
                             std::string_view optional_prefix = {}) noexcept {
  char buf[64];
  const auto n = normalize_name(s, buf, sizeof buf);
  if (!n) return std::nullopt;
  std::string_view norm(buf, *n);
  if (!optional_prefix.empty() && norm.size() > optional_prefix.size() && norm.starts_with(optional_prefix))
    norm.remove_prefix(optional_prefix.size());
  for (const auto& [name, value] : table)
    if (norm == name) return value;
  return std::nullopt;
}

}  // namespace natsbus::detail
