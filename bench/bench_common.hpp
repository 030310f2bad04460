// Shared by the natsbus-bench scenarios: arguments, result accounting, CPU time (the client's and the server's),
// the ack reaper.
#pragma once

#include <natsbus/jetstream.hpp>

#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus {
class event_bus;
}

namespace bench {

namespace asio = boost::asio;

struct bench_args {
  std::string url = "nats://127.0.0.1:4222";
  std::string scenario = "async";
  std::string storage = "memory";
  std::size_t size = 16;
  std::size_t msgs = 100000;
  std::size_t max_pending = 4000;
  bool keep = false;
  bool msg_ids = false;
  bool auto_msg_id = true;  // the bus gives every publish a Nats-Msg-Id (--no-auto-msg-id turns it off)
  long busy_poll_us = -1;   // connection_options::busy_poll (--busy-poll-us); negative: the default
  std::size_t max_provisioning = 0;  // event_bus_config::max_provisioning_in_flight (--max-provisioning); 0: default
  long server_pid = 0;  // the nats-server's pid (--server-pid): its CPU over the timed window; 0: not measured
  std::size_t batch = 100;  // fetch, consume, ordered: messages per pull (--batch)
  std::string durable;      // fetch, consume: the durable consumer's name (--durable; kept with --keep)
  std::size_t concurrency = 1;  // bus-subscribe: the subscription's max_concurrency (--concurrency)
  bool prefill = false;          // bus-subscribe: publish every event first, then time the handling (--prefill)
  std::size_t keys = 0;         // bus-subscribe: ordering keys (--keys; "Key: k<i % K>"), 0: unkeyed
  std::size_t topics = 1000;    // configure: topics configured (--topics)
  std::string mapping = "per_topic";  // configure: per_topic or shared (--mapping)
  std::string phase = "both";         // configure: both, pipelined or one_by_one (--phase)
  // Metrics: the endpoint's address for the bus scenarios and metrics-ab (--metrics-listen ADDR:PORT; empty: no
  // endpoint in the bus scenarios, 127.0.0.1:0 in the metrics ones), the scrape interval (--scrape-ms), metrics-ab's
  // rounds (--rounds), metrics-scrape's subscriptions (--subs).
  std::string metrics_listen;
  std::size_t scrape_ms = 1000;
  std::size_t rounds = 6;
  std::size_t subs = 100;
  // Security: --tls-ca, --tls-cert, --tls-key, --tls-name, --creds, --nkey-seed (a seed file), --user, --password,
  // --token (the nats.c peer takes the same flags).
  std::string tls_ca, tls_cert, tls_key, tls_name, creds, nkey_seed, user, password, token;
};

// Takes a security flag and its value; false when `flag` is none of them.
inline bool parse_security_flag(std::string_view flag, const std::string& value, bench_args& a) {
  if (flag == "--tls-ca") a.tls_ca = value;
  else if (flag == "--tls-cert") a.tls_cert = value;
  else if (flag == "--tls-key") a.tls_key = value;
  else if (flag == "--tls-name") a.tls_name = value;
  else if (flag == "--creds") a.creds = value;
  else if (flag == "--nkey-seed") a.nkey_seed = value;
  else if (flag == "--user") a.user = value;
  else if (flag == "--password") a.password = value;
  else if (flag == "--token") a.token = value;
  else return false;
  return true;
}

inline void apply_security(const bench_args& a, natsbus::connection_options& o) {
  o.tls.ca_file = a.tls_ca;
  o.tls.cert_file = a.tls_cert;
  o.tls.key_file = a.tls_key;
  o.tls.server_name = a.tls_name;
  o.credentials_file = a.creds;
  o.nkey_seed_file = a.nkey_seed;
  if (!a.user.empty()) o.user = a.user;
  if (!a.password.empty()) o.password = a.password;
  if (!a.token.empty()) o.token = a.token;
}

struct cpu_clock {
  double user = 0, sys = 0;
  static cpu_clock now() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return {ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6};
  }
};

// The CPU time (user+sys) a process has used so far, in seconds: utime and stime from /proc/PID/stat (fields 14
// and 15, in clock ticks, so 10 ms steps at the usual 100 Hz). Negative when the file cannot be read or parsed.
inline double process_cpu_seconds(long pid) {
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  std::FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Field 2 is the command name in parentheses, which may hold spaces and parentheses itself: the numbered
  // fields start after the last ')'. Skipped as words: 3 state, 4-8 ppid to tpgid, 9-13 flags and page faults.
  const char* p = std::strrchr(buf, ')');
  unsigned long long utime = 0, stime = 0;
  if (!p || std::sscanf(p + 1, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &utime, &stime) != 2)
    return -1;
  const long ticks = sysconf(_SC_CLK_TCK);
  return ticks > 0 ? static_cast<double>(utime + stime) / static_cast<double>(ticks) : -1;
}

