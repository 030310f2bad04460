// TLS against real nats-server processes, with certificates made at test time (tls_material): verification and its
// distinct failures, mutual TLS, never a plaintext CONNECT to a TLS server, files read again on reconnect.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "event_log.hpp"
#include "nats_cluster.hpp"
#include "nats_server.hpp"
#include "run.hpp"
#include "tcp_proxy.hpp"
#include "tls_material.hpp"

#include <natsbus/connection.hpp>
#include <natsbus/jetstream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <filesystem>
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
using natsbus::test::tcp_proxy;
using natsbus::test::tls_material;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

const tls_material& material() {
  static const tls_material m;  // made once per run: eight keys and certificates
  return m;
}

server_options tls_server(const std::string& cert, const std::string& key, bool verify_clients = false) {
  server_options o;
  o.config = material().nats_tls_block(cert, key, verify_clients);
  return o;
}

std::string tls_url(const nats_server& s, const std::string& host = "127.0.0.1") {
  return "tls://" + host + ":" + std::to_string(s.port());
}

natsbus::connection_options trusting(std::string url) {
  natsbus::connection_options o;
  o.servers = {std::move(url)};
  o.allow_reconnect = false;
  o.connect_timeout = 3s;
  o.tls.ca_file = material().ca_cert();
  return o;
}

// The good path's proof: a JetStream publish acknowledged over the connection.
asio::awaitable<void> publish_with_ack(natsbus::connection& c) {
  natsbus::jetstream js(c);
  natsbus::stream_config cfg;
  cfg.name = "SEC";
  cfg.subjects = {"sec.>"};
  cfg.storage = natsbus::storage_type::memory;
  auto [cec, info] = co_await js.create_stream(cfg, use_ec);
  BOOST_REQUIRE_MESSAGE(!cec, "create_stream: " << cec.message());
  auto [pec, ack] = co_await js.publish("sec.one", "hello", use_ec);
  BOOST_REQUIRE_MESSAGE(!pec, "publish: " << pec.message());
  BOOST_TEST(ack.stream == "SEC");
  BOOST_TEST(ack.seq >= 1u);
}

// Connects and expects `want`; returns the connection's error text.
asio::awaitable<std::string> expect_failure(natsbus::connection_options o, error_code want) {
  natsbus::connection c(co_await asio::this_coro::executor, o);
  const auto start = std::chrono::steady_clock::now();
  auto [ec] = co_await c.connect(use_ec);
  BOOST_TEST(ec == want, "connect: got '" << ec.message() << "' (" << c.last_error() << "), want '" << want.message()
                                          << "'");
  BOOST_TEST((std::chrono::steady_clock::now() - start < o.connect_timeout + 1s));
  co_return c.last_error();
}

std::string server_version_of(const nats_server& s) {
  std::string version;
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection_options o = trusting(tls_url(s));
    natsbus::connection c(co_await asio::this_coro::executor, o);
    co_await c.connect();
    version = c.info().version;
    c.close();
  });
  return version;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tls)

