// Against a 3-node JetStream cluster on 127.0.0.1: server discovery, failover timing, an R3 stream whose leader
// is killed under a stream of windowed bus publishes, lame duck mode under load, and a durable consume whose
// consumer leader is killed.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "nats_cluster.hpp"
#include "event_log.hpp"
#include "run.hpp"

#include <natsbus/consumer.hpp>
#include <natsbus/event_bus.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::event_kind;
using natsbus::test::nats_cluster;
using natsbus::test::run_coro;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

using natsbus::test::event_log;

namespace {

// Local time of day with microseconds, as the server logs it, to line up with their lines.
std::string wall_clock() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%06lld", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us));
  return buf;
}

// The outcome of a run of windowed publishes.
struct publish_tally {
  std::size_t acked = 0;
  std::size_t failed = 0;
  std::size_t timeouts = 0;  // of the failures, those that met their deadline unanswered
  std::size_t duplicates = 0;
  std::map<std::string, std::size_t> errors;  // error text -> count
  std::string first_error;
  std::size_t first_failed_index = 0;
  std::size_t last_failed_index = 0;
  std::vector<clock_type::time_point> sent;  // when each publish was queued
  std::vector<std::uint64_t> seq;              // the sequence each publish was acked with (0: not acked)

  void fail(const error_code& ec, std::size_t index, const std::string& detail) {
    std::string text = ec.category().name() + std::string(":") + std::to_string(ec.value()) + " " + ec.message();
    if (!detail.empty()) text += " [" + detail + "]";
    if (ec == natsbus::error::timeout) ++timeouts;
    if (failed++ == 0) {
      first_error = text;
      first_failed_index = last_failed_index = index;
    }
    ++errors[text];
    first_failed_index = std::min(first_failed_index, index);
    last_failed_index = std::max(last_failed_index, index);
  }
  std::string describe() const {
    std::ostringstream s;
    s << "acked " << acked << ", failed " << failed << ", duplicate acks " << duplicates;
    for (const auto& [text, n] : errors) s << "\n    " << n << " x " << text;
    if (failed) s << "\n    failures from publish #" << first_failed_index << " to #" << last_failed_index;
    return s.str();
  }
  // Milliseconds from `t0` to when publish `index` was queued.
  long long sent_ms(std::size_t index, clock_type::time_point t0) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(sent.at(index) - t0).count();
  }
};

natsbus::topic_options replicated_topic() {
  natsbus::topic_options t;
  t.persistence = natsbus::topic_persistence::persistent;
  t.storage = natsbus::storage_type::file;
  t.replicas = 3;
  return t;
}

// The stream the bus makes for `topic` under per_topic mapping, with three replicas.
natsbus::stream_config replicated_stream(const std::string& topic) {
  natsbus::stream_config c;
  c.name = natsbus::event_bus::stream_name_for(topic);
  c.subjects.push_back(topic);
  c.storage = natsbus::storage_type::file;
  c.num_replicas = 3;
  return c;
}

// Seeds with `first` in front, tried in that order.
std::vector<std::string> seeds_starting_at(const nats_cluster& cluster, std::size_t first) {
  std::vector<std::string> out{cluster.url(first)};
  for (std::size_t i = 0; i < cluster.size(); ++i)
    if (i != first) out.push_back(cluster.url(i));
  return out;
}

natsbus::event_bus_config bus_config(const nats_cluster& cluster, std::size_t first) {
  natsbus::event_bus_config cfg;
  cfg.connection.servers = seeds_starting_at(cluster, first);
  cfg.connection.randomize_servers = false;
  cfg.connection.reconnect_wait = 100ms;
  cfg.connection.reconnect_jitter = 50ms;
  cfg.connection.max_reconnects = -1;
  // Elections on nats-server 2.9.10 usually take 4.5-11 s, but one took 50 s in a CI run: the deadline leaves
  // room for that.
  cfg.jetstream.timeout = 60s;
  cfg.jetstream.max_pending = 512;
  // Ride out a stream leader election: 503 (no leader yet) is retried within the deadline.
  cfg.jetstream.publish_retry_attempts = 100;
  cfg.jetstream.publish_retry_wait = 100ms;
  return cfg;
}

