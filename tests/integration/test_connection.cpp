#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "nats_server.hpp"
#include "run.hpp"

#include <natsbus/connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::test::nats_server;
using natsbus::test::run_coro;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

// Plain function: GCC 12 rejects braced lists of strings inside coroutines.
std::vector<std::string> bad_inbox_prefixes() { return {"_SVC.*", "", "a..b", std::string(65, 'x')}; }

natsbus::connection_options options_for(const nats_server& s) {
  natsbus::connection_options o;
  o.servers = {s.url()};
  o.name = "natsbus-test";
  return o;
}

struct server_fixture {
  nats_server server;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(connection_pubsub, server_fixture)

BOOST_AUTO_TEST_CASE(round_trip_exact_payloads) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    BOOST_TEST(c.is_connected());
    auto max = static_cast<std::size_t>(c.info().max_payload);
    BOOST_TEST(max == 1024u * 1024u);
    auto sub = co_await c.subscribe("rt.x");
    co_await c.flush();
    std::string big(max, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
    std::vector<std::string> payloads{"", "\x01", big, std::string("a\r\nb\0c", 6)};
    for (auto& p : payloads) co_await c.publish("rt.x", p);
    for (auto& p : payloads) {
      auto m = co_await sub.next();
      BOOST_TEST(m.subject == "rt.x");
      BOOST_TEST(m.payload.size() == p.size());
      BOOST_TEST((m.payload == p));
    }
    BOOST_TEST(c.stats().out_msgs >= 4u);
    BOOST_TEST(c.stats().in_msgs >= 4u);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(headers_round_trip) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    auto sub = co_await c.subscribe("hdr.x");
    natsbus::headers h;
    h.add("X-One", "1").add("Multi", "a").add("multi", "b").add("Empty", "");
    co_await c.publish("hdr.x", h, "body");
    auto m = co_await sub.next();
    BOOST_TEST(m.payload == "body");
    BOOST_TEST(m.headers.get("x-one").value_or("") == "1");
    auto all = m.headers.get_all("MULTI");
    BOOST_REQUIRE(all.size() == 2u);
    BOOST_TEST(all[0] == "a");
    BOOST_TEST(all[1] == "b");
    BOOST_TEST(m.headers.contains("Empty"));
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(wildcards_and_queue_groups) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    auto star = co_await c.subscribe("w.*");
    auto tail = co_await c.subscribe("w.>");
    auto q1 = co_await c.subscribe("q.work", "workers");
    auto q2 = co_await c.subscribe("q.work", "workers");
    co_await c.flush();
    co_await c.publish("w.a", "1");
    co_await c.publish("w.a.b", "2");
    for (int i = 0; i < 200; ++i) co_await c.publish("q.work", std::to_string(i));
    co_await c.flush();
    auto m1 = co_await star.next();
    BOOST_TEST(m1.subject == "w.a");
    BOOST_TEST(star.pending() == 0u);
    auto t1 = co_await tail.next();
    auto t2 = co_await tail.next();
    BOOST_TEST(t1.subject == "w.a");
    BOOST_TEST(t2.subject == "w.a.b");
    BOOST_TEST(q1.delivered() + q2.delivered() == 200u);
    BOOST_TEST(q1.delivered() > 0u);
    BOOST_TEST(q2.delivered() > 0u);
    c.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(connection_request, server_fixture)

asio::awaitable<void> echo_responder(natsbus::connection& c, natsbus::subscription sub) {
  for (;;) {
    auto [ec, m] = co_await sub.next(use_ec);
    if (ec) co_return;
    auto [pec] = co_await c.publish(m.reply, "re:" + m.payload, use_ec);
    if (pec) co_return;
  }
}

BOOST_AUTO_TEST_CASE(request_reply_and_concurrency) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server));
    co_await c.connect();
    auto sub = co_await c.subscribe("svc.echo");
    co_await c.flush();
    asio::co_spawn(ex, echo_responder(c, sub), asio::detached);

    auto r = co_await c.request("svc.echo", "hi", 2s);
    BOOST_TEST(r.payload == "re:hi");

    constexpr int n = 1000;
    int ok = 0, mismatched = 0, finished = 0;
    natsbus::test::signal all_done(ex);
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(ex, [&, i]() -> asio::awaitable<void> {
        auto [ec, m] = co_await c.request("svc.echo", std::to_string(i), 5s, use_ec);
        if (!ec && m.payload == "re:" + std::to_string(i)) ++ok;
        else ++mismatched;
        if (++finished == n) all_done.notify();
      }, asio::detached);
    }
    co_await all_done.wait();
    BOOST_TEST(ok == n);
    BOOST_TEST(mismatched == 0);
    BOOST_TEST(c.pending_requests() == 0u);
    sub.unsubscribe();
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(no_responders_fails_fast) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    auto start = std::chrono::steady_clock::now();
    auto [ec, m] = co_await c.request("nobody.here", "x", 5s, use_ec);
    BOOST_TEST(ec == error::no_responders);
    BOOST_TEST((std::chrono::steady_clock::now() - start) < 1s);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(request_times_out) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    auto silent = co_await c.subscribe("svc.silent");  // a responder that never answers
    co_await c.flush();
    auto [ec, m] = co_await c.request("svc.silent", "x", 200ms, use_ec);
    BOOST_TEST(ec == error::timeout);
    BOOST_TEST(c.pending_requests() == 0u);
    BOOST_TEST(silent.delivered() == 1u);
    c.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(connection_lifecycle, server_fixture)

