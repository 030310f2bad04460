// natsbus::pull_consumer: messages from a JetStream pull consumer, fetched in batches or consumed continuously, and
// their acknowledgements. Messages are pooled: a js_message is the consumer's own storage, valid until the next
// next() (consume) or until its message_batch is dropped (fetch); steady-state consumption allocates nothing.
#pragma once

#include <natsbus/jetstream.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus {

namespace detail {
class pull_consumer_impl;

// Whether a completion handler's own executor is `ex` (for an awaitable: the coroutine runs on the connection's
// executor). Such a handler can be invoked from a job on `ex` without asking it for its executor again.
template <class Handler>
bool runs_on(const Handler& h, const asio::any_io_executor& ex) {
  if constexpr (std::is_same_v<asio::associated_executor_t<Handler>, asio::any_io_executor>)
    return asio::get_associated_executor(h) == ex;
  else
    return false;
}
}  // namespace detail

struct fetch_options {
  std::size_t batch = 1;
  std::size_t max_bytes = 0;                // 0: no limit
  std::chrono::milliseconds expires{5000};  // the server ends the pull then (the batch may hold fewer messages)
  bool no_wait = false;                     // only what is there now: an empty stream gives an empty batch at once
  std::chrono::milliseconds heartbeat{0};   // idle heartbeats while the pull waits; 0: none
};

struct consume_options {
  std::size_t max_messages = 500;            // buffered plus requested, at most
  std::size_t max_bytes = 0;                 // per pull; 0: no limit
  std::chrono::milliseconds expires{30000};  // each pull's lifetime on the server
  std::chrono::milliseconds heartbeat{0};    // 0: expires / 2, at most 30 s
  double threshold = 0.5;                    // pull again when buffered + requested falls to this share
  // Buffered messages (and the one last handed out, until it is acked) are kept from redelivery by an in-progress
  // ack this often. -1: a third of the consumer's ack_wait, asked from the server when the consume starts (none
  // under ack policy none); 0: never (then size max_messages so the buffer is handled within ack_wait).
  std::chrono::milliseconds keep_alive{-1};
};

// What a message's ack subject says about it.
struct message_info {
  std::string domain;
  std::string stream;
  std::string consumer;
  std::uint64_t num_delivered = 0;
  std::uint64_t stream_sequence = 0;
  std::uint64_t consumer_sequence = 0;
  std::int64_t timestamp_ns = 0;
  std::uint64_t num_pending = 0;
};

class js_message {
 public:
  [[nodiscard]] std::string_view subject() const noexcept { return view(subject_at_, subject_len_); }
  [[nodiscard]] std::string_view reply() const noexcept { return view(reply_at_, reply_len_); }
  [[nodiscard]] std::string_view header_block() const noexcept { return view(headers_at_, headers_len_); }
  [[nodiscard]] std::string_view payload() const noexcept { return view(payload_at_, payload_len_); }
  // The headers, decoded (an empty set when there are none).
  error_code get_headers(headers& out) const;
  // Stream, consumer, sequences, delivery count, time and pending count, from the ack subject.
  error_code info(message_info& out) const;

  // Acknowledgements, queued on the connection (coalesced with other frames). A second acknowledgement of one
  // message (ack, nak or term) is error::already_acknowledged and sends nothing; in_progress may repeat.
  error_code ack();
  error_code nak(std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  error_code in_progress();
  error_code term(std::string_view reason = {});  // the reason is sent to servers from 2.10.4, dropped before
  // ack, then waits for the server to confirm it has recorded it.
  template <class Token = default_token>
  auto ack_sync(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto h) { ack_sync_impl(asio::any_completion_handler<void(error_code)>(std::move(h))); }, token);
  }
  [[nodiscard]] bool acknowledged() const noexcept { return acked_.load(std::memory_order_acquire); }

 private:
  friend class detail::pull_consumer_impl;
  [[nodiscard]] std::string_view view(std::uint32_t at, std::uint32_t len) const noexcept {
    return std::string_view(data_).substr(at, len);
  }
  error_code send(std::string_view body, bool final);
  void ack_sync_impl(asio::any_completion_handler<void(error_code)> h);

  detail::pull_consumer_impl* owner_ = nullptr;
  std::string data_;  // subject, reply, header block, payload: one buffer, reused
  std::uint32_t subject_at_ = 0, subject_len_ = 0, reply_at_ = 0, reply_len_ = 0;
  std::uint32_t headers_at_ = 0, headers_len_ = 0, payload_at_ = 0, payload_len_ = 0;
  std::atomic<bool> acked_{false};  // a final ack (ack, nak, term) went out; set by whichever thread acks first
  std::chrono::steady_clock::time_point kept_{};  // arrival, or the last in-progress sent for it while buffered
};

