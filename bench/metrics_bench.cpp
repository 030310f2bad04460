// Metrics scenarios of natsbus-bench, and the --metrics-listen probe the bus scenarios take.
//
//   --metrics-listen ADDR:PORT  with a bus scenario (bus-create-only, bus-skip, ...): the bus is registered in a
//                         metrics registry served on ADDR:PORT from a thread of its own, and scraped over HTTP
//                         every --scrape-ms (1000) while the scenario runs; compare runs with and without it
//   metrics-ab            one process, one bus: --rounds (6) rounds of --msgs windowed publishes, alternating
//                         metrics off and on (on: the endpoint up and scraped every --scrape-ms), then the ratio
//                         of the medians
//   metrics-scrape        --topics (1,000) topics and --subs (100) durable subscriptions on one bus, an event
//                         through each topic, then 50 scrapes over HTTP and 50 write_prometheus calls, timed
#include "bench_common.hpp"

#include <natsbus/event_bus.hpp>
#include <natsbus/metrics.hpp>
#include <natsbus/metrics_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

namespace bench {
namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
using tcp = asio::ip::tcp;

// One GET /metrics on a connection of its own, the whole response read into `out` (a buffer the caller keeps, as
// a scraper would); false on failure. `first_ms` (when given) receives the time from connecting to the first byte.
bool scrape_once(const tcp::endpoint& ep, std::vector<char>& out, double* first_ms = nullptr) {
  const auto t0 = std::chrono::steady_clock::now();
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(ep, ec);
  if (ec) return false;
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
  asio::write(s, asio::buffer(req), ec);
  if (ec) return false;
  if (out.size() < (1 << 20)) out.resize(1 << 20);
  std::size_t n = 0;
  while (!ec) {
    if (n == out.size()) out.resize(out.size() * 2);
    n += s.read_some(asio::buffer(out.data() + n, out.size() - n), ec);
    if (first_ms && n > 0 && *first_ms == 0)
      *first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  out.resize(std::max<std::size_t>(n, 1 << 20));  // keeps the buffer; the size read is n
  return ec == asio::error::eof && n > 12 && std::string_view(out.data(), 12) == "HTTP/1.1 200";
}

std::size_t response_size(const tcp::endpoint& ep) {
  std::vector<char> buf;
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(ep, ec);
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
  asio::write(s, asio::buffer(req), ec);
  std::string out;
  asio::read(s, asio::dynamic_buffer(out), ec);
  return out.size();
}

// The endpoint on a thread of its own, with the bus registered, and optionally a scraper thread.
class metrics_probe_impl {
 public:
  metrics_probe_impl(const bench_args& a, natsbus::event_bus& bus, bool scrape)
      : registration_(registry_.add(bus, "bench")), work_(io_.get_executor()) {
    auto ep = natsbus::metrics_server::parse_endpoint(a.metrics_listen.empty() ? "127.0.0.1:0" : a.metrics_listen);
    if (!ep) throw std::invalid_argument("bad --metrics-listen: " + a.metrics_listen);
    server_ = natsbus::metrics_server::start(io_.get_executor(), registry_, *ep, natsbus::bus_readiness(bus));
    endpoint_ = server_.local_endpoint();
    io_thread_ = std::thread([this] { io_.run(); });
    if (scrape) {
      const auto every = std::chrono::milliseconds(a.scrape_ms);
      scraper_ = std::thread([this, every] {
        std::vector<char> buf;
        std::unique_lock lock(mutex_);
        while (!stop_) {
          lock.unlock();
          const bool ok = scrape_once(endpoint_, buf);
          lock.lock();
          ++scrapes_;
          if (!ok) ++failed_;
          cv_.wait_for(lock, every, [this] { return stop_; });
        }
      });
    }
  }
  ~metrics_probe_impl() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (scraper_.joinable()) scraper_.join();
    server_.stop();
    work_.reset();
    io_thread_.join();
  }
  [[nodiscard]] const tcp::endpoint& endpoint() const { return endpoint_; }
  [[nodiscard]] const natsbus::metrics::registry& registry() const { return registry_; }
  void report(std::FILE* f) {
    std::lock_guard lock(mutex_);
    std::fprintf(f, "metrics: endpoint %s:%u, %zu scrapes (%zu failed)\n", endpoint_.address().to_string().c_str(),
                 endpoint_.port(), scrapes_, failed_);
  }

 private:
  natsbus::metrics::registry registry_;
  natsbus::metrics::registration registration_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  natsbus::metrics_server server_;
  tcp::endpoint endpoint_;
  std::thread io_thread_, scraper_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::size_t scrapes_ = 0, failed_ = 0;
};

natsbus::event_bus_config bus_config(const bench_args& a) {
  natsbus::event_bus_config c;
  c.connection.servers = {a.url};
  c.connection.name = "natsbus-bench-metrics";
  apply_security(a, c.connection);
  if (a.busy_poll_us >= 0) c.connection.busy_poll = std::chrono::microseconds(a.busy_poll_us);
  c.jetstream.max_pending = a.max_pending;
  c.strategy = natsbus::topic_strategy::create_only;
  c.auto_msg_id = a.auto_msg_id;
  if (a.max_provisioning) c.max_provisioning_in_flight = a.max_provisioning;
  c.default_topic_options.persistence = natsbus::topic_persistence::persistent;
  c.default_topic_options.storage = a.storage == "memory" ? natsbus::storage_type::memory : natsbus::storage_type::file;
  return c;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5))];
}

