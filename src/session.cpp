// The connection's session: handshake, then reader || writer || keepalive until the connection is lost.
#include "connection_impl.hpp"

#include <natsbus/protocol/encoder.hpp>
#include <natsbus/protocol/headers.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <variant>

namespace natsbus::detail {

using namespace asio::experimental::awaitable_operators;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = text[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

}  // namespace

error_code make_message(const protocol::event& ev, message& out) {
  out.subject.assign(ev.subject);
  out.reply.assign(ev.reply);
  out.payload.assign(ev.payload);
  out.sid = ev.sid;
  out.headers = headers{};
  if (ev.kind == protocol::op::hmsg && !ev.headers.empty()) return protocol::decode_headers(ev.headers, out.headers);
  return {};
}

asio::awaitable<error_code> connection_impl::read_more() {
  // Keep unconsumed bytes at the front, and grow only up to the largest frame the parser accepts.
  if (rbegin_ > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + rbegin_, rend_ - rbegin_);
    rend_ -= rbegin_;
    rbegin_ = 0;
  }
  if (rend_ == rbuf_.size()) {
    std::size_t grown = std::min(rbuf_.size() * 2, parser_.max_frame_size() + 64);
    if (grown <= rbuf_.size()) co_return error::protocol_violation;  // the parser would have failed first
    rbuf_.resize(grown);
  }
  auto [ec, n] = co_await socket_.async_read_some(asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_), use_ec);
  if (ec) co_return ec;
  rend_ += n;
  in_bytes_.add(n);
  co_return error_code{};
}

asio::awaitable<error_code> connection_impl::handshake(const server_address& addr) {
  parser_.reset();
  parser_.set_max_payload(1024 * 1024);
  rbegin_ = rend_ = 0;
  pings_out_ = 0;

  // INFO first.
  for (;;) {
    error_code ec;
    auto ev = parser_.next({rbuf_.data() + rbegin_, rend_ - rbegin_}, ec);
    if (ec) co_return ec;
    if (ev) {
      rbegin_ += parser_.consumed();
      if (ev->kind != protocol::op::info) co_return error::protocol_violation;
      if (auto e = handle_info(ev->payload, true)) co_return e;
      break;
    }
    if (auto e = co_await read_more()) co_return e;
  }
  server_info info;
  {
    std::lock_guard lock(cold_mutex_);
    info = info_;
  }
  if (info.tls_required || addr.scheme == "tls" || addr.scheme == "wss") co_return error::tls_required;
  if (!info.headers) co_return error::not_supported;

  protocol::connect_fields f;
  f.verbose = opts_.verbose;
  f.pedantic = opts_.pedantic;
  f.name = opts_.name;
  f.version = "0.1.0";
  f.echo = opts_.echo;
  f.no_responders = opts_.no_responders;
  if (opts_.user) f.user = opts_.user;
  else if (!addr.user.empty()) f.user = addr.user;
  if (opts_.password) f.pass = opts_.password;
  else if (!addr.password.empty()) f.pass = addr.password;
  if (opts_.token) f.auth_token = opts_.token;
  else if (!addr.token.empty()) f.auth_token = addr.token;
  std::string out;
  protocol::encode_connect(out, f);
  protocol::encode_ping(out);
  auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(out), use_ec);
  if (wec) co_return wec;
  out_bytes_.add(wn);

  // Then PONG, or -ERR.
  for (;;) {
    error_code ec;
    auto ev = parser_.next({rbuf_.data() + rbegin_, rend_ - rbegin_}, ec);
    if (ec) co_return ec;
    if (ev) {
      rbegin_ += parser_.consumed();
      switch (ev->kind) {
        case protocol::op::pong: co_return error_code{};
        case protocol::op::err: {
          auto e = handle_err(ev->payload);
          co_return e ? e : error_code(error::server_error);
        }
        case protocol::op::info:
          if (auto e = handle_info(ev->payload, false)) co_return e;
          break;
        case protocol::op::ok: break;
        case protocol::op::ping: {
          std::string pong;
          protocol::encode_pong(pong);
          auto [pec, pn] = co_await asio::async_write(socket_, asio::buffer(pong), use_ec);
          if (pec) co_return pec;
          break;
        }
        default: co_return error::protocol_violation;
      }
      continue;
    }
    if (auto e = co_await read_more()) co_return e;
  }
}

