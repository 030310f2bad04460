// WebSocket transport: ws://, wss:// and permessage-deflate against real nats-server WebSocket listeners; NATS frames
// split across and merged into WebSocket messages; and, from a scripted fake server, what a real one never sends
// (refused upgrades, bad opcodes, fragmented control frames, oversize frames, close codes).
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "event_log.hpp"
#include "nats_cluster.hpp"
#include "nats_server.hpp"
#include "run.hpp"
#include "tls_material.hpp"

#include <natsbus/connection.hpp>
#include <natsbus/jetstream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>
#include <string>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::event_kind;
using natsbus::test::event_log;
using natsbus::test::nats_server;
using natsbus::test::run_coro;
using natsbus::test::server_options;
using natsbus::test::tls_material;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

const tls_material& material() {
  static const tls_material m;
  return m;
}

server_options ws_server(bool compression = false) {
  server_options o;
  o.config = std::string("websocket {\n  listen: \"127.0.0.1:-1\"\n  no_tls: true\n") +
             (compression ? "  compression: true\n" : "") + "}\n";
  return o;
}

natsbus::connection_options ws_options(std::string url) {
  natsbus::connection_options o;
  o.servers = {std::move(url)};
  o.allow_reconnect = false;
  o.connect_timeout = 3s;
  return o;
}

asio::awaitable<void> publish_with_ack(natsbus::connection& c) {
  natsbus::jetstream js(c);
  natsbus::stream_config cfg;
  cfg.name = "WS";
  cfg.subjects = {"ws.>"};
  cfg.storage = natsbus::storage_type::memory;
  auto [cec, info] = co_await js.create_stream(cfg, use_ec);
  BOOST_REQUIRE_MESSAGE(!cec, "create_stream: " << cec.message());
  auto [pec, ack] = co_await js.publish("ws.one", "hello", use_ec);
  BOOST_REQUIRE_MESSAGE(!pec, "publish: " << pec.message());
  BOOST_TEST(ack.stream == "WS");
}