// Until both followers of `stream` are current (caught up with its leader); returns the leader's index. No event
// announces it: STREAM.INFO is asked every 50 ms, within a bound.
asio::awaitable<int> replicas_current(const nats_cluster& cluster, natsbus::jetstream& js, const std::string& stream) {
  auto deadline = clock_type::now() + 10s;
  for (;;) {
    auto [ec, info] = co_await js.get_stream_info(stream, use_ec);
    if (!ec && info.cluster && !info.cluster->leader.empty() && info.cluster->replicas.size() == 2 &&
        std::all_of(info.cluster->replicas.begin(), info.cluster->replicas.end(),
                    [](const natsbus::peer_info& p) { return p.current && !p.offline; })) {
      int leader = cluster.index_of_name(info.cluster->leader);
      BOOST_REQUIRE(leader >= 0);
      co_return leader;
    }
    BOOST_REQUIRE_MESSAGE(clock_type::now() < deadline, "the replicas of " << stream << " did not catch up");
    co_await natsbus::test::pause(50ms);
  }
}

// Creates the R3 stream for `topic`, waits until its followers are current, and returns the index of its leader.
asio::awaitable<int> create_replicated_stream(const nats_cluster& cluster, const std::string& topic) {
  auto ex = co_await asio::this_coro::executor;
  natsbus::connection_options o;
  o.servers = cluster.urls();
  natsbus::connection c(ex, o);
  co_await c.connect();
  natsbus::jetstream js(c);
  auto cfg = replicated_stream(topic);
  auto info = co_await js.create_stream(cfg);
  BOOST_REQUIRE(info.cluster.has_value());
  int leader = co_await replicas_current(cluster, js, cfg.name);
  c.close();
  co_return leader;
}

// The stream's state, asked until it answers (a management request may land during an election).
asio::awaitable<natsbus::stream_info> settled_stream_info(natsbus::jetstream& js, const std::string& stream) {
  auto deadline = clock_type::now() + 20s;
  for (;;) {
    auto [ec, info] = co_await js.get_stream_info(stream, use_ec);
    if (!ec) co_return info;
    BOOST_TEST_MESSAGE("STREAM.INFO failed: " << ec.message() << " (" << js.last_api_error().description << ")");
    BOOST_REQUIRE(clock_type::now() < deadline);
    co_await natsbus::test::pause(200ms);
  }
}

// Windowed publishes of `total` messages to `topic`. Before publish number `at`, `midway` runs; before publish
// number `gate_at`, when `gate` is set, the publisher waits for the connection's first `reconnected` event (so
// that publishes continue after the client moved).
asio::awaitable<publish_tally> publish_window(natsbus::event_bus& bus, const std::string& topic, std::size_t total,
                                              std::size_t at, const std::function<void()>& midway,
                                              event_log* gate = nullptr, std::size_t gate_at = 0) {
  publish_tally tally;
  tally.sent.resize(total);
  tally.seq.resize(total);
  std::deque<std::pair<std::size_t, natsbus::ack_future>> window;
  auto reap = [&](std::size_t index, error_code ec, const natsbus::pub_ack& ack) {
    if (ec) {
      tally.fail(ec, index, bus.js().last_api_error().description);
    } else {
      ++tally.acked;
      tally.seq[index] = ack.seq;
      if (ack.duplicate) ++tally.duplicates;
    }
  };
  for (std::size_t i = 0; i < total; ++i) {
    if (i == at) midway();
    if (gate && i == gate_at) co_await gate->wait(event_kind::reconnected, 1);
    std::string payload = "m" + std::to_string(i);
    auto [ec, f] = co_await bus.publish_async(topic, payload, use_ec);
    tally.sent[i] = clock_type::now();
    if (ec) {
      tally.fail(ec, i, bus.last_error());
      continue;
    }
    window.emplace_back(i, std::move(f));
    while (!window.empty() && (window.front().second.ready() || window.size() > 2048)) {
      auto [aec, ack] = co_await window.front().second.get(use_ec);
      reap(window.front().first, aec, ack);
      window.pop_front();
    }
  }
  while (!window.empty()) {
    auto [aec, ack] = co_await window.front().second.get(use_ec);
    reap(window.front().first, aec, ack);
    window.pop_front();
  }
  co_return tally;
}