// The lifetime loop: a session (reader || writer || keepalive) until the connection is lost, then the reconnect
// loop, then the next session; until close(), or until no server is left.
asio::awaitable<void> connection_impl::run() {
  auto self = shared_from_this();
  for (;;) {
    writer_parked_ = false;
    auto result = co_await (reader() || writer() || keepalive());
    error_code ec = std::visit([](auto v) { return error_code(v); }, result);
    if (state_ == conn_state::closed) co_return;
    if (!ec) ec = error::disconnected;
    log_->warn("natsbus: connection to {} lost: {}", pool_.empty() ? "" : pool_[current_].addr.redacted,
               ec.message());
    if (!opts_.allow_reconnect || state_ == conn_state::draining) {
      do_close(ec);
      co_return;
    }
    begin_reconnect(ec);
    auto rec = co_await reconnect_loop();
    if (state_ == conn_state::closed) co_return;
    if (rec) {
      do_close(rec);
      co_return;
    }
  }
}

asio::awaitable<void> connection_impl::reconnect_then_run() {
  auto self = shared_from_this();
  auto rec = co_await reconnect_loop();
  if (state_ == conn_state::closed) co_return;
  if (rec) {
    do_close(rec);
    co_return;
  }
  co_await run();
}

void connection_impl::begin_reconnect(error_code reason) {
  state_ = conn_state::reconnecting;
  writer_parked_ = false;  // no direct writes until the next session's writer waits
  error_code ignored;
  socket_.close(ignored);
  // The batch that was on the wire may have arrived in part: it is dropped. wbuf_ holds whole frames that
  // never left; it becomes the reconnect buffer.
  wire_.clear();
  pings_out_ = 0;
  // Flushes whose PING left with the old session can never be answered; those still in wbuf_ will be.
  std::size_t gone = pong_waiters_.size() > wbuf_pings_ ? pong_waiters_.size() - wbuf_pings_ : 0;
  for (std::size_t i = 0; i < gone; ++i) {
    if (pong_waiters_.front()) done(std::move(*pong_waiters_.front()), error_code(error::disconnected));
    pong_waiters_.pop_front();
  }
  if (opts_.fail_requests_on_disconnect) {
    for (auto& [tok, r] : requests_) done(std::move(r.handler), error_code(error::disconnected), message{});
    requests_.clear();
  }
  // Publishers waiting for the write buffer: their frames are queued; the reconnect buffer bounds the rest.
  for (auto& h : blocked_publishers_) done(std::move(h), error_code{});
  blocked_publishers_.clear();
  if (!pool_.empty()) pool_[current_].last_attempt = std::chrono::steady_clock::now();
  for (auto& fn : on_disconnect_) fn();
  emit(event_kind::disconnected, reason);
}

void connection_impl::finish_reconnect() {
  // Subscriptions first, so that buffered publishes and resent JetStream publishes find them in place.
  std::string replay;
  if (inbox_sid_ != 0) (void)protocol::encode_sub(replay, inbox_prefix() + "*", {}, inbox_sid_);
  for (auto& [sid, sub] : subs_) {
    if (sub->closed) continue;
    (void)protocol::encode_sub(replay, sub->subject, sub->queue, sid);
    if (sub->max_msgs != 0) {
      auto delivered = sub->delivered.load(std::memory_order_relaxed);
      if (delivered < sub->max_msgs) protocol::encode_unsub(replay, sid, sub->max_msgs - delivered);
    }
  }
  // Then what had left with the old session and is sent again (JetStream publishes by message id), then the
  // frames that never left: publish order is kept, and nothing goes twice.
  std::string never_left;
  never_left.swap(wbuf_);
  wbuf_ = std::move(replay);
  state_ = conn_state::connected;
  reconnects_.add(1);
  for (auto& fn : on_reconnect_) fn();
  wbuf_.append(never_left);
  wake_writer();
  emit(event_kind::reconnected);
}

