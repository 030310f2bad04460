// Pull consumers against real nats-server processes: fetch (batches, expiry, no_wait, statuses), continuous consume
// (re-pulls, heartbeats, a deleted consumer, a server restart, a black-holed link), and every kind of ack.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "event_log.hpp"
#include "heap.hpp"
#include "nats_server.hpp"
#include "run.hpp"
#include "tcp_proxy.hpp"

#include <natsbus/connection.hpp>
#include <natsbus/consumer.hpp>
#include <natsbus/jetstream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <set>
#include <string>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::event_kind;
using natsbus::test::event_log;
using natsbus::test::nats_server;
using natsbus::test::run_coro;
using natsbus::test::tcp_proxy;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
using clock_type = std::chrono::steady_clock;

namespace {

natsbus::connection_options options_for(const std::string& url) {
  natsbus::connection_options o;
  o.servers = {url};
  o.reconnect_wait = 100ms;
  o.max_reconnects = -1;
  return o;
}

asio::awaitable<void> make_stream(natsbus::jetstream& js, const std::string& name, int messages,
                                  natsbus::storage_type storage = natsbus::storage_type::memory) {
  natsbus::stream_config cfg;
  cfg.name = name;
  cfg.subjects = {name + ".>"};
  cfg.storage = storage;
  co_await js.create_stream(cfg);
  for (int i = 1; i <= messages; ++i) co_await js.publish(name + ".m", "m" + std::to_string(i));
}

asio::awaitable<void> make_consumer(natsbus::jetstream& js, const std::string& stream, const std::string& name,
                                    std::chrono::milliseconds ack_wait = 30s, std::int64_t max_waiting = -1) {
  natsbus::consumer_config cc;
  cc.durable_name = name;
  cc.ack = natsbus::ack_policy::explicit_;
  cc.ack_wait = ack_wait;
  cc.max_waiting = max_waiting;
  co_await js.create_consumer(stream, cc);
}

// The consumer's info once its ack floor reaches `seq` (or after 5 s, for the test to report).
asio::awaitable<natsbus::consumer_info> ack_floor_reaches(natsbus::jetstream& js, const std::string& stream,
                                                          const std::string& name, std::uint64_t seq) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    auto info = co_await js.get_consumer_info(stream, name);
    if (info.ack_floor.stream_seq >= seq || std::chrono::steady_clock::now() > until) co_return info;
    co_await natsbus::test::pause(std::chrono::milliseconds(20));
  }
}

std::chrono::milliseconds since(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t);
}

struct fixture {
  nats_server server;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(pull_fetch, fixture)

BOOST_AUTO_TEST_CASE(a_batch_larger_than_the_stream_ends_with_the_pull) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "F", 3);
    co_await make_consumer(js, "F", "d");
    natsbus::pull_consumer pc(js, "F", "d");
    natsbus::fetch_options fo;
    fo.batch = 10;
    fo.expires = 1s;
    const auto t0 = clock_type::now();
    auto batch = co_await pc.fetch(fo);
    BOOST_TEST(batch.size() == 3u);
    BOOST_TEST(!batch.status());
    BOOST_TEST(since(t0).count() >= 900);  // the server ended the pull at its expiry (408)
    BOOST_TEST(since(t0).count() < 2500);
    int i = 0;
    for (auto& m : batch) {
      BOOST_TEST(m.payload() == "m" + std::to_string(++i));
      natsbus::message_info mi;
      BOOST_REQUIRE(!m.info(mi));
      BOOST_TEST(mi.stream == "F");
      BOOST_TEST(mi.consumer == "d");
      BOOST_TEST(mi.stream_sequence == static_cast<std::uint64_t>(i));
      BOOST_TEST(mi.consumer_sequence == static_cast<std::uint64_t>(i));
      BOOST_TEST(mi.num_delivered == 1u);
      BOOST_TEST(mi.num_pending == static_cast<std::uint64_t>(3 - i));
      BOOST_TEST(!m.ack());
      BOOST_TEST(m.ack() == error::already_acknowledged);
    }
    co_await c.flush();
    // The server applies acks after reading them (no event says when): bounded polling.
    auto info = co_await ack_floor_reaches(js, "F", "d", 3);
    BOOST_TEST(info.ack_floor.stream_seq == 3u);
    BOOST_TEST(info.num_ack_pending == 0);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(no_wait_returns_at_once) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "E", 0);
    co_await make_stream(js, "N", 5);
    co_await make_consumer(js, "E", "d");
    co_await make_consumer(js, "N", "d");
    natsbus::fetch_options fo;
    fo.batch = 10;
    fo.no_wait = true;
    {
      natsbus::pull_consumer pc(js, "E", "d");
      const auto t0 = clock_type::now();
      auto batch = co_await pc.fetch(fo);
      BOOST_TEST(batch.size() == 0u);
      BOOST_TEST(!batch.status());  // 404 (or 408 on 2.9): no messages, not an error
      BOOST_TEST(since(t0).count() < 500);
    }
    {
      natsbus::pull_consumer pc(js, "N", "d");
      const auto t0 = clock_type::now();
      auto batch = co_await pc.fetch(fo);
      BOOST_TEST(batch.size() == 5u);
      BOOST_TEST(since(t0).count() < 500);
      for (auto& m : batch) BOOST_TEST(!m.ack());
    }
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(nak_with_delay_ack_sync_and_term) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "K", 3);
    co_await make_consumer(js, "K", "d", 1s);
    natsbus::pull_consumer pc(js, "K", "d");
    natsbus::fetch_options fo;
    fo.batch = 3;
    fo.expires = 1s;
    auto batch = co_await pc.fetch(fo);
    BOOST_REQUIRE(batch.size() == 3u);
    BOOST_TEST(!batch[0].nak(1500ms));
    co_await batch[1].ack_sync();  // the server confirmed it
    BOOST_TEST(batch[1].ack() == error::already_acknowledged);
    BOOST_TEST(!batch[2].term("bad payload"));
    BOOST_TEST(batch[2].nak() == error::already_acknowledged);
    const auto t0 = clock_type::now();
    // The nak'ed message comes back after its delay, not at once (and not after ack_wait: 1 s).
    fo.batch = 5;
    fo.expires = 4s;
    auto again = co_await pc.fetch(fo);
    BOOST_REQUIRE(again.size() >= 1u);
    BOOST_TEST(again[0].payload() == "m1");
    BOOST_TEST(since(t0).count() >= 1300);
    natsbus::message_info mi;
    BOOST_REQUIRE(!again[0].info(mi));
    BOOST_TEST(mi.num_delivered == 2u);
    // Nothing else came back: the termed message is not redelivered (its ack_wait has passed meanwhile).
    for (std::size_t i = 1; i < again.size(); ++i) BOOST_TEST(again[i].payload() != "m3");
    BOOST_TEST(!again[0].ack());
    c.close();
  });
}

