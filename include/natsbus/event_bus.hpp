// natsbus::event_bus: topics over one connection and its JetStream context.
//
// An application configures its topics once (configure_topic / configure_topics, or pre-creation from the
// config at start()), and from then on `co_await bus.publish(topic, payload)` costs one pipelined JetStream
// publish: the stream cache knows the topic's stream, so no STREAM.INFO round trip is paid.
//
// The stream cache lives on the connection's executor (its strand, or a single-threaded io_context) and takes
// no mutex. It is a hint, never a promise: a publish answered with 503 (no responders) or JetStream error 10059
// (stream not found) drops the entry, the strategy decides whether to re-create the stream, and the publish is
// retried once with the same Nats-Msg-Id. A persistent topic is never published without an ack: when its stream
// cannot be ensured the caller gets the error.
//
// Topic to stream mapping (event_bus_config::mapping):
//  - per_topic (default): each persistent topic has its own stream, named by stream_name_for(topic), whose one
//    subject is the topic;
//  - shared: every persistent topic maps onto the default stream, whose subjects (wildcards allowed) must cover
//    it. Per-topic options that differ from the shared stream's limits are an error (topic_config_conflict),
//    never a silent rewrite of a stream other topics share.
#pragma once

#include <natsbus/bus_config.hpp>
#include <natsbus/bus_subscribe.hpp>
#include <natsbus/connection.hpp>
#include <natsbus/jetstream.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus {

namespace detail {
class event_bus_impl;
}

struct bus_publish_options {
  std::string msg_id;  // Nats-Msg-Id; the bus makes one when empty and auto_msg_id is on
  const headers* hdrs = nullptr;
  std::chrono::milliseconds timeout{0};  // 0: the JetStream context's default
};

// What configure_topic did.
struct topic_configure_result {
  std::string topic;
  std::string stream;
  bool created = false;
  bool updated = false;
  std::vector<std::string> differences;  // validate_only: "max_msgs: server 5000, wanted 10000", ...
  std::string message;                   // the error's text when it failed
};

// What became of a publish_envelope_async, for an outbox relay to mark the event sent (or try it again).
struct publish_outcome {
  std::string event_id;
  std::string topic;
  std::uint64_t seq = 0;
  bool duplicate = false;  // the stream already held this event id: an earlier attempt landed
  error_code error;
};

struct bus_metrics {
  std::uint64_t published = 0;       // persistent publishes sent
  std::uint64_t acked = 0;
  std::uint64_t failed = 0;          // publishes (persistent or not) whose outcome was an error
  std::uint64_t core_published = 0;  // ephemeral topics
  std::uint64_t stream_lookups = 0;  // STREAM.INFO requests sent
  std::uint64_t consumer_lookups = 0;  // CONSUMER.INFO requests sent for durable subscriptions
  std::uint64_t streams_created = 0;
  std::uint64_t streams_updated = 0;
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;
  std::uint64_t repairs = 0;  // cache entries dropped after 503 / 10059
  std::size_t cached_streams = 0;
  std::chrono::nanoseconds ack_latency_p50{0};
  std::chrono::nanoseconds ack_latency_p99{0};
};

class event_bus {
 public:
  using executor_type = connection::executor_type;
  using message_handler = std::function<void(const message&)>;

  event_bus(asio::any_io_executor ex, event_bus_config cfg);
  ~event_bus();  // closes
  event_bus(const event_bus&) = delete;
  event_bus& operator=(const event_bus&) = delete;

  [[nodiscard]] executor_type get_executor() const noexcept;
  [[nodiscard]] connection& conn() noexcept;
  [[nodiscard]] jetstream& js() noexcept;
  [[nodiscard]] const event_bus_config& config() const noexcept;