asio::awaitable<error_code> connection_impl::reconnect_loop() {
  auto self = shared_from_this();
  std::size_t next = pool_.empty() ? 0 : (current_ + 1) % pool_.size();
  error_code last = error::no_servers;
  for (;;) {
    if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
    if (pool_.empty()) co_return last;
    if (next >= pool_.size()) next = 0;
    // Servers in lame duck mode come last: skip them while any other is left.
    bool all_lame = std::all_of(pool_.begin(), pool_.end(), [](const pool_entry& e) { return e.lame_duck; });
    if (all_lame) {
      for (auto& e : pool_) e.lame_duck = false;
    } else if (pool_[next].lame_duck) {
      next = (next + 1) % pool_.size();
      continue;
    }
    std::size_t idx = next;
    next = (next + 1) % pool_.size();
    {
      auto& e = pool_[idx];
      std::chrono::milliseconds wait = opts_.reconnect_delay
                                           ? opts_.reconnect_delay(e.attempts + 1)
                                           : opts_.reconnect_wait;
      if (!opts_.reconnect_delay && opts_.reconnect_jitter.count() > 0)
        wait += std::chrono::milliseconds(random() % static_cast<std::uint64_t>(opts_.reconnect_jitter.count() + 1));
      auto due = e.last_attempt + wait;
      if (e.last_attempt.time_since_epoch().count() != 0 && due > std::chrono::steady_clock::now()) {
        reconnect_timer_.expires_at(due);
        auto [tec] = co_await reconnect_timer_.async_wait(use_ec);
        (void)tec;
        if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
      }
    }
    if (idx >= pool_.size()) continue;  // the pool changed while waiting
    pool_[idx].last_attempt = std::chrono::steady_clock::now();
    std::string text;
    auto ec = co_await try_server(pool_[idx], text);
    if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
    if (idx >= pool_.size()) continue;
    auto& e = pool_[idx];
    if (!ec) {
      e.attempts = 0;
      e.auth_errors = 0;
      current_ = idx;
      log_->info("natsbus: reconnected to {}", e.addr.redacted);
      finish_reconnect();
      co_return error_code{};
    }
    last = ec;
    ++e.attempts;
    bool auth = ec == error::authorization_violation || ec == error::authentication_expired;
    e.auth_errors = auth ? e.auth_errors + 1 : 0;
    bool drop = (auth && e.auth_errors >= 2) || (opts_.max_reconnects >= 0 && e.attempts > opts_.max_reconnects);
    if (drop) {
      log_->warn("natsbus: removing {} from the server pool after {} failed attempts ({})", e.addr.redacted,
                 e.attempts, ec.message());
      pool_.erase(pool_.begin() + static_cast<std::ptrdiff_t>(idx));
      if (current_ > idx) --current_;
      if (current_ >= pool_.size()) current_ = 0;
      next = idx;
    }
  }
}

void connection_impl::add_discovered(const std::vector<std::string>& urls) {
  if (opts_.ignore_discovered_servers) return;
  bool added = false;
  for (const auto& u : urls) {
    pool_entry e;
    if (parse_server_url(u, e.addr)) continue;
    bool known = std::any_of(pool_.begin(), pool_.end(), [&](const pool_entry& p) {
      return p.addr.host == e.addr.host && p.addr.port == e.addr.port;
    });
    if (known) continue;
    e.discovered = true;
    // Credentials come from the options, or from the seed the client connected with.
    if (!pool_.empty()) {
      const auto& seed = pool_[current_].addr;
      e.addr.user = seed.user;
      e.addr.password = seed.password;
      e.addr.token = seed.token;
    }
    log_->info("natsbus: discovered server {}", e.addr.redacted);
    pool_.push_back(std::move(e));
    added = true;
  }
  if (added) emit(event_kind::discovered_servers);
}

bool connection_impl::fits_reconnect_buffer(std::size_t size_before, error_code& ec) {
  if (state_.load(std::memory_order_relaxed) != conn_state::reconnecting) return true;
  if (wbuf_.size() <= opts_.reconnect_buffer_size) return true;
  wbuf_.resize(size_before);  // never a partial frame
  ec = error::reconnect_buffer_full;
  return false;
}

