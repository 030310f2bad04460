// Internal: a latency histogram with the exposition's buckets (metrics::latency_buckets()), written by one
// executor and read by scrapes from any thread. Recording is a short scan and two relaxed single-writer stores:
// no locked instruction, no allocation.
#pragma once

#include "connection/connection_impl.hpp"
#include "metrics/latency_bounds.hpp"

#include <array>
#include <chrono>
#include <span>

namespace natsbus::detail {

class latency_buckets {
 public:
  // In nanoseconds, the bounds of metrics::latency_buckets() (seconds): 10 µs to 30 s.
  static constexpr auto bounds_ns = latency_bounds_ns;
  static constexpr std::size_t buckets = bounds_ns.size() + 1;

  void record(std::chrono::nanoseconds d) noexcept {
    const auto ns = d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
    std::size_t i = 0;
    while (i < bounds_ns.size() && ns > bounds_ns[i]) ++i;
    counts_[i].add(1);
    sum_ns_.add(ns);
  }
  // Per-bucket counts (not cumulative) and the sum in seconds.
  void read(std::span<std::uint64_t, buckets> counts, double& sum_seconds) const noexcept {
    for (std::size_t i = 0; i < buckets; ++i) counts[i] = counts_[i].get();
    sum_seconds = static_cast<double>(sum_ns_.get()) / 1e9;
  }

 private:
  std::array<counter, buckets> counts_{};
  counter sum_ns_;
};

}  // namespace natsbus::detail
