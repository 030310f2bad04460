// Internal: the state behind natsbus::event_bus. The topic table (the stream cache) is touched only on the
// connection's executor; the registry of configured options is cold and guarded by a mutex.
#pragma once

#include "bus/memory_broker.hpp"
#include "jetstream/jetstream_impl.hpp"

#include <natsbus/event_bus.hpp>

#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace natsbus::detail {

class bus_subscriber;

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// A topic's publish figures for metrics: written on the executor, read by scrapes from any thread. They outlive
// the topic's cache entry (dropped by a repair, made again), so that the counters never go back.
struct topic_counters {
  counter published, acked, failed;
};

// One topic in the stream cache.
struct topic_entry {
  bool ready = false;  // false: a resolution is under way and `waiters` wait for it
  bool persistent = true;
  std::string stream;
  bool replicated = false;  // the stream has more than one replica: its 503s are retried until the deadline
  std::uint64_t id = 0;  // publish tag, for the JetStream observer
  topic_counters* counters = nullptr;  // set by number(), which every new entry goes through
  std::vector<asio::any_completion_handler<void(error_code)>> waiters;
};

// Ack latency: 4 buckets per power of two of nanoseconds. One writer (the executor), relaxed readers.
class latency_histogram {
 public:
  void record(std::chrono::nanoseconds d) noexcept { buckets_[index(static_cast<std::uint64_t>(d.count()))].add(1); }
  [[nodiscard]] std::chrono::nanoseconds percentile(double q) const noexcept;

 private:
  static std::size_t index(std::uint64_t ns) noexcept;
  static std::uint64_t upper_bound(std::size_t i) noexcept;
  std::array<counter, 256> buckets_{};
};

// The stream a topic should have: a config, and which of its fields the caller actually asked for.
struct wanted_stream {
  stream_config cfg;
  bool description = false, storage = false, max_msgs = false, max_bytes = false, max_age = false,
       max_msg_size = false, discard = false, replicas = false, duplicate_window = false;
};

// A publish outcome that says the topic's stream is gone (or has no leader): 503, or JetStream error 10059.
inline bool is_missing_stream(const error_code& ec) noexcept {
  return ec == error::no_responders ||
         (ec.category() == jetstream_category() && ec.value() == jetstream_errc::stream_not_found);
}

// The outcome of one stream request sequence (ensure_stream) within a configure_topics call. Topics that want
// the same stream alike (every topic of a shared stream) wait for the first one's requests and take its outcome,
// so a batch asks the server once per distinct stream, not once per topic.
struct stream_outcome {
  bool done = false;
  error_code ec;
  std::vector<std::string> differences;
  std::string message;
  std::vector<asio::any_completion_handler<void(error_code)>> waiters;
};
// By stream name and wanted configuration (see event_bus_impl::ensure_stream_once).
using stream_outcomes = std::unordered_map<std::string, stream_outcome, string_hash, std::equal_to<>>;

// One configure_topics call: its topics, their results, and the workers that take them in turn.
struct configure_batch {
  std::vector<topic_config> topics;
  std::vector<topic_configure_result> results;
  std::vector<error_code> errors;
  std::size_t next = 0;       // the next topic a worker takes
  std::size_t workers = 0;    // still running
  std::size_t in_flight = 0;  // topics being configured
  // Topics allowed in flight: as many as the server gets through in a quarter of a request's timeout, at its
  // pace measured over the last completions, within [min_window, max_provisioning_in_flight].
  std::size_t window = 0;
  std::size_t max_window = 0;
  std::chrono::steady_clock::duration budget{};
  std::array<std::chrono::steady_clock::time_point, 32> done_at{};  // the last completions, a ring
  std::chrono::steady_clock::time_point first_done_at{};
  std::size_t done = 0;
  // Workers wait here for room; refills come in bursts (see configure_worker).
  std::optional<asio::steady_timer> gate;
  topic_strategy strategy{};
  stream_outcomes outcomes;
  // optional + emplace: Boost 1.81's any_completion_handler move-assignment recurses without end.
  std::optional<asio::any_completion_handler<void(error_code, std::vector<topic_configure_result>)>> handler;
};