// When the stream holds fewer messages than were acked, says where the difference lies: acks that name the same
// sequence for two different publishes (the sequence was given out again by a later leader), acks beyond the
// stream's last sequence, and what the stream holds at a few of those sequences.
asio::awaitable<void> explain_missing(natsbus::jetstream& js, const std::string& stream, const publish_tally& tally,
                                      std::uint64_t last_seq) {
  std::map<std::uint64_t, std::vector<std::size_t>> by_seq;  // ack sequence -> publishes acked with it
  for (std::size_t i = 0; i < tally.seq.size(); ++i)
    if (tally.seq[i]) by_seq[tally.seq[i]].push_back(i);
  std::size_t shared = 0, beyond = 0;
  std::vector<std::uint64_t> examples;
  for (const auto& [seq, who] : by_seq) {
    if (who.size() > 1) {
      ++shared;
      if (examples.size() < 4) examples.push_back(seq);
    }
    if (seq > last_seq) ++beyond;
  }
  BOOST_TEST_MESSAGE("acks name " << by_seq.size() << " distinct sequences; " << shared
                                  << " of them were given to more than one publish; " << beyond << " lie beyond "
                                  << last_seq);
  for (auto seq : examples) {
    std::ostringstream who;
    for (auto i : by_seq[seq]) who << " m" << i;
    auto [ec, m] = co_await js.get_message(stream, seq, use_ec);
    BOOST_TEST_MESSAGE("  seq " << seq << " acked for" << who.str() << "; the stream holds "
                                << (ec ? ec.message() : std::string(m.data)));
  }
}

struct cluster_fixture {
  cluster_fixture() {
    auto took = clock_type::now() - created;
    BOOST_TEST_MESSAGE("cluster started in " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                             << " ms");
  }
  clock_type::time_point created = clock_type::now();
  nats_cluster cluster;
};

// Waits until JetStream answers on every server, and says how long that took.
asio::awaitable<void> cluster_ready(const nats_cluster& cluster) {
  auto t0 = clock_type::now();
  co_await cluster.ready();
  BOOST_TEST_MESSAGE("JetStream ready after "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count() << " ms");
}

