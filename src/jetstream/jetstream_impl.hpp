// Internal: the JetStream context. Everything runs on the connection's strand.
#pragma once

#include "connection/connection_impl.hpp"
#include "jetstream/inline_handler.hpp"
#include "metrics/latency_buckets.hpp"

#include <natsbus/jetstream.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <variant>

namespace natsbus::detail {

using ack_handler = asio::any_completion_handler<void(error_code, pub_ack)>;
using future_handler = asio::any_completion_handler<void(error_code, ack_future)>;

// Stream and consumer names become subject tokens: not empty, no separators, wildcards or whitespace.
[[nodiscard]] bool valid_name(std::string_view name) noexcept;

// One publish awaiting its ack. Pooled: steady state allocates none. Referenced by the ring while in flight
// and by an ack_future while the caller holds one.
//
// Layout: a window holds thousands of states, so a state is cold in the cache by the time its ack arrives.
// What every publish touches (start, the ack, the future) sits in the first two cache lines, the ack after
// them; the frame and the waiters, touched only for a resend or an awaiting caller, come last.
struct alignas(64) ack_state {
  // ---- cache lines 0-1 ----
  std::uint64_t token = 0;     // slot | generation << slot_bits_: the last token of the reply subject
  jetstream_impl* owner = nullptr;  // null once the context is gone (the last reference deletes the state)
  // The connection whose executor owns this state; set when the state is made, never changed. An ack_future
  // used on another thread hops there through it.
  std::shared_ptr<connection_impl> conn;
  // Set (release) once ec and ack hold the outcome, which then stay until the state is released: a future can
  // read them from any thread after an acquire load.
  std::atomic<bool> done{false};
  bool in_ring = false;
  bool has_future = false;
  bool resendable = false;     // carries a message id: sent again after a reconnect
  bool retry_pending = false;  // waiting for retry_at
  bool retry_until_deadline = false;  // publish_options::retry_until_deadline
  bool repair_taken = false;          // the repair hook took it over once (at most once per publish)
  // Set whenever waiter or fast_waiter is given a handler, cleared when the state is released: while it is
  // false neither needs a look.
  bool awaited = false;
  int retries = 0;             // resends after a 503
  error_code ec;
  std::uint64_t serial = 0;    // publish order, for resends
  std::uint64_t tag = 0;
  std::uint64_t wbuf_gen = 0;  // the write buffer's generation when the frame was appended
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point deadline;
  // Resendable: when to send it again if still unacknowledged (max(): never).
  std::chrono::steady_clock::time_point resend_at = std::chrono::steady_clock::time_point::max();
  // The publish started prefetch_distance after this one: acks mostly come in publish order, so on_ack
  // prefetches it.
  ack_state* ahead = nullptr;
  // ---- cache lines 2-3 ----
  pub_ack ack;
  std::chrono::steady_clock::time_point retry_at{};
  // The encoded frame, for resends: after a 503, and after a reconnect for publishes with a message id (the
  // server's duplicate window turns "maybe stored" into "stored once"). Pooled with the state: no allocation
  // once warm.
  std::string frame;
  std::optional<ack_handler> waiter;
  // A coroutine awaiting this ack on the connection's own executor: resumed at the end of the reader's batch.
  inline_handler<error_code, pub_ack> fast_waiter;
};

// The floor above a JetStream context (the event bus), seen through this one interface: it sees the outcome of every
// publish that carried a tag, and may take over a publish whose stream is missing (to re-create it and send again).
class publish_listener {
 public:
  // A tagged publish resolved: the tag, the result, and the time from queueing to outcome.
  virtual void on_publish_outcome(std::uint64_t tag, error_code ec, std::chrono::nanoseconds elapsed) = 0;
  // Asked before a publish fails for a missing stream (a 503 after its retries, or error 10059), once per publish:
  // returning true takes it over. The publish then stays in flight, held (its deadline still runs), until
  // finish_repair sends it again or fails it.
  virtual bool take_repair(ack_state* s, error_code ec) = 0;

