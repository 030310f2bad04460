// JSON encoding of JetStream API requests (stream config, consumer create) and the enum names the server uses.
#include <natsbus/protocol/jetstream.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace natsbus::protocol {

namespace json = boost::json;

namespace {

constexpr std::string_view to_string(deliver_policy p) noexcept {
  switch (p) {
    case deliver_policy::all: return "all";
    case deliver_policy::last: return "last";
    case deliver_policy::new_: return "new";
    case deliver_policy::by_start_sequence: return "by_start_sequence";
    case deliver_policy::by_start_time: return "by_start_time";
    case deliver_policy::last_per_subject: return "last_per_subject";
  }
  return "all";
}

constexpr std::string_view to_string(ack_policy p) noexcept {
  switch (p) {
    case ack_policy::none: return "none";
    case ack_policy::all: return "all";
    case ack_policy::explicit_: return "explicit";
  }
  return "explicit";
}

constexpr std::string_view to_string(replay_policy p) noexcept {
  switch (p) {
    case replay_policy::instant: return "instant";
    case replay_policy::original: return "original";
  }
  return "instant";
}
}  // namespace

std::string encode(const stream_config& cfg) {
  json::object o;
  o["name"] = cfg.name;
  if (!cfg.description.empty()) o["description"] = cfg.description;
  json::array subjects;
  subjects.reserve(cfg.subjects.size());
  for (const auto& s : cfg.subjects) subjects.emplace_back(s);
  o["subjects"] = std::move(subjects);
  o["retention"] = to_string(cfg.retention);
  o["max_consumers"] = cfg.max_consumers;
  o["max_msgs"] = cfg.max_msgs;
  o["max_bytes"] = cfg.max_bytes;
  o["max_age"] = cfg.max_age.count();
  o["max_msgs_per_subject"] = cfg.max_msgs_per_subject;
  o["max_msg_size"] = cfg.max_msg_size;
  o["discard"] = to_string(cfg.discard);
  o["storage"] = to_string(cfg.storage);
  o["num_replicas"] = cfg.num_replicas;
  if (cfg.duplicate_window.count() != 0) o["duplicate_window"] = cfg.duplicate_window.count();
  o["allow_rollup_hdrs"] = cfg.allow_rollup_hdrs;
  o["deny_delete"] = cfg.deny_delete;
  o["deny_purge"] = cfg.deny_purge;
  return json::serialize(o);
}

std::string encode_consumer_create(std::string_view stream, const consumer_config& cfg) {
  json::object c;
  auto put_string = [&c](std::string_view key, const std::string& v) {
    if (!v.empty()) c[key] = v;
  };
  auto put_duration = [&c](std::string_view key, std::chrono::nanoseconds v) {
    if (v.count() != 0) c[key] = v.count();
  };
  // -1 and 0 both mean "the server's default" for these limits; only a positive value is sent.
  auto put_limit = [&c](std::string_view key, std::int64_t v) {
    if (v > 0) c[key] = v;
  };
  put_string("name", cfg.name);
  put_string("durable_name", cfg.durable_name);
  put_string("description", cfg.description);
  c["deliver_policy"] = to_string(cfg.deliver);
  if (cfg.opt_start_seq != 0) c["opt_start_seq"] = cfg.opt_start_seq;
  c["ack_policy"] = to_string(cfg.ack);
  put_duration("ack_wait", cfg.ack_wait);
  put_limit("max_deliver", cfg.max_deliver);
  put_string("filter_subject", cfg.filter_subject);
  c["replay_policy"] = to_string(cfg.replay);
  put_limit("max_ack_pending", cfg.max_ack_pending);
  put_limit("max_waiting", cfg.max_waiting);
  put_string("deliver_subject", cfg.deliver_subject);
  put_string("deliver_group", cfg.deliver_group);
  if (cfg.flow_control) c["flow_control"] = true;
  put_duration("idle_heartbeat", cfg.idle_heartbeat);
  if (cfg.headers_only) c["headers_only"] = true;
  put_duration("inactive_threshold", cfg.inactive_threshold);
  if (cfg.num_replicas > 0) c["num_replicas"] = cfg.num_replicas;
  if (cfg.mem_storage) c["mem_storage"] = true;
  json::object o;
  o["stream_name"] = json::string_view{stream.data(), stream.size()};
  o["config"] = std::move(c);
  return json::serialize(o);
}

std::string_view to_string(retention_policy p) noexcept {
  switch (p) {
    case retention_policy::limits: return "limits";
    case retention_policy::interest: return "interest";
    case retention_policy::workqueue: return "workqueue";
  }
  return "limits";
}

std::string_view to_string(storage_type s) noexcept {
  switch (s) {
    case storage_type::file: return "file";
    case storage_type::memory: return "memory";
  }
  return "file";
}

std::string_view to_string(discard_policy d) noexcept {
  switch (d) {
    case discard_policy::old: return "old";
    case discard_policy::new_: return "new";
  }
  return "old";
}
}  // namespace natsbus::protocol
