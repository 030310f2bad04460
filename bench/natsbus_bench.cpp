// natsbus-bench: JetStream and core publish throughput, with the client's CPU time and heap allocations
// per message. Prints one key=value line that scripts/bench.sh sets beside the nats.c peer's.
//
//   natsbus-bench --url nats://127.0.0.1:4222 --scenario async --storage memory --size 16 --msgs 100000
//
// Scenarios: info-sync, sync, async, core, core-js (see usage()). Unknown flags are ignored.
// --server-pid PID adds the server's CPU time over the timed window (server_cpu_s=, from /proc/PID/stat; -1 without
// the flag).
// TRACE_ALLOCS=1 prints a backtrace of every allocation made by the 5001st sync publish (see alloc_counter.hpp).
#include "alloc_counter.hpp"
#include "bench_common.hpp"

#include <natsbus/connection.hpp>
#include <natsbus/consumer.hpp>
#include <natsbus/jetstream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

using namespace bench;

void usage() {
  std::cerr << "usage: natsbus-bench [--url U] [--scenario S] [--storage memory|file] [--size N] [--msgs N]\n"
               "                     [--max-pending N] [--keep] [--msg-ids] [--no-auto-msg-id] [--busy-poll-us N]\n"
               "                     [--max-provisioning N]   (configure: the bus's max_provisioning_in_flight)\n"
               "                     [--server-pid PID]       (server_cpu_s=: the server's CPU over the timed window)\n"
               "                     [--concurrency N] [--keys K]  (bus-subscribe: handlers at once, ordering keys)\n"
               "                     [--tls-ca F] [--tls-cert F] [--tls-key F] [--tls-name NAME] [--creds F]\n"
               "                     [--nkey-seed F] [--user U] [--password P] [--token T]\n"
               "                     (URLs: nats://, tls://, ws://, wss://; a connect or auth failure exits 2 with error=)\n"
               "scenarios:\n"
               "  info-sync  a STREAM.INFO request before each synchronous publish\n"
               "  sync       one publisher awaiting each ack\n"
               "  async      pipelined publishes within the max-pending window, every ack awaited\n"
               "  core       core publish to a subject no stream holds, then a flush\n"
               "  core-js    core publish into the stream's subject (no ack), then a flush\n"
               "  bus-info-per-publish, bus-create-only, bus-skip\n"
               "             event bus publishes (see bus_bench.cpp)\n"
               "  bus-subscribe  a durable bus subscription (group bench) handling --msgs events published through\n"
               "             the bus meanwhile; the clock runs from the first publish to the last handled event\n"
               "             (p50_us=, p99_us=: publish to handled); --concurrency N handlers (default 1),\n"
               "             --keys K ordering keys from a Key header (default 0: unkeyed); --size at least 16;\n"
               "             --prefill: publish them all first, then time the handling alone (as consume does)\n"
               "  strategy-table  the bus strategies against the slow path for 500..100,000 messages\n"
               "  configure  --topics N (1,000) topics configured pipelined against one at a time; --mapping\n"
               "             per_topic (a stream each) or shared (one stream, CFGBENCH on cfgbench.>, for all);\n"
               "             --phase pipelined|one_by_one runs one of the two alone (default both, pipelined\n"
               "             first: one by one then meets a server that has just held as many streams)\n"
               "  connect    --msgs connects to the first PONG, each then closed (connect_us=)\n"
               "  fetch, consume, ordered\n"
               "             stream BENCH filled with --msgs messages, then read back: fetch (batches of --batch),\n"
               "             consume (a continuous pull keeping --batch buffered), ordered (an ordered consumer);\n"
               "             fetch and consume ack every message (acks=); --durable NAME, kept with --keep\n"
               "  metrics-ab  --rounds N (6) rounds of --msgs windowed bus publishes, alternating metrics off and on\n"
               "             (on: the bus registered, the endpoint up at --metrics-listen ADDR:PORT, default\n"
               "             127.0.0.1:0, scraped every --scrape-ms, default 1000); the ratio of the medians\n"
               "  metrics-scrape  --topics N (1,000) topics and --subs N (100) durable subscriptions on one bus, an\n"
               "             event through each topic, then 50 scrapes over HTTP and 50 write_prometheus, timed\n"
               "  --metrics-listen ADDR:PORT with a bus-* scenario: the same endpoint and scraper during the run\n";
}

