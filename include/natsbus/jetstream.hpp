// natsbus::jetstream: the $JS.API over one connection. Management requests go through the connection's
// multiplexed inbox; publish acknowledgements come back on the context's own inbox and are matched to their
// publishers through a ring of slots indexed by reply token. Any number of requests and up to max_pending
// publishes are in flight at once, each with its own deadline.
#pragma once

#include <natsbus/connection.hpp>
#include <natsbus/protocol/jetstream.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace natsbus {

namespace detail {
class jetstream_impl;
class event_bus_impl;
struct ack_state;
template <class T>
struct management_handler {
  using type = asio::any_completion_handler<void(error_code, T)>;
};
template <>
struct management_handler<void> {
  using type = asio::any_completion_handler<void(error_code)>;
};
}  // namespace detail

struct jetstream_options {
  std::string api_prefix = "$JS.API";
  std::string domain;  // when set, the prefix is $JS.<domain>.API
  std::chrono::milliseconds timeout{5000};  // default deadline for requests and publishes
  std::size_t max_pending = 4000;           // un-acked publishes in flight; more suspends the publisher
  // A publish answered with 503 (no responders: no stream, or a clustered stream between leaders) is sent again
  // after publish_retry_wait, up to publish_retry_attempts times within its deadline; then it fails with
  // no_responders. A 503 means nothing was stored, so the resend is safe with or without a message id.
  int publish_retry_attempts = 2;
  std::chrono::milliseconds publish_retry_wait{250};
  // A publish with a message id still unacknowledged this long after it was sent is sent again: its message or
  // its ack may have been lost with a stream leader that died while the connection stayed up (the duplicate
  // window stores it once). 0: never.
  std::chrono::milliseconds resend_unacked_after{2000};
};

struct publish_options {
  std::string msg_id;                 // Nats-Msg-Id: the server drops duplicates within its window
  std::string expected_stream;        // Nats-Expected-Stream
  std::optional<std::uint64_t> expected_last_seq;          // Nats-Expected-Last-Sequence
  std::string expected_last_msg_id;                        // Nats-Expected-Last-Msg-Id
  std::optional<std::uint64_t> expected_last_subject_seq;  // Nats-Expected-Last-Subject-Sequence
  const headers* hdrs = nullptr;      // extra headers
  std::chrono::milliseconds timeout{0};  // 0: the context's default
  // A 503 is retried every publish_retry_wait until the deadline, rather than publish_retry_attempts times: for
  // replicated streams, whose leader elections take seconds.
  bool retry_until_deadline = false;
  std::uint64_t tag = 0;  // opaque; handed to the context's publish observer with the outcome (event_bus uses it)
};

struct purge_options {
  std::string subject;                 // only this subject (filter)
  std::optional<std::uint64_t> sequence;  // up to, not including, this sequence
  std::optional<std::uint64_t> keep;      // keep this many newest messages
};

// A JetStream context's publish figures, readable from any thread.
struct jetstream_stats {
  std::size_t in_flight = 0;  // publishes awaiting their ack now
  std::uint64_t acks = 0;     // publishes acknowledged
  std::uint64_t resends = 0;  // frames sent again (after a 503, a reconnect, or no ack within resend_unacked_after)
  // Publishes that failed, by kind.
  std::uint64_t timeouts = 0;
  std::uint64_t no_responders = 0;
  std::uint64_t api_errors = 0;    // a JetStream API error: wrong last sequence, stream not found, ...
  std::uint64_t disconnected = 0;  // lost with the connection (publishes without a message id)
  std::uint64_t closed = 0;        // the connection or the context closed
  std::uint64_t other_errors = 0;
};

