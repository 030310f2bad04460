// The bus's durable subscriptions: acks after success, retries with backoff, dead letters with their reason, keyed
// order, long handlers kept alive, timeouts, throwing handlers, strategies. The semantic cases run twice: against
// a real nats-server and against the memory backend (no server); the cases that kill or change the server run
// against the server only.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "bus_fixtures.hpp"
#include "nats_server.hpp"
#include "run.hpp"

#include <natsbus/event_bus.hpp>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace asio = boost::asio;
using natsbus::bus_event;
using natsbus::error;
using natsbus::error_code;
using natsbus::handle_result;
using natsbus::topic_strategy;
using natsbus::test::eventually;
using natsbus::test::fast_subscribe_options;
using natsbus::test::nats_server;
using natsbus::test::run_coro;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
using clock_type = std::chrono::steady_clock;

namespace {

natsbus::event_bus_config bus_config(const nats_server& s, topic_strategy strategy = topic_strategy::create_or_update) {
  return natsbus::test::persistent_bus_config(s, "bus-subscribe-test", strategy);
}

// (Views, not strings: GCC 12 mishandles non-trivial temporaries inside a co_await expression.)
asio::awaitable<void> publish_keyed(natsbus::event_bus& bus, std::string_view topic, std::string_view key,
                                    std::string_view payload) {
  natsbus::headers h;
  h.set("Key", key);
  natsbus::bus_publish_options po;
  po.hdrs = &h;
  co_await bus.publish(topic, payload, po);
}

struct fixture {
  nats_server server;
};

// The two backends the semantic cases run on.
struct on_nats {
  static constexpr bool memory = false;
};
struct on_memory {
  static constexpr bool memory = true;
};
using backends = std::tuple<on_nats, on_memory>;

// A bus's surroundings: a nats-server for on_nats, nothing for on_memory.
template <class Backend>
struct backend_env {
  std::optional<nats_server> server;
  backend_env() {
    if constexpr (!Backend::memory) server.emplace();
  }
  natsbus::event_bus_config config(topic_strategy strategy = topic_strategy::create_or_update) {
    natsbus::event_bus_config c;
    if constexpr (Backend::memory) {
      c.backend = natsbus::bus_backend::memory;
      c.strategy = strategy;
      c.default_topic_options.persistence = natsbus::topic_persistence::persistent;
      c.default_topic_options.storage = natsbus::storage_type::memory;
    } else {
      c = bus_config(*server, strategy);
    }
    return c;
  }
};

// Acks written and not yet sent reach the server before what is asked next (a no-op in memory).
template <class Backend>
asio::awaitable<void> settle(natsbus::event_bus& bus) {
  if constexpr (!Backend::memory) co_await bus.conn().flush();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bus_semantics)

// A poison event reaches the dead-letter topic after max_deliver deliveries, with its reason and origin, while the
// events around it are handled; nothing is acked before its handler succeeded.
BOOST_AUTO_TEST_CASE_TEMPLATE(a_poison_event_is_dead_lettered_while_others_flow, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config());
    co_await bus.start();
    std::vector<std::string> handled;
    int poison_attempts = 0;
    natsbus::event_handler_fn handler1 = [&](const bus_event& e) -> asio::awaitable<handle_result> {
          if (e.payload == "poison") {
            ++poison_attempts;
            co_return handle_result::retry("cannot parse order");
          }
          handled.emplace_back(e.payload);
          co_return handle_result::ok();
        };
    const natsbus::subscribe_options opts1 = fast_subscribe_options("billing");
    auto sub = co_await bus.subscribe("orders", handler1, opts1);
    BOOST_TEST(sub.consumer() == "billing__orders");
    std::vector<std::string> dead;
    std::map<std::string, std::string> dead_headers;
    natsbus::event_handler_fn handler2 = [&](const bus_event& e) -> asio::awaitable<handle_result> {
          dead.emplace_back(e.payload);
          if (e.hdrs)
            for (const auto& [k, v] : e.hdrs->entries()) dead_headers[k] = v;
          co_return handle_result::ok();
        };
    const natsbus::subscribe_options opts2 = fast_subscribe_options("audit");
    auto dlq = co_await bus.subscribe("orders.dlq", handler2, opts2);
    co_await bus.publish("orders", "o1");
    co_await bus.publish("orders", "poison");
    co_await bus.publish("orders", "o2");
    BOOST_REQUIRE(co_await eventually([&] { return dead.size() == 1 && handled.size() == 2; }));
    BOOST_TEST(poison_attempts == 3);
    BOOST_TEST(dead[0] == "poison");
    BOOST_TEST(dead_headers[std::string(natsbus::dlq_error_header)] == "cannot parse order");
    BOOST_TEST(dead_headers[std::string(natsbus::dlq_topic_header)] == "orders");
    BOOST_TEST(dead_headers[std::string(natsbus::dlq_sequence_header)] == "2");
    BOOST_TEST(dead_headers[std::string(natsbus::dlq_deliveries_header)] == "3");
    BOOST_TEST(sub.stats().dead_lettered == 1u);
    BOOST_TEST(sub.stats().retried == 2u);
    BOOST_TEST(sub.stats().handled == 2u);
    // The consumer on the server agrees: everything acked or terminated.
    co_await settle<Backend>(bus);
    auto info = co_await bus.subscriber_consumer_info("orders", "billing");
    BOOST_TEST(info.num_ack_pending == 0);
    BOOST_TEST(info.config.max_deliver == -1);  // the bus counts deliveries itself
    sub.stop();
    dlq.stop();
    bus.close();
  });
}