bool parse(int argc, char** argv, bench_args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string_view f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 < argc) return argv[++i];
      std::cerr << "missing value for " << f << "\n";
      std::exit(2);
    };
    auto number = [&]() -> std::size_t {
      std::string v = value();
      char* end = nullptr;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') {
        std::cerr << "bad number for " << f << ": " << v << "\n";
        std::exit(2);
      }
      return static_cast<std::size_t>(n);
    };
    if (f == "--url") a.url = value();
    else if (f.starts_with("--tls-") || f == "--creds" || f == "--nkey-seed" || f == "--user" || f == "--password" ||
             f == "--token") {
      if (!parse_security_flag(f, value(), a)) {
        std::cerr << "unknown flag " << f << "\n";
        return false;
      }
    }
    else if (f == "--scenario") a.scenario = value();
    else if (f == "--storage") a.storage = value();
    else if (f == "--size") a.size = number();
    else if (f == "--msgs") a.msgs = number();
    else if (f == "--max-pending") a.max_pending = number();
    else if (f == "--keep") a.keep = true;
    else if (f == "--msg-ids") a.msg_ids = true;
    else if (f == "--no-auto-msg-id") a.auto_msg_id = false;
    else if (f == "--busy-poll-us") a.busy_poll_us = static_cast<long>(number());
    else if (f == "--max-provisioning") a.max_provisioning = static_cast<std::size_t>(number());
    else if (f == "--server-pid") a.server_pid = static_cast<long>(number());
    else if (f == "--batch") a.batch = number();
    else if (f == "--durable") a.durable = value();
    else if (f == "--concurrency") a.concurrency = number();
    else if (f == "--keys") a.keys = number();
    else if (f == "--prefill") a.prefill = true;
    else if (f == "--topics") a.topics = number();
    else if (f == "--mapping") a.mapping = value();
    else if (f == "--phase") a.phase = value();
    else if (f == "--metrics-listen") a.metrics_listen = value();
    else if (f == "--scrape-ms") a.scrape_ms = number();
    else if (f == "--rounds") a.rounds = number();
    else if (f == "--subs") a.subs = number();
    else if (f == "--help" || f == "-h") return false;
    else if (f.starts_with("--") && i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--")) ++i;  // ignored
  }
  if (a.mapping != "per_topic" && a.mapping != "shared") {
    std::cerr << "bad --mapping: " << a.mapping << " (per_topic or shared)\n";
    return false;
  }
  if (a.phase != "both" && a.phase != "pipelined" && a.phase != "one_by_one") {
    std::cerr << "bad --phase: " << a.phase << " (both, pipelined or one_by_one)\n";
    return false;
  }
  if (a.topics == 0) {
    std::cerr << "--topics must be positive\n";
    return false;
  }
  if (a.storage != "memory" && a.storage != "file") {
    std::cerr << "bad --storage: " << a.storage << "\n";
    return false;
  }
  return true;
}

asio::awaitable<void> run_sync(natsbus::jetstream& js, const bench_args& a, std::string_view payload, bool info,
                               result& r) {
  natsbus::publish_options opts;
  id_maker ids;
  for (std::size_t i = 0; i < a.msgs; ++i) {
    if (info) {
      auto [iec, si] = co_await js.get_stream_info("BENCH", asio::as_tuple(asio::use_awaitable));
      if (iec) note_error(r, iec);
    }
    if (a.msg_ids) opts.msg_id.assign(ids.make(i));
    bench::trace_allocs = (i == 5000 && std::getenv("TRACE_ALLOCS"));
    auto [ec, ack] = co_await js.publish("bench.data", payload, opts, asio::as_tuple(asio::use_awaitable));
    if (ec) note_error(r, ec);
    else ++r.acks;
  }
}