asio::awaitable<void> delete_streams(natsbus::jetstream& js, std::vector<std::string> names) {
  // A few deletes in flight at once: the server takes them in turn.
  std::size_t next = 0, left = names.size();
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer poke(ex);
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < names.size()) {
      const std::string name = names[next++];
      auto [ec] = co_await js.delete_stream(name, use_ec);
      (void)ec;
      --left;
      poke.cancel();
    }
  };
  for (int i = 0; i < 16; ++i) asio::co_spawn(ex, worker, asio::detached);
  while (left > 0) {
    poke.expires_at(asio::steady_timer::time_point::max());
    auto [ec] = co_await poke.async_wait(use_ec);
    (void)ec;
  }
}

asio::awaitable<bool> started(natsbus::event_bus& bus, const bench_args& a) {
  auto [ec] = co_await bus.start(use_ec);
  if (ec) std::cerr << "bus start " << a.url << ": " << ec.message() << " " << bus.last_error() << "\n";
  co_return !ec;
}

// ---- metrics-ab ----

asio::awaitable<int> run_metrics_ab(const bench_args& a) {
  auto ex = co_await asio::this_coro::executor;
  natsbus::event_bus bus(ex, bus_config(a));
  if (!co_await started(bus, a)) co_return 1;
  constexpr std::string_view topic = "busbench.metrics";
  const std::string stream = natsbus::event_bus::stream_name_for(topic);
  auto [dec] = co_await bus.js().delete_stream(stream, use_ec);
  (void)dec;
  natsbus::topic_options to;
  to.persistence = natsbus::topic_persistence::persistent;
  to.storage = a.storage == "memory" ? natsbus::storage_type::memory : natsbus::storage_type::file;
  auto [cec, cr] = co_await bus.configure_topic(topic, to, use_ec);
  if (cec) {
    std::cerr << "configure_topic: " << cr.message << "\n";
    co_return 1;
  }
  const std::string payload(a.size, 'x');
  std::vector<double> off, on, rates, cpu_off, cpu_on;  // msg/s; client CPU µs per message
  int errors = 0;
  asio::steady_timer settle(co_await asio::this_coro::executor);
  for (std::size_t round = 0; round < a.rounds; ++round) {
    const bool metrics_on = round % 2 == 1;
    std::optional<metrics_probe_impl> probe;
    if (metrics_on) probe.emplace(a, bus, true);
    // The same start for both: the stream emptied, then a pause for the server to settle (a purge leaves it
    // freeing memory for a while, which would slow whichever round came right after it).
    natsbus::purge_options po;
    auto [pec, purged] = co_await bus.js().purge_stream(stream, po, use_ec);
    (void)pec;
    (void)purged;
    settle.expires_after(std::chrono::milliseconds(300));
    auto [sec2] = co_await settle.async_wait(use_ec);
    (void)sec2;
    result r;
    auto cpu0 = cpu_clock::now();
    auto t0 = std::chrono::steady_clock::now();
    co_await bus_windowed(bus, topic, a.msgs, payload, a.max_pending, r);
    auto t1 = std::chrono::steady_clock::now();
    auto cpu1 = cpu_clock::now();
    const double secs = std::chrono::duration<double>(t1 - t0).count();
    const double rate = static_cast<double>(a.msgs) / secs;
    (metrics_on ? on : off).push_back(rate);
    rates.push_back(rate);
    (metrics_on ? cpu_on : cpu_off)
        .push_back((cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) * 1e6 / static_cast<double>(a.msgs));
    errors += static_cast<int>(r.errors);
    std::printf("client=natsbus scenario=metrics-ab round=%zu metrics=%s msgs=%zu seconds=%.6f msgs_per_s=%.0f "
                "acks=%zu errors=%zu client_user_s=%.6f client_sys_s=%.6f\n",
                round, metrics_on ? "on" : "off", a.msgs, secs, rate, r.acks, r.errors, cpu1.user - cpu0.user,
                cpu1.sys - cpu0.sys);
    if (probe) probe->report(stderr);
    if (r.errors) std::cerr << "first error: " << r.first_error << "\n";
  }
  // Each "on" round against the mean of the "off" rounds on either side of it: the machine's drift (other work on
  // it) cancels out better than in the ratio of the medians.
  std::vector<double> paired;
  for (std::size_t i = 1; i < rates.size(); i += 2) {
    const double before = rates[i - 1], after = i + 1 < rates.size() ? rates[i + 1] : before;
    paired.push_back(rates[i] / ((before + after) / 2));
  }
  const double m_off = median(off), m_on = median(on);
  std::printf("client=natsbus scenario=metrics-ab rounds=%zu msgs=%zu scrape_ms=%zu median_off=%.0f median_on=%.0f "
              "ratio_on_off=%.4f paired_ratio_median=%.4f cpu_us_per_msg_off=%.3f cpu_us_per_msg_on=%.3f\n",
              a.rounds, a.msgs, a.scrape_ms, m_off, m_on, m_off > 0 ? m_on / m_off : 0.0, median(paired),
              median(cpu_off), median(cpu_on));
  if (!a.keep) {
    auto [ec] = co_await bus.js().delete_stream(stream, use_ec);
    (void)ec;
  }
  bus.close();
  co_return errors ? 1 : 0;
}

