// natsbus quickstart: the event bus in one file.
//
//   natsbus-quickstart [--url nats://127.0.0.1:4222] [--msgs 10000] [--keep]
//
// 1. builds an event_bus_config in code and starts the bus;
// 2. configures three persistent topics at once under create_only (one stream per topic, created if missing);
// 3. switches to skip: from now on a publish never asks the server about streams;
// 4. publishes N messages round-robin over the topics with publish_async, a window of ack futures in flight,
//    and awaits every ack;
// 5. shows an ephemeral topic: core NATS publish/subscribe, no stream;
// 6. deletes the three streams (unless --keep).
#include <natsbus/event_bus.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view presence_topic = "chat.presence";

struct args {
  std::string url = "nats://127.0.0.1:4222";
  std::size_t msgs = 10000;
  bool keep = false;
};

args parse_args(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(f) + " needs a value");
      return argv[++i];
    };
    if (f == "--url") {
      a.url = value();
    } else if (f == "--msgs") {
      auto v = value();
      char* end = nullptr;
      a.msgs = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') throw std::invalid_argument("--msgs: not a number: " + v);
    } else if (f == "--keep") {
      a.keep = true;
    } else {
      throw std::invalid_argument("unknown argument " + std::string(f) +
                                  " (usage: natsbus-quickstart [--url URL] [--msgs N] [--keep])");
    }
  }
  return a;
}

// Plain functions build what the coroutine needs (see the GCC 12 notes in the README).
natsbus::event_bus_config make_config(const args& a) {
  natsbus::event_bus_config c;
  c.connection.servers = {a.url};
  c.connection.name = "quickstart";
  c.strategy = natsbus::topic_strategy::create_only;
  c.default_topic_options.storage = natsbus::storage_type::memory;
  return c;
}

std::vector<std::string> business_topics() {
  return {"business.orders.created", "business.payments.completed", "business.users.registered"};
}

// Options given to configure_topic replace the bus's default_topic_options (they are not merged), so start
// from the defaults to keep the memory storage.
std::vector<natsbus::topic_config> topic_configs(const natsbus::event_bus_config& c,
                                                 const std::vector<std::string>& names) {
  std::vector<natsbus::topic_config> out;
  for (const auto& n : names) {
    natsbus::topic_config t;
    t.name = n;
    t.options = c.default_topic_options;
    t.options.persistence = natsbus::topic_persistence::persistent;
    t.options.retention_time = 1h;
    t.options.max_messages = 1000000;
    out.push_back(std::move(t));
  }
  return out;
}

natsbus::topic_options ephemeral_options() {
  natsbus::topic_options o;
  o.persistence = natsbus::topic_persistence::ephemeral;
  return o;
}

// What the presence subscription collected; `wake` is the condition variable the coroutine waits on.
struct inbox {
  std::vector<std::string> received;
  asio::steady_timer* wake = nullptr;
};

natsbus::event_bus::message_handler collect_into(inbox& box) {
  return [&box](const natsbus::message& m) {
    box.received.push_back(m.subject + ": " + m.payload);
    box.wake->cancel();  // wakes the waiting coroutine
  };
}

