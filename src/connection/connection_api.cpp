// natsbus::connection and natsbus::subscription: the public calls, which hop to the connection's executor (or take a
// fast path when already on it) and run the operations of connection.cpp.
#include "connection/connection_impl.hpp"

#include <string>

#include <natsbus/protocol/encoder.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/system_executor.hpp>

namespace natsbus {

namespace {
// The error a coroutine operation ended with: its system_error's code (the text goes to `text`), or
// protocol_violation for anything else.
template <class Text>
error_code code_of(std::exception_ptr e, Text&& text) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {
    // what() is "<detail>: <message> [<category>:<value> at <source location>]": keep the detail, or the
    // message when there is none.
    std::string w = se.what();
    const std::string message = se.code().message();
    if (auto at = w.rfind(": " + message + " ["); at != std::string::npos) w.resize(at);
    else if (w.rfind(message + " [", 0) == 0) w = message;
    text(w.empty() ? message.c_str() : w.c_str());
    return se.code();
  } catch (...) {
    return error::protocol_violation;
  }
}
}  // namespace

// ---- public API: hop to the strand ----

connection::connection(asio::any_io_executor ex, connection_options opts)
    : impl_(std::make_shared<detail::connection_impl>(std::move(ex), std::move(opts))) {}

connection::~connection() {
  // No callback into the owner from its own destructor: the handler may refer to objects already gone.
  set_event_handler(nullptr);
  close();
}

connection::executor_type connection::get_executor() const noexcept { return impl_->strand_; }

void connection::connect_impl(asio::any_completion_handler<void(error_code)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->strand_, impl->connect_op(), [impl, h = std::move(h)](std::exception_ptr e) mutable {
    // A bad option names itself in the message; last_error() gives it to the caller.
    error_code ec = code_of(e, [&](const char* what) {
      std::lock_guard lock(impl->cold_mutex_);
      impl->last_error_ = what;
    });
    std::move(h)(ec);
  });
}

void connection::publish_impl(std::string_view subject, std::string_view payload, const headers* hdrs,
                              std::string_view reply, asio::any_completion_handler<void(error_code)> h) {
  auto& im = *impl_;
  if (im.on_owner_thread()) return im.do_publish(subject, payload, hdrs, reply, std::move(h));
  // Off the strand: encode now, so the caller's bytes need not outlive this call, then hop.
  if (auto ec = im.check_publish(subject, payload, hdrs, reply)) return detail::complete(impl_->strand_, std::move(h), ec);
  std::string frame;
  error_code ec = protocol::encode_publish(frame, subject, reply, hdrs, payload, protocol::prechecked);
  if (ec) return detail::complete(impl_->strand_, std::move(h), ec);
  asio::dispatch(im.strand_, [impl = impl_, frame = std::move(frame), h = std::move(h)]() mutable {
    impl->queue_frame(frame, std::move(h));
  });
}

void connection::subscribe_impl(std::string_view subject, std::string_view queue,
                                asio::any_completion_handler<void(error_code, subscription)> h) {
  if (!protocol::is_valid_subscription_subject(subject))
    return detail::complete(impl_->strand_, std::move(h), error_code(error::invalid_subject), subscription{});
  if (!queue.empty() && !protocol::is_valid_queue_group(queue))
    return detail::complete(impl_->strand_, std::move(h), error_code(error::invalid_queue_group), subscription{});
  asio::dispatch(impl_->strand_, [impl = impl_, s = std::string(subject), q = std::string(queue),
                                  h = std::move(h)]() mutable { impl->do_subscribe(s, q, std::move(h)); });
}

void connection::request_impl(std::string_view subject, std::string_view payload, const headers* hdrs,
                              std::chrono::milliseconds timeout,
                              asio::any_completion_handler<void(error_code, message)> h) {
  auto& im = *impl_;
  if (im.on_owner_thread()) return im.do_request(subject, payload, hdrs, timeout, std::move(h));
  std::optional<headers> hcopy;
  if (hdrs) hcopy = *hdrs;
  asio::dispatch(im.strand_, [impl = impl_, s = std::string(subject), p = std::string(payload),
                              hcopy = std::move(hcopy), timeout, h = std::move(h)]() mutable {
    impl->do_request(s, p, hcopy ? &*hcopy : nullptr, timeout, std::move(h));
  });
}

void connection::flush_impl(asio::any_completion_handler<void(error_code)> h) {
  asio::dispatch(impl_->strand_, [impl = impl_, h = std::move(h)]() mutable { impl->do_flush(std::move(h)); });
}

void connection::drain_impl(std::chrono::milliseconds timeout, asio::any_completion_handler<void(error_code)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->strand_, impl->drain_op(timeout), [h = std::move(h)](std::exception_ptr e) mutable {
    std::move(h)(code_of(e, [](const char*) {}));
  });
}

void connection::close() {
  asio::dispatch(impl_->strand_, [impl = impl_] { impl->do_close(error::connection_closed); });
}

void connection::set_event_handler(event_handler handler) {
  std::lock_guard lock(impl_->cold_mutex_);
  impl_->on_event_ = std::move(handler);
}

