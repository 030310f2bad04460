// The bus's durable subscriptions: a pull consume per (topic, group), a dispatcher that hands events to handlers
// with keyed order and bounded concurrency, in-progress acks for what is held, timeouts, retries and dead letters.
// Everything here runs on the connection's executor.
#include "bus/bus_subscriber.hpp"

#include "bus/event_bus_impl.hpp"

#include <natsbus/protocol/consumer.hpp>
#include <natsbus/protocol/headers.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace natsbus::detail {

namespace {
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

bool valid_group(std::string_view g) {
  if (g.empty() || g.size() > 64) return false;
  for (char c : g)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}
}  // namespace

std::string bus_subscriber::consumer_name_for(std::string_view topic, std::string_view group) {
  // The group has no '_': the first "__" ends it, so two (topic, group) pairs never share a name.
  return std::string(group) + "__" + event_bus::stream_name_for(topic);
}

error_code bus_subscriber::check_options(const subscribe_options& o, std::string& why) {
  if (!valid_group(o.group)) {
    why = "subscriber group '" + o.group + "' must be 1-64 letters, digits or '-'";
    return error::invalid_argument;
  }
  if (o.ack_wait < std::chrono::milliseconds(100)) return why = "ack_wait must be at least 100 ms", error::invalid_argument;
  if (o.max_deliver < 1) return why = "max_deliver must be at least 1", error::invalid_argument;
  if (o.max_concurrency < 1) return why = "max_concurrency must be at least 1", error::invalid_argument;
  if (o.max_ack_pending == 0 || o.max_ack_pending < -1)
    return why = "max_ack_pending must be positive (or -1)", error::invalid_argument;
  for (auto d : o.backoff)
    if (d.count() < 0) return why = "backoff delays cannot be negative", error::invalid_argument;
  if (o.handler_timeout.count() < 0) return why = "handler_timeout cannot be negative", error::invalid_argument;
  return {};
}

bus_subscriber::bus_subscriber(std::shared_ptr<event_bus_impl> bus, std::string topic, std::string stream,
                               subscribe_options o, event_handler_fn fn)
    : bus_(std::move(bus)),
      topic_(std::move(topic)),
      stream_(std::move(stream)),
      consumer_(consumer_name_for(topic_, o.group)),
      opts_(std::move(o)),
      fn_(std::move(fn)),
      keep_timer_(bus_->cimpl_->executor()),
      room_(bus_->cimpl_->executor()) {
  if (opts_.handler_timeout.count() == 0) opts_.handler_timeout = opts_.ack_wait * 2 / 3;
  // A pull of a message or two per handler would pay a round trip per event: 512 ahead by default (each kept
  // alive by in-progress acks while it waits), within the consumer's max_ack_pending. A smaller window leaves
  // the server idle while its last pull's messages cross to the handlers and the next pull crosses back
  // (docs/performance.md: 128 ran at 0.86x the raw consume, 512 at 0.98x).
  if (opts_.prefetch == 0) {
    opts_.prefetch = std::max<std::size_t>(512, 4 * opts_.max_concurrency);
    if (opts_.max_ack_pending > 0)
      opts_.prefetch = std::min<std::size_t>(opts_.prefetch, static_cast<std::size_t>(opts_.max_ack_pending));
  }
  if (opts_.dead_letter_topic.empty()) opts_.dead_letter_topic = topic_ + ".dlq";
  keep_every_ = std::max(std::chrono::milliseconds(10), opts_.ack_wait / 3);
}

consumer_config bus_subscriber::wanted_consumer() const {
  consumer_config cc;
  cc.durable_name = consumer_;
  cc.ack = ack_policy::explicit_;
  cc.ack_wait = opts_.ack_wait;
  // The bus counts deliveries and dead-letters at max_deliver itself: a server that stopped redelivering would
  // leave the event unacked and unreported.
  cc.max_deliver = -1;
  cc.max_ack_pending = opts_.max_ack_pending;
  cc.deliver = opts_.deliver;
  cc.filter_subject = topic_;
  return cc;
}

