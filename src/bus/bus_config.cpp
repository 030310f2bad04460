// The YAML loader for event_bus_config. The document is walked by the schema, never generically: each section
// lists the keys it knows, so a misspelt key is an error rather than a silently ignored default, and an alias
// that makes the node graph cyclic cannot make the walk recurse. Errors inside the walk are thrown as
// config_failure and turned into (invalid_config, "line N: path: what") at the two entry points, which
// catch everything.
// The helpers other sources share (the durable subscribers are parsed in bus_config_subscribers.cpp) are
// declared in bus_config_yaml.hpp.
#include <natsbus/bus_config.hpp>
#include <natsbus/protocol/names.hpp>
#include <natsbus/protocol/subject.hpp>
#include <natsbus/protocol/url.hpp>

#include "bus/bus_config_yaml.hpp"
#include "bus/names.hpp"

#include <yaml-cpp/yaml.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <utility>

namespace natsbus {

// ---- the YAML walk ----

namespace detail::config_yaml {

[[noreturn]] void fail(const where& w, std::string what) { throw config_failure{w.line, w.path, std::move(what)}; }

// A null value's mark points at the token after it (often the next line), so nulls take the key's line.
int line_of(const YAML::Node& n, int fallback) {
  if (!n.IsDefined() || n.IsNull()) return fallback;
  const auto m = n.Mark();
  return m.line >= 0 ? m.line + 1 : fallback;
}

// A value quoted for a message, cut short when long.
std::string quoted(std::string_view s) {
  constexpr std::size_t max = 80;
  if (s.size() <= max) return "'" + std::string(s) + "'";
  return "'" + std::string(s.substr(0, max)) + "...'";
}

std::string kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return quoted(n.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
  }
  return "something else";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string as_string(const YAML::Node& v, const where& w) {
  if (!v.IsScalar()) fail(w, "expected a string, got " + kind(v));
  return v.Scalar();
}

std::string as_nonempty_string(const YAML::Node& v, const where& w) {
  auto s = as_string(v, w);
  if (s.empty()) fail(w, "must not be empty");
  return s;
}

std::int64_t as_int(const YAML::Node& v, const where& w, std::int64_t lo, std::int64_t hi) {
  auto range = [&] {
    if (hi == std::numeric_limits<std::int64_t>::max()) return "must be at least " + std::to_string(lo);
    return "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
  };
  if (!v.IsScalar()) fail(w, "expected an integer, got " + kind(v));
  std::string_view s = v.Scalar();
  if (s.size() > 1 && s.front() == '+' && s[1] != '-') s.remove_prefix(1);
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) fail(w, "number " + quoted(v.Scalar()) + " is too large; " + range());
  if (ec != std::errc{} || ptr != s.data() + s.size() || s.empty())
    fail(w, "expected an integer, got " + kind(v));
  if (value < lo || value > hi) fail(w, std::to_string(value) + " is out of range; " + range());
  return value;
}

std::chrono::nanoseconds as_duration(const YAML::Node& v, const where& w) {
  if (v.IsScalar()) {
    if (auto d = parse_duration(v.Scalar())) return *d;
  }
  fail(w, "invalid duration " + kind(v) + " (expected e.g. 30s, 500ms, 90m, 24h, 1h30m, 2d; a bare number is seconds)");
}

}  // namespace detail::config_yaml

namespace {

using namespace detail::config_yaml;

// A URL for a message, without its credentials.
std::string quoted_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  const auto start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const auto at = url.find('@', start);
  if (at == std::string_view::npos) return quoted(url);
  return quoted(std::string(url.substr(0, start)) + "***" + std::string(url.substr(at)));
}

bool as_bool(const YAML::Node& v, const where& w) {
  if (v.IsScalar()) {
    constexpr std::pair<std::string_view, bool> names[] = {{"true", true},  {"yes", true}, {"on", true},
                                                           {"false", false}, {"no", false}, {"off", false}};
    const auto& s = v.Scalar();
    if (s.size() <= 5) {
      char buf[8];
      std::size_t n = 0;
      for (char c : s) buf[n++] = detail::to_lower(c);
      for (const auto& [name, value] : names)
        if (std::string_view(buf, n) == name) return value;
    }
  }
  fail(w, "expected true or false, got " + kind(v));
}