// Kills the R3 stream's leader in the middle of 20,000 windowed publishes; the client starts on the leader
// (the kill disconnects it) or on a follower (it stays connected, the routes lose the leader).
void leader_kill_scenario(nats_cluster& cluster, bool client_on_leader) {
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        co_await cluster_ready(cluster);
        const std::string topic = "cluster.orders";
        int leader = co_await create_replicated_stream(cluster, topic);
        auto first = static_cast<std::size_t>(client_on_leader ? leader : (leader + 1) % 3);

        event_log events(ex);  // declared first: it outlives the bus
        natsbus::event_bus bus(ex, bus_config(cluster, first));
        events.attach(bus.conn());
        co_await bus.start();
        auto topic_opts = replicated_topic();
        co_await bus.configure_topic(topic, topic_opts);
        BOOST_TEST(cluster.index_of_port(bus.conn().info().port) == static_cast<int>(first));
        BOOST_TEST_MESSAGE("stream leader " << cluster.server_name(static_cast<std::size_t>(leader))
                                            << ", client on " << cluster.server_name(first));

        const std::size_t total = 20000;
        clock_type::time_point killed_at;
        auto t0 = clock_type::now();
        std::function<void()> kill_leader = [&] {
          killed_at = clock_type::now();
          BOOST_TEST_MESSAGE("killing the leader at " << wall_clock());
          cluster.kill(static_cast<std::size_t>(leader));
        };
        auto tally = co_await publish_window(bus, topic, total, 8000, kill_leader);
        auto t1 = clock_type::now();
        BOOST_TEST_MESSAGE("publishes: " << tally.describe());
        BOOST_TEST_MESSAGE("all resolved " << std::chrono::duration_cast<std::chrono::milliseconds>(t1 - killed_at).count()
                                           << " ms after the kill (" << std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count()
                                           << " ms in all); reconnects " << events.count(event_kind::reconnected)
                                           << ", cache repairs " << bus.metrics().repairs);
        if (tally.failed)
          BOOST_TEST_MESSAGE("failed publishes were queued from " << tally.sent_ms(tally.first_failed_index, killed_at)
                             << " ms to " << tally.sent_ms(tally.last_failed_index, killed_at) << " ms after the kill");
        for (const auto& l : events.lines())
          if (l.rfind("server_info", 0) != 0) BOOST_TEST_MESSAGE("  event: " << l);
        if (tally.failed)  // the servers' view of the elections, to line up with the failures
          for (std::size_t i = 0; i < 3; ++i)
            BOOST_TEST_MESSAGE("log " << cluster.server_name(i) << ":\n" << cluster.log(i, "leader"));
        // nats-server 2.10.27 can leave a publish unanswered that reaches the servers just as the new stream
        // leader takes over (seen in 2 of 6 runs: 1 and 80 of 20,000, none stored): it meets its deadline and is
        // reported as a timeout, never as acked. Such timeouts are tolerated, within 1%; any other failure is
        // not, and the stream must hold exactly the acked publishes: nothing acked lost, nothing stored twice,
        // nothing stored that was reported failed.
        BOOST_TEST(tally.failed == tally.timeouts, "first error: " << tally.first_error);
        BOOST_TEST(tally.timeouts <= total / 100, "first error: " << tally.first_error);
        if (tally.timeouts) BOOST_TEST_MESSAGE("publishes timed out in the election: " << tally.timeouts);
        BOOST_TEST(tally.acked + tally.failed == total);
        if (client_on_leader) BOOST_TEST(events.count(event_kind::reconnected) >= 1);
        else BOOST_TEST(events.count(event_kind::disconnected) == 0);

        auto stream = natsbus::event_bus::stream_name_for(topic);
        auto info = co_await settled_stream_info(bus.js(), stream);
        BOOST_TEST(info.state.messages == tally.acked);  // nothing lost, nothing twice
        BOOST_TEST(info.state.last_seq == tally.acked);
        // Each acked publish has a sequence of its own: an ack meant for another publish never resolves one.
        std::set<std::uint64_t> seqs(tally.seq.begin(), tally.seq.end());
        seqs.erase(0);
        BOOST_TEST(seqs.size() == tally.acked);
        if (info.state.messages != tally.acked || seqs.size() != tally.acked) {
          co_await explain_missing(bus.js(), stream, tally, info.state.last_seq);
          for (std::size_t i = 0; i < 3; ++i)
            BOOST_TEST_MESSAGE("log " << cluster.server_name(i) << ":\n" << cluster.log(i, "leader"));
        }
        BOOST_REQUIRE(info.cluster.has_value());
        BOOST_TEST(info.cluster->leader != cluster.server_name(static_cast<std::size_t>(leader)));
      },
      120s);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cluster, cluster_fixture)

