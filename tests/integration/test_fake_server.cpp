// A scripted fake server (tests/support/script_server.hpp), only for what a real nats-server cannot be made to
// do: garbage, oversize lines, overflowing sizes, frames split one byte at a time, and a server that stops
// answering PING.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "run.hpp"
#include "script_server.hpp"

#include <natsbus/connection.hpp>

#include <boost/asio/as_tuple.hpp>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::test::conn_script;
using natsbus::test::run_coro;
using natsbus::test::script_server;
namespace st = natsbus::test::steps;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::string_view garbage_bytes_frame = "\x01\x02\xff garbage\r\n";
constexpr std::string_view twenty_digit_frame = "MSG a.b 1 99999999999999999999\r\nhello\r\n";
constexpr std::string_view server_err_frame = "-ERR 'Unknown Protocol Operation'\r\n";

conn_script after_handshake(const conn_script& rest) {
  conn_script s = st::handshake(st::info(false));
  s.insert(s.end(), rest.begin(), rest.end());
  return s;
}

constexpr std::size_t no_stall = static_cast<std::size_t>(-1);

// Connects a client to a server playing `rest` after the handshake, and returns the error the client's
// connection closed with. A stall injected at step `stall_at` stops the server reading and answering there.
asio::awaitable<error_code> closed_with(natsbus::connection_options o, const conn_script& rest, std::size_t stall_at) {
  auto ex = co_await asio::this_coro::executor;
  script_server server(ex, {after_handshake(rest)});
  if (stall_at != no_stall) server.inject(natsbus::test::fault{natsbus::test::fault_kind::stall, 0, stall_at});
  o.servers = {server.url()};
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
  co_await c.connect();
  co_await closed.wait();
  BOOST_TEST(server.errors().empty(), server.transcript());
  co_return close_ec;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fake_server_faults)

BOOST_AUTO_TEST_CASE(garbage_bytes) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options defaults;
    conn_script rest{st::send(std::string(garbage_bytes_frame))};
    auto ec = co_await closed_with(defaults, rest, no_stall);
    BOOST_TEST(ec == error::unknown_operation);
    BOOST_TEST(natsbus::is_fatal(ec));
  }, 10s);
}

BOOST_AUTO_TEST_CASE(megabyte_line_without_crlf) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options defaults;
    // The client must give up long before the line's end (the write may then fail: the client is gone).
    conn_script rest{st::send("MSG " + std::string(1024 * 1024, 'a'))};
    auto ec = co_await closed_with(defaults, rest, no_stall);
    BOOST_TEST(ec == error::control_line_too_long);
  }, 10s);
}

BOOST_AUTO_TEST_CASE(twenty_digit_size) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options defaults;
    conn_script rest{st::send(std::string(twenty_digit_frame))};
    auto ec = co_await closed_with(defaults, rest, no_stall);
    BOOST_TEST((ec == error::invalid_size || ec == error::payload_too_large), ec.message());
  }, 10s);
}

BOOST_AUTO_TEST_CASE(server_error_text_kept) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options defaults;
    conn_script rest{st::send(std::string(server_err_frame)), st::close()};
    auto ec = co_await closed_with(defaults, rest, no_stall);
    BOOST_TEST(ec == error::server_error);
  }, 10s);
}

BOOST_AUTO_TEST_CASE(frames_split_one_byte_at_a_time) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    std::string bytes =
        "PING\r\n"
        "MSG s.x ${sid} 5\r\nhello\r\n"
        "msg\ts.x  ${sid}\treply.to   0\r\n\r\n"
        "HMSG s.x ${sid} 24 29\r\nNATS/1.0\r\nA: b\r\nA: c\r\n\r\nworld\r\n"
        "+OK\r\n";
    conn_script rest{st::expect("SUB s.x ${sid}")};
    // One send step per byte (a ${sid} reference stays whole), each its own write.
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      std::size_t n = bytes.compare(i, 2, "${") == 0 ? bytes.find('}', i) - i + 1 : 1;
      rest.push_back(st::send(bytes.substr(i, n)));
      i += n - 1;
    }
    rest.push_back(st::expect("PONG"));  // the client answered the split PING
    const conn_script script = after_handshake(rest);
    script_server server(ex, {script});
    natsbus::connection_options o;
    o.servers = {server.url()};
    natsbus::connection c(ex, o);
    co_await c.connect();
    auto sub = co_await c.subscribe("s.x");
    auto m1 = co_await sub.next();
    BOOST_TEST(m1.payload == "hello");
    auto m2 = co_await sub.next();
    BOOST_TEST(m2.payload == "");
    BOOST_TEST(m2.reply == "reply.to");
    auto m3 = co_await sub.next();
    BOOST_TEST(m3.payload == "world");
    BOOST_TEST(m3.headers.get_all("a").size() == 2u);
    const std::size_t all_steps = script.size();
    co_await server.wait_steps(0, all_steps);
    BOOST_TEST(server.connections().at(0).script_done, server.transcript());
    BOOST_TEST(server.errors().empty(), server.transcript());
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
    // Right after the handshake the server stops reading and answering.
    conn_script rest{st::expect("PING")};
    auto ec = co_await closed_with(o, rest, st::handshake_steps);
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(ec == error::stale_connection);
    BOOST_TEST(took >= 250ms);
    BOOST_TEST(took < 100ms * (2 + 1) + 300ms);
  }, 10s);
}

BOOST_AUTO_TEST_SUITE_END()
