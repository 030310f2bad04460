// natsbus::connection: public operations and the state they change. Everything after the hop runs on strand_.
#include "connection_impl.hpp"

#include <natsbus/protocol/encoder.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <spdlog/sinks/null_sink.h>

#include <charconv>

namespace natsbus {
namespace detail {

using namespace asio::experimental::awaitable_operators;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {
std::shared_ptr<spdlog::logger> quiet_logger() {
  static auto logger = std::make_shared<spdlog::logger>("natsbus", std::make_shared<spdlog::sinks::null_sink_mt>());
  return logger;
}
}  // namespace

namespace {
std::optional<asio::io_context::executor_type> single_threaded_executor(const asio::any_io_executor& ex) {
  if (auto* io = ex.target<asio::io_context::executor_type>())
    if (asio::use_service<asio::detail::scheduler>(io->context()).concurrency_hint() == 1) return *io;
  return std::nullopt;
}
}  // namespace

connection_impl::connection_impl(asio::any_io_executor ex, connection_options opts)
    : io_ex_(single_threaded_executor(ex)),
      real_strand_(asio::make_strand(ex)),
      strand_(io_ex_ ? asio::any_io_executor(*io_ex_) : asio::any_io_executor(real_strand_)),
      opts_(std::move(opts)),
      log_(opts_.logger ? opts_.logger : quiet_logger()),
      core_(pool_policy{opts_.max_reconnects, opts_.reconnect_wait, opts_.reconnect_jitter, opts_.reconnect_delay,
                        opts_.ignore_discovered_servers},
            opts_.max_pings_out,
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                reinterpret_cast<std::uintptr_t>(this)),
      transport_(strand_),
      parser_(protocol::parser_limits{opts_.max_control_line, 1024 * 1024, 64 * 1024}),
      rbuf_(std::max<std::size_t>(opts_.read_buffer_size, 4096)),
      writer_wake_(strand_),
      write_timer_(strand_),
      ping_timer_(strand_),
      reconnect_timer_(strand_),
      state_timer_(strand_),
      request_timer_(strand_) {}

void connection_impl::emit(event_kind kind, error_code ec, std::string text, std::uint64_t sid) {
  event_handler h;
  {
    std::lock_guard lock(cold_mutex_);
    h = on_event_;
  }
  if (h) h(connection_event{kind, ec, std::move(text), sid});
}

void connection_impl::set_state(conn_state s) {
  state_ = s;
  state_timer_.cancel();  // whoever waits for a state change looks again
}

asio::awaitable<void> connection_impl::connect_op() {
  auto self = shared_from_this();
  if (state_ != conn_state::idle) throw boost::system::system_error(error::invalid_argument, "connect called twice");
  state_ = conn_state::connecting;
  std::string bad;
  if (auto ec = core_.pool.seed(opts_.servers, opts_.randomize_servers, bad)) {
    state_ = conn_state::idle;
    if (ec == error::no_servers) throw boost::system::system_error(ec, "no server URLs");
    throw boost::system::system_error(ec, "bad server URL '" + bad + "'");
  }
  if (!valid_inbox_prefix(opts_.inbox_prefix)) {
    state_ = conn_state::idle;
    throw boost::system::system_error(error::invalid_argument, "bad inbox_prefix '" + opts_.inbox_prefix +
                                                                   "': " + std::string(inbox_prefix_rule));
  }

  error_code last = error::no_servers;
  std::string last_text;
  for (std::size_t i = 0; i < core_.pool.size(); ++i) {
    if (state_ == conn_state::closed) break;
    core_.pool.attempting(i, std::chrono::steady_clock::now());
    last = co_await try_server(i, last_text);
    if (last) continue;
    core_.pool.connected(i);
    ever_connected_ = true;
    set_state(conn_state::connected);
    emit(event_kind::connected);
    asio::co_spawn(strand_, run(), asio::detached);
    co_return;
  }
  if (state_ == conn_state::closed) throw boost::system::system_error(error::connection_closed);
  if (opts_.retry_on_failed_connect && opts_.allow_reconnect) {
    log_->warn("natsbus: first connect failed ({}); retrying in the background", last.message());
    state_ = conn_state::reconnecting;
    core_.out.set_bound(opts_.reconnect_buffer_size);
    asio::co_spawn(strand_, reconnect_then_run(), asio::detached);
    co_return;
  }
  state_ = conn_state::idle;
  throw boost::system::system_error(last, last_text);
}

error_code connection_impl::check_publish(std::string_view subject, std::string_view payload, const headers* hdrs,
                                          std::string_view reply) const {
  auto st = state_.load(std::memory_order_relaxed);
  if (st == conn_state::closed) return error::connection_closed;
  if (!accepting()) return error::disconnected;
  if (!protocol::is_valid_publish_subject(subject)) return error::invalid_subject;
  if (!reply.empty() && !protocol::is_valid_publish_subject(reply)) return error::invalid_subject;
  (void)hdrs;
  if (payload.size() > max_payload_.load(std::memory_order_relaxed)) return error::max_payload_exceeded;
  return {};
}

void connection_impl::do_publish(std::string_view subject, std::string_view payload, const headers* hdrs,
                                 std::string_view reply, void_handler h) {
  if (auto ec = check_publish(subject, payload, hdrs, reply)) return done(std::move(h), ec);
  if (auto ec = core_.out.append_publish(subject, reply, hdrs, payload)) return done(std::move(h), ec);
  out_msgs_.add(1);
  wake_writer();
  // While reconnecting the reconnect buffer bounds what is queued: no suspension, an error when full.
  if (core_.out.size() > opts_.write_buffer_limit && writable()) blocked_publishers_.push_back(std::move(h));
  else done(std::move(h), error_code{});
}

bool connection_impl::try_queue(std::string_view subject, std::string_view payload, const headers* hdrs,
                                std::string_view reply, error_code& ec) {
  ec = {};
  if (!on_owner_thread() || core_.out.size() > opts_.write_buffer_limit) return false;
  if ((ec = check_publish(subject, payload, hdrs, reply))) return false;
  if ((ec = core_.out.append_publish(subject, reply, hdrs, payload))) return false;
  out_msgs_.add(1);
  wake_writer();
  return true;
}

void connection_impl::queue_frame(std::string_view frame, void_handler h) {
  auto st = state_.load(std::memory_order_relaxed);
  if (st == conn_state::closed) return done(std::move(h), error_code(error::connection_closed));
  if (!accepting()) return done(std::move(h), error_code(error::disconnected));
  if (auto ec = core_.out.append_frame(frame)) return done(std::move(h), ec);
  out_msgs_.add(1);
  wake_writer();
  if (core_.out.size() > opts_.write_buffer_limit && writable()) blocked_publishers_.push_back(std::move(h));
  else done(std::move(h), error_code{});
}

void connection_impl::do_subscribe(std::string_view subject, std::string_view queue,
                                   asio::any_completion_handler<void(error_code, subscription)> h) {
  auto st = state_.load();
  if (st == conn_state::closed) return done(std::move(h), error_code(error::connection_closed), subscription{});
  if (st != conn_state::connected && st != conn_state::reconnecting)
    return done(std::move(h), error_code(error::disconnected), subscription{});
  auto s = std::make_shared<sub_state>();
  s->conn = weak_from_this();
  s->sid = core_.subs.next_sid();
  s->subject = std::string(subject);
  s->queue = std::string(queue);
  s->max_pending_msgs = opts_.subscription_pending_msgs;
  s->max_pending_bytes = opts_.subscription_pending_bytes;
  // While reconnecting the SUB goes out with the replay of every subscription.
  if (st == conn_state::connected)
    if (auto ec = core_.out.append_sub(subject, queue, s->sid)) return done(std::move(h), ec, subscription{});
  core_.subs.add(s);
  wake_writer();
  done(std::move(h), error_code{}, subscription(std::move(s)));
}

void connection_impl::sub_next(const std::shared_ptr<sub_state>& s, message_handler h) {
  if (message m; s->pop(m)) return done(std::move(h), error_code{}, std::move(m));
  if (s->closed) return done(std::move(h), error_code(error::subscription_closed), message{});
  if (s->waiter) return done(std::move(h), error_code(error::invalid_argument), message{});
  s->waiter.emplace(std::move(h));
}

void connection_impl::sub_unsubscribe(const std::shared_ptr<sub_state>& s, std::uint64_t max_msgs) {
  if (s->closed) return;
  const bool up = writable();
  // A limit already reached ends the subscription now, as an unlimited unsubscribe does.
  if (max_msgs != 0 && s->delivered.load() < max_msgs) {
    s->max_msgs = max_msgs;
    if (up) {
      core_.out.append_unsub(s->sid, max_msgs);
      wake_writer();
    }
    return;
  }
  if (up) {
    core_.out.append_unsub(s->sid);
    wake_writer();
  }
  auto keep = s;
  core_.subs.erase(keep->sid);
  finish_subscription(*keep);
}

std::uint64_t connection_impl::subscribe_raw(std::string_view pattern, frame_listener* l) {
  if (!accepting()) return 0;
  auto s = std::make_shared<sub_state>();
  s->conn = weak_from_this();
  s->sid = core_.subs.next_sid();
  s->subject = std::string(pattern);
  s->raw = l;
  if (writable() && core_.out.append_sub(pattern, {}, s->sid)) return 0;
  const auto sid = s->sid;
  core_.subs.add(std::move(s));
  wake_writer();
  return sid;
}

// ---- request/reply ----

const std::string& connection_impl::inbox_prefix() {
  if (inbox_prefix_.empty()) inbox_prefix_ = protocol::new_inbox(opts_.inbox_prefix) + ".";
  return inbox_prefix_;
}

void connection_impl::ensure_inbox() {
  if (core_.inbox_sid != 0) return;
  core_.inbox_sid = core_.subs.next_sid();
  if (!writable()) return;  // replayed with the subscriptions after the reconnect
  (void)core_.out.append_sub(inbox_prefix() + "*", {}, core_.inbox_sid);
  wake_writer();
}

std::uint64_t connection_impl::send_request(std::string_view subject, std::string_view payload, const headers* hdrs,
                                            error_code& ec) {
  ensure_inbox();
  const std::uint64_t token = core_.requests.next_token();
  char reply[128];
  static_assert(max_inbox_prefix + 1 + protocol::nuid::length + 1 + 20 <= sizeof reply);
  const std::string& prefix = inbox_prefix_;
  std::memcpy(reply, prefix.data(), prefix.size());
  auto [end, tec] = std::to_chars(reply + prefix.size(), reply + sizeof reply, token);
  (void)tec;
  std::string_view reply_sv(reply, static_cast<std::size_t>(end - reply));
  // The subject was checked, and the reply is our own inbox.
  if ((ec = core_.out.append_publish(subject, reply_sv, hdrs, payload))) return 0;
  out_msgs_.add(1);
  // A lone request goes out at once: its caller waits for the reply.
  if (core_.requests.empty()) write_lone();
  else wake_writer();
  return token;
}

void connection_impl::do_request(std::string_view subject, std::string_view payload, const headers* hdrs,
                                 std::chrono::milliseconds timeout, message_handler h) {
  if (auto ec = check_publish(subject, payload, hdrs, {})) return done(std::move(h), ec, message{});
  error_code ec;
  const auto token = send_request(subject, payload, hdrs, ec);
  if (ec) return done(std::move(h), ec, message{});
  if (timeout.count() <= 0) timeout = opts_.request_timeout;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  core_.requests.add(token, std::move(h), deadline);
  arm_request_sweeper(deadline);
}

std::uint64_t connection_impl::request_stream(std::string_view subject, std::string_view payload, const headers* hdrs,
                                              std::chrono::steady_clock::time_point deadline,
                                              std::shared_ptr<reply_stream> s, error_code& ec) {
  if ((ec = check_publish(subject, payload, hdrs, {}))) return 0;
  const auto token = send_request(subject, payload, hdrs, ec);
  if (ec) return 0;
  core_.requests.add_stream(token, std::move(s), deadline);
  arm_request_sweeper(deadline);
  return token;
}

void connection_impl::arm_request_sweeper(std::chrono::steady_clock::time_point deadline) {
  if (!request_sweeper_running_) {
    request_sweeper_running_ = true;
    asio::co_spawn(strand_, request_sweeper(), asio::detached);
  } else if (deadline < request_timer_.expiry()) {
    request_timer_.cancel();
  }
}

void connection_impl::complete_all(std::vector<request_mux::completion>& cs) {
  for (auto& c : cs) done(std::move(c.handler), c.ec, std::move(c.msg));
  cs.clear();
}

void connection_impl::on_response(const protocol::event& ev) {
  std::string_view subj = ev.subject;
  if (subj.size() <= inbox_prefix_.size()) return;
  std::string_view tok = subj.substr(inbox_prefix_.size());
  std::uint64_t token = 0;
  auto [p, tec] = std::from_chars(tok.data(), tok.data() + tok.size(), token);
  if (tec != std::errc{} || p != tok.data() + tok.size()) return;
  if (auto c = core_.requests.on_reply(token, ev)) done(std::move(c->handler), c->ec, std::move(c->msg));
}

asio::awaitable<void> connection_impl::request_sweeper() {
  auto self = shared_from_this();
  std::vector<request_mux::completion> expired;
  auto next = core_.requests.earliest();
  while (state_ != conn_state::closed) {
    request_timer_.expires_at(next);
    co_await request_timer_.async_wait(use_ec);
    next = core_.requests.expire(std::chrono::steady_clock::now(), expired);
    complete_all(expired);
  }
  request_sweeper_running_ = false;
}

void connection_impl::do_flush(void_handler h) {
  auto st = state_.load();
  if (st == conn_state::closed) return done(std::move(h), error_code(error::connection_closed));
  if (st != conn_state::connected && st != conn_state::draining)
    return done(std::move(h), error_code(error::disconnected));
  core_.out.append_ping();
  core_.pings.flush(std::move(h));
  wake_writer();
}

asio::awaitable<void> connection_impl::drain_op(std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Draining during a reconnect waits for it: the UNSUBs and the flush need a session.
  while (state_ == conn_state::reconnecting || state_ == conn_state::connecting) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw boost::system::system_error(error::timeout, "drain: still reconnecting when its timeout ran out");
    state_timer_.expires_at(deadline);
    co_await state_timer_.async_wait(use_ec);
  }
  if (state_ != conn_state::connected) {
    throw boost::system::system_error(state_ == conn_state::closed ? error::connection_closed : error::disconnected);
  }
  set_state(conn_state::draining);
  core_.subs.for_each([&](const sub_state& s) {
    if (!s.raw) core_.out.append_unsub(s.sid);
  });
  wake_writer();
  asio::steady_timer limit(strand_);
  limit.expires_at(deadline);
  auto r = co_await (asio::async_initiate<decltype(use_ec), void(error_code)>(
                         [this](auto handler) { do_flush(void_handler(std::move(handler))); }, use_ec) ||
                     limit.async_wait(use_ec));
  error_code ec = r.index() == 1 ? error_code(error::timeout) : std::get<0>(std::get<0>(r));
  // Every message the server sent before our UNSUBs is now queued; the queues stay readable after close.
  do_close(error::connection_closed);
  if (ec) throw boost::system::system_error(ec, ec == error::timeout ? "drain: no PONG before its timeout" : "drain");
}

void connection_impl::fail_pending(error_code ec) {
  std::vector<void_handler> flushes;
  core_.pings.fail_all(flushes);
  for (auto& h : flushes) done(std::move(h), ec);
  for (auto& h : blocked_publishers_) done(std::move(h), ec);
  blocked_publishers_.clear();
  std::vector<request_mux::completion> cs;
  core_.requests.fail_all(ec, cs);
  complete_all(cs);
}

void connection_impl::finish_subscription(sub_state& s) {
  if (auto w = subscription_table::finish(s)) done(std::move(*w), error_code(error::subscription_closed), message{});
}

void connection_impl::do_close(error_code reason) {
  auto prev = state_.exchange(conn_state::closed);
  state_timer_.cancel();
  if (prev == conn_state::closed) return;
  transport_.close();
  writer_wake_.cancel();
  write_timer_.cancel();
  ping_timer_.cancel();
  reconnect_timer_.cancel();
  request_timer_.cancel();
  error_code pending_ec = reason == error::connection_closed ? reason : error_code(error::disconnected);
  fail_pending(pending_ec);
  std::vector<message_handler> closed;
  core_.subs.finish_all(closed);
  for (auto& w : closed) done(std::move(w), error_code(error::subscription_closed), message{});
  core_.out.clear();
  notify([&](lifecycle_listener& l) { l.on_close(reason); });
  if (prev == conn_state::connected || prev == conn_state::draining) emit(event_kind::disconnected, reason);
  emit(event_kind::closed, reason);
}

}  // namespace detail

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
  asio::co_spawn(impl->strand_, impl->connect_op(),
                 [impl, h = std::move(h)](std::exception_ptr e) mutable {
                   error_code ec;
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const boost::system::system_error& se) {
                       ec = se.code();
                       // A bad option names itself in the message; last_error() gives it to the caller.
                       std::lock_guard lock(impl->cold_mutex_);
                       impl->last_error_ = se.what();
                     } catch (...) {
                       ec = error::protocol_violation;
                     }
                   }
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
    error_code ec;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const boost::system::system_error& se) {
        ec = se.code();
      } catch (...) {
        ec = error::protocol_violation;
      }
    }
    std::move(h)(ec);
  });
}

void connection::close() {
  asio::dispatch(impl_->strand_, [impl = impl_] { impl->do_close(error::connection_closed); });
}

void connection::set_event_handler(event_handler handler) {
  std::lock_guard lock(impl_->cold_mutex_);
  impl_->on_event_ = std::move(handler);
}

statistics connection::stats() const noexcept {
  auto& im = *impl_;
  return statistics{im.in_msgs_.get(),     im.out_msgs_.get(),   im.in_bytes_.get(),
                    im.out_bytes_.get(),   im.reconnects_.get(), im.dropped_msgs_.get()};
}

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