// Keyed order: an event that fails twice blocks its key; later events of that key wait for it, other keys go on.
BOOST_AUTO_TEST_CASE_TEMPLATE(a_failing_event_blocks_only_its_key, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config());
    co_await bus.start();
    std::vector<std::string> order;  // successes, in the order they happened
    int a1_attempts = 0;
    auto o = fast_subscribe_options("keyed");
    o.key_header = "Key";
    o.max_concurrency = 4;
    o.max_deliver = 5;
    o.backoff = {300ms};
    natsbus::event_handler_fn handler3 = [&](const bus_event& e) -> asio::awaitable<handle_result> {
          if (e.payload == "a1" && ++a1_attempts <= 2) co_return handle_result::retry("not yet");
          order.emplace_back(e.payload);
          co_return handle_result::ok();
        };
    const natsbus::subscribe_options opts3 = o;
    auto sub = co_await bus.subscribe("accounts", handler3, opts3);
    co_await publish_keyed(bus, "accounts", "a", "a1");
    co_await publish_keyed(bus, "accounts", "a", "a2");
    co_await publish_keyed(bus, "accounts", "b", "b1");
    co_await publish_keyed(bus, "accounts", "a", "a3");
    co_await publish_keyed(bus, "accounts", "b", "b2");
    BOOST_REQUIRE(co_await eventually([&] { return order.size() == 5; }));
    auto pos = [&](const std::string& p) { return std::find(order.begin(), order.end(), p) - order.begin(); };
    BOOST_TEST(a1_attempts == 3);
    BOOST_TEST(pos("a1") < pos("a2"));
    BOOST_TEST(pos("a2") < pos("a3"));
    BOOST_TEST(pos("b1") < pos("b2"));
    BOOST_TEST(pos("b2") < pos("a1"));  // b went on while a1 waited for its retries
    BOOST_TEST(sub.stats().retried == 2u);
    sub.stop();
    bus.close();
  });
}

// A handler that takes three times ack_wait: in-progress acks keep its event, and the one waiting behind it, from
// redelivery.
BOOST_AUTO_TEST_CASE_TEMPLATE(a_handler_three_times_ack_wait_is_never_redelivered, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config());
    co_await bus.start();
    std::vector<std::uint64_t> deliveries;
    auto o = fast_subscribe_options("slow");
    o.ack_wait = 1s;
    o.handler_timeout = 10s;
    natsbus::event_handler_fn handler4 = [&](const bus_event& e) -> asio::awaitable<handle_result> {
          deliveries.push_back(e.delivery);
          asio::steady_timer t(co_await asio::this_coro::executor, 3s);
          co_await t.async_wait(asio::use_awaitable);
          co_return handle_result::ok();
        };
    const natsbus::subscribe_options opts4 = o;
    auto sub = co_await bus.subscribe("reports", handler4, opts4);
    co_await bus.publish("reports", "r1");
    co_await bus.publish("reports", "r2");
    BOOST_REQUIRE(co_await eventually([&] { return sub.stats().handled == 2; }, 15s));
    BOOST_TEST(deliveries.size() == 2u);
    BOOST_TEST(deliveries[0] == 1u);
    BOOST_TEST(deliveries[1] == 1u);
    BOOST_TEST(sub.stats().received == 2u);  // no redelivery reached the subscriber either
    BOOST_TEST(sub.stats().in_progress_acks >= 4u);
    sub.stop();
    bus.close();
  }, 30s);
}

