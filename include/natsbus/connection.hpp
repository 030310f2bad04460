// natsbus::connection: one NATS connection on an Asio executor.
//
// All state lives on one executor: a strand, or a single-threaded io_context's executor (concurrency hint 1),
// which is the fast case and takes no locks. Every public call is safe from any thread; a coroutine running on
// the owner thread (see on_owner_thread()) takes the zero-hop path. Asynchronous operations follow Asio's completion-token
// model; the default token is use_awaitable.
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/message.hpp>
#include <natsbus/options.hpp>
#include <natsbus/protocol/jetstream.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

namespace natsbus {

namespace asio = boost::asio;

namespace detail {
class connection_impl;
class memory_broker;
struct sub_state;
}  // namespace detail

using default_token = asio::use_awaitable_t<>;

namespace detail {
// The coroutine tokens get a fast path: an operation that can finish at once finishes inside the awaiting
// coroutine, with no completion handler, no allocation and no trip through the scheduler.
template <class Token>
inline constexpr bool is_use_awaitable = std::is_same_v<std::decay_t<Token>, asio::use_awaitable_t<>>;
template <class Token>
inline constexpr bool is_as_tuple_awaitable =
    std::is_same_v<std::decay_t<Token>, asio::as_tuple_t<asio::use_awaitable_t<>>>;
}  // namespace detail

struct statistics {
  std::uint64_t in_msgs = 0;
  std::uint64_t out_msgs = 0;
  std::uint64_t in_bytes = 0;
  std::uint64_t out_bytes = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t dropped_msgs = 0;  // slow-consumer drops over all subscriptions
  std::size_t subscriptions = 0;   // live now: the application's and the library's own (replies, consumers)
  // The last PING/PONG round trip (the handshake's, the keepalive's, a flush's), from the PING queued to its PONG
  // read; 0 before the first.
  std::chrono::nanoseconds rtt{0};
};

enum class event_kind {
  connected,
  disconnected,
  reconnected,
  closed,
  error,              // an asynchronous error: -ERR from the server, permissions violation, ...
  slow_consumer,      // a subscription dropped messages
  server_info,        // an INFO update after the handshake
  lame_duck,          // the server announced lame duck mode
  discovered_servers  // INFO connect_urls added servers to the pool
};

struct connection_event {
  event_kind kind{};
  error_code ec;
  std::string text;       // the server's text for -ERR, or a description
  std::uint64_t sid = 0;  // slow_consumer: the subscription
};

using event_handler = std::function<void(const connection_event&)>;

// A subscription. Messages are taken with next(); the reader never blocks on a slow subscriber, each
// subscription has its own bounded queue.
class subscription {
 public:
  subscription() = default;

  // Awaited from a coroutine on the connection's thread, a message already queued is taken without
  // suspending: a subscriber keeps up with a reader that parses a whole socket read per turn.
  template <class Token = default_token>
  auto next(Token&& token = {}) {
    if constexpr (detail::is_use_awaitable<Token>) {
      return next_awaitable();
    } else if constexpr (detail::is_as_tuple_awaitable<Token>) {
      return next_awaitable_ec();
    } else {
      return asio::async_initiate<Token, void(error_code, message)>(
          [this](auto handler) { next_impl(asio::any_completion_handler<void(error_code, message)>(std::move(handler))); },
          token);
    }
  }

  // Sends UNSUB; messages already queued can still be taken, then next() fails with subscription_closed.
  void unsubscribe();
  // Stops after max messages in all (counting those delivered already).
  void auto_unsubscribe(std::uint64_t max_msgs);

  [[nodiscard]] std::uint64_t sid() const noexcept;
  [[nodiscard]] const std::string& subject() const noexcept;
  [[nodiscard]] std::size_t pending() const noexcept;      // queued, not yet taken
  [[nodiscard]] std::uint64_t dropped() const noexcept;    // dropped as a slow consumer
  [[nodiscard]] std::uint64_t delivered() const noexcept;  // received from the server
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

 private:
  friend class detail::connection_impl;
  friend class detail::memory_broker;
  explicit subscription(std::shared_ptr<detail::sub_state> s) : state_(std::move(s)) {}
  void next_impl(asio::any_completion_handler<void(error_code, message)> handler);
  asio::awaitable<std::tuple<error_code, message>> next_awaitable_ec();
  asio::awaitable<message> next_awaitable();
  std::shared_ptr<detail::sub_state> state_;
};

class connection {
 public:
  // The executor that owns the connection's state: a strand over the given executor, or, for an io_context
  // constructed with concurrency hint 1, that io_context's executor itself (no strand needed).
  using executor_type = asio::any_io_executor;

  explicit connection(asio::any_io_executor ex, connection_options opts = {});
  ~connection();  // closes
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  [[nodiscard]] executor_type get_executor() const noexcept;

