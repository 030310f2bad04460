// Configuration values outside YAML: strategy names and Go-style durations.
#include <natsbus/bus_config.hpp>

#include "bus/names.hpp"

#include <chrono>
#include <string_view>

namespace natsbus {

// ---- strategies and durations ----

std::string_view to_string(bus_backend b) noexcept { return b == bus_backend::memory ? "memory" : "nats"; }

std::string_view to_string(topic_strategy s) noexcept {
  switch (s) {
    case topic_strategy::create_only:
      return "create_only";
    case topic_strategy::create_or_update:
      return "create_or_update";
    case topic_strategy::validate_only:
      return "validate_only";
    case topic_strategy::skip:
      return "skip";
  }
  return "unknown";
}

namespace {

constexpr std::pair<std::string_view, topic_strategy> strategy_names[] = {
    {"create_only", topic_strategy::create_only},
    {"create_or_update", topic_strategy::create_or_update},
    {"validate_only", topic_strategy::validate_only},
    {"skip", topic_strategy::skip},
};

}  // namespace

std::optional<topic_strategy> parse_topic_strategy(std::string_view s) noexcept {
  // Also the Go client's names: StrategyCreateOnly, ...
  return detail::lookup_name(s, strategy_names, "strategy_");
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) noexcept {
  using rep = std::chrono::nanoseconds::rep;
  if (s.empty()) return std::nullopt;

  struct unit {
    std::string_view name;
    rep ns;
  };
  // Longest spellings first where one is a prefix of another ("ms" before "m").
  constexpr unit units[] = {
      {"ns", 1},
      {"us", 1'000},
      {"\xc2\xb5s", 1'000},  // U+00B5 micro sign
      {"\xce\xbcs", 1'000},  // U+03BC Greek mu
      {"ms", 1'000'000},
      {"s", 1'000'000'000},
      {"m", 60LL * 1'000'000'000},
      {"h", 3600LL * 1'000'000'000},
      {"d", 86400LL * 1'000'000'000},
  };

  rep total = 0;
  std::size_t i = 0;
  bool bare_allowed = true;  // a bare number (seconds) only as the whole text
  while (i < s.size()) {
    // number: digits [ '.' digits ], at least one digit in all
    rep whole = 0;
    bool whole_overflow = false;
    const std::size_t whole_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (__builtin_mul_overflow(whole, rep{10}, &whole) || __builtin_add_overflow(whole, rep{s[i] - '0'}, &whole))
        whole_overflow = true;
      ++i;
    }
    bool has_digits = i > whole_start;
    std::string_view frac;
    if (i < s.size() && s[i] == '.') {
      const std::size_t frac_start = ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
      frac = s.substr(frac_start, i - frac_start);
      has_digits = has_digits || !frac.empty();
    }
    if (!has_digits || whole_overflow) return std::nullopt;

    rep unit_ns = 0;
    if (i == s.size()) {
      if (!bare_allowed) return std::nullopt;  // "1h30": a number without a unit after a unit
      unit_ns = 1'000'000'000;
    } else {
      for (const auto& u : units) {
        if (s.substr(i).starts_with(u.name)) {
          unit_ns = u.ns;
          i += u.name.size();
          break;
        }
      }
      if (unit_ns == 0) return std::nullopt;
    }
    bare_allowed = false;

    rep part = 0;
    if (__builtin_mul_overflow(whole, unit_ns, &part)) return std::nullopt;
    // The fraction, digit by digit at a tenth of the previous digit's weight; below a nanosecond it is dropped.
    rep weight = unit_ns;
    for (char c : frac) {
      weight /= 10;
      if (weight == 0) break;
      if (__builtin_add_overflow(part, rep{c - '0'} * weight, &part)) return std::nullopt;
    }
    if (__builtin_add_overflow(total, part, &total)) return std::nullopt;
  }
  return std::chrono::nanoseconds(total);
}

}  // namespace natsbus
