// Test fixture: a JetStream cluster of nats-server processes on 127.0.0.1 (server names n1, n2, ...), each
// with its own temporary store, routed to every other. Ports are picked before the start (the routes must name
// them) and picked again when a server finds its port taken.
#pragma once

#include "nats_server.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus::test {

struct cluster_options {
  std::size_t size = 3;
  std::string name = "natsbus-test";
  std::string extra_config;  // appended to every server's config file
};

class nats_cluster {
 public:
  explicit nats_cluster(cluster_options opts = {});
  ~nats_cluster();  // SIGKILL to every server still running, by process id
  nats_cluster(const nats_cluster&) = delete;
  nats_cluster& operator=(const nats_cluster&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return servers_.size(); }
  [[nodiscard]] std::string url(std::size_t i) const;
  [[nodiscard]] std::vector<std::string> urls() const;
  [[nodiscard]] int port(std::size_t i) const { return client_ports_.at(i); }
  [[nodiscard]] int cluster_port(std::size_t i) const { return cluster_ports_.at(i); }
  [[nodiscard]] int pid(std::size_t i) const { return servers_.at(i)->pid(); }
  [[nodiscard]] bool running(std::size_t i) const { return pid(i) > 0; }
  [[nodiscard]] std::string server_name(std::size_t i) const { return "n" + std::to_string(i + 1); }
  // The index of the server with this client port or server name; -1 when none has it.
  [[nodiscard]] int index_of_port(int port) const noexcept;
  [[nodiscard]] int index_of_name(std::string_view name) const noexcept;

  // Server i's log lines (its stderr, over every start) that contain `filter` (all when empty).
  [[nodiscard]] std::string log(std::size_t i, std::string_view filter = {}) const;

  void kill(std::size_t i);     // SIGKILL now, and reap
  void restart(std::size_t i);  // same ports and store (stops it first when it still runs)
  void signal(std::size_t i, int sig);

  // Until every running server answers $JS.API.INFO (so each knows the JetStream meta leader) and the meta
  // leader places a stream with one replica per running server (a probe stream, deleted again), retrying within
  // the limit; when the probe is not placed within 10 s, the running servers are restarted (same names, ports
  // and stores; up to twice, said on stderr). Throws std::runtime_error with the last error when the limit passes. wait_ready() runs its own
  // io_context (call it outside a test coroutine); ready() is the same for use inside one.
  void wait_ready(std::chrono::milliseconds limit = std::chrono::seconds(30)) const;
  [[nodiscard]] boost::asio::awaitable<void> ready(std::chrono::milliseconds limit = std::chrono::seconds(30)) const;

 private:
  void start_all();
  [[nodiscard]] std::string config_for(std::size_t i) const;

  cluster_options opts_;
  std::string work_dir_;  // one store directory per server under it
  std::vector<int> client_ports_;
  std::vector<int> cluster_ports_;
  std::vector<std::unique_ptr<nats_server>> servers_;
};

}  // namespace natsbus::test