// -1 (or 0) is "no limit" for the size limits.
std::int64_t as_limit(const YAML::Node& v, const where& w, std::int64_t hi = std::numeric_limits<std::int64_t>::max()) {
  return as_int(v, w, -1, hi);
}

int as_replicas(const YAML::Node& v, const where& w) { return static_cast<int>(as_int(v, w, 1, 5)); }

std::chrono::milliseconds as_timeout(const YAML::Node& v, const where& w) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(as_duration(v, w));
  if (ms.count() < 1) fail(w, "must be at least 1ms");
  return ms;
}

// A list of strings; a single string is a list of one.
std::vector<std::string> as_string_list(const YAML::Node& v, const where& w) {
  std::vector<std::string> out;
  if (v.IsScalar()) {
    out.push_back(v.Scalar());
  } else if (v.IsSequence()) {
    std::size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) out.push_back(as_string(*it, w.item(i, line_of(*it, w.line))));
  } else {
    fail(w, "expected a list of strings, got " + kind(v));
  }
  if (out.empty()) fail(w, "must not be empty");
  return out;
}

constexpr std::pair<std::string_view, storage_type> storage_names[] = {{"file", storage_type::file},
                                                                       {"memory", storage_type::memory}};
constexpr std::pair<std::string_view, discard_policy> discard_names[] = {{"old", discard_policy::old},
                                                                         {"new", discard_policy::new_}};
constexpr std::pair<std::string_view, retention_policy> retention_names[] = {
    {"limits", retention_policy::limits},
    {"interest", retention_policy::interest},
    {"workqueue", retention_policy::workqueue},
    {"work_queue", retention_policy::workqueue}};
constexpr std::pair<std::string_view, topic_persistence> persistence_names[] = {
    {"auto", topic_persistence::automatic},
    {"automatic", topic_persistence::automatic},
    {"persistent", topic_persistence::persistent},
    {"ephemeral", topic_persistence::ephemeral}};
constexpr std::pair<std::string_view, bus_backend> backend_names[] = {{"nats", bus_backend::nats},
                                                                      {"memory", bus_backend::memory}};
constexpr std::pair<std::string_view, stream_mapping> mapping_names[] = {{"per_topic", stream_mapping::per_topic},
                                                                         {"shared", stream_mapping::shared}};

topic_strategy as_strategy(const YAML::Node& v, const where& w) {
  if (v.IsScalar()) {
    if (auto s = parse_topic_strategy(v.Scalar())) return *s;
    fail(w, "unknown strategy " + quoted(v.Scalar()) + " (expected create_only, create_or_update, validate_only or skip)");
  }
  fail(w, "expected create_only, create_or_update, validate_only or skip, got " + kind(v));
}

void check_duplicate_window(std::chrono::nanoseconds window, std::chrono::nanoseconds max_age, const where& w) {
  if (window.count() > 0 && max_age.count() > 0 && window > max_age)
    fail(w, "must not be longer than the retention (max_age)");
}

stream_config parse_stream(const YAML::Node& node, const where& w) {
  stream_config sc;
  bool has_name = false;
  std::optional<where> window_at;
  each_field(node, w,
             {"name", "subjects", "storage", "replicas", "retention", "max_age", "max_messages", "max_bytes",
              "max_message_size", "discard", "duplicate_window", "description"},
             [&](std::string_view key, const YAML::Node& v, const where& at) {
               if (key == "name") {
                 sc.name = as_string(v, at);
                 if (!protocol::is_valid_stream_name(sc.name))
                   fail(at, "invalid stream name " + quoted(sc.name) + " (" +
                                std::string(protocol::stream_name_rule) + ")");
                 has_name = true;
               } else if (key == "subjects") {
                 sc.subjects = as_string_list(v, at);
                 for (std::size_t i = 0; i < sc.subjects.size(); ++i) {
                   if (!protocol::is_valid_subscription_subject(sc.subjects[i]))
                     fail(v.IsSequence() ? at.item(i, line_of(v[i], at.line)) : at,
                          "invalid subject " + quoted(sc.subjects[i]));
                 }
               } else if (key == "storage") {
                 sc.storage = as_enum(v, at, storage_names, "storage", "file or memory");
               } else if (key == "replicas") {
                 sc.num_replicas = as_replicas(v, at);
               } else if (key == "retention") {
                 sc.retention = as_enum(v, at, retention_names, "retention policy", "limits, interest or workqueue");
               } else if (key == "max_age") {
                 sc.max_age = as_duration(v, at);
               } else if (key == "max_messages") {
                 sc.max_msgs = as_limit(v, at);
               } else if (key == "max_bytes") {
                 sc.max_bytes = as_limit(v, at);
               } else if (key == "max_message_size") {
                 sc.max_msg_size = static_cast<std::int32_t>(as_limit(v, at, std::numeric_limits<std::int32_t>::max()));
               } else if (key == "discard") {
                 sc.discard = as_enum(v, at, discard_names, "discard policy", "old or new");
               } else if (key == "duplicate_window") {
                 sc.duplicate_window = as_duration(v, at);
                 window_at = at;
               } else if (key == "description") {
                 sc.description = as_string(v, at);
               }
             });
  if (!has_name) fail(w.field("name", w.line), "missing (a stream needs a name)");
  if (window_at) check_duplicate_window(sc.duplicate_window, sc.max_age, *window_at);
  return sc;
}

