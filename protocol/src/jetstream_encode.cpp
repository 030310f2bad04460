// JSON encoding of JetStream API requests (stream config, consumer create).
#include <natsbus/protocol/jetstream.hpp>

#include "jetstream_names.hpp"
#include "json_text.hpp"

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus::protocol {

namespace {

// Writes one JSON object straight into a string: a request is a flat list of known keys, so it needs no
// document tree (building one cost two dozen allocations per stream request).
class json_writer {
 public:
  explicit json_writer(std::size_t reserve) {
    out_.reserve(reserve);
    out_.push_back('{');
  }
  void string(std::string_view key, std::string_view v) {
    name(key);
    quoted(v);
  }
  template <class Int>
  void number(std::string_view key, Int v) {
    name(key);
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  void boolean(std::string_view key, bool v) {
    name(key);
    out_.append(v ? "true" : "false");
  }
  void strings(std::string_view key, const std::vector<std::string>& v) {
    name(key);
    out_.push_back('[');
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) out_.push_back(',');
      quoted(v[i]);
    }
    out_.push_back(']');
  }
  void open(std::string_view key) {
    name(key);
    out_.push_back('{');
    first_ = true;
  }
  void close() {
    out_.push_back('}');
    first_ = false;
  }
  std::string finish() {
    out_.push_back('}');
    return std::move(out_);
  }

 private:
  // Keys are this file's literals: nothing to escape.
  void name(std::string_view key) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.push_back('"');
    out_.append(key);
    out_.append("\":");
  }
  void quoted(std::string_view v) { append_json_string(out_, v); }

  std::string out_;
  bool first_ = true;
};

}  // namespace

std::string encode(const stream_config& cfg) {
  json_writer w(160 + cfg.name.size() + cfg.description.size() + 16 * cfg.subjects.size());
  w.string("name", cfg.name);
  if (!cfg.description.empty()) w.string("description", cfg.description);
  w.strings("subjects", cfg.subjects);
  w.string("storage", to_string(cfg.storage));
  // A value equal to the server's default is left out: the server fills in the same one (for creates and
  // updates alike), and parses less (a full config costs it about 8% more per stream creation).
  if (cfg.retention != retention_policy::limits) w.string("retention", to_string(cfg.retention));
  if (cfg.max_consumers != -1) w.number("max_consumers", cfg.max_consumers);
  if (cfg.max_msgs != -1) w.number("max_msgs", cfg.max_msgs);
  if (cfg.max_bytes != -1) w.number("max_bytes", cfg.max_bytes);
  if (cfg.max_age.count() != 0) w.number("max_age", cfg.max_age.count());
  if (cfg.max_msgs_per_subject != -1) w.number("max_msgs_per_subject", cfg.max_msgs_per_subject);
  if (cfg.max_msg_size != -1) w.number("max_msg_size", cfg.max_msg_size);
  if (cfg.discard != discard_policy::old) w.string("discard", to_string(cfg.discard));
  if (cfg.num_replicas != 1) w.number("num_replicas", cfg.num_replicas);
  if (cfg.duplicate_window.count() != 0) w.number("duplicate_window", cfg.duplicate_window.count());
  if (cfg.allow_rollup_hdrs) w.boolean("allow_rollup_hdrs", true);
  if (cfg.deny_delete) w.boolean("deny_delete", true);
  if (cfg.deny_purge) w.boolean("deny_purge", true);
  return w.finish();
}

std::string encode_consumer_create(std::string_view stream, const consumer_config& cfg, std::string_view action) {
  json_writer w(256 + stream.size() + cfg.filter_subject.size() + cfg.description.size() +
                32 * (cfg.filter_subjects.size() + cfg.metadata.size()));
  w.string("stream_name", stream);
  if (!action.empty()) w.string("action", action);
  w.open("config");
  auto put_string = [&w](std::string_view key, const std::string& v) {
    if (!v.empty()) w.string(key, v);
  };
  auto put_duration = [&w](std::string_view key, std::chrono::nanoseconds v) {
    if (v.count() != 0) w.number(key, v.count());
  };
  // -1 and 0 both mean "the server's default" for these limits; only a positive value is sent.
  auto put_limit = [&w](std::string_view key, std::int64_t v) {
    if (v > 0) w.number(key, v);
  };
  put_string("name", cfg.name);
  put_string("durable_name", cfg.durable_name);
  put_string("description", cfg.description);
  w.string("deliver_policy", to_string(cfg.deliver));
  if (cfg.opt_start_seq != 0) w.number("opt_start_seq", cfg.opt_start_seq);
  w.string("ack_policy", to_string(cfg.ack));
  put_duration("ack_wait", cfg.ack_wait);
  put_limit("max_deliver", cfg.max_deliver);
  put_string("filter_subject", cfg.filter_subject);
  if (!cfg.filter_subjects.empty()) w.strings("filter_subjects", cfg.filter_subjects);
  w.string("replay_policy", to_string(cfg.replay));
  put_limit("max_ack_pending", cfg.max_ack_pending);
  put_limit("max_waiting", cfg.max_waiting);
  put_string("deliver_subject", cfg.deliver_subject);
  put_string("deliver_group", cfg.deliver_group);
  if (cfg.flow_control) w.boolean("flow_control", true);
  put_duration("idle_heartbeat", cfg.idle_heartbeat);
  if (cfg.headers_only) w.boolean("headers_only", true);
  put_duration("inactive_threshold", cfg.inactive_threshold);
  if (cfg.num_replicas > 0) w.number("num_replicas", cfg.num_replicas);
  if (cfg.mem_storage) w.boolean("mem_storage", true);
  if (!cfg.metadata.empty()) {
    w.open("metadata");
    for (const auto& [k, v] : cfg.metadata) w.string(k, v);
    w.close();
  }
  w.close();
  return w.finish();
}

}  // namespace natsbus::protocol
