// Resilience against real servers that are killed and restarted: reconnect, subscription replay, the
// reconnect buffer, JetStream publishes resent by message id, lame duck mode, and the end of retries.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "nats_server.hpp"
#include "event_log.hpp"
#include "run.hpp"

#include <natsbus/event_bus.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <csignal>
#include <deque>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::event_kind;
using natsbus::test::nats_server;
using natsbus::test::run_coro;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

using natsbus::test::event_log;

namespace {

natsbus::connection_options fast_reconnect(const nats_server& s) {
  natsbus::connection_options o;
  o.servers = {s.url()};
  o.reconnect_wait = 50ms;
  o.reconnect_jitter = 20ms;
  o.max_reconnects = -1;
  return o;
}

struct fixture {
  nats_server server;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(reconnect, fixture)

// 100,000 windowed bus publishes while the server is killed with SIGKILL and restarted twice on the same store.
BOOST_AUTO_TEST_CASE(bus_publishes_survive_two_server_kills) {
  run_coro(
      [&]() -> asio::awaitable<void> {
        natsbus::event_bus_config cfg;
        cfg.connection = fast_reconnect(server);
        cfg.jetstream.max_pending = 1024;
        cfg.jetstream.timeout = 30s;  // outlives the outages: every publish resolves by ack
        event_log events(co_await asio::this_coro::executor);  // first: the bus reports its close into it
        natsbus::event_bus bus(co_await asio::this_coro::executor, cfg);
        events.attach(bus.conn());
        co_await bus.start();
        natsbus::topic_options file_topic;
        file_topic.persistence = natsbus::topic_persistence::persistent;
        file_topic.storage = natsbus::storage_type::file;
        co_await bus.configure_topic("durable.orders", file_topic);

        const std::size_t n = 100000;
        std::deque<natsbus::ack_future> window;
        std::size_t acked = 0, failed = 0, duplicates = 0;
        std::string first_error;
        auto reap = [&](natsbus::ack_future& f, error_code ec, const natsbus::pub_ack& ack) {
          (void)f;
          if (ec) {
            if (failed++ == 0) first_error = ec.message();
          } else {
            ++acked;
            if (ack.duplicate) ++duplicates;
          }
        };
        for (std::size_t i = 0; i < n; ++i) {
          if (i == 30000 || i == 65000) {
            server.kill();
            server.restart();
          }
          auto [ec, f] = co_await bus.publish_async("durable.orders", "order", use_ec);
          if (ec) {
            if (failed++ == 0) first_error = ec.message();
            continue;
          }
          window.push_back(std::move(f));
          while (!window.empty() && (window.front().ready() || window.size() > 2048)) {
            auto [aec, ack] = co_await window.front().get(use_ec);
            reap(window.front(), aec, ack);
            window.pop_front();
          }
        }
        while (!window.empty()) {
          auto [aec, ack] = co_await window.front().get(use_ec);
          reap(window.front(), aec, ack);
          window.pop_front();
        }
        BOOST_TEST(failed == 0u, "first error: " << first_error);
        BOOST_TEST(acked == n);
        BOOST_TEST(events.count(event_kind::reconnected) >= 2);
        auto stream = natsbus::event_bus::stream_name_for("durable.orders");
        auto info = co_await bus.js().get_stream_info(stream);
        BOOST_TEST(info.state.messages == n);  // each message once: resends were deduplicated
        BOOST_TEST(info.state.last_seq == n);
        BOOST_TEST_MESSAGE("duplicates acknowledged: " << duplicates);
      },
      180s);
}

BOOST_AUTO_TEST_CASE(subscriptions_keep_receiving_after_a_restart) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    event_log events(ex);  // first: it outlives the connection, whose destructor reports its close
    natsbus::connection c(ex, fast_reconnect(server));
    events.attach(c);
    co_await c.connect();
    auto plain = co_await c.subscribe("restart.plain");
    auto queued = co_await c.subscribe("restart.queue", "workers");
    auto limited = co_await c.subscribe("restart.limited");
    limited.auto_unsubscribe(10);
    for (int i = 0; i < 3; ++i) co_await c.publish("restart.limited", "before");
    co_await c.flush();
    for (int i = 0; i < 3; ++i) co_await limited.next();

    server.kill();
    server.restart();
    co_await events.wait(event_kind::reconnected, 1);