class event_bus_impl : public std::enable_shared_from_this<event_bus_impl>, public publish_listener {
 public:
  event_bus_impl(asio::any_io_executor ex, event_bus_config cfg);

  event_bus_config cfg_;
  connection conn_;
  jetstream js_;
  std::shared_ptr<connection_impl> cimpl_;
  std::shared_ptr<jetstream_impl> jimpl_;
  std::atomic<topic_strategy> strategy_;
  // The memory backend's broker (event_bus_config::backend = memory); null over NATS.
  std::shared_ptr<memory_broker> mem_;

  // ---- on the executor ----
  asio::awaitable<error_code> start_op();
  // Makes the topic's cache entry ready (resolving it once, however many callers ask at the same time).
  asio::awaitable<error_code> ensure_topic(std::string topic);
  asio::awaitable<error_code> resolve(const std::string& topic, topic_entry& entry_at_start);
  // Configures one topic; within a configure_topics call `outcomes` is the batch's, and a stream already asked
  // for alike in the batch is not asked for again.
  asio::awaitable<error_code> configure_op(std::string topic, topic_options opts, topic_strategy strategy,
                                           topic_configure_result& result, stream_outcomes* outcomes = nullptr);
  // A stream request (INFO, CREATE, UPDATE: the verb) straight through the JetStream context. The bus runs on
  // the connection's strand, so it needs none of the public management calls' completion-token layers.
  asio::awaitable<error_code> stream_request(std::string_view verb, const std::string& name, std::string body,
                                             stream_info& out);
  asio::awaitable<error_code> ensure_stream(const wanted_stream& want, topic_strategy strategy, bool lookup_first,
                                            topic_configure_result& result);
  // ensure_stream (create first) once per stream and wanted configuration in `outcomes`: the first topic to want
  // it makes the requests, the others wait for its outcome and take it (created and updated stay with the first).
  asio::awaitable<error_code> ensure_stream_once(const wanted_stream& want, topic_strategy strategy,
                                                 stream_outcomes& outcomes, topic_configure_result& result);
  // The topic's ready cache entry (a hit), or null.
  topic_entry* cached(std::string_view topic) noexcept;
  // Resolves the topic (once for all callers) and returns its entry; null with ec set when that failed.
  asio::awaitable<topic_entry*> resolved(std::string_view topic, error_code& ec);
  asio::awaitable<std::tuple<error_code, pub_ack>> publish_op(std::string_view topic, std::string_view payload,
                                                             const bus_publish_options& opts);
  asio::awaitable<std::tuple<error_code, ack_future>> start_publish(std::string_view topic, std::string_view payload,
                                                                   const bus_publish_options& opts);
  asio::awaitable<std::tuple<error_code, ack_future>> publish_async_op(std::string_view topic,
                                                                      std::string_view payload,
                                                                      const bus_publish_options& opts);
  void configure_many(std::vector<topic_config> topics,
                      asio::any_completion_handler<void(error_code, std::vector<topic_configure_result>)> h);
  asio::awaitable<void> configure_worker(std::shared_ptr<configure_batch> b);
  // A configure_topics window starts at initial_window and never goes below min_window.
  static constexpr std::size_t initial_window = 8;
  static constexpr std::size_t min_window = 2;
  // Records a topic's completion and sets the window from the server's pace.
  void pace(configure_batch& b);
  void finish_configure(configure_batch& b);

