// eventbus.nats.subscribers: the durable subscribers declared in the configuration, each a topic and its
// subscribe_options. Every value is checked here as subscribe() would check it, so a bad subscriber fails the
// load with its line rather than a subscribe at run time. (key_fn is code only.)
#include "bus/bus_config_yaml.hpp"

#include <natsbus/protocol/subject.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace natsbus::detail::config_yaml {

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

// The deliver policies that need nothing more (by_start_sequence and by_start_time would need their start).
constexpr std::pair<std::string_view, deliver_policy> deliver_names[] = {
    {"all", deliver_policy::all},
    {"new", deliver_policy::new_},
    {"last", deliver_policy::last},
    {"last_per_subject", deliver_policy::last_per_subject}};
constexpr std::string_view deliver_expected = "all, new, last or last_per_subject";

// As the bus's subscribe() checks it: the group is the consumer name's first part, ended by "__".
bool valid_group(std::string_view g) {
  if (g.empty() || g.size() > 64) return false;
  for (char c : g)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

// A header name as the encoder accepts it: no ':', whitespace or control characters.
bool valid_header_name(std::string_view h) {
  for (unsigned char c : h)
    if (c == ':' || c <= ' ' || c == 0x7f) return false;
  return true;
}

std::string as_topic(const YAML::Node& v, const where& w) {
  auto t = as_nonempty_string(v, w);
  if (!protocol::is_valid_publish_subject(t))
    fail(w, "invalid topic " + quoted(t) + " (must be a NATS subject without wildcards)");
  return t;
}

std::chrono::milliseconds as_millis(const YAML::Node& v, const where& w) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(as_duration(v, w));
}

// A list of durations; a single duration is a list of one, and an empty list (or null) means no delay.
std::vector<std::chrono::milliseconds> as_backoff(const YAML::Node& v, const where& w) {
  std::vector<std::chrono::milliseconds> out;
  if (v.IsNull()) return out;
  if (v.IsScalar()) {
    out.push_back(as_millis(v, w));
  } else if (v.IsSequence()) {
    std::size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) out.push_back(as_millis(*it, w.item(i, line_of(*it, w.line))));
  } else {
    fail(w, "expected a list of durations, got " + kind(v));
  }
  return out;
}

deliver_policy as_deliver_policy(const YAML::Node& v, const where& w) {
  if (v.IsScalar()) {
    constexpr std::pair<std::string_view, int> needs_start[] = {{"by_start_sequence", 0}, {"by_start_time", 0}};
    if (detail::lookup_name(v.Scalar(), needs_start))
      fail(w, "deliver policy " + quoted(v.Scalar()) + " needs a start and is not offered in the configuration " +
                  "(expected " + std::string(deliver_expected) + ")");
  }
  return as_enum(v, w, deliver_names, "deliver policy", deliver_expected);
}

// One subscriber (a map); `group_line` is set to its group's line, for the duplicate check.
subscriber_config parse_subscriber(const YAML::Node& node, const where& w, int& group_line) {
  subscriber_config sc;
  auto& o = sc.options;
  bool has_topic = false;
  bool has_group = false;
  std::optional<where> dlq_at;
  each_field(node, w,
             {"topic", "group", "ack_wait", "max_deliver", "backoff", "max_ack_pending", "deliver_policy",
              "max_concurrency", "key_header", "handler_timeout", "dead_letter_topic", "prefetch"},
             [&](std::string_view key, const YAML::Node& v, const where& at) {
               if (key == "topic") {
                 sc.topic = as_topic(v, at);
                 has_topic = true;
               } else if (key == "group") {
                 o.group = as_nonempty_string(v, at);
                 if (!valid_group(o.group))
                   fail(at, "invalid group " + quoted(o.group) + " (must be 1-64 letters, digits or '-')");
                 group_line = at.line;
                 has_group = true;
               } else if (key == "ack_wait") {
                 o.ack_wait = as_millis(v, at);
                 if (o.ack_wait < std::chrono::milliseconds(100)) fail(at, "must be at least 100ms");
               } else if (key == "max_deliver") {
                 o.max_deliver = as_int(v, at, 1, int64_max);
               } else if (key == "backoff") {
                 o.backoff = as_backoff(v, at);
               } else if (key == "max_ack_pending") {
                 const auto n = as_int(v, at, std::numeric_limits<std::int64_t>::min(), int64_max);
                 if (n == 0 || n < -1)
                   fail(at, std::to_string(n) + " is out of range; must be at least 1, or -1 for no limit");
                 o.max_ack_pending = n;
               } else if (key == "deliver_policy") {
                 o.deliver = as_deliver_policy(v, at);
               } else if (key == "max_concurrency") {
                 o.max_concurrency = static_cast<std::size_t>(as_int(v, at, 1, 100'000));
               } else if (key == "key_header") {
                 o.key_header = as_string(v, at);
                 if (!valid_header_name(o.key_header))
                   fail(at, "invalid header name " + quoted(o.key_header) + " (no ':', spaces or control characters)");
               } else if (key == "handler_timeout") {
                 o.handler_timeout = as_millis(v, at);
               } else if (key == "dead_letter_topic") {
                 o.dead_letter_topic = as_string(v, at);
                 if (!o.dead_letter_topic.empty() && !protocol::is_valid_publish_subject(o.dead_letter_topic))
                   fail(at, "invalid topic " + quoted(o.dead_letter_topic) +
                                " (must be a NATS subject without wildcards)");
                 dlq_at = at;
               } else if (key == "prefetch") {
                 o.prefetch = static_cast<std::size_t>(as_int(v, at, 0, 1'000'000));
               }
             });
  if (!has_topic) fail(w.field("topic", w.line), "missing (a subscriber needs a topic)");
  if (!has_group) fail(w.field("group", w.line), "missing (a subscriber needs a group)");
  // Its dead letters would come back to it.
  if (dlq_at && o.dead_letter_topic == sc.topic) fail(*dlq_at, "must not be the subscriber's own topic");
  return sc;
}

}  // namespace

void parse_subscribers(const YAML::Node& node, const where& w, std::vector<subscriber_config>& out) {
  out.clear();
  if (node.IsNull()) return;
  if (!node.IsSequence()) fail(w, "expected a list of subscribers, got " + kind(node));
  std::map<std::pair<std::string, std::string>, int, std::less<>> first_line;
  std::size_t i = 0;
  for (auto it = node.begin(); it != node.end(); ++it, ++i) {
    const YAML::Node item = *it;
    const where iw = w.item(i, line_of(item, w.line));
    if (!item.IsMap()) fail(iw, "expected a map with a topic and a group, got " + kind(item));
    int group_line = iw.line;
    auto sc = parse_subscriber(item, iw, group_line);
    const auto [pos, inserted] = first_line.emplace(std::pair(sc.topic, sc.options.group), group_line);
    if (!inserted)
      fail(iw.field("group", group_line), "duplicate subscriber: group " + quoted(sc.options.group) +
                                              " on topic " + quoted(sc.topic) + " (first given at line " +
                                              std::to_string(pos->second) + ")");
    out.push_back(std::move(sc));
  }
}

}  // namespace natsbus::detail::config_yaml
