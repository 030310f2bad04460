// Internal: the state and coroutines behind natsbus::connection. Everything here runs on strand_.
#pragma once

#include <natsbus/connection.hpp>
#include <natsbus/protocol/nuid.hpp>
#include <natsbus/protocol/parser.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace natsbus::detail {

// A layer that resumes its waiters at the end of the reader's batch (see connection_impl::end_batch).
class batch_listener {
 public:
  virtual void after_batch() = 0;

 protected:
  ~batch_listener() = default;
};

using void_handler = asio::any_completion_handler<void(error_code)>;
using message_handler = asio::any_completion_handler<void(error_code, message)>;

// Completes a handler without ever running it inside the caller: the completion is posted to `via` (the
// connection's strand) and from there dispatched to the handler's associated executor. (An
// any_completion_executor cannot be asked for blocking.never, so posting straight to it could run inline.)
template <class Executor, class Handler, class... Args>
void complete(const Executor& via, Handler&& h, Args&&... args) {
  asio::post(via, [via, h = std::forward<Handler>(h), ... a = std::forward<Args>(args)]() mutable {
    auto ex = asio::get_associated_executor(h, via);
    ex.execute([h = std::move(h), ... a = std::move(a)]() mutable { std::move(h)(std::move(a)...); });
  });
}

// Relaxed counter with a single writer (the strand): no locked instruction on the hot path.
struct counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n) noexcept { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

struct server_address {
  std::string scheme = "nats";
  std::string host;
  std::uint16_t port = 4222;
  std::string user;
  std::string password;
  std::string token;
  std::string redacted;  // for logs: no credentials
};

// Parses nats://[user[:pass]@]host[:port] (also tls://, ws://, wss://; a bare host:port means nats://).
error_code parse_server_url(std::string_view url, server_address& out);

// connection_options::inbox_prefix's rule: a subject with no wildcards, at most max_inbox_prefix characters. In
// url.cpp with parse_server_url: the configuration loader (and its fuzzer) checks it without the Asio units.
inline constexpr std::size_t max_inbox_prefix = 64;
[[nodiscard]] bool valid_inbox_prefix(std::string_view prefix) noexcept;
// The rule in words, for the errors that refuse a prefix.
inline constexpr std::string_view inbox_prefix_rule = "a subject with no wildcards, at most 64 characters";
static_assert(max_inbox_prefix == 64, "inbox_prefix_rule names the limit");

struct sub_state {
  std::weak_ptr<connection_impl> conn;
  std::uint64_t sid = 0;
  std::string subject;
  std::string queue;
  std::deque<message> queue_msgs;
  std::size_t queue_bytes = 0;
  std::size_t max_pending_msgs = 0;
  std::size_t max_pending_bytes = 0;
  std::optional<message_handler> waiter;
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::size_t> pending{0};
  std::uint64_t max_msgs = 0;  // auto-unsubscribe limit, 0 = none
  // Internal subscriptions (JetStream acks) take frames inline in the reader, with no copy and no queue.
  std::function<void(const protocol::event&)> raw;
  bool closed = false;         // no more messages will arrive
  bool in_slow_state = false;  // reported once per overflow episode
};

// idle -> connecting -> connected <-> reconnecting; draining and closed are terminal paths.
enum class conn_state { idle, connecting, connected, reconnecting, draining, closed };

// One server of the pool: a seed URL or one the cluster announced.
struct pool_entry {
  server_address addr;
  bool discovered = false;
  bool lame_duck = false;
  int attempts = 0;     // failed attempts since the last success
  int auth_errors = 0;  // authorization failures in a row
  std::chrono::steady_clock::time_point last_attempt{};
};

class connection_impl : public std::enable_shared_from_this<connection_impl> {
 public:
  connection_impl(asio::any_io_executor ex, connection_options opts);

  // The executor that serializes the connection's state: a strand, or for a single-threaded io_context
  // (concurrency hint 1) the io_context's own executor, which needs no strand and copies without allocating.
  using strand_type = asio::any_io_executor;