// A handler that throws, and one that never finishes: each is a retry with its reason, never a crash or a hang.
BOOST_AUTO_TEST_CASE_TEMPLATE(throwing_and_hanging_handlers_are_retried, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config());
    co_await bus.start();
    int attempts = 0;
    bool done = false;
    auto o = fast_subscribe_options("faulty");
    o.handler_timeout = 300ms;
    o.max_deliver = 5;
    natsbus::event_handler_fn handler5 = [&](const bus_event&) -> asio::awaitable<handle_result> {
          ++attempts;
          if (attempts == 1) throw std::runtime_error("boom");
          if (attempts == 2) {
            asio::steady_timer t(co_await asio::this_coro::executor, 1h);  // cancelled at the timeout
            co_await t.async_wait(asio::use_awaitable);
          }
          done = true;
          co_return handle_result::ok();
        };
    const natsbus::subscribe_options opts5 = o;
    auto sub = co_await bus.subscribe("jobs", handler5, opts5);
    co_await bus.publish("jobs", "j1");
    BOOST_REQUIRE(co_await eventually([&] { return done && sub.stats().handled == 1; }));
    BOOST_TEST(attempts == 3);
    BOOST_TEST(sub.stats().timeouts == 1u);
    BOOST_TEST(sub.stats().retried == 2u);
    sub.stop();
    bus.close();
  });
}

// 100 keys x 1,000 events, handlers failing at random: every event succeeds exactly once, in order within its key.
BOOST_AUTO_TEST_CASE_TEMPLATE(random_failures_keep_per_key_order, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config());
    co_await bus.start();
    constexpr int keys = 100, per_key = 1000;
    std::map<std::string, std::vector<int>> seen;  // per key, the successes in order
    std::mt19937 rng(42);
    std::size_t successes = 0;
    auto o = fast_subscribe_options("random");
    o.key_header = "Key";
    o.max_concurrency = 8;
    o.max_deliver = 100;  // never dead-lettered here
    o.backoff = {10ms};
    natsbus::event_handler_fn handler6 = [&](const bus_event& e) -> asio::awaitable<handle_result> {
          if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) co_return handle_result::retry("random");
          auto payload = std::string(e.payload);
          seen[std::string(e.key)].push_back(std::stoi(payload.substr(payload.find(':') + 1)));
          ++successes;
          co_return handle_result::ok();
        };
    const natsbus::subscribe_options opts6 = o;
    auto sub = co_await bus.subscribe("ledger", handler6, opts6);
    std::vector<natsbus::ack_future> acks;
    acks.reserve(keys * per_key);
    for (int i = 0; i < per_key; ++i)
      for (int k = 0; k < keys; ++k) {
        const std::string key = "k" + std::to_string(k), payload = key + ":" + std::to_string(i);
        natsbus::headers h;
        h.set("Key", key);
        natsbus::bus_publish_options po;
        po.hdrs = &h;
        auto [ec, f] = co_await bus.publish_async("ledger", payload, po, use_ec);
        BOOST_REQUIRE_MESSAGE(!ec, ec.message());
        acks.push_back(std::move(f));
      }
    for (auto& f : acks) {
      auto [ec, ack] = co_await f.get(use_ec);
      BOOST_REQUIRE_MESSAGE(!ec, ec.message());
    }
    BOOST_REQUIRE(co_await eventually([&] { return successes >= static_cast<std::size_t>(keys * per_key); }, 90s));
    BOOST_TEST(successes == static_cast<std::size_t>(keys * per_key));
    for (const auto& [key, list] : seen) {
      BOOST_TEST(list.size() == static_cast<std::size_t>(per_key), key);
      for (std::size_t i = 0; i < list.size(); ++i) BOOST_TEST(list[i] == static_cast<int>(i), key << " #" << i);
    }
    BOOST_TEST(sub.stats().retried > 0u);
    BOOST_TEST(sub.stats().duplicates == 0u);
    sub.stop();
    bus.close();
  }, 120s);
}

