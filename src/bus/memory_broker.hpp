// Internal: the memory backend's in-process broker (event_bus_config::backend = memory).
//
// It keeps what a JetStream server keeps for the bus, with the same answers: streams (subjects, limits, a
// duplicate window), durable consumers (filter, deliver policy, ack wait, max deliver, max ack pending, pending
// counts, redelivery after ack_wait or a nak's delay) and core subscriptions. The bus talks to it in the server's
// terms: stream requests with JSON bodies, acks as bodies sent to "$JS.ACK..." reply subjects, JetStream error
// codes. So the bus's strategies, subscriptions, retries and dead letters run unchanged over it.
//
// Everything runs on the bus's executor (the connection's strand, or a single-threaded io_context); nothing here
// takes a lock. Messages live until the stream's limits drop them (retention is always "limits").
#pragma once

#include <natsbus/connection.hpp>
#include <natsbus/consumer.hpp>
#include <natsbus/jetstream.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace natsbus::detail {

class memory_consume;
struct sub_state;

// One delivery handed to a consume: views into the stored message, valid until the consume is asked again.
struct memory_delivery {
  std::string_view subject, header_block, payload;
  std::string reply;  // "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>"
  message_info info;
};

class memory_broker : public std::enable_shared_from_this<memory_broker> {
 public:
  explicit memory_broker(asio::any_io_executor ex);

  // A stream request as the server answers it: verb INFO (empty body), CREATE, UPDATE (a stream config as
  // JSON), DELETE. A JetStream error is make_jetstream_error(code), with `err` filled.
  error_code stream_request(std::string_view verb, const std::string& name, std::string_view body, stream_info& out,
                            api_error& err);
  error_code consumer_info(std::string_view stream, std::string_view name, natsbus::consumer_info& out,
                           api_error& err);
  // CONSUMER.CREATE (update false: an existing consumer with another configuration is an error) or UPDATE.
  error_code add_consumer(std::string_view stream, const consumer_config& cfg, bool update,
                          natsbus::consumer_info& out, api_error& err);
  error_code delete_consumer(std::string_view stream, std::string_view name, api_error& err);

  // A JetStream publish: stored in the stream whose subjects match (no_responders when none does, as a server
  // answers), deduplicated by msg_id within the stream's duplicate window. Core subscribers see it too.
  error_code publish(std::string_view subject, std::string_view payload, const headers* hdrs, std::string_view msg_id,
                     pub_ack& out, api_error& err);
  // A core publish: only core subscriptions see it (at most once, as core NATS).
  error_code publish_core(std::string_view subject, std::string_view payload, const headers* hdrs);
  subscription subscribe_core(std::string pattern, std::function<void(const message&)> fn);

  // An ack body ("+ACK", "-NAK" with an optional {"delay":ns}, "+WPI", "+TERM [reason]", "+NXT") sent to a
  // delivery's reply subject. Acks of deliveries no longer pending are ignored, as the server does.
  void ack(std::string_view reply, std::string_view body);

  // A pull consume of the consumer; consumer_not_found when it does not exist.
  std::shared_ptr<memory_consume> consume(std::string_view stream, std::string_view consumer, error_code& ec);

  // Ends every consume (connection_closed) and core subscription.
  void close();
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] const asio::any_io_executor& executor() const noexcept { return ex_; }

 private:
  friend class memory_consume;
  using clock = std::chrono::steady_clock;

  struct stored {
    std::uint64_t seq = 0;
    std::string subject, header_block, payload;
    std::int64_t time_ns = 0;  // system clock, for the ack subject
    clock::time_point at;      // steady clock, for max_age
  };
  struct pending_entry {
    std::uint64_t deliveries = 0;
    clock::time_point due;  // redelivered from then on (ack_wait, or a nak's delay)
  };
  struct consumer_state {
    consumer_config cfg;
    std::string stream, created;
    std::uint64_t next_seq = 1;  // the next stream sequence considered for a first delivery
    std::uint64_t matching = 0;  // stored messages from next_seq on that match the filter
    std::uint64_t consumer_seq = 0;
    std::uint64_t redelivered = 0;
    std::map<std::uint64_t, pending_entry> pending;  // by stream sequence
    std::set<std::pair<clock::time_point, std::uint64_t>> timeline;  // (due, stream sequence)
    std::vector<std::weak_ptr<memory_consume>> consumes;
    bool deleted = false;
  };
  struct stream_state_ {
    stream_config cfg;
    std::string created;
    std::deque<stored> msgs;
    std::uint64_t last_seq = 0;
    std::uint64_t bytes = 0;
    std::unordered_map<std::string, std::uint64_t> ids;  // msg id -> sequence, within the duplicate window
    std::deque<std::pair<clock::time_point, std::string>> id_order;
    std::map<std::string, std::shared_ptr<consumer_state>, std::less<>> consumers;
  };
  struct core_sub {
    std::string pattern;
    std::function<void(const message&)> fn;
    std::shared_ptr<sub_state> state;
  };

  error_code fail(api_error& err, int status, int code, std::string text);
  stream_state_* find_stream(std::string_view name);
  stream_state_* stream_for_subject(std::string_view subject);
  error_code check_stream(const stream_config& c, const std::string& name, api_error& err, const stream_state_* self);
  void fill(const stream_state_& s, stream_info& out) const;
  void fill(const consumer_state& c, natsbus::consumer_info& out) const;
  void enforce_limits(stream_state_& s);
  void drop_front(stream_state_& s);
  void forget_ids(stream_state_& s, clock::time_point now);
  static bool filter_matches(const consumer_config& c, std::string_view subject);
  void start_position(stream_state_& s, consumer_state& c);
  // The consumer's next delivery (a redelivery due, else the next matching message within max_ack_pending).
  bool take(consumer_state& c, memory_delivery& out);
  const stored* message_at(const stream_state_& s, std::uint64_t seq) const;
  void settle(consumer_state& c, std::map<std::uint64_t, pending_entry>::iterator it);
  void reschedule(consumer_state& c, std::uint64_t seq, pending_entry& p, clock::time_point due);
  void wake(consumer_state& c);
  void deliver_core(std::string_view subject, std::string_view payload, const headers* hdrs);

  asio::any_io_executor ex_;
  std::map<std::string, stream_state_, std::less<>> streams_;
  std::vector<core_sub> core_;
  std::uint64_t next_sid_ = 1;
  bool closed_ = false;
};

// One pull consume over a memory consumer: the bus's subscription takes deliveries from it as from a pull
// consumer's consume.
class memory_consume : public std::enable_shared_from_this<memory_consume> {
 public:
  memory_consume(std::shared_ptr<memory_broker> broker, std::shared_ptr<memory_broker::consumer_state> c);
  // The next delivery, waiting for one; subscription_closed once stopped, connection_closed once the broker
  // closed, consumer_deleted when the consumer was deleted.
  asio::awaitable<std::tuple<error_code, const memory_delivery*>> next();
  // A delivery ready now, or null.
  const memory_delivery* try_next();
  void stop();

 private:
  friend class memory_broker;
  error_code ended() const;
  std::shared_ptr<memory_broker> broker_;
  std::shared_ptr<memory_broker::consumer_state> c_;
  asio::steady_timer wake_;
  memory_delivery current_;
  bool stopped_ = false;
};

}  // namespace natsbus::detail
