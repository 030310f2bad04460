// What the bus tests share: a bus on one test server with persistent memory topics, and subscription options
// whose retries and redeliveries come within a test's time (ack_wait 2 s, 3 deliveries, 100 ms backoff).
#pragma once

#include "nats_server.hpp"

#include <natsbus/event_bus.hpp>

#include <chrono>
#include <string>

namespace natsbus::test {

inline event_bus_config persistent_bus_config(const nats_server& s, std::string name, topic_strategy strategy) {
  event_bus_config c;
  c.connection.servers = {s.url()};
  c.connection.name = std::move(name);
  c.strategy = strategy;
  c.default_topic_options.persistence = topic_persistence::persistent;
  c.default_topic_options.storage = storage_type::memory;
  return c;
}

inline subscribe_options fast_subscribe_options(std::string group) {
  using namespace std::chrono_literals;
  subscribe_options o;
  o.group = std::move(group);
  o.ack_wait = 2s;
  o.max_deliver = 3;
  o.backoff = {100ms};
  return o;
}

}  // namespace natsbus::test