BOOST_AUTO_TEST_CASE(tls_url_verified_by_ip_address_publishes_with_ack) {
  nats_server server(tls_server(material().server_cert(), material().server_key()));
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, trusting(tls_url(server)));
    co_await c.connect();
    BOOST_TEST(c.info().tls_required);
    co_await publish_with_ack(c);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(tls_options_on_a_nats_url_and_a_dns_name) {
  nats_server server(tls_server(material().server_dns_only_cert(), material().server_dns_only_key()));
  run_coro([&]() -> asio::awaitable<void> {
    auto o = trusting("nats://localhost:" + std::to_string(server.port()));
    o.tls.enabled = true;
    natsbus::connection c(co_await asio::this_coro::executor, o);
    co_await c.connect();
    co_await publish_with_ack(c);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(expected_server_name_overrides_the_host) {
  nats_server server(tls_server(material().server_dns_only_cert(), material().server_dns_only_key()));
  run_coro([&]() -> asio::awaitable<void> {
    // By IP address, a DNS-only certificate does not match...
    co_await expect_failure(trusting(tls_url(server)), error::tls_name_mismatch);
    // ...unless the expected name is given.
    auto o = trusting(tls_url(server));
    o.tls.server_name = "localhost";
    natsbus::connection c(co_await asio::this_coro::executor, o);
    co_await c.connect();
    co_await publish_with_ack(c);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(verification_failures_have_their_own_errors) {
  nats_server expired(tls_server(material().server_expired_cert(), material().server_expired_key()));
  nats_server foreign(tls_server(material().server_foreign_cert(), material().server_foreign_key()));
  nats_server good(tls_server(material().server_cert(), material().server_key()));
  run_coro([&]() -> asio::awaitable<void> {
    auto text = co_await expect_failure(trusting(tls_url(expired)), error::tls_certificate_expired);
    BOOST_TEST(text.find("expired") != std::string::npos, text);
    co_await expect_failure(trusting(tls_url(foreign)), error::tls_untrusted_certificate);
    // Trusting only another CA: the good server's chain is unknown too.
    auto o = trusting(tls_url(good));
    o.tls.ca_file = material().foreign_ca_cert();
    co_await expect_failure(o, error::tls_untrusted_certificate);
    // The explicit, loudly named escape hatch accepts the foreign certificate.
    auto insecure = trusting(tls_url(foreign));
    insecure.tls.ca_file.clear();
    insecure.tls.insecure_skip_verify_dangerous = true;
    natsbus::connection c(co_await asio::this_coro::executor, insecure);
    co_await c.connect();
    co_await publish_with_ack(c);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(bad_tls_files_are_named_in_the_error) {
  nats_server server(tls_server(material().server_cert(), material().server_key()));
  run_coro([&]() -> asio::awaitable<void> {
    auto o = trusting(tls_url(server));
    o.tls.ca_file = material().garbage_pem();
    auto text = co_await expect_failure(o, error::invalid_tls_material);
    BOOST_TEST(text.find("ca_file") != std::string::npos, text);
    o = trusting(tls_url(server));
    o.tls.ca_file = material().dir() + "/missing.pem";
    co_await expect_failure(o, error::invalid_tls_material);
    o = trusting(tls_url(server));
    o.tls.cert_file = material().client_cert();
    o.tls.key_file = material().garbage_pem();
    text = co_await expect_failure(o, error::invalid_tls_material);
    BOOST_TEST(text.find("key_file") != std::string::npos, text);
    o.tls.key_file = material().foreign_client_key();  // a key, but not the certificate's
    text = co_await expect_failure(o, error::invalid_tls_material);
    BOOST_TEST(text.find("does not match") != std::string::npos, text);
    o.tls.key_file.clear();
    co_await expect_failure(o, error::invalid_tls_material);
    o = trusting(tls_url(server));
    o.tls.cert_file = material().empty_file();
    o.tls.key_file = material().client_key();
    co_await expect_failure(o, error::invalid_tls_material);
  });
}

BOOST_AUTO_TEST_CASE(mutual_tls) {
  nats_server server(tls_server(material().server_cert(), material().server_key(), true));
  run_coro([&]() -> asio::awaitable<void> {
    auto o = trusting(tls_url(server));
    o.tls.cert_file = material().client_cert();
    o.tls.key_file = material().client_key();
    {
      natsbus::connection c(co_await asio::this_coro::executor, o);
      co_await c.connect();
      co_await publish_with_ack(c);
      c.close();
    }
    co_await expect_failure(trusting(tls_url(server)), error::tls_client_certificate_rejected);
    o.tls.cert_file = material().foreign_client_cert();
    o.tls.key_file = material().foreign_client_key();
    co_await expect_failure(o, error::tls_client_certificate_rejected);
  });
}

BOOST_AUTO_TEST_CASE(a_server_that_requires_tls_gets_tls_without_options_and_never_plaintext) {
  nats_server server(tls_server(material().server_cert(), material().server_key()));
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp_proxy proxy(ex, static_cast<std::uint16_t>(server.port()));
    natsbus::connection_options o;
    o.servers = {"nats://secret_user:secret_pass@127.0.0.1:" + std::to_string(proxy.port())};
    o.allow_reconnect = false;
    // No TLS options: the upgrade verifies against the system's trust store, which does not know the test CA.
    {
      natsbus::connection c(ex, o);
      auto [ec] = co_await c.connect(use_ec);
      BOOST_TEST(ec == error::tls_untrusted_certificate, ec.message());
    }
    // With the CA: connected, through the proxy, and then through a reconnect.
    o.tls.ca_file = material().ca_cert();
    o.allow_reconnect = true;
    o.reconnect_wait = 50ms;
    event_log log(ex);
    natsbus::connection c(ex, o);
    log.attach(c);
    co_await c.connect();
    co_await publish_with_ack(c);
    proxy.cut();
    co_await log.wait(event_kind::reconnected, 1);
    co_await c.flush();
    c.close();
    const std::string wire = proxy.client_bytes();
    BOOST_TEST(!wire.empty());
    BOOST_TEST(wire.find("CONNECT") == std::string::npos);
    BOOST_TEST(wire.find("secret_pass") == std::string::npos);
    BOOST_TEST(static_cast<unsigned char>(wire[0]) == 0x16);  // a TLS handshake record, first thing sent
  });
}

BOOST_AUTO_TEST_CASE(tls_wanted_and_not_offered_sends_nothing) {
  nats_server server;  // plain
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp_proxy proxy(ex, static_cast<std::uint16_t>(server.port()));
    auto o = trusting("tls://u:p@127.0.0.1:" + std::to_string(proxy.port()));
    auto text = co_await expect_failure(o, error::secure_connection_not_available);
    BOOST_TEST(text.find("offers no TLS") != std::string::npos, text);
    o = trusting("nats://u:p@127.0.0.1:" + std::to_string(proxy.port()));
    o.tls.enabled = true;
    co_await expect_failure(o, error::secure_connection_not_available);
    BOOST_TEST(proxy.client_bytes().empty(), proxy.client_bytes());
  });
}

BOOST_AUTO_TEST_CASE(a_server_that_stalls_in_the_tls_handshake) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::acceptor acceptor(ex, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket peer(ex);
    // The fake server sends INFO asking for TLS, then never answers the ClientHello.
    acceptor.async_accept(peer, [&](error_code ec) {
      if (ec) return;
      static const std::string info = "INFO {\"server_id\":\"x\",\"headers\":true,\"tls_required\":true}\r\n";
      asio::async_write(peer, asio::buffer(info), [](error_code, std::size_t) {});
    });
    auto o = trusting("nats://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()));
    o.connect_timeout = 500ms;
    co_await expect_failure(o, error::tls_handshake_timeout);
  });
}

BOOST_AUTO_TEST_CASE(client_certificate_files_are_read_again_on_reconnect) {
  nats_server server(tls_server(material().server_cert(), material().server_key(), true));
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(material().dir()) / "rotating";
  fs::create_directories(dir);
  const std::string cert = (dir / "client.pem").string(), key = (dir / "client-key.pem").string();
  // First the foreign client certificate: refused.
  fs::copy_file(material().foreign_client_cert(), cert, fs::copy_options::overwrite_existing);
  fs::copy_file(material().foreign_client_key(), key, fs::copy_options::overwrite_existing);
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto o = trusting(tls_url(server));
    o.tls.cert_file = cert;
    o.tls.key_file = key;
    o.allow_reconnect = true;
    o.retry_on_failed_connect = true;
    o.reconnect_wait = 50ms;
    o.max_reconnects = -1;
    event_log log(ex);
    natsbus::connection c(ex, o);
    log.attach(c);
    co_await c.connect();  // succeeds at once; the client keeps trying in the background
    BOOST_TEST(!c.is_connected());
    // Rotated: the next attempt reads the new files and is accepted.
    fs::copy_file(material().client_cert(), cert, fs::copy_options::overwrite_existing);
    fs::copy_file(material().client_key(), key, fs::copy_options::overwrite_existing);
    co_await log.wait(event_kind::connected, 1);
    co_await publish_with_ack(c);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(handshake_first_on_servers_that_have_it) {
  const std::string version = [] {
    nats_server probe(tls_server(material().server_cert(), material().server_key()));
    return server_version_of(probe);
  }();
  if (version.rfind("2.9.", 0) == 0) {
    BOOST_TEST_MESSAGE("nats-server " << version << " has no handshake_first: checked on 2.10");
    BOOST_TEST(version.rfind("2.9.", 0) == 0u);
    return;
  }
  server_options so;
  so.config = "tls {\n  cert_file: \"" + material().server_cert() + "\"\n  key_file: \"" + material().server_key() +
              "\"\n  handshake_first: true\n  timeout: 2\n}\n";
  nats_server server(so);
  run_coro([&]() -> asio::awaitable<void> {
    auto o = trusting(tls_url(server));
    o.tls.handshake_first = true;
    {
      natsbus::connection c(co_await asio::this_coro::executor, o);
      co_await c.connect();
      co_await publish_with_ack(c);
      c.close();
    }
    // Without the option, the client waits for an INFO the server never sends first.
    o.tls.handshake_first = false;
    o.connect_timeout = 1s;
    natsbus::connection c(co_await asio::this_coro::executor, o);
    auto [ec] = co_await c.connect(use_ec);
    BOOST_TEST(ec == error::connect_timeout, ec.message());
  });
}

// A two-server TLS cluster whose certificates name only "localhost": the client, seeded with tls://localhost, learns
// the other server by IP address from INFO and, when its server dies, reconnects there verifying the certificate
// against the seed's host name.
BOOST_AUTO_TEST_CASE(tls_cluster_reconnect_to_a_gossiped_ip_address) {
  natsbus::test::cluster_options co;
  co.size = 2;
  co.extra_config = material().nats_tls_block(material().server_dns_only_cert(), material().server_dns_only_key(), false);
  natsbus::test::nats_cluster cluster(co);
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto o = trusting("tls://localhost:" + std::to_string(cluster.port(0)));
        o.allow_reconnect = true;
        o.randomize_servers = false;
        o.reconnect_wait = 100ms;
        o.max_reconnects = -1;
        event_log log(ex);
        natsbus::connection c(ex, o);
        log.attach(c);
        co_await c.connect();
        BOOST_TEST(c.info().port == cluster.port(0));
        // The route may form after the connect: then the peer comes with a later INFO.
        if (c.info().connect_urls.size() < 2) co_await log.wait(event_kind::discovered_servers, 1);
        const auto urls = c.info().connect_urls;
        BOOST_TEST(urls.size() == 2u);
        for (const auto& u : urls) BOOST_TEST(u.rfind("127.0.0.1:", 0) == 0u, u);  // announced by IP address
        cluster.kill(0);
        co_await log.wait(event_kind::reconnected, 1);
        BOOST_TEST(c.info().port == cluster.port(1));
        auto sub = co_await c.subscribe("after.failover");
        co_await c.publish("after.failover", "over TLS");
        auto m = co_await sub.next();
        BOOST_TEST(m.payload == "over TLS");
        c.close();
      },
      60s);
}

BOOST_AUTO_TEST_SUITE_END()