// A topic's options; with `name`, also its name (precreation.topics), which is then required.
topic_options parse_topic_options(const YAML::Node& node, const where& w, std::string* name, int* name_line) {
  topic_options o;
  bool has_name = false;
  std::optional<where> window_at;
  std::initializer_list<std::string_view> option_keys = {
      "persistence", "retention", "max_messages", "max_bytes", "max_message_size", "replicas",
      "storage",     "discard",   "duplicate_window", "description"};
  std::initializer_list<std::string_view> topic_keys = {
      "name",    "persistence", "retention", "max_messages", "max_bytes", "max_message_size",
      "replicas", "storage",    "discard",   "duplicate_window", "description"};
  each_field(node, w, name ? topic_keys : option_keys, [&](std::string_view key, const YAML::Node& v, const where& at) {
    if (key == "name") {
      *name = as_nonempty_string(v, at);
      if (!protocol::is_valid_publish_subject(*name))
        fail(at, "invalid topic " + quoted(*name) + " (must be a NATS subject without wildcards)");
      *name_line = at.line;
      has_name = true;
    } else if (key == "persistence") {
      o.persistence = as_enum(v, at, persistence_names, "persistence", "persistent, ephemeral or auto");
    } else if (key == "retention") {
      o.retention_time = as_duration(v, at);
    } else if (key == "max_messages") {
      o.max_messages = as_limit(v, at);
    } else if (key == "max_bytes") {
      o.max_bytes = as_limit(v, at);
    } else if (key == "max_message_size") {
      o.max_message_size = static_cast<std::int32_t>(as_limit(v, at, std::numeric_limits<std::int32_t>::max()));
    } else if (key == "replicas") {
      o.replicas = as_replicas(v, at);
    } else if (key == "storage") {
      o.storage = as_enum(v, at, storage_names, "storage", "file or memory");
    } else if (key == "discard") {
      o.discard = as_enum(v, at, discard_names, "discard policy", "old or new");
    } else if (key == "duplicate_window") {
      o.duplicate_window = as_duration(v, at);
      window_at = at;
    } else if (key == "description") {
      o.description = as_string(v, at);
    }
  });
  if (name && !has_name) fail(w.field("name", w.line), "missing (a topic needs a name)");
  if (window_at) check_duplicate_window(o.duplicate_window, o.retention_time, *window_at);
  return o;
}