namespace {
std::vector<std::string> consumer_differences(const consumer_config& have, const consumer_config& want) {
  std::vector<std::string> d;
  auto ms = [](std::chrono::nanoseconds n) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(n).count()) + " ms";
  };
  if (have.ack != want.ack) d.push_back("ack_policy differs");
  if (have.ack_wait != want.ack_wait) d.push_back("ack_wait: server " + ms(have.ack_wait) + ", wanted " + ms(want.ack_wait));
  if (have.max_ack_pending != want.max_ack_pending)
    d.push_back("max_ack_pending: server " + std::to_string(have.max_ack_pending) + ", wanted " +
                std::to_string(want.max_ack_pending));
  if (have.max_deliver != want.max_deliver)
    d.push_back("max_deliver: server " + std::to_string(have.max_deliver) + ", wanted " + std::to_string(want.max_deliver));
  if (have.filter_subject != want.filter_subject)
    d.push_back("filter_subject: server '" + have.filter_subject + "', wanted '" + want.filter_subject + "'");
  if (have.deliver != want.deliver) d.push_back("deliver_policy differs");
  return d;
}
}  // namespace

asio::awaitable<error_code> bus_subscriber::ensure_consumer(topic_strategy strategy) {
  if (strategy == topic_strategy::skip) co_return error_code{};
  auto& js = bus_->js_;
  const auto want = wanted_consumer();
  const std::string key = stream_ + '\n' + consumer_;
  if (auto it = bus_->consumers_.find(key); it != bus_->consumers_.end() && it->second == want) co_return error_code{};
  bus_->consumer_lookups_.add(1);
  auto [iec, info] = co_await bus_->consumer_info_of(stream_, consumer_);
  const bool missing = iec && iec.category() == jetstream_category() && iec.value() == jetstream_errc::consumer_not_found;
  if (iec && !missing) {
    set_error("consumer info " + stream_ + " > " + consumer_ + ": " + iec.message());
    co_return iec;
  }
  if (missing) {
    if (strategy == topic_strategy::validate_only) {
      set_error("consumer " + stream_ + " > " + consumer_ + " does not exist (validate_only)");
      co_return error_code(error::consumer_not_found_for_subscriber);
    }
    auto [cec, ci] = co_await bus_->put_consumer(stream_, want, false);
    if (cec) set_error("create consumer " + stream_ + " > " + consumer_ + ": " + cec.message() + " (" +
                       js.last_api_error().description + ")");
    else bus_->consumers_[key] = want;
    co_return cec;
  }
  auto diff = consumer_differences(info.config, want);
  if (diff.empty()) bus_->consumers_[key] = want;
  if (diff.empty() || strategy == topic_strategy::create_only) co_return error_code{};
  if (strategy == topic_strategy::validate_only) {
    std::string text;
    for (auto& d : diff) text += (text.empty() ? "" : "; ") + d;
    set_error("consumer " + stream_ + " > " + consumer_ + " differs: " + text);
    co_return error_code(error::consumer_config_mismatch);
  }
  auto [uec, ui] = co_await bus_->put_consumer(stream_, want, true);
  if (uec) set_error("update consumer " + stream_ + " > " + consumer_ + ": " + uec.message() + " (" +
                     js.last_api_error().description + ")");
  else bus_->consumers_[key] = want;
  co_return uec;
}

error_code bus_subscriber::start_consuming() {
  if (bus_->mem_) {
    error_code ec;
    if (!(mc_ = bus_->mem_->consume(stream_, consumer_, ec))) return ec;
    return started();
  }
  pc_.emplace(bus_->js_, stream_, consumer_);
  consume_options co;
  co.max_messages = opts_.prefetch;
  co.expires = std::chrono::seconds(30);
  // Two silent heartbeat intervals while a pull waits make the consume ask whether the consumer still exists: a
  // 2.10 server drops the pulls of a deleted consumer without a status, so this bounds how long that goes unseen.
  co.heartbeat = std::chrono::seconds(5);
  co.keep_alive = keep_every_;  // what waits in the pull buffer is kept too
  if (auto ec = pc_->consume(co)) return ec;
  return started();
}

