// natsbus::event_bus: strategies, topic configuration, the strand-owned stream cache, publish and subscribe.
#include "event_bus_impl.hpp"

#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>

#include <algorithm>
#include <bit>
#include <random>
#include <sstream>

namespace natsbus {
namespace detail {
namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
constexpr char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::uint64_t async_flag = 1;  // low bit of a publish tag: the publisher does not wait

bool is_missing_stream(const error_code& ec) noexcept {
  return ec == error::no_responders ||
         (ec.category() == jetstream_category() && ec.value() == jetstream_errc::stream_not_found);
}

std::string describe(std::chrono::nanoseconds d) {
  auto ns = d.count();
  if (ns % 1000000000 == 0) return std::to_string(ns / 1000000000) + "s";
  if (ns % 1000000 == 0) return std::to_string(ns / 1000000) + "ms";
  return std::to_string(ns) + "ns";
}

std::string_view name(storage_type s) noexcept { return s == storage_type::memory ? "memory" : "file"; }
std::string_view name(discard_policy d) noexcept { return d == discard_policy::new_ ? "new" : "old"; }

template <class T>
void differ(std::vector<std::string>& out, std::string_view field, const T& server, const T& wanted) {
  if (server == wanted) return;
  std::ostringstream s;
  s << field << ": server " << server << ", wanted " << wanted;
  out.push_back(s.str());
}

// The fields of `want` that were asked for and that `server` does not have.
std::vector<std::string> differences(const stream_config& server, const wanted_stream& want) {
  std::vector<std::string> out;
  const auto& w = want.cfg;
  for (const auto& subj : w.subjects)
    if (std::find(server.subjects.begin(), server.subjects.end(), subj) == server.subjects.end())
      out.push_back("subjects: server lacks " + subj);
  if (want.description) differ(out, "description", server.description, w.description);
  if (want.storage) differ(out, "storage", name(server.storage), name(w.storage));
  if (want.max_msgs) differ(out, "max_msgs", server.max_msgs, w.max_msgs);
  if (want.max_bytes) differ(out, "max_bytes", server.max_bytes, w.max_bytes);
  if (want.max_age) differ(out, "max_age", describe(server.max_age), describe(w.max_age));
  if (want.max_msg_size) differ(out, "max_msg_size", server.max_msg_size, w.max_msg_size);
  if (want.discard) differ(out, "discard", name(server.discard), name(w.discard));
  if (want.replicas) differ(out, "num_replicas", server.num_replicas, w.num_replicas);
  if (want.duplicate_window) differ(out, "duplicate_window", describe(server.duplicate_window), describe(w.duplicate_window));
  return out;
}

// The server's config with the asked-for fields of `want` applied: an update never resets what was not asked.
stream_config merged(const stream_config& server, const wanted_stream& want) {
  stream_config c = server;
  const auto& w = want.cfg;
  for (const auto& subj : w.subjects)
    if (std::find(c.subjects.begin(), c.subjects.end(), subj) == c.subjects.end()) c.subjects.push_back(subj);
  if (want.description) c.description = w.description;
  if (want.storage) c.storage = w.storage;
  if (want.max_msgs) c.max_msgs = w.max_msgs;
  if (want.max_bytes) c.max_bytes = w.max_bytes;
  if (want.max_age) c.max_age = w.max_age;
  if (want.max_msg_size) c.max_msg_size = w.max_msg_size;
  if (want.discard) c.discard = w.discard;
  if (want.replicas) c.num_replicas = w.num_replicas;
  if (want.duplicate_window) c.duplicate_window = w.duplicate_window;
  return c;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += "; ";
    out += s;
  }
  return out;
}

}  // namespace

// ---- latency histogram ----

std::size_t latency_histogram::index(std::uint64_t ns) noexcept {
  if (ns < 4) return static_cast<std::size_t>(ns);
  int lg = 63 - std::countl_zero(ns);
  auto sub = static_cast<std::size_t>((ns >> (lg - 2)) & 3);
  return std::min<std::size_t>(255, static_cast<std::size_t>(lg) * 4 + sub);
}

