// Event bus scenarios of natsbus-bench: the strategy comparison and topic pre-creation.
//
//   bus-info-per-publish  the original slow path: a STREAM.INFO round trip before every publish, each ack awaited
//   bus-create-only       configure_topic under create_only, then windowed publishes, every ack awaited
//   bus-skip              the same after switching to skip
//   strategy-table        the three above plus raw JetStream async, for 500 to 100,000 messages, as a table
//   configure             --topics N (1,000): configure_topics (pipelined) against one configure_topic at a time
//                         (--phase runs one of them alone), --mapping per_topic or shared
//   bus-subscribe         a durable subscription (group "bench") handling events published through the bus
//                         meanwhile, end to end: first publish to last handled, publish-to-handled latency
#include "bench_common.hpp"

#include <natsbus/event_bus.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>

namespace bench {
namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view bus_topic = "busbench.events";

struct timing {
  double seconds = 0, user = 0, sys = 0;
  double server = -1;  // the server's CPU seconds (--server-pid), -1 when not measured
};

natsbus::event_bus_config bus_config(const bench_args& a, natsbus::topic_strategy s) {
  natsbus::event_bus_config c;
  c.connection.servers = {a.url};
  c.connection.name = "natsbus-bench-bus";
  apply_security(a, c.connection);
  if (a.busy_poll_us >= 0) c.connection.busy_poll = std::chrono::microseconds(a.busy_poll_us);
  c.jetstream.max_pending = a.max_pending;
  c.strategy = s;
  c.auto_msg_id = a.auto_msg_id;
  if (a.max_provisioning) c.max_provisioning_in_flight = a.max_provisioning;
  c.default_topic_options.persistence = natsbus::topic_persistence::persistent;
  c.default_topic_options.storage = a.storage == "memory" ? natsbus::storage_type::memory : natsbus::storage_type::file;
  return c;
}

natsbus::topic_options topic_opts(const bench_args& a) {
  natsbus::topic_options o;
  o.persistence = natsbus::topic_persistence::persistent;
  o.storage = a.storage == "memory" ? natsbus::storage_type::memory : natsbus::storage_type::file;
  return o;
}

asio::awaitable<void> info_per_publish(natsbus::event_bus& bus, const bench_args& a, std::string_view payload,
                                       result& r) {
  auto stream = natsbus::event_bus::stream_name_for(bus_topic);
  for (std::size_t i = 0; i < a.msgs; ++i) {
    auto [iec, si] = co_await bus.js().get_stream_info(stream, use_ec);
    if (iec) note_error(r, iec);
    auto [ec, ack] = co_await bus.publish(bus_topic, payload, use_ec);
    if (ec) note_error(r, ec);
    else ++r.acks;
  }
}

// Starts the bus; false, with the reason on stderr, when it cannot.
asio::awaitable<bool> started(natsbus::event_bus& bus, const bench_args& a) {
  auto [ec] = co_await bus.start(use_ec);
  if (ec) std::cerr << "bus start " << a.url << ": " << ec.message() << " " << bus.last_error() << "\n";
  co_return !ec;
}

// The bench topic on a fresh stream: deleted, then configured again under create_only (which also refreshes the
// bus's cache), then the strategy `then`. False, with the reason on stderr, when the configuration fails.
asio::awaitable<bool> fresh_topic_stream(natsbus::event_bus& bus, const bench_args& a, natsbus::topic_strategy then,
                                         std::string_view topic = bus_topic) {
  const std::string stream = natsbus::event_bus::stream_name_for(topic);  // named: no temporary in the co_await
  auto [dec] = co_await bus.js().delete_stream(stream, use_ec);
  (void)dec;
  bus.set_topic_config_strategy(natsbus::topic_strategy::create_only);
  auto opts = topic_opts(a);
  auto [cec, cr] = co_await bus.configure_topic(topic, opts, use_ec);
  if (cec) std::cerr << "configure_topic: " << cr.message << "\n";
  bus.set_topic_config_strategy(then);
  co_return !cec;
}

// Runs one bus scenario on a fresh stream; fills r and t.
asio::awaitable<int> bus_scenario(const bench_args& a, std::string_view scenario, result& r, timing& t,
                                  std::size_t& allocs) {
  auto ex = co_await asio::this_coro::executor;
  natsbus::event_bus bus(ex, bus_config(a, natsbus::topic_strategy::create_only));
  if (!co_await started(bus, a)) co_return 1;
  const bool skip = scenario == "bus-skip" || scenario == "bus-info-per-publish";
  if (!co_await fresh_topic_stream(bus, a, skip ? natsbus::topic_strategy::skip : natsbus::topic_strategy::create_only))
    co_return 1;
  std::string payload(a.size, 'x');
  metrics_probe metrics(a, bus);  // --metrics-listen: the endpoint up and scraped during the run
  auto allocs0 = allocations();
  server_cpu_clock server(a.server_pid);
  auto cpu0 = cpu_clock::now();
  auto t0 = std::chrono::steady_clock::now();
  if (scenario == "bus-info-per-publish") co_await info_per_publish(bus, a, payload, r);
  else co_await bus_windowed(bus, bus_topic, a.msgs, payload, a.max_pending, r);
  auto t1 = std::chrono::steady_clock::now();
  auto cpu1 = cpu_clock::now();
  t.server = server.seconds();
  allocs = allocations() - allocs0;
  t.seconds = std::chrono::duration<double>(t1 - t0).count();
  t.user = cpu1.user - cpu0.user;
  t.sys = cpu1.sys - cpu0.sys;
  if (!a.keep) {
    auto [ec] = co_await bus.js().delete_stream(natsbus::event_bus::stream_name_for(bus_topic), use_ec);
    (void)ec;
  }
  bus.close();
  co_return 0;
}

// Raw JetStream async publishing to busbench.raw, for the table's reference column: the bus's own JetStream
// context, so that it shares the bus columns' connection.
asio::awaitable<void> js_windowed(natsbus::jetstream& js, const bench_args& a, std::string_view payload,
                                  result& r) {
  ack_reaper reaper(a.max_pending, r);
  natsbus::publish_options po;
  id_maker ids;
  for (std::size_t i = 0; i < a.msgs; ++i) {
    // Like for like: when the bus gives every publish a message id, so does this column.
    if (a.auto_msg_id) po.msg_id.assign(ids.make(i));
    auto [ec, f] = co_await js.publish_async("busbench.raw", payload, po, use_ec);
    if (ec) {
      note_error(r, ec);
      continue;
    }
    if (reaper.add(f)) co_await reaper.wait_one();
  }
  co_await reaper.drain();
}

// Waits until `left` reaches zero (every spawned operation decrements it and pokes the timer).
asio::awaitable<void> wait_all(std::size_t& left, asio::steady_timer& poke) {
  while (left > 0) {
    poke.expires_at(asio::steady_timer::time_point::max());
    auto [ec] = co_await poke.async_wait(use_ec);
    (void)ec;
  }
}

asio::awaitable<void> delete_one(natsbus::jetstream& js, std::string name, std::size_t& left, asio::steady_timer& poke) {
  auto [ec] = co_await js.delete_stream(name, use_ec);
  (void)ec;
  --left;
  poke.cancel();
}

// ---- bus-subscribe ----

constexpr std::string_view subscribe_topic = "bench.bus";
constexpr std::size_t stamp_digits = 16;  // every payload starts with its publish time: 16 hex digits of ns

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

void write_stamp(char* out, std::uint64_t ns) {
  constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = stamp_digits; i-- > 0; ns >>= 4) out[i] = hex[ns & 0xf];
}

