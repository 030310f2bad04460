// natsbus demo: connects, prints the server's INFO as the protocol layer parsed it, then shows a publish /
// subscribe round trip and request/reply over one connection.
#include <natsbus/connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstring>
#include <iostream>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
constexpr int burst = 100000;  // messages published (and received back) in the throughput part

// Answers each request on demo.echo until the subscription closes.
asio::awaitable<void> echo(natsbus::connection& c, natsbus::subscription sub) {
  for (;;) {
    auto [ec, m] = co_await sub.next(use_ec);
    if (ec) co_return;
    std::string answer = "echo: " + m.payload;
    co_await c.publish(m.reply, answer);
  }
}

// Takes messages off the subscription until each of the n published is accounted for: read, or dropped
// because the subscription's queue was full (the last drop always leaves queued messages to read after it).
asio::awaitable<void> count(natsbus::subscription& sub, int n, int& received) {
  while (received + static_cast<int>(sub.dropped()) < n) {
    auto [ec, m] = co_await sub.next(use_ec);
    if (ec) co_return;
    ++received;
  }
}

// Publishes n messages, then a PING/PONG round trip so that they all reached the server.
asio::awaitable<void> publish_count(natsbus::connection& c, int n) {
  for (int i = 0; i < n; ++i) co_await c.publish("demo.count", "0123456789abcdef");
  co_await c.flush();
}

asio::awaitable<void> demo(std::string url) {
  natsbus::connection_options o;
  o.servers = {url};
  o.name = "natsbus-demo";
  natsbus::connection c(co_await asio::this_coro::executor, o);
  co_await c.connect();
  auto info = c.info();
  std::cout << "connected: server_id=" << info.server_id << " version=" << info.version
            << " max_payload=" << info.max_payload << " jetstream=" << (info.jetstream ? "yes" : "no")
            << " headers=" << (info.headers ? "yes" : "no") << " client_id=" << info.client_id << '\n';

  auto sub = co_await c.subscribe("demo.echo");
  asio::co_spawn(c.get_executor(), echo(c, sub), asio::detached);
  auto reply = co_await c.request("demo.echo", "hello", 2s);
  std::cout << "request/reply: " << reply.payload << '\n';

  // The same connection publishes and, subscribed to the subject, receives every message back; the
  // publisher runs in its own coroutine while this one reads, and the clock stops at the last message read.
  auto counter = co_await c.subscribe("demo.count");
  constexpr int n = burst;
  int received = 0;
  auto start = std::chrono::steady_clock::now();
  asio::co_spawn(c.get_executor(), publish_count(c, n), asio::detached);
  co_await count(counter, n, received);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "published " << n << " x 16 B and received " << received << " back in " << secs << " s ("
            << static_cast<long>(received / secs) << " msg/s each way), subscription dropped " << counter.dropped()
            << '\n';
  auto st = c.stats();
  std::cout << "stats: out_msgs=" << st.out_msgs << " in_msgs=" << st.in_msgs << " out_bytes=" << st.out_bytes
            << " in_bytes=" << st.in_bytes << " dropped=" << st.dropped_msgs << '\n';
  co_await c.drain();
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = "nats://127.0.0.1:4222";
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--url") == 0) url = argv[i + 1];
  asio::io_context io(1);
  int rc = 0;
  asio::co_spawn(io, demo(url), [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "demo failed: " << ex.what() << '\n';
      rc = 1;
    }
  });
  io.run();
  return rc;
}