// Seeded with one server, the client learns the others from INFO and fails over to one of them.
BOOST_AUTO_TEST_CASE(discovers_the_other_servers) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection_options o;
    o.servers = {cluster.url(0)};
    o.reconnect_wait = 100ms;
    o.reconnect_jitter = 20ms;
    o.max_reconnects = -1;
    event_log events(ex);  // declared first: it outlives the connection
    natsbus::connection c(ex, o);
    events.attach(c);
    co_await c.connect();
    BOOST_TEST(c.info().port == cluster.port(0));
    // The cluster was formed before the connect: its servers came with the first INFO, which is no discovery.
    co_await c.flush();
    BOOST_TEST(events.count(event_kind::discovered_servers) == 0);

    // Yet they are in the pool: with only the seed given, the client fails over to one of them.
    cluster.kill(0);
    co_await events.wait(event_kind::reconnected, 1);
    int now_on = cluster.index_of_port(c.info().port);
    BOOST_TEST(now_on > 0);
    if (now_on > 0) BOOST_TEST(c.info().server_name == cluster.server_name(static_cast<std::size_t>(now_on)));

    // The new session carries traffic.
    auto sub = co_await c.subscribe("discovered.after");
    co_await c.publish("discovered.after", "still here");
    auto m = co_await sub.next();
    BOOST_TEST(m.payload == "still here");
  });
}

// The first attempt after losing a server goes to the next server in the pool at once; when every server was
// tried a moment ago, the next attempt on one waits no more than reconnect_wait + jitter.
BOOST_AUTO_TEST_CASE(reconnects_within_wait_and_jitter) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection_options o;
    o.servers = cluster.urls();
    o.randomize_servers = false;
    o.reconnect_wait = 200ms;
    o.reconnect_jitter = 50ms;
    o.max_reconnects = -1;
    event_log events(ex);  // declared first: it outlives the connection
    natsbus::connection c(ex, o);
    events.attach(c);
    co_await c.connect();
    int was_on = cluster.index_of_port(c.info().port);
    BOOST_REQUIRE(was_on >= 0);

    auto killed_at = clock_type::now();
    cluster.kill(static_cast<std::size_t>(was_on));
    co_await events.wait(event_kind::reconnected, 1);
    auto took = events.last_time(event_kind::reconnected) - killed_at;
    BOOST_TEST_MESSAGE("reconnected "
                       << std::chrono::duration_cast<std::chrono::microseconds>(took).count() << " us after the kill");
    BOOST_TEST((took < 200ms + 50ms + 500ms));
    int now_on = cluster.index_of_port(c.info().port);
    BOOST_TEST(now_on >= 0);
    BOOST_TEST(now_on != was_on);
    BOOST_REQUIRE(now_on >= 0);

    // Now no server is up: the client cycles through the pool, each server waiting reconnect_wait + jitter
    // after its last attempt. The first server to come back is taken within that bound.
    auto third = static_cast<std::size_t>(3 - was_on - now_on);
    cluster.kill(third);
    cluster.kill(static_cast<std::size_t>(now_on));
    co_await events.wait(event_kind::disconnected, 2);
    co_await natsbus::test::pause(600ms);  // a few rounds of failed attempts, so that every server has a recent one
    cluster.restart(static_cast<std::size_t>(was_on));
    auto restarted_at = clock_type::now();
    co_await events.wait(event_kind::reconnected, 2);
    auto waited = events.last_time(event_kind::reconnected) - restarted_at;
    BOOST_TEST_MESSAGE("reconnected " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                                      << " ms after the restart, with every server tried recently");
    BOOST_TEST((waited < 200ms + 50ms + 500ms));
    BOOST_TEST(cluster.index_of_port(c.info().port) == was_on);
  });
}

BOOST_AUTO_TEST_CASE(r3_stream_survives_leader_kill) { leader_kill_scenario(cluster, true); }

BOOST_AUTO_TEST_CASE(r3_stream_survives_leader_kill_client_on_follower) { leader_kill_scenario(cluster, false); }

