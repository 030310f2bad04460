// The library's own collectors: a connection's, a JetStream context's and an event bus's figures (with its topics
// and durable subscriptions), read at scrape time from counters their executors keep anyway; and the bus's
// readiness for /readyz.
#include "bus/bus_subscriber.hpp"
#include "bus/event_bus_impl.hpp"

#include <natsbus/metrics.hpp>
#include <natsbus/metrics_server.hpp>

#include <map>

namespace natsbus {

namespace {

using metrics::label;
using metrics::metric_type;
using metrics::sample_writer;

constexpr auto counter_t = metric_type::counter;
constexpr auto gauge_t = metric_type::gauge;

double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

void histogram(sample_writer::family f, std::span<const label> labels, const detail::latency_buckets& h) {
  std::array<std::uint64_t, detail::latency_buckets::buckets> counts{};
  double sum = 0;
  h.read(counts, sum);
  f.add_histogram(labels, metrics::latency_buckets(), counts, sum);
}

void write_connection(sample_writer& w, const detail::connection_impl& c, std::string_view client) {
  const auto st = c.stats();
  const label l[] = {{"client", client}};
  w.open("natsbus_connection_in_messages_total", "Messages received", counter_t).add(l, st.in_msgs);
  w.open("natsbus_connection_out_messages_total", "Messages sent", counter_t).add(l, st.out_msgs);
  w.open("natsbus_connection_in_bytes_total", "Bytes received", counter_t).add(l, st.in_bytes);
  w.open("natsbus_connection_out_bytes_total", "Bytes sent", counter_t).add(l, st.out_bytes);
  w.open("natsbus_connection_reconnects_total", "Reconnections", counter_t).add(l, st.reconnects);
  w.open("natsbus_connection_slow_consumer_dropped_messages_total",
         "Messages dropped because a subscription's queue was full", counter_t)
      .add(l, st.dropped_msgs);
  w.open("natsbus_connection_rtt_seconds", "The last PING/PONG round trip", gauge_t).add(l, seconds(st.rtt));
  w.open("natsbus_connection_connected", "1 while connected", gauge_t).add(l, std::uint64_t{c.connected()});
  w.open("natsbus_connection_subscriptions", "Live subscriptions, the library's own included", gauge_t)
      .add(l, std::uint64_t{st.subscriptions});
}

void write_jetstream(sample_writer& w, const detail::jetstream_impl& js, std::string_view client) {
  const auto st = js.stats();
  const label l[] = {{"client", client}};
  w.open("natsbus_jetstream_publishes_in_flight", "Publishes awaiting their acknowledgement", gauge_t)
      .add(l, std::uint64_t{st.in_flight});
  w.open("natsbus_jetstream_acks_total", "Publishes acknowledged", counter_t).add(l, st.acks);
  w.open("natsbus_jetstream_resends_total", "Publish frames sent again (503, reconnect, no ack in time)", counter_t)
      .add(l, st.resends);
  auto errors = w.open("natsbus_jetstream_publish_errors_total", "Publishes that failed, by kind", counter_t);
  const std::pair<std::string_view, std::uint64_t> kinds[] = {
      {"timeout", st.timeouts},         {"no_responders", st.no_responders}, {"api", st.api_errors},
      {"disconnected", st.disconnected}, {"closed", st.closed},              {"other", st.other_errors}};
  for (const auto& [kind, n] : kinds) errors.add({{"client", client}, {"kind", kind}}, n);
  histogram(w.open("natsbus_jetstream_ack_latency_seconds", "Publish to acknowledgement", metric_type::histogram), l,
            js.ack_latency());
}

// One (topic, group)'s figures; two subscriptions of the same group on one topic (one durable consumer) add up,
// so that every series is written once.
struct subscription_figures {
  subscriber_stats st;
  std::array<std::uint64_t, detail::latency_buckets::buckets> counts{};
  double sum = 0;
  void add(const detail::bus_subscriber& s) {
    const auto o = s.stats();
    st.received += o.received;
    st.redelivered += o.redelivered;
    st.duplicates += o.duplicates;
    st.handled += o.handled;
    st.retried += o.retried;
    st.dead_lettered += o.dead_lettered;
    st.timeouts += o.timeouts;
    st.running += o.running;
    st.waiting += o.waiting;
    st.lag += o.lag;
    st.oldest_unacked_age = std::max(st.oldest_unacked_age, o.oldest_unacked_age);
    st.consuming = st.consuming || o.consuming;
    std::array<std::uint64_t, detail::latency_buckets::buckets> c{};
    double s_sum = 0;
    s.handler_latency().read(c, s_sum);
    for (std::size_t i = 0; i < c.size(); ++i) counts[i] += c[i];
    sum += s_sum;
  }
};

void write_bus(sample_writer& w, const detail::event_bus_impl& bus, std::string_view client) {
  write_connection(w, *bus.cimpl_, client);
  write_jetstream(w, *bus.jimpl_, client);
  const label l[] = {{"client", client}};
  const auto& b = bus;
  w.open("natsbus_bus_cache_hits_total", "Publishes whose topic the stream cache knew", counter_t).add(l, b.hits_.get());
  w.open("natsbus_bus_cache_misses_total", "Topic resolutions (the stream cache did not know the topic)", counter_t)
      .add(l, b.misses_.get());
  w.open("natsbus_bus_stream_lookups_total", "STREAM.INFO requests sent", counter_t).add(l, b.lookups_.get());
  w.open("natsbus_bus_streams_created_total", "Streams created", counter_t).add(l, b.created_.get());
  w.open("natsbus_bus_streams_updated_total", "Streams updated", counter_t).add(l, b.updated_.get());
  w.open("natsbus_bus_repairs_total", "Cache entries dropped after a 503 or a missing stream (10059)", counter_t)
      .add(l, b.repairs_.get());
  w.open("natsbus_bus_cached_streams", "Streams the stream cache knows", gauge_t)
      .add(l, std::uint64_t{b.cached_streams_.load(std::memory_order_relaxed)});

  auto published = w.open("natsbus_bus_topic_publishes_total", "Publishes through the bus, by topic", counter_t);
  auto acked = w.open("natsbus_bus_topic_acks_total", "Persistent publishes acknowledged, by topic", counter_t);
  auto failed = w.open("natsbus_bus_topic_failures_total", "Publishes that failed, by topic", counter_t);
  std::vector<std::weak_ptr<detail::bus_subscriber>> weak_subs;
  {
    std::lock_guard lock(bus.scraped_.mutex);
    for (const auto& [topic, c] : bus.scraped_.topics) {
      const label tl[] = {{"client", client}, {"topic", topic}};
      published.add(tl, c->published.get());
      acked.add(tl, c->acked.get());
      failed.add(tl, c->failed.get());
    }
    weak_subs = bus.scraped_.subscribers;
  }
  // Outside the lock: the last reference to a subscription that has ended may be the one taken here.
  std::map<std::pair<std::string, std::string>, subscription_figures> subs;
  for (const auto& weak : weak_subs)
    if (auto s = weak.lock()) subs[{s->topic(), s->group()}].add(*s);

  auto received = w.open("natsbus_subscription_received_total", "Deliveries taken, redeliveries included", counter_t);
  auto redelivered = w.open("natsbus_subscription_redelivered_total", "Deliveries after the first", counter_t);
  auto duplicates = w.open("natsbus_subscription_duplicates_total",
                           "Deliveries of events already handled here (acked again, not handled)", counter_t);
  auto handled = w.open("natsbus_subscription_handled_total", "Events handled and acknowledged", counter_t);
  auto retried = w.open("natsbus_subscription_retried_total", "Handler failures retried", counter_t);
  auto dead = w.open("natsbus_subscription_dead_lettered_total", "Events sent to the dead-letter topic", counter_t);
  auto timeouts = w.open("natsbus_subscription_handler_timeouts_total", "Handlers cancelled at their timeout", counter_t);
  auto running = w.open("natsbus_subscription_running_handlers", "Handlers running", gauge_t);
  auto waiting = w.open("natsbus_subscription_waiting_events", "Events held behind their key or for a handler", gauge_t);
  auto lag = w.open("natsbus_subscription_lag_events", "Events not yet delivered or not yet acknowledged", gauge_t);
  auto oldest = w.open("natsbus_subscription_oldest_unacked_age_seconds", "Age of the oldest event held unacked", gauge_t);
  auto consuming = w.open("natsbus_subscription_consuming", "1 while the subscription consumes", gauge_t);
  auto duration = w.open("natsbus_subscription_handler_duration_seconds", "Handler run time, start to completion",
                         metric_type::histogram);
  for (const auto& [key, f] : subs) {
    const label sl[] = {{"client", client}, {"topic", key.first}, {"group", key.second}};
    received.add(sl, f.st.received);
    redelivered.add(sl, f.st.redelivered);
    duplicates.add(sl, f.st.duplicates);
    handled.add(sl, f.st.handled);
    retried.add(sl, f.st.retried);
    dead.add(sl, f.st.dead_lettered);
    timeouts.add(sl, f.st.timeouts);
    running.add(sl, std::uint64_t{f.st.running});
    waiting.add(sl, std::uint64_t{f.st.waiting});
    lag.add(sl, f.st.lag);
    oldest.add(sl, seconds(f.st.oldest_unacked_age));
    consuming.add(sl, std::uint64_t{f.st.consuming});
    duration.add_histogram(sl, metrics::latency_buckets(), f.counts, f.sum);
  }
}

std::string client_name(std::string_view given, const detail::connection_impl& c) {
  return given.empty() ? c.options().name : std::string(given);
}

}  // namespace

namespace metrics {

registration registry::add(const connection& c, std::string_view client) {
  std::weak_ptr<natsbus::detail::connection_impl> weak = c.impl();
  return add_collector([weak, name = client_name(client, *c.impl())](sample_writer& w) {
    if (auto im = weak.lock()) write_connection(w, *im, name);
  });
}

registration registry::add(const jetstream& js, std::string_view client) {
  std::weak_ptr<natsbus::detail::jetstream_impl> weak = js.impl();
  return add_collector([weak, name = client_name(client, js.impl()->connection())](sample_writer& w) {
    if (auto im = weak.lock()) write_jetstream(w, *im, name);
  });
}

registration registry::add(const event_bus& bus, std::string_view client) {
  std::weak_ptr<natsbus::detail::event_bus_impl> weak = bus.impl();
  return add_collector([weak, name = client_name(client, *bus.impl()->cimpl_)](sample_writer& w) {
    if (auto im = weak.lock()) write_bus(w, *im, name);
  });
}

}  // namespace metrics

readiness_check bus_readiness(const event_bus& bus) {
  std::weak_ptr<natsbus::detail::event_bus_impl> weak = bus.impl();
  return [weak]() -> readiness {
    auto b = weak.lock();
    if (!b) return {false, "the event bus is gone"};
    if (!b->cimpl_->connected()) {
      auto why = b->conn_.last_error();
      return {false, "not connected" + (why.empty() ? std::string() : ": " + why)};
    }
    std::vector<std::weak_ptr<detail::bus_subscriber>> subs;
    {
      std::lock_guard lock(b->scraped_.mutex);
      subs = b->scraped_.subscribers;
    }
    for (const auto& weak_sub : subs) {
      auto s = weak_sub.lock();
      if (!s || s->stats().consuming) continue;
      auto why = s->last_error();
      return {false, "subscription " + s->topic() + " (group " + s->group() + "): not consuming" +
                         (why.empty() ? std::string() : ": " + why)};
    }
    return {true, {}};
  };
}

}  // namespace natsbus
