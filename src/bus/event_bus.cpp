// natsbus::event_bus: strategies, the strand-owned stream cache, publish and subscribe, and the public calls.
// Topic configuration (what stream a topic should have, how it is made to match, configure_topics' paced
// window) and the repair under windowed publishes: event_bus_streams.cpp.
#include "bus/event_bus_impl.hpp"
#include "bus/bus_subscriber.hpp"

#include <natsbus/protocol/envelope.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>

namespace natsbus {
namespace detail {
namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
constexpr char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

}  // namespace

// ---- the bus ----

event_bus_impl::event_bus_impl(asio::any_io_executor ex, event_bus_config cfg)
    : cfg_(std::move(cfg)),
      conn_(std::move(ex), cfg_.connection),
      js_(conn_, cfg_.jetstream),
      cimpl_(conn_.impl()),
      jimpl_(js_.impl()),
      strategy_(cfg_.strategy) {
  if (cfg_.backend == bus_backend::memory) mem_ = std::make_shared<memory_broker>(cimpl_->executor());
  std::random_device rd;
  std::mt19937_64 rng((std::uint64_t{rd()} << 32) ^ rd());
  for (auto& c : id_prefix_) c = base62[rng() % 62];
}

void event_bus_impl::set_error(std::string text) {
  std::lock_guard lock(mutex_);
  last_error_ = std::move(text);
}

void event_bus_impl::note_api_error(api_error err) { jimpl_->note_api_error(std::move(err)); }

error_code event_bus_impl::stream_of(std::string_view topic, std::string& stream) {
  if (auto it = topics_.find(topic); it != topics_.end() && it->second.ready && it->second.persistent) {
    stream = it->second.stream;
    return {};
  }
  const auto opts = options_for(topic);
  if (!is_persistent(opts)) {
    set_error("topic " + std::string(topic) + " is ephemeral: it has no stream");
    return error::stream_not_found_for_topic;
  }
  wanted_stream want;
  std::string message;
  if (auto ec = wanted_for(topic, opts, want, message)) {
    set_error(std::move(message));
    return ec;
  }
  stream = want.cfg.name;
  return {};
}

topic_options event_bus_impl::options_for(std::string_view topic) const {
  std::lock_guard lock(mutex_);
  auto it = registry_.find(topic);
  return it != registry_.end() ? it->second : cfg_.default_topic_options;
}

bool event_bus_impl::is_persistent(const topic_options& o) const noexcept {
  return o.persistence == topic_persistence::persistent ||
         (o.persistence == topic_persistence::automatic && cfg_.jetstream_enabled);
}

asio::awaitable<error_code> event_bus_impl::resolve(const std::string& topic, topic_entry& e) {
  auto opts = options_for(topic);
  e.persistent = is_persistent(opts);
  if (!e.persistent) co_return error_code{};
  if (!cfg_.jetstream_enabled) {
    set_error("topic " + topic + " is persistent but JetStream is disabled");
    co_return error_code(error::jetstream_not_enabled);
  }
  wanted_stream want;
  std::string message;
  if (auto ec = wanted_for(topic, opts, want, message)) {
    set_error(std::move(message));
    co_return ec;
  }
  e.stream = want.cfg.name;
  e.replicated = want.cfg.num_replicas > 1;
  auto strategy = strategy_.load(std::memory_order_relaxed);
  if (strategy == topic_strategy::skip || streams_.contains(want.cfg.name)) co_return error_code{};
  topic_configure_result result;
  auto ec = co_await ensure_stream(want, strategy, true, result);
  if (ec) set_error("topic " + topic + ": " + (result.message.empty() ? ec.message() : result.message));
  co_return ec;
}

asio::awaitable<error_code> event_bus_impl::ensure_topic(std::string topic) {
  auto self = shared_from_this();
  auto it = topics_.find(topic);
  if (it != topics_.end()) {
    if (it->second.ready) co_return error_code{};
    auto [ec] = co_await asio::async_initiate<decltype(use_ec), void(error_code)>(
        [&](auto h) { it->second.waiters.emplace_back(std::move(h)); }, use_ec);
    co_return ec;
  }
  misses_.add(1);
  auto& fresh = topics_[topic];
  number(fresh, topic);
  const std::uint64_t id = fresh.id;
  // `fresh` stays valid across the resolution: only this coroutine erases a resolving entry, and an unordered
  // map never moves its nodes.
  auto ec = co_await resolve(topic, fresh);
  auto waiters = std::move(fresh.waiters);
  fresh.waiters.clear();
  if (ec) {
    topic_by_id_.erase(id);
    topics_.erase(topic);
  } else {
    fresh.ready = true;
    if (fresh.persistent) cached_streams_.store(streams_.size(), std::memory_order_relaxed);
  }
  for (auto& w : waiters) complete(cimpl_->executor(), std::move(w), ec);
  co_return ec;
}

void event_bus_impl::drop(std::uint64_t id) {
  auto it = topic_by_id_.find(id);
  if (it == topic_by_id_.end()) return;
  auto t = topics_.find(it->second);
  if (t != topics_.end() && t->second.ready) {
    cimpl_->log()->warn("natsbus: bus: topic {}: stream {} is missing; its cache entry is dropped", t->first,
                        t->second.stream);
    streams_.erase(t->second.stream);
    // A stream made again has none of its consumers: they are asked for again too.
    const std::string prefix = t->second.stream + '\n';
    std::erase_if(consumers_, [&](const auto& c) { return c.first.starts_with(prefix); });
    topics_.erase(t);
    topic_by_id_.erase(it);
    repairs_.add(1);
    cached_streams_.store(streams_.size(), std::memory_order_relaxed);
  }
}

void event_bus_impl::on_publish_outcome(std::uint64_t tag, error_code ec, std::chrono::nanoseconds elapsed) {
  auto* tc = tag < counters_by_id_.size() ? counters_by_id_[tag] : nullptr;
  if (!ec) {
    acked_.add(1);
    if (tc) tc->acked.add(1);
    latency_.record(elapsed);
    return;
  }
  if (is_missing_stream(ec)) drop(tag);
  failed_.add(1);
  if (tc) tc->failed.add(1);
}

void event_bus_impl::publish_options_for(const topic_entry& e, const bus_publish_options& in,
                                         publish_options& out) {
  out.hdrs = in.hdrs;
  out.timeout = in.timeout;
  out.tag = e.id;
  // A replicated stream rides out a leader election: its 503s are retried until the publish's deadline.
  out.retry_until_deadline = e.replicated;
  if (!in.msg_id.empty()) {
    out.msg_id = in.msg_id;
  } else if (cfg_.auto_msg_id) {
    char buf[32];
    std::memcpy(buf, id_prefix_, sizeof id_prefix_);
    std::size_t n = sizeof id_prefix_;
    std::uint64_t v = next_msg_++;
    char digits[16];
    std::size_t k = 0;
    do {
      digits[k++] = base62[v % 62];
      v /= 62;
    } while (v);
    while (k) buf[n++] = digits[--k];
    out.msg_id.assign(buf, n);
  }
}

topic_entry* event_bus_impl::cached(std::string_view topic) noexcept {
  auto it = topics_.find(topic);
  if (it == topics_.end() || !it->second.ready) return nullptr;
  hits_.add(1);
  return &it->second;
}

asio::awaitable<topic_entry*> event_bus_impl::resolved(std::string_view topic, error_code& ec) {
  std::string key(topic);
  ec = co_await ensure_topic(std::move(key));
  if (ec) co_return nullptr;
  auto it = topics_.find(topic);
  if (it == topics_.end()) {  // removed meanwhile
    ec = error::stream_not_found_for_topic;
    co_return nullptr;
  }
  co_return &it->second;
}

// Both publishes enter the JetStream floor the same way (start_publish: a pooled publish and its future). Its
// outcome is counted in one place, on_publish_outcome; a missing stream is repaired in one place, take_repair (at
// most once per publish, with the same message id). Only what never reaches JetStream is counted here.
asio::awaitable<std::tuple<error_code, pub_ack>> event_bus_impl::publish_op(std::string_view topic,
                                                                           std::string_view payload,
                                                                           const bus_publish_options& opts) {
  std::tuple<error_code, pub_ack> r;
  auto& [ec, ack] = r;
  auto [sec, fut] = co_await start_publish(topic, payload, opts);
  if ((ec = sec)) co_return r;
  r = co_await fut.get(use_ec);
  if (ec && is_missing_stream(ec) && strategy_.load(std::memory_order_relaxed) == topic_strategy::skip) {
    set_error("topic " + std::string(topic) + ": its stream is missing (" + ec.message() +
              ") and the skip strategy does not re-create it");
    ec = error::stream_not_found_for_topic;
  }
  co_return r;
}

asio::awaitable<std::tuple<error_code, ack_future>> event_bus_impl::publish_async_op(
    std::string_view topic, std::string_view payload, const bus_publish_options& opts) {
  co_return co_await start_publish(topic, payload, opts);
}

asio::awaitable<std::tuple<error_code, ack_future>> event_bus_impl::start_publish(std::string_view topic,
                                                                                 std::string_view payload,
                                                                                 const bus_publish_options& opts) {
  std::tuple<error_code, ack_future> r;
  auto& [ec, fut] = r;
  topic_entry* e = cached(topic);
  if (!e && !(e = co_await resolved(topic, ec))) {
    failed_.add(1);
    counters_for(topic).failed.add(1);
    co_return r;
  }
  // The entry may be gone after a suspension; its counters stay (an entry made without number() has none).
  static topic_counters unnumbered;
  auto* tc = e->counters ? e->counters : &unnumbered;
  tc->published.add(1);
  if (!e->persistent) {
    if (mem_) ec = mem_->publish_core(topic, payload, opts.hdrs);
    else ec = std::get<0>(co_await conn_.publish(topic, payload, opts.hdrs, {}, use_ec));
    if (ec) {
      failed_.add(1);
      tc->failed.add(1);
      co_return r;
    }
    core_published_.add(1);
    fut = ack_future(jimpl_->make_resolved(error_code{}));
    co_return r;
  }
  publish_options popts;
  publish_options_for(*e, opts, popts);
  published_.add(1);
  if (mem_) co_return co_await memory_publish(topic, payload, popts, e);
  if (auto* s = jimpl_->try_start(topic, payload, popts, ec)) {
    s->has_future = true;
    fut = ack_future(s);
    co_return r;
  }
  // The window is full (or this is not the owner thread): wait for room. A failure to start is no outcome
  // JetStream saw: counted here.
  if (!ec) r = co_await js_.publish_async(topic, payload, popts, use_ec);
  if (ec) {
    failed_.add(1);
    tc->failed.add(1);
  }
  co_return r;
}

asio::awaitable<std::tuple<error_code, ack_future>> event_bus_impl::memory_publish(std::string_view topic,
                                                                                  std::string_view payload,
                                                                                  const publish_options& popts,
                                                                                  topic_entry* e) {
  std::tuple<error_code, ack_future> r;
  auto& fut = std::get<1>(r);
  pub_ack ack;
  api_error err;
  const auto start = std::chrono::steady_clock::now();
  error_code outcome = mem_->publish(topic, payload, popts.hdrs, popts.msg_id, ack, err);
  if (is_missing_stream(outcome) && strategy_.load(std::memory_order_relaxed) != topic_strategy::skip) {
    // The stream is gone: the entry is dropped, the strategy makes the stream again, and the publish goes once
    // more with the same message id.
    drop(e->id);
    error_code rec;
    if (co_await resolved(topic, rec)) outcome = mem_->publish(topic, payload, popts.hdrs, popts.msg_id, ack, err);
    else outcome = rec;
  }
  auto& tc = counters_for(topic);  // the topic's figures (its entry may have been replaced by a repair)
  if (outcome) {
    if (outcome.category() == jetstream_category()) note_api_error(err);
    failed_.add(1);
    tc.failed.add(1);
  } else {
    acked_.add(1);
    tc.acked.add(1);
    latency_.record(std::chrono::steady_clock::now() - start);
  }
  fut = ack_future(jimpl_->make_resolved(outcome, std::move(ack)));
  co_return r;
}

asio::awaitable<std::tuple<error_code, consumer_info>> event_bus_impl::consumer_info_of(std::string stream,
                                                                                    std::string consumer) {
  if (!mem_) co_return co_await js_.get_consumer_info(stream, consumer, use_ec);
  std::tuple<error_code, consumer_info> r;
  api_error err;
  if ((std::get<0>(r) = mem_->consumer_info(stream, consumer, std::get<1>(r), err))) note_api_error(std::move(err));
  co_return r;
}

asio::awaitable<std::tuple<error_code, consumer_info>> event_bus_impl::put_consumer(std::string stream,
                                                                                consumer_config cfg, bool update) {
  if (!mem_) {
    if (update) co_return co_await js_.update_consumer(stream, cfg, use_ec);
    co_return co_await js_.create_consumer(stream, cfg, use_ec);
  }
  std::tuple<error_code, consumer_info> r;
  api_error err;
  if ((std::get<0>(r) = mem_->add_consumer(stream, cfg, update, std::get<1>(r), err))) note_api_error(std::move(err));
  co_return r;
}

asio::awaitable<error_code> event_bus_impl::start_op() {
  auto self = shared_from_this();
  error_code ec;
  if (!mem_) {
    auto [cec] = co_await conn_.connect(use_ec);
    ec = cec;
  }
  if (ec) {
    set_error("connect: " + ec.message() + (conn_.last_error().empty() ? "" : " (" + conn_.last_error() + ")"));
    co_return ec;
  }
  if (cfg_.precreation.enabled && !cfg_.precreation.topics.empty()) {
    strategy_.store(cfg_.precreation.strategy);
    auto [pec, results] = co_await asio::async_initiate<decltype(use_ec),
                                                        void(error_code, std::vector<topic_configure_result>)>(
        [this](auto h, std::vector<topic_config> t) { configure_many(std::move(t), std::move(h)); }, use_ec,
        cfg_.precreation.topics);
    if (pec) co_return pec;
  }
  // The configured subscribers' consumers (and their topics' and dead-letter topics' streams).
  for (const auto& s : cfg_.subscribers) {
    const auto strategy = cfg_.precreation.enabled ? cfg_.precreation.strategy : cfg_.strategy;
    strategy_.store(strategy);
    std::string topic = s.topic;
    subscribe_options opts = s.options;
    event_handler_fn none;  // only the consumer is wanted now
    auto [sec, sub] = co_await prepare_subscriber(std::move(topic), std::move(opts), std::move(none), strategy);
    if (sec) {
      strategy_.store(cfg_.strategy);
      co_return sec;
    }
  }
  strategy_.store(cfg_.strategy);
  co_return error_code{};
}

}  // namespace detail