asio::awaitable<error_code> connection_impl::reader() {
  for (;;) {
    // Drain every complete frame before reading again.
    in_batch_ = true;
    error_code e;
    for (;;) {
      auto ev = parser_.next({rbuf_.data() + rbegin_, rend_ - rbegin_}, e);
      if (e) {
        log_->error("natsbus: protocol error from server: {}", e.message());
        break;
      }
      if (!ev) break;
      rbegin_ += parser_.consumed();
      if ((e = handle(*ev))) break;
    }
    end_batch();
    if (e) co_return e;
    maybe_spin();
    e = co_await read_more();
    note_read();
    if (e) co_return e;
  }
}

void connection_impl::write_lone() {
  // Only a frame that left now starts a round trip worth polling for (not one buffered while reconnecting).
  if (write_now() && io_ex_ && opts_.busy_poll.count() > 0) lone_sent_ = std::chrono::steady_clock::now();
}

void connection_impl::note_read() {
  if (spinning_) {
    spinning_ = false;
    ++spin_gen_;
  }
  if (lone_sent_ == std::chrono::steady_clock::time_point{}) return;
  auto sample = std::chrono::steady_clock::now() - lone_sent_;
  lone_sent_ = {};
  rtt_avg_ = rtt_avg_.count() == 0 ? sample : rtt_avg_ + (sample - rtt_avg_) / 8;
}

void connection_impl::maybe_spin() {
  if (spinning_ || lone_sent_ == std::chrono::steady_clock::time_point{}) return;
  std::chrono::nanoseconds limit = opts_.busy_poll;
  if (rtt_avg_ > limit) return;  // the server answers too slowly for polling to pay
  if (rtt_avg_.count() > 0) limit = std::min(limit, 2 * rtt_avg_);
  spin_until_ = lone_sent_ + limit;
  if (std::chrono::steady_clock::now() >= spin_until_) return;
  spinning_ = true;
  spin_step(spin_gen_);
}

void connection_impl::spin_step(std::uint64_t gen) {
  if (!spinning_ || gen != spin_gen_) return;
  if (std::chrono::steady_clock::now() >= spin_until_) {
    spinning_ = false;
    ++spin_gen_;
    return;
  }
  // A queued handler makes the scheduler poll the reactor without blocking; everything else runs as usual.
  asio::post(*io_ex_, [self = shared_from_this(), gen] { self->spin_step(gen); });
}

void connection_impl::end_batch() {
  in_batch_ = false;
  if (batch_listeners_.empty()) return;
  // The listeners resume coroutines, which may publish, close the connection or drop their context: the list
  // is taken first, and each listener is kept alive by its entry until it has run.
  batch_running_.swap(batch_listeners_);
  for (auto& l : batch_running_) l->after_batch();
  batch_running_.clear();
}

