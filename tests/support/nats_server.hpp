// Test fixture: a real nats-server on 127.0.0.1, on a port it picks, with a temporary JetStream store.
// Started with fork/exec ($NATSBUS_NATS_SERVER when set, else nats-server on PATH), found by its ports file,
// stopped by its process id.
//
// The server writes its ports file once every listener it has (client, websocket, ...) accepts connections,
// without any handshake of ours: it is ready the same way whether the client port requires TLS, the server is
// in operator mode, or it has a websocket listener. A websocket block in the config may use an ephemeral port
// (listen: "127.0.0.1:-1", or port: -1); restart() then pins it to the port the first start got.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace natsbus::test {

struct server_options {
  bool jetstream = true;
  std::string config;               // extra config file contents (written to a temp file), optional
  std::vector<std::string> args;    // extra command-line arguments
  std::string store_dir;            // reuse a store (restart); empty: a new temporary one
  int port = -1;                    // -1: let the server pick
};

class nats_server {
 public:
  explicit nats_server(server_options opts = {});
  ~nats_server();
  nats_server(const nats_server&) = delete;
  nats_server& operator=(const nats_server&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] int pid() const noexcept { return pid_; }
  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  // The websocket listener's port, from the ports file; -1 when the config has no websocket block.
  [[nodiscard]] int websocket_port() const noexcept { return ws_port_; }
  // Plain ws:// always: a websocket block with its own tls {} wants "wss://127.0.0.1:" + websocket_port().
  [[nodiscard]] std::string ws_url() const { return "ws://127.0.0.1:" + std::to_string(ws_port_); }
  [[nodiscard]] const std::string& store_dir() const noexcept { return store_dir_; }
  [[nodiscard]] std::string log_file() const { return work_dir_ + "/server.log"; }  // the server's stderr

  void stop();                 // SIGTERM, then SIGKILL after a bound; waits for the process
  void kill();                 // SIGKILL now
  void restart();              // same ports (client, websocket) and store
  void signal(int sig);

 private:
  void start();
  server_options opts_;
  std::string work_dir_;
  std::string store_dir_;
  std::string ports_dir_;
  int port_ = -1;
  int ws_port_ = -1;
  int pid_ = -1;
  bool own_store_ = false;
};

// The nats-server the fixtures start: $NATSBUS_NATS_SERVER (a path) when set, else nats-server on PATH.
std::string nats_server_binary();
// Whether that binary is there: executable at $NATSBUS_NATS_SERVER, or on PATH.
bool nats_server_available();

}  // namespace natsbus::test