// One coroutine keeps the window full and takes the acks in order. While the window has room a publish
// starts synchronously (try_publish_async); when it is full, publish_async waits for room (backpressure from
// the context's max_pending window).
asio::awaitable<void> run_async(natsbus::jetstream& js, const bench_args& a, std::string_view payload, result& r) {
  natsbus::publish_options opts;
  id_maker ids;
  ack_reaper reaper(a.max_pending, r);
  for (std::size_t i = 0; i < a.msgs; ++i) {
    if (a.msg_ids) opts.msg_id.assign(ids.make(i));
    natsbus::ack_future f;
    natsbus::error_code ec;
    if (!js.try_publish_async("bench.data", payload, opts, f, ec) && !ec) {
      auto [wec, wf] = co_await js.publish_async("bench.data", payload, opts, asio::as_tuple(asio::use_awaitable));
      ec = wec;
      f = std::move(wf);
    }
    if (ec) {
      note_error(r, ec);
      continue;
    }
    if (reaper.add(f)) co_await reaper.wait_one();
  }
  co_await reaper.drain();
}

asio::awaitable<void> run_core(natsbus::connection& conn, const bench_args& a, std::string_view subject,
                               std::string_view payload, result& r) {
  for (std::size_t i = 0; i < a.msgs; ++i) {
    // The synchronous fast path; the awaited publish only when the write buffer is full (backpressure).
    natsbus::error_code ec;
    if (conn.try_publish(subject, payload, ec)) continue;
    if (!ec) std::tie(ec) = co_await conn.publish(subject, payload, asio::as_tuple(asio::use_awaitable));
    if (ec) note_error(r, ec);
  }
  auto [ec] = co_await conn.flush(asio::as_tuple(asio::use_awaitable));
  if (ec) note_error(r, ec);
}

// fetch, consume, ordered: stream BENCH is filled with --msgs messages before the clock starts; the timed window
// reads them all (acking each one for fetch and consume) and ends when the last ack has reached the server.
asio::awaitable<int> run_consume_bench(natsbus::connection& conn, natsbus::jetstream& js, const bench_args& a) {
  std::string payload(a.size, 'x');
  result fill;
  co_await run_async(js, a, payload, fill);
  if (fill.errors) {
    std::cerr << "filling BENCH: " << fill.first_error << "\n";
    co_return 1;
  }
  const std::string durable = a.durable.empty() ? "BENCHC" : a.durable;
  if (a.scenario != "ordered") {
    natsbus::consumer_config cc;
    cc.durable_name = durable;
    cc.ack = natsbus::ack_policy::explicit_;
    cc.max_ack_pending = -1;
    auto [cec, ci] = co_await js.create_consumer("BENCH", cc, asio::as_tuple(asio::use_awaitable));
    if (cec) {
      std::cerr << "create consumer: " << cec.message() << " " << js.last_api_error().description << "\n";
      co_return 1;
    }
  }
  result r;
  std::size_t got = 0;
  auto allocs0 = bench::allocations();
  server_cpu_clock server(a.server_pid);
  auto cpu0 = cpu_clock::now();
  auto t0 = std::chrono::steady_clock::now();
  if (a.scenario == "fetch") {
    natsbus::pull_consumer pc(js, "BENCH", durable);
    natsbus::fetch_options fo;
    fo.batch = a.batch;
    fo.expires = std::chrono::seconds(5);
    while (got < a.msgs) {
      fo.batch = std::min(a.batch, a.msgs - got);  // the last pull asks only for what is left
      auto [ec, batch] = co_await pc.fetch(fo, asio::as_tuple(asio::use_awaitable));
      if (ec || batch.status()) {
        note_error(r, ec ? ec : batch.status());
        break;
      }
      if (batch.empty()) break;
      for (auto& m : batch) {
        ++got;
        if (!m.ack()) ++r.acks;
      }
      bench::trace_allocs = (got > a.msgs / 2 && got <= a.msgs / 2 + 300 && std::getenv("TRACE_ALLOCS"));
    }
    bench::trace_allocs = false;
  } else if (a.scenario == "consume") {
    natsbus::pull_consumer pc(js, "BENCH", durable);
    natsbus::consume_options co;
    co.max_messages = a.batch;
    co.expires = std::chrono::seconds(5);
    if (auto ec = pc.consume(co)) note_error(r, ec);
    while (got < a.msgs && !r.errors) {
      natsbus::js_message* m = pc.try_next();
      if (!m) {
        auto [ec, mm] = co_await pc.next(asio::as_tuple(asio::use_awaitable));
        if (ec) {
          note_error(r, ec);
          break;
        }
        m = mm;
      }
      ++got;
      bench::trace_allocs = (got > a.msgs / 2 && got <= a.msgs / 2 + 2000 && std::getenv("TRACE_ALLOCS"));
      if (!m->ack()) ++r.acks;
    }
    bench::trace_allocs = false;
    pc.stop();
  } else {
    natsbus::ordered_options oo;
    oo.max_messages = a.batch;
    natsbus::ordered_consumer oc(js, "BENCH", oo);
    auto [sec] = co_await oc.start(asio::as_tuple(asio::use_awaitable));
    if (sec) note_error(r, sec);
    while (got < a.msgs && !r.errors) {
      natsbus::js_message* m = oc.try_next();
      if (!m) {
        auto [ec, mm] = co_await oc.next(asio::as_tuple(asio::use_awaitable));
        if (ec) {
          note_error(r, ec);
          break;
        }
        m = mm;
      }
      ++got;
    }
    oc.stop();
  }
  co_await conn.flush(asio::as_tuple(asio::use_awaitable));  // the acks have reached the server
  auto t1 = std::chrono::steady_clock::now();
  auto cpu1 = cpu_clock::now();
  const double server_s = server.seconds();
  auto allocs1 = bench::allocations();
  if (got < a.msgs && !r.errors) note_error(r, natsbus::error_code(natsbus::error::timeout));
  if (!a.keep) {
    auto [ec] = co_await js.delete_stream("BENCH", asio::as_tuple(asio::use_awaitable));
    (void)ec;
  }
  conn.close();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  std::printf(
      "client=natsbus scenario=%s storage=%s size=%zu msgs=%zu bytes=%zu seconds=%.6f msgs_per_s=%.0f acks=%zu "
      "errors=%zu client_user_s=%.6f client_sys_s=%.6f allocs_per_msg=%.3f server_cpu_s=%.2f batch=%zu\n",
      a.scenario.c_str(), a.storage.c_str(), a.size, got, a.size * got, secs, got / secs, r.acks, r.errors,
      cpu1.user - cpu0.user, cpu1.sys - cpu0.sys,
      static_cast<double>(allocs1 - allocs0) / static_cast<double>(got ? got : 1), server_s, a.batch);
  if (r.errors) std::cerr << "first error: " << r.first_error << "\n";
  co_return r.errors ? 1 : 0;
}