// ---- public API ----

event_bus::event_bus(asio::any_io_executor ex, event_bus_config cfg)
    : impl_(std::make_shared<detail::event_bus_impl>(std::move(ex), std::move(cfg))) {
  // Set before anything can publish through the bus (its context is its own).
  impl_->jimpl_->set_listener(impl_);
}

event_bus::~event_bus() { close(); }

event_bus::executor_type event_bus::get_executor() const noexcept { return impl_->conn_.get_executor(); }
connection& event_bus::conn() noexcept { return impl_->conn_; }
jetstream& event_bus::js() noexcept { return impl_->js_; }
const event_bus_config& event_bus::config() const noexcept { return impl_->cfg_; }

void event_bus::set_topic_config_strategy(topic_strategy s) noexcept {
  impl_->strategy_.store(s, std::memory_order_relaxed);
}
topic_strategy event_bus::get_topic_config_strategy() const noexcept {
  return impl_->strategy_.load(std::memory_order_relaxed);
}

void event_bus::start_impl(asio::any_completion_handler<void(error_code)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(), impl->start_op(),
                 [impl, h = std::move(h)](std::exception_ptr e, error_code ec) mutable {
                   if (e) ec = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), ec);
                 });
}

namespace {
asio::awaitable<std::tuple<error_code, topic_configure_result>> configure_one(
    std::shared_ptr<detail::event_bus_impl> impl, std::string topic, topic_options opts) {
  std::tuple<error_code, topic_configure_result> r;
  auto strategy = impl->strategy_.load(std::memory_order_relaxed);
  std::get<0>(r) = co_await impl->configure_op(std::move(topic), std::move(opts), strategy, std::get<1>(r));
  if (std::get<0>(r)) impl->set_error(std::get<1>(r).message);
  co_return r;
}
}  // namespace

