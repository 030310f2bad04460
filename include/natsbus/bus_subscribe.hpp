// The event bus's subscribe half: durable handlers over a JetStream consumer per (topic, subscriber group).
//
// A handler is a coroutine that returns what became of the event: success (acked), retry (nak'ed with a delay,
// so it comes back), or reject (dead-lettered at once). Nothing is acked before its handler succeeded, nothing
// loops forever (after max_deliver deliveries the event goes to the dead-letter topic, with its reason), and
// nothing vanishes silently (a dead letter that cannot be published is not terminated: it comes back).
//
// Keyed order: events with the same key (a header, or a key function) are handled one at a time in stream
// order; a failed event blocks its key until it succeeds or is dead-lettered, while other keys go on. Up to
// max_concurrency handlers run at once. While a handler runs, and while an event waits behind its key, in-progress
// acks keep it from redelivery; a handler that overruns its timeout is cancelled and retried.
#pragma once

#include <natsbus/jetstream.hpp>
#include <natsbus/protocol/envelope.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus {

namespace detail {
class bus_subscriber;
}

// One event as a handler sees it. The views stay valid until the handler's coroutine completes.
struct bus_event {
  std::string_view topic;    // the subject it was published to
  std::string_view payload;
  const headers* hdrs = nullptr;  // null when it has none
  std::string_view key;      // its ordering key; empty: unkeyed
  std::string_view stream;
  std::uint64_t stream_sequence = 0;
  std::uint64_t delivery = 1;  // 1 on the first delivery
};

// What became of an event.
class handle_result {
 public:
  enum class kind { success, retry, reject };
  handle_result() = default;  // success
  static handle_result ok() { return handle_result(kind::success, {}, {}); }
  // Handle it again later: after `delay`, or, when 0, after the subscription's backoff for this delivery.
  static handle_result retry(std::string reason = {}, std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
    return handle_result(kind::retry, std::move(reason), delay);
  }
  // Never handle it again: dead-lettered with the reason.
  static handle_result reject(std::string reason) { return handle_result(kind::reject, std::move(reason), {}); }

  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }
  [[nodiscard]] std::chrono::milliseconds delay() const noexcept { return delay_; }

 private:
  handle_result(kind k, std::string r, std::chrono::milliseconds d) : kind_(k), reason_(std::move(r)), delay_(d) {}
  kind kind_ = kind::success;
  std::string reason_;
  std::chrono::milliseconds delay_{0};
};

using event_handler_fn = std::function<asio::awaitable<handle_result>(const bus_event&)>;
using key_function = std::function<std::string(const bus_event&)>;

struct subscribe_options {
  // The subscriber group: one durable consumer per (topic, group), shared by every process of the group.
  std::string group;
  std::chrono::milliseconds ack_wait{30000};
  std::int64_t max_deliver = 5;  // deliveries before the event is dead-lettered (at least 1)
  // Retry delays by delivery: the first retry waits backoff[0], the second backoff[1], ...; the last repeats.
  std::vector<std::chrono::milliseconds> backoff{std::chrono::milliseconds(1000), std::chrono::milliseconds(5000),
                                                 std::chrono::milliseconds(30000)};
  std::int64_t max_ack_pending = 1000;  // the server holds back deliveries past this many unacked events
  deliver_policy deliver = deliver_policy::all;
  std::size_t max_concurrency = 1;  // handlers running at once
  // Keyed order: the key is this header's value (empty name: no header key) or key_fn's result (when set).
  std::string key_header;
  key_function key_fn;
  // A handler running longer is cancelled and its event retried. 0: two thirds of ack_wait.
  std::chrono::milliseconds handler_timeout{0};
  std::string dead_letter_topic;  // empty: "<topic>.dlq"
  // Events fetched ahead of the handlers (each kept alive by in-progress acks while it waits). 0: 512, or 4 per
  // handler when more, within max_ack_pending. Lower it when handlers are slow and several processes share the
  // group: what one process has fetched, the others cannot take.
  std::size_t prefetch = 0;
};