  // --- operations, all called on strand_ ---
  asio::awaitable<void> connect_op();
  void do_publish(std::string_view subject, std::string_view payload, const headers* hdrs, std::string_view reply,
                  void_handler h);
  void queue_frame(std::string_view frame, std::uint64_t payload_bytes, void_handler h);
  // The synchronous publish: queues the frame when the buffer is under its limit. False with ec clear means
  // "full or not on the owner thread: take the asynchronous path".
  bool try_queue(std::string_view subject, std::string_view payload, const headers* hdrs, std::string_view reply,
                 error_code& ec);
  [[nodiscard]] bool on_owner_thread() const noexcept {
    return io_ex_ ? io_ex_->running_in_this_thread() : real_strand_.running_in_this_thread();
  }
  [[nodiscard]] error_code check_publish(std::string_view subject, std::string_view payload, const headers* hdrs,
                                         std::string_view reply) const;
  void do_subscribe(std::string_view subject, std::string_view queue,
                    asio::any_completion_handler<void(error_code, subscription)> h);
  void do_request(std::string_view subject, std::string_view payload, const headers* hdrs,
                  std::chrono::milliseconds timeout, message_handler h);
  void do_flush(void_handler h);
  asio::awaitable<void> drain_op();
  void do_close(error_code reason);
  void sub_next(const std::shared_ptr<sub_state>& s, message_handler h);
  void sub_unsubscribe(const std::shared_ptr<sub_state>& s, std::uint64_t max_msgs);

  template <class Handler, class... Args>
  void done(Handler&& h, Args&&... args) {
    complete(strand_, std::forward<Handler>(h), std::forward<Args>(args)...);
  }

  // Raw access for the JetStream layer: it appends encoded frames to wbuf_ and wakes the writer.
  void wake_writer();
  // Hands wbuf_ to the socket from here when the writer is idle: for a frame that nothing else will join
  // (a lone request or publish awaiting its answer), one system call and no trip through the scheduler.
  bool write_now();  // true when all of wbuf_ left
  // write_now() for a frame whose caller now waits for its reply: arms busy polling (options::busy_poll).
  void write_lone();

  // ---- busy polling (see connection_options::busy_poll) ----
  std::chrono::steady_clock::time_point lone_sent_{};  // when the awaited lone frame left; epoch: none
  std::chrono::nanoseconds rtt_avg_{0};                // moving average of lone round trips
  std::chrono::steady_clock::time_point spin_until_{};
  std::uint64_t spin_gen_ = 0;  // a spinner step of an older generation stops
  bool spinning_ = false;
  void note_read();   // data arrived: ends the spin, takes a round-trip sample
  void maybe_spin();  // the reader is about to wait for data
  void spin_step(std::uint64_t gen);

  // The reader's batch: the frames of one read are handled in one go. Layers that resolved waiters during the
  // batch ask to run once it is over (defer_to_batch_end); they then resume their coroutines directly, before
  // the reader touches the socket again, so a reply goes out with no scheduler round in between.
  bool in_batch_ = false;
  void defer_to_batch_end(std::shared_ptr<batch_listener> l) { batch_listeners_.push_back(std::move(l)); }
  void end_batch();
  std::vector<std::shared_ptr<batch_listener>> batch_listeners_, batch_running_;
  // An internal subscription whose frames go to `fn` inline in the reader. Returns its sid (0 when down).
  std::uint64_t subscribe_raw(std::string_view pattern, std::function<void(const protocol::event&)> fn);
  [[nodiscard]] bool writable() const noexcept {
    auto st = state_.load(std::memory_order_relaxed);
    return st == conn_state::connected || st == conn_state::draining;
  }
  // Connected, or reconnecting with a reconnect buffer: frames may be appended to wbuf_.
  [[nodiscard]] bool accepting() const noexcept { return writable() || buffering(); }
  // Called on every close with the reason, after pending operations failed (for the JetStream layer).
  std::vector<std::function<void(error_code)>> on_close_;
  // Called when the connection is lost and a reconnect begins, and once a new session has replayed its
  // subscriptions (frames appended then go out first thing).
  std::vector<std::function<void()>> on_disconnect_;
  std::vector<std::function<void()>> on_reconnect_;
  [[nodiscard]] bool buffering() const noexcept {
    auto st = state_.load(std::memory_order_relaxed);
    return st == conn_state::reconnecting && opts_.reconnect_buffer_size > 0;
  }

  // Set when the executor is a single-threaded io_context's: its one thread owns the state.
  std::optional<asio::io_context::executor_type> io_ex_;
  asio::strand<asio::any_io_executor> real_strand_;
  strand_type strand_;  // io_ex_ when set, real_strand_ otherwise
  connection_options opts_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<conn_state> state_{conn_state::idle};
  std::atomic<std::size_t> max_payload_{1024 * 1024};

  // Connection statistics; single writer.
  counter in_msgs_, out_msgs_, in_bytes_, out_bytes_, reconnects_, dropped_msgs_;