// Strategies apply to consumers: validate_only refuses a missing consumer and a different one, create_or_update
// changes it; bad options are refused before anything is sent.
BOOST_AUTO_TEST_CASE_TEMPLATE(strategies_and_bad_options, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config(topic_strategy::create_or_update));
    co_await bus.start();
    const natsbus::event_handler_fn noop = [](const bus_event&) -> asio::awaitable<handle_result> {
      co_return handle_result::ok();
    };
    auto o = fast_subscribe_options("g1");
    bus.set_topic_config_strategy(topic_strategy::create_or_update);
    auto [cec, created] = co_await bus.subscribe("things", noop, o, use_ec);
    BOOST_REQUIRE_MESSAGE(!cec, cec.message() << ": " << bus.last_error());
    created.stop();
    bus.set_topic_config_strategy(topic_strategy::validate_only);
    auto other = o;
    other.group = "g2";
    auto [mec, missing] = co_await bus.subscribe("things", noop, other, use_ec);
    BOOST_TEST(mec == error::consumer_not_found_for_subscriber, mec.message());
    auto changed = o;
    changed.ack_wait = 5s;
    auto [dec, differs] = co_await bus.subscribe("things", noop, changed, use_ec);
    BOOST_TEST(dec == error::consumer_config_mismatch, dec.message());
    BOOST_TEST(bus.last_error().find("ack_wait") != std::string::npos, bus.last_error());
    bus.set_topic_config_strategy(topic_strategy::create_or_update);
    auto [uec, updated] = co_await bus.subscribe("things", noop, changed, use_ec);
    BOOST_TEST(!uec, uec.message());
    auto info = co_await bus.subscriber_consumer_info("things", "g1");
    BOOST_TEST(info.name == "g1__things");
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(info.config.ack_wait).count() == 5000);
    updated.stop();
    for (auto bad : {std::string(""), std::string("a.b"), std::string("has_underscore"), std::string("sp ace")}) {
      auto b = o;
      b.group = bad;
      auto [bec, none] = co_await bus.subscribe("things", noop, b, use_ec);
      BOOST_TEST(bec == error::invalid_argument, "group '" << bad << "'");
    }
    auto zero = o;
    zero.max_deliver = 0;
    auto [zec, none] = co_await bus.subscribe("things", noop, zero, use_ec);
    BOOST_TEST(zec == error::invalid_argument);
    bus.close();
  });
}

// Envelopes: published with their headers, the event id as Nats-Msg-Id (a re-publish is stored once), received
// checked; an invalid one is refused at publish, and one received without a valid envelope is dead-lettered with
// the reason.
BOOST_AUTO_TEST_CASE_TEMPLATE(envelopes_round_trip_deduplicate_and_dead_letter_when_invalid, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config());
    co_await bus.start();
    std::vector<natsbus::envelope> got;
    std::vector<std::string> dead_reasons;
    natsbus::envelope_handler_fn handler = [&](const natsbus::envelope& env,
                                               const bus_event& e) -> asio::awaitable<handle_result> {
      got.push_back(env);
      BOOST_TEST(e.key == env.aggregate_id);  // the aggregate id is the key
      BOOST_TEST(e.payload == "{\"total\":42}");
      co_return handle_result::ok();
    };
    const auto opts = fast_subscribe_options("shipping");
    auto sub = co_await bus.subscribe_envelope("orders.created", handler, opts);
    natsbus::event_handler_fn on_dead = [&](const bus_event& e) -> asio::awaitable<handle_result> {
      if (e.hdrs) dead_reasons.emplace_back(e.hdrs->get(natsbus::dlq_error_header).value_or(""));
      co_return handle_result::ok();
    };
    const auto dead_opts = fast_subscribe_options("audit");
    auto dlq = co_await bus.subscribe("orders.created.dlq", on_dead, dead_opts);

    natsbus::envelope env;
    env.event_id = "evt-1";
    env.event_type = "order.created";
    env.version = 1;
    env.aggregate_id = "order-7";
    env.correlation_id = "req-9";
    const std::string body = "{\"total\":42}";
    // The stream's duplicate window, not asked for, is the publish deadline plus half (5 s + 2.5 s), not 2 min.
    auto stream_info = co_await bus.topic_stream_info("orders.created");
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(stream_info.config.duplicate_window).count() ==
               7500);
    auto first = co_await bus.publish_envelope("orders.created", env, body);
    auto again = co_await bus.publish_envelope("orders.created", env, body);  // an outbox relay's retry
    BOOST_TEST(!first.duplicate);
    BOOST_TEST(again.duplicate);
    BOOST_TEST(again.seq == first.seq);
    // Invalid at publish: refused, nothing sent.
    auto broken = env;
    broken.event_type = "";
    auto [pec, pack] = co_await bus.publish_envelope("orders.created", broken, body, use_ec);
    BOOST_TEST(pec == error::invalid_argument);
    BOOST_TEST(bus.last_error().find("event_type") != std::string::npos, bus.last_error());
    // A plain message on the topic has no envelope: dead-lettered with the reason.
    co_await bus.publish("orders.created", "not an envelope");
    BOOST_REQUIRE(co_await eventually([&] { return got.size() == 1 && dead_reasons.size() == 1; }));
    BOOST_TEST(got[0].event_id == "evt-1");
    BOOST_TEST(got[0].correlation_id == "req-9");
    BOOST_TEST(natsbus::protocol::is_rfc3339(got[0].time), got[0].time);  // set at publish
    BOOST_TEST(dead_reasons[0].find("invalid envelope") == 0u, dead_reasons[0]);
    sub.stop();
    dlq.stop();
    bus.close();
  });
}

