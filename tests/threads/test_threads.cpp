// Multi-threaded io_context use: every public call from any thread, state on one strand. This binary is also
// built with -fsanitize=thread by scripts/tsan.sh (the ctest "tsan"), where it is the data-race check.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "nats_server.hpp"

#include <natsbus/event_bus.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <thread>
#include <tuple>
#include <vector>

namespace asio = boost::asio;
using natsbus::topic_strategy;
using natsbus::test::nats_server;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

natsbus::event_bus_config bus_config(const nats_server& s) {
  natsbus::event_bus_config c;
  c.connection.servers = {s.url()};
  c.default_topic_options.storage = natsbus::storage_type::memory;
  return c;
}

natsbus::topic_options memory_topic() {
  natsbus::topic_options o;
  o.persistence = natsbus::topic_persistence::persistent;
  o.storage = natsbus::storage_type::memory;
  return o;
}

struct fixture {
  nats_server server;
};

// Publishes `n` messages from its own thread pool coroutine, then counts down.
asio::awaitable<void> core_publisher(natsbus::connection& c, int n, std::atomic<int>& failed,
                                     std::atomic<int>& finished, std::promise<void>& done, int publishers) {
  for (int i = 0; i < n; ++i) {
    auto [ec] = co_await c.publish("mt.data", "x", use_ec);
    if (ec) ++failed;
  }
  if (++finished == publishers) done.set_value();
}

// Publishes on a pool thread (not the connection's strand) and keeps two futures in three: some are read with
// try_get, the rest awaited; every future is dropped on a pool thread.
asio::awaitable<void> future_publisher(natsbus::jetstream& js, int n, std::atomic<int>& acked,
                                       std::atomic<int>& failed, std::atomic<int>& finished, std::promise<void>& done,
                                       int publishers) {
  std::vector<natsbus::ack_future> kept;
  for (int i = 0; i < n; ++i) {
    auto [ec, f] = co_await js.publish_async("mtfut.data", "x", use_ec);
    if (ec) {
      ++failed;
      continue;
    }
    if (i % 3 != 0) kept.push_back(std::move(f));  // the others are dropped here, unawaited
  }
  for (auto& f : kept) {
    natsbus::error_code ec;
    natsbus::pub_ack ack;
    if (!f.try_get(ec, ack)) std::tie(ec, ack) = co_await f.get(use_ec);
    if (ec || ack.stream != "MTFUT") ++failed;
    else ++acked;
  }
  kept.clear();
  if (++finished == publishers) done.set_value();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(threads, fixture)

BOOST_AUTO_TEST_CASE(connection_used_from_many_threads) {
  asio::thread_pool pool(4);
  natsbus::connection_options o;
  o.servers = {server.url()};
  natsbus::connection conn(pool.get_executor(), o);
  conn.connect(asio::use_future).get();
  auto sub = conn.subscribe("mt.data", {}, asio::use_future).get();
  conn.flush(asio::use_future).get();

  // Coroutines on the pool (not on the connection's strand) and plain threads with futures, at once.
  constexpr int publishers = 8, per = 500, threads = 4, per_thread = 250;
  std::atomic<int> failed{0}, finished{0};
  std::promise<void> all;
  for (int p = 0; p < publishers; ++p)
    asio::co_spawn(pool, core_publisher(conn, per, failed, finished, all, publishers), asio::detached);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) conn.publish("mt.data", "y", asio::use_future).get();
      (void)conn.stats();
      (void)conn.is_connected();
    });
  for (auto& t : ts) t.join();
  BOOST_REQUIRE(all.get_future().wait_for(30s) == std::future_status::ready);
  conn.flush(asio::use_future).get();
  const int total = publishers * per + threads * per_thread;
  int got = 0;
  while (got < total) {
    auto m = sub.next(asio::use_future);
    BOOST_REQUIRE(m.wait_for(10s) == std::future_status::ready);
    m.get();
    ++got;
  }
  BOOST_TEST(got == total);
  BOOST_TEST(failed.load() == 0);
  // Requests from several threads share the one inbox.
  auto replier = conn.subscribe("mt.echo", {}, asio::use_future).get();
  std::thread echo([&] {
    for (int i = 0; i < 200; ++i) {
      auto m = replier.next(asio::use_future).get();
      conn.publish(m.reply, m.payload, asio::use_future).get();
    }
  });
  std::vector<std::thread> askers;
  std::atomic<int> answered{0};
  for (int t = 0; t < 4; ++t)
    askers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string body = std::to_string(t) + "-" + std::to_string(i);
        auto reply = conn.request("mt.echo", body, 5000ms, asio::use_future).get();
        if (reply.payload == body) ++answered;
      }
    });
  for (auto& t : askers) t.join();
  echo.join();
  BOOST_TEST(answered.load() == 200);
  conn.close();
  pool.join();
}

