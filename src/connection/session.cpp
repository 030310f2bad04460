// The connection's session: handshake, then reader || writer || keepalive until the connection is lost.
#include "connection/connection_impl.hpp"

#include "auth/credentials.hpp"

#include <natsbus/protocol/encoder.hpp>
#include <natsbus/protocol/headers.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <variant>

namespace natsbus::detail {

using namespace asio::experimental::awaitable_operators;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);


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
  auto [ec, n] = co_await transport_.async_read_some(asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_), use_ec);
  if (ec) co_return transport_.kind() == transport_kind::tcp ? ec : transport_.explain(ec);
  rend_ += n;
  in_bytes_.add(n);
  co_return error_code{};
}

transport_spec connection_impl::spec_for(const protocol::server_address& addr) const {
  transport_spec spec;
  spec.host = addr.host;
  spec.port = addr.port;
  spec.websocket = addr.scheme == "ws" || addr.scheme == "wss";
  spec.tls_first = addr.scheme == "wss" || (!spec.websocket && opts_.tls.handshake_first);
  spec.tls = &opts_.tls;
  spec.tls_name = !opts_.tls.server_name.empty() ? opts_.tls.server_name
                  : !addr.tls_name.empty()       ? addr.tls_name
                                                 : addr.host;
  spec.ws = &opts_.websocket;
  spec.ws_target = addr.path;
  spec.close_timeout = opts_.connect_timeout;
  return spec;
}

asio::awaitable<error_code> connection_impl::try_server(std::size_t index, std::string& error_text) {
  // A copy: the INFO of the handshake may add discovered servers to the pool, which moves its entries.
  const protocol::server_address addr = core_.pool[index].addr;
  const transport_spec spec = spec_for(addr);
  // One deadline for the resolve, the TCP connect, TLS, the WebSocket upgrade, INFO, CONNECT and the first PONG.
  const auto deadline = std::chrono::steady_clock::now() + opts_.connect_timeout;
  handshake_phase_ = phase::transport;
  error_code ec = co_await transport_.connect(spec, deadline);
  if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
  if (!ec) {
    // At the deadline the transport is closed, not only the handshake cancelled: a secure stream in the middle of
    // a closing handshake completes its read only when the socket goes. A handshake that finished first keeps its
    // transport: the timer may have expired in the same turn, its completion already queued (cancelling it then
    // changes nothing), and closing would leave the new session on a closed socket (bad_descriptor at its first
    // read).
    bool finished = false;
    auto shake = [&]() -> asio::awaitable<error_code> {
      auto e = co_await handshake(addr, spec, deadline);
      finished = true;
      co_return e;
    };
    auto expire = [this, deadline, &finished]() -> asio::awaitable<void> {
      asio::steady_timer timer(strand_);
      timer.expires_at(deadline);
      auto [tec] = co_await timer.async_wait(use_ec);
      if (!tec && !finished) transport_.close();
    };
    auto h = co_await (shake() || expire());
    if (h.index() == 0) ec = std::get<0>(h);
    else ec = handshake_phase_ == phase::tls ? error::tls_handshake_timeout : error::connect_timeout;
    if (state_ == conn_state::closed) ec = error::connection_closed;
  }
  if (ec) {
    {
      std::lock_guard lock(cold_mutex_);
      if (!transport_.detail().empty()) last_error_ = transport_.detail();
      error_text = last_error_;
    }
    if (transport_.detail().empty()) log_->warn("natsbus: connecting to {} failed: {}", addr.redacted, ec.message());
    else log_->warn("natsbus: connecting to {} failed: {} ({})", addr.redacted, ec.message(), transport_.detail());
    transport_.close();
    co_return ec;
  }
  log_->info("natsbus: connected to {}{}", addr.redacted,
             transport_.kind() == transport_kind::tls                ? " (TLS)"
             : transport_.kind() == transport_kind::websocket        ? " (WebSocket)"
             : transport_.kind() == transport_kind::secure_websocket ? " (WebSocket over TLS)"
                                                                     : "");
  co_return error_code{};
}