    // Another client publishes after the restart: every replayed subscription receives.
    natsbus::connection other(ex, fast_reconnect(server));
    co_await other.connect();
    co_await other.publish("restart.plain", "p");
    co_await other.publish("restart.queue", "q");
    for (int i = 0; i < 10; ++i) co_await other.publish("restart.limited", "after");
    co_await other.flush();
    auto p = co_await plain.next();
    BOOST_TEST(p.payload == "p");
    auto q = co_await queued.next();
    BOOST_TEST(q.payload == "q");
    // 3 delivered before the restart, so 7 remain of the 10.
    int after = 0;
    for (;;) {
      auto [ec, m] = co_await limited.next(use_ec);
      if (ec) break;
      ++after;
    }
    BOOST_TEST(after == 7);
    BOOST_TEST(c.stats().reconnects == 1u);
  });
}

BOOST_AUTO_TEST_CASE(reconnect_buffer_fills_then_flushes_in_order) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto o = fast_reconnect(server);
    o.reconnect_buffer_size = 2000;
    event_log events(ex);  // first: it outlives the connection, whose destructor reports its close
    natsbus::connection c(ex, o);
    events.attach(c);
    co_await c.connect();
    auto sub = co_await c.subscribe("buf.x");
    co_await c.flush();

    server.kill();
    co_await events.wait(event_kind::disconnected, 1);
    int buffered = 0;
    error_code full;
    for (int i = 0; i < 1000; ++i) {
      std::string payload = "m" + std::to_string(i);
      auto [ec] = co_await c.publish("buf.x", payload, use_ec);
      if (ec) {
        full = ec;
        break;
      }
      ++buffered;
    }
    BOOST_TEST((full == error::reconnect_buffer_full));
    BOOST_TEST(buffered > 10);
    BOOST_TEST(buffered < 200);

    server.restart();
    co_await events.wait(event_kind::reconnected, 1);
    for (int i = 0; i < buffered; ++i) {
      auto m = co_await sub.next();
      BOOST_TEST(m.payload == "m" + std::to_string(i));
    }
  });
}

BOOST_AUTO_TEST_CASE(requests_fail_fast_on_disconnect) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    event_log events(ex);  // first: it outlives the connection, whose destructor reports its close
    natsbus::connection c(ex, fast_reconnect(server));
    events.attach(c);
    co_await c.connect();
    auto responder = co_await c.subscribe("slow.service");  // never answers
    co_await c.flush();
    auto started = std::chrono::steady_clock::now();
    error_code result;
    natsbus::test::signal done(ex);
    asio::co_spawn(
        ex,
        [](natsbus::connection& conn, error_code& out, natsbus::test::signal& sig) -> asio::awaitable<void> {
          auto [ec, m] = co_await conn.request("slow.service", "ping", 10s, use_ec);
          out = ec;
          sig.notify();
        }(c, result, done),
        asio::detached);
    co_await responder.next();  // the request is on the server
    server.kill();
    co_await done.wait();
    BOOST_TEST((result == error::disconnected));
    BOOST_TEST((std::chrono::steady_clock::now() - started < 5s));
  });
}

BOOST_AUTO_TEST_CASE(max_reconnects_ends_in_one_close) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto o = fast_reconnect(server);
    o.max_reconnects = 2;
    o.reconnect_wait = 20ms;
    event_log events(ex);  // first: it outlives the connection, whose destructor reports its close
    natsbus::connection c(ex, o);
    events.attach(c);
    co_await c.connect();
    server.kill();
    co_await events.wait(event_kind::closed, 1);
    BOOST_TEST(events.count(event_kind::closed) == 1);
    BOOST_TEST(events.count(event_kind::disconnected) == 1);
    BOOST_TEST(!c.is_connected());
    auto [ec] = co_await c.publish("after.close", "x", use_ec);
    BOOST_TEST((ec == error::connection_closed));
  });
}

BOOST_AUTO_TEST_CASE(close_during_reconnect_is_prompt) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto o = fast_reconnect(server);
    o.reconnect_wait = 10s;
    event_log events(ex);  // first: it outlives the connection, whose destructor reports its close
    natsbus::connection c(ex, o);
    events.attach(c);
    co_await c.connect();
    server.kill();
    co_await events.wait(event_kind::disconnected, 1);
    auto t0 = std::chrono::steady_clock::now();
    c.close();
    co_await events.wait(event_kind::closed, 1);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 100ms));
    BOOST_TEST(events.count(event_kind::closed) == 1);
  });
}