error_code bus_subscriber::started() {
  bus_->cimpl_->log()->info("natsbus: subscriber {} ({}): consuming {} > {}, {} handler(s), prefetch {}", topic_,
                            opts_.group, stream_, consumer_, opts_.max_concurrency, opts_.prefetch);
  running_ = true;
  consuming_.store(true, std::memory_order_relaxed);
  bus_->subscribers_.push_back(weak_from_this());
  bus_->note_subscriber(shared_from_this());
  asio::co_spawn(bus_->cimpl_->executor(), dispatch(shared_from_this()), asio::detached);
  for (std::size_t i = 0; i < opts_.max_concurrency; ++i) spawn_worker();
  arm_keep_alive();
  return {};
}

const asio::any_io_executor& bus_subscriber::executor() const noexcept { return bus_->cimpl_->executor(); }

void bus_subscriber::stop() {
  if (!running_) return;
  running_ = false;
  consuming_.store(false, std::memory_order_relaxed);
  keep_timer_.cancel();
  room_.cancel();
  for (auto& w : idle_) w->wake.cancel();
  idle_.clear();
  if (pc_) pc_->stop();
  if (mc_) mc_->stop();
}

subscriber_stats bus_subscriber::stats() const {
  subscriber_stats s;
  s.received = stats_.received.get();
  s.redelivered = stats_.redelivered.get();
  s.duplicates = stats_.duplicates.get();
  s.handled = stats_.handled.get();
  s.retried = stats_.retried.get();
  s.dead_lettered = stats_.dead_lettered.get();
  s.timeouts = stats_.timeouts.get();
  s.in_progress_acks = stats_.in_progress_acks.get();
  s.consuming = consuming_.load(std::memory_order_relaxed);
  const auto oldest = oldest_ns_.load(std::memory_order_relaxed);
  if (oldest != 0)
    s.oldest_unacked_age = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now().time_since_epoch() - std::chrono::nanoseconds(oldest));
  s.running = busy_seen_.load(std::memory_order_relaxed);
  const auto held = held_seen_.load(std::memory_order_relaxed);
  s.waiting = held >= s.running ? held - s.running : 0;
  s.lag = pending_seen_.load(std::memory_order_relaxed) + held;
  return s;
}

void bus_subscriber::set_error(std::string text) {
  bus_->cimpl_->log()->warn("natsbus: subscriber {} ({}): {}", topic_, opts_.group, text);
  std::lock_guard lock(error_mutex_);
  last_error_ = std::move(text);
}

std::string bus_subscriber::last_error() const {
  std::lock_guard lock(error_mutex_);
  return last_error_;
}

asio::awaitable<std::tuple<error_code, std::shared_ptr<bus_subscriber>>> event_bus_impl::prepare_subscriber(
    std::string topic, subscribe_options opts, event_handler_fn fn, topic_strategy strategy) {
  std::tuple<error_code, std::shared_ptr<bus_subscriber>> r;
  auto& ec = std::get<0>(r);
  std::string why;
  if (!protocol::is_valid_publish_subject(topic)) why = "topic '" + topic + "' is not a subject", ec = error::invalid_subject;
  else ec = bus_subscriber::check_options(opts, why);
  if (ec) {
    set_error("subscribe " + topic + ": " + why);
    co_return r;
  }
  auto* entry = co_await resolved(topic, ec);
  if (ec) co_return r;
  if (!entry->persistent) {
    set_error("subscribe " + topic + ": the topic is ephemeral; a durable subscription needs a stream");
    ec = error::stream_not_found_for_topic;
    co_return r;
  }
  std::string stream = entry->stream;
  // The dead-letter topic is provisioned now, so a stream that cannot be made is said at once.
  std::string dlq = opts.dead_letter_topic.empty() ? topic + ".dlq" : opts.dead_letter_topic;
  std::string dlq_arg = dlq;  // named, then moved: GCC 12 mishandles temporaries inside co_await
  if ((ec = co_await ensure_topic(std::move(dlq_arg)))) {
    set_error("subscribe " + topic + ": dead-letter topic " + dlq + ": " + last_error_text());
    co_return r;
  }
  auto sub = std::make_shared<bus_subscriber>(shared_from_this(), std::move(topic), std::move(stream),
                                              std::move(opts), std::move(fn));
  if ((ec = co_await sub->ensure_consumer(strategy))) {
    set_error("subscribe " + sub->topic() + ": " + sub->last_error());
    co_return r;
  }
  std::get<1>(r) = std::move(sub);
  co_return r;
}

// ---- the dispatcher ----