// The outcome of one pipelined publish. Resolves exactly once: ack, JetStream API error, no_responders,
// timeout, or closed. On a multi-threaded executor (the connection's strand) it may be awaited, read and dropped
// on any thread; keep it until a get() it started has completed. With a single-threaded io_context, drop it on
// that io_context's thread or once the io_context has stopped.
class ack_future {
 public:
  ack_future() = default;
  ack_future(ack_future&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  ack_future& operator=(ack_future&& other) noexcept;
  ack_future(const ack_future&) = delete;
  ack_future& operator=(const ack_future&) = delete;
  ~ack_future();

  // Awaited from a coroutine on the connection's thread, a future that is already resolved completes
  // without suspending.
  template <class Token = default_token>
  auto get(Token&& token = {}) {
    if constexpr (detail::is_use_awaitable<Token>) {
      return get_awaitable();
    } else if constexpr (detail::is_as_tuple_awaitable<Token>) {
      return get_awaitable_ec();
    } else {
      return asio::async_initiate<Token, void(error_code, pub_ack)>(
          [this](auto handler) { get_impl(asio::any_completion_handler<void(error_code, pub_ack)>(std::move(handler))); },
          token);
    }
  }
  [[nodiscard]] bool ready() const noexcept;
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  // The outcome without waiting: true once resolved, with ec and ack filled in; the future stays valid, and
  // get() gives the same outcome again. False while unresolved. An empty future gives invalid_argument, as
  // get() does.
  [[nodiscard]] bool try_get(error_code& ec, pub_ack& ack) const;

 private:
  friend class detail::jetstream_impl;
  friend class jetstream;
  friend class detail::event_bus_impl;
  explicit ack_future(detail::ack_state* s) noexcept : state_(s) {}
  void get_impl(asio::any_completion_handler<void(error_code, pub_ack)> h);
  asio::awaitable<pub_ack> get_awaitable();
  asio::awaitable<std::tuple<error_code, pub_ack>> get_awaitable_ec();
  detail::ack_state* state_ = nullptr;
};

class jetstream {
 public:
  explicit jetstream(connection& conn, jetstream_options opts = {});
  ~jetstream();
  jetstream(const jetstream&) = delete;
  jetstream& operator=(const jetstream&) = delete;

  [[nodiscard]] connection::executor_type get_executor() const noexcept;