// The server's CPU time over a window: started at construction, read by seconds(). -1 when no pid was given
// (--server-pid) or /proc could not be read, like allocs_per_msg=-1 for a client that does not count them.
class server_cpu_clock {
 public:
  explicit server_cpu_clock(long pid) : pid_(pid), start_(pid > 0 ? process_cpu_seconds(pid) : -1) {
    if (pid > 0 && start_ < 0) std::fprintf(stderr, "natsbus-bench: cannot read /proc/%ld/stat\n", pid);
  }
  double seconds() const {
    if (start_ < 0) return -1;
    const double now = process_cpu_seconds(pid_);
    return now < 0 ? -1 : now - start_;
  }

 private:
  long pid_;
  double start_;
};

// The server's resident memory now, in KiB (VmRSS from /proc/PID/status); -1 without a pid or when unreadable.
inline long process_rss_kib(long pid) {
  if (pid <= 0) return -1;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/status", pid);
  std::FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  std::fclose(f);
  return kib;
}

struct result {
  std::size_t acks = 0;
  std::size_t errors = 0;
  std::string first_error;
};

inline void note_error(result& r, const natsbus::error_code& ec) {
  if (r.errors++ == 0) r.first_error = ec.message();
}

// Message ids are written into a reused buffer: the id costs no allocation of its own.
struct id_maker {
  char buf[32];
  std::string_view make(std::size_t i) {
    int n = std::snprintf(buf, sizeof buf, "m-%zu", i);
    return {buf, static_cast<std::size_t>(n)};
  }
};

// Takes ack futures in publish order and reaps the resolved ones at its head as it goes, without waiting;
// waits only when its ring is full.
class ack_reaper {
 public:
  ack_reaper(std::size_t window, result& r) : ring_(window * 2 + 1), r_(r) {}
  // Stores f and reaps what is resolved. True when the ring is full: the caller must co_await wait_one().
  bool add(natsbus::ack_future& f) {
    ring_[tail_] = std::move(f);
    tail_ = next(tail_);
    natsbus::error_code ec;
    while (head_ != tail_ && ring_[head_].try_get(ec, ack_)) take(ec);
    return next(tail_) == head_;
  }
  asio::awaitable<void> wait_one() {
    auto [ec, ack] = co_await ring_[head_].get(asio::as_tuple(asio::use_awaitable));
    take(ec);
  }
  asio::awaitable<void> drain() {
    while (head_ != tail_) co_await wait_one();
  }

 private:
  std::size_t next(std::size_t i) const { return i + 1 == ring_.size() ? 0 : i + 1; }  // no division per message
  void take(const natsbus::error_code& ec) {
    if (ec) note_error(r_, ec);
    else ++r_.acks;
    ring_[head_] = {};
    head_ = next(head_);
  }
  std::vector<natsbus::ack_future> ring_;
  std::size_t head_ = 0, tail_ = 0;
  natsbus::pub_ack ack_;
  result& r_;
};

// Heap allocations so far (alloc_counter.hpp, in natsbus_bench.cpp).
unsigned long long allocations() noexcept;
// While set, every allocation prints its call stack on stderr (alloc_counter.hpp).
extern bool trace_allocs;

// With --metrics-listen, the bus is registered in a metrics registry served there and scraped every --scrape-ms
// while this lives (metrics_bench.cpp); without it, nothing.
class metrics_probe {
 public:
  metrics_probe(const bench_args& a, natsbus::event_bus& bus);
  ~metrics_probe();
  metrics_probe(const metrics_probe&) = delete;
  metrics_probe& operator=(const metrics_probe&) = delete;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Metrics scenarios (metrics_bench.cpp): metrics-ab, metrics-scrape.
asio::awaitable<int> run_metrics_scenario(const bench_args& a);

// Bus scenarios (bus_bench.cpp).
// n publishes of payload to topic, up to `window` acks outstanding, each ack reaped into r.
asio::awaitable<void> bus_windowed(natsbus::event_bus& bus, std::string_view topic, std::size_t n,
                                   std::string_view payload, std::size_t window, result& r);
asio::awaitable<int> run_bus_scenario(const bench_args& a);
asio::awaitable<int> run_strategy_table(const bench_args& a);
asio::awaitable<int> run_configure_bench(const bench_args& a);

}  // namespace bench