// Acknowledging with the next pull ("+NXT"): one frame acks a message and asks for the next.
BOOST_AUTO_TEST_CASE(ack_and_fetch_acks_and_pulls_in_one_frame) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "X", 5);
    co_await make_consumer(js, "X", "d");
    natsbus::pull_consumer pc(js, "X", "d");
    natsbus::fetch_options fo;
    fo.batch = 1;
    fo.expires = 2s;
    auto batch = co_await pc.fetch(fo);
    BOOST_REQUIRE(batch.size() == 1u);
    const auto out0 = c.stats().out_msgs;
    for (int i = 2; i <= 5; ++i) {
      auto next = co_await pc.ack_and_fetch(batch[0], fo);
      BOOST_TEST(batch[0].acknowledged());
      BOOST_TEST(batch[0].ack() == error::already_acknowledged);  // sends nothing
      BOOST_REQUIRE(next.size() == 1u);
      BOOST_TEST(next[0].payload() == "m" + std::to_string(i));
      batch = std::move(next);
    }
    BOOST_TEST(c.stats().out_msgs - out0 == 4u);  // one frame per ack and pull
    // A message that is already acked cannot carry a pull.
    BOOST_TEST(!batch[0].ack());
    auto [rec, refused] = co_await pc.ack_and_fetch(batch[0], fo, use_ec);
    (void)refused;
    BOOST_TEST(rec == error::already_acknowledged);
    co_await c.flush();
    auto info = co_await ack_floor_reaches(js, "X", "d", 5);
    BOOST_TEST(info.ack_floor.stream_seq == 5u);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(max_bytes_smaller_than_a_message) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "B", 0);
    co_await js.publish("B.m", std::string(1000, 'x'));
    co_await make_consumer(js, "B", "d");
    natsbus::pull_consumer pc(js, "B", "d");
    natsbus::fetch_options fo;
    fo.batch = 1;
    fo.max_bytes = 100;
    fo.expires = 2s;
    const auto t0 = clock_type::now();
    auto batch = co_await pc.fetch(fo);
    BOOST_TEST(batch.size() == 0u);
    BOOST_TEST(batch.status() == error::message_exceeds_max_bytes, batch.status().message());
    BOOST_TEST(since(t0).count() < 1500);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(a_second_pull_over_max_waiting_is_refused) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "W", 0);
    co_await make_consumer(js, "W", "d", 30s, 1);
    natsbus::pull_consumer first(js, "W", "d"), second(js, "W", "d");
    natsbus::fetch_options fo;
    fo.batch = 1;
    fo.expires = 2s;
    error_code status1, status2;
    bool done1 = false;
    asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
      auto b = co_await first.fetch(fo);
      status1 = b.status();
      done1 = true;
    }, asio::detached);
    co_await c.flush();
    co_await natsbus::test::pause(100ms);
    const auto t0 = clock_type::now();
    auto b2 = co_await second.fetch(fo);
    status2 = b2.status();
    BOOST_TEST(status2 == error::pull_request_refused, status2.message());
    BOOST_TEST(since(t0).count() < 1000);
    while (!done1) co_await natsbus::test::pause(50ms);
    BOOST_TEST(!status1);
    c.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(pull_consume, fixture)