std::uint64_t latency_histogram::upper_bound(std::size_t i) noexcept {
  if (i < 4) return i + 1;
  std::size_t lg = i / 4, sub = i % 4;
  if (lg >= 62) return ~std::uint64_t{0};
  return (std::uint64_t{1} << lg) + ((sub + 1) << (lg - 2));
}

std::chrono::nanoseconds latency_histogram::percentile(double q) const noexcept {
  std::uint64_t total = 0;
  for (const auto& b : buckets_) total += b.get();
  if (total == 0) return std::chrono::nanoseconds{0};
  auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1)) + 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i].get();
    if (seen >= rank) return std::chrono::nanoseconds(static_cast<std::int64_t>(upper_bound(i)));
  }
  return std::chrono::nanoseconds{0};
}

// ---- the bus ----

event_bus_impl::event_bus_impl(asio::any_io_executor ex, event_bus_config cfg)
    : cfg_(std::move(cfg)),
      conn_(std::move(ex), cfg_.connection),
      js_(conn_, cfg_.jetstream),
      cimpl_(conn_.impl()),
      jimpl_(js_.impl()),
      strategy_(cfg_.strategy) {
  std::random_device rd;
  std::mt19937_64 rng((std::uint64_t{rd()} << 32) ^ rd());
  for (auto& c : id_prefix_) c = base62[rng() % 62];
}

