// natsbus::event_bus: envelopes (publish_envelope, subscribe_envelope's wrapping) and the publish results an
// outbox relay awaits.
#include "bus/event_bus_impl.hpp"

#include <natsbus/protocol/envelope.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <ctime>

namespace natsbus {

// ---- envelopes ----

namespace {
std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

asio::awaitable<std::tuple<error_code, pub_ack>> publish_envelope_op(std::shared_ptr<detail::event_bus_impl> impl,
                                                                     std::string topic, envelope env,
                                                                     std::string payload) {
  if (env.time.empty()) env.time = now_rfc3339();
  headers h;
  std::string why;
  if (auto ec = protocol::encode_envelope(env, h, why)) {
    impl->set_error("publish_envelope " + topic + ": invalid envelope: " + why);
    co_return std::tuple<error_code, pub_ack>{ec, pub_ack{}};
  }
  bus_publish_options po;
  po.hdrs = &h;
  po.msg_id = env.event_id;
  co_return co_await impl->publish_op(topic, payload, po);
}
}  // namespace

void event_bus::publish_envelope_impl(std::string topic, envelope env, std::string payload,
                                      asio::any_completion_handler<void(error_code, pub_ack)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(),
                 publish_envelope_op(impl, std::move(topic), std::move(env), std::move(payload)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, pub_ack> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::get<1>(r));
                 });
}

// ---- publish results ----

namespace {
constexpr auto results_use_ec = asio::as_tuple(asio::use_awaitable);

void deliver_results(detail::event_bus_impl& im) {
  auto& r = im.results_;
  if (r.next_waiter && !r.ready.empty()) {
    auto h = std::move(*r.next_waiter);
    r.next_waiter.reset();
    publish_outcome o = std::move(r.ready.front());
    r.ready.pop_front();
    detail::complete(im.cimpl_->executor(), std::move(h), error_code{}, std::move(o));
  }
  // Room for a waiting publisher?
  while (!r.room_waiters.empty() && r.ready.size() + r.reserved < im.cfg_.publish_results_capacity) {
    auto h = std::move(r.room_waiters.front());
    r.room_waiters.pop_front();
    ++r.reserved;  // taken on the waiter's behalf
    detail::complete(im.cimpl_->executor(), std::move(h), error_code{});
  }
}

asio::awaitable<void> await_outcome(std::shared_ptr<detail::event_bus_impl> impl, ack_future f, std::string id,
                                    std::string topic) {
  auto [ec, ack] = co_await f.get(asio::as_tuple(asio::use_awaitable));
  publish_outcome o;
  o.event_id = std::move(id);
  o.topic = std::move(topic);
  o.error = ec;
  o.seq = ack.seq;
  o.duplicate = ack.duplicate;
  auto& r = impl->results_;
  --r.reserved;
  r.ready.push_back(std::move(o));
  deliver_results(*impl);
}

asio::awaitable<error_code> publish_envelope_async_op(std::shared_ptr<detail::event_bus_impl> impl,
                                                      std::string topic, envelope env, std::string payload) {
  if (env.time.empty()) env.time = now_rfc3339();
  headers h;
  std::string why;
  if (auto ec = protocol::encode_envelope(env, h, why)) {
    impl->set_error("publish_envelope_async " + topic + ": invalid envelope: " + why);
    co_return ec;
  }
  auto& r = impl->results_;
  const auto capacity = std::max<std::size_t>(1, impl->cfg_.publish_results_capacity);
  if (r.ready.size() + r.reserved >= capacity || !r.room_waiters.empty()) {
    // Backpressure: wait until next_publish_result() has taken one (the slot is reserved for this publish).
    auto [wec] = co_await asio::async_initiate<decltype(results_use_ec), void(error_code)>(
        [&r](auto handler) { r.room_waiters.emplace_back(std::move(handler)); }, results_use_ec);
    if (wec) co_return wec;
  } else {
    ++r.reserved;
  }
  bus_publish_options po;
  po.hdrs = &h;
  po.msg_id = env.event_id;
  auto [sec, fut] = co_await impl->start_publish(topic, payload, po);
  if (sec) {
    --r.reserved;
    deliver_results(*impl);
    co_return sec;
  }
  asio::co_spawn(impl->cimpl_->executor(), await_outcome(impl, std::move(fut), env.event_id, topic), asio::detached);
  co_return error_code{};
}
}  // namespace

void event_bus::publish_envelope_async_impl(std::string topic, envelope env, std::string payload,
                                            asio::any_completion_handler<void(error_code)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(),
                 publish_envelope_async_op(impl, std::move(topic), std::move(env), std::move(payload)),
                 [impl, h = std::move(h)](std::exception_ptr e, error_code ec) mutable {
                   if (e) ec = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), ec);
                 });
}

void event_bus::next_publish_result_impl(asio::any_completion_handler<void(error_code, publish_outcome)> h) {
  auto impl = impl_;
  asio::dispatch(impl->cimpl_->executor(), [impl, h = std::move(h)]() mutable {
    auto& r = impl->results_;
    if (r.next_waiter) return detail::complete(impl->cimpl_->executor(), std::move(h), error_code(error::invalid_argument), publish_outcome{});
    r.next_waiter.emplace(std::move(h));
    deliver_results(*impl);
  });
}

event_handler_fn event_bus::wrap_envelope_handler(envelope_handler_fn fn) {
  if (!fn) return {};
  return [fn = std::move(fn)](const bus_event& ev) -> asio::awaitable<handle_result> {
    envelope env;
    std::string why;
    error_code ec = ev.hdrs ? protocol::decode_envelope(*ev.hdrs, env, why) : error_code(error::invalid_argument);
    if (!ev.hdrs) why = "no headers";
    if (ec) co_return handle_result::reject("invalid envelope: " + why);
    co_return co_await fn(env, ev);
  };
}

subscribe_options event_bus::with_envelope_key(const subscribe_options& o) {
  subscribe_options out = o;
  if (out.key_header.empty() && !out.key_fn) out.key_header = std::string(protocol::envelope_aggregate_header);
  return out;
}

}  // namespace natsbus