BOOST_AUTO_TEST_CASE(consumes_and_acks_everything_with_bounded_pulls) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    constexpr int n = 2000;
    co_await make_stream(js, "C", n);
    co_await make_consumer(js, "C", "d");
    natsbus::pull_consumer pc(js, "C", "d");
    natsbus::consume_options co;
    co.max_messages = 100;
    BOOST_REQUIRE(!pc.consume(co));
    for (int i = 1; i <= n; ++i) {
      auto* m = pc.try_next();
      if (!m) m = co_await pc.next();
      BOOST_REQUIRE_EQUAL(std::string(m->payload()), "m" + std::to_string(i));
      BOOST_REQUIRE(!m->ack());
      BOOST_TEST(pc.get_stats().buffered + pc.get_stats().outstanding <= 100u);
    }
    co_await c.flush();
    auto info = co_await ack_floor_reaches(js, "C", "d", n);
    BOOST_TEST(info.ack_floor.stream_seq == static_cast<std::uint64_t>(n));
    BOOST_TEST(info.num_ack_pending == 0);
    // While messages flow: the pull being filled and those asking for the rest (each asks for what is missing).
    BOOST_TEST(info.num_waiting <= 3);
    BOOST_TEST(pc.get_stats().pulls >= static_cast<std::uint64_t>(n / 100));
    pc.stop();
    auto [ec, m] = co_await pc.next(use_ec);
    BOOST_TEST(ec == error::subscription_closed);
    c.close();
  });
}

// A minute idle: each pull expires (408) and is replaced, one at a time; never two wait on the server.
BOOST_AUTO_TEST_CASE(a_minute_idle_never_more_than_one_pull_waits) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "I", 3);
    co_await make_consumer(js, "I", "d");
    natsbus::pull_consumer pc(js, "I", "d");
    natsbus::consume_options co;
    co.max_messages = 10;
    co.expires = 5s;
    co.heartbeat = 2s;
    BOOST_REQUIRE(!pc.consume(co));
    for (int i = 0; i < 3; ++i) {
      auto* m = co_await pc.next();
      BOOST_REQUIRE(!m->ack());
    }
    const auto pulls0 = pc.get_stats().pulls;
    const auto t0 = clock_type::now();
    std::int64_t most = 0;
    std::size_t samples = 0;
    while (since(t0) < 60s) {
      auto info = co_await js.get_consumer_info("I", "d");
      most = std::max<std::int64_t>(most, info.num_waiting);
      ++samples;
      co_await natsbus::test::pause(200ms);
    }
    BOOST_TEST(samples >= 200u);
    BOOST_TEST(most == 1);
    BOOST_TEST(pc.get_stats().pulls - pulls0 >= 11u);  // replaced after each 5 s expiry
    BOOST_TEST(pc.get_stats().heartbeats >= 20u);       // heartbeats while each pull waits, no missed one
    c.close();
  }, 90s);
}

// ack_wait 2 s, a handler taking 1 s per message, a buffer of 10: the later messages wait in the buffer longer
// than ack_wait, and in-progress acks (a third of ack_wait, learnt from the server) keep them from redelivery.
BOOST_AUTO_TEST_CASE(buffered_messages_are_not_redelivered_behind_a_slow_handler) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    constexpr int n = 6;
    co_await make_stream(js, "S", n);
    co_await make_consumer(js, "S", "d", 2s);
    natsbus::pull_consumer pc(js, "S", "d");
    natsbus::consume_options co;
    co.max_messages = 10;
    co.expires = 5s;
    co.heartbeat = 2s;
    BOOST_REQUIRE(!pc.consume(co));
    for (int i = 1; i <= n; ++i) {
      auto* m = co_await pc.next();
      natsbus::message_info mi;
      BOOST_REQUIRE(!m->info(mi));
      BOOST_TEST(mi.stream_sequence == static_cast<std::uint64_t>(i));
      BOOST_TEST(mi.num_delivered == 1u, "message " << i << " was delivered " << mi.num_delivered << " times");
      co_await natsbus::test::pause(1s);  // the handler
      BOOST_REQUIRE(!m->ack());
    }
    co_await c.flush();
    auto info = co_await ack_floor_reaches(js, "S", "d", n);
    BOOST_TEST(info.ack_floor.stream_seq == static_cast<std::uint64_t>(n));
    BOOST_TEST(info.num_redelivered == 0);
    BOOST_TEST(pc.get_stats().kept_alive >= 3u);
    BOOST_TEST(pc.get_stats().delivered == static_cast<std::uint64_t>(n));
    c.close();
  }, 30s);
}

