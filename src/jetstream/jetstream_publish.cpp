// JetStream publish with acknowledgement: a window of in-flight publishes, each in a pooled slot of a ring
// indexed by its reply token. The hot path appends one frame to the connection's write buffer and, when the
// ack arrives, resolves the slot in place: no allocation per message once the pool is warm.
#include "jetstream/jetstream_impl.hpp"

#include <natsbus/protocol/encoder.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace natsbus {
namespace detail {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);


jetstream_impl::~jetstream_impl() {
  // States still held by futures outlive the context: they delete themselves on release.
  for (auto& s : all_) {
    if (s->has_future) {
      s->owner = nullptr;
      (void)s.release();
    }
  }
}

void jetstream_impl::publish(std::string_view subject, std::string_view payload, const publish_options& opts,
                             std::variant<ack_handler, future_handler> h) {
  auto fail_now = [&](error_code ec) {
    if (auto* a = std::get_if<ack_handler>(&h)) complete(conn_->executor(), std::move(*a), ec, pub_ack{});
    else complete(conn_->executor(), std::move(std::get<future_handler>(h)), ec, ack_future{});
  };
  if (closed_) return fail_now(error::connection_closed);
  if (auto ec = conn_->check_publish(subject, payload, opts.hdrs, {})) return fail_now(ec);
  if (in_flight_ >= opts_.max_pending || !blocked_.empty()) {
    blocked_.push_back(blocked_publish{subject, payload, &opts, std::move(h)});
    return;
  }
  error_code ec;
  ack_state* s = start(subject, payload, opts, ec);
  if (!s) return fail_now(ec);
  if (auto* a = std::get_if<ack_handler>(&h)) {
    s->waiter.emplace(std::move(*a));
    s->awaited = true;
  } else {
    s->has_future = true;
    complete(conn_->executor(), std::move(std::get<future_handler>(h)), error_code{}, ack_future(s));
  }
}

ack_state* jetstream_impl::try_start(std::string_view subject, std::string_view payload,
                                     const publish_options& opts, error_code& ec) {
  ec = {};
  if (!conn_->on_owner_thread() || in_flight_ >= opts_.max_pending || !blocked_.empty()) return nullptr;
  if (closed_) {
    ec = error::connection_closed;
    return nullptr;
  }
  if ((ec = conn_->check_publish(subject, payload, opts.hdrs, {}))) return nullptr;
  return start(subject, payload, opts, ec);
}