asio::awaitable<void> bus_subscriber::dispatch(std::shared_ptr<bus_subscriber> self) {
  (void)self;  // held: the subscriber lives while it dispatches
  while (running_) {
    if (held_ >= opts_.prefetch + opts_.max_concurrency) {
      // Backpressure: the consume's own buffer holds the rest (kept alive there) until handlers have finished
      // a quarter of the prefetch (see finish), so the dispatcher wakes once per run of events, not per event.
      room_waiting_ = true;
      room_.expires_at(asio::steady_timer::time_point::max());
      co_await room_.async_wait(use_ec);
      room_waiting_ = false;
      continue;
    }
    error_code ec;
    // When this run of deliveries arrived: one clock read for all of them (the first and what was buffered with
    // it).
    std::chrono::steady_clock::time_point now;
    if (mc_) {
      auto [mec, d] = co_await mc_->next();
      if (!running_) break;
      now = std::chrono::steady_clock::now();
      if (!(ec = mec)) take({d->subject, d->reply, d->header_block, d->payload}, d->info, now);
    } else {
      auto [pec, m] = co_await pc_->next(use_ec);
      if (!running_) break;
      now = std::chrono::steady_clock::now();
      if (!(ec = pec)) take(*m, now);
    }
    if (ec) {
      if (ec == error::subscription_closed || ec == error::connection_closed) break;
      set_error("consume: " + ec.message());
      // The consumer is gone (deleted, or replaced by a push consumer): the subscription ends, and health()
      // says so with this error, rather than waiting for messages that cannot come.
      if (ec == error::consumer_deleted || ec == error::consumer_is_push_based) {
        bus_->consumers_.erase(stream_ + '\n' + consumer_);  // the next subscribe asks the server again
        break;
      }
      continue;  // a missed heartbeat or a refused pull: the consume goes on
    }
    // What is already buffered is taken now, without a trip through the scheduler per event.
    while (running_ && held_ < opts_.prefetch + opts_.max_concurrency) {
      if (mc_) {
        const memory_delivery* d = mc_->try_next();
        if (!d) break;
        take({d->subject, d->reply, d->header_block, d->payload}, d->info, now);
      } else {
        js_message* more = pc_->try_next();
        if (!more) break;
        take(*more, now);
      }
    }
  }
  bus_->cimpl_->log()->info("natsbus: subscriber {} ({}): stopped", topic_, opts_.group);
  // The consume ended (stopped, or the connection closed): no timer of this subscription stays armed, so an
  // io_context with nothing else to do returns from run().
  running_ = false;
  consuming_.store(false, std::memory_order_relaxed);
  keep_timer_.cancel();
  for (auto& w : idle_) w->wake.cancel();
  idle_.clear();
  co_return;
}

void bus_subscriber::take(js_message& m, std::chrono::steady_clock::time_point now) {
  if (auto ec = m.info(info_)) {
    stats_.received.add(1);
    set_error("a message with a bad ack subject: " + ec.message());
    return;
  }
  take({m.subject(), m.reply(), m.header_block(), m.payload()}, info_, now);
}

