#include "nats_cluster.hpp"

#include <natsbus/connection.hpp>
#include <natsbus/jetstream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace natsbus::test {
namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

// `n` distinct free TCP ports on 127.0.0.1: every socket stays bound until all are picked, so none repeats.
// Another process may still take one before the server binds it; the caller starts again then.
std::vector<int> pick_ports(std::size_t n) {
  std::vector<int> fds, ports;
  for (std::size_t i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) break;
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      break;
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (ports.size() != n) throw std::runtime_error("could not pick free ports on 127.0.0.1");
  return ports;
}

std::string make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "natsbus-cluster-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

}  // namespace

nats_cluster::nats_cluster(cluster_options opts) : opts_(std::move(opts)) {
  if (opts_.size == 0) throw std::invalid_argument("a cluster needs at least one server");
  work_dir_ = make_temp_dir();
  std::string last_error;
  for (int round = 0; round < 5; ++round) {
    try {
      start_all();
      return;
    } catch (const std::exception& e) {
      // Most likely a port taken between picking and binding: pick again.
      last_error = e.what();
      for (auto& s : servers_) s->kill();
      servers_.clear();
      std::error_code ec;
      fs::remove_all(work_dir_, ec);
      fs::create_directories(work_dir_, ec);
    }
  }
  std::error_code ec;
  fs::remove_all(work_dir_, ec);
  throw std::runtime_error("could not start the cluster: " + last_error);
}

nats_cluster::~nats_cluster() {
  for (auto& s : servers_) s->kill();
  servers_.clear();
  std::error_code ec;
  fs::remove_all(work_dir_, ec);
}

void nats_cluster::start_all() {
  auto ports = pick_ports(2 * opts_.size);
  client_ports_.assign(ports.begin(), ports.begin() + static_cast<std::ptrdiff_t>(opts_.size));
  cluster_ports_.assign(ports.begin() + static_cast<std::ptrdiff_t>(opts_.size), ports.end());
  for (std::size_t i = 0; i < opts_.size; ++i) {
    server_options so;
    so.jetstream = false;  // the config file enables it, with its store
    so.port = client_ports_[i];
    so.config = config_for(i);
    servers_.push_back(std::make_unique<nats_server>(so));
  }
}

std::string nats_cluster::config_for(std::size_t i) const {
  std::string store = work_dir_ + "/" + server_name(i);
  std::string c;
  c += "server_name: " + server_name(i) + "\n";
  c += "jetstream {\n  store_dir: \"" + store + "\"\n}\n";
  c += "cluster {\n";
  c += "  name: " + opts_.name + "\n";
  c += "  listen: 127.0.0.1:" + std::to_string(cluster_ports_[i]) + "\n";
  c += "  routes: [\n";
  for (std::size_t j = 0; j < cluster_ports_.size(); ++j)
    if (j != i) c += "    nats-route://127.0.0.1:" + std::to_string(cluster_ports_[j]) + "\n";
  c += "  ]\n}\n";
  c += opts_.extra_config;
  c += "\n";
  return c;
}

std::string nats_cluster::url(std::size_t i) const { return "nats://127.0.0.1:" + std::to_string(port(i)); }

std::vector<std::string> nats_cluster::urls() const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}

int nats_cluster::index_of_port(int p) const noexcept {
  for (std::size_t i = 0; i < client_ports_.size(); ++i)
    if (client_ports_[i] == p) return static_cast<int>(i);
  return -1;
}

int nats_cluster::index_of_name(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < size(); ++i)
    if (server_name(i) == name) return static_cast<int>(i);
  return -1;
}

std::string nats_cluster::log(std::size_t i, std::string_view filter) const {
  std::ifstream in(servers_.at(i)->log_file());
  std::string line, out;
  while (std::getline(in, line))
    if (filter.empty() || line.find(filter) != std::string::npos) out += line + "\n";
  return out;
}

void nats_cluster::kill(std::size_t i) { servers_.at(i)->kill(); }
void nats_cluster::restart(std::size_t i) { servers_.at(i)->restart(); }
void nats_cluster::signal(std::size_t i, int sig) { servers_.at(i)->signal(sig); }

namespace {

using steady = std::chrono::steady_clock;

asio::awaitable<void> pause(asio::steady_timer& timer, std::chrono::milliseconds d) {
  timer.expires_after(d);
  co_await timer.async_wait(use_ec);
}

// Until every running server answers $JS.API.INFO, that is knows the JetStream meta leader; throws at `deadline`.
asio::awaitable<void> jetstream_answers(const nats_cluster& cluster, steady::time_point deadline,
                                        std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer retry(ex);
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (!cluster.running(i)) continue;
    std::string last = "not tried";
    connection_options o;
    o.servers = {cluster.url(i)};
    o.randomize_servers = false;
    o.ignore_discovered_servers = true;
    o.allow_reconnect = false;
    o.connect_timeout = std::chrono::seconds(1);
    std::unique_ptr<connection> c;
    for (;;) {
      if (!c) {
        auto fresh = std::make_unique<connection>(ex, o);
        auto [cec] = co_await fresh->connect(use_ec);
        if (cec) last = "connect: " + cec.message();
        else c = std::move(fresh);
      }
      if (c) {
        // A short deadline: without a meta leader the API may not answer at all.
        jetstream_options jo;
        jo.timeout = std::chrono::milliseconds(250);
        jetstream js(*c, jo);
        auto [aec, info] = co_await js.get_account_info(use_ec);
        if (!aec) break;
        last = "$JS.API.INFO: " + aec.message();
        if (!c->is_connected()) c.reset();
      }
      if (steady::now() >= deadline)
        throw std::runtime_error(cluster.server_name(i) + " (" + cluster.url(i) + "): JetStream not ready within " +
                                 std::to_string(limit.count()) + " ms; last: " + last);
      // No event announces the meta leader to a client: retry after a short pause.
      co_await pause(retry, std::chrono::milliseconds(100));
    }
    c->close();
  }
}