asio::awaitable<error_code> connection_impl::handshake(const protocol::server_address& addr, const transport_spec& spec,
                                                       std::chrono::steady_clock::time_point deadline) {
  parser_.reset();
  parser_.set_max_payload(1024 * 1024);
  rbegin_ = rend_ = 0;
  core_.pings.reset();
  handshake_phase_ = phase::info;

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
  // TLS after INFO, never a downgrade. Over WebSocket the INFO's TLS flags describe the server's main port (2.9
  // copies them), so they are not acted on there: wss:// is TLS already, ws:// is what the user asked for.
  if (!spec.websocket && !spec.tls_first) {
    const bool wanted = addr.scheme == "tls" || opts_.tls.wanted();
    if (wanted && !info.tls_required && !info.tls_available) {
      std::lock_guard lock(cold_mutex_);
      last_error_ = addr.redacted + " offers no TLS (its INFO has neither tls_required nor tls_available)";
      co_return error::secure_connection_not_available;
    }
    if (wanted || info.tls_required) {
      // With no TLS options, a server that requires TLS is verified against the system's trust store.
      handshake_phase_ = phase::tls;
      if (auto e = co_await transport_.start_tls(spec, deadline)) co_return e;
    }
  }
  handshake_phase_ = phase::connect;
  if (!info.headers) co_return error::not_supported;

  protocol::connect_fields f;
  f.verbose = opts_.verbose;
  f.pedantic = opts_.pedantic;
  f.tls_required = transport_.secure();
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
  {
    // NKey or JWT: files are read and callbacks asked on every connect; a local failure sends nothing.
    std::string problem;
    if (auto e = sign_in(opts_, info.nonce, f, problem)) {
      log_->error("natsbus: credentials: {}", problem);
      std::lock_guard lock(cold_mutex_);
      last_error_ = std::move(problem);
      co_return e;
    }
  }
  std::string out;
  protocol::encode_connect(out, f);
  protocol::encode_ping(out);
  const auto ping_sent = std::chrono::steady_clock::now();
  auto [wec, wn] = co_await transport_.async_write(asio::buffer(out), use_ec);
  wipe(out);  // it may hold a password, a token or a JWT
  // Under TLS 1.3 a server refuses the client's certificate only after the handshake: with an alert that the read
  // of the PONG turns into tls_client_certificate_rejected, or, when the CONNECT reaches a socket the server has
  // already closed, with a bare reset that loses the alert. A server that demands client certificates (tls_verify)
  // and drops the connection before any -ERR has refused the certificate.
  auto refused = [&](error_code e) -> error_code {
    if (!transport_.secure() || !info.tls_verify) return e;
    if (e != asio::error::connection_reset && e != asio::error::eof && e != asio::error::broken_pipe &&
        e != asio::ssl::error::stream_truncated)
      return e;
    std::lock_guard lock(cold_mutex_);
    last_error_ = addr.redacted + " requires a client certificate (tls_verify) and closed the connection after the "
                  "TLS handshake (" + e.message() + ")";
    return error::tls_client_certificate_rejected;
  };
  if (wec) co_return refused(transport_.explain(wec));
  out_bytes_.add(wn);

  // Then PONG, or -ERR.
  for (;;) {
    error_code ec;
    auto ev = parser_.next({rbuf_.data() + rbegin_, rend_ - rbegin_}, ec);
    if (ec) co_return ec;
    if (ev) {
      rbegin_ += parser_.consumed();
      switch (ev->kind) {
        case protocol::op::pong:
          note_rtt(ping_sent);
          co_return error_code{};
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
          auto [pec, pn] = co_await transport_.async_write(asio::buffer(pong), use_ec);
          if (pec) co_return transport_.explain(pec);
          break;
        }
        default: co_return error::protocol_violation;
      }
      continue;
    }
    if (auto e = co_await read_more()) co_return refused(e);
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
    log_->warn("natsbus: connection to {} lost: {}", core_.pool.current_name(), ec.message());
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
  set_state(conn_state::reconnecting);
  writer_parked_ = false;  // no direct writes until the next session's writer waits
  transport_.close();
  // The batch that was on the wire may have arrived in part: it is dropped. The pending frames never left; they
  // become the reconnect buffer.
  core_.out.lost();
  core_.out.set_bound(opts_.reconnect_buffer_size);
  // Flushes whose PING left with the old session can never be answered; those still pending will be.
  std::vector<void_handler> flushes;
  core_.pings.lost(core_.out.pings_pending(), flushes);
  for (auto& h : flushes) done(std::move(h), error_code(error::disconnected));
  if (opts_.fail_requests_on_disconnect) {
    std::vector<request_mux::completion> cs;
    core_.requests.fail_all(error::disconnected, cs);
    complete_all(cs);
  }
  // Publishers waiting for the write buffer: their frames are queued, and the reconnect buffer bounds the rest. A
  // server that stopped reading is another matter: they learn that its writes timed out.
  const error_code blocked_ec = reason == error::write_timeout ? reason : error_code{};
  for (auto& h : blocked_publishers_) done(std::move(h), blocked_ec);
  blocked_publishers_.clear();
  core_.pool.lost(std::chrono::steady_clock::now());
  notify([](lifecycle_listener& l) { l.on_disconnect(); });
  emit(event_kind::disconnected, reason);
}