void bus_subscriber::take(const incoming& m, const message_info& mi, std::chrono::steady_clock::time_point now) {
  stats_.received.add(1);
  if (bus_->cimpl_->log()->should_log(spdlog::level::trace))
    bus_->cimpl_->log()->trace("natsbus: subscriber {} ({}): {} #{}, delivery {}", topic_, opts_.group, mi.stream,
                               mi.stream_sequence, mi.num_delivered);
  // A redelivery of an event still held here (its in-progress acks were late): the new delivery's reply is the
  // one to answer; it is not handled twice.
  if (auto* held = held_find(mi.stream_sequence)) {
    (*held)->reply.assign(m.reply);
    (*held)->kept = now;
    return;
  }
  pending_seen_.store(mi.num_pending, std::memory_order_relaxed);
  if (mi.num_delivered > 1) stats_.redelivered.add(1);
  if (is_done(mi.stream_sequence)) {
    // Handled here already; its ack did not stick. Ack it again, and do not run the handler twice.
    stats_.duplicates.add(1);
    send_ack(m.reply, protocol::ack_body(protocol::ack_kind::ack));
    return;
  }
  event_ptr ev;
  if (spare_.empty()) {
    ev = std::make_shared<held_event>();
  } else {
    ev = std::move(spare_.back());
    spare_.pop_back();
  }
  ev->subject.assign(m.subject);
  ev->reply.assign(m.reply);
  ev->payload.assign(m.payload);
  ev->stream.assign(mi.stream);
  ev->seq = mi.stream_sequence;
  ev->delivery = mi.num_delivered;
  ev->kept = ev->arrived = now;
  ev->key.clear();
  ev->bad.clear();
  ev->hdrs.clear();
  ev->has_headers = false;
  ev->running = false;
  ev->worker = nullptr;
  if (!m.header_block.empty()) {
    if (auto hec = protocol::decode_headers(m.header_block, ev->hdrs)) {
      // Unreadable headers: the event cannot be handled as sent; it goes to the dead letters with the reason.
      ev->bad = "unreadable headers: " + hec.message();
    }
    ev->has_headers = true;
  }
  if (opts_.key_fn) {
    ev->view = view_of(*ev);
    ev->key = opts_.key_fn(ev->view);
  } else if (!opts_.key_header.empty() && ev->has_headers) {
    if (auto v = ev->hdrs.get(opts_.key_header)) ev->key.assign(*v);
  }
  ev->view = view_of(*ev);
  // Deliveries come in stream order but for redeliveries: almost always an append.
  if (held_events_.empty() || held_events_.back()->seq < ev->seq) held_events_.push_back(ev);
  else held_events_.insert(held_index(ev->seq), ev);
  ++held_;
  if (ev->key.empty()) {
    runnable_.push_back(ev);
  } else {
    auto& q = key_queue(ev->key);
    q.push_back(ev);
    if (q.size() == 1) runnable_.push_back(ev);  // otherwise it waits behind its key
  }
  pump();
}

bus_event bus_subscriber::view_of(const held_event& e) const {
  bus_event v;
  v.topic = e.subject;
  v.payload = e.payload;
  v.hdrs = e.has_headers ? &e.hdrs : nullptr;
  v.key = e.key;
  v.stream = e.stream;
  v.stream_sequence = e.seq;
  v.delivery = e.delivery;
  return v;
}

ring<bus_subscriber::event_ptr>& bus_subscriber::key_queue(const std::string& key) {
  if (auto it = keys_.find(key); it != keys_.end()) return it->second;
  if (spare_keys_.empty()) return keys_[key];
  auto node = std::move(spare_keys_.back());
  spare_keys_.pop_back();
  node.key() = key;
  return keys_.insert(std::move(node)).position->second;
}