// 10,000 consumes started and stopped on one connection: the subscription count and the heap stay flat.
BOOST_AUTO_TEST_CASE(ten_thousand_start_stop_cycles_leave_nothing_behind) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "F", 0);
    co_await make_consumer(js, "F", "d");
    natsbus::consume_options co;
    co.max_messages = 1;
    co.expires = 1s;
    co.heartbeat = 400ms;
    std::size_t subs0 = 0, heap_at_1000 = 0;
    int consumed = 0;
    const auto t0 = clock_type::now();
    for (int i = 1; i <= 10000; ++i) {
      {
        natsbus::pull_consumer pc(js, "F", "d");
        BOOST_REQUIRE(!pc.consume(co));
        if (i % 100 == 0) {
          // Now and then one consumes a message before it stops.
          co_await js.publish("F.m", "m" + std::to_string(i));
          auto [ec, m] = co_await pc.next(use_ec);
          BOOST_REQUIRE_MESSAGE(!ec, ec.message());
          BOOST_TEST(m->payload() == "m" + std::to_string(i));
          BOOST_TEST(!m->ack());
          ++consumed;
        }
        pc.stop();
      }
      co_await c.flush();
      if (i == 100) subs0 = c.stats().subscriptions;  // after the first publish: its ack subscription included
      if (i == 1000) {
        while (c.pending_requests() > 0) co_await natsbus::test::pause(10ms);
        heap_at_1000 = natsbus::test::live_heap_bytes();
      }
    }
    while (c.pending_requests() > 0) co_await natsbus::test::pause(10ms);
    const auto heap = natsbus::test::live_heap_bytes();
    BOOST_TEST_MESSAGE("10,000 cycles in " << since(t0).count() << " ms; heap after 1,000 cycles " << heap_at_1000
                                          << " bytes, after 10,000 " << heap);
    BOOST_TEST(consumed == 100);
    BOOST_TEST(c.stats().subscriptions == subs0);
    BOOST_TEST(heap < heap_at_1000 + 256 * 1024, "the heap grew by " << (heap - heap_at_1000) << " bytes");
    c.close();
  }, 120s);
}

BOOST_AUTO_TEST_CASE(a_deleted_consumer_ends_the_consume_within_a_second) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "D", 0);
    co_await make_consumer(js, "D", "d");
    natsbus::pull_consumer pc(js, "D", "d");
    BOOST_REQUIRE(!pc.consume());
    co_await c.flush();
    co_await natsbus::test::pause(100ms);  // the pull is waiting on the server
    const auto t0 = clock_type::now();
    co_await js.delete_consumer("D", "d");
    auto [ec, m] = co_await pc.next(use_ec);
    BOOST_TEST(ec == error::consumer_deleted, ec.message());
    BOOST_TEST(since(t0).count() < 1000);
    const auto pulls = pc.get_stats().pulls;
    co_await natsbus::test::pause(600ms);
    BOOST_TEST(pc.get_stats().pulls == pulls);  // pulling stopped
    c.close();
  });
}

// The consumer is deleted while the link is down (its 409 is lost with the link): after the reconnect the pull
// finds nobody, and the consume reports the consumer as gone once, instead of an error every retry.
BOOST_AUTO_TEST_CASE(a_consumer_lost_during_an_outage_is_reported_not_found) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp_proxy proxy(ex, static_cast<std::uint16_t>(server.port()));
    event_log log(ex);
    natsbus::connection c(ex, options_for("nats://127.0.0.1:" + std::to_string(proxy.port())));
    log.attach(c);
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "L", 0);
    co_await make_consumer(js, "L", "d");
    natsbus::pull_consumer pc(js, "L", "d");
    natsbus::consume_options co;
    co.expires = 2s;
    co.heartbeat = 500ms;
    BOOST_REQUIRE(!pc.consume(co));
    co_await c.flush();
    proxy.blackhole(true);
    natsbus::connection admin(ex, options_for(server.url()));
    co_await admin.connect();
    natsbus::jetstream ajs(admin);
    co_await ajs.delete_consumer("L", "d");
    proxy.cut();
    proxy.blackhole(false);
    co_await log.wait(event_kind::reconnected, 1);
    const auto t0 = clock_type::now();
    // A missed heartbeat may come first (the link was silent); then, within two intervals of the new pull and a
    // CONSUMER.INFO, the consumer is reported gone.
    error_code ec;
    do {
      auto [nec, m] = co_await pc.next(use_ec);
      ec = nec;
    } while (ec == error::missed_heartbeat && since(t0) < 5s);
    BOOST_TEST(ec == error::consumer_deleted, ec.message());
    BOOST_TEST(since(t0).count() < 2500);
    const auto pulls = pc.get_stats().pulls;
    co_await natsbus::test::pause(600ms);
    BOOST_TEST(pc.get_stats().pulls == pulls);
    admin.close();
    c.close();
  }, 20s);
}