// Publishes made while an R3 stream has no leader (its leader was killed, the client is on a follower and stays
// connected): every one is answered 503 by the server until the election ends, seconds later. Each publish must
// wait for the new leader within its deadline, not fail.
BOOST_AUTO_TEST_CASE(publishes_during_an_election_wait_for_the_new_leader) {
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        co_await cluster_ready(cluster);
        const std::string topic = "cluster.election";
        int leader = co_await create_replicated_stream(cluster, topic);
        auto first = static_cast<std::size_t>((leader + 1) % 3);

        event_log events(ex);  // declared first: it outlives the bus
        natsbus::event_bus bus(ex, bus_config(cluster, first));
        events.attach(bus.conn());
        co_await bus.start();
        auto topic_opts = replicated_topic();
        co_await bus.configure_topic(topic, topic_opts);
        auto before = co_await bus.publish(topic, "before");
        BOOST_TEST(before.seq == 1u);
        auto stream_name = natsbus::event_bus::stream_name_for(topic);
        int now_leader = co_await replicas_current(cluster, bus.js(), stream_name);
        BOOST_REQUIRE(now_leader == leader);

        auto killed_at = clock_type::now();
        BOOST_TEST_MESSAGE("killing the leader " << cluster.server_name(static_cast<std::size_t>(leader)) << " at "
                                                 << wall_clock() << "; client on " << cluster.server_name(first));
        cluster.kill(static_cast<std::size_t>(leader));
        const int total = 10;
        int failed = 0;
        std::string first_error;
        for (int i = 0; i < total; ++i) {
          auto t = clock_type::now();
          std::string payload = "during " + std::to_string(i);
          // The windowed form, one at a time: publish_async, then its ack future.
          natsbus::pub_ack ack;
          auto [ec, f] = co_await bus.publish_async(topic, payload, use_ec);
          if (!ec) {
            auto [aec, a] = co_await f.get(use_ec);
            ec = aec;
            ack = a;
          }
          auto ms = [](clock_type::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
          BOOST_TEST_MESSAGE("publish " << i << " sent " << ms(t - killed_at) << " ms after the kill: "
                                        << (ec ? ec.message() : "seq " + std::to_string(ack.seq)) << " after "
                                        << ms(clock_type::now() - t) << " ms");
          if (ec && failed++ == 0) first_error = ec.message();
        }
        if (failed) BOOST_TEST_MESSAGE("log:\n" << cluster.log(first, "leader"));
        BOOST_TEST(failed == 0, "first error: " << first_error);
        BOOST_TEST(events.count(event_kind::disconnected) == 0);
        auto stream = natsbus::event_bus::stream_name_for(topic);
        auto info = co_await settled_stream_info(bus.js(), stream);
        BOOST_TEST(info.state.messages == static_cast<std::uint64_t>(1 + total - failed));
      },
      120s);
}