// The synchronous fast paths are for the connection's own thread: from another, try_publish_async says "not
// now" (no error); inside the connection's strand on a pool it starts the publish, and try_get reads the ack.
asio::awaitable<std::uint64_t> fast_paths_on_the_strand(natsbus::jetstream& js) {
  natsbus::ack_future f;
  natsbus::error_code ec;
  if (!js.try_publish_async("mttry.a", "x", f, ec)) co_return 0;
  auto [cec] = co_await js.publish_async_complete(use_ec);
  natsbus::pub_ack ack;
  if (cec || !f.try_get(ec, ack) || ec) co_return 0;
  co_return ack.seq;
}

BOOST_AUTO_TEST_CASE(jetstream_fast_paths_and_threads) {
  asio::thread_pool pool(2);
  natsbus::connection_options o;
  o.servers = {server.url()};
  natsbus::connection conn(pool.get_executor(), o);
  conn.connect(asio::use_future).get();
  natsbus::jetstream js(conn);
  natsbus::stream_config sc;
  sc.name = "MTTRY";
  sc.subjects = {"mttry.>"};
  sc.storage = natsbus::storage_type::memory;
  (void)js.create_stream(sc, asio::use_future).get();

  natsbus::ack_future f;
  natsbus::error_code ec;
  BOOST_TEST(!js.try_publish_async("mttry.a", "x", f, ec));
  BOOST_TEST(!ec);
  BOOST_TEST(!f.valid());
  auto seq = asio::co_spawn(js.get_executor(), fast_paths_on_the_strand(js), asio::use_future);
  BOOST_REQUIRE(seq.wait_for(10s) == std::future_status::ready);
  BOOST_TEST(seq.get() == 1u);
  conn.close();
  pool.join();
}

// Ack futures on a multi-threaded pool: awaited, read and dropped by coroutines on pool threads that are not the
// connection's strand, and by plain threads; under ThreadSanitizer this is their race check.
BOOST_AUTO_TEST_CASE(ack_futures_on_any_thread) {
  asio::thread_pool pool(4);
  natsbus::connection_options o;
  o.servers = {server.url()};
  natsbus::connection conn(pool.get_executor(), o);
  conn.connect(asio::use_future).get();
  natsbus::jetstream_options jo;
  jo.max_pending = 64;  // publishers also wait for room
  natsbus::jetstream js(conn, jo);
  natsbus::stream_config sc;
  sc.name = "MTFUT";
  sc.subjects = {"mtfut.>"};
  sc.storage = natsbus::storage_type::memory;
  (void)js.create_stream(sc, asio::use_future).get();

  constexpr int publishers = 6, per = 300, threads = 2, per_thread = 100;
  std::atomic<int> acked{0}, failed{0}, finished{0};
  std::promise<void> all;
  for (int p = 0; p < publishers; ++p)
    asio::co_spawn(pool, future_publisher(js, per, acked, failed, finished, all, publishers), asio::detached);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        // The gauges any thread may read while the executor changes them.
        if (js.pending() > jo.max_pending || js.max_pending_seen() > jo.max_pending) ++failed;
        auto f = js.publish_async("mtfut.data", "y", asio::use_future).get();
        if (i % 2) continue;  // dropped on this thread, unawaited
        try {
          if (f.get(asio::use_future).get().stream == "MTFUT") ++acked;
          else ++failed;
        } catch (const std::exception&) {
          ++failed;
        }
      }
    });
  for (auto& t : ts) t.join();
  BOOST_REQUIRE(all.get_future().wait_for(30s) == std::future_status::ready);
  js.publish_async_complete(asio::use_future).get();
  BOOST_TEST(failed.load() == 0);
  BOOST_TEST(acked.load() == publishers * (per - per / 3) + threads * per_thread / 2);
  BOOST_TEST(js.pending() == 0u);
  BOOST_TEST(js.max_pending_seen() >= 1u);
  BOOST_TEST(js.max_pending_seen() <= jo.max_pending);
  auto info = js.get_stream_info("MTFUT", asio::use_future).get();
  BOOST_TEST(info.state.messages == static_cast<std::uint64_t>(publishers * per + threads * per_thread));
  conn.close();
  pool.join();
}