BOOST_AUTO_TEST_CASE(a_slow_handler_is_no_missed_heartbeat) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "S", 4);
    natsbus::consumer_config cc;
    cc.durable_name = "d";
    cc.max_ack_pending = 1;
    co_await js.create_consumer("S", cc);
    natsbus::pull_consumer pc(js, "S", "d");
    natsbus::consume_options co;
    co.expires = 2s;
    co.heartbeat = 300ms;
    BOOST_REQUIRE(!pc.consume(co));
    for (int i = 1; i <= 4; ++i) {
      auto [ec, m] = co_await pc.next(use_ec);
      BOOST_REQUIRE_MESSAGE(!ec, ec.message());
      BOOST_TEST(m->payload() == "m" + std::to_string(i));
      co_await natsbus::test::pause(700ms);  // longer than two heartbeat intervals
      BOOST_REQUIRE(!m->ack());
    }
    BOOST_TEST(pc.get_stats().heartbeats >= 1u);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(a_black_holed_link_is_a_missed_heartbeat_then_the_consume_resumes) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp_proxy proxy(ex, static_cast<std::uint16_t>(server.port()));
    natsbus::connection c(ex, options_for("nats://127.0.0.1:" + std::to_string(proxy.port())));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "H", 0);
    co_await make_consumer(js, "H", "d");
    natsbus::pull_consumer pc(js, "H", "d");
    natsbus::consume_options co;
    co.expires = 3s;
    co.heartbeat = 500ms;
    BOOST_REQUIRE(!pc.consume(co));
    co_await c.flush();
    proxy.blackhole(true);
    const auto t0 = clock_type::now();
    auto [ec, m] = co_await pc.next(use_ec);
    const auto took = since(t0).count();
    BOOST_TEST(ec == error::missed_heartbeat, ec.message());
    BOOST_TEST(took >= 500);   // two intervals after the last frame, which came up to an interval before
    BOOST_TEST(took <= 1800);  // two intervals, a quarter interval for the check, and slack
    proxy.blackhole(false);
    // The link is back: a publish reaches the consume.
    natsbus::connection pub(ex, options_for(server.url()));
    co_await pub.connect();
    natsbus::jetstream pjs(pub);
    co_await pjs.publish("H.m", "after");
    auto [ec2, m2] = co_await pc.next(use_ec);
    BOOST_REQUIRE_MESSAGE(!ec2, ec2.message());
    BOOST_TEST(m2->payload() == "after");
    pub.close();
    c.close();
  }, 20s);
}

BOOST_AUTO_TEST_CASE(a_server_restart_loses_nothing) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    event_log log(ex);
    natsbus::connection c(ex, options_for(server.url()));
    log.attach(c);
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "R", 50, natsbus::storage_type::file);
    co_await make_consumer(js, "R", "d");
    natsbus::pull_consumer pc(js, "R", "d");
    natsbus::consume_options co;
    co.max_messages = 20;
    co.expires = 2s;
    co.heartbeat = 500ms;
    BOOST_REQUIRE(!pc.consume(co));
    std::set<std::string> seen;
    while (seen.size() < 25) {
      auto [ec, m] = co_await pc.next(use_ec);
      if (ec) continue;
      seen.insert(std::string(m->payload()));
      (void)m->ack();
    }
    co_await c.flush();
    server.restart();
    co_await log.wait(event_kind::reconnected, 1);
    for (int i = 51; i <= 80; ++i) co_await js.publish("R.m", "m" + std::to_string(i));
    const auto t0 = clock_type::now();
    while (seen.size() < 80 && since(t0) < 10s) {
      auto [ec, m] = co_await pc.next(use_ec);
      if (ec) continue;  // a missed heartbeat or a refused pull around the restart: the consume goes on
      seen.insert(std::string(m->payload()));
      (void)m->ack();
    }
    BOOST_TEST(seen.size() == 80u);
    c.close();
  }, 30s);
}