BOOST_AUTO_TEST_CASE(unsubscribe_and_auto_unsubscribe) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    auto gone = co_await c.subscribe("life.a");
    auto limited = co_await c.subscribe("life.b");
    limited.auto_unsubscribe(5);
    gone.unsubscribe();
    co_await c.flush();
    for (int i = 0; i < 10; ++i) {
      co_await c.publish("life.a", "x");
      co_await c.publish("life.b", std::to_string(i));
    }
    co_await c.flush();
    auto [gec, gm] = co_await gone.next(use_ec);
    BOOST_TEST(gec == error::subscription_closed);
    for (int i = 0; i < 5; ++i) {
      auto m = co_await limited.next();
      BOOST_TEST(m.payload == std::to_string(i));
    }
    auto [lec, lm] = co_await limited.next(use_ec);
    BOOST_TEST(lec == error::subscription_closed);
    BOOST_TEST(limited.delivered() == 5u);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(flush_round_trip) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    auto sub = co_await c.subscribe("fl.x");
    for (int i = 0; i < 1000; ++i) co_await c.publish("fl.x", "m");
    co_await c.flush();
    // Everything published before the flush has come back before the PONG.
    BOOST_TEST(sub.delivered() == 1000u);
    c.close();
    auto [ec] = co_await c.flush(use_ec);
    BOOST_TEST(ec == error::connection_closed);
  });
}

// One coroutine queues far more than the early-write threshold (1 MiB) and the write buffer limit (8 MiB)
// without yielding: the bytes leave in direct writes while it goes on, then through the writer under
// backpressure. Everything arrives, in order.
BOOST_AUTO_TEST_CASE(burst_without_yielding_arrives_whole_and_in_order) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto so = options_for(server);
    so.subscription_pending_msgs = 400000;
    so.subscription_pending_bytes = 256 * 1024 * 1024;
    natsbus::connection receiver(ex, so);
    co_await receiver.connect();
    auto sub = co_await receiver.subscribe("burst.x");
    co_await receiver.flush();

    natsbus::connection c(ex, options_for(server));
    co_await c.connect();
    constexpr int n = 200000;
    std::string payload(64, 'p');
    int direct = 0;
    for (int i = 0; i < n; ++i) {
      auto digits = std::to_string(i);
      payload.replace(0, digits.size() + 1, digits + ";");
      error_code ec;
      if (c.try_publish("burst.x", payload, ec)) {
        ++direct;
        continue;
      }
      BOOST_TEST_REQUIRE(!ec);
      co_await c.publish("burst.x", payload);  // the buffer is full: wait for the writer
    }
    co_await c.flush();
    BOOST_TEST(direct > n / 2);
    int got = 0;
    bool ordered = true;
    while (got < n) {
      auto m = co_await sub.next();
      auto expected = std::to_string(got) + ";";
      if (m.payload.compare(0, expected.size(), expected) != 0) ordered = false;
      ++got;
    }
    BOOST_TEST(got == n);
    BOOST_TEST(ordered);
    BOOST_TEST(sub.dropped() == 0u);
    c.close();
    receiver.close();
  }, 60s);
}

BOOST_AUTO_TEST_CASE(drain_loses_nothing) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    std::vector<natsbus::event_kind> events;
    c.set_event_handler([&](const natsbus::connection_event& e) { events.push_back(e.kind); });
    co_await c.connect();
    auto sub = co_await c.subscribe("dr.x");
    co_await c.flush();
    for (int i = 0; i < 2000; ++i) co_await c.publish("dr.x", std::to_string(i));
    co_await c.drain();
    BOOST_TEST(!c.is_connected());
    int got = 0;
    for (;;) {
      auto [ec, m] = co_await sub.next(use_ec);
      if (ec) {
        BOOST_TEST(ec == error::subscription_closed);
        break;
      }
      BOOST_TEST(m.payload == std::to_string(got));
      ++got;
    }
    BOOST_TEST(got == 2000);
    BOOST_TEST(std::count(events.begin(), events.end(), natsbus::event_kind::closed) == 1);
  });
}