// The messages of one fetch. Its messages go back to the consumer's pool when it is dropped.
class message_batch {
 public:
  message_batch() = default;
  message_batch(message_batch&&) noexcept = default;
  message_batch& operator=(message_batch&& other) noexcept;
  message_batch(const message_batch&) = delete;
  message_batch& operator=(const message_batch&) = delete;
  ~message_batch();

  [[nodiscard]] std::size_t size() const noexcept { return msgs_.size(); }
  [[nodiscard]] bool empty() const noexcept { return msgs_.empty(); }
  [[nodiscard]] js_message& operator[](std::size_t i) const noexcept { return *msgs_[i]; }
  // Why the batch holds fewer messages than asked: empty (expired, no messages: not an error), or the status that
  // ended the pull (consumer_deleted, message_exceeds_max_bytes, pull_request_refused, ...).
  [[nodiscard]] error_code status() const noexcept { return status_; }

  struct iterator {
    std::vector<js_message*>::const_iterator it;
    js_message& operator*() const noexcept { return **it; }
    iterator& operator++() noexcept {
      ++it;
      return *this;
    }
    bool operator==(const iterator&) const = default;
  };
  [[nodiscard]] iterator begin() const noexcept { return {msgs_.begin()}; }
  [[nodiscard]] iterator end() const noexcept { return {msgs_.end()}; }

 private:
  friend class detail::pull_consumer_impl;
  void release() noexcept;
  std::shared_ptr<detail::pull_consumer_impl> owner_;
  std::vector<js_message*> msgs_;
  error_code status_;
};

// A pull consumer that exists on the server (create it with jetstream::create_consumer). One fetch or one
// continuous consume at a time; calls from any thread (they run on the connection's executor).
class pull_consumer {
 public:
  pull_consumer(jetstream& js, std::string stream, std::string consumer);
  ~pull_consumer();  // stops consuming; messages handed out stay readable until their batch is dropped
  pull_consumer(const pull_consumer&) = delete;
  pull_consumer& operator=(const pull_consumer&) = delete;

  // Up to `batch` messages: completes when the batch is full, when the pull ends on the server (expired, no
  // messages, or a status: then message_batch::status()), or shortly after `expires`.
  template <class Token = default_token>
  auto fetch(const fetch_options& opts, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, message_batch)>(
        [this](auto h, fetch_options o) {
          const bool local = detail::runs_on(h, executor());
          fetch_impl(o, nullptr, asio::any_completion_handler<void(error_code, message_batch)>(std::move(h)), local);
        },
        token, opts);
  }
  // Acknowledges `m` (a message of this consumer's earlier fetch) and fetches the next batch, in one frame: the
  // ack is the pull ("+NXT"). The round trip a fetch-one-at-a-time loop pays per message is halved.
  template <class Token = default_token>
  auto ack_and_fetch(js_message& m, const fetch_options& opts, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, message_batch)>(
        [this, &m](auto h, fetch_options o) {
          const bool local = detail::runs_on(h, executor());
          fetch_impl(o, &m, asio::any_completion_handler<void(error_code, message_batch)>(std::move(h)), local);
        },
        token, opts);
  }

  // Continuous consumption: keeps up to max_messages buffered or requested, pulling again when that falls below
  // the threshold (asking only for what is missing), with idle heartbeats; after a reconnect a new pull goes out
  // at once.
  error_code consume(const consume_options& opts = {});
  // The next message, valid until the following next() (or try_next()). Errors come once each: a missed
  // heartbeat, a refused pull (the consume goes on), a deleted consumer or a push consumer (it stops).
  template <class Token = default_token>
  auto next(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, js_message*)>(
        [this](auto h) {
          const bool local = detail::runs_on(h, executor());
          next_impl(asio::any_completion_handler<void(error_code, js_message*)>(std::move(h)), local);
        },
        token);
  }
  // On the connection's own thread: the next buffered message now, or null (then await next()).
  js_message* try_next();
  // Stops pulling; a waiting next() completes with subscription_closed.
  void stop();

  struct stats {
    std::uint64_t delivered = 0;  // messages received
    std::uint64_t pulls = 0;      // pull requests sent
    std::uint64_t heartbeats = 0;
    std::size_t buffered = 0;
    std::size_t outstanding = 0;  // requested and not yet delivered
    std::uint64_t kept_alive = 0;  // in-progress acks sent for messages waiting in the buffer (consume_options)
  };
  [[nodiscard]] stats get_stats() const;

 private:
  void fetch_impl(fetch_options o, js_message* ack, asio::any_completion_handler<void(error_code, message_batch)> h,
                  bool local);
  void next_impl(asio::any_completion_handler<void(error_code, js_message*)> h, bool local);
  [[nodiscard]] const asio::any_io_executor& executor() const noexcept;
  std::shared_ptr<detail::pull_consumer_impl> impl_;
};