void event_bus::configure_impl(std::string topic, topic_options opts,
                               asio::any_completion_handler<void(error_code, topic_configure_result)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(), configure_one(impl, std::move(topic), std::move(opts)),
                 [impl, h = std::move(h)](std::exception_ptr e,
                                          std::tuple<error_code, topic_configure_result> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

void event_bus::configure_many_impl(
    std::vector<topic_config> topics,
    asio::any_completion_handler<void(error_code, std::vector<topic_configure_result>)> h) {
  auto impl = impl_;
  asio::dispatch(impl->cimpl_->executor(), [impl, t = std::move(topics), h = std::move(h)]() mutable {
    impl->configure_many(std::move(t), std::move(h));
  });
}

std::optional<topic_options> event_bus::get_topic_config(std::string_view topic) const {
  std::lock_guard lock(impl_->mutex_);
  auto it = impl_->registry_.find(topic);
  if (it == impl_->registry_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> event_bus::list_configured_topics() const {
  std::lock_guard lock(impl_->mutex_);
  std::vector<std::string> out;
  out.reserve(impl_->registry_.size());
  for (const auto& [k, v] : impl_->registry_) out.push_back(k);
  return out;
}

void event_bus::remove_topic_config(std::string_view topic) {
  {
    std::lock_guard lock(impl_->mutex_);
    auto it = impl_->registry_.find(topic);
    if (it != impl_->registry_.end()) impl_->registry_.erase(it);
  }
  asio::dispatch(impl_->cimpl_->executor(), [impl = impl_, t = std::string(topic)] {
    auto it = impl->topics_.find(t);
    if (it == impl->topics_.end() || !it->second.ready) return;
    impl->topic_by_id_.erase(it->second.id);
    impl->topics_.erase(it);
  });
}

namespace {
asio::awaitable<std::tuple<error_code, pub_ack>> publish_owned(std::shared_ptr<detail::event_bus_impl> impl,
                                                              std::string topic, std::string payload,
                                                              bus_publish_options opts) {
  co_return co_await impl->publish_op(topic, payload, opts);
}
asio::awaitable<std::tuple<error_code, ack_future>> publish_async_owned(std::shared_ptr<detail::event_bus_impl> impl,
                                                                       std::string topic, std::string payload,
                                                                       bus_publish_options opts) {
  co_return co_await impl->publish_async_op(topic, payload, opts);
}
}  // namespace

void event_bus::publish_impl(std::string topic, std::string payload, bus_publish_options opts,
                             asio::any_completion_handler<void(error_code, pub_ack)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(), publish_owned(impl, std::move(topic), std::move(payload), std::move(opts)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, pub_ack> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

void event_bus::publish_async_impl(std::string topic, std::string payload, bus_publish_options opts,
                                   asio::any_completion_handler<void(error_code, ack_future)> h) {
  // The bytes are owned here, so the frame can be queued from the copy.
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(),
                 publish_async_owned(impl, std::move(topic), std::move(payload), std::move(opts)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, ack_future> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

asio::awaitable<std::tuple<error_code, pub_ack>> event_bus::publish_awaitable_ec(std::string_view topic,
                                                                                std::string_view payload,
                                                                                const bus_publish_options& opts) {
  if (impl_->conn_.on_owner_thread()) co_return co_await impl_->publish_op(topic, payload, opts);
  auto op = publish_owned(impl_, std::string(topic), std::string(payload), opts);
  co_return co_await asio::co_spawn(impl_->cimpl_->executor(), std::move(op), asio::use_awaitable);
}

asio::awaitable<pub_ack> event_bus::publish_awaitable(std::string_view topic, std::string_view payload,
                                                      const bus_publish_options& opts) {
  auto [ec, ack] = co_await publish_awaitable_ec(topic, payload, opts);
  if (ec) throw system_error(ec, last_error());
  co_return std::move(ack);
}

asio::awaitable<std::tuple<error_code, ack_future>> event_bus::publish_async_awaitable_ec(
    std::string_view topic, std::string_view payload, const bus_publish_options& opts) {
  auto& im = *impl_;
  if (im.conn_.on_owner_thread()) co_return co_await im.publish_async_op(topic, payload, opts);
  auto op = publish_async_owned(impl_, std::string(topic), std::string(payload), opts);
  co_return co_await asio::co_spawn(im.cimpl_->executor(), std::move(op), asio::use_awaitable);
}

asio::awaitable<ack_future> event_bus::publish_async_awaitable(std::string_view topic, std::string_view payload,
                                                               const bus_publish_options& opts) {
  auto [ec, f] = co_await publish_async_awaitable_ec(topic, payload, opts);
  if (ec) throw system_error(ec, last_error());
  co_return std::move(f);
}

namespace {
asio::awaitable<void> deliver(subscription sub, event_bus::message_handler fn) {
  for (;;) {
    auto [ec, m] = co_await sub.next(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    fn(m);
  }
}
}  // namespace

void event_bus::subscribe_impl(std::string topic, message_handler fn,
                               asio::any_completion_handler<void(error_code, subscription)> h) {
  auto impl = impl_;
  if (!protocol::is_valid_subscription_subject(topic))
    return detail::complete(impl->cimpl_->executor(), std::move(h), error_code(error::invalid_subject), subscription{});
  if (impl->mem_) {
    return asio::dispatch(impl->cimpl_->executor(), [impl, topic = std::move(topic), fn = std::move(fn),
                                                     h = std::move(h)]() mutable {
      if (impl->mem_->closed())
        return detail::complete(impl->cimpl_->executor(), std::move(h), error_code(error::connection_closed),
                                subscription{});
      auto sub = impl->mem_->subscribe_core(std::move(topic), std::move(fn));
      detail::complete(impl->cimpl_->executor(), std::move(h), error_code{}, std::move(sub));
    });
  }
  impl->conn_.subscribe(
      topic, {},
      [impl, fn = std::move(fn), h = std::move(h)](error_code ec, subscription sub) mutable {
        if (!ec) asio::co_spawn(impl->cimpl_->executor(), deliver(sub, std::move(fn)), asio::detached);
        detail::complete(impl->cimpl_->executor(), std::move(h), ec, std::move(sub));
      });
}

namespace {
asio::awaitable<std::tuple<error_code, bus_subscription>> subscribe_durable_op(
    std::shared_ptr<detail::event_bus_impl> impl, std::string topic, event_handler_fn fn, subscribe_options opts) {
  std::tuple<error_code, bus_subscription> r;
  auto& ec = std::get<0>(r);
  if (!fn) {
    impl->set_error("subscribe " + topic + ": no handler");
    ec = error::invalid_argument;
    co_return r;
  }
  auto strategy = impl->strategy_.load(std::memory_order_relaxed);
  auto [pec, sub] = co_await impl->prepare_subscriber(std::move(topic), std::move(opts), std::move(fn), strategy);
  if ((ec = pec)) co_return r;
  if ((ec = sub->start_consuming())) {
    impl->set_error("subscribe: consume: " + ec.message());
    co_return r;
  }
  std::get<1>(r) = detail::bus_subscriber::wrap(std::move(sub));
  co_return r;
}

asio::awaitable<std::tuple<error_code, bus_subscription>> subscribe_configured_op(
    std::shared_ptr<detail::event_bus_impl> impl, std::string topic, std::string group, event_handler_fn fn) {
  for (const auto& s : impl->cfg_.subscribers)
    if (s.topic == topic && s.options.group == group) {
      subscribe_options opts = s.options;
      co_return co_await subscribe_durable_op(impl, std::move(topic), std::move(fn), std::move(opts));
    }
  impl->set_error("subscribe " + topic + ": no subscriber with group '" + group + "' in the configuration");
  co_return std::tuple<error_code, bus_subscription>{error::invalid_argument, bus_subscription{}};
}
}  // namespace

void event_bus::subscribe_configured_impl(std::string topic, std::string group, event_handler_fn fn,
                                          asio::any_completion_handler<void(error_code, bus_subscription)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(),
                 subscribe_configured_op(impl, std::move(topic), std::move(group), std::move(fn)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, bus_subscription> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

void event_bus::subscribe_durable_impl(std::string topic, event_handler_fn fn, subscribe_options opts,
                                       asio::any_completion_handler<void(error_code, bus_subscription)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(), subscribe_durable_op(impl, std::move(topic), std::move(fn), std::move(opts)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, bus_subscription> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

// ---- health ----

namespace {
asio::awaitable<std::tuple<error_code, bus_health>> health_op(std::shared_ptr<detail::event_bus_impl> impl) {
  constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
  bus_health h;
  h.connected = impl->mem_ ? !impl->mem_->closed() : impl->conn_.is_connected();
  if (!h.connected) h.problem = "not connected" + (impl->conn_.last_error().empty() ? "" : ": " + impl->conn_.last_error());
  if (h.connected && impl->mem_) {
    h.jetstream = true;
  } else if (h.connected && impl->cfg_.jetstream_enabled) {
    auto [aec, acct] = co_await impl->js_.get_account_info(use_ec);
    h.jetstream = !aec;
    if (aec && h.problem.empty()) h.problem = "JetStream: " + aec.message();
  }
  std::erase_if(impl->subscribers_, [](const auto& w) { return w.expired(); });
  auto subs = impl->subscribers_;  // the list may change while this awaits
  for (const auto& w : subs) {
    auto sub = w.lock();
    if (!sub) continue;
    const auto st = sub->stats();
    subscription_health sh;
    sh.topic = sub->topic();
    sh.group = sub->group();
    sh.consumer = sub->consumer();
    sh.consuming = st.consuming;
    sh.lag = st.lag;
    sh.oldest_unacked_age = st.oldest_unacked_age;
    if (!st.consuming) sh.problem = "not consuming";
    if (h.jetstream && st.consuming) {
      std::string stream = sub->stream(), consumer = sub->consumer();
      auto [iec, info] = co_await impl->consumer_info_of(stream, consumer);
      if (!iec) sh.lag = info.num_pending + static_cast<std::uint64_t>(std::max<std::int64_t>(0, info.num_ack_pending));
      else sh.problem = "consumer info: " + iec.message();
    }
    if (!sh.problem.empty() && h.problem.empty()) h.problem = "subscriber " + sh.topic + " (" + sh.group + "): " + sh.problem;
    h.subscriptions.push_back(std::move(sh));
  }
  co_return std::tuple<error_code, bus_health>{error_code{}, std::move(h)};
}
}  // namespace

void event_bus::health_impl(asio::any_completion_handler<void(error_code, bus_health)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(), health_op(impl),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, bus_health> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

// ---- what the backend holds ----

namespace {
asio::awaitable<std::tuple<error_code, stream_info>> topic_stream_info_op(std::shared_ptr<detail::event_bus_impl> impl,
                                                                         std::string topic) {
  std::tuple<error_code, stream_info> r;
  std::string stream;
  if ((std::get<0>(r) = impl->stream_of(topic, stream))) co_return r;
  std::string no_body;
  std::get<0>(r) = co_await impl->stream_request("INFO", stream, std::move(no_body), std::get<1>(r));
  if (std::get<0>(r)) impl->set_error("stream info " + stream + ": " + std::get<0>(r).message());
  co_return r;
}

asio::awaitable<std::tuple<error_code, consumer_info>> subscriber_consumer_info_op(
    std::shared_ptr<detail::event_bus_impl> impl, std::string topic, std::string group) {
  std::string stream;
  if (auto ec = impl->stream_of(topic, stream)) co_return std::tuple<error_code, consumer_info>{ec, consumer_info{}};
  std::string consumer = detail::bus_subscriber::consumer_name_for(topic, group);
  auto r = co_await impl->consumer_info_of(std::move(stream), consumer);
  if (std::get<0>(r)) impl->set_error("consumer info " + consumer + ": " + std::get<0>(r).message());
  co_return r;
}
}  // namespace

void event_bus::topic_stream_info_impl(std::string topic, asio::any_completion_handler<void(error_code, stream_info)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(), topic_stream_info_op(impl, std::move(topic)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, stream_info> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

void event_bus::subscriber_consumer_info_impl(std::string topic, std::string group,
                                              asio::any_completion_handler<void(error_code, consumer_info)> h) {
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->executor(), subscriber_consumer_info_op(impl, std::move(topic), std::move(group)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, consumer_info> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->executor(), std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

// ---- bus_subscription ----

void bus_subscription::stop() {
  if (!impl_) return;
  auto s = impl_;
  // The executor the subscriber lives on is the connection's: stop there.
  asio::dispatch(s->executor(), [s] { s->stop(); });
}
subscriber_stats bus_subscription::stats() const { return impl_ ? impl_->stats() : subscriber_stats{}; }
const std::string& bus_subscription::consumer() const noexcept {
  static const std::string none;
  return impl_ ? impl_->consumer() : none;
}
std::string bus_subscription::last_error() const { return impl_ ? impl_->last_error() : std::string(); }

bus_metrics event_bus::metrics() const noexcept {
  const auto& im = *impl_;
  bus_metrics m;
  m.published = im.published_.get();
  m.acked = im.acked_.get();
  m.failed = im.failed_.get();
  m.core_published = im.core_published_.get();
  m.stream_lookups = im.lookups_.get();
  m.consumer_lookups = im.consumer_lookups_.get();
  m.streams_created = im.created_.get();
  m.streams_updated = im.updated_.get();
  m.cache_hits = im.hits_.get();
  m.cache_misses = im.misses_.get();
  m.repairs = im.repairs_.get();
  m.cached_streams = im.cached_streams_.load(std::memory_order_relaxed);
  m.ack_latency_p50 = im.latency_.percentile(0.50);
  m.ack_latency_p99 = im.latency_.percentile(0.99);
  return m;
}

std::string event_bus::last_error() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->last_error_;
}

void event_bus::close() {
  if (impl_->mem_) asio::dispatch(impl_->cimpl_->executor(), [impl = impl_] { impl->mem_->close(); });
  impl_->conn_.close();
}

}  // namespace natsbus