// A durable consume across a server kill (SIGKILL, file storage): acks sent just before it may be lost, so
// redeliveries come; each is acked again. The consume counts distinct stream sequences and is done only when the
// server agrees: ack floor at N, nothing pending, nothing waiting for an ack.
BOOST_AUTO_TEST_CASE(a_durable_consume_across_a_server_kill_ends_with_the_servers_ack_floor) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    event_log log(ex);
    natsbus::connection c(ex, options_for(server.url()));
    log.attach(c);
    co_await c.connect();
    natsbus::jetstream js(c);
    constexpr std::uint64_t n = 10000;
    natsbus::stream_config cfg;
    cfg.name = "K";
    cfg.subjects = {"K.>"};
    cfg.storage = natsbus::storage_type::file;
    co_await js.create_stream(cfg);
    for (std::uint64_t i = 0; i < n; ++i) (void)co_await js.publish_async("K.m", "x");
    co_await js.publish_async_complete();
    co_await make_consumer(js, "K", "d", 2s);
    natsbus::pull_consumer pc(js, "K", "d");
    natsbus::consume_options co;
    co.max_messages = 200;
    co.expires = 2s;
    co.heartbeat = 500ms;
    BOOST_REQUIRE(!pc.consume(co));
    std::vector<bool> seen(n + 1);
    std::uint64_t distinct = 0, redelivered = 0;
    bool killed = false, taker_done = false;
    const auto t0 = clock_type::now();
    // One coroutine takes and acks everything (redeliveries acked again) until the consume is stopped; this one
    // watches, each wait bounded.
    auto taker = [&]() -> asio::awaitable<void> {
      for (;;) {
        auto [ec, m] = co_await pc.next(use_ec);
        if (ec == error::subscription_closed || ec == error::connection_closed) break;
        if (ec) continue;  // a missed heartbeat or a refused pull around the kill: the consume goes on
        natsbus::message_info mi;
        const bool readable = !m->info(mi) && mi.stream_sequence >= 1 && mi.stream_sequence <= n;
        BOOST_TEST(readable);  // (not REQUIRE: a throw would end this coroutine unseen)
        if (!readable) continue;
        if (seen[mi.stream_sequence]) ++redelivered;
        else seen[mi.stream_sequence] = true, ++distinct;
        (void)m->ack();
        if (!killed && distinct == n / 2) {
          killed = true;
          server.kill();
          server.restart();
        }
      }
      taker_done = true;
    };
    asio::co_spawn(ex, taker(), asio::detached);
    while (distinct < n && since(t0) < 45s) co_await natsbus::test::pause(20ms);
    BOOST_TEST(distinct == n, "only " << distinct << " of " << n << " stream sequences came");
    // Done only when the server agrees; acks lost with the kill come back as redeliveries, acked again.
    natsbus::consumer_info info;
    for (;;) {
      co_await c.flush();
      auto [iec, i] = co_await js.get_consumer_info("K", "d", use_ec);
      if (!iec) info = i;
      if (!iec && info.ack_floor.stream_seq == n && info.num_ack_pending == 0 && info.num_pending == 0) break;
      if (since(t0) > 50s) break;
      co_await natsbus::test::pause(100ms);
    }
    pc.stop();
    for (int k = 0; k < 500 && !taker_done; ++k) co_await natsbus::test::pause(10ms);
    BOOST_TEST(taker_done);
    BOOST_TEST(info.num_ack_pending == 0);
    BOOST_TEST(info.num_pending == 0u);
    BOOST_TEST(log.count(event_kind::reconnected) >= 1u);
    BOOST_TEST(info.ack_floor.stream_seq == n);
    BOOST_TEST_MESSAGE("redeliveries across the kill: " << redelivered);
    c.close();
  }, 60s);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(consumer_management, fixture)

// filter_subjects and metadata: honoured by 2.10, refused client-side on 2.9 (which would drop them silently and
// make a consumer of the whole stream).
BOOST_AUTO_TEST_CASE(fields_a_2_9_server_would_drop) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "M", 0);
    co_await js.publish("M.a", "a");
    co_await js.publish("M.b", "b");
    co_await js.publish("M.c", "c");
    natsbus::consumer_config cc;
    cc.durable_name = "two";
    cc.filter_subjects = {"M.a", "M.c"};
    cc.metadata = {{"owner", "test"}};
    auto [ec, info] = co_await js.create_consumer("M", cc, use_ec);
    if (c.info().version.rfind("2.9.", 0) == 0) {
      BOOST_TEST(ec == error::not_supported_by_server, ec.message());
      auto [nec, names] = co_await js.consumer_names("M", use_ec);
      BOOST_TEST(names.empty());  // nothing was created
    } else {
      BOOST_REQUIRE_MESSAGE(!ec, ec.message());
      BOOST_TEST(info.config.filter_subjects == cc.filter_subjects);
      natsbus::pull_consumer pc(js, "M", "two");
      natsbus::fetch_options fo;
      fo.batch = 5;
      fo.expires = 1s;
      auto batch = co_await pc.fetch(fo);
      BOOST_REQUIRE(batch.size() == 2u);
      BOOST_TEST(batch[0].payload() == "a");
      BOOST_TEST(batch[1].payload() == "c");
    }
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(update_changes_an_existing_consumer) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "U", 0);
    natsbus::consumer_config cc;
    cc.durable_name = "d";
    cc.description = "first";
    co_await js.create_consumer("U", cc);
    cc.description = "second";
    cc.max_ack_pending = 7;
    auto info = co_await js.update_consumer("U", cc);
    BOOST_TEST(info.config.description == "second");
    BOOST_TEST(info.config.max_ack_pending == 7);
    if (c.info().version.rfind("2.9.", 0) != 0) {
      // 2.10: create refuses to change an existing consumer, update refuses to make one.
      cc.description = "third";
      auto [cec, ci] = co_await js.create_consumer("U", cc, use_ec);
      BOOST_TEST((cec.category() == natsbus::jetstream_category()), cec.message());
      cc.durable_name = "missing";
      auto [uec, ui] = co_await js.update_consumer("U", cc, use_ec);
      BOOST_TEST((uec.category() == natsbus::jetstream_category()), uec.message());
    }
    c.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(ordered, fixture)