statistics connection::stats() const noexcept { return impl_->stats(); }

namespace detail {
statistics connection_impl::stats() const noexcept {
  return statistics{in_msgs_.get(),     out_msgs_.get(),   in_bytes_.get(),
                    out_bytes_.get(),   reconnects_.get(), dropped_msgs_.get(),
                    core_.subs.live(),  std::chrono::nanoseconds(rtt_ns_.load(std::memory_order_relaxed))};
}
}  // namespace detail

server_info connection::info() const {
  std::lock_guard lock(impl_->cold_mutex_);
  return impl_->info_;
}

bool connection::is_connected() const noexcept { return impl_->state_.load() == detail::conn_state::connected; }

std::size_t connection::pending_requests() const noexcept { return impl_->pending_requests(); }

std::string connection::last_error() const {
  std::lock_guard lock(impl_->cold_mutex_);
  return impl_->last_error_;
}

bool connection::try_publish(std::string_view subject, std::string_view payload, error_code& ec) {
  return impl_->try_queue(subject, payload, nullptr, {}, ec);
}

bool connection::on_owner_thread() const noexcept { return impl_->on_owner_thread(); }

asio::awaitable<std::tuple<error_code>> connection::publish_awaitable_ec(std::string_view subject,
                                                                        std::string_view payload,
                                                                        const headers* hdrs, std::string_view reply) {
  error_code ec;
  if (impl_->try_queue(subject, payload, hdrs, reply, ec) || ec) co_return std::tuple<error_code>(ec);
  auto r = co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&, void(error_code)>(
      [this](auto handler, std::string_view s, std::string_view p, const headers* h, std::string_view rp) {
        publish_impl(s, p, h, rp, asio::any_completion_handler<void(error_code)>(std::move(handler)));
      },
      asio::as_tuple(asio::use_awaitable), subject, payload, hdrs, reply);
  co_return r;
}

asio::awaitable<void> connection::publish_awaitable(std::string_view subject, std::string_view payload,
                                                    const headers* hdrs, std::string_view reply) {
  error_code ec;
  if (!impl_->try_queue(subject, payload, hdrs, reply, ec) && !ec) {
    auto [e] = co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&, void(error_code)>(
        [this](auto handler, std::string_view s, std::string_view p, const headers* h, std::string_view rp) {
          publish_impl(s, p, h, rp, asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        asio::as_tuple(asio::use_awaitable), subject, payload, hdrs, reply);
    ec = e;
  }
  if (ec) throw boost::system::system_error(ec);
}

// ---- subscription ----

asio::awaitable<std::tuple<error_code, message>> subscription::next_awaitable_ec() {
  if (state_) {
    auto conn = state_->conn.lock();
    if (conn && conn->on_owner_thread()) {
      std::tuple<error_code, message> r;
      if (state_->pop(std::get<1>(r))) co_return r;
    }
  }
  co_return co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&, void(error_code, message)>(
      [this](auto handler) { next_impl(asio::any_completion_handler<void(error_code, message)>(std::move(handler))); },
      asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<message> subscription::next_awaitable() {
  auto [ec, m] = co_await next_awaitable_ec();
  if (ec) throw boost::system::system_error(ec);
  co_return std::move(m);
}

void subscription::next_impl(asio::any_completion_handler<void(error_code, message)> handler) {
  if (!state_) return detail::complete(asio::system_executor{}, std::move(handler), error_code(error::invalid_argument), message{});
  auto conn = state_->conn.lock();
  if (!conn) {
    // The connection is gone; whatever was queued is still ours to hand out.
    if (message m; state_->pop(m)) {
      return detail::complete(asio::system_executor{}, std::move(handler), error_code{}, std::move(m));
    }
    return detail::complete(asio::system_executor{}, std::move(handler), error_code(error::connection_closed), message{});
  }
  asio::dispatch(conn->strand_, [conn, s = state_, h = std::move(handler)]() mutable { conn->sub_next(s, std::move(h)); });
}

void subscription::unsubscribe() {
  if (!state_) return;
  if (auto conn = state_->conn.lock())
    asio::dispatch(conn->strand_, [conn, s = state_] { conn->sub_unsubscribe(s, 0); });
  else
    state_->unsubscribed.store(true);
}

void subscription::auto_unsubscribe(std::uint64_t max_msgs) {
  if (!state_ || max_msgs == 0) return;
  if (auto conn = state_->conn.lock())
    asio::dispatch(conn->strand_, [conn, s = state_, max_msgs] { conn->sub_unsubscribe(s, max_msgs); });
}

std::uint64_t subscription::sid() const noexcept { return state_ ? state_->sid : 0; }
const std::string& subscription::subject() const noexcept {
  static const std::string empty;
  return state_ ? state_->subject : empty;
}
std::size_t subscription::pending() const noexcept { return state_ ? state_->pending.load() : 0; }
std::uint64_t subscription::dropped() const noexcept { return state_ ? state_->dropped.load() : 0; }
std::uint64_t subscription::delivered() const noexcept { return state_ ? state_->delivered.load() : 0; }

}  // namespace natsbus