  // ---- publish ----
  // Overloads rather than default arguments: a defaulted non-trivial temporary inside co_await is destroyed
  // twice by GCC 12.
  template <class Token = default_token>
    requires(!std::is_convertible_v<Token, const publish_options&>)
  auto publish(std::string_view subject, std::string_view payload, Token&& token = {}) {
    return publish(subject, payload, no_options(), std::forward<Token>(token));
  }
  template <class Token = default_token>
    requires(!std::is_convertible_v<Token, const publish_options&>)
  auto publish_async(std::string_view subject, std::string_view payload, Token&& token = {}) {
    return publish_async(subject, payload, no_options(), std::forward<Token>(token));
  }
  // Publishes and waits for the acknowledgement. Many coroutines doing this pipeline over one connection.
  template <class Token = default_token>
  auto publish(std::string_view subject, std::string_view payload, const publish_options& opts,
               Token&& token = {}) {
    if constexpr (detail::is_use_awaitable<Token>) {
      return publish_awaitable(subject, payload, opts);
    } else if constexpr (detail::is_as_tuple_awaitable<Token>) {
      return publish_awaitable_ec(subject, payload, opts);
    } else {
      return asio::async_initiate<Token, void(error_code, pub_ack)>(
          [this](auto handler, std::string_view s, std::string_view p, const publish_options* o) {
            publish_impl(s, p, *o, asio::any_completion_handler<void(error_code, pub_ack)>(std::move(handler)));
          },
          token, subject, payload, &opts);
    }
  }
  // Queues the publish and completes with its ack future as soon as the frame is queued. While max_pending
  // publishes are un-acked it suspends (backpressure), never fails. The bytes must stay valid until it completes.
  // Awaited from a coroutine on the connection's thread with room in the window, it completes without
  // suspending.
  template <class Token = default_token>
  auto publish_async(std::string_view subject, std::string_view payload, const publish_options& opts,
                     Token&& token = {}) {
    if constexpr (detail::is_use_awaitable<Token>) {
      return publish_async_awaitable(subject, payload, opts);
    } else if constexpr (detail::is_as_tuple_awaitable<Token>) {
      return publish_async_awaitable_ec(subject, payload, opts);
    } else {
      return asio::async_initiate<Token, void(error_code, ack_future)>(
          [this](auto handler, std::string_view s, std::string_view p, const publish_options* o) {
            publish_async_impl(s, p, *o,
                               asio::any_completion_handler<void(error_code, ack_future)>(std::move(handler)));
          },
          token, subject, payload, &opts);
    }
  }
  // publish_async's synchronous fast path, for a loop that keeps a window full without a suspension per
  // message: when the window has room, the frame is queued now and `out` holds its ack future. Call it where
  // the connection's on_owner_thread() holds. Returns false with ec set when the publish failed at once, and
  // false with ec clear when it cannot start now (a full window, publishes queued before it, another thread):
  // publish_async then, which waits for room.
  [[nodiscard]] bool try_publish_async(std::string_view subject, std::string_view payload, const publish_options& opts,
                                       ack_future& out, error_code& ec);
  [[nodiscard]] bool try_publish_async(std::string_view subject, std::string_view payload, ack_future& out,
                                       error_code& ec) {
    return try_publish_async(subject, payload, no_options(), out, ec);
  }
  // Waits until every outstanding publish has resolved.
  template <class Token = default_token>
  auto publish_async_complete(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) { complete_impl(asio::any_completion_handler<void(error_code)>(std::move(handler))); },
        token);
  }
  [[nodiscard]] std::size_t pending() const noexcept;
  [[nodiscard]] std::size_t max_pending_seen() const noexcept;  // high-water mark of in-flight publishes
  [[nodiscard]] jetstream_stats stats() const noexcept;

  // ---- streams ----
  // Management calls complete with an error code; awaited with the default token, they throw system_error
  // whose text is the server's description (e.g. "stream name already in use with a different configuration").
  template <class Token = default_token>
  auto create_stream(const stream_config& cfg, Token&& token = {}) {
    return manage<stream_info>(std::forward<Token>(token),
                               [this, c = std::make_shared<const stream_config>(cfg)](handler<stream_info> h,
                                                                                      text_slot t) {
                                 create_stream_impl(c, false, std::move(h), std::move(t));
                               });
  }
  template <class Token = default_token>
  auto update_stream(const stream_config& cfg, Token&& token = {}) {
    return manage<stream_info>(std::forward<Token>(token),
                               [this, c = std::make_shared<const stream_config>(cfg)](handler<stream_info> h,
                                                                                      text_slot t) {
                                 create_stream_impl(c, true, std::move(h), std::move(t));
                               });
  }
  template <class Token = default_token>
  auto get_stream_info(std::string_view name, Token&& token = {}) {
    return manage<stream_info>(std::forward<Token>(token),
                               [this, n = std::string(name)](handler<stream_info> h, text_slot t) {
                                 stream_info_impl(n, std::move(h), std::move(t));
                               });
  }
  template <class Token = default_token>
  auto delete_stream(std::string_view name, Token&& token = {}) {
    return manage<void>(std::forward<Token>(token),
                        [this, n = std::string(name)](handler<void> h, text_slot t) {
                          delete_impl("STREAM.DELETE." + n, std::move(h), std::move(t));
                        });
  }
  // Completes with the number of messages purged.
  template <class Token = default_token>
  auto purge_stream(std::string_view name, const purge_options& opts, Token&& token = {}) {
    return manage<std::uint64_t>(std::forward<Token>(token),
                                 [this, n = std::string(name), opts](handler<std::uint64_t> h, text_slot t) {
                                   purge_impl(n, opts, std::move(h), std::move(t));
                                 });
  }
  // All stream names (every page), optionally only the streams holding `subject`.
  template <class Token = default_token>
  auto stream_names(std::string_view subject = {}, Token&& token = {}) {
    return manage<std::vector<std::string>>(
        std::forward<Token>(token), [this, s = std::string(subject)](handler<std::vector<std::string>> h, text_slot t) {
          names_impl("STREAM.NAMES", "streams", s, std::move(h), std::move(t));
        });
  }
  template <class Token = default_token>
  auto list_streams(Token&& token = {}) {
    return manage<std::vector<stream_info>>(std::forward<Token>(token),
                                            [this](handler<std::vector<stream_info>> h, text_slot t) {
                                              list_streams_impl(std::move(h), std::move(t));
                                            });
  }
  template <class Token = default_token>
  auto get_message(std::string_view stream, std::uint64_t seq, Token&& token = {}) {
    return manage<stored_message>(std::forward<Token>(token),
                                  [this, s = std::string(stream), seq](handler<stored_message> h, text_slot t) {
                                    get_message_impl(s, seq, {}, std::move(h), std::move(t));
                                  });
  }
  template <class Token = default_token>
  auto get_last_message(std::string_view stream, std::string_view subject, Token&& token = {}) {
    return manage<stored_message>(
        std::forward<Token>(token),
        [this, s = std::string(stream), subj = std::string(subject)](handler<stored_message> h, text_slot t) {
          get_message_impl(s, 0, subj, std::move(h), std::move(t));
        });
  }
  template <class Token = default_token>
  auto get_account_info(Token&& token = {}) {
    return manage<account_info>(std::forward<Token>(token), [this](handler<account_info> h, text_slot t) {
      account_impl(std::move(h), std::move(t));
    });
  }

  // ---- consumers ----
  // Durable when cfg.durable_name is set, ephemeral otherwise.
  // Creates a consumer (on nats-server 2.10+, fails if one of that name exists with another configuration; on 2.9
  // the server creates or updates). Fields a 2.9 server would silently drop (filter_subjects, metadata) are refused
  // there with not_supported_by_server, so a consumer is never made wider than asked.
  template <class Token = default_token>
  auto create_consumer(std::string_view stream, const consumer_config& cfg, Token&& token = {}) {
    return manage<consumer_info>(std::forward<Token>(token),
                                 [this, s = std::string(stream), cfg](handler<consumer_info> h, text_slot t) {
                                   create_consumer_impl(s, cfg, std::move(h), std::move(t), false);
                                 });
  }
  // Updates an existing consumer (on 2.10+, fails when there is none).
  template <class Token = default_token>
  auto update_consumer(std::string_view stream, const consumer_config& cfg, Token&& token = {}) {
    return manage<consumer_info>(std::forward<Token>(token),
                                 [this, s = std::string(stream), cfg](handler<consumer_info> h, text_slot t) {
                                   create_consumer_impl(s, cfg, std::move(h), std::move(t), true);
                                 });
  }
  template <class Token = default_token>
  auto get_consumer_info(std::string_view stream, std::string_view name, Token&& token = {}) {
    return manage<consumer_info>(
        std::forward<Token>(token),
        [this, s = std::string(stream), n = std::string(name)](handler<consumer_info> h, text_slot t) {
          consumer_info_impl(s, n, std::move(h), std::move(t));
        });
  }
  template <class Token = default_token>
  auto delete_consumer(std::string_view stream, std::string_view name, Token&& token = {}) {
    return manage<void>(std::forward<Token>(token),
                        [this, s = std::string(stream), n = std::string(name)](handler<void> h, text_slot t) {
                          delete_impl("CONSUMER.DELETE." + s + "." + n, std::move(h), std::move(t));
                        });
  }
  template <class Token = default_token>
  auto consumer_names(std::string_view stream, Token&& token = {}) {
    return manage<std::vector<std::string>>(
        std::forward<Token>(token), [this, s = std::string(stream)](handler<std::vector<std::string>> h, text_slot t) {
          names_impl("CONSUMER.NAMES." + s, "consumers", {}, std::move(h), std::move(t));
        });
  }
  template <class Token = default_token>
  auto list_consumers(std::string_view stream, Token&& token = {}) {
    return manage<std::vector<consumer_info>>(
        std::forward<Token>(token),
        [this, s = std::string(stream)](handler<std::vector<consumer_info>> h, text_slot t) {
          list_consumers_impl(s, std::move(h), std::move(t));
        });
  }

  // A raw API request: subject relative to the prefix ("STREAM.INFO.X"); completes with the reply's JSON.
  // A JetStream error in the reply becomes an error code of jetstream_category() carrying err_code.
  template <class Token = default_token>
  auto api_request(std::string_view subject, std::string_view body, Token&& token = {}) {
    return manage<std::string>(
        std::forward<Token>(token),
        [this, s = std::string(subject), b = std::string(body)](handler<std::string> h, text_slot t) {
          raw_impl(s, b, std::move(h), std::move(t));
        });
  }

  // The description of the last JetStream API error a management call completed with.
  [[nodiscard]] api_error last_api_error() const;
  [[nodiscard]] const std::shared_ptr<detail::jetstream_impl>& impl() const noexcept { return impl_; }

 private:
  static const publish_options& no_options() noexcept {
    static const publish_options none;
    return none;
  }
  template <class T>
  using handler = typename detail::management_handler<T>::type;
  // Where a failed management call leaves the server's description, for the exception of an awaited call.
  using text_slot = std::shared_ptr<std::string>;
  template <class T>
  using starter = std::function<void(handler<T>, text_slot)>;

  // One management call: awaited with the default token it throws with the server's text; any other token
  // gets the error code.
  template <class T, class Token, class Start>
  auto manage(Token&& token, Start start) {
    if constexpr (detail::is_use_awaitable<Token>) {
      return awaited<T>(starter<T>(std::move(start)));
    } else if constexpr (std::is_void_v<T>) {
      return asio::async_initiate<Token, void(error_code)>(
          [](auto h, Start st) { st(handler<void>(std::move(h)), text_slot{}); }, token, std::move(start));
    } else {
      return asio::async_initiate<Token, void(error_code, T)>(
          [](auto h, Start st) { st(handler<T>(std::move(h)), text_slot{}); }, token, std::move(start));
    }
  }
  template <class T>
  asio::awaitable<T> awaited(starter<T> start);

  // The config is shared, not copied: an initiation and its arguments are copied at every layer of a completion
  // token.
  void create_stream_impl(std::shared_ptr<const stream_config> cfg, bool update, handler<stream_info> h, text_slot t);
  void stream_info_impl(std::string name, handler<stream_info> h, text_slot t);
  void delete_impl(std::string subject, handler<void> h, text_slot t);
  void purge_impl(std::string name, purge_options opts, handler<std::uint64_t> h, text_slot t);
  void names_impl(std::string subject, std::string field, std::string filter, handler<std::vector<std::string>> h,
                  text_slot t);
  void list_streams_impl(handler<std::vector<stream_info>> h, text_slot t);
  void get_message_impl(std::string stream, std::uint64_t seq, std::string subject, handler<stored_message> h,
                        text_slot t);
  void account_impl(handler<account_info> h, text_slot t);
  void create_consumer_impl(std::string stream, consumer_config cfg, handler<consumer_info> h, text_slot t,
                            bool update);
  void consumer_info_impl(std::string stream, std::string name, handler<consumer_info> h, text_slot t);
  void list_consumers_impl(std::string stream, handler<std::vector<consumer_info>> h, text_slot t);
  void raw_impl(std::string subject, std::string body, handler<std::string> h, text_slot t);

  void publish_impl(std::string_view subject, std::string_view payload, const publish_options& opts,
                    asio::any_completion_handler<void(error_code, pub_ack)> h);
  void publish_async_impl(std::string_view subject, std::string_view payload, const publish_options& opts,
                          asio::any_completion_handler<void(error_code, ack_future)> h);
  void complete_impl(asio::any_completion_handler<void(error_code)> h);
  asio::awaitable<std::tuple<error_code, ack_future>> publish_async_awaitable_ec(std::string_view subject,
                                                                                std::string_view payload,
                                                                                const publish_options& opts);
  asio::awaitable<std::tuple<error_code, pub_ack>> publish_awaitable_ec(std::string_view subject,
                                                                       std::string_view payload,
                                                                       const publish_options& opts);
  asio::awaitable<pub_ack> publish_awaitable(std::string_view subject, std::string_view payload,
                                             const publish_options& opts);
  asio::awaitable<ack_future> publish_async_awaitable(std::string_view subject, std::string_view payload,
                                                      const publish_options& opts);

  std::shared_ptr<detail::jetstream_impl> impl_;
};

}  // namespace natsbus