// The publish time at the head of a payload; false when it has none.
bool read_stamp(std::string_view payload, std::uint64_t& ns) {
  if (payload.size() < stamp_digits) return false;
  auto [end, ec] = std::from_chars(payload.data(), payload.data() + stamp_digits, ns, 16);
  return ec == std::errc{} && end == payload.data() + stamp_digits;
}

// What the handlers share with the bench: counts, latencies, and the timer the last one pokes. Shared with the
// handler, which may still be called (a handler spawned before the stop) after the bench has returned.
struct subscribe_state {
  explicit subscribe_state(const asio::any_io_executor& ex) : wake(ex) {}
  std::size_t target = 0;
  std::size_t handled = 0;
  std::size_t unstamped = 0;  // payloads without a readable publish time (counted as errors)
  std::vector<std::uint64_t> latency_ns;  // reserved up front: no allocation in the timed window
  std::chrono::steady_clock::time_point last;  // when the target-th event was handled
  asio::steady_timer wake;
};

// The handler's body: a coroutine of its own, taking the event's views by value (they stay valid until it
// completes). It never suspends.
asio::awaitable<natsbus::handle_result> on_bench_event(std::shared_ptr<subscribe_state> st, natsbus::bus_event ev) {
  std::uint64_t sent = 0;
  const std::uint64_t now = now_ns();
  if (read_stamp(ev.payload, sent)) {
    if (st->latency_ns.size() < st->latency_ns.capacity()) st->latency_ns.push_back(now >= sent ? now - sent : 0);
  } else {
    ++st->unstamped;
  }
  if (++st->handled == st->target) {
    st->last = std::chrono::steady_clock::now();
    st->wake.cancel();
  }
  co_return natsbus::handle_result::ok();
}

