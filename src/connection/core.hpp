// Internal, sans-I/O: what a connection decides without doing I/O. The session (session.cpp) reads, writes and waits;
// everything it decides about what to send next, what a received frame completes, which server to try and when,
// lives in these plain objects, which unit tests drive with frames and read back bytes (tests/unit).
#pragma once

#include "connection/pings.hpp"
#include "connection/request_mux.hpp"
#include "connection/server_pool.hpp"
#include "connection/subscriptions.hpp"
#include "connection/write_buffer.hpp"

namespace natsbus::detail {

struct connection_core {
  connection_core(pool_policy policy, int max_pings_out, std::uint64_t seed)
      : pings(max_pings_out), pool(std::move(policy), seed) {}

  write_buffer out;            // every outbound frame
  ping_tracker pings;          // flush waiters and keepalive
  request_mux requests;        // replies on the inbox, single and streaming
  subscription_table subs;     // subscriptions and their queues
  server_pool pool;            // servers, backoff, discovery
  std::uint64_t inbox_sid = 0; // the request inbox's subscription (0: none yet)
};

}  // namespace natsbus::detail
