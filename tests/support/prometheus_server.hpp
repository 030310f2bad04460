// Test fixture: a real Prometheus server (Debian's prometheus package) on 127.0.0.1, on a free port, with a
// temporary storage folder and a scrape config that points at one target; stopped by its process id.
#pragma once

#include <chrono>
#include <string>

namespace natsbus::test {

class prometheus_server {
 public:
  // Scrapes `target` ("127.0.0.1:PORT", path /metrics) every `interval`. Returns once Prometheus answers
  // /-/ready; throws when it does not start.
  explicit prometheus_server(const std::string& target,
                             std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  ~prometheus_server();
  prometheus_server(const prometheus_server&) = delete;
  prometheus_server& operator=(const prometheus_server&) = delete;

  [[nodiscard]] unsigned short port() const noexcept { return port_; }
  [[nodiscard]] std::string log() const;  // its stderr so far

  void stop();  // SIGTERM, SIGKILL after a bound; waits for the process

  // Whether a prometheus binary is on PATH.
  static bool available();

 private:
  bool start(const std::string& config);  // false: it exited at start (the port was taken meanwhile)
  std::string work_dir_;
  unsigned short port_ = 0;
  int pid_ = -1;
};

}  // namespace natsbus::test