ack_state* jetstream_impl::start(std::string_view subject, std::string_view payload, const publish_options& opts,
                                 error_code& ec) {
  if (ack_sid_ == 0) {
    ack_prefix_ = protocol::new_inbox(conn_->options().inbox_prefix) + ".";
    ack_sid_ = conn_->subscribe_raw(ack_prefix_ + "*", this);
    if (ack_sid_ == 0) {
      ec = error::disconnected;
      return nullptr;
    }
  }
  // Headers: the caller's, then the JetStream expectations, encoded once into a reused buffer.
  protocol::publish_expectations x;
  x.msg_id = opts.msg_id;
  x.expected_stream = opts.expected_stream;
  x.expected_last_seq = opts.expected_last_seq;
  x.expected_last_msg_id = opts.expected_last_msg_id;
  x.expected_last_subject_seq = opts.expected_last_subject_seq;
  if ((ec = protocol::encode_publish_headers(opts.hdrs, x, header_scratch_))) return nullptr;

  // The ring has twice the window's slots, so one is always free.
  if (free_count_ == 0) {
    ec = error::invalid_argument;
    return nullptr;
  }
  const std::uint32_t slot = free_slots_[free_head_];
  const std::uint64_t token = slot | (std::uint64_t{slot_gen_[slot]} << slot_bits_);
  char reply[128];
  static_assert(max_inbox_prefix + 1 + protocol::nuid::length + 1 + 20 <= sizeof reply);
  std::memcpy(reply, ack_prefix_.data(), ack_prefix_.size());
  auto [end, tec] = std::to_chars(reply + ack_prefix_.size(), reply + sizeof reply, token);
  (void)tec;
  std::string_view reply_sv(reply, static_cast<std::size_t>(end - reply));
  std::size_t at = 0;
  // check_publish validated the subject; the reply is our own inbox.
  if ((ec = conn_->append_publish(subject, reply_sv, header_scratch_, payload, at)))
    return nullptr;

  free_head_ = (free_head_ + 1) & mask_;
  --free_count_;
  ack_state* s = acquire();
  s->token = token;
  s->serial = next_serial_++;
  s->in_ring = true;
  s->has_future = false;
  s->done.store(false, std::memory_order_relaxed);
  s->ec = {};
  auto timeout = opts.timeout.count() > 0 ? opts.timeout : opts_.timeout;
  s->started = std::chrono::steady_clock::now();
  s->deadline = s->started + timeout;
  s->tag = opts.tag;
  s->wbuf_gen = conn_->out().generation();
  s->frame.assign(conn_->out().since(at));
  s->resendable = !opts.msg_id.empty();
  s->retries = 0;
  s->retry_pending = false;
  s->retry_until_deadline = opts.retry_until_deadline;
  s->repair_taken = false;
  s->resend_at = s->resendable ? unacked_resend_after(s->started) : std::chrono::steady_clock::time_point::max();
  s->ahead = nullptr;
  auto*& r = recent_[recent_at_++ % prefetch_distance];
  if (r) r->ahead = s;
  r = s;
  ring_[slot] = s;
  ++in_flight_;
  in_flight_public_.store(in_flight_, std::memory_order_relaxed);
  if (in_flight_ > high_water_.load(std::memory_order_relaxed)) high_water_.store(in_flight_, std::memory_order_relaxed);
  // A lone publish (nothing else awaiting an ack) goes out at once: its publisher is about to wait for the
  // ack. With others in flight, frames gather in wbuf_ and the writer sends them together.
  if (in_flight_ == 1) conn_->write_lone();
  else conn_->wake_writer();
  if (!sweeper_running_) {
    sweeper_running_ = true;
    asio::co_spawn(conn_->executor(), sweeper(), asio::detached);
  }
  return s;
}

void jetstream_impl::on_ack(const protocol::event& ev) {
  std::string_view tok = ev.subject.substr(std::min(ev.subject.size(), ack_prefix_.size()));
  std::uint64_t token = 0;
  auto [p, tec] = std::from_chars(tok.data(), tok.data() + tok.size(), token);
  if (tec != std::errc{} || p != tok.data() + tok.size()) return;
  ack_state* s = ring_[token & mask_];
  if (!s || s->token != token) return;  // a late or second answer to a publish already resolved
  // Acks mostly come in publish order: bring in the state of a publish a few acks ahead.
  // Its first four cache lines: what every publish touches, then the ack.
  if (const auto* n = reinterpret_cast<const char*>(s->ahead))
    for (std::size_t line = 0; line < 4; ++line) __builtin_prefetch(n + 64 * line, 1);
  error_code ec;
  // Nothing was stored: the publish is sent again after publish_retry_wait, within its retry budget and deadline.
  // until_deadline: not bounded by publish_retry_attempts (a seq-less duplicate below).
  auto retry = [&](bool until_deadline = false) {
    auto now = std::chrono::steady_clock::now();
    if (s->retries >= opts_.publish_retry_attempts && !s->retry_until_deadline && !until_deadline) return false;
    if (now + opts_.publish_retry_wait >= s->deadline) return false;
    if (!until_deadline) ++s->retries;
    s->retry_pending = true;
    s->retry_at = now + opts_.publish_retry_wait;
    sweep_timer_.cancel();  // the sweeper recomputes its next wake-up
    return true;
  };
  if (ev.kind == protocol::op::hmsg && protocol::peek_status(ev.headers) == status::no_responders) {
    if (retry()) return;
    ec = error::no_responders;
  } else {
    api_error err;
    ec = protocol::decode_pub_ack(ev.payload, s->ack, err);
    // A stream leader that has just stepped down refuses the proposal: code 503 "raft: not leader", no JetStream
    // error code (the same 503 also carries storage errors, hence the exact text).
    if (!ec && err.code == 503 && err.err_code == 0 && err.description == "raft: not leader" && retry()) return;
    if (!ec && (err.err_code != 0 || err.code != 0)) {
      ec = err.err_code ? make_jetstream_error(err.err_code) : error_code(error::server_error);
      std::lock_guard lock(error_mutex_);
      last_error_ = std::move(err);
    }
    // A duplicate with no sequence: the server knows the id from a proposal still in flight, which a stream leader
    // change can lose (nats-server 2.10, seen in the leader-kill test), not from a stored message. Only a
    // sequence proves storage: the publish goes out again with its id until one comes, within its deadline.
    if (!ec && s->ack.duplicate && s->ack.seq == 0) {
      if (retry(true)) return;
      ec = error::timeout;
    }
  }
  // A repair needs time left before the deadline (a 503 retried until its deadline has none).
  if (ec && !s->repair_taken && std::chrono::steady_clock::now() + opts_.publish_retry_wait < s->deadline) {
    s->repair_taken = true;
    auto l = listener_.lock();
    if (l && l->take_repair(s, ec)) {
      // Held: no resend until finish_repair sets retry_at; the sweeper still enforces the deadline.
      s->retry_pending = true;
      s->retry_at = std::chrono::steady_clock::time_point::max();
      return;
    }
  }
  resolve(s, ec);
  unblock();
}