BOOST_AUTO_TEST_CASE(slow_consumer_counted) {
  run_coro([&]() -> asio::awaitable<void> {
    auto o = options_for(server);
    o.subscription_pending_msgs = 10;
    natsbus::connection c(co_await asio::this_coro::executor, o);
    int slow_events = 0;
    c.set_event_handler([&](const natsbus::connection_event& e) {
      if (e.kind == natsbus::event_kind::slow_consumer) ++slow_events;
    });
    co_await c.connect();
    auto sub = co_await c.subscribe("slow.x");
    co_await c.flush();
    for (int i = 0; i < 100; ++i) co_await c.publish("slow.x", "m");
    co_await c.flush();
    BOOST_TEST(sub.pending() == 10u);
    BOOST_TEST(sub.dropped() == 90u);
    BOOST_TEST(c.stats().dropped_msgs == 90u);
    BOOST_TEST(slow_events == 1);
    // The connection still works.
    auto m = co_await sub.next();
    BOOST_TEST(m.payload == "m");
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(rejected_before_writing) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    co_await c.flush();
    auto before = c.stats();
    for (const char* bad : {"", "a b", "a..b", "a.*", "a.>", ".a", "a.", "a\tb", "a\r\nPUB x 1"}) {
      auto [ec] = co_await c.publish(bad, "x", use_ec);
      BOOST_TEST(ec == error::invalid_subject, "subject '" << bad << "'");
    }
    std::string too_big(c.info().max_payload + 1, 'x');
    auto [ec] = co_await c.publish("ok.subject", too_big, use_ec);
    BOOST_TEST(ec == error::max_payload_exceeded);
    auto [sec, sub] = co_await c.subscribe("bad subject", {}, use_ec);
    BOOST_TEST(sec == error::invalid_subject);
    co_await c.flush();
    auto after = c.stats();
    BOOST_TEST(after.out_msgs == before.out_msgs);
    BOOST_TEST(after.out_bytes == before.out_bytes + 6);  // only the flush's PING
    BOOST_TEST(c.is_connected());
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(connect_failures_are_typed) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    {
      natsbus::connection_options o;
      o.servers = {"nats://bad host:1"};
      natsbus::connection c(ex, o);
      auto [ec] = co_await c.connect(use_ec);
      BOOST_TEST(ec == error::invalid_url);
    }
    const auto bad_prefixes = bad_inbox_prefixes();
    for (const auto& prefix : bad_prefixes) {
      natsbus::connection_options o;
      o.servers = {server.url()};
      o.inbox_prefix = prefix;
      natsbus::connection c(ex, o);
      auto [ec] = co_await c.connect(use_ec);
      BOOST_TEST(ec == error::invalid_argument, prefix);
      BOOST_TEST(c.last_error().find("bad inbox_prefix") != std::string::npos, c.last_error());
      BOOST_TEST(!c.is_connected());
    }
    {
      auto port = server.port();
      server.stop();
      natsbus::connection_options o;
      o.servers = {"nats://127.0.0.1:" + std::to_string(port)};
      natsbus::connection c(ex, o);
      auto [ec] = co_await c.connect(use_ec);
      BOOST_TEST(ec == asio::error::connection_refused);
    }
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(connection_auth)

BOOST_AUTO_TEST_CASE(permissions_violation_is_an_event) {
  natsbus::test::server_options so;
  so.config = R"(authorization {
    users = [ { user: "alice", password: "secret", permissions: { publish: { deny: ["forbidden.>"] } } } ]
  })";
  nats_server server(so);
  run_coro([&]() -> asio::awaitable<void> {
    auto o = options_for(server);
    o.user = "alice";
    o.password = "secret";
    natsbus::connection c(co_await asio::this_coro::executor, o);
    std::vector<natsbus::connection_event> errors;
    c.set_event_handler([&](const natsbus::connection_event& e) {
      if (e.kind == natsbus::event_kind::error) errors.push_back(e);
    });
    co_await c.connect();
    auto sub = co_await c.subscribe("allowed.x");
    co_await c.publish("forbidden.x", "nope");
    co_await c.publish("allowed.x", "yes");
    co_await c.flush();
    BOOST_REQUIRE(errors.size() == 1u);
    BOOST_TEST(errors[0].ec == error::permissions_violation);
    BOOST_TEST(errors[0].text.find("forbidden.x") != std::string::npos);
    BOOST_TEST(c.is_connected());
    auto m = co_await sub.next();
    BOOST_TEST(m.payload == "yes");
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(bad_credentials_fail_with_typed_error) {
  natsbus::test::server_options so;
  so.config = R"(authorization { user: "bob", password: "right" })";
  nats_server server(so);
  run_coro([&]() -> asio::awaitable<void> {
    auto o = options_for(server);
    o.user = "bob";
    o.password = "wrong";
    natsbus::connection c(co_await asio::this_coro::executor, o);
    auto [ec] = co_await c.connect(use_ec);
    BOOST_TEST(ec == error::authorization_violation);
    BOOST_TEST(c.last_error().find("Authorization") != std::string::npos);
    // URL credentials work too.
    natsbus::connection_options good;
    good.servers = {"nats://bob:right@127.0.0.1:" + std::to_string(server.port())};
    natsbus::connection c2(co_await asio::this_coro::executor, good);
    co_await c2.connect();
    BOOST_TEST(c2.is_connected());
    c2.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()