// ---- metrics-scrape ----

asio::awaitable<int> run_metrics_scrape(const bench_args& a) {
  auto ex = co_await asio::this_coro::executor;
  natsbus::event_bus bus(ex, bus_config(a));
  if (!co_await started(bus, a)) co_return 1;
  std::vector<natsbus::topic_config> topics;
  std::vector<std::string> streams;
  for (std::size_t i = 0; i < a.topics; ++i) {
    natsbus::topic_config tc;
    tc.name = "scrapebench.t" + std::to_string(i);
    tc.options.persistence = natsbus::topic_persistence::persistent;
    tc.options.storage = a.storage == "memory" ? natsbus::storage_type::memory : natsbus::storage_type::file;
    streams.push_back(natsbus::event_bus::stream_name_for(tc.name));
    if (i < a.subs) streams.push_back(natsbus::event_bus::stream_name_for(tc.name + ".dlq"));
    topics.push_back(std::move(tc));
  }
  {
    auto old = streams;
    co_await delete_streams(bus.js(), std::move(old));
  }
  auto [cec, results] = co_await bus.configure_topics(topics, use_ec);
  if (cec) {
    std::cerr << "configure_topics: " << cec.message() << " " << bus.last_error() << "\n";
    co_return 1;
  }
  std::size_t handled = 0;
  natsbus::event_handler_fn handler = [&handled](const natsbus::bus_event&) -> asio::awaitable<natsbus::handle_result> {
    ++handled;
    co_return natsbus::handle_result::ok();
  };
  std::vector<natsbus::bus_subscription> subs;
  for (std::size_t i = 0; i < a.subs && i < a.topics; ++i) {
    natsbus::subscribe_options so;
    so.group = "bench";
    const std::string topic = topics[i].name;
    auto [ec, sub] = co_await bus.subscribe(topic, handler, so, use_ec);
    if (ec) {
      std::cerr << "subscribe " << topic << ": " << ec.message() << " " << bus.last_error() << "\n";
      co_return 1;
    }
    subs.push_back(std::move(sub));
  }
  result r;
  const std::string payload(a.size, 'x');
  {
    ack_reaper reaper(a.max_pending, r);
    for (const auto& tc : topics) {
      auto [ec, f] = co_await bus.publish_async(tc.name, payload, use_ec);
      if (ec) {
        note_error(r, ec);
        continue;
      }
      if (reaper.add(f)) co_await reaper.wait_one();
    }
    co_await reaper.drain();
  }
  asio::steady_timer pause(ex);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (handled < subs.size() && std::chrono::steady_clock::now() < until) {
    pause.expires_after(std::chrono::milliseconds(10));
    co_await pause.async_wait(use_ec);
  }

  int rc = 0;
  {
    metrics_probe_impl probe(a, bus, false);
    std::vector<double> http_ms, first_ms, write_ms;
    std::size_t series = 0;
    const std::size_t bytes = response_size(probe.endpoint());  // also warms the buffers up
    std::vector<char> buf;
    const auto cpu0 = cpu_clock::now();
    for (int i = 0; i < 50; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      double first = 0;
      if (!scrape_once(probe.endpoint(), buf, &first)) rc = 1;
      http_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      first_ms.push_back(first);
    }
    const auto cpu1 = cpu_clock::now();
    // The process's CPU per scrape, both sides: the endpoint's thread and this scraping client.
    const double cpu_ms = (cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) * 1000 / 50;
    std::string text;
    for (int i = 0; i < 50; ++i) {
      text.clear();
      auto t0 = std::chrono::steady_clock::now();
      probe.registry().write_prometheus(text);
      write_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      series = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) -
               2 * static_cast<std::size_t>(std::count(text.begin(), text.end(), '#'));
    }
    std::printf("client=natsbus scenario=metrics-scrape topics=%zu subscriptions=%zu handled=%zu response_bytes=%zu "
                "samples=%zu http_ms_p50=%.3f http_ms_p99=%.3f http_ms_max=%.3f first_byte_ms_p50=%.3f "
                "cpu_ms_per_scrape=%.3f write_ms_p50=%.3f write_ms_max=%.3f errors=%zu\n",
                a.topics, subs.size(), handled, bytes, series, percentile(http_ms, 0.5), percentile(http_ms, 0.99),
                percentile(http_ms, 1), percentile(first_ms, 0.5), cpu_ms, percentile(write_ms, 0.5),
                percentile(write_ms, 1), r.errors);
  }
  for (auto& s : subs) s.stop();
  if (!a.keep) co_await delete_streams(bus.js(), streams);
  bus.close();
  co_return rc || r.errors ? 1 : 0;
}

}  // namespace

struct metrics_probe::impl : metrics_probe_impl {
  using metrics_probe_impl::metrics_probe_impl;
};

metrics_probe::metrics_probe(const bench_args& a, natsbus::event_bus& bus) {
  if (!a.metrics_listen.empty()) impl_ = std::make_unique<impl>(a, bus, true);
}
metrics_probe::~metrics_probe() {
  if (impl_) impl_->report(stderr);
}

asio::awaitable<int> run_metrics_scenario(const bench_args& a) {
  if (a.scenario == "metrics-ab") {
    auto op = run_metrics_ab(a);
    co_return co_await std::move(op);
  }
  if (a.scenario == "metrics-scrape") {
    auto op = run_metrics_scrape(a);
    co_return co_await std::move(op);
  }
  std::cerr << "unknown scenario " << a.scenario << "\n";
  co_return 2;
}

}  // namespace bench
