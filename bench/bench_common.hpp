// Shared by the natsbus-bench scenarios: arguments, result accounting, CPU time, the ack reaper.
#pragma once

#include <natsbus/jetstream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

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
};

struct cpu_clock {
  double user = 0, sys = 0;
  static cpu_clock now() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return {ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6};
  }
};

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

// Bus scenarios (bus_bench.cpp).
asio::awaitable<int> run_bus_scenario(const bench_args& a);
asio::awaitable<int> run_strategy_table(const bench_args& a);
asio::awaitable<int> run_configure_bench(const bench_args& a);

}  // namespace bench