asio::awaitable<int> run_bench(natsbus::connection& conn, const bench_args& a) {
  auto [cec] = co_await conn.connect(asio::as_tuple(asio::use_awaitable));
  if (cec) {
    // A connect or auth failure: status 2 and one line for scripts (the detail names no secret).
    std::printf("error=%s detail=\"%s\" url=%s\n", cec.message().c_str(), conn.last_error().c_str(), a.url.c_str());
    co_return 2;
  }
  natsbus::jetstream_options jopts;
  jopts.max_pending = a.max_pending;
  natsbus::jetstream js(conn, jopts);

  // (Re)create the stream.
  auto [dec] = co_await js.delete_stream("BENCH", asio::as_tuple(asio::use_awaitable));
  (void)dec;  // not found is fine
  natsbus::stream_config cfg;
  cfg.name = "BENCH";
  cfg.subjects.push_back("bench.>");
  cfg.storage = a.storage == "memory" ? natsbus::storage_type::memory : natsbus::storage_type::file;
  auto [sec, si] = co_await js.create_stream(cfg, asio::as_tuple(asio::use_awaitable));
  if (sec) {
    std::cerr << "create stream BENCH: " << sec.message() << " " << js.last_api_error().description << "\n";
    co_return 1;
  }

  if (a.scenario == "fetch" || a.scenario == "consume" || a.scenario == "ordered")
    co_return co_await run_consume_bench(conn, js, a);

  std::string payload(a.size, 'x');
  result r;
  auto allocs0 = bench::allocations();
  server_cpu_clock server(a.server_pid);
  auto cpu0 = cpu_clock::now();
  auto t0 = std::chrono::steady_clock::now();
  if (a.scenario == "sync") co_await run_sync(js, a, payload, false, r);
  else if (a.scenario == "info-sync") co_await run_sync(js, a, payload, true, r);
  else if (a.scenario == "async") co_await run_async(js, a, payload, r);
  else if (a.scenario == "core") co_await run_core(conn, a, "core.bench", payload, r);
  else if (a.scenario == "core-js") co_await run_core(conn, a, "bench.data", payload, r);
  else {
    std::cerr << "unknown scenario: " << a.scenario << "\n";
    usage();
    co_return 2;
  }
  auto t1 = std::chrono::steady_clock::now();
  auto cpu1 = cpu_clock::now();
  const double server_s = server.seconds();
  // The server's memory with the stream still there: the duplicate window's ids are part of it (--msg-ids).
  const long server_rss = process_rss_kib(a.server_pid);
  auto allocs1 = bench::allocations();

  if (!a.keep) {
    auto [ec] = co_await js.delete_stream("BENCH", asio::as_tuple(asio::use_awaitable));
    (void)ec;
  }
  conn.close();

  double secs = std::chrono::duration<double>(t1 - t0).count();
  std::printf(
      "client=natsbus scenario=%s storage=%s size=%zu msgs=%zu bytes=%zu seconds=%.6f msgs_per_s=%.0f acks=%zu "
      "errors=%zu client_user_s=%.6f client_sys_s=%.6f allocs_per_msg=%.3f server_cpu_s=%.2f server_rss_kib=%ld "
      "msg_ids=%d\n",
      a.scenario.c_str(), a.storage.c_str(), a.size, a.msgs, a.size * a.msgs, secs, a.msgs / secs, r.acks, r.errors,
      cpu1.user - cpu0.user, cpu1.sys - cpu0.sys,
      static_cast<double>(allocs1 - allocs0) / static_cast<double>(a.msgs ? a.msgs : 1), server_s, server_rss,
      a.msg_ids ? 1 : 0);
  if (r.errors) std::cerr << "first error: " << r.first_error << "\n";
  co_return 0;
}

