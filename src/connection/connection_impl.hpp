// Internal: the state and coroutines behind natsbus::connection. Everything here runs on the connection's executor.
//
// Two parts: connection_core (connection/core.hpp), the sans-I/O decisions (what to send, what a frame completes,
// which server next), and this class, which does the I/O (the session: transport, reader, writer, keepalive, the
// reconnect loop; session.cpp) and the public operations (connection.cpp). The floors above use it through the seam
// at the end of the public section: append a frame, an internal subscription with a frame_listener, a request with a
// reply_stream, and a lifecycle_listener for disconnect, reconnect and close.
#pragma once

#include "connection/core.hpp"
#include "transport/transport.hpp"

#include <natsbus/connection.hpp>
#include <natsbus/protocol/nuid.hpp>
#include <natsbus/protocol/parser.hpp>
#include <natsbus/protocol/url.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <mutex>
#include <vector>

namespace natsbus::detail {

// The URL and inbox prefix rules live in protocol/ (the configuration loader checks them without Asio).
using protocol::inbox_prefix_rule;
using protocol::max_inbox_prefix;
using protocol::parse_server_url;
using protocol::server_address;
using protocol::valid_inbox_prefix;

// A layer that resumes its waiters at the end of the reader's batch (see connection_impl::end_batch).
class batch_listener {
 public:
  virtual void after_batch() = 0;

 protected:
  ~batch_listener() = default;
};

// A floor above that keeps state across sessions (JetStream's in-flight publishes).
class lifecycle_listener {
 public:
  // The connection was lost and a reconnect begins (not called when it closes instead).
  virtual void on_disconnect() = 0;
  // A new session has replayed its subscriptions; frames appended now go out before those that waited.
  virtual void on_reconnect() = 0;
  // The connection closed for good, after its own pending operations failed.
  virtual void on_close(error_code reason) = 0;

 protected:
  ~lifecycle_listener() = default;
};

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

// idle -> connecting -> connected <-> reconnecting; draining and closed are terminal paths.
enum class conn_state { idle, connecting, connected, reconnecting, draining, closed };

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
  void queue_frame(std::string_view frame, void_handler h);
  // The synchronous publish: queues the frame when the buffer is under its limit. False with ec clear means
  // "full or not on the owner thread: take the asynchronous path".
  bool try_queue(std::string_view subject, std::string_view payload, const headers* hdrs, std::string_view reply,
                 error_code& ec);
  [[nodiscard]] bool on_owner_thread() const noexcept {
    return io_ex_ ? io_ex_->running_in_this_thread() : real_strand_.running_in_this_thread();
  }
  [[nodiscard]] bool single_threaded() const noexcept { return io_ex_.has_value(); }
  [[nodiscard]] error_code check_publish(std::string_view subject, std::string_view payload, const headers* hdrs,
                                         std::string_view reply) const;
  void do_subscribe(std::string_view subject, std::string_view queue,
                    asio::any_completion_handler<void(error_code, subscription)> h);
  void do_request(std::string_view subject, std::string_view payload, const headers* hdrs,
                  std::chrono::milliseconds timeout, message_handler h);
  void do_flush(void_handler h);
  asio::awaitable<void> drain_op(std::chrono::milliseconds timeout);
  void do_close(error_code reason);
  void sub_next(const std::shared_ptr<sub_state>& s, message_handler h);
  void sub_unsubscribe(const std::shared_ptr<sub_state>& s, std::uint64_t max_msgs);

  template <class Handler, class... Args>
  void done(Handler&& h, Args&&... args) {
    complete(strand_, std::forward<Handler>(h), std::forward<Args>(args)...);
  }