void jetstream_impl::finish_repair(ack_state* s, std::uint64_t serial, error_code ec, std::uint64_t tag) {
  if (!s->in_ring || s->serial != serial) return;
  if (ec) {
    s->retry_pending = false;
    resolve(s, ec);
    unblock();
    return;
  }
  s->tag = tag;
  s->retry_at = std::chrono::steady_clock::now();  // the sweeper sends it again once the connection accepts
  sweep_timer_.cancel();
}

std::string_view jetstream_impl::subject_of(const ack_state& s) noexcept {
  // "PUB <subject> <reply> ..." or "HPUB <subject> <reply> ...", as start() encoded it.
  std::string_view f(s.frame);
  auto a = f.find(' ');
  if (a == std::string_view::npos) return {};
  auto b = f.find(' ', a + 1);
  if (b == std::string_view::npos) return {};
  return f.substr(a + 1, b - a - 1);
}

std::chrono::steady_clock::time_point jetstream_impl::unacked_resend_after(std::chrono::steady_clock::time_point sent) const {
  return opts_.resend_unacked_after.count() > 0 ? sent + opts_.resend_unacked_after
                                                : std::chrono::steady_clock::time_point::max();
}

void jetstream_impl::resolve(ack_state* s, error_code ec) {
  const auto slot = static_cast<std::uint32_t>(s->token & mask_);
  ring_[slot] = nullptr;
  // The slot's next publish gets a new subject: more can come for this one even after it was answered (a
  // resend's answer; a late answer after a timeout; and in a cluster, the acks a new stream leader sends
  // again for the entries it applies after its election).
  ++slot_gen_[slot];
  free_slots_[(free_head_ + free_count_++) & mask_] = slot;
  s->in_ring = false;
  s->ec = ec;
  s->done.store(true, std::memory_order_release);
  --in_flight_;
  in_flight_public_.store(in_flight_, std::memory_order_relaxed);
  const auto elapsed = conn_->batch_now() - s->started;
  if (!ec) {
    acks_.add(1);
    ack_latency_.record(elapsed);
  } else {
    count_failure(ec);
  }
  if (s->tag)
    if (auto l = listener_.lock()) l->on_publish_outcome(s->tag, ec, elapsed);
  if (!s->awaited) {
  } else if (s->waiter) {
    auto w = std::move(*s->waiter);
    s->waiter.reset();
    complete(conn_->executor(), std::move(w), ec, ec ? pub_ack{} : s->ack);
  } else if (s->fast_waiter) {
    // The awaiting coroutine holds the future, so the state stays until it has resumed.
    if (conn_->in_batch()) {
      if (ready_.empty()) conn_->defer_to_batch_end(shared_from_this());
      ready_.push_back(s);
    } else {
      s->fast_waiter.post(conn_->executor(), ec, ec ? pub_ack{} : s->ack);
    }
  }
  if (!s->has_future) release(s);
  if (in_flight_ == 0 && blocked_.empty()) {
    for (auto& w : complete_waiters_) complete(conn_->executor(), std::move(w), error_code{});
    complete_waiters_.clear();
  }
}