  // Fills `out` for a publish of `topic`: the caller's options plus a message id when auto_msg_id is on.
  // A bus publish's tag is its topic's id (never 0).
  void publish_options_for(const topic_entry& e, const bus_publish_options& in, publish_options& out);
  // The stream for a persistent topic under the configured mapping; an error text in `message` otherwise.
  error_code wanted_for(std::string_view topic, const topic_options& opts, wanted_stream& out, std::string& message);
  [[nodiscard]] topic_options options_for(std::string_view topic) const;
  [[nodiscard]] bool is_persistent(const topic_options& o) const noexcept;
  void drop(std::uint64_t id);
  // The jetstream repair hook: takes over a windowed publish whose stream is missing, unless under skip.
  bool take_repair(ack_state* s, error_code ec) override;
  asio::awaitable<void> repair_windowed(std::string topic, ack_state* s, std::uint64_t serial);
  void on_publish_outcome(std::uint64_t tag, error_code ec, std::chrono::nanoseconds elapsed) override;
  void set_error(std::string text);
  // A JetStream error the memory broker answered, kept where the NATS path keeps the server's (last_api_error).
  void note_api_error(api_error err);
  // The memory backend's persistent publish: stored (and its outcome resolved) at once; a missing stream is
  // repaired once, as over NATS.
  asio::awaitable<std::tuple<error_code, ack_future>> memory_publish(std::string_view topic, std::string_view payload,
                                                                     const publish_options& popts, topic_entry* e);
  // Consumer requests through the backend: the JetStream context, or the memory broker.
  asio::awaitable<std::tuple<error_code, consumer_info>> consumer_info_of(std::string stream, std::string consumer);
  asio::awaitable<std::tuple<error_code, consumer_info>> put_consumer(std::string stream, consumer_config cfg,
                                                                     bool update);
  // The stream a topic maps to (its cache entry's, or the configured mapping's); empty with an error text.
  error_code stream_of(std::string_view topic, std::string& stream);
  // Checks the options, ensures the topic's stream and the dead-letter topic's, and the consumer per `strategy`:
  // a subscriber ready to start consuming (the handler may be null when only the consumer is wanted).
  asio::awaitable<std::tuple<error_code, std::shared_ptr<bus_subscriber>>> prepare_subscriber(
      std::string topic, subscribe_options opts, event_handler_fn fn, topic_strategy strategy);
  [[nodiscard]] std::string last_error_text() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

  std::unordered_map<std::string, topic_entry, string_hash, std::equal_to<>> topics_;
  std::unordered_map<std::uint64_t, std::string> topic_by_id_;
  // Gives a new cache entry its id (its publishes' tag) and its topic's counters.
  void number(topic_entry& e, const std::string& topic);
  std::unordered_set<std::string, string_hash, std::equal_to<>> streams_;  // known to exist
  std::uint64_t next_id_ = 1;
  char id_prefix_[10] = {};  // random, for Nats-Msg-Id: prefix + base-62 counter (fits std::string's SSO)
  std::uint64_t next_msg_ = 0;

  counter published_, acked_, failed_, core_published_, lookups_, created_, updated_, hits_, misses_, repairs_,
      consumer_lookups_;
  // Durable consumers known to match what their subscriptions want ("<stream>\n<consumer>"): a second subscribe
  // of a (topic, group) asks the server nothing. Dropped when a subscription finds its consumer deleted.
  std::unordered_map<std::string, consumer_config> consumers_;
  std::atomic<std::size_t> cached_streams_{0};
  latency_histogram latency_;

  // Outcomes of publish_envelope_async: `ready` for next_publish_result(), `reserved` for those in flight.
  struct publish_results {
    std::deque<publish_outcome> ready;
    std::size_t reserved = 0;
    std::deque<asio::any_completion_handler<void(error_code)>> room_waiters;
    std::optional<asio::any_completion_handler<void(error_code, publish_outcome)>> next_waiter;
  } results_;

  // Durable subscriptions started through this bus, for health().
  std::vector<std::weak_ptr<bus_subscriber>> subscribers_;

  // ---- metrics: what a scrape reads from any thread (event_bus_metrics.cpp) ----
  // The executor side: a topic's counters by its entry's id (ids are dense), for publish outcomes.
  std::vector<topic_counters*> counters_by_id_;
  // Made once per topic (the first time it is resolved or configured), then never freed or moved.
  topic_counters& counters_for(std::string_view topic);
  void note_subscriber(const std::shared_ptr<bus_subscriber>& s);
  struct scraped {
    mutable std::mutex mutex;
    std::map<std::string, std::unique_ptr<topic_counters>, std::less<>> topics;
    std::vector<std::weak_ptr<bus_subscriber>> subscribers;
  } scraped_;

  // ---- any thread ----
  mutable std::mutex mutex_;
  std::map<std::string, topic_options, std::less<>> registry_;
  std::string last_error_;
};

}  // namespace natsbus::detail