// An event's envelope (natsbus/protocol/envelope.hpp): id (the Nats-Msg-Id), type, version, time, aggregate id
// (the ordering key), trace and correlation ids, tenant; carried in headers, the payload stays bytes.
using envelope = protocol::envelope_fields;
// An envelope handler: the envelope, checked, and the event it came with. An event whose envelope is missing or
// broken never reaches it: it is dead-lettered with the reason.
using envelope_handler_fn = std::function<asio::awaitable<handle_result>(const envelope&, const bus_event&)>;

// Headers a dead letter carries.
inline constexpr std::string_view dlq_topic_header = "Natsbus-Dlq-Topic";
inline constexpr std::string_view dlq_stream_header = "Natsbus-Dlq-Stream";
inline constexpr std::string_view dlq_sequence_header = "Natsbus-Dlq-Sequence";
inline constexpr std::string_view dlq_deliveries_header = "Natsbus-Dlq-Deliveries";
inline constexpr std::string_view dlq_error_header = "Natsbus-Dlq-Error";

struct subscriber_stats {
  std::uint64_t received = 0;       // deliveries taken from the consumer (redeliveries included)
  std::uint64_t redelivered = 0;    // of those, deliveries after the first (the server's count says so)
  // Deliveries of an event this subscription had already handled (its ack was lost, e.g. with a server killed
  // before writing it out): acked again, the handler not called. The last 65,536 handled are remembered.
  std::uint64_t duplicates = 0;
  std::uint64_t handled = 0;        // handlers that succeeded (acked)
  std::uint64_t retried = 0;        // handlers that failed, threw or timed out, and were nak'ed for a retry
  std::uint64_t dead_lettered = 0;  // published to the dead-letter topic and terminated
  std::uint64_t timeouts = 0;       // handlers cancelled at their timeout
  std::uint64_t in_progress_acks = 0;
  std::size_t running = 0;  // handlers running now
  std::size_t waiting = 0;  // events held behind their key or for a free handler
  // Backlog, without a request: the pending count of the newest delivery's ack subject (stream messages not yet
  // delivered to this consumer) plus the events held here unacked.
  std::uint64_t lag = 0;
  std::chrono::milliseconds oldest_unacked_age{0};  // the oldest event held here unacked; 0 when none
  bool consuming = false;  // false once stopped, or when the consume ended
};

// One subscription's part of bus_health.
struct subscription_health {
  std::string topic;
  std::string group;
  std::string consumer;
  bool consuming = false;
  std::uint64_t lag = 0;  // num_pending + num_ack_pending from the consumer's info when it answered, else stats
  std::chrono::milliseconds oldest_unacked_age{0};
  std::string problem;  // empty when healthy
};

// What event_bus::health() found. Nothing is published to find it.
struct bus_health {
  bool connected = false;
  bool jetstream = false;  // $JS.API.INFO answered
  std::string problem;     // the first problem found, empty when healthy
  std::vector<subscription_health> subscriptions;
  [[nodiscard]] bool healthy() const noexcept { return problem.empty(); }
};

// A running durable subscription. Dropping it does not stop it; stop() does (the running handlers finish).
class bus_subscription {
 public:
  bus_subscription() = default;
  void stop();
  [[nodiscard]] subscriber_stats stats() const;
  [[nodiscard]] bool valid() const noexcept { return impl_ != nullptr; }
  // The durable consumer's name on the server.
  [[nodiscard]] const std::string& consumer() const noexcept;
  // The last error (a dead letter that could not be published, a consume error), with its text.
  [[nodiscard]] std::string last_error() const;

 private:
  friend class detail::bus_subscriber;
  explicit bus_subscription(std::shared_ptr<detail::bus_subscriber> s) : impl_(std::move(s)) {}
  std::shared_ptr<detail::bus_subscriber> impl_;
};

}  // namespace natsbus