void jetstream_impl::count_failure(const error_code& ec) noexcept {
  if (ec == error::timeout) timeouts_.add(1);
  else if (ec == error::no_responders) no_responders_.add(1);
  else if (ec.category() == jetstream_category()) api_errors_.add(1);
  else if (ec == error::disconnected) disconnected_.add(1);
  else if (ec == error::connection_closed) closed_failures_.add(1);
  else other_errors_.add(1);
}

jetstream_stats jetstream_impl::stats() const noexcept {
  jetstream_stats st;
  st.in_flight = in_flight_public_.load(std::memory_order_relaxed);
  st.acks = acks_.get();
  st.resends = resent_.get();
  st.timeouts = timeouts_.get();
  st.no_responders = no_responders_.get();
  st.api_errors = api_errors_.get();
  st.disconnected = disconnected_.get();
  st.closed = closed_failures_.get();
  st.other_errors = other_errors_.get();
  return st;
}

ack_state* jetstream_impl::acquire() {
  ack_state* s;
  if (free_.empty()) {
    all_.push_back(std::make_unique<ack_state>());
    s = all_.back().get();
    s->conn = conn_;
  } else {
    s = free_.back();
    free_.pop_back();
  }
  s->owner = this;
  return s;
}

ack_state* jetstream_impl::make_resolved(error_code ec, pub_ack ack) {
  ack_state* s = acquire();
  s->token = 0;
  s->tag = 0;
  s->in_ring = false;
  s->has_future = true;
  s->ec = ec;
  s->ack = std::move(ack);
  s->done.store(true, std::memory_order_release);
  return s;
}

bool jetstream_impl::resend(ack_state* s) {
  if (conn_->append_frame(s->frame)) return false;  // the reconnect buffer is full: the sweeper tries again
  s->wbuf_gen = conn_->out().generation();
  resent_.add(1);
  return true;
}

void jetstream_impl::after_batch() {
  ready_running_.swap(ready_);
  for (auto* s : ready_running_) {
    // A coroutine resumed before may have closed or failed things: a state is resumed only while it still
    // has its waiter, and the context itself is kept alive by the connection's list for this call.
    if (s->fast_waiter) s->fast_waiter.invoke(s->ec, s->ec ? pub_ack{} : s->ack);
  }
  ready_running_.clear();
}

void jetstream_impl::release(ack_state* s) {
  if (s->in_ring || s->has_future) return;
  if (s->awaited) {
    s->waiter.reset();
    s->fast_waiter.reset();
    s->awaited = false;
  }
  free_.push_back(s);
}

void jetstream_impl::unblock() {
  while (!blocked_.empty() && in_flight_ < opts_.max_pending) {
    auto b = std::move(blocked_.front());
    blocked_.pop_front();
    error_code ec;
    if (closed_) ec = error::connection_closed;
    ack_state* s = ec ? nullptr : start(b.subject, b.payload, *b.opts, ec);
    if (auto* a = std::get_if<ack_handler>(&b.handler)) {
      if (!s) complete(conn_->executor(), std::move(*a), ec, pub_ack{});
      else s->waiter.emplace(std::move(*a)), s->awaited = true;
    } else {
      auto& f = std::get<future_handler>(b.handler);
      if (!s) {
        complete(conn_->executor(), std::move(f), ec, ack_future{});
      } else {
        s->has_future = true;
        complete(conn_->executor(), std::move(f), error_code{}, ack_future(s));
      }
    }
  }
}