// Every stream sequence once and in order, across a consumer deleted under it and a server restart.
BOOST_AUTO_TEST_CASE(every_sequence_once_in_order_across_recreations) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    event_log log(ex);
    natsbus::connection c(ex, options_for(server.url()));
    log.attach(c);
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "O", 300, natsbus::storage_type::file);
    natsbus::ordered_options oo;
    oo.max_messages = 50;
    oo.expires = 2s;
    oo.heartbeat = 500ms;
    natsbus::ordered_consumer oc(js, "O", oo);
    co_await oc.start();
    std::uint64_t expect = 1;
    auto take = [&](std::uint64_t until) -> asio::awaitable<void> {
      const auto t0 = clock_type::now();
      while (expect <= until && since(t0) < 15s) {
        auto [ec, m] = co_await oc.next(use_ec);
        if (ec) continue;  // reported recreation trouble; the consumer goes on
        natsbus::message_info mi;
        BOOST_REQUIRE(!m->info(mi));
        BOOST_REQUIRE_EQUAL(mi.stream_sequence, expect);
        BOOST_REQUIRE_EQUAL(std::string(m->payload()), "m" + std::to_string(expect));
        ++expect;
      }
    };
    co_await take(100);
    // Deleted under it: a new consumer at 101.
    auto names = co_await js.consumer_names("O");
    BOOST_REQUIRE(names.size() == 1u);
    co_await js.delete_consumer("O", names.front());
    co_await take(200);
    BOOST_TEST(oc.resets() >= 1u);
    // The server restarts: the in-memory consumer is gone; a new one at the next sequence.
    server.restart();
    co_await log.wait(event_kind::reconnected, 1);
    for (int i = 301; i <= 320; ++i) co_await js.publish("O.m", "m" + std::to_string(i));
    co_await take(320);
    BOOST_TEST(expect == 321u);
    BOOST_TEST(oc.resets() >= 2u);
    oc.stop();
    c.close();
  }, 40s);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(push, fixture)

// A 50 MiB backlog through a push consumer with flow control: everything arrives, in order, and the server's
// flow-control requests are answered (it would stall otherwise).
BOOST_AUTO_TEST_CASE(flow_control_and_a_50_mib_backlog) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    natsbus::stream_config sc;
    sc.name = "P";
    sc.subjects = {"P.>"};
    sc.storage = natsbus::storage_type::memory;
    sc.max_bytes = 256 * 1024 * 1024;
    co_await js.create_stream(sc);
    constexpr std::uint64_t n = 50 * 1024;  // 1 KiB each
    const std::string body(1024, 'p');
    for (std::uint64_t i = 0; i < n; ++i) {
      auto f = co_await js.publish_async("P.m", body);
      (void)f;
    }
    co_await js.publish_async_complete();
    natsbus::consumer_config cc;
    cc.durable_name = "push";
    cc.deliver_subject = "deliver.push";
    cc.flow_control = true;
    cc.idle_heartbeat = 1s;
    cc.ack = natsbus::ack_policy::none;
    co_await js.create_consumer("P", cc);
    natsbus::push_options po;
    po.deliver_subject = "deliver.push";
    po.heartbeat = 1s;
    natsbus::push_consumer pc(js, "P", "push", po);
    BOOST_REQUIRE(!pc.start());
    std::uint64_t expect = 1;
    while (expect <= n) {
      auto* m = pc.try_next();
      if (!m) {
        auto [ec, mm] = co_await pc.next(use_ec);
        BOOST_REQUIRE_MESSAGE(!ec, ec.message());
        m = mm;
      }
      natsbus::message_info mi;
      BOOST_REQUIRE(!m->info(mi));
      BOOST_REQUIRE_EQUAL(mi.stream_sequence, expect);
      BOOST_REQUIRE_EQUAL(m->payload().size(), 1024u);
      ++expect;
    }
    BOOST_TEST(pc.flow_control_replies() >= 1u);
    pc.stop();
    c.close();
  }, 60s);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(consumers_on_one_connection, fixture)