// Many small messages (merged into few WebSocket messages by both sides) and a few large ones (one NATS frame in
// many reads, and, from the server, across WebSocket frames), each checked byte for byte.
asio::awaitable<void> round_trips(natsbus::connection& c) {
  auto sub = co_await c.subscribe("rt.>");
  co_await c.flush();
  constexpr int small = 2000;
  for (int i = 0; i < small; ++i) co_await c.publish("rt.small", "m" + std::to_string(i));
  std::string big(900 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 3);
  for (int i = 0; i < 3; ++i) co_await c.publish("rt.big", big);
  for (int i = 0; i < small; ++i) {
    auto m = co_await sub.next();
    BOOST_REQUIRE_EQUAL(std::string(m.payload), "m" + std::to_string(i));
  }
  for (int i = 0; i < 3; ++i) {
    auto m = co_await sub.next();
    BOOST_REQUIRE(m.payload == big);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(websocket)

BOOST_AUTO_TEST_CASE(ws_url_publishes_with_ack_and_round_trips) {
  nats_server server(ws_server());
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, ws_options(server.ws_url()));
    co_await c.connect();
    co_await publish_with_ack(c);
    co_await round_trips(c);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(permessage_deflate) {
  nats_server server(ws_server(true));
  run_coro([&]() -> asio::awaitable<void> {
    auto o = ws_options(server.ws_url());
    o.websocket.compression = true;
    natsbus::connection c(co_await asio::this_coro::executor, o);
    co_await c.connect();
    co_await publish_with_ack(c);
    co_await round_trips(c);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(wss_url_verified_and_publishes_with_ack) {
  server_options so;
  so.config = "websocket {\n  listen: \"127.0.0.1:-1\"\n  tls {\n    cert_file: \"" + material().server_cert() +
              "\"\n    key_file: \"" + material().server_key() + "\"\n  }\n}\n";
  nats_server server(so);
  run_coro([&]() -> asio::awaitable<void> {
    const std::string url = "wss://127.0.0.1:" + std::to_string(server.websocket_port());
    auto o = ws_options(url);
    o.tls.ca_file = material().ca_cert();
    {
      natsbus::connection c(co_await asio::this_coro::executor, o);
      co_await c.connect();
      co_await publish_with_ack(c);
      co_await round_trips(c);
      c.close();
    }
    // The same verification as tls://.
    o.tls.ca_file = material().foreign_ca_cert();
    natsbus::connection c(co_await asio::this_coro::executor, o);
    auto [ec] = co_await c.connect(use_ec);
    BOOST_TEST(ec == error::tls_untrusted_certificate, ec.message());
  });
}

BOOST_AUTO_TEST_CASE(ws_next_to_a_tls_client_port_is_not_upgraded) {
  // nats-server 2.9 copies the client port's TLS flags into the INFO it sends over WebSocket: not acted on.
  server_options so;
  so.config = material().nats_tls_block(material().server_cert(), material().server_key(), false) +
              "websocket {\n  listen: \"127.0.0.1:-1\"\n  no_tls: true\n}\n";
  nats_server server(so);
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, ws_options(server.ws_url()));
    co_await c.connect();
    co_await publish_with_ack(c);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(reconnects_over_websocket) {
  nats_server server(ws_server());
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto o = ws_options(server.ws_url());
    o.allow_reconnect = true;
    o.reconnect_wait = 50ms;
    o.max_reconnects = -1;
    event_log log(ex);
    natsbus::connection c(ex, o);
    log.attach(c);
    co_await c.connect();
    auto sub = co_await c.subscribe("again");
    co_await c.flush();
    server.restart();
    co_await log.wait(event_kind::reconnected, 1);
    co_await c.publish("again", "after");
    auto m = co_await sub.next();
    BOOST_TEST(std::string(m.payload) == "after");
    c.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()

// ---- a scripted WebSocket server, for what a real one never sends ----

namespace {

std::string accept_key(const std::string& key) {
  const std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
}

// Accepts one client, answers its upgrade with `status` (101: a proper upgrade), then sends `frames` raw.
// Its state is shared with its handlers: a completion queued before the test drops the server still finds it.
class fake_ws_server {
 public:
  fake_ws_server(asio::any_io_executor ex, int status, std::string raw_frames)
      : s_(std::make_shared<state>(ex, std::move(raw_frames))) {
    s_->acceptor.async_accept(s_->peer, [s = s_, status](error_code ec) {
      if (ec) return;
      asio::async_read_until(s->peer, asio::dynamic_buffer(s->request), "\r\n\r\n", [s, status](error_code rec, std::size_t) {
        if (rec) return;
        std::string key;
        if (auto at = s->request.find("Sec-WebSocket-Key: "); at != std::string::npos)
          key = s->request.substr(at + 19, s->request.find("\r\n", at) - at - 19);
        if (status == 0) return;  // stalls
        if (status == 101)
          s->response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: " + accept_key(key) + "\r\n\r\n" + s->frames;
        else
          s->response = "HTTP/1.1 " + std::to_string(status) + " Forbidden\r\nContent-Length: 0\r\n\r\n";
        asio::async_write(s->peer, asio::buffer(s->response), [s](error_code wec, std::size_t) {
          if (wec) return;
          // Like a real peer, it closes the TCP stream once the client answers (its close frame, for the faults).
          s->peer.async_read_some(asio::buffer(s->sink), [s](error_code, std::size_t) {
            error_code ignored;
            s->peer.close(ignored);
          });
        });
      });
    });
  }
  ~fake_ws_server() {
    error_code ignored;
    s_->acceptor.close(ignored);
    s_->peer.close(ignored);
  }
  fake_ws_server(const fake_ws_server&) = delete;
  fake_ws_server& operator=(const fake_ws_server&) = delete;
  [[nodiscard]] std::string url() const {
    return "ws://127.0.0.1:" + std::to_string(s_->acceptor.local_endpoint().port());
  }

 private:
  struct state {
    state(const asio::any_io_executor& ex, std::string f)
        : acceptor(ex, {asio::ip::make_address("127.0.0.1"), 0}), peer(ex), frames(std::move(f)) {}
    asio::ip::tcp::acceptor acceptor;
    asio::ip::tcp::socket peer;
    std::string request, response, frames;
    char sink[4096];
  };
  std::shared_ptr<state> s_;
};

// A binary frame from the server (unmasked) carrying `payload`.
std::string frame(unsigned char first, const std::string& payload) {
  std::string f(1, static_cast<char>(first));
  f += static_cast<char>(payload.size());  // < 126 in these tests
  return f + payload;
}

asio::awaitable<void> expect(const std::string& url, error_code want) {
  auto o = ws_options(url);
  o.connect_timeout = 2s;
  natsbus::connection c(co_await asio::this_coro::executor, o);
  auto [ec] = co_await c.connect(use_ec);
  BOOST_TEST(ec == want, "got '" << ec.message() << "' (" << c.last_error() << "), want '" << want.message() << "'");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(websocket_faults)

BOOST_AUTO_TEST_CASE(refused_upgrade) {
  run_coro([&]() -> asio::awaitable<void> {
    fake_ws_server fake(co_await asio::this_coro::executor, 403, "");
    co_await expect(fake.url(), error::websocket_upgrade_failed);
  });
}

BOOST_AUTO_TEST_CASE(a_server_that_never_answers_the_upgrade) {
  run_coro([&]() -> asio::awaitable<void> {
    fake_ws_server fake(co_await asio::this_coro::executor, 0, "");  // reads the request, answers nothing
    auto o = ws_options(fake.url());
    o.connect_timeout = 500ms;
    natsbus::connection c(co_await asio::this_coro::executor, o);
    const auto start = std::chrono::steady_clock::now();
    auto [ec] = co_await c.connect(use_ec);
    BOOST_TEST(ec == error::connect_timeout, ec.message());
    BOOST_TEST((std::chrono::steady_clock::now() - start < 1500ms));
  });
}

BOOST_AUTO_TEST_CASE(bad_opcode) {
  run_coro([&]() -> asio::awaitable<void> {
    fake_ws_server fake(co_await asio::this_coro::executor, 101, frame(0x83, "INFO {}\r\n"));  // opcode 3: reserved
    co_await expect(fake.url(), error::websocket_protocol_error);
  });
}

BOOST_AUTO_TEST_CASE(fragmented_control_frame) {
  run_coro([&]() -> asio::awaitable<void> {
    fake_ws_server fake(co_await asio::this_coro::executor, 101, frame(0x09, "x"));  // a PING without FIN
    co_await expect(fake.url(), error::websocket_protocol_error);
  });
}

BOOST_AUTO_TEST_CASE(oversize_frame) {
  run_coro([&]() -> asio::awaitable<void> {
    // A binary frame announcing 2^40 bytes: over max_message_size.
    std::string f("\x82\x7f\x00\x00\x01\x00\x00\x00\x00\x00", 10);
    fake_ws_server fake(co_await asio::this_coro::executor, 101, f);
    co_await expect(fake.url(), error::websocket_protocol_error);
  });
}

BOOST_AUTO_TEST_CASE(close_code_from_the_server) {
  run_coro([&]() -> asio::awaitable<void> {
    fake_ws_server fake(co_await asio::this_coro::executor, 101, frame(0x88, std::string("\x03\xf0going away", 12)));
    auto o = ws_options(fake.url());
    natsbus::connection c(co_await asio::this_coro::executor, o);
    auto [ec] = co_await c.connect(use_ec);
    BOOST_TEST(ec == error::websocket_closed, ec.message());
    BOOST_TEST(c.last_error().find("1008") != std::string::npos, c.last_error());
    BOOST_TEST(c.last_error().find("going away") != std::string::npos, c.last_error());
  });
}

BOOST_AUTO_TEST_CASE(info_split_across_frames_and_merged_with_the_pong) {
  run_coro([&]() -> asio::awaitable<void> {
    // INFO in three WebSocket messages; the answer to CONNECT+PING (+OK, PONG) in the fourth, merged: the handshake
    // completes.
    std::string info = "INFO {\"server_id\":\"fake\",\"headers\":true,\"max_payload\":1048576}\r\n";
    std::string frames = frame(0x82, info.substr(0, 10)) + frame(0x82, info.substr(10, 20)) +
                         frame(0x82, info.substr(30)) + frame(0x82, "PONG\r\n");
    fake_ws_server fake(co_await asio::this_coro::executor, 101, frames);
    auto o = ws_options(fake.url());
    natsbus::connection c(co_await asio::this_coro::executor, o);
    co_await c.connect();
    BOOST_TEST(c.info().server_id == "fake");
    c.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()
