// The connection's operations, on its executor: connect, publish, subscribe, request, flush, drain, close. The public
// classes hop here from connection_api.cpp; the session (session.cpp) does the I/O.
#include "connection/connection_impl.hpp"

#include "auth/credentials.hpp"

#include <natsbus/protocol/encoder.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

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

  if (std::string problem; auto ec = check_auth_options(opts_, problem)) {
    state_ = conn_state::idle;
    throw boost::system::system_error(ec, problem);
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
  log_->debug("natsbus: subscribed to '{}'{} (sid {})", s->subject, s->queue.empty() ? "" : " queue " + s->queue, s->sid);
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

std::uint64_t connection_impl::subscribe_raw(std::string_view pattern, frame_listener* l, std::string_view queue) {
  if (!accepting()) return 0;
  auto s = std::make_shared<sub_state>();
  s->conn = weak_from_this();
  s->sid = core_.subs.next_sid();
  s->subject = std::string(pattern);
  s->queue = std::string(queue);
  s->raw = l;
  if (writable() && core_.out.append_sub(pattern, queue, s->sid)) return 0;
  const auto sid = s->sid;
  core_.subs.add(std::move(s));
  wake_writer();
  return sid;
}

void connection_impl::unsubscribe_raw(std::uint64_t sid) {
  if (sid == 0 || !core_.subs.find(sid)) return;
  core_.subs.erase(sid);
  if (writable()) {
    core_.out.append_unsub(sid);
    wake_writer();
  }
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
  core_.pings.flush(std::move(h), std::chrono::steady_clock::now());
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
    // Closed while waiting for the reconnect: as every other pending operation, connection_closed only when the
    // user closed it.
    const bool by_user = state_ == conn_state::closed && close_reason_ == error::connection_closed;
    throw boost::system::system_error(by_user ? error::connection_closed : error::disconnected);
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
  close_reason_ = reason;
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

}  // namespace natsbus