asio::awaitable<error_code> connection_impl::writer() {
  for (;;) {
    while (wbuf_.empty() && wire_.empty()) {
      release_blocked_publishers();  // a direct write may have drained what they waited on
      // Parked: the socket is free, and publishers may write to it directly (write_now) until this resumes.
      writer_parked_ = true;
      wake_sent_ = false;
      direct_write_at_ = early_write_bytes;
      writer_wake_.expires_at(asio::steady_timer::time_point::max());
      co_await writer_wake_.async_wait(use_ec);
      writer_parked_ = false;
      if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
      // A cancelled wait is the wake-up; the coroutine's own cancellation shows up as the socket closing.
      auto cs = (co_await asio::this_coro::cancellation_state).cancelled();
      if (cs != asio::cancellation_type::none) co_return error_code(asio::error::operation_aborted);
    }
    // wire_ may hold the rest of an early write (see wake_writer); it goes first.
    if (wire_.empty()) {
      wire_.swap(wbuf_);
      ++wbuf_gen_;
      wbuf_pings_ = 0;
    }
    // Try the socket at once: when the kernel takes everything (the common case) the write costs one system
    // call and no trip through the scheduler. Only a partial write waits for the reactor.
    error_code ec;
    std::size_t n = socket_.write_some(asio::buffer(wire_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {}, n = 0;
    if (ec) co_return ec;
    if (n < wire_.size()) {
      auto [wec, m] = co_await asio::async_write(socket_, asio::buffer(wire_.data() + n, wire_.size() - n), use_ec);
      if (wec) co_return wec;
      n += m;
    }
    out_bytes_.add(n);
    wire_.clear();
    release_blocked_publishers();
  }
}

asio::awaitable<error_code> connection_impl::keepalive() {
  for (;;) {
    ping_timer_.expires_after(opts_.ping_interval);
    auto [ec] = co_await ping_timer_.async_wait(use_ec);
    if (ec) co_return ec;
    if (pings_out_ >= opts_.max_pings_out) {
      log_->warn("natsbus: stale connection: {} PINGs unanswered", pings_out_);
      co_return error_code(error::stale_connection);
    }
    ++pings_out_;
    pong_waiters_.emplace_back(std::nullopt);
    protocol::encode_ping(wbuf_);
    ++wbuf_pings_;
    wake_writer();
  }
}

void connection_impl::wake_writer() {
  if (!writer_parked_) return;
  // A publisher that queues much without yielding (a burst from one coroutine) gets its bytes onto the wire
  // early, straight from here, so the server works while the publisher goes on; the writer takes any rest.
  // After a direct write the socket did not take in full, the next try waits for another early_write_bytes:
  // a full socket is not asked again on every publish.
  if (wbuf_.size() >= direct_write_at_) {
    if (write_now()) {
      direct_write_at_ = early_write_bytes;
      return;
    }
    direct_write_at_ = wbuf_.size() + early_write_bytes;
  }
  unpark_writer();
}

void connection_impl::unpark_writer() {
  if (wake_sent_) return;
  wake_sent_ = true;
  writer_wake_.cancel();
}

bool connection_impl::write_now() {
  if (!writer_parked_ || (wbuf_.empty() && wire_.empty())) return false;
  if (state_.load(std::memory_order_relaxed) == conn_state::connected) {
    error_code ec;
    // The rest of an earlier direct write goes first; the writer has not run since.
    if (!wire_.empty()) {
      std::size_t n = socket_.write_some(asio::buffer(wire_), ec);
      if (!ec && n > 0) {
        out_bytes_.add(n);
        wire_.erase(0, n);
      }
    }
    if (!ec && wire_.empty() && !wbuf_.empty()) {
      std::size_t n = socket_.write_some(asio::buffer(wbuf_), ec);
      if (!ec && n > 0) {
        out_bytes_.add(n);
        ++wbuf_gen_;  // every frame has left wbuf_, in whole or in part
        wbuf_pings_ = 0;
        if (n < wbuf_.size()) wire_.assign(wbuf_, n, std::string::npos);
        wbuf_.clear();
      }
    }
    if (wire_.empty() && wbuf_.empty()) {
      release_blocked_publishers();
      return true;
    }
  }
  // A full socket, an error or no session: the writer takes over (it reports errors and waits on the reactor).
  unpark_writer();
  return false;
}

void connection_impl::release_blocked_publishers() {
  while (!blocked_publishers_.empty() && wbuf_.size() <= opts_.write_buffer_limit) {
    done(std::move(blocked_publishers_.front()), error_code{});
    blocked_publishers_.pop_front();
  }
}

error_code connection_impl::handle(const protocol::event& ev) {
  switch (ev.kind) {
    case protocol::op::msg:
    case protocol::op::hmsg: {
      in_msgs_.add(1);
      if (ev.sid == inbox_sid_ && inbox_sid_ != 0) {
        on_response(ev);
        return {};
      }
      auto it = subs_.find(ev.sid);
      if (it == subs_.end()) return {};
      if (it->second->raw) it->second->raw(ev);
      else deliver(it->second, ev);
      return {};
    }
    case protocol::op::ping:
      protocol::encode_pong(wbuf_);
      wake_writer();
      return {};
    case protocol::op::pong: {
      pings_out_ = 0;
      if (!pong_waiters_.empty()) {
        auto w = std::move(pong_waiters_.front());
        pong_waiters_.pop_front();
        if (w) done(std::move(*w), error_code{});
      }
      return {};
    }
    case protocol::op::ok: return {};
    case protocol::op::info: return handle_info(ev.payload, false);
    case protocol::op::err: return handle_err(ev.payload);
  }
  return error::protocol_violation;
}

error_code connection_impl::handle_info(std::string_view json, bool initial) {
  server_info info;
  if (auto ec = protocol::decode(json, info)) return ec;
  if (info.max_payload > 0) {
    max_payload_ = static_cast<std::size_t>(info.max_payload);
    parser_.set_max_payload(static_cast<std::size_t>(info.max_payload));
  }
  bool ldm = info.lame_duck_mode;
  auto urls = info.connect_urls;
  {
    std::lock_guard lock(cold_mutex_);
    info_ = std::move(info);
  }
  add_discovered(urls);
  if (!initial) {
    emit(event_kind::server_info);
    if (ldm) {
      log_->warn("natsbus: {} entered lame duck mode; moving to another server",
                 pool_.empty() ? "" : pool_[current_].addr.redacted);
      emit(event_kind::lame_duck);
      if (!pool_.empty()) pool_[current_].lame_duck = true;
      // Leave now: the session ends, and the reconnect loop prefers any other server.
      if (opts_.allow_reconnect && pool_.size() > 1) return error::lame_duck_mode;
    }
  }
  return {};
}

error_code connection_impl::handle_err(std::string_view text) {
  {
    std::lock_guard lock(cold_mutex_);
    last_error_ = std::string(text);
  }
  // Permission violations leave the connection up; every other -ERR is followed by the server closing it.
  if (iequals_prefix(text, "Permissions Violation")) {
    log_->warn("natsbus: server: {}", text);
    emit(event_kind::error, error::permissions_violation, std::string(text));
    return {};
  }
  error_code ec = error::server_error;
  if (iequals_prefix(text, "Authorization Violation")) ec = error::authorization_violation;
  else if (iequals_prefix(text, "User Authentication Expired")) ec = error::authentication_expired;
  else if (iequals_prefix(text, "Stale Connection")) ec = error::stale_connection;
  else if (iequals_prefix(text, "Maximum Payload")) ec = error::max_payload_exceeded;
  log_->error("natsbus: server: {}", text);
  emit(event_kind::error, ec, std::string(text));
  return ec;
}

void connection_impl::deliver(const std::shared_ptr<sub_state>& s, const protocol::event& ev) {
  if (s->closed) return;
  auto n = s->delivered.load(std::memory_order_relaxed) + 1;
  s->delivered.store(n, std::memory_order_relaxed);
  bool last = s->max_msgs != 0 && n >= s->max_msgs;
  if (s->waiter) {
    message m;
    if (auto ec = make_message(ev, m)) {
      emit(event_kind::error, ec, "bad header block in message on " + std::string(ev.subject), s->sid);
    } else {
      auto w = std::move(*s->waiter);
      s->waiter.reset();
      done(std::move(w), error_code{}, std::move(m));
    }
  } else {
    std::size_t size = ev.payload.size();
    if (s->queue_msgs.size() >= s->max_pending_msgs || s->queue_bytes + size > s->max_pending_bytes) {
      s->dropped.store(s->dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      dropped_msgs_.add(1);
      if (!s->in_slow_state) {
        s->in_slow_state = true;
        log_->warn("natsbus: slow consumer on '{}' (sid {})", s->subject, s->sid);
        emit(event_kind::slow_consumer, error::slow_consumer, s->subject, s->sid);
      }
    } else {
      s->in_slow_state = false;
      message m;
      if (auto ec = make_message(ev, m)) {
        emit(event_kind::error, ec, "bad header block in message on " + std::string(ev.subject), s->sid);
      } else {
        s->queue_bytes += size;
        s->queue_msgs.push_back(std::move(m));
        s->pending.store(s->queue_msgs.size(), std::memory_order_relaxed);
      }
    }
  }
  if (last) {
    subs_.erase(s->sid);
    finish_subscription(*s);
  }
}

void connection_impl::finish_subscription(sub_state& s) {
  s.closed = true;
  if (s.waiter && s.queue_msgs.empty()) {
    auto w = std::move(*s.waiter);
    s.waiter.reset();
    done(std::move(w), error_code(error::subscription_closed), message{});
  }
}

}  // namespace natsbus::detail
