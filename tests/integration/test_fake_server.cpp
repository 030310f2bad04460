// A scripted fake server, only for what a real nats-server cannot be made to do: garbage, oversize lines,
// overflowing sizes, frames split one byte at a time, and a server that stops answering PING.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "run.hpp"

#include <natsbus/connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

namespace asio = boost::asio;
using asio::ip::tcp;
using natsbus::error;
using natsbus::error_code;
using natsbus::test::run_coro;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::string_view garbage_bytes_frame = "\x01\x02\xff garbage\r\n";
constexpr std::string_view twenty_digit_frame = "MSG a.b 1 99999999999999999999\r\nhello\r\n";
constexpr std::string_view server_err_frame = "-ERR 'Unknown Protocol Operation'\r\n";

const std::string info_line =
    "INFO {\"server_id\":\"FAKE\",\"version\":\"2.9.10\",\"proto\":1,\"headers\":true,\"max_payload\":1048576}\r\n";

struct fake_server {
  tcp::acceptor acceptor;
  tcp::socket socket;
  std::string inbound;

  explicit fake_server(asio::any_io_executor ex)
      : acceptor(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0)), socket(ex) {}

  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()); }

  // Accepts one client, sends INFO, reads CONNECT and PING, answers PONG.
  asio::awaitable<void> handshake() {
    socket = co_await acceptor.async_accept(asio::use_awaitable);
    co_await asio::async_write(socket, asio::buffer(info_line), asio::use_awaitable);
    std::string_view ping = "PING";
    co_await read_line_with(ping);
    std::string_view pong = "PONG\r\n";
    co_await send(pong);
  }

  asio::awaitable<void> read_line_with(std::string_view what) {
    for (;;) {
      auto pos = inbound.find("\r\n");
      while (pos != std::string::npos) {
        std::string line = inbound.substr(0, pos);
        inbound.erase(0, pos + 2);
        if (line.find(what) != std::string::npos) co_return;
        pos = inbound.find("\r\n");
      }
      char buf[4096];
      auto n = co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
      inbound.append(buf, n);
    }
  }

  asio::awaitable<void> send(std::string_view bytes) {
    co_await asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()), asio::use_awaitable);
  }

  // Discards whatever the client sends until it closes.
  asio::awaitable<void> sink() {
    char buf[4096];
    for (;;) {
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), use_ec);
      if (ec) co_return;
    }
  }
};

// Writes a 1 MiB control line with no CRLF (the client must give up long before its end).
asio::awaitable<void> write_long_line(fake_server& f) {
  std::string line = "MSG " + std::string(1024 * 1024, 'a');
  co_await asio::async_write(f.socket, asio::buffer(line), use_ec);
}

// Connects a client to the fake server, runs `script` on the server side, and returns the error the
// client's connection closed with.
template <class Script>
asio::awaitable<error_code> closed_with(natsbus::connection_options o, Script script) {
  auto ex = co_await asio::this_coro::executor;
  fake_server fake(ex);
  o.servers = {fake.url()};
  o.allow_reconnect = false;  // the fault must surface as the close reason
  natsbus::connection c(ex, o);
  natsbus::test::signal closed(ex);
  error_code close_ec;
  c.set_event_handler([&](const natsbus::connection_event& e) {
    if (e.kind == natsbus::event_kind::closed) {
      close_ec = e.ec;
      closed.notify();
    }
  });
  asio::co_spawn(ex, fake.handshake(), asio::detached);
  co_await c.connect();
  co_await script(fake);
  co_await closed.wait();
  co_return close_ec;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fake_server_faults)

BOOST_AUTO_TEST_CASE(garbage_bytes) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options defaults;
    auto ec = co_await closed_with(defaults, [](fake_server& f) -> asio::awaitable<void> {
      co_await f.send(garbage_bytes_frame);
    });
    BOOST_TEST(ec == error::unknown_operation);
    BOOST_TEST(natsbus::is_fatal(ec));
  }, 10s);
}

BOOST_AUTO_TEST_CASE(megabyte_line_without_crlf) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options defaults;
    auto ec = co_await closed_with(defaults, [](fake_server& f) -> asio::awaitable<void> {
      asio::co_spawn(co_await asio::this_coro::executor, write_long_line(f), asio::detached);
      co_return;
    });
    BOOST_TEST(ec == error::control_line_too_long);
  }, 10s);
}

BOOST_AUTO_TEST_CASE(twenty_digit_size) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options defaults;
    auto ec = co_await closed_with(defaults, [](fake_server& f) -> asio::awaitable<void> {
      co_await f.send(twenty_digit_frame);
    });
    BOOST_TEST((ec == error::invalid_size || ec == error::payload_too_large), ec.message());
  }, 10s);
}

BOOST_AUTO_TEST_CASE(server_error_text_kept) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options defaults;
    auto ec = co_await closed_with(defaults, [](fake_server& f) -> asio::awaitable<void> {
      co_await f.send(server_err_frame);
      f.socket.close();
    });
    BOOST_TEST(ec == error::server_error);
  }, 10s);
}

BOOST_AUTO_TEST_CASE(frames_split_one_byte_at_a_time) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    fake_server fake(ex);
    natsbus::connection_options o;
    o.servers = {fake.url()};
    natsbus::connection c(ex, o);
    asio::co_spawn(ex, fake.handshake(), asio::detached);
    co_await c.connect();
    auto sub = co_await c.subscribe("s.x");
    std::string_view sub_line = "SUB s.x";
    co_await fake.read_line_with(sub_line);
    std::string script =
        "PING\r\n"
        "MSG s.x 1 5\r\nhello\r\n"
        "msg\ts.x  1\treply.to   0\r\n\r\n"
        "HMSG s.x 1 24 29\r\nNATS/1.0\r\nA: b\r\nA: c\r\n\r\nworld\r\n"
        "+OK\r\n";
    for (char ch : script) co_await fake.send(std::string_view(&ch, 1));
    std::string_view pong_line = "PONG";
    co_await fake.read_line_with(pong_line);  // the client answered the split PING
    auto m1 = co_await sub.next();
    BOOST_TEST(m1.payload == "hello");
    auto m2 = co_await sub.next();
    BOOST_TEST(m2.payload == "");
    BOOST_TEST(m2.reply == "reply.to");
    auto m3 = co_await sub.next();
    BOOST_TEST(m3.payload == "world");
    BOOST_TEST(m3.headers.get_all("a").size() == 2u);
    BOOST_TEST(c.is_connected());
    c.close();
  }, 10s);
}

BOOST_AUTO_TEST_CASE(stale_connection_detected) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options o;
    o.ping_interval = 100ms;
    o.max_pings_out = 2;
    auto start = std::chrono::steady_clock::now();
    auto ec = co_await closed_with(o, [](fake_server& f) -> asio::awaitable<void> {
      asio::co_spawn(co_await asio::this_coro::executor, f.sink(), asio::detached);  // reads, never answers
    });
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(ec == error::stale_connection);
    BOOST_TEST(took >= 250ms);
    BOOST_TEST(took < 100ms * (2 + 1) + 300ms);
  }, 10s);
}

BOOST_AUTO_TEST_SUITE_END()