void connection_impl::finish_reconnect() {
  // Subscriptions first, so that buffered publishes and resent JetStream publishes find them in place; then what had
  // left with the old session and is sent again (JetStream publishes by message id); then the frames that never
  // left: publish order is kept, and nothing goes twice.
  const std::string held = write_buffer::publishes_and_pings(core_.out.set_aside());
  if (core_.inbox_sid != 0) (void)core_.out.append_sub(inbox_prefix() + "*", {}, core_.inbox_sid);
  std::string replay;
  core_.subs.replay(replay);
  (void)core_.out.append_frame(replay);
  core_.out.clear_bound();
  set_state(conn_state::connected);
  // With retry_on_failed_connect, the first session is a connect, not a reconnect.
  const bool first = !ever_connected_;
  ever_connected_ = true;
  if (!first) reconnects_.add(1);
  notify([](lifecycle_listener& l) { l.on_reconnect(); });
  core_.out.put_back(held);
  wake_writer();
  emit(first ? event_kind::connected : event_kind::reconnected);
}

asio::awaitable<error_code> connection_impl::reconnect_loop() {
  auto self = shared_from_this();
  error_code last = error::no_servers;
  for (;;) {
    if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
    auto next = core_.pool.next_attempt();
    if (!next) co_return last;
    if (next->due > std::chrono::steady_clock::now()) {
      reconnect_timer_.expires_at(next->due);
      auto [tec] = co_await reconnect_timer_.async_wait(use_ec);
      (void)tec;
      if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
    }
    const std::size_t idx = next->index;
    core_.pool.attempting(idx, std::chrono::steady_clock::now());
    std::string text;
    auto ec = co_await try_server(idx, text);
    if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
    if (!ec) {
      core_.pool.connected(idx);
      log_->info("natsbus: reconnected to {}", core_.pool[idx].addr.redacted);
      finish_reconnect();
      co_return error_code{};
    }
    last = ec;
    const std::string name = core_.pool[idx].addr.redacted;
    const int attempts = core_.pool[idx].attempts + 1;
    if (core_.pool.failed(idx, ec))
      log_->warn("natsbus: removing {} from the server pool after {} failed attempts ({})", name, attempts,
                 ec.message());
  }
}

asio::awaitable<error_code> connection_impl::reader() {
  for (;;) {
    // Drain every complete frame before reading again.
    in_batch_ = true;
    batch_at_ = {};
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
    while (core_.out.idle()) {
      release_blocked_publishers();  // a direct write may have drained what they waited on
      // Parked: the transport is free, and publishers may write to it directly (write_now) until this resumes.
      writer_parked_ = true;
      wake_sent_ = false;
      direct_write_at_ = early_write_bytes;
      writer_wake_.expires_at(asio::steady_timer::time_point::max());
      co_await writer_wake_.async_wait(use_ec);
      writer_parked_ = false;
      if (state_ == conn_state::closed) co_return error_code(error::connection_closed);
      // A cancelled wait is the wake-up; the coroutine's own cancellation shows up as the transport closing.
      auto cs = (co_await asio::this_coro::cancellation_state).cancelled();
      if (cs != asio::cancellation_type::none) co_return error_code(asio::error::operation_aborted);
    }
    // The batch: the rest of an early write (see wake_writer) first, else everything pending.
    std::string_view batch = core_.out.take();
    // Try the transport at once: when the kernel takes everything (the common case) the write costs one system call
    // and no trip through the scheduler. Only a partial write waits, and no longer than the write deadline.
    error_code ec;
    std::size_t n = transport_.can_try_write() ? transport_.try_write(asio::buffer(batch), ec) : 0;
    if (ec) co_return ec;
    if (n < batch.size()) {
      write_timer_.expires_after(opts_.write_deadline);
      auto r = co_await (transport_.async_write(asio::buffer(batch.substr(n)), use_ec) ||
                         write_timer_.async_wait(use_ec));
      if (r.index() == 1) {
        log_->warn("natsbus: {} took no bytes for {} ms: write timeout", core_.pool.current_name(),
                   opts_.write_deadline.count());
        co_return error_code(error::write_timeout);
      }
      auto [wec, m] = std::get<0>(r);
      if (wec) co_return transport_.explain(wec);
      n += m;
    }
    out_bytes_.add(n);
    core_.out.wrote(n);
    release_blocked_publishers();
  }
}

asio::awaitable<error_code> connection_impl::keepalive() {
  for (;;) {
    ping_timer_.expires_after(opts_.ping_interval);
    auto [ec] = co_await ping_timer_.async_wait(use_ec);
    if (ec) co_return ec;
    if (!core_.pings.keepalive(std::chrono::steady_clock::now())) {
      log_->warn("natsbus: stale connection: {} PINGs unanswered", core_.pings.outstanding());
      co_return error_code(error::stale_connection);
    }
    core_.out.append_ping();
    wake_writer();
  }
}