// Lame duck mode on the server the client publishes through, which also leads the stream (the hardest case: the
// server hands the stream's leadership over, then, a second later, sends the client away). The client moves to
// another server and its publishes (resent by message id where needed) all land once.
BOOST_AUTO_TEST_CASE(lame_duck_moves_client_without_failed_publishes) {
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        co_await cluster_ready(cluster);
        const std::string topic = "cluster.ldm";
        int leader = co_await create_replicated_stream(cluster, topic);
        auto first = static_cast<std::size_t>(leader);

        event_log events(ex);  // declared first: it outlives the bus
        natsbus::event_bus bus(ex, bus_config(cluster, first));
        events.attach(bus.conn());
        co_await bus.start();
        auto topic_opts = replicated_topic();
        co_await bus.configure_topic(topic, topic_opts);
        int was_on = cluster.index_of_port(bus.conn().info().port);
        BOOST_REQUIRE(was_on >= 0);
        BOOST_TEST_MESSAGE("stream leader " << cluster.server_name(static_cast<std::size_t>(leader))
                                            << ", client on " << cluster.server_name(static_cast<std::size_t>(was_on)));

        const std::size_t total = 10000;
        clock_type::time_point ldm_at;
        std::function<void()> lame_duck = [&] {
          ldm_at = clock_type::now();
          BOOST_TEST_MESSAGE("SIGUSR2 at " << wall_clock());
          cluster.signal(static_cast<std::size_t>(was_on), SIGUSR2);
        };
        auto tally = co_await publish_window(bus, topic, total, 5000, lame_duck, &events, 7500);
        BOOST_TEST_MESSAGE("publishes: " << tally.describe());
        if (tally.failed)
          BOOST_TEST_MESSAGE("failed publishes were queued from " << tally.sent_ms(tally.first_failed_index, ldm_at)
                             << " ms to " << tally.sent_ms(tally.last_failed_index, ldm_at) << " ms after SIGUSR2");
        co_await events.wait(event_kind::lame_duck, 1);
        BOOST_TEST_MESSAGE("lame_duck event "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(events.last_time(event_kind::lame_duck) - ldm_at).count()
                           << " ms after SIGUSR2");
        if (tally.failed)
          for (std::size_t i = 0; i < 3; ++i)
            BOOST_TEST_MESSAGE("log " << cluster.server_name(i) << ":\n"
                                      << cluster.log(i, "leader") << cluster.log(i, "lame duck"));
        for (const auto& l : events.lines())
          if (l.rfind("server_info", 0) != 0) BOOST_TEST_MESSAGE("  event: " << l);
        co_await events.wait(event_kind::reconnected, 1);
        BOOST_TEST(events.count(event_kind::lame_duck) >= 1);
        int now_on = cluster.index_of_port(bus.conn().info().port);
        BOOST_TEST(now_on >= 0);
        BOOST_TEST(now_on != was_on);
        BOOST_TEST(tally.failed == 0u, "first error: " << tally.first_error);
        BOOST_TEST(tally.acked == total);

        auto stream = natsbus::event_bus::stream_name_for(topic);
        auto info = co_await settled_stream_info(bus.js(), stream);
        BOOST_TEST(info.state.messages == total);
        BOOST_TEST(info.state.last_seq == total);
        cluster.kill(static_cast<std::size_t>(was_on));  // lame duck mode would take its full duration
      },
      120s);
}