// Creates a probe stream with one replica per running server, retried until `until`, and deletes it again
// (retried until `deadline`). Returns what failed last, empty when the stream was placed.
asio::awaitable<std::string> placement_probe(const nats_cluster& cluster, steady::time_point until,
                                             steady::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer retry(ex);
  std::vector<std::string> live;
  for (std::size_t i = 0; i < cluster.size(); ++i)
    if (cluster.running(i)) live.push_back(cluster.url(i));
  if (live.size() < 2) co_return std::string();
  connection_options o;
  o.servers = live;
  o.connect_timeout = std::chrono::seconds(1);
  o.max_reconnects = -1;
  o.reconnect_wait = std::chrono::milliseconds(100);
  connection c(ex, o);
  if (auto [cec] = co_await c.connect(use_ec); cec) co_return "connect: " + cec.message();
  jetstream_options jo;
  jo.timeout = std::chrono::seconds(2);
  jetstream js(c, jo);
  stream_config probe;
  probe.name = "natsbus_placement_probe";
  probe.subjects = {"natsbus.placement.probe"};
  probe.storage = storage_type::memory;
  probe.num_replicas = static_cast<int>(live.size());
  auto describe = [&](const char* step, const error_code& ec) {
    return std::string(step) + " of an R" + std::to_string(live.size()) + " stream: " + ec.message() + " (" +
           js.last_api_error().description + ")";
  };
  for (;;) {
    auto [ec, info] = co_await js.create_stream(probe, use_ec);
    if (!ec) break;
    if (steady::now() >= until) {
      c.close();
      co_return describe("creation", ec);
    }
    co_await pause(retry, std::chrono::milliseconds(100));  // no event announces a new peer either
  }
  for (;;) {
    auto [ec] = co_await js.delete_stream(probe.name, use_ec);
    if (!ec || ec == make_jetstream_error(jetstream_errc::stream_not_found)) break;
    if (steady::now() >= deadline) throw std::runtime_error("placement probe: " + describe("deletion", ec));
    co_await pause(retry, std::chrono::milliseconds(100));
  }
  c.close();
  co_return std::string();
}

}  // namespace

asio::awaitable<void> nats_cluster::ready(std::chrono::milliseconds limit) const {
  auto deadline = steady::now() + limit;
  // $JS.API.INFO answers as soon as a meta leader is known, but a replicated stream created just then can still
  // fail with "no suitable peers for placement" (10005): for a few hundred milliseconds after a start of
  // nats-server 2.10, and in about one start in 30 of 2.10.27 until the servers are restarted (seen for 90 s and
  // more; 2.9.10 never showed it in 60 starts). Hence the probe stream, and a restart of the running servers
  // (same ports and stores; up to two) whenever it is not placed within 10 s.
  constexpr int max_restarts = 2;
  for (int restarts = 0;; ++restarts) {
    co_await jetstream_answers(*this, deadline, limit);
    auto until = std::min(deadline, steady::now() + std::chrono::seconds(10));
    std::string failure = co_await placement_probe(*this, until, deadline);
    if (failure.empty()) co_return;
    if (restarts == max_restarts || steady::now() >= deadline)
      throw std::runtime_error("placement probe: " + failure + " (within " + std::to_string(limit.count()) +
                               " ms, after " + std::to_string(restarts) + " restarts of the servers)");
    std::fprintf(stderr, "nats_cluster: %s after 10 s; restarting the running servers\n", failure.c_str());
    // The servers are restarted, not replaced: same names, ports and stores (hence allowed on a const cluster).
    std::vector<std::size_t> live;
    for (std::size_t i = 0; i < size(); ++i)
      if (running(i)) live.push_back(i);
    for (auto i : live) servers_[i]->stop();
    for (auto i : live) servers_[i]->restart();
  }
}

void nats_cluster::wait_ready(std::chrono::milliseconds limit) const {
  asio::io_context io(1);
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(io, ready(limit), [&](std::exception_ptr e) {
    failure = e;
    done = true;
  });
  io.run_for(limit + std::chrono::seconds(5));
  if (failure) std::rethrow_exception(failure);
  if (!done) throw std::runtime_error("nats_cluster::wait_ready did not finish");
}

}  // namespace natsbus::test