void parse_jetstream(const YAML::Node& node, const where& w, event_bus_config& cfg) {
  each_field(node, w, {"enabled", "api_prefix", "domain", "timeout", "max_pending", "stream"},
             [&](std::string_view key, const YAML::Node& v, const where& at) {
               if (key == "enabled") {
                 cfg.jetstream_enabled = as_bool(v, at);
               } else if (key == "api_prefix") {
                 cfg.jetstream.api_prefix = as_nonempty_string(v, at);
                 if (!protocol::is_valid_publish_subject(cfg.jetstream.api_prefix))
                   fail(at, "invalid API prefix " + quoted(cfg.jetstream.api_prefix) + " (must be a NATS subject)");
               } else if (key == "domain") {
                 cfg.jetstream.domain = as_string(v, at);
                 const auto& d = cfg.jetstream.domain;
                 if (!d.empty() && (!protocol::is_valid_publish_subject(d) || d.find('.') != std::string::npos))
                   fail(at, "invalid domain " + quoted(d) + " (must be a single subject token)");
               } else if (key == "timeout") {
                 cfg.jetstream.timeout = as_timeout(v, at);
               } else if (key == "max_pending") {
                 // The context allocates a ring of twice this many slots.
                 cfg.jetstream.max_pending = static_cast<std::size_t>(as_int(v, at, 1, 1'000'000));
               } else if (key == "stream") {
                 cfg.default_stream = parse_stream(v, at);
               }
             });
}

