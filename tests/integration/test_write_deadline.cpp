// connection_options::write_deadline: a server that stops reading fails the session with write_timeout, the
// publishers blocked on the write buffer get that error, and the client reconnects.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "run.hpp"
#include "script_server.hpp"

#include <natsbus/connection.hpp>

#include <boost/asio/as_tuple.hpp>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::test::run_coro;
using natsbus::test::script_server;
namespace st = natsbus::test::steps;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(write_deadline)

BOOST_AUTO_TEST_CASE(a_server_that_stops_reading_times_out_and_the_client_reconnects) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    // The first connection stops reading after the handshake; the next ones complete it and read on.
    script_server server(ex, {st::handshake(st::info(false))}, st::handshake(st::info(false)));
    server.inject(natsbus::test::fault{natsbus::test::fault_kind::stall, 0, st::handshake_steps});
    natsbus::connection_options o;
    o.servers = {server.url()};
    o.write_buffer_limit = 64 * 1024;
    o.write_deadline = 300ms;
    o.reconnect_wait = 20ms;
    o.reconnect_jitter = 0ms;
    natsbus::test::signal lost(ex), back(ex);
    error_code lost_with;
    natsbus::connection c(ex, o);
    c.set_event_handler([&](const natsbus::connection_event& e) {
      if (e.kind == natsbus::event_kind::disconnected && !lost_with) {
        lost_with = e.ec;
        lost.notify();
      }
      if (e.kind == natsbus::event_kind::reconnected) back.notify();
    });
    co_await c.connect();
    // Publish until the kernel's buffers are full and a publish waits on the write buffer: that one gets the
    // write timeout. Bounded: 2,000 x 64 KiB is far more than loopback buffers hold.
    const std::string payload(64 * 1024, 'x');
    error_code ec;
    int sent = 0;
    for (; sent < 2000 && !ec; ++sent) {
      auto [e] = co_await c.publish("stalled.subject", payload, asio::as_tuple(asio::use_awaitable));
      ec = e;
    }
    BOOST_TEST(ec == error::write_timeout, ec.message());
    co_await lost.wait();
    BOOST_TEST(lost_with == error::write_timeout, lost_with.message());
    co_await back.wait();
    BOOST_TEST(c.is_connected());
    BOOST_TEST(server.accepted() >= 2u);
    co_await c.flush();  // the new session works
  });
}

BOOST_AUTO_TEST_SUITE_END()
