// Internal: one durable bus subscription (see natsbus/bus_subscribe.hpp). Touched only on the connection's
// executor, except stats() and last_error(), which any thread may call.
#pragma once

#include "bus/memory_broker.hpp"
#include "connection/connection_impl.hpp"
#include "jetstream/ring.hpp"
#include "metrics/latency_buckets.hpp"

#include <natsbus/bus_subscribe.hpp>
#include <natsbus/consumer.hpp>
#include <natsbus/event_bus.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace natsbus::detail {

class event_bus_impl;

class bus_subscriber : public std::enable_shared_from_this<bus_subscriber> {
 public:
  bus_subscriber(std::shared_ptr<event_bus_impl> bus, std::string topic, std::string stream, subscribe_options o,
                 event_handler_fn fn);

  // The durable consumer's name: "<group>__<topic's stream name>".
  static std::string consumer_name_for(std::string_view topic, std::string_view group);
  static error_code check_options(const subscribe_options& o, std::string& why);
  static bus_subscription wrap(std::shared_ptr<bus_subscriber> s) { return bus_subscription(std::move(s)); }

  [[nodiscard]] consumer_config wanted_consumer() const;
  // Creates, updates or checks the consumer per the strategy (as the bus does for streams).
  asio::awaitable<error_code> ensure_consumer(topic_strategy strategy);
  error_code start_consuming();
  error_code started();  // the consume runs: the dispatcher and the keep-alive timer start
  void stop();