BOOST_AUTO_TEST_CASE(raw_jetstream_publish_without_id_fails_with_disconnected) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto o = fast_reconnect(server);
    event_log events(ex);  // first: it outlives the connection, whose destructor reports its close
    natsbus::connection c(ex, o);
    events.attach(c);
    co_await c.connect();
    natsbus::jetstream js(c);
    natsbus::stream_config sc;
    sc.name = "RAW";
    sc.subjects.push_back("raw.>");
    sc.storage = natsbus::storage_type::file;
    co_await js.create_stream(sc);
    // Suspend acks: the server is stopped before it can answer what is in flight.
    std::vector<natsbus::ack_future> futures;
    for (int i = 0; i < 200; ++i) {
      auto f = co_await js.publish_async("raw.x", "x");
      futures.push_back(std::move(f));
    }
    server.kill();
    int disconnected = 0, acked = 0;
    for (auto& f : futures) {
      auto [ec, ack] = co_await f.get(use_ec);
      if (!ec) ++acked;
      else if (ec == error::disconnected) ++disconnected;
    }
    BOOST_TEST(disconnected + acked == 200);
    server.restart();
    co_await events.wait(event_kind::reconnected, 1);
  });
}

BOOST_AUTO_TEST_CASE(lame_duck_moves_to_another_server) {
  nats_server second;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection_options o = fast_reconnect(server);
    o.servers = {server.url(), second.url()};
    o.randomize_servers = false;
    event_log events(ex);  // first: it outlives the connection, whose destructor reports its close
    natsbus::connection c(ex, o);
    events.attach(c);
    co_await c.connect();
    BOOST_TEST(c.info().port == server.port());
    server.signal(SIGUSR2);  // lame duck mode
    co_await events.wait(event_kind::reconnected, 1);
    BOOST_TEST(events.count(event_kind::lame_duck) == 1);
    BOOST_TEST(c.info().port == second.port());
    auto sub = co_await c.subscribe("ldm.after");
    co_await c.publish("ldm.after", "still here");
    auto m = co_await sub.next();
    BOOST_TEST(m.payload == "still here");
    server.kill();  // a server in lame duck mode takes its grace period to stop
  });
}

// The first connect finds no server: connect() still succeeds, publishes are buffered, and they go out once a
// server is up. The custom delay function decides the waits.
BOOST_AUTO_TEST_CASE(retry_on_failed_connect_buffers_until_a_server_is_up) {
  server.kill();
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto o = fast_reconnect(server);
    o.retry_on_failed_connect = true;
    int delays = 0;
    o.reconnect_delay = [&delays](int attempt) {
      ++delays;
      return std::chrono::milliseconds(attempt < 3 ? 20 : 50);
    };
    event_log events(ex);  // first: it outlives the connection, whose destructor reports its close
    natsbus::connection c(ex, o);
    events.attach(c);
    co_await c.connect();
    BOOST_TEST(!c.is_connected());
    auto sub = co_await c.subscribe("early.topic");
    co_await c.publish("early.topic", "sent before any server was up");
    server.restart();
    // The first session is a connect, not a reconnect.
    co_await events.wait(event_kind::connected, 1);
    auto m = co_await sub.next();
    BOOST_TEST(m.payload == "sent before any server was up");
    BOOST_TEST(delays > 0);
    BOOST_TEST(c.is_connected());
    BOOST_TEST(events.count(event_kind::reconnected) == 0);
    BOOST_TEST(c.stats().reconnects == 0u);
  });
}

// The server comes back with other credentials: the same authorization error twice takes it out of the pool,
// and with no server left the connection closes with that error, rather than retrying forever.
BOOST_AUTO_TEST_CASE(repeated_auth_errors_end_retries) {
  natsbus::test::server_options first;
  first.config = R"(authorization { user: "ann", password: "one" })";
  auto a = std::make_unique<nats_server>(first);
  int port = a->port();
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection_options o;
    o.servers = {a->url()};
    o.user = "ann";
    o.password = "one";
    o.reconnect_wait = 50ms;
    o.reconnect_jitter = 10ms;
    o.max_reconnects = -1;  // only the auth rule can end the retries
    natsbus::connection c(ex, o);
    error_code close_reason;
    natsbus::test::signal closed(ex);
    c.set_event_handler([&](const natsbus::connection_event& e) {
      if (e.kind == event_kind::closed) {
        close_reason = e.ec;
        closed.notify();
      }
    });
    co_await c.connect();
    a->kill();
    natsbus::test::server_options second;
    second.config = R"(authorization { user: "ann", password: "two" })";
    second.port = port;
    nats_server b(second);
    auto t0 = std::chrono::steady_clock::now();
    co_await closed.wait();
    BOOST_TEST((close_reason == error::authorization_violation));
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));
  });
}

BOOST_AUTO_TEST_SUITE_END()