std::string presence_payload(int i) {
  static const char* const who[] = {"alice", "bob", "carol"};
  return std::string(R"({"user":")") + who[i % 3] + R"(","status":"online"})";
}

[[noreturn]] void fail(const std::string& what, const natsbus::error_code& ec, const std::string& detail) {
  throw std::runtime_error(what + ": " + ec.message() + (detail.empty() ? "" : " (" + detail + ")"));
}

double micros(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1000.0; }

// Publishes args.msgs messages round-robin over `topics`, at most `window` acks outstanding; awaits them all.
asio::awaitable<void> publish_all(natsbus::event_bus& bus, const std::vector<std::string>& topics, const args& a,
                                  std::size_t window) {
  std::deque<natsbus::ack_future> in_flight;
  std::size_t acked = 0, failed = 0;
  std::string first_error;
  char buf[64];
  auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < a.msgs; ++i) {
    int n = std::snprintf(buf, sizeof buf, R"({"seq":%zu})", i);
    std::string_view payload(buf, static_cast<std::size_t>(n));
    const std::string& topic = topics[i % topics.size()];
    auto [ec, fut] = co_await bus.publish_async(topic, payload, use_ec);
    if (ec) {
      if (failed++ == 0) first_error = ec.message() + " " + bus.last_error();
      continue;
    }
    in_flight.push_back(std::move(fut));
    // Reap what has resolved (no suspension for a ready future); wait on the oldest only when the window is full.
    while (!in_flight.empty() && (in_flight.front().ready() || in_flight.size() >= window)) {
      auto [aec, ack] = co_await in_flight.front().get(use_ec);
      if (aec) {
        if (failed++ == 0) first_error = aec.message();
      } else {
        ++acked;
      }
      in_flight.pop_front();
    }
  }
  while (!in_flight.empty()) {
    auto [aec, ack] = co_await in_flight.front().get(use_ec);
    if (aec) {
      if (failed++ == 0) first_error = aec.message();
    } else {
      ++acked;
    }
    in_flight.pop_front();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("published %zu messages over %zu topics: %zu acked, %zu failed in %.3f s (%.0f msgs/s, window %zu)\n",
              a.msgs, topics.size(), acked, failed, secs, static_cast<double>(acked) / secs, window);
  if (failed) throw std::runtime_error("publish failed: " + first_error);
}

asio::awaitable<void> presence_demo(natsbus::event_bus& bus) {
  auto ex = co_await asio::this_coro::executor;
  auto opts = ephemeral_options();
  auto [cec, cres] = co_await bus.configure_topic(presence_topic, opts, use_ec);
  if (cec) fail("configure_topic chat.presence", cec, cres.message);
  std::printf("configured %s as ephemeral (stream: %s)\n", cres.topic.c_str(),
              cres.stream.empty() ? "none" : cres.stream.c_str());

  asio::steady_timer wake(ex);
  inbox box;
  box.wake = &wake;
  auto handler = collect_into(box);
  auto [sec, sub] = co_await bus.subscribe(presence_topic, handler, use_ec);
  if (sec) fail("subscribe chat.presence", sec, bus.last_error());

  const int count = 3;
  for (int i = 0; i < count; ++i) {
    auto payload = presence_payload(i);
    auto [pec, ack] = co_await bus.publish(presence_topic, payload, use_ec);
    if (pec) fail("publish chat.presence", pec, bus.last_error());
  }
  // The timer is the condition variable: the handler cancels it on every message; its expiry is the deadline.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (box.received.size() < count) {
    wake.expires_at(deadline);
    auto [wec] = co_await wake.async_wait(use_ec);
    if (!wec) throw std::runtime_error("chat.presence: only " + std::to_string(box.received.size()) + " of " +
                                       std::to_string(count) + " messages arrived within 5 s");
  }
  sub.unsubscribe();
  std::printf("received %zu ephemeral messages:\n", box.received.size());
  for (const auto& r : box.received) std::printf("  %s\n", r.c_str());
}

void print_metrics(const natsbus::bus_metrics& m) {
  std::printf("metrics: published=%llu acked=%llu failed=%llu core_published=%llu stream_lookups=%llu "
              "streams_created=%llu cache_hits=%llu cache_misses=%llu ack_p50=%.1f us ack_p99=%.1f us\n",
              static_cast<unsigned long long>(m.published), static_cast<unsigned long long>(m.acked),
              static_cast<unsigned long long>(m.failed), static_cast<unsigned long long>(m.core_published),
              static_cast<unsigned long long>(m.stream_lookups), static_cast<unsigned long long>(m.streams_created),
              static_cast<unsigned long long>(m.cache_hits), static_cast<unsigned long long>(m.cache_misses),
              micros(m.ack_latency_p50), micros(m.ack_latency_p99));
}

asio::awaitable<void> quickstart(args a) {
  auto ex = co_await asio::this_coro::executor;
  auto cfg = make_config(a);
  natsbus::event_bus bus(ex, cfg);

  auto [sec] = co_await bus.start(use_ec);
  if (sec) fail("start " + a.url, sec, bus.last_error());
  std::printf("connected to %s (server %s), strategy %s\n", a.url.c_str(), bus.conn().info().version.c_str(),
              std::string(natsbus::to_string(bus.get_topic_config_strategy())).c_str());

  // Every stream request in flight at once; one result per topic.
  auto topics = business_topics();
  auto configs = topic_configs(bus.config(), topics);
  auto [cec, results] = co_await bus.configure_topics(configs, use_ec);
  for (const auto& r : results)
    std::printf("  configure %-28s stream=%-28s created=%s%s%s\n", r.topic.c_str(), r.stream.c_str(),
                r.created ? "yes" : "no", r.message.empty() ? "" : " error: ", r.message.c_str());
  if (cec) fail("configure_topics", cec, bus.last_error());

  // The streams are known to exist: no more server calls to ensure them.
  bus.set_topic_config_strategy(natsbus::topic_strategy::skip);
  std::printf("strategy now %s\n", std::string(natsbus::to_string(bus.get_topic_config_strategy())).c_str());

  co_await publish_all(bus, topics, a, bus.config().jetstream.max_pending);
  print_metrics(bus.metrics());

  co_await presence_demo(bus);

  if (a.keep) {
    std::printf("keeping the streams (--keep)\n");
  } else {
    for (const auto& r : results) {
      auto [dec] = co_await bus.js().delete_stream(r.stream, use_ec);
      std::printf("  deleted stream %s%s%s\n", r.stream.c_str(), dec ? ": " : "", dec ? dec.message().c_str() : "");
    }
  }
  bus.close();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto a = parse_args(argc, argv);
    asio::io_context io(1);  // one thread: the bus runs on io's executor with no strand and no locks
    std::exception_ptr failure;
    asio::co_spawn(io, quickstart(a), [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "quickstart failed: " << e.what() << '\n';
    return 1;
  }
}