// Two push consumers in one queue group on one deliver subject: the server hands each message to one of them.
BOOST_AUTO_TEST_CASE(a_push_queue_group_shares_the_messages) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    constexpr int n = 1000;
    co_await make_stream(js, "Q", 0);
    for (int i = 0; i < n; ++i) (void)co_await js.publish_async("Q.m", "q");
    co_await js.publish_async_complete();
    natsbus::push_options po;
    po.deliver_subject = "deliver.q";
    po.queue_group = "workers";
    po.heartbeat = 1s;
    natsbus::push_consumer a(js, "Q", "workers", po), b(js, "Q", "workers", po);
    // Subscribed before the consumer exists, so neither misses the first messages.
    BOOST_REQUIRE(!a.start());
    BOOST_REQUIRE(!b.start());
    co_await c.flush();
    natsbus::consumer_config cc;
    cc.durable_name = "workers";
    cc.deliver_subject = "deliver.q";
    cc.deliver_group = "workers";
    cc.idle_heartbeat = 1s;
    cc.ack = natsbus::ack_policy::explicit_;
    co_await js.create_consumer("Q", cc);
    std::set<std::uint64_t> seen;
    std::size_t got_a = 0, got_b = 0;
    int running = 2;
    natsbus::test::signal all_seen(ex), both_ended(ex);
    auto take = [&](natsbus::push_consumer& pc, std::size_t& got) -> asio::awaitable<void> {
      for (;;) {
        auto [ec, m] = co_await pc.next(use_ec);
        if (ec) break;  // stopped
        natsbus::message_info mi;
        BOOST_REQUIRE(!m->info(mi));
        BOOST_TEST(seen.insert(mi.stream_sequence).second, "sequence " << mi.stream_sequence << " twice");
        BOOST_REQUIRE(!m->ack());
        ++got;
        if (seen.size() == static_cast<std::size_t>(n)) all_seen.notify();
      }
      if (--running == 0) both_ended.notify();
    };
    asio::co_spawn(ex, take(a, got_a), asio::detached);
    asio::co_spawn(ex, take(b, got_b), asio::detached);
    asio::steady_timer bound(ex, 10s);
    bound.async_wait([&](error_code ec) {
      if (!ec) all_seen.notify();
    });
    co_await all_seen.wait();
    bound.cancel();
    a.stop();
    b.stop();
    co_await both_ended.wait();
    BOOST_TEST(seen.size() == static_cast<std::size_t>(n));
    BOOST_TEST(got_a > 0u);
    BOOST_TEST(got_b > 0u);
    co_await c.flush();
    auto info = co_await ack_floor_reaches(js, "Q", "workers", n);
    BOOST_TEST(info.ack_floor.stream_seq == static_cast<std::uint64_t>(n));
    c.close();
  }, 30s);
}

BOOST_AUTO_TEST_CASE(overlapping_filters_each_get_only_their_own) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server.url()));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await make_stream(js, "V", 0);
    for (int i = 0; i < 5; ++i) co_await js.publish("V.a.x", "ax");
    for (int i = 0; i < 5; ++i) co_await js.publish("V.b", "b");
    natsbus::consumer_config wide, narrow;
    wide.durable_name = "wide";
    wide.filter_subject = "V.>";
    narrow.durable_name = "narrow";
    narrow.filter_subject = "V.a.>";
    co_await js.create_consumer("V", wide);
    co_await js.create_consumer("V", narrow);
    natsbus::pull_consumer pw(js, "V", "wide"), pn(js, "V", "narrow");
    natsbus::consume_options co;
    co.max_messages = 4;
    co.expires = 2s;
    co.heartbeat = 500ms;
    BOOST_REQUIRE(!pw.consume(co));
    BOOST_REQUIRE(!pn.consume(co));
    int wide_seen = 0, narrow_seen = 0;
    while (wide_seen < 10 || narrow_seen < 5) {
      if (wide_seen < 10) {
        auto* m = co_await pw.next();
        natsbus::message_info mi;
        BOOST_REQUIRE(!m->info(mi));
        BOOST_TEST(mi.consumer == "wide");
        BOOST_REQUIRE(!m->ack());
        ++wide_seen;
      }
      if (narrow_seen < 5) {
        auto* m = co_await pn.next();
        natsbus::message_info mi;
        BOOST_REQUIRE(!m->info(mi));
        BOOST_TEST(mi.consumer == "narrow");
        BOOST_TEST(m->subject() == "V.a.x");
        BOOST_REQUIRE(!m->ack());
        ++narrow_seen;
      }
    }
    BOOST_TEST(pw.get_stats().delivered == 10u);
    BOOST_TEST(pn.get_stats().delivered == 5u);
    c.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()
