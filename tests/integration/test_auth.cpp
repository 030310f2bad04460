// NKey and JWT authentication against real nats-server processes: keys, an operator → account → user chain and .creds
// files made by the project's own test code (jwt_chain). Good paths publish with an ack; bad inputs fail locally
// with a typed error before anything is sent, and no message names a secret.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "event_log.hpp"
#include "jwt_chain.hpp"
#include "nats_server.hpp"
#include "run.hpp"
#include "tcp_proxy.hpp"

#include "../../src/auth/nkey.hpp"

#include <natsbus/connection.hpp>
#include <natsbus/jetstream.hpp>

#include <boost/asio/as_tuple.hpp>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::event_kind;
using natsbus::test::event_log;
using natsbus::test::nats_server;
using natsbus::test::run_coro;
using natsbus::test::server_options;
using natsbus::test::tcp_proxy;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

// A file in a fresh temporary folder, removed with it.
class temp_file {
 public:
  explicit temp_file(const std::string& name) {
    char tmpl[] = "/tmp/natsbus-auth-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/" + name;
  }
  ~temp_file() {
    std::remove(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  void write(const std::string& text) const {
    // Written whole to a new file, then renamed over: a connect never reads half a file.
    const std::string tmp = path_ + ".new";
    std::ofstream(tmp, std::ios::binary | std::ios::trunc) << text;
    std::rename(tmp.c_str(), path_.c_str());
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

natsbus::connection_options options(const std::string& url) {
  natsbus::connection_options o;
  o.servers = {url};
  o.allow_reconnect = false;
  o.connect_timeout = 3s;
  return o;
}

asio::awaitable<void> publish_with_ack(natsbus::connection& c) {
  natsbus::jetstream js(c);
  natsbus::stream_config cfg;
  cfg.name = "AUTH";
  cfg.subjects = {"auth.>"};
  cfg.storage = natsbus::storage_type::memory;
  auto [cec, info] = co_await js.create_stream(cfg, use_ec);
  BOOST_REQUIRE_MESSAGE(!cec, "create_stream: " << cec.message());
  auto [pec, ack] = co_await js.publish("auth.one", "hello", use_ec);
  BOOST_REQUIRE_MESSAGE(!pec, "publish: " << pec.message());
  BOOST_TEST(ack.stream == "AUTH");
}

// Connects and expects `want`; the error text must not hold `secret`.
asio::awaitable<std::string> expect_failure(natsbus::connection_options o, error_code want, const std::string& secret) {
  natsbus::connection c(co_await asio::this_coro::executor, o);
  auto [ec] = co_await c.connect(use_ec);
  BOOST_TEST(ec == want, "got '" << ec.message() << "' (" << c.last_error() << "), want '" << want.message() << "'");
  if (!secret.empty()) {
    BOOST_TEST(c.last_error().find(secret) == std::string::npos);
    BOOST_TEST(c.last_error().find(secret.substr(0, 12)) == std::string::npos);
  }
  co_return c.last_error();
}

server_options with_config(std::string config) {
  server_options so;
  so.config = std::move(config);
  return so;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nkey_auth)

BOOST_AUTO_TEST_CASE(seed_inline_from_a_file_and_through_a_signer) {
  const auto user = natsbus::test::make_nkey_user();
  nats_server server(with_config(user.server_config()));
  temp_file seed_file("user.nk");
  seed_file.write("  " + user.seed + "\n");
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    {
      auto o = options(server.url());
      o.nkey_seed = user.seed;
      natsbus::connection c(ex, o);
      co_await c.connect();
      co_await publish_with_ack(c);
      c.close();
    }
    {
      auto o = options(server.url());
      o.nkey_seed_file = seed_file.path();
      natsbus::connection c(ex, o);
      co_await c.connect();
      co_await publish_with_ack(c);
      c.close();
    }
    {
      // A key held elsewhere: the application signs.
      auto signer = std::make_shared<natsbus::detail::nkey_signer>();
      error_code sec;
      *signer = natsbus::detail::nkey_signer::from_seed(user.seed, sec);
      BOOST_REQUIRE(!sec);
      int asked = 0;
      auto o = options(server.url());
      o.nkey_public_key = user.public_key;
      o.sign_nonce = [signer, &asked](std::string_view nonce, std::string& sig) {
        ++asked;
        error_code ec;
        sig = signer->sign(nonce, ec);
        return ec;
      };
      natsbus::connection c(ex, o);
      co_await c.connect();
      BOOST_TEST(asked == 1);
      co_await publish_with_ack(c);
      c.close();
    }
  });
}

BOOST_AUTO_TEST_CASE(bad_seeds_fail_locally_and_send_nothing) {
  const auto user = natsbus::test::make_nkey_user();
  nats_server server(with_config(user.server_config()));
  temp_file seed_file("user.nk");
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp_proxy proxy(ex, static_cast<std::uint16_t>(server.port()));
    const std::string url = "nats://127.0.0.1:" + std::to_string(proxy.port());
    std::string corrupted = user.seed;
    corrupted[10] = corrupted[10] == 'A' ? 'B' : 'A';  // the checksum no longer matches
    auto o = options(url);
    o.nkey_seed = corrupted;
    auto text = co_await expect_failure(o, error::invalid_nkey_seed, corrupted);
    BOOST_TEST(text.find("nkey_seed") != std::string::npos, text);
    o.nkey_seed = "SU" + std::string(20, '!');
    co_await expect_failure(o, error::invalid_nkey_seed, o.nkey_seed);
    o.nkey_seed.clear();
    o.nkey_seed_file = seed_file.path() + ".missing";
    text = co_await expect_failure(o, error::invalid_nkey_seed, "");
    BOOST_TEST(text.find(".missing") != std::string::npos, text);
    seed_file.write(corrupted);
    o.nkey_seed_file = seed_file.path();
    text = co_await expect_failure(o, error::invalid_nkey_seed, corrupted);
    BOOST_TEST(text.find(seed_file.path()) != std::string::npos, text);
    // A signer that fails.
    o = options(url);
    o.nkey_public_key = user.public_key;
    o.sign_nonce = [](std::string_view, std::string&) { return error_code(error::signing_failed); };
    co_await expect_failure(o, error::signing_failed, "");
    // Nothing of these reached the server: no CONNECT went out.
    BOOST_TEST(proxy.client_bytes().find("CONNECT") == std::string::npos);
    // Options that do not go together are refused before any connect.
    o = options(url);
    o.nkey_seed = user.seed;
    o.credentials_file = "/tmp/x.creds";
    co_await expect_failure(o, error::invalid_config, user.seed);
  });
}