struct push_options {
  std::string deliver_subject;  // the consumer's deliver_subject
  std::string queue_group;      // its deliver_group, if any
  // The consumer's idle_heartbeat: two intervals without a frame is missed_heartbeat. 0: not watched.
  std::chrono::milliseconds heartbeat{0};
};

// A push consumer that exists on the server (deliver_subject set; flow_control and idle_heartbeat recommended).
// Flow-control requests are answered once every message that came before them has been taken by next() (so the
// server never runs ahead of the application), and a heartbeat naming a stalled consumer is answered at once.
class push_consumer {
 public:
  push_consumer(jetstream& js, std::string stream, std::string consumer, push_options opts);
  ~push_consumer();
  push_consumer(const push_consumer&) = delete;
  push_consumer& operator=(const push_consumer&) = delete;

  error_code start();  // subscribes to the deliver subject
  template <class Token = default_token>
  auto next(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, js_message*)>(
        [this](auto h) {
          const bool local = detail::runs_on(h, executor());
          next_impl(asio::any_completion_handler<void(error_code, js_message*)>(std::move(h)), local);
        },
        token);
  }
  js_message* try_next();
  void stop();
  [[nodiscard]] pull_consumer::stats get_stats() const;
  [[nodiscard]] std::uint64_t flow_control_replies() const;

 private:
  void next_impl(asio::any_completion_handler<void(error_code, js_message*)> h, bool local);
  [[nodiscard]] const asio::any_io_executor& executor() const noexcept;
  std::shared_ptr<detail::pull_consumer_impl> impl_;
  push_options opts_;
};

struct ordered_options {
  std::vector<std::string> filter_subjects;  // empty: the whole stream (one subject works on 2.9 too)
  deliver_policy deliver = deliver_policy::all;
  std::uint64_t start_sequence = 0;         // with deliver_policy::by_start_sequence
  std::size_t max_messages = 500;           // as consume_options
  std::chrono::milliseconds expires{30000};
  std::chrono::milliseconds heartbeat{5000};
};

// Every stream sequence once, in order, with no acks: an ephemeral consumer (ack none, memory storage, one replica)
// that is made again at the last delivered stream sequence + 1 whenever it cannot be trusted any more (a gap in
// its consumer sequence, a missed heartbeat, a deleted consumer, no responders, a reconnect); the old one is
// deleted.
class ordered_consumer {
 public:
  ordered_consumer(jetstream& js, std::string stream, ordered_options opts = {});
  ~ordered_consumer();
  ordered_consumer(const ordered_consumer&) = delete;
  ordered_consumer& operator=(const ordered_consumer&) = delete;

  // Creates the first consumer and starts pulling.
  template <class Token = default_token>
  auto start(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto h) { start_impl(asio::any_completion_handler<void(error_code)>(std::move(h))); }, token);
  }
  // As pull_consumer::next(); recreations happen underneath and are counted in resets().
  template <class Token = default_token>
  auto next(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, js_message*)>(
        [this](auto h) {
          const bool local = detail::runs_on(h, executor());
          next_impl(asio::any_completion_handler<void(error_code, js_message*)>(std::move(h)), local);
        },
        token);
  }
  js_message* try_next();
  void stop();
  [[nodiscard]] std::uint64_t resets() const;

 private:
  void start_impl(asio::any_completion_handler<void(error_code)> h);
  void next_impl(asio::any_completion_handler<void(error_code, js_message*)> h, bool local);
  [[nodiscard]] const asio::any_io_executor& executor() const noexcept;
  std::shared_ptr<detail::pull_consumer_impl> impl_;
  ordered_options opts_holder_;
};

}  // namespace natsbus
