#include "prometheus_server.hpp"
#include "child_process.hpp"
#include "http_probe.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace natsbus::test {
namespace {

// A port nothing listens on now: bound to port 0 and released. Another process may take it before Prometheus
// does; start() then fails and the fixture tries another.
unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::address_v4::loopback(), 0});
  return a.local_endpoint().port();
}

}  // namespace

bool prometheus_server::available() { return std::system("command -v prometheus >/dev/null 2>&1") == 0; }

prometheus_server::prometheus_server(const std::string& target, std::chrono::milliseconds interval) {
  std::string tmpl = (fs::temp_directory_path() / "natsbus-prometheus-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  work_dir_ = tmpl;
  std::ostringstream conf;
  conf << "global:\n  scrape_interval: " << interval.count() << "ms\n  scrape_timeout: " << interval.count()
       << "ms\nscrape_configs:\n  - job_name: natsbus\n    metrics_path: /metrics\n    static_configs:\n"
       << "      - targets: ['" << target << "']\n";
  const std::string config = work_dir_ + "/prometheus.yml";
  std::ofstream(config) << conf.str();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (start(config)) return;
  }
  std::string text = log();
  std::error_code ec;
  fs::remove_all(work_dir_, ec);
  throw std::runtime_error("prometheus did not start: " + text);
}

prometheus_server::~prometheus_server() {
  stop();
  std::error_code ec;
  fs::remove_all(work_dir_, ec);
}

std::string prometheus_server::log() const {
  std::ifstream in(work_dir_ + "/prometheus.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool prometheus_server::start(const std::string& config) {
  port_ = free_port();
  std::vector<std::string> args{"prometheus",
                                "--config.file=" + config,
                                "--storage.tsdb.path=" + work_dir_ + "/data",
                                "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                "--log.level=warn"};
  pid_ = spawn_child(args, work_dir_ + "/prometheus.log");
  // Ready once /-/ready answers 200 (TSDB opened, config loaded): a bounded poll.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    auto r = http_get(port_, "/-/ready", true, std::chrono::seconds(2));
    if (r.status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop();
  throw std::runtime_error("prometheus did not become ready within 60 s: " + log());
}

void prometheus_server::stop() {
  stop_child(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

}  // namespace natsbus::test