// Nearest-rank percentile of sorted values, in microseconds; -1 when there are none.
double percentile_us(const std::vector<std::uint64_t>& sorted, double p) {
  if (sorted.empty()) return -1;
  auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e3;
}

asio::awaitable<void> delete_stream_named(natsbus::event_bus& bus, std::string_view topic) {
  const std::string stream = natsbus::event_bus::stream_name_for(topic);
  auto [ec] = co_await bus.js().delete_stream(stream, use_ec);
  (void)ec;
}

// bus-subscribe: a fresh stream for bench.bus; the subscription (group "bench", --concurrency handlers, keyed by
// the "Key" header with --keys) starts first, then --msgs events are published through the bus (windowed, each
// ack reaped) while it handles them. The clock runs from the first publish to the last handled event; a run that
// has not handled them all after max(60 s, msgs / 1000 s) fails with the missing ones as errors.
asio::awaitable<int> run_bus_subscribe(const bench_args& a) {
  if (a.size < stamp_digits) {
    std::cerr << "bus-subscribe: --size must be at least " << stamp_digits << " (the payload carries its publish time)\n";
    co_return 2;
  }
  if (a.concurrency == 0) {
    std::cerr << "bus-subscribe: --concurrency must be at least 1\n";
    co_return 2;
  }
  auto ex = co_await asio::this_coro::executor;
  natsbus::event_bus bus(ex, bus_config(a, natsbus::topic_strategy::create_only));
  if (!co_await started(bus, a)) co_return 1;
  const std::string dlq_topic = std::string(subscribe_topic) + ".dlq";
  co_await delete_stream_named(bus, dlq_topic);  // made again by the subscribe (the dead-letter topic)
  if (!co_await fresh_topic_stream(bus, a, natsbus::topic_strategy::create_only, subscribe_topic)) co_return 1;

  auto state = std::make_shared<subscribe_state>(ex);
  auto& st = *state;
  st.target = a.msgs;
  st.latency_ns.reserve(a.msgs);
  natsbus::event_handler_fn handler = [state](const natsbus::bus_event& ev) { return on_bench_event(state, ev); };
  natsbus::subscribe_options so;
  so.group = "bench";
  so.max_concurrency = a.concurrency;
  if (a.keys) so.key_header = "Key";

  std::string payload(a.size, 'x');
  natsbus::headers hdrs;
  natsbus::bus_publish_options po;
  if (a.keys) po.hdrs = &hdrs;
  char key[24] = {'k'};
  result pub;  // publish outcomes: acks and errors
  ack_reaper reaper(a.max_pending, pub);
  const auto limit = std::max<std::chrono::steady_clock::duration>(
      std::chrono::seconds(60), std::chrono::milliseconds(a.msgs));  // msgs / 1000 seconds

  // The subscription starts before the publishing (end to end), or after it with --prefill (the handling alone,
  // as the consume scenario drains a filled stream); the clock starts with whichever comes first.
  natsbus::bus_subscription sub;
  auto subscribe = [&]() -> asio::awaitable<bool> {
    auto [sec, s] = co_await bus.subscribe(subscribe_topic, handler, so, use_ec);
    if (sec) std::cerr << "subscribe " << subscribe_topic << ": " << sec.message() << " " << bus.last_error() << "\n";
    sub = std::move(s);
    co_return !sec;
  };
  if (!a.prefill && !co_await subscribe()) co_return 1;
  auto allocs0 = allocations();
  server_cpu_clock server(a.server_pid);
  auto cpu0 = cpu_clock::now();
  auto t0 = std::chrono::steady_clock::now();
  auto deadline = t0 + limit;
  for (std::size_t i = 0; i < a.msgs; ++i) {
    if (a.keys) {
      auto [end, kec] = std::to_chars(key + 1, key + sizeof key, i % a.keys);
      (void)kec;
      hdrs.set("Key", std::string_view(key, static_cast<std::size_t>(end - key)));
    }
    write_stamp(payload.data(), now_ns());
    const std::string_view body = payload;
    auto [ec, f] = co_await bus.publish_async(subscribe_topic, body, po, use_ec);
    if (ec) {
      note_error(pub, ec);
      continue;
    }
    if (reaper.add(f)) co_await reaper.wait_one();
    if (std::chrono::steady_clock::now() > deadline) break;  // the bound covers the publishing too
  }
  co_await reaper.drain();
  auto [cec] = co_await bus.publish_async_complete(use_ec);
  if (cec) note_error(pub, cec);
  if (a.prefill) {
    allocs0 = allocations();
    server = server_cpu_clock(a.server_pid);
    cpu0 = cpu_clock::now();
    t0 = std::chrono::steady_clock::now();
    deadline = t0 + limit;
    if (!co_await subscribe()) co_return 1;
  }
  while (st.handled < st.target && std::chrono::steady_clock::now() < deadline) {
    st.wake.expires_at(deadline);
    auto [wec] = co_await st.wake.async_wait(use_ec);
    (void)wec;
  }
  const bool complete = st.handled >= st.target;
  const auto t1 = complete ? st.last : std::chrono::steady_clock::now();
  auto cpu1 = cpu_clock::now();
  const double server_s = server.seconds();
  const auto allocs = allocations() - allocs0;
  const std::size_t handled = st.handled;
  const auto stats = sub.stats();
  sub.stop();

  result r;
  r.acks = handled;
  r.errors = pub.errors + st.unstamped;
  r.first_error = pub.first_error;
  if (!complete) {
    r.errors += a.msgs - handled;
    if (r.first_error.empty())
      r.first_error = "timeout: " + std::to_string(handled) + " of " + std::to_string(a.msgs) + " handled after " +
                      std::to_string(std::chrono::duration<double>(t1 - t0).count()) + " s";
  }
  if (st.unstamped && r.first_error.empty()) r.first_error = std::to_string(st.unstamped) + " payloads without a publish time";
  if (stats.redelivered || stats.duplicates || stats.retried || stats.timeouts || stats.dead_lettered)
    std::cerr << "bus-subscribe: redelivered=" << stats.redelivered << " duplicates=" << stats.duplicates
              << " retried=" << stats.retried << " timeouts=" << stats.timeouts
              << " dead_lettered=" << stats.dead_lettered << "\n";

  std::sort(st.latency_ns.begin(), st.latency_ns.end());
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  std::printf(
      "client=natsbus scenario=%s storage=%s size=%zu msgs=%zu bytes=%zu seconds=%.6f msgs_per_s=%.0f acks=%zu "
      "errors=%zu client_user_s=%.6f client_sys_s=%.6f allocs_per_msg=%.3f server_cpu_s=%.2f p50_us=%.1f "
      "p99_us=%.1f keys=%zu concurrency=%zu prefill=%d\n",
      a.scenario.c_str(), a.storage.c_str(), a.size, a.msgs, a.size * a.msgs, seconds,
      static_cast<double>(handled) / seconds, r.acks, r.errors, cpu1.user - cpu0.user, cpu1.sys - cpu0.sys,
      static_cast<double>(allocs) / static_cast<double>(a.msgs ? a.msgs : 1), server_s,
      percentile_us(st.latency_ns, 0.50), percentile_us(st.latency_ns, 0.99), a.keys, a.concurrency,
      a.prefill ? 1 : 0);
  if (r.errors) std::cerr << "first error: " << r.first_error << "\n";

  if (!a.keep) {
    co_await delete_stream_named(bus, subscribe_topic);
    co_await delete_stream_named(bus, dlq_topic);
  }
  bus.close();
  co_return r.errors ? 1 : 0;
}

}  // namespace

