// The public face of JetStream publishing (natsbus::jetstream's publish calls and natsbus::ack_future): each
// hops to the connection's executor when called from elsewhere and hands over to jetstream_impl
// (jetstream_publish.cpp).
#include "jetstream/jetstream_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/dispatch.hpp>

#include <memory>
#include <string>
#include <tuple>

namespace natsbus {

// ---- public publish API ----

void jetstream::publish_impl(std::string_view subject, std::string_view payload, const publish_options& opts,
                             asio::any_completion_handler<void(error_code, pub_ack)> h) {
  auto& im = *impl_;
  if (im.conn_->on_owner_thread()) return im.publish(subject, payload, opts, std::move(h));
  // Off the strand: own the bytes, then hop.
  asio::dispatch(im.conn_->executor(), [impl = impl_, s = std::string(subject), p = std::string(payload),
                                     o = std::make_shared<publish_options>(opts), h = std::move(h)]() mutable {
    // The copies must live until the publish leaves the blocked queue: keep them in the handler's closure.
    auto keep = std::make_shared<std::tuple<std::string, std::string, std::shared_ptr<publish_options>>>(
        std::move(s), std::move(p), std::move(o));
    auto& [ks, kp, ko] = *keep;
    impl->publish(ks, kp, *ko,
                  detail::ack_handler([keep, h = std::move(h)](error_code ec, pub_ack a) mutable {
                    std::move(h)(ec, std::move(a));
                  }));
  });
}

void jetstream::publish_async_impl(std::string_view subject, std::string_view payload, const publish_options& opts,
                                   asio::any_completion_handler<void(error_code, ack_future)> h) {
  auto& im = *impl_;
  if (im.conn_->on_owner_thread()) return im.publish(subject, payload, opts, std::move(h));
  auto keep = std::make_shared<std::tuple<std::string, std::string, publish_options>>(std::string(subject),
                                                                                    std::string(payload), opts);
  asio::dispatch(im.conn_->executor(), [impl = impl_, keep, h = std::move(h)]() mutable {
    auto& [ks, kp, ko] = *keep;
    impl->publish(ks, kp, ko,
                  detail::future_handler([keep, h = std::move(h)](error_code ec, ack_future f) mutable {
                    std::move(h)(ec, std::move(f));
                  }));
  });
}

bool jetstream::try_publish_async(std::string_view subject, std::string_view payload, const publish_options& opts,
                                  ack_future& out, error_code& ec) {
  auto* s = impl_->try_start(subject, payload, opts, ec);
  if (!s) return false;
  s->has_future = true;
  out = ack_future(s);
  return true;
}

asio::awaitable<std::tuple<error_code, ack_future>> jetstream::publish_async_awaitable_ec(
    std::string_view subject, std::string_view payload, const publish_options& opts) {
  std::tuple<error_code, ack_future> r;
  if (try_publish_async(subject, payload, opts, std::get<1>(r), std::get<0>(r)) || std::get<0>(r)) co_return r;
  co_return co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&,
                                          void(error_code, ack_future)>(
      [this](auto handler, std::string_view s, std::string_view p, const publish_options* o) {
        publish_async_impl(s, p, *o, asio::any_completion_handler<void(error_code, ack_future)>(std::move(handler)));
      },
      asio::as_tuple(asio::use_awaitable), subject, payload, &opts);
}

asio::awaitable<std::tuple<error_code, pub_ack>> jetstream::publish_awaitable_ec(std::string_view subject,
                                                                                 std::string_view payload,
                                                                                 const publish_options& opts) {
  error_code ec;
  if (ack_future f; try_publish_async(subject, payload, opts, f, ec)) co_return co_await f.get_awaitable_ec();
  if (ec) {
    std::tuple<error_code, pub_ack> r;
    std::get<0>(r) = ec;
    co_return r;
  }
  co_return co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&, void(error_code, pub_ack)>(
      [this](auto handler, std::string_view s, std::string_view p, const publish_options* o) {
        publish_impl(s, p, *o, asio::any_completion_handler<void(error_code, pub_ack)>(std::move(handler)));
      },
      asio::as_tuple(asio::use_awaitable), subject, payload, &opts);
}

asio::awaitable<pub_ack> jetstream::publish_awaitable(std::string_view subject, std::string_view payload,
                                                      const publish_options& opts) {
  auto [ec, ack] = co_await publish_awaitable_ec(subject, payload, opts);
  if (ec) throw boost::system::system_error(ec);
  co_return std::move(ack);
}

asio::awaitable<ack_future> jetstream::publish_async_awaitable(std::string_view subject, std::string_view payload,
                                                               const publish_options& opts) {
  auto [ec, f] = co_await publish_async_awaitable_ec(subject, payload, opts);
  if (ec) throw boost::system::system_error(ec);
  co_return std::move(f);
}

void jetstream::complete_impl(asio::any_completion_handler<void(error_code)> h) {
  asio::dispatch(impl_->conn_->executor(), [impl = impl_, h = std::move(h)]() mutable { impl->wait_complete(std::move(h)); });
}

std::size_t jetstream::pending() const noexcept { return impl_->in_flight_public_.load(std::memory_order_relaxed); }
std::size_t jetstream::max_pending_seen() const noexcept { return impl_->high_water_.load(std::memory_order_relaxed); }
jetstream_stats jetstream::stats() const noexcept { return impl_->stats(); }

// ---- ack_future ----

ack_future& ack_future::operator=(ack_future&& other) noexcept {
  if (this != &other) {
    this->~ack_future();
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

namespace {

// Whether this thread may touch the state's executor-owned fields (all but conn and done).
bool owns(const detail::ack_state* s) noexcept { return !s->conn || s->conn->on_owner_thread(); }

// The future lets go of its state; on the connection's executor.
void drop(detail::ack_state* s) {
  s->has_future = false;
  if (!s->owner) {
    if (!s->in_ring) delete s;
    return;
  }
  s->owner->release(s);
}

// get() on the connection's executor.
void get_here(detail::ack_state* s, asio::any_completion_handler<void(error_code, pub_ack)> h) {
  if (s->done.load(std::memory_order_acquire)) {
    if (s->owner) return detail::complete(s->owner->connection().executor(), std::move(h), s->ec, s->ec ? pub_ack{} : s->ack);
    return detail::complete(asio::system_executor{}, std::move(h), s->ec, s->ec ? pub_ack{} : s->ack);
  }
  if (s->waiter || s->fast_waiter)
    return detail::complete(s->owner->connection().executor(), std::move(h), error_code(error::invalid_argument), pub_ack{});
  s->waiter.emplace(std::move(h));
  s->awaited = true;
}

}  // namespace

ack_future::~ack_future() {
  if (!state_) return;
  auto* s = std::exchange(state_, nullptr);
  // Off a multi-threaded connection's strand, the release goes to the strand (behind anything this thread queued
  // there before, such as a get()). A single-threaded io_context's state is dropped here, as it always was:
  // another thread only gets here once that io_context has stopped, or by breaking the contract.
  if (s->conn && !s->conn->single_threaded() && !s->conn->on_owner_thread()) {
    asio::dispatch(s->conn->executor(), [s] { drop(s); });
    return;
  }
  drop(s);
}

bool ack_future::ready() const noexcept { return state_ && state_->done.load(std::memory_order_acquire); }

bool ack_future::try_get(error_code& ec, pub_ack& ack) const {
  auto* s = state_;
  if (!s) {
    ec = error::invalid_argument;  // as get() says of an empty future
    ack = pub_ack{};
    return true;
  }
  if (!s->done.load(std::memory_order_acquire)) return false;
  ec = s->ec;
  if (!s->ec) ack = s->ack;
  else ack = pub_ack{};
  return true;
}

asio::awaitable<std::tuple<error_code, pub_ack>> ack_future::get_awaitable_ec() {
  if (std::tuple<error_code, pub_ack> r; try_get(std::get<0>(r), std::get<1>(r))) co_return r;
  co_return co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&,
                                          void(error_code, pub_ack)>(
      [this](auto handler) {
        // On the connection's own thread and executor, the coroutine waits in the state itself.
        using handler_type = decltype(handler);
        auto* st = state_;
        if constexpr (detail::inline_handler<error_code, pub_ack>::fits<handler_type>) {
          if (st && owns(st) && st->owner && !st->done.load(std::memory_order_relaxed) && !st->waiter &&
              !st->fast_waiter && asio::get_associated_executor(handler) == st->owner->connection().executor()) {
            st->fast_waiter.emplace(std::move(handler));
            st->awaited = true;
            return;
          }
        }
        get_impl(asio::any_completion_handler<void(error_code, pub_ack)>(std::move(handler)));
      },
      asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<pub_ack> ack_future::get_awaitable() {
  auto [ec, ack] = co_await get_awaitable_ec();
  if (ec) throw boost::system::system_error(ec);
  co_return std::move(ack);
}

void ack_future::get_impl(asio::any_completion_handler<void(error_code, pub_ack)> h) {
  if (!state_) return detail::complete(asio::system_executor{}, std::move(h), error_code(error::invalid_argument), pub_ack{});
  auto* s = state_;
  // From another thread: on the owning executor. The future keeps the state until then, since its release is
  // queued there too, behind this.
  if (!owns(s)) {
    asio::dispatch(s->conn->executor(), [s, h = std::move(h)]() mutable { get_here(s, std::move(h)); });
    return;
  }
  get_here(s, std::move(h));
}

}  // namespace natsbus