 protected:
  ~publish_listener() = default;
};

// The JetStream floor. Below it, the connection's seam: frames appended through append_publish/append_frame, acks
// received as an internal subscription (frame_listener), disconnect/reconnect/close as a lifecycle_listener, and
// waiters resumed at the end of the reader's batch (batch_listener).
class jetstream_impl : public std::enable_shared_from_this<jetstream_impl>,
                       public batch_listener,
                       public frame_listener,
                       public lifecycle_listener {
 public:
  jetstream_impl(std::shared_ptr<connection_impl> conn, jetstream_options opts);
  ~jetstream_impl();

  [[nodiscard]] const jetstream_options& options() const noexcept { return opts_; }
  [[nodiscard]] const connection_impl& connection() const noexcept { return *conn_; }
  [[nodiscard]] const std::shared_ptr<connection_impl>& connection_ptr() const noexcept { return conn_; }
  [[nodiscard]] const std::string& api_prefix() const noexcept { return prefix_; }
  // The floor above, if any: set once, before anything publishes through it.
  void set_listener(std::weak_ptr<publish_listener> l) { listener_ = std::move(l); }

  // Records a JetStream error answered elsewhere (the memory backend's broker), as a server's is recorded.
  void note_api_error(api_error err) {
    std::lock_guard lock(error_mutex_);
    last_error_ = std::move(err);
  }

  // ---- management: one request, one reply ----
  // One $JS.API request, on the connection's strand, and its outcome: the response's payload, or an error code
  // with its text (what failed, or the server's description of a JetStream error, which last_error_ records
  // too). No exceptions: the event bus awaits these directly, and "stream not found" is an answer it expects.
  struct api_reply {
    error_code ec;
    std::string text;
  };
  // The exchange alone: no JSON read.
  asio::awaitable<api_reply> send(std::string subject, std::string body);
  // A response decoded into `out` in one parse (stream_info, consumer_info, account_info, stored_message);
  // the reply's text is empty on success.
  template <class T>
  asio::awaitable<api_reply> request(std::string subject, std::string body, T& out);
  // Throwing described_error on failure (the public management calls): the payload, checked for an error...
  asio::awaitable<std::string> call(std::string subject, std::string body);
  // ...or decoded.
  template <class T>
  asio::awaitable<T> call_decoded(std::string subject, std::string body);
  // Runs a management call on the strand and completes `h`; a failure's text goes to `text` when given.
  template <class T>
  void spawn(asio::awaitable<T> op, asio::any_completion_handler<void(error_code, T)> h,
             std::shared_ptr<std::string> text = {});

  // ---- publish ----
  void publish(std::string_view subject, std::string_view payload, const publish_options& opts,
               std::variant<ack_handler, future_handler> h);
  // The synchronous start: null with ec clear when the window is full or the caller is off the owner thread.
  ack_state* try_start(std::string_view subject, std::string_view payload, const publish_options& opts,
                       error_code& ec);
  // A future that is already resolved (for publishes that need no ack, such as the bus's core topics).
  ack_state* make_resolved(error_code ec, pub_ack ack = {});
  // Ends a repair: on success the publish goes out again (same frame, same message id) with `tag`; a publish
  // no longer in flight as `serial` (it timed out, or the connection closed) is left alone.
  void finish_repair(ack_state* s, std::uint64_t serial, error_code ec, std::uint64_t tag);
  // The subject a publish's frame was sent to.
  [[nodiscard]] static std::string_view subject_of(const ack_state& s) noexcept;
  void release(ack_state* s);  // drops a reference (ring or future)
  void fail_all(error_code ec);
  void wait_complete(asio::any_completion_handler<void(error_code)> h);

  // ---- figures, any thread ----
  [[nodiscard]] jetstream_stats stats() const noexcept;
  [[nodiscard]] const latency_buckets& ack_latency() const noexcept { return ack_latency_; }

 private:
  friend class natsbus::jetstream;
  friend class natsbus::ack_future;

  // ---- the connection's seam ----
  void after_batch() override;
  void on_frame(const protocol::event& ev) override { on_ack(ev); }
  void on_disconnect() override;  // publishes without a message id fail with disconnected; the others wait
  void on_reconnect() override;   // ... and are sent again
  void on_close(error_code reason) override {
    fail_all(reason == error::connection_closed ? reason : error_code(error::disconnected));
  }

  api_reply failed(error_code ec, api_error&& err, bool from_server);
  ack_state* acquire();  // a state from the pool (or a new one while warming up)
  ack_state* start(std::string_view subject, std::string_view payload, const publish_options& opts, error_code& ec);
  void on_ack(const protocol::event& ev);
  void resolve(ack_state* s, error_code ec);
  void unblock();
  bool resend(ack_state* s);  // appends the stored frame to the write buffer again; false when it does not fit
  [[nodiscard]] std::chrono::steady_clock::time_point unacked_resend_after(std::chrono::steady_clock::time_point sent) const;
  asio::awaitable<void> sweeper();

  std::shared_ptr<connection_impl> conn_;
  jetstream_options opts_;
  std::string prefix_;  // "$JS.API" or "$JS.<domain>.API"
  api_error last_error_;
  mutable std::mutex error_mutex_;
  std::weak_ptr<publish_listener> listener_;

  struct blocked_publish {
    std::string_view subject;
    std::string_view payload;
    const publish_options* opts;
    std::variant<ack_handler, future_handler> handler;
  };
  // Resolved states whose fast_waiter resumes once the reader's batch is over.
  std::vector<ack_state*> ready_, ready_running_;
  // Outcomes, counted where they resolve (one writer: the connection's executor).
  counter resent_, acks_, timeouts_, no_responders_, api_errors_, disconnected_, closed_failures_, other_errors_;
  latency_buckets ack_latency_;  // queued to acknowledged
  void count_failure(const error_code& ec) noexcept;
  std::string ack_prefix_;  // "<options::inbox_prefix>.<id>." for acks
  std::uint64_t ack_sid_ = 0;
  // Reply subjects: "<ack_prefix_><slot | generation << slot_bits_>". A slot's generation moves on each time a
  // publish in it resolves, so no subject is used twice: whatever else arrives for a resolved publish (a
  // resend's answer, a late one after a timeout, a new stream leader's second ack) finds no publish.
  std::uint64_t next_serial_ = 1;
  std::vector<ack_state*> ring_;        // by slot
  std::vector<std::uint32_t> slot_gen_; // by slot
  // Free slots, first in first out (a ring of ring_.size()): slots are taken in the order their publishes were
  // answered, so acks, which mostly come in publish order, walk ring_ in order.
  std::vector<std::uint32_t> free_slots_;
  std::size_t free_head_ = 0, free_count_ = 0;
  unsigned slot_bits_ = 0;
  std::size_t mask_ = 0;
  std::size_t in_flight_ = 0;
  std::atomic<std::size_t> in_flight_public_{0};
  // Written on the executor only (a plain store), read by max_pending_seen() from any thread.
  std::atomic<std::size_t> high_water_{0};
  std::vector<std::unique_ptr<ack_state>> all_;  // every state this context owns
  std::vector<ack_state*> free_;
  // The last prefetch_distance publishes started: each is given the next one's state as its `ahead`.
  static constexpr unsigned prefetch_distance = 4;
  std::array<ack_state*, prefetch_distance> recent_{};
  unsigned recent_at_ = 0;
  std::deque<blocked_publish> blocked_;
  std::deque<asio::any_completion_handler<void(error_code)>> complete_waiters_;
  std::string header_scratch_;
  asio::steady_timer sweep_timer_;
  bool sweeper_running_ = false;
  bool closed_ = false;
};

}  // namespace natsbus::detail
