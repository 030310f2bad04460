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
      socket_(strand_),
      parser_(protocol::parser_limits{opts_.max_control_line, 1024 * 1024, 64 * 1024}),
      rbuf_(std::max<std::size_t>(opts_.read_buffer_size, 4096)),
      writer_wake_(strand_),
      ping_timer_(strand_),
      reconnect_timer_(strand_),
      request_timer_(strand_) {
  rng_state_ = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               reinterpret_cast<std::uintptr_t>(this);
  if (opts_.max_pings_out < 1) opts_.max_pings_out = 1;
  wbuf_.reserve(64 * 1024);
  wire_.reserve(64 * 1024);
}

void connection_impl::emit(event_kind kind, error_code ec, std::string text, std::uint64_t sid) {
  event_handler h;
  {
    std::lock_guard lock(cold_mutex_);
    h = on_event_;
  }
  if (h) h(connection_event{kind, ec, std::move(text), sid});
}

std::uint64_t connection_impl::random() noexcept {
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

asio::awaitable<error_code> connection_impl::try_server(pool_entry& e, std::string& error_text) {
  // A copy: the INFO of the handshake may add discovered servers to pool_, which moves its entries.
  const server_address addr = e.addr;
  asio::ip::tcp::resolver resolver(strand_);
  asio::steady_timer deadline(strand_);
  auto [rec, results] = co_await resolver.async_resolve(addr.host, std::to_string(addr.port), use_ec);
  if (rec) co_return rec;
  if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
  socket_ = asio::ip::tcp::socket(strand_);
  deadline.expires_after(opts_.connect_timeout);
  auto r = co_await (asio::async_connect(socket_, results, use_ec) || deadline.async_wait(use_ec));
  if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
  if (r.index() == 1) co_return error_code(error::connect_timeout);
  auto [cec, ep] = std::get<0>(r);
  if (cec) co_return cec;
  socket_.set_option(asio::ip::tcp::no_delay(true));
  socket_.non_blocking(true);  // the writer tries write_some before waiting on the reactor
  deadline.expires_after(opts_.connect_timeout);
  auto h = co_await (handshake(addr) || deadline.async_wait(use_ec));
  error_code hec = h.index() == 1 ? error_code(error::connect_timeout) : std::get<0>(h);
  if (state_ == conn_state::closed) hec = error::connection_closed;
  if (hec) {
    log_->warn("natsbus: handshake with {} failed: {}", addr.redacted, hec.message());
    {
      std::lock_guard lock(cold_mutex_);
      error_text = last_error_;
    }
    error_code ignored;
    socket_.close(ignored);
    co_return hec;
  }
  log_->info("natsbus: connected to {}", addr.redacted);
  co_return error_code{};
}

asio::awaitable<void> connection_impl::connect_op() {
  auto self = shared_from_this();
  if (state_ != conn_state::idle) throw boost::system::system_error(error::invalid_argument, "connect called twice");
  state_ = conn_state::connecting;
  pool_.clear();
  for (const auto& url : opts_.servers) {
    pool_entry e;
    if (auto ec = parse_server_url(url, e.addr)) {
      state_ = conn_state::idle;
      throw boost::system::system_error(ec, "bad server URL '" + url + "'");
    }
    pool_.push_back(std::move(e));
  }
  if (pool_.empty()) {
    state_ = conn_state::idle;
    throw boost::system::system_error(error::no_servers, "no server URLs");
  }
  if (!valid_inbox_prefix(opts_.inbox_prefix)) {
    state_ = conn_state::idle;
    throw boost::system::system_error(error::invalid_argument, "bad inbox_prefix '" + opts_.inbox_prefix +
                                                                   "': " + std::string(inbox_prefix_rule));
  }
  if (opts_.randomize_servers)
    for (std::size_t i = pool_.size(); i > 1; --i) std::swap(pool_[i - 1], pool_[random() % i]);

  error_code last = error::no_servers;
  std::string last_text;
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    if (state_ == conn_state::closed) break;
    pool_[i].last_attempt = std::chrono::steady_clock::now();
    last = co_await try_server(pool_[i], last_text);
    if (last) continue;
    current_ = i;
    state_ = conn_state::connected;
    emit(event_kind::connected);
    asio::co_spawn(strand_, run(), asio::detached);
    co_return;
  }
  if (state_ == conn_state::closed) throw boost::system::system_error(error::connection_closed);
  if (opts_.retry_on_failed_connect && opts_.allow_reconnect) {
    log_->warn("natsbus: first connect failed ({}); retrying in the background", last.message());
    state_ = conn_state::reconnecting;
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
  auto before = wbuf_.size();
  error_code ec = protocol::encode_publish(wbuf_, subject, reply, hdrs, payload, protocol::prechecked);
  if (ec || !fits_reconnect_buffer(before, ec)) return done(std::move(h), ec);
  out_msgs_.add(1);
  wake_writer();
  // While reconnecting the reconnect buffer bounds what is queued: no suspension, an error when full.
  if (wbuf_.size() > opts_.write_buffer_limit && writable()) blocked_publishers_.push_back(std::move(h));
  else done(std::move(h), error_code{});
}

bool connection_impl::try_queue(std::string_view subject, std::string_view payload, const headers* hdrs,
                                std::string_view reply, error_code& ec) {
  ec = {};
  if (!on_owner_thread() || wbuf_.size() > opts_.write_buffer_limit) return false;
  if ((ec = check_publish(subject, payload, hdrs, reply))) return false;
  auto before = wbuf_.size();
  ec = protocol::encode_publish(wbuf_, subject, reply, hdrs, payload, protocol::prechecked);
  if (ec || !fits_reconnect_buffer(before, ec)) return false;
  out_msgs_.add(1);
  wake_writer();
  return true;
}

void connection_impl::queue_frame(std::string_view frame, std::uint64_t, void_handler h) {
  auto st = state_.load(std::memory_order_relaxed);
  if (st == conn_state::closed) return done(std::move(h), error_code(error::connection_closed));
  if (!accepting()) return done(std::move(h), error_code(error::disconnected));
  auto before = wbuf_.size();
  wbuf_.append(frame);
  if (error_code ec; !fits_reconnect_buffer(before, ec)) return done(std::move(h), ec);
  out_msgs_.add(1);
  wake_writer();
  if (wbuf_.size() > opts_.write_buffer_limit && writable()) blocked_publishers_.push_back(std::move(h));
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
  s->sid = next_sid_++;
  s->subject = std::string(subject);
  s->queue = std::string(queue);
  s->max_pending_msgs = opts_.subscription_pending_msgs;
  s->max_pending_bytes = opts_.subscription_pending_bytes;
  // While reconnecting the SUB goes out with the replay of every subscription.
  if (st == conn_state::connected)
    if (auto ec = protocol::encode_sub(wbuf_, subject, queue, s->sid)) return done(std::move(h), ec, subscription{});
  subs_.emplace(s->sid, s);
  wake_writer();
  done(std::move(h), error_code{}, subscription(std::move(s)));
}

void connection_impl::sub_next(const std::shared_ptr<sub_state>& s, message_handler h) {
  if (!s->queue_msgs.empty()) {
    message m = std::move(s->queue_msgs.front());
    s->queue_msgs.pop_front();
    s->queue_bytes -= m.payload.size();
    s->pending.store(s->queue_msgs.size(), std::memory_order_relaxed);
    return done(std::move(h), error_code{}, std::move(m));
  }
  if (s->closed) return done(std::move(h), error_code(error::subscription_closed), message{});
  if (s->waiter) return done(std::move(h), error_code(error::invalid_argument), message{});
  s->waiter.emplace(std::move(h));
}

void connection_impl::sub_unsubscribe(const std::shared_ptr<sub_state>& s, std::uint64_t max_msgs) {
  if (s->closed) return;
  auto st = state_.load();
  bool up = st == conn_state::connected || st == conn_state::draining;
  if (max_msgs == 0) {
    if (up) {
      protocol::encode_unsub(wbuf_, s->sid);
      wake_writer();
    }
    subs_.erase(s->sid);
    finish_subscription(*s);
    return;
  }
  s->max_msgs = max_msgs;
  if (s->delivered.load() >= max_msgs) {
    if (up) {
      protocol::encode_unsub(wbuf_, s->sid);
      wake_writer();
    }
    subs_.erase(s->sid);
    finish_subscription(*s);
    return;
  }
  if (up) {
    protocol::encode_unsub(wbuf_, s->sid, max_msgs);
    wake_writer();
  }
}

std::uint64_t connection_impl::subscribe_raw(std::string_view pattern,
                                            std::function<void(const protocol::event&)> fn) {
  if (!accepting()) return 0;
  auto s = std::make_shared<sub_state>();
  s->conn = weak_from_this();
  s->sid = next_sid_++;
  s->subject = std::string(pattern);
  s->raw = std::move(fn);
  if (writable() && protocol::encode_sub(wbuf_, pattern, {}, s->sid)) return 0;
  subs_.emplace(s->sid, s);
  wake_writer();
  return s->sid;
}

// ---- request/reply ----

const std::string& connection_impl::inbox_prefix() {
  if (inbox_prefix_.empty()) inbox_prefix_ = protocol::new_inbox(opts_.inbox_prefix) + ".";
  return inbox_prefix_;
}

void connection_impl::ensure_inbox() {
  if (inbox_sid_ != 0) return;
  inbox_sid_ = next_sid_++;
  if (!writable()) return;  // replayed with the subscriptions after the reconnect
  std::string pattern = inbox_prefix() + "*";
  (void)protocol::encode_sub(wbuf_, pattern, {}, inbox_sid_);
  wake_writer();
}

void connection_impl::do_request(std::string_view subject, std::string_view payload, const headers* hdrs,
                                 std::chrono::milliseconds timeout, message_handler h) {
  if (auto ec = check_publish(subject, payload, hdrs, {})) return done(std::move(h), ec, message{});
  ensure_inbox();
  std::uint64_t token = next_token_++;
  char reply[128];
  static_assert(max_inbox_prefix + 1 + protocol::nuid::length + 1 + 20 <= sizeof reply);
  const std::string& prefix = inbox_prefix_;
  std::memcpy(reply, prefix.data(), prefix.size());
  auto [end, tec] = std::to_chars(reply + prefix.size(), reply + sizeof reply, token);
  (void)tec;
  std::string_view reply_sv(reply, static_cast<std::size_t>(end - reply));
  // The subject was checked, and the reply is our own inbox.
  error_code ec = protocol::encode_publish(wbuf_, subject, reply_sv, hdrs, payload, protocol::prechecked);
  if (ec) return done(std::move(h), ec, message{});
  out_msgs_.add(1);
  // A lone request goes out at once: its caller waits for the reply.
  if (requests_.empty()) write_lone();
  else wake_writer();
  if (timeout.count() <= 0) timeout = opts_.request_timeout;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  requests_.emplace(token, pending_request{deadline, std::move(h)});
  if (!request_sweeper_running_) {
    request_sweeper_running_ = true;
    asio::co_spawn(strand_, request_sweeper(), asio::detached);
  } else if (deadline < request_timer_.expiry()) {
    request_timer_.cancel();
  }
}

void connection_impl::on_response(const protocol::event& ev) {
  std::string_view subj = ev.subject;
  if (subj.size() <= inbox_prefix_.size()) return;
  std::string_view tok = subj.substr(inbox_prefix_.size());
  std::uint64_t token = 0;
  auto [p, tec] = std::from_chars(tok.data(), tok.data() + tok.size(), token);
  if (tec != std::errc{} || p != tok.data() + tok.size()) return;
  auto it = requests_.find(token);
  if (it == requests_.end()) {
    if (on_inbox_message_) on_inbox_message_(ev, token);
    return;  // late reply to an abandoned request
  }
  auto h = std::move(it->second.handler);
  requests_.erase(it);
  if (ev.kind == protocol::op::hmsg && ev.payload.empty() && protocol::peek_status(ev.headers) == status::no_responders)
    return done(std::move(h), error_code(error::no_responders), message{});
  message m;
  if (auto mec = make_message(ev, m)) return done(std::move(h), mec, message{});
  done(std::move(h), error_code{}, std::move(m));
}

asio::awaitable<void> connection_impl::request_sweeper() {
  auto self = shared_from_this();
  while (state_ != conn_state::closed) {
    auto next = asio::steady_timer::time_point::max();
    for (auto& [tok, r] : requests_) next = std::min(next, r.deadline);
    request_timer_.expires_at(next);
    co_await request_timer_.async_wait(use_ec);
    auto now = std::chrono::steady_clock::now();
    for (auto it = requests_.begin(); it != requests_.end();) {
      if (it->second.deadline <= now) {
        done(std::move(it->second.handler), error_code(error::timeout), message{});
        it = requests_.erase(it);
      } else {
        ++it;
      }
    }
  }
  request_sweeper_running_ = false;
}

void connection_impl::do_flush(void_handler h) {
  auto st = state_.load();
  if (st == conn_state::closed) return done(std::move(h), error_code(error::connection_closed));
  if (st != conn_state::connected && st != conn_state::draining)
    return done(std::move(h), error_code(error::disconnected));
  protocol::encode_ping(wbuf_);
  ++wbuf_pings_;
  pong_waiters_.emplace_back(std::move(h));
  wake_writer();
}

asio::awaitable<void> connection_impl::drain_op() {
  auto self = shared_from_this();
  if (state_ != conn_state::connected) {
    throw boost::system::system_error(state_ == conn_state::closed ? error::connection_closed : error::disconnected);
  }
  state_ = conn_state::draining;
  for (auto& [sid, s] : subs_) {
    if (sid == inbox_sid_) continue;
    protocol::encode_unsub(wbuf_, sid);
  }
  wake_writer();
  auto [ec] = co_await asio::async_initiate<decltype(use_ec), void(error_code)>(
      [this](auto handler) { do_flush(void_handler(std::move(handler))); }, use_ec);
  // Every message the server sent before our UNSUBs is now queued; the queues stay readable after close.
  do_close(error::connection_closed);
  if (ec) throw boost::system::system_error(ec);
}

void connection_impl::fail_pending(error_code ec) {
  for (auto& w : pong_waiters_)
    if (w) done(std::move(*w), ec);
  pong_waiters_.clear();
  for (auto& h : blocked_publishers_) done(std::move(h), ec);
  blocked_publishers_.clear();
  for (auto& [tok, r] : requests_) done(std::move(r.handler), ec, message{});
  requests_.clear();
}

void connection_impl::do_close(error_code reason) {
  auto prev = state_.exchange(conn_state::closed);
  if (prev == conn_state::closed) return;
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  writer_wake_.cancel();
  ping_timer_.cancel();
  reconnect_timer_.cancel();
  request_timer_.cancel();
  error_code pending_ec = reason == error::connection_closed ? reason : error_code(error::disconnected);
  fail_pending(pending_ec);
  for (auto& [sid, s] : subs_) finish_subscription(*s);
  subs_.clear();
  wbuf_.clear();
  for (auto& fn : on_close_) fn(reason);
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
    impl->queue_frame(frame, 0, std::move(h));
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

void connection::drain_impl(asio::any_completion_handler<void(error_code)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->strand_, impl->drain_op(), [h = std::move(h)](std::exception_ptr e) mutable {
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

std::size_t connection::pending_requests() const noexcept { return impl_->requests_.size(); }

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
    if (conn && conn->on_owner_thread() && !state_->queue_msgs.empty()) {
      std::tuple<error_code, message> r;
      auto& q = state_->queue_msgs;
      std::get<1>(r) = std::move(q.front());
      q.pop_front();
      state_->queue_bytes -= std::get<1>(r).payload.size();
      state_->pending.store(q.size(), std::memory_order_relaxed);
      co_return r;
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
    if (!state_->queue_msgs.empty()) {
      message m = std::move(state_->queue_msgs.front());
      state_->queue_msgs.pop_front();
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