  [[nodiscard]] subscriber_stats stats() const;
  [[nodiscard]] std::string last_error() const;
  [[nodiscard]] const std::string& consumer() const noexcept { return consumer_; }
  [[nodiscard]] const std::string& topic() const noexcept { return topic_; }
  [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
  [[nodiscard]] const std::string& group() const noexcept { return opts_.group; }
  [[nodiscard]] const asio::any_io_executor& executor() const noexcept;
  // Handlers' run times, start to completion (those cancelled at their timeout are not counted). Any thread.
  [[nodiscard]] const latency_buckets& handler_latency() const noexcept { return handler_latency_; }

 private:
  // A handler slot: one of max_concurrency coroutines that take runnable events in turn and run their handlers
  // inline (a handler that does not suspend costs no trip through the scheduler).
  struct worker_state {
    explicit worker_state(const asio::any_io_executor& ex) : wake(ex) {}
    asio::steady_timer wake;           // an idle worker waits here
    asio::cancellation_signal cancel;  // a handler past its timeout is cancelled through it
    bool abandoned = false;            // its handler timed out: another worker took its place; it ends
  };
  struct held_event {
    std::string subject, reply, payload, stream, key, bad;
    headers hdrs;
    bool has_headers = false;
    bool running = false;
    worker_state* worker = nullptr;  // the worker running its handler (while running)
    std::chrono::steady_clock::time_point deadline;
    std::uint64_t seq = 0, delivery = 1;
    std::chrono::steady_clock::time_point kept;     // the last in-progress ack (or arrival)
    std::chrono::steady_clock::time_point arrived;
    bus_event view;                              // over the strings above; valid while the event lives
  };
  using event_ptr = std::shared_ptr<held_event>;

  asio::awaitable<void> dispatch(std::shared_ptr<bus_subscriber> self);
  // One delivery, from a pull consume or the memory broker: copied into a held event (or acked again when it
  // was handled already).
  struct incoming {
    std::string_view subject, reply, header_block, payload;
  };
  // now: when the dispatcher woke (one clock read per run of deliveries, not per event).
  void take(const incoming& in, const message_info& mi, std::chrono::steady_clock::time_point now);
  void take(js_message& m, std::chrono::steady_clock::time_point now);
  message_info info_;  // a pull delivery's, read from its ack subject into reused strings
  bus_event view_of(const held_event& e) const;
  void pump();
  asio::awaitable<void> work(std::shared_ptr<bus_subscriber> self, std::shared_ptr<worker_state> w);
  void spawn_worker();
  void forget_running(const held_event* ev);
  void expire_handlers(std::chrono::steady_clock::time_point now);
  void outcome(const event_ptr& ev, handle_result r);
  asio::awaitable<void> dead_letter_then(std::shared_ptr<bus_subscriber> self, event_ptr ev, handle_result r);
  void retry(const event_ptr& ev, std::chrono::milliseconds delay);
  asio::awaitable<bool> dead_letter(held_event& ev, const std::string& reason);
  void finish(const event_ptr& ev);
  void ack(held_event& ev, std::string_view body);
  void send_ack(std::string_view reply, std::string_view body);
  bool flush_posted_ = false;
  static constexpr int flush_turns = 16;
  void post_flush(int turns);
  void arm_keep_alive();
  void set_error(std::string text);

  std::shared_ptr<event_bus_impl> bus_;
  std::string topic_, stream_, consumer_;
  subscribe_options opts_;
  event_handler_fn fn_;
  std::optional<pull_consumer> pc_;
  std::shared_ptr<memory_consume> mc_;  // the memory backend's consume, instead of pc_
  bool running_ = false;
  std::chrono::milliseconds keep_every_{};
  asio::steady_timer keep_timer_;
  asio::steady_timer room_;  // the dispatcher waits here while too many events are held

  // Every held event, by stream sequence (a few hundred at most: a sorted array beats a tree's node per event).
  // A ring: events finish mostly in stream order, so the one erased is at or near the front and nothing moves.
  ring<event_ptr> held_events_;
  std::size_t held_index(std::uint64_t seq) const;  // the first at or after seq
  event_ptr* held_find(std::uint64_t seq);
  void held_erase(std::uint64_t seq);
  // Per key with events held: its queue, the head (running or retrying) first. A key whose queue empties gives
  // its node back to spare_keys_, so keys coming and going allocate nothing once warm.
  using key_queues = std::unordered_map<std::string, ring<event_ptr>>;
  key_queues keys_;
  std::vector<key_queues::node_type> spare_keys_;
  ring<event_ptr>& key_queue(const std::string& key);
  ring<event_ptr> runnable_;
  std::vector<held_event*> running_events_;  // handlers running, for their deadlines (held: owned by held_events_)
  std::vector<std::shared_ptr<worker_state>> idle_;  // workers waiting for a runnable event
  std::vector<event_ptr> spare_;  // finished events, kept with their strings' storage for the next ones
  static constexpr std::size_t yield_every = 64;  // a worker that never suspends lets I/O in this often
  // Stream sequences handled (acked or dead-lettered) here, within the newest done_window sequences: a
  // redelivery of one is a duplicate. A bitmap over a sliding window: no allocation per event.
  static constexpr std::uint64_t done_window = 131072;
  std::vector<std::uint64_t> done_bits_ = std::vector<std::uint64_t>(done_window / 64);
  std::uint64_t done_base_ = 0;  // the lowest sequence the window covers
  void remember_done(std::uint64_t seq);
  [[nodiscard]] bool is_done(std::uint64_t seq) const noexcept;
  bool room_waiting_ = false;  // the dispatcher waits for held events to drop
  std::size_t busy_ = 0;  // handlers running (or an event between its attempts, for unkeyed ones)
  std::size_t held_ = 0;

  struct counters {
    counter received, redelivered, duplicates, handled, retried, dead_lettered, timeouts, in_progress_acks;
  } stats_;
  std::atomic<std::size_t> busy_seen_{0}, held_seen_{0};
  std::atomic<std::uint64_t> pending_seen_{0};  // the newest delivery's pending count
  std::atomic<std::int64_t> oldest_ns_{0};       // arrival of the oldest held event (steady clock), 0: none
  std::atomic<bool> consuming_{false};
  latency_buckets handler_latency_;
  void note_oldest();

  mutable std::mutex error_mutex_;
  std::string last_error_;
};

}  // namespace natsbus::detail