void connection_impl::wake_writer() {
  if (!writer_parked_) return;
  // A publisher that queues much without yielding (a burst from one coroutine) gets its bytes onto the wire early,
  // straight from here, so the server works while the publisher goes on; the writer takes any rest. After a direct
  // write the transport did not take in full, the next try waits for another early_write_bytes: a full socket is
  // not asked again on every publish.
  if (core_.out.size() >= direct_write_at_) {
    if (write_now()) {
      direct_write_at_ = early_write_bytes;
      return;
    }
    direct_write_at_ = core_.out.size() + early_write_bytes;
  }
  unpark_writer();
}

void connection_impl::unpark_writer() {
  if (wake_sent_) return;
  wake_sent_ = true;
  writer_wake_.cancel();
}

bool connection_impl::write_now() {
  if (!writer_parked_ || core_.out.idle()) return false;
  if (state_.load(std::memory_order_relaxed) == conn_state::connected && transport_.can_try_write()) {
    error_code ec;
    // The rest of an earlier direct write goes first (the writer has not run since), then everything pending.
    for (int round = 0; round < 2 && !ec && !core_.out.idle(); ++round) {
      std::string_view batch = core_.out.direct();
      std::size_t n = transport_.try_write(asio::buffer(batch), ec);
      if (ec || n == 0) break;
      out_bytes_.add(n);
      core_.out.wrote_direct(n);
      if (!core_.out.wire().empty()) break;  // the socket is full
    }
    if (core_.out.idle()) {
      release_blocked_publishers();
      return true;
    }
  }
  // A full socket, an error or no session: the writer takes over (it reports errors and waits on the reactor).
  unpark_writer();
  return false;
}

void connection_impl::release_blocked_publishers() {
  while (!blocked_publishers_.empty() && core_.out.size() <= opts_.write_buffer_limit) {
    done(std::move(blocked_publishers_.front()), error_code{});
    blocked_publishers_.pop_front();
  }
}

error_code connection_impl::handle(const protocol::event& ev) {
  switch (ev.kind) {
    case protocol::op::msg:
    case protocol::op::hmsg: {
      in_msgs_.add(1);
      if (ev.sid == core_.inbox_sid && ev.sid != 0) {
        on_response(ev);
        return {};
      }
      auto* s = core_.subs.find(ev.sid);
      if (!s) return {};
      if (s->raw) s->raw->on_frame(ev);
      else deliver(core_.subs.get(ev.sid), ev);
      return {};
    }
    case protocol::op::ping:
      core_.out.append_pong();
      wake_writer();
      return {};
    case protocol::op::pong: {
      auto w = core_.pings.pong();
      note_rtt(core_.pings.answered_sent());
      if (w) done(std::move(*w), error_code{});
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
  // The servers of the first INFO are the seed's peers, known from the start: only later ones are discoveries.
  const bool first = !seen_info_;
  seen_info_ = true;
  if (core_.pool.add_discovered(urls) > 0 && !first) {
    log_->info("natsbus: discovered servers: {} in the pool", core_.pool.size());
    emit(event_kind::discovered_servers);
  }
  if (!initial) {
    emit(event_kind::server_info);
    if (ldm) {
      log_->warn("natsbus: {} entered lame duck mode; moving to another server", core_.pool.current_name());
      emit(event_kind::lame_duck);
      core_.pool.lame_duck();
      // Leave now: the session ends, and the reconnect loop prefers any other server.
      if (opts_.allow_reconnect && core_.pool.size() > 1) return error::lame_duck_mode;
    }
  }
  return {};
}

error_code connection_impl::handle_err(std::string_view text) {
  {
    std::lock_guard lock(cold_mutex_);
    last_error_ = std::string(text);
  }
  const error_code ec = protocol::classify_server_error(text);
  // Permission violations leave the connection up; every other -ERR is followed by the server closing it.
  if (ec == error::permissions_violation) {
    log_->warn("natsbus: server: {}", text);
    emit(event_kind::error, ec, std::string(text));
    return {};
  }
  log_->error("natsbus: server: {}", text);
  emit(event_kind::error, ec, std::string(text));
  return ec;
}

void connection_impl::deliver(const std::shared_ptr<sub_state>& s, const protocol::event& ev) {
  auto d = core_.subs.deliver(s, ev);
  if (d.waiter) done(std::move(*d.waiter), error_code{}, std::move(d.msg));
  if (d.bad) emit(event_kind::error, d.bad, "bad header block in message on " + std::string(ev.subject), s->sid);
  if (d.dropped_first) {
    log_->warn("natsbus: slow consumer on '{}' (sid {})", s->subject, s->sid);
    emit(event_kind::slow_consumer, error::slow_consumer, s->subject, s->sid);
  }
  if (d.dropped) dropped_msgs_.add(1);
  if (d.closed_waiter) done(std::move(*d.closed_waiter), error_code(error::subscription_closed), message{});
}

}  // namespace natsbus::detail