  // Connects, then, when pre-creation is enabled, configures its topics under its strategy (pipelined), then
  // sets the runtime strategy. Fails with the first error; last_error() has its text.
  template <class Token = default_token>
  auto start(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto h) { start_impl(asio::any_completion_handler<void(error_code)>(std::move(h))); }, token);
  }

  // Safe from any thread while publishes run.
  void set_topic_config_strategy(topic_strategy s) noexcept;
  [[nodiscard]] topic_strategy get_topic_config_strategy() const noexcept;

  // Records the topic's options and applies the strategy to its stream (see topic_strategy).
  template <class Token = default_token>
  auto configure_topic(std::string_view topic, const topic_options& opts, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, topic_configure_result)>(
        [this](auto h, std::string t, topic_options o) {
          configure_impl(std::move(t), std::move(o),
                         asio::any_completion_handler<void(error_code, topic_configure_result)>(std::move(h)));
        },
        token, std::string(topic), opts);
  }
  // Configures many topics with their stream requests pipelined, as many in flight as the server's pace allows
  // (at most max_provisioning_in_flight), and one request sequence per distinct stream and configuration: the
  // topics of a shared stream take the first one's outcome. Completes with one result per topic; the error is
  // the first failure's (each result carries its own message).
  template <class Token = default_token>
  auto configure_topics(const std::vector<topic_config>& topics, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, std::vector<topic_configure_result>)>(
        [this](auto h, std::vector<topic_config> t) {
          configure_many_impl(
              std::move(t),
              asio::any_completion_handler<void(error_code, std::vector<topic_configure_result>)>(std::move(h)));
        },
        token, topics);
  }
  [[nodiscard]] std::optional<topic_options> get_topic_config(std::string_view topic) const;
  [[nodiscard]] std::vector<std::string> list_configured_topics() const;
  // Forgets the topic's options and drops its cache entry. The stream itself is left alone.
  void remove_topic_config(std::string_view topic);

  // A persistent topic: a JetStream publish, completing with its ack. An ephemeral topic: a core publish,
  // completing once queued with an empty pub_ack. Awaited from a coroutine on the connection's thread, a publish to
  // a known topic costs no hop and no allocation.
  template <class Token = default_token>
    requires(!std::is_convertible_v<Token, const bus_publish_options&>)
  auto publish(std::string_view topic, std::string_view payload, Token&& token = {}) {
    return publish(topic, payload, no_options(), std::forward<Token>(token));
  }
  template <class Token = default_token>
  auto publish(std::string_view topic, std::string_view payload, const bus_publish_options& opts,
               Token&& token = {}) {
    if constexpr (detail::is_use_awaitable<Token>) {
      return publish_awaitable(topic, payload, opts);
    } else if constexpr (detail::is_as_tuple_awaitable<Token>) {
      return publish_awaitable_ec(topic, payload, opts);
    } else {
      return asio::async_initiate<Token, void(error_code, pub_ack)>(
          [this](auto h, std::string t, std::string p, bus_publish_options o) {
            publish_impl(std::move(t), std::move(p), std::move(o),
                         asio::any_completion_handler<void(error_code, pub_ack)>(std::move(h)));
          },
          token, std::string(topic), std::string(payload), opts);
    }
  }

  // The windowed form: completes with the ack future as soon as the frame is queued; while the JetStream
  // context's max_pending publishes are un-acked it suspends. The bytes must stay valid until it completes.
  // A 503 or 10059 outcome drops the topic's cache entry, but is not retried: the future carries the error.
  template <class Token = default_token>
    requires(!std::is_convertible_v<Token, const bus_publish_options&>)
  auto publish_async(std::string_view topic, std::string_view payload, Token&& token = {}) {
    return publish_async(topic, payload, no_options(), std::forward<Token>(token));
  }
  template <class Token = default_token>
  auto publish_async(std::string_view topic, std::string_view payload, const bus_publish_options& opts,
                     Token&& token = {}) {
    if constexpr (detail::is_use_awaitable<Token>) {
      return publish_async_awaitable(topic, payload, opts);
    } else if constexpr (detail::is_as_tuple_awaitable<Token>) {
      return publish_async_awaitable_ec(topic, payload, opts);
    } else {
      return asio::async_initiate<Token, void(error_code, ack_future)>(
          [this](auto h, std::string t, std::string p, bus_publish_options o) {
            publish_async_impl(std::move(t), std::move(p), std::move(o),
                               asio::any_completion_handler<void(error_code, ack_future)>(std::move(h)));
          },
          token, std::string(topic), std::string(payload), opts);
    }
  }
  // Waits until every outstanding windowed publish has resolved.
  template <class Token = default_token>
  auto publish_async_complete(Token&& token = {}) {
    return js().publish_async_complete(std::forward<Token>(token));
  }

  // Subscribes to an ephemeral (core) topic; the handler runs on the connection's executor for each message.
  template <class Token = default_token>
  auto subscribe(std::string_view topic, message_handler handler, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, subscription)>(
        [this](auto h, std::string t, message_handler fn) {
          subscribe_impl(std::move(t), std::move(fn),
                         asio::any_completion_handler<void(error_code, subscription)>(std::move(h)));
        },
        token, std::string(topic), std::move(handler));
  }

  // A durable subscription (see natsbus/bus_subscribe.hpp): the topic's stream is ensured as for a publish, its
  // consumer "<group>__<stream>" and the dead-letter topic per the bus's strategy; then handlers run on the
  // connection's executor. Completes once consuming has started.
  template <class Token = default_token>
  auto subscribe(std::string_view topic, event_handler_fn handler, const subscribe_options& opts,
                 Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, bus_subscription)>(
        [this](auto h, std::string t, event_handler_fn fn, subscribe_options o) {
          subscribe_durable_impl(std::move(t), std::move(fn), std::move(o),
                                 asio::any_completion_handler<void(error_code, bus_subscription)>(std::move(h)));
        },
        token, std::string(topic), std::move(handler), opts);
  }

  // The subscriber declared in the configuration (event_bus_config::subscribers) for (topic, group), with its
  // options; invalid_argument when there is none.
  template <class Token = default_token>
  auto subscribe(std::string_view topic, std::string_view group, event_handler_fn handler, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, bus_subscription)>(
        [this](auto h, std::string t, std::string g, event_handler_fn fn) {
          subscribe_configured_impl(std::move(t), std::move(g), std::move(fn),
                                    asio::any_completion_handler<void(error_code, bus_subscription)>(std::move(h)));
        },
        token, std::string(topic), std::string(group), std::move(handler));
  }

  // Publishes `payload` with its envelope in headers; the event id is the Nats-Msg-Id, so a re-publish of the
  // same event is stored once. An empty time is set to now (UTC). An invalid envelope is invalid_argument, with
  // the field in last_error(), and nothing is sent.
  template <class Token = default_token>
  auto publish_envelope(std::string_view topic, const envelope& env, std::string_view payload, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, pub_ack)>(
        [this](auto h, std::string t, envelope e, std::string p) {
          publish_envelope_impl(std::move(t), std::move(e), std::move(p),
                                asio::any_completion_handler<void(error_code, pub_ack)>(std::move(h)));
        },
        token, std::string(topic), env, std::string(payload));
  }
  // The outbox form: completes once the publish is on its way (error: not sent, e.g. an invalid envelope); its
  // outcome comes later from next_publish_result(). At most publish_results_capacity outcomes are held or
  // awaited at once: past that, this waits for next_publish_result() to take one, so none is ever dropped.
  template <class Token = default_token>
  auto publish_envelope_async(std::string_view topic, const envelope& env, std::string_view payload,
                              Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto h, std::string t, envelope e, std::string p) {
          publish_envelope_async_impl(std::move(t), std::move(e), std::move(p),
                                      asio::any_completion_handler<void(error_code)>(std::move(h)));
        },
        token, std::string(topic), env, std::string(payload));
  }
  // The next outcome of a publish_envelope_async, in the order they resolve.
  template <class Token = default_token>
  auto next_publish_result(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, publish_outcome)>(
        [this](auto h) {
          next_publish_result_impl(asio::any_completion_handler<void(error_code, publish_outcome)>(std::move(h)));
        },
        token);
  }
  // A durable subscription whose events carry envelopes; the aggregate id is the key (unless options set one).
  template <class Token = default_token>
  auto subscribe_envelope(std::string_view topic, envelope_handler_fn handler, const subscribe_options& opts,
                          Token&& token = {}) {
    return subscribe(topic, wrap_envelope_handler(std::move(handler)), with_envelope_key(opts),
                     std::forward<Token>(token));
  }

  // The connection, JetStream's reachability (one $JS.API.INFO) and each durable subscription (its consumer's
  // info: lag = num_pending + num_ack_pending); nothing is published.
  template <class Token = default_token>
  auto health(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, bus_health)>(
        [this](auto h) { health_impl(asio::any_completion_handler<void(error_code, bus_health)>(std::move(h))); },
        token);
  }

  // The stream of a persistent topic, as the backend (the server, or the memory broker) has it: messages,
  // sequences, configuration. stream_not_found_for_topic for an ephemeral topic.
  template <class Token = default_token>
  auto topic_stream_info(std::string_view topic, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, stream_info)>(
        [this](auto h, std::string t) {
          topic_stream_info_impl(std::move(t), asio::any_completion_handler<void(error_code, stream_info)>(std::move(h)));
        },
        token, std::string(topic));
  }
  // The durable consumer of the subscriber group (topic, group), as the backend has it: pending and ack-pending
  // counts, delivered and ack floor sequences, configuration.
  template <class Token = default_token>
  auto subscriber_consumer_info(std::string_view topic, std::string_view group, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, consumer_info)>(
        [this](auto h, std::string t, std::string g) {
          subscriber_consumer_info_impl(std::move(t), std::move(g),
                                        asio::any_completion_handler<void(error_code, consumer_info)>(std::move(h)));
        },
        token, std::string(topic), std::string(group));
  }

  [[nodiscard]] bus_metrics metrics() const noexcept;
  // The text of the last error a bus operation completed with.
  [[nodiscard]] std::string last_error() const;
  // The per_topic stream name: the topic with '.' turned into '_' and other characters a stream name cannot
  // hold turned into '_'; when that changed anything but dots, or the name is long, a hash of the topic is
  // appended so that two topics never share a name.
  [[nodiscard]] static std::string stream_name_for(std::string_view topic);

  void close();

  [[nodiscard]] const std::shared_ptr<detail::event_bus_impl>& impl() const noexcept { return impl_; }

 private:
  static const bus_publish_options& no_options() noexcept {
    static const bus_publish_options none;
    return none;
  }
  void start_impl(asio::any_completion_handler<void(error_code)> h);
  void configure_impl(std::string topic, topic_options opts,
                      asio::any_completion_handler<void(error_code, topic_configure_result)> h);
  void configure_many_impl(std::vector<topic_config> topics,
                           asio::any_completion_handler<void(error_code, std::vector<topic_configure_result>)> h);
  void publish_impl(std::string topic, std::string payload, bus_publish_options opts,
                    asio::any_completion_handler<void(error_code, pub_ack)> h);
  void publish_async_impl(std::string topic, std::string payload, bus_publish_options opts,
                          asio::any_completion_handler<void(error_code, ack_future)> h);
  void subscribe_impl(std::string topic, message_handler fn,
                      asio::any_completion_handler<void(error_code, subscription)> h);
  void health_impl(asio::any_completion_handler<void(error_code, bus_health)> h);
  void topic_stream_info_impl(std::string topic, asio::any_completion_handler<void(error_code, stream_info)> h);
  void subscriber_consumer_info_impl(std::string topic, std::string group,
                                     asio::any_completion_handler<void(error_code, consumer_info)> h);
  void publish_envelope_async_impl(std::string topic, envelope env, std::string payload,
                                   asio::any_completion_handler<void(error_code)> h);
  void next_publish_result_impl(asio::any_completion_handler<void(error_code, publish_outcome)> h);
  void publish_envelope_impl(std::string topic, envelope env, std::string payload,
                             asio::any_completion_handler<void(error_code, pub_ack)> h);
  static event_handler_fn wrap_envelope_handler(envelope_handler_fn fn);
  static subscribe_options with_envelope_key(const subscribe_options& o);
  void subscribe_configured_impl(std::string topic, std::string group, event_handler_fn fn,
                                 asio::any_completion_handler<void(error_code, bus_subscription)> h);
  void subscribe_durable_impl(std::string topic, event_handler_fn fn, subscribe_options opts,
                              asio::any_completion_handler<void(error_code, bus_subscription)> h);
  asio::awaitable<std::tuple<error_code, pub_ack>> publish_awaitable_ec(std::string_view topic,
                                                                       std::string_view payload,
                                                                       const bus_publish_options& opts);
  asio::awaitable<pub_ack> publish_awaitable(std::string_view topic, std::string_view payload,
                                             const bus_publish_options& opts);
  asio::awaitable<std::tuple<error_code, ack_future>> publish_async_awaitable_ec(std::string_view topic,
                                                                                std::string_view payload,
                                                                                const bus_publish_options& opts);
  asio::awaitable<ack_future> publish_async_awaitable(std::string_view topic, std::string_view payload,
                                                      const bus_publish_options& opts);

  std::shared_ptr<detail::event_bus_impl> impl_;
};

}  // namespace natsbus