asio::awaitable<int> run_bus_scenario(const bench_args& a) {
  if (a.scenario == "bus-subscribe") {
    auto op = run_bus_subscribe(a);
    co_return co_await std::move(op);
  }
  result r;
  timing t;
  std::size_t allocs = 0;
  int rc = co_await bus_scenario(a, a.scenario, r, t, allocs);
  if (rc) co_return rc;
  std::printf(
      "client=natsbus scenario=%s storage=%s size=%zu msgs=%zu bytes=%zu seconds=%.6f msgs_per_s=%.0f acks=%zu "
      "errors=%zu client_user_s=%.6f client_sys_s=%.6f allocs_per_msg=%.3f server_cpu_s=%.2f\n",
      a.scenario.c_str(), a.storage.c_str(), a.size, a.msgs, a.size * a.msgs, t.seconds, a.msgs / t.seconds, r.acks,
      r.errors, t.user, t.sys, static_cast<double>(allocs) / static_cast<double>(a.msgs ? a.msgs : 1), t.server);
  if (r.errors) std::cerr << "first error: " << r.first_error << "\n";
  co_return 0;
}

namespace {

// One run of a strategy-table column (0 slow path, 1 create-only, 2 skip, 3 js-async) on the table's bus; its
// rate goes to rates. Every run starts on a fresh stream (deleted and created again, untimed): the bus columns
// through configure_topic under create_only, which refreshes the bus's cache, then the column's strategy.
asio::awaitable<int> run_column(natsbus::event_bus& bus, const bench_args& a, int k, std::size_t slow_cap,
                                std::vector<double>& rates, int& errors) {
  result r;
  bench_args ak = a;
  if (k == 0) ak.msgs = std::min(a.msgs, slow_cap);
  const std::string payload(a.size, 'x');
  if (k == 3) {
    natsbus::stream_config sc;
    sc.name = "BUSBENCH_RAW";
    sc.subjects.push_back("busbench.raw");
    sc.storage = a.storage == "memory" ? natsbus::storage_type::memory : natsbus::storage_type::file;
    auto [dec] = co_await bus.js().delete_stream(sc.name, use_ec);
    (void)dec;
    auto [sec, si] = co_await bus.js().create_stream(sc, use_ec);
    if (sec) {
      std::cerr << "create BUSBENCH_RAW: " << sec.message() << "\n";
      co_return 1;
    }
  } else if (!co_await fresh_topic_stream(bus, a, k == 1 ? natsbus::topic_strategy::create_only
                                                         : natsbus::topic_strategy::skip)) {
    co_return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  if (k == 0) co_await info_per_publish(bus, ak, payload, r);
  else if (k == 3) co_await js_windowed(bus.js(), ak, payload, r);
  else co_await bus_windowed(bus, bus_topic, ak.msgs, payload, ak.max_pending, r);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  errors += static_cast<int>(r.errors);
  rates.push_back(static_cast<double>(r.acks) / seconds);
  co_return 0;
}

}  // namespace

// Each row: the slow path first, slow_rounds times on at most slow_cap messages (it takes about 300 µs per
// message and its rate is flat beyond a few hundred); then rounds of the three fast columns. Every column runs
// on one bus and its connection, so that the columns differ only in what they measure (the strategy, or the
// bus against raw JetStream), not in a connection, a bus or a pool of ack states of their own. A run leaves
// work behind in the server (its stream's deletion, garbage), which the next run pays for, so the fast rounds
// go through every order of the three in turn: each column follows each other one equally often. A run of a
// few thousand messages lasts milliseconds, where scheduling noise is large, so small rows get more rounds.
// Medians.
asio::awaitable<int> run_strategy_table(const bench_args& base) {
  auto ex = co_await asio::this_coro::executor;
  natsbus::event_bus bus(ex, bus_config(base, natsbus::topic_strategy::create_only));
  if (!co_await started(bus, base)) co_return 1;
  constexpr int slow_rounds = 4;
  constexpr std::size_t slow_cap = 5000;
  // Multiples of 6, the number of orders.
  auto fast_rounds = [](std::size_t n) { return n <= 500 ? 192 : n <= 2000 ? 96 : n <= 10000 ? 48 : 12; };
  std::vector<std::size_t> sizes = {500, 2000, 5000, 10000, 100000};
  if (base.msgs != 100000) sizes = {base.msgs};  // --msgs picks one row
  std::printf("strategy comparison: storage=%s size=%zu window=%zu msg-ids=%s; throughput counts acks, every ack "
              "awaited; medians of 192 rounds for 500, 96 for 2,000, 48 for 5,000 and 10,000, 12 for 100,000 (info/publish: %d "
              "rounds on at most %zu messages); c-only/skip and skip/js: medians of the ratios within each round\n",
              base.storage.c_str(), base.size, base.max_pending, base.auto_msg_id ? "on" : "off", slow_rounds,
              slow_cap);
  std::printf("%8s %14s %14s %14s %14s %10s %12s %12s %12s\n", "msgs", "info/publish", "create-only", "skip",
              "js-async", "skip/slow", "c-only/slow", "c-only/skip", "skip/js");
  int errors = 0;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  for (auto n : sizes) {
    bench_args a = base;
    a.msgs = n;
    std::vector<double> rates[4];
    for (int round = 0; round < slow_rounds; ++round) {
      auto op = run_column(bus, a, 0, slow_cap, rates[0], errors);
      if (co_await std::move(op)) co_return 1;
    }
    std::array<int, 3> order = {1, 2, 3};
    for (int round = 0; round < fast_rounds(n); ++round) {
      for (int k : order) {
        auto op = run_column(bus, a, k, slow_cap, rates[k], errors);
        if (co_await std::move(op)) co_return 1;
      }
      std::next_permutation(order.begin(), order.end());  // cycles through all 6
    }
    double rate[4];
    for (int k = 0; k < 4; ++k) rate[k] = median(rates[k]);
    // The fast columns' ratios pair the runs of one round (minutes apart otherwise, and the machine drifts).
    auto paired = [&](int x, int y) {
      std::vector<double> q;
      for (std::size_t i = 0; i < rates[x].size() && i < rates[y].size(); ++i) q.push_back(rates[x][i] / rates[y][i]);
      return median(q);
    };
    std::printf("%8zu %14.0f %14.0f %14.0f %14.0f %9.1fx %11.1fx %11.2fx %11.2fx\n", n, rate[0], rate[1], rate[2],
                rate[3], rate[2] / rate[0], rate[1] / rate[0], paired(1, 2), paired(2, 3));
    std::fflush(stdout);
  }
  const std::string streams[2] = {"BUSBENCH_RAW", natsbus::event_bus::stream_name_for(bus_topic)};
  for (const auto& name : streams) {
    if (base.keep) break;
    auto [ec] = co_await bus.js().delete_stream(name, use_ec);
    (void)ec;
  }
  bus.close();
  if (errors) std::printf("errors: %d\n", errors);
  co_return errors ? 1 : 0;
}

// One timed phase of the configure scenario: creating the topics' streams (pipelined or one at a time), then
// deleting them the same way. Negative values: the phase did not run.
struct configure_phase {
  double create_s = -1, delete_s = -1;
  double cpu_us = -1;   // client CPU (user + system) per topic
  double allocs = -1;   // client heap allocations per topic
  double server_cpu_s = -1;  // the server's CPU over the creations (--server-pid)
  long server_rss_kib = -1;  // the server's resident memory once the streams exist (--server-pid)
};

// Client CPU per topic, in microseconds, since c0.
double cpu_us_per(const cpu_clock& c0, std::size_t n) {
  auto c1 = cpu_clock::now();
  return (c1.user - c0.user + c1.sys - c0.sys) / static_cast<double>(n) * 1e6;
}

// configure_topics over all topics at once; the streams are then deleted together.
asio::awaitable<bool> configure_pipelined(natsbus::event_bus& bus, const std::vector<natsbus::topic_config>& topics,
                                          const bench_args& a, bool shared, configure_phase& out) {
  auto ex = co_await asio::this_coro::executor;
  const std::size_t n = topics.size();
  auto c0 = cpu_clock::now();
  auto a0 = allocations();
  server_cpu_clock server(a.server_pid);
  auto t0 = std::chrono::steady_clock::now();
  auto [ec, results] = co_await bus.configure_topics(topics, use_ec);
  out.create_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.cpu_us = cpu_us_per(c0, n);
  out.server_cpu_s = server.seconds();
  out.server_rss_kib = process_rss_kib(a.server_pid);
  out.allocs = static_cast<double>(allocations() - a0) / static_cast<double>(n);
  if (ec) {
    std::cerr << "configure_topics: " << bus.last_error() << "\n";
    co_return false;
  }
  asio::steady_timer poke(ex);
  std::size_t left = shared ? 1 : n;  // shared: the one stream
  const std::size_t streams = left;
  t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < streams; ++i)
    asio::co_spawn(ex, delete_one(bus.js(), results[i].stream, left, poke), asio::detached);
  co_await wait_all(left, poke);
  out.delete_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& t : topics) bus.remove_topic_config(t.name);
  co_return true;
}

