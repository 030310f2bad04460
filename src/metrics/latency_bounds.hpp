// Internal: the latency histograms' bucket bounds, in nanoseconds, 10 µs to 30 s: the one list both the recording
// side (latency_buckets.hpp) and the public metrics::latency_buckets() (in seconds) are made from.
#pragma once

#include <array>
#include <cstdint>

namespace natsbus::detail {

inline constexpr std::array<std::uint64_t, 20> latency_bounds_ns = {
    10'000,      25'000,      50'000,      100'000,       250'000,       500'000,       1'000'000,
    2'500'000,   5'000'000,   10'000'000,  25'000'000,    50'000'000,    100'000'000,   250'000'000,
    500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000, 30'000'000'000};

}  // namespace natsbus::detail