  // Connects to the first reachable server and completes the handshake (INFO, CONNECT, PING/PONG).
  template <class Token = default_token>
  auto connect(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) { connect_impl(asio::any_completion_handler<void(error_code)>(std::move(handler))); },
        token);
  }

  // Completes once the frame is queued; suspends while the write buffer is over its limit. Awaited from a
  // coroutine on the connection's thread (its strand, or the thread of a single-threaded io_context), a publish
  // that fits in the buffer completes without suspending.
  template <class Token = default_token>
  auto publish(std::string_view subject, std::string_view payload, Token&& token = {}) {
    return publish(subject, payload, nullptr, {}, std::forward<Token>(token));
  }
  template <class Token = default_token>
  auto publish(std::string_view subject, std::string_view payload, const headers* hdrs, std::string_view reply,
               Token&& token = {}) {
    if constexpr (detail::is_use_awaitable<Token>) {
      return publish_awaitable(subject, payload, hdrs, reply);
    } else if constexpr (detail::is_as_tuple_awaitable<Token>) {
      return publish_awaitable_ec(subject, payload, hdrs, reply);
    } else {
      return asio::async_initiate<Token, void(error_code)>(
          [this](auto handler, std::string_view s, std::string_view p, const headers* h, std::string_view r) {
            publish_impl(s, p, h, r, asio::any_completion_handler<void(error_code)>(std::move(handler)));
          },
          token, subject, payload, hdrs, reply);
    }
  }
  template <class Token = default_token>
  auto publish(std::string_view subject, const headers& hdrs, std::string_view payload, Token&& token = {}) {
    return publish(subject, payload, &hdrs, {}, std::forward<Token>(token));
  }

  // Queues the frame now if the connection is up and the buffer is under its limit: the synchronous fast
  // path, no completion to dispatch. Must be called where on_owner_thread() holds. Returns false with ec set on an
  // error, and false with ec clear when the buffer is full and the caller must use publish() instead.
  [[nodiscard]] bool try_publish(std::string_view subject, std::string_view payload, error_code& ec);

  template <class Token = default_token>
  auto subscribe(std::string_view subject, std::string_view queue_group = {}, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, subscription)>(
        [this](auto handler, std::string_view s, std::string_view q) {
          subscribe_impl(s, q, asio::any_completion_handler<void(error_code, subscription)>(std::move(handler)));
        },
        token, subject, queue_group);
  }

  // Request/reply over one multiplexed inbox subscription. A 503 reply fails at once with no_responders.
  template <class Token = default_token>
  auto request(std::string_view subject, std::string_view payload, std::chrono::milliseconds timeout,
               Token&& token = {}) {
    return request(subject, payload, nullptr, timeout, std::forward<Token>(token));
  }
  template <class Token = default_token>
  auto request(std::string_view subject, std::string_view payload, const headers* hdrs,
               std::chrono::milliseconds timeout, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, message)>(
        [this](auto handler, std::string_view s, std::string_view p, const headers* h,
               std::chrono::milliseconds t) {
          request_impl(s, p, h, t, asio::any_completion_handler<void(error_code, message)>(std::move(handler)));
        },
        token, subject, payload, hdrs, timeout);
  }

  // A PING/PONG round trip: everything queued before it has reached the server.
  template <class Token = default_token>
  auto flush(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) { flush_impl(asio::any_completion_handler<void(error_code)>(std::move(handler))); },
        token);
  }

  // Unsubscribes everything, flushes, then closes. Messages already queued stay readable. During a reconnect it
  // waits for the new session first. Fails with timeout when the reconnect or the flush takes longer than
  // `timeout` (the connection is closed either way); success means the server has every frame sent before it.
  static constexpr std::chrono::milliseconds default_drain_timeout{30000};
  template <class Token = default_token>
  auto drain(Token&& token = {}) {
    return drain(default_drain_timeout, std::forward<Token>(token));
  }
  template <class Token = default_token>
  auto drain(std::chrono::milliseconds timeout, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [this, timeout](auto handler) {
          drain_impl(timeout, asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token);
  }

  // Closes now: every pending operation fails with connection_closed.
  void close();

  void set_event_handler(event_handler handler);
  [[nodiscard]] statistics stats() const noexcept;
  [[nodiscard]] server_info info() const;
  [[nodiscard]] bool is_connected() const noexcept;
  // True on the thread that owns the connection's state: inside its strand, or on the thread running a
  // single-threaded io_context (concurrency hint 1). try_publish and the fast paths need it.
  [[nodiscard]] bool on_owner_thread() const noexcept;
  // Requests awaiting their reply (call on get_executor()).
  [[nodiscard]] std::size_t pending_requests() const noexcept;
  // The server's text for the last -ERR.
  [[nodiscard]] std::string last_error() const;

  // For the JetStream layer: the shared implementation.
  [[nodiscard]] const std::shared_ptr<detail::connection_impl>& impl() const noexcept { return impl_; }

 private:
  void connect_impl(asio::any_completion_handler<void(error_code)> h);
  asio::awaitable<void> publish_awaitable(std::string_view subject, std::string_view payload, const headers* hdrs,
                                          std::string_view reply);
  asio::awaitable<std::tuple<error_code>> publish_awaitable_ec(std::string_view subject, std::string_view payload,
                                                              const headers* hdrs, std::string_view reply);
  void publish_impl(std::string_view subject, std::string_view payload, const headers* hdrs,
                    std::string_view reply, asio::any_completion_handler<void(error_code)> h);
  void subscribe_impl(std::string_view subject, std::string_view queue,
                      asio::any_completion_handler<void(error_code, subscription)> h);
  void request_impl(std::string_view subject, std::string_view payload, const headers* hdrs,
                    std::chrono::milliseconds timeout, asio::any_completion_handler<void(error_code, message)> h);
  void flush_impl(asio::any_completion_handler<void(error_code)> h);
  void drain_impl(std::chrono::milliseconds timeout, asio::any_completion_handler<void(error_code)> h);

  std::shared_ptr<detail::connection_impl> impl_;
};

}  // namespace natsbus