// configure_topic for one topic after another, each round trip awaited; the streams are then deleted so.
asio::awaitable<bool> configure_one_by_one(natsbus::event_bus& bus, const std::vector<natsbus::topic_config>& topics,
                                           const bench_args& a, bool shared, configure_phase& out) {
  const std::size_t n = topics.size();
  std::vector<std::string> streams;
  auto c0 = cpu_clock::now();
  auto a0 = allocations();
  server_cpu_clock server(a.server_pid);
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& t : topics) {
    // TRACE_ALLOCS=1: the allocation sites of one configure_topic, on stderr.
    bench::trace_allocs = (&t == &topics[n / 2] && std::getenv("TRACE_ALLOCS"));
    auto [ec, res] = co_await bus.configure_topic(t.name, t.options, use_ec);
    bench::trace_allocs = false;
    if (ec) {
      std::cerr << "configure_topic: " << res.message << "\n";
      co_return false;
    }
    if (!shared || streams.empty()) streams.push_back(std::move(res.stream));
  }
  out.create_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.cpu_us = cpu_us_per(c0, n);
  out.server_cpu_s = server.seconds();
  out.server_rss_kib = process_rss_kib(a.server_pid);
  out.allocs = static_cast<double>(allocations() - a0) / static_cast<double>(n);
  t0 = std::chrono::steady_clock::now();
  for (const auto& name : streams) {
    auto [ec] = co_await bus.js().delete_stream(name, use_ec);
    (void)ec;
  }
  out.delete_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& t : topics) bus.remove_topic_config(t.name);
  co_return true;
}