std::size_t bus_subscriber::held_index(std::uint64_t seq) const {
  std::size_t lo = 0, hi = held_events_.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (held_events_[mid]->seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

bus_subscriber::event_ptr* bus_subscriber::held_find(std::uint64_t seq) {
  const std::size_t i = held_index(seq);
  return i < held_events_.size() && held_events_[i]->seq == seq ? &held_events_[i] : nullptr;
}

void bus_subscriber::held_erase(std::uint64_t seq) {
  if (!held_events_.empty() && held_events_.front()->seq == seq) return held_events_.pop_front();  // the usual case
  const std::size_t i = held_index(seq);
  if (i < held_events_.size() && held_events_[i]->seq == seq) held_events_.erase(i);
}

// Runnable events go to idle workers; a worker that is busy takes the next one itself when its handler returns.
void bus_subscriber::pump() {
  for (std::size_t n = runnable_.size(); n > 0 && !idle_.empty(); --n) {
    idle_.back()->wake.cancel();
    idle_.pop_back();
  }
  busy_seen_.store(busy_, std::memory_order_relaxed);
  held_seen_.store(held_, std::memory_order_relaxed);
  note_oldest();
}

// The held event with the lowest stream sequence: the oldest in the stream, and almost always the oldest here
// (a redelivery of an early sequence arriving late is younger than events held after it).
void bus_subscriber::note_oldest() {
  oldest_ns_.store(held_events_.empty() ? 0 : held_events_[0]->arrived.time_since_epoch().count(),
                   std::memory_order_relaxed);
}

void bus_subscriber::spawn_worker() {
  auto w = std::make_shared<worker_state>(bus_->cimpl_->executor());
  auto slot = w->cancel.slot();
  asio::co_spawn(bus_->cimpl_->executor(), work(shared_from_this(), std::move(w)),
                 asio::bind_cancellation_slot(slot, asio::detached));
}

// A worker: takes runnable events in turn and awaits each handler inline. A handler's deadline is watched by
// the subscription's one timer (expire_handlers): past it, the handler is cancelled through the worker's signal,
// its event retried, and another worker takes this one's place, so a handler that ignores cancellation holds up
// nothing but itself.
asio::awaitable<void> bus_subscriber::work(std::shared_ptr<bus_subscriber> self, std::shared_ptr<worker_state> w) {
  (void)self;  // held: the subscriber lives while its workers do
  std::size_t streak = 0;
  // When the next handler starts: read once per handler, at its end, which is the next one's start when the
  // worker goes on without suspending (the bookkeeping between them, well under a microsecond, counts as the
  // next handler's time).
  auto start = std::chrono::steady_clock::now();
  while (running_ && !w->abandoned) {
    if (runnable_.empty()) {
      idle_.push_back(w);
      w->wake.expires_at(asio::steady_timer::time_point::max());
      co_await w->wake.async_wait(use_ec);  // woken by pump (which took it off idle_) or stop
      streak = 0;
      start = std::chrono::steady_clock::now();
      continue;
    }
    event_ptr ev = std::move(runnable_.front());
    runnable_.pop_front();
    ++busy_;
    ev->view = view_of(*ev);
    if (!ev->bad.empty()) {
      outcome(ev, handle_result::reject(ev->bad));
      continue;
    }
    ev->running = true;
    ev->worker = w.get();
    ev->deadline = start + opts_.handler_timeout;
    running_events_.push_back(ev.get());
    busy_seen_.store(busy_, std::memory_order_relaxed);
    handle_result hr;
    bool threw = false;
    std::string what;  // built only when the handler threw (a literal here would allocate per event)
    try {
      hr = co_await fn_(ev->view);
    } catch (const std::exception& x) {
      threw = true;
      what = x.what();
    } catch (...) {
      threw = true;
      what = "unknown exception";
    }
    if (w->abandoned) break;  // timed out meanwhile: its event was retried; whatever it returned is ignored
    ev->running = false;
    ev->worker = nullptr;
    const auto end = std::chrono::steady_clock::now();
    handler_latency_.record(end - start);
    start = end;
    forget_running(ev.get());
    outcome(ev, threw ? handle_result::retry("handler threw: " + what) : std::move(hr));
    // Finished and referenced nowhere else: kept for the next delivery, with its strings' storage.
    if (ev.use_count() == 1 && spare_.size() < opts_.prefetch + opts_.max_concurrency) spare_.push_back(std::move(ev));
    if (++streak == yield_every) {
      streak = 0;
      co_await asio::post(bus_->cimpl_->executor(), asio::use_awaitable);
      start = std::chrono::steady_clock::now();
    }
  }
}

void bus_subscriber::forget_running(const held_event* ev) {
  auto it = std::find(running_events_.begin(), running_events_.end(), ev);
  if (it != running_events_.end()) {
    *it = running_events_.back();
    running_events_.pop_back();
  }
}

// Handlers past their deadline: cancelled (a terminal cancellation reaches the awaits that honour it) and
// their events retried; whatever such a handler returns later is ignored.
void bus_subscriber::expire_handlers(std::chrono::steady_clock::time_point now) {
  for (std::size_t i = 0; i < running_events_.size();) {
    if (now < running_events_[i]->deadline) {
      ++i;
      continue;
    }
    // Running, so held: its owner is in held_events_ until it finishes.
    auto* held = held_find(running_events_[i]->seq);
    running_events_[i] = running_events_.back();
    running_events_.pop_back();
    if (!held) continue;
    event_ptr ev = *held;
    ev->running = false;
    stats_.timeouts.add(1);
    if (auto* w = std::exchange(ev->worker, nullptr)) {
      w->abandoned = true;
      w->cancel.emit(asio::cancellation_type::terminal);
      if (running_) spawn_worker();
    }
    outcome(ev, handle_result::retry("handler timed out after " + std::to_string(opts_.handler_timeout.count()) +
                                     " ms"));
  }
}

// What the handler's result means for the event: ack, retry (nak, or a local retry for a keyed event), or dead
// letter.
void bus_subscriber::outcome(const event_ptr& ev, handle_result r) {
  if (r.what() == handle_result::kind::success) {
    ack(*ev, protocol::ack_body(protocol::ack_kind::ack));
    stats_.handled.add(1);
    remember_done(ev->seq);
    return finish(ev);
  }
  const bool last = ev->delivery >= static_cast<std::uint64_t>(opts_.max_deliver);
  if (r.what() == handle_result::kind::reject || last) {
    // The dead letter is a publish: awaited in a coroutine of its own (a rare path).
    asio::co_spawn(bus_->cimpl_->executor(), dead_letter_then(shared_from_this(), ev, std::move(r)), asio::detached);
    return;
  }
  retry(ev, r.delay());
}

asio::awaitable<void> bus_subscriber::dead_letter_then(std::shared_ptr<bus_subscriber> self, event_ptr ev,
                                                       handle_result r) {
  (void)self;  // held: the subscriber lives while the dead letter is published
  const std::string reason = r.reason().empty() ? std::string("handler failed") : r.reason();
  if (co_await dead_letter(*ev, reason)) {
    ack(*ev, protocol::ack_body(protocol::ack_kind::term));
    stats_.dead_lettered.add(1);
    remember_done(ev->seq);
    co_return finish(ev);
  }
  // Not published: the event is not terminated. It is tried again after its backoff.
  retry(ev, r.delay());
}

void bus_subscriber::retry(const event_ptr& ev, std::chrono::milliseconds delay) {
  stats_.retried.add(1);
  if (delay.count() == 0 && !opts_.backoff.empty())
    delay = opts_.backoff[std::min<std::size_t>(ev->delivery - 1, opts_.backoff.size() - 1)];
  if (ev->key.empty()) {
    // Unkeyed: back to the server with the delay; nothing here waits for it.
    std::string body;
    protocol::encode_nak_with_delay(body, delay);
    ack(*ev, delay.count() > 0 ? std::string_view(body) : protocol::ack_body(protocol::ack_kind::nak));
    return finish(ev);
  }
  // Keyed: the event keeps its key (later events of the key wait) and is tried again here after the delay, kept
  // from redelivery by in-progress acks meanwhile. The delivery count goes on from the server's.
  --busy_;
  pump();
  auto t = std::make_shared<asio::steady_timer>(bus_->cimpl_->executor(), delay);
  t->async_wait([self = shared_from_this(), ev, t](error_code ec) {
    if (ec || !self->running_) return;
    ++ev->delivery;
    self->runnable_.push_front(ev);  // the head of its key: first in line
    self->pump();
  });
}

void bus_subscriber::remember_done(std::uint64_t seq) {
  if (seq < done_base_) return;  // older than the window: forgotten already
  if (seq >= done_base_ + done_window) {
    // Slide the window so that seq sits in its upper half; the sequences it leaves are cleared.
    const std::uint64_t base = seq - done_window / 2;
    if (base - done_base_ >= done_window) {
      std::fill(done_bits_.begin(), done_bits_.end(), 0);
    } else {
      for (std::uint64_t s = done_base_; s < base; ++s) done_bits_[(s % done_window) / 64] &= ~(std::uint64_t{1} << (s % 64));
    }
    done_base_ = base;
  }
  done_bits_[(seq % done_window) / 64] |= std::uint64_t{1} << (seq % 64);
}

bool bus_subscriber::is_done(std::uint64_t seq) const noexcept {
  if (seq < done_base_ || seq >= done_base_ + done_window) return false;
  return (done_bits_[(seq % done_window) / 64] >> (seq % 64)) & 1;
}

void bus_subscriber::finish(const std::shared_ptr<held_event>& ev) {
  --busy_;
  --held_;
  held_erase(ev->seq);
  if (!ev->key.empty()) {
    auto it = keys_.find(ev->key);
    if (it != keys_.end()) {
      auto& q = it->second;
      if (!q.empty() && q.front() == ev) q.pop_front();
      if (q.empty()) {
        auto node = keys_.extract(it);
        if (spare_keys_.size() < opts_.prefetch + opts_.max_concurrency) spare_keys_.push_back(std::move(node));
      }
      else runnable_.push_back(q.front());  // the key's next event
    }
  }
  // The dispatcher, waiting for room, is woken once a quarter of the prefetch has been handled.
  if (room_waiting_ && held_ + std::max<std::size_t>(1, opts_.prefetch / 4) <= opts_.prefetch + opts_.max_concurrency) {
    room_waiting_ = false;
    room_.cancel();
  }
  pump();
}

asio::awaitable<bool> bus_subscriber::dead_letter(held_event& ev, const std::string& reason) {
  headers h;
  if (ev.has_headers)
    for (const auto& [k, v] : ev.hdrs.entries())
      if (k != "Nats-Msg-Id") h.add(k, v);
  h.set(dlq_topic_header, ev.subject);
  h.set(dlq_stream_header, ev.stream);
  h.set(dlq_sequence_header, std::to_string(ev.seq));
  h.set(dlq_deliveries_header, std::to_string(ev.delivery));
  h.set(dlq_error_header, reason);
  bus_publish_options po;
  po.hdrs = &h;
  // One dead letter per event: a second attempt (after a failed ack) is dropped by the stream's duplicate window.
  po.msg_id = "dlq-" + ev.stream + "-" + std::to_string(ev.seq);
  auto [ec, ack] = co_await bus_->publish_op(opts_.dead_letter_topic, ev.payload, po);
  if (ec) {
    set_error("dead letter for " + ev.stream + " #" + std::to_string(ev.seq) + " to " + opts_.dead_letter_topic +
              ": " + ec.message() + " (" + reason + ")");
    co_return false;
  }
  bus_->cimpl_->log()->info("natsbus: subscriber {} ({}): {} #{} dead-lettered after {} deliveries: {}", topic_,
                            opts_.group, ev.stream, ev.seq, ev.delivery, reason);
  co_return true;
}

void bus_subscriber::ack(held_event& ev, std::string_view body) { send_ack(ev.reply, body); }

// Acks of handlers finishing one after another go out together: the writer is woken by a job queued behind the
// handlers' own continuations, not once per ack. While handlers are still running or waiting to run, that job
// steps behind them again, up to flush_turns times: with one handler at a time, the next handler runs before the
// ack is written, and the acks of a run of events share one write. A handler that suspends empties the queue, and
// the acks go out on the next turn.
void bus_subscriber::send_ack(std::string_view reply, std::string_view body) {
  if (bus_->mem_) return bus_->mem_->ack(reply, body);
  auto& c = *bus_->cimpl_;
  std::size_t at = 0;
  if (!c.accepting() || c.append_publish(reply, {}, {}, body, at)) return;  // lost: the server redelivers
  if (flush_posted_) return;
  flush_posted_ = true;
  post_flush(flush_turns);
}

void bus_subscriber::post_flush(int turns) {
  asio::post(bus_->cimpl_->executor(), [w = weak_from_this(), turns] {
    auto self = w.lock();
    if (!self) return;
    if (turns > 0 && self->running_ && (self->busy_ > 0 || !self->runnable_.empty()))
      return self->post_flush(turns - 1);
    self->flush_posted_ = false;
    self->bus_->cimpl_->wake_writer();
  });
}

// Every held event (running, waiting behind its key, or waiting for a retry) gets an in-progress ack once every
// third of ack_wait, so none is redelivered while it is in this process's hands.
void bus_subscriber::arm_keep_alive() {
  // Half the keep-alive period, or a quarter of the handler timeout when shorter: a handler overruns its timeout
  // by at most that much before it is cancelled.
  keep_timer_.expires_after(std::min(keep_every_ / 2, std::max(std::chrono::milliseconds(5), opts_.handler_timeout / 4)));
  keep_timer_.async_wait([w = weak_from_this()](error_code ec) {
    auto self = w.lock();
    if (ec || !self || !self->running_) return;
    const auto now = std::chrono::steady_clock::now();
    self->expire_handlers(now);
    self->held_events_.for_each([&](const event_ptr& ev) {
      if (now - ev->kept < self->keep_every_) return;
      self->ack(*ev, protocol::ack_body(protocol::ack_kind::in_progress));
      ev->kept = now;
      self->stats_.in_progress_acks.add(1);
    });
    self->arm_keep_alive();
  });
}

}  // namespace natsbus::detail