void parse_precreation(const YAML::Node& node, const where& w, event_bus_config& cfg) {
  auto& pc = cfg.precreation;
  each_field(node, w, {"enabled", "strategy", "max_in_flight", "topics"}, [&](std::string_view key,
                                                                              const YAML::Node& v, const where& at) {
    if (key == "max_in_flight") {
      cfg.max_provisioning_in_flight = static_cast<std::size_t>(as_int(v, at, 1, 100'000));
    } else if (key == "enabled") {
      pc.enabled = as_bool(v, at);
    } else if (key == "strategy") {
      pc.strategy = as_strategy(v, at);
    } else if (key == "topics") {
      pc.topics.clear();
      if (v.IsNull()) return;
      if (!v.IsSequence()) fail(at, "expected a list of topics, got " + kind(v));
      std::map<std::string, int, std::less<>> first_line;
      std::size_t i = 0;
      for (auto it = v.begin(); it != v.end(); ++it, ++i) {
        const YAML::Node item = *it;
        const where iw = at.item(i, line_of(item, at.line));
        if (!item.IsMap()) fail(iw, "expected a map with a name, got " + kind(item));
        topic_config tc;
        int name_line = iw.line;
        tc.options = parse_topic_options(item, iw, &tc.name, &name_line);
        const auto [pos, inserted] = first_line.emplace(tc.name, name_line);
        if (!inserted)
          fail(iw.field("name", name_line),
               "duplicate topic " + quoted(tc.name) + " (first given at line " + std::to_string(pos->second) + ")");
        pc.topics.push_back(std::move(tc));
      }
    }
  });
}

// A file the client reads on every connect: it must be there when the configuration is loaded (a typo fails here,
// with its line, rather than at the first connect). Its contents are never read here nor quoted anywhere.
std::string as_readable_file(const YAML::Node& v, const where& w) {
  auto path = as_nonempty_string(v, w);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) fail(w, "no such file " + quoted(path));
  return path;
}

// eventbus.nats.security: every credential and TLS setting. The values of secrets (password, token, nkey_seed)
// appear in no error message.
void parse_security(const YAML::Node& node, const where& w, connection_options& c) {
  each_field(node, w,
             {"user", "password", "token", "nkey_seed", "nkey_file", "creds_file", "tls", "ca_file", "cert_file",
              "key_file", "server_name", "tls_min_version", "tls_handshake_first", "insecure_skip_verify"},
             [&](std::string_view key, const YAML::Node& v, const where& at) {
               if (key == "user") c.user = as_string(v, at);
               else if (key == "password") c.password = as_string(v, at);
               else if (key == "token") c.token = as_string(v, at);
               else if (key == "nkey_seed") c.nkey_seed = as_nonempty_string(v, at);
               else if (key == "nkey_file") c.nkey_seed_file = as_readable_file(v, at);
               else if (key == "creds_file") c.credentials_file = as_readable_file(v, at);
               else if (key == "tls") c.tls.enabled = as_bool(v, at);
               else if (key == "ca_file") c.tls.ca_file = as_readable_file(v, at);
               else if (key == "cert_file") c.tls.cert_file = as_readable_file(v, at);
               else if (key == "key_file") c.tls.key_file = as_readable_file(v, at);
               else if (key == "server_name") c.tls.server_name = as_nonempty_string(v, at);
               else if (key == "tls_handshake_first") c.tls.handshake_first = as_bool(v, at);
               else if (key == "insecure_skip_verify") c.tls.insecure_skip_verify_dangerous = as_bool(v, at);
               else if (key == "tls_min_version") {
                 const auto ver = as_nonempty_string(v, at);
                 if (ver == "1.2") c.tls.min_version = tls_options::version::tls1_2;
                 else if (ver == "1.3") c.tls.min_version = tls_options::version::tls1_3;
                 else fail(at, "invalid TLS version " + quoted(ver) + " (expected \"1.2\" or \"1.3\")");
               }
             });
  if (c.tls.cert_file.empty() != c.tls.key_file.empty())
    fail(w, "cert_file and key_file go together (a client certificate needs its key)");
  if (!c.nkey_seed.empty() && !c.nkey_seed_file.empty()) fail(w, "nkey_seed and nkey_file: set one");
  if (!c.credentials_file.empty() && (!c.nkey_seed.empty() || !c.nkey_seed_file.empty()))
    fail(w, "creds_file holds its own seed: set it or an NKey seed, not both");
}

void parse_websocket(const YAML::Node& node, const where& w, connection_options& c) {
  each_field(node, w, {"compression", "max_message_size"},
             [&](std::string_view key, const YAML::Node& v, const where& at) {
               if (key == "compression") c.websocket.compression = as_bool(v, at);
               else c.websocket.max_message_size = static_cast<std::size_t>(as_int(v, at, 1024, std::int64_t{1} << 32));
             });
}

void parse_nats(const YAML::Node& node, const where& w, event_bus_config& cfg) {
  std::optional<where> mapping_at;
  each_field(
      node, w,
      {"urls", "client_id", "user", "password", "token", "connect_timeout", "request_timeout", "inbox_prefix",
       "jetstream", "mapping", "strategy", "auto_msg_id", "default_topic", "precreation", "subscribers", "security",
       "websocket"},
      [&](std::string_view key, const YAML::Node& v, const where& at) {
        if (key == "urls") {
          auto urls = as_string_list(v, at);
          for (std::size_t i = 0; i < urls.size(); ++i) {
            protocol::server_address addr;
            if (protocol::parse_server_url(urls[i], addr))
              fail(v.IsSequence() ? at.item(i, line_of(v[i], at.line)) : at,
                   "invalid server URL " + quoted_url(urls[i]) + " (expected nats://, tls://, ws://, wss://... or host:port)");
          }
          cfg.connection.servers = std::move(urls);
        } else if (key == "client_id") {
          cfg.connection.name = as_nonempty_string(v, at);
        } else if (key == "user") {
          cfg.connection.user = as_string(v, at);
        } else if (key == "password") {
          cfg.connection.password = as_string(v, at);
        } else if (key == "token") {
          cfg.connection.token = as_string(v, at);
        } else if (key == "connect_timeout") {
          cfg.connection.connect_timeout = as_timeout(v, at);
        } else if (key == "request_timeout") {
          cfg.connection.request_timeout = as_timeout(v, at);
        } else if (key == "inbox_prefix") {
          auto prefix = as_nonempty_string(v, at);
          if (!protocol::valid_inbox_prefix(prefix))
            fail(at, "invalid inbox prefix '" + prefix + "' (" + std::string(protocol::inbox_prefix_rule) + ")");
          cfg.connection.inbox_prefix = std::move(prefix);
        } else if (key == "security") {
          parse_security(v, at, cfg.connection);
        } else if (key == "websocket") {
          parse_websocket(v, at, cfg.connection);
        } else if (key == "jetstream") {
          parse_jetstream(v, at, cfg);
        } else if (key == "mapping") {
          cfg.mapping = as_enum(v, at, mapping_names, "mapping", "per_topic or shared");
          mapping_at = at;
        } else if (key == "strategy") {
          cfg.strategy = as_strategy(v, at);
        } else if (key == "auto_msg_id") {
          cfg.auto_msg_id = as_bool(v, at);
        } else if (key == "default_topic") {
          cfg.default_topic_options = parse_topic_options(v, at, nullptr, nullptr);
        } else if (key == "precreation") {
          parse_precreation(v, at, cfg);
        } else if (key == "subscribers") {
          parse_subscribers(v, at, cfg.subscribers);
        }
      });
  if (mapping_at && cfg.mapping == stream_mapping::shared && !cfg.default_stream)
    fail(*mapping_at, "shared needs a stream: set " + w.path + ".jetstream.stream");
}

void parse_document(const YAML::Node& root, event_bus_config& cfg) {
  if (root.IsNull()) {
    fail({"eventbus", root.Mark().line >= 0 ? root.Mark().line + 1 : 1}, "missing (the document is empty)");
  }
  const where top{"", line_of(root, 1)};
  if (!root.IsMap()) fail({"(document)", top.line}, "expected a map with an 'eventbus' key, got " + kind(root));
  // Keys other than eventbus belong to the application that embeds this section.
  std::optional<YAML::Node> section;
  where at{"eventbus", top.line};
  for (auto it = root.begin(); it != root.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar() || key.Scalar() != "eventbus") continue;
    const int key_line = line_of(key, top.line);
    if (section) fail({"eventbus", key_line}, "field given twice");
    section = it->second;
    at = {"eventbus", line_of(*section, key_line)};
  }
  if (!section) fail(at, "missing (the document has no eventbus section)");
  bool has_nats = false;
  // backend: nats (the default) or memory. The nats section's topic, stream and subscriber settings apply to
  // the memory backend too (its connection settings are unused there), so a service switches with one line.
  each_field(*section, at, {"backend", "nats"}, [&](std::string_view key, const YAML::Node& v, const where& fat) {
    if (key == "backend") {
      cfg.backend = as_enum(v, fat, backend_names, "backend", "nats or memory");
      return;
    }
    parse_nats(v, fat, cfg);
    has_nats = true;
  });
  if (!has_nats && cfg.backend == bus_backend::nats) fail(at.field("nats", at.line), "missing (required)");
}