BOOST_AUTO_TEST_CASE(a_key_the_server_does_not_know_is_refused) {
  const auto user = natsbus::test::make_nkey_user();
  const auto stranger = natsbus::test::make_nkey_user();
  nats_server server(with_config(user.server_config()));
  run_coro([&]() -> asio::awaitable<void> {
    auto o = options(server.url());
    o.nkey_seed = stranger.seed;
    co_await expect_failure(o, error::authorization_violation, stranger.seed);
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(jwt_auth)

BOOST_AUTO_TEST_CASE(creds_file_in_operator_mode_publishes_with_ack) {
  const auto chain = natsbus::test::make_jwt_chain();
  nats_server server(with_config(chain.server_config()));
  temp_file creds("user.creds");
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    // As nsc writes it, and as an editor on another system might leave it.
    std::string crlf;
    for (char ch : chain.creds_file_text()) {
      if (ch == '\n') crlf += "\r\n";
      else crlf += ch;
    }
    for (const std::string& text : {chain.creds_file_text(), crlf + "\r\n\r\n"}) {
      creds.write(text);
      auto o = options(server.url());
      o.credentials_file = creds.path();
      natsbus::connection c(ex, o);
      co_await c.connect();
      co_await publish_with_ack(c);
      c.close();
    }
  });
}

BOOST_AUTO_TEST_CASE(bad_creds_files_name_the_file_and_no_secret) {
  const auto chain = natsbus::test::make_jwt_chain();
  nats_server server(with_config(chain.server_config()));
  temp_file creds("user.creds");
  run_coro([&]() -> asio::awaitable<void> {
    auto o = options(server.url());
    o.credentials_file = creds.path();
    const std::string good = chain.creds_file_text();
    // No seed block.
    creds.write(good.substr(0, good.find("-----BEGIN USER NKEY SEED")));
    auto text = co_await expect_failure(o, error::invalid_credentials, chain.user_seed);
    BOOST_TEST(text.find(creds.path()) != std::string::npos, text);
    // The account's seed where the user's belongs.
    std::string wrong = good;
    wrong.replace(wrong.find(chain.user_seed), chain.user_seed.size(), chain.account_seed);
    creds.write(wrong);
    text = co_await expect_failure(o, error::invalid_credentials, chain.account_seed);
    BOOST_TEST(text.find("user seed") != std::string::npos, text);
    BOOST_TEST(text.find(chain.user_jwt.substr(0, 20)) == std::string::npos, text);
    // Garbage.
    creds.write("this is not a creds file\n");
    co_await expect_failure(o, error::invalid_credentials, "");
    // A JWT of a user the account never signed for: refused by the server.
    const auto other = natsbus::test::make_jwt_chain();
    creds.write(other.creds_file_text());
    co_await expect_failure(o, error::authorization_violation, other.user_seed);
  });
}

BOOST_AUTO_TEST_CASE(user_jwt_callback_is_asked_on_every_connect) {
  const auto chain = natsbus::test::make_jwt_chain();
  nats_server server(with_config(chain.server_config()));
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp_proxy proxy(ex, static_cast<std::uint16_t>(server.port()));
    auto o = options("nats://127.0.0.1:" + std::to_string(proxy.port()));
    o.allow_reconnect = true;
    o.reconnect_wait = 50ms;
    int asked = 0;
    o.user_jwt = [&](std::string& jwt) {
      ++asked;
      jwt = chain.user_jwt;
      return error_code{};
    };
    o.nkey_seed = chain.user_seed;  // the signer
    event_log log(ex);
    natsbus::connection c(ex, o);
    log.attach(c);
    co_await c.connect();
    BOOST_TEST(asked == 1);
    proxy.cut();
    co_await log.wait(event_kind::reconnected, 1);
    BOOST_TEST(asked == 2);
    co_await publish_with_ack(c);
    c.close();
  });
}

// A user JWT that expires while connected: the server ends the session with 'User Authentication Expired', and the
// client reconnects with the credentials file read again (renewed meanwhile).
BOOST_AUTO_TEST_CASE(an_expiring_jwt_is_renewed_from_the_file_on_reconnect) {
  const auto chain = natsbus::test::make_jwt_chain();
  nats_server server(with_config(chain.server_config()));
  temp_file creds("user.creds");
  creds.write(chain.creds_file_text(chain.user_jwt_with_expiry(std::chrono::system_clock::now() + 2s)));
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto o = options(server.url());
        o.credentials_file = creds.path();
        o.allow_reconnect = true;
        o.reconnect_wait = 100ms;
        event_log log(ex);
        natsbus::connection c(ex, o);
        log.attach(c);
        co_await c.connect();
        co_await publish_with_ack(c);
        creds.write(chain.creds_file_text());  // renewed: no expiry
        co_await log.wait(event_kind::reconnected, 1);
        BOOST_TEST(log.last_error(event_kind::disconnected) == error::authentication_expired,
                   log.last_error(event_kind::disconnected).message());
        co_await publish_with_ack(c);
        c.close();
      },
      20s);
}

BOOST_AUTO_TEST_SUITE_END()
