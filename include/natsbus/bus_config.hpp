// Configuration of natsbus::event_bus: built in code, or loaded from a YAML file shaped like
//
//   eventbus:
//     backend: nats                   # or memory: an in-process broker, same API and semantics, no server
//     nats:
//       urls: [nats://127.0.0.1:4222]
//       client_id: my-service
//       jetstream:
//         enabled: true
//         stream: {name: EVENTS, subjects: ["events.>"], storage: file, replicas: 1}   # optional default stream
//       mapping: per_topic            # or shared: topics map onto the default stream
//       strategy: create_only         # the runtime strategy (create_only | create_or_update | validate_only | skip)
//       auto_msg_id: true
//       precreation:
//         enabled: true
//         strategy: create_only
//         topics:
//           - {name: business.orders.created, retention: 24h, max_messages: 10000, replicas: 1}
//
// A file that cannot be used gives invalid_config and a message naming the field and its line.
#pragma once

#include <natsbus/bus_subscribe.hpp>
#include <natsbus/error.hpp>
#include <natsbus/jetstream.hpp>
#include <natsbus/options.hpp>
#include <natsbus/protocol/jetstream.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus {

// What configure_topic() and the first publish to an unknown topic do with the topic's stream.
enum class topic_strategy {
  create_only,       // create the stream when missing; never modify an existing one
  create_or_update,  // create the stream, or update it to match the options
  validate_only,     // compare the server's stream with the options; change nothing, report each difference
  skip,              // no server call at all: the options are recorded locally
};

enum class topic_persistence {
  automatic,   // persistent when JetStream is enabled, ephemeral otherwise
  persistent,  // JetStream publish, acknowledged; never downgraded to a core publish
  ephemeral,   // core NATS publish, no stream
};

// How persistent topics find their stream.
enum class stream_mapping {
  per_topic,  // each topic has its own stream, named from the topic (see event_bus::stream_name_for)
  shared,     // topics map onto the default stream, whose subjects (wildcards allowed) must cover them
};

// Per-topic options. Zero or negative means "not set": the server's default (or the shared stream's value).
struct topic_options {
  topic_persistence persistence = topic_persistence::automatic;
  std::chrono::nanoseconds retention_time{0};  // max_age
  std::int64_t max_messages = -1;
  std::int64_t max_bytes = -1;
  std::int32_t max_message_size = -1;
  int replicas = 0;  // 0: one replica
  std::optional<storage_type> storage;          // unset: file
  std::optional<discard_policy> discard;        // unset: old
  std::chrono::nanoseconds duplicate_window{0};  // 0: the server's default (2 minutes)
  std::string description;

  friend bool operator==(const topic_options&, const topic_options&) = default;
};

struct topic_config {
  std::string name;
  topic_options options;
};

struct precreation_config {
  bool enabled = false;
  topic_strategy strategy = topic_strategy::create_only;
  std::vector<topic_config> topics;
};

// A durable subscriber declared in the configuration: its consumer is made at start() (per the pre-creation
// strategy), and event_bus::subscribe(topic, group, handler) runs it with these options.
struct subscriber_config {
  std::string topic;
  subscribe_options options;  // options.group names it; (topic, group) is unique
};

// Where the bus keeps its topics.
enum class bus_backend {
  nats,    // a NATS server with JetStream (the connection's servers)
  memory,  // an in-process broker with the same semantics, for tests and single-process use (no server)
};

struct event_bus_config {
  // nats, or memory: the same API and semantics (at-least-once, keyed order, retries, dead letters,
  // strategies) over an in-process broker; the connection's settings are then unused.
  bus_backend backend = bus_backend::nats;
  // Server URLs (connection.servers) and the client name (connection.name), plus every connection option.
  connection_options connection;
  bool jetstream_enabled = true;
  jetstream_options jetstream;
  // The default stream: the shared stream under stream_mapping::shared.
  std::optional<stream_config> default_stream;
  stream_mapping mapping = stream_mapping::per_topic;
  // The strategy in force after start-up (pre-creation has its own).
  topic_strategy strategy = topic_strategy::create_only;
  // Options for a persistent topic that was never configured.
  topic_options default_topic_options;
  // Give every persistent publish a Nats-Msg-Id unless the caller set one, so that a retry lands once.
  bool auto_msg_id = true;
  precreation_config precreation;
  std::vector<subscriber_config> subscribers;
  // Outcomes of publish_envelope_async held (or awaited) at once, at most; past it the publisher waits.
  std::size_t publish_results_capacity = 10000;
  // At most this many stream requests configure_topics (and pre-creation) keep in flight at once. Within it
  // the bus keeps as many as the server gets through in a quarter of a request's timeout, at the pace it
  // measures (starting from 8), so each request's timeout measures the server's work on it, not its place in
  // a queue, on a fast server and a slow one alike.
  std::size_t max_provisioning_in_flight = 128;
};

[[nodiscard]] std::string_view to_string(topic_strategy s) noexcept;
[[nodiscard]] std::string_view to_string(bus_backend b) noexcept;
// Parses "create_only", "create_or_update", "validate_only", "skip" (also with dashes, any case).
[[nodiscard]] std::optional<topic_strategy> parse_topic_strategy(std::string_view s) noexcept;
// Parses durations such as "24h", "90m", "30s", "500ms", "1h30m", "2d" (d = 24h); a bare number is seconds.
[[nodiscard]] std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) noexcept;

// Loads a YAML configuration. On failure returns invalid_config (or the file's I/O error) and sets `message`
// to a text naming the field and its line, e.g. "line 7: eventbus.nats.precreation.strategy: unknown strategy
// 'create_maybe' (expected create_only, create_or_update, validate_only or skip)".
error_code load_event_bus_config(const std::string& path, event_bus_config& out, std::string& message);
error_code parse_event_bus_config(std::string_view yaml_text, event_bus_config& out, std::string& message);

}  // namespace natsbus