// --msgs connects, each to the first PONG (TLS and credentials included), then closed: what a connect costs.
asio::awaitable<int> run_connects(const bench_args& a, const natsbus::connection_options& copts) {
  auto ex = co_await asio::this_coro::executor;
  auto cpu0 = cpu_clock::now();
  auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < a.msgs; ++i) {
    natsbus::connection c(ex, copts);
    auto [ec] = co_await c.connect(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      std::printf("error=%s detail=\"%s\" url=%s\n", ec.message().c_str(), c.last_error().c_str(), a.url.c_str());
      co_return 2;
    }
    c.close();
  }
  auto t1 = std::chrono::steady_clock::now();
  auto cpu1 = cpu_clock::now();
  const double secs = std::chrono::duration<double>(t1 - t0).count();
  std::printf("client=natsbus scenario=connect connects=%zu seconds=%.6f connect_us=%.1f client_user_s=%.6f "
              "client_sys_s=%.6f\n",
              a.msgs, secs, secs * 1e6 / static_cast<double>(a.msgs ? a.msgs : 1), cpu1.user - cpu0.user,
              cpu1.sys - cpu0.sys);
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench_args a;
  if (!parse(argc, argv, a)) {
    usage();
    return 2;
  }
  asio::io_context io(1);  // one thread: the connection needs no strand and every call takes the fast path
  natsbus::connection_options copts;
  copts.servers = {a.url};
  copts.name = "natsbus-bench";
  apply_security(a, copts);
  if (a.busy_poll_us >= 0) copts.busy_poll = std::chrono::microseconds(a.busy_poll_us);
  natsbus::connection conn(io.get_executor(), copts);
  int rc = 1;
  auto done = [&](std::exception_ptr e, int r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::printf("error=\"%s\"\n", x.what());
      }
      rc = 2;
    } else {
      rc = r;
    }
  };
  if (a.scenario == "connect") asio::co_spawn(io, run_connects(a, copts), done);
  else if (a.scenario == "strategy-table") asio::co_spawn(io, run_strategy_table(a), done);
  else if (a.scenario == "configure") asio::co_spawn(io, run_configure_bench(a), done);
  else if (a.scenario.starts_with("bus-")) asio::co_spawn(io, run_bus_scenario(a), done);
  else if (a.scenario.starts_with("metrics-")) asio::co_spawn(io, run_metrics_scenario(a), done);
  else asio::co_spawn(io, run_bench(conn, a), done);
  io.run();
  return rc;
}