  // Cold data shared with other threads.
  mutable std::mutex cold_mutex_;
  server_info info_;
  std::string last_error_;
  event_handler on_event_;

  void emit(event_kind kind, error_code ec = {}, std::string text = {}, std::uint64_t sid = 0);

  // --- session ---
  asio::ip::tcp::socket socket_;
  protocol::parser parser_;
  std::vector<char> rbuf_;
  std::size_t rbegin_ = 0, rend_ = 0;
  std::string wbuf_;      // producers append here
  std::string wire_;      // the batch on the wire
  bool writer_parked_ = false;  // the writer waits for work: the socket is free for write_now()
  bool wake_sent_ = false;      // the parked writer's wait was cancelled and it is about to resume
  void unpark_writer();         // cancels the parked writer's wait, once
  static constexpr std::size_t early_write_bytes = 1024 * 1024;
  std::size_t direct_write_at_ = early_write_bytes;  // wbuf_ size at which wake_writer next writes directly
  asio::steady_timer writer_wake_;
  asio::steady_timer ping_timer_;
  int pings_out_ = 0;
  std::deque<std::optional<void_handler>> pong_waiters_;  // nullopt: a keepalive PING
  std::deque<void_handler> blocked_publishers_;           // waiting for the buffer to drain
  std::vector<pool_entry> pool_;
  std::size_t current_ = 0;  // index in pool_ of the server of the current (or last) session
  std::size_t wbuf_pings_ = 0;  // PING frames in wbuf_ (not yet handed to the writer)
  // Bumped each time the writer takes wbuf_: a frame appended while it was g has left wbuf_ once it is past g.
  std::uint64_t wbuf_gen_ = 0;
  asio::steady_timer reconnect_timer_;
  std::uint64_t rng_state_ = 0;
  std::uint64_t random() noexcept;  // splitmix64

  asio::awaitable<error_code> try_server(pool_entry& e, std::string& error_text);
  asio::awaitable<error_code> reconnect_loop();
  asio::awaitable<void> reconnect_then_run();
  void begin_reconnect(error_code reason);
  void finish_reconnect();
  void add_discovered(const std::vector<std::string>& urls);
  // After appending a frame while reconnecting: false (and the frame removed) when it overflows the
  // reconnect buffer.
  bool fits_reconnect_buffer(std::size_t size_before, error_code& ec);

  asio::awaitable<error_code> handshake(const server_address& addr);
  asio::awaitable<error_code> read_more();
  asio::awaitable<void> run();
  asio::awaitable<error_code> reader();
  asio::awaitable<error_code> writer();
  asio::awaitable<error_code> keepalive();
  [[nodiscard]] error_code handle(const protocol::event& ev);
  [[nodiscard]] error_code handle_info(std::string_view json, bool initial);
  [[nodiscard]] error_code handle_err(std::string_view text);
  void deliver(const std::shared_ptr<sub_state>& s, const protocol::event& ev);
  void release_blocked_publishers();
  void fail_pending(error_code ec);
  void finish_subscription(sub_state& s);

  // --- subscriptions ---
  std::unordered_map<std::uint64_t, std::shared_ptr<sub_state>> subs_;
  std::uint64_t next_sid_ = 1;

  // --- request/reply over one inbox subscription ---
  struct pending_request {
    std::chrono::steady_clock::time_point deadline;
    message_handler handler;
  };
  protocol::nuid nuid_;
  std::string inbox_prefix_;  // "<options::inbox_prefix>.<id>."
  std::uint64_t inbox_sid_ = 0;
  std::uint64_t next_token_ = 1;
  std::unordered_map<std::uint64_t, pending_request> requests_;
  asio::steady_timer request_timer_;
  bool request_sweeper_running_ = false;
  void ensure_inbox();
  void on_response(const protocol::event& ev);
  asio::awaitable<void> request_sweeper();

 public:
  // Hook for the JetStream layer: responses whose token is not a pending request go here.
  std::function<void(const protocol::event&, std::uint64_t token)> on_inbox_message_;
  [[nodiscard]] std::size_t pending_requests() const noexcept { return requests_.size(); }
  [[nodiscard]] const std::string& inbox_prefix();
  std::uint64_t next_token() noexcept { return next_token_++; }
};

// Builds a message (copying the bytes) from a parser event; bad header bytes give bad_header.
error_code make_message(const protocol::event& ev, message& out);

}  // namespace natsbus::detail