void event_bus_impl::set_error(std::string text) {
  std::lock_guard lock(mutex_);
  last_error_ = std::move(text);
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

error_code event_bus_impl::wanted_for(std::string_view topic, const topic_options& o, wanted_stream& out,
                                      std::string& message) {
  if (cfg_.mapping == stream_mapping::shared) {
    if (!cfg_.default_stream) {
      message = "shared stream mapping needs a default stream";
      return error::invalid_config;
    }
    const auto& shared = *cfg_.default_stream;
    bool covered = std::any_of(shared.subjects.begin(), shared.subjects.end(),
                               [&](const std::string& p) { return protocol::subject_matches(p, topic); });
    if (!covered) {
      message = "no subject of the shared stream " + shared.name + " covers topic " + std::string(topic);
      return error::stream_not_found_for_topic;
    }
    out = wanted_stream{};
    out.cfg = shared;
    out.description = !shared.description.empty();
    out.storage = out.max_msgs = out.max_bytes = out.max_age = out.max_msg_size = out.discard = out.replicas = true;
    out.duplicate_window = shared.duplicate_window.count() > 0;
    // Per-topic options may not change what other topics share.
    wanted_stream mine;
    mine.cfg = shared;
    mine.cfg.subjects.clear();
    if (o.retention_time.count() > 0) mine.max_age = true, mine.cfg.max_age = o.retention_time;
    if (o.max_messages > 0) mine.max_msgs = true, mine.cfg.max_msgs = o.max_messages;
    if (o.max_bytes > 0) mine.max_bytes = true, mine.cfg.max_bytes = o.max_bytes;
    if (o.max_message_size > 0) mine.max_msg_size = true, mine.cfg.max_msg_size = o.max_message_size;
    if (o.replicas > 0) mine.replicas = true, mine.cfg.num_replicas = o.replicas;
    if (o.storage) mine.storage = true, mine.cfg.storage = *o.storage;
    if (o.discard) mine.discard = true, mine.cfg.discard = *o.discard;
    if (o.duplicate_window.count() > 0) mine.duplicate_window = true, mine.cfg.duplicate_window = o.duplicate_window;
    auto diff = differences(shared, mine);
    if (!diff.empty()) {
      message = "topic " + std::string(topic) + " would change the shared stream " + shared.name + ": " + join(diff);
      return error::topic_config_conflict;
    }
    return {};
  }
  out = wanted_stream{};
  auto& c = out.cfg;
  c.name = event_bus::stream_name_for(topic);
  c.subjects.emplace_back(topic);
  c.storage = o.storage.value_or(storage_type::file);
  out.storage = true;
  if (o.retention_time.count() > 0) out.max_age = true, c.max_age = o.retention_time;
  if (o.max_messages > 0) out.max_msgs = true, c.max_msgs = o.max_messages;
  if (o.max_bytes > 0) out.max_bytes = true, c.max_bytes = o.max_bytes;
  if (o.max_message_size > 0) out.max_msg_size = true, c.max_msg_size = o.max_message_size;
  c.num_replicas = o.replicas > 0 ? o.replicas : 1;
  out.replicas = true;
  if (o.discard) out.discard = true, c.discard = *o.discard;
  if (o.duplicate_window.count() > 0) out.duplicate_window = true, c.duplicate_window = o.duplicate_window;
  if (!o.description.empty()) out.description = true, c.description = o.description;
  return {};
}

asio::awaitable<error_code> event_bus_impl::ensure_stream(const wanted_stream& want, topic_strategy strategy,
                                                          bool lookup_first, topic_configure_result& result) {
  const auto& name = want.cfg.name;
  result.stream = name;
  stream_info info;
  bool have_info = false;
  if (lookup_first || strategy == topic_strategy::validate_only) {
    lookups_.add(1);
    auto [ec, si] = co_await js_.get_stream_info(name, use_ec);
    if (!ec) {
      info = std::move(si);
      have_info = true;
    } else if (!is_missing_stream(ec) || ec == error::no_responders) {
      result.message = "stream info " + name + ": " + ec.message();
      if (ec.category() == jetstream_category()) result.message += " (" + js_.last_api_error().description + ")";
      co_return ec;
    } else if (strategy == topic_strategy::validate_only) {
      result.message = "stream " + name + " does not exist";
      co_return error_code(error::stream_not_found_for_topic);
    }
  }
  if (!have_info) {
    if (strategy == topic_strategy::validate_only) co_return error_code(error::stream_not_found_for_topic);
    auto [ec, si] = co_await js_.create_stream(want.cfg, use_ec);
    if (!ec) {
      // The server answers CREATE for an identical existing stream with success and did_create false.
      if (si.did_create) {
        created_.add(1);
        result.created = true;
      }
      streams_.insert(name);
      co_return error_code{};
    }
    if (!(ec.category() == jetstream_category() && ec.value() == jetstream_errc::stream_name_in_use)) {
      result.message = "create stream " + name + ": " + ec.message();
      if (ec.category() == jetstream_category()) result.message += " (" + js_.last_api_error().description + ")";
      co_return ec;
    }
    // It exists with another configuration.
    if (strategy == topic_strategy::create_only) {
      streams_.insert(name);
      co_return error_code{};
    }
    lookups_.add(1);
    auto [iec, si2] = co_await js_.get_stream_info(name, use_ec);
    if (iec) {
      result.message = "stream info " + name + ": " + iec.message();
      co_return iec;
    }
    info = std::move(si2);
  }
  streams_.insert(name);
  result.differences = differences(info.config, want);
  if (result.differences.empty() || strategy == topic_strategy::create_only) co_return error_code{};
  if (strategy == topic_strategy::validate_only) {
    result.message = "stream " + name + " differs: " + join(result.differences);
    co_return error_code(error::stream_config_mismatch);
  }
  // create_or_update
  stream_config next = merged(info.config, want);
  auto [uec, ui] = co_await js_.update_stream(next, use_ec);
  if (uec) {
    result.message = "update stream " + name + ": " + uec.message();
    if (uec.category() == jetstream_category()) result.message += " (" + js_.last_api_error().description + ")";
    co_return uec;
  }
  updated_.add(1);
  result.updated = true;
  co_return error_code{};
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
  std::uint64_t id = next_id_++;
  auto& fresh = topics_[topic];
  fresh.id = id;
  topic_by_id_[id] = topic;
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
  for (auto& w : waiters) complete(cimpl_->strand_, std::move(w), ec);
  co_return ec;
}

void event_bus_impl::drop(std::uint64_t id) {
  auto it = topic_by_id_.find(id);
  if (it == topic_by_id_.end()) return;
  auto t = topics_.find(it->second);
  if (t != topics_.end() && t->second.ready) {
    streams_.erase(t->second.stream);
    topics_.erase(t);
    topic_by_id_.erase(it);
    repairs_.add(1);
    cached_streams_.store(streams_.size(), std::memory_order_relaxed);
  }
}

void event_bus_impl::on_publish_outcome(std::uint64_t tag, error_code ec, std::chrono::nanoseconds elapsed) {
  if (!ec) {
    acked_.add(1);
    latency_.record(elapsed);
    return;
  }
  if (is_missing_stream(ec)) drop(tag >> 1);
  if (tag & async_flag) failed_.add(1);
}

void event_bus_impl::publish_options_for(const topic_entry& e, const bus_publish_options& in, bool async,
                                         publish_options& out) {
  out.hdrs = in.hdrs;
  out.timeout = in.timeout;
  out.tag = (e.id << 1) | (async ? async_flag : 0);
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

asio::awaitable<std::tuple<error_code, pub_ack>> event_bus_impl::publish_op(std::string_view topic,
                                                                           std::string_view payload,
                                                                           const bus_publish_options& opts) {
  std::tuple<error_code, pub_ack> r;
  auto& [ec, ack] = r;
  auto it = topics_.find(topic);
  if (it != topics_.end() && it->second.ready) {
    hits_.add(1);
  } else {
    std::string key(topic);
    ec = co_await ensure_topic(std::move(key));
    if (ec) {
      failed_.add(1);
      co_return r;
    }
    it = topics_.find(topic);
    if (it == topics_.end()) {  // removed meanwhile
      ec = error::stream_not_found_for_topic;
      failed_.add(1);
      co_return r;
    }
  }
  if (!it->second.persistent) {
    ec = std::get<0>(co_await conn_.publish(topic, payload, opts.hdrs, {}, use_ec));
    if (ec) failed_.add(1);
    else core_published_.add(1);
    co_return r;
  }
  publish_options popts;
  publish_options_for(it->second, opts, false, popts);
  for (int attempt = 0;; ++attempt) {
    published_.add(1);
    r = co_await js_.publish(topic, payload, popts, use_ec);
    if (!ec || !is_missing_stream(ec) || attempt == 1) break;
    // The stream is gone: the observer dropped the entry. Repair per the strategy, then retry once with the
    // same message id.
    if (strategy_.load(std::memory_order_relaxed) == topic_strategy::skip) {
      set_error("topic " + std::string(topic) + ": its stream is missing (" + ec.message() +
                ") and the skip strategy does not re-create it");
      ec = error::stream_not_found_for_topic;
      break;
    }
    std::string key(topic);
    auto rec = co_await ensure_topic(std::move(key));
    if (rec) {
      ec = rec;
      break;
    }
    it = topics_.find(topic);
    if (it == topics_.end()) break;
    popts.tag = it->second.id << 1;
  }
  if (ec) failed_.add(1);
  co_return r;
}

asio::awaitable<std::tuple<error_code, ack_future>> event_bus_impl::publish_async_op(
    std::string_view topic, std::string_view payload, const bus_publish_options& opts) {
  std::tuple<error_code, ack_future> r;
  auto& [ec, fut] = r;
  auto it = topics_.find(topic);
  if (it != topics_.end() && it->second.ready) {
    hits_.add(1);
  } else {
    std::string key(topic);
    ec = co_await ensure_topic(std::move(key));
    if (!ec) {
      it = topics_.find(topic);
      if (it == topics_.end()) ec = error::stream_not_found_for_topic;
    }
    if (ec) {
      failed_.add(1);
      co_return r;
    }
  }
  if (!it->second.persistent) {
    ec = std::get<0>(co_await conn_.publish(topic, payload, opts.hdrs, {}, use_ec));
    if (ec) {
      failed_.add(1);
      co_return r;
    }
    core_published_.add(1);
    fut = ack_future(jimpl_->make_resolved(error_code{}));
    co_return r;
  }
  publish_options popts;
  publish_options_for(it->second, opts, true, popts);
  published_.add(1);
  if (auto* s = jimpl_->try_start(topic, payload, popts, ec)) {
    s->has_future = true;
    fut = ack_future(s);
    co_return r;
  }
  if (!ec) r = co_await js_.publish_async(topic, payload, popts, use_ec);
  if (ec) failed_.add(1);
  co_return r;
}

asio::awaitable<error_code> event_bus_impl::configure_op(std::string topic, topic_options opts,
                                                         topic_strategy strategy, topic_configure_result& result) {
  auto self = shared_from_this();
  result.topic = topic;
  if (!protocol::is_valid_publish_subject(topic)) {
    result.message = "invalid topic '" + topic + "'";
    co_return error_code(error::invalid_subject);
  }
  {
    std::lock_guard lock(mutex_);
    registry_[topic] = opts;
  }
  bool persistent = is_persistent(opts);
  wanted_stream want;
  if (persistent) {
    if (!cfg_.jetstream_enabled) {
      result.message = "topic " + topic + " is persistent but JetStream is disabled";
      co_return error_code(error::jetstream_not_enabled);
    }
    if (auto ec = wanted_for(topic, opts, want, result.message)) co_return ec;
    result.stream = want.cfg.name;
    if (strategy != topic_strategy::skip) {
      // create_only and create_or_update go straight to CREATE (idempotent for an identical config);
      // validate_only looks first.
      auto ec = co_await ensure_stream(want, strategy, false, result);
      if (ec) {
        if (result.message.empty()) result.message = ec.message();
        result.message = "topic " + topic + ": " + result.message;
        // A stale entry must not outlive a failed configuration.
        auto it = topics_.find(topic);
        if (it != topics_.end() && it->second.ready) {
          topic_by_id_.erase(it->second.id);
          topics_.erase(it);
        }
        co_return ec;
      }
    }
  }
  // Fill the cache. A resolution already under way for this topic finishes on its own.
  auto it = topics_.find(topic);
  if (it == topics_.end()) {
    auto& e = topics_[topic];
    e.id = next_id_++;
    topic_by_id_[e.id] = topic;
    it = topics_.find(topic);
  } else if (!it->second.ready) {
    co_return error_code{};
  }
  it->second.ready = true;
  it->second.persistent = persistent;
  it->second.stream = want.cfg.name;
  it->second.replicated = want.cfg.num_replicas > 1;
  cached_streams_.store(streams_.size(), std::memory_order_relaxed);
  co_return error_code{};
}

void event_bus_impl::configure_many(
    std::vector<topic_config> topics,
    asio::any_completion_handler<void(error_code, std::vector<topic_configure_result>)> h) {
  struct gather {
    std::vector<topic_configure_result> results;
    std::vector<error_code> errors;
    std::size_t left = 0;
    // optional + emplace: Boost 1.81's any_completion_handler move-assignment recurses without end.
    std::optional<asio::any_completion_handler<void(error_code, std::vector<topic_configure_result>)>> handler;
  };
  auto g = std::make_shared<gather>();
  g->results.resize(topics.size());
  g->errors.resize(topics.size());
  g->left = topics.size();
  g->handler.emplace(std::move(h));
  auto strategy = strategy_.load(std::memory_order_relaxed);
  auto finish = [this, g] {
    error_code first;
    for (std::size_t i = 0; i < g->errors.size(); ++i) {
      if (g->errors[i]) {
        first = g->errors[i];
        set_error(g->results[i].message);
        break;
      }
    }
    complete(cimpl_->strand_, std::move(*g->handler), first, std::move(g->results));
  };
  if (topics.empty()) return finish();
  for (std::size_t i = 0; i < topics.size(); ++i) {
    asio::co_spawn(cimpl_->strand_,
                   configure_op(std::move(topics[i].name), std::move(topics[i].options), strategy, g->results[i]),
                   [g, i, finish](std::exception_ptr e, error_code ec) {
                     if (e) ec = error::invalid_argument;
                     g->errors[i] = ec;
                     if (--g->left == 0) finish();
                   });
  }
}

asio::awaitable<error_code> event_bus_impl::start_op() {
  auto self = shared_from_this();
  auto [ec] = co_await conn_.connect(use_ec);
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
  strategy_.store(cfg_.strategy);
  co_return error_code{};
}

}  // namespace detail

// ---- public API ----

event_bus::event_bus(asio::any_io_executor ex, event_bus_config cfg)
    : impl_(std::make_shared<detail::event_bus_impl>(std::move(ex), std::move(cfg))) {
  impl_->jimpl_->observer_ = [w = std::weak_ptr<detail::event_bus_impl>(impl_)](std::uint64_t tag, error_code e,
                                                                             std::chrono::nanoseconds d) {
    if (auto s = w.lock()) s->on_publish_outcome(tag, e, d);
  };
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
  asio::co_spawn(impl->cimpl_->strand_, impl->start_op(),
                 [impl, h = std::move(h)](std::exception_ptr e, error_code ec) mutable {
                   if (e) ec = error::invalid_argument;
                   detail::complete(impl->cimpl_->strand_, std::move(h), ec);
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
  asio::co_spawn(impl->cimpl_->strand_, configure_one(impl, std::move(topic), std::move(opts)),
                 [impl, h = std::move(h)](std::exception_ptr e,
                                          std::tuple<error_code, topic_configure_result> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->strand_, std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

void event_bus::configure_many_impl(
    std::vector<topic_config> topics,
    asio::any_completion_handler<void(error_code, std::vector<topic_configure_result>)> h) {
  auto impl = impl_;
  asio::dispatch(impl->cimpl_->strand_, [impl, t = std::move(topics), h = std::move(h)]() mutable {
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
  asio::dispatch(impl_->cimpl_->strand_, [impl = impl_, t = std::string(topic)] {
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
  asio::co_spawn(impl->cimpl_->strand_, publish_owned(impl, std::move(topic), std::move(payload), std::move(opts)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, pub_ack> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->strand_, std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

void event_bus::publish_async_impl(std::string topic, std::string payload, bus_publish_options opts,
                                   asio::any_completion_handler<void(error_code, ack_future)> h) {
  // The bytes are owned here, so the frame can be queued from the copy.
  auto impl = impl_;
  asio::co_spawn(impl->cimpl_->strand_,
                 publish_async_owned(impl, std::move(topic), std::move(payload), std::move(opts)),
                 [impl, h = std::move(h)](std::exception_ptr e, std::tuple<error_code, ack_future> r) mutable {
                   if (e) std::get<0>(r) = error::invalid_argument;
                   detail::complete(impl->cimpl_->strand_, std::move(h), std::get<0>(r), std::move(std::get<1>(r)));
                 });
}

asio::awaitable<std::tuple<error_code, pub_ack>> event_bus::publish_awaitable_ec(std::string_view topic,
                                                                                std::string_view payload,
                                                                                const bus_publish_options& opts) {
  if (impl_->conn_.on_owner_thread()) co_return co_await impl_->publish_op(topic, payload, opts);
  auto op = publish_owned(impl_, std::string(topic), std::string(payload), opts);
  co_return co_await asio::co_spawn(impl_->cimpl_->strand_, std::move(op), asio::use_awaitable);
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
  co_return co_await asio::co_spawn(im.cimpl_->strand_, std::move(op), asio::use_awaitable);
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
    return detail::complete(impl->cimpl_->strand_, std::move(h), error_code(error::invalid_subject), subscription{});
  impl->conn_.subscribe(
      topic, {},
      [impl, fn = std::move(fn), h = std::move(h)](error_code ec, subscription sub) mutable {
        if (!ec) asio::co_spawn(impl->cimpl_->strand_, deliver(sub, std::move(fn)), asio::detached);
        detail::complete(impl->cimpl_->strand_, std::move(h), ec, std::move(sub));
      });
}

bus_metrics event_bus::metrics() const noexcept {
  const auto& im = *impl_;
  bus_metrics m;
  m.published = im.published_.get();
  m.acked = im.acked_.get();
  m.failed = im.failed_.get();
  m.core_published = im.core_published_.get();
  m.stream_lookups = im.lookups_.get();
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

std::string event_bus::stream_name_for(std::string_view topic) {
  std::string out;
  out.reserve(topic.size() + 9);
  bool lossy = false;
  for (char c : topic) {
    auto u = static_cast<unsigned char>(c);
    if (c == '.') {
      out += '_';
    } else if (c == '_' || c == '*' || c == '>' || c == '/' || c == '\\' || u <= ' ' || u >= 0x7f) {
      out += '_';
      lossy = true;
    } else {
      out += c;
    }
  }
  if (lossy || out.size() > 200 || out.empty()) {
    if (out.size() > 200) out.resize(200);
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (char c : topic) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    char buf[20];
    int n = std::snprintf(buf, sizeof buf, "_%08x", static_cast<unsigned>(h ^ (h >> 32)));
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

void event_bus::close() {
  impl_->conn_.close();
}

}  // namespace natsbus