// An R3 durable consumer whose leader is killed in the middle of a consume, the client on another server (it stays
// connected): the pulls sent to the old leader are lost, so the consume sees missed heartbeats or a leadership
// change, pulls again and goes on once a new leader is elected. Nothing is lost: every stream sequence arrives,
// redeliveries are acked again, and the server's ack floor reaches the end.
BOOST_AUTO_TEST_CASE(r3_consumer_leader_kill_mid_consume) {
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        co_await cluster_ready(cluster);
        const std::string topic = "cluster.consume";
        (void)co_await create_replicated_stream(cluster, topic);
        const auto stream = replicated_stream(topic).name;

        natsbus::connection_options o;
        o.servers = cluster.urls();
        o.reconnect_wait = 100ms;
        o.max_reconnects = -1;
        natsbus::connection setup(ex, o);
        co_await setup.connect();
        natsbus::jetstream_options jo;
        jo.timeout = 60s;
        jo.publish_retry_attempts = 100;
        natsbus::jetstream sjs(setup, jo);
        constexpr std::uint64_t n = 4000;
        for (std::uint64_t i = 0; i < n; ++i) (void)co_await sjs.publish_async(topic, "c");
        co_await sjs.publish_async_complete();
        natsbus::consumer_config cc;
        cc.durable_name = "d";
        cc.ack = natsbus::ack_policy::explicit_;
        cc.ack_wait = 2s;
        co_await sjs.create_consumer(stream, cc);
        // Until the consumer's replicas are current, so the kill leaves a quorum that knows its state.
        int leader = -1;
        for (auto until = clock_type::now() + 10s;;) {
          auto [ec, info] = co_await sjs.get_consumer_info(stream, "d", use_ec);
          if (!ec && info.cluster && !info.cluster->leader.empty() && info.cluster->replicas.size() == 2 &&
              std::all_of(info.cluster->replicas.begin(), info.cluster->replicas.end(),
                          [](const natsbus::peer_info& p) { return p.current && !p.offline; })) {
            leader = cluster.index_of_name(info.cluster->leader);
            break;
          }
          BOOST_REQUIRE_MESSAGE(clock_type::now() < until, "the consumer's replicas did not catch up");
          co_await natsbus::test::pause(50ms);
        }
        BOOST_REQUIRE(leader >= 0);
        setup.close();

        const auto first = static_cast<std::size_t>((leader + 1) % 3);
        o.servers = seeds_starting_at(cluster, first);
        o.randomize_servers = false;
        event_log events(ex);
        natsbus::connection c(ex, o);
        events.attach(c);
        co_await c.connect();
        natsbus::jetstream js(c, jo);
        natsbus::pull_consumer pc(js, stream, "d");
        natsbus::consume_options co;
        co.max_messages = 100;
        co.expires = 2s;
        co.heartbeat = 500ms;
        BOOST_REQUIRE(!pc.consume(co));
        std::vector<bool> seen(n + 1);
        std::uint64_t distinct = 0, redelivered = 0, errors = 0;
        bool taker_done = false;
        const auto t0 = clock_type::now();
        // One coroutine takes and acks everything the consume delivers (redeliveries acked again) until the
        // consume is stopped; this one only watches, each wait bounded.
        auto taker = [&]() -> asio::awaitable<void> {
          for (;;) {
            auto [ec, m] = co_await pc.next(use_ec);
            if (ec == error::subscription_closed || ec == error::connection_closed) break;
            if (ec) {
              ++errors;  // a missed heartbeat, a leadership change, a refused pull: the consume goes on
              BOOST_TEST(ec != error::consumer_deleted, "the consume ended: " << ec.message());
              continue;
            }
            natsbus::message_info mi;
            const bool readable = !m->info(mi) && mi.stream_sequence >= 1 && mi.stream_sequence <= n;
            BOOST_TEST(readable);  // (not REQUIRE: a throw would end this coroutine unseen)
            if (!readable) continue;
            if (seen[mi.stream_sequence]) ++redelivered;
            else seen[mi.stream_sequence] = true, ++distinct;
            (void)m->ack();
            if (distinct == n / 2 && cluster.running(static_cast<std::size_t>(leader))) {
              BOOST_TEST_MESSAGE("killing the consumer leader "
                                 << cluster.server_name(static_cast<std::size_t>(leader)) << " at " << wall_clock());
              cluster.kill(static_cast<std::size_t>(leader));
            }
          }
          taker_done = true;
        };
        asio::co_spawn(ex, taker(), asio::detached);
        while (distinct < n && clock_type::now() - t0 < 60s) co_await natsbus::test::pause(20ms);
        BOOST_TEST_MESSAGE(distinct << " distinct in "
                                    << std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count()
                                    << " ms; " << redelivered << " redeliveries, " << errors << " errors on the way");
        BOOST_TEST(distinct == n);
        // Whether the server agrees (acks lost with the old leader come back as redeliveries, which the taker acks
        // again): reported, not required. The issue asks that nothing is lost and the consume goes on; a run on
        // 2.10.27 once left the new leader's ack floor short with no redelivery coming within the wait.
        natsbus::consumer_info info;
        const auto agree_until = clock_type::now() + 20s;
        for (;;) {
          co_await c.flush();
          auto [iec, i] = co_await js.get_consumer_info(stream, "d", use_ec);
          if (!iec) info = i;
          if (!iec && info.ack_floor.stream_seq == n && info.num_ack_pending == 0 && info.num_pending == 0) break;
          if (clock_type::now() > agree_until) break;
          co_await natsbus::test::pause(200ms);
        }
        BOOST_TEST_MESSAGE("ack floor " << info.ack_floor.stream_seq << ", " << info.num_ack_pending
                                        << " awaiting an ack, " << info.num_pending << " pending");
        pc.stop();
        for (int k = 0; k < 500 && !taker_done; ++k) co_await natsbus::test::pause(10ms);
        BOOST_TEST(taker_done);
        BOOST_TEST(events.count(event_kind::disconnected) == 0u);
        c.close();
      },
      150s);
}

BOOST_AUTO_TEST_SUITE_END()