// A subscriber declared in the configuration: its consumer exists once start() returns (before any handler),
// subscribe(topic, group, handler) runs it with the configured options; health() reports the lag and the oldest
// unacked event without publishing anything, and a stopped subscription as a problem.
BOOST_AUTO_TEST_CASE_TEMPLATE(configured_subscribers_and_health, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto cfg = env.config();
    natsbus::subscriber_config sc;
    sc.topic = "payments";
    sc.options = fast_subscribe_options("ledger");
    sc.options.ack_wait = 3s;
    cfg.subscribers.push_back(sc);
    natsbus::event_bus bus(ex, cfg);
    co_await bus.start();
    auto info = co_await bus.subscriber_consumer_info("payments", "ledger");
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(info.config.ack_wait).count() == 3000);
    for (int i = 0; i < 5; ++i) co_await bus.publish("payments", "p");
    bool release = false;
    int handled = 0;
    natsbus::event_handler_fn slow = [&](const bus_event&) -> asio::awaitable<handle_result> {
      while (!release) co_await natsbus::test::pause(10ms);
      ++handled;
      co_return handle_result::ok();
    };
    auto sub = co_await bus.subscribe("payments", "ledger", slow);
    BOOST_REQUIRE(co_await eventually([&] { return sub.stats().running == 1; }));
    co_await natsbus::test::pause(100ms);
    auto h = co_await bus.health();
    BOOST_TEST(h.healthy(), h.problem);
    BOOST_TEST(h.connected);
    BOOST_TEST(h.jetstream);
    BOOST_REQUIRE(h.subscriptions.size() == 1u);
    BOOST_TEST(h.subscriptions[0].consumer == "ledger__payments");
    BOOST_TEST(h.subscriptions[0].lag == 5u);  // nothing handled yet: all pending or awaiting an ack
    BOOST_TEST(h.subscriptions[0].oldest_unacked_age.count() >= 100);
    BOOST_TEST(sub.stats().lag == 5u);  // the same, from the ack subjects alone
    release = true;
    BOOST_REQUIRE(co_await eventually([&] { return handled == 5; }));
    co_await settle<Backend>(bus);
    BOOST_REQUIRE(co_await eventually([&] { return sub.stats().lag == 0; }));
    sub.stop();
    BOOST_REQUIRE(co_await eventually([&] { return !sub.stats().consuming; }));
    h = co_await bus.health();
    BOOST_TEST(!h.healthy());
    BOOST_TEST(h.problem.find("not consuming") != std::string::npos, h.problem);
    // Nothing was published to find any of this: the stream holds the five events only.
    auto si = co_await bus.topic_stream_info("payments");
    BOOST_TEST(si.state.messages == 5u);
    // A group that is not in the configuration.
    auto [uec, none] = co_await bus.subscribe("payments", "nobody", slow, use_ec);
    BOOST_TEST(uec == error::invalid_argument);
    bus.close();
  });
}

// The outbox form: publish_envelope_async hands each outcome (event id, sequence or error) to
// next_publish_result(). With room for 10, the 11th publish waits until a result is taken: nothing is dropped.
BOOST_AUTO_TEST_CASE_TEMPLATE(publish_results_are_bounded_and_never_dropped, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto cfg = env.config();
    cfg.publish_results_capacity = 10;
    natsbus::event_bus bus(ex, cfg);
    co_await bus.start();
    auto small = natsbus::topic_options{};
    small.persistence = natsbus::topic_persistence::persistent;
    small.storage = natsbus::storage_type::memory;
    small.max_message_size = 16;
    co_await bus.configure_topic("outbox.small", small);
    constexpr int n = 30;
    int sent = 0;
    bool publisher_done = false;
    auto publisher = [&]() -> asio::awaitable<void> {
      for (int i = 1; i <= n; ++i) {
        natsbus::envelope env;
        env.event_id = "evt-" + std::to_string(i % 25 + 1);  // the last five repeat earlier ids
        env.event_type = "t";
        const std::string topic = i == 7 ? "outbox.small" : "outbox.events";
        const std::string body = i == 7 ? std::string(100, 'x') : "e";
        auto [ec] = co_await bus.publish_envelope_async(topic, env, body, use_ec);
        BOOST_TEST(!ec, ec.message());
        ++sent;
      }
      publisher_done = true;
    };
    asio::co_spawn(ex, publisher(), asio::detached);
    co_await natsbus::test::pause(300ms);
    BOOST_TEST(sent == 10);  // waits for room: nobody has taken a result yet
    std::map<std::string, int> seen;
    int errors = 0, duplicates = 0;
    for (int k = 0; k < n; ++k) {
      auto o = co_await bus.next_publish_result();
      ++seen[o.event_id];
      if (o.error) {
        ++errors;
        BOOST_TEST(o.topic == "outbox.small");
      } else {
        BOOST_TEST(o.seq > 0u);
        duplicates += o.duplicate;
      }
    }
    // The last publish completes once its outcome is queued; the publisher notes it on its next turn.
    BOOST_TEST(co_await eventually([&] { return publisher_done; }));
    BOOST_TEST(errors == 1);       // the message over the stream's size limit
    BOOST_TEST(duplicates == 5);   // the repeated event ids landed once
    BOOST_TEST(seen.size() == 25u);
    bus.close();
  });
}

