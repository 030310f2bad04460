// natsbus::metrics_server: an optional HTTP endpoint for a metrics registry, on Beast.
//
//   GET /metrics  the registry in the Prometheus text format
//   GET /healthz  200 while the process serves
//   GET /readyz   200 when the readiness check says so, 503 with its reason in the body otherwise
//
// HEAD works as GET without the body; other methods get 405, other paths 404, requests that do not parse 400
// (oversized ones 413 or 431); none of them ends the server. It listens on loopback by default: the figures name
// topics and subscriber groups.
//
// It runs on the executor it is given, which should be the application's own for it (a thread of its own, or a
// pool): a scrape reads the measured objects' counters without ever running on their executors.
#pragma once

#include <natsbus/metrics.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace natsbus {

namespace asio = boost::asio;

namespace detail {
class metrics_server_impl;
}

// What /readyz answers.
struct readiness {
  bool ready = true;
  std::string reason;  // why not
};
// Called on the server's executor for each /readyz; must be safe from there.
using readiness_check = std::function<readiness()>;

// Ready when the bus's connection is up and every durable subscription started through it is consuming. It asks
// the server nothing (event_bus::health() does): it reads what the bus already knows.
[[nodiscard]] readiness_check bus_readiness(const event_bus& bus);

struct metrics_server_options {
  asio::ip::tcp::endpoint endpoint{asio::ip::address_v4::loopback(), 9464};
  readiness_check ready;  // empty: ready whenever alive
  std::size_t max_connections = 32;  // further connections are closed at once
  // A connection that has not sent a whole request for this long (or does not take its response) is closed.
  std::chrono::milliseconds idle_timeout{30000};
};

class metrics_server {
 public:
  metrics_server() = default;
  metrics_server(metrics_server&&) noexcept = default;
  metrics_server& operator=(metrics_server&& o) noexcept;
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;
  ~metrics_server() { stop(); }

  // Binds, listens, and serves on `ex` until stop() or destruction. Throws boost::system::system_error when the
  // endpoint cannot be bound. The server keeps the registry's state alive.
  [[nodiscard]] static metrics_server start(asio::any_io_executor ex, const metrics::registry& reg,
                                            metrics_server_options opts);
  [[nodiscard]] static metrics_server start(asio::any_io_executor ex, const metrics::registry& reg,
                                            asio::ip::tcp::endpoint endpoint = default_endpoint(),
                                            readiness_check ready = {});

  [[nodiscard]] static asio::ip::tcp::endpoint default_endpoint() {
    return {asio::ip::address_v4::loopback(), 9464};
  }
  // "127.0.0.1:9464", "[::1]:9464", "localhost:9464", or ":9464" (loopback); nullopt when it is none of these.
  [[nodiscard]] static std::optional<asio::ip::tcp::endpoint> parse_endpoint(std::string_view text);

  // The address it listens on (with the port the system chose for port 0).
  [[nodiscard]] asio::ip::tcp::endpoint local_endpoint() const;
  [[nodiscard]] bool running() const noexcept { return impl_ != nullptr; }
  // Stops accepting and closes every connection; returns at once (the closing happens on the server's executor).
  void stop();

 private:
  explicit metrics_server(std::shared_ptr<detail::metrics_server_impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<detail::metrics_server_impl> impl_;
};

}  // namespace natsbus
