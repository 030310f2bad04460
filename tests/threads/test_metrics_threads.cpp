// Scrapes from other threads while a bus on a thread pool publishes to topics it resolves as it goes and a durable
// subscription handles: the collectors read only what is safe to read off the bus's strand. Built with
// -fsanitize=thread by scripts/tsan.sh, this is the data-race check for metrics.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "http_probe.hpp"
#include "nats_server.hpp"

#include <natsbus/event_bus.hpp>
#include <natsbus/metrics.hpp>
#include <natsbus/metrics_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <thread>

namespace asio = boost::asio;
using natsbus::test::nats_server;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(metrics_threads)

BOOST_AUTO_TEST_CASE(scrapes_from_other_threads_while_the_bus_works) {
  nats_server server;
  asio::thread_pool pool(4);
  natsbus::event_bus_config cfg;
  cfg.connection.servers = {server.url()};
  cfg.connection.name = "mt-metrics";
  cfg.default_topic_options.persistence = natsbus::topic_persistence::persistent;
  cfg.default_topic_options.storage = natsbus::storage_type::memory;
  natsbus::event_bus bus(pool.get_executor(), cfg);
  natsbus::metrics::registry reg;
  auto registered = reg.add(bus);
  auto& app = reg.counter_family("mt_app_events_total", "x", {"thread"});
  bus.start(asio::use_future).get();

  std::atomic<int> handled{0};
  natsbus::event_handler_fn handler = [&](const natsbus::bus_event&) -> asio::awaitable<natsbus::handle_result> {
    ++handled;
    co_return natsbus::handle_result::ok();
  };
  natsbus::subscribe_options so;
  so.group = "mt";
  so.max_concurrency = 4;
  auto sub = bus.subscribe("mt.metrics.t0", handler, so, asio::use_future).get();
  auto server_ep = natsbus::metrics_server::start(pool.get_executor(), reg,
                                                  asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0),
                                                  natsbus::bus_readiness(bus));
  const auto port = server_ep.local_endpoint().port();

  std::atomic<bool> stop{false};
  std::atomic<int> scrapes{0}, ready_checks{0}, http_scrapes{0}, http_failures{0};  // Boost.Test: main thread only
  std::vector<std::thread> scrapers;
  scrapers.emplace_back([&] {
    std::string text;
    while (!stop) {
      text.clear();
      reg.write_prometheus(text);
      app.with({"direct"}).inc();
      ++scrapes;
    }
  });
  scrapers.emplace_back([&] {
    auto ready = natsbus::bus_readiness(bus);
    while (!stop) {
      (void)ready();
      ++ready_checks;
      app.with({"ready"}).inc();
    }
  });
  scrapers.emplace_back([&] {
    while (!stop) {
      auto r = natsbus::test::http_get(port, "/metrics", false, 5s);
      ++http_scrapes;
      if (r.status != 200) ++http_failures;
    }
  });

  constexpr int publishers = 20, per_publisher = 50, topics = 10;
  std::atomic<int> acked{0}, failed{0}, finished{0};
  std::promise<void> all;
  for (int p = 0; p < publishers; ++p) {
    asio::co_spawn(
        pool,
        [](natsbus::event_bus& b, int p, std::atomic<int>& ok, std::atomic<int>& bad, std::atomic<int>& fin,
           std::promise<void>& done) -> asio::awaitable<void> {
          for (int i = 0; i < per_publisher; ++i) {
            const std::string topic = "mt.metrics.t" + std::to_string((p + i) % topics);
            auto [ec, ack] = co_await b.publish(topic, "x", asio::as_tuple(asio::use_awaitable));
            (ec ? bad : ok)++;
          }
          if (++fin == publishers) done.set_value();
        }(bus, p, acked, failed, finished, all),
        asio::detached);
  }
  BOOST_REQUIRE(all.get_future().wait_for(60s) == std::future_status::ready);
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (handled < publishers * per_publisher / topics && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  stop = true;
  for (auto& t : scrapers) t.join();
  BOOST_TEST(acked.load() == publishers * per_publisher);
  BOOST_TEST(failed.load() == 0);
  BOOST_TEST(handled.load() == publishers * per_publisher / topics);
  BOOST_TEST(scrapes.load() > 0);
  BOOST_TEST(ready_checks.load() > 0);
  BOOST_TEST(http_scrapes.load() > 0);
  BOOST_TEST(http_failures.load() == 0);

  std::string text;
  reg.write_prometheus(text);
  for (int t = 0; t < topics; ++t) {
    const std::string line = "natsbus_bus_topic_acks_total{client=\"mt-metrics\",topic=\"mt.metrics.t" +
                             std::to_string(t) + "\"} " + std::to_string(publishers * per_publisher / topics) + "\n";
    BOOST_TEST(text.find(line) != std::string::npos, line);
  }
  server_ep.stop();
  sub.stop();
  bus.close();
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END()