  // ---- the seam for the floors above ----
  [[nodiscard]] const strand_type& executor() const noexcept { return strand_; }
  [[nodiscard]] const connection_options& options() const noexcept { return opts_; }
  [[nodiscard]] const std::shared_ptr<spdlog::logger>& log() const noexcept { return log_; }
  // The server's INFO of the current (or last) session.
  [[nodiscard]] server_info current_info() const {
    std::lock_guard lock(cold_mutex_);
    return info_;
  }
  // Appends a publish frame (header block already encoded; empty: PUB) and counts it. `at` is where it starts in
  // out().pending(), for a copy kept for resends. The caller checked the subject (check_publish) and owns the reply.
  error_code append_publish(std::string_view subject, std::string_view reply, std::string_view header_block,
                            std::string_view payload, std::size_t& at) {
    at = core_.out.size();
    if (auto ec = core_.out.append_publish(subject, reply, header_block, payload)) return ec;
    out_msgs_.add(1);
    return {};
  }
  // Appends a frame again (a resend).
  error_code append_frame(std::string_view frame) { return core_.out.append_frame(frame); }
  [[nodiscard]] const write_buffer& out() const noexcept { return core_.out; }
  // The writer should send what is pending.
  void wake_writer();
  // Hands the pending frames to the transport from here when the writer is idle: for a frame that nothing else will
  // join (a lone request or publish awaiting its answer), one system call and no trip through the scheduler.
  bool write_now();  // true when everything left
  // write_now() for a frame whose caller now waits for its reply: arms busy polling (options::busy_poll).
  void write_lone();
  // An internal subscription whose frames go to `l` inline in the reader. Returns its sid (0 when down).
  std::uint64_t subscribe_raw(std::string_view pattern, frame_listener* l, std::string_view queue = {});
  // Ends an internal subscription: no frame reaches its listener after this returns.
  void unsubscribe_raw(std::uint64_t sid);
  // A streaming request on the connection's inbox: its replies go to `s` until it says the last came. Returns the
  // token (0 with ec on failure).
  std::uint64_t request_stream(std::string_view subject, std::string_view payload, const headers* hdrs,
                               std::chrono::steady_clock::time_point deadline, std::shared_ptr<reply_stream> s,
                               error_code& ec);
  // Expired listeners are dropped as the list grows, so consumers made and dropped by the thousand leave nothing
  // behind (a weak_ptr to a make_shared object holds its whole allocation).
  void add_listener(std::weak_ptr<lifecycle_listener> l) {
    if (listeners_.size() >= listeners_pruned_at_ * 2) {
      std::erase_if(listeners_, [](const auto& w) { return w.expired(); });
      listeners_pruned_at_ = std::max<std::size_t>(8, listeners_.size());
    }
    listeners_.push_back(std::move(l));
  }
  // The reader's batch: the frames of one read are handled in one go. Layers that resolved waiters during the batch
  // ask to run once it is over; they then resume their coroutines directly, before the reader touches the socket
  // again, so a reply goes out with no scheduler round in between.
  [[nodiscard]] bool in_batch() const noexcept { return in_batch_; }
  // The clock for what the reader's batch completes (JetStream's ack latency): read once per batch, lazily, since
  // one read carries many acks; outside a batch, now.
  [[nodiscard]] std::chrono::steady_clock::time_point batch_now() noexcept {
    if (!in_batch_) return std::chrono::steady_clock::now();
    if (batch_at_ == std::chrono::steady_clock::time_point{}) batch_at_ = std::chrono::steady_clock::now();
    return batch_at_;
  }
  void defer_to_batch_end(std::shared_ptr<batch_listener> l) { batch_listeners_.push_back(std::move(l)); }

  [[nodiscard]] bool writable() const noexcept {
    auto st = state_.load(std::memory_order_relaxed);
    return st == conn_state::connected || st == conn_state::draining;
  }
  // Connected, or reconnecting with a reconnect buffer: frames may be appended.
  [[nodiscard]] bool accepting() const noexcept { return writable() || buffering(); }
  [[nodiscard]] bool buffering() const noexcept {
    auto st = state_.load(std::memory_order_relaxed);
    return st == conn_state::reconnecting && opts_.reconnect_buffer_size > 0;
  }
  [[nodiscard]] std::size_t pending_requests() const noexcept { return core_.requests.size(); }
  // Any thread.
  [[nodiscard]] statistics stats() const noexcept;
  [[nodiscard]] bool connected() const noexcept { return state_.load(std::memory_order_relaxed) == conn_state::connected; }
  [[nodiscard]] const std::string& inbox_prefix();

 private:
  friend class natsbus::connection;
  friend class natsbus::subscription;

  // Set when the executor is a single-threaded io_context's: its one thread owns the state.
  std::optional<asio::io_context::executor_type> io_ex_;
  asio::strand<asio::any_io_executor> real_strand_;
  strand_type strand_;  // io_ex_ when set, real_strand_ otherwise
  connection_options opts_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<conn_state> state_{conn_state::idle};
  std::atomic<std::size_t> max_payload_{1024 * 1024};
  bool ever_connected_ = false;  // a session was established (connected, not reconnected, is raised once)
  bool seen_info_ = false;       // the first INFO came: servers it lists are seeds' peers, not discoveries
  error_code close_reason_;      // why the connection closed (connection_closed: by the user)