// Strategy switches while publishers run on a multi-threaded pool; built with -fsanitize=thread this is the
// data-race check.
BOOST_AUTO_TEST_CASE(strategy_switch_under_concurrent_publishers) {
  asio::thread_pool pool(4);
  natsbus::event_bus bus(pool.get_executor(), bus_config(server));
  bus.start(asio::use_future).get();
  bus.configure_topic("race.topic", memory_topic(), asio::use_future).get();
  std::atomic<int> acked{0}, failed{0}, finished{0};
  std::promise<void> all;
  for (int p = 0; p < 100; ++p) {
    asio::co_spawn(
        pool,
        [](natsbus::event_bus& b, std::atomic<int>& ok, std::atomic<int>& bad, std::atomic<int>& fin,
           std::promise<void>& done) -> asio::awaitable<void> {
          for (int i = 0; i < 20; ++i) {
            auto [ec, ack] = co_await b.publish("race.topic", "x", use_ec);
            (ec ? bad : ok)++;
          }
          if (++fin == 100) done.set_value();
        }(bus, acked, failed, finished, all),
        asio::detached);
  }
  for (int i = 0; i < 50; ++i) {
    bus.set_topic_config_strategy(i % 2 ? topic_strategy::skip : topic_strategy::create_only);
    std::this_thread::yield();
  }
  bus.set_topic_config_strategy(topic_strategy::skip);
  BOOST_REQUIRE(all.get_future().wait_for(60s) == std::future_status::ready);
  BOOST_TEST(acked.load() == 2000);
  BOOST_TEST(failed.load() == 0);
  BOOST_TEST((bus.get_topic_config_strategy() == topic_strategy::skip));
  bus.close();
  pool.join();
}

// configure_topics (its window refilled in bursts, its requests sent through the JetStream context) while plain
// threads call configure_topic, on a multi-threaded pool: built with -fsanitize=thread, the race check for
// provisioning.
BOOST_AUTO_TEST_CASE(provisioning_from_many_threads) {
  asio::thread_pool pool(4);
  auto cfg = bus_config(server);
  cfg.max_provisioning_in_flight = 8;
  natsbus::event_bus bus(pool.get_executor(), cfg);
  bus.start(asio::use_future).get();
  std::vector<natsbus::topic_config> topics(60);
  for (std::size_t i = 0; i < topics.size(); ++i) {
    topics[i].name = "prov.batch.t" + std::to_string(i);
    topics[i].options = memory_topic();
  }
  auto batch = bus.configure_topics(topics, asio::use_future);
  constexpr int threads = 2, per_thread = 10;
  std::atomic<int> single_created{0}, single_failed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        try {
          auto name = "prov.single.t" + std::to_string(t) + "_" + std::to_string(i);
          if (bus.configure_topic(name, memory_topic(), asio::use_future).get().created) ++single_created;
        } catch (const std::exception&) {
          ++single_failed;
        }
      }
    });
  for (auto& t : ts) t.join();
  BOOST_REQUIRE(batch.wait_for(60s) == std::future_status::ready);
  auto results = batch.get();
  BOOST_REQUIRE(results.size() == topics.size());
  int created = 0;
  for (const auto& r : results) created += r.created ? 1 : 0;
  BOOST_TEST(created == 60);
  BOOST_TEST(single_failed.load() == 0);
  BOOST_TEST(single_created.load() == threads * per_thread);
  BOOST_TEST(bus.metrics().streams_created == 80u);
  BOOST_TEST(bus.list_configured_topics().size() == 80u);
  bus.close();
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END()