// Consumers are cached as streams are: a second subscribe of a (topic, group) with the same options asks the
// backend nothing; other options are checked (and, under create_or_update, applied) again.
BOOST_AUTO_TEST_CASE_TEMPLATE(a_second_subscribe_of_a_group_asks_nothing, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config());
    co_await bus.start();
    const natsbus::event_handler_fn noop = [](const bus_event&) -> asio::awaitable<handle_result> {
      co_return handle_result::ok();
    };
    const auto o = fast_subscribe_options("cached");
    auto first = co_await bus.subscribe("tickets", noop, o);
    BOOST_TEST(bus.metrics().consumer_lookups == 1u);
    first.stop();
    auto second = co_await bus.subscribe("tickets", noop, o);
    BOOST_TEST(bus.metrics().consumer_lookups == 1u);
    second.stop();
    auto longer = o;
    longer.ack_wait = 4s;
    auto third = co_await bus.subscribe("tickets", noop, longer);
    BOOST_TEST(bus.metrics().consumer_lookups == 2u);
    auto info = co_await bus.subscriber_consumer_info("tickets", "cached");
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(info.config.ack_wait).count() == 4000);
    third.stop();
    bus.close();
  });
}

// Topic strategies hold for streams on either backend: create_only makes the stream, validate_only reports each
// difference and changes nothing, create_or_update changes it; an ephemeral topic is a core publish that core
// subscribers see, at most once.
BOOST_AUTO_TEST_CASE_TEMPLATE(stream_strategies_and_ephemeral_topics, Backend, backends) {
  backend_env<Backend> env;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, env.config(topic_strategy::create_only));
    co_await bus.start();
    natsbus::topic_options o;
    o.persistence = natsbus::topic_persistence::persistent;
    o.storage = natsbus::storage_type::memory;
    o.max_messages = 100;
    auto created = co_await bus.configure_topic("inventory", o);
    BOOST_TEST(created.created);
    auto wider = o;
    wider.max_messages = 500;
    bus.set_topic_config_strategy(topic_strategy::validate_only);
    auto [vec, validated] = co_await bus.configure_topic("inventory", wider, use_ec);
    BOOST_TEST(vec == error::stream_config_mismatch, vec.message());
    BOOST_REQUIRE(validated.differences.size() == 1u);
    BOOST_TEST(validated.differences[0].find("max_msgs") != std::string::npos, validated.differences[0]);
    auto [mec, missing] = co_await bus.configure_topic("never.made", o, use_ec);
    BOOST_TEST(mec == error::stream_not_found_for_topic, mec.message());
    bus.set_topic_config_strategy(topic_strategy::create_or_update);
    auto updated = co_await bus.configure_topic("inventory", wider);
    BOOST_TEST(updated.updated);
    auto si = co_await bus.topic_stream_info("inventory");
    BOOST_TEST(si.config.max_msgs == 500);
    for (int i = 0; i < 3; ++i) co_await bus.publish("inventory", "item");
    si = co_await bus.topic_stream_info("inventory");
    BOOST_TEST(si.state.messages == 3u);
    BOOST_TEST(si.state.last_seq == 3u);

    natsbus::topic_options eph;
    eph.persistence = natsbus::topic_persistence::ephemeral;
    co_await bus.configure_topic("presence", eph);
    std::vector<std::string> seen;
    natsbus::event_bus::message_handler on_presence = [&](const natsbus::message& m) { seen.push_back(m.payload); };
    auto sub = co_await bus.subscribe("presence", on_presence);
    if constexpr (!Backend::memory) co_await bus.conn().flush();  // the SUB is in place before the publish
    auto ack = co_await bus.publish("presence", "here");
    BOOST_TEST(ack.seq == 0u);  // a core publish: no stream, no sequence
    BOOST_REQUIRE(co_await eventually([&] { return seen.size() == 1; }));
    BOOST_TEST(seen[0] == "here");
    auto [sec, none] = co_await bus.topic_stream_info("presence", use_ec);
    BOOST_TEST(sec == error::stream_not_found_for_topic);
    sub.unsubscribe();
    if constexpr (!Backend::memory) co_await bus.conn().flush();
    co_await bus.publish("presence", "gone");
    co_await natsbus::test::pause(50ms);
    BOOST_TEST(seen.size() == 1u);  // unsubscribed: nothing more
    bus.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()

