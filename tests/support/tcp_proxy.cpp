#include "tcp_proxy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <optional>
#include <vector>

namespace natsbus::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t pump_buffer_size = 64 * 1024;

// One proxied connection: the accepted client socket and the socket to the server.
struct link {
  link(tcp::socket c, const asio::any_io_executor& ex) : client(std::move(c)), server(ex) {}
  tcp::socket client;
  tcp::socket server;
  bool open = true;
  bool damaged = false;  // the black hole swallowed bytes of this connection
  // Closing the sockets aborts whatever each pump is waiting on; safe to call again.
  void close() {
    open = false;
    error_code ignored;
    client.close(ignored);
    server.close(ignored);
  }
};

}  // namespace

struct tcp_proxy::state {
  state(asio::any_io_executor e, std::uint16_t t) : ex(std::move(e)), acceptor(ex), target(t) {}

  asio::any_io_executor ex;
  tcp::acceptor acceptor;
  std::uint16_t port = 0;
  std::uint16_t target = 0;
  bool closed = false;
  bool blackhole = false;
  std::optional<std::uint64_t> cut_budget;  // bytes server -> client left before an armed cut
  std::vector<std::shared_ptr<link>> links;

  std::uint64_t accepted = 0;
  std::uint64_t cuts = 0;
  std::uint64_t to_server = 0;
  std::uint64_t to_client = 0;
  std::uint64_t discarded = 0;
  std::string from_clients;  // what client_bytes() returns

  void drop(const std::shared_ptr<link>& l) {
    l->close();
    std::erase(links, l);
  }
  void cut_all() {
    ++cuts;
    auto all = std::move(links);
    links.clear();
    for (auto& l : all) l->close();
  }
};

namespace {

using state_ptr = std::shared_ptr<tcp_proxy::state>;

// Copies one direction until either side fails or the link is closed; then closes the whole link.
asio::awaitable<void> pump(state_ptr st, std::shared_ptr<link> l, bool to_client) {
  auto buf = std::make_unique<char[]>(pump_buffer_size);
  tcp::socket& from = to_client ? l->server : l->client;
  tcp::socket& to = to_client ? l->client : l->server;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf.get(), pump_buffer_size), use_ec);
    // Recorded before any fault decides its fate: the client did send it.
    if (!ec && !to_client) st->from_clients.append(buf.get(), n);
    if (ec || !l->open || st->closed) break;
    if (st->blackhole) {
      l->damaged = true;
      st->discarded += n;
      continue;
    }
    std::size_t forward = n;
    bool fire = false;
    if (to_client && st->cut_budget) {
      auto& left = *st->cut_budget;
      if (left <= n) {
        forward = static_cast<std::size_t>(left);
        fire = true;
        st->cut_budget.reset();
      } else {
        left -= n;
      }
    }
    if (forward > 0) {
      auto [wec, m] = co_await asio::async_write(to, asio::buffer(buf.get(), forward), use_ec);
      (to_client ? st->to_client : st->to_server) += m;
      if (wec || !l->open) break;
    }
    if (fire) {
      st->cut_all();
      break;
    }
  }
  st->drop(l);
}

// Connects the accepted client to the current target, then starts both pumps.
asio::awaitable<void> serve(state_ptr st, std::shared_ptr<link> l) {
  if (!l->open || st->closed || st->target == 0) {
    st->drop(l);
    co_return;
  }
  tcp::endpoint target(asio::ip::address_v4::loopback(), st->target);
  auto [ec] = co_await l->server.async_connect(target, use_ec);
  if (ec || !l->open || st->closed) {
    st->drop(l);
    co_return;
  }
  error_code ignored;
  l->client.set_option(tcp::no_delay(true), ignored);
  l->server.set_option(tcp::no_delay(true), ignored);
  asio::co_spawn(st->ex, pump(st, l, true), asio::detached);
  asio::co_spawn(st->ex, pump(st, l, false), asio::detached);
}

asio::awaitable<void> accept_loop(state_ptr st) {
  for (;;) {
    tcp::socket s(st->ex);
    auto [ec] = co_await st->acceptor.async_accept(s, use_ec);
    if (st->closed || !st->acceptor.is_open()) co_return;
    if (ec) {
      if (ec == asio::error::connection_aborted) continue;  // the client gave up before we took it
      co_return;  // anything else would repeat: stop accepting rather than spin
    }
    ++st->accepted;
    auto l = std::make_shared<link>(std::move(s), st->ex);
    st->links.push_back(l);
    asio::co_spawn(st->ex, serve(st, l), asio::detached);
  }
}

}  // namespace

tcp_proxy::tcp_proxy(asio::any_io_executor ex, std::uint16_t target_port)
    : state_(std::make_shared<state>(std::move(ex), target_port)) {
  tcp::endpoint local(asio::ip::address_v4::loopback(), 0);
  state_->acceptor.open(local.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(local);
  state_->acceptor.listen();
  state_->port = state_->acceptor.local_endpoint().port();
  asio::co_spawn(state_->ex, accept_loop(state_), asio::detached);
}

tcp_proxy::~tcp_proxy() { close(); }

std::uint16_t tcp_proxy::port() const noexcept { return state_->port; }
std::string tcp_proxy::url() const { return "nats://127.0.0.1:" + std::to_string(state_->port); }
void tcp_proxy::set_target(std::uint16_t port) noexcept { state_->target = port; }

void tcp_proxy::cut() { state_->cut_all(); }

void tcp_proxy::blackhole(bool on) {
  state_->blackhole = on;
  if (on) return;
  // Streams that lost bytes cannot be resumed: end them, so the client reconnects at once instead of
  // parsing garbage or waiting for bytes that will never come.
  auto damaged = state_->links;
  for (auto& l : damaged)
    if (l->damaged) state_->drop(l);
}

bool tcp_proxy::blackholed() const noexcept { return state_->blackhole; }

void tcp_proxy::cut_after_server_bytes(std::uint64_t n) { state_->cut_budget = n; }

void tcp_proxy::close() {
  if (state_->closed) return;
  state_->closed = true;
  error_code ignored;
  state_->acceptor.close(ignored);
  auto all = std::move(state_->links);
  state_->links.clear();
  for (auto& l : all) l->close();
}

std::uint64_t tcp_proxy::accepted() const noexcept { return state_->accepted; }
std::size_t tcp_proxy::active() const noexcept { return state_->links.size(); }
std::uint64_t tcp_proxy::cuts() const noexcept { return state_->cuts; }
std::uint64_t tcp_proxy::bytes_to_server() const noexcept { return state_->to_server; }
std::uint64_t tcp_proxy::bytes_to_client() const noexcept { return state_->to_client; }
std::uint64_t tcp_proxy::bytes_discarded() const noexcept { return state_->discarded; }
std::string tcp_proxy::client_bytes() const { return state_->from_clients; }

}  // namespace natsbus::test
