// natsbus precreate: the event bus configured from YAML, its topics' streams pre-created at start-up.
//
//   natsbus-precreate [--config examples/eventbus.yaml] [--url nats://host:port] [--keep]
//
// Loads the configuration (a bad file exits 2 with a message naming the line and the field), starts the bus,
// which connects and configures every pre-creation topic under the pre-creation strategy with all the stream
// requests in flight at once, then lists the streams, publishes one message per topic and deletes the topics'
// streams (unless --keep).
#include <natsbus/bus_config.hpp>
#include <natsbus/event_bus.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifndef NATSBUS_EXAMPLE_CONFIG
#define NATSBUS_EXAMPLE_CONFIG "examples/eventbus.yaml"
#endif

namespace asio = boost::asio;

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

struct args {
  std::string config = NATSBUS_EXAMPLE_CONFIG;
  std::string url;  // empty: the file's urls
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
    if (f == "--config") a.config = value();
    else if (f == "--url") a.url = value();
    else if (f == "--keep") a.keep = true;
    else
      throw std::invalid_argument("unknown argument " + std::string(f) +
                                  " (usage: natsbus-precreate [--config PATH] [--url URL] [--keep])");
  }
  return a;
}

std::string str(std::string_view s) { return std::string(s); }

// "72h", "30m", "90s", "none" (0 is "unlimited" for max_age).
std::string duration_text(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  if (d.count() <= 0) return "none";
  auto s = duration_cast<seconds>(d).count();
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string limit_text(std::int64_t v) { return v < 0 ? "unlimited" : std::to_string(v); }

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

void print_topics(const natsbus::event_bus_config& c) {
  const auto& p = c.precreation;
  std::printf("pre-creation %s, strategy %s, %zu topics (mapping %s):\n", p.enabled ? "enabled" : "disabled",
              str(natsbus::to_string(p.strategy)).c_str(), p.topics.size(),
              c.mapping == natsbus::stream_mapping::shared ? "shared" : "per_topic");
  for (const auto& t : p.topics) {
    const auto& o = t.options;
    std::printf("  %-28s stream=%-28s retention=%s max_messages=%s storage=%s\n", t.name.c_str(),
                natsbus::event_bus::stream_name_for(t.name).c_str(), duration_text(o.retention_time).c_str(),
                limit_text(o.max_messages).c_str(), o.storage ? str(natsbus::protocol::to_string(*o.storage)).c_str() : "file (default)");
  }
}

// The streams the configuration's topics live on.
std::vector<std::string> topic_streams(const natsbus::event_bus_config& c) {
  std::vector<std::string> out;
  if (c.mapping == natsbus::stream_mapping::shared) {
    if (c.default_stream) out.push_back(c.default_stream->name);
    return out;
  }
  for (const auto& t : c.precreation.topics) out.push_back(natsbus::event_bus::stream_name_for(t.name));
  return out;
}

std::string payload_for(const std::string& topic) { return R"({"example":"precreate","topic":")" + topic + "\"}"; }

[[noreturn]] void fail(const std::string& what, const natsbus::error_code& ec, const std::string& detail) {
  throw std::runtime_error(what + ": " + ec.message() + (detail.empty() ? "" : " (" + detail + ")"));
}

asio::awaitable<void> precreate(natsbus::event_bus_config cfg, args a) {
  auto ex = co_await asio::this_coro::executor;
  natsbus::event_bus bus(ex, cfg);
  std::printf("strategy before start: %s\n", str(natsbus::to_string(bus.get_topic_config_strategy())).c_str());

  auto t0 = std::chrono::steady_clock::now();
  auto [sec] = co_await bus.start(use_ec);
  if (sec) fail("start", sec, bus.last_error());
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto m = bus.metrics();
  std::printf("started in %.1f ms (connect + pre-creation): streams created=%llu updated=%llu\n", ms,
              static_cast<unsigned long long>(m.streams_created), static_cast<unsigned long long>(m.streams_updated));
  std::printf("strategy after start: %s\n", str(natsbus::to_string(bus.get_topic_config_strategy())).c_str());

  auto [nec, names] = co_await bus.js().stream_names(std::string_view{}, use_ec);
  if (nec) fail("stream names", nec, bus.js().last_api_error().description);
  std::printf("%zu streams on the server:\n", names.size());
  for (const auto& name : names) {
    auto [iec, info] = co_await bus.js().get_stream_info(name, use_ec);
    if (iec) fail("stream info " + name, iec, bus.js().last_api_error().description);
    const auto& sc = info.config;
    std::printf("  %-28s subjects=%s max_msgs=%s max_age=%s storage=%s\n", name.c_str(), join(sc.subjects).c_str(),
                limit_text(sc.max_msgs).c_str(), duration_text(sc.max_age).c_str(),
                str(natsbus::protocol::to_string(sc.storage)).c_str());
  }

  // The runtime strategy is in force now; the cache knows every pre-created topic, so these cost no lookup.
  for (const auto& t : bus.config().precreation.topics) {
    auto payload = payload_for(t.name);
    auto [pec, ack] = co_await bus.publish(t.name, payload, use_ec);
    if (pec) fail("publish " + t.name, pec, bus.last_error());
    std::printf("  published to %-28s ack: stream=%s seq=%llu%s\n", t.name.c_str(), ack.stream.c_str(),
                static_cast<unsigned long long>(ack.seq), ack.duplicate ? " (duplicate)" : "");
  }
  m = bus.metrics();
  std::printf("metrics: published=%llu acked=%llu stream_lookups=%llu cache_hits=%llu cache_misses=%llu\n",
              static_cast<unsigned long long>(m.published), static_cast<unsigned long long>(m.acked),
              static_cast<unsigned long long>(m.stream_lookups), static_cast<unsigned long long>(m.cache_hits),
              static_cast<unsigned long long>(m.cache_misses));

  if (a.keep) {
    std::printf("keeping the streams (--keep)\n");
  } else {
    auto streams = topic_streams(bus.config());
    for (const auto& s : streams) {
      auto [dec] = co_await bus.js().delete_stream(s, use_ec);
      std::printf("  deleted stream %s%s%s\n", s.c_str(), dec ? ": " : "", dec ? dec.message().c_str() : "");
    }
  }
  bus.close();
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  natsbus::event_bus_config cfg;
  try {
    a = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "precreate: " << e.what() << '\n';
    return 2;
  }
  std::string message;
  if (auto ec = natsbus::load_event_bus_config(a.config, cfg, message)) {
    if (message.empty()) message = ec.message();
    // The message names the line and the field; an I/O error's message already starts with the path.
    if (!message.starts_with(a.config)) message = a.config + ": " + message;
    std::cerr << "precreate: " << message << '\n';
    return 2;
  }
  std::printf("loaded %s\n", a.config.c_str());
  if (!a.url.empty()) cfg.connection.servers = {a.url};
  std::printf("servers: %s, client name: %s\n", join(cfg.connection.servers).c_str(), cfg.connection.name.c_str());
  print_topics(cfg);

  try {
    asio::io_context io(1);
    std::exception_ptr failure;
    asio::co_spawn(io, precreate(cfg, a), [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "precreate failed: " << e.what() << '\n';
    return 1;
  }
}