// Cases that kill or change the server behind the bus.
BOOST_FIXTURE_TEST_SUITE(bus_subscribe, fixture)

// kill -9 of the server in the middle of a stream of events (file storage): nothing is lost. The server keeps a
// consumer's acks in memory and writes them out later, so acks of events handled before the kill die with it and
// those events come again (as first deliveries: the delivery counts died too). The subscription knows it handled
// them: it acks them again without calling the handler, and counts them as duplicates.
BOOST_AUTO_TEST_CASE(a_server_kill_loses_nothing) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto cfg = bus_config(server);
    cfg.default_topic_options.storage = natsbus::storage_type::file;
    cfg.connection.reconnect_wait = 100ms;
    cfg.connection.max_reconnects = -1;
    natsbus::event_bus bus(ex, cfg);
    co_await bus.start();
    constexpr int n = 2000;
    std::vector<int> handled(n + 1);
    int total = 0;
    bool killed = false;
    natsbus::event_handler_fn handler = [&](const bus_event& e) -> asio::awaitable<handle_result> {
      const int i = std::stoi(std::string(e.payload));
      ++handled[i];
      ++total;
      if (!killed && total == n / 2) {
        killed = true;
        server.kill();
        server.restart();
      }
      co_return handle_result::ok();
    };
    auto o = fast_subscribe_options("survivor");
    o.max_concurrency = 4;
    o.ack_wait = 1s;
    auto sub = co_await bus.subscribe("events", handler, o);
    for (int i = 1; i <= n; ++i) {
      const std::string payload = std::to_string(i);
      auto [ec, f] = co_await bus.publish_async("events", payload, use_ec);
      BOOST_REQUIRE_MESSAGE(!ec, ec.message());
    }
    auto [cec] = co_await bus.publish_async_complete(use_ec);
    BOOST_TEST(!cec, cec.message());
    BOOST_REQUIRE(co_await eventually([&] {
      return std::all_of(handled.begin() + 1, handled.end(), [](int c) { return c >= 1; });
    }, 40s));
    int twice = 0;
    for (int i = 1; i <= n; ++i) twice += handled[i] > 1;
    BOOST_TEST_MESSAGE("duplicates across the kill (acked again, not handled): " << sub.stats().duplicates);
    BOOST_TEST(killed);
    BOOST_TEST(twice == 0);
    BOOST_TEST(sub.stats().handled == static_cast<std::uint64_t>(n));
    // The server agrees in the end: nothing left unacked.
    BOOST_REQUIRE(co_await eventually([&] { return true; }, 0ms));
    natsbus::consumer_info info;
    const auto until = clock_type::now() + 10s;
    do {
      co_await natsbus::test::pause(100ms);
      auto [iec, i] = co_await bus.js().get_consumer_info(natsbus::event_bus::stream_name_for("events"),
                                                          sub.consumer(), use_ec);
      if (!iec) info = i;
    } while ((info.num_ack_pending != 0 || info.num_pending != 0) && clock_type::now() < until);
    BOOST_TEST(info.num_ack_pending == 0);
    BOOST_TEST(info.num_pending == 0u);
    sub.stop();
    bus.close();
  }, 60s);
}

