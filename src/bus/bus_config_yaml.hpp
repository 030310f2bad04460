// Internal: the pieces of the YAML configuration walk that more than one source uses (bus_config.cpp, which
// owns the document, and bus_config_subscribers.cpp). An error is thrown as config_failure and turned into
// (invalid_config, "line N: path: what") by parse_event_bus_config, which catches everything.
#pragma once

#include <natsbus/bus_config.hpp>

#include "bus/names.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace natsbus::detail::config_yaml {

struct config_failure {
  int line;
  std::string path;
  std::string what;
};

// A value's place in the document: its dotted path and 1-based line.
struct where {
  std::string path;
  int line;

  [[nodiscard]] where field(std::string_view key, int at_line) const {
    return {path.empty() ? std::string(key) : path + "." + std::string(key), at_line};
  }
  [[nodiscard]] where item(std::size_t index, int at_line) const {
    return {path + "[" + std::to_string(index) + "]", at_line};
  }
};

[[noreturn]] void fail(const where& w, std::string what);
// A node's 1-based line; a null (or missing) node takes `fallback`, its key's line.
int line_of(const YAML::Node& n, int fallback);
// A value quoted for a message, cut short when long.
std::string quoted(std::string_view s);
// What a node is, for a message: its quoted text, "a list", "a map" or "nothing (null)".
std::string kind(const YAML::Node& n);
std::size_t edit_distance(std::string_view a, std::string_view b);

std::string as_string(const YAML::Node& v, const where& w);
std::string as_nonempty_string(const YAML::Node& v, const where& w);
std::int64_t as_int(const YAML::Node& v, const where& w, std::int64_t lo, std::int64_t hi);
std::chrono::nanoseconds as_duration(const YAML::Node& v, const where& w);

// Calls f(key, value, where-of-value) for each entry of a map section; a null section is an empty one.
// Keys must be strings, known, and not repeated.
template <class F>
void each_field(const YAML::Node& map, const where& w, std::initializer_list<std::string_view> known, F&& f) {
  if (map.IsNull()) return;
  if (!map.IsMap()) fail(w, "expected a map, got " + kind(map));
  std::set<std::string, std::less<>> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: `it->` is a proxy that dies with the full expression. (A Node is a handle; copying is cheap.)
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const int key_line = line_of(key, w.line);
    if (!key.IsScalar()) fail(w.field("?", key_line), "a key must be a name, got " + kind(key));
    const std::string& name = key.Scalar();
    const where kw = w.field(name, key_line);
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string what = "unknown field";
      std::string_view best;
      std::size_t best_d = 3;  // suggest only close names
      for (auto k : known) {
        const auto d = edit_distance(name, k);
        if (d < best_d) {
          best_d = d;
          best = k;
        }
      }
      if (!best.empty()) what += " (did you mean " + std::string(best) + "?)";
      fail(kw, std::move(what));
    }
    if (!seen.insert(name).second) fail(kw, "field given twice");
    f(std::string_view(name), value, where{kw.path, line_of(value, key_line)});
  }
}

// An enumerator by its name in `table` (any case, '-' for '_', camel case: see detail::lookup_name).
template <class T, std::size_t N>
T as_enum(const YAML::Node& v, const where& w, const std::pair<std::string_view, T> (&table)[N],
          std::string_view what, std::string_view expected) {
  if (v.IsScalar()) {
    if (auto e = detail::lookup_name(v.Scalar(), table)) return *e;
    fail(w, "unknown " + std::string(what) + " " + quoted(v.Scalar()) + " (expected " + std::string(expected) + ")");
  }
  fail(w, "expected " + std::string(expected) + ", got " + kind(v));
}

// eventbus.nats.subscribers (bus_config_subscribers.cpp): replaces `out` with the list; null is an empty list.
void parse_subscribers(const YAML::Node& node, const where& w, std::vector<subscriber_config>& out);

}  // namespace natsbus::detail::config_yaml