error_code failure(std::string& message, int line, std::string_view path, std::string_view what) {
  message = "line " + std::to_string(line) + ": " + std::string(path) + ": " + std::string(what);
  return error::invalid_config;
}

}  // namespace

error_code parse_event_bus_config(std::string_view yaml_text, event_bus_config& out, std::string& message) {
  try {
    message.clear();
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    event_bus_config cfg = out;  // fields the document leaves out keep the caller's values
    parse_document(root, cfg);
    out = std::move(cfg);
    return {};
  } catch (const detail::config_yaml::config_failure& f) {
    return failure(message, f.line, f.path, f.what);
  } catch (const YAML::Exception& e) {
    // e.msg is the bare reason; what() repeats the position.
    const int line = e.mark.line >= 0 ? e.mark.line + 1 : 1;
    std::string what = e.msg.empty() ? std::string(e.what()) : e.msg;
    if (e.mark.column >= 0) what += " (column " + std::to_string(e.mark.column + 1) + ")";
    return failure(message, line, "YAML syntax error", what);
  } catch (const std::exception& e) {
    return failure(message, 1, "(document)", e.what());
  } catch (...) {
    return failure(message, 1, "(document)", "unexpected error");
  }
}

error_code load_event_bus_config(const std::string& path, event_bus_config& out, std::string& message) {
  constexpr std::size_t max_size = 16 * 1024 * 1024;
  try {
    message.clear();
    struct closer {
      void operator()(std::FILE* f) const noexcept { std::fclose(f); }
    };
    errno = 0;
    std::unique_ptr<std::FILE, closer> f(std::fopen(path.c_str(), "rb"));
    if (!f) {
      const int err = errno ? errno : ENOENT;
      error_code ec(err, boost::system::generic_category());
      message = path + ": " + ec.message();
      return ec;
    }
    std::string text;
    char buf[8192];
    for (;;) {
      const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
      text.append(buf, n);
      if (text.size() > max_size) {
        message = path + ": larger than " + std::to_string(max_size) + " bytes";
        return error::invalid_config;
      }
      if (n < sizeof buf) break;
    }
    if (std::ferror(f.get())) {
      const int err = errno ? errno : EIO;
      error_code ec(err, boost::system::generic_category());
      message = path + ": " + ec.message();
      return ec;
    }
    return parse_event_bus_config(text, out, message);
  } catch (const std::exception& e) {
    message = path + ": " + e.what();
    return error::invalid_config;
  } catch (...) {
    message = path + ": unexpected error";
    return error::invalid_config;
  }
}

}  // namespace natsbus