// Every floor logs what it does, naming the server, subject, stream or consumer, with the URL's password
// redacted; at debug level nothing is logged per message.
BOOST_AUTO_TEST_CASE(each_floor_logs_with_names_and_no_secret) {
  std::ostringstream text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
  auto logger = std::make_shared<spdlog::logger>("natsbus-test", sink);
  logger->set_level(spdlog::level::debug);
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto cfg = bus_config(server);
    cfg.connection.servers = {"nats://alice:s3cr3t-pw@127.0.0.1:" + std::to_string(server.port())};
    cfg.connection.logger = logger;
    natsbus::event_bus bus(ex, cfg);
    co_await bus.start();
    int handled = 0;
    natsbus::event_handler_fn count = [&](const bus_event&) -> asio::awaitable<handle_result> {
      ++handled;
      co_return handle_result::ok();
    };
    const auto o = fast_subscribe_options("loggers");
    auto sub = co_await bus.subscribe("audit.log", count, o);
    for (int i = 0; i < 50; ++i) co_await bus.publish("audit.log", "entry");
    BOOST_REQUIRE(co_await eventually([&] { return handled == 50; }));
    auto [sec, none] = co_await bus.js().get_stream_info("NO_SUCH_STREAM", use_ec);
    BOOST_TEST(sec);
    auto raw = co_await bus.conn().subscribe("audit.raw");
    raw.unsubscribe();
    sub.stop();
    BOOST_REQUIRE(co_await eventually([&] { return !sub.stats().consuming; }));
    bus.close();
  });
  logger->flush();
  const std::string log = text.str();
  BOOST_TEST_MESSAGE(log);
  BOOST_TEST(log.find("connected to nats://***@127.0.0.1:") != std::string::npos, log);  // the server, named
  BOOST_TEST(log.find("s3cr3t-pw") == std::string::npos, log);  // its credentials, not
  BOOST_TEST(log.find("alice") == std::string::npos, log);
  BOOST_TEST(log.find("stream audit_log created") != std::string::npos, log);      // the bus
  BOOST_TEST(log.find("subscriber audit.log (loggers): consuming audit_log > loggers__audit_log") != std::string::npos,
             log);                                                                 // the subscription
  BOOST_TEST(log.find("subscriber audit.log (loggers): stopped") != std::string::npos, log);
  BOOST_TEST(log.find("JetStream: error 10059") != std::string::npos, log);       // JetStream
  BOOST_TEST(log.find("subscribed to 'audit.raw' (sid") != std::string::npos, log);  // the connection
  BOOST_TEST(log.find("#50") == std::string::npos, log);                           // nothing per message at debug
}

// A dead-letter topic whose stream cannot be made (another stream holds its subject): the subscription is refused
// at once with the reason, rather than discovering it on the first poison event.
BOOST_AUTO_TEST_CASE(a_dead_letter_topic_that_cannot_be_made_is_refused_at_subscribe) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, bus_config(server));
    co_await bus.start();
    natsbus::stream_config other;
    other.name = "OTHER";
    other.subjects = {"invoices.dlq"};
    other.storage = natsbus::storage_type::memory;
    co_await bus.js().create_stream(other);
    natsbus::event_handler_fn noop = [](const bus_event&) -> asio::awaitable<handle_result> {
      co_return handle_result::ok();
    };
    const auto o = fast_subscribe_options("billing");
    auto [ec, sub] = co_await bus.subscribe("invoices", noop, o, use_ec);
    BOOST_TEST(ec);
    BOOST_TEST(!sub.valid());
    BOOST_TEST(bus.last_error().find("dead-letter topic invoices.dlq") != std::string::npos, bus.last_error());
    bus.close();
  });
}

// The subscription's consumer deleted on the server: the subscription ends, with the reason, and health() says so.
BOOST_AUTO_TEST_CASE(a_deleted_consumer_ends_the_subscription_and_health_says_so) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::event_bus bus(ex, bus_config(server));
    co_await bus.start();
    natsbus::event_handler_fn noop = [](const bus_event&) -> asio::awaitable<handle_result> {
      co_return handle_result::ok();
    };
    const auto o = fast_subscribe_options("doomed");
    auto sub = co_await bus.subscribe("alerts", noop, o);
    BOOST_TEST(sub.stats().consuming);
    const std::string stream = natsbus::event_bus::stream_name_for("alerts"), consumer = sub.consumer();
    co_await bus.js().delete_consumer(stream, consumer);
    // 2.9 ends the pull with 409 Consumer Deleted at once; 2.10 drops it silently, and two missed heartbeats
    // (5 s each) and a CONSUMER.INFO tell.
    BOOST_REQUIRE(co_await eventually([&] { return !sub.stats().consuming; }, 15s));
    BOOST_TEST(sub.last_error().find("consumer deleted") != std::string::npos, sub.last_error());
    auto h = co_await bus.health();
    BOOST_TEST(!h.healthy());
    BOOST_REQUIRE(h.subscriptions.size() == 1u);
    BOOST_TEST(!h.subscriptions[0].consuming);
    // The cache forgot the consumer: subscribing again asks, and makes it again.
    const auto lookups = bus.metrics().consumer_lookups;
    auto again = co_await bus.subscribe("alerts", noop, o);
    BOOST_TEST(bus.metrics().consumer_lookups == lookups + 1);
    BOOST_TEST(again.stats().consuming);
    again.stop();
    bus.close();
  }, 30s);
}

BOOST_AUTO_TEST_SUITE_END()