asio::awaitable<int> run_configure_bench(const bench_args& a) {
  auto ex = co_await asio::this_coro::executor;
  auto cfg = bus_config(a, natsbus::topic_strategy::create_only);
  const bool shared = a.mapping == "shared";
  if (shared) {
    // Every topic on one stream: configuring a topic checks it against the stream, which is made once.
    cfg.mapping = natsbus::stream_mapping::shared;
    natsbus::stream_config sc;
    sc.name = "CFGBENCH";
    sc.subjects = {"cfgbench.>"};
    sc.storage = a.storage == "memory" ? natsbus::storage_type::memory : natsbus::storage_type::file;
    cfg.default_stream = sc;
  }
  natsbus::event_bus bus(ex, cfg);
  if (!co_await started(bus, a)) co_return 1;
  const std::size_t n = a.topics;
  std::vector<natsbus::topic_config> topics(n);
  for (std::size_t i = 0; i < n; ++i) {
    topics[i].name = "cfgbench.t" + std::to_string(i);
    topics[i].options = topic_opts(a);
  }
  {
    // Leftovers of an interrupted run would turn creations into no-ops: remove them first (untimed).
    asio::steady_timer poke(ex);
    std::size_t left = n;
    for (std::size_t i = 0; i < n; ++i)
      asio::co_spawn(ex, delete_one(bus.js(), natsbus::event_bus::stream_name_for(topics[i].name), left, poke),
                     asio::detached);
    co_await wait_all(left, poke);
  }
  const long rss_before = process_rss_kib(a.server_pid);
  // Pipelined first, on the server as the bench found it; one by one then runs on a server that has just held
  // and dropped as many streams, which makes its creations cheaper (--phase runs one alone, on a fresh server).
  configure_phase piped, single;
  if (a.phase != "one_by_one" && !co_await configure_pipelined(bus, topics, a, shared, piped)) co_return 1;
  if (a.phase != "pipelined" && !co_await configure_one_by_one(bus, topics, a, shared, single)) co_return 1;
  bus.close();
  if (a.phase == "both")
    std::printf("configure %zu topics (storage=%s): pipelined %.3f s, one by one %.3f s, %.2fx; "
                "delete pipelined %.3f s, one by one %.3f s, %.2fx\n",
                n, a.storage.c_str(), piped.create_s, single.create_s, single.create_s / piped.create_s,
                piped.delete_s, single.delete_s, single.delete_s / piped.delete_s);
  std::printf("client=natsbus scenario=configure storage=%s mapping=%s topics=%zu phase=%s create_pipelined_s=%.6f "
              "create_one_by_one_s=%.6f delete_pipelined_s=%.6f delete_one_by_one_s=%.6f "
              "create_pipelined_cpu_us=%.1f create_one_by_one_cpu_us=%.1f create_pipelined_allocs=%.1f "
              "create_one_by_one_allocs=%.1f server_cpu_pipelined_s=%.2f server_cpu_one_by_one_s=%.2f "
              "server_rss_kib_before=%ld server_rss_kib_pipelined=%ld server_rss_kib_one_by_one=%ld errors=0\n",
              a.storage.c_str(), a.mapping.c_str(), n, a.phase.c_str(), piped.create_s, single.create_s,
              piped.delete_s, single.delete_s, piped.cpu_us, single.cpu_us, piped.allocs, single.allocs,
              piped.server_cpu_s, single.server_cpu_s, rss_before, piped.server_rss_kib, single.server_rss_kib);
  co_return 0;
}

asio::awaitable<void> bus_windowed(natsbus::event_bus& bus, std::string_view topic, std::size_t n,
                                   std::string_view payload, std::size_t window, result& r) {
  ack_reaper reaper(window, r);
  for (std::size_t i = 0; i < n; ++i) {
    auto [ec, f] = co_await bus.publish_async(topic, payload, use_ec);
    if (ec) {
      note_error(r, ec);
      continue;
    }
    if (reaper.add(f)) co_await reaper.wait_one();
  }
  co_await reaper.drain();
}

}  // namespace bench