  // Connection statistics; single writer.
  counter in_msgs_, out_msgs_, in_bytes_, out_bytes_, reconnects_, dropped_msgs_;
  std::atomic<std::int64_t> rtt_ns_{0};  // the last PING/PONG round trip
  // A PONG answered the PING queued at `sent` (the epoch: not timed).
  void note_rtt(std::chrono::steady_clock::time_point sent) noexcept {
    if (sent != std::chrono::steady_clock::time_point{})
      rtt_ns_.store((std::chrono::steady_clock::now() - sent).count(), std::memory_order_relaxed);
  }

  // Cold data shared with other threads.
  mutable std::mutex cold_mutex_;
  server_info info_;
  std::string last_error_;
  event_handler on_event_;
  void emit(event_kind kind, error_code ec = {}, std::string text = {}, std::uint64_t sid = 0);

  connection_core core_;
  std::vector<std::weak_ptr<lifecycle_listener>> listeners_;
  std::size_t listeners_pruned_at_ = 8;
  template <class F>
  void notify(F&& f) {
    auto ls = listeners_;  // a listener may add another
    for (auto& w : ls)
      if (auto l = w.lock()) f(*l);
  }

  // ---- session ----
  transport transport_;
  protocol::parser parser_;
  std::vector<char> rbuf_;
  std::size_t rbegin_ = 0, rend_ = 0;
  bool writer_parked_ = false;  // the writer waits for work: the transport is free for write_now()
  bool wake_sent_ = false;      // the parked writer's wait was cancelled and it is about to resume
  void unpark_writer();         // cancels the parked writer's wait, once
  static constexpr std::size_t early_write_bytes = 1024 * 1024;
  std::size_t direct_write_at_ = early_write_bytes;  // pending size at which wake_writer next writes directly
  asio::steady_timer writer_wake_;
  asio::steady_timer write_timer_;  // the write deadline
  asio::steady_timer ping_timer_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer state_timer_;  // woken on every state change (drain waits for a reconnect on it)
  std::deque<void_handler> blocked_publishers_;  // waiting for the buffer to drain

  asio::awaitable<error_code> try_server(std::size_t index, std::string& error_text);
  asio::awaitable<error_code> reconnect_loop();
  asio::awaitable<void> reconnect_then_run();
  void begin_reconnect(error_code reason);
  void finish_reconnect();
  void set_state(conn_state s);

  // How far try_server got, so that the connect deadline's expiry names the step that stalled.
  enum class phase { transport, info, tls, connect };
  phase handshake_phase_ = phase::transport;
  [[nodiscard]] transport_spec spec_for(const protocol::server_address& addr) const;
  asio::awaitable<error_code> handshake(const protocol::server_address& addr, const transport_spec& spec,
                                        std::chrono::steady_clock::time_point deadline);
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
  void complete_all(std::vector<request_mux::completion>& cs);

  // ---- busy polling (see connection_options::busy_poll) ----
  std::chrono::steady_clock::time_point lone_sent_{};  // when the awaited lone frame left; epoch: none
  std::chrono::nanoseconds rtt_avg_{0};                // moving average of lone round trips
  std::chrono::steady_clock::time_point spin_until_{};
  std::uint64_t spin_gen_ = 0;  // a spinner step of an older generation stops
  bool spinning_ = false;
  void note_read();   // data arrived: ends the spin, takes a round-trip sample
  void maybe_spin();  // the reader is about to wait for data
  void spin_step(std::uint64_t gen);

  bool in_batch_ = false;
  std::chrono::steady_clock::time_point batch_at_{};  // batch_now() of this batch; the epoch until asked
  void end_batch();
  std::vector<std::shared_ptr<batch_listener>> batch_listeners_, batch_running_;

  // ---- request/reply over one inbox subscription ----
  std::string inbox_prefix_;  // "<options::inbox_prefix>.<id>."
  asio::steady_timer request_timer_;
  bool request_sweeper_running_ = false;
  void ensure_inbox();
  std::uint64_t send_request(std::string_view subject, std::string_view payload, const headers* hdrs,
                             error_code& ec);
  void on_response(const protocol::event& ev);
  void arm_request_sweeper(std::chrono::steady_clock::time_point deadline);
  asio::awaitable<void> request_sweeper();
};

}  // namespace natsbus::detail