void jetstream_impl::fail_all(error_code ec) {
  for (auto*& slot : ring_)
    if (slot) resolve(slot, ec);
  closed_ = closed_ || ec == error::connection_closed;
  auto blocked = std::move(blocked_);
  blocked_.clear();
  for (auto& b : blocked) {
    if (auto* a = std::get_if<ack_handler>(&b.handler)) complete(conn_->executor(), std::move(*a), ec, pub_ack{});
    else complete(conn_->executor(), std::move(std::get<future_handler>(b.handler)), ec, ack_future{});
  }
  for (auto& w : complete_waiters_) complete(conn_->executor(), std::move(w), error_code{});
  complete_waiters_.clear();
  ack_sid_ = 0;
  sweep_timer_.cancel();
}

void jetstream_impl::on_disconnect() {
  bool any = false;
  for (auto* slot : ring_) {
    if (slot && !slot->resendable) {
      resolve(slot, error::disconnected);
      any = true;
    }
  }
  if (any) unblock();
}

void jetstream_impl::on_reconnect() {
  // Only frames that had left: those still in the write buffer go out with it. Oldest first.
  std::vector<ack_state*> left;
  for (auto* slot : ring_)
    if (slot && slot->resendable && !slot->retry_pending && slot->wbuf_gen != conn_->out().generation()) left.push_back(slot);
  std::sort(left.begin(), left.end(), [](const ack_state* a, const ack_state* b) { return a->serial < b->serial; });
  auto now = std::chrono::steady_clock::now();
  for (auto* s : left) {
    resend(s);
    s->resend_at = unacked_resend_after(now);
  }
}

void jetstream_impl::wait_complete(asio::any_completion_handler<void(error_code)> h) {
  if (in_flight_ == 0 && blocked_.empty()) return complete(conn_->executor(), std::move(h), error_code{});
  complete_waiters_.push_back(std::move(h));
}

// One timer for every deadline: it sleeps until the earliest one, then resolves whatever has expired.
asio::awaitable<void> jetstream_impl::sweeper() {
  auto self = shared_from_this();
  while (in_flight_ > 0 && !closed_) {
    auto next = std::chrono::steady_clock::time_point::max();
    for (auto* s : ring_) {
      if (!s) continue;
      if (s->deadline < next) next = s->deadline;
      if (s->retry_pending && s->retry_at < next) next = s->retry_at;
      if (!s->retry_pending && s->resend_at < next) next = s->resend_at;
    }
    sweep_timer_.expires_at(next);
    co_await sweep_timer_.async_wait(use_ec);
    auto now = std::chrono::steady_clock::now();
    bool any = false, resent = false;
    for (auto* s : ring_) {
      if (!s) continue;
      if (s->deadline <= now) {
        resolve(s, error::timeout);
        any = true;
      } else if (s->retry_pending && s->retry_at <= now && conn_->accepting()) {
        if (resend(s)) {
          s->retry_pending = false;
          if (s->resendable) s->resend_at = unacked_resend_after(now);
          resent = true;
        } else {
          s->retry_at = now + opts_.publish_retry_wait;
        }
      } else if (!s->retry_pending && s->resend_at <= now) {
        // No ack for a while: send it again, unless it has not left yet (it is on its way) or the connection is
        // down (the reconnect sends it).
        if (conn_->writable() && s->wbuf_gen != conn_->out().generation()) resent = resend(s) || resent;
        s->resend_at = unacked_resend_after(now);
      }
    }
    if (resent) conn_->wake_writer();
    if (any) unblock();
  }
  sweeper_running_ = false;
}

}  // namespace detail

}  // namespace natsbus
